/*
 * NAT-PMP answers (src/portmap_proto.c).  The input: two bytes, the
 * internal port we asked about (big-endian), then the datagram.  Both
 * parsers see it; what they accept must hold together, and a request
 * built from an accepted mapping must parse back as ours.
 */
#include <string.h>

#include "fuzz.h"
#include "portmap_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct portmap_grant g;
	uint16_t port;
	uint8_t req[NATPMP_MAP_REQ_LEN];

	if (size < 2)
		return 0;
	port = (uint16_t)(data[0] << 8 | data[1]);
	data += 2;
	size -= 2;
	if (!natpmp_parse_external(&g, data, size))
		CHECK(size >= 8 && (g.result || size >= NATPMP_EXTERNAL_RESP_LEN));
	if (!natpmp_parse_map_udp(&g, data, size, port) && g.result == 0) {
		CHECK(size >= NATPMP_MAP_RESP_LEN);
		CHECK(g.internal_port == port);
		CHECK(g.ext_port || !g.lifetime_s);
		/* the renewal we would send for it */
		CHECK(natpmp_build_map_udp(req, sizeof(req), port, g.ext_port,
		                           g.lifetime_s) == NATPMP_MAP_REQ_LEN);
		CHECK(req[1] == 1 && (req[4] << 8 | req[5]) == port);
	}
	return 0;
}
