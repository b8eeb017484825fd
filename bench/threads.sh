#!/usr/bin/env bash
# threads.sh - STUN Binding requests per second and the server's CPU time per
# request, punch server -threads 1 against -threads 2 (and more: THREADS), on
# loopback, with the load generator of stun_vs_coturn.sh (stun_loadgen).
#
# The servers run side by side for the whole run, each on its own port of
# 127.0.0.1, unpinned (a two-thread server needs two CPUs); stun_loadgen
# measures them in turn, round after round, from SOCKETS source ports, so
# that SO_REUSEPORT has 4-tuples to spread over the threads.  Every response
# is checked (see loadgen.c).  On a machine whose CPUs the load generator
# shares with the server, req/s says little about a second thread alone: the
# server's CPU time per request (utime + stime of all its threads, from
# /proc/PID/stat) stays put, and the split of the datagrams over the threads
# (punch_thread_datagrams_total, from -metrics) shows that each thread served.
#
# Usage: bench/threads.sh           (from the top of the source tree)
# Environment (all optional):
#   PUNCH=./build/punch       the punch binary; a Release build
#   LOADGEN                   default: stun_loadgen beside it in bench/
#   THREADS="1 2"             the servers' -threads, one server each
#   ROUNDS=5 ROUND_S=5        rounds, and seconds measured per server per round
#   SOCKETS=16                loadgen's source ports (-n)
#   LOADGEN_ARGS="-w 512 -b 32"  see stun_loadgen -h
#   LOADGEN_CPU=              a CPU to pin the load generator to (default: none)
#   PORT_BASE=23880           the servers take the first free ports from here
#   BASELINE=                 another punch binary (one from before -threads)
#                             measured beside them, with its own defaults
# Exit status: 0, or 1 if a server gave a bad response, died or never answered.
set -euo pipefail

PUNCH=${PUNCH:-./build/punch}
bindir=$(dirname "$PUNCH")
LOADGEN=${LOADGEN:-$bindir/bench/stun_loadgen}
THREADS=${THREADS:-1 2}
ROUNDS=${ROUNDS:-5}
ROUND_S=${ROUND_S:-5}
SOCKETS=${SOCKETS:-16}
LOADGEN_ARGS=${LOADGEN_ARGS:--w 512 -b 32}
LOADGEN_CPU=${LOADGEN_CPU:-}
PORT_BASE=${PORT_BASE:-23880} # below the ephemeral range (32768-60999)
BASELINE=${BASELINE:-}

readonly WARMUP_MS=500
readonly READY_TIMEOUT_S=10
readonly HOST=127.0.0.1 # never anything but loopback

die() { echo "threads: $*" >&2; exit 1; }

for tool in "$PUNCH" "$LOADGEN"; do
	[[ -x $tool ]] || die "$tool not found; build first (cmake -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build), or set PUNCH/LOADGEN"
done
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
pin_loadgen=()
[[ -z $LOADGEN_CPU ]] || pin_loadgen=(taskset -c "$LOADGEN_CPU")

# shellcheck source=loopback_servers.sh
source "$(dirname "$0")/loopback_servers.sh"
servers_init threads_bench

# ---- start the servers -------------------------------------------------------

cp "$PUNCH" "$tmp/punch" # a rebuild during the run cannot change what is measured
servers=$THREADS
for n in $THREADS; do
	take_port "$n"
	take_port "m$n"
	"$tmp/punch" server -threads "$n" -listen "$HOST:${port[$n]}" -no-tcp \
		-metrics "$HOST:${port[m$n]}" -state "$tmp/state.$n" >"$tmp/punch.$n.log" 2>&1 &
	pid[$n]=$!
done
if [[ -n $BASELINE ]]; then
	cp "$BASELINE" "$tmp/baseline"
	take_port base
	"$tmp/baseline" server -listen "$HOST:${port[base]}" -no-tcp -state "$tmp/state.base" \
		>"$tmp/punch.base.log" 2>&1 &
	pid[base]=$!
	servers+=" base"
fi

loadgen() {
	local n=$1
	shift
	timeout $((ROUND_S + 30)) "${pin_loadgen[@]}" "$LOADGEN" -s "$HOST:${port[$n]}" -q "$@"
}

