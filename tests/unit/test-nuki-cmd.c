/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Command codecs: the table's invariants, a round trip of every command in both PIN sizes
 * and with every number of optional fields, boundary lengths, the pairing messages of the
 * official examples decoded field by field, and every enumeration value.
 */

#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-cmd.h"
#include "nuki-vectors.h"

static bool is_snake(const char *s)
{
        if (!s || !*s || !islower((unsigned char) s[0]))
                return false;
        for (; *s; s++)
                if (!islower((unsigned char) *s) && !isdigit((unsigned char) *s) && *s != '_')
                        return false;
        return true;
}

static size_t n_optional_fields(const NukiCommand *c)
{
        size_t k = 0;
        for (size_t i = 0; i < c->n_fields; i++)
                k += c->fields[i].section == NUKI_SECTION_OPTIONAL;
        return k;
}

static bool has_pin(const NukiCommand *c)
{
        for (size_t i = 0; i < c->n_fields; i++)
                if (c->fields[i].type == NUKI_FIELD_PIN)
                        return true;
        return false;
}

static void test_table_invariants(void **state)
{
        const NukiCommand *t;
        size_t n = nuki_command_table(&t);

        assert_true(n >= 55);
        for (size_t i = 0; i < n; i++) {
                const NukiCommand *c = &t[i];
                NukiFieldSection last = NUKI_SECTION_HEAD;

                assert_true(is_snake(c->name));
                assert_ptr_equal(nuki_command_find(c->id, c->variant), c);
                assert_true(c->flags & (NUKI_CMD_FLAG_FROM_CLIENT | NUKI_CMD_FLAG_FROM_LOCK));
                /* a PIN implies a challenge (fact sheet 7) */
                if (c->flags & NUKI_CMD_FLAG_PIN)
                        assert_true(c->flags & NUKI_CMD_FLAG_CHALLENGE);
                assert_int_equal(has_pin(c),
                                 !!(c->flags & NUKI_CMD_FLAG_PIN) || c->id == NUKI_CMD_SET_SECURITY_PIN);
                for (size_t j = 0; j < c->n_fields; j++) {
                        const NukiField *f = &c->fields[j];

                        assert_true(is_snake(f->name));
                        assert_true(f->section >= last);
                        last = f->section;
                        if (f->type == NUKI_FIELD_BLOB)
                                assert_int_equal(j, c->n_fields - 1);
                        if (f->format == NUKI_FORMAT_ENUM)
                                assert_true(f->enum_kind != NUKI_ENUM_NONE);
                        for (size_t k = j + 1; k < c->n_fields; k++)
                                assert_string_not_equal(f->name, c->fields[k].name);
                        /* group members are contiguous */
                        if (f->group && j > 0 && c->fields[j - 1].group != f->group)
                                for (size_t k = 0; k + 1 < j; k++)
                                        assert_int_not_equal(c->fields[k].group, f->group);
                }
                if (c->flags & NUKI_CMD_FLAG_CHALLENGE)
                        assert_true(c->n_fields > 0);
        }
        /* the list: up to 0x0048, plus 0x004C and 0x0100 */
        static const uint16_t required[] = {
                0x0001, 0x0003, 0x0004, 0x0005, 0x0006, 0x0007, 0x0008, 0x0009, 0x000A, 0x000B, 0x000C,
                0x000D, 0x000E, 0x000F, 0x0010, 0x0011, 0x0012, 0x0013, 0x0014, 0x0015, 0x0019, 0x001A,
                0x001D, 0x001E, 0x001F, 0x0020, 0x0021, 0x0025, 0x0027, 0x0031, 0x0032, 0x0033, 0x0034,
                0x0035, 0x0036, 0x0037, 0x0039, 0x003A, 0x003B, 0x003C, 0x003D, 0x003E, 0x003F, 0x0041,
                0x0042, 0x0043, 0x0044, 0x0045, 0x0046, 0x0047, 0x0048, 0x004C, 0x0100,
        };
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                assert_non_null(nuki_command_name(required[i]));
        assert_string_equal(nuki_command_name(0x000C), "keyturner_states");
        assert_string_equal(nuki_command_name(0x000D), "lock_action");
        assert_string_equal(nuki_command_name(0x001D), "request_reboot");
        assert_string_equal(nuki_command_name(0x0025), "update_authorization_entry");
        assert_string_equal(nuki_command_name(0x0042), "keypad_code_id");
        assert_null(nuki_command_name(0x0002));
}

