#!/usr/bin/env python3
"""chat_latency.py - time from a line written into one `punch chat` to its
appearance on the other's standard output, both chats started here inside
the lab's namespaces (bench/chat_latency.sh sets the lab up).

Usage: chat_latency.py PUNCH SERVER NS_ALICE NS_BOB KEYS_DIR SAMPLES TIMEOUT_S

Each sample: one line written to alice's (or, alternately, bob's) standard
input, and the clock read when the peer prints "NAME: line"; the next
sample starts only once the last one has arrived, so that no line queues
behind another.  Both chats run with the same monotonic clock (one
machine), so the figure is one-way: write(2) on one side to read(2) on the
other, through both processes, the link and the two NATs.

Prints how long after alice's (the QUIC client's) "Secure link up" bob's
came ("link-up bob-after-alice 1.234 ms"), one line per sample
("alice->bob 0.412 ms") and, last,
"samples N median M p90 P max X ms".  Exit status 1 if a chat fails to
start, a line is lost, or TIMEOUT_S passes for any wait.
"""
import os
import select
import subprocess
import sys
import time


def spawn(punch, server, ns, keys, me, peer):
    env = dict(os.environ, XDG_CONFIG_HOME=os.path.join(keys, me))
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, punch, "chat", "-server", server,
         "-id", me, "-peer", peer],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, bufsize=0)


def wait_line(fd, want, deadline, buf):
    """Reads fd until a line containing `want`; returns that moment."""
    while True:
        while b"\n" in buf[0]:
            line, buf[0] = buf[0].split(b"\n", 1)
            if want in line:
                return time.monotonic()
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(want.decode(errors="replace"))
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            raise EOFError(want.decode(errors="replace"))
        buf[0] += chunk


def wait_both(procs, want, deadline, bufs):
    """Reads both stderr streams at once until each has a line containing
    `want`; returns when each arrived (so neither waits behind the other)."""
    seen = {}
    while len(seen) < len(procs):
        for name, p in procs.items():
            if name in seen:
                continue
            while b"\n" in bufs[name][0]:
                line, bufs[name][0] = bufs[name][0].split(b"\n", 1)
                if want in line:
                    seen[name] = time.monotonic()
                    break
        if len(seen) == len(procs):
            break
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(want.decode(errors="replace"))
        fds = {p.stderr.fileno(): n for n, p in procs.items() if n not in seen}
        r, _, _ = select.select(list(fds), [], [], left)
        for fd in r:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise EOFError(want.decode(errors="replace"))
            bufs[fds[fd]][0] += chunk
    return seen


def main():
    punch, server, ns_a, ns_b, keys, samples, timeout = sys.argv[1:8]
    samples, timeout = int(samples), float(timeout)
    procs = {"alice": spawn(punch, server, ns_a, keys, "alice", "bob"),
             "bob": spawn(punch, server, ns_b, keys, "bob", "alice")}
    err = {k: [b""] for k in procs}
    out = {k: [b""] for k in procs}
    rc = 1
    try:
        deadline = time.monotonic() + timeout
        up = wait_both(procs, b"Secure link up", deadline, err)
        # alice's id is the smaller: it controls, so it is the QUIC client.
        print("link-up bob-after-alice %.3f ms" %
              ((up["bob"] - up["alice"]) * 1000), flush=True)
        for name, p in procs.items():
            # The chat app is up: it reads its input from now on.
            wait_line(p.stderr.fileno(), b"Type a line", deadline, err[name])
        got = []
        for i in range(samples):
            src, dst = ("alice", "bob") if i % 2 == 0 else ("bob", "alice")
            text = "latency sample %d" % i
            want = ("%s: %s" % (src, text)).encode()
            t0 = time.monotonic()
            procs[src].stdin.write(text.encode() + b"\n")
            t1 = wait_line(procs[dst].stdout.fileno(), want,
                           t0 + timeout, out[dst])
            ms = (t1 - t0) * 1000
            got.append(ms)
            print("%s->%s %.3f ms" % (src, dst, ms), flush=True)
        got.sort()
        med = got[len(got) // 2] if len(got) % 2 else \
            (got[len(got) // 2 - 1] + got[len(got) // 2]) / 2
        p90 = got[min(len(got) - 1, int(len(got) * 0.9))]
        print("samples %d median %.3f p90 %.3f max %.3f ms" %
              (len(got), med, p90, got[-1]))
        rc = 0
    except (TimeoutError, EOFError) as e:
        print("chat_latency: no '%s' in time (or the chat ended)" % e,
              file=sys.stderr)
        for name, p in procs.items():
            print("---- %s stderr: %s" % (name, err[name][0][-2000:].decode(
                errors="replace")), file=sys.stderr)
    finally:
        for p in procs.values():
            try:
                p.stdin.write(b"quit\n")
            except OSError:
                pass
        for p in procs.values():
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return rc


if __name__ == "__main__":
    sys.exit(main())
