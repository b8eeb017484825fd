/*
 * `punch server`: UDP sockets on libuv's loop, answering STUN.
 *
 * libuv runs the loop, the signals and (later) the timers.  The datagrams
 * themselves are read and written in batches with recvmmsg/sendmmsg on the
 * raw descriptor, watched with uv_poll: libuv 1.44's uv_udp sends one
 * datagram per system call, which would halve the server's rate.
 *
 * -threads N (server_threads.c): N such loops, one per thread, each
 * with its own SO_REUSEPORT socket on every listen address, so the kernel
 * spreads clients over them by a hash of the 4-tuple and a client's
 * datagrams keep landing on one thread.  Each thread has its own Binding
 * services and its own TURN relay (an allocation, and its relayed socket,
 * stay with the thread that made it).  What they share is the rendezvous
 * (its registry, id bindings and pending PEER-INFOs), behind one lock;
 * thread 0 also runs TCP, TLS, the metrics, the signals and Redis.
 *
 * Its parts are in four files: server_internal.h says which.
 */
#include "server.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "binding.h"
#include "identity.h"
#include "log.h"
#include "metrics.h"
#include "punch_attr.h"
#include "registry_redis.h"
#include "rendezvous_server.h"
#include "server_internal.h"
#include "server_state.h"
#include "server_tcp.h"
#include "stun.h"
#include "turn_server.h"

static const char software[] = "punch " PUNCH_VERSION;

/* A UDP socket bound to addr.  With reuse (-threads), SO_REUSEPORT, so
 * that every thread's socket shares the address. */
static int socket_bind(const struct sockaddr_storage *addr, int reuse)
{
	int one = 1;
	int fd;

	fd = socket(addr->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ LISTEN_RCVBUF },
	           sizeof(int));
	/* Both 0.0.0.0:3478 and [::]:3478 by default: keep them apart. */
	if ((addr->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one))) ||
	    (reuse &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, (const struct sockaddr *)addr,
	         addr_len((const struct sockaddr *)addr))) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* first: the first thread's socket for this address, which checks that
 * nobody holds it (SO_REUSEPORT would let another server of the same user
 * share it, or a -listen given twice) and resolves port 0. */
static int socket_open(const struct sockaddr_storage *addr,
                       struct sockaddr_storage *bound, int reuse, int first)
{
	socklen_t len = sizeof(*bound);
	struct sockaddr_storage a = *addr;
	int fd;

