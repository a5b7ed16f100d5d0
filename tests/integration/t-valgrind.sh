#!/bin/sh
# Memcheck: lockhubd under valgrind through one full scenario against lockhub-sim and a
# real mosquitto (pair, LOCK/UNLOCK over MQTT, a keypad code added over D-Bus and synced,
# a manual turn, unpair, SIGTERM) exits 0: no invalid access, no use of uninitialised
# memory, no definite or indirect leak (--error-exitcode), and every file descriptor it
# opened is closed again (--track-fds: only inherited ones are left at exit).
# Skipped without valgrind, and for sanitizer builds (valgrind cannot run them).
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
command -v valgrind >/dev/null 2>&1 || skip "valgrind is not installed"
command -v sqlite3 >/dev/null 2>&1 || skip "sqlite3 not installed"
[ -x "$SIM" ] || { echo "missing $SIM (make all)"; exit 1; }
if nm -D "$BUILD/lockhubd" 2>/dev/null | grep -q '__asan_init\|__ubsan_handle'; then
	skip "lockhubd is a sanitizer build; valgrind runs the plain one"
fi

start_mosquitto

start_dbus
start_sim --scale 10
# valgrind makes everything ~20 times slower: generous timeouts
write_conf "Enabled=yes" "Host=127.0.0.1" "Port=$PORT"
sed -i 's/^ConnectTimeoutSec=.*/ConnectTimeoutSec=20s/; s/^CommandTimeoutSec=.*/CommandTimeoutSec=30s/' "$T/lockhub.conf"
mkdir -p "$T/state"
valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
	--track-fds=yes --log-file="$T/vg.log" \
	"$BUILD/lockhubd" --config "$T/lockhub.conf" --state-dir "$T/state" >>"$T/lockhubd.log" 2>&1 &
LOCKHUBD_PID=$!
track $LOCKHUBD_PID
check "lockhubd under valgrind owns org.lockhub" wait_for 90 busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" \
	get-property org.lockhub /org/lockhub org.lockhub.Manager1 Version
check "lockhubd connects to the broker" wait_for 60 grep -q 'Connected to the MQTT broker' "$T/lockhubd.log"
mosquitto_sub -p "$PORT" -t lockhub/front/event >"$T/events" 2>/dev/null &
track $!

check "pair front" pair_lock front front 1234
check "lock available" wait_for 60 sh -c "mosquitto_sub -p $PORT -t lockhub/front/availability -C 1 -W 2 | grep -qx online"
sim_state() { test "$(simctl front get LockState)" = "$1"; }
mosquitto_pub -p "$PORT" -t lockhub/front/set -m UNLOCK
check "UNLOCK over MQTT" wait_for 90 sim_state unlocked
check "UNLOCK: event done" wait_for 30 grep -q '"result":"done"' "$T/events"
mosquitto_pub -p "$PORT" -t lockhub/front/set -m LOCK
check "LOCK over MQTT" wait_for 90 sim_state locked
check "user added" ctl user add Alice
check "code added" ctl code add Alice Alice --lock front --digits 345678
check "code synced" wait_for 120 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT state FROM credential_locks\")\" = synced"
check "on the lock" test "$(simctl front get KeypadCodes)" = 1
wait_for 30 sh -c "test \"\$($SIM ctl front get Connected)\" = no"
simctl front ManualAction unlock >/dev/null
check "manual turn published" wait_for 60 grep -q '"source":"manual"' "$T/events"
check "unpair" ctl unpair front

kill -TERM "$LOCKHUBD_PID"
wait_exit "$LOCKHUBD_PID" 120
[ "$exit_code" = 0 ] || { tail -n 60 "$T/vg.log"; tail -n 20 "$T/lockhubd.log"; }
check "lockhubd under memcheck exits 0: no errors, no leaks (got $exit_code)" test "$exit_code" = 0
# --track-fds: "Open file descriptor N: ..." followed by where it was opened, or
# "<inherited from parent>"; anything but inherited ones is a leak.
leaked=$(awk '/Open (file|AF_UNIX socket|AF_INET socket)/ { d = $0; getline; if ($0 !~ /inherited from parent/) print d }' "$T/vg.log")
[ -z "$leaked" ] || { echo "$leaked"; grep -A6 'Open ' "$T/vg.log" | head -40; }
check "no file descriptor left open by lockhubd" test -z "$leaked"
check "memcheck ran and reported its file descriptors" grep -q 'FILE DESCRIPTORS' "$T/vg.log"
finish
