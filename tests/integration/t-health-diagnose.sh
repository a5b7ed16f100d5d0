#!/bin/sh
# lockhubctl diagnose and support-bundle against lockhub-sim: repeated jams, a low
# battery and firmware older than the known-good version become findings, most likely
# first, with their evidence and next step; the JSON form says the same; the support
# bundle is a 0600 JSON document with the diagnosis and history and without the shared
# key or the security PIN.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

cat >"$T/known-firmware.json" <<'EOF'
{ "format": 1, "models": [
  { "model": "Nuki Smart Lock 2.0", "latest": "2.13.0",
    "known_bad": [ { "version": "2.11.0", "reason": "test entry" } ] } ] }
EOF

start_dbus
start_sim --scale 20
printf 'Mqtt-s3cret-pw\n' >"$T/mqtt-password"
chmod 600 "$T/mqtt-password"
write_conf "[Health]" "KnownFirmwareFile=$T/known-firmware.json" "JamThreshold=3" \
	"[MQTT]" "Username=hub" "PasswordFile=$T/mqtt-password"
start_lockhubd
simctl front SetSecurityPin 8361 # the PIN the hub is given (a wrong one would be a finding)
pair_lock front front 8361 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }

out=$(ctl diagnose front)
check "a healthy lock but for its firmware: $out" sh -c "echo \"\$1\" | grep -q 'Firmware 2.12.4 is older than 2.13.0'" - "$out"

# Three jams, each followed by a good action.
for i in 1 2 3; do
	simctl front InjectJam 1
	ctl lock front >/dev/null 2>&1
	ctl unlock front >/dev/null 2>&1
done
check "three jams recorded" test \
	"$(db "SELECT count(*) FROM events WHERE kind='state' AND detail LIKE '%\"to\":\"jammed\"%'")" = 3

# A low battery, read by a refresh.
simctl front SetBattery 22
busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" --timeout=30 call org.lockhub /org/lockhub/lock/front \
	org.lockhub.Lock1 Refresh >/dev/null
check "battery 22 % in the model" test "$(lock_prop front BatteryPercent)" = 22

ctl diagnose front >"$T/diag.txt"
rc=$?
cat "$T/diag.txt"
check "diagnose exits 0 (got $rc)" test $rc = 0
check "headline says attention" grep -q '^front (Nuki Smart Lock 2.0, firmware 2.12.4): needs attention$' "$T/diag.txt"
check "jams first, with the count and the advice" sh -c "grep -A2 '^1\\. ' \"$T/diag.txt\" | grep -q 'Motor blocked 3 times' &&
	grep -A2 '^1\\. ' \"$T/diag.txt\" | grep -q 'lockhubctl calibrate front'"
check "battery low second, with the level" sh -c "grep '^2\\. ' \"$T/diag.txt\" | grep -q 'Battery low: 22 %'"
check "firmware last" sh -c "grep '^3\\. ' \"$T/diag.txt\" | grep -q 'firmware-outdated'"

ctl diagnose front --json >"$T/diag.json"
ctl diagnose front >/dev/null
check "JSON: the same findings in the same order" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
ids = [f["id"] for f in d["findings"]]
assert ids == ["jams", "battery-low", "firmware-outdated"], ids
assert d["problem"] is True and d["health"] == "jams"
assert d["installation"]["jams"] == 3
assert d["firmware_check"]["latest"] == "2.13.0" and d["firmware_check"]["verdict"] == "older"
assert all(len(f["message_id"]) == 32 for f in d["findings"])' "$T/diag.json"
ctl diagnose --json >"$T/all.json"
check "diagnose without a lock: an array of every lock" python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); assert isinstance(d, list) and d[0]["lock"] == "front"' "$T/all.json"
out=$(ctl diagnose nosuch 2>&1)
rc=$?
check "an unknown lock: exit 2 (got $rc: $out)" sh -c "test $rc = 2 && echo \"\$1\" | grep -q 'No lock named'" - "$out"

# Support bundle.
check "support-bundle writes the file" ctl support-bundle -o "$T/bundle.json"
check "bundle mode 0600" test "$(stat -c %a "$T/bundle.json")" = 600
# the plaintext shared key, opened through the store with the hub key (the column is sealed)
key=$("$BUILD/tools/store-secret" get "$T/state" front | cut -d' ' -f1)
check "shared key readable for the search" test "${#key}" = 64
check "bundle: valid, with the lock, its diagnosis and history, no secret" python3 -c '
import base64, json, sys
d = json.load(open(sys.argv[1])); key = sys.argv[2]; pin = sys.argv[3]
lk = d["locks"][0]
assert lk["name"] == "front" and lk["firmware"] == "2.12.4"
assert [f["id"] for f in lk["diagnosis"]["findings"]][0] == "jams"
assert any(e["kind"] == "state" for e in lk["events"])
assert lk["battery_percent"], "battery history"
assert "[Health]" in d["configuration"]
assert "shared_key_sealed" not in json.dumps(d) and "security_pin" not in json.dumps(d)
raw = bytes.fromhex(key)
needles = [key.lower(), key.upper(), base64.b64encode(raw).decode(), pin]
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items(): walk(k); walk(x)
    elif isinstance(v, list):
        for x in v: walk(x)
    elif isinstance(v, str):
        for n in needles: assert n not in v, (n, v[:80])
walk(d)' "$T/bundle.json" "$key" 8361
check "bundle: no MQTT password, but the configuration says where it is" sh -c \
	"! grep -q 'Mqtt-s3cret-pw' \"$T/bundle.json\" && grep -q 'PasswordFile=' \"$T/bundle.json\""
check "support-bundle to stdout" sh -c "\"$BUILD/lockhubctl\" support-bundle -o - | python3 -c 'import json,sys; json.load(sys.stdin)'"

check "each finding reached the log once, when it appeared" sh -c \
	"test \$(grep -c 'front: Motor blocked 3 times' \"$T/lockhubd.log\") = 1 &&
	 test \$(grep -c 'front: Battery low: 22 %' \"$T/lockhubd.log\") = 1"

finish
