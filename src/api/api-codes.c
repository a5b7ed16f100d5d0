/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.lockhub.Manager1: users, keypad codes, backup and restore (a second vtable of the
 * Manager1 interface on /org/lockhub, registered by api_start() through api_codes_start()).
 *
 *   ListUsers() → a(xsb)                 id, name, being removed
 *   AddUser(s name) → x
 *   RemoveUser(s name)                   withdraws the user's codes from every lock first
 *   ListCodes(s lock) → s                JSON array, never the digits ("" lock: every lock)
 *   AddCode(s user, s name, s digits, as locks, a{sv} limits) → x
 *   UpdateCode(x id, a{sv} changes)      name s, digits s, enabled b, valid_from t,
 *                                        valid_until t, weekdays u, time_from i, time_until i
 *                                        (minutes after midnight, -1: no window), locks as
 *   RemoveCode(x id)
 *   SyncCodes(s lock)                    reconcile now ("" : every lock)
 *   Backup(as locks, b secrets, s passphrase) → ay
 *   Restore(ay data, s passphrase, s from, s to) → s    what was restored, one line
 *
 * and on each /org/lockhub/lock/<name>, org.lockhub.Lock1 (a second fallback vtable):
 *   ListAuthorizations() → a(ussbbbttu)  id, type, name, enabled, remote allowed, lockhub's
 *                                        own, created, last active (usec, 0 unknown), uses
 *   EnableAuthorization(u id, b enabled) reply when the lock has done it
 *   RemoveAuthorization(u id)            never lockhub's own (org.lockhub.Error.AccessDenied)
 *
 * A code that breaks a rule is refused with org.lockhub.Error.CodeRule and the message
 * "RULE: sentence", and nothing is stored or sent. Every change is written to the store
 * first and then the affected locks are reconciled (asynchronously: ListCodes shows the
 * progress). Every method but the List ones checks the caller (api_check_caller()).
 */

#include <inttypes.h>
#include <json-c/json.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "lockhub/api.h"
#include "lockhub/backup.h"
#include "lockhub/codes.h"
#include "lockhub/log.h"
#include "lockhub/manager.h"

#define USEC_PER_SEC UINT64_C(1000000)

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static int rule_error(sd_bus_error *error, CodeRule rule)
{
        return sd_bus_error_setf(error, "org.lockhub.Error.CodeRule", "%s: %s", code_rule_to_string(rule),
                                 code_rule_message(rule));
}

static int store_error(sd_bus_error *error, int r, const char *what)
{
        switch (-r) {
        case EEXIST:
                return sd_bus_error_setf(error, "org.lockhub.Error.Exists", "%s already exists.", what);
        case ENOENT:
                return sd_bus_error_setf(error, "org.lockhub.Error.NotFound", "No such %s.", what);
        case EINVAL:
                return sd_bus_error_setf(error, "org.lockhub.Error.InvalidArgs", "Invalid %s.", what);
        default:
                return sd_bus_error_setf(error, api_error_name(r), "Cannot change %s: %s", what,
                                         strerror(-r));
        }
}

