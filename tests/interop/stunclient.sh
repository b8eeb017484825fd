#!/usr/bin/env bash
# Interop: coturn's turnutils_stunclient against `punch server`.
#
#   stunclient.sh PATH_TO_PUNCH
#
# 1. Plain mode.  One server listening on 127.0.0.1:0 and [::1]:0 (the kernel
#    picks the ports; we read them from the start line).  turnutils_stunclient
#    sends one Binding request over each family; what it prints must be exactly
#    one "UDP reflexive addr" equal to the client's own source address.  The
#    client does not print its source port (nor lets us choose it), so we
#    learn it from the getsockname() the client makes right after sending,
#    with strace (scripts/deps.sh installs it; without it the test fails,
#    since the client's own line is no witness for itself).  IPv6 loopback
#    is required too; PUNCH_TEST_NO_IPV6=1 (which CI never sets) runs the
#    IPv4 half alone on a machine without it, and says so.
# 2. RFC 5780 mode.  A server with -alt.  The client sees OTHER-ADDRESS and
#    then sends two more requests with CHANGE-REQUEST (change IP and port): the
#    second with RESPONSE-PORT set to its port + 1 (it then listens only
#    there), the third from that port with a 1500-byte PADDING.  punch
#    honours both (README, "What the server answers"), so the transcript is
#    pinned: all three responses, the client exiting 0.  stunwire.py
#    attr-probe checks the same first, to name the cause if punch stops.
#
# The stop line's counters must match the requests we caused, and the server
# must exit 0 on SIGTERM (first server) and SIGINT (second).  Traffic stays
# on 127.0.0.0/8 and ::1.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap interop_cleanup EXIT
trap 'exit 130' INT TERM
require_punch "${1:-}"
need turnutils_stunclient

# The client's source port, from the first getsockname() in an strace log.
command -v strace >/dev/null || fail "strace not found: install Debian package strace (scripts/deps.sh does)"
strace -qq -o /dev/null true 2>/dev/null ||
	fail "strace cannot trace here (ptrace refused?): the client's source port cannot be learnt"

# traced_client OUT TRACE LIMIT_S ARGS...: run turnutils_stunclient under
# strace with a time limit.  Returns the client's status (124: killed at the
# limit).
traced_client() {
	local out=$1 trace=$2 limit=$3 rc=0
	shift 3
	: >"$trace"
	timeout -k 2 $((limit + 10)) strace -f -qq -e trace=getsockname -o "$trace" \
		timeout -k 1 "$limit" stdbuf -oL turnutils_stunclient "$@" >"$out" 2>&1 || rc=$?
	return $rc
}

# first_port TRACE: the port of the client's first getsockname(), or "".
first_port() {
	sed -n 's/.*getsockname(.*sin6\{0,1\}_port=htons(\([0-9]*\)).*/\1/p' "$1" | head -n1
}

# expect_transcript WHAT EXPECTED_FILE OUT NAME=PORT...: diff the normalized
# client output against the expected transcript.
expect_transcript() {
	local what=$1 expected=$2 out=$3
	shift 3
	"${STUNWIRE[@]}" normalize "$out" "$@" >"$TMP/seen.txt"
	if ! diff -u "$expected" "$TMP/seen.txt" >"$TMP/diff.txt"; then
		fail "$what: turnutils_stunclient printed other facts than expected.
--- expected / +++ seen (normalized; ports named $*, others c1, c2... in order of appearance):
$(cat "$TMP/diff.txt")
raw client output:
$(show "$out")"
	fi
	echo "ok: $what"
}

# ------------------------------------------------------------ plain mode

listens=(-listen 127.0.0.1:0)
if [[ ${PUNCH_TEST_NO_IPV6:-0} == 1 ]]; then
	note "PUNCH_TEST_NO_IPV6=1: IPv6 part not run"
	families="4"
else
	ipv6_loopback || fail "no IPv6 loopback (::1) here; the IPv6 half needs it (PUNCH_TEST_NO_IPV6=1 runs IPv4 alone)"
	listens+=(-listen '[::1]:0')
	families="4 6"
fi
start_punch plain "${listens[@]}" || fail "punch server ${listens[*]} did not start"

re4='127\.0\.0\.1:([0-9]+)'
re6='\[::1\]:([0-9]+)'
if [[ $families == "4 6" ]]; then
	re="^punch server: listening on ${re4}, ${re6}\$"
else
	re="^punch server: listening on ${re4}\$"
