/*
 * QUIC v1 with ngtcp2 0.12 and GnuTLS, the wiring shown by ngtcp2's
 * examples/gtlssimpleclient.c, for both ends of a peer-to-peer link.
 *
 * Streams keep what they send in a ring buffer until the peer acknowledges
 * it (ngtcp2 may retransmit from it until then); received data goes to the
 * app in runs (struct rx_run), and the flow-control window is extended
 * only as the app consumes it (quic_consume), so that a slow output slows
 * the peer rather than filling our memory.
 */
#include "quic.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"

enum {
	/* Ethernet's MTU less IPv6's and UDP's headers (40 + 8): fits both
	 * families, and ChannelData's 4 bytes more over IPv4 */
	PKT_MAX = 1452,
	PKTS_PER_TICK = 256,
	SCID_LEN = 16,
};

static const char alpn_name[] = "punch/1";
static const char priority[] =
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
	"+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
	"%DISABLE_TLS13_COMPAT_MODE";

struct qstream {
	int64_t id;
	int used;
	uint8_t *buf;            /* ring of QUIC_STREAM_BUF bytes, once written */
	size_t head, len;        /* unacked bytes start at buf[head] */
	uint64_t base;           /* stream offset of buf[head] */
	uint64_t sent;           /* stream offset handed to ngtcp2 so far */
	int fin_wanted, fin_sent, was_full;
	/* RFC 9000 3: a sending side we reset, a receiving side we stopped,
	 * and a sending side the peer reset. */
	int reset_local, stopped_local, reset_by_peer;
};

enum quic_state {
	QUIC_STATE_HANDSHAKE,
	QUIC_STATE_READY,  /* the handshake is done and the peer verified */
	QUIC_STATE_CLOSED, /* on_closed has been called */
};

struct quic {
	ngtcp2_crypto_conn_ref conn_ref;
	ngtcp2_conn *conn;
	gnutls_session_t session;
	gnutls_certificate_credentials_t cred;
	int is_client;
	enum quic_state state;
	int handshake_done;        /* TLS done here; ready may wait (client) */
	uint64_t dropped_offpath;  /* datagrams from elsewhere before the handshake */
	uint64_t peer_app_error;   /* the peer's CONNECTION_CLOSE, if application */
	struct sockaddr_storage local, remote;
	struct quic_callbacks cb;
	void *ctx;
	const struct identity *id;
	struct qstream streams[QUIC_STREAMS_MAX];
	size_t next_stream;      /* round-robin start for sending */
	struct quic_limits lim;
	size_t send_total;       /* unacknowledged bytes, all streams */
	size_t n_full;           /* streams with was_full set */
	struct qstream *last;    /* the stream stream_find() found last */
	/* Received data of one stream, gathered over a batch of packets and
	 * handed to the app at once (one write(2) for many packets): id -1
	 * when empty. */
	struct rx_run {
		int64_t id;
		size_t len;
		int fin;
		uint8_t buf[QUIC_RX_RUN];
	} rx;
	/* Packets built for one send: equal sizes, the last maybe shorter. */
	uint8_t burst[QUIC_BURST_PKTS * PKT_MAX];
	ngtcp2_connection_close_error last_error;
	char reason[160];
};

static const char *quic_state_str(enum quic_state s)
{
	switch (s) {
	case QUIC_STATE_HANDSHAKE: return "handshake";
	case QUIC_STATE_READY: return "ready";
	case QUIC_STATE_CLOSED: return "closed";
	}
	return "?";
}

/* Every state change goes through here, and is logged old -> new. */
static void set_state(struct quic *q, enum quic_state s)
{
	if (q->state == s)
		return;
	log_debug("quic: %s -> %s", quic_state_str(q->state),
	          quic_state_str(s));
	q->state = s;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
	return ((struct quic *)ref->user_data)->conn;
}

/* ---- streams ---------------------------------------------------------- */

/* Every acknowledgement and every write looks its stream up, nearly always
 * the one of the last lookup: that one is tried first. */
static struct qstream *stream_find(struct quic *q, int64_t id)
{
	if (q->last && q->last->used && q->last->id == id)
		return q->last;
	for (size_t i = 0; i < QUIC_STREAMS_MAX; i++)
		if (q->streams[i].used && q->streams[i].id == id)
			return q->last = &q->streams[i];
	return NULL;
}

static struct qstream *stream_add(struct quic *q, int64_t id)
{
	for (size_t i = 0; i < QUIC_STREAMS_MAX; i++) {
		struct qstream *s = &q->streams[i];

		if (s->used)
			continue;
		memset(s, 0, sizeof(*s));
		s->used = 1;
		s->id = id;
		return s;
	}
	return NULL;
}

