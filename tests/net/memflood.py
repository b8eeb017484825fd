#!/usr/bin/env python3
"""A hostile peer's helpers for tests/net/memory.sh (stdlib only).

  memflood.py sink HOST:PORT SECONDS
      Listen and never accept: connections complete in the kernel and their
      bytes are never read.  Prints "ready"; exits after SECONDS.
  memflood.py flood HOST:PORT N BYTES SECONDS
      Open N connections at once and write up to BYTES on each, as fast as
      the other end takes them, for at most SECONDS.  Prints one summary
      line: connections made, connections the other end closed, bytes sent.
  memflood.py stalled-reader PIDFILE COUNTFILE
      Write its pid to PIDFILE, stop itself (SIGSTOP) before reading
      anything, and once continued read standard input to its end; then
      write the byte count to COUNTFILE.
"""
import os
import resource
import selectors
import signal
import socket
import sys
import time


def addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def sink(where, seconds):
    srv = socket.create_server(addr(where), backlog=4096)
    print("ready", flush=True)
    time.sleep(float(seconds))
    srv.close()


def flood(where, n, nbytes, seconds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, n + 64)), hard))
    deadline = time.monotonic() + float(seconds)
    sel = selectors.DefaultSelector()
    left = {}
    made = closed = sent = 0
    chunk = b"\xa5" * 65536
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(addr(where))
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            closed += 1
            continue
        sel.register(s, selectors.EVENT_WRITE)
        left[s] = nbytes
        made += 1
    while left and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            s = key.fileobj
            try:
                k = s.send(chunk[:min(len(chunk), left[s])])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                k = -1
            if k <= 0:
                closed += 1
                sel.unregister(s)
                s.close()
                del left[s]
                continue
            sent += k
            left[s] -= k
            if not left[s]:
                sel.unregister(s)
                del left[s]  # kept open, never closed: a stalled peer
    print(f"flood: {made} connections, {closed} closed by the other end, "
          f"{sent} bytes sent", flush=True)


def stalled_reader(pidfile, countfile):
    with open(pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pidfile + ".tmp", pidfile)
    os.kill(os.getpid(), signal.SIGSTOP)
    total = 0
    while True:
        b = os.read(0, 1 << 20)
        if not b:
            break
        total += len(b)
    with open(countfile, "w") as f:
        f.write(str(total))


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "sink":
        sink(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "flood":
        flood(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif len(sys.argv) == 4 and sys.argv[1] == "stalled-reader":
        stalled_reader(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
