/*
 * PCP MAP answers (src/portmap_proto.c).  The input: two bytes, the
 * internal port we asked about (big-endian), then the datagram; the nonce
 * is the fixed one below (the seed corpus carries it, so mutations reach
 * past the nonce check).  An accepted answer must carry our nonce,
 * protocol and port, and its mapping must rebuild into a request that
 * names the same nonce and port.
 */
#include <string.h>

#include "fuzz.h"
#include "portmap_proto.h"

static const uint8_t nonce[PCP_NONCE_LEN] = { 'p', 'u', 'n', 'c', 'h', '-',
	                                      'f', 'u', 'z', 'z', '0', '1' };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct portmap_grant g;
	struct in_addr me = { 0 };
	uint8_t req[PCP_MAP_REQ_LEN];
	uint16_t port;

	if (size < 2)
		return 0;
	port = (uint16_t)(data[0] << 8 | data[1]);
	data += 2;
	size -= 2;
	if (pcp_parse_map_udp(&g, data, size, nonce, port))
		return 0;
	CHECK(size >= PCP_MAP_RESP_MIN && size <= PCP_MSG_MAX && size % 4 == 0);
	CHECK(!memcmp(data + 24, nonce, PCP_NONCE_LEN));
	CHECK(g.internal_port == port);
	if (g.result)
		return 0;
	CHECK(g.ext_port || !g.lifetime_s);
	CHECK(pcp_build_map_udp(req, sizeof(req), nonce, me, port, g.ext_port,
	                        g.lifetime_s) == PCP_MAP_REQ_LEN);
	CHECK(!memcmp(req + 24, nonce, PCP_NONCE_LEN));
	CHECK(pcp_parse_map_udp(&g, req, sizeof(req), nonce, port) == -1);
	return 0;
}
