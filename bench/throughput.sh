#!/usr/bin/env bash
# throughput.sh - bulk throughput between two peers behind two home NATs
# (lab scenario nat2: alice 10.0.1.2 behind nata 203.0.113.10, bob 10.0.2.2
# behind natb 192.0.2.10), side by side in one run:
#
#   punch send   `punch send FILE` at alice -> `punch recv DIR -f` at bob; FILE
#                is SIZE of random bytes in a tmpfs, checked with cmp after
#                the transfer (punch checks SHA-256 itself).
#   punch pipe   `head -c SIZE /dev/zero | punch pipe` at alice ->
#                `punch pipe </dev/null | wc -c` at bob; the count is checked.
#   nebula       Nebula (lighthouse on the server node, hosts on alice and
#                bob, certificates made with nebula-cert; the configuration
#                of bench/punch_time.sh) carrying iperf3 TCP from alice to
#                bob's overlay address, IPERF_S seconds after 1 s omitted.
#   ceiling      iperf3 TCP between the NATs' own public addresses (client in
#                nata to a server in natb on 192.0.2.10): the router hop
#                only, no NAT traversal; the machine's ceiling.
# and, unless EXTRAS=0, two more references on punch's exact path (alice ->
# nata's MASQUERADE -> router -> natb -> bob), made possible by a DNAT port
# forward on natb that this script adds (no hole punching involved):
#   tcp via fwd  iperf3 TCP alice -> 192.0.2.10:5202 -> bob (TSO/GSO: large
#                segments cross the veths, as for the ceiling).
#   udp via fwd  iperf3 UDP, unlimited rate (-b 0), 1452-byte datagrams (PKT_MAX
#                in src/quic.c; punch's data packets come out at 1444 after
#                ngtcp2's path MTU discovery), one send() per datagram, as punch
#                sent before it used UDP GSO: what one core can push through
#                the NATs without GSO.  The
#                figure is what bob received.
#
# How punch is timed: each client's stderr is stamped line by line on arrival;
# the time is from bob's "Secure link up" line (the QUIC handshake done on the
# receiver) to the exit of bob's side (recv, or pipe | wc -c), i.e. the wall
# time of the transfer once the link is up: the stream set-up, all the data,
# recv's SHA-256 check and the link's close are inside it; the rendezvous and
# the punching are not.  recv's own summary figure (its "MB/s") is shown too.
# The punch server runs for the whole benchmark; each measurement starts fresh
# clients (identity keys made once beforehand with `punch id`, one
# XDG_CONFIG_HOME per side, as on two machines).
#
# Pinning (PIN=1, the default): everything on alice's side (punch, head,
# nebula, the iperf3 client; in nata for the ceiling) runs on CPU CPU_A,
# everything on bob's side on CPU_B, so each side has one core.  Note that
# the kernel forwards a packet through the veths, both NATs and the router in
# softirq on the CPU that sent it, so the sender's core also carries the
# whole path's forwarding (for every row alike).  Nebula is a Go program: its
# runtime sees one CPU (GOMAXPROCS follows the affinity mask).
#
# Rounds alternate (every measurement once per round); the report has the
# median, min and max of each, in MB/s (10^6 bytes) and Mbit/s (10^6 bits),
# and the ratios of the medians punch/nebula and punch/ceiling (the latter
# also as a percentage: the fraction of the raw ceiling punch reaches).
# SIZE is in head(1)'s units: 200M = 200 MiB.
#
# CPU per MB: the CPU time (user + system) of the tunnel's own processes
# per MB moved, in ms.  For punch, both punch processes over their whole
# run (from /usr/bin/time: rendezvous, punching and close included) over
# SIZE.  For nebula, both nebula processes (from /proc/PID/stat, read just
# before they are stopped: start-up and handshake included) over the bytes
# iperf3 moved, counting the omitted first second at the measured rate.
# The apps (head, wc, iperf3) are not counted for either.  Kernel work done
# in softirq (the NATs, the router, the veths) is charged to whichever
# process the CPU was running, so these figures are approximate; they are
# comparable between runs on one machine.
#
# Everything runs in a lab instance of its own (LAB, default tpPID), built
# once; every process is bounded by timeout(1); an EXIT trap stops every
# process in the instance's namespaces, removes them and the scratch files
# (in /dev/shm), also on failure or Ctrl-C.  No traffic leaves the lab.
#
# Usage: bench/throughput.sh              (as root, from anywhere)
# Environment (all optional):
#   PUNCH=build/punch   the punch binary (a Release build)
#   ROUNDS=3            rounds
#   SIZE=200M           bytes per punch transfer (head -c syntax: K, M, G)
#   IPERF_S=10          seconds per iperf3 measurement (after 1 s omitted)
#   PIN=1               0: no pinning;  CPU_A=0 CPU_B=1: the CPUs of the sides
#   EXTRAS=1            0: skip "tcp via fwd" and "udp via fwd"
#   ONLY=ERE            only the measurements whose key matches ERE (keys:
#                       send pipe nebula ceiling tcpfwd udpfwd)
#   PERF=DIR            also record `perf record -g` of both punch sides in
#                       round 1's send, into DIR/{alice,bob}-send.perf.data,
#                       and write DIR/{alice,bob}-send.txt (perf report);
#                       that round's send figure is then left out
#   TIMEOUT_S=120       bound on one punch transfer (from launch to exit)
#   LOGS=DIR            keep every measurement's logs in DIR
#   NOISE_MAX_PCT=10    a measurement during which other people's processes
#                       used more than this % of a CPU (bench/throughput_noise.py)
#                       is marked noisy and taken again, up to MAX_TRIES=3
#                       times; the medians use the clean ones when there are any
#   QUIET_WAIT_S=300    before each measurement, wait (this long at most over the
#                       whole run) until others use at most NOISE_MAX_PCT
#   LAB=tpPID           lab instance name (see scripts/lab)
# Exit status: 0, or 1 if any measurement failed (its logs are printed).
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME with a '.'

