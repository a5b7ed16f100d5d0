/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Users, their credentials (keypad codes, the desired state) and the assignments of
 * credentials to locks (what each lock should hold and how far it agrees).
 *
 * Invariant kept here: a change of a credential's desired state bumps its revision and
 * puts every assignment of it back to "pending" in the same transaction, so no lock is
 * ever shown as synced with a version of a code it has not confirmed.
 */

#include <stdio.h>

#include "store-internal.h"

/* ---- users ---- */

void store_user_done(struct store_user *u)
{
        if (!u)
                return;
        free(u->name);
        u->name = NULL;
}

void store_user_array_free(struct store_user *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                store_user_done(&a[i]);
        free(a);
}

int64_t store_user_add(Store *s, const char *name, uint64_t now_usec)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int64_t new_id;
        int r;

        if (now_usec == 0)
                now_usec = store_now_usec();
        r = store_stmt(s, STMT_USER_ADD,
                       "INSERT INTO users (name, created_usec, updated_usec) VALUES (?1, ?2, ?2)", &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, name);
        sqlite3_bind_int64(st, 2, (int64_t) now_usec);
        r = store_step_insert(s, st, &new_id);
        if (r < 0)
                return r;
        return new_id;
}

static int user_from_row(sqlite3_stmt *st, struct store_user *u)
{
        u->id = sqlite3_column_int64(st, 0);
        u->created_usec = (uint64_t) sqlite3_column_int64(st, 2);
        u->updated_usec = (uint64_t) sqlite3_column_int64(st, 3);
        return store_col_strdup(st, 1, &u->name);
}

int store_user_get_by_name(Store *s, const char *name, struct store_user *ret)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_stmt(s, STMT_USER_GET_NAME,
                       "SELECT id, name, created_usec, updated_usec FROM users WHERE name = ?1", &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, name);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc);
        return user_from_row(st, ret);
}

int store_user_rename(Store *s, int64_t id, const char *name, uint64_t now_usec)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_USER_RENAME, "UPDATE users SET name = ?2, updated_usec = ?3 WHERE id = ?1",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        store_bind_text(st, 2, name);
        sqlite3_bind_int64(st, 3, (int64_t) (now_usec > 0 ? now_usec : store_now_usec()));
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        if (r == STORE_KEPT)
                return 0; /* runs with the kept changes */
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_user_remove(Store *s, int64_t id)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_USER_REMOVE, "DELETE FROM users WHERE id = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        if (r == STORE_KEPT)
                return 0; /* runs with the kept changes */
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

static int user_row(Store *s, sqlite3_stmt *st, void *u)
{
        return user_from_row(st, u);
}

