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
 * Retention deletes by rowid ranges found through an index, `batch` rows per call, one
 * short transaction per call, so the event loop never waits long on it.
 */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

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

int store_stmt(Store *s, enum store_stmt_id id, const char *sql, sqlite3_stmt **ret)
{
        int rc;

        if (!s->stmts[id]) {
                rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[id], NULL);
                if (rc != SQLITE_OK)
                        return store_error(s, rc);
        }
        *ret = s->stmts[id];
        return 0;
}

int store_step_done(Store *s, sqlite3_stmt *st)
{
        int rc = sqlite3_step(st);

        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
                return 0;
        return store_error(s, rc);
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

static int exec(Store *s, const char *sql)
{
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : store_error(s, rc);
}

int store_begin(Store *s)
{
        return exec(s, "BEGIN IMMEDIATE");
}

int store_commit(Store *s)
{
        return exec(s, "COMMIT");
}

void store_rollback(Store *s)
{
        if (!sqlite3_get_autocommit(s->db))
                (void) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
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

Store *store_free(Store *s)
{
        if (!s)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(s->stmts); i++)
                sqlite3_finalize(s->stmts[i]);
        if (s->db) {
                store_rollback(s);
                sqlite3_close(s->db);
        }
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
        bool created = false, changed;
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

        {
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
                    "PRAGMA journal_size_limit = 4194304;");
        if (r < 0)
                return log_error_errno(r, "Failed to configure database %s: %s", s->path,
                                       sqlite3_errmsg(s->db));

        r = migrate(s, (unsigned) uv);
        if (r < 0)
                return r;
        (void) sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, NULL);

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
        return store_step_done(s, st);
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
        return sqlite3_changes(s->db);
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
