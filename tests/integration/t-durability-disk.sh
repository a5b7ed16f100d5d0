#!/bin/sh
# Durability on a full disk: the state directory is a small tmpfs. Once it is full, every
# command over MQTT and every manual turn still moves the simulated lock and is published;
# the failure is logged once and bridge/info says the database is not writable (with the
# changes waiting); nothing committed before is lost; adding a keypad code is refused with
# a clear error (it would be written ahead of the waiting changes); lockhubd does not
# crash. When space comes back the waiting changes are written: exactly the events of what
# happened meanwhile, each once, in order (the same rows the same turns make on a writable
# disk); the code added again ends synced on the lock; a clean stop leaves a database that
# passes integrity_check. Needs a tmpfs mount: as root, or else in a user namespace
# (unshare -rm); skipped when neither works.
if [ "$(id -u)" != 0 ] && [ -z "${LOCKHUB_USERNS:-}" ]; then
	command -v unshare >/dev/null 2>&1 && unshare -rm true 2>/dev/null ||
		{ echo "skipped: mounting a small tmpfs needs root or unprivileged user namespaces"; exit 77; }
	LOCKHUB_USERNS=1 exec unshare -rm sh "$0" "$@"
fi
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v sqlite3 >/dev/null 2>&1 || skip "sqlite3 not installed"
command -v mosquitto >/dev/null 2>&1 || skip "mosquitto is not installed"
command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto-clients is not installed"
[ -x "$SIM" ] || { echo "missing $SIM (make all)"; exit 1; }
mkdir -p "$T/state"
mount -t tmpfs -o size=3m,mode=0700 lockhub-test "$T/state" 2>/dev/null ||
	skip "cannot mount a tmpfs here (no CAP_SYS_ADMIN?)"
# Stop everything first (lockhubd holds files there), then unmount, then the usual.
disk_cleanup() {
	for p in $_pids; do kill "$p" 2>/dev/null; done
	for p in $_pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	done
	umount "$T/state" 2>/dev/null || umount -l "$T/state" 2>/dev/null
	cleanup
}
trap disk_cleanup EXIT
trap 'exit 143' INT TERM

N=20 # commands over MQTT during the outage (LOCK, UNLOCK, ...)
M=4  # manual turns during the outage

PORT=$(free_port)
cat >"$T/m.conf" <<CONF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
user $(id -un)
CONF
mosquitto -c "$T/m.conf" >"$T/m.log" 2>&1 &
track $!
wait_for 10 python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT"

retained() { mosquitto_sub -p "$PORT" -t "$1" -C 1 -W 2 2>/dev/null; }
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"; }
state_is() { retained lockhub/front >"$T/st" && json "$T/st" "$1"; }
info_is() { retained lockhub/bridge/info >"$T/info" && json "$T/info" "$1"; }
sim_state() { test "$("$SIM" ctl front get LockState)" = "$1"; }
# command over MQTT (LOCK/UNLOCK), then the sim lock moved and the state is published
cmd() {
	mosquitto_pub -p "$PORT" -t lockhub/front/set -m "$1"
	wait_for 30 sim_state "$2" && wait_for 10 state_is "d['state'] == '$3'"
}
# a turn by hand on the lock (lock/unlock)
manual() {
	simctl front ManualAction "$1" >/dev/null
	wait_for 30 sim_state "$2" && wait_for 10 state_is "d['state'] == '$3'"
}
# the action and state events after id $1, oldest first: kind/source/to
rows() {
	db "SELECT kind || '/' || source || '/' || coalesce(json_extract(detail, '\$.to'), json_extract(detail, '\$.action'), '')
		FROM events WHERE id > $1 AND kind IN ('action', 'state') ORDER BY id"
}
max_id() { db 'SELECT coalesce(max(id), 0) FROM events'; }
# the turns of the outage, in this order: commands, then manual turns (each pair locks, unlocks)
turns() {
	_i=0
	while [ $_i -lt "$1" ]; do
		cmd LOCK locked LOCKED || return 1
		cmd UNLOCK unlocked UNLOCKED || return 1
		_i=$((_i + 2))
	done
	_i=0
	while [ $_i -lt "$2" ]; do
		manual lock locked LOCKED || return 1
		manual unlock unlocked UNLOCKED || return 1
		_i=$((_i + 2))
	done
}

