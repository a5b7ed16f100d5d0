#!/bin/sh
# Drift is found when the lock's config update count moves, without anyone asking for a
# sync: a code added on the simulated lock behind the hub's back (the lock then sets its
# state-changed bit and counts a configuration change) is removed again under
# DriftPolicy=hub and adopted into the database under DriftPolicy=lock; both recorded as
# "added-on-lock" drift events.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
check "front paired" pair_lock front front 1234
check "user" ctl user add Alice
check "Alice's code" ctl code add Alice Alice --lock front --digits 345678
check "synced" wait_for 40 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT state FROM credential_locks\")\" = synced"
drifts() { db "SELECT count(*) FROM events WHERE kind = 'code' AND detail LIKE '%added-on-lock%'"; }
check "no drift yet" test "$(drifts)" = 0

count=$(simctl front Dump | python3 -c 'import json, sys; print(json.load(sys.stdin)["config_update_count"])')
simctl front AddKeypadCode 789123 Mallory >/dev/null
check "the lock counted a configuration change" test "$(simctl front Dump | python3 -c 'import json, sys; print(json.load(sys.stdin)["config_update_count"])')" -gt "$count"
# no `lockhubctl code sync`: the hub must notice by itself
check "the foreign code is removed again (hub wins)" wait_for 60 sh -c "test \"\$($SIM ctl front get KeypadCodes)\" = 1"
check "Alice's code is still there" sh -c "$SIM ctl front Dump | grep -q 345678"
check "the drift is an event" wait_for 10 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM events WHERE kind = 'code' AND detail LIKE '%added-on-lock%'\")\" -ge 1"
check "the sync ran because the configuration changed" grep -q "config-changed" "$T/lockhubd.log"

# the lock wins: the same kind of change is adopted
stop_lockhubd
write_conf "[Codes]" "DriftPolicy=lock"
start_lockhubd
check "lockhubd back, front connected" wait_for 30 sh -c "busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" get-property org.lockhub /org/lockhub/lock/front org.lockhub.Lock1 State | grep -q locked"
before=$(drifts)
simctl front AddKeypadCode 891234 Eve >/dev/null
check "Eve's code is adopted into the database" wait_for 60 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM credentials c JOIN credential_locks a ON a.credential_id = c.id WHERE c.name = 'Eve' AND a.state = 'synced'\")\" = 1"
check "and stays on the lock" test "$(simctl front get KeypadCodes)" = 2
check "recorded as drift" test "$(drifts)" -gt "$before"
db "SELECT kind, detail FROM events WHERE kind = 'code' ORDER BY id"
stop_lockhubd
check "lockhubd exited cleanly (code $exit_code)" test "$exit_code" = 0
check "no sanitizer finding in lockhubd or the simulator" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \"$T/lockhubd.log\" \"$T/sim.log\""
finish
