/*
 * Fuzz harness for the apps' parsers of peer input (src/app_parse.c) and
 * key fingerprints (identity_fp_parse): the first byte picks the parser,
 * the rest is its input.
 *
 *   0  app_header_feed: the whole input at once and in chunks of a size
 *      the second byte picks must give the same line; a line taken has a
 *      non-empty NAME without space, and nothing past the newline is used.
 *   1  recv_parse_header: a request taken has a name file_name_check
 *      accepts and a size within INT64_MAX, and written back out (encoded)
 *      it parses to the same.
 *   2  file_name_decode: what decodes encodes and decodes back the same.
 *   3  identity_fp_parse: what parses prints back as the input.
 *
 * Built with libFuzzer and with replay.c's plain main(), so that ctest
 * replays the committed corpus (corpus/app) with any compiler.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "app_file.h"
#include "identity.h"
#include "fuzz.h"

enum { INPUT_MAX = 2048 };

static long feed_chunks(struct app_header *h, const uint8_t *d, size_t len,
                        size_t step)
{
	size_t off = 0;
	long used;

	memset(h, 0, sizeof(*h));
	while (off < len && !h->done) {
		size_t n = len - off < step ? len - off : step;

		if ((used = app_header_feed(h, d + off, n)) < 0)
			return -1;
		CHECK((size_t)used <= n);
		off += (size_t)used;
	}
	return (long)off;
}

static void header_case(const uint8_t *d, size_t len)
{
	static struct app_header a, b;
	size_t step;
	long ua, ub;

	if (!len)
		return;
	step = (size_t)d[0] % 16 + 1;
	d++, len--;
	ua = feed_chunks(&a, d, len, len ? len : 1);
	ub = feed_chunks(&b, d, len, step);
	CHECK((ua < 0) == (ub < 0));
	if (ua < 0)
		return;
	CHECK(a.done == b.done && ua == ub);
	if (!a.done)
		return;
	CHECK(!strcmp(a.name, b.name) && !strcmp(a.rest, b.rest));
	CHECK(a.name[0] && !strchr(a.name, ' ') && !strchr(a.name, '\n'));
	CHECK(!strchr(a.rest, '\n'));
	CHECK(d[ua - 1] == '\n' && !memchr(d, '\n', (size_t)ua - 1));
	CHECK(!memcmp(d, "punch/1 ", 8) && !memcmp(d + 8, a.name, strlen(a.name)));
}

static void request_case(const char *s)
{
	char name[FILE_NAME_MAX + 1], name2[FILE_NAME_MAX + 1];
	char why[4096], wire[FILE_WIRE_NAME_MAX + 1], again[FILE_WIRE_NAME_MAX + 32];
	uint64_t size, size2;
	size_t len;

	if (recv_parse_header(s, name, &size, why, sizeof(why))) {
		CHECK(strlen(why) < sizeof(why));
		return;
	}
	len = strlen(name);
	CHECK(len && len <= FILE_NAME_MAX && !file_name_check(name, len));
	CHECK(size <= (uint64_t)INT64_MAX);
	CHECK(file_name_encode(name, len, wire, sizeof(wire)) > 0);
	snprintf(again, sizeof(again), "%s %llu", wire, (unsigned long long)size);
	CHECK(!recv_parse_header(again, name2, &size2, why, sizeof(why)));
	CHECK(!strcmp(name, name2) && size == size2);
}

static void name_case(const char *s)
{
	char out[FILE_WIRE_NAME_MAX + 1], wire[3 * sizeof(out) + 1];
	char back[FILE_WIRE_NAME_MAX + 1];
	int n = file_name_decode(s, out, sizeof(out));

	if (n < 0)
		return;
	CHECK((size_t)n < sizeof(out) && out[n] == '\0');
	CHECK(file_name_encode(out, (size_t)n, wire, sizeof(wire)) >= 0);
	CHECK(file_name_decode(wire, back, sizeof(back)) == n);
	CHECK(!memcmp(out, back, (size_t)n));
	(void)file_name_check(out, (size_t)n);
}

static void fp_case(const char *s)
{
	uint8_t fp[IDENTITY_FP_LEN], again[IDENTITY_FP_LEN];
	char str[IDENTITY_FP_STRLEN];

	if (identity_fp_parse(s, fp))
		return;
	identity_fp_str(fp, str);
	CHECK(!strcmp(str + 7, !strncmp(s, "SHA256:", 7) ? s + 7 : s));
	CHECK(!identity_fp_parse(str, again) && !memcmp(fp, again, sizeof(fp)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char s[INPUT_MAX + 1];

	if (size < 1 || size > INPUT_MAX)
		return 0;
	if (data[0] % 4 == 0) {
		header_case(data + 1, size - 1);
		return 0;
	}
	/* The others take a C string, as their callers give them. */
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 4) {
	case 1: request_case(s); break;
	case 2: name_case(s); break;
	case 3: fp_case(s); break;
	}
	return 0;
}
