#!/usr/bin/env bash
# relay_vs_coturn.sh - TURN relay throughput: punch's server against coturn's
# turnserver, both driven by coturn's own turnutils_uclient, on loopback.
#
# Both servers run with the same REST secret, UDP only, each pinned to one
# CPU (the same one, SERVER_CPU; they are measured in turn, round after
# round, so that a drift of the machine hits both alike).  uclient runs on
# another CPU in client-to-client mode (-y, channels, no RTCP: -c): every
# message goes client -> relay A -> relay B -> client, through the server
# twice.  Same message size and count for both.
#
# uclient paces itself, so on loopback it, not the server, sets the wall
# rate; the figure that tells the servers apart is each one's CPU time per
# relayed message (from /proc/PID/task/*/schedstat, in ns, all threads), and
# 1 / that is the rate the server would reach with a CPU of its own.  Both
# are printed, with the ratio of the capacities.  Lost messages are
# printed too.
#
# Usage: bench/relay_vs_coturn.sh           (from the top of the source tree)
# Environment (all optional):
#   PUNCH=./build/punch        a Release build
#   TURNSERVER=turnserver UCLIENT=turnutils_uclient
#   ROUNDS=3                   rounds (punch, coturn, punch, ...)
#   MSGS=5000 CLIENTS=20 SIZE=200   uclient's -n, -m, -l
#   SERVER_CPU=0 CLIENT_CPU=1  CPUs to pin to (empty SERVER_CPU: don't pin)
#   PORT_BASE=24780            the servers take the first free ports from here;
#                              relayed ports 25000-25999 and 26000-26999
# Exit status: 0, or 1 if a server would not start or uclient failed.
set -euo pipefail

PUNCH=${PUNCH:-./build/punch}
TURNSERVER=${TURNSERVER:-turnserver}
UCLIENT=${UCLIENT:-turnutils_uclient}
ROUNDS=${ROUNDS:-3}
MSGS=${MSGS:-5000}
CLIENTS=${CLIENTS:-20}
SIZE=${SIZE:-200}
SERVER_CPU=${SERVER_CPU-0}
CLIENT_CPU=${CLIENT_CPU-1}
PORT_BASE=${PORT_BASE:-24780}
readonly HOST=127.0.0.1 SECRET=bench-secret
readonly READY_TIMEOUT_S=10 UCLIENT_TIMEOUT_S=300

die() { echo "relay_vs_coturn: $*" >&2; exit 1; }

[[ -x $PUNCH ]] || die "$PUNCH not found; build first (cmake -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build), or set PUNCH"
for tool in "$TURNSERVER" "$UCLIENT"; do
	command -v "$tool" >/dev/null || die "$tool not found; apt-get install coturn"
