#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "addr.h"

struct registry {
	struct reg_entry *pool;  /* max entries, allocated once */
	struct reg_entry **buckets;
	size_t max, n_buckets, count, per_ip_max;
	struct reg_entry *free_list;
	registry_expire_fn *on_expire;
	void *on_expire_ctx;
};

/* FNV-1a: ids are short, and a bucket walk is checked against the id. */
static size_t hash_id(const char *id, size_t n_buckets)
{
	uint32_t h = 2166136261u;

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h % n_buckets;
}

struct registry *registry_new(size_t max_entries, size_t per_ip_max)
{
	struct registry *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->max = max_entries ? max_entries : 1;
	r->n_buckets = r->max * 2 + 1;
	r->per_ip_max = per_ip_max;
	r->pool = calloc(r->max, sizeof(*r->pool));
	r->buckets = calloc(r->n_buckets, sizeof(*r->buckets));
	if (!r->pool || !r->buckets) {
		registry_free(r);
		return NULL;
	}
	for (size_t i = r->max; i-- > 0;) {
		r->pool[i].next = r->free_list;
		r->free_list = &r->pool[i];
	}
	return r;
}

void registry_free(struct registry *r)
{
	if (!r)
		return;
	free(r->pool);
	free(r->buckets);
	free(r);
}

static struct reg_entry *lookup(const struct registry *r, const char *id)
{
	struct reg_entry *e = r->buckets[hash_id(id, r->n_buckets)];

	while (e && strcmp(e->peer.id, id))
		e = e->next;
	return e;
}

const struct reg_entry *registry_find(const struct registry *r,
                                      const char *id)
{
	return lookup(r, id);
}

size_t registry_count(const struct registry *r)
{
	return r->count;
}

static size_t count_from_ip(const struct registry *r,
                            const struct sockaddr *from)
{
	size_t n = 0;

	for (size_t i = 0; i < r->max; i++)
		if (r->pool[i].used &&
		    addr_same_ip((const struct sockaddr *)&r->pool[i].from, from))
			n++;
	return n;
}

static struct reg_entry *insert(struct registry *r, const char *id)
{
	struct reg_entry *e = r->free_list;
	size_t b = hash_id(id, r->n_buckets);

	r->free_list = e->next;
	memset(e, 0, sizeof(*e));
	e->used = 1;
	e->next = r->buckets[b];
	r->buckets[b] = e;
	r->count++;
	return e;
}

static void unlink_entry(struct registry *r, struct reg_entry *e)
{
	struct reg_entry **p = &r->buckets[hash_id(e->peer.id, r->n_buckets)];

	while (*p != e)
		p = &(*p)->next;
	*p = e->next;
	memset(e, 0, sizeof(*e));
	e->next = r->free_list;
	r->free_list = e;
	r->count--;
}

int registry_register(struct registry *r, const struct punch_peer *p,
                      const struct sockaddr *from, int sock, uint64_t now_ms,
                      const struct reg_entry **self,
                      const struct reg_entry **peer)
{
	struct reg_entry *e, *o;

	if (!strcmp(p->id, p->peer_id))
		return REG_ERR_SAME_ID;
	e = lookup(r, p->id);
	if (e && e->peer.has_key_fp &&
	    (!p->has_key_fp || memcmp(e->peer.key_fp, p->key_fp,
	                              PUNCH_KEY_FP_LEN)))
		return REG_ERR_KEY;
	if (!e) {
		if (!r->free_list ||
		    (r->per_ip_max && count_from_ip(r, from) >= r->per_ip_max))
			return REG_ERR_FULL;
		e = insert(r, p->id);
	}
	e->peer = *p;
	memset(&e->from, 0, sizeof(e->from));
	memcpy(&e->from, from, addr_len(from));
	e->sock = sock;
	e->expires_ms = now_ms + REGISTRY_LIFETIME_MS;

	o = lookup(r, p->peer_id);
	if (!o || strcmp(o->peer.peer_id, p->id))
		return REG_WAITING;
	*self = e;
	*peer = o;
	if (e->introduced && o->introduced &&
	    e->intro_self == e->peer.session && e->intro_peer == o->peer.session &&
	    o->intro_self == o->peer.session && o->intro_peer == e->peer.session)
		return REG_PAIRED;
	e->introduced = o->introduced = 1;
	e->intro_self = o->intro_peer = e->peer.session;
	e->intro_peer = o->intro_self = o->peer.session;
	return REG_INTRODUCE;
}

size_t registry_expire(struct registry *r, uint64_t now_ms)
{
	size_t n = 0;

	for (size_t i = 0; i < r->max; i++) {
		if (r->pool[i].used && r->pool[i].expires_ms <= now_ms) {
			if (r->on_expire)
				r->on_expire(r->on_expire_ctx, &r->pool[i]);
			unlink_entry(r, &r->pool[i]);
			n++;
		}
	}
	return n;
}

void registry_on_expire(struct registry *r, registry_expire_fn *fn, void *ctx)
{
	r->on_expire = fn;
	r->on_expire_ctx = ctx;
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
