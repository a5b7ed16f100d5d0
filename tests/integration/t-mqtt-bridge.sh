#!/bin/sh
# MQTT bridge (src/mqtt/mqtt-bridge.c) in lockhubd against a real mosquitto: Home
# Assistant discovery of the hub and of paired locks (every required key, availability
# wired, unique ids stable across a restart), retained bridge/state online and offline
# after SIGTERM, homeassistant/status "online" → discovery again, set commands and
# requests with their outcomes (no driver yet: "not_supported"), unlock-code policy
# (wrong code rejected, recorded as an access event, rate-limited), retained commands
# ignored, malformed and unknown requests answered with errors while the daemon keeps
# serving, broker restart → reconnect and republish, stale devices of this hub removed.
#
# The locks are rows in the database (tests/tools/store-add-lock) without a driver.
# When the Nuki driver lands, start lockhub-sim with a simulated lock at ADDR1 and
# extend the "driver" section at the end: LOCK/UNLOCK/OPEN change the simulated lock,
# events "done", state published, a manual action published without a command.
. "$LOCKHUB_TOP/tests/integration/lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v mosquitto >/dev/null 2>&1 || skip "mosquitto is not installed"
command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto-clients is not installed"
command -v sqlite3 >/dev/null 2>&1 || skip "sqlite3 is not installed"
D="$BUILD/lockhubd"
ADD="$BUILD/tools/store-add-lock"
[ -x "$ADD" ] || { echo "missing $ADD (make all)"; exit 1; }

ADDR1=AA:BB:CC:DD:EE:01
ADDR2=AA:BB:CC:DD:EE:02
ONLINE='{"state":"online"}'
OFFLINE='{"state":"offline"}'
PORT=$(free_port)

start_broker() {
	cat >"$T/m.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
user $(id -un)
EOF
	mosquitto -c "$T/m.conf" >>"$T/m.log" 2>&1 &
	broker_pid=$!
	track $broker_pid
	wait_for 10 python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT"
}

start_daemon() {
	"$D" --config "$T/lockhub.conf" --state-dir "$T/state" >>"$T/d.err" 2>&1 &
	daemon_pid=$!
	track $daemon_pid
}

# retained TOPIC: the retained payload of TOPIC, "" if none
retained() { mosquitto_sub -p "$PORT" -t "$1" -C 1 -W 2 2>/dev/null; }
retained_is() { test "$(retained "$1")" = "$2"; }
retained_has() { retained "$1" | grep -q -- "$2"; }
# json FILE PYTHON-EXPRESSION: true if the expression holds for d = the JSON in FILE
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"; }
# listen NAME TOPIC COUNT SECONDS: collect COUNT new (not retained) messages in $T/NAME
listen() {
	mosquitto_sub -p "$PORT" -t "$2" -C "$3" -W "$4" -R >"$T/$1" 2>/dev/null &
	listen_pid=$!
	track $listen_pid
	sleep 0.5 # subscribed before anything is published
}
collected() { wait "$listen_pid" 2>/dev/null; }
# request OP PAYLOAD: $T/resp holds the response on lockhub/bridge/response/OP
request() {
	listen resp "lockhub/bridge/response/$1" 1 5
	mosquitto_pub -p "$PORT" -t "lockhub/bridge/request/$1" -m "$2"
	collected
}
# command LOCK PAYLOAD: $T/event holds the next event of LOCK
command() {
	listen event "lockhub/$1/event" 1 5
	mosquitto_pub -p "$PORT" -t "lockhub/$1/set" -m "$2"
	collected
}

mkdir -p "$T/state"
check "lock rows added" sh -c "'$ADD' '$T/state' front-door $ADDR1 'Smart Lock 3.0 Pro' 3.5.6 >/dev/null 2>&1 &&
	'$ADD' '$T/state' back-door $ADDR2 >/dev/null 2>&1"
printf '2468\n' >"$T/code"
cat >"$T/lockhub.conf" <<EOF
[Hub]
Name=Test hub
LogLevel=debug
[MQTT]
Host=127.0.0.1
Port=$PORT
ReconnectMinSec=1s
ReconnectMaxSec=2s
[Lock front-door]
RequireUnlockCode=yes
UnlockCodeFile=$T/code
[Lock back-door]
AllowRemoteUnlatch=no
EOF

start_broker
start_dbus
start_daemon
check "lockhubd connects and publishes" wait_for 10 grep -q 'Connected to the MQTT broker' "$T/d.err"

