#!/usr/bin/env bash
# scripts/demo as a user meets it, in each kind of terminal, typed into and
# read with tmux itself (send-keys to type, capture-pane to read).
#
#   demo.sh PATH_TO_PUNCH MODE
#
# MODE     the terminal                          what must happen
# inside   a pane of a running tmux session      a new window there with server, alice
#          ($TMUX set)                           and bob; they connect and chat; one
#                                                `quit` in alice's pane ends it all
# outside  a terminal, no tmux ($TMUX unset)     a session of its own, attached from the
#                                                terminal; what is typed into the
#                                                terminal reaches alice; one `quit` ends it
# ctrl_c   as inside                             Ctrl-C in the server's pane ends it all
# ctrl_c_here as inside                          Ctrl-C where the demo was started, too
# dumb     a terminal with TERM=dumb             the scripted exchange, no tmux
# noterm   no terminal (stdin /dev/null, output  the scripted exchange, even with $TMUX
#          to a file), inside tmux               set; no window opened
#
# Every ending is checked the same way: exit status 0, the summary (the
# server's stop line with errors=0, and each side's path and punch time),
# the demo's window or session gone, and no namespace left.
#
# The test's terminal is a tmux server on a socket of its own
# (punch-demotest-LAB), the demo's instance is LAB=d<pid>, and its own
# session (outside) is on socket punch-demo-LAB, so that tests never meet
# each other or a user's tmux.  Every wait is bounded; the cleanup stops
# the demo, both tmux servers and the lab instance even on failure.

set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
LAB=d$$
export LAB
# shellcheck source=../../scripts/lab
source "$REPO/scripts/lab" # lab_now, lab_alive, lab_wait_gone, lab_down, lab_nodes

PANES_S=30   # for the demo's three panes (it builds the lab first)
CONNECT_S=30 # for both "Connection established" lines
LINE_S=15    # for a chat line to show in the other pane
END_S=${DEMO_END_S:-30}     # for the demo to end after quit or Ctrl-C
SCRIPTED_S=90 # for a whole scripted run

T=(tmux -L "punch-demotest-$LAB") # the test's terminal
D=(tmux -L "punch-demo-$LAB")     # the demo's own session (outside)
TMP=""
DEMO_PID=""

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	echo "ok: $*"
}

cleanup() {
	local rc=$? left
	set +e
	trap - EXIT INT TERM
	if ((rc)) && [[ -n $TMP ]]; then
		local tm pane
		for tm in T D; do
			for pane in $(pane_ids "$tm"); do
				echo "---- pane $pane ($tm) ----" >&2
				pane_text "$tm" "$pane" | grep -v '^$' | tail -n 40 | sed 's/^/  | /' >&2
			done
		done
	fi
	# The demo first, by its pid: SIGTERM runs its own teardown.
	if [[ -n $DEMO_PID ]] && lab_alive "$DEMO_PID"; then
		kill -TERM "$DEMO_PID" 2>/dev/null
		lab_wait_gone 15 "$DEMO_PID" || kill -KILL "$DEMO_PID" 2>/dev/null
	fi
	"${T[@]}" kill-server 2>/dev/null
	"${D[@]}" kill-server 2>/dev/null
	(lab_down)
	left=$(lab_nodes | tr '\n' ' ')
	if [[ -n $left ]]; then
		echo "FAIL: namespaces of instance $LAB left behind: $left" >&2
		rc=1
	fi
	[[ -z $TMP ]] || rm -rf "$TMP"
	exit "$rc"
}

# wait_until SECONDS WHAT CMD...: polls CMD until it succeeds; fails at the
# deadline saying what it expected.
wait_until() {
	local limit=$1 what=$2
	shift 2
	lab_now
	local deadline=$((LAB_NOW + limit * 1000))
	until "$@"; do
		lab_now
		((LAB_NOW < deadline)) || fail "expected $what within $limit s; seen: not yet"
		sleep 0.1
	done
}

# pane_of TMUX_ARRAY_NAME TITLE: the id of the pane with that title.
pane_of() {
	local -n tm=$1
	"${tm[@]}" list-panes -a -F '#{pane_id} #{pane_title}' 2>/dev/null |
		awk -v t="$2" '$2 == t { print $1; exit }'
}

