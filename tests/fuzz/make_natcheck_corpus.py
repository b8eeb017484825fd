#!/usr/bin/env python3
"""Write the seed corpus for fuzz_natcheck: whole natcheck runs as the
harness reads them (fuzz_natcheck.c: a flags byte, then records of flags,
socket, source, clock advance, length and datagram).  Each record asks the
harness to put in the id of one transaction and to fix the FINGERPRINT, so
the seeds reach every test: the answers to the first requests with
OTHER-ADDRESS, the mapping tests II and III, the filtering tests from the
other addresses, a hairpinned request, 420 errors, answers from the wrong
place, and the lifetime probes.  Mapped addresses are MAPPED-ADDRESS (not
XORed), so that they survive the harness's change of transaction id.

Transactions, in the harness's order: 0 MAP, 1 FILT, 2-5 PAT0-3 (then with
-lifetime 6-15 LIFE0-9); after MAP's answer HAIRPIN, MAP test II, MAP test
III; after FILT's answer FILT test II, FILT test III; after each LIFE
answer its probe (so 6-10 without -lifetime, 16-30 with it).  Run it again only when the harness or natcheck's plan
changes; the output is committed."""
import os
import struct
import sys

from make_corpus import addr, attr, msg, write

BINDING_REQ, BINDING_OK, BINDING_ERR = 0x0001, 0x0101, 0x0111
SRV, SRV_P2, ALT_P1, ALT_P2, SELF, ELSE = range(6)  # the harness's sources
PUB = bytes([203, 0, 113, 10])
ALT = bytes([198, 51, 100, 11])
SOCK = {"MAP": 0, "FILT": 1, "PAT0": 2, "LIFE_Y": 6, "LIFE0": 7}


def ok(port, other=True):
    attrs = [addr(0x0001, 1, port, PUB)]
    if other:
        attrs.append(addr(0x802C, 1, 3479, ALT))
    return msg(BINDING_OK, attrs)


def err420():
    return msg(BINDING_ERR, [
        attr(0x0009, struct.pack("!HBB", 0, 4, 20) + b"Unknown Attribute"),
        attr(0x000A, struct.pack("!H", 0x0003))])


def rec(txn, sock, src, data, advance=1):
    """An answer to transaction txn on socket sock from source src."""
    flags = 0x80 | 1 | (txn << 1)
    return struct.pack("!BBBBH", flags, sock, src, advance, len(data)) + data


def raw(sock, src, data, advance=1):
    return struct.pack("!BBBBH", 0, sock, src, advance, len(data)) + data


def run(*records, lifetime=False):
    return bytes([1 if lifetime else 0]) + b"".join(records)


M, F = SOCK["MAP"], SOCK["FILT"]
first = [rec(0, M, SRV, ok(40000)), rec(1, F, SRV, ok(40002))] + \
    [rec(2 + i, 2 + i, SRV, ok(40004 + 2 * i)) for i in range(4)]
# after those: 6 HAIRPIN, 7 MAP2, 8 MAP3, 9 FILT2, 10 FILT3
hairpin = rec(6, M, SELF, msg(BINDING_REQ, []))
seeds = {
    "full_cone": run(*first, hairpin, rec(7, M, ALT_P1, ok(40000)),
                     rec(8, M, ALT_P2, ok(40000)), rec(9, F, ALT_P2, ok(40002)),
                     rec(10, F, SRV_P2, ok(40002))),
    "restricted": run(*first, rec(7, M, ALT_P1, ok(40000)),
                      rec(8, M, ALT_P2, ok(40000)), rec(10, F, SRV_P2, ok(40002))),
    "port_restricted": run(*first, rec(7, M, ALT_P1, ok(40000)),
                           rec(8, M, ALT_P2, ok(40000))),
    "symmetric": run(*first, rec(7, M, ALT_P1, ok(51000)),
                     rec(8, M, ALT_P2, ok(52000))),
    "address_dependent": run(*first, rec(7, M, ALT_P1, ok(51000)),
                             rec(8, M, ALT_P2, ok(51000))),
    "no_alt": run(*[rec(i, i, SRV, ok(40000 + 2 * i, other=False)) for i in range(6)]),
    "change_refused": run(*first, rec(9, F, SRV, err420()), rec(10, F, SRV, err420())),
    "wrong_origin": run(*first, rec(9, F, SRV, ok(40002)), rec(10, F, ELSE, ok(40002))),
    "garbage": run(raw(M, SRV, b"\x00\x01\x00\x00garbage, not STUN"),
                   raw(200, SRV, ok(40000)), raw(M, ELSE, b"")),
    "lifetime": run(*first, *[rec(6 + i, 7 + i, SRV, ok(41000 + i)) for i in range(10)],
                    rec(17, M, ALT_P1, ok(40000)), rec(18, M, ALT_P2, ok(40000)),
                    # LIFE0's probe (21), 2 s later, reaches LIFE0
                    rec(21, SOCK["LIFE0"], SRV, ok(41000), advance=255),
                    lifetime=True),
}

if __name__ == "__main__":
    write(seeds, sys.argv[1] if len(sys.argv) > 1 else
          os.path.join(os.path.dirname(__file__), "corpus", "natcheck"))
