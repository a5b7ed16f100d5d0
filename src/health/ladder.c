/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The recovery ladder (contract in lockhub/health.h).
 *
 * One HealthLadder per lock, all held by a HealthRecovery that also knows the adapters
 * (present, powered, when they last heard any advert, when we last power-cycled them)
 * and whether bluetoothd is there. The ladder never touches BlueZ: it decides, and the
 * ops act. Every decision is driven by an event (failure, success, advert, timer,
 * bluetoothd or adapter change), so nothing here loops: the only repetition is the
 * timer, which is always at least backoff_min away and doubles per step.
 *
 * An "episode" starts with the first link failure after a success and ends with the
 * next success (reset), with NEEDS_REPAIR, or by giving up after max_attempts steps.
 *
 * States and transitions (function behind each in brackets):
 *
 *                 link failure [ladder_start_episode]
 *      +------+ -------------------------------------> +---------+
 *      | IDLE | <------------------------------------- | BACKOFF | <-----------------+
 *      +------+   success, in any state but             +---------+                   |
 *         ^       NEEDS_REPAIR [ladder_reset]                | timer [ladder_take_step]  |
 *         |                                                  v                        |
 *         |   success: recorded "success"             +---------+  failure or step    |
 *         +------------------------------------------ | RUNNING | ------------------+
 *                                                     +---------+  timeout: recorded
 *                                                      |   |   |   "failure", next rung
 *          auth error (-EACCES) in any state           |   |   |   [ladder_step_failed →
 *          [ladder_needs_repair]                       |   |   |    ladder_climb]
 *      +--------------+ <------------------------------+   |   |
 *      | NEEDS_REPAIR |  health_ladder_repaired() → IDLE    |   | steps spent
 *      +--------------+                                    |   v [ladder_give_up]
 *                   connect failed and the lock is silent  | +---------+ timer: probe =
 *                   (no advert for lock_silent_usec), no   | | GAVE_UP | RUNNING(reconnect),
 *                   adapter evidence [ladder_wait_lock]    | +---------+ back here on failure
 *      +-----------+ <-------------------------------------+
 *      | WAIT_LOCK |  advert → new episode, BACKOFF [health_ladder_seen]
 *      +-----------+  slow timer: adapter evidence now? → climb to the adapter rung
 *
 *      any state but NEEDS_REPAIR, when bluetoothd goes or the lock's adapter is removed or
 *      powered off by someone else and no other adapter is usable [ladder_wait_adapter]:
 *      +--------------+  a running step is recorded "aborted". When it is back: IDLE, or a
 *      | WAIT_ADAPTER |  new episode starting with reconnect if one was under way
 *      +--------------+  [ladder_resume]
 *
 * The rungs, in order [ladder_plan]; a rung that does not apply is recorded "skipped"
 * (with the reason) and costs nothing; every rung taken costs one of max_attempts:
 *   1. retry          ×max(1, max_attempts − 3)
 *   2. reconnect      ×1
 *   3. adapter        ×1, only on evidence that the adapter is at fault: another lock on
 *                     it failing within evidence_window, or it heard no advert at all for
 *                     adapter_silent, or two connection attempts failed inside the adapter
 *                     (-ETIMEDOUT/-EBUSY/-EIO/-ENETDOWN on connect). Moved to another
 *                     adapter when one is usable and ops->move_adapter exists; else
 *                     power-cycled, if AdapterPowerCycle=yes, no other lock on it is
 *                     mid-action (deferred up to BUSY_DEFERRALS × BUSY_DEFER_USEC), and
 *                     the wait after our last cycle of it is over: 1, 5, 15, 30, 60 min
 *                     after the 1st, 2nd, ... cycle in a row that did not help (no lock
 *                     worked through the adapter since), capped at
 *                     adapter_cycle_max_interval. A rate-limited cycle is recorded "skipped";
 *                     when the wait ends within step_timeout it is waited for (BACKOFF
 *                     until then), else the ladder goes on to the next rung.
 *   4. remove-device  ×1: forget the device (stale GATT cache) and rediscover it.
 *                     A GATT error (characteristic or device object missing, an ATT
 *                     error answering a command) or health_ladder_services_changed()
 *                     jumps here directly.
 * A spent adapter rung opens again once that wait is over: a probe after giving up, or the
 * slow timer of WAIT_LOCK, that finds adapter evidence then starts a new round from the
 * adapter rung (adapter, then remove-device), so a hung adapter is cycled again and again,
 * ever less often, until it works [ladder_new_round].
 * Auth errors jump to NEEDS_REPAIR whatever the rung. Errors that prove the lock answered
 * (jammed, busy, invalid) count as success for the link.
 *
 * Invariants: a ladder's timer is armed only in BACKOFF, RUNNING (step timeout), GAVE_UP
 * and WAIT_LOCK; l->step is meaningful in BACKOFF and RUNNING; at most one power cycle
 * per adapter runs at a time (adapter->cycler).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/health.h"
#include "lockhub/log.h"
#include "lockhub/message-id.h"

#define DEFAULT_STEP_TIMEOUT_USEC    (3 * HEALTH_USEC_PER_MIN)
#define DEFAULT_LOCK_SILENT_USEC     (2 * HEALTH_USEC_PER_MIN)
#define DEFAULT_ADAPTER_SILENT_USEC  (2 * HEALTH_USEC_PER_MIN)
#define DEFAULT_CYCLE_INTERVAL_USEC  (60 * HEALTH_USEC_PER_MIN)
#define DEFAULT_EVIDENCE_WINDOW_USEC (10 * HEALTH_USEC_PER_MIN)
#define BUSY_DEFER_USEC              (5 * HEALTH_USEC_PER_SEC)
#define BUSY_DEFERRALS               12U
#define ADAPTER_ERRORS_EVIDENCE      2U
#define NAME_MAX_LEN                 32U
#define REASON_MAX                   192U

typedef struct Adapter {
        char name[NAME_MAX_LEN];
        bool present, powered;
        uint64_t known_since; /* monotonic: when it became present and powered */
        uint64_t last_heard;  /* monotonic: last advert of any device; 0 never */
        uint64_t last_cycle;  /* monotonic: start of our last power cycle; 0 never */
        unsigned cycles;      /* our cycles since a lock last worked through it */
        HealthLadder *cycler; /* the ladder whose power cycle is running, or NULL */
} Adapter;

struct HealthLadder {
        HealthRecovery *recovery;
        char *name;
        void *data;
        void *timer_data;

        HealthLadderState state;
        HealthStep step;
        char reason[REASON_MAX];
        char adapter[NAME_MAX_LEN];

        unsigned steps_taken;
        unsigned step_count[_HEALTH_STEP_MAX];
        bool tried_adapter, tried_remove, probing, stale_gatt, resume, jump_adapter;
        unsigned adapter_errors;
        unsigned deferrals;
        int last_error;
        HealthFailureKind last_kind;

