/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Secrets at rest, checked from the outside: the key file on disk (mode, size, never
 * replaced), the bytes of the database file and its WAL (no shared key, PIN or code digits
 * in them once sealed), rows as a separate SQLite connection sees them, and what the store
 * gives back with the right key, a wrong key, or no key.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lockhub/secret.h"
#include "lockhub/store.h"

/* Distinctive bytes, so that finding them in a file cannot be chance. */
static const uint8_t shared_key[32] = { 0x5b, 0x1e, 0xc0, 0xde, 0x73, 0x9a, 0x11, 0x42, 0xa7, 0x08, 0xfe,
                                        0x61, 0x3c, 0xd9, 0x27, 0x84, 0xe5, 0x50, 0x9f, 0x16, 0xbb, 0x2d,
                                        0x48, 0xc3, 0x7a, 0x05, 0xee, 0x91, 0x36, 0x6f, 0xd4, 0x0b };
static const uint8_t pin[4] = { 0x9c, 0x4f, 0xa2, 0x37 };
static const char code[] = "839271";

struct fixture {
        char dir[64];
        char db[128];
        char key[128];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-secret-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->db, sizeof(f->db), "%s/%s", f->dir, STORE_FILENAME);
        snprintf(f->key, sizeof(f->key), "%s/%s", f->dir, SECRET_KEY_FILENAME);
        unsetenv("CREDENTIALS_DIRECTORY");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        unsetenv("CREDENTIALS_DIRECTORY");
        (void) nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static size_t read_all(const char *path, uint8_t **ret)
{
        FILE *fp = fopen(path, "rb");
        size_t n = 0, allocated = 0;
        uint8_t *b = NULL;

        *ret = NULL;
        if (!fp)
                return 0;
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
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(write(fd, data, n), (ssize_t) n);
        close(fd);
}

static mode_t file_mode(const char *path)
{
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        return st.st_mode & 07777;
}

static off_t file_size(const char *path)
{
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        return st.st_size;
}

/* Whether needle occurs in the file path or in path + "-wal" (a copy would take both). */
static bool files_contain(const char *db, const void *needle, size_t n)
{
        const char *suffixes[] = { "", "-wal", "-journal" };
        bool found = false;

        for (size_t i = 0; i < 3 && !found; i++) {
                char p[160];
                uint8_t *b;
                size_t len;

                snprintf(p, sizeof(p), "%s%s", db, suffixes[i]);
                len = read_all(p, &b);
                found = b && memmem(b, len, needle, n);
                free(b);
        }
        return found;
}

static bool any_secret_in_files(const char *db)
{
        return files_contain(db, shared_key, sizeof(shared_key)) || files_contain(db, pin, sizeof(pin)) ||
               files_contain(db, code, strlen(code));
}

static int64_t peek_int(const char *db, const char *sql)
{
        sqlite3 *c = NULL;
        sqlite3_stmt *st = NULL;
        int64_t v;

        assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(c);
        return v;
}

