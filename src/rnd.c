#include "rnd.h"

#include <gnutls/crypto.h>
#include <stdlib.h>

#include "log.h"

void rnd_nonce(void *buf, size_t len)
{
	if (gnutls_rnd(GNUTLS_RND_NONCE, buf, len)) {
		log_error("the system's random number generator failed");
		abort();
	}
}

uint32_t rnd_u32(void)
{
	uint32_t r;

	rnd_nonce(&r, sizeof(r));
	return r;
}
