/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Shared by the store's files. Statements are prepared once per Store, on first use, into
 * a slot named below, and reset (bindings cleared) when the variable holding them leaves
 * scope:
 *
 *      _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
 *      r = store_stmt(s, STMT_LOCK_GET, "SELECT ...", &st);
 */

#include <sqlite3.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "lockhub/secret.h"
#include "lockhub/store.h"

enum store_stmt_id {
        STMT_META_GET,
        STMT_META_SET,
        STMT_LOCK_ADD,
        STMT_LOCK_GET_ID,
        STMT_LOCK_GET_NAME,
        STMT_LOCK_GET_ADDRESS,
        STMT_LOCK_LIST,
        STMT_LOCK_UPDATE,
        STMT_LOCK_REMOVE,
        STMT_EVENT_APPEND,
        STMT_EVENT_FIND_LOG,
        STMT_EVENT_LIST,
        STMT_SAMPLE_APPEND,
        STMT_SAMPLE_LIST,
        STMT_RECOVERY_APPEND,
        STMT_RECOVERY_LIST,
        STMT_FIRMWARE_LATEST,
        STMT_FIRMWARE_ADD,
        STMT_SNAPSHOT_ADD,
        STMT_SNAPSHOT_LATEST,
        STMT_USER_ADD,
        STMT_USER_GET_NAME,
        STMT_USER_RENAME,
        STMT_USER_REMOVE,
        STMT_USER_LIST,
        STMT_CRED_ADD,
        STMT_CRED_GET,
        STMT_CRED_LIST,
        STMT_CRED_UPDATE,
        STMT_CRED_UNSYNC,
        STMT_CRED_REMOVE,
        STMT_ASSIGN_SET,
        STMT_ASSIGN_UPDATE,
        STMT_ASSIGN_GET,
        STMT_ASSIGN_LIST,
        STMT_ASSIGN_REMOVE,
        STMT_RET_EVENTS_CUTOFF,
        STMT_RET_EVENTS_COUNT,
        STMT_RET_EVENTS_AGE,
        STMT_RET_SAMPLES_CUTOFF,
        STMT_RET_SAMPLES_COUNT,
        STMT_RET_SAMPLES_AGE,
        STMT_RET_RECOVERY_CUTOFF,
        STMT_RET_RECOVERY_COUNT,
        STMT_RET_RECOVERY_AGE,
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        _STMT_MAX,
};

struct Store {
        sqlite3 *db;
        char *path;
        sqlite3_stmt *stmts[_STMT_MAX];
        SecretKey *key;       /* NULL: secrets are passed through as given (store-secret.c) */
        unsigned key_version; /* of key, as meta records it */
        bool accepted;        /* store_open() succeeded: a clean close may leave the marker */
        /* Write batching (store.c, store_set_event()): */
        sd_event *event;
        sd_event_source *commit_defer;
        sd_event_source *retry_timer;
        bool batch_open;  /* a transaction opened by the first write of this loop iteration */
        bool explicit_tx; /* store_begin() .. store_commit()/store_rollback() */
        int commit_error; /* the last failed commit (-ENOSPC ...), 0 once one succeeded */
        uint64_t n_commit_failures;
        char **replay; /* SQL of the batch's changes, and while failing of every kept one */
        size_t n_replay, n_replay_allocated;
        size_t n_batch_unkept; /* changes of the open batch that did not fit in replay */
        uint64_t n_lost;       /* changes not kept during this outage (full list, no memory) */
        bool lost_logged, lost_samples_logged;
        size_t savepoint_mark[8]; /* n_replay at each open store_savepoint() */
        unsigned n_savepoints;
        bool failing;     /* commits fail (full disk ...): said once, and once when it ends */
        bool seen_damage; /* SQLite reported corruption while running */
        store_write_state_fn write_state_fn;
        void *write_state_userdata;
};

/* Translates rc, logs SQLite's own message at debug level, returns -errno. */
int store_error(Store *s, int rc);

