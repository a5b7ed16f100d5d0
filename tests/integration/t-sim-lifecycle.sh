#!/bin/sh
# lockhub-sim vs reference/bluez.md section 10, "Lifecycle", and the timing knobs.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

check "clean shutdown, crash and restart as a client sees them" sim_test lifecycle --scale 10
scenario "$T/reorder.ini" <<INI
[sim]
scale = 10
connect-reply-first = yes
remove-parents-first = yes
INI
check "scripted reorderings: Connect reply first, parents removed first" \
	sim_test reorder --scenario "$T/reorder.ini"

# SIGTERM: the same clean shutdown, then the process exits by itself
scenario "$T/slow.ini" <<INI
[sim]
scale = 10
disconnect-delay = 8000
INI
start_sim --scenario "$T/slow.ini" || exit 1
kill -TERM $SIM_PID
check "SIGTERM: lockhub-sim exits" wait_for 5 sh -c "! kill -0 $SIM_PID 2>/dev/null"
check "after powering its adapters off" grep -q "org.bluez goes away (clean shutdown)" "$T/sim.log"
finish
