#!/bin/sh
# Removing a lock while a command runs on it: the command fails at once saying the lock
# was removed, the removal goes through, and lockhubd carries on (other locks work, a
# clean exit, no sanitizer finding under SAN=1).
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
pair_lock front front 1234 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
# No PIN: unpairing does not go to the lock, so it does not wait behind the command.
pair_lock back back >/dev/null || { echo "pairing back failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }

state_is() { test "$(lock_prop back State)" = "$1"; }
simctl back SetMotorFactor 20
ctl unlock back >"$T/unlock.out" 2>&1 &
unlock_pid=$!
check "the unlock is running (motor turning)" wait_for 60 state_is unlocking
out=$(ctl unpair back 2>&1)
rc=$?
check "unpair while it runs: exit 0 (got $rc: $out)" test $rc = 0
wait_exit $unlock_pid 30
check "the running unlock fails (exit $exit_code: $(cat "$T/unlock.out"))" test "$exit_code" != 0
check "... saying the lock was removed" grep -q 'the lock was removed' "$T/unlock.out"
check "back is gone" sh -c "! \"$BUILD/lockhubctl\" list | grep -q '^back '"
check "lockhubd goes on: front still works" ctl unlock front
check "... and moved" test "$(simctl front get LockState)" = unlocked

stop_lockhubd
check "lockhubd exited cleanly (code $exit_code)" test "$exit_code" = 0
check "no sanitizer finding in lockhubd" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \"$T/lockhubd.log\""
finish
