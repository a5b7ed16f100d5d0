#!/bin/sh
# Maintenance that rides on connections the daemon makes anyway: a changed config update
# count makes it read the configuration again (new firmware shows up), and a lock clock
# that is off by more than TimeSyncDriftSec is set. The simulated lock's clock runs
# $SIM_SCALE times faster than ours, so it drifts quickly.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
sed -i 's/^TimeSyncDriftSec=0$/TimeSyncDriftSec=30s/' "$T/lockhub.conf"
start_lockhubd
pair_lock garage garage 1234 >/dev/null || { echo "pairing failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
check "firmware after pairing" test "$(lock_prop garage Firmware)" = 4.2.8
check "model from the device type" test "$(lock_prop garage Model)" = "Nuki Smart Lock 4th gen"
check "battery sample from the battery report" test "$(db "SELECT count(*) FROM samples WHERE kind='battery-mv'")" -ge 1
check "config snapshot kept" test "$(db "SELECT count(*) FROM lock_snapshots WHERE kind='config'")" -ge 1

# A firmware update on the lock: the next connection notices the new config count.
simctl garage SetFirmware 4.3.0
check "lock after the update" wait_for 20 ctl lock garage
check "firmware re-read" wait_for 10 sh -c "busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" get-property org.lockhub \
	/org/lockhub/lock/garage org.lockhub.Lock1 Firmware | grep -q 4.3.0"
check "firmware event with the previous version" test \
	"$(db "SELECT count(*) FROM events WHERE kind='firmware' AND detail LIKE '%4.2.8%'")" = 1
check "firmware history" test "$(db "SELECT count(*) FROM firmware_history")" -ge 2

# Clock drift: 3 s here is a minute on the lock.
sleep 3
check "refresh" busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" --timeout=30 call org.lockhub /org/lockhub/lock/garage \
	org.lockhub.Lock1 Refresh
check "drift noticed" wait_for 10 grep -q "garage: the lock's clock is off by" "$T/lockhubd.log"
check "time set on the lock" wait_for 10 grep -q "garage: set the lock's clock" "$T/lockhubd.log"
check "time setting is an event" test "$(db "SELECT count(*) FROM events WHERE kind='config' AND source='hub'")" -ge 1

finish
