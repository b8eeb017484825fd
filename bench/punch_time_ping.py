#!/usr/bin/env python3
"""The pinger of bench/punch_time.sh: when does TARGET first answer a ping?

  punch_time_ping.py TARGET IFACE SECONDS INTERVAL_S

Opens a raw ICMP socket (root), then stops itself (SIGSTOP) so that the
caller can release it together with the processes it measures.  Once
continued: waits until a route through IFACE exists (IFACE in
/proc/net/route of this network namespace; until then the default route would
carry the pings elsewhere), prints "route EPOCH", then sends an ICMP echo
request to TARGET every INTERVAL_S and prints "reply EPOCH SEQ" for the first
echo reply from TARGET, with the receive time taken by the kernel
(SO_TIMESTAMPNS).  Everything is bounded by SECONDS from the continue.

Exit status: 0 on a reply, 1 when SECONDS passed without one, 2 on usage.
"""
import os
import select
import signal
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
ROUTE_POLL_S = 0.001


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident, seq):
    payload = struct.pack("!d", time.time()) + b"punch_time"
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = checksum(head + payload)
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload


def has_route(iface):
    with open("/proc/net/route") as f:
        return any(line.split("\t", 1)[0] == iface for line in f)


def main():
    if len(sys.argv) != 5:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    target, iface = sys.argv[1], sys.argv[2]
    limit, interval = float(sys.argv[3]), float(sys.argv[4])
    ident = os.getpid() & 0xFFFF

    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setblocking(False)
    os.kill(os.getpid(), signal.SIGSTOP)  # parked until the launch

    deadline = time.monotonic() + limit
    while not has_route(iface):
        if time.monotonic() >= deadline:
            print("no route through %s within %g s" % (iface, limit))
            return 1
        time.sleep(ROUTE_POLL_S)
    print("route %.6f" % time.time(), flush=True)

    seq, next_send = 0, 0.0
    while True:
        now = time.monotonic()
        if now >= deadline:
            print("no reply from %s within %g s (%d sent)" % (target, limit, seq))
            return 1
        if now >= next_send:
            seq += 1
            try:
                sock.sendto(echo_request(ident, seq), (target, 0))
            except OSError as e:  # e.g. ENOBUFS while the tunnel is down
                print("send %d: %s" % (seq, e.strerror), file=sys.stderr)
            next_send = now + interval
        wait = max(0.0, min(next_send, deadline) - time.monotonic())
        if not select.select([sock], [], [], wait)[0]:
            continue
        while True:
            try:
                data, anc, _, src = sock.recvmsg(2048, socket.CMSG_SPACE(16))
            except BlockingIOError:
                break
            ihl = (data[0] & 0x0F) * 4 if data else 0
            if src[0] != target or len(data) < ihl + 8:
                continue
            typ, _, _, rid, rseq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
            if typ != 0 or rid != ident:
                continue
            t = time.time()
            for level, kind, val in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", val[:16])
                    t = sec + nsec / 1e9
            print("reply %.6f %d" % (t, rseq), flush=True)
            return 0


if __name__ == "__main__":
    sys.exit(main())
