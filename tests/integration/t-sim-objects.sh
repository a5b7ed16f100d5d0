#!/bin/sh
# lockhub-sim vs reference/bluez.md section 10, "Object model": paths, types, optional
# properties, InterfacesAdded/Removed shape and order, batching, error names.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

check "object tree, paths, D-Bus types, optional properties, added/removed order" sim_test objects --scale 10
check "Get/Set error names, read-only, UnknownMethod, UnknownObject, ConnectDevice absent" sim_test errors --scale 10
finish
