/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Locks: one row per paired lock with its identity, pairing credentials (sealed with the
 * hub key when the store has one, see store-secret.c), log-sync position and last known state.
 */

#include <stdio.h>

#include "store-internal.h"

#define LOCK_COLUMNS                                                                                    \
        "id, name, address, protocol, device_type, model, firmware, hardware, adapter, uuid, auth_id, " \
        "app_id, id_type, ultra, shared_key_sealed, security_pin_sealed, key_version, needs_repair, "   \
        "config_update_count, log_synced_index, log_epoch, last_state, last_seen_usec, created_usec, "  \
        "paired_usec, updated_usec"

void store_lock_init(struct store_lock *l)
{
        *l = (struct store_lock){
                .device_type = -1,
                .auth_id = -1,
                .app_id = -1,
                .id_type = -1,
                .config_update_count = -1,
                .log_synced_index = -1,
        };
}

void store_lock_done(struct store_lock *l)
{
        if (!l)
                return;
        if (l->shared_key_sealed)
                explicit_bzero(l->shared_key_sealed, l->shared_key_sealed_size);
        if (l->security_pin_sealed)
                explicit_bzero(l->security_pin_sealed, l->security_pin_sealed_size);
        free(l->name);
        free(l->address);
        free(l->protocol);
        free(l->model);
        free(l->firmware);
        free(l->hardware);
        free(l->adapter);
        free(l->uuid);
        free(l->shared_key_sealed);
        free(l->security_pin_sealed);
        free(l->last_state);
        store_lock_init(l);
}

void store_lock_array_free(struct store_lock *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                store_lock_done(&a[i]);
        free(a);
}

/* Binds the members shared by INSERT and UPDATE to ?1..?23. */
static void bind_lock(sqlite3_stmt *st, const struct store_lock *l, uint64_t now)
{
        store_bind_text(st, 1, l->name);
        store_bind_text(st, 2, l->address);
        store_bind_text(st, 3, l->protocol ? l->protocol : "nuki");
        store_bind_int64_opt(st, 4, l->device_type, l->device_type >= 0);
        store_bind_text(st, 5, l->model);
        store_bind_text(st, 6, l->firmware);
        store_bind_text(st, 7, l->hardware);
        store_bind_text(st, 8, l->adapter);
        store_bind_blob(st, 9, l->uuid_size > 0 ? l->uuid : NULL, l->uuid_size);
        store_bind_int64_opt(st, 10, l->auth_id, l->auth_id >= 0);
        store_bind_int64_opt(st, 11, l->app_id, l->app_id >= 0);
        store_bind_int64_opt(st, 12, l->id_type, l->id_type >= 0);
        sqlite3_bind_int(st, 13, l->ultra);
        store_bind_blob(st, 14, l->shared_key_sealed_size > 0 ? l->shared_key_sealed : NULL,
                        l->shared_key_sealed_size);
        store_bind_blob(st, 15, l->security_pin_sealed_size > 0 ? l->security_pin_sealed : NULL,
                        l->security_pin_sealed_size);
        sqlite3_bind_int64(st, 16, l->key_version);
        sqlite3_bind_int(st, 17, l->needs_repair);
        store_bind_int64_opt(st, 18, l->config_update_count, l->config_update_count >= 0);
        store_bind_int64_opt(st, 19, l->log_synced_index, l->log_synced_index >= 0);
        store_bind_text(st, 20, l->last_state);
        store_bind_int64_opt(st, 21, (int64_t) l->last_seen_usec, l->last_seen_usec > 0);
        store_bind_int64_opt(st, 22, (int64_t) l->paired_usec, l->paired_usec > 0);
        sqlite3_bind_int64(st, 23, (int64_t) (l->updated_usec > 0 ? l->updated_usec : now));
}

