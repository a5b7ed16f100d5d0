/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hub's desired state of users and codes, on top of the store (see lockhub/codes.h).
 *
 * Every operation checks the code rules against what the affected locks hold or will hold
 * before it writes anything, and writes in one transaction.
 *
 * Withdrawal. Removing a code must not lose the lock's id for it (the reconciler needs it
 * to remove the code from the lock, and must not take our own removal for drift), so a
 * removed code stays in the database, every assignment set to desired=absent, until each
 * lock confirmed it gone; the reconciler then drops the assignment and, with the last one,
 * the code (codes_forget_assignment()). The meta table remembers which codes and users
 * are being withdrawn ("codes.withdrawn.credential.<id>" = "1"), so a code that merely has
 * no lock assigned is never taken for one being removed.
 */

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>

#include "codes-internal.h"
#include "lockhub/codes.h"

static void withdrawn_key(char *buf, size_t size, const char *what, int64_t id)
{
        snprintf(buf, size, "codes.withdrawn.%s.%" PRIi64, what, id);
}

static bool is_withdrawn(Store *s, const char *what, int64_t id)
{
        _cleanup_free_ char *v = NULL;
        char key[64];

        withdrawn_key(key, sizeof key, what, id);
        return store_meta_get(s, key, &v) >= 0 && v && streq(v, "1");
}

static int set_withdrawn(Store *s, const char *what, int64_t id, bool b)
{
        char key[64];

        withdrawn_key(key, sizeof key, what, id);
        return store_meta_set(s, key, b ? "1" : "0");
}

bool codes_code_is_withdrawn(Store *s, int64_t credential_id)
{
        return is_withdrawn(s, "credential", credential_id);
}

bool codes_user_is_withdrawn(Store *s, int64_t user_id)
{
        return is_withdrawn(s, "user", user_id);
}

int codes_code_from_store(const struct store_credential *cred, LockCode *ret)
{
        LockCode c;

        lock_code_init(&c);
        if (cred->code_sealed_size > LOCK_CODE_DIGITS_MAX)
                return -EINVAL;
        memcpy(c.digits, cred->code_sealed, cred->code_sealed_size);
        c.digits[cred->code_sealed_size] = '\0';
        if (strlen(c.digits) != cred->code_sealed_size)
                return -EINVAL;
        snprintf(c.name, sizeof c.name, "%s", strempty(cred->name));
        c.enabled = cred->enabled;
        c.valid_from_usec = cred->valid_from_usec;
        c.valid_until_usec = cred->valid_until_usec;
        c.weekdays = cred->weekdays;
        c.time_from_min = cred->time_from_min;
        c.time_until_min = cred->time_until_min;
        *ret = c;
        explicit_bzero(&c, sizeof c);
        return 0;
}

/* Fills the desired-state members of a credential row from c (borrowing c's strings). */
static void credential_from_code(struct store_credential *cred, const LockCode *c)
{
        cred->name = (char *) c->name;
        cred->code_sealed = (uint8_t *) c->digits;
        cred->code_sealed_size = strlen(c->digits);
        cred->key_version = 0;
        cred->enabled = c->enabled;
        cred->valid_from_usec = c->valid_from_usec;
        cred->valid_until_usec = c->valid_until_usec;
        cred->weekdays = c->weekdays;
        cred->time_from_min = c->time_from_min;
        cred->time_until_min = c->time_until_min;
}