fi
[[ $START_LINE =~ $re ]] ||
	fail "start line '$START_LINE' does not match /$re/ (the -listen addresses in order, each with the port the kernel picked)"
port4=${BASH_REMATCH[1]}
port6=${BASH_REMATCH[2]:-}
((port4 > 0)) || fail "start line '$START_LINE' shows port 0; expected the port the kernel picked"

requests=0
for fam in $families; do
	if [[ $fam == 4 ]]; then host=127.0.0.1 port=$port4; else host=::1 port=$port6; fi
	((port > 0)) || fail "start line '$START_LINE' shows port 0 for $host; expected the bound port"
	out="$TMP/plain$fam.out" trace="$TMP/plain$fam.trace"
	rc=0
	traced_client "$out" "$trace" 10 -p "$port" "$host" || rc=$?
	requests=$((requests + 1))
	((rc == 0)) || fail "turnutils_stunclient -p $port $host: exit status $rc (124: no answer in 10 s); output:
$(show "$out")"
	cport=$(first_port "$trace")
	[[ -n $cport ]] || fail "could not find the client's getsockname() in strace output:
$(show "$trace")"
	bracketed=$host
	[[ $fam == 6 ]] && bracketed="[::1]"
	printf 'reflexive %s:X\n' "$bracketed" >"$TMP/expected.txt"
	expect_transcript "IPv$fam plain Binding: mapped address $bracketed:$cport (the client's socket)" \
		"$TMP/expected.txt" "$out" "P1=$port" "X=$cport"
done
stop_punch plain
expect_counts plain "$requests" 0 0

# ---------------------------------------------------------- RFC 5780 mode

started=0
for attempt in 1 2 3 4 5; do
	read -r P1 P2 < <("${STUNWIRE[@]}" freeports 2 127.0.0.1 127.0.0.2) ||
		fail "no two free consecutive UDP ports on 127.0.0.1 and 127.0.0.2"
	if start_punch rfc5780 -listen "127.0.0.1:$P1" -alt "127.0.0.2:$P2"; then
		started=1
		break
	fi
	note "attempt $attempt: server did not start on ports $P1/$P2 (taken meanwhile?); retrying"
done
((started)) || fail "punch server -listen 127.0.0.1:P -alt 127.0.0.2:P+1 did not start in 5 attempts"
want="punch server: listening on 127.0.0.1:$P1 (alt 127.0.0.2:$P2)"
[[ $START_LINE == "$want" ]] || fail "start line '$START_LINE', expected '$want'"

read -r rp pad < <("${STUNWIRE[@]}" attr-probe 127.0.0.1 "$P1") ||
	fail "attr-probe against 127.0.0.1:$P1 failed (see above)"
[[ $rp == honoured && $pad == accepted ]] ||
	fail "punch server treats RESPONSE-PORT: $rp, PADDING: $pad; expected honoured and accepted (README, \"What the server answers\")"

out="$TMP/rfc5780.out" trace="$TMP/rfc5780.trace"
rc=0
traced_client "$out" "$trace" 10 -p "$P1" 127.0.0.1 || rc=$?
((rc == 0)) || fail "turnutils_stunclient (RFC 5780 mode): exit status $rc, expected 0 (124: killed after 10 s, still waiting for an answer); output:
$(show "$out")"
X=$(first_port "$trace")
[[ -n $X ]] || fail "could not find the client's getsockname() in strace output:
$(show "$trace")"
# Request 1: plain; request 2: CHANGE-REQUEST ip+port and RESPONSE-PORT X+1,
# sent from X; request 3: CHANGE-REQUEST ip+port and PADDING, sent from X+1.
cat >"$TMP/expected.txt" <<EOF
rfc5780 response 1
response origin 127.0.0.1:P1
other addr 127.0.0.2:P2
reflexive 127.0.0.1:X
rfc5780 response 2
response origin 127.0.0.2:P2
other addr 127.0.0.2:P2
reflexive 127.0.0.1:X
rfc5780 response 3
response origin 127.0.0.2:P2
other addr 127.0.0.2:P2
reflexive 127.0.0.1:X+1
EOF
expect_transcript "RFC 5780 mode against 127.0.0.1:$P1 -alt 127.0.0.2:$P2" \
	"$TMP/expected.txt" "$out" "P1=$P1" "P2=$P2" "X=$X" "X+1=$((X + 1))"
stop_punch rfc5780 INT # the contract: SIGINT stops it cleanly too
# The two attr-probe requests and the client's three, all answered.
expect_counts rfc5780 5 0 0
echo "PASS"
