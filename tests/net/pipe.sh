#!/usr/bin/env bash
# punch pipe, both ways at once (scenario nat2):
#
#   pipe.sh PATH_TO_PUNCH
#
# alice pipes 10 MB of random data to bob while bob pipes 1 MB to alice.
# Each side's stdout must be byte for byte what the other read (SHA-256),
# and both must exit 0 (which they do only when both directions arrived).

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

A2B_MB=10
B2A_MB=1
DONE_S=60 # for both to finish after connecting (about 2 s on a laptop)

head -c $((A2B_MB << 20)) /dev/urandom >"$NET_TMP/a2b"
head -c $((B2A_MB << 20)) /dev/urandom >"$NET_TMP/b2a"

net_up nat2
lab_start_server
LAB_STDIN=$NET_TMP/a2b lab_start_peer alice bob pipe
LAB_STDIN=$NET_TMP/b2a lab_start_peer bob alice pipe
lab_wait_established alice bob
lab_wait_client alice '^Secure link up' "'Secure link up'"
lab_now
start=$LAB_NOW

lab_wait_gone "$DONE_S" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
	fail "alice and bob: expected both to exit within $DONE_S s of the link; seen: alice $(lab_alive "${CLIENT_PID[alice]}" && echo running || echo exited), bob $(lab_alive "${CLIENT_PID[bob]}" && echo running || echo exited)"
lab_now
ms=$((LAB_NOW - start))
for id in alice bob; do
	lab_client_exited "$id"
	expect_eq "$id's exit status" 0 "${CLIENT_RC[$id]}"
done

sum() { sha256sum <"$1" | cut -d' ' -f1; }
expect_eq "bytes on bob's stdout ($A2B_MB MB from alice)" "$(wc -c <"$NET_TMP/a2b")" "$(wc -c <"$RUN_DIR/bob.out")"
expect_eq "SHA-256 of bob's stdout" "$(sum "$NET_TMP/a2b")" "$(sum "$RUN_DIR/bob.out")"
expect_eq "bytes on alice's stdout ($B2A_MB MB from bob)" "$(wc -c <"$NET_TMP/b2a")" "$(wc -c <"$RUN_DIR/alice.out")"
expect_eq "SHA-256 of alice's stdout" "$(sum "$NET_TMP/b2a")" "$(sum "$RUN_DIR/alice.out")"
lab_check_sanitizers
awk -v ms="$ms" -v mb="$((A2B_MB + B2A_MB))" 'BEGIN {
	printf "ok: %d MB through punch pipe in %.2f s after the link came up (%.1f MB/s, both ways together)\n",
	       mb, ms / 1000, mb * 1.048576 / (ms / 1000) }'
echo PASS
