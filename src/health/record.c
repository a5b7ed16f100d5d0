/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Where the ladder meets the daemon: recording an attempt in the store (a
 * recovery_attempts row plus a "recovery" event, so `lockhubctl events` shows it next to
 * what the lock did), and the sd-event implementation of HealthClock (one one-shot
 * CLOCK_MONOTONIC timer per ladder, kept in the ladder's timer slot).
 */

#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "lockhub/health.h"
#include "lockhub/log.h"

static json_object *attempt_detail(const HealthAttempt *a)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "step", json_object_new_string(health_step_to_string(a->step)));
        json_object_object_add(o, "attempt", json_object_new_int((int) a->attempt));
        json_object_object_add(o, "outcome", json_object_new_string(health_outcome_to_string(a->outcome)));
        json_object_object_add(o, "duration_ms", json_object_new_int64((int64_t) (a->duration_usec / 1000)));
        if (a->adapter)
                json_object_object_add(o, "adapter", json_object_new_string(a->adapter));
        if (a->error) {
                json_object_object_add(o, "errno", json_object_new_int(-abs(a->error)));
                json_object_object_add(o, "error", json_object_new_string(strerror(abs(a->error))));
        }
        json_object_object_add(o, "reason", json_object_new_string(a->reason));
        return o;
}

int health_attempt_store(Store *s, int64_t lock_id, const HealthAttempt *a)
{
        json_object *d = attempt_detail(a);
        const char *detail;
        bool own_tx;
        int r;

        if (!d)
                return -ENOMEM;
        detail = json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN);

        /* Nested transactions are not supported: only open one if nobody has. While the
         * database cannot be written, store_begin() refuses and the rows go through the batch,
         * which keeps them until it can. */
        own_tx = store_begin(s) >= 0;
write:;

        struct store_recovery_attempt ra = {
                .lock_id = lock_id,
                .adapter = (char *) a->adapter,
                .ts_usec = a->start_usec,
                .step = (char *) health_step_to_string(a->step),
                .attempt = a->attempt,
                .outcome = (char *) health_outcome_to_string(a->outcome),
                .duration_usec = a->duration_usec,
                .detail = (char *) detail,
        };
        int64_t id = store_recovery_append(s, &ra);
        if (id < 0) {
                r = (int) id;
                goto fail;
        }

        struct store_event e;
        store_event_init(&e);
        e.lock_id = lock_id;
        e.kind = (char *) "recovery";
        e.source = (char *) "hub";
        e.detail = (char *) detail;
        r = store_event_append(s, &e, NULL);
        if (r < 0)
                goto fail;
        if (own_tx) {
                r = store_commit(s);
                if (r < 0)
                        goto fail;
        }
        json_object_put(d);
        return 0;
fail:
        if (own_tx) {
                store_rollback(s);
                if (r == -ENOSPC) {
                        /* the disk is full: once more through the batch, which keeps them */
                        own_tx = false;
                        goto write;
                }
        }
        json_object_put(d);
        return r;
}

/* ---- sd-event clock ---------------------------------------------------------------------- */

static uint64_t clock_usec(clockid_t id)
{
        struct timespec ts;

        (void) clock_gettime(id, &ts);
        return (uint64_t) ts.tv_sec * HEALTH_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t event_now(void *userdata)
{
        uint64_t t;

        if (sd_event_now(userdata, CLOCK_MONOTONIC, &t) >= 0)
                return t;
        return clock_usec(CLOCK_MONOTONIC);
}

static uint64_t event_realtime(void *userdata)
{
        return clock_usec(CLOCK_REALTIME);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        health_ladder_timer_elapsed(userdata);
        return 0;
}

static int event_timer_set(HealthLadder *l, uint64_t usec, void *userdata)
{
        sd_event_source **slot = (sd_event_source **) health_ladder_timer_slot(l);
        int r;

        if (usec == 0) {
                if (*slot)
                        (void) sd_event_source_set_enabled(*slot, SD_EVENT_OFF);
                return 0;
        }
        if (!*slot) {
                r = sd_event_add_time(userdata, slot, CLOCK_MONOTONIC, usec, 0, on_timer, l);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(*slot, "health-ladder");
                return sd_event_source_set_enabled(*slot, SD_EVENT_ONESHOT);
        }
        r = sd_event_source_set_time(*slot, usec);
        if (r < 0)
                return r;
        return sd_event_source_set_enabled(*slot, SD_EVENT_ONESHOT);
}

static void event_timer_release(HealthLadder *l, void *userdata)
{
        sd_event_source **slot = (sd_event_source **) health_ladder_timer_slot(l);

        *slot = sd_event_source_disable_unref(*slot);
}

const HealthClock health_clock_event = {
        .now = event_now,
        .realtime = event_realtime,
        .timer_set = event_timer_set,
        .timer_release = event_timer_release,
};
