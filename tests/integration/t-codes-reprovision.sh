#!/bin/sh
# Factory reset → unpair → pair again: the lock gets its keypad codes back without
# anyone entering them again, and the events say so (ReprovisionAfterReset, default on).
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
check "front paired" pair_lock front front 1234
check "user" ctl user add Alice
check "code" ctl code add Alice Alice --lock front --digits 345678
check "Bob's too" sh -c "\"$BUILD/lockhubctl\" user add Bob && \"$BUILD/lockhubctl\" code add Bob Bob --lock front --digits 456789"
synced() { test "$(db "SELECT count(*) FROM credential_locks WHERE state = 'synced'")" = "$1"; }
check "both synced" wait_for 30 synced 2

simctl front FactoryReset >/dev/null
check "the simulated lock lost its codes" test "$(simctl front get KeypadCodes)" = 0
ctl unpair front
check "unpaired" test "$(db "SELECT count(*) FROM locks")" = 0
check "paired again" pair_lock front front 1234
check "both codes back on the lock" wait_for 40 sh -c "test \"\$($SIM ctl front get KeypadCodes)\" = 2"
check "and synced" wait_for 20 synced 2
check "the events say so" test "$(db "SELECT count(*) FROM events WHERE kind = 'pairing' AND detail LIKE '%reprovisioned%'")" = 1
check "a reprovision step recorded" test "$(db "SELECT outcome FROM recovery_attempts WHERE step = 'reprovision'")" = success
finish
