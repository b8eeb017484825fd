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
# registration).  No traffic leaves loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
ids=${1:-20000} window=${2:-1024} per24=${3:-16} rounds=${4:-3}
lifetime=${LIFETIME:-} duration=${DURATION:-25} log=${LOG:-info}
build=${BUILD_DIR:-build-bench}
port=${PORT:-39478}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target punch regload >/dev/null
tmp=$(mktemp -d)
srv=""
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	[[ -z $srv ]] || kill "$srv" 2>/dev/null || true
	[[ -z $srv ]] || wait "$srv" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
cpu_gen=0
(($(nproc) > 1)) && cpu_gen=1
taskset -c 0 "$build/punch" server -listen "127.0.0.1:$port" -max-peers 1000000 \
	-state "$tmp/state" -log "$log" ${lifetime:+-lifetime "$lifetime"} 2>"$tmp/server.err" &
srv=$!
for ((i = 0; i < 100; i++)); do
	grep -q '^punch server: listening on ' "$tmp/server.err" && break
	kill -0 "$srv" 2>/dev/null || { cat "$tmp/server.err" >&2; exit 1; }
	sleep 0.05
done
grep -q '^punch server: listening on ' "$tmp/server.err" || { echo "regload.sh: the server did not start" >&2; exit 1; }
echo "== $ids ids, window $window, $per24 per /24, $rounds RENEW rounds, lifetime ${lifetime:-30s}, -log $log, server on CPU 0, load average $(cut -d' ' -f1 /proc/loadavg)"
rc=0
taskset -c "$cpu_gen" "$build/bench/regload" -s "127.0.0.1:$port" -n "$ids" -w "$window" \
	-g "$per24" -r "$rounds" -P "$srv" -d "$duration" || rc=$?
kill "$srv"
wait "$srv" || true
srv=""
tail -n 1 "$tmp/server.err"
exit "$rc"
