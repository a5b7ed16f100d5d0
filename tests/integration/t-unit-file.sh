#!/bin/sh
# The shipped unit: `systemd-analyze verify` prints nothing, and the offline security
# score is at most 1.0.
. "$LOCKHUB_TOP/tests/integration/lib.sh"

command -v systemd-analyze >/dev/null 2>&1 || skip "systemd-analyze not installed"
sed "s|@SBINDIR@|$BUILD|g" "$TOP/systemd/lockhubd.service.in" >"$T/lockhubd.service"

out=$(systemd-analyze verify --man=no "$T/lockhubd.service" 2>&1)
check "systemd-analyze verify prints nothing" test -z "$out"
[ -n "$out" ] && echo "$out"

score=$(systemd-analyze security --offline=yes "$T/lockhubd.service" 2>&1 |
	sed -n 's/.*Overall exposure level for lockhubd.service: \([0-9.]*\).*/\1/p')
echo "exposure: $score"
check "exposure score $score <= 1.0" awk -v s="$score" 'BEGIN { exit !(s != "" && s + 0 <= 1.0) }'

finish
