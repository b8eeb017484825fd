#!/usr/bin/env bash
# The command line: help that answers, and one clear sentence with exit
# status 2 for each kind of bad input.  No network traffic.
#   cli.sh PATH_TO_PUNCH
set -euo pipefail
punch=$1
failures=0

# expect STATUS PATTERN ARGS...: run punch ARGS, want exit STATUS and
# PATTERN (extended regex) somewhere in its output.
expect() {
	local want=$1 pattern=$2 out rc=0
	shift 2
	out=$(timeout 10 "$punch" "$@" 2>&1 </dev/null) || rc=$?
	if [[ $rc != "$want" ]] || ! LC_ALL=C grep -aqE -- "$pattern" <<<"$out"; then
		echo "FAIL: punch $*: expected exit $want and /$pattern/; seen exit $rc:" >&2
		# shellcheck disable=SC2001 # every line gets the prefix, not one match
		sed 's/^/  | /' <<<"$out" >&2
		failures=$((failures + 1))
	else
		echo "ok: punch $*"
	fi
}

expect 0 'Commands:' help
expect 0 'Commands:' --help
expect 0 'Commands:' -h
expect 0 '^punch [0-9]+\.[0-9]+\.[0-9]+$' version
expect 0 '-alt ADDR' server -help
expect 0 'Step 1 \(STUN\)' chat -help
expect 2 "unknown command 'frobnicate'" frobnicate
expect 2 "-listen wants ADDR:PORT, got '1.2.3.4'" server -listen 1.2.3.4
expect 2 "-listen wants ADDR:PORT, got '1.2.3.4:\+5'" server -listen 1.2.3.4:+5
expect 2 "-port wants a number 0-65535, got '70000'" server -port 70000
expect 2 '-alt needs exactly one -listen with a specific address' server -alt 127.0.0.2
expect 2 "-alt wants ADDR\[:PORT\]" server -listen 127.0.0.1:3478 -alt 127.0.0.1:3478
expect 2 "-alt wants ADDR\[:PORT\]" server -listen 127.0.0.1:3478 -alt '[::1]:5'
expect 2 "-max-peers wants a number" server -max-peers 0
expect 2 "-log wants quiet, info or debug, got 'loud'" server -log loud
expect 2 "-max-peers wants a number 1-1000000" server -max-peers 1000001
# Combinations that used to do something else than asked: -port beside
# -listen was dropped, and "-alt IP" beside port 0 bound the alternate to
# port 1 (0 + 1).
expect 2 '-port applies only without -listen' server -listen 127.0.0.1:3478 -port 5000
expect 2 '-port applies only without -listen' server -port 5000 -listen 127.0.0.1:3478
expect 2 '-alt needs a fixed -listen port, not 0' server -listen 127.0.0.1:0 -alt 127.0.0.2
expect 2 '-alt needs a fixed -listen port, not 0' server -listen 127.0.0.1:0 -alt 127.0.0.2:4000
expect 2 '-alt needs a fixed -listen port, not 0' server -listen 127.0.0.1:0 -alt :4000
expect 2 "unexpected argument 'extra'" server extra
expect 2 '-server HOST:PORT is required' chat -id a -peer b
expect 2 'both -id and -peer are required' chat -server 127.0.0.1:1 -id a
expect 2 '-allow is an option of punch forward' chat -server 127.0.0.1:1 -id a -peer b -allow 127.0.0.1:22
expect 2 "-allow wants HOST:PORT \(an IPv6 HOST in brackets\), got '::1:22'" forward -server 127.0.0.1:1 -id a -peer b -allow ::1:22
expect 2 "-allow '127.0.0.1:0': PORT must be a number 1-65535" forward -server 127.0.0.1:1 -id a -peer b -allow 127.0.0.1:0
expect 2 '-id and -peer must differ' chat -server 127.0.0.1:1 -id a -peer a
T=turn:u:p@127.0.0.1:3478
expect 2 'too many -turn \(at most 4\)' chat -server 127.0.0.1:1 -id a -peer b -turn $T -turn $T -turn $T -turn $T -turn $T
expect 2 "bad -turn server 'no.such.host.invalid:3478'" chat -server 127.0.0.1:1 -id a -peer b -turn $T -turn turn:u:p@no.such.host.invalid:3478
expect 2 "bad -id 'has space': id contains a space" chat -server 127.0.0.1:1 -id 'has space' -peer b
expect 2 "bad -peer '$(printf 'x%.0s' {1..65})': id is longer than 64 bytes" \
	chat -server 127.0.0.1:1 -id a -peer "$(printf 'x%.0s' {1..65})"
