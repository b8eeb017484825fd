#include "registry.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* An address in 24 bytes rather than sockaddr_storage's 128: a
 * registration with 4 candidates must fit in 512 bytes, all told. */
struct caddr {
	uint8_t family;  /* 4, 6, or 0 for none */
	uint8_t type;    /* candidates: enum punch_cand_type */
	uint16_t port;   /* network order */
	uint32_t extra;  /* candidates: priority; `from`: IPv6 scope id */
	uint8_t ip[16];
};

/* A chained hash table; both kinds of node start with the link. */
struct hlink {
	struct hlink *next;
};

struct table {
	struct hlink **b;
	size_t n_b; /* a power of two, at least REGISTRY_BUCKETS_MIN */
	size_t n;
};

enum { PREFIX_KEY_LEN = 9 }; /* family (4 or 6), then 3 or 8 bytes */

/* A source prefix: how many registrations it holds, and its REGISTER
 * bucket.  Kept while it holds registrations, or while its bucket is not
 * full; in between it waits on the idle list, oldest first. */
struct prefix {
	struct hlink link;
	struct prefix *idle_prev, *idle_next;
	uint64_t tat_ms; /* GCRA's theoretical arrival time: full if <= now */
	uint32_t n;
	uint8_t key[PREFIX_KEY_LEN];
};

enum { STR_ID,
       STR_PEER_ID,
       STR_UFRAG,
       STR_PWD,
       STR_N };

struct reg_entry {
	struct hlink link;
	/* In the first cache line with the link, so that a lookup passes
	 * other entries of its chain without reading their strings. */
	uint32_t tag;      /* the top half of the id's hash */
	uint8_t len[STR_N];
	struct reg_entry *older, *newer; /* by last refresh: expiry order */
	struct prefix *prefix;
	uint64_t expires_ms, session;
	/* The sessions of this entry and of its peer when they were last
	 * introduced: a change on either side (a restart) re-introduces. */
	uint64_t intro_self, intro_peer;
	uint8_t key_fp[PUNCH_KEY_FP_LEN];
	struct caddr from; /* where the server saw it */
	int sock;          /* the server socket it came in on */
	uint8_t has_key_fp, introduced, n_cand;
	struct punch_nat nat; /* PUNCH-NAT, passed on in PEER-INFO */
	/* RENEW (docs/protocol.md): which signed registration this is, for
	 * its renewal key, and the last renewal's sequence number. */
	uint32_t epoch, renew_seq;
	/* n_cand candidates, then the STR_N strings, each with its NUL */
	struct caddr cand[];
};

struct registry {
	struct table ids, prefixes;
	struct reg_entry *oldest, *newest;
	struct prefix *idle_head, *idle_tail;
	size_t max, per_prefix_max, n_idle, idle_max;
	uint32_t interval_ms, tau_ms; /* the bucket; interval 0: off */
	size_t bytes, allocs;
	uint64_t rate_limited;
	uint64_t lifetime_ms;
	uint32_t epoch; /* of the last registry_register() that stored */
	uint8_t key[crypto_shorthash_KEYBYTES];
	registry_expire_fn *on_expire;
	void *on_expire_ctx;
};

/* ---- memory, counted ---------------------------------------------------- */

static void *mem_alloc(struct registry *r, size_t size)
{
	void *p = calloc(1, size);

	if (p) {
		r->bytes += size;
		r->allocs++;
	}
	return p;
}

static void mem_free(struct registry *r, void *p, size_t size)
{
	if (!p)
		return;
	r->bytes -= size;
	r->allocs--;
	free(p);
}

/* ---- hash tables -------------------------------------------------------- */

static uint64_t hash_bytes(const struct registry *r, const void *p, size_t n)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h = 0;

	crypto_shorthash(out, p, n, r->key);
	for (size_t i = 0; i < sizeof(out); i++)
		h = h << 8 | out[i];
	return h;
}

