#!/usr/bin/env bash
# punch forward (scenario nat2):
#
#   forward.sh PATH_TO_PUNCH
#
# bob runs a TCP echo on 127.0.0.1:7000 in its namespace and `punch forward`;
# alice runs `punch forward -L 18080:127.0.0.1:7000`.  From alice's namespace,
# 20 connections at once each send 256 KB of random data through
# 127.0.0.1:18080 and read it back, every byte checked.  Then a connection
# to a port where nothing listens on bob's side is refused cleanly, and
# Ctrl-C (SIGINT) at alice stops both sides with status 0.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

ECHO=(python3 "$NET_HERE/tcpecho.py")
CONNS=20
BYTES=$((256 << 10))
DONE_S=40 # for the 20 echoes (under 1 s on a laptop)
STOP_S=10 # for both to exit after Ctrl-C

net_up nat2
lab_start_server
: >"$NET_TMP/echo.out"
lab_nsx bob "${ECHO[@]}" serve 127.0.0.1:7000 120 >"$NET_TMP/echo.out" 2>&1 &
NET_PIDS+=($!)
lab_wait_line "$NET_TMP/echo.out" '^ready$' "$NET_READY_S" "$!" ||
	fail "the TCP echo in bob's namespace did not start: $(cat "$NET_TMP/echo.out")"

LAB_STDIN=/dev/null lab_start_peer alice bob forward -L 18080:127.0.0.1:7000 -L 0:127.0.0.1:7001
LAB_STDIN=/dev/null lab_start_peer bob alice forward
lab_wait_established alice bob
lab_wait_client alice '^Forwarding 127\.0\.0\.1:18080 to 127\.0\.0\.1:7000 on bob.s side$' \
	"'Forwarding 127.0.0.1:18080 to 127.0.0.1:7000 on bob's side'"
lab_wait_client alice '^Forwarding 127\.0\.0\.1:[0-9]+ to 127\.0\.0\.1:7001 on bob.s side$' \
	"the second forward, on a port the kernel chose"
lab_wait_client bob "^Accepting alice's forwarded connections" "'Accepting alice's forwarded connections'"

rc=0
out=$(lab_nsx alice timeout -k 2 $((DONE_S + 5)) "${ECHO[@]}" clients 127.0.0.1:18080 "$CONNS" "$BYTES" "$DONE_S" 2>&1) || rc=$?
echo "    $out" | head -n 25
((rc == 0)) || fail "alice: expected $CONNS echoed connections, every byte back; seen status $rc (above)"
ok "$CONNS connections at once through punch forward, $BYTES bytes each way each, all intact"

# Nothing listens on bob's 127.0.0.1:7001: alice's client sees the
# connection closed, and bob says why.  (Closed with FIN, or with RST when
# the kernel still held the client's unread "hello": either is fine.)
port=$(sed -n 's/^Forwarding 127\.0\.0\.1:\([0-9]*\) to 127\.0\.0\.1:7001 .*/\1/p' "$RUN_DIR/alice.err")
got=$(lab_nsx alice timeout 10 python3 -c '
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
c.sendall(b"hello")
try:
    print(len(c.recv(100)))
except ConnectionResetError:
    print(0)' "$port" 2>&1) || fail "alice: a connection to 127.0.0.1:$port: expected it closed with no data; seen: $got"
expect_eq "bytes read on a connection bob could not make" 0 "$got"
lab_wait_client bob 'forward: alice asked for 127\.0\.0\.1:7001: connection refused' "the refusal of 127.0.0.1:7001"
lab_wait_client alice 'bob cannot connect to it: connection refused' "the reason bob gave"
ok "a connection bob cannot make is closed, with the reason on both sides"

lab_expect_running "after the connections" alice bob
kill -INT "${CLIENT_PID[alice]}"
lab_wait_gone "$STOP_S" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
	fail "expected alice and bob to exit within $STOP_S s of Ctrl-C at alice; seen: still running"
for id in alice bob; do
	lab_client_exited "$id"
	expect_eq "$id's exit status after Ctrl-C at alice (stderr: $(tail -n 2 "$RUN_DIR/$id.err" | tr '\n' '|'))" 0 "${CLIENT_RC[$id]}"
done
lab_check_sanitizers
ok "Ctrl-C at alice stops both sides with status 0"
echo PASS
