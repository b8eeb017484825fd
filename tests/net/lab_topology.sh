#!/usr/bin/env bash
# The lab itself, without the chat client:
#
#   lab_topology.sh PATH_TO_PUNCH
#
# 1. Every scenario, through the scripts/lab command line: up, nodes, addr,
#    exec; `punch server` in the server namespace; turnutils_stunclient in
#    alice's and bob's namespaces must see the NAT's public address (or the
#    host's own address when it has no NAT); private ranges are not routed;
#    down removes every namespace and the processes in them.
# 2. NAT behaviours, in scenario nat1 (bob public, so he can probe nata):
#    home       unsolicited inbound is dropped and leaves no conntrack entry;
#               mapping endpoint-independent and port-preserving
#    plain      unsolicited inbound is answered (ICMP) and leaves a conntrack
#               entry, so alice's later packet to that peer gets a new port
#    symmetric  the home filter; a new mapped port per destination
#    sequential the home filter; a new mapped port per destination, the
#               next one after the last flow's
#    fullcone   port-preserving; any host may send to a mapping, and nobody
#               to a port that has none
#    restricted port-preserving; a mapping admits any port of an address the
#               inside host has sent to, and nothing from another address
#    udpblock   no UDP gets out (silently dropped, no conntrack entry); TCP
#               does, port-preserving; unsolicited inbound TCP is dropped
# 3. samenat: the LAN works, hairpinning does not.
# 4. --udp-timeout and --loss, in nat2: the sysctls change in the NAT
#    namespaces only, a mapping expires in time, the loss rate is plausible.
# 5. Option errors fail cleanly and leave nothing behind.
# 6. --relay: the lab's server relays, for turnutils_uclient behind nata, to
#    turnutils_peer at bob's public address, without -relay-allow-private
#    (the lab's public ranges are documentation ranges, not private ones).

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
for cmd in turnutils_stunclient turnutils_uclient turnutils_peer; do
	command -v "$cmd" >/dev/null ||
		fail "$cmd not found (package coturn; scripts/deps.sh installs it)"
done

lab() {
	"$LAB_SCRIPT" "$@"
}

# reflexive NODE: the address turnutils_stunclient in NODE sees for itself.
reflexive() {
	local node=$1 out=$NET_TMP/stun-$1.out rc=0
	lab exec "$node" timeout -k 1 10 turnutils_stunclient -p "$LAB_STUN_PORT" "$SERVER_IP" >"$out" 2>&1 || rc=$?
	local addr
	addr=$(sed -n 's/.*UDP reflexive addr: \([0-9.]*\):[0-9]*$/\1/p' "$out" | head -n1)
	[[ -n $addr ]] || fail "turnutils_stunclient in $node against $SERVER_IP:$LAB_STUN_PORT: expected a 'UDP reflexive addr' line; seen status $rc and:
$(sed 's/^/    | /' "$out")"
	echo "$addr"
}

# ------------------------------------------------- 1. scenarios, CLI

declare -A NODES=(
	[lan]="alice bob server sw"
	[nat1]="alice bob nata router server"
	[nat2]="alice bob nata natb router server"
	[samenat]="alice bob nata router server"
)
declare -A ADDRS=( # server alice bob (main addresses)
	[lan]="10.0.0.1 10.0.0.2 10.0.0.3"
	[nat1]="198.51.100.10 10.0.1.2 192.0.2.20"
	[nat2]="198.51.100.10 10.0.1.2 10.0.2.2"
	[samenat]="198.51.100.10 10.0.1.2 10.0.1.3"
)
declare -A MAPPED=( # what the server sees of alice and bob
	[lan]="10.0.0.2 10.0.0.3"
	[nat1]="203.0.113.10 192.0.2.20"
	[nat2]="203.0.113.10 192.0.2.10"
	[samenat]="203.0.113.10 203.0.113.10"
)

