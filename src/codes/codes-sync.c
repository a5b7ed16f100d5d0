/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The codes service: reconciles each lock's keypad codes with the database through the
 * lock's driver ops (see lockhub/codes.h for the layers and the per-code state diagram).
 *
 * One reconciliation of one lock ("run"), at most one at a time per lock:
 *
 *   IDLE ──codes_service_sync()/retry timer──▶ LISTING      run_start(): load desired, list_codes
 *   LISTING ──list ok──▶ plan, record drift, write every code's state ──▶ WRITING
 *   LISTING ──unreachable──▶ IDLE (codes not synced stay pending, reason + backoff)
 *   WRITING ──one write step at a time (removals, updates, adds)──▶ WRITING
 *   WRITING ──all steps done, something written──▶ VERIFYING     list_codes again
 *   WRITING ──nothing written──▶ IDLE
 *   VERIFYING ──list ok──▶ codes_verify() per written code: synced / failed ──▶ IDLE
 *   IDLE ──requests came in meanwhile──▶ LISTING (one more run, coalesced)
 *
 * Invariant: before the service asks the lock to change a code, the code's row says what
 * is about to happen (pending "adding"/"updating"/"removing", or drifted with what was
 * found), and the lock's id for a new code is stored the moment the lock reports it. A
 * crash or a lost connection at any point leaves a row that is not "synced", and the
 * planner recognises an add that the lock took without the hub hearing back.
 *
 * Triggers: codes_service_sync() (the manager: pairing, user changes, D-Bus, MQTT), the
 * retry timer while a code waits, the lock coming back in range (link listener) while a
 * code waits, and the lock saying its configuration changed (LOCK_CHANGE_CONFIG, Nuki's
 * config update count): the moment to look for drift.
 *
 * First contact: the first time a lock's list is read, codes found only on the lock are
 * adopted whatever DriftPolicy says, so pairing a lock that already has codes never wipes
 * them; from then on the policy applies ("codes.imported.lock.<id>" in meta).
 *
 * Errors from the lock split in two: "could not talk to it" (-EHOSTUNREACH, -ETIMEDOUT,
 * -EBUSY, -ECANCELED, -ENOTCONN) ends the run and keeps the codes pending with a retry
 * after codes_retry_delay_usec(); anything else is the lock refusing that one code
 * (failed with the reason, retried with the same backoff) and the run goes on.
 */

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

#include "codes-internal.h"
#include "lockhub/codes.h"
#include "lockhub/log.h"

#define USEC_PER_SEC UINT64_C(1000000)

typedef enum RunPhase {
        PHASE_IDLE,
        PHASE_LISTING,
        PHASE_WRITING,
        PHASE_VERIFYING,
} RunPhase;

typedef struct CodesLock CodesLock;

struct CodesLock {
        CodesService *svc;
        Lock *lock; /* NULL once removed (freed when the op in flight reports back) */
        sd_event_source *timer;
        RunPhase phase;
        bool op_in_flight;
        bool again;
        bool reachable;     /* last seen link state, to notice the lock coming back */
        bool settings_busy; /* apply_settings in flight */
        char why[32];

        CodeDesired *desired;
        size_t n_desired;
        CodePlan plan;
        size_t step;
        bool wrote;
        bool unreachable;
        int last_error;
        bool *written; /* per desired: a write step ran for it */
};

struct CodesService {
        sd_event *event;
        Store *store;
        Conf *const *conf;
        CodesLock **locks;
        size_t n_locks;
        codes_synced_t synced_cb;
        void *synced_userdata;
};

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static ConfDriftPolicy policy(CodesService *svc)
{
        return svc->conf && *svc->conf ? (*svc->conf)->codes.drift_policy : CONF_DRIFT_HUB;
}

static unsigned retry_max_sec(CodesService *svc)
{
        return svc->conf && *svc->conf ? (*svc->conf)->codes.sync_retry_max_sec : 3600;
}

/* -EKEYREJECTED: the lock rejects the stored security PIN, and the driver holds back the
 * hub's PIN requests until it is set again; the codes wait like for an absent lock. */
static bool error_is_unreachable(int r)
{
        return r == -EHOSTUNREACH || r == -ETIMEDOUT || r == -EBUSY || r == -ECANCELED || r == -ENOTCONN ||
               r == -ENODEV || r == -EKEYREJECTED;
}

static void run_reset(CodesLock *cl)
{
        if (cl->desired)
                explicit_bzero(cl->desired, cl->n_desired * sizeof *cl->desired);
        free(cl->desired);
        cl->desired = NULL;
        cl->n_desired = 0;
        if (cl->plan.steps)
                explicit_bzero(cl->plan.steps, cl->plan.n_steps * sizeof *cl->plan.steps);
        codes_plan_done(&cl->plan);
        free(cl->written);
        cl->written = NULL;
        cl->step = 0;
        cl->wrote = false;
        cl->unreachable = false;
        cl->last_error = 0;
}

static CodesLock *codes_lock_free(CodesLock *cl)
{
        if (!cl)
                return NULL;
        run_reset(cl);
        sd_event_source_disable_unref(cl->timer);
        free(cl);
        return NULL;
}

static CodesLock *find(CodesService *svc, Lock *l)
{
        for (size_t i = 0; i < svc->n_locks; i++)
                if (svc->locks[i]->lock == l)
                        return svc->locks[i];
        return NULL;
}

/* ---- events ---- */

