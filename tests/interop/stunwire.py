#!/usr/bin/env python3
"""Minimal STUN wire helpers for the interop and flood tests (stdlib only).

An independent encoder and a strict decoder (RFC 8489, RFC 5780
attributes), so that the tests check punch's bytes with code that shares
nothing with punch.  Run as a script it also offers a few probes for the
shell tests:

    stunwire.py freeports N [IP...]   N consecutive UDP ports free on every IP
    stunwire.py binding HOST PORT      one Binding request; prints the result
    stunwire.py rfc5780 P_IP P_PORT A_IP A_PORT
                                       checks the four RFC 5780 sockets
    stunwire.py attr-probe HOST PORT   how the server treats RESPONSE-PORT
                                       and PADDING
    stunwire.py wait-binding HOST PORT DEADLINE_S
                                       poll until the server answers
    stunwire.py normalize FILE NAME=PORT...
                                       coturn utility output, one fact a line
    stunwire.py tcp-probe HOST PORT MAX_TCP
                                       Binding over TCP (RFC 8489 6.2.2),
                                       split and joined reads; a broken
                                       and an oversize stream closed; the
                                       connection past MAX_TCP closed

With --coturn, the probes skip punch's own promises (FINGERPRINT on every
response, the 4x amplification bound), which the coturn reference does not
make.  Every probe exits 0 on success, or 1 with a message saying what it
expected and what it saw.  Traffic goes only to the address given, which the
tests keep on loopback.
"""

import os
import re
import select
import socket
import struct
import sys
import time
import zlib

MAGIC = 0x2112A442
FP_XOR = 0x5354554E
HEADER_LEN = 20

BINDING_REQUEST = 0x0001
BINDING_SUCCESS = 0x0101
BINDING_ERROR = 0x0111

MAPPED_ADDRESS = 0x0001
CHANGE_REQUEST = 0x0003
ERROR_CODE = 0x0009
UNKNOWN_ATTRIBUTES = 0x000A
XOR_MAPPED_ADDRESS = 0x0020
PADDING = 0x0026
RESPONSE_PORT = 0x0027
SOFTWARE = 0x8022
FINGERPRINT = 0x8028
RESPONSE_ORIGIN = 0x802B
OTHER_ADDRESS = 0x802C

CHANGE_IP = 0x4
CHANGE_PORT = 0x2

TIMEOUT_S = 2.0


class Malformed(Exception):
    """The bytes are not a well-formed STUN message."""


def pad4(n):
    return (n + 3) & ~3


def attr(atype, value):
    """One attribute on the wire, padded to 4 bytes with zeros."""
    return struct.pack("!HH", atype, len(value)) + value + b"\0" * (pad4(len(value)) - len(value))


def fingerprint_of(msg_without_fp):
    """CRC-32 of everything before FINGERPRINT, XORed (RFC 8489 14.7).
    The header length must already count the FINGERPRINT attribute."""
    return (zlib.crc32(msg_without_fp) & 0xFFFFFFFF) ^ FP_XOR


def message(mtype, txid, attrs=b"", fingerprint=True, fp_value=None):
    """Header plus attribute bytes, optionally closed by FINGERPRINT.
    fp_value forces a (wrong) FINGERPRINT value."""
    body = attrs
    if fingerprint:
        head = struct.pack("!HHI", mtype, len(body) + 8, MAGIC) + txid
        fp = fingerprint_of(head + body) if fp_value is None else fp_value
        return head + body + attr(FINGERPRINT, struct.pack("!I", fp))
    return struct.pack("!HHI", mtype, len(body), MAGIC) + txid + body


# punch's signed rendezvous requests (docs/protocol.md, "Signatures"):
# PUNCH-PUBKEY, then PUNCH-SIGNATURE over the context string and the message
# so far, its length field counting the signature, then FINGERPRINT.  Uses
# Debian's python3-nacl (libsodium), imported only when a test signs.
PUNCH_PUBKEY = 0x4F0B
PUNCH_SIGNATURE = 0x4F0C
PUNCH_SERVER_KEY = 0x4F0D
SIGN_CONTEXT = b"punch-rendezvous-v1"
SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")


def signing_key(seed=None):
    """An Ed25519 key (nacl.signing.SigningKey), random unless seeded."""
    import nacl.signing
    return nacl.signing.SigningKey(seed) if seed else nacl.signing.SigningKey.generate()


