#!/usr/bin/env bash
# punch_time.sh - how long hole punching takes: from launching both peers to a
# direct path chosen on both sides, in every scenario of the namespace lab,
# and the same for Nebula (lighthouse + two hosts) behind two home NATs.
#
# punch: for each scenario (lan, nat1, nat2, samenat, and nat2 with --nat
# plain) a fresh lab instance is built, `punch server` started and waited
# for, then the two `punch chat` clients are launched at the same moment:
# each is spawned inside its namespace, stops itself (SIGSTOP) just before
# exec'ing punch, and one `kill -CONT` releases both once both are parked.
# The time measured is from that SIGCONT to the later of the two
# "Connection established" lines, each line stamped on arrival by a reader on
# the client's stderr (so it includes exec, dynamic loading and library
# start-up, which the clients' own "ms since start" does not).  The table
# also shows, as medians, the clients' own figures: max of the two "ms since
# start", the later of the two peer-info steps (Step 4, from launch), and the
# larger of the two "punch took" (peer info to path chosen).  Each client has
# its own XDG_CONFIG_HOME (identity key), as on two machines; the keys are made
# beforehand with `punch id` unless punch cannot read such a key back (then
# each client makes one at its start, and the report says so).  A run in
# which a client fails or does not connect within TIMEOUT_S is counted as
# failed (the "ok" column), its logs are printed, and it is left out of the
# statistics.
#
# Nebula (Debian package "nebula"): scenario nat2 (alice and bob behind
# separate home NATs), a lighthouse on the server node, hosts on alice and
# bob, certificates made with nebula-cert in a scratch directory, punchy.punch
# true, once with punchy.delay 10ms and once with the default (1s).  Both
# hosts and a pinger in alice's namespace (bench/punch_time_ping.py) are
# released by one SIGCONT; the pinger waits for alice's nebula1 route, then
# pings bob's overlay address every 10 ms until the first reply (Nebula
# queues packets while it handshakes).  The time is from the SIGCONT to that
# reply's kernel receive timestamp.
#
# Runs go round-robin (every configuration once per round), each on a lab
# instance of its own that is removed afterwards.  Every wait is bounded; an
# EXIT trap removes every namespace and process, also on failure or Ctrl-C.
#
# Usage: bench/punch_time.sh            (as root, from anywhere)
# Environment (all optional):
#   PUNCH=build/punch      the punch binary (a Release build)
#   RUNS=10                runs per configuration
#   NEBULA=1               0: punch only
#   TIMEOUT_S=5            bound on one run's connecting (and on the pinger)
#   LOGS=DIR               keep every run's client logs in DIR, stamped in
#                          ms from the launch ("+61.3 Connection ...")
#   VERBOSE=1              pass -v to the clients (the agent's steps; for LOGS)
#   ONLY=ERE               only the configurations whose name matches ERE
#                          (names: lan nat1 nat2 samenat "nat2 plain"
#                          "nebula punchy.delay 10ms" "nebula punchy.delay default (1s)")
#   LAB=ptPID              lab instance name (see scripts/lab)
# Exit status: 0, or 1 if any run failed (its logs are printed).
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME with a '.'

PT_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PT_REPO=$(cd "$PT_HERE/.." && pwd)
LAB=${LAB:-pt$$}
# shellcheck source=../scripts/lab
source "$PT_REPO/scripts/lab"
# shellcheck source=bench/lib.sh
source "$PT_REPO/bench/lib.sh"

PUNCH=${PUNCH:-$PT_REPO/build/punch}
RUNS=${RUNS:-10}
NEBULA=${NEBULA:-1}
TIMEOUT_S=${TIMEOUT_S:-5}
LOGS=${LOGS:-}
VERBOSE=${VERBOSE:-0}
ONLY=${ONLY:-}

