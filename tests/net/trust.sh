#!/usr/bin/env bash
# Whose key a peer trusts (scenario nat2):
#
#   trust.sh PATH_TO_PUNCH
#
# 1. alice pins bob's real key with -peer-key: they connect and chat.
# 2. alice pins some other key: alice refuses, saying so, and exits 1.
# 3. alice's known_peers holds another key for bob: alice refuses with the
#    warning that names the file and the line, and exits 1.
# 4. First use: no pin, no known_peers line: they connect on the key bob
#    registered, and alice remembers it in known_peers.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

OTHER_FP=SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA

# re TEXT: TEXT as an extended regex that matches itself (fingerprints
# hold '+' and '/').
re() {
	sed 's/[][\\.^$*+?(){}|/]/\\&/g' <<<"$1"
}

# case NAME ALICE_ARGS...: a fresh lab run of nat2 with bob's key made
# beforehand (so that the test knows it) and alice's extra arguments.
start_case() {
	echo "== $1"
	shift
	net_up nat2
	mkdir -p "$RUN_DIR/bob.config" "$RUN_DIR/alice.config/punch"
	BOB_FP=$(XDG_CONFIG_HOME=$RUN_DIR/bob.config "$PUNCH" id 2>/dev/null)
	[[ $BOB_FP == SHA256:* ]] || fail "punch id: expected a fingerprint; seen '$BOB_FP'"
	lab_start_server
}

end_case() {
	lab_run_stop 0 2>/dev/null || true
	lab_down
	rm -rf "$RUN_DIR"
	lab_run_init
}

# 1. The right pin.
start_case "pinned key, right"
lab_start_client alice bob -peer-key "$BOB_FP"
lab_start_client bob alice
lab_wait_established alice bob
lab_wait_client alice '^Peer key matches -peer-key: ' "'Peer key matches -peer-key'"
lab_chat alice bob
lab_chat bob alice
lab_quit alice bob
ok "a pinned key that matches connects"
end_case

# 2. A wrong pin.
start_case "pinned key, wrong"
lab_start_client alice bob -peer-key "$OTHER_FP"
lab_start_client bob alice
lab_wait_client alice "bob's key is $(re "$BOB_FP"), not the pinned $(re "$OTHER_FP"): refusing to connect" \
	"the refusal of bob's key"
lab_wait_gone "$OPT_TIMEOUT" "${CLIENT_PID[alice]}" || fail "alice: expected to exit after refusing; seen still running"
lab_client_exited alice
expect_eq "alice's exit status" 1 "${CLIENT_RC[alice]}"
grep -q '^Secure link up' "$RUN_DIR/alice.err" && fail "alice: expected no secure link; seen 'Secure link up'"
ok "a wrong pinned key is refused"
end_case

# 3. known_peers has another key for bob, on line 2.
start_case "known_peers mismatch"
printf '# punch known_peers\nbob %s\n' "$OTHER_FP" >"$RUN_DIR/alice.config/punch/known_peers"
lab_start_client alice bob
lab_start_client bob alice
lab_wait_client alice "WARNING: bob's key has changed! It is now $(re "$BOB_FP"), but .*/known_peers line 2 has a different one" \
	"the changed-key warning naming known_peers line 2"
lab_wait_gone "$OPT_TIMEOUT" "${CLIENT_PID[alice]}" || fail "alice: expected to exit after refusing; seen still running"
lab_client_exited alice
expect_eq "alice's exit status" 1 "${CLIENT_RC[alice]}"
ok "a known_peers mismatch is refused, naming the file and line"
end_case

# 4. First use.
start_case "first use"
lab_start_client alice bob
lab_start_client bob alice
lab_wait_established alice bob
lab_chat alice bob
lab_quit alice bob
seen=$(cat "$RUN_DIR/alice.config/punch/known_peers")
expect_eq "alice's known_peers after first use" "bob $BOB_FP" "$seen"
ok "first use connects and remembers the key"
end_case
echo PASS
