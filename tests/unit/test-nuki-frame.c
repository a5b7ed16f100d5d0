/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CRC, frames and reassembly: every CRC-bearing frame of the official examples and the
 * forum captures, the encrypted Request Data example of the fact sheet (2.2), and the
 * negative cases: wrong key, flipped bits in tag, ciphertext, header and CRC, truncation
 * at every length, oversize length fields, reassembly garbage, overflow and time-out.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-frame.h"
#include "nuki-vectors.h"

static const char *const plain_frames[] = {
        A_STEP1,
        A_STEP2_FRAG1 A_STEP2_FRAG2,
        A_STEP3,
        A_STEP4_FRAG1 A_STEP4_FRAG2,
        A_STEP5,
        A_STEP6_FRAG1 A_STEP6_FRAG2,
        A_STEP7,
        A_STEP8_FRAG1 A_STEP8_FRAG2 A_STEP8_FRAG3 A_STEP8_FRAG4 A_STEP8_FRAG5,
        A_STEP9,
        A_STEP10,
        D_STEP1,
        D_STEP2,
        D_STEP3,
        D_STEP4,
        D_STEP5,
        D_STEP6,
        D_STEP7,
        D_STEP8,
        D_STEP9,
        D_STEP10,
        E_STEP1,
        E_STEP2,
        E_STEP3,
        E_STEP4,
        E_STEP5,
        E_STEP6,
        E_STEP8,
        FORUM_AUTH_INFO_PIN_SET,
        FORUM_STATUS_F1,
        FORUM_ERROR_NOT_AUTH,
        FORUM_ERROR_BAD_CRC,
        FORUM_ERROR_UNKNOWN,
};

static void test_crc_check_value(void **state)
{
        assert_int_equal(nuki_crc16("123456789", 9), 0x29B1);
        assert_int_equal(nuki_crc16("", 0), 0xFFFF);
}

static void test_plain_vectors(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(plain_frames); i++) {
                uint8_t buf[256], re[256];
                NukiFrame f;
                size_t n = unhex(plain_frames[i], buf, sizeof(buf));
                int r;

                assert_int_equal(nuki_frame_decode_plain(buf, n, &f), 0);
                assert_int_equal(f.command, nuki_get_u16(buf));
                assert_int_equal(f.payload_len, n - 4);
                assert_false(f.encrypted);
                /* and the encoder produces the same bytes */
                r = nuki_frame_encode_plain(f.command, f.payload, f.payload_len, re, sizeof(re));
                assert_int_equal(r, (int) n);
                assert_memory_equal(re, buf, n);
                /* every single-bit flip is caught by the CRC */
                for (size_t bit = 0; bit < 8 * n; bit++) {
                        buf[bit / 8] ^= (uint8_t) (1U << (bit % 8));
                        assert_int_equal(nuki_frame_decode_plain(buf, n, &f), -EBADMSG);
                        buf[bit / 8] ^= (uint8_t) (1U << (bit % 8));
                }
                /* truncation: never a success, never a read past n */
                for (size_t l = 0; l < n; l++)
                        assert_true(nuki_frame_decode_plain(buf, l, &f) < 0);
        }
}

static void test_plain_limits(void **state)
{
        uint8_t big[NUKI_PLAIN_MAX + 1] = { 0 }, out[8];
        NukiFrame f;

        assert_int_equal(nuki_frame_decode_plain(big, 3, &f), -ENODATA);
        assert_int_equal(nuki_frame_decode_plain(big, sizeof(big), &f), -EMSGSIZE);
        assert_int_equal(nuki_frame_encode_plain(1, big, NUKI_PAYLOAD_MAX + 1, big, sizeof(big)), -EMSGSIZE);
        assert_int_equal(nuki_frame_encode_plain(1, big, 5, out, sizeof(out)), -ENOBUFS);
        assert_int_equal(nuki_frame_encode_plain(1, NULL, 0, out, sizeof(out)), 4);
}

/* Fact sheet 2.2: Request Data(Keyturner States) for auth-id 2 has PDATA
 * 02000000 0100 0C00 418D and is 56 bytes on the wire. */
