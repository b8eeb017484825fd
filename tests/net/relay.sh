#!/usr/bin/env bash
# The server's TURN relay as the clients' last resort (scenario nat2; the
# lab's --relay makes `punch server` a relay, so every REGISTER success
# carries relay credentials):
#
#   relay.sh PATH_TO_PUNCH
#
# a. symmetric <-> symmetric: no direct pair can work, so the 20 MB that
#    `punch send` sends go through the relay: both exit 0, the SHA-256 is
#    the same, both "Connection established" lines say "relay via", and bob
#    learnt alice's relayed address as a trickled update (Step 4).  The
#    server's stop line counts 2 allocations and relayed datagrams both ways.
#    Each client's relayed port (its "Relay: ... at ADDR" line) is bound in
#    the server's namespace while the clients run, and closed within a few
#    seconds of their exit: the Refresh with LIFETIME 0 they send at exit
#    released it (left alone, it would stay for its 600 s lifetime).  The
#    server logs nothing per release and its stop line has no count of
#    them, so the closed socket (ss) is what shows it.
# b. home <-> home with -relay-only on both: a direct pair would work, yet
#    the chat goes "relay via" on both sides, a line each way.
# c. symmetric <-> symmetric with -direct-only on both: neither allocates;
#    both exit 1 after the 10 s of checks, saying that the relay was not
#    tried.
# d. home <-> home, the server no relay, -relay-only at alice: alice exits 1
#    within a few seconds, saying that the server does not relay.
# e. symmetric <-> home: `punch pipe`, 5 MB each way at once, intact over
#    the relay.
#
# Each case builds its own instance and removes it; lib.sh's cleanup stops
# whatever a failed case left and fails if a namespace remains.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

FILE_MB=20
PIPE_MB=5
DONE_S=60     # for a transfer over the relay to finish (a few s under ASan)
CONNECT_S=30  # to connect through the relay (lab_wait_established)
NOPATH_S=20   # -direct-only: for both to give up (the checks last 10 s)
NOPATH_MAX_S=15 # ... and the longest that may take, from their start
NORELAY_S=5   # -relay-only without a relay: for alice to give up
RELEASE_S=5   # for the relayed ports to close after the clients exit

sum() { sha256sum <"$1" | cut -d' ' -f1; }

# ms_to_s MS: "1.23"
ms_to_s() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }

declare -a TIMES=()

start_case() { # NAME NET_UP_ARGS...
	CASE=$1
	shift
	echo "== $CASE"
	lab_now
	CASE_T0=$LAB_NOW
	net_up nat2 --timeout "$CONNECT_S" "$@"
	lab_start_server
}

end_case() {
	lab_check_sanitizers
	lab_run_stop 0 2>/dev/null || true
	lab_down
	net_expect_gone
	rm -rf "$RUN_DIR"
	lab_run_init
	lab_now
	TIMES+=("${CASE%%.*}: $(ms_to_s $((LAB_NOW - CASE_T0))) s")
}

# tail_of ID: the last lines of ID's stderr, on one line.
tail_of() {
	tail -n 3 "$RUN_DIR/$1.err" 2>/dev/null | tr '\n' '|'
}

# expect_line ID ERE WHAT
expect_line() {
	grep -q -E -- "$2" "$RUN_DIR/$1.err" ||
		fail "$1: expected $3 on stderr; seen: $(tail_of "$1")"
}

# wait_exit SECONDS WANT_RC ID...: each ID exits within SECONDS (of now)
# with status WANT_RC.
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

# expect_relayed ID: ID's one "Connection established" line goes through a
# relay ("relay via ADDR").
expect_relayed() {
	lab_path "$1"
	local line
	line=$(grep '^Connection established: ' "$RUN_DIR/$1.err")
	expect_eq "$1's path type (its line: $line)" relay "$PATH_TYPE"
	[[ -n $PATH_VIA ]] || fail "$1: expected 'relay via ADDR'; seen '$line'"
	echo "$1: $PATH_LOCAL -> $PATH_REMOTE ($PATH_KIND), punch took $PATH_MS ms"
}

# relayed_addr ID: the address of ID's "Relay: ... relays for me at ADDR" line.
relayed_addr() {
	local line re='^Relay: [^ ]+ relays for me at ([0-9.]+:[0-9]+) \(allocated in [0-9]+ ms\)'
	line=$(grep -E '^Relay: ' "$RUN_DIR/$1.err" || true)
	[[ $line =~ $re ]] ||
		fail "$1: expected one 'Relay: SERVER relays for me at IP:PORT (allocated in N ms)' line; seen '$line'"
	echo "${BASH_REMATCH[1]}"
}

