#!/bin/sh
# Motor duration: every lock action lockhubd carries out stores how long the motor ran
# (from the lock accepting the Lock Action to its completion) as a "motor-ms" sample.
# The link is kept while a slow motor runs. When the motor gets much slower (lockhub-sim's SetMotorFactor: a door that rubs),
# `lockhubctl diagnose` shows the "motor-slow" finding with both medians.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 10
write_conf
start_lockhubd
pair_lock front front 1234 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }

motor_samples() { db "SELECT count(*) FROM samples WHERE kind='motor-ms'"; }
cycle() { ctl unlock front >/dev/null && ctl lock front >/dev/null; }

check "no motor samples before any action" test "$(motor_samples)" = 0
ok=0
for i in 1 2 3; do cycle && ok=$((ok + 1)); done
check "six actions at the usual speed" test $ok = 3
check "one motor sample per action ($(motor_samples))" test "$(motor_samples)" = 6
check "the samples are motor times, not zero" test \
	"$(db "SELECT count(*) FROM samples WHERE kind='motor-ms' AND value > 0")" = 6
ctl diagnose front --json >"$T/d0.json"
check "no motor finding yet" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["installation"]["motor_ms_median"] > 0, d["installation"]
assert "motor-slow" not in [f["id"] for f in d["findings"]], d["findings"]' "$T/d0.json"

# The bolt starts to rub: the motor needs eight times as long.
simctl front SetMotorFactor 8
ok=0
for i in 1 2; do cycle && ok=$((ok + 1)); done
check "four slow actions" test $ok = 2
check "ten motor samples" test "$(motor_samples)" = 10
# 2 s of motor against IdleDisconnectSec=1s: the link is kept while the motor runs
check "the link stayed up through the slow actions" sh -c "! grep -q 'connection was lost' \"$T/lockhubd.log\""
ctl diagnose front >"$T/d1.txt"
ctl diagnose front --json >"$T/d1.json"
cat "$T/d1.txt"
check "motor-slow finding with both medians" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
f = [f for f in d["findings"] if f["id"] == "motor-slow"]
assert f and f[0]["severity"] == "warning", d["findings"]
assert "against" in f[0]["evidence"] and "over 10 actions" in f[0]["evidence"], f
assert "lockhubctl calibrate front" in f[0]["next_step"], f' "$T/d1.json"
check "diagnose text shows it" grep -q 'The motor is getting slower (motor-slow)' "$T/d1.txt"

finish
