/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store: opening the database, migrating it, translating SQLite's errors, the
 * per-Store statement cache, transactions, the meta table and retention.
 *
 * Opening is ordered so that a database we must refuse is never written to:
 *
 *   open(2) the file ourselves (O_CREAT|O_EXCL, 0600, fchmod against the umask)
 *     → read the 100-byte SQLite header with pread(2): "SQLite format 3", user_version
 *       (refuse: not a database → -EUCLEAN, newer schema → -EPROTONOSUPPORT)
 *     → tighten a looser mode to 0600 (the file, -wal and -shm)
 *     → close our fd (closing any fd drops the process's POSIX locks, so SQLite must not
 *       hold any yet) and sqlite3_open_v2() without SQLITE_OPEN_CREATE
 *     → user_version again through SQLite (a -wal left by a newer binary may hold a newer
 *       header than the main file; no checkpoint on close until accepted), PRAGMA quick_check
 *     → journal_mode=WAL, synchronous=FULL, foreign_keys=ON, ... (the first writes)
 *     → migrations, each in one transaction ending with PRAGMA user_version = N.
 *
 * The full quick_check runs only when the clean-close marker (STORE_FILENAME-clean) does
 * not name this very file; see marker_take().
 *
 * Write batching and the order of durability (store_set_event(), lockhubd only):
 *
 *   a source is dispatched (MQTT message, GATT indication, timer ...)
 *     → its first write runs BEGIN IMMEDIATE (store_stmt() sees a write statement in
 *       autocommit mode); further writes of the same dispatch join the transaction
 *     → its outgoing I/O that acknowledges nothing (the GATT write of the next command
 *       step, a D-Bus call to bluetoothd) leaves at once, before any fsync
 *     → anything that tells the outside world about a stored change commits first:
 *         - the Manager's first listener of every Lock calls store_flush() before the
 *           other listeners emit D-Bus PropertiesChanged or MQTT events (listeners are
 *           called from the lock's notify defer, just after the commit defer below, once
 *           for all the changes of the dispatch: lockhub/lock.h);
 *         - the MQTT bridge's publish() calls store_flush();
 *         - store_begin() (explicit transactions, whose callers reply after their commit)
 *           commits the batch first;
 *     → otherwise the commit defer source runs, at SD_EVENT_PRIORITY_IMPORTANT: before
 *       any other pending source of normal priority (the MQTT state flush, the next
 *       D-Bus message), so nothing dispatched later acts on uncommitted state.
 *   One COMMIT, one fsync (synchronous=FULL), for all the writes of the dispatch.
 *
 * A failed commit (full disk, I/O error) loses no change: every write of the batch is also
 * kept as its expanded SQL (sqlite3_expanded_sql()) until a commit succeeds. A statement that
 * hits a full disk inside the batch undoes the whole batch (SQLite may have undone that
 * statement only, or everything) and is kept with it; its caller gets STORE_KEPT, never a
 * stale sqlite3_changes() or rowid. From then on ("failing"):
 *   - the writes of the event loop are kept without being run, in their order (an INSERT
 *     whose caller needs the new id is refused with -ENOSPC instead, store_step_insert());
 *   - store_begin() refuses with the error: an explicit transaction would be written ahead
 *     of the kept changes (its callers report it; health records then go through the batch
 *     path and are kept), and retention waits;
 *   - only the retry timer (every 5 s) writes the kept changes, all in one transaction;
 *     readers do not see them before.
 * The list is bounded (STORE_REPLAY_MAX): samples stop being kept first, then new changes
 * (never an older one: later changes build on it); what is not kept is counted, logged when
 * it starts and when the outage ends, and reported by store_write_lost(). The failure is
 * logged once, its end once; the Manager reports it in the hub's health (store_write_error()).
 * Locks keep working meanwhile.
 *
 * Retention deletes by rowid ranges found through an index, `batch` rows per call, one
 * short transaction per call, so the event loop never waits long on it.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lockhub/log.h"
#include "store-internal.h"

#define STORE_BUSY_TIMEOUT_MS 1000
/* Where a damaged database is explained, step by step. */
#define STORE_RECOVERY_HINT                                                                              \
        "lockhubd will not use it. Stop lockhubd, move it (with its -wal and -shm) aside, then salvage " \
        "it into a new lockhub.db with sqlite3 (.recover, or .dump where .recover is missing) or start " \
        "with an empty database and restore a backup; keep lockhub.key. See \"Recovering from a "        \
        "damaged database\" in lockhubd(8)."
#define SQLITE_HEADER_SIZE         100
#define SQLITE_HEADER_USER_VERSION 60

int store_errno_from_sqlite(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_INTERRUPT:
                return -EINTR;
        case SQLITE_IOERR:
                return rc == SQLITE_IOERR_NOMEM ? -ENOMEM : -EIO;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EUCLEAN;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_RANGE:
                return -ERANGE;
        case SQLITE_MISMATCH:
        case SQLITE_MISUSE:
                return -EINVAL;
        case SQLITE_NOLFS:
                return -EFBIG;
        case SQLITE_CONSTRAINT:
                switch (rc) {
                case SQLITE_CONSTRAINT_UNIQUE:
                case SQLITE_CONSTRAINT_PRIMARYKEY:
                case SQLITE_CONSTRAINT_ROWID:
                        return -EEXIST;
                case SQLITE_CONSTRAINT_FOREIGNKEY:
                        return -ENOENT;
                default: /* CHECK, NOT NULL, DATATYPE, TRIGGER */
                        return -EINVAL;
                }
        default:
                return -EIO;
        }
}

