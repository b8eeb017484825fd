#!/usr/bin/env python3
"""Keeps the docs' quoted figures tied to their sources.

  docs.py addrs DUMPS DOC...
      Every IP:PORT in DOC must appear in the capture it names: the latest
      "<!-- capture: NAME -->" marker or "## NAME.pcapng" heading above it
      ("<!-- capture: none -->" for addresses that come from no capture).
      An address counts as appearing when it is a packet's source or
      destination (inner ICMP headers included) or a STUN address attribute
      in DUMPS/NAME.pcapng, as tshark reads them.  Port 0 and ADDR:PORT
      patterns with letters are not addresses and are left alone.
  docs.py blocks check|write DOC KIND=DIR...
      The fenced block after each "<!-- KIND: NAME -->" marker must be the
      text of DIR/NAME (check), or becomes it (write).  KIND is lab-rules
      (DIR/NAME, made by lab_rules.sh) or conntrack (DIR/NAME.conntrack,
      written by scripts/capture beside the capture).

Exit status 0 when all is well; 1 with one line per mismatch otherwise.
"""
import os
import re
import subprocess
import sys

MARK = re.compile(r"<!-- capture: ([A-Za-z0-9_]+) -->")
HEAD = re.compile(r"^#+ ([A-Za-z0-9_]+)\.pcapng\b")
ADDR = re.compile(r"(?<![\w.:])((?:\d{1,3}\.){3}\d{1,3}):(\d{1,5})(?![\w])")
BLOCK_MARK = re.compile(r"^<!-- ([a-z-]+): ([A-Za-z0-9_]+) -->$")
TSHARK_LIMIT_S = 60
SUFFIX = {"conntrack": ".conntrack"}  # scripts/capture's NAME.conntrack
FIELDS = ["ip.src", "udp.srcport", "ip.dst", "udp.dstport",
          "stun.att.ipv4", "stun.att.port"]  # (XOR-MAPPED-ADDRESS decoded)


def capture_addrs(path):
    """Every IP:PORT in the capture: endpoints (outer and quoted) and STUN."""
    cmd = ["tshark", "-n", "-r", path, "-o", "udp.try_heuristic_first:TRUE",
           "--enable-heuristic", "stun_udp", "-T", "fields",
           "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         timeout=TSHARK_LIMIT_S).stdout
    seen = set()
    for line in out.splitlines():
        cols = (line.split("\t") + [""] * len(FIELDS))[:len(FIELDS)]
        for i in range(0, len(FIELDS), 2):
            ips = [x for x in cols[i].split(",") if x]
            ports = [x for x in cols[i + 1].split(",") if x]
            for ip, port in zip(ips, ports):
                seen.add("%s:%s" % (ip, port))
    return seen


def addrs(dumps, docs):
    bad = []
    cache = {}
    for doc in docs:
        capture = None
        with open(doc, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                m = MARK.search(line) or HEAD.search(line)
                if m:
                    capture = m.group(1)
                for a in ADDR.finditer(line):
                    ip, port = a.group(1), a.group(2)
                    if int(port) == 0 or int(port) > 65535:
                        continue
                    where = "%s:%d: %s:%s" % (doc, n, ip, port)
                    if capture is None:
                        bad.append("%s: no capture named above it (add <!-- capture: NAME --> or <!-- capture: none -->)" % where)
                        continue
                    if capture == "none":
                        continue
                    path = os.path.join(dumps, capture + ".pcapng")
                    if capture not in cache:
                        if not os.path.exists(path):
                            bad.append("%s: the named capture %s does not exist" % (where, path))
                            cache[capture] = None
                            continue
                        cache[capture] = capture_addrs(path)
                    if cache[capture] is None:
                        continue
                    if "%s:%s" % (ip, port) not in cache[capture]:
                        bad.append("%s: not in %s" % (where, path))
    return bad


def blocks(mode, doc, sources):
    with open(doc, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out, bad, i = [], [], 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        m = BLOCK_MARK.match(line)
        i += 1
        if not m or m.group(1) not in sources:
            continue
        kind, name = m.group(1), m.group(2)
        src = os.path.join(sources[kind], name + SUFFIX.get(kind, ""))
        if not os.path.exists(src):
            bad.append("%s:%d: %s %s: no %s" % (doc, i, kind, name, src))
            continue
        with open(src, encoding="utf-8") as f:
            want = f.read().rstrip("\n").split("\n")
        if i >= len(lines) or not lines[i].startswith("```"):
            bad.append("%s:%d: expected a fenced block after the %s marker" % (doc, i, kind))
            continue
        fence = lines[i]
        end = i + 1
        while end < len(lines) and lines[end] != "```":
            end += 1
        if end == len(lines):
            bad.append("%s:%d: the block after the %s marker is not closed" % (doc, i, kind))
            continue
        have = lines[i + 1:end]
        if have != want:
            bad.append("%s:%d: the %s block for %s differs from %s" % (doc, i + 1, kind, name, src))
        out.append(fence)
        out.extend(want)
        out.append("```")
        i = end + 1
    if mode == "write":
        with open(doc, "w", encoding="utf-8") as f:
            f.write("\n".join(out))
        return [b for b in bad if " differs from " not in b]
    return bad


def main(argv):
    if len(argv) >= 3 and argv[1] == "addrs":
        bad = addrs(argv[2], argv[3:])
    elif len(argv) >= 5 and argv[1] == "blocks" and argv[2] in ("check", "write"):
        sources = dict(a.split("=", 1) for a in argv[4:])
        bad = blocks(argv[2], argv[3], sources)
    else:
        sys.stderr.write(__doc__)
        return 2
    for b in bad:
        print("FAIL: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
