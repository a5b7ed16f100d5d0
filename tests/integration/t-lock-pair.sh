#!/bin/sh
# Pairing and lock control against lockhub-sim: pair a lock in pairing mode (credentials
# in the 0600 database, a Bridge authorization with our name on the lock), refuse a lock
# that is not in pairing mode and a name that is taken, then lock, unlock and unlatch
# through lockhubctl and through the D-Bus API; the simulated lock and the daemon agree
# and the events say "dbus".
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd

# "back" is not in pairing mode.
out=$(ctl pair "$(simctl back get Address)" --name back 2>&1)
rc=$?
check "pairing a lock not in pairing mode fails with exit 4 (got $rc)" test $rc = 4
check "... and says why ($out)" sh -c "echo \"\$1\" | grep -q 'not in pairing mode'" - "$out"
check "... and stores nothing" test "$(db 'SELECT count(*) FROM locks')" = 0

# "front" is: found without an address.
simctl front SetPairingMode yes
# The advert takes a moment to be seen, as with a real lock; a refused attempt changes nothing.
wait_for 10 sh -c "echo 1234 | \"$BUILD/lockhubctl\" pair --name front --pin-stdin >\"$T/pair.out\" 2>&1"
rc=$?
out=$(cat "$T/pair.out")
echo "$out"
check "pair without an address exits 0 (got $rc)" test $rc = 0
check "pair prints the model and firmware" sh -c "echo \"\$1\" | grep -q 'Firmware: 2.12.4'" - "$out"
check "lock object on D-Bus" test "$(lock_prop front Address)" = "$(simctl front get Address)"
# sealed with the hub key (32 + 41 bytes); the store opens them again
check "credentials in the database, sealed" test "$(db "SELECT key_version || ':' || length(shared_key_sealed) FROM locks WHERE name='front'")" = 1:73
check "security PIN stored" test "$("$BUILD/tools/store-secret" get "$T/state" front | cut -d' ' -f2)" = d2040000
check "database mode 0600" test "$(stat -c %a "$T/state/lockhub.db")" = 600
simctl front Dump >"$T/front.json"
check "the lock holds a Bridge authorization named front" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if any(a["type"] == 1 and a["name"] == "front" for a in d["authorizations"]) else 1)' "$T/front.json"
check "firmware read after pairing" test "$(lock_prop front Firmware)" = 2.12.4
check "pairing event recorded" test "$(db "SELECT count(*) FROM events WHERE kind='pairing'")" = 1

out=$(ctl pair "$(simctl front get Address)" --name front2 2>&1)
rc=$?
check "pairing it again is refused (exit $rc): $out" sh -c "test $rc = 4 && echo \"\$1\" | grep -q 'paired already'" - "$out"
simctl back SetPairingMode yes
out=$(ctl pair "$(simctl back get Address)" --name front 2>&1)
rc=$?
check "a taken name is refused (exit $rc): $out" sh -c "test $rc = 2 && echo \"\$1\" | grep -q 'exists already'" - "$out"
simctl back SetPairingMode no

# Lock control through lockhubctl ...
check "lockhubctl unlock" ctl unlock front
check "sim unlocked" test "$(simctl front get LockState)" = unlocked
check "daemon state unlocked" test "$(lock_prop front State)" = unlocked
check "lockhubctl lock" ctl lock front
check "sim locked" test "$(simctl front get LockState)" = locked
check "daemon state locked" test "$(lock_prop front State)" = locked
check "lockhubctl open" ctl open front
check "sim unlatched, then resting unlocked" test "$(simctl front get LockState)" = unlocked
# ... and through the D-Bus API.
check "busctl Lock" busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" --timeout=30 call org.lockhub \
	/org/lockhub/lock/front org.lockhub.Lock1 Lock
check "sim locked again" test "$(simctl front get LockState)" = locked
check "daemon follows" test "$(lock_prop front State)" = locked
check "last action is lock by dbus" sh -c "busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" get-property org.lockhub \
	/org/lockhub/lock/front org.lockhub.Lock1 LastAction | grep -q '\"lock\" \"dbus\"'"
simctl front Dump >"$T/front2.json"
check "the sim's log grew by four lock actions" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["log"]; b = json.load(open(sys.argv[2]))["log"]
acts = [e for e in b[len(a):] if e["type"] == 2 and e["name"] == "front"]
sys.exit(0 if len(acts) == 4 else 1)' "$T/front.json" "$T/front2.json"
check "four action events with source dbus" test \
	"$(db "SELECT count(*) FROM events WHERE kind='action' AND source='dbus'")" = 4
check "state events with source dbus" test \
	"$(db "SELECT count(*) FROM events WHERE kind='state' AND source='dbus' AND detail LIKE '%\"to\":\"locked\"%'")" -ge 2
ctl events front >"$T/events.txt"
check "lockhubctl events lists them" sh -c "grep -c ' action .*dbus' \"$T/events.txt\" | grep -qx 4"
ctl events front --json --limit 3 >"$T/events.json"
check "lockhubctl events --json --limit 3" python3 -c '
import json, sys
e = json.load(open(sys.argv[1])); sys.exit(0 if len(e) == 3 and e[0]["lock"] == "front" else 1)' "$T/events.json"

# Unknown locks and bad arguments.
ctl lock nosuch 2>/dev/null
rc=$?
check "lock of an unknown lock exits 2 (got $rc)" test $rc = 2

finish