int store_stmt(Store *s, enum store_stmt_id id, const char *sql, sqlite3_stmt **ret);
static inline void store_stmt_resetp(sqlite3_stmt **st)
{
        if (*st) {
                sqlite3_reset(*st);
                sqlite3_clear_bindings(*st);
        }
}

/* Steps a statement that returns no rows: 0 when it ran, STORE_KEPT when it did not run but was
 * kept for the retry (the batch hit a full disk, or commits are failing; see store.c), so
 * sqlite3_changes() and sqlite3_last_insert_rowid() say nothing about it; -errno. */
#define STORE_KEPT 1
int store_step_done(Store *s, sqlite3_stmt *st);
/* For an INSERT whose caller needs the new row's id: never kept. While commits fail, or when
 * this very statement hits the full disk (the batch before it is kept), -ENOSPC. */
int store_step_insert(Store *s, sqlite3_stmt *st, int64_t *ret_id);
/* True while writes of the event loop are kept rather than run (commits are failing). */
bool store_keeping(const Store *s);
/* Forgets the kept changes from index n on (a savepoint rolled back). */
void store_replay_truncate(Store *s, size_t n);

uint64_t store_now_usec(void);

/* Binders: NULL / "absent" values become SQL NULL. */
int store_bind_text(sqlite3_stmt *st, int i, const char *v);
int store_bind_blob(sqlite3_stmt *st, int i, const void *v, size_t n);
int store_bind_int64_opt(sqlite3_stmt *st, int i, int64_t v, bool present);

/* Column readers: copies text/blob (NULL stays NULL); -ENOMEM on allocation failure. */
int store_col_strdup(sqlite3_stmt *st, int i, char **ret);
int store_col_blobdup(sqlite3_stmt *st, int i, uint8_t **ret, size_t *ret_size);
static inline int64_t store_col_int64_or(sqlite3_stmt *st, int i, int64_t absent)
{
        return sqlite3_column_type(st, i) == SQLITE_NULL ? absent : sqlite3_column_int64(st, i);
}

/* Grows *array (of element size `size`) so that it can hold n + 1 elements. */
int store_array_grow(void **array, size_t *allocated, size_t n, size_t size);

/* Reads every row of st into *array (NULL at first, *n 0), elements of `size` bytes. Each
 * element is zeroed and counted in *n before from_row fills it, so on failure the caller's
 * array free releases every element, a half-filled one included. */
typedef int (*store_row_fn)(Store *s, sqlite3_stmt *st, void *element);
int store_collect(Store *s, sqlite3_stmt *st, size_t size, store_row_fn from_row, void **array, size_t *n);

/* ---- sealing (store-secret.c) ---- */

/* Seals plain (NULL or n 0: *ret NULL) for table.column of row id with s->key, version
 * s->key_version. Only with a key. */
int store_seal_value(Store *s, const char *table, const char *column, int64_t id, const uint8_t *plain,
                     size_t n, uint8_t **ret, size_t *ret_n);
/* Opens the sealed members of one row in place: *values[i] (of *sizes[i]) become plaintext
 * and *key_version 0. Without a key, or when *key_version is 0, nothing changes. A blob that
 * does not open: logged (naming `what`, never the bytes), -EBADMSG; members already opened
 * hold plaintext then, so the caller wipes them. */
int store_open_values(Store *s, const char *table, int64_t id, const char *what, unsigned *key_version,
                      uint8_t **values[], size_t *sizes[], const char *const columns[], size_t n_columns);
/* The id the next row of table gets (max + 1, what SQLite would choose), so that a secret
 * can be sealed for its row before the INSERT. Use inside a savepoint. */
int64_t store_next_id(Store *s, const char *table);
int store_savepoint(Store *s, const char *name);
/* Releases the savepoint when r >= 0, else rolls back to it; returns r or the error. */
int store_savepoint_end(Store *s, const char *name, int r);
