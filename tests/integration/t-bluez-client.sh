#!/bin/sh
# The BlueZ client library (src/bluez/) against lockhub-sim, driven by
# build/tools/bluez-probe scripts: object cache and adverts, discovery, the
# connection queue and its priorities, GATT writes with notifications enabled, idle
# disconnect, retry of le-connection-abort-by-local, the connect timeout of an absent
# lock, remote disconnects, adapter power cycles, RemoveDevice, and a bluetoothd
# crash and restart.
. "$LOCKHUB_TOP/tests/integration/lib.sh"

SIM="$BUILD/lockhub-sim"
PROBE="$BUILD/tools/bluez-probe"
[ -x "$SIM" ] || skip "build/lockhub-sim is not built"
[ -x "$PROBE" ] || skip "build/tools/bluez-probe is not built"

FRONT=54:D2:72:00:00:01  # pairing mode, gen 2
BACK=54:D2:72:00:00:02
GARAGE=54:D2:72:00:00:03
GDIO=a92ee101-5501-11e4-916c-0800200c9a66
# Request Data (0x0001) for Public Key (0x0003), CRC-16/CCITT-FALSE
REQ_PUBKEY=0100030027a7

start_dbus || exit 1
# Time scale 10: the kernel's 20 s LE connect timeout is 2 s, Disconnect's 2 s is 0.2 s.
"$SIM" --scale 10 --seed 7 >"$T/sim.log" 2>&1 &
sim_pid=$!
track $sim_pid
"$SIM" ctl wait-bluez 10 || { cat "$T/sim.log"; exit 1; }

busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" monitor >"$T/monitor.log" 2>&1 &
track $!
sleep 0.3

# probe NAME [OPTION...] < script: runs bluez-probe; stdout in $T/NAME.out, log in .err
probe() {
	_n=$1; shift
	"$PROBE" --debug --timeout 15 "$@" >"$T/$_n.out" 2>"$T/$_n.err"
	_rc=$?
	if [ $_rc -ne 0 ]; then
		echo "--- $_n.out"; tail -n 30 "$T/$_n.out"
		echo "--- $_n.err"; tail -n 30 "$T/$_n.err"
	fi
	return $_rc
}
has() { grep -q -- "$2" "$T/$1.out"; }
count() { grep -c -- "$2" "$T/$1.out"; }
# order NAME A B: the first line matching A comes before the first matching B
order() {
	_a=$(grep -n -m1 -- "$2" "$T/$1.out" | cut -d: -f1)
	_b=$(grep -n -m1 -- "$3" "$T/$1.out" | cut -d: -f1)
	[ -n "$_a" ] && [ -n "$_b" ] && [ "$_a" -lt "$_b" ]
}
set_blocked() {
	busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" set-property org.bluez \
		"/org/bluez/hci0/dev_$(echo "$1" | tr : _)" org.bluez.Device1 Blocked b "$2"
}

# --- 1. cache, discovery, adverts, connect, write, idle disconnect ------------------
probe basic --idle 1 <<EOF
expect service up
expect adapter hci0 added powered=1
scan on
expect adapter hci0 discovery-on
wait advert hci0 $FRONT
wait advert hci0 $BACK
wait advert hci0 $GARAGE
scan quiet
sleep 0.3
scan le-duplicates
sleep 0.5
adapters
connect $FRONT user
expect connected $FRONT via hci0
connect $FRONT user
write $FRONT $GDIO $REQ_PUBKEY
expect write $FRONT ok
write $FRONT 00000000-0000-1000-8000-00805f9b34fb 00
adapters
expect disconnected $FRONT ok
state $FRONT
scan off
expect adapter hci0 discovery-off
EOF
check "basic script ran to the end" test $? = 0
# Every client's GetManagedObjects comes after its own four AddMatch calls.
check "matches are installed before GetManagedObjects" \
	awk '/Member=AddMatch/ { for (i = 1; i <= NF; i++) if ($i ~ /^Sender=/) m[$i]++ }
		/Member=GetManagedObjects/ { for (i = 1; i <= NF; i++) if ($i ~ /^Sender=/) { n++; if (m[$i] < 4) bad = 1 } }
		END { exit bad || n == 0 }' "$T/monitor.log"
# The three SetDiscoveryFilter calls in order: the default (le), quiet, le-duplicates.
for i in 1 2 3; do
	awk -v i=$i '/Member=/ { n += /Member=SetDiscoveryFilter/; on = n == i && /Member=SetDiscoveryFilter/ } on' \
		"$T/monitor.log" | tr -s ' \n' ' ' >"$T/filter$i"
