/*
 * A machine's identity: an Ed25519 key kept in $XDG_CONFIG_HOME/punch/
 * (mode 0600, created on first use), a self-signed certificate made from it
 * for each run, and its fingerprint, the SHA-256 of the public key
 * (SubjectPublicKeyInfo), printed as "SHA256:" and unpadded base64, as
 * OpenSSH prints key fingerprints.
 *
 * known_peers, in the same folder, remembers the fingerprint each peer id
 * had the first time (trust on first use, as SSH's known_hosts):
 *
 *	# comment
 *	bob SHA256:Wm4Zk...
 */
#ifndef PUNCH_IDENTITY_H
#define PUNCH_IDENTITY_H

#include <stddef.h>
#include <stdint.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

enum {
	IDENTITY_FP_LEN = 32,
	IDENTITY_FP_STRLEN = 7 + 43 + 1, /* "SHA256:" + base64(32) + NUL */
	IDENTITY_PATH_MAX = 4096,
};

struct identity {
	gnutls_x509_privkey_t key;
	gnutls_x509_crt_t crt;
	uint8_t fp[IDENTITY_FP_LEN];
	char dir[IDENTITY_PATH_MAX];
	int created;             /* the key was made by this load */
};

/* Load the key, creating it (and the folder) if there is none.  Returns 0,
 * or -1 with a sentence in err (errlen bytes). */
int identity_load(struct identity *id, char *err, size_t errlen);
void identity_free(struct identity *id);

/* The folder: $XDG_CONFIG_HOME/punch, or $HOME/.config/punch. */
int identity_dir(char *out, size_t len);

void identity_fp_str(const uint8_t fp[IDENTITY_FP_LEN],
                     char out[IDENTITY_FP_STRLEN]);
/* Parse "SHA256:base64" (or the bare base64).  Returns 0 or -1. */
int identity_fp_parse(const char *s, uint8_t fp[IDENTITY_FP_LEN]);
/* The fingerprint of the key in a DER certificate.  Returns 0 or -1. */
int identity_fp_of_cert(const gnutls_datum_t *der, uint8_t fp[IDENTITY_FP_LEN]);

/* The short code both sides read aloud and compare: 16 digits (about 53
 * bits) as "1234-5678-9012-3456", from SHA-256 over a TLS exporter of the
 * link and both key fingerprints, the QUIC client's first.  A man in the
 * middle cannot choose it: docs/protocol.md gives the work factor. */
enum { IDENTITY_SHORT_CODE_LEN = 20 }; /* with its NUL */
void identity_short_code(const uint8_t exporter[32],
                         const uint8_t fp_client[IDENTITY_FP_LEN],
                         const uint8_t fp_server[IDENTITY_FP_LEN],
                         char out[IDENTITY_SHORT_CODE_LEN]);

enum known_result {
	KNOWN_NEW = 0,      /* no line for this id: remember it */
	KNOWN_MATCH = 1,
	KNOWN_MISMATCH = -1, /* *line says where the old key is */
	KNOWN_ERROR = -2,
};

/* Look peer_id up in dir/known_peers. */
int known_peers_check(const char *dir, const char *peer_id,
                      const uint8_t fp[IDENTITY_FP_LEN], int *line);
/* Append peer_id's fingerprint.  Returns 0 or -1. */
int known_peers_add(const char *dir, const char *peer_id,
                    const uint8_t fp[IDENTITY_FP_LEN]);
/* Pin peer_id to fp: its lines (if any) are replaced by one line with fp,
 * every other line kept; the file is rewritten whole and renamed into
 * place.  Returns 0 or -1. */
int known_peers_set(const char *dir, const char *peer_id,
                    const uint8_t fp[IDENTITY_FP_LEN]);

#endif
