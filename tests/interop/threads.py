#!/usr/bin/env python3
"""punch server -threads: every thread serves, and a pair split across
threads is introduced and relayed.

    threads.py PATH_TO_PUNCH [THREADS]     (THREADS: 2 by default)

The server runs with -threads THREADS on 127.0.0.1, with the relay and
-metrics.  SO_REUSEPORT hashes each client's 4-tuple to one thread's
socket, and punch_thread_datagrams_total{thread="N"} says which thread
read how many datagrams.

1. spread: 64 sockets send a Binding request each; all are answered, and
   every thread read some (64 source ports all on one of two threads has
   odds of 2^-63).
2. split pair: a client socket that thread 0 reads and one that the last
   thread reads are found (one Binding each; the thread's counter moves).
   alice registers from the first, bob from the second.  Each gets a
   PEER-INFO naming the other, signed by the server, at the address it
   registered from, and acknowledges it: the server counts both answers
   as acknowledged, although a PEER-INFO may leave from one thread and its
   answer land on another.
3. relay: each allocates with the PUNCH-RELAY credentials its REGISTER
   success carried (alice's allocation is thread 0's, bob's the last
   thread's), and data crosses from alice's relay to bob's and back.
4. TCP: carol registers over TCP (served by thread 0), dave over UDP from
   a socket the last thread reads: each gets the other's PEER-INFO (carol's
   made on dave's thread and handed to thread 0), and both answers count.
5. SIGTERM: exit status 0, no sanitizer report.
6. Redis: a second server with -registry on a redis-server of the test's
   own (127.0.0.1, a free port, nothing saved): the split pair again.
   bob's REGISTER, read by the last thread, goes to Redis through thread
   0 (whose loop the Redis connection is on) and is answered from there.

Traffic stays on 127.0.0.1; every wait is bounded; the server is killed on
every exit path.
"""

import hashlib
import hmac
import os
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics as M  # noqa: E402
import stunwire as W  # noqa: E402

SECRET = b"threads-secret"
PEER_INFO_REQUEST = 0x00EE
PEER_INFO_SUCCESS = 0x01EE
P_ID, P_OBSERVED, P_STATUS = 0x4F01, 0x4F0A, 0x4F09
P_RELAY = 0xCF01
SPREAD_SOCKETS = 64
FIND_TRIES = 64   # sockets tried, at most, to find one a thread reads
THREAD_METRIC = "punch_thread_datagrams_total"
Fail, ok, expect = M.Fail, M.ok, M.expect


def per_thread(samples, n):
    return [M.get(samples, THREAD_METRIC, 'thread="%d"' % i) for i in range(n)]