static void stream_free(struct quic *q, struct qstream *s)
{
	q->send_total -= s->len;
	q->n_full -= s->was_full != 0;
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

/* A peer's unidirectional stream (RFC 9000 2.1: bit 0x2 set, and opened by
 * the other end). */
static int peer_uni(const struct quic *q, int64_t id)
{
	return (id & 0x2) && !ngtcp2_conn_is_local_stream(q->conn, id);
}

/* Stream id is done: free its slot, let the peer open another if it was
 * one of the peer's (ngtcp2 leaves MAX_STREAMS to us, RFC 9000 4.6: never
 * more at once than struct quic_limits says), and tell the app. */
/* Hand the gathered run to the app. */
static void rx_flush(struct quic *q)
{
	struct rx_run *r = &q->rx;
	int64_t id = r->id;
	size_t len = r->len;
	int fin = r->fin;

	if (id < 0)
		return;
	r->id = -1;
	r->len = 0;
	r->fin = 0;
	q->cb.on_stream_data(q->ctx, id, r->buf, len, fin);
}

static void stream_closed(struct quic *q, struct qstream *s, int64_t id,
                          uint64_t app_error)
{
	if (q->rx.id == id)
		rx_flush(q);   /* the app sees the data before the close */
	if (s)
		stream_free(q, s);
	if (!ngtcp2_conn_is_local_stream(q->conn, id)) {
		if (id & 0x2)
			ngtcp2_conn_extend_max_streams_uni(q->conn, 1);
		else
			ngtcp2_conn_extend_max_streams_bidi(q->conn, 1);
	}
	if (q->cb.on_stream_close)
		q->cb.on_stream_close(q->ctx, id, app_error);
}

/* The unsent part of s as at most two iovecs (the ring may wrap). */
static int stream_unsent(const struct qstream *s, ngtcp2_vec v[2])
{
	size_t off = (size_t)(s->sent - s->base);
	size_t n = s->len - off, start = (s->head + off) % QUIC_STREAM_BUF;
	size_t first = QUIC_STREAM_BUF - start < n ? QUIC_STREAM_BUF - start : n;

	if (!n)
		return 0;
	v[0].base = s->buf + start;
	v[0].len = first;
	if (first == n)
		return 1;
	v[1].base = s->buf;
	v[1].len = n - first;
	return 2;
}

long quic_write(struct quic *q, int64_t id, const void *data, size_t len)
{
	struct qstream *s = stream_find(q, id);
	size_t room, tail, first;

	if (!s || s->fin_wanted)
		return -1;
	if (!s->buf && !(s->buf = malloc(QUIC_STREAM_BUF)))
		return -1;
	room = QUIC_STREAM_BUF - s->len;
	if (room > QUIC_SEND_TOTAL_MAX - q->send_total)
		room = QUIC_SEND_TOTAL_MAX - q->send_total;
	if (len > room) {
		len = room;
		q->n_full += !s->was_full;
		s->was_full = 1;
	}
	tail = (s->head + s->len) % QUIC_STREAM_BUF;
	first = QUIC_STREAM_BUF - tail < len ? QUIC_STREAM_BUF - tail : len;
	memcpy(s->buf + tail, data, first);
	memcpy(s->buf, (const uint8_t *)data + first, len - first);
	s->len += len;
	q->send_total += len;
	return (long)len;
}

int quic_write_fin(struct quic *q, int64_t id)
{
	struct qstream *s = stream_find(q, id);

	if (!s)
		return -1;
	s->fin_wanted = 1;
	return 0;
}

size_t quic_unacked(const struct quic *q, int64_t id)
{
	for (size_t i = 0; i < QUIC_STREAMS_MAX; i++)
		if (q->streams[i].used && q->streams[i].id == id)
			return q->streams[i].len;
	return 0;
}

/* The table keeps room for every stream the peer may open. */
static size_t own_streams(const struct quic *q)
{
	size_t n = 0;

	for (size_t i = 0; i < QUIC_STREAMS_MAX; i++)
		n += q->streams[i].used &&
		     ngtcp2_conn_is_local_stream(q->conn, q->streams[i].id);
	return n;
}

/* Can this end write on stream id, or read it: any bidirectional stream,
 * and of the unidirectional ones only our own, or only the peer's. */
static int stream_writable_side(const struct quic *q, int64_t id)
{
	return !(id & 0x2) || ngtcp2_conn_is_local_stream(q->conn, id);
}

static int stream_readable_side(const struct quic *q, int64_t id)
{
	return !(id & 0x2) || peer_uni(q, id);
}

int quic_reset_stream(struct quic *q, int64_t id, uint64_t app_error)
{
	struct qstream *s = stream_find(q, id);

	if (!q->conn || q->state == QUIC_STATE_CLOSED || !s || s->reset_local ||
	    !stream_writable_side(q, id) ||
	    ngtcp2_conn_shutdown_stream_write(q->conn, id, app_error))
		return -1;
	/* RFC 9000 3.1: nothing more is sent, so what was never handed to
	 * ngtcp2 can go; what was may still be read by ngtcp2 (its queued
	 * frames point into the ring) until the stream closes. */
	q->send_total -= s->len - (size_t)(s->sent - s->base);
	s->len = (size_t)(s->sent - s->base);
	s->fin_wanted = s->fin_sent = 1;
	s->reset_local = 1;
	return 0;
}

int quic_stop_sending(struct quic *q, int64_t id, uint64_t app_error)
{
	struct qstream *s = stream_find(q, id);

	if (!q->conn || q->state == QUIC_STATE_CLOSED || !s || s->stopped_local ||
	    !stream_readable_side(q, id) ||
	    ngtcp2_conn_shutdown_stream_read(q->conn, id, app_error))
		return -1;
	/* ngtcp2 drops what else arrives and gives its credit back.  A
	 * peer's unidirectional stream is done for us now: its FIN, or the
	 * reset that answers us, may never be reported (ngtcp2 0.12). */
	s->stopped_local = 1;
	if (peer_uni(q, id))
		stream_closed(q, s, id, app_error);
	return 0;
}

int64_t quic_open_stream(struct quic *q, int bidi)
{
	int64_t id;
	int rc;

	if (!q->conn || q->state != QUIC_STATE_READY || own_streams(q) + q->lim.peer_bidi + q->lim.peer_uni >= QUIC_STREAMS_MAX)
		return -1;
	rc = bidi ? ngtcp2_conn_open_bidi_stream(q->conn, &id, NULL) :
	            ngtcp2_conn_open_uni_stream(q->conn, &id, NULL);
	if (rc != 0)
		return -1;
	if (!stream_add(q, id)) {
		ngtcp2_conn_shutdown_stream(q->conn, id, 1);
		return -1;
	}
	return id;
}

int quic_stream_is_ours(const struct quic *q, int64_t id)
{
	return q->conn && ngtcp2_conn_is_local_stream(q->conn, id);
}

/* ---- ngtcp2 callbacks ------------------------------------------------- */

static void mark_ready(struct quic *q)
{
	if (q->state != QUIC_STATE_HANDSHAKE)
		return;
	set_state(q, QUIC_STATE_READY);
	if (q->cb.on_ready)
		q->cb.on_ready(q->ctx);
}

/* The server is up when its handshake completes: the client's key has
 * been checked.  The client's completes on sending its Finished, before
 * the server has checked the client's key, so the client waits for the
 * handshake to be confirmed (HANDSHAKE_DONE, RFC 9001 4.1.2), or for the
 * server's first stream data, which the server sends only once up. */
static int cb_handshake_completed(ngtcp2_conn *conn, void *user)
{
	struct quic *q = user;

	(void)conn;
	q->handshake_done = 1;
	if (!q->is_client)
		mark_ready(q);
	return 0;
}

static int cb_handshake_confirmed(ngtcp2_conn *conn, void *user)
{
	(void)conn;
	mark_ready(user);
	return 0;
}

/* ngtcp2 gives each stream's data in order; consecutive pieces of one
 * stream are gathered until another stream's come, the run is full, the
 * stream closes, or quic_tick (the end of the caller's batch). */
static int cb_recv_stream_data(ngtcp2_conn *conn, uint32_t flags,
                               int64_t id, uint64_t offset,
                               const uint8_t *data, size_t len, void *user,
                               void *stream_user)
{
	struct quic *q = user;
	struct rx_run *r = &q->rx;
	int fin = !!(flags & NGTCP2_STREAM_DATA_FLAG_FIN);

	(void)conn;
	(void)offset;
	(void)stream_user;
	if (!stream_find(q, id) && !stream_add(q, id))
		return NGTCP2_ERR_CALLBACK_FAILURE;
	if (q->handshake_done)
		mark_ready(q);  /* the server's data overtook HANDSHAKE_DONE */
	if (r->id >= 0 && (r->id != id || len > sizeof(r->buf) - r->len))
		rx_flush(q);
	if (len > sizeof(r->buf)) {
		q->cb.on_stream_data(q->ctx, id, data, len, fin);
	} else {
		if (len) /* a FIN alone comes with no data (and may come with NULL) */
			memcpy(r->buf + r->len, data, len);
		r->len += len;
		r->id = id;
		r->fin |= fin;
	}
	/* ngtcp2 0.12 never closes a peer's unidirectional stream (fixed in
	 * 0.13 by its commit 2793ff5b): all of it is in, so it is done
	 * (stream_closed hands the run over first). */
	if (fin && peer_uni(q, id))
		stream_closed(q, stream_find(q, id), id, 0);
	return 0;
}

void quic_consume(struct quic *q, int64_t id, size_t n)
{
	if (!q->conn || !n)
		return;
	/* RFC 9000 4.1: credit for the stream, and for the connection; a
	 * stream ngtcp2 has closed is ignored, the connection still counts. */
	if (id >= 0)
		ngtcp2_conn_extend_max_stream_offset(q->conn, id, n);
	ngtcp2_conn_extend_max_offset(q->conn, n);
}

/* Room again for every stream that found the total full.  Called on every
 * acknowledgement, so it looks only as far as the last waiting stream. */
static void wake_writers(struct quic *q)
{
	size_t waiting = q->n_full;

	for (size_t i = 0; i < QUIC_STREAMS_MAX && waiting; i++) {
		struct qstream *s = &q->streams[i];

		if (q->send_total >= QUIC_SEND_TOTAL_MAX / 2)
			return;
		if (!s->used || !s->was_full)
			continue;
		waiting--;
		if (s->len >= QUIC_STREAM_BUF / 2)
			continue;
		s->was_full = 0;
		q->n_full--;
		if (q->cb.on_writable)
			q->cb.on_writable(q->ctx, s->id);
	}
}

static int cb_acked(ngtcp2_conn *conn, int64_t id, uint64_t offset,
                    uint64_t len, void *user, void *stream_user)
{
	struct quic *q = user;
	struct qstream *s = stream_find(q, id);
	uint64_t end = offset + len;

	(void)conn;
	(void)stream_user;
	if (!s || end <= s->base)
		return 0;
	/* ngtcp2 reports acknowledged data in order, from the start. */
	len = end - s->base;
	if (len > s->len)
		len = s->len;
	s->head = (s->head + (size_t)len) % QUIC_STREAM_BUF;
	s->len -= (size_t)len;
	s->base += len;
	q->send_total -= (size_t)len;
	wake_writers(q);
	return 0;
}

static int cb_stream_open(ngtcp2_conn *conn, int64_t id, void *user)
{
	struct quic *q = user;

	(void)conn;
	return stream_find(q, id) || stream_add(q, id) ? 0 :
	                                                 NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_stream_reset(ngtcp2_conn *conn, int64_t id, uint64_t final_size,
                           uint64_t app_error, void *user, void *stream_user)
{
	struct quic *q = user;
	struct qstream *s = stream_find(q, id);

	(void)conn;
	(void)final_size;
	(void)stream_user;
	/* A stream the app never saw (reset before any data came), or one
	 * it is done with: nothing to tell.  ngtcp2 gives back the credit
	 * for what will never be delivered. */
	if (!s)
		return 0;
	if (!s->stopped_local) {
		s->reset_by_peer = 1;
		if (q->cb.on_stream_reset)
			q->cb.on_stream_reset(q->ctx, id, app_error);
	}
	/* ngtcp2 0.12 never closes a peer's unidirectional stream. */
	if (peer_uni(q, id))
		stream_closed(q, stream_find(q, id), id, app_error);
	return 0;
}

/* ngtcp2 0.12 answers a STOP_SENDING itself with a RESET_STREAM carrying
 * the peer's code, and tells us only when the stream closes: an error code
 * on a stream we could write, which neither side reset and we did not
 * stop, is the peer's STOP_SENDING. */
static int stopped_by_peer(const struct quic *q, const struct qstream *s,
                           uint32_t flags)
{
	return s && (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) &&
	       stream_writable_side(q, s->id) && !s->reset_local &&
	       !s->stopped_local && !s->reset_by_peer;
}

static int cb_stream_close(ngtcp2_conn *conn, uint32_t flags, int64_t id,
                           uint64_t app_error, void *user, void *stream_user)
{
	struct quic *q = user;
	struct qstream *s = stream_find(q, id);

	(void)conn;
	(void)stream_user;
	/* A peer's unidirectional stream was closed here already (FIN, reset
	 * or stop), should a later ngtcp2 close it too. */
	if (!s && peer_uni(q, id))
		return 0;
	if (stopped_by_peer(q, s, flags) && q->cb.on_stop_sending)
		q->cb.on_stop_sending(q->ctx, id, app_error);
	stream_closed(q, s, id, app_error);
	return 0;
}

static void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
	(void)ctx;
	/* ngtcp2 cannot be told of a failure here, and its random bytes
	 * (PATH_CHALLENGE data) must not be predictable */
	if (gnutls_rnd(GNUTLS_RND_RANDOM, dest, len)) {
		log_error("the system's random number generator failed");
		abort();
	}
}

static int cb_new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                      size_t cidlen, void *user)
{
	(void)conn;
	(void)user;
	if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) ||
	    gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN))
		return NGTCP2_ERR_CALLBACK_FAILURE;
	cid->datalen = cidlen;
	return 0;
}

