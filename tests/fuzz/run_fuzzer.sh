#!/usr/bin/env bash
# run_fuzzer.sh FUZZER CORPUS RUNS: fuzz for RUNS executions, starting from
# a scratch copy of CORPUS; fail on any crash, leak or sanitizer report.
set -euo pipefail
fuzzer=$1 corpus=$2 runs=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$corpus"/. "$scratch"/
"$fuzzer" -runs="$runs" -max_len=2048 -timeout=10 \
	-artifact_prefix="$scratch/" "$scratch" 2>&1 | tail -n 5