static void test_encrypted_request_data_example(void **state)
{
        uint8_t key[32], nonce[24] = { 0 }, out[128], pdata[64], payload[2] = { 0x0C, 0x00 };
        uint32_t aid;
        NukiFrame f;
        int n, pl;

        unhex(A_S, key, 32);
        n = nuki_frame_encode_encrypted(key, nonce, 2, 0x0001, payload, 2, out, sizeof(out));
        assert_int_equal(n, 56);
        assert_int_equal(nuki_get_u16(out + 28), 0x001A);
        assert_int_equal(nuki_get_u32(out + 24), 2);
        pl = nuki_frame_open(key, out, (size_t) n, pdata, sizeof(pdata), &aid);
        assert_int_equal(pl, 10);
        assert_int_equal(aid, 2);
        {
                uint8_t exp[10];
                unhex("020000000100"
                      "0C00"
                      "418D",
                      exp, sizeof(exp));
                assert_memory_equal(pdata, exp, 10);
        }
        assert_int_equal(nuki_frame_decode_encrypted(key, NULL, out, (size_t) n, &f), 0);
        assert_true(f.encrypted);
        assert_int_equal(f.auth_id, 2);
        assert_int_equal(f.command, 0x0001);
        assert_int_equal(f.payload_len, 2);
        assert_int_equal(nuki_get_u16(f.payload), 0x000C);
}

static void test_encrypted_negative(void **state)
{
        uint8_t key[32], wrong[32], nonce[24], out[128], payload[40];
        uint32_t two = 2, three = 3;
        NukiFrame f;
        int n;

        unhex(A_S, key, 32);
        unhex(D_S, wrong, 32);
        for (size_t i = 0; i < sizeof(nonce); i++)
                nonce[i] = (uint8_t) (i * 7);
        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t) i;
        n = nuki_frame_encode_encrypted(key, nonce, 2, NUKI_PAYLOAD_MAX, payload, sizeof(payload), out,
                                        sizeof(out));
        assert_int_equal(n, 30 + 16 + 8 + 40);

        assert_int_equal(nuki_frame_decode_encrypted(key, &two, out, (size_t) n, &f), 0);
        assert_int_equal(f.payload_len, 40);
        assert_memory_equal(f.payload, payload, 40);
        /* wrong key */
        assert_int_equal(nuki_frame_decode_encrypted(wrong, NULL, out, (size_t) n, &f), -EKEYREJECTED);
        /* unexpected auth-id */
        assert_int_equal(nuki_frame_decode_encrypted(key, &three, out, (size_t) n, &f), -EPROTO);
        /* flip every bit: nonce and tag/ciphertext → tag fails; ADATA auth-id → auth-id
         * mismatch; length field → length inconsistent */
        for (size_t bit = 0; bit < 8 * (size_t) n; bit++) {
                size_t byte = bit / 8;
                int r;

                out[byte] ^= (uint8_t) (1U << (bit % 8));
                r = nuki_frame_decode_encrypted(key, NULL, out, (size_t) n, &f);
                if (byte < 24 || byte >= 30)
                        assert_int_equal(r, -EKEYREJECTED);
                else if (byte < 28)
                        assert_int_equal(r, -EPROTO);
                else
                        assert_int_equal(r, -EMSGSIZE);
                out[byte] ^= (uint8_t) (1U << (bit % 8));
        }
        /* truncated at every length */
        for (size_t l = 0; l < (size_t) n; l++)
                assert_true(nuki_frame_decode_encrypted(key, NULL, out, l, &f) < 0);
        /* extra trailing byte */
        out[n] = 0;
        assert_int_equal(nuki_frame_decode_encrypted(key, NULL, out, (size_t) n + 1, &f), -EMSGSIZE);
        /* oversize length field */
        nuki_put_u16(out + 28, 0xFFFF);
        assert_int_equal(nuki_frame_decode_encrypted(key, NULL, out, (size_t) n, &f), -EMSGSIZE);
        nuki_put_u16(out + 28, 3);
        assert_int_equal(nuki_frame_decode_encrypted(key, NULL, out, (size_t) n, &f), -EMSGSIZE);
}

/* A valid tag over PDATA whose CRC is wrong, or whose ids disagree. */
static void test_encrypted_bad_crc_inside(void **state)
{
        uint8_t key[32], nonce[24] = { 1 }, pdata[10], out[128];
        NukiFrame f;
        int n;

        unhex(A_S, key, 32);
        unhex("020000000100"
              "0C00"
              "418D",
              pdata, sizeof(pdata));
        pdata[9] ^= 0x40;
        n = nuki_frame_seal(key, nonce, 2, pdata, sizeof(pdata), out, sizeof(out));
        assert_int_equal(nuki_frame_decode_encrypted(key, NULL, out, (size_t) n, &f), -EBADMSG);
        pdata[9] ^= 0x40;
        n = nuki_frame_seal(key, nonce, 7, pdata, sizeof(pdata), out, sizeof(out));
        assert_int_equal(nuki_frame_decode_encrypted(key, NULL, out, (size_t) n, &f), -EPROTO);
        /* PDATA shorter than auth-id + cmd + crc */
        n = nuki_frame_seal(key, nonce, 2, pdata, 7, out, sizeof(out));
        assert_int_equal(nuki_frame_decode_encrypted(key, NULL, out, (size_t) n, &f), -EMSGSIZE);
}

