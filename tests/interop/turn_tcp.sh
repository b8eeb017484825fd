#!/usr/bin/env bash
# Interop: STUN and TURN over TCP (RFC 8489 6.2.2, RFC 8656 with a TCP
# control connection) against `punch server`.
#
#   turn_tcp.sh PATH_TO_PUNCH
#
# 1. coturn's turnutils_uclient -t through punch's relay (REST secret,
#    loopback peers allowed, the relayed addresses UDP), with
#    turnutils_peer as the peer: channels, indications, client to client,
#    and message lengths that are not a multiple of 4 (ChannelData
#    padding, RFC 8656 12.5).  Every message back, zero lost.  Every
#    allocation must then have gone with its connection (closed=) or a
#    Refresh of 0 (deleted=): none left to expire.
# 2. Binding over TCP (stunwire.py tcp-probe): XOR-MAPPED-ADDRESS is the
#    connection's address, with requests split and joined across reads; a
#    stream that is neither STUN nor ChannelData, and one announcing a
#    message over the 4 KB bound, are closed; past -max-tcp a connection
#    is accepted and closed.  The "tcp stopped" line counts each.
# 3. -no-tcp: no TCP listener.
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

# uclient NAME ARGS...: turnutils_uclient over TCP; output in $TMP/NAME.out.
uclient() {
	local name=$1
	shift
	run_client "$TMP/$name.out" turnutils_uclient -t -n "$N" -m "$M" -z 5 \
		-p "$PORT" "$@" 127.0.0.1
}

expect_clean() {
	local name=$1 rc=$2 out="$TMP/$1.out" want=$((N * M))
	((rc == 0)) || fail "$name: turnutils_uclient -t exited $rc, expected 0:
$(show "$out" | tail -20)"
	grep -q "tot_send_msgs=$want, tot_recv_msgs=$want\$" "$out" ||
		fail "$name: expected $want messages sent and received; uclient said:
$(grep 'tot_send_msgs' "$out" | tail -3 | sed 's/^/    | /')"
	grep -q "Total lost packets 0 (" "$out" ||
		fail "$name: packets lost: $(grep 'Total lost' "$out")"
	echo "ok: $name over TCP ($want messages, 0 lost)"
}

# stop_server NAME: SIGTERM, exit 0, no sanitizer report; sets RELAY_LINE
# (if any) and TCP_LINE.
stop_server() {
	local name=$1 err="$TMP/$1.err" rc=0
	kill -TERM "$PUNCH_PID"
	wait_gone "$PUNCH_PID" "$STOP_DEADLINE_S" || fail "$name: still running after SIGTERM"
	wait "$PUNCH_PID" || rc=$?
	! grep -q -E 'ERROR: (Address|Leak|Memory)Sanitizer|runtime error:' "$err" ||
		fail "$name: sanitizer report:
$(show "$err")"
	((rc == 0)) || fail "$name: exit status $rc"
	RELAY_LINE=$(grep '^punch server: relay stopped: ' "$err" || true)
	TCP_LINE=$(grep '^punch server: tcp stopped: ' "$err") ||
		fail "$name: no 'tcp stopped' line:
$(show "$err")"
}

# counter LINE NAME: a counter from a stop line.
counter() {
	[[ $1 =~ (^| )$2=([0-9]+) ]] || fail "no $2= in '$1'"
	echo "${BASH_REMATCH[2]}"
}

start_retrying() {
	for try in 1 2 3; do
		start_punch "$@" && return 0
		((try < 3)) || fail "punch server would not start"
	done
}

# 1. TURN over TCP
PEER_PORT=$(free_udp_port)
turnutils_peer -L 127.0.0.1 -p "$PEER_PORT" >"$TMP/peer.out" 2>&1 &
STARTED_PIDS+=($!)
start_retrying relay -listen 127.0.0.1:0 -auth-secret "$SECRET" \
	-relay-ports "$(relay_range)" -relay-allow-private \
	-max-allocations-per-prefix 100
PORT=$(port_of)

