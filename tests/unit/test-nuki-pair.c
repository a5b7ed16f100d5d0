/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pairing against the official examples A, D (gen 1-4) and E (Ultra), byte for byte,
 * the crypto primitives behind them, the lock's error replies, and a client paired with
 * the lock-side machine in memory (every flow, every Ultra variant, 20-byte fragments).
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-pair.h"
#include "nuki-vectors.h"

static void assert_hex_equal(const uint8_t *buf, size_t n, const char *hex)
{
        uint8_t exp[512];
        size_t l = unhex(hex, exp, sizeof(exp));

        assert_int_equal(n, l);
        assert_memory_equal(buf, exp, l);
}

static void test_crypto_vectors(void **state)
{
        static const struct {
                const char *sk, *pk, *lock_pk, *dh1, *s;
        } v[] = {
                { A_CLIENT_SK, A_CLIENT_PK, A_LOCK_PK, A_DH1, A_S },
                { D_CLIENT_SK, D_CLIENT_PK, D_LOCK_PK, D_DH1, D_S },
                { E_CLIENT_SK, E_CLIENT_PK, E_LOCK_PK, E_DH1, E_S },
        };

        for (size_t i = 0; i < 3; i++) {
                uint8_t sk[32], lpk[32], k[32], s[32], s2[32];
                NukiKeyPair kp;

                unhex(v[i].sk, sk, 32);
                unhex(v[i].lock_pk, lpk, 32);
                assert_int_equal(nuki_keypair_from_secret(&kp, sk), 0);
                assert_hex_equal(kp.public_key, 32, v[i].pk);
                assert_int_equal(nuki_dh1(k, sk, lpk), 0);
                assert_hex_equal(k, 32, v[i].dh1);
                assert_int_equal(nuki_kdf1(s, k), 0);
                assert_hex_equal(s, 32, v[i].s);
                assert_int_equal(nuki_shared_key(s2, sk, lpk), 0);
                assert_memory_equal(s, s2, 32);
        }
}

/* Example E prints example D's key; the published authenticator verifies only with the
 * key computed from E's own key pair. */
static void test_vector_e_printed_key_is_wrong(void **state)
{
        uint8_t s[32], wrong[32], msg[96], frame[64];

        unhex(E_S, s, 32);
        unhex(E_S_PRINTED, wrong, 32);
        unhex(E_CLIENT_PK, msg, 32);
        unhex(E_LOCK_PK, msg + 32, 32);
        unhex(E_STEP4, frame, sizeof(frame));
        memcpy(msg + 64, frame + 2, 32);
        unhex(E_STEP5, frame, sizeof(frame));
        assert_true(nuki_authenticator_verify(frame + 2, s, msg, sizeof(msg)));
        assert_false(nuki_authenticator_verify(frame + 2, wrong, msg, sizeof(msg)));
}

static void test_low_order_point(void **state)
{
        uint8_t sk[32] = { 1 }, zero[32] = { 0 }, s[32];

        assert_int_equal(nuki_shared_key(s, sk, zero), -EINVAL);
}

/* Feed the hex fragments through a reassembly buffer, then the message to the client. */
static int feed_fragments(NukiPairClient *c, NukiReasm *ra, const char *const *frags, uint8_t *out,
                          size_t *out_len)
{
        uint8_t in[512], msg[NUKI_FRAME_MAX];
        size_t n, mlen = 0;
        int r = 0;

        nuki_reasm_set_mode(ra, nuki_pair_client_reasm_mode(c));
        for (size_t i = 0; frags[i]; i++) {
                n = unhex(frags[i], in, sizeof(in));
                assert_int_equal(nuki_reasm_feed(ra, in, n, 0), 0);
                r = nuki_reasm_pop(ra, msg, sizeof(msg), &mlen);
                if (frags[i + 1])
                        assert_int_equal(r, 0); /* not complete before the last fragment */
        }
        assert_int_equal(r, 1);
        assert_int_equal(nuki_reasm_pending(ra), 0);
        return nuki_pair_client_feed(c, msg, mlen, out, NUKI_PAIR_OUT_MAX, out_len);
}

