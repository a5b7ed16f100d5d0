/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The recovery ladder, driven by a fake clock and fake ops: what it does (ops called,
 * attempts recorded) at each rung, and what it must never do (loop, power-cycle without
 * evidence or under another lock's action, climb past its budget). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "lockhub/health.h"
#include "lockhub/log.h"

#define SEC    HEALTH_USEC_PER_SEC
#define MINUTE HEALTH_USEC_PER_MIN

#define MAX_TIMERS 8

typedef struct Fake {
        uint64_t now;
        struct {
                HealthLadder *l;
                uint64_t at;
        } timers[MAX_TIMERS];
        char ops[8192];     /* "retry(front);reconnect(front);cycle(hci0);..." */
        char records[8192]; /* "front:retry#1=failure;" */
        char reasons[8192]; /* reasons of skipped steps */
        unsigned n_ops;
        uint64_t op_times[4096];
        int op_result;     /* what every op returns */
        bool adapter_busy; /* answer of ops->adapter_busy */
        unsigned needs_repair_calls;
        HealthRecovery *r;
} Fake;

static uint64_t f_now(void *u)
{
        return ((Fake *) u)->now;
}

static uint64_t f_realtime(void *u)
{
        return ((Fake *) u)->now + 1700000000ULL * SEC;
}

static uint32_t f_random(void *u)
{
        return 200; /* exactly 100 % of the base: deterministic delays */
}

static int f_timer_set(HealthLadder *l, uint64_t usec, void *u)
{
        Fake *f = u;
        int free_slot = -1;

        for (int i = 0; i < MAX_TIMERS; i++) {
                if (f->timers[i].l == l) {
                        f->timers[i].at = usec;
                        if (usec == 0)
                                f->timers[i].l = NULL;
                        return 0;
                }
                if (!f->timers[i].l && free_slot < 0)
                        free_slot = i;
        }
        if (usec == 0)
                return 0;
        assert_true(free_slot >= 0);
        f->timers[free_slot].l = l;
        f->timers[free_slot].at = usec;
        return 0;
}

static const HealthClock fake_clock = {
        .now = f_now,
        .realtime = f_realtime,
        .timer_set = f_timer_set,
        .random = f_random,
};

static uint64_t timer_of(Fake *f, HealthLadder *l)
{
        for (int i = 0; i < MAX_TIMERS; i++)
                if (f->timers[i].l == l)
                        return f->timers[i].at;
        return 0;
}

/* Moves time forward by d, firing timers in order. */
static void advance(Fake *f, uint64_t d)
{
        uint64_t target = f->now + d;

        for (;;) {
                int best = -1;
                for (int i = 0; i < MAX_TIMERS; i++)
                        if (f->timers[i].l && f->timers[i].at <= target &&
                            (best < 0 || f->timers[i].at < f->timers[best].at))
                                best = i;
                if (best < 0)
                        break;
                HealthLadder *l = f->timers[best].l;
                f->now = MAX(f->now, f->timers[best].at);
                f->timers[best].l = NULL;
                health_ladder_timer_elapsed(l);
        }
        f->now = target;
}

static void op_log(Fake *f, const char *what, const char *arg)
{
        size_t n = strlen(f->ops);

        snprintf(f->ops + n, sizeof f->ops - n, "%s(%s);", what, arg);
        if (f->n_ops < ELEMENTSOF(f->op_times))
                f->op_times[f->n_ops] = f->now;
        f->n_ops++;
}

static int f_retry(HealthLadder *l, void *u)
{
        op_log(u, "retry", health_ladder_get_name(l));
        return ((Fake *) u)->op_result;
}

static int f_reconnect(HealthLadder *l, void *u)
{
        op_log(u, "reconnect", health_ladder_get_name(l));
        return ((Fake *) u)->op_result;
}

static int f_cycle(HealthRecovery *r, const char *adapter, void *u)
{
        op_log(u, "cycle", adapter);
        return ((Fake *) u)->op_result;
}

static int f_move(HealthLadder *l, const char *from, void *u)
{
        op_log(u, "move", from);
        return ((Fake *) u)->op_result;
}

static int f_remove(HealthLadder *l, void *u)
{
        op_log(u, "remove", health_ladder_get_name(l));
        return ((Fake *) u)->op_result;
}

static void f_needs_repair(HealthLadder *l, const char *reason, void *u)
{
        op_log(u, "needs-repair", health_ladder_get_name(l));
        ((Fake *) u)->needs_repair_calls++;
}

static void f_record(const HealthAttempt *a, void *u)
{
        Fake *f = u;
        size_t n = strlen(f->records);

        snprintf(f->records + n, sizeof f->records - n, "%s:%s#%u=%s;", a->lock ? a->lock : "-",
                 health_step_to_string(a->step), a->attempt, health_outcome_to_string(a->outcome));
        if (a->outcome == HEALTH_OUTCOME_SKIPPED) {
                n = strlen(f->reasons);
                snprintf(f->reasons + n, sizeof f->reasons - n, "%s|", a->reason);
        }
}

static bool f_busy(const char *adapter, HealthLadder *except, void *u)
{
        return ((Fake *) u)->adapter_busy;
}

static const HealthLadderOps fake_ops = {
        .retry = f_retry,
        .reconnect = f_reconnect,
        .power_cycle_adapter = f_cycle,
        .remove_device = f_remove,
        .mark_needs_repair = f_needs_repair,
        .record_attempt = f_record,
        .adapter_busy = f_busy,
};

static const HealthRecoveryConfig config = {
        .max_attempts = 5,
        .backoff_min_usec = 2 * SEC,
        .backoff_max_usec = 5 * MINUTE,
        .adapter_power_cycle = true,
};

static Fake *fake_new(const HealthRecoveryConfig *c)
{
        Fake *f = calloc(1, sizeof *f);

        assert_non_null(f);
        f->now = 1000 * SEC;
        assert_int_equal(health_recovery_new(c ? c : &config, &fake_clock, f, &fake_ops, f, &f->r), 0);
        return f;
}

static void fake_free(Fake *f)
{
        health_recovery_free(f->r);
        free(f);
}

static HealthLadder *add(Fake *f, const char *name)
{
        HealthLadder *l = NULL;

        assert_int_equal(health_recovery_add_lock(f->r, name, NULL, &l), 0);
        health_ladder_seen(l, "hci0");
        return l;
}

/* Keeps the adapter and the lock "heard", as a live radio would. */
static void hear(Fake *f, HealthLadder *l)
{
        health_recovery_adapter_heard(f->r, "hci0");
        if (l)
                health_ladder_seen(l, "hci0");
}

static void test_backoff(void **state)
{
        uint64_t prev = 0;

        for (unsigned n = 1; n <= 12; n++) {
                for (uint32_t rnd = 0; rnd < 1000; rnd += 37) {
                        uint64_t d = health_backoff_usec(2 * SEC, 5 * MINUTE, n, rnd);
                        assert_true(d >= 2 * SEC);
                        assert_true(d <= 5 * MINUTE);
                }
                uint64_t d = health_backoff_usec(2 * SEC, 5 * MINUTE, n, 200);
                assert_true(d >= prev);
                prev = d;
        }
        assert_int_equal(health_backoff_usec(2 * SEC, 5 * MINUTE, 1, 200), 2 * SEC);
        assert_int_equal(health_backoff_usec(2 * SEC, 5 * MINUTE, 3, 200), 8 * SEC);
        assert_int_equal(health_backoff_usec(2 * SEC, 5 * MINUTE, 30, 200), 5 * MINUTE);
        /* jitter spreads: lowest 80 %, highest 120 % (capped) */
        assert_int_equal(health_backoff_usec(10 * SEC, 5 * MINUTE, 1, 0), 10 * SEC);
        assert_int_equal(health_backoff_usec(10 * SEC, 5 * MINUTE, 2, 0), 16 * SEC);
        assert_int_equal(health_backoff_usec(10 * SEC, 5 * MINUTE, 2, 400), 24 * SEC);
}

static void test_error_class(void **state)
{
        assert_int_equal(health_error_class(HEALTH_FAILURE_COMMAND, -EACCES), HEALTH_ERROR_AUTH);
        assert_int_equal(health_error_class(HEALTH_FAILURE_COMMAND, -EDEADLK), HEALTH_ERROR_LOCK);
        assert_int_equal(health_error_class(HEALTH_FAILURE_COMMAND, -ETIMEDOUT), HEALTH_ERROR_LINK);
        assert_int_equal(health_error_class(HEALTH_FAILURE_CONNECT, -ETIMEDOUT), HEALTH_ERROR_ADAPTER);
        assert_int_equal(health_error_class(HEALTH_FAILURE_CONNECT, -EHOSTUNREACH), HEALTH_ERROR_LINK);
        assert_int_equal(health_error_class(HEALTH_FAILURE_COMMAND, -ENOENT), HEALTH_ERROR_GATT);
        assert_int_equal(health_error_class(HEALTH_FAILURE_COMMAND, -EPROTO), HEALTH_ERROR_GATT);
        assert_int_equal(health_error_class(HEALTH_FAILURE_CONNECT, -EPROTO), HEALTH_ERROR_LINK);
        assert_int_equal(health_error_class(HEALTH_FAILURE_COMMAND, -EBUSY), HEALTH_ERROR_LOCK);
        assert_int_equal(health_error_class(HEALTH_FAILURE_CONNECT, -EBUSY), HEALTH_ERROR_ADAPTER);
        assert_int_equal(health_error_class(HEALTH_FAILURE_COMMAND, -EHOSTDOWN), HEALTH_ERROR_IGNORE);
        assert_int_equal(health_error_class(HEALTH_FAILURE_COMMAND, -ECANCELED), HEALTH_ERROR_IGNORE);
}

/* First rung: a retry after the minimum backoff; its success ends the episode. */
static void test_retry_then_success(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");

        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_BACKOFF);
        assert_string_equal(f->ops, ""); /* never at once */
        advance(f, 2 * SEC - 1);
        assert_string_equal(f->ops, "");
        advance(f, 1);
        assert_string_equal(f->ops, "retry(front);");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_RUNNING);
        f->now += 700000;
        health_ladder_success(l, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_IDLE);
        assert_string_equal(f->records, "front:retry#1=success;");
        assert_int_equal(timer_of(f, l), 0);
        fake_free(f);
}

