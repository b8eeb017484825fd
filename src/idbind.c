#include "idbind.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"

enum {
	BUCKETS_MIN = 64,
	LAST_DIGITS_MAX = 20, /* a uint64_t in decimal */
};

struct binding {
	struct binding *next;
	uint64_t last_s;      /* last use */
	uint64_t marked_s;    /* last use as last marked dirty */
	uint8_t fp[PUNCH_KEY_FP_LEN];
	char id[];            /* NUL-terminated; memory as the id needs */
};

struct idbind {
	struct binding **bucket;
	size_t n_buckets;     /* a power of two */
	size_t count, max;
	uint64_t ttl_s;
	int dirty;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

struct idbind *idbind_new(uint64_t ttl_s, size_t max)
{
	struct idbind *t = calloc(1, sizeof(*t));

	if (!t || sodium_init() < 0)
		goto fail;
	t->n_buckets = BUCKETS_MIN;
	t->bucket = calloc(t->n_buckets, sizeof(*t->bucket));
	if (!t->bucket)
		goto fail;
	t->ttl_s = ttl_s;
	t->max = max;
	/* A random SipHash key: nobody can choose ids that share a bucket. */
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	return t;
fail:
	idbind_free(t);
	return NULL;
}

void idbind_free(struct idbind *t)
{
	if (!t)
		return;
	for (size_t i = 0; t->bucket && i < t->n_buckets; i++) {
		struct binding *b = t->bucket[i], *next;

		for (; b; b = next) {
			next = b->next;
			free(b);
		}
	}
	free(t->bucket);
	free(t);
}

void idbind_set_ttl(struct idbind *t, uint64_t ttl_s)
{
	t->ttl_s = ttl_s;
}

static size_t slot_of(const struct idbind *t, const char *id)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, (const unsigned char *)id, strlen(id), t->hash_key);
	memcpy(&v, h, sizeof(v));
	return (size_t)(v & (t->n_buckets - 1));
}

static struct binding **find(const struct idbind *t, const char *id)
{
	struct binding **p = &t->bucket[slot_of(t, id)];

	while (*p && strcmp((*p)->id, id))
		p = &(*p)->next;
	return p;
}

/* Double the buckets when the chains average more than one binding. */
static void grow(struct idbind *t)
{
	size_t n = t->n_buckets * 2;
	struct binding **nb, **old = t->bucket;
	size_t old_n = t->n_buckets;

	if (t->count < t->n_buckets || !(nb = calloc(n, sizeof(*nb))))
		return; /* without memory the chains just get longer */
	t->bucket = nb;
	t->n_buckets = n;
	for (size_t i = 0; i < old_n; i++) {
		struct binding *b = old[i], *next;

		for (; b; b = next) {
			size_t s = slot_of(t, b->id);

			next = b->next;
			b->next = nb[s];
			nb[s] = b;
		}
	}
	free(old);
}

static int expired(const struct idbind *t, const struct binding *b,
                   uint64_t now_s)
{
	return now_s > b->last_s && now_s - b->last_s > t->ttl_s;
}

int idbind_check(const struct idbind *t, const char *id,
                 const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_s)
{
	const struct binding *b = *find(t, id);

	if (!b || expired(t, b, now_s) ||
	    !sodium_memcmp(b->fp, fp, PUNCH_KEY_FP_LEN))
		return IDBIND_OK;
	return IDBIND_OTHER;
}

static int insert(struct idbind *t, const char *id,
                  const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t last_s)
{
	size_t len = strlen(id);
	struct binding *b, **p;

	if (len == 0 || len > PUNCH_ID_MAX)
		return IDBIND_FULL;
	if (t->count >= t->max || !(b = malloc(sizeof(*b) + len + 1)))
		return IDBIND_FULL;
	memcpy(b->id, id, len + 1);
	memcpy(b->fp, fp, PUNCH_KEY_FP_LEN);
	b->last_s = b->marked_s = last_s;
	p = &t->bucket[slot_of(t, id)];
	b->next = *p;
	*p = b;
	t->count++;
	t->dirty = 1;
	grow(t);
	return IDBIND_OK;
}

