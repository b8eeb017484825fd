/*
 * What a UPnP gateway sends back once SSDP has named it: its device
 * description (XML, which libminiupnpc's parserootdesc reads into struct
 * IGDdatas) and its SOAP answers (ParseNameValue), then what punch takes
 * from them: the external address (portmap_parse_ext_ip), the one value
 * that becomes a candidate.  The first input byte picks which; the rest is
 * the gateway's bytes.
 *
 * libminiupnpc is Debian's build, not instrumented: coverage guides the
 * fuzzer through this harness and portmap_proto.c only, and ASan sees the
 * library's allocations but not its reads.  What the harness checks is
 * what punch relies on: every string the library hands back is
 * NUL-terminated inside its array, and an address punch accepts is usable.
 */
#include <miniupnpc/igd_desc_parse.h>
#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpreplyparse.h>
#include <string.h>

#include "fuzz.h"
#include "portmap_proto.h"

enum { IGD_INPUT_MAX = 64 * 1024 }; /* miniupnpc reads descriptions whole */

static void check_service(const struct IGDdatas_service *s)
{
	CHECK(memchr(s->controlurl, '\0', sizeof(s->controlurl)));
	CHECK(memchr(s->eventsuburl, '\0', sizeof(s->eventsuburl)));
	CHECK(memchr(s->scpdurl, '\0', sizeof(s->scpdurl)));
	CHECK(memchr(s->servicetype, '\0', sizeof(s->servicetype)));
}

static void fuzz_desc(const char *xml, int len)
{
	struct IGDdatas d;

	memset(&d, 0, sizeof(d));
	parserootdesc(xml, len, &d);
	CHECK(memchr(d.urlbase, '\0', sizeof(d.urlbase)));
	CHECK(memchr(d.presentationurl, '\0', sizeof(d.presentationurl)));
	CHECK(memchr(d.cureltname, '\0', sizeof(d.cureltname)));
	check_service(&d.CIF);
	check_service(&d.first);
	check_service(&d.second);
	check_service(&d.IPv6FC);
}

static void fuzz_soap(const char *body, int len)
{
	struct NameValueParserData p;
	struct in_addr ip;
	const char *v;

	memset(&p, 0, sizeof(p));
	ParseNameValue(body, len, &p);
	v = GetValueFromNameValueList(&p, "NewExternalIPAddress");
	if (v && !portmap_parse_ext_ip(v, strlen(v), &ip))
		CHECK(portmap_ext_usable(ip));
	(void)GetValueFromNameValueList(&p, "errorCode");
	ClearNameValueList(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	struct in_addr ip;

	if (size < 1 || size - 1 > IGD_INPUT_MAX)
		return 0;
	/* an exact-size heap copy: what the gateway sent, and not a byte more */
	copy = malloc(size - 1 ? size - 1 : 1);
	CHECK(copy);
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		fuzz_desc(copy, (int)(size - 1));
		break;
	case 1:
		fuzz_soap(copy, (int)(size - 1));
		break;
	default:
		if (!portmap_parse_ext_ip(copy, size - 1, &ip))
			CHECK(portmap_ext_usable(ip));
	}
	free(copy);
	return 0;
}
