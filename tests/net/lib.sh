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

# net_wait_binding NODE HOST PORT SECONDS: from NODE, Binding requests 0.2 s
# apart until one is answered (for servers that print no start line, such as
# coturn's turnserver); false at the deadline.
net_wait_binding() {
	local node=$1
	shift
	lab_nsx "$node" python3 -c '
import os, socket, sys, time
host, port, end = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.2)
while time.monotonic() < end:
    req = bytes.fromhex("000100002112a442") + os.urandom(12)
    s.sendto(req, (host, port))
    try:
        d = s.recv(2048)
        if d[4:20] == req[4:20]:
            sys.exit(0)
    except OSError:
        pass
sys.exit(1)' "$@"
}

# net_ask NODE BIND TO [SECONDS]: prints what udpprobe.py ask saw.
net_ask() {
	lab_nsx "$1" timeout -k 1 10 "${PROBE[@]}" ask "$2" "$3" "${4:-1}"
}

# net_tcp_echo NODE BIND SECONDS NAME, net_tcp_ask NODE BIND TO [SECONDS]:
# the same over TCP (udpprobe.py tcpecho, tcpask).
net_tcp_echo() {
	local node=$1 bind=$2 secs=$3 out=$NET_TMP/$4.out
	: >"$out"
	lab_nsx "$node" "${PROBE[@]}" tcpecho "$bind" "$secs" >"$out" 2>&1 &
	NET_PIDS+=($!)
	lab_wait_line "$out" '^ready$' "$NET_READY_S" "$!" ||
		fail "TCP echo at $bind in $node did not start within $NET_READY_S s: $(cat "$out")"
}

net_tcp_ask() {
	lab_nsx "$1" timeout -k 1 10 "${PROBE[@]}" tcpask "$2" "$3" "${4:-2}"
}

# net_lab_run OUT ARGS...: `scripts/lab run ARGS` as its own process (the
# way a user runs it), bounded; its stdout (the path lines) goes to OUT and
# is echoed, its stderr passes through.  The run keeps its instance (--keep),
# so that expect_peer_sees can read the NATs' conntrack tables afterwards; the
# caller removes it with lab_down (net_cleanup does on failure), and the kept
# logs land in NET_TMP, which net_cleanup removes.
net_lab_run() {
	local out=$1 rc=0
	shift
	TMPDIR=$NET_TMP timeout -k 5 "$NET_RUN_LIMIT_S" "$LAB_SCRIPT" run "$@" --keep >"$out" 2>"$NET_TMP/lab-run.err" || rc=$?
	grep -v '^lab run: kept instance ' "$NET_TMP/lab-run.err" >&2 || true
	sed 's/^/    /' "$out"
	((rc != 124)) || fail "scripts/lab run $*: expected to finish within $NET_RUN_LIMIT_S s; seen: still running, killed"
	((rc == 0)) || fail "scripts/lab run $*: expected exit status 0; seen $rc (its report is above)"
}

# net_path OUT ID: parses ID's path line in OUT ("ID: L -> R (TYPE) in N ms")
# into PATH_LIP, PATH_LPORT, PATH_RIP, PATH_RPORT, PATH_TYPE.
net_path() {
	local out=$1 id=$2 line
	line=$(grep -E "^$id: " "$out" || true)
	local ep='([0-9.]+):([0-9]+)'
	local re="^$id: $ep -> $ep \\((host|srflx|prflx|mapped|relay)( via ([^ )]+))?\\) in ([0-9]+) ms\$"
	[[ $line =~ $re ]] ||
		fail "$id: expected a path line '$id: IP:PORT -> IP:PORT (host|srflx|prflx|mapped|relay via IP:PORT) in N ms'; seen '$line'"
	PATH_LINE=$line
	PATH_LIP=${BASH_REMATCH[1]} PATH_LPORT=${BASH_REMATCH[2]}
	PATH_RIP=${BASH_REMATCH[3]} PATH_RPORT=${BASH_REMATCH[4]}
	# shellcheck disable=SC2034 # (PATH_VIA: the relayed address, for tests of the relay)
	PATH_TYPE=${BASH_REMATCH[5]} PATH_VIA=${BASH_REMATCH[7]}
	((PATH_LPORT > 0 && PATH_RPORT > 0)) || fail "$id: expected non-zero ports; seen '$line'"
}

# expect_remote OUT ID IP TYPE: ID's path line in OUT has the remote address
# IP, reached through a candidate of type TYPE (host, srflx or prflx).  A
# prflx pair where TYPE says srflx means that a NAT gave a peer another port
# than the one the server saw, which is what the small-TTL opening probe
# exists to prevent (docs/protocol.md, "Filterless NATs").
expect_remote() {
	local out=$1 id=$2 want=$3 type=$4
	net_path "$out" "$id"
	expect_eq "$id's remote address (its line: $PATH_LINE)" "$want" "$PATH_RIP"
	expect_eq "$id's remote candidate type (its line: $PATH_LINE)" "$type" "$PATH_TYPE"
}

