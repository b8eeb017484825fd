-- punch.lua: a Wireshark (4.0 and later) dissector for punch's rendezvous
-- protocol, docs/protocol.md.
--
--   tshark -X lua_script:contrib/wireshark/punch.lua -r capture.pcap
--   or copy this file to ~/.local/lib/wireshark/plugins/
--
-- Every punch control message is STUN (RFC 8489).  punch adds four methods
-- (RENEW 0x07C, REGISTER 0x07D, PEER-INFO 0x07E, RELEASE 0x07F) and
-- fourteen attributes (PUNCH-ID 0x4F01 ... PUNCH-RENEW-SEQ 0x4F0E), and
-- three comprehension-optional ones (0xCF01-0xCF03).  Wireshark 4.0's STUN dissector calls those
-- methods "Unknown" and adds a Warning for every punch attribute
-- ("Unknown attribute 0x4f01"); it has no dissector table for methods or
-- attributes that a plugin could fill in, and a post-dissector
-- can add a tree but cannot take the warnings back.  So this file decodes
-- a STUN message in full when it carries a punch method or attribute, and
-- hands every other STUN message (Binding: discovery, the connectivity
-- checks, consent) to the built-in dissector, which decodes those well.
--
-- It has to see the packets first:
--   udp.port 3478   the server port (preference punch.port) is taken over
--                   from "stun-udp"; a port entry beats every heuristic.
--   udp heuristic   a Lua heuristic is registered after the built-in ones,
--                   and Wireshark tries the newest first.  It claims every
--                   RFC 9443 STUN datagram (first byte 0-3, magic cookie,
--                   length matching), so peer-to-peer flows on ephemeral
--                   ports decode with no -d.  It must claim the Binding
--                   checks too, not only punch's own messages: the
--                   built-in heuristic pins any flow it matches to
--                   "stun-udp", which turns the flow's QUIC away, and
--                   then QUIC's own heuristic pins the flow to QUIC at
--                   the first Initial, so the check answers sent after
--                   it would decode as QUIC.
--   conversation    each flow the heuristic claims is pinned to this
--                   dissector instead, so its later packets come here
--                   before the UDP port table (where an ephemeral port may
--                   belong to some other protocol).  punch's QUIC link on
--                   the same flow is handed to Wireshark's QUIC dissector
--                   from here (RFC 9443), so that QUIC's own heuristic
--                   never pins the flow.  (Wireshark 4.0's QUIC dissector
--                   still takes the flow over once the handshake is under
--                   way: README.md, "Known limitation".)
--
-- Nothing here writes packets or reads files; it only parses.  Every
-- length is checked before it is read (STYLE.md, "Parsers are pure and
-- paranoid"): a bad message gets expert info, never a Lua error.

local punch = Proto("punch", "punch rendezvous protocol (STUN)")

local STUN_HDR_LEN = 20
local ATTR_HDR_LEN = 4
local MAGIC_COOKIE = 0x2112A442  -- RFC 8489 6
local FINGERPRINT_XOR = 0x5354554E -- RFC 8489 14.7
local DEFAULT_PORT = 3478

-- docs/protocol.md, "Methods"; src/punch_attr.h, enum punch_method.
local M_BINDING, M_RENEW, M_REGISTER, M_PEER_INFO, M_RELEASE = 0x001, 0x07C, 0x07D, 0x07E, 0x07F
local methods = {
	[M_BINDING] = "Binding",
	[M_RENEW] = "RENEW",
	[M_REGISTER] = "REGISTER",
	[M_PEER_INFO] = "PEER-INFO",
	[M_RELEASE] = "RELEASE",
}
local classes = {
	[0] = "Request",
	[1] = "Indication",
	[2] = "Success Response",
	[3] = "Error Response",
}

-- src/punch_attr.h, enum punch_attr_type; src/stun.h for the standard ones.
local A = {
	MAPPED_ADDRESS = 0x0001,
	CHANGE_REQUEST = 0x0003,
	USERNAME = 0x0006,
	MESSAGE_INTEGRITY = 0x0008,
	ERROR_CODE = 0x0009,
	UNKNOWN_ATTRIBUTES = 0x000A,
	REALM = 0x0014,
	NONCE = 0x0015,
	MESSAGE_INTEGRITY_SHA256 = 0x001C,
	XOR_MAPPED_ADDRESS = 0x0020,
	PRIORITY = 0x0024,
	USE_CANDIDATE = 0x0025,
	SOFTWARE = 0x8022,
	FINGERPRINT = 0x8028,
	ICE_CONTROLLED = 0x8029,
	ICE_CONTROLLING = 0x802A,
	PUNCH_ID = 0x4F01,
	PUNCH_PEER_ID = 0x4F02,
	PUNCH_CANDIDATE = 0x4F03,
	PUNCH_UFRAG = 0x4F04,
	PUNCH_PWD = 0x4F05,
	PUNCH_KEY_FP = 0x4F06,
	PUNCH_SESSION = 0x4F07,
	PUNCH_LIFETIME = 0x4F08,
	PUNCH_STATUS = 0x4F09,
	PUNCH_OBSERVED = 0x4F0A,
	PUNCH_PUBKEY = 0x4F0B,
	PUNCH_SIGNATURE = 0x4F0C,
	PUNCH_SERVER_KEY = 0x4F0D,
	PUNCH_RENEW_SEQ = 0x4F0E,
	PUNCH_RELAY = 0xCF01, -- comprehension-optional (docs/protocol.md, "The relay")
	PUNCH_NAT = 0xCF02, -- comprehension-optional (docs/protocol.md, "PUNCH-NAT")
	PUNCH_RENEW_KEY = 0xCF03, -- comprehension-optional (docs/protocol.md, "RENEW")
}
local PUNCH_ATTR_FIRST, PUNCH_ATTR_LAST = A.PUNCH_ID, A.PUNCH_RENEW_SEQ

local attr_names = {}
for name, v in pairs(A) do
	attr_names[v] = name:gsub("_", "-")
end

local statuses = { [0] = "waiting", [1] = "paired" } -- enum punch_status
local cand_types = { [1] = "host", [2] = "srflx", [3] = "prflx", [4] = "relay", [5] = "mapped" }
-- PUNCH-NAT (docs/protocol.md): enum punch_nat_mapping, enum punch_nat_ports
local nat_mappings = { [0] = "unknown", [1] = "endpoint-independent", [2] = "endpoint-dependent" }
local nat_ports = { [0] = "unknown", [1] = "preserved", [2] = "sequential", [3] = "random" }
local families = { [1] = "IPv4", [2] = "IPv6" } -- RFC 8489 14.1

-- ------------------------------------------------------------------ fields

local function addr_fields(prefix, what)
	return {
		family = ProtoField.uint8(prefix .. ".family", what .. " Family", base.HEX, families),
		xport = ProtoField.uint16(prefix .. ".xport", what .. " X-Port", base.HEX),
		port = ProtoField.uint16(prefix .. ".port", what .. " Port", base.DEC),
		xaddr = ProtoField.bytes(prefix .. ".xaddr", what .. " X-Address"),
		ipv4 = ProtoField.ipv4(prefix .. ".ipv4", what .. " IPv4"),
		ipv6 = ProtoField.ipv6(prefix .. ".ipv6", what .. " IPv6"),
	}
end

local f = {
	type = ProtoField.uint16("punch.type", "Message Type", base.HEX),
	method = ProtoField.uint16("punch.method", "Message Method", base.HEX, methods),
	class = ProtoField.uint8("punch.class", "Message Class", base.DEC, classes),
	length = ProtoField.uint16("punch.length", "Message Length", base.DEC),
	cookie = ProtoField.uint32("punch.cookie", "Magic Cookie", base.HEX),
	txid = ProtoField.bytes("punch.txid", "Transaction ID"),
	request_in = ProtoField.framenum("punch.request_in", "Request In", base.NONE, frametype.REQUEST),
	response_in = ProtoField.framenum("punch.response_in", "Response In", base.NONE, frametype.RESPONSE),

	attr_type = ProtoField.uint16("punch.attr.type", "Attribute Type", base.HEX, attr_names),
	attr_length = ProtoField.uint16("punch.attr.length", "Attribute Length", base.DEC),
	attr_value = ProtoField.bytes("punch.attr.value", "Value"),
	padding = ProtoField.bytes("punch.attr.padding", "Padding"),

	id = ProtoField.string("punch.id", "PUNCH-ID"),
	peer_id = ProtoField.string("punch.peer_id", "PUNCH-PEER-ID"),
	ufrag = ProtoField.string("punch.ufrag", "PUNCH-UFRAG"),
	pwd = ProtoField.string("punch.pwd", "PUNCH-PWD"),
	key_fp = ProtoField.bytes("punch.key_fp", "PUNCH-KEY-FP"),
	pubkey = ProtoField.bytes("punch.pubkey", "PUNCH-PUBKEY (Ed25519)"),
	signature = ProtoField.bytes("punch.signature", "PUNCH-SIGNATURE (Ed25519)"),
	server_key = ProtoField.bytes("punch.server_key", "PUNCH-SERVER-KEY (Ed25519)"),
	relay_username = ProtoField.string("punch.relay.username", "Relay USERNAME"),
	relay_password = ProtoField.string("punch.relay.password", "Relay password"),
	session = ProtoField.uint64("punch.session", "PUNCH-SESSION", base.HEX),
	lifetime = ProtoField.uint32("punch.lifetime", "PUNCH-LIFETIME (s)", base.DEC),
	renew_seq = ProtoField.uint32("punch.renew_seq", "PUNCH-RENEW-SEQ", base.DEC),
	renew_key = ProtoField.bytes("punch.renew_key", "PUNCH-RENEW-KEY"),
	status = ProtoField.uint32("punch.status", "PUNCH-STATUS", base.DEC, statuses),
	cand_type = ProtoField.uint8("punch.cand.type", "Candidate Type", base.DEC, cand_types),
	nat_mapping = ProtoField.uint8("punch.nat.mapping", "PUNCH-NAT Mapping", base.DEC, nat_mappings),
	nat_ports = ProtoField.uint8("punch.nat.ports", "PUNCH-NAT Ports", base.DEC, nat_ports),
	nat_delta = ProtoField.int16("punch.nat.delta", "PUNCH-NAT Delta", base.DEC),
	cand_priority = ProtoField.uint32("punch.cand.priority", "Candidate Priority", base.DEC),

	username = ProtoField.string("punch.username", "USERNAME"),
	realm = ProtoField.string("punch.realm", "REALM"),
	nonce = ProtoField.string("punch.nonce", "NONCE"),
	software = ProtoField.string("punch.software", "SOFTWARE"),
	error_class = ProtoField.uint8("punch.error.class", "Error Class", base.DEC),
	error_number = ProtoField.uint8("punch.error.number", "Error Number", base.DEC),
	error_code = ProtoField.uint16("punch.error.code", "Error Code", base.DEC),
	error_reason = ProtoField.string("punch.error.reason", "Error Reason"),
	unknown_attr = ProtoField.uint16("punch.unknown_attr", "Unknown Attribute", base.HEX, attr_names),
	priority = ProtoField.uint32("punch.priority", "PRIORITY", base.DEC),
	tie_breaker = ProtoField.uint64("punch.tie_breaker", "Tie-Breaker", base.HEX),
	change_request = ProtoField.uint32("punch.change_request", "CHANGE-REQUEST", base.HEX),
	hmac = ProtoField.bytes("punch.message_integrity", "HMAC"),
	crc = ProtoField.uint32("punch.fingerprint", "CRC-32", base.HEX),
	crc_good = ProtoField.bool("punch.fingerprint.good", "CRC-32 correct"),
}
local fa = {
	cand = addr_fields("punch.cand", "Candidate"),
	observed = addr_fields("punch.observed", "Observed"),
	xor_mapped = addr_fields("punch.xor_mapped", "XOR-MAPPED"),
	mapped = addr_fields("punch.mapped", "MAPPED"),
}

local all_fields = {}
for _, pf in pairs(f) do
	all_fields[#all_fields + 1] = pf
end
for _, set in pairs(fa) do
	for _, pf in pairs(set) do
		all_fields[#all_fields + 1] = pf
	end
end
punch.fields = all_fields

local e = {
	malformed = ProtoExpert.new("punch.malformed", "Malformed punch message",
		expert.group.MALFORMED, expert.severity.ERROR),
	bad_attr = ProtoExpert.new("punch.bad_attr", "Attribute value does not fit its type",
		expert.group.MALFORMED, expert.severity.ERROR),
	unknown_attr = ProtoExpert.new("punch.unknown_attr.expert", "Attribute unknown to punch.lua",
		expert.group.UNDECODED, expert.severity.WARN),
	bad_crc = ProtoExpert.new("punch.fingerprint.bad", "FINGERPRINT does not match",
		expert.group.CHECKSUM, expert.severity.WARN),
	truncated = ProtoExpert.new("punch.truncated", "Message cut short in the capture (e.g. quoted by ICMP)",
		expert.group.SEQUENCE, expert.severity.NOTE),
}
punch.experts = { e.malformed, e.bad_attr, e.unknown_attr, e.bad_crc, e.truncated }

punch.prefs.port = Pref.uint("Rendezvous server UDP port", DEFAULT_PORT,
	"The UDP port of punch server (-listen); always decoded as STUN/punch")

-- ----------------------------------------------------------------- helpers

local band, bor, bxor, rshift = bit32.band, bit32.bor, bit32.bxor, bit32.rshift

-- RFC 8489 5: the method's 12 bits are split around the two class bits.
local function type_method(t)
	return bor(band(t, 0x000F), rshift(band(t, 0x00E0), 1), rshift(band(t, 0x3E00), 2))
end

local function type_class(t)
	return bor(rshift(band(t, 0x0010), 4), rshift(band(t, 0x0100), 7))
end

-- CRC-32 (ISO-HDLC, as zlib's crc32), for FINGERPRINT.  Wireshark's Lua
-- API has no CRC function, so a table-driven one is built here, once.
local crc_table = {}
for i = 0, 255 do
	local c = i
	for _ = 1, 8 do
		if band(c, 1) == 1 then
			c = bxor(0xEDB88320, rshift(c, 1))
		else
			c = rshift(c, 1)
		end
	end
	crc_table[i] = c
end

local function crc32(ba)
	local c = 0xFFFFFFFF
	for i = 0, ba:len() - 1 do
		c = bxor(crc_table[band(bxor(c, ba:get_index(i)), 0xFF)], rshift(c, 8))
	end
	return bxor(c, 0xFFFFFFFF)
end

local function hex(ba)
	return tostring(ba):lower()
end

-- The STUN header as RFC 8489 6 and RFC 9443 (first byte 0-3) want it,
-- with a length that matches the datagram.  Needs the whole header captured.
local function looks_like_stun(tvb)
	if tvb:len() < STUN_HDR_LEN then
		return false
	end
	if tvb(0, 1):uint() > 3 or tvb(4, 4):uint() ~= MAGIC_COOKIE then
		return false
	end
	local len = tvb(2, 2):uint()
	return len % 4 == 0 and STUN_HDR_LEN + len == tvb:reported_len()
end

-- A punch method, or any punch attribute (walked within what was captured).
-- Any other method or attribute is left to Wireshark's dissector.
local function is_punch(tvb)
	local m = type_method(tvb(0, 2):uint())
	if m == M_RENEW or m == M_REGISTER or m == M_PEER_INFO or m == M_RELEASE then
		return true
	end
	local off, last = STUN_HDR_LEN, tvb:len()
	while off + ATTR_HDR_LEN <= last do
		local at = tvb(off, 2):uint()
		if at >= PUNCH_ATTR_FIRST and at <= PUNCH_ATTR_LAST then
			return true
		end
		off = off + ATTR_HDR_LEN + 4 * math.ceil(tvb(off + 2, 2):uint() / 4)
	end
	return false
end

-- ----------------------------------------------------- attribute decoders
--
-- Each takes (tree, value range or nil, ctx) and returns a summary for the
-- attribute's line, or nil when the value has the wrong length (the caller
-- then flags it).  ctx.tvb is the message, ctx.txid its transaction id
-- range.

local function add_string(pf)
	return function(t, r)
		if not r then
			t:add(pf, ""):set_generated()
			return '""'
		end
		local s = r:string(ENC_UTF_8)
		t:add(pf, r, s)
		return s
	end
end

local function add_uint32(pf, fmt)
	return function(t, r)
		if not r or r:len() ~= 4 then
			return nil
		end
		t:add(pf, r)
		return fmt(r:uint())
	end
end

-- XOR-MAPPED-ADDRESS form (RFC 8489 14.2): family at r(1), X-Port at r(2),
-- X-Address at r(off); between(t), if given, adds the fields that sit
-- between port and address (a candidate's priority).  Returns "ip:port",
-- or nil when the family or the length is wrong.
local function add_xor_addr(t, r, ctx, fs, off, between)
	local fam = r(1, 1):uint()
	local want = fam == 1 and 4 or fam == 2 and 16 or nil
	if not want or r:len() ~= off + want then
		return nil
	end
	t:add(fs.family, r(1, 1))
	local xr = r(2, 2)
	t:add(fs.xport, xr)
	local port = bxor(xr:uint(), rshift(MAGIC_COOKIE, 16))
	t:add(fs.port, xr, port):set_generated()
	if between then
		between(t)
	end
	local ar = r(off, want)
	t:add(fs.xaddr, ar)
	local ip
	if fam == 1 then
		local v = bxor(ar:uint(), MAGIC_COOKIE)
		ip = string.format("%d.%d.%d.%d", rshift(v, 24), band(rshift(v, 16), 0xFF),
			band(rshift(v, 8), 0xFF), band(v, 0xFF))
		t:add(fs.ipv4, ar, Address.ip(ip)):set_generated()
		return ip .. ":" .. port
	end
	-- RFC 8489 14.2: IPv6 is XORed with the cookie and then the txid.
	local key = ByteArray.new(string.format("%08x", MAGIC_COOKIE)) .. ctx.txid:bytes()
	local x = ar:bytes()
	local words = {}
	for i = 0, 14, 2 do
		local hi = bxor(x:get_index(i), key:get_index(i))
		local lo = bxor(x:get_index(i + 1), key:get_index(i + 1))
		words[#words + 1] = string.format("%x", hi * 256 + lo)
	end
	ip = table.concat(words, ":")
	local a = Address.ipv6(ip)
	t:add(fs.ipv6, ar, a):set_generated()
	return "[" .. tostring(a) .. "]:" .. port
end

local function add_address(fs, xored)
	return function(t, r, ctx)
		if not r or r:len() < 8 then
			return nil
		end
		if xored then
			return add_xor_addr(t, r, ctx, fs, 4)
		end
		-- MAPPED-ADDRESS (RFC 8489 14.1): the same layout, not XORed.
		local fam = r(1, 1):uint()
		t:add(fs.family, r(1, 1))
		t:add(fs.port, r(2, 2))
		if fam == 1 and r:len() == 8 then
			t:add(fs.ipv4, r(4, 4))
			return tostring(r(4, 4):ipv4()) .. ":" .. r(2, 2):uint()
		elseif fam == 2 and r:len() == 20 then
			t:add(fs.ipv6, r(4, 16))
			return "[" .. tostring(r(4, 16):ipv6()) .. "]:" .. r(2, 2):uint()
		end
		return nil
	end
end

local decoders = {
	[A.PUNCH_ID] = add_string(f.id),
	[A.PUNCH_PEER_ID] = add_string(f.peer_id),
	[A.PUNCH_UFRAG] = add_string(f.ufrag),
	[A.PUNCH_PWD] = add_string(f.pwd),
	[A.PUNCH_KEY_FP] = function(t, r)
		if not r or r:len() ~= 32 then
			return nil
		end
		t:add(f.key_fp, r)
		return hex(r:bytes())
	end,
	-- docs/protocol.md, "Signatures": raw Ed25519 keys and signatures.
	[A.PUNCH_PUBKEY] = function(t, r)
		if not r or r:len() ~= 32 then
			return nil
		end
		t:add(f.pubkey, r)
		return hex(r:bytes())
	end,
	[A.PUNCH_SERVER_KEY] = function(t, r)
		if not r or r:len() ~= 32 then
			return nil
		end
		t:add(f.server_key, r)
		return hex(r:bytes())
	end,
	[A.PUNCH_SIGNATURE] = function(t, r)
		if not r or r:len() ~= 64 then
			return nil
		end
		t:add(f.signature, r)
		return hex(r(0, 8):bytes()) .. "..."
	end,
	-- docs/protocol.md, "The relay": the username's length (1 byte), the
	-- username (rdv:SESSION:ID), the password (the rest).
	[A.PUNCH_RELAY] = function(t, r)
		if not r or r:len() < 2 then
			return nil
		end
		local ulen = r(0, 1):uint()
		if ulen == 0 or 1 + ulen >= r:len() then
			return nil
		end
		local user = r(1, ulen):string(ENC_UTF_8)
		t:add(f.relay_username, r(1, ulen), user)
		t:add(f.relay_password, r(1 + ulen), r(1 + ulen):string(ENC_UTF_8))
		return "user " .. user
	end,
	-- docs/protocol.md, "PUNCH-NAT": Mapping (1 byte), Ports (1), Delta
	-- (2, signed).
	[A.PUNCH_NAT] = function(t, r)
		if not r or r:len() ~= 4 then
			return nil
		end
		local m, p = r(0, 1):uint(), r(1, 1):uint()
		t:add(f.nat_mapping, r(0, 1))
		t:add(f.nat_ports, r(1, 1))
		t:add(f.nat_delta, r(2, 2))
		return (nat_mappings[m] or tostring(m)) .. ", ports " .. (nat_ports[p] or tostring(p)) .. ", delta " .. r(2, 2):int()
	end,
	[A.PUNCH_SESSION] = function(t, r)
		if not r or r:len() ~= 8 then
			return nil
		end
		t:add(f.session, r)
		return hex(r:bytes())
	end,
	[A.PUNCH_LIFETIME] = add_uint32(f.lifetime, function(v) return v .. " s" end),
	[A.PUNCH_RENEW_SEQ] = add_uint32(f.renew_seq, function(v) return tostring(v) end),
	-- docs/protocol.md, "RENEW": the HMAC-SHA256 key of this
	-- registration's RENEWs (shown in part only).
	[A.PUNCH_RENEW_KEY] = function(t, r)
		if not r or r:len() ~= 32 then
			return nil
		end
		t:add(f.renew_key, r)
		return hex(r(0, 4):bytes()) .. "..."
	end,
	[A.PUNCH_STATUS] = add_uint32(f.status, function(v) return statuses[v] or ("status " .. v) end),
	[A.PUNCH_OBSERVED] = add_address(fa.observed, true),
	[A.PUNCH_CANDIDATE] = function(t, r, ctx)
		-- docs/protocol.md, "PUNCH-CANDIDATE": type, family, X-Port,
		-- priority, X-Address.
		if not r or r:len() < 12 then
			return nil
		end
		t:add(f.cand_type, r(0, 1))
		local where = add_xor_addr(t, r, ctx, fa.cand, 8, function(st)
			st:add(f.cand_priority, r(4, 4))
		end)
		if not where then
			return nil
		end
		local ty = r(0, 1):uint()
		return (cand_types[ty] or ("type " .. ty)) .. " " .. where .. " priority " .. r(4, 4):uint()
	end,

	[A.MAPPED_ADDRESS] = add_address(fa.mapped, false),
	[A.XOR_MAPPED_ADDRESS] = add_address(fa.xor_mapped, true),
	[A.USERNAME] = add_string(f.username),
	[A.REALM] = add_string(f.realm),
	[A.NONCE] = add_string(f.nonce),
	[A.SOFTWARE] = add_string(f.software),
	[A.ERROR_CODE] = function(t, r)
		-- RFC 8489 14.8: 21 reserved bits, class (3 bits), number (8 bits).
		if not r or r:len() < 4 then
			return nil
		end
		local cls, num = band(r(2, 1):uint(), 0x07), r(3, 1):uint()
		t:add(f.error_class, r(2, 1), cls)
		t:add(f.error_number, r(3, 1))
		t:add(f.error_code, r(2, 2), cls * 100 + num):set_generated()
		local reason = ""
		if r:len() > 4 then
			reason = r(4):string(ENC_UTF_8)
			t:add(f.error_reason, r(4), reason)
		end
		return (cls * 100 + num) .. " " .. reason
	end,
	[A.UNKNOWN_ATTRIBUTES] = function(t, r)
		if not r or r:len() % 2 ~= 0 then
			return nil
		end
		local names = {}
		for i = 0, r:len() - 2, 2 do
			t:add(f.unknown_attr, r(i, 2))
			names[#names + 1] = string.format("0x%04x", r(i, 2):uint())
		end
		return table.concat(names, " ")
	end,
	[A.PRIORITY] = add_uint32(f.priority, tostring),
	[A.CHANGE_REQUEST] = add_uint32(f.change_request, function(v) return string.format("0x%x", v) end),
	[A.USE_CANDIDATE] = function(_, r)
		if r then
			return nil
		end
		return "(flag)"
	end,
	[A.ICE_CONTROLLED] = function(t, r)
		if not r or r:len() ~= 8 then
			return nil
		end
		t:add(f.tie_breaker, r)
		return "tie-breaker " .. hex(r:bytes())
	end,
	[A.MESSAGE_INTEGRITY] = function(t, r)
		if not r or r:len() ~= 20 then
			return nil
		end
		t:add(f.hmac, r)
		return hex(r:bytes())
	end,
	[A.MESSAGE_INTEGRITY_SHA256] = function(t, r)
		if not r or r:len() < 16 or r:len() > 32 or r:len() % 4 ~= 0 then
			return nil
		end
		t:add(f.hmac, r)
		return hex(r:bytes())
	end,
	[A.FINGERPRINT] = function(t, r, ctx)
		if not r or r:len() ~= 4 then
			return nil
		end
		-- RFC 8489 14.7: CRC-32 of the message up to this attribute, XOR
		-- 0x5354554e.  The header's length already counts FINGERPRINT.
		local want = bxor(crc32(ctx.tvb(0, ctx.off):bytes()), FINGERPRINT_XOR)
		local got = r:uint()
		local item = t:add(f.crc, r)
		t:add(f.crc_good, r, got == want):set_generated()
		if got ~= want then
			item:add_proto_expert_info(e.bad_crc,
				string.format("FINGERPRINT 0x%08x, expected 0x%08x", got, want))
			return string.format("0x%08x [incorrect]", got)
		end
		return string.format("0x%08x [correct]", got)
	end,
}
decoders[A.ICE_CONTROLLING] = decoders[A.ICE_CONTROLLED]

-- ------------------------------------------------------- request tracking

-- txid (hex) -> { req = first request frame, rsp = first response frame }.
-- Filled on the first pass; Wireshark's GUI redissects, so it can show
-- "Response In" too.  tshark's single pass shows "Request In" only (-2
-- shows both).
local transactions = {}
-- "addr:port addr:port" (sorted) -> true: the flows that carry QUIC (below).
local quic_flows = {}

function punch.init()
	transactions = {}
	quic_flows = {}
end

local function track(tree, pinfo, class, txid)
	local key = hex(txid:bytes())
	local tr = transactions[key]
	if not pinfo.visited then
		if not tr then
			tr = {}
			transactions[key] = tr
		end
		if class == 0 and not tr.req then
			tr.req = pinfo.number
		elseif (class == 2 or class == 3) and not tr.rsp then
			tr.rsp = pinfo.number
		end
	end
	if not tr then
		return
	end
	if class == 0 and tr.rsp and tr.rsp ~= pinfo.number then
		tree:add(f.response_in, tr.rsp):set_generated()
	elseif (class == 2 or class == 3) and tr.req and tr.req ~= pinfo.number then
		tree:add(f.request_in, tr.req):set_generated()
	end
end

-- ------------------------------------------------------------- dissection

-- Info column: "REGISTER Request id=alice peer=bob" and the like.
local info_keys = {
	[A.PUNCH_ID] = "id",
	[A.PUNCH_PEER_ID] = "peer",
	[A.PUNCH_STATUS] = "status",
	[A.PUNCH_LIFETIME] = "lifetime",
	[A.ERROR_CODE] = "error",
	[A.PUNCH_OBSERVED] = "observed",
	[A.XOR_MAPPED_ADDRESS] = "mapped",
}

local function dissect_attr(attrs, tvb, ctx, off, alen)
	local at = tvb(off, 2):uint()
	local padded = 4 * math.ceil(alen / 4)
	local name = attr_names[at]
	local label = name or string.format("Unknown attribute 0x%04x", at)
	local t = attrs:add(tvb(off, ATTR_HDR_LEN + padded), label)
	t:add(f.attr_type, tvb(off, 2))
	t:add(f.attr_length, tvb(off + 2, 2))
	local r = alen > 0 and tvb(off + ATTR_HDR_LEN, alen) or nil
	local dec = decoders[at]
	local summary
	if dec then
		ctx.off = off
		summary = dec(t, r, ctx)
		if summary == nil then
			t:add_proto_expert_info(e.bad_attr,
				string.format("%s: %d-byte value does not fit its type", label, alen))
			if r then
				t:add(f.attr_value, r)
			end
		end
	else
		t:add_proto_expert_info(e.unknown_attr, label)
		if r then
			t:add(f.attr_value, r)
		end
	end
	if padded > alen then
		t:add(f.padding, tvb(off + ATTR_HDR_LEN + alen, padded - alen))
	end
	if summary then
		t:append_text(": " .. summary)
		local key = info_keys[at]
		if key then
			ctx.info[#ctx.info + 1] = key .. "=" .. summary
		end
	end
end

local function dissect_punch(tvb, pinfo, tree)
	pinfo.cols.protocol = "PUNCH"
	local mtype = tvb(0, 2):uint()
	local method, class = type_method(mtype), type_class(mtype)
	local mname = methods[method] or string.format("method 0x%03x", method)
	local root = tree:add(punch, tvb())
	local tt = root:add(f.type, tvb(0, 2))
	tt:append_text(" (" .. mname .. " " .. classes[class] .. ")")
	tt:add(f.method, tvb(0, 2), method)
	tt:add(f.class, tvb(0, 2), class)
	root:add(f.length, tvb(2, 2))
	root:add(f.cookie, tvb(4, 4))
	local txid = tvb(8, 12)
	root:add(f.txid, txid)
	track(root, pinfo, class, txid)

	local ctx = { tvb = tvb, txid = txid, info = {} }
	local attrs = root:add(tvb(STUN_HDR_LEN), "Attributes")
	local off, last = STUN_HDR_LEN, tvb:len()
	while off < tvb:reported_len() do
		if off + ATTR_HDR_LEN > last then
			attrs:add_proto_expert_info(e.truncated)
			break
		end
		local alen = tvb(off + 2, 2):uint()
		local padded = 4 * math.ceil(alen / 4)
		if off + ATTR_HDR_LEN + padded > tvb:reported_len() then
			attrs:add_tvb_expert_info(e.malformed, tvb(off),
				string.format("attribute 0x%04x of %d bytes runs past the message end",
					tvb(off, 2):uint(), alen))
			break
		end
		if off + ATTR_HDR_LEN + padded > last then
			attrs:add_proto_expert_info(e.truncated)
			break
		end
		dissect_attr(attrs, tvb, ctx, off, alen)
		off = off + ATTR_HDR_LEN + padded
	end

	local info = mname .. " " .. classes[class]
	if #ctx.info > 0 then
		info = info .. " " .. table.concat(ctx.info, " ")
	end
	pinfo.cols.info = info
	root:append_text(", " .. info)
	return tvb:reported_len()
end

local stun_udp = Dissector.get("stun-udp")
local ok_quic, quic = pcall(Dissector.get, "quic")
if not ok_quic then
	quic = nil
end
local registered_port = DEFAULT_PORT

-- RFC 9443 (and RFC 7983) tell STUN, DTLS, RTP and QUIC apart on one flow
-- by the first byte; QUIC's have bit 0x40 (the fixed bit) set, unless the
-- peer greases it (RFC 9287), as ngtcp2 allows.  That alone would send any
-- text on the flow to QUIC, so a flow counts as QUIC from its first
-- long-header packet (RFC 9000 17.2: bit 0x80, version 1 or 2, connection id
-- of at most 20 bytes; the fixed bit may be greased there too) on; short
-- headers (bit 0x80 clear) follow.
local function flow_key(pinfo)
	local a = tostring(pinfo.src) .. ":" .. pinfo.src_port
	local b = tostring(pinfo.dst) .. ":" .. pinfo.dst_port
	return a < b and (a .. " " .. b) or (b .. " " .. a)
end

local function looks_like_quic(tvb, pinfo)
	if tvb:len() < 1 then
		return false
	end
	local form = band(tvb(0, 1):uint(), 0xC0)
	-- A long header (bit 0x80), the fixed bit 0x40 set or greased: the
	-- version and the connection id length tell.
	if band(form, 0x80) ~= 0 then
		if tvb:len() < 6 then
			return false
		end
		local v = tvb(1, 4):uint()
		if (v == 0x00000001 or v == 0x6b3343cf) and tvb(5, 1):uint() <= 20 then
			quic_flows[flow_key(pinfo)] = true
			return true
		end
		return false
	end
	-- A short header (bit 0x80 clear).  ngtcp2 lets its peer grease the
	-- fixed bit 0x40 (RFC 9287), so that bit proves nothing on its own.
	return band(form, 0x80) == 0 and quic_flows[flow_key(pinfo)] == true
end

-- Called for the server port (udp.port table) and for the flows the
-- heuristic pinned (conversation).  punch's messages are decoded here and
-- all other STUN goes to Wireshark's dissector.  On the server port,
-- anything else goes to "stun-udp" as before this file was loaded (TURN
-- ChannelData).  On a peer-to-peer flow, QUIC (punch's secure link, after
-- the checks) goes to Wireshark's QUIC dissector from here: if it went back
-- to UDP, the QUIC heuristic would pin the flow to QUIC at the first
-- Initial, and the STUN that follows it would be decoded as QUIC packets.
-- Anything else goes back to UDP (0), which tries its other dissectors.
function punch.dissector(tvb, pinfo, tree)
	if looks_like_stun(tvb) then
		if is_punch(tvb) then
			return dissect_punch(tvb, pinfo, tree)
		end
		return stun_udp:call(tvb, pinfo, tree)
	end
	if pinfo.src_port == registered_port or pinfo.dst_port == registered_port then
		return stun_udp:call(tvb, pinfo, tree)
	end
	if quic and looks_like_quic(tvb, pinfo) then
		return quic:call(tvb, pinfo, tree)
	end
	return 0
end

local function heuristic(tvb, pinfo, tree)
	if not looks_like_stun(tvb) then
		return false
	end
	punch.dissector(tvb, pinfo, tree)
	pinfo.conversation = punch -- see the top of this file
	return true
end

punch:register_heuristic("udp", heuristic)

-- What a TURN relay carries (RFC 8656): Wireshark's STUN dissector offers
-- the payload of a ChannelData message and the DATA attribute of a Send or
-- Data indication to its "stun" heuristic list, and shows it as bare data
-- when no one claims it.  punch's relayed checks (STUN) and its QUIC link
-- travel there, so they are decoded as on a direct flow.  The Info column
-- keeps the TURN summary and adds the inner one after it.
local function turn_payload(tvb, pinfo, tree)
	local inner
	if looks_like_stun(tvb) then
		inner = function()
			if is_punch(tvb) then
				dissect_punch(tvb, pinfo, tree)
			else
				stun_udp:call(tvb, pinfo, tree)
			end
		end
	elseif quic and looks_like_quic(tvb, pinfo) then
		inner = function()
			quic:call(tvb, pinfo, tree)
		end
	else
		return false
	end
	pinfo.cols.info:append(" | ")
	pinfo.cols.info:fence()
	pinfo.cols.protocol:append("/")
	pinfo.cols.protocol:fence()
	inner()
	return true
end

punch:register_heuristic("stun", turn_payload)

local udp_port = DissectorTable.get("udp.port")
udp_port:add(registered_port, punch)

function punch.prefs_changed()
	if punch.prefs.port ~= registered_port then
		udp_port:remove(registered_port, punch)
		if registered_port == DEFAULT_PORT then
			udp_port:add(DEFAULT_PORT, stun_udp) -- give 3478 back to STUN
		end
		registered_port = punch.prefs.port
		udp_port:add(registered_port, punch)
	end
end
