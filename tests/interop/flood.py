#!/usr/bin/env python3
"""Flood `punch server` with malformed datagrams; it must drop and count each
one, keep answering valid requests correctly, not grow, and report the exact
count when stopped.

    flood.py PATH_TO_PUNCH [--rounds N] [--seed S]

1. Start `punch server -listen 127.0.0.1:0`; read the port from the start
   line (polled, bounded).
2. Warm up with valid Binding requests, then read VmRSS.
3. Rounds: a small batch of malformed datagrams (every kind below, rotating
   through its variants; a 65507-byte one every few rounds), then one valid
   Binding request.  The server reads its socket in order, so its answer
   proves the batch was processed; the answer is decoded here and must be a
   Binding success with our transaction id, XOR-MAPPED-ADDRESS equal to our
   own address and port, a correct FINGERPRINT, and at most 4x the request's
   size.  Any other datagram (an answer to junk) fails the test.
4. VmRSS must have grown less than FLOOD_RSS_LIMIT_KIB (default 512).
5. The kernel must not have dropped anything at the server's socket (checked
   in /proc/net/udp), else the counts below would prove nothing.
6. SIGTERM: exit status 0 within 10 s, exactly two lines on stderr (start and
   stop), no sanitizer report, and the stop line's counters exactly
   answered = valid requests sent, errors = 0, malformed = malformed sent.
   On a malformed mismatch, each kind is replayed against a fresh server to
   say which kinds are miscounted.

Traffic goes only to 127.0.0.1.  Every wait has a deadline; the server is
killed on every exit path.
"""

import argparse
import atexit
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stunwire as W  # noqa: E402

START_DEADLINE_S = 10
STOP_DEADLINE_S = 10
ANSWER_DEADLINE_S = 2.0
WARMUP_REQUESTS = 300
JUNK_EVERY = 4           # rounds between 64 KiB datagrams (one at a time)
MAX_UDP_V4 = 65507
RSS_LIMIT_KIB = int(os.environ.get("FLOOD_RSS_LIMIT_KIB", "512"))

START_RE = re.compile(r"^punch server: listening on 127\.0\.0\.1:(\d+)$")
STOP_RE = re.compile(r"^punch server: stopped: answered=(\d+) challenges=0 refused=0 errors=(\d+) malformed=(\d+)$")
SANITIZER_RE = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|runtime error:")


class TestFailure(Exception):
    pass


# ------------------------------------------------------------ the server

