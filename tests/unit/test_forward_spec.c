/*
 * Unit tests for punch forward's parsers (src/forward_spec.c): -L, -allow,
 * the peer's stream request, and the -allow match.
 */
#include "unit.h"

#include <stdio.h>

#include "forward_spec.h"

static void test_spec(void **state)
{
	struct forward_spec s;
	char why[256];

	(void)state;
	assert_int_equal(forward_spec_parse("2222:127.0.0.1:22", &s, why, sizeof(why)), 0);
	assert_int_equal(s.lport, 2222);
	assert_string_equal(s.host, "127.0.0.1");
	assert_int_equal(s.port, 22);
	assert_int_equal(forward_spec_parse("0:[::1]:8080", &s, why, sizeof(why)), 0);
	assert_int_equal(s.lport, 0);
	assert_string_equal(s.host, "::1");
	assert_int_equal(forward_spec_parse("1:example.com:0", &s, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "PORT must be a number 1-65535"));
	assert_int_equal(forward_spec_parse("70000:a:1", &s, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "LPORT must be"));
	assert_int_equal(forward_spec_parse("1:a b:2", &s, why, sizeof(why)), -1);
	assert_int_equal(forward_spec_parse("1:2", &s, why, sizeof(why)), -1);
	assert_int_equal(forward_spec_parse("1::2", &s, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "-L wants LPORT:HOST:PORT"));
}

static void test_allow(void **state)
{
	struct forward_target t;
	char why[256], big[400];

	(void)state;
	assert_int_equal(forward_allow_parse("127.0.0.1:7000", &t, why, sizeof(why)), 0);
	assert_string_equal(t.host, "127.0.0.1");
	assert_int_equal(t.port, 7000);
	assert_int_equal(forward_allow_parse("[fe80::1]:22", &t, why, sizeof(why)), 0);
	assert_string_equal(t.host, "fe80::1");
	/* Without brackets, an IPv6 literal's last group would pass for a port. */
	assert_int_equal(forward_allow_parse("::1:22", &t, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "-allow wants HOST:PORT"));
	assert_int_equal(forward_allow_parse("host", &t, why, sizeof(why)), -1);
	assert_int_equal(forward_allow_parse("host:0", &t, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "PORT must be a number 1-65535"));
	assert_int_equal(forward_allow_parse(":22", &t, why, sizeof(why)), -1);
	memset(big, 'a', sizeof(big));
	snprintf(big + 254, sizeof(big) - 254, ":1");
	assert_int_equal(forward_allow_parse(big, &t, why, sizeof(why)), -1);
	big[253] = ':';
	big[254] = '1';
	big[255] = '\0';
	assert_int_equal(forward_allow_parse(big, &t, why, sizeof(why)), 0);
}

static void test_request(void **state)
{
	struct forward_target t;
	static const char ok[] = "127.0.0.1 7000trailing";

	(void)state;
	/* Only n bytes are read: no NUL needed. */
	assert_int_equal(forward_request_parse(ok, 14, &t), 0);
	assert_string_equal(t.host, "127.0.0.1");
	assert_int_equal(t.port, 7000);
	assert_int_equal(forward_request_parse("::1 22", 6, &t), 0);
	assert_string_equal(t.host, "::1");
	assert_int_equal(forward_request_parse(ok, sizeof(ok) - 1, &t), -1);
	assert_int_equal(forward_request_parse(" 22", 3, &t), -1);
	assert_int_equal(forward_request_parse("a 65536", 7, &t), -1);
	assert_int_equal(forward_request_parse("a  1", 4, &t), -1);
	assert_int_equal(forward_request_parse("a\x1b 1", 4, &t), -1);
	assert_int_equal(forward_request_parse("a", 1, &t), -1);
	/* A NUL inside the host must not cut it short. */
	assert_int_equal(forward_request_parse("h\0x 1", 5, &t), -1);
	assert_int_equal(forward_request_parse("", 0, &t), -1);
}

static void test_allowed(void **state)
{
	struct forward_target allow[2], t;
	char why[64];

	(void)state;
	assert_int_equal(forward_allow_parse("127.0.0.1:7000", &allow[0], why, sizeof(why)), 0);
	assert_int_equal(forward_allow_parse("DB.example:5432", &allow[1], why, sizeof(why)), 0);
	assert_int_equal(forward_request_parse("127.0.0.1 7000", 14, &t), 0);
	assert_int_equal(forward_allowed(allow, 2, &t), 1);
	assert_int_equal(forward_allowed(allow, 0, &t), 0);
	assert_int_equal(forward_request_parse("127.0.0.1 7001", 14, &t), 0);
	assert_int_equal(forward_allowed(allow, 2, &t), 0);
	/* Names are compared as written, ignoring case; never resolved. */
	assert_int_equal(forward_request_parse("db.EXAMPLE 5432", 15, &t), 0);
	assert_int_equal(forward_allowed(allow, 2, &t), 1);
	assert_int_equal(forward_request_parse("localhost 7000", 14, &t), 0);
	assert_int_equal(forward_allowed(allow, 2, &t), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec),
		cmocka_unit_test(test_allow),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_allowed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
