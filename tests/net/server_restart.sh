#!/usr/bin/env bash
# The rendezvous server restarts while alice waits for bob:
#
#   server_restart.sh PATH_TO_PUNCH
#
# Scenario nat2.  alice starts and registers (her "Step 3" line: registered,
# now waiting for bob); the server is killed (SIGKILL, as a crash) and
# started again with an empty registry; then bob starts.  The clients
# refresh their registrations every 10 s, so alice re-registers on her own:
# both must connect within 30 s of bob's start, chat a line each way, and
# quit cleanly.  Built from scripts/lab's functions, since `run` has no
# restart step.

set -euo pipefail
source "$(dirname "$0")/lib.sh"
net_init "${1:-}"

CONNECT_S=30 # two refresh periods and some

net_up nat2
lab_start_server
lab_start_client alice bob
lab_wait_client alice "$LAB_READY_RE" "a line matching /$LAB_READY_RE/ on stderr (registered, waiting for bob)"
echo "alice registered; killing the server"
{ # (stderr: bash's "Killed" notice for the job)
	kill -KILL "$SERVER_PID"
	lab_wait_gone "$LAB_STOP_S" "$SERVER_PID" || fail "punch server (pid $SERVER_PID): expected gone after SIGKILL; seen still running"
	wait "$SERVER_PID" || true
} 2>/dev/null
SERVER_PID=""
lab_start_server
echo "server restarted; starting bob"
lab_start_client bob alice
OPT_TIMEOUT=$CONNECT_S lab_wait_established alice bob
lab_chat alice bob
lab_chat bob alice
lab_quit alice bob
lab_check_sanitizers
lab_path alice
echo "alice: $PATH_LOCAL -> $PATH_REMOTE ($PATH_TYPE) in $PATH_MS ms"
expect_eq "alice's remote address" 192.0.2.10 "${PATH_REMOTE%:*}"
lab_path bob
echo "bob: $PATH_LOCAL -> $PATH_REMOTE ($PATH_TYPE) in $PATH_MS ms"
expect_eq "bob's remote address" 203.0.113.10 "${PATH_REMOTE%:*}"
echo PASS
