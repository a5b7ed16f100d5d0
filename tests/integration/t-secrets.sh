#!/bin/sh
# Secrets at rest: lockhubd creates its key file 0600 and refuses a loose or wrong one; a
# credential (CREDENTIALS_DIRECTORY) is used instead when present; a lock's shared key, PIN
# and code digits are not in the database files, also after plaintext rows from before
# sealing; `lockhubctl rekey` rotates the key (file and credential cases) and the secrets
# still read back; a database with another key is refused (65); a corrupt database is
# refused (65) with the recovery steps, and the documented salvage keeps secrets usable,
# also when it loses the meta table (the key id).
. "$LOCKHUB_TOP/tests/integration/lib.sh"

D="$BUILD/lockhubd"
CTL="$BUILD/lockhubctl"
TOOL="$BUILD/tools/store-secret"
S="$T/state"
KEY=5b1ec0de739a1142a708fe613cd92784e5509f16bb2d48c37a05ee91366fd40b
PIN=9c4fa237
CODE=839271
KEY2=00112233445566778899aabbccddeeff0123456789abcdef0f1e2d3c4b5a6978
mkdir -p "$S"
printf '[Hub]\nLogLevel=info\n' >"$T/lockhub.conf"

# in_files HEX FILE...: the bytes occur in one of the files
in_files() {
	python3 - "$@" <<'PY'
import sys, os
needle = bytes.fromhex(sys.argv[1])
for p in sys.argv[2:]:
    if os.path.exists(p) and needle in open(p, "rb").read():
        sys.exit(0)
sys.exit(1)
PY
}
not_in_files() { ! in_files "$@"; }
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
no_secret_in() {
	! in_files "$KEY" "$1" "$1-wal" && ! in_files "$PIN" "$1" "$1-wal" &&
		! in_files "$(hex "$CODE")" "$1" "$1-wal"
}
meta() { sqlite3 "$1" "SELECT value FROM meta WHERE key = '$2'"; }

# start_d STATE_DIR LOG: lockhubd in the background; sets $pid
start_d() {
	: >"$T/notify.log"
	"$D" --config "$T/lockhub.conf" --state-dir "$1" 2>"$2" &
	pid=$!; track $pid
	wait_for 10 grep -q '^READY=1' "$T/notify.log"
}
stop_d() { kill -TERM $pid; wait_exit $pid 10; }
# run_d STATE_DIR LOG: lockhubd expected to exit at start; sets $rc
run_d() { "$D" --config "$T/lockhub.conf" --state-dir "$1" 2>"$2"; rc=$?; }

start_dbus
start_notify_listener

# ---- the key file ----
check "lockhubd starts" start_d "$S" "$T/d1.err"
check "key file created" test -f "$S/lockhub.key"
check "key file mode 0600" test "$(stat -c %a "$S/lockhub.key")" = 600
check "key file is 32 bytes" test "$(stat -c %s "$S/lockhub.key")" = 32
check "key id recorded in the database" test -n "$(meta "$S/lockhub.db" key-id)"
check "key version 1" test "$(meta "$S/lockhub.db" key-version)" = 1
stop_d
sum=$(sha256sum <"$S/lockhub.key")

# ---- a lock with secrets, written through the store with the key ----
check "lock with secrets added" sh -c "'$TOOL' add '$S' front 54:D2:72:00:00:01 $KEY $PIN $CODE >/dev/null"
check "shared key, PIN and code not in the database files" no_secret_in "$S/lockhub.db"
check "they read back with the key" test "$("$TOOL" get "$S" front)" = "$KEY $PIN $CODE"

# ---- a row from before sealing (plaintext) is sealed at the next start ----
check "plaintext row written without a key" sh -c \
	"'$TOOL' add-plain '$S' back 54:D2:72:00:00:02 $KEY2 01020304 112233 >/dev/null"
check "(the test can see a plaintext row)" in_files "$KEY2" "$S/lockhub.db" "$S/lockhub.db-wal"
check "lockhubd starts with both" start_d "$S" "$T/d2.err"
check "start-up sealed the plaintext row" grep -q 'sealed the secrets of 2 row' "$T/d2.err"
check "its key is no longer in the database files" not_in_files "$KEY2" "$S/lockhub.db" "$S/lockhub.db-wal"
check "key file unchanged by a start" test "$(sha256sum <"$S/lockhub.key")" = "$sum"

