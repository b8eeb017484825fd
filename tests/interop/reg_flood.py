#!/usr/bin/env python3
"""Flood `punch server`'s rendezvous with registrations: the registry must
stay within its caps, refuse the excess with the documented errors, refuse
bad ids with a reason, and not grow.

    reg_flood.py PATH_TO_PUNCH

1. Start `punch server -listen 127.0.0.1:0 -max-peers 100`.
2. Bad ids (empty, 65 bytes, a space, invalid UTF-8, same as the peer id)
   each get 400 with the reason in the reason phrase.
3. From 127.0.0.2, 80 distinct ids: exactly 64 succeed (the per-IP cap),
   the rest get 508.  From 127.0.0.3 and .4, 40 more: exactly 36 succeed
   (the 100-entry cap), the rest get 508.
4. Then 5000 more registrations with new ids from 127.0.0.5: every one gets
   508, and VmRSS grows by less than 256 KiB.
5. A refresh of a live id still succeeds while the server is full.

Every request carries the source's NONCE (a 438 hands it out first).
Traffic goes only to 127.0.0.0/8.  Every wait has a deadline; the server is
killed on every exit path.
"""

import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stunwire as W  # noqa: E402

REGISTER = 0x007D
REGISTER_REQUEST = 0x00ED   # method 0x07D, class request (RFC 8489 5 bit layout)
NONCE = 0x0015
PUNCH_ID, PUNCH_PEER_ID, PUNCH_UFRAG, PUNCH_PWD, PUNCH_SESSION = 0x4F01, 0x4F02, 0x4F04, 0x4F05, 0x4F07
MAX_PEERS, PER_IP = 100, 64
RSS_LIMIT_KIB = 256
START_RE = re.compile(r"^punch server: listening on 127\.0\.0\.1:(\d+)$")


class Fail(Exception):
    pass


def register_msg(txid, pid, peer, nonce=None, key=None):
    """A REGISTER, signed with key (docs/protocol.md) as punch's are."""
    attrs = (W.attr(PUNCH_ID, pid) + W.attr(PUNCH_PEER_ID, peer) +
             W.attr(PUNCH_UFRAG, b"uf") + W.attr(PUNCH_PWD, b"password-password") +
             W.attr(PUNCH_SESSION, os.urandom(8)))
    if nonce:
        attrs += W.attr(NONCE, nonce)
    return W.signed_message(REGISTER_REQUEST, txid, attrs, key or W.signing_key())


class Client:
    """One source address, with the nonce the server gave it."""

    def __init__(self, src_ip, port):
        self.sock = W.udp_socket("127.0.0.1", bind_host=src_ip)
        self.dest = ("127.0.0.1", port)
        self.nonce = None
        self.key = W.signing_key()

    def register(self, pid, peer=b"somebody"):
        """Returns (error code or 0, reason)."""
        for _ in range(2):  # at most one 438 on the way
            txid = os.urandom(12)
            self.sock.sendto(register_msg(txid, pid, peer, self.nonce, self.key), self.dest)
            msg, _src = W.recv_response(self.sock, txid)
            if msg is None:
                raise Fail("no answer to REGISTER %r within %.0f s" % (pid, W.TIMEOUT_S))
            err = msg.get("error", 0)
            if err != 438:
                return err, msg.get("reason", "")
            self.nonce = dict(msg["attrs"]).get(NONCE)
            if not self.nonce:
                raise Fail("438 without a NONCE")
        raise Fail("a second 438 right after using the server's nonce")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise Fail("no VmRSS for pid %d" % pid)


def expect(what, want, seen):
    if want != seen:
        raise Fail("%s: expected %r, seen %r" % (what, want, seen))
    print("ok: %s: %r" % (what, seen))


def main(punch):
    tmp = tempfile.TemporaryDirectory()
    err_path = os.path.join(tmp.name, "server.err")
    with open(err_path, "w") as err:
        proc = subprocess.Popen([punch, "server", "-listen", "127.0.0.1:0", "-max-peers", str(MAX_PEERS),
                                 "-state", os.path.join(tmp.name, "state")],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        port = None
        end = time.monotonic() + 10
        while port is None and time.monotonic() < end:
            with open(err_path) as f:
                for line in f:
                    m = START_RE.match(line.strip())
                    port = int(m.group(1)) if m else port
            if proc.poll() is not None:
                raise Fail("server exited early: " + open(err_path).read())
            time.sleep(0.02)
        if port is None:
            raise Fail("no start line within 10 s")

        bad = Client("127.0.0.9", port)
        for pid, peer, reason in ((b"", b"bob", "id is empty"),
                                  (b"x" * 65, b"bob", "id is longer than 64 bytes"),
                                  (b"has space", b"bob", "id contains a space or control character"),
                                  (b"\xc3\x28", b"bob", "id is not valid UTF-8"),
                                  (b"same", b"same", "id and peer id are the same")):
            code, text = bad.register(pid, peer)
            expect("REGISTER id %r: error" % pid, 400, code)
            if reason not in text:
                raise Fail("REGISTER id %r: expected %r in the reason; seen %r" % (pid, reason, text))

        a = Client("127.0.0.2", port)
        results = [a.register(b"a%03d" % i)[0] for i in range(80)]
        expect("from one IP, successes", PER_IP, results.count(0))
        expect("from one IP, refusals with 508", 80 - PER_IP, results.count(508))

        rest = [Client(ip, port) for ip in ("127.0.0.3", "127.0.0.4")]
        results = [rest[i % 2].register(b"b%03d" % i)[0] for i in range(40)]
        expect("up to the cap, successes", MAX_PEERS - PER_IP, results.count(0))
        expect("past the cap, refusals with 508", 40 - (MAX_PEERS - PER_IP), results.count(508))

        flood = Client("127.0.0.5", port)
        before = rss_kib(proc.pid)
        codes = {}
        for i in range(5000):
            code, _ = flood.register(b"f%05d" % i)
            codes[code] = codes.get(code, 0) + 1
        growth = rss_kib(proc.pid) - before
        expect("5000 registrations on a full server, answers by code", {508: 5000}, codes)
        if growth >= RSS_LIMIT_KIB:
            raise Fail("VmRSS grew by %d KiB during the flood; expected less than %d" % (growth, RSS_LIMIT_KIB))
        print("ok: VmRSS grew by %d KiB" % growth)

        expect("a refresh of a live id on a full server", 0, a.register(b"a000")[0])

        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=10)
        expect("server exit status", 0, rc)
        text = open(err_path).read()
        if "Sanitizer" in text or "runtime error" in text:
            raise Fail("sanitizer report:\n" + text)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Fail as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
