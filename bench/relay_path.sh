#!/usr/bin/env bash
# relay_path.sh - what the TURN relay path costs against the direct one,
# in the two-NAT lab (scenario nat2) with the server also a relay (--relay):
#
#   relayed  both NATs symmetric (--nat symmetric): no direct pair works, and
#            the clients nominate a relayed pair 500 ms after the checks began
#   direct   both NATs home (port-preserving cone): the srflx pair wins; the
#            clients still allocate and offer a relayed address (same server)
#
# Two measurements per configuration, N rounds each:
#   first line  alice's `punch chat` is started and waits (registered, relay
#               allocated); then bob's is started with a line already in its
#               standard input (chat reads it once the link is up), and alice
#               already has one in hers.  Timed from bob's launch (the
#               SIGCONT that lets his parked process exec punch, as
#               bench/punch_time.sh does) to bob's line printed on alice's
#               stdout (the headline; target: under 1 s over the relay) and
#               to alice's line printed on bob's.
#               Each side's own "punch took" and "since start" figures and
#               bob's relay allocation time are shown beside.
#   pipe        `head -c SIZE /dev/zero | punch pipe` at alice ->
#               `punch pipe </dev/null | wc -c` at bob (count checked), timed
#               as bench/throughput.sh does: from bob's "Secure link up" to the
#               exit of bob's side.  For the relayed path, the punch server's
#               CPU time (utime + stime from /proc/PID/stat, before and after)
#               per MB moved.  Both sides' CPU per MB (/usr/bin/time) too.
# and once, the ceiling: iperf3 TCP between the NATs' public addresses (the
# router hop only), as bench/throughput.sh measures it.
#
# Then the upgrade, in a third build of the lab: both NATs home, and the
# router dropping UDP between the NATs' public ranges (as
# tests/net/upgrade.sh does), so that the clients connect through the relay.
# Each round, fresh `punch chat` clients (the block inserted again first, if
# it was lifted): once both have printed "Connection established ... (relay
# via ...)", the block is lifted (both rules in one iptables-restore, so
# that the two directions open together) and, per side, the time from its
# return to "Path upgraded: ... (direct, srflx)" on that side's stderr is
# taken from the line's arrival stamp (the target: under 1 s).  Timed from
# iptables-restore's return: its commit is the last thing it does, so the
# figure is short by at most its exit; from its start (the time it took is
# printed too) is the upper bound.  The lift comes UP_DELAY_S after both
# lines, inside the clients' first round of direct checks (10 s of checks,
# their interval doubling from 50 to 800 ms); a lift between rounds (2 s
# apart, doubling to 60 s) would wait for the next.  In the first FB_ROUNDS
# rounds the block then goes back and the time to "Path back on the relay"
# is taken too: about 15 s, the consent timeout.
#
# Each transfer checks its path: every "Connection established" line must
# say "relay via" in the relayed configuration and "srflx" in the direct
# one, or the measurement fails.  Around each transfer the IP and UDP
# counters of every namespace on the path (/proc/net/snmp: fragments made
# and reassembled, UDP buffer drops) are read; their deltas are printed, so
# that IP fragmentation of relayed packets, or drops at a full socket, show.
#
# Pinning (PIN=1): alice's side on CPU_A, bob's on CPU_B; the punch server is
# pinned to SERVER_CPU when that is set (default: not pinned; on a 2-core
# machine the relayed transfer has three busy processes for two cores).
#
# Everything runs in a lab instance of its own (LAB, default rpPID), built
# once per configuration; every process is bounded by timeout(1) and every
# wait by a deadline; an EXIT trap stops every process in the instance's
# namespaces, removes them and the scratch files, also on failure or Ctrl-C.
# No traffic leaves the lab.  Timings decide nothing: this is not a test.
#
# Usage: bench/relay_path.sh              (as root, from anywhere)
# Environment (all optional):
#   PUNCH=build/punch   the punch binary (a Release build)
#   ROUNDS=10           rounds of the first-line measurement, per configuration
#                       (0, with TP_ROUNDS=0 and IPERF_S=0: the upgrade alone)
#   TP_ROUNDS=3         rounds of the pipe transfer, per configuration
#   SIZE=100M           bytes per pipe transfer (head -c syntax: K, M, G)
#   IPERF_S=5           seconds of the iperf3 ceiling (after 1 s omitted); 0: skip it
#   UP_ROUNDS=10        rounds of the upgrade; 0: skip it
#   FB_ROUNDS=3         of those, how many also time the fall back to the relay
#   UP_DELAY_S=0        wait this long (seconds, decimals allowed) between both
#                       "Connection established" lines and the lift: 0 lifts
#                       inside the first round of direct checks, while they are
#                       still dense; 3 or more, once they are 800 ms apart
#   PIN=1               0: no pinning;  CPU_A=0 CPU_B=1 SERVER_CPU=
#   TIMEOUT_S=60        bound on one client (launch to exit) and on each wait
#   LOGS=DIR            keep every measurement's logs in DIR
#   LAB=rpPID           lab instance name (see scripts/lab)
# Exit status: 0, or 1 if any measurement failed (its logs are printed).
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME with a '.'

RP_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RP_REPO=$(cd "$RP_HERE/.." && pwd)
LAB=${LAB:-rp$$}
# shellcheck source=../scripts/lab
source "$RP_REPO/scripts/lab"

PUNCH=${PUNCH:-$RP_REPO/build/punch}
ROUNDS=${ROUNDS:-10}
TP_ROUNDS=${TP_ROUNDS:-3}
SIZE=${SIZE:-100M}
IPERF_S=${IPERF_S:-5}
UP_ROUNDS=${UP_ROUNDS:-10}
FB_ROUNDS=${FB_ROUNDS:-3}
UP_DELAY_S=${UP_DELAY_S:-0}
PIN=${PIN:-1}
CPU_A=${CPU_A:-0}
CPU_B=${CPU_B:-1}
SERVER_CPU=${SERVER_CPU:-}
TIMEOUT_S=${TIMEOUT_S:-60}
LOGS=${LOGS:-}

