/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * History: events, samples, recovery attempts, firmware versions and settings snapshots.
 *
 * Events imported from a lock's activity log carry the lock's log index. The database
 * keeps (lock, log epoch, log index) unique and the append ignores a second copy, so a
 * log sync that overlaps the previous one (or is repeated after a crash) never doubles an
 * event. The epoch is the lock's current one, read inside the INSERT.
 */

#include "store-internal.h"

void store_event_init(struct store_event *e)
{
        *e = (struct store_event){
                .auth_id = -1,
                .log_index = -1,
        };
}

static void event_done(struct store_event *e)
{
        free(e->kind);
        free(e->source);
        free(e->actor);
        free(e->detail);
}

void store_event_array_free(struct store_event *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                event_done(&a[i]);
        free(a);
}

int store_event_append(Store *s, const struct store_event *e, int64_t *ret_id)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, r;

        if (e->log_index >= 0 && e->lock_id <= 0)
                return -EINVAL;

        r = store_stmt(s, STMT_EVENT_APPEND,
                       "INSERT INTO events (ts_usec, lock_time_usec, lock_id, kind, source, actor, auth_id, "
                       "user_id, credential_id, log_epoch, log_index, detail) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
                       "CASE WHEN ?10 IS NULL THEN NULL "
                       "ELSE coalesce((SELECT log_epoch FROM locks WHERE id = ?3), 0) END, ?10, ?11) "
                       "ON CONFLICT (lock_id, log_epoch, log_index) WHERE log_index IS NOT NULL DO NOTHING",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, (int64_t) (e->ts_usec > 0 ? e->ts_usec : store_now_usec()));
        store_bind_int64_opt(st, 2, (int64_t) e->lock_time_usec, e->lock_time_usec > 0);
        store_bind_int64_opt(st, 3, e->lock_id, e->lock_id > 0);
        store_bind_text(st, 4, e->kind);
        store_bind_text(st, 5, e->source);
        store_bind_text(st, 6, e->actor);
        store_bind_int64_opt(st, 7, e->auth_id, e->auth_id >= 0);
        store_bind_int64_opt(st, 8, e->user_id, e->user_id > 0);
        store_bind_int64_opt(st, 9, e->credential_id, e->credential_id > 0);
        store_bind_int64_opt(st, 10, e->log_index, e->log_index >= 0);
        store_bind_text(st, 11, e->detail);
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        if (r == STORE_KEPT) {
                /* Not run: neither its id nor whether it is a duplicate is known yet. */
                if (ret_id)
                        *ret_id = 0;
                return 1;
        }
        if (sqlite3_changes(s->db) > 0) {
                if (ret_id)
                        *ret_id = sqlite3_last_insert_rowid(s->db);
                return 1;
        }

        /* A duplicate of a log entry we already have: hand back its id. */
        if (ret_id) {
                _cleanup_(store_stmt_resetp) sqlite3_stmt *q = NULL;

                r = store_stmt(s, STMT_EVENT_FIND_LOG,
                               "SELECT e.id FROM events e JOIN locks l ON l.id = e.lock_id "
                               "WHERE e.lock_id = ?1 AND e.log_epoch = l.log_epoch AND e.log_index = ?2",
                               &q);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(q, 1, e->lock_id);
                sqlite3_bind_int64(q, 2, e->log_index);
                rc = sqlite3_step(q);
                if (rc != SQLITE_ROW)
                        return rc == SQLITE_DONE ? -ENOENT : store_error(s, rc);
                *ret_id = sqlite3_column_int64(q, 0);
        }
        return 0;
}

static int event_from_row(sqlite3_stmt *st, struct store_event *e)
{
        int r;

        store_event_init(e);
        e->id = sqlite3_column_int64(st, 0);
        e->ts_usec = (uint64_t) sqlite3_column_int64(st, 1);
        e->lock_time_usec = (uint64_t) store_col_int64_or(st, 2, 0);
        e->lock_id = store_col_int64_or(st, 3, 0);
        e->auth_id = store_col_int64_or(st, 7, -1);
        e->user_id = store_col_int64_or(st, 8, 0);
        e->credential_id = store_col_int64_or(st, 9, 0);
        e->log_epoch = store_col_int64_or(st, 10, 0);
        e->log_index = store_col_int64_or(st, 11, -1);
        if ((r = store_col_strdup(st, 4, &e->kind)) < 0 || (r = store_col_strdup(st, 5, &e->source)) < 0 ||
            (r = store_col_strdup(st, 6, &e->actor)) < 0 || (r = store_col_strdup(st, 12, &e->detail)) < 0)
                return r; /* the caller frees what was copied (store_collect() counted e) */
        return 0;
}

static int event_row(Store *s, sqlite3_stmt *st, void *e)
{
        return event_from_row(st, e);
}