/* One lock failing on an adapter that hears others: retry ×2, reconnect, the adapter
 * rung is skipped (no evidence), remove-device, then the ladder gives up. Bounded. */
static void test_full_climb_without_adapter_evidence(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");
        HealthLadderStatus st;

        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        for (int i = 0; i < 120 && health_ladder_get_state(l) != HEALTH_LADDER_GAVE_UP; i++) {
                hear(f, l);
                advance(f, 1 * SEC);
                if (health_ladder_get_state(l) == HEALTH_LADDER_RUNNING)
                        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        }
        assert_string_equal(f->ops, "retry(front);retry(front);reconnect(front);remove(front);");
        assert_string_equal(f->records,
                            "front:retry#1=failure;front:retry#2=failure;front:reconnect#1=failure;"
                            "front:adapter-power-cycle#1=skipped;front:device-remove#1=failure;");
        assert_non_null(strstr(f->reasons, "no sign that hci0 is at fault"));
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_GAVE_UP);
        health_ladder_get_status(l, &st);
        assert_int_equal(st.steps_taken, 4);
        assert_int_equal(st.last_error, -ETIMEDOUT);
        fake_free(f);
}

/* After giving up: slow probes only, never closer than the backoff maximum · 0.8, and a
 * storm of failures causes no extra step. */