static void log_printf(void *user, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void log_printf(void *user, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	(void)user;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_debug("quic: %s", line);
}

/* ---- TLS ---------------------------------------------------------------- */

/* Both ends: the peer's certificate must carry the key we expect. */
static int verify_cb(gnutls_session_t session)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
	struct quic *q = ref->user_data;
	const gnutls_datum_t *certs;
	uint8_t fp[IDENTITY_FP_LEN];
	unsigned n = 0;

	certs = gnutls_certificate_get_peers(session, &n);
	if (!certs || !n || identity_fp_of_cert(&certs[0], fp)) {
		snprintf(q->reason, sizeof(q->reason),
		         "the peer sent no usable certificate");
		return -1;
	}
	if (q->cb.verify_peer(q->ctx, fp)) {
		snprintf(q->reason, sizeof(q->reason),
		         "the peer's key was refused");
		return -1;
	}
	return 0;
}

/* SSLKEYLOGFILE: the NSS key log format Wireshark reads, one line per
 * secret: LABEL CLIENT_RANDOM SECRET, in hex.  Whoever reads the file can
 * decrypt the link, so it is created 0600, never opened through a symbolic
 * link (another user's link in /tmp would take the secrets elsewhere), and
 * the user is told, once, that secrets are being written.  A file that
 * cannot be opened so fails the handshake: the user asked for the secrets,
 * and a link they cannot decrypt is not what they wanted. */