for n in $servers; do
	deadline=$((SECONDS + READY_TIMEOUT_S))
	until loadgen "$n" -d 0.1 -W 0 -w 4 >/dev/null 2>&1; do
		if ! kill -0 "${pid[$n]}" 2>/dev/null || (( SECONDS >= deadline )); then
			cat "$tmp/punch.$n.log" >&2
			die "-threads $n does not answer on $HOST:${port[$n]}"
		fi
		sleep 0.2
	done
done

# ---- measuring ----------------------------------------------------------------

read -ra lg_args <<<"$LOADGEN_ARGS"
hz=$(getconf CLK_TCK)
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
field() { grep -o "\\b$1=[0-9.]*" <<<"$2" | head -1 | cut -d= -f2; }
median() {
	sort -g | awk -v d="${1:-0}" '{ v[NR] = $1 } END {
		m = NR == 0 ? 0 : NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.*f\n", d, m }'
}
# split N: each thread's datagrams so far, "a/b/..."
split() {
	[[ -n ${port[m$1]:-} ]] || { echo -; return; }
	curl -sf --max-time 5 "http://$HOST:${port[m$1]}/metrics" |
		awk '/^punch_thread_datagrams_total/ { printf "%s%s", sep, $2; sep = "/" } END { print "" }'
}

echo "threads: $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: servers -threads {${THREADS// /,}}${BASELINE:+ and base=$BASELINE} unpinned; loadgen on CPU ${LOADGEN_CPU:-any}, $SOCKETS sockets, $LOADGEN_ARGS"
printf '%-5s %-8s %10s %11s %12s %12s %s\n' round threads 'req/s' 'CPU us/req' 'server CPU%' 'loadgen CPU%' 'datagrams by thread'
declare -A rates=() costs=() loads=()
status=0
for (( r = 1; r <= ROUNDS; r++ )); do
	for n in $servers; do
		p0=$(proc_ticks "${pid[$n]}")
		rc=0
		out=$(loadgen "$n" -d "$ROUND_S" -W "$WARMUP_MS" -n "$SOCKETS" "${lg_args[@]}" 2>"$tmp/lg.err") || rc=$?
		p1=$(proc_ticks "${pid[$n]}")
		summary=$(grep '^loadgen:' <<<"$out" || true)
		if (( rc != 0 )) || [[ -z $summary ]]; then
			echo "threads: -threads $n: loadgen failed (exit $rc): $summary" >&2
			cat "$tmp/lg.err" >&2
			status=1
			continue
		fi
		kill -0 "${pid[$n]}" 2>/dev/null || die "-threads $n has stopped: $(tail -5 "$tmp/punch.$n.log")"
		rate=$(field rate "$summary")
		ok=$(field ok "$summary")
		lgcpu=$(field cpu "$summary")
		# the server's CPU per good answer (all its threads, softirq work in
		# its context included), and its CPU use in % of one CPU over the
		# whole loadgen run (warm-up and drain included)
		cost=$(awk -v p=$((p1 - p0)) -v hz="$hz" -v ok="$ok" 'BEGIN { printf "%.2f", (ok > 0 ? p / hz * 1e6 / ok : 0) }')
		busy=$(awk -v p=$((p1 - p0)) -v hz="$hz" -v d="$ROUND_S" -v w="$WARMUP_MS" \
			'BEGIN { printf "%.0f", 100 * p / hz / (d + w / 1000) }')
		lgbusy=$(awk -v c="${lgcpu%s}" -v d="$ROUND_S" -v w="$WARMUP_MS" \
			'BEGIN { printf "%.0f", 100 * c / (d + w / 1000) }')
		rates[$n]+="$rate " costs[$n]+="$cost " loads[$n]+="$busy "
		printf '%-5s %-8s %10s %11s %11s%% %11s%% %s\n' "$r" "$n" "$rate" "$cost" "$busy" "$lgbusy" "$(split "$n")"
	done
done

echo "median over $ROUNDS rounds:"
for n in $servers; do
	printf '  -threads %-3s %10s req/s %8s us CPU/req %5s%% server CPU\n' "$n" \
		"$(tr ' ' '\n' <<<"${rates[$n]:-}" | grep . | median)" \
		"$(tr ' ' '\n' <<<"${costs[$n]:-}" | grep . | median 2)" \
		"$(tr ' ' '\n' <<<"${loads[$n]:-}" | grep . | median)"
done
exit "$status"
