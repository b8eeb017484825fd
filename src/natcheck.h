/*
 * punch natcheck's logic, sans I/O: what a NAT does to UDP, measured with
 * RFC 5780's methods against a server that has an alternate address.
 *
 * The caller owns the sockets and the clock.  It opens NATCHECK_SOCK_MAX UDP
 * sockets (natcheck_sock_family() says which family each needs; -1: none),
 * tells the module their local addresses, and then loops:
 *
 *	while (!natcheck_done(nc)) {
 *		while (natcheck_poll_send(nc, now, &tx))   send tx.buf from tx.sock to tx.to
 *		wait until natcheck_next(nc, now) or a datagram arrives;
 *		natcheck_on_recv(nc, sock, from, buf, len, now);
 *	}
 *	natcheck_result(nc)
 *
 * The sockets and what each is for:
 *
 *	MAP      RFC 5780 4.3 mapping tests I, II, III; then 4.5 hairpinning
 *	         (a request to its own mapped address)
 *	FILT     RFC 5780 4.4 filtering tests I, II, III.  A socket of its own:
 *	         the mapping tests' requests to the alternate address would
 *	         open an address-dependent filter and hide it.
 *	PAT0..3  one request each, sent a few ms apart after MAP and FILT, so
 *	         that the six first mappings show the port allocation pattern
 *	LIFE0..  RFC 5780 4.6, with -lifetime: each gets a mapping at the start;
 *	         LIFE_Y later asks the server (RESPONSE-PORT) to answer LIFEi's
 *	         mapping after a growing idle time.  Separate sockets because a
 *	         probe that gets through refreshes the mapping it tests.
 *	V6       one Binding to the server's IPv6 address, when it has one
 *	         beside the IPv4 one that the tests use
 *
 * Every transaction has its own deadline; natcheck_next() is the one
 * bookkeeping pass that finds the earliest.
 */
#ifndef PUNCH_NATCHECK_H
#define PUNCH_NATCHECK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "stun.h"

enum {
	NATCHECK_RTO_MS = 200,          /* retransmit every 200 ms */
	NATCHECK_FIRST_TIMEOUT_MS = 2000, /* reachability: test I's patience */
	NATCHECK_TIMEOUT_MS = 1000,     /* every other test: then "no answer" */
	NATCHECK_STAGGER_MS = 5,        /* between the pattern sockets' sends */
	NATCHECK_PAT_MAX = 4,           /* pattern sockets */
	NATCHECK_LIFE_MAX = 10,         /* lifetime steps (natcheck.c's table) */
	NATCHECK_SAMPLES_MAX = 2 + NATCHECK_PAT_MAX,
	NATCHECK_SEQ_DELTA_MAX = 16,    /* |delta| up to this: sequential */
	NATCHECK_MSG_MAX = 548,
	NATCHECK_REQ_MAX = 48,          /* transactions in all */
};

enum natcheck_sock {
	NATCHECK_SOCK_MAP = 0,
	NATCHECK_SOCK_FILT,
	NATCHECK_SOCK_PAT0,
	NATCHECK_SOCK_LIFE_Y = NATCHECK_SOCK_PAT0 + NATCHECK_PAT_MAX,
	NATCHECK_SOCK_LIFE0,
	NATCHECK_SOCK_V6 = NATCHECK_SOCK_LIFE0 + NATCHECK_LIFE_MAX,
	NATCHECK_SOCK_MAX,
};

/* RFC 4787 4.1 and 5: the same three words for mapping and filtering. */
enum natcheck_behaviour {
	NATCHECK_UNKNOWN = 0,             /* not determinable */
	NATCHECK_INDEPENDENT,             /* endpoint-independent */
	NATCHECK_ADDRESS,                 /* address-dependent */
	NATCHECK_ADDRESS_PORT,            /* address-and-port-dependent */
};

enum natcheck_pattern {
	NATCHECK_PAT_UNKNOWN = 0,
	NATCHECK_PAT_PRESERVING,  /* public port = local port */
	NATCHECK_PAT_SEQUENTIAL,  /* small deltas between new mappings */
	NATCHECK_PAT_RANDOM,
};

enum natcheck_flags {
	NATCHECK_LIFETIME = 1, /* RFC 5780 4.6: takes up to a few minutes */
};

/* What natcheck_result() says.  A field the run could not learn is 0 /
 * NATCHECK_UNKNOWN, and the has_ flags say which addresses are set. */
struct natcheck_result {
	int udp;     /* any answer at all */
	int has_public_v4, has_public_v6, has_other;
	struct sockaddr_storage public_v4; /* MAP's mapping toward the server */
	/* V6's, or MAP's when the tests ran over IPv6 */
	struct sockaddr_storage public_v6;
	struct sockaddr_storage other;    /* the server's OTHER-ADDRESS */
	int nat;     /* public != local: a NAT (1), no (0), -1 unknown */
	int port_preserved;               /* MAP's public port = its local port */
	enum natcheck_behaviour mapping, filtering;
	int hairpin;        /* 1, 0, or -1: not determinable */
	enum natcheck_pattern pattern;
	int deltas[NATCHECK_SAMPLES_MAX - 1];
	size_t n_deltas;
	int lifetime_checked;
	unsigned lifetime_s;              /* longest idle time a mapping survived */
	unsigned lifetime_max_s;          /* shortest it did not (0: all survived) */
};

