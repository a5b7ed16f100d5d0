/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keypad codes without a lock: each code rule with its name and message, the mapping to
 * and from the Nuki keypad code fields (down to the bytes of an encoded Add Keypad Code),
 * and the planner for every drift case under both drift policies.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "lockhub/codes.h"
#include "lockhub/nuki-cmd.h"

#define SEC UINT64_C(1000000)

static LockCode code(int id, const char *digits, const char *name)
{
        LockCode c;

        lock_code_init(&c);
        c.id = id;
        snprintf(c.digits, sizeof c.digits, "%s", digits);
        snprintf(c.name, sizeof c.name, "%s", name);
        return c;
}

static void test_rules(void **state)
{
        LockCode c = code(-1, "345678", "Alice");
        const char *others[] = { "999999", NULL, "345679" };

        assert_int_equal(codes_check(&c, others, 3), CODE_RULE_OK);
        assert_int_equal(codes_check_digits("34567"), CODE_RULE_LENGTH);
        assert_int_equal(codes_check_digits("3456789"), CODE_RULE_LENGTH);
        assert_int_equal(codes_check_digits(""), CODE_RULE_LENGTH);
        assert_int_equal(codes_check_digits(NULL), CODE_RULE_LENGTH);
        assert_int_equal(codes_check_digits("345078"), CODE_RULE_DIGITS);
        assert_int_equal(codes_check_digits("34a678"), CODE_RULE_DIGITS);
        assert_int_equal(codes_check_digits("34 678"), CODE_RULE_DIGITS);
        assert_int_equal(codes_check_digits("123456"), CODE_RULE_PREFIX);
        assert_int_equal(codes_check_digits("129999"), CODE_RULE_PREFIX);
        assert_int_equal(codes_check_digits("213456"), CODE_RULE_OK);
        /* the order of the rules is fixed: a code with a 0 that starts with 12 breaks "digits" */
        assert_int_equal(codes_check_digits("120456"), CODE_RULE_DIGITS);

        others[1] = "345678";
        assert_int_equal(codes_check(&c, others, 3), CODE_RULE_DUPLICATE);

        c = code(-1, "345678", "");
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_NAME);
        c = code(-1, "345678", "A\tB");
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_NAME);
        c = code(-1, "345678", "J\xc3\xbcrgen");
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_OK);
        c = code(-1, "345678", "bad\xc3");
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_NAME);
        c = code(-1, "345678", "\xc0\xafoverlong");
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_NAME);

        c = code(-1, "345678", "Bob");
        c.valid_from_usec = 2000 * SEC;
        c.valid_until_usec = 1000 * SEC;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_DATE_RANGE);
        c.valid_until_usec = 2000 * SEC;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_DATE_RANGE);
        c.valid_until_usec = 3000 * SEC;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_OK);
        c.weekdays = 0;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_WEEKDAYS);
        c.weekdays = 0x80;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_WEEKDAYS);
        c.weekdays = 0x1f;
        c.time_from_min = 8 * 60;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_TIME_WINDOW);
        c.time_until_min = 8 * 60;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_TIME_WINDOW);
        c.time_until_min = 1440;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_TIME_WINDOW);
        c.time_until_min = 17 * 60 + 30;
        assert_int_equal(codes_check(&c, NULL, 0), CODE_RULE_OK);

        /* every rule has its own name and message */
        for (int i = 0; i < _CODE_RULE_MAX; i++) {
                assert_non_null(code_rule_to_string((CodeRule) i));
                for (int j = 0; j < i; j++) {
                        assert_string_not_equal(code_rule_to_string((CodeRule) i),
                                                code_rule_to_string((CodeRule) j));
                        assert_string_not_equal(code_rule_message((CodeRule) i),
                                                code_rule_message((CodeRule) j));
                }
        }
        assert_string_equal(code_rule_message(CODE_RULE_PREFIX), "A code must not start with \"12\".");
}

/* 2026-03-01 00:00:00 UTC and 2026-03-31 18:30:15 UTC */
#define T_FROM  UINT64_C(1772323200)
#define T_UNTIL UINT64_C(1774981815)

