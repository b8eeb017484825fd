#!/usr/bin/env bash
# Interop: coturn's turnutils_natdiscovery (RFC 5780 NAT behaviour discovery)
# against `punch server -listen 127.0.0.1:P1 -alt 127.0.0.2:P2`.
#
#   natdiscovery.sh PATH_TO_PUNCH     test punch
#   natdiscovery.sh coturn            run the same checks against coturn's
#                                     turnserver, to confirm the expected
#                                     transcripts (no stop-line checks)
#
# On loopback there is no NAT, so the tool must conclude "No NAT", endpoint
# independent mapping and filtering, and see its hairpinned request.  What it
# prints is normalized (stunwire.py normalize: one fact a line, the server's
# ports as P1/P2, client ports as c1, c2... per section) and diffed against
# the transcript expected from a correct RFC 5780 server: every response's
# RESPONSE-ORIGIN, OTHER-ADDRESS and mapped address, and "Local addr" (the
# client's own getsockname()) equal to the mapped address.
#
# The tool cannot see where a datagram really came from, so stunwire.py
# rfc5780 checks that too: each of the four sockets answers for itself and
# CHANGE-REQUEST moves the answer to the right one.
#
# Runs: -H -m -f -c (hairpin, mapping, filtering, collision from 127.0.0.3),
# -t -T 1 (mapping lifetime; uses RESPONSE-PORT) and -P -m -f (with a
# 1500-byte PADDING).  punch honours RESPONSE-PORT and PADDING (README, "What
# the server answers"), so against punch the transcripts are pinned and
# stunwire.py attr-probe must say so.  RESPONSE-PORT and PADDING are optional
# in RFC 5780, so only the coturn reference run lets the expected transcripts
# follow from what attr-probe finds (support, or 420: the only other correct
# answer).  Traffic stays on 127.0.0.0/8.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap interop_cleanup EXIT
trap 'exit 130' INT TERM
need turnutils_natdiscovery

REFERENCE=0
if [[ ${1:-} == coturn ]]; then
	REFERENCE=1
	need turnserver
	STUNWIRE+=(--coturn)
else
	require_punch "${1:-}"
fi

# start_coturn: coturn's STUN-only server with the same four sockets
# (127.0.0.1 and 127.0.0.2, ports P1 and P2).  It prints no start line, so we
# poll it with Binding requests, bounded.
start_coturn() {
	"${ORPHAN_GUARD[@]}" turnserver -n --stun-only --no-cli --no-tls --no-dtls -m 1 \
		--listening-ip 127.0.0.1 --listening-ip 127.0.0.2 \
		--listening-port "$P1" --alt-listening-port "$P2" \
		--log-file stdout --pidfile "$TMP/turnserver.pid" -b "$TMP/turndb" \
		>"$TMP/turnserver.log" 2>&1 &
	PUNCH_PID=$!
	STARTED_PIDS+=("$PUNCH_PID")
	"${STUNWIRE[@]}" wait-binding 127.0.0.1 "$P2" "$START_DEADLINE_S" >/dev/null &&
		"${STUNWIRE[@]}" wait-binding 127.0.0.2 "$P2" "$START_DEADLINE_S" >/dev/null
}

started=0
for attempt in 1 2 3 4 5; do
	read -r P1 P2 < <("${STUNWIRE[@]}" freeports 2 127.0.0.1 127.0.0.2) ||
		fail "no two free consecutive UDP ports on 127.0.0.1 and 127.0.0.2"
	if ((REFERENCE)); then
		start_coturn && started=1 && break
	elif start_punch natdiscovery -listen "127.0.0.1:$P1" -alt "127.0.0.2:$P2"; then
		started=1
		break
	fi
	note "attempt $attempt: server did not start on ports $P1/$P2 (taken meanwhile?); retrying"
done
((started)) || fail "server on 127.0.0.1:P1 with alternate 127.0.0.2:P2 did not start in 5 attempts"
if ((!REFERENCE)); then
	want="punch server: listening on 127.0.0.1:$P1 (alt 127.0.0.2:$P2)"
	[[ $START_LINE == "$want" ]] || fail "start line '$START_LINE', expected '$want'"
fi
answered=0 errors=0

# 1. Our own probe of the four sockets and CHANGE-REQUEST (7 requests).
"${STUNWIRE[@]}" rfc5780 127.0.0.1 "$P1" 127.0.0.2 "$P2" || fail "RFC 5780 probe (see above)"
answered=$((answered + 7))

# 2. What does the server do with RESPONSE-PORT and PADDING?
read -r rp pad < <("${STUNWIRE[@]}" attr-probe 127.0.0.1 "$P1") ||
	fail "attr-probe against 127.0.0.1:$P1 failed (see above)"
echo "server treats RESPONSE-PORT: $rp, PADDING: $pad"
if ((!REFERENCE)); then
	[[ $rp == honoured && $pad == accepted ]] ||
		fail "punch server treats RESPONSE-PORT: $rp, PADDING: $pad; expected honoured and accepted (README, \"What the server answers\")"
fi
[[ $rp == honoured ]] && answered=$((answered + 1)) || errors=$((errors + 1))
[[ $pad == accepted ]] && answered=$((answered + 1)) || errors=$((errors + 1))

