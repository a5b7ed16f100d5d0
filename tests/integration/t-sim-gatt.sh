#!/bin/sh
# lockhub-sim vs reference/bluez.md section 10, "GATT".
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

check "ReadValue/WriteValue options and errors, ATT error mapping, notify sessions, MTU, cache" \
	sim_test gatt --scale 10
check "Service Changed live re-add; stale handles until RemoveDevice" sim_test service-changed --scale 10
finish
