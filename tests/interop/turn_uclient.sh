#!/usr/bin/env bash
# Interop: coturn's turnutils_uclient against `punch server -auth-secret`.
#
#   turn_uclient.sh PATH_TO_PUNCH
#
# One server on 127.0.0.1 with the relay on (REST secret, loopback peers
# allowed, since everything here is on loopback), and coturn's
# turnutils_peer as the peer (an echo).  turnutils_uclient then relays
# through it, and must report every message back and zero lost:
#   1. channels (ChannelData), to turnutils_peer
#   2. Send/Data indications (-s), to turnutils_peer
#   3. client to client (-y): two allocations relaying to each other, with
#      channels and with indications
#   4. credentials computed here (-u EXPIRY:NAME -w base64(HMAC-SHA1)), as a
#      browser's would be, rather than -W
# and must fail:
#   5. on a server without -relay-allow-private: a wrong secret, an
#      expired username (no allocation for either), a loopback peer (403)
# The server's relay stop line must agree: allocations made only for the
# good runs, 401 challenges, the 403, no malformed ChannelData.
# Traffic stays on 127.0.0.1.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap interop_cleanup EXIT
trap 'exit 130' INT TERM
require_punch "${1:-}"
need turnutils_uclient turnutils_peer

SECRET=interop-secret
N=200   # messages per client
M=4     # clients

# uclient NAME ARGS...: run turnutils_uclient against the server; the
# output is in $TMP/NAME.out.  Returns its status.
uclient() {
	local name=$1
	shift
	run_client "$TMP/$name.out" turnutils_uclient -n "$N" -m "$M" -l 500 -z 5 \
		-p "$PORT" "$@" 127.0.0.1
}

# expect_clean NAME: exit 0, every message back, "Total lost packets 0".
expect_clean() {
	local name=$1 rc=$2 out="$TMP/$1.out" want=$((N * M))
	((rc == 0)) || fail "$name: turnutils_uclient exited $rc, expected 0:
$(show "$out" | tail -20)"
	grep -q "tot_send_msgs=$want, tot_recv_msgs=$want\$" "$out" ||
		fail "$name: expected $want messages sent and received; uclient said:
$(grep 'tot_send_msgs' "$out" | tail -3 | sed 's/^/    | /')"
	grep -q "Total lost packets 0 (" "$out" ||
		fail "$name: packets lost: $(grep 'Total lost' "$out")"
	echo "ok: $name ($want messages, 0 lost)"
}

# expect_refused NAME RC WHAT: uclient must have failed, for WHAT.
expect_refused() {
	local name=$1 rc=$2 what=$3
	((rc != 0 && rc != 124)) || fail "$name: turnutils_uclient exited $rc, expected a failure ($what):
$(show "$TMP/$name.out" | tail -10)"
	grep -q "$what" "$TMP/$name.out" || fail "$name: expected '$what' in uclient's output:
$(show "$TMP/$name.out" | tail -10)"
	echo "ok: $name refused ($what)"
}

# stop_relay NAME: SIGTERM, exit 0, no sanitizer report; sets RELAY_LINE.
stop_relay() {
	local name=$1 err="$TMP/$1.err" rc=0
	kill -TERM "$PUNCH_PID"
	wait_gone "$PUNCH_PID" "$STOP_DEADLINE_S" || fail "$name: still running after SIGTERM"
	wait "$PUNCH_PID" || rc=$?
	! grep -q -E 'ERROR: (Address|Leak|Memory)Sanitizer|runtime error:' "$err" ||
		fail "$name: sanitizer report:
$(show "$err")"
	((rc == 0)) || fail "$name: exit status $rc"
	RELAY_LINE=$(grep '^punch server: relay stopped: ' "$err") ||
		fail "$name: no relay stop line:
$(show "$err")"
}

# counter NAME: a counter from RELAY_LINE.
counter() {
	[[ $RELAY_LINE =~ (^| )$1=([0-9]+) ]] || fail "no $1= in '$RELAY_LINE'"
	echo "${BASH_REMATCH[2]}"
}

PEER_PORT=$(free_udp_port)
turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$TMP/peer.out" 2>&1 &
STARTED_PIDS+=($!)

for try in 1 2 3; do
	start_punch relay -listen 127.0.0.1:0 -auth-secret "$SECRET" \
		-relay-ports "$(relay_range)" -relay-allow-private \
		-max-allocations-per-prefix 100 && break
	((try < 3)) || fail "punch server would not start"
done
PORT=$(port_of)
grep -q '^punch server: relay at 127.0.0.1, ports ' "$TMP/relay.err" ||
	fail "no relay line at start:
$(show "$TMP/relay.err")"

rc=0; uclient channels -W "$SECRET" -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_clean channels $rc
rc=0; uclient indications -W "$SECRET" -s -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_clean indications $rc
rc=0; uclient c2c_channels -W "$SECRET" -y -c || rc=$?
expect_clean c2c_channels $rc
rc=0; uclient c2c_indications -W "$SECRET" -y -s -c || rc=$?
expect_clean c2c_indications $rc

# A browser's credentials, made the REST way: valid for an hour.
USER="$(($(date +%s) + 3600)):alice"
PASS=$("$PYTHON" -c 'import base64, hashlib, hmac, sys
print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha1).digest()).decode())' "$SECRET" "$USER")
rc=0; uclient computed -u "$USER" -w "$PASS" -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_clean computed $rc

stop_relay relay
# At least one allocation per client of each run (-y makes more).
# uclient leaves them to expire, hence -max-allocations-per-prefix above.
want=$((5 * M))
(($(counter allocated) >= want)) || fail "allocated=$(counter allocated), expected $want or more: '$RELAY_LINE'"
(($(counter challenges) >= want)) || fail "fewer 401 challenges than allocations: '$RELAY_LINE'"
[[ $(counter malformed_channel) == 0 ]] || fail "malformed ChannelData counted: '$RELAY_LINE'"
[[ $(counter forbidden) == 0 ]] || fail "403s with loopback allowed: '$RELAY_LINE'"
echo "ok: relay stop line: $RELAY_LINE"

# Without -relay-allow-private, the loopback peer is refused with 403.
for try in 1 2 3; do
	start_punch strict -listen 127.0.0.1:0 -auth-secret "$SECRET" \
		-relay-ports "$(relay_range)" && break
	((try < 3)) || fail "punch server would not start"
done
PORT=$(port_of)
rc=0; uclient wrong_secret -W not-the-secret -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_refused wrong_secret $rc "Cannot complete Allocation"
OLD="$(($(date +%s) - 60)):alice"
OLD_PASS=$("$PYTHON" -c 'import base64, hashlib, hmac, sys
print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha1).digest()).decode())' "$SECRET" "$OLD")
rc=0; uclient expired -u "$OLD" -w "$OLD_PASS" -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_refused expired $rc "Cannot complete Allocation"

rc=0; uclient loopback_peer -W "$SECRET" -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_refused loopback_peer $rc "error 403"
stop_relay strict
(($(counter forbidden) >= 1)) || fail "no 403 counted: '$RELAY_LINE'"
# The refused credentials made nothing: the only allocations are those of
# the loopback_peer run (up to M: uclient stops at the first 403); 2 M
# more would have come from the refused runs.
allocated=$(counter allocated)
((allocated >= 1 && allocated <= M)) || fail "allocated=$allocated, expected 1-$M (none for refused credentials): '$RELAY_LINE'"
[[ $RELAY_LINE == *" relayed=0/0 "* ]] || fail "datagrams relayed to a forbidden peer: '$RELAY_LINE'"
echo "PASS"