readonly IPERF_PORT=5201 # the ceiling's server, in natb
readonly NATA_IP=203.0.113.10 NATB_IP=192.0.2.10
readonly RP_READY_S=15 # alice registered and her relay allocated
readonly RP_UP_S=10    # the block lifted -> "Path upgraded" (target: under 1 s)
readonly RP_FB_S=40    # the block back -> "Path back on the relay" (consent: 15 s)
# The configurations: key|NAT mode|the path type every side must report|label.
readonly RP_CONFS=("relay|symmetric|relay|symmetric <-> symmetric, relayed"
	"direct|home|srflx|home <-> home, direct (srflx)")
# The namespaces whose counters are read around a transfer.
readonly RP_SNMP_NODES=(alice nata server natb bob)

rp_die() {
	echo "relay_path: $*" >&2
	exit 1
}

# ----------------------------------------------------------------- checks

((EUID == 0)) || rp_die "needs root (network namespaces, iptables)"
[[ $ROUNDS =~ ^[0-9]+$ ]] || rp_die "ROUNDS='$ROUNDS': expected a whole number"
[[ $UP_ROUNDS =~ ^[0-9]+$ ]] || rp_die "UP_ROUNDS='$UP_ROUNDS': expected a whole number"
{ [[ $FB_ROUNDS =~ ^[0-9]+$ ]] && ((FB_ROUNDS <= UP_ROUNDS)); } ||
	rp_die "FB_ROUNDS='$FB_ROUNDS': expected a whole number, at most UP_ROUNDS ($UP_ROUNDS)"
[[ $TP_ROUNDS =~ ^[0-9]+$ ]] || rp_die "TP_ROUNDS='$TP_ROUNDS': expected a whole number"
[[ $IPERF_S =~ ^[0-9]+$ ]] || rp_die "IPERF_S='$IPERF_S': expected whole seconds"
[[ $UP_DELAY_S =~ ^[0-9]+(\.[0-9]+)?$ ]] || rp_die "UP_DELAY_S='$UP_DELAY_S': expected seconds"
[[ $TIMEOUT_S =~ ^[1-9][0-9]*$ ]] || rp_die "TIMEOUT_S='$TIMEOUT_S': expected whole seconds"
[[ $SIZE =~ ^[1-9][0-9]*[KMG]?$ ]] || rp_die "SIZE='$SIZE': expected a number with an optional K, M or G (as head -c)"
[[ -z $SERVER_CPU || $SERVER_CPU =~ ^[0-9]+$ ]] || rp_die "SERVER_CPU='$SERVER_CPU': expected a CPU number or nothing"
[[ -x $PUNCH ]] || rp_die "$PUNCH not found; build it (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target punch) or set PUNCH"
PUNCH=$(realpath "$PUNCH")
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$(dirname "$PUNCH")/CMakeCache.txt" 2>/dev/null ||
	echo "relay_path: warning: $PUNCH may not be a Release build" >&2
for cmd in ip iptables iptables-restore iperf3 jq taskset timeout awk numfmt; do
	command -v "$cmd" >/dev/null || rp_die "$cmd not found (scripts/deps.sh installs it)"
done
[[ -x /usr/bin/time ]] || rp_die "/usr/bin/time not found (GNU time)"
if ((PIN)); then
	(($(nproc) >= 2)) || rp_die "PIN=1 needs 2 CPUs; this machine has $(nproc) (PIN=0 runs unpinned)"
	RP_PIN_A=(taskset -c "$CPU_A") RP_PIN_B=(taskset -c "$CPU_B")
else
	RP_PIN_A=() RP_PIN_B=()
fi
SIZE_BYTES=$(numfmt --from=iec "$SIZE")
lab_check_free
[[ -z $LOGS ]] || mkdir -p "$LOGS"

RP_TMP=$(mktemp -d /dev/shm/relay_path.XXXXXX)
RP_CHILD="" RP_RUN=""
declare -A RP_FD=()

# shellcheck disable=SC2317 # run by the trap
rp_cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ -n $RP_CHILD ]] && kill -0 "$RP_CHILD" 2>/dev/null; then
		kill -TERM "$RP_CHILD" 2>/dev/null
		lab_wait_gone 15 "$RP_CHILD" || kill -KILL "$RP_CHILD" 2>/dev/null
		wait "$RP_CHILD" 2>/dev/null
	fi
	lab_down
	rm -rf "$RP_TMP" "${RUN_DIR:-}"
	exit "$rc"
}
trap rp_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ helpers

# rp_stamp: copies stdin to stdout, each line prefixed with its arrival time.
rp_stamp() {
	local line
	while IFS= read -r line; do
		printf '%s %s\n' "$EPOCHREALTIME" "$line"
	done
	[[ -z $line ]] || printf '%s %s\n' "$EPOCHREALTIME" "$line"
}

# rp_spawn NODE a|b|- LOGBASE STDIN CMD...: CMD in NODE's namespace, pinned
# to that side's CPU, stdout and stderr stamped line by line into
# LOGBASE.out and .err.  Sets LAB_PID.
rp_spawn() {
	local node=$1 side=$2 log=$3 in=$4 pin=()
	shift 4
	case $side in
	a) pin=("${RP_PIN_A[@]}") ;;
	b) pin=("${RP_PIN_B[@]}") ;;
	esac
	(exec ip netns exec "$(lab_ns "$node")" "${pin[@]}" "$@" \
		<"$in" > >(rp_stamp >"$log.out") 2> >(rp_stamp >"$log.err")) &
	LAB_PID=$!
}

