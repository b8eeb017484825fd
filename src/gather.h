/*
 * Candidate gathering: the host addresses of every interface that is up,
 * IPv4 and IPv6 (RFC 8445 5.1.1.1).  The server-reflexive candidate comes
 * from the rendezvous client's Binding request.
 */
#ifndef PUNCH_GATHER_H
#define PUNCH_GATHER_H

#include <stddef.h>
#include <stdint.h>

#include "punch_attr.h"

/* Host candidates of `family` (AF_INET or AF_INET6) with port `port`,
 * skipping loopback, link-local and interfaces that are down.  Returns the
 * count written to out (at most max). */
size_t gather_host(int family, uint16_t port, struct punch_candidate *out,
                   size_t max);

/* The local address the kernel would use to reach `to`, with `port`. */
int gather_source_for(const struct sockaddr *to, uint16_t port,
                      struct sockaddr_storage *out);

#endif