static void record_event(CodesLock *cl, int64_t credential_id, const char *op, const char *result,
                         CodeDrift drift, const char *reason)
{
        _cleanup_free_ char *detail = NULL;
        json_object *o = json_object_new_object();
        struct store_credential cred;
        struct store_event e;
        int r;

        if (!o)
                return;
        json_object_object_add(o, "op", json_object_new_string(op));
        json_object_object_add(o, "result", json_object_new_string(result));
        if (drift != CODE_DRIFT_NONE) {
                json_object_object_add(o, "drift", json_object_new_string(code_drift_to_string(drift)));
                json_object_object_add(o, "policy",
                                       json_object_new_string(conf_drift_policy_to_string(policy(cl->svc))));
        }
        if (reason && reason[0])
                json_object_object_add(o, "reason", json_object_new_string(reason));
        if (cl->why[0])
                json_object_object_add(o, "why", json_object_new_string(cl->why));
        detail = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);

        store_event_init(&e);
        e.lock_id = cl->lock->store_id;
        e.kind = (char *) "code";
        e.source = (char *) "hub";
        e.detail = detail;
        if (credential_id > 0 && store_credential_get(cl->svc->store, credential_id, &cred) >= 0) {
                e.credential_id = credential_id;
                e.user_id = cred.user_id;
                e.actor = cred.name;
                r = store_event_append(cl->svc->store, &e, NULL);
                store_credential_done(&cred);
        } else
                r = store_event_append(cl->svc->store, &e, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to record a code event of %s: %m", cl->lock->name);
}

/* ---- state rows ---- */

static int write_state(CodesLock *cl, const CodeDesired *d, CodeSyncState state, const char *reason,
                       int lock_code_id, const LockCode *reported, bool verified, bool retry)
{
        struct store_assignment a;
        _cleanup_free_ char *json = NULL;
        uint64_t now = now_usec();
        int r;

        r = store_assignment_get(cl->svc->store, cl->lock->store_id, d->credential_id, &a);
        if (r < 0)
                return log_warning_errno(r, "Failed to read the state of code %" PRIi64 " on %s: %m",
                                         d->credential_id, cl->lock->name);
        if (state == CODE_SYNC_SYNCED) {
                /* Changed by a user while this run was under way (or withdrawn): what the lock
                 * confirmed is not what is wanted now, so it is not synced; the change asked
                 * for another run. */
                struct store_credential cred;
                bool changed;

                store_credential_init(&cred);
                changed = store_credential_get(cl->svc->store, d->credential_id, &cred) < 0 ||
                          cred.revision != d->revision || streq(a.desired, "present") != d->present;

                if (cred.id > 0)
                        store_credential_done(&cred);
                if (changed) {
                        state = CODE_SYNC_PENDING;
                        reason = "changed while the lock was being synced";
                }
        }
        free(a.state);
        a.state = strdup(code_sync_state_to_string(state));
        free(a.reason);
        a.reason = reason && reason[0] ? strndup(reason, 256) : NULL;
        a.lock_code_id = lock_code_id;
        if (state == CODE_SYNC_SYNCED) {
                a.synced_revision = d->revision;
                a.attempts = 0;
                a.next_attempt_usec = 0;
        }
        if (reported) {
                json = lock_code_to_json(reported);
                free(a.reported);
                a.reported = TAKE_PTR(json);
        }
        if (verified)
                a.last_verified_usec = now;
        if (retry) {
                a.attempts++;
                a.next_attempt_usec = now + codes_retry_delay_usec(a.attempts, retry_max_sec(cl->svc));
        }
        a.updated_usec = now;
        r = a.state ? store_assignment_update_sync(cl->svc->store, &a) : -ENOMEM;
        store_assignment_done(&a);
        if (r < 0)
                return log_warning_errno(r, "Failed to record the state of code %" PRIi64 " on %s: %m",
                                         d->credential_id, cl->lock->name);
        return 0;
}

static CodeDesired *desired_of(CodesLock *cl, int64_t credential_id, size_t *ret_index)
{
        for (size_t i = 0; i < cl->n_desired; i++)
                if (cl->desired[i].credential_id == credential_id) {
                        if (ret_index)
                                *ret_index = i;
                        return &cl->desired[i];
                }
        return NULL;
}

/* ---- the run ---- */

static void run_next(CodesLock *cl);
static void run_finish(CodesLock *cl);
static int arm_timer(CodesLock *cl, uint64_t delay_usec);

/* An op reported back: false when the lock went away meanwhile (cl is freed then). */
static bool op_returned(CodesLock *cl)
{
        cl->op_in_flight = false;
        if (cl->lock)
                return true;
        codes_lock_free(cl);
        return false;
}

static void mark_unreachable(CodesLock *cl, int r, const char *message)
{
        /* the lock rejects the stored security PIN: pending until the PIN is set again (the
         * driver sends no PIN request meanwhile, so retries cost nothing) */
        bool pin = r == -EKEYREJECTED, away = error_is_unreachable(r);
        char reason[160];

        /* Not an absence (no PIN, not authorized...): the codes cannot be synced until a
         * person acts, so they are failed with the reason rather than pending. */
        cl->unreachable = true;
        cl->last_error = r;
        if (pin)
                snprintf(reason, sizeof reason,
                         "the lock rejected the stored security PIN; set it with 'lockhubctl pin %s'",
                         cl->lock->name);
        else if (away)
                snprintf(reason, sizeof reason, "lock not reachable: %s", message ?: strerror(-r));
        else if (r == -ENOKEY)
                snprintf(reason, sizeof reason, "the hub does not know the lock's security PIN");
        else
                snprintf(reason, sizeof reason, "cannot read the lock's codes: %s", message ?: strerror(-r));
        for (size_t i = 0; i < cl->n_desired; i++) {
                struct store_assignment a;
                bool settled;

                if (store_assignment_get(cl->svc->store, cl->lock->store_id, cl->desired[i].credential_id,
                                         &a) < 0)
                        continue;
                /* synced codes stay synced (nothing was found wrong with them), and a code the
                 * lock refused keeps its reason */
                settled = streq(a.state, "synced") || streq(a.state, "failed");
                store_assignment_done(&a);
                if (!settled)
                        (void) write_state(cl, &cl->desired[i], away ? CODE_SYNC_PENDING : CODE_SYNC_FAILED,
                                           reason, cl->desired[i].code.id, NULL, false, true);
        }
        log_info("Keypad codes of %s not synced: %s; will retry.", cl->lock->name, reason);
}