int store_error(Store *s, int rc)
{
        int r = store_errno_from_sqlite(rc);

        if (r == 0)
                return 0;
        /* SQLite keeps the errno of the failed system call: more precise for these two. */
        if ((rc & 0xff) == SQLITE_CANTOPEN || (rc & 0xff) == SQLITE_IOERR) {
                int e = sqlite3_system_errno(s->db);
                if (e == ENOSPC || e == EDQUOT)
                        r = -ENOSPC;
                else if ((rc & 0xff) == SQLITE_CANTOPEN && e > 0)
                        r = -e;
        }
        if (r == -EUCLEAN)
                s->seen_damage = true; /* no clean-close marker: the next start checks it all */
        log_debug("SQLite error on %s: %s (%d)", s->path, sqlite3_errmsg(s->db),
                  sqlite3_extended_errcode(s->db));
        return r;
}

uint64_t store_now_usec(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

unsigned store_schema_version(void)
{
        return store_migrations_count > 0 ? store_migrations[store_migrations_count - 1].version : 0;
}

const char *store_path(const Store *s)
{
        return s->path;
}

static int exec(Store *s, const char *sql)
{
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : store_error(s, rc);
}

static int replay_add(Store *s, sqlite3_stmt *st);
static void batch_abort(Store *s, int r);

/* While commits fail, a write of the event loop (outside store_begin()) is not run: it is
 * kept for the retry timer, in its order. */
bool store_keeping(const Store *s)
{
        return s->event && s->failing && !s->explicit_tx;
}

int store_stmt(Store *s, enum store_stmt_id id, const char *sql, sqlite3_stmt **ret)
{
        int rc;

        if (!s->stmts[id]) {
                rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[id], NULL);
                if (rc != SQLITE_OK)
                        return store_error(s, rc);
        }
        *ret = s->stmts[id];
        if (s->event && !s->batch_open && !s->failing && !sqlite3_stmt_readonly(*ret) &&
            sqlite3_get_autocommit(s->db)) {
                int r = exec(s, "BEGIN IMMEDIATE");
                if (r < 0)
                        return r;
                s->batch_open = true;
                (void) sd_event_source_set_enabled(s->commit_defer, SD_EVENT_ONESHOT);
        }
        return 0;
}

static int step(Store *s, sqlite3_stmt *st, bool may_keep)
{
        bool write = !sqlite3_stmt_readonly(st);
        int rc, r;

        /* The batch's transaction is gone (SQLite rolls back on some errors): running this in
         * autocommit would write it ahead of the batch, or twice once the batch is replayed. */
        if (write && s->batch_open && sqlite3_get_autocommit(s->db))
                batch_abort(s, s->commit_error < 0 ? s->commit_error : -EIO);
        if (write && store_keeping(s)) {
                if (!may_keep)
                        return s->commit_error < 0 ? s->commit_error : -ENOSPC;
                r = replay_add(s, st);
                return r < 0 ? r : STORE_KEPT;
        }

        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
                if (s->batch_open && write && replay_add(s, st) < 0)
                        s->n_batch_unkept++;
                return 0;
        }
        r = store_error(s, rc);
        if (!write || !s->batch_open)
                return r;
        if (r == -ENOSPC) {
                /* SQLite may have undone only this statement, or the whole transaction: undo it
                 * all, keep the batch and this statement, and run nothing more until a retry
                 * wrote them. */
                int k = may_keep ? replay_add(s, st) : -ENOSPC;
                batch_abort(s, r);
                return k < 0 ? r : STORE_KEPT;
        }
        if (sqlite3_get_autocommit(s->db))
                batch_abort(s, r); /* the batch went with this statement; it is kept */
        return r;
}

int store_step_done(Store *s, sqlite3_stmt *st)
{
        return step(s, st, true);
}

int store_step_insert(Store *s, sqlite3_stmt *st, int64_t *ret_id)
{
        int r = step(s, st, false);

        if (r < 0)
                return r;
        *ret_id = sqlite3_last_insert_rowid(s->db);
        return 0;
}

