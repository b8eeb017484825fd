/*
 * `punch server -registry redis://...`: a registry shared by several
 * servers in Redis (registry_store.h's second implementation).
 *
 * Each server keeps its in-memory table for its own clients (the limits,
 * PEER-INFO's destination, the relay's checks) and writes every
 * registration to Redis too, under the key prefix REGISTRY_REDIS_PREFIX:
 *
 *   punch:r:ID    hash: v (registry_value.h), fp, peer, sess, srv; with
 *                 the registration's TTL
 *   punch:b:ID    the key fingerprint ID is bound to, with -id-ttl
 *   punch:i:A\nB  the sessions of A and B (A < B) when last introduced
 *   punch:s:SRV   the pub/sub channel of server SRV (16 hex digits,
 *                 random at each start)
 *
 * One Lua script takes a registration and decides, atomically, whether
 * its peer is there and the pair must be introduced: two sides that
 * register at the same instant at two servers are introduced once.  The
 * server that saw the second side sends PEER-INFO to its own client and
 * publishes the registration on the peer's server's channel; that server
 * checks it as its own (regval_decode(): signature; the id binding) and
 * sends PEER-INFO to its client.
 *
 * hiredis's libuv adapter keeps Redis on the server's loop, which never
 * waits on it.  While Redis cannot be reached (or answers nonsense), the
 * server serves from memory: it answers every registration from its own
 * table, introduces pairs whose two sides both registered at it, and
 * reconnects with exponential backoff.  STUN and TURN never depend on
 * Redis.  Every missing, failed or malformed reply, and every value that
 * does not check, is counted (punch_redis_errors_total) and logged.
 */
#ifndef PUNCH_REGISTRY_REDIS_H
#define PUNCH_REGISTRY_REDIS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "registry_store.h"
#include "registry_url.h"
#include "rendezvous_server.h"

#define REGISTRY_REDIS_PREFIX "punch:"

enum {
	REGISTRY_REDIS_INFLIGHT_MAX = 4096, /* registrations awaiting Redis */
	REGISTRY_REDIS_BACKOFF_MIN_MS = 100,
	REGISTRY_REDIS_BACKOFF_MAX_MS = 5000,
	REGISTRY_REDIS_CONNECT_MS = 1000, /* connected and set up in this */
	REGISTRY_REDIS_WARN_EVERY_MS = 1000, /* errors: one warning a second */
};

struct registry_redis_stats {
	uint64_t errors;      /* replies missing, failed or malformed; values
	                       * and messages that do not check */
	uint64_t from_memory; /* registrations answered without Redis */
	uint64_t published;   /* introductions sent to another server */
	uint64_t received;    /* ... and received from one */
	uint64_t connects;    /* connections made (the first, and again) */
	int up;               /* 1 while registrations go through Redis */
};

struct registry_redis;

/* Connects in the background (no wait here); the server starts even when
 * Redis is down.  NULL with a reason in err (out of memory, a host that
 * does not resolve). */
struct registry_redis *registry_redis_new(uv_loop_t *loop,
                                          const struct registry_url *url,
                                          struct rdv_server *rs,
                                          uint64_t id_ttl_s, char *err,
                                          size_t err_len);
/* Registrations still waiting for Redis are answered from memory. */
void registry_redis_free(struct registry_redis *rr);
/* -threads: lock (held by the caller around submit and release) is taken
 * by the callbacks that reach the rendezvous or the local table. */
void registry_redis_set_lock(struct registry_redis *rr, uv_mutex_t *lock);

const struct registry_redis_stats *
registry_redis_stats(const struct registry_redis *rr);
/* This server's name on the registry (its channel's). */
const char *registry_redis_server_id(const struct registry_redis *rr);

extern const struct reg_store_ops registry_redis_ops;

#endif
