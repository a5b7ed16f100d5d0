#!/bin/sh
# The firmware model of the simulated locks, and lockhub-sim ctl.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

check "battery per action, jams, manual action, keypad entry, door, critical battery, factory reset" \
	sim_test model --scale 10
check "state-changed advert bit: set by changes, cleared only by a Bridge; Status 0xF1" \
	sim_test advert-bit --scale 10

# hours of battery drain in a second: 1 s real = 27 h simulated
start_sim --scale 100000 || exit 1
mv0=$(simctl back get BatteryMillivolts)
sleep 1.5
mv1=$(simctl back get BatteryMillivolts)
check "the battery drains with time ($mv0 -> $mv1 mV)" test "$mv1" -lt "$mv0"
simctl garage SetCharging yes
mv0=$(simctl garage get BatteryMillivolts)
sleep 1
mv1=$(simctl garage get BatteryMillivolts)
check "a 4th-gen battery pack charges ($mv0 -> $mv1 mV)" test "$mv1" -gt "$mv0"
check "a lock without a pack cannot charge" sh -c "! $SIM ctl front SetCharging yes 2>/dev/null"
check "ctl: read-back of the firmware" test "$(simctl back get Firmware)" = 3.6.9
simctl back SetFirmware 3.7.1
check "ctl: SetFirmware" test "$(simctl back get Firmware)" = 3.7.1
check "ctl: Dump is JSON with the lock's stores" sh -c "$SIM ctl back Dump | grep -q '\"keypad_codes\"'"
check "ctl: hub Dump lists every lock" sh -c "$SIM ctl hub Dump | grep -c '\"nuki_id\"' | grep -qx 3"
check "ctl: a bad argument is refused" sh -c "! $SIM ctl back SetBattery 300 2>/dev/null"
finish
