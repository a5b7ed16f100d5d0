#!/bin/sh
# lockhub-it: alongside
# The adapter of a lock that is not advertising is still known: a lock paired earlier
# that sends no advert after lockhubd starts belongs to the adapter its BlueZ device
# object is under (/org/bluez/hci0/dev_...). When that adapter hangs, the ladder's
# adapter rung power-cycles it (rather than skipping it as "not known"), naming hci0,
# and the lock works again.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf "[Health]" "RetryBackoffMinSec=1s" "RetryBackoffMaxSec=10s" "RecoveryMaxAttempts=5"
start_lockhubd
simctl front SetSecurityPin 8361
pair_lock front front 8361 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
check "front works" ctl lock front

# no more adverts from front (a day between them), and a lockhubd that never heard one
for l in front back garage; do simctl $l SetAdvInterval 86400000 >/dev/null 2>&1; done
stop_lockhubd
: >"$T/lockhubd.log"
start_lockhubd
check "lockhubd knows front" wait_for 10 ctl status front

simctl hub HangAdapter hci0
ctl unlock front >/dev/null 2>&1 &
track $!
cycles() { db "SELECT count(*) FROM recovery_attempts WHERE step='adapter-power-cycle' AND outcome!='skipped'"; }
check "the hung adapter is power-cycled" wait_for 400 sh -c "test \"\$(sqlite3 \"$T/state/lockhub.db\" \
	\"SELECT count(*) FROM recovery_attempts WHERE step='adapter-power-cycle' AND outcome!='skipped'\")\" -ge 1"
db "SELECT step, outcome, adapter, detail FROM recovery_attempts ORDER BY id"
check "no step was skipped for an unknown adapter" \
	test "$(db "SELECT count(*) FROM recovery_attempts WHERE detail LIKE '%not known%'")" = 0
check "the power cycle names hci0" \
	test "$(db "SELECT count(*) FROM recovery_attempts WHERE step='adapter-power-cycle' AND outcome!='skipped' AND adapter='hci0'")" -ge 1
check "front works again" wait_for 60 ctl lock front
check "the sim agrees" test "$(simctl front get LockState)" = locked

finish
