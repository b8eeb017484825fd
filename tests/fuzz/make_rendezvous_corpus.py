#!/usr/bin/env python3
"""Write the seed corpus for fuzz_rendezvous: REGISTER requests (good and
bad), PEER-INFO requests and answers, connectivity checks and their
answers, and the server's answers to REGISTER.

fuzz_rendezvous.c reads two bytes of the transaction id: byte 10 picks how
the client side is set up (bit 0 controlling, 1 connected, 2 rendezvous
client discovering rather than registering, 3
behind a NAT, 4 a consent check in flight, 5-7 which address the message
comes from), and byte 11 which outstanding transaction a response answers
(its high bit: none; bit 6: keep the input's MACs rather than sign it with
the right key).  The client side's ids and ufrags below are the
harness's.  Run it again only when the protocol changes; the output is
committed so that every test run replays the same inputs."""
import hashlib
import os
import struct
import sys

from make_corpus import COOKIE, addr, attr, msg, write

# Message types: method bits interleaved with the class (RFC 8489 5).
BINDING_REQ, BINDING_OK, BINDING_ERR = 0x0001, 0x0101, 0x0111
REGISTER_REQ, REGISTER_OK, REGISTER_ERR = 0x00ED, 0x01ED, 0x01FD
PEER_INFO_REQ, PEER_INFO_OK, PEER_INFO_ERR = 0x00EE, 0x01EE, 0x01FE
RELEASE_REQ, RELEASE_OK, RELEASE_ERR = 0x00EF, 0x01EF, 0x01FF
RENEW_REQ, RENEW_OK, RENEW_ERR = 0x00EC, 0x01EC, 0x01FC
RENEW_SEQ, RENEW_KEY = 0x4F0E, 0xCF03
DATA_REQ = RELEASE_REQ  # the retired DATA method's number is RELEASE's now

ID, PEER_ID, CANDIDATE, UFRAG, PWD, KEY_FP, SESSION = range(0x4F01, 0x4F08)
NAT = 0xCF02  # PUNCH-NAT: mapping, ports, delta
LIFETIME, STATUS, OBSERVED, PUBKEY, SIGNATURE, SERVER_KEY = range(0x4F08, 0x4F0E)
DATA, SEQ = PUBKEY, SIGNATURE  # retired numbers, taken again
USERNAME, NONCE, PRIORITY, USE_CANDIDATE = 0x0006, 0x0015, 0x0024, 0x0025
ICE_CONTROLLED, ICE_CONTROLLING, ERROR_CODE = 0x8029, 0x802A, 0x0009
XOR_MAPPED = 0x0020

SHA1 = (hashlib.sha1, 20, 0x0008)
SHA256 = (hashlib.sha256, 32, 0x001C)

V4 = bytes([192, 0, 2, 1])
V6 = bytes.fromhex("20010db8000000000000000000000002")


def txid(mode=0, sel=0x80):
    return b"punchseed." + bytes([mode, sel])


def candidate(kind, fam, port, ip, prio, t):
    """PUNCH-CANDIDATE: type, family, X-port, priority, X-address."""
    mask = struct.pack("!I", COOKIE) + t
    xip = bytes(a ^ b for a, b in zip(ip, mask))
    return attr(CANDIDATE, struct.pack("!BBHI", kind, fam,
                                       port ^ (COOKIE >> 16), prio) + xip)


def peer(t, id_, peer_id=None, session=1, cands=True, extra=()):
    attrs = [attr(ID, id_)]
    if peer_id is not None:
        attrs.append(attr(PEER_ID, peer_id))
    attrs += [attr(UFRAG, b"pf"), attr(PWD, b"fuzz-peer-password"),
              attr(SESSION, struct.pack("!Q", session))]
    if cands:
        attrs += [candidate(1, 1, 5000, bytes([10, 0, 0, 2]), 0x7EFFFEFF, t),
                  candidate(1, 2, 5000, V6, 0x7EFFFFFF, t),
                  candidate(2, 1, 6000, bytes([203, 0, 113, 2]), 0x64FFFFFF, t)]
    return attrs + list(extra)


def register(name, id_, peer_id, extra=(), session=1, **kw):
    t = txid(**kw)
    return name, msg(REGISTER_REQ, peer(t, id_, peer_id, session,
                                        extra=extra), txid=t)


