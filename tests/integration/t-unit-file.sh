#!/bin/sh
# The shipped unit: `systemd-analyze verify` prints nothing, and the offline security
# score is at most 1.0; with the drop-in for a broker over a Unix socket
# (systemd/lockhubd-unix-broker.conf) it still verifies, and scores at most 0.3.
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

# The Unix-socket broker variant: the same unit with the drop-in next to it.
mkdir -p "$T/lockhubd.service.d"
cp "$TOP/systemd/lockhubd-unix-broker.conf" "$T/lockhubd.service.d/"
out=$(systemd-analyze verify --man=no "$T/lockhubd.service" 2>&1)
check "with the Unix-socket drop-in: verify prints nothing" test -z "$out"
[ -n "$out" ] && echo "$out"
systemd-analyze security --offline=yes "$T/lockhubd.service" >"$T/sec" 2>&1
local_score=$(sed -n 's/.*Overall exposure level for lockhubd.service: \([0-9.]*\).*/\1/p' "$T/sec")
echo "exposure with the Unix-socket drop-in: $local_score"
check "the drop-in is applied: no network namespace finding" sh -c "! grep -q '✗ PrivateNetwork=' '$T/sec'"
check "exposure score with the drop-in $local_score <= 0.3" awk -v s="$local_score" \
	'BEGIN { exit !(s != "" && s + 0 <= 0.3) }'

finish
