#!/bin/sh
# lockhub-it: alongside
# The recovery ladder against Bluetooth faults in lockhub-sim, without restarting
# lockhubd: a hung adapter under two failing locks is power-cycled and both locks work
# again, and a second hang soon after is power-cycled too once the wait after the first
# cycle is over; a bluetoothd crash is recorded and everything is rebuilt; an adapter powered
# off by someone else is waited for, not climbed over; a stale GATT cache
# (the lock's table moved without Service Changed) is cleared by removing the device,
# after which commands work again. Every step is in recovery_attempts with its outcome.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf "[Health]" "RetryBackoffMinSec=1s" "RetryBackoffMaxSec=10s" "RecoveryMaxAttempts=5"
start_lockhubd
simctl front SetSecurityPin 8361 # the PIN the hub is given (a wrong one would be a finding)
simctl back SetSecurityPin 8361
pair_lock front front 8361 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
pair_lock back back 8361 >/dev/null || { echo "pairing back failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
check "both locks work" sh -c "\"$BUILD/lockhubctl\" lock front && \"$BUILD/lockhubctl\" lock back"

attempts() { db "SELECT coalesce((SELECT name FROM locks WHERE id=lock_id),'hub') || ':' || step || ':' || outcome FROM recovery_attempts ORDER BY id" | tr '\n' ' '; }
count() { db "SELECT count(*) FROM recovery_attempts WHERE $1"; }

# ---- hung adapter ----
simctl hub HangAdapter hci0
ctl unlock front >/dev/null 2>&1 &
track $!
ctl unlock back >/dev/null 2>&1 &
track $!
check "the adapter is power-cycled once" wait_for 120 sh -c "test \"\$(sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE step='adapter-power-cycle' AND outcome!='skipped'\")\" -ge 1"
echo "attempts: $(attempts)"
check "... and it worked: a step succeeded afterwards" wait_for 60 sh -c "test \"\$(sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE outcome='success' AND
	  id >= (SELECT min(id) FROM recovery_attempts WHERE step='adapter-power-cycle' AND outcome!='skipped')\")\" -ge 1"
check "only one power cycle" test "$(count "step='adapter-power-cycle' AND outcome NOT IN ('skipped')")" = 1
check "front works after the power cycle" wait_for 30 ctl lock front
check "back works after the power cycle" wait_for 30 ctl lock back
echo "attempts: $(attempts)"

# ---- the adapter hangs again at once: within the wait after the first cycle the cycle
# is skipped (recorded), and once the wait is over the ladder climbs to it again ----
simctl hub HangAdapter hci0
ctl unlock front >/dev/null 2>&1 &
track $!
check "the second hang is power-cycled too" wait_for 300 sh -c "test \"\$(sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE step='adapter-power-cycle' AND outcome!='skipped'\")\" -ge 2"
echo "attempts: $(attempts)"
db "SELECT detail FROM recovery_attempts WHERE step='adapter-power-cycle' AND outcome='skipped'"
check "no power cycle was skipped for an unknown adapter" \
	test "$(count "step='adapter-power-cycle' AND detail LIKE '%not known%'")" = 0
check "the power cycles name the adapter" \
	test "$(count "step='adapter-power-cycle' AND outcome!='skipped' AND adapter='hci0'")" -ge 2
check "front works after the second power cycle" wait_for 60 ctl lock front
check "back works after the second power cycle" wait_for 60 ctl lock back

# ---- bluetoothd crash ----
n=$(count "1")
simctl hub CrashBluez 2000
check "the restart of bluetoothd is recorded" wait_for 30 sh -c "test \"\$(sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE step='bluez-restart' AND outcome='success'\")\" -ge 1"
check "front works after the crash, lockhubd still the same process" sh -c \
	"kill -0 $LOCKHUBD_PID && \"$BUILD/lockhubctl\" unlock front"
check "back too" wait_for 30 ctl unlock back

# ---- the adapter powered off by someone else: wait, do not climb, resume ----
n=$(count "1")
busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" set-property org.bluez /org/bluez/hci0 org.bluez.Adapter1 Powered b false
check "lockhubd noticed the adapter going away" wait_for 10 grep -q 'hci0 was powered off by someone else' "$T/lockhubd.log"
ctl unlock front >/dev/null 2>&1
sleep 6
check "no recovery step while the only adapter is off ($(attempts))" test "$(count "1")" = "$n"
busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" set-property org.bluez /org/bluez/hci0 org.bluez.Adapter1 Powered b true
check "front works when the adapter is back" wait_for 30 ctl unlock front

# ---- stale GATT cache ----
ctl lock front >/dev/null 2>&1
simctl front ServiceChanged
ctl unlock front >/dev/null 2>&1
check "the device is removed from BlueZ" wait_for 120 sh -c "test \"\$(sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE step='device-remove' AND
	  lock_id=(SELECT id FROM locks WHERE name='front')\")\" -ge 1"
echo "attempts: $(attempts)"
check "commands work again after rediscovery" wait_for 60 ctl unlock front
check "the sim agrees" test "$(simctl front get LockState)" = unlocked
db "SELECT step, outcome, detail FROM recovery_attempts WHERE lock_id=(SELECT id FROM locks WHERE name='front') ORDER BY id DESC LIMIT 6"
ctl diagnose front

finish
