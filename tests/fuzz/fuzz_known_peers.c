/*
 * Fuzz harness for the known_peers file (identity.c): the input is the
 * file.  known_peers_check() must give one of its answers (with a line
 * number when it found bob); known_peers_set() must pin bob so that the
 * next check matches, keep the file ending in bob's one line, and change
 * nothing when run again.
 *
 * Built with libFuzzer (clang -fsanitize=fuzzer) and with replay.c's plain
 * main(), so that ctest replays the committed corpus with any compiler.
 * Each input is written to one scratch folder (in /dev/shm if it can),
 * made once and removed at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "identity.h"
#include "fuzz.h"

enum { FILE_MAX = 1 << 16 };

static char dir[64], path[128];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static size_t slurp(uint8_t *buf, size_t max)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	CHECK(f);
	n = fread(buf, 1, max, f);
	fclose(f);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t once[FILE_MAX + 128], twice[FILE_MAX + 128];
	uint8_t fp[IDENTITY_FP_LEN];
	char line[IDENTITY_FP_STRLEN + 8];
	size_t n1, n2, ln;
	int at = 0, rc;
	FILE *f;

	if (!dir[0]) {
		/* tmpfs if there is one: fsync there costs nothing. */
		snprintf(dir, sizeof(dir), "/dev/shm/punch-fuzz-known.XXXXXX");
		if (!mkdtemp(dir)) {
			snprintf(dir, sizeof(dir), "/tmp/punch-fuzz-known.XXXXXX");
			CHECK(mkdtemp(dir));
		}
		snprintf(path, sizeof(path), "%s/known_peers", dir);
		atexit(cleanup);
	}
	if (size > FILE_MAX)
		return 0;
	CHECK(f = fopen(path, "wb"));
	CHECK(fwrite(data, 1, size, f) == size);
	CHECK(fclose(f) == 0);
	memset(fp, 0x5A, sizeof(fp));

	rc = known_peers_check(dir, "bob", fp, &at);
	CHECK(rc == KNOWN_NEW || rc == KNOWN_MATCH || rc == KNOWN_MISMATCH ||
	      rc == KNOWN_ERROR);
	if (rc != KNOWN_NEW)
		CHECK(at >= 1 && (size_t)at <= size);

	CHECK(known_peers_set(dir, "bob", fp) == 0);
	CHECK(known_peers_check(dir, "bob", fp, &at) == KNOWN_MATCH);
	n1 = slurp(once, sizeof(once));
	identity_fp_str(fp, line + 4);
	memcpy(line, "bob ", 4);
	ln = strlen(line);
	line[ln++] = '\n';
	CHECK(n1 >= ln && !memcmp(once + n1 - ln, line, ln));
	CHECK(n1 <= size + 1 + ln);

	CHECK(known_peers_set(dir, "bob", fp) == 0);
	n2 = slurp(twice, sizeof(twice));
	CHECK(n1 == n2 && !memcmp(once, twice, n1));
	return 0;
}