/* Deterministic pseudo-random content for every field. */
static uint32_t rng(uint32_t *s)
{
        *s = *s * 1103515245U + 12345U;
        return *s >> 8;
}

static void fill(NukiMsg *m, const NukiCommand *c, uint32_t seed, unsigned pin_size)
{
        nuki_msg_init(m, c->id, c->variant);
        for (size_t i = 0; i < c->n_fields; i++) {
                const NukiField *f = &c->fields[i];
                uint8_t *v = (uint8_t *) m + f->offset;

                switch (f->type) {
                case NUKI_FIELD_BOOL: {
                        bool b = rng(&seed) & 1;
                        memcpy(v, &b, sizeof(b));
                        break;
                }
                case NUKI_FIELD_NAME: {
                        size_t l = rng(&seed) % (f->size + 1U);
                        for (size_t k = 0; k < l; k++)
                                v[k] = (uint8_t) ('a' + rng(&seed) % 26);
                        break;
                }
                case NUKI_FIELD_PIN: {
                        uint32_t p = pin_size == 2 ? rng(&seed) % 10000U : rng(&seed) % 1000000U;
                        memcpy(v, &p, 4);
                        break;
                }
                case NUKI_FIELD_BLOB: {
                        NukiBlob *b = (NukiBlob *) v;
                        b->len = rng(&seed) % 12U;
                        for (size_t k = 0; k < b->len; k++)
                                b->data[k] = (uint8_t) rng(&seed);
                        break;
                }
                case NUKI_FIELD_F32: {
                        float x = (float) (rng(&seed) % 100000U) / 1000.0f;
                        memcpy(v, &x, 4);
                        break;
                }
                case NUKI_FIELD_U8:
                case NUKI_FIELD_S8:
                case NUKI_FIELD_U16:
                case NUKI_FIELD_S16:
                case NUKI_FIELD_U32:
                case NUKI_FIELD_TIME:
                case NUKI_FIELD_TIME_OF_DAY:
                case NUKI_FIELD_BYTES: {
                        size_t sz = f->type == NUKI_FIELD_U8 || f->type == NUKI_FIELD_S8     ? 1
                                    : f->type == NUKI_FIELD_U16 || f->type == NUKI_FIELD_S16 ? 2
                                    : f->type == NUKI_FIELD_U32                              ? 4
                                    : f->type == NUKI_FIELD_TIME        ? sizeof(NukiTime)
                                    : f->type == NUKI_FIELD_TIME_OF_DAY ? sizeof(NukiTimeOfDay)
                                                                        : f->size;
                        for (size_t k = 0; k < sz; k++)
                                v[k] = (uint8_t) rng(&seed);
                        break;
                }
                }
        }
}

/* For Set Advanced Config a 4-byte PIN cannot be told from two more 1-byte fields by the
 * length alone (documented in nuki-cmd.h): auto-detection is only checked elsewhere. */
static bool pin_ambiguous(const NukiCommand *c)
{
        return c->id == NUKI_CMD_SET_ADVANCED_CONFIG;
}

