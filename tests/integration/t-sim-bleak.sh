#!/bin/sh
# Independent fidelity check: Debian's python3-bleak against lockhub-sim (issue 4).
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import bleak' 2>/dev/null || skip "python3-bleak is not installed"
start_dbus || exit 1
scenario "$T/s.ini" <<INI
[sim]
scale = 2
[lock front]
address = 54:D2:72:00:00:01
generation = 2
nuki-id = 2A000001
pairing-mode = yes
[lock ultra]
address = 54:D2:72:00:00:05
generation = ultra
nuki-id = 2A000005
INI
start_sim --scenario "$T/s.ini" || exit 1

check "bleak scans, connects, resolves, gets the lock's public key frame" \
	timeout 90 /usr/bin/python3 "$TOP/tests/integration/sim-bleak.py" Nuki_2A000001
check "the lock saw one connection" test "$(simctl front get Connections)" = 1
check "and no connection to the other lock" test "$(simctl ultra get Connections)" = 0
finish
