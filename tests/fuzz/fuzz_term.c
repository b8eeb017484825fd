/*
 * Fuzz harness for what reaches a terminal: term_escape() (src/term.c)
 * and the id rules (punch_id_check() in src/punch_attr.c).
 *
 * For each input:
 *  1. Escape it whole.  The result must fit TERM_ESCAPE_SIZE, hold no C0
 *     control or DEL, be well-formed UTF-8 with no C1 control and nothing
 *     term_invisible() names, and be a fixed point: escaping it again
 *     changes nothing.
 *  2. Escape it into a smaller buffer (size taken from the input): the
 *     result is NUL-terminated and a prefix of the whole one.
 *  3. Check it as an id.  A valid id is printable as it is (escaping
 *     leaves it unchanged) and does not start with '#'.
 *
 * Built with libFuzzer and with replay.c's main(), like the others.
 */
#include <stdlib.h>
#include <string.h>

#include "punch_attr.h"
#include "term.h"
#include "fuzz.h"

static void check_safe(const char *s, size_t len)
{
	const uint8_t *u = (const uint8_t *)s;

	for (size_t i = 0; i < len;) {
		uint32_t cp;
		size_t n = term_utf8_decode(u + i, len - i, &cp);

		CHECK(n > 0);
		CHECK(cp >= 0x20 && cp != 0x7F);
		CHECK(cp < 0x80 || cp > 0x9F);
		CHECK(!term_invisible(cp));
		i += n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cap = TERM_ESCAPE_SIZE(size), small, w, w2, ws;
	char *out = malloc(cap), *again = malloc(cap), *part;

	CHECK(out && again);
	w = term_escape(out, cap, data, size);
	CHECK(w < cap && strlen(out) == w);
	check_safe(out, w);
	w2 = term_escape(again, cap, out, w);
	CHECK(w2 == w && !memcmp(again, out, w));

	small = size ? data[0] % (cap + 1) : 0;
	part = malloc(small ? small : 1);
	CHECK(part);
	ws = term_escape(part, small, data, size);
	if (small) {
		CHECK(ws < small && strlen(part) == ws);
		CHECK(ws <= w && !memcmp(part, out, ws));
	} else {
		CHECK(ws == 0);
	}

	if (!punch_id_check(data, size)) {
		CHECK(size > 0 && data[0] != '#');
		CHECK(w == size && !memcmp(out, data, size));
	}
	free(part);
	free(again);
	free(out);
	return 0;
}