static void test_round_trip_all(void **state)
{
        const NukiCommand *t;
        size_t n = nuki_command_table(&t);
        unsigned total = 0;

        for (size_t i = 0; i < n; i++) {
                const NukiCommand *c = &t[i];
                size_t nopt = n_optional_fields(c);

                for (unsigned pin_size = 2; pin_size <= 4; pin_size += 2)
                        for (size_t k = 0; k <= nopt; k++) {
                                uint8_t a[NUKI_PAYLOAD_MAX], b[NUKI_PAYLOAD_MAX];
                                NukiMsg m, d, d0;
                                int la, lb;

                                fill(&m, c, (uint32_t) (i * 1000 + k * 10 + pin_size), pin_size);
                                m.n_optional = (uint8_t) k;
                                la = nuki_msg_encode_payload(&m, pin_size, a, sizeof(a));
                                assert_true(la >= 0);
                                assert_int_equal(
                                                nuki_msg_decode_payload(c->id, a, (size_t) la, pin_size, &d),
                                                0);
                                assert_int_equal(d.variant, c->variant);
                                lb = nuki_msg_encode_payload(&d, pin_size, b, sizeof(b));
                                assert_int_equal(la, lb);
                                assert_memory_equal(a, b, (size_t) la);
                                /* inferred PIN size gives the same message */
                                if (!pin_ambiguous(c)) {
                                        assert_int_equal(nuki_msg_decode_payload(c->id, a, (size_t) la, 0,
                                                                                 &d0),
                                                         0);
                                        lb = nuki_msg_encode_payload(&d0, pin_size, b, sizeof(b));
                                        assert_int_equal(la, lb);
                                        assert_memory_equal(a, b, (size_t) la);
                                }
                                /* the plain and encrypted frames carry the same payload */
                                {
                                        uint8_t fr[NUKI_FRAME_MAX], key[32] = { 3 }, nonce[24] = { 4 };
                                        NukiFrame f;
                                        int lf = nuki_msg_encode_encrypted(&m, pin_size, key, nonce, 9, fr,
                                                                           sizeof(fr));
                                        assert_true(lf > 0);
                                        assert_int_equal(nuki_frame_decode_encrypted(key, NULL, fr,
                                                                                     (size_t) lf, &f),
                                                         0);
                                        assert_int_equal(f.payload_len, (size_t) la);
                                        assert_memory_equal(f.payload, a, (size_t) la);
                                        lf = nuki_msg_encode_plain(&m, pin_size, fr, sizeof(fr));
                                        assert_int_equal(lf, la + 4);
                                }
                                total++;
                                if (!has_pin(c))
                                        break; /* pin size irrelevant: once is enough */
                        }
        }
        print_message("%u round trips\n", total);
        assert_true(total > 100);
}

static int decode_len(uint16_t cmd, size_t len, unsigned pin_size)
{
        uint8_t buf[NUKI_PAYLOAD_MAX] = { 0 };
        NukiMsg m;

        return nuki_msg_decode_payload(cmd, buf, len, pin_size, &m);
}

