#!/usr/bin/env python3
"""Write the seed corpus for fuzz_pake: pairing codes (good and bad) and
pairing streams (whole, truncated, with another header, with shares that
are and are not ristretto255 elements).  The output is committed, so that
every test run replays the same inputs; run this again only when the
format changes."""
import os
import sys

HEADER = b"punch/1 pair CPACE-RISTR255-SHA512\n"
# Ya from draft-irtf-cfrg-cpace's ristretto255 vectors: a valid element.
GOOD = bytes.fromhex(
    "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157")
# The draft's invalid encoding Y_i1, and the identity.
BAD = bytes.fromhex(
    "2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c")
IDENTITY = bytes(32)
MAC = bytes(range(64))

SEEDS = {
    "code_ok": b"7-amber-falcon",
    "code_upper": b"007-AMBER-Falcon",
    "code_max": b"999-zipper-zipper",
    "code_bad_word": b"7-amber-falcn",
    "code_long_number": b"1000-amber-falcon",
    "code_trailing": b"7-amber-falcon-",
    "code_new": b"new",
    "stream_ok": HEADER + GOOD + MAC,
    "stream_bad_share": HEADER + BAD + MAC,
    "stream_identity": HEADER + IDENTITY + MAC,
    "stream_share_only": HEADER + GOOD,
    "stream_header_only": HEADER,
    "stream_long": HEADER + GOOD + MAC + b"x",
    "stream_other_method": b"punch/1 pair SPAKE2\n" + GOOD + MAC,
    "stream_chat": b"punch/1 chat\nhello\n",
    "share_raw": GOOD,
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "pake")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
