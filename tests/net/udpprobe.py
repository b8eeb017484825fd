#!/usr/bin/env python3
"""Small UDP senders and receivers for the lab tests; every mode is bounded in time.

  udpprobe.py echo BIND SECONDS
      Bind BIND (IP:PORT), print "ready", then answer each datagram with
      "seen IP:PORT" (its source address) and print "from IP:PORT TEXT", until
      SECONDS have passed.
  udpprobe.py ask BIND TO SECONDS
      From BIND, send one datagram to TO on a connected socket and print what
      came back within SECONDS: "reply FROM TEXT", "refused" (an ICMP port
      unreachable reached us: something at TO answered, but no socket),
      "error ENAME" (another ICMP error, e.g. EHOSTUNREACH: no route), or
      "timeout" (silence: dropped somewhere).
  udpprobe.py send BIND TO TTL
      From BIND, send one datagram to TO with the given IP TTL, and exit.
  udpprobe.py count BIND TO N SECONDS
      Send N datagrams from BIND to TO (an echo), 1 ms apart, then count the
      answers that arrive within SECONDS after the last: "sent N got M".
  udpprobe.py tcpecho BIND SECONDS
      The same as echo over TCP: listen on BIND, print "ready", answer each
      connection's first read with "seen IP:PORT" and close it, until
      SECONDS have passed.
  udpprobe.py tcpask BIND TO SECONDS
      From BIND, connect to TO over TCP, send "probe" and print what came
      back within SECONDS: "reply TO TEXT", "refused", "error ENAME" or
      "timeout" (no handshake or no answer).

Addresses are IP:PORT, or [IPV6]:PORT (printed the same way).  The exit
status is 0 whatever the network did; the caller judges the output.
"""
import errno
import socket
import sys
import time


def addr(text):
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def family(text):
    return socket.AF_INET6 if ":" in addr(text)[0] else socket.AF_INET


def fmt(a):
    if ":" in a[0]:
        return "[%s]:%d" % (a[0], a[1])
    return "%s:%d" % (a[0], a[1])


def bound_socket(bind, kind=socket.SOCK_DGRAM):
    s = socket.socket(family(bind), kind)
    if kind == socket.SOCK_STREAM:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr(bind))
    return s


def echo(bind, seconds):
    s = bound_socket(bind)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        s.settimeout(left)
        try:
            data, src = s.recvfrom(2048)
        except socket.timeout:
            return
        except OSError:  # an ICMP error for an earlier answer
            continue
        print("from %s %s" % (fmt(src), data.decode(errors="replace")), flush=True)
        s.sendto(("seen %s" % fmt(src)).encode(), src)


def ask(bind, to, seconds):
    s = bound_socket(bind)
    s.connect(addr(to))
    s.send(b"probe")
    s.settimeout(seconds)
    try:
        data = s.recv(2048)
    except socket.timeout:
        print("timeout")
        return
    except ConnectionRefusedError:
        print("refused")
        return
    except OSError as e:
        print("error %s" % errno.errorcode.get(e.errno, e.errno))
        return
    print("reply %s %s" % (to, data.decode(errors="replace")))


def send(bind, to, ttl):
    s = bound_socket(bind)
    if family(bind) == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
    else:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
    s.sendto(b"probe ttl %d" % ttl, addr(to))
    print("sent")


def count(bind, to, n, seconds):
    s = bound_socket(bind)
    s.connect(addr(to))
    got = 0
    for i in range(n):
        try:
            s.send(b"count %d" % i)
        except OSError:  # an ICMP error for an earlier datagram
            pass
        time.sleep(0.001)
    deadline = time.monotonic() + seconds
    s.setblocking(False)
    while True:
        try:
            while True:
                s.recv(2048)
                got += 1
        except BlockingIOError:
            pass
        except OSError:  # an ICMP error for an earlier datagram
            pass
        if time.monotonic() >= deadline:
            break
        time.sleep(0.01)
    print("sent %d got %d" % (n, got))


def tcpecho(bind, seconds):
    s = bound_socket(bind, socket.SOCK_STREAM)
    s.listen(16)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        s.settimeout(left)
        try:
            c, src = s.accept()
        except socket.timeout:
            return
        with c:
            c.settimeout(max(0.1, min(2.0, deadline - time.monotonic())))
            try:
                data = c.recv(2048)
                print("from %s %s" % (fmt(src), data.decode(errors="replace")), flush=True)
                c.sendall(("seen %s" % fmt(src)).encode())
            except OSError:
                pass


def tcpask(bind, to, seconds):
    s = bound_socket(bind, socket.SOCK_STREAM)
    s.settimeout(seconds)
    try:
        s.connect(addr(to))
        s.sendall(b"probe")
        data = s.recv(2048)
    except socket.timeout:
        print("timeout")
        return
    except ConnectionRefusedError:
        print("refused")
        return
    except OSError as e:
        print("error %s" % errno.errorcode.get(e.errno, e.errno))
        return
    print("reply %s %s" % (to, data.decode(errors="replace")))


def main(argv):
    try:
        if argv[1] == "echo" and len(argv) == 4:
            echo(argv[2], float(argv[3]))
        elif argv[1] == "ask" and len(argv) == 5:
            ask(argv[2], argv[3], float(argv[4]))
        elif argv[1] == "send" and len(argv) == 5:
            send(argv[2], argv[3], int(argv[4]))
        elif argv[1] == "tcpecho" and len(argv) == 4:
            tcpecho(argv[2], float(argv[3]))
        elif argv[1] == "tcpask" and len(argv) == 5:
            tcpask(argv[2], argv[3], float(argv[4]))
        elif argv[1] == "count" and len(argv) == 6:
            count(argv[2], argv[3], int(argv[4]), float(argv[5]))
        else:
            raise IndexError
    except (IndexError, ValueError):
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
