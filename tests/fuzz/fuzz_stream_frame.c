/*
 * Fuzz harness for the stream framer (src/stream_frame.c): STUN and
 * ChannelData cut out of TCP input.
 *
 * The input's first byte picks the read sizes (1 to 64 bytes, cycling
 * through a pattern made from it); the rest is the stream.  For each
 * input:
 *  1. Cut the stream with frame_peek() alone, as a reference: the
 *     messages, and whether it broke.
 *  2. Feed it to a framer in those reads, draining whole messages after
 *     each: the same messages in the same order, each within FRAME_MAX and
 *     inside the framer's buffer, and the same break.
 *  3. Write the messages back out (ChannelData padded with zeros) and cut
 *     that: the same messages again, and no break.
 *
 * Built with libFuzzer and with replay.c's main(), like the others.
 */
#include <stdlib.h>
#include <string.h>

#include "stream_frame.h"
#include "fuzz.h"

enum { MSGS_MAX = 4096 };

struct cut {
	size_t off[MSGS_MAX], len[MSGS_MAX];
	size_t n;
	int broken;
};

/* Step 1: the reference cut of buf. */
static void cut_all(const uint8_t *buf, size_t size, struct cut *c)
{
	size_t at = 0;

	c->n = 0;
	c->broken = 0;
	while (c->n < MSGS_MAX) {
		size_t len;
		enum frame_kind kind;
		long whole = frame_peek(buf + at, size - at, FRAME_MAX, &len,
		                        &kind);

		if (whole < 0)
			c->broken = 1;
		if (whole <= 0)
			return;
		CHECK((size_t)whole <= FRAME_MAX && (size_t)whole <= size - at);
		CHECK(len <= (size_t)whole && (size_t)whole - len < 4);
		CHECK(kind == FRAME_STUN ? len == (size_t)whole :
		                           frame_padded(len) == (size_t)whole);
		c->off[c->n] = at;
		c->len[c->n++] = len;
		at += (size_t)whole;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cut ref, again;
	static struct framer f;
	uint8_t *out;
	size_t seed, at = 0, got = 0, out_len = 0;
	int broken = 0;

	if (size < 1)
		return 0;
	seed = data[0];
	data++;
	size--;
	cut_all(data, size, &ref);

	/* Step 2 */
	framer_init(&f);
	for (size_t read = 0; at < size && !broken; read++) {
		size_t cap, n = 1 + (seed * 31 + read * 7) % 64;
		uint8_t *space = framer_space(&f, &cap);
		const uint8_t *msg;
		size_t len;
		enum frame_kind kind;
		int rc;

		CHECK(cap > 0 && space >= f.buf && space + cap <= f.buf + FRAME_MAX);
		n = n < cap ? n : cap;
		n = n < size - at ? n : size - at;
		memcpy(space, data + at, n);
		framer_wrote(&f, n);
		at += n;
		while ((rc = framer_next(&f, &msg, &len, &kind)) > 0) {
			CHECK(got < ref.n && len == ref.len[got]);
			CHECK(msg >= f.buf && msg + len <= f.buf + FRAME_MAX);
			CHECK(!memcmp(msg, data + ref.off[got], len));
			got++;
		}
		broken = rc < 0;
	}
	if (ref.n < MSGS_MAX) {
		CHECK(got == ref.n);
		CHECK(broken == ref.broken);
	}

	/* Step 3 */
	out = malloc(size + 4 * ref.n + 1);
	CHECK(out);
	for (size_t i = 0; i < ref.n; i++) {
		size_t whole = frame_padded(ref.len[i]);

		memcpy(out + out_len, data + ref.off[i], ref.len[i]);
		memset(out + out_len + ref.len[i], 0, whole - ref.len[i]);
		out_len += whole;
	}
	cut_all(out, out_len, &again);
	CHECK(!again.broken && again.n == ref.n);
	for (size_t i = 0; i < ref.n; i++)
		CHECK(again.len[i] == ref.len[i] &&
		      !memcmp(out + again.off[i], data + ref.off[i], ref.len[i]));
	free(out);
	return 0;
}