def key_fingerprint(verify_key_bytes):
    """SHA-256 of the SubjectPublicKeyInfo, as `punch id` computes it."""
    import hashlib
    return hashlib.sha256(SPKI_ED25519 + verify_key_bytes).digest()


def fp_str(fp):
    import base64
    return "SHA256:" + base64.b64encode(fp).decode().rstrip("=")


def signed_message(mtype, txid, attrs, key, key_attr=PUNCH_PUBKEY):
    """A request signed with key: attrs, the key attribute, the signature
    and FINGERPRINT."""
    attrs = attrs + attr(key_attr, bytes(key.verify_key))
    head = struct.pack("!HHI", mtype, len(attrs) + 4 + 64, MAGIC) + txid
    sig = key.sign(SIGN_CONTEXT + head + attrs).signature
    return message(mtype, txid, attrs + attr(PUNCH_SIGNATURE, sig))


def verify_signed(buf, key_attr=PUNCH_SERVER_KEY):
    """The key that signed buf (raw 32 bytes), or None if it is not signed
    as docs/protocol.md says."""
    import nacl.exceptions
    import nacl.signing
    msg = decode(buf)
    attrs = [a for a in msg["attrs"] if a[0] != FINGERPRINT]
    if not attrs or attrs[-1][0] != PUNCH_SIGNATURE or len(attrs[-1][1]) != 64:
        return None
    keys = [v for t, v in attrs[:-1] if t == key_attr]
    if len(keys) != 1 or len(keys[0]) != 32:
        return None
    off = HEADER_LEN + sum(4 + pad4(len(v)) for _, v in attrs[:-1])
    head = buf[:2] + struct.pack("!H", off + 4 + 64 - HEADER_LEN) + buf[4:off]
    try:
        nacl.signing.VerifyKey(keys[0]).verify(SIGN_CONTEXT + head, attrs[-1][1])
    except nacl.exceptions.BadSignatureError:
        return None
    return keys[0]


def binding_request(txid=None, attrs=b"", fingerprint=True):
    txid = txid if txid is not None else os.urandom(12)
    return txid, message(BINDING_REQUEST, txid, attrs, fingerprint)


def _decode_addr(value, txid, xor):
    if len(value) < 4:
        raise Malformed("address attribute of %d bytes" % len(value))
    family, port = value[1], struct.unpack("!H", value[2:4])[0]
    raw = value[4:]
    if family == 1:
        if len(value) != 8:
            raise Malformed("IPv4 address attribute of %d bytes" % len(value))
        if xor:
            port ^= MAGIC >> 16
            raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC)))
        return (socket.inet_ntop(socket.AF_INET, raw), port)
    if family == 2:
        if len(value) != 20:
            raise Malformed("IPv6 address attribute of %d bytes" % len(value))
        if xor:
            port ^= MAGIC >> 16
            raw = bytes(a ^ b for a, b in zip(raw, struct.pack("!I", MAGIC) + txid))
        return (socket.inet_ntop(socket.AF_INET6, raw), port)
    raise Malformed("address family %d" % family)


ADDR_ATTRS = {
    MAPPED_ADDRESS: False,
    XOR_MAPPED_ADDRESS: True,
    RESPONSE_ORIGIN: False,
    OTHER_ADDRESS: False,
}