static void peek_exec(const char *db, const char *sql)
{
        sqlite3 *c = NULL;

        assert_int_equal(sqlite3_open_v2(db, &c, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(c, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(c);
}

static SecretKey *key_of(uint8_t fill)
{
        uint8_t b[SECRET_KEY_SIZE];
        SecretKey *k = NULL;

        memset(b, fill, sizeof(b));
        assert_int_equal(secret_key_from_bytes(b, sizeof(b), &k), 0);
        return k;
}

/* A lock with a shared key and PIN, a user and a code; returns the lock id. */
static int64_t add_secrets(Store *s, const char *name, const char *address, int64_t *ret_cred)
{
        struct store_lock l;
        struct store_credential c;
        int64_t id, user;

        store_lock_init(&l);
        l.name = (char *) name;
        l.address = (char *) address;
        l.auth_id = 7;
        l.shared_key_sealed = (uint8_t *) shared_key;
        l.shared_key_sealed_size = sizeof(shared_key);
        l.security_pin_sealed = (uint8_t *) pin;
        l.security_pin_sealed_size = sizeof(pin);
        id = store_lock_add(s, &l);
        assert_true(id > 0);

        user = store_user_add(s, name, 0);
        assert_true(user > 0);
        store_credential_init(&c);
        c.user_id = user;
        c.name = (char *) name;
        c.code_sealed = (uint8_t *) code;
        c.code_sealed_size = strlen(code);
        *ret_cred = store_credential_add(s, &c);
        assert_true(*ret_cred > 0);
        return id;
}

static void assert_plain_secrets(Store *s, int64_t lock_id, int64_t cred_id)
{
        struct store_lock g;
        struct store_credential c;

        assert_int_equal(store_lock_get(s, lock_id, &g), 0);
        assert_int_equal(g.key_version, 0);
        assert_int_equal(g.shared_key_sealed_size, sizeof(shared_key));
        assert_memory_equal(g.shared_key_sealed, shared_key, sizeof(shared_key));
        assert_int_equal(g.security_pin_sealed_size, sizeof(pin));
        assert_memory_equal(g.security_pin_sealed, pin, sizeof(pin));
        store_lock_done(&g);

        assert_int_equal(store_credential_get(s, cred_id, &c), 0);
        assert_int_equal(c.key_version, 0);
        assert_int_equal(c.code_sealed_size, strlen(code));
        assert_memory_equal(c.code_sealed, code, strlen(code));
        store_credential_done(&c);
}

/* ---- the key file ---- */

static void test_key_file_created_0600(void **state)
{
        struct fixture *f = *state;
        SecretKey *k = NULL, *k2 = NULL;
        char id[SECRET_KEY_ID_LEN + 1];

        umask(0022);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), 0);
        assert_int_equal(k->source, SECRET_KEY_SOURCE_FILE);
        assert_int_equal(file_mode(f->key), 0600);
        assert_int_equal(file_size(f->key), SECRET_KEY_SIZE);
        assert_int_equal(strlen(secret_key_id(k)), SECRET_KEY_ID_LEN);
        snprintf(id, sizeof(id), "%s", secret_key_id(k));
        k = secret_key_free(k);

        /* the second start reads the same key, and does not rewrite it */
        assert_int_equal(secret_key_load(f->dir, id, &k2), 0);
        assert_string_equal(secret_key_id(k2), id);
        secret_key_free(k2);

        /* no temporary files left behind */
        {
                char p[160];
                snprintf(p, sizeof(p), "%s/%s.new", f->dir, SECRET_KEY_FILENAME);
                assert_int_equal(access(p, F_OK), -1);
        }
}

static void test_key_file_refused(void **state)
{
        struct fixture *f = *state;
        uint8_t b[SECRET_KEY_SIZE + 1];
        SecretKey *k = NULL;
        uint8_t *before, *after;
        size_t n1, n2;

        memset(b, 0x42, sizeof(b));
        write_all(f->key, b, SECRET_KEY_SIZE, 0644);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), -ENOKEY);
        assert_null(k);
        write_all(f->key, b, SECRET_KEY_SIZE, 0640);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), -ENOKEY);

        /* the wrong size, even with a good mode: refused, and left as it was */
        write_all(f->key, b, SECRET_KEY_SIZE - 1, 0600);
        n1 = read_all(f->key, &before);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), -ENOKEY);
        n2 = read_all(f->key, &after);
        assert_int_equal(n1, n2);
        assert_memory_equal(before, after, n1);
        free(before);
        free(after);
        write_all(f->key, b, SECRET_KEY_SIZE + 1, 0600);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), -ENOKEY);
        write_all(f->key, "", 0, 0600);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), -ENOKEY);

        /* a symlink is not followed */
        assert_int_equal(unlink(f->key), 0);
        assert_int_equal(symlink("/dev/zero", f->key), 0);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), -ENOKEY);
        assert_int_equal(unlink(f->key), 0);

        /* 64 hex digits and a newline are a key too */
        write_all(f->key, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 65, 0600);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), 0);
        for (unsigned i = 0; i < SECRET_KEY_SIZE; i++)
                assert_int_equal(k->bytes[i], i);
        secret_key_free(k);
}

