#!/bin/sh
# Users, keypad codes, backup and restore over MQTT (lockhub/bridge/request/<op>) against
# lockhub-sim and a real mosquitto: codes added for two locks reach the simulated locks and
# are listed with their sync state; a code that breaks a rule is refused naming the rule,
# and nothing is stored or sent; the code sync sensor follows (pending while a lock is away,
# synced when it is back); removal takes a code off its lock; a backup comes back as a
# document without digits and restores what was removed; no response, retained message or
# log line ever holds a code's digits. Before all that, the policy: by default
# (AllowRemoteCodeChanges=no) every change is refused naming the setting, recorded as an
# access event, and nothing reaches the database or the lock, while listings, backup and
# diagnose are answered; with RequireUnlockCode=yes a change also needs the unlock code
# ("unlock_code"), wrong ones count towards the lockout. Then the health side: the health and problem sensors
# and the diagnose request follow the diagnosis (a low battery set in the sim), and the
# update entity offers the newest firmware of the known-firmware file.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

command -v sqlite3 >/dev/null || skip "sqlite3 not installed"
[ -x "$SIM" ] || { echo "missing $SIM (make all)"; exit 1; }
start_mosquitto

cat >"$T/known-firmware.json" <<'EOF'
{ "format": 1, "models": [ { "model": "Nuki Smart Lock 2.0", "latest": "2.13.0" } ] }
EOF

retained() { mosquitto_sub -p "$PORT" -t "$1" -C 1 -W 3 2>/dev/null; }
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"; }
state_is() { retained "lockhub/$1" >"$T/st-$1" && json "$T/st-$1" "$2"; }
# req OP PAYLOAD: the response in $T/resp
req() {
	rm -f "$T/resp"
	mosquitto_sub -p "$PORT" -t "lockhub/bridge/response/$1" -C 1 -W 20 >"$T/resp" 2>/dev/null &
	_sub=$!
	track $_sub
	sleep 0.5
	mosquitto_pub -p "$PORT" -t "lockhub/bridge/request/$1" -m "$2"
	wait $_sub 2>/dev/null
	cat "$T/resp" >>"$T/responses"
}
resp() { json "$T/resp" "$1"; }

# conf [MQTT LINE...]: lockhub.conf with these [MQTT] lines, then SIGHUP and wait for the reload
conf() {
	write_conf "Enabled=yes" "Host=127.0.0.1" "Port=$PORT" "$@" "[Health]" "KnownFirmwareFile=$T/known-firmware.json"
}
reloads=0
reload() {
	reloads=$((reloads + 1))
	kill -HUP "$LOCKHUBD_PID"
	wait_for 20 sh -c "test \"\$(grep -c 'Configuration .* reloaded' '$T/lockhubd.log')\" -ge $reloads"
}
access() { db "SELECT count(*) FROM events WHERE kind = 'access' AND source = 'mqtt' AND detail LIKE '%\"request\":\"$1\"%' AND detail LIKE '%\"reason\":\"$2\"%'"; }
printf '82469173\n' >"$T/unlock-code"
chmod 600 "$T/unlock-code"

start_dbus
start_sim --scale 20
conf
start_lockhubd
check "lockhubd connects to the broker" wait_for 10 grep -q 'Connected to the MQTT broker' "$T/lockhubd.log"
# everything lockhubd publishes (requests are ours: they hold digits, responses must not)
mosquitto_sub -p "$PORT" -t '#' -v >"$T/all" 2>/dev/null &
track $!

check "front paired" pair_lock front front 1234
check "back paired" pair_lock back back 1234
check "front available" wait_for 20 sh -c "test \"\$(mosquitto_sub -p $PORT -t lockhub/front/availability -C 1 -W 2)\" = online"
check "code sync sensor: no codes, synced" wait_for 10 state_is front \
	"d['codes'] == {'state': 'synced', 'synced': 0, 'pending': 0, 'drifted': 0, 'failed': 0}"

# ---- the policy: no changes over MQTT by default -------------------------------------------
req code/add '{"user": "Alice", "name": "Alice", "digits": "345678", "locks": ["front"], "transaction": "p1"}'
check "default: code/add refused, naming AllowRemoteCodeChanges" resp \
	"d['status'] == 'error' and d['error'].startswith('not_allowed:') and 'AllowRemoteCodeChanges=no' in d['error'] and
	 d['transaction'] == 'p1' and '345678' not in json.dumps(d)"
check "... recorded as an access event with source mqtt" test "$(access code/add not_allowed)" = 1
for op in user/add user/remove; do
	req $op '{"name": "Mallory"}'
	check "default: $op refused, naming AllowRemoteCodeChanges" resp "d['status'] == 'error' and 'AllowRemoteCodeChanges' in d['error']"
