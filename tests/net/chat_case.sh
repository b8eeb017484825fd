#!/usr/bin/env bash
# End-to-end chat through the lab: `scripts/lab run` (server, two clients,
# connect, a chat line each way, quit) and then the chosen path.
#
#   chat_case.sh PATH_TO_PUNCH CASE...
#
# CASE   scenario and options              alice's remote       bob's remote
# lan          lan                          10.0.0.3 host         10.0.0.2 host     (peers' LAN addresses)
# samenat      samenat                      10.0.1.3 host         10.0.1.2 host     (no hairpinning)
# nat1         nat1                         192.0.2.20 host       203.0.113.10 srflx (bob is public)
# nat2         nat2                         192.0.2.10 srflx      203.0.113.10 srflx (the NATs' public addresses)
# nat2_plain   nat2 --nat plain             as nat2 (plain NATs need the small-TTL first probe;
#                                           without it a NAT remaps a port and the pair is prflx or none)
# late_peer    nat2 --delay-bob 10          as nat2
# loss         nat2 --loss 10               as nat2 (10 % loss each way at NAT A)
# nat_timeout  nat2 --udp-timeout 2 --idle 6  as nat2: after 6 s of quiet (3 times the
#                                           NATs' UDP timeout) a line each way still
#                                           arrives within 20 s
# sym_public   nat1 --nat symmetric         as nat1, bob's remote a peer-reflexive
#                                           candidate (alice's port toward him is new)
# sym_restricted  nat2 --nat-a symmetric    as nat2, bob's remote peer-reflexive: his
#              --nat-b restricted           restricted cone admits any port of alice's
#                                           address once he has sent to it
#
# Beyond the remote address and candidate type, the ports are checked against
# the kernel: where a NAT translates a peer's packets, the NAT's conntrack
# table must hold that peer's flow exactly as its path line says, and the
# other peer's remote must be the public address and port the NAT mapped it
# to; where no NAT does, the other's remote is the peer's own socket.
#
# Each case runs in its own lab instance; scripts/lab run bounds every wait
# (20 s to connect, 20 s per chat line, 10 s to quit), and this script's own
# cleanup removes anything left.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
shift
(($#)) || fail "usage: $0 PATH_TO_PUNCH CASE... (see the table at the top)"

# alice's remote and type, bob's; the NAT in front of alice, of bob ("-": none
# on the path).
NAT2="192.0.2.10 srflx 203.0.113.10 srflx nata natb"
for case in "$@"; do
	case $case in
	lan) args=(lan) want="10.0.0.3 host 10.0.0.2 host - -" ;;
	samenat) args=(samenat) want="10.0.1.3 host 10.0.1.2 host - -" ;;
	nat1) args=(nat1) want="192.0.2.20 host 203.0.113.10 srflx nata -" ;;
	nat2) args=(nat2) want=$NAT2 ;;
	nat2_plain) args=(nat2 --nat plain) want=$NAT2 ;;
	late_peer) args=(nat2 --delay-bob 10) want=$NAT2 ;;
	loss) args=(nat2 --loss 10) want=$NAT2 ;;
	# The NATs forget the flows 2 s after the last packet, before the check.
	nat_timeout) args=(nat2 --udp-timeout 2 --idle 6 --timeout 20)
		want="${NAT2% nata natb} nata/expired natb/expired" ;;
	# alice's port toward bob is not her server-reflexive one: bob learns it
	# from her checks (peer-reflexive).
	sym_public) args=(nat1 --nat symmetric) want="192.0.2.20 host 203.0.113.10 prflx nata -" ;;
	sym_restricted) args=(nat2 --nat-a symmetric --nat-b restricted)
		want="192.0.2.10 srflx 203.0.113.10 prflx nata natb" ;;
	*) fail "unknown case '$case' (see the table at the top of $0)" ;;
	esac
	echo "== $case: scripts/lab run ${args[*]}"
	out=$NET_TMP/$case.out
	net_lab_run "$out" "${args[@]}"
	read -r ip_a type_a ip_b type_b nat_a nat_b <<<"$want"
	expect_remote "$out" alice "$ip_a" "$type_a"
	expect_remote "$out" bob "$ip_b" "$type_b"
	expect_peer_sees "$out" alice "$nat_a" bob
	expect_peer_sees "$out" bob "$nat_b" alice
	(lab_down)
	net_expect_gone
	ok "$case: alice -> $ip_a ($type_a), bob -> $ip_b ($type_b), ports as the NATs mapped them"
done
echo PASS
