#!/usr/bin/env bash
# probe_time.sh - birthday probing in the lab: symmetric <-> home (scenario
# nat2: alice behind the symmetric NAT, bob behind the home one; the server
# a relay, with -alt), RUNS times, one after the other.
#
# Each run is `scripts/lab run nat2 --nat-a symmetric --nat-b home --relay --alt
# --await-direct AWAIT_S --keep`: both connect through the relay, probe,
# and must move to a direct pair ("Path upgraded") within AWAIT_S.  Per run
# it reads the clients' logs:
#   - time to direct: the later side's "ms after the peer info" on its
#     "Path upgraded" line (or its "punch took" when the direct pair came
#     before the relay's), from PEER-INFO, as the client measures it;
#   - packets: probing's datagrams, both sides together (the "Probing: ...
#     N packets sent" lines; the agent's ordinary checks are not counted);
#   - success: both sides on a direct path.
# and prints each run, then the median and 95th percentile of the times
# (of the successful runs; nearest rank), the success rate and the packets
# (median, maximum).  Targets (issue 10): median <= 3 s, >= 95 %, <= 1,500
# packets.
#
# NAT_A=sequential runs the same against the lab's sequential NAT (a new
# flow takes the next port), where the easy side predicts the hard side's
# ports (PUNCH-NAT's delta) before probing random ones: compare its
# packets and times with the default's.  NAT_B=plain puts bob behind the
# NAT without a filter.
#
# Usage: bench/probe_time.sh          (as root)
# Environment: PUNCH (default build/punch, a Release build), RUNS (20),
#   AWAIT_S (15), LAB (instance name, default pb<pid>), NAT_A (alice's
#   NAT, default symmetric), NAT_B (bob's, default home).
# Every run's instance is removed after it (an EXIT trap removes a
# leftover one too); every wait is the lab's, bounded.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PUNCH=${PUNCH:-$REPO/build/punch}
RUNS=${RUNS:-20}
AWAIT_S=${AWAIT_S:-15}
LAB=${LAB:-pb$$}
NAT_A=${NAT_A:-symmetric}
NAT_B=${NAT_B:-home}
export PUNCH LAB
[[ -x $PUNCH ]] || { echo "probe_time: PUNCH=$PUNCH is not an executable" >&2; exit 1; }
((EUID == 0)) || { echo "probe_time: needs root (the lab)" >&2; exit 1; }
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "probe_time: RUNS=$RUNS: expected a count" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/probe_time.XXXXXX")
cleanup() {
	"$REPO/scripts/lab" down >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

times=() packets=() ok=0
printf '%4s %8s %8s %8s  %s\n' run result ms packets "paths (alice / bob)"
for ((i = 1; i <= RUNS; i++)); do
	rc=0
	timeout -k 5 120 "$REPO/scripts/lab" run nat2 --nat-a "$NAT_A" --nat-b "$NAT_B" \
		--relay --alt --await-direct "$AWAIT_S" --timeout 30 --keep \
		>"$WORK/out" 2>"$WORK/err" || rc=$?
	logs=$(grep -o 'logs in /[^ ]*' "$WORK/err" | head -n 1 | cut -d' ' -f3 || true)
	pk=0 ms=0 n=0
	if [[ -n $logs && -d $logs ]]; then
		for id in alice bob; do
			p=$(grep -oE '^Probing: .* ([0-9]+) packets' "$logs/$id.err" | grep -oE '[0-9]+ packets' | tail -n 1 | cut -d' ' -f1 || true)
			pk=$((pk + ${p:-0}))
		done
		rm -rf "$logs"
	fi
	while IFS= read -r line; do
		if [[ $line =~ \((host|srflx|prflx)\)\ in\ ([0-9]+)\ ms$ ]]; then
			n=$((n + 1))
			((BASH_REMATCH[2] > ms)) && ms=${BASH_REMATCH[2]}
		fi
	done <"$WORK/out"
	"$REPO/scripts/lab" down >/dev/null 2>&1 || true
	paths=$(sed -E 's/^[a-z]+: //' "$WORK/out" | tr '\n' '/' | sed 's#/$##; s#/# / #')
	if ((rc == 0 && n == 2)); then
		ok=$((ok + 1))
		times+=("$ms")
		printf '%4d %8s %8d %8d  %s\n' "$i" direct "$ms" "$pk" "$paths"
	else
		printf '%4d %8s %8s %8d  %s\n' "$i" "FAILED" - "$pk" "status $rc: $(grep -m1 'FAIL' "$WORK/err" || true)"
	fi
	packets+=("$pk")
done

# nearest-rank percentile P of the sorted list
pct() {
	local p=$1
	shift
	local n=$#
	local k=$(((p * n + 99) / 100))
	((k < 1)) && k=1
	echo "${!k}"
}
mapfile -t st < <(printf '%s\n' "${times[@]}" | sort -n)
mapfile -t sp < <(printf '%s\n' "${packets[@]}" | sort -n)
echo
echo "$NAT_A <-> $NAT_B, $RUNS runs (scripts/lab --relay --alt --await-direct $AWAIT_S; $(basename "$PUNCH"))"
echo "  direct:           $ok of $RUNS ($((100 * ok / RUNS)) %)"
if ((ok)); then
	echo "  time to direct:   median $(pct 50 "${st[@]}") ms, p95 $(pct 95 "${st[@]}") ms (from the peer info)"
fi
echo "  probing packets:  median $(pct 50 "${sp[@]}"), max ${sp[-1]} (both sides)"