        uint64_t episode_start, episode_start_rt;
        uint64_t step_start, step_start_rt;
        uint64_t created, last_seen, last_failure;
};

struct HealthRecovery {
        HealthRecoveryConfig config;
        HealthClock clock;
        void *clock_userdata;
        HealthLadderOps ops;
        void *userdata;

        HealthLadder **ladders;
        size_t n_ladders;
        Adapter *adapters;
        size_t n_adapters;

        bool bluez_up;
        uint64_t bluez_down_since, bluez_down_since_rt;
        uint64_t rng;
};

static const char *const step_names[_HEALTH_STEP_MAX] = {
        [HEALTH_STEP_RETRY] = "retry",
        [HEALTH_STEP_RECONNECT] = "reconnect",
        [HEALTH_STEP_POWER_CYCLE] = "adapter-power-cycle",
        [HEALTH_STEP_ADAPTER_MOVE] = "adapter-move",
        [HEALTH_STEP_REMOVE_DEVICE] = "device-remove",
        [HEALTH_STEP_NEEDS_REPAIR] = "needs-repair",
        [HEALTH_STEP_REPROVISION] = "reprovision",
        [HEALTH_STEP_BLUEZ_RESTART] = "bluez-restart",
};

static const char *const outcome_names[_HEALTH_OUTCOME_MAX] = {
        [HEALTH_OUTCOME_SUCCESS] = "success",
        [HEALTH_OUTCOME_FAILURE] = "failure",
        [HEALTH_OUTCOME_SKIPPED] = "skipped",
        [HEALTH_OUTCOME_ABORTED] = "aborted",
};

static const char *const state_names[_HEALTH_LADDER_STATE_MAX] = {
        [HEALTH_LADDER_IDLE] = "idle",
        [HEALTH_LADDER_BACKOFF] = "backoff",
        [HEALTH_LADDER_RUNNING] = "running",
        [HEALTH_LADDER_WAIT_LOCK] = "wait-lock",
        [HEALTH_LADDER_WAIT_ADAPTER] = "wait-adapter",
        [HEALTH_LADDER_GAVE_UP] = "gave-up",
        [HEALTH_LADDER_NEEDS_REPAIR] = "needs-repair",
};

const char *health_step_to_string(HealthStep s)
{
        return s >= 0 && s < _HEALTH_STEP_MAX ? step_names[s] : NULL;
}

const char *health_outcome_to_string(HealthOutcome o)
{
        return o >= 0 && o < _HEALTH_OUTCOME_MAX ? outcome_names[o] : NULL;
}

const char *health_ladder_state_to_string(HealthLadderState s)
{
        return s >= 0 && s < _HEALTH_LADDER_STATE_MAX ? state_names[s] : NULL;
}

const char *health_attempt_message_id(HealthStep step, HealthOutcome outcome)
{
        switch (step) {
        case HEALTH_STEP_NEEDS_REPAIR:
                return LOCKHUB_MESSAGE_RECOVERY_NEEDS_REPAIR;
        case HEALTH_STEP_BLUEZ_RESTART:
                return LOCKHUB_MESSAGE_BLUEZ_RESTARTED;
        case HEALTH_STEP_REPROVISION:
                return LOCKHUB_MESSAGE_REPROVISIONED;
        case HEALTH_STEP_RETRY:
        case HEALTH_STEP_RECONNECT:
        case HEALTH_STEP_POWER_CYCLE:
        case HEALTH_STEP_ADAPTER_MOVE:
        case HEALTH_STEP_REMOVE_DEVICE:
        case _HEALTH_STEP_MAX:
                break;
        }
        switch (outcome) {
        case HEALTH_OUTCOME_SUCCESS:
                return LOCKHUB_MESSAGE_RECOVERY_RECOVERED;
        case HEALTH_OUTCOME_FAILURE:
                return LOCKHUB_MESSAGE_RECOVERY_STEP_FAILED;
        case HEALTH_OUTCOME_SKIPPED:
                return LOCKHUB_MESSAGE_RECOVERY_STEP_SKIPPED;
        case HEALTH_OUTCOME_ABORTED:
        case _HEALTH_OUTCOME_MAX:
                break;
        }
        return LOCKHUB_MESSAGE_RECOVERY_ABORTED;
}

HealthErrorClass health_error_class(HealthFailureKind kind, int error)
{
        switch (abs(error)) {
        case EACCES:
        case EKEYREJECTED:
        case EKEYREVOKED:
        case EKEYEXPIRED:
                return HEALTH_ERROR_AUTH;
        case ECANCELED:
        case EHOSTDOWN:
        case ESHUTDOWN:
        case 0:
                return HEALTH_ERROR_IGNORE;
        case ENOENT:
        case ENODEV:
                return HEALTH_ERROR_GATT;
        case EPROTO:
                /* An ATT error answering our write (invalid handle and friends): the
                 * handles BlueZ cached no longer match the lock's table. */
                return kind == HEALTH_FAILURE_COMMAND ? HEALTH_ERROR_GATT : HEALTH_ERROR_LINK;
        case EDEADLK:
        case EINVAL:
        case ENOKEY:
        case EOPNOTSUPP:
        case EREMOTEIO:
        case EPERM:
                return HEALTH_ERROR_LOCK;
        case ENETDOWN:
        case ERFKILL:
                return HEALTH_ERROR_ADAPTER;
        case EBUSY:
                /* From the lock: it is busy, so it answered. From Connect: the adapter. */
                return kind == HEALTH_FAILURE_CONNECT ? HEALTH_ERROR_ADAPTER : HEALTH_ERROR_LOCK;
        case ETIMEDOUT:
        case EIO:
                /* A Connect that bluetoothd does not answer, or answers with a bare
                 * Failed, points at the adapter; a command that times out at the lock
                 * does not. */
                return kind == HEALTH_FAILURE_CONNECT ? HEALTH_ERROR_ADAPTER : HEALTH_ERROR_LINK;
        default:
                return HEALTH_ERROR_LINK;
        }
}

uint64_t health_backoff_usec(uint64_t min_usec, uint64_t max_usec, unsigned n, uint32_t rnd)
{
        uint64_t base = min_usec, d;

        if (min_usec == 0)
                min_usec = base = 1;
        if (max_usec < min_usec)
                max_usec = min_usec;
        for (unsigned i = 1; i < n && base < max_usec; i++)
                base = base > max_usec / 2 ? max_usec : base * 2;
        base = MIN(base, max_usec);
        /* ±20 %: 80..120 % of base, in 1/1000 steps. */
        d = base / 1000 * (800 + rnd % 401) + base % 1000 * (800 + rnd % 401) / 1000;
        return MAX(MIN(d, max_usec), min_usec);
}

/* ---- plumbing ---------------------------------------------------------------------------- */

static uint64_t now(HealthRecovery *r)
{
        return r->clock.now(r->clock_userdata);
}

static uint64_t realtime(HealthRecovery *r)
{
        return r->clock.realtime ? r->clock.realtime(r->clock_userdata) : now(r);
}

