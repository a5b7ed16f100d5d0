#!/bin/sh
# A lock being calibrated shows "calibrating" (D-Bus State, lockhubctl status), not
# "unknown", and is locked when it is done; calibrating a lock that does not exist says
# so before announcing anything.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
pair_lock front front 1234 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }

out=$(ctl calibrate nosuch --yes 2>&1)
rc=$?
check "an unknown lock: exit 2 (got $rc: $out)" test $rc = 2
check "... says there is no such lock" sh -c "echo \"\$1\" | grep -q \"no lock named 'nosuch'\"" - "$out"
check "... and announces no calibration" sh -c "! echo \"\$1\" | grep -q 'Calibrating'" - "$out"
out=$(ctl calibrate nosuch </dev/null 2>&1)
rc=$?
check "without --yes either: exit 2, no question (got $rc: $out)" sh -c \
	"test $rc = 2 && echo \"\$1\" | grep -q 'no lock named' && ! echo \"\$1\" | grep -q 'Calibrate nosuch'" - "$out"

# A slow motor, so the calibration lasts long enough to be seen.
simctl front SetMotorFactor 10
state_is() { test "$(lock_prop front State)" = "$1"; }
ctl calibrate front --yes >"$T/cal.out" 2>&1 &
cal=$!
check "State is calibrating while it runs" wait_for 60 state_is calibrating
ctl status front >"$T/status.out" 2>&1
check "lockhubctl status shows calibrating" grep -q 'State: calibrating' "$T/status.out"
ctl list >"$T/list.out" 2>&1
check "lockhubctl list shows calibrating" grep -q '^front .* calibrating ' "$T/list.out"
wait $cal
rc=$?
check "calibrate exits 0 (got $rc: $(cat "$T/cal.out"))" test $rc = 0
check "locked when done" wait_for 20 state_is locked
check "a state event to calibrating" test "$(db "SELECT count(*) FROM events WHERE kind='state' AND detail LIKE '%\"to\":\"calibrating\"%'")" -ge 1

stop_lockhubd
check "lockhubd exited cleanly (code $exit_code)" test "$exit_code" = 0
check "no sanitizer finding in lockhubd" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \"$T/lockhubd.log\""
finish