static const char *entry_str(const struct reg_entry *e, int which)
{
	const char *s = (const char *)&e->cand[e->n_cand];

	for (int i = 0; i < which; i++)
		s += e->len[i] + 1;
	return s;
}

static uint64_t hash_node(const struct registry *r, const struct hlink *l,
                          int is_prefix)
{
	const struct reg_entry *e = (const struct reg_entry *)l;

	if (is_prefix)
		return hash_bytes(r, ((const struct prefix *)l)->key,
		                  PREFIX_KEY_LEN);
	return hash_bytes(r, entry_str(e, STR_ID), e->len[STR_ID]);
}

static int table_init(struct registry *r, struct table *t)
{
	t->n_b = REGISTRY_BUCKETS_MIN;
	t->n = 0;
	t->b = mem_alloc(r, t->n_b * sizeof(*t->b));
	return t->b ? 0 : -1;
}

/* Rehash into n_b buckets.  If that memory cannot be had, the table keeps
 * its size: chains grow, lookups stay correct. */
static void table_resize(struct registry *r, struct table *t, size_t n_b,
                         int is_prefix)
{
	struct hlink **b = mem_alloc(r, n_b * sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < t->n_b; i++) {
		while (t->b[i]) {
			struct hlink *l = t->b[i];
			size_t j = hash_node(r, l, is_prefix) & (n_b - 1);

			t->b[i] = l->next;
			l->next = b[j];
			b[j] = l;
		}
	}
	mem_free(r, t->b, t->n_b * sizeof(*t->b));
	t->b = b;
	t->n_b = n_b;
}

/* Keep the load between 1/8 and 1 node per bucket: chains stay short
 * (each node passed is a cache miss in a big table), and the bucket array
 * costs 8 to 16 bytes a node once it has grown. */
static void table_fit(struct registry *r, struct table *t, int is_prefix)
{
	if (t->n > t->n_b)
		table_resize(r, t, t->n_b * 2, is_prefix);
	else if (t->n_b > REGISTRY_BUCKETS_MIN && t->n < t->n_b / 8)
		table_resize(r, t, t->n_b / 2, is_prefix);
}

static void table_add(struct registry *r, struct table *t, struct hlink *l,
                      uint64_t h, int is_prefix)
{
	size_t i = h & (t->n_b - 1);

	l->next = t->b[i];
	t->b[i] = l;
	t->n++;
	table_fit(r, t, is_prefix);
}

static void table_del(struct registry *r, struct table *t, struct hlink *l,
                      uint64_t h, int is_prefix)
{
	struct hlink **p = &t->b[h & (t->n_b - 1)];

	while (*p && *p != l)
		p = &(*p)->next;
	if (!*p)
		return;
	*p = l->next;
	t->n--;
	table_fit(r, t, is_prefix);
}

static struct reg_entry *lookup(const struct registry *r, const char *id)
{
	size_t len = strnlen(id, PUNCH_ID_MAX + 1);
	uint64_t h = hash_bytes(r, id, len);
	struct hlink *l = r->ids.b[h & (r->ids.n_b - 1)];

	for (; l; l = l->next) {
		struct reg_entry *e = (struct reg_entry *)l;

		if (e->tag == (uint32_t)(h >> 32) && e->len[STR_ID] == len &&
		    !memcmp(entry_str(e, STR_ID), id, len))
			return e;
	}
	return NULL;
}

/* ---- prefixes and their buckets ----------------------------------------- */

/* The /24 or the /64 of an address; IPv4-mapped IPv6 is IPv4. */
static void prefix_key(const struct sockaddr *sa, uint8_t key[PREFIX_KEY_LEN])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		                            0xff, 0xff };

	memset(key, 0, PREFIX_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr,
		       REGISTRY_PREFIX4_BITS / 8);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a =
			((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (!memcmp(a, mapped, sizeof(mapped))) {
			key[0] = 4;
			memcpy(key + 1, a + 12, REGISTRY_PREFIX4_BITS / 8);
		} else {
			key[0] = 6;
			memcpy(key + 1, a, REGISTRY_PREFIX6_BITS / 8);
		}
	}
}

