/*
 * CPace on ristretto255 with SHA-512 (draft-irtf-cfrg-cpace, suite
 * CPACE-RISTR255-SHA512), pairing codes, and the pairing stream's parser.
 * libsodium does the group and the hashes; this file only strings them
 * together as the draft says.  Section names below are the draft's.
 */
#include "pake.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

enum {
	HASH_BLOCK = 128,          /* H.s_in_bytes for SHA-512 */
	LEB128_MAX = 10,
	WORD_MAX = 16,
	NUMBER_DIGITS_MAX = 3,
};

/* G_Ristretto255.DSI */
static const char dsi[] = "CPaceRistretto255";
static const char dsi_isk[] = "CPaceRistretto255_ISK";
static const char mac_label[] = "CPaceMac";

/* The code's words: 256 short, common, distinct English words, sorted.
 * Each is 3 to 8 lowercase letters; the unit test checks all of that. */
static const char *const words[PAKE_CODE_WORDS] = {
	"acorn", "alpine", "amber", "anchor", "apple", "arrow", "aspen", "atlas",
	"attic", "autumn", "badge", "bagel", "bamboo", "banjo", "barley", "basil",
	"beacon", "berry", "bison", "blossom", "breeze", "bridge", "bronze", "bucket",
	"butter", "cabin", "cactus", "camel", "canal", "candle", "canyon", "carbon",
	"cedar", "cello", "cherry", "circle", "clover", "cobalt", "comet", "copper",
	"coral", "cotton", "crane", "cricket", "crystal", "daisy", "delta", "desert",
	"dingo", "dolphin", "donkey", "dragon", "drum", "dune", "eagle", "echo",
	"elbow", "ember", "emerald", "engine", "fabric", "falcon", "feather", "fennel",
	"ferry", "fiddle", "fig", "flame", "flint", "forest", "fossil", "fox",
	"frost", "galaxy", "garden", "garlic", "gecko", "ginger", "glacier", "globe",
	"golden", "granite", "grape", "gravel", "guitar", "hammer", "harbor", "harvest",
	"hazel", "heron", "hickory", "honey", "horizon", "hornet", "igloo", "indigo",
	"iris", "island", "ivory", "ivy", "jacket", "jaguar", "jasmine", "jelly",
	"jewel", "jigsaw", "jungle", "juniper", "kayak", "kernel", "kettle", "kiwi",
	"koala", "ladder", "lagoon", "lantern", "laser", "lemon", "lentil", "lily",
	"linen", "lion", "lizard", "lobster", "locket", "lotus", "lumber", "magnet",
	"mango", "maple", "marble", "meadow", "melon", "meteor", "mint", "mirror",
	"mitten", "monkey", "mosaic", "moss", "muffin", "mustard", "napkin", "nectar",
	"needle", "nickel", "noodle", "nutmeg", "oasis", "ocean", "olive", "onion",
	"opal", "orange", "orbit", "orchid", "otter", "oyster", "paddle", "palm",
	"panda", "paper", "parrot", "peach", "pebble", "pepper", "piano", "pillow",
	"pine", "planet", "plum", "pocket", "pony", "poppy", "potato", "pretzel",
	"prism", "puffin", "pumpkin", "puzzle", "quail", "quartz", "quill", "rabbit",
	"radar", "radish", "raven", "reef", "ribbon", "river", "robin", "rocket",
	"ruby", "saddle", "saffron", "salmon", "satin", "scarf", "shadow", "shell",
	"silver", "sketch", "socket", "spider", "spruce", "squid", "starling", "stone",
	"storm", "sugar", "summer", "sunset", "swan", "table", "tango", "temple",
	"thistle", "thunder", "tiger", "timber", "toast", "tomato", "topaz", "torch",
	"tulip", "tundra", "turnip", "turtle", "tuxedo", "umber", "umbrella", "unicorn",
	"urchin", "valley", "vanilla", "velvet", "violet", "violin", "volcano", "voyage",
	"waffle", "wagon", "walnut", "walrus", "willow", "window", "winter", "wizard",
	"wombat", "yacht", "yarrow", "yogurt", "zebra", "zephyr", "zinc", "zipper"
};

/* ---- codes -------------------------------------------------------------- */

const char *pake_code_word(unsigned i)
{
	return words[i % PAKE_CODE_WORDS];
}

void pake_code_make(unsigned n, unsigned w1, unsigned w2,
                    char out[PAKE_CODE_MAX])
{
	snprintf(out, PAKE_CODE_MAX, "%u-%s-%s", n % PAKE_CODE_NUMBERS,
	         words[w1 % PAKE_CODE_WORDS], words[w2 % PAKE_CODE_WORDS]);
}