/* Reconcile every lock the credential is (or was) assigned to. */
static void sync_credential(Manager *m, int64_t credential_id, const char *why)
{
        struct store_assignment *a = NULL;
        size_t n = 0;

        if (!m->codes || store_assignment_list(m->store, 0, &a, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++)
                if (a[i].credential_id == credential_id)
                        codes_service_sync_locks(m->codes, &a[i].lock_id, 1, why);
        store_assignment_array_free(a, n);
}

/* Store ids of the named locks (read from an "as" argument). */
static int read_locks(Manager *m, sd_bus_message *msg, int64_t **ret, size_t *ret_n, sd_bus_error *error)
{
        _cleanup_free_ int64_t *ids = NULL;
        size_t n = 0;
        const char *name;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(msg, "s", &name)) > 0) {
                Lock *l = manager_find_lock(m, name);
                int64_t *a;

                if (!l)
                        return sd_bus_error_setf(error, "org.lockhub.Error.NoSuchLock",
                                                 "No lock named '%s'.", name);
                a = reallocarray(ids, n + 1, sizeof *a);
                if (!a)
                        return -ENOMEM;
                ids = a;
                ids[n++] = l->store_id;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return r;
        free(*ret); /* "locks" given twice: the last one counts */
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

/* Applies an a{sv} of limits/changes to c; locks (when given) to *ret_locks. */
static int read_changes(Manager *m, sd_bus_message *msg, LockCode *c, int64_t **ret_locks, size_t *ret_n,
                        bool *ret_has_locks, sd_bus_error *error)
{
        const char *key;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *s;
                uint64_t t;
                uint32_t u;
                int32_t i;
                int b;

                r = sd_bus_message_read(msg, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "name") || streq(key, "digits")) {
                        r = sd_bus_message_read(msg, "v", "s", &s);
                        if (r < 0)
                                return r;
                        if (strlen(s) > (streq(key, "name") ? LOCK_CODE_NAME_MAX : LOCK_CODE_DIGITS_MAX))
                                return rule_error(error,
                                                  streq(key, "name") ? CODE_RULE_NAME : CODE_RULE_LENGTH);
                        if (streq(key, "name"))
                                snprintf(c->name, sizeof c->name, "%s", s);
                        else
                                snprintf(c->digits, sizeof c->digits, "%s", s);
                } else if (streq(key, "enabled")) {
                        r = sd_bus_message_read(msg, "v", "b", &b);
                        c->enabled = b;
                } else if (streq(key, "valid_from") || streq(key, "valid_until")) {
                        r = sd_bus_message_read(msg, "v", "t", &t);
                        if (streq(key, "valid_from"))
                                c->valid_from_usec = t;
                        else
                                c->valid_until_usec = t;
                } else if (streq(key, "weekdays")) {
                        r = sd_bus_message_read(msg, "v", "u", &u);
                        c->weekdays = u;
                } else if (streq(key, "time_from") || streq(key, "time_until")) {
                        r = sd_bus_message_read(msg, "v", "i", &i);
                        if (streq(key, "time_from"))
                                c->time_from_min = i;
                        else
                                c->time_until_min = i;
                } else if (streq(key, "locks") && ret_locks) {
                        r = sd_bus_message_enter_container(msg, 'v', "as");
                        if (r >= 0)
                                r = read_locks(m, msg, ret_locks, ret_n, error);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(msg);
                        *ret_has_locks = true;
                } else
                        return sd_bus_error_setf(error, "org.lockhub.Error.InvalidArgs",
                                                 "Unknown setting '%s'.", key);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(msg);
}

/* ---- users ---- */

static int method_list_users(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        struct store_user *u = NULL;
        size_t n = 0;
        int r;

        r = store_user_list(m->store, &u, &n);
        if (r < 0)
                return store_error(error, r, "users");
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(xsb)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(xsb)", u[i].id, u[i].name,
                                          codes_user_is_withdrawn(m->store, u[i].id));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        store_user_array_free(u, n);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int method_add_user(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *name;
        int64_t id = 0;
        int r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = codes_user_add(m->store, name, &id);
        if (r == -EINVAL)
                return sd_bus_error_setf(error, "org.lockhub.Error.InvalidArgs",
                                         "A user name is 1 to 64 characters, without spaces at either end.");
        if (r < 0)
                return store_error(error, r, "user");
        log_info("User '%s' added.", name);
        r = api_not_stored(m, error); /* the reply says what is on disk (store.h) */
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "x", id);
}

static int method_remove_user(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        struct store_credential *creds = NULL;
        struct store_user u = {};
        size_t n = 0;
        const char *name;
        int r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = store_user_get_by_name(m->store, name, &u);
        if (r < 0)
                return store_error(error, r, "user");
        (void) store_credential_list(m->store, u.id, &creds, &n);
        r = codes_user_remove(m->store, u.id);
        store_user_done(&u);
        for (size_t i = 0; r >= 0 && i < n; i++)
                sync_credential(m, creds[i].id, "user-change");
        store_credential_array_free(creds, n);
        if (r < 0)
                return store_error(error, r, "user");
        log_info("User '%s' removed (codes withdrawn from the locks).", name);
        r = api_not_stored(m, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "");
}

/* ---- codes ---- */