static void idle_unlink(struct registry *r, struct prefix *pf)
{
	*(pf->idle_prev ? &pf->idle_prev->idle_next : &r->idle_head) =
		pf->idle_next;
	*(pf->idle_next ? &pf->idle_next->idle_prev : &r->idle_tail) =
		pf->idle_prev;
	pf->idle_prev = pf->idle_next = NULL;
	r->n_idle--;
}

static void idle_append(struct registry *r, struct prefix *pf)
{
	pf->idle_prev = r->idle_tail;
	pf->idle_next = NULL;
	*(r->idle_tail ? &r->idle_tail->idle_next : &r->idle_head) = pf;
	r->idle_tail = pf;
	r->n_idle++;
}

/* Only for a prefix on the idle list (it holds no registration). */
static void prefix_drop(struct registry *r, struct prefix *pf)
{
	idle_unlink(r, pf);
	table_del(r, &r->prefixes, &pf->link,
	          hash_bytes(r, pf->key, PREFIX_KEY_LEN), 1);
	mem_free(r, pf, sizeof(*pf));
}

/* The prefix of `from`, made if new.  Idle prefixes are capped: when
 * there are too many (a flood from many sources), the oldest goes, and
 * with it its bucket's memory of recent REGISTERs. */
static struct prefix *prefix_get(struct registry *r,
                                 const struct sockaddr *from)
{
	uint8_t key[PREFIX_KEY_LEN];
	uint64_t h;
	struct hlink *l;
	struct prefix *pf;

	prefix_key(from, key);
	h = hash_bytes(r, key, sizeof(key));
	for (l = r->prefixes.b[h & (r->prefixes.n_b - 1)]; l; l = l->next)
		if (!memcmp(((struct prefix *)l)->key, key, sizeof(key)))
			return (struct prefix *)l;
	if (r->n_idle >= r->idle_max && r->idle_head)
		prefix_drop(r, r->idle_head);
	pf = mem_alloc(r, sizeof(*pf));
	if (!pf)
		return NULL;
	memcpy(pf->key, key, sizeof(key));
	idle_append(r, pf);
	table_add(r, &r->prefixes, &pf->link, h, 1);
	return pf;
}

static void prefix_attach(struct registry *r, struct prefix *pf)
{
	if (pf->n++ == 0)
		idle_unlink(r, pf);
}

static void prefix_detach(struct registry *r, struct prefix *pf,
                          uint64_t now_ms)
{
	if (--pf->n)
		return;
	idle_append(r, pf);
	if (pf->tat_ms <= now_ms)
		prefix_drop(r, pf); /* a full bucket is as good as none */
}

void registry_set_rate(struct registry *r, unsigned per_s, unsigned burst)
{
	if (!per_s) {
		r->interval_ms = r->tau_ms = 0;
		return;
	}
	r->interval_ms = per_s < 1000 ? 1000 / per_s : 1; /* ms resolution */
	r->tau_ms = r->interval_ms * (burst ? burst : 1);
}

/* The token bucket as GCRA (ITU-T I.371): one deadline per prefix.  A
 * request is allowed if, after it, the deadline is at most `burst`
 * intervals ahead of now. */