#define FRAGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void test_pair_example_a(void **state)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = NULL;
        uint8_t sk[32], nabf[32], out[NUKI_PAIR_OUT_MAX];
        NukiPairParams p;
        NukiPairing res;
        NukiReasm ra;
        size_t n;
        int r;

        unhex(A_CLIENT_SK, sk, 32);
        unhex(A_NABF, nabf, 32);
        nuki_pair_params_init(&p);
        p.id_type = NUKI_ID_TYPE_APP; /* the example pairs as an app */
        p.app_id = A_APP_ID;
        p.name = A_NAME;
        p.secret_key = sk;
        p.client_nonce = nabf;
        assert_int_equal(nuki_pair_client_new(&c, &p), 0);
        nuki_reasm_init(&ra, NUKI_REASM_PLAIN);

        r = nuki_pair_client_start(c, out, sizeof(out));
        assert_true(r > 0);
        assert_hex_equal(out, (size_t) r, A_STEP1);

        assert_int_equal(feed_fragments(c, &ra, FRAGS(A_STEP2_FRAG1, A_STEP2_FRAG2), out, &n), 0);
        assert_hex_equal(out, n, A_STEP3);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(A_STEP4_FRAG1, A_STEP4_FRAG2), out, &n), 0);
        assert_hex_equal(out, n, A_STEP5);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(A_STEP6_FRAG1, A_STEP6_FRAG2), out, &n), 0);
        assert_hex_equal(out, n, A_STEP7);
        assert_int_equal(feed_fragments(c, &ra,
                                        FRAGS(A_STEP8_FRAG1, A_STEP8_FRAG2, A_STEP8_FRAG3, A_STEP8_FRAG4,
                                              A_STEP8_FRAG5),
                                        out, &n),
                         0);
        assert_hex_equal(out, n, A_STEP9);
        assert_int_equal(nuki_pair_client_state(c), NUKI_PAIR_WAIT_STATUS);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(A_STEP10), out, &n), 1);
        assert_int_equal(n, 0);
        assert_int_equal(nuki_pair_client_state(c), NUKI_PAIR_DONE);

        assert_int_equal(nuki_pair_client_get_result(c, &res), 0);
        assert_int_equal(res.auth_id, A_AUTH_ID);
        assert_hex_equal(res.uuid, 16, A_UUID);
        assert_hex_equal(res.shared_key, 32, A_S);
        assert_hex_equal(res.peer_public_key, 32, A_LOCK_PK);
        assert_false(res.ultra);
        nuki_pairing_wipe(&res);
}

static void test_pair_example_d(void **state)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = NULL;
        uint8_t sk[32], nabf[32], out[NUKI_PAIR_OUT_MAX];
        NukiPairParams p;
        NukiPairing res;
        NukiReasm ra;
        size_t n;

        unhex(D_CLIENT_SK, sk, 32);
        unhex(D_NABF, nabf, 32);
        nuki_pair_params_init(&p);
        p.id_type = NUKI_ID_TYPE_APP;
        p.app_id = D_APP_ID;
        p.name = D_NAME;
        p.secret_key = sk;
        p.client_nonce = nabf;
        assert_int_equal(nuki_pair_client_new(&c, &p), 0);
        nuki_reasm_init(&ra, NUKI_REASM_PLAIN);

        assert_int_equal(nuki_pair_client_start(c, out, sizeof(out)), 6);
        assert_hex_equal(out, 6, D_STEP1);
        /* whole messages, as with a large MTU */
        assert_int_equal(feed_fragments(c, &ra, FRAGS(D_STEP2), out, &n), 0);
        assert_hex_equal(out, n, D_STEP3);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(D_STEP4), out, &n), 0);
        assert_hex_equal(out, n, D_STEP5);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(D_STEP6), out, &n), 0);
        assert_hex_equal(out, n, D_STEP7);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(D_STEP8), out, &n), 0);
        assert_hex_equal(out, n, D_STEP9);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(D_STEP10), out, &n), 1);

        assert_int_equal(nuki_pair_client_get_result(c, &res), 0);
        assert_int_equal(res.auth_id, D_AUTH_ID); /* the document's "2" is a typo */
        assert_hex_equal(res.uuid, 16, D_UUID);
        assert_hex_equal(res.shared_key, 32, D_S);
        assert_int_equal(res.app_id, D_APP_ID);
}

