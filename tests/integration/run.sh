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
for t in "$here"/t-*.sh; do
	[ -e "$t" ] || continue
	name=${t##*/}
	log="$logdir/$name.log"
	start=$(date +%s)
	sh "$t" >"$log" 2>&1 </dev/null
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
	77) skip=$((skip + 1)); echo "SKIP $name: $(tail -n 1 "$log")" ;;
	*) fail=$((fail + 1)); echo "FAIL $name (exit $rc, ${secs}s)"; sed 's/^/    /' "$log" | tail -n 60 ;;
	esac
done
rm -rf "$logdir"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
