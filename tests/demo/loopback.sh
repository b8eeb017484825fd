#!/usr/bin/env bash
# The first thing many try: server and both peers on one machine, the
# server on loopback.  In a namespace of its own with nothing but loopback
# (so no traffic leaves it), `punch server -listen 127.0.0.1:3478 -log info`
# and two `punch chat` clients connect and chat; then:
#
#   - each client's Step 1 names a local test, not a NAT;
#   - the server's pane tells the rendezvous (registered, waiting,
#     introduced) and nothing per packet;
#   - the stop line keeps the two 438 challenges apart from errors:
#     errors=0 (it used to say errors=2 for a healthy run).
#
#   loopback.sh PATH_TO_PUNCH

set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
LAB=l$$
export LAB
# shellcheck source=../../scripts/lab
source "$REPO/scripts/lab"

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

((EUID == 0)) || fail "this test needs root (a network namespace), as CI has"
if (($# != 1)) || [[ ! -x $1 ]]; then fail "usage: $0 PATH_TO_PUNCH"; fi
PUNCH=$1
lab_opts_reset
lab_check_free
lab_run_init
trap lab_run_teardown EXIT # stops what it started, removes the namespace
trap 'exit 130' INT
trap 'exit 143' TERM
LAB_OWNED=1
lab_add_node server 0 # only lo, and it is up

# start_chat ID PEER: `punch chat` in the server's namespace, reading a FIFO
# (as lab_start_client, which would put it in a namespace of its own).
start_chat() {
	local id=$1 fd
	mkfifo "$RUN_DIR/$id.in"
	exec {fd}<>"$RUN_DIR/$id.in"
	mkdir -p "$RUN_DIR/$id.config"
	lab_spawn server "$RUN_DIR/$id" "$RUN_DIR/$id.in" env XDG_CONFIG_HOME="$RUN_DIR/$id.config" \
		"$PUNCH" chat -server 127.0.0.1:3478 -id "$id" -peer "$2"
	CLIENT_PID[$id]=$LAB_PID
	CLIENT_FD[$id]=$fd
}

lab_spawn server "$RUN_DIR/server-1" /dev/null "$PUNCH" server -listen 127.0.0.1:3478 -state "$RUN_DIR/server.state" -log info
SERVER_PID=$LAB_PID
lab_wait_line "$RUN_DIR/server-1.err" '^punch server: listening on 127\.0\.0\.1:3478$' "$LAB_START_S" "$SERVER_PID" ||
	fail "expected 'punch server: listening on 127.0.0.1:3478' within $LAB_START_S s; seen: $(cat "$RUN_DIR/server-1.err")"
start_chat alice bob
start_chat bob alice
lab_wait_established alice bob
lab_chat alice bob
lab_quit alice bob
lab_stop_server
lab_check_sanitizers

for id in alice bob; do
	err=$RUN_DIR/$id.err
	re='^Step 1: STUN: the server sees me at 127\.0\.0\.1:[0-9]+ \(no NAT: the server is on loopback, so this is a local test\), asked 127\.0\.0\.1:3478 in [0-9]+ ms$'
	grep -q -E "$re" "$err" ||
		fail "$id: expected Step 1 to name a local test; seen: $(grep '^Step 1' "$err")"
	! grep -q 'behind a NAT' "$err" || fail "$id: expected no 'behind a NAT' on loopback; seen: $(grep 'behind a NAT' "$err")"
done
echo "ok: Step 1 names a local test on loopback"

srv=$RUN_DIR/server-1.err
for re in '^punch server: Step 2: alice registered from 127\.0\.0\.1:[0-9]+, looking for bob \(1 candidate\)$' \
	'^punch server: Step 2: bob registered from 127\.0\.0\.1:[0-9]+, looking for alice \(1 candidate\)$' \
	'^punch server: Step 3: (alice|bob) is ready; waiting for (bob|alice)$' \
	'^punch server: Step 4: introduced (alice|bob) at 127\.0\.0\.1:[0-9]+ and (alice|bob) at 127\.0\.0\.1:[0-9]+: '; do
	grep -q -E "$re" "$srv" || fail "server: expected a line matching '$re'; seen:
$(sed 's/^/  | /' "$srv")"
done
! grep -q -E 'debug:|nonce challenge|refreshed' "$srv" ||
	fail "server: expected no per-packet lines at -log info; seen: $(grep -E 'debug:|nonce challenge|refreshed' "$srv")"
stop=$(grep '^punch server: stopped: ' "$srv" || true)
re='^punch server: stopped: answered=[1-9][0-9]* challenges=([2-9]|[1-9][0-9]+) refused=0 errors=0 malformed=0$'
[[ $stop =~ $re ]] || fail "server: expected a stop line with the challenges apart and errors=0; seen '$stop'"
echo "ok: the server told the rendezvous; $stop"
echo PASS