static void test_strerror(void **state)
{
        assert_string_equal(nuki_frame_strerror(-EBADMSG), "CRC mismatch");
        assert_non_null(strstr(nuki_frame_strerror(-EKEYREJECTED), "tag"));
        assert_non_null(nuki_frame_strerror(-12345));
}

/* Split a buffer at every fragment size from 1 to 40 and reassemble it. */
static void reassemble_all_sizes(NukiReasmMode mode, const uint8_t *msg, size_t n)
{
        for (size_t fs = 1; fs <= 40; fs++) {
                uint8_t out[NUKI_FRAME_MAX];
                NukiReasm r;
                size_t len = 0;
                int got = 0;

                nuki_reasm_init(&r, mode);
                for (size_t o = 0; o < n; o += fs) {
                        int x;
                        assert_int_equal(nuki_reasm_feed(&r, msg + o, MIN(fs, n - o), 0), 0);
                        x = nuki_reasm_pop(&r, out, sizeof(out), &len);
                        assert_true(x >= 0);
                        got += x;
                        if (o + fs < n)
                                assert_int_equal(x, 0);
                }
                assert_int_equal(got, 1);
                assert_int_equal(len, n);
                assert_memory_equal(out, msg, n);
                assert_int_equal(nuki_reasm_pending(&r), 0);
        }
}

static void test_reasm_plain_vectors(void **state)
{
        for (size_t i = 0; i < ELEMENTSOF(plain_frames); i++) {
                uint8_t buf[256];
                size_t n = unhex(plain_frames[i], buf, sizeof(buf));

                if (nuki_get_u16(buf) == 0x0007 && n == 24)
                        reassemble_all_sizes(NUKI_REASM_ULTRA_PAIRING_REPLY, buf, n);
                else
                        reassemble_all_sizes(NUKI_REASM_PLAIN, buf, n);
        }
}

static void test_reasm_encrypted(void **state)
{
        uint8_t key[32], nonce[24] = { 5 }, out[NUKI_FRAME_MAX], payload[NUKI_PAYLOAD_MAX] = { 0 };
        int n;

        unhex(A_S, key, 32);
        for (size_t len = 0; len <= NUKI_PAYLOAD_MAX; len += 17) {
                n = nuki_frame_encode_encrypted(key, nonce, 2, 0x000C, payload, len, out, sizeof(out));
                assert_true(n > 0);
                reassemble_all_sizes(NUKI_REASM_ENCRYPTED, out, (size_t) n);
                reassemble_all_sizes(NUKI_REASM_ULTRA_PAIRING_REPLY, out, (size_t) n);
        }
}

static void test_reasm_coalesced(void **state)
{
        uint8_t in[256], out[NUKI_FRAME_MAX];
        size_t n1, n2, len;
        NukiReasm r;

        n1 = unhex(A_STEP10, in, sizeof(in));
        n2 = unhex(D_STEP2, in + n1, sizeof(in) - n1);
        nuki_reasm_init(&r, NUKI_REASM_PLAIN);
        assert_int_equal(nuki_reasm_feed(&r, in, n1 + n2, 0), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), 1);
        assert_int_equal(len, n1);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), 1);
        assert_int_equal(len, n2);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), 0);

        /* an unknown command completes at the first CRC match */
        {
                uint8_t p[3] = { 1, 2, 3 };
                int l = nuki_frame_encode_plain(0x0999, p, sizeof(p), in, sizeof(in));
                reassemble_all_sizes(NUKI_REASM_PLAIN, in, (size_t) l);
        }
}

