#!/bin/sh
# Two locks commanded at once; a lock out of range fails with Unreachable in bounded
# time; a jam gives Jammed; state, credentials and events survive a restart of lockhubd,
# also after kill -9; unpairing removes the hub's authorization from the lock.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
pair_lock front front 1234 >/dev/null || { echo "pairing front failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
pair_lock back back 1234 >/dev/null || { echo "pairing back failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
check "two locks listed" test "$(ctl list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2

# Two at once.
ctl unlock front >"$T/a.out" 2>&1 &
pa=$!
ctl unlock back >"$T/b.out" 2>&1 &
pb=$!
wait $pa; ra=$?
wait $pb; rb=$?
check "unlock front and back at once: both succeed ($ra, $rb)" test "$ra$rb" = 00
check "both sims unlocked" test "$(simctl front get LockState) $(simctl back get LockState)" = "unlocked unlocked"
check "daemon agrees" test "$(lock_prop front State) $(lock_prop back State)" = "unlocked unlocked"

# A jam.
simctl back InjectJam 1
out=$(ctl lock back 2>&1)
rc=$?
check "a jammed lock action exits 4 (got $rc)" test $rc = 4
check "... with a Jammed error ($out)" sh -c "echo \"\$1\" | grep -qi 'jammed'" - "$out"
check "daemon state jammed" test "$(lock_prop back State)" = jammed
check "the jam is an event" test "$(db "SELECT count(*) FROM events WHERE kind='state' AND detail LIKE '%\"to\":\"jammed\"%'")" -ge 1
simctl back InjectJam 1
check "the D-Bus error is org.lockhub.Error.Jammed" sh -c "dbus-send --bus=\"$DBUS_SYSTEM_BUS_ADDRESS\" \
	--print-reply --reply-timeout=30000 --dest=org.lockhub /org/lockhub/lock/back org.lockhub.Lock1.Lock 2>&1 |
	grep -q 'org.lockhub.Error.Jammed'"
check "after the jam, lock works again" ctl lock back

# A GATT write the lock refuses fails the command that wrote it, with the reason, once;
# the next command works. (Idle first, so no background job takes the error.)
check "back goes idle" wait_for 30 sh -c "test \"\$(\"$SIM\" ctl back get Connected)\" = no"
simctl back InjectAttError 3 1
out=$(ctl unlock back 2>&1)
rc=$?
check "a refused write fails the unlock (exit $rc: $out)" test $rc != 0
check "... saying the command could not be written" sh -c "echo \"\$1\" | grep -q 'could not be written'" - "$out"
check "... the lock did not move" test "$(simctl back get LockState)" = locked
check "the next command works" ctl unlock back
check "... and the lock moved once" test "$(simctl back get LockState)" = unlocked

# Out of range: bounded failure, Unreachable.
simctl front SetInRange no
t0=$(date +%s)
out=$(ctl lock front 2>&1)
rc=$?
t1=$(date +%s)
check "out of range: exit 3 (got $rc: $out)" test $rc = 3
check "... says unreachable" sh -c "echo \"\$1\" | grep -qi 'reach'" - "$out"
check "... within 20 s (took $((t1 - t0)) s)" test $((t1 - t0)) -le 20
check "Reachable is false" test "$(lock_prop front Reachable)" = false
simctl front SetInRange yes
check "back in range: lock works" wait_for 20 ctl lock front
check "Reachable again" test "$(lock_prop front Reachable)" = true

# bluetoothd goes away and comes back: commands fail as unreachable meanwhile, then work.
simctl hub StopBluez 4294967295
out=$(ctl unlock front 2>&1)
rc=$?
check "bluetoothd down: exit 3 (got $rc: $out)" test $rc = 3
simctl hub StartBluez
check "bluetoothd back: commands work again" wait_for 20 ctl lock front
check "... and changes at the lock are seen again" sh -c "\"$BUILD/lockhub-sim\" ctl back ManualAction unlock"
check "... (back unlocked by hand)" wait_for 15 sh -c "busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" \
	get-property org.lockhub /org/lockhub/lock/back org.lockhub.Lock1 State | grep -q '\"unlocked\"'"

# Restart, cleanly and with kill -9.
states="$(lock_prop front State) $(lock_prop back State)"
events=$(db 'SELECT count(*) FROM events')
stop_lockhubd TERM
check "lockhubd stops on SIGTERM (exit $exit_code)" test "$exit_code" = 0
start_lockhubd
check "state survives a restart ($states)" test "$(lock_prop front State) $(lock_prop back State)" = "$states"
check "firmware survives a restart" test "$(lock_prop back Firmware)" = "$(simctl back get Firmware)"
check "events survive a restart" test "$(db 'SELECT count(*) FROM events')" -ge "$events"
check "credentials survive a restart: unlock" ctl unlock front
check "sim unlocked" test "$(simctl front get LockState)" = unlocked
events=$(db 'SELECT count(*) FROM events')
stop_lockhubd KILL
start_lockhubd
check "state survives kill -9" test "$(lock_prop front State)" = unlocked
check "events survive kill -9" test "$(db 'SELECT count(*) FROM events')" -ge "$events"
check "credentials survive kill -9: lock" ctl lock front
check "sim locked" test "$(simctl front get LockState)" = locked
check "events after kill -9 recorded" test "$(db "SELECT count(*) FROM events WHERE kind='action' AND source='dbus'")" -ge 6

# Unpair: the authorization goes from the lock, the rows from the database.
auths=$(simctl back get Authorizations)
back_id=$(db "SELECT id FROM locks WHERE name='back'")
check "back has events before unpairing" test "$(db "SELECT count(*) FROM events WHERE lock_id=$back_id")" -gt 0
out=$(ctl unpair back 2>&1)
rc=$?
check "unpair exits 0 (got $rc: $out)" test $rc = 0
check "... and says the authorization was removed" sh -c "echo \"\$1\" | grep -q 'authorization for the hub was removed'" - "$out"
check "the lock lost its Bridge authorization ($auths → $(simctl back get Authorizations))" \
	test "$(simctl back get Authorizations)" -lt "$auths"
check "row gone" test "$(db "SELECT count(*) FROM locks WHERE name='back'")" = 0
check "events of back gone" test "$(db "SELECT count(*) FROM events WHERE lock_id=$back_id")" = 0
check "one lock left" test "$(ctl list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 1
ctl unpair back 2>/dev/null
rc=$?
check "unpairing it again exits 2 (got $rc)" test $rc = 2

# A lock that forgot the hub: NotAuthorized, needs re-pairing; unpairing without a PIN
# says what is left to do on the lock.
pair_lock garage garage >/dev/null || { echo "pairing garage failed"; exit 1; }
simctl garage RevokeAuthorizations
out=$(ctl lock garage 2>&1)
rc=$?
check "revoked: exit 4 (got $rc: $out)" test $rc = 4
check "... says to pair again" sh -c "echo \"\$1\" | grep -q 'pair it again'" - "$out"
check "NeedsRepair is true" test "$(lock_prop garage NeedsRepair)" = true
check "list shows needs-repair" sh -c "\"$BUILD/lockhubctl\" list | grep -q 'garage .*needs-repair'"
out=$(ctl unpair garage 2>&1)
check "unpair without a PIN tells to use the app ($out)" sh -c "echo \"\$1\" | grep -q 'remove it in the Nuki app'" - "$out"

stop_lockhubd
check "lockhubd exited cleanly (code $exit_code)" test "$exit_code" = 0
check "no sanitizer finding in lockhubd" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' \"$T/lockhubd.log\""
finish