static NukiPairClient *client_e(NukiUltraAuthId mode)
{
        static uint8_t sk[32];
        static const uint8_t mnonce[24] = { 0xA5, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                            12,   13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23 };
        NukiPairClient *c;
        NukiPairParams p;

        unhex(E_CLIENT_SK, sk, 32);
        nuki_pair_params_init(&p);
        p.app_id = E_APP_ID;
        p.name = E_NAME;
        p.security_pin = E_PIN;
        p.secret_key = sk;
        p.message_nonce = mnonce;
        p.ultra_auth_id = mode;
        assert_int_equal(nuki_pair_client_new(&c, &p), 0);
        return c;
}

/* Runs example E up to the encrypted Authorization Data; checks every byte we can. */
static void run_e_until_data(NukiPairClient *c, uint32_t expect_aid)
{
        uint8_t out[NUKI_PAIR_OUT_MAX], s[32], pdata[NUKI_PDATA_MAX], plain[64];
        NukiReasm ra;
        uint32_t aid;
        size_t n, pl;
        int plen;

        nuki_reasm_init(&ra, NUKI_REASM_PLAIN);
        assert_int_equal(nuki_pair_client_start(c, out, sizeof(out)), 6);
        assert_hex_equal(out, 6, E_STEP1);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(E_STEP2), out, &n), 0);
        assert_hex_equal(out, n, E_STEP3);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(E_STEP4), out, &n), 0);
        assert_hex_equal(out, n, E_STEP5);
        assert_int_equal(feed_fragments(c, &ra, FRAGS(E_STEP6), out, &n), 0);
        assert_int_equal(nuki_pair_client_security_pin_info(c), 0);
        assert_int_equal(nuki_pair_client_reasm_mode(c), NUKI_REASM_ULTRA_PAIRING_REPLY);

        /* Step 7 is published only before encryption: decrypt ours and compare. */
        assert_int_equal(n, 30 + 16 + 4 + 42 + 2);
        unhex(E_S, s, 32);
        plen = nuki_frame_open(s, out, n, pdata, sizeof(pdata), &aid);
        assert_int_equal(plen, 4 + 42 + 2);
        assert_int_equal(aid, expect_aid);
        assert_int_equal(nuki_get_u32(pdata), expect_aid);
        pl = unhex(E_STEP7_PLAIN, plain, sizeof(plain));
        assert_memory_equal(pdata + 4, plain, pl);
        assert_int_equal(nuki_get_u16(pdata + 4 + pl), nuki_crc16(pdata, 4 + pl));
}

static void finish_e(NukiPairClient *c, const uint8_t *reply, size_t n)
{
        uint8_t out[NUKI_PAIR_OUT_MAX], msg[NUKI_FRAME_MAX];
        NukiPairing res;
        NukiReasm ra;
        size_t len, mlen;

        /* through the reassembly buffer in the mode the client asks for, 20 bytes at a time */
        nuki_reasm_init(&ra, nuki_pair_client_reasm_mode(c));
        for (size_t o = 0; o < n; o += 20) {
                assert_int_equal(nuki_reasm_feed(&ra, reply + o, MIN((size_t) 20, n - o), 0), 0);
                if (o + 20 < n)
                        assert_int_equal(nuki_reasm_pop(&ra, msg, sizeof(msg), &mlen), 0);
        }
        assert_int_equal(nuki_reasm_pop(&ra, msg, sizeof(msg), &mlen), 1);
        assert_int_equal(mlen, n);
        assert_int_equal(nuki_pair_client_feed(c, msg, mlen, out, sizeof(out), &len), 1);
        assert_int_equal(len, 0); /* no confirmation in the Ultra flow */
        assert_int_equal(nuki_pair_client_get_result(c, &res), 0);
        assert_int_equal(res.auth_id, E_AUTH_ID);
        assert_hex_equal(res.uuid, 16, E_UUID);
        assert_hex_equal(res.shared_key, 32, E_S);
        assert_true(res.ultra);
}