expect 2 "bad -id .*: id is not valid UTF-8" chat -server 127.0.0.1:1 -id $'\xc3\x28' -peer b
expect 2 "bad -peer '#bob': id starts with '#'" chat -server 127.0.0.1:1 -id a -peer '#bob'
# A bidi override in an id is refused, and shown escaped in the error.
expect 2 "bad -peer 'bob[\\]u[{]202e[}]ecila': id contains a bidi control or an invisible character" \
	chat -server 127.0.0.1:1 -id a -peer $'bob\xe2\x80\xaeecila'
expect 2 "bad -id 'a[\\]u[{]200b[}]b': id contains a bidi control" chat -server 127.0.0.1:1 -id $'a\xe2\x80\x8bb' -peer b
expect 2 "-wait wants seconds" chat -server 127.0.0.1:1 -id a -peer b -wait soon
expect 2 "-code wants a code like 7-amber-falcon, as the other side printed it, or 'new'; got '7-amber-falcn'" \
	chat -server 127.0.0.1:1 -id a -peer b -code 7-amber-falcn
expect 2 "-code wants a code like .*; got '1000-amber-falcon'" chat -server 127.0.0.1:1 -id a -peer b -code=1000-amber-falcon
expect 0 '-code \[new\|CODE\]' chat -help
expect 2 "-wait wants seconds \(0-86400\), got '86401'" chat -server 127.0.0.1:1 -id a -peer b -wait 86401
# What the docs promise of the option parser: per-command help, long forms,
# unambiguous prefixes (getopt_long_only), -force as recv's -f only.
expect 0 '^usage: punch recv ' recv -h
expect 0 '^usage: punch forward ' forward --help
expect 0 '^usage: punch server ' server -h
expect 0 '^punch [0-9]+\.[0-9]+\.[0-9]+$' -version
expect 0 '^punch [0-9]+\.[0-9]+\.[0-9]+$' --version
expect 2 "-max-peers wants a number" server -max 0
expect 2 "-wait wants seconds" chat -server 127.0.0.1:1 -i a -peer b -wai soon
expect 2 '-f is an option of punch recv' send -server 127.0.0.1:1 -id a -peer b -force x
expect 2 '-f is an option of punch recv' chat -server 127.0.0.1:1 -id a -peer b -f
expect 2 'unknown option' chat -server 127.0.0.1:1 -id a -peer b -pe x
expect 2 "-server wants HOST:PORT \(an IPv6 HOST in brackets\), got 'nonsense'" chat -server nonsense -id a -peer b
# -server lists (comma-separated, or -server repeated): each entry checked,
# at most 8 in all.
expect 2 "-server '127.0.0.1:1,,127.0.0.1:2' has an empty entry" chat -server 127.0.0.1:1,,127.0.0.1:2 -id a -peer b
expect 2 "-server '127.0.0.1:1,' has an empty entry" chat -server 127.0.0.1:1, -id a -peer b
expect 2 "-server '' has an empty entry" chat -server '' -id a -peer b
S8=127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,127.0.0.1:5,127.0.0.1:6,127.0.0.1:7,127.0.0.1:8
expect 2 'too many servers in -server \(at most 8\)' chat -server $S8,127.0.0.1:9 -id a -peer b
expect 2 'too many servers in -server \(at most 8\)' chat -server $S8 -server 127.0.0.1:9 -id a -peer b
expect 2 "-server '127.0.0.1:99999': PORT must be a number 1-65535" chat -server 127.0.0.1:1,127.0.0.1:99999 -id a -peer b
expect 2 "-server 'example.net:0': PORT must be a number 1-65535" chat -server 127.0.0.1:1 -server example.net:0 -id a -peer b
expect 2 "-server wants HOST:PORT \(an IPv6 HOST in brackets\), got '::1:3478'" chat -server ::1:3478 -id a -peer b
expect 2 "-server lists '127.0.0.1:1' twice" chat -server 127.0.0.1:1,127.0.0.1:1 -id a -peer b
K=(-server-key SHA256:mzwe+CojhykMyj/NVolpqrtJ1Y9uA0DFxUwCVA67TRM)
expect 2 'too many -server-key \(at most 8\)' chat -server 127.0.0.1:1 -id a -peer b \
	"${K[@]}" "${K[@]}" "${K[@]}" "${K[@]}" "${K[@]}" "${K[@]}" "${K[@]}" "${K[@]}" "${K[@]}"