/* Adopt the lock's version of a known code, or a code only the lock has. */
static void adopt(CodesLock *cl, const CodeStep *s)
{
        Store *st = cl->svc->store;
        CodeDesired *d;
        int r;

        if (s->credential_id > 0) {
                struct store_credential cred;
                LockCode c = s->code;
                int64_t rev;

                d = desired_of(cl, s->credential_id, NULL);
                if (!d)
                        return;
                if (c.digits[0] == '\0')
                        memcpy(c.digits, d->code.digits, sizeof c.digits);
                r = store_credential_get(st, s->credential_id, &cred);
                if (r >= 0) {
                        struct store_credential upd = cred;

                        upd.name = c.name;
                        upd.code_sealed = (uint8_t *) c.digits;
                        upd.code_sealed_size = strlen(c.digits);
                        upd.enabled = c.enabled;
                        upd.valid_from_usec = c.valid_from_usec;
                        upd.valid_until_usec = c.valid_until_usec;
                        upd.weekdays = c.weekdays;
                        upd.time_from_min = c.time_from_min;
                        upd.time_until_min = c.time_until_min;
                        upd.updated_usec = 0;
                        rev = store_credential_update(st, &upd);
                        store_credential_done(&cred);
                        if (rev < 0)
                                r = (int) rev;
                        else {
                                d->revision = rev;
                                r = write_state(cl, d, CODE_SYNC_SYNCED, NULL, s->code.id, &s->code, true,
                                                false);
                        }
                }
                explicit_bzero(&c, sizeof c);
                record_event(cl, s->credential_id, "adopt", r < 0 ? "failed" : "adopted", s->drift,
                             s->reason);
                /* Other locks holding this code now get the adopted version. */
                if (r >= 0) {
                        struct store_assignment *a = NULL;
                        size_t n = 0;

                        if (store_assignment_list(st, 0, &a, &n) >= 0)
                                for (size_t i = 0; i < n; i++)
                                        if (a[i].credential_id == s->credential_id &&
                                            a[i].lock_id != cl->lock->store_id)
                                                codes_service_sync_locks(cl->svc, &a[i].lock_id, 1,
                                                                         "adopted");
                        store_assignment_array_free(a, n);
                }
                return;
        }

        /* A code only the lock has: a user named after the code, created if needed. */
        if (s->code.digits[0] == '\0' || codes_check_digits(s->code.digits) != CODE_RULE_OK) {
                record_event(cl, 0, "adopt", "skipped", s->drift, "the lock does not report valid digits");
                return;
        }
        {
                struct store_user u = {};
                int64_t user_id = 0, cred_id = 0;
                LockCode c = s->code;
                CodeDesired nd;

                r = store_user_get_by_name(st, s->code.name, &u);
                if (r >= 0)
                        user_id = u.id;
                else if (r == -ENOENT)
                        r = codes_user_add(st, s->code.name, &user_id);
                store_user_done(&u);
                if (r >= 0) {
                        c.id = -1;
                        r = codes_code_add(st, user_id, &c, &cl->lock->store_id, 1, NULL, &cred_id);
                }
                if (r >= 0) {
                        nd = (CodeDesired){
                                .credential_id = cred_id, .present = true, .code = s->code, .revision = 1
                        };
                        r = write_state(cl, &nd, CODE_SYNC_SYNCED, NULL, s->code.id, &s->code, true, false);
                        explicit_bzero(&nd, sizeof nd);
                }
                explicit_bzero(&c, sizeof c);
                record_event(cl, cred_id, "adopt", r < 0 ? "failed" : "adopted", s->drift, s->reason);
        }
}

/* Bookkeeping steps and the state of every code before anything is written. */
static void apply_plan_states(CodesLock *cl)
{
        for (size_t i = 0; i < cl->plan.n_steps; i++) {
                const CodeStep *s = &cl->plan.steps[i];
                CodeDesired *d = s->credential_id > 0 ? desired_of(cl, s->credential_id, NULL) : NULL;

                switch (s->kind) {
                case CODE_STEP_KEEP:
                        if (d)
                                (void) write_state(cl, d, CODE_SYNC_SYNCED, NULL, s->code.id, &s->code, true,
                                                   false);
                        break;
                case CODE_STEP_FORGET:
                        record_event(cl, s->credential_id, "remove", "synced", CODE_DRIFT_NONE, NULL);
                        (void) codes_forget_assignment(cl->svc->store, cl->lock->store_id, s->credential_id);
                        break;
                case CODE_STEP_ADOPT:
                        adopt(cl, s);
                        break;
                case CODE_STEP_ADOPT_REMOVAL:
                        record_event(cl, s->credential_id, "adopt", "withdrawn", s->drift, s->reason);
                        (void) store_assignment_remove(cl->svc->store, cl->lock->store_id, s->credential_id);
                        break;
                case CODE_STEP_REJECT:
                        if (d)
                                (void) write_state(cl, d, CODE_SYNC_FAILED, s->reason, s->code.id, NULL,
                                                   false, false);
                        record_event(cl, s->credential_id, "check", "rejected", CODE_DRIFT_NONE,
                                     s->rule != CODE_RULE_OK ? code_rule_to_string(s->rule) : s->reason);
                        break;
                case CODE_STEP_ADD:
                case CODE_STEP_UPDATE:
                case CODE_STEP_REMOVE:
                        if (s->drift != CODE_DRIFT_NONE) {
                                log_notice("Keypad code drift on %s: %s.", cl->lock->name, s->reason);
                                record_event(cl, s->credential_id, "drift", "restoring", s->drift,
                                             s->reason);
                        }
                        if (d)
                                (void) write_state(cl, d,
                                                   s->drift != CODE_DRIFT_NONE ? CODE_SYNC_DRIFTED
                                                                               : CODE_SYNC_PENDING,
                                                   s->drift != CODE_DRIFT_NONE   ? s->reason
                                                   : s->kind == CODE_STEP_ADD    ? "adding"
                                                   : s->kind == CODE_STEP_UPDATE ? "updating"
                                                                                 : "removing",
                                                   s->kind == CODE_STEP_ADD ? -1 : s->code.id, NULL, false,
                                                   false);
                        break;
                case _CODE_STEP_KIND_MAX:
                        break;
                }
        }
}

