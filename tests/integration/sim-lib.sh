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
