/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * JSON output as `lockhubctl decode` prints it: keys, enumeration names, timestamps and
 * hex per issue 3, on the official frames and on encrypted frames made with example A's
 * shared key; failures (CRC, tag, auth-id, missing key, layout) as error objects.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-json.h"
#include "nuki-vectors.h"

/* Keyturner States (door mode, locked, 2016-03-07T08:15:30, +60 min, 84 %, every optional
 * field) and Lock Action (unlock, nonce = example A's first challenge), encrypted with
 * example A's shared key for auth-id 2; the same hex is used by tests/integration/t-decode.sh. */
#define KTS_ENCRYPTED                                                                                      \
        "101112131415161718191A1B1C1D1E1F20212223242526270200000033003D855155EF71B7DC7D8C298463BE6777E9AB" \
        "29B3BE33F818900AFD023AA679045630A3AC03624E049090851C6B451987735B66"
#define LOCK_ACTION_ENCRYPTED                                                                              \
        "991112131415161718191A1B1C1D1E1F2021222324252627020000003E00432D855260F0DD6CDF88DE5DD5AC14090CC0" \
        "552F4EAA50B89032E3665EF06DD05F84CF02A1EB35D0C46194EF535657A1D01F943540E6CA4BA7D8D659458A"

/* Request Calibration with PIN 1234, same key and auth-id: the PIN is a secret */
#define CALIBRATION_ENCRYPTED                                                                              \
        "404142434445464748494A4B4C4D4E4F5051525354555657020000003A00F577E1E35935F35EA09741A943030E887381" \
        "7EB972C68C5CC5CC3D1F7B2FC873FF15003A3272269FD32FCA2D770D8E49B6109D0E407AB1257091"

static json_object *decode(const char *hex, const NukiJsonOptions *o, int expect)
{
        uint8_t buf[NUKI_FRAME_MAX];
        json_object *j = NULL;
        size_t n = unhex(hex, buf, sizeof(buf));

        assert_int_equal(nuki_json_decode_frame(buf, n, o, &j), expect);
        assert_non_null(j);
        return j;
}

static const char *str(json_object *o, const char *path)
{
        json_object *v = o;
        char buf[128], *save = NULL;

        strncpy(buf, path, sizeof(buf) - 1);
        buf[sizeof(buf) - 1] = 0;
        for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
                if (!json_object_object_get_ex(v, k, &v))
                        return NULL;
        return json_object_get_string(v);
}

static void test_plain_frames(void **state)
{
        json_object *j;

        j = decode(A_STEP1, NULL, 0);
        assert_string_equal(str(j, "command"), "0x0001");
        assert_string_equal(str(j, "name"), "request_data");
        assert_string_equal(str(j, "encrypted"), "false");
        assert_string_equal(str(j, "crc_ok"), "true");
        assert_string_equal(str(j, "fields.requested"), "0x0003");
        assert_null(str(j, "auth_id"));
        json_object_put(j);

        j = decode(A_STEP4_FRAG1 A_STEP4_FRAG2, NULL, 0);
        assert_string_equal(str(j, "name"), "challenge");
        assert_string_equal(str(j, "fields.nonce"),
                            "6cd4163d159050c798553eaa57e278a579affcbc56f09fc57fe879e51c42df17");
        json_object_put(j);

        j = decode(A_STEP10, NULL, 0);
        assert_string_equal(str(j, "fields.status"), "complete");
        json_object_put(j);
        j = decode(FORUM_STATUS_F1, NULL, 0);
        assert_string_equal(str(j, "fields.status"), "0xF1");
        json_object_put(j);

        j = decode(FORUM_ERROR_BAD_CRC, NULL, 0);
        assert_string_equal(str(j, "name"), "error_report");
        assert_string_equal(str(j, "fields.error"), "error_bad_crc");
        assert_string_equal(str(j, "fields.command"), "0x0001");
        json_object_put(j);

        j = decode(A_STEP7, NULL, 0);
        assert_string_equal(str(j, "fields.name"), "Marc (Test)");
        assert_string_equal(str(j, "fields.id_type"), "app");
        json_object_put(j);

        j = decode(E_STEP8, NULL, 0);
        assert_string_equal(str(j, "name"), "authorization_id");
        assert_string_equal(str(j, "fields.auth_id"), "34808");
        assert_string_equal(str(j, "fields.uuid"), "8127d49a5f985c4483884720b3061453");
        json_object_put(j);
}

