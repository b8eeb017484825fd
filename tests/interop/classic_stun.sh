#!/usr/bin/env bash
# Interop: the Vovida RFC 3489 client (`stun`, Debian package stun-client)
# against `punch server -alt`.
#
#   classic_stun.sh PATH_TO_PUNCH
#
# That client sends classic Binding requests: no magic cookie, a 128-bit
# transaction id.  A server that insists on the cookie gives it no answer
# at all ("Primary: Blocked or could not reach STUN server", status 0x1c).
# punch must answer each in kind: the client's -v transcript must show
# MAPPED-ADDRESS equal to its own source (we choose the port with -p),
# CHANGED-ADDRESS equal to the -alt address, answers from the alternate IP
# and the alternate port, tests I, II (CHANGE-REQUEST: IP) and III (port)
# passing, and its verdict "Open" (status 1:
# loopback has no NAT).  The server must exit 0 with errors=0 malformed=0.
# Traffic stays on 127.0.0.0/8.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap interop_cleanup EXIT
trap 'exit 130' INT TERM
require_punch "${1:-}"
command -v stun >/dev/null || fail "stun not found: install Debian package stun-client (scripts/deps.sh does)"

started=0
for attempt in 1 2 3; do
	read -r P1 P2 < <("${STUNWIRE[@]}" freeports 2 127.0.0.1 127.0.0.2) ||
		fail "no two free consecutive UDP ports on 127.0.0.1 and 127.0.0.2"
	if start_punch classic -listen "127.0.0.1:$P1" -alt "127.0.0.2:$P2"; then
		started=1
		break
	fi
	note "attempt $attempt: server did not start on ports $P1/$P2 (taken meanwhile?); retrying"
done
((started)) || fail "punch server did not start in 3 attempts"

# The client binds its source port and the next one (for test I(2)).
read -r C _ < <("${STUNWIRE[@]}" freeports 2 127.0.0.1) ||
	fail "no two free consecutive UDP ports on 127.0.0.1 for the client"
out=$TMP/client.out
rc=0
run_client "$out" stun "127.0.0.1:$P1" -v -p "$C" || rc=$?
((rc != 124)) || fail "stun did not finish within ${CLIENT_TIMEOUT_S} s:
$(show "$out")"

# expect LINE WHY: the transcript holds exactly this line.
expect() {
	grep -q -x -F -- "$1" "$out" || fail "$2: no line '$1' in the client's transcript:
$(show "$out")"
}
expect "MappedAddress = 127.0.0.1:$C" "no answer to the classic Binding request, or a wrong MAPPED-ADDRESS"
expect "ChangedAddress = 127.0.0.2:$P2" "CHANGED-ADDRESS is not the -alt address"
expect "SourceAddress = 127.0.0.1:$P1" "SOURCE-ADDRESS of the plain answer is not the primary address"
# This client's test II asks for "change IP" alone (flags 4), test III for
# "change port" (flags 2).
expect "SourceAddress = 127.0.0.2:$P1" "no answer from the alternate IP (CHANGE-REQUEST ignored?)"
expect "SourceAddress = 127.0.0.1:$P2" "no answer from the alternate port (CHANGE-REQUEST ignored?)"
expect "test I = 1" "test I (plain Binding) failed"
expect "test II = 1" "test II (CHANGE-REQUEST: IP) failed"
expect "test III = 1" "test III (CHANGE-REQUEST: port) failed"
grep -q -E '^Primary: Open' "$out" || fail "the client's verdict is not 'Open' on loopback:
$(show "$out")"
((rc == 1)) || fail "stun exited with status $rc, expected 1 (Open):
$(show "$out")"
echo "ok: the RFC 3489 client got answers and its mapped address 127.0.0.1:$C"

stop_punch classic
((ANSWERED >= 4)) || fail "answered=$ANSWERED, expected at least 4 (tests I, II, III, I(2))"
((ERRORS == 0 && MALFORMED == 0)) ||
	fail "errors=$ERRORS malformed=$MALFORMED, expected 0 and 0"
echo "ok: server stopped cleanly, answered=$ANSWERED"
