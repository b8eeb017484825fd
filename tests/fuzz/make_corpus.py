#!/usr/bin/env python3
"""Write the seed corpus for fuzz_stun: valid messages carrying every
attribute the codec knows, the RFC 5769 vectors, and broken variants.
Run it again only when the codec learns new attributes; the output is
committed so every test run replays the same inputs.  The message helpers
are shared with make_rendezvous_corpus.py."""
import hashlib
import hmac
import os
import struct
import sys
import zlib

COOKIE = 0x2112A442
TXID = bytes(range(1, 13))
KEY = b"fuzz-key"


def attr(t, v):
    pad = (-len(v)) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def addr(t, fam, port, ip, xor=False, txid=TXID):
    if xor:
        port ^= COOKIE >> 16
        mask = struct.pack("!I", COOKIE) + txid
        ip = bytes(a ^ b for a, b in zip(ip, mask))
    return attr(t, struct.pack("!BBH", 0, fam, port) + ip)


def msg(mtype, attrs, integrity=None, fingerprint=True, txid=TXID):
    body = b"".join(attrs)
    if integrity:
        algo, size, t = integrity
        hdr = struct.pack("!HHI", mtype, len(body) + 4 + size, COOKIE) + txid
        mac = hmac.new(KEY, hdr + body, algo).digest()[:size]
        body += attr(t, mac)
    if fingerprint:
        hdr = struct.pack("!HHI", mtype, len(body) + 8, COOKIE) + txid
        crc = zlib.crc32(hdr + body) ^ 0x5354554E
        body += attr(0x8028, struct.pack("!I", crc))
    return struct.pack("!HHI", mtype, len(body), COOKIE) + txid + body


def classic(mtype, attrs, txid=bytes(range(0xA0, 0xB0))):
    """An RFC 3489 message: bytes 4..19 are one 128-bit transaction id."""
    body = b"".join(attrs)
    return struct.pack("!HH", mtype, len(body)) + txid + body


V4 = bytes([192, 0, 2, 1])
V6 = bytes.fromhex("20010db8000000000000000000000001")

seeds = {
    "binding_bare": msg(0x0001, [], fingerprint=False),
    "binding_fp": msg(0x0001, []),
    "binding_change_ip_port": msg(0x0001, [attr(0x0003, struct.pack("!I", 6))]),
    "binding_change_port": msg(0x0001, [attr(0x0003, struct.pack("!I", 2))]),
    "binding_response_port": msg(0x0001, [attr(0x0027, struct.pack("!HH", 5000, 0))]),
    "binding_padding": msg(0x0001, [attr(0x0026, b"\0" * 64)]),
    "binding_unknown_required": msg(0x0001, [attr(0x7777, b"abc")]),
    "binding_unknown_optional": msg(0x0001, [attr(0xC001, b"abcd")]),
    "binding_ice": msg(0x0001, [
        attr(0x0006, b"alice:bob"), attr(0x0024, struct.pack("!I", 0x6E0001FF)),
        attr(0x0025, b""), attr(0x802A, struct.pack("!Q", 0x1122334455667788)),
        attr(0x8022, b"punch seed")], integrity=(hashlib.sha1, 20, 0x0008)),
    "binding_sha256": msg(0x0001, [attr(0x0006, b"user")],
                          integrity=(hashlib.sha256, 32, 0x001C)),
    "success_v4": msg(0x0101, [
        addr(0x0020, 1, 40000, V4, xor=True), addr(0x0001, 1, 40000, V4),
        addr(0x802B, 1, 3478, V4), addr(0x802C, 1, 3479, V4),
        attr(0x8022, b"punch 0.1.0")]),
    "success_v6": msg(0x0101, [
        addr(0x0020, 2, 40000, V6, xor=True), addr(0x0001, 2, 40000, V6)]),
    "error_420": msg(0x0111, [
        attr(0x0009, struct.pack("!HBB", 0, 4, 20) + b"Unknown Attribute"),
        attr(0x000A, struct.pack("!HHH", 0x7777, 0x0003, 0x0024))]),
    "error_400": msg(0x0111, [attr(0x0009, struct.pack("!HBB", 0, 4, 0) + b"Bad Request")]),
    "indication": msg(0x0011, []),
    "auth_realm_nonce": msg(0x0001, [
        attr(0x0006, "マトリックス".encode()), attr(0x0014, b"example.org"),
        attr(0x0015, b"f//499k954d6OL34oL9FSTvy64sA")],
        integrity=(hashlib.sha1, 20, 0x0008)),
    # Broken on purpose: the decoder must reject each without harm.
    "bad_cookie": struct.pack("!HHI", 1, 0, 0x12345678) + TXID,
    "bad_length": struct.pack("!HHI", 1, 7, COOKIE) + TXID + b"\0" * 7,
    "bad_attr_overrun": struct.pack("!HHI", 1, 8, COOKIE) + TXID + struct.pack("!HH", 0x8022, 200) + b"abcd",
    "bad_truncated": msg(0x0001, [])[:13],
    "not_stun_quic": bytes([0xC3]) + b"\0" * 39,
    # Classic STUN (RFC 3489): no cookie, a 128-bit transaction id.
    "classic_binding": classic(0x0001, []),
    "classic_change_ip_port": classic(0x0001, [attr(0x0003, struct.pack("!I", 6))]),
    "classic_change_port": classic(0x0001, [attr(0x0003, struct.pack("!I", 2))]),
    "classic_response_address": classic(0x0001, [addr(0x0002, 1, 5000, V4)]),
    "classic_unknown_required": classic(0x0001, [attr(0x7777, b"abcd"), attr(0x0027, b"\0" * 4)]),
    "classic_username_integrity": classic(0x0001, [attr(0x0006, b"user"), attr(0x0008, b"\0" * 20)]),
    "classic_shared_secret": classic(0x0002, []),
    "classic_response": classic(0x0101, [addr(0x0001, 1, 40000, V4)]),
    "classic_bad_change_len": classic(0x0001, [attr(0x0003, b"\0\0")]),
}



def write(seeds, out):
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {out}")


if __name__ == "__main__":
    write(seeds, sys.argv[1] if len(sys.argv) > 1 else
          os.path.join(os.path.dirname(__file__), "corpus", "stun"))
