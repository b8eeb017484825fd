/*
 * The rendezvous registry: who is registered, whom they want to reach, and
 * which pairs have been introduced.  Pure logic: no sockets, no timers;
 * the caller passes the time in.
 *
 * Limits (see docs/protocol.md): at most `max_entries` live registrations
 * (memory is allocated once, up front), at most `per_ip_max` from one IP
 * address, and each expires REGISTRY_LIFETIME_MS after its last refresh.
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
	REGISTRY_PER_IP_MAX = 64,
};

enum registry_result {
	REG_WAITING = 0,      /* registered; the peer is not (yet) here */
	REG_PAIRED = 1,       /* both here, already introduced */
	REG_INTRODUCE = 2,    /* both here, and they must be introduced now */
	REG_ERR_SAME_ID = -1, /* id and peer id are the same */
	REG_ERR_FULL = -2,    /* no room (in all, or for this IP) */
	REG_ERR_KEY = -3,     /* the id is live with a different key */
};

struct reg_entry {
	struct punch_peer peer;
	struct sockaddr_storage from; /* where the server saw it */
	int sock;                     /* the server socket it came in on */
	uint64_t expires_ms;
	/* The sessions of this entry and of its peer when they were last
	 * introduced: a change on either side (a restart) re-introduces. */
	uint64_t intro_self, intro_peer;
	int introduced;
	struct reg_entry *next;       /* hash chain */
	int used;
};

struct registry;

struct registry *registry_new(size_t max_entries, size_t per_ip_max);
void registry_free(struct registry *r);

/* Register or refresh p, seen from `from` on server socket `sock`.  On
 * REG_PAIRED and REG_INTRODUCE, *self and *peer point at the two entries
 * (valid until the next call that changes the registry). */
int registry_register(struct registry *r, const struct punch_peer *p,
                      const struct sockaddr *from, int sock, uint64_t now_ms,
                      const struct reg_entry **self,
                      const struct reg_entry **peer);

/* Drop registrations that were not refreshed in time; returns how many. */
size_t registry_expire(struct registry *r, uint64_t now_ms);

/* fn (if set) sees each entry registry_expire() drops, just before. */
typedef void registry_expire_fn(void *ctx, const struct reg_entry *e);
void registry_on_expire(struct registry *r, registry_expire_fn *fn, void *ctx);

const struct reg_entry *registry_find(const struct registry *r,
                                      const char *id);
size_t registry_count(const struct registry *r);
const char *registry_result_str(int result);

#endif
