#!/bin/sh
# A Smart Lock Ultra pairs through the Ultra flow (chosen by its pairing service
# a92ee301), which needs the 6-digit security PIN: without a PIN the daemon refuses
# before touching the lock, a wrong PIN is refused by the lock, the right one pairs,
# and the 32-bit PIN then works for the commands that need it (the activity log).
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
cat >"$T/scenario" <<SC
[sim]
scale = 20
[adapter hci0]
address = 00:1A:7D:DA:71:10
[lock door]
address = 54:D2:72:00:00:09
generation = ultra
firmware = 5.1.0
pairing-mode = yes
security-pin = 482913
SC
start_sim --scenario "$T/scenario"
write_conf
start_lockhubd

check "the Ultra's pairing-mode advert is seen" wait_for 10 sh -c \
	"\"$BUILD/lockhubctl\" pair --name door 2>&1 | grep -q 'needs its 6-digit security PIN'"
ctl pair --name door 2>/dev/null
rc=$?
check "no PIN: exit 2 (got $rc)" test $rc = 2
# the PIN is never taken from the command line
out=$(ctl pair --name door --pin=482913 2>&1)
rc=$?
check "--pin=PIN refused: exit 2 (got $rc: $out)" sh -c "test $rc = 2 && echo \"\$1\" | grep -q 'not taken on the command line'" - "$out"
out=$(ctl pair --name door --pin 482913 2>&1 </dev/null)
rc=$?
check "--pin PIN refused: exit 2 (got $rc: $out)" sh -c "test $rc = 2 && echo \"\$1\" | grep -q 'takes no value'" - "$out"
out=$(echo 48x913 | ctl pair --name door --pin-stdin 2>&1)
rc=$?
check "a PIN that is not digits: exit 2 (got $rc: $out)" test $rc = 2
printf '111111\n' >"$T/pin.wrong"
out=$(ctl pair --name door --pin-file "$T/pin.wrong" 2>&1)
rc=$?
check "wrong PIN (from --pin-file): exit 4 (got $rc: $out)" test $rc = 4
check "... the lock rejected it" sh -c "echo \"\$1\" | grep -q 'rejected the security PIN'" - "$out"
check "nothing stored" test "$(db 'SELECT count(*) FROM locks')" = 0
simctl door SetPairingMode yes
out=$(echo 482913 | ctl pair --name door --pin 2>&1)
rc=$?
check "right PIN (--pin, read from standard input) pairs (exit $rc)" test $rc = 0
check "model Ultra" test "$(lock_prop door Model)" = "Nuki Smart Lock Ultra"
check "stored as Ultra with a 32-bit PIN" test \
	"$(db "SELECT ultra FROM locks"):$("$BUILD/tools/store-secret" get "$T/state" door | cut -d' ' -f2)" = 1:615e0700
check "unlock" ctl unlock door
check "sim unlocked" test "$(simctl door get LockState)" = unlocked
simctl door ManualAction lock
check "manual lock imported from the log (32-bit PIN accepted)" wait_for 15 sh -c \
	"test \"\$(sqlite3 \"$T/state/lockhub.db\" \"SELECT count(*) FROM events WHERE kind='action' AND source='manual'\")\" = 1"
check "the log sync never failed" sh -c "! grep -q 'log-sync failed' \"$T/lockhubd.log\""

finish
