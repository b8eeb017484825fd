/*
 * The STUN Binding service, as a pure function: a request and the address it
 * came from go in, a response and where to send it come out.  server.c owns
 * the sockets; this file owns the protocol, so tests can drive it directly.
 *
 * RFC 5780 mode uses up to four local addresses, indexed by two bits:
 *
 *	index 0  primary IP,   primary port    (A1, P1)
 *	index 1  primary IP,   alternate port  (A1, P2)
 *	index 2  alternate IP, primary port    (A2, P1)
 *	index 3  alternate IP, alternate port  (A2, P2)
 *
 * so CHANGE-REQUEST's "change IP" flips bit 1 and "change port" flips bit 0.
 */
#ifndef PUNCH_BINDING_H
#define PUNCH_BINDING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	BINDING_SOCKETS_MAX = 4,
	/* Amplification bound: a response is never more than this many times
	 * the size of the request that caused it.  Optional attributes are
	 * left out, least useful first, until it fits. */
	BINDING_AMPLIFICATION_MAX = 4,
	BINDING_RESPONSE_MAX = 548,
};

enum binding_verdict {
	BINDING_DROP = -1,   /* malformed: count it, send nothing */
	BINDING_IGNORE = 0,  /* valid, but nothing to answer (not a request) */
	BINDING_REPLY = 1,   /* send reply->len bytes */
};

struct binding_service {
	/* Local addresses by index (see above); have[i] says which exist. */
	struct sockaddr_storage local[BINDING_SOCKETS_MAX];
	int have[BINDING_SOCKETS_MAX];
	int rfc5780;          /* an alternate address is configured */
	const char *software; /* SOFTWARE value, or NULL */
};

struct binding_reply {
	int sock;     /* index of the socket to send from */
	struct sockaddr_storage to; /* destination */
	size_t len;
	int is_error;               /* an error response (400, 420) */
};

/* Handle one datagram that arrived on socket index sock from `from`.  On
 * BINDING_REPLY, out[0..reply->len) holds the response.  The reason for a
 * drop is returned in *why when why is not NULL. */
int binding_handle(const struct binding_service *svc, int sock,
                   const uint8_t *req, size_t len, const struct sockaddr *from,
                   uint8_t *out, size_t cap, struct binding_reply *reply,
                   const char **why);

#endif