rc=0; uclient channels -W "$SECRET" -l 500 -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_clean channels $rc
rc=0; uclient indications -W "$SECRET" -l 500 -s -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_clean indications $rc
rc=0; uclient c2c_channels -W "$SECRET" -l 500 -y -c || rc=$?
expect_clean c2c_channels $rc
rc=0; uclient c2c_indications -W "$SECRET" -l 500 -y -s -c || rc=$?
expect_clean c2c_indications $rc
# 501 and 502 bytes: ChannelData padded both ways
rc=0; uclient padded -W "$SECRET" -l 501 -c -e 127.0.0.1 -r "$PEER_PORT" || rc=$?
expect_clean padded $rc
rc=0; uclient c2c_padded -W "$SECRET" -l 502 -y -c || rc=$?
expect_clean c2c_padded $rc

stop_server relay
want=$((6 * M))
allocated=$(counter "$RELAY_LINE" allocated)
((allocated >= want)) || fail "allocated=$allocated, expected $want or more: '$RELAY_LINE'"
gone=$(($(counter "$RELAY_LINE" closed) + $(counter "$RELAY_LINE" deleted)))
((gone == allocated)) || fail "allocated=$allocated but only $gone closed with their connection or deleted; the rest were left to expire: '$RELAY_LINE'"
(($(counter "$RELAY_LINE" closed) >= 1)) || fail "no allocation closed with its connection: '$RELAY_LINE'"
[[ $(counter "$RELAY_LINE" malformed_channel) == 0 ]] || fail "malformed ChannelData counted: '$RELAY_LINE'"
[[ $(counter "$TCP_LINE" malformed) == 0 && $(counter "$TCP_LINE" dropped) == 0 ]] ||
	fail "uclient's streams counted malformed or dropped: '$TCP_LINE'"
echo "ok: relay stop line: $RELAY_LINE"
echo "ok: tcp stop line: $TCP_LINE"

# 2. Binding over TCP, broken streams, -max-tcp
MAX_TCP=3
start_retrying binding -listen 127.0.0.1:0 -max-tcp "$MAX_TCP"
PORT=$(port_of)
"${STUNWIRE[@]}" tcp-probe 127.0.0.1 "$PORT" "$MAX_TCP" || fail "tcp-probe failed"
stop_server binding
[[ $(counter "$TCP_LINE" answered) == $((4 + MAX_TCP)) ]] || fail "expected answered=$((4 + MAX_TCP)): '$TCP_LINE'"
[[ $(counter "$TCP_LINE" malformed) == 2 ]] || fail "expected malformed=2 (the broken and the oversize stream): '$TCP_LINE'"
[[ $(counter "$TCP_LINE" over_cap) == 1 ]] || fail "expected over_cap=1: '$TCP_LINE'"
[[ $(counter "$TCP_LINE" connections) == $((2 + MAX_TCP)) ]] || fail "expected connections=$((2 + MAX_TCP)): '$TCP_LINE'"
echo "ok: tcp stop line: $TCP_LINE"

# 3. -no-tcp: nothing listens on TCP.  Asked of the kernel about this
# server's own sockets: a connection attempt to its UDP port number could
# reach another test's TCP listener that happens to have the same number
# (TCP and UDP ports are separate spaces), as it once did in a parallel run.
start_retrying udponly -listen 127.0.0.1:0 -no-tcp
listening=$(ss -H -ltnp 2>&1) || fail "ss -ltnp failed: $listening"
! grep -q "pid=$PUNCH_PID," <<<"$listening" ||
	fail "-no-tcp: the server listens on TCP: $(grep "pid=$PUNCH_PID," <<<"$listening")"
ss -H -lunp | grep -q "pid=$PUNCH_PID," ||
	fail "-no-tcp: expected the server's UDP socket in ss -lunp (is ss showing processes?)"
kill -TERM "$PUNCH_PID"
wait_gone "$PUNCH_PID" "$STOP_DEADLINE_S" || fail "udponly: still running after SIGTERM"
! grep -q 'tcp stopped' "$TMP/udponly.err" || fail "-no-tcp: a tcp stop line"
echo "ok: -no-tcp refuses TCP"
echo "PASS"
