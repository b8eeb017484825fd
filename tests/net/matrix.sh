#!/usr/bin/env bash
# Every pair of NAT modes, with the lab's server a TURN relay: does each pair
# connect and chat, and by which path does each side go?
#
#   matrix.sh PATH_TO_PUNCH [PAIR...]
#
# A PAIR is ALICE_MODE-BOB_MODE (scenario nat2: alice behind nata, bob behind
# natb), e.g. symmetric-home; either order of a pair in the table below works
# (its expectations are then mirrored), and a pair the table lacks runs
# without a verdict.  With no PAIR, all 28 unordered pairs of the seven NAT
# modes run; ctest's net_matrix does that.
#
# Each pair is one `scripts/lab run nat2 --nat-a A --nat-b B --alt --relay`
# (server with -alt, so that the clients run the mapping test and birthday
# probing can start, and -auth-secret, so every REGISTER success carries
# relay credentials; a pair expected direct also gets --await-direct),
# which checks that both connect, a chat line each way and quit, and prints
# each side's path.  Up to MATRIX_JOBS (default 5) pairs run at once, each in
# a lab instance of its own (LAB=m<pid>_<i>), each bounded by
# MATRIX_RUN_LIMIT_S; the lab run removes its instance itself, and this
# script's cleanup stops any run still going and downs every instance it
# named, then fails if a namespace is left.
#
# By hand: MATRIX_RELAY=0 runs without --relay (the matrix before the
# relay); MATRIX_LAB_ARGS adds lab run options, split at spaces (e.g.
# MATRIX_LAB_ARGS="--client-args -direct-only").
#
# The expectations are the table EXPECT: "direct" is a host, srflx or prflx
# pair; "relay" is "relay via ADDR" (either side's line may name the relay).
# Seen with the client before its relay support (December 2026; the same
# without --relay and with it, the server's relay credentials ignored): the
# 12 direct pairs connect, srflx both ways in 53-105 ms ('punch took'),
# except that against a symmetric NAT the cone side's remote is
# peer-reflexive (the symmetric side's new port); the 3 relay pairs fail
# after 10 s ("no direct path to bob: none of 2 candidate pairs answered
# within 10 s").  The whole matrix takes 40-65 s on 2 cores.
# Seen with birthday probing (December 2026, --alt --relay, ASan build): the
# 12 cone pairs as before (69-215 ms); symmetric-home and symmetric-plain
# connect through the relay at about 500 ms, then probing finds a direct
# pair and both move to it 0.8-3.3 s after the peer info (srflx at the
# symmetric side, prflx at the other); symmetric-symmetric stays on the
# relay.  About 95 s in all.  symmetric-plain went direct in about 11 of 15
# runs at first.  In the others natb gave bob's probes another source port
# than the one the server saw.  conntrack -E in natb showed why: alice's
# check through her relay (198.51.100.10:56344 -> 192.0.2.10:44970) reached
# natb 40 us before bob's own first packet to her relayed address, so natb
# kept a stray entry for it; bob's flow to that address then had to take a
# new port (52372), and from then on conntrack gave every new flow of bob's
# socket that same port (it reuses the newest mapping of a source,
# nf_nat_core.c's find_appropriate_src), his probes included, which alice's
# mappings, opened toward 44970, did not admit.  About one run in four loses
# that race.  Since then alice's probe sockets also aim at every other port
# of bob's address that she has seen him use (his check through her relay
# comes from the new port): probe.c, "Moved ports"; the row is direct, and
# net_probe_stat_plain checks 19 of 20 (or 37 of 40).
#
# sequential (the lab's symmetric NAT with a sequential allocator: each new
# flow takes the next port): against a cone the easy side predicts the
# hard side's ports from PUNCH-NAT's delta (probe.c) and lands at its
# first or second probe.  Seen in December 2026 (ASan build): direct about
# 0.4 s after the peer info, before the relay's 500 ms, against home and
# plain alike.  All 28 pairs took 105 s on 2 cores (3.5 min with the
# machine loaded by other builds).
#
# udpblock (the lab's "UDP blocked" NAT: home, and every outbound UDP packet
# dropped, TCP allowed): its side gets no UDP answer from the server, says
# so after 1 s, and reaches the server over TCP (Binding, REGISTER, TURN);
# its relayed address is the only candidate that can work, so each of its
# pairs is relayed.  Seen in December 2026: all 6 connect via the relay,
# 'punch took' 500-530 ms (the relay's 500 ms wait), about 1.5 s from start
# to "Connection established" on the udpblock side (the 1 s UDP wait, then
# TCP).  The 21 pairs (before sequential) took about 45-80 s on 2 cores.  TLS (only port 443
# out) is tests/net/udpblock.sh's, not the matrix's.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
shift