pane_ids() { # TMUX_ARRAY_NAME: every pane of that server
	local -n tm=$1
	"${tm[@]}" list-panes -a -F '#{pane_id}' 2>/dev/null || true
}

have_panes() { # TMUX_ARRAY_NAME
	[[ -n $(pane_of "$1" server) && -n $(pane_of "$1" alice) && -n $(pane_of "$1" bob) ]]
}

pane_text() { # TMUX_ARRAY_NAME PANE: everything the pane shows, lines joined
	local -n tm=$1
	"${tm[@]}" capture-pane -p -J -S - -t "$2" 2>/dev/null
}

pane_has() { # TMUX_ARRAY_NAME PANE ERE
	pane_text "$1" "$2" | grep -q -E -- "$3"
}

# expect_pane TMUX_ARRAY_NAME PANE ERE WHAT: the pane shows a line matching ERE.
expect_pane() {
	pane_has "$1" "$2" "$3" && return 0
	fail "$4: expected a line matching '$3'; seen:
$(pane_text "$1" "$2" | grep -v '^$' | sed 's/^/  | /')"
}

# outer_dead: the demo has exited (its status is in TMP/rc).
outer_dead() {
	[[ -s $TMP/rc ]]
}

outer_status() {
	cat "$TMP/rc"
}

# start_outer ENV...: the test's terminal, 200x60, running the demo with
# ENV (env(1) arguments).  A shell there waits for the demo (a child of its
# own, so that it, not tmux, reaps it; a Ctrl-C for the demo does not stop
# it), writes the demo's status to TMP/rc and keeps the pane open for
# capture-pane.  The demo's pid goes to TMP/pid.
start_outer() {
	printf 'set -g history-limit 5000\n' >"$TMP/tmux.conf"
	{
		echo "trap : INT"
		# shellcheck disable=SC2016 # expanded by the inner bash
		printf '%q ' bash -c 'echo $$ >"$1"; shift; exec "$@"' demo "$TMP/pid" \
			env "$@" LAB="$LAB" PUNCH="$PUNCH" "$REPO/scripts/demo"
		echo
		echo "echo \$? >$(printf '%q' "$TMP/rc")"
		echo "exec tail -f /dev/null"
	} >"$TMP/outer.sh"
	"${T[@]}" -f "$TMP/tmux.conf" new-session -d -s outer -x 200 -y 60 \
		"exec bash $(printf '%q' "$TMP/outer.sh")"
	wait_until 5 "the demo's pid" test -s "$TMP/pid"
	DEMO_PID=$(<"$TMP/pid")
}

# expect_end REASON: the demo has ended for REASON with status 0 and shown
# the summary; its window (or session) and namespaces are gone.
expect_end() {
	local reason=$1 text status
	wait_until "$END_S" "the demo to end ($reason)" outer_dead
	status=$(outer_status)
	text=$(pane_text T outer)
	[[ $status == 0 ]] || fail "expected the demo to exit 0; seen $status"
	expect_summary "$text"
	[[ -z $reason ]] || grep -q -F -- "== the demo ended: $reason" <<<"$text" ||
		fail "expected '== the demo ended: $reason'; seen: $(grep '== the demo ended' <<<"$text")"
	local windows
	windows=$("${T[@]}" list-windows -t outer 2>/dev/null | wc -l)
	((windows == 1)) || fail "expected the demo's window to be gone; seen $windows windows"
	! "${D[@]}" has-session 2>/dev/null || fail "expected the demo's own tmux session to be gone; seen it running"
	local left
	left=$(lab_nodes | tr '\n' ' ')
	[[ -z $left ]] || fail "expected no namespace of $LAB after the demo; seen $left"
	DEMO_PID=""
}

