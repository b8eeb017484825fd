/*
 * Unit tests for the id rules that keep ids printable and unambiguous
 * (punch_id_check() in src/punch_attr.c): no bidi controls, no invisible
 * characters, no leading '#'.  The server answers 400 with these reasons;
 * the client refuses such an -id or -peer before it sends anything.
 * (Length, UTF-8 and control characters are tested in test_registry.c.)
 */
#include "unit.h"

#include <stdio.h>

#include "punch_attr.h"

static const char R_HASH[] = "id starts with '#'";
static const char R_INVIS[] = "id contains a bidi control or an invisible character";

static void expect(const char *name, const char *id, const char *why)
{
	const char *seen = punch_id_check((const uint8_t *)id, strlen(id));

	if ((seen == NULL) != (why == NULL) || (seen && strcmp(seen, why))) {
		print_error("id case '%s': expected %s, saw %s\n", name,
		            why ? why : "valid", seen ? seen : "valid");
		fail();
	}
}

static void test_leading_hash(void **state)
{
	(void)state;
	expect("# alone", "#", R_HASH);
	expect("#bob", "#bob", R_HASH);
	expect("# in the middle is fine", "bob#2", NULL);
	expect("# at the end is fine", "bob#", NULL);
}

static void test_bidi(void **state)
{
	(void)state;
	/* "bob" followed by RLO + "ecila" reads as "bobalice" */
	expect("RLO U+202E", "bob\xE2\x80\xAE"
	                     "ecila",
	       R_INVIS);
	expect("LRE U+202A", "\xE2\x80\xAA"
	                     "bob",
	       R_INVIS);
	expect("RLE U+202B", "b\xE2\x80\xAB", R_INVIS);
	expect("PDF U+202C", "b\xE2\x80\xAC", R_INVIS);
	expect("LRO U+202D", "b\xE2\x80\xAD", R_INVIS);
	expect("LRI U+2066", "b\xE2\x81\xA6", R_INVIS);
	expect("RLI U+2067", "b\xE2\x81\xA7", R_INVIS);
	expect("FSI U+2068", "b\xE2\x81\xA8", R_INVIS);
	expect("PDI U+2069", "b\xE2\x81\xA9", R_INVIS);
	expect("LRM U+200E", "b\xE2\x80\x8E", R_INVIS);
	expect("RLM U+200F", "b\xE2\x80\x8F", R_INVIS);
	expect("ALM U+061C", "b\xD8\x9C", R_INVIS);
}

static void test_zero_width(void **state)
{
	(void)state;
	expect("ZWSP U+200B", "bo\xE2\x80\x8B"
	                      "b",
	       R_INVIS);
	expect("ZWNJ U+200C", "bo\xE2\x80\x8C"
	                      "b",
	       R_INVIS);
	expect("ZWJ U+200D", "bo\xE2\x80\x8D"
	                     "b",
	       R_INVIS);
	expect("word joiner U+2060", "bo\xE2\x81\xA0"
	                             "b",
	       R_INVIS);
	expect("BOM U+FEFF", "\xEF\xBB\xBF"
	                     "bob",
	       R_INVIS);
	expect("tag U+E0062", "bob\xF3\xA0\x81\xA2", R_INVIS);
}

static void test_still_valid(void **state)
{
	(void)state;
	/* right-to-left scripts themselves are fine: only the controls go */
	expect("Hebrew", "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D", NULL);
	expect("Arabic", "\xD8\xB3\xD9\x84\xD8\xA7\xD9\x85", NULL);
	expect("emoji with no joiner", "\xF0\x9F\x98\x80", NULL);
	expect("a key fingerprint as an id",
	       "SHA256:KfMQePMcp3r41bweKcoJh1JCXm3TgOgUvn0i14leue8", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leading_hash),
		cmocka_unit_test(test_bidi),
		cmocka_unit_test(test_zero_width),
		cmocka_unit_test(test_still_valid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