done
check "three discovery filters were set" test -s "$T/filter3"
check "default filter: Transport=le" grep -q 'STRING "Transport"; VARIANT "s" { STRING "le"; }' "$T/filter1"
check "default filter: DuplicateData=false" grep -q 'STRING "DuplicateData"; VARIANT "b" { BOOLEAN false; }' "$T/filter1"
check "quiet: an empty filter" grep -q 'ARRAY "{sv}" { }' "$T/filter2"
check "le-duplicates: Transport=le" grep -q 'STRING "Transport"; VARIANT "s" { STRING "le"; }' "$T/filter3"
check "le-duplicates: DuplicateData=true" grep -q 'STRING "DuplicateData"; VARIANT "b" { BOOLEAN true; }' "$T/filter3"
check "discovery filter: no UUIDs (Nuki beacons carry none)" sh -c "! cat '$T/filter1' '$T/filter3' | grep -q UUIDs"
check "adverts carry the Nuki iBeacon (company 0x004c)" \
	has basic "advert hci0 $BACK .*mfr=004c:0215a92ee200550111e4916c0800200c9a66"
check "pairing mode shows as service data a92ee100" \
	has basic "advert hci0 $FRONT .*sd=a92ee100-5501-11e4-916c-0800200c9a66:"
check "no pairing service data from a lock not in pairing mode" \
	sh -c "! grep -q 'advert hci0 $BACK .*sd=a92ee100' '$T/basic.out'"
check "adapter info shows our discovery session" has basic "adapter hci0 info powered=1 discovery=1 links=0"
check "connect while connected returns at once" has basic "connect $FRONT already"
check "connected link uses a slot" has basic "adapter hci0 info powered=1 discovery=1 links=1"
check "StartNotify on the GATT characteristics before connected()" \
	test "$(grep -c 'Member=StartNotify' "$T/monitor.log")" -ge 3
check "write with response succeeds" has basic "write $FRONT ok"
check "write to a missing characteristic fails at once" has basic "write $FRONT ENOENT (at once)"
check "idle link disconnected by us" has basic "disconnected $FRONT ok"
check "link idle after disconnect" has basic "state $FRONT idle"
write=$(grep -A16 'Member=WriteValue' "$T/monitor.log" | tr -s ' \n' ' ')
check "WriteValue carries type=request" sh -c "echo '$write' | grep -q 'STRING \"type\"; VARIANT \"s\" { STRING \"request\"; }'"

# --- 1b. indications, ReadValue and its Value echo, Service Changed -----------------
FW=00002a26-0000-1000-8000-00805f9b34fb
sn_before=$(grep -c 'Member=StartNotify' "$T/monitor.log")
probe gatt --notify $GDIO --notify $FW --notify a92ee201-5501-11e4-916c-0800200c9a66 \
	--notify a92ee202-5501-11e4-916c-0800200c9a66 <<EOF
scan on
wait advert hci0 $FRONT
connect $FRONT user
expect connected $FRONT
read $FRONT $FW
expect read $FRONT
write $FRONT $GDIO $REQ_PUBKEY
expect write $FRONT ok
expect indication $FRONT $GDIO 0300
expect indication $FRONT $GDIO
run "$SIM" ctl front ServiceChangedIndicate
sleep 1
write $FRONT $GDIO $REQ_PUBKEY
expect write $FRONT ok
expect indication $FRONT $GDIO 0300
disconnect $FRONT
expect disconnected $FRONT ok
EOF
check "gatt script ran to the end" test $? = 0
check "ReadValue returns the value (firmware 2.12.4)" has gatt "read $FRONT 322e31322e34"
check "the Value echo of our own read is not an indication" sh -c "! grep -q 'indication $FRONT $FW' '$T/gatt.out'"
check "no StartNotify on a characteristic without notify/indicate" \
	sh -c "! grep -q 'has neither notify nor indicate' '$T/gatt.err' || grep -q '$FW has neither' '$T/gatt.err'"
check "a 36-byte message arrives as two indications (20 + 16 bytes)" \
	test "$(grep "indication $FRONT $GDIO" "$T/gatt.out" | head -n 2 | awk '{ n += length($4) / 2 } END { print n }')" = 36
check "after Service Changed the re-added characteristics are subscribed again" \
	test "$(($(grep -c 'Member=StartNotify' "$T/monitor.log") - sn_before))" -ge 6

