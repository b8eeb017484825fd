/*
 * punch natcheck -server HOST:PORT [-json] [-lifetime]: what this network
 * does to UDP.  natcheck.c has the logic; this file has the sockets (on
 * libuv's loop, as the client's), the command line and the output.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#include "addr.h"
#include "cmd.h"
#include "gather.h"
#include "log.h"
#include "natcheck.h"
#include "portmap.h"

static const char usage[] =
	"usage: punch natcheck -server HOST:PORT [-json] [-lifetime] [-v]\n"
	"\n"
	"What this network does to UDP, in about 1.5 s: public addresses, NAT\n"
	"mapping and filtering (RFC 4787; RFC 5780's tests), port allocation,\n"
	"hairpinning, and which peers punch can reach directly from here. The\n"
	"server must run with -alt (a second address) for mapping and filtering.\n"
	"\n"
	"  -server HOST:PORT  a punch server started with -alt, or any RFC 5780\n"
	"                     STUN server (coturn with two listening IPs)\n"
	"  -json              one JSON object (fields: man punch)\n"
	"  -lifetime          also measure how long an idle mapping lives\n"
	"                     (RFC 5780 4.6; up to about 2 min)\n"
	"Exit status: 0 easy NAT or none, 3 hard (endpoint-dependent mapping),\n"
	"4 no UDP answer, 1 not determinable, 2 bad command line.\n";

struct nc_io {
	uv_loop_t loop;
	uv_timer_t timer;
	uv_udp_t udp[NATCHECK_SOCK_MAX];
	int open[NATCHECK_SOCK_MAX];
	struct natcheck nc;
	uint8_t rbuf[2048];
	/* port mapping, asked for the mapping socket's port beside the
	 * tests (portmap.h), and deleted as soon as every protocol answered */
	struct portmap pm;
	int pm_on;
};

static void nc_pump(struct nc_io *io);

static void nc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct nc_io *io = h->data;

	(void)hint;
	b->base = (char *)io->rbuf;
	b->len = sizeof(io->rbuf);
}

static void nc_on_udp(uv_udp_t *u, ssize_t n, const uv_buf_t *b,
                      const struct sockaddr *from, unsigned flags)
{
	struct nc_io *io = u->data;
	int s = (int)(u - io->udp);

	(void)flags;
	/* n < 0: an ICMP error (port unreachable) on a connected path; the
	 * test it answers simply gets no answer. */
	if (n <= 0 || !from)
		return;
	if (natcheck_on_recv(&io->nc, s, from, (const uint8_t *)b->base,
	                     (size_t)n, uv_now(&io->loop)))
		log_debug("natcheck: dropped %zd bytes on socket %d", n, s);
	nc_pump(io);
}

static void nc_on_timer(uv_timer_t *t)
{
	nc_pump(t->data);
}

static void nc_close_all(struct nc_io *io)
{
	for (int s = 0; s < NATCHECK_SOCK_MAX; s++)
		if (io->open[s])
			uv_close((uv_handle_t *)&io->udp[s], NULL);
	uv_close((uv_handle_t *)&io->timer, NULL);
}

/* Send whatever is due, then sleep until the next deadline. */
static void nc_pump(struct nc_io *io)
{
	struct natcheck_tx tx;
	uint64_t now, next;

	if (natcheck_done(&io->nc))
		return;
	uv_update_time(&io->loop);
	now = uv_now(&io->loop);
	for (int i = 0; i < NATCHECK_REQ_MAX * 2 &&
	                natcheck_poll_send(&io->nc, now, &tx);
	     i++) {
		uv_buf_t b = uv_buf_init((char *)tx.buf, (unsigned)tx.len);

		if (tx.sock < 0 || tx.sock >= NATCHECK_SOCK_MAX ||
		    !io->open[tx.sock] ||
		    uv_udp_try_send(&io->udp[tx.sock], &b, 1,
		                    (const struct sockaddr *)&tx.to) < 0)
			log_debug("natcheck: send on socket %d failed", tx.sock);
	}
	next = natcheck_next(&io->nc, now);
	if (natcheck_done(&io->nc)) {
		nc_close_all(io);
		return;
	}
	uv_timer_start(&io->timer, nc_on_timer, next > now ? next - now : 0, 0);
}

