/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The store, checked from the outside: files and their modes and bytes on disk, the schema
 * and rows as a separate SQLite connection sees them, and the -errno each refusal gives.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lockhub/store.h"
/* The database handle of a Store: to make SQLite report a full disk (max_page_count). */
#include "../../src/store/store-internal.h"

#define SEC UINT64_C(1000000)

struct fixture {
        char dir[64];
        char db[128];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->db, sizeof(f->db), "%s/%s", f->dir, STORE_FILENAME);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        (void) nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static bool exists(const char *path)
{
        return access(path, F_OK) == 0;
}

static bool side_file_exists(const char *db, const char *suffix)
{
        char p[160];

        snprintf(p, sizeof(p), "%s%s", db, suffix);
        return exists(p);
}

static mode_t file_mode(const char *path)
{
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        return st.st_mode & 07777;
}

static size_t read_all(const char *path, uint8_t **ret)
{
        FILE *fp = fopen(path, "rb");
        size_t n = 0, allocated = 0;
        uint8_t *b = NULL;

        assert_non_null(fp);
        for (;;) {
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 4096;
                        b = realloc(b, allocated);
                        assert_non_null(b);
                }
                size_t k = fread(b + n, 1, allocated - n, fp);
                if (k == 0)
                        break;
                n += k;
        }
        fclose(fp);
        *ret = b;
        return n;
}

static void write_all(const char *path, const void *data, size_t n, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        close(fd);
}

/* A second, independent connection to look at the file. */
static sqlite3 *peek(const char *path)
{
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        return db;
}

static int64_t peek_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *st = NULL;
        int64_t v;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

/* The whole schema and the version as one string. */
static char *schema_dump(const char *path)
{
        sqlite3 *db = peek(path);
        sqlite3_stmt *st = NULL;
        char *out = NULL;
        size_t n = 0;
        FILE *fp = open_memstream(&out, &n);

        assert_non_null(fp);
        fprintf(fp, "user_version=%" PRId64 "\n", peek_int(db, "PRAGMA user_version"));
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT type, name, sql FROM sqlite_master ORDER BY type, name",
                                            -1, &st, NULL),
                         SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW)
                fprintf(fp, "%s %s %s\n", sqlite3_column_text(st, 0), sqlite3_column_text(st, 1),
                        sqlite3_column_text(st, 2) ? (const char *) sqlite3_column_text(st, 2) : "");
        sqlite3_finalize(st);
        sqlite3_close(db);
        fclose(fp);
        return out;
}

static int64_t add_lock(Store *s, const char *name, const char *address)
{
        struct store_lock l;
        int64_t id;

        store_lock_init(&l);
        l.name = (char *) name;
        l.address = (char *) address;
        id = store_lock_add(s, &l);
        assert_true(id > 0);
        return id;
}

static int64_t add_event(Store *s, int64_t lock_id, uint64_t ts, const char *kind, int64_t log_index)
{
        struct store_event e;
        int64_t id = 0;

        store_event_init(&e);
        e.lock_id = lock_id;
        e.ts_usec = ts;
        e.kind = (char *) kind;
        e.source = (char *) "lock";
        e.log_index = log_index;
        assert_true(store_event_append(s, &e, &id) >= 0);
        return id;
}

static size_t count_events(Store *s, int64_t lock_id)
{
        struct store_event_filter f = { .lock_id = lock_id };
        struct store_event *a = NULL;
        size_t n = 0;

        assert_int_equal(store_event_list(s, &f, &a, &n), 0);
        store_event_array_free(a, n);
        return n;
}

static void test_fresh_database_migrates(void **state)
{
        static const char *const tables[] = { "meta",
                                              "locks",
                                              "users",
                                              "credentials",
                                              "credential_locks",
                                              "events",
                                              "samples",
                                              "recovery_attempts",
                                              "firmware_history",
                                              "lock_snapshots" };
        struct fixture *f = *state;
        Store *s = NULL;
        sqlite3 *db;

        assert_true(store_schema_version() >= 1);
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_string_equal(store_path(s), f->db);
        assert_true(exists(f->db));

        db = peek(f->db);
        assert_int_equal(peek_int(db, "PRAGMA user_version"), store_schema_version());
        for (size_t i = 0; i < ELEMENTSOF(tables); i++) {
                char sql[160];
                snprintf(sql, sizeof(sql),
                         "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s' "
                         "AND sql LIKE '%%STRICT%%'",
                         tables[i]);
                assert_int_equal(peek_int(db, sql), 1);
        }
        assert_int_equal(peek_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'events_log_entry'"),
                         1);
        /* WAL is recorded in the file header, so another connection sees it */
        {
                sqlite3_stmt *st;
                assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                assert_string_equal((const char *) sqlite3_column_text(st, 0), "wal");
                sqlite3_finalize(st);
        }
        sqlite3_close(db);
        store_free(s);
}

static void test_reopen_changes_nothing(void **state)
{
        struct fixture *f = *state;
        _cleanup_free_ char *before = NULL, *after = NULL;
        struct store_lock l;
        Store *s = NULL;

        assert_int_equal(store_open(f->db, &s), 0);
        add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        store_free(s);
        before = schema_dump(f->db);

        for (int i = 0; i < 2; i++) {
                assert_int_equal(store_open(f->db, &s), 0);
                s = store_free(s);
        }
        after = schema_dump(f->db);
        assert_string_equal(before, after);

        assert_int_equal(store_open(f->db, &s), 0);
        assert_int_equal(store_lock_get_by_name(s, "front", &l), 0);
        assert_string_equal(l.address, "AA:BB:CC:DD:EE:01");
        store_lock_done(&l);
        store_free(s);
}

