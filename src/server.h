/*
 * `punch server`: the sockets and event loop around the Binding service.
 */
#ifndef PUNCH_SERVER_H
#define PUNCH_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	SERVER_LISTEN_MAX = 8,
	SERVER_DEFAULT_PORT = 3478,
};

struct server_config {
	struct sockaddr_storage listen[SERVER_LISTEN_MAX];
	int n_listen;
	struct sockaddr_storage alt; /* valid when has_alt */
	int has_alt;
	size_t max_peers;            /* registrations held at most; 0: default */
	const char *state_dir;       /* NULL: state_dir_default() */
	uint64_t id_ttl_s;           /* id bindings; 0: the default */
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