static void test_pair_example_e_plain_reply(void **state)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = client_e(NUKI_ULTRA_AUTH_ID_BYTES_7FFFFFFF);
        uint8_t reply[32];
        size_t n;

        run_e_until_data(c, 0xFFFFFF7Fu); /* bytes 7F FF FF FF */
        n = unhex(E_STEP8, reply, sizeof(reply));
        finish_e(c, reply, n);
}

static void test_pair_example_e_encrypted_reply(void **state)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = client_e(NUKI_ULTRA_AUTH_ID_LE_7FFFFFFF);
        uint8_t s[32], nonce[24] = { 7 }, printed[32], reply[NUKI_FRAME_MAX];
        int n;

        run_e_until_data(c, 0x7FFFFFFFu);
        unhex(E_S, s, 32);
        unhex(E_STEP8, printed, sizeof(printed));
        /* (a) a standard encrypted message carrying the printed payload */
        n = nuki_frame_encode_encrypted(s, nonce, 0x7FFFFFFFu, 0x0007, printed + 2, 20, reply,
                                        sizeof(reply));
        assert_true(n > 0);
        finish_e(c, reply, (size_t) n);
}

static void test_pair_example_e_encrypted_no_id_reply(void **state)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = client_e(NUKI_ULTRA_AUTH_ID_APP_ID);
        uint8_t s[32], nonce[24] = { 9 }, printed[32], reply[NUKI_FRAME_MAX];
        int n;

        run_e_until_data(c, E_APP_ID);
        unhex(E_S, s, 32);
        /* (b) encrypted, PDATA exactly the printed bytes (CRC over cmd + payload only) */
        unhex(E_STEP8, printed, sizeof(printed));
        n = nuki_frame_seal(s, nonce, 0, printed, 24, reply, sizeof(reply));
        assert_true(n > 0);
        finish_e(c, reply, (size_t) n);
}

/* Replace the CRC of a plain frame after changing it. */
static void fix_crc(uint8_t *f, size_t n)
{
        nuki_put_u16(f + n - 2, nuki_crc16(f, n - 2));
}

static NukiPairClient *client_a_at_step8(void)
{
        static uint8_t sk[32], nabf[32];
        uint8_t out[NUKI_PAIR_OUT_MAX], in[128];
        NukiPairClient *c;
        NukiPairParams p;
        size_t n, l;

        unhex(A_CLIENT_SK, sk, 32);
        unhex(A_NABF, nabf, 32);
        nuki_pair_params_init(&p);
        p.id_type = NUKI_ID_TYPE_APP;
        p.name = A_NAME;
        p.secret_key = sk;
        p.client_nonce = nabf;
        assert_int_equal(nuki_pair_client_new(&c, &p), 0);
        assert_true(nuki_pair_client_start(c, out, sizeof(out)) > 0);
        l = unhex(A_STEP2_FRAG1 A_STEP2_FRAG2, in, sizeof(in));
        assert_int_equal(nuki_pair_client_feed(c, in, l, out, sizeof(out), &n), 0);
        l = unhex(A_STEP4_FRAG1 A_STEP4_FRAG2, in, sizeof(in));
        assert_int_equal(nuki_pair_client_feed(c, in, l, out, sizeof(out), &n), 0);
        l = unhex(A_STEP6_FRAG1 A_STEP6_FRAG2, in, sizeof(in));
        assert_int_equal(nuki_pair_client_feed(c, in, l, out, sizeof(out), &n), 0);
        return c;
}