# udp_bound PORT: the UDP sockets bound to PORT in the server's namespace.
udp_bound() {
	lab_nsx server ss -H -u -a -n "( sport = :$1 )"
}

# server_stop_line: the server's "relay stopped" line (stop it first).
server_stop_line() {
	local line
	line=$(grep '^punch server: relay stopped: ' "$RUN_DIR/server-$SERVER_STARTS.err" || true)
	[[ -n $line ]] ||
		fail "server: expected a 'punch server: relay stopped: ...' line; seen: $(tail -n 3 "$RUN_DIR/server-$SERVER_STARTS.err" | tr '\n' '|')"
	echo "$line"
}

# stop_field LINE NAME: sets FIELD to NAME's value in the stop line
# ("relayed=12/34" gives 12/34).
stop_field() {
	local re="[ :]$2=([0-9/]+)( |\$)"
	[[ $1 =~ $re ]] || fail "server: expected $2=... in its stop line; seen '$1'"
	FIELD=${BASH_REMATCH[1]}
}

head -c $((FILE_MB << 20)) /dev/urandom >"$NET_TMP/file.bin"
head -c $((PIPE_MB << 20)) /dev/urandom >"$NET_TMP/a2b"
head -c $((PIPE_MB << 20)) /dev/urandom >"$NET_TMP/b2a"

# ---- a. symmetric <-> symmetric: send/recv through the relay
start_case "a. symmetric <-> symmetric, $FILE_MB MB send/recv" --relay --nat symmetric
RECV_DIR=$NET_TMP/recv
mkdir -p "$RECV_DIR"
# Each relayed port is checked as soon as its client has it: before alice
# starts, bob (recv) cannot finish; alice needs 500 ms more (a relayed pair
# waits that long for a direct one) and the transfer.
declare -A RELAYED=()
check_bound() { # ID: ID's relayed port is a socket of the server's
	local id=$1 bound
	lab_wait_client "$id" '^Relay: ' "'Relay: ... relays for me at ADDR'" "$CONNECT_S"
	RELAYED[$id]=$(relayed_addr "$id") || exit 1
	bound=$(udp_bound "${RELAYED[$id]##*:}")
	[[ -n $bound ]] && return 0
	lab_client_exited "$id" &&
		fail "$id: exited (status ${CLIENT_RC[$id]}) before its relayed port could be checked; stderr: $(tail_of "$id")"
	fail "server: expected a UDP socket on $id's relayed port ${RELAYED[$id]} while $id runs; seen none ($(lab_nsx server ss -H -u -a -n | tr '\n' '|'))"
}
lab_now
t0=$LAB_NOW
LAB_STDIN=/dev/null lab_start_peer bob alice recv "$RECV_DIR"
check_bound bob
LAB_STDIN=/dev/null lab_start_peer alice bob send "$NET_TMP/file.bin"
check_bound alice
lab_wait_established alice bob
wait_exit "$DONE_S" 0 alice bob
lab_now
ms=$((LAB_NOW - t0))
expect_eq "SHA-256 of the file bob received" "$(sum "$NET_TMP/file.bin")" "$(sum "$RECV_DIR/file.bin")"
expect_relayed alice
expect_relayed bob
# bob was introduced to alice before she had her relayed address: it
# reached him as a trickled update.
expect_line bob "^Step 4: peer info update: alice now also has .*${RELAYED[alice]//./\\.}" \
	"'Step 4: peer info update: alice now also has ... ${RELAYED[alice]}' (her relayed address, trickled)"