class Peer(M.Client):
    """A rendezvous and TURN client on one socket that keeps the PEER-INFO
    requests the server sends it."""

    def __init__(self, port):
        super().__init__(port)
        self.peer_infos = []
        self.relay_user = self.relay_pass = None

    def answer(self, txid):
        end = time.monotonic() + W.TIMEOUT_S
        while True:
            msg = self.recv(end)
            if msg["txid"] == txid:
                return msg
            if msg["type"] == PEER_INFO_REQUEST:
                self.peer_infos.append(msg)

    def recv(self, end):
        left = end - time.monotonic()
        if left <= 0 or not select.select([self.sock], [], [], left)[0]:
            raise Fail("no datagram from the server within %.0f s" % W.TIMEOUT_S)
        data, src = self.sock.recvfrom(65536)
        if src[:2] != self.dest:
            raise Fail("a datagram from %r, not the server %r" % (src, self.dest))
        return dict(W.decode(data), raw=data)

    def request(self, mtype, attrs):
        """As Client.request, keeping PUNCH-RELAY of the success."""
        codes = []
        for _ in range(2):
            txid = os.urandom(12)
            a = attrs + (W.attr(M.NONCE, self.nonce) if self.nonce else b"")
            self.out(W.signed_message(mtype, txid, a, self.key))
            msg = self.answer(txid)
            codes.append(msg.get("error", 0))
            if codes[-1] != 438:
                relay = dict(msg["attrs"]).get(P_RELAY)
                if relay:
                    n = relay[0]
                    self.relay_user, self.relay_pass = relay[1:1 + n], relay[1 + n:]
                return codes
            self.nonce = dict(msg["attrs"]).get(M.NONCE)
        raise Fail("a second 438 after using the server's nonce")

    def wait_peer_info(self):
        end = time.monotonic() + W.TIMEOUT_S
        while not self.peer_infos:
            msg = self.recv(end)
            if msg["type"] == PEER_INFO_REQUEST:
                self.peer_infos.append(msg)
        return self.peer_infos.pop(0)

    def out(self, msg):
        self.sock.sendto(msg, self.dest)

    def ack(self, info):
        self.out(W.message(PEER_INFO_SUCCESS, info["txid"]))

    def turn(self, method, attrs, nonce=None):
        """(error code, response) of a TURN request with the minted
        credentials (RFC 8489 9.2 long-term key)."""
        txid = os.urandom(12)
        if nonce is not None:
            attrs += (W.attr(M.USERNAME, self.relay_user) + W.attr(M.REALM_ATTR, M.REALM) +
                      W.attr(M.NONCE, nonce))
            key = hashlib.md5(self.relay_user + b":" + M.REALM + b":" + self.relay_pass).digest()
            head = struct.pack("!HHI", method, len(attrs) + 24, W.MAGIC) + txid
            attrs += W.attr(M.MESSAGE_INTEGRITY, hmac.new(key, head + attrs, hashlib.sha1).digest())
        self.sock.sendto(W.message(method, txid, attrs), self.dest)
        msg = self.answer(txid)
        return msg.get("error", 0), msg

    def allocate(self):
        """The relayed address, after the 401 that hands out the nonce."""
        transport = W.attr(M.REQUESTED_TRANSPORT, b"\x11\0\0\0")
        code, msg = self.turn(M.ALLOCATE, transport)
        expect("an Allocate without credentials", 401, code)
        self.turn_nonce = dict(msg["attrs"]).get(M.NONCE)
        code, msg = self.turn(M.ALLOCATE, transport, self.turn_nonce)
        expect("an Allocate with the minted credentials", 0, code)
        value = dict(msg["attrs"])[M.XOR_RELAYED_ADDRESS]
        return ("127.0.0.1", struct.unpack("!H", value[2:4])[0] ^ (W.MAGIC >> 16))

    def permit(self, addr):
        code, _ = self.turn(M.CREATE_PERMISSION, W.attr(M.XOR_PEER_ADDRESS, M.xor_addr(*addr)),
                            self.turn_nonce)
        expect("CreatePermission for %s:%d" % addr, 0, code)

    def send(self, addr, data):
        self.sock.sendto(W.message(M.SEND_INDICATION, os.urandom(12),
                                   W.attr(M.XOR_PEER_ADDRESS, M.xor_addr(*addr)) +
                                   W.attr(M.DATA, data)), self.dest)

    def data(self):
        msg = self.recv(time.monotonic() + W.TIMEOUT_S)
        if msg["type"] != M.DATA_INDICATION:
            raise Fail("expected a Data indication, got type 0x%04x" % msg["type"])
        return dict(msg["attrs"]).get(M.DATA)


class TcpPeer(Peer):
    """The same over one TCP connection (RFC 8489 6.2.2 framing), which
    thread 0 serves whatever the threads."""

    def __init__(self, port):
        super().__init__(port)
        self.sock.close()
        self.sock = socket.create_connection(self.dest, timeout=W.TIMEOUT_S)
        self.rest = b""

    def out(self, msg):
        self.sock.sendall(msg)

    def recv(self, end):
        while (len(self.rest) < W.HEADER_LEN or
               len(self.rest) < W.HEADER_LEN + struct.unpack("!H", self.rest[2:4])[0]):
            left = end - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise Fail("no message from the server over TCP within %.0f s" % W.TIMEOUT_S)
            chunk = self.sock.recv(4096)
            if not chunk:
                raise Fail("the server closed the TCP connection")
            self.rest += chunk
        want = W.HEADER_LEN + struct.unpack("!H", self.rest[2:4])[0]
        data, self.rest = self.rest[:want], self.rest[want:]
        return dict(W.decode(data), raw=data)


