#!/usr/bin/env bash
# Nothing the peer sends reaches the terminal raw (scenario nat2):
#
#   escape.sh PATH_TO_PUNCH
#
# bob's chat line carries an OSC title sequence (ESC ]0;pwned BEL), a
# clear-screen (ESC [2J), an 8-bit CSI in UTF-8 (U+009B), a right-to-left
# override (U+202E) and a zero-width space (U+200B).  alice's stdout must
# hold exactly the escaped text, byte for byte, and neither of alice's
# outputs may hold an ESC, BEL or the raw override.
#
# Then bob sends alice a file whose name holds a right-to-left override
# ("invoice<U+202E>fdp.exe" shows as "invoiceexe.pdf"): alice keeps it
# under its real name, and her stderr shows the override escaped.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

DONE_S=30 # for both to finish once bob's input has ended

printf 'hi \033]0;pwned\007 \033[2J \302\233m \342\200\256gnp.exe \342\200\213x\n' >"$NET_TMP/bob.in"
# What alice must print: the same line with every control visible.
printf '%s\n' 'bob: hi \x1b]0;pwned\x07 \x1b[2J \u{9b}m \u{202e}gnp.exe \u{200b}x' >"$NET_TMP/want"

net_up nat2
lab_start_server
lab_start_client alice bob
LAB_STDIN=$NET_TMP/bob.in lab_start_peer bob alice chat
lab_wait_established alice bob
# bob's input ends after its line: bob leaves, and alice follows.
lab_wait_gone "$DONE_S" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
	fail "alice and bob: expected both to exit within $DONE_S s after bob's line; seen: still running"
for id in alice bob; do
	lab_client_exited "$id"
	expect_eq "$id's exit status" 0 "${CLIENT_RC[$id]}"
done

if ! cmp -s "$NET_TMP/want" "$RUN_DIR/alice.out"; then
	fail "alice's stdout: expected the bytes $(od -An -c "$NET_TMP/want" | tr -s ' \n' ' '); seen $(od -An -c "$RUN_DIR/alice.out" | tr -s ' \n' ' ')"
fi
for f in alice.out alice.err; do
	if LC_ALL=C grep -q -P '[\x1b\x07]|\xe2\x80\xae|\xc2\x9b' "$RUN_DIR/$f"; then
		fail "$f: expected no raw ESC, BEL, U+009B or U+202E; seen $(LC_ALL=C grep -a -P '[\x1b\x07]|\xe2\x80\xae|\xc2\x9b' "$RUN_DIR/$f" | od -An -c | head -n 3 | tr -s ' \n' ' ')"
	fi
done
lab_check_sanitizers
ok "a chat line with ESC sequences, C1, bidi and zero-width characters is printed escaped"
lab_run_stop 0 2>/dev/null || true
lab_down
rm -rf "$RUN_DIR"
lab_run_init

name=$'invoice\u202efdp.exe'
mkdir -p "$NET_TMP/in" "$NET_TMP/out"
echo "not a pdf" >"$NET_TMP/in/$name"
net_up nat2
lab_start_server
LAB_STDIN=/dev/null lab_start_peer alice bob recv "$NET_TMP/out"
LAB_STDIN=/dev/null lab_start_peer bob alice send "$NET_TMP/in/$name"
lab_wait_established alice bob
lab_wait_gone "$DONE_S" "${CLIENT_PID[alice]}" "${CLIENT_PID[bob]}" ||
	fail "alice and bob: expected both to exit within $DONE_S s of the transfer; seen: still running"
for id in alice bob; do
	lab_client_exited "$id"
	expect_eq "$id's exit status" 0 "${CLIENT_RC[$id]}"
done
[[ -f $NET_TMP/out/$name ]] || fail "alice: expected the file under its real name; seen $(ls "$NET_TMP/out")"
grep -q -F 'Receiving invoice\u{202e}fdp.exe (10 bytes) from bob' "$RUN_DIR/alice.err" ||
	fail "alice: expected 'Receiving invoice\\u{202e}fdp.exe (10 bytes) from bob' on stderr; seen $(grep -a Receiving "$RUN_DIR/alice.err" | od -An -c | tr -s '\n' ' ')"
if LC_ALL=C grep -q -P '\xe2\x80\xae' "$RUN_DIR/alice.err"; then
	fail "alice.err: expected no raw U+202E; seen it"
fi
lab_check_sanitizers
ok "a file name with a bidi override is printed escaped and kept as it is"
echo PASS