static void test_boundary_lengths(void **state)
{
        NukiMsg m;
        uint8_t buf[NUKI_PAYLOAD_MAX] = { 0 };

        /* Keyturner States: 15 to 27 bytes, more is ignored (later firmware) */
        assert_int_equal(decode_len(0x000C, 14, 0), -EMSGSIZE);
        for (size_t l = 15; l <= 27; l++) {
                assert_int_equal(nuki_msg_decode_payload(0x000C, buf, l, 0, &m), 0);
                assert_int_equal(m.n_optional, l - 15);
        }
        assert_int_equal(nuki_msg_decode_payload(0x000C, buf, 40, 0, &m), 0);
        assert_int_equal(m.n_optional, 12);
        /* Lock Action: 38, or 58 with the name suffix */
        assert_int_equal(decode_len(0x000D, 38, 0), 0);
        assert_int_equal(decode_len(0x000D, 58, 0), 0);
        for (size_t l = 30; l < 70; l++)
                if (l != 38 && l != 58)
                        assert_int_equal(decode_len(0x000D, l, 0), -EMSGSIZE);
        /* Simple Lock Action: 33 or 53 */
        assert_int_equal(decode_len(0x0100, 33, 0), 0);
        assert_int_equal(decode_len(0x0100, 53, 0), 0);
        assert_int_equal(decode_len(0x0100, 34, 0), -EMSGSIZE);
        /* Authorization Entry: 56 or 75 (time window), [ESP] always 75 */
        assert_int_equal(decode_len(0x000A, 56, 0), 0);
        assert_int_equal(decode_len(0x000A, 75, 0), 0);
        assert_int_equal(decode_len(0x000A, 57, 0), -EMSGSIZE);
        assert_int_equal(decode_len(0x000A, 74, 0), -EMSGSIZE);
        /* Keypad Code: 44 or 63 */
        assert_int_equal(decode_len(0x0045, 44, 0), 0);
        assert_int_equal(decode_len(0x0045, 63, 0), 0);
        assert_int_equal(decode_len(0x0045, 45, 0), -EMSGSIZE);
        /* Request Authorization Entries: offset, count, [filter], nonce, PIN 2 or 4 */
        assert_int_equal(nuki_msg_decode_payload(0x0009, buf, 38, 0, &m), 0);
        assert_int_equal(m.n_optional, 0);
        assert_int_equal(nuki_msg_decode_payload(0x0009, buf, 39, 0, &m), 0);
        assert_int_equal(m.n_optional, 1);
        assert_int_equal(nuki_msg_decode_payload(0x0009, buf, 40, 4, &m), 0);
        assert_int_equal(m.n_optional, 0);
        assert_int_equal(nuki_msg_decode_payload(0x0009, buf, 41, 0, &m), 0);
        assert_int_equal(m.n_optional, 1);
        assert_int_equal(decode_len(0x0009, 42, 0), -EMSGSIZE);
        /* Set Config: 89, or 91 on Ultra */
        assert_int_equal(decode_len(0x0013, 89, 2), 0);
        assert_int_equal(decode_len(0x0013, 91, 4), 0);
        assert_int_equal(decode_len(0x0013, 89, 4), -EMSGSIZE);
        assert_int_equal(decode_len(0x0013, 90, 0), -EMSGSIZE);
        /* Set Security PIN: 2+32+2 or 4+32+4 */
        assert_int_equal(decode_len(0x0019, 36, 0), 0);
        assert_int_equal(decode_len(0x0019, 40, 0), 0);
        assert_int_equal(decode_len(0x0019, 38, 0), -EMSGSIZE);
        /* Config: 71 bytes up to the hardware revision, up to 79 with [ESP]'s variant */
        assert_int_equal(decode_len(0x0015, 70, 0), -EMSGSIZE);
        assert_int_equal(nuki_msg_decode_payload(0x0015, buf, 74, 0, &m), 0);
        assert_int_equal(m.n_optional, 2); /* homekit, timezone id */
        /* Advanced Config: 28, 31, 33 bytes */
        assert_int_equal(nuki_msg_decode_payload(0x0037, buf, 28, 0, &m), 0);
        assert_int_equal(m.n_optional, 0);
        assert_int_equal(nuki_msg_decode_payload(0x0037, buf, 33, 0, &m), 0);
        assert_int_equal(m.n_optional, 5);
        /* Log Entry: 48 bytes of header, data taken from the frame (padding allowed) */
        assert_int_equal(decode_len(0x0032, 47, 0), -EMSGSIZE);
        assert_int_equal(nuki_msg_decode_payload(0x0032, buf, 56, 0, &m), 0);
        assert_int_equal(m.log_entry.data.len, 8);
        assert_int_equal(decode_len(0x0032, 48 + NUKI_BLOB_MAX + 1, 0), -EMSGSIZE);
        /* fixed sizes */
        assert_int_equal(decode_len(0x000E, 0, 0), -EMSGSIZE);
        assert_int_equal(decode_len(0x000E, 2, 0), -EMSGSIZE);
        assert_int_equal(decode_len(0x0012, 3, 0), 0);
        assert_int_equal(decode_len(0x0012, 4, 0), -EMSGSIZE);
        /* Authorization Data / Authorization-ID: both layouts by length */
        assert_int_equal(nuki_msg_decode_payload(0x0006, buf, 101, 0, &m), 0);
        assert_int_equal(m.variant, NUKI_VARIANT_DEFAULT);
        assert_int_equal(nuki_msg_decode_payload(0x0006, buf, 40, 0, &m), 0);
        assert_int_equal(m.variant, NUKI_VARIANT_ULTRA);
        assert_int_equal(nuki_msg_decode_payload(0x0007, buf, 84, 0, &m), 0);
        assert_int_equal(m.variant, NUKI_VARIANT_DEFAULT);
        assert_int_equal(nuki_msg_decode_payload(0x0007, buf, 20, 0, &m), 0);
        assert_int_equal(m.variant, NUKI_VARIANT_ULTRA);
        assert_int_equal(decode_len(0x0007, 21, 0), -EMSGSIZE);
        /* limits and bad arguments */
        assert_int_equal(decode_len(0x0002, 3, 0), -ENOENT);
        assert_int_equal(decode_len(0xFFFF, 3, 0), -ENOENT);
        assert_int_equal(decode_len(0x000E, 1, 3), -EINVAL);
        assert_int_equal(nuki_msg_decode_payload(0x000E, buf, NUKI_PAYLOAD_MAX + 1, 0, &m), -EMSGSIZE);
}