static void test_no_hot_loop(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");
        unsigned before;

        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        for (int i = 0; i < 7200; i++) { /* two hours, second by second */
                hear(f, l);
                advance(f, SEC);
                /* every op fails at once, and more failures pour in */
                for (int k = 0; k < 5; k++)
                        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        }
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_GAVE_UP);
        /* 4 ladder steps, then one probe per 5 min: 2 h → about 24 */
        assert_true(f->n_ops <= 4 + 2 * 60 / 4);
        for (unsigned i = 1; i < f->n_ops; i++)
                assert_true(f->op_times[i] - f->op_times[i - 1] >= 2 * SEC);
        before = f->n_ops;
        /* probes are reconnects */
        assert_non_null(strstr(f->ops, "remove(front);reconnect(front);reconnect(front);"));
        health_ladder_success(l, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_IDLE);
        advance(f, 60 * MINUTE);
        assert_int_equal(f->n_ops, before);
        fake_free(f);
}

/* Success resets: the next failure starts again at the first rung. */
static void test_reset_on_success(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");

        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 2 * SEC);
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 4 * SEC);
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 8 * SEC);
        assert_string_equal(f->ops, "retry(front);retry(front);reconnect(front);");
        health_ladder_success(l, "hci0");
        assert_string_equal(f->records,
                            "front:retry#1=failure;front:retry#2=failure;front:reconnect#1=success;");
        f->ops[0] = 0;
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 2 * SEC);
        assert_string_equal(f->ops, "retry(front);");
        fake_free(f);
}

