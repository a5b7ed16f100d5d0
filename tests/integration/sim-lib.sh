# Helpers for the lockhub-sim tests (sourced after lib.sh and start_dbus).
#
# start_sim [ARGS...]   start lockhub-sim on the private bus (tracked), wait until
#                       org.bluez has a powered adapter; its log is $T/sim.log
# simctl ARGS...        lockhub-sim ctl ARGS... (see tests/sim/sim-control.c)
# scenario FILE <<EOF   write a scenario file from stdin
SIM=$BUILD/lockhub-sim

start_sim() {
	"$SIM" --log-level debug "$@" >>"$T/sim.log" 2>&1 &
	SIM_PID=$!
	track $SIM_PID
	"$SIM" ctl wait-bluez 10 || { echo "lockhub-sim did not come up"; tail -n 20 "$T/sim.log"; return 1; }
}

simctl() { "$SIM" ctl "$@"; }

scenario() { cat >"$1"; }

# lockhubd against the simulator (used by the t-lock-* tests; after start_sim):
#
# write_conf [LINE...]      $T/lockhub.conf with short timeouts, MQTT off; extra lines appended
# start_lockhubd            lockhubd on $T/lockhub.conf and $T/state (tracked); $LOCKHUBD_PID;
#                           its log is $T/lockhubd.log; waits for org.lockhub
# stop_lockhubd [SIGNAL]    stop it (TERM by default) and wait; $exit_code
# ctl ARGS...               lockhubctl ARGS...
# pair_lock NAME SIMLOCK [PIN]   SetPairingMode on SIMLOCK, then lockhubctl pair ADDRESS (PIN on stdin)
# lock_prop NAME PROP       a Lock1 property of lockhubd, bare value
# db SQL                    sqlite3 on lockhubd's database
write_conf() {
	{
		printf '[Hub]\nLogLevel=debug\nTimeSyncDriftSec=0\n'
		printf '[Bluetooth]\nConnectTimeoutSec=2s\nCommandTimeoutSec=5s\nIdleDisconnectSec=1s\n'
		printf '[MQTT]\nEnabled=no\n'
		for _l in "$@"; do printf '%s\n' "$_l"; done
	} >"$T/lockhub.conf"
}

start_lockhubd() {
	mkdir -p "$T/state"
	[ -f "$T/lockhub.conf" ] || write_conf
	"$BUILD/lockhubd" --config "$T/lockhub.conf" --state-dir "$T/state" >>"$T/lockhubd.log" 2>&1 &
	LOCKHUBD_PID=$!
	track $LOCKHUBD_PID
	wait_for 10 busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" get-property org.lockhub /org/lockhub \
		org.lockhub.Manager1 Version || { echo "lockhubd did not start"; tail -n 30 "$T/lockhubd.log"; return 1; }
}

stop_lockhubd() {
	kill -"${1:-TERM}" "$LOCKHUBD_PID" 2>/dev/null
	wait_exit "$LOCKHUBD_PID" 10
}

ctl() { "$BUILD/lockhubctl" "$@"; }

pair_lock() {
	simctl "$2" SetPairingMode yes || return 1
	printf '%s\n' "${3:-}" | ctl pair "$(simctl "$2" get Address)" --name "$1" ${3:+--pin-stdin}
}

lock_prop() {
	busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" get-property org.lockhub "/org/lockhub/lock/$1" \
		org.lockhub.Lock1 "$2" | sed 's/^[a-z(]* //; s/"//g'
}

db() { sqlite3 "$T/state/lockhub.db" "$@"; }

# sim_test NAME [SIM ARGS...]: a fresh simulator for one `lockhub-sim test NAME`
# (tests/sim/sim-test.c), stopped by pid afterwards; its log is shown on failure.
sim_test() {
	_name=$1
	shift
	"$SIM" --log-level debug "$@" >"$T/sim-$_name.log" 2>&1 &
	_pid=$!
	track $_pid
	if ! "$SIM" ctl wait-bluez 10; then
		echo "lockhub-sim did not come up"
		kill $_pid 2>/dev/null
		return 1
	fi
	timeout 300 "$SIM" test "$_name"
	_rc=$?
	kill $_pid 2>/dev/null
	wait $_pid 2>/dev/null
	# under SAN=1 the simulator's own findings (leaks at exit included) fail the test
	if grep -qE "ERROR: [A-Za-z]+Sanitizer|runtime error:" "$T/sim-$_name.log"; then
		echo "sanitizer findings in lockhub-sim:"
		_rc=1
	fi
	[ $_rc -eq 0 ] || tail -n 30 "$T/sim-$_name.log"
	return $_rc
}
