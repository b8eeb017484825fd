#!/usr/bin/env bash
# The reference captures (docs/dumps), made afresh and read with tshark:
#
#   captures.sh PATH_TO_PUNCH [NAME...]
#
# 1. scripts/capture records the named captures (default: the six of the
#    task's scenarios, lan to plain_race) into a scratch directory, in this
#    test's own lab instance.  ctest runs sym_home and sym_fullcone as a
#    second test, net_captures_sym, so that each stays within its time.
# 2. Each punch capture has the session in order: Binding request and answer
#    at the server, REGISTER's 438 and success, PEER-INFO, connectivity checks
#    and their answers between the two addresses the peers end up using, the
#    USE-CANDIDATE check, then QUIC: alice's Initial (she is the QUIC client),
#    bob's Handshake, and each chat line, decrypted with the TLS secrets that
#    the lab stores in the capture.  Where there is a NAT, no private
#    source address leaves its public side, and the rewrite of alice's first
#    packet keeps her port (port-preserving MASQUERADE).
# 3. Per capture: nat2 and nat2_plain have the TTL-2 probe of each peer, the
#    router's ICMP time exceeded for it, and each NAT sent to the other before
#    anything from the other arrived; nat2 has a consent check each way after
#    its 7 s of quiet; samenat has nata's port unreachable for the checks to
#    its own public address (no hairpinning); plain_race has alice's packet
#    leaving from a new port after bob's stray one, and both ways through
#    after her TTL-2 probe.  sym_home (alice behind a symmetric NAT, bob
#    behind a port-restricted one): alice's checks to bob leave nata from a
#    port other than her server-reflexive one, no check reaches either LAN
#    from the other side, no check is answered, and both clients gave up.
#    sym_fullcone (bob behind a full cone): bob's checks to alice's
#    server-reflexive port die at nata, alice's from her new port reach bob,
#    and bob checks that port back (a peer-reflexive candidate).
#    birthday (sym_home's NATs, the server with -alt): each PEER-INFO
#    carries the other's PUNCH-NAT (alice endpoint-dependent, bob
#    independent), alice's TTL-2 checks to bob come from 256 sockets (257
#    source ports with her own), bob probes 1 to 1,024 ports of
#    203.0.113.10 and sends checks to her announced addresses only, and the
#    first check delivered to alice is a probe, which she answers from the
#    probe socket that then nominates and carries QUIC.
#    Their conntrack tables (NAME.conntrack) match the committed ones once
#    ports, timers, use counts and [ASSURED] (timing) are set aside.
#    relay_sym and upgrade (the server a TURN relay; ctest runs them as
#    net_captures_relay) are read with punch.lua loaded, which decodes what
#    the relay carries.  relay_sym (both NATs symmetric): in order, an
#    Allocate without credentials, its 401, an Allocate with
#    MESSAGE-INTEGRITY, its success with XOR-RELAYED-ADDRESS,
#    CreatePermission, ChannelBind, a check in ChannelData (and a check in
#    a Send indication after CreatePermission, before or after ChannelBind),
#    alice's USE-CANDIDATE, QUIC's Initial in ChannelData, both chat lines
#    decrypted, a Refresh with LIFETIME 0; a second PEER-INFO
#    (the relayed candidate trickled) and a relayed candidate in one; no
#    QUIC between the NATs; no TURN error but the Allocate's 401.  upgrade
#    (home NATs, the router blocking them until both are on the relay):
#    USE-CANDIDATE on a relayed pair and the QUIC handshake in ChannelData,
#    a direct check lost at the router while it blocks, then a direct check
#    delivered, USE-CANDIDATE on the direct pair, QUIC between the NATs and
#    both chat lines on the direct path, none through the relay; no QUIC
#    long header after the move (no new handshake).
# 4. No packet in any capture is malformed or carries an expert error.
# 5. The dissector's full checks (tests/dissector/dissector.sh, which the
#    dissector test runs on the committed docs/dumps) on these fresh
#    captures (the full set, or relay_sym and upgrade, with its TURN checks), so that a change to punch's wire format shows here even while
#    the committed captures are older; contrib/wireshark/punch.lua missing
#    is a failure.
#
# tshark runs as docs/dumps/README.md shows it: -o udp.try_heuristic_first:TRUE
# --enable-heuristic stun_udp, so that peer-to-peer STUN on any port decodes,
# and -o quic.reassemble_crypto_out_of_order:FALSE, without which tshark 4.0
# cannot decrypt 1-RTT packets that a capture holds at several points.
# Every wait is bounded: scripts/capture by CAPTURE_LIMIT_S (each lab run
# inside it bounds its own waits), each tshark by TSHARK_LIMIT_S.  lib.sh's
# cleanup stops every process and removes the instance even on failure, and
# the scratch directory (TMPDIR for scripts/capture) goes with it.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
for cmd in tshark tcpdump mergecap editcap capinfos; do
	command -v "$cmd" >/dev/null || fail "$cmd not found (scripts/deps.sh installs tcpdump and tshark)"
