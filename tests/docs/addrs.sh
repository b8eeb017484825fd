#!/usr/bin/env bash
# Every IP:PORT the docs quote is in the capture they name (tests/docs/docs.py
# addrs explains the naming).  Reads files only: no network, no root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
command -v tshark >/dev/null || { echo "FAIL: tshark not found (scripts/deps.sh installs it)" >&2; exit 1; }
python3 "$here/docs.py" addrs "$repo/docs/dumps" "$repo/docs/nat-traversal.md" "$repo/docs/dumps/README.md"
echo PASS
