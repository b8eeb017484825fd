/*
 * The client's TCP connection to its server: connect, read into the
 * framer, write with a bounded queue.  What a message means is the
 * client's; where it ends is stream_frame.c's.
 */
#include "server_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "log.h"
#include "tls_stream.h"

enum {
	CIPHER_READ = 16384 + 2048, /* a TLS record, with room (RFC 8446 5.2) */
};

struct server_conn {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	uv_connect_t connect;
	int tcp_inited;   /* tcp needs closing */
	int tcp_closed;   /* libuv has closed it */
	int owner_gone;   /* server_conn_free() was called: free on close */
	enum sconn_state state;
	uint64_t deadline_ms; /* of the connect; UINT64_MAX: none */
	struct sockaddr_storage addr;
	struct framer in;
	struct sconn_stats stats;
	/* TLS: its session, and the ciphertext buffer reads go to */
	int use_tls;
	struct tls_stream tls;
	gnutls_certificate_credentials_t cred;
	char host[TLS_STREAM_HOST_MAX + 1];
	uint8_t cipher[CIPHER_READ];
	uint8_t out[FRAME_MAX + 4];   /* a message being written, padded */
	sconn_message_fn *on_message;
	sconn_state_fn *on_state;
	void *ctx;
};

/* A write libuv could not finish at once: the rest, copied. */
struct sconn_write {
	uv_write_t req;
	struct server_conn *sc;
	uint8_t data[];
};

const char *server_conn_state_str(enum sconn_state s)
{
	switch (s) {
	case SCONN_IDLE: return "idle";
	case SCONN_CONNECTING: return "connecting";
	case SCONN_OPEN: return "open";
	case SCONN_CLOSED: return "closed";
	}
	return "?";
}

static void conn_release(struct server_conn *sc)
{
	tls_stream_free(&sc->tls);
	if (sc->cred)
		gnutls_certificate_free_credentials(sc->cred);
	free(sc);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct server_conn *sc = h->data;

	sc->tcp_closed = 1;
	if (sc->owner_gone)
		conn_release(sc);
}

/* Every state change goes through here, and is logged old -> new. */
static void set_state(struct server_conn *sc, enum sconn_state s,
                      const char *why)
{
	enum sconn_state old = sc->state;

	if (old == s || old == SCONN_CLOSED)
		return;
	log_debug("server connection: %s -> %s%s%s", server_conn_state_str(old),
	          server_conn_state_str(s), why ? ": " : "", why ? why : "");
	sc->state = s;
	if (s == SCONN_CLOSED) {
		sc->deadline_ms = UINT64_MAX;
		if (sc->tcp_inited && !uv_is_closing((uv_handle_t *)&sc->tcp))
			uv_close((uv_handle_t *)&sc->tcp, on_tcp_closed);
	}
	if (sc->on_state && !sc->owner_gone)
		sc->on_state(sc->ctx, old, s, why);
}

struct server_conn *server_conn_new(uv_loop_t *loop,
                                    sconn_message_fn *on_message,
                                    sconn_state_fn *on_state, void *ctx)
{
	struct server_conn *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->loop = loop;
	sc->on_message = on_message;
	sc->on_state = on_state;
	sc->ctx = ctx;
	sc->deadline_ms = UINT64_MAX;
	framer_init(&sc->in);
	return sc;
}

enum sconn_state server_conn_state(const struct server_conn *sc)
{
	return sc->state;
}

const struct sconn_stats *server_conn_stats(const struct server_conn *sc)
{
	return &sc->stats;
}

/* ---- reading ----------------------------------------------------------- */

/* Hand out every whole message held; broken framing closes. */
static void drain(struct server_conn *sc)
{
	const uint8_t *msg;
	enum frame_kind kind;
	size_t len;
	int rc;

	/* Bounded: each message takes at least 4 bytes of a FRAME_MAX buffer */
	for (int i = 0; i <= FRAME_MAX / 4 && sc->state == SCONN_OPEN; i++) {
		rc = framer_next(&sc->in, &msg, &len, &kind);
		if (rc < 0) {
			set_state(sc, SCONN_CLOSED,
			          "the server sent bytes that are neither STUN nor ChannelData, or a message over 4096 bytes");
			return;
		}
		if (rc == 0)
			return;
		sc->stats.rx_msgs++;
		sc->on_message(sc->ctx, kind, msg, len);
	}
}

