/*
 * punch's own STUN methods and attributes: the rendezvous protocol.
 * docs/protocol.md describes them; the numbers are in ranges IANA has not
 * assigned (methods 0x07C-0x07F, attributes 0x4F01-0x4F0E).  The methods
 * sit below 0x080 so that the first byte of every message stays in 0-3,
 * where RFC 9443 demultiplexing expects STUN.
 *
 * Pure: parses and builds messages with stun.c's codec, no sockets.
 */
#ifndef PUNCH_ATTR_H
#define PUNCH_ATTR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "stun.h"

enum punch_method {
	PUNCH_RENEW = 0x07C,     /* client -> server, request: keep my
	                          * registration, by MAC (docs/protocol.md) */
	PUNCH_REGISTER = 0x07D,  /* client -> server, request */
	PUNCH_PEER_INFO = 0x07E, /* server -> client, request */
	PUNCH_RELEASE = 0x07F,   /* client -> server, request: drop my id */
};

enum punch_attr_type {
	PUNCH_ATTR_ID = 0x4F01,        /* UTF-8, 1..64 bytes */
	PUNCH_ATTR_PEER_ID = 0x4F02,   /* the id this client wants to reach */
	PUNCH_ATTR_CANDIDATE = 0x4F03, /* repeated */
	PUNCH_ATTR_UFRAG = 0x4F04,     /* check credentials (RFC 8445 5.3) */
	PUNCH_ATTR_PWD = 0x4F05,
	PUNCH_ATTR_KEY_FP = 0x4F06,    /* SHA-256 of the identity key */
	PUNCH_ATTR_SESSION = 0x4F07,   /* 64-bit random, new each run */
	PUNCH_ATTR_LIFETIME = 0x4F08,  /* seconds */
	PUNCH_ATTR_STATUS = 0x4F09,    /* enum punch_status */
	PUNCH_ATTR_OBSERVED = 0x4F0A,  /* XOR address the server saw */
	PUNCH_ATTR_PUBKEY = 0x4F0B,    /* the client's raw Ed25519 key, 32 bytes */
	PUNCH_ATTR_SIGNATURE = 0x4F0C, /* Ed25519, 64 bytes; see sign.h */
	PUNCH_ATTR_SERVER_KEY = 0x4F0D, /* the server's raw Ed25519 key */
	PUNCH_ATTR_RENEW_SEQ = 0x4F0E, /* RENEW: 32-bit, above the last one */
	/* Comprehension-optional, so that a client that knows no relay
	 * ignores it: relay credentials in a REGISTER success */
	PUNCH_ATTR_RELAY = 0xCF01,
	/* Comprehension-optional too: the client's NAT mapping behaviour in
	 * REGISTER, passed on in PEER-INFO (struct punch_nat) */
	PUNCH_ATTR_NAT = 0xCF02,
	/* Comprehension-optional: in a REGISTER success, the 32-byte key
	 * of this registration's RENEWs, for a client that knows them */
	PUNCH_ATTR_RENEW_KEY = 0xCF03,
};

enum { PUNCH_RENEW_KEY_LEN = 32 }; /* HMAC-SHA256's, RFC 8489 14.6 */

/* How the client's NAT maps (RFC 4787 4.1), as one extra Binding to the
 * server's alternate address shows it: one Binding cannot tell
 * address-dependent from address-and-port-dependent, so both are
 * "dependent". */
enum punch_nat_mapping {
	PUNCH_NAT_UNKNOWN = 0,     /* the server has no -alt, or no answer */
	PUNCH_NAT_INDEPENDENT = 1, /* endpoint-independent: the same mapping */
	PUNCH_NAT_DEPENDENT = 2,   /* another mapping for another destination */
};

/* How its ports are allocated, from the same two Bindings. */
enum punch_nat_ports {
	PUNCH_PORTS_UNKNOWN = 0,
	PUNCH_PORTS_PRESERVED = 1, /* the mapped port is the local port */
	PUNCH_PORTS_SEQUENTIAL = 2, /* dependent, the two ports close together */
	PUNCH_PORTS_RANDOM = 3,    /* dependent, the two ports far apart */
	PUNCH_PORTS_SEQUENTIAL_DELTA_MAX = 16,
};

struct punch_nat {
	uint8_t mapping;  /* enum punch_nat_mapping */
	uint8_t ports;    /* enum punch_nat_ports */
	int16_t delta;    /* second mapped port minus the first */
};

enum punch_status {
	PUNCH_STATUS_WAITING = 0, /* registered; the peer is not here yet */
	PUNCH_STATUS_PAIRED = 1,  /* both here; PEER-INFO is on its way */
};

