#!/usr/bin/env bash
# punch natcheck over IPv6 (scenario nat1 with --ipv6: alice 2001:db8:1::2
# behind nata, which routes IPv6 without NAT66 behind a stateful ip6tables
# firewall; the server 2001:db8:100::10 with a second address
# 2001:db8:100::11):
#
#   natcheck6.sh PATH_TO_PUNCH
#
# Against `punch server -listen [2001:db8:100::10]:3478 -alt
# [2001:db8:100::11]:3479`, `punch natcheck -server [2001:db8:100::10]:3478
# -json` must report alice's own address as the public IPv6 one (no NAT),
# endpoint-independent mapping (there is none), address-and-port-dependent
# filtering (the firewall lets in only replies), and exit 0.  The human
# form must say the same in its words.  Then with the firewall's rule for
# replies removed, nothing comes back: natcheck says "no UDP answer" and
# exits 4 - the firewall, not the server, is what the report describes.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

SRV6=2001:db8:100::10 ALT6=2001:db8:100::11
ALICE6=2001:db8:1::2
TOOL_LIMIT_S=30 # one natcheck run, end to end

net_up nat1 --ipv6 --nat home
ip -n "$(lab_ns server)" addr add "$ALT6/64" dev eth0 nodad
lab_spawn server "$NET_TMP/server" /dev/null "$PUNCH" server \
	-listen "[$SRV6]:3478" -alt "[$ALT6]:3479" -state "$NET_TMP/state"
NET_PIDS+=("$LAB_PID")
lab_wait_line "$NET_TMP/server.err" '^punch server: listening on ' "$LAB_START_S" "$LAB_PID" ||
	fail "punch server: expected its start line within $LAB_START_S s; seen: $(cat "$NET_TMP/server.err")"

out=$NET_TMP/natcheck.json
rc=0
lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" "$PUNCH" natcheck -server "[$SRV6]:3478" -json \
	>"$out" 2>"$NET_TMP/natcheck.err" || rc=$?
expect_eq "natcheck over IPv6: exit status (stderr: $(cat "$NET_TMP/natcheck.err"))" 0 "$rc"
net_json_load "$out"
expect_eq "natcheck over IPv6: other" "[$ALT6]:3479" "${J[other]}"
expect_eq "natcheck over IPv6: public_v4" None "${J[public_v4]}"
expect_eq "natcheck over IPv6: public IPv6 address (alice's own)" "[$ALICE6]" "${J[public_v6]%:*}"
expect_eq "natcheck over IPv6: nat" False "${J[nat]}"
expect_eq "natcheck over IPv6: port_preserved" True "${J[port_preserved]}"
expect_eq "natcheck over IPv6: mapping" endpoint-independent "${J[mapping]}"
expect_eq "natcheck over IPv6: filtering (the stateful firewall)" address-and-port-dependent "${J[filtering]}"
expect_eq "natcheck over IPv6: nat_type" "no NAT, firewall" "${J[nat_type]}"
ok "natcheck over IPv6: $(cat "$out")"

rc=0
lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" "$PUNCH" natcheck -server "[$SRV6]:3478" >"$NET_TMP/human.out" 2>&1 || rc=$?
expect_eq "natcheck over IPv6 (human form): exit status" 0 "$rc"
for re in '^public IPv4: +none$' "^public IPv6: +\\[$ALICE6\\]:[0-9]+ \\(port preserved\\)$" \
	'^NAT: +no ' '^filtering: +address-and-port-dependent$' '^NAT type: +no NAT, firewall$'; do
	grep -q -E -- "$re" "$NET_TMP/human.out" ||
		fail "natcheck over IPv6 (human form): expected a line matching '$re'; seen:
$(cat "$NET_TMP/human.out")"
done
ok "natcheck's human form over IPv6"

# Without the firewall's rule for replies, no answer gets back to alice.
lab_nsx nata ip6tables -w 5 -D FORWARD -i wan0 -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT ||
	fail "nata: expected the lab's IPv6 rule for replies (scripts/lab); its rules: $(lab_nsx nata ip6tables -S FORWARD)"
rc=0
lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" "$PUNCH" natcheck -server "[$SRV6]:3478" >"$NET_TMP/none.out" 2>"$NET_TMP/none.err" || rc=$?
expect_eq "natcheck over IPv6, replies dropped by the firewall: exit status" 4 "$rc"
grep -q "^punch natcheck: no UDP answer from \\[$SRV6\\]:3478 " "$NET_TMP/none.err" ||
	fail "natcheck over IPv6, replies dropped: expected 'punch natcheck: no UDP answer from [$SRV6]:3478 ...'; seen: $(cat "$NET_TMP/none.err")"
ok "natcheck over IPv6 with replies dropped: exit 4"
echo PASS
