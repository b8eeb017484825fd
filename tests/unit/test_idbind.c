/*
 * Unit tests for src/idbind.c (the id -> key table: binding, TTL, release,
 * growth) and the two line formats the server and the client read from
 * files: id_bindings (idbind.h) and known_servers (known_servers.h).
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "idbind.h"
#include "identity.h"
#include "known_servers.h"

static void fill(uint8_t fp[PUNCH_KEY_FP_LEN], uint8_t v)
{
	memset(fp, v, PUNCH_KEY_FP_LEN);
}

static void test_bind_check_release(void **state)
{
	struct idbind *t = idbind_new(100, 10);
	uint8_t a[PUNCH_KEY_FP_LEN], b[PUNCH_KEY_FP_LEN];

	(void)state;
	assert_non_null(t);
	fill(a, 0xA);
	fill(b, 0xB);
	assert_int_equal(idbind_check(t, "alice", b, 1000), IDBIND_OK);
	assert_int_equal(idbind_touch(t, "alice", a, 1000), IDBIND_OK);
	assert_true(idbind_dirty(t));
	idbind_clean(t);
	assert_int_equal(idbind_check(t, "alice", a, 1050), IDBIND_OK);
	assert_int_equal(idbind_check(t, "alice", b, 1050), IDBIND_OTHER);
	assert_int_equal(idbind_touch(t, "alice", b, 1050), IDBIND_OTHER);
	/* a refresh soon after is not worth a save */
	assert_int_equal(idbind_touch(t, "alice", a, 1060), IDBIND_OK);
	assert_false(idbind_dirty(t));
	/* the TTL runs from the last use: 1060 + 100 */
	assert_int_equal(idbind_check(t, "alice", b, 1160), IDBIND_OTHER);
	assert_int_equal(idbind_check(t, "alice", b, 1161), IDBIND_OK);
	/* release: only the holder */
	assert_int_equal(idbind_release(t, "alice", b), IDBIND_OTHER);
	assert_int_equal(idbind_release(t, "alice", a), IDBIND_OK);
	assert_int_equal(idbind_release(t, "alice", a), IDBIND_UNBOUND);
	assert_int_equal(idbind_touch(t, "alice", b, 1200), IDBIND_OK);
	assert_size(idbind_count(t), 1);
	idbind_free(t);
}

static void test_expiry_and_takeover(void **state)
{
	struct idbind *t = idbind_new(100, 10);
	uint8_t a[PUNCH_KEY_FP_LEN], b[PUNCH_KEY_FP_LEN];

	(void)state;
	fill(a, 0xA);
	fill(b, 0xB);
	assert_int_equal(idbind_touch(t, "x", a, 0), IDBIND_OK);
	assert_int_equal(idbind_touch(t, "y", a, 50), IDBIND_OK);
	/* an expired binding is taken over without waiting for the sweep */
	assert_int_equal(idbind_touch(t, "x", b, 101), IDBIND_OK);
	assert_int_equal(idbind_check(t, "x", a, 101), IDBIND_OTHER);
	idbind_clean(t);
	assert_size(idbind_expire(t, 151), 1); /* y */
	assert_true(idbind_dirty(t));
	assert_size(idbind_count(t), 1);
	idbind_free(t);
}

static void test_capacity_and_growth(void **state)
{
	enum { N = 5000 };
	struct idbind *t = idbind_new(1000, N);
	uint8_t a[PUNCH_KEY_FP_LEN], b[PUNCH_KEY_FP_LEN];
	char id[32];

	(void)state;
	fill(a, 0xA);
	fill(b, 0xB);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		assert_int_equal(idbind_touch(t, id, a, 10), IDBIND_OK);
	}
	assert_int_equal(idbind_touch(t, "one-more", a, 10), IDBIND_FULL);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "id%d", i);
		assert_int_equal(idbind_check(t, id, b, 20), IDBIND_OTHER);
	}
	assert_size(idbind_count(t), N);
	idbind_free(t);
}

struct collect {
	size_t n;
	char text[4096];
	size_t len;
};

static void collect_one(void *ctx, const char *id,
                        const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t last_s)
{
	struct collect *c = ctx;
	int n = idbind_format_line(c->text + c->len, sizeof(c->text) - c->len,
	                           id, fp, last_s);

	assert_true(n > 0);
	c->len += (size_t)n;
	c->n++;
}

/* Format every binding, parse the lines into a new table, and compare. */
static void test_file_round_trip(void **state)
{
	struct idbind *t = idbind_new(100, 10), *u = idbind_new(100, 10);
	uint8_t a[PUNCH_KEY_FP_LEN], fp[PUNCH_KEY_FP_LEN];
	char id[PUNCH_ID_MAX + 1];
	struct collect c = { 0 };
	uint64_t last;

	(void)state;
	fill(a, 0xA);
	assert_int_equal(idbind_touch(t, "alice", a, 1764000000), IDBIND_OK);
	assert_int_equal(idbind_touch(t, "h#sh", a, 1764000001), IDBIND_OK);
	assert_int_equal(idbind_touch(t, "アリス", a, 1764000002), IDBIND_OK);
	idbind_foreach(t, collect_one, &c);
	assert_size(c.n, 3);
	for (char *line = c.text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
		assert_int_equal(idbind_parse_line(line, (size_t)(nl - line), id,
		                                   fp, &last),
		                 1);
		assert_int_equal(idbind_load(u, id, fp, last), IDBIND_OK);
	}
	assert_size(idbind_count(u), 3);
	/* an id with a '#' comes back: the id is the last field */
	assert_int_equal(idbind_check(u, "h#sh", a, 1764000010), IDBIND_OK);
	fill(fp, 0xB);
	assert_int_equal(idbind_check(u, "h#sh", fp, 1764000010), IDBIND_OTHER);
	assert_int_equal(idbind_check(u, "アリス", fp, 1764000010), IDBIND_OTHER);
	idbind_free(t);
	idbind_free(u);
}

