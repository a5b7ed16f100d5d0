#!/bin/sh
# A fast battery drain under the simulator's time scale: the lock's battery falls by
# itself (SetDrainRate), lockhubd stores each new level it reads as a sample, and
# `lockhubctl diagnose` (and --json) turns them into a drain rate and the time left:
# first "draining fast" while the level is still fine, then "battery low" with the
# rate and time left in its evidence.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
pair_lock front front 1234 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }

refresh() {
	busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" --timeout=30 call org.lockhub /org/lockhub/lock/front \
		org.lockhub.Lock1 Refresh >/dev/null
}
# refresh until lockhubd's battery level is at most $1 (the way a client polling it would)
battery_at_most() { refresh && test "$(lock_prop front BatteryPercent)" -le "$1"; }
samples() { db "SELECT count(*) FROM samples WHERE kind='battery-percent'"; }

simctl front SetBattery 60
refresh
check "battery 60 % read" test "$(lock_prop front BatteryPercent)" = 60
ctl diagnose front --json >"$T/d0.json"
check "no drain rate from one reading" python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); b = d["battery"]
assert b["drain_per_day"] is None and b["days_left"] is None, b
assert not any(f["id"].startswith("battery") for f in d["findings"]), d["findings"]' "$T/d0.json"

# 300 %/h of simulated time: the batteries of a lock whose motor never stops.
simctl front SetDrainRate 300
check "the level falls to 44 % or below" wait_for 120 battery_at_most 44
check "each new level stored as a sample ($(samples))" test "$(samples)" -ge 6
ctl diagnose front >"$T/d1.txt"
ctl diagnose front --json >"$T/d1.json"
cat "$T/d1.txt"
check "draining fast, with the time left, before the level is low" python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); b = d["battery"]
assert b["drain_per_day"] is not None and b["drain_per_day"] > 0, b
assert b["days_left"] is not None and 0 <= b["days_left"] * b["drain_per_day"] <= 100, b
ids = [f["id"] for f in d["findings"]]
assert "battery-drain-fast" in ids and "battery-low" not in ids, ids' "$T/d1.json"
check "the text says how fast and how long" sh -c \
	"grep -q 'Battery draining fast: .* left' \"$T/d1.txt\" && grep -q '%/day over [0-9]* readings' \"$T/d1.txt\""

check "the level falls to 22 % or below" wait_for 120 battery_at_most 22
simctl front SetDrainRate -1
refresh
level=$(lock_prop front BatteryPercent)
ctl diagnose front >"$T/d2.txt"
ctl diagnose front --json >"$T/d2.json"
cat "$T/d2.txt"
check "battery low at $level %, with the rate and time left" python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); level = int(sys.argv[2]); b = d["battery"]
assert b["percent"] == level and level > 10, b
assert b["drain_per_day"] > 0 and b["days_left"] is not None, b
low = [f for f in d["findings"] if f["id"] == "battery-low"]
assert low and low[0]["severity"] == "warning", d["findings"]
assert "Battery low: %d %%" % level in low[0]["title"], low
assert "%/day" in low[0]["evidence"] and " left." in low[0]["evidence"], low
assert d["problem"] is True' "$T/d2.json" "$level"
check "diagnose text: battery low with the drain" sh -c \
	"grep -q 'Battery low: $level %' \"$T/d2.txt\" && grep -q 'It drains .* %/day: .* left' \"$T/d2.txt\""

finish