static int keylog_cb(gnutls_session_t session, const char *label,
                     const gnutls_datum_t *secret)
{
	static int said; /* one process, one link: warn once */
	const char *path = getenv("SSLKEYLOGFILE");
	gnutls_datum_t crandom, srandom;
	char line[512];
	size_t n;
	int fd, err;

	if (!path || !*path)
		return 0;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd < 0) {
		err = errno;
		if (err == ELOOP)
			log_error("SSLKEYLOGFILE %s is a symbolic link; not writing TLS secrets through it (name the file itself)",
			          path);
		else
			log_error("cannot open SSLKEYLOGFILE %s: %s; unset it or fix the path",
			          path, strerror(err));
		return -1;
	}
	if (!said++)
		log_warn("writing TLS secrets to %s (SSLKEYLOGFILE): anyone who can read it can decrypt this link",
		         path);
	gnutls_session_get_random(session, &crandom, &srandom);
	/* A label is under 40 bytes, the random 32, a secret at most 64:
	 * the bounds below never cut a real line. */
	n = (size_t)snprintf(line, sizeof(line), "%.64s ", label);
	for (unsigned i = 0; i < crandom.size && n + 4 < sizeof(line); i++)
		n += (size_t)snprintf(line + n, 3, "%02x", crandom.data[i]);
	line[n++] = ' ';
	for (unsigned i = 0; i < secret->size && n + 4 < sizeof(line); i++)
		n += (size_t)snprintf(line + n, 3, "%02x", secret->data[i]);
	line[n++] = '\n';
	/* One write: with O_APPEND, lines from two processes do not mix. */
	err = write(fd, line, n) == (ssize_t)n ? 0 : -1;
	gnutls_memset(line, 0, sizeof(line));
	close(fd);
	return err;
}

