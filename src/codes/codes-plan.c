/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The reconciliation planner: desired codes of one lock + what the lock reports →
 * steps and drift findings (see lockhub/codes.h). Pure: no I/O, no clock, no store.
 *
 * Matching. Each desired code claims at most one entry of the lock:
 *   1. by the lock's code id we recorded (credential_locks.lock_code_id);
 *   2. a code with no recorded id (its add was never confirmed) claims an unclaimed entry
 *      with the same digits and name: the lock took it but the hub did not hear back.
 * Entries nobody claims were added on the lock by someone else.
 *
 * Drift is only ever declared against a version the lock confirmed: a code whose
 * synced_revision equals its revision and that differs on the lock was changed there; a
 * confirmed code that is gone was removed there. A code the hub changed since (revision
 * newer) is simply written again, whatever the lock holds.
 *
 *   desired  on lock   equal   confirmed   DriftPolicy=hub           DriftPolicy=lock
 *   present  yes       yes     -           KEEP                      KEEP
 *   present  yes       no      yes         UPDATE (changed)          ADOPT (changed)
 *   present  yes       no      no          UPDATE                    UPDATE
 *   present  no        -       yes         ADD (removed)             ADOPT_REMOVAL (removed)
 *   present  no        -       no          ADD                       ADD
 *   absent   yes       -       -           REMOVE                    REMOVE
 *   absent   no        -       -           FORGET                    FORGET
 *   (none)   yes       -       -           REMOVE (added)            ADOPT (added)
 *   a code that breaks a rule: REJECT (nothing sent), whatever the lock holds.
 */

#include <stdio.h>

#include "lockhub/codes.h"

static const char *const drift_names[_CODE_DRIFT_MAX] = {
        [CODE_DRIFT_NONE] = "none",
        [CODE_DRIFT_CHANGED] = "changed-on-lock",
        [CODE_DRIFT_ADDED] = "added-on-lock",
        [CODE_DRIFT_REMOVED] = "removed-on-lock",
};

const char *code_drift_to_string(CodeDrift d)
{
        return d >= 0 && d < _CODE_DRIFT_MAX ? drift_names[d] : NULL;
}

static const char *const step_names[_CODE_STEP_KIND_MAX] = {
        [CODE_STEP_KEEP] = "keep",
        [CODE_STEP_ADD] = "add",
        [CODE_STEP_UPDATE] = "update",
        [CODE_STEP_REMOVE] = "remove",
        [CODE_STEP_FORGET] = "forget",
        [CODE_STEP_ADOPT] = "adopt",
        [CODE_STEP_ADOPT_REMOVAL] = "adopt-removal",
        [CODE_STEP_REJECT] = "reject",
};

const char *code_step_kind_to_string(CodeStepKind k)
{
        return k >= 0 && k < _CODE_STEP_KIND_MAX ? step_names[k] : NULL;
}

void codes_plan_done(CodePlan *p)
{
        if (!p)
                return;
        free(p->steps);
        *p = (CodePlan){};
}

/* Order of execution: bookkeeping first, then what frees room on the lock, then the rest. */
static int step_rank(CodeStepKind k)
{
        switch (k) {
        case CODE_STEP_KEEP:
        case CODE_STEP_FORGET:
        case CODE_STEP_ADOPT:
        case CODE_STEP_ADOPT_REMOVAL:
        case CODE_STEP_REJECT:
                return 0;
        case CODE_STEP_REMOVE:
                return 1;
        case CODE_STEP_UPDATE:
                return 2;
        case CODE_STEP_ADD:
                return 3;
        case _CODE_STEP_KIND_MAX:
                break;
        }
        return 4;
}

static bool step_writes(CodeStepKind k)
{
        return step_rank(k) >= 1 && step_rank(k) <= 3;
}

static ssize_t find_by_id(const LockCode *lc, size_t n, const bool *claimed, int id)
{
        if (id < 0)
                return -1;
        for (size_t i = 0; i < n; i++)
                if ((!claimed || !claimed[i]) && lc[i].id == id)
                        return (ssize_t) i;
        return -1;
}