void pake_code_new(char out[PAKE_CODE_MAX])
{
	/* sodium_init() is idempotent; before it, randombytes still works
	 * but may open /dev/urandom lazily. */
	if (sodium_init() < 0)
		sodium_misuse();
	pake_code_make(randombytes_uniform(PAKE_CODE_NUMBERS),
	               randombytes_uniform(PAKE_CODE_WORDS),
	               randombytes_uniform(PAKE_CODE_WORDS), out);
}

static int word_find(const char *w)
{
	for (int i = 0; i < PAKE_CODE_WORDS; i++)
		if (!strcmp(words[i], w))
			return i;
	return -1;
}

/* A word ending at '-' (want_dash) or at the end: its index, or -1. */
static int word_parse(const char **sp, int want_dash)
{
	char w[WORD_MAX];
	size_t n = 0;
	const char *s = *sp;

	for (; *s && *s != '-'; s++) {
		if (n == sizeof(w) - 1 || !isalpha((unsigned char)*s))
			return -1;
		w[n++] = (char)tolower((unsigned char)*s);
	}
	w[n] = '\0';
	if (want_dash ? *s != '-' : *s != '\0')
		return -1;
	*sp = want_dash ? s + 1 : s;
	return word_find(w);
}

int pake_code_parse(const char *s, char out[PAKE_CODE_MAX])
{
	unsigned n = 0;
	int digits = 0, w1, w2;

	if (!s || strnlen(s, PAKE_CODE_INPUT_MAX + 1) > PAKE_CODE_INPUT_MAX)
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (++digits > NUMBER_DIGITS_MAX)
			return -1;
		n = n * 10 + (unsigned)(*s - '0');
	}
	if (!digits || *s++ != '-')
		return -1;
	if ((w1 = word_parse(&s, 1)) < 0 || (w2 = word_parse(&s, 0)) < 0)
		return -1;
	pake_code_make(n, (unsigned)w1, (unsigned)w2, out);
	return 0;
}

/* ---- lv_cat into a hash ---------------------------------------------------- */

/* prepend_len: LEB128, 7 bits a byte, least significant first. */
static size_t leb128(size_t v, uint8_t out[LEB128_MAX])
{
	size_t n = 0;

	do {
		out[n] = (uint8_t)(v & 0x7F);
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v && n < LEB128_MAX);
	return n;
}

/* H.update(prepend_len(d)) */
static void hash_lv(crypto_hash_sha512_state *h, const void *d, size_t n)
{
	uint8_t len[LEB128_MAX];

	crypto_hash_sha512_update(h, len, leb128(n, len));
	if (n)
		crypto_hash_sha512_update(h, d, n);
}

static void mac_lv(crypto_auth_hmacsha512_state *m, const void *d, size_t n)
{
	uint8_t len[LEB128_MAX];

	crypto_auth_hmacsha512_update(m, len, leb128(n, len));
	if (n)
		crypto_auth_hmacsha512_update(m, d, n);
}

size_t pake_ci(const uint8_t fp_client[PAKE_FP_LEN],
               const uint8_t fp_server[PAKE_FP_LEN], uint8_t out[PAKE_CI_MAX])
{
	/* lv_cat(fp_client, fp_server): 32 < 128, so each length is one
	 * byte. */
	out[0] = PAKE_FP_LEN;
	memcpy(out + 1, fp_client, PAKE_FP_LEN);
	out[1 + PAKE_FP_LEN] = PAKE_FP_LEN;
	memcpy(out + 2 + PAKE_FP_LEN, fp_server, PAKE_FP_LEN);
	return 2 + 2 * PAKE_FP_LEN;
}

/* ---- CPace ------------------------------------------------------------------ */

/* "Common function for computing generators" and G_Ristretto255's
 * calculate_generator: hash generator_string(DSI, PRS, CI, sid, 128) =
 * lv_cat(DSI, PRS, zero_bytes(len_zpad), CI, sid) to 64 bytes and map that
 * to the group with the one-way map of RFC 9496 4.3.4. */