for sc in lan nat1 nat2 samenat; do
	lab up "$sc" >"$NET_TMP/up.out"
	expect_eq "$sc: nodes" "${NODES[$sc]}" "$(lab nodes | sort | tr '\n' ' ' | sed 's/ $//')"
	read -r want_server want_alice want_bob <<<"${ADDRS[$sc]}"
	expect_eq "$sc: addr server" "$want_server" "$(lab addr server)"
	expect_eq "$sc: addr alice" "$want_alice" "$(lab addr alice)"
	expect_eq "$sc: addr bob" "$want_bob" "$(lab addr bob)"
	expect_eq "$sc: IPv6 in alice (disabled)" "1" "$(lab exec alice sysctl -n net.ipv6.conf.eth0.disable_ipv6)"

	lab_start_server
	read -r want_a want_b <<<"${MAPPED[$sc]}"
	expect_eq "$sc: alice's reflexive address (turnutils_stunclient)" "$want_a" "$(reflexive alice)"
	expect_eq "$sc: bob's reflexive address (turnutils_stunclient)" "$want_b" "$(reflexive bob)"
	ok "$sc: server reachable; alice seen as $want_a, bob as $want_b"

	case $sc in
	lan | samenat)
		# The peers reach each other directly on their LAN.
		net_echo bob "$want_bob:6000" 3 bob-echo
		seen=$(net_ask alice "$want_alice:6001" "$want_bob:6000")
		expect_eq "$sc: alice -> bob on the LAN" "reply $want_bob:6000 seen $want_alice:6001" "$seen"
		ok "$sc: alice reaches bob at $want_bob directly"
		;;
	nat2)
		# Private ranges are not routed: alice cannot reach bob's LAN address.
		net_echo bob "$want_bob:6000" 3 bob-echo
		seen=$(net_ask alice 10.0.1.2:6001 "$want_bob:6000")
		[[ $seen != reply* ]] || fail "nat2: alice -> bob's private $want_bob: expected no answer (private ranges are not routed); seen '$seen'"
		ok "nat2: bob's private address is unreachable from alice ($seen)"
		;;
	esac
	if [[ $sc == samenat ]]; then
		# No hairpinning: bob's public mapping is not reachable from alice.
		net_echo server "$SERVER_IP:7000" 3 srv-echo
		seen=$(net_ask bob 10.0.1.3:6004 "$SERVER_IP:7000")
		[[ $seen =~ ^reply\ .*\ seen\ 203\.0\.113\.10:([0-9]+)$ ]] ||
			fail "samenat: bob -> server echo: expected 'reply ... seen 203.0.113.10:PORT'; seen '$seen'"
		port=${BASH_REMATCH[1]}
		net_echo bob 10.0.1.3:6004 3 bob-hairpin
		seen=$(net_ask alice 10.0.1.2:6005 "203.0.113.10:$port")
		if [[ $seen == reply* ]] || grep -q '^from' "$NET_TMP/bob-hairpin.out"; then
			fail "samenat: alice -> 203.0.113.10:$port (bob's mapping): expected nothing at bob (hairpin off); seen '$seen', bob's echo: $(cat "$NET_TMP/bob-hairpin.out")"
		fi
		ok "samenat: no hairpinning (alice -> bob's mapping 203.0.113.10:$port: $seen)"
	fi

	# down stops what runs inside, then removes the namespaces.
	"$LAB_SCRIPT" exec alice sleep 60 & # (not the lab function: $! must be the sleep itself)
	sleeper=$!
	NET_PIDS+=("$sleeper")
	net_wait_in_ns alice "$sleeper"
	lab_stop_server
	lab down
	lab_wait_gone 2 "$sleeper" || fail "$sc: expected 'down' to stop the process in alice (pid $sleeper); seen it still running"
	net_expect_gone
	ok "$sc: down removed every namespace and process"
done

# ---------------------------------------------- 2. NAT modes, nat1

