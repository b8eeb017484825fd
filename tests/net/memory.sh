#!/usr/bin/env bash
# Memory against a hostile peer (scenario nat2):
#
#   memory.sh PATH_TO_PUNCH forward|pipe
#
# forward: bob runs `punch forward -allow` for a target that never answers
#   (its SYNs are dropped: each connection stays pending) and for a TCP echo; alice, the hostile
#   peer, runs `punch forward -L` to both, and 1,000 connections at once
#   each write up to 2 MB toward the silent target.
# pipe: alice pipes 200 MB to bob, whose standard output is a pipe to a
#   reader that is stopped (SIGSTOP) for longer than QUIC's idle timeout
#   (30 s), then continued.
#
# In both, bob's resident memory (VmRSS, sampled every 0.2 s) must stay
# under RSS_LIMIT_MB, and the link must stay up: the echo still answers
# after the flood; all 200 MB reach bob's reader once it runs again, and
# both sides exit 0.  A run that passes RSS_ABORT_MB is stopped at once, so
# that an unbounded punch cannot exhaust the machine.
#
# Under AddressSanitizer, freed memory is held in a quarantine (256 MB by
# default) that is ASan's, not punch's: it is kept to 8 MB here.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
CASE=${2:-}
[[ $CASE == forward || $CASE == pipe ]] || fail "usage: $0 PATH_TO_PUNCH forward|pipe"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:quarantine_size_mb=8
MEM=(python3 "$NET_HERE/memflood.py")
RSS_LIMIT_MB=64
RSS_ABORT_MB=300
SAMPLE_S=0.2
ECHO_TRIES=20 # about 2 s apart: the stalled connections must end first
RSS_MAX_KB=0

# rss_kb PID: resident set size in kB (0 once it is gone).
rss_kb() {
	awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' \
		"/proc/$1/status" 2>/dev/null || echo 0
}

# rss_watch SECONDS PID: sample PID's RSS for SECONDS (the phase under
# attack), keep the maximum in RSS_MAX_KB, and stop the test as soon as it
# passes RSS_ABORT_MB.
rss_watch() {
	local limit=$1 pid=$2 kb
	lab_now
	local deadline=$((LAB_NOW + limit * 1000))
	while lab_now && ((LAB_NOW < deadline)); do
		kb=$(rss_kb "$pid")
		((kb > RSS_MAX_KB)) && RSS_MAX_KB=$kb
		((kb < RSS_ABORT_MB * 1024)) ||
			fail "bob's RSS reached $((kb / 1024)) MB (over $RSS_ABORT_MB MB): stopped the run"
		lab_expect_running "while under attack" bob
		sleep "$SAMPLE_S"
	done
}

rss_verdict() {
	echo "bob's RSS: at most $((RSS_MAX_KB / 1024)) MB ($RSS_MAX_KB kB) under attack"
	((RSS_MAX_KB < RSS_LIMIT_MB * 1024)) ||
		fail "bob's RSS: expected under $RSS_LIMIT_MB MB; seen $((RSS_MAX_KB / 1024)) MB"
	ok "bob's RSS stayed under $RSS_LIMIT_MB MB ($((RSS_MAX_KB / 1024)) MB at most)"
}

