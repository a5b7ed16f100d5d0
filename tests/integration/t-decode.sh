#!/bin/sh
# lockhubctl decode, end to end, on the official Nuki examples (example A, Smart Lock API
# V2.1) and on messages encrypted with that example's shared key: a public key given as
# its two published 20-byte fragments, encrypted Keyturner States and Lock Action with
# --shared-key/--auth-id, and the failures (bad CRC, wrong key, wrong auth-id, bad hex).
. "$LOCKHUB_TOP/tests/integration/lib.sh"

CTL=$BUILD/lockhubctl
[ -x "$CTL" ] || skip "$CTL not built"

S=217FCB0F18CAF284E9BDEA0B94B83B8D10867ED706BFDEDBD2381F4CB3B8F730
# Keyturner States and Lock Action for auth-id 2, encrypted with $S (same hex as
# tests/unit/test-nuki-json.c)
KTS=101112131415161718191A1B1C1D1E1F20212223242526270200000033003D855155EF71B7DC7D8C298463BE6777E9AB29B3BE33F818900AFD023AA679045630A3AC03624E049090851C6B451987735B66
LOCK_ACTION=991112131415161718191A1B1C1D1E1F2021222324252627020000003E00432D855260F0DD6CDF88DE5DD5AC14090CC0552F4EAA50B89032E3665EF06DD05F84CF02A1EB35D0C46194EF535657A1D01F943540E6CA4BA7D8D659458A

# Request Calibration with security PIN 1234 (a secret: redacted unless asked for)
CALIBRATION=404142434445464748494A4B4C4D4E4F5051525354555657020000003A00F577E1E35935F35EA09741A943030E8873817EB972C68C5CC5CC3D1F7B2FC873FF15003A3272269FD32FCA2D770D8E49B6109D0E407AB1257091

# has FILE STRING: the output contains STRING
has() { grep -qF -- "$2" "$1"; }
lines() { [ "$(wc -l <"$1")" -eq "$2" ]; }

"$CTL" decode 0100030027A7 03002FE57DA347CD62431528DAAC5FBB290730FF F684AFC4CFC2ED90995F58CB3B749DB9 \
	"0e 00 00 9d d7" 0E:00:F1:A3:28 1200FD0100E7C3 >"$T/plain" 2>"$T/plain.err"
rc=$?
cat "$T/plain"
check "plain frames: exit 0" test $rc -eq 0
check "plain frames: one line per message (fragments joined)" lines "$T/plain" 5
check "request data names the requested command" \
	has "$T/plain" '{"command":"0x0001","name":"request_data","encrypted":false,"crc_ok":true,"fields":{"requested":"0x0003"}}'
check "fragmented public key reassembled" \
	has "$T/plain" '"name":"public_key","encrypted":false,"crc_ok":true,"fields":{"key":"2fe57da347cd62431528daac5fbb290730fff684afc4cfc2ed90995f58cb3b74"}'
check "status complete (spaces in hex)" has "$T/plain" '"fields":{"status":"complete"}'
check "status 0xF1 as hex (colons in hex)" has "$T/plain" '"fields":{"status":"0xF1"}'
check "error report names the error and the command" \
	has "$T/plain" '"fields":{"error":"error_bad_crc","command":"0x0001"}'

# the encrypted Keyturner States, whole and as 20-byte fragments
frags=$(echo "$KTS" | sed 's/\(.\{40\}\)/\1 /g')
"$CTL" decode --shared-key "$S" --auth-id 2 "$KTS" $frags "$LOCK_ACTION" >"$T/enc" 2>"$T/enc.err"
rc=$?
cat "$T/enc"
check "encrypted: exit 0" test $rc -eq 0
check "encrypted: three messages" lines "$T/enc" 3
check "keyturner states header" \
	has "$T/enc" '{"command":"0x000C","name":"keyturner_states","encrypted":true,"auth_id":2,"crc_ok":true,'
check "keyturner states fields" \
	has "$T/enc" '"nuki_state":"door_mode","lock_state":"locked","trigger":"system","current_time":"2016-03-07T08:15:30","timezone_offset":60,"battery_critical":false'
check "keyturner states optional fields" has "$T/enc" '"last_lock_action":"lock"'
check "lock action fields" \
	has "$T/enc" '"fields":{"action":"unlock","app_id":0,"flags":"0x00","nonce":"6cd4163d159050c798553eaa57e278a579affcbc56f09fc57fe879e51c42df17"}'

"$CTL" decode --shared-key "$S" "$CALIBRATION" >"$T/pin" 2>&1
check "PIN redacted by default" has "$T/pin" '"name":"request_calibration"'
check "PIN redacted by default (value)" has "$T/pin" '"pin":"redacted"'
"$CTL" decode --shared-key "$S" --show-secrets "$CALIBRATION" >"$T/pin2" 2>&1
check "PIN shown with --show-secrets" has "$T/pin2" '"pin":1234'

# failures: a corrupted CRC, a flipped ciphertext bit, a wrong auth-id, no key
"$CTL" decode 0E00009DD8 >"$T/bad" 2>&1
rc=$?
cat "$T/bad"
check "bad CRC: exit 1" test $rc -eq 1
check "bad CRC: error object" has "$T/bad" '{"error":"CRC mismatch","command":"0x000E","name":"status","encrypted":false,"crc_ok":false'

flipped=$(echo "$KTS" | sed 's/\(.\{80\}\)\(.\)/\1F/')
[ "$flipped" = "$KTS" ] && flipped=$(echo "$KTS" | sed 's/\(.\{80\}\)\(.\)/\10/')
"$CTL" decode --shared-key "$S" 0E00009DD7 "$flipped" 0E00009DD7 >"$T/tag" 2>&1
rc=$?
cat "$T/tag"
check "flipped bit: exit 1" test $rc -eq 1
check "flipped bit: tag error, the other messages still decoded" has "$T/tag" 'authentication tag mismatch'
check "flipped bit: three lines" lines "$T/tag" 3

"$CTL" decode --shared-key "$S" --auth-id 3 "$KTS" >"$T/aid" 2>&1
check "wrong auth-id: exit 1" test $? -eq 1
check "wrong auth-id: error" has "$T/aid" '"error":"auth-id mismatch"'
"$CTL" decode "$KTS" >"$T/nokey" 2>&1
check "no key: exit 1" test $? -eq 1
check "no key: error" has "$T/nokey" 'no shared key'

"$CTL" decode zz >/dev/null 2>&1
check "bad hex: usage error (2)" test $? -eq 2
"$CTL" decode --shared-key 0011 0E00009DD7 >/dev/null 2>&1
check "short key: usage error (2)" test $? -eq 2
"$CTL" decode >/dev/null 2>&1
check "no arguments: usage error (2)" test $? -eq 2

finish