/* A step that hears nothing fails by itself. */
static void test_step_timeout(void **state)
{
        HealthRecoveryConfig c = config;
        Fake *f;
        HealthLadder *l;

        c.step_timeout_usec = 30 * SEC;
        f = fake_new(&c);
        l = add(f, "front");
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 2 * SEC);
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_RUNNING);
        hear(f, l);
        advance(f, 30 * SEC);
        assert_string_equal(f->records, "front:retry#1=failure;");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_BACKOFF);
        fake_free(f);
}

/* Two locks failing on hci0 is evidence against the adapter: one power cycle, then both
 * reconnect; the cycle's outcome is whether the lock works afterwards. */
static void test_power_cycle_on_evidence(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *a = add(f, "front"), *b = add(f, "back");

        health_ladder_failure(a, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        f->now += SEC / 2;
        health_ladder_failure(b, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        for (int i = 0; i < 200 && !strstr(f->ops, "cycle("); i++) {
                hear(f, NULL);
                advance(f, SEC / 2);
                if (health_ladder_get_state(a) == HEALTH_LADDER_RUNNING)
                        health_ladder_failure(a, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
                if (health_ladder_get_state(b) == HEALTH_LADDER_RUNNING)
                        health_ladder_failure(b, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        }
        assert_non_null(strstr(f->ops, "cycle(hci0);"));
        assert_int_equal(health_ladder_get_state(a), HEALTH_LADDER_RUNNING);
        /* b reaches its adapter rung while the cycle runs: it waits, no second cycle */
        advance(f, 20 * SEC);
        assert_null(strstr(strstr(f->ops, "cycle(hci0);") + 1, "cycle("));
        /* the adapter goes off and on during our cycle: not "someone else" */
        health_recovery_adapter(f->r, "hci0", true, false);
        assert_int_not_equal(health_ladder_get_state(a), HEALTH_LADDER_WAIT_ADAPTER);
        health_recovery_adapter(f->r, "hci0", true, true);
        f->ops[0] = 0;
        health_recovery_power_cycle_done(f->r, "hci0", 0);
        assert_string_equal(f->ops, "reconnect(front);reconnect(back);");
        health_ladder_success(a, "hci0");
        health_ladder_success(b, "hci0");
        assert_non_null(strstr(f->records, "front:adapter-power-cycle#1=success;"));
        assert_non_null(strstr(f->records, "back:reconnect#"));
        assert_int_equal(health_ladder_get_state(a), HEALTH_LADDER_IDLE);
        assert_int_equal(health_ladder_get_state(b), HEALTH_LADDER_IDLE);
        fake_free(f);
}

/* Connect attempts failing inside the adapter (no answer from Connect) are evidence too;
 * a power cycle is never taken while another lock on the adapter is mid-action, and is
 * skipped when that lasts. */
static void test_adapter_busy_defers_then_skips(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");

        f->adapter_busy = true;
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        for (int i = 0; i < 200 && health_ladder_get_state(l) != HEALTH_LADDER_GAVE_UP; i++) {
                hear(f, l);
                advance(f, SEC);
                if (health_ladder_get_state(l) == HEALTH_LADDER_RUNNING)
                        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        }
        assert_null(strstr(f->ops, "cycle("));
        assert_string_equal(f->ops, "retry(front);retry(front);reconnect(front);remove(front);");
        assert_non_null(strstr(f->reasons, "stayed busy"));

        /* not busy: the same history power-cycles */
        fake_free(f);
        f = fake_new(NULL);
        l = add(f, "front");
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        for (int i = 0; i < 60 && !strstr(f->ops, "cycle("); i++) {
                hear(f, l);
                advance(f, SEC);
                if (health_ladder_get_state(l) == HEALTH_LADDER_RUNNING)
                        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        }
        assert_string_equal(f->ops, "retry(front);retry(front);reconnect(front);cycle(hci0);");
        /* the cycle fails: next rung, and no second cycle within the interval */
        health_recovery_power_cycle_done(f->r, "hci0", -EIO);
        assert_non_null(strstr(f->records, "front:adapter-power-cycle#1=failure;"));
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_BACKOFF);
        fake_free(f);
}

/* With a second usable adapter and a way to move, a lock whose adapter is suspect moves
 * instead of power-cycling it (the other locks on it are not disturbed). */
static void test_adapter_move(void **state)
{
        HealthLadderOps ops = fake_ops;
        Fake *f = calloc(1, sizeof *f);
        HealthLadder *l = NULL;

        assert_non_null(f);
        f->now = 1000 * SEC;
        ops.move_adapter = f_move;
        assert_int_equal(health_recovery_new(&config, &fake_clock, f, &ops, f, &f->r), 0);
        assert_int_equal(health_recovery_add_lock(f->r, "front", NULL, &l), 0);
        health_recovery_adapter(f->r, "hci0", true, true);
        health_recovery_adapter(f->r, "hci1", true, true);
        health_ladder_seen(l, "hci0");
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        for (int i = 0; i < 120 && !strstr(f->ops, "move("); i++) {
                health_recovery_adapter_heard(f->r, "hci0");
                health_recovery_adapter_heard(f->r, "hci1");
                health_ladder_seen(l, "hci0");
                advance(f, SEC);
                if (strstr(f->ops, "move("))
                        break;
                if (health_ladder_get_state(l) == HEALTH_LADDER_RUNNING)
                        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        }
        assert_string_equal(f->ops, "retry(front);retry(front);reconnect(front);move(hci0);");
        health_ladder_success(l, "hci1");
        assert_non_null(strstr(f->records, "front:adapter-move#1=success;"));
        assert_null(strstr(f->ops, "cycle("));
        fake_free(f);
}

/* AdapterPowerCycle=no: the rung is skipped even with evidence. */
static void test_power_cycle_disabled(void **state)
{
        HealthRecoveryConfig c = config;
        Fake *f;
        HealthLadder *l;

        c.adapter_power_cycle = false;
        f = fake_new(&c);
        l = add(f, "front");
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        for (int i = 0; i < 60 && health_ladder_get_state(l) != HEALTH_LADDER_GAVE_UP; i++) {
                hear(f, l);
                advance(f, SEC);
                if (health_ladder_get_state(l) == HEALTH_LADDER_RUNNING)
                        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        }
        assert_null(strstr(f->ops, "cycle("));
        assert_non_null(strstr(f->reasons, "AdapterPowerCycle=no"));
        fake_free(f);
}

/* The lock rejects the pairing: needs-repair at once, whatever the rung, and nothing more
 * until it is paired again. */
static void test_needs_repair(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");

        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 2 * SEC);
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -EACCES, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_NEEDS_REPAIR);
        assert_int_equal(f->needs_repair_calls, 1);
        assert_string_equal(f->records, "front:retry#1=failure;front:needs-repair#1=success;");
        f->ops[0] = 0;
        for (int i = 0; i < 10; i++)
                health_ladder_failure(l, HEALTH_FAILURE_COMMAND, i % 2 ? -EACCES : -ETIMEDOUT, "hci0");
        advance(f, 3 * HEALTH_USEC_PER_HOUR);
        assert_string_equal(f->ops, "");
        assert_int_equal(f->needs_repair_calls, 1);
        health_ladder_repaired(l);
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_IDLE);
        fake_free(f);
}