expect 0 '-print-key' server -help
expect 2 "-id-ttl wants a duration such as 30d" server -id-ttl 0
expect 2 "-id-ttl wants a duration such as 30d" server -id-ttl 5w
expect 2 "-id-ttl wants a duration such as 30d" server -id-ttl 4000d
expect 2 "-lifetime wants a duration from 30s to 1d" server -lifetime 5s
expect 2 "-lifetime wants a duration from 30s to 1d" server -lifetime 2d
expect 2 "-lifetime applies to the in-memory registry" server -lifetime 10m -registry redis://127.0.0.1:1
expect 2 "-server-key wants a fingerprint" chat -server 127.0.0.1:1 -id a -peer b -server-key SHA256:nope
expect 0 'usage: punch release' release -help
expect 2 'both -server HOST:PORT and -id are required' release -id a
expect 2 "bad -id 'has space'" release -server 127.0.0.1:1 -id 'has space'
expect 2 "-server-key wants a fingerprint" release -server 127.0.0.1:1 -id a -server-key x
expect 0 'usage: punch natcheck' natcheck -help
expect 2 '-server HOST:PORT is required \(a punch server started with -alt\)' natcheck
expect 2 "bad -server '1.2.3.4': expected HOST:PORT" natcheck -server 1.2.3.4
expect 2 "bad -server '1.2.3.4:0': the port must be 1-65535" natcheck -server 1.2.3.4:0
expect 2 "unexpected argument 'extra'" natcheck -server 127.0.0.1:1 extra
expect 2 'unknown option' natcheck -server 127.0.0.1:1 -frobnicate
# -print-key makes the key once, then prints the same fingerprint.
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
expect 0 '^SHA256:[A-Za-z0-9+/]{43}$' server -state "$state/s" -print-key
first=$("$punch" server -state "$state/s" -print-key)
second=$("$punch" server -state "$state/s" -print-key)
if [[ $first != "$second" || $(stat -c %a "$state/s") != 700 ||
      $(stat -c %a "$state/s/server_ed25519.pem") != 600 ]]; then
	echo "FAIL: punch server -print-key: '$first' then '$second'; modes $(stat -c %a "$state/s" "$state/s/server_ed25519.pem" | tr '\n' ' ')(want 700 600)" >&2
	failures=$((failures + 1))
else
	echo "ok: punch server -print-key is stable, state 0700, key 0600"
fi
# A valid -server-key is taken as a key and nothing else (it once fell
# through into -code, which refused the fingerprint as a code).
expect 2 '-id and -peer must differ' chat -server 127.0.0.1:1 -id a -peer a -server-key "$first"
# The task's command lines map onto the subcommands, errors included.
expect 2 "-mode=teleport is not known" -mode=teleport
expect 2 '-port wants a number' -mode=server -port=x
expect 2 "-id and -peer must differ" -mode=client -stun=127.0.0.1:1 -peer=a -target=a
expect 2 '-server HOST:PORT is required' -mode=client -peer=a -target=b
# An empty argument is read no further than its end.
expect 2 "unexpected argument ''" -mode=server ''
expect 2 "unexpected argument ''" -mode=client -stun=127.0.0.1:1 '' -peer=a -target=b
# A port that is taken (here, by the same command's first -listen): one
# sentence, exit 1.
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect 1 "cannot listen on 127.0.0.1:$port: Address already in use" \
	server -listen "127.0.0.1:$port" -listen "127.0.0.1:$port"

((failures == 0)) || { echo "$failures command-line checks failed" >&2; exit 1; }
