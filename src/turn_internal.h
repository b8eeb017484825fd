/*
 * What turn_server.c and turn_relay.c share: the server's state.  Private
 * to the relay; everyone else goes through turn_server.h.
 */
#ifndef PUNCH_TURN_INTERNAL_H
#define PUNCH_TURN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "turn_alloc.h"
#include "turn_auth.h"
#include "turn_req.h"
#include "turn_server.h"

struct turn_server {
	struct turn_config cfg;
	struct turn_ops ops;
	struct turn_auth auth;
	struct turn_table tb;
	struct turn_stats stats;
	uint64_t wall_at_zero_s;
	uint32_t port_cursor;
	uint8_t port_used[65536 / 8];
	uint64_t next_tick;
	struct turn_group *group; /* -threads: NULL alone */
};

/* ChannelData from a client (RFC 8656 12.4). */
int turn_relay_channel(struct turn_server *t, int sock, const uint8_t *buf,
                       size_t len, const struct sockaddr *from, uint64_t now,
                       struct turn_out *o);
/* A Send indication from a client (RFC 8656 11.4), decoded in r->m. */
int turn_relay_send(struct turn_server *t, int sock, struct turn_req *r,
                    const struct sockaddr *from, uint64_t now,
                    struct turn_out *o);

#endif