static void test_key_missing_when_database_expects_one(void **state)
{
        struct fixture *f = *state;
        SecretKey *k = NULL;

        assert_int_equal(secret_key_load(f->dir, "0123456789abcdef", &k), -ENOKEY);
        assert_null(k);
        assert_int_equal(access(f->key, F_OK), -1); /* no new key made up */
}

static void test_credential_preferred(void **state)
{
        struct fixture *f = *state;
        char creds[128], path[192];
        uint8_t b[SECRET_KEY_SIZE];
        SecretKey *k = NULL, *want = key_of(0x77);

        snprintf(creds, sizeof(creds), "%s/creds", f->dir);
        assert_int_equal(mkdir(creds, 0700), 0);
        snprintf(path, sizeof(path), "%s/%s", creds, SECRET_CREDENTIAL);
        memset(b, 0x77, sizeof(b));
        write_all(path, b, sizeof(b), 0400);
        setenv("CREDENTIALS_DIRECTORY", creds, 1);

        assert_int_equal(secret_key_load(f->dir, NULL, &k), 0);
        assert_int_equal(k->source, SECRET_KEY_SOURCE_CREDENTIAL);
        assert_string_equal(secret_key_id(k), secret_key_id(want));
        assert_int_equal(access(f->key, F_OK), -1); /* no key file when a credential is there */
        secret_key_free(k);

        /* a credential of the wrong size is refused, not replaced by the file */
        write_all(path, b, 16, 0400);
        assert_int_equal(secret_key_load(f->dir, NULL, &k), -ENOKEY);
        secret_key_free(want);
}

static void test_rotation_files(void **state)
{
        struct fixture *f = *state;
        SecretKey *old = NULL, *new = key_of(0x31), *k = NULL;
        char next[160], old_id[SECRET_KEY_ID_LEN + 1];

        snprintf(next, sizeof(next), "%s.new", f->key);
        assert_int_equal(secret_key_load(f->dir, NULL, &old), 0);
        snprintf(old_id, sizeof(old_id), "%s", secret_key_id(old));

        /* crash before the database committed: the old key stays, the new file goes */
        assert_int_equal(secret_key_stage_file(f->dir, new), 0);
        assert_int_equal(file_mode(next), 0600);
        assert_int_equal(secret_key_load(f->dir, old_id, &k), 0);
        assert_string_equal(secret_key_id(k), old_id);
        assert_int_equal(access(next, F_OK), -1);
        k = secret_key_free(k);

        /* crash after the commit: the new key takes over */
        assert_int_equal(secret_key_stage_file(f->dir, new), 0);
        assert_int_equal(secret_key_load(f->dir, secret_key_id(new), &k), 0);
        assert_string_equal(secret_key_id(k), secret_key_id(new));
        assert_int_equal(access(next, F_OK), -1);
        assert_int_equal(file_mode(f->key), 0600);
        k = secret_key_free(k);

        /* the normal path */
        assert_int_equal(secret_key_write_file(f->key, old), 0);
        assert_int_equal(secret_key_stage_file(f->dir, new), 0);
        assert_int_equal(secret_key_commit_file(f->dir), 0);
        assert_int_equal(secret_key_read_file(f->key, &k), 0);
        assert_string_equal(secret_key_id(k), secret_key_id(new));
        secret_key_free(k);
        secret_key_free(old);
        secret_key_free(new);
}