static uint32_t rnd(HealthRecovery *r)
{
        if (r->clock.random)
                return r->clock.random(r->clock_userdata);
        /* xorshift64: jitter only needs to differ between locks and steps. */
        r->rng ^= r->rng << 13;
        r->rng ^= r->rng >> 7;
        r->rng ^= r->rng << 17;
        return (uint32_t) (r->rng >> 32);
}

static void timer_set(HealthLadder *l, uint64_t usec)
{
        HealthRecovery *r = l->recovery;
        int q;

        q = r->clock.timer_set(l, usec, r->clock_userdata);
        if (q < 0)
                log_error_errno(q, "%s: cannot arm the recovery timer: %m", l->name);
}

static void fmt_usec(char *buf, size_t n, uint64_t usec)
{
        if (usec >= HEALTH_USEC_PER_HOUR)
                snprintf(buf, n, "%.1f h", (double) usec / (double) HEALTH_USEC_PER_HOUR);
        else if (usec >= HEALTH_USEC_PER_MIN)
                snprintf(buf, n, "%.1f min", (double) usec / (double) HEALTH_USEC_PER_MIN);
        else
                snprintf(buf, n, "%.1f s", (double) usec / (double) HEALTH_USEC_PER_SEC);
}

static Adapter *adapter_find(HealthRecovery *r, const char *name)
{
        if (!name || !*name)
                return NULL;
        for (size_t i = 0; i < r->n_adapters; i++)
                if (streq(r->adapters[i].name, name))
                        return &r->adapters[i];
        return NULL;
}

static Adapter *adapter_get(HealthRecovery *r, const char *name)
{
        Adapter *a = adapter_find(r, name), *n;

        if (a || !name || !*name || strlen(name) >= NAME_MAX_LEN)
                return a;
        n = realloc(r->adapters, (r->n_adapters + 1) * sizeof *n);
        if (!n)
                return NULL;
        r->adapters = n;
        a = &r->adapters[r->n_adapters++];
        *a = (Adapter){ .present = true, .powered = true, .known_since = now(r) };
        snprintf(a->name, sizeof a->name, "%s", name);
        return a;
}

static bool adapter_usable(const Adapter *a)
{
        return a->present && a->powered && !a->cycler;
}

static void note_adapter(HealthLadder *l, const char *adapter)
{
        if (adapter && *adapter && strlen(adapter) < sizeof l->adapter) {
                snprintf(l->adapter, sizeof l->adapter, "%s", adapter);
                (void) adapter_get(l->recovery, adapter);
        }
}

/* Logs and hands over one step; the only place attempts leave the ladder. */
static void record(HealthRecovery *r, HealthLadder *l, HealthStep step, unsigned attempt,
                   HealthOutcome outcome, uint64_t start_rt, uint64_t duration, int error,
                   const char *reason, const char *adapter)
{
        HealthAttempt a = {
                .lock = l ? l->name : NULL,
                .lock_data = l ? l->data : NULL,
                .adapter = adapter && *adapter ? adapter : NULL,
                .step = step,
                .attempt = MAX(attempt, 1u),
                .outcome = outcome,
                .start_usec = start_rt,
                .duration_usec = duration,
                .error = error,
                .reason = strempty(reason),
        };
        char f_id[64], f_lock[64], f_adapter[64], f_step[64], f_attempt[32], f_outcome[32], f_dur[48],
                        f_reason[REASON_MAX + 8], d[32];
        int level;

        snprintf(f_id, sizeof f_id, "MESSAGE_ID=%s", health_attempt_message_id(step, outcome));
        snprintf(f_lock, sizeof f_lock, "LOCK=%s", strna(a.lock));
        snprintf(f_adapter, sizeof f_adapter, "ADAPTER=%s", strna(a.adapter));
        snprintf(f_step, sizeof f_step, "STEP=%s", step_names[step]);
        snprintf(f_attempt, sizeof f_attempt, "ATTEMPT=%u", a.attempt);
        snprintf(f_outcome, sizeof f_outcome, "OUTCOME=%s", outcome_names[outcome]);
        snprintf(f_dur, sizeof f_dur, "DURATION_USEC=%" PRIu64, duration);
        snprintf(f_reason, sizeof f_reason, "REASON=%s", a.reason);
        fmt_usec(d, sizeof d, duration);

        switch (outcome) {
        case HEALTH_OUTCOME_SUCCESS:
                level = step == HEALTH_STEP_NEEDS_REPAIR ? LOG_WARNING : LOG_NOTICE;
                break;
        case HEALTH_OUTCOME_FAILURE:
                level = LOG_WARNING;
                break;
        case HEALTH_OUTCOME_SKIPPED:
        case HEALTH_OUTCOME_ABORTED:
        case _HEALTH_OUTCOME_MAX:
        default:
                level = LOG_INFO;
                break;
        }
        (void) log_struct(level, error,
                          LOG_FIELDS(f_id, f_lock, f_adapter, f_step, f_attempt, f_outcome, f_dur, f_reason),
                          "%s: recovery step %s #%u: %s after %s (%s)%s%s", strna(a.lock), step_names[step],
                          a.attempt, outcome_names[outcome], d, a.reason, error ? ": " : "",
                          error ? strerror(abs(error)) : "");
        if (r->ops.record_attempt)
                r->ops.record_attempt(&a, r->userdata);
}

static void ladder_set_state(HealthLadder *l, HealthLadderState s)
{
        HealthLadderState old = l->state;

        if (old == s)
                return;
        l->state = s;
        switch (s) {
        case HEALTH_LADDER_IDLE:
        case HEALTH_LADDER_WAIT_ADAPTER:
        case HEALTH_LADDER_NEEDS_REPAIR:
                timer_set(l, 0);
                break;
        case HEALTH_LADDER_BACKOFF:
        case HEALTH_LADDER_RUNNING:
        case HEALTH_LADDER_WAIT_LOCK:
        case HEALTH_LADDER_GAVE_UP:
        case _HEALTH_LADDER_STATE_MAX:
                break;
        }
        log_debug("%s: recovery %s → %s (%s)", l->name, state_names[old], state_names[s], l->reason);
        if (l->recovery->ops.state_changed)
                l->recovery->ops.state_changed(l, old, l->recovery->userdata);
}

static void set_reason(HealthLadder *l, const char *fmt, ...) _printf_(2, 3);
static void set_reason(HealthLadder *l, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(l->reason, sizeof l->reason, fmt, ap);
        va_end(ap);
}

/* ---- evidence ----------------------------------------------------------------------------- */

static bool ladder_in_trouble(const HealthLadder *l, uint64_t t, uint64_t window)
{
        switch (l->state) {
        case HEALTH_LADDER_BACKOFF:
        case HEALTH_LADDER_RUNNING:
        case HEALTH_LADDER_GAVE_UP:
        case HEALTH_LADDER_WAIT_LOCK:
                return true;
        case HEALTH_LADDER_IDLE:
                return l->last_failure > 0 && t - l->last_failure < window;
        case HEALTH_LADDER_WAIT_ADAPTER:
        case HEALTH_LADDER_NEEDS_REPAIR:
        case _HEALTH_LADDER_STATE_MAX:
                break;
        }
        return false;
}

