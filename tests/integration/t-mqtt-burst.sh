#!/bin/sh
# A flood of MQTT messages against lockhubd with the Nuki driver, lockhub-sim and a real
# mosquitto: 10,000 set commands and requests (lock actions with wrong codes, health,
# code listings and code changes refused by AllowRemoteCodeChanges=no, diagnoses) published
# as fast as mosquitto_pub can. The daemon stays up, refuses what exceeds its limits unread,
# answers those refusals at most once a second and counts the rest, reports the counts in
# the health response, logs a few summary lines rather than one per message, writes a
# bounded number of refused-command events, keeps its
# memory within a few MiB of what it used before, answers afterwards and still moves the
# lock.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v mosquitto >/dev/null 2>&1 || skip "mosquitto is not installed"
command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto-clients is not installed"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"
[ -x "$SIM" ] || { echo "missing $SIM (make all)"; exit 1; }

PORT=$(free_port)
cat >"$T/m.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 100000
user $(id -un)
EOF
mosquitto -c "$T/m.conf" >"$T/m.log" 2>&1 &
track $!
wait_for 10 python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT"

retained() { mosquitto_sub -p "$PORT" -t "$1" -C 1 -W 3 2>/dev/null; }
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"; }
# req OP PAYLOAD: the response in $T/resp
req() {
	rm -f "$T/resp"
	mosquitto_sub -p "$PORT" -t "lockhub/bridge/response/$1" -C 1 -W 10 >"$T/resp" 2>/dev/null &
	_sub=$!
	track $_sub
	sleep 0.5
	mosquitto_pub -p "$PORT" -t "lockhub/bridge/request/$1" -m "$2"
	wait $_sub 2>/dev/null
}
resp() { json "$T/resp" "$1"; }
health_ok() { req health '{"transaction": "after"}' && resp "d['status'] == 'ok' and d['transaction'] == 'after'"; }
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$LOCKHUBD_PID/status"; }

# Under SAN=1, AddressSanitizer's quarantine would hold on to every freed block for a
# while and count as memory in use: without it the bound measures lockhubd.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
export ASAN_OPTIONS

printf '2468\n' >"$T/code"
chmod 600 "$T/code"
start_dbus
start_sim --scale 20
write_conf "Enabled=yes" "Host=127.0.0.1" "Port=$PORT" "[Lock front]" "RequireUnlockCode=yes" "UnlockCodeFile=$T/code"
start_lockhubd
check "lockhubd connects to the broker" wait_for 10 grep -q 'Connected to the MQTT broker' "$T/lockhubd.log"
check "front paired" pair_lock front front 1234
check "front available" wait_for 20 sh -c "test \"\$(mosquitto_sub -p $PORT -t lockhub/front/availability -C 1 -W 2)\" = online"

# Warm up every path once, so that "before" is the daemon at work rather than at rest.
mosquitto_pub -p "$PORT" -t lockhub/front/set -m '{"state": "UNLOCK", "code": "2468"}'
check "warm-up unlock with the right code moves the sim" wait_for 30 sh -c "test \"\$($SIM ctl front get LockState)\" = unlocked"
for op in health locks code/list diagnose; do req $op '{}'; done
check "warm-up requests answered" resp "d['status'] == 'ok'"
sleep 6 # the request budget refills
before=$(rss_kib)
access_before=$(db "SELECT count(*) FROM events WHERE kind = 'access'")
echo "VmRSS before the burst: $before KiB"

# 10,000 messages: 4,000 set commands (half unlocks with a wrong code), 6,000 requests.
python3 - "$T" <<'EOF'
import sys
t = sys.argv[1]
def write(name, lines):
    with open(f"{t}/{name}", "w") as f:
        f.write("\n".join(lines) + "\n")
write("set", ['LOCK' if i % 2 else '{"state": "UNLOCK", "code": "%04d"}' % (i % 10000) for i in range(4000)])
write("action", ['{"lock": "front", "action": "unlock", "code": "97531", "transaction": %d}' % i for i in range(1500)])
write("health", ['{"transaction": %d}' % i for i in range(1500)])
write("codelist", ['{"lock": "front", "transaction": %d}' % i for i in range(1000)])
write("codeadd", ['{"user": "Nobody", "name": "X%d", "digits": "123456", "locks": ["front"]}' % i for i in range(1000)])
write("diagnose", ['{"lock": "front", "transaction": %d}' % i for i in range(1000)])
EOF
check "10,000 messages prepared" test "$(cat "$T/set" "$T/action" "$T/health" "$T/codelist" "$T/codeadd" "$T/diagnose" | wc -l)" = 10000

