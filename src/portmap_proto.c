#include "portmap_proto.h"

#include "addr.h"

#include <arpa/inet.h>
#include <string.h>

enum {
	NATPMP_VERSION = 0,
	NATPMP_OP_EXTERNAL = 0,
	NATPMP_OP_MAP_UDP = 1,
	NATPMP_OP_REPLY = 128, /* RFC 6886 3.2: answers have 128 + the opcode */
	NATPMP_ERR_LEN = 8,    /* version, opcode, result and epoch */
	PCP_VERSION = 2,
	PCP_OP_MAP = 1,
	PCP_R_BIT = 0x80,      /* RFC 6887 7.2: set in responses */
	PCP_HEADER_LEN = 24,
	IPPROTO_UDP_NUM = 17,
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* An IPv4 address as PCP writes every address: IPv4-mapped IPv6
 * (RFC 6887 5, ::ffff:a.b.c.d). */
static void put_v4mapped(uint8_t *p, struct in_addr a)
{
	memset(p, 0, 10);
	p[10] = p[11] = 0xff;
	memcpy(p + 12, &a.s_addr, 4);
}

static int get_v4mapped(struct in_addr *a, const uint8_t *p)
{
	static const uint8_t prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (memcmp(p, prefix, sizeof(prefix)))
		return -1; /* an IPv6 mapping: not what we asked for */
	memcpy(&a->s_addr, p + 12, 4);
	return 0;
}

/*
 * RFC 6886 3.2, the external-address request:
 *    0                   1
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   | Vers = 0      | OP = 0        |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
int natpmp_build_external(uint8_t *buf, size_t len)
{
	if (len < NATPMP_EXTERNAL_REQ_LEN)
		return -1;
	buf[0] = NATPMP_VERSION;
	buf[1] = NATPMP_OP_EXTERNAL;
	return NATPMP_EXTERNAL_REQ_LEN;
}

/*
 * RFC 6886 3.3, the mapping request:
 *   | Vers = 0 | OP = 1 (UDP) | Reserved (2)                  |
 *   | Internal Port (2)       | Suggested External Port (2)   |
 *   | Requested Port Mapping Lifetime in Seconds (4)          |
 */
int natpmp_build_map_udp(uint8_t *buf, size_t len, uint16_t internal_port,
                         uint16_t suggested_ext_port, uint32_t lifetime_s)
{
	if (len < NATPMP_MAP_REQ_LEN)
		return -1;
	buf[0] = NATPMP_VERSION;
	buf[1] = NATPMP_OP_MAP_UDP;
	put16(buf + 2, 0);
	put16(buf + 4, internal_port);
	put16(buf + 6, suggested_ext_port);
	put32(buf + 8, lifetime_s);
	return NATPMP_MAP_REQ_LEN;
}

/* The common head of a NAT-PMP answer to opcode op: version 0, 128 + op,
 * the result (RFC 6886 3.5) and the epoch.  An error answer may stop
 * there; a success must have the full length. */
static int natpmp_head(struct portmap_grant *g, const uint8_t *buf, size_t len,
                       int op, size_t full_len)
{
	if (len < NATPMP_ERR_LEN || buf[0] != NATPMP_VERSION ||
	    buf[1] != NATPMP_OP_REPLY + op)
		return -1;
	memset(g, 0, sizeof(*g));
	g->result = get16(buf + 2);
	g->epoch_s = get32(buf + 4);
	if (g->result == PORTMAP_OK && len < full_len)
		return -1;
	return 0;
}

/*
 * RFC 6886 3.2, the external-address answer:
 *   | Vers = 0 | OP = 128 + 0 | Result Code (2)               |
 *   | Seconds Since Start of Epoch (4)                         |
 *   | External IPv4 Address (4)                                |
 */
int natpmp_parse_external(struct portmap_grant *g, const uint8_t *buf,
                          size_t len)
{
	if (natpmp_head(g, buf, len, NATPMP_OP_EXTERNAL,
	                NATPMP_EXTERNAL_RESP_LEN))
		return -1;
	if (g->result == PORTMAP_OK)
		memcpy(&g->ext_ip.s_addr, buf + 8, 4);
	return 0;
}

/*
 * RFC 6886 3.3, the mapping answer:
 *   | Vers = 0 | OP = 128 + 1 | Result Code (2)               |
 *   | Seconds Since Start of Epoch (4)                         |
 *   | Internal Port (2)       | Mapped External Port (2)       |
 *   | Port Mapping Lifetime in Seconds (4)                     |
 */
int natpmp_parse_map_udp(struct portmap_grant *g, const uint8_t *buf,
                         size_t len, uint16_t internal_port)
{
	if (natpmp_head(g, buf, len, NATPMP_OP_MAP_UDP, NATPMP_MAP_RESP_LEN))
		return -1;
	if (g->result != PORTMAP_OK)
		return 0;
	g->internal_port = get16(buf + 8);
	g->ext_port = get16(buf + 10);
	g->lifetime_s = get32(buf + 12);
	/* An answer about another port answers someone else's request. */
	if (g->internal_port != internal_port)
		return -1;
	/* A granted mapping has a port (RFC 6886 3.3: 0 only on delete). */
	if (g->lifetime_s && !g->ext_port)
		return -1;
	return 0;
}

/*
 * RFC 6887 7.1 and 11.1, the MAP request (60 bytes):
 *    0: | Version = 2 | R=0 | Opcode = 1 | Reserved (16)             |
 *    4: | Requested Lifetime (32)                                     |
 *    8: | PCP Client's IP Address (128)                               |
 *   24: | Mapping Nonce (96)                                          |
 *   36: | Protocol = 17 | Reserved (24)                               |
 *   40: | Internal Port (16)     | Suggested External Port (16)       |
 *   44: | Suggested External IP Address (128)                         |
 */
int pcp_build_map_udp(uint8_t *buf, size_t len,
                      const uint8_t nonce[PCP_NONCE_LEN],
                      struct in_addr client_ip, uint16_t internal_port,
                      uint16_t suggested_ext_port, uint32_t lifetime_s)
{
	struct in_addr any = { 0 };

	if (len < PCP_MAP_REQ_LEN)
		return -1;
	memset(buf, 0, PCP_MAP_REQ_LEN);
	buf[0] = PCP_VERSION;
	buf[1] = PCP_OP_MAP;
	put32(buf + 4, lifetime_s);
	put_v4mapped(buf + 8, client_ip);
	memcpy(buf + 24, nonce, PCP_NONCE_LEN);
	buf[36] = IPPROTO_UDP_NUM;
	put16(buf + 40, internal_port);
	put16(buf + 42, suggested_ext_port);
	/* 11.1: no preference for the external address is ::ffff:0.0.0.0 */
	put_v4mapped(buf + 44, any);
	return PCP_MAP_REQ_LEN;
}

/*
 * RFC 6887 7.2 and 11.1, the MAP response:
 *    0: | Version = 2 | R=1 | Opcode = 1 | Reserved | Result Code     |
 *    4: | Lifetime (32)                                               |
 *    8: | Epoch Time (32)                                             |
 *   12: | Reserved (96)                                               |
 *   24: | Mapping Nonce (96)                                          |
 *   36: | Protocol | Reserved (24)                                    |
 *   40: | Internal Port (16)     | Assigned External Port (16)        |
 *   44: | Assigned External IP Address (128)                          |
 *   60: options, which punch does not need and skips.
 * 8.3: a response that is too short, longer than 1100 bytes or not a
 * multiple of 4 is dropped; 11.3: so is one whose nonce, protocol or
 * internal port is not our request's.
 */
int pcp_parse_map_udp(struct portmap_grant *g, const uint8_t *buf, size_t len,
                      const uint8_t nonce[PCP_NONCE_LEN],
                      uint16_t internal_port)
{
	if (len < PCP_MAP_RESP_MIN || len > PCP_MSG_MAX || len % 4)
		return -1;
	if (buf[0] != PCP_VERSION || buf[1] != (PCP_R_BIT | PCP_OP_MAP))
		return -1;
	if (memcmp(buf + 24, nonce, PCP_NONCE_LEN) ||
	    buf[36] != IPPROTO_UDP_NUM || get16(buf + 40) != internal_port)
		return -1;
	memset(g, 0, sizeof(*g));
	g->result = buf[3];
	g->lifetime_s = get32(buf + 4);
	g->epoch_s = get32(buf + 8);
	g->internal_port = internal_port;
	if (g->result != PORTMAP_OK)
		return 0;
	g->ext_port = get16(buf + 42);
	if (get_v4mapped(&g->ext_ip, buf + 44))
		return -1;
	if (g->lifetime_s && !g->ext_port)
		return -1;
	return 0;
}

/* One hexadecimal field of /proc/net/route: 1 to 8 digits, or exactly
 * `exact` (8 for an address: the kernel's %08X of the address as it lies
 * in memory). */
static int route_hex(const char *p, size_t n, size_t exact, uint32_t *out)
{
	uint32_t v = 0;

	if (n == 0 || n > 8 || (exact && n != exact))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		int d = c >= '0' && c <= '9' ? c - '0' :
		        c >= 'A' && c <= 'F' ? c - 'A' + 10 :
		        c >= 'a' && c <= 'f' ? c - 'a' + 10 :
		                               -1;
		if (d < 0)
			return -1;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

static int route_dec(const char *p, size_t n, uint32_t *out)
{
	uint32_t v = 0;

	if (n == 0 || n > 9)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint32_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

enum {
	ROUTE_FIELDS = 8, /* Iface Destination Gateway Flags RefCnt Use Metric Mask */
	RTF_UP_BIT = 0x1,
	RTF_GATEWAY_BIT = 0x2,
};

/* One line: 0 and its fields' extents when it has at least ROUTE_FIELDS
 * tab- or space-separated fields. */
static int route_split(const char *line, size_t n, const char *f[ROUTE_FIELDS],
                       size_t fn[ROUTE_FIELDS])
{
	size_t i = 0;

	for (int k = 0; k < ROUTE_FIELDS; k++) {
		while (i < n && (line[i] == '\t' || line[i] == ' '))
			i++;
		if (i == n)
			return -1;
		f[k] = line + i;
		while (i < n && line[i] != '\t' && line[i] != ' ')
			i++;
		fn[k] = (size_t)(line + i - f[k]);
	}
	return 0;
}

int portmap_parse_route(const char *text, size_t len, struct in_addr *gw)
{
	uint32_t best_metric = UINT32_MAX;
	int found = 0;

	for (size_t start = 0; start < len;) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t n = nl ? (size_t)(nl - (text + start)) : len - start;
		const char *f[ROUTE_FIELDS];
		size_t fn[ROUTE_FIELDS];
		uint32_t dst, via, flags, metric, mask;

		if (!route_split(text + start, n, f, fn) &&
		    !route_hex(f[1], fn[1], 8, &dst) &&
		    !route_hex(f[2], fn[2], 8, &via) &&
		    !route_hex(f[3], fn[3], 0, &flags) &&
		    !route_dec(f[6], fn[6], &metric) &&
		    !route_hex(f[7], fn[7], 8, &mask) && dst == 0 && mask == 0 &&
		    via != 0 && (flags & (RTF_UP_BIT | RTF_GATEWAY_BIT)) == (RTF_UP_BIT | RTF_GATEWAY_BIT) &&
		    (!found || metric < best_metric)) {
			/* the kernel printed the address as it lies in memory */
			gw->s_addr = via;
			best_metric = metric;
			found = 1;
		}
		start += n + 1;
	}
	return found ? 0 : -1;
}

int portmap_ext_usable(struct in_addr ip)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = ip };

	/* addr_classify's classes, and the reserved 240/4 besides */
	return addr_classify((const struct sockaddr *)&sin) == ADDR_CLASS_ROUTABLE &&
	       ntohl(ip.s_addr) >> 28 != 0xF;
}

int portmap_parse_ext_ip(const char *text, size_t len, struct in_addr *ip)
{
	char buf[INET_ADDRSTRLEN];

	if (len == 0 || len >= sizeof(buf) || memchr(text, '\0', len))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, ip) != 1 || !portmap_ext_usable(*ip))
		return -1;
	return 0;
}
