/*
 * The server's own header: struct server (one thread's loop, sockets and
 * relay), struct server_group (what the threads share), and the functions
 * the files below call across files.  Only they include it.  `punch
 * server` (server.h), written as four files, one part each:
 *
 *   server.c          the listen sockets, the UDP receive path
 *                     (handle_one) and one thread's set-up (server_open)
 *   server_relay.c    the TURN relay's sockets: the relayed sockets, the
 *                     queues to peers and to clients, TCP's hooks into
 *                     them, and the relay's set-up
 *   server_metrics.c  the counters summed over the threads: -metrics and
 *                     the stop line
 *   server_threads.c  between threads (thread 0's inbox, rdv_send), the
 *                     timer and the signals, the threads, server_close()
 *                     and server_run()
 *
 * What is declared at the end is global symbols of punchcore, and so
 * has server_ before every name.  The two static inline functions before
 * it are no symbols, and keep their short names.
 */
#ifndef PUNCH_SERVER_INTERNAL_H
#define PUNCH_SERVER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "binding.h"
#include "metrics.h"
#include "registry_store.h"
#include "rendezvous_server.h"
#include "server.h"
#include "server_state.h"
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
	 * (hop_* in server_threads.c). */
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
	/* -metrics (server_metrics.c) */
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

/* Counters of threads 1..N-1 are summed by thread 0 (metrics_fill()). */
static inline void stats_hold(struct server *srv)
{
	if (srv->thread != 0)
		uv_mutex_lock(&srv->stats_lock);
}

static inline void stats_release(struct server *srv)
{
	if (srv->thread != 0)
		uv_mutex_unlock(&srv->stats_lock);
}

/* server.c */
int server_add_socket(struct server *srv, const struct sockaddr_storage *addr,
                      struct binding_service *svc, int index);
int server_open(struct server *srv, const struct server_config *cfg);
int server_recv_batch(struct server *srv, int fd);

/* server_relay.c */
void server_out_queue_flush(struct server *srv, struct out_queue *q);
void server_handle_turn(struct server *srv, struct server_socket *s,
                        const uint8_t *buf, size_t len,
                        const struct sockaddr *from);
void server_tcp_replied(void *ctx, const uint8_t *req, size_t req_len,
                        const uint8_t *resp, size_t resp_len, int is_error);
void server_tcp_to_peer(void *ctx, const struct turn_out *o);
void server_tcp_flush(void *ctx);
int server_turn_open(struct server *srv, const struct server_config *cfg,
                     char *line, size_t line_len);

/* server_metrics.c */
int server_metrics_open(struct server *srv, const struct server_config *cfg);
void server_log_stop(struct server *srv);

/* server_threads.c */
extern const struct reg_store_ops server_hop_redis_ops;

#endif
