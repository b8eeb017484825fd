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

struct client_config {
	const char *server;   /* HOST:PORT */
	char id[PUNCH_ID_MAX + 1];
	char peer[PUNCH_ID_MAX + 1];
	unsigned wait_s;      /* give up waiting for the peer; 0: never */
	uint8_t peer_key[IDENTITY_FP_LEN]; /* -peer-key */
	int has_peer_key;
	uint8_t server_key[IDENTITY_FP_LEN]; /* -server-key */
	int has_server_key;
	char code[PAKE_CODE_MAX]; /* -code, canonical; "" for none */
	/* -relay-only, -direct-only: enum agent_path_policy (agent.h) */
	int path_policy;
	int no_portmap;        /* -no-portmap: ask the gateway for no mapping */
	/* -turn turn:USER:PASS@HOST:PORT: this relay instead of the server's */
	const char *turn_host;  /* "HOST:PORT", or NULL */
	char turn_user[129], turn_pass[129];
	const struct app_ops *app;
	struct app_args args;
};

/* Run until the chat ends.  Returns the process exit status. */
int client_run(const struct client_config *cfg);

#endif
