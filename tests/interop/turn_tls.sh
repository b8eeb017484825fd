#!/usr/bin/env bash
# Interop: TURN over TLS (RFC 8656 3.1: TLS-over-TCP to the server, the
# relayed addresses still UDP) against `punch server -tls-listen`.
#
#   turn_tls.sh PATH_TO_PUNCH
#
# coturn's turnutils_uclient -t -S through punch's relay (REST secret,
# loopback peers allowed), with turnutils_peer as the peer: channels and
# client to client, with a message length that is not a multiple of 4
# (ChannelData padding inside TLS).  Every message back, zero lost; the
# server's certificate comes from a test CA (tests/tls_certs.sh).  Then
# -tls-listen without -cert, or with a key file that is not one, is
# refused with one sentence.  Traffic stays on 127.0.0.1.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap interop_cleanup EXIT
trap 'exit 130' INT TERM
require_punch "${1:-}"
need turnutils_uclient turnutils_peer openssl

SECRET=interop-secret
N=100   # messages per client
M=4     # clients

"$(dirname "$0")/../tls_certs.sh" "$TMP/certs" 127.0.0.1

free_tcp_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

uclient() {
	local name=$1
	shift
	run_client "$TMP/$name.out" turnutils_uclient -t -S -n "$N" -m "$M" -z 5 \
		-p "$TLS_PORT" "$@" 127.0.0.1
}

expect_clean() {
	local name=$1 rc=$2 out="$TMP/$1.out" want=$((N * M))
	((rc == 0)) || fail "$name: turnutils_uclient -t -S exited $rc, expected 0:
$(show "$out" | tail -20)"
	grep -q "tot_send_msgs=$want, tot_recv_msgs=$want\$" "$out" ||
		fail "$name: expected $want messages sent and received; uclient said:
$(grep 'tot_send_msgs' "$out" | tail -3 | sed 's/^/    | /')"
	grep -q "Total lost packets 0 (" "$out" ||
		fail "$name: packets lost: $(grep 'Total lost' "$out")"
	grep -q "tls_connect: client session connected with cipher" "$out" ||
		fail "$name: uclient did not say it connected over TLS:
$(show "$out" | head -20)"
	echo "ok: $name over TLS ($want messages, 0 lost)"
}

PEER_PORT=$(free_udp_port)
turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$TMP/peer.out" 2>&1 &
STARTED_PIDS+=($!)
for try in 1 2 3; do
	TLS_PORT=$(free_tcp_port)
	start_punch relay -listen 127.0.0.1:0 -auth-secret "$SECRET" \
		-relay-ports "$(relay_range)" -relay-allow-private \
		-max-allocations-per-prefix 100 -tls-listen "127.0.0.1:$TLS_PORT" \
		-cert "$TMP/certs/cert.pem" -key "$TMP/certs/key.pem" && break
	((try < 3)) || fail "punch server -tls-listen would not start"
done
grep -q "^punch server: TLS on 127.0.0.1:$TLS_PORT\$" "$TMP/relay.err" ||
	fail "expected 'punch server: TLS on 127.0.0.1:$TLS_PORT'; stderr:
$(show "$TMP/relay.err")"

rc=0; uclient channels -W "$SECRET" -l 501 -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_clean channels $rc
rc=0; uclient c2c_channels -W "$SECRET" -l 502 -y -c || rc=$?
expect_clean c2c_channels $rc

kill -TERM "$PUNCH_PID"
wait_gone "$PUNCH_PID" "$STOP_DEADLINE_S" || fail "relay: still running after SIGTERM"
rc=0; wait "$PUNCH_PID" || rc=$?
((rc == 0)) || fail "relay: exit status $rc"
! grep -q -E 'ERROR: (Address|Leak|Memory)Sanitizer|runtime error:' "$TMP/relay.err" ||
	fail "relay: sanitizer report:
$(show "$TMP/relay.err")"
line=$(grep '^punch server: relay stopped: ' "$TMP/relay.err") || fail "no 'relay stopped' line"
[[ $line =~ malformed_channel=0 ]] || fail "malformed ChannelData counted: '$line'"
echo "ok: $line"

# Bad flags: one sentence each, exit 2, nothing served.
expect_refused() { # WANT ARGS...
	local want=$1 rc=0 err
	shift
	err=$("$PUNCH" server -listen 127.0.0.1:0 -state "$TMP/bad.state" "$@" 2>&1 >/dev/null) && rc=0 || rc=$?
	((rc != 0)) || fail "punch server $*: exit 0, expected a refusal"
	[[ $err == *"$want"* ]] || fail "punch server $*: expected '$want'; seen '$err'"
	echo "ok: refused: $err"
}
expect_refused "-tls-listen, -cert and -key go together" -tls-listen "127.0.0.1:$TLS_PORT"
expect_refused "cannot use -cert" -tls-listen "127.0.0.1:$TLS_PORT" \
	-cert "$TMP/certs/cert.pem" -key "$TMP/certs/ca.pem"
echo "PASS"