/* The digits of every code that lock_id holds or will hold, except exclude_id's. */
static int lock_digits(Store *s, int64_t lock_id, int64_t exclude_id, char ***ret, size_t *ret_n)
{
        struct store_assignment *a = NULL;
        size_t n = 0, k = 0;
        char **v;
        int r;

        r = store_assignment_list(s, lock_id, &a, &n);
        if (r < 0)
                return r;
        v = calloc(n + 1, sizeof *v);
        if (!v) {
                store_assignment_array_free(a, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                struct store_credential cred;
                LockCode c;

                if (a[i].credential_id == exclude_id || !streq(a[i].desired, "present"))
                        continue;
                if (store_credential_get(s, a[i].credential_id, &cred) < 0)
                        continue;
                if (codes_code_from_store(&cred, &c) >= 0)
                        v[k++] = strdup(c.digits);
                explicit_bzero(&c, sizeof c);
                store_credential_done(&cred);
        }
        store_assignment_array_free(a, n);
        *ret = v;
        *ret_n = k;
        return 0;
}

static void digits_free(char **v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (v[i]) {
                        explicit_bzero(v[i], strlen(v[i]));
                        free(v[i]);
                }
        free(v);
}

/* Checks c against every rule, with uniqueness on each lock. */
static int check_on_locks(Store *s, const LockCode *c, int64_t self_id, const int64_t *lock_ids,
                          size_t n_locks, CodeRule *ret_rule)
{
        CodeRule rule = codes_check(c, NULL, 0);
        int r;

        for (size_t i = 0; rule == CODE_RULE_OK && i < n_locks; i++) {
                char **v = NULL;
                size_t n = 0;

                r = lock_digits(s, lock_ids[i], self_id, &v, &n);
                if (r < 0)
                        return r;
                rule = codes_check(c, (const char *const *) v, n);
                digits_free(v, n);
        }
        if (ret_rule)
                *ret_rule = rule;
        return rule == CODE_RULE_OK ? 0 : -EINVAL;
}

/* The locks a credential is assigned to (desired present only, or all). */
static int credential_locks(Store *s, int64_t credential_id, bool present_only, int64_t **ret, size_t *ret_n)
{
        struct store_assignment *a = NULL;
        size_t n = 0, k = 0;
        int64_t *v;
        int r;

        r = store_assignment_list(s, 0, &a, &n);
        if (r < 0)
                return r;
        v = calloc(n + 1, sizeof *v);
        if (!v) {
                store_assignment_array_free(a, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (a[i].credential_id == credential_id && (!present_only || streq(a[i].desired, "present")))
                        v[k++] = a[i].lock_id;
        store_assignment_array_free(a, n);
        *ret = v;
        *ret_n = k;
        return 0;
}

int codes_user_add(Store *s, const char *name, int64_t *ret_id)
{
        int64_t id = store_user_add(s, name, 0);

        if (id < 0)
                return (int) id;
        if (ret_id)
                *ret_id = id;
        return 0;
}

static int run_in_transaction(Store *s, int (*fn)(Store *s, void *userdata), void *userdata)
{
        int r;

        r = store_begin(s);
        if (r < 0)
                return r;
        r = fn(s, userdata);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}

struct add_args {
        int64_t user_id;
        const LockCode *code;
        const int64_t *lock_ids;
        size_t n_locks;
        int64_t id;
};

static int do_code_add(Store *s, void *userdata)
{
        struct add_args *a = userdata;
        struct store_credential cred;
        int64_t id;
        int r;

        store_credential_init(&cred);
        credential_from_code(&cred, a->code);
        cred.user_id = a->user_id;
        id = store_credential_add(s, &cred);
        if (id < 0)
                return (int) id;
        for (size_t i = 0; i < a->n_locks; i++) {
                r = store_assignment_set(s, a->lock_ids[i], id, "present", 0);
                if (r < 0)
                        return r;
        }
        a->id = id;
        return 0;
}

static int code_add(Store *s, int64_t user_id, const LockCode *c, const int64_t *lock_ids, size_t n_locks,
                    CodeRule *ret_rule, int64_t *ret_id, bool own_transaction)
{
        struct add_args a = { .user_id = user_id, .code = c, .lock_ids = lock_ids, .n_locks = n_locks };
        int r;

        r = check_on_locks(s, c, 0, lock_ids, n_locks, ret_rule);
        if (r < 0)
                return r;
        if (codes_user_is_withdrawn(s, user_id))
                return -ENOENT;
        r = own_transaction ? run_in_transaction(s, do_code_add, &a) : do_code_add(s, &a);
        if (r < 0)
                return r;
        if (ret_id)
                *ret_id = a.id;
        return 0;
}

int codes_code_add(Store *s, int64_t user_id, const LockCode *c, const int64_t *lock_ids, size_t n_locks,
                   CodeRule *ret_rule, int64_t *ret_id)
{
        return code_add(s, user_id, c, lock_ids, n_locks, ret_rule, ret_id, true);
}

int codes_code_add_in_transaction(Store *s, int64_t user_id, const LockCode *c, const int64_t *lock_ids,
                                  size_t n_locks, CodeRule *ret_rule, int64_t *ret_id)
{
        return code_add(s, user_id, c, lock_ids, n_locks, ret_rule, ret_id, false);
}

int codes_code_update(Store *s, int64_t credential_id, const LockCode *c, CodeRule *ret_rule)
{
        _cleanup_free_ int64_t *locks = NULL;
        struct store_credential cred, upd;
        LockCode want = *c;
        size_t n = 0;
        int64_t rev;
        int r;

        if (codes_code_is_withdrawn(s, credential_id))
                return -ENOENT;
        r = store_credential_get(s, credential_id, &cred);
        if (r < 0)
                return r;
        if (want.digits[0] == '\0') {
                LockCode old;
                r = codes_code_from_store(&cred, &old);
                if (r >= 0)
                        memcpy(want.digits, old.digits, sizeof want.digits);
                explicit_bzero(&old, sizeof old);
        }
        if (r >= 0)
                r = credential_locks(s, credential_id, true, &locks, &n);
        if (r >= 0)
                r = check_on_locks(s, &want, credential_id, locks, n, ret_rule);
        if (r >= 0) {
                upd = cred;
                credential_from_code(&upd, &want);
                rev = store_credential_update(s, &upd);
                if (rev < 0)
                        r = (int) rev;
        }
        explicit_bzero(&want, sizeof want);
        store_credential_done(&cred);
        return r < 0 ? r : 0;
}

int codes_code_set_enabled(Store *s, int64_t credential_id, bool enabled)
{
        struct store_credential cred;
        LockCode c;
        int r;

        r = store_credential_get(s, credential_id, &cred);
        if (r < 0)
                return r;
        r = codes_code_from_store(&cred, &c);
        store_credential_done(&cred);
        if (r < 0)
                return r;
        c.enabled = enabled;
        r = codes_code_update(s, credential_id, &c, NULL);
        explicit_bzero(&c, sizeof c);
        return r;
}

int codes_code_assign(Store *s, int64_t credential_id, int64_t lock_id, bool present, CodeRule *ret_rule)
{
        struct store_credential cred;
        LockCode c;
        int r;

        if (present) {
                if (codes_code_is_withdrawn(s, credential_id))
                        return -ENOENT;
                r = store_credential_get(s, credential_id, &cred);
                if (r < 0)
                        return r;
                r = codes_code_from_store(&cred, &c);
                store_credential_done(&cred);
                if (r >= 0)
                        r = check_on_locks(s, &c, credential_id, &lock_id, 1, ret_rule);
                explicit_bzero(&c, sizeof c);
                if (r < 0)
                        return r;
        }
        return store_assignment_set(s, lock_id, credential_id, present ? "present" : "absent", 0);
}

struct remove_args {
        int64_t credential_id;
        const int64_t *locks;
        size_t n;
};

static int do_code_remove(Store *s, void *userdata)
{
        struct remove_args *a = userdata;
        int r;

        if (a->n == 0)
                return store_credential_remove(s, a->credential_id);
        for (size_t i = 0; i < a->n; i++) {
                r = store_assignment_set(s, a->locks[i], a->credential_id, "absent", 0);
                if (r < 0)
                        return r;
        }
        return set_withdrawn(s, "credential", a->credential_id, true);
}

int codes_code_remove(Store *s, int64_t credential_id)
{
        _cleanup_free_ int64_t *locks = NULL;
        struct store_credential cred;
        size_t n = 0;
        int r;

        r = store_credential_get(s, credential_id, &cred);
        if (r < 0)
                return r;
        store_credential_done(&cred);
        r = credential_locks(s, credential_id, false, &locks, &n);
        if (r < 0)
                return r;
        return run_in_transaction(s, do_code_remove, &(struct remove_args){ credential_id, locks, n });
}

int codes_user_remove(Store *s, int64_t user_id)
{
        struct store_credential *a = NULL;
        size_t n = 0;
        bool waiting = false;
        int r;

        r = store_credential_list(s, user_id, &a, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = codes_code_remove(s, a[i].id);
                if (r >= 0 && codes_code_is_withdrawn(s, a[i].id))
                        waiting = true;
        }
        store_credential_array_free(a, n);
        if (r < 0)
                return r;
        if (waiting)
                return set_withdrawn(s, "user", user_id, true);
        return store_user_remove(s, user_id);
}

int codes_forget_assignment(Store *s, int64_t lock_id, int64_t credential_id)
{
        _cleanup_free_ int64_t *locks = NULL;
        struct store_credential cred, *others = NULL;
        size_t n = 0, n_others = 0;
        int64_t user_id;
        int r;

        r = store_assignment_remove(s, lock_id, credential_id);
        if (r < 0 && r != -ENOENT)
                return r;
        if (!codes_code_is_withdrawn(s, credential_id))
                return 0;
        r = credential_locks(s, credential_id, false, &locks, &n);
        if (r < 0 || n > 0)
                return r;
        r = store_credential_get(s, credential_id, &cred);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        user_id = cred.user_id;
        store_credential_done(&cred);
        r = store_credential_remove(s, credential_id);
        if (r < 0)
                return r;
        (void) set_withdrawn(s, "credential", credential_id, false);

        if (!codes_user_is_withdrawn(s, user_id))
                return 0;
        r = store_credential_list(s, user_id, &others, &n_others);
        if (r < 0)
                return r;
        store_credential_array_free(others, n_others);
        if (n_others > 0)
                return 0;
        r = store_user_remove(s, user_id);
        if (r < 0 && r != -ENOENT)
                return r;
        (void) set_withdrawn(s, "user", user_id, false);
        return 0;
}

int codes_desired_load(Store *s, int64_t lock_id, CodeDesired **ret, size_t *ret_n)
{
        struct store_assignment *a = NULL;
        CodeDesired *d;
        size_t n = 0, k = 0;
        int r;

        r = store_assignment_list(s, lock_id, &a, &n);
        if (r < 0)
                return r;
        d = calloc(n + 1, sizeof *d);
        if (!d) {
                store_assignment_array_free(a, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                struct store_credential cred;
                CodeDesired *x = &d[k];

                r = store_credential_get(s, a[i].credential_id, &cred);
                if (r < 0)
                        goto fail;
                r = cred.code_sealed_size > 0 ? codes_code_from_store(&cred, &x->code) : -EBADMSG;
                if (r < 0) {
                        /* A row we cannot read as a code: never written, never removed. */
                        lock_code_init(&x->code);
                        snprintf(x->code.name, sizeof x->code.name, "%s", strempty(cred.name));
                        x->unreadable = true;
                }
                x->credential_id = a[i].credential_id;
                x->present = streq(a[i].desired, "present");
                x->code.id = a[i].lock_code_id;
                x->revision = cred.revision;
                x->synced_revision = a[i].synced_revision;
                store_credential_done(&cred);
                k++;
        }
        store_assignment_array_free(a, n);
        *ret = d;
        *ret_n = k;
        return 0;
fail:
        explicit_bzero(d, (n + 1) * sizeof *d);
        free(d);
        store_assignment_array_free(a, n);
        return r;
}

int codes_attribute(Store *s, int64_t lock_id, int lock_code_id, CodeAttribution *ret)
{
        struct store_assignment *a = NULL;
        struct store_user *users = NULL;
        struct store_credential cred;
        size_t n = 0, n_users = 0;
        int64_t cred_id = 0;
        const char *user = NULL;
        int r;

        if (lock_code_id < 0)
                return -ENOENT;
        r = store_assignment_list(s, lock_id, &a, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (a[i].lock_code_id == lock_code_id)
                        cred_id = a[i].credential_id;
        store_assignment_array_free(a, n);
        if (cred_id <= 0)
                return -ENOENT;
        r = store_credential_get(s, cred_id, &cred);
        if (r < 0)
                return r;
        r = store_user_list(s, &users, &n_users);
        if (r >= 0) {
                for (size_t i = 0; i < n_users; i++)
                        if (users[i].id == cred.user_id)
                                user = users[i].name;
                *ret = (CodeAttribution){ .user_id = cred.user_id, .credential_id = cred_id };
                if (!user)
                        snprintf(ret->actor, sizeof ret->actor, "%s", cred.name);
                else if (streq(user, cred.name))
                        snprintf(ret->actor, sizeof ret->actor, "%s", user);
                else
                        snprintf(ret->actor, sizeof ret->actor, "%s (%s)", user, cred.name);
        }
        store_user_array_free(users, n_users);
        store_credential_done(&cred);
        return r < 0 ? r : 0;
}

int codes_attribute_detail(Store *s, int64_t lock_id, const char *detail_json, CodeAttribution *ret)
{
        json_object *o, *v;
        int id = -1;

        if (!detail_json)
                return -ENOENT;
        o = json_tokener_parse(detail_json);
        if (o && json_object_object_get_ex(o, "code_id", &v) && json_object_is_type(v, json_type_int))
                id = json_object_get_int(v);
        json_object_put(o);
        return id < 0 ? -ENOENT : codes_attribute(s, lock_id, id, ret);
}

/* ---- re-provisioning across an unpairing ---- */

static void unpaired_key(char *buf, size_t size, const char *address)
{
        snprintf(buf, size, "codes.unpaired.%s", address);
}

int codes_lock_unpairing(Store *s, int64_t lock_id, const char *address)
{
        struct store_assignment *a = NULL;
        char key[64], *list = NULL;
        size_t n = 0, len = 0;
        FILE *f;
        int r;

        r = store_assignment_list(s, lock_id, &a, &n);
        if (r < 0)
                return r;
        f = open_memstream(&list, &len);
        if (!f) {
                store_assignment_array_free(a, n);
                return -ENOMEM;
        }
        for (size_t i = 0, k = 0; i < n; i++)
                if (streq(a[i].desired, "present"))
                        fprintf(f, "%s%" PRIi64, k++ > 0 ? "," : "", a[i].credential_id);
        fclose(f);
        store_assignment_array_free(a, n);
        unpaired_key(key, sizeof key, address);
        r = store_meta_set(s, key, strempty(list));
        free(list);
        if (r >= 0) {
                char imported[64];

                snprintf(imported, sizeof imported, "codes.imported.lock.%" PRIi64, lock_id);
                (void) store_meta_set(s, imported, "0"); /* the id is never used again; keep it short */
        }
        return r;
}

int codes_lock_reprovision(Store *s, int64_t lock_id, const char *address, size_t *ret_n)
{
        _cleanup_free_ char *list = NULL;
        char key[64];
        size_t k = 0;
        int r;

        *ret_n = 0;
        unpaired_key(key, sizeof key, address);
        if (store_meta_get(s, key, &list) < 0 || !list || !list[0])
                return 0;
        for (char *p = list, *end; *p; p = *end ? end + 1 : end) {
                int64_t id = strtoll(p, &end, 10);
                struct store_credential cred;

                if (end == p)
                        break;
                if (codes_code_is_withdrawn(s, id) || store_credential_get(s, id, &cred) < 0)
                        continue;
                store_credential_done(&cred);
                r = store_assignment_set(s, lock_id, id, "present", 0);
                if (r >= 0)
                        k++;
        }
        (void) store_meta_set(s, key, "");
        *ret_n = k;
        return 0;
}