static void step_failed(CodesLock *cl, const CodeStep *s, int r, const char *message)
{
        size_t idx;
        CodeDesired *d = s->credential_id > 0 ? desired_of(cl, s->credential_id, &idx) : NULL;
        char reason[200];

        if (d)
                cl->written[idx] = false; /* its state is settled here, not by the read-back */
        if (error_is_unreachable(r)) {
                mark_unreachable(cl, r, message);
                return;
        }
        snprintf(reason, sizeof reason, "the lock refused to %s it: %s", code_step_kind_to_string(s->kind),
                 message ?: strerror(-r));
        if (d)
                (void) write_state(cl, d, CODE_SYNC_FAILED, reason,
                                   s->kind == CODE_STEP_ADD ? -1 : s->code.id, NULL, false, true);
        record_event(cl, s->credential_id, code_step_kind_to_string(s->kind), "failed", s->drift, reason);
        cl->last_error = r;
}

static void on_step_done(Lock *l, int r, const char *message, void *userdata)
{
        CodesLock *cl = userdata;

        if (!op_returned(cl))
                return;
        if (r < 0)
                step_failed(cl, &cl->plan.steps[cl->step], r, message);
        cl->step++;
        run_next(cl);
}

static void on_add_done(Lock *l, int r, const char *message, int code_id, void *userdata)
{
        CodesLock *cl = userdata;
        CodeStep *s;
        CodeDesired *d;

        if (!op_returned(cl))
                return;
        s = &cl->plan.steps[cl->step];
        if (r < 0) {
                on_step_done(l, r, message, userdata);
                return;
        }
        d = desired_of(cl, s->credential_id, NULL);
        if (d) {
                /* The id first: from here on a lost connection cannot orphan the code. */
                d->code.id = code_id;
                (void) write_state(cl, d, CODE_SYNC_PENDING, "added, verifying", code_id, NULL, false,
                                   false);
        }
        if (!s->code.enabled && cl->lock->ops->update_code) {
                /* Add Keypad Code has no "enabled": a disabled code is added, then disabled. */
                s->kind = CODE_STEP_UPDATE;
                s->code.id = code_id;
                cl->op_in_flight = true;
                r = cl->lock->ops->update_code(cl->lock, &s->code, on_step_done, cl);
                if (r >= 0)
                        return;
                cl->op_in_flight = false;
                step_failed(cl, s, r, NULL);
        }
        cl->step++;
        run_next(cl);
}

static void on_verify_listed(Lock *l, int r, const char *message, const LockCode *codes, size_t n,
                             void *userdata);

static void run_next(CodesLock *cl)
{
        const struct lock_driver_ops *ops = cl->lock->ops;
        int r = 0;

        for (; !cl->unreachable && cl->step < cl->plan.n_steps; cl->step++) {
                CodeStep *s = &cl->plan.steps[cl->step];
                size_t idx;

                if (s->kind != CODE_STEP_ADD && s->kind != CODE_STEP_UPDATE && s->kind != CODE_STEP_REMOVE)
                        continue;
                if (s->credential_id > 0 && desired_of(cl, s->credential_id, &idx))
                        cl->written[idx] = true;
                cl->wrote = true;
                cl->op_in_flight = true;
                switch (s->kind) {
                case CODE_STEP_ADD:
                        r = ops->add_code ? ops->add_code(cl->lock, &s->code, on_add_done, cl) : -EOPNOTSUPP;
                        break;
                case CODE_STEP_UPDATE:
                        r = ops->update_code ? ops->update_code(cl->lock, &s->code, on_step_done, cl)
                                             : -EOPNOTSUPP;
                        break;
                case CODE_STEP_REMOVE:
                        r = ops->remove_code ? ops->remove_code(cl->lock, s->code.id, on_step_done, cl)
                                             : -EOPNOTSUPP;
                        break;
                case CODE_STEP_KEEP:
                case CODE_STEP_FORGET:
                case CODE_STEP_ADOPT:
                case CODE_STEP_ADOPT_REMOVAL:
                case CODE_STEP_REJECT:
                case _CODE_STEP_KIND_MAX:
                        r = -EINVAL;
                        break;
                }
                if (r >= 0)
                        return; /* continues in the callback */
                cl->op_in_flight = false;
                step_failed(cl, s, r, NULL);
        }

        if (cl->unreachable || !cl->wrote) {
                run_finish(cl);
                return;
        }
        cl->phase = PHASE_VERIFYING;
        cl->op_in_flight = true;
        r = ops->list_codes(cl->lock, on_verify_listed, cl);
        if (r < 0) {
                cl->op_in_flight = false;
                mark_unreachable(cl, r, NULL);
                run_finish(cl);
        }
}