static int nc_open(struct nc_io *io, int s, int family,
                   const struct sockaddr *server)
{
	struct sockaddr_storage any = { .ss_family = (sa_family_t)family };
	struct sockaddr_storage local;
	int len = sizeof(local);

	if (uv_udp_init(&io->loop, &io->udp[s]))
		return -1;
	io->udp[s].data = io;
	io->open[s] = 1;
	if (uv_udp_bind(&io->udp[s], (struct sockaddr *)&any,
	                family == AF_INET6 ? UV_UDP_IPV6ONLY : 0) ||
	    uv_udp_recv_start(&io->udp[s], nc_alloc, nc_on_udp) ||
	    uv_udp_getsockname(&io->udp[s], (struct sockaddr *)&local, &len))
		return -1;
	/* The local IP is the one the kernel picks toward the server, so
	 * that "no NAT" compares like with like. */
	if (gather_source_for(server, addr_port((struct sockaddr *)&local),
	                      &local) == 0)
		natcheck_set_local(&io->nc, s, (struct sockaddr *)&local);
	return 0;
}

static void nc_on_portmap(void *ctx, enum portmap_event ev, int proto)
{
	struct nc_io *io = ctx;

	(void)proto;
	if (ev == PORTMAP_EV_DONE)
		portmap_stop(&io->pm);
}

/* Ask the gateway for a mapping of the first IPv4 socket's port, unless
 * the server is on loopback (a test on this machine: no gateway of ours is
 * on the way). */
static void nc_portmap(struct nc_io *io, const struct sockaddr *server)
{
	struct sockaddr_storage local;
	int len = sizeof(local);

	if (server->sa_family != AF_INET ||
	    addr_classify(server) == ADDR_CLASS_LOOPBACK)
		return;
	for (int s = 0; s < NATCHECK_SOCK_MAX; s++) {
		if (!io->open[s] || natcheck_sock_family(&io->nc, s) != AF_INET)
			continue;
		if (uv_udp_getsockname(&io->udp[s], (struct sockaddr *)&local,
		                       &len) == 0 &&
		    portmap_start(&io->pm, &io->loop,
		                  addr_port((struct sockaddr *)&local), NULL, 0,
		                  nc_on_portmap, io) == 0)
			io->pm_on = 1;
		return;
	}
}

static int nc_run(struct nc_io *io, const struct sockaddr *server,
                  const struct sockaddr *server6, int flags)
{
	uint8_t rnd[16];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return -1;
	if (uv_loop_init(&io->loop))
		return -1;
	uv_timer_init(&io->loop, &io->timer);
	io->timer.data = io;
	if (natcheck_init(&io->nc, server, server6, flags, rnd,
	                  uv_now(&io->loop)))
		return -1;
	for (int s = 0; s < NATCHECK_SOCK_MAX; s++) {
		int fam = natcheck_sock_family(&io->nc, s);

		if (fam < 0)
			continue;
		if (nc_open(io, s, fam, fam == AF_INET6 && server6 ? server6 : server)) {
			fprintf(stderr, "punch natcheck: cannot open a UDP socket\n");
			nc_close_all(io);
			uv_run(&io->loop, UV_RUN_DEFAULT);
			uv_loop_close(&io->loop);
			return -1;
		}
	}
	nc_portmap(io, server);
	nc_pump(io);
	uv_run(&io->loop, UV_RUN_DEFAULT);
	uv_loop_close(&io->loop);
	return 0;
}

/* ---- output ---------------------------------------------------------------- */

/* The peers punch can reach directly, by the task's names: a pair works
 * when both map endpoint-independently (each punches to the other's
 * server-reflexive address), or when the side that maps endpoint-
 * dependently talks to one whose filter lets its new port in (address-
 * dependent or none; the other side learns the port as peer-reflexive). */
struct peer_type {
	const char *name;
	enum natcheck_behaviour mapping, filtering;
};

static const struct peer_type peer_types[] = {
	{ "full cone", NATCHECK_INDEPENDENT, NATCHECK_INDEPENDENT },
	{ "restricted cone", NATCHECK_INDEPENDENT, NATCHECK_ADDRESS },
	{ "port-restricted cone", NATCHECK_INDEPENDENT, NATCHECK_ADDRESS_PORT },
	{ "symmetric", NATCHECK_ADDRESS_PORT, NATCHECK_ADDRESS_PORT }
};