# nat_mode_check MODE: see the header.
nat_mode_check() {
	local mode=$1 seen n
	net_up nat1 --nat "$mode"
	net_echo server 198.51.100.10:7000 20 "echo-$mode"
	# bob probes nata's public address at alice's future port 4444.
	seen=$(net_ask bob 192.0.2.20:5555 203.0.113.10:4444)
	n=$(lab_nsx nata conntrack -L -p udp -s 192.0.2.20 2>/dev/null | wc -l)
	case $mode in
	home | symmetric | sequential)
		expect_eq "$mode: unsolicited bob -> nata:4444" "timeout" "$seen"
		expect_eq "$mode: conntrack entries in nata from bob's probe" "0" "$n"
		;;
	plain)
		expect_eq "$mode: unsolicited bob -> nata:4444 (nata answers port unreachable)" "refused" "$seen"
		expect_eq "$mode: conntrack entries in nata from bob's probe" "1" "$n"
		;;
	esac
	# alice, from 4444, to the server and then to bob.
	net_echo bob 192.0.2.20:5555 20 bob"echo-$mode"
	local to_server to_bob re='^reply [^ ]+ seen 203\.0\.113\.10:([0-9]+)$'
	seen=$(net_ask alice 10.0.1.2:4444 198.51.100.10:7000)
	[[ $seen =~ $re ]] || fail "$mode: alice -> server: expected 'reply ... seen 203.0.113.10:PORT'; seen '$seen'"
	to_server=${BASH_REMATCH[1]}
	seen=$(net_ask alice 10.0.1.2:4444 192.0.2.20:5555)
	[[ $seen =~ $re ]] || fail "$mode: alice -> bob: expected 'reply ... seen 203.0.113.10:PORT' (the reply comes back through the mapping); seen '$seen'"
	to_bob=${BASH_REMATCH[1]}
	case $mode in
	home)
		expect_eq "home: alice's mapped port towards the server" 4444 "$to_server"
		expect_eq "home: alice's mapped port towards bob" 4444 "$to_bob"
		ok "home: drops unsolicited inbound without a conntrack entry; mapping 10.0.1.2:4444 -> 203.0.113.10:4444 for every peer"
		;;
	plain)
		expect_eq "plain: alice's mapped port towards the server" 4444 "$to_server"
		[[ $to_bob != 4444 ]] || fail "plain: alice -> bob after bob's stray probe: expected a new mapped port (the probe's conntrack entry holds 4444); seen 4444"
		ok "plain: unsolicited inbound answered and tracked; alice's port towards bob became $to_bob"
		;;
	symmetric)
		local try=0
		while [[ $to_server == "$to_bob" ]] && ((try++ < 3)); do
			# One chance in ~64000 that two random ports agree; look again.
			seen=$(net_ask alice 10.0.1.2:$((4450 + try)) 198.51.100.10:7000)
			[[ $seen =~ $re ]] && to_server=${BASH_REMATCH[1]}
			seen=$(net_ask alice 10.0.1.2:$((4450 + try)) 192.0.2.20:5555)
			[[ $seen =~ $re ]] && to_bob=${BASH_REMATCH[1]}
		done
		[[ $to_server != "$to_bob" ]] || fail "symmetric: expected different mapped ports towards the server and bob; seen $to_server for both"
		ok "symmetric: drops unsolicited inbound; mapped ports $to_server (server) and $to_bob (bob)"
		;;
	sequential)
		# the two flows one after the other: consecutive ports
		expect_eq "sequential: alice's mapped port towards bob, after $to_server towards the server" \
			"$((to_server + 1))" "$to_bob"
		ok "sequential: drops unsolicited inbound; mapped ports $to_server (server) and $to_bob (bob)"
		;;
	esac
	# A third party cannot use alice's mapping either way; home stays silent.
	seen=$(net_ask server 198.51.100.10:7001 "203.0.113.10:$to_bob")
	case $mode in
	plain) expect_eq "plain: server -> alice's mapping towards bob" refused "$seen" ;;
	*) expect_eq "$mode: server -> alice's mapping towards bob" timeout "$seen" ;;
	esac
	lab_down
	net_expect_gone
}

for mode in home plain symmetric sequential; do
	nat_mode_check "$mode"
done