static void test_pair_wrong_lock_authenticator(void **state)
{
        for (size_t bit = 0; bit < 8 * 84; bit += 37) {
                _cleanup_(nuki_pair_client_freep) NukiPairClient *c = client_a_at_step8();
                uint8_t in[128], out[NUKI_PAIR_OUT_MAX];
                size_t l, n = 99;
                int r;

                l = unhex(A_STEP8_FRAG1 A_STEP8_FRAG2 A_STEP8_FRAG3 A_STEP8_FRAG4 A_STEP8_FRAG5, in,
                          sizeof(in));
                in[2 + bit / 8] ^= (uint8_t) (1U << (bit % 8));
                fix_crc(in, l);
                r = nuki_pair_client_feed(c, in, l, out, sizeof(out), &n);
                /* any change to the authenticator or to what it covers is caught */
                assert_int_equal(r, -EKEYREJECTED);
                assert_int_equal(n, 0);
                assert_int_equal(nuki_pair_client_state(c), NUKI_PAIR_FAILED);
                /* a failed machine stays failed */
                assert_int_equal(nuki_pair_client_feed(c, in, l, out, sizeof(out), &n), -EPROTO);
        }
}

static void test_pair_bad_crc_and_unexpected(void **state)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = client_a_at_step8();
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c2 = client_a_at_step8();
        uint8_t in[128], out[NUKI_PAIR_OUT_MAX];
        size_t l, n;

        l = unhex(A_STEP8_FRAG1 A_STEP8_FRAG2 A_STEP8_FRAG3 A_STEP8_FRAG4 A_STEP8_FRAG5, in, sizeof(in));
        in[l - 1] ^= 1;
        assert_int_equal(nuki_pair_client_feed(c, in, l, out, sizeof(out), &n), -EBADMSG);
        assert_int_equal(nuki_pair_client_state(c), NUKI_PAIR_FAILED);

        /* a Status where the Authorization-ID belongs */
        l = unhex(A_STEP10, in, sizeof(in));
        assert_int_equal(nuki_pair_client_feed(c2, in, l, out, sizeof(out), &n), -EPROTO);
        /* truncated */
        assert_int_equal(nuki_pair_client_feed(c2, in, 3, out, sizeof(out), &n), -EPROTO);
}

static void test_pair_lock_errors(void **state)
{
        static const struct {
                uint8_t code;
                int r;
        } t[] = {
                { NUKI_P_ERROR_NOT_PAIRING, -EPERM },    { NUKI_P_ERROR_BAD_AUTHENTICATOR, -EACCES },
                { NUKI_P_ERROR_BAD_PARAMETER, -EINVAL }, { NUKI_P_ERROR_MAX_USER, -ENOSPC },
                { NUKI_K_ERROR_BAD_PIN, -EREMOTEIO },    { NUKI_ERROR_UNKNOWN, -EREMOTEIO },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_(nuki_pair_client_freep) NukiPairClient *c = NULL;
                uint8_t out[NUKI_PAIR_OUT_MAX], err[8], p3[3] = { t[i].code, 0x01, 0x00 };
                NukiPairParams p;
                size_t n;
                int l;

                nuki_pair_params_init(&p);
                assert_int_equal(nuki_pair_client_new(&c, &p), 0);
                assert_true(nuki_pair_client_start(c, out, sizeof(out)) > 0);
                l = nuki_frame_encode_plain(NUKI_CMD_ERROR_REPORT, p3, 3, err, sizeof(err));
                assert_int_equal(l, 7);
                assert_int_equal(nuki_pair_client_feed(c, err, (size_t) l, out, sizeof(out), &n), t[i].r);
                assert_int_equal(nuki_pair_client_lock_error(c), t[i].code);
                assert_int_equal(nuki_pair_client_state(c), NUKI_PAIR_FAILED);
        }
}

/* Shuttle frames between a client and a lock in memory, in 20-byte indications. */
static void transfer(NukiReasm *ra, NukiReasmMode mode, const uint8_t *buf, size_t n, uint8_t *msg,
                     size_t *mlen)
{
        nuki_reasm_set_mode(ra, mode);
        *mlen = 0;
        for (size_t o = 0; o < n; o += 20) {
                int r;
                assert_int_equal(nuki_reasm_feed(ra, buf + o, MIN((size_t) 20, n - o), 1000 + o), 0);
                r = nuki_reasm_pop(ra, msg, NUKI_FRAME_MAX, mlen);
                assert_int_equal(r, o + 20 >= n ? 1 : 0);
        }
}