readonly PT_POLL_S=0.05    # the script's own polling (never part of a measurement)
readonly PT_PARK_POLL_S=0.005 # while waiting for processes to park
readonly PT_PARK_S=5       # for a spawned process to park itself (SIGSTOP)
readonly NEB_PORT=4242     # the lighthouse's UDP port
readonly NEB_NET=192.168.100 # overlay /24: lighthouse .1, alice .2, bob .3
readonly NEB_PING_INTERVAL_S=0.01

# Configurations: name, then the arguments of `scripts/lab up`.
PT_CONFIGS=("lan|lan" "nat1|nat1" "nat2|nat2" "samenat|samenat" "nat2 plain|nat2 --nat plain")
NEB_CONFIGS=("punchy.delay 10ms|10ms" "punchy.delay default (1s)|")

pt_die() {
	echo "punch_time: $*" >&2
	exit 1
}

# ----------------------------------------------------------------- checks

((EUID == 0)) || pt_die "needs root (network namespaces, iptables)"
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || pt_die "RUNS='$RUNS': expected a positive whole number"
[[ $TIMEOUT_S =~ ^[1-9][0-9]*$ ]] || pt_die "TIMEOUT_S='$TIMEOUT_S': expected whole seconds"
[[ -x $PUNCH ]] || pt_die "$PUNCH not found; build it (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build) or set PUNCH"
PUNCH=$(realpath "$PUNCH")
grep -q '^CMAKE_BUILD_TYPE:STRING=Release$' "$(dirname "$PUNCH")/CMakeCache.txt" 2>/dev/null ||
	echo "punch_time: warning: $PUNCH may not be a Release build" >&2
for cmd in ip iptables python3 awk; do
	command -v "$cmd" >/dev/null || pt_die "$cmd not found (scripts/deps.sh installs it)"
done
if ((NEBULA)); then
	{ command -v nebula && command -v nebula-cert; } >/dev/null ||
		pt_die "nebula/nebula-cert not found: apt-get install nebula (Debian package 'nebula'), or NEBULA=0"
	[[ -c /dev/net/tun ]] || pt_die "/dev/net/tun is missing: Nebula needs a tun device (modprobe tun), or NEBULA=0"
fi
lab_check_free
[[ -z $LOGS ]] || mkdir -p "$LOGS"

PT_TMP=$(mktemp -d "${TMPDIR:-/tmp}/punch_time.XXXXXX")
PT_CHILD=""

# The top-level EXIT trap: stop the run in progress (its own trap cleans up
# after it), then make sure that no namespace of this instance is left.
# shellcheck disable=SC2317 # run by the trap
pt_cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ -n $PT_CHILD ]] && kill -0 "$PT_CHILD" 2>/dev/null; then
		kill -TERM "$PT_CHILD" 2>/dev/null
		lab_wait_gone 15 "$PT_CHILD" || kill -KILL "$PT_CHILD" 2>/dev/null
		wait "$PT_CHILD" 2>/dev/null
	fi
	lab_down
	rm -rf "$PT_TMP"
	exit "$rc"
}
trap pt_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------ one run (a subshell)

# pt_stamp: copies stdin to stdout, each line prefixed with its arrival time.
pt_stamp() {
	local line
	while IFS= read -r line; do
		printf '%s %s\n' "$EPOCHREALTIME" "$line"
	done
	[[ -z $line ]] || printf '%s %s\n' "$EPOCHREALTIME" "$line"
}

# pt_spawn_gated NODE LOGBASE STDIN CMD...: like lab_spawn, but CMD's stderr
# goes through pt_stamp, CMD gets the environment assignments in PT_ENV, and
# the process parks itself (SIGSTOP) inside NODE's namespace just before
# exec'ing CMD.  Sets LAB_PID (the pid CMD will have) and adds it to PT_GATED.
pt_spawn_gated() {
	local node=$1 log=$2 in=$3
	shift 3
	(
		for fd in "${CLIENT_FD[@]}"; do
			eval "exec $fd>&-"
		done
		exec env "${PT_ENV[@]}" ip netns exec "$(lab_ns "$node")" bash -c 'kill -STOP $$ && exec "$@"' gate "$@" \
			<"$in" >>"$log.out" 2> >(pt_stamp >>"$log.err")
	) &
	LAB_PID=$!
	PT_GATED+=("$LAB_PID")
}

