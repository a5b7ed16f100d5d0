/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Requests on users and codes as JSON objects, for the MQTT bridge
 * (lockhub/bridge/request/<op> → lockhub/bridge/response/<op>), and the listings that
 * D-Bus and MQTT share. See codes_request() in lockhub/codes.h for the operations.
 *
 * Every request is checked whole before anything is done: unknown keys, wrong types and
 * out-of-range values are refused with a message naming the key; a code that breaks a
 * rule is refused naming the rule. Nothing here ever puts code digits into a reply.
 */

#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "codes-internal.h"
#include "lockhub/backup.h"
#include "lockhub/codes.h"

_printf_(2, 3) static int reply_error(json_object **ret, const char *fmt, ...)
{
        json_object *o = json_object_new_object();
        char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        json_object_object_add(o, "status", json_object_new_string("error"));
        json_object_object_add(o, "error", json_object_new_string(msg ?: "out of memory"));
        free(msg);
        *ret = o;
        return -EINVAL;
}

static int reply_rule(json_object **ret, CodeRule rule)
{
        int r = reply_error(ret, "%s: %s", code_rule_to_string(rule), code_rule_message(rule));

        json_object_object_add(*ret, "rule", json_object_new_string(code_rule_to_string(rule)));
        return r;
}

static int reply_errno(json_object **ret, int r, const char *what)
{
        switch (-r) {
        case ENOENT:
                return reply_error(ret, "no such %s", what);
        case EEXIST:
                return reply_error(ret, "%s exists already", what);
        case EINVAL:
                return reply_error(ret, "invalid %s", what);
        default:
                return reply_error(ret, "cannot change %s: %s", what, strerror(-r));
        }
}

static json_object *reply_ok(json_object *data)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "status", json_object_new_string("ok"));
        if (data)
                json_object_object_add(o, "data", data);
        return o;
}

static int check_keys(json_object *req, const char *const *allowed, json_object **ret)
{
        if (!json_object_is_type(req, json_type_object))
                return reply_error(ret, "the request must be a JSON object");
        json_object_object_foreach (req, key, val) {
                bool ok = false;

                (void) val;
                for (size_t i = 0; allowed[i]; i++)
                        ok = ok || streq(key, allowed[i]);
                if (!ok)
                        return reply_error(ret, "unknown key \"%.64s\"", key);
        }
        return 0;
}

static int get_str(json_object *req, const char *key, size_t max, bool required, const char **v,
                   json_object **ret)
{
        json_object *o;

        *v = NULL;
        if (!json_object_object_get_ex(req, key, &o))
                return required ? reply_error(ret, "\"%s\" is missing", key) : 0;
        if (!json_object_is_type(o, json_type_string) || json_object_get_string_len(o) == 0 ||
            (size_t) json_object_get_string_len(o) > max ||
            strlen(json_object_get_string(o)) != (size_t) json_object_get_string_len(o))
                return reply_error(ret, "\"%s\" must be a string of 1 to %zu bytes", key, max);
        *v = json_object_get_string(o);
        return 0;
}

static int get_i64(json_object *req, const char *key, int64_t min, int64_t max, bool required, bool *present,
                   int64_t *v, json_object **ret)
{
        json_object *o;

        *present = json_object_object_get_ex(req, key, &o);
        if (!*present)
                return required ? reply_error(ret, "\"%s\" is missing", key) : 0;
        if (!json_object_is_type(o, json_type_int))
                return reply_error(ret, "\"%s\" must be an integer", key);
        *v = json_object_get_int64(o);
        if (*v < min || *v > max)
                return reply_error(ret, "\"%s\" must be between %" PRIi64 " and %" PRIi64, key, min, max);
        return 0;
}

/* "HH:MM" → minutes, or null → -1. */
static int get_time_of_day(json_object *req, const char *key, bool *present, int *v, json_object **ret)
{
        json_object *o;
        unsigned h, m;
        char tail;

        *present = json_object_object_get_ex(req, key, &o);
        if (!*present)
                return 0;
        if (json_object_is_type(o, json_type_null)) {
                *v = -1;
                return 0;
        }
        if (!json_object_is_type(o, json_type_string) ||
            sscanf(json_object_get_string(o), "%2u:%2u%c", &h, &m, &tail) != 2 || h > 23 || m > 59)
                return reply_error(ret, "\"%s\" must be \"HH:MM\" or null", key);
        *v = (int) (h * 60 + m);
        return 0;
}

