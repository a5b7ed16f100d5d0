#!/bin/sh
# The recovery ladder in lockhubd against lockhub-sim: a lock out of range makes the
# ladder climb (each step stored with its outcome and as a "recovery" event), bounded;
# after NotSeenSec= diagnose says "not seen" first; the ladder recovers by itself when
# the lock is back and the finding goes away; revoked authorizations make the lock
# "needs re-pairing" at once, and diagnose says so first. Commands leave latency
# samples behind, and a reload keeps the ladders working.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf "[Health]" "RetryBackoffMinSec=1s" "RetryBackoffMaxSec=6s" "RecoveryMaxAttempts=5" "NotSeenSec=1min"
start_lockhubd
simctl front SetSecurityPin 8361 # the PIN the hub is given (a wrong one would be a finding)
pair_lock front front 8361 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
check "lock works" ctl lock front
check "the command's round trip is a latency sample" test "$(db "SELECT count(*) FROM samples WHERE kind='latency-ms'")" -ge 1
kill -HUP "$LOCKHUBD_PID"
check "reloaded" wait_for 10 grep -q 'reloaded' "$T/lockhubd.log"

attempts() { db "SELECT step || ':' || outcome FROM recovery_attempts ORDER BY id" | tr '\n' ' '; }

# Out of range: the command fails, the ladder takes over.
simctl front SetInRange no
ctl unlock front >/dev/null 2>&1
check "first retry recorded as failed" wait_for 30 sh -c "sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE step='retry' AND outcome='failure'\" | grep -qx '[1-9]'"
check "the ladder climbs to reconnect" wait_for 40 sh -c "sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE step='reconnect'\" | grep -qx '[1-9]'"
echo "attempts: $(attempts)"
check "each step is also a recovery event" test \
	"$(db "SELECT count(*) FROM events WHERE kind='recovery'")" = "$(db "SELECT count(*) FROM recovery_attempts")"
check "the adapter is not power-cycled for one silent lock" test \
	"$(db "SELECT count(*) FROM recovery_attempts WHERE step='adapter-power-cycle' AND outcome!='skipped'")" = 0
sleep 20
n1=$(db "SELECT count(*) FROM recovery_attempts")
sleep 12
n2=$(db "SELECT count(*) FROM recovery_attempts")
check "bounded: at most a slow probe now and then ($n1 → $n2 in 12 s)" test $((n2 - n1)) -le 3
cat >"$T/first-finding" <<EOF
#!/bin/sh
"$BUILD/lockhubctl" diagnose front --json |
	python3 -c 'import json,sys; f=json.load(sys.stdin)["findings"]; print(f[0]["id"] if f else "none")'
EOF
chmod +x "$T/first-finding"
check "after NotSeenSec=, the first finding is not-seen" wait_for 90 sh -c "test \"\$(\"$T/first-finding\")\" = not-seen"
check "connection failures are samples" test "$(db "SELECT count(*) FROM samples WHERE kind='connect-failed'")" -ge 1
ctl diagnose front >"$T/diag.txt"
cat "$T/diag.txt"
check "diagnose lists what the hub tried" grep -q '^What the hub tried:' "$T/diag.txt"

# Back in range: the ladder's probe finds it; the lock works.
simctl front SetInRange yes
check "recovered by itself: a step succeeded" wait_for 40 sh -c "sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE outcome='success'\" | grep -qx '[1-9]'"
check "lock works again" ctl lock front
check "not-seen is gone" sh -c "! \"$BUILD/lockhubctl\" diagnose front | grep -q not-seen"
echo "attempts: $(attempts)"

# Authorizations revoked: needs re-pairing, at once.
simctl front RevokeAuthorizations
out=$(ctl unlock front 2>&1)
echo "$out"
check "needs-repair recorded" wait_for 10 sh -c "sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE step='needs-repair'\" | grep -qx 1"
check "NeedsRepair on D-Bus" test "$(lock_prop front NeedsRepair)" = true
ctl diagnose front >"$T/diag2.txt"
cat "$T/diag2.txt"
check "diagnose: needs-repair first, with the command to run" sh -c \
	"grep '^1\\. ' \"$T/diag2.txt\" | grep -q needs-repair && grep -q 'lockhubctl pair front' \"$T/diag2.txt\""
n1=$(db "SELECT count(*) FROM recovery_attempts")
sleep 8
check "no more steps while it needs re-pairing" test "$(db "SELECT count(*) FROM recovery_attempts")" = "$n1"

finish
