#!/usr/bin/env bash
# The Wireshark dissector, contrib/wireshark/punch.lua, against the captures
# of punch's own traffic: with the script loaded, tshark must decode every
# packet, flag nothing, and show punch's methods and sane attribute values.
# Reads files only; needs tshark.
#
#   dissector.sh
#
# Environment:
#   PUNCH_DUMPS  directory of captures (*.pcap, *.pcapng); default docs/dumps
#   PUNCH_LUA    the script under test; default contrib/wireshark/punch.lua
#   TSHARK       the tshark binary; default tshark from PATH
#
# For each capture, one tshark pass (-T fields) and these checks:
#   stderr       tshark printed nothing but its running-as-root notice
#                (a Lua syntax or load error goes there, and tshark exits 0)
#   clean        no _ws.malformed, no Lua error, no expert info of severity
#                warning or error, from any protocol, except the Decryption
#                group: QUIC that tshark has no TLS secrets for
#   decoded      every UDP datagram (also one quoted in ICMP) decodes as STUN
#                or punch, or as QUIC (the secure link on the same flow);
#                every one that has the STUN header (first byte 0-3, magic
#                cookie) decodes as STUN or punch, never as QUIC, and went
#                through punch.lua first (udp:punch in frame.protocols: the
#                server port, or the heuristic and the flow it pinned)
#   consent      every datagram with a STUN header on a flow after QUIC's
#                handshake there (the consent checks) is decoded again in a
#                second pass with QUIC's heuristic turned off
#                (--disable-heuristic quic), and must be, through punch.lua, a
#                clean Binding request (USERNAME, MESSAGE-INTEGRITY,
#                FINGERPRINT) or success response (XOR-MAPPED-ADDRESS,
#                MESSAGE-INTEGRITY, FINGERPRINT).  Wireshark 4.0's QUIC may
#                claim such a flow whole, and then shows the checks as QUIC
#                in the first pass: the one exception "decoded" allows
#   known        Wireshark's own STUN dissector saw none of punch's methods
#                (0x07D-0x07F) and called no attribute unknown (it would,
#                for 0x4F01-0x4F0D), and no Info column says "Unknown"
#   methods      REGISTER and PEER-INFO requests and their success responses
#                all appear
#   values       PUNCH-ID values are exactly alice and bob; PUNCH-PEER-ID names
#                the other one; PUNCH-STATUS is waiting or paired and both
#                appear; PUNCH-LIFETIME is 30 s (docs/protocol.md); candidate
#                types are 1-4
#   addresses    every address and port the dissector un-XORed (candidates,
#                PUNCH-OBSERVED, XOR-MAPPED-ADDRESS) is one that the
#                capture's own IP and UDP headers show (the lab records both
#                sides of every NAT, so every host's address is on the wire)
# and, for a capture with a TURN Allocate in it (the server relaying,
# scripts/lab --relay):
#   turn         Wireshark decodes the relay's exchange as TURN (RFC 8656):
#                Allocate request, its 401 and success, CreatePermission,
#                ChannelBind and Refresh requests and successes, Send and
#                Data indications and ChannelData all appear
#   carried      what the relay carries is decoded through punch.lua's "stun"
#                heuristic, never left as bare data: every Send and Data
#                indication holds a STUN message (a check); every ChannelData
#                a STUN message or QUIC, and both kinds appear (the checks
#                through the relay, then the secure link)
#   relay creds  a REGISTER success carries PUNCH-RELAY with the username
#                rdv:SESSION:ID (16 hex digits, alice or bob)
#   trickle      a PEER-INFO request carries a relayed candidate (type 4):
#                the one the peer registered once it had its allocation
# A capture with no STUN at all (no UDP payload with the magic cookie at
# offset 4, e.g. plain datagrams from tests/net/udpprobe.py) is not punch's
# traffic: only stderr and clean apply, and nothing in it may decode as punch.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
lua=${PUNCH_LUA:-$repo/contrib/wireshark/punch.lua}
dumps=${PUNCH_DUMPS:-$repo/docs/dumps}
tshark=${TSHARK:-tshark}
ids="alice bob" # the lab's two clients (scripts/lab)
lifetime_s=30   # docs/protocol.md, "Answer"

command -v "$tshark" >/dev/null ||
	{ echo "FAIL: tshark not found (TSHARK=$tshark); scripts/deps.sh installs it" >&2; exit 1; }
