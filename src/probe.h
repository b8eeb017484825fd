/*
 * Birthday probing: a direct path between a NAT that maps
 * endpoint-dependently (the "hard" side: a new public port for every
 * destination, at random) and one that maps endpoint-independently but
 * filters (the "easy" side: one public port, which admits only addresses
 * it has sent to).  docs/nat-traversal.md explains it; in short:
 *
 *   - the hard side opens n extra sockets (PROBE_SOCKETS_DEFAULT) and sends
 *     one authenticated check from each toward the easy side's public
 *     address, with a small TTL: each opens a mapping in its own NAT (a
 *     random public port that admits the easy side's address) and dies
 *     before the easy side's NAT, where it could only be dropped or, in a
 *     NAT without a filter, leave a stray entry (docs/protocol.md,
 *     "Filterless NATs"); and the same again toward any other port of
 *     that address that the easy side has been seen sending from (a
 *     filterless NAT can move its mapping: probe.c, "Moved ports");
 *   - the easy side sends authenticated checks from its one socket to
 *     random ports of the hard side's public IP (the one the server saw,
 *     never another address), never the same port twice, paced at
 *     PROBE_RATE_PER_S, up to PROBE_PROBES_DEFAULT; when the hard side's
 *     NAT allocates ports sequentially, the ports that follow the one the
 *     server saw go first (port prediction, PROBE_PREDICT_MAX);
 *   - a probe that lands on one of the open mappings reaches one of the
 *     hard side's sockets, which answers; the answer gets through the easy
 *     side's filter, since the easy side just sent to that address.  The
 *     first hit wins: the hard side keeps that socket (the agent's
 *     AGENT_SOCK_PROBE) and closes the others at once; the easy side stops.
 *     The agent then checks and nominates the pair as any other, and
 *     through its upgrade path when the relay already carries the data.
 *
 * With k mappings open among the R = 64,512 ports a random allocator uses
 * and m probes that never repeat a port, the chance of no hit is about
 * (1 - k/R)^m: 256 x 1,024 succeeds 98.3 % of the time, and the median hit
 * comes after about 175 probes.
 *
 * Pure logic, like agent.c: the caller feeds it STUN messages and the time,
 * and it sends through a callback; probe_tick() returns the next deadline.
 * It never probes between two hard NATs (probe_role_for), and not twice
 * within PROBE_HOLDOFF_MS.
 */
#ifndef PUNCH_PROBE_H
#define PUNCH_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "agent.h"
#include "punch_attr.h"
#include "stun.h"

enum {
	PROBE_SOCKETS_DEFAULT = 256,  /* the hard side's extra sockets */
	PROBE_SOCKETS_MAX = 1024,
	PROBE_PROBES_DEFAULT = 1024,  /* the easy side's probes */
	PROBE_PROBES_MAX = 4096,
	/* The easy side's pace: its 1,024 probes take 5.1 s, inside the
	 * agent's 10 s of checks (AGENT_CHECK_TIMEOUT_MS), so that without a
	 * relay a late hit still counts, and far inside the 30 s a Linux NAT
	 * keeps an unanswered UDP mapping; 200 checks of about 100 bytes a
	 * second is 20 kB/s. */
	PROBE_RATE_PER_S = 200,
	PROBE_BURST_MAX = 8,          /* probes per tick at most, after a stall */
	/* The easy side waits this long after PEER-INFO, so that the hard
	 * side's mappings (opened at once) exist before the first probe. */
	PROBE_EASY_DELAY_MS = 100,
	/* The hard side keeps its sockets until the easy side's last probe
	 * could have arrived, and this much longer. */
	PROBE_LINGER_MS = 2000,
	PROBE_HOLDOFF_MS = 5 * 60 * 1000, /* at most once per peer per 5 min */
	/* The agent's own checks go first: where they can punch (a cone NAT
	 * against the endpoint-dependent one, which the mapping test cannot
	 * tell from a port-restricted one) they do in about 100 ms in the
	 * lab.  Probing starts this long after PEER-INFO, at both sides
	 * alike, if no direct pair has been chosen by then. */
	PROBE_CHECKS_FIRST_MS = 250,
	PROBE_PORT_MIN = 1024,        /* Linux's random range: 1024-65535 */
	PROBE_PORT_MAX = 65535,
	/* The hard side aims its sockets at the easy side's server-reflexive
	 * port and at up to this many ports in all of the easy side's IP
	 * that the agent has seen it use (probe.c, "Moved ports"). */
	PROBE_TARGETS_MAX = 4,
	/* Port prediction: when the hard side's NAT allocates sequentially
	 * (PUNCH-NAT: sequential, delta d), the easy side first probes the
	 * ports after the one the server saw, B + k*d for k = 1 up to this,
	 * then random ones.  The hard side's new flows since (the
	 * alternate address, its agent's checks, then its probe sockets)
	 * took the next ports, less any other hosts' flows in between.  The
	 * order is middle-out from PROBE_PREDICT_MID, the middle of where
	 * the probe sockets' ports should be (probe.c says why). */
	PROBE_PREDICT_MAX = 512,
	PROBE_PREDICT_MID = 2 + PROBE_SOCKETS_DEFAULT / 2,
	PROBE_MAIN = -1,              /* psock: the agent's own socket */
};

