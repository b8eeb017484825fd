#!/usr/bin/env bash
# punch natcheck behind every NAT mode of the lab (scenario nat1: alice
# behind nata, the server on the public side with a second address,
# 198.51.100.11):
#
#   natcheck.sh PATH_TO_PUNCH
#
# For each mode (nata reconfigured in place), against `punch server -listen 198.51.100.10:3478 -alt
# 198.51.100.11:3479` and then against coturn's turnserver on the same two
# addresses (RFC 5780 mode), `punch natcheck -json` must name the mapping,
# the filtering and the NAT type the lab configured, and coturn's
# turnutils_natdiscovery, run from the same place, must agree with it on
# mapping and filtering; the port pattern must be random behind symmetric,
# sequential behind sequential, preserving elsewhere.  Then, with
# conntrack's UDP timeout at 3 s,
# `-lifetime` must find that a mapping survives 2 s idle and not 4 s; and
# with the server stopped, natcheck must say "no UDP answer" and exit 4.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
for cmd in turnutils_natdiscovery turnserver; do
	command -v "$cmd" >/dev/null || fail "$cmd not found: install Debian package coturn (scripts/deps.sh does)"
done

SRV=198.51.100.10 ALT=198.51.100.11
P1=3478 P2=3479              # punch server
C1=3488 C2=3489              # coturn
PUBLIC=203.0.113.10          # nata's public address
TOOL_LIMIT_S=30              # one natcheck or natdiscovery run, end to end

EI=endpoint-independent AD=address-dependent APD=address-and-port-dependent
# expected MODE: "MAPPING FILTERING EXIT TYPE"
expected() {
	case $1 in
	home | plain) echo "$EI $APD 0 port-restricted cone" ;;
	symmetric | sequential) echo "$APD $APD 3 symmetric" ;;
	fullcone) echo "$EI $EI 0 full cone" ;;
	restricted) echo "$EI $AD 0 restricted cone" ;;
	esac
}

# natdiscovery_words FILE KIND: turnutils_natdiscovery's verdict on KIND
# (Mapping or Filtering) in natcheck's words.
natdiscovery_words() {
	local line
	line=$(grep -E "(NAT with .* $2!|No NAT! \\(.* $2\\))" "$1" | tail -n 1 || true)
	case $line in
	*"Endpoint Independent"*) echo "$EI" ;;
	*"Address and Port Dependent"*) echo "$APD" ;;
	*"Address Dependent"*) echo "$AD" ;;
	*) echo "none" ;;
	esac
}

# start_punch_server: punch server with -alt in the server namespace.
start_punch_server() {
	lab_spawn server "$NET_TMP/server" /dev/null "$PUNCH" server \
		-listen "$SRV:$P1" -alt "$ALT:$P2" -state "$NET_TMP/state"
	PUNCH_SERVER_PID=$LAB_PID
	NET_PIDS+=("$LAB_PID")
	lab_wait_line "$NET_TMP/server.err" '^punch server: listening on ' "$LAB_START_S" "$LAB_PID" ||
		fail "punch server: expected its start line within $LAB_START_S s; seen: $(cat "$NET_TMP/server.err")"
}

# start_coturn: coturn's STUN-only server on the same two addresses, ports
# C1 and C2.  It prints no start line, so alice polls both (bounded).
start_coturn() {
	lab_spawn server "$NET_TMP/coturn" /dev/null turnserver -n --stun-only --no-cli --no-tls --no-dtls -m 1 \
		--listening-ip "$SRV" --listening-ip "$ALT" --listening-port "$C1" --alt-listening-port "$C2" \
		--log-file stdout --pidfile "$NET_TMP/turnserver.pid" -b "$NET_TMP/turndb"
	NET_PIDS+=("$LAB_PID")
	local ip
	for ip in "$SRV" "$ALT"; do
		net_wait_binding alice "$ip" "$C2" "$LAB_START_S" ||
			fail "turnserver: expected Binding answers on $ip:$C2 within $LAB_START_S s; its log: $(tail -n 20 "$NET_TMP/coturn.out")"
	done
}

# nat_mode MODE: nata becomes a NAT of MODE, afresh: its rules and its
# conntrack table emptied, then the lab's own rules for MODE (scripts/lab
# lab_nat).  Cheaper than a new instance per mode, and the servers stay up.
nat_mode() {
	lab_nsx nata iptables -w 5 -t nat -F
	lab_nsx nata iptables -w 5 -F
	lab_nsx nata nft delete table ip lab_cone 2>/dev/null || true
	lab_nsx nata nft delete table ip lab_sequential 2>/dev/null || true
	lab_nat nata "$1"
	lab_nsx nata conntrack -F 2>/dev/null || true
}

