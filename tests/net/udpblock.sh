#!/usr/bin/env bash
# A network that drops outbound UDP (the lab's udpblock NAT at alice, a home
# router at bob, the server a TURN relay): alice reaches the server over TCP
# and connects through her relayed address.
#
#   udpblock.sh PATH_TO_PUNCH
#
# a. chat: alice says that the server did not answer over UDP in 1 s and
#    that she is trying TCP, then that she is connected over TCP; her Step 1
#    is over TCP; both connect "relay via"; a chat line each way.  Then the
#    server stops: alice, whose link runs through the server's relay over
#    that TCP connection, exits 1 saying that the connection was lost.  The
#    server's "tcp stopped" line counts her connection.
# b. send/recv: FILE_MB from alice to bob over the TCP-reached relay, the
#    SHA-256 the same at both ends, both exit 0.
# c. only TLS gets out: alice's NAT also drops TCP to the server's port
#    3478; the server runs -tls-listen SERVER:443 with a certificate for its
#    IP address from a test CA (tests/tls_certs.sh), alice gives
#    -server-tls SERVER:443 -tls-ca CA.  She says UDP got no answer, TCP
#    failed, and that she is trying TLS, then connected over TLS; both
#    connect via the relay and chat a line each way.
# d. the same with -tls-ca naming a CA that did not sign the server's
#    certificate: alice refuses the server (the handshake fails, saying the
#    certificate is not trusted) and, UDP and TCP being dropped, exits 1
#    when the rendezvous gives up (about 40 s after her start).
#
# Each case builds its own instance and removes it; lib.sh's cleanup stops
# whatever a failed case left and fails if a namespace remains.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

FILE_MB=20
TLS_PORT=443
GIVE_UP_S=60  # case d: for alice to give up (the first Binding's 35.75 s, and more)
CONNECT_S=30  # to connect through the relay (lab_wait_established)
DONE_S=90     # for the file over TCP and the relay (ASan, 2 busy cores)
LOST_S=10     # for alice to exit once the server has stopped

sum() { sha256sum <"$1" | cut -d' ' -f1; }

tail_of() {
	tail -n 3 "$RUN_DIR/$1.err" 2>/dev/null | tr '\n' '|'
}

# expect_line ID ERE WHAT
expect_line() {
	grep -q -E -- "$2" "$RUN_DIR/$1.err" ||
		fail "$1: expected $3 on stderr; seen: $(tail_of "$1")"
}

expect_relayed() {
	lab_path "$1"
	expect_eq "$1's path type (its line: $(grep '^Connection established: ' "$RUN_DIR/$1.err"))" relay "$PATH_TYPE"
}

# wait_exit SECONDS WANT_RC ID...
wait_exit() {
	local limit=$1 want=$2 id pids=()
	shift 2
	for id in "$@"; do
		pids+=("${CLIENT_PID[$id]}")
	done
	lab_wait_gone "$limit" "${pids[@]}" ||
		fail "expected $* to exit within $limit s; seen: still running ($(for id in "$@"; do printf '%s: %s; ' "$id" "$(tail_of "$id")"; done))"
	for id in "$@"; do
		lab_client_exited "$id"
		expect_eq "$id's exit status (stderr: $(tail_of "$id"))" "$want" "${CLIENT_RC[$id]}"
	done
}

# since_start ID: the "N ms since start" of ID's Connection established line.
since_start() {
	local re='^Connection established: .*, ([0-9]+) ms since start$' line
	line=$(grep '^Connection established: ' "$RUN_DIR/$1.err")
	[[ $line =~ $re ]] || fail "$1: expected '..., N ms since start' in '$line'"
	echo "${BASH_REMATCH[1]}"
}

start_case() { # NAME
	echo "== $1"
	net_up nat2 --timeout "$CONNECT_S" --relay --nat-a udpblock --nat-b home
	SERVER_IP=$(lab_addr server)
	if [[ -n ${TLS_CASE:-} ]]; then
		# nata: no TCP to the server's plain port either; TLS's gets out
		lab_nsx nata iptables -I FORWARD -o wan0 -p tcp --dport 3478 -j DROP
		"$(dirname "$0")/../tls_certs.sh" "$NET_TMP/certs" "$SERVER_IP"
		LAB_SERVER_ARGS=(-tls-listen "$SERVER_IP:$TLS_PORT" -cert "$NET_TMP/certs/cert.pem"
			-key "$NET_TMP/certs/key.pem")
	fi
	lab_start_server
}

end_case() {
	lab_check_sanitizers
	lab_run_stop 0 2>/dev/null || true
	lab_down
	net_expect_gone
	rm -rf "$RUN_DIR"
	lab_run_init
}

server_ip_re() { echo "${SERVER_IP//./\\.}:[0-9]+"; }

