/*
 * Fuzz harness for the STUN decoder and the Binding responder.
 *
 * As c-ares's harnesses do, it decodes the input, writes it back out, and
 * decodes that again: both decodes must agree.  It then feeds the input to
 * the server's responder and checks the amplification bound; a classic
 * (RFC 3489) request must be answered in kind, echoing its 128-bit id.
 * Built with
 * libFuzzer (clang -fsanitize=fuzzer) and with replay.c's plain main(), so
 * that ctest replays the committed corpus on every run with any compiler.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "stun.h"
#include "stun3489.h"
#include "fuzz.h"

static const uint8_t key[] = "fuzz-key";

static int same_addr(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return !memcmp(a, b, sizeof(struct sockaddr_in));
	return !memcmp(a, b, sizeof(struct sockaddr_in6));
}

static int same_bytes(const struct stun_bytes *a, const struct stun_bytes *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->ptr, b->ptr, a->len));
}

static void round_trip(const struct stun_msg *m)
{
	static uint8_t out[65536 + 64];
	struct stun_msg m2;
	int n;

	n = stun_encode(m, out, sizeof(out), key, sizeof(key) - 1);
	if (n < 0) {
		/* Only growth can fail: a MESSAGE-INTEGRITY-SHA256 of 16 bytes
		 * is re-encoded as 32, and that may pass 64 KiB. */
		CHECK(n == STUN_ERR_NOSPACE);
		return;
	}
	CHECK(stun_decode(&m2, out, (size_t)n) == STUN_OK);
	CHECK(m2.present == m->present);
	CHECK(m2.method == m->method && m2.cls == m->cls);
	CHECK(!memcmp(m2.txid, m->txid, STUN_TXID_LEN));
	if (m->present & STUN_HAS_XOR_MAPPED)
		CHECK(same_addr(&m2.xor_mapped, &m->xor_mapped));
	if (m->present & STUN_HAS_MAPPED)
		CHECK(same_addr(&m2.mapped, &m->mapped));
	if (m->present & STUN_HAS_OTHER_ADDRESS)
		CHECK(same_addr(&m2.other_address, &m->other_address));
	if (m->present & STUN_HAS_RESPONSE_ORIGIN)
		CHECK(same_addr(&m2.response_origin, &m->response_origin));
	CHECK(same_bytes(&m2.username, &m->username));
	CHECK(same_bytes(&m2.software, &m->software));
	CHECK(same_bytes(&m2.reason, &m->reason));
	CHECK(m2.error_code == m->error_code);
	CHECK(m2.change_request == m->change_request);
	CHECK(m2.priority == m->priority && m2.tiebreaker == m->tiebreaker);
	CHECK(m2.unknown_attrs_count == m->unknown_attrs_count);
	if (m->present & (STUN_HAS_INTEGRITY | STUN_HAS_INTEGRITY_SHA256))
		CHECK(stun_check_integrity(&m2, out, (size_t)n, key,
		                           sizeof(key) - 1) == STUN_OK);
}

static void respond(const uint8_t *data, size_t size)
{
	static struct binding_service svc;
	static uint8_t out[BINDING_RESPONSE_MAX];
	struct sockaddr_in from = { .sin_family = AF_INET,
	                            .sin_port = htons(40000),
	                            .sin_addr.s_addr = htonl(0xC0000201) };
	struct binding_reply reply;
	struct stun_msg m;

	if (!svc.rfc5780) {
		for (int i = 0; i < BINDING_SOCKETS_MAX; i++) {
			struct sockaddr_in *a = (struct sockaddr_in *)&svc.local[i];

			a->sin_family = AF_INET;
			a->sin_addr.s_addr = htonl(0xC6336401 + (i >> 1));
			a->sin_port = htons((uint16_t)(3478 + (i & 1)));
			svc.have[i] = 1;
		}
		svc.rfc5780 = 1;
		svc.software = "punch fuzz";
	}
	if (binding_handle(&svc, (int)(size % 4), data, size,
	                   (struct sockaddr *)&from, out, sizeof(out), &reply,
	                   NULL) != BINDING_REPLY)
		return;
	CHECK(reply.len <= size * BINDING_AMPLIFICATION_MAX);
	CHECK(reply.sock >= 0 && reply.sock < BINDING_SOCKETS_MAX);
	if (stun_decode(&m, data, size) == STUN_ERR_COOKIE) {
		struct stun3489_msg c;

		CHECK(stun3489_decode(&c, out, reply.len) == STUN_OK);
		CHECK(c.method == STUN_BINDING);
		CHECK(c.cls == (reply.is_error ? STUN_ERROR : STUN_SUCCESS));
		CHECK(!memcmp(c.txid, data + 4, STUN3489_TXID_LEN));
		return;
	}
	CHECK(stun_decode(&m, out, reply.len) == STUN_OK);
	CHECK(m.cls == STUN_SUCCESS || m.cls == STUN_ERROR);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stun_msg m;

	if (stun_decode(&m, data, size) == STUN_OK) {
		(void)stun_check_integrity(&m, data, size, key, sizeof(key) - 1);
		round_trip(&m);
	} else {
		struct stun3489_msg c;

		if (stun3489_decode(&c, data, size) == STUN_OK)
			CHECK(c.unknown_required_count <= STUN_MAX_UNKNOWN &&
			      c.attrs_count <= STUN_MAX_ATTRS);
	}
	respond(data, size);
	return 0;
}
