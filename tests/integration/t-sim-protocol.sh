#!/bin/sh
# A client built from src/nuki/ against the simulated locks, over the fake BlueZ.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
start_dbus || exit 1

check "pairing: not in pairing mode, success, user limit" sim_test pairing --scale 10
check "every lock action, states, config, battery, log, keypad codes, authorizations, PIN and nonce errors" \
	sim_test protocol --scale 10
scenario "$T/ultra.ini" <<INI
[sim]
scale = 10
[lock ultra]
address = 54:D2:72:00:00:05
generation = ultra
nuki-id = 2A000005
pairing-mode = yes
security-pin = 123456
INI
check "Smart Lock Ultra pairing (wrong PIN, right PIN) and a 6-digit PIN session" \
	sim_test ultra --scenario "$T/ultra.ini"
for fmt in encrypted-no-id plain; do
	sed "s/^security-pin = 123456/security-pin = 123456\nultra-reply = $fmt/" "$T/ultra.ini" >"$T/ultra-$fmt.ini"
	check "Ultra pairing with the Authorization-ID reply as $fmt" sim_test ultra --scenario "$T/ultra-$fmt.ini"
done
finish
