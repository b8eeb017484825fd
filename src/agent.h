/*
 * The connectivity agent: ICE's connectivity checks (RFC 8445) between our
 * sockets and the peer's candidates, nomination, and consent freshness
 * (RFC 7675) as keepalive once a pair is chosen.
 *
 * Relayed candidates: ours is a third "socket" (AGENT_SOCK_RELAY), whose
 * sends the caller wraps for the TURN server (turn_client.h), and whose
 * datagrams the caller unwraps and feeds in as coming from the peer's
 * address; the peer's are candidates of type relay like any other.
 *
 * Pure logic: the caller feeds it STUN messages and the time, and it sends
 * through a callback.  Timers are deadlines; agent_tick() does the
 * bookkeeping and returns the next one.
 *
 * Timers, all in one place:
 *   - each pair's check: first at once (host) or after AGENT_OPEN_DELAY_MS
 *     (others), then every rto, doubling from AGENT_CHECK_RTO_MS to
 *     AGENT_CHECK_RTO_MAX_MS with retransmit.h's jitter, until
 *     AGENT_CHECK_TIMEOUT_MS;
 *   - nomination: the best pair that works, at once if no better pair is
 *     still being checked, else AGENT_NOMINATE_WAIT_MS after the first
 *     success; a relayed pair (the lowest priority of all) not before
 *     AGENT_RELAY_WAIT_MS after the checks began, unless no direct pair is
 *     left in play;
 *   - upgrade: on a relayed pair, the direct pairs go on being checked,
 *     in rounds AGENT_UPGRADE_RETRY_MS apart (doubling); one that works is
 *     nominated and replaces the relayed pair (on_switch).  A direct pair
 *     that loses consent gives way to the relayed one again;
 *   - consent: a check on the chosen pair every AGENT_CONSENT_MS (+-20%),
 *     retransmitted every AGENT_CONSENT_RTO_MS until answered; the peer is
 *     gone after AGENT_CONSENT_LOST_MS without an answer.
 */
#ifndef PUNCH_AGENT_H
#define PUNCH_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "punch_attr.h"
#include "retransmit.h"
#include "stun.h"

enum {
	/* Our local candidates, by index: the host sockets [0] IPv4 and
	 * [1] IPv6, [2] the relayed address a TURN server gave us (sends
	 * on it go through the relay; see agent_set_relay), and [3] the
	 * socket that birthday probing found (probe.h): paired only with
	 * the address that answered it (agent_learn_addr). */
	AGENT_SOCK_RELAY = 2,
	AGENT_SOCK_PROBE = 3,
	AGENT_SOCKETS = 4,
	AGENT_REMOTE_MAX = 16,
	AGENT_EARLY_MAX = 8,         /* checks that beat PEER-INFO, kept */
	AGENT_PAIRS_MAX = 32,
	AGENT_CHECK_RTO_MS = 50,
	AGENT_CHECK_RTO_MAX_MS = 800,
	AGENT_CHECK_TIMEOUT_MS = 10000,
	AGENT_OPEN_DELAY_MS = 30,
	AGENT_OPEN_TTL = 2,
	AGENT_NOMINATE_WAIT_MS = 30,
	AGENT_CONSENT_MS = 5000,
	AGENT_CONSENT_RTO_MS = 500,
	AGENT_CONSENT_LOST_MS = 15000,
	/* A relayed pair is nominated only once no direct pair works or is
	 * left in play, or this long after the checks began. */
	AGENT_RELAY_WAIT_MS = 500,
	/* On a relayed pair, the direct pairs are checked on in rounds (each
	 * like the first: every rto up to AGENT_CHECK_TIMEOUT_MS); a round
	 * that fails waits this long before the next, doubling to the max. */
	AGENT_UPGRADE_RETRY_MS = 2000,
	AGENT_UPGRADE_RETRY_MAX_MS = 60000,
};

/* Which pairs may be chosen (-relay-only, -direct-only). */
enum agent_path_policy {
	AGENT_PATH_ANY,          /* direct first, the relay when it must */
	AGENT_PATH_RELAY_ONLY,   /* only pairs through a relay */
	AGENT_PATH_DIRECT_ONLY,  /* never a relay */
};