static void newer_database_refused(struct fixture *f, const char *journal_mode)
{
        uint8_t *b1 = NULL, *b2 = NULL;
        size_t n1, n2;
        char sql[128];
        sqlite3 *db;
        Store *s = NULL;
        struct stat st1, st2;

        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        snprintf(sql, sizeof(sql),
                 "PRAGMA journal_mode=%s; PRAGMA user_version=%u; CREATE TABLE future (x INTEGER);",
                 journal_mode, store_schema_version() + 1);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        assert_int_equal(chmod(f->db, 0644), 0);
        assert_false(side_file_exists(f->db, "-wal"));

        n1 = read_all(f->db, &b1);
        assert_int_equal(stat(f->db, &st1), 0);

        assert_int_equal(store_open(f->dir, &s), -EPROTONOSUPPORT);
        assert_null(s);

        n2 = read_all(f->db, &b2);
        assert_int_equal(stat(f->db, &st2), 0);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        assert_int_equal(st1.st_mtim.tv_sec, st2.st_mtim.tv_sec);
        assert_int_equal(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);
        assert_int_equal(st2.st_mode & 07777, 0644); /* not even chmod'ed */
        assert_false(side_file_exists(f->db, "-wal"));
        assert_false(side_file_exists(f->db, "-shm"));
        assert_false(side_file_exists(f->db, "-journal"));
        free(b1);
        free(b2);
}

static void test_newer_version_refused_untouched(void **state)
{
        newer_database_refused(*state, "delete");
}

static void test_newer_version_in_wal_mode_refused_untouched(void **state)
{
        newer_database_refused(*state, "wal");
}

/* A newer binary's last transaction may still be in the -wal, with the main file's header
 * showing the old version: SQLite's view decides, and the main file is not checkpointed. */
static void test_newer_version_in_wal_only_refused(void **state)
{
        struct fixture *f = *state;
        char copy[160], wal[160], copy_wal[160];
        uint8_t *b = NULL, *b1 = NULL, *b2 = NULL;
        size_t n, n1, n2;
        sqlite3 *db;
        Store *s = NULL;

        assert_int_equal(store_open(f->dir, &s), 0);
        s = store_free(s);

        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA wal_autocheckpoint = 0; PRAGMA user_version = 99;", NULL,
                                      NULL, NULL),
                         SQLITE_OK);
        snprintf(wal, sizeof(wal), "%s-wal", f->db);
        snprintf(copy, sizeof(copy), "%s/copy.db", f->dir);
        snprintf(copy_wal, sizeof(copy_wal), "%s/copy.db-wal", f->dir);
        n = read_all(f->db, &b);
        write_all(copy, b, n, 0600);
        free(b);
        n = read_all(wal, &b);
        assert_true(n > 0);
        write_all(copy_wal, b, n, 0600);
        free(b);
        sqlite3_close(db);

        n1 = read_all(copy, &b1);
        assert_int_equal(store_open(copy, &s), -EPROTONOSUPPORT);
        assert_null(s);
        n2 = read_all(copy, &b2);
        assert_int_equal(n1, n2);
        assert_memory_equal(b1, b2, n1);
        assert_true(exists(copy_wal)); /* the newer transaction is still there for the newer binary */
        free(b1);
        free(b2);
}

static void test_file_mode_0600(void **state)
{
        struct fixture *f = *state;
        mode_t old = umask(0);
        Store *s = NULL;
        char side[160];

        /* a permissive umask does not leak into the file or its WAL companions */
        assert_int_equal(store_open(f->dir, &s), 0);
        add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        assert_int_equal(file_mode(f->db), 0600);
        snprintf(side, sizeof(side), "%s-wal", f->db);
        assert_int_equal(file_mode(side), 0600);
        snprintf(side, sizeof(side), "%s-shm", f->db);
        assert_int_equal(file_mode(side), 0600);
        s = store_free(s);

        /* a file loosened by someone is tightened at the next open */
        assert_int_equal(chmod(f->db, 0664), 0);
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(file_mode(f->db), 0600);
        s = store_free(s);

        /* a restrictive umask that would take the owner's write bit away does not either */
        assert_int_equal(unlink(f->db), 0);
        umask(0277);
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(file_mode(f->db), 0600);
        s = store_free(s);
        umask(old);
}

static void test_retention_by_count(void **state)
{
        struct fixture *f = *state;
        struct store_event *a = NULL;
        size_t n = 0;
        Store *s = NULL;
        int64_t lock;
        static const int expected[] = { 16, 16, 16, 16, 6, 0 };

        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        for (int i = 0; i < 100; i++)
                add_event(s, i % 3 == 0 ? 0 : lock, 1000 * SEC + (uint64_t) i * SEC, "state", -1);

        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                assert_int_equal(store_retention_step(s, 30, 0, 16, 2000 * SEC), expected[i]);

        assert_int_equal(store_event_list(s, NULL, &a, &n), 0);
        assert_int_equal(n, 30);
        /* exactly the newest 30 are left, in order */
        for (size_t i = 0; i < n; i++)
                assert_int_equal(a[i].ts_usec, 1070 * SEC + i * SEC);
        store_event_array_free(a, n);
        store_free(s);
}