TP_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TP_REPO=$(cd "$TP_HERE/.." && pwd)
LAB=${LAB:-tp$$}
# shellcheck source=../scripts/lab
source "$TP_REPO/scripts/lab"
# shellcheck source=bench/lib.sh
source "$TP_REPO/bench/lib.sh"

PUNCH=${PUNCH:-$TP_REPO/build/punch}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-200M}
IPERF_S=${IPERF_S:-10}
PIN=${PIN:-1}
CPU_A=${CPU_A:-0}
CPU_B=${CPU_B:-1}
EXTRAS=${EXTRAS:-1}
ONLY=${ONLY:-}
PERF=${PERF:-}
TIMEOUT_S=${TIMEOUT_S:-120}
LOGS=${LOGS:-}
NOISE_MAX_PCT=${NOISE_MAX_PCT:-10}
QUIET_WAIT_S=${QUIET_WAIT_S:-300}
MAX_TRIES=${MAX_TRIES:-3}

readonly NEB_PORT=4242         # the lighthouse's UDP port
readonly NEB_NET=192.168.100   # overlay /24: lighthouse .1, alice .2, bob .3
readonly NEB_UP_S=15           # for a Nebula host to bring nebula1 up
readonly IPERF_PORT=5201       # ceiling (in natb) and nebula (on bob's overlay IP)
readonly FWD_PORT=5202         # natb's port forward to bob (tcp and udp)
readonly UDP_LEN=1452          # PKT_MAX in src/quic.c (its data packets: 1444, after PMTUD)
readonly BOB_IP=10.0.2.2 NATA_IP=203.0.113.10 NATB_IP=192.0.2.10

# The measurements: key|label.
TP_ALL=("send|punch send/recv" "pipe|punch pipe" "nebula|nebula + iperf3 TCP"
	"ceiling|iperf3 TCP nata->natb" "tcpfwd|iperf3 TCP via fwd" "udpfwd|iperf3 UDP 1452 via fwd")

tp_die() {
	echo "throughput: $*" >&2
	exit 1
}

# ----------------------------------------------------------------- checks

((EUID == 0)) || tp_die "needs root (network namespaces, iptables)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || tp_die "ROUNDS='$ROUNDS': expected a positive whole number"
[[ $IPERF_S =~ ^[1-9][0-9]*$ ]] || tp_die "IPERF_S='$IPERF_S': expected whole seconds"
[[ $NOISE_MAX_PCT =~ ^[0-9]+$ ]] || tp_die "NOISE_MAX_PCT='$NOISE_MAX_PCT': expected a whole number"
[[ $QUIET_WAIT_S =~ ^[0-9]+$ ]] || tp_die "QUIET_WAIT_S='$QUIET_WAIT_S': expected whole seconds"
[[ $MAX_TRIES =~ ^[1-9][0-9]*$ ]] || tp_die "MAX_TRIES='$MAX_TRIES': expected a positive whole number"
[[ $TIMEOUT_S =~ ^[1-9][0-9]*$ ]] || tp_die "TIMEOUT_S='$TIMEOUT_S': expected whole seconds"
[[ $SIZE =~ ^[1-9][0-9]*[KMG]?$ ]] || tp_die "SIZE='$SIZE': expected a number with an optional K, M or G (as head -c)"
[[ -x $PUNCH ]] || tp_die "$PUNCH not found; build it (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target punch) or set PUNCH"
PUNCH=$(realpath "$PUNCH")
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$(dirname "$PUNCH")/CMakeCache.txt" 2>/dev/null ||
	echo "throughput: warning: $PUNCH may not be a Release build" >&2
