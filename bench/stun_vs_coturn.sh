#!/usr/bin/env bash
# stun_vs_coturn.sh - STUN Binding requests per second: punch's server against
# coturn, with a bare UDP echo as the ceiling of this machine, on loopback.
#
# All three servers run side by side for the whole run, each on its own port
# of 127.0.0.1 and pinned to one CPU; stun_loadgen is pinned to another and
# measures them in turn, round after round (punch, coturn, echo, punch, ...),
# so that a slow drift of the machine hits each of them alike. Every response
# is checked (see loadgen.c). A measurement during which other processes used
# more than NOISE_MAX_PCT of a CPU is taken again, a bounded number of times.
# The result is the median of the rounds and the ratio of the medians, and
# each server's CPU time per request: on a machine that other work shares,
# that figure stays put when the rates do not (1 / it is the rate the server
# would reach with a CPU of its own).
#
# Usage: bench/stun_vs_coturn.sh         (from the top of the source tree)
# Environment (all optional):
#   PUNCH=./build/punch        the punch binary; a Release build
#   LOADGEN, ECHO_SERVER       default: stun_loadgen, stun_echo beside it in bench/
#   TURNSERVER=turnserver      coturn; Debian package "coturn"
#   ROUNDS=5 ROUND_S=5         rounds, and seconds measured per server per round
#   SERVER_CPU=0 LOADGEN_CPU=1 CPUs to pin to (empty SERVER_CPU: don't pin)
#   LOADGEN_ARGS="-w 256 -b 32"   see stun_loadgen -h
#   NOISE_MAX_PCT=5            retry a measurement when others used more CPU
#   QUIET_WAIT_S=120           wait this long at most, over the run, for others to stop
#   NO_ECHO=1                  skip the echo baseline
#   PORT_BASE=23780            the servers take the first free ports from here
# Exit status: 0, or 1 if any server gave a bad response, died or never answered.
set -euo pipefail

PUNCH=${PUNCH:-./build/punch}
bindir=$(dirname "$PUNCH")
LOADGEN=${LOADGEN:-$bindir/bench/stun_loadgen}
ECHO_SERVER=${ECHO_SERVER:-$bindir/bench/stun_echo}
TURNSERVER=${TURNSERVER:-turnserver}
ROUNDS=${ROUNDS:-5}
ROUND_S=${ROUND_S:-5}
SERVER_CPU=${SERVER_CPU-0}
LOADGEN_CPU=${LOADGEN_CPU-1}
LOADGEN_ARGS=${LOADGEN_ARGS:--w 256 -b 32}
NOISE_MAX_PCT=${NOISE_MAX_PCT:-5}
QUIET_WAIT_S=${QUIET_WAIT_S:-120}
NO_ECHO=${NO_ECHO:-}
PORT_BASE=${PORT_BASE:-23780} # below the ephemeral range (32768-60999)

readonly WARMUP_MS=500
readonly READY_TIMEOUT_S=10   # for a server to start answering
readonly MAX_TRIES=3          # per measurement, when the machine is busy
readonly HOST=127.0.0.1       # never anything but loopback

die() { echo "stun_vs_coturn: $*" >&2; exit 1; }

for tool in "$PUNCH" "$LOADGEN"; do
	[[ -x $tool ]] || die "$tool not found; build first (cmake -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build), or set PUNCH/LOADGEN"
done
command -v "$TURNSERVER" >/dev/null || die "$TURNSERVER not found; apt-get install coturn, or set TURNSERVER"
command -v taskset >/dev/null || { echo "stun_vs_coturn: no taskset; not pinning" >&2; SERVER_CPU=; }
[[ -n $NO_ECHO || -x $ECHO_SERVER ]] || { echo "stun_vs_coturn: no $ECHO_SERVER; no echo baseline" >&2; NO_ECHO=1; }
ncpu=$(nproc)
if [[ -n $SERVER_CPU ]] && (( ncpu < 2 )); then
	echo "stun_vs_coturn: one CPU only; not pinning" >&2
	SERVER_CPU=