/* A missing characteristic (stale GATT cache) goes straight to remove-device. */
static void test_stale_gatt(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");

        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ENOENT, "hci0");
        advance(f, 2 * SEC);
        assert_string_equal(f->ops, "remove(front);");
        health_ladder_success(l, "hci0");
        assert_string_equal(f->records, "front:device-remove#1=success;");

        /* Service Changed announced, then a failure: same */
        f->ops[0] = f->records[0] = 0;
        health_ladder_services_changed(l);
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 2 * SEC);
        assert_string_equal(f->ops, "remove(front);");
        fake_free(f);
}

/* The lock jammed or said busy: it answered, the link is fine. */
static void test_lock_errors_are_not_link_failures(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");

        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -EDEADLK, "hci0");
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -EBUSY, "hci0");
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ECANCELED, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_IDLE);
        advance(f, MINUTE);
        assert_string_equal(f->ops, "");
        fake_free(f);
}

/* Not heard from: wait for it (no power cycle, no removal), then start over when it is
 * back in range. */
static void test_not_seen_waits(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front"), *other = add(f, "back");

        for (int i = 0; i < 180; i++) {
                hear(f, other); /* the adapter hears the other lock, not this one */
                advance(f, SEC);
        }
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -EHOSTUNREACH, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_WAIT_LOCK);
        for (int i = 0; i < 3600; i++) {
                hear(f, other);
                advance(f, SEC);
        }
        assert_string_equal(f->ops, "");
        health_ladder_seen(l, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_BACKOFF);
        advance(f, 2 * SEC);
        assert_string_equal(f->ops, "retry(front);");
        health_ladder_success(l, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_IDLE);
        fake_free(f);
}