typedef struct Run {
        bool ultra, pairing_mode, full, pin_set;
        uint32_t lock_pin, client_pin;
        NukiUltraReply reply;
        NukiUltraAuthId aid;
        int expect_client, expect_lock;
} Run;

static void run_pair(const Run *run)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = NULL;
        _cleanup_(nuki_pair_lock_freep) NukiPairLock *l = NULL;
        uint8_t a[NUKI_PAIR_OUT_MAX], b[NUKI_PAIR_OUT_MAX], msg[NUKI_FRAME_MAX];
        NukiPairParams cp;
        NukiPairLockParams lp;
        NukiReasm to_lock, to_client;
        size_t an, bn, mlen;
        int rc = 0, rl = 0;

        nuki_pair_params_init(&cp);
        cp.app_id = 0x12345678;
        cp.name = "lockhub test hub with a name that is longer than 32 bytes";
        cp.security_pin = run->client_pin;
        cp.ultra_auth_id = run->aid;
        nuki_pair_lock_params_init(&lp);
        lp.ultra = run->ultra;
        lp.pairing_mode = run->pairing_mode;
        lp.full = run->full;
        lp.auth_id = 77;
        lp.security_pin = run->lock_pin;
        lp.security_pin_set = run->pin_set;
        lp.ultra_reply = run->reply;
        assert_int_equal(nuki_pair_client_new(&c, &cp), 0);
        assert_int_equal(nuki_pair_lock_new(&l, &lp), 0);
        nuki_reasm_init(&to_lock, NUKI_REASM_PLAIN);
        nuki_reasm_init(&to_client, NUKI_REASM_PLAIN);

        an = (size_t) nuki_pair_client_start(c, a, sizeof(a));
        for (unsigned round = 0; round < 10 && an > 0; round++) {
                transfer(&to_lock, nuki_pair_lock_reasm_mode(l), a, an, msg, &mlen);
                rl = nuki_pair_lock_feed(l, msg, mlen, b, sizeof(b), &bn);
                an = 0;
                if (bn == 0)
                        break;
                transfer(&to_client, nuki_pair_client_reasm_mode(c), b, bn, msg, &mlen);
                rc = nuki_pair_client_feed(c, msg, mlen, a, sizeof(a), &an);
                if (rc != 0)
                        break;
        }
        assert_int_equal(rc, run->expect_client);
        assert_int_equal(rl, run->expect_lock);
        if (rc == 1) {
                NukiPairing x, y;
                assert_int_equal(nuki_pair_client_get_result(c, &x), 0);
                assert_int_equal(nuki_pair_lock_get_result(l, &y), 0);
                assert_memory_equal(x.shared_key, y.shared_key, 32);
                assert_int_equal(x.auth_id, 77);
                assert_int_equal(y.auth_id, 77);
                assert_memory_equal(x.uuid, y.uuid, 16);
                assert_int_equal(y.app_id, 0x12345678);
                assert_string_equal(y.name, "lockhub test hub with a name tha");
                assert_int_equal(x.ultra, run->ultra);
                assert_int_equal(y.id_type, run->ultra ? NUKI_ID_TYPE_APP : NUKI_ID_TYPE_BRIDGE);
                assert_memory_equal(x.peer_public_key, nuki_pair_lock_public_key(l), 32);
                assert_memory_equal(y.peer_public_key, nuki_pair_client_public_key(c), 32);
        } else
                assert_int_equal(nuki_pair_client_state(c), NUKI_PAIR_FAILED);
}