# natcheck_expect WHAT MODE PORT ALT_PORT: run natcheck -json in alice and check it
# against the lab's configuration.
natcheck_expect() {
	local what=$1 mode=$2 port=$3 alt=$4 out=$NET_TMP/natcheck.json rc=0
	local want_m want_f want_rc want_type
	read -r want_m want_f want_rc want_type < <(expected "$mode")
	lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" "$PUNCH" natcheck -server "$SRV:$port" -json \
		>"$out" 2>"$NET_TMP/natcheck.err" || rc=$?
	expect_eq "natcheck against $what behind $mode: exit status (stderr: $(cat "$NET_TMP/natcheck.err"))" "$want_rc" "$rc"
	net_json_load "$out"
	expect_eq "natcheck against $what behind $mode: mapping" "$want_m" "${J[mapping]}"
	expect_eq "natcheck against $what behind $mode: filtering" "$want_f" "${J[filtering]}"
	expect_eq "natcheck against $what behind $mode: nat_type" "$want_type" "${J[nat_type]}"
	expect_eq "natcheck against $what behind $mode: other" "$ALT:$alt" "${J[other]}"
	expect_eq "natcheck against $what behind $mode: public IP" "$PUBLIC" "${J[public_v4]%%:*}"
	expect_eq "natcheck against $what behind $mode: hairpin (the lab's NATs do not hairpin)" False "${J[hairpin]}"
	expect_eq "natcheck against $what behind $mode: portmap" None "${J[portmap]}"
	if [[ $mode == symmetric ]]; then
		expect_eq "natcheck against $what behind $mode: port_pattern (--random-fully)" random "${J[port_pattern]}"
	elif [[ $mode == sequential ]]; then
		# each new flow the next port: natcheck's six mappings one apart
		expect_eq "natcheck against $what behind $mode: port_pattern (a counter)" sequential "${J[port_pattern]}"
	else
		expect_eq "natcheck against $what behind $mode: port_preserved" True "${J[port_preserved]}"
		expect_eq "natcheck against $what behind $mode: port_pattern" preserving "${J[port_pattern]}"
	fi
	ok "natcheck against $what behind $mode: $(cat "$out")"
}

net_up nat1 --nat home
ip -n "$(lab_ns server)" addr add "$ALT/24" dev eth0
start_punch_server
start_coturn
for mode in home plain symmetric sequential fullcone restricted; do
	nat_mode "$mode"
	read -r want_m want_f _ < <(expected "$mode")
	natcheck_expect "punch server" "$mode" "$P1" "$P2"
	nd=$NET_TMP/natdiscovery.out
	rc=0
	lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" turnutils_natdiscovery -m -f -p "$P1" "$SRV" >"$nd" 2>&1 || rc=$?
	((rc == 0)) || fail "turnutils_natdiscovery behind $mode: exit status $rc (124: killed after $TOOL_LIMIT_S s); output: $(cat "$nd")"
	expect_eq "turnutils_natdiscovery's mapping behind $mode (natcheck's: $want_m)" "$want_m" "$(natdiscovery_words "$nd" Mapping)"
	expect_eq "turnutils_natdiscovery's filtering behind $mode (natcheck's: $want_f)" "$want_f" "$(natdiscovery_words "$nd" Filtering)"
	ok "turnutils_natdiscovery behind $mode agrees: mapping $want_m, filtering $want_f"
	natcheck_expect "coturn" "$mode" "$C1" "$C2"
done

# The human form, behind the last mode (restricted).
rc=0
lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" "$PUNCH" natcheck -server "$SRV:$P1" >"$NET_TMP/human.out" 2>&1 || rc=$?
expect_eq "natcheck (human form) behind restricted: exit status" 0 "$rc"
for re in '^mapping: +endpoint-independent$' '^filtering: +address-dependent$' \
	'^NAT type: +restricted cone$' "^public IPv4: +$PUBLIC:[0-9]+ \\(port preserved\\)$" \
	'^port mapping: +none \(the gateway gave no mapping' '^verdict: +easy; direct to full cone, restricted cone, port-restricted cone, symmetric peers'; do
	grep -q -E -- "$re" "$NET_TMP/human.out" ||
		fail "natcheck (human form) behind restricted: expected a line matching '$re'; seen:
$(cat "$NET_TMP/human.out")"
done
ok "natcheck's human form behind restricted"

# RFC 5780 4.6 with conntrack forgetting idle UDP flows after 3 s.
nat_mode home
lab_udp_timeout nata 3
out=$NET_TMP/lifetime.json
rc=0
lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" "$PUNCH" natcheck -server "$SRV:$P1" -json -lifetime >"$out" || rc=$?
expect_eq "natcheck -lifetime: exit status" 0 "$rc"
net_json_load "$out"
expect_eq "natcheck -lifetime with a 3 s conntrack timeout: lifetime_s" 2 "${J[lifetime_s]}"
expect_eq "natcheck -lifetime with a 3 s conntrack timeout: lifetime_max_s" 4 "${J[lifetime_max_s]}"
ok "natcheck -lifetime: $(cat "$out")"

# No server: no UDP answer, exit 4, one sentence.
lab_stop_pid "$PUNCH_SERVER_PID"
rc=0
lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" "$PUNCH" natcheck -server "$SRV:$P1" >"$NET_TMP/none.out" 2>"$NET_TMP/none.err" || rc=$?
expect_eq "natcheck with no server: exit status" 4 "$rc"
grep -q "^punch natcheck: no UDP answer from $SRV:$P1 " "$NET_TMP/none.err" ||
	fail "natcheck with no server: expected 'punch natcheck: no UDP answer from $SRV:$P1 ...' on stderr; seen: $(cat "$NET_TMP/none.err")"
ok "natcheck with no server: exit 4, $(cat "$NET_TMP/none.err")"
echo PASS
