#!/usr/bin/env bash
# First contact: a squatted id, and pairing with a one-time code (scenario
# lan).  Only punch commands, so that the test holds whatever REGISTER
# looks like on the wire.
#
#   pair.sh PATH_TO_PUNCH
#
# 1. Squat, no code: mallory registers as "bob" with her own key before bob
#    does.  alice, on first contact, connects to mallory and remembers
#    mallory's key as bob's; all she is told is that only the server vouches
#    for it ("unverified: ...").
# 2. Squat, with a code: the real bob makes a code (-code) and alice uses
#    it.  mallory does not know it: alice refuses ("pairing code did not
#    match"), exits 1 and pins nothing; mallory is told alice wants a code.
# 3. A wrong code: both sides say "pairing code did not match", exit 1 and
#    pin nothing.
# 4. The right code, where alice's known_peers holds a first-use key for bob
#    that is not bob's (case 1's leftover): both pair, the chat works, and
#    each side's known_peers holds the other's key, alice's old line
#    replaced.
# 5. A code on one side only (the QUIC server's): alice, without one, is
#    told that bob wants to pair; bob says pairing failed; both exit 1.
# 6. punch pipe with a code, 1 MB each way: the app starts only after the
#    pairing, and every byte arrives.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

OTHER_FP=SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA

# re TEXT: TEXT as an extended regex that matches itself.
re() {
	sed 's/[][\\.^$*+?(){}|/]/\\&/g' <<<"$1"
}

# fp_of NAME: the fingerprint of NAME's key (made now if need be).
fp_of() {
	local fp
	mkdir -p "$RUN_DIR/$1.config"
	fp=$(XDG_CONFIG_HOME=$RUN_DIR/$1.config "$PUNCH" id 2>/dev/null)
	[[ $fp == SHA256:* ]] || fail "punch id for $1: expected a fingerprint; seen '$fp'"
	echo "$fp"
}

# start_as NAME NODE ID PEER [ARGS...]: punch chat in NODE's namespace as
# ID, with NAME's own key; logs RUN_DIR/NAME.out/.err, input CLIENT_FD[NAME].
# (lab_start_client names the namespace, the key and the logs after the
# id; mallory shares bob's namespace and id, not his key.)
start_as() {
	local name=$1 node=$2 id=$3 peer=$4 fifo=$RUN_DIR/$1.in fd
	shift 4
	mkfifo "$fifo"
	exec {fd}<>"$fifo"
	mkdir -p "$RUN_DIR/$name.config"
	lab_spawn "$node" "$RUN_DIR/$name" "$fifo" env XDG_CONFIG_HOME="$RUN_DIR/$name.config" \
		SSLKEYLOGFILE=/dev/null "$PUNCH" chat -server "$SERVER_IP:$LAB_STUN_PORT" \
		-id "$id" -peer "$peer" "$@"
	CLIENT_PID[$name]=$LAB_PID
	CLIENT_FD[$name]=$fd
}

# code_of NAME: the code NAME printed ("Pairing code: CODE (...").
code_of() {
	lab_wait_client "$1" '^Pairing code: [0-9]+-[a-z]+-[a-z]+ ' "a 'Pairing code:' line"
	sed -n -E 's/^Pairing code: ([0-9]+-[a-z]+-[a-z]+) .*/\1/p' "$RUN_DIR/$1.err" | head -n 1
}

# expect_exit NAME STATUS: NAME exits, with STATUS, within the timeout.
expect_exit() {
	lab_wait_gone "$OPT_TIMEOUT" "${CLIENT_PID[$1]}" || fail "$1: expected to exit; seen still running"
	lab_client_exited "$1"
	expect_eq "$1's exit status" "$2" "${CLIENT_RC[$1]}"
}

# expect_unpinned NAME PEER: NAME's known_peers has no line for PEER.
expect_unpinned() {
	local f=$RUN_DIR/$1.config/punch/known_peers
	if [[ -e $f ]] && grep -q "^$2 " "$f"; then
		fail "$1's known_peers: expected no line for $2; seen '$(grep "^$2 " "$f")'"
	fi
	return 0
}

start_case() {
	echo "== $1"
	net_up lan
	ALICE_FP=$(fp_of alice)
	BOB_FP=$(fp_of bob)
	MALLORY_FP=$(fp_of mallory)
	lab_start_server
}

end_case() {
	lab_check_sanitizers
	lab_run_stop 0 2>/dev/null || true
	lab_down
	rm -rf "$RUN_DIR"
	lab_run_init
}

# mallory takes the id "bob" first.
squat() {
	start_as mallory bob bob alice
	lab_wait_client mallory "$LAB_READY_RE" "mallory registered as bob"
}