int registry_admit(struct registry *r, const struct sockaddr *from,
                   uint64_t now_ms)
{
	struct prefix *pf;
	uint64_t tat;

	if (!r->interval_ms)
		return 1;
	pf = prefix_get(r, from);
	if (!pf) {
		r->rate_limited++; /* out of memory: answer nobody new */
		return 0;
	}
	/* A time from before the bucket was last filled (the server's
	 * threads each read their own loop's clock, a few ms apart) is taken
	 * as that time: the bucket is as full as it was then, never
	 * refilled by a step back. */
	if (pf->tat_ms > now_ms + r->tau_ms)
		now_ms = pf->tat_ms - r->tau_ms;
	tat = (pf->tat_ms > now_ms ? pf->tat_ms : now_ms) + r->interval_ms;
	if (tat - now_ms > r->tau_ms) {
		r->rate_limited++;
		return 0;
	}
	pf->tat_ms = tat;
	if (!pf->n) {
		/* most recently active: last to be evicted */
		idle_unlink(r, pf);
		idle_append(r, pf);
	}
	return 1;
}

/* ---- entries ------------------------------------------------------------ */

static void caddr_put(struct caddr *c, const struct sockaddr *sa)
{
	memset(c, 0, sizeof(*c));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;

		c->family = 4;
		c->port = s->sin_port;
		memcpy(c->ip, &s->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;

		c->family = 6;
		c->port = s->sin6_port;
		c->extra = s->sin6_scope_id;
		memcpy(c->ip, &s->sin6_addr, 16);
	}
}

static void caddr_get(const struct caddr *c, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (c->family == 4) {
		struct sockaddr_in *s = (struct sockaddr_in *)out;

		s->sin_family = AF_INET;
		s->sin_port = c->port;
		memcpy(&s->sin_addr, c->ip, 4);
	} else if (c->family == 6) {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)out;

		s->sin6_family = AF_INET6;
		s->sin6_port = c->port;
		s->sin6_scope_id = c->extra;
		memcpy(&s->sin6_addr, c->ip, 16);
	}
}

static size_t entry_size(size_t n_cand, const uint8_t len[STR_N])
{
	size_t n = sizeof(struct reg_entry) + n_cand * sizeof(struct caddr);

	for (int i = 0; i < STR_N; i++)
		n += len[i] + 1u;
	return n;
}

static size_t entry_size_of(const struct reg_entry *e)
{
	return entry_size(e->n_cand, e->len);
}

/* The sizes p needs; the parser bounds every string by its array. */
static size_t peer_size(const struct punch_peer *p, size_t *n_cand,
                        uint8_t len[STR_N])
{
	len[STR_ID] = (uint8_t)strnlen(p->id, sizeof(p->id) - 1);
	len[STR_PEER_ID] = (uint8_t)strnlen(p->peer_id, sizeof(p->peer_id) - 1);
	len[STR_UFRAG] = (uint8_t)strnlen(p->ufrag, sizeof(p->ufrag) - 1);
	len[STR_PWD] = (uint8_t)strnlen(p->pwd, sizeof(p->pwd) - 1);
	*n_cand = p->n_cand < PUNCH_CANDIDATES_MAX ? p->n_cand :
	                                             PUNCH_CANDIDATES_MAX;
	return entry_size(*n_cand, len);
}

/* Everything but the links, the prefix and the introduction state. */
static void entry_fill(struct registry *r, struct reg_entry *e,
                       const struct punch_peer *p,
                       size_t n_cand, const uint8_t len[STR_N],
                       const struct sockaddr *from, int sock, uint64_t now_ms)
{
	const char *src[STR_N] = { p->id, p->peer_id, p->ufrag, p->pwd };
	char *s;

	e->expires_ms = now_ms + r->lifetime_ms;
	e->session = p->session;
	memcpy(e->key_fp, p->key_fp, sizeof(e->key_fp));
	e->has_key_fp = p->has_key_fp ? 1 : 0;
	e->nat = p->nat;
	caddr_put(&e->from, from);
	e->sock = sock;
	e->n_cand = (uint8_t)n_cand;
	memcpy(e->len, len, sizeof(e->len));
	for (size_t i = 0; i < n_cand; i++) {
		caddr_put(&e->cand[i], (const struct sockaddr *)&p->cand[i].addr);
		e->cand[i].type = p->cand[i].type;
		e->cand[i].extra = p->cand[i].priority;
	}
	s = (char *)&e->cand[n_cand];
	for (int i = 0; i < STR_N; i++) {
		memcpy(s, src[i], len[i]);
		s[len[i]] = '\0';
		s += len[i] + 1;
	}
}

