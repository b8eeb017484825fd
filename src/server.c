/*
 * `punch server`: UDP sockets on libuv's loop, answering STUN.
 *
 * libuv runs the loop, the signals and (later) the timers.  The datagrams
 * themselves are read and written in batches with recvmmsg/sendmmsg on the
 * raw descriptor, watched with uv_poll: libuv 1.44's uv_udp sends one
 * datagram per system call, which would halve the server's rate.
 *
 * -threads N (server_threads below): N such loops, one per thread, each
 * with its own SO_REUSEPORT socket on every listen address, so the kernel
 * spreads clients over them by a hash of the 4-tuple and a client's
 * datagrams keep landing on one thread.  Each thread has its own Binding
 * services and its own TURN relay (an allocation, and its relayed socket,
 * stay with the thread that made it).  What they share is the rendezvous
 * (its registry, id bindings and pending PEER-INFOs), behind one lock;
 * thread 0 also runs TCP, TLS, the metrics, the signals and Redis.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "binding.h"
#include "identity.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "punch_attr.h"
#include "registry_redis.h"
#include "rendezvous_server.h"
#include "server_state.h"
#include "server_tcp.h"
#include "stun.h"
#include "turn_server.h"

enum {
	BATCH = 64,          /* datagrams per recvmmsg/sendmmsg */
	BATCHES_PER_WAKE = 8, /* then let the other sockets have a turn */
	RECV_BUF = 2048,     /* larger datagrams are truncated: malformed */
	/* Socket receive buffers (the kernel caps them at rmem_max): room for
	 * a burst while the loop is busy elsewhere.  A relay's listen socket
	 * carries every client's data. */
	LISTEN_RCVBUF = 4 << 20,
	RELAY_RCVBUF = 512 << 10,
	TCP_PORT_TRIES = 8,  /* port 0: UDP ports tried for one free in TCP */
};

struct server;
struct hop;

/* What the threads share.  Lock order: a worker's stats_lock, then
 * rdv_lock, then inbox_lock; no thread takes one while it holds a later
 * one. */
struct server_group {
	struct server *w[SERVER_THREADS_MAX];
	int n;
	/* Held by whoever calls into the rendezvous (rdv_*) or its store. */
	uv_mutex_t rdv_lock;
	/* Thread 0's inbox: what only it may do, handed over by the others
	 * (hop_* below). */
	uv_mutex_t inbox_lock;
	struct hop *inbox;
	struct turn_group *turn_group; /* the relays' limits, shared */
	/* the metrics' sums, filled on thread 0 at each scrape */
	struct metrics_requests requests;
	struct turn_stats turn;
	struct rdv_stats rdv;
	uint64_t received[SERVER_THREADS_MAX];
};

/* The relayed socket of one TURN allocation (turn_server.h's slot). */
struct relay_socket {
	uv_poll_t poll;
	int fd;
	int slot;
	struct server *srv;
};

/* Datagrams waiting to go out of several sockets: consecutive ones from
 * the same socket leave in one sendmmsg.  The data is elsewhere (a
 * receive buffer, or `data` below), valid until the flush. */
struct out_queue {
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage to[BATCH];
	int fd[BATCH];
	unsigned n;
};

struct server_socket {
	uv_poll_t poll;
	int fd;
	int index;           /* RFC 5780 index, or the listen slot */
	struct binding_service *svc;
	struct server *srv;
};

/* Replies waiting to go out of one socket. */
struct send_queue {
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage to[BATCH];
	uint8_t data[BATCH][BINDING_RESPONSE_MAX];
	unsigned n;
};

struct server {
	uv_loop_t loop;
	uv_signal_t sigint, sigterm;
	struct server_socket socks[SERVER_LISTEN_MAX + BINDING_SOCKETS_MAX];
	int n_socks;
	/* One Binding service per listen address in plain mode; one shared
	 * service with four sockets in RFC 5780 mode. */
	struct binding_service svc[SERVER_LISTEN_MAX];
	struct server_stats stats;
	/* Receive buffers, reused for every batch. */
	struct mmsghdr rmsgs[BATCH];
	struct iovec riov[BATCH];
	struct sockaddr_storage from[BATCH];
	uint8_t rbuf[BATCH][RECV_BUF];
	struct send_queue sq[BINDING_SOCKETS_MAX];
	struct rdv_server *rdv;
	struct registry_redis *redis; /* -registry; NULL: in memory */
	uv_timer_t timer;   /* PEER-INFO retransmissions, registry expiry */
	struct turn_server *turn;       /* NULL: no relay */
	struct relay_socket **relays;   /* by allocation slot */
	size_t n_relays;
	struct out_queue to_peers;      /* ChannelData and Send, relayed */
	struct out_queue to_clients;    /* Data and ChannelData from peers */
	uint8_t client_data[BATCH][TURN_OUT_MAX];
	struct tcp_server *tcp;          /* NULL: -no-tcp without -tls-listen */
	int no_plain_tcp;                /* -no-tcp beside -tls-listen */
	char state_dir[STATE_PATH_MAX];
	uint64_t saved_ms;  /* when the bindings were last saved */
	/* -metrics (see "the metrics" below) */
	struct metrics_requests requests;
	struct metrics_http *metrics;
	uint64_t started_ms;
	/* -threads: this worker's place among them (server_group above) */
	struct server_group *g;
	int thread;
	uv_thread_t tid;
	int running;         /* tid was started */
	uv_async_t wake;     /* thread 0: its inbox; others: stop */
	/* Threads 1..N-1 hold it while they count, so that thread 0 can sum
	 * their counters for -metrics; thread 0 reads its own. */
	uv_mutex_t stats_lock;
	uint64_t received;   /* datagrams read from listen sockets */
};

