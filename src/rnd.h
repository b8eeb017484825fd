/*
 * Random bits that key nothing: STUN transaction ids, retransmission
 * jitter, ICE tie-breakers.  Keys, passwords and anything that keys a MAC
 * take GNUTLS_RND_RANDOM or GNUTLS_RND_KEY where they are made, with the
 * error handled there.
 *
 * A failing generator is fatal here: a predictable transaction id would
 * let an off-path sender answer our requests, and there is no useful way
 * to go on without one.
 */
#ifndef PUNCH_RND_H
#define PUNCH_RND_H

#include <stddef.h>
#include <stdint.h>

void rnd_nonce(void *buf, size_t len);
uint32_t rnd_u32(void);

#endif
