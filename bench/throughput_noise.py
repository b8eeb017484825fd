#!/usr/bin/env python3
"""CPU time used by other people's processes: bench/throughput.sh's noise meter.

  throughput_noise.py start STATE SID NETNS...   snapshot into STATE
  throughput_noise.py stop STATE                 print others' CPU use since
                                                 the snapshot, in % of one CPU
  throughput_noise.py sample SECONDS SID NETNS... the same over SECONDS from now

"Others" are the user-space processes that are neither in session SID (the
benchmark and everything it started) nor in one of the named network
namespaces (the lab's, by `ip netns` name); kernel threads are left out (the
lab's own forwarding runs in softirq, partly in ksoftirqd).  A process's time
is utime+stime plus cutime+cstime (its reaped children), so work done by
short-lived children shows up in their parent.  Between two snapshots:
processes seen in both count their growth, new ones count all of theirs, and
the ones that exited take back what they had at the start (their parent's
cutime now includes it).  Processes that started and exited between the
snapshots under a parent that also exited are missed; it is an estimate.
"""
import json
import os
import sys
import time

PF_KTHREAD = 0x00200000
NETNS_DIR = "/var/run/netns"


def ns_inodes(names):
    out = set()
    for n in names:
        try:
            out.add(os.stat(os.path.join(NETNS_DIR, n)).st_ino)
        except OSError:
            pass
    return out


def snapshot(sid, inodes):
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
            ino = os.stat("/proc/%s/ns/net" % pid).st_ino
        except OSError:
            continue
        # comm may hold spaces and parentheses: the fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        # fields[0] is field 3 (state): field N is fields[N - 3].
        if int(fields[6]) & PF_KTHREAD or int(fields[3]) == sid or ino in inodes:
            continue
        ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        procs[pid + ":" + fields[19]] = ticks  # pid and start time: one process
    return {"t": time.monotonic(), "procs": procs}


def delta(a, b):
    ticks = 0
    for key, v in b["procs"].items():
        ticks += v - a["procs"].get(key, 0)
    for key, v in a["procs"].items():
        if key not in b["procs"]:
            ticks -= v
    secs = b["t"] - a["t"]
    if secs <= 0:
        return 0.0
    return max(0.0, 100.0 * ticks / os.sysconf("SC_CLK_TCK") / secs)


def main(argv):
    if len(argv) >= 4 and argv[1] == "start":
        with open(argv[2], "w") as f:
            json.dump(snapshot(int(argv[3]), ns_inodes(argv[4:])), f)
        with open(argv[2] + ".args", "w") as f:
            json.dump([int(argv[3])] + argv[4:], f)
        return 0
    if len(argv) == 3 and argv[1] == "stop":
        with open(argv[2]) as f:
            a = json.load(f)
        with open(argv[2] + ".args") as f:
            args = json.load(f)
        b = snapshot(args[0], ns_inodes(args[1:]))
        print("%.0f" % delta(a, b))
        return 0
    if len(argv) >= 4 and argv[1] == "sample":
        sid, inodes = int(argv[3]), ns_inodes(argv[4:])
        a = snapshot(sid, inodes)
        time.sleep(float(argv[2]))
        print("%.0f" % delta(a, snapshot(sid, inodes)))
        return 0
    print(__doc__.strip().splitlines()[2], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
