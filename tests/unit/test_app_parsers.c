/*
 * The parsers that read what a peer sends, or a file: the stream's first
 * line (app_header_feed), the file request and its name (recv_parse_header,
 * file_name_decode, file_name_check), key fingerprints (identity_fp_parse)
 * and the known_peers reader (known_peers_check).  Hostile names are tested here, on the parser,
 * rather than by a sender that could be told to send them.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "app.h"
#include "app_file.h"
#include "identity.h"

/* ---- app_header_feed ---------------------------------------------------------- */

/* Feed s in chunks of `step` bytes; the last return value. */
static long feed(struct app_header *h, const char *s, size_t step)
{
	size_t len = strlen(s), off = 0;
	long rc = 0, used;

	memset(h, 0, sizeof(*h));
	while (off < len) {
		size_t n = len - off < step ? len - off : step;

		used = app_header_feed(h, (const uint8_t *)s + off, n);
		if (used < 0)
			return -1;
		rc = used;
		off += (size_t)used;
		if (h->done)
			break;
	}
	return rc;
}

static void header_good(void **state)
{
	struct app_header h;

	(void)state;
	for (size_t step = 1; step <= 32; step *= 2) {
		assert_true(feed(&h, "punch/1 file a%20b 12\ntrailing", step) > 0);
		assert_true(h.done);
		assert_string_equal(h.name, "file");
		assert_string_equal(h.rest, "a%20b 12");
		assert_true(feed(&h, "punch/1 chat\n", step) > 0);
		assert_string_equal(h.name, "chat");
		assert_string_equal(h.rest, "");
	}
	/* The bytes after the newline are not taken. */
	assert_int_equal(feed(&h, "punch/1 pipe\nDATA", 64), 13);
}

static void header_bad(void **state)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\n",
		"punch/2 chat\n",
		"PUNCH/1 chat\n",
		"punch/1\n",
		"punch/1 \n",          /* no name */
		"punch/1  chat\n",     /* an empty name, then "chat" */
	};
	struct app_header h;
	char longline[APP_HEADER_MAX + 16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(feed(&h, bad[i], 64), -1);
	/* A NUL inside the line would cut the name or REST short. */
	memset(&h, 0, sizeof(h));
	assert_int_equal(app_header_feed(&h, (const uint8_t *)"punch/1 ch\0t\n", 13), -1);
	memset(&h, 0, sizeof(h));
	assert_int_equal(app_header_feed(&h, (const uint8_t *)"punch/1 file\0 x 1\n", 18), -1);
	/* A line that does not fit is refused, however it comes. */
	memset(longline, 'a', sizeof(longline));
	memcpy(longline, "punch/1 file ", 13);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(feed(&h, longline, 64), -1);
	assert_int_equal(feed(&h, longline, 1), -1);
}

/* ---- names ----------------------------------------------------------------- */

static void name_check(void **state)
{
	static const struct {
		const char *name;
		size_t len;
		int ok;
	} cases[] = {
		{ "report v2.txt", 13, 1 },
		{ "caf\xc3\xa9", 5, 1 },      /* UTF-8 passes */
		{ "a..b", 4, 1 },
		{ "", 0, 0 },
		{ ".", 1, 0 },
		{ "..", 2, 0 },
		{ "../x", 4, 0 },
		{ ".hidden", 7, 0 },
		{ "a/b", 3, 0 },
		{ "/etc/passwd", 11, 0 },     /* absolute */
		{ "a\\b", 3, 0 },
		{ "..\\x", 4, 0 },
		{ "a\nb", 3, 0 },
		{ "a\x1b[2Jb", 7, 0 },        /* a terminal escape */
		{ "a\x7f", 2, 0 },
		{ "a\0b", 3, 0 },             /* a NUL cuts the name short */
	};
	char longname[FILE_NAME_MAX + 2];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = file_name_check(cases[i].name, cases[i].len);

		if ((why == NULL) != cases[i].ok)
			fail_msg("file_name_check(\"%s\"): expected %s, saw %s",
			         cases[i].name, cases[i].ok ? "accepted" : "refused",
			         why ? why : "accepted");
	}
	memset(longname, 'a', sizeof(longname));
	assert_null(file_name_check(longname, FILE_NAME_MAX));
	assert_non_null(file_name_check(longname, FILE_NAME_MAX + 1));
}

static void name_decode(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(file_name_decode("a%20b", out, sizeof(out)), 3);
	assert_string_equal(out, "a b");
	assert_int_equal(file_name_decode("%2e%2E%2F", out, sizeof(out)), 3);
	assert_string_equal(out, "../");
	assert_int_equal(file_name_decode("a%00b", out, sizeof(out)), 3);
	assert_int_equal(out[1], '\0');
	/* Malformed escapes, raw spaces and control bytes. */
	assert_int_equal(file_name_decode("a%", out, sizeof(out)), -1);
	assert_int_equal(file_name_decode("a%4", out, sizeof(out)), -1);
	assert_int_equal(file_name_decode("a%g0", out, sizeof(out)), -1);
	assert_int_equal(file_name_decode("a b", out, sizeof(out)), -1);
	assert_int_equal(file_name_decode("a\tb", out, sizeof(out)), -1);
	/* No room: refused, never written past out. */
	assert_int_equal(file_name_decode("0123456789abcdef", out, sizeof(out)), -1);
	assert_int_equal(file_name_decode("0123456789abcde", out, sizeof(out)), 15);
}