# --- 1b'. leaving pairing mode: the next advert has no pairing service data -------
probe pairing <<EOF
scan on
scan le-duplicates
wait advert hci0 $FRONT rssi=
run "$SIM" ctl front SetPairingMode false
sleep 1
run "$SIM" ctl front SetPairingMode true
sleep 1
EOF
check "pairing script ran to the end" test $? = 0
# advert lines for FRONT: with the service data, then without, then with it again
check "pairing mode seen on, off, on again in the adverts" \
	awk -v a="$FRONT" '$1 == "advert" && $3 == a { has = /sd=a92ee100/ ? 1 : 0
		if (step == 0 && has) step = 1; else if (step == 1 && !has) step = 2; else if (step == 2 && has) step = 3 }
		END { exit step != 3 }' "$T/pairing.out"

# --- 1d. what each scan mode signals; a lock that went away is not delivered again ---
# With a filter (le) bluetoothd signals RSSI with every advert; without one (quiet) only
# when it moved by 8 dBm. BACK advertises every 100 ms here (1 s at scale 10).
probe scan-le --all-adverts <<EOF
scan on
wait advert hci0 $BACK rssi=
sleep 2
EOF
check "scan-le script ran to the end" test $? = 0
probe scan-quiet --all-adverts <<EOF
scan quiet
scan on
wait advert hci0 $BACK rssi=
sleep 2
EOF
check "scan-quiet script ran to the end" test $? = 0
n_le=$(count scan-le "^advert hci0 $BACK ")
n_quiet=$(count scan-quiet "^advert hci0 $BACK ")
echo "adverts of BACK in about 2 s: le $n_le, quiet $n_quiet"
check "le: an advert per advertisement ($n_le in 2 s)" test "$n_le" -ge 8
check "quiet: far fewer ($n_quiet vs $n_le)" test $((n_quiet * 3)) -le "$n_le"
# BACK is known to BlueZ for good (connected above): its RSSI stays while discovery runs.
probe gone --all-adverts <<EOF
scan on
wait advert hci0 $BACK rssi=
run "$SIM" ctl back SetInRange false
sleep 0.5
run echo gone-mark
sleep 3
adapters
run "$SIM" ctl back SetInRange true
sleep 2
EOF
check "gone script ran to the end" test $? = 0
check "a lock out of range is not delivered again (nothing after the mark)" \
	awk -v a="$BACK" '/^gone-mark/ { m = 1; next } /^adapter / { m = 0 } m && $1 == "advert" && $3 == a { bad = 1 } END { exit bad }' "$T/gone.out"
check "... and is again once it is back" \
	awk -v a="$BACK" '/^gone-mark/ { m = 1 } m && $1 == "advert" && $3 == a { ok = 1 } END { exit !ok }' "$T/gone.out"

# --- 1c. error paths: unknown device, cancelled connect, reconnect while disconnecting
probe errors --queue-timeout 1 --idle 0.3 <<EOF
expect service up
connect 11:22:33:44:55:66 user
expect failed 11:22:33:44:55:66 EHOSTUNREACH
scan on
wait advert hci0 $BACK
run "$SIM" ctl back SetInRange false
connect $BACK user
sleep 0.3
state $BACK
disconnect $BACK
expect failed $BACK ECANCELED
run "$SIM" ctl back SetInRange true
connect $BACK user
expect connected $BACK
disconnect $BACK
connect $BACK refresh
expect disconnected $BACK ok
expect connected $BACK
expect disconnected $BACK ok
EOF
check "errors script ran to the end" test $? = 0
check "unknown device: EHOSTUNREACH after the queue timeout" has errors "failed 11:22:33:44:55:66 EHOSTUNREACH"
check "disconnect while connecting cancels (failed ECANCELED)" has errors "state $BACK connecting"
check "a connect asked for while disconnecting is served after it" \
	test "$(count errors "^connected $BACK")" = 2

# --- 2. the queue: one slot, user before refresh before maintenance ----------------
probe queue --idle 0.5 --max-connections 1 <<EOF
scan on
wait advert hci0 $FRONT
wait advert hci0 $BACK
wait advert hci0 $GARAGE
connect $GARAGE maintenance
connect $BACK refresh
connect $FRONT user
expect connected $FRONT
adapters
expect disconnected $FRONT ok
expect connected $BACK
expect disconnected $BACK ok
expect connected $GARAGE
expect disconnected $GARAGE ok
EOF
check "queue script ran to the end" test $? = 0
check "one connection at a time" has queue "adapter hci0 info powered=1 discovery=1 links=1"
check "user request first" order queue "connected $FRONT" "connected $BACK"
check "refresh before maintenance" order queue "connected $BACK" "connected $GARAGE"

