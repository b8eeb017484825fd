#!/usr/bin/env bash
# Clients fail over between servers that share one registry in a real
# redis-server (punch server -registry), all in a namespace of its own with
# nothing but loopback (no traffic leaves it).  The peers are `punch chat`.
#
#   failover.sh PATH_TO_PUNCH MODE
#
#   waiting  alice (-server s1,s2) waits registered at s1, the only one up
#            when she starts, so her pick is s1; s1 is killed; after three
#            missed refreshes she registers at s2, and meets bob, who
#            came through s3 only; they chat both ways.  Her known_servers
#            pins each server's own key.  The servers relay (TURN): her
#            relayed candidate from s1 is dropped and made again at s2.
#   chat     alice and bob (-server s1,s2, -server-key for both keys) chat
#            directly through s1; s1 is killed mid-chat: lines go both
#            ways right after, both move to s2, and lines still go both
#            ways; quit ends it cleanly.
#   relay    alice and bob (-relay-only, -server s1,s2, -server-key for
#            both) chat through s1's relay; then s1's rendezvous goes deaf
#            (an iptables u32 rule drops REGISTER and RENEW to it) while
#            its relay works on.  Both move to s2 and keep their
#            allocations at s1, which carry the link: lines go both ways
#            after the move, and neither asks s2 for a relay.
#
# s1 is alone when the clients start, so that their pick is s1 whatever the
# machine's load does to RTTs (the pick's RTT order is unit-tested).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
LAB=f$$
export LAB
# shellcheck source=../../scripts/lab
source "$REPO/scripts/lab"

# shellcheck source=redis_lab.sh
source "$REPO/tests/net/redis_lab.sh"
if (($# != 2)) || [[ ! -x $1 ]]; then fail "usage: $0 PATH_TO_PUNCH waiting|chat|relay"; fi
PUNCH=$1 MODE=$2
WAIT_S=20 # every bounded wait for an event
# Three missed refreshes: the first refresh comes up to 10 s after the
# last answer, each is missed after 5 s: at most 25 s, then the pick (1 s).
MOVE_S=40
redis_lab_init
OPT_TIMEOUT=$WAIT_S

srv() { echo "127.0.0.1:$((3477 + $1))"; }
# relay: the peers' addresses are on loopback, which a relay refuses
# unless told.
SRV_ARGS=()
[[ $MODE != relay ]] || SRV_ARGS=(-relay-allow-private)

# start_server N: punch server N on 127.0.0.1:347(7+N), connected to Redis.
start_server() {
	local n=$1
	lab_spawn server "$RUN_DIR/s$n" /dev/null "$PUNCH" server -listen "$(srv "$n")" \
		-state "$RUN_DIR/s$n.state" -registry redis://127.0.0.1:6379 -log info \
		-auth-secret failover-test -relay-ip 127.0.0.1 "${SRV_ARGS[@]}"
	SRV_PIDS[n]=$LAB_PID
	wait_log "$RUN_DIR/s$n.err" ': connected; this server is [0-9a-f]{16}$'
}

kill_server() {
	kill -KILL "${SRV_PIDS[$1]}"
	lab_wait_gone 5 "${SRV_PIDS[$1]}" || fail "s$1: still alive after SIGKILL"
	wait "${SRV_PIDS[$1]}" 2>/dev/null || true
	unset "SRV_PIDS[$1]"
}

# wait_log FILE ERE [SECONDS]: FILE has a line matching ERE.
wait_log() {
	lab_wait_line "$1" "$2" "${3:-$WAIT_S}" ||
		fail "$(basename "$1"): expected a line matching '$2' within ${3:-$WAIT_S} s; seen:
$(sed 's/^/  | /' "$1" 2>/dev/null)"
}

# chat ID PEER ARGS...: `punch chat` as ID, its input the FIFO CLIENT_FD[ID]
# (scripts/lab's lab_chat and lab_quit drive it).
chat() {
	local id=$1 peer=$2 fd fifo=$RUN_DIR/$1.in
	shift 2
	mkfifo "$fifo"
	exec {fd}<>"$fifo"
	mkdir -p "$RUN_DIR/$id.config"
	lab_spawn server "$RUN_DIR/$id" "$fifo" env XDG_CONFIG_HOME="$RUN_DIR/$id.config" \
		"$PUNCH" chat -id "$id" -peer "$peer" "$@" ${FAILOVER_V:+-v}
	CLIENT_PID[$id]=$LAB_PID
	CLIENT_FD[$id]=$fd
}

# moved ID FROM TO: ID said, in one line, that it left server FROM for TO.
moved() {
	wait_log "$RUN_DIR/$1.err" "^Server $(srv "$2") missed 3 refreshes; registering at $(srv "$3") instead \(it answered in [0-9.]+ ms\)$" "$MOVE_S"
	wait_log "$RUN_DIR/s$3.err" "Step 2: $1 registered from "
}

start_redis
start_server 1
case $MODE in
waiting)
	chat alice bob -server "$(srv 1),$(srv 2)"
	wait_log "$RUN_DIR/alice.err" "^Server: $(srv 1), the fastest of 2 to answer \([0-9.]+ ms\)$"
	wait_log "$RUN_DIR/alice.err" '^Step 3: ready: registered in [0-9]+ ms; waiting for the peer$'
	wait_log "$RUN_DIR/alice.err" "^Relay: $(srv 1) relays for me at 127\.0\.0\.1:[0-9]+ "
	wait_log "$RUN_DIR/s1.err" 'Step 3: alice is ready; waiting for bob$'
	start_server 2
	start_server 3
	kill_server 1
	echo "alice registered at s1; s1 killed"
	moved alice 1 2
	wait_log "$RUN_DIR/alice.err" "^Relay: $(srv 2) relays for me at 127\.0\.0\.1:[0-9]+ "
	echo "ok: alice moved to s2 after three missed refreshes, and has its relay"
	chat bob alice -server "$(srv 3)"
	lab_wait_established alice bob
	grep -q -E 'Step 4: introduced bob at 127\.0\.0\.1:[0-9]+ and alice at 127\.0\.0\.1:[0-9]+, who registered at another server' "$RUN_DIR/s3.err" ||
		fail "s3: expected it to introduce bob and alice, who registered at another server; seen: $(grep 'Step 4' "$RUN_DIR/s3.err")"
	lab_chat alice bob
	lab_chat bob alice
	lab_quit alice bob
	n=$(grep -c . "$RUN_DIR/alice.config/punch/known_servers" || true)
	((n == 2)) || fail "alice's known_servers: expected 2 lines (s1's key and s2's); seen $n"
	grep -q "^$(srv 2) " "$RUN_DIR/alice.config/punch/known_servers" ||
		fail "alice's known_servers: expected s2's key pinned under its name"
	echo "ok: alice met bob, who came through s3; each server's key pinned"
	;;
chat)
	keys=() # s2's key made now: s2 starts once the clients have picked s1
	for n in 1 2; do
		keys+=(-server-key "$("$PUNCH" server -state "$RUN_DIR/s$n.state" -print-key)")
	done
	chat alice bob -server "$(srv 1),$(srv 2)" "${keys[@]}"
	chat bob alice -server "$(srv 1)" -server "$(srv 2)" "${keys[@]}"
	lab_wait_established alice bob
	for id in alice bob; do
		wait_log "$RUN_DIR/$id.err" "^Server: $(srv 1), the fastest of 2 to answer"
	done
	start_server 2
	lab_chat alice bob
	kill_server 1
	echo "chatting through s1; s1 killed"
	lab_chat alice bob
	lab_chat bob alice
	echo "ok: the chat goes on without the server"
	moved alice 1 2
	moved bob 1 2
	lab_chat alice bob
	lab_chat bob alice
	lab_quit bob alice
	for id in alice bob; do
		[[ ! -e $RUN_DIR/$id.config/punch/known_servers ]] ||
			fail "$id: -server-key given, yet known_servers was written"
	done
	echo "ok: both moved to s2 mid-chat, the chat went on, and quit ended it"
	;;
