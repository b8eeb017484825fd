#!/usr/bin/env bash
# The NAT rules that docs/nat-traversal.md prints, made from the lab itself:
#
#   lab_rules.sh PATH_TO_PUNCH [check|write]
#
# For each NAT mode of scripts/lab, builds scenario nat1 with it and reads
# back what nata really runs: its ip_forward sysctl, its iptables rules
# (`iptables -S`, nat table first, as commands) and, for the cone modes, the
# nftables table; and, as "ipv6", nata's IPv6 firewall (scenario nat1
# --ipv6: the IPv6 forwarding sysctl and `ip6tables -S`).  Each
# "<!-- lab-rules: MODE -->" block of the doc must be
# that text (check, the default, as ctest runs it), or is rewritten to it
# (write: after a change to scripts/lab).  The "<!-- conntrack: NAME -->"
# blocks must be docs/dumps/NAME.conntrack, which scripts/capture writes
# beside the capture.  Needs root; the instance is this test's own and
# lib.sh's cleanup removes it even on failure.
set -euo pipefail
source "$(dirname "$0")/../net/lib.sh"
net_init "${1:-}"
action=${2:-check}
[[ $action == check || $action == write ]] || fail "usage: $0 PATH_TO_PUNCH [check|write]"
command -v nft >/dev/null || fail "nft not found (scripts/deps.sh installs nftables)"
DOC=$NET_REPO/docs/nat-traversal.md
OUT=$NET_TMP/rules
mkdir -p "$OUT"

# rules_of NODE: the NAT rules of NODE, as commands that rebuild them.
rules_of() {
	local node=$1
	echo "sysctl -w net.ipv4.ip_forward=$(lab_nsx "$node" sysctl -n net.ipv4.ip_forward)"
	lab_nsx "$node" iptables -w 5 -t nat -S | sed -n -E '/^-(P|N) /!s/^/iptables -t nat /p'
	lab_nsx "$node" iptables -w 5 -S | sed -n -E '/^-(P|N) /!s/^/iptables /p'
	if lab_nsx "$node" nft list table ip lab_cone >"$NET_TMP/nft.out" 2>/dev/null; then
		echo "nft -f - <<'EOF'"
		sed 's/\t/    /g' "$NET_TMP/nft.out"
		echo "EOF"
	fi
}

for mode in home plain symmetric fullcone restricted; do
	net_up nat1 --nat "$mode"
	rules_of nata >"$OUT/$mode"
	lab_down
	ok "$mode: $(grep -c . "$OUT/$mode") lines of rules read back from nata"
done
# rules6_of NODE: NODE's IPv6 firewall, as commands.
rules6_of() {
	local node=$1
	echo "sysctl -w net.ipv6.conf.all.forwarding=$(lab_nsx "$node" sysctl -n net.ipv6.conf.all.forwarding)"
	lab_nsx "$node" ip6tables -w 5 -S | sed -n -E '/^-(P|N) /!s/^/ip6tables /p'
}
net_up nat1 --ipv6
rules6_of nata >"$OUT/ipv6"
lab_down
ok "ipv6: $(grep -c . "$OUT/ipv6") lines of IPv6 firewall rules read back from nata"
net_expect_gone

python3 "$(dirname "$0")/docs.py" blocks "$action" "$DOC" \
	"lab-rules=$OUT" "conntrack=$NET_REPO/docs/dumps" ||
	fail "$DOC: its rule and conntrack blocks differ from the lab's (tests/docs/lab_rules.sh PUNCH write updates them)"
ok "$DOC: every lab-rules and conntrack block matches ($action)"
echo PASS
