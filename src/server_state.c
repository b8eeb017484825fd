#include "server_state.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	KEY_FILE_MAX = 4096,
	BINDINGS_LINES_MAX = IDBIND_MAX + 1000, /* a bound on the loader's loop */
};

static const char key_name[] = "server_ed25519.pem";
static const char bindings_name[] = "id_bindings";

int state_dir_default(char *out, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	int n;

	if (geteuid() == 0)
		n = snprintf(out, len, "/var/lib/punch");
	else if (xdg && *xdg)
		n = snprintf(out, len, "%s/punch", xdg);
	else if (home && *home)
		n = snprintf(out, len, "%s/.local/state/punch", home);
	else
		return -1;
	return n > 0 && (size_t)n < len ? 0 : -1;
}

int state_dir_make(const char *dir, char *err, size_t errlen)
{
	char tmp[STATE_PATH_MAX];
	int n = snprintf(tmp, sizeof(tmp), "%s", dir);

	if (n <= 0 || (size_t)n >= sizeof(tmp)) {
		snprintf(err, errlen, "the state directory name is too long");
		return -1;
	}
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST)
			goto fail;
		*p = '/';
	}
	if (mkdir(tmp, 0700) && errno != EEXIST)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot create the state directory %s: %s; choose another with -state DIR",
	         tmp, strerror(errno));
	return -1;
}

/* Write data to path whole, or not at all: a temporary file in the same
 * folder, then link() (never replaces: keep_existing) or rename(). */
static int write_atomic(const char *path, const void *data, size_t len,
                        int keep_existing, char *err, size_t errlen)
{
	char tmp[STATE_PATH_MAX + 64];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0 || fchmod(fd, 0600) ||
	    write(fd, data, len) != (ssize_t)len || fsync(fd)) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		return -1;
	}
	close(fd);
	rc = keep_existing ? link(tmp, path) : rename(tmp, path);
	if (rc && !(keep_existing && errno == EEXIST)) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (keep_existing)
		unlink(tmp);
	return 0;
}

static int key_create(const char *path, char *err, size_t errlen)
{
	unsigned char pem[KEY_FILE_MAX];
	size_t pem_len = sizeof(pem);
	gnutls_x509_privkey_t key;
	int rc;

	if (gnutls_x509_privkey_init(&key) < 0)
		return -1;
	if ((rc = gnutls_x509_privkey_generate(key, GNUTLS_PK_EDDSA_ED25519, 0,
	                                       0)) < 0 ||
	    (rc = gnutls_x509_privkey_export_pkcs8(key, GNUTLS_X509_FMT_PEM,
	                                           NULL, GNUTLS_PKCS_PLAIN,
	                                           pem, &pem_len)) < 0) {
		snprintf(err, errlen, "cannot make an Ed25519 key: %s",
		         gnutls_strerror(rc));
		gnutls_x509_privkey_deinit(key);
		return -1;
	}
	gnutls_x509_privkey_deinit(key);
	rc = write_atomic(path, pem, pem_len, 1, err, errlen);
	gnutls_memset(pem, 0, sizeof(pem));
	return rc;
}

static int key_read(const char *path, struct sign_key *k, char *err,
                    size_t errlen)
{
	unsigned char buf[KEY_FILE_MAX];
	gnutls_datum_t pem;
	gnutls_x509_privkey_t key;
	struct stat st;
	size_t n;
	FILE *f;
	int rc = -1;

	if (!(f = fopen(path, "rb")) || fstat(fileno(f), &st)) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen, "%s is readable by others (mode %03o); run: chmod 600 %s",
		         path, (unsigned)(st.st_mode & 0777), path);
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	pem = (gnutls_datum_t){ buf, (unsigned)n };
	if (n == 0 || n == sizeof(buf) || gnutls_x509_privkey_init(&key) < 0) {
		snprintf(err, errlen, "cannot read the key in %s", path);
		return -1;
	}
	if (gnutls_x509_privkey_import2(key, &pem, GNUTLS_X509_FMT_PEM, NULL,
	                                GNUTLS_PKCS_PLAIN) < 0 ||
	    sign_key_from_x509(k, key))
		snprintf(err, errlen, "%s is not an Ed25519 private key", path);
	else
		rc = 0;
	gnutls_x509_privkey_deinit(key);
	gnutls_memset(buf, 0, sizeof(buf));
	return rc;
}