# expect_summary TEXT: the server's stop line and both paths.
expect_summary() {
	local text=$1 re
	grep -q -x -F '== summary' <<<"$text" || fail "expected '== summary'; seen none"
	re='^punch server: stopped: answered=[1-9][0-9]* challenges=([2-9]|[1-9][0-9]+) refused=0 errors=0 malformed=0$'
	grep -q -E "$re" <<<"$text" ||
		fail "expected a stop line with challenges>=2 refused=0 errors=0 malformed=0; seen: $(grep 'stopped:' <<<"$text")"
	re='^alice: 10\.0\.1\.2:[0-9]+ -> 192\.0\.2\.10:[0-9]+ \(srflx\), punch took [0-9]+ ms$'
	grep -q -E "$re" <<<"$text" || fail "expected alice's path and punch time; seen: $(grep '^alice:' <<<"$text")"
	re='^bob: 10\.0\.2\.2:[0-9]+ -> 203\.0\.113\.10:[0-9]+ \(srflx\), punch took [0-9]+ ms$'
	grep -q -E "$re" <<<"$text" || fail "expected bob's path and punch time; seen: $(grep '^bob:' <<<"$text")"
}

# connected TMUX_ARRAY_NAME: both peers connected, and the server's pane
# told the rendezvous (-log info), without per-packet detail.
connected() {
	local srv a b
	srv=$(pane_of "$1" server) a=$(pane_of "$1" alice) b=$(pane_of "$1" bob)
	wait_until "$CONNECT_S" "'Connection established' in alice's and bob's panes" \
		eval "pane_has $1 $a '^Connection established: ' && pane_has $1 $b '^Connection established: '"
	expect_pane "$1" "$srv" '^punch server: listening on 198\.51\.100\.10:3478$' "server pane"
	expect_pane "$1" "$srv" '^punch server: Step 2: alice registered from 203\.0\.113\.10:[0-9]+, looking for bob \(2 candidates\)$' "server pane"
	expect_pane "$1" "$srv" '^punch server: Step 2: bob registered from 192\.0\.2\.10:[0-9]+, looking for alice \(2 candidates\)$' "server pane"
	expect_pane "$1" "$srv" '^punch server: Step 3: (alice|bob) is ready; waiting for (bob|alice)$' "server pane"
	expect_pane "$1" "$srv" '^punch server: Step 4: introduced (alice|bob) at [0-9.:]+ and (alice|bob) at [0-9.:]+: ' "server pane"
	! pane_has "$1" "$srv" 'debug:|nonce challenge|refreshed' || fail "server pane: expected no per-packet lines at -log info; seen some"
	ok "panes: both connected; the server's pane tells registered, waiting, introduced"
}

# chat_line TMUX_ARRAY_NAME TO TEXT: TEXT shows up as a chat line in TO's pane.
wait_chat() {
	local to
	to=$(pane_of "$1" "$2")
	wait_until "$LINE_S" "'$3' in $2's pane" pane_has "$1" "$to" "^$3\$"
}

mode_inside() {
	start_outer -u CI
	wait_until "$PANES_S" "the panes server, alice and bob in a new window of the session" have_panes T
	local windows
	windows=$("${T[@]}" list-windows -t outer | wc -l)
	((windows == 2)) || fail "expected the demo in a second window of the session; seen $windows windows"
	connected T
	"${T[@]}" send-keys -t "$(pane_of T alice)" "hello from alice" Enter
	wait_chat T bob "alice: hello from alice"
	"${T[@]}" send-keys -t "$(pane_of T bob)" "hello from bob" Enter
	wait_chat T alice "bob: hello from bob"
	ok "a line each way"
	"${T[@]}" send-keys -t "$(pane_of T alice)" quit Enter
	expect_end "both chats have ended"
	ok "one quit ended the demo: summary shown, window and namespaces gone"
}

mode_outside() {
	start_outer -u CI -u TMUX -u TMUX_PANE
	wait_until "$PANES_S" "the panes server, alice and bob in the demo's own session" have_panes D
	connected D
	# typed into the terminal, through the attached client, into alice's pane
	"${T[@]}" send-keys -t outer "hello from alice" Enter
	wait_chat D bob "alice: hello from alice"
	"${D[@]}" send-keys -t "$(pane_of D bob)" "hello from bob" Enter
	wait_chat D alice "bob: hello from bob"
	ok "a line each way, alice's typed into the terminal"
	"${T[@]}" send-keys -t outer quit Enter
	expect_end "both chats have ended"
	ok "one quit ended the demo: summary shown, session and namespaces gone"
}

mode_ctrl_c() {
	start_outer -u CI
	wait_until "$PANES_S" "the panes server, alice and bob" have_panes T
	connected T
	"${T[@]}" send-keys -t "$(pane_of T server)" C-c
	expect_end "Ctrl-C in server's pane"
	ok "Ctrl-C in the server's pane ended the demo: summary shown, window and namespaces gone"
}

