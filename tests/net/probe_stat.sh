#!/usr/bin/env bash
# Birthday probing's success rate in the lab: symmetric <-> home (scenario
# nat2, alice behind the symmetric NAT, bob behind the home one, the server
# a relay with -alt), PROBE_STAT_RUNS times (default 20); at least
# PROBE_STAT_MIN (default 19) must end on a direct path on both sides.
#
#   probe_stat.sh PATH_TO_PUNCH [BOB_NAT]
#
# BOB_NAT is bob's NAT mode: home (the default, net_probe_stat) or plain
# (net_probe_stat_plain: MASQUERADE without a filter, whose mapping a stray
# entry can move; probe.c, "Moved ports"), or any other lab mode.
#
# Each run is one `scripts/lab run nat2 --nat-a symmetric --nat-b BOB_NAT --alt
# --relay --await-direct 15`: both connect through the relay, birthday
# probing finds a direct pair, the session moves to it ("Path upgraded")
# within 15 s, and the chat lines then cross it.  By the birthday paradox
# 256 sockets and 1,024 probes meet 98.3 % of the time.  The verdict is a
# double sampling plan: 19 of 20 or better passes; 16 or fewer fails; 17 or
# 18 runs PROBE_STAT_RUNS more, and 37 of 40 or better passes.  At a miss
# rate of 1.7 % that fails a working implementation 0.3 % of the time (19
# of 20 alone: 4.5 %, too often for a test every commit runs); at 5 %, the
# issue's bound, it fails 10 % of the time, and at 10 %, 47 %.  A run that
# fails prints its report.  A verdict on a rate, so labelled stat.  Times
# are bench/probe_time.sh's business, not this test's.
#
# PROBE_STAT_JOBS runs (default 4) go at once, each in a lab instance of
# its own (LAB=ps<pid>_<i>) and bounded by PROBE_STAT_RUN_LIMIT_S; the
# cleanup stops any run still going, downs every instance it named, and
# fails if a namespace is left.  About 2 minutes on 2 cores under ASan.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
NAT_B=${2:-home}
(lab_check_mode "$NAT_B") 2>&1 || fail "BOB_NAT '$NAT_B': not a lab NAT mode"

RUNS=${PROBE_STAT_RUNS:-20}
MIN=${PROBE_STAT_MIN:-19}
JOBS=${PROBE_STAT_JOBS:-4}
RUN_LIMIT_S=${PROBE_STAT_RUN_LIMIT_S:-120}
AWAIT_S=15
[[ $RUNS =~ ^[1-9][0-9]?$ && $MIN =~ ^[0-9]+$ && $JOBS =~ ^[1-9]$ ]] ||
	fail "PROBE_STAT_RUNS 1-99, PROBE_STAT_MIN a count, PROBE_STAT_JOBS 1-9; got $RUNS, $MIN, $JOBS"
((MIN <= RUNS)) || fail "PROBE_STAT_MIN=$MIN is more than PROBE_STAT_RUNS=$RUNS"

declare -A RUN_PID=() RUN_RC=()
INSTANCES=()

stat_cleanup() {
	local rc=$?
	trap '' INT TERM
	set +e
	net_runs_down "ps$$" "${RUN_PID[@]}" || rc=1
	(exit "$rc")
	net_cleanup
}
trap stat_cleanup EXIT

start_run() {
	local i=$1 lab="ps$$_$1"
	INSTANCES+=("$lab")
	mkdir -p "$NET_TMP/$i"
	LAB=$lab TMPDIR=$NET_TMP/$i timeout -k 5 "$RUN_LIMIT_S" "$LAB_SCRIPT" run nat2 \
		--nat-a symmetric --nat-b "$NAT_B" --relay --alt --await-direct "$AWAIT_S" --timeout 30 \
		>"$NET_TMP/$i.out" 2>"$NET_TMP/$i.err" &
	RUN_PID[$i]=$!
}

reap() {
	local pid rc=0 i
	wait -n -p pid "${RUN_PID[@]}" || rc=$?
	for i in "${!RUN_PID[@]}"; do
		[[ ${RUN_PID[$i]} == "$pid" ]] || continue
		RUN_RC[$i]=$rc
		unset 'RUN_PID[$i]'
	done
}

# runs FROM TO: runs FROM to TO-1, PROBE_STAT_JOBS at a time.
runs() {
	local i
	for ((i = $1; i < $2; i++)); do
		while ((${#RUN_PID[@]} >= JOBS)); do
			reap
		done
		start_run "$i"
	done
	while ((${#RUN_PID[@]})); do
		reap
	done
}

# count FROM TO: adds to DIRECT the runs FROM to TO-1 that ended on a direct
# path on both sides, and prints each.
DIRECT=0
direct_re='^(alice|bob): [0-9.]+:[0-9]+ -> [0-9.]+:[0-9]+ \((host|srflx|prflx)\) in [0-9]+ ms$'
count() {
	local i n line
	for ((i = $1; i < $2; i++)); do
		n=0
		if ((RUN_RC[$i] == 0)); then
			while IFS= read -r line; do
				[[ $line =~ $direct_re ]] && n=$((n + 1))
			done <"$NET_TMP/$i.out"
		fi
		if ((n == 2)); then
			DIRECT=$((DIRECT + 1))
			echo "  run $i: direct ($(tr '\n' ' ' <"$NET_TMP/$i.out"))"
		else
			echo "  run $i: NOT direct (status ${RUN_RC[$i]}): $(tr '\n' ' ' <"$NET_TMP/$i.out")"
			sed "s/^/[run $i] /" "$NET_TMP/$i.err" | tail -n 60 >&2
		fi
	done
}

echo "== $RUNS runs of symmetric-$NAT_B (--relay --await-direct $AWAIT_S), $JOBS at a time"
runs 0 "$RUNS"
count 0 "$RUNS"
echo "symmetric-$NAT_B: $DIRECT of $RUNS runs direct (at least $MIN expected)"
# The second sample: as many runs again, when the first missed by 2 or 3
# (with the defaults); together they may miss by as many as the first
# sample's 1 and 2 more.
MISS_OK=$((RUNS - MIN))
if ((DIRECT < MIN && RUNS - DIRECT <= MISS_OK + 2)); then
	echo "== $DIRECT of $RUNS is neither pass nor fail: $RUNS runs more"
	runs "$RUNS" $((2 * RUNS))
	count "$RUNS" $((2 * RUNS))
	MIN=$((2 * RUNS - MISS_OK - 2))
	RUNS=$((2 * RUNS))
	echo "symmetric-$NAT_B: $DIRECT of $RUNS runs direct (at least $MIN expected)"
fi
((DIRECT >= MIN)) || fail "symmetric-$NAT_B went direct in $DIRECT of $RUNS runs; expected at least $MIN"
echo PASS
