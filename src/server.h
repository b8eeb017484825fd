/*
 * `punch server`: the sockets and event loop around the Binding service,
 * the rendezvous and the relay, over UDP and (server_tcp.h) TCP.
 */
#ifndef PUNCH_SERVER_H
#define PUNCH_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "registry_url.h"

enum {
	SERVER_LISTEN_MAX = 8,
	SERVER_THREADS_MAX = 64,     /* -threads */
	SERVER_DEFAULT_PORT = 3478,
	SERVER_RELAY_LO = 49152,     /* RFC 8656 7.2: the dynamic range */
	SERVER_RELAY_HI = 65535,
};

struct server_config {
	struct sockaddr_storage listen[SERVER_LISTEN_MAX];
	int n_listen;
	struct sockaddr_storage alt; /* valid when has_alt */
	int has_alt;
	size_t max_peers;            /* registrations held at most; 0: default */
	const char *state_dir;       /* NULL: state_dir_default() */
	uint64_t id_ttl_s;           /* id bindings; 0: the default */
	uint64_t lifetime_s;         /* registrations; 0: the default */
	/* TURN relay (turn_server.h), on when auth_secret is set */
	const uint8_t *auth_secret;
	size_t auth_secret_len;
	const char *realm;           /* NULL: "punch" */
	struct sockaddr_storage relay_ip; /* advertised; unset: the listen
	                                   * address of each family */
	uint16_t relay_lo, relay_hi; /* 0: SERVER_RELAY_LO-SERVER_RELAY_HI */
	size_t max_allocs;           /* 0: TURN_ALLOCS_DEFAULT */
	size_t max_per_prefix;       /* 0: TURN_PER_PREFIX_DEFAULT */
	uint64_t relay_bps;          /* bytes/s per allocation; 0: no limit */
	int relay_allow_private;     /* loopback and private peers */
	int no_tcp;                  /* UDP only (-no-tcp) */
	size_t max_tcp;              /* TCP connections; 0: TCP_CONNS_DEFAULT */
	/* -tls-listen ADDR:PORT -cert FILE -key FILE */
	struct sockaddr_storage tls_listen;
	int has_tls;
	const char *tls_cert, *tls_key;
	/* -metrics: Prometheus text over HTTP (metrics_http.h) */
	struct sockaddr_storage metrics;
	int has_metrics;
	/* -registry: the registry shared in Redis (registry_redis.h) */
	struct registry_url registry;
	int has_registry;
	int threads;                 /* loops, 1-SERVER_THREADS_MAX; 0: 1 */
};

struct server_stats {
	uint64_t answered;  /* success responses sent */
	uint64_t errors;    /* Binding error responses (400, 420): the request
	                     * was wrong; the rendezvous counts its own */
	uint64_t malformed; /* datagrams dropped as malformed */
	uint64_t ignored;   /* valid STUN that needs no answer */
	uint64_t send_failed;
};

/* Bind, serve until SIGINT or SIGTERM, clean up.  Returns a process exit
 * status; on failure it has already told the user why. */
int server_run(const struct server_config *cfg);

#endif