static void test_retention_by_age(void **state)
{
        struct fixture *f = *state;
        uint64_t now = 5000 * SEC;
        struct store_event *a = NULL;
        size_t n = 0;
        Store *s = NULL;
        int64_t lock;

        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        /* 100 events, one per second, the last one 1 s old */
        for (int i = 0; i < 100; i++)
                add_event(s, lock, now - (uint64_t) (100 - i) * SEC, "battery", -1);

        /* older than 50 s: i < 50. Batches of 20 with a count limit that is not reached. */
        assert_int_equal(store_retention_step(s, 1000, 50, 20, now), 20);
        assert_int_equal(store_retention_step(s, 1000, 50, 20, now), 20);
        assert_int_equal(store_retention_step(s, 1000, 50, 20, now), 10);
        assert_int_equal(store_retention_step(s, 1000, 50, 20, now), 0);

        assert_int_equal(store_event_list(s, NULL, &a, &n), 0);
        assert_int_equal(n, 50);
        assert_int_equal(a[0].ts_usec, now - 50 * SEC);
        store_event_array_free(a, n);

        /* both limits in one step: count first, then age within the rest of the batch */
        assert_int_equal(store_retention_step(s, 45, 40, 8, now), 8); /* 5 by count + 3 by age */
        assert_int_equal(store_retention_step(s, 45, 40, 8, now), 2);
        assert_int_equal(store_retention_step(s, 45, 40, 8, now), 0);
        assert_int_equal(count_events(s, 0), 40);

        /* no limits: nothing to do; a zero batch is a caller bug */
        assert_int_equal(store_retention_step(s, 0, 0, 8, now), 0);
        assert_int_equal(store_retention_step(s, 10, 0, 0, now), -EINVAL);
        store_free(s);
}

static void test_sample_and_recovery_retention(void **state)
{
        struct fixture *f = *state;
        struct store_sample *a = NULL;
        struct store_recovery_attempt *ra = NULL;
        size_t n = 0;
        Store *s = NULL;
        int64_t lock;

        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        for (int i = 0; i < 10; i++) {
                struct store_recovery_attempt r = {
                        .lock_id = lock,
                        .ts_usec = (uint64_t) (i + 1) * SEC,
                        .step = (char *) "reconnect",
                        .outcome = (char *) "success",
                        .duration_usec = 1500,
                };
                assert_true(store_sample_append(s, lock, "battery-percent", (uint64_t) (i + 1) * SEC,
                                                100 - i) > 0);
                assert_true(store_recovery_append(s, &r) > 0);
        }
        assert_int_equal(store_sample_append(s, lock, "bogus-kind", SEC, 1), -EINVAL);

        assert_int_equal(store_sample_retention_step(s, 4, 0, 100, 20 * SEC), 6);
        assert_int_equal(store_sample_retention_step(s, 4, 0, 100, 20 * SEC), 0);
        assert_int_equal(store_sample_list(s, lock, "battery-percent", 0, 0, &a, &n), 0);
        assert_int_equal(n, 4);
        assert_true(a[0].value == 94.0 && a[3].value == 91.0);
        store_sample_array_free(a, n);

        /* recovery attempts older than 15 s at t=20 s: the first 4 (t = 1..4 s) */
        assert_int_equal(store_recovery_retention_step(s, 0, 15, 100, 20 * SEC), 4);
        assert_int_equal(store_recovery_list(s, lock, 0, &ra, &n), 0);
        assert_int_equal(n, 6);
        assert_string_equal(ra[0].step, "reconnect");
        assert_int_equal(ra[0].ts_usec, 5 * SEC);
        assert_int_equal(ra[0].duration_usec, 1500);
        store_recovery_array_free(ra, n);
        store_free(s);
}

static void test_duplicate_log_index_ignored(void **state)
{
        struct fixture *f = *state;
        struct store_event e;
        struct store_lock l;
        int64_t a, b, id1 = 0, id2 = 0;
        Store *s = NULL;

        assert_int_equal(store_open(f->dir, &s), 0);
        a = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        b = add_lock(s, "back", "AA:BB:CC:DD:EE:02");

        store_event_init(&e);
        e.lock_id = a;
        e.kind = (char *) "keypad";
        e.source = (char *) "keypad";
        e.log_index = 7;
        e.detail = (char *) "{\"code_id\":3}";
        assert_int_equal(store_event_append(s, &e, &id1), 1);
        assert_int_equal(store_event_append(s, &e, &id2), 0); /* the same log entry again */
        assert_int_equal(id1, id2);
        assert_int_equal(count_events(s, a), 1);

        e.lock_id = b; /* the same index on another lock is another entry */
        assert_int_equal(store_event_append(s, &e, NULL), 1);
        e.log_index = -1; /* events that are not log entries are never de-duplicated */
        assert_int_equal(store_event_append(s, &e, NULL), 1);
        assert_int_equal(store_event_append(s, &e, NULL), 1);
        assert_int_equal(count_events(s, b), 3);

        /* a log entry needs a lock */
        e.lock_id = 0;
        e.log_index = 1;
        assert_int_equal(store_event_append(s, &e, NULL), -EINVAL);

        /* a factory reset (new uuid) restarts the lock's indices: index 7 is new again */
        assert_int_equal(store_lock_get(s, a, &l), 0);
        l.uuid = malloc(16);
        memset(l.uuid, 0x11, 16);
        l.uuid_size = 16;
        l.log_synced_index = 7;
        assert_int_equal(store_lock_update(s, &l), 0);
        memset(l.uuid, 0x22, 16);
        assert_int_equal(store_lock_update(s, &l), 0);
        store_lock_done(&l);
        assert_int_equal(store_lock_get(s, a, &l), 0);
        assert_int_equal(l.log_epoch, 1);
        assert_int_equal(l.log_synced_index, -1);
        store_lock_done(&l);
        e.lock_id = a;
        e.log_index = 7;
        assert_int_equal(store_event_append(s, &e, NULL), 1);
        assert_int_equal(store_event_append(s, &e, NULL), 0);
        assert_int_equal(count_events(s, a), 2);
        store_free(s);
}

