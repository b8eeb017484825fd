/*
 * What `punch server` keeps across restarts, in its state directory
 * (-state DIR; /var/lib/punch for root, else $XDG_STATE_HOME/punch or
 * ~/.local/state/punch; created 0700):
 *
 *	server_ed25519.pem  the server's signing key (PKCS #8, mode 0600),
 *	                    made on first start
 *	id_bindings         which key holds which id (idbind.h's lines),
 *	                    rewritten whole through a temporary file and
 *	                    rename(), so a crash leaves the old or the new one
 */
#ifndef PUNCH_SERVER_STATE_H
#define PUNCH_SERVER_STATE_H

#include <stddef.h>

#include "idbind.h"
#include "sign.h"

enum {
	STATE_PATH_MAX = 4096,
	STATE_SAVE_EVERY_MS = 10000, /* bindings are saved at most this often */
};

/* The default folder.  Returns 0, or -1 if there is none (no HOME). */
int state_dir_default(char *out, size_t len);
/* Create the folder (mode 0700 for its last part).  0, or -1 with err. */
int state_dir_make(const char *dir, char *err, size_t errlen);
/* Load the server key, making it first if there is none (*created = 1).
 * Returns 0, or -1 with a sentence in err. */
int state_key_load(const char *dir, struct sign_key *k, int *created,
                   char *err, size_t errlen);
/* Load id_bindings into t.  Returns the number loaded, or -1 with err. */
long state_bindings_load(const char *dir, struct idbind *t, char *err,
                         size_t errlen);
/* Write t to id_bindings.  Returns 0, or -1 with err. */
int state_bindings_save(const char *dir, const struct idbind *t, char *err,
                        size_t errlen);

#endif
