# shellcheck shell=bash
# Shared by the benchmarks that start servers side by side on loopback
# (stun_vs_coturn.sh, threads.sh).  Sourced after the caller has set
# PORT_BASE and defined die().
#
#   servers_init PREFIX  a temp dir ($tmp, /tmp/PREFIX.XXXXXX), the arrays
#                        pid and port, and the EXIT trap that stops every
#                        server in pid (SIGTERM; SIGKILL after 3 s) and
#                        removes $tmp
#   take_port NAME       the next free TCP/UDP port from PORT_BASE (at most
#                        200 tried) becomes port[NAME]

servers_init() {
	tmp=$(mktemp -d "/tmp/$1.XXXXXX")
	declare -gA pid=() port=()
	next_port=$PORT_BASE
	trap servers_cleanup EXIT
	trap 'exit 130' INT TERM
}

# shellcheck disable=SC2317 # run by the EXIT trap
servers_cleanup() {
	local p
	for p in "${pid[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pid[@]}"; do
		# bounded: a server that ignores SIGTERM for 3 s gets SIGKILL
		for _ in 1 2 3 4 5 6; do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$tmp"
}

port_free() { ! ss -Hanut "sport = :$1" | grep -q .; }

take_port() {
	while ! port_free "$next_port"; do
		next_port=$((next_port + 1))
		((next_port < PORT_BASE + 200)) || die "no free port in $PORT_BASE..$((PORT_BASE + 200))"
	done
	# shellcheck disable=SC2034 # the caller reads port
	port[$1]=$next_port
	next_port=$((next_port + 1))
}