static void list_unlink(struct registry *r, struct reg_entry *e)
{
	*(e->older ? &e->older->newer : &r->oldest) = e->newer;
	*(e->newer ? &e->newer->older : &r->newest) = e->older;
	e->older = e->newer = NULL;
}

/* Refreshed last: expires last (the lifetime is the same for all). */
static void list_append(struct registry *r, struct reg_entry *e)
{
	e->older = r->newest;
	e->newer = NULL;
	*(r->newest ? &r->newest->newer : &r->oldest) = e;
	r->newest = e;
}

static void entry_drop(struct registry *r, struct reg_entry *e,
                       uint64_t now_ms)
{
	list_unlink(r, e);
	table_del(r, &r->ids, &e->link, hash_node(r, &e->link, 0), 0);
	if (e->prefix)
		prefix_detach(r, e->prefix, now_ms);
	mem_free(r, e, entry_size_of(e));
}

/* Store p as e (refresh in place if the size is the same) or as a new
 * entry that replaces e.  Returns the entry, or NULL if out of memory. */
static struct reg_entry *entry_store(struct registry *r, struct reg_entry *e,
                                     const struct punch_peer *p,
                                     struct prefix *pf,
                                     const struct sockaddr *from, int sock,
                                     uint64_t now_ms)
{
	uint8_t len[STR_N];
	size_t n_cand, size = peer_size(p, &n_cand, len);
	struct reg_entry *n = e;
	struct caddr at;
	uint32_t epoch, seq = 0;

	/* The same session from the same address (a refresh, or a
	 * retransmitted REGISTER whose first answer the client took) keeps
	 * its RENEW key and count; anything else starts a new one. */
	caddr_put(&at, from);
	if (e && e->session == p->session && !memcmp(&e->from, &at, sizeof(at))) {
		epoch = e->epoch;
		seq = e->renew_seq;
	} else {
		epoch = ++r->epoch;
	}

	if (!e || entry_size_of(e) != size) {
		n = mem_alloc(r, size);
		if (!n)
			return NULL;
		if (e) {
			n->introduced = e->introduced;
			n->intro_self = e->intro_self;
			n->intro_peer = e->intro_peer;
		}
	} else {
		list_unlink(r, e);
	}
	entry_fill(r, n, p, n_cand, len, from, sock, now_ms);
	n->epoch = epoch;
	n->renew_seq = seq;
	if (n->prefix != pf) {
		prefix_attach(r, pf); /* before the old one lets go */
		if (n->prefix)
			prefix_detach(r, n->prefix, now_ms);
		n->prefix = pf;
	}
	if (n != e) {
		uint64_t h = hash_node(r, &n->link, 0);

		if (e)
			entry_drop(r, e, now_ms);
		n->tag = (uint32_t)(h >> 32);
		table_add(r, &r->ids, &n->link, h, 0);
	}
	list_append(r, n);
	return n;
}

/* ---- the registry ------------------------------------------------------- */

struct registry *registry_new(size_t max_entries, size_t per_prefix_max)
{
	struct registry *r;