for cmd in ip iptables iperf3 jq nebula nebula-cert taskset timeout cmp awk; do
	command -v "$cmd" >/dev/null || tp_die "$cmd not found"
done
[[ -c /dev/net/tun ]] || tp_die "/dev/net/tun is missing: Nebula needs a tun device (modprobe tun)"
[[ -z $PERF ]] || command -v perf >/dev/null || tp_die "PERF is set but perf is not installed"
if ((PIN)); then
	(($(nproc) >= 2)) || tp_die "PIN=1 needs 2 CPUs; this machine has $(nproc) (PIN=0 runs unpinned)"
	TP_PIN_A=(taskset -c "$CPU_A") TP_PIN_B=(taskset -c "$CPU_B")
else
	TP_PIN_A=() TP_PIN_B=()
fi
SIZE_BYTES=$(numfmt --from=iec "$SIZE")
lab_check_free
[[ -z $LOGS ]] || mkdir -p "$LOGS"
[[ -z $PERF ]] || { mkdir -p "$PERF" && PERF=$(cd "$PERF" && pwd); }

TP_TMP=$(mktemp -d /dev/shm/throughput.XXXXXX) # tmpfs: the file to send, recv's directory
TP_CHILD=""

# shellcheck disable=SC2317 # run by the trap
tp_cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ -n $TP_CHILD ]] && kill -0 "$TP_CHILD" 2>/dev/null; then
		kill -TERM "$TP_CHILD" 2>/dev/null
		lab_wait_gone 15 "$TP_CHILD" || kill -KILL "$TP_CHILD" 2>/dev/null
		wait "$TP_CHILD" 2>/dev/null
	fi
	lab_down
	rm -rf "$TP_TMP" "${RUN_DIR:-}"
	exit "$rc"
}
trap tp_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------ helpers

# tp_stamp: copies stdin to stdout, each line prefixed with its arrival time.
tp_stamp() {
	local line
	while IFS= read -r line; do
		printf '%s %s\n' "$EPOCHREALTIME" "$line"
	done
	[[ -z $line ]] || printf '%s %s\n' "$EPOCHREALTIME" "$line"
}

# tp_spawn NODE PIN LOGBASE STDIN CMD...: CMD in NODE's namespace, pinned
# when PIN is "a" or "b", stdout to LOGBASE.out, stderr stamped into
# LOGBASE.err.  Sets LAB_PID.
tp_spawn() {
	local node=$1 side=$2 log=$3 in=$4 pin=()
	shift 4
	case $side in
	a) pin=("${TP_PIN_A[@]}") ;;
	b) pin=("${TP_PIN_B[@]}") ;;
	esac
	(exec ip netns exec "$(lab_ns "$node")" "${pin[@]}" "$@" \
		<"$in" >"$log.out" 2> >(tp_stamp >"$log.err")) &
	LAB_PID=$!
}

# tp_reap NODE...: stops every process in these nodes' namespaces (the
# measurement's own: the server and the lighthouse live in "server").
tp_reap() {
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

# tp_wait PID: waits for PID (bounded by the timeout(1) inside it); sets
# TP_END (epoch) and TP_RC.
tp_wait() {
	TP_RC=0
	wait "$1" || TP_RC=$?
	TP_END=$EPOCHREALTIME
}

# tp_stamp_of FILE ERE: the arrival time of FILE's first line matching ERE.
tp_stamp_of() {
	local line
	line=$(grep -m1 -E -- "^[0-9.]+ .*$2" "$1") || return 1
	echo "${line%% *}"
}

# tp_result KEY BYTES_PER_S [NOTE]: one measurement's result, which the
# main loop files under KEY with the noise during the measurement.
tp_result() {
	echo "$1 $2 ${3:-}" >"$TP_TMP/res/last"
}

tp_mbs() { # BYTES SECONDS -> bytes per second
	awk -v b="$1" -v s="$2" 'BEGIN { if (s <= 0) exit 1; printf "%.0f", b / s }'
}

tp_fail() {
	echo "throughput: FAIL: $*" >&2
	exit 1
}

# tp_keep_logs NAME: copies the measurement's logs to LOGS.
tp_keep_logs() {
	[[ -n $LOGS ]] || return 0
	local f
	for f in "$TP_RUN"/*; do
		[[ -f $f && $f != *.bin ]] || continue
		cp "$f" "$LOGS/$1-${f##*/}"
	done
}

tp_print_logs() {
	local f
	for f in "$TP_RUN"/*.err "$TP_RUN"/*.out "$TP_RUN"/*.time; do
		[[ -s $f ]] || continue
		echo "---- ${f##*/} (last 30 lines) ----" >&2
		tail -n 30 "$f" | sed 's/^/  | /' >&2
	done
}