done
pin_server=() pin_client=()
if [[ -n $SERVER_CPU ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
	pin_server=(taskset -c "$SERVER_CPU")
	pin_client=(taskset -c "$CLIENT_CPU")
else
	echo "relay_vs_coturn: not pinning (no taskset, one CPU, or SERVER_CPU empty)" >&2
fi

# shellcheck source=loopback_servers.sh
source "$(dirname "$0")/loopback_servers.sh"
servers_init relay_vs_coturn

# cpu_ns PID: CPU time of every thread of PID so far, in ns.
cpu_ns() {
	local f sum=0 ns
	for f in /proc/"$1"/task/*/schedstat; do
		read -r ns _ <"$f" || continue
		sum=$((sum + ns))
	done
	echo "$sum"
}

# wait_ready NAME: until a bare Allocate gets its 401 (uclient -O would
# allocate; a STUN Binding from uclient's sibling is enough).
wait_ready() {
	local name=$1 i
	for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
		kill -0 "${pid[$name]}" 2>/dev/null || die "$name exited; its log: $(cat "$tmp/$name.log")"
		if timeout 1 turnutils_stunclient -p "${port[$name]}" "$HOST" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	die "$name did not answer within ${READY_TIMEOUT_S} s"
}

take_port punch
take_port coturn

"${pin_server[@]}" "$PUNCH" server -listen "$HOST:${port[punch]}" -state "$tmp/state" \
	-auth-secret "$SECRET" -relay-ports 25000-25999 -relay-allow-private \
	-max-allocations 5000 -max-allocations-per-prefix 5000 >"$tmp/punch.log" 2>&1 &
pid[punch]=$!
"${pin_server[@]}" "$TURNSERVER" -n --no-cli --no-tls --no-dtls --no-tcp --no-tcp-relay \
	--listening-ip "$HOST" --relay-ip "$HOST" --listening-port "${port[coturn]}" \
	--min-port 26000 --max-port 26999 --relay-threads 1 \
	--use-auth-secret --static-auth-secret "$SECRET" --realm punch \
	--allow-loopback-peers --userdb "$tmp/turndb" --log-file "$tmp/turn.log" \
	--simple-log --no-stdout-log --pidfile "$tmp/turn.pid" >"$tmp/coturn.log" 2>&1 &
pid[coturn]=$!
wait_ready punch
wait_ready coturn

declare -A cpu=() msgs=() wall=() lost=()
for name in punch coturn; do
	cpu[$name]=0 msgs[$name]=0 wall[$name]=0 lost[$name]=0
done

# run NAME: one uclient run against NAME; adds to its totals.
run() {
	local name=$1 out="$tmp/uclient.$1" c0 c1 t0 t1 got l
	c0=$(cpu_ns "${pid[$name]}")
	t0=$(date +%s%N)
	timeout "$UCLIENT_TIMEOUT_S" "${pin_client[@]}" "$UCLIENT" -W "$SECRET" -y -c \
		-n "$MSGS" -m "$CLIENTS" -l "$SIZE" -z 0 -p "${port[$name]}" "$HOST" \
		>"$out" 2>&1 || die "uclient against $name failed: $(tail -5 "$out")"
	t1=$(date +%s%N)
	c1=$(cpu_ns "${pid[$name]}")
	got=$(sed -n 's/.*start_mclient: tot_send_msgs=[0-9]*, tot_recv_msgs=\([0-9]*\)$/\1/p' "$out" | tail -1)
	l=$(sed -n 's/.*Total lost packets \([0-9]*\) .*/\1/p' "$out" | tail -1)
	[[ -n $got && -n $l ]] || die "no totals in uclient's output against $name: $(tail -5 "$out")"
	cpu[$name]=$((cpu[$name] + c1 - c0))
	wall[$name]=$((wall[$name] + t1 - t0))
	msgs[$name]=$((msgs[$name] + got))
	lost[$name]=$((lost[$name] + l))
	printf '  %-6s %8d messages in %6.2f s, server CPU %6.3f s, lost %d\n' \
		"$name" "$got" "$(echo "($t1 - $t0) / 1000000000" | bc -l)" \
		"$(echo "($c1 - $c0) / 1000000000" | bc -l)" "$l"
}

echo "relay_vs_coturn: $CLIENTS client pairs' worth of $MSGS messages of $SIZE bytes per run, $ROUNDS rounds"
for ((r = 1; r <= ROUNDS; r++)); do
	echo "round $r:"
	run punch
	run coturn
done

echo
printf '%-7s %12s %16s %18s %8s\n' server "messages/s" "CPU us/message" "messages/CPU-s" lost
declare -A cap=()
for name in punch coturn; do
	rate=$(echo "${msgs[$name]} * 1000000000 / ${wall[$name]}" | bc -l)
	us=$(echo "${cpu[$name]} / 1000 / ${msgs[$name]}" | bc -l)
	cap[$name]=$(echo "${msgs[$name]} * 1000000000 / ${cpu[$name]}" | bc -l)
	printf '%-7s %12.0f %16.2f %18.0f %8d\n' "$name" "$rate" "$us" "${cap[$name]}" "${lost[$name]}"
done
printf 'punch/coturn: %.2fx messages per CPU-second (wall rate %.2fx; uclient paces it)\n' \
	"$(echo "${cap[punch]} / ${cap[coturn]}" | bc -l)" \
	"$(echo "(${msgs[punch]} / ${wall[punch]}) / (${msgs[coturn]} / ${wall[coturn]})" | bc -l)"