	if (reuse && first) {
		fd = socket_bind(addr, 0);
		if (fd < 0)
			return -1;
		if (getsockname(fd, (struct sockaddr *)&a, &len)) {
			close(fd);
			return -1;
		}
		close(fd);
		len = sizeof(*bound);
	}
	fd = socket_bind(&a, reuse);
	if (fd < 0)
		return -1;
	if (getsockname(fd, (struct sockaddr *)bound, &len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static void queue_flush(struct server *srv, struct send_queue *q, int fd)
{
	unsigned done = 0;

	while (done < q->n) {
		int rc = sendmmsg(fd, q->msgs + done, q->n - done, 0);

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			/* A full send buffer or an unreachable peer: UDP may
			 * drop, and the client retransmits. */
			log_debug("sendmmsg: %s", strerror(errno));
			srv->stats.send_failed += q->n - done;
			break;
		}
		done += (unsigned)rc;
	}
	q->n = 0;
}

static struct server_socket *socket_for(struct server *srv,
                                        const struct binding_service *svc,
                                        int index)
{
	for (int i = 0; i < srv->n_socks; i++)
		if (srv->socks[i].svc == svc && srv->socks[i].index == index)
			return &srv->socks[i];
	return NULL;
}

static void handle_one(struct server *srv, struct server_socket *s,
                       const uint8_t *buf, size_t len, int truncated,
                       const struct sockaddr *from)
{
	struct send_queue *q;
	struct binding_reply reply;
	const char *why = NULL;
	char a[ADDR_STRLEN];
	int rc, slot, rdv;

	if (truncated) {
		srv->stats.malformed++;
		log_debug("drop %zu+ bytes from %s: too large", len,
		          addr_str(from, a, sizeof(a)));
		return;
	}
	/* RFC 8656 12: ChannelData (first bits 01) before STUN */
	if (srv->turn && (turn_is_channel_data(buf, len) ||
	                  turn_method_is_turn(stun_peek_method(buf, len)))) {
		server_handle_turn(srv, s, buf, len, from);
		return;
	}
	q = &srv->sq[s->index];
	slot = (int)q->n;
	rdv = punch_method_is_rendezvous(stun_peek_method(buf, len));
	if (rdv) {
		uv_mutex_lock(&srv->g->rdv_lock);
		rc = rdv_handle(srv->rdv, (int)(s - srv->socks), buf, len, from,
		                uv_now(&srv->loop), q->data[slot],
		                sizeof(q->data[slot]), &reply, &why);
		uv_mutex_unlock(&srv->g->rdv_lock);
		reply.sock = s->index;
	} else {
		rc = binding_handle(s->svc, s->index, buf, len, from,
		                    q->data[slot], sizeof(q->data[slot]), &reply,
		                    &why);
	}
	if (rc == BINDING_DROP) {
		srv->stats.malformed++;
		log_debug("drop %zu bytes from %s: %s", len,
		          addr_str(from, a, sizeof(a)), why);
		return;
	}
	if (rc == BINDING_IGNORE) {
		srv->stats.ignored++;
		return;
	}
	if (reply.sock != s->index) {
		/* CHANGE-REQUEST: move the reply to the other socket's queue */
		struct server_socket *o = socket_for(srv, s->svc, reply.sock);
		struct send_queue *oq = &srv->sq[reply.sock];

		if (!o)
			return;
		if (oq->n == BATCH)
			queue_flush(srv, oq, o->fd);
		memcpy(oq->data[oq->n], q->data[slot], reply.len);
		q = oq;
		slot = (int)oq->n;
	}
	/* The rendezvous has said what its error responses were. */
	log_debug("%s from %s, %zu bytes answered with %zu%s",
	          rdv ? "rendezvous request" : "request",
	          addr_str(from, a, sizeof(a)), len, reply.len,
	          reply.is_error && !rdv ? " (error response)" : "");
	q->to[slot] = reply.to;
	q->iov[slot] = (struct iovec){ q->data[slot], reply.len };
	q->msgs[slot].msg_hdr = (struct msghdr){
		.msg_name = &q->to[slot],
		.msg_namelen = addr_len((struct sockaddr *)&reply.to),
		.msg_iov = &q->iov[slot],
		.msg_iovlen = 1,
	};
	q->n++;
	metrics_count_reply(&srv->requests, stun_peek_method(buf, len),
	                    q->data[slot], reply.len, reply.is_error);
	if (!reply.is_error)
		srv->stats.answered++;
	else if (!rdv) /* the rendezvous counts its own: 438s, refusals */
		srv->stats.errors++;
}

static void flush_all(struct server *srv, const struct binding_service *svc)
{
	for (int i = 0; i < BINDING_SOCKETS_MAX; i++) {
		struct server_socket *o;

		if (!srv->sq[i].n)
			continue;
		o = socket_for(srv, svc, i);
		if (o)
			queue_flush(srv, &srv->sq[i], o->fd);
		else
			srv->sq[i].n = 0;
	}
}

/* Up to BATCH datagrams from fd into srv->rbuf, their sources into
 * srv->from: recvmmsg's count, or <= 0 when none is waiting. */
int server_recv_batch(struct server *srv, int fd)
{
	for (int i = 0; i < BATCH; i++) {
		srv->riov[i] = (struct iovec){ srv->rbuf[i], RECV_BUF };
		srv->rmsgs[i].msg_hdr = (struct msghdr){
			.msg_name = &srv->from[i],
			.msg_namelen = sizeof(srv->from[i]),
			.msg_iov = &srv->riov[i],
			.msg_iovlen = 1,
		};
	}
	return recvmmsg(fd, srv->rmsgs, BATCH, MSG_DONTWAIT, NULL);
}

static void read_batches(struct server *srv, struct server_socket *s);

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct server_socket *s = h->data;
	struct server *srv = s->srv;

	(void)events;
	if (status < 0)
		return;
	stats_hold(srv);
	read_batches(srv, s);
	stats_release(srv);
}

static void read_batches(struct server *srv, struct server_socket *s)
{
	for (int round = 0; round < BATCHES_PER_WAKE; round++) {
		int n;

		n = server_recv_batch(srv, s->fd);
		if (n <= 0)
			break;
		srv->received += (uint64_t)n;
		for (int i = 0; i < n; i++) {
			/* Queues hold at most BATCH; a full one goes out now. */
			if (srv->sq[s->index].n == BATCH)
				queue_flush(srv, &srv->sq[s->index], s->fd);
			handle_one(srv, s, srv->rbuf[i], srv->rmsgs[i].msg_len,
			           !!(srv->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC),
			           (struct sockaddr *)&srv->from[i]);
		}
		flush_all(srv, s->svc);
		server_out_queue_flush(srv, &srv->to_peers);
		if (n < BATCH)
			break;
	}
}

/* -tls-listen: the TCP protocol inside TLS, on an address of its own (443
 * in deployments).  0, or -1 having said why. */
static int tls_open(struct server *srv, const struct server_config *cfg)
{
	char why[512], a[ADDR_STRLEN];
	int rc;

	if (!cfg->has_tls)
		return 0;
	addr_str((const struct sockaddr *)&cfg->tls_listen, a, sizeof(a));
	if (tcp_server_set_tls(srv->tcp, cfg->tls_cert, cfg->tls_key, why,
	                       sizeof(why))) {
		log_error("%s", why);
		return -1;
	}
	rc = tcp_server_listen_tls(srv->tcp,
	                           (const struct sockaddr *)&cfg->tls_listen,
	                           &srv->svc[0], 0);
	if (rc) {
		log_error("cannot listen on %s over TLS: %s", a, uv_strerror(rc));
		return -1;
	}
	log_info("TLS on %s", a);
	return 0;
}

/* The TCP listener beside a UDP socket, on the same address and port
 * (RFC 5780 mode: on the primary only; CHANGE-REQUEST is UDP's).  0, or a
 * libuv error. */
static int add_tcp(struct server *srv, const struct sockaddr_storage *bound,
                   struct binding_service *svc, int index)
{
	if (!srv->tcp || srv->no_plain_tcp || index != 0)
		return 0;
	return tcp_server_listen(srv->tcp, (const struct sockaddr *)bound, svc,
	                         index);
}

int server_add_socket(struct server *srv, const struct sockaddr_storage *addr,
                      struct binding_service *svc, int index)
{
	struct server_socket *s = &srv->socks[srv->n_socks];
	struct sockaddr_storage bound;
	char a[ADDR_STRLEN];
	int rc = 0;

