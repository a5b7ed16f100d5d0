#!/bin/sh
# lockhub-sim vs reference/bluez.md section 10, "Device".
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

check "Connect/Disconnect order, timings and error messages; link loss" sim_test connect --scale 10
check "Pair, CancelPairing, Trusted, Alias; connections survive the client" sim_test device --scale 10
finish