/* The times (minutes since `since`) of the ops called `what`, as "a,b,c," */
static void op_times_of(Fake *f, const char *what, uint64_t since, char *buf, size_t n)
{
        const char *p = f->ops;
        size_t len = strlen(what);

        buf[0] = 0;
        for (unsigned i = 0; i < f->n_ops && i < ELEMENTSOF(f->op_times) && p && *p; i++) {
                if (strncmp(p, what, len) == 0 && p[len] == '(')
                        snprintf(buf + strlen(buf), n - strlen(buf), "%u,",
                                 (unsigned) ((f->op_times[i] - since) / MINUTE));
                p = strchr(p, ';');
                if (p)
                        p++;
        }
}

/* An adapter that hears nothing at all while the lock is silent: the adapter may be
 * deaf, so it is power-cycled before waiting for the lock; while it stays deaf it is
 * cycled again, ever less often (1, 5, 15, 30, then 60 min after the last cycle, at the
 * next slow check), and never in a loop. Hearing it again stops that. */
static void test_deaf_adapter(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");
        char times[256];
        uint64_t t0;
        unsigned done = 0;

        advance(f, 3 * MINUTE);
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -EHOSTUNREACH, "hci0");
        advance(f, 2 * SEC);
        assert_string_equal(f->ops, "cycle(hci0);");
        t0 = f->op_times[0];
        health_recovery_power_cycle_done(f->r, "hci0", 0);
        assert_string_equal(f->ops, "cycle(hci0);reconnect(front);");
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -EHOSTUNREACH, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_WAIT_LOCK);

        /* still deaf: every cycle ends well, every reconnect finds nothing */
        for (int i = 0; i < 4 * 360; i++) {
                advance(f, 10 * SEC);
                if (f->n_ops > done) {
                        done = f->n_ops;
                        if (health_ladder_get_state(l) == HEALTH_LADDER_RUNNING &&
                            strstr(f->ops, "cycle(hci0);") &&
                            strcmp(f->ops + strlen(f->ops) - strlen("cycle(hci0);"), "cycle(hci0);") == 0)
                                health_recovery_power_cycle_done(f->r, "hci0", 0);
                        if (health_ladder_get_state(l) == HEALTH_LADDER_RUNNING)
                                health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -EHOSTUNREACH, "hci0");
                        done = f->n_ops;
                }
        }
        op_times_of(f, "cycle", t0, times, sizeof times);
        /* first wait 1 min, but the slow check comes every 5 min (backoff_max); then the
         * waits 5, 15, 30, 60, 60 min, each to the next slow check */
        assert_string_equal(times, "0,5,10,25,55,115,175,236,");
        assert_null(strstr(f->ops, "remove("));

        /* heard again: a fresh episode, no more cycles */
        health_ladder_seen(l, "hci0");
        health_recovery_adapter_heard(f->r, "hci0");
        health_ladder_success(l, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_IDLE);
        done = f->n_ops;
        advance(f, 3 * HEALTH_USEC_PER_HOUR);
        assert_int_equal(f->n_ops, done);
        fake_free(f);
}

