/*
 * Fuzz harness for what a peer or a user can hand pake.c: the pairing
 * stream (pake_rx_feed), a share (pake_finish) and a pairing code
 * (pake_code_parse).  For each input:
 *
 *  1. The input as a code (up to its first NUL): if it parses, the
 *     canonical form parses again to itself (c-ares style round trip).
 *  2. The input as the peer's pairing stream, fed whole and then in
 *     chunks whose sizes the input's own bytes choose, with the FIN at the
 *     end: both ways agree on the verdict, and on the message when it is
 *     whole.
 *  3. Whatever share the stream holds goes to a CPace run with fixed
 *     inputs: refused, or accepted with a confirmation that is checked (and
 *     never passes for the input's own MAC bytes unless they are right).
 *
 * Built with libFuzzer (clang -fsanitize=fuzzer) and with replay.c's plain
 * main(), so that ctest replays the committed corpus with any compiler.
 */
#include <stdlib.h>
#include <string.h>

#include "pake.h"
#include "fuzz.h"

static void fuzz_code(const uint8_t *data, size_t size)
{
	char in[PAKE_CODE_INPUT_MAX + 8], out[PAKE_CODE_MAX], again[PAKE_CODE_MAX];
	size_t n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;

	memcpy(in, data, n);
	in[n] = '\0';
	if (pake_code_parse(in, out))
		return;
	CHECK(strlen(out) < PAKE_CODE_MAX);
	CHECK(pake_code_parse(out, again) == 0);
	CHECK(!strcmp(out, again));
}

/* Returns the verdict of feeding data in chunks (sizes from the data). */
static int feed_chunked(struct pake_rx *rx, const uint8_t *data, size_t size)
{
	size_t off = 0;
	int rc = PAKE_RX_MORE;

	memset(rx, 0, sizeof(*rx));
	while (off < size && rc == PAKE_RX_MORE) {
		size_t n = (size_t)(data[off] % 37) + 1;

		if (n > size - off)
			n = size - off;
		rc = pake_rx_feed(rx, data + off, n, 0);
		off += n;
	}
	if (rc == PAKE_RX_MORE)
		rc = pake_rx_feed(rx, NULL, 0, 1);
	return rc;
}

static void fuzz_share(const uint8_t share[PAKE_SHARE_LEN],
                       const uint8_t *mac)
{
	static const uint8_t y[PAKE_SCALAR_LEN] = { 7, 1, 2, 3 };
	uint8_t fa[PAKE_FP_LEN] = { 1 }, fb[PAKE_FP_LEN] = { 2 },
		sid[PAKE_SID_LEN] = { 3 }, ci[PAKE_CI_MAX], own[PAKE_MAC_LEN];
	size_t ci_len = pake_ci(fa, fb, ci);
	struct pake p;

	CHECK(pake_start(&p, 1, "7-amber-falcon", ci, ci_len, sid, sizeof(sid),
	                 NULL, 0, y) == 0);
	if (pake_finish(&p, share, NULL, 0) == 0) {
		pake_mac_own(&p, own);
		/* Our own MAC is never the peer's: the peer's covers its
		 * share, which is never ours (a reflection is refused). */
		CHECK(memcmp(share, p.own, PAKE_SHARE_LEN));
		CHECK(pake_mac_check(&p, own) != 0);
		if (mac)
			(void)pake_mac_check(&p, mac);
	} else {
		CHECK(pake_mac_check(&p, own) != 0);
	}
	pake_wipe(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pake_rx whole, chunks;
	int a, b;

	fuzz_code(data, size);

	memset(&whole, 0, sizeof(whole));
	a = pake_rx_feed(&whole, data, size, 1);
	b = feed_chunked(&chunks, data, size);
	CHECK(a == b);
	if (a == PAKE_RX_MORE) {
		/* Only a whole message ends with FIN. */
		CHECK(size == PAKE_STREAM_LEN);
		CHECK(pake_rx_share(&whole) && pake_rx_share(&chunks));
		CHECK(!memcmp(data, PAKE_STREAM_HEADER, PAKE_HEADER_LEN));
		CHECK(!memcmp(pake_rx_mac(&whole), pake_rx_mac(&chunks), PAKE_MAC_LEN));
	}
	CHECK(pake_prefix_match(0, data, size < PAKE_PREFIX_LEN ? size : PAKE_PREFIX_LEN) ==
	      (size >= PAKE_PREFIX_LEN ? !memcmp(data, "punch/1 pair ", PAKE_PREFIX_LEN) :
	       !memcmp(data, "punch/1 pair ", size)));
	/* Any 32 bytes as a share: those after the header if the stream got
	 * that far (a bad stream stops the chunked feed where it went
	 * wrong), else the input's first 32. */
	if (pake_rx_share(&chunks))
		fuzz_share(pake_rx_share(&chunks), pake_rx_mac(&chunks));
	else if (size >= PAKE_SHARE_LEN)
		fuzz_share(data, NULL);
	return 0;
}