fi
pin_server=() pin_loadgen=()
if [[ -n $SERVER_CPU ]]; then
	pin_server=(taskset -c "$SERVER_CPU")
	pin_loadgen=(taskset -c "$LOADGEN_CPU")
fi

# shellcheck source=loopback_servers.sh
source "$(dirname "$0")/loopback_servers.sh"
servers_init stun_vs_coturn
status=0

# ---- start the servers -------------------------------------------------------

# A copy, so that a rebuild during the run cannot change what is measured.
cp "$PUNCH" "$tmp/punch"
take_port punch
"${pin_server[@]}" "$tmp/punch" server -threads 1 -listen "$HOST:${port[punch]}" -state "$tmp/punch.state" >"$tmp/punch.log" 2>&1 &
pid[punch]=$!

take_port coturn
next_port=$((next_port + 1)) # coturn may want port + 1 for RFC 5780; leave it
# -n: no config file; its database, log and pid file stay in $tmp; UDP only,
# on 127.0.0.1 only; one relay thread, so one thread answers STUN.
"${pin_server[@]}" "$TURNSERVER" -n --stun-only --no-cli --no-tls --no-dtls --no-tcp \
	--no-rfc5780 --listening-ip "$HOST" --relay-ip "$HOST" --listening-port "${port[coturn]}" \
	--relay-threads 1 --userdb "$tmp/turndb" --log-file "$tmp/turn.log" --simple-log \
	--no-stdout-log --pidfile "$tmp/turn.pid" >"$tmp/coturn.out" 2>&1 &
pid[coturn]=$!

servers=(punch coturn)
if [[ -z $NO_ECHO ]]; then
	take_port echo
	"${pin_server[@]}" "$ECHO_SERVER" -l "$HOST:${port[echo]}" \
		-t $(( (ROUND_S + 2) * ROUNDS * 3 * MAX_TRIES + QUIET_WAIT_S + 60 )) >"$tmp/echo.log" 2>&1 &
	pid[echo]=$!
	servers+=(echo)
fi

# loadgen SERVER ARGS...: stun_loadgen aimed at SERVER; -e for the echo
loadgen() {
	local s=$1
	shift
	local mode=()
	if [[ $s == echo ]]; then mode=(-e); fi
	timeout $((ROUND_S + 30)) "${pin_loadgen[@]}" "$LOADGEN" -s "$HOST:${port[$s]}" -q "${mode[@]}" "$@"
}

wait_ready() {
	local s=$1 deadline=$((SECONDS + READY_TIMEOUT_S))
	while (( SECONDS < deadline )); do
		kill -0 "${pid[$s]}" 2>/dev/null || break
		if loadgen "$s" -d 0.1 -W 0 -w 4 >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	echo "stun_vs_coturn: $s does not answer on $HOST:${port[$s]}; its log:" >&2
	cat "$tmp/$s".{log,out} "$tmp/turn.log" 2>/dev/null | tail -20 >&2
	exit 1
}
# Only the server we started may hold its port (SO_REUSEPORT would let two
# servers share one, and the load would be split between them).
check_owner() {
	local s=$1 others
	others=$(ss -Hanup "sport = :${port[$s]}" | grep -v "pid=${pid[$s]}," || true)
	[[ -z $others ]] || die "$s's port ${port[$s]} is shared: $others"
}
for s in "${servers[@]}"; do wait_ready "$s"; check_owner "$s"; done

# coturn opens what it likes: make sure it is all on loopback
coturn_pid=$(cat "$tmp/turn.pid" 2>/dev/null || echo "${pid[coturn]}")
if ss -Hanup | grep "pid=$coturn_pid," | awk '{print $4}' | grep -v "^$HOST:" | grep -q .; then
	die "coturn listens beyond $HOST: $(ss -Hanup | grep "pid=$coturn_pid,")"