# cone_check fullcone|restricted: see the header.  alice maps 4444 by
# sending to the server's port 7000; then bob (never sent to), the server
# from another port (7001) and bob to a port with no mapping try to reach her.
cone_check() {
	local mode=$1 seen n
	net_up nat1 --nat "$mode"
	net_echo server 198.51.100.10:7000 20 "echo-$mode"
	seen=$(net_ask bob 192.0.2.20:5555 203.0.113.10:4444)
	expect_eq "$mode: unsolicited bob -> nata:4444 before any mapping" timeout "$seen"
	n=$(lab_nsx nata conntrack -L -p udp -s 192.0.2.20 2>/dev/null | wc -l)
	expect_eq "$mode: conntrack entries in nata from bob's early probe" 0 "$n"
	seen=$(net_ask alice 10.0.1.2:4444 198.51.100.10:7000)
	expect_eq "$mode: alice -> server (port-preserving mapping)" "reply 198.51.100.10:7000 seen 203.0.113.10:4444" "$seen"
	net_echo alice 10.0.1.2:4444 20 "alice-$mode"
	seen=$(net_ask bob 192.0.2.20:5555 203.0.113.10:4444)
	case $mode in
	fullcone) expect_eq "fullcone: bob (never sent to) -> alice's mapping" "reply 203.0.113.10:4444 seen 192.0.2.20:5555" "$seen" ;;
	restricted) expect_eq "restricted: bob (never sent to) -> alice's mapping" timeout "$seen" ;;
	esac
	seen=$(net_ask server 198.51.100.10:7001 203.0.113.10:4444)
	expect_eq "$mode: server, from a port alice never sent to, -> alice's mapping" \
		"reply 203.0.113.10:4444 seen 198.51.100.10:7001" "$seen"
	seen=$(net_ask bob 192.0.2.20:5556 203.0.113.10:4999)
	expect_eq "$mode: bob -> nata:4999 (no mapping)" timeout "$seen"
	grep -q '^from 192.0.2.20:5556' "$NET_TMP/alice-$mode.out" &&
		fail "$mode: bob's packet to the unmapped port 4999 reached alice"
	case $mode in
	fullcone) ok "fullcone: endpoint-independent filtering: bob and the server reach alice's 203.0.113.10:4444; port 4999 (no mapping) stays shut" ;;
	restricted) ok "restricted: address-dependent filtering: the server's other port gets in, bob (never sent to) does not" ;;
	esac
	lab_down
	net_expect_gone
}

for mode in fullcone restricted; do
	cone_check "$mode"
done

# udpblock_check: see the header.  alice sends UDP to the server and to bob
# (public): nothing gets out; TCP to the server does.
udpblock_check() {
	local seen n
	net_up nat1 --nat udpblock
	net_echo server 198.51.100.10:7000 20 echo-udpblock
	net_echo bob 192.0.2.20:5555 20 bob-echo-udpblock
	seen=$(net_ask alice 10.0.1.2:4444 198.51.100.10:7000)
	expect_eq "udpblock: alice -> server over UDP" timeout "$seen"
	seen=$(net_ask alice 10.0.1.2:4444 192.0.2.20:5555)
	expect_eq "udpblock: alice -> bob over UDP" timeout "$seen"
	grep -q '^from' "$NET_TMP/echo-udpblock.out" "$NET_TMP/bob-echo-udpblock.out" &&
		fail "udpblock: alice's UDP reached an echo: $(cat "$NET_TMP/echo-udpblock.out" "$NET_TMP/bob-echo-udpblock.out")"
	n=$(lab_nsx nata conntrack -L -p udp -s 10.0.1.2 2>/dev/null | wc -l)
	expect_eq "udpblock: conntrack entries in nata for alice's UDP (dropped before confirmation)" 0 "$n"
	net_tcp_echo server 198.51.100.10:7002 20 tcp-echo-udpblock
	seen=$(net_tcp_ask alice 10.0.1.2:4445 198.51.100.10:7002)
	expect_eq "udpblock: alice -> server over TCP (port-preserving)" \
		"reply 198.51.100.10:7002 seen 203.0.113.10:4445" "$seen"
	net_tcp_echo alice 10.0.1.2:4446 20 tcp-alice-udpblock
	seen=$(net_tcp_ask bob 192.0.2.20:5556 203.0.113.10:4446)
	expect_eq "udpblock: unsolicited bob -> nata:4446 over TCP" timeout "$seen"
	ok "udpblock: UDP from behind it never gets out (no conntrack entry); TCP does, 10.0.1.2:4445 -> 203.0.113.10:4445; inbound TCP dropped"
	lab_down
	net_expect_gone
}
udpblock_check

