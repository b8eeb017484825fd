#!/usr/bin/env python3
"""Attacks on the rendezvous, on loopback: each must fail.

    rdv_trust.py PATH_TO_PUNCH [SCENARIO...]   (all by default)

Every scenario is an attack that worked against punch before registrations
were signed (issue 8); the test fails if the attack succeeds.

1. hijack: bob waits for alice.  mallory registers the id "bob" with bob's
   public fingerprint (signed with mallory's own key; against a server
   that does not know signatures, with the fingerprint claimed).  Any
   acceptance fails the test.
2. forged PEER-INFO: alice waits for bob.  mallory sends alice a PEER-INFO
   from the server's address (a raw socket forges the source), unsigned
   and then signed with mallory's own key, naming mallory's address as
   bob's.  alice must neither report it nor send a check to mallory.
3. re-registration: alice and bob chat.  mallory registers "bob" with a
   new session every 0.5 s for 3 s.  alice must not re-punch, and a line
   typed afterwards must still reach bob.
4. binding across a restart, and release: carol (a real client) registers
   and leaves; the server restarts on the same state.  mallory cannot
   register "carol", nor release it; `punch release` from carol's key
   can, and then mallory's registration succeeds.
5. changed server key: alice has pinned the server's key; the server comes
   back on the same address with a new state directory (a new key).
   alice must stop, naming known_servers and the line.
6. connected: a rendezvous server of the test's own (it signs, so the
   clients trust it) introduces alice and bob; once they are connected it
   tells alice that "bob" has another key and a new session, then repeats
   bob's first PEER-INFO: alice must leave her link alone.  Then bob's own
   key with a new session (a real restart): that one alice acts on.

Traffic stays on 127.0.0.0/8.  Every wait is bounded; every process is
killed on every exit path.
"""

import os
import re
import select
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

REGISTER_REQUEST = 0x00ED
PEER_INFO_REQUEST = 0x00EE
RELEASE_REQUEST = 0x00EF  # method 0x07F, class request
NONCE = 0x0015
P_ID, P_PEER_ID, P_CAND, P_UFRAG, P_PWD, P_KEY_FP, P_SESSION = (
    0x4F01, 0x4F02, 0x4F03, 0x4F04, 0x4F05, 0x4F06, 0x4F07)
WAIT_S = 10
START_RE = re.compile(r"^punch server: listening on 127\.0\.0\.1:(\d+)$")


class Fail(Exception):
    pass


def ok(text):
    print("ok: " + text, flush=True)


