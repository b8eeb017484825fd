/*
 * Unit tests for src/term.c: what text from the network looks like on a
 * terminal.  Every class of dangerous input is escaped, valid UTF-8 passes,
 * and a short buffer never gets half an escape or half a character.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>

#include "term.h"

struct esc_case {
	const char *name;
	const char *in;
	size_t len;       /* 0: strlen(in) */
	const char *want;
};

static void check_cases(const struct esc_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct esc_case *c = &cases[i];
		size_t len = c->len ? c->len : strlen(c->in);
		char out[TERM_ESCAPE_SIZE(64)];
		size_t w;

		assert_true(len <= 64);
		w = term_escape(out, sizeof(out), c->in, len);
		if (strcmp(out, c->want) || w != strlen(out)) {
			print_error("case '%s': expected \"%s\", saw \"%s\" (%zu)\n",
			            c->name, c->want, out, w);
			fail();
		}
	}
}

#define CHECK(cases) check_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void test_plain(void **state)
{
	static const struct esc_case cases[] = {
		{ "empty", "", 0, "" },
		{ "ascii", "hello, world", 0, "hello, world" },
		{ "backslash kept", "a\\x1b", 0, "a\\x1b" },
		{ "printable punctuation", "~!@#$%^&*()[]{}", 0, "~!@#$%^&*()[]{}" },
		{ "two-byte", "caf\xC3\xA9", 0, "caf\xC3\xA9" },
		{ "no-break space U+00A0", "a\xC2\xA0z", 0, "a\xC2\xA0z" },
		{ "three-byte", "\xE6\x97\xA5\xE6\x9C\xAC", 0, "\xE6\x97\xA5\xE6\x9C\xAC" },
		{ "four-byte emoji", "\xF0\x9F\x98\x80", 0, "\xF0\x9F\x98\x80" },
		{ "U+10FFFF", "\xF4\x8F\xBF\xBF", 0, "\xF4\x8F\xBF\xBF" },
		{ "replacement char U+FFFD", "\xEF\xBF\xBD", 0, "\xEF\xBF\xBD" }
	};

	(void)state;
	CHECK(cases);
}

static void test_c0_del(void **state)
{
	static const struct esc_case cases[] = {
		{ "ESC", "\x1b", 0, "\\x1b" },
		{ "BEL", "\a", 0, "\\x07" },
		{ "NUL inside", "a\0b", 3, "a\\x00b" },
		{ "newline", "a\nb", 0, "a\\x0ab" },
		{ "carriage return", "a\rb", 0, "a\\x0db" },
		{ "tab", "a\tb", 0, "a\\x09b" },
		{ "backspace", "a\bb", 0, "a\\x08b" },
		{ "unit separator 0x1f", "\x1f", 0, "\\x1f" },
		{ "DEL", "\x7f", 0, "\\x7f" },
		{ "title sequence", "\x1b]0;pwned\a", 0, "\\x1b]0;pwned\\x07" },
		{ "clear screen", "\x1b[2J", 0, "\\x1b[2J" },
		{ "OSC 52 clipboard", "\x1b]52;c;cm0gLXJm\x1b\\", 0,
		  "\\x1b]52;c;cm0gLXJm\\x1b\\" },
	};

	(void)state;
	CHECK(cases);
}

static void test_c1(void **state)
{
	static const struct esc_case cases[] = {
		{ "U+0085 NEL", "\xC2\x85", 0, "\\u{85}" },
		{ "U+009B CSI", "\xC2\x9B"
		                "2J",
		  0, "\\u{9b}2J" },
		{ "U+0080", "\xC2\x80", 0, "\\u{80}" },
		{ "U+009F", "\xC2\x9F", 0, "\\u{9f}" },
		{ "raw 8-bit CSI 0x9b", "\x9b"
		                        "2J",
		  0, "\\x9b2J" },
		{ "raw 8-bit OSC 0x9d", "\x9d"
		                        "0;x",
		  0, "\\x9d0;x" }
	};

	(void)state;
	CHECK(cases);
}

static void test_bidi_invisible(void **state)
{
	static const struct esc_case cases[] = {
		{ "RLO U+202E", "a\xE2\x80\xAE"
		                "cba",
		  0, "a\\u{202e}cba" },
		{ "LRE U+202A", "\xE2\x80\xAA", 0, "\\u{202a}" },
		{ "PDF U+202C", "\xE2\x80\xAC", 0, "\\u{202c}" },
		{ "LRI U+2066", "\xE2\x81\xA6", 0, "\\u{2066}" },
		{ "PDI U+2069", "\xE2\x81\xA9", 0, "\\u{2069}" },
		{ "LRM U+200E", "\xE2\x80\x8E", 0, "\\u{200e}" },
		{ "RLM U+200F", "\xE2\x80\x8F", 0, "\\u{200f}" },
		{ "ALM U+061C", "\xD8\x9C", 0, "\\u{61c}" },
		{ "ZWSP U+200B", "a\xE2\x80\x8B"
		                 "b",
		  0, "a\\u{200b}b" },
		{ "ZWNJ U+200C", "\xE2\x80\x8C", 0, "\\u{200c}" },
		{ "ZWJ U+200D", "\xE2\x80\x8D", 0, "\\u{200d}" },
		{ "word joiner U+2060", "\xE2\x81\xA0", 0, "\\u{2060}" },
		{ "BOM U+FEFF", "\xEF\xBB\xBF"
		                "x",
		  0, "\\u{feff}x" },
		{ "line separator U+2028", "\xE2\x80\xA8", 0, "\\u{2028}" },
		{ "tag U+E0041", "\xF3\xA0\x81\x81", 0, "\\u{e0041}" },
		{ "neighbours pass: U+200A hair space", "\xE2\x80\x8A", 0,
		  "\xE2\x80\x8A" },
		{ "neighbours pass: U+2030 per mille", "\xE2\x80\xB0", 0,
		  "\xE2\x80\xB0" },
	};

	(void)state;
	CHECK(cases);
}

