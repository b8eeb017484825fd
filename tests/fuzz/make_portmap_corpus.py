#!/usr/bin/env python3
"""Write the seed corpora for fuzz_natpmp and fuzz_pcp: answers laid out
as RFC 6886 3.2/3.3 and RFC 6887 7.2/11.1 show them, good ones and broken
ones.  Each input starts with the internal port asked about (2 bytes).
The output is committed; run this again only when the format changes."""
import os
import struct
import sys

PORT = struct.pack(">H", 40000)
NONCE = b"punch-fuzz01"


def natpmp():
    ext = struct.pack(">BBHI4s", 0, 128, 0, 1000, bytes([203, 0, 113, 7]))
    mapped = struct.pack(">BBHIHHI", 0, 129, 0, 7, 40000, 50000, 3600)
    return {
        "external_ok": PORT + ext,
        "external_error": PORT + ext[:2] + b"\x00\x03" + ext[4:8],
        "map_ok": PORT + mapped,
        "map_deleted": PORT + mapped[:10] + b"\x00\x00\x00\x00\x00\x00",
        "map_refused": PORT + mapped[:2] + b"\x00\x02" + mapped[4:8],
        "map_other_port": struct.pack(">H", 40001) + mapped,
        "map_short": PORT + mapped[:15],
        "pcp_instead": PORT + bytes([2, 0x81]) + bytes(58),
    }


def pcp_map(result=0, port=50000, ext=bytes([203, 0, 113, 9]), extra=b""):
    head = struct.pack(">BBBBII12s", 2, 0x81, 0, result, 3600, 42, bytes(12))
    body = NONCE + struct.pack(">B3sHH", 17, bytes(3), 40000, port)
    body += bytes(10) + b"\xff\xff" + ext
    return PORT + head + body + extra


def pcp():
    return {
        "map_ok": pcp_map(),
        "map_with_option": pcp_map(extra=bytes([1, 0, 0, 4]) + bytes(4)),
        "map_error": pcp_map(result=2, port=0, ext=bytes(4)),
        "map_no_port": pcp_map(port=0),
        "map_other_nonce": pcp_map()[:26] + b"x" * 12 + pcp_map()[38:],
        "map_odd_length": pcp_map() + b"\x00",
        "natpmp_unsupported": PORT + bytes([0, 129, 0, 1, 0, 0, 0, 9]),
    }


def write(root, name, seeds):
    d = os.path.join(root, name)
    os.makedirs(d, exist_ok=True)
    for k, v in seeds.items():
        with open(os.path.join(d, k), "wb") as f:
            f.write(v)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    write(root, "natpmp", natpmp())
    write(root, "pcp", pcp())


if __name__ == "__main__":
    main()