done
req code/update '{"id": 1, "digits": "567891"}'
check "default: code/update refused" resp "d['status'] == 'error' and 'AllowRemoteCodeChanges' in d['error']"
req code/remove '{"id": 1}'
check "default: code/remove refused" resp "d['status'] == 'error' and 'AllowRemoteCodeChanges' in d['error']"
req restore '{"document": {"format": "lockhub-backup", "version": 1, "created_usec": 1, "secrets": false, "locks": [], "users": [{"name": "Mallory", "codes": []}]}}'
check "default: restore refused" resp "d['status'] == 'error' and 'AllowRemoteCodeChanges' in d['error']"
check "... each refusal recorded" test "$(db "SELECT count(*) FROM events WHERE kind = 'access' AND source = 'mqtt' AND detail LIKE '%not_allowed%'")" = 6
check "nothing reached the database" test "$(db "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM credentials)")" = 0
check "nothing reached the lock" test "$(simctl front get KeypadCodes)" = 0
req code/list '{"transaction": "l0"}'
check "default: code/list answered" resp "d['status'] == 'ok' and d['data'] == [] and d['transaction'] == 'l0'"
req user/list ''
check "default: user/list answered" resp "d['status'] == 'ok' and d['data'] == []"
req backup ''
check "default: backup answered" resp "d['status'] == 'ok' and d['data']['format'] == 'lockhub-backup'"
req diagnose '{"lock": "front"}'
check "default: diagnose answered" resp "d['status'] == 'ok' and d['data']['lock'] == 'front'"
info_is() { retained lockhub/bridge/info >"$T/info" && json "$T/info" "$1"; }
check "bridge/info: allow_remote_code_changes false" info_is "d['config']['allow_remote_code_changes'] is False"

# ---- allowed, with the unlock code required ------------------------------------------------
conf "AllowRemoteCodeChanges=yes" "RequireUnlockCode=yes" "UnlockCodeFile=$T/unlock-code"
check "reloaded with AllowRemoteCodeChanges=yes and RequireUnlockCode=yes" reload
check "bridge/info: allow_remote_code_changes true" wait_for 10 info_is \
	"d['config']['allow_remote_code_changes'] is True and d['config']['require_unlock_code'] is True"
req user/add '{"name": "Dave"}'
check "user/add without the unlock code: refused" resp \
	"d['status'] == 'error' and d['error'].startswith('rejected_code:') and 'unlock_code' in d['error']"
check "... recorded" test "$(access user/add rejected_code)" = 1
req user/add '{"name": "Dave", "unlock_code": "19283746"}'
check "user/add with a wrong unlock code: refused" resp "d['status'] == 'error' and 'wrong unlock code' in d['error']"
check "... recorded with the failure count" test \
	"$(db "SELECT count(*) FROM events WHERE kind = 'access' AND detail LIKE '%\"request\":\"user/add\"%' AND detail LIKE '%\"failures\":1%'")" = 1
check "Dave not in the database" test "$(db "SELECT count(*) FROM users")" = 0
sleep 2 # the lockout after one wrong code
req user/add '{"name": "Dave", "unlock_code": "82469173", "transaction": "u0"}'
check "user/add with the unlock code: ok" resp "d['status'] == 'ok' and d['transaction'] == 'u0'"
req code/list '{"lock": "front"}'
check "code/list needs no unlock code" resp "d['status'] == 'ok'"
req code/list '{"lock": "front", "unlock_code": "82469173"}'
check "... and takes one without complaint" resp "d['status'] == 'ok'"
req user/remove '{"name": "Dave", "unlock_code": "82469173"}'
check "user/remove with the unlock code: ok" resp "d['status'] == 'ok'"
check "82469173 and 19283746 in no log line" sh -c "! grep -qE '82469173|19283746' '$T/lockhubd.log'"

conf "AllowRemoteCodeChanges=yes"
check "reloaded with AllowRemoteCodeChanges=yes alone" reload

# ---- users and codes ---------------------------------------------------------------------
req user/add '{"name": "Alice", "transaction": "u1"}'
check "user/add Alice: ok, id, transaction echoed" resp "d['status'] == 'ok' and d['data'] > 0 and d['transaction'] == 'u1'"
req user/add '{"name": "Bob"}'
check "user/add Bob" resp "d['status'] == 'ok'"
req user/add '{"name": "Bob"}'
check "user/add Bob again: error" resp "d['status'] == 'error' and 'exists' in d['error']"
req code/add '{"user": "Alice", "name": "Alice", "digits": "345678", "locks": ["front", "back"], "transaction": 5}'
check "code/add for two locks: ok, transaction echoed" resp "d['status'] == 'ok' and d['transaction'] == 5"
req code/add '{"user": "Bob", "name": "Bob", "digits": "456789", "locks": ["front"]}'
check "code/add Bob on front" resp "d['status'] == 'ok'"
bob=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["data"])' "$T/resp")