static int tls_init(struct quic *q, char *err, size_t errlen)
{
	gnutls_datum_t alpn = { (unsigned char *)alpn_name,
		                sizeof(alpn_name) - 1 };
	unsigned flags = q->is_client ? GNUTLS_CLIENT : GNUTLS_SERVER;
	gnutls_x509_crt_t crt = q->id->crt;
	int rc;

	if ((rc = gnutls_certificate_allocate_credentials(&q->cred)) < 0 ||
	    (rc = gnutls_certificate_set_x509_key(q->cred, &crt, 1,
	                                          q->id->key)) < 0 ||
	    (rc = gnutls_init(&q->session, flags | GNUTLS_ENABLE_EARLY_DATA |
	                                           GNUTLS_NO_END_OF_EARLY_DATA)) < 0 ||
	    (rc = gnutls_priority_set_direct(q->session, priority, NULL)) < 0 ||
	    (rc = gnutls_credentials_set(q->session, GNUTLS_CRD_CERTIFICATE,
	                                 q->cred)) < 0 ||
	    (rc = gnutls_alpn_set_protocols(q->session, &alpn, 1,
	                                    GNUTLS_ALPN_MANDATORY)) < 0) {
		snprintf(err, errlen, "TLS set-up failed: %s", gnutls_strerror(rc));
		return -1;
	}
	if ((q->is_client ? ngtcp2_crypto_gnutls_configure_client_session(q->session) :
	                    ngtcp2_crypto_gnutls_configure_server_session(q->session))) {
		snprintf(err, errlen, "QUIC TLS set-up failed");
		return -1;
	}
	if (!q->is_client)
		gnutls_certificate_server_set_request(q->session, GNUTLS_CERT_REQUIRE);
	gnutls_session_set_verify_function(q->session, verify_cb);
	if (getenv("SSLKEYLOGFILE"))
		gnutls_session_set_keylog_function(q->session, keylog_cb);
	gnutls_session_set_ptr(q->session, &q->conn_ref);
	return 0;
}

/* ---- connection ------------------------------------------------------- */

static void fill_callbacks(ngtcp2_callbacks *c, int is_client)
{
	memset(c, 0, sizeof(*c));
	if (is_client) {
		c->client_initial = ngtcp2_crypto_client_initial_cb;
		c->recv_retry = ngtcp2_crypto_recv_retry_cb;
	} else {
		c->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
	}
	c->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
	c->encrypt = ngtcp2_crypto_encrypt_cb;
	c->decrypt = ngtcp2_crypto_decrypt_cb;
	c->hp_mask = ngtcp2_crypto_hp_mask_cb;
	c->update_key = ngtcp2_crypto_update_key_cb;
	c->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
	c->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
	c->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
	c->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
	c->handshake_completed = cb_handshake_completed;
	c->handshake_confirmed = cb_handshake_confirmed;
	c->recv_stream_data = cb_recv_stream_data;
	c->acked_stream_data_offset = cb_acked;
	c->stream_open = cb_stream_open;
	c->stream_close = cb_stream_close;
	c->stream_reset = cb_stream_reset;
	c->rand = cb_rand;
	c->get_new_connection_id = cb_new_cid;
}

static void fill_params(const struct quic *q, ngtcp2_settings *s,
                        ngtcp2_transport_params *p, uint64_t now_ns)
{
	ngtcp2_settings_default(s);
	s->initial_ts = now_ns;
	s->max_tx_udp_payload_size = PKT_MAX;
	s->cc_algo = NGTCP2_CC_ALGO_CUBIC;
	s->max_window = QUIC_RX_WINDOW_MAX;
	s->max_stream_window = QUIC_RX_STREAM_WINDOW_MAX;
	s->handshake_timeout = 10 * NGTCP2_SECONDS;
	if (log_threshold >= LOG_DEBUG && getenv("PUNCH_QUIC_TRACE"))
		s->log_printf = log_printf;
	ngtcp2_transport_params_default(p);
	/* cb_stream_close raises MAX_STREAMS by one as each of the peer's
	 * streams closes, so these bound the streams open at once. */
	p->initial_max_streams_bidi = q->lim.peer_bidi;
	p->initial_max_streams_uni = q->lim.peer_uni;
	p->initial_max_stream_data_uni = QUIC_RX_STREAM_WINDOW;
	p->initial_max_stream_data_bidi_local = QUIC_RX_STREAM_WINDOW;
	p->initial_max_stream_data_bidi_remote = QUIC_RX_STREAM_WINDOW;
	p->initial_max_data = QUIC_RX_WINDOW;
	p->max_idle_timeout = QUIC_IDLE_TIMEOUT_S * NGTCP2_SECONDS;
	/* ngtcp2 0.12 advertises grease_quic_bit (RFC 9287) whatever we set,
	 * so the peer may clear the QUIC bit: client.c demultiplexes by the
	 * STUN magic cookie rather than by the first byte alone. */
}

static ngtcp2_path path_of(struct quic *q)
{
	ngtcp2_path p = {
		{ (struct sockaddr *)&q->local,
		  addr_len((struct sockaddr *)&q->local) },
		{ (struct sockaddr *)&q->remote,
		  addr_len((struct sockaddr *)&q->remote) },
		NULL,
	};

	return p;
}

/* Both ends: TLS, and a PING when idle, so that a link whose data waits
 * (on a stalled output, with no credit to give) outlives the idle timeout. */
static void conn_setup(struct quic *q)
{
	ngtcp2_conn_set_tls_native_handle(q->conn, q->session);
	ngtcp2_conn_set_keep_alive_timeout(q->conn,
	                                   QUIC_KEEPALIVE_S * NGTCP2_SECONDS);
}

static int conn_client(struct quic *q, uint64_t now_ns, char *err,
                       size_t errlen)
{
	ngtcp2_callbacks cbs;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_path path = path_of(q);
	ngtcp2_cid dcid = { .datalen = SCID_LEN }, scid = { .datalen = SCID_LEN };
	int rc;

	if (gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen) ||
	    gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen)) {
		snprintf(err, errlen, "the system's random number generator failed");
		return -1;
	}
	fill_callbacks(&cbs, 1);
	fill_params(q, &settings, &params, now_ns);
	rc = ngtcp2_conn_client_new(&q->conn, &dcid, &scid, &path,
	                            NGTCP2_PROTO_VER_V1, &cbs, &settings,
	                            &params, NULL, q);
	if (rc) {
		snprintf(err, errlen, "QUIC set-up failed: %s", ngtcp2_strerror(rc));
		return -1;
	}
	conn_setup(q);
	return 0;
}