# ---- a. chat, then the server goes away
start_case "a. udpblock <-> home: chat over the TCP-reached relay"
lab_start_client bob alice
lab_start_client alice bob
lab_wait_established alice bob
srv=$(server_ip_re)
expect_line alice "^punch: no answer from $srv over UDP in 1 s; trying TCP\$" \
	"'punch: no answer from SERVER over UDP in 1 s; trying TCP'"
expect_line alice "^punch: connected to $srv over TCP" "'punch: connected to SERVER over TCP ...'"
expect_line alice "^Step 1: STUN over TCP: " "'Step 1: STUN over TCP: ...'"
! grep -q -E '^punch: no answer from ' "$RUN_DIR/bob.err" ||
	fail "bob: expected UDP to work behind his home router; seen '$(grep '^punch: no answer' "$RUN_DIR/bob.err")'"
expect_relayed alice
expect_relayed bob
ms=$(since_start alice)
lab_chat alice bob
lab_chat bob alice
lab_stop_server
wait_exit "$LOST_S" 1 alice
expect_line alice "lost the TCP connection to the server $srv: the server closed the connection" \
	"'lost the TCP connection to the server SERVER: the server closed the connection'"
tcp=$(grep '^punch server: tcp stopped: ' "$RUN_DIR/server-$SERVER_STARTS.err" || true)
if ! [[ $tcp =~ connections=([0-9]+) ]] || ((BASH_REMATCH[1] < 1)); then
	fail "server: expected 'tcp stopped: connections=N' with N >= 1; seen '$tcp'"
fi
ok "a. alice went over TCP after 1 s of UDP silence, connected via the relay ${ms} ms after her start, chatted both ways, and exited 1 when the server went away"
end_case

# ---- b. a file from behind the UDP block
start_case "b. udpblock -> home: $FILE_MB MB send/recv over the TCP-reached relay"
head -c $((FILE_MB << 20)) /dev/urandom >"$NET_TMP/file.bin"
mkdir -p "$NET_TMP/recv"
LAB_STDIN=/dev/null lab_start_peer bob alice recv "$NET_TMP/recv"
LAB_STDIN=/dev/null lab_start_peer alice bob send "$NET_TMP/file.bin"
lab_wait_established alice bob
lab_now
t0=$LAB_NOW
wait_exit "$DONE_S" 0 alice bob
lab_now
expect_relayed alice
expect_eq "SHA-256 of the file bob received" "$(sum "$NET_TMP/file.bin")" "$(sum "$NET_TMP/recv/file.bin")"
ok "b. $FILE_MB MB intact from behind the UDP block, $(((LAB_NOW - t0) / 1000)) s after connecting"
end_case

# ---- c. only TLS gets out
TLS_CASE=1
start_case "c. udpblock, TCP to 3478 dropped too <-> home: chat over TLS"
lab_start_client bob alice
lab_start_client alice bob -server-tls "$SERVER_IP:$TLS_PORT" -tls-ca "$NET_TMP/certs/ca.pem"
lab_wait_established alice bob
srv=$(server_ip_re)
expect_line alice "^punch: TCP to $srv failed \(connect timed out\); trying TLS to ${SERVER_IP//./\\.}:$TLS_PORT\$" \
	"'punch: TCP to SERVER failed (connect timed out); trying TLS to SERVER:$TLS_PORT'"
expect_line alice "^punch: connected to ${SERVER_IP//./\\.}:$TLS_PORT over TLS" "'punch: connected to SERVER:$TLS_PORT over TLS ...'"
expect_line alice "^Step 1: STUN over TLS: " "'Step 1: STUN over TLS: ...'"
expect_relayed alice
expect_relayed bob
ms=$(since_start alice)
lab_chat alice bob
lab_chat bob alice
lab_quit alice bob
ok "c. alice reached the server over TLS after UDP (1 s) and TCP (2 s) failed, connected via the relay ${ms} ms after her start, and chatted both ways"
end_case

# ---- d. a certificate alice's CA did not sign
start_case "d. -tls-ca naming another CA: the server is refused"
lab_start_client alice bob -server-tls "$SERVER_IP:$TLS_PORT" -tls-ca "$NET_TMP/certs/other-ca.pem"
wait_exit "$GIVE_UP_S" 1 alice
expect_line alice "^punch: TLS to ${SERVER_IP//./\\.}:$TLS_PORT failed \(the server's certificate is not trusted for ${SERVER_IP//./\\.}: " \
	"'punch: TLS to SERVER failed (the server's certificate is not trusted for SERVER: ...)'"
expect_line alice "cannot reach rendezvous server $srv" "'cannot reach rendezvous server SERVER ...'"
! grep -q '^Step 1' "$RUN_DIR/alice.err" || fail "alice: expected no Step 1 through an untrusted server; seen '$(grep '^Step 1' "$RUN_DIR/alice.err")'"
ok "d. an untrusted certificate: alice refused the TLS server and gave up"
end_case