int store_event_list(Store *s, const struct store_event_filter *f, struct store_event **ret, size_t *ret_n)
{
        static const struct store_event_filter all = {};
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        struct store_event *a = NULL;
        size_t n = 0;
        int r;

        if (!f)
                f = &all;
        r = store_stmt(s, STMT_EVENT_LIST,
                       "SELECT * FROM (SELECT id, ts_usec, lock_time_usec, lock_id, kind, source, actor, "
                       "auth_id, "
                       "user_id, credential_id, log_epoch, log_index, detail FROM events "
                       "WHERE (?1 IS NULL OR lock_id = ?1) AND ts_usec >= ?2 AND (?3 IS NULL OR ts_usec < "
                       "?3) "
                       "AND id > ?4 AND (?5 IS NULL OR kind = ?5) "
                       "ORDER BY ts_usec DESC, id DESC LIMIT ?6) ORDER BY ts_usec, id",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64_opt(st, 1, f->lock_id, f->lock_id > 0);
        sqlite3_bind_int64(st, 2, (int64_t) f->since_usec);
        store_bind_int64_opt(st, 3, (int64_t) f->until_usec, f->until_usec > 0);
        sqlite3_bind_int64(st, 4, f->after_id);
        store_bind_text(st, 5, f->kind);
        sqlite3_bind_int64(st, 6, f->limit > 0 ? (int64_t) f->limit : -1);

        r = store_collect(s, st, sizeof(*a), event_row, (void **) &a, &n);
        if (r < 0) {
                store_event_array_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* ---- samples ---- */

int64_t store_sample_append(Store *s, int64_t lock_id, const char *kind, uint64_t ts_usec, double value)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_SAMPLE_APPEND,
                       "INSERT INTO samples (lock_id, ts_usec, kind, value) VALUES (?1, ?2, ?3, ?4)", &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, lock_id);
        sqlite3_bind_int64(st, 2, (int64_t) (ts_usec > 0 ? ts_usec : store_now_usec()));
        store_bind_text(st, 3, kind);
        sqlite3_bind_double(st, 4, value);
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        return r == STORE_KEPT ? 0 : sqlite3_last_insert_rowid(s->db); /* 0: kept, no id yet */
}

void store_sample_array_free(struct store_sample *a, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(a[i].kind);
        free(a);
}

static int sample_row(Store *s, sqlite3_stmt *st, void *element)
{
        struct store_sample *x = element;

        x->id = sqlite3_column_int64(st, 0);
        x->lock_id = sqlite3_column_int64(st, 1);
        x->ts_usec = (uint64_t) sqlite3_column_int64(st, 2);
        x->value = sqlite3_column_double(st, 4);
        return store_col_strdup(st, 3, &x->kind);
}

int store_sample_list(Store *s, int64_t lock_id, const char *kind, uint64_t since_usec, unsigned limit,
                      struct store_sample **ret, size_t *ret_n)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        struct store_sample *a = NULL;
        size_t n = 0;
        int r;

        r = store_stmt(s, STMT_SAMPLE_LIST,
                       "SELECT * FROM (SELECT id, lock_id, ts_usec, kind, value FROM samples "
                       "WHERE lock_id = ?1 AND (?2 IS NULL OR kind = ?2) AND ts_usec >= ?3 "
                       "ORDER BY ts_usec DESC, id DESC LIMIT ?4) ORDER BY ts_usec, id",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, lock_id);
        store_bind_text(st, 2, kind);
        sqlite3_bind_int64(st, 3, (int64_t) since_usec);
        sqlite3_bind_int64(st, 4, limit > 0 ? (int64_t) limit : -1);
        r = store_collect(s, st, sizeof(*a), sample_row, (void **) &a, &n);
        if (r < 0) {
                store_sample_array_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* ---- recovery attempts ---- */

int64_t store_recovery_append(Store *s, const struct store_recovery_attempt *a)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_RECOVERY_APPEND,
                       "INSERT INTO recovery_attempts (lock_id, adapter, ts_usec, step, attempt, outcome, "
                       "duration_usec, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64_opt(st, 1, a->lock_id, a->lock_id > 0);
        store_bind_text(st, 2, a->adapter);
        sqlite3_bind_int64(st, 3, (int64_t) (a->ts_usec > 0 ? a->ts_usec : store_now_usec()));
        store_bind_text(st, 4, a->step);
        sqlite3_bind_int64(st, 5, a->attempt > 0 ? a->attempt : 1);
        store_bind_text(st, 6, a->outcome);
        sqlite3_bind_int64(st, 7, (int64_t) a->duration_usec);
        store_bind_text(st, 8, a->detail);
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        return r == STORE_KEPT ? 0 : sqlite3_last_insert_rowid(s->db); /* 0: kept, no id yet */
}

void store_recovery_array_free(struct store_recovery_attempt *a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(a[i].adapter);
                free(a[i].step);
                free(a[i].outcome);
                free(a[i].detail);
        }
        free(a);
}