void server_conn_feed(struct server_conn *sc, const uint8_t *buf, size_t len)
{
	if (sc->state == SCONN_IDLE && !sc->tcp_inited)
		sc->state = SCONN_OPEN; /* no socket: a test's */
	/* Bounded: each round takes at least one byte, or stops */
	while (len && sc->state == SCONN_OPEN) {
		size_t cap, n;
		uint8_t *p = framer_space(&sc->in, &cap);

		n = len < cap ? len : cap;
		if (!n)
			break;
		memcpy(p, buf, n);
		framer_wrote(&sc->in, n);
		buf += n;
		len -= n;
		drain(sc);
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct server_conn *sc = h->data;
	size_t cap;
	uint8_t *p = framer_space(&sc->in, &cap);

	(void)suggested;
	if (sc->use_tls)
		*buf = uv_buf_init((char *)sc->cipher, sizeof(sc->cipher));
	else
		*buf = uv_buf_init((char *)p, (unsigned)cap);
}

/* Ciphertext read: the handshake (then the connection is open), then
 * plaintext into the framer, drained as it fills. */
static void tls_read(struct server_conn *sc, size_t n)
{
	tls_stream_give(&sc->tls, sc->cipher, n);
	for (int i = 0; i < TLS_STREAM_ROUNDS_MAX; i++) {
		size_t cap;
		uint8_t *p = framer_space(&sc->in, &cap);
		ssize_t got = tls_stream_recv(&sc->tls, p, cap);

		if (got < 0) {
			set_state(sc, SCONN_CLOSED, sc->tls.reason);
			return;
		}
		if (sc->tls.ready && sc->state == SCONN_CONNECTING) {
			sc->deadline_ms = UINT64_MAX;
			set_state(sc, SCONN_OPEN, NULL);
		}
		if (!got || sc->state != SCONN_OPEN)
			return;
		framer_wrote(&sc->in, (size_t)got);
		drain(sc);
	}
	set_state(sc, SCONN_CLOSED, "TLS: too many records in one read");
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct server_conn *sc = s->data;

	(void)buf;
	if (nread == 0 || sc->state == SCONN_CLOSED ||
	    (sc->state != SCONN_OPEN && !sc->use_tls))
		return;
	if (nread < 0) {
		set_state(sc, SCONN_CLOSED,
		          nread == UV_EOF ? "the server closed the connection" :
		                            uv_strerror((int)nread));
		return;
	}
	if (sc->use_tls) {
		tls_read(sc, (size_t)nread);
		return;
	}
	framer_wrote(&sc->in, (size_t)nread);
	drain(sc);
}

/* ---- writing ----------------------------------------------------------- */

static void on_written(uv_write_t *req, int status)
{
	struct sconn_write *w = req->data;

	if (status < 0 && status != UV_ECANCELED)
		set_state(w->sc, SCONN_CLOSED, uv_strerror(status));
	free(w);
}

/* Bytes onto the socket: what it takes now, and the rest queued (copied).
 * 0, or -1 (closed).  Also TLS's push. */
static int raw_write(void *ctx, const uint8_t *buf, size_t len)
{
	struct server_conn *sc = ctx;
	uv_stream_t *s = (uv_stream_t *)&sc->tcp;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
	struct sconn_write *w;
	size_t done = 0;
	int n;

	if (sc->state == SCONN_CLOSED)
		return -1;
	if (!uv_stream_get_write_queue_size(s)) {
		n = uv_try_write(s, &b, 1);
		if (n < 0 && n != UV_EAGAIN) {
			set_state(sc, SCONN_CLOSED, uv_strerror(n));
			return -1;
		}
		done = n > 0 ? (size_t)n : 0;
	}
	if (done == len)
		return 0;
	if (!(w = malloc(sizeof(*w) + len - done))) {
		set_state(sc, SCONN_CLOSED, "out of memory");
		return -1;
	}
	w->sc = sc;
	w->req.data = w;
	memcpy(w->data, buf + done, len - done);
	b = uv_buf_init((char *)w->data, (unsigned)(len - done));
	if (uv_write(&w->req, s, &b, 1, on_written)) {
		free(w);
		set_state(sc, SCONN_CLOSED, "cannot write to the socket");
		return -1;
	}
	return 0;
}

int server_conn_send(struct server_conn *sc, const uint8_t *buf, size_t len)
{
	/* RFC 8656 12.5: ChannelData over a stream is padded to 4 bytes */
	size_t total = len && (buf[0] & 0xC0) == 0x40 ? frame_padded(len) : len;

	if (sc->state != SCONN_OPEN || len > FRAME_MAX)
		return -1;
	if (uv_stream_get_write_queue_size((uv_stream_t *)&sc->tcp) + total >
	    SCONN_WRITE_QUEUE_MAX) {
		sc->stats.tx_dropped++;
		return -1;
	}
	memcpy(sc->out, buf, len);
	memset(sc->out + len, 0, total - len);
	sc->stats.tx_msgs++;
	if (!sc->use_tls)
		return raw_write(sc, sc->out, total);
	if (tls_stream_send(&sc->tls, sc->out, total)) {
		set_state(sc, SCONN_CLOSED, sc->tls.reason[0] ? sc->tls.reason : "TLS write failed");
		return -1;
	}
	return 0;
}

/* ---- connecting -------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status)
{
	struct server_conn *sc = req->data;

	if (status == UV_ECANCELED || sc->state != SCONN_CONNECTING)
		return;
	if (status < 0) {
		set_state(sc, SCONN_CLOSED, uv_strerror(status));
		return;
	}
	uv_tcp_nodelay(&sc->tcp, 1);
	if (uv_read_start((uv_stream_t *)&sc->tcp, on_alloc, on_read)) {
		set_state(sc, SCONN_CLOSED, "cannot read from the socket");
		return;
	}
	if (!sc->use_tls) {
		sc->deadline_ms = UINT64_MAX;
		set_state(sc, SCONN_OPEN, NULL);
		return;
	}
	/* TLS: open once the handshake is done (tls_read), within the
	 * same deadline */
	if (tls_stream_client(&sc->tls, sc->cred, sc->host, raw_write, sc) ||
	    tls_stream_start(&sc->tls))
		set_state(sc, SCONN_CLOSED, sc->tls.reason);
}

