#!/bin/sh
# Durability on a full disk: the state directory is a small tmpfs. Once it is full,
# commands over MQTT still move the simulated lock and the state is still published; the
# failure is logged once and bridge/info says the database is not writable (with the
# changes waiting); nothing committed before is lost; lockhubd does not crash. When space
# comes back the waiting changes are written (the events of the commands made meanwhile
# are rows), bridge/info says so, and a clean stop leaves a database that passes
# integrity_check. Needs root (mount); skipped otherwise.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v sqlite3 >/dev/null 2>&1 || skip "sqlite3 not installed"
command -v mosquitto >/dev/null 2>&1 || skip "mosquitto is not installed"
command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto-clients is not installed"
[ -x "$SIM" ] || { echo "missing $SIM (make all)"; exit 1; }
[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs needs root"
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
trap disk_cleanup EXIT INT TERM

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
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$1" "$2"; }
state_is() { retained lockhub/front >"$T/st" && json "$T/st" "$1"; }
info_is() { retained lockhub/bridge/info >"$T/info" && json "$T/info" "$1"; }
sim_state() { test "$("$SIM" ctl front get LockState)" = "$1"; }
set_cmd() { mosquitto_pub -p "$PORT" -t lockhub/front/set -m "$1"; }
# rows of state events of "front" that ended in state $1
state_rows() {
	db "SELECT count(*) FROM events e JOIN locks l ON l.id = e.lock_id WHERE l.name = 'front'
		AND e.kind = 'state' AND json_extract(e.detail, '\$.to') = '$1'"
}

start_dbus
start_sim --scale 20
write_conf "Enabled=yes" "Host=127.0.0.1" "Port=$PORT"
start_lockhubd || exit 1
check "lockhubd connects to the broker" wait_for 10 grep -q 'Connected to the MQTT broker' "$T/lockhubd.log"
pair_lock front front 1234 >/dev/null || { echo "pairing failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
check "lock available" wait_for 20 sh -c "mosquitto_sub -p $PORT -t lockhub/front/availability -C 1 -W 2 | grep -qx online"
check "bridge/info: database writable" wait_for 10 info_is "d['database']['writable'] is True"

set_cmd UNLOCK
check "before: UNLOCK moves the sim lock" wait_for 30 sim_state unlocked
check "before: state UNLOCKED published" wait_for 10 state_is "d['state'] == 'UNLOCKED'"
wait_for 10 sh -c "test \"\$(db \"SELECT count(*) FROM events WHERE kind = 'action'\")\" -ge 1"
n_before=$(db 'SELECT count(*) FROM events')
unlocked_before=$(state_rows unlocked)
check "before: events stored ($n_before)" test "$n_before" -ge 2

# Fill the file system (the WAL cannot grow, the database cannot be checkpointed).
dd if=/dev/zero of="$T/state/filler" bs=64k 2>/dev/null
sync
check "the state directory is full" test "$(df -P "$T/state" | awk 'NR == 2 {print $4}')" -le 4

# Commands keep working until the database notices it cannot commit (the WAL may have
# room left for a while: it is reused after a checkpoint).
i=0
while [ $i -lt 40 ]; do
	i=$((i + 1))
	set_cmd LOCK
	wait_for 30 sim_state locked || break
	wait_for 10 state_is "d['state'] == 'LOCKED'" || break
	set_cmd UNLOCK
	wait_for 30 sim_state unlocked || break
	wait_for 10 state_is "d['state'] == 'UNLOCKED'" || break
	grep -q 'Failed to write to database' "$T/lockhubd.log" && break
done
check "full disk: LOCK/UNLOCK over MQTT still move the sim lock" sim_state unlocked
check "full disk: state still published" state_is "d['state'] == 'UNLOCKED'"
check "full disk: the failure is logged" grep -q 'Failed to write to database.*No space left on device' "$T/lockhubd.log"
check "full disk: logged once, not per write" test "$(grep -c 'Failed to write to database' "$T/lockhubd.log")" = 1
check "full disk: bridge/info says not writable, changes waiting" wait_for 10 info_is \
	"d['database']['writable'] is False and d['database']['pending_changes'] > 0 and 'space' in d['database']['error']"
set_cmd LOCK
check "full disk: one more LOCK moves the sim lock" wait_for 30 sim_state locked
check "full disk: LOCKED published" wait_for 10 state_is "d['state'] == 'LOCKED'"
check "full disk: lockhubd still running" kill -0 "$LOCKHUBD_PID"
check "full disk: events committed before are all there" test "$(db 'SELECT count(*) FROM events')" -ge "$n_before"

# Space comes back: the waiting changes land (retried every few seconds).
rm -f "$T/state/filler"
check "space back: logged as writable again" wait_for 30 grep -q 'is writable again' "$T/lockhubd.log"
check "space back: bridge/info says writable" wait_for 10 info_is "d['database']['writable'] is True"
check "space back: the turns made meanwhile are rows (unlocked $(state_rows unlocked) > $unlocked_before)" \
	test "$(state_rows unlocked)" -gt "$unlocked_before"
check "space back: the last LOCK is a row" test "$(state_rows locked)" -ge 1
n=$(state_rows unlocked)
set_cmd UNLOCK
check "space back: commands work" wait_for 30 sim_state unlocked
more_unlocked() { test "$(state_rows unlocked)" -gt "$n"; }
check "space back: and are stored" wait_for 10 more_unlocked

stop_lockhubd
check "lockhubd exits 0 (got $exit_code)" test "$exit_code" = 0
check "integrity_check ok" test "$(db 'PRAGMA integrity_check')" = ok
check "no change reported lost" sh -c "! grep -q 'are lost' '$T/lockhubd.log'"
finish
