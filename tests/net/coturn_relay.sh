#!/usr/bin/env bash
# The client with another TURN server: coturn's turnserver as the relay
# (a static long-term user), punch's own server for the rendezvous only
# (no -auth-secret), two symmetric NATs (scenario nat2):
#
#   coturn_relay.sh PATH_TO_PUNCH
#
# a. punch chat -turn turn:USER:PASS@coturn: both connect "relay via" a
#    coturn relayed address, and a line goes each way.
# b. punch send/recv -turn ...: 20 MB of random data arrives with the same
#    SHA-256; both exit 0.
# c. a wrong password: coturn refuses (401), the client says so and goes
#    on without a relay; with -relay-only it exits 1.
# d. -turn twice, the first with a wrong password: the client says that it
#    refused and tries the second, which relays the chat.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
command -v turnserver >/dev/null ||
	fail "turnserver not found: install Debian package coturn (scripts/deps.sh does)"

SRV=198.51.100.10
CPORT=3479 # coturn; the punch server is on 3478
USER=alice-and-bob PASS=s3cret-lt
BIG_MB=20
DONE_S=60
REFUSE_S=20

sum() { sha256sum <"$1" | cut -d' ' -f1; }

# expect_relayed ID: ID's "Connection established" line names coturn's
# relayed addresses (its ports are 50000-50100 here).
expect_relayed() {
	local line
	line=$(grep -m1 '^Connection established: ' "$RUN_DIR/$1.err" || true)
	[[ $line =~ \(relay\ via\ $SRV:50[01][0-9][0-9]\) ]] ||
		fail "$1: expected a path 'relay via $SRV:50000-50100' (coturn's); seen: '$line'"
	grep -q "^Relay: $SRV:$CPORT relays for me at $SRV:50" "$RUN_DIR/$1.err" ||
		fail "$1: expected 'Relay: $SRV:$CPORT relays for me at ...'; seen: $(grep '^Relay' "$RUN_DIR/$1.err" || echo none)"
}

# stop_peers: both clients gone, ready for the next case.
stop_peers() {
	local id
	for id in "${!CLIENT_PID[@]}"; do
		lab_client_exited "$id" || lab_stop_pid "${CLIENT_PID[$id]}"
	done
	lab_check_sanitizers
	for id in alice bob; do
		rm -f "$RUN_DIR/$id.err" "$RUN_DIR/$id.out" "$RUN_DIR/$id.in"
	done
	CLIENT_PID=() CLIENT_RC=()
}

net_up nat2 --nat symmetric --timeout 20
lab_start_server
lab_spawn server "$NET_TMP/coturn" /dev/null turnserver -n --no-cli --no-tls --no-dtls -m 1 \
	--listening-ip "$SRV" --relay-ip "$SRV" --listening-port "$CPORT" \
	--min-port 50000 --max-port 50100 --lt-cred-mech --user "$USER:$PASS" --realm punch \
	--fingerprint --log-file stdout --pidfile "$NET_TMP/turnserver.pid" -b "$NET_TMP/turndb"
NET_PIDS+=("$LAB_PID")
net_wait_binding alice "$SRV" "$CPORT" "$LAB_START_S" ||
	fail "turnserver: expected Binding answers on $SRV:$CPORT within $LAB_START_S s; its log: $(tail -n 20 "$NET_TMP/coturn.out")"
TURN=turn:$USER:$PASS@$SRV:$CPORT

echo "== a. chat through coturn"
lab_start_client alice bob -turn "$TURN"
lab_start_client bob alice -turn "$TURN"
lab_wait_established alice bob
expect_relayed alice
expect_relayed bob
lab_chat alice bob
lab_chat bob alice
lab_quit alice bob
ok "chat both ways through coturn's relay"
stop_peers

echo "== b. $BIG_MB MB through coturn"
head -c $((BIG_MB << 20)) /dev/urandom >"$NET_TMP/big"
mkdir -p "$NET_TMP/recv"
LAB_STDIN=/dev/null lab_start_peer bob alice recv "$NET_TMP/recv" -turn "$TURN"
LAB_STDIN=/dev/null lab_start_peer alice bob send "$NET_TMP/big" -turn "$TURN"
lab_wait_established alice bob
expect_relayed alice
lab_wait_gone "$DONE_S" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
	fail "alice and bob: expected both to exit within $DONE_S s; seen: $(find "$NET_TMP/recv" -type f -printf '%s bytes received so far' 2>&1)"
for id in alice bob; do
	lab_client_exited "$id"
	expect_eq "$id's exit status" 0 "${CLIENT_RC[$id]}"
done
expect_eq "SHA-256 of the received file" "$(sum "$NET_TMP/big")" "$(sum "$NET_TMP/recv/big")"
ok "$BIG_MB MB intact through coturn's relay"
stop_peers

echo "== c. a wrong password"
LAB_STDIN=/dev/null lab_start_peer alice bob chat -turn "turn:$USER:wrong@$SRV:$CPORT" -relay-only
lab_wait_gone "$REFUSE_S" "${CLIENT_PID[alice]}" ||
	fail "alice: expected to exit within $REFUSE_S s with -relay-only and a wrong password; seen: still running"
lab_client_exited alice
expect_eq "alice's exit status (-relay-only, refused)" 1 "${CLIENT_RC[alice]}"
grep -q -- '-relay-only, but the relay .* refused: 401' "$RUN_DIR/alice.err" ||
	fail "alice: expected '-relay-only, but the relay ... refused: 401 ...'; seen: $(tail -n 2 "$RUN_DIR/alice.err" | tr '\n' '|')"
ok "a wrong password: refused with 401, and -relay-only exits 1"
stop_peers

echo "== d. two -turn: the first refuses, the second relays"
lab_start_client alice bob -turn "turn:$USER:wrong@$SRV:$CPORT" -turn "$TURN"
lab_start_client bob alice -turn "turn:$USER:wrong@$SRV:$CPORT" -turn "$TURN"
lab_wait_established alice bob
for id in alice bob; do
	grep -q "^punch: warning: relay: $SRV:$CPORT: 401 .*; trying $SRV:$CPORT\$" "$RUN_DIR/$id.err" ||
		fail "$id: expected 'punch: warning: relay: $SRV:$CPORT: 401 ...; trying $SRV:$CPORT'; seen: $(grep -i relay "$RUN_DIR/$id.err" | tr '\n' '|')"
	expect_relayed "$id"
done
lab_chat alice bob
lab_chat bob alice
lab_quit alice bob
ok "two -turn: the refused one is passed over, the chat goes through the second"
stop_peers

lab_check_sanitizers
echo PASS
