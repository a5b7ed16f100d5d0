#!/bin/sh
# lockhub-sim vs reference/bluez.md section 10, "Device".
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

check "Connect/Disconnect order, timings and error messages; set-up failure; link loss" \
	sim_test connect --scale 10
check "Pair, CancelPairing, Trusted, Alias, NotConnected while disconnecting; connections survive the client" \
	sim_test device --scale 10
check "5.83 mode: Device1.Disconnected before Connected=false" \
	sim_test disconnected-signal --scale 10 --disconnected-signal
finish