static void test_pair_in_memory(void **state)
{
        static const Run runs[] = {
                { .pairing_mode = true, .expect_client = 1, .expect_lock = 1 },
                { .pairing_mode = false, .expect_client = -EPERM, .expect_lock = -EPERM },
                { .pairing_mode = true, .full = true, .expect_client = -ENOSPC, .expect_lock = -ENOSPC },
                { .ultra = true,
                  .pairing_mode = true,
                  .pin_set = true,
                  .lock_pin = 123456,
                  .client_pin = 123456,
                  .reply = NUKI_ULTRA_REPLY_ENCRYPTED,
                  .expect_client = 1,
                  .expect_lock = 1 },
                { .ultra = true,
                  .pairing_mode = true,
                  .pin_set = true,
                  .lock_pin = 123456,
                  .client_pin = 123456,
                  .reply = NUKI_ULTRA_REPLY_ENCRYPTED_NO_ID,
                  .aid = NUKI_ULTRA_AUTH_ID_LE_7FFFFFFF,
                  .expect_client = 1,
                  .expect_lock = 1 },
                { .ultra = true,
                  .pairing_mode = true,
                  .reply = NUKI_ULTRA_REPLY_PLAIN,
                  .aid = NUKI_ULTRA_AUTH_ID_APP_ID,
                  .expect_client = 1,
                  .expect_lock = 1 },
                { .ultra = true,
                  .pairing_mode = true,
                  .pin_set = true,
                  .lock_pin = 123456,
                  .client_pin = 654321,
                  .expect_client = -EREMOTEIO,
                  .expect_lock = -EREMOTEIO },
                { .ultra = true,
                  .pairing_mode = true,
                  .full = true,
                  .expect_client = -ENOSPC,
                  .expect_lock = -ENOSPC },
        };

        for (size_t i = 0; i < ELEMENTSOF(runs); i++)
                run_pair(&runs[i]);
}

/* The lock rejects a client whose authenticator is wrong. */
static void test_lock_rejects_bad_authenticator(void **state)
{
        _cleanup_(nuki_pair_lock_freep) NukiPairLock *l = NULL;
        NukiPairLockParams lp;
        NukiKeyPair kp;
        uint8_t out[NUKI_PAIR_OUT_MAX], in[64], bogus[32] = { 1 };
        size_t n;
        int len;

        nuki_pair_lock_params_init(&lp);
        assert_int_equal(nuki_pair_lock_new(&l, &lp), 0);
        assert_int_equal(nuki_keypair_generate(&kp), 0);
        len = (int) unhex(A_STEP1, in, sizeof(in));
        assert_int_equal(nuki_pair_lock_feed(l, in, (size_t) len, out, sizeof(out), &n), 0);
        assert_int_equal(n, 36);
        len = nuki_frame_encode_plain(NUKI_CMD_PUBLIC_KEY, kp.public_key, 32, in, sizeof(in));
        assert_int_equal(nuki_pair_lock_feed(l, in, (size_t) len, out, sizeof(out), &n), 0);
        assert_int_equal(nuki_get_u16(out), NUKI_CMD_CHALLENGE);
        len = nuki_frame_encode_plain(NUKI_CMD_AUTHORIZATION_AUTHENTICATOR, bogus, 32, in, sizeof(in));
        assert_int_equal(nuki_pair_lock_feed(l, in, (size_t) len, out, sizeof(out), &n), -EACCES);
        assert_hex_equal(out, n, "120011050073DA"); /* P_ERROR_BAD_AUTHENTICATOR for 0x0005 */
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crypto_vectors),
                cmocka_unit_test(test_vector_e_printed_key_is_wrong),
                cmocka_unit_test(test_low_order_point),
                cmocka_unit_test(test_pair_example_a),
                cmocka_unit_test(test_pair_example_d),
                cmocka_unit_test(test_pair_example_e_plain_reply),
                cmocka_unit_test(test_pair_example_e_encrypted_reply),
                cmocka_unit_test(test_pair_example_e_encrypted_no_id_reply),
                cmocka_unit_test(test_pair_wrong_lock_authenticator),
                cmocka_unit_test(test_pair_bad_crc_and_unexpected),
                cmocka_unit_test(test_pair_lock_errors),
                cmocka_unit_test(test_pair_in_memory),
                cmocka_unit_test(test_lock_rejects_bad_authenticator),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