# rp_reap NODE...: stops every process in these nodes' namespaces.
rp_reap() {
	local node pids=()
	for node in "$@"; do
		lab_has_node "$node" || continue
		mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$(lab_ns "$node")" 2>/dev/null || true)
	done
	((${#pids[@]})) || return 0
	kill -TERM "${pids[@]}" 2>/dev/null || true
	lab_wait_gone 5 "${pids[@]}" || kill -KILL "${pids[@]}" 2>/dev/null || true
	lab_wait_gone 2 "${pids[@]}" || true
}

# rp_wait PID: waits for PID (bounded by the timeout(1) inside it); sets
# RP_END (epoch) and RP_RC.
rp_wait() {
	RP_RC=0
	wait "$1" || RP_RC=$?
	RP_END=$EPOCHREALTIME
}

# rp_stamp_of FILE ERE: the arrival time of FILE's first line matching ERE.
rp_stamp_of() {
	local line
	line=$(grep -m1 -E -- "^[0-9.]+ $2" "$1") || return 1
	echo "${line%% *}"
}

# rp_wait_stamped FILE ERE SECONDS: until FILE has a line matching ERE.
rp_wait_stamped() {
	lab_wait_line "$1" "^[0-9.]+ $2" "$3"
}

rp_ms() { # FROM TO (epochs) -> ms
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'
}

rp_fail() {
	echo "relay_path: FAIL: $*" >&2
	exit 1
}

# rp_result KEY VALUE [NOTE]: one measurement's result, filed under KEY.
rp_result() {
	echo "$2 ${3:-}" >>"$RP_TMP/res/$1"
}

rp_keep_logs() { # NAME
	[[ -n $LOGS ]] || return 0
	local f
	for f in "$RP_RUN"/*; do
		[[ -f $f && ! -p $f ]] || continue
		cp "$f" "$LOGS/$1-${f##*/}"
	done
}

rp_print_logs() {
	local f
	for f in "$RP_RUN"/*.err "$RP_RUN"/*.out "$RP_RUN"/*.time "$RUN_DIR"/server-*.err; do
		[[ -s $f ]] || continue
		echo "---- ${f##*/} (last 30 lines) ----" >&2
		tail -n 30 "$f" | sed 's/^/  | /' >&2
	done
}

# rp_measure NAME CMD...: one measurement in a subshell of its own, which
# stops every process of alice and bob when it ends (and prints the logs if
# it failed).
rp_measure() {
	local name=$1 rc=0
	shift
	RP_RUN=$RP_TMP/run-$name
	(
		mkdir -p "$RP_RUN"
		trap 'rc=$?; set +e; rp_reap alice bob nata natb; ((rc == 0)) || rp_print_logs; rp_keep_logs "$name"; rm -rf "$RP_RUN"; exit $rc' EXIT
		trap 'exit 143' TERM
		"$@"
	) &
	RP_CHILD=$!
	wait "$RP_CHILD" || rc=$?
	RP_CHILD=""
	return "$rc"
}

# rp_paths WANT ID...: every ID's "Connection established" line names the
# path type WANT (relay: "relay via ..."); sets RP_PATH_<ID> and
# RP_TOOK_<ID> / RP_SINCE_<ID> (the line's "punch took" and "since start").
rp_paths() {
	local want=$1 id line re
	shift
	re='Connection established: ([^ ]+) -> ([^ ]+) \(([a-z]+)( via [^ )]+)?\), punch took ([0-9]+) ms, ([0-9]+) ms since start'
	for id in "$@"; do
		line=$(grep -m1 -E "^[0-9.]+ $re" "$RP_RUN/$id.err") ||
			rp_fail "$id printed no 'Connection established' line"
		[[ $line =~ $re ]] || rp_fail "$id: unexpected line '$line'"
		[[ ${BASH_REMATCH[3]} == "$want" ]] ||
			rp_fail "$id took a ${BASH_REMATCH[3]} path, not $want: '${line#* }'"
		printf -v "RP_PATH_$id" '%s -> %s (%s%s)' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" \
			"${BASH_REMATCH[3]}" "${BASH_REMATCH[4]}"
		printf -v "RP_TOOK_$id" '%s' "${BASH_REMATCH[5]}"
		printf -v "RP_SINCE_$id" '%s' "${BASH_REMATCH[6]}"
	done
}

# rp_snmp: "FragCreates FragOKs FragFails ReasmReqds ReasmOKs UdpInErrors
# UdpRcvbufErrors UdpSndbufErrors", summed over RP_SNMP_NODES (each
# namespace has its own /proc/net/snmp).
rp_snmp() {
	local node
	for node in "${RP_SNMP_NODES[@]}"; do
		lab_nsx "$node" cat /proc/net/snmp
	done | awk '
		$1 == "Ip:" && $2 !~ /^[0-9]/ { for (i = 2; i <= NF; i++) ip[i] = $i; next }
		$1 == "Ip:" { for (i = 2; i <= NF; i++) s["Ip" ip[i]] += $i; next }
		$1 == "Udp:" && $2 !~ /^[0-9]/ { for (i = 2; i <= NF; i++) udp[i] = $i; next }
		$1 == "Udp:" { for (i = 2; i <= NF; i++) s["Udp" udp[i]] += $i; next }
		END { print s["IpFragCreates"] + 0, s["IpFragOKs"] + 0, s["IpFragFails"] + 0,
		      s["IpReasmReqds"] + 0, s["IpReasmOKs"] + 0, s["UdpInErrors"] + 0,
		      s["UdpRcvbufErrors"] + 0, s["UdpSndbufErrors"] + 0 }'
}

rp_snmp_delta() { # BEFORE AFTER (rp_snmp lines) -> "frag=N reasm=N ..."
	awk -v a="$1" -v b="$2" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		split("frag-created frag-ok frag-failed reasm-reqds reasm-ok udp-in-errors udp-rcvbuf-errors udp-sndbuf-errors", k, " ")
		for (i = 1; i <= n; i++) printf "%s%s=%d", (i > 1 ? " " : ""), k[i], y[i] - x[i]
		print "" }'
}