def spread(port, base, n):
    before = per_thread(M.scrape(base, "before the spread"), n)
    socks = [M.Client(port) for _ in range(SPREAD_SOCKETS)]
    expect("Binding requests answered from %d source ports" % SPREAD_SOCKETS,
           [0] * SPREAD_SOCKETS, [c.binding() for c in socks])
    for c in socks:
        c.sock.close()
    after = per_thread(M.scrape(base, "after the spread"), n)
    moved = [a - b for a, b in zip(after, before)]
    expect("datagrams read, all threads together", SPREAD_SOCKETS, sum(moved))
    idle = [i for i, d in enumerate(moved) if d == 0]
    if idle:
        raise Fail("thread(s) %r read none of %d datagrams from %d source ports: %r"
                   % (idle, SPREAD_SOCKETS, SPREAD_SOCKETS, moved))
    ok("datagrams read by each thread: %r" % moved)


def client_on(port, base, n, thread):
    """A Peer whose socket the given thread reads."""
    for _ in range(FIND_TRIES):
        c = Peer(port)
        before = per_thread(M.scrape(base, "before a probe"), n)
        expect("a probe's Binding", 0, c.binding())
        after = per_thread(M.scrape(base, "after a probe"), n)
        if after[thread] - before[thread] == 1:
            ok("source port %d is read by thread %d" % (c.sock.getsockname()[1], thread))
            return c
        c.sock.close()
    raise Fail("none of %d source ports was read by thread %d" % (FIND_TRIES, thread))


def check_peer_info(who, info, peer_id, peer_addr):
    attrs = dict(info["attrs"])
    if W.verify_signed(info["raw"]) is None:
        raise Fail("%s's PEER-INFO is not signed by the server" % who)
    expect("%s's PEER-INFO names" % who, peer_id, attrs.get(P_ID))
    observed = attrs.get(P_OBSERVED)
    if not observed or len(observed) != 8:
        raise Fail("%s's PEER-INFO has no IPv4 PUNCH-OBSERVED" % who)
    expect("%s's PEER-INFO: where the server saw the peer" % who, peer_addr,
           xor_decode(observed))


def xor_decode(value):
    """An IPv4 XOR address value as (host, port)."""
    port = struct.unpack("!H", value[2:4])[0] ^ (W.MAGIC >> 16)
    raw = struct.unpack("!I", value[4:8])[0] ^ W.MAGIC
    return (socket.inet_ntoa(struct.pack("!I", raw)), port)


def first_time(before, after):
    """Each PEER-INFO arrived as first sent, not as a retransmission from
    thread 0's timer, which would hide one lost between threads.  (The
    answers go back at once; the first retransmission waits 500 ms.)"""
    expect("PEER-INFO retransmissions", 0,
           M.get(after, "punch_peer_info_retransmissions_total") -
           M.get(before, "punch_peer_info_retransmissions_total"))


def split_pair(port, base, n):
    alice, bob = client_on(port, base, n, 0), client_on(port, base, n, n - 1)
    before = M.scrape(base, "before the pair")
    expect("alice's REGISTER (thread 0)", [438, 0], alice.register(b"alice", b"bob"))
    expect("bob's REGISTER (thread %d)" % (n - 1), [438, 0], bob.register(b"bob", b"alice"))
    a_info, b_info = alice.wait_peer_info(), bob.wait_peer_info()
    check_peer_info("alice", a_info, b"bob", bob.sock.getsockname()[:2])
    check_peer_info("bob", b_info, b"alice", alice.sock.getsockname()[:2])
    alice.ack(a_info)
    bob.ack(b_info)
    # The answers land on their own threads, whatever thread sent the
    # PEER-INFO: wait (bounded) until both are counted.
    end = time.monotonic() + W.TIMEOUT_S
    while True:
        now = M.scrape(base, "after the acknowledgements")
        acked = (M.get(now, "punch_peer_info_acked_total") -
                 M.get(before, "punch_peer_info_acked_total"))
        if acked == 2 or time.monotonic() > end:
            break
        select.select([], [], [], 0.05)
    expect("PEER-INFO answers matched", 2, acked)
    first_time(before, now)
    expect("introductions", 1, M.get(now, "punch_introductions_total") -
           M.get(before, "punch_introductions_total"))
    return alice, bob


