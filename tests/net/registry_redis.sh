#!/usr/bin/env bash
# Several `punch server -registry redis://...` sharing one registry in a
# real redis-server, all in a namespace of their own with nothing but
# loopback (no traffic leaves it); the peers are `punch pipe` clients,
# each told a different server.
#
#   registry_redis.sh PATH_TO_PUNCH MODE
#
#   two      a pair split across two servers meets: the server of the
#            second side decides, the other hears it over pub/sub; the
#            metrics say so; the id binding made at one server holds at
#            the other (another key is refused there)
#   three    three pairs split three ways meet, all at once
#   restart  Redis killed: STUN keeps answering, a pair at one server
#            meets (served from memory); Redis back: the servers
#            reconnect and a split pair meets again
#   hostile  foreign keys and garbage under the prefix, a garbage value
#            for a peer, garbage on a server's channel: counted, logged,
#            nothing crashes, the pairs still meet, foreign keys stay
#   race     pairs whose two sides start at the same instant at two
#            servers: each pair is introduced exactly once
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
LAB=r$$
export LAB
# shellcheck source=../../scripts/lab
source "$REPO/scripts/lab"

# shellcheck source=redis_lab.sh
source "$REPO/tests/net/redis_lab.sh"
if (($# != 2)) || [[ ! -x $1 ]]; then fail "usage: $0 PATH_TO_PUNCH two|three|restart|hostile|race"; fi
PUNCH=$1 MODE=$2
WAIT_S=20 # every bounded wait for an event
# The servers' -log: hostile greps for one error's words, and a server
# warns of Redis errors at most once a second (the rest at debug), so that
# case logs at debug.
SERVER_LOG=info
[[ ${2:-} != hostile ]] || SERVER_LOG=debug
redis_lab_init

# start_server N: punch server N on 127.0.0.1:347(7+N), metrics on 947(7+N).
start_server() {
	local n=$1
	lab_spawn server "$RUN_DIR/s$n" /dev/null "$PUNCH" server -listen "127.0.0.1:$((3477 + n))" \
		-state "$RUN_DIR/s$n.state" -registry redis://127.0.0.1:6379 -log "$SERVER_LOG" \
		-metrics "127.0.0.1:$((9477 + n))"
	SRV_PIDS[n]=$LAB_PID
}

# wait_log FILE ERE [COUNT]: FILE has COUNT (default 1) lines matching ERE.
wait_log() {
	local file=$1 re=$2 want=${3:-1} i
	for ((i = 0; i < WAIT_S * 10; i++)); do
		(($(grep -c -E -- "$re" "$file" 2>/dev/null || true) >= want)) && return 0
		sleep 0.1
	done
	fail "$(basename "$file"): expected $want line(s) matching '$re' within $WAIT_S s; seen:
$(sed 's/^/  | /' "$file")"
}

connected() { wait_log "$RUN_DIR/s$1.err" ': connected; this server is [0-9a-f]{16}$' "${2:-1}"; }

# pipe ID PEER N: `punch pipe` as ID at server N, its input one line.
declare -A PIPE_PID=()
pipe() {
	local id=$1 peer=$2 n=$3
	printf 'from %s\n' "$id" >"$RUN_DIR/$id.in"
	mkdir -p "$RUN_DIR/$id.config"
	lab_spawn server "$RUN_DIR/$id" "$RUN_DIR/$id.in" env XDG_CONFIG_HOME="$RUN_DIR/$id.config" \
		"$PUNCH" pipe -server "127.0.0.1:$((3477 + n))" -id "$id" -peer "$peer" -wait "$WAIT_S"
	PIPE_PID[$id]=$LAB_PID
}

# met ID...: each pipe exits 0, having received its peer's line.
met() {
	local id rc
	for id in "$@"; do
		lab_wait_gone "$((WAIT_S + 5))" "${PIPE_PID[$id]}" || fail "$id: still running after $((WAIT_S + 5)) s"
		rc=0
		wait "${PIPE_PID[$id]}" || rc=$?
		((rc == 0)) || fail "$id: exit status $rc; its stderr:
$(sed 's/^/  | /' "$RUN_DIR/$id.err")"
		grep -q '^from ' "$RUN_DIR/$id.out" || fail "$id: expected its peer's line on stdout; seen '$(cat "$RUN_DIR/$id.out")'"
	done
	echo "ok: $* met"
}

# metric N NAME: the value of a metric line (NAME with its labels) of server N.
metric() {
	in_ns curl -s --max-time 5 "http://127.0.0.1:$((9477 + $1))/metrics" |
		awk -v m="$2" '$1 == m { print $2 }'
}

# wait_metric N NAME MIN: server N's metric NAME reaches MIN.
wait_metric() {
	local i v
	for ((i = 0; i < WAIT_S * 10; i++)); do
		v=$(metric "$1" "$2")
		[[ -n $v ]] && ((v >= $3)) && return 0
		sleep 0.1
	done
	fail "server $1: expected $2 >= $3 within $WAIT_S s; seen '$v'"
}

# stun_ok N: server N answers a Binding request (RFC 8489) within 2 s.
stun_ok() {
	in_ns /usr/bin/python3 - "$((3477 + $1))" <<'PY' || fail "server $1: no answer to a STUN Binding request"
import os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
txid = os.urandom(12)
s.sendto(struct.pack("!HHI", 1, 0, 0x2112A442) + txid, ("127.0.0.1", int(sys.argv[1])))
data = s.recv(2048)
sys.exit(0 if data[:2] == b"\x01\x01" and data[8:20] == txid else 1)
PY
}

server_alive() {
	local n
	for n in "$@"; do
		lab_alive "${SRV_PIDS[n]}" || fail "server $n exited; its log:
$(sed 's/^/  | /' "$RUN_DIR/s$n.err")"
	done
}

case $MODE in
two)
	start_redis
	start_server 1
	start_server 2
	connected 1
	connected 2
	pipe two-a two-b 1
	wait_log "$RUN_DIR/s1.err" 'Step 3: two-a is ready; waiting for two-b$'
	pipe two-b two-a 2
	met two-a two-b
	grep -q -E 'Step 4: introduced two-b at 127\.0\.0\.1:[0-9]+ and two-a at 127\.0\.0\.1:[0-9]+, who registered at another server' "$RUN_DIR/s2.err" ||
		fail "s2: expected it to introduce two-b and two-a; seen: $(grep 'Step 4' "$RUN_DIR/s2.err")"
	grep -q -E 'Step 4: introduced two-a to two-b at 127\.0\.0\.1:[0-9]+, who registered at another server' "$RUN_DIR/s1.err" ||
		fail "s1: expected to hear of two-b from s2; seen: $(grep 'Step 4' "$RUN_DIR/s1.err")"
	[[ $(metric 1 punch_redis_up) == 1 ]] || fail "s1: expected punch_redis_up 1"
	[[ $(metric 1 'punch_redis_introductions_total{direction="received"}') == 1 ]] ||
		fail "s1: expected 1 introduction received; seen '$(metric 1 'punch_redis_introductions_total{direction="received"}')'"
	[[ $(metric 2 'punch_redis_introductions_total{direction="sent"}') == 1 ]] ||
		fail "s2: expected 1 introduction sent"
	[[ $(metric 1 punch_redis_errors_total) == 0 && $(metric 2 punch_redis_errors_total) == 0 ]] ||
		fail "expected no Redis errors; seen $(metric 1 punch_redis_errors_total) and $(metric 2 punch_redis_errors_total)"
	# answers sent once Redis had decided count as the others do
	(($(metric 2 'punch_requests_total{method="register",result="ok"}') >= 1)) ||
		fail "s2: expected its REGISTER answers counted"
	echo "ok: the server of the second side decided; the other heard it; the metrics say so"
	# two-a is bound to its key, at s1: at s2, which never saw two-a, a
	# new key (a fresh config directory) is refused all the same.
	rm -rf "$RUN_DIR/two-a.config" "$RUN_DIR/two-a.out"
	pipe two-a two-c 2
	lab_wait_gone "$((WAIT_S + 5))" "${PIPE_PID[two-a]}" || fail "squatter: still running"
	grep -q 'bound to another key' "$RUN_DIR/two-a.err" ||
		fail "squatter of two-a at s2: expected a refusal naming the binding; seen:
$(sed 's/^/  | /' "$RUN_DIR/two-a.err")"
	grep -q -E 'refused two-a \(looking for two-c\) .*: 403 id is bound to another key \(in the shared registry\)' "$RUN_DIR/s2.err" ||
		fail "s2: expected the refusal in its log"
	echo "ok: an id bound at one server is refused to another key at the other"
	# A server dies while its client waits: its registration outlives it
	# in Redis, so the peer's server introduces the pair to nobody; it
	# forgets that introduction, so that the next refresh makes it again.
	pipe two-x two-y 1
	wait_log "$RUN_DIR/s1.err" 'Step 3: two-x is ready; waiting for two-y$'
	kill -KILL "${SRV_PIDS[1]}"
	lab_wait_gone 5 "${SRV_PIDS[1]}" || fail "s1: still alive after SIGKILL"
	unset 'SRV_PIDS[1]'
	pipe two-y two-x 2
	wait_metric 2 'punch_redis_introductions_total{direction="sent"}' 2
	for ((i = 0; i < WAIT_S * 10; i++)); do
		[[ $(rcli exists $'punch:i:two-x\ntwo-y') == 0 ]] && break
		sleep 0.1
	done
	[[ $(rcli exists $'punch:i:two-x\ntwo-y') == 0 ]] ||
		fail "expected the introduction nobody heard to be forgotten"
	lab_stop_pid "${PIPE_PID[two-x]}"
	lab_stop_pid "${PIPE_PID[two-y]}"
	echo "ok: an introduction whose other server is gone is forgotten"
	;;
three)
	start_redis
	for n in 1 2 3; do start_server "$n"; done
	for n in 1 2 3; do connected "$n"; done
	pipe t1-a t1-b 1
	pipe t1-b t1-a 2
	pipe t2-a t2-b 2
	pipe t2-b t2-a 3
	pipe t3-a t3-b 3
	pipe t3-b t3-a 1
	met t1-a t1-b t2-a t2-b t3-a t3-b
	server_alive 1 2 3
	;;