	if (sodium_init() < 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->max = max_entries ? max_entries : 1;
	r->per_prefix_max = per_prefix_max;
	r->lifetime_ms = REGISTRY_LIFETIME_MS;
	r->idle_max = r->max > REGISTRY_IDLE_PREFIX_MIN ?
	                      r->max :
	                      REGISTRY_IDLE_PREFIX_MIN;
	registry_set_rate(r, REGISTRY_RATE_PER_S, REGISTRY_RATE_BURST);
	randombytes_buf(r->key, sizeof(r->key));
	if (table_init(r, &r->ids) || table_init(r, &r->prefixes)) {
		registry_free(r);
		return NULL;
	}
	return r;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	while (r->oldest) {
		struct reg_entry *e = r->oldest;

		list_unlink(r, e);
		mem_free(r, e, entry_size_of(e));
	}
	for (size_t i = 0; r->prefixes.b && i < r->prefixes.n_b; i++) {
		while (r->prefixes.b[i]) {
			struct hlink *l = r->prefixes.b[i];

			r->prefixes.b[i] = l->next;
			mem_free(r, l, sizeof(struct prefix));
		}
	}
	mem_free(r, r->ids.b, r->ids.n_b * sizeof(*r->ids.b));
	mem_free(r, r->prefixes.b, r->prefixes.n_b * sizeof(*r->prefixes.b));
	sodium_memzero(r->key, sizeof(r->key));
	free(r);
}

const struct reg_entry *registry_find(const struct registry *r,
                                      const char *id)
{
	return lookup(r, id);
}

int registry_remove(struct registry *r, const char *id,
                    const uint8_t key_fp[PUNCH_KEY_FP_LEN], uint64_t now_ms)
{
	struct reg_entry *e = lookup(r, id);

	if (!e)
		return 0;
	if (!e->has_key_fp || memcmp(e->key_fp, key_fp, PUNCH_KEY_FP_LEN))
		return -1;
	entry_drop(r, e, now_ms);
	return 1;
}

size_t registry_count(const struct registry *r)
{
	return r->ids.n;
}

static int key_differs(const struct reg_entry *e, const struct punch_peer *p)
{
	return e->has_key_fp &&
	       (!p->has_key_fp ||
	        memcmp(e->key_fp, p->key_fp, PUNCH_KEY_FP_LEN));
}

int registry_register(struct registry *r, const struct punch_peer *p,
                      const struct sockaddr *from, int sock, uint64_t now_ms,
                      const struct reg_entry **self,
                      const struct reg_entry **peer)
{
	struct reg_entry *e, *o;
	struct prefix *pf;

	if (!strcmp(p->id, p->peer_id))
		return REG_ERR_SAME_ID;
	e = lookup(r, p->id);
	if (e && key_differs(e, p))
		return REG_ERR_KEY;
	if (!e && r->ids.n >= r->max)
		return REG_ERR_FULL;
	pf = prefix_get(r, from);
	if (!pf)
		return REG_ERR_FULL;
	/* a new id, or one that moves to another prefix, needs room there */
	if ((!e || e->prefix != pf) && r->per_prefix_max &&
	    pf->n >= r->per_prefix_max)
		return REG_ERR_FULL;
	e = entry_store(r, e, p, pf, from, sock, now_ms);
	if (!e)
		return REG_ERR_FULL;

	o = lookup(r, p->peer_id);
	if (!o || strcmp(entry_str(o, STR_PEER_ID), p->id))
		return REG_WAITING;
	*self = e;
	*peer = o;
	if (e->introduced && o->introduced &&
	    e->intro_self == e->session && e->intro_peer == o->session &&
	    o->intro_self == o->session && o->intro_peer == e->session)
		return REG_PAIRED;
	e->introduced = o->introduced = 1;
	e->intro_self = o->intro_peer = e->session;
	e->intro_peer = o->intro_self = o->session;
	return REG_INTRODUCE;
}

void registry_renew(struct registry *r, const struct reg_entry *ce,
                    uint32_t seq, uint64_t now_ms)
{
	struct reg_entry *e = (struct reg_entry *)ce; /* one of ours */

	e->renew_seq = seq;
	e->expires_ms = now_ms + r->lifetime_ms;
	list_unlink(r, e);
	list_append(r, e);
}

void registry_set_lifetime(struct registry *r, uint64_t ms)
{
	r->lifetime_ms = ms ? ms : REGISTRY_LIFETIME_MS;
}

uint64_t registry_lifetime(const struct registry *r)
{
	return r->lifetime_ms;
}

/* Entries are kept in refresh order, so expiry pops the oldest while they
 * are due: its cost follows what expires, not the size of the table. */
size_t registry_expire(struct registry *r, uint64_t now_ms)
{
	size_t n = 0;

	while (r->oldest && r->oldest->expires_ms <= now_ms) {
		if (r->on_expire)
			r->on_expire(r->on_expire_ctx, r->oldest);
		entry_drop(r, r->oldest, now_ms);
		n++;
	}
	while (r->idle_head && r->idle_head->tat_ms <= now_ms)
		prefix_drop(r, r->idle_head);
	return n;
}

void registry_on_expire(struct registry *r, registry_expire_fn *fn, void *ctx)
{
	r->on_expire = fn;
	r->on_expire_ctx = ctx;
}

void registry_info(const struct registry *r, struct registry_info *out)
{
	memset(out, 0, sizeof(*out));
	out->entries = r->ids.n;
	out->prefixes = r->prefixes.n;
	out->idle_prefixes = r->n_idle;
	out->id_buckets = r->ids.n_b;
	out->prefix_buckets = r->prefixes.n_b;
	for (size_t i = 0; i < r->ids.n_b; i++) {
		size_t len = 0;

		for (const struct hlink *l = r->ids.b[i]; l; l = l->next)
			len++;
		if (len > out->longest_chain)
			out->longest_chain = len;
	}
	out->bytes = r->bytes;
	out->allocs = r->allocs;
	out->rate_limited = r->rate_limited;
}

const char *registry_result_str(int result)
{
	switch (result) {
	case REG_WAITING: return "waiting";
	case REG_PAIRED: return "paired";
	case REG_INTRODUCE: return "introduce";
	case REG_ERR_SAME_ID: return "id and peer id are the same";
	case REG_ERR_FULL: return "server is full";
	case REG_ERR_KEY: return "id is registered with a different key";
	default: return "?";
	}
}

/* ---- reading an entry --------------------------------------------------- */

const char *registry_entry_id(const struct reg_entry *e)
{
	return entry_str(e, STR_ID);
}

const char *registry_entry_peer_id(const struct reg_entry *e)
{
	return entry_str(e, STR_PEER_ID);
}

uint64_t registry_entry_session(const struct reg_entry *e)
{
	return e->session;
}

uint64_t registry_entry_expires(const struct reg_entry *e)
{
	return e->expires_ms;
}

void registry_entry_key_fp(const struct reg_entry *e,
                           uint8_t out[PUNCH_KEY_FP_LEN])
{
	memcpy(out, e->key_fp, PUNCH_KEY_FP_LEN);
}

uint32_t registry_entry_epoch(const struct reg_entry *e)
{
	return e->epoch;
}

uint32_t registry_entry_renew_seq(const struct reg_entry *e)
{
	return e->renew_seq;
}

int registry_entry_sock(const struct reg_entry *e)
{
	return e->sock;
}

void registry_entry_from(const struct reg_entry *e,
                         struct sockaddr_storage *out)
{
	caddr_get(&e->from, out);
}

void registry_entry_peer(const struct reg_entry *e, struct punch_peer *out)
{
	char *dst[STR_N] = { out->id, out->peer_id, out->ufrag, out->pwd };

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < STR_N; i++)
		memcpy(dst[i], entry_str(e, i), e->len[i] + 1u);
	memcpy(out->key_fp, e->key_fp, sizeof(out->key_fp));
	out->has_key_fp = e->has_key_fp;
	out->nat = e->nat;
	out->session = e->session;
	out->n_cand = e->n_cand;
	for (size_t i = 0; i < e->n_cand; i++) {
		out->cand[i].type = e->cand[i].type;
		out->cand[i].priority = e->cand[i].extra;
		caddr_get(&e->cand[i], &out->cand[i].addr);
	}
	caddr_get(&e->from, &out->observed);
	out->has_observed = 1;
}
