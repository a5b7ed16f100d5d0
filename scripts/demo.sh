#!/bin/sh
# make demo: lockhub on simulated locks, on this machine only.
#
# Starts a private D-Bus system bus, lockhub-sim (a simulated bluetoothd with three
# Nuki locks), a local mosquitto on a free loopback port and lockhubd with a
# temporary state directory; pairs the three locks; shows their live status and the
# commands to try from another terminal. Ctrl-C stops everything it started.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${LOCKHUB_BUILD:-$top/build}
scale=${LOCKHUB_DEMO_SCALE:-1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/lockhub-demo.XXXXXX")
pids=""

stop() {
	trap - EXIT INT TERM
	echo
	echo "Stopping the demo..."
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$dir"
	exit 0
}
trap stop EXIT INT TERM

wait_for() {
	n=$(($1 * 10)); shift
	while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done
	return 1
}
die() { echo "demo: $*" >&2; for f in "$dir"/*.log; do [ -s "$f" ] && { echo "--- $f"; tail -n 20 "$f"; }; done; exit 1; }

cat >"$dir/bus.conf" <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/><allow own="*"/><allow send_type="method_call"/>
    <allow send_destination="*"/><allow receive_sender="*"/>
  </policy>
</busconfig>
CONF
dbus-daemon --config-file="$dir/bus.conf" --nofork --nopidfile 2>"$dir/dbus.log" &
pids="$pids $!"
wait_for 10 test -S "$dir/bus.sock" || die "dbus-daemon did not start"
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus.sock"
export DBUS_SYSTEM_BUS_ADDRESS

"$build/lockhub-sim" --scale "$scale" >"$dir/sim.log" 2>&1 &
pids="$pids $!"
wait_for 10 busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" status org.bluez || die "lockhub-sim did not start"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$dir/mosquitto.conf"
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
pids="$pids $!"

mkdir -p "$dir/state"
printf '[MQTT]\nHost=127.0.0.1\nPort=%s\n' "$port" >"$dir/lockhub.conf"
"$build/lockhubd" --config "$dir/lockhub.conf" --state-dir "$dir/state" >"$dir/lockhubd.log" 2>&1 &
pids="$pids $!"
wait_for 10 "$build/lockhubctl" list || die "lockhubd did not start"

ctl() { "$build/lockhubctl" "$@"; }
sim() { busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" call org.lockhub.Sim "/org/lockhub/sim/$1" org.lockhub.Sim1 "$2" ${3:+"$3"} ${4:+"$4"}; }

echo "== Pairing the three simulated locks (each is put in pairing mode first, as you"
echo "   would by holding its button)"
for lock in front back garage; do
	sim "$lock" SetPairingMode b true >/dev/null || die "cannot put $lock in pairing mode"
	# The lock's pairing-mode advert takes a moment to be seen, as with a real lock.
	tries=0
	until ctl pair --name "$lock" 2>"$dir/pair.err"; do
		tries=$((tries + 1))
		[ $tries -lt 15 ] || { cat "$dir/pair.err" >&2; die "pairing $lock failed"; }
		sleep 1
	done
done

echo
echo "== Status"
ctl list
echo
cat <<EOF2
== lockhub is running on simulated locks. In another terminal, try:

    export DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS
    $build/lockhubctl status front
    $build/lockhubctl unlock front
    $build/lockhubctl lock front
    $build/lockhubctl events front
    $build/lockhubctl monitor

    # turn the simulated lock by hand, or type a code on its keypad:
    busctl call org.lockhub.Sim /org/lockhub/sim/back org.lockhub.Sim1 ManualAction s unlock

    # watch what Home Assistant sees:
    mosquitto_sub -h 127.0.0.1 -p $port -t 'lockhub/#' -t 'homeassistant/#' -v

Live changes follow below. Press Ctrl-C to stop everything.
EOF2
ctl monitor
wait