	/* Port 0: the kernel picks the UDP port, which TCP may hold
	 * elsewhere; then try another. */
	for (int tries = 0; tries < TCP_PORT_TRIES; tries++) {
		s->fd = socket_open(addr, &bound, srv->g->n > 1,
		                    srv->thread == 0);
		if (s->fd < 0) {
			log_error("cannot listen on %s: %s",
			          addr_str((const struct sockaddr *)addr, a,
			                   sizeof(a)),
			          strerror(errno));
			return -1;
		}
		rc = add_tcp(srv, &bound, svc, index);
		if (!rc)
			break;
		close(s->fd);
		s->fd = -1;
		if (rc != UV_EADDRINUSE || addr_port((const struct sockaddr *)addr))
			break;
	}
	if (rc) {
		log_error("cannot listen on %s over TCP: %s; or give -no-tcp",
		          addr_str((const struct sockaddr *)&bound, a, sizeof(a)),
		          uv_strerror(rc));
		return -1;
	}
	s->index = index;
	s->svc = svc;
	s->srv = srv;
	svc->local[index] = bound;
	svc->have[index] = 1;
	svc->software = software;
	srv->n_socks++;
	uv_poll_init_socket(&srv->loop, &s->poll, s->fd);
	s->poll.data = s;
	uv_poll_start(&s->poll, UV_READABLE, on_readable);
	return 0;
}

/* RFC 5780: sockets on primary/alternate IP x primary/alternate port. */
static int open_rfc5780(struct server *srv, const struct server_config *cfg)
{
	struct binding_service *svc = &srv->svc[0];
	const struct sockaddr *p = (const struct sockaddr *)&cfg->listen[0];
	const struct sockaddr *alt = (const struct sockaddr *)&cfg->alt;
	int change_ip = !addr_same_ip(p, alt);
	int change_port = addr_port(p) != addr_port(alt);

	svc->rfc5780 = 1;
	for (int i = 0; i < BINDING_SOCKETS_MAX; i++) {
		struct sockaddr_storage a;

		if ((i & 2) && !change_ip)
			continue;
		if ((i & 1) && !change_port)
			continue;
		memcpy(&a, (i & 2) ? alt : p, sizeof(a));
		addr_set_port((struct sockaddr *)&a,
		              addr_port((i & 1) ? alt : p));
		if (server_add_socket(srv, &a, svc, i))
			return -1;
	}
	return 0;
}

/* "127.0.0.1:3478 (alt 127.0.0.2:3479)" or "0.0.0.0:3478, [::]:3478" */
static void describe(const struct server *srv, const struct server_config *cfg,
                     char *buf, size_t len)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN];
	size_t off = 0;

	buf[0] = '\0';
	if (cfg->has_alt) {
		const struct binding_service *svc = &srv->svc[0];
		int alt = svc->have[3] ? 3 : svc->have[2] ? 2 :
		                                            1;

		snprintf(buf, len, "%s (alt %s)",
		         addr_str((const struct sockaddr *)&svc->local[0], a,
		                  sizeof(a)),
		         addr_str((const struct sockaddr *)&svc->local[alt], b,
		                  sizeof(b)));
		return;
	}
	for (int i = 0; i < srv->n_socks && off < len; i++)
		off += (size_t)snprintf(
			buf + off, len - off, "%s%s", i ? ", " : "",
			addr_str((const struct sockaddr *)&srv->svc[i].local[0], a,
		                 sizeof(a)));
}

