#include "addr.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	long v;

	/* digits only: strtol alone would take " 5", "+5" and "-0" */
	for (const char *p = s; *p; p++)
		if (!isdigit((unsigned char)*p))
			return -1;
	if (!*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Split s into host and port strings; either may come back empty. */
static int split_host_port(const char *s, char *host, size_t host_len,
                           const char **port)
{
	const char *colon;
	size_t n;

	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -1;
		n = (size_t)(close - s - 1);
		if (!n)
			return -1; /* "[]" */
		*port = close[1] ? close + 2 : "";
		if (close[1] && !close[2])
			return -1;
		s++;
	} else {
		colon = strrchr(s, ':');
		/* More than one colon without brackets: a bare IPv6 address. */
		if (colon && strchr(s, ':') != colon)
			colon = NULL;
		n = colon ? (size_t)(colon - s) : strlen(s);
		*port = colon ? colon + 1 : "";
		if (colon && !colon[1])
			return -1;
	}
	if (n >= host_len)
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	return 0;
}

int addr_parse(struct sockaddr_storage *out, const char *s)
{
	char host[ADDR_STRLEN];
	const char *port_s;
	uint16_t port = addr_port((struct sockaddr *)out);
	struct in_addr a4;
	struct in6_addr a6;

	if (!s || split_host_port(s, host, sizeof(host), &port_s))
		return -1;
	if (*port_s && parse_port(port_s, &port))
		return -1;
	if (!*host) {
		if (!*port_s || (out->ss_family != AF_INET &&
		                 out->ss_family != AF_INET6))
			return -1;
		addr_set_port((struct sockaddr *)out, port);
		return 0;
	}
	if (inet_pton(AF_INET, host, &a4) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;

		memset(out, 0, sizeof(*out));
		sin->sin_family = AF_INET;
		sin->sin_addr = a4;
		sin->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

		memset(out, 0, sizeof(*out));
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = a6;
		sin6->sin6_port = htons(port);
		return 0;
	}
	return -1;
}

int addr_resolve(struct sockaddr_storage *out, const char *s, int family,
                 const char **err)
{
	char host[256];
	const char *port_s;
	struct addrinfo hints = { .ai_family = family, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL;
	int rc;

	if (err)
		*err = "expected HOST:PORT";
	if (!s || split_host_port(s, host, sizeof(host), &port_s) || !*host ||
	    !*port_s)
		return -1;
	rc = getaddrinfo(host, port_s, &hints, &res);
	if (rc) {
		if (err)
			*err = gai_strerror(rc);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

const char *addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
	return buf;
}

int addr_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		               &((const struct sockaddr_in6 *)b)->sin6_addr, 16);
	return 0;
}

int addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	return addr_same_ip(a, b) && addr_port(a) == addr_port(b);
}

uint16_t addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

void addr_set_port(struct sockaddr *sa, uint16_t port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons(port);
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

socklen_t addr_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int addr_is_any(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
		       htonl(INADDR_ANY);
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
			&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return 0;
}

static enum addr_class class_v4(uint32_t a) /* host order */
{
	if ((a >> 24) == 0)
		return ADDR_CLASS_UNSPECIFIED;
	if ((a >> 24) == 127)
		return ADDR_CLASS_LOOPBACK;
	if ((a >> 16) == 0xA9FE)
		return ADDR_CLASS_LINK_LOCAL;
	if ((a >> 28) == 0xE || a == 0xFFFFFFFF)
		return ADDR_CLASS_MULTICAST;
	return ADDR_CLASS_ROUTABLE;
}

enum addr_class addr_classify(const struct sockaddr *sa)
{
	const struct in6_addr *a6;

	if (sa->sa_family == AF_INET)
		return class_v4(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
	if (sa->sa_family != AF_INET6)
		return ADDR_CLASS_OTHER;
	a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a6))
		return class_v4((uint32_t)a6->s6_addr[12] << 24 |
		                (uint32_t)a6->s6_addr[13] << 16 |
		                (uint32_t)a6->s6_addr[14] << 8 | a6->s6_addr[15]);
	if (IN6_IS_ADDR_UNSPECIFIED(a6))
		return ADDR_CLASS_UNSPECIFIED;
	if (IN6_IS_ADDR_LOOPBACK(a6))
		return ADDR_CLASS_LOOPBACK;
	if (IN6_IS_ADDR_LINKLOCAL(a6))
		return ADDR_CLASS_LINK_LOCAL;
	if (IN6_IS_ADDR_MULTICAST(a6))
		return ADDR_CLASS_MULTICAST;
	return ADDR_CLASS_ROUTABLE;
}

const char *addr_class_str(enum addr_class c)
{
	static const char *const names[] = { "routable", "unspecified",
		                             "loopback", "link-local", "multicast", "not IP" };

	return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "?";
}

int addr_is_private(const struct sockaddr *sa)
{
	const uint8_t *b;

	if (sa->sa_family == AF_INET6) {
		b = (const uint8_t *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
		if ((b[0] & 0xFE) == 0xFC)
			return 1;
		if (memcmp(b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12))
			return 0;
		b += 12;
	} else if (sa->sa_family == AF_INET) {
		b = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
	} else {
		return 0;
	}
	return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) ||
	       (b[0] == 192 && b[1] == 168) ||
	       (b[0] == 100 && (b[1] & 0xC0) == 64);
}

int addr_host_ok(const char *h, size_t n)
{
	if (!n || n > ADDR_HOST_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = h[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' ||
		      ch == '_' || ch == ':'))
			return 0;
	}
	return 1;
}

int addr_port_parse(const char *s, size_t n, int allow_zero, uint16_t *out)
{
	unsigned long v = 0;

	if (!n || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535 || (!v && !allow_zero))
		return -1;
	*out = (uint16_t)v;
	return 0;
}