synced() { test "$(db "SELECT count(*) FROM credential_locks WHERE state = 'synced'")" = "$1"; }
check "three assignments synced" wait_for 60 synced 3
check "front holds two codes" test "$(simctl front get KeypadCodes)" = 2
check "back holds one code" test "$(simctl back get KeypadCodes)" = 1
req code/list '{"lock": "front"}'
check "code/list front: both codes, synced on front, no digits" resp \
	"d['status'] == 'ok' and sorted(c['name'] for c in d['data']) == ['Alice', 'Bob'] and
	 all(a['state'] == 'synced' for c in d['data'] for a in c['locks']) and 'digits' not in json.dumps(d) and
	 '345678' not in json.dumps(d)"
check "code sync sensor of front: synced 2" wait_for 20 state_is front \
	"d['codes']['state'] == 'synced' and d['codes']['synced'] == 2 and d['codes']['pending'] == 0"
check "code sync sensor of back: synced 1" wait_for 20 state_is back "d['codes']['synced'] == 1"

# every rule, by name, and nothing stored or sent
before=$(simctl front get KeypadCodes)
for bad in "12345 length" "345670 digits" "123456 prefix-12" "345678 duplicate"; do
	set -- $bad
	req code/add "{\"user\": \"Bob\", \"name\": \"Bad $2\", \"digits\": \"$1\", \"locks\": [\"front\"], \"transaction\": \"$2\"}"
	check "code $1 refused naming rule $2" resp \
		"d['status'] == 'error' and d['rule'] == '$2' and d['error'].startswith('$2:') and d['transaction'] == '$2' and '$1' not in json.dumps(d)"
done
req code/add '{"user": "Bob", "name": "Bad", "digits": "567891", "locks": ["front"], "colour": "red"}'
check "an unknown key is refused naming it" resp "d['status'] == 'error' and 'colour' in d['error']"
req code/add '{"user": "Nobody", "name": "Bad", "digits": "567891", "locks": ["front"]}'
check "an unknown user is refused" resp "d['status'] == 'error' and 'Nobody' in d['error']"
check "nothing of them reached the database" test "$(db "SELECT count(*) FROM credentials WHERE name LIKE 'Bad%'")" = 0
sleep 2
check "nothing of them reached the lock" test "$(simctl front get KeypadCodes)" = "$before"

# a lock out of range: pending on the sensor, then synced when it is back
simctl back SetInRange no >/dev/null
req user/add '{"name": "Carol"}'
req code/add '{"user": "Carol", "name": "Carol", "digits": "678912", "locks": ["back"]}'
check "code/add Carol on back while it is away" resp "d['status'] == 'ok'"
check "code sync sensor of back: pending" wait_for 30 state_is back \
	"d['codes']['state'] in ('pending', 'failed') and d['codes']['synced'] == 1 and d['codes']['pending'] + d['codes']['failed'] == 1"
simctl back SetInRange yes >/dev/null
check "code sync sensor of back: synced 2 when it is back" wait_for 90 state_is back \
	"d['codes']['state'] == 'synced' and d['codes']['synced'] == 2"
check "back holds Carol's code" sh -c "$SIM ctl back Dump | grep -q 678912"

# update and remove
req code/update "{\"id\": $bob, \"enabled\": false}"
check "code/update: ok" resp "d['status'] == 'ok'"
req code/update "{\"id\": $bob, \"digits\": \"123999\"}"
check "code/update with a broken rule: refused, naming it" resp "d['status'] == 'error' and d['rule'] == 'prefix-12'"
req code/remove "{\"id\": $bob}"
check "code/remove Bob's code: ok" resp "d['status'] == 'ok'"
check "gone from front" wait_for 60 sh -c "test \"\$($SIM ctl front get KeypadCodes)\" = 1"
check "code sync sensor of front: synced 1" wait_for 30 state_is front \
	"d['codes']['state'] == 'synced' and d['codes']['synced'] == 1"
req user/list ''
check "user/list: Alice, Bob, Carol" resp "d['status'] == 'ok' and sorted(u['name'] for u in d['data']) == ['Alice', 'Bob', 'Carol']"

# ---- backup and restore ------------------------------------------------------------------
req backup '{"include_secrets": true}'
check "backup with secrets refused over MQTT" resp "d['status'] == 'error' and 'lockhubctl' in d['error']"
req backup '{"transaction": "b1"}'
check "backup: the document in data, no digits" resp \
	"d['status'] == 'ok' and d['transaction'] == 'b1' and d['data']['format'] == 'lockhub-backup' and
	 d['data']['secrets'] is False and '678912' not in json.dumps(d) and
	 sorted(u['name'] for u in d['data']['users']) == ['Alice', 'Bob', 'Carol']"
