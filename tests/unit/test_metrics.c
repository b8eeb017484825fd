/*
 * metrics.c: the ERROR-CODE reader on good, cut and lying messages, the
 * counting by method and result, and the text: every sample after its
 * family's TYPE line, names punch_*, the relay's metrics only with the
 * relay on.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "metrics.h"
#include "punch_attr.h"

static const uint8_t txid[12] = "metrics-test";

/* An error response with ERROR-CODE code, as the server writes one. */
static size_t error_response(uint8_t *buf, size_t cap, int method, int code)
{
	struct stun_writer w;
	int n;

	stun_writer_init(&w, buf, cap, (uint16_t)method, STUN_ERROR, txid);
	stun_put_bytes(&w, 0x8022, "punch", 5); /* SOFTWARE: an attribute
	                                          * before, padded */
	stun_put_error(&w, (uint16_t)code, "reason");
	stun_put_fingerprint(&w);
	n = stun_writer_finish(&w);
	assert_true(n > 0);
	return (size_t)n;
}

static void test_error_code(void **state)
{
	static const int codes[] = { 300, 400, 401, 403, 420, 438, 486, 508, 699 };
	uint8_t buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		size_t len = error_response(buf, sizeof(buf), STUN_ALLOCATE,
		                            codes[i]);

		assert_int_equal(metrics_error_code(buf, len), codes[i]);
		/* every cut of it: the header's length is past the end */
		for (size_t cut = 0; cut < len; cut++)
			assert_int_equal(metrics_error_code(buf, cut), 0);
	}
}

static void test_error_code_lies(void **state)
{
	uint8_t buf[256];
	size_t len = error_response(buf, sizeof(buf), STUN_BINDING, 400);
	uint8_t copy[256];

	(void)state;
	assert_int_equal(metrics_error_code(NULL, 0), 0);
	/* a success response has none */
	{
		struct stun_writer w;
		int n;

		stun_writer_init(&w, copy, sizeof(copy), STUN_BINDING,
		                 STUN_SUCCESS, txid);
		n = stun_writer_finish(&w);
		assert_int_equal(metrics_error_code(copy, (size_t)n), 0);
	}
	/* not STUN: the first two bits set */
	memcpy(copy, buf, len);
	copy[0] |= 0x40;
	assert_int_equal(metrics_error_code(copy, len), 0);
	/* a message length not a multiple of 4 */
	memcpy(copy, buf, len);
	copy[3] |= 1;
	assert_int_equal(metrics_error_code(copy, len), 0);
	/* every attribute length byte set to 0xFF in turn: never read past
	 * the message (ASan would tell) */
	for (size_t off = 20; off + 4 <= len; off += 4) {
		memcpy(copy, buf, len);
		copy[off + 2] = 0xFF;
		copy[off + 3] = 0xFF;
		metrics_error_code(copy, len);
	}
	/* an ERROR-CODE of 2 bytes, a class of 2, a number of 100 */
	memcpy(copy, buf, len);
	for (size_t off = 20; off + 8 <= len; off += 4) {
		if (copy[off] == 0x00 && copy[off + 1] == 0x09) {
			copy[off + 3] = 2;
			assert_int_equal(metrics_error_code(copy, len), 0);
			copy[off + 3] = buf[off + 3];
			copy[off + 6] = 2;
			assert_int_equal(metrics_error_code(copy, len), 0);
			copy[off + 6] = buf[off + 6];
			copy[off + 7] = 100;
			assert_int_equal(metrics_error_code(copy, len), 0);
			copy[off + 7] = buf[off + 7];
			assert_int_equal(metrics_error_code(copy, len), 400);
		}
	}
	/* random bytes, with a plausible header */
	srand(11);
	for (int round = 0; round < 20000; round++) {
		size_t n = 20 + (size_t)(rand() % 80);

		for (size_t i = 0; i < n; i++)
			copy[i] = (uint8_t)rand();
		copy[0] &= 0x3F;
		copy[2] = 0;
		copy[3] = (uint8_t)((n - 20) & ~3u);
		int code = metrics_error_code(copy, n);

		assert_true(code == 0 || (code >= 300 && code <= 699));
	}
}

