#!/usr/bin/env bash
# run_fuzzer.sh FUZZER CORPUS RUNS: fuzz for RUNS executions, starting from
# a scratch copy of CORPUS; fail on any crash, leak or sanitizer report.
#
# What a failure needs in order to be fixed stays in the build directory,
# beside FUZZER, in fuzz-NAME/: the crashing input (crash-*, leak-*,
# timeout-*, as libFuzzer names them) and the whole log, which is also
# shown.  The scratch corpus (the inputs the run found) is removed; the
# committed corpus is never written.
set -euo pipefail
(($# == 3)) || { echo "usage: $0 FUZZER CORPUS RUNS" >&2; exit 2; }
fuzzer=$1 corpus=$2 runs=$3
keep=$(dirname "$fuzzer")/fuzz-$(basename "$fuzzer")
rm -rf "$keep"
mkdir -p "$keep"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r "$corpus"/. "$scratch"/
log=$keep/log.txt
rc=0
"$fuzzer" -runs="$runs" -max_len=2048 -timeout=10 \
	-artifact_prefix="$keep/" "$scratch" >"$log" 2>&1 || rc=$?
if ((rc == 0)); then
	tail -n 5 "$log"
	exit 0
fi
lines=$(wc -l <"$log")
echo "FAIL: $(basename "$fuzzer") exited with status $rc; its log ($log, $lines lines$( ((lines > 300)) && echo ", the last 300 shown")):" >&2
tail -n 300 "$log" | sed 's/^/    | /' >&2
found=0
for input in "$keep"/crash-* "$keep"/leak-* "$keep"/timeout-* "$keep"/oom-* "$keep"/slow-unit-*; do
	[[ -e $input ]] || continue
	found=1
	echo "input kept: $input (replay: $fuzzer $input)" >&2
done
((found)) || echo "no input was saved (see the log above)" >&2
exit 1