/* Does what we know point at l's adapter? Fills why. */
static bool adapter_evidence(HealthLadder *l, char *why, size_t n)
{
        HealthRecovery *r = l->recovery;
        uint64_t t = now(r);
        Adapter *a = adapter_find(r, l->adapter);
        unsigned others = 0;
        char d[32];

        if (!a) {
                snprintf(why, n, "the adapter is not known");
                return false;
        }
        for (size_t i = 0; i < r->n_ladders; i++) {
                HealthLadder *o = r->ladders[i];
                if (o != l && streq(o->adapter, l->adapter) &&
                    ladder_in_trouble(o, t, r->config.evidence_window_usec))
                        others++;
        }
        if (others > 0) {
                snprintf(why, n, "%u other lock%s on %s failing too", others, others == 1 ? "" : "s",
                         a->name);
                return true;
        }
        if (a->present && a->powered &&
            t - MAX(a->last_heard, a->known_since) >= r->config.adapter_silent_usec) {
                fmt_usec(d, sizeof d, t - MAX(a->last_heard, a->known_since));
                snprintf(why, n, "%s has heard no advert from any device for %s", a->name, d);
                return true;
        }
        if (l->adapter_errors >= ADAPTER_ERRORS_EVIDENCE) {
                snprintf(why, n, "%u connection attempts failed inside %s", l->adapter_errors, a->name);
                return true;
        }
        snprintf(why, n, "no sign that %s is at fault (other devices are heard, no other lock fails)",
                 a->name);
        return false;
}

static bool lock_silent(HealthLadder *l)
{
        return now(l->recovery) - MAX(l->last_seen, l->created) >= l->recovery->config.lock_silent_usec;
}

/* How long after our last cycle of a the next one may start. */
static uint64_t cycle_wait(const HealthRecovery *r, const Adapter *a)
{
        static const uint64_t waits[] = {
                1 * HEALTH_USEC_PER_MIN,  5 * HEALTH_USEC_PER_MIN,  15 * HEALTH_USEC_PER_MIN,
                30 * HEALTH_USEC_PER_MIN, 60 * HEALTH_USEC_PER_MIN,
        };

        return MIN(waits[MIN(MAX(a->cycles, 1u), ELEMENTSOF(waits)) - 1],
                   r->config.adapter_cycle_max_interval_usec);
}

/* Until when (monotonic) a power cycle of a is rate-limited; 0: it is not. */
static uint64_t cycle_not_before(const HealthRecovery *r, const Adapter *a)
{
        uint64_t t = now((HealthRecovery *) r);

        if (a->last_cycle == 0 || t - a->last_cycle >= cycle_wait(r, a))
                return 0;
        return a->last_cycle + cycle_wait(r, a);
}

static Adapter *other_usable_adapter(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;

        for (size_t i = 0; i < r->n_adapters; i++)
                if (!streq(r->adapters[i].name, l->adapter) && adapter_usable(&r->adapters[i]))
                        return &r->adapters[i];
        return NULL;
}

/* ---- transitions -------------------------------------------------------------------------- */

static void ladder_reset(HealthLadder *l)
{
        l->steps_taken = 0;
        memset(l->step_count, 0, sizeof l->step_count);
        l->tried_adapter = l->tried_remove = l->probing = l->stale_gatt = l->resume = l->jump_adapter =
                        false;
        l->adapter_errors = l->deferrals = 0;
        l->episode_start = l->episode_start_rt = 0;
        set_reason(l, "working");
        ladder_set_state(l, HEALTH_LADDER_IDLE);
}

static void ladder_schedule(HealthLadder *l, HealthStep step)
{
        HealthRecovery *r = l->recovery;

        l->step = step;
        l->deferrals = 0;
        ladder_set_state(l, HEALTH_LADDER_BACKOFF);
        timer_set(l, now(r) + health_backoff_usec(r->config.backoff_min_usec, r->config.backoff_max_usec,
                                                  l->steps_taken + 1, rnd(r)));
}

static void ladder_give_up(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;
        char f_id[64], f_lock[64], f_steps[32];
        bool first = !l->probing && l->state != HEALTH_LADDER_GAVE_UP;

        l->probing = false;
        snprintf(f_id, sizeof f_id, "MESSAGE_ID=%s", LOCKHUB_MESSAGE_RECOVERY_GAVE_UP);
        snprintf(f_lock, sizeof f_lock, "LOCK=%s", l->name);
        snprintf(f_steps, sizeof f_steps, "STEPS=%u", l->steps_taken);
        if (first)
                (void) log_struct(LOG_ERR, l->last_error, LOG_FIELDS(f_id, f_lock, f_steps),
                                  "%s: recovery gave up after %u steps; trying again now and then", l->name,
                                  l->steps_taken);
        set_reason(l, "every recovery step was tried (%u)", l->steps_taken);
        ladder_set_state(l, HEALTH_LADDER_GAVE_UP);
        timer_set(l, now(r) + health_backoff_usec(r->config.backoff_max_usec, r->config.backoff_max_usec, 1,
                                                  rnd(r)));
}

static void ladder_wait_lock(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;
        char d[32];

        fmt_usec(d, sizeof d, now(r) - MAX(l->last_seen, l->created));
        set_reason(l, "not heard from for %s: out of range or batteries dead", d);
        l->probing = false;
        ladder_set_state(l, HEALTH_LADDER_WAIT_LOCK);
        timer_set(l, now(r) + r->config.backoff_max_usec);
}

static void ladder_needs_repair(HealthLadder *l, int error)
{
        HealthRecovery *r = l->recovery;
        uint64_t t = now(r);

        if (l->state == HEALTH_LADDER_RUNNING)
                record(r, l, l->step, l->step_count[l->step], HEALTH_OUTCOME_FAILURE, l->step_start_rt,
                       t - l->step_start, error, l->reason, l->adapter);
        set_reason(l, "it answered \"not authorized\", or its answers cannot be decrypted");
        l->last_error = error;
        l->probing = false;
        ladder_set_state(l, HEALTH_LADDER_NEEDS_REPAIR);
        record(r, l, HEALTH_STEP_NEEDS_REPAIR, 1, HEALTH_OUTCOME_SUCCESS, realtime(r), 0, error, l->reason,
               l->adapter);
        if (r->ops.mark_needs_repair)
                r->ops.mark_needs_repair(l, l->reason, r->userdata);
}

static void skip(HealthLadder *l, HealthStep step, const char *why)
{
        record(l->recovery, l, step, l->step_count[step] + 1, HEALTH_OUTCOME_SKIPPED, realtime(l->recovery),
               0, 0, why, l->adapter);
}

