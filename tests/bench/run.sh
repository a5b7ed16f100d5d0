#!/bin/sh
# make bench: lockhubd (optimised build) against lockhub-sim on a private dbus-daemon and a
# real mosquitto on loopback. Scenarios, targets and results: BENCHMARKS.md. Every
# process is started here, tracked by pid and stopped by pid; sockets are loopback TCP
# (the broker) and Unix sockets in a temporary directory.
#
#   LOCKHUB_BUILD=build/bench tests/bench/run.sh [SCENARIO...]
#       SCENARIO: overhead e2e memory idle startup scale (default), idle_noscan (comparison)
#   BENCH_QUICK=1   fewer repetitions (a smoke run of the script itself)
#
# Prints a table and, as its very last line, the JSON document; also writes the JSON to
# $LOCKHUB_BUILD/results.json and the raw samples under $LOCKHUB_BUILD/bench-raw/.
LOCKHUB_TOP=${LOCKHUB_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
LOCKHUB_BUILD=${LOCKHUB_BUILD:-$LOCKHUB_TOP/build/bench}
export LOCKHUB_TOP LOCKHUB_BUILD
. "$LOCKHUB_TOP/tests/integration/lib.sh"
PATH="$PATH:/usr/sbin:/sbin"
for c in mosquitto mosquitto_sub mosquitto_pub python3 dbus-daemon; do
	command -v $c >/dev/null 2>&1 || { echo "bench: $c is not installed" >&2; exit 1; }
done
SIM=$BUILD/lockhub-sim
SEED=$BUILD/tools/bench-seed
MQ=$BUILD/tools/bench-mqtt
RAW=$BUILD/bench-raw
rm -rf "$RAW"
mkdir -p "$RAW"
QUICK=${BENCH_QUICK:-0}
SCENARIOS=${*:-overhead e2e memory idle startup scale}

# ---- repetitions (chosen so that the whole run fits 15 minutes on 2 busy cores) -------
if [ "$QUICK" = 1 ]; then
	OVH_RUNS=1 OVH_CMDS=40 E2E_RUNS=2 MEM_SECONDS=20 IDLE_SECONDS=20 START_RUNS=2 SCALE_RUNS=1
else
	OVH_RUNS=3 OVH_CMDS=150 E2E_RUNS=5 MEM_SECONDS=60 IDLE_SECONDS=60 START_RUNS=5 SCALE_RUNS=2
fi

log() { echo "bench: $*" >&2; }

# stop PID: TERM, then KILL after 5 s
stop() {
	[ -n "${1:-}" ] || return 0
	kill "$1" 2>/dev/null
	_i=0
	while kill -0 "$1" 2>/dev/null && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# ---- statistics ------------------------------------------------------------------------
# pct P: the P-th percentile (nearest rank) of the numbers on stdin
pct() { sort -n | awk -v p="$1" '{ a[NR] = $1 } END { if (!NR) { print 0; exit }
	i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print a[i] }'; }
# median of the numbers on stdin; spread: min..max
median() { pct 50; }
spread() { sort -n | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
# ms: microseconds on stdin → milliseconds with 3 decimals
ms() { awk '{ printf "%.3f\n", $1 / 1000 }'; }

# ---- the world: bus, broker, simulator, daemon ------------------------------------------
start_dbus
PORT=$(free_port)
BROKER_PID= D_PID= SIM_PID=
start_broker() {
	cat >"$T/m.conf" <<EOF
listener $PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
user $(id -un)
EOF
	mosquitto -c "$T/m.conf" >>"$T/m.log" 2>&1 &
	BROKER_PID=$!
	track $BROKER_PID
	wait_for 10 python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$PORT"
}

# world NAME NLOCKS SIM_SECTION CONF_LINES: a fresh state directory $S with NLOCKS seeded
# locks, the scenario file, a fresh broker, the simulator ($SIM_PID, trace $S/trace) and
# lockhubd ($D_PID), waited for until its retained lockhub/bridge/state says online.
# WORLD_DB=DIR starts from DIR's database and key; WORLD_NO_DAEMON=1 leaves lockhubd out.
world() {
	S=$T/$1
	rm -rf "$S"
	mkdir -p "$S/state"
	# a database seeded with events (and its key) to start from, when asked
	[ -n "${WORLD_DB:-}" ] && cp "$WORLD_DB/lockhub.db" "$WORLD_DB/lockhub.key" "$S/state/"
	{
		printf '[sim]\n%b\n[adapter hci0]\naddress = 00:1A:7D:DA:71:10\n\n' "$3"
		[ "$2" -gt 0 ] && "$SEED" locks "$S/state" "$2" 2>>"$S/seed.log" |
			sed "/^\[lock /a ${LOCK_EXTRA:-# defaults}"
	} >"$S/scenario" || { log "seeding failed"; cat "$S/seed.log" >&2; return 1; }
	{
		printf '[Hub]\nLogLevel=notice\nTimeSyncDriftSec=0\n'
		printf '[MQTT]\nHost=127.0.0.1\nPort=%s\nReconnectMinSec=1s\nReconnectMaxSec=2s\n' "$PORT"
		printf '%b\n' "$4"
	} >"$S/lockhub.conf"
	stop "$BROKER_PID"
	start_broker || { log "mosquitto did not start"; return 1; }
	"$SIM" --scenario "$S/scenario" --trace "$S/trace" --log-level warning >>"$S/sim.log" 2>&1 &
	SIM_PID=$!
	track $SIM_PID
	"$SIM" ctl wait-bluez 10 || { log "lockhub-sim did not come up"; tail -n 20 "$S/sim.log" >&2; return 1; }
	[ -n "${WORLD_NO_DAEMON:-}" ] && return 0
	"$BUILD/lockhubd" --config "$S/lockhub.conf" --state-dir "$S/state" >>"$S/lockhubd.log" 2>&1 &
	D_PID=$!
	track $D_PID
	wait_for 30 bridge_online ||
		{ log "lockhubd did not come online on MQTT"; tail -n 20 "$S/lockhubd.log" >&2; return 1; }
}
bridge_online() {
	mosquitto_sub -h 127.0.0.1 -p "$PORT" -t lockhub/bridge/state -C 1 -W 1 2>/dev/null | grep -q online
}
unworld() {
	stop "$D_PID"
	stop "$SIM_PID"
	D_PID= SIM_PID=
	mkdir -p "$RAW/${S##*/}"
	cp "$S"/*.log "$S/lockhub.conf" "$S/scenario" "$RAW/${S##*/}/" 2>/dev/null
}
# status FIELD: a field of lockhubd's /proc/PID/status, the number only
status() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$D_PID/status"; }
sim_counter() { "$SIM" ctl "$1" get "$2" 2>/dev/null | awk '{ print $NF }'; }
conns() { for _l in $(lock_names "$1"); do sim_counter "$_l" Connections; done | awk '{ s += $1 } END { print s + 0 }'; }
cpu() { awk '{ print $14 + $15 }' "/proc/$D_PID/stat"; }
switches() { echo $(($(status voluntary_ctxt_switches) + $(status nonvoluntary_ctxt_switches))); }
lock_names() { _i=1; while [ $_i -le "$1" ]; do printf 'b%03d ' $_i; _i=$((_i + 1)); done; }

# ---- 1. hub overhead ----------------------------------------------------------------------
# Zero radio: every sim delay 0 (the sim's floor is 1 µs), motor included. One lock, kept
# connected (IdleDisconnectSec=1h); the first 5 commands (connection set-up) are not counted.
# The counted commands are OVH_GAP_MS apart: lockhubd accepts 2 set commands per second
# and lock, sustained (its MQTT flood limit), and refuses the excess.
OVH_GAP_MS=500
ZERO='le-connect-timeout = 20000\ngatt-discovery = 0\natt-round-trip = 0\nmotor-action = 0\nadapter-probe = 0\nauto-enable = 0\npower-delay = 0\nscan-start-delay = 0'
bench_overhead() {
	: >"$RAW/overhead-cmd-us" && : >"$RAW/overhead-state-us" && : >"$RAW/overhead-cpu-ms"
	for run in $(seq "$OVH_RUNS"); do
		world overhead 1 "$ZERO" '[Bluetooth]\nIdleDisconnectSec=1h\nCommandTimeoutSec=10s' || return 1
		"$MQ" seq "$PORT" b001 5 0 20 >"$S/cmds" 2>"$S/mq.err" || log "overhead run $run: $(cat "$S/mq.err")"
		t0=$(cpu)
		"$MQ" seq "$PORT" b001 "$OVH_CMDS" "$OVH_GAP_MS" 20 >>"$S/cmds" 2>"$S/mq.err" ||
			log "overhead run $run: $(cat "$S/mq.err")"
		# lockhubd's own CPU time per command (user + system, clock ticks of 10 ms)
		echo "$t0 $(cpu) $OVH_CMDS" | awk '{ printf "%.3f\n", ($2 - $1) * 10 / $3 }' >>"$RAW/overhead-cpu-ms"
		unworld
		# merge the client's and the sim's timestamps (one monotonic clock) and pair them
		{
			awk 'NR > 5 { print $2, "pub"; print $3, "done" }' "$S/cmds"
			awk '$2 == "b001" { print $1, $3, $4 }' "$S/trace"
		} | sort -n -k1,1 | awk -v c="$RAW/overhead-cmd-us" -v s="$RAW/overhead-state-us" '
			$2 == "pub" { p = $1; want = 1 }
			$2 == "action" && want { print $1 - p >> c; want = 0 }
			$2 == "state" && ($3 == 1 || $3 == 3) { last = $1 }
			$2 == "done" { print $1 - last >> s }'
	done
	OVH_N=$(wc -l <"$RAW/overhead-state-us")
	OVH_CPU=$(median <"$RAW/overhead-cpu-ms")
	for k in cmd state; do
		for p in 50 99 100; do
			eval "OVH_${k}_$p=\$(pct $p <\"\$RAW/overhead-$k-us\" | ms)"
		done
	done
}

# ---- 2. end to end against the radio limit ---------------------------------------------
# The radio profile (real-world ms, time scale 1): connection interval 30 ms, so one ATT
# round trip (a write and its response, or an indication and its confirmation, both
# directions) costs RTT = 60 ms; the lock advertises every ADV = 500 ms and a connection
# comes up at the next advert plus three round trips (ADV/2 + 3 RTT on average); GATT
# discovery GATT = 350 ms; the motor turns in MOTOR = 2500 ms.
RTT=60 ADV=500 GATT=350 MOTOR=2500
PROFILE="att-round-trip = $RTT\ngatt-discovery = $GATT\nmotor-action = $MOTOR"
# The protocol minimum for one Lock Action (Nuki BLE API, Bridge authorization): a write
# reaches the lock half a round trip after it is sent and an indication reaches the hub
# half a round trip after the lock sends it; responses and confirmations are off the
# critical path except where the next step must wait for them.
#   connected:    Request Data(Challenge) ½ + challenge indication ½ + Lock Action ½ +
#                 MOTOR + final Keyturner States indication ½       = 2 RTT + MOTOR
#   disconnected: + the link (next advert ADV/2 + 3 RTT) + GATT discovery + enabling
#                 indications on the user-specific characteristic (1 RTT: confirmed
#                 before the first command)                 = ADV/2 + 6 RTT + GATT + MOTOR
MIN_CONNECTED=$((2 * RTT + MOTOR))
MIN_DISCONNECTED=$((ADV / 2 + 6 * RTT + GATT + MOTOR))
bench_e2e() {
	for mode in connected disconnected; do
		if [ $mode = connected ]; then idle=1h gap=500; else idle=0 gap=4000; fi
		warm=1 # the first command may find the lock in its target state already (motor 1/4)
		LOCK_EXTRA="adv-interval = $ADV" world e2e-$mode 1 "$PROFILE" \
			"[Bluetooth]\nIdleDisconnectSec=$idle\nCommandTimeoutSec=30s" || return 1
		sleep 2 # let the start-up settle
		c0=$(sim_counter b001 Connections)
		"$MQ" seq "$PORT" b001 $((E2E_RUNS + warm)) $gap 30 >"$S/cmds" 2>"$S/mq.err" ||
			log "e2e $mode: $(cat "$S/mq.err")"
		c1=$(sim_counter b001 Connections)
		unworld
		awk -v w=$warm 'NR > w { print $3 - $2 }' "$S/cmds" >"$RAW/e2e-$mode-us"
		log "e2e $mode: $(wc -l <"$RAW/e2e-$mode-us") commands, $((c1 - c0)) connections opened"
	done
	E2E_CONN=$(median <"$RAW/e2e-connected-us" | ms)
	E2E_DISC=$(median <"$RAW/e2e-disconnected-us" | ms)
	E2E_CONN_SPREAD=$(ms <"$RAW/e2e-connected-us" | spread)
	E2E_DISC_SPREAD=$(ms <"$RAW/e2e-disconnected-us" | spread)
	E2E_RATIO_CONN=$(echo "$E2E_CONN $MIN_CONNECTED" | awk '{ printf "%.3f", $1 / $2 }')
	E2E_RATIO_DISC=$(echo "$E2E_DISC $MIN_DISCONNECTED" | awk '{ printf "%.3f", $1 / $2 }')
}

# ---- 3. memory ----------------------------------------------------------------------------
# lockhubd's VmHWM (peak) and VmRSS (steady: after the activity, once quiet) with 1, 10
# and 100 paired locks after 10 simulated minutes at time scale 10 (MEM_SECONDS real
# seconds of: a manual action at a lock every second, round robin, which sets the advert's
# state-changed flag so the hub connects and reads the states; an MQTT command every 3 s);
# then with 10 locks and 1,000,000 events in the database.
EVENTS_DB=
seed_events() {
	[ -n "$EVENTS_DB" ] && return 0
	EVENTS_DB=$T/events-1m
	mkdir -p "$EVENTS_DB"
	_t0=$(date +%s)
	"$SEED" events "$EVENTS_DB" 1000000 2>>"$EVENTS_DB/seed.log" || { log "seeding events failed"; return 1; }
	log "1,000,000 events seeded in $(($(date +%s) - _t0)) s ($(du -m "$EVENTS_DB/lockhub.db" | cut -f1) MiB)"
}
# activity SECONDS NLOCKS
activity() {
	_end=$(($(date +%s) + $1)) _k=0
	while [ "$(date +%s)" -lt "$_end" ]; do
		_k=$((_k + 1))
		_n=$(printf 'b%03d' $(((_k % $2) + 1)))
		if [ $((_k % 2)) = 0 ]; then _a=lock; else _a=unlock; fi
		"$SIM" ctl "$_n" ManualAction $_a >/dev/null 2>&1
		if [ $((_k % 3)) = 0 ]; then
			_n=$(printf 'b%03d' $((((_k / 3) % $2) + 1)))
			mosquitto_pub -h 127.0.0.1 -p "$PORT" -t "lockhub/$_n/set" -m LOCK 2>/dev/null
		fi
		sleep 1
	done
}
bench_memory() {
	seed_events || return 1
	for n in 1 10 100 events; do
		if [ $n = events ]; then nl=10 db=$EVENTS_DB secs=$((MEM_SECONDS / 2)); else nl=$n db= secs=$MEM_SECONDS; fi
		WORLD_DB=$db world mem-$n $nl 'scale = 10' '[Bluetooth]\nIdleDisconnectSec=2s' || return 1
		activity "$secs" "$nl"
		sleep 5
		for k in $(seq 5); do status VmRSS; sleep 1; done >"$RAW/mem-$n-rss"
		hwm=$(status VmHWM)
		eval "MEM_ANON_$n=$(status RssAnon) MEM_FILE_$n=$(status RssFile)"
		eval "MEM_RSS_$n=\$(median <\"\$RAW/mem-\$n-rss\")"
		eval "MEM_HWM_$n=$hwm"
		log "memory $n: VmRSS $(tr '\n' ' ' <"$RAW/mem-$n-rss")KiB, VmHWM $hwm KiB, RssAnon $(status RssAnon), RssFile $(status RssFile) KiB"
		unworld
	done
}

# ---- 4. idle cost -------------------------------------------------------------------------
# 10 paired locks advertising (time scale 1, default adverts), the broker connected, the
# default configuration (ScanMode=le), then the same with ScanMode=quiet. After 10 s to
# settle: context switches of lockhubd (voluntary + involuntary, /proc/PID/status) and CPU
# time over IDLE_SECONDS, and connections the locks saw (sim counters) in that window and
# since start.
idle_run() {
	world idle-$1 10 'scale = 1' "$2" || return 1
	sleep 10
	c0=$(conns 10) x0=$(switches) t0=$(cpu)
	sleep "$IDLE_SECONDS"
	c1=$(conns 10) x1=$(switches) t1=$(cpu)
	IR_WAKEUPS=$(echo "$x0 $x1 $IDLE_SECONDS" | awk '{ printf "%.2f", ($2 - $1) / $3 }')
	IR_CONN=$((c1 - c0))
	IR_CONN_TOTAL=$c1
	IR_CPU=$(echo "$t0 $t1 $IDLE_SECONDS" | awk '{ printf "%.2f", ($2 - $1) / $3 }') # ticks/s = % of a core
	adv=$(for _l in $(lock_names 10); do sim_counter "$_l" Adverts; done | awk '{ s += $1 } END { print s + 0 }')
	log "idle ($1): $((x1 - x0)) context switches in $IDLE_SECONDS s, $IR_CONN connections ($c1 since start), $adv adverts sent, CPU $IR_CPU%"
	unworld
}
bench_idle() {
	idle_run le '' || return 1
	IDLE_WAKEUPS=$IR_WAKEUPS IDLE_CONN=$IR_CONN IDLE_CONN_TOTAL=$IR_CONN_TOTAL IDLE_CPU=$IR_CPU
	idle_run quiet '[Bluetooth]\nScanMode=quiet' || return 1
	IDLE_Q_WAKEUPS=$IR_WAKEUPS IDLE_Q_CONN=$IR_CONN IDLE_Q_CPU=$IR_CPU
}

# ---- 5. start-up ----------------------------------------------------------------------------
# exec → READY=1 on a NOTIFY_SOCKET (tests/bench/startup.py), START_RUNS times, with an
# empty database and with 1,000,000 events (10 paired locks in both); the simulator and
# the broker up.
bench_startup() {
	seed_events || return 1
	for kind in empty events; do
		if [ $kind = events ]; then db=$EVENTS_DB; else db=; fi
		WORLD_DB=$db WORLD_NO_DAEMON=1 world startup-$kind 10 'scale = 1' '' || return 1
		python3 "$LOCKHUB_TOP/tests/bench/startup.py" "$S/notify.sock" "$S/daemon.pid" "$START_RUNS" \
			"$BUILD/lockhubd" --config "$S/lockhub.conf" --state-dir "$S/state" \
			>"$RAW/startup-$kind-us" 2>>"$S/lockhubd.log" &
		_py=$!
		track $_py
		wait $_py || log "startup $kind: $(tail -n 3 "$S/lockhubd.log")"
		[ -s "$S/daemon.pid" ] && stop "$(cat "$S/daemon.pid")"
		unworld
	done
	START_EMPTY=$(median <"$RAW/startup-empty-us" | ms)
	START_EVENTS=$(median <"$RAW/startup-events-us" | ms)
	START_EMPTY_SPREAD=$(ms <"$RAW/startup-empty-us" | spread)
	START_EVENTS_SPREAD=$(ms <"$RAW/startup-events-us" | spread)
}

# ---- 6. scale ---------------------------------------------------------------------------------
# 100 paired locks on one adapter (hci0), MaxConnections=3 (the default), time scale 10;
# one MQTT command to every lock at once; time until the last one completed, and how many
# completed, failed (an MQTT "failed" event, with its reason) or were lost (neither).
# SCALE_RUNS runs with the default [Bluetooth] timings, then one with IdleDisconnectSec=0
# and ConnectTimeoutSec=5min (a slot is released as soon as a command is done, and a
# command may wait that long for one).
scale_run() {
	world scale-$1 100 'scale = 10' "[Bluetooth]\\nMaxConnections=3\\n$2" || return 1
	sleep 2
	c0=$(conns 100)
	"$MQ" burst "$PORT" 240 $(lock_names 100) >"$S/burst" 2>"$S/mq.err"
	c1=$(conns 100)
	line=$(tail -n 1 "$S/burst")
	reasons=$(awk 'NF == 4 && $4 != "-" { print $4 }' "$S/burst" | sort | uniq -c | tr -s ' \n' ' ')
	log "scale $1: $line; $((c1 - c0)) connections; failures:${reasons:- none}"
	cp "$S/burst" "$RAW/scale-$1.burst"
	unworld
	# "completed C of N in S seconds, F failed, L lost"
	set -- $line
	[ "${1:-}" = completed ] || return 1
	SR_DONE=$2 SR_SECONDS=$6 SR_FAILED=${8:-} SR_LOST=${10:-}
}
bench_scale() {
	: >"$RAW/scale-seconds"
	SCALE_DONE= SCALE_FAILED= SCALE_LOST=
	for run in $(seq "$SCALE_RUNS"); do
		scale_run default-$run '' || continue
		SCALE_DONE="$SCALE_DONE $SR_DONE" SCALE_FAILED="$SCALE_FAILED $SR_FAILED" SCALE_LOST="$SCALE_LOST $SR_LOST"
		echo "$SR_SECONDS" >>"$RAW/scale-seconds"
	done
	SCALE_COMPLETED=$(echo "$SCALE_DONE" | tr ' ' '\n' | grep . | median)
	SCALE_FAILS=$(echo "$SCALE_FAILED" | tr ' ' '\n' | grep . | median)
	SCALE_LOSTN=$(echo "$SCALE_LOST" | tr ' ' '\n' | grep . | median)
	SCALE_SECONDS=$(median <"$RAW/scale-seconds")
	SCALE_SPREAD=$(spread <"$RAW/scale-seconds")
	if scale_run tuned 'IdleDisconnectSec=0\nConnectTimeoutSec=5min'; then
		SCALE_T_DONE=$SR_DONE SCALE_T_SECONDS=$SR_SECONDS SCALE_T_FAILED=$SR_FAILED SCALE_T_LOST=$SR_LOST
	fi
}

# ---- idle, for comparison: the same without scanning (ScanWhilePaired=no) ----------------
bench_idle_noscan() {
	world idle-noscan 10 'scale = 1' '[Bluetooth]\nScanWhilePaired=no' || return 1
	sleep 10
	x0=$(switches)
	sleep $((IDLE_SECONDS / 2))
	x1=$(switches)
	IDLE_NOSCAN=$(echo "$x0 $x1 $((IDLE_SECONDS / 2))" | awk '{ printf "%.2f", ($2 - $1) / $3 }')
	log "idle without scanning: $((x1 - x0)) context switches in $((IDLE_SECONDS / 2)) s"
	unworld
}

T_START=$(date +%s)
for sc in $SCENARIOS; do
	log "scenario $sc ($(($(date +%s) - T_START)) s so far, load $(cut -d' ' -f1-3 /proc/loadavg))"
	"bench_$sc" || { log "scenario $sc failed"; unworld; }
done

# ---- report -------------------------------------------------------------------------------
v() { eval "_x=\${$1:-}"; if [ -n "$_x" ]; then echo "$_x"; else echo null; fi; }
# row NAME VALUE TARGET VERDICT (an awk condition on $1, the value; empty: no target)
row() {
	if [ "$2" = null ]; then _verdict="not measured"
	elif [ -z "$4" ]; then _verdict=""
	elif echo "$2" | awk "{ exit !($4) }"; then _verdict=met
	else _verdict=MISSED; fi
	printf '%-46s %15s   %-18s %s\n' "$1" "$2" "$3" "$_verdict"
}
mib() { if [ "$1" = null ]; then echo null; else awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; fi; }
RATIO=$(echo "$(v E2E_RATIO_CONN) $(v E2E_RATIO_DISC)" |
	awk '$1 == "null" || $2 == "null" { print "null"; exit } { print ($1 > $2 ? $1 : $2) }')
echo
echo "lockhub benchmarks: $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
	"$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)," \
	"$(($(date +%s) - T_START)) s"
printf '%-46s %15s   %-18s %s\n' figure value "unit / target" verdict
row "overhead: publish → Lock Action write, p50" "$(v OVH_cmd_50)" "ms" ""
row "overhead: publish → Lock Action write, p99" "$(v OVH_cmd_99)" "<= 1 ms" '$1 <= 1'
row "overhead: publish → Lock Action write, max" "$(v OVH_cmd_100)" "ms" ""
row "overhead: final state → MQTT state, p50" "$(v OVH_state_50)" "ms" ""
row "overhead: final state → MQTT state, p99" "$(v OVH_state_99)" "<= 1 ms" '$1 <= 1'
row "overhead: final state → MQTT state, max" "$(v OVH_state_100)" "ms" ""
row "overhead: lockhubd CPU per command" "$(v OVH_CPU)" "ms" ""
row "e2e connected lock, median" "$(v E2E_CONN)" "ms (min $MIN_CONNECTED)" ""
row "e2e connected lock, ratio to the minimum" "$(v E2E_RATIO_CONN)" "<= 1.2" '$1 <= 1.2'
row "e2e disconnected lock, median" "$(v E2E_DISC)" "ms (min $MIN_DISCONNECTED)" ""
row "e2e disconnected lock, ratio to the minimum" "$(v E2E_RATIO_DISC)" "<= 1.2" '$1 <= 1.2'
row "RSS 1 lock, steady" "$(mib "$(v MEM_RSS_1)")" "MiB" ""
row "RSS 1 lock, peak" "$(mib "$(v MEM_HWM_1)")" "MiB" ""
row "RSS 10 locks, steady" "$(mib "$(v MEM_RSS_10)")" "<= 4 MiB" '$1 <= 4'
row "RSS 10 locks, peak" "$(mib "$(v MEM_HWM_10)")" "<= 4 MiB" '$1 <= 4'
row "RSS 100 locks, steady" "$(mib "$(v MEM_RSS_100)")" "<= 8 MiB" '$1 <= 8'
row "RSS 100 locks, peak" "$(mib "$(v MEM_HWM_100)")" "<= 8 MiB" '$1 <= 8'
row "  of which private (RssAnon), 1/10/100 locks" "$(v MEM_ANON_1)/$(v MEM_ANON_10)/$(v MEM_ANON_100)" "KiB" ""
row "  of which libraries (RssFile), 1/10/100" "$(v MEM_FILE_1)/$(v MEM_FILE_10)/$(v MEM_FILE_100)" "KiB" ""
row "RSS 10 locks + 1M events, steady" "$(mib "$(v MEM_RSS_events)")" "MiB" ""
row "RSS 10 locks + 1M events, peak" "$(mib "$(v MEM_HWM_events)")" "MiB" ""
row "idle 10 locks: wake-ups per second" "$(v IDLE_WAKEUPS)" "<= 1" '$1 <= 1'
row "idle 10 locks: BLE connections opened" "$(v IDLE_CONN)" "0" '$1 == 0'
row "idle 10 locks: CPU (% of one core)" "$(v IDLE_CPU)" "%" ""
row "idle 10 locks, ScanMode=quiet: wake-ups/s" "$(v IDLE_Q_WAKEUPS)" "<= 1" '$1 <= 1'
row "idle 10 locks, ScanMode=quiet: connections" "$(v IDLE_Q_CONN)" "0" '$1 == 0'
row "idle 10 locks, ScanMode=quiet: CPU (%)" "$(v IDLE_Q_CPU)" "%" ""
row "idle 10 locks, no scanning: wake-ups/s" "$(v IDLE_NOSCAN)" "(comparison)" ""
row "start-up → READY=1, empty database" "$(v START_EMPTY)" "ms" ""
row "start-up → READY=1, 1M events" "$(v START_EVENTS)" "<= 100 ms" '$1 <= 100'
row "scale: commands completed (of 100), median" "$(v SCALE_COMPLETED)" "100, none lost" '$1 == 100'
row "scale: commands failed / lost, median" "$(v SCALE_FAILS) / $(v SCALE_LOSTN)" "0 / 0" ""
row "scale: time until the last one ended, median" "$(v SCALE_SECONDS)" "s" ""
row "scale, IdleDisconnectSec=0: completed" "$(v SCALE_T_DONE)" "100, none lost" '$1 == 100'
row "scale, IdleDisconnectSec=0: failed / lost" "$(v SCALE_T_FAILED) / $(v SCALE_T_LOST)" "0 / 0" ""
row "scale, IdleDisconnectSec=0: time until all" "$(v SCALE_T_SECONDS)" "s" ""
echo "spread (min..max): e2e connected $(v E2E_CONN_SPREAD) ms, disconnected $(v E2E_DISC_SPREAD) ms;" \
	"start-up empty $(v START_EMPTY_SPREAD) ms, 1M events $(v START_EVENTS_SPREAD) ms; scale $(v SCALE_SPREAD) s;" \
	"overhead: $(v OVH_N) commands in $OVH_RUNS runs"
JSON=$(
	printf '{"overhead_ms": {"cmd_p50": %s, "cmd_p99": %s, "cmd_max": %s, "state_p50": %s, "state_p99": %s, "state_max": %s, "commands": %s, "hub_cpu_per_cmd": %s}, ' \
		"$(v OVH_cmd_50)" "$(v OVH_cmd_99)" "$(v OVH_cmd_100)" "$(v OVH_state_50)" "$(v OVH_state_99)" \
		"$(v OVH_state_100)" "$(v OVH_N)" "$(v OVH_CPU)"
	printf '"e2e": {"disconnected_ms": %s, "connected_ms": %s, "minimum_ms": %s, "ratio": %s, "minimum_connected_ms": %s, "ratio_disconnected": %s, "ratio_connected": %s}, ' \
		"$(v E2E_DISC)" "$(v E2E_CONN)" "$MIN_DISCONNECTED" "$RATIO" "$MIN_CONNECTED" "$(v E2E_RATIO_DISC)" \
		"$(v E2E_RATIO_CONN)"
	printf '"rss_kib": {"locks_1": %s, "locks_10": %s, "locks_100": %s, "events_1m": %s}, ' \
		"$(v MEM_RSS_1)" "$(v MEM_RSS_10)" "$(v MEM_RSS_100)" "$(v MEM_RSS_events)"
	printf '"peak_rss_kib": {"locks_1": %s, "locks_10": %s, "locks_100": %s, "events_1m": %s}, ' \
		"$(v MEM_HWM_1)" "$(v MEM_HWM_10)" "$(v MEM_HWM_100)" "$(v MEM_HWM_events)"
	printf '"idle": {"wakeups_per_s": %s, "ble_connections": %s, "ble_connections_since_start": %s, "cpu_percent": %s, "wakeups_per_s_quiet": %s, "ble_connections_quiet": %s, "cpu_percent_quiet": %s, "wakeups_per_s_without_scan": %s}, ' \
		"$(v IDLE_WAKEUPS)" "$(v IDLE_CONN)" "$(v IDLE_CONN_TOTAL)" "$(v IDLE_CPU)" "$(v IDLE_Q_WAKEUPS)" \
		"$(v IDLE_Q_CONN)" "$(v IDLE_Q_CPU)" "$(v IDLE_NOSCAN)"
	printf '"startup_ms": {"empty": %s, "events_1m": %s}, ' "$(v START_EMPTY)" "$(v START_EVENTS)"
	printf '"scale": {"locks": 100, "commands": 100, "completed": %s, "seconds": %s, "failed": %s, "lost": %s, "tuned_completed": %s, "tuned_seconds": %s}, ' \
		"$(v SCALE_COMPLETED)" "$(v SCALE_SECONDS)" "$(v SCALE_FAILS)" "$(v SCALE_LOSTN)" "$(v SCALE_T_DONE)" "$(v SCALE_T_SECONDS)"
	printf '"rss_anon_kib": {"locks_1": %s, "locks_10": %s, "locks_100": %s, "events_1m": %s}, ' \
		"$(v MEM_ANON_1)" "$(v MEM_ANON_10)" "$(v MEM_ANON_100)" "$(v MEM_ANON_events)"
	printf '"machine": {"nproc": %s, "loadavg_1min": %s}}' "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)"
)
echo "$JSON" >"$BUILD/results.json"
echo "$JSON"
