/*
 * Unit tests for the NAT-PMP and PCP codec (src/portmap_proto.c): requests
 * byte for byte as RFC 6886 3.2/3.3 and RFC 6887 7.1/11.1 lay them out,
 * and answers that are ours, not ours, or broken.
 */
#include "unit.h"

#include <arpa/inet.h>

#include "portmap_proto.h"

static const uint8_t nonce[PCP_NONCE_LEN] = { 1, 2, 3, 4, 5, 6,
	                                      7, 8, 9, 10, 11, 12 };

static struct in_addr ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a;
}

static void test_natpmp_requests(void **state)
{
	static const uint8_t ext[] = { 0, 0 };
	/* UDP, internal 40000, suggested 40000, 7200 s */
	static const uint8_t map[] = { 0, 1, 0, 0, 0x9c, 0x40, 0x9c, 0x40,
		                       0, 0, 0x1c, 0x20 };
	static const uint8_t del[] = { 0, 1, 0, 0, 0x9c, 0x40, 0, 0,
		                       0, 0, 0, 0 };
	uint8_t buf[16];

	(void)state;
	assert_int_equal(natpmp_build_external(buf, sizeof(buf)), 2);
	assert_memory_equal(buf, ext, sizeof(ext));
	assert_int_equal(natpmp_build_map_udp(buf, sizeof(buf), 40000, 40000, 7200), 12);
	assert_memory_equal(buf, map, sizeof(map));
	assert_int_equal(natpmp_build_map_udp(buf, sizeof(buf), 40000, 0, 0), 12);
	assert_memory_equal(buf, del, sizeof(del));
	/* too small a buffer is refused, not overrun */
	assert_int_equal(natpmp_build_external(buf, 1), -1);
	assert_int_equal(natpmp_build_map_udp(buf, 11, 1, 1, 1), -1);
}

static void test_natpmp_external(void **state)
{
	/* epoch 1000 s, 203.0.113.7 */
	uint8_t ok[] = { 0, 128, 0, 0, 0, 0, 0x03, 0xe8, 203, 0, 113, 7 };
	uint8_t err[] = { 0, 128, 0, 3, 0, 0, 0, 5 };
	struct portmap_grant g;

	(void)state;
	assert_int_equal(natpmp_parse_external(&g, ok, sizeof(ok)), 0);
	assert_int_equal(g.result, 0);
	assert_int_equal(g.epoch_s, 1000);
	assert_int_equal(g.ext_ip.s_addr, ip("203.0.113.7").s_addr);
	/* 3 = network failure: an answer, with its result */
	assert_int_equal(natpmp_parse_external(&g, err, sizeof(err)), 0);
	assert_int_equal(g.result, 3);
	/* a success cut short, a request echoed, version 2 */
	assert_int_equal(natpmp_parse_external(&g, ok, 11), -1);
	assert_int_equal(natpmp_parse_external(&g, ok, 7), -1);
	ok[1] = 0;
	assert_int_equal(natpmp_parse_external(&g, ok, sizeof(ok)), -1);
	ok[1] = 128;
	ok[0] = 2;
	assert_int_equal(natpmp_parse_external(&g, ok, sizeof(ok)), -1);
}

static void test_natpmp_map(void **state)
{
	/* internal 40000 -> external 50000 for 3600 s, epoch 7 */
	uint8_t ok[] = { 0, 129, 0, 0, 0, 0, 0, 7, 0x9c, 0x40, 0xc3, 0x50,
		         0, 0, 0x0e, 0x10 };
	uint8_t refused[] = { 0, 129, 0, 2, 0, 0, 0, 7 };
	struct portmap_grant g;

	(void)state;
	assert_int_equal(natpmp_parse_map_udp(&g, ok, sizeof(ok), 40000), 0);
	assert_int_equal(g.result, 0);
	assert_int_equal(g.ext_port, 50000);
	assert_int_equal(g.internal_port, 40000);
	assert_int_equal(g.lifetime_s, 3600);
	assert_int_equal(g.epoch_s, 7);
	/* 2 = not authorized */
	assert_int_equal(natpmp_parse_map_udp(&g, refused, sizeof(refused), 40000), 0);
	assert_int_equal(g.result, 2);
	/* another port's answer, the TCP opcode, a short one */
	assert_int_equal(natpmp_parse_map_udp(&g, ok, sizeof(ok), 40001), -1);
	assert_int_equal(natpmp_parse_map_udp(&g, ok, 15, 40000), -1);
	ok[1] = 130;
	assert_int_equal(natpmp_parse_map_udp(&g, ok, sizeof(ok), 40000), -1);
	ok[1] = 129;
	/* a granted mapping with no port */
	ok[10] = ok[11] = 0;
	assert_int_equal(natpmp_parse_map_udp(&g, ok, sizeof(ok), 40000), -1);
}

