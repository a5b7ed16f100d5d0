#!/bin/sh
# Soak: a simulated month of normal use of three locks, with random faults, against one
# lockhubd that is never restarted. lockhub-sim runs at a time scale where one simulated
# day takes SOAK_DAY_SEC real seconds; each day has an unlock and a lock over MQTT in the
# morning and the evening, a keypad entry, a turn by hand, the battery draining (new
# batteries below 30 %), and with probability SOAK_FAULT_PERCENT one fault: a dropped
# link, a lock out of range for a while, bluetoothd crashing and restarting, or a hung
# adapter. After every fault the hub must recover on its own: every lock answers a
# command again (when it does not, that fails the soak, and a person "restarts
# bluetoothd" so that the rest of the month still counts). At the end: RSS of lockhubd within noise of the start (after day 1),
# the same number of open file descriptors, every lock available, commands working,
# and the database intact.
# RSS creeps up by some 10-20 kB a simulated day: that is SQLite's page cache following
# the growing database (events, samples, recovery records) up to its limit, PRAGMA
# cache_size in the store (1 MiB), where it stays; lockhubd's own heap stays flat. The
# RSS check allows for it (10 % plus SOAK_RSS_SLACK_KB).
#
#   make soak                          # 30 days of 30 s: about 15-20 minutes
#   SOAK_DAYS=3 SOAK_DAY_SEC=10 make soak
#
# Environment: SOAK_DAYS (30), SOAK_DAY_SEC (30), SOAK_FAULT_PERCENT (60),
# SOAK_RSS_SLACK_KB (2048: allowed growth on top of 10 %), SOAK_SEED (random),
# SOAK_FAULT_KIND (only one kind of fault: 0 link drop, 1 out of range, 2 bluetoothd
# crash, 3 adapter hang).
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"

PATH="$PATH:/usr/sbin:/sbin"
for c in sqlite3; do
	command -v $c >/dev/null 2>&1 || skip "$c is not installed"