# --- 3. le-connection-abort-by-local is retried; a retry can succeed ---------------
set_blocked $BACK true
probe retry --attempts 3 <<EOF
connect $BACK user
expect failed $BACK ECONNABORTED org.bluez.Error.Failed le-connection-abort-by-local
EOF
check "retry script ran to the end" test $? = 0
check "three attempts before giving up" test "$(grep -c "connecting via hci0 (attempt" "$T/retry.err")" = 3

probe retry2 --attempts 5 <<EOF
connect $BACK user
sleep 0.4
run busctl --address="\$DBUS_SYSTEM_BUS_ADDRESS" set-property org.bluez /org/bluez/hci0/dev_54_D2_72_00_00_02 org.bluez.Device1 Blocked b false
expect connected $BACK
disconnect $BACK
expect disconnected $BACK ok
EOF
check "connect succeeds on a retry after a transient abort" test $? = 0
set_blocked $BACK false

# --- 4. an absent lock: the kernel's connect timeout, no retry ----------------------
"$SIM" ctl back SetInRange false
probe absent --connect-timeout 3 --attempts 3 <<EOF
expect service up
connect $BACK user
expect failed $BACK ECONNABORTED org.bluez.Error.Failed le-connection-abort-by-local
EOF
check "absent lock fails with le-connection-abort-by-local" test $? = 0
check "a slow failure (connect timeout) is not retried" \
	test "$(grep -c "connecting via hci0 (attempt" "$T/absent.err")" = 1
"$SIM" ctl back SetInRange true

# --- 5. remote disconnect, power cycle, RemoveDevice --------------------------------
probe faults <<EOF
scan on
wait advert hci0 $FRONT
connect $FRONT user
expect connected $FRONT
run "$SIM" ctl front DropLink
expect disconnected $FRONT ECONNRESET
connect $FRONT user
expect connected $FRONT
power-cycle hci0
expect adapter hci0 powered-off
wait disconnected $FRONT ECONNRESET
expect adapter hci0 powered-on
wait power-cycle hci0 ok
expect adapter hci0 discovery-on
wait advert hci0 $GARAGE
remove $GARAGE
expect remove $GARAGE ok
sleep 0.5
remove 11:22:33:44:55:66
EOF
check "faults script ran to the end" test $? = 0
check "remote disconnect reported as ECONNRESET" has faults "disconnected $FRONT ECONNRESET"
check "power cycle reported" has faults "power-cycle hci0 ok"
check "discovery restarted after the power cycle" test "$(count faults "discovery-on")" = 2
check "RemoveDevice called" grep -q 'Member=RemoveDevice' "$T/monitor.log"
check "removing an unknown device fails at once" has faults "remove 11:22:33:44:55:66 ENOENT (at once)"

# --- 6. bluetoothd crashes and comes back -------------------------------------------
probe crash <<EOF
scan on
wait advert hci0 $FRONT
connect $FRONT user
expect connected $FRONT
run "$SIM" ctl hub CrashBluez 500
expect disconnected $FRONT EHOSTDOWN
expect service down
expect service up
expect adapter hci0 added
expect adapter hci0 discovery-on
wait advert hci0 $FRONT
connect $FRONT user
expect connected $FRONT
run "$SIM" ctl hub StopBluez 500
expect service down
expect service up
expect adapter hci0 discovery-on
EOF
check "crash script ran to the end" test $? = 0
check "adapter reported removed when bluetoothd went away" has crash "adapter hci0 removed"

# --- 7. adapter selection ------------------------------------------------------------
probe select --adapter hci1 --queue-timeout 1 <<EOF
expect service up
connect $FRONT user
expect failed $FRONT ENETDOWN
EOF
check "select script ran to the end" test $? = 0
check "an adapter not in the configuration is ignored" sh -c "! grep -q 'adapter hci0 added' '$T/select.out'"

# --- 8. a connection nobody uses is disconnected (bluez.md 3.5) ---------------------
FRONT_PATH=/org/bluez/hci0/dev_$(echo $FRONT | tr : _)
busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" --timeout=10 call org.bluez "$FRONT_PATH" org.bluez.Device1 Connect
connected() {
	busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" get-property org.bluez "$FRONT_PATH" org.bluez.Device1 Connected
}
check "another client left the lock connected" test "$(connected)" = "b true"
probe stray <<EOF
expect service up
link $FRONT
sleep 1
EOF
check "stray script ran to the end" test $? = 0
check "the stray connection was disconnected" test "$(connected)" = "b false"

# --- 9. a hung adapter: Connect times out; failed() comes at the connect timeout while
# the Disconnect that cleans up is still pending; a request made meanwhile is served
# once a power cycle (the recovery ladder's cure) has brought the adapter back.
probe hang --connect-timeout 1 --attempts 1 <<EOF
expect service up
run "$SIM" ctl hub HangAdapter hci0
connect $BACK user
expect failed $BACK ETIMEDOUT org.freedesktop.DBus.Error.NoReply
state $BACK
connect $BACK user
power-cycle hci0
expect power-cycle hci0 ok
expect connected $BACK
EOF
check "hang script ran to the end" test $? = 0
check "the failure is reported at the connect timeout, cleanup goes on" has hang "state $BACK disconnecting"

# --- 10. two adapters: placement by slot and signal, selection by address -----------
kill $sim_pid
wait $sim_pid 2>/dev/null
cat >"$T/two.conf" <<EOF
[sim]
scale = 10
[adapter hci0]
address = 00:1A:7D:DA:71:10
rssi-offset = -25
[adapter hci1]
address = 00:1A:7D:DA:71:11
[lock one]
address = 54:D2:72:00:01:01
rssi = -60
[lock two]
address = 54:D2:72:00:01:02
rssi = -60
EOF
"$SIM" --scenario "$T/two.conf" --seed 3 >"$T/sim2.log" 2>&1 &
sim2_pid=$!
track $sim2_pid
"$SIM" ctl wait-bluez 10 || { cat "$T/sim2.log"; exit 1; }
probe two --max-connections 1 <<EOF
expect service up
scan on
wait advert hci0 54:D2:72:00:01:01
wait advert hci0 54:D2:72:00:01:02
wait advert hci1 54:D2:72:00:01:01
wait advert hci1 54:D2:72:00:01:02
connect 54:D2:72:00:01:01 user
connect 54:D2:72:00:01:02 refresh
wait connected 54:D2:72:00:01:01
wait connected 54:D2:72:00:01:02
adapters
EOF
check "two-adapter script ran to the end" test $? = 0
check "the first request takes the stronger adapter" has two "connected 54:D2:72:00:01:01 via hci1"
check "the second is placed on the adapter with a free slot" has two "connected 54:D2:72:00:01:02 via hci0"
check "both adapters scan" test "$(count two "discovery-on")" = 2
sleep 0.5
for a in hci0 hci1; do
	c=$(busctl --address="$DBUS_SYSTEM_BUS_ADDRESS" get-property org.bluez \
		/org/bluez/$a/dev_54_D2_72_00_01_01 org.bluez.Device1 Connected)
	check "links are disconnected when the client's loop exits ($a)" test "$c" = "b false"
done

probe byaddr --adapter 00:1A:7D:DA:71:10 <<EOF
expect service up
expect adapter hci0 added
scan on
wait advert hci0 54:D2:72:00:01:01
sleep 0.5
EOF
check "by-address script ran to the end" test $? = 0
check "adapter selected by address" sh -c "! grep -q 'hci1' '$T/byaddr.out'"

# --- 11. services that take too long to resolve --------------------------------------
kill $sim2_pid
wait $sim2_pid 2>/dev/null
cat >"$T/slow.conf" <<EOF
[sim]
scale = 10
gatt-discovery = 50000
[adapter hci0]
address = 00:1A:7D:DA:71:10
[lock one]
address = 54:D2:72:00:01:01
rssi = -60
EOF
"$SIM" --scenario "$T/slow.conf" >"$T/sim3.log" 2>&1 &
track $!
"$SIM" ctl wait-bluez 10 || { cat "$T/sim3.log"; exit 1; }
probe slow --resolve-timeout 1 <<EOF
scan on
wait advert hci0 54:D2:72:00:01:01
connect 54:D2:72:00:01:01 user
expect failed 54:D2:72:00:01:01 ETIMEDOUT n/a services not resolved in time
state 54:D2:72:00:01:01
expect state 54:D2:72:00:01:01 disconnecting
EOF
check "slow script ran to the end" test $? = 0

finish