static int method_list_codes(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        json_object *arr = NULL;
        const char *filter;
        Lock *only = NULL;
        int r;

        r = sd_bus_message_read(msg, "s", &filter);
        if (r < 0)
                return r;
        if (filter[0] && !(only = manager_find_lock(m, filter)))
                return sd_bus_error_setf(error, "org.lockhub.Error.NoSuchLock", "No lock named '%s'.",
                                         filter);
        r = codes_list_json(m->store, only ? only->store_id : 0, &arr);
        if (r < 0)
                return store_error(error, r, "codes");
        r = sd_bus_reply_method_return(msg, "s",
                                       json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
        json_object_put(arr);
        return r;
}

static int method_add_code(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ int64_t *locks = NULL;
        struct store_user u = {};
        const char *user, *name, *digits;
        size_t n = 0;
        bool has_locks = false;
        int64_t id = 0;
        CodeRule rule = CODE_RULE_OK;
        LockCode c;
        int r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        lock_code_init(&c);
        r = sd_bus_message_read(msg, "sss", &user, &name, &digits);
        if (r < 0)
                return r;
        if (strlen(name) > LOCK_CODE_NAME_MAX)
                return rule_error(error, CODE_RULE_NAME);
        if (strlen(digits) > LOCK_CODE_DIGITS_MAX)
                return rule_error(error, CODE_RULE_LENGTH);
        snprintf(c.name, sizeof c.name, "%s", name);
        snprintf(c.digits, sizeof c.digits, "%s", digits);
        r = read_locks(m, msg, &locks, &n, error);
        if (r >= 0)
                r = read_changes(m, msg, &c, NULL, NULL, &has_locks, error);
        if (r < 0 || sd_bus_error_is_set(error))
                goto finish;
        r = store_user_get_by_name(m->store, user, &u);
        if (r < 0) {
                r = sd_bus_error_setf(error, "org.lockhub.Error.NotFound", "No user named '%s'.", user);
                goto finish;
        }
        r = codes_code_add(m->store, u.id, &c, locks, n, &rule, &id);
        store_user_done(&u);
        if (r < 0) {
                r = rule != CODE_RULE_OK ? rule_error(error, rule) : store_error(error, r, "code");
                goto finish;
        }
        log_info("Code '%s' of '%s' added for %zu lock(s).", c.name, user, n);
        if (m->codes && n > 0) /* n 0 would mean every lock */
                codes_service_sync_locks(m->codes, locks, n, "user-change");
        r = api_not_stored(m, error);
        if (r >= 0)
                r = sd_bus_reply_method_return(msg, "x", id);
finish:
        explicit_bzero(&c, sizeof c);
        return r;
}

static int method_update_code(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ int64_t *locks = NULL;
        struct store_credential cred;
        struct store_assignment *asg = NULL;
        size_t n = 0, n_asg = 0;
        bool has_locks = false;
        CodeRule rule = CODE_RULE_OK;
        int64_t id;
        LockCode c;
        int r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "x", &id);
        if (r < 0)
                return r;
        if (codes_code_is_withdrawn(m->store, id) || store_credential_get(m->store, id, &cred) < 0)
                return sd_bus_error_setf(error, "org.lockhub.Error.NotFound", "No code with id %" PRIi64 ".",
                                         id);
        r = codes_code_from_store(&cred, &c);
        store_credential_done(&cred);
        if (r < 0)
                return store_error(error, r, "code");
        r = read_changes(m, msg, &c, &locks, &n, &has_locks, error);
        if (r < 0 || sd_bus_error_is_set(error))
                goto finish;
        /* all of it or nothing: a lock refusing the code (duplicate) undoes the update too */
        r = store_begin(m->store);
        if (r < 0) {
                r = store_error(error, r, "code");
                goto finish;
        }
        r = codes_code_update(m->store, id, &c, &rule);
        if (r >= 0 && has_locks) {
                /* the new set of locks: assign the new ones, withdraw from the others */
                r = store_assignment_list(m->store, 0, &asg, &n_asg);
                for (size_t i = 0; r >= 0 && i < n_asg; i++) {
                        bool keep = false;

                        if (asg[i].credential_id != id)
                                continue;
                        for (size_t k = 0; k < n; k++)
                                keep = keep || locks[k] == asg[i].lock_id;
                        if (!keep && streq(asg[i].desired, "present"))
                                r = codes_code_assign(m->store, id, asg[i].lock_id, false, &rule);
                }
                for (size_t k = 0; r >= 0 && k < n; k++)
                        r = codes_code_assign(m->store, id, locks[k], true, &rule);
                store_assignment_array_free(asg, n_asg);
        }
        if (r >= 0)
                r = store_commit(m->store);
        if (r < 0) {
                store_rollback(m->store);
                r = rule != CODE_RULE_OK ? rule_error(error, rule) : store_error(error, r, "code");
                goto finish;
        }
        sync_credential(m, id, "user-change"); /* the locks it left, too */
        r = api_not_stored(m, error);
        if (r >= 0)
                r = sd_bus_reply_method_return(msg, "");
finish:
        explicit_bzero(&c, sizeof c);
        return r;
}