static int reaches(const struct natcheck_result *r, const struct peer_type *p)
{
	int we_easy = r->mapping == NATCHECK_INDEPENDENT;
	int they_easy = p->mapping == NATCHECK_INDEPENDENT;

	if (we_easy && they_easy)
		return 1;
	if (we_easy)
		return r->filtering == NATCHECK_INDEPENDENT ||
		       r->filtering == NATCHECK_ADDRESS;
	if (they_easy)
		return p->filtering != NATCHECK_ADDRESS_PORT;
	return 0;
}

static const char *verdict_word(const struct natcheck_result *r)
{
	switch (natcheck_exit_status(r)) {
	case NATCHECK_EXIT_EASY:
		return "easy";
	case NATCHECK_EXIT_HARD:
		return "hard";
	case NATCHECK_EXIT_NO_UDP:
		return "no-udp";
	default:
		return "unknown";
	}
}

static const char *str_or(const char *s, const char *dflt)
{
	return s ? s : dflt;
}

static void print_jstr(const char *key, const char *v, int comma)
{
	if (v)
		printf("\"%s\":\"%s\"%s", key, v, comma ? "," : "");
	else
		printf("\"%s\":null%s", key, comma ? "," : "");
}

/* "portmap": null when no protocol gave a mapping (or none was asked);
 * else the first mapping, and every protocol that gave one. */
static void print_json_portmap(const struct portmap *pm)
{
	const struct portmap_entry *e = pm ? portmap_mapped(pm, NULL) : NULL;
	char a[ADDR_STRLEN];
	int proto, n = 0;

	if (!e || !portmap_mapped(pm, &proto)) {
		printf("\"portmap\":null,");
		return;
	}
	printf("\"portmap\":{\"protocol\":\"%s\",\"external\":\"%s\",\"lifetime_s\":%u,\"protocols\":[",
	       portmap_proto_str(proto),
	       addr_str((const struct sockaddr *)&e->ext, a, sizeof(a)),
	       e->lifetime_s);
	for (int p = 0; p < PORTMAP_PROTOS; p++)
		if (pm->e[p].state == PORTMAP_MAPPED)
			printf("%s\"%s\"", n++ ? "," : "", portmap_proto_str(p));
	printf("]},");
}

static void print_human_portmap(const struct portmap *pm)
{
	const struct portmap_entry *e = pm ? portmap_mapped(pm, NULL) : NULL;
	char a[ADDR_STRLEN];
	int proto;

	if (!pm) {
		printf("port mapping: not checked (the server is on loopback, or not IPv4)\n");
		return;
	}
	if (!e || !portmap_mapped(pm, &proto)) {
		printf("port mapping: none (the gateway gave no mapping by UPnP, NAT-PMP or PCP)\n");
		return;
	}
	printf("port mapping: %s: %s for %u s", portmap_proto_str(proto),
	       addr_str((const struct sockaddr *)&e->ext, a, sizeof(a)),
	       e->lifetime_s);
	for (int p = 0; p < PORTMAP_PROTOS; p++)
		if (p != proto && pm->e[p].state == PORTMAP_MAPPED)
			printf("; %s too", portmap_proto_str(p));
	printf(" (deleted again)\n");
}

