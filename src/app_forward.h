/*
 * punch forward: TCP port forwarding over the secure link (app_forward.c).
 *
 * On the wire, one bidirectional stream per TCP connection:
 *
 *   opener    -> "punch/1 forward HOST PORT\n", then the connection's bytes, FIN
 *   other end -> "ok\n" once connected to HOST:PORT, then the bytes back, FIN
 *                or "bad connect REASON\n" and FIN if it could not connect
 *
 * and, from each side as the link comes up, a unidirectional stream
 * "punch/1 forward\n" + FIN that says which command runs there.
 */
#ifndef PUNCH_APP_FORWARD_H
#define PUNCH_APP_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"

enum {
	FORWARD_HOST_MAX = 253,   /* a DNS name, or an address literal */
};

/* -L LPORT:HOST:PORT.  HOST is a name or an address; an IPv6 address goes
 * in brackets ([::1]) and is kept without them. */
struct forward_spec {
	uint16_t lport;           /* 0: let the kernel choose */
	char host[FORWARD_HOST_MAX + 1];
	uint16_t port;
};

/* 0, or -1 with a sentence in why. */
int forward_spec_parse(const char *s, struct forward_spec *out, char *why,
                       size_t len);
/* A port of n decimal digits at s (1-65535, or 0 too if allow_zero): 0 or -1. */
int forward_port_parse(const char *s, size_t n, int allow_zero, uint16_t *out);
/* Is this a HOST we put on the wire: 1-253 bytes of letters, digits and
 * ".-_:" (names, IPv4 and IPv6 literals)? */
int forward_host_ok(const char *host);

/* Before connecting: are the -L specs well formed?  0, or an exit status
 * with a sentence in why. */
int app_forward_check(const struct app_args *args, char *why, size_t len);

#endif