fi

# ---- measuring ----------------------------------------------------------------

read -ra lg_args <<<"$LOADGEN_ARGS"
hz=$(getconf CLK_TCK)
# busy and total ticks of all CPUs, then idle and total ticks of the
# server's CPU, from /proc/stat
cpu_ticks() {
	awk -v c="cpu${SERVER_CPU:-}" '
		/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; all = (t - $5 - $6) " " t }
		$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; srv = ($5 + $6) " " t }
		END { print all, (srv == "" ? "0 0" : srv) }' /proc/stat
}
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Wait, QUIET_WAIT_S at most over the whole run, until other processes use
# no more than NOISE_MAX_PCT of a CPU (our own servers are idle meanwhile).
quiet_left=$QUIET_WAIT_S
wait_quiet() {
	local b0 t0 b1 t1 busy
	while (( quiet_left > 0 )); do
		read -r b0 t0 _ < <(cpu_ticks)
		sleep 1
		read -r b1 t1 _ < <(cpu_ticks)
		busy=$(( t1 > t0 ? 100 * (b1 - b0) * ncpu / (t1 - t0) : 0 ))
		(( busy > NOISE_MAX_PCT )) || return 0
		quiet_left=$((quiet_left - 1))
	done
}

# measure SERVER -> sets rate, noise, srv_idle, lg_idle, us_per_req; returns 1 on a bad
# response or a failed run. A noisy measurement is taken again.
measure() {
	local s=$1 try out summary rc b0 t0 b1 t1 p0 p1 i0 i1 s0 s1 cpu
	for (( try = 1; try <= MAX_TRIES; try++ )); do
		wait_quiet
		read -r b0 t0 i0 s0 < <(cpu_ticks)
		p0=$(proc_ticks "${pid[$s]}")
		rc=0
		out=$(loadgen "$s" -d "$ROUND_S" -W "$WARMUP_MS" "${lg_args[@]}" 2>"$tmp/lg.err") || rc=$?
		read -r b1 t1 i1 s1 < <(cpu_ticks)
		p1=$(proc_ticks "${pid[$s]}")
		summary=$(grep '^loadgen:' <<<"$out" || true)
		if (( rc != 0 )) || [[ -z $summary ]]; then
			echo "stun_vs_coturn: $s: loadgen failed (exit $rc): $summary" >&2
			cat "$tmp/lg.err" >&2
			rate=0 noise=0 srv_idle=0 lg_idle=0 us_per_req=0
			return 1
		fi
		rate=$(field rate "$summary")
		lg_idle=$(field idle "$summary")
		cpu=$(field cpu "$summary")
		# others' CPU time, in % of one CPU: all busy time less the server's
		# (with its softirq work) and the loadgen's
		noise=$(awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v p=$((p1 - p0)) -v c="${cpu%s}" \
			-v hz="$hz" -v n="$ncpu" 'BEGIN { o = b - p - c * hz; if (o < 0) o = 0;
			printf "%.0f", (t > 0 ? 100 * o / (t / n) : 0) }')
		# the server's CPU time per good answer, softirq work in its context
		# included: what the machine's other load disturbs least
		us_per_req=$(awk -v p=$((p1 - p0)) -v hz="$hz" -v ok="$(field ok "$summary")" \
			'BEGIN { printf "%.2f", (ok > 0 ? p / hz * 1e6 / ok : 0) }')
		# idle time left on the server's CPU: the server was not saturated
		srv_idle=$(awk -v i=$((i1 - i0)) -v t=$((s1 - s0)) \
			'BEGIN { printf "%.0f", (t > 0 ? 100 * i / t : 0) }')
		(( noise > NOISE_MAX_PCT )) || return 0
	done
	return 0
}

# field NAME SUMMARY: the value of NAME=VALUE in a loadgen summary line
field() { grep -o "\\b$1=[0-9.]*" <<<"$2" | head -1 | cut -d= -f2; }

