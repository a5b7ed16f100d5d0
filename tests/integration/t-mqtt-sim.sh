#!/bin/sh
# Home Assistant end to end: lockhubd with the Nuki driver against lockhub-sim and a real
# mosquitto. A lock paired with lockhubctl appears as a discovered device (Nuki, model,
# firmware from the lock); LOCK / UNLOCK / OPEN on its set topic move the simulated lock,
# with "done" events and the retained state following; a manual turn at the lock is
# published without any command; unpairing removes the device.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v mosquitto >/dev/null 2>&1 || skip "mosquitto is not installed"
command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto-clients is not installed"
[ -x "$SIM" ] || { echo "missing $SIM (make all)"; exit 1; }

PORT=$(free_port)
cat >"$T/m.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
user $(id -un)
EOF
mosquitto -c "$T/m.conf" >"$T/m.log" 2>&1 &
track $!
wait_for 10 python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT"

retained() { mosquitto_sub -p "$PORT" -t "$1" -C 1 -W 2 2>/dev/null; }
retained_is() { test "$(retained "$1")" = "$2"; }
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"; }
state_is() { retained lockhub/front >"$T/st" && json "$T/st" "$1"; }
# event EXPR: some event of "front" so far satisfies EXPR (d = the event)
event() {
	python3 -c '
import json, sys
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if eval("(" + sys.argv[2] + ")"):
        sys.exit(0)
sys.exit(1)' "$T/events" "$1"
}
set_cmd() { mosquitto_pub -p "$PORT" -t lockhub/front/set -m "$1"; }

start_dbus
start_sim --scale 20
write_conf "Enabled=yes" "Host=127.0.0.1" "Port=$PORT"
start_lockhubd
check "lockhubd connects to the broker" wait_for 10 grep -q 'Connected to the MQTT broker' "$T/lockhubd.log"
mosquitto_sub -p "$PORT" -t lockhub/front/event >"$T/events" 2>/dev/null &
track $!

pair_lock front front 1234 >/dev/null || { echo "pairing failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
HUB=$(retained lockhub/bridge/info | python3 -c 'import json, sys; print(json.load(sys.stdin)["hub_id"])')
ADDR=$(simctl front get Address)
DEV="lockhub_${HUB}_$(echo "$ADDR" | tr -d : | tr 'A-F' 'a-f')"
DISC="homeassistant/device/$DEV/config"
check "paired lock discovered" wait_for 10 sh -c "mosquitto_sub -p $PORT -t '$DISC' -C 1 -W 2 >'$T/disc'"
check "device: Nuki, bluetooth address, firmware from the lock" json "$T/disc" \
	"d['device']['manufacturer'] == 'Nuki' and d['device']['connections'] == [['bluetooth', '$ADDR']] and
	 d['device']['sw_version'] == '2.12.4' and d['components']['lock']['command_topic'] == 'lockhub/front/set'"
check "bridge/info lists it" sh -c "mosquitto_sub -p $PORT -t lockhub/bridge/info -C 1 -W 2 | grep -q '\"locks\":\[\"front\"\]'"
check "lock available" wait_for 20 retained_is lockhub/front/availability online

set_cmd UNLOCK
check "UNLOCK over MQTT: sim unlocked" wait_for 30 sh -c "test \"\$('$SIM' ctl front get LockState)\" = unlocked"
check "UNLOCK: event done, source mqtt" wait_for 10 event \
	"d['event_type'] == 'unlock' and d['result'] == 'done' and d['source'] == 'mqtt'"
check "UNLOCK: state UNLOCKED published" wait_for 10 state_is "d['state'] == 'UNLOCKED'"
set_cmd LOCK
check "LOCK over MQTT: sim locked" wait_for 30 sh -c "test \"\$('$SIM' ctl front get LockState)\" = locked"
check "LOCK: event done" wait_for 10 event "d['event_type'] == 'lock' and d['result'] == 'done'"
check "LOCK: state LOCKED published" wait_for 10 state_is \
	"d['state'] == 'LOCKED' and d['last_action']['action'] == 'lock' and d['last_action']['source'] == 'mqtt'"
set_cmd OPEN
check "OPEN: event done" wait_for 30 event "d['event_type'] == 'open' and d['result'] == 'done'"
check "OPEN: the sim unlatched (and rests unlocked)" wait_for 10 sh -c \
	"test \"\$('$SIM' ctl front get LockState)\" = unlocked"

# Settle, then a turn by hand at the lock: published with no command.
quiet() { test "$(simctl front get Connected)" = no && test "$(simctl front get StateChanged)" = no; }
wait_for 15 quiet
simctl front ManualAction lock
check "manual lock at the lock published as an event (source manual)" wait_for 20 event \
	"d['event_type'] == 'lock' and d['source'] == 'manual'"
check "manual lock: state LOCKED published" wait_for 10 state_is "d['state'] == 'LOCKED'"

out=$(ctl unpair front 2>&1)
check "unpair ($out)" test $? = 0
check "unpairing removes the device from Home Assistant" wait_for 10 retained_is "$DISC" ""
check "unpairing clears the retained state" wait_for 5 retained_is lockhub/front ""

stop_lockhubd
check "lockhubd exits 0 (got $exit_code)" test "$exit_code" = 0
finish