static int method_remove_code(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        int64_t id;
        int r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "x", &id);
        if (r < 0)
                return r;
        r = codes_code_remove(m->store, id);
        if (r < 0)
                return store_error(error, r, "code");
        sync_credential(m, id, "user-change");
        r = api_not_stored(m, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(msg, "");
}

static int method_sync_codes(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *name;
        Lock *l = NULL;
        int r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        if (name[0] && !(l = manager_find_lock(m, name)))
                return sd_bus_error_setf(error, "org.lockhub.Error.NoSuchLock", "No lock named '%s'.", name);
        if (!m->codes)
                return sd_bus_error_set(error, "org.lockhub.Error.NotSupported",
                                        "The code service is not running.");
        if (l) {
                r = codes_service_sync(m->codes, l, "dbus");
                if (r == -EOPNOTSUPP)
                        return sd_bus_error_setf(error, "org.lockhub.Error.NotSupported",
                                                 "%s's driver cannot manage keypad codes.", l->name);
        } else
                codes_service_sync_locks(m->codes, NULL, 0, "dbus");
        return sd_bus_reply_method_return(msg, "");
}

/* ---- backup and restore ---- */

static int backup_error(sd_bus_error *error, int r, const char *message)
{
        const char *name = "org.lockhub.Error.InvalidBackup";

        switch (-r) {
        case EBADMSG:
                name = "org.lockhub.Error.WrongPassphrase";
                break;
        case ENOKEY:
                name = "org.lockhub.Error.PassphraseRequired";
                break;
        case EPROTONOSUPPORT:
                name = "org.lockhub.Error.NewerBackup";
                break;
        case ENOENT:
                name = "org.lockhub.Error.NoSuchLock";
                break;
        case EINVAL:
        case EFBIG:
                break;
        default:
                name = api_error_name(r);
                break;
        }
        return sd_bus_error_setf(error, name, "%s", message ?: strerror(-r));
}

static int method_backup(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        _cleanup_free_ int64_t *locks = NULL;
        _cleanup_free_ char *err = NULL;
        uint8_t *data = NULL;
        size_t n = 0, size = 0;
        const char *passphrase;
        int secrets, r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        r = read_locks(m, msg, &locks, &n, error);
        if (r < 0 || sd_bus_error_is_set(error))
                return r;
        r = sd_bus_message_read(msg, "bs", &secrets, &passphrase);
        if (r < 0)
                return r;
        r = backup_create(m->store, locks, n,
                          &(BackupOptions){ .include_secrets = secrets, .passphrase = passphrase },
                          now_usec(), &data, &size, &err);
        if (r < 0)
                return backup_error(error, r, err);
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_append_array(reply, 'y', data, size);
        explicit_bzero(data, size);
        free(data);
        if (r < 0)
                return r;
        log_info("Backup of %zu lock(s) written%s.", n, secrets ? ", with secrets, encrypted" : "");
        return sd_bus_send(NULL, reply, NULL);
}