done

CAPTURE_LIMIT_S=280 # scripts/capture: six lab runs, about 25 s alone, 230 s seen on a loaded machine (ctest allows 600: the tshark checks after it took over 80 s on a loaded machine)
NAMES=("${@:2}")
FULL_SET=0 # the six captures tests/dissector/dissector.sh reads
((${#NAMES[@]})) || { NAMES=(lan nat1 nat2 samenat nat2_plain plain_race); FULL_SET=1; }
RELAY_SET=1 # only relay_sym and upgrade: dissector.sh's TURN checks apply to them
for name in "${NAMES[@]}"; do
	[[ $name == relay_sym || $name == upgrade ]] || RELAY_SET=0
done
TSHARK_LIMIT_S=20
DISSECTOR_LIMIT_S=60 # dissector.sh: two tshark passes a capture, about 25 s in all
LUA=$NET_REPO/contrib/wireshark/punch.lua
DUMPS=$NET_TMP/dumps
TSHARK_ERR=$NET_TMP/tshark.err
TSHARK_OPTS=(-n -o udp.try_heuristic_first:TRUE --enable-heuristic stun_udp
	-o quic.reassemble_crypto_out_of_order:FALSE)
BASE_OPTS=("${TSHARK_OPTS[@]}")
RELAY_ADDR=198.51.100.10 # the server, and so every relayed address

# Addresses per capture: the server, then alice and bob as the other sees
# them on the chosen path.
declare -A ADDRS=(
	[lan]="10.0.0.1 10.0.0.2 10.0.0.3"
	[nat1]="198.51.100.10 203.0.113.10 192.0.2.20"
	[nat2]="198.51.100.10 203.0.113.10 192.0.2.10"
	[samenat]="198.51.100.10 10.0.1.2 10.0.1.3"
	[nat2_plain]="198.51.100.10 203.0.113.10 192.0.2.10"
	[sym_fullcone]="198.51.100.10 203.0.113.10 192.0.2.10"
	[birthday]="198.51.100.10 203.0.113.10 192.0.2.10"
)
declare -A IFACES=( # the capture points, in frame.interface_name's words
	[lan]="sw/br0"
	[nat1]="nata/lan0 nata/wan0 router/pb0"
	[nat2]="nata/lan0 nata/wan0 natb/wan0 natb/lan0"
	[samenat]="nata/lan0 nata/wan0"
	[nat2_plain]="nata/lan0 nata/wan0 natb/wan0 natb/lan0"
	[plain_race]="nata/lan0 nata/wan0 natb/wan0 natb/lan0"
	[sym_home]="nata/lan0 nata/wan0 natb/wan0 natb/lan0"
	[sym_fullcone]="nata/lan0 nata/wan0 natb/wan0 natb/lan0"
	[birthday]="nata/lan0 nata/wan0 natb/wan0 natb/lan0"
	[relay_sym]="nata/lan0 nata/wan0 natb/wan0 natb/lan0"
	[upgrade]="nata/lan0 nata/wan0 natb/wan0 natb/lan0"
)

# tsh FILE ARGS...: tshark on FILE, bounded; fails on a non-zero status or
# on anything on stderr but the warning about running as root.
tsh() {
	local file=$1 rc=0
	shift
	timeout -k 2 "$TSHARK_LIMIT_S" tshark -r "$file" "${TSHARK_OPTS[@]}" "$@" 2>"$TSHARK_ERR" || rc=$?
	((rc != 124)) || fail "tshark -r $file $*: expected to finish within $TSHARK_LIMIT_S s; seen: killed"
	((rc == 0)) || fail "tshark -r $file $*: expected status 0; seen $rc: $(cat "$TSHARK_ERR")"
	if grep -v -q '^Running as user "root"' "$TSHARK_ERR"; then
		fail "tshark -r $file $*: expected nothing on stderr; seen: $(grep -v '^Running as user' "$TSHARK_ERR")"
	fi
}

# frames FILE FILTER: the numbers of the frames that match, one a line.
frames() {
	tsh "$1" -Y "$2" -T fields -e frame.number
}

# first_field FILE FIELD FILTER: FIELD of the first frame that matches, or
# nothing.  (tshark reads to the end: a `| head` would kill it with SIGPIPE.)
first_field() {
	local out
	out=$(tsh "$1" -Y "$3" -T fields -e "$2")
	echo "${out%%$'\n'*}"
}

# first NAME WHAT FILTER: prints the first frame of capture NAME that matches
# FILTER; fails, naming WHAT, if none does.
first() {
	local n
	n=$(first_field "$DUMPS/$1.pcapng" frame.number "$3")
	[[ -n $n ]] || fail "$1: expected $2 ($3); seen none"
	echo "$n"
}

# expect_none NAME WHAT FILTER
expect_none() {
	local seen
	seen=$(frames "$DUMPS/$1.pcapng" "$3" | tr '\n' ' ')
	[[ -z $seen ]] || fail "$1: expected no $2 ($3); seen frames $seen"
}

# expect_sequence NAME WHAT FILTER WHAT FILTER ...: each first match comes
# after the one before it.
expect_sequence() {
	local name=$1 prev=0 prev_what="the start" n
	shift
	while (($#)); do
		n=$(first "$name" "$1" "$2")
		((n > prev)) || fail "$name: expected $1 (first in frame $n) after $prev_what (first in frame $prev)"
		prev=$n prev_what=$1
		shift 2
	done
}

# count_txids NAME FILTER: how many transactions (distinct ids) match.
count_txids() {
	tsh "$DUMPS/$1.pcapng" -Y "$2" -T fields -e stun.id | sort -u | grep -c . || true
}

check_interfaces() {
	local name=$1 seen
	seen=$(tsh "$DUMPS/$name.pcapng" -T fields -e frame.interface_name | sort -u | tr '\n' ' ')
	local want
	want=$(tr ' ' '\n' <<<"${IFACES[$name]}" | sort -u | tr '\n' ' ')
	expect_eq "$name: interfaces with packets (frame.interface_name)" "$want" "$seen"
}

# check_session NAME: part 2 of the header.
check_session() {
	local name=$1 s a b
	read -r s a b <<<"${ADDRS[$name]}"
	local q="!icmp" # an ICMP error quotes the packet that caused it: not that packet
	expect_sequence "$name" \
		"a Binding request to the server" "stun.type == 0x0001 && ip.dst == $s && udp.dstport == 3478 && $q" \
		"a Binding success from the server" "stun.type == 0x0101 && ip.src == $s && udp.srcport == 3478 && $q" \
		"a REGISTER request" "stun.type == 0x00ed && ip.dst == $s && $q" \
		"REGISTER's 438 Stale Nonce" "stun.type == 0x01fd && stun.att.error.class == 4 && stun.att.error == 38 && $q" \
		"a PEER-INFO request from the server" "stun.type == 0x00ee && ip.src == $s && $q" \
		"a check alice -> bob" "stun.type == 0x0001 && ip.src == $a && ip.dst == $b && stun.att.username && $q" \
		"alice's USE-CANDIDATE check" "stun.type == 0x0001 && ip.src == $a && ip.dst == $b && stun.att.type == 0x0025 && $q"
	# Not ordered against PEER-INFO: when both signed REGISTERs come in one
	# receive batch, the server's PEER-INFOs go out at once and the batch's
	# answers after them.
	first "$name" "a REGISTER success" "stun.type == 0x01ed && ip.src == $s && $q" >/dev/null
	first "$name" "a PEER-INFO success to the server" "stun.type == 0x01ee && ip.dst == $s && $q" >/dev/null
	first "$name" "a check bob -> alice" "stun.type == 0x0001 && ip.src == $b && ip.dst == $a && stun.att.username && $q" >/dev/null
	first "$name" "a check's success alice -> bob" "stun.type == 0x0101 && ip.src == $a && ip.dst == $b && $q" >/dev/null
	first "$name" "a check's success bob -> alice" "stun.type == 0x0101 && ip.src == $b && ip.dst == $a && $q" >/dev/null
	expect_none "$name" "USE-CANDIDATE from bob (alice controls: her id sorts first)" \
		"stun.att.type == 0x0025 && ip.src == $b && $q"
	check_chat "$name" "$a" "$b"
	[[ $name == lan || $name == sym_* || $name == birthday ]] && return 0 # (a symmetric NAT does not preserve ports)

	expect_none "$name" "private source address on a public link" \
		"frame.interface_name matches \"/(wan0|pb0)\$\" && ip.src == 10.0.0.0/8"
	# Alice's first Binding request (one transaction id) before and after
	# nata: a new source address, the same port.
	local f=$DUMPS/$name.pcapng txid lan_port wan
	local req="stun.type == 0x0001 && udp.dstport == 3478 && !icmp"
	txid=$(first_field "$f" stun.id "frame.interface_name == \"nata/lan0\" && ip.src == 10.0.1.2 && $req")
	[[ -n $txid ]] || fail "$name: expected alice's Binding request from 10.0.1.2 on nata/lan0; seen none"
	txid=$(sed 's/../&:/g; s/:$//' <<<"$txid") # aa:bb:...: never mistaken for a number or a name
	lan_port=$(first_field "$f" udp.srcport "frame.interface_name == \"nata/lan0\" && stun.id == $txid && $req")
	wan=$(first_field "$f" ip.src "frame.interface_name == \"nata/wan0\" && stun.id == $txid && $req")
	wan+=:$(first_field "$f" udp.srcport "frame.interface_name == \"nata/wan0\" && stun.id == $txid && $req")
	expect_eq "$name: alice's Binding request 10.0.1.2:$lan_port after nata (port-preserving rewrite)" \
		"203.0.113.10:$lan_port" "$wan"
}

# check_chat NAME A B: the secure link after nomination.  The controlling
# peer (alice) is the QUIC client; each chat line is decrypted with the
# secrets in the capture (the lab's clients write SSLKEYLOGFILE), and
# alice's quit closes her stream.
check_chat() {
	local name=$1 a=$2 b=$3 q="!icmp"
	expect_sequence "$name" \
		"alice's USE-CANDIDATE check" "stun.type == 0x0001 && ip.src == $a && ip.dst == $b && stun.att.type == 0x0025 && $q" \
		"alice's QUIC Initial" "quic.long.packet_type == 0 && ip.src == $a && ip.dst == $b && $q" \
		"bob's QUIC Handshake" "quic.long.packet_type == 2 && ip.src == $b && ip.dst == $a && $q" \
		"alice's chat line, decrypted" "quic.stream_data contains \"hello from alice\" && ip.src == $a && ip.dst == $b" \
		"bob's chat line, decrypted" "quic.stream_data contains \"hello from bob\" && ip.src == $b && ip.dst == $a" \
		"alice's quit (her stream's FIN)" "quic.stream.fin == 1 && ip.src == $a && ip.dst == $b"
}

# check_probes NAME: the TTL-2 probes of nat2 and nat2_plain (part 3).
check_probes() {
	local name=$1 nat peer router mine
	for nat in a b; do
		if [[ $nat == a ]]; then
			mine=203.0.113.10 peer=192.0.2.10 router=203.0.113.1
		else
			mine=192.0.2.10 peer=203.0.113.10 router=192.0.2.1
		fi
		expect_sequence "$name" \
			"nat$nat: a TTL-2 probe to $peer leaving the LAN" \
			"frame.interface_name == \"nat$nat/lan0\" && ip.ttl == 2 && stun.type == 0x0001 && ip.dst == $peer && !icmp" \
			"nat$nat: the router's time exceeded for it" \
			"frame.interface_name == \"nat$nat/wan0\" && icmp.type == 11 && ip.src == $router"
		local out in
		out=$(first "$name" "nat$nat sending to $peer" \
			"frame.interface_name == \"nat$nat/wan0\" && ip.src == $mine && ip.dst == $peer && !icmp")
		in=$(first "$name" "nat$nat receiving from $peer" \
			"frame.interface_name == \"nat$nat/wan0\" && ip.src == $peer && ip.dst == $mine && !icmp")
		((out < in)) || fail "$name: expected nat$nat to send to $peer (first in frame $out) before anything from $peer arrived (frame $in)"
	done
}

# check_consent: nat2 after 7 s of quiet.  Once tshark has seen the QUIC
# handshake, it gives the whole 5-tuple to QUIC, so the consent checks are
# found by their bytes: a Binding request type and the magic cookie.
check_consent() {
	local name=nat2 a=203.0.113.10 b=192.0.2.10
	local binding="udp.payload[0:2] == 00:01 && udp.payload[4:4] == 21:12:a4:42"
	first "$name" "a consent check alice -> bob after 4 s" \
		"frame.time_relative > 4 && $binding && ip.src == $a && ip.dst == $b" >/dev/null
	first "$name" "a consent check bob -> alice after 4 s" \
		"frame.time_relative > 4 && $binding && ip.src == $b && ip.dst == $a" >/dev/null
}

check_hairpin() { # samenat
	first samenat "a check to nata's own public address" \
		"frame.interface_name == \"nata/lan0\" && stun.type == 0x0001 && ip.dst == 203.0.113.10 && !icmp" >/dev/null
	first samenat "nata's port unreachable for it (no hairpinning)" \
		"frame.interface_name == \"nata/lan0\" && icmp.type == 3 && icmp.code == 3 && ip.src == 203.0.113.10" >/dev/null
}

check_race() {
	local name=plain_race f=$DUMPS/plain_race.pcapng port
	expect_sequence "$name" \
		"bob's stray packet reaching nata" \
		"frame.interface_name == \"nata/wan0\" && ip.src == 192.0.2.10 && udp.dstport == 40000 && !icmp" \
		"nata's port unreachable for it" \
		"frame.interface_name == \"nata/wan0\" && icmp.type == 3 && icmp.code == 3 && ip.src == 203.0.113.10" \
		"alice's packet to bob from 10.0.1.2:40000" \
		"frame.interface_name == \"nata/lan0\" && ip.src == 10.0.1.2 && udp.srcport == 40000 && !icmp"
	port=$(first_field "$f" udp.srcport \
		"frame.interface_name == \"nata/wan0\" && ip.src == 203.0.113.10 && ip.dst == 192.0.2.10 && udp.dstport == 40000 && !icmp")
	[[ -n $port && $port != 40000 ]] ||
		fail "$name: expected alice's packet to leave nata from a new port (40000 is held by bob's stray entry); seen '${port:-none}'"
	expect_sequence "$name" \
		"alice's TTL-2 probe" "frame.interface_name == \"nata/wan0\" && ip.ttl == 1 && udp.srcport == 40001 && !icmp" \
		"bob's packet delivered to alice" "frame.interface_name == \"nata/lan0\" && ip.dst == 10.0.1.2 && udp.dstport == 40001 && !icmp" \
		"alice's answer delivered to bob" "frame.interface_name == \"natb/lan0\" && ip.dst == 10.0.2.2 && udp.dstport == 40001 && !icmp"
}

# srflx_port NAME NODE/IF IP: the port the server's Binding success told IP.
srflx_port() {
	local ports # XOR-MAPPED-ADDRESS, then MAPPED-ADDRESS: the same port
	ports=$(first_field "$DUMPS/$1.pcapng" stun.att.port \
		"frame.interface_name == \"$2\" && stun.type == 0x0101 && stun.att.ipv4 == $3 && udp.srcport == 3478 && !icmp")
	echo "${ports%%,*}"
}

# sym_ports NAME: sets SRFLX_A (alice's server-reflexive port) and TO_BOB
# (the port nata gave her checks to bob's 192.0.2.10), and checks they differ.
sym_ports() {
	local name=$1 check="stun.type == 0x0001 && stun.att.username && !icmp"
	SRFLX_A=$(srflx_port "$name" nata/wan0 203.0.113.10)
	[[ -n $SRFLX_A ]] || fail "$name: expected the server to tell alice her port; seen none"
	TO_BOB=$(first_field "$DUMPS/$name.pcapng" udp.srcport \
		"frame.interface_name == \"nata/wan0\" && ip.dst == 192.0.2.10 && $check")
	[[ -n $TO_BOB && $TO_BOB != "$SRFLX_A" ]] ||
		fail "$name: expected alice's checks to bob to leave nata from a port other than her server-reflexive $SRFLX_A (symmetric NAT); seen '${TO_BOB:-none}'"
}

check_sym_home() {
	local name=sym_home check="stun.type == 0x0001 && stun.att.username && !icmp"
	sym_ports "$name"
	first "$name" "bob's check to alice's server-reflexive 203.0.113.10:$SRFLX_A arriving at nata" \
		"frame.interface_name == \"nata/wan0\" && ip.src == 192.0.2.10 && udp.dstport == $SRFLX_A && $check" >/dev/null
	first "$name" "alice's check from 203.0.113.10:$TO_BOB arriving at natb" \
		"frame.interface_name == \"natb/wan0\" && ip.src == 203.0.113.10 && udp.srcport == $TO_BOB && $check" >/dev/null
	expect_none "$name" "check from bob delivered to alice" "frame.interface_name == \"nata/lan0\" && ip.src == 192.0.2.10 && $check"
	expect_none "$name" "check from alice delivered to bob" "frame.interface_name == \"natb/lan0\" && ip.src == 203.0.113.10 && $check"
	expect_none "$name" "answered check" "stun.type == 0x0101 && stun.att.username && !icmp"
	expect_none "$name" "QUIC" "quic"
}

check_sym_fullcone() {
	local name=sym_fullcone check="stun.type == 0x0001 && stun.att.username && !icmp"
	sym_ports "$name"
	first "$name" "bob's check to alice's server-reflexive 203.0.113.10:$SRFLX_A arriving at nata" \
		"frame.interface_name == \"nata/wan0\" && ip.src == 192.0.2.10 && udp.dstport == $SRFLX_A && $check" >/dev/null
	# Not one of those transactions reaches alice's LAN: the ids of bob's
	# checks to the server-reflexive port, against the ids delivered.
	local sent delivered f=$DUMPS/$name.pcapng
	sent=$(tsh "$f" -Y "frame.interface_name == \"nata/wan0\" && ip.src == 192.0.2.10 && udp.dstport == $SRFLX_A && $check" -T fields -e stun.id | sort -u)
	delivered=$(tsh "$f" -Y "frame.interface_name == \"nata/lan0\" && ip.src == 192.0.2.10 && $check" -T fields -e stun.id | sort -u)
	expect_eq "$name: bob's checks to 203.0.113.10:$SRFLX_A delivered to alice (her symmetric NAT filters them)" "" \
		"$(comm -12 <(echo "$sent") <(echo "$delivered") | grep . || true)"
	expect_sequence "$name" \
		"alice's check from 203.0.113.10:$TO_BOB delivered to bob (full cone)" \
		"frame.interface_name == \"natb/lan0\" && ip.src == 203.0.113.10 && udp.srcport == $TO_BOB && $check" \
		"bob's check back to 203.0.113.10:$TO_BOB (peer-reflexive)" \
		"frame.interface_name == \"natb/wan0\" && ip.dst == 203.0.113.10 && udp.dstport == $TO_BOB && $check" \
		"bob's check delivered to alice" \
		"frame.interface_name == \"nata/lan0\" && ip.src == 192.0.2.10 && $check"
}

# check_birthday: sym_home with the server's -alt, so both peers know the
# mappings and probe (docs/nat-traversal.md, section 8).
check_birthday() {
	local name=birthday f=$DUMPS/birthday.pcapng check="stun.type == 0x0001 && stun.att.username && !icmp"
	local socks probes dsts hit
	with_lua
	first "$name" "PEER-INFO to bob with alice's PUNCH-NAT, endpoint-dependent" \
		"frame.interface_name == \"natb/lan0\" && punch.type == 0x00ee && punch.nat.mapping == 2" >/dev/null
	first "$name" "PEER-INFO to alice with bob's PUNCH-NAT, endpoint-independent" \
		"frame.interface_name == \"nata/lan0\" && punch.type == 0x00ee && punch.nat.mapping == 1" >/dev/null
	TSHARK_OPTS=("${BASE_OPTS[@]}")
	sym_ports "$name"
	# alice's extra sockets: TTL-2 checks to bob's public address, one a
	# socket (her main socket's own opening probe is the 257th port)
	socks=$(tsh "$f" -Y "frame.interface_name == \"nata/lan0\" && ip.ttl == 2 && ip.dst == 192.0.2.10 && $check" \
		-T fields -e udp.srcport | sort -u | grep -c . || true)
	((socks >= 256 && socks <= 257)) ||
		fail "$name: expected alice's TTL-2 checks to bob from 256 probe sockets (and her own); seen $socks source ports"
	# bob's probes: checks to ports of alice's public address other than the
	# server-reflexive one, never one port twice; all his checks go to her
	# announced addresses only
	probes=$(tsh "$f" -Y "frame.interface_name == \"natb/lan0\" && ip.dst == 203.0.113.10 && udp.dstport != $SRFLX_A && $check" \
		-T fields -e udp.dstport -e stun.id | sort -u)
	local nports ntx
	nports=$(cut -f1 <<<"$probes" | sort -u | grep -c . || true)
	ntx=$(cut -f2 <<<"$probes" | sort -u | grep -c . || true)
	((nports >= 1 && nports <= 1024)) || fail "$name: expected bob to probe 1 to 1024 ports of 203.0.113.10; seen $nports"
	dsts=$(tsh "$f" -Y "frame.interface_name == \"natb/lan0\" && ip.src == 10.0.2.2 && $check" -T fields -e ip.dst | sort -u | tr '\n' ' ')
	expect_eq "$name: where bob's checks go (alice's host and public addresses only)" "10.0.1.2 203.0.113.10 " "$dsts"
	# the probe that landed: delivered to one of alice's sockets, answered,
	# and the pair chosen on it
	hit=$(first_field "$f" udp.dstport "frame.interface_name == \"nata/lan0\" && ip.src == 192.0.2.10 && $check")
	[[ -n $hit ]] || fail "$name: expected a check from bob delivered to alice; seen none"
	local wan_hit
	wan_hit=$(first_field "$f" udp.dstport "frame.interface_name == \"nata/wan0\" && ip.src == 192.0.2.10 && udp.dstport != $SRFLX_A && $check && stun.id == $(first_field "$f" stun.id "frame.interface_name == \"nata/lan0\" && ip.src == 192.0.2.10 && $check" | sed 's/../&:/g; s/:$//')")
	[[ -n $wan_hit && $wan_hit != "$SRFLX_A" ]] ||
		fail "$name: expected the first check delivered to alice to be a probe to a port other than $SRFLX_A; seen '${wan_hit:-none}'"
	expect_sequence "$name" \
		"a probe from bob to 203.0.113.10:$wan_hit arriving at nata" \
		"frame.interface_name == \"nata/wan0\" && ip.src == 192.0.2.10 && udp.dstport == $wan_hit && $check" \
		"delivered to alice's probe socket 10.0.1.2:$hit" \
		"frame.interface_name == \"nata/lan0\" && ip.src == 192.0.2.10 && udp.dstport == $hit && $check" \
		"alice's answer from 203.0.113.10:$wan_hit delivered to bob" \
		"frame.interface_name == \"natb/lan0\" && ip.src == 203.0.113.10 && udp.srcport == $wan_hit && stun.type == 0x0101 && !icmp" \
		"alice's USE-CANDIDATE from that socket" \
		"frame.interface_name == \"nata/lan0\" && udp.srcport == $hit && stun.att.type == 0x0025 && !icmp" \
		"alice's QUIC Initial from that socket" \
		"frame.interface_name == \"nata/lan0\" && udp.srcport == $hit && quic.long.packet_type == 0"
	echo "   $name: $socks sockets, $nports ports probed ($ntx checks), the hit 203.0.113.10:$wan_hit -> 10.0.1.2:$hit"
}

# check_conntrack NAME: part 3's table against the committed one.
check_conntrack() {
	local name=$1 norm='s/^(udp +17) +[0-9]+/\1 T/; s/(sport|dport)=([0-9]+)/\1=P/g; s/\[ASSURED\] //; s/use=[0-9]+/use=N/; s/=P( .*)$/=P\1/'
	local fresh committed
	fresh=$(sed -E "s/(sport|dport)=3478/\1=STUN/g; $norm" "$DUMPS/$name.conntrack")
	committed=$(sed -E "s/(sport|dport)=3478/\1=STUN/g; $norm" "$NET_REPO/docs/dumps/$name.conntrack")
	expect_eq "$name: conntrack tables, ports and timers aside (fresh, then docs/dumps)" "$committed" "$fresh"
}

# with_lua: the TURN checks read the captures with punch.lua loaded, so
# that the checks and QUIC inside Send/Data indications and ChannelData
# decode (stun.type, stun.att.type and quic.* of the payload).
with_lua() {
	[[ -r $LUA ]] || fail "expected the dissector $LUA (it decodes what the relay carries); seen none"
	TSHARK_OPTS=("${BASE_OPTS[@]}" -X "lua_script:$LUA")
}

# turn_errors NAME: no TURN error response (Allocate, Refresh,
# CreatePermission, ChannelBind) but the first Allocate's 401.
turn_errors() {
	expect_none "$1" "TURN error response but the Allocate's 401" \
		"(stun.type == 0x0113 && !(stun.att.error.class == 4 && stun.att.error == 1)) || stun.type in {0x0114,0x0118,0x0119}"
}

check_relay_sym() {
	local name=relay_sym q="!icmp" n
	with_lua
	expect_sequence "$name" \
		"an Allocate request without credentials" "stun.type == 0x0003 && !stun.att.username && $q" \
		"its 401 Unauthenticated" "stun.type == 0x0113 && stun.att.error.class == 4 && stun.att.error == 1 && $q" \
		"an Allocate with MESSAGE-INTEGRITY" "stun.type == 0x0003 && stun.att.username && stun.att.type == 0x0008 && $q" \
		"an Allocate success with XOR-RELAYED-ADDRESS" "stun.type == 0x0103 && stun.att.type == 0x0016 && $q" \
		"a CreatePermission request" "stun.type == 0x0008 && $q" \
		"a ChannelBind request" "stun.type == 0x0009 && $q" \
		"a check in ChannelData" "stun.channel && stun.type == 0x0001 && $q" \
		"alice's USE-CANDIDATE" "frame.interface_name == \"nata/lan0\" && ip.src == 10.0.1.2 && stun.att.type == 0x0025 && $q" \
		"QUIC's Initial in ChannelData" "stun.channel && quic.long.packet_type == 0" \
		"alice's chat line, decrypted" "quic.stream_data contains \"hello from alice\"" \
		"bob's chat line, decrypted" "quic.stream_data contains \"hello from bob\"" \
		"a Refresh with LIFETIME 0 (the allocation given back)" "stun.type == 0x0004 && stun.att.lifetime == 0 && $q"
	# (Not ordered against ChannelBind: the first checks go in Send
	# indications while the channel is being bound, and on a loaded
	# machine the ChannelBind may leave before the first of them.)
	expect_sequence "$name" \
		"a CreatePermission request" "stun.type == 0x0008 && $q" \
		"a check in a Send indication" "stun.type == 0x0016 && stun.att.username && $q"
	n=$(tsh "$DUMPS/$name.pcapng" -Y "punch.type == 0x00ee && frame.interface_name matches \"lan0\$\"" -T fields -e punch.txid | sort -u | grep -c . || true)
	((n >= 3)) || fail "$name: expected 3 PEER-INFO transactions delivered (one each, and one trickled with the later peer's relayed candidate); seen $n"
	first "$name" "a PEER-INFO with a relayed candidate" "punch.type == 0x00ee && punch.cand.type == 4 && $q" >/dev/null
	expect_none "$name" "QUIC between the NATs (both are symmetric: only the relay connects them)" \
		"quic && ((ip.src == 203.0.113.0/24 && ip.dst == 192.0.2.0/24) || (ip.src == 192.0.2.0/24 && ip.dst == 203.0.113.0/24))"
	turn_errors "$name"
	TSHARK_OPTS=("${BASE_OPTS[@]}")
}

check_upgrade() {
	local name=upgrade q="!icmp" f=$DUMPS/upgrade.pcapng txid last_long first_direct
	local direct="((ip.src == 203.0.113.0/24 && ip.dst == 192.0.2.0/24) || (ip.src == 192.0.2.0/24 && ip.dst == 203.0.113.0/24))"
	with_lua
	# While the router blocks: bob's first check to alice's public address
	# leaves natb and never reaches nata.
	txid=$(first_field "$f" stun.id "frame.interface_name == \"natb/wan0\" && ip.dst == 203.0.113.10 && stun.type == 0x0001 && stun.att.username && $q")
	[[ -n $txid ]] || fail "$name: expected a check from bob to 203.0.113.10 on natb/wan0; seen none"
	txid=$(sed 's/../&:/g; s/:$//' <<<"$txid")
	expect_none "$name" "arrival at nata of bob's first check (the router drops it)" \
		"frame.interface_name == \"nata/wan0\" && stun.id == $txid"
	expect_sequence "$name" \
		"an Allocate success with XOR-RELAYED-ADDRESS" "stun.type == 0x0103 && stun.att.type == 0x0016 && $q" \
		"alice's USE-CANDIDATE on a relayed pair" "frame.interface_name == \"nata/lan0\" && stun.att.type == 0x0025 && (stun.channel || ip.addr == $RELAY_ADDR) && $q" \
		"QUIC's Handshake in ChannelData" "stun.channel && quic.long.packet_type == 2" \
		"a direct check delivered to alice" "frame.interface_name == \"nata/lan0\" && ip.src == 192.0.2.10 && stun.type == 0x0001 && stun.att.username && $q" \
		"alice's USE-CANDIDATE on the direct pair" "frame.interface_name == \"nata/lan0\" && ip.src == 10.0.1.2 && ip.dst == 192.0.2.10 && stun.att.type == 0x0025 && $q" \
		"alice's chat line, decrypted, direct" "quic.stream_data contains \"hello from alice\" && $direct" \
		"bob's chat line, decrypted, direct" "quic.stream_data contains \"hello from bob\" && $direct"
	expect_none "$name" "chat line through the relay" "quic.stream_data contains \"hello\" && (stun.channel || ip.addr == $RELAY_ADDR)"
	# The move is not a new connection: every long header (Initial,
	# Handshake) comes before the first QUIC packet on the direct path.
	last_long=$(frames "$f" "quic.long.packet_type" | tail -n 1)
	first_direct=$(first "$name" "QUIC between the NATs" "quic && $direct")
	[[ -n $last_long ]] || fail "$name: expected QUIC long headers (the handshake); seen none"
	((last_long < first_direct)) ||
		fail "$name: expected no QUIC long header after the move to the direct path (frame $first_direct); seen one in frame $last_long"
	turn_errors "$name"
	TSHARK_OPTS=("${BASE_OPTS[@]}")
}

check_clean() { # NAME [TSHARK ARGS...]: part 4
	local name=$1 seen
	shift
	seen=$(tsh "$DUMPS/$name.pcapng" "$@" -Y "_ws.malformed || _ws.expert.severity >= error")
	[[ -z $seen ]] || fail "$name: expected no malformed packet and no expert error; seen:
$seen"
}

# ----------------------------------------------------------------- main

echo "== scripts/capture $DUMPS (LAB=$LAB)"
# In the background, so that a TERM to this test is handled at once (bash
# defers traps while a foreground child runs); the cleanup stops timeout,
# which passes the signal to its whole process group (the lab runs).
rc=0
TMPDIR=$NET_TMP timeout -k 5 "$CAPTURE_LIMIT_S" "$NET_REPO/scripts/capture" "$DUMPS" "${NAMES[@]}" &
NET_PIDS+=($!)
wait $! || rc=$?
((rc != 124)) || fail "scripts/capture: expected to finish within $CAPTURE_LIMIT_S s; seen: still running, killed"
((rc == 0)) || fail "scripts/capture: expected exit status 0; seen $rc (its report is above)"
net_expect_gone

for name in "${NAMES[@]}"; do
	[[ -s $DUMPS/$name.pcapng ]] || fail "$name: expected $DUMPS/$name.pcapng; seen none"
	check_interfaces "$name"
	[[ $name == plain_race || $name == sym_home || $name == relay_sym || $name == upgrade ]] || check_session "$name"
	case $name in
	nat2)
		check_probes nat2
		check_consent
		;;
	nat2_plain) check_probes nat2_plain ;;
	samenat) check_hairpin ;;
	plain_race) check_race ;;
	birthday) check_birthday ;;
	sym_home | sym_fullcone)
		check_"$name"
		check_conntrack "$name"
		;;
	relay_sym | upgrade)
		check_"$name"
		check_clean "$name" -X "lua_script:$LUA"
		;;
	esac
	check_clean "$name"
	ok "$name: $(capinfos -M -c -T -r "$DUMPS/$name.pcapng" | cut -f2) packets, session in order, nothing malformed"
done

# Part 5, on the full set of captures that tests/dissector/dissector.sh
# reads, or on relay_sym and upgrade (net_captures_relay) for its TURN
# checks (net_captures_sym makes only the two symmetric-NAT ones, which
# parts 1-4 check).
if ((FULL_SET || RELAY_SET)); then
	[[ -r $LUA ]] || fail "expected the dissector $LUA; seen none"
	rc=0
	PUNCH_DUMPS=$DUMPS PUNCH_LUA=$LUA TSHARK=$(command -v tshark) \
		timeout -k 2 "$DISSECTOR_LIMIT_S" "$NET_REPO/tests/dissector/dissector.sh" || rc=$?
	((rc != 124)) || fail "tests/dissector/dissector.sh on $DUMPS: expected to finish within $DISSECTOR_LIMIT_S s; seen: killed"
	((rc == 0)) || fail "tests/dissector/dissector.sh on the fresh captures: expected exit status 0; seen $rc (its report is above)"
	ok "$LUA: the dissector's full checks pass on the fresh captures"
fi
echo PASS
