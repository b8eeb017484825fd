/*
 * Unit tests for the port-mapping client (src/portmap.c) against a fake
 * gateway on loopback that speaks NAT-PMP and PCP by hand (not through
 * portmap_proto.c), and for the /proc/net/route parser.  UPnP is left out
 * (PORTMAP_NO_UPNP): its discovery would multicast beyond this machine.
 */
#include "unit.h"

#include <arpa/inet.h>
#include <uv.h>

#include "portmap.h"

enum gw_mode {
	GW_GOOD,        /* garbage and a wrong nonce first, then good answers */
	GW_SILENT,      /* never answers */
	GW_NATPMP_ONLY, /* answers PCP with NAT-PMP's "unsupported version" */
	GW_BAD_EXT,     /* grants mappings on 127.0.0.1 (NAT-PMP), 0.0.0.0 (PCP) */
};

static struct {
	uv_loop_t loop;
	uv_udp_t gw;
	uv_timer_t guard;
	struct sockaddr_in gw_addr;
	enum gw_mode mode;
	struct portmap pm;
	int mapped[PORTMAP_PROTOS], done;
	char ext[PORTMAP_PROTOS][ADDR_STRLEN]; /* as first mapped */
	uint64_t done_ms;
	int natpmp_deleted, pcp_deleted, stopped;
	uint8_t nonce[12];
} t;

static void gw_send(const struct sockaddr *to, const uint8_t *b, size_t n)
{
	uv_buf_t buf = uv_buf_init((char *)b, (unsigned)n);

	assert_true(uv_udp_try_send(&t.gw, &buf, 1, to) == (int)n);
}

static void gw_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	static char buf[2048];

	(void)h;
	(void)s;
	*b = uv_buf_init(buf, sizeof(buf));
}

static void gw_natpmp(const uint8_t *d, size_t n, const struct sockaddr *from)
{
	static const uint8_t ext[] = { 0, 128, 0, 0, 0, 0, 0, 9, 203, 0, 113, 7 };
	static const uint8_t lo[] = { 0, 128, 0, 0, 0, 0, 0, 9, 127, 0, 0, 1 };
	uint8_t map[16] = { 0, 129, 0, 0, 0, 0, 0, 9 };

	if (n == 2 && d[1] == 0) {
		if (t.mode == GW_BAD_EXT)
			gw_send(from, lo, sizeof(lo));
		else
			gw_send(from, ext, sizeof(ext));
		return;
	}
	assert_int_equal(n, 12);
	assert_int_equal(d[1], 1);
	if (t.stopped) {
		/* RFC 6886 3.4: the delete has lifetime 0 and port 0 */
		assert_memory_equal(d + 6, "\0\0\0\0\0\0", 6);
		t.natpmp_deleted = 1;
		return;
	}
	memcpy(map + 8, d + 4, 2);          /* internal port */
	map[10] = 0xc3, map[11] = 0x50;     /* 50000 */
	map[14] = 0x0e, map[15] = 0x10;     /* 3600 s */
	gw_send(from, map, sizeof(map));
}

static void gw_pcp(const uint8_t *d, size_t n, const struct sockaddr *from)
{
	uint8_t r[60];

	assert_int_equal(n, 60);
	assert_int_equal(d[1], 1);
	if (t.stopped) {
		assert_memory_equal(d + 4, "\0\0\0\0", 4);
		assert_memory_equal(d + 24, t.nonce, 12); /* the same nonce */
		t.pcp_deleted = 1;
		return;
	}
	memcpy(t.nonce, d + 24, 12);
	if (t.mode == GW_NATPMP_ONLY) {
		static const uint8_t v0[] = { 0, 129, 0, 1, 0, 0, 0, 9 };
		gw_send(from, v0, sizeof(v0));
		return;
	}
	memset(r, 0, sizeof(r));
	r[0] = 2, r[1] = 0x81;
	r[6] = 0x0e, r[7] = 0x10;            /* 3600 s */
	memcpy(r + 24, d + 24, 36);          /* nonce, protocol, ports */
	r[42] = 0xc3, r[43] = 0x51;          /* 50001 */
	memset(r + 44, 0, 16);
	r[54] = r[55] = 0xff;
	r[56] = 203, r[57] = 0, r[58] = 113, r[59] = 8;
	if (t.mode == GW_BAD_EXT)
		memset(r + 56, 0, 4);        /* ::ffff:0.0.0.0 */
	/* a wrong nonce first, naming another port: someone else's answer,
	 * to be ignored (RFC 6887 11.3) */
	r[24] ^= 0xff;
	r[43] = 0x99;
	gw_send(from, r, sizeof(r));
	r[24] ^= 0xff;
	r[43] = 0x51;
	gw_send(from, r, sizeof(r));
}