static unsigned retries_budget(const HealthRecovery *r)
{
        unsigned max = MAX(r->config.max_attempts, 1u);

        return max >= 4 ? max - 3 : 1;
}

/* Chooses the next rung and schedules it, or gives up. */
static void ladder_climb(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;
        unsigned max = MAX(r->config.max_attempts, 1u);
        unsigned retries = retries_budget(r);
        char why[REASON_MAX];

        if (l->steps_taken >= max)
                return ladder_give_up(l);

        if (l->stale_gatt && !l->tried_remove) {
                l->tried_remove = true;
                set_reason(l, "the lock's GATT table changed or a characteristic is missing: stale cache");
                return ladder_schedule(l, HEALTH_STEP_REMOVE_DEVICE);
        }
        if (!l->jump_adapter && l->step_count[HEALTH_STEP_RETRY] < retries) {
                set_reason(l, "%s failed (%s)",
                           l->last_kind == HEALTH_FAILURE_CONNECT ? "connecting" : "a command",
                           strerror(abs(l->last_error)));
                return ladder_schedule(l, HEALTH_STEP_RETRY);
        }
        if (!l->jump_adapter && l->step_count[HEALTH_STEP_RECONNECT] == 0) {
                set_reason(l, "retrying did not help (%s)", strerror(abs(l->last_error)));
                return ladder_schedule(l, HEALTH_STEP_RECONNECT);
        }
        if (!l->tried_adapter) {
                Adapter *a = adapter_find(r, l->adapter), *other;

                l->tried_adapter = true;
                l->jump_adapter = false;
                if (!adapter_evidence(l, why, sizeof why))
                        skip(l, HEALTH_STEP_POWER_CYCLE, why);
                else if ((other = other_usable_adapter(l)) && r->ops.move_adapter) {
                        set_reason(l, "%s; moving to %s", why, other->name);
                        return ladder_schedule(l, HEALTH_STEP_ADAPTER_MOVE);
                } else if (r->config.adapter_power_cycle && a && a->cycler) {
                        /* Another lock's cycle of this adapter is running: its end
                         * reconnects us too (health_recovery_power_cycle_done()). */
                        set_reason(l, "%s; %s is being power-cycled already", why, a->name);
                        return ladder_schedule(l, HEALTH_STEP_POWER_CYCLE);
                } else if (!r->config.adapter_power_cycle) {
                        snprintf(why + strlen(why), sizeof why - strlen(why), "; AdapterPowerCycle=no");
                        skip(l, HEALTH_STEP_POWER_CYCLE, why);
                } else if (a && cycle_not_before(r, a) > 0) {
                        uint64_t until = cycle_not_before(r, a);
                        char d[32], w[32];
                        fmt_usec(d, sizeof d, now(r) - a->last_cycle);
                        fmt_usec(w, sizeof w, until - now(r));
                        snprintf(why + strlen(why), sizeof why - strlen(why),
                                 "; but %s was power-cycled %s ago: again in %s", a->name, d, w);
                        skip(l, HEALTH_STEP_POWER_CYCLE, why);
                        if (until - now(r) <= r->config.step_timeout_usec) {
                                /* Soon: wait for it rather than spend the other rungs. */
                                set_reason(l, "%s", why);
                                l->step = HEALTH_STEP_POWER_CYCLE;
                                l->deferrals = 0;
                                ladder_set_state(l, HEALTH_LADDER_BACKOFF);
                                timer_set(l, until);
                                return;
                        }
                } else {
                        set_reason(l, "%s", why);
                        return ladder_schedule(l, HEALTH_STEP_POWER_CYCLE);
                }
        }
        if (!l->tried_remove) {
                l->tried_remove = true;
                set_reason(l, "reconnecting did not help: clearing BlueZ's cache of the device");
                return ladder_schedule(l, HEALTH_STEP_REMOVE_DEVICE);
        }
        ladder_give_up(l);
}

/* May the adapter rung be taken (again)? Not yet tried in this episode, or tried (or
 * passed over for want of evidence) and the wait after our last cycle of the adapter,
 * if any, is over. */
static bool adapter_rung_open(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;
        Adapter *a;

        if (!l->tried_adapter)
                return true;
        if (!r->config.adapter_power_cycle && !r->ops.move_adapter)
                return false;
        a = adapter_find(r, l->adapter);
        return a && !a->cycler && cycle_not_before(r, a) == 0;
}

/* The adapter is still suspect and may be acted on again: climb from the adapter rung
 * (then remove-device) with a fresh budget. False when not. */
static bool ladder_new_round(HealthLadder *l)
{
        char why[REASON_MAX];

        if (!adapter_rung_open(l) || !adapter_evidence(l, why, sizeof why))
                return false;
        if (l->tried_adapter) {
                log_info("%s: recovery starts over from the adapter rung (%s)", l->name, why);
                l->tried_adapter = l->tried_remove = false;
                l->steps_taken = 0;
        }
        l->probing = false;
        l->jump_adapter = true;
        ladder_climb(l);
        return true;
}

/* After a failure outside a running step, or after a step failed: wait for the lock,
 * for the adapter, or climb. */
static void ladder_after_failure(HealthLadder *l)
{
        if (l->last_kind == HEALTH_FAILURE_CONNECT && lock_silent(l)) {
                /* A lock that is not heard is away or dead: nothing to repair here,
                 * unless the adapter itself may be deaf. */
                if (ladder_new_round(l))
                        return;
                return ladder_wait_lock(l);
        }
        if (l->probing) {
                if (ladder_new_round(l))
                        return;
                return ladder_give_up(l);
        }
        ladder_climb(l);
}

static void ladder_start_episode(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;

        l->episode_start = now(r);
        l->episode_start_rt = realtime(r);
        ladder_after_failure(l);
}

static int step_op(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;
        Adapter *a;

        switch (l->step) {
        case HEALTH_STEP_RETRY:
                return r->ops.retry ? r->ops.retry(l, r->userdata) : -EOPNOTSUPP;
        case HEALTH_STEP_RECONNECT:
                return r->ops.reconnect ? r->ops.reconnect(l, r->userdata) : -EOPNOTSUPP;
        case HEALTH_STEP_ADAPTER_MOVE:
                return r->ops.move_adapter ? r->ops.move_adapter(l, l->adapter, r->userdata) : -EOPNOTSUPP;
        case HEALTH_STEP_REMOVE_DEVICE:
                return r->ops.remove_device ? r->ops.remove_device(l, r->userdata) : -EOPNOTSUPP;
        case HEALTH_STEP_POWER_CYCLE:
                if (!r->ops.power_cycle_adapter)
                        return -EOPNOTSUPP;
                a = adapter_get(r, l->adapter);
                if (!a)
                        return -ENODEV;
                a->cycles = MIN(a->cycles + 1, 1000u);
                a->cycler = l;
                a->last_cycle = now(r);
                return r->ops.power_cycle_adapter(r, a->name, r->userdata);
        case HEALTH_STEP_NEEDS_REPAIR:
        case HEALTH_STEP_REPROVISION:
        case HEALTH_STEP_BLUEZ_RESTART:
        case _HEALTH_STEP_MAX:
                break;
        }
        return -EINVAL;
}

