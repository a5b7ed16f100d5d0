#!/bin/sh
# lockhubctl calibrate against lockhub-sim: a lock that lost its calibration shows the
# "uncalibrated" finding; without a terminal and without --yes the command is refused
# and nothing reaches the lock; with --yes the lock gets Request Calibration, goes
# through "calibration" back to locked, the finding is gone and one event records it.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
pair_lock front front 1234 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }

refresh() {
	busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" --timeout=30 call org.lockhub /org/lockhub/lock/front \
		org.lockhub.Lock1 Refresh >/dev/null
}
state_is() { test "$(lock_prop front State)" = "$1"; }

simctl front SetCalibrated no
refresh
check "lockhubd sees the lock uncalibrated" wait_for 20 state_is uncalibrated
ctl diagnose front >"$T/before.txt"
cat "$T/before.txt"
check "diagnose: the uncalibrated finding, with the command to run" sh -c \
	"grep -q 'uncalibrated' \"$T/before.txt\" && grep -q 'lockhubctl calibrate front' \"$T/before.txt\""
out=$(ctl lock front 2>&1)
rc=$?
check "an uncalibrated lock refuses to lock (exit $rc: $out)" test $rc = 4

# No terminal, no --yes: refused before anything is sent.
ctl calibrate front </dev/null >"$T/refused.out" 2>&1
rc=$?
cat "$T/refused.out"
check "refused without a terminal: exit 2 (got $rc)" test $rc = 2
check "the refusal says why and what to do" grep -q 'no terminal.*--yes' "$T/refused.out"
check "nothing reached the lock" test "$(simctl front get Calibrations)" = 0
check "the lock is still uncalibrated" test "$(simctl front get LockState)" = uncalibrated

out=$(ctl calibrate nosuch --yes 2>&1)
rc=$?
check "an unknown lock: exit 2 (got $rc: $out)" test $rc = 2

ctl calibrate front --yes >"$T/cal.out" 2>&1
rc=$?
cat "$T/cal.out"
check "calibrate --yes: exit 0 (got $rc)" test $rc = 0
check "calibrate says it is done" grep -q '^front: calibrated\.$' "$T/cal.out"
check "the lock got one Request Calibration" test "$(simctl front get Calibrations)" = 1
check "the lock is locked again" test "$(simctl front get LockState)" = locked
check "lockhubd shows it locked" wait_for 20 state_is locked
simctl front Dump >"$T/dump.json"
check "the lock logged the calibration" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert sum(1 for e in d["log"] if e["type"] == 3) == 1, d["log"][-3:]' "$T/dump.json"
check "lockhubd followed the lock through calibration" grep -q 'front: calibrated' "$T/lockhubd.log"
check "one calibrate event, from D-Bus, done" test \
	"$(db "SELECT count(*) FROM events WHERE kind='action' AND source='dbus' AND json_extract(detail,'\$.action')='calibrate' AND json_extract(detail,'\$.result')='done'")" = 1
ctl diagnose front >"$T/after.txt"
cat "$T/after.txt"
check "the finding is gone" sh -c "! grep -q 'uncalibrated' \"$T/after.txt\""
check "locking works again" ctl lock front

finish
