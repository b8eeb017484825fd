# shellcheck shell=bash
# What registry_redis.sh and failover.sh share: sourced after the caller has
# set LAB, PUNCH, REPO and WAIT_S and sourced scripts/lab.
#
#   redis_lab_init   one namespace, "server", with nothing but loopback (no
#                    traffic leaves it), and the EXIT teardown: it stops
#                    the punch servers in SRV_PIDS and Redis, shows their
#                    logs when the test failed, and removes the namespace
#   in_ns CMD...     CMD in that namespace
#   rcli ARGS...     redis-cli there
#   start_redis      redis-server on 127.0.0.1:6379, up once it answers PING

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

REDIS_PID="" SRV_PIDS=()

redis_lab_on_exit() {
	local rc=$? pid f
	# errexit off: the `(exit "$rc")` below, which hands rc on to the
	# teardown, would otherwise end this trap before the teardown on a
	# failure, and leave the namespace behind.
	set +e
	for pid in "${SRV_PIDS[@]}" $REDIS_PID; do
		lab_stop_pid "$pid"
	done
	if ((rc)); then
		for f in "$RUN_DIR"/s*.err "$RUN_DIR"/redis.log; do
			[[ -e $f ]] && { echo "---- $(basename "$f")" >&2; tail -n 40 "$f" | sed 's/^/  | /' >&2; }
		done
	fi
	(exit "$rc")
	lab_run_teardown
}

redis_lab_init() {
	((EUID == 0)) || fail "this test needs root (a network namespace), as CI has"
	command -v redis-server >/dev/null || fail "redis-server is missing; run scripts/deps.sh"
	lab_opts_reset
	lab_check_free
	lab_run_init
	trap redis_lab_on_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# shellcheck disable=SC2034 # (read by lab_run_teardown)
	LAB_OWNED=1
	lab_add_node server 0 # only lo, and it is up
	NS=$(lab_ns server)
}

in_ns() { ip netns exec "$NS" "$@"; }
rcli() { in_ns redis-cli -p 6379 "$@"; }

start_redis() {
	mkdir -p "$RUN_DIR/redis"
	lab_spawn server "$RUN_DIR/redis" /dev/null redis-server --port 6379 --bind 127.0.0.1 \
		--save '' --appendonly no --dir "$RUN_DIR/redis" --logfile "$RUN_DIR/redis.log"
	REDIS_PID=$LAB_PID
	local i
	for ((i = 0; i < WAIT_S * 10; i++)); do
		[[ $(rcli ping 2>/dev/null) == PONG ]] && return 0
		lab_alive "$REDIS_PID" || break
		sleep 0.1
	done
	fail "redis-server did not answer PING within $WAIT_S s"
}
