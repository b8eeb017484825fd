#!/usr/bin/env python3
"""`punch server -metrics`: the counters move by what was sent, and the
text is Prometheus's.

    metrics.py PATH_TO_PUNCH

1. Flags: -metrics on an address other than loopback is refused without
   -metrics-public; -metrics-public alone is refused.
2. Start `punch server -listen 127.0.0.1:0 -metrics 127.0.0.1:0 -state
   DIR` (both ports the kernel's pick, read from the start lines), and
   scrape /metrics before any traffic.
3. Send 3 Binding requests, one with an unknown comprehension-required
   attribute (420), one datagram that is not STUN, then signed REGISTERs
   from alice (looking for bob) and bob (looking for alice), each a 438
   then a success, so the two are introduced; PEER-INFO goes
   unacknowledged, so it is retransmitted; then a signed RELEASE of bob.
4. Scrape again: every counter moved by exactly what was sent (PEER-INFO
   retransmissions: at least one), the gauges hold what is live.
5. POST /metrics is 405 with Allow, GET /other 404, HEAD /metrics 200.
6. The text parses: every sample after its family's HELP and TYPE, every
   name punch_*, and, where Debian's python3-prometheus-client is
   installed, its parser reads the same samples.
   All this while another connection holds a half-sent HTTP request:
   MHD runs on the server's loop and must not wait for it.
7. SIGTERM: exit 0, no sanitizer report.
8. A second server with the relay (-auth-secret): an Allocate without
   credentials (401), one with them (ok), a permission for a peer
   socket, 5 bytes sent to the peer and 7 back, a datagram from a peer
   without a permission: the relay's counters move by exactly that.

Traffic stays on 127.0.0.1.  Every wait has a deadline; the server is
killed on every exit path.
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
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stunwire as W  # noqa: E402

REGISTER_REQUEST = 0x00ED  # method 0x07D, class request
RELEASE_REQUEST = 0x00EF   # method 0x07F, class request
NONCE = 0x0015
P_ID, P_PEER_ID, P_UFRAG, P_PWD, P_SESSION = 0x4F01, 0x4F02, 0x4F04, 0x4F05, 0x4F07
UNKNOWN_REQUIRED = 0x7FFF  # comprehension-required, unknown: 420
LISTEN_RE = re.compile(r"^punch server: listening on 127\.0\.0\.1:(\d+)$")
METRICS_RE = re.compile(r"^punch server: metrics on http://127\.0\.0\.1:(\d+)/metrics$")
SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? '
                       r'(\d+(\.\d+)?)$')


SECRET = b"metrics-secret"
REALM = b"punch"
ALLOCATE, CREATE_PERMISSION, SEND_INDICATION = 0x0003, 0x0008, 0x0016
DATA_INDICATION = 0x0017
REQUESTED_TRANSPORT, USERNAME, REALM_ATTR, MESSAGE_INTEGRITY = 0x0019, 0x0006, 0x0014, 0x0008
XOR_PEER_ADDRESS, DATA, XOR_RELAYED_ADDRESS = 0x0012, 0x0013, 0x0016


class Fail(Exception):
    pass


def ok(what):
    print("ok: " + what)


def expect(what, want, seen):
    if want != seen:
        raise Fail("%s: expected %r, seen %r" % (what, want, seen))
    ok("%s: %r" % (what, seen))


class Client:
    """One UDP socket of a rendezvous client, with the server's nonce."""

    def __init__(self, port):
        self.sock = W.udp_socket("127.0.0.1")
        self.dest = ("127.0.0.1", port)
        self.key = W.signing_key()
        self.nonce = None

    def answer(self, txid):
        """The response to txid; anything else (PEER-INFO) is left
        unanswered, so the server retransmits it."""
        end = time.monotonic() + W.TIMEOUT_S
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise Fail("no answer from the server within %.0f s" % W.TIMEOUT_S)
            self.sock.settimeout(left)
            try:
                data, _ = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            msg = W.decode(data)
            if msg["txid"] == txid:
                return msg

    def request(self, mtype, attrs):
        """Error codes seen, in order, ending with 0 for a success: a 438
        first hands out the nonce."""
        codes = []
        for _ in range(2):
            txid = os.urandom(12)
            a = attrs + (W.attr(NONCE, self.nonce) if self.nonce else b"")
            self.sock.sendto(W.signed_message(mtype, txid, a, self.key), self.dest)
            msg = self.answer(txid)
            codes.append(msg.get("error", 0))
            if codes[-1] != 438:
                return codes
            self.nonce = dict(msg["attrs"]).get(NONCE)
        raise Fail("a second 438 after using the server's nonce")

    def register(self, pid, peer):
        return self.request(REGISTER_REQUEST,
                            W.attr(P_ID, pid) + W.attr(P_PEER_ID, peer) +
                            W.attr(P_UFRAG, b"uf") + W.attr(P_PWD, b"password-password") +
                            W.attr(P_SESSION, os.urandom(8)))

    def binding(self, attrs=b""):
        txid, msg = W.binding_request(attrs=attrs)
        self.sock.sendto(msg, self.dest)
        return self.answer(txid).get("error", 0)


