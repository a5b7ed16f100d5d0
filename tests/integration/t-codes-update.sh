#!/bin/sh
# Updating a code is all or nothing: a change that a lock refuses (the digits are taken
# there) leaves the database as it was, name and assignments included; "locks" given
# twice in one UpdateCode counts once (the last), without leaking (SAN builds check the
# daemon's exit).
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
check "front paired" pair_lock front front 1234
check "back paired" pair_lock back back 1234
check "users" sh -c "\"$BUILD/lockhubctl\" user add Alice && \"$BUILD/lockhubctl\" user add Bob"
check "Alice's code on front" ctl code add Alice Alice --lock front --digits 345678
check "Bob's code, same digits, on back" ctl code add Bob Bob --lock back --digits 345678
alice=$(db "SELECT id FROM credentials WHERE name = 'Alice'")
state() { db "SELECT c.name || ':' || c.revision || ':' || group_concat(l.name || '=' || a.desired, ',') FROM credentials c JOIN credential_locks a ON a.credential_id = c.id JOIN locks l ON l.id = a.lock_id WHERE c.id = $alice GROUP BY c.id"; }
before=$(state)
echo "before: $before"

out=$(ctl code update "$alice" --name "Alice B" --lock front --lock back 2>&1)
rc=$?
check "refused (exit $rc) naming the duplicate rule: $out" sh -c "test $rc != 0 && echo \"\$1\" | grep -q 'duplicate'" - "$out"
check "nothing changed: name, revision and locks ($(state))" test "$(state)" = "$before"

# "locks" twice: the last one counts
busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.lockhub /org/lockhub org.lockhub.Manager1 UpdateCode \
	'xa{sv}' "$alice" 2 locks as 1 back locks as 1 front >/dev/null 2>"$T/busctl.err"
check "UpdateCode with locks twice works" test $? = 0
check "on front only, as the last \"locks\" said ($(state))" sh -c "echo \"\$1\" | grep -q '^Alice:[0-9]*:front=present\$'" - "$(state)"

stop_lockhubd
check "lockhubd exited cleanly (code $exit_code)" test "$exit_code" = 0
check "no leak or sanitizer finding in lockhubd" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \"$T/lockhubd.log\""
finish