static void test_reasm_garbage(void **state)
{
        uint8_t in[NUKI_FRAME_MAX + 10] = { 0 }, out[NUKI_FRAME_MAX];
        size_t n, len;
        NukiReasm r;

        /* a known command whose CRC is wrong at the expected size */
        n = unhex(D_STEP2, in, sizeof(in));
        in[n - 1] ^= 1;
        nuki_reasm_init(&r, NUKI_REASM_PLAIN);
        assert_int_equal(nuki_reasm_feed(&r, in, n, 0), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), -EBADMSG);
        assert_int_equal(nuki_reasm_pending(&r), 0);
        /* and the buffer works again afterwards */
        n = unhex(D_STEP2, in, sizeof(in));
        assert_int_equal(nuki_reasm_feed(&r, in, n, 0), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), 1);

        /* encrypted length field out of range */
        memset(in, 0, 30);
        nuki_put_u16(in + 28, 0xFFFF);
        nuki_reasm_set_mode(&r, NUKI_REASM_ENCRYPTED);
        assert_int_equal(nuki_reasm_feed(&r, in, 30, 0), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), -EMSGSIZE);
        nuki_put_u16(in + 28, 5);
        assert_int_equal(nuki_reasm_feed(&r, in, 30, 0), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), -EMSGSIZE);

        /* overflow */
        nuki_reasm_set_mode(&r, NUKI_REASM_PLAIN);
        assert_int_equal(nuki_reasm_feed(&r, in, 100, 0), 0);
        assert_int_equal(nuki_reasm_feed(&r, in, NUKI_FRAME_MAX, 0), -EMSGSIZE);
        assert_int_equal(nuki_reasm_pending(&r), 0);
        /* unknown command that never matches its CRC: reset at the plain maximum */
        memset(in, 0xAB, sizeof(in));
        assert_int_equal(nuki_reasm_feed(&r, in, NUKI_PLAIN_MAX, 0), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), -EMSGSIZE);

        /* output buffer too small */
        n = unhex(D_STEP2, in, sizeof(in));
        assert_int_equal(nuki_reasm_feed(&r, in, n, 0), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, 10, &len), -EMSGSIZE);

        /* setting the mode it already has keeps a half-received message; another drops it */
        n = unhex(D_STEP2, in, sizeof(in));
        assert_int_equal(nuki_reasm_feed(&r, in, 20, 0), 0);
        nuki_reasm_set_mode(&r, NUKI_REASM_PLAIN);
        assert_int_equal(nuki_reasm_pending(&r), 20);
        assert_int_equal(nuki_reasm_feed(&r, in + 20, n - 20, 0), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), 1);
        assert_int_equal(nuki_reasm_feed(&r, in, 20, 0), 0);
        nuki_reasm_set_mode(&r, NUKI_REASM_ENCRYPTED);
        assert_int_equal(nuki_reasm_pending(&r), 0);
}

static void test_reasm_timeout(void **state)
{
        uint8_t in[64], out[NUKI_FRAME_MAX];
        size_t n, len;
        NukiReasm r;

        n = unhex(D_STEP2, in, sizeof(in));
        nuki_reasm_init(&r, NUKI_REASM_PLAIN);
        /* a stale first half is dropped, the fresh message goes through */
        assert_int_equal(nuki_reasm_feed(&r, in, 20, 1000000), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), 0);
        assert_int_equal(nuki_reasm_feed(&r, in, 20, 1000000 + NUKI_REASM_TIMEOUT_USEC + 1), 0);
        assert_int_equal(nuki_reasm_pending(&r), 20);
        assert_int_equal(nuki_reasm_feed(&r, in + 20, n - 20, 1000000 + NUKI_REASM_TIMEOUT_USEC + 2), 0);
        assert_int_equal(nuki_reasm_pop(&r, out, sizeof(out), &len), 1);
        assert_int_equal(len, n);
}

static void test_expected_sizes(void **state)
{
        assert_int_equal(nuki_plain_expected_size(0x0003), 36);
        assert_int_equal(nuki_plain_expected_size(0x0004), 36);
        assert_int_equal(nuki_plain_expected_size(0x0007), 88);
        assert_int_equal(nuki_plain_expected_size(0x000E), 5);
        assert_int_equal(nuki_plain_expected_size(0x0012), 7);
        assert_int_equal(nuki_plain_expected_size(0x004C), 5);
        assert_int_equal(nuki_plain_expected_size(0x0001), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crc_check_value),
                cmocka_unit_test(test_plain_vectors),
                cmocka_unit_test(test_plain_limits),
                cmocka_unit_test(test_encrypted_request_data_example),
                cmocka_unit_test(test_encrypted_negative),
                cmocka_unit_test(test_encrypted_bad_crc_inside),
                cmocka_unit_test(test_strerror),
                cmocka_unit_test(test_reasm_plain_vectors),
                cmocka_unit_test(test_reasm_encrypted),
                cmocka_unit_test(test_reasm_coalesced),
                cmocka_unit_test(test_reasm_garbage),
                cmocka_unit_test(test_reasm_timeout),
                cmocka_unit_test(test_expected_sizes),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
