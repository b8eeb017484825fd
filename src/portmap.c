#include "portmap.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "rnd.h"

/* ---- UPnP IGD, off the loop ------------------------------------------- */

enum upnp_op {
	UPNP_OP_MAP,    /* discover (once), then AddPortMapping */
	UPNP_OP_DELETE, /* DeletePortMapping */
};

/* Owned by the worker thread while pm->work_busy, by the loop otherwise. */
struct portmap_upnp {
	enum upnp_op op;
	uint16_t port, ext_port, alt_port;
	int ok;
	char why[128];
	int have_igd;
	struct UPNPUrls urls;
	struct IGDdatas data;
	char lan[64], ext_ip[40];
};

static int upnp_find_igd(struct portmap_upnp *u)
{
	struct UPNPDev *devs;
	int err = 0, rc;

	devs = upnpDiscover(PORTMAP_UPNP_WAIT_MS, NULL, NULL,
	                    UPNP_LOCAL_PORT_ANY, 0, 2, &err);
	if (!devs) {
		snprintf(u->why, sizeof(u->why), "no IGD answered SSDP discovery");
		return -1;
	}
	rc = UPNP_GetValidIGD(devs, &u->urls, &u->data, u->lan, sizeof(u->lan));
	freeUPNPDevlist(devs);
	/* 1: a connected IGD; 2: one that says it is not connected (still
	 * worth a try); 0 and 3: none, or a device that is not an IGD */
	if (rc != 1 && rc != 2) {
		if (rc)
			FreeUPNPUrls(&u->urls);
		snprintf(u->why, sizeof(u->why),
		         rc ? "the UPnP device found is not an IGD" :
		              "no valid IGD in the SSDP answers");
		return -1;
	}
	if (UPNP_GetExternalIPAddress(u->urls.controlURL,
	                              u->data.first.servicetype, u->ext_ip) ||
	    !u->ext_ip[0]) {
		FreeUPNPUrls(&u->urls);
		snprintf(u->why, sizeof(u->why),
		         "the IGD did not give its external address");
		return -1;
	}
	u->have_igd = 1;
	return 0;
}

static int upnp_add(struct portmap_upnp *u, uint16_t ext)
{
	char in_s[8], ext_s[8], lease[16];
	int rc;

	snprintf(in_s, sizeof(in_s), "%u", u->port);
	snprintf(ext_s, sizeof(ext_s), "%u", ext);
	snprintf(lease, sizeof(lease), "%u", (unsigned)PORTMAP_LIFETIME_S);
	rc = UPNP_AddPortMapping(u->urls.controlURL, u->data.first.servicetype,
	                         ext_s, in_s, u->lan, "punch", "UDP", NULL,
	                         lease);
	if (rc)
		snprintf(u->why, sizeof(u->why), "AddPortMapping: %d %s", rc,
		         strupnperror(rc) ? strupnperror(rc) : "");
	return rc;
}

static void upnp_work(uv_work_t *w)
{
	struct portmap_upnp *u = ((struct portmap *)w->data)->upnp;
	char ext_s[8];

	u->ok = 0;
	u->why[0] = '\0';
	if (u->op == UPNP_OP_DELETE) {
		snprintf(ext_s, sizeof(ext_s), "%u", u->ext_port);
		u->ok = u->have_igd &&
		        !UPNP_DeletePortMapping(u->urls.controlURL,
		                                u->data.first.servicetype, ext_s,
		                                "UDP", NULL);
		return;
	}
	if (!u->have_igd && upnp_find_igd(u))
		return;
	/* The same external port as ours first, then one other: a
	 * conflict (718) means someone else holds that one. */
	if (u->ext_port && !upnp_add(u, u->ext_port)) {
		u->ok = 1;
	} else if (!upnp_add(u, u->port)) {
		u->ext_port = u->port;
		u->ok = 1;
	} else if (!upnp_add(u, u->alt_port)) {
		u->ext_port = u->alt_port;
		u->ok = 1;
	}
}

