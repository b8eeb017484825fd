#!/usr/bin/env python3
"""Write the seed corpus for fuzz_registry_value: registration values as
the shared registry stores them (registry_value.h), signed properly and
not, messages between servers, and -registry URLs.  Needs python3-nacl."""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(__file__))
from make_corpus import write  # noqa: E402
from make_rendezvous_corpus import REGISTER_REQ, peer, signed, txid  # noqa: E402


def value(fam, port, ip, message):
    return b"PR1" + bytes([fam]) + struct.pack("!H", port) + ip + message


t = txid()
good = signed(REGISTER_REQ, peer(t, b"alice", b"bob"), 7, t=t)
v4 = value(4, 4242, bytes([198, 51, 100, 7]), good)
v6 = value(6, 4242, bytes.fromhex("20010db8000000000000000000000007"), good)
seeds = {
    "value_v4": v4,
    "value_v6": v6,
    "value_unsigned": value(4, 1, bytes(4), good[:-8 - 68 - 36]),
    "value_no_peer": value(4, 1, bytes(4), signed(REGISTER_REQ, peer(t, b"alice"), 7, t=t)),
    "value_bad_magic": b"PR2" + v4[3:],
    "message": b"bob\n" + v4,
    "message_bad_target": b"b b\n" + v4,
    "url_tcp": b"redis://:pw@127.0.0.1:6379/2",
    "url_v6": b"redis://[::1]:7000",
    "url_unix": b"unix:///run/redis/redis.sock",
}
write(seeds, sys.argv[1] if len(sys.argv) > 1 else
      os.path.join(os.path.dirname(__file__), "corpus", "registry_value"))
