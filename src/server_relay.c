/*
 * The TURN relay's sockets (server_internal.h): one relayed socket per
 * allocation, the queues of datagrams to peers and to clients, the TCP
 * server's hooks into them, and the relay's set-up on each thread.  The
 * relay's logic is turn_server.h's; this file moves its datagrams.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "addr.h"
#include "log.h"
#include "metrics.h"
#include "rendezvous_server.h"
#include "server_internal.h"
#include "server_tcp.h"
#include "stun.h"
#include "turn_server.h"

void server_out_queue_flush(struct server *srv, struct out_queue *q)
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
		server_out_queue_flush(srv, q);
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

		n = server_recv_batch(srv, r->fd);
		if (n <= 0)
			break;
		for (int i = 0; i < n; i++) {
			struct out_queue *q = &srv->to_clients;
			struct turn_out o;
			int rc;

			if (q->n == BATCH)
				server_out_queue_flush(srv, q);
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
		server_out_queue_flush(srv, &srv->to_clients);
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
	server_out_queue_flush(srv, &srv->to_peers);
	uv_poll_stop(&r->poll);
	uv_close((uv_handle_t *)&r->poll, relay_closed);
}

/* tcp_hooks.replied: a response over TCP, counted as UDP's are. */
void server_tcp_replied(void *ctx, const uint8_t *req, size_t req_len,
                        const uint8_t *resp, size_t resp_len, int is_error)
{
	struct server *srv = ctx;

	metrics_count_reply(&srv->requests, stun_peek_method(req, req_len),
	                    resp, resp_len, is_error);
}

/* tcp_hooks.to_peer: a client's datagram over TCP, for its relayed
 * socket. */
void server_tcp_to_peer(void *ctx, const struct turn_out *o)
{
	struct server *srv = ctx;
	struct relay_socket *r;

	if (o->slot < 0 || (size_t)o->slot >= srv->n_relays ||
	    !(r = srv->relays[o->slot]))
		return;
	out_queue_add(srv, &srv->to_peers, r->fd, (const struct sockaddr *)&o->to,
	              o->data, o->len);
}

void server_tcp_flush(void *ctx)
{
	struct server *srv = ctx;

	server_out_queue_flush(srv, &srv->to_peers);
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
void server_handle_turn(struct server *srv, struct server_socket *s,
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
			server_out_queue_flush(srv, &srv->to_peers);
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
int server_turn_open(struct server *srv, const struct server_config *cfg,
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
