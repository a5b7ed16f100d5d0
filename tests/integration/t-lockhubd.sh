#!/bin/sh
# lockhubd skeleton: READY=1 on a NOTIFY_SOCKET, database created 0600, SIGHUP reload
# (an invalid new file keeps the old configuration), clean exit on SIGTERM, exit 6
# with file:line for an invalid configuration, exit 2 for a bad option.
. "$LOCKHUB_TOP/tests/integration/lib.sh"

D="$BUILD/lockhubd"
mkdir -p "$T/state"
cat >"$T/lockhub.conf" <<CONF
[Hub]
LogLevel=info
CONF

start_dbus
start_notify_listener
"$D" --config "$T/lockhub.conf" --state-dir "$T/state" 2>"$T/d.err" &
pid=$!; track $pid
check "READY=1 sent to NOTIFY_SOCKET" wait_for 10 grep -q '^READY=1' "$T/notify.log"
check "STATUS= summary sent" grep -q 'STATUS=Running' "$T/notify.log"
check "database created" test -f "$T/state/lockhub.db"
check "database mode is 0600" test "$(stat -c %a "$T/state/lockhub.db")" = 600
check "schema version set" test "$(sqlite3 "$T/state/lockhub.db" 'PRAGMA user_version')" -ge 1
check "org.lockhub owned on the bus" wait_for 10 sh -c \
	"busctl --address=\"$DBUS_SYSTEM_BUS_ADDRESS\" get-property org.lockhub /org/lockhub org.lockhub.Manager1 Version | grep -q '\"'"

# Reload with a broken file: old configuration kept, daemon keeps running.
printf '[Hub]\nLogLevel=loud\n' >"$T/lockhub.conf"
kill -HUP $pid
check "RELOADING=1 on SIGHUP" wait_for 10 grep -q '^RELOADING=1' "$T/notify.log"
check "invalid reload names file:line" wait_for 10 grep -q 'lockhub.conf:2' "$T/d.err"
check "invalid reload keeps the old configuration" grep -q 'keeping the previous configuration' "$T/d.err"
check "still running after an invalid reload" kill -0 $pid
check "READY=1 again after the reload" test "$(grep -c '^READY=1' "$T/notify.log")" -ge 2

printf '[Hub]\nLogLevel=debug\n' >"$T/lockhub.conf"
kill -HUP $pid
check "valid reload applied" wait_for 10 grep -q 'reloaded' "$T/d.err"

kill -TERM $pid
wait_exit $pid 10
check "exit 0 on SIGTERM (got $exit_code)" test "$exit_code" = 0
check "STOPPING=1 sent" grep -q '^STOPPING=1' "$T/notify.log"
check "errors logged with <N> prefixes" grep -q '^<3>' "$T/d.err"

# Invalid configuration at start: exit 6, message with file:line.
printf '[Hub]\nLogLevel=info\n[MQTT]\nPort=70000\n' >"$T/bad.conf"
"$D" --config "$T/bad.conf" --state-dir "$T/state" 2>"$T/bad.err"
rc=$?
check "invalid configuration exits 6 (got $rc)" test $rc = 6
check "invalid configuration names bad.conf:4" grep -q 'bad.conf:4' "$T/bad.err"

"$D" --bogus 2>"$T/usage.err"
rc=$?
check "unknown option exits 2 (got $rc)" test $rc = 2
check "unknown option explained" grep -q "Unknown option '--bogus'" "$T/usage.err"

"$D" --config "$T/missing.conf" --state-dir "$T/state" 2>"$T/missing.err"
rc=$?
check "missing configuration file exits 6 (got $rc)" test $rc = 6

# A database from a newer lockhubd is refused with exit 65 and left untouched.
mkdir -p "$T/newer"
sqlite3 "$T/newer/lockhub.db" 'PRAGMA user_version=9999; CREATE TABLE x(a);'
chmod 600 "$T/newer/lockhub.db"
sum=$(sha256sum <"$T/newer/lockhub.db")
printf '[Hub]\n' >"$T/ok.conf"
"$D" --config "$T/ok.conf" --state-dir "$T/newer" 2>"$T/newer.err"
rc=$?
check "newer database exits 65 (got $rc)" test $rc = 65
check "newer database left byte-identical" test "$(sha256sum <"$T/newer/lockhub.db")" = "$sum"

finish
