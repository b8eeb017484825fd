/*
 * Where the rendezvous makes pairs: one interface, two implementations.
 *
 * - registry_mem_ops: the in-memory table of registry.h, for one server
 *   (the default).  It answers at once, inside submit().
 * - registry_redis.h: a registry shared by several servers in Redis.  It
 *   keeps the in-memory table too, for the limits and for its own
 *   clients, and answers later, from libuv's loop, once Redis has.
 *
 * The rendezvous (rendezvous_server.c) has checked a registration before
 * it submits it: nonce, signature, id binding, form.  The store decides
 * whether the two sides of a pair are both here and must be introduced,
 * and says so exactly once through job->done.
 */
#ifndef PUNCH_REGISTRY_STORE_H
#define PUNCH_REGISTRY_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "binding.h"
#include "registry.h"

enum {
	/* results beyond registry.h's: the shared registry's */
	REG_ERR_BOUND = -4, /* the id is bound to another key (shared) */
};

/* What the store decided.  self and peer are entries of the local table,
 * valid during done() only; a peer registered at another server is
 * `remote` instead (checked by regval_decode()), peer then NULL. */
struct reg_outcome {
	int result; /* enum registry_result, or REG_ERR_BOUND */
	const struct reg_entry *self, *peer;
	const struct punch_peer *remote;
};

struct reg_job;
typedef void reg_done_fn(struct reg_job *job, const struct reg_outcome *o);

/* One registration, checked.  A store that answers later copies it (the
 * message too); one that answers in submit() leaves it as it is. */
struct reg_job {
	struct punch_peer p; /* key_fp: the proven key's */
	struct sockaddr_storage from;
	int sock;
	uint64_t now_ms;
	const uint8_t *msg; /* the signed REGISTER as received */
	size_t msg_len;
	/* for the rendezvous: how to answer */
	uint8_t txid[STUN_TXID_LEN];
	int kind, changed;
	struct sockaddr_storage was;
	uint8_t *out; /* answer in here, now; NULL: answer later, by send */
	size_t cap;
	struct binding_reply *reply;
	int verdict;
	reg_done_fn *done;
	void *ctx;
};

struct reg_store_ops {
	const char *name;
	/* Take job; job->done is called exactly once, before this returns
	 * or later. */
	void (*submit)(void *store, struct reg_job *job);
	/* RELEASE of id by the key fp: drop its registration (and, shared,
	 * its binding) if that key holds them. */
	void (*release)(void *store, const char *id,
	                const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_ms);
};

/* The in-memory store: store is the struct registry itself. */
extern const struct reg_store_ops registry_mem_ops;

#endif