# ---- retained topics and discovery ---------------------------------------------------
check "bridge/state online (retained)" wait_for 5 retained_is lockhub/bridge/state "$ONLINE"
retained lockhub/bridge/info >"$T/info"
HUB=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["hub_id"])' "$T/info" 2>/dev/null)
check "bridge/info: version, 16-hex hub id, both locks, no secrets" json "$T/info" \
	"d['version'] and len(d['hub_id']) == 16 and d['locks'] == ['back-door', 'front-door'] and
	 d['config']['require_unlock_code'] is False and 'password' not in json.dumps(d)"
DEV1="lockhub_${HUB}_aabbccddee01"
DEV2="lockhub_${HUB}_aabbccddee02"
retained "homeassistant/device/$DEV1/config" >"$T/disc1"
retained "homeassistant/device/$DEV2/config" >"$T/disc2"
retained "homeassistant/device/lockhub_$HUB/config" >"$T/dischub"
check "lock discovery: device block (bluetooth connection, model, firmware, via the hub)" json "$T/disc1" \
	"d['device']['identifiers'] == ['$DEV1'] and d['device']['connections'] == [['bluetooth', '$ADDR1']] and
	 d['device']['name'] == 'front-door' and d['device']['manufacturer'] == 'Nuki' and
	 d['device']['model'] == 'Smart Lock 3.0 Pro' and d['device']['sw_version'] == '3.5.6' and
	 d['device']['via_device'] == 'lockhub_$HUB'"
check "lock discovery: origin, availability on bridge and lock (all)" json "$T/disc1" \
	"d['origin']['name'] == 'lockhub' and d['availability_mode'] == 'all' and
	 [a['topic'] for a in d['availability']] == ['lockhub/bridge/state', 'lockhub/front-door/availability']"
check "lock discovery: every component, unique id and default_entity_id, no object_id" json "$T/disc1" \
	"sorted(d['components']) == sorted(['lock', 'battery', 'battery_critical', 'door', 'problem', 'rssi',
	 'connectivity', 'activity', 'firmware', 'health', 'code_sync']) and
	 all(c['unique_id'] == '${DEV1}_' + k and c['default_entity_id'] and 'object_id' not in c and c['platform']
	     for k, c in d['components'].items())"
check "lock entity: topics, payloads, every state, code required" json "$T/disc1" \
	"(lambda c: c['command_topic'] == 'lockhub/front-door/set' and c['state_topic'] == 'lockhub/front-door' and
	  (c['payload_lock'], c['payload_unlock'], c['payload_open']) == ('LOCK', 'UNLOCK', 'OPEN') and
	  [c['state_' + s] for s in ('locked', 'unlocked', 'locking', 'unlocking', 'jammed', 'open', 'opening')] ==
	  ['LOCKED', 'UNLOCKED', 'LOCKING', 'UNLOCKING', 'JAMMED', 'OPEN', 'OPENING'] and
	  c['code_format'] == '^\\\\d+\$' and '{{ code | tojson }}' in c['command_template'])(d['components']['lock'])"
check "lock entity without code and without OPEN (AllowRemoteUnlatch=no)" json "$T/disc2" \
	"'code_format' not in d['components']['lock'] and 'payload_open' not in d['components']['lock']"
check "diagnostic entities: signal strength and connectivity" json "$T/disc1" \
	"d['components']['rssi']['device_class'] == 'signal_strength' and
	 d['components']['rssi']['entity_category'] == 'diagnostic' and
	 d['components']['connectivity']['entity_category'] == 'diagnostic'"
check "activity event entity with event types" json "$T/disc1" \
	"d['components']['activity']['platform'] == 'event' and
	 {'lock', 'unlock', 'open', 'failed', 'jammed'} <= set(d['components']['activity']['event_types'])"
check "hub discovery: bridge state, version, locks" json "$T/dischub" \
	"d['device']['identifiers'] == ['lockhub_$HUB'] and d['device']['name'] == 'Test hub' and
	 sorted(d['components']) == ['locks', 'reachable_locks', 'state', 'version']"
check "lock availability retained offline (no driver, not reachable)" retained_is lockhub/front-door/availability offline
retained lockhub/front-door >"$T/state1"
check "lock state retained with the documented keys" json "$T/state1" \
	"{'state', 'battery', 'battery_critical', 'charging', 'door', 'jammed', 'rssi', 'link', 'firmware',
	  'last_action', 'health', 'codes'} <= set(d) and d['firmware'] == '3.5.6' and
	 set(d['link']) >= {'connected', 'last_seen'} and d['health']['status'] in ('ok', 'warning', 'problem') and
	 d['health']['headline'] and d['codes'] == {'state': 'synced', 'synced': 0, 'pending': 0, 'drifted': 0, 'failed': 0}"