int store_user_list(Store *s, struct store_user **ret, size_t *ret_n)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        struct store_user *a = NULL;
        size_t n = 0;
        int r;

        r = store_stmt(s, STMT_USER_LIST,
                       "SELECT id, name, created_usec, updated_usec FROM users ORDER BY name", &st);
        if (r < 0)
                return r;
        r = store_collect(s, st, sizeof(*a), user_row, (void **) &a, &n);
        if (r < 0) {
                store_user_array_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* ---- credentials ---- */

#define CRED_COLUMNS                                                                                \
        "id, user_id, name, code_sealed, key_version, enabled, valid_from_usec, valid_until_usec, " \
        "weekdays, "                                                                                \
        "time_from_min, time_until_min, revision, created_usec, updated_usec"

void store_credential_init(struct store_credential *c)
{
        *c = (struct store_credential){
                .enabled = true,
                .weekdays = 0x7f,
                .time_from_min = -1,
                .time_until_min = -1,
        };
}

void store_credential_done(struct store_credential *c)
{
        if (!c)
                return;
        free(c->name);
        secret_free_wipe(c->code_sealed, c->code_sealed_size);
        store_credential_init(c);
}

void store_credential_array_free(struct store_credential *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                store_credential_done(&a[i]);
        free(a);
}

/* Binds name .. time_until_min to ?2..?10. */
static void bind_credential(sqlite3_stmt *st, const struct store_credential *c)
{
        store_bind_text(st, 2, c->name);
        store_bind_blob(st, 3, c->code_sealed_size > 0 ? c->code_sealed : NULL, c->code_sealed_size);
        sqlite3_bind_int64(st, 4, c->key_version);
        sqlite3_bind_int(st, 5, c->enabled);
        store_bind_int64_opt(st, 6, (int64_t) c->valid_from_usec, c->valid_from_usec > 0);
        store_bind_int64_opt(st, 7, (int64_t) c->valid_until_usec, c->valid_until_usec > 0);
        sqlite3_bind_int64(st, 8, c->weekdays);
        store_bind_int64_opt(st, 9, c->time_from_min, c->time_from_min >= 0);
        store_bind_int64_opt(st, 10, c->time_until_min, c->time_until_min >= 0);
}

static int credential_from_row(sqlite3_stmt *st, struct store_credential *c)
{
        int r;

        store_credential_init(c);
        c->id = sqlite3_column_int64(st, 0);
        c->user_id = sqlite3_column_int64(st, 1);
        c->key_version = (unsigned) sqlite3_column_int64(st, 4);
        c->enabled = sqlite3_column_int(st, 5) != 0;
        c->valid_from_usec = (uint64_t) store_col_int64_or(st, 6, 0);
        c->valid_until_usec = (uint64_t) store_col_int64_or(st, 7, 0);
        c->weekdays = (unsigned) sqlite3_column_int(st, 8);
        c->time_from_min = (int) store_col_int64_or(st, 9, -1);
        c->time_until_min = (int) store_col_int64_or(st, 10, -1);
        c->revision = sqlite3_column_int64(st, 11);
        c->created_usec = (uint64_t) sqlite3_column_int64(st, 12);
        c->updated_usec = (uint64_t) sqlite3_column_int64(st, 13);
        if ((r = store_col_strdup(st, 2, &c->name)) < 0 ||
            (r = store_col_blobdup(st, 3, &c->code_sealed, &c->code_sealed_size)) < 0) {
                store_credential_done(c);
                return r;
        }
        return 0;
}

static const char *const credential_secret_columns[] = { "code_sealed" };

/* With a key, the code becomes plaintext (see store-secret.c). */
static int credential_open_secret(Store *s, struct store_credential *c)
{
        uint8_t **values[] = { &c->code_sealed };
        size_t *sizes[] = { &c->code_sealed_size };
        char what[64];

        snprintf(what, sizeof what, "credential %s", strna(c->name));
        return store_open_values(s, "credentials", c->id, what, &c->key_version, values, sizes,
                                 credential_secret_columns, 1);
}

/* In a list, a code that does not open is left out (NULL, 0) and key_version stays non-zero. */
static void credential_drop_secret(struct store_credential *c)
{
        secret_free_wipe(c->code_sealed, c->code_sealed_size);
        c->code_sealed = NULL;
        c->code_sealed_size = 0;
}

/* With a key, *w = c with its code sealed for row id (free w->code_sealed when s->key). */
static int credential_seal(Store *s, const struct store_credential *c, int64_t id,
                           struct store_credential *w)
{
        int r;

        *w = *c;
        if (!s->key)
                return 0;
        if (c->key_version != 0)
                return -EINVAL;
        r = store_seal_value(s, "credentials", credential_secret_columns[0], id, c->code_sealed,
                             c->code_sealed_size, &w->code_sealed, &w->code_sealed_size);
        if (r < 0)
                return r;
        w->key_version = s->key_version;
        return 0;
}

static int64_t credential_insert(Store *s, const struct store_credential *c, int64_t id)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        uint64_t now = c->created_usec > 0 ? c->created_usec : store_now_usec();
        int64_t new_id;
        int r;

        r = store_stmt(s, STMT_CRED_ADD,
                       "INSERT INTO credentials (user_id, name, code_sealed, key_version, enabled, "
                       "valid_from_usec, "
                       "valid_until_usec, weekdays, time_from_min, time_until_min, created_usec, "
                       "updated_usec, id) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, c->user_id);
        bind_credential(st, c);
        sqlite3_bind_int64(st, 11, (int64_t) now);
        store_bind_int64_opt(st, 12, id, id > 0);
        r = store_step_insert(s, st, &new_id);
        if (r < 0)
                return r;
        return new_id;
}

int64_t store_credential_add(Store *s, const struct store_credential *c)
{
        struct store_credential w;
        int64_t id;
        int r;

        if (!s->key)
                return credential_insert(s, c, 0);
        /* The row id is part of what the code is sealed for: choose it first. */
        r = store_savepoint(s, "credential_add");
        if (r < 0)
                return r;
        id = store_next_id(s, "credentials");
        if (id > 0) {
                r = credential_seal(s, c, id, &w);
                if (r >= 0) {
                        id = credential_insert(s, &w, id);
                        free(w.code_sealed);
                } else
                        id = r;
        }
        r = store_savepoint_end(s, "credential_add", id < 0 ? (int) id : 0);
        return r < 0 ? r : id;
}

int store_credential_get(Store *s, int64_t id, struct store_credential *ret)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_stmt(s, STMT_CRED_GET, "SELECT " CRED_COLUMNS " FROM credentials WHERE id = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc);
        r = credential_from_row(st, ret);
        if (r < 0)
                return r;
        r = credential_open_secret(s, ret);
        if (r < 0)
                store_credential_done(ret);
        return r;
}

/* A code whose digits do not open is still listed, without them. */
static int credential_row(Store *s, sqlite3_stmt *st, void *element)
{
        int r = credential_from_row(st, element);

        if (r >= 0 && credential_open_secret(s, element) < 0)
                credential_drop_secret(element);
        return r;
}

int store_credential_list(Store *s, int64_t user_id, struct store_credential **ret, size_t *ret_n)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        struct store_credential *a = NULL;
        size_t n = 0;
        int r;

        r = store_stmt(s, STMT_CRED_LIST,
                       "SELECT " CRED_COLUMNS
                       " FROM credentials WHERE (?1 IS NULL OR user_id = ?1) ORDER BY id",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64_opt(st, 1, user_id, user_id > 0);
        r = store_collect(s, st, sizeof(*a), credential_row, (void **) &a, &n);
        if (r < 0) {
                store_credential_array_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int64_t store_credential_update(Store *s, const struct store_credential *c)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL, *un = NULL;
        struct store_credential w;
        uint64_t now = c->updated_usec > 0 ? c->updated_usec : store_now_usec();
        int64_t revision;
        int rc, r;

        /* Its new revision is read back: not something to keep for later. */
        if (store_keeping(s))
                return -ENOSPC;
        r = store_stmt(s, STMT_CRED_UPDATE,
                       "UPDATE credentials SET name = ?2, code_sealed = ?3, key_version = ?4, enabled = ?5, "
                       "valid_from_usec = ?6, valid_until_usec = ?7, weekdays = ?8, time_from_min = ?9, "
                       "time_until_min = ?10, revision = revision + 1, updated_usec = ?11 WHERE id = ?1 "
                       "RETURNING revision",
                       &st);
        if (r < 0)
                return r;
        r = store_stmt(s, STMT_CRED_UNSYNC,
                       "UPDATE credential_locks SET state = 'pending', reason = NULL, attempts = 0, "
                       "next_attempt_usec = NULL, updated_usec = ?2 WHERE credential_id = ?1",
                       &un);
        if (r < 0)
                return r;

        r = credential_seal(s, c, c->id, &w);
        if (r < 0)
                return r;
        r = store_savepoint(s, "credential_update");
        if (r < 0)
                goto fail_sealed;
        sqlite3_bind_int64(st, 1, c->id);
        bind_credential(st, &w);
        sqlite3_bind_int64(st, 11, (int64_t) now);
        rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                r = rc == SQLITE_DONE ? -ENOENT : store_error(s, rc);
                goto fail;
        }
        revision = sqlite3_column_int64(st, 0);
        r = store_step_done(s, st); /* finish the statement so the row is written */
        if (r < 0)
                goto fail;

        sqlite3_bind_int64(un, 1, c->id);
        sqlite3_bind_int64(un, 2, (int64_t) now);
        r = store_step_done(s, un);
        if (r < 0)
                goto fail;

        r = store_savepoint_end(s, "credential_update", 0);
        if (r < 0)
                goto fail;
        if (s->key)
                free(w.code_sealed);
        return revision;
fail:
        sqlite3_reset(st);
        (void) store_savepoint_end(s, "credential_update", r);
fail_sealed:
        if (s->key)
                free(w.code_sealed);
        return r;
}

int store_credential_remove(Store *s, int64_t id)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_CRED_REMOVE, "DELETE FROM credentials WHERE id = ?1", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, id);
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        if (r == STORE_KEPT)
                return 0; /* runs with the kept changes */
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