/* The worker running on this thread, for rdv_send(): the rendezvous
 * answers from whichever thread called it. */
static _Thread_local struct server *current;

/* Counters of threads 1..N-1 are summed by thread 0 (metrics_fill()). */
static void stats_hold(struct server *srv)
{
	if (srv->thread != 0)
		uv_mutex_lock(&srv->stats_lock);
}

static void stats_release(struct server *srv)
{
	if (srv->thread != 0)
		uv_mutex_unlock(&srv->stats_lock);
}

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


/* ---- the TURN relay's sockets ---------------------------------------------- */

static void out_queue_flush(struct server *srv, struct out_queue *q)
{
	unsigned done = 0;

	while (done < q->n) {
		unsigned run = 1;
		int rc;

		while (done + run < q->n && q->fd[done + run] == q->fd[done])
			run++;
		rc = sendmmsg(q->fd[done], q->msgs + done, run, 0);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0) {
			/* UDP may drop: the peer's or the client's protocol
			 * recovers, as it would from a loss on the way. */
			log_debug("sendmmsg: %s", strerror(errno));
			srv->stats.send_failed += run;
			rc = (int)run;
		}
		done += (unsigned)rc;
	}
	q->n = 0;
}

static void out_queue_add(struct server *srv, struct out_queue *q, int fd,
                          const struct sockaddr *to, const uint8_t *data,
                          size_t len)
{
	unsigned i;

	if (q->n == BATCH)
		out_queue_flush(srv, q);
	i = q->n++;
	q->fd[i] = fd;
	memcpy(&q->to[i], to, addr_len(to));
	q->iov[i] = (struct iovec){ (void *)data, len };
	q->msgs[i].msg_hdr = (struct msghdr){
		.msg_name = &q->to[i],
		.msg_namelen = addr_len(to),
		.msg_iov = &q->iov[i],
		.msg_iovlen = 1,
	};
}

/* Datagrams from peers to an allocation's relayed socket. */
static void relay_batches(struct server *srv, struct relay_socket *r);

static void on_relay_readable(uv_poll_t *h, int status, int events)
{
	struct relay_socket *r = h->data;
	struct server *srv = r->srv;

	(void)events;
	if (status < 0)
		return;
	stats_hold(srv);
	relay_batches(srv, r);
	stats_release(srv);
}

static void relay_batches(struct server *srv, struct relay_socket *r)
{
	uint64_t now = uv_now(&srv->loop);

	for (int round = 0; round < BATCHES_PER_WAKE; round++) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			srv->riov[i] = (struct iovec){ srv->rbuf[i], RECV_BUF };
			srv->rmsgs[i].msg_hdr = (struct msghdr){
				.msg_name = &srv->from[i],
				.msg_namelen = sizeof(srv->from[i]),
				.msg_iov = &srv->riov[i],
				.msg_iovlen = 1,
			};
		}
		n = recvmmsg(r->fd, srv->rmsgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			struct out_queue *q = &srv->to_clients;
			struct turn_out o;
			int rc;

			if (q->n == BATCH)
				out_queue_flush(srv, q);
			if (srv->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
				srv->stats.malformed++;
				continue;
			}
			rc = turn_handle_peer(srv->turn, r->slot, srv->rbuf[i],
			                      srv->rmsgs[i].msg_len,
			                      (struct sockaddr *)&srv->from[i], now,
			                      srv->client_data[q->n],
			                      sizeof(srv->client_data[q->n]), &o);
			if (rc == TURN_TO_CLIENT && tcp_sock_is(o.sock))
				tcp_server_send(srv->tcp, o.sock, o.data, o.len);
			else if (rc == TURN_TO_CLIENT && o.sock < srv->n_socks)
				out_queue_add(srv, q, srv->socks[o.sock].fd,
				              (struct sockaddr *)&o.to, o.data, o.len);
		}
		out_queue_flush(srv, &srv->to_clients);
		if (n < BATCH)
			break;
	}
}

/* turn_ops: bind the relayed socket of an allocation, 0 or -1 (port taken:
 * turn_server.c tries another). */
static int relay_open(void *ctx, int slot, const struct sockaddr *addr)
{
	struct server *srv = ctx;
	struct relay_socket *r;
	int fd;

	if (slot < 0 || (size_t)slot >= srv->n_relays || srv->relays[slot])
		return -1;
	fd = socket(addr->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	            0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ RELAY_RCVBUF },
	           sizeof(int));
	if (bind(fd, addr, addr_len(addr)) || !(r = calloc(1, sizeof(*r)))) {
		close(fd);
		return -1;
	}
	r->fd = fd;
	r->slot = slot;
	r->srv = srv;
	uv_poll_init_socket(&srv->loop, &r->poll, fd);
	r->poll.data = r;
	uv_poll_start(&r->poll, UV_READABLE, on_relay_readable);
	srv->relays[slot] = r;
	return 0;
}