def decode(buf):
    """Strictly decode buf.  Returns a dict with type, txid, attrs (list of
    (type, value) in wire order) and decoded fields; raises Malformed."""
    if len(buf) < HEADER_LEN:
        raise Malformed("%d bytes, shorter than a header" % len(buf))
    mtype, mlen, cookie = struct.unpack("!HHI", buf[:8])
    txid = buf[8:20]
    if mtype & 0xC000:
        raise Malformed("top two bits set")
    if cookie != MAGIC:
        raise Malformed("magic cookie 0x%08x" % cookie)
    if mlen % 4 or HEADER_LEN + mlen != len(buf):
        raise Malformed("length field %d for a %d-byte datagram" % (mlen, len(buf)))
    out = {"type": mtype, "txid": txid, "attrs": [], "size": len(buf)}
    off = HEADER_LEN
    while off < len(buf):
        if off + 4 > len(buf):
            raise Malformed("truncated attribute header at %d" % off)
        atype, alen = struct.unpack("!HH", buf[off:off + 4])
        if off + 4 + pad4(alen) > len(buf):
            raise Malformed("attribute 0x%04x runs past the end" % atype)
        value = buf[off + 4:off + 4 + alen]
        if "fingerprint" in out:
            raise Malformed("attribute 0x%04x after FINGERPRINT" % atype)
        if atype == FINGERPRINT:
            if alen != 4:
                raise Malformed("FINGERPRINT of %d bytes" % alen)
            want = fingerprint_of(buf[:off])
            got = struct.unpack("!I", value)[0]
            if got != want:
                raise Malformed("FINGERPRINT 0x%08x, computed 0x%08x" % (got, want))
            out["fingerprint"] = got
        elif atype in ADDR_ATTRS:
            out[atype] = _decode_addr(value, txid, ADDR_ATTRS[atype])
        elif atype == ERROR_CODE:
            if alen < 4:
                raise Malformed("ERROR-CODE of %d bytes" % alen)
            out["error"] = (value[2] & 7) * 100 + value[3]
            out["reason"] = value[4:].decode("utf-8", "replace")
        elif atype == UNKNOWN_ATTRIBUTES:
            if alen % 2:
                raise Malformed("UNKNOWN-ATTRIBUTES of %d bytes" % alen)
            out["unknown"] = list(struct.unpack("!%dH" % (alen // 2), value))
        elif atype == SOFTWARE:
            out["software"] = value.decode("utf-8", "replace")
        out["attrs"].append((atype, value))
        off += 4 + pad4(alen)
    return out


def fmt(addr):
    host, port = addr[0], addr[1]
    return "[%s]:%d" % (host, port) if ":" in host else "%s:%d" % (host, port)


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def udp_socket(host, bind_host=None, bind_port=0):
    s = socket.socket(family_of(host), socket.SOCK_DGRAM)
    s.bind((bind_host or ("::1" if ":" in host else "127.0.0.1"), bind_port))
    return s


def recv_response(sock, txid, timeout=TIMEOUT_S):
    """Wait (bounded) for the datagram answering txid.  Returns
    (decoded, source address) or (None, None) on timeout.  Anything else that
    arrives meanwhile is an error: the tests expect only their own answers."""
    sock.settimeout(timeout)
    try:
        data, src = sock.recvfrom(65536)
    except socket.timeout:
        return None, None
    msg = decode(data)
    if msg["txid"] != txid:
        raise Malformed("transaction id %s, expected %s" % (msg["txid"].hex(), txid.hex()))
    return msg, src[:2]


_software_seen = None  # SOFTWARE value from an earlier response, if any

# punch's own promises beyond the RFCs: FINGERPRINT on every response and
# the 4x amplification bound.  Off for the coturn reference run.
PUNCH_CONTRACT = True


def check_amplification(msg, req_len, rfc5780=False):
    """The response is at most 4x its request, and the optional attributes
    were dropped in the contract's order (SOFTWARE, then MAPPED-ADDRESS, then
    RESPONSE-ORIGIN) and only when they did not fit.  Returns problems."""
    global _software_seen
    problems = []
    bound = 4 * req_len
    size = msg["size"]
    if size > bound:
        problems.append("response of %d bytes to a %d-byte request: over the 4x amplification bound"
                        % (size, req_len))
    has_sw = "software" in msg
    has_ma = MAPPED_ADDRESS in msg
    has_ro = RESPONSE_ORIGIN in msg
    if has_sw:
        _software_seen = msg["software"]
    addr_len = 4 + (20 if ":" in msg.get(XOR_MAPPED_ADDRESS, ("", 0))[0] else 8)
    if has_sw and not has_ma:
        problems.append("SOFTWARE kept but MAPPED-ADDRESS dropped (SOFTWARE goes first)")
    if rfc5780 and (has_sw or has_ma) and not has_ro:
        problems.append("RESPONSE-ORIGIN dropped before SOFTWARE / MAPPED-ADDRESS")
    if not has_ma and size + addr_len <= bound:
        problems.append("MAPPED-ADDRESS dropped although it fits (%d + %d <= %d)" % (size, addr_len, bound))
    if rfc5780 and not has_ro and size + 12 <= bound:
        problems.append("RESPONSE-ORIGIN dropped although it fits (%d + 12 <= %d)" % (size, bound))
    if not has_sw and _software_seen is not None:
        sw_len = 4 + pad4(len(_software_seen.encode()))
        if size + sw_len <= bound:
            problems.append("SOFTWARE dropped although it fits (%d + %d <= %d)" % (size, sw_len, bound))
    return problems


def check_success(msg, src, sock, req_len, want_origin=None, rfc5780=False):
    """Common checks of a Binding success response; returns a list of
    problems (empty when all is well)."""
    problems = []
    me = sock.getsockname()[:2]
    if msg["type"] != BINDING_SUCCESS:
        problems.append("message type 0x%04x, expected 0x0101 (Binding success)" % msg["type"])
        return problems
    xma = msg.get(XOR_MAPPED_ADDRESS)
    if xma is None:
        problems.append("no XOR-MAPPED-ADDRESS")
    elif tuple(xma) != tuple(me):
        problems.append("XOR-MAPPED-ADDRESS %s, expected %s (the client's socket)" % (fmt(xma), fmt(me)))
    ma = msg.get(MAPPED_ADDRESS)
    if ma is not None and tuple(ma) != tuple(me):
        problems.append("MAPPED-ADDRESS %s, expected %s" % (fmt(ma), fmt(me)))
    if PUNCH_CONTRACT:
        if "fingerprint" not in msg:
            problems.append("no FINGERPRINT")
        problems += check_amplification(msg, req_len, rfc5780)
    if want_origin is not None:
        if tuple(src) != tuple(want_origin):
            problems.append("answered from %s, expected %s" % (fmt(src), fmt(want_origin)))
        ro = msg.get(RESPONSE_ORIGIN)
        if ro is not None and tuple(ro) != tuple(src):
            problems.append("RESPONSE-ORIGIN %s but the datagram came from %s" % (fmt(ro), fmt(src)))
    return problems


# ---------------------------------------------------------------- probes

def fail(text):
    print("FAIL: " + text, file=sys.stderr)
    sys.exit(1)


def cmd_freeports(args):
    """N consecutive ports free for UDP on every given IP.  The kernel picks
    the first; we then check the others.  Racy by nature: callers retry when
    the server cannot bind."""
    n = int(args[0])
    ips = args[1:] or ["127.0.0.1"]
    for _ in range(200):
        s = socket.socket(family_of(ips[0]), socket.SOCK_DGRAM)
        s.bind((ips[0], 0))
        base = s.getsockname()[1]
        s.close()
        if base + n - 1 > 65535:
            continue
        ok = True
        for ip in ips:
            for p in range(base, base + n):
                t = socket.socket(family_of(ip), socket.SOCK_DGRAM)
                try:
                    t.bind((ip, p))
                except OSError:
                    ok = False
                finally:
                    t.close()
        if ok:
            print(" ".join(str(p) for p in range(base, base + n)))
            return
    fail("no %d consecutive free UDP ports on %s after 200 tries" % (n, ", ".join(ips)))


def cmd_binding(args):
    host, port = args[0], int(args[1])
    sock = udp_socket(host)
    txid, req = binding_request()
    sock.sendto(req, (host, port))
    msg, src = recv_response(sock, txid)
    if msg is None:
        fail("no answer from %s within %.0f s" % (fmt((host, port)), TIMEOUT_S))
    problems = check_success(msg, src, sock, len(req))
    if problems:
        fail("Binding to %s: %s" % (fmt((host, port)), "; ".join(problems)))
    print("ok %s mapped %s" % (fmt((host, port)), fmt(msg[XOR_MAPPED_ADDRESS])))


def cmd_rfc5780(args):
    """Every socket answers for itself, OTHER-ADDRESS names the address that
    "change IP and port" would answer from (RFC 5780 7.4: relative to the
    socket the request reached), and CHANGE-REQUEST picks the answering
    socket (RFC 5780 6.1).  Checks the real source of each datagram, not only
    what RESPONSE-ORIGIN claims.

    With --coturn: coturn 4.6 always puts the alternate IP in OTHER-ADDRESS (it
    only swaps the port), so for the reference run accept that on the three
    non-primary sockets; and skip punch's own promises (FINGERPRINT always,
    4x amplification bound), which coturn does not make."""
    coturn = not PUNCH_CONTRACT
    pip, pport, aip, aport = args[0], int(args[1]), args[2], int(args[3])

    def swap(addr, ip=True, port=True):
        return ((aip if addr[0] == pip else pip) if ip else addr[0],
                (aport if addr[1] == pport else pport) if port else addr[1])

    problems = []
    answered = 0
    sockets = {(pip, pport): "primary", (pip, aport): "primary IP, alt port",
               (aip, pport): "alt IP, primary port", (aip, aport): "alt IP, alt port"}
    # (destination, change flags, socket expected to answer)
    cases = [(dest, 0, dest) for dest in sockets]
    for flags in (CHANGE_PORT, CHANGE_IP, CHANGE_IP | CHANGE_PORT):
        cases.append(((pip, pport), flags,
                      swap((pip, pport), flags & CHANGE_IP, flags & CHANGE_PORT)))
    sock = udp_socket(pip)
    for n, (dest, flags, origin) in enumerate(cases):
        attrs = attr(CHANGE_REQUEST, struct.pack("!I", flags)) if flags else b""
        # Every other request without FINGERPRINT: the 20-byte ones leave
        # an 80-byte budget, so the server must drop optional attributes.
        txid, req = binding_request(attrs=attrs, fingerprint=n % 2 == 1)
        sock.sendto(req, dest)
        what = "request to %s (%s) with CHANGE-REQUEST 0x%x" % (fmt(dest), sockets[dest], flags)
        msg, src = recv_response(sock, txid)
        if msg is None:
            problems.append("%s: no answer within %.0f s, expected one from %s" % (what, TIMEOUT_S, fmt(origin)))
            continue
        answered += 1
        p = check_success(msg, src, sock, len(req), want_origin=origin, rfc5780=True)
        other = swap(dest)
        oa = msg.get(OTHER_ADDRESS)
        if oa is None:
            p.append("no OTHER-ADDRESS")
        elif tuple(oa) != other and not (coturn and tuple(oa) == (aip, other[1])):
            p.append("OTHER-ADDRESS %s, expected %s (where change IP and port would answer from)"
                     % (fmt(oa), fmt(other)))
        problems += ["%s: %s" % (what, x) for x in p]
    print("rfc5780 probe: %d requests, %d answered" % (len(cases), answered))
    if problems:
        fail("RFC 5780 probe:\n  " + "\n  ".join(problems))


def probe_attr(host, port, name, atype, value):
    """Send a Binding request carrying one RFC 5780 attribute and report what
    the server did with it: "moved" (answered at another socket, as
    RESPONSE-PORT asks), "accepted" (success at the source) or "420".  For
    RESPONSE-PORT the value names a second socket of ours."""
    sock = udp_socket(host)
    alt = udp_socket(host)
    if atype == RESPONSE_PORT:
        value = struct.pack("!HH", alt.getsockname()[1], 0)
    txid, req = binding_request(attrs=attr(atype, value))
    sock.sendto(req, (host, port))
    ready, _, _ = select.select([sock, alt], [], [], TIMEOUT_S)
    if not ready:
        fail("%s probe: no answer within %.0f s" % (name, TIMEOUT_S))
    where = ready[0]
    msg, src = recv_response(where, txid, timeout=0)
    outcome = "moved" if where is alt else "accepted"
    if msg["type"] == BINDING_ERROR:
        if msg.get("error") != 420 or atype not in msg.get("unknown", []):
            fail("%s probe: error %s (%s) UNKNOWN-ATTRIBUTES %s; expected 420 listing 0x%04x"
                 % (name, msg.get("error"), msg.get("reason"),
                    ["0x%04x" % u for u in msg.get("unknown", [])], atype))
        if where is alt:
            fail("%s probe: 420 sent to the RESPONSE-PORT socket, expected at the source" % name)
        return "420"
    p = check_success(msg, src, sock, len(req))
    if p:
        fail("%s probe (%s): %s" % (name, outcome, "; ".join(p)))
    return outcome


def cmd_attr_probe(args):
    """Prints two words: what the server does with RESPONSE-PORT (honoured
    or 420) and with PADDING (accepted or 420).  A RESPONSE-PORT that is
    answered at the source port as if absent is a server bug: the attribute
    is comprehension-required, so the server must either honour it (RFC 5780
    7.5) or reject it with 420 (RFC 8489 7.3.1)."""
    host, port = args[0], int(args[1])
    rp = probe_attr(host, port, "RESPONSE-PORT", RESPONSE_PORT, b"")
    if rp == "accepted":
        fail("RESPONSE-PORT probe: the server answered the request's source port, neither "
             "honouring RESPONSE-PORT (RFC 5780 7.5) nor rejecting it with 420 (RFC 8489 7.3.1)")
    pad = probe_attr(host, port, "PADDING", PADDING, b"\0" * 1500)
    if pad == "moved":
        fail("PADDING probe: answer went to a socket other than the source")
    print("honoured" if rp == "moved" else rp, pad)


def cmd_wait_binding(args):
    """Poll HOST PORT with Binding requests (0.2 s apart) until one is
    answered or DEADLINE_S seconds have passed.  For servers that print no
    start line (the coturn reference)."""
    import time
    host, port, deadline_s = args[0], int(args[1]), float(args[2])
    sock = udp_socket(host)
    end = time.monotonic() + deadline_s
    tries = 0
    while time.monotonic() < end:
        tries += 1
        txid, req = binding_request()
        sock.sendto(req, (host, port))
        try:
            msg, _ = recv_response(sock, txid, timeout=0.2)
        except (Malformed, ConnectionRefusedError):
            msg = None
            time.sleep(0.05)  # ICMP refusals come back at once; pace the loop
        if msg is not None:
            print("answered after %d tries" % tries)
            return
    fail("no Binding answer from %s within %.0f s (%d tries)" % (fmt((host, port)), deadline_s, tries))


# ------------------------------------------- coturn utilities' printouts

def _split_hostport(text):
    """coturn prints 127.0.0.1:5 and ::1:5 (no brackets)."""
    host, _, port = text.strip().rpartition(":")
    return host, port


def cmd_normalize(args):
    """Rewrite what turnutils_stunclient / turnutils_natdiscovery printed
    into one fact per line, so that a test can diff it against the transcript
    it expects.  Ports given as NAME=PORT print as NAME; any other port prints
    as c1, c2, ... in order of first appearance, numbered afresh in each
    "-= ... =-" section (so unrelated runs that reuse a port number cannot
    confuse it).  Lines the tool prints twice in a row (its log goes to
    stdout as well) are kept once.  Unexpected lines are kept as "other: ..."."""
    path, names = args[0], {}
    for a in args[1:]:
        name, _, port = a.partition("=")
        names[port] = name
    seen = {}
    out = []

    def addr(text):
        host, port = _split_hostport(text)
        if port in names:
            sym = names[port]
        else:
            sym = seen.setdefault(port, "c%d" % (len(seen) + 1))
        return "%s:%s" % ("[%s]" % host if ":" in host else host, sym)

    prefix = re.compile(r"^\d+: [^:]*: IPv[46]\. ")
    for raw in open(path, encoding="utf-8", errors="replace"):
        line = prefix.sub("", raw.rstrip("\n")).strip()
        if not line or line.startswith("=" * 10):
            continue
        if (m := re.match(r"^-= (.*) =-$", line)):
            seen.clear()
            item = "== " + m.group(1)
        elif (m := re.match(r"^RFC 5780 response (\d+)$", line)):
            item = "rfc5780 response " + m.group(1)
        elif line == "No ALG: Mapped == XOR-Mapped":
            item = "no ALG"
        elif line.startswith("-= ALG detected"):
            item = "ALG detected (MAPPED-ADDRESS differs from XOR-MAPPED-ADDRESS)"
        elif (m := re.match(r"^Mapped Address:(?: :)? (\S+)$", line)):
            item = "mapped address " + addr(m.group(1))
        elif (m := re.match(r"^Response origin:(?: :)? (\S+)$", line)):
            item = "response origin " + addr(m.group(1))
        elif (m := re.match(r"^Other addr:(?: :)? (\S+)$", line)):
            item = "other addr " + addr(m.group(1))
        elif (m := re.match(r"^UDP reflexive addr:(?: :)? (\S+)$", line)):
            item = "reflexive " + addr(m.group(1))
        elif (m := re.match(r"^Local addr:(?: :)? (\S+)$", line)):
            item = "local " + addr(m.group(1))
        elif (m := re.match(r"^The response is an error (\d+) ", line)):
            item = "error " + m.group(1)
        elif line.startswith("STUN receive timeout"):
            item = "receive timeout"
        elif line.startswith("Received a request (maybe a successful hairpinning)"):
            item = "hairpin request received"
        elif line.startswith(("No NAT!", "NAT with ")):
            item = "verdict: " + line
        else:
            item = "other: " + line
        if not out or out[-1] != item:
            out.append(item)
    print("\n".join(out))


def tcp_connect(host, port):
    s = socket.create_connection((host, port), timeout=TIMEOUT_S)
    s.settimeout(TIMEOUT_S)
    return s


_tcp_rest = {}  # bytes read past the last message, by socket


def tcp_read_msg(sock):
    """One STUN message off the stream (its header gives its length)."""
    buf = _tcp_rest.pop(sock.fileno(), b"")
    while len(buf) < HEADER_LEN or len(buf) < HEADER_LEN + struct.unpack("!H", buf[2:4])[0]:
        chunk = sock.recv(4096)
        if not chunk:
            fail("TCP: the server closed the connection after %d bytes of a response" % len(buf))
        buf += chunk
    want = HEADER_LEN + struct.unpack("!H", buf[2:4])[0]
    _tcp_rest[sock.fileno()] = buf[want:]
    return decode(buf[:want])


def tcp_binding_ok(sock, txid):
    msg = tcp_read_msg(sock)
    if msg["type"] != BINDING_SUCCESS or msg["txid"] != txid:
        fail("TCP: expected a Binding success for %s, got type 0x%04x id %s"
             % (txid.hex(), msg["type"], msg["txid"].hex()))
    mapped = msg.get(XOR_MAPPED_ADDRESS)
    if mapped != sock.getsockname()[:2]:
        fail("TCP: XOR-MAPPED-ADDRESS %s, expected the connection's %s"
             % (mapped and fmt(mapped), fmt(sock.getsockname())))


def tcp_expect_closed(sock, what):
    if _tcp_rest.pop(sock.fileno(), b""):
        fail("TCP: %s: bytes after the last response" % what)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        data = b""
    except socket.timeout:
        fail("TCP: %s: the connection is still open after %d s, expected it closed" % (what, TIMEOUT_S))
    if data:
        fail("TCP: %s: got %d bytes, expected the connection closed" % (what, len(data)))


def cmd_tcp_probe(args):
    host, port, max_tcp = args[0], int(args[1]), int(args[2])
    s = tcp_connect(host, port)
    # one request
    txid, req = binding_request()
    s.sendall(req)
    tcp_binding_ok(s, txid)
    # two in one write, a third in three pieces
    reqs = [binding_request() for _ in range(3)]
    s.sendall(reqs[0][1] + reqs[1][1])
    tcp_binding_ok(s, reqs[0][0])
    tcp_binding_ok(s, reqs[1][0])
    third = reqs[2][1]
    for piece in (third[:3], third[3:21], third[21:]):
        s.sendall(piece)
        time.sleep(0.05)
    tcp_binding_ok(s, reqs[2][0])
    # bytes that are neither STUN nor ChannelData: closed
    s.sendall(b"\x80" + bytes(19))
    tcp_expect_closed(s, "first bits 10")
    s.close()
    # a header announcing more than the server takes: closed at once
    s = tcp_connect(host, port)
    s.sendall(struct.pack("!HHI", BINDING_REQUEST, 8000, MAGIC) + os.urandom(12))
    tcp_expect_closed(s, "a 8020-byte message")
    s.close()
    # MAX_TCP connections, each answered, then one more: closed
    conns = []
    for _ in range(max_tcp):
        c = tcp_connect(host, port)
        txid, req = binding_request()
        c.sendall(req)
        tcp_binding_ok(c, txid)
        conns.append(c)
    extra = tcp_connect(host, port)
    tcp_expect_closed(extra, "connection %d of -max-tcp %d" % (max_tcp + 1, max_tcp))
    extra.close()
    for c in conns:
        c.close()
    print("ok: Binding over TCP (4 answered, split and joined), broken and "
          "oversize streams closed, connection %d of %d closed" % (max_tcp + 1, max_tcp))


COMMANDS = {"tcp-probe": cmd_tcp_probe, "freeports": cmd_freeports, "binding": cmd_binding,
            "rfc5780": cmd_rfc5780, "attr-probe": cmd_attr_probe,
            "normalize": cmd_normalize, "wait-binding": cmd_wait_binding}

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--coturn" in argv:  # probing the coturn reference, not punch
        argv.remove("--coturn")
        PUNCH_CONTRACT = False
    if not argv or argv[0] not in COMMANDS:
        fail("usage: stunwire.py [--coturn] {%s} ..." % "|".join(COMMANDS))
    COMMANDS[argv[0]](argv[1:])