# pt_state PID: the process's state letter (R, S, T, Z...), or "gone".
pt_state() {
	local line
	read -r line <"/proc/$1/stat" 2>/dev/null || {
		echo gone
		return
	}
	line=${line##*) }
	echo "${line%% *}"
}

# pt_launch: waits until every process in PT_GATED has parked, then releases
# them all with one kill; sets PT_T0 (epoch seconds, microseconds) to the
# moment just before.
pt_launch() {
	local pid deadline
	lab_now
	deadline=$((LAB_NOW + PT_PARK_S * 1000))
	for pid in "${PT_GATED[@]}"; do
		until [[ $(pt_state "$pid") == T ]]; do
			[[ $(pt_state "$pid") != gone ]] || lab_fail "process $pid exited before the launch"
			lab_now
			((LAB_NOW < deadline)) || lab_fail "process $pid did not park within $PT_PARK_S s"
			sleep "$PT_PARK_POLL_S"
		done
	done
	PT_T0=$EPOCHREALTIME
	kill -CONT "${PT_GATED[@]}"
	PT_GATED=()
}

# pt_wait_lines ERE FILE...: until every FILE has a line matching ERE,
# bounded by TIMEOUT_S; fails at once if a client (CLIENT_PID) has exited.
pt_wait_lines() {
	local re=$1 file id deadline waiting
	shift
	lab_now
	deadline=$((LAB_NOW + TIMEOUT_S * 1000))
	while :; do
		waiting=()
		for file in "$@"; do
			grep -q -E -- "$re" "$file" 2>/dev/null || waiting+=("$file")
		done
		((${#waiting[@]})) || return 0
		lab_now
		((LAB_NOW < deadline)) ||
			lab_fail "expected /$re/ in ${waiting[*]##*/} within $TIMEOUT_S s; seen none"
		for id in "${!CLIENT_PID[@]}"; do
			# shellcheck disable=SC2153 # CLIENT_RC: set by lab_client_exited
			! lab_client_exited "$id" || lab_fail "$id exited (status ${CLIENT_RC[$id]}) before connecting"
		done
		sleep "$PT_POLL_S"
	done
}

# pt_ms EPOCH: milliseconds from PT_T0 to EPOCH, one decimal.
pt_ms() {
	awk -v a="$PT_T0" -v b="$1" 'BEGIN { printf "%.1f", (b - a) * 1000 }'
}

# pt_keep_logs NAME FILE...: copies each stamped FILE to LOGS/NAME-FILE with
# times relative to the launch.
pt_keep_logs() {
	local name=$1 f
	shift
	[[ -n $LOGS ]] || return 0
	for f in "$@"; do
		[[ -e $f ]] || continue
		awk -v t0="$PT_T0" '$1 ~ /^[0-9]+\.[0-9]+$/ { t = $1; $1 = ""; printf "%+8.1f ms%s\n", (t - t0) * 1000, $0; next } { print }' \
			"$f" >"$LOGS/$name-${f##*/}"
	done
}

# shellcheck disable=SC2317 # run by the trap
pt_run_cleanup() {
	local rc=$? pid
	set +e
	trap - EXIT INT TERM
	# Parked processes would ignore SIGTERM until continued: kill them.
	for pid in "${PT_GATED[@]}"; do
		kill -KILL "$pid" 2>/dev/null
	done
	lab_run_stop "$rc"
	((LAB_OWNED)) && lab_down
	rm -rf "$RUN_DIR"
	exit "$rc"
}

# pt_run_begin LAB_UP_ARGS...: a fresh instance of the scenario, and the
# per-run state and trap.
pt_run_begin() {
	trap pt_run_cleanup EXIT
	trap 'exit 143' TERM
	PT_GATED=() PT_ENV=()
	lab_parse_opts up "$@"
	lab_check_free
	lab_run_init
	LAB_OWNED=1
	lab_build
}

# pt_punch_run RESULT_FILE LAB_UP_ARGS...: one measurement; appends
#   external_ms since_start_ms peer_info_ms punch_took_ms path_alice path_bob start_ms
# (start_ms: the larger of the two clients' launch -> their own start, i.e.
# the line's arrival less its "ms since start")
pt_punch_run() {
	local out=$1 id fifo fd line t a_ms since took peer_ms ext=0 int=0 info=0 took_max=0 start=0 paths=()
	shift
	pt_run_begin "$@"
	lab_start_server
	for id in alice bob; do
		local peer=alice
		[[ $id == alice ]] && peer=bob
		fifo=$RUN_DIR/$id.in
		mkfifo "$fifo"
		exec {fd}<>"$fifo"
		local args=(chat -server "$SERVER_IP:$LAB_STUN_PORT" -id "$id" -peer "$peer")
		((VERBOSE)) && args+=(-v)
		# Each peer its own identity, as on two machines (see pt_prepare_keys).
		PT_ENV=(XDG_CONFIG_HOME="$PT_KEYS_DIR/$id")
		[[ -n $PT_KEYS_DIR ]] || PT_ENV=(XDG_CONFIG_HOME="$RUN_DIR/$id.config")
		pt_spawn_gated "$id" "$RUN_DIR/$id" "$fifo" "$PUNCH" "${args[@]}"
		# shellcheck disable=SC2004 # associative arrays (lab_run_init)
		CLIENT_PID[$id]=$LAB_PID CLIENT_FD[$id]=$fd
	done
	pt_launch
	pt_wait_lines ' Connection established: ' "$RUN_DIR/alice.err" "$RUN_DIR/bob.err"
	local re='^([0-9.]+) Connection established: [^ ]+ -> [^ ]+ \(([a-z]+)\), punch took ([0-9]+) ms, ([0-9]+) ms since start'
	for id in alice bob; do
		line=$(grep -m1 ' Connection established: ' "$RUN_DIR/$id.err")
		[[ $line =~ $re ]] || lab_fail "$id: unexpected line '$line'"
		t=${BASH_REMATCH[1]} paths+=("${BASH_REMATCH[2]}")
		took=${BASH_REMATCH[3]} since=${BASH_REMATCH[4]}
		a_ms=$(pt_ms "$t")
		line=$(grep -m1 ' Step 4: ' "$RUN_DIR/$id.err") || lab_fail "$id: no 'Step 4' line"
		peer_ms=$(pt_ms "${line%% *}")
		ext=$(awk -v x="$ext" -v y="$a_ms" 'BEGIN { print (y > x ? y : x) }')
		start=$(awk -v x="$start" -v y="$a_ms" -v s="$since" 'BEGIN { print (y - s > x ? y - s : x) }')
		info=$(awk -v x="$info" -v y="$peer_ms" 'BEGIN { print (y > x ? y : x) }')
		((since > int)) && int=$since
		((took > took_max)) && took_max=$took
	done
	echo "$ext $int $info $took_max ${paths[0]} ${paths[1]} $start" >>"$out"
	pt_keep_logs "${out##*/}-$(wc -l <"$out")" "$RUN_DIR/alice.err" "$RUN_DIR/bob.err" "$RUN_DIR"/server-1.err
}

# ------------------------------------------------------------------ Nebula
# (certificates and configuration: bench/lib.sh)

# neb_log_ms FILE ERE: ms from the launch to the first line of Nebula's log
# FILE matching ERE (by its time="..." field), or "-".
neb_log_ms() {
	local ts
	ts=$(awk -v re="$2" '$0 ~ re && match($0, /time="[^"]+"/) {
		print substr($0, RSTART + 6, RLENGTH - 7); exit }' "$1")
	if [[ -n $ts ]]; then
		pt_ms "$(date -d "$ts" +%s.%N)"
	else
		echo -
	fi
}

# neb_run RESULT_FILE DELAY: one Nebula measurement in nat2; appends
#   ping_ms route_ms hs_sent_ms tunnel_ms
# from alice's side: the first echo reply from bob's overlay IP, nebula1's
# route, the first handshake sent to bob, the handshake with bob complete.
neb_run() {
	local out=$1 delay=$2 certs=$PT_TMP/certs name line ms route bob_re
	pt_run_begin nat2
	local dir=$RUN_DIR/nebula server
	mkdir -p "$dir"
	server=$(lab_addr server)
	for name in lighthouse alice bob; do
		neb_config "$certs" "$dir" "$name" "$delay" "$server"
	done
	lab_spawn server "$RUN_DIR/lighthouse" /dev/null nebula -config "$dir/lighthouse.yml"
	local lh_pid=$LAB_PID
	lab_wait_line "$RUN_DIR/lighthouse.out" 'Nebula interface is active' "$LAB_START_S" "$lh_pid" ||
		lab_fail "the lighthouse printed no 'Nebula interface is active' within $LAB_START_S s: $(tail -n 5 "$RUN_DIR/lighthouse.out" "$RUN_DIR/lighthouse.err")"
	for name in alice bob; do
		pt_spawn_gated "$name" "$RUN_DIR/$name" /dev/null nebula -config "$dir/$name.yml"
	done
	# The pinger parks itself once its socket is open (python starts slowly).
	lab_spawn alice "$RUN_DIR/ping" /dev/null python3 "$PT_HERE/punch_time_ping.py" \
		"$NEB_NET.3" nebula1 "$TIMEOUT_S" "$NEB_PING_INTERVAL_S"
	local ping_pid=$LAB_PID
	PT_GATED+=("$ping_pid")
	pt_launch
	lab_wait_gone "$((TIMEOUT_S + 2))" "$ping_pid" || lab_fail "the pinger did not finish within $((TIMEOUT_S + 2)) s"
	local rc=0
	wait "$ping_pid" || rc=$?
	((rc == 0)) || lab_fail "alice could not ping $NEB_NET.3 within $TIMEOUT_S s (pinger status $rc): $(tail -n 3 "$RUN_DIR/ping.out" "$RUN_DIR/ping.err")"
	read -r _ line _ < <(grep -m1 '^reply ' "$RUN_DIR/ping.out") ||
		lab_fail "no reply line in the pinger's output: $(cat "$RUN_DIR/ping.out")"
	ms=$(pt_ms "$line")
	read -r _ line < <(grep -m1 '^route ' "$RUN_DIR/ping.out") ||
		lab_fail "the pinger did not say when the route came up"
	route=$(pt_ms "$line")
	bob_re="vpnIp=${NEB_NET//./[.]}[.]3( |\$)"
	echo "$ms $route $(neb_log_ms "$RUN_DIR/alice.out" "Handshake message sent.*stage:1.*$bob_re")" \
		"$(neb_log_ms "$RUN_DIR/alice.out" "Handshake message received.*stage:2.*$bob_re")" >>"$out"
	if [[ -n $LOGS ]]; then
		for name in alice bob lighthouse ping; do
			cp "$RUN_DIR/$name.out" "$LOGS/${out##*/}-$(wc -l <"$out")-$name.log"
		done
	fi
}

# ------------------------------------------------------------- the driver

# pt_child FUNC ARGS...: one run in a subshell of its own, so that a failure
# (lab_fail exits) ends that run only.  Returns its status.
pt_child() {
	local rc=0
	("$@") &
	PT_CHILD=$!
	wait "$PT_CHILD" || rc=$?
	PT_CHILD=""
	return "$rc"
}

# pt_stats FILE COLUMN: "median min max" of COLUMN (1-based; numbers only).
pt_stats() {
	awk -v c="$2" '$c ~ /^[0-9.]+$/ { print $c }' "$1" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "- - -"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%.1f %.1f %.1f\n", m, v[1], v[NR]
		}'
}

pt_slug() {
	echo "${1// /_}" | tr -c 'A-Za-z0-9_\n' '_'
}

# pt_load: the 1-minute load average (other work on the machine skews timings).
pt_load() {
	local l
	read -r l _ </proc/loadavg
	echo "$l"
}

# pt_prepare_keys: the peers' identity keys, made once with `punch id`
# outside the measurement (a user's key exists after the first run), in
# PT_KEYS_DIR/alice and /bob.  If punch cannot create a key and then read it
# back, PT_KEYS_DIR stays empty and every client makes a fresh key in its
# run's directory, inside the measurement (and the report says so).
pt_prepare_keys() {
	local id ok=1
	PT_KEYS_DIR=""
	for id in alice bob; do
		XDG_CONFIG_HOME=$PT_TMP/keys/$id "$PUNCH" id >/dev/null 2>&1 &&
			XDG_CONFIG_HOME=$PT_TMP/keys/$id "$PUNCH" id >/dev/null 2>&1 || ok=0
	done
	if ((ok)); then
		PT_KEYS_DIR=$PT_TMP/keys
		PT_KEYS_NOTE="identity keys made beforehand with 'punch id'"
	else
		PT_KEYS_NOTE="'punch id' could not make a key and read it back, so each client made a fresh identity key at its start (included)"
		echo "punch_time: note: $PT_KEYS_NOTE" >&2
	fi
}

failures=0
pt_prepare_keys
load_start=$(pt_load)
mkdir -p "$PT_TMP/res"
if ((NEBULA)); then
	neb_certs "$PT_TMP/certs" >/dev/null
fi
echo "punch_time: $RUNS runs of each configuration${ONLY:+ matching /$ONLY/}; lab instance $LAB" >&2
for ((round = 1; round <= RUNS; round++)); do
	for cfg in "${PT_CONFIGS[@]}"; do
		name=${cfg%%|*}
		[[ -z $ONLY || $name =~ $ONLY ]] || continue
		# shellcheck disable=SC2206 # the lab's arguments, split on spaces
		args=(${cfg#*|})
		res=$PT_TMP/res/punch-$(pt_slug "$name")
		if pt_child pt_punch_run "$res" "${args[@]}"; then
			printf '  round %d %-12s %s\n' "$round" "$name" "$(tail -n 1 "$res" | awk '{ print $1 " ms (" $5 "/" $6 ")" }')" >&2
		else
			failures=$((failures + 1))
			echo "  round $round $name: FAILED" >&2
		fi
	done
	((NEBULA)) || continue
	for cfg in "${NEB_CONFIGS[@]}"; do
		name=${cfg%%|*}
		[[ -z $ONLY || "nebula $name" =~ $ONLY ]] || continue
		res=$PT_TMP/res/nebula-$(pt_slug "$name")
		if pt_child neb_run "$res" "${cfg#*|}"; then
			printf '  round %d nebula %-26s %s ms\n' "$round" "$name" "$(tail -n 1 "$res" | awk '{ print $1 }')" >&2
		else
			failures=$((failures + 1))
			echo "  round $round nebula $name: FAILED" >&2
		fi
	done
done

# ------------------------------------------------------------------ report

echo
echo "machine: $(nproc) CPUs; load average $load_start at the start, $(pt_load) at the end"
echo "punch: ms from launching both clients to the path chosen on both sides ($RUNS runs each)"
printf '  %-12s %7s %7s %7s %5s | %11s %9s %10s %9s\n' scenario median min max ok \
	since-start peer-info punch-took proc-start
for cfg in "${PT_CONFIGS[@]}"; do
	name=${cfg%%|*}
	[[ -z $ONLY || $name =~ $ONLY ]] || continue
	res=$PT_TMP/res/punch-$(pt_slug "$name")
	[[ -s $res ]] || {
		printf '  %-12s   (every run failed)\n' "$name"
		continue
	}
	read -r med lo hi < <(pt_stats "$res" 1)
	read -r since _ < <(pt_stats "$res" 2)
	read -r info _ < <(pt_stats "$res" 3)
	read -r took _ < <(pt_stats "$res" 4)
	read -r pstart _ < <(pt_stats "$res" 7)
	types=$(awk '{ print $5 "/" $6 }' "$res" | sort | uniq -c | awk '{ printf "%s%s x%d", (NR > 1 ? ", " : ""), $2, $1 }')
	printf '  %-12s %7s %7s %7s %2d/%-2d | %11s %9s %10s %9s   %s\n' "$name" "$med" "$lo" "$hi" \
		"$(wc -l <"$res")" "$RUNS" "$since" "$info" "$took" "$pstart" "$types"
done
echo "  (median min max: launch -> later 'Connection established' line, measured outside;"
echo "   medians of: since-start = the clients' max 'ms since start', peer-info = launch ->"
echo "   later Step 4, punch-took = the clients' max 'punch took', proc-start = launch -> a"
echo "   client's own start (exec, loading, library init; the larger of the two); path types"
echo "   alice/bob)"
echo "  ($PT_KEYS_NOTE)"

if ((NEBULA)); then
	nat2_med=-
	[[ ! -s $PT_TMP/res/punch-nat2 ]] || nat2_med=$(pt_stats "$PT_TMP/res/punch-nat2" 1 | awk '{ print $1 }')
	echo
	echo "Nebula $(nebula -version | awk '{ print $2 }') in nat2: ms from launching both hosts to alice's first ping reply from bob's overlay IP ($RUNS runs each)"
	printf '  %-28s %7s %7s %7s %5s | %8s %8s %8s  %s\n' config median min max ok \
		route-up hs-sent tunnel "nebula/punch(nat2)"
	for cfg in "${NEB_CONFIGS[@]}"; do
		name=${cfg%%|*}
		[[ -z $ONLY || "nebula $name" =~ $ONLY ]] || continue
		res=$PT_TMP/res/nebula-$(pt_slug "$name")
		[[ -s $res ]] || {
			printf '  %-28s   (every run failed)\n' "$name"
			continue
		}
		read -r med lo hi < <(pt_stats "$res" 1)
		read -r route _ < <(pt_stats "$res" 2)
		read -r hs _ < <(pt_stats "$res" 3)
		read -r tunnel _ < <(pt_stats "$res" 4)
		ratio=$(awk -v n="$med" -v p="$nat2_med" 'BEGIN { if (p + 0 > 0) printf "%.1fx", n / p; else print "-" }')
		printf '  %-28s %7s %7s %7s %2d/%-2d | %8s %8s %8s  %s\n' "$name" "$med" "$lo" "$hi" \
			"$(wc -l <"$res")" "$RUNS" "$route" "$hs" "$tunnel" "$ratio"
		echo "nebula nat2 ($name): median $med ms -> punch (nat2, median $nat2_med ms) is $ratio faster" \
			>>"$PT_TMP/res/summary"
	done
	echo "  (medians, ms from launch, from alice's side: route-up = nebula1's route appeared,"
	echo "   hs-sent = first handshake sent to bob, tunnel = handshake with bob complete)"
	echo
	[[ ! -e $PT_TMP/res/summary ]] || cat "$PT_TMP/res/summary"
fi
if ((failures)); then
	echo "punch_time: $failures runs failed (see above)" >&2
	exit 1
fi