static void print_json(const struct natcheck_result *r,
                       const struct sockaddr *server, const struct portmap *pm)
{
	char a[ADDR_STRLEN], b[ADDR_STRLEN], o[ADDR_STRLEN];
	size_t n = 0;

	printf("{");
	print_jstr("server", addr_str(server, a, sizeof(a)), 1);
	print_jstr("other", r->has_other ? addr_str((const struct sockaddr *)&r->other, o, sizeof(o)) : NULL, 1);
	printf("\"udp\":%s,", r->udp ? "true" : "false");
	print_jstr("public_v4", r->has_public_v4 ? addr_str((const struct sockaddr *)&r->public_v4, a, sizeof(a)) : NULL, 1);
	print_jstr("public_v6", r->has_public_v6 ? addr_str((const struct sockaddr *)&r->public_v6, b, sizeof(b)) : NULL, 1);
	printf("\"nat\":%s,", r->nat < 0 ? "null" : r->nat ? "true" :
	                                                     "false");
	printf("\"port_preserved\":%s,", r->nat < 0 ? "null" : r->port_preserved ? "true" :
	                                                                           "false");
	print_jstr("mapping", natcheck_behaviour_str(r->mapping), 1);
	print_jstr("filtering", natcheck_behaviour_str(r->filtering), 1);
	print_jstr("nat_type", natcheck_type_str(r), 1);
	print_jstr("port_pattern", natcheck_pattern_str(r->pattern), 1);
	printf("\"deltas\":[");
	for (size_t i = 0; i < r->n_deltas; i++)
		printf("%s%d", i ? "," : "", r->deltas[i]);
	printf("],\"hairpin\":%s,", r->hairpin < 0 ? "null" : r->hairpin ? "true" :
	                                                                   "false");
	if (r->lifetime_checked)
		printf("\"lifetime_s\":%u,\"lifetime_max_s\":%u,", r->lifetime_s,
		       r->lifetime_max_s);
	else
		printf("\"lifetime_s\":null,\"lifetime_max_s\":null,");
	print_json_portmap(pm);
	print_jstr("verdict", verdict_word(r), 1);
	printf("\"direct\":[");
	if (r->udp && r->mapping != NATCHECK_UNKNOWN)
		for (size_t i = 0; i < sizeof(peer_types) / sizeof(peer_types[0]); i++)
			if (reaches(r, &peer_types[i]))
				printf("%s\"%s\"", n++ ? "," : "", peer_types[i].name);
	printf("]}\n");
}

static void print_verdict(const struct natcheck_result *r)
{
	const char *sep = "";

	if (!r->udp) {
		printf("verdict:      no UDP: punching cannot work from here\n");
		return;
	}
	if (r->mapping == NATCHECK_UNKNOWN) {
		printf("verdict:      unknown: mapping not determinable\n");
		return;
	}
	printf("verdict:      %s; direct to ", verdict_word(r));
	for (size_t i = 0; i < sizeof(peer_types) / sizeof(peer_types[0]); i++)
		if (reaches(r, &peer_types[i])) {
			printf("%s%s", sep, peer_types[i].name);
			sep = ", ";
		}
	if (!*sep)
		printf("none");
	printf(" peers");
	if (r->mapping == NATCHECK_INDEPENDENT)
		printf(" (both sides punch to the address the server saw%s)\n",
		       reaches(r, &peer_types[3]) ? "; a symmetric peer's new port gets in and is learnt as peer-reflexive" : "");
	else
		printf(" (this NAT gives each peer a new port; only a peer whose filter admits it, learning it as peer-reflexive, gets through)\n");
	for (size_t i = 0; i < sizeof(peer_types) / sizeof(peer_types[0]); i++)
		if (!reaches(r, &peer_types[i]))
			printf("              %s peers: through a relay\n",
			       peer_types[i].name);
}