int pake_generator(const uint8_t *prs, size_t prs_len, const uint8_t *ci,
                   size_t ci_len, const uint8_t *sid, size_t sid_len,
                   uint8_t g[PAKE_SHARE_LEN])
{
	static const uint8_t zeros[HASH_BLOCK];
	crypto_hash_sha512_state h;
	uint8_t hash[PAKE_HASH_LEN], tmp[LEB128_MAX];
	/* len_zpad = MAX(0, 128 - 1 - len(prepend_len(PRS)) -
	 * len(prepend_len(DSI))): DSI, PRS and the padding fill the first
	 * block, whatever the code's length. */
	size_t head = 1 + leb128(prs_len, tmp) + prs_len +
	              leb128(sizeof(dsi) - 1, tmp) + sizeof(dsi) - 1;
	size_t zpad = head < HASH_BLOCK ? HASH_BLOCK - head : 0;

	if (sodium_init() < 0)
		return -1;
	crypto_hash_sha512_init(&h);
	hash_lv(&h, dsi, sizeof(dsi) - 1);
	hash_lv(&h, prs, prs_len);
	hash_lv(&h, zeros, zpad);
	hash_lv(&h, ci, ci_len);
	hash_lv(&h, sid, sid_len);
	crypto_hash_sha512_final(&h, hash);
	crypto_core_ristretto255_from_hash(g, hash);
	sodium_memzero(hash, sizeof(hash));
	sodium_memzero(&h, sizeof(h));
	return 0;
}

int pake_start(struct pake *p, int initiator, const char *code,
               const uint8_t *ci, size_t ci_len, const uint8_t *sid,
               size_t sid_len, const uint8_t *ad, size_t ad_len,
               const uint8_t *y)
{
	uint8_t g[PAKE_SHARE_LEN];
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (sid_len > sizeof(p->sid) || ad_len > sizeof(p->ad_own) ||
	    sodium_init() < 0)
		return -1;
	p->initiator = initiator;
	memcpy(p->sid, sid, sid_len);
	p->sid_len = sid_len;
	if (ad_len)
		memcpy(p->ad_own, ad, ad_len);
	p->ad_own_len = ad_len;
	/* G.sample_scalar: uniform in [1, order-1] (the draft allows this
	 * instead of masking random bytes). */
	if (y)
		memcpy(p->y, y, sizeof(p->y));
	else
		crypto_core_ristretto255_scalar_random(p->y);
	/* The generator depends on the code: it is as secret as the code. */
	if (pake_generator((const uint8_t *)code, strlen(code), ci, ci_len,
	                   sid, sid_len, g) == 0 &&
	    crypto_scalarmult_ristretto255(p->own, p->y, g) == 0)
		rc = 0;
	sodium_memzero(g, sizeof(g));
	if (rc)
		pake_wipe(p);
	return rc;
}

/* ISK = H.hash(lv_cat(DSI || "_ISK", sid, K) || transcript_ir(Ya, ADa, Yb,
 * ADb)), transcript_ir = lv_cat(Ya, ADa) || lv_cat(Yb, ADb); then the key
 * confirmation's mac_key = H.hash("CPaceMac" || sid || ISK). */
static void derive(struct pake *p, const uint8_t k[PAKE_SHARE_LEN])
{
	const uint8_t *ya = p->initiator ? p->own : p->peer;
	const uint8_t *yb = p->initiator ? p->peer : p->own;
	const uint8_t *ada = p->initiator ? p->ad_own : p->ad_peer;
	const uint8_t *adb = p->initiator ? p->ad_peer : p->ad_own;
	size_t ada_len = p->initiator ? p->ad_own_len : p->ad_peer_len;
	size_t adb_len = p->initiator ? p->ad_peer_len : p->ad_own_len;
	crypto_hash_sha512_state h;

	crypto_hash_sha512_init(&h);
	hash_lv(&h, dsi_isk, sizeof(dsi_isk) - 1);
	hash_lv(&h, p->sid, p->sid_len);
	hash_lv(&h, k, PAKE_SHARE_LEN);
	hash_lv(&h, ya, PAKE_SHARE_LEN);
	hash_lv(&h, ada, ada_len);
	hash_lv(&h, yb, PAKE_SHARE_LEN);
	hash_lv(&h, adb, adb_len);
	crypto_hash_sha512_final(&h, p->isk);

	crypto_hash_sha512_init(&h);
	crypto_hash_sha512_update(&h, (const uint8_t *)mac_label,
	                          sizeof(mac_label) - 1);
	crypto_hash_sha512_update(&h, p->sid, p->sid_len);
	crypto_hash_sha512_update(&h, p->isk, sizeof(p->isk));
	crypto_hash_sha512_final(&h, p->mac_key);
	sodium_memzero(&h, sizeof(h));
	p->have_isk = 1;
}

