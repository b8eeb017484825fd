#!/usr/bin/env bash
# IPv6 in the lab (scripts/lab --ipv6, --ipv6-only):
#
#   ipv6.sh PATH_TO_PUNCH
#
# 1. nat2 --ipv6 --nat symmetric: over IPv4 two symmetric NATs need a relay,
#    but IPv6 is routed (no NAT66), each "NAT" only a stateful firewall, so
#    the peers connect directly, host candidate to host candidate
#    (2001:db8:1::2 <-> 2001:db8:2::2), through both firewalls, and chat.
#    Each firewall's conntrack table holds the flow as the path line says;
#    the server listened on both families.
# 2. nat2 --ipv6-only: no IPv4 address on any host; the clients are given
#    the server's IPv6 address, gather no IPv4 candidate, and connect as in 1.
# 3. The firewall, in nat1 --ipv6 (bob public at 2001:db8:b::20):
#    unsolicited inbound UDP to alice is dropped (no conntrack entry left);
#    alice's packet out gets bob's reply back, and he sees her own address
#    and port (no NAT66); after one datagram from alice to bob's port 5555,
#    bob may send to her from that port, not from another;
#    ICMPv6 to the firewall itself passes, an echo request to alice does not.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
command -v ip6tables >/dev/null || fail "ip6tables not found (package iptables)"

A6=2001:db8:1::2 B6=2001:db8:2::2

# path6 OUT ID: ID's path line in OUT ("ID: [L]:P -> [R]:P (TYPE) in N ms")
# into P6_LIP, P6_LPORT, P6_RIP, P6_RPORT, P6_TYPE, P6_MS.
path6() {
	local out=$1 id=$2 line
	line=$(grep -E "^$id: " "$out" || true)
	local ep='\[([0-9a-f:]+)\]:([0-9]+)'
	local re="^$id: $ep -> $ep \\(([a-z]+)( via [^ )]+)?\\) in ([0-9]+) ms\$"
	[[ $line =~ $re ]] ||
		fail "$id: expected a path line '$id: [IPV6]:PORT -> [IPV6]:PORT (TYPE) in N ms'; seen '$line'"
	P6_LIP=${BASH_REMATCH[1]} P6_LPORT=${BASH_REMATCH[2]}
	P6_RIP=${BASH_REMATCH[3]} P6_RPORT=${BASH_REMATCH[4]}
	P6_TYPE=${BASH_REMATCH[5]} P6_MS=${BASH_REMATCH[7]}
}

# conntrack6 NODE ARGS...: NODE's IPv6 UDP conntrack entries matching ARGS.
conntrack6() {
	local node=$1
	shift
	lab_nsx "$node" conntrack -L -f ipv6 -p udp "$@" 2>/dev/null || true
}

# expect_direct6 OUT: both path lines are IPv6 host-to-host, each side's
# remote the other's local socket, and each firewall tracks that flow (as
# one that has seen a reply).
expect_direct6() {
	local out=$1 a_l a_r b_l b_r n
	path6 "$out" alice
	expect_eq "alice's local address" "$A6" "$P6_LIP"
	expect_eq "alice's remote address" "$B6" "$P6_RIP"
	expect_eq "alice's remote candidate type" host "$P6_TYPE"
	a_l=$P6_LPORT a_r=$P6_RPORT MS_A=$P6_MS
	path6 "$out" bob
	expect_eq "bob's local address" "$B6" "$P6_LIP"
	expect_eq "bob's remote address" "$A6" "$P6_RIP"
	expect_eq "bob's remote candidate type" host "$P6_TYPE"
	b_l=$P6_LPORT b_r=$P6_RPORT MS_B=$P6_MS
	# No NAT66: each sees the other's own socket.
	expect_eq "alice's remote port (bob's local port)" "$b_l" "$a_r"
	expect_eq "bob's remote port (alice's local port)" "$a_l" "$b_r"
	for n in nata natb; do
		local c
		c=$(conntrack6 "$n" -s "$A6" --sport "$a_l" -d "$B6" --dport "$b_l")
		[[ -n $c ]] || c=$(conntrack6 "$n" -s "$B6" --sport "$b_l" -d "$A6" --dport "$a_l")
		[[ -n $c && $c != *UNREPLIED* ]] ||
			fail "$n: expected an IPv6 conntrack entry, replied, for [$A6]:$a_l <-> [$B6]:$b_l; seen '$c' (all: $(conntrack6 "$n"))"
	done
}

run_dir() { # the kept run's log directory (net_lab_run keeps it in NET_TMP)
	local d
	d=$(find "$NET_TMP" -maxdepth 1 -name 'punch-lab.*' -type d | head -n 1)
	[[ -n $d ]] || fail "no kept run directory in $NET_TMP"
	echo "$d"
}

# --------------------------------------- 1. --ipv6, two symmetric NATs

