#!/usr/bin/env bash
# Interop: coturn's turnutils_stunclient against `punch server`.
#
#   stunclient.sh PATH_TO_PUNCH
#
# 1. Plain mode.  One server listening on 127.0.0.1:0 and [::1]:0 (the kernel
#    picks the ports; we read them from the start line).  turnutils_stunclient
#    sends one Binding request over each family; what it prints must be exactly
#    one "UDP reflexive addr" equal to the client's own source address.  The
#    client does not print its source port, so we learn it from the
#    getsockname() the client makes right after sending (strace).
# 2. RFC 5780 mode.  A server with -alt.  The client sees OTHER-ADDRESS and
#    then sends two more requests with CHANGE-REQUEST (change IP and port): the
#    second with RESPONSE-PORT set to its port + 1 (it then listens only
#    there), the third from that port with a 1500-byte PADDING.  Those two
#    attributes are optional RFC 5780 features, so the expected transcript
#    depends on what the server does with them, which stunwire.py attr-probe
#    finds out first (and which must be one of the two RFC-correct outcomes).
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
HAVE_STRACE=0
if command -v strace >/dev/null && strace -qq -o /dev/null true 2>/dev/null; then
	HAVE_STRACE=1
else
	note "strace unusable here: checking only that the mapped port is plausible"
fi

# traced_client OUT TRACE LIMIT_S ARGS...: run turnutils_stunclient with a time
# limit, under strace when possible.  Returns the client's status (124: killed
# at the limit).
traced_client() {
	local out=$1 trace=$2 limit=$3 rc=0
	shift 3
	: >"$trace"
	if ((HAVE_STRACE)); then
		timeout -k 2 $((limit + 10)) strace -f -qq -e trace=getsockname -o "$trace" \
			timeout -k 1 "$limit" stdbuf -oL turnutils_stunclient "$@" >"$out" 2>&1 || rc=$?
	else
		timeout -k 1 "$limit" stdbuf -oL turnutils_stunclient "$@" >"$out" 2>&1 || rc=$?
	fi
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
if ipv6_loopback; then
	listens+=(-listen '[::1]:0')
	families="4 6"
else
	note "no IPv6 loopback here; IPv6 part skipped"
	families="4"
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
	if ((HAVE_STRACE)); then
		cport=$(first_port "$trace")
		[[ -n $cport ]] || fail "could not find the client's getsockname() in strace output:
$(show "$trace")"
	else
		cport=$(sed -n 's/.*UDP reflexive addr: .*:\([0-9]*\)$/\1/p' "$out" | head -n1)
		[[ -n $cport && $cport -gt 0 && $cport -le 65535 && $cport != "$port" ]] ||
			fail "turnutils_stunclient over IPv$fam printed no plausible reflexive port:
$(show "$out")"
	fi
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
echo "server treats RESPONSE-PORT: $rp, PADDING: $pad"
answered=0 errors=0
[[ $rp == honoured ]] && answered=$((answered + 1)) || errors=$((errors + 1))
[[ $pad == accepted ]] && answered=$((answered + 1)) || errors=$((errors + 1))

out="$TMP/rfc5780.out" trace="$TMP/rfc5780.trace"
limit=10
[[ $rp == 420 ]] && limit=4 # the client will wait forever at port+1; see below
rc=0
traced_client "$out" "$trace" "$limit" -p "$P1" 127.0.0.1 || rc=$?
names=("P1=$P1" "P2=$P2")
if ((HAVE_STRACE)); then
	X=$(first_port "$trace")
	[[ -n $X ]] || fail "could not find the client's getsockname() in strace output:
$(show "$trace")"
	names+=("X=$X" "X+1=$((X + 1))")
fi
{
	echo "rfc5780 response 1"
	echo "response origin 127.0.0.1:P1"
	echo "other addr 127.0.0.2:P2"
	echo "reflexive 127.0.0.1:X"
} >"$TMP/expected.txt"
answered=$((answered + 1))
if [[ $rp == honoured ]]; then
	# Request 2: CHANGE-REQUEST ip+port and RESPONSE-PORT X+1, sent from X.
	{
		echo "rfc5780 response 2"
		echo "response origin 127.0.0.2:P2"
		echo "other addr 127.0.0.2:P2"
		echo "reflexive 127.0.0.1:X"
	} >>"$TMP/expected.txt"
	answered=$((answered + 1))
	# Request 3: CHANGE-REQUEST ip+port and PADDING, sent from X+1.
	if [[ $pad == accepted ]]; then
		{
			echo "rfc5780 response 3"
			echo "response origin 127.0.0.2:P2"
			echo "other addr 127.0.0.2:P2"
			echo "reflexive 127.0.0.1:X+1"
		} >>"$TMP/expected.txt"
		answered=$((answered + 1))
	else
		echo "error 420" >>"$TMP/expected.txt"
		errors=$((errors + 1))
	fi
	((rc == 0)) || fail "turnutils_stunclient (RFC 5780 mode): exit status $rc, expected 0; output:
$(show "$out")"
else
	# The server rejects RESPONSE-PORT with 420 (allowed: RFC 5780 7.5 makes
	# it optional, RFC 8489 7.3.1 requires the 420).  The 420 goes to the
	# request's source port X, but turnutils_stunclient closed X and blocks
	# on X+1 with no timeout, so it prints nothing more and is killed.
	errors=$((errors + 1))
	((rc == 124)) || fail "turnutils_stunclient (RFC 5780 mode, server rejects RESPONSE-PORT): exit status $rc, expected 124 (still waiting at port X+1 when killed); output:
$(show "$out")"
	note "RFC 5780 part checks response 1 only: punch answers RESPONSE-PORT with 420, and turnutils_stunclient then waits forever on another port"
fi
if ((!HAVE_STRACE)); then
	# Unnamed ports print as c1, c2... in order of appearance.
	sed -i 's/:X+1$/:c2/; s/:X$/:c1/' "$TMP/expected.txt"
fi
expect_transcript "RFC 5780 mode against 127.0.0.1:$P1 -alt 127.0.0.2:$P2" \
	"$TMP/expected.txt" "$out" "${names[@]}"
stop_punch rfc5780 INT # the contract: SIGINT stops it cleanly too
expect_counts rfc5780 "$answered" "$errors" 0
echo "PASS"
