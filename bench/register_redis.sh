#!/usr/bin/env bash
# Registrations/s through the shared registry in Redis, with one server,
# the bytes Redis holds per registration, and the latency Redis adds to an
# introduction across two servers (bench/register_redis.c), against a
# redis-server of its own on a free loopback port.
#
#   bench/register_redis.sh [N [WINDOW [TRIALS]]]   (default 100000 1024 500)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000} window=${2:-1024} trials=${3:-500}
build=${BUILD_DIR:-build-bench}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target register_redis >/dev/null
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
	--dir "$dir" --logfile "$dir/redis.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
	[[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && break
	sleep 0.1
done
mem() { redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }'; }
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
m0=$(mem) c0=$(cpu)
echo "== redis-server $(redis-server --version | awk '{ print $3 }'), $n registrations, window $window"
"$build/bench/register_redis" "redis://127.0.0.1:$port" "$n" "$window" "$trials"
m1=$(mem) c1=$(cpu)
keys=$(redis-cli -p "$port" dbsize)
hz=$(getconf CLK_TCK)
echo "redis: keys=$keys bytes_per_registration=$(((m1 - m0) / n)) (used_memory, bindings and pair keys included)" \
	"cpu_per_registration=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v n="$n" -v t="$trials" 'BEGIN { printf "%.1fus", c / hz / (n + 2 * t) * 1e6 }')"
