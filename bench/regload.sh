#!/usr/bin/env bash
# regload.sh - signed registrations and introductions per second against
# punch's server on loopback, the server's CPU per registration and its
# memory per registration held (bench/regload.c does the work; see there).
#
#   bench/regload.sh [IDS [WINDOW [PER_24 [ROUNDS]]]]
#                                      (default 20000 1024 16 3)
#
# Builds a Release tree in build-bench/, starts `punch server -listen
# 127.0.0.1:PORT -max-peers 1000000` with a scratch -state, pinned to CPU 0
# (the generator to CPU 1 when there are two), runs regload against it with
# -P (the server's pid, for /proc's CPU time and resident set), stops the
# server and removes the scratch directory, also on failure or Ctrl-C.
# Registrations live 30 s without a refresh; regload refreshes none while
# it registers, so that phase is bounded to 25 s (regload -d), and "held"
# means every registration made.  Then ROUNDS rounds of RENEW from every
# id (regload -r; 0: none), measured apart: the server's CPU per RENEW.
#
# Environment: LIFETIME (the server's -lifetime, e.g. 1800s, with DURATION,
# regload's -d in seconds, to hold more than 30 s of registrations: the
# 1,000,000 run is `LIFETIME=3600s DURATION=3000 LOG=quiet bench/regload.sh
# 1000000 4096 16 0`); LOG (the server's -log, default info, a line per
# registration); REDIS=1 (a redis-server of its own on a free loopback
# port, the server with -registry redis://: no RENEW there, so ROUNDS is
# 0, and Redis's used_memory and CPU per registration are printed too).
# No traffic leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
ids=${1:-20000} window=${2:-1024} per24=${3:-16} rounds=${4:-3}
lifetime=${LIFETIME:-} duration=${DURATION:-25} log=${LOG:-info}
redis=${REDIS:-}
[[ -z $redis ]] || rounds=0
build=${BUILD_DIR:-build-bench}
port=${PORT:-39478}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target punch regload >/dev/null
tmp=$(mktemp -d)
srv="" rds="" registry=()
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	[[ -z $srv ]] || kill "$srv" 2>/dev/null || true
	[[ -z $srv ]] || wait "$srv" 2>/dev/null || true
	[[ -z $rds ]] || kill "$rds" 2>/dev/null || true
	[[ -z $rds ]] || wait "$rds" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
if [[ -n $redis ]]; then
	rport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
		--dir "$tmp" --logfile "$tmp/redis.log" &
	rds=$!
	for ((i = 0; i < 100; i++)); do
		[[ $(redis-cli -p "$rport" ping 2>/dev/null) == PONG ]] && break
		sleep 0.1
	done
	registry=(-registry "redis://127.0.0.1:$rport")
	rmem() { redis-cli -p "$rport" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }
	rcpu() { awk '{ print $14 + $15 }' "/proc/$rds/stat"; }
	m0=$(rmem) c0=$(rcpu)
fi
cpu_gen=0
(($(nproc) > 1)) && cpu_gen=1
taskset -c 0 "$build/punch" server -listen "127.0.0.1:$port" -max-peers 1000000 \
	-state "$tmp/state" -log "$log" ${lifetime:+-lifetime "$lifetime"} "${registry[@]}" \
	2>"$tmp/server.err" &
srv=$!
for ((i = 0; i < 100; i++)); do
	grep -q '^punch server: listening on ' "$tmp/server.err" && break
	kill -0 "$srv" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
	sleep 0.05
done
grep -q '^punch server: listening on ' "$tmp/server.err" || { echo "regload.sh: the server did not start" >&2; exit 1; }
echo "== $ids ids, window $window, $per24 per /24, $rounds RENEW rounds, lifetime ${lifetime:-30s}, -log $log,${redis:+ registry in Redis (on CPU 0 too),} server on CPU 0, load average $(cut -d' ' -f1 /proc/loadavg)"
rc=0
taskset -c "$cpu_gen" "$build/bench/regload" -s "127.0.0.1:$port" -n "$ids" -w "$window" \
	-g "$per24" -r "$rounds" -P "$srv" -d "$duration" || rc=$?
if [[ -n $redis ]]; then
	m1=$(rmem) c1=$(rcpu)
	echo "redis: keys=$(redis-cli -p "$rport" dbsize) bytes_per_registration=$(((m1 - m0) / ids))" \
		"cpu_us_per_registration=$(awk -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$ids" 'BEGIN { printf "%.1f", c / hz / n * 1e6 }')"
fi
kill "$srv"
wait "$srv" || true
srv=""
tail -n 1 "$tmp/server.err"
exit "$rc"