static void on_verify_listed(Lock *l, int r, const char *message, const LockCode *codes, size_t n,
                             void *userdata)
{
        CodesLock *cl = userdata;

        if (!op_returned(cl))
                return;
        if (r < 0) {
                mark_unreachable(cl, r, message);
                run_finish(cl);
                return;
        }
        for (size_t i = 0; i < cl->n_desired; i++) {
                CodeDesired *d = &cl->desired[i];
                char reason[160];
                CodeSyncState st;
                int id;
                ssize_t k = -1;

                if (!cl->written[i])
                        continue;
                st = codes_verify(d, codes, n, &id, reason, sizeof reason);
                for (size_t j = 0; j < n; j++)
                        if (codes[j].id == id)
                                k = (ssize_t) j;
                if (st == CODE_SYNC_SYNCED && !d->present) {
                        record_event(cl, d->credential_id, "remove", "synced", CODE_DRIFT_NONE, NULL);
                        (void) codes_forget_assignment(cl->svc->store, cl->lock->store_id, d->credential_id);
                        continue;
                }
                (void) write_state(cl, d, st, reason, id, k >= 0 ? &codes[k] : NULL, true,
                                   st != CODE_SYNC_SYNCED);
                record_event(cl, d->credential_id, d->present ? "write" : "remove",
                             code_sync_state_to_string(st), CODE_DRIFT_NONE, reason);
        }
        /* Codes only the lock had, removed under DriftPolicy=hub: confirm they are gone. */
        for (size_t i = 0; i < cl->plan.n_steps; i++) {
                const CodeStep *s = &cl->plan.steps[i];

                if (s->kind != CODE_STEP_REMOVE || s->credential_id != 0)
                        continue;
                for (size_t j = 0; j < n; j++)
                        if (codes[j].id == s->code.id)
                                record_event(cl, 0, "remove", "failed", s->drift,
                                             "still on the lock after removing it");
        }
        run_finish(cl);
}

static void imported_key(CodesLock *cl, char *buf, size_t size)
{
        snprintf(buf, size, "codes.imported.lock.%" PRIi64, cl->lock->store_id);
}

static bool first_contact(CodesLock *cl)
{
        _cleanup_free_ char *v = NULL;
        char key[64];

        /* "1" only: a row id can come back after its lock was unpaired ("0") */
        imported_key(cl, key, sizeof key);
        return store_meta_get(cl->svc->store, key, &v) < 0 || !v || !streq(v, "1");
}

/* Codes the lock confirmed (present, synced_revision set) and no longer holds at all:
 * the lock lost every code, as after a factory reset. */
static size_t lost_all(CodesLock *cl, size_t n_lock_codes)
{
        size_t k = 0;

        if (n_lock_codes > 0)
                return 0;
        for (size_t i = 0; i < cl->n_desired; i++)
                if (cl->desired[i].present && cl->desired[i].synced_revision > 0)
                        k++;
        return k;
}

static void record_reprovision(CodesLock *cl, size_t n, bool restore)
{
        struct store_recovery_attempt a = {
                .lock_id = cl->lock->store_id,
                .step = (char *) "reprovision",
                .attempt = 1,
                .outcome = (char *) (restore ? "success" : "skipped"),
        };
        char detail[128];

        snprintf(detail, sizeof detail, "{\"status\":\"%s\",\"codes\":%zu}",
                 restore ? "reprovisioned" : "reset-detected", n);
        a.detail = detail;
        (void) store_recovery_append(cl->svc->store, &a);
        if (cl->lock->event_sink)
                (void) cl->lock->event_sink(cl->lock, "pairing", LOCK_SOURCE_HUB, NULL, detail,
                                            cl->lock->event_sink_userdata);
        log_notice("%s holds none of its %zu keypad codes (factory reset?): %s.", cl->lock->name, n,
                   restore ? "restoring them" : "ReprovisionAfterReset=no, leaving it to you");
}

static void on_listed(Lock *l, int r, const char *message, const LockCode *codes, size_t n, void *userdata)
{
        CodesLock *cl = userdata;
        ConfDriftPolicy p = policy(cl->svc);
        bool reprovision = cl->svc->conf && *cl->svc->conf ? (*cl->svc->conf)->codes.reprovision_after_reset
                                                           : true;
        size_t lost;
        char key[64];

        if (!op_returned(cl))
                return;
        if (r < 0) {
                mark_unreachable(cl, r, message);
                run_finish(cl);
                return;
        }
        /* A lock that lost every code was reset, not edited: re-provision it (whatever
         * DriftPolicy says) unless ReprovisionAfterReset=no, which leaves the codes drifted. */
        lost = lost_all(cl, n);
        if (lost > 0) {
                record_reprovision(cl, lost, reprovision);
                p = CONF_DRIFT_HUB; /* never adopt a reset as "removed on the lock" */
        }
        r = codes_plan(cl->desired, cl->n_desired, codes, n, p, &cl->plan);
        if (r < 0) {
                log_oom();
                cl->last_error = r;
                run_finish(cl);
                return;
        }
        if (first_contact(cl)) {
                for (size_t i = 0; i < cl->plan.n_steps; i++) {
                        CodeStep *s = &cl->plan.steps[i];

                        if (s->kind == CODE_STEP_REMOVE && s->credential_id == 0) {
                                s->kind = CODE_STEP_ADOPT;
                                cl->plan.n_writes--;
                        }
                }
                imported_key(cl, key, sizeof key);
                (void) store_meta_set(cl->svc->store, key, "1");
        }
        if (lost > 0 && !reprovision)
                for (size_t i = 0; i < cl->plan.n_steps; i++)
                        if (cl->plan.steps[i].kind == CODE_STEP_ADD &&
                            cl->plan.steps[i].drift == CODE_DRIFT_REMOVED) {
                                CodeDesired *d = desired_of(cl, cl->plan.steps[i].credential_id, NULL);

                                cl->plan.steps[i].kind = _CODE_STEP_KIND_MAX; /* left alone: no step */
                                cl->plan.n_writes--;
                                if (d)
                                        (void) write_state(cl, d, CODE_SYNC_DRIFTED,
                                                           "the lock lost all its codes (factory reset?); "
                                                           "ReprovisionAfterReset=no",
                                                           -1, NULL, false, false);
                        }
        if (cl->plan.n_drifts > 0 || cl->plan.n_writes > 0)
                log_info("Keypad codes of %s: %zu change(s) to write, %zu drift(s) found (%s).",
                         cl->lock->name, cl->plan.n_writes, cl->plan.n_drifts, cl->why);
        apply_plan_states(cl);
        cl->phase = PHASE_WRITING;
        cl->step = 0;
        run_next(cl);
}

