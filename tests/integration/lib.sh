# Shared helpers for integration tests (sourced). Every process a test starts is
# recorded and stopped by pid on exit, pass or fail.
set -u
TOP=${LOCKHUB_TOP:?}
BUILD=${LOCKHUB_BUILD:?}
T=$(mktemp -d "${TMPDIR:-/tmp}/lockhub-t.XXXXXX")
_pids=""
_checks=0
_failed=0

cleanup() {
	for p in $_pids; do kill "$p" 2>/dev/null; done
	for p in $_pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$T"
}
# A signal ends the test (and so runs cleanup once, on EXIT).
trap cleanup EXIT
trap 'exit 143' INT TERM

# track PID: stop this process when the test ends
track() { _pids="$_pids $1"; }

ok() { _checks=$((_checks + 1)); echo "ok: $*"; }
not_ok() { _checks=$((_checks + 1)); _failed=$((_failed + 1)); echo "NOT OK: $*"; }
# check DESCRIPTION COMMAND...: runs COMMAND, records pass/fail
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
skip() { echo "skipped: $*"; exit 77; }
finish() {
	echo "$((_checks - _failed)) passed, $_failed failed"
	[ "$_failed" -eq 0 ]
}

# wait_for SECONDS COMMAND...: poll until COMMAND succeeds
wait_for() {
	_n=$(($1 * 10)); shift
	while [ $_n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; _n=$((_n - 1)); done
	return 1
}

# start_dbus: private bus; exports DBUS_SYSTEM_BUS_ADDRESS for everything after it
start_dbus() {
	cat >"$T/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$T/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
CONF
	dbus-daemon --config-file="$T/bus.conf" --nofork --nopidfile --print-address=3 3>"$T/bus.addr" 2>"$T/dbus.log" &
	track $!
	wait_for 10 test -s "$T/bus.addr" || { echo "dbus-daemon did not start"; return 1; }
	DBUS_SYSTEM_BUS_ADDRESS="unix:path=$T/bus.sock"
	export DBUS_SYSTEM_BUS_ADDRESS
}

# free_port: an unused loopback TCP port
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_notify_listener: a NOTIFY_SOCKET that appends every sd_notify message to
# $T/notify.log (one message per line, newlines inside a message shown as "|")
start_notify_listener() {
	NOTIFY_SOCKET="$T/notify.sock"
	export NOTIFY_SOCKET
	/usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode(errors="replace").replace("\n", "|") + "\n")
' "$NOTIFY_SOCKET" "$T/notify.log" &
	track $!
	wait_for 10 test -S "$NOTIFY_SOCKET"
}

# wait_exit PID SECONDS: wait for PID (a child of this shell) to exit; sets $exit_code
wait_exit() {
	_n=$(($2 * 10))
	while kill -0 "$1" 2>/dev/null && [ $_n -gt 0 ]; do sleep 0.1; _n=$((_n - 1)); done
	if kill -0 "$1" 2>/dev/null; then exit_code=timeout; return 1; fi
	wait "$1"; exit_code=$?
}

# start_mosquitto: a loopback broker on a free port (tracked); sets $PORT, log in $T/m.log.
# Skips the test when mosquitto or its clients are not installed.
start_mosquitto() {
	PATH="$PATH:/usr/sbin:/sbin"
	command -v mosquitto >/dev/null 2>&1 || skip "mosquitto is not installed"
	command -v mosquitto_sub >/dev/null 2>&1 || skip "mosquitto-clients is not installed"
	PORT=$(free_port)
	printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nuser %s\n' "$PORT" "$(id -un)" >"$T/m.conf"
	mosquitto -c "$T/m.conf" >"$T/m.log" 2>&1 &
	track $!
	wait_for 10 python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT"
}