def die_with_parent():
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Procs:
    """Every process the test starts, killed at the end whatever happens."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.live = []

    def start(self, name, args, env=None, stdin=subprocess.DEVNULL):
        out = open(os.path.join(self.tmp, name + ".out"), "w")
        err = open(os.path.join(self.tmp, name + ".err"), "w")
        p = subprocess.Popen(args, stdin=stdin, stdout=out, stderr=err,
                             env=env, preexec_fn=die_with_parent)
        p.name = name
        self.live.append(p)
        return p

    def text(self, name, ext="err"):
        with open(os.path.join(self.tmp, name + "." + ext), errors="replace") as f:
            return f.read()

    def wait_text(self, name, pattern, ext="err", timeout=WAIT_S, proc=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(pattern, self.text(name, ext), re.M)
            if m:
                return m
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.02)
        raise Fail("%s: no /%s/ in its std%s within %d s; it was:\n%s"
                   % (name, pattern, ext, timeout, self.text(name, ext)))

    def stop(self, p, timeout=10):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)
        return p.returncode

    def kill_all(self):
        for p in self.live:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.live = []


def supports(punch, flag):
    out = subprocess.run([punch, "server", "-help"], capture_output=True, text=True, timeout=10)
    return flag in out.stdout


class Env:
    def __init__(self, punch, tmp):
        self.punch = punch
        self.tmp = tmp
        self.procs = Procs(tmp)
        self.port = None
        self.has_state = supports(punch, "-state")

    def home(self, who):
        d = os.path.join(self.tmp, who + ".config")
        os.makedirs(d, exist_ok=True)
        env = dict(os.environ, XDG_CONFIG_HOME=d)
        env.pop("SSLKEYLOGFILE", None)
        return env

    def fingerprint(self, who):
        out = subprocess.run([self.punch, "id"], capture_output=True, text=True,
                             env=self.home(who), timeout=10)
        return out.stdout.strip()

    def server(self, state="state", port=0):
        args = [self.punch, "server", "-listen", "127.0.0.1:%d" % port]
        if self.has_state:
            args += ["-state", os.path.join(self.tmp, state)]
        name = "server-%s-%d" % (state, time.monotonic_ns())
        p = self.procs.start(name, args)
        m = self.procs.wait_text(name, START_RE.pattern, proc=p)
        self.port = int(m.group(1))
        return p

    def client(self, who, peer, *extra, stdin=subprocess.DEVNULL):
        args = [self.punch, "chat", "-server", "127.0.0.1:%d" % self.port,
                "-id", who, "-peer", peer] + list(extra)
        return self.procs.start(who, args, env=self.home(who), stdin=stdin)


class Mallory:
    """A client of the rendezvous with its own key, from 127.0.0.66."""

    def __init__(self, port, src="127.0.0.66"):
        self.sock = W.udp_socket("127.0.0.1", bind_host=src)
        self.dest = ("127.0.0.1", port)
        self.nonce = None
        self.key = W.signing_key()

    def request(self, mtype, attrs, signed=True):
        """(error code or 0, reason), after at most one 438."""
        for _ in range(2):
            txid = os.urandom(12)
            a = attrs + (W.attr(NONCE, self.nonce) if self.nonce else b"")
            msg = (W.signed_message(mtype, txid, a, self.key) if signed
                   else W.message(mtype, txid, a))
            self.sock.sendto(msg, self.dest)
            end = time.monotonic() + W.TIMEOUT_S
            while True:
                r = select.select([self.sock], [], [], max(0, end - time.monotonic()))[0]
                if not r:
                    raise Fail("no answer to mallory's request")
                data, _ = self.sock.recvfrom(4096)
                ans = W.decode(data)
                if ans["txid"] == txid:
                    break
            err = ans.get("error", 0)
            if err != 438:
                return err, ans.get("reason", "")
            self.nonce = dict(ans["attrs"]).get(NONCE)
        raise Fail("a second 438 after using the server's nonce")

    def register(self, pid, peer, claim_fp=None, session=None):
        """Try signed; if the server does not know the signature (420),
        as an older server, claim the fingerprint instead."""
        attrs = (W.attr(P_ID, pid) + W.attr(P_PEER_ID, peer) +
                 W.attr(P_UFRAG, b"mallory") + W.attr(P_PWD, b"mallory-password-123") +
                 W.attr(P_SESSION, session or os.urandom(8)) +
                 self.candidate())
        code, reason = self.request(REGISTER_REQUEST, attrs)
        if code == 420:
            claim = W.attr(P_KEY_FP, claim_fp) if claim_fp else b""
            code, reason = self.request(REGISTER_REQUEST, attrs + claim, signed=False)
        return code, reason

    def release(self, pid):
        return self.request(RELEASE_REQUEST, W.attr(P_ID, pid))

    def candidate(self):
        """mallory's own address as a host candidate (docs/protocol.md)."""
        ip, port = self.sock.getsockname()[:2]
        xport = port ^ (W.MAGIC >> 16)
        xaddr = struct.unpack("!I", socket.inet_aton(ip))[0] ^ W.MAGIC
        return W.attr(P_CAND, struct.pack("!BBHII", 1, 1, xport, 0x7E00FFFF, xaddr))


def fp_bytes(fp_text):
    import base64
    b64 = fp_text.split(":", 1)[1]
    return base64.b64decode(b64 + "=" * (-len(b64) % 4))


def scenario_hijack(env):
    env.server("hijack")
    bob = env.client("bob", "alice")
    env.procs.wait_text("bob", r"^Step 3: ready", proc=bob)
    bob_fp = fp_bytes(env.fingerprint("bob"))
    m = Mallory(env.port)
    code, reason = m.register(b"bob", b"mallory", claim_fp=bob_fp)
    if code == 0:
        raise Fail("hijack: mallory registered bob's id with bob's public fingerprint")
    ok("hijack with bob's fingerprint refused: %d %s" % (code, reason))
    code, reason = m.register(b"SHA256:" + env.fingerprint("bob")[7:].encode(), b"mallory")
    if code == 0:
        raise Fail("hijack: mallory registered the id that is bob's fingerprint")
    ok("bob's fingerprint as an id refused to mallory: %d %s" % (code, reason))
    env.procs.kill_all()


