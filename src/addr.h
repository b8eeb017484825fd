/*
 * Socket address helpers: parsing "HOST:PORT" as users type it, printing
 * addresses the same way, and comparing them.  No sockets are opened here.
 */
#ifndef PUNCH_ADDR_H
#define PUNCH_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	ADDR_HOST_MAX = 253, /* a HOST: a DNS name, or an address literal */
	ADDR_STRLEN = 64, /* "[ffff:...:ffff%scope]:65535" fits */
};

/* Parse "1.2.3.4:5", "[::1]:5", "1.2.3.4" or ":5" (numeric only).  A part
 * that is missing is left as it was in *out, so callers can pre-fill
 * defaults; *out's family must then be set.  Returns 0 or -1. */
/* A HOST as punch takes one from its command line and from a peer: 1 to
 * ADDR_HOST_MAX letters, digits and ".-_:" (a DNS name, an IPv4 or an IPv6
 * literal), n bytes at h, no NUL needed.  1 or 0. */
int addr_host_ok(const char *h, size_t n);
/* A PORT of n decimal digits at s: 1-65535, or 0 too if allow_zero.  0
 * and *out, or -1. */
int addr_port_parse(const char *s, size_t n, int allow_zero, uint16_t *out);
int addr_parse(struct sockaddr_storage *out, const char *s);

/* Parse "HOST:PORT" where HOST may be a name; resolves with getaddrinfo.
 * Returns 0 or -1, with a reason in err (may be NULL). */
int addr_resolve(struct sockaddr_storage *out, const char *s, int family,
                 const char **err);

/* "1.2.3.4:5" or "[::1]:5" into buf (ADDR_STRLEN bytes is enough). */
const char *addr_str(const struct sockaddr *sa, char *buf, size_t len);

int addr_equal(const struct sockaddr *a, const struct sockaddr *b);
int addr_same_ip(const struct sockaddr *a, const struct sockaddr *b);
uint16_t addr_port(const struct sockaddr *sa);
void addr_set_port(struct sockaddr *sa, uint16_t port);
socklen_t addr_len(const struct sockaddr *sa);
int addr_is_any(const struct sockaddr *sa);

/* Where an address can lead, for deciding whether a candidate the peer
 * lists (or we gather) is worth a check.  Only ADDR_CLASS_ROUTABLE ones
 * are, unless both peers use a server on loopback (one machine): a check
 * to another class reaches this host, this link or a group, never a peer
 * across the internet, and a hostile PEER-INFO could aim us at local
 * services. */
enum addr_class {
	ADDR_CLASS_ROUTABLE = 0,  /* public or private unicast */
	ADDR_CLASS_UNSPECIFIED,   /* 0.0.0.0/8 (RFC 1122 3.2.1.3), :: */
	ADDR_CLASS_LOOPBACK,      /* 127.0.0.0/8, ::1 */
	ADDR_CLASS_LINK_LOCAL,    /* 169.254.0.0/16 (RFC 3927), fe80::/10 */
	ADDR_CLASS_MULTICAST,     /* 224.0.0.0/4, ff00::/8, and 255.255.255.255 */
	ADDR_CLASS_OTHER,         /* not IPv4 or IPv6 */
};

/* The class of sa's address; an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * is classed by its IPv4 address, which is where it leads.  Pure. */
enum addr_class addr_classify(const struct sockaddr *sa);
/* A private network's address: RFC 1918, RFC 6598 (carrier-grade NAT's
 * 100.64/10), RFC 4193 (fc00::/7), IPv4-mapped ones included. */
int addr_is_private(const struct sockaddr *sa);
const char *addr_class_str(enum addr_class c);

#endif
