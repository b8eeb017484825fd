/*
 * TURN allocations, their permissions and channels (RFC 8656 2.2, 9, 12),
 * and the table that finds them by 5-tuple.  Pure: times are passed in.
 */
#ifndef PUNCH_TURN_ALLOC_H
#define PUNCH_TURN_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "stun.h"
#include "turn_auth.h"
#include "turn_server.h"

/* A peer's address in 20 bytes rather than a 128-byte sockaddr_storage;
 * the family is the allocation's. */
struct turn_ip {
	uint8_t b[16];
};

struct turn_perm {
	struct turn_ip ip;
	uint64_t expires;           /* ms; 0: free */
};

struct turn_chan {
	struct turn_ip ip;
	uint16_t port;
	uint16_t number;            /* 0: free */
	uint64_t expires;           /* ms; reserved until + cooldown */
};

struct turn_alloc {
	int32_t next;               /* hash chain, -1 at the end */
	int sock;     /* listen socket: part of the 5-tuple */
	struct sockaddr_storage client;
	struct sockaddr_storage relayed;
	uint64_t expires;           /* ms */
	uint64_t tokens, refilled;  /* -relay-bps token bucket */
	uint8_t txid[STUN_TXID_LEN]; /* of the Allocate: retransmissions */
	uint8_t key[TURN_KEY_LEN];
	uint8_t username_len;
	uint8_t minted;             /* credentials from the rendezvous */
	char username[TURN_USERNAME_MAX];
	struct turn_perm perms[TURN_PERMS_MAX];
	struct turn_chan chans[TURN_CHANNELS_MAX];
};

struct turn_table {
	struct turn_alloc **slots;  /* by slot; NULL: free */
	int32_t *buckets;           /* hash heads */
	int32_t *free_slots;        /* stack */
	size_t n_free, max, mask, count;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

int turn_table_init(struct turn_table *tb, size_t max);
void turn_table_fini(struct turn_table *tb);
int turn_table_find(const struct turn_table *tb, int sock,
                    const struct sockaddr *client);
/* A new zeroed allocation for this 5-tuple; its slot, or -1 if full. */
int turn_table_add(struct turn_table *tb, int sock,
                   const struct sockaddr *client);
void turn_table_remove(struct turn_table *tb, int slot);

void turn_ip_of(const struct sockaddr *sa, struct turn_ip *ip);
/* Permission for the IP of peer (RFC 8656 9: the port does not count). */
int turn_perm_has(const struct turn_alloc *a, const struct turn_ip *ip,
                  uint64_t now);
/* Install or refresh; -1 when all TURN_PERMS_MAX are live. */
int turn_perm_set(struct turn_alloc *a, const struct turn_ip *ip,
                  uint64_t now);
/* The live channel for peer ip:port, or NULL. */
const struct turn_chan *turn_chan_by_peer(const struct turn_alloc *a,
                                          const struct turn_ip *ip,
                                          uint16_t port, uint64_t now);
const struct turn_chan *turn_chan_by_number(const struct turn_alloc *a,
                                            uint16_t number, uint64_t now);
/* RFC 8656 11.2 rules; 0, 400 (number or peer bound otherwise), or 508
 * (all channels in use). */
int turn_chan_bind(struct turn_alloc *a, uint16_t number,
                   const struct turn_ip *ip, uint16_t port, uint64_t now);

#endif