mode_ctrl_c_here() {
	start_outer -u CI
	wait_until "$PANES_S" "the panes server, alice and bob" have_panes T
	connected T
	"${T[@]}" send-keys -t outer:0.0 C-c
	expect_end "Ctrl-C where the demo was started"
	ok "Ctrl-C where the demo was started ended it: summary shown, window and namespaces gone"
}

# expect_scripted TEXT WHY: the scripted exchange, told why, with the
# server's story and a line each way.
expect_scripted() {
	local text=$1 why=$2
	grep -q -F -- "== $why: playing a scripted exchange instead of opening tmux" <<<"$text" ||
		fail "expected '== $why: playing a scripted exchange ...'; seen: $(head -n 3 <<<"$text")"
	grep -q -E '^  punch server: Step 4: introduced ' <<<"$text" ||
		fail "expected the server's 'Step 4: introduced' line in the scripted output"
	grep -q -E '^  > alice: hello from alice [0-9]+$' <<<"$text" ||
		fail "expected alice's line in bob's output"
	grep -q -E '^  > bob: hello from bob [0-9]+$' <<<"$text" ||
		fail "expected bob's line in alice's output"
	expect_summary "$text"
}

mode_dumb() {
	start_outer -u CI -u TMUX -u TMUX_PANE TERM=dumb
	wait_until "$SCRIPTED_S" "the scripted demo to end" outer_dead
	local status text
	status=$(outer_status)
	[[ $status == 0 ]] || fail "expected the demo to exit 0; seen $status"
	text=$(pane_text T outer)
	expect_scripted "$text" "TERM=dumb cannot show tmux's panes"
	! "${D[@]}" has-session 2>/dev/null || fail "expected no tmux session of the demo's own; seen one"
	[[ -z $(lab_nodes) ]] || fail "expected no namespace of $LAB after the demo; seen $(lab_nodes | tr '\n' ' ')"
	DEMO_PID=""
	ok "TERM=dumb: the scripted exchange and the summary"
}

mode_noterm() {
	# A tmux session is there, and $TMUX names it: with no terminal the
	# demo must still not open a window in it.
	: >"$TMP/tmux.conf"
	"${T[@]}" -f "$TMP/tmux.conf" new-session -d -s outer -x 80 -y 24 "exec tail -f /dev/null"
	local socket rc=0 text
	socket=$("${T[@]}" display-message -p '#{socket_path}')
	TMUX="$socket,1,0" timeout -k 5 "$SCRIPTED_S" env -u CI PUNCH="$PUNCH" LAB="$LAB" \
		"$REPO/scripts/demo" </dev/null >"$TMP/out" 2>&1 || rc=$?
	text=$(<"$TMP/out")
	((rc != 124)) || fail "expected the scripted demo to end within $SCRIPTED_S s; seen: killed"
	((rc == 0)) || fail "expected exit status 0; seen $rc:
$(tail -n 40 "$TMP/out" | sed 's/^/  | /')"
	expect_scripted "$text" "no terminal"
	local windows
	windows=$("${T[@]}" list-windows -t outer | wc -l)
	((windows == 1)) || fail "expected no window opened in the tmux session; seen $windows windows"
	[[ -z $(lab_nodes) ]] || fail "expected no namespace of $LAB after the demo; seen $(lab_nodes | tr '\n' ' ')"
	ok "no terminal: the scripted exchange and the summary, no window opened"
}

((EUID == 0)) || fail "the demo needs root (network namespaces), as CI has"
if (($# != 2)) || [[ ! -x $1 ]]; then fail "usage: $0 PATH_TO_PUNCH inside|outside|ctrl_c|ctrl_c_here|dumb|noterm"; fi
PUNCH=$1
command -v tmux >/dev/null || fail "tmux not found (scripts/deps.sh installs it)"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/punch-demotest.XXXXXX")
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
case $2 in
inside | outside | ctrl_c | ctrl_c_here | dumb | noterm) "mode_$2" ;;
*) fail "unknown mode '$2' (inside, outside, ctrl_c, ctrl_c_here, dumb, noterm)" ;;
esac
echo PASS