static void upnp_after(uv_work_t *w, int status);

static void upnp_queue(struct portmap *pm, enum upnp_op op)
{
	pm->upnp->op = op;
	pm->upnp->alt_port = (uint16_t)(1024 + rnd_u32() % (65536 - 1024));
	pm->work.data = pm;
	if (uv_queue_work(pm->loop, &pm->work, upnp_work, upnp_after) == 0)
		pm->work_busy = 1;
}

static void upnp_free(struct portmap *pm)
{
	if (!pm->upnp)
		return;
	if (pm->upnp->have_igd)
		FreeUPNPUrls(&pm->upnp->urls);
	free(pm->upnp);
	pm->upnp = NULL;
}

/* ---- bookkeeping ------------------------------------------------------ */

const char *portmap_proto_str(int proto)
{
	switch (proto) {
	case PORTMAP_UPNP: return "upnp";
	case PORTMAP_NATPMP: return "nat-pmp";
	case PORTMAP_PCP: return "pcp";
	default: return "?";
	}
}

static void schedule(struct portmap *pm);

static void check_done(struct portmap *pm)
{
	if (pm->said_done || pm->stopping)
		return;
	for (int p = 0; p < PORTMAP_PROTOS; p++)
		if (pm->e[p].state == PORTMAP_ASKING)
			return;
	pm->said_done = 1;
	pm->cb(pm->ctx, PORTMAP_EV_DONE, -1);
}

static void set_mapped(struct portmap *pm, int p, struct in_addr ip,
                       uint16_t port, uint32_t lifetime_s)
{
	struct portmap_entry *e = &pm->e[p];
	uint64_t now = uv_now(pm->loop);
	uint32_t half = lifetime_s / 2;
	char a[ADDR_STRLEN];
	int fresh = e->state != PORTMAP_MAPPED;

	e->ext.sin_family = AF_INET;
	e->ext.sin_addr = ip;
	e->ext.sin_port = htons(port);
	e->lifetime_s = lifetime_s;
	e->renew_ms = now + 1000ull * (half > PORTMAP_RENEW_MIN_S ? half :
	                                                            PORTMAP_RENEW_MIN_S);
	e->state = PORTMAP_MAPPED;
	if (!fresh) {
		log_debug("portmap: %s renewed %s for %u s", portmap_proto_str(p),
		          addr_str((struct sockaddr *)&e->ext, a, sizeof(a)),
		          lifetime_s);
		schedule(pm);
		return;
	}
	e->mapped_ms = now;
	if (pm->first < 0)
		pm->first = p;
	log_debug("portmap: %s maps UDP port %u to %s for %u s, after %llu ms",
	          portmap_proto_str(p), pm->port,
	          addr_str((struct sockaddr *)&e->ext, a, sizeof(a)), lifetime_s,
	          (unsigned long long)(now - pm->start_ms));
	schedule(pm);
	pm->cb(pm->ctx, PORTMAP_EV_MAPPED, p);
	check_done(pm);
}

static void set_failed(struct portmap *pm, int p, const char *why)
{
	if (pm->e[p].state != PORTMAP_ASKING)
		return;
	pm->e[p].state = PORTMAP_FAILED;
	log_debug("portmap: %s: %s", portmap_proto_str(p), why);
	check_done(pm);
}

/* A gateway that names 0.0.0.0, loopback or multicast as its external
 * address: a refusal, not a candidate (portmap_ext_usable). */
static void unusable(struct portmap *pm, int p, struct in_addr ip)
{
	char a[INET_ADDRSTRLEN], why[64];

	inet_ntop(AF_INET, &ip, a, sizeof(a));
	snprintf(why, sizeof(why), "the gateway's external address %s is not usable", a);
	set_failed(pm, p, why);
}