static void relay_closed(uv_handle_t *h)
{
	struct relay_socket *r = h->data;

	close(r->fd);
	free(r);
}

static void relay_close(void *ctx, int slot)
{
	struct server *srv = ctx;
	struct relay_socket *r;

	if (slot < 0 || (size_t)slot >= srv->n_relays || !srv->relays[slot])
		return;
	r = srv->relays[slot];
	srv->relays[slot] = NULL;
	/* A datagram already queued to a peer through this socket: send it
	 * before the descriptor goes. */
	out_queue_flush(srv, &srv->to_peers);
	uv_poll_stop(&r->poll);
	uv_close((uv_handle_t *)&r->poll, relay_closed);
}

/* tcp_hooks.replied: a response over TCP, counted as UDP's are. */
static void tcp_replied(void *ctx, const uint8_t *req, size_t req_len,
                        const uint8_t *resp, size_t resp_len, int is_error)
{
	struct server *srv = ctx;

	metrics_count_reply(&srv->requests, stun_peek_method(req, req_len),
	                    resp, resp_len, is_error);
}

/* tcp_hooks.to_peer: a client's datagram over TCP, for its relayed
 * socket. */
static void tcp_to_peer(void *ctx, const struct turn_out *o)
{
	struct server *srv = ctx;
	struct relay_socket *r;

	if (o->slot < 0 || (size_t)o->slot >= srv->n_relays ||
	    !(r = srv->relays[o->slot]))
		return;
	out_queue_add(srv, &srv->to_peers, r->fd, (const struct sockaddr *)&o->to,
	              o->data, o->len);
}

static void tcp_flush(void *ctx)
{
	struct server *srv = ctx;

	out_queue_flush(srv, &srv->to_peers);
}

/* turn_ops.minted: the rendezvous knows its registrations. */
static int relay_minted(void *ctx, const char *username,
                        const struct sockaddr *peer)
{
	struct server *srv = ctx;
	int rc;

	uv_mutex_lock(&srv->g->rdv_lock);
	rc = rdv_minted_check(srv->rdv, username, peer);
	uv_mutex_unlock(&srv->g->rdv_lock);
	return rc;
}

/* A TURN datagram from a client: the response joins the listen socket's
 * queue, relayed data the queue to peers. */
static void handle_turn(struct server *srv, struct server_socket *s,
                        const uint8_t *buf, size_t len,
                        const struct sockaddr *from)
{
	struct send_queue *q = &srv->sq[s->index];
	struct turn_out o;
	int rc;

	rc = turn_handle_client(srv->turn, (int)(s - srv->socks), buf, len,
	                        from, uv_now(&srv->loop), q->data[q->n],
	                        sizeof(q->data[q->n]), &o);
	if (rc == TURN_TO_PEER) {
		struct relay_socket *r = srv->relays[o.slot];

		if (srv->to_peers.n == BATCH)
			out_queue_flush(srv, &srv->to_peers);
		if (r)
			out_queue_add(srv, &srv->to_peers, r->fd,
			              (struct sockaddr *)&o.to, o.data, o.len);
		return;
	}
	if (rc != TURN_TO_CLIENT)
		return;
	metrics_count_reply(&srv->requests, stun_peek_method(buf, len),
	                    q->data[q->n], o.len, o.is_error);
	q->to[q->n] = o.to;
	q->iov[q->n] = (struct iovec){ q->data[q->n], o.len };
	q->msgs[q->n].msg_hdr = (struct msghdr){
		.msg_name = &q->to[q->n],
		.msg_namelen = addr_len((struct sockaddr *)&o.to),
		.msg_iov = &q->iov[q->n],
		.msg_iovlen = 1,
	};
	q->n++;
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
		handle_turn(srv, s, buf, len, from);
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

		for (int i = 0; i < BATCH; i++) {
			srv->riov[i] = (struct iovec){ srv->rbuf[i], RECV_BUF };
			srv->rmsgs[i].msg_hdr = (struct msghdr){
				.msg_name = &srv->from[i],
				.msg_namelen = sizeof(srv->from[i]),
				.msg_iov = &srv->riov[i],
				.msg_iovlen = 1,
			};
		}
		n = recvmmsg(s->fd, srv->rmsgs, BATCH, MSG_DONTWAIT, NULL);
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
		out_queue_flush(srv, &srv->to_peers);
		if (n < BATCH)
			break;
	}
}

/* ---- between threads ----------------------------------------------------- */

/* What a thread hands to thread 0 (its inbox, drained by on_inbox()):
 * bytes for a TCP connection, all of which are thread 0's, and Redis's
 * work, whose connection lives on thread 0's loop. */
enum hop_kind {
	HOP_TCP_SEND,
	HOP_SUBMIT,
	HOP_RELEASE,
};

struct hop {
	struct hop *next;
	enum hop_kind kind;
	int sock;
	struct sockaddr_storage to;
	struct reg_job job;              /* HOP_SUBMIT; msg points at data */
	char id[PUNCH_ID_MAX + 1];       /* HOP_RELEASE */
	uint8_t fp[PUNCH_KEY_FP_LEN];
	uint64_t now_ms;
	size_t len;
	uint8_t data[];
};

