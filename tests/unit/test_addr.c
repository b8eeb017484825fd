/*
 * Unit tests for the socket address helpers (src/addr.c): parsing
 * "HOST:PORT" as users type it, printing, and comparing.
 */
#include "unit.h"

#include <stdio.h>

#include "addr.h"

/* Parse s into an address prefilled from prefill (NULL: AF_UNSPEC) and
 * compare the result, printed, with want (NULL: the parse must fail and
 * leave the address as it was). */
static void expect_parse(const char *s, const char *prefill, uint16_t port,
                         const char *want)
{
	struct sockaddr_storage ss, before;
	char buf[ADDR_STRLEN];
	int rc;

	memset(&ss, 0, sizeof(ss));
	if (prefill)
		ss = sa_make(prefill, port);
	before = ss;
	rc = addr_parse(&ss, s);
	if (!want) {
		if (rc != -1)
			print_error("\"%s\": expected failure, got %s\n", s,
			            addr_str(SA(ss), buf, sizeof(buf)));
		assert_int_equal(rc, -1);
		assert_memory_equal(&ss, &before, sizeof(ss));
		return;
	}
	if (rc != 0)
		print_error("\"%s\": expected %s, parse failed\n", s, want);
	assert_int_equal(rc, 0);
	assert_string_equal(addr_str(SA(ss), buf, sizeof(buf)), want);
}

static void test_parse_full(void **state)
{
	(void)state;
	expect_parse("1.2.3.4:5", NULL, 0, "1.2.3.4:5");
	expect_parse("[::1]:5", NULL, 0, "[::1]:5");
	expect_parse("0.0.0.0:0", NULL, 0, "0.0.0.0:0");
	expect_parse("255.255.255.255:65535", NULL, 0, "255.255.255.255:65535");
	expect_parse("[2001:db8::1]:3478", NULL, 0, "[2001:db8::1]:3478");
	expect_parse("[::ffff:192.0.2.1]:1", NULL, 0, "[::ffff:192.0.2.1]:1");
	/* the family follows the text, not the prefill */
	expect_parse("[::1]:5", "9.9.9.9", 3478, "[::1]:5");
	expect_parse("1.2.3.4:5", "::2", 3478, "1.2.3.4:5");
}

static void test_parse_keeps_port(void **state)
{
	(void)state;
	expect_parse("1.2.3.4", "9.9.9.9", 3478, "1.2.3.4:3478");
	expect_parse("[::1]", "9.9.9.9", 3478, "[::1]:3478");
	/* a bare IPv6 address: more than one colon, so no port */
	expect_parse("::1", "9.9.9.9", 3479, "[::1]:3479");
	expect_parse("2001:db8::1", "::", 7, "[2001:db8::1]:7");
}

static void test_parse_keeps_address(void **state)
{
	(void)state;
	expect_parse(":5", "9.9.9.9", 3478, "9.9.9.9:5");
	expect_parse(":65535", "2001:db8::2", 3478, "[2001:db8::2]:65535");
	/* there must be an address to keep */
	expect_parse(":5", NULL, 0, NULL);
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"1.2.3.4:",
		"1.2.3.4:65536",
		"[::1",
		"[::1]x",
		"host:5",
		"",
		"1.2.3.4:-1",
		"[::1]:",
		"[::1]:x",
		"1.2.3.4:5x",
		"1.2.3.4:x",
		"1.2.3",
		"1.2.3.4.5:6",
		"1.2.3.4:5:6",
		"[1.2.3.4:5",
		"::1:",
		"[]",
		":",
		":99999",
		"[::1]:65536",
		"::g",
		/* a 64-character host: longer than any numeric address */
		("1234567890123456789012345678901234567890"
		 "123456789012345678901234:1"),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_parse(bad[i], NULL, 0, NULL);
		expect_parse(bad[i], "9.9.9.9", 3478, NULL);
	}
	/* NULL is refused, not dereferenced */
	{
		struct sockaddr_storage ss = sa_make("9.9.9.9", 1);

		assert_int_equal(addr_parse(&ss, NULL), -1);
	}
}

