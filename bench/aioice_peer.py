#!/usr/bin/python3
"""One aioice (ICE, RFC 8445) peer for bench/hardnat_others.sh.

    aioice_peer.py ROLE STUN_IP STUN_PORT MINE THEIRS TIMEOUT_S

ROLE is "controlling" or "controlled".  The peer gathers host and
server-reflexive candidates (the STUN server is punch's), writes its ICE
credentials and candidates to the file MINE (as JSON, by rename, so the
other side never reads half of it), waits for the file THEIRS, and runs
aioice's checks until a pair is nominated or TIMEOUT_S have passed since
its start; it then stays, to answer the other side's checks, until that
side is done too (MINE.done, THEIRS.done).  The files are the signalling
channel: both namespaces see the same file system.  It prints one line,

    connected MS LOCAL -> REMOTE        or        failed MS REASON

with MS the milliseconds from its start, and exits 0 or 1.
"""
import asyncio
import json
import os
import sys
import time

import aioice

START = time.monotonic()


def ms():
    return (time.monotonic() - START) * 1000


async def read_theirs(path, deadline):
    # Bounded: the other side writes its file within its own gathering.
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            await asyncio.sleep(0.01)
    raise TimeoutError("no candidates from the other side")


async def read_ready(path, deadline):
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        await asyncio.sleep(0.005)
    raise TimeoutError("the other side never got ready")


async def run(role, stun, mine, theirs, timeout_s):
    deadline = START + timeout_s
    conn = aioice.Connection(ice_controlling=role == "controlling",
                             stun_server=stun, use_ipv6=False)
    try:
        await conn.gather_candidates()
        tmp = mine + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"ufrag": conn.local_username,
                       "pwd": conn.local_password,
                       "candidates": [c.to_sdp() for c in conn.local_candidates]}, f)
        os.rename(tmp, mine)
        other = await read_theirs(theirs, deadline)
        conn.remote_username = other["ufrag"]
        conn.remote_password = other["pwd"]
        for sdp in other["candidates"]:
            await conn.add_remote_candidate(aioice.Candidate.from_sdp(sdp))
        await conn.add_remote_candidate(None)
        # The controlled side must be checking before the controlling side
        # nominates: aioice 0.8 loses a nomination that arrives earlier.
        open(mine + ".ready", "w").close()
        if role == "controlling":
            await read_ready(theirs + ".ready", deadline)
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("out of time before the checks")
        await asyncio.wait_for(conn.connect(), left)
        pair = conn._nominated.get(1)
        where = "%s:%d -> %s:%d" % (pair.local_addr + pair.remote_addr) if pair else "?"
        print("connected %.1f %s" % (ms(), where), flush=True)
        # Stay to answer the other side's checks until it is done too.
        open(mine + ".done", "w").close()
        try:
            await read_ready(theirs + ".done", deadline)
        except TimeoutError:
            pass
        return 0
    except (ConnectionError, TimeoutError, asyncio.TimeoutError, OSError) as e:
        print("failed %.1f %s" % (ms(), str(e) or type(e).__name__), flush=True)
        open(mine + ".done", "w").close()
        return 1
    finally:
        await conn.close()


def main():
    if len(sys.argv) != 7 or sys.argv[1] not in ("controlling", "controlled"):
        sys.exit(__doc__)
    role, ip, port, mine, theirs, timeout_s = sys.argv[1:]
    sys.exit(asyncio.run(run(role, (ip, int(port)), mine, theirs, float(timeout_s))))


main()
