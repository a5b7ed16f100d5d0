#!/bin/sh
# The lock's authorizations through lockhubctl: the list names lockhub's own entry and
# the phone apps the simulated lock knows, with types, names, the enabled flag and
# last-active times; lockhub's own can be neither disabled nor removed; another can be
# disabled, enabled and removed, and the lock agrees; an unknown id is refused.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
check "front paired" pair_lock front front 1234

# lockhubd refuses these itself, before the driver is asked
own=$(db "SELECT auth_id FROM locks WHERE name = 'front'")
out=$(ctl auth remove front "$own" 2>&1)
check "removing lockhub's own is refused: $out" sh -c "echo \"\$1\" | grep -q \"lockhub's own\"" - "$out"
out=$(ctl auth disable front "$own" 2>&1)
check "disabling it too: $out" sh -c "echo \"\$1\" | grep -q \"lockhub's own\"" - "$out"
check "the lock still knows the hub" ctl status front
check "a lock that does not exist" sh -c "! \"$BUILD/lockhubctl\" auth list nope 2>/dev/null"

# another phone app on the lock, and a command of the hub (so its entry has been active)
phone=$(simctl front AddAuthorization app "Anna phone")
check "the sim took a phone app (id $phone)" test -n "$phone"
check "the hub locks front" ctl lock front

out=$(ctl auth list front 2>&1)
rc=$?
echo "$out"
check "list exits 0 (got $rc)" test $rc = 0
check "lockhub's own entry is marked" sh -c "echo \"\$1\" | grep -q '^$own .*bridge.*(lockhub)'" - "$out"
check "the phone app is listed, enabled" sh -c "echo \"\$1\" | grep -q '^$phone .*app .*Anna phone .*yes'" - "$out"

ctl auth list front --json >"$T/auths.json"
cat "$T/auths.json"
check "JSON: own entry active, used at least once; the phone app never" python3 -c '
import json, sys
a = {e["id"]: e for e in json.load(open(sys.argv[1]))}
own, phone = a[int(sys.argv[2])], a[int(sys.argv[3])]
assert own["own"] and own["type"] == "bridge" and own["last_active_usec"] > 0 and own["uses"] >= 1, own
assert not phone["own"] and phone["type"] == "app" and phone["name"] == "Anna phone" and phone["enabled"], phone
assert phone["uses"] == 0 and phone["created_usec"] > 0, phone
assert len(a) == 2, a' "$T/auths.json" "$own" "$phone"

# what the simulated lock holds for an id: "enabled:name", or "gone"
sim_auth() { "$SIM" ctl front Dump | python3 -c '
import json, sys
a = [e for e in json.load(sys.stdin)["authorizations"] if e["id"] == int(sys.argv[1])]
print("%d:%s" % (a[0]["enabled"], a[0]["name"]) if a else "gone")' "$1"; }

check "disable the phone app" ctl auth disable front "$phone"
check "disabled on the lock, name kept ($(sim_auth "$phone"))" test "$(sim_auth "$phone")" = "0:Anna phone"
check "the list says so" sh -c "ctl() { \"$BUILD/lockhubctl\" \"\$@\"; }; ctl auth list front | grep -q '^$phone .*Anna phone .* no '"
check "enable it again" ctl auth enable front "$phone"
check "enabled on the lock ($(sim_auth "$phone"))" test "$(sim_auth "$phone")" = "1:Anna phone"
check "the hub's own entry is untouched ($(sim_auth "$own"))" sh -c "test \"\$1\" != gone" - "$(sim_auth "$own")"

out=$(ctl auth disable front 4242 2>&1)
rc=$?
check "an unknown id is refused (exit $rc): $out" sh -c "test $rc != 0 && echo \"\$1\" | grep -qi 'no such'" - "$out"
out=$(ctl auth remove front 4242 2>&1)
rc=$?
check "removing an unknown id is refused (exit $rc): $out" sh -c "test $rc != 0 && echo \"\$1\" | grep -qi 'no such'" - "$out"

check "remove the phone app" ctl auth remove front "$phone"
check "gone from the lock" test "$(sim_auth "$phone")" = gone
check "and from the list" sh -c "! \"$BUILD/lockhubctl\" auth list front | grep -q 'Anna phone'"
check "the hub still commands the lock" ctl unlock front
stop_lockhubd
check "lockhubd exited cleanly (code $exit_code)" test "$exit_code" = 0
check "no sanitizer finding in lockhubd or the simulator" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \"$T/lockhubd.log\" \"$T/sim.log\""
finish