int pake_finish(struct pake *p, const uint8_t peer[PAKE_SHARE_LEN],
                const uint8_t *ad_peer, size_t ad_peer_len)
{
	uint8_t k[PAKE_SHARE_LEN];
	int rc = -1;

	if (ad_peer_len > sizeof(p->ad_peer) || p->have_isk)
		return -1;
	/* Our own share sent back: the confirmations would then cover the
	 * same bytes under the same key, and whoever reflected the share
	 * could reflect our confirmation too without knowing the code.
	 * (Party-specific ADa and ADb would also prevent this; punch sends
	 * none.) */
	if (sodium_memcmp(peer, p->own, PAKE_SHARE_LEN) == 0)
		return -1;
	/* G.scalar_mult_vfy: libsodium refuses an encoding that does not
	 * decode (non-canonical, not on the group) and a result that is the
	 * identity; the draft says abort on both. */
	if (crypto_scalarmult_ristretto255(k, p->y, peer) != 0)
		goto out;
	memcpy(p->peer, peer, PAKE_SHARE_LEN);
	if (ad_peer_len)
		memcpy(p->ad_peer, ad_peer, ad_peer_len);
	p->ad_peer_len = ad_peer_len;
	derive(p, k);
	/* The scalar is not needed again: ya and yb MUST NOT be reused. */
	sodium_memzero(p->y, sizeof(p->y));
	rc = 0;
out:
	sodium_memzero(k, sizeof(k));
	return rc;
}

/* T = MAC(mac_key, lv_cat(Y, AD)) with HMAC-SHA-512 (RFC 2104). */
static void mac_of(const struct pake *p, const uint8_t *y, const uint8_t *ad,
                   size_t ad_len, uint8_t mac[PAKE_MAC_LEN])
{
	crypto_auth_hmacsha512_state m;

	crypto_auth_hmacsha512_init(&m, p->mac_key, sizeof(p->mac_key));
	mac_lv(&m, y, PAKE_SHARE_LEN);
	mac_lv(&m, ad, ad_len);
	crypto_auth_hmacsha512_final(&m, mac);
	sodium_memzero(&m, sizeof(m));
}

void pake_mac_own(const struct pake *p, uint8_t mac[PAKE_MAC_LEN])
{
	mac_of(p, p->own, p->ad_own, p->ad_own_len, mac);
}

int pake_mac_check(const struct pake *p, const uint8_t mac[PAKE_MAC_LEN])
{
	uint8_t want[PAKE_MAC_LEN];
	int rc;

	if (!p->have_isk)
		return -1;
	mac_of(p, p->peer, p->ad_peer, p->ad_peer_len, want);
	rc = crypto_verify_64(want, mac);
	sodium_memzero(want, sizeof(want));
	return rc == 0 ? 0 : -1;
}

void pake_wipe(struct pake *p)
{
	sodium_memzero(p, sizeof(*p));
}

/* ---- the pairing stream -------------------------------------------------- */

int pake_rx_feed(struct pake_rx *rx, const uint8_t *data, size_t len,
                 int fin)
{
	size_t have;

	if (rx->fin)
		return len || fin ? PAKE_RX_BAD : PAKE_RX_MORE;
	if (len > sizeof(rx->buf) - rx->len)
		return PAKE_RX_BAD;
	if (len)
		memcpy(rx->buf + rx->len, data, len);
	rx->len += len;
	have = rx->len < PAKE_HEADER_LEN ? rx->len : PAKE_HEADER_LEN;
	if (memcmp(rx->buf, PAKE_STREAM_HEADER, have))
		return PAKE_RX_BAD;
	if (fin) {
		rx->fin = 1;
		if (rx->len != sizeof(rx->buf))
			return PAKE_RX_BAD;
	}
	return PAKE_RX_MORE;
}

const uint8_t *pake_rx_share(const struct pake_rx *rx)
{
	return rx->len >= PAKE_HEADER_LEN + PAKE_SHARE_LEN ?
	               rx->buf + PAKE_HEADER_LEN :
	               NULL;
}

const uint8_t *pake_rx_mac(const struct pake_rx *rx)
{
	return rx->len == PAKE_STREAM_LEN ?
	               rx->buf + PAKE_HEADER_LEN + PAKE_SHARE_LEN :
	               NULL;
}

int pake_prefix_match(size_t off, const uint8_t *data, size_t len)
{
	static const char prefix[PAKE_PREFIX_LEN + 1] = "punch/1 pair ";

	for (size_t i = 0; i < len && off + i < PAKE_PREFIX_LEN; i++)
		if (data[i] != (uint8_t)prefix[off + i])
			return 0;
	return 1;
}