# rp_server_ticks: the punch server's utime + stime, in clock ticks.
rp_server_ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$SERVER_PID/stat"
}

# ------------------------------------------------------------- first line

# rp_chat_peer ID PEER SIDE [gate]: `punch chat` with its own identity, its
# standard input the FIFO RP_RUN/ID.in (opened read-write here so that it
# never ends); sets RP_FD[ID] and LAB_PID.  With "gate", the process parks
# itself (SIGSTOP) in its namespace, pinned, just before exec'ing punch (as
# bench/punch_time.sh does): rp_release starts it, so that the namespace
# entry and the forks of this script are not in the time.
rp_chat_peer() {
	local id=$1 peer=$2 side=$3 fifo=$RP_RUN/$1.in fd gate=()
	mkfifo "$fifo"
	exec {fd}<>"$fifo"
	RP_FD[$id]=$fd
	# shellcheck disable=SC2016 # $$ and $@ are the inner shell's
	[[ ${4:-} != gate ]] || gate=(bash -c 'kill -STOP $$ && exec "$@"' gate)
	rp_spawn "$id" "$side" "$RP_RUN/$id" "$fifo" "${gate[@]}" env XDG_CONFIG_HOME="$RP_KEYS/$id" \
		timeout -k 5 "$TIMEOUT_S" "$PUNCH" chat -server "$SERVER_IP:$LAB_STUN_PORT" -id "$id" -peer "$peer"
}

# rp_state PID: the process's state letter (R, S, T, Z...), or "gone".
rp_state() {
	local line
	read -r line <"/proc/$1/stat" 2>/dev/null || {
		echo gone
		return
	}
	line=${line##*) }
	echo "${line%% *}"
}

# rp_release PID: once the gated PID has parked, sets RP_T0 (epoch) and
# sends it SIGCONT.
rp_release() {
	lab_now
	local deadline=$((LAB_NOW + RP_READY_S * 1000))
	until [[ $(rp_state "$1") == T ]]; do
		[[ $(rp_state "$1") != gone ]] || rp_fail "process $1 exited before its launch"
		lab_now
		((LAB_NOW < deadline)) || rp_fail "process $1 did not park within $RP_READY_S s"
		sleep 0.01
	done
	RP_T0=$EPOCHREALTIME
	kill -CONT "$1"
}

m_first() {
	local want=$1 t0 at_a at_b alloc msg_a msg_b fd_a fd_b pid_a pid_b
	msg_a="alice's line $RANDOM$RANDOM" msg_b="bob's line $RANDOM$RANDOM"
	rp_chat_peer alice bob a
	pid_a=$LAB_PID
	fd_a=${RP_FD[alice]}
	rp_wait_stamped "$RP_RUN/alice.err" 'Step 3: ' "$RP_READY_S" ||
		rp_fail "alice did not register within $RP_READY_S s"
	rp_wait_stamped "$RP_RUN/alice.err" 'Relay: ' "$RP_READY_S" ||
		rp_fail "alice printed no 'Relay: ' line (relay allocated) within $RP_READY_S s"
	printf '%s\n' "$msg_a" >&"$fd_a"
	rp_chat_peer bob alice b gate
	pid_b=$LAB_PID
	fd_b=${RP_FD[bob]}
	printf '%s\n' "$msg_b" >&"$fd_b"
	rp_release "$pid_b"
	t0=$RP_T0
	rp_wait_stamped "$RP_RUN/alice.out" "bob: $msg_b\$" "$TIMEOUT_S" ||
		rp_fail "bob's line did not reach alice within $TIMEOUT_S s"
	rp_wait_stamped "$RP_RUN/bob.out" "alice: $msg_a\$" "$TIMEOUT_S" ||
		rp_fail "alice's line did not reach bob within $TIMEOUT_S s"
	at_a=$(rp_stamp_of "$RP_RUN/alice.out" "bob: $msg_b\$")
	at_b=$(rp_stamp_of "$RP_RUN/bob.out" "alice: $msg_a\$")
	rp_paths "$want" alice bob
	alloc=$(grep -m1 -o -E '^[0-9.]+ Relay: .*\(allocated in [0-9]+ ms\)' "$RP_RUN/bob.err" |
		grep -o -E '[0-9]+ ms\)$' | grep -o -E '^[0-9]+') || alloc=-
	printf 'quit\n' >&"$fd_a"
	printf 'quit\n' >&"$fd_b"
	lab_wait_gone 10 "$pid_a" "$pid_b" || true
	# shellcheck disable=SC2154 # RP_TOOK_* and RP_SINCE_* are set by rp_paths
	RP_LINE="$(rp_ms "$t0" "$at_a") $(rp_ms "$t0" "$at_b") $RP_TOOK_alice $RP_SINCE_alice $RP_TOOK_bob $RP_SINCE_bob $alloc"
	echo "$RP_LINE" >"$RP_RUN/result"
	# shellcheck disable=SC2154
	echo "$RP_PATH_alice | $RP_PATH_bob" >"$RP_RUN/path"
	cp "$RP_RUN/result" "$RP_TMP/last"
	cp "$RP_RUN/path" "$RP_TMP/last.path"
}

# ------------------------------------------------------------------- pipe

# rp_pipe_cmd ID PEER: RP_CMD, one side's punch pipe, CPU time
# into RP_RUN/ID.time.
rp_pipe_cmd() {
	RP_CMD=(env XDG_CONFIG_HOME="$RP_KEYS/$1" timeout -k 5 "$TIMEOUT_S"
		/usr/bin/time -o "$RP_RUN/$1.time" -f '%e %U %S' "$PUNCH" pipe
		-server "$SERVER_IP:$LAB_STUN_PORT" -id "$1" -peer "$2")
}

m_pipe() {
	local want=$1 count up secs t0 t1 s0 s1 cpu_a cpu_b srv_ms hz pid_a pid_b bob_rc
	hz=$(getconf CLK_TCK)
	s0=$(rp_snmp)
	t0=$(rp_server_ticks)
	rp_pipe_cmd bob alice
	rp_spawn bob b "$RP_RUN/bob" /dev/null bash -c 'set -o pipefail; "$@" | wc -c' pipe "${RP_CMD[@]}"
	pid_b=$LAB_PID
	rp_pipe_cmd alice bob
	# shellcheck disable=SC2016 # $0 and $@ are the inner shell's
	rp_spawn alice a "$RP_RUN/alice" /dev/null bash -c 'set -o pipefail; head -c "$0" /dev/zero | "$@" >/dev/null' \
		"$SIZE_BYTES" "${RP_CMD[@]}"
	pid_a=$LAB_PID
	rp_wait "$pid_b"
	bob_rc=$RP_RC
	local bob_end=$RP_END
	rp_wait "$pid_a"
	t1=$(rp_server_ticks)
	s1=$(rp_snmp)
	((bob_rc == 0)) || rp_fail "bob's punch pipe | wc -c exited with status $bob_rc"
	((RP_RC == 0)) || rp_fail "alice's head | punch pipe exited with status $RP_RC"
	sleep 0.2 # for the stampers to write the last lines
	count=$(awk '{ print $2 }' "$RP_RUN/bob.out" | tr -d ' \n')
	[[ $count == "$SIZE_BYTES" ]] || rp_fail "bob received $count bytes; expected $SIZE_BYTES"
	rp_paths "$want" alice bob
	up=$(rp_stamp_of "$RP_RUN/bob.err" 'Secure link up') || rp_fail "bob printed no 'Secure link up' line"
	secs=$(awk -v a="$up" -v b="$bob_end" 'BEGIN { printf "%.3f", b - a }')
	read -r _ ua sa <"$RP_RUN/alice.time" || rp_fail "no CPU times for alice"
	read -r _ ub sb <"$RP_RUN/bob.time" || rp_fail "no CPU times for bob"
	cpu_a=$(awk -v u="$ua" -v s="$sa" -v n="$SIZE_BYTES" 'BEGIN { printf "%.2f", (u + s) * 1000 / (n / 1e6) }')
	cpu_b=$(awk -v u="$ub" -v s="$sb" -v n="$SIZE_BYTES" 'BEGIN { printf "%.2f", (u + s) * 1000 / (n / 1e6) }')
	srv_ms=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v n="$SIZE_BYTES" 'BEGIN { printf "%.2f %.0f", t * 1000 / hz / (n / 1e6), t * 1000 / hz }')
	RP_LINE="$(awk -v n="$SIZE_BYTES" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') $secs $cpu_a $cpu_b $srv_ms"
	echo "$RP_LINE" >"$RP_TMP/last"
	# shellcheck disable=SC2154 # set by rp_paths
	echo "$RP_PATH_alice | $RP_PATH_bob" >"$RP_TMP/last.path"
	rp_snmp_delta "$s0" "$s1" >"$RP_TMP/last.snmp"
}