/* Server: the client's first Initial packet makes the connection. */
static int conn_server(struct quic *q, const uint8_t *pkt, size_t len,
                       uint64_t now_ns)
{
	ngtcp2_callbacks cbs;
	ngtcp2_settings settings;
	ngtcp2_transport_params params;
	ngtcp2_path path = path_of(q);
	ngtcp2_pkt_hd hd;
	ngtcp2_cid scid = { .datalen = SCID_LEN };
	int rc;

	if (ngtcp2_accept(&hd, pkt, len) != 0 ||
	    gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen))
		return -1;
	fill_callbacks(&cbs, 0);
	fill_params(q, &settings, &params, now_ns);
	params.original_dcid = hd.dcid;
	rc = ngtcp2_conn_server_new(&q->conn, &hd.scid, &scid, &path, hd.version,
	                            &cbs, &settings, &params, NULL, q);
	if (rc) {
		log_debug("quic: cannot accept: %s", ngtcp2_strerror(rc));
		return -1;
	}
	conn_setup(q);
	return 0;
}

struct quic *quic_new(int is_client, const struct identity *id,
                      const struct sockaddr *local,
                      const struct sockaddr *remote,
                      const struct quic_limits *lim,
                      const struct quic_callbacks *cb, void *ctx,
                      uint64_t now_ns, char *err, size_t errlen)
{
	struct quic *q = calloc(1, sizeof(*q));
	struct quic_limits dflt = { 0, 4 };

	if (!q) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->peer_app_error = QUIC_NO_APP_ERROR;
	q->rx.id = -1;
	q->is_client = is_client;
	q->id = id;
	q->cb = *cb;
	q->ctx = ctx;
	q->lim = lim ? *lim : dflt;
	if (q->lim.peer_bidi + q->lim.peer_uni > QUIC_PEER_STREAMS_MAX) {
		snprintf(err, errlen, "too many streams for the peer (at most %d)",
		         QUIC_PEER_STREAMS_MAX);
		free(q);
		return NULL;
	}
	q->conn_ref.get_conn = get_conn;
	q->conn_ref.user_data = q;
	memcpy(&q->local, local, addr_len(local));
	memcpy(&q->remote, remote, addr_len(remote));
	ngtcp2_connection_close_error_default(&q->last_error);
	if (tls_init(q, err, errlen) ||
	    (is_client && conn_client(q, now_ns, err, errlen))) {
		quic_free(q);
		return NULL;
	}
	return q;
}

/* At -v, how the link went: what congestion control and the pacer saw. */
static void log_stats(struct quic *q)
{
	ngtcp2_conn_stat st;

	if (!q->conn || log_threshold < LOG_DEBUG)
		return;
	ngtcp2_conn_get_conn_stat(q->conn, &st);
	log_debug("quic: srtt %.3f ms, min rtt %.3f ms, cwnd %llu, ssthresh %llu, pacing %.0f MB/s, send quantum %zu",
	          (double)st.smoothed_rtt / 1e6, (double)st.min_rtt / 1e6,
	          (unsigned long long)st.cwnd, (unsigned long long)st.ssthresh,
	          st.pacing_rate * 1e3, st.send_quantum);
}

void quic_free(struct quic *q)
{
	if (!q)
		return;
	log_stats(q);
	for (size_t i = 0; i < QUIC_STREAMS_MAX; i++)
		if (q->streams[i].used)
			stream_free(q, &q->streams[i]);
	if (q->conn)
		ngtcp2_conn_del(q->conn);
	if (q->session)
		gnutls_deinit(q->session);
	if (q->cred)
		gnutls_certificate_free_credentials(q->cred);
	free(q);
}

uint64_t quic_dropped_offpath(const struct quic *q)
{
	return q->dropped_offpath;
}

int quic_ready(const struct quic *q)
{
	return q->state == QUIC_STATE_READY;
}

static void finish(struct quic *q, const char *reason)
{
	if (q->state == QUIC_STATE_CLOSED)
		return;
	rx_flush(q);   /* what came before the close is the app's */
	set_state(q, QUIC_STATE_CLOSED);
	if (q->cb.on_closed)
		q->cb.on_closed(q->ctx, reason);
}

/* Send CONNECTION_CLOSE with q->last_error, once. */
static void send_close(struct quic *q, uint64_t now_ns)
{
	uint8_t buf[PKT_MAX];
	ngtcp2_path_storage ps;
	ngtcp2_ssize n;

	if (!q->conn || ngtcp2_conn_is_in_closing_period(q->conn) ||
	    ngtcp2_conn_is_in_draining_period(q->conn))
		return;
	ngtcp2_path_storage_zero(&ps);
	n = ngtcp2_conn_write_connection_close(q->conn, &ps.path, NULL, buf,
	                                       sizeof(buf), &q->last_error,
	                                       now_ns);
	if (n > 0)
		q->cb.send(q->ctx, (struct sockaddr *)&q->remote, buf, (size_t)n);
}

static void fail(struct quic *q, int liberr, uint64_t now_ns)
{
	char why[160];

	if (q->state == QUIC_STATE_CLOSED)
		return;
	if (!q->reason[0])
		snprintf(q->reason, sizeof(q->reason), "%s",
		         ngtcp2_strerror(liberr));
	snprintf(why, sizeof(why), "%s", q->reason);
	if (liberr == NGTCP2_ERR_CRYPTO)
		ngtcp2_connection_close_error_set_transport_error_tls_alert(
			&q->last_error, ngtcp2_conn_get_tls_alert(q->conn), NULL, 0);
	else
		ngtcp2_connection_close_error_set_transport_error_liberr(
			&q->last_error, liberr, NULL, 0);
	send_close(q, now_ns);
	finish(q, why);
}

