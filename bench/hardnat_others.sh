#!/usr/bin/env bash
# hardnat_others.sh - what other peer tools do with a hard NAT pair in the
# lab: success rate and time to a direct path for Nebula and aioice, run
# the way bench/probe_time.sh runs punch, for comparison (issue: hard NATs).
#
# Each run builds a fresh lab instance (scenario nat2, alice behind nata in
# mode A, bob behind natb in mode B; PAIR=A-B, default symmetric-home), so
# no conntrack entry survives from one run to the next, then:
#
#   nebula  a lighthouse on the server node and hosts on alice and bob
#           (bench/lib.sh: punchy on, no relays, so any tunnel is direct);
#           once both hosts are started, alice pings bob's overlay address
#           every 50 ms; the time is from starting the hosts to the first
#           reply, or a failure after TIMEOUT_S.
#   aioice  two aioice peers (Debian's python3-aioice; bench/aioice_peer.py),
#           alice controlling, with punch's server as their STUN server and
#           a file each as the signalling channel; the time is the later of
#           the two peers' own "connected" times, from their start
#           (gathering included), or a failure after TIMEOUT_S.
#
# It prints each run and then, per tool, runs ok/all and the median and
# 95th percentile of the successful runs' times.  Every wait is bounded;
# each run's instance is removed when it ends, also on failure or Ctrl-C.
# No traffic leaves the lab.
#
# Usage: bench/hardnat_others.sh        (as root, from anywhere)
# Environment (all optional):
#   PAIR=symmetric-home  the NAT modes of alice's and bob's NATs
#   RUNS=20              runs per tool
#   TIMEOUT_S=10         bound on one run's connecting
#   TOOLS="nebula aioice"
#   PUNCH=build/punch    the punch binary (its server is the STUN server)
#   PYTHON=/usr/bin/python3  a Python that has Debian's aioice
#   LAB=hoPID            lab instance name prefix (see scripts/lab)
set -euo pipefail
export LC_ALL=C

HO_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HO_REPO=$(cd "$HO_HERE/.." && pwd)
LAB=${LAB:-ho$$}
# shellcheck source=../scripts/lab
source "$HO_REPO/scripts/lab"
# shellcheck source=bench/lib.sh
source "$HO_REPO/bench/lib.sh"

PAIR=${PAIR:-symmetric-home}
RUNS=${RUNS:-20}
TIMEOUT_S=${TIMEOUT_S:-10}
TOOLS=${TOOLS:-nebula aioice}
PUNCH=${PUNCH:-$HO_REPO/build/punch}
PYTHON=${PYTHON:-/usr/bin/python3}
readonly NEB_PORT=4242 NEB_NET=192.168.100

((EUID == 0)) || lab_die "needs root (the lab's namespaces)"
command -v nebula >/dev/null || lab_die "nebula not found: apt-get install nebula"
"$PYTHON" -c 'import aioice' 2>/dev/null || lab_die "$PYTHON has no aioice: apt-get install python3-aioice"
HO_TMP=$(mktemp -d /dev/shm/hardnat_others.XXXXXX)
trap 'rm -rf "$HO_TMP"' EXIT
neb_certs "$HO_TMP/certs" >/dev/null

# shellcheck disable=SC2317 # run by the trap
ho_cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	lab_run_stop "$rc"
	((LAB_OWNED)) && lab_down
	rm -rf "$RUN_DIR"
	exit "$rc"
}

# ho_begin: a fresh instance for this run, removed by the run's EXIT trap.
ho_begin() {
	trap ho_cleanup EXIT
	trap 'exit 143' TERM INT
	lab_parse_opts up nat2 --nat-a "${PAIR%%-*}" --nat-b "${PAIR#*-}"
	lab_check_free
	lab_run_init
	LAB_OWNED=1
	lab_build
}

# ho_ms T0: milliseconds since T0 (an EPOCHREALTIME), one decimal.
ho_ms() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) * 1000 }'
}