static void gw_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b,
                    const struct sockaddr *from, unsigned flags)
{
	static const uint8_t garbage[] = { 0xde, 0xad, 0xbe, 0xef, 1 };
	const uint8_t *d = (const uint8_t *)b->base;

	(void)h;
	(void)flags;
	if (n <= 0 || t.mode == GW_SILENT)
		return;
	if (!t.stopped)
		gw_send(from, garbage, sizeof(garbage));
	if (d[0] == 2)
		gw_pcp(d, (size_t)n, from);
	else
		gw_natpmp(d, (size_t)n, from);
}

static void on_event(void *ctx, enum portmap_event ev, int proto)
{
	(void)ctx;
	if (ev == PORTMAP_EV_MAPPED) {
		t.mapped[proto]++;
		addr_str((struct sockaddr *)&t.pm.e[proto].ext, t.ext[proto],
		         sizeof(t.ext[proto]));
	}
	if (ev == PORTMAP_EV_DONE) {
		t.done++;
		t.done_ms = uv_now(&t.loop) - t.pm.start_ms;
		uv_stop(&t.loop);
	}
}

static void on_guard(uv_timer_t *h)
{
	(void)h;
	print_error("no end within 2 s\n");
	uv_stop(&t.loop);
}

static void close_one(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void run(enum gw_mode mode)
{
	struct sockaddr_in lo = { .sin_family = AF_INET };
	int len = sizeof(t.gw_addr);

	memset(&t, 0, sizeof(t));
	t.mode = mode;
	assert_int_equal(uv_loop_init(&t.loop), 0);
	lo.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(uv_udp_init(&t.loop, &t.gw), 0);
	assert_int_equal(uv_udp_bind(&t.gw, (struct sockaddr *)&lo, 0), 0);
	assert_int_equal(uv_udp_getsockname(&t.gw, (struct sockaddr *)&t.gw_addr, &len), 0);
	assert_int_equal(uv_udp_recv_start(&t.gw, gw_alloc, gw_recv), 0);
	uv_timer_init(&t.loop, &t.guard);
	uv_timer_start(&t.guard, on_guard, 2000, 0);
	assert_int_equal(portmap_start(&t.pm, &t.loop, 40000, &t.gw_addr,
	                               PORTMAP_NO_UPNP, on_event, NULL),
	                 0);
	uv_run(&t.loop, UV_RUN_DEFAULT);
	assert_int_equal(t.done, 1);
}

/* The deletes reach the gateway on stop; then everything closes. */
static void stop_and_close(void)
{
	t.stopped = 1;
	portmap_stop(&t.pm);
	uv_timer_stop(&t.guard);
	/* the deletes were sent synchronously; let the gateway read them */
	uv_run(&t.loop, UV_RUN_NOWAIT);
	uv_run(&t.loop, UV_RUN_NOWAIT);
	uv_walk(&t.loop, close_one, NULL);
	uv_run(&t.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&t.loop), 0);
}

static void test_good_gateway(void **state)
{
	const struct portmap_entry *e;
	char a[ADDR_STRLEN];
	int proto;

	(void)state;
	run(GW_GOOD);
	assert_int_equal(t.mapped[PORTMAP_NATPMP], 1);
	assert_int_equal(t.mapped[PORTMAP_PCP], 1);
	assert_int_equal(t.pm.e[PORTMAP_NATPMP].state, PORTMAP_MAPPED);
	assert_int_equal(t.pm.e[PORTMAP_PCP].state, PORTMAP_MAPPED);
	assert_int_equal(t.pm.e[PORTMAP_UPNP].state, PORTMAP_FAILED);
	assert_string_equal(t.ext[PORTMAP_NATPMP], "203.0.113.7:50000");
	assert_string_equal(t.ext[PORTMAP_PCP], "203.0.113.8:50001");
	addr_str((struct sockaddr *)&t.pm.e[PORTMAP_PCP].ext, a, sizeof(a));
	assert_string_equal(a, "203.0.113.8:50001");
	assert_int_equal(t.pm.e[PORTMAP_PCP].lifetime_s, 3600);
	/* the garbage (one per request) and the wrong nonce: ignored */
	assert_true(t.pm.garbage >= 3);
	e = portmap_mapped(&t.pm, &proto);
	assert_non_null(e);
	assert_true(proto == PORTMAP_NATPMP || proto == PORTMAP_PCP);
	/* the answers came at once: done long before the budget */
	assert_true(t.done_ms < PORTMAP_BUDGET_MS);
	stop_and_close();
	assert_int_equal(t.natpmp_deleted, 1);
	assert_int_equal(t.pcp_deleted, 1);
}