def tcp_pair(port, base, n):
    """carol over TCP (thread 0's) and dave over UDP on the last thread: a
    PEER-INFO for carol made on dave's thread is handed to thread 0."""
    dave = client_on(port, base, n, n - 1)
    carol = TcpPeer(port)
    before = M.scrape(base, "before the TCP pair")
    expect("carol's REGISTER over TCP", [438, 0], carol.register(b"carol", b"dave"))
    expect("dave's REGISTER (thread %d)" % (n - 1), [438, 0], dave.register(b"dave", b"carol"))
    c_info, d_info = carol.wait_peer_info(), dave.wait_peer_info()
    if W.verify_signed(c_info["raw"]) is None:
        raise Fail("carol's PEER-INFO over TCP is not signed by the server")
    expect("carol's PEER-INFO over TCP names", b"dave", dict(c_info["attrs"]).get(P_ID))
    expect("dave's PEER-INFO names", b"carol", dict(d_info["attrs"]).get(P_ID))
    carol.ack(c_info)
    dave.ack(d_info)
    end = time.monotonic() + W.TIMEOUT_S
    while True:
        now = M.scrape(base, "after the TCP pair's acknowledgements")
        acked = (M.get(now, "punch_peer_info_acked_total") -
                 M.get(before, "punch_peer_info_acked_total"))
        if acked == 2 or time.monotonic() > end:
            break
        select.select([], [], [], 0.05)
    expect("the TCP pair's PEER-INFO answers matched", 2, acked)
    first_time(before, now)
    carol.sock.close()
    dave.sock.close()


def relay(alice, bob):
    if not alice.relay_user or not bob.relay_user:
        raise Fail("a REGISTER success without PUNCH-RELAY")
    a_relayed, b_relayed = alice.allocate(), bob.allocate()
    alice.permit(b_relayed)
    bob.permit(a_relayed)
    alice.send(b_relayed, b"from alice, thread 0")
    expect("what bob got through both relays", b"from alice, thread 0", bob.data())
    bob.send(a_relayed, b"from bob")
    expect("what alice got back", b"from bob", alice.data())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_start(tmp):
    """A redis-server on 127.0.0.1, answering PING; (process, port)."""
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", tmp,
                             "--logfile", os.path.join(tmp, "redis.log")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise Fail("redis-server exited: %s" % open(os.path.join(tmp, "redis.log")).read())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            pass
        select.select([], [], [], 0.05)
    proc.kill()
    raise Fail("redis-server did not answer PING within 10 s")


def redis_scenario(punch, tmp, n):
    redis, rport = redis_start(tmp)
    err_path = os.path.join(tmp, "server-redis.err")
    proc = None
    try:
        proc, port, mport = M.start(punch, os.path.join(tmp, "r"), err_path,
                                    ["-threads", str(n), "-no-tcp",
                                     "-registry", "redis://127.0.0.1:%d" % rport])
        base = "http://127.0.0.1:%d" % mport
        end = time.monotonic() + 10
        while M.get(M.scrape(base, "until Redis is up"), "punch_redis_up") != 1:
            if time.monotonic() > end:
                raise Fail("the server did not reach Redis within 10 s")
            select.select([], [], [], 0.05)
        split_pair(port, base, n)
        expect("registrations served from memory", 0,
               M.get(M.scrape(base, "after the Redis pair"), "punch_redis_served_from_memory_total"))
        M.stop(proc, err_path)
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        redis.kill()
        redis.wait()


def main(punch, n):
    tmp = tempfile.TemporaryDirectory()
    err_path = os.path.join(tmp.name, "server.err")
    proc, port, mport = M.start(punch, tmp.name, err_path,
                                ["-threads", str(n), "-auth-secret", SECRET.decode(),
                                 "-relay-allow-private"])
    try:
        base = "http://127.0.0.1:%d" % mport
        expect("threads in the metrics", n,
               sum(1 for name, _ in M.scrape(base, "at start") if name == THREAD_METRIC))
        spread(port, base, n)
        alice, bob = split_pair(port, base, n)
        relay(alice, bob)
        tcp_pair(port, base, n)
        M.stop(proc, err_path)
        os.mkdir(os.path.join(tmp.name, "r"))
        redis_scenario(punch, tmp.name, n)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    try:
        main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    except (Fail, W.Malformed) as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    print("threads: all checks passed")
