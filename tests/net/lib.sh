# shellcheck shell=bash
# Shared helpers for the network tests; sourced, not run.
#
# The lab itself is scripts/lab: sourcing it gives its lab_* functions
# (build, start/stop server and clients, bounded waits) without running
# anything.  This file adds what the tests need on top: a unique instance per
# test, assertions that say what they expected and what they saw, bounded
# helpers for the UDP probes, and one cleanup (the EXIT trap) that stops every
# process the test started, removes the instance, and fails the test if a
# namespace survives.

NET_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NET_REPO=$(cd "$NET_HERE/../.." && pwd)
LAB_SCRIPT=$NET_REPO/scripts/lab
PROBE=(python3 "$NET_HERE/udpprobe.py")
NET_READY_S=5     # for a probe's echo to bind
NET_RUN_LIMIT_S=80 # for one `scripts/lab run`, end to end (ctest allows 90)

# Each test process gets its own instance, whatever the environment says, so
# that tests never collide under ctest -j.
LAB=n$$
export LAB
# shellcheck source=../../scripts/lab
source "$LAB_SCRIPT"

declare -a NET_PIDS=()
NET_TMP=""

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

note() {
	echo "NOTE: $*" >&2
}

ok() {
	echo "ok: $*"
}

# expect_eq WHAT EXPECTED SEEN
expect_eq() {
	[[ $2 == "$3" ]] || fail "$1: expected '$2'; seen '$3'"
}

# net_init PATH_TO_PUNCH: checks the prerequisites (a missing one fails the
# test: CI runs as root with scripts/deps.sh's packages), makes the scratch
# directory and installs the cleanup.
net_init() {
	((EUID == 0)) || fail "network tests need root (network namespaces, iptables)"
	local cmd
	for cmd in ip iptables conntrack python3 sysctl; do
		command -v "$cmd" >/dev/null ||
			fail "$cmd not found (scripts/deps.sh installs it)"
	done
	[[ $# -ge 1 && -x $1 ]] || fail "usage: $0 PATH_TO_PUNCH (got '${1:-}', not an executable)"
	PUNCH=$1
	export PUNCH
	NET_TMP=$(mktemp -d "${TMPDIR:-/tmp}/punch-net.XXXXXX")
	lab_opts_reset
	lab_run_init
	trap net_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# net_cleanup: the EXIT trap.  Keeps the test's exit status, except that a
# namespace left behind makes it fail.
net_cleanup() {
	local rc=$? pid left
	set +e
	trap - EXIT INT TERM
	for pid in "${NET_PIDS[@]}"; do
		lab_alive "$pid" && lab_stop_pid "$pid"
	done
	lab_run_stop "$rc"
	(lab_down)
	left=$(lab_nodes | tr '\n' ' ')
	if [[ -n $left ]]; then
		echo "FAIL: namespaces of instance $LAB left behind: $left" >&2
		rc=1
	fi
	rm -rf "$NET_TMP" "$RUN_DIR"
	exit "$rc"
}

# net_up SCENARIO [OPTIONS]: builds an instance with the lab's functions (the
# run options are accepted too, e.g. --timeout for the client waits).  The
# cleanup removes it.
net_up() {
	lab_parse_opts run "$@"
	lab_check_free
	lab_build
}

# net_expect_gone: no namespace of this instance remains.
net_expect_gone() {
	local left
	left=$(ip netns list | awk '{ print $1 }' | grep -E "^$LAB-" | tr '\n' ' ' || true)
	expect_eq "namespaces of instance $LAB after down" "" "$left"
}

# net_wait_in_ns NODE PID: PID (started with `scripts/lab exec NODE ...`)
# has entered NODE's namespace.
net_wait_in_ns() {
	local ns pid=$2
	ns=$(lab_ns "$1")
	lab_now
	local deadline=$((LAB_NOW + NET_READY_S * 1000))
	until ip netns pids "$ns" 2>/dev/null | grep -q -x -- "$pid"; do
		lab_alive "$pid" || fail "pid $pid exited before it entered $ns"
		lab_now
		((LAB_NOW < deadline)) || fail "pid $pid: expected in $ns within $NET_READY_S s; seen elsewhere"
		sleep 0.05
	done
}

# net_echo NODE BIND SECONDS NAME: a UDP echo (udpprobe.py echo) in NODE,
# output in $NET_TMP/NAME.out; waits until it has bound.
net_echo() {
	local node=$1 bind=$2 secs=$3 out=$NET_TMP/$4.out
	: >"$out"
	lab_nsx "$node" "${PROBE[@]}" echo "$bind" "$secs" >"$out" 2>&1 &
	NET_PIDS+=($!)
	lab_wait_line "$out" '^ready$' "$NET_READY_S" "$!" ||
		fail "echo at $bind in $node did not start within $NET_READY_S s: $(cat "$out")"
}

# net_ask NODE BIND TO [SECONDS]: prints what udpprobe.py ask saw.
net_ask() {
	lab_nsx "$1" timeout -k 1 10 "${PROBE[@]}" ask "$2" "$3" "${4:-1}"
}

# net_lab_run OUT ARGS...: `scripts/lab run ARGS` as its own process (the
# way a user runs it), bounded; its stdout (the path lines) goes to OUT and
# is echoed, its stderr passes through.
net_lab_run() {
	local out=$1 rc=0
	shift
	timeout -k 5 "$NET_RUN_LIMIT_S" "$LAB_SCRIPT" run "$@" >"$out" || rc=$?
	sed 's/^/    /' "$out"
	((rc != 124)) || fail "scripts/lab run $*: expected to finish within $NET_RUN_LIMIT_S s; seen: still running, killed"
	((rc == 0)) || fail "scripts/lab run $*: expected exit status 0; seen $rc (its report is above)"
}

# expect_remote OUT ID IP: ID's path line in OUT ("ID: L -> R (TYPE) in N ms")
# has the remote address IP.
expect_remote() {
	local out=$1 id=$2 want=$3 line
	line=$(grep -E "^$id: " "$out" || true)
	local re="^$id: ([^ ]+) -> ([^ ]+):([0-9]+) \\((host|srflx|prflx)\\) in ([0-9]+) ms\$"
	[[ $line =~ $re ]] ||
		fail "$id: expected a path line '$id: IP:PORT -> IP:PORT (host|srflx|prflx) in N ms'; seen '$line'"
	expect_eq "$id's remote address (its line: $line)" "$want" "${BASH_REMATCH[2]}"
	((BASH_REMATCH[3] > 0)) || fail "$id: expected a remote port; seen 0 in '$line'"
}