static int method_restore(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(backup_freep) Backup *b = NULL;
        _cleanup_free_ char *err = NULL, *summary = NULL;
        Manager *m = userdata;
        BackupRestoreResult res = {};
        const char *passphrase, *from, *to;
        const void *data;
        size_t size;
        int r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(msg, 'y', &data, &size);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "sss", &passphrase, &from, &to);
        if (r < 0)
                return r;
        r = backup_parse(data, size, passphrase[0] ? passphrase : NULL, &b, &err);
        if (r < 0)
                return backup_error(error, r, err);
        r = backup_restore(m->store, b, from[0] ? from : NULL, to[0] ? to : NULL, now_usec(), &res, &err);
        if (r < 0)
                return backup_error(error, r, err);
        if (asprintf(&summary,
                     "%u user(s) and %u code(s) added, %u code(s) updated, %u assignment(s), %u setting "
                     "snapshot(s), %u lock(s) added%s",
                     res.users_added, res.codes_added, res.codes_updated, res.assignments, res.snapshots,
                     res.locks_added,
                     res.codes_skipped > 0
                                     ? "; codes not in this hub were skipped (the backup has no digits)"
                                     : "") < 0)
                summary = NULL;
        log_info("Backup restored: %s.", strna(summary));
        if (m->codes && res.n_lock_ids > 0)
                codes_service_sync_locks(m->codes, res.lock_ids, res.n_lock_ids, "restore");
        /* the settings go to the locks too (a "config" event tells how that went) */
        if (m->codes && res.snapshots > 0)
                codes_service_restore_settings(m->codes, res.lock_ids, res.n_lock_ids, "restore");
        backup_restore_result_done(&res);
        return sd_bus_reply_method_return(msg, "s", strempty(summary));
}

/* ---- the lock's authorizations (Lock1) ---- */

static void on_auths_listed(Lock *l, int r, const char *message, const LockAuthorization *a, size_t n,
                            void *userdata)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_message *call = userdata;

        if (r < 0) {
                (void) sd_bus_reply_method_errorf(call, api_error_name(r), "%s: %s", l->name,
                                                  message ?: strerror(-r));
                sd_bus_message_unref(call);
                return;
        }
        r = sd_bus_message_new_method_return(call, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ussbbbttu)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(ussbbbttu)", a[i].id, strempty(a[i].type), a[i].name,
                                          a[i].enabled, a[i].remote_allowed, a[i].own, a[i].created_usec,
                                          a[i].last_active_usec, a[i].use_count);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r >= 0)
                (void) sd_bus_send(NULL, reply, NULL);
        else
                (void) sd_bus_reply_method_errorf(call, "org.lockhub.Error.Failed", "%s: %s", l->name,
                                                  strerror(-r));
        sd_bus_message_unref(call);
}

static void on_auth_changed(Lock *l, int r, const char *message, void *userdata)
{
        sd_bus_message *call = userdata;

        if (r >= 0)
                (void) sd_bus_reply_method_return(call, "");
        else
                (void) sd_bus_reply_method_errorf(
                                call, r == -EPERM ? "org.lockhub.Error.AccessDenied" : api_error_name(r),
                                "%s: %s", l->name, message ?: strerror(-r));
        sd_bus_message_unref(call);
}

static int no_driver(sd_bus_error *error, Lock *l)
{
        return sd_bus_error_setf(error, "org.lockhub.Error.NotSupported",
                                 "%s: its driver cannot manage authorizations.", l->name);
}

static int method_list_auths(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Lock *l = userdata;
        int r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        if (!l->ops || !l->ops->list_authorizations)
                return no_driver(error, l);
        r = l->ops->list_authorizations(l, on_auths_listed, sd_bus_message_ref(msg));
        if (r < 0) {
                sd_bus_message_unref(msg);
                return sd_bus_error_setf(error, api_error_name(r), "%s: %s", l->name, strerror(-r));
        }
        return 1;
}

/* lockhub's own authorization on this lock, from the pairing: -1 unknown. */
static int64_t own_auth_id(Lock *l)
{
        Manager *m = l->event_sink_userdata;
        struct store_lock sl;
        int64_t id = -1;

        if (!m || l->store_id <= 0)
                return -1;
        store_lock_init(&sl);
        if (store_lock_get(m->store, l->store_id, &sl) >= 0)
                id = sl.auth_id;
        store_lock_done(&sl);
        return id;
}