static void test_encrypted_frames(void **state)
{
        uint8_t key[32];
        uint32_t two = 2, three = 3;
        NukiJsonOptions o = { .shared_key = key, .expected_auth_id = &two };
        json_object *j;

        unhex(A_S, key, 32);
        j = decode(KTS_ENCRYPTED, &o, 0);
        assert_string_equal(str(j, "command"), "0x000C");
        assert_string_equal(str(j, "name"), "keyturner_states");
        assert_string_equal(str(j, "encrypted"), "true");
        assert_string_equal(str(j, "auth_id"), "2");
        assert_string_equal(str(j, "crc_ok"), "true");
        assert_string_equal(str(j, "fields.nuki_state"), "door_mode");
        assert_string_equal(str(j, "fields.lock_state"), "locked");
        assert_string_equal(str(j, "fields.trigger"), "system");
        assert_string_equal(str(j, "fields.current_time"), "2016-03-07T08:15:30");
        assert_string_equal(str(j, "fields.timezone_offset"), "60");
        assert_string_equal(str(j, "fields.battery_critical"), "false");
        assert_string_equal(str(j, "fields.battery_percent"), "84");
        assert_string_equal(str(j, "fields.last_lock_action"), "lock");
        assert_string_equal(str(j, "fields.door_sensor_state"), "door_closed");
        assert_string_equal(str(j, "fields.ble_strength"), "-60");
        json_object_put(j);

        j = decode(LOCK_ACTION_ENCRYPTED, &o, 0);
        assert_string_equal(str(j, "name"), "lock_action");
        assert_string_equal(str(j, "fields.action"), "unlock");
        assert_string_equal(str(j, "fields.app_id"), "0");
        assert_string_equal(str(j, "fields.flags"), "0x00");
        assert_string_equal(str(j, "fields.nonce"),
                            "6cd4163d159050c798553eaa57e278a579affcbc56f09fc57fe879e51c42df17");
        assert_null(str(j, "fields.name_suffix"));
        json_object_put(j);

        /* secrets are redacted unless asked for */
        j = decode(CALIBRATION_ENCRYPTED, &o, 0);
        assert_string_equal(str(j, "name"), "request_calibration");
        assert_string_equal(str(j, "fields.pin"), "redacted");
        json_object_put(j);
        o.show_secrets = true;
        j = decode(CALIBRATION_ENCRYPTED, &o, 0);
        assert_string_equal(str(j, "fields.pin"), "1234");
        json_object_put(j);

        /* wrong auth-id expected */
        o.expected_auth_id = &three;
        j = decode(KTS_ENCRYPTED, &o, -EPROTO);
        assert_string_equal(str(j, "error"), "auth-id mismatch");
        json_object_put(j);
        /* wrong key */
        unhex(D_S, key, 32);
        o.expected_auth_id = NULL;
        j = decode(KTS_ENCRYPTED, &o, -EKEYREJECTED);
        assert_non_null(strstr(str(j, "error"), "tag"));
        assert_string_equal(str(j, "auth_id"), "2");
        json_object_put(j);
        /* no key at all */
        j = decode(KTS_ENCRYPTED, NULL, -ENOKEY);
        assert_string_equal(str(j, "encrypted"), "true");
        json_object_put(j);
}

