/* hostport.c - "HOST:PORT" / "[V6]:PORT" parsing shared by the bench tools. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "hostport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HOSTPORT_HOST_MAX = 256 };

int hostport_parse(const char *text, struct sockaddr_storage *ss, socklen_t *sslen,
                   char *err, size_t errlen)
{
	char host[HOSTPORT_HOST_MAX];
	const char *hstart, *port;
	size_t hlen;

	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "'%s': expected [IPV6]:PORT", text);
			return -1;
		}
		hstart = text + 1;
		hlen = (size_t)(close - hstart);
		port = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (colon == NULL || strchr(text, ':') != colon) {
			snprintf(err, errlen, "'%s': expected HOST:PORT (IPv6 as [ADDR]:PORT)", text);
			return -1;
		}
		hstart = text;
		hlen = (size_t)(colon - text);
		port = colon + 1;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		snprintf(err, errlen, "'%s': bad host part", text);
		return -1;
	}
	memcpy(host, hstart, hlen);
	host[hlen] = '\0';

	char *end;
	long p = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || p < 1 || p > 65535) {
		snprintf(err, errlen, "'%s': port must be 1..65535", text);
		return -1;
	}

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "'%s': %s", text, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

void hostport_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
}
