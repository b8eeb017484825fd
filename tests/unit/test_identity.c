/*
 * identity.c's short code and known_peers_set(): the code's format and what
 * it depends on; pinning that replaces exactly the peer's lines and keeps
 * every other byte of the file.
 */
#include "unit.h"

#include <ctype.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_code),
		cmocka_unit_test_setup_teardown(test_known_peers_set, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