static ssize_t find_by_content(const LockCode *lc, size_t n, const bool *claimed, const LockCode *c)
{
        for (size_t i = 0; i < n; i++)
                if ((!claimed || !claimed[i]) && lc[i].digits[0] != '\0' && streq(lc[i].digits, c->digits) &&
                    streq(lc[i].name, c->name))
                        return (ssize_t) i;
        return -1;
}

static void step_set(CodeStep *s, CodeStepKind kind, int64_t credential_id, const LockCode *code,
                     CodeDrift drift)
{
        *s = (CodeStep){ .kind = kind, .credential_id = credential_id, .drift = drift };
        if (code)
                s->code = *code;
}

/* A copy of the desired code with the lock's id for it. */
static LockCode with_id(const LockCode *c, int id)
{
        LockCode r = *c;

        r.id = id;
        return r;
}

static int cmp_steps(const void *a, const void *b)
{
        const CodeStep *x = a, *y = b;
        int rx = step_rank(x->kind), ry = step_rank(y->kind);

        if (rx != ry)
                return rx < ry ? -1 : 1;
        if (x->credential_id != y->credential_id)
                return x->credential_id < y->credential_id ? -1 : 1;
        return x->code.id < y->code.id ? -1 : x->code.id > y->code.id;
}

int codes_plan(const CodeDesired *desired, size_t n_desired, const LockCode *lock_codes, size_t n_lock_codes,
               ConfDriftPolicy policy, CodePlan *ret)
{
        _cleanup_free_ bool *claimed = NULL;
        _cleanup_free_ ssize_t *match = NULL;
        _cleanup_free_ const char **others = NULL;
        CodeStep *steps = NULL;
        size_t n = 0;
        bool lock_wins = policy == CONF_DRIFT_LOCK;

        claimed = calloc(n_lock_codes + 1, sizeof *claimed);
        match = calloc(n_desired + 1, sizeof *match);
        others = calloc(n_desired + 1, sizeof *others);
        steps = calloc(n_desired + n_lock_codes + 1, sizeof *steps);
        if (!claimed || !match || !others || !steps) {
                free(steps);
                return -ENOMEM;
        }

        /* 1. by recorded id */
        for (size_t i = 0; i < n_desired; i++) {
                match[i] = find_by_id(lock_codes, n_lock_codes, claimed, desired[i].code.id);
                if (match[i] >= 0)
                        claimed[match[i]] = true;
        }
        /* 2. unconfirmed adds, by content */
        for (size_t i = 0; i < n_desired; i++)
                if (match[i] < 0 && desired[i].present && desired[i].code.id < 0) {
                        match[i] = find_by_content(lock_codes, n_lock_codes, claimed, &desired[i].code);
                        if (match[i] >= 0)
                                claimed[match[i]] = true;
                }

        for (size_t i = 0; i < n_desired; i++) {
                const CodeDesired *d = &desired[i];
                const LockCode *on_lock = match[i] >= 0 ? &lock_codes[match[i]] : NULL;
                bool confirmed = d->synced_revision > 0 && d->synced_revision == d->revision;
                CodeStep *s = &steps[n++];
                CodeRule rule;
                size_t k = 0;

                if (!d->present) {
                        if (on_lock)
                                step_set(s, CODE_STEP_REMOVE, d->credential_id, on_lock, CODE_DRIFT_NONE);
                        else
                                step_set(s, CODE_STEP_FORGET, d->credential_id, &d->code, CODE_DRIFT_NONE);
                        continue;
                }

                if (d->unreadable) {
                        /* Whatever the lock holds under its id stays claimed: not taken for a
                         * foreign code and removed. */
                        step_set(s, CODE_STEP_REJECT, d->credential_id, &d->code, CODE_DRIFT_NONE);
                        s->code.id = on_lock ? on_lock->id : d->code.id;
                        s->rule = CODE_RULE_OK;
                        snprintf(s->reason, sizeof s->reason,
                                 "the hub cannot read this code's digits (sealed with another key?): enter "
                                 "it "
                                 "again");
                        continue;
                }
                for (size_t j = 0; j < n_desired; j++)
                        if (j != i && desired[j].present && !desired[j].unreadable)
                                others[k++] = desired[j].code.digits;
                rule = codes_check(&d->code, others, k);
                if (rule != CODE_RULE_OK) {
                        step_set(s, CODE_STEP_REJECT, d->credential_id, &d->code, CODE_DRIFT_NONE);
                        if (on_lock)
                                s->code.id = on_lock->id;
                        s->rule = rule;
                        snprintf(s->reason, sizeof s->reason, "%s", code_rule_message(rule));
                        continue;
                }

                if (on_lock && lock_code_equal(&d->code, on_lock)) {
                        step_set(s, CODE_STEP_KEEP, d->credential_id, &d->code, CODE_DRIFT_NONE);
                        s->code.id = on_lock->id;
                } else if (on_lock) {
                        LockCode want = with_id(&d->code, on_lock->id);

                        if (!confirmed)
                                step_set(s, CODE_STEP_UPDATE, d->credential_id, &want, CODE_DRIFT_NONE);
                        else if (lock_wins)
                                step_set(s, CODE_STEP_ADOPT, d->credential_id, on_lock, CODE_DRIFT_CHANGED);
                        else
                                step_set(s, CODE_STEP_UPDATE, d->credential_id, &want, CODE_DRIFT_CHANGED);
                        if (s->drift != CODE_DRIFT_NONE) {
                                char diff[64];

                                lock_code_diff(&d->code, on_lock, diff, sizeof diff);
                                snprintf(s->reason, sizeof s->reason, "changed on the lock: %s", diff);
                        }
                } else if (confirmed && d->code.id >= 0) {
                        if (lock_wins)
                                step_set(s, CODE_STEP_ADOPT_REMOVAL, d->credential_id, &d->code,
                                         CODE_DRIFT_REMOVED);
                        else {
                                LockCode want = with_id(&d->code, -1);
                                step_set(s, CODE_STEP_ADD, d->credential_id, &want, CODE_DRIFT_REMOVED);
                        }
                        snprintf(s->reason, sizeof s->reason, "removed on the lock (it had id %d)",
                                 d->code.id);
                } else {
                        LockCode want = with_id(&d->code, -1);
                        step_set(s, CODE_STEP_ADD, d->credential_id, &want, CODE_DRIFT_NONE);
                }
        }

        for (size_t i = 0; i < n_lock_codes; i++) {
                CodeStep *s;

                if (claimed[i])
                        continue;
                s = &steps[n++];
                step_set(s, lock_wins ? CODE_STEP_ADOPT : CODE_STEP_REMOVE, 0, &lock_codes[i],
                         CODE_DRIFT_ADDED);
                snprintf(s->reason, sizeof s->reason, "added on the lock: id %d, name \"%s\"",
                         lock_codes[i].id, lock_codes[i].name);
        }

        qsort(steps, n, sizeof *steps, cmp_steps);
        *ret = (CodePlan){ .steps = steps, .n_steps = n };
        for (size_t i = 0; i < n; i++) {
                if (steps[i].drift != CODE_DRIFT_NONE)
                        ret->n_drifts++;
                if (step_writes(steps[i].kind))
                        ret->n_writes++;
        }
        return 0;
}