static void test_pcp_request(void **state)
{
	static const uint8_t want[PCP_MAP_REQ_LEN] = {
		2, 1, 0, 0,                         /* version, MAP, reserved */
		0, 0, 0x1c, 0x20,                   /* 7200 s */
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 20,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, /* nonce */
		17, 0, 0, 0,                        /* UDP, reserved */
		0x9c, 0x40, 0x9c, 0x40,             /* internal, suggested */
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0
	};
	uint8_t buf[64];

	(void)state;
	assert_int_equal(pcp_build_map_udp(buf, sizeof(buf), nonce,
	                                   ip("192.168.1.20"), 40000, 40000, 7200),
	                 PCP_MAP_REQ_LEN);
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(pcp_build_map_udp(buf, 59, nonce, ip("192.168.1.20"),
	                                   1, 1, 1),
	                 -1);
}

/* A MAP response as RFC 6887 7.2/11.1 lays it out. */
static size_t pcp_response(uint8_t *b, uint8_t result, uint16_t port,
                           const char *ext)
{
	struct in_addr a = ip(ext);

	memset(b, 0, 64);
	b[0] = 2;
	b[1] = 0x81;
	b[3] = result;
	b[6] = 0x0e; /* lifetime 3600 */
	b[7] = 0x10;
	b[11] = 42;  /* epoch */
	memcpy(b + 24, nonce, PCP_NONCE_LEN);
	b[36] = 17;
	b[40] = 0x9c; /* internal 40000 */
	b[41] = 0x40;
	b[42] = (uint8_t)(port >> 8);
	b[43] = (uint8_t)port;
	b[54] = b[55] = 0xff;
	memcpy(b + 56, &a.s_addr, 4);
	return 60;
}

static void test_pcp_response(void **state)
{
	uint8_t b[64], other[PCP_NONCE_LEN];
	struct portmap_grant g;
	size_t n = pcp_response(b, 0, 50000, "203.0.113.9");

	(void)state;
	assert_int_equal(pcp_parse_map_udp(&g, b, n, nonce, 40000), 0);
	assert_int_equal(g.result, 0);
	assert_int_equal(g.ext_port, 50000);
	assert_int_equal(g.lifetime_s, 3600);
	assert_int_equal(g.epoch_s, 42);
	assert_int_equal(g.ext_ip.s_addr, ip("203.0.113.9").s_addr);
	/* with an option after it (4 more bytes): still ours */
	assert_int_equal(pcp_parse_map_udp(&g, b, 64, nonce, 40000), 0);
	/* RFC 6887 11.3: another nonce is someone else's answer */
	memcpy(other, nonce, sizeof(other));
	other[11] ^= 1;
	assert_int_equal(pcp_parse_map_udp(&g, b, n, other, 40000), -1);
	/* another internal port */
	assert_int_equal(pcp_parse_map_udp(&g, b, n, nonce, 40001), -1);
	/* 8.3: too short, not a multiple of 4, too long */
	assert_int_equal(pcp_parse_map_udp(&g, b, 56, nonce, 40000), -1);
	assert_int_equal(pcp_parse_map_udp(&g, b, 61, nonce, 40000), -1);
	assert_int_equal(pcp_parse_map_udp(&g, b, 1104, nonce, 40000), -1);
	/* a request (R bit clear) is not an answer */
	b[1] = 1;
	assert_int_equal(pcp_parse_map_udp(&g, b, n, nonce, 40000), -1);
	b[1] = 0x81;
	/* TCP */
	b[36] = 6;
	assert_int_equal(pcp_parse_map_udp(&g, b, n, nonce, 40000), -1);
	b[36] = 17;
	/* an IPv6 external address for our IPv4 request */
	b[54] = 0;
	assert_int_equal(pcp_parse_map_udp(&g, b, n, nonce, 40000), -1);
	/* an error (2 = NOT_AUTHORIZED): an answer, with its result */
	n = pcp_response(b, 2, 0, "0.0.0.0");
	assert_int_equal(pcp_parse_map_udp(&g, b, n, nonce, 40000), 0);
	assert_int_equal(g.result, 2);
	/* success with no port */
	n = pcp_response(b, 0, 0, "203.0.113.9");
	assert_int_equal(pcp_parse_map_udp(&g, b, n, nonce, 40000), -1);
	/* a NAT-PMP gateway's "unsupported version" (RFC 6887 9) */
	{
		uint8_t v0[] = { 0, 129, 0, 1, 0, 0, 0, 9 };
		assert_int_equal(pcp_parse_map_udp(&g, v0, sizeof(v0), nonce, 40000), -1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_natpmp_requests),
		cmocka_unit_test(test_natpmp_external),
		cmocka_unit_test(test_natpmp_map),
		cmocka_unit_test(test_pcp_request),
		cmocka_unit_test(test_pcp_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