static void upnp_after(uv_work_t *w, int status)
{
	struct portmap *pm = w->data;
	struct portmap_upnp *u = pm->upnp;
	struct in_addr ip;

	pm->work_busy = 0;
	if (u->op == UPNP_OP_DELETE) {
		log_debug("portmap: upnp: mapping of port %u %s", u->ext_port,
		          u->ok ? "deleted" : "not deleted");
		upnp_free(pm);
		return;
	}
	if (status == 0 && u->ok &&
	    portmap_parse_ext_ip(u->ext_ip, strnlen(u->ext_ip, sizeof(u->ext_ip)), &ip)) {
		snprintf(u->why, sizeof(u->why),
		         "the IGD's external address '%.39s' is not a usable IPv4 address",
		         u->ext_ip);
		u->ok = 0;
	}
	if (pm->stopping) {
		/* mapped (or renewed) while we closed down: it goes now */
		if (status == 0 && u->have_igd &&
		    (u->ok || pm->e[PORTMAP_UPNP].state == PORTMAP_MAPPED)) {
			upnp_queue(pm, UPNP_OP_DELETE);
			return;
		}
		upnp_free(pm);
		return;
	}
	if (status == 0 && u->ok)
		set_mapped(pm, PORTMAP_UPNP, ip, u->ext_port, PORTMAP_LIFETIME_S);
	else if (pm->e[PORTMAP_UPNP].state == PORTMAP_ASKING)
		set_failed(pm, PORTMAP_UPNP, u->why[0] ? u->why : "cancelled");
	else
		log_debug("portmap: upnp: renewal failed: %s", u->why);
}

/* ---- NAT-PMP and PCP on the loop ------------------------------------- */

static void send_dgram(struct portmap *pm, const uint8_t *buf, int n)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
	int rc;

	if (n <= 0)
		return;
	rc = uv_udp_try_send(&pm->sock, &b, 1, NULL);
	if (rc < 0)
		log_debug("portmap: send to the gateway: %s", uv_strerror(rc));
}

static void send_natpmp(struct portmap *pm, uint32_t lifetime_s)
{
	const struct portmap_entry *e = &pm->e[PORTMAP_NATPMP];
	uint8_t buf[NATPMP_MAP_REQ_LEN];
	uint16_t ext = e->state == PORTMAP_MAPPED ? ntohs(e->ext.sin_port) :
	                                            pm->port;

	if (lifetime_s)
		send_dgram(pm, buf, natpmp_build_external(buf, sizeof(buf)));
	/* RFC 6886 3.4: a delete suggests external port 0 */
	send_dgram(pm, buf, natpmp_build_map_udp(buf, sizeof(buf), pm->port, lifetime_s ? ext : 0, lifetime_s));
}

static void send_pcp(struct portmap *pm, uint32_t lifetime_s)
{
	const struct portmap_entry *e = &pm->e[PORTMAP_PCP];
	uint8_t buf[PCP_MAP_REQ_LEN];
	uint16_t ext = e->state == PORTMAP_MAPPED ? ntohs(e->ext.sin_port) :
	                                            pm->port;

	/* RFC 6887 11.2.1: renewals and the delete reuse the nonce */
	send_dgram(pm, buf, pcp_build_map_udp(buf, sizeof(buf), pm->nonce, pm->me, pm->port, ext, lifetime_s));
}