/* The state directory: the server's key and the id bindings. */
static int state_open(struct server *srv, const struct server_config *cfg)
{
	char err[STATE_PATH_MAX + 128], fps[IDENTITY_FP_STRLEN];
	struct sign_key key;
	uint8_t fp[SIGN_FP_LEN];
	int created;
	long n;

	if (cfg->state_dir)
		snprintf(srv->state_dir, sizeof(srv->state_dir), "%s",
		         cfg->state_dir);
	else if (state_dir_default(srv->state_dir, sizeof(srv->state_dir))) {
		log_error("no state directory: set HOME or use -state DIR");
		return -1;
	}
	if (state_dir_make(srv->state_dir, err, sizeof(err)) ||
	    state_key_load(srv->state_dir, &key, &created, err, sizeof(err)) ||
	    (n = state_bindings_load(srv->state_dir, rdv_idbind(srv->rdv), err,
	                             sizeof(err))) < 0) {
		log_error("%s", err);
		return -1;
	}
	/* libsodium's secret key is the seed followed by the public key */
	rdv_server_set_key(srv->rdv, key.sk);
	if (sign_self_test(&key)) {
		log_error("the key in %s does not sign: cannot start", srv->state_dir);
		sign_key_wipe(&key);
		return -1;
	}
	sign_key_wipe(&key);
	if (cfg->id_ttl_s)
		rdv_server_set_id_ttl(srv->rdv, cfg->id_ttl_s);
	rdv_server_set_lifetime(srv->rdv, cfg->lifetime_s * 1000);
	rdv_server_set_wall(srv->rdv, (uint64_t)time(NULL) -
	                                      uv_now(&srv->loop) / 1000);
	/* Written once now: a state directory we cannot write is an error at
	 * start, not a warning days later. */
	if (state_bindings_save(srv->state_dir, rdv_idbind(srv->rdv), err,
	                        sizeof(err))) {
		log_error("%s", err);
		return -1;
	}
	idbind_clean(rdv_idbind(srv->rdv));
	srv->saved_ms = uv_now(&srv->loop);
	sign_fp(rdv_server_pk(srv->rdv), fp);
	identity_fp_str(fp, fps);
	log_debug("state in %s: %s key %s, %ld id bindings", srv->state_dir,
	          created ? "new" : "the", fps, n);
	return 0;
}

/* -registry: the shared registry in Redis, connected in the background. */
static int registry_open(struct server *srv, const struct server_config *cfg)
{
	char err[512];

	if (!cfg->has_registry)
		return 0;
	srv->redis = registry_redis_new(&srv->loop, &cfg->registry, srv->rdv,
	                                cfg->id_ttl_s ? cfg->id_ttl_s :
	                                                IDBIND_TTL_DEFAULT_S,
	                                err, sizeof(err));
	if (!srv->redis) {
		log_error("%s", err);
		return -1;
	}
	/* Redis's callbacks run on this thread, under the rendezvous' lock;
	 * other threads hand their registrations over (hop_submit()). */
	registry_redis_set_lock(srv->redis, &srv->g->rdv_lock);
	rdv_server_set_store(srv->rdv, &server_hop_redis_ops, srv->redis);
	return 0;
}

/* Thread 0: the sockets, TCP, TLS, the relay, the metrics. */
int server_open(struct server *srv, const struct server_config *cfg)
{
	char where[512], relay_line[256];

	if (state_open(srv, cfg) || registry_open(srv, cfg))
		return -1;
	srv->no_plain_tcp = cfg->no_tcp;
	if (!cfg->no_tcp || cfg->has_tls) {
		struct tcp_hooks hooks = { server_tcp_to_peer, server_tcp_flush, server_tcp_replied,
			                   srv };

		srv->tcp = tcp_server_new(&srv->loop, cfg->max_tcp, &hooks);
		if (!srv->tcp) {
			log_error("out of memory for %zu TCP connections",
			          cfg->max_tcp);
			return -1;
		}
		tcp_server_set_rdv(srv->tcp, srv->rdv, &srv->g->rdv_lock);
	}
	if (cfg->has_alt) {
		if (open_rfc5780(srv, cfg))
			return -1;
	} else {
		for (int i = 0; i < cfg->n_listen; i++)
			if (server_add_socket(srv, &cfg->listen[i], &srv->svc[i], 0))
				return -1;
	}
	if (cfg->auth_secret &&
	    server_turn_open(srv, cfg, relay_line, sizeof(relay_line)))
		return -1;
	if (tls_open(srv, cfg))
		return -1;
	describe(srv, cfg, where, sizeof(where));
	log_info("listening on %s", where);
	if (srv->turn)
		log_info("%s", relay_line);
	return server_metrics_open(srv, cfg);
}
