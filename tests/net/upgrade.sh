#!/usr/bin/env bash
# From the relay to a direct path and back, while data flows (scenario nat2,
# home NATs, the server relaying):
#
#   upgrade.sh PATH_TO_PUNCH
#
# The router drops UDP between the two NATs' public addresses, so the
# peers connect through the relay ("relay via" on both sides).  alice pipes
# 12 MB of random data to bob in three parts:
#   1. over the relay;
#   2. after the router lets direct UDP through again: both sides say
#      "Path upgraded: ... (direct, srflx)";
#   3. after the router drops it again: once consent is lost on the direct
#      pair, both say "Path back on the relay".
# bob's stdout must be byte for byte what alice read (SHA-256), and both
# exit 0.  The time from lifting the block to each "Path upgraded" line is
# printed (a figure, not a verdict: bench/relay_path.sh measures it).

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

PART_MB=4
UPGRADE_S=10  # for "Path upgraded" after the block is lifted (about 1 s)
FALLBACK_S=40 # for "Path back on the relay": consent is lost after 15 s
DONE_S=60

for i in 1 2 3; do
	head -c $((PART_MB << 20)) /dev/urandom >"$NET_TMP/part$i"
done
cat "$NET_TMP/part1" "$NET_TMP/part2" "$NET_TMP/part3" >"$NET_TMP/all"

# block / unblock: direct UDP between the NATs' public sides, at the router.
block() {
	local op=$1
	lab_nsx router iptables "$op" FORWARD -p udp -s 203.0.113.0/24 -d 192.0.2.0/24 -j DROP
	lab_nsx router iptables "$op" FORWARD -p udp -s 192.0.2.0/24 -d 203.0.113.0/24 -j DROP
}

# feed FILE: into alice's stdin (a FIFO the test holds open for writing).
feed() {
	cat "$1" >&"$FEED"
}

# expect_path ID PATTERN WHAT: ID's "Connection established" line matches.
expect_path() {
	local line
	line=$(grep -m1 '^Connection established: ' "$RUN_DIR/$1.err" || true)
	[[ $line =~ $2 ]] || fail "$1: expected a $3 path; seen: '$line'"
}

net_up nat2 --relay --timeout 20
block -I
lab_start_server
mkfifo "$NET_TMP/feed"
exec {FEED}<>"$NET_TMP/feed"
# The lab closes CLIENT_FD's descriptors in the processes it starts: so
# does the clients' copy of ours, and closing it here is their end of input.
CLIENT_FD[feed]=$FEED # an associative array (scripts/lab)
LAB_STDIN=$NET_TMP/feed lab_start_peer alice bob pipe
LAB_STDIN=/dev/null lab_start_peer bob alice pipe
lab_wait_established alice bob
for id in alice bob; do
	expect_path "$id" '\(relay via [0-9.:]+\)' relayed
	lab_wait_client "$id" '^Secure link up' "'Secure link up'"
done
ok "connected through the relay"

feed "$NET_TMP/part1"
block -D
lab_now
lifted=$LAB_NOW
for id in alice bob; do
	lab_wait_client "$id" '^Path upgraded: .* \(direct, srflx\), after [0-9]+ ms on the relay' \
		"'Path upgraded: ... (direct, srflx)' after the block was lifted" "$UPGRADE_S"
	lab_now
	echo "$id: upgraded within $((LAB_NOW - lifted)) ms of the block being lifted (polled every ${LAB_POLL_S} s)"
done
ok "upgraded to the direct path"

feed "$NET_TMP/part2"
block -I
for id in alice bob; do
	lab_wait_client "$id" '^Path back on the relay: ' \
		"'Path back on the relay' once the direct path was blocked again" "$FALLBACK_S"
done
ok "back on the relay"

feed "$NET_TMP/part3"
exec {FEED}>&-
unset 'CLIENT_FD[feed]'
lab_wait_gone "$DONE_S" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
	fail "alice and bob: expected both to exit within $DONE_S s of the end of the input; seen: alice $(lab_alive "${CLIENT_PID[alice]}" && echo running || echo exited), bob $(lab_alive "${CLIENT_PID[bob]}" && echo running || echo exited), $(wc -c <"$RUN_DIR/bob.out") bytes on bob's stdout"
for id in alice bob; do
	lab_client_exited "$id"
	expect_eq "$id's exit status" 0 "${CLIENT_RC[$id]}"
done

sum() { sha256sum <"$1" | cut -d' ' -f1; }
expect_eq "bytes on bob's stdout" "$(wc -c <"$NET_TMP/all")" "$(wc -c <"$RUN_DIR/bob.out")"
expect_eq "SHA-256 of bob's stdout" "$(sum "$NET_TMP/all")" "$(sum "$RUN_DIR/bob.out")"
lab_check_sanitizers
echo PASS
