/*
 * The TURN relay's data path (RFC 8656 11, 12): ChannelData and Send
 * indications from clients to peers, and peers' datagrams back as Data
 * indications or ChannelData, within permissions, channels and
 * -relay-bps.
 */
#include <string.h>
#include <netinet/in.h>

#include "addr.h"
#include "stun.h"
#include "turn_alloc.h"
#include "turn_internal.h"
#include "turn_req.h"

/* ---- data ------------------------------------------------------------------ */

/* -relay-bps: a token bucket of one second's bytes per allocation, for
 * both directions together. */
static int rate_ok(struct turn_server *t, struct turn_alloc *a, size_t len,
                   uint64_t now)
{
	uint64_t bps = t->cfg.relay_bps;

	if (!bps)
		return 1;
	if (now > a->refilled) {
		uint64_t add = (now - a->refilled) * bps / 1000;

		a->tokens = a->tokens + add > bps ? bps : a->tokens + add;
		a->refilled = now;
	}
	if (a->tokens < len) {
		t->stats.over_rate++;
		return 0;
	}
	a->tokens -= len;
	return 1;
}

static int to_peer(struct turn_server *t, int slot, struct turn_alloc *a,
                   const struct sockaddr *peer, const uint8_t *data,
                   size_t len, uint64_t now, struct turn_out *o)
{
	if (!rate_ok(t, a, len, now))
		return TURN_DROP;
	o->slot = slot;
	memcpy(&o->to, peer, addr_len(peer));
	o->data = data;
	o->len = len;
	o->is_error = 0;
	t->stats.relayed_out++;
	t->stats.bytes_out += len;
	return TURN_TO_PEER;
}

/* RFC 8656 12.4: ChannelData from the client.  Over UDP the length field
 * may leave up to 3 bytes of padding; anything else is malformed. */
int turn_relay_channel(struct turn_server *t, int sock, const uint8_t *buf,
                       size_t len, const struct sockaddr *from, uint64_t now,
                       struct turn_out *o)
{
	uint16_t number, dlen;
	const struct turn_chan *c;
	struct turn_alloc *a;
	struct sockaddr_storage peer;
	int slot;

	if (len < TURN_CHANNEL_HEADER)
		goto malformed;
	number = (uint16_t)(buf[0] << 8 | buf[1]);
	dlen = (uint16_t)(buf[2] << 8 | buf[3]);
	if (number < TURN_CHANNEL_MIN || number > TURN_CHANNEL_MAX ||
	    (size_t)dlen + TURN_CHANNEL_HEADER > len ||
	    len - dlen - TURN_CHANNEL_HEADER > 3)
		goto malformed;
	slot = turn_table_find(&t->tb, sock, from);
	if (slot < 0 || !(c = turn_chan_by_number(t->tb.slots[slot], number,
	                                          now))) {
		t->stats.no_permission++;
		return TURN_DROP;
	}
	a = t->tb.slots[slot];
	if (!turn_perm_has(a, &c->ip, now)) {
		t->stats.no_permission++;
		return TURN_DROP;
	}
	memset(&peer, 0, sizeof(peer));
	peer = a->relayed;
	if (peer.ss_family == AF_INET)
		memcpy(&((struct sockaddr_in *)&peer)->sin_addr, c->ip.b, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&peer)->sin6_addr, c->ip.b, 16);
	addr_set_port((struct sockaddr *)&peer, c->port);
	return to_peer(t, slot, a, (const struct sockaddr *)&peer,
	               buf + TURN_CHANNEL_HEADER, dlen, now, o);
malformed:
	t->stats.malformed_channel++;
	return TURN_DROP;
}

/* RFC 8656 10.2 (11.4 in older numbering): a Send indication.  Nothing
 * answers an indication; what cannot be relayed is dropped. */
int turn_relay_send(struct turn_server *t, int sock, struct turn_req *r,
                    const struct sockaddr *from, uint64_t now,
                    struct turn_out *o)
{
	const struct sockaddr *peer = (const struct sockaddr *)&r->peers[0];
	struct turn_alloc *a;
	struct turn_ip ip;
	int slot;

	if (turn_req_parse(r) || r->n_peers != 1 || !r->has_data) {
		t->stats.malformed++;
		return TURN_DROP;
	}
	slot = turn_table_find(&t->tb, sock, from);
	if (slot < 0) {
		t->stats.no_permission++;
		return TURN_DROP;
	}
	a = t->tb.slots[slot];
	turn_ip_of(peer, &ip);
	if (peer->sa_family != a->relayed.ss_family ||
	    !turn_perm_has(a, &ip, now)) {
		t->stats.no_permission++;
		return TURN_DROP;
	}
	return to_peer(t, slot, a, peer, r->data, r->data_len, now, o);
}

/* ---- from peers -------------------------------------------------------- */

/* RFC 8656 11.3 / 12.5: a datagram from a peer goes to the client as
 * ChannelData if a channel is bound to that peer, else as a Data
 * indication; without a permission it is dropped. */
int turn_handle_peer(struct turn_server *t, int slot, const uint8_t *buf,
                     size_t len, const struct sockaddr *from, uint64_t now,
                     uint8_t *out, size_t cap, struct turn_out *o)
{
	struct turn_alloc *a;
	const struct turn_chan *c;
	struct turn_ip ip;
	int n;

	memset(o, 0, sizeof(*o));
	if (slot < 0 || (size_t)slot >= t->tb.max || !(a = t->tb.slots[slot]) ||
	    from->sa_family != a->relayed.ss_family)
		return TURN_DROP;
	turn_ip_of(from, &ip);
	if (!turn_perm_has(a, &ip, now)) {
		t->stats.no_permission++;
		return TURN_DROP;
	}
	if (len > 0xFFFF || !rate_ok(t, a, len, now))
		return TURN_DROP;
	c = turn_chan_by_peer(a, &ip, addr_port(from), now);
	if (c) {
		if (len + TURN_CHANNEL_HEADER > cap)
			return TURN_DROP;
		out[0] = (uint8_t)(c->number >> 8);
		out[1] = (uint8_t)c->number;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		memcpy(out + TURN_CHANNEL_HEADER, buf, len);
		n = (int)(len + TURN_CHANNEL_HEADER);
	} else {
		static const uint8_t zero_txid[STUN_TXID_LEN];
		uint8_t txid[STUN_TXID_LEN];
		struct stun_writer w;

		/* Indications need no unpredictable id; a counter will do */
		memcpy(txid, zero_txid, sizeof(txid));
		memcpy(txid, &t->stats.relayed_in, sizeof(t->stats.relayed_in));
		stun_writer_init(&w, out, cap, STUN_DATA, STUN_INDICATION, txid);
		stun_put_xor_addr(&w, STUN_ATTR_XOR_PEER_ADDRESS, from);
		stun_put_bytes(&w, STUN_ATTR_DATA, buf, len);
		n = stun_writer_finish(&w);
		if (n < 0)
			return TURN_DROP;
	}
	o->sock = a->sock;
	memcpy(&o->to, &a->client, sizeof(o->to));
	o->data = out;
	o->len = (size_t)n;
	t->stats.relayed_in++;
	t->stats.bytes_in += len;
	return TURN_TO_CLIENT;
}