static void run_start(CodesLock *cl)
{
        int r;

        run_reset(cl);
        cl->again = false;
        cl->phase = PHASE_LISTING;
        r = codes_desired_load(cl->svc->store, cl->lock->store_id, &cl->desired, &cl->n_desired);
        if (r >= 0) {
                cl->written = calloc(cl->n_desired + 1, sizeof *cl->written);
                if (!cl->written)
                        r = -ENOMEM;
        }
        if (r < 0) {
                log_warning_errno(r, "Failed to load the keypad codes of %s: %m", cl->lock->name);
                cl->last_error = r;
                run_finish(cl);
                return;
        }
        cl->op_in_flight = true;
        r = cl->lock->ops->list_codes(cl->lock, on_listed, cl);
        if (r < 0) {
                cl->op_in_flight = false;
                mark_unreachable(cl, r, NULL);
                run_finish(cl);
        }
}

/* Earliest retry any code of the lock asks for; 0 when none waits. */
static uint64_t next_retry_usec(CodesLock *cl)
{
        struct store_assignment *a = NULL;
        uint64_t best = 0;
        size_t n = 0;

        if (store_assignment_list(cl->svc->store, cl->lock->store_id, &a, &n) < 0)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i].state, "synced") && a[i].next_attempt_usec > 0 &&
                    (best == 0 || a[i].next_attempt_usec < best))
                        best = a[i].next_attempt_usec;
        store_assignment_array_free(a, n);
        return best;
}

/* Whether any code of the lock is not synced: a code added just before the daemon
 * stopped has no retry time yet, and still waits. */
static bool has_unsynced(CodesLock *cl)
{
        struct store_assignment *a = NULL;
        size_t n = 0;
        bool found = false;

        if (store_assignment_list(cl->svc->store, cl->lock->store_id, &a, &n) < 0)
                return false;
        for (size_t i = 0; i < n && !found; i++)
                found = !streq(a[i].state, "synced");
        store_assignment_array_free(a, n);
        return found;
}

static void run_finish(CodesLock *cl)
{
        CodesService *svc = cl->svc;
        int r = cl->unreachable ? (cl->last_error < 0 ? cl->last_error : -EHOSTUNREACH) : cl->last_error;
        uint64_t retry, now = now_usec();

        run_reset(cl);
        cl->phase = PHASE_IDLE;
        if (!cl->again)
                cl->why[0] = '\0';
        if (cl->again)
                (void) arm_timer(cl, 0);
        else if ((retry = next_retry_usec(cl)) > 0)
                (void) arm_timer(cl, retry > now ? retry - now : 0);
        if (svc->synced_cb)
                svc->synced_cb(svc, cl->lock, r, svc->synced_userdata);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        CodesLock *cl = userdata;

        if (cl->phase != PHASE_IDLE) {
                cl->again = true;
                return 0;
        }
        if (!cl->why[0])
                snprintf(cl->why, sizeof cl->why, "retry");
        run_start(cl);
        return 0;
}

static int arm_timer(CodesLock *cl, uint64_t delay_usec)
{
        int r;

        if (!cl->timer) {
                r = sd_event_add_time_relative(cl->svc->event, &cl->timer, CLOCK_MONOTONIC, delay_usec, 0,
                                               on_timer, cl);
                if (r < 0)
                        return log_warning_errno(r, "Failed to arm the code sync timer of %s: %m",
                                                 cl->lock->name);
                return sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT);
        }
        r = sd_event_source_set_time_relative(cl->timer, delay_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(cl->timer, SD_EVENT_ONESHOT);
        if (r < 0)
                return log_warning_errno(r, "Failed to arm the code sync timer of %s: %m", cl->lock->name);
        return 0;
}

/* ---- public ---- */

int codes_service_new(sd_event *event, Store *store, Conf *const *conf, CodesService **ret)
{
        CodesService *svc = calloc(1, sizeof *svc);

        if (!svc)
                return -ENOMEM;
        svc->event = sd_event_ref(event);
        svc->store = store;
        svc->conf = conf;
        *ret = svc;
        return 0;
}

CodesService *codes_service_free(CodesService *svc)
{
        if (!svc)
                return NULL;
        while (svc->n_locks > 0)
                codes_service_remove_lock(svc, svc->locks[svc->n_locks - 1]->lock);
        free(svc->locks);
        sd_event_unref(svc->event);
        free(svc);
        return NULL;
}

void codes_service_set_synced_callback(CodesService *svc, codes_synced_t cb, void *userdata)
{
        svc->synced_cb = cb;
        svc->synced_userdata = userdata;
}