static void test_count(void **state)
{
	struct metrics_requests r = { 0 };
	uint8_t buf[256];
	size_t len;

	(void)state;
	metrics_count_reply(&r, STUN_BINDING, NULL, 0, 0);
	metrics_count_reply(&r, STUN_BINDING, NULL, 0, 0);
	len = error_response(buf, sizeof(buf), PUNCH_REGISTER, 438);
	metrics_count_reply(&r, PUNCH_REGISTER, buf, len, 1);
	len = error_response(buf, sizeof(buf), STUN_ALLOCATE, 599);
	metrics_count_reply(&r, STUN_ALLOCATE, buf, len, 1);
	metrics_count_reply(&r, 0x0FF, buf, 3, 1); /* unreadable error */
	assert_u64(r.n[METRICS_BINDING][METRICS_OK], 2);
	assert_u64(r.n[METRICS_REGISTER][METRICS_438], 1);
	assert_u64(r.n[METRICS_ALLOCATE][METRICS_OTHER_ERROR], 1);
	assert_u64(r.n[METRICS_OTHER][METRICS_OTHER_ERROR], 1);
}

/* Every sample's metric has had its TYPE line; every name is punch_*;
 * no line is empty.  Returns the number of samples. */
static int check_text(const char *text, size_t len)
{
	char typed[64][96];
	int n_typed = 0, samples = 0;
	const char *p = text;

	assert_size(strlen(text), len);
	assert_true(len > 0 && text[len - 1] == '\n');
	while (*p) {
		const char *nl = strchr(p, '\n');
		char line[512], name[96];
		size_t l = (size_t)(nl - p);

		assert_true(nl && l > 0 && l < sizeof(line));
		memcpy(line, p, l);
		line[l] = '\0';
		p = nl + 1;
		if (!strncmp(line, "# HELP ", 7))
			continue;
		if (sscanf(line, "# TYPE %95s", name) == 1) {
			assert_true(!strncmp(name, "punch_", 6));
			assert_true(strstr(line, " counter") ||
			            strstr(line, " gauge"));
			assert_true(n_typed < 64);
			snprintf(typed[n_typed++], sizeof(typed[0]), "%s", name);
			continue;
		}
		assert_true(sscanf(line, "%95[a-z_]", name) == 1);
		assert_true(n_typed > 0);
		if (strcmp(name, typed[n_typed - 1])) {
			print_error("sample '%s' is not of the last TYPE '%s'\n",
			            line, typed[n_typed - 1]);
			fail();
		}
		samples++;
	}
	return samples;
}

static void test_format(void **state)
{
	struct metrics_requests r = { 0 };
	struct rdv_stats rs = { 0 };
	struct turn_stats ts = { 0 };
	struct metrics_snapshot s = {
		.requests = &r, .rdv = &rs, .malformed = 7, .registrations = 3, .uptime_s = 42, .version = "9.8.7"
	};
	size_t len;
	char *text;
	int without;

	(void)state;
	r.n[METRICS_REGISTER][METRICS_401] = 5;
	rs.retransmitted = 6;
	rs.refused[RDV_REFUSED_FULL] = 2;
	text = metrics_format(&s, &len);
	assert_non_null(text);
	without = check_text(text, len);
	assert_non_null(strstr(text, "\npunch_build_info{version=\"9.8.7\"} 1\n"));
	assert_non_null(strstr(text, "\npunch_uptime_seconds 42\n"));
	assert_non_null(strstr(text, "\npunch_registrations 3\n"));
	assert_non_null(strstr(text, "\npunch_malformed_packets_total{service=\"stun\"} 7\n"));
	assert_non_null(strstr(text, "\npunch_requests_total{method=\"register\",result=\"401\"} 5\n"));
	assert_non_null(strstr(text, "\npunch_requests_total{method=\"binding\",result=\"ok\"} 0\n"));
	assert_non_null(strstr(text, "\npunch_peer_info_retransmissions_total 6\n"));
	assert_non_null(strstr(text, "\npunch_register_refusals_total{reason=\"full\"} 2\n"));
	assert_null(strstr(text, "punch_relay_"));
	assert_null(strstr(text, "method=\"allocate\",result=\"ok\""));
	free(text);

	ts.bytes_out = 1000;
	ts.relayed_in = 4;
	s.turn = &ts;
	s.allocations = 2;
	text = metrics_format(&s, &len);
	assert_non_null(text);
	assert_true(check_text(text, len) > without);
	assert_non_null(strstr(text, "\npunch_relay_allocations 2\n"));
	assert_non_null(strstr(text, "\npunch_relay_bytes_total{direction=\"to_peer\"} 1000\n"));
	assert_non_null(strstr(text, "\npunch_relay_packets_total{direction=\"to_client\"} 4\n"));
	assert_non_null(strstr(text, "method=\"allocate\",result=\"ok\"} 0\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_code),
		cmocka_unit_test(test_error_code_lies),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