def error(code, reason):
    return attr(ERROR_CODE, struct.pack("!HBB", 0, code // 100, code % 100)
                + reason)


def check(mode, extra=(), user=b"fz:pf", integrity=SHA1, role=ICE_CONTROLLING):
    t = txid(mode)
    attrs = [attr(USERNAME, user), attr(PRIORITY, struct.pack("!I", 0x6EFFFEFF)),
             attr(role, struct.pack("!Q", 0x1122334455667788))] + list(extra)
    return msg(BINDING_REQ, attrs, integrity=integrity, txid=t)


def data(mode, seq, text):
    t = txid(mode)
    return msg(DATA_REQ, [attr(USERNAME, b"fz:pf"), attr(SEQ, struct.pack("!I", seq)),
                          attr(DATA, text)], integrity=SHA1, txid=t)


def response(mtype, mode, sel, attrs=(), integrity=SHA1):
    t = txid(mode, sel)
    return msg(mtype, list(attrs), integrity=integrity, txid=t)


def peer_info(mode, id_=b"pf-id", session=9, extra=()):
    t = txid(mode)
    return msg(PEER_INFO_REQ, peer(t, id_, None, session, extra=[
        addr(OBSERVED, 1, 6001, bytes([203, 0, 113, 2]), xor=True, txid=t)]
        + list(extra)), txid=t)


def signed(mtype, attrs, seed, key_attr=PUBKEY, t=None, after=()):
    """attrs, then the key, the Ed25519 signature (docs/protocol.md) and
    FINGERPRINT; `after` goes between the signature and FINGERPRINT (not
    covered: refused).  Ed25519 is deterministic, so the seeds are too.
    Needs python3-nacl (scripts/deps.sh)."""
    import nacl.signing
    key = nacl.signing.SigningKey(bytes([seed]) * 32)
    t = t or txid()
    body = b"".join(attrs) + attr(key_attr, bytes(key.verify_key))
    hdr = struct.pack("!HHI", mtype, len(body) + 4 + 64, COOKIE) + t
    sig = key.sign(b"punch-rendezvous-v1" + hdr + body).signature
    return msg(mtype, [body, attr(SIGNATURE, sig)] + list(after), txid=t)


# Lines of the server's id_bindings and the client's known_servers, read
# by the harness whatever the input is.
BINDINGS = (b"# punch server: id bindings (fingerprint, last use, id)\n"
            b"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 1764000000 alice\n"
            b"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 18446744073709551615 #bob\n"
            b"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 1 \xe3\x82\xa2\r\n"
            b"SHA256:short 1 carol\n\n")
KNOWN_SERVERS = (b"# known_servers\n"
                 b"198.51.100.50:3478 SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"
                 b"[2001:db8::1]:3478\tSHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 \n"
                 b"broken.example:1 SHA256:\n")

# The harness's client has 4 candidate pairs (targets 0-3); then come the
# consent check (mode bits 1 and 4) and the rendezvous client's request, in
# that order.
PAIR0, PAIRS = 0, 4
seeds = dict([
    register("register", b"alice", b"bob"),
    register("register_key", b"alice", b"bob", extra=[attr(KEY_FP, bytes(range(32)))]),
    register("register_stale_nonce", b"alice", b"bob",
             extra=[attr(NONCE, b"00000000" + b"0" * 24)]),
    register("register_observed", b"alice", b"bob",
             extra=[addr(OBSERVED, 1, 1, V4, xor=True, txid=txid())]),
    register("register_same_id", b"alice", b"alice"),
    register("register_no_peer", b"alice", None),
    register("register_empty_peer", b"alice", b""),
    register("register_overlong_utf8", b"\xc0\xafalice", b"bob"),
    register("register_surrogate", b"\xed\xa0\x80", b"bob"),
    register("register_space", b"al ice", b"bob"),
    register("register_long_id", b"x" * 65, b"bob"),
    register("register_utf8_ids", "アリス".encode(), "ボブ".encode()),
    register("register_unknown_attr", b"alice", b"bob", extra=[attr(0x7ABC, b"?")]),
    register("register_bad_candidate", b"alice", b"bob",
             extra=[attr(CANDIDATE, b"\x09\x01" + b"\0" * 10)]),
    register("register_13_candidates", b"alice", b"bob",
             extra=[candidate(1, 1, 7000 + i, V4, i, txid()) for i in range(10)]),
    register("register_short_session", b"alice", b"bob",
             extra=[attr(SESSION, b"\1\2\3\4")]),
    ("register_bare", msg(REGISTER_REQ, [], fingerprint=False, txid=txid())),
    ("register_indication", msg(0x00FD, [], txid=txid())),
    register("register_nat", b"alice", b"bob",
             extra=[attr(NAT, b"\x02\x03\xff\xfe")]),
    register("register_nat_short", b"alice", b"bob", extra=[attr(NAT, b"\x01\x01")]),
    register("register_nat_mapping_unknown", b"alice", b"bob",
             extra=[attr(NAT, b"\x00\x03\x12\x34")]),
    register("register_nat_unknown_value", b"alice", b"bob",
             extra=[attr(NAT, b"\x07\x00\x00\x00")]),
    ("peer_info_nat", peer_info(0, extra=[attr(NAT, b"\x01\x01\x00\x00")])),
    ("peer_info", peer_info(0)),
    ("peer_info_connected", peer_info(2)),
    ("peer_info_same_session", peer_info(0, session=7)),
    ("peer_info_someone_else", peer_info(0, id_=b"mallory")),
    ("peer_info_key", peer_info(4, extra=[attr(KEY_FP, b"k" * 32)])),
    ("peer_info_ok", response(PEER_INFO_OK, 0, 0x80, integrity=None)),
    ("peer_info_error", response(PEER_INFO_ERR, 0, 0x80,
                                 [error(400, b"Bad Request")], integrity=None)),
    ("check", check(0)),
    ("check_use_candidate", check(0, [attr(USE_CANDIDATE, b"")])),
    ("check_use_candidate_connected", check(2, [attr(USE_CANDIDATE, b"")])),
    ("check_to_controlling", check(1, role=ICE_CONTROLLED)),
    ("check_prflx", check(0x20)),
    ("check_prflx_v6", check(0x60)),
    ("check_sha256", check(0, integrity=SHA256)),
    ("check_natted", check(0x08)),
    ("check_wrong_user", check(0, user=b"xx:pf")),
    ("check_no_integrity", check(0, integrity=None)),
    ("check_unsigned", msg(BINDING_REQ, [attr(USERNAME, b"fz:pf")], integrity=SHA1,
                           txid=txid(0, 0xC0))),
    ("check_success", response(BINDING_OK, 0, PAIR0,
                               [addr(XOR_MAPPED, 1, 5000, V4, xor=True,
                                     txid=txid(0, PAIR0))])),
    ("check_success_pair3", response(BINDING_OK, 1, 3)),
    ("check_error_487", response(BINDING_ERR, 0, 1, [error(487, b"Role Conflict")])),
    ("consent_success", response(BINDING_OK, 0x12, PAIRS)),
    ("consent_wrong_key", response(BINDING_OK, 0x12, PAIRS, integrity=SHA256)),
    ("binding_success_discovering", response(BINDING_OK, 0x04, PAIRS,
        [addr(XOR_MAPPED, 1, 40000, V4, xor=True, txid=txid(0x04, PAIRS))],
        integrity=None)),
    # DATA (the old chat) is no longer answered by anyone
    ("data", data(2, 0, b"hello")),
    ("register_success", response(REGISTER_OK, 0, PAIRS,
        [addr(XOR_MAPPED, 1, 40000, V4, xor=True, txid=txid(0, PAIRS)),
         attr(STATUS, struct.pack("!I", 1)), attr(LIFETIME, struct.pack("!I", 30))],
        integrity=None)),
    ("register_success_short_life", response(REGISTER_OK, 0, PAIRS,
        [attr(LIFETIME, struct.pack("!I", 0))], integrity=None)),
    ("register_438", response(REGISTER_ERR, 0, PAIRS,
        [error(438, b"Stale Nonce"), attr(NONCE, b"0000000a" + b"f" * 24)],
        integrity=None)),
    ("register_438_long_nonce", response(REGISTER_ERR, 0, PAIRS,
        [error(438, b"Stale Nonce"), attr(NONCE, b"n" * 100)], integrity=None)),
    ("register_400", response(REGISTER_ERR, 0, PAIRS,
        [error(400, b"Bad Request: id is empty")], integrity=None)),
    ("register_508", response(REGISTER_ERR, 0x12, PAIRS + 1,
        [error(508, b"Insufficient Capacity: server is full")], integrity=None)),
])
# Signed: as clients sign REGISTER and RELEASE (the harness's client key is
# seed 0xC1, the server key its client trusts 0x5E).
seeds["register_signed"] = signed(REGISTER_REQ, peer(txid(), b"alice", b"bob"), 0xC1)
seeds["register_signed_nonce"] = signed(REGISTER_REQ, peer(txid(), b"alice", b"bob")
                                        + [attr(NONCE, b"00000000" + b"0" * 24)], 0xC1)
seeds["register_signed_then_attr"] = signed(REGISTER_REQ, peer(txid(), b"alice", b"bob"),
                                            0xC1, after=[attr(ID, b"mallory")])
seeds["register_signed_fp_id"] = signed(
    REGISTER_REQ, peer(txid(), b"SHA256:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", b"bob"),
    0xC1)
seeds["release"] = signed(RELEASE_REQ, [attr(ID, b"alice")], 0xC1)
seeds["release_no_id"] = signed(RELEASE_REQ, [], 0xC1)
seeds["peer_info_server_signed"] = signed(PEER_INFO_REQ, peer(txid(), b"pf-id"), 0x5E,
                                          key_attr=SERVER_KEY)
seeds["peer_info_other_key"] = signed(PEER_INFO_REQ, peer(txid(), b"pf-id"), 0x66,
                                      key_attr=SERVER_KEY, t=txid(0, 0xC0))
seeds["register_success_signed"] = signed(
    REGISTER_OK, [attr(STATUS, struct.pack("!I", 0)), attr(LIFETIME, struct.pack("!I", 30))],
    0x5E, key_attr=SERVER_KEY, t=txid(0, PAIRS | 0x40))
# RENEW (docs/protocol.md): MAC'd, not signed; and the key that allows it.
seeds["renew"] = msg(RENEW_REQ, [attr(ID, b"alice"), attr(SESSION, struct.pack("!Q", 1)),
                                 attr(RENEW_SEQ, struct.pack("!I", 1))],
                     integrity=SHA256, txid=txid())
seeds["renew_no_seq"] = msg(RENEW_REQ, [attr(ID, b"alice"), attr(SESSION, struct.pack("!Q", 1))],
                            integrity=SHA256, txid=txid())
seeds["renew_no_mac"] = msg(RENEW_REQ, [attr(ID, b"alice"), attr(SESSION, struct.pack("!Q", 1)),
                                        attr(RENEW_SEQ, struct.pack("!I", 7))], txid=txid())
seeds["renew_success"] = response(RENEW_OK, 0, PAIRS, [
    addr(XOR_MAPPED, 1, 40000, V4, xor=True, txid=txid(0, PAIRS)),
    attr(STATUS, struct.pack("!I", 0)), attr(LIFETIME, struct.pack("!I", 30))],
    integrity=SHA256)
seeds["renew_401"] = response(RENEW_ERR, 0, PAIRS, [error(401, b"Unauthorized: bad MAC")],
                              integrity=None)
seeds["register_success_renew_key"] = signed(
    REGISTER_OK, [attr(STATUS, struct.pack("!I", 0)), attr(LIFETIME, struct.pack("!I", 30)),
                  attr(RENEW_KEY, bytes(range(32)))],
    0x5E, key_attr=SERVER_KEY, t=txid(0, PAIRS | 0x40))
seeds["register_success_short_renew_key"] = signed(
    REGISTER_OK, [attr(RENEW_KEY, b"short")], 0x5E, key_attr=SERVER_KEY, t=txid(0, PAIRS | 0x40))
seeds["lines_id_bindings"] = BINDINGS
seeds["lines_known_servers"] = KNOWN_SERVERS
# Broken on purpose.
seeds["register_truncated"] = seeds["register"][:37]
seeds["register_bad_fingerprint"] = seeds["register"][:-1] + bytes(
    [seeds["register"][-1] ^ 1])

if __name__ == "__main__":
    write(seeds, sys.argv[1] if len(sys.argv) > 1 else
          os.path.join(os.path.dirname(__file__), "corpus", "rendezvous"))
