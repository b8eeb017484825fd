/*
 * Port mapping: ask the default gateway for a UDP mapping of our socket's
 * port by all three protocols at once, the way Tailscale's portmapper
 * probes them:
 *   - NAT-PMP (RFC 6886) and PCP (RFC 6887 MAP), hand-written over one UDP
 *     socket on the libuv loop (portmap_proto.c is their codec);
 *   - UPnP IGD through libminiupnpc, whose calls block, so they run off
 *     the loop in uv_queue_work().
 * NAT-PMP and PCP get PORTMAP_BUDGET_MS to answer; UPnP's discovery waits
 * as long.  A mapping is renewed at half its lifetime and deleted by
 * portmap_stop() (lifetime 0, DeletePortMapping).
 *
 * Timers (one uv_timer, set to the earliest deadline):
 *   - resend: NAT-PMP and PCP requests once more after PORTMAP_RESEND_MS;
 *   - budget: PORTMAP_BUDGET_MS after start, NAT-PMP and PCP give up;
 *   - renew: each mapping at half its lifetime.
 */
#ifndef PUNCH_PORTMAP_H
#define PUNCH_PORTMAP_H

#include <netinet/in.h>
#include <stdint.h>
#include <uv.h>

#include "portmap_proto.h"

enum {
	PORTMAP_BUDGET_MS = 250,     /* all three protocols together */
	PORTMAP_RESEND_MS = 125,     /* one resend inside the budget */
	PORTMAP_LIFETIME_S = 7200,   /* RFC 6886 3.3's recommendation */
	PORTMAP_RENEW_MIN_S = 10,    /* never renew more often than this */
	PORTMAP_UPNP_WAIT_MS = 250,  /* SSDP discovery's wait for answers */
	PORTMAP_ROUTE_MAX = 16384,   /* bytes of /proc/net/route read */
};

enum portmap_proto_id {
	PORTMAP_UPNP,
	PORTMAP_NATPMP,
	PORTMAP_PCP,
	PORTMAP_PROTOS,
};

enum portmap_state {
	PORTMAP_IDLE,    /* not asked (no gateway, or stopped) */
	PORTMAP_ASKING,
	PORTMAP_MAPPED,
	PORTMAP_FAILED,  /* refused, garbage only, or no answer in time */
};

enum portmap_event {
	PORTMAP_EV_MAPPED, /* a protocol gave a mapping: arg is its id */
	PORTMAP_EV_DONE,   /* every protocol has answered or given up */
};

struct portmap_entry {
	enum portmap_state state;
	struct sockaddr_in ext; /* the external address and port */
	uint32_t lifetime_s;
	uint64_t mapped_ms;     /* when (loop time) it was first granted */
	uint64_t renew_ms;      /* next renewal */
};

struct portmap_upnp;

typedef void (*portmap_cb)(void *ctx, enum portmap_event ev, int proto);

struct portmap {
	uv_loop_t *loop;
	uv_udp_t sock;   /* NAT-PMP and PCP, connected to gateway:5351 */
	uv_timer_t timer;
	int have_sock, have_timer, stopping, said_done;
	struct in_addr gw, me;
	uint16_t gw_port; /* PORTMAP_SERVER_PORT but in the unit tests */
	uint16_t port;   /* the internal port to map */
	uint8_t nonce[PCP_NONCE_LEN];
	struct in_addr natpmp_ext;
	int natpmp_have_ext;
	struct portmap_entry e[PORTMAP_PROTOS];
	int first;       /* the protocol that mapped first, or -1 */
	uint64_t start_ms, resend_ms, budget_ms;
	uint64_t garbage; /* datagrams from the gateway we could not use */
	/* UPnP, off the loop */
	uv_work_t work;
	int work_busy;
	struct portmap_upnp *upnp;
	portmap_cb cb;
	void *ctx;
};

const char *portmap_proto_str(int proto);

enum portmap_flags {
	PORTMAP_NO_UPNP = 1, /* NAT-PMP and PCP only (the unit tests) */
};

/* Start asking for a mapping of UDP port `port`.  The gateway is `gw`
 * (address and NAT-PMP/PCP port; the unit tests' fake one) or, when NULL,
 * the default route's from /proc/net/route at port 5351; with none, every
 * protocol is FAILED and EV_DONE comes from the loop, never from inside
 * this call.  0 or -errno. */
int portmap_start(struct portmap *pm, uv_loop_t *loop, uint16_t port,
                  const struct sockaddr_in *gw, unsigned flags,
                  portmap_cb cb, void *ctx);

/* The mapping to offer: the first protocol's, or NULL. */
const struct portmap_entry *portmap_mapped(const struct portmap *pm,
                                           int *proto);

/* Delete every mapping we hold and close the handles.  A UPnP call still
 * running finishes (and its mapping is deleted) inside the loop's next
 * run, which the caller runs to the end as it closes down. */
void portmap_stop(struct portmap *pm);

#endif
