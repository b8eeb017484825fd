#!/usr/bin/env bash
# End-to-end chat through the lab: `scripts/lab run` (server, two clients,
# connect, a chat line each way, quit) and then the chosen path.
#
#   chat_case.sh PATH_TO_PUNCH CASE...
#
# CASE   scenario and options              alice's remote   bob's remote
# lan          lan                          10.0.0.3         10.0.0.2       (peers' LAN addresses)
# samenat      samenat                      10.0.1.3         10.0.1.2       (no hairpinning)
# nat1         nat1                         192.0.2.20       203.0.113.10   (bob is public)
# nat2         nat2                         192.0.2.10       203.0.113.10   (the NATs' public addresses)
# nat2_plain   nat2 --nat plain             as nat2 (plain NATs need the small-TTL first probe)
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
# Each case runs in its own lab instance; scripts/lab run bounds every wait
# (20 s to connect, 20 s per chat line, 10 s to quit) and tears down even on
# failure, and this script's own cleanup removes anything left.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"
shift
(($#)) || fail "usage: $0 PATH_TO_PUNCH CASE... (see the table at the top)"

NAT2_REMOTES="192.0.2.10 203.0.113.10"
for case in "$@"; do
	case $case in
	lan) args=(lan) remotes="10.0.0.3 10.0.0.2" ;;
	samenat) args=(samenat) remotes="10.0.1.3 10.0.1.2" ;;
	nat1) args=(nat1) remotes="192.0.2.20 203.0.113.10" ;;
	nat2) args=(nat2) remotes=$NAT2_REMOTES ;;
	nat2_plain) args=(nat2 --nat plain) remotes=$NAT2_REMOTES ;;
	late_peer) args=(nat2 --delay-bob 10) remotes=$NAT2_REMOTES ;;
	loss) args=(nat2 --loss 10) remotes=$NAT2_REMOTES ;;
	nat_timeout) args=(nat2 --udp-timeout 2 --idle 6 --timeout 20) remotes=$NAT2_REMOTES ;;
	sym_public) args=(nat1 --nat symmetric) remotes="192.0.2.20 203.0.113.10" ;;
	sym_restricted) args=(nat2 --nat-a symmetric --nat-b restricted) remotes=$NAT2_REMOTES ;;
	*) fail "unknown case '$case' (see the table at the top of $0)" ;;
	esac
	echo "== $case: scripts/lab run ${args[*]}"
	out=$NET_TMP/$case.out
	net_lab_run "$out" "${args[@]}"
	read -r want_alice want_bob <<<"$remotes"
	expect_remote "$out" alice "$want_alice"
	expect_remote "$out" bob "$want_bob"
	if [[ $case == sym_* ]]; then
		grep -q -E '^bob: .* \(prflx\) in ' "$out" ||
			fail "$case: expected bob's path on a peer-reflexive candidate (prflx); seen '$(grep '^bob: ' "$out")'"
	fi
	net_expect_gone
	ok "$case: alice -> $want_alice, bob -> $want_bob"
done
echo PASS