static void test_bad_utf8(void **state)
{
	static const struct esc_case cases[] = {
		{ "lone continuation", "\x80", 0, "\\x80" },
		{ "overlong slash", "\xC0\xAF", 0, "\\xc0\\xaf" },
		{ "overlong ESC", "\xC0\x9B", 0, "\\xc0\\x9b" },
		{ "surrogate", "\xED\xA0\x80", 0, "\\xed\\xa0\\x80" },
		{ "above U+10FFFF", "\xF4\x90\x80\x80", 0, "\\xf4\\x90\\x80\\x80" },
		{ "0xFF", "\xFF", 0, "\\xff" },
		{ "truncated at the end", "ab\xE2\x80", 0, "ab\\xe2\\x80" },
		{ "ESC inside a sequence", "\xE2\x1b[2J", 0, "\\xe2\\x1b[2J" },
		{ "lead then ascii", "\xC3"
		                     "A",
		  0, "\\xc3A" }
	};

	(void)state;
	CHECK(cases);
}

/* A buffer that is too small: output stops on a whole unit, always with
 * its NUL, never past the buffer (ASan watches the heap copies). */
static void test_truncation(void **state)
{
	const char *in = "ab\x1b"
			 "\xE2\x80\xAE"
			 "\xF0\x9F\x98\x80"
			 "z";
	const char *full = "ab\\x1b\\u{202e}\xF0\x9F\x98\x80z";
	size_t inlen = strlen(in), fulllen = strlen(full);
	char tiny[1] = { 'X' };

	(void)state;
	assert_size(term_escape(tiny, 0, in, inlen), 0);
	assert_int_equal(tiny[0], 'X'); /* dstlen 0: nothing written */
	assert_size(term_escape(tiny, 1, in, inlen), 0);
	assert_int_equal(tiny[0], '\0');
	for (size_t len = 1; len <= fulllen + 1; len++) {
		char *buf = malloc(len);
		size_t w;

		assert_non_null(buf);
		w = term_escape(buf, len, in, inlen);
		assert_true(w < len);
		assert_size(strlen(buf), w);
		/* always a prefix of the full rendering, cut between units */
		assert_memory_equal(buf, full, w);
		assert_true(w == 0 || w == 1 || w == 2 || w == 6 || w == 14 || w == 18 ||
		            w == 19);
		free(buf);
	}
	{
		char buf[64];

		assert_size(term_escape(buf, sizeof(buf), in, inlen), fulllen);
		assert_string_equal(buf, full);
	}
}

/* The worst case fits TERM_ESCAPE_SIZE exactly. */
static void test_worst_case(void **state)
{
	uint8_t in[256];
	char out[TERM_ESCAPE_SIZE(256)];
	char ctl[TERM_ESCAPE_SIZE(32)];

	(void)state;
	memset(in, 0xFF, sizeof(in));
	assert_size(term_escape(out, sizeof(out), in, sizeof(in)), 4 * 256);
	memset(in, 0x1b, 32);
	assert_size(term_escape(ctl, sizeof(ctl), in, 32), 4 * 32);
	/* every single byte value renders within 4 bytes */
	for (int b = 0; b < 256; b++) {
		uint8_t one = (uint8_t)b;
		char o[TERM_ESCAPE_SIZE(1)];
		size_t w = term_escape(o, sizeof(o), &one, 1);

		assert_true(w >= 1 && w <= 4);
		if (b >= 0x20 && b < 0x7F)
			assert_true(w == 1 && o[0] == b);
	}
}

static void test_term_str(void **state)
{
	char buf[32];

	(void)state;
	assert_string_equal(term_str(buf, sizeof(buf), "x\x1b[31my"), "x\\x1b[31my");
	assert_string_equal(term_str(buf, sizeof(buf), NULL), "");
	assert_string_equal(term_str(buf, 5, "abcdefgh"), "abcd");
}

/* Each escaped code point is one term_invisible() says; nothing else in
 * the Basic Multilingual Plane's format blocks is. */
static void test_invisible_table(void **state)
{
	static const uint32_t yes[] = { 0x061C, 0x180E, 0x200B, 0x200C, 0x200D,
		                        0x200E, 0x200F, 0x2028, 0x2029, 0x202A, 0x202B, 0x202C,
		                        0x202D, 0x202E, 0x2060, 0x2066, 0x2067, 0x2068, 0x2069,
		                        0x206F, 0xFEFF, 0xFFF9, 0xFFFB, 0xE0001, 0xE007F };
	static const uint32_t no[] = { 0x20, 0x41, 0xA0, 0x061B, 0x200A,
		                       0x2010, 0x2027, 0x202F, 0x205F, 0x2070, 0xFEFE, 0xFFFC,
		                       0xFFFD, 0xE0080, 0x1F600 };

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!term_invisible(yes[i])) {
			print_error("U+%04X should be invisible\n", (unsigned)yes[i]);
			fail();
		}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (term_invisible(no[i])) {
			print_error("U+%04X should be visible\n", (unsigned)no[i]);
			fail();
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_c0_del),
		cmocka_unit_test(test_c1),
		cmocka_unit_test(test_bidi_invisible),
		cmocka_unit_test(test_bad_utf8),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_worst_case),
		cmocka_unit_test(test_term_str),
		cmocka_unit_test(test_invisible_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