int store_bind_text(sqlite3_stmt *st, int i, const char *v)
{
        return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int store_bind_blob(sqlite3_stmt *st, int i, const void *v, size_t n)
{
        return v ? sqlite3_bind_blob64(st, i, v, n, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int store_bind_int64_opt(sqlite3_stmt *st, int i, int64_t v, bool present)
{
        return present ? sqlite3_bind_int64(st, i, v) : sqlite3_bind_null(st, i);
}

int store_col_strdup(sqlite3_stmt *st, int i, char **ret)
{
        const unsigned char *t = sqlite3_column_text(st, i);

        if (!t) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup((const char *) t);
        return *ret ? 0 : -ENOMEM;
}

int store_col_blobdup(sqlite3_stmt *st, int i, uint8_t **ret, size_t *ret_size)
{
        const void *b = sqlite3_column_blob(st, i);
        int n = sqlite3_column_bytes(st, i);

        *ret = NULL;
        *ret_size = 0;
        if (!b || n <= 0)
                return 0;
        *ret = malloc((size_t) n);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, b, (size_t) n);
        *ret_size = (size_t) n;
        return 0;
}

int store_array_grow(void **array, size_t *allocated, size_t n, size_t size)
{
        size_t m;
        void *p;

        if (n < *allocated)
                return 0;
        m = MAX(*allocated * 2, (size_t) 8);
        p = reallocarray(*array, m, size);
        if (!p)
                return -ENOMEM;
        memset((char *) p + *allocated * size, 0, (m - *allocated) * size);
        *array = p;
        *allocated = m;
        return 0;
}

int store_collect(Store *s, sqlite3_stmt *st, size_t size, store_row_fn from_row, void **array, size_t *n)
{
        size_t allocated = *n;
        int rc, r;

        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                r = store_array_grow(array, &allocated, *n, size);
                if (r < 0)
                        return r;
                r = from_row(s, st, (char *) *array + (*n)++ * size);
                if (r < 0)
                        return r;
        }
        return rc == SQLITE_DONE ? 0 : store_error(s, rc);
}

int store_begin(Store *s)
{
        int r;

        /* An explicit transaction is committed by its caller: the open batch goes first. While
         * kept changes wait, it is refused: it would be written ahead of them. */
        (void) store_flush(s);
        if (s->event && s->failing)
                return s->commit_error < 0 ? s->commit_error : -ENOSPC;
        r = exec(s, "BEGIN IMMEDIATE");
        if (r >= 0)
                s->explicit_tx = true;
        return r;
}

int store_commit(Store *s)
{
        int r = exec(s, "COMMIT");

        s->explicit_tx = !sqlite3_get_autocommit(s->db);
        return r;
}

void store_rollback(Store *s)
{
        if (!sqlite3_get_autocommit(s->db))
                (void) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        s->explicit_tx = false;
}

/* ---- write batching ---- */

#define STORE_RETRY_USEC (5 * UINT64_C(1000000))
/* Kept changes at most; samples (measurements, not events) stop being kept at 3/4 of it, so
 * that events and the changes after them still fit. */
#define STORE_REPLAY_MAX         20000u
#define STORE_REPLAY_SAMPLES_MAX (STORE_REPLAY_MAX / 4 * 3)

static int replay_add(Store *s, sqlite3_stmt *st)
{
        bool sample = st == s->stmts[STMT_SAMPLE_APPEND];
        char *sql;

        if (s->n_replay >= (sample ? STORE_REPLAY_SAMPLES_MAX : STORE_REPLAY_MAX)) {
                /* The newest change goes, never an older one: later changes build on those. */
                if (sample ? !s->lost_samples_logged : !s->lost_logged)
                        log_error("Database %s: %zu changes are waiting for disk space; new %s are not "
                                  "kept from now on and will be missing from the database.",
                                  s->path, s->n_replay, sample ? "samples" : "changes");
                if (sample)
                        s->lost_samples_logged = true;
                else
                        s->lost_logged = true;
                s->n_lost++;
                return -ENOSPC;
        }
        if (store_array_grow((void **) &s->replay, &s->n_replay_allocated, s->n_replay, sizeof *s->replay) <
            0) {
                s->n_lost++;
                return -ENOMEM;
        }
        sql = sqlite3_expanded_sql(st);
        if (!sql) {
                s->n_lost++;
                return -ENOMEM;
        }
        s->replay[s->n_replay++] = sql;
        return 0;
}

static void replay_clear(Store *s)
{
        store_replay_truncate(s, 0);
        s->n_batch_unkept = 0;
}

void store_replay_truncate(Store *s, size_t n)
{
        for (size_t i = n; i < s->n_replay; i++)
                sqlite3_free(s->replay[i]);
        if (n < s->n_replay)
                s->n_replay = n;
}

/* Commits fail from now on (error r): said once, the retry timer armed. */
static void write_failed(Store *s, int r)
{
        bool was = s->failing;

        s->commit_error = r;
        s->n_commit_failures++;
        s->n_lost += s->n_batch_unkept;
        s->n_batch_unkept = 0;
        if (was)
                return;
        log_error_errno(r,
                        "Failed to write to database %s: %m. Locks keep working; %zu change(s) are kept in "
                        "memory and written when it works again (retrying every %u s).",
                        s->path, s->n_replay, (unsigned) (STORE_RETRY_USEC / 1000000));
        s->failing = true;
        if (s->write_state_fn)
                s->write_state_fn(s, r, s->write_state_userdata);
        if (s->retry_timer) {
                (void) sd_event_source_set_time_relative(s->retry_timer, STORE_RETRY_USEC);
                (void) sd_event_source_set_enabled(s->retry_timer, SD_EVENT_ONESHOT);
        }
}

/* The batch's changes are kept (replay), its transaction undone. */
static void batch_abort(Store *s, int r)
{
        s->batch_open = false;
        (void) sd_event_source_set_enabled(s->commit_defer, SD_EVENT_OFF);
        store_rollback(s);
        write_failed(s, r);
}

/* Writes the kept changes in one transaction, in their order. A change that no longer applies
 * (a constraint) is dropped with a warning; any other error leaves them all kept. */
static int replay_run(Store *s)
{
        size_t n_dropped = 0;
        int r;

        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        for (size_t i = 0; i < s->n_replay; i++) {
                int rc = sqlite3_exec(s->db, s->replay[i], NULL, NULL, NULL);
                if (rc == SQLITE_OK)
                        continue;
                r = store_error(s, rc);
                if (((rc & 0xff) == SQLITE_CONSTRAINT || (rc & 0xff) == SQLITE_MISMATCH ||
                     (rc & 0xff) == SQLITE_ERROR) &&
                    !sqlite3_get_autocommit(s->db)) {
                        log_warning("Database %s: a kept change no longer applies, dropped: %s", s->path,
                                    sqlite3_errmsg(s->db));
                        n_dropped++;
                        continue;
                }
                store_rollback(s);
                return r;
        }
        r = exec(s, "COMMIT");
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        log_notice("Database %s is writable again: %zu kept change(s) written.", s->path,
                   s->n_replay - n_dropped);
        if (s->n_lost > 0)
                log_error("Database %s: %" PRIu64 " change(s) could not be kept while it was full and are "
                          "lost.",
                          s->path, s->n_lost);
        replay_clear(s);
        s->commit_error = 0;
        s->n_lost = 0;
        s->lost_logged = s->lost_samples_logged = false;
        s->failing = false;
        (void) sd_event_source_set_enabled(s->retry_timer, SD_EVENT_OFF);
        if (s->write_state_fn)
                s->write_state_fn(s, 0, s->write_state_userdata);
        return 0;
}

int store_flush(Store *s)
{
        int r;

        if (!s || !s->batch_open)
                return 0;
        s->batch_open = false;
        (void) sd_event_source_set_enabled(s->commit_defer, SD_EVENT_OFF);

        if (sqlite3_get_autocommit(s->db))
                r = s->commit_error < 0 ? s->commit_error : -EIO; /* the transaction is gone */
        else
                r = exec(s, "COMMIT");
        if (r >= 0) {
                replay_clear(s);
                return 0;
        }
        store_rollback(s);
        write_failed(s, r);
        return r;
}

static int on_commit_defer(sd_event_source *es, void *userdata)
{
        (void) store_flush(userdata);
        return 0;
}

static int on_retry(sd_event_source *es, uint64_t usec, void *userdata)
{
        Store *s = userdata;
        int r;

        if (!s->failing)
                return 0;
        r = s->batch_open || s->explicit_tx ? -EBUSY : replay_run(s);
        if (r < 0) {
                if (r != -EBUSY) {
                        s->commit_error = r;
                        s->n_commit_failures++;
                }
                (void) sd_event_source_set_time_relative(es, STORE_RETRY_USEC);
                return sd_event_source_set_enabled(es, SD_EVENT_ONESHOT);
        }
        return 0;
}

int store_set_event(Store *s, sd_event *e, int64_t priority)
{
        int r;

        if (s->event)
                return -EBUSY;
        r = sd_event_add_defer(e, &s->commit_defer, on_commit_defer, s);
        if (r >= 0)
                r = sd_event_source_set_priority(s->commit_defer, priority);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->commit_defer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &s->retry_timer, CLOCK_MONOTONIC, STORE_RETRY_USEC,
                                               STORE_RETRY_USEC / 10, on_retry, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->retry_timer, SD_EVENT_OFF);
        if (r < 0) {
                s->commit_defer = sd_event_source_disable_unref(s->commit_defer);
                s->retry_timer = sd_event_source_disable_unref(s->retry_timer);
                return r;
        }
        s->event = sd_event_ref(e);
        return 0;
}

