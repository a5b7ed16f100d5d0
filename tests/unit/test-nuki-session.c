/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Session helpers: a client session against the lock-side session, in memory. Challenge
 * before every command that needs one (and never twice), PIN placement per generation,
 * the reply sequences (ACCEPTED → Keyturner States → COMPLETE, lists, error reports), and
 * the lock's checks (stale nonce, wrong PIN, wrong key).
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-session.h"
#include "nuki-vectors.h"

typedef struct World {
        NukiSession c;
        NukiLockSession l;
        uint8_t key[32];
        uint8_t buf[NUKI_FRAME_MAX];
        size_t len;
} World;

static void world_init(World *w, bool ultra, uint32_t client_pin, uint32_t lock_pin)
{
        memset(w, 0, sizeof(*w));
        unhex(A_S, w->key, 32);
        nuki_session_init(&w->c, w->key, 2, client_pin, ultra);
        nuki_lock_session_init(&w->l, w->key, 2, lock_pin, ultra);
}

/* Lock receives the client's frame in w->buf. */
static int lock_receive(World *w, NukiMsg *m)
{
        return nuki_lock_session_receive(&w->l, w->buf, w->len, m);
}

/* Lock sends m; client feeds it. */
static int lock_send(World *w, const NukiMsg *m, NukiMsg *ret)
{
        uint8_t f[NUKI_FRAME_MAX];
        int n = nuki_lock_session_send(&w->l, m, NULL, f, sizeof(f));

        assert_true(n > 0);
        return nuki_session_feed(&w->c, f, (size_t) n, NULL, ret, w->buf, sizeof(w->buf), &w->len);
}

static int lock_send_status(World *w, uint8_t st, NukiMsg *ret)
{
        NukiMsg m;
        nuki_msg_init(&m, NUKI_CMD_STATUS, NUKI_VARIANT_DEFAULT);
        m.status.status = st;
        return lock_send(w, &m, ret);
}

/* Client begins cmd; the lock answers the challenge request; returns the command as the lock sees it. */
static int run_challenge(World *w, const NukiMsg *cmd, NukiMsg *seen)
{
        uint8_t f[NUKI_FRAME_MAX];
        NukiMsg m, r;
        int n;

        n = nuki_session_begin(&w->c, cmd, NULL, w->buf, sizeof(w->buf));
        assert_true(n > 0);
        w->len = (size_t) n;
        assert_int_equal(w->c.state, NUKI_SESSION_WAIT_CHALLENGE);
        assert_int_equal(lock_receive(w, &m), 0);
        assert_int_equal(m.command, NUKI_CMD_REQUEST_DATA);
        assert_int_equal(m.request_data.command, NUKI_CMD_CHALLENGE);
        n = nuki_lock_session_challenge(&w->l, NULL, NULL, f, sizeof(f));
        assert_true(n > 0);
        assert_int_equal(nuki_session_feed(&w->c, f, (size_t) n, NULL, &r, w->buf, sizeof(w->buf), &w->len),
                         NUKI_SESSION_PENDING);
        assert_true(w->len > 0);
        assert_int_equal(w->c.state, NUKI_SESSION_WAIT_REPLY);
        return lock_receive(w, seen);
}

static void test_lock_action_sequence(void **state)
{
        World w;
        NukiMsg cmd, seen, r;
        uint8_t sent[NUKI_FRAME_MAX];
        size_t sent_len;

        world_init(&w, false, 0, 0);
        nuki_msg_init(&cmd, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
        cmd.n_optional = 0;
        cmd.lock_action.action = NUKI_LOCK_ACTION_UNLOCK;
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        memcpy(sent, w.buf, w.len);
        sent_len = w.len;
        assert_int_equal(seen.command, NUKI_CMD_LOCK_ACTION);
        assert_int_equal(seen.lock_action.action, NUKI_LOCK_ACTION_UNLOCK);

        assert_int_equal(lock_send_status(&w, NUKI_STATUS_ACCEPTED, &r), NUKI_SESSION_PROGRESS);
        nuki_msg_init(&r, NUKI_CMD_KEYTURNER_STATES, NUKI_VARIANT_DEFAULT);
        r.keyturner_states.lock_state = NUKI_LOCK_STATE_UNLOCKING;
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_PROGRESS);
        assert_int_equal(seen.keyturner_states.lock_state, NUKI_LOCK_STATE_UNLOCKING);
        r.keyturner_states.lock_state = NUKI_LOCK_STATE_UNLOCKED;
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_PROGRESS);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &r), NUKI_SESSION_DONE);
        assert_int_equal(w.c.state, NUKI_SESSION_IDLE);

        /* after the exchange: a pushed Keyturner States, and the bridge 0xF1 status */
        r.keyturner_states.lock_state = NUKI_LOCK_STATE_LOCKED;
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_UNSOLICITED);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_STATE_CHANGED, &r), NUKI_SESSION_UNSOLICITED);

        /* the same challenge cannot be used twice: replay the lock action */
        assert_int_equal(nuki_lock_session_receive(&w.l, sent, sent_len, &seen), NUKI_K_ERROR_BAD_NONCE);
        assert_int_equal(seen.command, NUKI_CMD_LOCK_ACTION);
}

