# shellcheck shell=bash
# Shared helpers for the interop tests; sourced, not run.
#
# Every wait here is bounded: a deadline in seconds, polled in small steps.
# The caller's EXIT trap must call interop_cleanup, which stops whatever these
# helpers started (the punch servers, by their pids) and removes the scratch
# directory.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}
# shellcheck disable=SC2034 # used by the scripts that source this file
STUNWIRE=("$PYTHON" "$HERE/stunwire.py")
START_DEADLINE_S=10   # for the start line to appear
STOP_DEADLINE_S=10    # for the process to exit after SIGTERM
CLIENT_TIMEOUT_S=15   # a coturn utility run, end to end

TMP=$(mktemp -d "${TMPDIR:-/tmp}/punch-interop.XXXXXX")
declare -a STARTED_PIDS=()

# Servers get SIGTERM if this script dies, even by SIGKILL (a ctest time
# out), when setpriv can arrange it; the EXIT trap covers the other cases.
ORPHAN_GUARD=()
if command -v setpriv >/dev/null && setpriv --pdeathsig TERM true 2>/dev/null; then
	ORPHAN_GUARD=(setpriv --pdeathsig TERM)
fi

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

note() {
	echo "NOTE: $*" >&2
}


need() {
	local tool
	for tool; do
		command -v "$tool" >/dev/null || fail "$tool not found: install Debian package coturn (scripts/deps.sh does)"
	done
}