# Noise: others' CPU use (bench/throughput_noise.py), outside this session
# and the lab's namespaces.
TP_SID=$(ps -o sid= -p $$ | tr -d ' ')
tp_noise_args() {
	local node
	TP_NOISE_ARGS=("$TP_SID")
	for node in "${LAB_NODES_ALL[@]}"; do
		TP_NOISE_ARGS+=("$(lab_ns "$node")")
	done
}
tp_noise_start() {
	python3 "$TP_HERE/throughput_noise.py" start "$TP_TMP/noise.json" "${TP_NOISE_ARGS[@]}"
}
tp_noise_stop() {
	python3 "$TP_HERE/throughput_noise.py" stop "$TP_TMP/noise.json"
}

# tp_wait_quiet: until others use at most NOISE_MAX_PCT of a CPU over a
# second, or QUIET_WAIT_S (over the whole run) is used up.
tp_wait_quiet() {
	local pct waited=0
	while ((TP_QUIET_LEFT > 0)); do
		pct=$(python3 "$TP_HERE/throughput_noise.py" sample 1 "${TP_NOISE_ARGS[@]}")
		((pct > NOISE_MAX_PCT)) || break
		((waited)) || echo "  (others are using $pct % of a CPU; waiting for quiet, $TP_QUIET_LEFT s left of QUIET_WAIT_S)" >&2
		waited=1
		TP_QUIET_LEFT=$((TP_QUIET_LEFT - 1))
	done
}

# tp_measure KEY ROUND: one measurement in a subshell of its own, which
# stops every process of alice, bob, nata and natb when it ends.
tp_measure() {
	local key=$1 round=$2 rc=0
	(
		TP_RUN=$TP_TMP/run-$key-$round
		mkdir -p "$TP_RUN"
		trap 'rc=$?; set +e; tp_reap alice bob nata natb; ((rc == 0)) || tp_print_logs; tp_keep_logs "$key-$round"; rm -rf "$TP_RUN"; exit $rc' EXIT
		trap 'exit 143' TERM
		"m_$key" "$round"
	) &
	TP_CHILD=$!
	wait "$TP_CHILD" || rc=$?
	TP_CHILD=""
	return "$rc"
}

# --------------------------------------------------------------- punch

# punch_args ID PEER: sets PA to the rendezvous options of one side.
punch_args() {
	PA=(-server "$SERVER_IP:$LAB_STUN_PORT" -id "$1" -peer "$2")
}

# punch_time_of SIDE: /usr/bin/time's "elapsed user sys" of that side's punch.
punch_cpu() {
	[[ -s $TP_RUN/$1.time ]] || return 0
	awk 'NF == 3 { printf "%.2f", ($2 + $3) }' "$TP_RUN/$1.time"
}

# punch_cpu_note BYTES: "cpu-s-alice=A cpu-s-bob=B cpu-ms-per-mb=C" for the
# result's note.
punch_cpu_note() {
	local a b
	a=$(punch_cpu alice) b=$(punch_cpu bob)
	echo "cpu-s-alice=${a:--} cpu-s-bob=${b:--} cpu-ms-per-mb=$(tp_cpu_per_mb "${a:-}" "${b:-}" "$1")"
}

# tp_cpu_per_mb SECS_A SECS_B BYTES: ms of CPU per 10^6 bytes, or "-".
tp_cpu_per_mb() {
	awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (a == "" || b == "" || n <= 0) print "-"; else printf "%.2f", (a + b) * 1000 / (n / 1e6) }'
}

