#!/usr/bin/env bash
# SSLKEYLOGFILE holds the link's secrets (scenario lan):
#
#   keylog.sh PATH_TO_PUNCH
#
# 1. A new file: alice creates it 0600 (under umask 022), writes NSS key
#    log lines, says once on stderr that secrets are being written, and the
#    chat works.  bob, without SSLKEYLOGFILE, says nothing of the kind.
# 2. A symbolic link: alice refuses to write through it, says so, and
#    exits 1; the link's target stays empty.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
umask 022

WARN='^punch: warning: writing TLS secrets to .* \(SSLKEYLOGFILE\): anyone who can read it can decrypt this link$'

start_case() {
	echo "== $1"
	net_up lan
	lab_start_server
}

end_case() {
	lab_run_stop 0 2>/dev/null || true
	lab_down
	rm -rf "$RUN_DIR"
	lab_run_init
}

# 1. A new file.
keys=$NET_TMP/keys.txt
start_case "a new key log file"
LAB_KEYLOG=$keys lab_start_client alice bob
lab_start_client bob alice
lab_wait_established alice bob
lab_wait_client alice '^Secure link up' "'Secure link up'"
lab_chat alice bob
lab_quit alice bob
[[ -f $keys ]] || fail "SSLKEYLOGFILE: expected $keys to exist; seen no file"
expect_eq "mode of the key log file" 600 "$(stat -c %a "$keys")"
grep -q -E '^CLIENT_HANDSHAKE_TRAFFIC_SECRET [0-9a-f]{64} [0-9a-f]{64,128}$' "$keys" ||
	fail "key log: expected NSS lines 'CLIENT_HANDSHAKE_TRAFFIC_SECRET RANDOM SECRET'; seen $(head -c 300 "$keys")"
expect_eq "warning lines on alice's stderr" 1 "$(grep -c -E "$WARN" "$RUN_DIR/alice.err" || true)"
expect_eq "warning lines on bob's stderr" 0 "$(grep -c 'TLS secrets' "$RUN_DIR/bob.err" || true)"
lab_check_sanitizers
ok "the key log is created 0600 and the user is told"
end_case

# 2. A symbolic link.
target=$NET_TMP/target.txt
link=$NET_TMP/link.txt
: >"$target"
ln -s "$target" "$link"
start_case "a key log file that is a symbolic link"
LAB_KEYLOG=$link lab_start_client alice bob
lab_start_client bob alice
lab_wait_client alice "SSLKEYLOGFILE .* is a symbolic link; not writing TLS secrets through it" \
	"the refusal of the symbolic link"
lab_wait_gone "$OPT_TIMEOUT" "${CLIENT_PID[alice]}" || fail "alice: expected to exit after refusing; seen still running"
lab_client_exited alice
expect_eq "alice's exit status" 1 "${CLIENT_RC[alice]}"
expect_eq "bytes written through the link to $target" 0 "$(wc -c <"$target")"
grep -q '^Secure link up' "$RUN_DIR/alice.err" && fail "alice: expected no secure link; seen 'Secure link up'"
lab_check_sanitizers
ok "a symbolic link as SSLKEYLOGFILE is refused"
end_case
echo PASS