def xor_addr(host, port):
    """An IPv4 XOR-*-ADDRESS value (RFC 8489 14.2)."""
    raw = struct.unpack("!I", socket.inet_aton(host))[0] ^ W.MAGIC
    return struct.pack("!BBHI", 0, 1, port ^ (W.MAGIC >> 16), raw)


class TurnClient(Client):
    """A TURN client with REST credentials (RFC 8489 9.2 long-term key)."""

    def __init__(self, port):
        super().__init__(port)
        self.user = str(int(time.time()) + 3600).encode() + b":metrics"
        self.password = base64.b64encode(hmac.new(SECRET, self.user, hashlib.sha1).digest())

    def turn(self, method, attrs, signed=True):
        """(error code or 0, response) of one TURN request."""
        txid = os.urandom(12)
        if signed:
            attrs += W.attr(USERNAME, self.user) + W.attr(REALM_ATTR, REALM) + W.attr(NONCE, self.nonce)
            key = hashlib.md5(self.user + b":" + REALM + b":" + self.password).digest()
            head = struct.pack("!HHI", method, len(attrs) + 24, W.MAGIC) + txid
            attrs += W.attr(MESSAGE_INTEGRITY, hmac.new(key, head + attrs, hashlib.sha1).digest())
        self.sock.sendto(W.message(method, txid, attrs), self.dest)
        msg = self.answer(txid)
        return msg.get("error", 0), msg


def relay_traffic(port):
    """Through the relay: 5 bytes to the peer, 7 back, 1 datagram dropped."""
    c = TurnClient(port)
    transport = W.attr(REQUESTED_TRANSPORT, b"\x11\0\0\0")
    code, msg = c.turn(ALLOCATE, transport, signed=False)
    expect("an Allocate without credentials", 401, code)
    c.nonce = dict(msg["attrs"]).get(NONCE)
    code, msg = c.turn(ALLOCATE, transport)
    expect("an Allocate with REST credentials", 0, code)
    value = dict(msg["attrs"])[XOR_RELAYED_ADDRESS]
    rport = struct.unpack("!H", value[2:4])[0] ^ (W.MAGIC >> 16)
    relayed = ("127.0.0.1", rport)
    # permissions are by IP address alone (RFC 8656 9): the stranger
    # needs another one
    peer, stranger = W.udp_socket("127.0.0.1"), W.udp_socket("127.0.0.1", bind_host="127.0.0.2")
    code, _ = c.turn(CREATE_PERMISSION, W.attr(XOR_PEER_ADDRESS, xor_addr(*peer.getsockname())))
    expect("CreatePermission for the peer", 0, code)
    c.sock.sendto(W.message(SEND_INDICATION, os.urandom(12),
                            W.attr(XOR_PEER_ADDRESS, xor_addr(*peer.getsockname())) +
                            W.attr(DATA, b"hello")), c.dest)
    peer.settimeout(W.TIMEOUT_S)
    data, src = peer.recvfrom(2048)
    expect("what the peer got, and from where", (b"hello", relayed), (data, src[:2]))
    stranger.sendto(b"no permission", relayed)  # dropped
    peer.sendto(b"goodbye", relayed)
    c.sock.settimeout(W.TIMEOUT_S)
    msg = W.decode(c.sock.recvfrom(2048)[0])
    expect("a Data indication back", (DATA_INDICATION, b"goodbye"),
           (msg["type"], dict(msg["attrs"]).get(DATA)))
    peer.close()
    stranger.close()
    c.sock.close()


def check_relay_deltas(before, after):
    def delta(name, labels=""):
        return get(after, name, labels) - get(before, name, labels)

    expect("allocate 401", 1, get(after, "punch_requests_total", 'method="allocate",result="401"'))
    expect("allocate ok", 1, delta("punch_requests_total", 'method="allocate",result="ok"'))
    expect("create_permission ok", 1, delta("punch_requests_total", 'method="create_permission",result="ok"'))
    expect("allocations held", 1, get(after, "punch_relay_allocations"))
    expect("allocations made", 1, delta("punch_relay_allocations_total"))
    expect("packets to the peer", 1, delta("punch_relay_packets_total", 'direction="to_peer"'))
    expect("packets to the client", 1, delta("punch_relay_packets_total", 'direction="to_client"'))
    expect("bytes to the peer", 5, delta("punch_relay_bytes_total", 'direction="to_peer"'))
    expect("bytes to the client", 7, delta("punch_relay_bytes_total", 'direction="to_client"'))
    expect("dropped for want of a permission", 1, delta("punch_relay_no_permission_packets_total"))
    expect("relay refusals", 0, sum(v for (n, _), v in after.items() if n == "punch_relay_refusals_total"))