static void print_human(const struct natcheck_result *r,
                        const struct sockaddr *server, int server_has_v6,
                        const struct portmap *pm)
{
	char a[ADDR_STRLEN], o[ADDR_STRLEN];
	const char *nd = "not determinable (the server gave no alternate address: start it with -alt ADDR:PORT)";

	printf("server:       %s", addr_str(server, a, sizeof(a)));
	if (r->has_other)
		printf(" (alternate %s)", addr_str((const struct sockaddr *)&r->other, o, sizeof(o)));
	printf("\nUDP:          %s\n", r->udp ? "yes" : "no answer");
	if (!r->has_public_v4)
		printf("public IPv4:  none\n");
	else
		printf("public IPv4:  %s (port %s)\n",
		       addr_str((const struct sockaddr *)&r->public_v4, a, sizeof(a)),
		       r->port_preserved ? "preserved" : "not preserved");
	if (r->has_public_v6)
		printf("public IPv6:  %s%s\n", addr_str((const struct sockaddr *)&r->public_v6, a, sizeof(a)),
		       r->has_public_v4 ? "" : r->port_preserved ? " (port preserved)" :
		                                                   " (port not preserved)");
	else
		printf("public IPv6:  none%s\n", server_has_v6 ? " (no answer over IPv6)" : " (the server has no IPv6 address)");
	if (!r->udp) {
		print_verdict(r);
		return;
	}
	if (r->nat >= 0)
		printf("NAT:          %s\n", r->nat ? "yes" : "no (the public address is this host's own)");
	if (!r->has_other) {
		printf("mapping:      %s\nfiltering:    %s\n", nd, nd);
	} else {
		printf("mapping:      %s\n", str_or(natcheck_behaviour_str(r->mapping), "not determinable (no answer from the alternate address)"));
		printf("filtering:    %s\n", str_or(natcheck_behaviour_str(r->filtering), "not determinable (the server did not answer from its other addresses)"));
	}
	printf("NAT type:     %s\n", str_or(natcheck_type_str(r), "not determinable"));
	printf("port pattern: %s", str_or(natcheck_pattern_str(r->pattern), "not determinable"));
	if (r->pattern != NATCHECK_PAT_PRESERVING && r->n_deltas) {
		printf(" (deltas");
		for (size_t i = 0; i < r->n_deltas; i++)
			printf(" %+d", r->deltas[i]);
		printf(")");
	}
	printf("\nhairpinning:  %s\n", r->hairpin < 0 ? "not determinable" : r->hairpin ? "yes" :
	                                                                                  "no");
	if (!r->lifetime_checked)
		printf("lifetime:     not checked (use -lifetime)\n");
	else if (r->lifetime_max_s)
		printf("lifetime:     at least %u s, under %u s\n", r->lifetime_s, r->lifetime_max_s);
	else
		printf("lifetime:     at least %u s\n", r->lifetime_s);
	print_human_portmap(pm);
	print_verdict(r);
}

int cmd_natcheck(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "lifetime", no_argument, NULL, 'l' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct sockaddr_storage s4, s6;
	const char *server = NULL, *err4 = NULL, *err6 = NULL;
	const struct natcheck_result *r;
	const struct sockaddr *srv;
	static struct nc_io io;
	int c, json = 0, flags = 0, has4, has6, rc;
	char a[ADDR_STRLEN];

	optind = 1;
	while ((c = getopt_long_only(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			server = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'l':
			flags |= NATCHECK_LIFETIME;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			return cmd_bad("natcheck", "unknown option");
		}
	}
	if (optind < argc)
		return cmd_bad("natcheck", "unexpected argument '%s'", argv[optind]);
	if (!server)
		return cmd_bad("natcheck", "-server HOST:PORT is required (a punch server started with -alt)");
	has4 = addr_resolve(&s4, server, AF_INET, &err4) == 0;
	has6 = addr_resolve(&s6, server, AF_INET6, &err6) == 0;
	if (!has4 && !has6)
		return cmd_bad("natcheck", "bad -server '%s': %s", server, err4);
	if (addr_port((const struct sockaddr *)(has4 ? &s4 : &s6)) == 0)
		return cmd_bad("natcheck", "bad -server '%s': the port must be 1-65535", server);
	srv = (const struct sockaddr *)(has4 ? &s4 : &s6);
	memset(&io, 0, sizeof(io));
	if (nc_run(&io, srv, has4 && has6 ? (const struct sockaddr *)&s6 : NULL,
	           flags))
		return 1;
	r = natcheck_result(&io.nc);
	if (json)
		print_json(r, srv, io.pm_on ? &io.pm : NULL);
	else
		print_human(r, srv, has6, io.pm_on ? &io.pm : NULL);
	rc = natcheck_exit_status(r);
	if (rc == NATCHECK_EXIT_NO_UDP)
		fprintf(stderr, "punch natcheck: no UDP answer from %s in %u s; UDP may be blocked here, or check -server\n",
		        addr_str(srv, a, sizeof(a)), NATCHECK_FIRST_TIMEOUT_MS / 1000);
	else if (!r->has_other)
		fprintf(stderr, "punch natcheck: %s gave no alternate address (OTHER-ADDRESS), so mapping and filtering are not determinable; start the server with -alt ADDR:PORT\n",
		        addr_str(srv, a, sizeof(a)));
	return rc;
}