static void test_encode_errors(void **state)
{
        uint8_t out[NUKI_PAYLOAD_MAX];
        NukiMsg m;

        nuki_msg_init(&m, NUKI_CMD_REQUEST_CALIBRATION, NUKI_VARIANT_DEFAULT);
        m.request_calibration.pin = 123456;
        assert_int_equal(nuki_msg_encode_payload(&m, 2, out, sizeof(out)), -ERANGE);
        assert_int_equal(nuki_msg_encode_payload(&m, 4, out, sizeof(out)), 36);
        assert_int_equal(nuki_msg_encode_payload(&m, 3, out, sizeof(out)), -EINVAL);
        assert_int_equal(nuki_msg_encode_payload(&m, 4, out, 20), -ENOBUFS);
        nuki_msg_init(&m, 0x0002, NUKI_VARIANT_DEFAULT);
        assert_int_equal(nuki_msg_encode_payload(&m, 2, out, sizeof(out)), -ENOENT);
        nuki_msg_init(&m, NUKI_CMD_STATUS, NUKI_VARIANT_ULTRA);
        assert_int_equal(nuki_msg_encode_payload(&m, 2, out, sizeof(out)), -ENOENT);
        nuki_msg_init(&m, NUKI_CMD_LOG_ENTRY, NUKI_VARIANT_DEFAULT);
        m.log_entry.data.len = NUKI_BLOB_MAX + 1;
        assert_int_equal(nuki_msg_encode_payload(&m, 2, out, sizeof(out)), -EMSGSIZE);
}