# ---- rotation with a key file ----
"$CTL" rekey >"$T/rekey.out" 2>&1
rc=$?
check "lockhubctl rekey exits 0 (got $rc)" test $rc = 0
check "rekey names the new key file" grep -q "lockhub.key" "$T/rekey.out"
check "key file replaced" test "$(sha256sum <"$S/lockhub.key")" != "$sum"
check "new key file mode 0600" test "$(stat -c %a "$S/lockhub.key")" = 600
check "no lockhub.key.new left" test ! -e "$S/lockhub.key.new"
check "key version 2" test "$(meta "$S/lockhub.db" key-version)" = 2
check "rotation recorded as an event" sh -c \
	"sqlite3 '$S/lockhub.db' \"SELECT detail FROM events WHERE kind = 'hub'\" | grep -q '\"rekey\"'"
check "still no secret in the database files" no_secret_in "$S/lockhub.db"
stop_d
check "secrets read back with the new key" test "$("$TOOL" get "$S" front)" = "$KEY $PIN $CODE"
check "the sealed plaintext row too" test "$("$TOOL" get "$S" back)" = "$KEY2 01020304 112233"

# ---- refusals ----
cp "$S/lockhub.key" "$T/good.key"
head -c 32 /dev/urandom >"$S/lockhub.key"
run_d "$S" "$T/wrong.err"
check "another key: exit 65 (got $rc)" test $rc = 65
check "another key: message names the key ids" grep -q 'were sealed with key id .* has id' "$T/wrong.err"
cp "$T/good.key" "$S/lockhub.key"
chmod 0644 "$S/lockhub.key"
run_d "$S" "$T/loose.err"
check "key file 0644: exit 6 (got $rc)" test $rc = 6
check "key file 0644: says why" grep -q 'has mode 0644' "$T/loose.err"
chmod 0600 "$S/lockhub.key"
head -c 16 "$T/good.key" >"$S/lockhub.key"
run_d "$S" "$T/short.err"
check "key file of 16 bytes: exit 6 (got $rc)" test $rc = 6
check "key file of 16 bytes: says why" grep -q 'has 16 bytes' "$T/short.err"
rm -f "$S/lockhub.key"
run_d "$S" "$T/missing.err"
check "key file missing for a sealed database: exit 6 (got $rc)" test $rc = 6
check "missing key: no new key made up" test ! -e "$S/lockhub.key"
cp "$T/good.key" "$S/lockhub.key"

# ---- the credential ----
mkdir -p "$T/creds"
cp "$T/good.key" "$T/creds/lockhub-key"
chmod 0400 "$T/creds/lockhub-key"
CREDENTIALS_DIRECTORY="$T/creds"
export CREDENTIALS_DIRECTORY
check "lockhubd starts with the credential" start_d "$S" "$T/c1.err"
check "the credential is used" grep -q 'from the credential' "$T/c1.err"
check "the key file is reported as unused" grep -q 'lockhub.key is not used' "$T/c1.err"
"$CTL" rekey >"$T/crekey0.out" 2>&1
rc=$?
check "rekey without a new key refused with a credential: exit 2 (got $rc)" test $rc = 2
check "and says how" grep -q -- '--new-key' "$T/crekey0.out"
(umask 077; "$CTL" rekey --new-key "$T/new.key" >"$T/crekey.out" 2>&1)
rc=$?
check "rekey --new-key exits 0 (got $rc)" test $rc = 0
check "new key file created 0600" test "$(stat -c %a "$T/new.key")" = 600
check "prints the systemd-creds command" grep -q 'systemd-creds encrypt --name=lockhub-key' "$T/crekey.out"
check "key file in the state directory untouched" test "$(sha256sum <"$S/lockhub.key")" = "$(sha256sum <"$T/good.key")"
stop_d
run_d "$S" "$T/cold.err"
check "old credential after a rotation: exit 65 (got $rc)" test $rc = 65
check "and it says to install the new credential" grep -q 'install the new key as the credential' "$T/cold.err"
chmod 0600 "$T/creds/lockhub-key"
cp "$T/new.key" "$T/creds/lockhub-key"
check "new credential accepted" start_d "$S" "$T/c2.err"
stop_d
check "secrets read back with the new credential" test "$("$TOOL" get "$S" front)" = "$KEY $PIN $CODE"