void store_set_write_state_callback(Store *s, store_write_state_fn fn, void *userdata)
{
        s->write_state_fn = fn;
        s->write_state_userdata = userdata;
}

uint64_t store_write_lost(const Store *s)
{
        return s ? s->n_lost : 0;
}

int store_write_error(const Store *s, size_t *ret_pending)
{
        if (ret_pending)
                *ret_pending = s ? s->n_replay : 0;
        return s ? s->commit_error : 0;
}

/* Runs a single-value query ("PRAGMA ...") and returns its first column as an integer. */
static int query_int(Store *s, const char *sql, int64_t *ret)
{
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        else
                r = rc == SQLITE_DONE ? -ENODATA : store_error(s, rc);
        sqlite3_finalize(st);
        return r;
}

static int query_text(Store *s, const char *sql, char **ret)
{
        sqlite3_stmt *st = NULL;
        int rc, r;

        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                r = store_col_strdup(st, 0, ret);
        else
                r = rc == SQLITE_DONE ? -ENODATA : store_error(s, rc);
        sqlite3_finalize(st);
        return r;
}

/* ---- the clean-close marker ----
 * STORE_FILENAME-clean holds the identity of the database file (inode, size, mtime in ns) as
 * a clean close left it: checkpointed, no -wal, its mtime set 2 s back (file times are as
 * coarse as a clock tick, so a write right after the close would otherwise keep it).
 * store_open() removes it before SQLite writes anything and skips the full PRAGMA
 * quick_check only when the file is still exactly that one; any writer in between
 * (sqlite3, a crash, a copy, a damaged page written back) changes the mtime, and then the
 * whole file is checked. */