static void test_seal_open(void **state)
{
        SecretKey *k = key_of(1), *other = key_of(2);
        uint8_t *sealed = NULL, *plain = NULL;
        size_t n = 0, m = 0;

        assert_int_equal(secret_seal(k, "a", 1, shared_key, sizeof(shared_key), &sealed, &n), 0);
        assert_int_equal(n, sizeof(shared_key) + SECRET_SEAL_OVERHEAD);
        assert_null(memmem(sealed, n, shared_key, sizeof(shared_key)));
        assert_int_equal(secret_open(k, "a", 1, sealed, n, &plain, &m), 0);
        assert_int_equal(m, sizeof(shared_key));
        assert_memory_equal(plain, shared_key, m);
        secret_free_wipe(plain, m);

        assert_int_equal(secret_open(other, "a", 1, sealed, n, &plain, &m), -EBADMSG);
        assert_int_equal(secret_open(k, "b", 1, sealed, n, &plain, &m), -EBADMSG);
        sealed[n - 1] ^= 1;
        assert_int_equal(secret_open(k, "a", 1, sealed, n, &plain, &m), -EBADMSG);
        assert_int_equal(secret_open(k, "a", 1, sealed, 10, &plain, &m), -EBADMSG);
        free(sealed);
        secret_key_free(k);
        secret_key_free(other);
}

/* ---- the store with a key ---- */

static void test_copy_without_key_reveals_nothing(void **state)
{
        struct fixture *f = *state;
        SecretKey *k = NULL;
        Store *s = NULL;
        int64_t lock, cred;
        char cp[160];

        assert_int_equal(secret_key_load(f->dir, NULL, &k), 0);
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k), 0);
        lock = add_secrets(s, "front", "54:D2:72:00:00:01", &cred);

        /* before a checkpoint (the WAL holds the rows) and after */
        assert_false(any_secret_in_files(f->db));
        assert_int_equal(store_checkpoint(s), 0);
        assert_false(any_secret_in_files(f->db));
        assert_plain_secrets(s, lock, cred);

        /* what is stored: key version 1, sealed blobs of the right size */
        assert_int_equal(peek_int(f->db, "SELECT key_version FROM locks"), 1);
        assert_int_equal(peek_int(f->db, "SELECT length(shared_key_sealed) FROM locks"),
                         sizeof(shared_key) + SECRET_SEAL_OVERHEAD);
        assert_int_equal(peek_int(f->db, "SELECT key_version FROM credentials"), 1);

        /* a copy of the file without the key: the store hands out only sealed bytes */
        snprintf(cp, sizeof(cp), "%s/copy.db", f->dir);
        {
                uint8_t *b;
                size_t n = read_all(f->db, &b);
                write_all(cp, b, n, 0600);
                free(b);
        }
        s = store_free(s);
        assert_false(any_secret_in_files(f->db));
        {
                Store *c = NULL;
                struct store_lock g;

                assert_false(files_contain(cp, shared_key, sizeof(shared_key)));
                assert_int_equal(store_open(cp, &c), 0);
                assert_int_equal(store_lock_get(c, lock, &g), 0);
                assert_int_equal(g.key_version, 1);
                assert_null(memmem(g.shared_key_sealed, g.shared_key_sealed_size, shared_key,
                                   sizeof(shared_key)));
                store_lock_done(&g);
                store_free(c);
        }
        secret_key_free(k);
}

static void test_wrong_key_refused(void **state)
{
        struct fixture *f = *state;
        SecretKey *k = key_of(1), *wrong = key_of(2);
        Store *s = NULL;
        int64_t lock, cred;
        char *id = NULL;

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_key_id(s, &id), -ENOENT);
        assert_int_equal(store_set_key(s, k), 0);
        assert_int_equal(store_key_id(s, &id), 0);
        assert_string_equal(id, secret_key_id(k));
        free(id);
        assert_int_equal(store_key_version(s), 1);
        lock = add_secrets(s, "front", "54:D2:72:00:00:01", &cred);
        s = store_free(s);

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, wrong), -EKEYREJECTED);
        assert_false(store_has_key(s));
        s = store_free(s);

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k), 0);
        assert_plain_secrets(s, lock, cred);
        store_free(s);
        secret_key_free(k);
        secret_key_free(wrong);
}

