#!/usr/bin/env python3
"""Write the seed corpus of fuzz_turn (tests/fuzz/fuzz_turn.c) to
corpus/turn/: one file per step of a relayed session, each prefixed with
the harness's mode byte (0 as is, 1 re-signed, 2 from a peer, 3 clock)."""
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


def msg(method, cls, attrs, txid=b"turn-fuzz-01"):
    t = (method & 0xF) | ((method & 0x70) << 1) | ((method & 0xF80) << 2)
    t |= ((cls & 1) << 4) | ((cls & 2) << 7)
    body = b"".join(attrs)
    return struct.pack("!HHI", t, len(body), COOKIE) + txid + body


PEER = xor_addr("203.0.113.9", 7000)
SEEDS = {
    "allocate_bare": b"\0" + msg(3, 0, [attr(0x19, b"\x11\0\0\0")]),
    "allocate": b"\1" + msg(3, 0, [attr(0x19, b"\x11\0\0\0"),
                                   attr(0x0D, struct.pack("!I", 600))]),
    "allocate_tcp": b"\1" + msg(3, 0, [attr(0x19, b"\x06\0\0\0")]),
    "allocate_v6": b"\1" + msg(3, 0, [attr(0x19, b"\x11\0\0\0"),
                                      attr(0x17, b"\x02\0\0\0")]),
    "permission": b"\1" + msg(8, 0, [attr(0x12, PEER)]),
    "channel_bind": b"\1" + msg(9, 0, [attr(0x0C, b"\x40\0\0\0"),
                                       attr(0x12, PEER)]),
    "send": b"\0" + msg(6, 1, [attr(0x12, PEER), attr(0x13, b"hello")]),
    "channel_data": b"\0" + b"\x40\x00\x00\x04ping",
    "channel_data_bad": b"\0" + b"\x40\x00\x00\x09ping",
    "peer_data": b"\2\0pong",
    "refresh": b"\1" + msg(4, 0, [attr(0x0D, struct.pack("!I", 1200))]),
    "refresh_delete": b"\1" + msg(4, 0, [attr(0x0D, b"\0\0\0\0")]),
    "clock": b"\3\xff",
}


def main():
    out = os.path.join(HERE, "corpus", "turn")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