CodeSyncState codes_verify(const CodeDesired *d, const LockCode *lock_codes, size_t n_lock_codes,
                           int *ret_lock_code_id, char *ret_reason, size_t reason_size)
{
        ssize_t i = find_by_id(lock_codes, n_lock_codes, NULL, d->code.id);
        char diff[64];

        if (i < 0 && d->present && d->code.id < 0)
                i = find_by_content(lock_codes, n_lock_codes, NULL, &d->code);
        if (reason_size > 0)
                ret_reason[0] = '\0';
        *ret_lock_code_id = i >= 0 ? lock_codes[i].id : -1;

        if (!d->present) {
                if (i < 0)
                        return CODE_SYNC_SYNCED;
                snprintf(ret_reason, reason_size, "still on the lock after removing it (id %d)",
                         lock_codes[i].id);
                return CODE_SYNC_FAILED;
        }
        if (i < 0) {
                snprintf(ret_reason, reason_size, "not on the lock after writing it");
                return CODE_SYNC_FAILED;
        }
        if (!lock_code_equal(&d->code, &lock_codes[i])) {
                lock_code_diff(&d->code, &lock_codes[i], diff, sizeof diff);
                snprintf(ret_reason, reason_size, "read back differs after writing: %s", diff);
                return CODE_SYNC_FAILED;
        }
        return CODE_SYNC_SYNCED;
}