static int lock_from_row(sqlite3_stmt *st, struct store_lock *ret)
{
        struct store_lock l;
        int r;

        store_lock_init(&l);
        l.id = sqlite3_column_int64(st, 0);
        if ((r = store_col_strdup(st, 1, &l.name)) < 0 || (r = store_col_strdup(st, 2, &l.address)) < 0 ||
            (r = store_col_strdup(st, 3, &l.protocol)) < 0 || (r = store_col_strdup(st, 5, &l.model)) < 0 ||
            (r = store_col_strdup(st, 6, &l.firmware)) < 0 ||
            (r = store_col_strdup(st, 7, &l.hardware)) < 0 ||
            (r = store_col_strdup(st, 8, &l.adapter)) < 0 ||
            (r = store_col_blobdup(st, 9, &l.uuid, &l.uuid_size)) < 0 ||
            (r = store_col_blobdup(st, 14, &l.shared_key_sealed, &l.shared_key_sealed_size)) < 0 ||
            (r = store_col_blobdup(st, 15, &l.security_pin_sealed, &l.security_pin_sealed_size)) < 0 ||
            (r = store_col_strdup(st, 21, &l.last_state)) < 0) {
                store_lock_done(&l);
                return r;
        }
        l.device_type = (int) store_col_int64_or(st, 4, -1);
        l.auth_id = store_col_int64_or(st, 10, -1);
        l.app_id = store_col_int64_or(st, 11, -1);
        l.id_type = (int) store_col_int64_or(st, 12, -1);
        l.ultra = sqlite3_column_int(st, 13) != 0;
        l.key_version = (unsigned) sqlite3_column_int64(st, 16);
        l.needs_repair = sqlite3_column_int(st, 17) != 0;
        l.config_update_count = store_col_int64_or(st, 18, -1);
        l.log_synced_index = store_col_int64_or(st, 19, -1);
        l.log_epoch = sqlite3_column_int64(st, 20);
        l.last_seen_usec = (uint64_t) store_col_int64_or(st, 22, 0);
        l.created_usec = (uint64_t) sqlite3_column_int64(st, 23);
        l.paired_usec = (uint64_t) store_col_int64_or(st, 24, 0);
        l.updated_usec = (uint64_t) sqlite3_column_int64(st, 25);
        *ret = l;
        return 0;
}

static const char *const lock_secret_columns[] = { "shared_key_sealed", "security_pin_sealed" };

/* With a key, the row's secrets become plaintext (see store-secret.c). */
static int lock_open_secrets(Store *s, struct store_lock *l)
{
        uint8_t **values[] = { &l->shared_key_sealed, &l->security_pin_sealed };
        size_t *sizes[] = { &l->shared_key_sealed_size, &l->security_pin_sealed_size };
        char what[96];

        snprintf(what, sizeof what, "lock %s", strna(l->name));
        return store_open_values(s, "locks", l->id, what, &l->key_version, values, sizes,
                                 lock_secret_columns, ELEMENTSOF(lock_secret_columns));
}

/* In a list, a row whose secrets do not open keeps its place, without them: key_version
 * stays non-zero, which every user of the credentials takes as "unusable, re-pair". */
static void lock_drop_secrets(struct store_lock *l)
{
        if (l->shared_key_sealed)
                explicit_bzero(l->shared_key_sealed, l->shared_key_sealed_size);
        if (l->security_pin_sealed)
                explicit_bzero(l->security_pin_sealed, l->security_pin_sealed_size);
        free(l->shared_key_sealed);
        free(l->security_pin_sealed);
        l->shared_key_sealed = l->security_pin_sealed = NULL;
        l->shared_key_sealed_size = l->security_pin_sealed_size = 0;
}

/* With a key, *w = l with its secrets sealed for row id (free with lock_seal_done()).
 * Callers give plaintext: sealed bytes (key_version > 0) cannot be written back. */
static int lock_seal(Store *s, const struct store_lock *l, int64_t id, struct store_lock *w)
{
        int r;

        *w = *l;
        if (!s->key)
                return 0;
        if (l->key_version != 0)
                return -EINVAL;
        w->shared_key_sealed = w->security_pin_sealed = NULL;
        r = store_seal_value(s, "locks", lock_secret_columns[0], id, l->shared_key_sealed,
                             l->shared_key_sealed_size, &w->shared_key_sealed, &w->shared_key_sealed_size);
        if (r >= 0)
                r = store_seal_value(s, "locks", lock_secret_columns[1], id, l->security_pin_sealed,
                                     l->security_pin_sealed_size, &w->security_pin_sealed,
                                     &w->security_pin_sealed_size);
        if (r < 0) {
                free(w->shared_key_sealed);
                return r;
        }
        w->key_version = s->key_version;
        return 0;
}

static void lock_seal_done(Store *s, struct store_lock *w)
{
        if (!s->key)
                return;
        free(w->shared_key_sealed);
        free(w->security_pin_sealed);
}

static int64_t lock_insert(Store *s, const struct store_lock *l, int64_t id)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        uint64_t now = store_now_usec();
        int64_t new_id;
        int r;

        r = store_stmt(s, STMT_LOCK_ADD,
                       "INSERT INTO locks (name, address, protocol, device_type, model, firmware, hardware, "
                       "adapter, uuid, auth_id, app_id, id_type, ultra, shared_key_sealed, "
                       "security_pin_sealed, "
                       "key_version, needs_repair, config_update_count, log_synced_index, last_state, "
                       "last_seen_usec, paired_usec, updated_usec, created_usec, id) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, "
                       "?18, "
                       "?19, ?20, ?21, ?22, ?23, ?24, ?25)",
                       &st);
        if (r < 0)
                return r;
        bind_lock(st, l, now);
        sqlite3_bind_int64(st, 24, (int64_t) (l->created_usec > 0 ? l->created_usec : now));
        store_bind_int64_opt(st, 25, id, id > 0);
        r = store_step_insert(s, st, &new_id);
        if (r < 0)
                return r;
        return new_id;
}