# median [DECIMALS]: the median of the numbers on stdin, one a line
median() {
	sort -g | awk -v d="${1:-0}" '{ v[NR] = $1 } END {
		m = NR == 0 ? 0 : NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.*f\n", d, m }'
}

echo "stun_vs_coturn: $(uname -r), $ncpu CPUs; servers on CPU ${SERVER_CPU:-any}, loadgen on CPU ${LOADGEN_CPU:-any}"
echo "stun_vs_coturn: $ROUNDS rounds of ${ROUND_S}s per server; loadgen $LOADGEN_ARGS"
echo "stun_vs_coturn: punch $HOST:${port[punch]}, coturn $HOST:${port[coturn]}${port[echo]:+, echo $HOST:${port[echo]}}"
# loadgen idle: the generator's slack. server CPU idle: the server's (0%:
# saturated). CPU us/req: the server's CPU time per answer. noise: CPU time
# other processes took, in % of one CPU; a row marked * had more than
# NOISE_MAX_PCT and is left out of the medians when enough rows are clean.
printf '%-5s %-6s %10s %12s %15s %11s %6s\n' round server 'req/s' 'loadgen idle' 'server CPU idle' \
	'CPU us/req' noise
declare -A all=() clean=() costs=()
for (( r = 1; r <= ROUNDS; r++ )); do
	for s in "${servers[@]}"; do
		measure "$s" || status=1
		if ! kill -0 "${pid[$s]}" 2>/dev/null; then
			echo "stun_vs_coturn: $s has stopped; its log:" >&2
			tail -5 "$tmp/$s".{log,out} "$tmp/turn.log" 2>/dev/null >&2 || true
			die "cannot go on without $s"
		fi
		all[$s]+="$rate "
		costs[$s]+="$us_per_req "
		mark=" "
		if (( noise <= NOISE_MAX_PCT )); then clean[$s]+="$rate "; else mark="*"; fi
		printf '%-5s %-6s %10s %11s%% %15s %11s %5s%%%s\n' "$r" "$s" "$rate" "${lg_idle:-?}" \
			"${SERVER_CPU:+$srv_idle%}" "$us_per_req" "$noise" "$mark"
	done
done

declare -A med=() cost=()
disturbed=
for s in "${servers[@]}"; do
	cost[$s]=$(tr ' ' '\n' <<<"${costs[$s]}" | grep . | median 2)
	if (( $(wc -w <<<"${clean[$s]:-}") * 2 > ROUNDS )); then
		med[$s]=$(tr ' ' '\n' <<<"${clean[$s]}" | grep . | median)
	else
		med[$s]=$(tr ' ' '\n' <<<"${all[$s]}" | grep . | median)
		disturbed+=" $s"
	fi
done
ratio=$(awk -v a="${med[punch]}" -v b="${med[coturn]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo "median: punch ${med[punch]} req/s, coturn ${med[coturn]} req/s, ratio ${ratio}x"
cost_ratio=$(awk -v a="${cost[punch]}" -v b="${cost[coturn]}" 'BEGIN { printf "%.2f", (a > 0 ? b / a : 0) }')
echo "server CPU per request: punch ${cost[punch]} us, coturn ${cost[coturn]} us${cost[echo]:+, echo ${cost[echo]} us}; coturn/punch ${cost_ratio}x"
if [[ -z $NO_ECHO ]]; then
	pct=$(awk -v a="${med[punch]}" -v e="${med[echo]}" 'BEGIN { printf "%.0f", (e > 0 ? 100 * a / e : 0) }')
	echo "ceiling: bare UDP echo ${med[echo]} req/s; punch reaches ${pct}% of it"
fi
if [[ -n $disturbed ]]; then
	echo "stun_vs_coturn: warning: other processes disturbed most rounds of:$disturbed; these medians include them" >&2
fi
exit "$status"