static void test_swapped_blob_fails(void **state)
{
        struct fixture *f = *state;
        SecretKey *k = key_of(1);
        struct store_lock g, *a = NULL;
        struct store_lock l;
        Store *s = NULL;
        int64_t lock, cred, back;
        size_t n = 0;

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k), 0);
        lock = add_secrets(s, "front", "54:D2:72:00:00:01", &cred);
        store_lock_init(&l);
        l.name = (char *) "back";
        l.address = (char *) "54:D2:72:00:00:02";
        l.shared_key_sealed = (uint8_t *) "another key of thirty-two bytes!";
        l.shared_key_sealed_size = 32;
        back = store_lock_add(s, &l);
        assert_true(back > lock);

        /* sealed bytes cannot be written through the API while there is a key */
        l.key_version = 1;
        l.id = back;
        assert_int_equal(store_lock_update(s, &l), -EINVAL);

        /* someone with write access to the file moves the front door's key to the back door */
        peek_exec(f->db, "UPDATE locks SET shared_key_sealed = "
                         "(SELECT shared_key_sealed FROM locks WHERE name = 'front') WHERE name = 'back'");
        assert_int_equal(store_lock_get(s, back, &g), -EBADMSG);
        assert_int_equal(store_lock_list(s, &a, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(a[0].name, "back");
        assert_null(a[0].shared_key_sealed);
        assert_int_equal(a[0].key_version, 1); /* unusable: re-pair */
        assert_string_equal(a[1].name, "front");
        assert_int_equal(a[1].key_version, 0);
        assert_memory_equal(a[1].shared_key_sealed, shared_key, sizeof(shared_key));
        store_lock_array_free(a, n);
        store_free(s);
        secret_key_free(k);
}

static void test_rekey_round_trip(void **state)
{
        struct fixture *f = *state;
        SecretKey *k1 = key_of(1), *k2 = key_of(2), *k3 = key_of(3);
        uint8_t old_blob[64];
        Store *s = NULL;
        int64_t lock, cred;
        char *id = NULL;

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k1), 0);
        lock = add_secrets(s, "front", "54:D2:72:00:00:01", &cred);
        assert_int_equal(store_checkpoint(s), 0);
        {
                sqlite3 *c = NULL;
                sqlite3_stmt *st = NULL;
                assert_int_equal(sqlite3_open_v2(f->db, &c, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
                assert_int_equal(sqlite3_prepare_v2(c, "SELECT shared_key_sealed FROM locks", -1, &st, NULL),
                                 SQLITE_OK);
                assert_int_equal(sqlite3_step(st), SQLITE_ROW);
                assert_int_equal(sqlite3_column_bytes(st, 0), sizeof(old_blob) + 9);
                memcpy(old_blob, sqlite3_column_blob(st, 0), sizeof(old_blob));
                sqlite3_finalize(st);
                sqlite3_close(c);
        }
        assert_true(files_contain(f->db, old_blob, sizeof(old_blob)));

        assert_int_equal(store_rekey(s, k3, k2), -EKEYREJECTED); /* not the current key */
        assert_int_equal(store_rekey(s, k1, k1), -EINVAL);
        assert_int_equal(store_rekey(s, k1, k2), 2);
        assert_int_equal(store_key_version(s), 2);
        assert_int_equal(store_key_id(s, &id), 0);
        assert_string_equal(id, secret_key_id(k2));
        free(id);
        assert_plain_secrets(s, lock, cred);
        assert_int_equal(peek_int(f->db, "SELECT count(*) FROM locks WHERE key_version = 2"), 1);
        assert_int_equal(peek_int(f->db, "SELECT count(*) FROM credentials WHERE key_version = 2"), 1);
        /* the blob sealed with the retired key is gone from the files */
        assert_false(files_contain(f->db, old_blob, sizeof(old_blob)));
        assert_false(any_secret_in_files(f->db));

        /* new writes use the new key; a second rotation works too */
        assert_int_equal(store_rekey(s, k2, k3), 2);
        s = store_free(s);

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k1), -EKEYREJECTED);
        s = store_free(s);
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k3), 0);
        assert_int_equal(store_key_version(s), 3);
        assert_plain_secrets(s, lock, cred);
        store_free(s);
        secret_key_free(k1);
        secret_key_free(k2);
        secret_key_free(k3);
}

