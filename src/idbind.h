/*
 * Which key holds which id, beyond one registration: the rendezvous
 * server binds an id to the fingerprint of the key that proved itself in
 * a REGISTER, and keeps the binding for a TTL after its last use (30 days
 * by default), so that nobody else can take the id while its holder is
 * away.  The holder can drop it with a signed RELEASE.
 *
 * A pure table: a hash table keyed with SipHash (libsodium's
 * crypto_shorthash) under a random key, times in seconds of the wall clock
 * (bindings outlive the process), no files.  server_state.c persists it,
 * one line per binding:
 *
 *	# comment
 *	SHA256:Wm4Zk... 1764000000 bob
 *
 * fingerprint, last use (Unix seconds), id; the id is last so that any id
 * (they have no spaces) reads back whole.
 */
#ifndef PUNCH_IDBIND_H
#define PUNCH_IDBIND_H

#include <stddef.h>
#include <stdint.h>

#include "punch_attr.h"

enum {
	IDBIND_TTL_DEFAULT_S = 30 * 86400,
	IDBIND_MAX = 1000000,     /* bindings held at most */
	IDBIND_LINE_MAX = 160,    /* one line of the file, with its newline */
	IDBIND_MARK_S = 3600,     /* a last use this much newer is worth saving */
};

enum idbind_result {
	IDBIND_OK = 0,         /* free, or already this key's */
	IDBIND_OTHER = -1,     /* bound to another key */
	IDBIND_FULL = -2,      /* a new binding, and no room */
	IDBIND_UNBOUND = -3,   /* release: no such binding */
};

struct idbind;

struct idbind *idbind_new(uint64_t ttl_s, size_t max);
void idbind_free(struct idbind *t);
void idbind_set_ttl(struct idbind *t, uint64_t ttl_s);

/* May fp use id now?  IDBIND_OK or IDBIND_OTHER. */
int idbind_check(const struct idbind *t, const char *id,
                 const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_s);
/* Bind id to fp (or refresh the binding's last use).  An expired binding
 * to another key is replaced.  Returns an enum idbind_result. */
int idbind_touch(struct idbind *t, const char *id,
                 const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_s);
/* Drop id's binding if fp holds it. */
int idbind_release(struct idbind *t, const char *id,
                   const uint8_t fp[PUNCH_KEY_FP_LEN]);
/* Drop bindings unused for the TTL; returns how many. */
size_t idbind_expire(struct idbind *t, uint64_t now_s);
size_t idbind_count(const struct idbind *t);

/* Bindings changed since the last idbind_clean(): the file needs saving.
 * A refresh of the last use counts only once it is an hour old, so that
 * refreshes every few seconds do not rewrite the file. */
int idbind_dirty(const struct idbind *t);
void idbind_clean(struct idbind *t);

typedef void idbind_visit_fn(void *ctx, const char *id,
                             const uint8_t fp[PUNCH_KEY_FP_LEN],
                             uint64_t last_s);
/* Call fn for every binding, in no particular order. */
void idbind_foreach(const struct idbind *t, idbind_visit_fn *fn, void *ctx);

/* One line of the file (without its newline).  Returns 1 with a binding,
 * 0 for a blank line or a comment, -1 if malformed. */
int idbind_parse_line(const char *line, size_t len,
                      char id[PUNCH_ID_MAX + 1],
                      uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t *last_s);
/* Format a binding as a line with its newline; returns its length, or -1
 * if cap is too small. */
int idbind_format_line(char *out, size_t cap, const char *id,
                       const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t last_s);
/* Load a binding as read from the file (no TTL check here; the next
 * idbind_expire() drops what is too old). */
int idbind_load(struct idbind *t, const char *id,
                const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t last_s);

#endif