static void name_round_trip(void **state)
{
	const char name[] = "50% off\x01 \xc3\xa9";
	char wire[64], back[64];
	int n;

	(void)state;
	n = file_name_encode(name, sizeof(name) - 1, wire, sizeof(wire));
	assert_true(n > 0);
	assert_null(strchr(wire, ' '));
	assert_int_equal(file_name_decode(wire, back, sizeof(back)), (int)sizeof(name) - 1);
	assert_memory_equal(back, name, sizeof(name) - 1);
}

/* ---- the file request -------------------------------------------------------- */

/* recv_parse_header(rest): the reason ("header", "name") or "ok". */
static const char *request(const char *rest, char name[FILE_NAME_MAX + 1],
                           uint64_t *size)
{
	char why[2048];
	const char *bad = recv_parse_header(rest, name, size, why, sizeof(why));

	return bad ? bad : "ok";
}

static void request_good(void **state)
{
	char name[FILE_NAME_MAX + 1];
	uint64_t size = 1;

	(void)state;
	assert_string_equal(request("report%20v2.txt 100000", name, &size), "ok");
	assert_string_equal(name, "report v2.txt");
	assert_true(size == 100000);
	assert_string_equal(request("empty 0", name, &size), "ok");
	assert_true(size == 0);
	assert_string_equal(request("big 9223372036854775807", name, &size), "ok");
	assert_true(size == INT64_MAX);
}

static void request_hostile(void **state)
{
	static const struct {
		const char *rest, *want;
	} cases[] = {
		{ "../escape 5", "name" },
		{ "%2E%2E%2Fescape 5", "name" },    /* the same, encoded */
		{ "a/b 5", "name" },
		{ "%2Fetc%2Fpasswd 5", "name" },    /* absolute */
		{ ".hidden 5", "name" },
		{ "a%0Ab 5", "name" },              /* a newline */
		{ "a%1B%5B2J 5", "name" },          /* a terminal escape */
		{ "a%00b 5", "name" },              /* a NUL */
		{ "a%5Cb 5", "name" },              /* a backslash */
		{ "a%zz 5", "name" },               /* a malformed escape */
		{ " 5", "name" },                   /* empty */
		{ "x", "header" },                  /* no size */
		{ "x ", "header" },
		{ "x -1", "header" },
		{ "x +1", "header" },
		{ "x 1 2", "header" },
		{ "x 1x", "header" },
		{ "x 9223372036854775808", "header" }, /* over INT64_MAX */
		{ "x 99999999999999999999999", "header" },
		{ "", "header" }
	};
	char name[FILE_NAME_MAX + 1];
	uint64_t size;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *seen = request(cases[i].rest, name, &size);

		if (strcmp(seen, cases[i].want))
			fail_msg("recv_parse_header(\"%s\"): expected %s, saw %s",
			         cases[i].rest, cases[i].want, seen);
	}
}

/* A decoded name over 255 bytes is refused as too long, not as badly
 * encoded; one of 255 is taken. */
static void request_long_name(void **state)
{
	char rest[FILE_WIRE_NAME_MAX + 16], name[FILE_NAME_MAX + 1];
	char why[2048];
	uint64_t size;

	(void)state;
	memset(rest, 'a', FILE_NAME_MAX);
	snprintf(rest + FILE_NAME_MAX, sizeof(rest) - FILE_NAME_MAX, " 1");
	assert_null(recv_parse_header(rest, name, &size, why, sizeof(why)));
	assert_int_equal(strlen(name), FILE_NAME_MAX);
	memset(rest, 'a', FILE_NAME_MAX + 1);
	snprintf(rest + FILE_NAME_MAX + 1, sizeof(rest) - FILE_NAME_MAX - 1, " 1");
	assert_string_equal(recv_parse_header(rest, name, &size, why, sizeof(why)), "name");
	if (!strstr(why, "longer than 255 bytes"))
		fail_msg("a 256-byte name: expected 'longer than 255 bytes', saw '%s'", why);
	/* Longer than the wire allows at all. */
	memset(rest, 'a', FILE_WIRE_NAME_MAX + 1);
	snprintf(rest + FILE_WIRE_NAME_MAX + 1, sizeof(rest) - FILE_WIRE_NAME_MAX - 1, " 1");
	assert_string_equal(recv_parse_header(rest, name, &size, why, sizeof(why)), "header");
}

/* ---- fingerprints -------------------------------------------------------------- */