static int marker_path(const Store *s, char **ret)
{
        return asprintf(ret, "%s-clean", s->path) < 0 ? -ENOMEM : 0;
}

static int marker_format(const struct stat *st, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%llu %llu %lld %ld\n", (unsigned long long) st->st_ino,
                         (unsigned long long) st->st_size, (long long) st->st_mtim.tv_sec,
                         (long) st->st_mtim.tv_nsec);
        return n > 0 && (size_t) n < size ? n : -EINVAL;
}

static void marker_write(const Store *s)
{
        _cleanup_free_ char *p = NULL, *wal = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        char buf[128];
        int n;

        if (marker_path(s, &p) < 0 || asprintf(&wal, "%s-wal", s->path) < 0 ||
            asprintf(&tmp, "%s.tmp", p) < 0)
                return;
        if (access(wal, F_OK) >= 0)
                return; /* not checkpointed: the next start checks */
        /* File times are coarse (a clock tick): a write right after this close could leave
         * the mtime as it is. Set back by 2 s, any later write moves it. */
        {
                struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT } };
                (void) clock_gettime(CLOCK_REALTIME, &ts[1]);
                ts[1].tv_sec -= 2;
                if (utimensat(AT_FDCWD, s->path, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return;
        }
        if (stat(s->path, &st) < 0)
                return;
        n = marker_format(&st, buf, sizeof buf);
        if (n < 0)
                return;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return;
        if (write(fd, buf, (size_t) n) != n || rename(tmp, p) < 0)
                (void) unlink(tmp);
}

/* True when the marker names this very file; the marker is gone afterwards either way. */
static bool marker_take(const Store *s, int fd)
{
        _cleanup_free_ char *p = NULL;
        _cleanup_close_ int mfd = -EBADF;
        char want[128], got[128] = {};
        struct stat st;
        ssize_t n;

        if (marker_path(s, &p) < 0)
                return false;
        mfd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (mfd < 0)
                return false;
        n = read(mfd, got, sizeof got - 1);
        /* Only a marker that is really gone may be trusted: it must not outlive this run. */
        if (unlink(p) < 0 || n <= 0 || fstat(fd, &st) < 0 || marker_format(&st, want, sizeof want) < 0)
                return false;
        return streq(want, got);
}

Store *store_free(Store *s)
{
        bool clean;

        if (!s)
                return NULL;
        if (s->batch_open)
                (void) store_flush(s);
        if (s->failing && s->db && !s->explicit_tx)
                (void) replay_run(s); /* a last try */
        if (s->n_replay > 0)
                log_error("Database %s: %zu change(s) could not be written before stopping and are lost.",
                          s->path, s->n_replay);
        clean = s->accepted && s->n_replay == 0 && !s->seen_damage && s->n_commit_failures == 0;
        replay_clear(s);
        free(s->replay);
        sd_event_source_disable_unref(s->commit_defer);
        sd_event_source_disable_unref(s->retry_timer);
        sd_event_unref(s->event);
        for (size_t i = 0; i < ELEMENTSOF(s->stmts); i++)
                sqlite3_finalize(s->stmts[i]);
        if (s->db) {
                store_rollback(s);
                if (sqlite3_close(s->db) != SQLITE_OK)
                        clean = false;
        }
        if (clean)
                marker_write(s);
        secret_key_free(s->key);
        free(s->path);
        free(s);
        return NULL;
}

static bool endswith_db(const char *p)
{
        size_t n = strlen(p);
        return n >= 3 && streq(p + n - 3, ".db");
}

/* An existing directory, or a path that does not exist and does not end in ".db", names the
 * state directory: a missing --state-dir must fail as "directory does not exist", never turn
 * into a database file of that name. */
static int resolve_path(const char *dir_or_path, char **ret)
{
        struct stat st;
        bool is_dir;

        if (stat(dir_or_path, &st) >= 0)
                is_dir = S_ISDIR(st.st_mode);
        else
                is_dir = !endswith_db(dir_or_path);
        if (is_dir) {
                if (asprintf(ret, "%s/%s", dir_or_path, STORE_FILENAME) < 0)
                        return -ENOMEM;
                return 0;
        }
        *ret = strdup(dir_or_path);
        return *ret ? 0 : -ENOMEM;
}