static int change_auth(sd_bus_message *msg, Lock *l, bool remove, sd_bus_error *error)
{
        uint32_t id;
        int enabled = 0, r;

        r = api_check_caller(msg, error);
        if (r < 0)
                return r;
        r = remove ? sd_bus_message_read(msg, "u", &id) : sd_bus_message_read(msg, "ub", &id, &enabled);
        if (r < 0)
                return r;
        if ((int64_t) id == own_auth_id(l))
                return sd_bus_error_setf(error, "org.lockhub.Error.AccessDenied",
                                         "%s: authorization %u is lockhub's own; unpair the lock instead.",
                                         l->name, id);
        if (!l->ops || (remove ? !l->ops->remove_authorization : !l->ops->set_authorization_enabled))
                return no_driver(error, l);
        msg = sd_bus_message_ref(msg);
        r = remove ? l->ops->remove_authorization(l, id, on_auth_changed, msg)
                   : l->ops->set_authorization_enabled(l, id, enabled, on_auth_changed, msg);
        if (r < 0) {
                sd_bus_message_unref(msg);
                return sd_bus_error_setf(error, api_error_name(r), "%s: %s", l->name, strerror(-r));
        }
        return 1;
}

static int method_enable_auth(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return change_auth(msg, userdata, false, error);
}

static int method_remove_auth(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return change_auth(msg, userdata, true, error);
}

static const sd_bus_vtable auths_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("ListAuthorizations", "", , "a(ussbbbttu)", SD_BUS_PARAM(authorizations),
                                 method_list_auths, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("EnableAuthorization", "ub", SD_BUS_PARAM(id) SD_BUS_PARAM(enabled), "", ,
                                 method_enable_auth, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveAuthorization", "u", SD_BUS_PARAM(id), "", , method_remove_auth,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static const sd_bus_vtable codes_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_NAMES("ListUsers", "", , "a(xsb)", SD_BUS_PARAM(users), method_list_users,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AddUser", "s", SD_BUS_PARAM(name), "x", SD_BUS_PARAM(id), method_add_user,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RemoveUser", "s", SD_BUS_PARAM(name), "", , method_remove_user,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListCodes", "s", SD_BUS_PARAM(lock), "s", SD_BUS_PARAM(json),
                                 method_list_codes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AddCode", "sssasa{sv}",
                                 SD_BUS_PARAM(user) SD_BUS_PARAM(name) SD_BUS_PARAM(digits)
                                                 SD_BUS_PARAM(locks) SD_BUS_PARAM(limits),
                                 "x", SD_BUS_PARAM(id), method_add_code,
                                 SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("UpdateCode", "xa{sv}", SD_BUS_PARAM(id) SD_BUS_PARAM(changes), "", ,
                                 method_update_code, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("RemoveCode", "x", SD_BUS_PARAM(id), "", , method_remove_code,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SyncCodes", "s", SD_BUS_PARAM(lock), "", , method_sync_codes,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Backup", "asbs",
                                 SD_BUS_PARAM(locks) SD_BUS_PARAM(secrets) SD_BUS_PARAM(passphrase), "ay",
                                 SD_BUS_PARAM(data), method_backup,
                                 SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("Restore", "aysss",
                                 SD_BUS_PARAM(data) SD_BUS_PARAM(passphrase) SD_BUS_PARAM(from)
                                                 SD_BUS_PARAM(to),
                                 "s", SD_BUS_PARAM(summary), method_restore,
                                 SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_VTABLE_END,
};

int api_codes_start(Manager *m)
{
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, API_MANAGER_PATH, "org.lockhub.Manager1", codes_vtable,
                                     m);
        if (r < 0)
                return log_error_errno(r, "Failed to register the code methods of org.lockhub.Manager1: %m");
        r = sd_bus_add_fallback_vtable(m->bus, NULL, API_LOCK_PATH_PREFIX, "org.lockhub.Lock1", auths_vtable,
                                       api_find_lock, m);
        if (r < 0)
                return log_error_errno(
                                r, "Failed to register the authorization methods of org.lockhub.Lock1: %m");
        return 0;
}