# ---------------------------------------------------------------- ceiling

m_ceiling() {
	local bps spid
	lab_nsx natb iptables -w 5 -I INPUT 1 -i wan0 -p tcp -d "$NATB_IP" --dport "$IPERF_PORT" -j ACCEPT
	rp_spawn natb b "$RP_RUN/iperf-s" /dev/null timeout -k 5 $((IPERF_S + 30)) \
		iperf3 -s -1 --forceflush -B "$NATB_IP" -p "$IPERF_PORT"
	spid=$LAB_PID
	rp_wait_stamped "$RP_RUN/iperf-s.out" 'Server listening' 10 || rp_fail "iperf3 -s in natb did not start"
	(exec ip netns exec "$(lab_ns nata)" "${RP_PIN_A[@]}" timeout -k 5 $((IPERF_S + 20)) \
		iperf3 -J -t "$IPERF_S" -O 1 -c "$NATB_IP" -B "$NATA_IP" -p "$IPERF_PORT" \
		>"$RP_RUN/iperf-c.json" 2>"$RP_RUN/iperf-c.err") &
	rp_wait $!
	((RP_RC == 0)) || rp_fail "iperf3 client in nata exited with status $RP_RC"
	bps=$(jq -r '.end.sum_received.bits_per_second' "$RP_RUN/iperf-c.json")
	[[ $bps =~ ^[0-9.e+]+$ ]] || rp_fail "no rate in iperf3's report"
	awk -v b="$bps" 'BEGIN { printf "%.0f\n", b / 8 }' >"$RP_TMP/last"
	lab_wait_gone 5 "$spid" || true
	lab_nsx natb iptables -w 5 -D INPUT -i wan0 -p tcp -d "$NATB_IP" --dport "$IPERF_PORT" -j ACCEPT
}

# ---------------------------------------------------------------- upgrade

# rp_block_rules -I|-D|-C: the router's two rules that drop UDP between the
# NATs' public ranges (those of tests/net/upgrade.sh), for iptables-restore.
rp_block_rules() {
	printf '*filter\n'
	printf -- '%s FORWARD -p udp -s 203.0.113.0/24 -d 192.0.2.0/24 -j DROP\n' "$1"
	printf -- '%s FORWARD -p udp -s 192.0.2.0/24 -d 203.0.113.0/24 -j DROP\n' "$1"
	printf 'COMMIT\n'
}

