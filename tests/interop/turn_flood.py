#!/usr/bin/env python3
"""A flood of TURN Allocate requests against `punch server -auth-secret`:
it cannot get more allocations, relayed sockets or memory than the limits.

    turn_flood.py PATH_TO_PUNCH

Server A: -relay-ports with 60 ports, -max-allocations 40,
-max-allocations-per-prefix 30, on 127.0.0.1.
  1. 3000 Allocates without credentials, each from its own 5-tuple
     (sockets cycled): every answer is 401 with a NONCE; no allocation.
  2. 3000 with a valid NONCE and a wrong password: every answer 401.
     Both twice: VmRSS is read after the first round (warm-up).
  3. 100 valid Allocates from 100 sockets on 127.0.0.1: exactly 30
     succeed, the other 70 get 486 (the /24's quota).
  4. 100 valid ones from 127.0.1.1 (another /24): exactly 10 succeed (the
     total of 40), the other 90 get 508.
  5. The server holds exactly 40 sockets in the relayed range (ss), and its
     VmRSS grew by less than RSS_LIMIT_KIB over the whole flood.
Server B: 8 relayed ports, -max-allocations 40: 8 succeed, then 508 (no
port), and 8 sockets held.
Both stop with status 0, no sanitizer report, and a relay stop line whose
allocated and quota counters match.

Traffic goes only to 127.0.0.0/8.  Every wait is bounded.
"""

import base64
import hashlib
import hmac
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stunwire as W  # noqa: E402

SECRET = b"flood-secret"
REALM = b"punch"
START_DEADLINE_S = 10
STOP_DEADLINE_S = 10
ANSWER_S = 2.0
RSS_LIMIT_KIB = int(os.environ.get("TURN_FLOOD_RSS_LIMIT_KIB", "1024"))

ALLOCATE = 0x0003
ALLOCATE_ERROR = 0x0113
ALLOCATE_SUCCESS = 0x0103
REQUESTED_TRANSPORT = 0x0019
USERNAME, REALM_ATTR, NONCE, MESSAGE_INTEGRITY = 0x0006, 0x0014, 0x0015, 0x0008


def fail(text):
    print("FAIL: " + text, file=sys.stderr)
    sys.exit(1)


def allocate(txid, user=None, password=None, nonce=None):
    """An Allocate; with credentials, signed with the long-term key."""
    attrs = W.attr(REQUESTED_TRANSPORT, b"\x11\0\0\0")
    if user is None:
        return W.message(ALLOCATE, txid, attrs)
    attrs += W.attr(USERNAME, user) + W.attr(REALM_ATTR, REALM) + W.attr(NONCE, nonce)
    key = hashlib.md5(user + b":" + REALM + b":" + password).digest()
    head = struct.pack("!HHI", ALLOCATE, len(attrs) + 24, W.MAGIC) + txid
    mac = hmac.new(key, head + attrs, hashlib.sha1).digest()
    return W.message(ALLOCATE, txid, attrs + W.attr(MESSAGE_INTEGRITY, mac))


def rest_credentials(name=b"flood"):
    user = str(int(time.time()) + 3600).encode() + b":" + name
    password = base64.b64encode(hmac.new(SECRET, user, hashlib.sha1).digest())
    return user, password


class Server:
    def __init__(self, punch, tmp, name, args):
        self.err_path = os.path.join(tmp, name + ".err")
        self.err = open(self.err_path, "w")
        # ASan's quarantine keeps freed blocks (GnuTLS's per-HMAC ones)
        # resident: small, so that VmRSS shows what the server keeps.  Each
        # thread (-threads) has a cache of its own in front of it, 1 MB by
        # default: small too.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":quarantine_size_mb=1:thread_local_quarantine_size_kb=64")
        self.proc = subprocess.Popen(
            [punch, "server", "-listen", "127.0.0.1:0", "-state",
             os.path.join(tmp, name + ".state"), "-auth-secret",
             SECRET.decode()] + args, stdout=subprocess.DEVNULL, stderr=self.err,
            env=env)
        deadline = time.monotonic() + START_DEADLINE_S
        self.port = None
        while self.port is None:
            with open(self.err_path) as f:
                m = re.search(r"listening on 127\.0\.0\.1:(\d+)\n", f.read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                fail("%s did not start: %s" % (name, open(self.err_path).read()))
            else:
                time.sleep(0.02)
        self.name = name

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))

    def relayed_sockets(self, lo, hi):
        out = subprocess.run(["ss", "-uanpH"], capture_output=True, text=True,
                             timeout=10).stdout
        n = 0
        for line in out.splitlines():
            if "pid=%d," % self.proc.pid not in line:
                continue
            port = int(line.split()[3].rsplit(":", 1)[1])
            n += lo <= port <= hi
        return n

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("%s still running after SIGTERM" % self.name)
        self.err.close()
        text = open(self.err_path).read()
        if re.search(r"Sanitizer|runtime error:", text):
            fail("%s: sanitizer report:\n%s" % (self.name, text))
        if rc != 0:
            fail("%s: exit status %d:\n%s" % (self.name, rc, text))
        m = re.search(r"^punch server: relay stopped: (.*)$", text, re.M)
        if not m:
            fail("%s: no relay stop line:\n%s" % (self.name, text))
        return dict(kv.split("=", 1) for kv in m.group(1).split())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def exchange(sock, port, data, txid):
    sock.sendto(data, ("127.0.0.1", port))
    msg, _ = W.recv_response(sock, txid, ANSWER_S)
    if msg is None:
        fail("no answer from 127.0.0.1:%d within %.1f s" % (port, ANSWER_S))
    return msg


