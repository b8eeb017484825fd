/*
 * What every harness shares: libFuzzer's entry point (replay.c calls it
 * for each corpus file when libFuzzer is not linked) and CHECK(), which
 * aborts so that both libFuzzer and the replay report the input.
 */
#ifndef PUNCH_FUZZ_H
#define PUNCH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                          \
	do {                                                                  \
		if (!(cond))                                                  \
			abort();                                              \
	} while (0)

#endif