static struct hop *hop_new(enum hop_kind kind, size_t len)
{
	struct hop *h = calloc(1, sizeof(*h) + len);

	if (h) {
		h->kind = kind;
		h->len = len;
	}
	return h;
}

/* Hand h to thread 0.  The list is LIFO; on_inbox() turns it round. */
static void hop_post(struct server_group *g, struct hop *h)
{
	uv_mutex_lock(&g->inbox_lock);
	h->next = g->inbox;
	g->inbox = h;
	uv_mutex_unlock(&g->inbox_lock);
	uv_async_send(&g->w[0]->wake);
}

/* Take thread 0's inbox, oldest first. */
static struct hop *hop_take(struct server_group *g)
{
	struct hop *h, *rev = NULL;

	uv_mutex_lock(&g->inbox_lock);
	h = g->inbox;
	g->inbox = NULL;
	uv_mutex_unlock(&g->inbox_lock);
	while (h) {
		struct hop *next = h->next;

		h->next = rev;
		rev = h;
		h = next;
	}
	return rev;
}

/* reg_store_ops over Redis for every thread: thread 0 calls Redis's own;
 * the others hand a copy to thread 0, which answers later (job->out
 * NULL: by rdv_send). */
static void hop_submit(void *store, struct reg_job *job)
{
	struct server *srv = current;
	struct hop *h;

	if (!srv || srv->thread == 0) {
		registry_redis_ops.submit(store, job);
		return;
	}
	/* Out of memory: no answer, and the client sends again. */
	if (!(h = hop_new(HOP_SUBMIT, job->msg_len)))
		return;
	h->job = *job;
	memcpy(h->data, job->msg, job->msg_len);
	h->job.msg = h->data;
	h->job.out = NULL;
	h->job.reply = NULL;
	hop_post(srv->g, h);
}

static void hop_release(void *store, const char *id,
                        const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_ms)
{
	struct server *srv = current;
	struct hop *h;

	if (!srv || srv->thread == 0) {
		registry_redis_ops.release(store, id, fp, now_ms);
		return;
	}
	if (!(h = hop_new(HOP_RELEASE, 0)))
		return;
	snprintf(h->id, sizeof(h->id), "%s", id);
	memcpy(h->fp, fp, sizeof(h->fp));
	h->now_ms = now_ms;
	hop_post(srv->g, h);
}

static const struct reg_store_ops hop_redis_ops = {
	.name = "redis",
	.submit = hop_submit,
	.release = hop_release,
};

/* Thread 0's wake: what the others handed over. */
static void on_inbox(uv_async_t *a)
{
	struct server *srv = a->data;
	struct hop *h = hop_take(srv->g);

	while (h) {
		struct hop *next = h->next;

		if (h->kind == HOP_TCP_SEND && srv->tcp) {
			tcp_server_send_to(srv->tcp, h->sock,
			                   (const struct sockaddr *)&h->to,
			                   h->data, h->len);
		} else if (h->kind != HOP_TCP_SEND && srv->redis) {
			uv_mutex_lock(&srv->g->rdv_lock);
			if (h->kind == HOP_SUBMIT)
				registry_redis_ops.submit(srv->redis, &h->job);
			else
				registry_redis_ops.release(srv->redis, h->id,
				                           h->fp, h->now_ms);
			uv_mutex_unlock(&srv->g->rdv_lock);
		}
		free(h);
		h = next;
	}
}

/* rdv_send_fn: PEER-INFO requests go out at once, one at a time; so do
 * answers to REGISTERs that the shared registry decided later (-registry),
 * which are counted here as handle_one() counts the others.  Called with
 * the rendezvous locked, on any thread: a UDP datagram leaves from this
 * thread's socket of the same index, bound to the same address as the
 * one the client used (its answer may land on another thread, which
 * matches it under the same lock); TCP is thread 0's. */
static void rdv_send(void *ctx, int sock, const struct sockaddr *to,
                     const uint8_t *buf, size_t len)
{
	struct server *srv = current ? current : ctx;
	int type = len >= 2 ? buf[0] << 8 | buf[1] : 0;

	if (tcp_sock_is(sock) && srv->thread != 0) {
		struct hop *h = hop_new(HOP_TCP_SEND, len);

		if (h) {
			h->sock = sock;
			memcpy(&h->to, to, addr_len(to));
			memcpy(h->data, buf, len);
			hop_post(srv->g, h);
		}
		return;
	}
	if (srv->tcp && tcp_sock_is(sock)) {
		tcp_server_send_to(srv->tcp, sock, to, buf, len);
		return;
	}
	if (sock < 0 || sock >= srv->n_socks)
		return;
	if (type & 0x0100) { /* a response (RFC 8489 5: class bit C1) */
		int is_error = (type & 0x0110) == 0x0110;

		metrics_count_reply(&srv->requests, stun_peek_method(buf, len),
		                    buf, len, is_error);
		if (!is_error)
			srv->stats.answered++;
	}
	if (sendto(srv->socks[sock].fd, buf, len, 0, to, addr_len(to)) < 0) {
		log_debug("sendto: %s", strerror(errno));
		srv->stats.send_failed++;
	}
}

/* Save the id bindings if they changed, at most every
 * STATE_SAVE_EVERY_MS unless forced (at shutdown). */