# run_natdiscovery WHAT EXPECTED ARGS...: run the tool, diff its normalized
# output against EXPECTED (a file).
run_natdiscovery() {
	local what=$1 expected=$2 rc=0
	shift 2
	local out="$TMP/natdiscovery.out"
	run_client "$out" turnutils_natdiscovery "$@" -L 127.0.0.1 -p "$P1" 127.0.0.1 || rc=$?
	((rc == 0)) || fail "turnutils_natdiscovery $* ($what): exit status $rc (124: killed after ${CLIENT_TIMEOUT_S} s); output:
$(show "$out")"
	"${STUNWIRE[@]}" normalize "$out" "P1=$P1" "P2=$P2" >"$TMP/seen.txt"
	if ! diff -u "$expected" "$TMP/seen.txt" >"$TMP/diff.txt"; then
		fail "turnutils_natdiscovery $* ($what) printed other facts than expected.
--- expected / +++ seen (normalized; server ports P1=$P1 P2=$P2, client ports c1, c2... per section):
$(cat "$TMP/diff.txt")
raw output:
$(show "$out")"
	fi
	echo "ok: natdiscovery $* ($what)"
}

# One RFC 5780 response block as normalized: N ORIGIN MAPPED [OTHER].
# "Local addr" is the tool's own getsockname(), so it must equal the mapped
# address.  OTHER-ADDRESS is where "change IP and port" would answer from,
# relative to the socket the request reached (RFC 5780 7.4): the default
# suits requests to the primary socket.
block() {
	echo "rfc5780 response $1"
	echo "no ALG"
	echo "response origin $2"
	echo "other addr ${4:-127.0.0.2:P2}"
	echo "reflexive $3"
	echo "local $3"
}
# A request to 127.0.0.2:P1 (mapping test II) has 127.0.0.1:P2 as its other
# address.  coturn 4.6 keeps the alternate IP there (it only swaps the port).
OTHER_OF_ALT_IP=127.0.0.1:P2
((REFERENCE)) && OTHER_OF_ALT_IP=127.0.0.2:P2

# 3. Hairpinning, mapping, filtering, collision (7 requests to the server).
{
	echo "== Hairpinning Behavior Discovery"
	block 1 127.0.0.1:P1 127.0.0.1:c1
	echo "hairpin request received"
	echo "== Mapping Behavior Discovery"
	block 2 127.0.0.1:P1 127.0.0.1:c1
	echo "verdict: No NAT! (Endpoint Independent Mapping)"
	# RFC 5780 4.3 test II: to the alternate IP, primary port.
	block 3 127.0.0.2:P1 127.0.0.1:c1 "$OTHER_OF_ALT_IP"
	echo "verdict: NAT with Endpoint Independent Mapping!"
	echo "== Filtering Behavior Discovery"
	block 4 127.0.0.1:P1 127.0.0.1:c1
	echo "verdict: No NAT! (Endpoint Independent Mapping)"
	# RFC 5780 4.4 test II: CHANGE-REQUEST IP and port.
	block 5 127.0.0.2:P2 127.0.0.1:c1
	echo "verdict: NAT with Endpoint Independent Filtering!"
	echo "== Collision Behavior Discovery"
	block 6 127.0.0.1:P1 127.0.0.1:c1
	block 7 127.0.0.1:P1 127.0.0.3:c1
} >"$TMP/expected.txt"
run_natdiscovery "hairpin, mapping, filtering, collision" "$TMP/expected.txt" -H -m -f -c -A 127.0.0.3
answered=$((answered + 7))

# 4. Mapping lifetime, 1 s timer.  The second request comes from a new
# socket (c2) and carries RESPONSE-PORT = c1: the answer must reach c1.
{
	echo "== Mapping Lifetime Behavior Discovery"
	block 1 127.0.0.1:P1 127.0.0.1:c1
	if [[ $rp == honoured ]]; then
		block 2 127.0.0.1:P1 127.0.0.1:c2
	else
		# The 420 goes to c2, where the tool does not listen: it waits 3 s.
		echo "receive timeout"
	fi
} >"$TMP/expected.txt"
run_natdiscovery "mapping lifetime, RESPONSE-PORT $rp" "$TMP/expected.txt" -t -T 1
answered=$((answered + 1))
[[ $rp == honoured ]] && answered=$((answered + 1)) || errors=$((errors + 1))

# 5. Mapping and filtering again, each request padded with 1500 bytes.
if [[ $pad == accepted ]]; then
	{
		echo "== Mapping Behavior Discovery"
		block 1 127.0.0.1:P1 127.0.0.1:c1
		echo "verdict: No NAT! (Endpoint Independent Mapping)"
		block 2 127.0.0.2:P1 127.0.0.1:c1 "$OTHER_OF_ALT_IP"
		echo "verdict: NAT with Endpoint Independent Mapping!"
		echo "== Filtering Behavior Discovery"
		block 3 127.0.0.1:P1 127.0.0.1:c1
		echo "verdict: No NAT! (Endpoint Independent Mapping)"
		block 4 127.0.0.2:P2 127.0.0.1:c1
		echo "verdict: NAT with Endpoint Independent Filtering!"
	} >"$TMP/expected.txt"
	answered=$((answered + 4))
else
	# Each first request is refused, so the tool reaches no verdict.
	printf '%s\n' "== Mapping Behavior Discovery" "error 420" \
		"== Filtering Behavior Discovery" "error 420" >"$TMP/expected.txt"
	errors=$((errors + 2))
fi
run_natdiscovery "with PADDING, $pad" "$TMP/expected.txt" -P -m -f

if ((REFERENCE)); then
	echo "PASS (coturn reference; $answered answers, $errors errors expected from a counting server)"
	exit 0
fi
stop_punch natdiscovery
expect_counts natdiscovery "$answered" "$errors" 0
echo "PASS"