start_dbus
start_sim --scale 20
write_conf "Enabled=yes" "Host=127.0.0.1" "Port=$PORT"
start_lockhubd || exit 1
check "lockhubd connects to the broker" wait_for 10 grep -q 'Connected to the MQTT broker' "$T/lockhubd.log"
pair_lock front front 1234 >/dev/null || { echo "pairing failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
check "lock available" wait_for 20 sh -c "mosquitto_sub -p $PORT -t lockhub/front/availability -C 1 -W 2 | grep -qx online"
check "bridge/info: database writable, nothing lost" wait_for 10 info_is "d['database']['writable'] is True and d['database']['lost_changes'] == 0"
check "user Alice" ctl user add Alice

check "before: UNLOCK moves the sim lock" cmd UNLOCK unlocked UNLOCKED
# The rows one round (2 commands, 2 manual turns) makes on a writable disk.
wait_for 10 sh -c "test \"\$(db \"SELECT count(*) FROM events WHERE kind = 'action'\")\" -ge 1"
sleep 1
id0=$(max_id)
check "before: a round of turns" turns 2 2
sleep 1
rows "$id0" >"$T/round"
check "before: a round makes rows ($(wc -l <"$T/round"))" test "$(wc -l <"$T/round")" -ge 4
n_before=$(db 'SELECT count(*) FROM events')
last_before=$(max_id)

# Fill the file system (the WAL cannot grow, the database cannot be checkpointed), then
# turn until the database notices (the WAL may have room left for a while).
dd if=/dev/zero of="$T/state/filler" bs=64k 2>/dev/null
sync
check "the state directory is full" test "$(df -P "$T/state" | awk 'NR == 2 {print $4}')" -le 4
warm=0
while [ $warm -lt 40 ] && ! grep -q 'Failed to write to database' "$T/lockhubd.log"; do
	turns 2 0 || break
	warm=$((warm + 1))
done
check "full disk: the failure is logged" grep -q 'Failed to write to database.*No space left on device' "$T/lockhubd.log"
check "full disk: bridge/info says not writable, changes waiting" wait_for 10 info_is \
	"d['database']['writable'] is False and d['database']['pending_changes'] > 0 and 'space' in d['database']['error']"

# The outage proper: N commands and M manual turns, each one moves the lock and is published.
check "full disk: $N commands and $M manual turns move the sim lock and are published" turns $N $M
check "full disk: logged once, not per write" test "$(grep -c 'Failed to write to database' "$T/lockhubd.log")" = 1
check "full disk: still not writable, changes waiting" info_is \
	"d['database']['writable'] is False and d['database']['pending_changes'] > 0"
check "full disk: lockhubd still running" kill -0 "$LOCKHUBD_PID"
check "full disk: events committed before are all there" test "$(db 'SELECT count(*) FROM events')" -ge "$n_before"
ctl code add Alice Alice --lock front --digits 345678 >"$T/code.out" 2>&1
cat "$T/code.out"
check "full disk: adding a code is refused, saying why" sh -c \
	"! '$BUILD/lockhubctl' code list | grep -q 345678 && grep -qi 'no space left' '$T/code.out'"
check "full disk: no code row written" test "$(db 'SELECT count(*) FROM credentials')" = 0

# Space comes back: the waiting changes land (retried every few seconds).
rm -f "$T/state/filler"
check "space back: logged as writable again" wait_for 30 grep -q 'is writable again' "$T/lockhubd.log"
check "space back: bridge/info says writable, nothing lost" wait_for 10 info_is "d['database']['writable'] is True and d['database']['lost_changes'] == 0"
# Expected: the round's rows once per round made since the disk was full (warm-up rounds
# of 2 commands, then N/2 + M/2 halves), in order.
{
	grep '/mqtt/' "$T/round" >"$T/round-cmd" || true
	grep -v '/mqtt/' "$T/round" >"$T/round-man" || true
	i=0
	while [ $i -lt $((warm + N / 2)) ]; do cat "$T/round-cmd"; i=$((i + 1)); done
	i=0
	while [ $i -lt $((M / 2)) ]; do cat "$T/round-man"; i=$((i + 1)); done
} >"$T/want"
rows "$last_before" >"$T/got"
# Within one turn the lock's own report (action) and the state change may come either way
# round: all rows are compared as a set with their counts, the turns by their states.
sort "$T/want" >"$T/want-sorted"
sort "$T/got" >"$T/got-sorted"
check "space back: exactly the rows of the $((warm * 2 + N)) commands and $M manual turns, once each ($(wc -l <"$T/got") rows, want $(wc -l <"$T/want"))" \
	cmp -s "$T/want-sorted" "$T/got-sorted"
cmp -s "$T/want-sorted" "$T/got-sorted" || diff "$T/want-sorted" "$T/got-sorted" | head -20
check "space back: the turns in the order they were made" \
	sh -c "grep '^state/' '$T/want' >'$T/want-states' && grep '^state/' '$T/got' | cmp -s '$T/want-states' -"
check "space back: their times follow their ids" test "$(db "SELECT count(*) FROM events a JOIN events b ON b.id = a.id + 1
	WHERE a.id > $last_before AND b.ts_usec < a.ts_usec")" = 0
check "space back: no event row twice" test "$(db "SELECT count(*) FROM (SELECT ts_usec, kind, source, detail FROM events
	GROUP BY ts_usec, kind, source, detail HAVING count(*) > 1)")" = 0
check "space back: commands work" cmd LOCK locked LOCKED
check "space back: the code, added again" ctl code add Alice Alice --lock front --digits 345678
check "space back: the code ends synced on the lock" wait_for 40 sh -c \
	"test \"\$(sqlite3 $T/state/lockhub.db \"SELECT state FROM credential_locks\")\" = synced"
check "space back: the sim lock has it" sh -c "$SIM ctl front Dump | grep -q 345678"

stop_lockhubd
check "lockhubd exits 0 (got $exit_code)" test "$exit_code" = 0
check "integrity_check ok" test "$(db 'PRAGMA integrity_check')" = ok
check "no change reported lost" sh -c "! grep -q 'are lost' '$T/lockhubd.log'"
finish
