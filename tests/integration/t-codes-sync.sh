#!/bin/sh
# Users and keypad codes end to end against lockhub-sim: three users with codes on two
# locks end up exactly in the simulated locks' code stores and synced in the database;
# a code that breaks a rule is refused with the rule named and nothing is sent; a code
# added on the lock behind the hub's back is removed again (DriftPolicy=hub); removing a
# code takes it off the lock; a keypad entry is attributed to the code's user; a code added while the lock is out of range is pending,
# then synced when it is back; backups leave the digits out unless encrypted, and a
# tampered or wrongly unlocked backup is refused without changing anything.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd

check "front paired" pair_lock front front 1234
check "back paired" pair_lock back back 1234
for u in Alice Bob Carol; do check "user $u added" ctl user add $u; done

check "Alice's code for both locks" ctl code add Alice Alice --lock front --lock back --digits 345678
check "Bob's code" ctl code add Bob Bob --lock front --digits 456789
echo 567891 | ctl code add Carol Cleaner --lock back
check "Carol's code, digits on standard input" test $? = 0

# every rule, by name, and nothing sent
before=$(simctl front get KeypadCodes)
for bad in "12345 length" "345670 digits" "123456 prefix-12" "345678 duplicate"; do
	set -- $bad
	out=$(ctl code add Bob "Bad $2" --lock front --digits $1 2>&1)
	rc=$?
	check "code $1 refused (exit $rc) naming rule $2: $out" sh -c "test $rc = 2 && echo \"\$1\" | grep -q 'rule $2:'" - "$out"
done
check "nothing of them reached the database" test "$(db "SELECT count(*) FROM credentials WHERE name LIKE 'Bad%'")" = 0

synced() { test "$(db "SELECT count(*) FROM credential_locks WHERE state = 'synced'")" = "$1"; }
check "all four assignments synced" wait_for 30 synced 4
ctl code list
simctl front Dump >"$T/front.json"
simctl back Dump >"$T/back.json"
codes_of() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(" ".join(sorted("%s:%s:%d" % (c["code"], c["name"], c["enabled"]) for c in d["keypad_codes"])))' "$1"; }
check "front holds exactly Alice and Bob ($(codes_of "$T/front.json"))" \
	test "$(codes_of "$T/front.json")" = "345678:Alice:1 456789:Bob:1"
check "back holds exactly Alice and the cleaner ($(codes_of "$T/back.json"))" \
	test "$(codes_of "$T/back.json")" = "345678:Alice:1 567891:Cleaner:1"
check "code events recorded" test "$(db "SELECT count(*) FROM events WHERE kind = 'code'")" -ge 4
check "no digits in events or reported state" test "$(db "SELECT count(*) FROM events WHERE detail LIKE '%345678%'") $(db "SELECT count(*) FROM credential_locks WHERE reported LIKE '%345678%'")" = "0 0"

# attribution: a keypad entry on the lock names the code's user
check "Alice types her code on front" simctl front KeypadEntry 345678
check "the keypad event names Alice" wait_for 30 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM events e JOIN users u ON u.id = e.user_id WHERE e.kind = 'keypad' AND u.name = 'Alice' AND e.actor = 'Alice' AND e.credential_id IS NOT NULL\")\" -ge 1"
db "SELECT kind, source, actor, user_id, credential_id, detail FROM events WHERE kind IN ('keypad', 'access')"

# drift: someone adds a code on the lock itself
# (the lock counts a configuration change, so the hub may find it before being asked)
mallory=$(simctl front AddKeypadCode 789123 Mallory)
check "drifted code on the sim (id $mallory)" test -n "$mallory"
ctl code sync front >/dev/null
check "the foreign code is removed again (hub wins)" wait_for 30 sh -c "test \"\$($SIM ctl front get KeypadCodes)\" = 2"
check "the drift is an event" wait_for 5 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM events WHERE kind='code' AND detail LIKE '%added-on-lock%'\")\" -ge 1"

# disable, then remove Bob's code
bob=$(db "SELECT id FROM credentials WHERE name = 'Bob'")
check "disable Bob's code" ctl code disable "$bob"
bob_enabled() { "$SIM" ctl front Dump | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if [c["enabled"] for c in d["keypad_codes"] if c["name"] == "Bob"] == [False] else 1)'; }
check "disabled on the lock" wait_for 30 bob_enabled
check "remove Bob's code" ctl code remove "$bob"
check "gone from the lock" wait_for 30 sh -c "test \"\$($SIM ctl front get KeypadCodes)\" = 1"
check "and from the database" wait_for 10 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM credentials WHERE name='Bob'\")\" = 0"

# out of range: pending with the reason, then synced when the lock is back
simctl back SetInRange no >/dev/null
check "Dave's code added while back is away" sh -c "ctl() { \"$BUILD/lockhubctl\" \"\$@\"; }; ctl user add Dave && ctl code add Dave Dave --lock back --digits 678912"
state_of() { db "SELECT state || ':' || coalesce(reason, '') FROM credential_locks JOIN credentials ON id = credential_id WHERE name = '$1'"; }
check "pending while away" wait_for 60 sh -c "echo \"\$(sqlite3 $T/state/lockhub.db \"SELECT state || ':' || coalesce(reason, '') FROM credential_locks JOIN credentials ON id = credential_id WHERE name = 'Dave'\")\" | grep -q '^pending:lock not reachable'"
echo "while away: $(state_of Dave)"
simctl back SetInRange yes >/dev/null
check "synced when back" wait_for 60 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT state FROM credential_locks JOIN credentials ON id = credential_id WHERE name = 'Dave'\")\" = synced"
check "and on the lock" sh -c "$SIM ctl back Dump | grep -q 678912"

# backups
check "plain backup" ctl backup --all -o "$T/plain.json"
check "plain backup is 0600" test "$(stat -c %a "$T/plain.json")" = 600
check "plain backup has no digits" sh -c "! grep -q 345678 \"$T/plain.json\""
printf 'open sesame\n' >"$T/pass"
check "encrypted backup" ctl backup --all -o "$T/secret.bin" --include-secrets --passphrase-file "$T/pass"
check "encrypted backup has no digits" sh -c "! grep -q 345678 \"$T/secret.bin\""
printf 'wrong\n' >"$T/wrong"
fp() { db "SELECT group_concat(name) FROM users; SELECT count(*) FROM credential_locks"; }
before=$(fp)
out=$(ctl restore "$T/secret.bin" --passphrase-file "$T/wrong" 2>&1)
check "wrong passphrase refused: $out" sh -c "echo \"\$1\" | grep -q 'wrong passphrase'" - "$out"
python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[100] ^= 1; open(sys.argv[2], "wb").write(b)' "$T/secret.bin" "$T/tampered.bin"
out=$(ctl restore "$T/tampered.bin" --passphrase-file "$T/pass" 2>&1)
check "tampered backup refused: $out" sh -c "echo \"\$1\" | grep -q 'was changed'" - "$out"
sed 's/"version": 1/"version": 9/' "$T/plain.json" >"$T/newer.json"
out=$(ctl restore "$T/newer.json" 2>&1)
check "newer version refused: $out" sh -c "echo \"\$1\" | grep -q 'newer lockhub'" - "$out"
check "nothing changed" test "$(fp)" = "$before"
out=$(ctl restore "$T/secret.bin" --passphrase-file "$T/pass" 2>&1)
check "restoring the good backup onto the same hub: $out" sh -c "echo \"\$1\" | grep -q '^Restored: 0 user(s) and 0 code(s) added, 0 code(s) updated, 0 assignment(s)'" - "$out"

finish