[[ -r $lua ]] || { echo "FAIL: no dissector script at $lua" >&2; exit 1; }
[[ -d $dumps ]] || { echo "FAIL: no capture directory $dumps (scripts/capture makes docs/dumps)" >&2; exit 1; }
shopt -s nullglob
captures=("$dumps"/*.pcap "$dumps"/*.pcapng)
((${#captures[@]})) ||
	{ echo "FAIL: no captures (*.pcap, *.pcapng) in $dumps; scripts/capture makes them" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/punch-dissector.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# One line per frame, tab-separated; a field that occurs more than once in a
# frame is joined with \x1f.  The awk program below names them by position.
fields=(
	frame.number frame.protocols _ws.malformed _ws.lua.error
	_ws.expert.severity _ws.expert.group _ws.expert.message udp.payload
	stun.type.method stun.unknown_attribute _ws.col.Info
	punch.id punch.peer_id punch.status punch.lifetime
	punch.cand.type punch.cand.ipv4 punch.observed.ipv4 punch.xor_mapped.ipv4
	punch.cand.port punch.observed.port punch.xor_mapped.port
	ip.src ip.dst udp.srcport udp.dstport
	stun.type stun.channel punch.relay.username
)
eargs=()
for f in "${fields[@]}"; do
	eargs+=(-e "$f")
done

# check_capture FILE: prints "ok: ..." or one "FAIL: ..." line per failed
# check; returns 1 if any failed.
check_capture() {
	local file=$1 name rc=0
	name=$(basename "$file")
	if ! "$tshark" -n -X "lua_script:$lua" -r "$file" -T fields -E separator=/t \
		-E occurrence=a -E "aggregator=$(printf '\037')" "${eargs[@]}" \
		>"$tmp/fields" 2>"$tmp/stderr"; then
		echo "FAIL: $name: tshark exited with an error:" >&2
		sed 's/^/  | /' "$tmp/stderr" >&2
		return 1
	fi
	if grep -qv '^Running as user "root" and group "root"' "$tmp/stderr"; then
		echo "FAIL: $name: stderr: expected nothing (the script loads and runs); seen:" >&2
		grep -v '^Running as user' "$tmp/stderr" | head -20 | sed 's/^/  | /' >&2
		rc=1
	fi
	: >"$tmp/consent"
	awk -F '\t' -v name="$name" -v ids="$ids" -v lifetime="$lifetime_s" -v consent="$tmp/consent" '
	function fail(check, expected, seen) {
		printf "FAIL: %s: %s: expected %s; seen %s\n", name, check, expected, seen > "/dev/stderr"
		failed = 1
	}
	function note(what, entry) { # one more offending frame for check "what"
		bad[what] = bad[what] (bad[what] == "" ? "" : "\036") entry
	}
	function seen(what,   n, e, s, i) { # the first few entries, and how many
		n = split(bad[what], e, "\036")
		s = "frame " e[1]
		for (i = 2; i <= n && i <= 4; i++)
			s = s ", " e[i]
		return n > 4 ? s ", ... (" n " in all)" : s
	}
	function add(set, values,   n, i, v) { # split a \x1f-joined field into set
		n = split(values, v, "\037")
		for (i = 1; i <= n; i++)
			if (v[i] != "")
				set[v[i]] = 1
	}
	function keys(set,   k, s) {
		s = ""
		for (k in set)
			s = s (s == "" ? "" : " ") k
		return s == "" ? "(none)" : s
	}
	{
		n = $1; protos = $2; info = $11
		frames_seen++
		udp = (protos ~ /:udp(:|$)/)
		if (udp) {
			last = protos
			sub(/.*:/, "", last)
			# (Also QUIC that a TURN relay carries: udp:punch:stun:punch:quic.)
			quic = (protos ~ /:udp(:punch)?(:stun:punch)?:quic(:|$)/)
			if (quic)
				quic_frames++
			if (last != "stun" && last != "punch" && !quic)
				note("undecoded", n " (" protos ")")
			# The raw bytes, not a dissector: RFC 8489 6 and RFC 9443.
			p = $8
			first = substr(p, 1, 2)
			flow = ($23 < $24) ? ($23 ":" $25 " " $24 ":" $26) : ($24 ":" $26 " " $23 ":" $25)
			if ($2 ~ /:quic/ && first >= "c0")
				quic_flow[flow] = 1
			if ((first == "00" || first == "01" || first == "02" || first == "03") &&
			    substr(p, 9, 8) == "2112a442") {
				stun_like++
				# Known Wireshark 4.0 limitation: once its QUIC dissector
				# has seen a handshake on a flow it claims the whole flow,
				# so later consent checks there show as QUIC (contrib/
				# wireshark/README.md).  Decoded again without the QUIC
				# heuristic (check_consent); any other misdecoded STUN
				# fails.
				if (flow in quic_flow)
					print n > consent
				if (last == "quic" && (flow in quic_flow))
					stun_after_quic++
				else if (last != "stun" && last != "punch")
					note("stun_as_other", n " (" protos ")")
				# Not the built-in STUN heuristic: it would pin the flow
				# to "stun-udp", and the QUIC heuristic would then take the
				# flow at its first Initial (contrib/wireshark/punch.lua).
				else if (protos !~ /:udp:punch(:|$)/)
					note("stun_bypassed", n " (" protos ")")
			}
			if (last == "punch")
				note("false_punch", n)
		}
		if ($3 != "") note("malformed", n)
		if ($4 != "") note("lua", n ": " $7)
		nsev = split($5, sev, "\037"); split($6, group, "\037"); split($7, msg, "\037")
		for (i = 1; i <= nsev; i++)
			# 0x00600000 is PI_WARN (PI_ERROR is above); 0x0c000000 is
			# PI_DECRYPTION: "Secrets are not available" for QUIC.
			if (sev[i] + 0 >= 6291456 && group[i] + 0 != 201326592)
				note("expert", n " (" msg[i] ")")
		nm = split($9, m, "\037")
		for (i = 1; i <= nm; i++)
			# The field is the message type under mask 0x3eef: REGISTER,
			# PEER-INFO and RELEASE (0x07D-0x07F) show as 0x00ed-0x00ef.
			if (tolower(m[i]) ~ /^0x00e[def]$/) note("stun_method", n " (" m[i] ")")
		# The built-in dissector marks an attribute it does not know with
		# this item (and expert info) rather than a stun.att.type.
		if ($10 != "") note("stun_attr", n)
		if (udp && info ~ /Unknown/) note("unknown_info", n " (" info ")")

		split("REGISTER PEER-INFO", meth, " ")
		for (i = 1; i <= 2; i++) {
			if (index(info, meth[i] " Request") == 1) count[meth[i] " Request"]++
			if (index(info, meth[i] " Success Response") == 1) count[meth[i] " Success Response"]++
		}
		add(id_set, $12); add(peer_set, $13)
		if (index(info, "REGISTER Request") == 1 && ($12 == "" || $13 == "" || $12 == $13))
			note("register_ids", n " (id \"" $12 "\", peer \"" $13 "\")")
		ns = split($14, st, "\037")
		for (i = 1; i <= ns; i++) {
			if (st[i] != "0" && st[i] != "1") note("status", n " (" st[i] ")")
			status_seen[st[i]] = 1
		}
		nl = split($15, lt, "\037")
		for (i = 1; i <= nl; i++)
			if (lt[i] != lifetime) note("lifetime", n " (" lt[i] ")")
		nc = split($16, ct, "\037")
		for (i = 1; i <= nc; i++)
			if (ct[i] !~ /^[1-4]$/) note("cand_type", n " (" ct[i] ")")
		for (k = 17; k <= 19; k++) add(decoded_ip, $k)
		for (k = 20; k <= 22; k++) add(decoded_port, $k)
		for (k = 23; k <= 24; k++) add(header_ip, $k)
		for (k = 25; k <= 26; k++) add(header_port, $k)

		# TURN (RFC 8656): the outer message type comes first in stun.type.
		split($27, ty, "\037"); t0 = tolower(ty[1])
		if (t0 != "") turn_type[t0]++
		if (t0 == "0x0113" && index(info, "error-code: 401") > 0) turn_401++
		if (t0 == "0x0016" || t0 == "0x0017") {
			# A Send or Data indication: its DATA, a check, decoded as STUN.
			if (protos !~ /:stun:punch(:stun)?$/) note("carried_ind", n " (" protos ")")
		}
		if ($28 != "" && udp && first >= "40" && first < "80") {
			channel_data++
			if (protos ~ /:stun:punch:quic(:|$)/) channel_quic++
			else if (protos ~ /:stun:punch(:stun)?$/) channel_stun++
			else note("carried_cd", n " (" protos ")")
		}
		if ($29 != "") relay_user[$29] = 1
		if (index(info, "PEER-INFO Request") == 1)
			for (i = 1; i <= nc; i++)
				if (ct[i] == "4") trickled++
	}
	END {
		if (frames_seen == 0) fail("frames", "a capture with packets", "none")
		if (bad["malformed"] != "") fail("clean", "no _ws.malformed", seen("malformed"))
		if (bad["lua"] != "") fail("clean", "no Lua error", seen("lua"))
		if (bad["expert"] != "") fail("clean", "no expert info of severity warning or error", seen("expert"))
		if (stun_like == 0) {
			if (bad["false_punch"] != "")
				fail("decoded", "nothing decoded as punch (no datagram carries the STUN magic cookie)", seen("false_punch"))
			if (!failed)
				printf "ok: %s: %d frames, none of them STUN (not punch traffic): clean, no false positives\n", name, frames_seen
			exit failed
		}
		if (bad["undecoded"] != "") fail("decoded", "every UDP datagram decoded as STUN, punch or QUIC", seen("undecoded"))
		if (bad["stun_as_other"] != "") fail("decoded", "every datagram with a STUN header decoded as STUN or punch", seen("stun_as_other"))
		if (bad["stun_bypassed"] != "") fail("decoded", "every datagram with a STUN header dissected by punch.lua first (udp:punch)", seen("stun_bypassed"))
		if (bad["stun_method"] != "") fail("known", "no punch method left to the built-in STUN dissector", seen("stun_method"))
		if (bad["stun_attr"] != "") fail("known", "no attribute that the built-in STUN dissector calls unknown", seen("stun_attr"))
		if (bad["unknown_info"] != "") fail("known", "no \"Unknown\" in the Info column", seen("unknown_info"))
		nmeth = split("REGISTER PEER-INFO", meth, " ")
		for (i = 1; i <= nmeth; i++)
			for (c = 1; c <= 2; c++) {
				what = meth[i] (c == 1 ? " Request" : " Success Response")
				if (count[what] == 0) fail("methods", "at least one \"" what "\"", "none")
			}
		split(ids, want, " ")
		for (i in want) want_set[want[i]] = 1
		ok = 1
		for (k in want_set) if (!(k in id_set)) ok = 0
		for (k in id_set) if (!(k in want_set)) ok = 0
		if (!ok) fail("values", "PUNCH-ID values {" ids "}", "{" keys(id_set) "}")
		ok = 1
		for (k in peer_set) if (!(k in want_set)) ok = 0
		if (!ok || keys(peer_set) == "(none)") fail("values", "PUNCH-PEER-ID values within {" ids "}", "{" keys(peer_set) "}")
		if (bad["register_ids"] != "") fail("values", "REGISTER with PUNCH-ID and a different PUNCH-PEER-ID", seen("register_ids"))
		if (bad["status"] != "") fail("values", "PUNCH-STATUS 0 (waiting) or 1 (paired)", seen("status"))
		if (!("0" in status_seen) || !("1" in status_seen))
			fail("values", "PUNCH-STATUS waiting (0) and paired (1) both", "{" keys(status_seen) "}")
		if (bad["lifetime"] != "") fail("values", "PUNCH-LIFETIME " lifetime, seen("lifetime"))
		if (bad["cand_type"] != "") fail("values", "candidate types 1-4", seen("cand_type"))
		missing = ""
		for (k in decoded_ip) if (!(k in header_ip)) missing = missing (missing == "" ? "" : " ") k
		if (missing != "") fail("addresses", "un-XORed addresses among the IP headers {" keys(header_ip) "}", missing)
		missing = ""
		for (k in decoded_port) if (!(k in header_port)) missing = missing (missing == "" ? "" : " ") k
		if (missing != "") fail("addresses", "un-XORed ports among the UDP headers", missing)
		if (!failed)
			printf "ok: %s: %d frames; REGISTER %d, PEER-INFO %d requests, %d QUIC; ids {%s}; %d addresses un-XORed; %d consent checks shown as QUIC by Wireshark\n",
				name, frames_seen, count["REGISTER Request"], count["PEER-INFO Request"],
				quic_frames, keys(id_set), length(decoded_ip), stun_after_quic
		if (!("0x0003" in turn_type))
			exit failed
		# The exchange with the relay (RFC 8656 message types).
		nt = split("0x0003 Allocate request|0x0103 Allocate success|0x0008 CreatePermission request|0x0108 CreatePermission success|0x0009 ChannelBind request|0x0109 ChannelBind success|0x0004 Refresh request|0x0104 Refresh success|0x0016 Send indication|0x0017 Data indication", tt, "|")
		for (i = 1; i <= nt; i++) {
			code = substr(tt[i], 1, 6)
			if (!(code in turn_type)) fail("turn", "at least one " substr(tt[i], 8) " (stun.type == " code ")", "none")
		}
		if (turn_401 == 0) fail("turn", "an Allocate error response 401 (the first Allocate, without credentials)", "none")
		if (bad["carried_ind"] != "") fail("carried", "every Send and Data indication carrying a STUN message that punch.lua decodes", seen("carried_ind"))
		if (bad["carried_cd"] != "") fail("carried", "every ChannelData carrying STUN or QUIC that punch.lua decodes", seen("carried_cd"))
		if (channel_stun == 0 || channel_quic == 0)
			fail("carried", "ChannelData carrying checks (STUN) and ChannelData carrying QUIC", channel_stun " and " channel_quic)
		ok = 0
		for (k in relay_user)
			if (split(k, u, ":") == 3 && u[1] == "rdv" && u[2] ~ /^[0-9a-f]+$/ && length(u[2]) == 16 && (u[3] == "alice" || u[3] == "bob"))
				ok = 1
		if (!ok) fail("relay creds", "PUNCH-RELAY with the username rdv:SESSION:ID", "{" keys(relay_user) "}")
		if (trickled == 0) fail("trickle", "a PEER-INFO request with a relayed candidate (type 4)", "none")
		if (!failed)
			printf "ok: %s: TURN: %d Allocate, %d ChannelBind, %d Send and %d Data indications, %d ChannelData (%d carrying checks, %d QUIC); relay users {%s}; %d relayed candidates trickled in PEER-INFO\n",
				name, turn_type["0x0003"], turn_type["0x0009"], turn_type["0x0016"], turn_type["0x0017"],
				channel_data, channel_stun, channel_quic, keys(relay_user), trickled
		exit failed
	}' "$tmp/fields" || rc=1
	[[ -s $tmp/consent ]] && { check_consent "$file" || rc=1; }
	return "$rc"
}

# check_consent FILE: the "consent" check, on the frames listed in
# $tmp/consent.  Prints "ok: ..." or "FAIL: ..." lines; returns 1 on failure.
check_consent() {
	local file=$1 name list
	name=$(basename "$file")
	list=$(paste -s -d, "$tmp/consent") # Wireshark 4.0: {1,2,3}
	if ! "$tshark" -n -X "lua_script:$lua" -r "$file" --disable-heuristic quic \
		-Y "frame.number in {$list}" -T fields -E separator=/t -E occurrence=a \
		-E "aggregator=$(printf '\037')" -e frame.number -e frame.protocols \
		-e stun.type -e stun.att.type -e _ws.malformed -e _ws.lua.error \
		-e _ws.expert.severity >"$tmp/consent.fields" 2>"$tmp/stderr"; then
		echo "FAIL: $name: consent: tshark --disable-heuristic quic exited with an error:" >&2
		sed 's/^/  | /' "$tmp/stderr" >&2
		return 1
	fi
	awk -F '\t' -v name="$name" -v want="$(wc -l <"$tmp/consent")" '
	function has(types, t) { return index("\037" types "\037", "\037" t "\037") > 0 }
	{
		seen++
		n = $1; types = tolower($4)
		shown = types
		gsub("\037", ",", shown)
		why = ""
		if ($2 !~ /:udp:punch:stun$/) why = "decoded as " $2
		else if ($5 != "" || $6 != "") why = "malformed or a Lua error"
		else if ($7 != "") why = "expert info " $7
		else if ($3 == "0x0001") {
			if (!has(types, "0x0006") || !has(types, "0x0008") || !has(types, "0x8028"))
				why = "a Binding request without USERNAME, MESSAGE-INTEGRITY and FINGERPRINT (" shown ")"
			else requests++
		} else if ($3 == "0x0101") {
			if (!has(types, "0x0020") || !has(types, "0x0008") || !has(types, "0x8028"))
				why = "a Binding success without XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY and FINGERPRINT (" shown ")"
			else answers++
		} else why = "STUN type " $3
		if (why != "") {
			printf "FAIL: %s: consent: expected frame %s, with QUIC'"'"'s heuristic off, to be a punch consent check; seen %s\n", name, n, why > "/dev/stderr"
			failed = 1
		}
	}
	END {
		if (seen != want) {
			printf "FAIL: %s: consent: expected %d frames in the second pass; seen %d\n", name, want, seen > "/dev/stderr"
			failed = 1
		}
		if (!failed)
			printf "ok: %s: consent: the %d STUN datagrams after QUIC on its flow decode, with the QUIC heuristic off, as %d Binding requests and %d success responses\n", name, seen, requests, answers
		exit failed
	}' "$tmp/consent.fields"
}

failures=0
for file in "${captures[@]}"; do
	check_capture "$file" || failures=$((failures + 1))
done
((failures == 0)) || { echo "$failures of ${#captures[@]} captures failed the dissector checks" >&2; exit 1; }