def nonce_of(msg):
    for t, v in msg["attrs"]:
        if t == NONCE:
            return v
    fail("a 401 without NONCE")


def flood_unauthenticated(srv, count, user=None, password=None):
    """count Allocates from fresh 5-tuples: each must be answered 401."""
    nonce = None
    socks = []
    try:
        for i in range(count):
            if len(socks) < 50:
                socks.append(W.udp_socket("127.0.0.1"))
            s = socks[i % 50]
            if user is not None and nonce is None:
                txid = os.urandom(12)
                nonce = nonce_of(exchange(s, srv.port, allocate(txid), txid))
            txid = os.urandom(12)
            req = allocate(txid) if user is None else \
                allocate(txid, user, password, nonce)
            msg = exchange(s, srv.port, req, txid)
            if msg.get("error") != 401:
                fail("Allocate %d (%s): answer %s, expected 401" %
                     (i, "no credentials" if user is None else "bad password",
                      msg.get("error", "success")))
            nonce = nonce_of(msg)
            if i % 50 == 49:  # new 5-tuples: the old ones are done
                for s in socks:
                    s.close()
                socks = []
    finally:
        for s in socks:
            s.close()


def valid_allocates(srv, count, bind_ip, keep):
    """count valid Allocates from count sockets on bind_ip; the sockets
    stay open (in keep).  Returns the error codes, 0 for a success."""
    user, password = rest_credentials()
    codes = []
    for _ in range(count):
        s = W.udp_socket("127.0.0.1", bind_host=bind_ip)
        keep.append(s)
        txid = os.urandom(12)
        msg = exchange(s, srv.port, allocate(txid), txid)
        if msg.get("error") != 401:
            fail("bare Allocate: %s, expected 401" % msg.get("error"))
        txid = os.urandom(12)
        msg = exchange(s, srv.port, allocate(txid, user, password, nonce_of(msg)), txid)
        codes.append(msg.get("error", 0) if msg["type"] == ALLOCATE_ERROR else 0)
    return codes


def expect_codes(what, codes, ok, err_code):
    got_ok = codes.count(0)
    got_err = codes.count(err_code)
    if got_ok != ok or got_err != len(codes) - ok:
        fail("%s: %d successes and %d x %d of %d, expected %d and %d; codes %s" %
             (what, got_ok, got_err, err_code, len(codes), ok, len(codes) - ok,
              sorted(set(codes))))
    print("ok: %s: %d allocated, %d refused with %d" % (what, ok, len(codes) - ok, err_code))


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        fail("usage: turn_flood.py PATH_TO_PUNCH")
    punch = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="punch-turn-flood.")
    servers, keep = [], []
    lo = 20000 + (os.getpid() % 9000)
    try:
        a = Server(punch, tmp, "a", ["-relay-ports", "%d-%d" % (lo, lo + 59),
                                     "-max-allocations", "40",
                                     "-max-allocations-per-prefix", "30"])
        servers.append(a)
        user, _ = rest_credentials()
        # Warm up with one flood of each kind: the first use of each path
        # allocates for good, and ASan's allocator keeps its caches; what
        # matters is that a flood after that grows nothing.
        flood_unauthenticated(a, 3000)
        flood_unauthenticated(a, 3000, user, b"wrong-password")
        rss0 = a.rss_kib()
        flood_unauthenticated(a, 3000)
        flood_unauthenticated(a, 3000, user, b"wrong-password")
        print("ok: 12000 Allocates without valid credentials, all 401")
        expect_codes("127.0.0.1 (one /24, quota 30)",
                     valid_allocates(a, 100, "127.0.0.1", keep), 30, 486)
        expect_codes("127.0.1.1 (total 40)",
                     valid_allocates(a, 100, "127.0.1.1", keep), 10, 508)
        held = a.relayed_sockets(lo, lo + 59)
        if held != 40:
            fail("server A holds %d sockets in its relayed range, expected 40" % held)
        grown = a.rss_kib() - rss0
        if grown >= RSS_LIMIT_KIB:
            fail("server A's VmRSS grew %d KiB, limit %d" % (grown, RSS_LIMIT_KIB))
        print("ok: 40 relayed sockets held; VmRSS grew %d KiB (limit %d)" % (grown, RSS_LIMIT_KIB))
        stats = a.stop()
        if stats["allocated"] != "40" or stats["quota"] != "160" or \
                int(stats["challenges"]) < 12000:
            fail("server A's stop line: %s, expected allocated=40 quota=160 "
                 "challenges=12000 or more" % stats)

        lo2 = lo + 100
        b = Server(punch, tmp, "b", ["-relay-ports", "%d-%d" % (lo2, lo2 + 7),
                                     "-max-allocations", "40"])
        servers.append(b)
        expect_codes("8 relayed ports", valid_allocates(b, 12, "127.0.0.1", keep), 8, 508)
        held = b.relayed_sockets(lo2, lo2 + 7)
        if held != 8:
            fail("server B holds %d relayed sockets, expected 8" % held)
        stats = b.stop()
        if stats["allocated"] != "8":
            fail("server B's stop line: allocated=%s, expected 8" % stats["allocated"])
        print("PASS")
    finally:
        for s in keep:
            s.close()
        for srv in servers:
            srv.kill()
        subprocess.run(["rm", "-rf", tmp], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