# tp_proc_cpu NODE COMM: CPU seconds (user + system) of NODE's processes
# named COMM, from /proc (clock ticks).
tp_proc_cpu() {
	local pid ticks=0 hz
	hz=$(getconf CLK_TCK)
	for pid in $(ip netns pids "$(lab_ns "$1")" 2>/dev/null); do
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || continue
		ticks=$((ticks + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
	done
	awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'
}

# punch_rate BYTES: sets TP_RATE (bytes/s) and TP_SECS from bob's "Secure
# link up" to TP_END; dies when bob has no such line.
punch_rate() {
	local up
	up=$(tp_stamp_of "$TP_RUN/bob.err" 'Secure link up') || tp_fail "bob printed no 'Secure link up' line"
	TP_SECS=$(awk -v a="$up" -v b="$TP_END" 'BEGIN { printf "%.3f", b - a }')
	TP_RATE=$(tp_mbs "$1" "$TP_SECS")
}

# punch_env SIDE: env and wrapper for one side's punch: its own identity,
# CPU time into TP_RUN/SIDE.time, a bound, and perf when asked.
punch_env() {
	local side=$1 round=$2 key=$3
	TP_CMD=(env XDG_CONFIG_HOME="$TP_TMP/keys/$side" timeout -k 5 "$TIMEOUT_S")
	if [[ -n $PERF && $round == 1 && $key == send ]]; then
		TP_CMD+=(perf record -g -q -o "$PERF/$side-$key.perf.data" --)
	fi
	TP_CMD+=(/usr/bin/time -o "$TP_RUN/$side.time" -f '%e %U %S' "$PUNCH")
}

m_send() {
	local round=$1 own name
	name=${TP_FILE##*/}
	mkdir -p "$TP_RUN/recv"
	punch_env bob "$round" send
	punch_args bob alice
	tp_spawn bob b "$TP_RUN/bob" /dev/null "${TP_CMD[@]}" recv "${PA[@]}" "$TP_RUN/recv" -f
	local bob_pid=$LAB_PID
	punch_env alice "$round" send
	punch_args alice bob
	tp_spawn alice a "$TP_RUN/alice" /dev/null "${TP_CMD[@]}" send "${PA[@]}" "$TP_FILE"
	local alice_pid=$LAB_PID
	tp_wait "$bob_pid"
	local bob_rc=$TP_RC bob_end=$TP_END
	tp_wait "$alice_pid"
	((bob_rc == 0)) || tp_fail "punch recv exited with status $bob_rc"
	((TP_RC == 0)) || tp_fail "punch send exited with status $TP_RC"
	TP_END=$bob_end
	cmp -s "$TP_FILE" "$TP_RUN/recv/$name" || tp_fail "the received file differs from the sent one (or is missing)"
	punch_rate "$SIZE_BYTES"
	sleep 0.2 # for the stamper to write recv's last lines
	own=$(cat "$TP_RUN/bob.err" "$TP_RUN/bob.out" | grep -o -E '[0-9]+(\.[0-9]+)? ?MB/s' | tail -n 1 | grep -o -E '^[0-9.]+' || true)
	# Under perf (PERF, round 1) the figure is kept apart from the statistics.
	local key=send
	[[ -z $PERF || $round != 1 ]] || key="send-under-perf"
	tp_result "$key" "$TP_RATE" "recv-says=${own:--}MB/s secs=$TP_SECS $(punch_cpu_note "$SIZE_BYTES")"
}

m_pipe() {
	local round=$1 count
	punch_env bob "$round" pipe
	punch_args bob alice
	tp_spawn bob b "$TP_RUN/bob" /dev/null bash -c 'set -o pipefail; "$@" | wc -c' pipe "${TP_CMD[@]}" pipe "${PA[@]}"
	local bob_pid=$LAB_PID
	punch_env alice "$round" pipe
	punch_args alice bob
	tp_spawn alice a "$TP_RUN/alice" /dev/null bash -c 'set -o pipefail; head -c "$0" /dev/zero | "$@" >/dev/null' "$SIZE_BYTES" "${TP_CMD[@]}" pipe "${PA[@]}"
	local alice_pid=$LAB_PID
	tp_wait "$bob_pid"
	local bob_rc=$TP_RC bob_end=$TP_END
	tp_wait "$alice_pid"
	((bob_rc == 0)) || tp_fail "bob's punch pipe | wc -c exited with status $bob_rc"
	((TP_RC == 0)) || tp_fail "alice's head | punch pipe exited with status $TP_RC"
	TP_END=$bob_end
	count=$(tr -d ' \n' <"$TP_RUN/bob.out")
	[[ $count == "$SIZE_BYTES" ]] || tp_fail "bob received $count bytes; expected $SIZE_BYTES"
	punch_rate "$SIZE_BYTES"
	tp_result pipe "$TP_RATE" "secs=$TP_SECS $(punch_cpu_note "$SIZE_BYTES")"
}

# --------------------------------------------------------------- iperf3

# iperf_pair KEY SRV_NODE SRV_ARGS CLI_NODE CLI_ARGS: iperf3 -s (one test)
# pinned to bob's CPU, then the client pinned to alice's; records the
# receiver's rate.
iperf_pair() {
	local key=$1 snode=$2 sargs=$3 cnode=$4 cargs=$5 bps note
	# shellcheck disable=SC2086 # the arguments, split on spaces
	tp_spawn "$snode" b "$TP_RUN/iperf-s" /dev/null timeout -k 5 $((IPERF_S + 30)) iperf3 -s -1 --forceflush $sargs
	local spid=$LAB_PID
	lab_wait_line "$TP_RUN/iperf-s.out" 'Server listening' 10 "$spid" ||
		tp_fail "iperf3 -s in $snode did not start"
	# shellcheck disable=SC2086
	tp_spawn "$cnode" a "$TP_RUN/iperf-c" /dev/null timeout -k 5 $((IPERF_S + 20)) \
		iperf3 -J -t "$IPERF_S" -O 1 $cargs
	tp_wait "$LAB_PID"
	((TP_RC == 0)) || tp_fail "iperf3 client in $cnode exited with status $TP_RC: $(jq -r '.error // empty' "$TP_RUN/iperf-c.out" 2>/dev/null)"
	if [[ $cargs == *-u* ]]; then
		bps=$(jq -r '.end.sum.bits_per_second * (1 - .end.sum.lost_percent / 100)' "$TP_RUN/iperf-c.out")
		note="sent=$(jq -r '.end.sum.bits_per_second / 1e6 | floor' "$TP_RUN/iperf-c.out")Mbit/s lost=$(jq -r '.end.sum.lost_percent | . * 10 | floor / 10' "$TP_RUN/iperf-c.out")%"
	else
		bps=$(jq -r '.end.sum_received.bits_per_second' "$TP_RUN/iperf-c.out")
		note="retransmits=$(jq -r '.end.sum_sent.retransmits // "-"' "$TP_RUN/iperf-c.out")"
	fi
	[[ $bps =~ ^[0-9.e+]+$ ]] || tp_fail "no rate in iperf3's report: $(head -c 300 "$TP_RUN/iperf-c.out")"
	tp_result "$key" "$(awk -v b="$bps" 'BEGIN { printf "%.0f", b / 8 }')" "$note"
	lab_wait_gone 5 "$spid" || true
}

m_ceiling() {
	iperf_pair ceiling natb "-B $NATB_IP -p $IPERF_PORT" nata "-c $NATB_IP -B $NATA_IP -p $IPERF_PORT"
}

m_tcpfwd() {
	iperf_pair tcpfwd bob "-B $BOB_IP -p $FWD_PORT" alice "-c $NATB_IP -p $FWD_PORT"
}

m_udpfwd() {
	iperf_pair udpfwd bob "-B $BOB_IP -p $FWD_PORT" alice "-c $NATB_IP -p $FWD_PORT -u -b 0 -l $UDP_LEN"
}

# ------------------------------------------------------------------ Nebula
# (certificates and configuration: bench/lib.sh)


m_nebula() {
	local name pids=() side
	for name in alice bob; do
		side=a
		[[ $name == bob ]] && side=b
		tp_spawn "$name" "$side" "$TP_RUN/nebula-$name" /dev/null \
			timeout -k 5 $((IPERF_S + 60)) nebula -config "$TP_TMP/nebula/$name.yml"
		pids+=("$LAB_PID")
	done
	for name in alice bob; do
		lab_wait_line "$TP_RUN/nebula-$name.out" 'Nebula interface is active' "$NEB_UP_S" ||
			tp_fail "nebula on $name printed no 'Nebula interface is active' within $NEB_UP_S s"
	done
	# The first SYN starts the alice-bob handshake (Nebula holds it meanwhile).
	iperf_pair nebula bob "-B $NEB_NET.3 -p $IPERF_PORT" alice "-c $NEB_NET.3 -p $IPERF_PORT --connect-timeout 5000"
	grep -q -E 'Handshake message (received|sent).*vpnIp=192[.]168[.]100[.]3' "$TP_RUN/nebula-alice.out" ||
		tp_fail "no Nebula handshake between alice and bob in alice's log"
	# CPU of both nebula processes, over the bytes of the whole iperf3
	# run (the omitted second at the measured rate).
	local a b rkey rate note
	a=$(tp_proc_cpu alice nebula) b=$(tp_proc_cpu bob nebula)
	read -r rkey rate note <"$TP_TMP/res/last"
	tp_result "$rkey" "$rate" "$note cpu-s-alice=$a cpu-s-bob=$b cpu-ms-per-mb=$(tp_cpu_per_mb "$a" "$b" "$(awk -v r="$rate" -v s="$IPERF_S" 'BEGIN { printf "%.0f", r * (s + 1) }')")"
}

# ------------------------------------------------------------------ set-up

tp_setup() {
	lab_parse_opts up nat2
	lab_run_init
	lab_build
	# The references' own openings in natb, ahead of its home-NAT filter:
	# the ceiling's server on natb itself, and the port forward to bob.
	local ipt=(lab_nsx natb iptables -w 5)
	"${ipt[@]}" -I INPUT 1 -i wan0 -p tcp -d "$NATB_IP" --dport "$IPERF_PORT" -j ACCEPT
	local proto
	for proto in tcp udp; do
		"${ipt[@]}" -t nat -A PREROUTING -i wan0 -p "$proto" -d "$NATB_IP" --dport "$FWD_PORT" \
			-j DNAT --to-destination "$BOB_IP:$FWD_PORT"
		"${ipt[@]}" -I FORWARD 1 -i wan0 -p "$proto" -d "$BOB_IP" --dport "$FWD_PORT" -j ACCEPT
	done
	lab_start_server
	# The file to send, random (nothing on the way compresses, but no
	# all-zero pages either).
	TP_FILE=$TP_TMP/data.bin
	head -c "$SIZE_BYTES" /dev/urandom >"$TP_FILE"
	# Identity keys, made once (a user's key exists after the first run).
	local id
	for id in alice bob; do
		XDG_CONFIG_HOME=$TP_TMP/keys/$id "$PUNCH" id >/dev/null ||
			tp_die "'punch id' failed for $id"
	done
	# Nebula: certificates, configurations, the lighthouse for the whole run.
	neb_certs "$TP_TMP/nebula" >/dev/null
	for id in lighthouse alice bob; do
		neb_config "$TP_TMP/nebula" "$TP_TMP/nebula" "$id" "" "$SERVER_IP"
	done
	lab_spawn server "$RUN_DIR/lighthouse" /dev/null nebula -config "$TP_TMP/nebula/lighthouse.yml"
	lab_wait_line "$RUN_DIR/lighthouse.out" 'Nebula interface is active' "$NEB_UP_S" "$LAB_PID" ||
		tp_die "the Nebula lighthouse did not start: $(tail -n 5 "$RUN_DIR/lighthouse.out" "$RUN_DIR/lighthouse.err")"
}

# ------------------------------------------------------------------ report

# tp_stats KEY: "median min max used all clean" in bytes/s: of the clean
# measurements (others used at most NOISE_MAX_PCT) when there are any, else
# of all of them.
tp_stats() {
	[[ -s $TP_TMP/res/$1 ]] || {
		echo "- - - 0 0 0"
		return 0
	}
	awk -v max="$NOISE_MAX_PCT" '
		{ n = $2; sub(/^noise=/, "", n); sub(/%$/, "", n)
		  all[++na] = $1; if (n + 0 <= max) clean[++nc] = $1 }
		END {
			if (nc) { for (i = 1; i <= nc; i++) v[i] = clean[i]; k = nc }
			else { for (i = 1; i <= na; i++) v[i] = all[i]; k = na }
			# insertion sort, numerically
			for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
			m = k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
			print m, v[1], v[k], k, na, nc
		}' "$TP_TMP/res/$1"
}

# tp_cpu_stat KEY: the median cpu-ms-per-mb of the runs tp_stats uses.
tp_cpu_stat() {
	[[ -s $TP_TMP/res/$1 ]] || {
		echo "-"
		return 0
	}
	awk -v max="$NOISE_MAX_PCT" '
		{ n = $2; sub(/^noise=/, "", n); sub(/%$/, "", n); c = ""
		  for (i = 3; i <= NF; i++) if ($i ~ /^cpu-ms-per-mb=/) { c = $i; sub(/^cpu-ms-per-mb=/, "", c) }
		  if (c == "" || c == "-") next
		  all[++na] = c; if (n + 0 <= max) clean[++nc] = c }
		END {
			if (nc) { for (i = 1; i <= nc; i++) v[i] = clean[i]; k = nc }
			else { for (i = 1; i <= na; i++) v[i] = all[i]; k = na }
			if (!k) { print "-"; exit }
			for (i = 2; i <= k; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > x + 0; j--) v[j + 1] = v[j]; v[j + 1] = x }
			printf "%.2f\n", k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
		}' "$TP_TMP/res/$1"
}

tp_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.1f %%\n", 100 * a / b }'
}

tp_fmt() { # BYTES_PER_S -> "MB/s Mbit/s"
	awk -v b="$1" 'BEGIN { if (b == "-") print "- -"; else printf "%.1f %.0f\n", b / 1e6, b * 8 / 1e6 }'
}

tp_ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else if (a / b < 0.1) printf "%.3fx\n", a / b; else printf "%.2fx\n", a / b }'
}