static void test_nuki_mapping(void **state)
{
        LockCode c = code(-1, "345678", "Cleaner"), back;
        NukiMsg m, e;
        uint8_t buf[256];
        int n;

        c.valid_from_usec = T_FROM * SEC;
        c.valid_until_usec = T_UNTIL * SEC + 999999; /* below the lock's resolution */
        c.weekdays = 0x01 | 0x04;                    /* Monday and Wednesday */
        c.time_from_min = 9 * 60 + 15;
        c.time_until_min = 12 * 60;

        nuki_msg_init(&m, NUKI_CMD_ADD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        assert_int_equal(codes_to_nuki(&c, &m), 0);
        assert_int_equal(m.add_keypad_code.code, 345678);
        assert_string_equal(m.add_keypad_code.name, "Cleaner");
        assert_true(m.add_keypad_code.time_limited);
        assert_int_equal(m.add_keypad_code.allowed_from.year, 2026);
        assert_int_equal(m.add_keypad_code.allowed_from.month, 3);
        assert_int_equal(m.add_keypad_code.allowed_from.day, 1);
        assert_int_equal(m.add_keypad_code.allowed_until.day, 31);
        assert_int_equal(m.add_keypad_code.allowed_until.hour, 18);
        assert_int_equal(m.add_keypad_code.allowed_until.minute, 30);
        assert_int_equal(m.add_keypad_code.allowed_until.second, 15);
        assert_int_equal(m.add_keypad_code.weekdays, 0x40 | 0x10); /* Nuki: bit 6 Monday */
        assert_int_equal(m.add_keypad_code.from_time.hour, 9);
        assert_int_equal(m.add_keypad_code.from_time.minute, 15);
        assert_int_equal(m.add_keypad_code.until_time.hour, 12);

        /* the bytes on the wire: code u32 LE, name[20], time_limited, from[7], until[7], weekdays, from,
         * until */
        n = nuki_msg_encode_payload(&m, 2, buf, sizeof buf);
        assert_true(n > 0);
        assert_memory_equal(buf, "\x4e\x46\x05\x00", 4); /* 345678 = 0x05464E */
        assert_memory_equal(buf + 4, "Cleaner\0", 8);
        assert_int_equal(buf[24], 1);
        assert_memory_equal(buf + 25, "\xea\x07\x03\x01\x00\x00\x00", 7);
        assert_memory_equal(buf + 32, "\xea\x07\x03\x1f\x12\x1e\x0f", 7);
        assert_int_equal(buf[39], 0x50);
        assert_memory_equal(buf + 40, "\x09\x0f\x0c\x00", 4);

        /* what the lock reports back maps to the same code */
        nuki_msg_init(&e, NUKI_CMD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        e.keypad_code.code_id = 7;
        e.keypad_code.code = 345678;
        memcpy(e.keypad_code.name, "Cleaner", 8);
        e.keypad_code.enabled = true;
        e.keypad_code.time_limited = true;
        e.keypad_code.allowed_from = m.add_keypad_code.allowed_from;
        e.keypad_code.allowed_until = m.add_keypad_code.allowed_until;
        e.keypad_code.weekdays = m.add_keypad_code.weekdays;
        e.keypad_code.from_time = m.add_keypad_code.from_time;
        e.keypad_code.until_time = m.add_keypad_code.until_time;
        e.keypad_code.lock_count = 3;
        assert_int_equal(codes_from_nuki(&e, &back), 0);
        assert_int_equal(back.id, 7);
        assert_string_equal(back.digits, "345678");
        assert_int_equal(back.weekdays, 0x05);
        assert_int_equal(back.time_from_min, 9 * 60 + 15);
        assert_int_equal(back.valid_until_usec, T_UNTIL * SEC);
        assert_int_equal(back.use_count, 3);
        assert_true(lock_code_equal(&c, &back));

        /* an unlimited code: time_limited 0, window fields zero */
        c = code(3, "345678", "Alice");
        c.enabled = false;
        nuki_msg_init(&m, NUKI_CMD_UPDATE_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        assert_int_equal(codes_to_nuki(&c, &m), 0);
        assert_int_equal(m.update_keypad_code.code_id, 3);
        assert_false(m.update_keypad_code.enabled);
        assert_false(m.update_keypad_code.time_limited);
        assert_int_equal(m.update_keypad_code.allowed_from.year, 0);
        assert_int_equal(m.update_keypad_code.weekdays, 0);

        /* a lock entry without the optional window, and Nuki's "0 = every day" */
        nuki_msg_init(&e, NUKI_CMD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        e.keypad_code.code = 345678;
        e.keypad_code.time_limited = true;
        e.n_optional = 0;
        assert_int_equal(codes_from_nuki(&e, &back), 0);
        assert_int_equal(back.weekdays, 0x7f);
        assert_int_equal(back.time_from_min, -1);
        assert_int_equal(back.valid_from_usec, 0);

        /* refused: digits that are no number, an update without an id, another command */
        c = code(-1, "34x678", "X");
        nuki_msg_init(&m, NUKI_CMD_ADD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        assert_int_equal(codes_to_nuki(&c, &m), -EINVAL);
        c = code(-1, "345678", "X");
        nuki_msg_init(&m, NUKI_CMD_UPDATE_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        assert_int_equal(codes_to_nuki(&c, &m), -EINVAL);
        nuki_msg_init(&m, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
        assert_int_equal(codes_to_nuki(&c, &m), -EINVAL);
}

static CodeDesired want(int64_t cred, int lock_id, const char *digits, const char *name, int64_t rev,
                        int64_t synced)
{
        CodeDesired d = {
                .credential_id = cred, .present = true, .revision = rev, .synced_revision = synced
        };

        d.code = code(lock_id, digits, name);
        return d;
}

static const CodeStep *step_of(const CodePlan *p, int64_t cred, int lock_id)
{
        for (size_t i = 0; i < p->n_steps; i++)
                if (p->steps[i].credential_id == cred && (cred != 0 || p->steps[i].code.id == lock_id))
                        return &p->steps[i];
        static const CodeStep none = { .kind = _CODE_STEP_KIND_MAX };

        fail_msg("no step for credential %lld", (long long) cred);
        return &none;
}

static void test_plan_converged_and_fresh(void **state)
{
        CodeDesired d[] = {
                want(1, 4, "345678", "Alice", 2, 2), /* on the lock, equal */
                want(2, -1, "456789", "Bob", 1, 0),  /* new */
                want(3, 9, "567891", "Carol", 3, 2), /* changed by the hub since */
                want(4, 11, "678912", "Dave", 1, 1), /* withdrawn, still on the lock */
                want(5, -1, "789123", "Eve", 1, 0),  /* withdrawn, never added */
        };
        LockCode l[] = { code(4, "345678", "Alice"), code(9, "567891", "Carol"),
                         code(11, "678912", "Dave") };
        CodePlan p;

        d[2].code.enabled = false;
        d[3].present = false;
        d[4].present = false;
        for (int policy = 0; policy < _CONF_DRIFT_POLICY_MAX; policy++) {
                assert_int_equal(codes_plan(d, 5, l, 3, (ConfDriftPolicy) policy, &p), 0);
                assert_int_equal(p.n_drifts, 0);
                assert_int_equal(p.n_writes, 3);
                assert_int_equal(step_of(&p, 1, 0)->kind, CODE_STEP_KEEP);
                assert_int_equal(step_of(&p, 1, 0)->code.id, 4);
                assert_int_equal(step_of(&p, 2, 0)->kind, CODE_STEP_ADD);
                assert_int_equal(step_of(&p, 3, 0)->kind, CODE_STEP_UPDATE);
                assert_int_equal(step_of(&p, 3, 0)->code.id, 9);
                assert_false(step_of(&p, 3, 0)->code.enabled);
                assert_int_equal(step_of(&p, 4, 0)->kind, CODE_STEP_REMOVE);
                assert_int_equal(step_of(&p, 4, 0)->code.id, 11);
                assert_int_equal(step_of(&p, 5, 0)->kind, CODE_STEP_FORGET);
                /* order: bookkeeping, removals, updates, adds */
                for (size_t i = 1; i < p.n_steps; i++) {
                        static const int rank[] = { [CODE_STEP_KEEP] = 0,   [CODE_STEP_FORGET] = 0,
                                                    [CODE_STEP_ADOPT] = 0,  [CODE_STEP_ADOPT_REMOVAL] = 0,
                                                    [CODE_STEP_REJECT] = 0, [CODE_STEP_REMOVE] = 1,
                                                    [CODE_STEP_UPDATE] = 2, [CODE_STEP_ADD] = 3 };
                        assert_true(rank[p.steps[i - 1].kind] <= rank[p.steps[i].kind]);
                }
                codes_plan_done(&p);
        }
}

static void test_plan_drift_changed(void **state)
{
        CodeDesired d[] = { want(1, 4, "345678", "Alice", 2, 2) };
        LockCode l[] = { code(4, "345678", "Alice") };
        CodePlan p;

        l[0].enabled = false;
        l[0].weekdays = 0x1f;

        assert_int_equal(codes_plan(d, 1, l, 1, CONF_DRIFT_HUB, &p), 0);
        assert_int_equal(p.n_steps, 1);
        assert_int_equal(p.n_drifts, 1);
        assert_int_equal(p.steps[0].kind, CODE_STEP_UPDATE);
        assert_int_equal(p.steps[0].drift, CODE_DRIFT_CHANGED);
        assert_int_equal(p.steps[0].code.id, 4);
        assert_true(p.steps[0].code.enabled); /* the hub's version is written back */
        assert_int_equal(p.steps[0].code.weekdays, 0x7f);
        assert_string_equal(p.steps[0].reason, "changed on the lock: enabled, schedule");
        codes_plan_done(&p);

        assert_int_equal(codes_plan(d, 1, l, 1, CONF_DRIFT_LOCK, &p), 0);
        assert_int_equal(p.n_writes, 0);
        assert_int_equal(p.steps[0].kind, CODE_STEP_ADOPT);
        assert_int_equal(p.steps[0].drift, CODE_DRIFT_CHANGED);
        assert_int_equal(p.steps[0].credential_id, 1);
        assert_false(p.steps[0].code.enabled); /* the lock's version is taken */
        assert_int_equal(p.steps[0].code.weekdays, 0x1f);
        codes_plan_done(&p);

        /* digits changed on the lock (the lock reports them) */
        snprintf(l[0].digits, sizeof l[0].digits, "999999");
        l[0].enabled = true;
        l[0].weekdays = 0x7f;
        assert_int_equal(codes_plan(d, 1, l, 1, CONF_DRIFT_HUB, &p), 0);
        assert_int_equal(p.steps[0].drift, CODE_DRIFT_CHANGED);
        assert_string_equal(p.steps[0].reason, "changed on the lock: digits");
        assert_string_equal(p.steps[0].code.digits, "345678");
        codes_plan_done(&p);
}

static void test_plan_drift_added(void **state)
{
        CodeDesired d[] = { want(1, 4, "345678", "Alice", 1, 1) };
        LockCode l[] = { code(4, "345678", "Alice"), code(5, "987654", "Mallory") };
        CodePlan p;

        assert_int_equal(codes_plan(d, 1, l, 2, CONF_DRIFT_HUB, &p), 0);
        assert_int_equal(p.n_drifts, 1);
        assert_int_equal(step_of(&p, 0, 5)->kind, CODE_STEP_REMOVE);
        assert_int_equal(step_of(&p, 0, 5)->drift, CODE_DRIFT_ADDED);
        assert_string_equal(step_of(&p, 0, 5)->reason, "added on the lock: id 5, name \"Mallory\"");
        codes_plan_done(&p);

        assert_int_equal(codes_plan(d, 1, l, 2, CONF_DRIFT_LOCK, &p), 0);
        assert_int_equal(p.n_writes, 0);
        assert_int_equal(step_of(&p, 0, 5)->kind, CODE_STEP_ADOPT);
        assert_int_equal(step_of(&p, 0, 5)->drift, CODE_DRIFT_ADDED);
        assert_string_equal(step_of(&p, 0, 5)->code.digits, "987654");
        codes_plan_done(&p);
}

static void test_plan_drift_removed(void **state)
{
        CodeDesired d[] = { want(1, 4, "345678", "Alice", 1, 1), want(2, 6, "456789", "Bob", 2, 1) };
        LockCode l[] = { code(5, "567891", "Someone") };
        CodePlan p;

        assert_int_equal(codes_plan(d, 2, l, 0, CONF_DRIFT_HUB, &p), 0);
        assert_int_equal(p.n_drifts, 1);
        assert_int_equal(step_of(&p, 1, 0)->kind, CODE_STEP_ADD);
        assert_int_equal(step_of(&p, 1, 0)->drift, CODE_DRIFT_REMOVED);
        assert_int_equal(step_of(&p, 1, 0)->code.id, -1);
        /* Bob changed since the lock confirmed him: no drift, just written again */
        assert_int_equal(step_of(&p, 2, 0)->kind, CODE_STEP_ADD);
        assert_int_equal(step_of(&p, 2, 0)->drift, CODE_DRIFT_NONE);
        codes_plan_done(&p);

        assert_int_equal(codes_plan(d, 2, l, 0, CONF_DRIFT_LOCK, &p), 0);
        assert_int_equal(step_of(&p, 1, 0)->kind, CODE_STEP_ADOPT_REMOVAL);
        assert_int_equal(step_of(&p, 1, 0)->drift, CODE_DRIFT_REMOVED);
        assert_int_equal(step_of(&p, 2, 0)->kind, CODE_STEP_ADD);
        codes_plan_done(&p);

        /* all three at once, plus a foreign code with our digits: removed before the add */
        assert_int_equal(codes_plan(d, 2, (LockCode[]){ code(8, "345678", "Other") }, 1, CONF_DRIFT_HUB, &p),
                         0);
        assert_int_equal(p.n_drifts, 2);
        assert_int_equal(p.steps[0].kind, CODE_STEP_REMOVE);
        assert_int_equal(p.steps[0].code.id, 8);
        assert_int_equal(p.steps[p.n_steps - 1].kind, CODE_STEP_ADD);
        codes_plan_done(&p);
}

static void test_plan_interrupted_add_and_reject(void **state)
{
        /* The hub sent Add but never heard the id back: the entry is recognised, not doubled. */
        CodeDesired d[] = { want(1, -1, "345678", "Alice", 1, 0), want(2, -1, "123456", "Bad", 1, 0),
                            want(3, -1, "456789", "Dup", 1, 0), want(4, -1, "456789", "Dup2", 1, 0) };
        LockCode l[] = { code(12, "345678", "Alice"), code(13, "123456", "Bad") };
        CodePlan p;

        assert_int_equal(codes_plan(d, 4, l, 2, CONF_DRIFT_HUB, &p), 0);
        assert_int_equal(step_of(&p, 1, 0)->kind, CODE_STEP_KEEP);
        assert_int_equal(step_of(&p, 1, 0)->code.id, 12);
        assert_int_equal(step_of(&p, 2, 0)->kind, CODE_STEP_REJECT);
        assert_int_equal(step_of(&p, 2, 0)->rule, CODE_RULE_PREFIX);
        assert_int_equal(step_of(&p, 2, 0)->code.id, 13); /* claimed: not taken for a foreign code */
        assert_int_equal(step_of(&p, 3, 0)->kind, CODE_STEP_REJECT);
        assert_int_equal(step_of(&p, 3, 0)->rule, CODE_RULE_DUPLICATE);
        assert_int_equal(p.n_writes, 0);
        assert_int_equal(p.n_drifts, 0);
        codes_plan_done(&p);
}

static void test_plan_unreadable(void **state)
{
        /* digits that no longer open (another hub key): nothing sent, the lock's entry kept */
        CodeDesired d[] = { want(1, 7, "", "Alice", 1, 1) };
        LockCode l[] = { code(7, "345678", "Alice") };
        CodePlan p;

        d[0].unreadable = true;
        for (int policy = 0; policy < _CONF_DRIFT_POLICY_MAX; policy++) {
                assert_int_equal(codes_plan(d, 1, l, 1, (ConfDriftPolicy) policy, &p), 0);
                assert_int_equal(p.n_steps, 1);
                assert_int_equal(p.n_writes, 0);
                assert_int_equal(p.steps[0].kind, CODE_STEP_REJECT);
                assert_int_equal(p.steps[0].code.id, 7);
                assert_non_null(strstr(p.steps[0].reason, "cannot read this code's digits"));
                codes_plan_done(&p);
        }
}

static void test_verify(void **state)
{
        CodeDesired d = want(1, -1, "345678", "Alice", 1, 0);
        LockCode l[] = { code(12, "345678", "Alice") };
        char reason[128];
        int id;

        assert_int_equal(codes_verify(&d, l, 1, &id, reason, sizeof reason), CODE_SYNC_SYNCED);
        assert_int_equal(id, 12);
        assert_string_equal(reason, "");
        d.code.id = 12;
        l[0].enabled = false;
        assert_int_equal(codes_verify(&d, l, 1, &id, reason, sizeof reason), CODE_SYNC_FAILED);
        assert_string_equal(reason, "read back differs after writing: enabled");
        assert_int_equal(codes_verify(&d, l, 0, &id, reason, sizeof reason), CODE_SYNC_FAILED);
        assert_string_equal(reason, "not on the lock after writing it");
        assert_int_equal(id, -1);
        d.present = false;
        assert_int_equal(codes_verify(&d, l, 1, &id, reason, sizeof reason), CODE_SYNC_FAILED);
        assert_int_equal(codes_verify(&d, l, 0, &id, reason, sizeof reason), CODE_SYNC_SYNCED);
}

static void test_backoff_and_names(void **state)
{
        assert_int_equal(codes_retry_delay_usec(1, 3600), 5 * SEC);
        assert_int_equal(codes_retry_delay_usec(2, 3600), 10 * SEC);
        assert_int_equal(codes_retry_delay_usec(4, 3600), 40 * SEC);
        assert_int_equal(codes_retry_delay_usec(30, 3600), 3600 * SEC);
        assert_int_equal(codes_retry_delay_usec(1000, 300), 300 * SEC);
        for (int i = 0; i < _CODE_SYNC_STATE_MAX; i++)
                assert_int_equal(code_sync_state_from_string(code_sync_state_to_string((CodeSyncState) i)),
                                 i);
        assert_int_equal(code_sync_state_from_string("bogus"), _CODE_SYNC_STATE_MAX);
        assert_string_equal(code_drift_to_string(CODE_DRIFT_REMOVED), "removed-on-lock");
}

static void test_code_json_has_no_digits(void **state)
{
        LockCode c = code(3, "345678", "Alice");
        char *s = lock_code_to_json(&c);

        assert_non_null(s);
        assert_null(strstr(s, "345678"));
        assert_non_null(strstr(s, "\"name\":\"Alice\""));
        free(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rules),
                cmocka_unit_test(test_nuki_mapping),
                cmocka_unit_test(test_plan_converged_and_fresh),
                cmocka_unit_test(test_plan_drift_changed),
                cmocka_unit_test(test_plan_drift_added),
                cmocka_unit_test(test_plan_drift_removed),
                cmocka_unit_test(test_plan_interrupted_add_and_reject),
                cmocka_unit_test(test_plan_unreadable),
                cmocka_unit_test(test_verify),
                cmocka_unit_test(test_backoff_and_names),
                cmocka_unit_test(test_code_json_has_no_digits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