static void codes_lock_detach(CodesService *svc, size_t i)
{
        CodesLock *cl = svc->locks[i];

        memmove(svc->locks + i, svc->locks + i + 1, (svc->n_locks - i - 1) * sizeof *svc->locks);
        svc->n_locks--;
        cl->timer = sd_event_source_disable_unref(cl->timer);
        if (cl->op_in_flight)
                cl->lock = NULL; /* freed when the driver reports back (it must, on free) */
        else
                codes_lock_free(cl);
}

static void settings_retry(CodesService *svc, Lock *l);

static void on_lock_changed(Lock *l, unsigned changes, void *userdata)
{
        CodesLock *cl = userdata;
        CodesService *svc = cl->svc;
        bool reachable;

        if (changes & LOCK_CHANGE_REMOVED) {
                /* Not lock_remove_listener(): the lock is walking its listeners right now. */
                for (size_t i = 0; i < svc->n_locks; i++)
                        if (svc->locks[i] == cl) {
                                codes_lock_detach(svc, i);
                                break;
                        }
                return;
        }
        if (changes & LOCK_CHANGE_CONFIG)
                (void) codes_service_sync(svc, l, "config-changed");
        if (!(changes & LOCK_CHANGE_LINK))
                return;
        reachable = l->link.reachable || l->link.connected;
        if (reachable && !cl->reachable && cl->phase == PHASE_IDLE && next_retry_usec(cl) > 0)
                (void) codes_service_sync(svc, l, "back-in-range");
        if (reachable && !cl->reachable)
                settings_retry(svc, l);
        cl->reachable = reachable;
}

int codes_service_add_lock(CodesService *svc, Lock *l)
{
        CodesLock *cl, **a;
        int r;

        if (!l->ops || !l->ops->list_codes || l->store_id <= 0)
                return 0;
        if (find(svc, l))
                return 0;
        cl = calloc(1, sizeof *cl);
        if (!cl)
                return -ENOMEM;
        a = reallocarray(svc->locks, svc->n_locks + 1, sizeof *a);
        if (!a) {
                free(cl);
                return -ENOMEM;
        }
        svc->locks = a;
        cl->svc = svc;
        cl->lock = l;
        cl->reachable = l->link.reachable || l->link.connected;
        r = lock_add_listener(l, on_lock_changed, cl);
        if (r < 0) {
                free(cl);
                return r;
        }
        svc->locks[svc->n_locks++] = cl;
        /* A lock never synced (just paired) is read at once, after getting back the codes
         * it held when a lock of its address was unpaired (ReprovisionAfterReset); codes
         * left waiting by a previous run of the daemon get their retry. */
        if (first_contact(cl)) {
                bool reprovision =
                                svc->conf && *svc->conf ? (*svc->conf)->codes.reprovision_after_reset : true;
                _cleanup_free_ char *settings = NULL;
                size_t n = 0;

                /* the settings it had (the snapshots of its address from before this pairing:
                 * the new pairing's own config is read after this) go back too */
                if (reprovision && l->ops && l->ops->apply_settings)
                        settings = codes_settings_load(svc->store, l->address);
                if (settings && codes_service_apply_settings(svc, l, settings, "reprovision") > 0)
                        log_notice("%s paired again: giving it back its settings.", l->name);
                else
                        settings = (free(settings), NULL);
                if (reprovision && codes_lock_reprovision(svc->store, l->store_id, l->address, &n) >= 0 &&
                    (n > 0 || settings)) {
                        char detail[96];

                        snprintf(detail, sizeof detail,
                                 "{\"status\":\"reprovisioned\",\"codes\":%zu,\"settings\":%s}", n,
                                 settings ? "true" : "false");
                        (void) store_recovery_append(
                                        svc->store,
                                        &(struct store_recovery_attempt){ .lock_id = l->store_id,
                                                                          .step = (char *) "reprovision",
                                                                          .attempt = 1,
                                                                          .outcome = (char *) "success",
                                                                          .detail = detail });
                        if (l->event_sink)
                                (void) l->event_sink(l, "pairing", LOCK_SOURCE_HUB, NULL, detail,
                                                     l->event_sink_userdata);
                        log_notice("%s paired again: giving it back its %zu keypad code(s).", l->name, n);
                }
                (void) codes_service_sync(svc, l, "paired");
        } else {
                settings_retry(svc, l);
                if (has_unsynced(cl))
                        (void) codes_service_sync(svc, l, "start");
        }
        return 1;
}

void codes_service_remove_lock(CodesService *svc, Lock *l)
{
        for (size_t i = 0; i < svc->n_locks; i++) {
                CodesLock *cl = svc->locks[i];

                if (cl->lock != l)
                        continue;
                lock_remove_listener(l, on_lock_changed, cl);
                codes_lock_detach(svc, i);
                return;
        }
}

int codes_service_sync(CodesService *svc, Lock *l, const char *why)
{
        CodesLock *cl = find(svc, l);

        if (!cl)
                return -EOPNOTSUPP;
        snprintf(cl->why, sizeof cl->why, "%s", why ?: "");
        if (cl->phase != PHASE_IDLE) {
                cl->again = true;
                return 0;
        }
        return arm_timer(cl, 0);
}

void codes_service_sync_locks(CodesService *svc, const int64_t *lock_ids, size_t n, const char *why)
{
        for (size_t i = 0; i < svc->n_locks; i++) {
                Lock *l = svc->locks[i]->lock;
                bool match = n == 0;

                for (size_t j = 0; !match && j < n; j++)
                        match = lock_ids[j] == l->store_id;
                if (match)
                        (void) codes_service_sync(svc, l, why);
        }
}

