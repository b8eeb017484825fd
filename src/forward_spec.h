/*
 * What punch forward reads from its user and from its peer, parsed without
 * touching a socket: -L LPORT:HOST:PORT, -allow HOST:PORT, the peer's
 * stream request "HOST PORT", and whether a request is allowed.
 *
 * A HOST is 1-253 bytes of letters, digits and ".-_:" (a DNS name, an IPv4
 * or an IPv6 literal); on the command line an IPv6 HOST goes in brackets
 * ([::1]) and is kept without them.
 */
#ifndef PUNCH_FORWARD_SPEC_H
#define PUNCH_FORWARD_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

enum {
	FORWARD_HOST_MAX = ADDR_HOST_MAX,
	FORWARD_ALLOW_MAX = 16,   /* -allow, like -L */
};

/* A HOST and a PORT (1-65535). */
struct forward_target {
	char host[FORWARD_HOST_MAX + 1];
	uint16_t port;
};

/* -L LPORT:HOST:PORT. */
struct forward_spec {
	uint16_t lport;           /* 0: let the kernel choose */
	char host[FORWARD_HOST_MAX + 1];
	uint16_t port;
};

/* 0, or -1 with a sentence in why. */
int forward_spec_parse(const char *s, struct forward_spec *out, char *why,
                       size_t len);
/* -allow HOST:PORT: 0, or -1 with a sentence in why. */
int forward_allow_parse(const char *s, struct forward_target *out, char *why,
                        size_t len);
/* The rest of the peer's request line, "HOST PORT" (n bytes, no NUL
 * needed): 0, or -1 if it is not one. */
int forward_request_parse(const char *s, size_t n, struct forward_target *out);
/* Is t one of the n allowed targets?  The host is compared as written,
 * ignoring case (as sshd's PermitOpen does: no name is resolved). */
int forward_allowed(const struct forward_target *allow, int n,
                    const struct forward_target *t);
/* Is this NUL-terminated HOST one we put on the wire (addr_host_ok)? */
int forward_host_ok(const char *host);

#endif
