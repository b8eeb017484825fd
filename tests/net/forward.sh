#!/usr/bin/env bash
# punch forward (scenario nat2):
#
#   forward.sh PATH_TO_PUNCH
#
# bob runs TCP echoes on 127.0.0.1:7000 and 127.0.0.1:7002 in its namespace
# and `punch forward -allow 127.0.0.1:7000 -allow 127.0.0.1:7001`; alice runs
# `punch forward -L 18080:127.0.0.1:7000` (and -L for 7001 and 7002).  From
# alice's namespace, 20 connections at once each send 256 KB of random data
# through 127.0.0.1:18080 and read it back, every byte checked.  Then a
# connection to an allowed port where nothing listens on bob's side is
# refused cleanly; one to 127.0.0.1:7002, which bob runs but did not allow,
# is refused with the reason on both sides (before -allow, bob connected
# anywhere alice asked); and Ctrl-C (SIGINT) at alice, with one connection
# still open, stops both sides: alice with status 0 (its user chose to),
# bob with 1, saying that the connection was cut short.  (With none open,
# both exit 0: tests/unit/test_link.c.)

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

ECHO=(python3 "$NET_HERE/tcpecho.py")
CONNS=20
BYTES=$((256 << 10))
DONE_S=40 # for the 20 echoes (under 1 s on a laptop)
STOP_S=10 # for both to exit after Ctrl-C
ECHO_READY_S=20 # for python3 to start in bob's namespace, on a busy machine

net_up nat2
lab_start_server
# The echo bob allows, and one on bob's loopback that bob does not offer
# alice; both started at once, then each waited for.
declare -A ECHO_PID
for port in 7000 7002; do
	: >"$NET_TMP/echo$port.out"
	lab_nsx bob "${ECHO[@]}" serve 127.0.0.1:$port 120 >"$NET_TMP/echo$port.out" 2>&1 &
	NET_PIDS+=($!)
	ECHO_PID[$port]=$!
done
for port in 7000 7002; do
	lab_wait_line "$NET_TMP/echo$port.out" '^ready$' "$ECHO_READY_S" "${ECHO_PID[$port]}" ||
		fail "the TCP echo on bob's 127.0.0.1:$port did not start within $ECHO_READY_S s: $(cat "$NET_TMP/echo$port.out")"
done

LAB_STDIN=/dev/null lab_start_peer alice bob forward -L 18080:127.0.0.1:7000 \
	-L 0:127.0.0.1:7001 -L 0:127.0.0.1:7002
LAB_STDIN=/dev/null lab_start_peer bob alice forward -allow 127.0.0.1:7000 -allow 127.0.0.1:7001
lab_wait_established alice bob
lab_wait_client alice '^Forwarding 127\.0\.0\.1:18080 to 127\.0\.0\.1:7000 on bob.s side$' \
	"'Forwarding 127.0.0.1:18080 to 127.0.0.1:7000 on bob's side'"
lab_wait_client alice '^Forwarding 127\.0\.0\.1:[0-9]+ to 127\.0\.0\.1:7001 on bob.s side$' \
	"the second forward, on a port the kernel chose"
lab_wait_client alice '^Forwarding 127\.0\.0\.1:[0-9]+ to 127\.0\.0\.1:7002 on bob.s side$' \
	"the third forward, to a target bob did not allow"
lab_wait_client bob "^Serving alice's connections to 127\.0\.0\.1:7000, 127\.0\.0\.1:7001" \
	"'Serving alice's connections to 127.0.0.1:7000, 127.0.0.1:7001'"

rc=0
out=$(lab_nsx alice timeout -k 2 $((DONE_S + 5)) "${ECHO[@]}" clients 127.0.0.1:18080 "$CONNS" "$BYTES" "$DONE_S" 2>&1) || rc=$?
echo "    $out" | head -n 25
((rc == 0)) || fail "alice: expected $CONNS echoed connections, every byte back; seen status $rc (above)"
ok "$CONNS connections at once through punch forward, $BYTES bytes each way each, all intact"
lab_wait_client bob '^punch: forward: alice: connection [0-9]+ to 127\.0\.0\.1:7000$' \
	"each forwarded connection logged with its target at bob"