/* ---- assignments ---- */

#define ASSIGN_COLUMNS                                                                              \
        "lock_id, credential_id, desired, state, reason, lock_code_id, synced_revision, reported, " \
        "last_verified_usec, attempts, next_attempt_usec, updated_usec"

void store_assignment_done(struct store_assignment *a)
{
        if (!a)
                return;
        free(a->desired);
        free(a->state);
        free(a->reason);
        free(a->reported);
        *a = (struct store_assignment){ .lock_code_id = -1 };
}

void store_assignment_array_free(struct store_assignment *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                store_assignment_done(&a[i]);
        free(a);
}

static int assignment_from_row(sqlite3_stmt *st, struct store_assignment *a)
{
        int r;

        *a = (struct store_assignment){
                .lock_id = sqlite3_column_int64(st, 0),
                .credential_id = sqlite3_column_int64(st, 1),
                .lock_code_id = (int) store_col_int64_or(st, 5, -1),
                .synced_revision = store_col_int64_or(st, 6, 0),
                .last_verified_usec = (uint64_t) store_col_int64_or(st, 8, 0),
                .attempts = (unsigned) sqlite3_column_int64(st, 9),
                .next_attempt_usec = (uint64_t) store_col_int64_or(st, 10, 0),
                .updated_usec = (uint64_t) sqlite3_column_int64(st, 11),
        };
        if ((r = store_col_strdup(st, 2, &a->desired)) < 0 || (r = store_col_strdup(st, 3, &a->state)) < 0 ||
            (r = store_col_strdup(st, 4, &a->reason)) < 0 ||
            (r = store_col_strdup(st, 7, &a->reported)) < 0) {
                store_assignment_done(a);
                return r;
        }
        return 0;
}