def die_with_parent():
    """In the child before exec: SIGTERM when we die, even by SIGKILL (a
    ctest time out), so that no server outlives the test."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # best effort; atexit and the finally clause cover the rest


class Server:
    """One `punch server` process with stderr in a file."""

    live = []

    def __init__(self, punch, tmpdir, name):
        self.err_path = os.path.join(tmpdir, name + ".err")
        self.err = open(self.err_path, "w+")
        self.proc = subprocess.Popen([punch, "server", "-listen", "127.0.0.1:0",
                                      "-state", os.path.join(tmpdir, name + ".state")],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err, preexec_fn=die_with_parent)
        Server.live.append(self)
        self.port = self._await_start()

    def stderr_text(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def _await_start(self):
        end = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < end:
            for line in self.stderr_text().splitlines():
                if line.startswith("punch server: listening on "):
                    m = START_RE.match(line)
                    if not m or int(m.group(1)) == 0:
                        raise TestFailure("start line %r, expected 'punch server: listening on "
                                          "127.0.0.1:N' with the port the kernel picked" % line)
                    return int(m.group(1))
            if self.proc.poll() is not None:
                raise TestFailure("punch server exited with status %d before its start line; stderr:\n%s"
                                  % (self.proc.returncode, indent(self.stderr_text())))
            time.sleep(0.02)
        raise TestFailure("no start line on stderr within %d s; stderr:\n%s"
                          % (START_DEADLINE_S, indent(self.stderr_text())))

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise TestFailure("no VmRSS in /proc/%d/status" % self.proc.pid)

    def socket_drops(self):
        """The kernel's drop counter for the server's socket (/proc/net/udp,
        last column), or None if the socket is not found."""
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local = fields[1]
                if local == "0100007F:%04X" % self.port:
                    return int(fields[-1])
        return None

    def stop(self):
        """SIGTERM and the checks on exit.  Returns (answered, errors,
        malformed)."""
        if self.proc.poll() is not None:
            raise TestFailure("punch server died (status %d) before SIGTERM; stderr:\n%s"
                              % (self.proc.returncode, indent(self.stderr_text())))
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            raise TestFailure("punch server still running %d s after SIGTERM" % STOP_DEADLINE_S)
        text = self.stderr_text()
        if SANITIZER_RE.search(text):
            raise TestFailure("sanitizer report on the server's stderr:\n" + indent(text))
        if rc != 0:
            raise TestFailure("exit status %d after SIGTERM, expected 0; stderr:\n%s" % (rc, indent(text)))
        lines = text.splitlines()
        if len(lines) != 2:
            raise TestFailure("%d lines on stderr, expected exactly 2 (start and stop; malformed "
                              "input is logged only with -v):\n%s" % (len(lines), indent(text, 40)))
        m = STOP_RE.match(lines[1])
        if not m:
            raise TestFailure("stop line %r, expected 'punch server: stopped: answered=N challenges=0 "
                              "refused=0 errors=N malformed=N'" % lines[1])
        return tuple(int(x) for x in m.groups())

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.err.close()


def indent(text, max_lines=None):
    lines = text.splitlines()
    if max_lines and len(lines) > max_lines:
        lines = lines[:max_lines] + ["... (%d more lines)" % (len(lines) - max_lines)]
    return "\n".join("    | " + x for x in lines)


def kill_all():
    for s in Server.live:
        s.kill()


# ------------------------------------------------------------ the client

class Client:
    def __init__(self, port):
        self.dest = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.me = self.sock.getsockname()
        self.valid_sent = 0
        self.malformed_sent = 0

    def send_malformed(self, data):
        self.sock.sendto(data, self.dest)
        self.malformed_sent += 1

    def binding(self, variant):
        """One valid Binding request and its checked answer."""
        attrs = b""
        fingerprint = variant % 2 == 0
        if variant % 3 == 1:
            attrs += W.attr(W.SOFTWARE, b"flood.py")
        if variant % 5 == 2:
            attrs += W.attr(0xC0DE, b"comprehension-optional, unknown")  # must be ignored
        txid, req = W.binding_request(attrs=attrs, fingerprint=fingerprint)
        self.sock.sendto(req, self.dest)
        self.valid_sent += 1
        end = time.monotonic() + ANSWER_DEADLINE_S
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TestFailure("no answer to a valid %d-byte Binding request within %.0f s "
                                  "(the server stopped answering)" % (len(req), ANSWER_DEADLINE_S))
            self.sock.settimeout(left)
            try:
                data, src = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            try:
                msg = W.decode(data)
            except W.Malformed as e:
                raise TestFailure("the server sent a malformed datagram (%s): %s" % (e, data[:64].hex()))
            if msg["txid"] != txid:
                raise TestFailure("unexpected datagram from the server, type 0x%04x, txid %s, while "
                                  "waiting for txid %s: it answered something it should have dropped"
                                  % (msg["type"], msg["txid"].hex(), txid.hex()))
            problems = W.check_success(msg, src[:2], self.sock, len(req), want_origin=self.dest)
            if problems:
                raise TestFailure("answer to a valid %d-byte Binding request: %s"
                                  % (len(req), "; ".join(problems)))
            return


# ------------------------------------------------------------ malformed input

def good_request(rng, fingerprint=True):
    attrs = W.attr(W.SOFTWARE, b"x" * rng.randrange(1, 9))
    return W.binding_request(attrs=attrs, fingerprint=fingerprint)[1]


def header(mtype, length, cookie=W.MAGIC, txid=None):
    return struct.pack("!HHI", mtype, length, cookie) + (txid or os.urandom(12))


def kind_truncated(rng, i):
    """0..19 bytes of a real request (0 is an empty datagram)."""
    return good_request(rng)[:i % 20]


def kind_length(rng, i):
    """A good header whose length field lies."""
    body = W.attr(W.SOFTWARE, b"abcdefgh")        # 12 bytes
    v = i % 5
    if v == 0:   # not a multiple of 4, and matching the datagram
        return header(W.BINDING_REQUEST, 6) + b"\x80\x22\x00\x02ab"
    if v == 1:   # longer than the datagram
        return header(W.BINDING_REQUEST, len(body) + 4) + body
    if v == 2:   # shorter than the datagram (trailing bytes)
        return header(W.BINDING_REQUEST, len(body) - 4) + body
    if v == 3:   # zero, with attributes following
        return header(W.BINDING_REQUEST, 0) + body
    return header(W.BINDING_REQUEST, 0xFFFC) + body  # wildly longer


def kind_cookie(rng, i):
    """No magic cookie, so an RFC 3489 message, but not a Binding request
    (Shared Secret request, Binding response, Binding error response): the
    server answers only classic Binding requests."""
    req = bytearray(good_request(rng, fingerprint=i % 2 == 0))
    req[4 + i % 4] ^= 1 << (i % 8)
    req[0:2] = struct.pack("!H", (0x0002, 0x0101, 0x0111)[i % 3])
    return bytes(req)


def kind_top_bits(rng, i):
    req = bytearray(good_request(rng, fingerprint=False))
    req[0] |= (0x40, 0x80, 0xC0)[i % 3]
    return bytes(req)


def kind_attr_overrun(rng, i):
    """An attribute whose length runs past the end of the message."""
    v = i % 3
    if v == 0:
        body = struct.pack("!HH", W.SOFTWARE, 0x0100) + b"abcd"
    elif v == 1:
        body = W.attr(W.SOFTWARE, b"ok") + struct.pack("!HH", W.XOR_MAPPED_ADDRESS, 8) + b"\0\1\2\3"
    else:
        body = struct.pack("!HH", W.FINGERPRINT, 0xFFFF) + b"\0" * 4
    return header(W.BINDING_REQUEST, len(body)) + body


def kind_attr_header_truncated(rng, i):
    """The attribute list ends inside an attribute header (so the length
    is necessarily not a multiple of 4)."""
    n = 1 + i % 3
    body = (W.attr(W.SOFTWARE, b"abcd") if i % 2 else b"") + b"\x80\x22\x00"[:n]
    return header(W.BINDING_REQUEST, len(body)) + body


def kind_bad_fingerprint(rng, i):
    """A valid-looking Binding request whose FINGERPRINT is wrong."""
    txid = os.urandom(12)
    good = W.message(W.BINDING_REQUEST, txid, W.attr(W.SOFTWARE, b"fp"))
    right = struct.unpack("!I", good[-4:])[0]
    wrong = right ^ (1 << (i % 32))
    return W.message(W.BINDING_REQUEST, txid, W.attr(W.SOFTWARE, b"fp"), fp_value=wrong)


def kind_junk64k(rng, i):
    """65507 random bytes, made sure not to carry the magic cookie."""
    data = bytearray(rng.randbytes(MAX_UDP_V4))
    if data[4:8] == struct.pack("!I", W.MAGIC):
        data[4] ^= 0xFF
    return bytes(data)


SMALL_KINDS = [
    ("truncated header (0..19 bytes)", kind_truncated, 20),
    ("length field wrong", kind_length, 5),
    ("bad magic cookie", kind_cookie, 8),
    ("top two bits set", kind_top_bits, 3),
    ("attribute runs past the end", kind_attr_overrun, 3),
    ("truncated attribute header", kind_attr_header_truncated, 6),
    ("wrong FINGERPRINT", kind_bad_fingerprint, 32),
]
BIG_KIND = ("65507 bytes of junk", kind_junk64k, 2)
ALL_KINDS = SMALL_KINDS + [BIG_KIND]


def self_check(rng):
    """Our malformed datagrams must be malformed by our own strict decoder,
    and our valid ones valid; else the test would be wrong, not the server."""
    for name, make, variants in ALL_KINDS:
        for i in range(variants):
            data = make(rng, i)
            try:
                W.decode(data)
            except W.Malformed:
                continue
            raise TestFailure("test bug: %s variant %d decodes as valid" % (name, i))
    W.decode(good_request(rng))


# ------------------------------------------------------------ the test

def flood(punch, tmpdir, rounds, rng):
    server = Server(punch, tmpdir, "flood")
    client = Client(server.port)
    print("server on 127.0.0.1:%d, pid %d; client %s" % (server.port, server.proc.pid, W.fmt(client.me)))

    for n in range(WARMUP_REQUESTS):
        client.binding(n)
    rss0 = server.rss_kib()
    print("after %d valid requests: VmRSS %d KiB" % (WARMUP_REQUESTS, rss0))

    counters = {name: 0 for name, _, _ in ALL_KINDS}
    for r in range(rounds):
        for name, make, variants in SMALL_KINDS:
            # two of each kind a round, rotating through the variants
            for j in range(2):
                client.send_malformed(make(rng, 2 * r + j))
                counters[name] += 1
        if r % JUNK_EVERY == 0:
            name, make, _ = BIG_KIND
            client.send_malformed(make(rng, r))
            counters[name] += 1
        client.binding(r)
        if r == rounds // 2:
            print("half way: %d malformed sent, VmRSS %d KiB" % (client.malformed_sent, server.rss_kib()))
    rss1 = server.rss_kib()
    grown = rss1 - rss0
    print("malformed sent: %d (%s)" % (client.malformed_sent,
                                       ", ".join("%s %d" % (k, v) for k, v in counters.items())))
    print("valid requests answered and checked: %d" % client.valid_sent)
    print("VmRSS %d KiB -> %d KiB (%+d KiB, limit %d)" % (rss0, rss1, grown, RSS_LIMIT_KIB))

    drops = server.socket_drops()
    if drops is None:
        raise TestFailure("server socket 127.0.0.1:%d not found in /proc/net/udp" % server.port)
    if drops:
        raise TestFailure("the kernel dropped %d datagrams at the server's socket (receive buffer "
                          "full): the batches are too big for this machine, the counts prove nothing"
                          % drops)
    answered, errors, malformed = server.stop()
    print("stop line: answered=%d errors=%d malformed=%d" % (answered, errors, malformed))

    problems = []
    if grown >= RSS_LIMIT_KIB:
        problems.append("VmRSS grew by %d KiB during the flood, expected less than %d KiB"
                        % (grown, RSS_LIMIT_KIB))
    if answered != client.valid_sent:
        problems.append("answered=%d, expected %d (the valid requests sent)" % (answered, client.valid_sent))
    if errors != 0:
        problems.append("errors=%d, expected 0 (no request here deserves an error response)" % errors)
    if malformed != client.malformed_sent:
        problems.append("malformed=%d, expected %d (the malformed datagrams sent)"
                        % (malformed, client.malformed_sent))
    return problems, malformed != client.malformed_sent


def per_kind(punch, tmpdir, rng):
    """Replay each kind, every variant once, against its own fresh server,
    and say which kinds are miscounted."""
    lines = []
    for name, make, variants in ALL_KINDS:
        server = Server(punch, tmpdir, "kind")
        client = Client(server.port)
        for i in range(variants):
            client.send_malformed(make(rng, i))
            client.binding(i)
        answered, errors, malformed = server.stop()
        Server.live.remove(server)
        server.kill()
        verdict = "ok" if (malformed, errors) == (variants, 0) else "MISCOUNTED"
        lines.append("  %-32s sent %2d, counted malformed=%d errors=%d  %s"
                     % (name, variants, malformed, errors, verdict))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("punch")
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FLOOD_SEED", "0")) or None)
    args = ap.parse_args()
    if not os.access(args.punch, os.X_OK):
        print("FAIL: %s is not an executable" % args.punch, file=sys.stderr)
        return 1
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print("seed %d (FLOOD_SEED=%d reproduces the junk)" % (seed, seed))
    rng = random.Random(seed)

    atexit.register(kill_all)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="punch-flood.") as tmpdir:
        try:
            self_check(rng)
            problems, miscounted = flood(args.punch, tmpdir, args.rounds, rng)
            if miscounted:
                problems.append("per kind, each against a fresh server:\n" +
                                "\n".join(per_kind(args.punch, tmpdir, rng)))
        except TestFailure as e:
            problems = [str(e)]
        finally:
            kill_all()
    if problems:
        print("FAIL: " + "\nFAIL: ".join(problems), file=sys.stderr)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