lab_wait_client alice '^punch: forward: connection [0-9]+ on port 18080 to bob.s 127\.0\.0\.1:7000$' \
	"each forwarded connection logged with its target at alice"

# closed_read PORT: connect to alice's 127.0.0.1:PORT, send "hello", and
# print how many bytes came back before the connection closed (RST: 0).
closed_read() {
	lab_nsx alice timeout 10 python3 -c '
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
c.sendall(b"hello")
try:
    print(len(c.recv(100)))
except ConnectionResetError:
    print(0)' "$1" 2>&1
}

# Nothing listens on bob's 127.0.0.1:7001: alice's client sees the
# connection closed, and bob says why.  (Closed with FIN, or with RST when
# the kernel still held the client's unread "hello": either is fine.)
port=$(sed -n 's/^Forwarding 127\.0\.0\.1:\([0-9]*\) to 127\.0\.0\.1:7001 .*/\1/p' "$RUN_DIR/alice.err")
got=$(closed_read "$port") || fail "alice: a connection to 127.0.0.1:$port: expected it closed with no data; seen: $got"
expect_eq "bytes read on a connection bob could not make" 0 "$got"
lab_wait_client bob 'forward: alice asked for 127\.0\.0\.1:7001: connection refused' "the refusal of 127.0.0.1:7001"
lab_wait_client alice 'bob cannot connect to it: connection refused' "the reason bob gave"
ok "a connection bob cannot make is closed, with the reason on both sides"

# bob's 127.0.0.1:7002 answers, but bob did not allow it: alice gets
# nothing of it, and both sides say why.
port=$(sed -n 's/^Forwarding 127\.0\.0\.1:\([0-9]*\) to 127\.0\.0\.1:7002 .*/\1/p' "$RUN_DIR/alice.err")
got=$(closed_read "$port") || fail "alice: a connection to 127.0.0.1:$port: expected it closed with no data; seen: $got"
expect_eq "bytes read through a target bob did not allow (the echo there would send 5)" 0 "$got"
lab_wait_client bob 'forward: alice asked for 127\.0\.0\.1:7002: not allowed here' "the refusal of 127.0.0.1:7002"
lab_wait_client alice 'bob refused it: not allowed here' "the reason bob gave for 127.0.0.1:7002"
ok "a target bob did not allow with -allow is refused, with the reason on both sides"

lab_expect_running "after the connections" alice bob
# A connection alice's side keeps open (echoed once, then held) through
# the Ctrl-C; the client is stopped with the other processes at the end.
: >"$NET_TMP/held.out"
lab_nsx alice timeout 60 python3 -c '
import socket, time
c = socket.create_connection(("127.0.0.1", 18080), timeout=20)
c.sendall(b"held")
got = b""
while len(got) < 4:
    got += c.recv(4 - len(got))
print("open", flush=True)
time.sleep(50)' >"$NET_TMP/held.out" 2>&1 &
NET_PIDS+=($!)
lab_wait_line "$NET_TMP/held.out" '^open$' "$ECHO_READY_S" "$!" ||
	fail "a held connection through 127.0.0.1:18080: expected its echo; seen: $(cat "$NET_TMP/held.out")"
kill -INT "${CLIENT_PID[alice]}"
lab_wait_gone "$STOP_S" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
	fail "expected alice and bob to exit within $STOP_S s of Ctrl-C at alice; seen: still running"
declare -A WANT_RC=([alice]=0 [bob]=1)
for id in alice bob; do
	lab_client_exited "$id"
	expect_eq "$id's exit status after Ctrl-C at alice with a connection open (stderr: $(tail -n 2 "$RUN_DIR/$id.err" | tr '\n' '|'))" "${WANT_RC[$id]}" "${CLIENT_RC[$id]}"
done
grep -q "alice closed the link with 1 connection open; it was cut short" "$RUN_DIR/bob.err" ||
	fail "bob: expected 'alice closed the link with 1 connection open; it was cut short'; seen: $(tail -n 3 "$RUN_DIR/bob.err" | tr '\n' '|')"
lab_check_sanitizers
ok "Ctrl-C at alice with a connection open: alice exits 0, bob 1, saying it was cut short"
echo PASS