restart)
	start_redis
	start_server 1
	start_server 2
	connected 1
	connected 2
	pipe p1-a p1-b 1
	pipe p1-b p1-a 2
	met p1-a p1-b
	lab_stop_pid "$REDIS_PID"
	kill -KILL "$REDIS_PID" 2>/dev/null || true
	REDIS_PID=""
	wait_log "$RUN_DIR/s1.err" 'unreachable; serving from memory'
	wait_log "$RUN_DIR/s2.err" 'unreachable; serving from memory'
	stun_ok 1
	stun_ok 2
	echo "ok: Redis gone, STUN answers"
	pipe p2-a p2-b 1
	pipe p2-b p2-a 1
	met p2-a p2-b
	[[ $(metric 1 punch_redis_up) == 0 ]] || fail "s1: expected punch_redis_up 0 without Redis"
	(($(metric 1 punch_redis_served_from_memory_total) >= 2)) || fail "s1: expected registrations served from memory"
	echo "ok: Redis gone, a pair at one server meets from memory"
	start_redis
	connected 1 2
	connected 2 2
	pipe p3-a p3-b 2
	pipe p3-b p3-a 1
	met p3-a p3-b
	echo "ok: Redis back, the servers reconnected and a split pair meets"
	;;
hostile)
	start_redis
	rcli set other:key kept >/dev/null
	rcli hset other:map f v >/dev/null
	rcli set punch:r:h1-a 'not a hash' >/dev/null
	rcli lpush punch:b:h1-a 'not a string' >/dev/null
	rcli sadd $'punch:i:h1-a\nh1-b' x >/dev/null
	rcli hset punch:r:h2-b v garbage peer h2-a sess 1 srv 0123456789abcdef >/dev/null
	rcli hset punch:r:h3-b v garbage peer h3-a sess 1 srv 'not a server' >/dev/null
	start_server 1
	start_server 2
	connected 1
	connected 2
	pipe h1-a h1-b 1
	pipe h1-b h1-a 2
	met h1-a h1-b
	# h2-a's peer is garbage: counted, and h2-a waits for the real one
	pipe h2-a h2-b 1
	pipe h3-a h3-b 1
	wait_log "$RUN_DIR/s1.err" 'Step 3: h2-a is ready; waiting for h2-b$'
	wait_log "$RUN_DIR/s1.err" 'Step 3: h3-a is ready; waiting for h3-b$'
	(($(metric 1 punch_redis_errors_total) >= 1)) || fail "s1: expected the garbage value counted"
	grep -q 'the registration of h2-b does not check' "$RUN_DIR/s1.err" || fail "s1: expected the garbage value logged"
	id=$(grep -o -E 'this server is [0-9a-f]{16}' "$RUN_DIR/s1.err" | head -n 1 | awk '{ print $4 }')
	errors=$(metric 1 punch_redis_errors_total)
	rcli publish "punch:s:$id" garbage >/dev/null
	rcli publish "punch:s:$id" $'h2-a\nPR1\x04garbage' >/dev/null
	wait_metric 1 punch_redis_errors_total "$((errors + 2))"
	pipe h2-b h2-a 2
	pipe h3-b h3-a 2
	met h2-a h2-b h3-a h3-b
	server_alive 1 2
	[[ $(rcli get other:key) == kept && $(rcli hget other:map f) == v ]] || fail "another program's keys were touched"
	echo "ok: garbage counted and logged, nothing crashed, the pairs met, foreign keys kept"
	;;
