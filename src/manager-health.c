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

static int report_with(Manager *m, Lock *l, const HealthKnownFirmware *k, const HealthLadderStatus *ladder,
                       HealthReport **ret)
{
        if (l->store_id <= 0)
                return -ENOENT;
        return health_diagnose_lock(m->store, m->conf, k, l->store_id, l, ladder, now_realtime(), ret);
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