static void test_busy_and_invalid(void **state)
{
        World w;
        NukiMsg cmd;

        world_init(&w, false, 0, 0);
        nuki_msg_init(&cmd, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
        assert_true(nuki_session_begin(&w.c, &cmd, NULL, w.buf, sizeof(w.buf)) > 0);
        assert_int_equal(nuki_session_begin(&w.c, &cmd, NULL, w.buf, sizeof(w.buf)), -EBUSY);
        nuki_session_reset(&w.c);
        /* messages only the lock sends */
        nuki_msg_init(&cmd, NUKI_CMD_KEYTURNER_STATES, NUKI_VARIANT_DEFAULT);
        assert_int_equal(nuki_session_begin(&w.c, &cmd, NULL, w.buf, sizeof(w.buf)), -EINVAL);
}

static void test_keyturner_states_no_challenge(void **state)
{
        World w;
        NukiMsg seen, r;
        uint8_t nonce[24] = { 0 }, pdata[64];
        int n;

        world_init(&w, false, 0, 0);
        n = nuki_session_request(&w.c, NUKI_CMD_KEYTURNER_STATES, nonce, w.buf, sizeof(w.buf));
        assert_int_equal(n, 56);
        w.len = (size_t) n;
        /* fact sheet 2.2: PDATA 02000000 0100 0C00 418D */
        assert_int_equal(nuki_frame_open(w.key, w.buf, w.len, pdata, sizeof(pdata), NULL), 10);
        {
                uint8_t exp[10];
                unhex("02000000"
                      "0100"
                      "0C00"
                      "418D",
                      exp, sizeof(exp));
                assert_memory_equal(pdata, exp, 10);
        }
        assert_int_equal(w.c.state, NUKI_SESSION_WAIT_REPLY);
        assert_int_equal(lock_receive(&w, &seen), 0);
        assert_int_equal(seen.request_data.command, NUKI_CMD_KEYTURNER_STATES);
        nuki_msg_init(&r, NUKI_CMD_KEYTURNER_STATES, NUKI_VARIANT_DEFAULT);
        r.keyturner_states.lock_state = NUKI_LOCK_STATE_LOCKED;
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_DONE);
        assert_int_equal(seen.keyturner_states.lock_state, NUKI_LOCK_STATE_LOCKED);
}

/* Calibration needs challenge and PIN: 2 bytes on gen 1-4, 4 on Ultra. */
static void test_pin_per_generation(void **state)
{
        for (int ultra = 0; ultra <= 1; ultra++) {
                uint32_t pin = ultra ? 123456 : 1234;
                World w;
                NukiMsg cmd, seen, r;
                uint8_t pdata[NUKI_PDATA_MAX];
                int pl;

                world_init(&w, ultra, pin, pin);
                nuki_msg_init(&cmd, NUKI_CMD_REQUEST_CALIBRATION, NUKI_VARIANT_DEFAULT);
                assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
                assert_int_equal(seen.request_calibration.pin, pin);
                pl = nuki_frame_open(w.key, w.buf, w.len, pdata, sizeof(pdata), NULL);
                assert_int_equal(pl, 4 + 2 + 32 + (ultra ? 4 : 2) + 2);
                if (ultra) {
                        uint8_t exp[4] = { 0x40, 0xE2, 0x01, 0x00 };
                        assert_memory_equal(pdata + 38, exp, 4);
                } else {
                        uint8_t exp[2] = { 0xD2, 0x04 };
                        assert_memory_equal(pdata + 38, exp, 2);
                }
                /* open question 3: ACCEPTED first is fine */
                assert_int_equal(lock_send_status(&w, NUKI_STATUS_ACCEPTED, &r), NUKI_SESSION_PROGRESS);
                assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &r), NUKI_SESSION_DONE);
        }
}

