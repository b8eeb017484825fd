#!/usr/bin/env bash
# chat_latency.sh - how long a chat line takes from one side to the other
# through two home NATs (lab scenario nat2), against the lab's round trip.
#
# Two `punch chat` peers (alice behind nata, bob behind natb) are started by
# bench/chat_latency.py, which writes SAMPLES lines, alternately into
# alice's and bob's standard input, each only after the previous one has
# arrived, and times each from its write to the moment the other side
# prints it.  The round trip is `ping` from alice to natb's public address
# (alice -> nata -> router -> natb and back: the path of punch's packets but
# for natb's last hop to bob, a veth).  The issue's target: a line arrives
# within the RTT plus 1 ms.  (A line needs one way, not a round trip; the
# RTT is the yardstick the target names.)  It also shows how long after the
# QUIC client's "Secure link up" (alice's) the server's (bob's) came, as both
# stderr streams reached the driver.
#
# Everything runs in a lab instance of its own (LAB, default clPID); every
# wait is bounded; an EXIT trap stops the instance's processes and removes
# its namespaces, also on failure or Ctrl-C.  No traffic leaves the lab.
#
# Usage: bench/chat_latency.sh            (as root, from anywhere)
# Environment (all optional):
#   PUNCH=build/punch   the punch binary (a Release build)
#   SAMPLES=200         lines timed
#   PINGS=50            echo requests for the RTT, 10 ms apart
#   TIMEOUT_S=10        bound on each wait (start-up, each line)
#   LAB=clPID           lab instance name (see scripts/lab)
# Exit status: 0 if the median is within the target, 2 if not, 1 on failure.
set -euo pipefail
export LC_ALL=C

CL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CL_REPO=$(cd "$CL_HERE/.." && pwd)
LAB=${LAB:-cl$$}
# shellcheck source=../scripts/lab
source "$CL_REPO/scripts/lab"

PUNCH=${PUNCH:-$CL_REPO/build/punch}
SAMPLES=${SAMPLES:-200}
PINGS=${PINGS:-50}
TIMEOUT_S=${TIMEOUT_S:-10}
readonly NATB_IP=192.0.2.10

cl_die() {
	echo "chat_latency: $*" >&2
	exit 1
}

((EUID == 0)) || cl_die "needs root (network namespaces, iptables)"
[[ $SAMPLES =~ ^[1-9][0-9]*$ ]] || cl_die "SAMPLES='$SAMPLES': expected a positive whole number"
[[ $PINGS =~ ^[1-9][0-9]*$ ]] || cl_die "PINGS='$PINGS': expected a positive whole number"
[[ $TIMEOUT_S =~ ^[1-9][0-9]*$ ]] || cl_die "TIMEOUT_S='$TIMEOUT_S': expected whole seconds"
[[ -x $PUNCH ]] || cl_die "$PUNCH not found; build it (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build --target punch) or set PUNCH"
PUNCH=$(realpath "$PUNCH")
for cmd in ip iptables ping python3 awk timeout; do
	command -v "$cmd" >/dev/null || cl_die "$cmd not found (scripts/deps.sh installs it)"
done
lab_check_free

CL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/chat_latency.XXXXXX")
# shellcheck disable=SC2317 # run by the trap
cl_cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	lab_down
	rm -rf "$CL_TMP" "${RUN_DIR:-}"
	exit "$rc"
}
trap cl_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

lab_parse_opts up nat2
lab_run_init
lab_build
lab_start_server
for id in alice bob; do
	XDG_CONFIG_HOME=$CL_TMP/keys/$id "$PUNCH" id >/dev/null 2>&1 || cl_die "'punch id' failed for $id"
done

# The round trip, before the chats (nothing else on the path).
# "rtt min/avg/max/mdev = 0.052/0.086/0.210/0.030 ms": the average.
rtt=$(lab_nsx alice timeout "$TIMEOUT_S" ping -n -q -c "$PINGS" -i 0.01 "$NATB_IP" |
	awk -F'= ' '/^rtt|^round-trip/ { split($2, v, "/"); print v[2] }') || true
[[ $rtt =~ ^[0-9.]+$ ]] || cl_die "no RTT from ping alice -> $NATB_IP"

timeout -k 5 $((TIMEOUT_S * (SAMPLES + 3))) python3 "$CL_HERE/chat_latency.py" "$PUNCH" \
	"$SERVER_IP:$LAB_STUN_PORT" "$(lab_ns alice)" "$(lab_ns bob)" "$CL_TMP/keys" \
	"$SAMPLES" "$TIMEOUT_S" >"$CL_TMP/samples" || {
	cat "$CL_TMP/samples" >&2
	cl_die "the chat run failed"
}
read -r _ n _ med _ p90 _ max _ < <(tail -n 1 "$CL_TMP/samples")
gap=$(awk '$1 == "link-up" { print $3 }' "$CL_TMP/samples")
echo "chat_latency: scenario nat2, $n lines (alternately alice->bob and bob->alice), punch $PUNCH"
echo "  line latency: median $med ms, p90 $p90 ms, max $max ms (write on one side -> printed on the other)"
echo "  lab RTT: $rtt ms (ping alice -> natb, average of $PINGS)"
echo "  handshake: bob's (the QUIC server's) 'Secure link up' came $gap ms after alice's"
target=$(awk -v r="$rtt" 'BEGIN { printf "%.3f", r + 1 }')
if awk -v m="$med" -v t="$target" 'BEGIN { exit !(m <= t) }'; then
	echo "  within the target: median $med ms <= RTT + 1 ms = $target ms"
else
	echo "  OVER the target: median $med ms > RTT + 1 ms = $target ms"
	exit 2
fi
echo "  each line: $(awk '$1 ~ /->/ { printf "%s%s", sep, $2; sep = " " }' "$CL_TMP/samples") ms"