int state_key_load(const char *dir, struct sign_key *k, int *created,
                   char *err, size_t errlen)
{
	char path[STATE_PATH_MAX + 32];
	struct stat st;

	*created = 0;
	snprintf(path, sizeof(path), "%s/%s", dir, key_name);
	if (stat(path, &st) != 0) {
		if (key_create(path, err, errlen))
			return -1;
		*created = 1;
	}
	return key_read(path, k, err, errlen);
}

long state_bindings_load(const char *dir, struct idbind *t, char *err,
                         size_t errlen)
{
	char path[STATE_PATH_MAX + 32], line[IDBIND_LINE_MAX + 2];
	char id[PUNCH_ID_MAX + 1];
	uint8_t fp[PUNCH_KEY_FP_LEN];
	uint64_t last;
	long n = 0, count = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, bindings_name);
	if (!(f = fopen(path, "r"))) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	while (n < BINDINGS_LINES_MAX && fgets(line, sizeof(line), f)) {
		size_t len = strcspn(line, "\n");
		int rc;

		n++;
		/* a line without its newline that fills the buffer is too long */
		rc = (len == sizeof(line) - 1) ? -1 :
		                                 idbind_parse_line(line, len, id, fp, &last);
		if (rc < 0 || (rc == 1 && idbind_load(t, id, fp, last))) {
			snprintf(err, errlen, "%s line %ld is malformed (or there are too many bindings); fix or delete it",
			         path, n);
			fclose(f);
			return -1;
		}
		count += rc;
	}
	fclose(f);
	return count;
}

/* The bindings go out through one fixed buffer, whatever their number. */
struct save_ctx {
	int fd;
	char buf[16384];
	size_t len;
	int err;
};

static void save_flush(struct save_ctx *s)
{
	if (!s->err && s->len &&
	    write(s->fd, s->buf, s->len) != (ssize_t)s->len)
		s->err = errno ? errno : EIO;
	s->len = 0;
}

static void save_one(void *ctx, const char *id,
                     const uint8_t fp[PUNCH_KEY_FP_LEN], uint64_t last_s)
{
	struct save_ctx *s = ctx;
	int n;

	if (sizeof(s->buf) - s->len < IDBIND_LINE_MAX)
		save_flush(s);
	n = idbind_format_line(s->buf + s->len, sizeof(s->buf) - s->len, id,
	                       fp, last_s);
	if (n < 0)
		s->err = EINVAL;
	else
		s->len += (size_t)n;
}

int state_bindings_save(const char *dir, const struct idbind *t, char *err,
                        size_t errlen)
{
	static const char head[] =
		"# punch server: id bindings (fingerprint, last use, id)\n";
	static struct save_ctx s;
	char path[STATE_PATH_MAX + 32], tmp[STATE_PATH_MAX + 48];

	snprintf(path, sizeof(path), "%s/%s", dir, bindings_name);
	snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path);
	memset(&s, 0, sizeof(s));
	/* Written whole to a temporary file, then renamed over the old one:
	 * a crash leaves one or the other, never half of one. */
	if ((s.fd = mkstemp(tmp)) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	memcpy(s.buf, head, sizeof(head) - 1);
	s.len = sizeof(head) - 1;
	idbind_foreach(t, save_one, &s);
	save_flush(&s);
	if (!s.err && (fchmod(s.fd, 0600) || fsync(s.fd)))
		s.err = errno;
	if (close(s.fd) && !s.err)
		s.err = errno;
	if (!s.err && rename(tmp, path))
		s.err = errno;
	if (s.err) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(s.err));
		unlink(tmp);
		return -1;
	}
	return 0;
}