# Released, not left to expire: each relayed port closes soon after its
# client exits, with the server still running.
for id in alice bob; do
	port=${RELAYED[$id]##*:}
	lab_now
	deadline=$((LAB_NOW + RELEASE_S * 1000))
	while bound=$(udp_bound "$port") && [[ -n $bound ]]; do
		lab_now
		((LAB_NOW < deadline)) ||
			fail "server: expected $id's relayed port ${RELAYED[$id]} closed within $RELEASE_S s of $id's exit (its Refresh with LIFETIME 0); seen still bound: $bound"
		sleep "$LAB_POLL_S"
	done
done
echo "relayed ports ${RELAYED[alice]} and ${RELAYED[bob]} closed after the clients exited"
lab_stop_server
line=$(server_stop_line) || exit 1
echo "$line"
stop_field "$line" allocated
expect_eq "allocations in the server's stop line ($line)" 2 "$FIELD"
stop_field "$line" expired
expect_eq "expired allocations in the server's stop line ($line)" 0 "$FIELD"
stop_field "$line" relayed
relayed=$FIELD
if ! [[ $relayed =~ ^([0-9]+)/([0-9]+)$ ]] || ((BASH_REMATCH[1] == 0 || BASH_REMATCH[2] == 0)); then
	fail "server: expected relayed=OUT/IN with both counts above 0 in its stop line; seen relayed=$relayed ($line)"
fi
ok "a. $FILE_MB MB arrived intact over the relay in $(ms_to_s "$ms") s (from the start of bob, connection included); 2 allocations, relayed=$relayed datagrams, both released"
end_case

# ---- b. home <-> home with -relay-only on both: a chat through the relay
start_case "b. home <-> home, -relay-only, chat" --relay
lab_start_client alice bob -relay-only
lab_start_client bob alice -relay-only
lab_wait_established alice bob
expect_relayed alice
expect_relayed bob
lab_chat alice bob
lab_chat bob alice
lab_quit alice bob
ok "b. -relay-only: the chat went through the relay, a line each way"
end_case

# ---- c. symmetric <-> symmetric with -direct-only: no path, relay untried
start_case "c. symmetric <-> symmetric, -direct-only" --relay --nat symmetric
lab_now
t0=$LAB_NOW
lab_start_client alice bob -direct-only
lab_start_client bob alice -direct-only
wait_exit "$NOPATH_S" 1 alice bob
lab_now
ms=$((LAB_NOW - t0))
((ms <= NOPATH_MAX_S * 1000)) ||
	fail "alice and bob: expected both to give up within $NOPATH_MAX_S s of their start; seen $(ms_to_s "$ms") s"
for id in alice bob; do
	other=bob
	[[ $id == alice ]] || other=alice
	expect_line "$id" "no direct path to $other: none of [0-9]+ candidate pairs answered within 10 s \(-direct-only: the relay was not tried\)" \
		"'no direct path to $other: none of N candidate pairs answered within 10 s (-direct-only: the relay was not tried)'"
	! grep -q -E '^Relay: ' "$RUN_DIR/$id.err" ||
		fail "$id: expected no relayed address with -direct-only; seen '$(grep -E '^Relay: ' "$RUN_DIR/$id.err")'"
done
lab_stop_server
line=$(server_stop_line) || exit 1
stop_field "$line" allocated
expect_eq "allocations in the server's stop line with -direct-only ($line)" 0 "$FIELD"
ok "c. -direct-only: both gave up after $(ms_to_s "$ms") s without trying the relay (no allocation)"
end_case

# ---- d. -relay-only against a server that does not relay
start_case "d. home <-> home, no relay, -relay-only at alice"
lab_now
t0=$LAB_NOW
lab_start_client alice bob -relay-only
lab_start_client bob alice
wait_exit "$NORELAY_S" 1 alice
lab_now
ms=$((LAB_NOW - t0))
expect_line alice "-relay-only, but the server [^ ]+ does not relay \(it runs without -auth-secret\)" \
	"'-relay-only, but the server ... does not relay (it runs without -auth-secret)'"
ok "d. -relay-only without a relay: alice exited 1 after $(ms_to_s "$ms") s, saying why"
end_case

# ---- e. symmetric <-> home: pipe both ways through the relay
start_case "e. symmetric <-> home, pipe $PIPE_MB MB each way" --relay --nat-a symmetric --nat-b home
lab_now
t0=$LAB_NOW
LAB_STDIN=$NET_TMP/a2b lab_start_peer alice bob pipe
LAB_STDIN=$NET_TMP/b2a lab_start_peer bob alice pipe
lab_wait_established alice bob
wait_exit "$DONE_S" 0 alice bob
lab_now
ms=$((LAB_NOW - t0))
expect_relayed alice
expect_relayed bob
expect_eq "bytes on bob's stdout ($PIPE_MB MB from alice)" "$(wc -c <"$NET_TMP/a2b")" "$(wc -c <"$RUN_DIR/bob.out")"
expect_eq "SHA-256 of bob's stdout" "$(sum "$NET_TMP/a2b")" "$(sum "$RUN_DIR/bob.out")"
expect_eq "bytes on alice's stdout ($PIPE_MB MB from bob)" "$(wc -c <"$NET_TMP/b2a")" "$(wc -c <"$RUN_DIR/alice.out")"
expect_eq "SHA-256 of alice's stdout" "$(sum "$NET_TMP/b2a")" "$(sum "$RUN_DIR/alice.out")"
ok "e. $((2 * PIPE_MB)) MB through punch pipe over the relay in $(ms_to_s "$ms") s (from the start, connection included), both ways intact"
end_case

echo "times: ${TIMES[*]}"
echo PASS