enum agent_state {
	AGENT_STATE_IDLE,       /* no peer info yet */
	AGENT_STATE_CHECKING,   /* checks under way */
	AGENT_STATE_CONNECTED,  /* a pair is chosen */
	AGENT_STATE_FAILED,     /* no pair worked */
	AGENT_STATE_GONE,       /* the chosen pair stopped answering */
};

enum agent_pair_state {
	PAIR_WAITING,
	PAIR_IN_PROGRESS,
	PAIR_SUCCEEDED,
	PAIR_FAILED,
};

/* Send buf from socket `sock` to `to`; ttl 0 means the default. */
typedef void agent_send_fn(void *ctx, int sock, const struct sockaddr *to,
                           const uint8_t *buf, size_t len, int ttl);

struct agent_pair {
	int sock;                 /* ours: 0 IPv4, 1 IPv6, AGENT_SOCK_RELAY */
	int remote;               /* index into agent.remote */
	uint64_t priority;        /* RFC 8445 6.1.2.3 */
	enum agent_pair_state state;
	uint8_t txid[STUN_TXID_LEN];
	struct rtx rtx;           /* the check's retransmission timer */
	int nominating;           /* controlling: USE-CANDIDATE sent on it */
	int nominated;            /* controlled: the peer nominated it */
	/* While a relayed pair is chosen: when a failed direct pair is
	 * checked again, and how many rounds it has had. */
	uint64_t retry_ms;
	unsigned rounds;
};

struct agent {
	int controlling;
	uint64_t tiebreaker;
	char ufrag[PUNCH_UFRAG_MAX + 1], pwd[PUNCH_PWD_MAX + 1];
	int natted;               /* our srflx differs from our host addresses */
	enum agent_path_policy policy;
	int relay_family;         /* of our relayed address, once we have one */
	int relay_private;        /* the relay reaches private addresses */
	int have_sock[AGENT_SOCKETS];
	uint32_t local_priority[AGENT_SOCKETS]; /* of our host candidate */

	int have_remote;
	struct punch_peer peer;   /* ids, credentials, session */
	struct punch_candidate remote[AGENT_REMOTE_MAX];
	size_t n_remote;
	struct agent_pair pairs[AGENT_PAIRS_MAX];
	size_t n_pairs;

	enum agent_state state;
	int selected;             /* index into pairs, or -1 */
	uint64_t checks_ms, first_success_ms, connected_ms;
	uint64_t open_at_ms;

	/* consent freshness on the chosen pair */
	uint8_t consent_txid[STUN_TXID_LEN];
	int consent_pending;
	uint64_t consent_next_ms, consent_ok_ms;

	/* Checks that arrived before the peer's info (we answer them at once;
	 * they make pairs once the info is here). */
	struct {
		int sock;
		struct sockaddr_storage from;
		uint32_t priority;
		int use_candidate;
	} early[AGENT_EARLY_MAX];
	int n_early;

	uint64_t dropped;         /* checks that failed authentication */
	/* Listed candidates that are not ADDR_CLASS_ROUTABLE (addr.h) are
	 * skipped, and counted here, unless allow_local is set (the server is
	 * on loopback: both peers are on this machine). */
	int allow_local;
	uint64_t skipped;
	agent_send_fn *send;
	void *ctx;
	void (*on_state)(void *ctx, int old_state, int new_state);
	/* The chosen pair changed while connected (a direct pair replaced
	 * the relayed one, or the relayed one took over again): old is the
	 * index of the pair that was chosen. */
	void (*on_switch)(void *ctx, int old_pair);
};

/* Set up an agent; ufrag/pwd are ours and must be random. */
void agent_init(struct agent *a, int controlling, const char *ufrag,
                const char *pwd, agent_send_fn *send, void *ctx);
void agent_set_socket(struct agent *a, int sock, uint32_t host_priority);
/* Our relayed candidate (of `family`, with `priority`) exists: pair it with
 * the peer's candidates of that family, at once if they are known; with
 * private ones (addr_is_private) only if the relay reaches them (it is on
 * a private network itself: a public relay refuses them). */
void agent_set_relay(struct agent *a, int family, uint32_t priority,
                     int reaches_private, uint64_t now_ms);
void agent_set_path_policy(struct agent *a, enum agent_path_policy policy);