int idbind_touch(struct idbind *t, const char *id,
                 const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t now_s)
{
	struct binding *b = *find(t, id);

	if (!b)
		return insert(t, id, fp, now_s);
	if (sodium_memcmp(b->fp, fp, PUNCH_KEY_FP_LEN)) {
		if (!expired(t, b, now_s))
			return IDBIND_OTHER;
		memcpy(b->fp, fp, PUNCH_KEY_FP_LEN); /* a new holder */
		b->marked_s = 0;
	}
	if (now_s > b->last_s)
		b->last_s = now_s;
	if (b->last_s - b->marked_s >= IDBIND_MARK_S || b->marked_s == 0) {
		b->marked_s = b->last_s;
		t->dirty = 1;
	}
	return IDBIND_OK;
}

int idbind_release(struct idbind *t, const char *id,
                   const uint8_t fp[PUNCH_KEY_FP_LEN])
{
	struct binding **p = find(t, id), *b = *p;

	if (!b)
		return IDBIND_UNBOUND;
	if (sodium_memcmp(b->fp, fp, PUNCH_KEY_FP_LEN))
		return IDBIND_OTHER;
	*p = b->next;
	free(b);
	t->count--;
	t->dirty = 1;
	return IDBIND_OK;
}

size_t idbind_expire(struct idbind *t, uint64_t now_s)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n_buckets; i++) {
		struct binding **p = &t->bucket[i];

		while (*p) {
			struct binding *b = *p;

			if (!expired(t, b, now_s)) {
				p = &b->next;
				continue;
			}
			*p = b->next;
			free(b);
			t->count--;
			n++;
		}
	}
	if (n)
		t->dirty = 1;
	return n;
}

size_t idbind_count(const struct idbind *t)
{
	return t->count;
}

int idbind_dirty(const struct idbind *t)
{
	return t->dirty;
}

void idbind_clean(struct idbind *t)
{
	t->dirty = 0;
}

void idbind_foreach(const struct idbind *t, idbind_visit_fn *fn, void *ctx)
{
	for (size_t i = 0; i < t->n_buckets; i++)
		for (const struct binding *b = t->bucket[i]; b; b = b->next)
			fn(ctx, b->id, b->fp, b->last_s);
}

int idbind_load(struct idbind *t, const char *id,
                const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t last_s)
{
	struct binding *b = *find(t, id);

	if (b) {
		/* a repeated id: the later use wins */
		if (last_s > b->last_s) {
			memcpy(b->fp, fp, PUNCH_KEY_FP_LEN);
			b->last_s = b->marked_s = last_s;
		}
		return IDBIND_OK;
	}
	return insert(t, id, fp, last_s);
}

/* The next space-separated field of line[*i..len): its start and length. */
static size_t field(const char *line, size_t len, size_t *i, size_t *start)
{
	while (*i < len && line[*i] == ' ')
		(*i)++;
	*start = *i;
	while (*i < len && line[*i] != ' ')
		(*i)++;
	return *i - *start;
}

int idbind_parse_line(const char *line, size_t len,
                      char id[PUNCH_ID_MAX + 1],
                      uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t *last_s)
{
	char fps[IDENTITY_FP_STRLEN];
	size_t i = 0, s, n;
	uint64_t v = 0;

	if (len && line[len - 1] == '\r')
		len--;
	if (field(line, len, &i, &s) == 0 || line[s] == '#')
		return 0;
	n = i - s;
	if (n >= sizeof(fps))
		return -1;
	memcpy(fps, line + s, n);
	fps[n] = '\0';
	if (identity_fp_parse(fps, fp))
		return -1;
	n = field(line, len, &i, &s);
	if (n == 0 || n > LAST_DIGITS_MAX)
		return -1;
	for (size_t k = s; k < i; k++) {
		uint64_t d = (uint64_t)(line[k] - '0');

		if (line[k] < '0' || line[k] > '9' || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	n = field(line, len, &i, &s);
	if (n == 0 || i != len ||
	    punch_id_check((const uint8_t *)line + s, n))
		return -1;
	memcpy(id, line + s, n);
	id[n] = '\0';
	*last_s = v;
	return 1;
}

int idbind_format_line(char *out, size_t cap, const char *id,
                       const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t last_s)
{
	char fps[IDENTITY_FP_STRLEN];
	int n;

	identity_fp_str(fp, fps);
	n = snprintf(out, cap, "%s %llu %s\n", fps, (unsigned long long)last_s,
	             id);
	return n > 0 && (size_t)n < cap ? n : -1;
}