mosquitto_sub -p "$PORT" -t 'lockhub/bridge/response/#' >"$T/responses" 2>/dev/null &
track $!
sleep 0.5
mosquitto_pub -p "$PORT" -q 1 -t lockhub/front/set -l <"$T/set" &
p1=$!
mosquitto_pub -p "$PORT" -q 1 -t lockhub/bridge/request/lock/action -l <"$T/action" &
p2=$!
mosquitto_pub -p "$PORT" -q 1 -t lockhub/bridge/request/health -l <"$T/health" &
p3=$!
mosquitto_pub -p "$PORT" -q 1 -t lockhub/bridge/request/code/list -l <"$T/codelist" &
p4=$!
mosquitto_pub -p "$PORT" -q 1 -t lockhub/bridge/request/code/add -l <"$T/codeadd" &
p5=$!
mosquitto_pub -p "$PORT" -q 1 -t lockhub/bridge/request/diagnose -l <"$T/diagnose" &
p6=$!
rc=0
for p in $p1 $p2 $p3 $p4 $p5 $p6; do wait $p || rc=1; done
check "every message published" test $rc = 0

check "lockhubd still running after the burst" kill -0 "$LOCKHUBD_PID"
check "it answers a request afterwards" wait_for 60 health_ok
cp "$T/resp" "$T/health-after"
check "the refusals are counted and reported" json "$T/health-after" \
	"d['data']['limits']['refused_requests'] >= 1000 and d['data']['limits']['refused_commands'] >= 1000"
# Refused unread: no transaction to echo, and an answer only now and then (one a second at
# most), the others counted as unanswered.
answered=$(grep -c '"rate_limited: too many requests' "$T/responses")
echo "rate-limited requests answered: $answered"
check "some rate-limited requests were answered" test "$answered" -ge 1
check "... not each of them (answered $answered)" test "$answered" -lt 300
check "... and the others counted as unanswered" json "$T/health-after" \
	"d['data']['limits']['unanswered_requests'] >= 1000 and
	 d['data']['limits']['unanswered_requests'] + $answered <= d['data']['limits']['refused_requests']"
check "... the answers echo no transaction (the payload is not read)" sh -c \
	"! grep 'rate_limited: too many requests' '$T/responses' | grep -q transaction"
check "no response holds a code" sh -c "! grep -qE '\"97531\"|\"123456\"' '$T/responses'"
check "the refusals are logged" grep -q 'MQTT: too many' "$T/lockhubd.log"
n=$(grep -cE 'MQTT: (too many|refused [0-9]+ command)' "$T/lockhubd.log")
check "... in a few summary lines, not one per message ($n)" test "$n" -lt 50
access=$(($(db "SELECT count(*) FROM events WHERE kind = 'access'") - access_before))
check "refused-command events in the database are bounded ($access for thousands of wrong codes)" test "$access" -lt 300
# 20 wrong codes at once, within the request budget: a few events, the rest left out and
# counted; once the event budget refilled, the next event says how many were left out
sleep 6
python3 -c 'print("\n".join("{\"lock\": \"front\", \"action\": \"unlock\", \"code\": \"97531\"}" for _ in range(20)))' >"$T/wrong"
mosquitto_pub -p "$PORT" -q 1 -t lockhub/bridge/request/lock/action -l <"$T/wrong"
sleep 6
req health ''
check "... the left-out ones counted" resp "d['data']['limits']['suppressed_access_events'] >= 1"
req lock/action '{"lock": "front", "action": "unlock", "code": "97531"}'
check "a wrong code after the burst: refused" resp "d['status'] == 'error' and d['error'].startswith('r')"
check "... its event says how many were left out" test \
	"$(db "SELECT count(*) FROM events WHERE kind = 'access' AND detail LIKE '%\"suppressed\":%'")" -ge 1
check "no refused code reached the database" test "$(db "SELECT count(*) FROM credentials")" = 0

sleep 3
after=$(rss_kib)
echo "VmRSS after the burst: $after KiB (before: $before KiB)"
check "memory after the burst within 8 MiB of before ($before -> $after KiB)" test "$after" -lt $((before + 8192))

# the lock still works
check "unlock over D-Bus" ctl unlock front
check "sim unlocked" wait_for 30 sh -c "test \"\$($SIM ctl front get LockState)\" = unlocked"
# (again every few seconds while commands of the burst may still be running)
lock_over_mqtt() {
	mosquitto_pub -p "$PORT" -t lockhub/front/set -m LOCK
	for _i in 1 2 3 4 5 6 7 8 9 10; do
		test "$($SIM ctl front get LockState)" = locked && return 0
		sleep 0.5
	done
	return 1
}
check "LOCK over MQTT after the burst moves the sim" wait_for 60 lock_over_mqtt
check "lockhubd still running at the end" kill -0 "$LOCKHUBD_PID"
stop_lockhubd
check "lockhubd exits cleanly (got $exit_code)" test "$exit_code" = 0
# under SAN=1: no finding of the sanitizers, leaks at exit included
check "no sanitizer findings in lockhubd's log" sh -c "! grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' '$T/lockhubd.log'"
finish