int64_t store_lock_add(Store *s, const struct store_lock *l)
{
        struct store_lock w;
        int64_t id;
        int r;

        if (!s->key)
                return lock_insert(s, l, 0);
        /* The row id is part of what the secrets are sealed for: choose it first. */
        r = store_savepoint(s, "lock_add");
        if (r < 0)
                return r;
        id = store_next_id(s, "locks");
        if (id > 0) {
                r = lock_seal(s, l, id, &w);
                if (r >= 0) {
                        id = lock_insert(s, &w, id);
                        lock_seal_done(s, &w);
                } else
                        id = r;
        }
        r = store_savepoint_end(s, "lock_add", id < 0 ? (int) id : 0);
        return r < 0 ? r : id;
}

static int lock_get(Store *s, enum store_stmt_id id, const char *sql, const char *key_text, int64_t key_id,
                    struct store_lock *ret)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_stmt(s, id, sql, &st);
        if (r < 0)
                return r;
        if (key_text)
                store_bind_text(st, 1, key_text);
        else
                sqlite3_bind_int64(st, 1, key_id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc);
        r = lock_from_row(st, ret);
        if (r < 0)
                return r;
        r = lock_open_secrets(s, ret);
        if (r < 0)
                store_lock_done(ret);
        return r;
}

int store_lock_get(Store *s, int64_t id, struct store_lock *ret)
{
        return lock_get(s, STMT_LOCK_GET_ID, "SELECT " LOCK_COLUMNS " FROM locks WHERE id = ?1", NULL, id,
                        ret);
}

int store_lock_get_by_name(Store *s, const char *name, struct store_lock *ret)
{
        if (!name)
                return -EINVAL;
        return lock_get(s, STMT_LOCK_GET_NAME, "SELECT " LOCK_COLUMNS " FROM locks WHERE name = ?1", name, 0,
                        ret);
}

int store_lock_get_by_address(Store *s, const char *address, struct store_lock *ret)
{
        if (!address)
                return -EINVAL;
        return lock_get(s, STMT_LOCK_GET_ADDRESS, "SELECT " LOCK_COLUMNS " FROM locks WHERE address = ?1",
                        address, 0, ret);
}

/* A lock whose secrets do not open (wrong key, damaged row) is still listed, without them. */
static int lock_row(Store *s, sqlite3_stmt *st, void *element)
{
        int r = lock_from_row(st, element);

        if (r >= 0 && lock_open_secrets(s, element) < 0)
                lock_drop_secrets(element);
        return r;
}

int store_lock_list(Store *s, struct store_lock **ret, size_t *ret_n)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        struct store_lock *a = NULL;
        size_t n = 0;
        int r;

        r = store_stmt(s, STMT_LOCK_LIST, "SELECT " LOCK_COLUMNS " FROM locks ORDER BY name", &st);
        if (r < 0)
                return r;
        r = store_collect(s, st, sizeof(*a), lock_row, (void **) &a, &n);
        if (r < 0) {
                store_lock_array_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

int store_lock_update(Store *s, const struct store_lock *l)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        struct store_lock w;
        int r;

        r = store_stmt(s, STMT_LOCK_UPDATE,
                       "UPDATE locks SET name = ?1, address = ?2, protocol = ?3, device_type = ?4, model = "
                       "?5, "
                       "firmware = ?6, hardware = ?7, adapter = ?8, uuid = ?9, auth_id = ?10, app_id = ?11, "
                       "id_type = ?12, ultra = ?13, shared_key_sealed = ?14, security_pin_sealed = ?15, "
                       "key_version = ?16, needs_repair = ?17, config_update_count = ?18, "
                       "log_synced_index = ?19, last_state = ?20, last_seen_usec = ?21, paired_usec = ?22, "
                       "updated_usec = ?23 WHERE id = ?24",
                       &st);
        if (r < 0)
                return r;
        r = lock_seal(s, l, l->id, &w);
        if (r < 0)
                return r;
        bind_lock(st, &w, store_now_usec());
        sqlite3_bind_int64(st, 24, l->id);
        r = store_step_done(s, st);
        lock_seal_done(s, &w);
        if (r < 0)
                return r;
        if (r == STORE_KEPT)
                return 0; /* runs with the kept changes */
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

int store_lock_remove(Store *s, int64_t id)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_LOCK_REMOVE, "DELETE FROM locks WHERE id = ?1", &st);
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
