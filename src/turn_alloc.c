/*
 * TURN allocations: a table of slots found by 5-tuple through a keyed hash
 * (SipHash, so that clients cannot aim at one chain), and each
 * allocation's permissions and channels in small fixed arrays.
 */
#include "turn_alloc.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "addr.h"

int turn_table_init(struct turn_table *tb, size_t max)
{
	size_t nb = 16;

	memset(tb, 0, sizeof(*tb));
	while (nb < max)
		nb <<= 1;
	tb->slots = calloc(max, sizeof(*tb->slots));
	tb->buckets = malloc(nb * sizeof(*tb->buckets));
	tb->free_slots = malloc(max * sizeof(*tb->free_slots));
	if (!tb->slots || !tb->buckets || !tb->free_slots) {
		turn_table_fini(tb);
		return -1;
	}
	for (size_t i = 0; i < nb; i++)
		tb->buckets[i] = -1;
	/* Lowest slots first, so a test sees slot 0, 1, ... */
	for (size_t i = 0; i < max; i++)
		tb->free_slots[i] = (int32_t)(max - 1 - i);
	tb->n_free = max;
	tb->max = max;
	tb->mask = nb - 1;
	randombytes_buf(tb->hash_key, sizeof(tb->hash_key));
	return 0;
}

void turn_table_fini(struct turn_table *tb)
{
	for (size_t i = 0; tb->slots && i < tb->max; i++)
		free(tb->slots[i]);
	free(tb->slots);
	free(tb->buckets);
	free(tb->free_slots);
	memset(tb, 0, sizeof(*tb));
}

static size_t bucket_of(const struct turn_table *tb, int sock,
                        const struct sockaddr *sa)
{
	uint8_t in[4 + 2 + 16] = { 0 }, h[crypto_shorthash_BYTES];
	uint64_t v = 0;
	size_t n = 6;
	uint16_t port = addr_port(sa);

	memcpy(in, &sock, 4);
	memcpy(in + 4, &port, 2);
	if (sa->sa_family == AF_INET) {
		memcpy(in + 6, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		n += 4;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(in + 6, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		n += 16;
	}
	crypto_shorthash(h, in, n, tb->hash_key);
	memcpy(&v, h, sizeof(v));
	return (size_t)v & tb->mask;
}

int turn_table_find(const struct turn_table *tb, int sock,
                    const struct sockaddr *client)
{
	int32_t i = tb->buckets[bucket_of(tb, sock, client)];

	/* Chains are bounded by the table's size. */
	for (size_t n = 0; i >= 0 && n < tb->max; n++) {
		const struct turn_alloc *a = tb->slots[i];

		if (a->sock == sock &&
		    addr_equal((const struct sockaddr *)&a->client, client))
			return i;
		i = a->next;
	}
	return -1;
}

int turn_table_add(struct turn_table *tb, int sock,
                   const struct sockaddr *client)
{
	size_t b = bucket_of(tb, sock, client);
	struct turn_alloc *a;
	int32_t slot;

	if (!tb->n_free || !(a = calloc(1, sizeof(*a))))
		return -1;
	slot = tb->free_slots[--tb->n_free];
	a->sock = sock;
	memcpy(&a->client, client, addr_len(client));
	a->next = tb->buckets[b];
	tb->buckets[b] = slot;
	tb->slots[slot] = a;
	tb->count++;
	return slot;
}

void turn_table_remove(struct turn_table *tb, int slot)
{
	struct turn_alloc *a = tb->slots[slot];
	int32_t *p;

	if (!a)
		return;
	p = &tb->buckets[bucket_of(tb, a->sock,
	                           (const struct sockaddr *)&a->client)];
	for (size_t n = 0; *p >= 0 && n < tb->max; n++) {
		if (*p == slot) {
			*p = a->next;
			break;
		}
		p = &tb->slots[*p]->next;
	}
	free(a);
	tb->slots[slot] = NULL;
	tb->free_slots[tb->n_free++] = slot;
	tb->count--;
}

void turn_ip_of(const struct sockaddr *sa, struct turn_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET)
		memcpy(ip->b, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(ip->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

int turn_perm_has(const struct turn_alloc *a, const struct turn_ip *ip,
                  uint64_t now)
{
	for (int i = 0; i < TURN_PERMS_MAX; i++)
		if (a->perms[i].expires > now &&
		    !memcmp(&a->perms[i].ip, ip, sizeof(*ip)))
			return 1;
	return 0;
}

int turn_perm_set(struct turn_alloc *a, const struct turn_ip *ip,
                  uint64_t now)
{
	int spare = -1;

	for (int i = 0; i < TURN_PERMS_MAX; i++) {
		struct turn_perm *p = &a->perms[i];

		if (p->expires > now && !memcmp(&p->ip, ip, sizeof(*ip))) {
			p->expires = now + TURN_PERMISSION_S * 1000ULL;
			return 0;
		}
		if (p->expires <= now && spare < 0)
			spare = i;
	}
	if (spare < 0)
		return -1;
	a->perms[spare].ip = *ip;
	a->perms[spare].expires = now + TURN_PERMISSION_S * 1000ULL;
	return 0;
}

static int chan_live(const struct turn_chan *c, uint64_t now)
{
	return c->number && c->expires > now;
}

/* Bound or still in its cooldown: the number and peer are taken. */
static int chan_reserved(const struct turn_chan *c, uint64_t now)
{
	return c->number &&
	       c->expires + TURN_CHANNEL_COOLDOWN_S * 1000ULL > now;
}

const struct turn_chan *turn_chan_by_peer(const struct turn_alloc *a,
                                          const struct turn_ip *ip,
                                          uint16_t port, uint64_t now)
{
	for (int i = 0; i < TURN_CHANNELS_MAX; i++) {
		const struct turn_chan *c = &a->chans[i];

		if (chan_live(c, now) && c->port == port &&
		    !memcmp(&c->ip, ip, sizeof(*ip)))
			return c;
	}
	return NULL;
}

const struct turn_chan *turn_chan_by_number(const struct turn_alloc *a,
                                            uint16_t number, uint64_t now)
{
	for (int i = 0; i < TURN_CHANNELS_MAX; i++)
		if (a->chans[i].number == number && chan_live(&a->chans[i], now))
			return &a->chans[i];
	return NULL;
}

int turn_chan_bind(struct turn_alloc *a, uint16_t number,
                   const struct turn_ip *ip, uint16_t port, uint64_t now)
{
	int spare = -1;

	for (int i = 0; i < TURN_CHANNELS_MAX; i++) {
		struct turn_chan *c = &a->chans[i];
		int same_peer = c->port == port &&
		                !memcmp(&c->ip, ip, sizeof(*ip));

		if (!chan_reserved(c, now)) {
			if (spare < 0)
				spare = i;
			continue;
		}
		if (c->number == number && same_peer) {
			/* RFC 8656 11.2: a refresh of the same binding */
			c->expires = now + TURN_CHANNEL_S * 1000ULL;
			return 0;
		}
		/* RFC 8656 11.2: the number is bound to another peer, or the
		 * peer to another number (also while in cooldown, 12) */
		if (c->number == number || same_peer)
			return 400;
	}
	if (spare < 0)
		return 508;
	a->chans[spare] = (struct turn_chan){
		.ip = *ip,
		.port = port,
		.number = number,
		.expires = now + TURN_CHANNEL_S * 1000ULL,
	};
	return 0;
}