/* PIN placement: uint16 LE on gen 1-4, uint32 LE on Ultra, always after the nonce. */
static void test_pin_placement(void **state)
{
        uint8_t out[NUKI_PAYLOAD_MAX], nonce[32];
        NukiMsg m;
        int n;

        memset(nonce, 0xEE, sizeof(nonce));
        nuki_msg_init(&m, NUKI_CMD_ADD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        assert_int_equal(nuki_msg_set_nonce(&m, nonce), 0);
        assert_int_equal(nuki_msg_set_pin(&m, 1234), 0);
        n = nuki_msg_encode_payload(&m, 2, out, sizeof(out));
        assert_int_equal(n, 4 + 20 + 1 + 7 + 7 + 1 + 2 + 2 + 32 + 2);
        assert_memory_equal(out + n - 34, nonce, 32);
        assert_int_equal(out[n - 2], 0xD2);
        assert_int_equal(out[n - 1], 0x04);
        assert_int_equal(nuki_msg_set_pin(&m, 123456), 0);
        n = nuki_msg_encode_payload(&m, 4, out, sizeof(out));
        assert_memory_equal(out + n - 36, nonce, 32);
        {
                uint8_t exp[4] = { 0x40, 0xE2, 0x01, 0x00 };
                assert_memory_equal(out + n - 4, exp, 4);
        }
        /* Set Security PIN: new PIN first, current PIN last */
        nuki_msg_init(&m, NUKI_CMD_SET_SECURITY_PIN, NUKI_VARIANT_DEFAULT);
        m.set_security_pin.new_pin = 4321;
        assert_int_equal(nuki_msg_set_pin(&m, 1234), 0);
        n = nuki_msg_encode_payload(&m, 2, out, sizeof(out));
        assert_int_equal(n, 36);
        assert_int_equal(nuki_get_u16(out), 4321);
        assert_int_equal(nuki_get_u16(out + 34), 1234);
        /* commands without nonce or PIN */
        nuki_msg_init(&m, NUKI_CMD_STATUS, NUKI_VARIANT_DEFAULT);
        assert_int_equal(nuki_msg_set_nonce(&m, nonce), -ENOENT);
        assert_int_equal(nuki_msg_set_pin(&m, 1), -ENOENT);
        nuki_msg_init(&m, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
        assert_int_equal(nuki_msg_set_nonce(&m, nonce), 0);
        assert_int_equal(nuki_msg_set_pin(&m, 1), -ENOENT);
}

static void decode_vector(const char *hex, NukiMsg *m)
{
        uint8_t buf[256];
        NukiFrame f;
        size_t n = unhex(hex, buf, sizeof(buf));

        assert_int_equal(nuki_frame_decode_plain(buf, n, &f), 0);
        assert_int_equal(nuki_msg_decode_frame(&f, 0, m), 0);
}

/* The pairing messages of the official examples, decoded as the vectors' "decoded" say. */
static void test_vector_messages(void **state)
{
        uint8_t b[32];
        NukiMsg m;

        decode_vector(A_STEP1, &m);
        assert_int_equal(m.request_data.command, 0x0003);
        assert_int_equal(m.request_data.extra.len, 0);

        decode_vector(A_STEP7, &m);
        assert_int_equal(m.authorization_data.id_type, 0);
        assert_int_equal(m.authorization_data.app_id, 0);
        assert_string_equal(m.authorization_data.name, "Marc (Test)");
        unhex(A_NABF, b, 32);
        assert_memory_equal(m.authorization_data.nonce, b, 32);

        decode_vector(A_STEP8_FRAG1 A_STEP8_FRAG2 A_STEP8_FRAG3 A_STEP8_FRAG4 A_STEP8_FRAG5, &m);
        assert_int_equal(m.variant, NUKI_VARIANT_DEFAULT);
        assert_int_equal(m.authorization_id.auth_id, 2);
        unhex(A_UUID, b, 16);
        assert_memory_equal(m.authorization_id.uuid, b, 16);

        decode_vector(A_STEP9, &m);
        assert_int_equal(m.authorization_id_confirmation.auth_id, 2);

        decode_vector(D_STEP7, &m);
        assert_int_equal(m.authorization_data.app_id, D_APP_ID);
        assert_string_equal(m.authorization_data.name, "Testapp");

        decode_vector(D_STEP8, &m);
        assert_int_equal(m.authorization_id.auth_id, D_AUTH_ID);

        decode_vector(E_STEP6, &m);
        assert_int_equal(m.authorization_info.security_pin_info, 0);
        decode_vector(FORUM_AUTH_INFO_PIN_SET, &m);
        assert_int_equal(m.authorization_info.security_pin_info, 1);

        decode_vector(E_STEP8, &m);
        assert_int_equal(m.variant, NUKI_VARIANT_ULTRA);
        assert_int_equal(m.authorization_id_ultra.auth_id, E_AUTH_ID);

        /* Ultra Authorization Data as published before encryption */
        {
                uint8_t p[64];
                size_t n = unhex(E_STEP7_PLAIN, p, sizeof(p));
                assert_int_equal(nuki_msg_decode_payload(nuki_get_u16(p), p + 2, n - 2, 4, &m), 0);
                assert_int_equal(m.variant, NUKI_VARIANT_ULTRA);
                assert_int_equal(m.authorization_data_ultra.security_pin, E_PIN);
                assert_string_equal(m.authorization_data_ultra.name, "Testapp");
        }

        decode_vector(A_STEP10, &m);
        assert_int_equal(m.status.status, NUKI_STATUS_COMPLETE);
        decode_vector(FORUM_STATUS_F1, &m);
        assert_int_equal(m.status.status, NUKI_STATUS_STATE_CHANGED);
        decode_vector(FORUM_ERROR_NOT_AUTH, &m);
        assert_int_equal(m.error_report.error, NUKI_K_ERROR_NOT_AUTHORIZED);
        assert_int_equal(m.error_report.command, 0x0000);
        decode_vector(FORUM_ERROR_BAD_CRC, &m);
        assert_int_equal(m.error_report.error, NUKI_ERROR_BAD_CRC);
        assert_int_equal(m.error_report.command, 0x0001);
}

/* The V2.1 timestamp example: E0 07 03 07 08 0F 1E is 2016-03-07 08:15:30. */
static void test_keyturner_states_fields(void **state)
{
        uint8_t p[27];
        NukiMsg m;

        unhex("0201"
              "00"
              "E00703070"
              "80F1E"
              "3C00"
              "AB"
              "03"
              "00"
              "02"
              "00"
              "00"
              "02"
              "00"
              "05"
              "03"
              "C4"
              "B0"
              "0F"
              "03"
              "17",
              p, sizeof(p));
        assert_int_equal(nuki_msg_decode_payload(0x000C, p, 27, 0, &m), 0);
        assert_int_equal(m.keyturner_states.nuki_state, 2);
        assert_int_equal(m.keyturner_states.lock_state, NUKI_LOCK_STATE_LOCKED);
        assert_int_equal(m.keyturner_states.current_time.year, 2016);
        assert_int_equal(m.keyturner_states.current_time.month, 3);
        assert_int_equal(m.keyturner_states.current_time.day, 7);
        assert_int_equal(m.keyturner_states.current_time.hour, 8);
        assert_int_equal(m.keyturner_states.current_time.minute, 15);
        assert_int_equal(m.keyturner_states.current_time.second, 30);
        assert_int_equal(m.keyturner_states.timezone_offset, 60);
        assert_true(nuki_battery_critical(m.keyturner_states.battery));
        assert_true(nuki_battery_charging(m.keyturner_states.battery));
        assert_int_equal(nuki_battery_percent(m.keyturner_states.battery), 84);
        assert_int_equal(m.keyturner_states.last_lock_action, NUKI_LOCK_ACTION_LOCK);
        assert_int_equal(m.keyturner_states.door_sensor_state, 2);
        assert_int_equal(m.keyturner_states.ble_strength, -60);
        assert_int_equal(m.keyturner_states.wifi_strength, -80);
        assert_int_equal(m.keyturner_states.thread_status, 0x17);
        assert_int_equal(m.n_optional, 12);
        /* negative timezone offsets */
        p[10] = 0xC4;
        p[11] = 0xFF;
        assert_int_equal(nuki_msg_decode_payload(0x000C, p, 15, 0, &m), 0);
        assert_int_equal(m.keyturner_states.timezone_offset, -60);
        assert_int_equal(m.n_optional, 0);
}

static void test_enums(void **state)
{
        static const char *const lock_states[] = {
                "uncalibrated",     "locked",     "unlocking",   "unlocked", "locking",       "unlatched",
                "unlocked_lockngo", "unlatching", "calibration", "boot_run", "motor_blocked", "undefined",
        };
        static const unsigned lock_state_values[] = { 0, 1, 2, 3, 4, 5, 6, 7, 0xFC, 0xFD, 0xFE, 0xFF };
        static const char *const lock_actions[] = {
                "unlock",    "lock",         "unlatch",      "lockngo",     "lockngo_unlatch",
                "full_lock", "fob_action_1", "fob_action_2", "fob_action_3"
        };
        static const unsigned lock_action_values[] = { 1, 2, 3, 4, 5, 6, 0x81, 0x82, 0x83 };
        unsigned total = 0;

        for (size_t i = 0; i < ELEMENTSOF(lock_states); i++) {
                assert_string_equal(nuki_enum_to_string(NUKI_ENUM_LOCK_STATE, lock_state_values[i]),
                                    lock_states[i]);
                assert_int_equal(nuki_enum_from_string(NUKI_ENUM_LOCK_STATE, lock_states[i]),
                                 lock_state_values[i]);
        }
        for (size_t i = 0; i < ELEMENTSOF(lock_actions); i++)
                assert_string_equal(nuki_enum_to_string(NUKI_ENUM_LOCK_ACTION, lock_action_values[i]),
                                    lock_actions[i]);
        assert_string_equal(nuki_enum_to_string(NUKI_ENUM_STATUS, 0), "complete");
        assert_string_equal(nuki_enum_to_string(NUKI_ENUM_STATUS, 1), "accepted");
        assert_null(nuki_enum_to_string(NUKI_ENUM_STATUS, 0xF1));
        assert_string_equal(nuki_enum_to_string(NUKI_ENUM_ERROR, 0x10), "p_error_not_pairing");
        assert_string_equal(nuki_enum_to_string(NUKI_ENUM_ERROR, 0x4D), "k_error_firmware_update_needed");
        assert_string_equal(nuki_enum_to_string(NUKI_ENUM_COMPLETION_STATUS, 0x0B), "handle_not_lifted");
        assert_string_equal(nuki_enum_to_string(NUKI_ENUM_DOOR_SENSOR_STATE, 0x04), "door_state_unknown");
        assert_string_equal(nuki_enum_to_string(NUKI_ENUM_DOOR_SENSOR_STATE, 0xF0), "tampered");
        assert_string_equal(nuki_enum_to_string(NUKI_ENUM_TRIGGER, 0x06), "auto_lock");
        assert_null(nuki_enum_to_string(NUKI_ENUM_TRIGGER, 0x04));
        assert_int_equal(nuki_enum_from_string(NUKI_ENUM_TRIGGER, "nope"), -EINVAL);
        assert_int_equal(nuki_enum_from_string(NUKI_ENUM_TRIGGER, NULL), -EINVAL);
        assert_null(nuki_enum_to_string(_NUKI_ENUM_MAX, 0));

        /* every value of every table: a unique snake_case name that maps back */
        for (int k = 1; k < _NUKI_ENUM_MAX; k++) {
                const NukiEnumValue *t;
                size_t n = nuki_enum_table((NukiEnumKind) k, &t);

                assert_true(n > 0);
                assert_true(is_snake(nuki_enum_kind_name((NukiEnumKind) k)));
                for (size_t i = 0; i < n; i++) {
                        assert_true(is_snake(t[i].name));
                        assert_string_equal(nuki_enum_to_string((NukiEnumKind) k, t[i].value), t[i].name);
                        assert_int_equal(nuki_enum_from_string((NukiEnumKind) k, t[i].name), t[i].value);
                        for (size_t j = i + 1; j < n; j++) {
                                assert_int_not_equal(t[i].value, t[j].value);
                                assert_string_not_equal(t[i].name, t[j].name);
                        }
                        total++;
                }
        }
        assert_true(total > 150);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table_invariants),        cmocka_unit_test(test_round_trip_all),
                cmocka_unit_test(test_boundary_lengths),        cmocka_unit_test(test_encode_errors),
                cmocka_unit_test(test_pin_placement),           cmocka_unit_test(test_vector_messages),
                cmocka_unit_test(test_keyturner_states_fields), cmocka_unit_test(test_enums),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
