#!/bin/sh
# Durability: lockhubd is killed with SIGKILL at random points, many times, during heavy
# activity (LOCK/UNLOCK over MQTT to three simulated locks, turns by hand at the locks,
# keypad codes added over D-Bus) and restarted each time. Afterwards the database passes
# PRAGMA integrity_check, every event that was published on lockhub/<lock>/event is a
# row in the database, every code whose `lockhubctl code add` succeeded is there, and no
# code is in an unknown sync state:
#   * every code assigned to a lock has a credential_locks row for it;
#   * synced means confirmed at the code's current revision, with the lock's id for it,
#     and the lock holds exactly the synced codes;
#   * failed and drifted say why (reason), and so does a code still pending after the
#     hub settled.
# KILLS (default 18) sets how many times.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v sqlite3 >/dev/null 2>&1 || skip "sqlite3 not installed"
[ -x "$SIM" ] || { echo "missing $SIM (make all)"; exit 1; }
KILLS=${KILLS:-18}
LOCKS="front back garage"

start_mosquitto

start_dbus
start_sim --scale 20
write_conf "Enabled=yes" "Host=127.0.0.1" "Port=$PORT"
start_lockhubd || exit 1
for l in $LOCKS; do
	pair_lock $l $l 1234 >/dev/null || { echo "pairing $l failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
done
ctl user add Alice >/dev/null || exit 1
# every event published from here on, one "topic payload" line each
mosquitto_sub -p "$PORT" -v -t 'lockhub/+/event' >"$T/events" 2>/dev/null &
track $!
for l in $LOCKS; do wait_for 20 sh -c "mosquitto_sub -p $PORT -t lockhub/$l/availability -C 1 -W 2 | grep -qx online"; done

# The load: runs until $T/stop exists. Codes acknowledged over D-Bus go to $T/acked.
rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
load_mqtt() {
	while [ ! -e "$T/stop" ]; do
		for l in $LOCKS; do
			case $(($(rnd) % 2)) in
			0) mosquitto_pub -p "$PORT" -t "lockhub/$l/set" -m LOCK ;;
			*) mosquitto_pub -p "$PORT" -t "lockhub/$l/set" -m UNLOCK ;;
			esac
		done
		sleep 0.3
	done
}
load_manual() {
	while [ ! -e "$T/stop" ]; do
		for l in $LOCKS; do
			case $(($(rnd) % 3)) in
			0) simctl $l ManualAction lock >/dev/null 2>&1 ;;
			1) simctl $l ManualAction unlock >/dev/null 2>&1 ;;
			*) ;;
			esac
		done
		sleep 0.7
	done
}
load_codes() {
	i=0
	while [ ! -e "$T/stop" ] && [ $i -lt 40 ]; do
		i=$((i + 1))
		# six digits 1-9, never starting with 12, unique by construction (the counter)
		digits=$(printf '3%02d%03d' $i $(($(rnd) % 1000)) | tr 0 9)
		lk=$(echo $LOCKS | cut -d' ' -f$(($(rnd) % 3 + 1)))
		if timeout 20 "$BUILD/lockhubctl" code add Alice "k$i" --lock "$lk" --digits "$digits" >/dev/null 2>&1; then
			echo "k$i $lk" >>"$T/acked"
		fi
		sleep 0.5
	done
}
: >"$T/acked"
load_mqtt &
P1=$!
load_manual &
P2=$!
load_codes &
P3=$!
track "$P1 $P2 $P3"

kills=0
restarts=0
while [ $kills -lt "$KILLS" ]; do
	# a random point: 0.2 to 3.1 s into this life
	sleep "$(($(rnd) % 3)).$(($(rnd) % 9 + 2))"
	kill -9 "$LOCKHUBD_PID" 2>/dev/null && kills=$((kills + 1))
	wait "$LOCKHUBD_PID" 2>/dev/null
	if start_lockhubd >/dev/null; then restarts=$((restarts + 1)); else break; fi
done
touch "$T/stop"
for p in $P1 $P2 $P3; do wait $p 2>/dev/null; done
check "killed $kills times, restarted every time ($restarts)" test "$restarts" = "$KILLS"
check "the database opens cleanly after the last kill" test "$(db 'PRAGMA integrity_check')" = ok

