#!/bin/sh
# What happens at the lock reaches the daemon without polling: a manual turn and keypad
# entries (a known code and a wrong one) become events with the right source and actor,
# driven only by the advert's state-changed bit and status 0xF1; log entries are imported
# once; over a quiet period the daemon makes no connection at all.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
pair_lock front front 1234 >/dev/null || { echo "pairing failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.lockhub.Sim /org/lockhub/sim/front org.lockhub.Sim1 \
	AddKeypadCode us 345678 Alice >/dev/null

# Settle: the pairing's own connections end, the state-changed bit is clear.
quiet() { test "$(simctl front get Connected)" = no && test "$(simctl front get StateChanged)" = no; }
check "settles after pairing" wait_for 15 quiet

ctl monitor >"$T/monitor.txt" 2>/dev/null &
track $!
sleep 0.5

simctl front ManualAction unlock
check "daemon sees the manual unlock" wait_for 15 sh -c "busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" \
	get-property org.lockhub /org/lockhub/lock/front org.lockhub.Lock1 State | grep -q unlocked"
check "manual action event (source manual)" wait_for 15 sh -c \
	"test \"\$(sqlite3 \"$T/state/lockhub.db\" \"SELECT count(*) FROM events WHERE kind='action' AND source='manual'\")\" = 1"
check "state event with source manual" test \
	"$(db "SELECT count(*) FROM events WHERE kind='state' AND source='manual' AND detail LIKE '%\"to\":\"unlocked\"%'")" = 1
check "settles after the manual action" wait_for 15 quiet

out=$(simctl front KeypadEntry 345678)
check "the sim took the code ($out)" test "$out" = yes
check "keypad event attributed to Alice" wait_for 15 sh -c \
	"test \"\$(sqlite3 \"$T/state/lockhub.db\" \"SELECT actor FROM events WHERE kind='keypad' AND source='keypad'\")\" = Alice"
check "keypad event has the code id" test \
	"$(db "SELECT json_extract(detail, '\$.code_id') FROM events WHERE kind='keypad'")" -ge 1
check "last action: unlock by keypad Alice" wait_for 5 sh -c "busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" get-property \
	org.lockhub /org/lockhub/lock/front org.lockhub.Lock1 LastAction | grep -q '\"unlock\" \"keypad\" \"Alice\"'"
check "settles after the keypad entry" wait_for 15 quiet

simctl front KeypadEntry 987654 >/dev/null
check "a wrong code is an access event" wait_for 15 sh -c \
	"test \"\$(sqlite3 \"$T/state/lockhub.db\" \"SELECT count(*) FROM events WHERE kind='access' AND source='keypad'\")\" = 1"
check "settles again" wait_for 15 quiet

check "every log entry imported once" test \
	"$(db 'SELECT count(*) FROM events WHERE log_index IS NOT NULL')" = \
	"$(db 'SELECT count(DISTINCT log_index) FROM events WHERE log_index IS NOT NULL')"
check "our own commands are not imported twice" test \
	"$(db "SELECT count(*) FROM events WHERE kind='action' AND source IN ('dbus','app')")" = 0
check "no polling: each change cost one connection or none" test "$(simctl front get Connections)" -le 8
check "monitor printed the state changes" grep -q 'front .*State .*unlocked' "$T/monitor.txt"
check "monitor printed the last action" grep -q 'LastAction .*unlock by keypad Alice' "$T/monitor.txt"

# Quiet period: a minute of lock time (3 s at scale 20), several adverts, no connection.
c0=$(simctl front get Connections)
a0=$(simctl front get Adverts)
sleep 3
check "adverts kept coming ($a0 → $(simctl front get Adverts))" test "$(simctl front get Adverts)" -gt "$a0"
check "no connection over a quiet period ($c0 → $(simctl front get Connections))" \
	test "$(simctl front get Connections)" = "$c0"

ctl events front --json >"$T/events.json"
check "lockhubctl events --json shows the keypad entry" python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))
sys.exit(0 if any(x["kind"] == "keypad" and x["actor"] == "Alice" and x["source"] == "keypad" for x in e) else 1)' \
	"$T/events.json"

# Lock'n'go: unlocked now, locked by the lock itself when its timer runs out; that
# auto lock reaches the daemon like any other change at the lock.
check "LockNGo" busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" --timeout=30 call org.lockhub /org/lockhub/lock/front \
	org.lockhub.Lock1 LockNGo
check "last action lockngo by dbus" sh -c "busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" get-property org.lockhub \
	/org/lockhub/lock/front org.lockhub.Lock1 LastAction | grep -q '\"lockngo\" \"dbus\"'"
check "the lock's auto lock arrives as an event (source auto)" wait_for 20 sh -c \
	"test \"\$(sqlite3 \"$T/state/lockhub.db\" \"SELECT count(*) FROM events WHERE kind='action' AND source='auto'\")\" = 1"
check "daemon state locked again" wait_for 10 sh -c "busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" \
	get-property org.lockhub /org/lockhub/lock/front org.lockhub.Lock1 State | grep -q '\"locked\"'"

finish
