#!/usr/bin/env bash
# A hostile home gateway: nata (scenario nat1, home NAT) runs
# tests/net/igd_hostile.py instead of a real UPnP/NAT-PMP/PCP server, and
# alice runs `punch natcheck -json -v` behind it, once per way of lying:
#
#   portmap_hostile.sh PATH_TO_PUNCH
#
#   ssdp  SSDP answers with no LOCATION, oversized and binary
#   desc  a device description of 64 kB of broken XML
#   soap  SOAP answers of junk
#   ext   a well-formed IGD that grants mappings on external address 0.0.0.0
#   (and in each, junk of random sizes for every NAT-PMP and PCP request)
#
# Each time: the gateway saw the requests that lead to its lie (so the lie
# was told), natcheck finishes with its normal verdict (home: exit 0) and
# "portmap": null, and -v names why each protocol gave up.  natcheck runs
# under the same build as the client (ASan in ctest), and shares its port
# mapping code (src/portmap.c).

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

SRV=198.51.100.10 ALT=198.51.100.11
LAN_IP=10.0.1.1     # nata's LAN address: the gateway alice finds
TOOL_LIMIT_S=30     # one natcheck run, end to end
GATEWAY_LIFE_S=120  # igd_hostile.py exits by itself after this

# mode_expect MODE: "REQUEST-LINE-REGEX@UPNP-REASON-REGEX" for MODE
mode_expect() {
	case $1 in
	ssdp) echo '^ssdp M-SEARCH from 10\.0\.1\.2$@no IGD answered SSDP discovery' ;;
	desc) echo '^http GET /rootDesc\.xml$@(no valid IGD in the SSDP answers|the UPnP device found is not an IGD)' ;;
	soap) echo '^soap GetExternalIPAddress$@the IGD did not give its external address' ;;
	ext) echo "^soap AddPortMapping\$@the IGD's external address '0\\.0\\.0\\.0' is not a usable IPv4 address" ;;
	esac
}

net_up nat1 --nat home
ip -n "$(lab_ns server)" addr add "$ALT/24" dev eth0
lab_spawn server "$NET_TMP/server" /dev/null "$PUNCH" server -listen "$SRV:3478" -alt "$ALT:3479" \
	-state "$NET_TMP/state"
NET_PIDS+=("$LAB_PID")
lab_wait_line "$NET_TMP/server.err" '^punch server: listening on ' "$LAB_START_S" "$LAB_PID" ||
	fail "punch server: expected its start line within $LAB_START_S s; seen: $(cat "$NET_TMP/server.err")"

for mode in ssdp desc soap ext; do
	IFS='@' read -r want_req want_why < <(mode_expect "$mode")
	gw=$NET_TMP/gateway-$mode
	lab_spawn nata "$gw" /dev/null python3 "$NET_REPO/tests/net/igd_hostile.py" "$LAN_IP" "$mode" "$GATEWAY_LIFE_S"
	gw_pid=$LAB_PID
	NET_PIDS+=("$gw_pid")
	lab_wait_line "$gw.out" '^ready$' "$LAB_START_S" "$gw_pid" ||
		fail "igd_hostile.py $mode: expected 'ready' within $LAB_START_S s; seen: $(cat "$gw.out" "$gw.err")"

	out=$NET_TMP/natcheck-$mode.json err=$NET_TMP/natcheck-$mode.err rc=0
	lab_nsx alice timeout -k 1 "$TOOL_LIMIT_S" "$PUNCH" natcheck -server "$SRV:3478" -json -v \
		>"$out" 2>"$err" || rc=$?
	expect_eq "$mode: natcheck's exit status behind a home NAT (stderr: $(tail -n 20 "$err"))" 0 "$rc"
	grep -q -E "$want_req" "$gw.out" ||
		fail "$mode: expected the gateway to see '$want_req' (else it never told its lie); it saw: $(tr '\n' ';' <"$gw.out")"
	grep -q -E '^pmp [0-9]+ bytes$' "$gw.out" ||
		fail "$mode: expected a NAT-PMP or PCP request at the gateway; it saw: $(tr '\n' ';' <"$gw.out")"
	net_json_load "$out"
	expect_eq "$mode: natcheck -json's portmap" None "${J[portmap]}"
	grep -q -E "portmap: upnp: $want_why" "$err" ||
		fail "$mode: expected 'portmap: upnp: $want_why' at -v; seen: $(grep portmap "$err" | tr '\n' ';')"
	grep -q -E 'portmap: ignored [0-9]+ bytes from the gateway' "$err" ||
		fail "$mode: expected the gateway's NAT-PMP/PCP junk to be ignored at -v; seen: $(grep portmap "$err" | tr '\n' ';')"
	! grep -q -E 'AddressSanitizer|runtime error' "$err" || fail "$mode: a sanitizer report: $(cat "$err")"
	ok "$mode: ignored ($(grep -E "portmap: upnp: " "$err" | head -n 1 | sed 's/^.*portmap: //'))"
	lab_stop_pid "$gw_pid"
done
echo PASS