done
[ -x "$SIM" ] || { echo "missing $SIM (make all)"; exit 1; }
DAYS=${SOAK_DAYS:-30}
DAY_SEC=${SOAK_DAY_SEC:-30}
FAULT_PERCENT=${SOAK_FAULT_PERCENT:-60}
RSS_SLACK_KB=${SOAK_RSS_SLACK_KB:-2048}
SEED=${SOAK_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
SCALE=$((86400 / DAY_SEC))
LOCKS="front back garage"
echo "soak: $DAYS simulated days of $DAY_SEC s (time scale $SCALE), faults on $FAULT_PERCENT % of days, seed $SEED"
started=$(date +%s)

# a reproducible random sequence: rnd N sets R to 0..N-1; pick sets L to a random lock
_r=$SEED
rnd() { _r=$(((_r * 1103515245 + 12345) % 2147483648)); R=$(((_r / 65536) % $1)); }
pick() { rnd 3; L=$(echo $LOCKS | cut -d' ' -f$((R + 1))); }

start_mosquitto

# Time runs SCALE times faster for the locks (clocks, battery, motor), but the radio and
# bluetoothd keep real-world timings: adverts every ~0.5 s, a 2 s connect timeout,
# device expiry as on real hardware, and pairing mode lasts long enough to pair. Without that
# the default intervals would flood the bus at this scale.
real_ms() { _v=$(($1 * SCALE)); [ $_v -gt 86400000 ] && _v=86400000; echo $_v; }
scenario "$T/scenario" <<EOF
[sim]
scale = $SCALE
le-connect-timeout = $(real_ms 2000)
temporary-timeout = $(real_ms 30000)
pairing-mode-timeout = $(real_ms 300000)
EOF
start_dbus
start_sim --scenario "$T/scenario" || exit 1
for l in $LOCKS; do simctl $l SetAdvInterval $((SCALE * 500)) >/dev/null; done
write_conf "Enabled=yes" "Host=127.0.0.1" "Port=$PORT" \
	"[Health]" "RetryBackoffMinSec=1s" "RetryBackoffMaxSec=10s" "RecoveryMaxAttempts=5"
sed -i 's/^LogLevel=debug/LogLevel=info/' "$T/lockhub.conf"
start_lockhubd || exit 1
PID=$LOCKHUBD_PID
for l in $LOCKS; do
	pair_lock $l $l 1234 >/dev/null || { echo "pairing $l failed"; tail -n 30 "$T/lockhubd.log"; exit 1; }
done
mosquitto_sub -p "$PORT" -v -t 'lockhub/+/event' >"$T/events" 2>/dev/null &
track $!
ctl user add Alice >/dev/null && ctl code add Alice Alice --lock front --lock back --lock garage \
	--digits 345678 >/dev/null || { echo "adding the code failed"; exit 1; }
wait_for 60 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT count(*) FROM credential_locks WHERE state='synced'\")\" = 3" ||
	{ echo "the code did not sync"; exit 1; }

batteries_now() { for _l in $LOCKS; do printf '%s=%s%% ' $_l "$(simctl $_l get BatteryPercent)"; done; }
battery_start=$(batteries_now)
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }
fds() { ls "/proc/$PID/fd" | wc -l; }
available() { test "$(mosquitto_sub -p "$PORT" -t "lockhub/$1/availability" -C 1 -W 3 2>/dev/null)" = online; }
done_count() { grep -c "^lockhub/$1/event .*\"result\":\"done\".*\"source\":\"mqtt\"" "$T/events"; }
# mqtt L ACTION: a command over MQTT that must end in a "done" event
mqtt() {
	_before=$(done_count $1)
	mosquitto_pub -p "$PORT" -t "lockhub/$1/set" -m "$2"
	wait_for 60 sh -c "test \$(grep -c '^lockhub/$1/event .*\"result\":\"done\".*\"source\":\"mqtt\"' '$T/events') -gt $_before"
}
# works: every lock takes a command within 90 s (by the clock: one attempt can take long)
works() {
	for _l in $LOCKS; do
		_end=$(($(date +%s) + 90))
		until timeout 40 "$BUILD/lockhubctl" lock $_l >/dev/null 2>&1; do
			[ "$(date +%s)" -lt $_end ] || return 1
			sleep 1
		done
	done
}

cmds=0
cmd_failed=0
faults=0
recovered=0
keypad=0
batteries=0
fault_names=""
command_ok() {
	cmds=$((cmds + 1))
	if "$@" >/dev/null 2>&1; then return 0; fi
	cmd_failed=$((cmd_failed + 1))
	echo "day $day: failed: $*"
	return 1
}

inject_fault() {
	pick
	l=$L
	rnd 4
	case ${SOAK_FAULT_KIND:-$R} in
	0)
		f="link drop ($l)"
		ctl unlock $l >/dev/null 2>&1 &
		sleep 0.3
		simctl $l DropLink >/dev/null 2>&1
		wait $!
		;;
	1)
		f="out of range ($l)"
		simctl $l SetInRange no >/dev/null
		mosquitto_pub -p "$PORT" -t "lockhub/$l/set" -m UNLOCK
		rnd 8
		sleep $((R + 2))
		simctl $l SetInRange yes >/dev/null
		;;
	2)
		f="bluetoothd crash"
		simctl hub CrashBluez 1500 >/dev/null
		sleep 3
		;;
	*)
		f="adapter hang"
		simctl hub HangAdapter hci0 >/dev/null
		ctl unlock $l >/dev/null 2>&1 &
		track $!
		;;
	esac
	faults=$((faults + 1))
	fault_names="$fault_names${fault_names:+|}$f"
	if works; then
		recovered=$((recovered + 1))
		ok "day $day: recovered from $f"
	else
		not_ok "day $day: did not recover from $f"
		grep -v '^<7>' "$T/lockhubd.log" | tail -n 8
		# a person steps in (restarts bluetoothd), so the rest of the month still counts
		simctl hub CrashBluez 1000 >/dev/null
		works || { echo "day $day: not even a bluetoothd restart helped; stopping"; day=$DAYS; }
	fi
}