bool codes_service_busy(CodesService *svc, Lock *l)
{
        CodesLock *cl = find(svc, l);
        uint64_t t = 0;
        int enabled = SD_EVENT_OFF;

        if (!cl)
                return false;
        if (cl->phase != PHASE_IDLE || cl->again)
                return true;
        if (cl->timer && sd_event_source_get_enabled(cl->timer, &enabled) >= 0 && enabled != SD_EVENT_OFF &&
            sd_event_source_get_time(cl->timer, &t) >= 0) {
                uint64_t now = 0;
                (void) sd_event_now(cl->svc->event, CLOCK_MONOTONIC, &now);
                return t <= now;
        }
        return false;
}

/* ---- settings (restore, re-provisioning) ---- */

char *codes_settings_load(Store *s, const char *address)
{
        static const struct {
                const char *kind, *key;
        } snaps[] = { { "config", "config" },
                      { "advanced-config", "advanced_config" },
                      { "time-controls", "time_controls" } };
        json_object *o = json_object_new_object();
        char *ret = NULL;
        bool any = false;

        if (!o)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(snaps); i++) {
                _cleanup_free_ char *text = NULL;
                json_object *v;

                if (store_snapshot_latest(s, address, snaps[i].kind, &text) < 0 || !text)
                        continue;
                v = json_tokener_parse(text);
                if (!v)
                        continue;
                json_object_object_add(o, snaps[i].key, v);
                any = true;
        }
        if (any)
                ret = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return ret;
}

typedef struct SettingsCall {
        CodesService *svc;
        char why[32];
} SettingsCall;

/* meta key: settings waiting to be written to this lock (value: why; "" none) */
static void settings_pending_key(const Lock *l, char *buf, size_t size)
{
        snprintf(buf, size, "codes.settings-pending.lock.%" PRIi64, l->store_id);
}

static void on_settings_applied(Lock *l, int r, const char *message, void *userdata)
{
        _cleanup_free_ SettingsCall *c = userdata;
        json_object *o = json_object_new_object();
        bool retry = r < 0 && error_is_unreachable(r);
        CodesLock *cl;
        char key[64];

        /* -ECANCELED: the lock (or the daemon) is going away; it stays pending */
        if (r == -ECANCELED) {
                json_object_put(o);
                return;
        }
        cl = find(c->svc, l);
        if (cl)
                cl->settings_busy = false;
        settings_pending_key(l, key, sizeof key);
        (void) store_meta_set(c->svc->store, key, retry ? c->why : "");
        if (retry)
                log_notice("%s: settings not written (%s): %s; again when the lock is back.", l->name,
                           c->why, message ?: strerror(-r));
        else if (r < 0)
                log_warning_errno(r, "%s: could not write its settings (%s): %s", l->name, c->why,
                                  message ?: strerror(-r));
        else
                log_notice("%s: settings written to the lock (%s).", l->name, c->why);
        if (o && l->event_sink) {
                json_object_object_add(o, "settings",
                                       json_object_new_string(retry   ? "pending"
                                                              : r < 0 ? "failed"
                                                                      : "restored"));
                json_object_object_add(o, "why", json_object_new_string(c->why));
                if (r < 0)
                        json_object_object_add(o, "error", json_object_new_string(message ?: strerror(-r)));
                (void) l->event_sink(l, "config", LOCK_SOURCE_HUB, NULL,
                                     json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                                     l->event_sink_userdata);
        }
        json_object_put(o);
}

int codes_service_apply_settings(CodesService *svc, Lock *l, const char *settings_json, const char *why)
{
        CodesLock *cl;
        SettingsCall *c;
        int r;

        if (!l->ops || !l->ops->apply_settings)
                return -EOPNOTSUPP;
        if (!settings_json)
                return 0;
        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->svc = svc;
        snprintf(c->why, sizeof c->why, "%s", why);
        r = l->ops->apply_settings(l, settings_json, on_settings_applied, c);
        if (r < 0) {
                free(c);
                return log_warning_errno(r, "%s: cannot write its settings (%s): %m", l->name, why);
        }
        cl = find(svc, l);
        if (cl)
                cl->settings_busy = true;
        /* pending until the lock confirms (survives a restart of the daemon) */
        if (l->store_id > 0) {
                char key[64];
                settings_pending_key(l, key, sizeof key);
                (void) store_meta_set(svc->store, key, why);
        }
        return 1;
}

/* Settings that could not be written (lock away, daemon stopped): again, from the newest
 * snapshots. */
static void settings_retry(CodesService *svc, Lock *l)
{
        _cleanup_free_ char *why = NULL, *json = NULL;
        CodesLock *cl = find(svc, l);
        char key[64];

        if (l->store_id <= 0 || (cl && cl->settings_busy))
                return;
        settings_pending_key(l, key, sizeof key);
        if (store_meta_get(svc->store, key, &why) < 0 || !why || !*why)
                return;
        json = codes_settings_load(svc->store, l->address);
        if (!json || codes_service_apply_settings(svc, l, json, why) < 0)
                (void) store_meta_set(svc->store, key, "");
}

void codes_service_restore_settings(CodesService *svc, const int64_t *lock_ids, size_t n, const char *why)
{
        for (size_t i = 0; i < svc->n_locks; i++) {
                Lock *l = svc->locks[i]->lock;
                _cleanup_free_ char *json = NULL;
                bool match = false;

                for (size_t j = 0; !match && j < n; j++)
                        match = l && lock_ids[j] == l->store_id;
                if (!match)
                        continue;
                json = codes_settings_load(svc->store, l->address);
                (void) codes_service_apply_settings(svc, l, json, why);
        }
}
