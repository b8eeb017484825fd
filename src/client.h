/*
 * The client runtime behind punch chat, pipe, send, recv and forward:
 * sockets, timers and signals on libuv's loop, wiring the rendezvous
 * client, the agent and the secure link together, and telling the user
 * what happens (the task's Step 1-5).
 */
#ifndef PUNCH_CLIENT_H
#define PUNCH_CLIENT_H

#include "app.h"
#include "identity.h"
#include "pake.h"
#include "punch_attr.h"
#include "server_list.h"

enum { CLIENT_TURN_MAX = 4 }; /* -turn given at most this often */

struct client_turn {
	const char *host;     /* "HOST:PORT" */
	char user[129], pass[129];
};

struct client_config {
	/* -server HOST:PORT, a list or repeated: the fastest to answer is
	 * used, the next when it stops answering (server_pick.h) */
	struct server_list servers;
	const char *server_tls; /* -server-tls HOST:PORT: TLS after TCP; or NULL */
	const char *tls_ca;   /* -tls-ca FILE; NULL: the system's CAs */
	char id[PUNCH_ID_MAX + 1];
	char peer[PUNCH_ID_MAX + 1];
	unsigned wait_s;      /* give up waiting for the peer; 0: never */
	uint8_t peer_key[IDENTITY_FP_LEN]; /* -peer-key */
	int has_peer_key;
	/* -server-key, repeatable: any of them, for every server */
	uint8_t server_key[SERVER_LIST_MAX][IDENTITY_FP_LEN];
	int has_server_key;   /* how many */
	char code[PAKE_CODE_MAX]; /* -code, canonical; "" for none */
	/* -relay-only, -direct-only: enum agent_path_policy (agent.h) */
	int path_policy;
	int no_portmap;        /* -no-portmap: ask the gateway for no mapping */
	int no_probe;           /* -no-probe: no birthday probing (probe.h) */
	/* -turn turn:USER:PASS@HOST:PORT, repeatable: these relays instead of
	 * the server's, tried in order until one allocates */
	struct client_turn turn[CLIENT_TURN_MAX];
	int n_turn;
	const struct app_ops *app;
	struct app_args args;
};

/* Run until the chat ends.  Returns the process exit status. */
int client_run(const struct client_config *cfg);

#endif