int store_assignment_set(Store *s, int64_t lock_id, int64_t credential_id, const char *desired,
                         uint64_t now_usec)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_ASSIGN_SET,
                       "INSERT INTO credential_locks (lock_id, credential_id, desired, state, updated_usec) "
                       "VALUES (?1, ?2, ?3, 'pending', ?4) "
                       "ON CONFLICT (lock_id, credential_id) DO UPDATE SET desired = excluded.desired, "
                       "state = 'pending', reason = NULL, attempts = 0, next_attempt_usec = NULL, "
                       "updated_usec = excluded.updated_usec",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, lock_id);
        sqlite3_bind_int64(st, 2, credential_id);
        store_bind_text(st, 3, desired);
        sqlite3_bind_int64(st, 4, (int64_t) (now_usec > 0 ? now_usec : store_now_usec()));
        r = store_step_done(s, st);
        return r < 0 ? r : 0;
}

int store_assignment_update_sync(Store *s, const struct store_assignment *a)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_ASSIGN_UPDATE,
                       "UPDATE credential_locks SET state = ?3, reason = ?4, lock_code_id = ?5, "
                       "synced_revision = ?6, reported = ?7, last_verified_usec = ?8, attempts = ?9, "
                       "next_attempt_usec = ?10, updated_usec = ?11 WHERE lock_id = ?1 AND credential_id = "
                       "?2",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, a->lock_id);
        sqlite3_bind_int64(st, 2, a->credential_id);
        store_bind_text(st, 3, a->state);
        store_bind_text(st, 4, a->reason);
        store_bind_int64_opt(st, 5, a->lock_code_id, a->lock_code_id >= 0);
        store_bind_int64_opt(st, 6, a->synced_revision, a->synced_revision > 0);
        store_bind_text(st, 7, a->reported);
        store_bind_int64_opt(st, 8, (int64_t) a->last_verified_usec, a->last_verified_usec > 0);
        sqlite3_bind_int64(st, 9, a->attempts);
        store_bind_int64_opt(st, 10, (int64_t) a->next_attempt_usec, a->next_attempt_usec > 0);
        sqlite3_bind_int64(st, 11, (int64_t) (a->updated_usec > 0 ? a->updated_usec : store_now_usec()));
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        if (r == STORE_KEPT)
                return 0; /* runs with the kept changes */
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_assignment_get(Store *s, int64_t lock_id, int64_t credential_id, struct store_assignment *ret)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_stmt(s, STMT_ASSIGN_GET,
                       "SELECT " ASSIGN_COLUMNS
                       " FROM credential_locks WHERE lock_id = ?1 AND credential_id = ?2",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, lock_id);
        sqlite3_bind_int64(st, 2, credential_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc);
        return assignment_from_row(st, ret);
}

static int assignment_row(Store *s, sqlite3_stmt *st, void *a)
{
        return assignment_from_row(st, a);
}

int store_assignment_list(Store *s, int64_t lock_id, struct store_assignment **ret, size_t *ret_n)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        struct store_assignment *a = NULL;
        size_t n = 0;
        int r;

        r = store_stmt(s, STMT_ASSIGN_LIST,
                       "SELECT " ASSIGN_COLUMNS " FROM credential_locks WHERE (?1 IS NULL OR lock_id = ?1) "
                       "ORDER BY lock_id, credential_id",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64_opt(st, 1, lock_id, lock_id > 0);
        r = store_collect(s, st, sizeof(*a), assignment_row, (void **) &a, &n);
        if (r < 0) {
                store_assignment_array_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int store_assignment_remove(Store *s, int64_t lock_id, int64_t credential_id)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_ASSIGN_REMOVE,
                       "DELETE FROM credential_locks WHERE lock_id = ?1 AND credential_id = ?2", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, lock_id);
        sqlite3_bind_int64(st, 2, credential_id);
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        if (r == STORE_KEPT)
                return 0; /* runs with the kept changes */
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}
