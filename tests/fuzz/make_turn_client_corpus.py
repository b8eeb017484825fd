#!/usr/bin/env python3
"""Write the seed corpus of fuzz_turn_client (tests/fuzz/fuzz_turn_client.c)
to corpus/turn_client/: each file is the state byte (0 bare Allocate out,
1 Allocate with credentials out, 2 allocated with a permission and a
channel), then steps [op][length: 2 bytes][bytes] (0 STUN as is, 1 STUN
re-signed as an answer to our request, 2 ChannelData, 3 clock, 4 send,
5 permit)."""
import os
import struct
import sys

COOKIE = 0x2112A442
HERE = os.path.dirname(os.path.abspath(__file__))


def attr(t, v):
    pad = (4 - len(v) % 4) % 4
    return struct.pack("!HH", t, len(v)) + v + b"\0" * pad


def xor_addr(ip, port):
    a = bytes(int(x) for x in ip.split("."))
    x = bytes(b ^ c for b, c in zip(a, struct.pack("!I", COOKIE)))
    return struct.pack("!BBH", 0, 1, port ^ (COOKIE >> 16)) + x


def error(code, reason):
    return attr(0x09, struct.pack("!HBB", 0, code // 100, code % 100) + reason)


def msg(method, cls, attrs, txid=b"turn-client1"):
    t = (method & 0xF) | ((method & 0x70) << 1) | ((method & 0xF80) << 2)
    t |= ((cls & 1) << 4) | ((cls & 2) << 7)
    body = b"".join(attrs)
    return struct.pack("!HHI", t, len(body), COOKIE) + txid + body


def step(op, data):
    return struct.pack("!BH", op, len(data)) + data


PEER = xor_addr("203.0.113.9", 7000)
RELAYED = xor_addr("192.0.2.1", 50000)
REALM = attr(0x14, b"punch")
NONCE = attr(0x15, b"fresh-nonce")
SUCCESS, ERROR, INDICATION = 2, 3, 1
SEEDS = {
    "challenge": b"\0" + step(1, msg(3, ERROR, [error(401, b"Unauthorized"),
                                                REALM, NONCE])),
    "challenge_no_realm": b"\0" + step(0, msg(3, ERROR,
                                              [error(401, b"x"), NONCE])),
    "allocated": b"\1" + step(1, msg(3, SUCCESS, [
        attr(0x16, RELAYED), attr(0x0D, struct.pack("!I", 600))])),
    "allocate_short_life": b"\1" + step(1, msg(3, SUCCESS, [
        attr(0x16, RELAYED), attr(0x0D, struct.pack("!I", 1))])) +
        step(3, b"\x05") * 4,
    "allocate_stale": b"\1" + step(1, msg(3, ERROR, [error(438, b"Stale"),
                                                     NONCE])) * 5,
    "allocate_quota": b"\1" + step(1, msg(3, ERROR, [
        error(486, b"Quota\x1b[2J")])),
    "no_answer": b"\0" + step(3, b"\x0a") * 6,
    "data_indication": b"\2" + step(0, msg(7, INDICATION, [
        attr(0x12, PEER), attr(0x13, b"hello")])),
    "channel_data": b"\2" + step(2, b"\x40\x00\x00\x04ping"),
    "channel_padded": b"\2" + step(2, b"\x40\x00\x00\x03pin\0"),
    "channel_bad": b"\2" + step(2, b"\x40\x00\x00\x09ping"),
    "channel_unbound": b"\2" + step(2, b"\x40\x07\x00\x01p"),
    "send": b"\2" + step(4, b"hello") + step(4, b"x" * 300),
    "permit": b"\2" + step(5, bytes([198, 51, 100, 1])) +
        step(1, msg(8, ERROR, [error(403, b"Forbidden")])),
    "refresh": b"\2" + step(3, b"\xff") * 3 +
        step(1, msg(4, ERROR, [error(438, b"Stale"), NONCE])) +
        step(1, msg(4, SUCCESS, [attr(0x0D, struct.pack("!I", 600))])),
    "refresh_gone": b"\2" + step(3, b"\xff") * 2 +
        step(1, msg(4, ERROR, [error(437, b"Allocation Mismatch")])),
    "bind_refused": b"\2" + step(4, b"a") +
        step(1, msg(9, ERROR, [error(400, b"Bad Request")])),
    "expire": b"\2" + step(3, b"\xff") * 10,
}


def main():
    out = os.path.join(HERE, "corpus", "turn_client")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