interop_cleanup() {
	local pid
	for pid in "${STARTED_PIDS[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	for pid in "${STARTED_PIDS[@]}"; do
		wait_gone "$pid" 3 || kill -KILL "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}

# now_ms: a monotonic clock (since boot) in milliseconds, for deadlines.
now_ms() {
	local up
	read -r up _ </proc/uptime
	echo $((10#${up/./} * 10))
}

# wait_gone PID SECONDS: returns 0 once PID has exited, 1 at the deadline.
wait_gone() {
	local pid=$1 deadline=$(($(now_ms) + $2 * 1000))
	while kill -0 "$pid" 2>/dev/null; do
		# A zombie child still answers kill -0; look at its state too.
		if [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]]; then
			return 0
		fi
		(($(now_ms) < deadline)) || return 1
		sleep 0.05
	done
	return 0
}

# start_punch NAME ARGS...: runs "$PUNCH server ARGS..." in the background with
# stderr in $TMP/NAME.err, and waits (bounded) for its start line.  Sets
# PUNCH_PID and START_LINE.  Returns 1, without failing the test, if the
# server exited before printing it (e.g. a port taken meanwhile), so that
# callers that chose ports themselves can retry with others.
start_punch() {
	local name=$1
	shift
	local err="$TMP/$name.err"
	: >"$err"
	local extra=()
	[[ ${PUNCH_VERBOSE:-0} == 1 ]] && extra=(-v)
	# Its own state directory (key, id bindings), never the system's.
	"${ORPHAN_GUARD[@]}" "$PUNCH" server "$@" -state "$TMP/$name.state" "${extra[@]}" 2>"$err" >"$TMP/$name.out" &
	PUNCH_PID=$!
	STARTED_PIDS+=("$PUNCH_PID")
	local deadline=$(($(now_ms) + START_DEADLINE_S * 1000))
	local line
	while :; do
		# read skips a last line without its newline: no half-written lines.
		START_LINE=
		while IFS= read -r line; do
			if [[ $line == "punch server: listening on "* ]]; then
				START_LINE=$line
				break
			fi
		done <"$err"
		[[ -n $START_LINE ]] && return 0
		if ! kill -0 "$PUNCH_PID" 2>/dev/null; then
			wait "$PUNCH_PID" || true
			echo "punch server $* exited before its start line; stderr:" >&2
			sed 's/^/    /' "$err" >&2
			return 1
		fi
		if (($(now_ms) >= deadline)); then
			fail "punch server $*: no 'punch server: listening on ...' line on stderr within ${START_DEADLINE_S} s; stderr was:
$(sed 's/^/    /' "$err")"
		fi
		sleep 0.02
	done
}

# stop_punch NAME [SIGNAL]: SIGTERM (or SIGNAL, e.g. INT), then a bounded
# wait for exit status 0, exactly one start and one stop line (and, without
# PUNCH_VERBOSE=1, nothing else), no sanitizer report.  Sets ANSWERED,
# ERRORS, MALFORMED.
stop_punch() {
	local name=$1 sig=${2:-TERM} err="$TMP/$1.err" rc=0
	kill -"$sig" "$PUNCH_PID" 2>/dev/null || fail "punch server ($name) died before SIG$sig; stderr:
$(sed 's/^/    /' "$err")"
	wait_gone "$PUNCH_PID" "$STOP_DEADLINE_S" ||
		fail "punch server ($name) still running ${STOP_DEADLINE_S} s after SIG$sig"
	wait "$PUNCH_PID" || rc=$?
	if grep -q -E 'ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:' "$err"; then
		fail "punch server ($name): sanitizer report on stderr:
$(sed 's/^/    /' "$err")"
	fi
	((rc == 0)) || fail "punch server ($name): exit status $rc after SIG$sig, expected 0; stderr:
$(sed 's/^/    /' "$err")"
	local starts stops stop_line
	starts=$(grep -c '^punch server: listening on ' "$err" || true)
	stops=$(grep -c '^punch server: stopped: ' "$err" || true)
	((starts == 1)) || fail "punch server ($name): $starts start lines on stderr, expected exactly 1"
	((stops == 1)) || fail "punch server ($name): $stops stop lines on stderr, expected exactly 1; stderr:
$(sed 's/^/    /' "$err")"
	stop_line=$(grep '^punch server: stopped: ' "$err")
	# Binding only here: no rendezvous challenges or refusals.
	local re='^punch server: stopped: answered=([0-9]+) challenges=0 refused=0 errors=([0-9]+) malformed=([0-9]+)$'
	[[ $stop_line =~ $re ]] || fail "punch server ($name): stop line '$stop_line', expected 'punch server: stopped: answered=N challenges=0 refused=0 errors=N malformed=N'"
	ANSWERED=${BASH_REMATCH[1]}
	ERRORS=${BASH_REMATCH[2]}
	MALFORMED=${BASH_REMATCH[3]}
	if [[ ${PUNCH_VERBOSE:-0} == 0 ]]; then
		local lines
		lines=$(wc -l <"$err")
		((lines == 2)) || fail "punch server ($name): $lines lines on stderr without -v, expected 2 (start and stop):
$(sed 's/^/    /' "$err")"
	fi
}

# expect_counts NAME ANSWERED ERRORS MALFORMED: compare the stop line's
# counters with what the test caused.
expect_counts() {
	local name=$1
	[[ $ANSWERED == "$2" && $ERRORS == "$3" && $MALFORMED == "$4" ]] ||
		fail "punch server ($name): stop line says answered=$ANSWERED errors=$ERRORS malformed=$MALFORMED, expected answered=$2 errors=$3 malformed=$4"
}

# run_client OUTFILE CMD...: run a coturn utility, line-buffered so that
# nothing is lost if the time limit kills it.  Returns the command's status
# (124 on timeout).
run_client() {
	local out=$1
	shift
	local rc=0
	timeout -k 2 "$CLIENT_TIMEOUT_S" stdbuf -oL -eL "$@" >"$out" 2>&1 || rc=$?
	return $rc
}

show() {
	sed 's/^/    | /' "$1"
}

ipv6_loopback() {
	"$PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.bind(("::1", 0))' 2>/dev/null
}

# For the relay's tests (turn_uclient.sh, turn_tcp.sh):
# free_udp_port: a port nothing holds now (the kernel's pick, released).
free_udp_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# relay_range: 200 ports from a random place in 20000-29999, which the
# kernel's ephemeral range (32768+) leaves alone; a port some other test
# holds is skipped by the server.
relay_range() {
	local lo=$((20000 + RANDOM % 9800))
	echo "$lo-$((lo + 199))"
}

# port_of: the port of START_LINE (start_punch's), "...:PORT".
port_of() {
	[[ $START_LINE =~ :([0-9]+)$ ]] || fail "no port in start line '$START_LINE'"
	echo "${BASH_REMATCH[1]}"
}

require_punch() {
	[[ $# -ge 1 && -x $1 ]] || fail "usage: $0 PATH_TO_PUNCH (got '${1:-}', not an executable)"
	PUNCH=$1
}