static void test_foreign_keys_enforced(void **state)
{
        struct fixture *f = *state;
        struct store_credential c;
        struct store_event e;
        _cleanup_free_ char *json = NULL;
        Store *s = NULL;
        int64_t lock;
        sqlite3 *db;

        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");

        store_event_init(&e);
        e.lock_id = 999;
        e.kind = (char *) "state";
        e.source = (char *) "hub";
        assert_int_equal(store_event_append(s, &e, NULL), -ENOENT);
        e.log_index = 3;
        assert_int_equal(store_event_append(s, &e, NULL), -ENOENT);
        assert_int_equal(store_sample_append(s, 999, "rssi", 0, -70), -ENOENT);
        store_credential_init(&c);
        c.user_id = 999;
        c.name = (char *) "x";
        c.code_sealed = (uint8_t *) "123456";
        c.code_sealed_size = 6;
        assert_int_equal(store_credential_add(s, &c), -ENOENT);
        assert_int_equal(store_assignment_set(s, lock, 999, "present", 0), -ENOENT);
        assert_int_equal(store_snapshot_add(s, 999, "config", "paired", 1, 0, "{}"), -ENOENT);

        /* removing a lock takes its history along, but keeps settings snapshots by address */
        add_event(s, lock, 0, "state", -1);
        assert_true(store_sample_append(s, lock, "rssi", 0, -70) > 0);
        assert_true(store_snapshot_add(s, lock, "config", "paired", 5, 0, "{\"name\":\"front\"}") > 0);
        assert_int_equal(store_lock_remove(s, lock), 0);
        assert_int_equal(store_lock_remove(s, lock), -ENOENT);
        store_free(s);

        db = peek(f->db);
        assert_int_equal(peek_int(db, "SELECT count(*) FROM events"), 0);
        assert_int_equal(peek_int(db, "SELECT count(*) FROM samples"), 0);
        assert_int_equal(peek_int(db, "SELECT count(*) FROM lock_snapshots WHERE lock_id IS NULL"), 1);
        sqlite3_close(db);

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_snapshot_latest(s, "AA:BB:CC:DD:EE:01", "config", &json), 0);
        assert_string_equal(json, "{\"name\":\"front\"}");
        store_free(s);
}

static void test_garbage_file_refused(void **state)
{
        struct fixture *f = *state;
        static const char text[] = "[hub]\nname = not a database at all, just a text file put in its place\n"
                                   "with a few lines so that it is longer than a header\n";
        uint8_t *b = NULL;
        size_t n;
        Store *s = NULL;

        write_all(f->db, text, sizeof(text) - 1, 0600);
        assert_int_equal(store_open(f->dir, &s), -EUCLEAN);
        assert_null(s);
        n = read_all(f->db, &b);
        assert_int_equal(n, sizeof(text) - 1);
        assert_memory_equal(b, text, n);
        assert_false(side_file_exists(f->db, "-wal"));
        assert_false(side_file_exists(f->db, "-shm"));
        free(b);

        /* shorter than a header */
        write_all(f->db, "SQLite", 6, 0600);
        assert_int_equal(store_open(f->dir, &s), -EUCLEAN);
}

static void test_corrupt_pages_refused(void **state)
{
        struct fixture *f = *state;
        uint8_t junk[4096];
        Store *s = NULL;
        int64_t lock;
        int fd;

        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        for (int i = 0; i < 500; i++)
                add_event(s, lock, (uint64_t) (i + 1) * SEC, "state", -1);
        s = store_free(s); /* the last close checkpoints the WAL into the file */
        assert_false(side_file_exists(f->db, "-wal"));

        /* keep the header page, overwrite pages 2 and 3 */
        memset(junk, 0xa5, sizeof(junk));
        fd = open(f->db, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, junk, sizeof(junk), 4096), (ssize_t) sizeof(junk));
        assert_int_equal(pwrite(fd, junk, sizeof(junk), 8192), (ssize_t) sizeof(junk));
        close(fd);

        assert_int_equal(store_open(f->dir, &s), -EUCLEAN);
        assert_null(s);
}

/* A clean close leaves STORE_FILENAME-clean; the next open takes it away before anything
 * else, so a crash during that run leaves none and the next start checks the whole file. */
static void test_clean_close_marker(void **state)
{
        struct fixture *f = *state;
        char marker[160];
        Store *s = NULL;

        snprintf(marker, sizeof(marker), "%s-clean", f->db);
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_false(exists(marker));
        add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        s = store_free(s);
        assert_true(exists(marker));
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_false(exists(marker));
        s = store_free(s);
        assert_true(exists(marker));

        /* a refused database leaves none behind, and an open that fails takes it */
        {
                char junk[120]; /* longer than a header */
                memset(junk, '.', sizeof junk);
                memcpy(junk, "not a database", strlen("not a database"));
                write_all(f->db, junk, sizeof junk, 0600);
        }
        assert_int_equal(store_open(f->dir, &s), -EUCLEAN);
        assert_false(exists(marker));
}

