#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum {
	KEY_FILE_MAX = 16384,
	KNOWN_FILE_MAX = 1 << 20,  /* known_peers: 1 MB is some 15,000 peers */
	CERT_DAYS = 3650,
};

static const char key_name[] = "id_ed25519.pem";
static const char known_name[] = "known_peers";
static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int identity_dir(char *out, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	int n;

	if (xdg && *xdg)
		n = snprintf(out, len, "%s/punch", xdg);
	else if (home && *home)
		n = snprintf(out, len, "%s/.config/punch", home);
	else
		return -1;
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* mkdir -p for the folder, the last part with mode 0700. */
static int make_dir(const char *dir)
{
	char tmp[IDENTITY_PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, 0700) && errno != EEXIST ? -1 : 0;
}

/* The whole of a small file into buf (the caller's, which it wipes):
 * no stdio, whose buffers would keep a copy of the key.  The length, or
 * -1 if it cannot be read, is empty or does not fit. */
static ssize_t read_small(const char *path, uint8_t *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	/* bounded: each pass reads at least a byte, or ends */
	while (len < cap) {
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (n < 0 || len == 0 || len == cap)
		return -1;
	return (ssize_t)len;
}

/* Make a key and write it to path.  0, 1 if another punch wrote one
 * first (use that), or -1 with err set. */
static int create_key(struct identity *id, const char *path, char *err,
                      size_t errlen)
{
	unsigned char pem[KEY_FILE_MAX];
	char tmp[IDENTITY_PATH_MAX + 64];
	size_t pem_len = sizeof(pem);
	int fd = -1, rc, ret = -1;

	if ((rc = gnutls_x509_privkey_generate(id->key, GNUTLS_PK_EDDSA_ED25519,
	                                       0, 0)) < 0 ||
	    (rc = gnutls_x509_privkey_export_pkcs8(id->key, GNUTLS_X509_FMT_PEM,
	                                           NULL, GNUTLS_PKCS_PLAIN, pem,
	                                           &pem_len)) < 0) {
		snprintf(err, errlen, "cannot make an Ed25519 key: %s",
		         gnutls_strerror(rc));
		goto out;
	}
	/* Written whole to a temporary file, then linked into place: link()
	 * never replaces a key that appeared meanwhile, and nobody reads a
	 * half-written one.  If another punch was first, use its key. */
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0 || fchmod(fd, 0600) || write(fd, pem, pem_len) != (ssize_t)pem_len ||
	    fsync(fd)) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	rc = link(tmp, path);
	unlink(tmp);
	if (rc && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	ret = rc ? 1 : 0;
	id->created = !rc;
out:
	if (fd >= 0)
		close(fd);
	gnutls_memset(pem, 0, sizeof(pem));
	return ret;
}

/* Import the key in path into id->key.  0, or -1 with err set. */
static int import_key(struct identity *id, const char *path, char *err,
                      size_t errlen)
{
	uint8_t buf[KEY_FILE_MAX];
	ssize_t n = read_small(path, buf, sizeof(buf));
	gnutls_datum_t pem = { buf, n > 0 ? (unsigned)n : 0 };
	int ret = -1;

	if (n < 0 || gnutls_x509_privkey_import2(id->key, &pem,
	                                         GNUTLS_X509_FMT_PEM, NULL,
	                                         GNUTLS_PKCS_PLAIN) < 0) {
		snprintf(err, errlen, "cannot read the key in %s", path);
		goto out;
	}
	if (gnutls_x509_privkey_get_pk_algorithm(id->key) !=
	    GNUTLS_PK_EDDSA_ED25519) {
		snprintf(err, errlen, "%s is not an Ed25519 key", path);
		goto out;
	}
	ret = 0;
out:
	gnutls_memset(buf, 0, sizeof(buf));
	return ret;
}

static int make_cert(struct identity *id, char *err, size_t errlen)
{
	uint8_t serial[16];
	time_t now = time(NULL);
	int rc;

	/* not a secret; only unique */
	if ((rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0) {
		snprintf(err, errlen, "cannot make a certificate: %s",
		         gnutls_strerror(rc));
		return -1;
	}
	serial[0] &= 0x7F; /* a positive number */
	if ((rc = gnutls_x509_crt_init(&id->crt)) < 0 ||
	    (rc = gnutls_x509_crt_set_version(id->crt, 3)) < 0 ||
	    (rc = gnutls_x509_crt_set_serial(id->crt, serial, sizeof(serial))) < 0 ||
	    (rc = gnutls_x509_crt_set_activation_time(id->crt, now - 86400)) < 0 ||
	    (rc = gnutls_x509_crt_set_expiration_time(
		     id->crt, now + (time_t)CERT_DAYS * 86400)) < 0 ||
	    (rc = gnutls_x509_crt_set_dn_by_oid(id->crt, GNUTLS_OID_X520_COMMON_NAME,
	                                        0, "punch", 5)) < 0 ||
	    (rc = gnutls_x509_crt_set_key(id->crt, id->key)) < 0 ||
	    (rc = gnutls_x509_crt_sign2(id->crt, id->crt, id->key,
	                                GNUTLS_DIG_UNKNOWN, 0)) < 0) {
		snprintf(err, errlen, "cannot make a certificate: %s",
		         gnutls_strerror(rc));
		return -1;
	}
	return 0;
}

int identity_load(struct identity *id, char *err, size_t errlen)
{
	char path[IDENTITY_PATH_MAX + 32];
	gnutls_datum_t der = { NULL, 0 };
	struct stat st;
	int rc;

	memset(id, 0, sizeof(*id));
	if (identity_dir(id->dir, sizeof(id->dir))) {
		snprintf(err, errlen, "no folder for the key: set HOME or XDG_CONFIG_HOME");
		return -1;
	}
	if (make_dir(id->dir)) {
		snprintf(err, errlen, "cannot create %s: %s", id->dir, strerror(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s/%s", id->dir, key_name);
	if (gnutls_x509_privkey_init(&id->key) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (stat(path, &st) != 0) {
		rc = create_key(id, path, err, errlen);
		if (rc < 0)
			goto fail;
		if (rc > 0 && stat(path, &st) != 0) {
			snprintf(err, errlen, "cannot read %s", path);
			goto fail;
		}
	}
	if (!id->created) {
		if (st.st_mode & 077) {
			snprintf(err, errlen, "%s is readable by others (mode %03o); run: chmod 600 %s",
			         path, st.st_mode & 0777, path);
			goto fail;
		}
		if (import_key(id, path, err, errlen))
			goto fail;
	}
	if (make_cert(id, err, errlen))
		goto fail;
	if ((rc = gnutls_x509_crt_export2(id->crt, GNUTLS_X509_FMT_DER, &der)) < 0 ||
	    identity_fp_of_cert(&der, id->fp)) {
		snprintf(err, errlen, "cannot fingerprint the key");
		gnutls_free(der.data);
		goto fail;
	}
	gnutls_free(der.data);
	return 0;
fail:
	identity_free(id);
	return -1;
}

void identity_free(struct identity *id)
{
	if (id->crt)
		gnutls_x509_crt_deinit(id->crt);
	if (id->key)
		gnutls_x509_privkey_deinit(id->key);
	id->crt = NULL;
	id->key = NULL;
}

int identity_fp_of_cert(const gnutls_datum_t *der, uint8_t fp[IDENTITY_FP_LEN])
{
	gnutls_x509_crt_t crt;
	gnutls_pubkey_t pub;
	gnutls_datum_t spki = { NULL, 0 };
	int rc = -1;

	if (gnutls_x509_crt_init(&crt) < 0)
		return -1;
	if (gnutls_pubkey_init(&pub) < 0) {
		gnutls_x509_crt_deinit(crt);
		return -1;
	}
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0 &&
	    gnutls_pubkey_import_x509(pub, crt, 0) >= 0 &&
	    gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &spki) >= 0 &&
	    gnutls_hash_fast(GNUTLS_DIG_SHA256, spki.data, spki.size, fp) >= 0)
		rc = 0;
	gnutls_free(spki.data);
	gnutls_pubkey_deinit(pub);
	gnutls_x509_crt_deinit(crt);
	return rc;
}

void identity_fp_str(const uint8_t fp[IDENTITY_FP_LEN],
                     char out[IDENTITY_FP_STRLEN])
{
	size_t o = 7;

	memcpy(out, "SHA256:", 7);
	/* unpadded base64: 32 bytes are 42 full sextets and 2 bits */
	for (size_t i = 0; i < IDENTITY_FP_LEN; i += 3) {
		uint32_t v = (uint32_t)fp[i] << 16;

		if (i + 1 < IDENTITY_FP_LEN)
			v |= (uint32_t)fp[i + 1] << 8;
		if (i + 2 < IDENTITY_FP_LEN)
			v |= fp[i + 2];
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		if (i + 1 < IDENTITY_FP_LEN)
			out[o++] = b64[(v >> 6) & 63];
		if (i + 2 < IDENTITY_FP_LEN)
			out[o++] = b64[v & 63];
	}
	out[o] = '\0';
}

int identity_fp_parse(const char *s, uint8_t fp[IDENTITY_FP_LEN])
{
	uint32_t acc = 0;
	size_t bits = 0, n = 0;

	if (!strncmp(s, "SHA256:", 7))
		s += 7;
	if (strlen(s) != 43)
		return -1;
	for (; *s; s++) {
		const char *p = strchr(b64, *s);

		if (!p || !*s)
			return -1;
		acc = (acc << 6) | (uint32_t)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == IDENTITY_FP_LEN)
				return -1;
			fp[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* the 2 leftover bits must be zero, as identity_fp_str writes them */
	return n == IDENTITY_FP_LEN && !(acc & ((1u << bits) - 1)) ? 0 : -1;
}

void identity_short_code(const uint8_t exporter[32],
                         const uint8_t fp_client[IDENTITY_FP_LEN],
                         const uint8_t fp_server[IDENTITY_FP_LEN],
                         char out[IDENTITY_SHORT_CODE_LEN])
{
	/* Each part with its length first (all under 128 bytes), as CPace's
	 * lv_cat does, so that no two inputs hash alike. */
	static const char label[] = "punch/1 short code";
	uint8_t in[1 + sizeof(label) - 1 + 3 * (1 + 32)], d[32];
	uint64_t v = 0;
	size_t n = 0;

	in[n++] = sizeof(label) - 1;
	memcpy(in + n, label, sizeof(label) - 1);
	n += sizeof(label) - 1;
	in[n++] = 32;
	memcpy(in + n, exporter, 32);
	n += 32;
	in[n++] = IDENTITY_FP_LEN;
	memcpy(in + n, fp_client, IDENTITY_FP_LEN);
	n += IDENTITY_FP_LEN;
	in[n++] = IDENTITY_FP_LEN;
	memcpy(in + n, fp_server, IDENTITY_FP_LEN);
	n += IDENTITY_FP_LEN;
	gnutls_hash_fast(GNUTLS_DIG_SHA256, in, n, d);
	for (int i = 0; i < 8; i++)
		v = v << 8 | d[i];
	/* 64 bits down to 16 digits: 2^64 / 10^16 is about 1845, so no value
	 * is more than 1/1845 likelier than another. */
	v %= 10000000000000000ull;
	snprintf(out, IDENTITY_SHORT_CODE_LEN, "%04u-%04u-%04u-%04u",
	         (unsigned)(v / 1000000000000ull),
	         (unsigned)(v / 100000000ull % 10000),
	         (unsigned)(v / 10000 % 10000), (unsigned)(v % 10000));
}

/* The whole of known_peers in *buf (malloc'd; *len 0 if there is no
 * file).  Read whole, so that lines of any length and stray NUL bytes are
 * seen as they are.  0, or -1. */
static int known_load(const char *path, char **buf, size_t *len)
{
	struct stat st;
	FILE *f;
	size_t n;

	*len = 0;
	*buf = NULL;
	if (!(f = fopen(path, "rb"))) {
		if (errno != ENOENT || !(*buf = malloc(1)))
			return -1;
		return 0;
	}
	/* Sized by the file; one byte more shows if it grew meanwhile. */
	if (fstat(fileno(f), &st) || st.st_size < 0 ||
	    st.st_size > KNOWN_FILE_MAX ||
	    !(*buf = malloc((size_t)st.st_size + 1))) {
		fclose(f);
		return -1;
	}
	n = fread(*buf, 1, (size_t)st.st_size + 1, f);
	if (ferror(f) || n > (size_t)st.st_size) {
		fclose(f);
		free(*buf);
		*buf = NULL;
		return -1;
	}
	fclose(f);
	*len = n;
	return 0;
}

/* The next whitespace-separated word in [*p, end). */
static size_t next_word(const char **p, const char *end, const char **word)
{
	const char *s = *p;

	while (s < end && (*s == ' ' || *s == '\t' || *s == '\r'))
		s++;
	*word = s;
	while (s < end && *s != ' ' && *s != '\t' && *s != '\r')
		s++;
	*p = s;
	return (size_t)(s - *word);
}

/* Is [l, end) (one line, no newline) peer_id's?  *fps gets its second
 * word. */
static int line_is_peer(const char *l, const char *end, const char *peer_id,
                        const char **fps, size_t *fps_len)
{
	const char *w;
	size_t n;

	if (l < end && *l == '#')
		return 0;
	n = next_word(&l, end, &w);
	if (n != strlen(peer_id) || memcmp(w, peer_id, n))
		return 0;
	*fps_len = next_word(&l, end, fps);
	return 1;
}

int known_peers_check(const char *dir, const char *peer_id,
                      const uint8_t fp[IDENTITY_FP_LEN], int *line)
{
	char path[IDENTITY_PATH_MAX + 32], fps[IDENTITY_FP_STRLEN + 8], *buf;
	uint8_t known[IDENTITY_FP_LEN];
	size_t len, w_len;
	const char *p, *end, *nl, *w;
	int n = 0, rc = KNOWN_NEW;

	snprintf(path, sizeof(path), "%s/%s", dir, known_name);
	if (known_load(path, &buf, &len))
		return KNOWN_ERROR;
	for (p = buf, end = buf + len; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		n++;
		if (!line_is_peer(p, nl, peer_id, &w, &w_len))
			continue;
		*line = n;
		if (w_len >= sizeof(fps) || memchr(w, '\0', w_len)) {
			rc = KNOWN_ERROR;
			break;
		}
		memcpy(fps, w, w_len);
		fps[w_len] = '\0';
		if (identity_fp_parse(fps, known))
			rc = KNOWN_ERROR;
		else
			rc = memcmp(known, fp, IDENTITY_FP_LEN) ? KNOWN_MISMATCH :
			                                          KNOWN_MATCH;
		break;
	}
	free(buf);
	return rc;
}

int known_peers_add(const char *dir, const char *peer_id,
                    const uint8_t fp[IDENTITY_FP_LEN])
{
	char path[IDENTITY_PATH_MAX + 32], fps[IDENTITY_FP_STRLEN];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, known_name);
	if (!(f = fopen(path, "a")))
		return -1;
	identity_fp_str(fp, fps);
	rc = fprintf(f, "%s %s\n", peer_id, fps) < 0;
	return (fclose(f) || rc) ? -1 : 0;
}

int known_peers_set(const char *dir, const char *peer_id,
                    const uint8_t fp[IDENTITY_FP_LEN])
{
	char path[IDENTITY_PATH_MAX + 32], tmp[IDENTITY_PATH_MAX + 48];
	char fps[IDENTITY_FP_STRLEN], *buf;
	const char *p, *end, *nl, *w;
	size_t len, w_len;
	FILE *out;
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, known_name);
	if (known_load(path, &buf, &len))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0) {
		free(buf);
		return -1;
	}
	if (fchmod(fd, 0644) || !(out = fdopen(fd, "w"))) {
		close(fd);
		unlink(tmp);
		free(buf);
		return -1;
	}
	/* Every line but peer_id's, byte for byte; a last line without its
	 * newline gets one. */
	for (p = buf, end = buf + len; p < end && !err; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (line_is_peer(p, nl, peer_id, &w, &w_len))
			continue;
		if (fwrite(p, 1, (size_t)(nl - p), out) != (size_t)(nl - p) ||
		    fputc('\n', out) == EOF)
			err = 1;
	}
	free(buf);
	identity_fp_str(fp, fps);
	if (err || fprintf(out, "%s %s\n", peer_id, fps) < 0 ||
	    fflush(out) || fsync(fd)) {
		fclose(out);
		unlink(tmp);
		return -1;
	}
	if (fclose(out) || rename(tmp, path)) {
		unlink(tmp);
		return -1;
	}
	return 0;
}
