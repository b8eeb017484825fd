#!/usr/bin/env bash
# Every gnutls_rnd() result is checked: a call that starts a statement (or
# is cast to void) throws its result away, and a failed generator would
# leave a transaction id, a connection id or a key predictable.  rnd.h's
# rnd_nonce() is the checked form for what keys nothing.
# Usage: tests/lint/rnd.sh REPO
set -euo pipefail
cd "$1"
# A line that begins with the call begins a statement unless the line
# before ends inside an expression (with || && , ( = ! or ?).
unchecked=$(awk '
	FNR == 1 { prev = ";" }
	/^[[:space:]]*(\(void\)[[:space:]]*)?gnutls_rnd[[:space:]]*\(/ &&
	    prev !~ /[|&,(=!?]$/ { print FILENAME ":" FNR ": " $0 }
	/[^[:space:]]/ { line = $0; sub(/[[:space:]]+$/, "", line); prev = line }
' src/*.c)
if [[ -n $unchecked ]]; then
	echo "$unchecked"
	echo "rnd: the calls above ignore gnutls_rnd()'s result; check it, or use rnd_nonce() (rnd.h)" >&2
	exit 1
fi
# The listing must not be empty, or this passes vacuously.
n=$(grep -c 'gnutls_rnd[[:space:]]*(' src/*.c | awk -F: '{ s += $2 } END { print s }')
((n > 0)) || { echo "rnd: no gnutls_rnd() call found in src/; is this the right tree?" >&2; exit 1; }
echo "rnd: $n gnutls_rnd() calls, every result checked"