static void test_wrong_pin_and_error_report(void **state)
{
        World w;
        NukiMsg cmd, seen, r;
        uint8_t f[NUKI_FRAME_MAX];
        int n;

        world_init(&w, false, 1111, 2222);
        nuki_msg_init(&cmd, NUKI_CMD_VERIFY_SECURITY_PIN, NUKI_VARIANT_DEFAULT);
        assert_int_equal(run_challenge(&w, &cmd, &seen), NUKI_K_ERROR_BAD_PIN);
        n = nuki_lock_session_send_error(&w.l, NUKI_K_ERROR_BAD_PIN, seen.command, NULL, f, sizeof(f));
        assert_int_equal(nuki_session_feed(&w.c, f, (size_t) n, NULL, &r, w.buf, sizeof(w.buf), &w.len),
                         -EREMOTEIO);
        assert_int_equal(nuki_session_lock_error(&w.c), NUKI_K_ERROR_BAD_PIN);
        assert_int_equal(r.error_report.command, NUKI_CMD_VERIFY_SECURITY_PIN);
        assert_int_equal(w.c.state, NUKI_SESSION_IDLE);
}

static void test_stale_challenge(void **state)
{
        World w;
        NukiMsg cmd, seen;
        uint8_t f[NUKI_FRAME_MAX];

        world_init(&w, false, 0, 0);
        /* the lock issued a challenge, then another one: the first is no longer valid */
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_CONFIG, NUKI_VARIANT_DEFAULT);
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        nuki_session_reset(&w.c);
        assert_true(nuki_session_begin(&w.c, &cmd, NULL, w.buf, sizeof(w.buf)) > 0);
        {
                uint8_t nk1[32] = { 1 }, nk2[32] = { 2 };
                NukiMsg r;
                int n = nuki_lock_session_challenge(&w.l, nk1, NULL, f, sizeof(f));
                assert_int_equal(nuki_session_feed(&w.c, f, (size_t) n, NULL, &r, w.buf, sizeof(w.buf),
                                                   &w.len),
                                 NUKI_SESSION_PENDING);
                (void) nuki_lock_session_challenge(&w.l, nk2, NULL, f, sizeof(f));
        }
        assert_int_equal(lock_receive(&w, &seen), NUKI_K_ERROR_BAD_NONCE);
        /* no challenge at all */
        assert_int_equal(lock_receive(&w, &seen), NUKI_K_ERROR_BAD_NONCE);
}

static void test_wrong_key(void **state)
{
        World w, other;
        NukiMsg seen, r;
        uint8_t f[NUKI_FRAME_MAX];
        int n;

        world_init(&w, false, 0, 0);
        world_init(&other, false, 0, 0);
        unhex(D_S, other.key, 32);
        nuki_lock_session_init(&other.l, other.key, 2, 0, false);
        n = nuki_session_request(&w.c, NUKI_CMD_KEYTURNER_STATES, NULL, w.buf, sizeof(w.buf));
        w.len = (size_t) n;
        assert_int_equal(nuki_lock_session_receive(&other.l, w.buf, w.len, &seen),
                         NUKI_K_ERROR_NOT_AUTHORIZED);
        /* another auth-id with the right key */
        nuki_lock_session_init(&other.l, w.key, 3, 0, false);
        assert_int_equal(nuki_lock_session_receive(&other.l, w.buf, w.len, &seen),
                         NUKI_K_ERROR_NOT_AUTHORIZED);
        /* the client rejects a reply under another key, and abandons the exchange */
        n = nuki_lock_session_send_status(&other.l, 0, NULL, f, sizeof(f));
        nuki_lock_session_init(&other.l, other.key, 2, 0, false);
        n = nuki_lock_session_send_status(&other.l, 0, NULL, f, sizeof(f));
        assert_int_equal(nuki_session_feed(&w.c, f, (size_t) n, NULL, &r, w.buf, sizeof(w.buf), &w.len),
                         -EKEYREJECTED);
        assert_int_equal(w.c.state, NUKI_SESSION_IDLE);
        /* garbage */
        assert_true(nuki_lock_session_receive(&w.l, f, 10, &seen) < 0);
        /* plain frames the lock sends on the keyturner GDIO */
        n = nuki_lock_plain_status(NUKI_STATUS_STATE_CHANGED, f, sizeof(f));
        {
                uint8_t exp[5];
                unhex(FORUM_STATUS_F1, exp, 5);
                assert_int_equal(n, 5);
                assert_memory_equal(f, exp, 5);
        }
        n = nuki_lock_plain_error(NUKI_ERROR_BAD_CRC, 0x0001, f, sizeof(f));
        {
                uint8_t exp[7];
                unhex(FORUM_ERROR_BAD_CRC, exp, 7);
                assert_int_equal(n, 7);
                assert_memory_equal(f, exp, 7);
        }
}

