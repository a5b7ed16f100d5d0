#!/bin/sh
# The Nuki driver's keypad-code operations against lockhub-sim (through
# tests/tools/nuki-driver-probe, as lockhubd does not expose them yet): add, list (with
# the digits and names the lock reports), update, remove; a duplicate, an invalid code
# and an unknown id are refused with distinct errors.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

start_dbus
start_sim --scale 20
simctl front SetPairingMode yes
addr=$(simctl front get Address)
timeout 60 "$BUILD/tools/nuki-driver-probe" "$addr" 1234 \
	list add 345678 Alice add 456789 Bob list add 345678 Again add 120000 Bad \
	update 1 349999 Alicia 0 list update 77 345678 Nobody 1 remove 2 list remove 2 \
	>"$T/out" 2>"$T/err"
rc=$?
cat "$T/out"
check "probe ran every command (exit $rc)" test $rc = 0
check "paired" grep -q '^pair ok' "$T/out"
check "empty list at first" sh -c "sed -n 2p \"$T/out\" | grep -qx 'list ok 0'"
check "Alice added with id 1" sh -c "sed -n 3p \"$T/out\" | grep -qx 'add ok 1'"
check "Bob added with id 2" sh -c "sed -n 4p \"$T/out\" | grep -qx 'add ok 2'"
check "list shows both with digits" sh -c "sed -n 5p \"$T/out\" | grep -qx 'list ok 2 1:Alice:345678:1 2:Bob:456789:1'"
check "a duplicate code: EEXIST" sh -c "sed -n 6p \"$T/out\" | grep -q '^add error EEXIST'"
check "an invalid code: EINVAL" sh -c "sed -n 7p \"$T/out\" | grep -q '^add error EINVAL'"
check "update ok" sh -c "sed -n 8p \"$T/out\" | grep -qx 'update ok'"
check "list shows the update (disabled)" sh -c "sed -n 9p \"$T/out\" | grep -qx 'list ok 2 1:Alicia:349999:0 2:Bob:456789:1'"
check "update of an unknown id: ENOENT" sh -c "sed -n 10p \"$T/out\" | grep -q '^update error ENOENT'"
check "remove ok" sh -c "sed -n 11p \"$T/out\" | grep -qx 'remove ok'"
check "list after remove" sh -c "sed -n 12p \"$T/out\" | grep -qx 'list ok 1 1:Alicia:349999:0'"
check "removing it again: ENOENT" sh -c "sed -n 13p \"$T/out\" | grep -q '^remove error ENOENT'"
check "the sim holds one code" test "$(simctl front get KeypadCodes)" = 1

finish
