/*
 * The default gateway from /proc/net/route's text (portmap_parse_route in
 * src/portmap_proto.c): any bytes, no NUL needed.  A gateway it finds
 * must come from the input: its 8 hex digits appear there (in either case).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "portmap_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in_addr gw;
	char hex[9], *low;

	if (portmap_parse_route((const char *)data, size, &gw))
		return 0;
	CHECK(gw.s_addr != 0);
	snprintf(hex, sizeof(hex), "%08x", gw.s_addr);
	low = malloc(size ? size : 1);
	CHECK(low != NULL);
	for (size_t i = 0; i < size; i++)
		low[i] = (char)tolower(data[i]);
	CHECK(memmem(low, size, hex, 8) != NULL);
	free(low);
	return 0;
}