echo "== 1. scripts/lab run nat2 --ipv6 --nat symmetric"
out=$NET_TMP/sym.out
net_lab_run "$out" nat2 --ipv6 --nat symmetric
expect_direct6 "$out"
d=$(run_dir)
for want in '198\.51\.100\.10:3478' '\[2001:db8:100::10\]:3478'; do
	grep -q -E "^punch server: listening on .*$want" "$d"/server-1.err ||
		fail "server: expected a 'listening on' line with $want; seen: $(grep listening "$d"/server-1.err)"
done
grep -q -E "^Step 2: .*host \[$A6\]:[0-9]+" "$d/alice.err" ||
	fail "alice: expected an IPv6 host candidate in her Step 2 line; seen: $(grep '^Step 2' "$d/alice.err")"
ok "symmetric NATs, IPv6: direct host pair [$A6] <-> [$B6], punch took $MS_A / $MS_B ms; both firewalls track it"
lab_down
rm -rf "$d"
net_expect_gone

# ------------------------------------------------------ 2. --ipv6-only

echo "== 2. scripts/lab run nat2 --ipv6-only"
out=$NET_TMP/only.out
net_lab_run "$out" nat2 --ipv6-only
expect_direct6 "$out"
for n in alice bob server nata natb router; do
	expect_eq "$n: IPv4 addresses (--ipv6-only)" "" "$(lab_nsx "$n" ip -4 -o addr show scope global)"
done
d=$(run_dir)
grep -q -E "^punch server: listening on \[2001:db8:100::10\]:3478" "$d"/server-1.err ||
	fail "server: expected to listen on [2001:db8:100::10]:3478; seen: $(grep listening "$d"/server-1.err)"
for id in alice bob; do
	line=$(grep '^Step 2: ' "$d/$id.err" || true)
	[[ $line == *candidates:* && ! $line =~ (host|srflx|relay)\ [0-9]+\. ]] ||
		fail "$id: expected only IPv6 candidates; seen '$line'"
done
ok "IPv6 only: no IPv4 anywhere, server at [2001:db8:100::10]:3478, direct host pair, punch took $MS_A / $MS_B ms"
lab_down
rm -rf "$d"
net_expect_gone

# --------------------------------------------------- 3. the firewall

echo "== 3. nata's IPv6 firewall (nat1 --ipv6, bob public at 2001:db8:b::20)"
net_up nat1 --ipv6
BOB=2001:db8:b::20
net_echo alice "[$A6]:4440" 20 alice-echo
seen=$(net_ask bob "[$BOB]:5550" "[$A6]:4440")
expect_eq "unsolicited bob -> alice [$A6]:4440" timeout "$seen"
grep -q '^from' "$NET_TMP/alice-echo.out" &&
	fail "unsolicited bob -> alice reached her echo: $(cat "$NET_TMP/alice-echo.out")"
expect_eq "nata: conntrack entries from bob's unsolicited probe" "" "$(conntrack6 nata -s "$BOB")"
ok "unsolicited inbound UDP to alice dropped, no conntrack entry left"

# alice sends first; bob's echo answers through the firewall, and sees her
# own address and port (no NAT66).
net_echo bob "[$BOB]:5560" 20 bob-echo
seen=$(net_ask alice "[$A6]:4450" "[$BOB]:5560")
expect_eq "alice -> bob's echo, and its reply" "reply [$BOB]:5560 seen [$A6]:4450" "$seen"
# One datagram from alice's 4444 to bob's 5555 (nothing listens there) opens
# the firewall for that address and port only.
seen=$(lab_nsx alice timeout -k 1 10 "${PROBE[@]}" send "[$A6]:4444" "[$BOB]:5555" 64)
expect_eq "alice: one datagram to [$BOB]:5555" sent "$seen"
net_echo alice "[$A6]:4444" 20 alice-echo2
seen=$(net_ask bob "[$BOB]:5556" "[$A6]:4444")
expect_eq "bob, from another port, -> alice [$A6]:4444" timeout "$seen"
seen=$(net_ask bob "[$BOB]:5555" "[$A6]:4444")
expect_eq "bob, from the port alice sent to, -> alice" "reply [$A6]:4444 seen [$BOB]:5555" "$seen"
ok "outbound opens the firewall for the reply, and for that peer's address and port only"

lab_nsx bob ping -6 -c 1 -W 2 2001:db8:a::10 >/dev/null ||
	fail "bob: expected ping to nata's wan side 2001:db8:a::10 (ICMPv6 to the firewall itself) to pass"
if lab_nsx bob ping -6 -c 1 -W 1 "$A6" >/dev/null; then
	fail "bob: expected an unsolicited echo request to alice $A6 to be dropped; seen a reply"
fi
ok "ICMPv6 to the firewall itself passes (neighbour discovery, ping); an echo request to alice does not"
lab_down
net_expect_gone
echo PASS