# ---- commands --------------------------------------------------------------------------
command back-door LOCK
check "LOCK on a lock without driver: failed event, reason not_supported" json "$T/event" \
	"d['event_type'] == 'failed' and d['action'] == 'lock' and d['result'] == 'failed' and
	 d['reason'] == 'not_supported' and d['source'] == 'mqtt'"
command back-door OPEN
check "OPEN with AllowRemoteUnlatch=no: failed, not_allowed" json "$T/event" \
	"d['reason'] == 'not_allowed' and d['action'] == 'open'"
command back-door '{"state": "FLY"}'
check "unknown command: failed event, reason invalid, with the error" json "$T/event" \
	"d['reason'] == 'invalid' and 'FLY' in d['message']"
command back-door '{"state": "LOCK"'
check "malformed JSON command: failed event, reason invalid" json "$T/event" \
	"d['reason'] == 'invalid' and 'JSON' in d['message']"

command front-door UNLOCK
check "UNLOCK without the required code: rejected_code" json "$T/event" "d['reason'] == 'rejected_code'"
listen event lockhub/front-door/event 2 5
mosquitto_pub -p "$PORT" -t lockhub/front-door/set -m '{"state": "UNLOCK", "code": "1111"}'
mosquitto_pub -p "$PORT" -t lockhub/front-door/set -m '{"state": "UNLOCK", "code": "2468"}'
collected
sed -n 1p "$T/event" >"$T/event1"
sed -n 2p "$T/event" >"$T/event2"
check "UNLOCK with a wrong code: rejected_code" json "$T/event1" \
	"d['reason'] == 'rejected_code' and d['message'] == 'wrong unlock code'"
check "right code right after a wrong one: rate_limited" json "$T/event2" "d['reason'] == 'rate_limited'"
check "wrong code logged without the code" sh -c "grep -q 'wrong unlock code over MQTT' '$T/d.err' && ! grep -q 1111 '$T/d.err'"
check "refused codes recorded as access events with source mqtt" \
	test "$(sqlite3 "$T/state/lockhub.db" "SELECT count(*) FROM events WHERE kind = 'access' AND source = 'mqtt'")" -ge 3
sleep 1.2
command front-door '{"state": "UNLOCK", "code": "2468"}'
check "right code after the delay passes the policy (then: no driver)" json "$T/event" "d['reason'] == 'not_supported'"

# ---- requests --------------------------------------------------------------------------
request health '{"transaction": "t-1"}'
check "health: ok response, transaction echoed, every lock" json "$T/resp" \
	"d['status'] == 'ok' and d['transaction'] == 't-1' and sorted(d['data']['locks']) == ['back-door', 'front-door']"
request locks ''
check "locks: both locks with address, device id and state" json "$T/resp" \
	"d['status'] == 'ok' and [l['address'] for l in d['data']] == ['$ADDR2', '$ADDR1'] and
	 d['data'][1]['device_id'] == '$DEV1' and 'lock_state' in d['data'][1]['state']"
request lock/action '{"lock": "back-door", "action": "lock", "transaction": 7}'
check "lock/action: error response with reason, transaction echoed" json "$T/resp" \
	"d['status'] == 'error' and d['error'].startswith('not_supported') and d['transaction'] == 7 and d['data'] == {}"
request lock/action '{"lock": "front-door", "action": "unlock", "code": "9999", "transaction": 3}'
check "lock/action with a wrong code: rejected_code" json "$T/resp" \
	"d['status'] == 'error' and d['error'].startswith('rejected_code') and d['transaction'] == 3"
check "... and the code is not logged" sh -c "! grep -q 9999 '$T/d.err'"
request lock/refresh '{"lock": "nope"}'
check "lock/refresh of an unknown lock: error" json "$T/resp" "d['status'] == 'error' and 'nope' in d['error']"
request lock/action '{"lock": "back-door", "action": "dance", "transaction": "x"}'
check "lock/action with an unknown action: error" json "$T/resp" \
	"d['status'] == 'error' and 'dance' in d['error'] and d['transaction'] == 'x'"
request health '{"transaction": '
check "malformed JSON request: error response" json "$T/resp" "d['status'] == 'error' and 'JSON' in d['error']"
request frobnicate '{"transaction": 1}'
check "unknown request: error response naming it" json "$T/resp" \
	"d['status'] == 'error' and 'frobnicate' in d['error'] and d['transaction'] == 1"
request health '[1, 2]'
check "non-object request: error response" json "$T/resp" "d['status'] == 'error'"
request health ''
check "still serving after bad input" json "$T/resp" "d['status'] == 'ok'"
check "still running" kill -0 "$daemon_pid"