static void test_plaintext_rows_migrated(void **state)
{
        struct fixture *f = *state;
        SecretKey *k = key_of(9);
        Store *s = NULL;
        int64_t lock, cred;

        /* rows written before there was a key: plaintext, key_version 0 */
        assert_int_equal(store_open(f->dir, &s), 0);
        lock = add_secrets(s, "front", "54:D2:72:00:00:01", &cred);
        s = store_free(s);
        assert_true(files_contain(f->db, shared_key, sizeof(shared_key))); /* the test can see them */
        assert_int_equal(peek_int(f->db, "SELECT key_version FROM locks"), 0);

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k), 0);
        assert_int_equal(peek_int(f->db, "SELECT key_version FROM locks"), 1);
        assert_int_equal(peek_int(f->db, "SELECT key_version FROM credentials"), 1);
        assert_false(any_secret_in_files(f->db));
        assert_plain_secrets(s, lock, cred);
        s = store_free(s);
        assert_false(any_secret_in_files(f->db));

        /* the same again changes nothing */
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k), 0);
        assert_plain_secrets(s, lock, cred);
        store_free(s);
        secret_key_free(k);
}

static void test_updates_stay_sealed(void **state)
{
        struct fixture *f = *state;
        SecretKey *k = key_of(5);
        struct store_lock g;
        struct store_credential c;
        Store *s = NULL;
        int64_t lock, cred;

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k), 0);
        lock = add_secrets(s, "front", "54:D2:72:00:00:01", &cred);

        /* read, change something else, write back: the secrets are sealed again */
        assert_int_equal(store_lock_get(s, lock, &g), 0);
        free(g.firmware);
        g.firmware = strdup("4.3.0");
        assert_int_equal(store_lock_update(s, &g), 0);
        store_lock_done(&g);
        assert_int_equal(store_credential_get(s, cred, &c), 0);
        c.enabled = false;
        assert_true(store_credential_update(s, &c) > 0);
        store_credential_done(&c);

        assert_int_equal(store_checkpoint(s), 0);
        assert_false(any_secret_in_files(f->db));
        assert_plain_secrets(s, lock, cred);
        store_free(s);
        secret_key_free(k);
}

static void test_lost_key_id_recovered(void **state)
{
        struct fixture *f = *state;
        SecretKey *k = key_of(4), *wrong = key_of(6);
        Store *s = NULL;
        int64_t lock, cred;
        char *id = NULL;

        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k), 0);
        lock = add_secrets(s, "front", "54:D2:72:00:00:01", &cred);
        assert_int_equal(store_rekey(s, k, wrong), 2); /* now at key version 2 */
        assert_int_equal(store_rekey(s, wrong, k), 2); /* and 3 */
        s = store_free(s);

        /* a salvage that lost the meta rows: the key that opens every row is accepted */
        peek_exec(f->db, "DELETE FROM meta WHERE key LIKE 'key-%'");
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, wrong), -EKEYREJECTED);
        s = store_free(s);
        assert_int_equal(store_open(f->dir, &s), 0);
        assert_int_equal(store_set_key(s, k), 0);
        assert_int_equal(store_key_version(s), 3);
        assert_int_equal(store_key_id(s, &id), 0);
        assert_string_equal(id, secret_key_id(k));
        free(id);
        assert_plain_secrets(s, lock, cred);
        store_free(s);
        secret_key_free(k);
        secret_key_free(wrong);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_key_file_created_0600, setup, teardown),
                cmocka_unit_test_setup_teardown(test_key_file_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_key_missing_when_database_expects_one, setup, teardown),
                cmocka_unit_test_setup_teardown(test_credential_preferred, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rotation_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_seal_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_copy_without_key_reveals_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_key_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_swapped_blob_fails, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rekey_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(test_plaintext_rows_migrated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_updates_stay_sealed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lost_key_id_recovered, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