static void test_missing_directory(void **state)
{
        struct fixture *f = *state;
        char path[192];
        Store *s = NULL;

        snprintf(path, sizeof(path), "%s/missing/lockhub.db", f->dir);
        assert_int_equal(store_open(path, &s), -ENOENT);
        snprintf(path, sizeof(path), "%s/missing", f->dir);
        assert_false(exists(path));

        /* a missing state directory is not taken for a file name */
        assert_int_equal(store_open(path, &s), -ENOENT);
        assert_false(exists(path));
        assert_null(s);
}

static void test_locks(void **state)
{
        static const uint8_t key[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                         0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  0,  0,  0,  0,  0,  0xff };
        struct fixture *f = *state;
        struct store_lock l, g, *a = NULL;
        size_t n = 0;
        Store *s = NULL;
        int64_t id;

        assert_int_equal(store_open(f->dir, &s), 0);

        store_lock_init(&l);
        l.name = (char *) "front";
        l.address = (char *) "54:D2:72:00:00:01";
        l.device_type = 4;
        l.firmware = (char *) "4.2.6";
        l.auth_id = 0x00345CE0;
        l.app_id = 0xFFFFFFFF;
        l.id_type = 1;
        l.shared_key_sealed = (uint8_t *) key;
        l.shared_key_sealed_size = sizeof(key);
        l.security_pin_sealed = (uint8_t *) "\xd2\x04";
        l.security_pin_sealed_size = 2;
        l.paired_usec = 77 * SEC;
        id = store_lock_add(s, &l);
        assert_true(id > 0);

        assert_int_equal(store_lock_get_by_name(s, "front", &g), 0);
        assert_int_equal(g.id, id);
        assert_string_equal(g.protocol, "nuki");
        assert_int_equal(g.device_type, 4);
        assert_int_equal(g.auth_id, 0x00345CE0);
        assert_int_equal(g.app_id, 0xFFFFFFFF);
        assert_int_equal(g.id_type, 1);
        assert_int_equal(g.shared_key_sealed_size, sizeof(key));
        assert_memory_equal(g.shared_key_sealed, key, sizeof(key));
        assert_int_equal(g.security_pin_sealed_size, 2);
        assert_int_equal(g.key_version, 0);
        assert_int_equal(g.paired_usec, 77 * SEC);
        assert_int_equal(g.config_update_count, -1);
        assert_null(g.model);
        assert_true(g.created_usec > 0);

        /* unique name and address, checked values */
        l.address = (char *) "54:D2:72:00:00:02";
        assert_int_equal(store_lock_add(s, &l), -EEXIST);
        l.name = (char *) "back";
        l.address = (char *) "54:D2:72:00:00:01";
        assert_int_equal(store_lock_add(s, &l), -EEXIST);
        l.address = (char *) "54:d2:72:00:00:02";
        assert_int_equal(store_lock_add(s, &l), -EINVAL);
        l.address = (char *) "54:D2:72:00:00:02";
        l.id_type = 300;
        assert_int_equal(store_lock_add(s, &l), -EINVAL);
        l.id_type = 1;
        assert_true(store_lock_add(s, &l) > 0);

        /* update */
        free(g.firmware);
        g.firmware = strdup("4.3.0");
        g.needs_repair = true;
        g.config_update_count = 12;
        g.last_state = strdup("{\"state\":\"locked\",\"battery\":80}");
        assert_int_equal(store_lock_update(s, &g), 0);
        store_lock_done(&g);
        assert_int_equal(store_lock_get_by_address(s, "54:D2:72:00:00:01", &g), 0);
        assert_string_equal(g.firmware, "4.3.0");
        assert_true(g.needs_repair);
        assert_int_equal(g.config_update_count, 12);
        assert_string_equal(g.last_state, "{\"state\":\"locked\",\"battery\":80}");
        free(g.name);
        g.name = strdup("back"); /* renaming onto another lock's name */
        assert_int_equal(store_lock_update(s, &g), -EEXIST);
        g.id = 4242;
        assert_int_equal(store_lock_update(s, &g), -ENOENT);
        store_lock_done(&g);

        assert_int_equal(store_lock_list(s, &a, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(a[0].name, "back");
        assert_string_equal(a[1].name, "front");
        store_lock_array_free(a, n);

        assert_int_equal(store_lock_remove(s, id), 0);
        assert_int_equal(store_lock_get(s, id, &g), -ENOENT);
        assert_int_equal(store_lock_get_by_name(s, "front", &g), -ENOENT);
        store_free(s);
}

static void test_event_list_filters(void **state)
{
        struct fixture *f = *state;
        struct store_event_filter flt = {};
        struct store_event e, *a = NULL;
        size_t n = 0;
        Store *s = NULL;
        int64_t front, back, first;

        assert_int_equal(store_open(f->dir, &s), 0);
        front = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        back = add_lock(s, "back", "AA:BB:CC:DD:EE:02");
        first = add_event(s, 0, 10 * SEC, "hub", -1);
        for (int i = 1; i <= 10; i++)
                add_event(s, i % 2 ? front : back, (10 + (uint64_t) i) * SEC, i <= 5 ? "state" : "action",
                          -1);

        flt.lock_id = front;
        assert_int_equal(store_event_list(s, &flt, &a, &n), 0);
        assert_int_equal(n, 5);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(a[i].lock_id, front);
        store_event_array_free(a, n);

        /* the newest 3 since t=12, oldest first */
        flt = (struct store_event_filter){ .since_usec = 12 * SEC, .limit = 3 };
        assert_int_equal(store_event_list(s, &flt, &a, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(a[0].ts_usec, 18 * SEC);
        assert_int_equal(a[2].ts_usec, 20 * SEC);
        store_event_array_free(a, n);

        flt = (struct store_event_filter){ .kind = "action", .until_usec = 18 * SEC };
        assert_int_equal(store_event_list(s, &flt, &a, &n), 0);
        assert_int_equal(n, 2); /* t = 16, 17 */
        assert_string_equal(a[0].kind, "action");
        store_event_array_free(a, n);

        flt = (struct store_event_filter){ .after_id = first + 9 };
        assert_int_equal(store_event_list(s, &flt, &a, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(a[0].ts_usec, 20 * SEC);
        store_event_array_free(a, n);

        /* the hub-wide event has no lock; values come back as stored */
        flt = (struct store_event_filter){ .limit = 100 };
        assert_int_equal(store_event_list(s, &flt, &a, &n), 0);
        assert_int_equal(n, 11);
        assert_int_equal(a[0].id, first);
        assert_int_equal(a[0].lock_id, 0);
        assert_string_equal(a[0].source, "lock");
        assert_int_equal(a[0].log_index, -1);
        assert_null(a[0].actor);
        store_event_array_free(a, n);

        /* unknown kind or source, broken JSON: refused */
        store_event_init(&e);
        e.kind = (char *) "party";
        e.source = (char *) "hub";
        assert_int_equal(store_event_append(s, &e, NULL), -EINVAL);
        e.kind = (char *) "hub";
        e.source = (char *) "telepathy";
        assert_int_equal(store_event_append(s, &e, NULL), -EINVAL);
        e.source = (char *) "mqtt";
        e.detail = (char *) "{\"unterminated\":";
        assert_int_equal(store_event_append(s, &e, NULL), -EINVAL);
        e.detail = (char *) "{\"ok\":true}";
        e.actor = (char *) "homeassistant";
        assert_int_equal(store_event_append(s, &e, NULL), 1);
        assert_int_equal(count_events(s, 0), 12);
        store_free(s);
}

static void test_users_credentials_assignments(void **state)
{
        struct fixture *f = *state;
        struct store_credential c, g;
        struct store_assignment as;
        struct store_user u;
        Store *s = NULL;
        int64_t lock, user, cred;
        sqlite3 *db;

        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        user = store_user_add(s, "alice", 5 * SEC);
        assert_true(user > 0);
        assert_int_equal(store_user_add(s, "alice", 0), -EEXIST);
        assert_int_equal(store_user_add(s, "", 0), -EINVAL);
        assert_int_equal(store_user_get_by_name(s, "alice", &u), 0);
        assert_int_equal(u.id, user);
        assert_int_equal(u.created_usec, 5 * SEC);
        store_user_done(&u);

        store_credential_init(&c);
        c.user_id = user;
        c.name = (char *) "alice front door";
        c.code_sealed = (uint8_t *) "\x01\x02\x03";
        c.code_sealed_size = 3;
        c.weekdays = 0x1f; /* Monday to Friday */
        c.time_from_min = 7 * 60;
        c.time_until_min = 19 * 60;
        c.valid_from_usec = 100 * SEC;
        c.valid_until_usec = 200 * SEC;
        cred = store_credential_add(s, &c);
        assert_true(cred > 0);

        /* checked rules */
        c.weekdays = 200;
        assert_int_equal(store_credential_add(s, &c), -EINVAL);
        c.weekdays = 0x7f;
        c.time_until_min = -1; /* half a window */
        assert_int_equal(store_credential_add(s, &c), -EINVAL);
        c.time_until_min = 19 * 60;
        c.valid_until_usec = 50 * SEC; /* ends before it starts */
        assert_int_equal(store_credential_add(s, &c), -EINVAL);
        c.valid_until_usec = 200 * SEC;
        c.name = (char *) "a name longer than twenty bytes";
        assert_int_equal(store_credential_add(s, &c), -EINVAL);

        assert_int_equal(store_credential_get(s, cred, &g), 0);
        assert_int_equal(g.revision, 1);
        assert_int_equal(g.weekdays, 0x1f);
        assert_int_equal(g.time_from_min, 420);
        assert_int_equal(g.valid_until_usec, 200 * SEC);
        assert_int_equal(g.code_sealed_size, 3);
        assert_memory_equal(g.code_sealed, "\x01\x02\x03", 3);

        /* assign, then the lock confirms it */
        assert_int_equal(store_assignment_set(s, lock, cred, "present", 0), 0);
        assert_int_equal(store_assignment_set(s, lock, cred, "maybe", 0), -EINVAL);
        assert_int_equal(store_assignment_get(s, lock, cred, &as), 0);
        assert_string_equal(as.state, "pending");
        assert_int_equal(as.lock_code_id, -1);
        free(as.state);
        as.state = strdup("synced");
        as.lock_code_id = 3;
        as.synced_revision = 1;
        as.last_verified_usec = 300 * SEC;
        as.reported = strdup("{\"name\":\"alice front door\",\"enabled\":true}");
        assert_int_equal(store_assignment_update_sync(s, &as), 0);
        store_assignment_done(&as);
        assert_int_equal(store_assignment_get(s, lock, cred, &as), 0);
        assert_string_equal(as.state, "synced");
        assert_int_equal(as.lock_code_id, 3);
        assert_int_equal(as.synced_revision, 1);
        store_assignment_done(&as);

        /* a new desired state sends it back to pending and bumps the revision */
        g.enabled = false;
        assert_int_equal(store_credential_update(s, &g), 2);
        assert_int_equal(store_assignment_get(s, lock, cred, &as), 0);
        assert_string_equal(as.state, "pending");
        assert_int_equal(as.synced_revision, 1);
        assert_int_equal(as.lock_code_id, 3);
        store_assignment_done(&as);
        store_credential_done(&g);

        /* withdrawing a code keeps the row (the reconciler needs the lock's code id) */
        assert_int_equal(store_assignment_set(s, lock, cred, "absent", 0), 0);
        assert_int_equal(store_assignment_get(s, lock, cred, &as), 0);
        assert_string_equal(as.desired, "absent");
        assert_int_equal(as.lock_code_id, 3);
        store_assignment_done(&as);

        /* removing the user removes their credentials and assignments */
        assert_int_equal(store_user_remove(s, user), 0);
        assert_int_equal(store_credential_get(s, cred, &g), -ENOENT);
        store_free(s);
        db = peek(f->db);
        assert_int_equal(peek_int(db, "SELECT count(*) FROM credential_locks"), 0);
        assert_int_equal(peek_int(db, "SELECT count(*) FROM credentials"), 0);
        sqlite3_close(db);
}

static void test_meta_and_firmware(void **state)
{
        struct fixture *f = *state;
        char *v = NULL;
        Store *s = NULL;
        int64_t lock;
        sqlite3 *db;

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_meta_get(s, "hub-id", &v), -ENOENT);
        assert_int_equal(store_meta_set(s, "hub-id", "0123abcd"), 0);
        assert_int_equal(store_meta_set(s, "hub-id", "feedf00d"), 0);
        assert_int_equal(store_meta_get(s, "hub-id", &v), 0);
        assert_string_equal(v, "feedf00d");
        free(v);

        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        assert_int_equal(store_firmware_record(s, lock, 1 * SEC, "3.4.1", "2.1"), 1);
        assert_int_equal(store_firmware_record(s, lock, 2 * SEC, "3.4.1", "2.1"), 0);
        assert_int_equal(store_firmware_record(s, lock, 3 * SEC, "3.5.0", "2.1"), 1);
        store_free(s);

        db = peek(f->db);
        assert_int_equal(peek_int(db, "SELECT count(*) FROM firmware_history"), 2);
        sqlite3_close(db);
}

static int64_t db_int(sqlite3 *db, const char *sql)
{
        sqlite3_stmt *st = NULL;
        int64_t v = -1;

        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return v;
}

static void db_exec(sqlite3 *db, const char *sql)
{
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
}

static int append_event(Store *s, int64_t lock, const char *kind, int i)
{
        char detail[2100];
        struct store_event e;

        /* ~2 KiB each: a few of them need a new page */
        snprintf(detail, sizeof detail, "{\"i\":%d,\"pad\":\"%02000d\"}", i, 0);
        store_event_init(&e);
        e.lock_id = lock;
        e.kind = (char *) kind;
        e.source = (char *) "hub";
        e.detail = detail;
        return store_event_append(s, &e, NULL);
}

/* Waits (at most 8 s: the retry runs every 5 s) until the kept changes are written. */
static int run_until_writable(sd_event *e, Store *s)
{
        for (unsigned i = 0; i < 80 && store_write_error(s, NULL) < 0; i++)
                assert_true(sd_event_run(e, 100 * UINT64_C(1000)) >= 0);
        return store_write_error(s, NULL);
}

/* A statement of a batch hits a full disk: the whole batch is undone and kept, nothing more
 * runs until the retry, nothing is written ahead of the kept changes, and when space is back
 * every change is written once, in its order. */
static void test_full_disk_keeps_batch(void **state)
{
        struct fixture *f = *state;
        Store *s = NULL;
        sd_event *e = NULL;
        size_t pending = 0;
        int64_t lock, pages;
        char *v = NULL, *order = NULL;
        struct store_event *ev = NULL;
        size_t n_ev = 0;

        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(store_set_event(s, e, SD_EVENT_PRIORITY_IMPORTANT), 0);
        assert_int_equal(append_event(s, lock, "state", -1), 1);
        assert_int_equal(store_flush(s), 0);

        /* the "disk" holds no page more than now */
        pages = db_int(s->db, "PRAGMA page_count");
        assert_true(pages > 0);
        {
                char sql[64];
                snprintf(sql, sizeof sql, "PRAGMA max_page_count = %" PRIi64, pages);
                db_exec(s->db, sql);
        }

        /* one dispatch: 20 events, one of them does not fit */
        for (int i = 0; i < 20; i++)
                assert_int_equal(append_event(s, lock, "state", i), 1);
        assert_int_equal(store_write_error(s, &pending), -ENOSPC);
        assert_int_equal(pending, 20);
        /* the batch is undone: not a single one of them is in the database */
        assert_int_equal(db_int(s->db, "SELECT count(*) FROM events"), 1);
        assert_true(sqlite3_get_autocommit(s->db));
        /* later writes are kept, not run; one that needs its new id is refused */
        assert_int_equal(store_meta_set(s, "during", "outage"), 0);
        assert_int_equal(store_user_add(s, "ann", 0), -ENOSPC);
        assert_int_equal(store_meta_get(s, "during", &v), -ENOENT);
        assert_int_equal(store_flush(s), 0);
        /* explicit transactions would be written ahead of the kept changes: refused */
        assert_int_equal(store_begin(s), -ENOSPC);
        /* another dispatch: kept, not replayed (only the retry does) */
        assert_int_equal(append_event(s, lock, "action", 20), 1);
        assert_int_equal(store_flush(s), 0);
        assert_int_equal(store_write_error(s, &pending), -ENOSPC);
        assert_int_equal(pending, 22);
        assert_int_equal(db_int(s->db, "SELECT count(*) FROM events"), 1);
        assert_int_equal(store_write_lost(s), 0);

        /* space is back: the retry writes them all, once, in order */
        db_exec(s->db, "PRAGMA max_page_count = 1073741823");
        assert_int_equal(run_until_writable(e, s), 0);
        assert_int_equal(store_write_error(s, &pending), 0);
        assert_int_equal(pending, 0);
        assert_int_equal(store_event_list(s, &(struct store_event_filter){}, &ev, &n_ev), 0);
        assert_int_equal(n_ev, 22);
        {
                char want[128] = "-1";
                int64_t prev = 0;
                for (int i = 0; i <= 20; i++)
                        snprintf(want + strlen(want), sizeof want - strlen(want), ",%d", i);
                order = sqlite3_mprintf("%s", "");
                for (size_t i = 0; i < n_ev; i++) {
                        char *p = strstr(ev[i].detail, "\"i\":");
                        assert_non_null(p);
                        assert_true(ev[i].id > prev);
                        prev = ev[i].id;
                        char *o = sqlite3_mprintf("%s%s%d", order, i ? "," : "", atoi(p + 4));
                        sqlite3_free(order);
                        order = o;
                }
                assert_string_equal(order, want);
                sqlite3_free(order);
        }
        store_event_array_free(ev, n_ev);
        assert_int_equal(store_meta_get(s, "during", &v), 0);
        assert_string_equal(v, "outage");
        free(v);
        /* writes run again */
        assert_int_equal(store_begin(s), 0);
        assert_true(store_user_add(s, "ann", 0) > 0);
        assert_int_equal(store_commit(s), 0);

        store_free(s);
        sd_event_unref(e);
}

/* The kept list is bounded: samples stop being kept first, events later; the newest change
 * is the one lost, and it is counted. */
static void test_full_disk_kept_list_bounded(void **state)
{
        struct fixture *f = *state;
        Store *s = NULL;
        sd_event *e = NULL;
        size_t pending = 0, kept = 0;
        int64_t lock;
        unsigned samples_kept = 0, events_kept = 0;

        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_lock(s, "front", "AA:BB:CC:DD:EE:01");
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(store_set_event(s, e, SD_EVENT_PRIORITY_IMPORTANT), 0);
        db_exec(s->db, "PRAGMA max_page_count = 1"); /* never below the current size */
        for (int i = 0; i < 100 && store_write_error(s, NULL) == 0; i++)
                assert_int_equal(append_event(s, lock, "state", i), 1);
        assert_int_equal(store_write_error(s, &kept), -ENOSPC);
        assert_true(kept > 0 && kept < 100);
        assert_int_equal(store_flush(s), 0);

        for (unsigned i = 0; i < 16000; i++)
                if (store_sample_append(s, lock, "battery-mv", 0, 5000 + i) == 0)
                        samples_kept++;
        assert_int_equal(samples_kept, 15000 - kept);
        assert_int_equal(store_write_lost(s), 1000 + kept);
        for (unsigned i = 0; i < 6000; i++) {
                struct store_event ev;
                store_event_init(&ev);
                ev.lock_id = lock;
                ev.kind = (char *) "battery";
                ev.source = (char *) "hub";
                if (store_event_append(s, &ev, NULL) == 1)
                        events_kept++;
        }
        assert_int_equal(events_kept, 5000);
        assert_int_equal(store_write_error(s, &pending), -ENOSPC);
        assert_int_equal(pending, 20000);
        assert_int_equal(store_write_lost(s), 2000 + kept);

        db_exec(s->db, "PRAGMA max_page_count = 1073741823");
        assert_int_equal(run_until_writable(e, s), 0);
        assert_int_equal(store_write_lost(s), 0); /* said in the log, once it is over */
        assert_int_equal(db_int(s->db, "SELECT count(*) FROM samples"), 15000 - kept);
        assert_int_equal(db_int(s->db, "SELECT count(*) FROM events"), 5000 + kept);
        store_free(s);
        sd_event_unref(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_fresh_database_migrates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_changes_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_newer_version_refused_untouched, setup, teardown),
                cmocka_unit_test_setup_teardown(test_newer_version_in_wal_mode_refused_untouched, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_newer_version_in_wal_only_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_file_mode_0600, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retention_by_count, setup, teardown),
                cmocka_unit_test_setup_teardown(test_retention_by_age, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sample_and_recovery_retention, setup, teardown),
                cmocka_unit_test_setup_teardown(test_duplicate_log_index_ignored, setup, teardown),
                cmocka_unit_test_setup_teardown(test_foreign_keys_enforced, setup, teardown),
                cmocka_unit_test_setup_teardown(test_garbage_file_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_pages_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_clean_close_marker, setup, teardown),
                cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
                cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_event_list_filters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_users_credentials_assignments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_meta_and_firmware, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_disk_keeps_batch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_disk_kept_list_bounded, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