static void test_str(void **state)
{
	static const struct {
		const char *ip;
		uint16_t port;
		const char *want;
	} cases[] = {
		{ "192.0.2.1", 32853, "192.0.2.1:32853" },
		{ "0.0.0.0", 0, "0.0.0.0:0" },
		{ "::", 0, "[::]:0" },
		{ "2001:db8:1234:5678:11:2233:4455:6677", 65535,
		  "[2001:db8:1234:5678:11:2233:4455:6677]:65535" },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
		  "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
	};
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[ADDR_STRLEN], want[32], small[8];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;

		ss = sa_make(cases[i].ip, cases[i].port);
		assert_ptr_equal(addr_str(SA(ss), buf, sizeof(buf)), buf);
		assert_string_equal(buf, cases[i].want);
	}
	snprintf(want, sizeof(want), "(family %d)", AF_UNIX);
	assert_string_equal(addr_str((struct sockaddr *)&sun, buf, sizeof(buf)),
	                    want);
	/* a short buffer truncates, terminated */
	{
		struct sockaddr_storage ss = sa_make("192.0.2.1", 32853);

		assert_string_equal(addr_str(SA(ss), small, sizeof(small)),
		                    "192.0.2");
	}
}

static void test_equal(void **state)
{
	struct sockaddr_storage a = sa_make("192.0.2.1", 3478);
	struct sockaddr_storage a2 = sa_make("192.0.2.1", 3478);
	struct sockaddr_storage port = sa_make("192.0.2.1", 3479);
	struct sockaddr_storage ip = sa_make("192.0.2.2", 3478);
	struct sockaddr_storage mapped = sa_make("::ffff:192.0.2.1", 3478);
	struct sockaddr_storage v6 = sa_make("2001:db8::1", 3478);
	struct sockaddr_storage v6b = sa_make("2001:db8::1", 3478);
	struct sockaddr_storage v6ip = sa_make("2001:db8::2", 3478);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	(void)state;
	assert_true(addr_equal(SA(a), SA(a2)));
	assert_true(addr_equal(SA(v6), SA(v6b)));
	assert_false(addr_equal(SA(a), SA(port)));
	assert_false(addr_equal(SA(a), SA(ip)));
	assert_false(addr_equal(SA(a), SA(mapped)));
	assert_false(addr_equal(SA(mapped), SA(a)));
	assert_false(addr_equal(SA(v6), SA(v6ip)));
	assert_false(addr_equal((struct sockaddr *)&sun,
	                        (struct sockaddr *)&sun));
	assert_true(addr_same_ip(SA(a), SA(port)));
	assert_false(addr_same_ip(SA(a), SA(ip)));
	assert_true(addr_same_ip(SA(v6), SA(v6b)));
	assert_false(addr_same_ip(SA(v6), SA(a)));
}

static void test_port_len_any(void **state)
{
	struct sockaddr_storage a = sa_make("192.0.2.1", 3478);
	struct sockaddr_storage v6 = sa_make("2001:db8::1", 3478);
	struct sockaddr_storage any4 = sa_make("0.0.0.0", 1);
	struct sockaddr_storage any6 = sa_make("::", 1);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	(void)state;
	assert_int_equal(addr_port(SA(a)), 3478);
	addr_set_port(SA(a), 65535);
	assert_int_equal(addr_port(SA(a)), 65535);
	addr_set_port(SA(v6), 1);
	assert_int_equal(addr_port(SA(v6)), 1);
	assert_int_equal(addr_port((struct sockaddr *)&sun), 0);
	assert_int_equal(addr_len(SA(a)), sizeof(struct sockaddr_in));
	assert_int_equal(addr_len(SA(v6)), sizeof(struct sockaddr_in6));
	assert_true(addr_is_any(SA(any4)));
	assert_true(addr_is_any(SA(any6)));
	assert_false(addr_is_any(SA(a)));
	assert_false(addr_is_any(SA(v6)));
	assert_false(addr_is_any((struct sockaddr *)&sun));
}

