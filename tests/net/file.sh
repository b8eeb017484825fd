#!/usr/bin/env bash
# punch send and punch recv (scenario nat2):
#
#   file.sh PATH_TO_PUNCH
#
# a. 50 MB of random data with 5 % loss at alice's NAT arrives with the same
#    SHA-256; both exit 0.
# b. recv refuses to overwrite an existing file without -f (both exit 1,
#    each saying why, the old file untouched), and replaces it with -f.
# c. send refuses a hidden file and a directory before connecting.  (The
#    names recv must refuse from a hostile sender, "../escape", "a/b" and
#    the like, are tested on its parser: tests/unit/test_app_file.c.)
# d. alice's NAT forgets every mapping (conntrack -F) a third of the way
#    through a 50 MB transfer: the transfer recovers and the file arrives
#    with the right SHA-256.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

BIG_MB=50
DONE_S=45   # for a 50 MB transfer (about 5 s with 5 % loss, under 1 s without)
REFUSE_S=15 # for both sides to exit after a refusal

sum() { sha256sum <"$1" | cut -d' ' -f1; }

start_case() { # NAME NET_UP_ARGS...
	echo "== $1"
	shift
	net_up nat2 "$@"
	lab_start_server
	RECV_DIR=$NET_TMP/recv.$RANDOM
	mkdir -p "$RECV_DIR"
}

end_case() {
	lab_check_sanitizers
	lab_run_stop 0 2>/dev/null || true
	lab_down
	rm -rf "$RUN_DIR"
	lab_run_init
}

# transfer FILE [RECV_ARGS...]: alice sends FILE, bob receives into RECV_DIR.
transfer() {
	local file=$1
	shift
	LAB_STDIN=/dev/null lab_start_peer bob alice recv "$RECV_DIR" "$@"
	LAB_STDIN=/dev/null lab_start_peer alice bob send "$file"
	lab_wait_established alice bob
	lab_now
	T0=$LAB_NOW
}

# wait_both SECONDS WANT_RC: both exit within SECONDS with status WANT_RC.
wait_both() {
	local limit=$1 want=$2 id
	lab_wait_gone "$limit" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
		fail "expected alice and bob to exit within $limit s; seen: still running (bob's directory: $(find "$RECV_DIR" -mindepth 1 -printf '%f %s bytes, ' 2>&1))"
	lab_now
	ELAPSED_MS=$((LAB_NOW - T0))
	for id in alice bob; do
		lab_client_exited "$id"
		expect_eq "$id's exit status (stderr: $(tail -n 2 "$RUN_DIR/$id.err" | tr '\n' '|'))" "$want" "${CLIENT_RC[$id]}"
	done
}

# expect_line ID ERE WHAT
expect_line() {
	grep -q -E -- "$2" "$RUN_DIR/$1.err" ||
		fail "$1: expected $3 on stderr; seen: $(tail -n 3 "$RUN_DIR/$1.err" | tr '\n' '|')"
}

expect_no_temp() {
	local left
	left=$(find "$RECV_DIR" -name '.punch-recv-*' | tr '\n' ' ')
	expect_eq "temporary files left in bob's directory" "" "$left"
}

rate() { # MB MS
	awk -v mb="$1" -v ms="$2" 'BEGIN { printf "%.2f s, %.1f MB/s", ms / 1000, mb * 1.048576 / (ms / 1000) }'
}

head -c $((BIG_MB << 20)) /dev/urandom >"$NET_TMP/big.bin"
BIG_SUM=$(sum "$NET_TMP/big.bin")

# ---- a. 50 MB with 5 % loss
start_case "a. $BIG_MB MB with 5 % loss at nata" --loss 5
transfer "$NET_TMP/big.bin"
wait_both "$DONE_S" 0
expect_eq "SHA-256 of the file bob received" "$BIG_SUM" "$(sum "$RECV_DIR/big.bin")"
expect_line alice "^sent .*big\.bin: $((BIG_MB << 20)) bytes in .* MB/s, SHA-256 $BIG_SUM; bob checked it$" "the summary line"
expect_line bob "^received big\.bin: $((BIG_MB << 20)) bytes in .*SHA-256 $BIG_SUM; saved as " "the summary line"
expect_no_temp
ok "a. $BIG_MB MB with 5 % loss arrived intact in $(rate "$BIG_MB" "$ELAPSED_MS") (from the punch)"
end_case

# ---- b. an existing file, without and with -f
start_case "b. an existing file"
head -c 100000 /dev/urandom >"$NET_TMP/report v2.txt" # a space in the name
echo "old contents" >"$RECV_DIR/report v2.txt"
transfer "$NET_TMP/report v2.txt"
wait_both "$REFUSE_S" 1
expect_line bob "report v2\.txt already exists; not overwriting it without -f" "the refusal"
expect_line alice "bob refused .*report v2\.txt: a file of that name is already there \(punch recv -f overwrites it\)" "why bob refused"
expect_eq "bob's existing file after the refusal" "old contents" "$(cat "$RECV_DIR/report v2.txt")"
expect_no_temp
ok "b. without -f, recv refuses to overwrite and both exit 1"
end_case
start_case "b. the same with -f"
echo "old contents" >"$RECV_DIR/report v2.txt"
transfer "$NET_TMP/report v2.txt" -f
wait_both "$REFUSE_S" 0
expect_eq "SHA-256 of bob's file after -f" "$(sum "$NET_TMP/report v2.txt")" "$(sum "$RECV_DIR/report v2.txt")"
ok "b. with -f, recv replaces the file"
end_case

# ---- c. names recv must refuse, and what send refuses itself
echo secret >"$NET_TMP/.hidden"
rc=0
out=$("$PUNCH" send -server 127.0.0.1:9 -id alice -peer bob "$NET_TMP/.hidden" 2>&1) || rc=$?
expect_eq "send .hidden: exit status (output: $out)" 1 "$rc"
[[ $out == *"the name starts with '.'"* ]] || fail "send .hidden: expected the reason; seen '$out'"
rc=0
out=$("$PUNCH" send -server 127.0.0.1:9 -id alice -peer bob "$NET_TMP" 2>&1) || rc=$?
expect_eq "send DIR: exit status (output: $out)" 1 "$rc"
[[ $out == *"not a regular file"* ]] || fail "send DIR: expected 'not a regular file'; seen '$out'"
ok "c. send refuses a hidden file and a directory before connecting"

# ---- d. alice's NAT forgets its mappings a third of the way through
start_case "d. conntrack -F at nata during a $BIG_MB MB transfer"
transfer "$NET_TMP/big.bin"
third=$(((BIG_MB << 20) / 3))
lab_now
deadline=$((LAB_NOW + DONE_S * 1000))
while :; do
	size=$(find "$RECV_DIR" -name '.punch-recv-*' -printf '%s\n' 2>/dev/null | head -n 1)
	((${size:-0} >= third)) && break
	lab_expect_running "before a third of the file arrived" alice bob
	lab_now
	((LAB_NOW < deadline)) || fail "bob: expected its temporary file to reach $third bytes within $DONE_S s; seen ${size:-no file}"
	sleep 0.02
done
lab_nsx nata conntrack -F 2>/dev/null
echo "flushed nata's conntrack table at $size of $((BIG_MB << 20)) bytes"
wait_both "$DONE_S" 0
expect_eq "SHA-256 of the file bob received after the flush" "$BIG_SUM" "$(sum "$RECV_DIR/big.bin")"
expect_no_temp
ok "d. the transfer survived the flush: intact in $(rate "$BIG_MB" "$ELAPSED_MS") (from the punch)"
end_case
echo PASS
