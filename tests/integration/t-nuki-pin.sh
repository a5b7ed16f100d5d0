#!/bin/sh
# A security PIN changed behind the hub's back (in the vendor's app) costs the lock one
# wrong PIN, not one per background job: after the lock rejects it, code syncs, config
# reads, log imports and a restart of lockhubd send no PIN command (the simulated lock
# counts every wrong PIN), the codes wait as pending with the reason, and diagnose names
# the finding "pin-rejected" with the command to run. A wrong PIN given with
# `lockhubctl pin` is refused by the lock and not stored; the right one is stored, clears
# the latch, and the held-back codes reach the lock.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd

check "front paired with PIN 1234" pair_lock front front 1234
id=$(db "SELECT id FROM locks WHERE name = 'front'")
for u in Alice Bob Carol Dave; do check "user $u added" ctl user add $u; done
check "Alice's code" ctl code add Alice Alice --lock front --digits 345678
state_of() { db "SELECT cl.state FROM credential_locks cl JOIN credentials c ON c.id = cl.credential_id WHERE c.name = '$1'"; }
check "Alice's code synced" wait_for 30 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT state FROM credential_locks\")\" = synced"
check "no wrong PIN so far" test "$(simctl front get PinFailures)" = 0

# the owner changes the PIN in the app; the hub still has 1234
check "the sim's PIN is now 4321" simctl front SetSecurityPin 4321
latched() { test -n "$(db "SELECT value FROM meta WHERE key = 'lock.pin-rejected.$id'")"; }
check "Bob's code" ctl code add Bob Bob --lock front --digits 456789
check "the lock rejects the stored PIN: latched" wait_for 30 latched
db "SELECT value FROM meta WHERE key = 'lock.pin-rejected.$id'"
check "the latch names the request" sh -c "sqlite3 $T/state/lockhub.db \"SELECT value FROM meta WHERE key = 'lock.pin-rejected.$id'\" | grep -q '\"request\":\"list-codes\"'"

pending_pin() {
	test "$(db "SELECT count(*) FROM credential_locks cl JOIN credentials c ON c.id = cl.credential_id WHERE c.name = '$1' AND cl.state = 'pending' AND cl.reason LIKE '%rejected the stored security PIN%lockhubctl pin front%'")" = 1
}
check "Bob's code waits as pending, with the reason" wait_for 30 pending_pin Bob

# more background work that needs the PIN: code syncs, a settings change on the lock
# (config read: time controls, drift check), a manual action (log import)
check "Carol's code" ctl code add Carol Carol --lock front --digits 567891
check "Carol's code pending with the reason" wait_for 30 pending_pin Carol
check "a sync asked for" ctl code sync front
reads=$(grep -c 'configuration changed on the lock' "$T/lockhubd.log")
check "the lock's name changes on the lock" simctl front SetSetting name Haustuer
check "the hub reads the changed config" wait_for 30 sh -c "test \$(grep -c 'configuration changed on the lock' \"$T/lockhubd.log\") -gt $reads"
check "someone locks by hand" simctl front ManualAction lock
check "the hub sees it" wait_for 30 sh -c "test \"\$(busctl --address=\"\$DBUS_SYSTEM_BUS_ADDRESS\" get-property org.lockhub /org/lockhub/lock/front org.lockhub.Lock1 State)\" = 's \"locked\"'"
check "the hub's own jobs were held back" wait_for 30 sh -c "grep -q 'rejected the stored security PIN; set it' \"$T/lockhubd.log\""
refresh() { busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.lockhub /org/lockhub/lock/front org.lockhub.Lock1 Refresh; }
check "a refresh (the queue is through)" refresh
check "exactly one wrong PIN reached the lock ($(simctl front get PinFailures))" test "$(simctl front get PinFailures)" = 1

# the latch survives a restart; the startup syncs do not try the PIN either
stop_lockhubd
check "lockhubd stopped cleanly (code $exit_code)" test "$exit_code" = 0
start_lockhubd
check "Dave's code after the restart" ctl code add Dave Dave --lock front --digits 678912
check "Dave's code pending with the reason" wait_for 30 pending_pin Dave
check "still latched" latched
check "a refresh after the restart" refresh
check "still one wrong PIN ($(simctl front get PinFailures))" test "$(simctl front get PinFailures)" = 1

# diagnose tells what happened and what to do
ctl diagnose front >"$T/diag.txt"
cat "$T/diag.txt"
check "diagnose names pin-rejected and the command" sh -c "grep -q 'pin-rejected' \"$T/diag.txt\" && grep -q 'lockhubctl pin front' \"$T/diag.txt\""
ctl diagnose front --json >"$T/diag.json"
check "JSON: the finding with its MESSAGE_ID and the request in the evidence" python3 -c '
import json, sys
f = [x for x in json.load(open(sys.argv[1]))["findings"] if x["id"] == "pin-rejected"]
assert len(f) == 1, f
assert f[0]["message_id"] == "07a28862c2b147ee98a92c134497a20e", f
assert "list-codes" in f[0]["evidence"], f' "$T/diag.json"

# a person tries a wrong PIN: one attempt, refused, nothing stored
out=$(echo 9999 | ctl pin front --pin-stdin 2>&1)
rc=$?
check "a wrong PIN is refused (exit $rc: $out)" sh -c "test $rc = 4 && echo \"\$1\" | grep -q 'rejected'" - "$out"
check "that was one more attempt ($(simctl front get PinFailures))" test "$(simctl front get PinFailures)" = 2
check "the stored PIN is still 1234" test "$("$BUILD/tools/store-secret" get "$T/state" front | cut -d' ' -f2)" = d2040000
check "still latched" latched
out=$(ctl pin front --pin=4321 2>&1)
check "the PIN is never taken on the command line (exit $?)" sh -c "echo \"\$1\" | grep -q 'never taken on the command line'" - "$out"

# the right PIN: stored, latch cleared, the codes reach the lock
out=$(echo 4321 | ctl pin front --pin-stdin 2>&1)
rc=$?
check "the right PIN is accepted (exit $rc: $out)" test $rc = 0
check "stored (4321)" test "$("$BUILD/tools/store-secret" get "$T/state" front | cut -d' ' -f2)" = e1100000
check "the latch is cleared" sh -c "! test -n \"\$(sqlite3 $T/state/lockhub.db \"SELECT value FROM meta WHERE key = 'lock.pin-rejected.$id'\")\""
synced_all() { test "$(db "SELECT count(*) FROM credential_locks WHERE state = 'synced'")" = 4; }
check "all four codes synced" wait_for 60 synced_all
check "the lock holds the four codes ($(simctl front get KeypadCodes))" test "$(simctl front get KeypadCodes)" = 4
check "no more wrong PINs ($(simctl front get PinFailures))" test "$(simctl front get PinFailures)" = 2
ctl diagnose front --json >"$T/diag2.json"
check "the finding is gone" python3 -c '
import json, sys
assert not [x for x in json.load(open(sys.argv[1]))["findings"] if x["id"] == "pin-rejected"]' "$T/diag2.json"

stop_lockhubd
check "lockhubd exited cleanly (code $exit_code)" test "$exit_code" = 0
check "no sanitizer finding in lockhubd or the simulator" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \"$T/lockhubd.log\" \"$T/sim.log\""
finish
