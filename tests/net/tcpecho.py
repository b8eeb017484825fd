#!/usr/bin/env python3
"""TCP helpers for tests/net/forward.sh (stdlib only).

  tcpecho.py serve HOST:PORT SECONDS
      Echo every connection's bytes back until it ends, then close it.
      Prints "ready" once listening; exits after SECONDS.
  tcpecho.py clients HOST:PORT N BYTES SECONDS
      N connections at once; each sends BYTES random bytes (and then ends its
      side), reads everything back, and checks it byte for byte.  Prints one
      summary line; exits 0 only if every connection got its bytes back
      within SECONDS, else 1 with what went wrong.
"""
import os
import socket
import sys
import threading
import time


def addr(s):
    host, _, port = s.rpartition(":")
    return host, int(port)


def serve(where, seconds):
    srv = socket.create_server(addr(where), backlog=128)
    print("ready", flush=True)

    def echo(conn):
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)

    srv.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def one_client(where, nbytes, deadline, results, i):
    data = os.urandom(nbytes)
    got = bytearray()
    try:
        conn = socket.create_connection(addr(where), timeout=5)
        conn.settimeout(max(0.1, deadline - time.monotonic()))

        def writer():
            try:
                conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        w = threading.Thread(target=writer, daemon=True)
        w.start()
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            got.extend(chunk)
        w.join(max(0.1, deadline - time.monotonic()))
        conn.close()
    except OSError as e:
        results[i] = "connection %d: %s after %d of %d bytes back" % (i, e, len(got), nbytes)
        return
    if bytes(got) == data:
        results[i] = None
    elif len(got) != nbytes:
        results[i] = "connection %d: expected %d bytes back; seen %d" % (i, nbytes, len(got))
    else:
        first = next(k for k in range(nbytes) if got[k] != data[k])
        results[i] = "connection %d: expected the same bytes back; seen a difference at offset %d" % (i, first)


def clients(where, n, nbytes, seconds):
    deadline = time.monotonic() + seconds
    results = ["connection %d: did not finish within %d s" % (i, seconds) for i in range(n)]
    start = time.monotonic()
    threads = [threading.Thread(target=one_client, args=(where, nbytes, deadline, results, i), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic()))
    took = time.monotonic() - start
    bad = [r for r in results if r]
    for r in bad:
        print(r, file=sys.stderr)
    print("%d connections x %d bytes each way: %d good in %.2f s (%.1f MB/s each way, all together)"
          % (n, nbytes, n - len(bad), took, n * nbytes / took / 1e6))
    return 1 if bad else 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], float(sys.argv[3]))
        return 0
    if len(sys.argv) == 6 and sys.argv[1] == "clients":
        return clients(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