# ho_nebula: one Nebula run; prints "ok MS" or "fail MS".
ho_nebula() {
	ho_begin
	local dir=$RUN_DIR/nebula name server t0 pids=()
	mkdir -p "$dir"
	server=$(lab_addr server)
	for name in lighthouse alice bob; do
		neb_config "$HO_TMP/certs" "$dir" "$name" "" "$server"
	done
	lab_spawn server "$RUN_DIR/lighthouse" /dev/null nebula -config "$dir/lighthouse.yml"
	lab_wait_line "$RUN_DIR/lighthouse.out" 'Nebula interface is active' "$LAB_START_S" "$LAB_PID" ||
		lab_fail "the lighthouse did not come up: $(tail -n 5 "$RUN_DIR/lighthouse.out")"
	t0=$EPOCHREALTIME
	for name in alice bob; do
		lab_spawn "$name" "$RUN_DIR/$name" /dev/null nebula -config "$dir/$name.yml"
		pids+=("$LAB_PID")
	done
	# Until alice's nebula1 exists ping has no route (and gives up at
	# once); then it gives up after the time left (-w) or at the first
	# reply (-c 1).
	local left
	until lab_nsx alice ip -o link show nebula1 >/dev/null 2>&1; do
		[[ $(ho_ms "$t0" | cut -d. -f1) -lt $((TIMEOUT_S * 1000)) ]] || break
		sleep 0.01
	done
	left=$(awk -v t="$(ho_ms "$t0")" -v l="$TIMEOUT_S" 'BEGIN { x = l - t / 1000; print (x < 1 ? 1 : int(x)) }')
	if lab_nsx alice ping -n -q -c 1 -i 0.05 -w "$left" "$NEB_NET.3" >/dev/null 2>&1; then
		echo "ok $(ho_ms "$t0")"
	else
		echo "fail $(ho_ms "$t0")"
	fi
	kill "${pids[@]}" 2>/dev/null || true
}

# ho_aioice: one aioice run; prints "ok MS" or "fail MS", MS the later of
# the two peers' own times.
ho_aioice() {
	ho_begin
	lab_start_server
	local a_pid b_pid a b
	lab_spawn alice "$RUN_DIR/alice" /dev/null "$PYTHON" "$HO_HERE/aioice_peer.py" controlling \
		"$SERVER_IP" "$LAB_STUN_PORT" "$RUN_DIR/alice.json" "$RUN_DIR/bob.json" "$TIMEOUT_S"
	a_pid=$LAB_PID
	lab_spawn bob "$RUN_DIR/bob" /dev/null "$PYTHON" "$HO_HERE/aioice_peer.py" controlled \
		"$SERVER_IP" "$LAB_STUN_PORT" "$RUN_DIR/bob.json" "$RUN_DIR/alice.json" "$TIMEOUT_S"
	b_pid=$LAB_PID
	lab_wait_gone "$((TIMEOUT_S + 5))" "$a_pid" "$b_pid" || lab_fail "the aioice peers did not finish within $((TIMEOUT_S + 5)) s"
	read -r a a_ms _ <"$RUN_DIR/alice.out" || a=none
	read -r b b_ms _ <"$RUN_DIR/bob.out" || b=none
	if [[ $a == connected && $b == connected ]]; then
		awk -v x="$a_ms" -v y="$b_ms" 'BEGIN { printf "ok %.1f\n", (x > y ? x : y) }'
	else
		echo "fail - alice: $(cat "$RUN_DIR/alice.out" "$RUN_DIR/alice.err" | tail -n 1); bob: $(cat "$RUN_DIR/bob.out" "$RUN_DIR/bob.err" | tail -n 1)"
	fi
}

# ho_stats FILE: "ok/all median p95" of the ok lines' times.
ho_stats() {
	local n
	n=$(wc -l <"$1")
	awk '$1 == "ok" { print $2 }' "$1" | sort -g | awk -v n="$n" '
		{ v[++k] = $1 }
		END {
			if (!k) { printf "0/%d - -\n", n; exit }
			m = k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
			p = int(0.95 * k); if (p < 0.95 * k) p++
			printf "%d/%d %.1f %.1f\n", k, n, m, v[p]
		}'
}

echo "hardnat_others: $PAIR, $RUNS runs each of: $TOOLS; bound $TIMEOUT_S s per run" >&2
for tool in $TOOLS; do
	: >"$HO_TMP/$tool"
done
for ((run = 1; run <= RUNS; run++)); do
	for tool in $TOOLS; do
		line=$( ("ho_$tool") 2>"$HO_TMP/err") || line="fail - the run itself failed: $(tail -n 3 "$HO_TMP/err")"
		echo "$line" >>"$HO_TMP/$tool"
		printf '  run %2d %-7s %s\n' "$run" "$tool" "$line" >&2
	done
done
echo "$PAIR (nat2: alice behind ${PAIR%%-*}, bob behind ${PAIR#*-}), ms to a direct path:"
printf '  %-8s %7s %9s %9s\n' tool ok median p95
for tool in $TOOLS; do
	read -r ok med p95 < <(ho_stats "$HO_TMP/$tool")
	printf '  %-8s %7s %9s %9s\n' "$tool" "$ok" "$med" "$p95"
done