day=0
while [ $day -lt "$DAYS" ]; do
	day=$((day + 1))
	t0=$(date +%s)
	for l in $LOCKS; do
		command_ok mqtt $l UNLOCK
		command_ok mqtt $l LOCK
	done
	pick
	if [ "$(simctl $L KeypadEntry 345678 2>/dev/null)" = yes ]; then keypad=$((keypad + 1)); fi
	pick
	simctl $L ManualAction unlock >/dev/null 2>&1
	rnd 100
	if [ "$R" -lt "$FAULT_PERCENT" ]; then inject_fault; fi
	for l in $LOCKS; do
		command_ok mqtt $l UNLOCK
		command_ok mqtt $l LOCK
		b=$(simctl $l get BatteryPercent 2>/dev/null)
		if [ -n "$b" ] && [ "$b" -lt 30 ]; then
			simctl $l SetBattery 100 >/dev/null && batteries=$((batteries + 1))
		fi
	done
	if [ $day = 1 ]; then
		sleep 2
		rss_start=$(rss)
		fds_start=$(fds)
	fi
	rest=$((DAY_SEC - ($(date +%s) - t0)))
	[ $rest -gt 0 ] && sleep $rest
	echo "day $day: rss $(rss) kB, fds $(fds), commands $cmds ($cmd_failed failed), faults $faults ($recovered recovered)"
done

# settle, then the figures
for l in $LOCKS; do wait_for 30 sh -c "test \"\$($SIM ctl $l get Connected)\" = no"; done
sleep 2
rss_end=$(rss)
fds_end=$(fds)
elapsed=$(($(date +%s) - started))
echo "soak: RSS start $rss_start kB, end $rss_end kB; fds start $fds_start, end $fds_end"
echo "soak: $faults faults injected, $recovered recovered; by kind:$(echo "$fault_names" | tr '|' '\n' |
	sed 's/ (.*//' | sort | uniq -c | awk '{ n = $1; $1 = ""; printf " %s%s", n, $0 }')"
echo "soak: battery at the start: $battery_start at the end: $(batteries_now)"
echo "soak: $cmds MQTT commands ($cmd_failed failed), $keypad keypad entries, $batteries battery changes, $elapsed s"
check "lockhubd ran all month without restarting" kill -0 $PID
check "RSS within noise: $rss_start kB -> $rss_end kB" \
	test "$rss_end" -le $((rss_start + rss_start / 10 + RSS_SLACK_KB))
check "file descriptors unchanged: $fds_start -> $fds_end" test "$fds_end" -le "$fds_start"
check "every fault recovered ($recovered of $faults)" test "$recovered" = "$faults"
check "every MQTT command done ($cmd_failed of $cmds failed)" test "$cmd_failed" = 0
for l in $LOCKS; do
	check "$l available at the end" wait_for 30 available $l
	if command_ok mqtt $l UNLOCK && command_ok mqtt $l LOCK; then
		ok "$l: unlock and lock over MQTT at the end"
	else
		not_ok "$l: unlock and lock over MQTT at the end"
	fi
done
check "keypad entries recorded ($keypad)" test "$(db "SELECT count(*) FROM events WHERE kind = 'keypad'")" -ge "$keypad"
check "the code is still synced on every lock" \
	test "$(db "SELECT count(*) FROM credential_locks WHERE state = 'synced'")" = 3
check "database intact" test "$(db 'PRAGMA integrity_check')" = ok
stop_lockhubd
check "lockhubd exits 0 (got $exit_code)" test "$exit_code" = 0
finish