static int recovery_row(Store *s, sqlite3_stmt *st, void *element)
{
        struct store_recovery_attempt *x = element;
        int r;

        x->id = sqlite3_column_int64(st, 0);
        x->lock_id = store_col_int64_or(st, 1, 0);
        x->ts_usec = (uint64_t) sqlite3_column_int64(st, 3);
        x->attempt = (unsigned) sqlite3_column_int64(st, 5);
        x->duration_usec = (uint64_t) sqlite3_column_int64(st, 7);
        if ((r = store_col_strdup(st, 2, &x->adapter)) < 0 || (r = store_col_strdup(st, 4, &x->step)) < 0 ||
            (r = store_col_strdup(st, 6, &x->outcome)) < 0)
                return r;
        return store_col_strdup(st, 8, &x->detail);
}

int store_recovery_list(Store *s, int64_t lock_id, unsigned limit, struct store_recovery_attempt **ret,
                        size_t *ret_n)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        struct store_recovery_attempt *a = NULL;
        size_t n = 0;
        int r;

        r = store_stmt(s, STMT_RECOVERY_LIST,
                       "SELECT * FROM (SELECT id, lock_id, adapter, ts_usec, step, attempt, outcome, "
                       "duration_usec, "
                       "detail FROM recovery_attempts WHERE (?1 IS NULL OR lock_id = ?1) "
                       "ORDER BY ts_usec DESC, id DESC LIMIT ?2) ORDER BY ts_usec, id",
                       &st);
        if (r < 0)
                return r;
        store_bind_int64_opt(st, 1, lock_id, lock_id > 0);
        sqlite3_bind_int64(st, 2, limit > 0 ? (int64_t) limit : -1);
        r = store_collect(s, st, sizeof(*a), recovery_row, (void **) &a, &n);
        if (r < 0) {
                store_recovery_array_free(a, n);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* ---- firmware history ---- */

static bool streq_null(const char *a, const char *b)
{
        return a && b ? streq(a, b) : a == b;
}

int store_firmware_record(Store *s, int64_t lock_id, uint64_t ts_usec, const char *firmware,
                          const char *hardware)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *q = NULL, *st = NULL;
        int rc, r;

        if (!firmware)
                return -EINVAL;
        r = store_stmt(s, STMT_FIRMWARE_LATEST,
                       "SELECT firmware, hardware FROM firmware_history WHERE lock_id = ?1 "
                       "ORDER BY ts_usec DESC, id DESC LIMIT 1",
                       &q);
        if (r < 0)
                return r;
        sqlite3_bind_int64(q, 1, lock_id);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
                if (streq_null((const char *) sqlite3_column_text(q, 0), firmware) &&
                    streq_null((const char *) sqlite3_column_text(q, 1), hardware))
                        return 0;
        } else if (rc != SQLITE_DONE)
                return store_error(s, rc);

        r = store_stmt(s, STMT_FIRMWARE_ADD,
                       "INSERT INTO firmware_history (lock_id, ts_usec, firmware, hardware) VALUES (?1, ?2, "
                       "?3, ?4)",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, lock_id);
        sqlite3_bind_int64(st, 2, (int64_t) (ts_usec > 0 ? ts_usec : store_now_usec()));
        store_bind_text(st, 3, firmware);
        store_bind_text(st, 4, hardware);
        r = store_step_done(s, st);
        return r < 0 ? r : 1;
}

/* ---- settings snapshots ---- */

int64_t store_snapshot_add(Store *s, int64_t lock_id, const char *kind, const char *reason,
                           int64_t config_update_count, uint64_t ts_usec, const char *json)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_SNAPSHOT_ADD,
                       "INSERT INTO lock_snapshots (lock_id, lock_address, ts_usec, kind, reason, "
                       "config_update_count, data) "
                       "VALUES (?1, (SELECT address FROM locks WHERE id = ?1), ?2, ?3, ?4, ?5, ?6)",
                       &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, lock_id);
        sqlite3_bind_int64(st, 2, (int64_t) (ts_usec > 0 ? ts_usec : store_now_usec()));
        store_bind_text(st, 3, kind);
        store_bind_text(st, 4, reason);
        store_bind_int64_opt(st, 5, config_update_count, config_update_count >= 0);
        store_bind_text(st, 6, json);
        r = store_step_done(s, st);
        if (r == STORE_KEPT)
                return 0; /* kept, no id yet */
        if (r == -EINVAL) {
                /* lock_address NOT NULL fails first when the lock does not exist */
                struct store_lock l;
                if (store_lock_get(s, lock_id, &l) == -ENOENT)
                        return -ENOENT;
                store_lock_done(&l);
        }
        if (r < 0)
                return r;
        return sqlite3_last_insert_rowid(s->db);
}

int store_snapshot_latest(Store *s, const char *address, const char *kind, char **ret_json)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_stmt(s, STMT_SNAPSHOT_LATEST,
                       "SELECT data FROM lock_snapshots WHERE lock_address = ?1 AND kind = ?2 "
                       "ORDER BY ts_usec DESC, id DESC LIMIT 1",
                       &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, address);
        store_bind_text(st, 2, kind);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc);
        return store_col_strdup(st, 0, ret_json);
}
