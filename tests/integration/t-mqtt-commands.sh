#!/bin/sh
# MQTT commands end to end through the Manager and the bridge, with a scripted stand-in
# for the lock driver (tests/tools/fake-driver-hub) until the Nuki driver and
# lockhub-sim take its place: LOCK / UNLOCK / OPEN done with state and events
# published, failures with their reasons (jammed, timeout, busy), commands held while a
# lock is unreachable (run when it comes back, or rejected after CommandExpirySec=), a
# manual action published without a command, alarms, discovery updated on a firmware
# change, and unpairing removing the device.
. "$LOCKHUB_TOP/tests/integration/lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v mosquitto >/dev/null 2>&1 || skip "mosquitto is not installed"
command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto-clients is not installed"
H="$BUILD/tools/fake-driver-hub"
ADD="$BUILD/tools/store-add-lock"
[ -x "$H" ] && [ -x "$ADD" ] || { echo "missing $H or $ADD (make all)"; exit 1; }

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
# jsonl FILE N EXPR: the same for the Nth line (from 1) of FILE
jsonl() { sed -n "${2}p" "$1" >"$1.line" && json "$1.line" "$3"; }
state_is() { retained lockhub/door >"$T/st" && json "$T/st" "$1"; }
listen() {
	mosquitto_sub -p "$PORT" -t "$2" -C "$3" -W "$4" -R >"$T/$1" 2>/dev/null &
	listen_pid=$!
	track $listen_pid
	sleep 0.5
}
collected() { wait "$listen_pid" 2>/dev/null; }
# command PAYLOAD N: the next N events of the lock in $T/ev
command() {
	listen ev lockhub/door/event "$2" 6
	mosquitto_pub -p "$PORT" -t lockhub/door/set -m "$1"
	collected
}
# ctl LINE: a control line for the fake driver, applied when this returns
ctl() {
	echo "$1" >&3
	wait_for 5 grep -qxF "done: $1" "$T/h.out"
}

mkdir -p "$T/state"
"$ADD" "$T/state" door AA:BB:CC:DD:EE:10 "Smart Lock 4" 4.1.0 >/dev/null 2>&1
cat >"$T/lockhub.conf" <<EOF
[Hub]
LogLevel=debug
[MQTT]
Host=127.0.0.1
Port=$PORT
CommandExpirySec=3s
EOF
mkfifo "$T/ctl"
exec 3<>"$T/ctl"
start_dbus
"$H" --config "$T/lockhub.conf" --state-dir "$T/state" <"$T/ctl" >"$T/h.out" 2>"$T/h.err" &
hub_pid=$!
track $hub_pid
check "hub with the fake driver connects" wait_for 10 grep -q 'Connected to the MQTT broker' "$T/h.err"
check "lock reachable: availability online" wait_for 5 retained_is lockhub/door/availability online

command LOCK 1
check "LOCK: event done, source mqtt" json "$T/ev" \
	"d['event_type'] == 'lock' and d['result'] == 'done' and d['source'] == 'mqtt'"
check "LOCK: state LOCKED published (retained)" wait_for 5 state_is \
	"d['state'] == 'LOCKED' and d['last_action']['action'] == 'lock' and d['last_action']['source'] == 'mqtt'"
command UNLOCK 1
check "UNLOCK: event done" json "$T/ev" "d['event_type'] == 'unlock' and d['result'] == 'done'"
check "UNLOCK: state UNLOCKED" wait_for 5 state_is "d['state'] == 'UNLOCKED'"
command '{"state": "OPEN"}' 1
check "OPEN: event done" json "$T/ev" "d['event_type'] == 'open' and d['result'] == 'done'"
check "OPEN: state OPEN" wait_for 5 state_is "d['state'] == 'OPEN' and d['lock_state'] == 'unlatched'"

# in-between states reach MQTT too
listen states lockhub/door 2 5
mosquitto_pub -p "$PORT" -t lockhub/door/set -m LOCK
collected
check "LOCKING published" jsonl "$T/states" 1 "d['state'] == 'LOCKING'"
check "then LOCKED published" jsonl "$T/states" 2 "d['state'] == 'LOCKED'"
sleep 0.3

ctl "fail door ETIMEDOUT"
command UNLOCK 1
check "driver timeout: failed, reason timeout" json "$T/ev" \
	"d['event_type'] == 'failed' and d['reason'] == 'timeout' and d['action'] == 'unlock'"
