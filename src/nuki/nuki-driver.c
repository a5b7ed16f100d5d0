/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Nuki driver (see lockhub/nuki-driver.h for the contract).
 *
 * Data: one NukiDriver per Lock, holding the BluezLink, the credentials, the client
 * session (nuki-session.h), a reassembly buffer per characteristic and a queue of jobs
 * ordered by priority. Exactly one job runs at a time and only while the link is
 * CONNECTED; everything else waits in the queue.
 *
 * Driver states (function behind each transition in brackets):
 *
 *                 job queued [driver_kick]
 *     +------+  -------------------------->  +------------+  failed(): every queued job
 *     | IDLE |                               | CONNECTING | ---------------------------> IDLE
 *     +------+  <--------------------------  +------------+   fails -EHOSTUNREACH
 *        ^        queue empty, link idle-        | connected() [on_link_connected]
 *        |        disconnected by BlueZ          v
 *        |                                  +-----------+  a job's command is written,
 *        |     disconnected() [on_link_     |  RUNNING  |  replies are fed to the session;
 *        +-------------------------------   +-----------+  the last reply finishes the job
 *              disconnected]: the running        |  ^      [job_finish], and the next one
 *              job fails -EHOSTUNREACH,          v  |      starts at once [driver_kick]
 *              queued jobs reconnect        +-----------+
 *                                           | CONNECTED |  no job: BlueZ's idle timer
 *                                           +-----------+  disconnects
 *
 * Invariants: d->current is set only in RUNNING; the step timer runs only while a job
 * waits for a reply (or for its connection); every job's done callback runs exactly once.
 *
 * Errors of a command, as lock_command_done_t wants them: Error Report MOTOR_BLOCKED and
 * friends → -EDEADLK (and state jammed), BUSY → -EBUSY, NOT_AUTHORIZED → -EACCES (and
 * needs-repair: the lock no longer holds our authorization), a frame we cannot decrypt →
 * -EACCES, no connection → -EHOSTUNREACH, no answer → -ETIMEDOUT. Keypad-code refusals
 * map to -EEXIST, -ENOSPC, -EINVAL and -ENOENT (job_fail_lock_error).
 *
 * A lock action whose link drops before its completion (or whose write failed: it may
 * have reached the lock) is not failed at once: it goes back to the head of the queue (at
 * most ACTION_RESENDS times) and, once connected again, first reads Keyturner States. A
 * lock in the action's end state finishes the job without a second Lock Action; one still
 * moving is polled until it stops. Otherwise the lock's log decides (with the PIN): before
 * the first Lock Action the job notes the log index the hub has read to (j->log_mark, only
 * when no action of ours since is unread: d->own_unsynced), and an entry after it by our
 * authorization with this action means it ran (and was undone since, by hand or
 * auto-lock): done, never sent again. Only a complete read with no such entry, for an
 * action the lock never acknowledged, sends it again. Without the log (no PIN, no mark)
 * the lock's "last action" with the trigger "system" counts as ours (so would any app's),
 * and an action the lock answered ACCEPTED is never sent again: it fails -EINPROGRESS,
 * "the lock may have carried it out; check it". So a command survives a link loss and
 * the motor runs at most once.
 *
 * Calibration (Request Calibration, PIN) runs like an action: ACCEPTED, the states through
 * "calibration", then COMPLETE; it gets CALIBRATE_TIMEOUT_MULT × the command timeout
 * between messages, and is recorded as an "action" event {"action":"calibrate"}.
 *
 * Motor duration: from a Lock Action's ACCEPTED to its COMPLETE, stored as a "motor-ms"
 * sample for the installation analytics (health.h).
 *
 * Attribution: our own commands are recorded when they complete (source and actor of the
 * caller); everything else comes from the lock's log, imported by index after every
 * refresh (when the PIN is known) with the source from its trigger (manual, button,
 * auto, keypad, app) and the actor from the entry's name; state changes seen in Keyturner
 * States carry the source of their trigger.
 */

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lockhub/codes.h"
#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-driver.h"
#include "lockhub/nuki-json.h"
#include "lockhub/nuki-session.h"
#include "nuki-driver-internal.h"

#define USEC_PER_SEC           1000000ULL
#define LOG_BATCH              20U
#define CODE_PAGE              50U
#define REFRESH_HOLDOFF_USEC   (3 * USEC_PER_SEC) /* ignore stale state-changed bits after a refresh */
#define CONNECT_DEADLINE_MULT  4U                 /* connect timeout × this bounds a wait for a link */
#define ACTION_RESENDS         2U                 /* an action survives this many link losses */
#define VERIFY_POLL_USEC       (250 * 1000ULL)    /* re-read a still moving lock after a link loss */
#define CALIBRATE_TIMEOUT_MULT 6U                 /* calibrating takes longer than a motor action */

typedef enum NukiJobKind {
        NUKI_JOB_ACTION,
        NUKI_JOB_REMOVE_AUTH,
        NUKI_JOB_REFRESH,
        NUKI_JOB_CONFIG,
        NUKI_JOB_LOG_SYNC,
        NUKI_JOB_TIME_SYNC,
        NUKI_JOB_CALIBRATE,
        NUKI_JOB_CODES_LIST,
        NUKI_JOB_CODE_ADD,
        NUKI_JOB_CODE_UPDATE,
        NUKI_JOB_CODE_REMOVE,
        NUKI_JOB_ADMIN, /* nuki-driver-admin.c: j->admin says what it does */
        _NUKI_JOB_MAX,
} NukiJobKind;

typedef struct NukiJob NukiJob;
struct NukiJob {
        NukiJobKind kind;
        LockAction action;
        LockSource source;
        char actor[64];
        lock_command_done_t done;
        void *userdata;
        unsigned step;
        unsigned received; /* log entries in this batch */
        uint32_t max_index;
        int64_t step_mark; /* log index or codes read when this page was asked for */
        bool accepted;
        uint64_t accepted_usec; /* monotonic: the lock accepted the action (motor starts) */
        unsigned resends;       /* link losses survived */
        bool verify;            /* after a link loss: read the states before sending again */
        unsigned polls;
        bool acked;             /* the lock answered ACCEPTED to this action once (kept over link losses) */
        bool sent;              /* a Lock Action of this job went out */
        int64_t log_mark;       /* the lock's log index before the first Lock Action; -1 unknown */
        bool check_log;         /* verifying: reading the lock's log after log_mark for our entry */
        bool log_found;         /* ... and it has one */
        uint8_t log_completion; /* its completion status */
        /* keypad codes: the code to write (its digits are secret), the id to remove or
         * the one the lock gave, the list read so far */
        LockCode code;
        int code_id;
        lock_codes_listed_t listed;
        lock_code_added_t added;
        LockCode *codes;
        size_t n_codes;
        unsigned announced;
        bool have_announced;
        const NukiAdminClass *admin; /* NUKI_JOB_ADMIN */
        void *admin_data;
        bool sent_pin;    /* a command with the security PIN was sent */
        bool pin_blocked; /* not sent: the lock rejects the stored PIN (the latch) */
        uint64_t run;     /* this run of the job (d->runs when it started); 0 while queued */
        NukiJob *next;
};

/* A GATT write in flight, so its outcome reaches the run of the job that wrote it. */
typedef struct NukiWrite NukiWrite;
struct NukiWrite {
        struct NukiDriver *driver;
        uint64_t run;
        NukiWrite *prev, *next;
};

typedef struct NukiDriver {
        Lock *lock;
        NukiDriverContext ctx;
        NukiCredentials cred;
        BluezLink *link;
        NukiSession session;
        NukiReasm reasm_usdio, reasm_gdio;
        NukiJob *queue;    /* waiting, by priority then FIFO */
        NukiJob *current;  /* running */
        uint64_t runs;     /* jobs started so far */
        NukiWrite *writes; /* in flight; the link calls back for each, unless freed */
        sd_event_source *timer;
        sd_event_source *poll; /* verifying an action: the next read of a moving lock */
        bool connecting;
        uint64_t last_refresh_usec;  /* monotonic */
        int64_t config_update_count; /* -1 unknown; of the config we last read */
        int seen_config_count;       /* -1 unknown; in the last Keyturner States */
        int64_t log_synced_index;    /* -1 nothing yet */
        unsigned own_unsynced;       /* our Lock Actions sent since the log was last read to its end */
        bool pin_rejected;           /* the PIN latch (nuki-driver-internal.h) */
} NukiDriver;

static void driver_kick(NukiDriver *d);
static bool job_requeue_after_loss(NukiDriver *d);
static void verify_log_take(NukiDriver *d, const NukiMsg *m);

static void json_putp(json_object **o)
{
        json_object_put(*o);
}
static void job_fail(NukiDriver *d, int r, const char *message);

