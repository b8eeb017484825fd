/*
 * NAT-PMP (RFC 6886) and PCP (RFC 6887) on the wire: pure request builders
 * and response parsers for the little of each that punch uses, a UDP
 * mapping of one port and the gateway's external address.  No sockets here
 * (portmap.c sends and receives); every parser checks every length and
 * field against the request it answers, and answers "not for us" (-1) for
 * anything else, never aborting.
 */
#ifndef PUNCH_PORTMAP_PROTO_H
#define PUNCH_PORTMAP_PROTO_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

enum {
	PORTMAP_SERVER_PORT = 5351,   /* RFC 6886 3.1, RFC 6887 19.1 */
	PORTMAP_CLIENT_PORT = 5350,   /* where announcements go: not used */
	NATPMP_EXTERNAL_REQ_LEN = 2,  /* RFC 6886 3.2 */
	NATPMP_EXTERNAL_RESP_LEN = 12,
	NATPMP_MAP_REQ_LEN = 12,      /* RFC 6886 3.3 */
	NATPMP_MAP_RESP_LEN = 16,
	PCP_NONCE_LEN = 12,           /* RFC 6887 11.1 */
	PCP_MAP_REQ_LEN = 60,         /* 24-byte header + 36-byte MAP */
	PCP_MAP_RESP_MIN = 60,
	PCP_MSG_MAX = 1100,           /* RFC 6887 7: messages are at most 1100 bytes */
};

/* Result codes worth a name (RFC 6886 3.5; RFC 6887 7.4). */
enum {
	PORTMAP_OK = 0,
	NATPMP_UNSUPP_VERSION = 1,
	PCP_UNSUPP_VERSION = 1,
};

/* What a gateway gave: the external address and port of the mapping (or
 * only the address, for NAT-PMP's external-address answer), the lifetime
 * it granted and its epoch (a gateway that restarted has a smaller one). */
struct portmap_grant {
	int result;            /* the gateway's result code; 0 is success */
	struct in_addr ext_ip; /* 0.0.0.0 when the answer had none */
	uint16_t internal_port;
	uint16_t ext_port;
	uint32_t lifetime_s;
	uint32_t epoch_s;
};

/* NAT-PMP requests: the external address (2 bytes), and a UDP mapping of
 * internal_port (12 bytes; lifetime 0 deletes it, RFC 6886 3.4).  Return
 * the length written, or -1 when len is too small. */
int natpmp_build_external(uint8_t *buf, size_t len);
int natpmp_build_map_udp(uint8_t *buf, size_t len, uint16_t internal_port,
                         uint16_t suggested_ext_port, uint32_t lifetime_s);

/* NAT-PMP answers.  0 and *g filled when buf is an answer of that kind
 * (any result code: the caller reads g->result), -1 when it is not one. */
int natpmp_parse_external(struct portmap_grant *g, const uint8_t *buf,
                          size_t len);
int natpmp_parse_map_udp(struct portmap_grant *g, const uint8_t *buf,
                         size_t len, uint16_t internal_port);

/* PCP MAP for UDP (RFC 6887 11.1): client_ip is our own address as the
 * gateway sees it (the request's source; 11.1 PCP client IP), written as an
 * IPv4-mapped IPv6 address.  Lifetime 0 deletes the mapping (15). */
int pcp_build_map_udp(uint8_t *buf, size_t len,
                      const uint8_t nonce[PCP_NONCE_LEN],
                      struct in_addr client_ip, uint16_t internal_port,
                      uint16_t suggested_ext_port, uint32_t lifetime_s);

/* A PCP MAP answer to our request: the right version, opcode, protocol,
 * internal port and nonce (RFC 6887 11.3: anything else is not ours).
 * 0 and *g filled, or -1.  A NAT-PMP gateway that answers PCP with its own
 * "unsupported version" answer is -1 here too. */
int pcp_parse_map_udp(struct portmap_grant *g, const uint8_t *buf, size_t len,
                      const uint8_t nonce[PCP_NONCE_LEN],
                      uint16_t internal_port);

/* The default IPv4 gateway in the text of /proc/net/route (len bytes, not
 * NUL-terminated): the up gateway route to 0.0.0.0/0 with the lowest
 * metric.  0 and *gw, or -1 when there is none. */
int portmap_parse_route(const char *text, size_t len, struct in_addr *gw);

/* Whether a gateway's external address can be a candidate: not 0.0.0.0/8,
 * loopback, link-local, multicast, reserved (240/4) or broadcast, which a confused or
 * hostile gateway may report.  (A private address can be real: a router
 * behind another NAT.)  1 or 0. */
int portmap_ext_usable(struct in_addr ip);

/* The external address an IGD gave as text (GetExternalIPAddress's
 * NewExternalIPAddress, len bytes, not necessarily NUL-terminated): a
 * dotted quad, usable as above.  0 and *ip, or -1. */
int portmap_parse_ext_ip(const char *text, size_t len, struct in_addr *ip);

#endif