static void test_lists(void **state)
{
        World w;
        NukiMsg cmd, seen, r;

        /* keypad codes: count 2 → two entries → done */
        world_init(&w, false, 1234, 1234);
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_KEYPAD_CODES, NUKI_VARIANT_DEFAULT);
        cmd.request_keypad_codes.count = 10;
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        nuki_msg_init(&r, NUKI_CMD_KEYPAD_CODE_COUNT, NUKI_VARIANT_DEFAULT);
        r.keypad_code_count.count = 2;
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_PROGRESS);
        nuki_msg_init(&r, NUKI_CMD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        r.n_optional = 0;
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_PROGRESS);
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_DONE);

        /* an empty list ends at its count */
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_TIME_CONTROL_ENTRIES, NUKI_VARIANT_DEFAULT);
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        nuki_msg_init(&r, NUKI_CMD_TIME_CONTROL_ENTRY_COUNT, NUKI_VARIANT_DEFAULT);
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_DONE);

        /* log entries: fewer than requested, ended by Status COMPLETE ([PY]) */
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_LOG_ENTRIES, NUKI_VARIANT_DEFAULT);
        cmd.request_log_entries.count = 5;
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        nuki_msg_init(&r, NUKI_CMD_LOG_ENTRY, NUKI_VARIANT_DEFAULT);
        r.log_entry.type = 2;
        r.log_entry.data.len = 4;
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_PROGRESS);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &seen), NUKI_SESSION_DONE);

        /* authorization entries: total 3, offset 1 → two entries */
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_AUTHORIZATION_ENTRIES, NUKI_VARIANT_DEFAULT);
        cmd.n_optional = 0;
        cmd.request_authorization_entries.offset = 1;
        cmd.request_authorization_entries.count = 10;
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        assert_int_equal(seen.request_authorization_entries.offset, 1);
        nuki_msg_init(&r, NUKI_CMD_AUTHORIZATION_ENTRY_COUNT, NUKI_VARIANT_DEFAULT);
        r.authorization_entry_count.count = 3;
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_PROGRESS);
        nuki_msg_init(&r, NUKI_CMD_AUTHORIZATION_ENTRY, NUKI_VARIANT_DEFAULT);
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_PROGRESS);
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_DONE);

        /* single replies */
        nuki_msg_init(&cmd, NUKI_CMD_ADD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        nuki_msg_init(&r, NUKI_CMD_KEYPAD_CODE_ID, NUKI_VARIANT_DEFAULT);
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_DONE);
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_CONFIG, NUKI_VARIANT_DEFAULT);
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        nuki_msg_init(&r, NUKI_CMD_CONFIG, NUKI_VARIANT_DEFAULT);
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_DONE);
}

/* A log list that ended by its count may still be followed by the lock's Status COMPLETE
 * ([PY] waits for it). It must not fail or finish the next exchange. */
static void log_list_by_count(World *w)
{
        NukiMsg cmd, seen, r;

        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_LOG_ENTRIES, NUKI_VARIANT_DEFAULT);
        cmd.request_log_entries.count = 2;
        assert_int_equal(run_challenge(w, &cmd, &seen), 0);
        nuki_msg_init(&r, NUKI_CMD_LOG_ENTRY_COUNT, NUKI_VARIANT_DEFAULT);
        r.log_entry_count.count = 7;
        assert_int_equal(lock_send(w, &r, &seen), NUKI_SESSION_PROGRESS);
        nuki_msg_init(&r, NUKI_CMD_LOG_ENTRY, NUKI_VARIANT_DEFAULT);
        r.log_entry.type = 2;
        r.log_entry.data.len = 4;
        assert_int_equal(lock_send(w, &r, &seen), NUKI_SESSION_PROGRESS);
        assert_int_equal(lock_send(w, &r, &seen), NUKI_SESSION_DONE);
}