# net_mapping NAT LIP LPORT RIP RPORT: the public IP:PORT that NAT's
# conntrack table maps the UDP flow LIP:LPORT -> RIP:RPORT to (the reply
# direction's destination), or fails if the table has no single such entry.
net_mapping() {
	local nat=$1 entries n re
	entries=$(lab_nsx "$nat" conntrack -L -p udp -s "$2" --sport "$3" -d "$4" --dport "$5" 2>/dev/null || true)
	# udp 17 29 src=L dst=R sport=L dport=R src=R dst=PUB sport=R dport=MAPPED ...
	re=" src=$2 dst=$4 sport=$3 dport=$5 src=$4 dst=([0-9.]+) sport=$5 dport=([0-9]+) "
	if [[ -z $entries ]]; then
		# A cone NAT (fullcone, restricted) may have let the peer's packet
		# in first, through its DNAT: the flow then starts outside.
		# udp 17 29 src=R dst=PUB sport=R dport=MAPPED src=L dst=R sport=L dport=R ...
		entries=$(lab_nsx "$nat" conntrack -L -p udp -s "$4" --sport "$5" --reply-src "$2" --reply-port-src "$3" 2>/dev/null || true)
		re=" src=$4 dst=([0-9.]+) sport=$5 dport=([0-9]+) src=$2 dst=$4 sport=$3 dport=$5 "
	fi
	n=$(grep -c . <<<"$entries" || true)
	((n == 1)) || fail "$nat: expected 1 conntrack entry for $2:$3 -> $4:$5; seen $n:
$entries
(all UDP entries in $nat:
$(lab_nsx "$nat" conntrack -L -p udp 2>/dev/null))"
	[[ $entries =~ $re ]] || fail "$nat: conntrack entry for $2:$3 -> $4:$5 not understood: $entries"
	echo "${BASH_REMATCH[1]}:${BASH_REMATCH[2]}"
}

# expect_peer_sees OUT ID NAT OTHER: OTHER reaches ID's socket at the address
# it should.  NAT is the node that translates ID's packets on the chosen path,
# or "-" when none does: then OTHER's remote must be ID's own local address;
# else NAT's conntrack table must hold ID's flow (local -> remote, as ID's line
# says) and OTHER's remote must be the public address NAT mapped it to.  So
# both path lines are checked against the kernel's NAT state, not only against
# each other's word.  NAT/expired names a NAT whose entries have timed out by
# design (--udp-timeout): its mapping is then taken to keep the port (the
# lab's home NAT does, for the only host behind it).
expect_peer_sees() {
	local out=$1 id=$2 nat=$3 other=$4 mine theirs
	net_path "$out" "$id"
	if [[ $nat == - ]]; then
		mine=$PATH_LIP:$PATH_LPORT
	elif [[ $nat == */expired ]]; then
		nat=${nat%/expired}
		mine=$(lab_addr "$nat"):$PATH_LPORT
	else
		mine=$(net_mapping "$nat" "$PATH_LIP" "$PATH_LPORT" "$PATH_RIP" "$PATH_RPORT") || exit 1
		expect_eq "$nat's public address for $id's flow" "$(lab_addr "$nat")" "${mine%:*}"
	fi
	net_path "$out" "$other"
	theirs=$PATH_RIP:$PATH_RPORT
	expect_eq "$other's remote address and port (${nat/#-/no NAT}: $id's socket as the path shows it)" "$mine" "$theirs"
}

# net_runs_down PREFIX PID...: the teardown of parallel lab runs (matrix.sh,
# probe_stat.sh): stops every PID still alive (TERM, KILL after 20 s; the
# lab's own TERM handling downs its instance), downs every instance named in
# INSTANCES, and fails (1, with a line) if a namespace PREFIX_N-... is left.
net_runs_down() {
	local prefix=$1 pid pids=() i left
	shift
	for pid in "$@"; do
		lab_alive "$pid" && pids+=("$pid")
	done
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null
		lab_wait_gone 20 "${pids[@]}" || kill -KILL "${pids[@]}" 2>/dev/null
		lab_wait_gone 2 "${pids[@]}"
	fi
	for i in "${INSTANCES[@]}"; do
		(LAB=$i lab_down)
	done
	left=$(ip netns list | awk '{ print $1 }' | grep -E "^${prefix}_[0-9]+-" | tr '\n' ' ' || true)
	[[ -z $left ]] && return 0
	echo "FAIL: namespaces left behind: $left" >&2
	return 1
}

# net_json_load FILE: the one JSON object in FILE (natcheck -json) into the
# associative array J, each value as Python prints it (null -> None, true
# -> True); fails the test if FILE holds no object with a "mapping" field.
declare -A J=()
net_json_load() {
	local k v
	J=()
	while IFS=$'\t' read -r k v; do
		J[$k]=$v
	done < <(python3 -c 'import json, sys
for k, v in json.load(open(sys.argv[1])).items():
    print(f"{k}\t{v}")' "$1" 2>/dev/null || true)
	[[ -n ${J[mapping]+set} ]] || fail "natcheck -json printed no valid object: $(cat "$1")"
}