def spoofed_udp(src, dst, payload):
    """An IPv4/UDP datagram from src to dst, source forged (raw socket)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        s.sendto(ip + udp, (dst[0], 0))
    finally:
        s.close()


def scenario_forged_peer_info(env):
    env.server("forged")
    alice = env.client("alice", "bob", "-v")
    m = env.procs.wait_text("alice", r"^Step 1: STUN: the server sees me at 127\.0\.0\.1:(\d+)",
                            proc=alice)
    alice_port = int(m.group(1))
    env.procs.wait_text("alice", r"^Step 3: ready", proc=alice)
    mal = Mallory(env.port)
    attrs = (W.attr(P_ID, b"bob") + W.attr(P_UFRAG, b"mallory") +
             W.attr(P_PWD, b"mallory-password-123") + W.attr(P_SESSION, os.urandom(8)) +
             W.attr(P_KEY_FP, W.key_fingerprint(bytes(mal.key.verify_key))) + mal.candidate())
    for signed in (False, True):
        txid = os.urandom(12)
        msg = (W.signed_message(PEER_INFO_REQUEST, txid, attrs, mal.key, W.PUNCH_SERVER_KEY)
               if signed else W.message(PEER_INFO_REQUEST, txid, attrs))
        spoofed_udp(("127.0.0.1", env.port), ("127.0.0.1", alice_port), msg)
    # A check from alice to mallory, or alice's Step 4, within 2 s: the
    # forgery worked.
    r = select.select([mal.sock], [], [], 2.0)[0]
    text = env.procs.text("alice")
    if r or "Step 4: peer info: bob" in text:
        raise Fail("forged PEER-INFO from the server's address was taken:\n" + text)
    if "dropped" not in text:
        raise Fail("forged PEER-INFO: alice -v says nothing about dropping it:\n" + text)
    ok("forged PEER-INFO from the server's address dropped")
    env.procs.kill_all()


def scenario_reregister(env):
    env.server("rereg")
    rfd, wfd = os.pipe()
    alice = env.client("alice", "bob", stdin=rfd)
    os.close(rfd)
    # bob's input stays open (its end of file would end the chat)
    brfd, bob_in = os.pipe()
    bob = env.client("bob", "alice", stdin=brfd)
    os.close(brfd)
    for who, p in (("alice", alice), ("bob", bob)):
        env.procs.wait_text(who, r"^Secure link up", proc=p, timeout=20)
    bob_fp = fp_bytes(env.fingerprint("bob"))
    mal = Mallory(env.port)
    codes = []
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        codes.append(mal.register(b"bob", b"alice", claim_fp=bob_fp)[0])
        time.sleep(0.5)
    try:
        os.write(wfd, b"still here\n")
    except BrokenPipeError:
        raise Fail("alice is gone during the re-registrations (mallory's answers %s):\n%s"
                   % (codes, env.procs.text("alice")))
    try:
        env.procs.wait_text("bob", r"^alice: still here$", ext="out", proc=bob)
    finally:
        os.close(wfd)
        os.close(bob_in)
    text = env.procs.text("alice")
    if "restarted" in text or 0 in codes:
        raise Fail("re-registration as bob disturbed the chat (mallory's answers %s):\n%s"
                   % (codes, text))
    ok("%d re-registrations as bob refused (%s); the chat goes on" % (len(codes), sorted(set(codes))))
    env.procs.kill_all()


def scenario_restart_and_release(env):
    srv = env.server("bind")
    port = env.port
    carol = env.client("carol", "dave")
    env.procs.wait_text("carol", r"^Step 3: ready", proc=carol)
    env.procs.stop(carol)
    env.procs.stop(srv)
    env.server("bind", port=port)
    mal = Mallory(env.port)
    code, reason = mal.register(b"carol", b"dave")
    if code == 0:
        raise Fail("after a restart, mallory registered carol's id")
    ok("after a restart, carol's id is still hers: %d %s" % (code, reason))
    code, reason = mal.release(b"carol")
    if code == 0:
        raise Fail("mallory released carol's id")
    ok("mallory cannot release carol's id: %d %s" % (code, reason))
    out = subprocess.run([env.punch, "release", "-server", "127.0.0.1:%d" % env.port, "-id", "carol"],
                         capture_output=True, text=True, env=env.home("carol"), timeout=60)
    if out.returncode != 0 or "Released carol" not in out.stdout:
        raise Fail("punch release by carol: exit %d, stdout %r, stderr %r"
                   % (out.returncode, out.stdout, out.stderr))
    code, reason = mal.register(b"carol", b"dave")
    if code != 0:
        raise Fail("after carol's release, mallory's registration got %d %s" % (code, reason))
    ok("punch release by carol; then the id is free")
    env.procs.kill_all()


class FakeServer:
    """A minimal signing rendezvous (for scenario 6): Binding answers,
    REGISTER answered with success, PEER-INFO sent when both are here."""

    def __init__(self):
        self.sock = W.udp_socket("127.0.0.1")
        self.port = self.sock.getsockname()[1]
        self.key = W.signing_key()
        self.regs = {}       # id -> dict(addr, ufrag, pwd, session, fp)
        self.introduced = False

    def serve(self, until):
        """Answer what arrives until the monotonic time `until`."""
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            r = select.select([self.sock], [], [], left)[0]
            if not r:
                return
            data, src = self.sock.recvfrom(4096)
            try:
                msg = W.decode(data)
            except W.Malformed:
                continue
            self.handle(msg, src[:2])

    def handle(self, msg, src):
        t, txid = msg["type"], msg["txid"]
        if t == 0x0001:  # Binding request
            self.sock.sendto(W.message(0x0101, txid, self.xaddr(0x0020, src)), src)
        elif t == REGISTER_REQUEST:
            a = {k: v for k, v in msg["attrs"]}
            pk = a.get(W.PUNCH_PUBKEY)
            # an older client only claims its fingerprint
            fp = W.key_fingerprint(pk) if pk else a.get(P_KEY_FP, b"\0" * 32)
            self.regs[a[P_ID]] = dict(addr=src, ufrag=a[P_UFRAG], pwd=a[P_PWD],
                                      session=a[P_SESSION], fp=fp)
            body = (self.xaddr(0x0020, src) + W.attr(0x4F09, struct.pack("!I", 0)) +
                    W.attr(0x4F08, struct.pack("!I", 30)))
            self.sock.sendto(W.signed_message(0x01ED, txid, body, self.key,
                                              W.PUNCH_SERVER_KEY), src)
            if not self.introduced and b"alice" in self.regs and b"bob" in self.regs:
                self.introduced = True
                self.peer_info(b"alice", b"bob")
                self.peer_info(b"bob", b"alice")

    def xaddr(self, atype, addr, txid=None):
        ip, port = addr
        xip = struct.unpack("!I", socket.inet_aton(ip))[0] ^ W.MAGIC
        return W.attr(atype, struct.pack("!BBHI", 0, 1, port ^ (W.MAGIC >> 16), xip))

    def peer_info(self, to, about, session=None, fp=None, addr=None, ufrag=None, pwd=None):
        r = self.regs[about]
        addr = addr or r["addr"]
        xip = struct.unpack("!I", socket.inet_aton(addr[0]))[0] ^ W.MAGIC
        cand = W.attr(P_CAND, struct.pack("!BBHII", 1, 1, addr[1] ^ (W.MAGIC >> 16),
                                          0x7E00FFFF, xip))
        body = (W.attr(P_ID, about) + W.attr(P_UFRAG, ufrag or r["ufrag"]) +
                W.attr(P_PWD, pwd or r["pwd"]) + W.attr(P_SESSION, session or r["session"]) +
                W.attr(P_KEY_FP, fp or r["fp"]) + cand)
        msg = W.signed_message(PEER_INFO_REQUEST, os.urandom(12), body, self.key,
                               W.PUNCH_SERVER_KEY)
        self.sock.sendto(msg, self.regs[to]["addr"])


def scenario_connected(env):
    fake = FakeServer()
    env.port = fake.port
    rfd, wfd = os.pipe()
    brfd, bob_in = os.pipe()
    for name, me, them, fd in (("alice3", "alice", "bob", rfd), ("bob3", "bob", "alice", brfd)):
        env.procs.start(name, [env.punch, "chat", "-server", "127.0.0.1:%d" % fake.port,
                               "-id", me, "-peer", them], env=env.home(name), stdin=fd)
        os.close(fd)
    end = time.monotonic() + 20
    while time.monotonic() < end:
        fake.serve(time.monotonic() + 0.2)
        if ("Secure link up" in env.procs.text("alice3") and
                "Secure link up" in env.procs.text("bob3")):
            break
    else:
        raise Fail("through the test's server, alice and bob never connected:\n%s\n%s"
                   % (env.procs.text("alice3"), env.procs.text("bob3")))
    mal = Mallory(fake.port)
    first_session = fake.regs[b"bob"]["session"]
    # another key, a new session, mallory's address
    fake.peer_info(b"alice", b"bob", session=os.urandom(8),
                   fp=W.key_fingerprint(bytes(mal.key.verify_key)),
                   addr=mal.sock.getsockname()[:2], ufrag=b"mallory", pwd=b"mallory-password-123")
    # bob's own first PEER-INFO again (a replay)
    fake.peer_info(b"alice", b"bob", session=first_session)
    fake.serve(time.monotonic() + 2.0)
    text = env.procs.text("alice3")
    if "restarted" in text or select.select([mal.sock], [], [], 0)[0]:
        raise Fail("a PEER-INFO with another key (or a replay) disturbed alice's link:\n" + text)
    try:
        os.write(wfd, b"still here\n")
    except BrokenPipeError:
        raise Fail("alice is gone after the forged PEER-INFO:\n" + text)
    end = time.monotonic() + WAIT_S
    while "alice: still here" not in env.procs.text("bob3", "out") and time.monotonic() < end:
        fake.serve(time.monotonic() + 0.1)
    if "alice: still here" not in env.procs.text("bob3", "out"):
        raise Fail("after the forged PEER-INFO, alice's line did not reach bob:\n%s\n%s"
                   % (text, env.procs.text("bob3", "out")))
    ok("a PEER-INFO with another key, and a replayed one, leave the link alone")
    # the control: bob's key, a new session: alice re-punches
    fake.peer_info(b"alice", b"bob", session=os.urandom(8))
    fake.serve(time.monotonic() + 2.0)
    if "bob restarted; punching again" not in env.procs.text("alice3"):
        raise Fail("a PEER-INFO with bob's key and a new session was not acted on:\n"
                   + env.procs.text("alice3"))
    ok("the same key with a new session (a restart) is acted on")
    os.close(wfd)
    os.close(bob_in)
    env.procs.kill_all()


def scenario_server_key_changed(env):
    srv = env.server("key1")
    port = env.port
    alice = env.client("alice2", "bob")
    env.procs.wait_text("alice2", r"^Step 3: ready", proc=alice)
    env.procs.stop(alice)
    env.procs.stop(srv)
    env.server("key2", port=port)
    alice = env.client("alice2", "bob")
    try:
        rc = alice.wait(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        raise Fail("alice did not stop after the server's key changed")
    text = env.procs.text("alice2")
    if rc != 1 or not re.search(r"known_servers line 1 says SHA256:", text):
        raise Fail("changed server key: alice exited %d without naming known_servers line 1:\n%s"
                   % (rc, text))
    ok("changed server key stops the client: " + text.strip().splitlines()[-1][:120])
    env.procs.kill_all()


SCENARIOS = {
    "hijack": scenario_hijack,
    "forged": scenario_forged_peer_info,
    "reregister": scenario_reregister,
    "restart": scenario_restart_and_release,
    "serverkey": scenario_server_key_changed,
    "connected": scenario_connected,
}


def main(punch, names):
    if os.geteuid() != 0:
        raise Fail("needs root: the forged PEER-INFO is sent from a raw socket")
    with tempfile.TemporaryDirectory() as tmp:
        env = Env(punch, tmp)
        try:
            for name in names or SCENARIOS:
                SCENARIOS[name](env)
        finally:
            env.procs.kill_all()


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2:])
    except Fail as e:
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