def stop(proc, err_path):
    proc.send_signal(signal.SIGTERM)
    expect("server exit status", 0, proc.wait(timeout=10))
    text = open(err_path).read()
    if "Sanitizer" in text or "runtime error" in text:
        raise Fail("sanitizer report:\n" + text)


def scrape(base, what):
    status, _, text = http(base + "/metrics")
    expect("GET /metrics " + what, 200, status)
    samples = parse(text)
    parse_with_prometheus_client(text, samples)
    return samples


def http(url, method="GET", data=None):
    """(status, headers, body) of one request, bounded."""
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def parse(text):
    """{(name, labels): value}, after checking the exposition format:
    HELP, then TYPE, then the family's samples, each name punch_*."""
    samples, family, helped = {}, None, None
    if not text.endswith("\n"):
        raise Fail("the text does not end with a newline")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped = line.split()[2]
            continue
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) != 4 or parts[3] not in ("counter", "gauge"):
                raise Fail("bad TYPE line %r" % line)
            if parts[2] != helped:
                raise Fail("TYPE %s without its HELP line before it" % parts[2])
            family = parts[2]
            if not family.startswith("punch_"):
                raise Fail("metric %s is not punch_*" % family)
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise Fail("not a sample line: %r" % line)
        if m.group(1) != family:
            raise Fail("sample %r is not of the last TYPE (%s)" % (line, family))
        key = (m.group(1), m.group(2) or "")
        if key in samples:
            raise Fail("sample %r twice" % line)
        samples[key] = int(m.group(4))
    return samples


def parse_with_prometheus_client(text, samples):
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        print("note: no python3-prometheus-client; the format was checked by regex only")
        return
    n = 0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
            n += 1
            if not any(k[0] == s.name and sorted(k[1].strip("{}").split(",")) ==
                       sorted(labels.split(",")) for k in samples):
                raise Fail("prometheus_client read %s{%s}, which the check did not" % (s.name, labels))
    expect("samples read by prometheus_client", len(samples), n)


def get(samples, name, labels=""):
    key = (name, "{%s}" % labels if labels else "")
    if key not in samples:
        raise Fail("no sample %s%s" % key)
    return samples[key]