void quic_close(struct quic *q, uint64_t app_error, const char *reason,
                uint64_t now_ns)
{
	if (q->state == QUIC_STATE_CLOSED)
		return;
	ngtcp2_connection_close_error_set_application_error(
		&q->last_error, app_error, (const uint8_t *)reason,
		reason ? strlen(reason) : 0);
	send_close(q, now_ns);
	finish(q, NULL);
}

uint64_t quic_peer_app_error(const struct quic *q)
{
	return q->peer_app_error;
}

/* RFC 9001 4.8: a TLS alert travels as transport error 0x100 + alert.
 * The peer's verify callback refusing our key makes GnuTLS send
 * bad_certificate (42). */
static void peer_tls_alert(struct quic *q, unsigned alert)
{
	const char *name = gnutls_alert_get_name((gnutls_alert_description_t)alert);

	if (alert == GNUTLS_A_BAD_CERTIFICATE ||
	    alert == GNUTLS_A_CERTIFICATE_UNKNOWN || alert == GNUTLS_A_UNKNOWN_CA)
		snprintf(q->reason, sizeof(q->reason),
		         "the peer refused our key (TLS alert %u: %s)", alert,
		         name ? name : "unknown");
	else
		snprintf(q->reason, sizeof(q->reason),
		         "the peer ended the TLS handshake (alert %u: %s)", alert,
		         name ? name : "unknown");
	finish(q, q->reason);
}

static void peer_closed(struct quic *q)
{
	ngtcp2_connection_close_error err, *e = &err;

	ngtcp2_conn_get_connection_close_error(q->conn, e);

	if (e->type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION)
		q->peer_app_error = e->error_code;
	if (e->type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION &&
	    e->error_code == 0) {
		finish(q, NULL);
		return;
	}
	if (e->type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
	    e->error_code >= NGTCP2_CRYPTO_ERROR &&
	    e->error_code <= NGTCP2_CRYPTO_ERROR + 0xff) {
		peer_tls_alert(q, (unsigned)(e->error_code - NGTCP2_CRYPTO_ERROR));
		return;
	}
	snprintf(q->reason, sizeof(q->reason), "the peer closed the link (%s code 0x%llx%s%.*s)",
	         e->type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION ?
	                 "application" :
	                 "transport",
	         (unsigned long long)e->error_code, e->reasonlen ? ": " : "",
	         (int)e->reasonlen, (const char *)e->reason);
	finish(q, q->reason);
}

void quic_on_datagram(struct quic *q, const struct sockaddr *from,
                      const uint8_t *buf, size_t len, uint64_t now_ns)
{
	ngtcp2_path path;
	ngtcp2_pkt_info pi = { 0 };
	int rc;

	if (q->state == QUIC_STATE_CLOSED)
		return;
	/* Until the handshake is done, only the nominated pair's remote
	 * address may speak: a datagram from anywhere else (a forged Initial
	 * would otherwise make the server's connection, or make ngtcp2 drop
	 * the real one) is dropped and counted.  Afterwards every packet is
	 * authenticated, and ngtcp2 validates a new path itself. */
	if (q->state == QUIC_STATE_HANDSHAKE && !addr_equal(from, (struct sockaddr *)&q->remote)) {
		q->dropped_offpath++;
		if (log_threshold >= LOG_DEBUG) {
			char a[ADDR_STRLEN];

			log_debug("quic: %zu bytes from %s dropped: not the chosen peer "
			          "(%llu so far)",
			          len, addr_str(from, a, sizeof(a)),
			          (unsigned long long)q->dropped_offpath);
		}
		return;
	}
	if (!q->conn && (q->is_client || conn_server(q, buf, len, now_ns)))
		return;
	/* Where it came from now: a NAT that rebinds moves the peer, and
	 * ngtcp2 validates the new path (RFC 9000 9). */
	path = path_of(q);
	path.remote.addr = (struct sockaddr *)from;
	path.remote.addrlen = addr_len(from);
	rc = ngtcp2_conn_read_pkt(q->conn, &path, &pi, buf, len, now_ns);
	if (rc == NGTCP2_ERR_DRAINING) {
		peer_closed(q);
	} else if (rc == NGTCP2_ERR_DROP_CONN || rc == NGTCP2_ERR_CLOSING) {
		finish(q, "the link was dropped");
	} else if (rc) {
		fail(q, rc, now_ns);
	} else {
		memcpy(&q->remote, ngtcp2_conn_get_path(q->conn)->remote.addr,
		       ngtcp2_conn_get_path(q->conn)->remote.addrlen);
	}
}

/* Pick the next stream with something to send, round robin. */
static struct qstream *next_sender(struct quic *q, int *skip)
{
	for (size_t k = 0; k < QUIC_STREAMS_MAX; k++) {
		size_t i = (q->next_stream + k) % QUIC_STREAMS_MAX;
		struct qstream *s = &q->streams[i];

		if (!s->used || skip[i])
			continue;
		if (s->sent < s->base + s->len || (s->fin_wanted && !s->fin_sent)) {
			q->next_stream = i;
			return s;
		}
	}
	return NULL;
}

/* Hand the burst to the socket, in one call where the caller can take
 * one (UDP GSO), and tell ngtcp2's pacer what went out. */
static void burst_flush(struct quic *q, size_t len, size_t seg,
                        uint64_t now_ns)
{
	const struct sockaddr *to = (const struct sockaddr *)&q->remote;

	if (!len)
		return;
	if (q->cb.send_segments)
		q->cb.send_segments(q->ctx, to, q->burst, len, seg);
	else
		for (size_t off = 0; off < len; off += seg)
			q->cb.send(q->ctx, to, q->burst + off,
			           len - off < seg ? len - off : seg);
	/* The pacer starts once the handshake is done.  ngtcp2 0.12 paces at
	 * cwnd / smoothed RTT, and before the first RTT sample that RTT is
	 * RFC 9002's 333 ms guess: the client's 1200-byte Initial alone would
	 * hold its next packet other than an ACK for 1200 / (12000 * 1.25 /
	 * 333 ms) = 26 ms, and that packet is the client's Finished, so the
	 * server's side of the link came up 21-25 ms after the client's.
	 * Handshake flights are few and bounded (anti-amplification, the
	 * initial window); the bytes count towards the first paced interval.
	 * (Fixed upstream in ngtcp2 0.14, commit 47b88691.) */
	if (ngtcp2_conn_get_handshake_completed(q->conn))
		ngtcp2_conn_update_pkt_tx_time(q->conn, now_ns);
}

