/*
 * identity.c's short code and known_peers_set(): the code's format and what
 * it depends on; pinning that replaces exactly the peer's lines and keeps
 * every other byte of the file.
 */
#include "unit.h"

#include <ctype.h>
#include <fcntl.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity.h"

static void code_of(uint8_t e, uint8_t c, uint8_t s,
                    char out[IDENTITY_SHORT_CODE_LEN])
{
	uint8_t exp[32], fc[IDENTITY_FP_LEN], fs[IDENTITY_FP_LEN];

	memset(exp, e, sizeof(exp));
	memset(fc, c, sizeof(fc));
	memset(fs, s, sizeof(fs));
	identity_short_code(exp, fc, fs, out);
}

static void test_short_code(void **state)
{
	char a[IDENTITY_SHORT_CODE_LEN], b[IDENTITY_SHORT_CODE_LEN];

	(void)state;
	code_of(1, 2, 3, a);
	/* NNNN-NNNN-NNNN-NNNN */
	assert_size(strlen(a), 19);
	for (int i = 0; i < 19; i++)
		assert_true(i % 5 == 4 ? a[i] == '-' : isdigit((unsigned char)a[i]));
	code_of(1, 2, 3, b);
	assert_string_equal(a, b);
	/* Each input matters, and so does the order of the keys. */
	code_of(9, 2, 3, b);
	assert_string_not_equal(a, b);
	code_of(1, 9, 3, b);
	assert_string_not_equal(a, b);
	code_of(1, 2, 9, b);
	assert_string_not_equal(a, b);
	code_of(1, 3, 2, b);
	assert_string_not_equal(a, b);
}

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/punch-test-identity.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/known_peers", dir);
	unlink(path);
	return rmdir(dir);
}