/* Tightens an existing file to 0600. Missing files are fine. */
static int fix_mode(const char *path, int fd, bool *ret_changed)
{
        _cleanup_close_ int own = -EBADF;
        struct stat st;

        *ret_changed = false;
        if (fd < 0) {
                own = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
                if (own < 0)
                        return errno == ENOENT ? 0 : -errno;
                fd = own;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((st.st_mode & 07777) == 0600)
                return 0;
        if (fchmod(fd, 0600) < 0)
                return -errno;
        *ret_changed = true;
        return 0;
}

/* Reads user_version from the header without SQLite; 0 for an empty file. */
static int header_version(int fd, const char *path, unsigned *ret)
{
        static const char magic[16] = "SQLite format 3";
        uint8_t h[SQLITE_HEADER_SIZE];
        struct stat st;
        ssize_t n;

        if (fstat(fd, &st) < 0)
                return log_error_errno(-errno, "Failed to stat database %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(-EINVAL, "Database %s is not a regular file.", path);
        if (st.st_size == 0) {
                *ret = 0;
                return 0;
        }
        n = pread(fd, h, sizeof(h), 0);
        if (n < 0)
                return log_error_errno(-errno, "Failed to read database %s: %m", path);
        if ((size_t) n < sizeof(h) || memcmp(h, magic, sizeof(magic)) != 0)
                return log_error_errno(-EUCLEAN,
                                       "Database %s is not an SQLite database (file is not a database). "
                                       "Move it away to start with an empty database (see \"Recovering "
                                       "from a damaged database\" in lockhubd(8)).",
                                       path);
        *ret = (unsigned) h[SQLITE_HEADER_USER_VERSION] << 24 |
               (unsigned) h[SQLITE_HEADER_USER_VERSION + 1] << 16 |
               (unsigned) h[SQLITE_HEADER_USER_VERSION + 2] << 8 |
               (unsigned) h[SQLITE_HEADER_USER_VERSION + 3];
        return 0;
}

static int refuse_newer(const char *path, unsigned version)
{
        return log_error_errno(-EPROTONOSUPPORT,
                               "Database %s has schema version %u, newer than the %u this lockhubd knows. "
                               "Refusing to touch it; run a newer lockhubd (or restore a backup).",
                               path, version, store_schema_version());
}

static const char *open_reason(int r)
{
        switch (r) {
        case -ENOENT:
                return "directory does not exist";
        case -EACCES:
        case -EPERM:
                return "permission denied";
        case -EROFS:
                return "read-only file system";
        case -ENOSPC:
                return "no space left on device";
        default:
                return NULL;
        }
}

static int open_file(const char *path, bool *ret_created)
{
        int fd;

        *ret_created = false;
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd >= 0)
                return fd;
        if (errno != ENOENT)
                goto fail;

        /* O_EXCL: whoever created it, it was not us if this fails; then just retry plain. */
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                goto fail;
        *ret_created = true;
        /* The umask may have taken bits away (even 0600 & ~0277 = 0400): set them explicitly. */
        if (fchmod(fd, 0600) < 0) {
                int r = -errno;
                safe_close(fd);
                (void) unlink(path);
                return log_error_errno(r, "Failed to set mode of database %s: %m", path);
        }
        return fd;

fail : {
        int r = -errno;
        const char *why = open_reason(r);
        if (why)
                return log_error_errno(r, "Failed to open database %s: %s", path, why);
        return log_error_errno(r, "Failed to open database %s: %m", path);
}
}

static int migrate(Store *s, unsigned current)
{
        unsigned prev = 0;
        int r;

        for (unsigned i = 0; i < store_migrations_count; i++) {
                const struct store_migration *m = &store_migrations[i];
                _cleanup_free_ char *set = NULL;
                int64_t fk_violation;

                if (m->version <= prev)
                        return log_error_errno(-EINVAL, "Migration %s is out of order.", m->name);
                prev = m->version;
                if (m->version <= current)
                        continue;

                if (asprintf(&set, "PRAGMA user_version = %u", m->version) < 0)
                        return log_error_errno(-ENOMEM, "Out of memory.");

                r = exec(s, "BEGIN IMMEDIATE");
                if (r < 0)
                        goto fail;
                r = exec(s, m->sql);
                if (r < 0)
                        goto fail;
                r = query_int(s, "PRAGMA foreign_key_check", &fk_violation);
                if (r != -ENODATA) {
                        if (r >= 0)
                                r = -EUCLEAN;
                        goto fail;
                }
                r = exec(s, set);
                if (r < 0)
                        goto fail;
                r = exec(s, "COMMIT");
                if (r < 0)
                        goto fail;
                log_info("Database %s migrated to schema version %u (%s).", s->path, m->version, m->name);
                continue;
        fail:
                log_error_errno(r, "Failed to apply migration %s to %s: %s", m->name, s->path,
                                sqlite3_errmsg(s->db));
                store_rollback(s);
                return r;
        }
        return 0;
}

int store_open(const char *dir_or_path, Store **ret)
{
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *journal = NULL;
        unsigned hv = 0;
        int64_t uv = 0;
        bool created = false, changed, clean;
        int rc, r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        r = resolve_path(dir_or_path, &s->path);
        if (r < 0)
                return r;

        fd = open_file(s->path, &created);
        if (fd < 0)
                return fd;

        /* Taken first: whatever happens to this open, the marker does not outlive it. */
        clean = !created && marker_take(s, fd);
        r = header_version(fd, s->path, &hv);
        if (r < 0)
                return r;
        if (hv > store_schema_version())
                return refuse_newer(s->path, hv);

        if (!created) {
                r = fix_mode(s->path, fd, &changed);
                if (r < 0)
                        return log_error_errno(r,
                                               "Database %s is readable by others and its mode cannot be "
                                               "fixed: %m",
                                               s->path);
                if (changed)
                        log_notice("Database %s was readable by others; mode set to 0600.", s->path);
                for (unsigned i = 0; i < 2; i++) {
                        _cleanup_free_ char *side = NULL;
                        if (asprintf(&side, "%s%s", s->path, i == 0 ? "-wal" : "-shm") < 0)
                                return -ENOMEM;
                        r = fix_mode(side, -EBADF, &changed);
                        if (r < 0)
                                return log_error_errno(r, "Failed to set mode of %s: %m", side);
                }
        }
        fd = safe_close(fd);

        rc = sqlite3_open_v2(s->path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE, NULL);
        if (rc != SQLITE_OK) {
                r = s->db ? store_error(s, rc) : -ENOMEM;
                return log_error_errno(r, "Failed to open database %s: %s", s->path,
                                       s->db ? sqlite3_errmsg(s->db) : "out of memory");
        }
        sqlite3_extended_result_codes(s->db, 1);
        /* Until the database is accepted, closing must not checkpoint a WAL (a newer binary's
         * transactions) into the main file. */
        (void) sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
        (void) sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

        r = query_int(s, "PRAGMA user_version", &uv);
        if (r < 0)
                return log_error_errno(r, "Failed to read database %s: %s", s->path, sqlite3_errmsg(s->db));
        if (uv < 0 || (uint64_t) uv > store_schema_version())
                return refuse_newer(s->path, (unsigned) uv);

        /* The full check reads the whole file: only when the last close was not a clean one
         * of this very file (see the marker above). The header and the schema are read in
         * any case, so a damaged first page is still refused here. */
        if (clean) {
                int64_t n_tables;
                r = query_int(s, "SELECT count(*) FROM sqlite_schema", &n_tables);
                if (r < 0)
                        return log_error_errno(r, "Database %s is damaged: %s. " STORE_RECOVERY_HINT,
                                               s->path, sqlite3_errmsg(s->db));
        } else {
                _cleanup_free_ char *check = NULL;
                r = query_text(s, "PRAGMA quick_check(1)", &check);
                if (r < 0)
                        return log_error_errno(r, "Database %s is damaged: %s. " STORE_RECOVERY_HINT,
                                               s->path, sqlite3_errmsg(s->db));
                for (char *c = check; c && *c; c++)
                        if (*c == '\n')
                                *c = ' ';
                if (!check || !streq(check, "ok"))
                        return log_error_errno(-EUCLEAN, "Database %s is damaged: %s. " STORE_RECOVERY_HINT,
                                               s->path, strna(check));
        }

        r = query_text(s, "PRAGMA journal_mode = WAL", &journal);
        if (r < 0 || !journal || !streq(journal, "wal"))
                return log_error_errno(r < 0 ? r : -EIO, "Failed to switch database %s to WAL mode: %s",
                                       s->path, r < 0 ? sqlite3_errmsg(s->db) : strna(journal));
        r = exec(s, "PRAGMA synchronous = FULL;"
                    "PRAGMA foreign_keys = ON;"
                    "PRAGMA secure_delete = FAST;"
                    "PRAGMA journal_size_limit = 4194304;"
                    /* 1 MiB of page cache (the default is 2): the working set of a hub is
                     * the newest events and a few small tables, and the kernel caches the
                     * file anyway. */
                    "PRAGMA cache_size = -1024;");
        if (r < 0)
                return log_error_errno(r, "Failed to configure database %s: %s", s->path,
                                       sqlite3_errmsg(s->db));

        r = migrate(s, (unsigned) uv);
        if (r < 0)
                return r;
        (void) sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);
        s->accepted = true;

        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- meta ---- */

int store_meta_set(Store *s, const char *key, const char *value)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, STMT_META_SET,
                       "INSERT INTO meta (key, value) VALUES (?1, ?2) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, key);
        store_bind_text(st, 2, value);
        r = store_step_done(s, st);
        return r < 0 ? r : 0;
}