# rp_block -I|-D: inserts or deletes both rules in one transaction; sets
# RP_T0 (epoch) to the moment iptables-restore returned, and RP_OP_MS to how
# long it took (the uncertainty of RP_T0).
rp_block() {
	local t
	t=$EPOCHREALTIME
	rp_block_rules "$1" | lab_nsx router iptables-restore --noflush ||
		rp_fail "iptables-restore $1 at the router failed"
	RP_T0=$EPOCHREALTIME
	RP_OP_MS=$(rp_ms "$t" "$RP_T0")
}

# rp_blocked: true if both rules are in place (iptables -C).
rp_blocked() {
	lab_nsx router iptables -w 5 -C FORWARD -p udp -s 203.0.113.0/24 -d 192.0.2.0/24 -j DROP 2>/dev/null &&
		lab_nsx router iptables -w 5 -C FORWARD -p udp -s 192.0.2.0/24 -d 203.0.113.0/24 -j DROP 2>/dev/null
}

# rp_switched ID ERE WHAT SECONDS: waits for ID's stderr line ERE; sets
# RP_AT (its arrival stamp) and RP_SEEN (the line).
rp_switched() {
	rp_wait_stamped "$RP_RUN/$1.err" "$2" "$4" ||
		rp_fail "$1 printed no '$3' line within $4 s; its last line: '$(tail -n 1 "$RP_RUN/$1.err")'"
	RP_SEEN=$(grep -m1 -E -- "^[0-9.]+ $2" "$RP_RUN/$1.err")
	RP_AT=${RP_SEEN%% *}
	RP_SEEN=${RP_SEEN#* }
}

# m_upgrade fallback|-: fresh clients connect through the relay (the block
# in place); the block is lifted, and each side's time to "Path upgraded"
# taken; with "fallback", the block goes back and each side's time to "Path
# back on the relay" is taken too.  RP_TMP/last: "upgrade-ms-alice
# upgrade-ms-bob on-relay-ms-alice on-relay-ms-bob established-to-lift-ms
# lift-op-ms [fallback-ms-alice fallback-ms-bob insert-op-ms]".
m_upgrade() {
	local fb=$1 id t_lift t_est=0 at line re up=() onrelay=() back=() pid_a pid_b
	rp_blocked || rp_block -I
	rp_chat_peer alice bob a
	pid_a=$LAB_PID
	rp_chat_peer bob alice b
	pid_b=$LAB_PID
	for id in alice bob; do
		rp_wait_stamped "$RP_RUN/$id.err" 'Connection established: ' "$TIMEOUT_S" ||
			rp_fail "$id printed no 'Connection established' line within $TIMEOUT_S s"
		at=$(rp_stamp_of "$RP_RUN/$id.err" 'Connection established: ')
		t_est=$(awk -v a="$t_est" -v b="$at" 'BEGIN { print (b > a) ? b : a }')
	done
	rp_paths relay alice bob
	[[ $UP_DELAY_S == 0 ]] || sleep "$UP_DELAY_S"
	rp_block -D
	t_lift=$RP_T0
	line="$RP_OP_MS"
	re='^Path upgraded: [^ ]+ -> [^ ]+ \(direct, srflx\), after ([0-9]+) ms on the relay$'
	for id in alice bob; do
		rp_switched "$id" 'Path upgraded: ' 'Path upgraded: ...' "$RP_UP_S"
		[[ $RP_SEEN =~ $re ]] || rp_fail "$id: expected 'Path upgraded: L -> R (direct, srflx), after N ms on the relay'; seen '$RP_SEEN'"
		up+=("$(rp_ms "$t_lift" "$RP_AT")")
		onrelay+=("${BASH_REMATCH[1]}")
	done
	if [[ $fb == fallback ]]; then
		rp_block -I
		for id in alice bob; do
			rp_switched "$id" 'Path back on the relay: ' 'Path back on the relay: ...' "$RP_FB_S"
			back+=("$(rp_ms "$RP_T0" "$RP_AT")")
		done
		back+=("$RP_OP_MS")
	fi
	printf 'quit\n' >&"${RP_FD[alice]}"
	printf 'quit\n' >&"${RP_FD[bob]}"
	lab_wait_gone 10 "$pid_a" "$pid_b" || true
	echo "${up[*]} ${onrelay[*]} $(rp_ms "$t_est" "$t_lift") $line ${back[*]}" >"$RP_TMP/last"
	# shellcheck disable=SC2154 # set by rp_paths
	echo "$RP_PATH_alice | $RP_PATH_bob" >"$RP_TMP/last.path"
}

# ------------------------------------------------------------------ set-up

# rp_lab MODE: the instance, rebuilt with both NATs in MODE, and its server
# (a relay too), pinned to SERVER_CPU if set.
rp_lab() {
	lab_down
	[[ -z ${RUN_DIR:-} ]] || rm -rf "$RUN_DIR"
	lab_parse_opts up nat2 --nat "$1" --relay
	lab_run_init
	lab_build
	lab_start_server
	[[ -z $SERVER_CPU ]] || taskset -pc "$SERVER_CPU" "$SERVER_PID" >/dev/null
	[[ $(cat "/proc/$SERVER_PID/comm") == punch ]] || rp_die "SERVER_PID $SERVER_PID is not the punch server"
}

# ------------------------------------------------------------------ report

# rp_stats COLUMN KEY: "median min max n" of COLUMN (1-based) of KEY's results.
rp_stats() {
	[[ -s $RP_TMP/res/$2 ]] || {
		echo "- - - 0"
		return 0
	}
	awk -v c="$1" '$c != "-" { v[++k] = $c }
		END {
			if (!k) { print "- - - 0"; exit }
			for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
			m = k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
			print m, v[1], v[k], k
		}' "$RP_TMP/res/$2"
}

rp_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.2fx\n", a / b }'
}

rp_mb() { # BYTES_PER_S -> MB/s
	awk -v b="$1" 'BEGIN { if (b == "-") print "-"; else printf "%.1f", b / 1e6 }'
}