/* Time passes with the lock and the adapter heard as usual. */
static void idle(Fake *f, HealthLadder *l, uint64_t d)
{
        for (uint64_t t = 0; t < d; t += SEC) {
                hear(f, l);
                advance(f, SEC);
        }
}

/* Drives one hung-adapter episode of `l` (its connects time out inside the adapter, the
 * adapter hears adverts as usual) for at most `limit`: every power cycle ends well, but
 * the reconnect after the first `futile` of them still fails; after the next one it
 * works. True when it ended with the lock working. */
static bool run_hang(Fake *f, HealthLadder *l, uint64_t limit, unsigned futile)
{
        static const char cycle[] = "cycle(hci0);";

        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        for (uint64_t t = 0; t < limit; t += SEC) {
                hear(f, l);
                advance(f, SEC);
                if (health_ladder_get_state(l) != HEALTH_LADDER_RUNNING)
                        continue;
                if (strlen(f->ops) >= strlen(cycle) &&
                    streq(f->ops + strlen(f->ops) - strlen(cycle), cycle)) {
                        health_recovery_power_cycle_done(f->r, "hci0", 0);
                        if (futile == 0) {
                                health_ladder_success(l, "hci0");
                                return health_ladder_get_state(l) == HEALTH_LADDER_IDLE;
                        }
                        futile--;
                }
                health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ETIMEDOUT, "hci0");
        }
        return false;
}

static void fake_clear(Fake *f)
{
        f->ops[0] = f->records[0] = f->reasons[0] = 0;
        f->n_ops = 0;
}

/* An adapter that hangs again and again: every hang is recovered by a power cycle.
 * After a cycle that helped, the next may come a minute later; a hang within that
 * minute waits for it (the skip is recorded). A cycle that did not help makes the
 * next wait 5 min: the ladder spends its other rungs, gives up, and a probe once the
 * wait is over climbs to the adapter rung again. */
static void test_adapter_hangs_again(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");
        char times[256];
        uint64_t t0, cycle1;

        /* hang 1: retry, retry, reconnect, then the adapter (2 connects failed inside it) */
        assert_true(run_hang(f, l, 10 * MINUTE, 0));
        assert_string_equal(f->ops,
                            "retry(front);retry(front);reconnect(front);cycle(hci0);reconnect(front);");
        assert_non_null(strstr(f->records, "front:adapter-power-cycle#1=success;"));
        cycle1 = f->op_times[3];

        /* hang 2, 8 min later: cycled again straight away */
        idle(f, l, 8 * MINUTE);
        fake_clear(f);
        assert_true(run_hang(f, l, 10 * MINUTE, 0));
        assert_string_equal(f->ops,
                            "retry(front);retry(front);reconnect(front);cycle(hci0);reconnect(front);");
        assert_string_equal(f->reasons, "");
        assert_true(f->op_times[3] - cycle1 > 8 * MINUTE);
        cycle1 = f->op_times[3];

        /* hang 3, 5 s later: its adapter rung comes within the minute after that cycle,
         * so it is skipped and waited for rather than spending the other rungs */
        idle(f, l, 5 * SEC);
        fake_clear(f);
        assert_true(run_hang(f, l, 10 * MINUTE, 0));
        assert_string_equal(f->ops,
                            "retry(front);retry(front);reconnect(front);cycle(hci0);reconnect(front);");
        assert_string_equal(f->records,
                            "front:retry#1=failure;front:retry#2=failure;front:reconnect#1=failure;"
                            "front:adapter-power-cycle#1=skipped;front:adapter-power-cycle#1=success;");
        assert_non_null(strstr(f->reasons, "was power-cycled"));
        assert_non_null(strstr(f->reasons, "ago: again in"));
        assert_int_equal(f->op_times[3] - cycle1, MINUTE);

        /* hang 4, 2 min later, and the first cycle does not help: the next waits 5 min */
        idle(f, l, 2 * MINUTE);
        fake_clear(f);
        t0 = f->now;
        assert_true(run_hang(f, l, 30 * MINUTE, 1));
        assert_string_equal(f->ops,
                            "retry(front);retry(front);reconnect(front);cycle(hci0);reconnect(front);"
                            "remove(front);reconnect(front);cycle(hci0);reconnect(front);");
        assert_string_equal(f->records,
                            "front:retry#1=failure;front:retry#2=failure;front:reconnect#1=failure;"
                            "front:adapter-power-cycle#1=failure;front:device-remove#1=failure;"
                            "front:reconnect#2=failure;front:adapter-power-cycle#2=success;");
        /* gave up at 1 min, probed 5 min later: the wait is over, cycled */
        op_times_of(f, "cycle", t0, times, sizeof times);
        assert_string_equal(times, "0,6,");
        assert_true(f->op_times[7] - f->op_times[3] >= 5 * MINUTE);
        fake_free(f);
}