# a fresh state directory with a credential: no key file is created
mkdir -p "$T/fresh"
check "fresh start with a credential" start_d "$T/fresh" "$T/c3.err"
stop_d
check "no key file when the credential is there" test ! -e "$T/fresh/lockhub.key"
unset CREDENTIALS_DIRECTORY
cp "$T/new.key" "$S/lockhub.key"

# ---- damaged database ----
# Many events, then one page of an index destroyed: refused with the recovery steps; the
# steps of lockhubd(8) ("Recovering from a damaged database") bring back a database whose
# secrets still open with the same key (row ids survive the salvage).
C="$T/corrupt"
mkdir -p "$C"
cp -p "$S/lockhub.db" "$S/lockhub.key" "$C/"
sqlite3 "$C/lockhub.db" "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000)
	INSERT INTO events (ts_usec, lock_id, kind, source, detail)
	SELECT i, (SELECT id FROM locks WHERE name = 'front'), 'state', 'lock', '{\"state\":\"locked\"}' FROM c;
	PRAGMA wal_checkpoint(TRUNCATE);" >/dev/null
pagesize=$(sqlite3 "$C/lockhub.db" 'PRAGMA page_size')
page=$(sqlite3 "$C/lockhub.db" "SELECT pageno FROM dbstat WHERE name = 'events_ts' AND pagetype = 'leaf'
	LIMIT 1 OFFSET 2" 2>/dev/null)
[ -n "$page" ] || page=$(($(stat -c %s "$C/lockhub.db") / pagesize))
python3 - "$C/lockhub.db" "$pagesize" "$page" <<'PY'
import sys
p, size, page = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(p, "r+b") as f:
    f.seek((page - 1) * size)
    f.write(b"\xa5" * size)
PY
csum=$(sha256sum <"$C/lockhub.db")
run_d "$C" "$T/corrupt.err"
check "corrupt database: exit 65 (got $rc)" test $rc = 65
check "corrupt database: says it is damaged" grep -q 'is damaged' "$T/corrupt.err"
check "corrupt database: names the recovery section" grep -q 'Recovering from a damaged database' "$T/corrupt.err"
check "corrupt database: gives the salvage command" grep -q '.recover' "$T/corrupt.err"
check "corrupt database left as it was" test "$(sha256sum <"$C/lockhub.db")" = "$csum"

# salvage DIR: the steps of lockhubd(8), .recover where it works, else .dump
salvage() {
	mkdir "$1/damaged"
	mv "$1"/lockhub.db* "$1/damaged/"
	if sqlite3 "$1/damaged/lockhub.db" .recover >/dev/null 2>&1; then
		sqlite3 "$1/damaged/lockhub.db" .recover | sqlite3 "$1/lockhub.db"
	else
		{
			sqlite3 "$1/damaged/lockhub.db" .dump | sed '$s/^ROLLBACK; -- due to errors$/COMMIT;/'
			echo "PRAGMA user_version = $(sqlite3 "$1/damaged/lockhub.db" 'PRAGMA user_version');"
		} | sqlite3 "$1/lockhub.db"
	fi
	chmod 0600 "$1/lockhub.db"
}
salvage "$C"
check "salvaged database accepted" start_d "$C" "$T/salvaged.err"
stop_d
check "salvaged database: secrets read back with the same key" \
	test "$("$TOOL" get "$C" front)" = "$KEY $PIN $CODE"
check "salvaged database: events kept" test "$(sqlite3 "$C/lockhub.db" 'SELECT count(*) FROM events')" -ge 3000

# Page 2 is the meta table: a salvage loses the key id, and the key that opens every
# sealed row is recorded again.
M="$T/meta"
mkdir -p "$M"
cp -p "$S/lockhub.db" "$S/lockhub.key" "$M/"
python3 - "$M/lockhub.db" "$pagesize" <<'PY'
import sys
p, size = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(size)
    f.write(b"\xa5" * size)
PY
run_d "$M" "$T/meta.err"
check "damaged meta page: exit 65 (got $rc)" test $rc = 65
salvage "$M"
check "salvage without the key id accepted" start_d "$M" "$T/meta2.err"
stop_d
check "key id recorded again" grep -q 'records no key id, but its .* open with key id' "$T/meta2.err"
check "meta key id back" test -n "$(meta "$M/lockhub.db" key-id)"
check "secrets read back" test "$("$TOOL" get "$M" front)" = "$KEY $PIN $CODE"

finish