rp_report() {
	echo
	echo "relay_path: scenario nat2 with --relay; $ROUNDS rounds of the first line, $TP_ROUNDS of pipe ($SIZE each), iperf3 ${IPERF_S} s," \
		"$UP_ROUNDS of the upgrade ($FB_ROUNDS with the fallback)"
	echo "punch $PUNCH"
	if ((PIN)); then
		echo "pinned: alice's side on CPU $CPU_A, bob's on CPU $CPU_B, server ${SERVER_CPU:-not pinned} (of $(nproc)); load average $RP_LOAD0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end"
	else
		echo "not pinned ($(nproc) CPUs); load average $RP_LOAD0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end"
	fi
	if ((ROUNDS || TP_ROUNDS || IPERF_S)); then
		rp_report_main
	fi
	if ((UP_ROUNDS)); then
		rp_report_upgrade
	fi
}

rp_report_main() {
	local conf key label med lo hi n col what
	echo "first chat line, ms (median min max of the rounds), from bob's launch:"
	printf '  %-36s %22s %22s %14s %14s %14s %14s %12s\n' configuration "bob's line at alice" "alice's line at bob" \
		"alice took" "alice since" "bob took" "bob since" "bob's alloc"
	for conf in "${RP_CONFS[@]}"; do
		IFS='|' read -r key _ _ label <<<"$conf"
		printf '  %-36s' "$label"
		for col in 1 2 3 4 5 6 7; do
			read -r med lo hi n < <(rp_stats "$col" "first-$key")
			what="$med ($lo-$hi)"
			((col <= 2)) && printf ' %22s' "$what" && continue
			((col == 7)) && printf ' %12s' "$med" && continue
			printf ' %14s' "$med"
		done
		echo
	done
	local rf df
	rf=$(rp_stats 1 first-relay | cut -d' ' -f1) df=$(rp_stats 1 first-direct | cut -d' ' -f1)
	echo "  relayed / direct (bob's line at alice, medians): $(rp_ratio "$rf" "$df");" \
		"relayed median $rf ms: $(awk -v m="$rf" 'BEGIN { print (m != "-" && m < 1000) ? "under" : "NOT under" }') the 1 s target"
	echo "throughput, punch pipe alice -> bob (median of the rounds; min-max):"
	printf '  %-36s %9s %15s %12s %12s %14s %7s\n' path 'MB/s' 'min-max' 'alice ms/MB' 'bob ms/MB' 'server ms/MB' runs
	for conf in "${RP_CONFS[@]}"; do
		IFS='|' read -r key _ _ label <<<"$conf"
		read -r med lo hi n < <(rp_stats 1 "pipe-$key")
		printf '  %-36s %9s %15s %12s %12s %14s %7s\n' "$label" "$(rp_mb "$med")" "$(rp_mb "$lo")-$(rp_mb "$hi")" \
			"$(rp_stats 3 "pipe-$key" | cut -d' ' -f1)" "$(rp_stats 4 "pipe-$key" | cut -d' ' -f1)" \
			"$(rp_stats 5 "pipe-$key" | cut -d' ' -f1)" "$n"
	done
	local ceil rp dp
	read -r ceil _ _ n < <(rp_stats 1 ceiling)
	printf '  %-36s %9s\n' "iperf3 TCP nata -> natb (ceiling)" "$(rp_mb "$ceil")"
	rp=$(rp_stats 1 pipe-relay | cut -d' ' -f1) dp=$(rp_stats 1 pipe-direct | cut -d' ' -f1)
	echo "  relayed / direct: $(rp_ratio "$rp" "$dp");  relayed / ceiling: $(rp_ratio "$rp" "$ceil");  direct / ceiling: $(rp_ratio "$dp" "$ceil")"
	echo "(first line: bob's launch -> the line printed on the other side's stdout; took/since: the"
	echo " clients' own 'punch took' and 'since start'; alloc: bob's 'allocated in'.  pipe: bytes /"
	echo " (bob's 'Secure link up' -> bob's side exits); ms/MB: CPU (user + system) per 10^6 bytes,"
	echo " the clients' over their whole run, the server's over the transfer (/proc/PID/stat, 10 ms ticks))"
	for key in first-relay first-direct pipe-relay pipe-direct; do
		[[ -s $RP_TMP/res/$key ]] || continue
		echo "$key, each run:"
		sed 's/^/  /' "$RP_TMP/res/$key"
	done
}

# rp_report_upgrade: the upgrade's and the fallback's figures.
rp_report_upgrade() {
	local med lo hi n col who both
	echo "upgrade, relay -> direct (home <-> home, UDP between the NATs blocked at the router, then the block"
	echo "lifted ${UP_DELAY_S} s after both were on the relay); ms from the lift to each side's 'Path upgraded', $UP_ROUNDS rounds:"
	printf '  %-10s %9s %9s %9s %5s\n' side median min max runs
	# Both sides upgraded: the later of the two lines, per round.
	awk '{ print ($1 > $2 ? $1 : $2) }' "$RP_TMP/res/upgrade" 2>/dev/null >"$RP_TMP/res/upgrade-both" || true
	for col in 1 2 both; do
		case $col in
		1) who=alice ;;
		2) who=bob ;;
		both) who="both" ;;
		esac
		if [[ $col == both ]]; then
			read -r med lo hi n < <(rp_stats 1 upgrade-both)
		else
			read -r med lo hi n < <(rp_stats "$col" upgrade)
		fi
		printf '  %-10s %9s %9s %9s %5s\n' "$who" "$med" "$lo" "$hi" "$n"
	done
	both=$(rp_stats 1 upgrade-both | cut -d' ' -f1)
	echo "  target: under 1 s (both sides); median $both ms: $(awk -v m="$both" 'BEGIN { print (m != "-" && m < 1000) ? "under" : "NOT under" }') it;" \
		"max $(rp_stats 1 upgrade-both | cut -d' ' -f3) ms"
	echo "  on the relay before the lift (both established -> lift), ms: median $(rp_stats 5 upgrade | cut -d' ' -f1);" \
		"the lift itself (iptables-restore) took $(rp_stats 6 upgrade | cut -d' ' -f1) ms (median)"
	if [[ -s $RP_TMP/res/fallback ]]; then
		echo "fallback, direct -> relay (the block back after the upgrade); ms to each side's 'Path back on the relay', $FB_ROUNDS rounds:"
		printf '  %-10s %9s %9s %9s %5s\n' side median min max runs
		for col in 1 2; do
			((col == 1)) && who=alice || who=bob
			read -r med lo hi n < <(rp_stats "$col" fallback)
			printf '  %-10s %9s %9s %9s %5s\n' "$who" "$med" "$lo" "$hi" "$n"
		done
		echo "  expected: about 15 s (consent lost after 15 s without an answer; checks every 5 s +-20%)"
	fi
	for key in upgrade fallback; do
		[[ -s $RP_TMP/res/$key ]] || continue
		echo "$key, each run:"
		sed 's/^/  /' "$RP_TMP/res/$key"
	done
}