# ------------------------------- 3b. the small-TTL probe, nat2 --nat plain
# DESIGN.md: a first probe with TTL 2 opens the sender's own NAT and dies at
# the router, so the peer's probe finds a mapping instead of leaving a
# conntrack entry of its own.
net_up nat2 --nat plain
seen=$(lab_nsx alice timeout -k 1 10 "${PROBE[@]}" send 10.0.1.2:4444 192.0.2.10:5555 2)
expect_eq "alice: TTL-2 probe to 192.0.2.10:5555" sent "$seen"
n=$(lab_nsx nata conntrack -L -p udp -s 10.0.1.2 -d 192.0.2.10 2>/dev/null | wc -l)
expect_eq "nata: conntrack entries for alice's TTL-2 probe (it opened her NAT)" 1 "$n"
n=$(lab_nsx natb conntrack -L -p udp -s 203.0.113.10 2>/dev/null | wc -l)
expect_eq "natb: conntrack entries from nata (the probe died at the router)" 0 "$n"
net_echo alice 10.0.1.2:4444 5 alice-ttl
seen=$(net_ask bob 10.0.2.2:5555 203.0.113.10:4444)
expect_eq "bob -> alice's mapping after her TTL-2 probe" "reply 203.0.113.10:4444 seen 192.0.2.10:5555" "$seen"
ok "plain: a TTL-2 probe opens the sender's NAT only; the peer's packet then gets through"
lab_down
net_expect_gone

# -------------------------------------- 4. --udp-timeout and --loss, nat2

host_before=$(sysctl -n net.netfilter.nf_conntrack_udp_timeout)
net_up nat2 --udp-timeout 2 --loss 50
for node in nata natb; do
	expect_eq "$node: nf_conntrack_udp_timeout" 2 "$(lab_nsx "$node" sysctl -n net.netfilter.nf_conntrack_udp_timeout)"
	expect_eq "$node: nf_conntrack_udp_timeout_stream" 2 "$(lab_nsx "$node" sysctl -n net.netfilter.nf_conntrack_udp_timeout_stream)"
done
expect_eq "host: nf_conntrack_udp_timeout (per-namespace sysctl; unchanged)" "$host_before" "$(sysctl -n net.netfilter.nf_conntrack_udp_timeout)"
rules=$(lab_nsx nata iptables -S FORWARD | grep -c -- '--probability 0.5' || true)
expect_eq "nata: FORWARD loss rules (one per direction)" 2 "$rules"
rules=$(lab_nsx natb iptables -S FORWARD | grep -c -- 'statistic' || true)
expect_eq "natb: FORWARD loss rules (loss is at a)" 0 "$rules"

# bob's mapping at natb (no loss there) expires within the 2 s timeout.
net_echo server 198.51.100.10:7000 10 echo-timeout
seen=$(net_ask bob 10.0.2.2:4444 198.51.100.10:7000)
expect_eq "bob -> server through natb" "reply 198.51.100.10:7000 seen 192.0.2.10:4444" "$seen"
line=$(lab_nsx natb conntrack -L -p udp -s 10.0.2.2 2>/dev/null | head -n1)
[[ $line =~ ^udp\ +17\ +([0-9]+)\  ]] || fail "natb: expected a conntrack entry for bob's flow; seen '$line'"
((BASH_REMATCH[1] <= 2)) || fail "natb: expected the entry's remaining timeout <= 2 s; seen ${BASH_REMATCH[1]} ('$line')"
lab_now
deadline=$((LAB_NOW + 6000))
while [[ -n $(lab_nsx natb conntrack -L -p udp -s 10.0.2.2 2>/dev/null) ]]; do
	lab_now
	((LAB_NOW < deadline)) || fail "natb: expected bob's conntrack entry gone within 6 s (timeout 2 s); seen it still there"
	sleep 0.1