enum probe_role {
	PROBE_ROLE_NONE,
	PROBE_ROLE_HARD,  /* we map endpoint-dependently: open many sockets */
	PROBE_ROLE_EASY,  /* we map endpoint-independently: probe many ports */
};

enum probe_state {
	PROBE_IDLE,
	PROBE_RUNNING,
	PROBE_WON,        /* a probe landed: the pair is the agent's */
	PROBE_EXHAUSTED,  /* every probe sent (easy) or waited for (hard) */
	PROBE_STOPPED,    /* the agent found a direct path, or the caller quit */
};

/* Send buf to `to` from probe socket psock (the hard side's 0..n-1), or
 * from the agent's socket of to's family (PROBE_MAIN). */
typedef void probe_send_fn(void *ctx, int psock, const struct sockaddr *to,
                           const uint8_t *buf, size_t len, int ttl);
/* Probing ended: won on psock (the hard side: keep it as the agent's
 * AGENT_SOCK_PROBE, close the others; the easy side: PROBE_MAIN), or
 * psock < PROBE_MAIN when it ended without a hit (close them all). */
typedef void probe_end_fn(void *ctx, int psock);

struct probe {
	enum probe_state state;
	enum probe_role role;
	struct agent *agent;          /* credentials; gets the found pair */
	/* hard: the easy side's public address; easy: the hard side's
	 * public IP (the port is what varies) */
	struct sockaddr_storage target;
	unsigned n_socks;             /* hard: the sockets the caller opened */
	unsigned max_probes;          /* easy */
	unsigned sent;                /* hard: checks sent; easy: probes */
	/* hard: the easy side's ports aimed at (target's first), and how
	 * many of our sockets have sent to each */
	uint16_t ports[PROBE_TARGETS_MAX];
	unsigned port_sent[PROBE_TARGETS_MAX];
	unsigned n_ports;
	uint64_t start_ms, end_ms, last_start_ms;
	int ever_started;
	uint8_t txid_base[STUN_TXID_LEN]; /* its last 4 bytes: the index */
	uint8_t visited[(PROBE_PORT_MAX + 1) / 8]; /* ports probed (easy) */
	/* easy: port prediction (PROBE_PREDICT_MAX), when delta is not 0 */
	uint16_t predict_base;
	int predict_delta;
	unsigned predicted;           /* predicted ports drawn (j) */
	unsigned predicted_sent;      /* probes that went to predicted ports */
	int winner;                   /* the socket that won, or PROBE_MAIN */
	struct sockaddr_storage won_addr; /* who answered */
	uint64_t won_ms;
	uint64_t packets;             /* sent, in all runs */
	uint64_t dropped;             /* failed authentication, wrong source */
	/* The ports' randomness: rnd_u32() unless a test sets its own. */
	uint32_t (*rng)(void *ctx);
	void *rng_ctx;
	probe_send_fn *send;
	probe_end_fn *on_end;
	void *ctx;
};

void probe_init(struct probe *p, struct agent *a, probe_send_fn *send,
                probe_end_fn *on_end, void *ctx);

/* Which side of the probing we are, from our NAT's mapping and the
 * peer's (PUNCH-NAT): none unless exactly one of us maps
 * endpoint-dependently and the other is known to map independently. */
enum probe_role probe_role_for(const struct punch_nat *ours,
                               const struct punch_nat *theirs);

/* Start probing as `role` toward `target` (see struct probe); n is the
 * number of sockets the hard side opened (0..n-1), or the easy side's
 * probe count (0: the default).  Returns 0, or -1 if it may not start now
 * (already running, within PROBE_HOLDOFF_MS of the last start, or a
 * target that is not IPv4 or IPv6). */
int probe_start(struct probe *p, enum probe_role role,
                const struct sockaddr *target, unsigned n, uint64_t now_ms);

/* May probe_start() go now (not running, past the holdoff)? */
int probe_may_start(const struct probe *p, uint64_t now_ms);

/* A STUN message that arrived on probe socket psock (the hard side's), or
 * on the agent's socket that the agent did not claim (PROBE_MAIN).
 * Returns 1 if it was probing's (a hit, or a probe socket's datagram that
 * is dropped), 0 if not. */
int probe_on_stun(struct probe *p, int psock, const struct sockaddr *from,
                  const uint8_t *buf, size_t len, const struct stun_msg *m,
                  uint64_t now_ms);

/* Stop (the agent has a direct path, or we quit); the sockets close. */
void probe_stop(struct probe *p);

/* Send what is due; returns the next deadline (UINT64_MAX if none). */
uint64_t probe_tick(struct probe *p, uint64_t now_ms);

const char *probe_state_str(int state);
const char *probe_role_str(int role);

#endif