static void write_known(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/known_peers", dir);
	if (!text) {
		unlink(path);
		return;
	}
	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

static void assert_known(const char *want)
{
	char path[128], seen[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/known_peers", dir);
	assert_non_null(f = fopen(path, "r"));
	n = fread(seen, 1, sizeof(seen) - 1, f);
	fclose(f);
	seen[n] = '\0';
	assert_string_equal(seen, want);
}

static void test_known_peers_set(void **state)
{
	uint8_t fp[IDENTITY_FP_LEN], other[IDENTITY_FP_LEN];
	char fps[IDENTITY_FP_STRLEN], ofs[IDENTITY_FP_STRLEN], want[2048],
		text[2048], big[1001];
	int line = 0;

	(void)state;
	memset(fp, 0x11, sizeof(fp));
	memset(other, 0x22, sizeof(other));
	identity_fp_str(fp, fps);
	identity_fp_str(other, ofs);

	/* No file yet. */
	write_known(NULL);
	assert_int_equal(known_peers_set(dir, "bob", fp), 0);
	snprintf(want, sizeof(want), "bob %s\n", fps);
	assert_known(want);
	assert_int_equal(known_peers_check(dir, "bob", fp, &line), KNOWN_MATCH);

	/* Every bob line goes, comments and other peers stay, in order; a
	 * commented-out bob stays too. */
	snprintf(text, sizeof(text), "# mine\nbob %s\ncarol %s\n#bob %s\nbob %s\nbobby %s",
	         ofs, ofs, ofs, ofs, ofs);
	write_known(text);
	assert_int_equal(known_peers_check(dir, "bob", fp, &line), KNOWN_MISMATCH);
	assert_int_equal(line, 2);
	assert_int_equal(known_peers_set(dir, "bob", fp), 0);
	snprintf(want, sizeof(want), "# mine\ncarol %s\n#bob %s\nbobby %s\nbob %s\n",
	         ofs, ofs, ofs, fps);
	assert_known(want);
	assert_int_equal(known_peers_check(dir, "bob", fp, &line), KNOWN_MATCH);

	/* A line longer than the reader's 512-byte buffer is kept whole,
	 * and its tail (here starting "bob " at byte 511) is not mistaken
	 * for a line of its own. */
	memset(big, 'y', 1000);
	memcpy(big, "# ", 2);
	memcpy(big + 511, "bob zzz", 7);
	big[1000] = '\0';
	snprintf(text, sizeof(text), "%s\nalice %s\n", big, ofs);
	write_known(text);
	assert_int_equal(known_peers_set(dir, "bob", fp), 0);
	snprintf(want, sizeof(want), "%sbob %s\n", text, fps);
	assert_known(want);
	assert_int_equal(known_peers_check(dir, "bob", fp, &line), KNOWN_MATCH);
	assert_int_equal(line, 3);

	/* A last line without its newline gets one before ours. */
	snprintf(text, sizeof(text), "alice %s", ofs);
	write_known(text);
	assert_int_equal(known_peers_set(dir, "bob", fp), 0);
	snprintf(want, sizeof(want), "alice %s\nbob %s\n", ofs, fps);
	assert_known(want);
}

/* ---- the key file ------------------------------------------------------ */

static char kdir[64];

static void key_write(const void *data, size_t len, mode_t mode)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/punch/id_ed25519.pem", kdir);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
	assert_true(fd >= 0);
	assert_true(write(fd, data, len) == (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

/* Load, expecting failure with a message containing want. */
static void load_fails(const char *want)
{
	struct identity id;
	char err[256] = "";

	assert_int_equal(identity_load(&id, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("expected an error with \"%s\", saw \"%s\"", want, err);
	assert_null(id.key);
	assert_null(id.crt);
}

/* A marker kept in the binary only XORed with 0x5A, so that the plain
 * bytes are nowhere in this process's memory unless the code under test
 * put them there. */
static const char marker_x[] =
	"\x17\x1f\x17\x15\x08\x03\x7a\x16\x1f\x1b\x11\x7a\x0e\x1f\x09"
	"\x0e\x7a\x13\x1e\x1f\x14\x0e\x13\x0e\x03\x7a\x11\x1f\x03\x7a"
	"\x6b\x68";

static int marker_at(const uint8_t *p)
{
	for (size_t i = 0; i < sizeof(marker_x) - 1; i++)
		if (p[i] != (uint8_t)(marker_x[i] ^ 0x5A))
			return 0;
	return 1;
}

/* Is the marker in any writable mapping of this process? */
static int marker_in_memory(void)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	int mem = open("/proc/self/mem", O_RDONLY);
	static uint8_t chunk[1 << 16];
	char line[512];
	int found = 0;

	assert_non_null(maps);
	assert_true(mem >= 0);
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 ||
		    perms[0] != 'r' || perms[1] != 'w' || strstr(line, "[vvar]"))
			continue;
		/* ASan's shadow: terabytes reserved, none of it data */
		if (hi - lo > (1ul << 30))
			continue;
		/* bounded by the mapping; chunks overlap by the marker */
		for (unsigned long at = lo; !found && at < hi;
		     at += sizeof(chunk) - sizeof(marker_x)) {
			size_t want = hi - at < sizeof(chunk) ? hi - at : sizeof(chunk);
			ssize_t n = pread(mem, chunk, want, (off_t)at);

			if (n < (ssize_t)sizeof(marker_x))
				break;
			for (ssize_t i = 0; i + (ssize_t)sizeof(marker_x) - 1 <= n; i++)
				if (chunk[i] == (uint8_t)(marker_x[0] ^ 0x5A) &&
				    marker_at(chunk + i)) {
					found = 1;
					break;
				}
			if (hi - at <= sizeof(chunk))
				break;
		}
	}
	fclose(maps);
	close(mem);
	return found;
}

/* A key file that does not import leaves no copy of its bytes behind: it
 * was read without stdio into a buffer that the one exit wipes.  (Before,
 * it stayed in a static buffer, and in stdio's.) */
static void test_key_not_kept(void **state)
{
	char path[128];
	int fd;

	(void)state;
	snprintf(kdir, sizeof(kdir), "/tmp/punch-idkey-XXXXXX");
	assert_non_null(mkdtemp(kdir));
	assert_int_equal(setenv("XDG_CONFIG_HOME", kdir, 1), 0);
	snprintf(path, sizeof(path), "%s/punch", kdir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/punch/id_ed25519.pem", kdir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	/* byte by byte, so that no buffer of ours holds it */
	for (size_t i = 0; i < sizeof(marker_x) - 1; i++) {
		uint8_t c = (uint8_t)(marker_x[i] ^ 0x5A);

		assert_int_equal(write(fd, &c, 1), 1);
	}
	close(fd);
	assert_false(marker_in_memory());
	load_fails("cannot read the key in");
	assert_false(marker_in_memory());
	unlink(path);
	snprintf(path, sizeof(path), "%s/punch", kdir);
	rmdir(path);
	rmdir(kdir);
}

/* Every way a key file can be refused goes through the one exit that
 * wipes and frees: under ASan with leak detection, none leaks. */
static void test_key_file(void **state)
{
	struct identity id;
	uint8_t fp[IDENTITY_FP_LEN];
	char err[256], path[128];
	static uint8_t big[16384];
	gnutls_x509_privkey_t ec;
	uint8_t pem[4096];
	size_t pem_len = sizeof(pem);

	(void)state;
	snprintf(kdir, sizeof(kdir), "/tmp/punch-idkey-XXXXXX");
	assert_non_null(mkdtemp(kdir));
	assert_int_equal(setenv("XDG_CONFIG_HOME", kdir, 1), 0);

	/* made, then read back: the same key */
	assert_int_equal(identity_load(&id, err, sizeof(err)), 0);
	assert_true(id.created);
	memcpy(fp, id.fp, sizeof(fp));
	identity_free(&id);
	assert_int_equal(identity_load(&id, err, sizeof(err)), 0);
	assert_false(id.created);
	assert_memory_equal(id.fp, fp, sizeof(fp));
	identity_free(&id);

	key_write("not a key\n", 10, 0600);
	load_fails("cannot read the key in");
	key_write("", 0, 0600);
	load_fails("cannot read the key in");
	memset(big, 'A', sizeof(big));
	key_write(big, sizeof(big), 0600);
	load_fails("cannot read the key in");
	key_write("not a key\n", 10, 0644);
	load_fails("is readable by others");

	/* a real key of another kind */
	assert_true(gnutls_x509_privkey_init(&ec) >= 0);
	assert_true(gnutls_x509_privkey_generate(ec, GNUTLS_PK_ECDSA,
	                                         GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) >= 0);
	assert_true(gnutls_x509_privkey_export_pkcs8(ec, GNUTLS_X509_FMT_PEM,
	                                             NULL, GNUTLS_PKCS_PLAIN, pem, &pem_len) >= 0);
	gnutls_x509_privkey_deinit(ec);
	key_write(pem, pem_len, 0600);
	load_fails("is not an Ed25519 key");

	snprintf(path, sizeof(path), "%s/punch/id_ed25519.pem", kdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/punch", kdir);
	rmdir(path);
	rmdir(kdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_code),
		cmocka_unit_test_setup_teardown(test_known_peers_set, setup, teardown),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_key_not_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