int store_meta_get(Store *s, const char *key, char **ret)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int rc, r;

        r = store_stmt(s, STMT_META_GET, "SELECT value FROM meta WHERE key = ?1", &st);
        if (r < 0)
                return r;
        store_bind_text(st, 1, key);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return store_error(s, rc);
        return store_col_strdup(st, 0, ret);
}

/* ---- retention ---- */

struct retention_queries {
        enum store_stmt_id cutoff_id, count_id, age_id;
        const char *cutoff, *count, *age;
};

static const struct retention_queries retention_events = {
        STMT_RET_EVENTS_CUTOFF,
        STMT_RET_EVENTS_COUNT,
        STMT_RET_EVENTS_AGE,
        "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1",
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE id <= ?1 ORDER BY id LIMIT ?2)",
        "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts_usec < ?1 ORDER BY ts_usec LIMIT "
        "?2)",
};

static const struct retention_queries retention_samples = {
        STMT_RET_SAMPLES_CUTOFF,
        STMT_RET_SAMPLES_COUNT,
        STMT_RET_SAMPLES_AGE,
        "SELECT id FROM samples ORDER BY id DESC LIMIT 1 OFFSET ?1",
        "DELETE FROM samples WHERE id IN (SELECT id FROM samples WHERE id <= ?1 ORDER BY id LIMIT ?2)",
        "DELETE FROM samples WHERE id IN (SELECT id FROM samples WHERE ts_usec < ?1 ORDER BY ts_usec LIMIT "
        "?2)",
};