enum natcheck_req_state {
	NATCHECK_REQ_WAITING = 0, /* not yet sent (may depend on another) */
	NATCHECK_REQ_PENDING,     /* sent, retransmitting */
	NATCHECK_REQ_ANSWERED,
	NATCHECK_REQ_TIMEDOUT,
	NATCHECK_REQ_SKIPPED,     /* never needed */
};

struct natcheck_req {
	int kind;                 /* natcheck.c's enum req_kind */
	int sock;
	enum natcheck_req_state state;
	struct sockaddr_storage to;
	uint32_t change;          /* CHANGE-REQUEST flags, 0: none */
	uint16_t response_port;   /* RESPONSE-PORT, 0: none */
	int is_hairpin;           /* the hairpin probe: it is its own answer */
	uint8_t txid[STUN_TXID_LEN];
	uint64_t start_at;        /* first send, once ready */
	uint64_t next_at;         /* next (re)transmission */
	uint64_t give_up_at;
	unsigned timeout_ms;
	unsigned life_s;          /* lifetime probe: the idle time it tests */
	int answer_sock;          /* the socket its answer must reach */
	uint16_t error;           /* an error response's code, 0: success */
	struct sockaddr_storage mapped;
	int has_mapped;
};

struct natcheck {
	int flags;
	uint64_t started;
	struct sockaddr_storage server;   /* the tests' (either family) */
	struct sockaddr_storage server6;  /* with an IPv4 server: its IPv6 address */
	int has_server6;
	struct sockaddr_storage local[NATCHECK_SOCK_MAX];
	int has_local[NATCHECK_SOCK_MAX];
	struct natcheck_req req[NATCHECK_REQ_MAX];
	size_t n_req;
	uint8_t txid_base[STUN_TXID_LEN]; /* from the caller's random bytes */
	int other_done;           /* tests that need OTHER-ADDRESS are planned */
	size_t dropped;           /* datagrams ignored: malformed or unexpected */
	struct natcheck_result res;
	int finished;
};

/* server: where the RFC 5780 tests go (IPv4, or IPv6 when the server has
 * no IPv4 address).  server6: NULL, or the server's IPv6 address, for the
 * public IPv6 address beside an IPv4 server.  rnd: 16 random bytes for the
 * transaction ids (RFC 8489 6: unpredictable).  Returns 0, or -1 for a
 * missing server. */
int natcheck_init(struct natcheck *nc, const struct sockaddr *server,
                  const struct sockaddr *server6, int flags,
                  const uint8_t rnd[16], uint64_t now);
/* The family socket s must have (AF_INET or AF_INET6), or -1: not needed. */
int natcheck_sock_family(const struct natcheck *nc, int s);
/* The address socket s is bound to, with the source IP the kernel picks
 * toward the server (not 0.0.0.0), for the no-NAT and port tests. */
void natcheck_set_local(struct natcheck *nc, int s,
                        const struct sockaddr *local);

struct natcheck_tx {
	int sock;
	struct sockaddr_storage to;
	uint8_t buf[NATCHECK_MSG_MAX];
	size_t len;
};

/* The next datagram due at now: returns 1 and fills tx, or 0. */
int natcheck_poll_send(struct natcheck *nc, uint64_t now,
                       struct natcheck_tx *tx);
/* A datagram that arrived on socket s.  Returns 0 when it answered a
 * transaction, -1 when it was dropped (counted in nc->dropped). */
int natcheck_on_recv(struct natcheck *nc, int s, const struct sockaddr *from,
                     const uint8_t *buf, size_t len, uint64_t now);
/* The earliest deadline after now (UINT64_MAX once done); also finishes
 * the run when nothing is left to wait for. */
uint64_t natcheck_next(struct natcheck *nc, uint64_t now);
int natcheck_done(const struct natcheck *nc);
const struct natcheck_result *natcheck_result(const struct natcheck *nc);

/* Words for output: "endpoint-independent", ...; NULL for unknown. */
const char *natcheck_behaviour_str(enum natcheck_behaviour b);
const char *natcheck_pattern_str(enum natcheck_pattern p);
/* The task's name: "full cone", "restricted cone", "port-restricted cone",
 * "symmetric", "no NAT", "no NAT, firewall"; NULL when unknown. */
const char *natcheck_type_str(const struct natcheck_result *r);
/* Exit status: 0 easy, 3 hard, 4 no UDP, 1 not determinable. */
int natcheck_exit_status(const struct natcheck_result *r);

enum {
	NATCHECK_EXIT_EASY = 0,
	NATCHECK_EXIT_UNKNOWN = 1,
	NATCHECK_EXIT_HARD = 3,
	NATCHECK_EXIT_NO_UDP = 4,
};

#endif
