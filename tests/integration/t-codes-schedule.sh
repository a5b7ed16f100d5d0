#!/bin/sh
# A time-limited code and a weekday window reach the simulated lock with the right
# fields (the lock's own form: UTC date range, Nuki weekday bits 6 Monday .. 0 Sunday,
# the time-of-day window) and are read back equal (state synced); a change of the
# window is written to the lock too.
. "$LOCKHUB_TOP/tests/integration/lib.sh"
. "$LOCKHUB_TOP/tests/integration/sim-lib.sh"
command -v sqlite3 >/dev/null || skip "sqlite3 not installed"

start_dbus
start_sim --scale 20
write_conf
start_lockhubd
check "front paired" pair_lock front front 1234
check "user added" ctl user add Carol
check "weekday window code" ctl code add Carol Cleaner --lock front --digits 567891 \
	--weekdays mon-fri --time 07:30-12:00 --from "@1767225600" --until "@1798761600"
check "time-limited code" ctl code add Carol Guest --lock front --digits 678912 \
	--from "@1767225600" --until "@1767830400"

synced() { test "$(db "SELECT count(*) FROM credential_locks WHERE state = 'synced'")" = "$1"; }
check "read back equal: both synced" wait_for 60 synced 2
db "SELECT state, reason FROM credential_locks"

# what the simulated lock stores for a code name, as "field=value ..."
sim_code() { "$SIM" ctl front Dump | python3 -c '
import json, sys
c = [c for c in json.load(sys.stdin)["keypad_codes"] if c["name"] == sys.argv[1]]
if not c:
    print("missing")
else:
    c = c[0]
    print(" ".join("%s=%s" % (k, c[k]) for k in ("code", "time_limited", "allowed_from", "allowed_until",
                                                 "weekdays", "from_time", "until_time")))' "$1"; }
out=$(sim_code Cleaner)
echo "Cleaner on the lock: $out"
check "the window code on the lock: Mon-Fri (0x7c), 07:30-12:00, 2026 ($out)" test "$out" = \
	"code=567891 time_limited=True allowed_from=2026-01-01T00:00:00 allowed_until=2027-01-01T00:00:00 weekdays=124 from_time=07:30 until_time=12:00"
out=$(sim_code Guest)
echo "Guest on the lock: $out"
check "the time-limited code on the lock: one week, every day (0x7f), no window ($out)" test "$out" = \
	"code=678912 time_limited=True allowed_from=2026-01-01T00:00:00 allowed_until=2026-01-08T00:00:00 weekdays=127 from_time=00:00 until_time=00:00"

# what the lock reported at the read-back (the hub's own form, never the digits)
check "the lock reports Monday to Friday, 07:30-12:00" sh -c \
	"sqlite3 $T/state/lockhub.db \"SELECT reported FROM credential_locks\" | grep -q '\"weekdays\":31,\"time_from_min\":450,\"time_until_min\":720'"
check "no digits in the reported state" test "$(db "SELECT count(*) FROM credential_locks WHERE reported LIKE '%567891%'")" = 0

# a new window is written to the lock
id=$(db "SELECT id FROM credentials WHERE name = 'Cleaner'")
check "the cleaner comes at the weekend now" ctl code update "$id" --weekdays sat,sun --time 09:00-10:30
check "synced again" wait_for 60 sh -c "test \"\$(sqlite3 $T/state/lockhub.db \"SELECT state FROM credential_locks WHERE credential_id = $id\")\" = synced"
out=$(sim_code Cleaner)
check "the lock holds Sat-Sun (0x03), 09:00-10:30 ($out)" sh -c "echo \"\$1\" | grep -q 'weekdays=3 from_time=09:00 until_time=10:30'" - "$out"
finish
