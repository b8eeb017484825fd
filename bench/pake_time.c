/*
 * What pairing with a code costs in CPU: the whole CPace exchange of
 * src/pake.c as both sides run it (generator, share, K, ISK, both
 * confirmations made and checked), N times; prints the time per side.
 *
 *   pake_time [N]     (default 2000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "pake.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 2000;
	uint8_t fa[PAKE_FP_LEN] = { 1 }, fb[PAKE_FP_LEN] = { 2 },
		sid[PAKE_SID_LEN] = { 3 }, ci[PAKE_CI_MAX], ta[PAKE_MAC_LEN],
		tb[PAKE_MAC_LEN];
	size_t ci_len = pake_ci(fa, fb, ci);
	struct pake a, b;
	double t0;

	if (n <= 0)
		return 2;
	t0 = now_s();
	for (int i = 0; i < n; i++) {
		if (pake_start(&a, 1, "7-amber-falcon", ci, ci_len, sid,
		               sizeof(sid), NULL, 0, NULL) ||
		    pake_start(&b, 0, "7-amber-falcon", ci, ci_len, sid,
		               sizeof(sid), NULL, 0, NULL) ||
		    pake_finish(&a, b.own, NULL, 0) ||
		    pake_finish(&b, a.own, NULL, 0))
			return 1;
		pake_mac_own(&a, ta);
		pake_mac_own(&b, tb);
		if (pake_mac_check(&a, tb) || pake_mac_check(&b, ta))
			return 1;
	}
	printf("CPace exchange: %.1f us per side (%d exchanges)\n",
	       (now_s() - t0) / n / 2 * 1e6, n);
	return 0;
}
