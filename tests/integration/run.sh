#!/bin/sh
# Runs every tests/integration/t-*.sh. Each script exits 0 (pass), 77 (skipped, with a
# reason on its last output line) or anything else (fail). Output of a failing script
# is shown; the last line is "N passed, N failed, N skipped".
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
export LOCKHUB_TOP="$top"
export LOCKHUB_BUILD="${LOCKHUB_BUILD:-build}"
case "$LOCKHUB_BUILD" in /*) ;; *) LOCKHUB_BUILD="$top/$LOCKHUB_BUILD" ;; esac

pass=0 fail=0 skip=0
logdir=$(mktemp -d "${TMPDIR:-/tmp}/lockhub-it.XXXXXX")

# run_one T [bg]: runs a script, leaves its log and "exit-status seconds" in $logdir; in the
# background (bg) a TERM to it is passed on to the script, which stops what it started
_child=""
run_one() {
	_start=$(date +%s)
	sh "$1" >"$logdir/${1##*/}.log" 2>&1 </dev/null &
	_child=$!
	[ $# -gt 1 ] && trap 'kill $_child 2>/dev/null; wait $_child; exit 143' INT TERM
	wait $_child
	echo "$? $(($(date +%s) - _start))" >"$logdir/${1##*/}.rc"
	_child=""
}

# report NAME: one line for a finished script (its log when it failed)
report() {
	read -r rc secs <"$logdir/$1.rc"
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $1 (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "SKIP $1: $(tail -n 1 "$logdir/$1.log")" ;;
	*) fail=$((fail + 1)); echo "FAIL $1 (exit $rc, ${secs}s)"; sed 's/^/    /' "$logdir/$1.log" | tail -n 60 ;;
	esac
}

# A script with the line "# lockhub-it: alongside" spends minutes waiting on lockhubd's
# real-time timers (the recovery ladder, NotSeenSec=) and opens no TCP port: those run in
# the background, started first, while the others run one after another.
alongside="" bg_pids=""
trap 'kill $bg_pids $_child 2>/dev/null; wait; rm -rf "$logdir"; exit 130' INT TERM
for t in "$here"/t-*.sh; do
	grep -q '^# lockhub-it: alongside' "$t" || continue
	run_one "$t" bg &
	bg_pids="$bg_pids $!"
	alongside="$alongside ${t##*/}"
done
for t in "$here"/t-*.sh; do
	[ -e "$t" ] || continue
	case " $alongside " in *" ${t##*/} "*) continue ;; esac
	run_one "$t"
	report "${t##*/}"
done
for p in $bg_pids; do wait "$p"; done
for name in $alongside; do report "$name"; done
rm -rf "$logdir"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