/* Packets per burst: what the pacer lets out at once (ngtcp2's send
 * quantum, RFC 9002 7.7), at most a burst's room. */
static size_t burst_pkts(struct quic *q)
{
	size_t n = ngtcp2_conn_get_send_quantum(q->conn) / PKT_MAX;

	return n < 1 ? 1 : n > QUIC_BURST_PKTS ? QUIC_BURST_PKTS :
	                                         n;
}

/* One packet of len bytes, just built at q->burst + *off: keep it in the
 * burst, or send the burst when the packet ends it. */
static void burst_add(struct quic *q, size_t len, size_t *off, size_t *seg,
                      size_t *npkts, uint64_t now_ns)
{
	if (*off && len > *seg) {
		/* Larger than the burst's packets: it starts the next one. */
		burst_flush(q, *off, *seg, now_ns);
		memmove(q->burst, q->burst + *off, len);
		*off = 0;
	}
	if (!*off) {
		*seg = len;
		*npkts = 0;
	}
	*off += len;
	(*npkts)++;
	/* A shorter packet can only be a burst's last (UDP_SEGMENT). */
	if (len < *seg || *npkts >= burst_pkts(q)) {
		burst_flush(q, *off, *seg, now_ns);
		*off = 0;
	}
}

/* Everything ngtcp2 will send now, in bursts: the pacer (ngtcp2 0.12
 * returns 0 while it holds packets back) and congestion control decide
 * how much; quic_tick's deadline (ngtcp2_conn_get_expiry, which includes
 * the pacer's next slot) brings us back. */
static int write_packets(struct quic *q, uint64_t now_ns)
{
	int skip[QUIC_STREAMS_MAX] = { 0 };
	ngtcp2_path_storage ps;
	size_t off = 0, seg = 0, npkts = 0;
	int sent = 0;

	ngtcp2_path_storage_zero(&ps);
	while (sent < PKTS_PER_TICK) {
		struct qstream *s = next_sender(q, skip);
		ngtcp2_vec v[2];
		int nv = 0;
		uint32_t flags = 0;
		ngtcp2_ssize consumed = -1, n;

		/* With stream data, ask ngtcp2 to leave room for more frames
		 * (WRITE_MORE); without, a call with stream -1 and no flag
		 * closes the packet being built. */
		if (s) {
			nv = stream_unsent(s, v);
			if (s->fin_wanted && !s->fin_sent)
				flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
			if (!nv && !flags)
				s = NULL;
			else
				flags |= NGTCP2_WRITE_STREAM_FLAG_MORE;
		}
		n = ngtcp2_conn_writev_stream(q->conn, &ps.path, NULL,
		                              q->burst + off, PKT_MAX, &consumed,
		                              flags, s ? s->id : -1, v,
		                              (size_t)nv, now_ns);
		if (s && consumed >= 0) {
			s->sent += (uint64_t)consumed;
			if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) &&
			    s->sent == s->base + s->len)
				s->fin_sent = 1;
		}
		if (n == NGTCP2_ERR_WRITE_MORE)
			continue;
		if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED ||
		    n == NGTCP2_ERR_STREAM_SHUT_WR ||
		    n == NGTCP2_ERR_STREAM_NOT_FOUND) {
			skip[s - q->streams] = 1;
			continue;
		}
		if (n < 0) {
			burst_flush(q, off, seg, now_ns);
			fail(q, (int)n, now_ns);
			return -1;
		}
		if (n == 0)
			break;
		sent++;
		if (s)
			q->next_stream = (size_t)(s - q->streams) + 1;
		burst_add(q, (size_t)n, &off, &seg, &npkts, now_ns);
	}
	burst_flush(q, off, seg, now_ns);
	return 0;
}

uint64_t quic_tick(struct quic *q, uint64_t now_ns)
{
	uint64_t expiry;
	int rc;

	if (!q->conn || q->state == QUIC_STATE_CLOSED)
		return UINT64_MAX;
	/* First the app's data, so that the credit it gives back and what
	 * it writes go out in this same pass. */
	rx_flush(q);
	if (q->state == QUIC_STATE_CLOSED)
		return UINT64_MAX;
	expiry = ngtcp2_conn_get_expiry(q->conn);
	if (expiry <= now_ns) {
		rc = ngtcp2_conn_handle_expiry(q->conn, now_ns);
		if (rc == NGTCP2_ERR_IDLE_CLOSE) {
			finish(q, "the peer stopped answering (QUIC idle timeout)");
			return UINT64_MAX;
		}
		if (rc) {
			fail(q, rc, now_ns);
			return UINT64_MAX;
		}
	}
	if (write_packets(q, now_ns))
		return UINT64_MAX;
	return ngtcp2_conn_get_expiry(q->conn);
}

int quic_export(struct quic *q, const char *label, uint8_t *out, size_t len)
{
	/* RFC 5705 as TLS 1.3 defines it (RFC 8446 7.5), with no context. */
	if (q->state != QUIC_STATE_READY ||
	    gnutls_prf_rfc5705(q->session, strlen(label), label, 0, NULL, len,
	                       (char *)out) < 0)
		return -1;
	return 0;
}