static const char *const day_names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

/* ["mon", "tue", ...] → mask. */
static int get_weekdays(json_object *req, bool *present, unsigned *v, json_object **ret)
{
        json_object *o;
        unsigned mask = 0;

        *present = json_object_object_get_ex(req, "weekdays", &o);
        if (!*present)
                return 0;
        if (!json_object_is_type(o, json_type_array) || json_object_array_length(o) > 7)
                return reply_error(ret, "\"weekdays\" must be an array of day names (\"mon\" .. \"sun\")");
        for (size_t i = 0; i < json_object_array_length(o); i++) {
                json_object *d = json_object_array_get_idx(o, i);
                bool found = false;

                for (unsigned k = 0; k < 7 && json_object_is_type(d, json_type_string); k++)
                        if (streq(json_object_get_string(d), day_names[k])) {
                                mask |= 1u << k;
                                found = true;
                        }
                if (!found)
                        return reply_error(
                                        ret,
                                        "\"weekdays\"[%zu] is not one of mon, tue, wed, thu, fri, sat, sun",
                                        i);
        }
        *v = mask;
        return 0;
}

/* Lock names → store ids. */
static int get_locks(Store *s, json_object *req, bool required, int64_t **ids, size_t *n, bool *present,
                     json_object **ret)
{
        json_object *o;

        *ids = NULL;
        *n = 0;
        *present = json_object_object_get_ex(req, "locks", &o);
        if (!*present)
                return required ? reply_error(ret, "\"locks\" is missing") : 0;
        if (!json_object_is_type(o, json_type_array) || json_object_array_length(o) > 64)
                return reply_error(ret, "\"locks\" must be an array of lock names");
        *ids = calloc(json_object_array_length(o) + 1, sizeof **ids);
        if (!*ids)
                return -ENOMEM;
        for (size_t i = 0; i < json_object_array_length(o); i++) {
                json_object *e = json_object_array_get_idx(o, i);
                struct store_lock l;

                store_lock_init(&l);
                if (!json_object_is_type(e, json_type_string) ||
                    store_lock_get_by_name(s, json_object_get_string(e), &l) < 0) {
                        free(*ids);
                        *ids = NULL;
                        return reply_error(ret, "\"locks\"[%zu]: no paired lock of that name", i);
                }
                (*ids)[(*n)++] = l.id;
                store_lock_done(&l);
        }
        return 0;
}

/* The schedule and flags of a request onto c. */
static int apply_limits(json_object *req, LockCode *c, json_object **ret)
{
        json_object *o;
        bool present;
        int64_t v;
        int r;

        if (json_object_object_get_ex(req, "enabled", &o)) {
                if (!json_object_is_type(o, json_type_boolean))
                        return reply_error(ret, "\"enabled\" must be true or false");
                c->enabled = json_object_get_boolean(o);
        }
        if ((r = get_i64(req, "valid_from_usec", 0, INT64_MAX, false, &present, &v, ret)) < 0)
                return r;
        if (present)
                c->valid_from_usec = (uint64_t) v;
        if ((r = get_i64(req, "valid_until_usec", 0, INT64_MAX, false, &present, &v, ret)) < 0)
                return r;
        if (present)
                c->valid_until_usec = (uint64_t) v;
        if ((r = get_weekdays(req, &present, &c->weekdays, ret)) < 0)
                return r;
        if ((r = get_time_of_day(req, "time_from", &present, &c->time_from_min, ret)) < 0 ||
            (r = get_time_of_day(req, "time_until", &present, &c->time_until_min, ret)) < 0)
                return r;
        return 0;
}

/* ---- listings ---- */

