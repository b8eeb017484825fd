#!/usr/bin/env bash
# Port mapping through two symmetric NATs (scenario nat2, the server
# relaying), nata running miniupnpd (scripts/lab --portmap-a):
#
#   portmap.sh PATH_TO_PUNCH
#
#   1. alice gets a mapping from miniupnpd and offers it as a "mapped"
#      candidate; bob reaches it directly ("(mapped)" on bob's path line),
#      and neither side is on the relay (--await-direct: under load bob's
#      relayed check can reach alice before the PEER-INFO that lists his
#      relayed address, and they connect through the relay first; the
#      direct pair must then take over).  When alice has quit, her mapping
#      is gone from miniupnpd's DNAT chain and its lease file.
#   2. The same with -no-portmap: nothing asked of the gateway, and the
#      pair is relayed, as tests/net/matrix.sh expects of symmetric pairs.
# The time alice took to get her mapping is printed (a figure, not a
# verdict).

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

GONE_S=5 # for miniupnpd to act on the deletes sent at exit

run_dir() { # the kept run's log directory (net_lab_run keeps it in NET_TMP)
	local d
	d=$(find "$NET_TMP" -maxdepth 1 -name 'punch-lab.*' -type d)
	[[ -n $d && $d != *$'\n'* ]] || fail "expected one kept run directory in $NET_TMP; seen '$d'"
	echo "$d"
}

# mappings: the DNAT rules miniupnpd holds in nata, and the lines of its
# lease file, one a line.
mappings() {
	lab_nsx nata iptables-legacy -w 5 -t nat -S MINIUPNPD | grep -e '^-A' || true
	grep -v '^$' "$(lab_portmap_dir)/leases" 2>/dev/null || true
}

# 1. with the mapping
out=$NET_TMP/mapped.out
net_lab_run "$out" nat2 --nat symmetric --portmap-a --relay -v --await-direct 10
dir=$(run_dir)
line=$(grep -E '^Port mapping: ' "$dir/alice.err" || true)
re='^Port mapping: the gateway maps my UDP port ([0-9]+) to 11\.0\.113\.10:([0-9]+) \((upnp|nat-pmp|pcp), in ([0-9]+) ms\)'
[[ $line =~ $re ]] ||
	fail "alice: expected 'Port mapping: the gateway maps my UDP port N to 11.0.113.10:N (PROTOCOL, in N ms)'; seen '$line'; her port mapping at -v: $(grep -E 'portmap' "$dir/alice.err" | tr '\n' ';'); miniupnpd's log: $(tail -n 20 "$(lab_portmap_dir)/log" 2>/dev/null | tr '\n' ';')"
proto=${BASH_REMATCH[3]} took=${BASH_REMATCH[4]} ext_port=${BASH_REMATCH[2]}
grep -q -E "mapped 11\.0\.113\.10:$ext_port" "$dir/bob.err" ||
	fail "bob: expected alice's candidate 'mapped 11.0.113.10:$ext_port' in its peer info; seen: $(grep -E '^Step 4' "$dir/bob.err" | head -n 2)"
expect_remote "$out" bob 11.0.113.10 mapped
net_path "$out" alice
[[ $PATH_TYPE != relay ]] || fail "alice: expected a direct path (bob came through her mapping); seen '$PATH_LINE'"
ok "symmetric <-> symmetric with a mapping: direct; alice mapped by $proto in $took ms"

# the mapping is deleted at exit (bounded wait: miniupnpd reads the deletes)
lab_now
deadline=$((LAB_NOW + GONE_S * 1000))
while [[ -n $(mappings) ]]; do
	lab_now
	((LAB_NOW < deadline)) || fail "after alice quit: expected miniupnpd to hold no mapping; seen: $(mappings | tr '\n' ';')"
	sleep "$LAB_POLL_S"
done
ok "alice's mapping deleted at exit"

# natcheck behind the same gateway reports the mapping (the server has
# stopped, so the tests themselves find no UDP: exit status 4), and deletes it
rc=0
lab_nsx alice timeout -k 1 30 "$PUNCH" natcheck -server 198.51.100.10:3478 -json \
	>"$NET_TMP/natcheck.json" 2>"$NET_TMP/natcheck.err" || rc=$?
expect_eq "natcheck with the server gone: exit status (stderr: $(cat "$NET_TMP/natcheck.err"))" 4 "$rc"
pm=$(python3 -c 'import json, sys
p = json.load(open(sys.argv[1]))["portmap"]
print("%s %s %s" % (p["protocol"], p["external"].split(":")[0], ",".join(p["protocols"])) if p else "null")' "$NET_TMP/natcheck.json")
[[ $pm =~ ^(upnp|nat-pmp|pcp)\ 11\.0\.113\.10\ [a-z,-]+$ ]] ||
	fail "natcheck -json: expected portmap with a protocol and external 11.0.113.10:PORT; seen '$pm' in $(cat "$NET_TMP/natcheck.json")"
lab_now
deadline=$((LAB_NOW + GONE_S * 1000))
while [[ -n $(mappings) ]]; do
	lab_now
	((LAB_NOW < deadline)) || fail "after natcheck: expected miniupnpd to hold no mapping; seen: $(mappings | tr '\n' ';')"
	sleep "$LAB_POLL_S"
done
ok "natcheck reports the mapping ($pm) and deletes it"
(lab_down)
rm -rf "$dir" # so that run_dir finds the next run's

# 2. -no-portmap: relayed
out=$NET_TMP/unmapped.out
net_lab_run "$out" nat2 --nat symmetric --portmap-a --relay --client-args -no-portmap
dir=$(run_dir)
! grep -q '^Port mapping: ' "$dir/alice.err" ||
	fail "alice with -no-portmap: expected no port mapping; seen '$(grep '^Port mapping: ' "$dir/alice.err")'"
for id in alice bob; do
	net_path "$out" "$id"
	expect_eq "$id's path type with -no-portmap (its line: $PATH_LINE)" relay "$PATH_TYPE"
done
[[ -z $(mappings) ]] || fail "with -no-portmap: expected miniupnpd to hold no mapping; seen: $(mappings | tr '\n' ';')"
ok "symmetric <-> symmetric with -no-portmap: relayed"
echo PASS