static void test_errors(void **state)
{
        json_object *j;

        j = decode("0E00009DD8", NULL, -EBADMSG);
        assert_string_equal(str(j, "error"), "CRC mismatch");
        assert_string_equal(str(j, "crc_ok"), "false");
        assert_string_equal(str(j, "name"), "status");
        json_object_put(j);
        j = decode("0E", NULL, -ENODATA);
        json_object_put(j);
        /* valid CRC, payload that does not fit the command */
        {
                uint8_t buf[8] = { 0x0E, 0x00, 0x00, 0x00 };
                json_object *k = NULL;
                nuki_put_u16(buf + 4, nuki_crc16(buf, 4));
                assert_int_equal(nuki_json_decode_frame(buf, 6, NULL, &k), -EMSGSIZE);
                assert_non_null(strstr(str(k, "error"), "layout"));
                assert_string_equal(str(k, "crc_ok"), "true");
                json_object_put(k);
        }
        /* unknown command: payload as hex, not an error */
        {
                uint8_t buf[8] = { 0x99, 0x09, 0xAB };
                json_object *k = NULL;
                nuki_put_u16(buf + 3, nuki_crc16(buf, 3));
                assert_int_equal(nuki_json_decode_frame(buf, 5, NULL, &k), 0);
                assert_string_equal(str(k, "command"), "0x0999");
                assert_string_equal(str(k, "fields.payload"), "ab");
                json_object_put(k);
        }
}

static void test_complete(void **state)
{
        uint8_t buf[NUKI_FRAME_MAX];
        size_t n;

        n = unhex(A_STEP2_FRAG1, buf, sizeof(buf));
        assert_false(nuki_json_frame_complete(buf, n));
        n = unhex(A_STEP2_FRAG1 A_STEP2_FRAG2, buf, sizeof(buf));
        assert_true(nuki_json_frame_complete(buf, n));
        n = unhex(KTS_ENCRYPTED, buf, sizeof(buf));
        assert_false(nuki_json_frame_complete(buf, 20));
        assert_false(nuki_json_frame_complete(buf, 40));
        assert_true(nuki_json_frame_complete(buf, n));
}

/* Every command, every field: JSON builds without a crash and has a key per wire field. */
static void test_all_commands(void **state)
{
        const NukiCommand *t;
        size_t n = nuki_command_table(&t);

        for (size_t i = 0; i < n; i++) {
                NukiMsg m;
                json_object *f;

                nuki_msg_init(&m, t[i].id, t[i].variant);
                memset((uint8_t *) &m + offsetof(NukiMsg, request_data), 0xFF,
                       sizeof(m) - offsetof(NukiMsg, request_data));
                /* keep booleans and blob lengths valid */
                for (size_t k = 0; k < t[i].n_fields; k++) {
                        const NukiField *fd = &t[i].fields[k];
                        if (fd->type == NUKI_FIELD_BOOL)
                                memset((uint8_t *) &m + fd->offset, 1, sizeof(bool));
                        if (fd->type == NUKI_FIELD_BLOB)
                                ((NukiBlob *) ((uint8_t *) &m + fd->offset))->len = 4;
                        if (fd->type == NUKI_FIELD_NAME)
                                ((char *) &m + fd->offset)[fd->size] = 0;
                }
                f = nuki_json_fields_full(&m, true);
                assert_non_null(f);
                for (size_t k = 0; k < t[i].n_fields; k++) {
                        const NukiField *fd = &t[i].fields[k];
                        if (fd->format == NUKI_FORMAT_BATTERY)
                                assert_true(json_object_object_get_ex(f, "battery_critical", NULL));
                        else if (fd->type != NUKI_FIELD_F32 &&
                                 !(t[i].id == 0x0001 && fd->type == NUKI_FIELD_BLOB))
                                assert_true(json_object_object_get_ex(
                                                f,
                                                streq(fd->name, "command") && t[i].id == 0x0001 ? "requested"
                                                                                                : fd->name,
                                                NULL));
                }
                json_object_put(f);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_frames), cmocka_unit_test(test_encrypted_frames),
                cmocka_unit_test(test_errors),       cmocka_unit_test(test_complete),
                cmocka_unit_test(test_all_commands),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
