#!/bin/sh
# The lock's settings travel with backups and come back after a factory reset:
#   settings changed on the simulated lock (config, advanced config, a scheduled action)
#   are read by the hub (the config update count moved) and are in the backup; restoring
#   it onto another lock writes them there (Set Config, Set Advanced Config, time
#   controls; pending while that lock is out of range, written when it is back) and a
#   "config" event says so; a factory reset, unpair and pair again gives
#   the lock back its settings and its codes without user action, and the events say so.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"
command -v python3 >/dev/null || skip "python3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
check "front paired" pair_lock front front 1234
check "back paired" pair_lock back back 1234

# the lock's settings as the simulator holds them, without the time controls' ids
settings() { "$SIM" ctl "$1" Dump | python3 -c '
import json, sys
s = json.load(sys.stdin)["settings"]
for t in s["time_controls"]:
    del t["id"]
print(json.dumps(s, sort_keys=True))'; }
defaults=$(settings front)

# someone changes front in the app
for kv in "name Front door" "led_brightness 1" "button_enabled 0" "auto_lock_timeout 120" \
	"single_button_press_action 3" "time_control 0x7c 07:00 2" \
	"time_control 0x03 09:30 1 off"; do
	set -- $kv
	k=$1
	shift
	check "front: $k changed on the lock" simctl front SetSetting "$k" "$*"
done
want=$(settings front)
check "the settings differ from the defaults" test "$want" != "$defaults"
# the hub hears of it (config update count) and reads config, advanced config, time controls
latest() { db "SELECT data FROM lock_snapshots WHERE lock_address = '$(simctl front get Address)' AND kind = '$1' ORDER BY ts_usec DESC, id DESC LIMIT 1"; }
check "the hub read the new time controls" wait_for 60 sh -c "sqlite3 $T/state/lockhub.db \"SELECT data FROM lock_snapshots WHERE kind = 'time-controls' ORDER BY id DESC LIMIT 1\" | grep -q '09:30'"
check "and the new advanced config" wait_for 30 sh -c "sqlite3 $T/state/lockhub.db \"SELECT data FROM lock_snapshots WHERE kind = 'advanced-config' ORDER BY id DESC\" | grep -q '\"auto_lock_timeout\":120'"
check "and the new config" wait_for 30 sh -c "sqlite3 $T/state/lockhub.db \"SELECT data FROM lock_snapshots WHERE kind = 'config' ORDER BY id DESC\" | grep -q '\"name\":\"Front door\"'"
echo "time controls: $(latest time-controls)"

check "backup of front" ctl backup front -o "$T/front.json"
check "the backup holds the settings" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
l = d["locks"][0]
assert l["config"]["name"] == "Front door" and l["config"]["led_brightness"] == 1, l["config"]
assert l["advanced_config"]["auto_lock_timeout"] == 120, l["advanced_config"]
assert sorted(t["time"] for t in l["time_controls"]) == ["07:00", "09:30"], l["time_controls"]' "$T/front.json"

# restore onto back: the simulated lock ends up with the same settings
check "back starts with the defaults" test "$(settings back | sed 's/"name": "[^"]*"//')" = "$(echo "$defaults" | sed 's/"name": "[^"]*"//')"
# back is out of range at first: the settings wait for it
simctl back SetInRange no >/dev/null
out=$(ctl restore "$T/front.json" --to back 2>&1)
check "restore onto back: $out" sh -c "echo \"\$1\" | grep -q '3 setting snapshot'" - "$out"
check "back is away: the settings are pending" wait_for 60 sh -c "sqlite3 $T/state/lockhub.db \"SELECT detail FROM events WHERE kind = 'config'\" | grep -q '\"settings\":\"pending\"'"
check "nothing reached back yet" test "$(settings back | sed 's/"name": "[^"]*"//')" = "$(echo "$defaults" | sed 's/"name": "[^"]*"//')"
simctl back SetInRange yes >/dev/null
check "back, in range again, now has front's settings" wait_for 90 sh -c "test \"\$(\"$SIM\" ctl back Dump | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"settings\"]
for t in s[\"time_controls\"]:
    del t[\"id\"]
print(json.dumps(s, sort_keys=True))')\" = '$want'"
echo "back: $(settings back)"
back_id=$(db "SELECT id FROM locks WHERE name = 'back'")
check "a config event says the settings were restored" wait_for 20 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM events WHERE lock_id = $back_id AND kind = 'config' AND detail LIKE '%\\\"settings\\\":\\\"restored\\\"%' AND detail LIKE '%\\\"why\\\":\\\"restore\\\"%'\")\" = 1"
check "front was left alone" test "$(settings front)" = "$want"

# a code on front, then factory reset → unpair → pair again
check "user" ctl user add Alice
check "code" ctl code add Alice Alice --lock front --digits 345678
check "synced" wait_for 40 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT state FROM credential_locks\")\" = synced"
simctl front FactoryReset >/dev/null
check "the reset lock has factory settings" sh -c "test \"\$1\" != \"\$2\"" - "$(settings front)" "$want"
check "unpair front" ctl unpair front
check "paired again" pair_lock front front 1234
check "front gets its settings back" wait_for 60 sh -c "test \"\$(\"$SIM\" ctl front Dump | python3 -c '
import json, sys
s = json.load(sys.stdin)[\"settings\"]
for t in s[\"time_controls\"]:
    del t[\"id\"]
print(json.dumps(s, sort_keys=True))')\" = '$want'"
check "and its code" wait_for 40 sh -c "$SIM ctl front Dump | grep -q 345678"
front_id=$(db "SELECT id FROM locks WHERE name = 'front'")
check "the pairing event says settings and codes were re-provisioned" test "$(db "SELECT count(*) FROM events WHERE lock_id = $front_id AND kind = 'pairing' AND detail LIKE '%reprovisioned%' AND detail LIKE '%\"settings\":true%' AND detail LIKE '%\"codes\":1%'")" = 1
check "a config event says the settings were written" wait_for 20 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM events WHERE lock_id = $front_id AND kind = 'config' AND detail LIKE '%\\\"settings\\\":\\\"restored\\\"%' AND detail LIKE '%\\\"why\\\":\\\"reprovision\\\"%'\")\" = 1"
db "SELECT kind, detail FROM events WHERE kind IN ('pairing', 'config') ORDER BY id"
stop_lockhubd
check "lockhubd exited cleanly (code $exit_code)" test "$exit_code" = 0
check "no sanitizer finding in lockhubd or the simulator" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \"$T/lockhubd.log\" \"$T/sim.log\""
finish