static int conn_connect(struct server_conn *sc, const struct sockaddr *addr,
                        uint64_t now_ms)
{
	int rc;

	memcpy(&sc->addr, addr, addr_len(addr));
	if ((rc = uv_tcp_init(sc->loop, &sc->tcp))) {
		set_state(sc, SCONN_CLOSED, uv_strerror(rc));
		return rc;
	}
	sc->tcp_inited = 1;
	sc->tcp.data = sc;
	sc->connect.data = sc;
	sc->deadline_ms = now_ms + SCONN_CONNECT_MS;
	sc->state = SCONN_CONNECTING;
	log_debug("server connection: idle -> connecting%s",
	          sc->use_tls ? " (TLS)" : "");
	if ((rc = uv_tcp_connect(&sc->connect, &sc->tcp, addr, on_connect))) {
		set_state(sc, SCONN_CLOSED, uv_strerror(rc));
		return rc;
	}
	return 0;
}

int server_conn_open(struct server_conn *sc, const struct sockaddr *addr,
                     uint64_t now_ms)
{
	if (sc->state != SCONN_IDLE)
		return UV_EINVAL;
	return conn_connect(sc, addr, now_ms);
}

int server_conn_open_tls(struct server_conn *sc, const struct sockaddr *addr,
                         const char *host, const char *ca, uint64_t now_ms)
{
	char why[SCONN_REASON_MAX];

	if (sc->state != SCONN_IDLE)
		return UV_EINVAL;
	snprintf(sc->host, sizeof(sc->host), "%s", host);
	if (tls_cred_client(&sc->cred, ca, why, sizeof(why))) {
		sc->cred = NULL;
		set_state(sc, SCONN_CLOSED, why);
		return UV_EINVAL;
	}
	sc->use_tls = 1;
	return conn_connect(sc, addr, now_ms);
}

uint64_t server_conn_tick(struct server_conn *sc, uint64_t now_ms)
{
	if (sc->state == SCONN_CONNECTING && now_ms >= sc->deadline_ms)
		set_state(sc, SCONN_CLOSED,
		          sc->use_tls && sc->tls.s ?
		                  "the TLS handshake timed out" :
		                  "connect timed out");
	return sc->deadline_ms;
}

void server_conn_close(struct server_conn *sc, const char *why)
{
	set_state(sc, SCONN_CLOSED, why);
}

void server_conn_free(struct server_conn *sc)
{
	if (!sc)
		return;
	sc->owner_gone = 1;
	if (!sc->tcp_inited || sc->tcp_closed) {
		conn_release(sc);
		return;
	}
	if (!uv_is_closing((uv_handle_t *)&sc->tcp))
		uv_close((uv_handle_t *)&sc->tcp, on_tcp_closed);
}