static void ladder_step_failed(HealthLadder *l, int error);

/* BACKOFF → RUNNING: the timer fired. */
static void ladder_take_step(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;
        int q;

        if (l->step == HEALTH_STEP_POWER_CYCLE) {
                Adapter *a = adapter_find(r, l->adapter);
                bool busy = r->ops.adapter_busy && r->ops.adapter_busy(l->adapter, l, r->userdata);

                if (a && a->cycler)
                        busy = true; /* another lock's cycle: its end reconnects us too */
                if (busy) {
                        if (++l->deferrals <= BUSY_DEFERRALS) {
                                timer_set(l, now(r) + BUSY_DEFER_USEC);
                                return;
                        }
                        skip(l, HEALTH_STEP_POWER_CYCLE, "another lock on the adapter stayed busy");
                        return ladder_climb(l);
                }
        }

        l->steps_taken++;
        l->step_count[l->step]++;
        l->step_start = now(r);
        l->step_start_rt = realtime(r);
        ladder_set_state(l, HEALTH_LADDER_RUNNING);
        timer_set(l, l->step_start + r->config.step_timeout_usec);
        q = step_op(l);
        if (q < 0 && l->state == HEALTH_LADDER_RUNNING) {
                if (l->step == HEALTH_STEP_POWER_CYCLE) {
                        Adapter *a = adapter_find(r, l->adapter);
                        if (a && a->cycler == l)
                                a->cycler = NULL;
                }
                ladder_step_failed(l, q);
        }
}

/* RUNNING → (recorded) → next rung, wait, or give up. */
static void ladder_step_failed(HealthLadder *l, int error)
{
        HealthRecovery *r = l->recovery;

        l->last_error = error;
        record(r, l, l->step, l->step_count[l->step], HEALTH_OUTCOME_FAILURE, l->step_start_rt,
               now(r) - l->step_start, error, l->reason, l->adapter);
        ladder_after_failure(l);
}

/* RUNNING → IDLE. */
static void ladder_step_succeeded(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;

        record(r, l, l->step, l->step_count[l->step], HEALTH_OUTCOME_SUCCESS, l->step_start_rt,
               now(r) - l->step_start, 0, l->reason, l->adapter);
        ladder_reset(l);
}

/* Whatever was running is overtaken by bluetoothd or the adapter going away. */
static void ladder_wait_adapter(HealthLadder *l, const char *why)
{
        HealthRecovery *r = l->recovery;

        if (l->state == HEALTH_LADDER_NEEDS_REPAIR || l->state == HEALTH_LADDER_WAIT_ADAPTER)
                return;
        l->resume = l->state != HEALTH_LADDER_IDLE;
        if (l->state == HEALTH_LADDER_RUNNING)
                record(r, l, l->step, l->step_count[l->step], HEALTH_OUTCOME_ABORTED, l->step_start_rt,
                       now(r) - l->step_start, 0, why, l->adapter);
        set_reason(l, "%s", why);
        ladder_set_state(l, HEALTH_LADDER_WAIT_ADAPTER);
}

/* WAIT_ADAPTER → IDLE, or a new episode that starts by reconnecting. */
static void ladder_resume(HealthLadder *l)
{
        bool resume = l->resume;

        if (l->state != HEALTH_LADDER_WAIT_ADAPTER)
                return;
        ladder_reset(l);
        if (!resume)
                return;
        l->episode_start = now(l->recovery);
        l->episode_start_rt = realtime(l->recovery);
        /* Straight to reconnect: retrying over links that died with bluetoothd is moot. */
        l->step_count[HEALTH_STEP_RETRY] = retries_budget(l->recovery);
        set_reason(l, "Bluetooth is back: reconnecting");
        ladder_schedule(l, HEALTH_STEP_RECONNECT);
}

/* ---- public: events ------------------------------------------------------------------------ */

void health_ladder_failure(HealthLadder *l, HealthFailureKind kind, int error, const char *adapter)
{
        HealthRecovery *r = l->recovery;
        HealthErrorClass c = health_error_class(kind, error);
        Adapter *a;

        note_adapter(l, adapter);
        switch (c) {
        case HEALTH_ERROR_IGNORE:
                return;
        case HEALTH_ERROR_LOCK:
                /* The lock answered: the link is fine, whatever the command's fate. */
                return health_ladder_success(l, adapter);
        case HEALTH_ERROR_AUTH:
                if (l->state != HEALTH_LADDER_NEEDS_REPAIR)
                        ladder_needs_repair(l, error);
                return;
        case HEALTH_ERROR_GATT:
                l->stale_gatt = true;
                break;
        case HEALTH_ERROR_ADAPTER:
                l->adapter_errors++;
                break;
        case HEALTH_ERROR_LINK:
        case _HEALTH_ERROR_CLASS_MAX:
                break;
        }

        a = adapter_find(r, l->adapter);
        if (a && a->cycler && a->cycler != l && l->state != HEALTH_LADDER_RUNNING)
                return; /* expected while we power-cycle its adapter */

        l->last_error = error;
        l->last_kind = kind;
        l->last_failure = now(r);

        switch (l->state) {
        case HEALTH_LADDER_IDLE:
                return ladder_start_episode(l);
        case HEALTH_LADDER_RUNNING:
                if (l->step == HEALTH_STEP_POWER_CYCLE && a && a->cycler == l)
                        return; /* the cycle's own disruption; its end decides */
                return ladder_step_failed(l, error);
        case HEALTH_LADDER_BACKOFF:
        case HEALTH_LADDER_WAIT_LOCK:
        case HEALTH_LADDER_WAIT_ADAPTER:
        case HEALTH_LADDER_GAVE_UP:
        case HEALTH_LADDER_NEEDS_REPAIR:
        case _HEALTH_LADDER_STATE_MAX:
                /* Already handled or waiting: the failure is noted, no new step. */
                return;
        }
}

void health_ladder_success(HealthLadder *l, const char *adapter)
{
        HealthRecovery *r = l->recovery;
        Adapter *ad;

        note_adapter(l, adapter);
        l->last_seen = now(r);
        ad = adapter_find(r, l->adapter);
        if (ad && !ad->cycler)
                ad->cycles = 0; /* it works: a later hang is a new one, the waits start over */
        switch (l->state) {
        case HEALTH_LADDER_IDLE:
        case HEALTH_LADDER_NEEDS_REPAIR:
                return;
        case HEALTH_LADDER_RUNNING: {
                Adapter *a = adapter_find(r, l->adapter);
                if (l->step == HEALTH_STEP_POWER_CYCLE && a && a->cycler == l)
                        return; /* not until the cycle is done */
                return ladder_step_succeeded(l);
        }
        case HEALTH_LADDER_BACKOFF:
        case HEALTH_LADDER_WAIT_LOCK:
        case HEALTH_LADDER_WAIT_ADAPTER:
        case HEALTH_LADDER_GAVE_UP:
        case _HEALTH_LADDER_STATE_MAX:
                log_info("%s: working again (%s)", l->name, l->reason);
                return ladder_reset(l);
        }
}

