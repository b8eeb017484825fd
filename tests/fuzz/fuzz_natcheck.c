/*
 * natcheck's handling of what comes back (natcheck_on_recv), driven through
 * whole runs.  The input:
 *
 *	byte 0       bit 0: -lifetime
 *	then records:
 *	  flags      bit 0: put the id of transaction (bits 1-6) % n in the
 *	             datagram (so that mutations reach the later tests);
 *	             bit 7: recompute a trailing FINGERPRINT (a fuzzer cannot)
 *	  sock       the socket it arrives on (any byte: bad ones too)
 *	  from       the source: one of the server's four addresses, the
 *	             socket's own mapped address, or elsewhere
 *	  advance    the clock moves advance * 8 ms first
 *	  len (2)    big-endian, then the datagram
 *
 * After the records the clock runs until natcheck finishes, which it must
 * within a bounded time, and its result must hold together.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <zlib.h>

#include "addr.h"
#include "fuzz.h"
#include "natcheck.h"
#include "stun.h"

static struct sockaddr_storage ip4(const char *ip, uint16_t port)
{
	struct sockaddr_storage a = { 0 };
	struct sockaddr_in *s = (struct sockaddr_in *)&a;

	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s->sin_addr);
	return a;
}

static void fix_fingerprint(uint8_t *d, size_t n)
{
	uint32_t crc;

	if (n < STUN_HEADER_LEN + 8 || d[n - 8] != 0x80 || d[n - 7] != 0x28)
		return;
	crc = (uint32_t)crc32(0, d, (uInt)(n - 8)) ^ STUN_FINGERPRINT_XOR;
	d[n - 4] = (uint8_t)(crc >> 24);
	d[n - 3] = (uint8_t)(crc >> 16);
	d[n - 2] = (uint8_t)(crc >> 8);
	d[n - 1] = (uint8_t)crc;
}

static void check_result(const struct natcheck_result *r)
{
	CHECK(r->mapping <= NATCHECK_ADDRESS_PORT);
	CHECK(r->filtering <= NATCHECK_ADDRESS_PORT);
	CHECK(r->pattern <= NATCHECK_PAT_RANDOM);
	CHECK(r->hairpin >= -1 && r->hairpin <= 1);
	CHECK(r->nat >= -1 && r->nat <= 1);
	CHECK(r->n_deltas < NATCHECK_SAMPLES_MAX);
	/* a behaviour needs the alternate address and an answer */
	CHECK(r->mapping == NATCHECK_UNKNOWN || (r->has_other && r->udp));
	CHECK(r->filtering == NATCHECK_UNKNOWN || (r->has_other && r->udp));
	CHECK(!r->has_public_v4 || r->public_v4.ss_family == AF_INET);
	CHECK(!r->has_public_v6 || r->public_v6.ss_family == AF_INET6);
	if (!r->udp)
		CHECK(natcheck_exit_status(r) == NATCHECK_EXIT_NO_UDP);
	CHECK(natcheck_type_str(r) == NULL || r->udp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct natcheck nc;
	static const uint8_t rnd[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	struct sockaddr_storage from[6];
	struct natcheck_tx tx;
	uint8_t buf[2048];
	uint64_t now = 1000;
	size_t off = 1;

	if (size < 1)
		return 0;
	from[0] = ip4("198.51.100.10", 3478);
	from[1] = ip4("198.51.100.10", 3479);
	from[2] = ip4("198.51.100.11", 3478);
	from[3] = ip4("198.51.100.11", 3479);
	from[4] = ip4("203.0.113.10", 40000);
	from[5] = ip4("192.0.2.66", 3478);
	CHECK(natcheck_init(&nc, (struct sockaddr *)&from[0], NULL,
	                    (data[0] & 1) ? NATCHECK_LIFETIME : 0, rnd, now) == 0);
	for (int s = 0; s < NATCHECK_SOCK_MAX; s++)
		if (natcheck_sock_family(&nc, s) == AF_INET) {
			struct sockaddr_storage l = ip4("10.0.0.2", (uint16_t)(40000 + s));

			natcheck_set_local(&nc, s, (struct sockaddr *)&l);
		}
	while (natcheck_poll_send(&nc, now, &tx))
		CHECK(tx.len >= STUN_HEADER_LEN && tx.len <= sizeof(tx.buf));
	while (off + 6 <= size) {
		uint8_t flags = data[off], sock = data[off + 1];
		uint8_t src = data[off + 2], adv = data[off + 3];
		size_t len = ((size_t)data[off + 4] << 8) | data[off + 5];

		off += 6;
		if (len > size - off || len > sizeof(buf))
			len = size - off < sizeof(buf) ? size - off : sizeof(buf);
		memcpy(buf, data + off, len);
		off += len;
		if ((flags & 1) && len >= STUN_HEADER_LEN && nc.n_req)
			memcpy(buf + 8, nc.req[((flags >> 1) & 0x3f) % nc.n_req].txid,
			       STUN_TXID_LEN);
		if (flags & 0x80)
			fix_fingerprint(buf, len);
		/* The clock moves in steps, as the caller's loop would: every
		 * deadline on the way is met before the datagram arrives. */
		for (uint64_t end = now + adv * 8u; now < end;) {
			uint64_t next = natcheck_next(&nc, now);

			now = next < end ? next : end;
			while (natcheck_poll_send(&nc, now, &tx))
				CHECK(tx.len >= STUN_HEADER_LEN);
		}
		natcheck_next(&nc, now);
		natcheck_on_recv(&nc, (int8_t)sock, (struct sockaddr *)&from[src % 6],
		                 buf, len, now);
		while (natcheck_poll_send(&nc, now, &tx))
			CHECK(tx.len >= STUN_HEADER_LEN);
	}
	/* Every test has a deadline: the run ends, the lifetime steps
	 * included, well inside 200 s. */
	for (int i = 0; i < 100000 && !natcheck_done(&nc); i++) {
		uint64_t next = natcheck_next(&nc, now);

		if (natcheck_done(&nc))
			break;
		CHECK(next > now && next != UINT64_MAX);
		now = next;
		while (natcheck_poll_send(&nc, now, &tx))
			;
	}
	CHECK(natcheck_done(&nc));
	CHECK(now < 1000 + 200000);
	check_result(natcheck_result(&nc));
	return 0;
}