static void on_natpmp(struct portmap *pm, const uint8_t *d, size_t n)
{
	struct portmap_grant g;
	struct portmap_entry *e = &pm->e[PORTMAP_NATPMP];
	char why[64];

	if (!natpmp_parse_external(&g, d, n)) {
		if (g.result == PORTMAP_OK && !portmap_ext_usable(g.ext_ip)) {
			unusable(pm, PORTMAP_NATPMP, g.ext_ip);
			return;
		}
		if (g.result == PORTMAP_OK) {
			pm->natpmp_ext = g.ext_ip;
			pm->natpmp_have_ext = 1;
		}
	} else if (!natpmp_parse_map_udp(&g, d, n, pm->port)) {
		if (g.result == NATPMP_UNSUPP_VERSION) {
			/* RFC 6887 9: a NAT-PMP-only gateway's answer to
			 * our PCP request (ours was version 0 itself) */
			set_failed(pm, PORTMAP_PCP,
			           "the gateway speaks NAT-PMP only");
			return;
		}
		if (g.result != PORTMAP_OK || !g.lifetime_s) {
			snprintf(why, sizeof(why), "the gateway refused (result %d)",
			         g.result);
			set_failed(pm, PORTMAP_NATPMP, why);
			return;
		}
		e->lifetime_s = g.lifetime_s;
		e->ext.sin_port = htons(g.ext_port);
	} else {
		pm->garbage++;
		log_debug("portmap: ignored %zu bytes from the gateway: not a NAT-PMP answer to our request",
		          n);
		return;
	}
	/* both halves, in either order: the port, and the address */
	if (pm->natpmp_have_ext && e->lifetime_s &&
	    (e->state == PORTMAP_ASKING || e->state == PORTMAP_MAPPED))
		set_mapped(pm, PORTMAP_NATPMP, pm->natpmp_ext,
		           ntohs(e->ext.sin_port), e->lifetime_s);
}

