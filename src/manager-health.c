/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Diagnosis and support bundle for the Manager's locks (see lockhub/manager-health.h).
 *
 * Everything is computed on request from the store and the live lock model: nothing
 * is cached, so a report is never staler than the database. The bundle is built from
 * an allow-list of fields (a new column in the store does not leak into it by
 * accident); the configuration goes through manager_health_redact_conf().
 */

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <time.h>

#include "lockhub/bluez.h"
#include "lockhub/log.h"
#include "lockhub/manager-health.h"
#include "lockhub/manager.h"

#define BUNDLE_EVENTS       500U
#define BUNDLE_ATTEMPTS     200U
#define BUNDLE_RSSI_USEC    (7 * HEALTH_USEC_PER_DAY)
#define BUNDLE_BATTERY_USEC (90 * HEALTH_USEC_PER_DAY)

static uint64_t now_realtime(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * HEALTH_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static HealthKnownFirmware *load_known_firmware(Manager *m)
{
        HealthKnownFirmware *k = NULL;
        _cleanup_free_ char *err = NULL;
        const char *path = m->conf->health.known_firmware_file;
        int r;

        if (!path)
                return NULL;
        r = health_known_firmware_load(path, &k, &err);
        if (r < 0)
                log_debug_errno(r, "Cannot use the known-firmware file %s%s%s: %m", path, err ? ": " : "",
                                strempty(err));
        return k;
}

static void findings_seen(Lock *l, const HealthReport *rep);

static int report_with(Manager *m, Lock *l, const HealthKnownFirmware *k, const HealthLadderStatus *ladder,
                       HealthReport **ret)
{
        HealthLadderStatus st;
        HealthLadder *live = manager_health_ladder(m, l);
        int r;

        if (l->store_id <= 0)
                return -ENOENT;
        if (!ladder && live) {
                health_ladder_get_status(live, &st);
                ladder = &st;
        }
        r = health_diagnose_lock(m->store, m->conf, k, l->store_id, l, ladder, now_realtime(), ret);
        if (r >= 0)
                findings_seen(l, *ret);
        return r;
}

int manager_health_report(Manager *m, Lock *l, const HealthLadderStatus *ladder, HealthReport **ret)
{
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = load_known_firmware(m);

        return report_with(m, l, k, ladder, ret);
}

int manager_health_diagnose(Manager *m, const char *name, bool json, char **ret)
{
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = load_known_firmware(m);
        json_object *all = NULL;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, done = 0;
        FILE *f = NULL;
        int r = 0;

        if (name && *name && !manager_find_lock(m, name))
                return -ENOENT;
        if (json) {
                all = json_object_new_array();
                if (!all)
                        return -ENOMEM;
        } else {
                f = open_memstream(&buf, &size);
                if (!f)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < m->n_locks; i++) {
                Lock *l = m->locks[i];
                _cleanup_(health_report_freep) HealthReport *rep = NULL;

                if (name && *name && !streq(name, l->name))
                        continue;
                r = report_with(m, l, k, NULL, &rep);
                if (r < 0)
                        break;
                if (json) {
                        json_object *o = health_report_to_json(rep);
                        if (!o || json_object_array_add(all, o) < 0) {
                                json_object_put(o);
                                r = -ENOMEM;
                                break;
                        }
                } else {
                        _cleanup_free_ char *text = NULL;
                        r = health_report_to_text(rep, &text);
                        if (r < 0)
                                break;
                        fprintf(f, "%s%s", done ? "\n" : "", text);
                }
                done++;
        }
        if (json) {
                if (r >= 0) {
                        json_object *out =
                                        name && *name && done == 1 ? json_object_array_get_idx(all, 0) : all;
                        buf = strdup(json_object_to_json_string_ext(
                                        out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                        if (!buf)
                                r = -ENOMEM;
                }
                json_object_put(all);
        } else {
                if (done == 0 && r >= 0)
                        fprintf(f, "No lock is paired.\n");
                if (fclose(f) != 0 && r >= 0)
                        r = -ENOMEM;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* ---- support bundle ----------------------------------------------------------------------- */

static bool key_is_secret(const char *key, size_t n)
{
        static const char *const words[] = { "password", "secret",     "token", "pin",
                                             "psk",      "passphrase", "code" };
        char k[64];

        if (n == 0 || n >= sizeof k)
                return n > 0;
        memcpy(k, key, n);
        k[n] = 0;
        /* A path to a file that holds a secret is not the secret. */
        if (n > 4 && (strcasecmp(k + n - 4, "File") == 0 || strcasecmp(k + n - 4, "Path") == 0))
                return false;
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcasestr(k, words[i]))
                        return true;
        return strcasestr(k, "key") && !strcasestr(k, "keepalive");
}

int manager_health_redact_conf(const char *text, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (const char *p = text; *p;) {
                size_t len = strcspn(p, "\n");
                const char *eq = memchr(p, '=', len);
                size_t lead = strspn(p, " \t");

                if (eq && p[lead] != '#' && p[lead] != ';' && p[lead] != '[') {
                        size_t klen = (size_t) (eq - p) - lead;
                        while (klen > 0 && (p[lead + klen - 1] == ' ' || p[lead + klen - 1] == '\t'))
                                klen--;
                        const char *v = eq + 1 + strspn(eq + 1, " \t");
                        size_t vlen = len - (size_t) (v - p);
                        /* A switch ("RequireUnlockCode=yes") says nothing secret. */
                        bool flag = (vlen == 3 && strncasecmp(v, "yes", 3) == 0) ||
                                    (vlen == 2 && strncasecmp(v, "no", 2) == 0) ||
                                    (vlen == 4 && strncasecmp(v, "true", 4) == 0) ||
                                    (vlen == 5 && strncasecmp(v, "false", 5) == 0);
                        if (!flag && vlen > 0 && key_is_secret(p + lead, klen)) {
                                fprintf(f, "%.*s=(redacted)\n", (int) (eq - p), p);
                                goto next;
                        }
                }
                fprintf(f, "%.*s\n", (int) len, p);
        next:
                p += len;
                if (*p == '\n')
                        p++;
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

static json_object *str_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static json_object *samples_json(Store *s, int64_t lock_id, const char *kind, uint64_t since)
{
        struct store_sample *a = NULL;
        size_t n = 0;
        json_object *arr;

        if (store_sample_list(s, lock_id, kind, since, 0, &a, &n) < 0)
                return NULL;
        arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++) {
                json_object *pt = json_object_new_array();
                if (!pt)
                        break;
                json_object_array_add(pt, json_object_new_uint64(a[i].ts_usec));
                json_object_array_add(pt, json_object_new_double(a[i].value));
                json_object_array_add(arr, pt);
        }
        store_sample_array_free(a, n);
        return arr;
}

static json_object *attempts_json(Store *s, int64_t lock_id, bool hub_only)
{
        struct store_recovery_attempt *a = NULL;
        size_t n = 0;
        json_object *arr;

        if (store_recovery_list(s, lock_id, hub_only ? 0 : BUNDLE_ATTEMPTS, &a, &n) < 0)
                return NULL;
        arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++) {
                json_object *o;
                if (hub_only && a[i].lock_id != 0)
                        continue;
                o = json_object_new_object();
                if (!o)
                        break;
                json_object_object_add(o, "time_usec", json_object_new_uint64(a[i].ts_usec));
                json_object_object_add(o, "step", str_or_null(a[i].step));
                json_object_object_add(o, "attempt", json_object_new_int((int) a[i].attempt));
                json_object_object_add(o, "outcome", str_or_null(a[i].outcome));
                json_object_object_add(o, "duration_usec", json_object_new_uint64(a[i].duration_usec));
                json_object_object_add(o, "adapter", str_or_null(a[i].adapter));
                json_object_object_add(o, "detail", a[i].detail ? json_tokener_parse(a[i].detail) : NULL);
                json_object_array_add(arr, o);
        }
        store_recovery_array_free(a, n);
        return arr;
}

static json_object *events_json(Store *s, int64_t lock_id)
{
        struct store_event_filter filter = { .lock_id = lock_id, .limit = BUNDLE_EVENTS };
        struct store_event *ev = NULL;
        size_t n = 0;
        json_object *arr;

        if (store_event_list(s, &filter, &ev, &n) < 0)
                return NULL;
        arr = json_object_new_array();
        for (size_t i = 0; arr && i < n; i++) {
                json_object *o = json_object_new_object();
                if (!o)
                        break;
                json_object_object_add(o, "id", json_object_new_int64(ev[i].id));
                json_object_object_add(o, "time_usec", json_object_new_uint64(ev[i].ts_usec));
                json_object_object_add(o, "kind", str_or_null(ev[i].kind));
                json_object_object_add(o, "source", str_or_null(ev[i].source));
                json_object_object_add(o, "actor", str_or_null(ev[i].actor));
                json_object_object_add(o, "detail", ev[i].detail ? json_tokener_parse(ev[i].detail) : NULL);
                json_object_array_add(arr, o);
        }
        store_event_array_free(ev, n);
        return arr;
}

static json_object *lock_json(Manager *m, Lock *l, const HealthKnownFirmware *k, uint64_t now)
{
        _cleanup_(health_report_freep) HealthReport *rep = NULL;
        struct store_lock sl;
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        store_lock_init(&sl);
        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "address", json_object_new_string(l->address));
        if (l->store_id > 0 && store_lock_get(m->store, l->store_id, &sl) >= 0) {
                /* An allow-list: never the sealed key, the PIN or the lock's UUID. */
                json_object_object_add(o, "protocol", str_or_null(sl.protocol));
                json_object_object_add(o, "device_type", json_object_new_int(sl.device_type));
                json_object_object_add(o, "model", str_or_null(sl.model));
                json_object_object_add(o, "firmware", str_or_null(sl.firmware));
                json_object_object_add(o, "hardware", str_or_null(sl.hardware));
                json_object_object_add(o, "adapter", str_or_null(sl.adapter));
                json_object_object_add(o, "ultra", json_object_new_boolean(sl.ultra));
                json_object_object_add(o, "needs_repair", json_object_new_boolean(sl.needs_repair));
                json_object_object_add(o, "paired_usec", json_object_new_uint64(sl.paired_usec));
                json_object_object_add(o, "last_seen_usec", json_object_new_uint64(sl.last_seen_usec));
        }
        store_lock_done(&sl);
        {
                _cleanup_free_ char *s = lock_to_json(l);
                json_object_object_add(o, "live", s ? json_tokener_parse(s) : NULL);
        }
        if (report_with(m, l, k, NULL, &rep) >= 0)
                json_object_object_add(o, "diagnosis", health_report_to_json(rep));
        if (l->store_id > 0) {
                json_object_object_add(o, "events", events_json(m->store, l->store_id));
                json_object_object_add(o, "recovery_attempts", attempts_json(m->store, l->store_id, false));
                json_object_object_add(o, "battery_percent",
                                       samples_json(m->store, l->store_id, "battery-percent",
                                                    now - MIN(now, BUNDLE_BATTERY_USEC)));
                json_object_object_add(o, "rssi",
                                       samples_json(m->store, l->store_id, "rssi",
                                                    now - MIN(now, BUNDLE_RSSI_USEC)));
        }
        return o;
}

int manager_health_support_bundle(Manager *m, char **ret)
{
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = load_known_firmware(m);
        _cleanup_free_ char *conf_text = NULL, *redacted = NULL;
        uint64_t now = now_realtime();
        struct utsname u;
        json_object *o, *hub, *locks;
        char *s;
        int r;

        r = conf_format(m->conf, &conf_text);
        if (r < 0)
                return r;
        r = manager_health_redact_conf(conf_text, &redacted);
        if (r < 0)
                return r;

        o = json_object_new_object();
        hub = json_object_new_object();
        locks = json_object_new_array();
        if (!o || !hub || !locks) {
                json_object_put(o);
                json_object_put(hub);
                json_object_put(locks);
                return -ENOMEM;
        }
        json_object_object_add(o, "format", json_object_new_int(1));
        json_object_object_add(o, "generated_usec", json_object_new_uint64(now));
        json_object_object_add(hub, "lockhub_version", json_object_new_string(LOCKHUB_VERSION));
        if (uname(&u) >= 0) {
                json_object_object_add(hub, "kernel", json_object_new_string(u.release));
                json_object_object_add(hub, "machine", json_object_new_string(u.machine));
        }
        json_object_object_add(hub, "schema_version", json_object_new_int((int) store_schema_version()));
        json_object_object_add(hub, "known_firmware_file", str_or_null(m->conf->health.known_firmware_file));
        json_object_object_add(hub, "known_firmware_loaded", json_object_new_boolean(k != NULL));
        json_object_object_add(hub, "recovery_attempts", attempts_json(m->store, 0, true));
        json_object_object_add(hub, "events", events_json(m->store, 0));
        json_object_object_add(o, "hub", hub);
        json_object_object_add(o, "configuration", json_object_new_string(redacted));
        for (size_t i = 0; i < m->n_locks; i++) {
                json_object *l = lock_json(m, m->locks[i], k, now);
                if (l)
                        json_object_array_add(locks, l);
        }
        json_object_object_add(o, "locks", locks);
        s = strdup(json_object_to_json_string_ext(o,
                                                  JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---- D-Bus ------------------------------------------------------------------------------- */

int manager_health_method_diagnose(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *out = NULL;
        const char *name;
        int json, r;

        r = sd_bus_message_read(msg, "sb", &name, &json);
        if (r < 0)
                return r;
        r = manager_health_diagnose(m, name, json, &out);
        if (r == -ENOENT)
                return sd_bus_error_setf(error, "org.lockhub.Error.NoSuchLock", "No lock named '%s'.", name);
        if (r < 0)
                return sd_bus_error_setf(error, "org.lockhub.Error.Failed", "Cannot diagnose: %s",
                                         strerror(-r));
        return sd_bus_reply_method_return(msg, "s", out);
}

int manager_health_method_support_bundle(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *out = NULL;
        int r;

        r = manager_health_support_bundle(m, &out);
        if (r < 0)
                return sd_bus_error_setf(error, "org.lockhub.Error.Failed",
                                         "Cannot build the support bundle: %s", strerror(-r));
        return sd_bus_reply_method_return(msg, "s", out);
}

/* ---- recovery ladders ------------------------------------------------------------------------ */

struct ManagerHealth {
        Manager *manager;
        HealthRecovery *recovery;
        sd_event_source *check_timer; /* findings are logged when they appear */
        BluezClient *client;          /* borrowed; NULL until the Bluetooth side hands it over */
};

/* Per lock: the wrapper ops come first, so l->ops leads back here. */
typedef struct HealthLock {
        struct lock_driver_ops ops;
        const struct lock_driver_ops *driver;
        Manager *manager;
        Lock *lock;
        HealthLadder *ladder;
        uint64_t last_seen_usec;
        bool refresh_when_seen; /* the device was removed from BlueZ: connect when it is back */
        uint64_t rssi_sampled_usec;
        uint32_t findings_logged; /* mask of the findings in the journal already */
} HealthLock;

#define RSSI_SAMPLE_INTERVAL_USEC HEALTH_USEC_PER_MIN
#define FINDINGS_FIRST_CHECK_USEC HEALTH_USEC_PER_MIN
#define FINDINGS_CHECK_USEC       (15 * HEALTH_USEC_PER_MIN)

typedef struct HealthCall {
        HealthLock *hl;
        lock_command_done_t done;
        void *userdata;
        uint64_t start_usec; /* monotonic */
} HealthCall;

static uint64_t now_monotonic(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * HEALTH_USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void sample(HealthLock *hl, const char *kind, double value)
{
        int64_t id;

        if (hl->lock->store_id <= 0)
                return;
        id = store_sample_append(hl->manager->store, hl->lock->store_id, kind, 0, value);
        if (id < 0)
                log_debug_errno((int) id, "%s: cannot store a %s sample: %m", hl->lock->name, kind);
}

static int wrap_action(Lock *l, LockAction a, LockSource source, const char *actor, lock_command_done_t done,
                       void *userdata);
static int wrap_refresh(Lock *l, lock_command_done_t done, void *userdata);

static HealthLock *health_lock_of(Lock *l)
{
        return l->ops && l->ops->action == wrap_action ? (HealthLock *) l->ops : NULL;
}

/* A finding reaches the journal (with its catalog entry) once, when it first appears,
 * whether the periodic check or a diagnose request found it. */
static void findings_seen(Lock *l, const HealthReport *rep)
{
        HealthLock *hl = health_lock_of(l);

        if (hl)
                hl->findings_logged = health_report_log(rep, hl->findings_logged);
}

HealthLadder *manager_health_ladder(Manager *m, Lock *l)
{
        HealthLock *hl = health_lock_of(l);

        return hl ? hl->ladder : NULL;
}

/* The adapter the lock's device object belongs to (/org/bluez/hciN/dev_...): known
 * for a paired lock that does not advertise, unlike the adapter of its adverts. */
static const char *lock_adapter(HealthLock *hl)
{
        ManagerHealth *h = hl->manager->health;

        return h ? bluez_client_device_adapter(h->client, hl->lock->address) : NULL;
}

static void report(HealthLock *hl, int r)
{
        if (!hl->ladder)
                return;
        if (r >= 0)
                health_ladder_success(hl->ladder, lock_adapter(hl));
        else
                health_ladder_failure(hl->ladder,
                                      r == -EHOSTUNREACH ? HEALTH_FAILURE_CONNECT : HEALTH_FAILURE_COMMAND,
                                      r, lock_adapter(hl));
}

static void on_call_done(Lock *l, int r, const char *message, void *userdata)
{
        HealthCall *c = userdata;

        if (r >= 0)
                sample(c->hl, "latency-ms", (double) (now_monotonic() - c->start_usec) / 1000.0);
        else if (r == -EHOSTUNREACH)
                sample(c->hl, "connect-failed", 1);
        report(c->hl, r);
        if (c->done)
                c->done(l, r, message, c->userdata);
        free(c);
}

static HealthCall *call_new(HealthLock *hl, lock_command_done_t done, void *userdata)
{
        HealthCall *c = malloc(sizeof *c);

        if (c)
                *c = (HealthCall){
                        .hl = hl, .done = done, .userdata = userdata, .start_usec = now_monotonic()
                };
        return c;
}

static int wrap_action(Lock *l, LockAction a, LockSource source, const char *actor, lock_command_done_t done,
                       void *userdata)
{
        HealthLock *hl = (HealthLock *) l->ops;
        HealthCall *c = call_new(hl, done, userdata);
        int r;

        if (!c)
                return -ENOMEM;
        r = hl->driver->action(l, a, source, actor, on_call_done, c);
        if (r < 0)
                free(c);
        return r;
}

static int wrap_refresh(Lock *l, lock_command_done_t done, void *userdata)
{
        HealthLock *hl = (HealthLock *) l->ops;
        HealthCall *c = call_new(hl, done, userdata);
        int r;

        if (!c)
                return -ENOMEM;
        r = hl->driver->refresh(l, on_call_done, c);
        if (r < 0)
                free(c);
        return r;
}

static int wrap_reconnect(Lock *l, lock_command_done_t done, void *userdata)
{
        HealthLock *hl = (HealthLock *) l->ops;
        HealthCall *c = call_new(hl, done, userdata);
        int r;

        if (!c)
                return -ENOMEM;
        r = hl->driver->reconnect(l, on_call_done, c);
        if (r < 0)
                free(c);
        return r;
}

static void wrap_free(Lock *l)
{
        HealthLock *hl = (HealthLock *) l->ops;

        /* The driver may finish its calls (cancelled) while it is freed: keep hl. */
        l->ops = hl->driver;
        if (hl->driver->free)
                hl->driver->free(l);
        health_ladder_remove(hl->ladder);
        free(hl);
}

static void seen(HealthLock *hl, const char *adapter)
{
        if (!hl->ladder)
                return;
        health_ladder_seen(hl->ladder, adapter);
        if (hl->refresh_when_seen) {
                /* Rediscovered after RemoveDevice: now the connection can be made. */
                hl->refresh_when_seen = false;
                (void) hl->lock->ops->refresh(hl->lock, NULL, NULL);
        }
}

static void on_lock_changed(Lock *l, unsigned changes, void *userdata)
{
        HealthLock *hl = userdata;

        /* Re-paired in place (the driver cleared the flag): the ladder starts afresh. */
        if ((changes & LOCK_CHANGE_HEALTH) && hl->ladder && !l->needs_repair)
                health_ladder_repaired(hl->ladder);

        if (!(changes & LOCK_CHANGE_LINK) || !hl->ladder || l->link.last_seen_usec == hl->last_seen_usec)
                return;
        if (l->link.rssi != 0 &&
            l->link.last_seen_usec >= hl->rssi_sampled_usec + RSSI_SAMPLE_INTERVAL_USEC) {
                hl->rssi_sampled_usec = l->link.last_seen_usec;
                sample(hl, "rssi", l->link.rssi);
        }
        hl->last_seen_usec = l->link.last_seen_usec;
        seen(hl, NULL);
}

/* ---- ladder ops ---- */

static int op_refresh(HealthLadder *ladder, void *userdata)
{
        HealthLock *hl = health_ladder_get_data(ladder);

        /* Through the wrapper: its outcome is reported to the ladder. */
        return hl->lock->ops->refresh(hl->lock, NULL, NULL);
}

/* A real disconnect and a new connection where the driver can do it, else a refresh. */
static int op_reconnect(HealthLadder *ladder, void *userdata)
{
        HealthLock *hl = health_ladder_get_data(ladder);

        if (!hl->lock->ops->reconnect)
                return op_refresh(ladder, userdata);
        return hl->lock->ops->reconnect(hl->lock, NULL, NULL);
}

typedef struct CycleCall {
        ManagerHealth *health;
        char adapter[32];
} CycleCall;

static void on_power_cycle_done(BluezClient *c, const BluezError *err, void *userdata)
{
        CycleCall *cc = userdata;

        health_recovery_power_cycle_done(cc->health->recovery, cc->adapter, err ? err->error : 0);
        free(cc);
}

static int op_power_cycle(HealthRecovery *r, const char *adapter, void *userdata)
{
        ManagerHealth *h = userdata;
        CycleCall *cc;
        int q;

        if (!h->client)
                return -EOPNOTSUPP;
        cc = calloc(1, sizeof *cc);
        if (!cc)
                return -ENOMEM;
        cc->health = h;
        snprintf(cc->adapter, sizeof cc->adapter, "%s", adapter);
        q = bluez_client_power_cycle(h->client, adapter, on_power_cycle_done, cc);
        if (q < 0)
                free(cc);
        return q;
}

static void on_remove_done(BluezClient *c, const BluezError *err, void *userdata)
{
        HealthLock *hl = userdata;

        if (err && err->error != -ENOENT) {
                report(hl, err->error);
                return;
        }
        /* Forgotten: discovery finds it again; the refresh waits for that (the step's
         * timeout bounds the wait). */
        hl->refresh_when_seen = true;
}

static int op_remove_device(HealthLadder *ladder, void *userdata)
{
        ManagerHealth *h = userdata;
        HealthLock *hl = health_ladder_get_data(ladder);

        if (!h->client)
                return -EOPNOTSUPP;
        return bluez_client_remove_device(h->client, hl->lock->address, on_remove_done, hl);
}

static void op_mark_needs_repair(HealthLadder *ladder, const char *reason, void *userdata)
{
        HealthLock *hl = health_ladder_get_data(ladder);

        (void) lock_set_needs_repair(hl->lock, true);
}

static void op_record(const HealthAttempt *a, void *userdata)
{
        ManagerHealth *h = userdata;
        HealthLock *hl = a->lock_data;
        int r;

        r = health_attempt_store(h->manager->store, hl && hl->lock->store_id > 0 ? hl->lock->store_id : 0,
                                 a);
        if (r < 0)
                log_warning_errno(r, "Cannot record the recovery step %s of %s: %m",
                                  health_step_to_string(a->step), strna(a->lock));
}

/* Is the motor of another lock on this adapter turning? A power cycle would cut its
 * command off halfway; the ladder defers the cycle while this says so. A lock whose
 * adapter is not known yet counts as on every adapter. */
static bool op_adapter_busy(const char *adapter, HealthLadder *except, void *userdata)
{
        ManagerHealth *h = userdata;
        Manager *m = h->manager;

        for (size_t i = 0; i < m->n_locks; i++) {
                Lock *l = m->locks[i];
                HealthLadder *ladder = manager_health_ladder(m, l);
                HealthLadderStatus st;

                if (!ladder || ladder == except)
                        continue;
                health_ladder_get_status(ladder, &st);
                if (adapter && st.adapter && !streq(adapter, st.adapter))
                        continue;
                if (l->state == LOCK_STATE_LOCKING || l->state == LOCK_STATE_UNLOCKING ||
                    l->state == LOCK_STATE_UNLATCHING || l->state == LOCK_STATE_CALIBRATING)
                        return true;
                /* the driver knows of a motor run the state may not show yet (a calibration
                 * reported as "locked" between its runs, an action under a lost link) */
                if (l->ops && l->ops->busy && l->ops->busy(l))
                        return true;
        }
        return false;
}

/* No move_adapter: a BluezLink picks its adapter itself (the one that heard the device
 * last, see bluez.h); with several adapters the adapter rung power-cycles the failing one
 * and the link comes back through whichever adapter hears the lock. */
static const HealthLadderOps ladder_ops = {
        .retry = op_refresh,
        .reconnect = op_reconnect,
        .adapter_busy = op_adapter_busy,
        .power_cycle_adapter = op_power_cycle,
        .remove_device = op_remove_device,
        .mark_needs_repair = op_mark_needs_repair,
        .record_attempt = op_record,
};

static int on_check_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        ManagerHealth *h = userdata;
        Manager *m = h->manager;
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = load_known_firmware(m);

        for (size_t i = 0; i < m->n_locks; i++) {
                _cleanup_(health_report_freep) HealthReport *rep = NULL;
                int r = report_with(m, m->locks[i], k, NULL, &rep);
                if (r < 0 && r != -ENOENT)
                        log_debug_errno(r, "%s: cannot diagnose: %m", m->locks[i]->name);
        }
        (void) sd_event_source_set_time_relative(s, FINDINGS_CHECK_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int manager_health_start(Manager *m)
{
        _cleanup_free_ ManagerHealth *h = calloc(1, sizeof *h);
        HealthRecoveryConfig cfg;
        int r;

        if (!h)
                return log_oom();
        h->manager = m;
        health_recovery_config_from_conf(m->conf, &cfg);
        r = health_recovery_new(&cfg, &health_clock_event, m->event, &ladder_ops, h, &h->recovery);
        if (r < 0)
                return log_error_errno(r, "Failed to set up recovery: %m");
        r = sd_event_add_time_relative(m->event, &h->check_timer, CLOCK_MONOTONIC, FINDINGS_FIRST_CHECK_USEC,
                                       0, on_check_timer, h);
        if (r < 0) {
                h->recovery = health_recovery_free(h->recovery);
                return log_error_errno(r, "Failed to add the health check timer: %m");
        }
        (void) sd_event_source_set_description(h->check_timer, "health-check");
        m->health = TAKE_PTR(h);
        return 0;
}

void manager_health_free(Manager *m)
{
        if (!m->health)
                return;
        m->health->check_timer = sd_event_source_disable_unref(m->health->check_timer);
        m->health->recovery = health_recovery_free(m->health->recovery);
        m->health = (free(m->health), NULL);
}

int manager_health_lock_added(Manager *m, Lock *l)
{
        HealthLock *hl;
        int r;

        if (!m->health || !l->ops || health_lock_of(l))
                return 0;
        hl = calloc(1, sizeof *hl);
        if (!hl)
                return -ENOMEM;
        hl->ops = *l->ops;
        hl->ops.action = wrap_action;
        hl->ops.refresh = wrap_refresh;
        hl->ops.reconnect = l->ops->reconnect ? wrap_reconnect : NULL;
        hl->ops.free = wrap_free;
        hl->driver = l->ops;
        hl->manager = m;
        hl->lock = l;
        hl->last_seen_usec = l->link.last_seen_usec;
        r = health_recovery_add_lock(m->health->recovery, l->name, hl, &hl->ladder);
        if (r < 0) {
                free(hl);
                return r;
        }
        r = lock_add_listener(l, on_lock_changed, hl);
        if (r < 0) {
                health_ladder_remove(hl->ladder);
                free(hl);
                return r;
        }
        l->ops = &hl->ops;
        return 0;
}

void manager_health_set_bluez(Manager *m, BluezClient *client)
{
        if (m->health)
                m->health->client = client;
}

void manager_health_bluez_service(Manager *m, bool up)
{
        if (m->health)
                health_recovery_bluez(m->health->recovery, up);
}

void manager_health_adapter_event(Manager *m, const char *adapter, bool present, bool powered)
{
        if (m->health)
                health_recovery_adapter(m->health->recovery, adapter, present, powered);
}

void manager_health_adapter_heard(Manager *m, const char *adapter)
{
        if (m->health)
                health_recovery_adapter_heard(m->health->recovery, adapter);
}

void manager_health_lock_seen(Manager *m, Lock *l, const char *adapter)
{
        HealthLock *hl = health_lock_of(l);

        if (hl)
                seen(hl, adapter);
}

void manager_health_reload(Manager *m)
{
        HealthRecoveryConfig cfg;

        if (!m->health)
                return;
        health_recovery_config_from_conf(m->conf, &cfg);
        health_recovery_set_config(m->health->recovery, &cfg);
}