python3 -c 'import json, sys; print(json.dumps({"document": json.load(open(sys.argv[1]))["data"], "transaction": "r1"}))' \
	"$T/resp" >"$T/restore.json"
req user/remove '{"name": "Carol"}'
check "user/remove Carol: ok" resp "d['status'] == 'ok'"
check "Carol's code gone from back" wait_for 60 sh -c "! $SIM ctl back Dump | grep -q 678912"
check "Carol gone from the database" wait_for 30 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM users WHERE name = 'Carol'\")\" = 0"
req restore "$(cat "$T/restore.json")"
check "restore: Carol back, her code skipped (no digits in the document)" resp \
	"d['status'] == 'ok' and d['transaction'] == 'r1' and d['data']['users_added'] == 1 and d['data']['codes_skipped'] >= 1"
check "Carol in the database again" test "$(db "SELECT count(*) FROM users WHERE name = 'Carol'")" = 1
req restore '{"document": {"format": "lockhub-backup", "version": 9}}'
check "restore of a bad document: refused with the reason" resp "d['status'] == 'error' and d['error']"
req restore '{"document": {"format": "lockhub-backup", "version": 1, "created_usec": 1, "secrets": true, "locks": [{"name": "front", "address": "00:11:22:33:44:55", "pairing": {"auth_id": 1, "shared_key": "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"}}], "users": []}}'
check "restore of a document with secrets: refused before it is read" resp \
	"d['status'] == 'error' and 'never carries secrets' in d['error'] and '5ec7e7' not in json.dumps(d)"

# ---- digits never leave ------------------------------------------------------------------
sleep 1
grep -v '^lockhub/bridge/request/' "$T/all" >"$T/published"
for code in 345678 456789 678912 123999 82469173 19283746 5ec7e75ec7e7; do
	check "$code in no published message" sh -c "! grep -q $code '$T/published'"
	check "$code in no log line of lockhubd" sh -c "! grep -q $code '$T/lockhubd.log'"
done
check "responses were seen" test "$(grep -c '^lockhub/bridge/response/' "$T/published")" -ge 20

# ---- health, problem, diagnose, update ---------------------------------------------------
check "update entity: latest from the known-firmware file" wait_for 20 state_is front \
	"d['update']['installed_version'] == '2.12.4' and d['update']['latest_version'] == '2.13.0'"
req diagnose '{"lock": "front", "transaction": "d1"}'
check "diagnose front: the findings of diagnose --json" resp \
	"d['status'] == 'ok' and d['transaction'] == 'd1' and d['data']['lock'] == 'front' and
	 'firmware-outdated' in [f['id'] for f in d['data']['findings']]"
ctl diagnose front --json >"$T/ctl-diag.json"
check "... the same findings as lockhubctl diagnose --json" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["data"]; b = json.load(open(sys.argv[2]))
assert [f["id"] for f in a["findings"]] == [f["id"] for f in b["findings"]], (a["findings"], b["findings"])
assert a["health"] == b["health"] and a["problem"] == b["problem"]' "$T/resp" "$T/ctl-diag.json"
req diagnose ''
check "diagnose without a lock: every lock" resp \
	"d['status'] == 'ok' and sorted(x['lock'] for x in d['data']) == ['back', 'front']"
req diagnose '{"lock": "nosuch"}'
check "diagnose of an unknown lock: error naming it" resp "d['status'] == 'error' and 'nosuch' in d['error']"

# a low battery, read by a refresh over MQTT
simctl front SetBattery 22 >/dev/null
req lock/refresh '{"lock": "front"}'
check "lock/refresh: ok" resp "d['status'] == 'ok'"
check "health sensor: battery-low, problem on, the diagnosis as attributes" wait_for 60 state_is front \
	"d['battery'] == 22 and d['health']['headline'] == 'battery-low' and d['problem'] is True and
	 d['health']['problem'] is True and 'battery-low' in [f['id'] for f in d['health']['findings']] and
	 d['problem_reason'].startswith('Battery low')"
req diagnose '{"lock": "front"}'
check "diagnose names the low battery first" resp \
	"d['data']['findings'][0]['id'] == 'battery-low' and d['data']['problem'] is True"
req health ''
check "health request: limits reported, nothing refused yet" resp \
	"d['status'] == 'ok' and d['data']['limits']['refused_requests'] == 0 and d['data']['limits']['refused_commands'] == 0"

check "lockhubd still running" kill -0 "$LOCKHUBD_PID"
stop_lockhubd
check "lockhubd exits cleanly (got $exit_code)" test "$exit_code" = 0
# under SAN=1: no finding of the sanitizers, leaks at exit included
check "no sanitizer findings in lockhubd's log" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' '$T/lockhubd.log'"
finish