# Let the hub settle: outstanding codes are written, locks go idle.
all_synced() { test "$(db "SELECT count(*) FROM credential_locks WHERE state <> 'synced'")" = 0; }
wait_for 60 all_synced
sleep 2
stop_lockhubd
check "lockhubd exits 0 after the run (got $exit_code)" test "$exit_code" = 0
check "integrity_check ok at the end" test "$(db 'PRAGMA integrity_check')" = ok
check "foreign keys hold" test -z "$(db 'PRAGMA foreign_key_check')"

n_events=$(grep -c . "$T/events")
n_acked=$(grep -c . "$T/acked")
echo "published events: $n_events, codes acknowledged: $n_acked"
check "some events were published ($n_events)" test "$n_events" -ge 10
check "some codes were acknowledged ($n_acked)" test "$n_acked" -ge 3

# Every published event is a row: action events by lock, action, source and time (the
# payload has seconds; the row is written first), alarms by kind. Each row is used once.
db -separator "$(printf '\t')" "SELECT l.name, e.kind, e.source, coalesce(json_extract(e.detail, '\$.action'), ''),
	e.ts_usec FROM events e JOIN locks l ON l.id = e.lock_id ORDER BY e.id" >"$T/rows"
python3 - "$T/events" "$T/rows" >"$T/missing" <<'EOF'
import calendar, json, sys, time
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
used = [False] * len(rows)
missing = 0
for line in open(sys.argv[1]):
    topic, _, payload = line.rstrip("\n").partition(" ")
    lock = topic.split("/")[1]
    try:
        d = json.loads(payload)
    except ValueError:
        print("unparsable event:", line.strip()); missing += 1; continue
    if d.get("result") == "failed":
        continue  # a command that did not happen: nothing to keep
    t = calendar.timegm(time.strptime(d["time"], "%Y-%m-%dT%H:%M:%SZ")) * 1000000
    if "action" in d:
        want = lambda r: r[1] == "action" and r[2] == d["source"] and r[3] == d["action"]
    else:
        kinds = {"jammed": "state", "battery_critical": "battery", "door_tampered": "door",
                 "needs_repair": "pairing"}
        want = lambda r: r[1] == kinds.get(d["event_type"], "?")
    for i, r in enumerate(rows):
        if not used[i] and r[0] == lock and want(r) and t - 2000000 <= int(r[4]) < t + 3000000:
            used[i] = True
            break
    else:
        print("published but not in the database:", line.strip()); missing += 1
print(missing)
EOF
missing=$(tail -n 1 "$T/missing")
[ "$missing" = 0 ] || head -n 20 "$T/missing"
check "every published event is in the database ($missing missing)" test "$missing" = 0

# Codes: every acknowledged one is there, on the lock it was added for.
lost=0
while read -r name lk; do
	[ "$(db "SELECT count(*) FROM credentials c JOIN credential_locks cl ON cl.credential_id = c.id
		JOIN locks l ON l.id = cl.lock_id WHERE c.name = '$name' AND l.name = '$lk'")" = 1 ] ||
		{ echo "acknowledged code $name on $lk is missing"; lost=$((lost + 1)); }
done <"$T/acked"
check "every acknowledged code is in the database ($lost lost)" test $lost = 0
check "every code is assigned to a lock" test "$(db "SELECT count(*) FROM credentials c WHERE NOT EXISTS
	(SELECT 1 FROM credential_locks cl WHERE cl.credential_id = c.id)")" = 0
unknown=$(db "SELECT count(*) FROM credential_locks cl JOIN credentials c ON c.id = cl.credential_id WHERE
	(cl.state = 'synced' AND (cl.synced_revision IS NOT c.revision OR cl.lock_code_id IS NULL))
	OR (cl.state IN ('failed', 'drifted', 'pending') AND coalesce(cl.reason, '') = '')")
[ "$unknown" = 0 ] || db "SELECT * FROM credential_locks"
check "no code in an unknown sync state ($unknown)" test "$unknown" = 0
db "SELECT state, count(*) FROM credential_locks GROUP BY state"
for l in $LOCKS; do
	have=$(simctl $l Dump | python3 -c '
import json, sys
print(" ".join(sorted(c["name"] for c in json.load(sys.stdin)["keypad_codes"])))' | LC_ALL=C sort)
	want=$(db "SELECT c.name FROM credential_locks cl JOIN credentials c ON c.id = cl.credential_id
		JOIN locks l ON l.id = cl.lock_id WHERE l.name = '$l' AND cl.state = 'synced' AND cl.desired = 'present'
		ORDER BY c.name" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
	check "$l holds exactly its synced codes ($have)" test "$have" = "$want"
done
finish
