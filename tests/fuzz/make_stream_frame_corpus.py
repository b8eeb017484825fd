#!/usr/bin/env python3
"""Write the seed corpus of fuzz_stream_frame (tests/fuzz/fuzz_stream_frame.c)
to corpus/stream_frame/: each file is one byte that picks the read sizes,
then a TCP stream of STUN messages and ChannelData (RFC 8489 6.2.2,
RFC 8656 12.5), some of them broken."""
import os
import struct

COOKIE = 0x2112A442
HERE = os.path.dirname(os.path.abspath(__file__))


def stun(method=0x0001, body=b""):
    return struct.pack("!HHI", method, len(body), COOKIE) + bytes(range(12)) + body


def channel(number, data, pad=True):
    msg = struct.pack("!HH", number, len(data)) + data
    return msg + b"\0" * ((4 - len(msg) % 4) % 4 if pad else 0)


def attr(t, v):
    return struct.pack("!HH", t, len(v)) + v + b"\0" * ((4 - len(v) % 4) % 4)


SEEDS = {
    "binding": (0, stun()),
    "binding_attrs": (5, stun(body=attr(0x8022, b"client"))),
    "two_in_one": (63, stun() + channel(0x4001, b"hello")),
    "channel_padded": (1, channel(0x4000, b"abc") + channel(0x7FFF, b"")),
    "channel_unpadded": (2, channel(0x4001, b"abcde", pad=False) + stun()),
    "allocate_then_data": (9, stun(0x0003, attr(0x0019, b"\x11\0\0\0")) +
                           b"".join(channel(0x4000 + i, bytes(i)) for i in range(20))),
    "partial": (3, stun(body=attr(0x8022, b"x" * 40))[:30]),
    "no_cookie": (4, struct.pack("!HHI", 1, 0, 0) + bytes(12)),
    "odd_length": (6, struct.pack("!HHI", 1, 6, COOKIE) + bytes(18)),
    "first_bits_10": (7, stun() + b"\x80" + bytes(19)),
    "http": (8, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    "oversize_stun": (10, struct.pack("!HHI", 1, 4096, COOKIE) + bytes(40)),
    "oversize_channel": (11, channel(0x4000, b"") + struct.pack("!HH", 0x4000, 4093)),
    "largest": (12, channel(0x4002, bytes(4092)) + stun()),
}

out = os.path.join(HERE, "corpus", "stream_frame")
os.makedirs(out, exist_ok=True)
for name, (seed, stream) in SEEDS.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([seed]) + stream)