/* Which addresses lead beyond this host and link (addr_classify()). */
static void test_classify(void **state)
{
	static const struct {
		const char *ip;
		enum addr_class want;
	} cases[] = {
		{ "0.0.0.0", ADDR_CLASS_UNSPECIFIED },
		{ "0.1.2.3", ADDR_CLASS_UNSPECIFIED },
		{ "127.0.0.1", ADDR_CLASS_LOOPBACK },
		{ "127.255.255.254", ADDR_CLASS_LOOPBACK },
		{ "169.254.0.1", ADDR_CLASS_LINK_LOCAL },
		{ "169.254.255.255", ADDR_CLASS_LINK_LOCAL },
		{ "224.0.0.1", ADDR_CLASS_MULTICAST },
		{ "239.255.255.250", ADDR_CLASS_MULTICAST },
		{ "255.255.255.255", ADDR_CLASS_MULTICAST },
		{ "1.0.0.0", ADDR_CLASS_ROUTABLE },
		{ "10.0.0.1", ADDR_CLASS_ROUTABLE },
		{ "126.255.255.255", ADDR_CLASS_ROUTABLE },
		{ "128.0.0.0", ADDR_CLASS_ROUTABLE },
		{ "169.253.255.255", ADDR_CLASS_ROUTABLE },
		{ "169.255.0.0", ADDR_CLASS_ROUTABLE },
		{ "192.168.1.1", ADDR_CLASS_ROUTABLE },
		{ "203.0.113.7", ADDR_CLASS_ROUTABLE },
		{ "223.255.255.255", ADDR_CLASS_ROUTABLE },
		{ "::", ADDR_CLASS_UNSPECIFIED },
		{ "::1", ADDR_CLASS_LOOPBACK },
		{ "fe80::1", ADDR_CLASS_LINK_LOCAL },
		{ "febf::1", ADDR_CLASS_LINK_LOCAL },
		{ "ff02::1", ADDR_CLASS_MULTICAST },
		{ "ff0e::1", ADDR_CLASS_MULTICAST },
		{ "::ffff:127.0.0.1", ADDR_CLASS_LOOPBACK },
		{ "::ffff:224.0.0.1", ADDR_CLASS_MULTICAST },
		{ "::ffff:0.0.0.0", ADDR_CLASS_UNSPECIFIED },
		{ "::ffff:169.254.9.9", ADDR_CLASS_LINK_LOCAL },
		{ "::ffff:192.0.2.1", ADDR_CLASS_ROUTABLE },
		{ "::2", ADDR_CLASS_ROUTABLE },
		{ "fec0::1", ADDR_CLASS_ROUTABLE },
		{ "fd00::1", ADDR_CLASS_ROUTABLE },
		{ "2001:db8::1", ADDR_CLASS_ROUTABLE }
	};
	struct sockaddr_un un = { .sun_family = AF_UNIX };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss = sa_make(cases[i].ip, 5000);
		enum addr_class k = addr_classify(SA(ss));

		if (k != cases[i].want)
			print_error("%s: expected %s, saw %s\n", cases[i].ip,
			            addr_class_str(cases[i].want), addr_class_str(k));
		assert_int_equal(k, cases[i].want);
	}
	assert_int_equal(addr_classify((struct sockaddr *)&un), ADDR_CLASS_OTHER);
	assert_string_equal(addr_class_str(ADDR_CLASS_LINK_LOCAL), "link-local");
	assert_string_equal(addr_class_str((enum addr_class)99), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_full),
		cmocka_unit_test(test_parse_keeps_port),
		cmocka_unit_test(test_parse_keeps_address),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_str),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_port_len_any),
		cmocka_unit_test(test_classify),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
