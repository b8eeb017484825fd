/*
 * Pairing codes and CPace: a one-time code both users type lets two peers
 * prove to each other that the keys on this very link are theirs.
 *
 * The code is "N-WORD-WORD": N from 0 to 999 and two words from a list of
 * 256 (pake.c), 1000 * 256 * 256 = 65,536,000 codes, about 26 bits.  That
 * is plenty for a PAKE: nothing seen on the wire lets anyone test a guess
 * offline, and each run of the exchange lets an active attacker test one
 * guess (about 1 in 65 million), after which the run fails.
 *
 * The PAKE is CPace (draft-irtf-cfrg-cpace), cipher suite
 * CPACE-RISTR255-SHA512, in the initiator-responder setting (the QUIC
 * client is A, the initiator), with the explicit key confirmation of the
 * draft's "Key confirmation" section.  Everything here is pure: no I/O, no
 * link; libsodium gives the group (ristretto255) and the hashes.
 *
 * The pairing stream, as each side writes it (docs/protocol.md):
 *
 *	"punch/1 pair CPACE-RISTR255-SHA512\n"   35 bytes
 *	Y                                        32 bytes, its CPace share
 *	T                                        64 bytes, its confirmation
 *	FIN                                      once it has checked the peer's T
 */
#ifndef PUNCH_PAKE_H
#define PUNCH_PAKE_H

#include <stddef.h>
#include <stdint.h>

enum {
	PAKE_CODE_NUMBERS = 1000,
	PAKE_CODE_WORDS = 256,
	PAKE_CODE_MAX = 32,        /* a canonical code and its NUL */
	PAKE_CODE_INPUT_MAX = 64,  /* longer input is not a code */
	PAKE_SHARE_LEN = 32,       /* a ristretto255 element */
	PAKE_SCALAR_LEN = 32,
	PAKE_HASH_LEN = 64,        /* SHA-512 */
	PAKE_MAC_LEN = 64,         /* HMAC-SHA-512 */
	PAKE_SID_LEN = 32,         /* punch's sid: a TLS exporter */
	PAKE_SID_MAX = 64,
	PAKE_CI_MAX = 128,
	PAKE_AD_MAX = 32,
	PAKE_FP_LEN = 32,          /* an identity key fingerprint */
};

/* ---- codes -------------------------------------------------------------- */

/* A fresh random code, canonical ("7-amber-falcon"). */
void pake_code_new(char out[PAKE_CODE_MAX]);
/* Parse a code as a user types it (any case, leading zeros); writes the
 * canonical form.  0, or -1 if it is not a code. */
int pake_code_parse(const char *s, char out[PAKE_CODE_MAX]);
/* Word i of the list (i < PAKE_CODE_WORDS), for tests. */
const char *pake_code_word(unsigned i);
/* The code for number n and words w1, w2 (tests, and pake_code_new). */
void pake_code_make(unsigned n, unsigned w1, unsigned w2,
                    char out[PAKE_CODE_MAX]);

/* ---- CPace ---------------------------------------------------------------- */

/* The channel identifier punch uses: lv_cat(fp_client, fp_server), the two
 * identity key fingerprints as each side sees them, the QUIC client's
 * first.  Returns its length. */
size_t pake_ci(const uint8_t fp_client[PAKE_FP_LEN],
               const uint8_t fp_server[PAKE_FP_LEN], uint8_t out[PAKE_CI_MAX]);

struct pake {
	int initiator;                    /* A: its share comes first */
	uint8_t y[PAKE_SCALAR_LEN];       /* our secret scalar */
	uint8_t own[PAKE_SHARE_LEN];      /* our share */
	uint8_t peer[PAKE_SHARE_LEN];
	uint8_t sid[PAKE_SID_MAX];
	size_t sid_len;
	uint8_t ad_own[PAKE_AD_MAX], ad_peer[PAKE_AD_MAX];
	size_t ad_own_len, ad_peer_len;
	uint8_t isk[PAKE_HASH_LEN];
	uint8_t mac_key[PAKE_HASH_LEN];
	int have_isk;
};

/* G.calculate_generator: the encoded generator for these inputs.  0, or -1
 * if an input is too long. */
int pake_generator(const uint8_t *prs, size_t prs_len, const uint8_t *ci,
                   size_t ci_len, const uint8_t *sid, size_t sid_len,
                   uint8_t g[PAKE_SHARE_LEN]);

/* Start: pick a scalar and compute our share into p->own.  code is the
 * PRS (punch passes the canonical code); sid at most PAKE_SID_MAX bytes; ad
 * our associated data (punch sends none); y NULL for a random scalar
 * (tests pass the draft's).  0, or -1. */
int pake_start(struct pake *p, int initiator, const char *code,
               const uint8_t *ci, size_t ci_len, const uint8_t *sid,
               size_t sid_len, const uint8_t *ad, size_t ad_len,
               const uint8_t *y);
/* The peer's share arrived: K, ISK and the MAC key.  -1 if the share does
 * not decode or K is the identity (the draft says abort), or if it is our
 * own share reflected. */
int pake_finish(struct pake *p, const uint8_t peer[PAKE_SHARE_LEN],
                const uint8_t *ad_peer, size_t ad_peer_len);
/* Our confirmation: MAC(mac_key, lv_cat(own share, own AD)). */
void pake_mac_own(const struct pake *p, uint8_t mac[PAKE_MAC_LEN]);
/* 0 if the peer's confirmation is right (compared in constant time). */
int pake_mac_check(const struct pake *p, const uint8_t mac[PAKE_MAC_LEN]);
void pake_wipe(struct pake *p);

/* ---- the pairing stream -------------------------------------------------- */

#define PAKE_STREAM_HEADER "punch/1 pair CPACE-RISTR255-SHA512\n"
enum {
	PAKE_HEADER_LEN = sizeof(PAKE_STREAM_HEADER) - 1,
	PAKE_STREAM_LEN = PAKE_HEADER_LEN + PAKE_SHARE_LEN + PAKE_MAC_LEN,
	PAKE_PREFIX_LEN = 13,      /* "punch/1 pair ": any pairing method */
};

/* What has arrived on the peer's pairing stream. */
struct pake_rx {
	uint8_t buf[PAKE_STREAM_LEN];
	size_t len;
	int fin;
};

enum pake_rx_result {
	PAKE_RX_BAD = -1,          /* not a pairing stream, or malformed */
	PAKE_RX_MORE = 0,          /* fine so far */
};

/* Feed stream data (and the FIN).  Returns PAKE_RX_BAD for a wrong header,
 * bytes past the end, or a FIN before the whole message; else
 * PAKE_RX_MORE.  Pure and bounds-checked. */
int pake_rx_feed(struct pake_rx *rx, const uint8_t *data, size_t len,
                 int fin);
/* The share, once it is all there; else NULL. */
const uint8_t *pake_rx_share(const struct pake_rx *rx);
/* The confirmation, once it is all there; else NULL. */
const uint8_t *pake_rx_mac(const struct pake_rx *rx);

/* Could bytes [off, off+len) of a stream belong to "punch/1 pair "?  1 if
 * they still match that prefix, 0 if not (for a side without a code, to
 * recognise a peer that wants to pair). */
int pake_prefix_match(size_t off, const uint8_t *data, size_t len);

#endif