static void bindings_save(struct server *srv, uint64_t now, int force)
{
	struct idbind *ids = rdv_idbind(srv->rdv);
	char err[STATE_PATH_MAX + 128];

	if (!idbind_dirty(ids) ||
	    (!force && now - srv->saved_ms < STATE_SAVE_EVERY_MS))
		return;
	srv->saved_ms = now;
	if (state_bindings_save(srv->state_dir, ids, err, sizeof(err)))
		log_warn("%s", err);
	else
		idbind_clean(ids);
}

/* Thread 0 keeps the rendezvous' deadlines (for every thread: the
 * registry is one); each thread keeps its relay's. */
static void on_timer(uv_timer_t *t)
{
	struct server *srv = t->data;
	uint64_t now = uv_now(&srv->loop);
	uint64_t next = now + TURN_TICK_MAX_MS;

	if (srv->thread == 0) {
		uv_mutex_lock(&srv->g->rdv_lock);
		next = rdv_tick(srv->rdv, now);
		bindings_save(srv, now, 0);
		uv_mutex_unlock(&srv->g->rdv_lock);
	}
	stats_hold(srv);
	if (srv->turn) {
		uint64_t relay_next = turn_tick(srv->turn, now);

		next = relay_next < next ? relay_next : next;
	}
	stats_release(srv);
	uv_timer_start(&srv->timer, on_timer, next > now ? next - now : 1, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct server *srv = h->data;

	log_debug("signal %d: stopping", signum);
	uv_stop(&srv->loop);
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

static int add_socket(struct server *srv, const struct sockaddr_storage *addr,
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
		if (add_socket(srv, &a, svc, i))
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

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

static void server_close(struct server *srv)
{
	/* First: what still waits for Redis is answered, on open sockets */
	if (srv->thread == 0)
		registry_redis_free(srv->redis);
	for (int i = 0; i < srv->n_socks; i++) {
		uv_close((uv_handle_t *)&srv->socks[i].poll, close_cb);
	}
	/* Before the relay: closing a connection deletes its allocation */
	tcp_server_close(srv->tcp);
	metrics_http_close(srv->metrics);
	turn_server_free(srv->turn); /* closes the relayed sockets */
	free(srv->relays);
	uv_close((uv_handle_t *)&srv->timer, close_cb);
	uv_close((uv_handle_t *)&srv->wake, close_cb);
	if (srv->thread == 0) {
		uv_close((uv_handle_t *)&srv->sigint, close_cb);
		uv_close((uv_handle_t *)&srv->sigterm, close_cb);
	}
	uv_run(&srv->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < srv->n_socks; i++)
		close(srv->socks[i].fd);
	uv_loop_close(&srv->loop);
	tcp_server_free(srv->tcp);
	uv_mutex_destroy(&srv->stats_lock);
	if (srv->thread == 0) {
		/* The other threads are gone: what they handed over last
		 * has nobody to do it. */
		for (struct hop *h = hop_take(srv->g), *next; h; h = next) {
			next = h->next;
			free(h);
		}
		rdv_server_free(srv->rdv);
	}
}

/* Sum the counters of every thread: dst += src, both structs of uint64_t
 * alone. */
static void add_u64s(void *dst, const void *src, size_t size)
{
	uint64_t *d = dst;
	const uint64_t *from = src;

	for (size_t i = 0; i < size / sizeof(uint64_t); i++)
		d[i] += from[i];
}

_Static_assert(sizeof(struct turn_stats) % sizeof(uint64_t) == 0,
               "turn_stats holds uint64_t alone");
_Static_assert(sizeof(struct server_stats) % sizeof(uint64_t) == 0,
               "server_stats holds uint64_t alone");
_Static_assert(sizeof(struct metrics_requests) % sizeof(uint64_t) == 0,
               "metrics_requests holds uint64_t alone");

/* On thread 0 (or once the others are gone): every thread's counters,
 * and each thread's received datagrams in g->received. */
static void group_sum(struct server_group *g, struct server_stats *st,
                      struct turn_stats *ts, struct metrics_requests *rq,
                      uint64_t *allocs)
{
	memset(st, 0, sizeof(*st));
	memset(ts, 0, sizeof(*ts));
	memset(rq, 0, sizeof(*rq));
	*allocs = 0;
	for (int i = 0; i < g->n; i++) {
		struct server *w = g->w[i];

		if (!w)
			continue;
		if (i)
			uv_mutex_lock(&w->stats_lock);
		add_u64s(st, &w->stats, sizeof(*st));
		add_u64s(rq, &w->requests, sizeof(*rq));
		if (w->turn) {
			add_u64s(ts, turn_stats(w->turn), sizeof(*ts));
			*allocs += turn_alloc_count(w->turn);
		}
		g->received[i] = w->received;
		if (i)
			uv_mutex_unlock(&w->stats_lock);
	}
}

/* The stop line keeps apart what is normal (answers, the 438 challenge
 * that precedes every registration), what the server refused and why,
 * requests that were wrong (errors), and datagrams that were not STUN. */
static void server_log_stop(struct server *srv)
{
	const struct rdv_stats *rs = rdv_stats(srv->rdv);
	struct server_group *g = srv->g;
	struct server_stats sum;
	uint64_t allocs;
	char why[256] = "";
	size_t off = 0;

	for (int i = 0; i < RDV_REFUSED_N && off < sizeof(why); i++)
		if (rs->refused[i])
			off += (size_t)snprintf(why + off, sizeof(why) - off,
			                        "%s%s=%llu", off ? " " : " (",
			                        rdv_refusal_name(i),
			                        (unsigned long long)rs->refused[i]);
	group_sum(g, &sum, &g->turn, &g->requests, &allocs);
	if (off && off < sizeof(why) - 1)
		snprintf(why + off, sizeof(why) - off, ")");
	log_info("stopped: answered=%llu challenges=%llu refused=%llu%s "
	         "errors=%llu malformed=%llu",
	         (unsigned long long)sum.answered,
	         (unsigned long long)rs->challenged,
	         (unsigned long long)rs->rejected, why,
	         (unsigned long long)(sum.errors + rs->bad_method),
	         (unsigned long long)sum.malformed);
	if (srv->turn) {
		const struct turn_stats *ts = &g->turn;

		log_info("relay stopped: allocated=%llu expired=%llu challenges=%llu stale=%llu quota=%llu forbidden=%llu refused=%llu relayed=%llu/%llu no_permission=%llu over_rate=%llu malformed_channel=%llu deleted=%llu closed=%llu",
		         (unsigned long long)ts->allocated,
		         (unsigned long long)ts->expired,
		         (unsigned long long)ts->challenged,
		         (unsigned long long)ts->stale,
		         (unsigned long long)ts->quota,
		         (unsigned long long)ts->forbidden,
		         (unsigned long long)ts->refused,
		         (unsigned long long)ts->relayed_out,
		         (unsigned long long)ts->relayed_in,
		         (unsigned long long)ts->no_permission,
		         (unsigned long long)ts->over_rate,
		         (unsigned long long)ts->malformed_channel,
		         (unsigned long long)ts->deleted,
		         (unsigned long long)ts->closed);
	}
	/* Only when TCP was used: UDP-only runs keep their two lines */
	if (srv->tcp && tcp_server_stats(srv->tcp)->accepted +
	                        tcp_server_stats(srv->tcp)->over_cap) {
		const struct tcp_stats *cs = tcp_server_stats(srv->tcp);

		log_info("tcp stopped: connections=%llu over_cap=%llu idle=%llu malformed=%llu answered=%llu ignored=%llu dropped=%llu write_failed=%llu",
		         (unsigned long long)cs->accepted,
		         (unsigned long long)cs->over_cap,
		         (unsigned long long)cs->idle,
		         (unsigned long long)cs->malformed,
		         (unsigned long long)cs->answered,
		         (unsigned long long)cs->ignored,
		         (unsigned long long)cs->dropped,
		         (unsigned long long)cs->write_failed);
	}
	log_debug("stopped: registered=%llu refreshed=%llu introduced=%llu "
	          "expired=%llu peer_info_acked=%llu peer_info_gave_up=%llu "
	          "ignored=%llu send_failed=%llu",
	          (unsigned long long)rs->registered,
	          (unsigned long long)rs->refreshed,
	          (unsigned long long)rs->introduced,
	          (unsigned long long)rs->expired,
	          (unsigned long long)rs->acked,
	          (unsigned long long)rs->gave_up,
	          (unsigned long long)sum.ignored,
	          (unsigned long long)sum.send_failed);
}


/* The relayed addresses of each family: -relay-ip where given, else the
 * listen address when it is a specific one.  The relayed sockets bind to
 * the listen address (which may be a wildcard), so that -relay-ip can be
 * a public address the host does not hold (a 1:1 NAT in front of it). */
static void relay_addresses(const struct server *srv,
                            const struct server_config *cfg,
                            struct turn_config *tc)
{
	for (int i = srv->n_socks - 1; i >= 0; i--) {
		const struct sockaddr_storage *l = &srv->socks[i].svc->local[srv->socks[i].index];
		int v6 = l->ss_family == AF_INET6;
		struct sockaddr_storage *bind = v6 ? &tc->bind6 : &tc->bind4;
		struct sockaddr_storage *adv = v6 ? &tc->relay6 : &tc->relay4;

		*bind = *l;
		addr_set_port((struct sockaddr *)bind, 0);
		if (cfg->relay_ip.ss_family == l->ss_family)
			*adv = cfg->relay_ip;
		else if (!addr_is_any((const struct sockaddr *)l))
			*adv = *bind;
		else
			memset(adv, 0, sizeof(*adv));
	}
}

/* Start the relay; its start line goes in line, for after the listen
 * line. */
static int turn_open(struct server *srv, const struct server_config *cfg,
                     char *line, size_t line_len)
{
	static const char sw[] = "punch " PUNCH_VERSION;
	struct turn_config tc = {
		.secret = cfg->auth_secret,
		.secret_len = cfg->auth_secret_len,
		.realm = cfg->realm,
		.software = sw,
		.port_lo = cfg->relay_lo ? cfg->relay_lo : SERVER_RELAY_LO,
		.port_hi = cfg->relay_hi ? cfg->relay_hi : SERVER_RELAY_HI,
		.max_allocs = cfg->max_allocs ? cfg->max_allocs :
		                                TURN_ALLOCS_DEFAULT,
		.max_per_prefix = cfg->max_per_prefix,
		.relay_bps = cfg->relay_bps,
		.allow_private = cfg->relay_allow_private,
	};
	struct turn_ops ops = { relay_open, relay_close, relay_minted, srv };
	char a[ADDR_STRLEN] = "", b[ADDR_STRLEN] = "";

	relay_addresses(srv, cfg, &tc);
	if (!tc.relay4.ss_family && !tc.relay6.ss_family) {
		log_error("the relay needs an address to advertise: give -relay-ip ADDR (or -listen with a specific address)");
		return -1;
	}
	srv->n_relays = tc.max_allocs;
	srv->relays = calloc(srv->n_relays, sizeof(*srv->relays));
	srv->turn = srv->relays ? turn_server_new(&tc, &ops) : NULL;
	if (srv->turn && srv->g->turn_group &&
	    turn_server_join(srv->turn, srv->g->turn_group)) {
		turn_server_free(srv->turn);
		srv->turn = NULL;
	}
	if (!srv->turn) {
		log_error("cannot start the relay: out of memory");
		return -1;
	}
	if (srv->tcp)
		tcp_server_set_turn(srv->tcp, srv->turn);
	/* Each signed registration gets relay credentials of its own */
	rdv_server_set_relay_secret(srv->rdv, cfg->auth_secret,
	                            cfg->auth_secret_len);
	turn_server_set_wall(srv->turn, (uint64_t)time(NULL) -
	                                        uv_now(&srv->loop) / 1000);
	if (tc.relay4.ss_family)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&tc.relay4)->sin_addr,
		          a, sizeof(a));
	if (tc.relay6.ss_family)
		inet_ntop(AF_INET6,
		          &((struct sockaddr_in6 *)&tc.relay6)->sin6_addr, b,
		          sizeof(b));
	snprintf(line, line_len, "relay at %s%s%s, ports %u-%u; up to %zu allocations",
	         a, *a && *b ? " and " : "", b, tc.port_lo, tc.port_hi,
	         tc.max_allocs);
	return 0;
}

/* ---- the metrics ---------------------------------------------------------- */

/* metrics_fill_fn: on the loop's thread (metrics_http.h), so the counters
 * are read where they are kept. */
static void metrics_fill(void *ctx, struct metrics_snapshot *s)
{
	struct server *srv = ctx;
	struct server_group *g = srv->g;
	struct server_stats st;
	uint64_t allocs;

	group_sum(g, &st, &g->turn, &g->requests, &allocs);
	uv_mutex_lock(&g->rdv_lock);
	g->rdv = *rdv_stats(srv->rdv);
	s->registrations = registry_count(rdv_registry(srv->rdv));
	uv_mutex_unlock(&g->rdv_lock);
	s->requests = &g->requests;
	s->rdv = &g->rdv;
	s->turn = srv->turn ? &g->turn : NULL;
	s->malformed = st.malformed;
	s->ignored = st.ignored;
	s->send_failed = st.send_failed;
	s->allocations = allocs;
	s->redis = srv->redis ? registry_redis_stats(srv->redis) : NULL;
	s->uptime_s = (uv_now(&srv->loop) - srv->started_ms) / 1000;
	s->version = PUNCH_VERSION;
	s->thread_received = g->received;
	s->n_threads = (size_t)g->n;
}

static int metrics_open(struct server *srv, const struct server_config *cfg)
{
	char err[256], a[ADDR_STRLEN];

	srv->started_ms = uv_now(&srv->loop);
	if (!cfg->has_metrics)
		return 0;
	srv->metrics = metrics_http_start(
		&srv->loop, (const struct sockaddr *)&cfg->metrics,
		metrics_fill, srv, err, sizeof(err));
	if (!srv->metrics) {
		log_error("%s", err);
		return -1;
	}
	log_info("metrics on http://%s/metrics",
	         addr_str(metrics_http_addr(srv->metrics), a, sizeof(a)));
	return 0;
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
	rdv_server_set_store(srv->rdv, &hop_redis_ops, srv->redis);
	return 0;
}

/* ---- the threads ---------------------------------------------------------- */

static void on_stop(uv_async_t *a)
{
	struct server *w = a->data;

	uv_stop(&w->loop);
}

/* A worker's loop and the handles every thread has. */
static void worker_init(struct server *w, struct server_group *g, int thread)
{
	uv_loop_init(&w->loop);
	uv_timer_init(&w->loop, &w->timer);
	w->timer.data = w;
	uv_async_init(&w->loop, &w->wake, thread ? on_stop : on_inbox);
	w->wake.data = w;
	uv_mutex_init(&w->stats_lock);
	w->g = g;
	w->thread = thread;
	g->w[thread] = w;
}

static void worker_main(void *arg)
{
	struct server *w = arg;

	current = w;
	uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Threads 1..n-1: each opens the sockets thread 0 has, index for index
 * (a socket index names the same address on every thread: rdv_send()),
 * and a relay of its own.  0, or -1 having said why. */
static int workers_open(struct server_group *g, const struct server_config *cfg)
{
	const struct server *w0 = g->w[0];
	char line[256];

	for (int k = 1; k < g->n; k++) {
		struct server *w = calloc(1, sizeof(*w));

		if (!w) {
			log_error("out of memory for thread %d", k);
			return -1;
		}
		worker_init(w, g, k);
		w->rdv = w0->rdv;
		memcpy(w->svc, w0->svc, sizeof(w->svc));
		for (int i = 0; i < w0->n_socks; i++) {
			const struct server_socket *s0 = &w0->socks[i];

			if (add_socket(w, &s0->svc->local[s0->index],
			               &w->svc[s0->svc - w0->svc], s0->index))
				return -1;
		}
		if (cfg->auth_secret && turn_open(w, cfg, line, sizeof(line)))
			return -1;
		uv_timer_start(&w->timer, on_timer, 1000, 0);
	}
	return 0;
}

static int workers_start(struct server_group *g)
{
	for (int k = 1; k < g->n; k++) {
		int rc = uv_thread_create(&g->w[k]->tid, worker_main, g->w[k]);

		if (rc) {
			log_error("cannot start thread %d: %s", k, uv_strerror(rc));
			return -1;
		}
		g->w[k]->running = 1;
	}
	return 0;
}

/* Stop threads 1..n-1 and close what they had; thread 0's is next. */
static void workers_stop(struct server_group *g)
{
	for (int k = 1; k < g->n; k++) {
		struct server *w = g->w[k];

		if (w && w->running) {
			uv_async_send(&w->wake);
			uv_thread_join(&w->tid);
			w->running = 0;
		}
	}
}

static void workers_close(struct server_group *g)
{
	for (int k = g->n - 1; k >= 1; k--) {
		if (!g->w[k])
			continue;
		server_close(g->w[k]);
		free(g->w[k]);
		g->w[k] = NULL;
	}
}

static struct server_group *group_new(const struct server_config *cfg)
{
	struct server_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->n = cfg->threads > 0 ? cfg->threads : 1;
	uv_mutex_init(&g->rdv_lock);
	uv_mutex_init(&g->inbox_lock);
	if (g->n > 1 && cfg->auth_secret && !(g->turn_group = turn_group_new())) {
		uv_mutex_destroy(&g->rdv_lock);
		uv_mutex_destroy(&g->inbox_lock);
		free(g);
		return NULL;
	}
	return g;
}

static void group_free(struct server_group *g)
{
	turn_group_free(g->turn_group);
	uv_mutex_destroy(&g->rdv_lock);
	uv_mutex_destroy(&g->inbox_lock);
	free(g);
}

/* Thread 0: the sockets, TCP, TLS, the relay, the metrics. */
static int server_open(struct server *srv, const struct server_config *cfg)
{
	char where[512], relay_line[256];

	if (state_open(srv, cfg) || registry_open(srv, cfg))
		return -1;
	srv->no_plain_tcp = cfg->no_tcp;
	if (!cfg->no_tcp || cfg->has_tls) {
		struct tcp_hooks hooks = { tcp_to_peer, tcp_flush, tcp_replied,
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
			if (add_socket(srv, &cfg->listen[i], &srv->svc[i], 0))
				return -1;
	}
	if (cfg->auth_secret &&
	    turn_open(srv, cfg, relay_line, sizeof(relay_line)))
		return -1;
	if (tls_open(srv, cfg))
		return -1;
	describe(srv, cfg, where, sizeof(where));
	log_info("listening on %s", where);
	if (srv->turn)
		log_info("%s", relay_line);
	return metrics_open(srv, cfg);
}

int server_run(const struct server_config *cfg)
{
	struct server_group *g = group_new(cfg);
	struct server *srv = g ? calloc(1, sizeof(*srv)) : NULL;
	int rc = 1;

	if (!srv) {
		log_error("out of memory");
		if (g)
			group_free(g);
		return 1;
	}
	worker_init(srv, g, 0);
	current = srv;
	uv_signal_init(&srv->loop, &srv->sigint);
	uv_signal_init(&srv->loop, &srv->sigterm);
	srv->sigint.data = srv->sigterm.data = srv;
	uv_signal_start(&srv->sigint, on_signal, SIGINT);
	uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
	srv->rdv = rdv_server_new(cfg->max_peers ? cfg->max_peers :
	                                           REGISTRY_DEFAULT_MAX,
	                          rdv_send, srv);
	if (!srv->rdv) {
		log_error("out of memory for %zu registrations", cfg->max_peers);
		goto out;
	}
	if (server_open(srv, cfg) || workers_open(g, cfg) ||
	    workers_start(g))
		goto out;
	log_debug("%d thread%s", g->n, g->n > 1 ? "s, one socket each per address (SO_REUSEPORT)" : "");
	/* The loop's clock is milliseconds since an arbitrary start; the
	 * timer is re-armed for the next deadline at each tick. */
	uv_timer_start(&srv->timer, on_timer, 1000, 0);

	uv_run(&srv->loop, UV_RUN_DEFAULT);
	workers_stop(g);
	uv_mutex_lock(&g->rdv_lock);
	bindings_save(srv, uv_now(&srv->loop), 1);
	uv_mutex_unlock(&g->rdv_lock);

	server_log_stop(srv);
	rc = 0;
out:
	workers_stop(g);
	workers_close(g);
	server_close(srv);
	free(srv);
	group_free(g);
	return rc;
}