done
ok "udp timeout 2 s: set in nata and natb only; bob's mapping expired"

# 400 datagrams through nata, each way with 50 % loss: about 100 round trips.
seen=$(lab_nsx alice timeout -k 1 10 "${PROBE[@]}" count 10.0.1.2:4444 198.51.100.10:7000 400 1)
[[ $seen =~ ^sent\ 400\ got\ ([0-9]+)$ ]] || fail "loss: expected 'sent 400 got N'; seen '$seen'"
got=${BASH_REMATCH[1]}
((got >= 50 && got <= 160)) || fail "loss 50 % each way at nata: expected 50..160 of 400 round trips (about 100); seen $got"
ok "loss 50 % at nata: $got of 400 round trips"
lab_down
net_expect_gone

# --------------------------------------------------- 5. option errors

# bad EXPECTED_MESSAGE_PART ARGS...: `scripts/lab up ARGS` fails with that
# message and creates nothing.
bad() {
	local want=$1 rc=0 before
	before=$(lab nodes | tr '\n' ' ')
	shift
	lab up "$@" >"$NET_TMP/bad.out" 2>&1 || rc=$?
	((rc != 0)) || fail "scripts/lab up $*: expected failure; seen status 0"
	grep -q -F -- "$want" "$NET_TMP/bad.out" ||
		fail "scripts/lab up $*: expected a message containing '$want'; seen '$(cat "$NET_TMP/bad.out")'"
	expect_eq "nodes after the failed 'scripts/lab up $*'" "$before" "$(lab nodes | tr '\n' ' ')"
}
bad "scenario 'x'" x
bad "no NAT B" nat1 --nat-b plain
bad "no NAT B" samenat --loss-at b --loss 5
bad "has no NAT" lan --nat plain
bad "NAT mode 'cone'" nat2 --nat cone
bad "--hairpin on is not implemented" nat2 --hairpin on
lab up nat1 >/dev/null
bad "already exists" nat2 # and leaves the existing instance alone
lab down
net_expect_gone
ok "option errors are reported and leave nothing behind"
# ----------------------------------------------------------- 6. --relay

net_up nat1 --relay
lab_start_server
grep -q '^punch server: relay at 198\.51\.100\.10, ports ' "$RUN_DIR/server-$SERVER_STARTS.err" ||
	fail "--relay: expected 'punch server: relay at 198.51.100.10, ports ...'; seen: $(cat "$RUN_DIR/server-$SERVER_STARTS.err")"
"$LAB_SCRIPT" exec bob turnutils_peer -L 192.0.2.20 -p 3480 >"$NET_TMP/turn-peer.out" 2>&1 & # ($! is the peer itself)
NET_PIDS+=($!)
net_wait_in_ns bob "$!"
# turnutils_peer binds at once; 5 messages over a channel, each echoed.
rc=0
lab_nsx alice timeout -k 1 20 turnutils_uclient -n 5 -m 1 -l 200 -z 5 -c \
	-W "$(cat "$RUN_DIR/relay.secret")" -e 192.0.2.20 -r 3480 "$SERVER_IP" >"$NET_TMP/uclient.out" 2>&1 || rc=$?
((rc == 0)) || fail "--relay: turnutils_uclient in alice exited $rc: $(tail -n 5 "$NET_TMP/uclient.out")"
grep -q 'tot_send_msgs=5, tot_recv_msgs=5$' "$NET_TMP/uclient.out" ||
	fail "--relay: expected 5 messages relayed to bob's echo and back; seen: $(grep tot_send_msgs "$NET_TMP/uclient.out" | tail -n 1)"
lab_stop_server
line=$(grep '^punch server: relay stopped: ' "$RUN_DIR/server-$SERVER_STARTS.err" || true)
[[ $line == *" forbidden=0 "* && $line == *" relayed=5/5 "* ]] ||
	fail "--relay: expected forbidden=0 relayed=5/5 in the server's relay stop line; seen '$line'"
ok "--relay: alice, behind nata, relayed 5 messages through 198.51.100.10 to bob's public 192.0.2.20 (no -relay-allow-private)"
lab_down
net_expect_gone
echo PASS