/* The peer's info arrived (PEER-INFO): build the pairs and start checking.
 * A new session of the same peer (it restarted) starts over. */
void agent_set_remote(struct agent *a, const struct punch_peer *peer,
                      uint64_t now_ms);

/* A PEER-INFO of the peer's current session with candidates we have not
 * seen (it has gathered a relayed one since): pair them too, while the
 * checks are under way.  Returns how many candidates were new. */
size_t agent_add_candidates(struct agent *a, const struct punch_peer *peer,
                            uint64_t now_ms);

/* `addr` answered (or sent) an authenticated check on our socket `sock`
 * outside the agent's own pairs (birthday probing, probe.h): pair it, as a
 * peer-reflexive candidate, and check it at once.  Returns the pair's
 * index, or -1 (no peer yet, no such socket, table full, or not
 * checking or upgrading). */
int agent_learn_addr(struct agent *a, int sock, const struct sockaddr *addr,
                     uint64_t now_ms);

/* A check as the agent sends it (USERNAME, PRIORITY, ICE-CONTROLLING or
 * -CONTROLLED, MESSAGE-INTEGRITY, FINGERPRINT), with transaction id txid,
 * for a sender outside the pairs (probe.h).  Returns its length, or a
 * negative stun error. */
int agent_build_check(const struct agent *a, const uint8_t *txid,
                      uint8_t *buf, size_t cap);

/* A STUN message from the peer's side.  Returns 1 if it was the agent's
 * (a check or a check's response), 0 if not. */
int agent_on_stun(struct agent *a, int sock, const struct sockaddr *from,
                  const uint8_t *buf, size_t len, const struct stun_msg *m,
                  uint64_t now_ms);

/* Send what is due; returns the next deadline (UINT64_MAX if none). */
uint64_t agent_tick(struct agent *a, uint64_t now_ms);

/* What the path layer's caller may read or set, without reaching into
 * struct agent (whose fields are the agent's own business). */
void agent_set_on_state(struct agent *a,
                        void (*fn)(void *ctx, int old_state, int new_state));
void agent_set_on_switch(struct agent *a, void (*fn)(void *ctx, int old_pair));
/* Pair i (an index as on_switch gives it), or NULL. */
const struct agent_pair *agent_pair_at(const struct agent *a, int i);
void agent_set_natted(struct agent *a, int natted);
void agent_set_allow_local(struct agent *a, int allow);
int agent_is_controlling(const struct agent *a);
int agent_has_socket(const struct agent *a, int sock);
/* The peer's info has arrived (agent_set_remote). */
int agent_has_remote(const struct agent *a);
/* The peer as its PEER-INFO described it (meaningful once has_remote). */
const struct punch_peer *agent_peer(const struct agent *a);
size_t agent_pair_count(const struct agent *a);
/* Is `from` one of the peer's candidates (listed, or learned from its
 * checks)? */
int agent_is_remote_addr(const struct agent *a, const struct sockaddr *from);

const struct agent_pair *agent_selected(const struct agent *a);
/* Does the pair go through a relay (ours, or the peer's)? */
int agent_pair_is_relayed(const struct agent *a, const struct agent_pair *p);
/* The peer's candidate i (listed, trickled or peer-reflexive), or NULL
 * past the last. */
const struct punch_candidate *agent_remote(const struct agent *a, size_t i);
const struct punch_candidate *agent_pair_remote(const struct agent *a,
                                                const struct agent_pair *p);

/* Authentication shared with the app's requests on the chosen pair:
 * requests carry USERNAME "theirs:ours" and MESSAGE-INTEGRITY keyed with
 * the receiver's password (RFC 8445 7.2.2). */
void agent_put_username(const struct agent *a, struct stun_writer *w);
void agent_put_request_integrity(const struct agent *a, struct stun_writer *w);
void agent_put_response_integrity(const struct agent *a, struct stun_writer *w);
int agent_auth_request(const struct agent *a, const struct stun_msg *m,
                       const uint8_t *buf, size_t len);
int agent_auth_response(const struct agent *a, const struct stun_msg *m,
                        const uint8_t *buf, size_t len);

/* RFC 8445 6.1.2.3 pair priority. */
uint64_t agent_pair_priority(int controlling, uint32_t local, uint32_t remote);

const char *agent_state_str(int state);

#endif