/* bluetoothd restarts: the running step is aborted, failures meanwhile are not climbed,
 * and when it is back the ladder reconnects; the restart is recorded once. */
static void test_bluez_restart(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front"), *idle = add(f, "back");

        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 2 * SEC);
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_RUNNING);
        health_recovery_bluez(f->r, false);
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_WAIT_ADAPTER);
        assert_int_equal(health_ladder_get_state(idle), HEALTH_LADDER_WAIT_ADAPTER);
        assert_string_equal(f->records, "front:retry#1=aborted;");
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -EHOSTUNREACH, "hci0");
        health_ladder_failure(idle, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 10 * MINUTE);
        assert_string_equal(f->ops, "retry(front);");
        health_recovery_bluez(f->r, true);
        assert_string_equal(f->records, "front:retry#1=aborted;-:bluez-restart#1=success;");
        assert_int_equal(health_ladder_get_state(idle), HEALTH_LADDER_IDLE);
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_BACKOFF);
        advance(f, 2 * SEC);
        assert_string_equal(f->ops, "retry(front);reconnect(front);");
        health_ladder_success(l, "hci0");
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_IDLE);
        fake_free(f);
}

/* The only adapter powered off by someone else: wait; when it is back, carry on. */
static void test_adapter_off_by_someone_else(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");

        health_recovery_adapter(f->r, "hci0", true, true);
        health_recovery_adapter(f->r, "hci0", true, false);
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_WAIT_ADAPTER);
        health_ladder_failure(l, HEALTH_FAILURE_CONNECT, -ENETDOWN, "hci0");
        advance(f, HEALTH_USEC_PER_HOUR);
        assert_string_equal(f->ops, "");
        health_recovery_adapter(f->r, "hci0", true, true);
        assert_int_equal(health_ladder_get_state(l), HEALTH_LADDER_IDLE);
        fake_free(f);
}

/* Removing a ladder mid-step records it as aborted and leaves no timer behind. */
static void test_remove_running(void **state)
{
        Fake *f = fake_new(NULL);
        HealthLadder *l = add(f, "front");

        assert_int_equal(health_recovery_add_lock(f->r, "front", NULL, NULL), -EEXIST);
        health_ladder_failure(l, HEALTH_FAILURE_COMMAND, -ETIMEDOUT, "hci0");
        advance(f, 2 * SEC);
        health_ladder_remove(l);
        assert_string_equal(f->records, "front:retry#1=aborted;");
        for (int i = 0; i < MAX_TIMERS; i++)
                assert_null(f->timers[i].l);
        assert_null(health_recovery_find(f->r, "front"));
        fake_free(f);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_error_class),
                cmocka_unit_test(test_retry_then_success),
                cmocka_unit_test(test_full_climb_without_adapter_evidence),
                cmocka_unit_test(test_no_hot_loop),
                cmocka_unit_test(test_reset_on_success),
                cmocka_unit_test(test_step_timeout),
                cmocka_unit_test(test_power_cycle_on_evidence),
                cmocka_unit_test(test_adapter_busy_defers_then_skips),
                cmocka_unit_test(test_adapter_move),
                cmocka_unit_test(test_power_cycle_disabled),
                cmocka_unit_test(test_needs_repair),
                cmocka_unit_test(test_stale_gatt),
                cmocka_unit_test(test_lock_errors_are_not_link_failures),
                cmocka_unit_test(test_not_seen_waits),
                cmocka_unit_test(test_deaf_adapter),
                cmocka_unit_test(test_adapter_hangs_again),
                cmocka_unit_test(test_bluez_restart),
                cmocka_unit_test(test_adapter_off_by_someone_else),
                cmocka_unit_test(test_remove_running),
        };

        log_set_max_level(LOG_WARNING);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
