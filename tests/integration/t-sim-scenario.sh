#!/bin/sh
# Scenario files: every error reported with file:line, in one pass.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

scenario "$T/bad.ini" <<INI
[sim]
scale = fast
nope = 1
[lock front door]
address = 54:D2:72:00:00:01
[lock back]
generation = 7
INI
"$SIM" --scenario "$T/bad.ini" >"$T/bad.out" 2>&1
check "a bad scenario is refused" test $? -ne 0
check "unknown key, with file:line" grep -q "bad.ini:3: unknown key 'nope'" "$T/bad.out"
check "bad lock name" grep -q "bad.ini:4: bad lock name" "$T/bad.out"
check "bad generation" grep -q "bad.ini:7: generation" "$T/bad.out"
check "bad scale" grep -q "bad.ini:2: scale" "$T/bad.out"

scenario "$T/two.ini" <<INI
[sim]
scale = 10
[adapter hci0]
address = 00:1A:7D:DA:71:10
[adapter hci1]
address = 00:1A:7D:DA:71:11
rssi-offset = -10
[lock porch]
address = 54:D2:72:00:00:09
generation = 3
known = yes
paired = yes
auth-id = 7
auth-key = 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
INI
start_sim --scenario "$T/two.ini" || exit 1
check "two adapters" busctl --system --no-pager introspect org.bluez /org/bluez/hci1 org.bluez.Adapter1
check "a known lock exists in BlueZ at start" \
	busctl --system --no-pager introspect org.bluez /org/bluez/hci0/dev_54_D2_72_00_00_09 org.bluez.Device1
check "a paired lock holds the bridge authorization" test "$(simctl porch get Authorizations)" = 1
finish