void health_ladder_seen(HealthLadder *l, const char *adapter)
{
        HealthRecovery *r = l->recovery;

        note_adapter(l, adapter);
        l->last_seen = now(r);
        if (adapter) {
                Adapter *a = adapter_find(r, adapter);
                if (a)
                        a->last_heard = l->last_seen;
        }
        if (l->state != HEALTH_LADDER_WAIT_LOCK)
                return;
        /* Back in range: a fresh episode, from the first rung. */
        ladder_reset(l);
        l->episode_start = now(r);
        l->episode_start_rt = realtime(r);
        set_reason(l, "heard from again: retrying");
        ladder_schedule(l, HEALTH_STEP_RETRY);
}

void health_ladder_services_changed(HealthLadder *l)
{
        l->stale_gatt = true;
}

void health_ladder_repaired(HealthLadder *l)
{
        if (l->state != HEALTH_LADDER_NEEDS_REPAIR)
                return;
        ladder_reset(l);
}

void health_ladder_timer_elapsed(HealthLadder *l)
{
        HealthRecovery *r = l->recovery;

        switch (l->state) {
        case HEALTH_LADDER_BACKOFF:
                return ladder_take_step(l);
        case HEALTH_LADDER_RUNNING: {
                Adapter *a = adapter_find(r, l->adapter);
                if (a && a->cycler == l)
                        a->cycler = NULL;
                return ladder_step_failed(l, -ETIMEDOUT);
        }
        case HEALTH_LADDER_GAVE_UP:
                /* A slow probe; its failure brings us back here. */
                l->probing = true;
                l->step = HEALTH_STEP_RECONNECT;
                set_reason(l, "probing after giving up");
                return ladder_take_step(l);
        case HEALTH_LADDER_WAIT_LOCK:
                if (ladder_new_round(l))
                        return;
                timer_set(l, now(r) + r->config.backoff_max_usec);
                return;
        case HEALTH_LADDER_IDLE:
        case HEALTH_LADDER_WAIT_ADAPTER:
        case HEALTH_LADDER_NEEDS_REPAIR:
        case _HEALTH_LADDER_STATE_MAX:
                return;
        }
}

void health_recovery_bluez(HealthRecovery *r, bool up)
{
        if (up == r->bluez_up)
                return;
        r->bluez_up = up;
        if (!up) {
                r->bluez_down_since = now(r);
                r->bluez_down_since_rt = realtime(r);
                for (size_t i = 0; i < r->n_adapters; i++)
                        r->adapters[i].cycler = NULL;
                for (size_t i = 0; i < r->n_ladders; i++)
                        ladder_wait_adapter(r->ladders[i], "bluetoothd is gone");
                return;
        }
        if (r->bluez_down_since > 0)
                record(r, NULL, HEALTH_STEP_BLUEZ_RESTART, 1, HEALTH_OUTCOME_SUCCESS, r->bluez_down_since_rt,
                       now(r) - r->bluez_down_since, 0, "bluetoothd is back; every link is rebuilt", NULL);
        /* Adapters come back one by one after the name: hear them afresh. */
        for (size_t i = 0; i < r->n_adapters; i++)
                r->adapters[i].known_since = now(r);
        for (size_t i = 0; i < r->n_ladders; i++)
                ladder_resume(r->ladders[i]);
}

void health_recovery_adapter(HealthRecovery *r, const char *adapter, bool present, bool powered)
{
        Adapter *a = adapter_get(r, adapter);
        bool was_usable, usable;

        if (!a)
                return;
        was_usable = a->present && a->powered;
        a->present = present;
        a->powered = present && powered;
        usable = a->present && a->powered;
        if (usable && !was_usable)
                a->known_since = now(r);
        if (a->cycler || usable == was_usable)
                return; /* our own power cycle, or nothing new */

        if (!usable) {
                char f_id[64], f_adapter[64];
                bool other = false;

                for (size_t i = 0; i < r->n_adapters; i++)
                        if (&r->adapters[i] != a && adapter_usable(&r->adapters[i]))
                                other = true;
                snprintf(f_id, sizeof f_id, "MESSAGE_ID=%s", LOCKHUB_MESSAGE_ADAPTER_AWAY);
                snprintf(f_adapter, sizeof f_adapter, "ADAPTER=%s", a->name);
                (void) log_struct(LOG_WARNING, 0, LOG_FIELDS(f_id, f_adapter),
                                  "Bluetooth adapter %s was %s by someone else; %s", a->name,
                                  present ? "powered off" : "removed",
                                  other ? "its locks use another adapter" : "waiting for it to come back");
                if (other)
                        return;
                for (size_t i = 0; i < r->n_ladders; i++)
                        if (streq(r->ladders[i]->adapter, a->name) || !*r->ladders[i]->adapter)
                                ladder_wait_adapter(r->ladders[i], present ? "the adapter is powered off"
                                                                           : "the adapter is gone");
                return;
        }
        if (!r->bluez_up)
                return;
        for (size_t i = 0; i < r->n_ladders; i++)
                ladder_resume(r->ladders[i]);
}

void health_recovery_adapter_heard(HealthRecovery *r, const char *adapter)
{
        Adapter *a = adapter_get(r, adapter);

        if (a)
                a->last_heard = now(r);
}

void health_recovery_power_cycle_done(HealthRecovery *r, const char *adapter, int error)
{
        Adapter *a = adapter_find(r, adapter);
        HealthLadder *cycler;

        if (!a || !a->cycler)
                return;
        cycler = TAKE_PTR(a->cycler);
        a->known_since = now(r);
        if (error >= 0)
                a->present = a->powered = true;

        if (cycler->state == HEALTH_LADDER_RUNNING && cycler->step == HEALTH_STEP_POWER_CYCLE) {
                if (error < 0)
                        ladder_step_failed(cycler, error);
                else if (r->ops.reconnect) {
                        /* The outcome is whether the lock works now. */
                        int q = r->ops.reconnect(cycler, r->userdata);
                        if (q < 0)
                                ladder_step_failed(cycler, q);
                }
        }
        if (error < 0)
                return;
        /* The cycle was for everyone on the adapter: those waiting try again now. */
        for (size_t i = 0; i < r->n_ladders; i++) {
                HealthLadder *l = r->ladders[i];

                if (l == cycler || !streq(l->adapter, a->name))
                        continue;
                switch (l->state) {
                case HEALTH_LADDER_BACKOFF:
                case HEALTH_LADDER_WAIT_LOCK:
                case HEALTH_LADDER_GAVE_UP:
                        l->tried_adapter = true;
                        l->probing = false;
                        l->step = HEALTH_STEP_RECONNECT;
                        set_reason(l, "%s was power-cycled for %s", a->name, cycler->name);
                        if (l->state != HEALTH_LADDER_BACKOFF)
                                ladder_set_state(l, HEALTH_LADDER_BACKOFF);
                        ladder_take_step(l);
                        break;
                case HEALTH_LADDER_IDLE:
                case HEALTH_LADDER_RUNNING:
                case HEALTH_LADDER_WAIT_ADAPTER:
                case HEALTH_LADDER_NEEDS_REPAIR:
                case _HEALTH_LADDER_STATE_MAX:
                        break;
                }
        }
}