relay)
	keys=()
	for n in 1 2; do
		keys+=(-server-key "$("$PUNCH" server -state "$RUN_DIR/s$n.state" -print-key)")
	done
	chat alice bob -server "$(srv 1),$(srv 2)" "${keys[@]}" -relay-only
	chat bob alice -server "$(srv 1),$(srv 2)" "${keys[@]}" -relay-only
	lab_wait_established alice bob
	for id in alice bob; do
		wait_log "$RUN_DIR/$id.err" '^Connection established: .* \(relay via 127\.0\.0\.1:[0-9]+\)'
	done
	start_server 2
	lab_chat alice bob
	# STUN requests of methods 0x07C and 0x07D (RENEW, REGISTER) have the
	# types 0x00EC and 0x00ED (RFC 8489, section 5): the first 16 bits
	# of the UDP payload, at the IP header's length plus 8.
	in_ns iptables -I INPUT -p udp --dport $((3477 + 1)) \
		-m u32 --u32 '0>>22&0x3C@8>>16=0xEC:0xED' -j DROP
	echo "chatting through s1's relay; s1's rendezvous dropped, its relay not"
	moved alice 1 2
	moved bob 1 2
	lab_chat alice bob
	lab_chat bob alice
	n=$(in_ns iptables -L INPUT -v -x -n | awk '/u32/ { print $1 }')
	((n > 0)) || fail "the u32 rule dropped nothing: the test did not make s1 deaf"
	lab_quit bob alice
	for id in alice bob; do
		! grep -q "^Relay: $(srv 2) " "$RUN_DIR/$id.err" ||
			fail "$id: asked s2 for a relay while its link was on s1's"
	done
	echo "ok: both moved to s2 ($n REGISTERs and RENEWs dropped at s1); the link stayed on s1's relay"
	;;
*)
	fail "unknown mode '$MODE'"
	;;
esac
for n in "${!SRV_PIDS[@]}"; do
	lab_stop_pid "${SRV_PIDS[n]}"
	grep -q -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$RUN_DIR/s$n.err" &&
		fail "s$n: sanitizer report"
done
SRV_PIDS=()
for id in alice bob; do
	grep -q -E 'ERROR: (Address|Leak|UndefinedBehavior)Sanitizer|runtime error:' "$RUN_DIR/$id.err" &&
		fail "$id: sanitizer report"
done
echo PASS