# ---- Home Assistant restart ------------------------------------------------------------
listen rediscovery "homeassistant/device/$DEV1/config" 1 8
mosquitto_pub -p "$PORT" -t homeassistant/status -m online
collected
check "homeassistant/status online → discovery published again" json "$T/rediscovery" \
	"d['device']['identifiers'] == ['$DEV1']"

# ---- broker restart: reconnect and republish -------------------------------------------
kill "$broker_pid"
wait "$broker_pid" 2>/dev/null
check "broker loss noticed" wait_for 10 grep -q 'lost the connection to broker' "$T/d.err"
start_broker
check "after a broker restart: bridge/state online again" wait_for 15 retained_is lockhub/bridge/state "$ONLINE"
check "after a broker restart: lock state republished" wait_for 5 retained_has lockhub/front-door lock_state
check "after a broker restart: discovery republished" wait_for 5 retained_has "homeassistant/device/$DEV1/config" "$DEV1"
command back-door LOCK
check "after a broker restart: commands answered" json "$T/event" "d['reason'] == 'not_supported'"

# ---- hub restart: offline, same unique ids ---------------------------------------------
uids() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(" ".join(sorted(c["unique_id"] for c in d["components"].values())))' "$1"; }
uids "$T/disc1" >"$T/uids1"
# A retained command (runs once, live) must not run again when lockhubd subscribes.
mosquitto_pub -p "$PORT" -t lockhub/back-door/set -r -m LOCK
sleep 0.5
kill -TERM "$daemon_pid"
wait_exit "$daemon_pid" 10
check "exit 0 on SIGTERM (got $exit_code)" test "$exit_code" = 0
check "bridge/state offline after SIGTERM (retained)" retained_is lockhub/bridge/state "$OFFLINE"
# A device of this hub whose lock is gone (unpaired while the broker was away) and a
# device of someone else, both retained.
mosquitto_pub -p "$PORT" -t "homeassistant/device/lockhub_${HUB}_001122334455/config" -r -m '{"device": {}}'
mosquitto_pub -p "$PORT" -t homeassistant/device/zigbee2mqtt_0x1234/config -r -m '{"device": {}}'
listen event lockhub/back-door/event 1 6
start_daemon
collected
check "stale device of this hub removed at connect" wait_for 8 \
	retained_is "homeassistant/device/lockhub_${HUB}_001122334455/config" ""
check "someone else's device left alone" retained_is homeassistant/device/zigbee2mqtt_0x1234/config '{"device": {}}'
check "paired locks' devices kept" retained_has "homeassistant/device/$DEV2/config" "$DEV2"
mosquitto_pub -p "$PORT" -t homeassistant/device/zigbee2mqtt_0x1234/config -r -n
check "retained command not run again at start" test ! -s "$T/event"
check "retained command warned about" grep -q 'ignoring a retained MQTT command' "$T/d.err"
mosquitto_pub -p "$PORT" -t lockhub/back-door/set -r -n
check "restarted lockhubd reconnects" wait_for 10 sh -c "test \$(grep -c 'Connected to the MQTT broker' '$T/d.err') -ge 3"
check "bridge/state online after the restart" wait_for 5 retained_is lockhub/bridge/state "$ONLINE"
retained "homeassistant/device/$DEV1/config" >"$T/disc1b"
uids "$T/disc1b" >"$T/uids2"
check "unique ids stable across a restart" sh -c "test -s '$T/uids1' && cmp -s '$T/uids1' '$T/uids2'"

# ---- driver (lockhub-sim): comes with the Nuki driver ----------------------------------

kill -TERM "$daemon_pid"
wait_exit "$daemon_pid" 10
check "restarted lockhubd exits 0 on SIGTERM (got $exit_code)" test "$exit_code" = 0

# ---- Enabled=no: nothing connects ------------------------------------------------------
printf '[Hub]\nLogLevel=debug\n[MQTT]\nEnabled=no\nHost=127.0.0.1\nPort=%s\nBaseTopic=disabled\n' "$PORT" \
	>"$T/lockhub.conf"
: >"$T/d.err"
start_daemon
check "Enabled=no: lockhubd starts" wait_for 10 grep -q 'lockhubd .* started' "$T/d.err"
sleep 1
check "Enabled=no: no MQTT connection" sh -c "! grep -q 'MQTT' '$T/d.err'"
check "Enabled=no: nothing published" test -z "$(retained disabled/bridge/state)"
kill -TERM "$daemon_pid"
wait_exit "$daemon_pid" 10
finish