static const struct retention_queries retention_recovery = {
        STMT_RET_RECOVERY_CUTOFF,
        STMT_RET_RECOVERY_COUNT,
        STMT_RET_RECOVERY_AGE,
        "SELECT id FROM recovery_attempts ORDER BY id DESC LIMIT 1 OFFSET ?1",
        "DELETE FROM recovery_attempts WHERE id IN "
        "(SELECT id FROM recovery_attempts WHERE id <= ?1 ORDER BY id LIMIT ?2)",
        "DELETE FROM recovery_attempts WHERE id IN "
        "(SELECT id FROM recovery_attempts WHERE ts_usec < ?1 ORDER BY ts_usec LIMIT ?2)",
};

static int delete_batch(Store *s, enum store_stmt_id id, const char *sql, int64_t bound, unsigned limit)
{
        _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
        int r;

        r = store_stmt(s, id, sql, &st);
        if (r < 0)
                return r;
        sqlite3_bind_int64(st, 1, bound);
        sqlite3_bind_int64(st, 2, limit);
        r = store_step_done(s, st);
        if (r < 0)
                return r;
        return r == STORE_KEPT ? 0 : sqlite3_changes(s->db);
}

static int retention_do(Store *s, const struct retention_queries *q, uint64_t max_count,
                        uint64_t max_age_sec, unsigned batch, uint64_t now_usec)
{
        unsigned deleted = 0;
        int r;

        if (batch == 0 || batch > INT32_MAX)
                return -EINVAL;

        if (max_count > 0 && max_count <= INT64_MAX) {
                _cleanup_(store_stmt_resetp) sqlite3_stmt *st = NULL;
                int64_t cutoff = -1;
                int rc;

                r = store_stmt(s, q->cutoff_id, q->cutoff, &st);
                if (r < 0)
                        return r;
                sqlite3_bind_int64(st, 1, (int64_t) max_count);
                rc = sqlite3_step(st);
                if (rc == SQLITE_ROW)
                        cutoff = sqlite3_column_int64(st, 0);
                else if (rc != SQLITE_DONE)
                        return store_error(s, rc);
                if (cutoff >= 0) {
                        r = delete_batch(s, q->count_id, q->count, cutoff, batch);
                        if (r < 0)
                                return r;
                        deleted += (unsigned) r;
                }
        }

        if (max_age_sec > 0 && deleted < batch && max_age_sec <= (UINT64_MAX / 1000000) &&
            max_age_sec * 1000000 < now_usec) {
                uint64_t before = now_usec - max_age_sec * 1000000;

                r = delete_batch(s, q->age_id, q->age, before > INT64_MAX ? INT64_MAX : (int64_t) before,
                                 batch - deleted);
                if (r < 0)
                        return r;
                deleted += (unsigned) r;
        }

        return (int) deleted;
}

/* Each step is one transaction: a single fsync, and an all-or-nothing step. */
static int retention_step(Store *s, const struct retention_queries *q, uint64_t max_count,
                          uint64_t max_age_sec, unsigned batch, uint64_t now_usec)
{
        int r;

        if (s->event && s->failing)
                return 0; /* nothing is deleted while changes wait for space */
        r = exec(s, "SAVEPOINT retention");
        if (r < 0)
                return r;
        r = retention_do(s, q, max_count, max_age_sec, batch, now_usec);
        if (r < 0) {
                (void) sqlite3_exec(s->db, "ROLLBACK TO retention; RELEASE retention", NULL, NULL, NULL);
                return r;
        }
        {
                int k = exec(s, "RELEASE retention");
                if (k < 0)
                        return k;
        }
        return r;
}

int store_retention_step(Store *s, uint64_t max_count, uint64_t max_age_sec, unsigned batch,
                         uint64_t now_usec)
{
        return retention_step(s, &retention_events, max_count, max_age_sec, batch, now_usec);
}

int store_sample_retention_step(Store *s, uint64_t max_count, uint64_t max_age_sec, unsigned batch,
                                uint64_t now_usec)
{
        return retention_step(s, &retention_samples, max_count, max_age_sec, batch, now_usec);
}

int store_recovery_retention_step(Store *s, uint64_t max_count, uint64_t max_age_sec, unsigned batch,
                                  uint64_t now_usec)
{
        return retention_step(s, &retention_recovery, max_count, max_age_sec, batch, now_usec);
}