static int parse(const char *s, char *id, uint64_t *last)
{
	uint8_t fp[PUNCH_KEY_FP_LEN];

	return idbind_parse_line(s, strlen(s), id, fp, last);
}

static void test_bindings_lines(void **state)
{
	static const char fp[] = "SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
	static const char *bad[] = {
		"SHA256:short 1 alice",
		"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
		"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 1",
		"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 x alice",
		"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 -1 alice",
		"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 99999999999999999999999 alice",
		"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 1 alice extra",
		"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 1 alice ",
		"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 1 \001bell",
	};
	char id[PUNCH_ID_MAX + 1], line[256];
	uint64_t last = 0;

	(void)state;
	assert_int_equal(parse("", id, &last), 0);
	assert_int_equal(parse("   ", id, &last), 0);
	assert_int_equal(parse("# comment", id, &last), 0);
	snprintf(line, sizeof(line), "%s 18446744073709551615 bob\r", fp);
	assert_int_equal(parse(line, id, &last), 1);
	assert_string_equal(id, "bob");
	assert_true(last == UINT64_MAX);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], id, &last), -1);
	/* a 65-byte id */
	snprintf(line, sizeof(line), "%s 1 %065d", fp, 0);
	assert_int_equal(parse(line, id, &last), -1);
	/* formatting into too small a buffer fails cleanly */
	{
		uint8_t f[PUNCH_KEY_FP_LEN];

		fill(f, 1);
		assert_int_equal(idbind_format_line(line, 20, "bob", f, 1), -1);
	}
}

static void test_known_servers_lines(void **state)
{
	static const char fp[] = "SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
	char name[KNOWN_SERVER_NAME_MAX + 1], line[512];
	uint8_t f[32];

	(void)state;
	assert_int_equal(known_servers_parse_line("", 0, name, f), 0);
	assert_int_equal(known_servers_parse_line("# x", 3, name, f), 0);
	snprintf(line, sizeof(line), "[2001:db8::1]:3478 %s", fp);
	assert_int_equal(known_servers_parse_line(line, strlen(line), name, f), 1);
	assert_string_equal(name, "[2001:db8::1]:3478");
	assert_int_equal(f[31], 31);
	snprintf(line, sizeof(line), "\tstun.example:3478\t%s  \r", fp);
	assert_int_equal(known_servers_parse_line(line, strlen(line), name, f), 1);
	assert_string_equal(name, "stun.example:3478");
	assert_int_equal(known_servers_parse_line("a:1", 3, name, f), -1);
	assert_int_equal(known_servers_parse_line("a:1 SHA256:xx", 13, name, f), -1);
	snprintf(line, sizeof(line), "a:1 %s more", fp);
	assert_int_equal(known_servers_parse_line(line, strlen(line), name, f), -1);
	snprintf(line, sizeof(line), "a\x7f:1 %s", fp);
	assert_int_equal(known_servers_parse_line(line, strlen(line), name, f), -1);
	memset(line, 'x', 300);
	snprintf(line + 300, sizeof(line) - 300, " %s", fp);
	assert_int_equal(known_servers_parse_line(line, strlen(line), name, f), -1);
}

/* The file: first line for the server wins; a malformed line that names
 * it is reported with its number; add appends. */
static void test_known_servers_file(void **state)
{
	char dir[] = "/tmp/punch-known-XXXXXX", path[128];
	uint8_t f[32], g[32];
	int line = 0;
	FILE *fh;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(known_servers_check(dir, "h:1", f, &line), KNOWN_SERVER_NONE);
	memset(g, 7, sizeof(g));
	assert_int_equal(known_servers_add(dir, "h:1", g), 0);
	assert_int_equal(known_servers_check(dir, "h:1", f, &line), KNOWN_SERVER_FOUND);
	assert_int_equal(line, 1);
	assert_memory_equal(f, g, 32);
	assert_int_equal(known_servers_check(dir, "h:2", f, &line), KNOWN_SERVER_NONE);
	known_servers_path(dir, path, sizeof(path));
	fh = fopen(path, "a");
	assert_non_null(fh);
	fputs("# a comment\nh:2 SHA256:broken\n", fh);
	fclose(fh);
	assert_int_equal(known_servers_check(dir, "h:2", f, &line), KNOWN_SERVER_BAD);
	assert_int_equal(line, 3);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bind_check_release),
		cmocka_unit_test(test_expiry_and_takeover),
		cmocka_unit_test(test_capacity_and_growth),
		cmocka_unit_test(test_file_round_trip),
		cmocka_unit_test(test_bindings_lines),
		cmocka_unit_test(test_known_servers_lines),
		cmocka_unit_test(test_known_servers_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