static void on_pcp(struct portmap *pm, const uint8_t *d, size_t n)
{
	struct portmap_grant g;
	char why[64];

	if (pcp_parse_map_udp(&g, d, n, pm->nonce, pm->port)) {
		pm->garbage++;
		log_debug("portmap: ignored %zu bytes from the gateway: not a PCP answer to our request",
		          n);
		return;
	}
	if (g.result != PORTMAP_OK || !g.lifetime_s) {
		snprintf(why, sizeof(why), "the gateway refused (result %d)",
		         g.result);
		set_failed(pm, PORTMAP_PCP, why);
		return;
	}
	if (!portmap_ext_usable(g.ext_ip)) {
		unusable(pm, PORTMAP_PCP, g.ext_ip);
		return;
	}
	if (pm->e[PORTMAP_PCP].state == PORTMAP_ASKING ||
	    pm->e[PORTMAP_PCP].state == PORTMAP_MAPPED)
		set_mapped(pm, PORTMAP_PCP, g.ext_ip, g.ext_port, g.lifetime_s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	static uint8_t buf[PCP_MSG_MAX + 4];

	(void)h;
	(void)suggested;
	*b = uv_buf_init((char *)buf, sizeof(buf));
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b,
                    const struct sockaddr *from, unsigned flags)
{
	struct portmap *pm = h->data;
	const uint8_t *d = (const uint8_t *)b->base;

	(void)from; /* connected: only the gateway's port 5351 gets here */
	if (n <= 0 || (flags & UV_UDP_PARTIAL) || pm->stopping)
		return;
	/* RFC 6887 9: version 0 is NAT-PMP's, 2 is PCP's */
	if (d[0] == 2)
		on_pcp(pm, d, (size_t)n);
	else
		on_natpmp(pm, d, (size_t)n);
}

/* ---- timers ----------------------------------------------------------- */

static void renew(struct portmap *pm, int p, uint64_t now)
{
	struct portmap_entry *e = &pm->e[p];
	uint32_t quarter = e->lifetime_s / 4;

	/* no answer by then: try again a quarter lifetime later */
	e->renew_ms = now + 1000ull * (quarter > PORTMAP_RENEW_MIN_S ? quarter :
	                                                               PORTMAP_RENEW_MIN_S);
	if (p == PORTMAP_NATPMP)
		send_natpmp(pm, PORTMAP_LIFETIME_S);
	else if (p == PORTMAP_PCP)
		send_pcp(pm, PORTMAP_LIFETIME_S);
	else if (!pm->work_busy)
		upnp_queue(pm, UPNP_OP_MAP);
}

static void on_timer(uv_timer_t *t)
{
	struct portmap *pm = t->data;
	uint64_t now = uv_now(pm->loop);

	if (pm->resend_ms && now >= pm->resend_ms) {
		pm->resend_ms = 0;
		if (pm->e[PORTMAP_NATPMP].state == PORTMAP_ASKING)
			send_natpmp(pm, PORTMAP_LIFETIME_S);
		if (pm->e[PORTMAP_PCP].state == PORTMAP_ASKING)
			send_pcp(pm, PORTMAP_LIFETIME_S);
	}
	if (pm->budget_ms && now >= pm->budget_ms) {
		pm->budget_ms = 0;
		set_failed(pm, PORTMAP_NATPMP, "no answer in time");
		set_failed(pm, PORTMAP_PCP, "no answer in time");
		check_done(pm);
	}
	for (int p = 0; p < PORTMAP_PROTOS; p++)
		if (pm->e[p].state == PORTMAP_MAPPED && now >= pm->e[p].renew_ms)
			renew(pm, p, now);
	schedule(pm);
}

static void schedule(struct portmap *pm)
{
	uint64_t next = UINT64_MAX, now = uv_now(pm->loop);

	if (!pm->have_timer || pm->stopping)
		return;
	if (pm->resend_ms)
		next = pm->resend_ms;
	if (pm->budget_ms && pm->budget_ms < next)
		next = pm->budget_ms;
	for (int p = 0; p < PORTMAP_PROTOS; p++)
		if (pm->e[p].state == PORTMAP_MAPPED && pm->e[p].renew_ms < next)
			next = pm->e[p].renew_ms;
	if (next == UINT64_MAX) {
		uv_timer_stop(&pm->timer);
		return;
	}
	uv_timer_start(&pm->timer, on_timer, next > now ? next - now : 0, 0);
}

/* ---- start and stop --------------------------------------------------- */

static int read_gateway(struct in_addr *gw)
{
	char *text = malloc(PORTMAP_ROUTE_MAX);
	size_t len = 0;
	ssize_t n;
	int fd, rc = -1;

	if (!text)
		return -1;
	fd = open("/proc/net/route", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	/* bounded: at most PORTMAP_ROUTE_MAX bytes, each read makes progress */
	while (len < PORTMAP_ROUTE_MAX &&
	       (n = read(fd, text + len, PORTMAP_ROUTE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	rc = portmap_parse_route(text, len, gw);
out:
	free(text);
	return rc;
}

/* The socket for NAT-PMP and PCP, connected to the gateway's port 5351:
 * the kernel then hands us only the gateway's answers, and tells us our
 * own address toward it (PCP's client IP, RFC 6887 8.1). */
static int open_socket(struct portmap *pm)
{
	struct sockaddr_in any = { .sin_family = AF_INET }, to = any, me;
	int len = sizeof(me), rc;

	to.sin_addr = pm->gw;
	to.sin_port = htons(pm->gw_port);
	if ((rc = uv_udp_init(pm->loop, &pm->sock)))
		return rc;
	pm->have_sock = 1;
	pm->sock.data = pm;
	if ((rc = uv_udp_bind(&pm->sock, (struct sockaddr *)&any, 0)) ||
	    (rc = uv_udp_connect(&pm->sock, (struct sockaddr *)&to)) ||
	    (rc = uv_udp_getsockname(&pm->sock, (struct sockaddr *)&me, &len)) ||
	    (rc = uv_udp_recv_start(&pm->sock, on_alloc, on_recv)))
		return rc;
	pm->me = me.sin_addr;
	return 0;
}

int portmap_start(struct portmap *pm, uv_loop_t *loop, uint16_t port,
                  const struct sockaddr_in *gw, unsigned flags,
                  portmap_cb cb, void *ctx)
{
	char a[INET_ADDRSTRLEN];
	int rc;

	memset(pm, 0, sizeof(*pm));
	pm->loop = loop;
	pm->port = port;
	pm->cb = cb;
	pm->ctx = ctx;
	pm->first = -1;
	pm->start_ms = uv_now(loop);
	if ((rc = uv_timer_init(loop, &pm->timer)))
		return rc;
	pm->have_timer = 1;
	pm->timer.data = pm;
	pm->gw_port = gw ? ntohs(gw->sin_port) : PORTMAP_SERVER_PORT;
	if (gw)
		pm->gw = gw->sin_addr;
	else if (read_gateway(&pm->gw)) {
		log_debug("portmap: no IPv4 default gateway in /proc/net/route; not asking for a mapping");
		for (int p = 0; p < PORTMAP_PROTOS; p++)
			pm->e[p].state = PORTMAP_FAILED;
		pm->budget_ms = pm->start_ms; /* EV_DONE, from the loop */
		schedule(pm);
		return 0;
	}
	log_debug("portmap: asking the gateway %s for UDP port %u by UPnP, NAT-PMP and PCP",
	          inet_ntop(AF_INET, &pm->gw, a, sizeof(a)), port);
	rnd_nonce(pm->nonce, sizeof(pm->nonce));
	pm->e[PORTMAP_NATPMP].state = pm->e[PORTMAP_PCP].state = PORTMAP_ASKING;
	if ((rc = open_socket(pm))) {
		log_debug("portmap: socket toward the gateway: %s", uv_strerror(rc));
		pm->e[PORTMAP_NATPMP].state = pm->e[PORTMAP_PCP].state =
			PORTMAP_FAILED;
	} else {
		send_natpmp(pm, PORTMAP_LIFETIME_S);
		send_pcp(pm, PORTMAP_LIFETIME_S);
		pm->resend_ms = pm->start_ms + PORTMAP_RESEND_MS;
	}
	pm->budget_ms = pm->start_ms + PORTMAP_BUDGET_MS;
	if (!(flags & PORTMAP_NO_UPNP))
		pm->upnp = calloc(1, sizeof(*pm->upnp));
	if (pm->upnp) {
		pm->upnp->port = port;
		pm->e[PORTMAP_UPNP].state = PORTMAP_ASKING;
		upnp_queue(pm, UPNP_OP_MAP);
	}
	if (!pm->work_busy)
		pm->e[PORTMAP_UPNP].state = PORTMAP_FAILED;
	schedule(pm);
	return 0;
}

const struct portmap_entry *portmap_mapped(const struct portmap *pm,
                                           int *proto)
{
	if (pm->first < 0 || pm->e[pm->first].state != PORTMAP_MAPPED)
		return NULL;
	if (proto)
		*proto = pm->first;
	return &pm->e[pm->first];
}

void portmap_stop(struct portmap *pm)
{
	if (!pm->loop || pm->stopping)
		return;
	pm->stopping = 1;
	/* RFC 6886 3.4 and RFC 6887 15: lifetime 0 deletes the mapping */
	if (pm->have_sock && pm->e[PORTMAP_NATPMP].state == PORTMAP_MAPPED)
		send_natpmp(pm, 0);
	if (pm->have_sock && pm->e[PORTMAP_PCP].state == PORTMAP_MAPPED)
		send_pcp(pm, 0);
	if (pm->have_sock && !uv_is_closing((uv_handle_t *)&pm->sock))
		uv_close((uv_handle_t *)&pm->sock, NULL);
	if (pm->have_timer && !uv_is_closing((uv_handle_t *)&pm->timer))
		uv_close((uv_handle_t *)&pm->timer, NULL);
	if (pm->work_busy)
		return; /* upnp_after() deletes what it mapped, then frees */
	if (pm->e[PORTMAP_UPNP].state == PORTMAP_MAPPED && pm->upnp) {
		pm->upnp->ext_port = ntohs(pm->e[PORTMAP_UPNP].ext.sin_port);
		upnp_queue(pm, UPNP_OP_DELETE);
		if (pm->work_busy)
			return;
	}
	upnp_free(pm);
}