race)
	start_redis
	start_server 1
	start_server 2
	connected 1
	connected 2
	pairs=(r1 r2 r3 r4 r5)
	for p in "${pairs[@]}"; do
		pipe "$p-a" "$p-b" 1
		pipe "$p-b" "$p-a" 2
	done
	for p in "${pairs[@]}"; do met "$p-a" "$p-b"; done
	for p in "${pairs[@]}"; do
		n=$(cat "$RUN_DIR"/s1.err "$RUN_DIR"/s2.err |
			grep -c -E "Step 4: introduced ($p-a at [^ ]+ and $p-b|$p-b at [^ ]+ and $p-a) at " || true)
		((n == 1)) || fail "$p: expected exactly 1 introduction across the servers; seen $n"
		for id in "$p-a" "$p-b"; do
			n=$(grep -c '^Step 4: peer info: ' "$RUN_DIR/$id.err" || true)
			((n == 1)) || fail "$id: expected exactly 1 PEER-INFO; seen $n"
		done
	done
	echo "ok: ${#pairs[@]} pairs started at once at two servers, each introduced exactly once"
	;;
*)
	fail "unknown mode '$MODE'"
	;;
esac
server_alive "${!SRV_PIDS[@]}"
for n in "${!SRV_PIDS[@]}"; do
	lab_stop_pid "${SRV_PIDS[n]}"
	grep -q -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$RUN_DIR/s$n.err" &&
		fail "s$n: sanitizer report"
done
SRV_PIDS=()
echo PASS