# ------------------------------------------------------------------ main

RP_LOAD0=$(cut -d' ' -f1 /proc/loadavg)
mkdir -p "$RP_TMP/res"
echo "relay_path: lab instance $LAB; punch $PUNCH" >&2
failures=0
for conf in "${RP_CONFS[@]}"; do
	IFS='|' read -r key mode want label <<<"$conf"
	if ((!ROUNDS && !TP_ROUNDS)) && [[ $key != direct || $IPERF_S == 0 ]]; then
		continue # nothing to measure in this configuration
	fi
	rp_lab "$mode"
	# Identity keys, made once per configuration (each lab build's server
	# has a key of its own, which the clients remember on first use).
	RP_KEYS=$RP_TMP/keys/$key
	for id in alice bob; do
		XDG_CONFIG_HOME=$RP_KEYS/$id "$PUNCH" id >/dev/null 2>&1 || rp_die "'punch id' failed for $id"
	done
	echo "  $label: NATs $mode, server pid $SERVER_PID" >&2
	for ((round = 1; round <= ROUNDS; round++)); do
		if ! rp_measure "first-$key-$round" m_first "$want"; then
			failures=$((failures + 1))
			echo "  round $round first line, $label: FAILED" >&2
			continue
		fi
		read -r line <"$RP_TMP/last"
		echo "$line $(cat "$RP_TMP/last.path")" >>"$RP_TMP/res/first-$key"
		read -r at_a at_b _ <<<"$line"
		printf '  round %2d first line: at alice %7s ms, at bob %7s ms  [%s]\n' "$round" "$at_a" "$at_b" \
			"$(cat "$RP_TMP/last.path")" >&2
	done
	for ((round = 1; round <= TP_ROUNDS; round++)); do
		if ! rp_measure "pipe-$key-$round" m_pipe "$want"; then
			failures=$((failures + 1))
			echo "  round $round pipe, $label: FAILED" >&2
			continue
		fi
		read -r line <"$RP_TMP/last"
		echo "$line $(cat "$RP_TMP/last.snmp")" >>"$RP_TMP/res/pipe-$key"
		read -r rate secs ca cb srv srvms <<<"$line"
		printf '  round %d pipe: %s MB/s in %s s; CPU ms/MB alice %s bob %s server %s (%s ms)  [%s]\n    counters: %s\n' \
			"$round" "$(rp_mb "$rate")" "$secs" "$ca" "$cb" "$srv" "$srvms" "$(cat "$RP_TMP/last.path")" \
			"$(cat "$RP_TMP/last.snmp")" >&2
	done
	if [[ $key == direct ]] && ((IPERF_S > 0)); then
		if rp_measure ceiling m_ceiling; then
			rp_result ceiling "$(cat "$RP_TMP/last")"
			echo "  ceiling: $(rp_mb "$(cat "$RP_TMP/last")") MB/s" >&2
		else
			failures=$((failures + 1))
			echo "  ceiling: FAILED" >&2
		fi
	fi
done
if ((UP_ROUNDS)); then
	rp_lab home
	RP_KEYS=$RP_TMP/keys/upgrade
	for id in alice bob; do
		XDG_CONFIG_HOME=$RP_KEYS/$id "$PUNCH" id >/dev/null 2>&1 || rp_die "'punch id' failed for $id"
	done
	echo "  upgrade: NATs home, direct UDP blocked at the router, server pid $SERVER_PID" >&2
	for ((round = 1; round <= UP_ROUNDS; round++)); do
		fb=-
		((round > FB_ROUNDS)) || fb=fallback
		if ! rp_measure "upgrade-$round" m_upgrade "$fb"; then
			failures=$((failures + 1))
			echo "  round $round upgrade: FAILED" >&2
			continue
		fi
		read -r up_a up_b on_a on_b est lift back_a back_b ins <"$RP_TMP/last"
		echo "$up_a $up_b $on_a $on_b $est $lift $(cat "$RP_TMP/last.path")" >>"$RP_TMP/res/upgrade"
		printf '  round %2d upgrade: alice %7s ms, bob %7s ms after the lift (%s ms after both were on the relay; lift took %s ms)\n' \
			"$round" "$up_a" "$up_b" "$est" "$lift" >&2
		if [[ $fb == fallback ]]; then
			echo "$back_a $back_b $ins" >>"$RP_TMP/res/fallback"
			printf '           fallback: alice %7s ms, bob %7s ms after the block went back\n' "$back_a" "$back_b" >&2
		fi
	done
fi
rp_report
if ((failures)); then
	echo "relay_path: $failures measurements failed (see above)" >&2
	exit 1
fi