enum punch_cand_type {
	CAND_HOST = 1,
	CAND_SRFLX = 2,
	CAND_PRFLX = 3,
	CAND_RELAY = 4,
	/* a port the gateway mapped for us (UPnP, NAT-PMP, PCP): portmap.h */
	CAND_MAPPED = 5,
};

enum {
	PUNCH_ID_MAX = 64,
	PUNCH_CANDIDATES_MAX = 12,
	PUNCH_UFRAG_MAX = 32,
	PUNCH_PWD_MAX = 64,
	PUNCH_KEY_FP_LEN = 32,
	PUNCH_MSG_MAX = 1200, /* every message fits one unfragmented datagram */
};

struct punch_candidate {
	uint8_t type;     /* enum punch_cand_type */
	uint32_t priority;
	struct sockaddr_storage addr;
};

/* What a client registers, and what PEER-INFO relays about the peer. */
struct punch_peer {
	char id[PUNCH_ID_MAX + 1];
	char peer_id[PUNCH_ID_MAX + 1];
	char ufrag[PUNCH_UFRAG_MAX + 1];
	char pwd[PUNCH_PWD_MAX + 1];
	uint8_t key_fp[PUNCH_KEY_FP_LEN];
	int has_key_fp;
	uint64_t session;
	struct punch_candidate cand[PUNCH_CANDIDATES_MAX];
	size_t n_cand;
	struct sockaddr_storage observed; /* PEER-INFO: where the server saw it */
	int has_observed;
	struct punch_nat nat;             /* all zero (unknown) if absent */
};

/* Is s (len bytes) a valid id: 1..64 bytes of UTF-8, no control
 * characters, no spaces?  Returns NULL if valid, else the reason. */
const char *punch_id_check(const uint8_t *s, size_t len);

/* Parse the punch attributes of a decoded REGISTER or PEER-INFO request.
 * Returns 0, or -1 with a reason (for an error response) in *why. */
int punch_peer_parse(struct punch_peer *p, const struct stun_msg *m,
                     const char **why);

/* Append the attributes describing p (ids, credentials, key, session,
 * candidates, observed address). */
void punch_peer_put(struct stun_writer *w, const struct punch_peer *p,
                    int with_peer_id);

/* Candidate wire format (value of PUNCH-CANDIDATE):
 *
 *  |     Type      |    Family     |          X-Port               |
 *  |                           Priority                            |
 *  |                 X-Address (32 or 128 bits)                    |
 *
 * The port and address are XORed as in XOR-MAPPED-ADDRESS, so that NATs
 * with application-level gateways do not rewrite them. */
void punch_put_candidate(struct stun_writer *w, const struct punch_candidate *c);
int punch_parse_candidate(struct punch_candidate *c, const struct stun_attr *a,
                          const uint8_t txid[STUN_TXID_LEN]);

/* PUNCH-NAT wire format (value of PUNCH_ATTR_NAT, 4 bytes):
 *
 *  |    Mapping    |     Ports     |            Delta              |
 *
 * Mapping and Ports as the enums above, Delta a signed 16-bit port
 * difference.  Returns 0, or -1 for a wrong length or unknown value. */
void punch_put_nat(struct stun_writer *w, const struct punch_nat *n);
int punch_parse_nat(struct punch_nat *n, const struct stun_attr *a);

/* Classify from the local port and the two mapped addresses (the primary
 * server's and the alternate's; alt NULL if there was no answer). */
void punch_nat_classify(struct punch_nat *n, uint16_t local_port,
                        const struct sockaddr *mapped,
                        const struct sockaddr *alt);
const char *punch_nat_mapping_str(uint8_t mapping);
const char *punch_nat_ports_str(uint8_t ports);

/* Is this method one of the rendezvous server's? */
int punch_method_is_rendezvous(int method);

/* Is this attribute type one of punch's? (Not unknown, for 420 purposes.) */
int punch_attr_known(uint16_t type);

/* Unknown comprehension-required attributes other than punch's: fills
 * out (up to STUN_MAX_UNKNOWN) and returns the count. */
size_t punch_unknown_required(const struct stun_msg *m, uint16_t *out);

/* Find the first attribute of a type; NULL if absent. */
const struct stun_attr *punch_attr_find(const struct stun_msg *m,
                                        uint16_t type);

const char *punch_cand_type_str(uint8_t type);

/* RFC 8445 5.1.2.1 candidate priority, with our type preferences. */
uint32_t punch_cand_priority(uint8_t type, uint16_t local_pref);

#endif
