#!/usr/bin/env bash
# CPU per REGISTER and bytes per registration in the rendezvous registry, at
# 4,096 and 1,000,000 registrations: the registry now, and the one before
# the per-prefix limits (commit BASE) built from the same benchmark.
#
#   bench/register_scale.sh [BASE]      (default 54e601c)
#
# The old registry counted registrations per address by scanning its whole
# preallocated table on every new id, so it cannot be filled to 1,000,000
# with that check on in any reasonable time: at 1,000,000 it is measured
# with 2,000 held, which costs it the same (the scan covers every slot of
# the capacity, used or not), and its memory is per slot of capacity.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-54e601c}
build=${BUILD_DIR:-build-bench}

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j2 --target register_scale >/dev/null
old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git archive "$base" src | tar -x -C "$old"
cc -std=c11 -O3 -DNDEBUG -D_GNU_SOURCE -DREGISTRY_OLD -I"$old/src" \
	bench/register_scale.c "$old/src/registry.c" "$old/src/addr.c" \
	-o "$old/register_scale"

echo "== this tree ($(git rev-parse --short HEAD))"
"$build/bench/register_scale" 4096:4096:128 1000000:1000000:10000
echo "== before ($base)"
"$old/register_scale" 4096:4096:128 1000000:2000:40