ctl "fail door EBUSY-NOW"
command UNLOCK 1
check "driver refuses at once: failed, reason busy" json "$T/ev" "d['reason'] == 'busy'"
ctl "fail door EDEADLK"
command UNLOCK 2
check "jam: jammed alarm event" jsonl "$T/ev" 1 "d['event_type'] == 'jammed'"
check "jam: command failed, reason jammed" jsonl "$T/ev" 2 "d['event_type'] == 'failed' and d['reason'] == 'jammed'"
check "jam: state JAMMED, problem on with its reason" wait_for 5 state_is \
	"d['state'] == 'JAMMED' and d['jammed'] and d['problem'] and 'motor' in d['problem_reason'] and
	 d['health']['status'] == 'problem'"

# unreachable: held, then run when it is back; or rejected after CommandExpirySec=3s
ctl "link door down"
check "unreachable: availability offline" wait_for 5 retained_is lockhub/door/availability offline
listen ev lockhub/door/event 1 6
mosquitto_pub -p "$PORT" -t lockhub/door/set -m LOCK
sleep 1
ctl "link door up"
collected
check "held command runs when the lock is back" json "$T/ev" "d['event_type'] == 'lock' and d['result'] == 'done'"
ctl "link door down"
command UNLOCK 1
check "held command rejected after the expiry: unreachable" json "$T/ev" \
	"d['reason'] == 'unreachable' and '3s' in d['message']"
listen ev lockhub/door/event 1 4
mosquitto_pub -p "$PORT" -t lockhub/door/set -m LOCK
mosquitto_pub -p "$PORT" -t lockhub/door/set -m UNLOCK
collected
check "a newer held command supersedes the older: busy" json "$T/ev" \
	"d['reason'] == 'busy' and d['action'] == 'lock' and 'superseded' in d['message']"
sleep 3.5
ctl "link door up -58"
check "rssi and connectivity in the state" wait_for 5 state_is "d['rssi'] == -58 and d['link']['reachable']"

# the lock by itself: published without a command
listen ev lockhub/door/event 1 5
ctl "manual door unlock"
collected
check "manual unlock published: event unlock, source lock" json "$T/ev" \
	"d['event_type'] == 'unlock' and d['source'] == 'lock' and d['actor'] == 'manual'"
listen ev lockhub/door/event 1 5
ctl "battery door 6 critical"
collected
check "battery critical alarm" json "$T/ev" "d['event_type'] == 'battery_critical'"
check "battery in the state" wait_for 5 state_is "d['battery'] == 6 and d['battery_critical']"
listen ev lockhub/door/event 1 5
ctl "door door tampered"
collected
check "door tampered alarm" json "$T/ev" "d['event_type'] == 'door_tampered'"

# requests with a driver
listen resp lockhub/bridge/response/lock/action 1 5
mosquitto_pub -p "$PORT" -t lockhub/bridge/request/lock/action -m '{"lock": "door", "action": "lock", "transaction": "a1"}'
collected
check "lock/action: ok response with the new state" json "$T/resp" \
	"d['status'] == 'ok' and d['transaction'] == 'a1' and d['data']['result'] == 'done' and
	 d['data']['state']['state'] == 'LOCKED'"
listen resp lockhub/bridge/response/lock/refresh 1 5
mosquitto_pub -p "$PORT" -t lockhub/bridge/request/lock/refresh -m '{"lock": "door"}'
collected
check "lock/refresh: ok response" json "$T/resp" "d['status'] == 'ok' and d['data']['name'] == 'door'"

# discovery follows the firmware; unpairing removes the device
HUB=$(retained lockhub/bridge/info | python3 -c 'import json, sys; print(json.load(sys.stdin)["hub_id"])')
DISC="homeassistant/device/lockhub_${HUB}_aabbccddee10/config"
listen disc "$DISC" 1 5
ctl "firmware door 4.2.0"
collected
check "firmware change: discovery republished with the new sw_version" json "$T/disc" \
	"d['device']['sw_version'] == '4.2.0'"
check "firmware change: update entity state" wait_for 5 state_is "d['update']['installed_version'] == '4.2.0'"
ctl "unpair door"
check "unpairing: discovery config removed" wait_for 5 retained_is "$DISC" ""
check "unpairing: retained state and availability cleared" sh -c \
	"test -z \"\$(mosquitto_sub -p $PORT -t lockhub/door -t lockhub/door/availability -C 1 -W 2 2>/dev/null)\""
check "unpairing: bridge/info without the lock" sh -c \
	"mosquitto_sub -p $PORT -t lockhub/bridge/info -C 1 -W 2 | grep -q '\"locks\":\[\]'"

kill -TERM "$hub_pid"
wait_exit "$hub_pid" 10
check "clean exit (got $exit_code)" test "$exit_code" = 0
finish
