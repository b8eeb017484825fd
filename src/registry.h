/*
 * The rendezvous registry: who is registered, whom they want to reach, and
 * which pairs have been introduced.  Pure logic: no sockets, no timers;
 * the caller passes the time in (monotonic milliseconds).
 *
 * Limits (see docs/protocol.md):
 * - at most `max_entries` live registrations, and at most `per_prefix_max`
 *   from one source prefix: the /24 for IPv4, the /64 for IPv6 (one host
 *   or one customer is usually given a whole /64).  IPv4-mapped IPv6
 *   counts as IPv4.
 * - each expires REGISTRY_LIFETIME_MS (registry_set_lifetime()) after its
 *   last refresh or renewal.
 * - registry_admit() is a token bucket per source prefix over REGISTERs.
 * - memory is taken as registrations arrive and given back as they
 *   expire: an entry holds its strings and candidates at their real size,
 *   and the hash tables grow and shrink with the number of entries.
 *
 * The id table and the prefix table are keyed with SipHash-2-4
 * (libsodium's crypto_shorthash) under a random key, so that nobody can
 * choose ids or addresses that fall into one chain.
 */
#ifndef PUNCH_REGISTRY_H
#define PUNCH_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "punch_attr.h"

enum {
	REGISTRY_LIFETIME_MS = 30000,
	REGISTRY_DEFAULT_MAX = 4096,
	REGISTRY_PER_PREFIX_MAX = 64,  /* registrations per /24 or /64 */
	REGISTRY_PREFIX4_BITS = 24,
	REGISTRY_PREFIX6_BITS = 64,
	REGISTRY_RATE_BURST = 20,      /* REGISTERs per prefix at once... */
	REGISTRY_RATE_PER_S = 5,       /* ...and then per second */
	REGISTRY_IDLE_PREFIX_MIN = 1024, /* prefixes kept for their bucket
	                                  * alone: max(this, max_entries) */
	REGISTRY_BUCKETS_MIN = 64,     /* hash table size, at least */
};

enum registry_result {
	REG_WAITING = 0,      /* registered; the peer is not (yet) here */
	REG_PAIRED = 1,       /* both here, already introduced */
	REG_INTRODUCE = 2,    /* both here, and they must be introduced now */
	REG_ERR_SAME_ID = -1, /* id and peer id are the same */
	REG_ERR_FULL = -2,    /* no room (in all, or for this prefix) */
	REG_ERR_KEY = -3,     /* the id is live with a different key */
};

/* A registration: opaque, read through registry_entry_*(). */
struct reg_entry;
struct registry;

/* What the registry holds, for tests and the benchmark. */
struct registry_info {
	size_t entries, prefixes, idle_prefixes;
	size_t id_buckets, prefix_buckets, longest_chain;
	size_t bytes, allocs; /* live heap blocks, as requested */
	uint64_t rate_limited;
};

/* NULL if out of memory (or libsodium cannot start). */
struct registry *registry_new(size_t max_entries, size_t per_prefix_max);
void registry_free(struct registry *r);

/* REGISTERs per second and burst per source prefix; 0 per second turns
 * the bucket off.  registry_new() sets REGISTRY_RATE_*. */
void registry_set_rate(struct registry *r, unsigned per_s, unsigned burst);

/* May a REGISTER from `from` be handled now?  1 yes (a token is taken),
 * 0 no: the caller drops it without an answer, so that a flood from
 * spoofed sources earns nothing. */
int registry_admit(struct registry *r, const struct sockaddr *from,
                   uint64_t now_ms);

/* Register or refresh p, seen from `from` on server socket `sock`.  On
 * REG_PAIRED and REG_INTRODUCE, *self and *peer point at the two entries
 * (valid until the next call that changes the registry). */
int registry_register(struct registry *r, const struct punch_peer *p,
                      const struct sockaddr *from, int sock, uint64_t now_ms,
                      const struct reg_entry **self,
                      const struct reg_entry **peer);

/* A RENEW of e (rendezvous_server.c has checked its MAC and that seq is
 * above registry_entry_renew_seq()): e lives a lifetime from now, and
 * seq is its last renewal. */
void registry_renew(struct registry *r, const struct reg_entry *e,
                    uint32_t seq, uint64_t now_ms);

/* How long a registration lives without a refresh: REGISTRY_LIFETIME_MS
 * unless set (0 sets it back). */
void registry_set_lifetime(struct registry *r, uint64_t ms);
uint64_t registry_lifetime(const struct registry *r);

/* Drop registrations that were not refreshed in time, and prefixes whose
 * bucket is full again; returns how many registrations. */
size_t registry_expire(struct registry *r, uint64_t now_ms);

/* fn (if set) sees each entry registry_expire() drops, just before. */
typedef void registry_expire_fn(void *ctx, const struct reg_entry *e);
void registry_on_expire(struct registry *r, registry_expire_fn *fn, void *ctx);

const struct reg_entry *registry_find(const struct registry *r,
                                      const char *id);
/* Drop id's live registration if key_fp holds it (RELEASE).  1 dropped,
 * 0 none, -1 it is held by another key (left as it is). */
int registry_remove(struct registry *r, const char *id,
                    const uint8_t key_fp[PUNCH_KEY_FP_LEN], uint64_t now_ms);
size_t registry_count(const struct registry *r);
void registry_info(const struct registry *r, struct registry_info *out);
const char *registry_result_str(int result);

/* Reading an entry.  registry_entry_peer() rebuilds the whole punch_peer,
 * with `observed` set to where the server saw it: what PEER-INFO says. */
const char *registry_entry_id(const struct reg_entry *e);
const char *registry_entry_peer_id(const struct reg_entry *e);
uint64_t registry_entry_session(const struct reg_entry *e);
uint64_t registry_entry_expires(const struct reg_entry *e);
int registry_entry_sock(const struct reg_entry *e);
/* The fingerprint of the key that registered e (zeros if none). */
void registry_entry_key_fp(const struct reg_entry *e,
                           uint8_t out[PUNCH_KEY_FP_LEN]);
/* Which registration e is: a number the registry raises when an id is
 * stored anew, with another session, or from another address (not on a
 * refresh of the same), so that each gets its own RENEW key
 * (docs/protocol.md, "RENEW"). */
uint32_t registry_entry_epoch(const struct reg_entry *e);
uint32_t registry_entry_renew_seq(const struct reg_entry *e);
void registry_entry_from(const struct reg_entry *e,
                         struct sockaddr_storage *out);
void registry_entry_peer(const struct reg_entry *e, struct punch_peer *out);

#endif