case_forward() {
	local conns=1000 bytes=$((2 << 20)) flood_s=20 out
	net_up nat2
	lab_start_server
	ulimit -n 8192
	# 127.0.0.1:7000 in bob's namespace never answers a SYN.
	lab_nsx bob iptables -I INPUT -p tcp -d 127.0.0.1 --dport 7000 --syn -j DROP
	: >"$NET_TMP/echo.out"
	lab_nsx bob python3 "$NET_HERE/tcpecho.py" serve 127.0.0.1:7001 300 >"$NET_TMP/echo.out" 2>&1 &
	NET_PIDS+=($!)
	lab_wait_line "$NET_TMP/echo.out" '^ready$' 20 ||
		fail "the TCP echo in bob's namespace did not start: $(cat "$NET_TMP/echo.out")"

	LAB_STDIN=/dev/null lab_start_peer alice bob forward -L 18080:127.0.0.1:7000 -L 18081:127.0.0.1:7001
	LAB_STDIN=/dev/null lab_start_peer bob alice forward -allow 127.0.0.1:7000 -allow 127.0.0.1:7001
	lab_wait_established alice bob
	lab_wait_client alice '^Forwarding 127\.0\.0\.1:18081 ' "alice's listeners"
	echo "bob's RSS before the flood: $(($(rss_kb "${CLIENT_PID[bob]}") / 1024)) MB"

	lab_nsx alice timeout -k 2 $((flood_s + 10)) "${MEM[@]}" flood 127.0.0.1:18080 \
		"$conns" "$bytes" "$flood_s" >"$NET_TMP/flood.out" 2>&1 &
	NET_PIDS+=($!)
	local flood=$!
	rss_watch "$flood_s" "${CLIENT_PID[bob]}"
	lab_wait_gone 15 "$flood" || fail "the flood did not end within 15 s of its $flood_s s"
	echo "    $(cat "$NET_TMP/flood.out")"
	rss_verdict

	# The silent target now refuses: bob's pending connections fail at
	# their next SYN (the kernel retries at 1, 3, 7, 15, 31 s...), their
	# streams end, and the link carries a new connection to the echo.
	lab_nsx bob iptables -I INPUT -p tcp -d 127.0.0.1 --dport 7000 --syn -j REJECT --reject-with tcp-reset
	local tries=0
	until out=$(lab_nsx alice timeout -k 2 20 python3 "$NET_HERE/tcpecho.py" clients 127.0.0.1:18081 1 65536 10 2>&1); do
		((++tries < ECHO_TRIES)) ||
			fail "after the flood: expected the echo through 127.0.0.1:18081 to answer within $ECHO_TRIES tries; seen: $out"
		lab_expect_running "after the flood" alice bob
		sleep 2
	done
	lab_expect_running "after the flood" alice bob
	ok "the link stays up: the echo answers through it after the flood"
}

case_pipe() {
	local mb=200 stall_s=35 done_s=120 reader count
	mkfifo "$NET_TMP/a2b"
	head -c $((mb << 20)) /dev/zero >"$NET_TMP/a2b" &
	NET_PIDS+=($!)
	# bob's stdout: a pipe to a reader that stops itself at once.
	cat >"$NET_TMP/stalled-stdout" <<-WRAP
		#!/usr/bin/env bash
		exec "$PUNCH" "\$@" > >(exec ${MEM[*]} stalled-reader "$NET_TMP/reader.pid" "$NET_TMP/reader.count")
	WRAP
	chmod +x "$NET_TMP/stalled-stdout"
	net_up nat2
	lab_start_server
	LAB_STDIN=$NET_TMP/a2b lab_start_peer alice bob pipe
	LAB_STDIN=/dev/null PUNCH=$NET_TMP/stalled-stdout lab_start_peer bob alice pipe
	lab_wait_established alice bob
	lab_wait_client bob '^Secure link up' "'Secure link up'"
	lab_wait_line "$NET_TMP/reader.pid" '^[0-9]+$' 20 ||
		fail "bob's stdout reader did not start"
	reader=$(cat "$NET_TMP/reader.pid")
	NET_PIDS+=("$reader")
	rss_watch "$stall_s" "${CLIENT_PID[bob]}"
	rss_verdict
	kill -CONT "$reader"
	lab_wait_gone "$done_s" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
		fail "expected alice and bob to finish within $done_s s of bob's reader continuing"
	for id in alice bob; do
		lab_client_exited "$id"
		expect_eq "$id's exit status (stderr: $(tail -n 2 "$RUN_DIR/$id.err" | tr '\n' '|'))" 0 "${CLIENT_RC[$id]}"
	done
	lab_wait_line "$NET_TMP/reader.count" '^[0-9]+$' 20 || fail "bob's stdout reader did not finish"
	count=$(cat "$NET_TMP/reader.count")
	expect_eq "bytes bob's reader got once continued" $((mb << 20)) "$count"
	ok "the link stayed up through a $stall_s s stall: all $mb MB arrived, both exit 0"
}

"case_$CASE"
lab_check_sanitizers
echo PASS