MODES=(fullcone restricted home plain symmetric sequential udpblock)
MATRIX_JOBS=${MATRIX_JOBS:-5}
MATRIX_RUN_LIMIT_S=${MATRIX_RUN_LIMIT_S:-120} # one lab run, end to end
MATRIX_CONNECT_S=30                            # lab run --timeout: to connect, per chat line
MATRIX_RELAY=${MATRIX_RELAY:-1}
# A pair expected direct that connected through the relay (a symmetric NAT
# against a cone: birthday probing finds the direct pair after the relay)
# must upgrade within this long (lab run --await-direct; 1-5 s seen).
MATRIX_AWAIT_DIRECT_S=15
[[ $MATRIX_JOBS =~ ^[1-9][0-9]?$ ]] || fail "MATRIX_JOBS='$MATRIX_JOBS': expected 1 to 99"
[[ $MATRIX_RUN_LIMIT_S =~ ^[1-9][0-9]*$ ]] || fail "MATRIX_RUN_LIMIT_S='$MATRIX_RUN_LIMIT_S': expected whole seconds"

# alice-bob             alice   bob     why
EXPECT='
fullcone-fullcone       direct  direct
fullcone-restricted     direct  direct
fullcone-home           direct  direct
fullcone-plain          direct  direct
fullcone-symmetric      direct  direct  bob'"'"'s new port toward alice: prflx at alice, whose full cone lets it in
restricted-restricted   direct  direct
restricted-home         direct  direct
restricted-plain        direct  direct
restricted-symmetric    direct  direct  as fullcone: alice'"'"'s restricted cone admits any port of bob'"'"'s address she sent to
home-home               direct  direct
home-plain              direct  direct
plain-plain             direct  direct  the small-TTL first probe (docs/protocol.md)
symmetric-home          direct  direct  birthday probing (alice'"'"'s port toward bob is new), after the relay
symmetric-plain         direct  direct  birthday probing, after the relay; alice aims at the port natb may have moved bob'"'"'s mapping to, too
symmetric-symmetric     relay   relay   neither side'"'"'s port toward the other is known
sequential-fullcone     direct  direct  as symmetric-fullcone
sequential-restricted   direct  direct  as symmetric-restricted
sequential-home         direct  direct  port prediction: bob probes the ports after alice'"'"'s server-reflexive one first
sequential-plain        direct  direct  likewise
sequential-symmetric    relay   relay   two hard NATs: no probing
sequential-sequential   relay   relay   likewise
udpblock-fullcone       relay   relay   alice'"'"'s UDP never leaves her NAT: only her relayed address, reached over TCP, works
udpblock-restricted     relay   relay   likewise
udpblock-home           relay   relay   likewise
udpblock-plain          relay   relay   likewise
udpblock-symmetric      relay   relay   likewise
udpblock-sequential     relay   relay   likewise
udpblock-udpblock       relay   relay   both relayed, each over its own TCP connection
'

declare -A WANT_A=() WANT_B=()
ALL_PAIRS=()
while read -r pair a b _; do
	[[ -n ${pair:-} ]] || continue
	WANT_A[$pair]=$a WANT_B[$pair]=$b
	ALL_PAIRS+=("$pair")
done <<<"$EXPECT"
# The table is the whole matrix: each unordered pair of MODES once.
for ((x = 0; x < ${#MODES[@]}; x++)); do
	for ((y = x; y < ${#MODES[@]}; y++)); do
		p=${MODES[x]}-${MODES[y]} q=${MODES[y]}-${MODES[x]}
		[[ -n ${WANT_A[$p]:-} || -n ${WANT_A[$q]:-} ]] || fail "EXPECT has no row for $p"
		[[ $p == "$q" || -z ${WANT_A[$p]:-} || -z ${WANT_A[$q]:-} ]] || fail "EXPECT has both $p and $q"
	done
done
((${#ALL_PAIRS[@]} == ${#MODES[@]} * (${#MODES[@]} + 1) / 2)) ||
	fail "EXPECT has ${#ALL_PAIRS[@]} rows; expected one per unordered pair of ${MODES[*]}"

# expect_of PAIR: sets EXP_A and EXP_B ("-": no verdict) for PAIR as named,
# mirroring the table's entry for the other order.
expect_of() {
	local pair=$1 a=${1%-*} b=${1#*-}
	if [[ -n ${WANT_A[$pair]:-} ]]; then
		EXP_A=${WANT_A[$pair]} EXP_B=${WANT_B[$pair]}
	elif [[ -n ${WANT_A[$b-$a]:-} ]]; then
		EXP_A=${WANT_B[$b-$a]} EXP_B=${WANT_A[$b-$a]}
	else
		EXP_A=- EXP_B=-
	fi
}

PAIRS=("$@")
((${#PAIRS[@]})) || PAIRS=("${ALL_PAIRS[@]}")
((${#PAIRS[@]} <= 50)) || fail "at most 50 pairs at a time; got ${#PAIRS[@]}"
for pair in "${PAIRS[@]}"; do
	[[ $pair =~ ^([a-z]+)-([a-z]+)$ ]] || fail "pair '$pair': expected ALICE_MODE-BOB_MODE, e.g. symmetric-home"
	(lab_check_mode "${BASH_REMATCH[1]}" && lab_check_mode "${BASH_REMATCH[2]}") 2>&1 ||
		fail "pair '$pair': unknown NAT mode"
done

# --alt: the server's RFC 5780 alternate port, so that the clients know
# their NATs' mappings and probe where one maps per destination.
LAB_ARGS=(--alt)
((MATRIX_RELAY)) && LAB_ARGS+=(--relay)
if [[ -n ${MATRIX_LAB_ARGS:-} ]]; then
	read -r -a extra <<<"$MATRIX_LAB_ARGS"
	LAB_ARGS+=("${extra[@]}")
fi

# ------------------------------------------------------------ the runs

declare -A RUN_PID=() # index -> pid of its `timeout ... scripts/lab run`
INSTANCES=()

matrix_instance() {
	printf 'm%s_%s' "$$" "$1"
}

# matrix_cleanup: the EXIT trap.  Stops every run still going (the lab's own
# TERM handling downs its instance), downs every instance this script named,
# then lib.sh's net_cleanup; a namespace left behind fails the test.
matrix_cleanup() {
	local rc=$?
	# Bounded (about 30 s at most), and not to be cut short by a second
	# signal: an `exit` from a trap inside this one would leave the runs going.
	trap '' INT TERM
	set +e
	net_runs_down "m$$" "${RUN_PID[@]}" || rc=1
	(exit "$rc")
	net_cleanup
}
trap matrix_cleanup EXIT

# run_pair I PAIR: starts pair I's lab run in the background.
run_pair() {
	local i=$1 pair=$2 lab await=()
	lab=$(matrix_instance "$i")
	expect_of "$pair"
	[[ $EXP_A != direct ]] || await=(--await-direct "$MATRIX_AWAIT_DIRECT_S")
	INSTANCES+=("$lab")
	mkdir -p "$NET_TMP/$i"
	LAB=$lab TMPDIR=$NET_TMP/$i timeout -k 5 "$MATRIX_RUN_LIMIT_S" "$LAB_SCRIPT" run nat2 \
		--nat-a "${pair%-*}" --nat-b "${pair#*-}" --timeout "$MATRIX_CONNECT_S" "${await[@]}" "${LAB_ARGS[@]}" \
		>"$NET_TMP/$i.out" 2>"$NET_TMP/$i.err" &
	RUN_PID[$i]=$!
	lab_now
	START_MS[$i]=$LAB_NOW
}

# reap: waits for one run to end, records its status and wall time.
reap() {
	local pid rc=0 i
	wait -n -p pid "${RUN_PID[@]}" || rc=$?
	for i in "${!RUN_PID[@]}"; do
		[[ ${RUN_PID[$i]} == "$pid" ]] || continue
		RUN_RC[$i]=$rc
		lab_now
		WALL_MS[$i]=$((LAB_NOW - START_MS[$i]))
		unset 'RUN_PID[$i]'
		echo "  done: ${PAIRS[$i]} (status $rc, $((WALL_MS[$i] / 1000)) s)"
	done
}

declare -A START_MS=() WALL_MS=() RUN_RC=()
echo "== ${#PAIRS[@]} pairs, scenario nat2 ${LAB_ARGS[*]}, $MATRIX_JOBS at a time"
for i in "${!PAIRS[@]}"; do
	while ((${#RUN_PID[@]} >= MATRIX_JOBS)); do
		reap
	done
	echo "  start: ${PAIRS[$i]} (LAB=$(matrix_instance "$i"))"
	run_pair "$i" "${PAIRS[$i]}"
done
while ((${#RUN_PID[@]})); do
	reap
done

# ------------------------------------------------------------ the verdicts

# side OUT ID: sets KIND (host, srflx, prflx or "relay via ADDR") and MS
# from ID's path line, or KIND=- when there is none.
side() {
	local line re="^$2: [0-9.]+:[0-9]+ -> [0-9.]+:[0-9]+ \\(((host|srflx|prflx|mapped|relay)( via [^ )]+)?)\\) in ([0-9]+) ms\$"
	line=$(grep -E "^$2: " "$1" || true)
	KIND=- MS=-
	[[ $line =~ $re ]] || return 0
	KIND=${BASH_REMATCH[1]} MS=${BASH_REMATCH[4]}
}

# matches WANT KIND: direct is host, srflx or prflx; relay is relay (via ...).
matches() {
	case $1 in
	direct) [[ $2 == host || $2 == srflx || $2 == prflx ]] ;;
	relay) [[ $2 == relay || $2 == "relay via "* ]] ;;
	-) true ;;
	*) [[ $2 == "$1" ]] ;;
	esac
}

# judge I: sets WHY (empty when run I connected as the table expects),
# CONNECTED, and KIND_A, MS_A, KIND_B, MS_B from run I's output.
judge() {
	local i=$1 pair=${PAIRS[$1]} rc=${RUN_RC[$1]} who error
	expect_of "$pair"
	side "$NET_TMP/$i.out" alice
	KIND_A=$KIND MS_A=$MS
	side "$NET_TMP/$i.out" bob
	KIND_B=$KIND MS_B=$MS
	WHY=""
	if ((rc == 124 || rc == 137)); then
		WHY="lab run still going after $MATRIX_RUN_LIMIT_S s, killed"
	elif ((rc != 0)); then
		WHY=$(grep -m1 -E '^lab run: FAIL: |^lab: ' "$NET_TMP/$i.err" | sed 's/^lab run: FAIL: //' || true)
		WHY=${WHY:-"lab run exited with status $rc"}
		# The client's own reason, from its log as the lab printed it
		# ("---- alice.err (last 200 lines) ----", lines "  | ...").
		who=${WHY%%:*}
		[[ $who == alice || $who == bob ]] || who=alice
		error=$(awk -v head="---- $who.err " '
			index($0, "---- ") == 1 { on = index($0, head) == 1; next }
			on && sub(/^  \| punch: error: /, "") { print; exit }' "$NET_TMP/$i.err")
		[[ -z $error ]] || WHY+=" ($who: $error)"
	elif [[ $KIND_A == - || $KIND_B == - ]]; then
		WHY="no path line for alice or bob"
	elif ! matches "$EXP_A" "$KIND_A" || ! matches "$EXP_B" "$KIND_B"; then
		WHY="expected alice $EXP_A, bob $EXP_B"
	fi
	CONNECTED=no
	((rc == 0)) && CONNECTED=yes
	return 0
}

# Birthday probing between a random symmetric NAT and a cone is a matter of
# chance: 256 mappings against 1,024 probes over about 64,000 ports miss
# about 2 % of the time (net_probe_stat and net_probe_stat_plain measure
# the rate: 19 of 20, or 37 of 40).  Such a pair that failed only because the
# probing ran out ("Probing: no answer after N packets" in the report) is
# run once more, and the table says so; any other failure stands.  Two
# misses in a row, about 1 in 2,500, fail the matrix.
CHANCE_PAIRS=" symmetric-home home-symmetric symmetric-plain plain-symmetric "
declare -A RETRY_OF=() # index of a second try -> index of the first
first_runs=${#PAIRS[@]}
for ((i = 0; i < first_runs; i++)); do
	[[ $CHANCE_PAIRS == *" ${PAIRS[$i]} "* ]] || continue
	judge "$i"
	[[ -n $WHY ]] || continue
	grep -q 'Probing: no answer after' "$NET_TMP/$i.err" || continue
	j=${#PAIRS[@]}
	PAIRS[j]=${PAIRS[$i]}
	RETRY_OF[$j]=$i
	echo "  again: ${PAIRS[$i]} (its probing missed: $WHY)"
	run_pair "$j" "${PAIRS[$j]}"
done
while ((${#RUN_PID[@]})); do
	reap
done

failed=0
TABLE=()
for ((first = 0; first < first_runs; first++)); do
	i=$first pair=${PAIRS[$first]} note=""
	for j in "${!RETRY_OF[@]}"; do
		((RETRY_OF[$j] == first)) || continue
		judge "$first"
		note=" (second try; the first missed: $WHY)"
		echo "---- $pair: scripts/lab run's report, first try ----" >&2
		sed "s/^/[$pair, first try] /" "$NET_TMP/$first.err" >&2
		i=$j
	done
	rc=${RUN_RC[$i]}
	judge "$i"
	kind_a=$KIND_A ms_a=$MS_A kind_b=$KIND_B ms_b=$MS_B why=$WHY connected=$CONNECTED
	if [[ -n $why ]]; then
		verdict="FAIL: $why"
		[[ $EXP_A == - ]] || failed=$((failed + 1))
		[[ $EXP_A != - ]] || verdict="(no verdict) $why"
		if ((rc != 0)); then
			echo "---- $pair: scripts/lab run's report ----" >&2
			sed "s/^/[$pair] /" "$NET_TMP/$i.err" >&2
		fi
	elif [[ $EXP_A == - ]]; then
		verdict="(no verdict)"
	else
		verdict=ok
	fi
	verdict+=$note
	cell_a=$kind_a cell_b=$kind_b
	[[ $ms_a == - ]] || cell_a+=" $ms_a ms"
	[[ $ms_b == - ]] || cell_b+=" $ms_b ms"
	TABLE+=("$(printf '%-22s %-9s %-36s %-36s %-15s %6s  %s' "$pair" "$connected" "$cell_a" "$cell_b" \
		"$EXP_A/$EXP_B" "$((WALL_MS[$i] / 1000)) s" "$verdict")")
done

echo
echo "NAT matrix: scenario nat2 ${LAB_ARGS[*]}; alice behind nata (first mode), bob behind natb; times are each side's 'punch took'"
printf '%-22s %-9s %-36s %-36s %-15s %6s  %s\n' "alice-bob" connected "alice's path" "bob's path" expected "run" verdict
for row in "${TABLE[@]}"; do
	printf '%s\n' "$row"
done
echo
((failed == 0)) || fail "$failed of $first_runs pairs did not connect as the table expects (reports above)"
echo PASS