/* ---- public: objects ------------------------------------------------------------------------ */

static void config_fill(HealthRecoveryConfig *c)
{
        if (c->max_attempts == 0)
                c->max_attempts = 5;
        if (c->backoff_min_usec == 0)
                c->backoff_min_usec = 2 * HEALTH_USEC_PER_SEC;
        if (c->backoff_max_usec < c->backoff_min_usec)
                c->backoff_max_usec = MAX(c->backoff_min_usec, 5 * HEALTH_USEC_PER_MIN);
        if (c->step_timeout_usec == 0)
                c->step_timeout_usec = DEFAULT_STEP_TIMEOUT_USEC;
        if (c->lock_silent_usec == 0)
                c->lock_silent_usec = DEFAULT_LOCK_SILENT_USEC;
        if (c->adapter_silent_usec == 0)
                c->adapter_silent_usec = DEFAULT_ADAPTER_SILENT_USEC;
        if (c->adapter_cycle_max_interval_usec == 0)
                c->adapter_cycle_max_interval_usec = DEFAULT_CYCLE_INTERVAL_USEC;
        if (c->evidence_window_usec == 0)
                c->evidence_window_usec = DEFAULT_EVIDENCE_WINDOW_USEC;
}

void health_recovery_config_from_conf(const Conf *c, HealthRecoveryConfig *ret)
{
        *ret = (HealthRecoveryConfig){
                .max_attempts = c->health.recovery_max_attempts,
                .backoff_min_usec = (uint64_t) c->health.retry_backoff_min_sec * HEALTH_USEC_PER_SEC,
                .backoff_max_usec = (uint64_t) c->health.retry_backoff_max_sec * HEALTH_USEC_PER_SEC,
                .adapter_power_cycle = c->health.adapter_power_cycle,
        };
        config_fill(ret);
}

int health_recovery_new(const HealthRecoveryConfig *config, const HealthClock *clock, void *clock_userdata,
                        const HealthLadderOps *ops, void *userdata, HealthRecovery **ret)
{
        HealthRecovery *r;

        if (!config || !clock || !clock->now || !clock->timer_set || !ops || !ret)
                return -EINVAL;
        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->config = *config;
        config_fill(&r->config);
        r->clock = *clock;
        r->clock_userdata = clock_userdata;
        r->ops = *ops;
        r->userdata = userdata;
        r->bluez_up = true; /* until told otherwise: failures are the ladder's business */
        r->rng = (uint64_t) (uintptr_t) r ^ 0x9e3779b97f4a7c15ULL ^ clock->now(clock_userdata);
        if (r->rng == 0)
                r->rng = 1;
        *ret = r;
        return 0;
}

static void ladder_free(HealthLadder *l)
{
        if (!l)
                return;
        (void) l->recovery->clock.timer_set(l, 0, l->recovery->clock_userdata);
        if (l->recovery->clock.timer_release)
                l->recovery->clock.timer_release(l, l->recovery->clock_userdata);
        free(l->name);
        free(l);
}

HealthRecovery *health_recovery_free(HealthRecovery *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_ladders; i++)
                ladder_free(r->ladders[i]);
        free(r->ladders);
        free(r->adapters);
        free(r);
        return NULL;
}

void health_recovery_set_config(HealthRecovery *r, const HealthRecoveryConfig *config)
{
        r->config = *config;
        config_fill(&r->config);
}

HealthLadder *health_recovery_find(HealthRecovery *r, const char *name)
{
        for (size_t i = 0; i < r->n_ladders; i++)
                if (streq(r->ladders[i]->name, name))
                        return r->ladders[i];
        return NULL;
}

int health_recovery_add_lock(HealthRecovery *r, const char *name, void *data, HealthLadder **ret)
{
        HealthLadder *l, **n;

        if (!name || !*name)
                return -EINVAL;
        if (health_recovery_find(r, name))
                return -EEXIST;
        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->name = strdup(name);
        n = realloc(r->ladders, (r->n_ladders + 1) * sizeof *n);
        if (!l->name || !n) {
                if (n)
                        r->ladders = n;
                free(l->name);
                free(l);
                return -ENOMEM;
        }
        r->ladders = n;
        l->recovery = r;
        l->data = data;
        l->created = now(r);
        set_reason(l, "working");
        r->ladders[r->n_ladders++] = l;
        if (ret)
                *ret = l;
        return 0;
}

void health_ladder_remove(HealthLadder *l)
{
        HealthRecovery *r;

        if (!l)
                return;
        r = l->recovery;
        if (l->state == HEALTH_LADDER_RUNNING)
                record(r, l, l->step, l->step_count[l->step], HEALTH_OUTCOME_ABORTED, l->step_start_rt,
                       now(r) - l->step_start, 0, "the lock was removed", l->adapter);
        for (size_t i = 0; i < r->n_adapters; i++)
                if (r->adapters[i].cycler == l)
                        r->adapters[i].cycler = NULL;
        for (size_t i = 0; i < r->n_ladders; i++)
                if (r->ladders[i] == l) {
                        memmove(&r->ladders[i], &r->ladders[i + 1],
                                (r->n_ladders - i - 1) * sizeof *r->ladders);
                        r->n_ladders--;
                        break;
                }
        ladder_free(l);
}

/* ---- public: inspection ---------------------------------------------------------------------- */

void health_ladder_get_status(const HealthLadder *l, HealthLadderStatus *ret)
{
        *ret = (HealthLadderStatus){
                .state = l->state,
                .step = l->step,
                .steps_taken = l->steps_taken,
                .last_error = l->last_error,
                .episode_start_usec = l->state == HEALTH_LADDER_IDLE ? 0 : l->episode_start_rt,
                .adapter = *l->adapter ? l->adapter : NULL,
                .reason = l->reason,
        };
}

HealthLadderState health_ladder_get_state(const HealthLadder *l)
{
        return l->state;
}

const char *health_ladder_get_name(const HealthLadder *l)
{
        return l->name;
}

void *health_ladder_get_data(const HealthLadder *l)
{
        return l->data;
}

void **health_ladder_timer_slot(HealthLadder *l)
{
        return &l->timer_data;
}

HealthRecovery *health_ladder_get_recovery(const HealthLadder *l)
{
        return l->recovery;
}