# 1. The attack, as it works without a code.
start_case "squatted id, no code"
squat
start_as alice alice alice bob
lab_wait_client alice '^Secure link up' "the secure link (to mallory)"
seen=$(cat "$RUN_DIR/alice.config/punch/known_peers")
expect_eq "alice's known_peers after first contact with the squatter" "bob $MALLORY_FP" "$seen"
note "alice pinned mallory's key as bob's: first use trusts the server"
lab_wait_client alice "^unverified: only the rendezvous server vouches for bob's key" \
	"the warning that only the server vouches for the key"
ok "without a code, first contact with a squatter is reported as unverified"
end_case

# 2. The same attack against -code.
start_case "squatted id, with bob's code"
squat
start_as bob bob bob alice -code
code=$(code_of bob)
start_as alice alice alice bob -code "$code"
lab_wait_client alice "pairing code did not match: " "the pairing failure"
expect_exit alice 1
expect_unpinned alice bob
lab_wait_client mallory "alice wants to pair with a code, and this side has none" \
	"mallory told that alice wants a code"
grep -q '^Paired with' "$RUN_DIR/alice.err" && fail "alice: expected no 'Paired with'; seen it"
ok "a squatter without the code is refused, and nothing is pinned"
end_case

# 3. A wrong code on one side.
start_case "wrong code"
start_as bob bob bob alice -code new
code=$(code_of bob)
n=${code%%-*}
wrong=$(((n + 1) % 1000))-${code#*-}
start_as alice alice alice bob -code "$wrong"
for who in alice bob; do
	lab_wait_client "$who" "pairing code did not match: " "the pairing failure"
	expect_exit "$who" 1
done
expect_unpinned alice bob
expect_unpinned bob alice
ok "a wrong code fails on both sides, and nothing is pinned"
end_case

# 4. The right code replaces a first-use key.
start_case "right code"
printf '# punch known_peers\nbob %s\ncarol %s\n' "$OTHER_FP" "$OTHER_FP" \
	>"$RUN_DIR/alice.config/punch/known_peers"
start_as bob bob bob alice -code
code=$(code_of bob)
start_as alice alice alice bob -code "${code^^}"
lab_wait_client alice "^Paired with bob: the code matched; its key $(re "$BOB_FP") is pinned in .*/known_peers \\(replacing line 2\\)" \
	"the pairing, replacing line 2"
lab_wait_client bob "^Paired with alice: the code matched; its key $(re "$ALICE_FP") is pinned in .*/known_peers\$" \
	"the pairing"
lab_chat alice bob
lab_chat bob alice
lab_quit alice bob
expect_eq "alice's known_peers" "# punch known_peers
carol $OTHER_FP
bob $BOB_FP" "$(cat "$RUN_DIR/alice.config/punch/known_peers")"
expect_eq "bob's known_peers" "alice $ALICE_FP" "$(cat "$RUN_DIR/bob.config/punch/known_peers")"
ok "the right code pairs, and both keys are pinned"
end_case

# 5. Only bob has a code.
start_case "a code on one side only"
start_as bob bob bob alice -code
code_of bob >/dev/null
start_as alice alice alice bob
lab_wait_client alice "bob wants to pair with a code, and this side has none: run punch with -code and the same code" \
	"the request for a code"
lab_wait_client bob "pairing code did not match: alice (has no code|ended the link during pairing)" "the pairing failure"
expect_exit alice 1
expect_exit bob 1
expect_unpinned bob alice
ok "a code on one side only stops both, saying why"
end_case

# 6. pipe, both ways, after pairing.
start_case "pipe with a code"
head -c 1048576 /dev/urandom >"$NET_TMP/a2b"
head -c 1048576 /dev/urandom >"$NET_TMP/b2a"
LAB_STDIN=$NET_TMP/b2a lab_start_peer bob alice pipe -code
code=$(code_of bob)
LAB_STDIN=$NET_TMP/a2b lab_start_peer alice bob pipe -code "$code"
expect_exit alice 0
expect_exit bob 0
sum() { sha256sum <"$1" | cut -d' ' -f1; }
expect_eq "SHA-256 of bob's stdout" "$(sum "$NET_TMP/a2b")" "$(sum "$RUN_DIR/bob.out")"
expect_eq "SHA-256 of alice's stdout" "$(sum "$NET_TMP/b2a")" "$(sum "$RUN_DIR/alice.out")"
grep -q '^Paired with bob: the code matched' "$RUN_DIR/alice.err" ||
	fail "alice: expected 'Paired with bob: the code matched'; seen none"
ok "punch pipe pairs first, then carries 1 MB each way intact"
end_case
echo PASS