static void fp_parse(void **state)
{
	uint8_t fp[IDENTITY_FP_LEN], back[IDENTITY_FP_LEN];
	char s[IDENTITY_FP_STRLEN], t[IDENTITY_FP_STRLEN + 8];

	(void)state;
	for (int i = 0; i < IDENTITY_FP_LEN; i++)
		fp[i] = (uint8_t)(i * 37 + 5);
	identity_fp_str(fp, s);
	assert_int_equal(identity_fp_parse(s, back), 0);
	assert_memory_equal(fp, back, sizeof(fp));
	assert_int_equal(identity_fp_parse(s + 7, back), 0);  /* bare base64 */
	/* Truncated, too long, padded, a bad character, leftover bits set. */
	snprintf(t, sizeof(t), "%.49s", s);
	assert_int_equal(identity_fp_parse(t, back), -1);
	snprintf(t, sizeof(t), "%sA", s);
	assert_int_equal(identity_fp_parse(t, back), -1);
	snprintf(t, sizeof(t), "%s=", s);
	assert_int_equal(identity_fp_parse(t, back), -1);
	snprintf(t, sizeof(t), "%s", s);
	t[10] = '*';
	assert_int_equal(identity_fp_parse(t, back), -1);
	snprintf(t, sizeof(t), "%s", s);
	t[49] = t[49] == 'B' ? 'C' : 'B';  /* the last character's low bits */
	assert_int_equal(identity_fp_parse(t, back), -1);
	assert_int_equal(identity_fp_parse("", back), -1);
	assert_int_equal(identity_fp_parse("SHA256:", back), -1);
}

/* ---- the known_peers reader ----------------------------------------------------- */

/* known_peers_check for bob against a file holding text; *line too. */
static int known(const char *text, size_t len, const uint8_t fp[IDENTITY_FP_LEN],
                 int *line)
{
	char dir[64], path[96];
	FILE *f;
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/punch-test-known.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/known_peers", dir);
	if (text) {
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(text, 1, len, f), len);
		fclose(f);
	}
	*line = 0;
	rc = known_peers_check(dir, "bob", fp, line);
	unlink(path);
	rmdir(dir);
	return rc;
}

static void known_peers_reader(void **state)
{
	uint8_t fp[IDENTITY_FP_LEN], other[IDENTITY_FP_LEN];
	char s[IDENTITY_FP_STRLEN], o[IDENTITY_FP_STRLEN], text[512];
	int line, n;

	(void)state;
	memset(fp, 7, sizeof(fp));
	memset(other, 9, sizeof(other));
	identity_fp_str(fp, s);
	identity_fp_str(other, o);
	assert_int_equal(known(NULL, 0, fp, &line), KNOWN_NEW);  /* no file */
	assert_int_equal(known("", 0, fp, &line), KNOWN_NEW);
	/* Comments, other ids (bobby is not bob), then bob: line 4. */
	n = snprintf(text, sizeof(text), "# bob %s\nalice %s\nbobby %s\nbob %s\n",
	             o, o, o, s);
	assert_int_equal(known(text, (size_t)n, fp, &line), KNOWN_MATCH);
	assert_int_equal(line, 4);
	/* CRLF, tabs, no final newline. */
	n = snprintf(text, sizeof(text), "\tbob\t%s\r\n", s);
	assert_int_equal(known(text, (size_t)n, fp, &line), KNOWN_MATCH);
	n = snprintf(text, sizeof(text), "bob %s", s);
	assert_int_equal(known(text, (size_t)n, fp, &line), KNOWN_MATCH);
	/* The first of bob's lines decides. */
	n = snprintf(text, sizeof(text), "bob %s\nbob %s\n", o, s);
	assert_int_equal(known(text, (size_t)n, fp, &line), KNOWN_MISMATCH);
	assert_int_equal(line, 1);
	/* Unreadable fingerprints: where, with the line. */
	n = snprintf(text, sizeof(text), "alice %s\nbob SHA256:nonsense\n", o);
	assert_int_equal(known(text, (size_t)n, fp, &line), KNOWN_ERROR);
	assert_int_equal(line, 2);
	n = snprintf(text, sizeof(text), "bob\n");
	assert_int_equal(known(text, (size_t)n, fp, &line), KNOWN_ERROR);
	/* A NUL inside the fingerprint is not a shorter fingerprint. */
	n = snprintf(text, sizeof(text), "bob %s\n", s);
	text[20] = '\0';
	assert_int_equal(known(text, (size_t)n, fp, &line), KNOWN_ERROR);
	/* A word too long for a fingerprint. */
	memset(text, 'A', sizeof(text));
	memcpy(text, "bob SHA256:", 11);
	assert_int_equal(known(text, sizeof(text), fp, &line), KNOWN_ERROR);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_good),
		cmocka_unit_test(header_bad),
		cmocka_unit_test(name_check),
		cmocka_unit_test(name_decode),
		cmocka_unit_test(name_round_trip),
		cmocka_unit_test(request_good),
		cmocka_unit_test(request_hostile),
		cmocka_unit_test(request_long_name),
		cmocka_unit_test(fp_parse),
		cmocka_unit_test(known_peers_reader),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