static void test_trailing_status_after_list(void **state)
{
        World w;
        NukiMsg cmd, seen, r;
        uint8_t f[NUKI_FRAME_MAX];
        int n;

        /* 1. the stray Status while the next command waits for its challenge */
        world_init(&w, false, 1234, 1234);
        log_list_by_count(&w);
        nuki_msg_init(&cmd, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
        cmd.n_optional = 0;
        cmd.lock_action.action = NUKI_LOCK_ACTION_LOCK;
        n = nuki_session_begin(&w.c, &cmd, NULL, w.buf, sizeof(w.buf));
        assert_true(n > 0);
        w.len = (size_t) n;
        assert_int_equal(lock_receive(&w, &seen), 0);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &r), NUKI_SESSION_UNSOLICITED);
        assert_int_equal(w.c.state, NUKI_SESSION_WAIT_CHALLENGE);
        n = nuki_lock_session_challenge(&w.l, NULL, NULL, f, sizeof(f));
        assert_true(n > 0);
        assert_int_equal(nuki_session_feed(&w.c, f, (size_t) n, NULL, &r, w.buf, sizeof(w.buf), &w.len),
                         NUKI_SESSION_PENDING);
        assert_int_equal(lock_receive(&w, &seen), 0);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_ACCEPTED, &r), NUKI_SESSION_PROGRESS);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &r), NUKI_SESSION_DONE);

        /* 2. the stray Status before requested data: not taken for the data */
        log_list_by_count(&w);
        n = nuki_session_request(&w.c, NUKI_CMD_KEYTURNER_STATES, NULL, w.buf, sizeof(w.buf));
        assert_true(n > 0);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &r), NUKI_SESSION_UNSOLICITED);
        assert_int_equal(w.c.state, NUKI_SESSION_WAIT_REPLY);
        nuki_msg_init(&r, NUKI_CMD_KEYTURNER_STATES, NUKI_VARIANT_DEFAULT);
        assert_int_equal(lock_send(&w, &r, &seen), NUKI_SESSION_DONE);

        /* 3. a lock that sends no trailing Status: the next COMPLETE is honoured */
        log_list_by_count(&w);
        assert_int_equal(run_challenge(&w, &cmd, &seen), 0);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &r), NUKI_SESSION_DONE);

        /* 4. and only one stray Status is ever ignored */
        log_list_by_count(&w);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &r), NUKI_SESSION_UNSOLICITED);
        n = nuki_session_request(&w.c, NUKI_CMD_KEYTURNER_STATES, NULL, w.buf, sizeof(w.buf));
        assert_true(n > 0);
        assert_int_equal(lock_send_status(&w, NUKI_STATUS_COMPLETE, &r), NUKI_SESSION_DONE);
}

static void test_classification(void **state)
{
        assert_true(nuki_command_needs_challenge(NUKI_CMD_LOCK_ACTION));
        assert_false(nuki_command_needs_pin(NUKI_CMD_LOCK_ACTION));
        assert_true(nuki_command_needs_challenge(NUKI_CMD_SIMPLE_LOCK_ACTION));
        assert_true(nuki_command_needs_challenge(NUKI_CMD_KEYPAD_ACTION));
        assert_true(nuki_command_needs_challenge(NUKI_CMD_REQUEST_ADVANCED_CONFIG));
        assert_false(nuki_command_needs_challenge(NUKI_CMD_REQUEST_DATA));
        static const uint16_t with_pin[] = { 0x0008, 0x0009, 0x000B, 0x0013, 0x0019, 0x001A, 0x001D,
                                             0x0020, 0x0021, 0x0025, 0x0031, 0x0034, 0x0035, 0x0039,
                                             0x003B, 0x003C, 0x003F, 0x0041, 0x0043, 0x0046, 0x0047 };
        for (size_t i = 0; i < ELEMENTSOF(with_pin); i++) {
                assert_true(nuki_command_needs_challenge(with_pin[i]));
                assert_true(nuki_command_needs_pin(with_pin[i]));
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lock_action_sequence),
                cmocka_unit_test(test_busy_and_invalid),
                cmocka_unit_test(test_keyturner_states_no_challenge),
                cmocka_unit_test(test_pin_per_generation),
                cmocka_unit_test(test_wrong_pin_and_error_report),
                cmocka_unit_test(test_stale_challenge),
                cmocka_unit_test(test_wrong_key),
                cmocka_unit_test(test_lists),
                cmocka_unit_test(test_trailing_status_after_list),
                cmocka_unit_test(test_classification),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