static uint64_t now_usec(clockid_t clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static const Conf *driver_conf(const NukiDriver *d)
{
        return *d->ctx.conf;
}

static const char *job_kind_to_string(NukiJobKind k)
{
        static const char *const names[_NUKI_JOB_MAX] = {
                [NUKI_JOB_ACTION] = "action",           [NUKI_JOB_REMOVE_AUTH] = "remove-auth",
                [NUKI_JOB_REFRESH] = "refresh",         [NUKI_JOB_CONFIG] = "config",
                [NUKI_JOB_LOG_SYNC] = "log-sync",       [NUKI_JOB_TIME_SYNC] = "time-sync",
                [NUKI_JOB_CALIBRATE] = "calibrate",     [NUKI_JOB_CODES_LIST] = "list-codes",
                [NUKI_JOB_CODE_ADD] = "add-code",       [NUKI_JOB_CODE_UPDATE] = "update-code",
                [NUKI_JOB_CODE_REMOVE] = "remove-code", [NUKI_JOB_ADMIN] = "admin",
        };
        return k < _NUKI_JOB_MAX ? names[k] : "?";
}

static BluezPriority job_priority(NukiJobKind k)
{
        switch (k) {
        case NUKI_JOB_ACTION:
        case NUKI_JOB_REMOVE_AUTH:
        case NUKI_JOB_CALIBRATE:
                return BLUEZ_PRIORITY_USER;
        case NUKI_JOB_REFRESH:
                return BLUEZ_PRIORITY_REFRESH;
        case NUKI_JOB_CONFIG:
        case NUKI_JOB_LOG_SYNC:
        case NUKI_JOB_TIME_SYNC:
        case NUKI_JOB_CODES_LIST:
        case NUKI_JOB_CODE_ADD:
        case NUKI_JOB_CODE_UPDATE:
        case NUKI_JOB_CODE_REMOVE:
        case NUKI_JOB_ADMIN:
        case _NUKI_JOB_MAX:
                break;
        }
        return BLUEZ_PRIORITY_MAINTENANCE;
}

#define driver_log(d, level, error, ...)                                            \
        ({                                                                          \
                char _f1_[64], _f2_[40];                                            \
                snprintf(_f1_, sizeof _f1_, "LOCK=%s", (d)->lock->name);            \
                snprintf(_f2_, sizeof _f2_, "LOCK_ADDRESS=%s", (d)->lock->address); \
                log_struct((level), (error), LOG_FIELDS(_f1_, _f2_), __VA_ARGS__);  \
        })

/* ---- store ------------------------------------------------------------------------- */

/* Read-modify-write of the lock's row; fn changes what it knows. */
static void driver_save(NukiDriver *d, void (*fn)(NukiDriver *d, struct store_lock *row, void *data),
                        void *data)
{
        struct store_lock row;
        int r;

        if (!d->ctx.store || d->lock->store_id <= 0)
                return;
        store_lock_init(&row);
        r = store_lock_get(d->ctx.store, d->lock->store_id, &row);
        if (r >= 0) {
                fn(d, &row, data);
                row.updated_usec = 0;
                r = store_lock_update(d->ctx.store, &row);
        }
        if (r < 0)
                driver_log(d, LOG_WARNING, r, "%s: failed to update the stored lock: %m", d->lock->name);
        store_lock_done(&row);
}

static void save_state(NukiDriver *d, struct store_lock *row, void *data)
{
        free(row->last_state);
        row->last_state = lock_to_json(d->lock);
        row->last_seen_usec = d->lock->link.last_seen_usec;
        row->config_update_count = d->config_update_count;
        row->log_synced_index = d->log_synced_index;
        row->needs_repair = d->lock->needs_repair;
}

struct info_update {
        const char *model, *firmware, *hardware;
        int device_type;
};

static void save_info(NukiDriver *d, struct store_lock *row, void *data)
{
        const struct info_update *u = data;

        save_state(d, row, NULL);
        free(row->model);
        row->model = u->model ? strdup(u->model) : NULL;
        free(row->firmware);
        row->firmware = u->firmware ? strdup(u->firmware) : NULL;
        free(row->hardware);
        row->hardware = u->hardware ? strdup(u->hardware) : NULL;
        row->device_type = u->device_type;
}

/* ---- model updates ------------------------------------------------------------------- */

static LockState lock_state_from_nuki(uint8_t s)
{
        switch (s) {
        case NUKI_LOCK_STATE_UNCALIBRATED:
                return LOCK_STATE_UNCALIBRATED;
        case NUKI_LOCK_STATE_LOCKED:
                return LOCK_STATE_LOCKED;
        case NUKI_LOCK_STATE_UNLOCKING:
                return LOCK_STATE_UNLOCKING;
        case NUKI_LOCK_STATE_UNLOCKED:
        case NUKI_LOCK_STATE_UNLOCKED_LOCKNGO:
                return LOCK_STATE_UNLOCKED;
        case NUKI_LOCK_STATE_LOCKING:
                return LOCK_STATE_LOCKING;
        case NUKI_LOCK_STATE_UNLATCHED:
                return LOCK_STATE_UNLATCHED;
        case NUKI_LOCK_STATE_UNLATCHING:
                return LOCK_STATE_UNLATCHING;
        case NUKI_LOCK_STATE_MOTOR_BLOCKED:
                return LOCK_STATE_JAMMED;
        case NUKI_LOCK_STATE_CALIBRATION:
                return LOCK_STATE_CALIBRATING;
        default:
                return LOCK_STATE_UNKNOWN;
        }
}

static LockSource source_from_trigger(uint8_t trigger)
{
        switch (trigger) {
        case NUKI_TRIGGER_MANUAL:
                return LOCK_SOURCE_MANUAL;
        case NUKI_TRIGGER_BUTTON:
                return LOCK_SOURCE_BUTTON;
        case NUKI_TRIGGER_AUTOMATIC:
        case NUKI_TRIGGER_AUTO_LOCK:
                return LOCK_SOURCE_AUTO;
        default:
                return LOCK_SOURCE_LOCK;
        }
}

static LockDoor door_from_nuki(uint8_t s)
{
        switch (s) {
        case 0x00: /* unavailable */
        case 0x01: /* deactivated (SL 1/2) */
                return LOCK_DOOR_NONE;
        case 0x02:
                return LOCK_DOOR_CLOSED;
        case 0x03:
                return LOCK_DOOR_OPEN;
        case 0xF0:
                return LOCK_DOOR_TAMPERED;
        default:
                return LOCK_DOOR_UNKNOWN;
        }
}

static bool nuki_action_from_lock(LockAction a, uint8_t *ret)
{
        switch (a) {
        case LOCK_ACTION_LOCK:
                *ret = NUKI_LOCK_ACTION_LOCK;
                return true;
        case LOCK_ACTION_UNLOCK:
                *ret = NUKI_LOCK_ACTION_UNLOCK;
                return true;
        case LOCK_ACTION_UNLATCH:
                *ret = NUKI_LOCK_ACTION_UNLATCH;
                return true;
        case LOCK_ACTION_LOCK_N_GO:
                *ret = NUKI_LOCK_ACTION_LOCKNGO;
                return true;
        case LOCK_ACTION_LOCK_N_GO_UNLATCH:
                *ret = NUKI_LOCK_ACTION_LOCKNGO_UNLATCH;
                return true;
        case LOCK_ACTION_FULL_LOCK:
                *ret = NUKI_LOCK_ACTION_FULL_LOCK;
                return true;
        case _LOCK_ACTION_MAX:
                break;
        }
        return false;
}

static bool lock_action_from_nuki(uint8_t a, LockAction *ret)
{
        switch (a) {
        case NUKI_LOCK_ACTION_UNLOCK:
                *ret = LOCK_ACTION_UNLOCK;
                return true;
        case NUKI_LOCK_ACTION_LOCK:
                *ret = LOCK_ACTION_LOCK;
                return true;
        case NUKI_LOCK_ACTION_UNLATCH:
                *ret = LOCK_ACTION_UNLATCH;
                return true;
        case NUKI_LOCK_ACTION_LOCKNGO:
                *ret = LOCK_ACTION_LOCK_N_GO;
                return true;
        case NUKI_LOCK_ACTION_LOCKNGO_UNLATCH:
                *ret = LOCK_ACTION_LOCK_N_GO_UNLATCH;
                return true;
        case NUKI_LOCK_ACTION_FULL_LOCK:
                *ret = LOCK_ACTION_FULL_LOCK;
                return true;
        default:
                return false;
        }
}

static void driver_set_link(NukiDriver *d, bool connected, bool reachable, bool seen)
{
        LockLink link = d->lock->link;

        link.connected = connected;
        link.reachable = reachable;
        if (seen)
                link.last_seen_usec = now_usec(CLOCK_REALTIME);
        (void) lock_set_link(d->lock, &link);
}

static void job_enqueue_kind(NukiDriver *d, NukiJobKind kind);

static int64_t nuki_time_to_unix(const NukiTime *t)
{
        struct tm tm = { .tm_year = t->year - 1900,
                         .tm_mon = t->month - 1,
                         .tm_mday = t->day,
                         .tm_hour = t->hour,
                         .tm_min = t->minute,
                         .tm_sec = t->second };
        if (t->year < 2000 || t->month < 1 || t->month > 12 || t->day < 1)
                return 0;
        return (int64_t) timegm(&tm);
}

static void apply_states(NukiDriver *d, const NukiMsg *m)
{
        const NukiJob *j = d->current;
        LockSource source;
        const char *actor = NULL;
        LockBattery b = d->lock->battery;
        uint8_t bat = m->keyturner_states.battery;
        const Conf *c = driver_conf(d);
        int seen;

        /* ours while our command runs; after a link loss only what the lock says it did
         * for a Bluetooth command (a relock by hand meanwhile is not the caller's) */
        if (j && (j->kind == NUKI_JOB_ACTION || j->kind == NUKI_JOB_CALIBRATE) &&
            !(j->verify && m->keyturner_states.trigger != NUKI_TRIGGER_SYSTEM)) {
                source = j->source;
                actor = j->actor[0] ? j->actor : NULL;
        } else
                source = source_from_trigger(m->keyturner_states.trigger);
        (void) lock_set_state(d->lock, lock_state_from_nuki(m->keyturner_states.lock_state), source, actor);

        b.percent = (int) nuki_battery_percent(bat);
        b.critical = nuki_battery_critical(bat);
        b.charging = nuki_battery_charging(bat);
        if (m->n_optional >= 9) {
                uint8_t acc = m->keyturner_states.accessory_battery_state;
                b.keypad_critical = (acc & 0x01) ? !!(acc & 0x02) : -1;
                b.door_sensor_critical = (acc & 0x04) ? !!(acc & 0x08) : -1;
        }
        if (lock_set_battery(d->lock, &b) > 0 && d->ctx.store && d->lock->store_id > 0)
                (void) store_sample_append(d->ctx.store, d->lock->store_id, "battery-percent", 0, b.percent);

        if (m->n_optional >= 4)
                (void) lock_set_door(d->lock, door_from_nuki(m->keyturner_states.door_sensor_state),
                                     LOCK_SOURCE_LOCK);

        seen = d->seen_config_count;
        d->seen_config_count = m->keyturner_states.config_update_count;
        if (d->config_update_count != m->keyturner_states.config_update_count) {
                if (d->config_update_count >= 0) {
                        driver_log(d, LOG_INFO, 0, "%s: configuration changed on the lock, reading it.",
                                   d->lock->name);
                        /* settings or keypad codes changed, maybe by someone else: look for
                         * drift now (once per new count), not at the next periodic sync */
                        if (seen != m->keyturner_states.config_update_count)
                                lock_config_changed(d->lock);
                }
                job_enqueue_kind(d, NUKI_JOB_CONFIG);
        }

        if (c->hub.time_sync_drift_sec > 0 && d->cred.has_pin) {
                int64_t t = nuki_time_to_unix(&m->keyturner_states.current_time), now;
                now = (int64_t) (now_usec(CLOCK_REALTIME) / USEC_PER_SEC);
                if (t > 0 && llabs(t - now) > (long long) c->hub.time_sync_drift_sec) {
                        driver_log(d, LOG_INFO, 0, "%s: the lock's clock is off by %llds, setting it.",
                                   d->lock->name, (long long) (t - now));
                        job_enqueue_kind(d, NUKI_JOB_TIME_SYNC);
                }
        }
}

/* ---- jobs ---------------------------------------------------------------------------- */

static NukiJob *job_new(NukiJobKind kind)
{
        NukiJob *j = calloc(1, sizeof *j);
        if (j)
                j->kind = kind;
        return j;
}

static void job_enqueue(NukiDriver *d, NukiJob *j)
{
        NukiJob **p = &d->queue;

        /* By priority, FIFO within one. */
        while (*p && job_priority((*p)->kind) <= job_priority(j->kind))
                p = &(*p)->next;
        j->next = *p;
        *p = j;
        driver_kick(d);
}

static bool job_queued(const NukiDriver *d, NukiJobKind kind)
{
        for (const NukiJob *j = d->queue; j; j = j->next)
                if (j->kind == kind)
                        return true;
        return false;
}

/* Background jobs: at most one of a kind waits at any time. */
static void job_enqueue_kind(NukiDriver *d, NukiJobKind kind)
{
        NukiJob *j;

        if (kind == NUKI_JOB_LOG_SYNC && !d->cred.has_pin)
                return;
        if ((kind == NUKI_JOB_LOG_SYNC || kind == NUKI_JOB_TIME_SYNC) && d->pin_rejected)
                return;
        if (job_queued(d, kind))
                return;
        j = job_new(kind);
        if (!j) {
                (void) log_oom();
                return;
        }
        job_enqueue(d, j);
}

static void driver_timer_stop(NukiDriver *d)
{
        if (d->timer)
                (void) sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void driver_timer_start(NukiDriver *d, uint64_t usec)
{
        int r;

        if (d->timer) {
                r = sd_event_source_set_time_relative(d->timer, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(d->ctx.event, &d->timer, CLOCK_MONOTONIC, usec, 10000,
                                               on_timer, d);
        if (r < 0)
                driver_log(d, LOG_WARNING, r, "%s: cannot arm a timer: %m", d->lock->name);
}

static uint64_t command_timeout_usec(const NukiDriver *d)
{
        return (uint64_t) driver_conf(d)->bluetooth.command_timeout_sec * USEC_PER_SEC;
}

static void job_free(NukiJob *j)
{
        if (!j)
                return;
        if (j->codes) {
                nuki_wipe(j->codes, j->n_codes * sizeof *j->codes);
                free(j->codes);
        }
        nuki_wipe(j, sizeof *j);
        free(j);
}

static void job_done(NukiDriver *d, NukiJob *j, int r, const char *message)
{
        switch (j->kind) {
        case NUKI_JOB_CODES_LIST: {
                /* never NULL, even for an empty list: callers may memcpy() from it */
                static const LockCode none = { .id = -1 };
                if (j->listed)
                        j->listed(d->lock, r, message, r < 0 || !j->codes ? &none : j->codes,
                                  r < 0 ? 0 : j->n_codes, j->userdata);
                break;
        }
        case NUKI_JOB_CODE_ADD:
                if (j->added)
                        j->added(d->lock, r, message, r < 0 ? -1 : j->code_id, j->userdata);
                break;
        case NUKI_JOB_ADMIN:
                j->admin->done(d->lock, j->admin_data, r, message);
                j->admin_data = NULL;
                break;
        case NUKI_JOB_ACTION:
        case NUKI_JOB_REMOVE_AUTH:
        case NUKI_JOB_REFRESH:
        case NUKI_JOB_CONFIG:
        case NUKI_JOB_LOG_SYNC:
        case NUKI_JOB_TIME_SYNC:
        case NUKI_JOB_CALIBRATE:
        case NUKI_JOB_CODE_UPDATE:
        case NUKI_JOB_CODE_REMOVE:
        case _NUKI_JOB_MAX:
                if (j->done)
                        j->done(d->lock, r, message, j->userdata);
                break;
        }
        job_free(j);
}

/* The running job ended; the next one starts at once. */
static void job_finish(NukiDriver *d, int r, const char *message)
{
        NukiJob *j = d->current;

        d->current = NULL;
        driver_timer_stop(d);
        if (d->poll)
                (void) sd_event_source_set_enabled(d->poll, SD_EVENT_OFF);
        nuki_session_reset(&d->session);
        if (j && j->pin_blocked) {
                r = -EKEYREJECTED;
                message = NUKI_PIN_LATCHED_MESSAGE;
        } else if (j && r >= 0 && j->sent_pin && d->pin_rejected) {
                d->pin_rejected = false;
                nuki_pin_latch_clear(&d->ctx, d->lock);
        }
        if (j) {
                if (r < 0)
                        driver_log(d, LOG_DEBUG, r, "%s: %s failed: %s", d->lock->name,
                                   job_kind_to_string(j->kind), message ?: strerror(-r));
                job_done(d, j, r, message);
        }
        driver_kick(d);
}

/* Every waiting job fails (the connection could not be made). */
static void queue_fail(NukiDriver *d, int r, const char *message)
{
        while (d->queue) {
                NukiJob *j = d->queue;
                d->queue = j->next;
                job_done(d, j, r, message);
        }
}

static void write_unlink(NukiWrite *w)
{
        if (w->prev)
                w->prev->next = w->next;
        else
                w->driver->writes = w->next;
        if (w->next)
                w->next->prev = w->prev;
        free(w);
}

/* A failed write fails the run of the job that wrote it, and only that: the job may have
 * ended meanwhile (timeout, a reply), and the next one must not pay for it. A link that
 * went down (-ENOTCONN, or the ATT "unlikely error" of a link loss) is left to
 * disconnected(), which may send an action again; the step timer is the backstop. */
static void on_write_done(BluezLink *l, const BluezError *err, void *userdata)
{
        NukiWrite *w = userdata;
        NukiDriver *d = w->driver;
        uint64_t run = w->run;
        char msg[160];
        int r;

        write_unlink(w);
        if (!err)
                return;
        if (!d->current || d->current->run != run) {
                driver_log(d, LOG_DEBUG, err->error, "%s: a write of an earlier job failed: %s",
                           d->lock->name, err->message ?: strerror(-err->error));
                return;
        }
        if (err->error == -ENOTCONN || err->error == -ECONNRESET)
                return;
        r = err->error == -ETIMEDOUT ? -ETIMEDOUT : -EIO;
        snprintf(msg, sizeof msg, "the command could not be written to the lock (%s)",
                 err->message ?: strerror(-err->error));
        (void) bluez_link_disconnect(d->link); /* the session is out of step now */
        /* A write whose outcome is unknown (no answer in time, bluetoothd gone, an error
         * without an ATT code) may still have reached the lock: an action is verified once
         * connected again, like after a link loss (disconnected() starts the queue). A
         * refusal (an ATT error from the lock, BlueZ refusing) was not carried out. */
        if ((err->error == -ETIMEDOUT || err->error == -EIO || err->error == -EHOSTDOWN) &&
            job_requeue_after_loss(d)) {
                driver_log(d, LOG_NOTICE, err->error,
                           "%s: %s; the lock may have it, reading it again first.", d->lock->name, msg);
                return;
        }
        job_fail(d, r, msg);
}

static int driver_send(NukiDriver *d, const uint8_t *buf, size_t n)
{
        NukiWrite *w;
        int r;

        w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (NukiWrite){ .driver = d, .run = d->current ? d->current->run : 0, .next = d->writes };
        r = bluez_link_write(d->link, NUKI_UUID_KEYTURNER_USDIO, buf, n, on_write_done, w);
        if (r < 0) {
                free(w);
                return r;
        }
        if (d->writes)
                d->writes->prev = w;
        d->writes = w;
        driver_timer_start(d, command_timeout_usec(d));
        return 0;
}

/* Send a command, or the Request Data(Challenge) that comes first. */
/* A person's request, not one of the hub's own jobs: tried even while the PIN is latched. */
static bool job_is_user(const NukiJob *j)
{
        switch (j->kind) {
        case NUKI_JOB_ACTION:
        case NUKI_JOB_REMOVE_AUTH:
        case NUKI_JOB_REFRESH:
        case NUKI_JOB_CALIBRATE:
                return true;
        case NUKI_JOB_ADMIN:
                return !j->admin->background;
        case NUKI_JOB_CONFIG:
        case NUKI_JOB_LOG_SYNC:
        case NUKI_JOB_TIME_SYNC:
        case NUKI_JOB_CODES_LIST:
        case NUKI_JOB_CODE_ADD:
        case NUKI_JOB_CODE_UPDATE:
        case NUKI_JOB_CODE_REMOVE:
        case _NUKI_JOB_MAX:
                break;
        }
        return false;
}

static int driver_begin(NukiDriver *d, const NukiMsg *m)
{
        uint8_t out[NUKI_FRAME_MAX];
        int n;

        if (d->current && nuki_command_needs_pin(m->command)) {
                if (d->pin_rejected && !job_is_user(d->current)) {
                        d->current->pin_blocked = true;
                        return -EKEYREJECTED;
                }
                d->current->sent_pin = true;
        }
        n = nuki_session_begin(&d->session, m, NULL, out, sizeof out);
        if (n < 0)
                return n;
        n = driver_send(d, out, (size_t) n);
        nuki_wipe(out, sizeof out);
        return n;
}

static int driver_request(NukiDriver *d, uint16_t command)
{
        uint8_t out[NUKI_FRAME_MAX];
        int n;

        n = nuki_session_request(&d->session, command, NULL, out, sizeof out);
        if (n < 0)
                return n;
        return driver_send(d, out, (size_t) n);
}

static void nuki_time_from_unix(int64_t t, NukiTime *ret)
{
        time_t tt = (time_t) t;
        struct tm tm;

        gmtime_r(&tt, &tm);
        *ret = (NukiTime){ .year = (uint16_t) (tm.tm_year + 1900),
                           .month = (uint8_t) (tm.tm_mon + 1),
                           .day = (uint8_t) tm.tm_mday,
                           .hour = (uint8_t) tm.tm_hour,
                           .minute = (uint8_t) tm.tm_min,
                           .second = (uint8_t) tm.tm_sec };
}

static int log_request(NukiDriver *d, uint32_t start, uint16_t count, bool descending)
{
        NukiMsg m;
        int r;

        nuki_msg_init(&m, NUKI_CMD_REQUEST_LOG_ENTRIES, NUKI_VARIANT_DEFAULT);
        m.request_log_entries.start_index = start;
        m.request_log_entries.count = count;
        m.request_log_entries.sort_order = descending ? 1 : 0;
        m.request_log_entries.total_count = false;
        r = driver_begin(d, &m);
        nuki_msg_wipe(&m);
        return r;
}

/* Start step j->step of the running job. */
static int job_step(NukiDriver *d)
{
        NukiJob *j = d->current;
        NukiMsg m;
        int r;

        switch (j->kind) {
        case NUKI_JOB_ACTION: {
                uint8_t a = 0;
                if (!nuki_action_from_lock(j->action, &a))
                        return -EINVAL;
                if (j->verify && j->check_log)
                        /* our entry after the mark? (job_verify) */
                        return log_request(d, (uint32_t) j->log_mark, LOG_BATCH, false);
                if (j->verify)
                        /* after a link loss: did the lock get it? (job_verify) */
                        return driver_request(d, NUKI_CMD_KEYTURNER_STATES);
                if (!j->sent) {
                        /* where the lock's log stands: an entry of ours after this index is
                         * this action, unless an earlier one of ours is not read yet */
                        j->log_mark = d->own_unsynced == 0 ? d->log_synced_index : -1;
                        j->sent = true;
                }
                d->own_unsynced++;
                nuki_msg_init(&m, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
                m.lock_action.action = a;
                m.lock_action.app_id = d->cred.app_id;
                m.lock_action.flags = 0;
                m.n_optional = 0; /* no name suffix */
                r = driver_begin(d, &m);
                nuki_msg_wipe(&m);
                return r;
        }
        case NUKI_JOB_REMOVE_AUTH:
                nuki_msg_init(&m, NUKI_CMD_REMOVE_AUTHORIZATION_ENTRY, NUKI_VARIANT_DEFAULT);
                m.remove_authorization_entry.auth_id = d->cred.auth_id;
                r = driver_begin(d, &m);
                nuki_msg_wipe(&m);
                return r;
        case NUKI_JOB_REFRESH:
                return driver_request(d, NUKI_CMD_KEYTURNER_STATES);
        case NUKI_JOB_CONFIG:
                if (j->step == 0) {
                        nuki_msg_init(&m, NUKI_CMD_REQUEST_CONFIG, NUKI_VARIANT_DEFAULT);
                        r = driver_begin(d, &m);
                        nuki_msg_wipe(&m);
                        return r;
                }
                return driver_request(d, NUKI_CMD_BATTERY_REPORT);
        case NUKI_JOB_LOG_SYNC:
                j->received = 0;
                j->step_mark = d->log_synced_index;
                if (d->log_synced_index < 0)
                        /* First sync: only learn where the log stands; history from before the
                         * pairing is not imported. */
                        return log_request(d, 0, 1, true);
                return log_request(d, (uint32_t) d->log_synced_index, LOG_BATCH, false);
        case NUKI_JOB_CODES_LIST:
                j->received = 0;
                j->step_mark = (int64_t) j->n_codes;
                nuki_msg_init(&m, NUKI_CMD_REQUEST_KEYPAD_CODES, NUKI_VARIANT_DEFAULT);
                m.request_keypad_codes.offset = (uint16_t) j->n_codes;
                m.request_keypad_codes.count = CODE_PAGE;
                r = driver_begin(d, &m);
                nuki_msg_wipe(&m);
                return r;
        case NUKI_JOB_CODE_ADD:
        case NUKI_JOB_CODE_UPDATE:
                nuki_msg_init(&m,
                              j->kind == NUKI_JOB_CODE_ADD ? NUKI_CMD_ADD_KEYPAD_CODE
                                                           : NUKI_CMD_UPDATE_KEYPAD_CODE,
                              NUKI_VARIANT_DEFAULT);
                r = codes_to_nuki(&j->code, &m);
                if (r >= 0)
                        r = driver_begin(d, &m);
                nuki_msg_wipe(&m);
                return r;
        case NUKI_JOB_CODE_REMOVE:
                nuki_msg_init(&m, NUKI_CMD_REMOVE_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
                m.remove_keypad_code.code_id = (uint16_t) j->code_id;
                r = driver_begin(d, &m);
                nuki_msg_wipe(&m);
                return r;
        case NUKI_JOB_CALIBRATE:
                nuki_msg_init(&m, NUKI_CMD_REQUEST_CALIBRATION, NUKI_VARIANT_DEFAULT);
                r = driver_begin(d, &m);
                nuki_msg_wipe(&m);
                return r;
        case NUKI_JOB_TIME_SYNC:
                nuki_msg_init(&m, NUKI_CMD_UPDATE_TIME, NUKI_VARIANT_DEFAULT);
                nuki_time_from_unix((int64_t) (now_usec(CLOCK_REALTIME) / USEC_PER_SEC),
                                    &m.update_time.time);
                r = driver_begin(d, &m);
                nuki_msg_wipe(&m);
                return r;
        case NUKI_JOB_ADMIN:
                return j->admin->step(d, j->admin_data);
        case _NUKI_JOB_MAX:
                break;
        }
        return -EINVAL;
}

static void driver_kick(NukiDriver *d)
{
        BluezLinkState s;
        int r;

        if (d->current || !d->link)
                return;
        if (!d->queue) {
                /* IdleDisconnectSec=0: do not linger. */
                if (driver_conf(d)->bluetooth.idle_disconnect_sec == 0 &&
                    bluez_link_get_state(d->link) == BLUEZ_LINK_CONNECTED)
                        (void) bluez_link_disconnect(d->link);
                else /* connected, nothing to do: another lock may have its slot */
                        bluez_link_release(d->link);
                return;
        }

        s = bluez_link_get_state(d->link);
        if (s != BLUEZ_LINK_CONNECTED) {
                r = bluez_link_connect(d->link, job_priority(d->queue->kind));
                if (r < 0) {
                        queue_fail(d, -EHOSTUNREACH, "cannot connect");
                        return;
                }
                if (r == 0) {
                        if (!d->connecting) {
                                const Conf *c = driver_conf(d);
                                d->connecting = true;
                                driver_timer_start(d, (uint64_t) c->bluetooth.connect_timeout_sec *
                                                                      CONNECT_DEADLINE_MULT * USEC_PER_SEC);
                        }
                        return;
                }
        }

        d->connecting = false;
        driver_timer_stop(d);
        d->current = d->queue;
        d->queue = d->current->next;
        d->current->next = NULL;
        d->current->run = ++d->runs;
        driver_log(d, LOG_DEBUG, 0, "%s: running %s", d->lock->name, job_kind_to_string(d->current->kind));
        r = job_step(d);
        if (r < 0)
                job_finish(d, r, r == -ENOKEY ? "no security PIN known" : "cannot send the command");
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        NukiDriver *d = userdata;

        if (d->current) {
                /* Drop the link first: a late reply of this command must not reach the next
                 * job's fresh session (it would fail it, or finish a refresh early). Queued
                 * jobs connect again with a clean session. */
                (void) bluez_link_disconnect(d->link);
                job_fail(d, -ETIMEDOUT, "the lock did not answer in time");
                return 0;
        }
        if (d->connecting) {
                d->connecting = false;
                (void) bluez_link_disconnect(d->link);
                queue_fail(d, -EHOSTUNREACH, "the lock is not reachable");
                driver_set_link(d, false, false, false);
        }
        return 0;
}

/* Map a lock's Error Report to the errno of lock_command_done_t. */
static int errno_from_lock_error(int code)
{
        switch (code) {
        case NUKI_K_ERROR_MOTOR_BLOCKED:
        case NUKI_K_ERROR_CLUTCH_FAILURE:
        case NUKI_K_ERROR_MOTOR_TIMEOUT:
        case NUKI_K_ERROR_MOTOR_POSITION_LIMIT:
        case NUKI_K_ERROR_MOTOR_POWER_FAILURE:
        case NUKI_K_ERROR_CLUTCH_POWER_FAILURE:
                return -EDEADLK;
        case NUKI_K_ERROR_BUSY:
        case NUKI_K_ERROR_AUTO_UNLOCK_TOO_RECENT:
                return -EBUSY;
        case NUKI_K_ERROR_NOT_AUTHORIZED:
        case NUKI_K_ERROR_DISABLED:
        case NUKI_K_ERROR_REMOTE_NOT_ALLOWED:
        case NUKI_K_ERROR_TIME_NOT_ALLOWED:
        case NUKI_K_ERROR_BAD_PIN:
        case NUKI_K_ERROR_TOO_MANY_PIN_ATTEMPTS:
                return -EACCES;
        case NUKI_K_ERROR_BAD_PARAMETER:
        case NUKI_K_ERROR_INVALID_AUTH_ID:
                return -EINVAL;
        default:
                return -EIO;
        }
}

/* The "action" event of a calibration, with its outcome. */
static void calibrate_record(NukiDriver *d, const NukiJob *j, int r, const char *message)
{
        _cleanup_(json_putp) json_object *o = json_object_new_object();

        if (!o || !d->lock->event_sink)
                return;
        json_object_object_add(o, "action", json_object_new_string("calibrate"));
        json_object_object_add(o, "result", json_object_new_string(r < 0 ? "failed" : "done"));
        if (r < 0)
                json_object_object_add(o, "error", json_object_new_string(message ?: strerror(-r)));
        (void) d->lock->event_sink(d->lock, "action", j->source, NULL, json_object_to_json_string(o),
                                   d->lock->event_sink_userdata);
}

static void job_fail(NukiDriver *d, int r, const char *message)
{
        NukiJob *j = d->current;

        if (!j)
                return;
        if (j->kind == NUKI_JOB_ACTION) {
                char field[64];
                snprintf(field, sizeof field, "LOCK=%s", d->lock->name);
                log_struct(LOG_WARNING, r, LOG_FIELDS(field), "%s: %s failed: %s", d->lock->name,
                           lock_action_to_string(j->action), message ?: strerror(-r));
        }
        if (j->kind == NUKI_JOB_CALIBRATE) {
                driver_log(d, LOG_WARNING, r, "%s: calibration failed: %s", d->lock->name,
                           message ?: strerror(-r));
                calibrate_record(d, j, r, message);
        }
        job_finish(d, r, message);
}

static void job_fail_lock_error(NukiDriver *d, int code)
{
        const char *name = nuki_enum_to_string(NUKI_ENUM_ERROR, (unsigned) code);
        char msg[96];
        int r = errno_from_lock_error(code);
        NukiJobKind kind = d->current ? d->current->kind : _NUKI_JOB_MAX;

        if (kind == NUKI_JOB_CODES_LIST || kind == NUKI_JOB_CODE_ADD || kind == NUKI_JOB_CODE_UPDATE ||
            kind == NUKI_JOB_CODE_REMOVE)
                switch (code) {
                case NUKI_K_ERROR_CODE_ALREADY_EXISTS:
                        r = -EEXIST;
                        break;
                case NUKI_K_ERROR_TOO_MANY_ENTRIES:
                        r = -ENOSPC;
                        break;
                case NUKI_K_ERROR_CODE_INVALID:
                case NUKI_K_ERROR_CODE_INVALID_TIMEOUT_1:
                case NUKI_K_ERROR_CODE_INVALID_TIMEOUT_2:
                case NUKI_K_ERROR_CODE_INVALID_TIMEOUT_3:
                        r = -EINVAL;
                        break;
                case NUKI_K_ERROR_BAD_PARAMETER:
                        /* what the firmware answers for an unknown code id */
                        if (kind == NUKI_JOB_CODE_UPDATE || kind == NUKI_JOB_CODE_REMOVE)
                                r = -ENOENT;
                        break;
                default:
                        break;
                }
        if (kind == NUKI_JOB_ADMIN && d->current->admin->lock_error)
                r = d->current->admin->lock_error(code, r);

        switch (r) {
        case -EDEADLK:
                snprintf(msg, sizeof msg,
                         "jammed: the motor is blocked (%s); check the door and the lock's fit",
                         name ?: "motor error");
                break;
        case -EBUSY:
                snprintf(msg, sizeof msg, "the lock is busy (%s)", name ?: "busy");
                break;
        case -ENOENT:
                snprintf(msg, sizeof msg, "the lock has no such entry (%s)", name ?: "unknown id");
                break;
        case -EACCES:
                if (code == NUKI_K_ERROR_NOT_AUTHORIZED) {
                        snprintf(msg, sizeof msg,
                                 "the lock no longer knows the hub (not authorized): unpair it and pair it "
                                 "again");
                        break;
                }
                snprintf(msg, sizeof msg, "the lock refused (%s)", name ?: "not allowed");
                break;
        default:
                snprintf(msg, sizeof msg, "the lock reported %s (0x%02x)", name ?: "an error",
                         (unsigned) code);
                break;
        }
        if (r == -EDEADLK)
                (void) lock_set_state(d->lock, LOCK_STATE_JAMMED, LOCK_SOURCE_LOCK, NULL);
        if (code == NUKI_K_ERROR_NOT_AUTHORIZED) {
                (void) lock_set_needs_repair(d->lock, true);
                driver_save(d, save_state, NULL);
        }
        if (code == NUKI_K_ERROR_BAD_PIN || code == NUKI_K_ERROR_TOO_MANY_PIN_ATTEMPTS) {
                snprintf(msg, sizeof msg, "the lock rejected the security PIN (%s)", name ?: "bad PIN");
                r = -EKEYREJECTED;
                /* latched: the hub's own jobs stop spending the lock's PIN attempts (a PIN
                 * being tried is not the stored one) */
                if (!d->pin_rejected && d->current &&
                    !(d->current->kind == NUKI_JOB_ADMIN && d->current->admin->trial_pin)) {
                        d->pin_rejected = true;
                        nuki_pin_latch_set(&d->ctx, d->lock,
                                           d->current->kind == NUKI_JOB_ADMIN
                                                           ? d->current->admin->name
                                                           : job_kind_to_string(d->current->kind),
                                           name ?: "bad PIN");
                }
        }
        job_fail(d, r, msg);
}

/* ---- replies --------------------------------------------------------------------------- */

static void import_log_entry(NukiDriver *d, const NukiMsg *m)
{
        _cleanup_(json_putp) json_object *detail = json_object_new_object();
        const uint8_t *data = m->log_entry.data.data;
        size_t len = m->log_entry.data.len;
        LockLogEntry e = {
                .index = m->log_entry.index,
                .auth_id = m->log_entry.auth_id,
                .actor = m->log_entry.name[0] ? m->log_entry.name : NULL,
                .source = LOCK_SOURCE_LOCK,
                .kind = "log",
        };
        int64_t t = nuki_time_to_unix(&m->log_entry.timestamp);
        const char *s;

        if (t > 0)
                e.lock_time_usec = (uint64_t) t * USEC_PER_SEC;
        if (detail) {
                s = nuki_enum_to_string(NUKI_ENUM_LOG_TYPE, m->log_entry.type);
                json_object_object_add(detail, "log_type",
                                       s ? json_object_new_string(s)
                                         : json_object_new_int(m->log_entry.type));
        }

        switch (m->log_entry.type) {
        case 0x02: /* lock action: action, trigger, flags, completion */
        case 0x03: /* calibration */
        case 0x04: /* initialization run */
                if (len < 4)
                        break;
                /* Our own commands were recorded when they completed. */
                if (m->log_entry.type == 0x02 && m->log_entry.auth_id == d->cred.auth_id &&
                    data[1] == NUKI_TRIGGER_SYSTEM)
                        return;
                e.kind = m->log_entry.type == 0x02 ? "action" : "log";
                e.source = source_from_trigger(data[1]);
                e.is_action = m->log_entry.type == 0x02 && data[3] == NUKI_COMPLETION_SUCCESS &&
                              lock_action_from_nuki(data[0], &e.action);
                if (detail) {
                        s = nuki_enum_to_string(NUKI_ENUM_LOCK_ACTION, data[0]);
                        json_object_object_add(detail, "action", s ? json_object_new_string(s) : NULL);
                        s = nuki_enum_to_string(NUKI_ENUM_TRIGGER, data[1]);
                        json_object_object_add(detail, "trigger", s ? json_object_new_string(s) : NULL);
                        s = nuki_enum_to_string(NUKI_ENUM_COMPLETION_STATUS, data[3]);
                        json_object_object_add(detail, "result", s ? json_object_new_string(s) : NULL);
                }
                break;
        case 0x05: /* keypad: action, source, completion, code_id u16 */
                if (len < 5)
                        break;
                e.kind = data[2] == NUKI_COMPLETION_INVALID_CODE ? "access" : "keypad";
                e.source = LOCK_SOURCE_KEYPAD;
                e.is_action = data[2] == NUKI_COMPLETION_SUCCESS &&
                              lock_action_from_nuki(data[0], &e.action);
                if (detail) {
                        s = nuki_enum_to_string(NUKI_ENUM_LOCK_ACTION, data[0]);
                        json_object_object_add(detail, "action", s ? json_object_new_string(s) : NULL);
                        s = nuki_enum_to_string(NUKI_ENUM_COMPLETION_STATUS, data[2]);
                        json_object_object_add(detail, "result", s ? json_object_new_string(s) : NULL);
                        if (data[2] != NUKI_COMPLETION_INVALID_CODE)
                                json_object_object_add(detail, "code_id",
                                                       json_object_new_int(nuki_get_u16(data + 3)));
                }
                break;
        case 0x06: /* door sensor */
                if (len < 1)
                        break;
                e.kind = "door";
                if (detail) {
                        s = nuki_enum_to_string(NUKI_ENUM_LOG_DOOR_SENSOR, data[0]);
                        json_object_object_add(detail, "door", s ? json_object_new_string(s) : NULL);
                }
                break;
        default:
                break;
        }
        if (detail)
                e.detail_json = json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN);
        if (e.source == LOCK_SOURCE_LOCK && m->log_entry.auth_id != 0 &&
            m->log_entry.auth_id != d->cred.auth_id && !streq(e.kind, "door"))
                e.source = LOCK_SOURCE_APP;
        (void) lock_import_log_entry(d->lock, &e);
}

/* Device type where the lock reports one (fact sheet 5.6), else the firmware's major
 * version, which follows the generation. */
static const char *model_name(int device_type, uint8_t fw_major)
{
        switch (device_type) {
        case 0x02:
                return "Opener";
        case 0x03:
                return "Smart Door";
        case 0x05:
                return "Smart Lock Ultra";
        default:
                break;
        }
        switch (fw_major) {
        case 1:
                return "Smart Lock 1.0";
        case 2:
                return "Smart Lock 2.0";
        case 3:
                return "Smart Lock 3.0";
        case 4:
                return "Smart Lock 4th gen";
        default:
                return "Smart Lock";
        }
}

static void handle_config(NukiDriver *d, const NukiMsg *m)
{
        char fw[16], hw[8], model[40];
        const char *dt = NULL;
        struct info_update u = { .device_type = -1 };

        snprintf(fw, sizeof fw, "%u.%u.%u", m->config.firmware_version[0], m->config.firmware_version[1],
                 m->config.firmware_version[2]);
        snprintf(hw, sizeof hw, "%u.%u", m->config.hardware_revision[0], m->config.hardware_revision[1]);
        if (m->n_optional >= 3)
                u.device_type = m->config.device_type;
        dt = model_name(u.device_type, m->config.firmware_version[0]);
        snprintf(model, sizeof model, "Nuki %s", dt);
        if (d->seen_config_count >= 0)
                d->config_update_count = d->seen_config_count;
        u.model = model;
        u.firmware = fw;
        u.hardware = hw;
        (void) lock_set_info(d->lock, model, fw);
        driver_save(d, save_info, &u);
        if (d->ctx.store && d->lock->store_id > 0) {
                _cleanup_(json_putp) json_object *o = NULL;

                (void) store_firmware_record(d->ctx.store, d->lock->store_id, 0, fw, hw);
                o = nuki_json_fields(m);
                if (o)
                        (void) store_snapshot_add(d->ctx.store, d->lock->store_id, "config",
                                                  d->config_update_count < 0 ? "paired" : "changed",
                                                  d->config_update_count, 0,
                                                  json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                /* the rest of the settings, for backups: advanced config, time controls */
                nuki_admin_read_settings(d);
        }
}

/* Keypad code list replies: the count, then one entry per code. */
static void code_list_take(NukiDriver *d, const NukiMsg *m)
{
        NukiJob *j = d->current;
        LockCode *n;

        if (m->command == NUKI_CMD_KEYPAD_CODE_COUNT) {
                j->announced = m->keypad_code_count.count;
                j->have_announced = true;
                return;
        }
        if (m->command != NUKI_CMD_KEYPAD_CODE)
                return;
        j->received++;
        n = reallocarray(j->codes, j->n_codes + 1, sizeof *n);
        if (!n)
                return;
        j->codes = n;
        if (codes_from_nuki(m, &j->codes[j->n_codes]) >= 0)
                j->n_codes++;
}

/* What the states read after a link loss say about the action j:
 * 1 done, 0 still moving (read again), -EDEADLK it jammed, -EAGAIN not seen (never started,
 * or undone since). With trust_last the lock's "last action" with the trigger "system"
 * counts as ours (any app over Bluetooth looks the same: only without the log). */
static int action_outcome(const NukiJob *j, const NukiMsg *m, bool trust_last)
{
        uint8_t s = m->keyturner_states.lock_state, want = 0;
        bool last_ours = false;

        if (!nuki_action_from_lock(j->action, &want))
                return -EAGAIN;
        /* The lock's own record of its last action, when the message has it. */
        if (m->n_optional >= 3 && trust_last)
                last_ours = m->keyturner_states.last_lock_action == want &&
                            m->keyturner_states.last_lock_action_trigger == NUKI_TRIGGER_SYSTEM;
        if (s == NUKI_LOCK_STATE_MOTOR_BLOCKED)
                return last_ours ? -EDEADLK : -EAGAIN;
        switch (j->action) {
        case LOCK_ACTION_LOCK:
        case LOCK_ACTION_FULL_LOCK:
                return s == NUKI_LOCK_STATE_LOCKED ? 1 : s == NUKI_LOCK_STATE_LOCKING ? 0 : -EAGAIN;
        case LOCK_ACTION_UNLOCK:
                return s == NUKI_LOCK_STATE_UNLOCKED ? 1 : s == NUKI_LOCK_STATE_UNLOCKING ? 0 : -EAGAIN;
        case LOCK_ACTION_UNLATCH:
        case LOCK_ACTION_LOCK_N_GO_UNLATCH:
                if (s == NUKI_LOCK_STATE_UNLATCHED)
                        return 1;
                if (s == NUKI_LOCK_STATE_UNLATCHING || s == NUKI_LOCK_STATE_UNLOCKING)
                        return 0;
                /* the latch is already released again: only the log can tell */
                return last_ours && (s == NUKI_LOCK_STATE_UNLOCKED ||
                                     s == NUKI_LOCK_STATE_UNLOCKED_LOCKNGO || s == NUKI_LOCK_STATE_LOCKED)
                                       ? 1
                                       : -EAGAIN;
        case LOCK_ACTION_LOCK_N_GO:
                if (s == NUKI_LOCK_STATE_UNLOCKED_LOCKNGO)
                        return 1;
                if (s == NUKI_LOCK_STATE_UNLOCKING)
                        return 0;
                return last_ours && (s == NUKI_LOCK_STATE_LOCKED || s == NUKI_LOCK_STATE_LOCKING) ? 1
                                                                                                  : -EAGAIN;
        case _LOCK_ACTION_MAX:
                break;
        }
        return -EAGAIN;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata);

static int poll_arm(NukiDriver *d, uint64_t usec)
{
        int r;

        if (!d->poll)
                return sd_event_add_time_relative(d->ctx.event, &d->poll, CLOCK_MONOTONIC, usec, 10000,
                                                  on_poll, d);
        r = sd_event_source_set_time_relative(d->poll, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(d->poll, SD_EVENT_ONESHOT);
        return r;
}

/* While the motor runs the lock is silent, for longer than BlueZ's idle timer may wait
 * (a slow motor, a calibration): the link is kept until the job ends. */
static uint64_t keep_usec(const NukiDriver *d)
{
        return MAX((uint64_t) driver_conf(d)->bluetooth.idle_disconnect_sec * USEC_PER_SEC / 2,
                   VERIFY_POLL_USEC);
}

static void keep_link(NukiDriver *d)
{
        if (driver_conf(d)->bluetooth.idle_disconnect_sec == 0)
                return;
        if (poll_arm(d, keep_usec(d)) < 0)
                driver_log(d, LOG_WARNING, 0, "%s: cannot arm a timer", d->lock->name);
}

/* d->poll: the next read of a moving lock after a link loss, or keeping the link. */
static int on_poll(sd_event_source *s, uint64_t usec, void *userdata)
{
        NukiDriver *d = userdata;
        NukiJob *j = d->current;

        if (!j)
                return 0;
        if (j->verify) {
                if (job_step(d) < 0)
                        job_fail(d, -EHOSTUNREACH, "cannot read the lock's state");
                return 0;
        }
        if (j->accepted && bluez_link_get_state(d->link) == BLUEZ_LINK_CONNECTED) {
                (void) bluez_link_connect(d->link, job_priority(j->kind)); /* restarts its idle timer */
                keep_link(d);
        }
        return 0;
}

/* A log entry read while verifying: ours, of this action, after the mark? */
static void verify_log_take(NukiDriver *d, const NukiMsg *m)
{
        NukiJob *j = d->current;
        uint8_t want = 0;

        if (m->command != NUKI_CMD_LOG_ENTRY)
                return;
        j->received++;
        if (m->log_entry.type != 0x02 || m->log_entry.data.len < 4 ||
            m->log_entry.auth_id != d->cred.auth_id || (int64_t) m->log_entry.index <= j->log_mark ||
            !nuki_action_from_lock(j->action, &want) || m->log_entry.data.data[0] != want)
                return;
        j->log_found = true;
        j->log_completion = m->log_entry.data.data[3];
}

/* The lock has the action done: finish the job without sending it again. */
static void verify_done(NukiDriver *d, const char *how)
{
        NukiJob *j = d->current;

        driver_log(d, LOG_INFO, 0,
                   "%s: the %s was carried out while the link was down (%s); not sending it again.",
                   d->lock->name, lock_action_to_string(j->action), how);
        (void) lock_set_last_action(d->lock, j->action, j->source, j->actor[0] ? j->actor : NULL,
                                    now_usec(CLOCK_REALTIME));
        d->last_refresh_usec = now_usec(CLOCK_MONOTONIC);
        driver_save(d, save_state, NULL);
        /* the state may have moved on since (auto-lock, by hand): read it again */
        job_enqueue_kind(d, NUKI_JOB_REFRESH);
        job_finish(d, 0, NULL);
}

static void verify_resend(NukiDriver *d)
{
        NukiJob *j = d->current;
        int r;

        driver_log(d, LOG_NOTICE, 0,
                   "%s: the lock did not get the %s before the link was lost, sending it again.",
                   d->lock->name, lock_action_to_string(j->action));
        j->verify = false;
        j->check_log = false;
        nuki_session_reset(&d->session);
        r = job_step(d);
        if (r < 0)
                job_fail(d, -EHOSTUNREACH, "cannot send the command");
}

/* Neither the state nor the log tells: an action the lock acknowledged is never sent
 * again (it may have run, and been undone since by hand or auto-lock). */
static void verify_unknown(NukiDriver *d)
{
        NukiJob *j = d->current;
        char msg[160];

        if (!j->acked) {
                verify_resend(d);
                return;
        }
        snprintf(msg, sizeof msg,
                 "the lock may have carried out the %s before the link was lost; check it (not sent again)",
                 lock_action_to_string(j->action));
        job_fail(d, -EINPROGRESS, msg);
}

/* The lock's log after the mark was read (job_verify). */
static void verify_from_log(NukiDriver *d)
{
        NukiJob *j = d->current;
        char msg[160];
        const char *s;
        bool jammed;

        if (j->log_found && j->log_completion == NUKI_COMPLETION_SUCCESS) {
                verify_done(d, "the lock's log has it");
                return;
        }
        if (j->log_found) {
                s = nuki_enum_to_string(NUKI_ENUM_COMPLETION_STATUS, j->log_completion);
                snprintf(msg, sizeof msg, "the lock tried the %s while the link was down: %s",
                         lock_action_to_string(j->action), s ?: "not completed");
                jammed = j->log_completion == NUKI_COMPLETION_MOTOR_BLOCKED ||
                         j->log_completion == NUKI_COMPLETION_CLUTCH_FAILURE ||
                         j->log_completion == NUKI_COMPLETION_MOTOR_POWER_FAILURE;
                job_fail(d, jammed ? -EDEADLK : -EIO, msg);
                return;
        }
        if (j->received >= LOG_BATCH) {
                /* more entries than one batch since the mark: not all read */
                verify_unknown(d);
                return;
        }
        if (j->acked) {
                /* acknowledged, stopped, and not in the log: not a case of a lock that
                 * works; do not risk a second run */
                verify_unknown(d);
                return;
        }
        verify_resend(d);
}

/* What was read after a link loss (see the top of the file): the states, then, unless
 * they show the action done or under way, the lock's log after the mark. */
static void job_verify(NukiDriver *d, const NukiMsg *m)
{
        NukiJob *j = d->current;
        bool use_log = j->log_mark >= 0 && d->cred.has_pin && !d->pin_rejected;
        int r;

        if (j->check_log) {
                verify_log_take(d, m);
                verify_from_log(d);
                return;
        }
        if (m->command != NUKI_CMD_KEYTURNER_STATES) {
                job_fail(d, -EPROTO, "the lock did not send its state");
                return;
        }
        apply_states(d, m);
        r = action_outcome(j, m, !use_log);
        if (r == 0) {
                /* still moving; the polls are bounded by the command timeout */
                if (++j->polls * VERIFY_POLL_USEC > command_timeout_usec(d)) {
                        job_fail(d, -ETIMEDOUT, "the lock did not finish the action");
                        return;
                }
                driver_timer_stop(d);
                nuki_session_reset(&d->session);
                r = poll_arm(d, VERIFY_POLL_USEC);
                if (r < 0)
                        job_fail(d, r, "cannot arm a timer");
                return;
        }
        if (r > 0) {
                verify_done(d, "in its end state");
                return;
        }
        if (r == -EDEADLK) {
                job_fail(d, -EDEADLK, "motor blocked");
                return;
        }
        if (use_log) {
                /* stopped elsewhere: the lock's log says whether it ran (and was undone) */
                j->check_log = true;
                j->received = 0;
                j->log_found = false;
                nuki_session_reset(&d->session);
                r = job_step(d);
                if (r < 0)
                        job_fail(d, -EHOSTUNREACH, "cannot read the lock's log");
                return;
        }
        verify_unknown(d);
}

static void job_step_done(NukiDriver *d, const NukiMsg *m)
{
        NukiJob *j = d->current;

        switch (j->kind) {
        case NUKI_JOB_ACTION:
                if (j->verify) {
                        job_verify(d, m);
                        return;
                }
                if (j->accepted_usec > 0 && d->ctx.store && d->lock->store_id > 0)
                        (void) store_sample_append(d->ctx.store, d->lock->store_id, "motor-ms", 0,
                                                   (double) (now_usec(CLOCK_MONOTONIC) - j->accepted_usec) /
                                                                   1000.0);
                (void) lock_set_last_action(d->lock, j->action, j->source, j->actor[0] ? j->actor : NULL,
                                            now_usec(CLOCK_REALTIME));
                driver_save(d, save_state, NULL);
                /* The action set the state-changed bit: read the states (which clears it),
                 * then import the log. */
                job_enqueue_kind(d, NUKI_JOB_REFRESH);
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_REMOVE_AUTH:
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_REFRESH:
                if (m->command == NUKI_CMD_KEYTURNER_STATES) {
                        apply_states(d, m);
                        d->last_refresh_usec = now_usec(CLOCK_MONOTONIC);
                        driver_save(d, save_state, NULL);
                        job_enqueue_kind(d, NUKI_JOB_LOG_SYNC);
                }
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_CONFIG:
                if (j->step == 0) {
                        if (m->command == NUKI_CMD_CONFIG)
                                handle_config(d, m);
                        j->step = 1;
                        if (job_step(d) < 0)
                                job_finish(d, 0, NULL);
                        return;
                }
                if (m->command == NUKI_CMD_BATTERY_REPORT && d->ctx.store && d->lock->store_id > 0)
                        (void) store_sample_append(d->ctx.store, d->lock->store_id, "battery-mv", 0,
                                                   m->battery_report.voltage);
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_LOG_SYNC:
                if (m->command == NUKI_CMD_LOG_ENTRY) {
                        j->received++;
                        if (m->log_entry.index > j->max_index) {
                                if (d->log_synced_index >= 0)
                                        import_log_entry(d, m);
                                j->max_index = m->log_entry.index;
                        }
                }
                if (d->log_synced_index < 0)
                        d->log_synced_index = j->max_index;
                else if (j->max_index > d->log_synced_index)
                        d->log_synced_index = j->max_index;
                driver_save(d, save_state, NULL);
                if (m->command == NUKI_CMD_LOG_ENTRY && j->received >= LOG_BATCH &&
                    d->log_synced_index > j->step_mark) {
                        /* a full batch that moved us on: there may be more (a lock that sends
                         * the same entries again would otherwise be asked forever, and block
                         * every command queued behind) */
                        if (job_step(d) >= 0)
                                return;
                }
                if (j->received < LOG_BATCH)
                        d->own_unsynced = 0; /* read to its end: our actions are all below it */
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_CODES_LIST:
                code_list_take(d, m);
                if (m->command == NUKI_CMD_KEYPAD_CODE && j->received >= CODE_PAGE &&
                    (int64_t) j->n_codes > j->step_mark &&
                    (!j->have_announced || j->n_codes < j->announced) && j->n_codes < UINT16_MAX) {
                        /* a full page and more announced: the next one */
                        if (job_step(d) >= 0)
                                return;
                }
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_CODE_ADD:
                if (m->command == NUKI_CMD_KEYPAD_CODE_ID) {
                        j->code_id = m->keypad_code_id.code_id;
                        job_finish(d, 0, NULL);
                } else
                        job_finish(d, -EPROTO, "the lock did not say which id the new code has");
                return;
        case NUKI_JOB_CODE_UPDATE:
        case NUKI_JOB_CODE_REMOVE:
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_CALIBRATE:
                driver_log(d, LOG_NOTICE, 0, "%s: calibrated.", d->lock->name);
                calibrate_record(d, j, 0, NULL);
                /* the final state comes with the next read */
                job_enqueue_kind(d, NUKI_JOB_REFRESH);
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_TIME_SYNC:
                driver_log(d, LOG_INFO, 0, "%s: set the lock's clock.", d->lock->name);
                if (d->lock->event_sink)
                        (void) d->lock->event_sink(d->lock, "config", LOCK_SOURCE_HUB, NULL,
                                                   "{\"clock\":\"set\"}", d->lock->event_sink_userdata);
                job_finish(d, 0, NULL);
                return;
        case NUKI_JOB_ADMIN: {
                const char *message = NULL;
                int r = j->admin->reply(d, j->admin_data, m, true, &message);
                if (r <= 0)
                        job_finish(d, r, message);
                return;
        }
        case _NUKI_JOB_MAX:
                break;
        }
        job_finish(d, 0, NULL);
}

static void job_progress(NukiDriver *d, const NukiMsg *m)
{
        NukiJob *j = d->current;

        if (j->kind == NUKI_JOB_ADMIN) {
                const char *message = NULL;
                int r = j->admin->reply(d, j->admin_data, m, false, &message);
                if (r < 0)
                        job_fail(d, r, message);
                else if (r == 0)
                        job_finish(d, 0, NULL);
                return;
        }
        switch (m->command) {
        case NUKI_CMD_KEYTURNER_STATES:
                apply_states(d, m);
                return;
        case NUKI_CMD_STATUS:
                if ((j->kind == NUKI_JOB_ACTION || j->kind == NUKI_JOB_CALIBRATE) && !j->accepted) {
                        j->accepted = true;
                        j->acked = true;
                        j->accepted_usec = now_usec(CLOCK_MONOTONIC);
                        keep_link(d);
                }
                /* the motor may take a while: give the lock the full timeout again */
                driver_timer_start(d, command_timeout_usec(d) * (j->kind == NUKI_JOB_CALIBRATE
                                                                                 ? CALIBRATE_TIMEOUT_MULT
                                                                                 : 1));
                return;
        case NUKI_CMD_KEYPAD_CODE_COUNT:
        case NUKI_CMD_KEYPAD_CODE:
                if (j->kind == NUKI_JOB_CODES_LIST)
                        code_list_take(d, m);
                return;
        case NUKI_CMD_LOG_ENTRY:
                if (j->kind == NUKI_JOB_ACTION && j->check_log)
                        verify_log_take(d, m);
                if (j->kind == NUKI_JOB_LOG_SYNC) {
                        j->received++;
                        if (m->log_entry.index > j->max_index) {
                                if (d->log_synced_index >= 0)
                                        import_log_entry(d, m);
                                j->max_index = m->log_entry.index;
                        }
                }
                return;
        default:
                return;
        }
}

static void on_usdio_frame(NukiDriver *d, const uint8_t *frame, size_t n)
{
        uint8_t out[NUKI_FRAME_MAX];
        size_t out_len = 0;
        NukiMsg m;
        int r;

        r = nuki_session_feed(&d->session, frame, n, NULL, &m, out, sizeof out, &out_len);
        if (out_len > 0) {
                int q = driver_send(d, out, out_len);
                nuki_wipe(out, sizeof out);
                if (q < 0)
                        job_fail(d, -EHOSTUNREACH, "cannot send the command");
        }
        if (r == -ENOENT)
                return;
        if (r == -EREMOTEIO) {
                int code = nuki_session_lock_error(&d->session);
                nuki_msg_wipe(&m);
                if (d->current)
                        job_fail_lock_error(d, code);
                return;
        }
        if (r == -EKEYREJECTED || r == -EPROTO) {
                driver_log(d, LOG_WARNING, r, "%s: cannot decrypt a message from the lock: %m",
                           d->lock->name);
                if (d->current)
                        job_fail(d, -EACCES, "the lock's messages cannot be decrypted (re-pair it)");
                return;
        }
        if (r < 0) {
                driver_log(d, LOG_DEBUG, r, "%s: dropping a bad frame: %m", d->lock->name);
                if (d->current)
                        job_fail(d, -EIO, "bad frame from the lock");
                return;
        }
        switch ((NukiSessionResult) r) {
        case NUKI_SESSION_PENDING:
                break;
        case NUKI_SESSION_PROGRESS:
                if (d->current)
                        job_progress(d, &m);
                break;
        case NUKI_SESSION_DONE:
                if (d->current)
                        job_step_done(d, &m);
                break;
        case NUKI_SESSION_UNSOLICITED:
                if (m.command == NUKI_CMD_KEYTURNER_STATES)
                        apply_states(d, &m);
                break;
        }
        nuki_msg_wipe(&m);
}

static void on_gdio_frame(NukiDriver *d, const uint8_t *frame, size_t n)
{
        NukiFrame f;
        int r;

        r = nuki_frame_decode_plain(frame, n, &f);
        if (r < 0)
                return;
        if (f.command == NUKI_CMD_STATUS && f.payload_len >= 1 &&
            f.payload[0] == NUKI_STATUS_STATE_CHANGED) {
                driver_log(d, LOG_DEBUG, 0, "%s: the lock has news (status 0xF1)", d->lock->name);
                job_enqueue_kind(d, NUKI_JOB_REFRESH);
        } else if (f.command == NUKI_CMD_ERROR_REPORT && f.payload_len >= 1) {
                driver_log(d, LOG_WARNING, 0, "%s: unencrypted error report 0x%02x from the lock",
                           d->lock->name, f.payload[0]);
                if (d->current)
                        job_fail_lock_error(d, f.payload[0]);
        }
        nuki_frame_wipe(&f);
}

static void on_link_indication(BluezLink *l, const char *uuid, const uint8_t *data, size_t size,
                               void *userdata)
{
        NukiDriver *d = userdata;
        NukiReasm *ra;
        uint8_t frame[NUKI_FRAME_MAX];
        size_t n;
        bool usdio;
        int r;

        if (strcasecmp(uuid, NUKI_UUID_KEYTURNER_USDIO) == 0) {
                ra = &d->reasm_usdio;
                usdio = true;
        } else if (strcasecmp(uuid, NUKI_UUID_KEYTURNER_GDIO) == 0) {
                ra = &d->reasm_gdio;
                usdio = false;
        } else
                return;
        if (nuki_reasm_feed(ra, data, size, now_usec(CLOCK_MONOTONIC)) < 0)
                return;
        while ((r = nuki_reasm_pop(ra, frame, sizeof frame, &n)) > 0) {
                if (usdio)
                        on_usdio_frame(d, frame, n);
                else
                        on_gdio_frame(d, frame, n);
                if (!d->link)
                        break;
        }
        nuki_wipe(frame, sizeof frame);
}

static void on_link_connected(BluezLink *l, void *userdata)
{
        NukiDriver *d = userdata;

        nuki_reasm_reset(&d->reasm_usdio);
        nuki_reasm_reset(&d->reasm_gdio);
        nuki_session_reset(&d->session);
        d->connecting = false;
        driver_timer_stop(d);
        driver_set_link(d, true, true, true);
        driver_kick(d);
}

static void on_link_failed(BluezLink *l, const BluezError *err, void *userdata)
{
        NukiDriver *d = userdata;
        char msg[160];

        d->connecting = false;
        driver_timer_stop(d);
        snprintf(msg, sizeof msg, "the lock is not reachable (%s)",
                 err && err->message ? err->message : strerror(err ? -err->error : EHOSTUNREACH));
        driver_log(d, LOG_NOTICE, err ? err->error : -EHOSTUNREACH, "%s: cannot connect: %s", d->lock->name,
                   msg);
        if (d->current)
                job_fail(d, -EHOSTUNREACH, msg);
        queue_fail(d, -EHOSTUNREACH, msg);
        driver_set_link(d, false, false, false);
}

/* The link went down under the running action: back to the head of the queue, to be
 * verified once connected again. false when it is not an action or has no resend left. */
static bool job_requeue_after_loss(NukiDriver *d)
{
        NukiJob *j = d->current;

        if (!j || j->kind != NUKI_JOB_ACTION || j->resends >= ACTION_RESENDS)
                return false;
        j->resends++;
        j->verify = true;
        j->check_log = false;
        j->polls = 0;
        j->accepted = false;
        j->accepted_usec = 0; /* the motor time is unknown now */
        d->current = NULL;
        driver_timer_stop(d);
        if (d->poll)
                (void) sd_event_source_set_enabled(d->poll, SD_EVENT_OFF);
        nuki_session_reset(&d->session);
        j->next = d->queue;
        d->queue = j;
        driver_log(d, LOG_NOTICE, -EHOSTUNREACH,
                   "%s: the connection was lost during the %s; connecting again to finish it.",
                   d->lock->name, lock_action_to_string(j->action));
        return true;
}

static void on_link_disconnected(BluezLink *l, const BluezError *err, void *userdata)
{
        NukiDriver *d = userdata;

        driver_set_link(d, false, true, false);
        driver_save(d, save_state, NULL);
        if (d->current && !job_requeue_after_loss(d))
                job_fail(d, -EHOSTUNREACH, "the connection to the lock was lost");
        else
                driver_kick(d);
}

static const BluezLinkOps link_ops = {
        .connected = on_link_connected,
        .disconnected = on_link_disconnected,
        .failed = on_link_failed,
        .indication = on_link_indication,
};

/* ---- lock_driver_ops ----------------------------------------------------------------------- */

static int driver_queue_user_job(Lock *l, NukiJob *j, lock_command_done_t done, void *userdata)
{
        NukiDriver *d = l->driver_data;

        if (!d) {
                job_free(j);
                return -ENODEV;
        }
        j->done = done;
        j->userdata = userdata;
        job_enqueue(d, j);
        return 0;
}

static int nuki_op_action(Lock *l, LockAction a, LockSource source, const char *actor,
                          lock_command_done_t done, void *userdata)
{
        NukiJob *j;
        uint8_t na;

        if (!nuki_action_from_lock(a, &na))
                return -EINVAL;
        j = job_new(NUKI_JOB_ACTION);
        if (!j)
                return -ENOMEM;
        j->action = a;
        j->source = source;
        snprintf(j->actor, sizeof j->actor, "%s", strempty(actor));
        return driver_queue_user_job(l, j, done, userdata);
}

static int nuki_op_refresh(Lock *l, lock_command_done_t done, void *userdata)
{
        NukiJob *j = job_new(NUKI_JOB_REFRESH);

        if (!j)
                return -ENOMEM;
        return driver_queue_user_job(l, j, done, userdata);
}

/* A new job that needs the security PIN: -ENODEV without a driver, -ENOKEY without a PIN. */
static int pin_job_new(Lock *l, NukiJobKind kind, NukiJob **ret)
{
        const NukiDriver *d = l->driver_data;

        if (!d)
                return -ENODEV;
        if (!d->cred.has_pin)
                return -ENOKEY;
        /* the codes service's reconciliation: not while the lock rejects the PIN */
        if (d->pin_rejected && (kind == NUKI_JOB_CODES_LIST || kind == NUKI_JOB_CODE_ADD ||
                                kind == NUKI_JOB_CODE_UPDATE || kind == NUKI_JOB_CODE_REMOVE))
                return -EKEYREJECTED;
        *ret = job_new(kind);
        return *ret ? 0 : -ENOMEM;
}

static int nuki_op_list_codes(Lock *l, lock_codes_listed_t done, void *userdata)
{
        NukiJob *j;
        int r = pin_job_new(l, NUKI_JOB_CODES_LIST, &j);

        if (r < 0)
                return r;
        j->listed = done;
        j->userdata = userdata;
        job_enqueue(l->driver_data, j);
        return 0;
}

static int nuki_op_add_code(Lock *l, const LockCode *c, lock_code_added_t done, void *userdata)
{
        NukiJob *j;
        int r = pin_job_new(l, NUKI_JOB_CODE_ADD, &j);

        if (r < 0)
                return r;
        j->code = *c;
        j->code_id = -1;
        j->added = done;
        j->userdata = userdata;
        job_enqueue(l->driver_data, j);
        return 0;
}

static int nuki_op_update_code(Lock *l, const LockCode *c, lock_command_done_t done, void *userdata)
{
        NukiJob *j;
        int r;

        if (c->id < 0 || c->id > UINT16_MAX)
                return -EINVAL;
        r = pin_job_new(l, NUKI_JOB_CODE_UPDATE, &j);
        if (r < 0)
                return r;
        j->code = *c;
        return driver_queue_user_job(l, j, done, userdata);
}

static int nuki_op_remove_code(Lock *l, int code_id, lock_command_done_t done, void *userdata)
{
        NukiJob *j;
        int r;

        if (code_id < 0 || code_id > UINT16_MAX)
                return -EINVAL;
        r = pin_job_new(l, NUKI_JOB_CODE_REMOVE, &j);
        if (r < 0)
                return r;
        j->code_id = code_id;
        return driver_queue_user_job(l, j, done, userdata);
}

static int nuki_op_calibrate(Lock *l, LockSource source, lock_command_done_t done, void *userdata)
{
        NukiJob *j;
        int r = pin_job_new(l, NUKI_JOB_CALIBRATE, &j);

        if (r < 0)
                return r;
        j->source = source;
        return driver_queue_user_job(l, j, done, userdata);
}

/* The recovery ladder's reconnect: a fresh connection, so a link that is up but no longer
 * carries anything (a stuck session, a half-dead connection) is not reused. A running job
 * is left alone: its own outcome tells. */
/* A motor of ours may be turning: an accepted action or calibration that has not
 * finished, or an action waiting to be verified after a link loss (it may be running). */
static bool nuki_op_busy(Lock *l)
{
        NukiDriver *d = l->driver_data;

        if (!d)
                return false;
        if (d->current && (d->current->kind == NUKI_JOB_ACTION || d->current->kind == NUKI_JOB_CALIBRATE) &&
            (d->current->accepted || d->current->verify))
                return true;
        return d->queue && d->queue->kind == NUKI_JOB_ACTION && d->queue->verify && d->queue->acked;
}

static int nuki_op_reconnect(Lock *l, lock_command_done_t done, void *userdata)
{
        NukiDriver *d = l->driver_data;
        NukiJob *j;

        if (!d)
                return -ENODEV;
        j = job_new(NUKI_JOB_REFRESH);
        if (!j)
                return -ENOMEM;
        if (!d->current && d->link && bluez_link_get_state(d->link) == BLUEZ_LINK_CONNECTED) {
                driver_log(d, LOG_INFO, 0, "%s: disconnecting to connect again.", d->lock->name);
                (void) bluez_link_disconnect(d->link);
        }
        return driver_queue_user_job(l, j, done, userdata);
}

static void nuki_op_free(Lock *l)
{
        NukiDriver *d = l->driver_data;
        NukiJob *current, *queue;

        if (!d)
                return;
        /* Take the driver apart before any callback runs: a callback that calls into the
         * lock again gets -ENODEV, and finds no link, timer or queue half torn down. */
        l->driver_data = NULL;
        current = TAKE_PTR(d->current);
        queue = TAKE_PTR(d->queue);
        d->timer = sd_event_source_disable_unref(d->timer);
        d->poll = sd_event_source_disable_unref(d->poll);
        d->link = bluez_link_free(d->link); /* no callbacks from here on */
        while (d->writes)
                write_unlink(d->writes);

        if (current)
                job_done(d, current, -ECANCELED, "the lock was removed");
        while (queue) {
                NukiJob *j = queue;
                queue = j->next;
                job_done(d, j, -ECANCELED, "the lock was removed");
        }
        nuki_session_wipe(&d->session);
        nuki_credentials_wipe(&d->cred);
        nuki_wipe(&d->reasm_usdio, sizeof d->reasm_usdio);
        free(d);
}

static const struct lock_driver_ops nuki_ops = {
        .protocol = "nuki",
        .action = nuki_op_action,
        .refresh = nuki_op_refresh,
        .list_codes = nuki_op_list_codes,
        .add_code = nuki_op_add_code,
        .update_code = nuki_op_update_code,
        .remove_code = nuki_op_remove_code,
        .calibrate = nuki_op_calibrate,
        .reconnect = nuki_op_reconnect,
        .busy = nuki_op_busy,
        .list_authorizations = nuki_op_list_authorizations,
        .set_authorization_enabled = nuki_op_set_authorization_enabled,
        .remove_authorization = nuki_op_remove_authorization,
        .apply_settings = nuki_op_apply_settings,
        .set_security_pin = nuki_op_set_security_pin,
        .free = nuki_op_free,
};

int nuki_driver_setup(Lock *l, lock_command_done_t done, void *userdata)
{
        NukiDriver *d = l->driver_data;
        NukiJob *j;

        if (!d)
                return -ENODEV;
        /* States first (they carry the config update count), then config, firmware and
         * battery; the caller hears back when the config is in. */
        job_enqueue_kind(d, NUKI_JOB_REFRESH);
        if (job_queued(d, NUKI_JOB_CONFIG))
                return -EBUSY;
        j = job_new(NUKI_JOB_CONFIG);
        if (!j)
                return -ENOMEM;
        return driver_queue_user_job(l, j, done, userdata);
}

int nuki_driver_remove_authorization(Lock *l, lock_command_done_t done, void *userdata)
{
        NukiJob *j;
        int r = pin_job_new(l, NUKI_JOB_REMOVE_AUTH, &j);

        if (r < 0)
                return r;
        return driver_queue_user_job(l, j, done, userdata);
}

void nuki_driver_advert(Lock *l, const BluezAdvert *a, const NukiAdvert *na)
{
        NukiDriver *d = l->driver_data;
        LockLink link = l->link;

        if (!d)
                return;
        /* Every advert updates the model; lock_set_link() decides when listeners hear
         * of RSSI and last-seen changes (they move with every advert). */
        if (a->has_rssi)
                link.rssi = a->rssi;
        link.last_seen_usec = now_usec(CLOCK_REALTIME);
        link.reachable = true;
        (void) lock_set_link(l, &link);

        if (na && na->has_beacon && na->state_changed && !d->current && !job_queued(d, NUKI_JOB_REFRESH) &&
            bluez_link_get_state(d->link) != BLUEZ_LINK_CONNECTED &&
            now_usec(CLOCK_MONOTONIC) > d->last_refresh_usec + REFRESH_HOLDOFF_USEC) {
                driver_log(d, LOG_DEBUG, 0, "%s: advert says the lock has news", l->name);
                d->last_refresh_usec = now_usec(CLOCK_MONOTONIC);
                job_enqueue_kind(d, NUKI_JOB_REFRESH);
        }
}

int nuki_driver_attach(Lock *l, const NukiDriverContext *ctx, const NukiCredentials *cred)
{
        static const char *const notify[] = { NUKI_UUID_KEYTURNER_USDIO, NUKI_UUID_KEYTURNER_GDIO, NULL };
        NukiDriver *d;
        int r;

        d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        d->lock = l;
        d->ctx = *ctx;
        d->cred = *cred;
        d->config_update_count = -1;
        d->seen_config_count = -1;
        d->log_synced_index = -1;
        d->own_unsynced = 1; /* unknown until the log was read to its end once */
        nuki_session_init(&d->session, cred->shared_key, cred->auth_id,
                          cred->has_pin ? cred->security_pin : 0, cred->ultra);
        nuki_reasm_init(&d->reasm_usdio, NUKI_REASM_ENCRYPTED);
        nuki_reasm_init(&d->reasm_gdio, NUKI_REASM_PLAIN);

        if (ctx->store && l->store_id > 0) {
                struct store_lock row;
                store_lock_init(&row);
                if (store_lock_get(ctx->store, l->store_id, &row) >= 0) {
                        d->config_update_count = row.config_update_count;
                        d->log_synced_index = row.log_synced_index;
                }
                store_lock_done(&row);
        }
        d->pin_rejected = nuki_pin_latch_load(ctx, l);

        r = bluez_link_new(ctx->client, l->address, notify, &link_ops, d, &d->link);
        if (r < 0) {
                nuki_session_wipe(&d->session);
                nuki_credentials_wipe(&d->cred);
                free(d);
                return r;
        }
        l->ops = &nuki_ops;
        l->driver_data = d;
        return 0;
}

int nuki_credentials_from_store(const struct store_lock *sl, NukiCredentials *ret)
{
        NukiCredentials c = {};

        if (sl->key_version != 0 || !sl->shared_key_sealed || sl->shared_key_sealed_size != NUKI_KEY_SIZE ||
            sl->auth_id < 0)
                return -EBADMSG;
        memcpy(c.shared_key, sl->shared_key_sealed, NUKI_KEY_SIZE);
        c.auth_id = (uint32_t) sl->auth_id;
        c.app_id = sl->app_id >= 0 ? (uint32_t) sl->app_id : 0;
        c.ultra = sl->ultra;
        if (sl->security_pin_sealed && sl->security_pin_sealed_size == 4) {
                c.has_pin = true;
                c.security_pin = nuki_get_u32(sl->security_pin_sealed);
        }
        *ret = c;
        nuki_wipe(&c, sizeof c);
        return 0;
}

void nuki_credentials_wipe(NukiCredentials *c)
{
        nuki_wipe(c, sizeof *c);
}

/* ---- for nuki-driver-admin.c (nuki-driver-internal.h) ------------------------------------ */

int nuki_driver_queue_admin(Lock *l, const NukiAdminClass *c, void *data)
{
        NukiDriver *d = l->driver_data;
        NukiJob *j;

        if (!d)
                return -ENODEV;
        j = job_new(NUKI_JOB_ADMIN);
        if (!j)
                return -ENOMEM;
        j->admin = c;
        j->admin_data = data;
        job_enqueue(d, j);
        return 0;
}

int nuki_driver_begin(NukiDriver *d, const NukiMsg *m)
{
        return driver_begin(d, m);
}

Lock *nuki_driver_lock(const NukiDriver *d)
{
        return d->lock;
}

const NukiCredentials *nuki_driver_credentials(const NukiDriver *d)
{
        return &d->cred;
}

NukiDriver *nuki_driver_of(Lock *l)
{
        return l->driver_data;
}

const NukiDriverContext *nuki_driver_context(const NukiDriver *d)
{
        return &d->ctx;
}

bool nuki_driver_pin_rejected(const NukiDriver *d)
{
        return d->pin_rejected;
}

void nuki_driver_use_pin(NukiDriver *d, bool has_pin, uint32_t pin)
{
        d->cred.has_pin = has_pin;
        d->cred.security_pin = has_pin ? pin : 0;
        d->session.security_pin = d->cred.security_pin;
}

int64_t nuki_driver_config_count(const NukiDriver *d)
{
        return d->config_update_count;
}

int64_t nuki_time_to_unix_sec(const NukiTime *t)
{
        return nuki_time_to_unix(t);
}