tp_selected() {
	[[ $EXTRAS == 1 || ($1 != tcpfwd && $1 != udpfwd) ]] || return 1
	[[ -z $ONLY || $1 =~ $ONLY ]]
}

tp_report() {
	local entry key label med lo hi used all clean mb mbit
	echo
	echo "throughput: scenario nat2 (alice behind nata, bob behind natb, home NATs), $ROUNDS rounds, punch $SIZE per transfer, iperf3 ${IPERF_S} s"
	if ((PIN)); then
		echo "pinned: alice's side on CPU $CPU_A, bob's side on CPU $CPU_B (of $(nproc)); load average $TP_LOAD0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end"
	else
		echo "not pinned ($(nproc) CPUs); load average $TP_LOAD0 at the start, $(cut -d' ' -f1 /proc/loadavg) at the end"
	fi
	printf '  %-28s %9s %9s %9s %9s %10s  %s\n' measurement 'MB/s' 'Mbit/s' 'min MB/s' 'max MB/s' 'CPU ms/MB' 'runs: used/all (clean)'
	for entry in "${TP_ALL[@]}"; do
		key=${entry%%|*} label=${entry#*|}
		tp_selected "$key" || continue
		read -r med lo hi used all clean < <(tp_stats "$key")
		read -r mb mbit < <(tp_fmt "$med")
		printf '  %-28s %9s %9s %9s %9s %10s  %d/%d (%d clean)%s\n' "$label" "$mb" "$mbit" \
			"$(tp_fmt "$lo" | cut -d' ' -f1)" "$(tp_fmt "$hi" | cut -d' ' -f1)" "$(tp_cpu_stat "$key")" "$used" "$all" "$clean" \
			"$( ((clean > 0 || all == 0)) || echo '  NOISY: others were busy in every run')"
	done
	local send pipe neb ceil
	send=$(tp_stats send | cut -d' ' -f1) pipe=$(tp_stats pipe | cut -d' ' -f1)
	neb=$(tp_stats nebula | cut -d' ' -f1) ceil=$(tp_stats ceiling | cut -d' ' -f1)
	echo "ratios of the medians:"
	echo "  punch send / nebula  $(tp_ratio "$send" "$neb")    punch pipe / nebula  $(tp_ratio "$pipe" "$neb")   (target: >= 3x)"
	echo "  punch send / ceiling $(tp_ratio "$send" "$ceil") ($(tp_pct "$send" "$ceil"))    punch pipe / ceiling $(tp_ratio "$pipe" "$ceil") ($(tp_pct "$pipe" "$ceil"))"
	local csend cpipe cneb
	csend=$(tp_cpu_stat send) cpipe=$(tp_cpu_stat pipe) cneb=$(tp_cpu_stat nebula)
	echo "  CPU per MB: punch send / nebula $(tp_ratio "$csend" "$cneb")    punch pipe / nebula $(tp_ratio "$cpipe" "$cneb")   (below 1: punch spends less)"
	if tp_selected udpfwd && [[ -s $TP_TMP/res/udpfwd ]]; then
		local udp
		udp=$(tp_stats udpfwd | cut -d' ' -f1)
		echo "  punch send / UDP 1452 via fwd $(tp_ratio "$send" "$udp")    punch pipe / UDP 1452 via fwd $(tp_ratio "$pipe" "$udp")"
	fi
	echo "(punch: bytes / (bob's 'Secure link up' -> bob's side exits), wall time of the transfer"
	echo " once the link is up; iperf3: the receiver's rate over ${IPERF_S} s after 1 s omitted;"
	echo " MB = 10^6 bytes, Mbit = 10^6 bits)"
	for key in send pipe send-under-perf; do
		[[ -s $TP_TMP/res/$key ]] || continue
		echo "$key, each run: $(awk '{ $1 = sprintf("%.1f MB/s", $1 / 1e6); print }' "$TP_TMP/res/$key" | paste -sd ';' | sed 's/;/; /g')"
	done
}

# ------------------------------------------------------------------ main

TP_LOAD0=$(cut -d' ' -f1 /proc/loadavg)
TP_QUIET_LEFT=$QUIET_WAIT_S
mkdir -p "$TP_TMP/res"
tp_setup
tp_noise_args
echo "throughput: lab instance $LAB; $ROUNDS rounds; punch $PUNCH" >&2
failures=0
for ((round = 1; round <= ROUNDS; round++)); do
	for entry in "${TP_ALL[@]}"; do
		key=${entry%%|*} label=${entry#*|}
		tp_selected "$key" || continue
		for ((try = 1; try <= MAX_TRIES; try++)); do
			tp_wait_quiet
			rm -f "$TP_TMP/res/last"
			tp_noise_start
			if ! tp_measure "$key" "$round"; then
				failures=$((failures + 1))
				echo "  round $round $label: FAILED" >&2
				break
			fi
			noise=$(tp_noise_stop)
			read -r rkey rate note <"$TP_TMP/res/last"
			echo "$rate noise=$noise% $note" >>"$TP_TMP/res/$rkey"
			read -r mb mbit < <(tp_fmt "$rate")
			mark=""
			((noise <= NOISE_MAX_PCT)) || mark=" (noisy: others used $noise % of a CPU)"
			printf '  round %d %-28s %8s MB/s %7s Mbit/s  noise %s%%  %s%s\n' "$round" "$label" "$mb" "$mbit" \
				"$noise" "$note" "$mark" >&2
			((noise > NOISE_MAX_PCT)) || break
			[[ $rkey == "$key" ]] || break # the perf run: no retry
		done
	done
done
if [[ -n $PERF ]]; then
	for side in alice bob; do
		f=$PERF/$side-send.perf.data
		[[ -s $f ]] || continue
		perf report -i "$f" --stdio --no-children --percent-limit 1 --sort dso,sym 2>/dev/null >"$PERF/$side-send.txt" || true
	done
fi
tp_report
if ((failures)); then
	echo "throughput: $failures measurements failed (see above)" >&2
	exit 1
fi