def check_flags(punch, tmp):
    for args, want in ((["-metrics", "192.0.2.1:9478"], "not a loopback address"),
                       (["-metrics-public"], "-metrics-public goes with -metrics")):
        out = subprocess.run([punch, "server", "-listen", "127.0.0.1:0", "-state",
                              os.path.join(tmp, "flags")] + args,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        if out.returncode == 0 or want not in out.stderr:
            raise Fail("punch server %s: expected a refusal saying %r; exit %d, stderr %r"
                       % (" ".join(args), want, out.returncode, out.stderr))
        ok("punch server %s is refused (exit %d)" % (" ".join(args), out.returncode))


def start(punch, tmp, err_path, args=()):
    with open(err_path, "w") as err:
        proc = subprocess.Popen([punch, "server", "-listen", "127.0.0.1:0", "-metrics", "127.0.0.1:0",
                                 "-state", os.path.join(tmp, "state")] + list(args),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    port = mport = None
    end = time.monotonic() + 10
    while (port is None or mport is None) and time.monotonic() < end:
        with open(err_path) as f:
            for line in f:
                m, n = LISTEN_RE.match(line.strip()), METRICS_RE.match(line.strip())
                port = int(m.group(1)) if m else port
                mport = int(n.group(1)) if n else mport
        if proc.poll() is not None:
            raise Fail("server exited early: " + open(err_path).read())
        time.sleep(0.02)
    if port is None or mport is None:
        proc.kill()
        raise Fail("no listen and metrics lines within 10 s: " + open(err_path).read())
    return proc, port, mport


def tcp_binding(port):
    """A Binding request over TCP (RFC 8489 6.2.2 framing): 0 for a
    success response, else its error code."""
    txid, msg = W.binding_request()
    with socket.create_connection(("127.0.0.1", port), timeout=W.TIMEOUT_S) as t:
        t.sendall(msg)
        data = b""
        while len(data) < 20 or len(data) < 20 + int.from_bytes(data[2:4], "big"):
            chunk = t.recv(65536)
            if not chunk:
                raise Fail("the server closed the TCP connection without an answer")
            data += chunk
    answer = W.decode(data[:20 + int.from_bytes(data[2:4], "big")])
    if answer["txid"] != txid:
        raise Fail("a TCP answer to another transaction")
    return answer.get("error", 0)


def traffic(port):
    c = Client(port)
    # over TCP too: counted as UDP's are
    expect("a Binding request over TCP", 0, tcp_binding(port))
    expect("Binding requests answered", [0, 0, 0], [c.binding() for _ in range(3)])
    expect("a Binding request with an unknown required attribute",
           420, c.binding(W.attr(UNKNOWN_REQUIRED, b"\0\0\0\0")))
    c.sock.sendto(b"this is not STUN, only text", c.dest)
    # answered after the junk on the same socket: the junk was read first
    expect("a Binding request after the junk", 0, c.binding())
    alice, bob = Client(port), Client(port)
    expect("alice's REGISTER", [438, 0], alice.register(b"alice", b"bob"))
    expect("bob's REGISTER", [438, 0], bob.register(b"bob", b"alice"))
    return alice, bob


def check_deltas(before, after):
    def delta(name, labels=""):
        return get(after, name, labels) - get(before, name, labels)

    expect("binding ok (4 over UDP, 1 over TCP)", 5,
           delta("punch_requests_total", 'method="binding",result="ok"'))
    expect("binding 420", 1, get(after, "punch_requests_total", 'method="binding",result="420"'))
    expect("register 438", 2, get(after, "punch_requests_total", 'method="register",result="438"'))
    expect("register ok", 2, delta("punch_requests_total", 'method="register",result="ok"'))
    expect("release ok", 1, delta("punch_requests_total", 'method="release",result="ok"'))
    expect("malformed stun", 1, delta("punch_malformed_packets_total", 'service="stun"'))
    expect("registrations made", 2, delta("punch_registrations_total"))
    expect("registrations released", 1, delta("punch_registrations_released_total"))
    expect("registrations held", 1, get(after, "punch_registrations"))
    expect("challenges", 2, delta("punch_register_challenges_total"))
    expect("introductions", 1, delta("punch_introductions_total"))
    expect("refusals", 0, sum(v for (n, _), v in after.items() if n == "punch_register_refusals_total"))
    expect("rate limited", 0, delta("punch_rate_limited_packets_total", 'limit="register"'))
    retx = delta("punch_peer_info_retransmissions_total")
    if retx < 1:
        raise Fail("PEER-INFO went unacknowledged for 1.5 s, yet retransmissions moved by %d" % retx)
    ok("PEER-INFO retransmissions: %d" % retx)
    expect("build info", 1, sum(v for (n, lab), v in after.items()
                                if n == "punch_build_info" and re.match(r'^\{version="[0-9.]+"\}$', lab)))
    if get(after, "punch_uptime_seconds") < get(before, "punch_uptime_seconds"):
        raise Fail("uptime went backwards")
    if any(n.startswith("punch_relay_") for n, _ in after):
        raise Fail("relay metrics from a server without the relay")


def check_http(base):
    status, headers, _ = http(base + "/metrics", "POST", b"x=1")
    expect("POST /metrics", 405, status)
    expect("Allow of the 405", "GET, HEAD", headers.get("Allow"))
    expect("GET /other", 404, http(base + "/other")[0])
    status, headers, body = http(base + "/metrics", "HEAD")
    expect("HEAD /metrics", (200, ""), (status, body))
    if not headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"):
        raise Fail("Content-Type %r" % headers.get("Content-Type"))


def main(punch):
    tmp = tempfile.TemporaryDirectory()
    err_path = os.path.join(tmp.name, "server.err")
    check_flags(punch, tmp.name)
    proc, port, mport = start(punch, tmp.name, err_path)
    slow = None
    try:
        base = "http://127.0.0.1:%d" % mport
        before = scrape(base, "before traffic")
        expect("binding ok before traffic", 0,
               get(before, "punch_requests_total", 'method="binding",result="ok"'))

        # half a request, held open through the traffic and the scrapes
        slow = socket.create_connection(("127.0.0.1", mport), timeout=5)
        slow.sendall(b"GET /metr")
        alice, bob = traffic(port)
        time.sleep(1.5)  # PEER-INFO's first retransmission is after 0.5 s
        expect("bob's RELEASE", [0], bob.request(RELEASE_REQUEST, W.attr(P_ID, b"bob")))

        after = scrape(base, "after traffic")
        check_deltas(before, after)
        check_http(base)
        alice.sock.close()
        bob.sock.close()
        slow.close()
        stop(proc, err_path)

        err_path = os.path.join(tmp.name, "relay.err")
        proc, port, mport = start(punch, tmp.name, err_path,
                                  ["-auth-secret", SECRET.decode(), "-relay-allow-private"])
        base = "http://127.0.0.1:%d" % mport
        before = scrape(base, "of the relay before traffic")
        relay_traffic(port)
        after = scrape(base, "of the relay after traffic")
        check_relay_deltas(before, after)
        stop(proc, err_path)
    finally:
        if slow:
            slow.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except (Fail, W.Malformed) as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