int codes_lock_summary(Store *s, int64_t lock_id, CodeSyncSummary *ret)
{
        struct store_assignment *a = NULL;
        CodeSyncSummary x = {};
        size_t n = 0;
        int r;

        r = store_assignment_list(s, lock_id, &a, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                switch (code_sync_state_from_string(a[i].state)) {
                case CODE_SYNC_SYNCED:
                        x.synced++;
                        break;
                case CODE_SYNC_PENDING:
                        x.pending++;
                        break;
                case CODE_SYNC_FAILED:
                        x.failed++;
                        break;
                case CODE_SYNC_DRIFTED:
                        x.drifted++;
                        break;
                case _CODE_SYNC_STATE_MAX:
                        break;
                }
        store_assignment_array_free(a, n);
        *ret = x;
        return 0;
}

int codes_list_json(Store *s, int64_t lock_id, json_object **ret)
{
        struct store_credential *creds = NULL;
        struct store_assignment *asg = NULL;
        struct store_user *users = NULL;
        struct store_lock *locks = NULL;
        size_t n_creds = 0, n_asg = 0, n_users = 0, n_locks = 0;
        json_object *arr = NULL;
        int r;

        if ((r = store_credential_list(s, 0, &creds, &n_creds)) < 0 ||
            (r = store_assignment_list(s, 0, &asg, &n_asg)) < 0 ||
            (r = store_user_list(s, &users, &n_users)) < 0 || (r = store_lock_list(s, &locks, &n_locks)) < 0)
                goto finish;
        arr = json_object_new_array();
        for (size_t i = 0; i < n_creds; i++) {
                const struct store_credential *c = &creds[i];
                json_object *o, *jl = json_object_new_array();
                const char *user = "?";

                for (size_t a = 0; a < n_asg; a++) {
                        json_object *e;
                        const char *lname = "?";

                        if (asg[a].credential_id != c->id || (lock_id > 0 && asg[a].lock_id != lock_id))
                                continue;
                        for (size_t k = 0; k < n_locks; k++)
                                if (locks[k].id == asg[a].lock_id)
                                        lname = locks[k].name;
                        e = json_object_new_object();
                        json_object_object_add(e, "lock", json_object_new_string(lname));
                        json_object_object_add(e, "desired", json_object_new_string(asg[a].desired));
                        json_object_object_add(e, "state", json_object_new_string(asg[a].state));
                        if (asg[a].reason)
                                json_object_object_add(e, "reason", json_object_new_string(asg[a].reason));
                        if (asg[a].lock_code_id >= 0)
                                json_object_object_add(e, "lock_code_id",
                                                       json_object_new_int(asg[a].lock_code_id));
                        json_object_object_add(e, "attempts", json_object_new_int((int) asg[a].attempts));
                        if (asg[a].next_attempt_usec > 0)
                                json_object_object_add(
                                                e, "next_attempt_usec",
                                                json_object_new_int64((int64_t) asg[a].next_attempt_usec));
                        if (asg[a].last_verified_usec > 0)
                                json_object_object_add(
                                                e, "last_verified_usec",
                                                json_object_new_int64((int64_t) asg[a].last_verified_usec));
                        json_object_array_add(jl, e);
                }
                if (lock_id > 0 && json_object_array_length(jl) == 0) {
                        json_object_put(jl);
                        continue;
                }
                for (size_t u = 0; u < n_users; u++)
                        if (users[u].id == c->user_id)
                                user = users[u].name;
                o = json_object_new_object();
                json_object_object_add(o, "id", json_object_new_int64(c->id));
                json_object_object_add(o, "user", json_object_new_string(user));
                json_object_object_add(o, "name", json_object_new_string(c->name));
                json_object_object_add(o, "enabled", json_object_new_boolean(c->enabled));
                json_object_object_add(o, "removing",
                                       json_object_new_boolean(codes_code_is_withdrawn(s, c->id)));
                if (c->valid_from_usec)
                        json_object_object_add(o, "valid_from_usec",
                                               json_object_new_int64((int64_t) c->valid_from_usec));
                if (c->valid_until_usec)
                        json_object_object_add(o, "valid_until_usec",
                                               json_object_new_int64((int64_t) c->valid_until_usec));
                json_object_object_add(o, "weekdays", json_object_new_int((int) c->weekdays));
                if (c->time_from_min >= 0) {
                        json_object_object_add(o, "time_from_min", json_object_new_int(c->time_from_min));
                        json_object_object_add(o, "time_until_min", json_object_new_int(c->time_until_min));
                }
                json_object_object_add(o, "revision", json_object_new_int64(c->revision));
                json_object_object_add(o, "locks", jl);
                json_object_array_add(arr, o);
        }
        *ret = TAKE_PTR(arr);
finish:
        json_object_put(arr);
        store_credential_array_free(creds, n_creds);
        store_assignment_array_free(asg, n_asg);
        store_user_array_free(users, n_users);
        store_lock_array_free(locks, n_locks);
        return r < 0 ? r : 0;
}

/* ---- requests ---- */

static void sync_ids(CodesService *svc, const int64_t *ids, size_t n)
{
        if (svc && n > 0)
                codes_service_sync_locks(svc, ids, n, "mqtt");
}

static void sync_credential(Store *s, CodesService *svc, int64_t id)
{
        struct store_assignment *a = NULL;
        size_t n = 0;

        if (!svc || store_assignment_list(s, 0, &a, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                if (a[i].credential_id == id)
                        codes_service_sync_locks(svc, &a[i].lock_id, 1, "mqtt");
        store_assignment_array_free(a, n);
}

static int req_user(Store *s, CodesService *svc, const char *op, json_object *req, json_object **ret)
{
        static const char *const keys[] = { "name", "transaction", NULL };
        struct store_user u = {};
        const char *name;
        int64_t id;
        int r;

        if (streq(op, "user/list")) {
                static const char *const none[] = { "transaction", NULL };
                struct store_user *a = NULL;
                size_t n = 0;
                json_object *arr;

                if ((r = check_keys(req, none, ret)) < 0)
                        return r;
                r = store_user_list(s, &a, &n);
                if (r < 0)
                        return reply_errno(ret, r, "users");
                arr = json_object_new_array();
                for (size_t i = 0; i < n; i++) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(a[i].name));
                        json_object_object_add(o, "removing",
                                               json_object_new_boolean(codes_user_is_withdrawn(s, a[i].id)));
                        json_object_array_add(arr, o);
                }
                store_user_array_free(a, n);
                *ret = reply_ok(arr);
                return 0;
        }
        if ((r = check_keys(req, keys, ret)) < 0 || (r = get_str(req, "name", 64, true, &name, ret)) < 0)
                return r;
        if (streq(op, "user/add")) {
                r = codes_user_add(s, name, &id);
                if (r < 0)
                        return reply_errno(ret, r, "user");
                *ret = reply_ok(json_object_new_int64(id));
                return 0;
        }
        r = store_user_get_by_name(s, name, &u);
        if (r < 0)
                return reply_errno(ret, r, "user");
        {
                struct store_credential *creds = NULL;
                size_t n = 0;

                (void) store_credential_list(s, u.id, &creds, &n);
                r = codes_user_remove(s, u.id);
                for (size_t i = 0; r >= 0 && i < n; i++)
                        sync_credential(s, svc, creds[i].id);
                store_credential_array_free(creds, n);
        }
        store_user_done(&u);
        if (r < 0)
                return reply_errno(ret, r, "user");
        *ret = reply_ok(NULL);
        return 0;
}

static int req_code(Store *s, CodesService *svc, const char *op, json_object *req, json_object **ret)
{
        static const char *const add_keys[] = { "user",
                                                "name",
                                                "digits",
                                                "locks",
                                                "enabled",
                                                "valid_from_usec",
                                                "valid_until_usec",
                                                "weekdays",
                                                "time_from",
                                                "time_until",
                                                "transaction",
                                                NULL };
        static const char *const update_keys[] = { "id",
                                                   "name",
                                                   "digits",
                                                   "locks",
                                                   "enabled",
                                                   "valid_from_usec",
                                                   "valid_until_usec",
                                                   "weekdays",
                                                   "time_from",
                                                   "time_until",
                                                   "transaction",
                                                   NULL };
        static const char *const id_keys[] = { "id", "transaction", NULL };
        static const char *const list_keys[] = { "lock", "transaction", NULL };
        _cleanup_free_ int64_t *locks = NULL;
        CodeRule rule = CODE_RULE_OK;
        const char *user, *name, *digits, *lname;
        bool present, has_locks;
        int64_t id = 0;
        size_t n = 0;
        LockCode c;
        int r;

        lock_code_init(&c);
        if (streq(op, "code/list")) {
                json_object *arr;
                int64_t lock_id = 0;

                if ((r = check_keys(req, list_keys, ret)) < 0 ||
                    (r = get_str(req, "lock", 32, false, &lname, ret)) < 0)
                        return r;
                if (lname) {
                        struct store_lock l;
                        store_lock_init(&l);
                        if (store_lock_get_by_name(s, lname, &l) < 0)
                                return reply_error(ret, "no paired lock named \"%s\"", lname);
                        lock_id = l.id;
                        store_lock_done(&l);
                }
                r = codes_list_json(s, lock_id, &arr);
                if (r < 0)
                        return reply_errno(ret, r, "codes");
                *ret = reply_ok(arr);
                return 0;
        }
        if (streq(op, "code/remove")) {
                if ((r = check_keys(req, id_keys, ret)) < 0 ||
                    (r = get_i64(req, "id", 1, INT64_MAX, true, &present, &id, ret)) < 0)
                        return r;
                sync_credential(s, svc, id);
                r = codes_code_remove(s, id);
                if (r < 0)
                        return reply_errno(ret, r, "code");
                sync_credential(s, svc, id);
                *ret = reply_ok(NULL);
                return 0;
        }
        if (streq(op, "code/add")) {
                struct store_user u = {};

                if ((r = check_keys(req, add_keys, ret)) < 0 ||
                    (r = get_str(req, "user", 64, true, &user, ret)) < 0 ||
                    (r = get_str(req, "name", LOCK_CODE_NAME_MAX, true, &name, ret)) < 0 ||
                    (r = get_str(req, "digits", LOCK_CODE_DIGITS_MAX, true, &digits, ret)) < 0 ||
                    (r = apply_limits(req, &c, ret)) < 0 ||
                    (r = get_locks(s, req, true, &locks, &n, &has_locks, ret)) < 0)
                        goto finish;
                snprintf(c.name, sizeof c.name, "%s", name);
                snprintf(c.digits, sizeof c.digits, "%s", digits);
                r = store_user_get_by_name(s, user, &u);
                if (r < 0) {
                        r = reply_error(ret, "no user named \"%s\"", user);
                        goto finish;
                }
                r = codes_code_add(s, u.id, &c, locks, n, &rule, &id);
                store_user_done(&u);
                if (r < 0) {
                        r = rule != CODE_RULE_OK ? reply_rule(ret, rule) : reply_errno(ret, r, "code");
                        goto finish;
                }
                sync_ids(svc, locks, n);
                *ret = reply_ok(json_object_new_int64(id));
                r = 0;
                goto finish;
        }
        /* code/update */
        {
                struct store_credential cred;
                struct store_assignment *asg = NULL;
                size_t n_asg = 0;

                if ((r = check_keys(req, update_keys, ret)) < 0 ||
                    (r = get_i64(req, "id", 1, INT64_MAX, true, &present, &id, ret)) < 0)
                        goto finish;
                if (codes_code_is_withdrawn(s, id) || store_credential_get(s, id, &cred) < 0) {
                        r = reply_error(ret, "no code with id %" PRIi64, id);
                        goto finish;
                }
                r = codes_code_from_store(&cred, &c);
                store_credential_done(&cred);
                if (r < 0) {
                        r = reply_errno(ret, r, "code");
                        goto finish;
                }
                if ((r = get_str(req, "name", LOCK_CODE_NAME_MAX, false, &name, ret)) < 0 ||
                    (r = get_str(req, "digits", LOCK_CODE_DIGITS_MAX, false, &digits, ret)) < 0 ||
                    (r = apply_limits(req, &c, ret)) < 0 ||
                    (r = get_locks(s, req, false, &locks, &n, &has_locks, ret)) < 0)
                        goto finish;
                if (name)
                        snprintf(c.name, sizeof c.name, "%s", name);
                if (digits)
                        snprintf(c.digits, sizeof c.digits, "%s", digits);
                sync_credential(s, svc, id);
                r = codes_code_update(s, id, &c, &rule);
                if (r >= 0 && has_locks) {
                        r = store_assignment_list(s, 0, &asg, &n_asg);
                        for (size_t i = 0; r >= 0 && i < n_asg; i++) {
                                bool keep = false;

                                if (asg[i].credential_id != id || !streq(asg[i].desired, "present"))
                                        continue;
                                for (size_t k = 0; k < n; k++)
                                        keep = keep || locks[k] == asg[i].lock_id;
                                if (!keep)
                                        r = codes_code_assign(s, id, asg[i].lock_id, false, &rule);
                        }
                        for (size_t k = 0; r >= 0 && k < n; k++)
                                r = codes_code_assign(s, id, locks[k], true, &rule);
                        store_assignment_array_free(asg, n_asg);
                }
                if (r < 0) {
                        r = rule != CODE_RULE_OK ? reply_rule(ret, rule) : reply_errno(ret, r, "code");
                        goto finish;
                }
                sync_credential(s, svc, id);
                *ret = reply_ok(NULL);
                r = 0;
        }
finish:
        explicit_bzero(&c, sizeof c);
        return r;
}

static int req_backup(Store *s, CodesService *svc, const char *op, json_object *req, json_object **ret)
{
        static const char *const backup_keys[] = { "locks", "transaction", NULL };
        static const char *const restore_keys[] = { "document", "to", "from", "transaction", NULL };
        _cleanup_free_ int64_t *locks = NULL;
        _cleanup_free_ char *err = NULL;
        bool has_locks;
        size_t n = 0;
        int r;

        if (streq(op, "backup")) {
                uint8_t *data = NULL;
                size_t size = 0;
                json_object *doc;

                if ((r = check_keys(req, backup_keys, ret)) < 0 ||
                    (r = get_locks(s, req, false, &locks, &n, &has_locks, ret)) < 0)
                        return r;
                /* never secrets over MQTT: use lockhubctl for an encrypted backup */
                r = backup_create(s, locks, n, &(BackupOptions){}, 0, &data, &size, &err);
                if (r < 0)
                        return reply_error(ret, "%s", err ?: strerror(-r));
                doc = json_tokener_parse((const char *) data);
                free(data);
                if (!doc)
                        return -ENOMEM;
                *ret = reply_ok(doc);
                return 0;
        } else {
                _cleanup_(backup_freep) Backup *b = NULL;
                BackupRestoreResult res = {};
                const char *to, *from, *text;
                json_object *doc;
                size_t len;

                if ((r = check_keys(req, restore_keys, ret)) < 0 ||
                    (r = get_str(req, "to", 32, false, &to, ret)) < 0 ||
                    (r = get_str(req, "from", 32, false, &from, ret)) < 0)
                        return r;
                if (!json_object_object_get_ex(req, "document", &doc) ||
                    !json_object_is_type(doc, json_type_object))
                        return reply_error(ret, "\"document\" must be a backup document (a JSON object)");
                text = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN, &len);
                if (!text)
                        return -ENOMEM;
                r = backup_parse(text, len, NULL, &b, &err);
                /* The text stays inside doc until it is freed: wiped now, digits or not. */
                explicit_bzero((char *) text, len);
                if (r < 0)
                        return reply_error(ret, "%s", err ?: strerror(-r));
                r = backup_restore(s, b, from, to, 0, &res, &err);
                if (r < 0)
                        return reply_error(ret, "%s", err ?: strerror(-r));
                sync_ids(svc, res.lock_ids, res.n_lock_ids);
                if (svc && res.snapshots > 0)
                        codes_service_restore_settings(svc, res.lock_ids, res.n_lock_ids, "restore");
                {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "users_added", json_object_new_int((int) res.users_added));
                        json_object_object_add(o, "codes_added", json_object_new_int((int) res.codes_added));
                        json_object_object_add(o, "codes_updated",
                                               json_object_new_int((int) res.codes_updated));
                        json_object_object_add(o, "codes_skipped",
                                               json_object_new_int((int) res.codes_skipped));
                        json_object_object_add(o, "assignments", json_object_new_int((int) res.assignments));
                        json_object_object_add(o, "setting_snapshots",
                                               json_object_new_int((int) res.snapshots));
                        *ret = reply_ok(o);
                }
                backup_restore_result_done(&res);
                return 0;
        }
}

int codes_request(Store *s, CodesService *svc, const char *op, json_object *req, json_object **ret)
{
        *ret = NULL;
        if (streq(op, "user/add") || streq(op, "user/remove") || streq(op, "user/list"))
                return req_user(s, svc, op, req, ret);
        if (streq(op, "code/add") || streq(op, "code/update") || streq(op, "code/remove") ||
            streq(op, "code/list"))
                return req_code(s, svc, op, req, ret);
        if (streq(op, "backup") || streq(op, "restore"))
                return req_backup(s, svc, op, req, ret);
        return -EOPNOTSUPP;
}