static void test_silent_gateway(void **state)
{
	(void)state;
	run(GW_SILENT);
	assert_int_equal(t.pm.e[PORTMAP_NATPMP].state, PORTMAP_FAILED);
	assert_int_equal(t.pm.e[PORTMAP_PCP].state, PORTMAP_FAILED);
	assert_null(portmap_mapped(&t.pm, NULL));
	/* the budget, and not much more (a busy machine's slack) */
	if (t.done_ms < PORTMAP_BUDGET_MS || t.done_ms > 1500)
		print_error("done after %llu ms\n", (unsigned long long)t.done_ms);
	assert_true(t.done_ms >= PORTMAP_BUDGET_MS && t.done_ms <= 1500);
	stop_and_close();
	/* nothing was mapped, so nothing is deleted */
	assert_int_equal(t.natpmp_deleted, 0);
	assert_int_equal(t.pcp_deleted, 0);
}

static void test_natpmp_only_gateway(void **state)
{
	(void)state;
	run(GW_NATPMP_ONLY);
	assert_int_equal(t.pm.e[PORTMAP_NATPMP].state, PORTMAP_MAPPED);
	assert_int_equal(t.pm.e[PORTMAP_PCP].state, PORTMAP_FAILED);
	assert_true(t.done_ms < PORTMAP_BUDGET_MS);
	stop_and_close();
	assert_int_equal(t.natpmp_deleted, 1);
	assert_int_equal(t.pcp_deleted, 0);
}

/* A gateway that grants mappings on an address no peer can reach (a
 * confused or hostile one): refused, so no "mapped" candidate names it. */
static void test_bad_external_address(void **state)
{
	(void)state;
	run(GW_BAD_EXT);
	assert_int_equal(t.mapped[PORTMAP_NATPMP], 0);
	assert_int_equal(t.mapped[PORTMAP_PCP], 0);
	assert_int_equal(t.pm.e[PORTMAP_NATPMP].state, PORTMAP_FAILED);
	assert_int_equal(t.pm.e[PORTMAP_PCP].state, PORTMAP_FAILED);
	assert_null(portmap_mapped(&t.pm, NULL));
	assert_true(t.done_ms < PORTMAP_BUDGET_MS);
	stop_and_close();
}

static void test_ext_ip(void **state)
{
	struct in_addr a;

	(void)state;
	assert_int_equal(portmap_parse_ext_ip("11.0.113.10", 11, &a), 0);
	assert_int_equal(ntohl(a.s_addr), 0x0b00710a);
	/* a double NAT's private outside address is real */
	assert_int_equal(portmap_parse_ext_ip("192.168.1.2", 11, &a), 0);
	/* len, not the NUL, ends it */
	assert_int_equal(portmap_parse_ext_ip("11.0.113.10junk", 11, &a), 0);
	assert_int_equal(portmap_parse_ext_ip("0.0.0.0", 7, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("127.0.0.1", 9, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("224.0.0.1", 9, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("169.254.1.1", 11, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("169.253.1.1", 11, &a), 0);
	assert_int_equal(portmap_parse_ext_ip("255.255.255.255", 15, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("", 0, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("1.2.3", 5, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("1.2.3.4 ", 8, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("1.2.3.4\0", 8, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("2001:db8::1", 11, &a), -1);
	assert_int_equal(portmap_parse_ext_ip("111.111.111.1111", 16, &a), -1);
}

static void test_route(void **state)
{
	static const char route[] =
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
		"eth0\t0064A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
		"eth1\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
		"eth0\t00000000\t0164A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
	static const char down[] =
		"eth0\t00000000\t0164A8C0\t0002\t0\t0\t100\t00000000\t0\t0\t0\n";
	static const char short_gw[] =
		"eth0\t00000000\t101A8C0\t0003\t0\t0\t1\t00000000\n";
	static const char junk[] = "eth0\t00000000\t0164A8C0Z\t0003\t0\t0\t1\t0\n"
				   "eth0\t00000000";
	struct in_addr gw;
	uint8_t *b = (uint8_t *)&gw.s_addr;

	(void)state;
	assert_int_equal(portmap_parse_route(route, sizeof(route) - 1, &gw), 0);
	/* the lower metric wins: 192.168.100.1 (written as it lies in
	 * memory, so the bytes read back in order on this machine) */
	if (*(const uint16_t *)"\1\0" == 1) {
		assert_int_equal(b[0], 192);
		assert_int_equal(b[3], 1);
		assert_int_equal(b[2], 100);
	}
	assert_int_equal(portmap_parse_route(down, sizeof(down) - 1, &gw), -1);
	/* the kernel writes addresses as 8 digits: 7 is not one */
	assert_int_equal(portmap_parse_route(short_gw, sizeof(short_gw) - 1, &gw), -1);
	assert_int_equal(portmap_parse_route(junk, sizeof(junk) - 1, &gw), -1);
	assert_int_equal(portmap_parse_route("", 0, &gw), -1);
	/* cut anywhere, it never reads past the length */
	for (size_t n = 0; n < sizeof(route) - 1; n++)
		(void)portmap_parse_route(route, n, &gw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_external_address),
		cmocka_unit_test(test_ext_ip),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_good_gateway),
		cmocka_unit_test(test_silent_gateway),
		cmocka_unit_test(test_natpmp_only_gateway),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
