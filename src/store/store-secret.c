/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Secrets at rest: sealing the *_sealed columns with the hub key (lockhub/secret.h).
 *
 * Callers hand the store plaintext in the *_sealed members with key_version 0, and get
 * plaintext back with key_version 0. Once store_set_key() has been called the store seals
 * every secret it writes and opens every secret it reads; the database only ever holds
 *     key_version = N > 0: the bytes are a sealed blob (secret.h) made with key version N,
 *                          whose associated data is "lockhub/<table>.<column>/<row id>/N"
 *     key_version = 0:     plaintext, written before there was a key (or by a tool that
 *                          opened the store without one) — sealed by the next
 *                          store_set_key(), in one transaction.
 * meta holds the id and version of the key that sealed the rows (key-id, key-version), so a
 * wrong key is refused by name at start-up instead of failing row by row.
 *
 * Old page images are the weak point of sealing in place: after plaintext rows are sealed
 * and after a rotation the WAL is checkpointed and truncated, and secure_delete (set at
 * open) has zeroed the freed bytes in the b-tree pages, so neither the plaintext nor the
 * blobs of a retired key stay in the files.
 */

#include <inttypes.h>
#include <stdio.h>

#include "lockhub/log.h"
#include "lockhub/secret.h"
#include "store-internal.h"

#define META_KEY_ID      "key-id"
#define META_KEY_VERSION "key-version"
#define META_KEY_CHANGED "key-changed-usec"

struct sealed_table {
        const char *table;
        const char *columns[2];
        size_t n_columns;
};

static const struct sealed_table sealed_tables[] = {
        { "locks", { "shared_key_sealed", "security_pin_sealed" }, 2 },
        { "credentials", { "code_sealed" }, 1 },
};

static void ad_format(char *buf, size_t size, const char *table, const char *column, int64_t id,
                      unsigned version)
{
        snprintf(buf, size, "lockhub/%s.%s/%" PRId64 "/%u", table, column, id, version);
}

bool store_has_key(const Store *s)
{
        return s->key;
}

unsigned store_key_version(const Store *s)
{
        return s->key ? s->key_version : 0;
}

int store_seal_value(Store *s, const char *table, const char *column, int64_t id, const uint8_t *plain,
                     size_t n, uint8_t **ret, size_t *ret_n)
{
        char ad[128];

        *ret = NULL;
        *ret_n = 0;
        if (!plain || n == 0)
                return 0;
        ad_format(ad, sizeof ad, table, column, id, s->key_version);
        return secret_seal(s->key, ad, strlen(ad), plain, n, ret, ret_n);
}

static int open_value(const SecretKey *k, unsigned version, const char *table, const char *column,
                      int64_t id, uint8_t **value, size_t *size)
{
        uint8_t *plain = NULL;
        size_t n = 0;
        char ad[128];
        int r;

        if (!*value || *size == 0)
                return 0;
        ad_format(ad, sizeof ad, table, column, id, version);
        r = secret_open(k, ad, strlen(ad), *value, *size, &plain, &n);
        if (r < 0)
                return r;
        free(*value); /* sealed bytes: nothing to wipe */
        *value = plain;
        *size = n;
        return 0;
}

int store_open_values(Store *s, const char *table, int64_t id, const char *what, unsigned *key_version,
                      uint8_t **values[], size_t *sizes[], const char *const columns[], size_t n_columns)
{
        int r = 0;

        if (!s->key || *key_version == 0)
                return 0; /* no key: passed through as stored; 0: plaintext */
        if (*key_version == s->key_version)
                for (size_t i = 0; i < n_columns && r >= 0; i++)
                        r = open_value(s->key, *key_version, table, columns[i], id, values[i], sizes[i]);
        else
                r = -EBADMSG;
        if (r == -EBADMSG)
                log_error("Cannot open the sealed secrets of %s (%s id %" PRId64 ", key version %u, current "
                          "key version %u): the row is damaged or was sealed with another key. Re-enter "
                          "them "
                          "(re-pair the lock, set the code again).",
                          what, table, id, *key_version, s->key_version);
        if (r < 0)
                return r;
        *key_version = 0;
        return 0;
}

/* ---- sealing every row: migration of plaintext rows and key rotation ---- */

static int exec(Store *s, const char *sql)
{
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
        return rc == SQLITE_OK ? 0 : store_error(s, rc);
}

static int id_row(Store *s, sqlite3_stmt *st, void *element)
{
        *(int64_t *) element = sqlite3_column_int64(st, 0);
        return 0;
}

static int collect_ids(Store *s, const char *table, const char *where, int64_t **ret, size_t *ret_n)
{
        _cleanup_free_ char *sql = NULL;
        sqlite3_stmt *st = NULL;
        int64_t *a = NULL;
        size_t n = 0;
        int rc, r;

        if (asprintf(&sql, "SELECT id FROM %s WHERE %s ORDER BY id", table, where) < 0)
                return -ENOMEM;
        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc);
        r = store_collect(s, st, sizeof *a, id_row, (void **) &a, &n);
        sqlite3_finalize(st);
        if (r < 0) {
                free(a);
                return r;
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

/* Re-seals one row of t from (old key, old version; NULL/0: plaintext) to (s->key, new_version).
 * new_version 0: only opens the row (-EBADMSG when it does not open), writes nothing. */
static int reseal_row(Store *s, const struct sealed_table *t, int64_t id, const SecretKey *old,
                      unsigned old_version, unsigned new_version)
{
        _cleanup_free_ char *get = NULL, *set = NULL;
        sqlite3_stmt *g = NULL, *u = NULL;
        uint8_t *value[2] = {}, *sealed[2] = {};
        size_t size[2] = {}, sealed_size[2] = {};
        unsigned saved = s->key_version;
        int rc, r;

        if (asprintf(&get, "SELECT %s%s%s FROM %s WHERE id = ?1", t->columns[0],
                     t->n_columns > 1 ? ", " : "", t->n_columns > 1 ? t->columns[1] : "", t->table) < 0 ||
            asprintf(&set, "UPDATE %s SET key_version = ?1, %s = ?3%s%s%s WHERE id = ?2", t->table,
                     t->columns[0], t->n_columns > 1 ? ", " : "", t->n_columns > 1 ? t->columns[1] : "",
                     t->n_columns > 1 ? " = ?4" : "") < 0)
                return -ENOMEM;

        rc = sqlite3_prepare_v2(s->db, get, -1, &g, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc);
        sqlite3_bind_int64(g, 1, id);
        rc = sqlite3_step(g);
        if (rc != SQLITE_ROW) {
                r = rc == SQLITE_DONE ? -ENOENT : store_error(s, rc);
                goto finish;
        }
        r = 0;
        for (size_t i = 0; i < t->n_columns && r >= 0; i++) {
                r = store_col_blobdup(g, (int) i, &value[i], &size[i]);
                if (r >= 0 && old)
                        r = open_value(old, old_version, t->table, t->columns[i], id, &value[i], &size[i]);
        }
        if (r == -EBADMSG && new_version > 0)
                log_error("Cannot open the sealed secrets of %s id %" PRId64 " (key version %u) with the "
                          "current key: the row is damaged. Remove it (unpair the lock, remove the code) "
                          "and "
                          "try again.",
                          t->table, id, old_version);
        if (r < 0 || new_version == 0) /* 0: only check that it opens */
                goto finish;

        s->key_version = new_version;
        for (size_t i = 0; i < t->n_columns && r >= 0; i++)
                r = store_seal_value(s, t->table, t->columns[i], id, value[i], size[i], &sealed[i],
                                     &sealed_size[i]);
        s->key_version = saved;
        if (r < 0)
                goto finish;

        rc = sqlite3_prepare_v2(s->db, set, -1, &u, NULL);
        if (rc != SQLITE_OK) {
                r = store_error(s, rc);
                goto finish;
        }
        sqlite3_bind_int64(u, 1, new_version);
        sqlite3_bind_int64(u, 2, id);
        for (size_t i = 0; i < t->n_columns; i++)
                store_bind_blob(u, 3 + (int) i, sealed[i], sealed_size[i]);
        r = store_step_done(s, u);

finish:
        for (size_t i = 0; i < 2; i++) {
                secret_free_wipe(value[i], size[i]);
                free(sealed[i]);
        }
        sqlite3_finalize(g);
        sqlite3_finalize(u);
        return r;
}

/* Re-seals every row of every sealed table whose key_version is `from` (0: plaintext rows).
 * Returns the number of rows. */
static int reseal_all(Store *s, unsigned from, const SecretKey *old, unsigned new_version)
{
        int total = 0, r;

        for (size_t i = 0; i < ELEMENTSOF(sealed_tables); i++) {
                _cleanup_free_ int64_t *ids = NULL;
                char where[64];
                size_t n = 0;

                snprintf(where, sizeof where, "key_version = %u", from);
                r = collect_ids(s, sealed_tables[i].table, where, &ids, &n);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < n; j++) {
                        r = reseal_row(s, &sealed_tables[i], ids[j], from == 0 ? NULL : old, from,
                                       new_version);
                        if (r < 0)
                                return r;
                }
                total += (int) n;
        }
        return total;
}

static int max_key_version(Store *s, unsigned *ret)
{
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        rc = sqlite3_prepare_v2(s->db,
                                "SELECT max((SELECT coalesce(max(key_version), 0) FROM locks), "
                                "(SELECT coalesce(max(key_version), 0) FROM credentials))",
                                -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                int64_t v = sqlite3_column_int64(st, 0);
                if (v < 0 || v > INT32_MAX)
                        r = -EBADMSG;
                else
                        *ret = (unsigned) v;
        } else
                r = store_error(s, rc);
        sqlite3_finalize(st);
        return r;
}

/* Rows sealed with a key version other than 0 and `version`: they cannot be opened. */
static int count_foreign(Store *s, unsigned version, int64_t *ret)
{
        _cleanup_free_ char *sql = NULL;
        sqlite3_stmt *st = NULL;
        int rc, r = 0;

        if (asprintf(&sql,
                     "SELECT (SELECT count(*) FROM locks WHERE key_version NOT IN (0, %u)) + "
                     "(SELECT count(*) FROM credentials WHERE key_version NOT IN (0, %u))",
                     version, version) < 0)
                return -ENOMEM;
        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                *ret = sqlite3_column_int64(st, 0);
        else
                r = store_error(s, rc);
        sqlite3_finalize(st);
        return r;
}

/* Drops old page images (plaintext, or blobs of a retired key) from the WAL. */
static void purge_wal(Store *s)
{
        int r = store_checkpoint(s);

        if (r < 0)
                log_warning_errno(r,
                                  "Could not checkpoint the database %s after sealing secrets (%m); old "
                                  "copies stay in %s-wal until the next checkpoint.",
                                  s->path, s->path);
}

static int write_key_meta(Store *s, const SecretKey *k, unsigned version)
{
        char v[16], now[24];
        int r;

        snprintf(v, sizeof v, "%u", version);
        snprintf(now, sizeof now, "%" PRIu64, store_now_usec());
        r = store_meta_set(s, META_KEY_ID, secret_key_id(k));
        if (r >= 0)
                r = store_meta_set(s, META_KEY_VERSION, v);
        if (r >= 0)
                r = store_meta_set(s, META_KEY_CHANGED, now);
        return r;
}

static int read_key_version(Store *s, unsigned *ret)
{
        _cleanup_free_ char *v = NULL;
        unsigned long u;
        char *end;
        int r;

        r = store_meta_get(s, META_KEY_VERSION, &v);
        if (r < 0)
                return r;
        errno = 0;
        u = strtoul(v, &end, 10);
        if (errno != 0 || *end || end == v || u == 0 || u > INT32_MAX)
                return -EBADMSG;
        *ret = (unsigned) u;
        return 0;
}

int store_key_id(Store *s, char **ret)
{
        return store_meta_get(s, META_KEY_ID, ret);
}

int store_set_key(Store *s, const SecretKey *k)
{
        _cleanup_(secret_key_freep) SecretKey *copy = NULL;
        _cleanup_free_ char *id = NULL;
        unsigned version = 0;
        int64_t foreign = 0;
        bool fresh;
        int r, n;

        if (s->key || !sqlite3_get_autocommit(s->db))
                return -EBUSY;
        r = secret_key_dup(k, &copy);
        if (r < 0)
                return log_oom();

        r = store_key_id(s, &id);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to read the key id from %s: %m", s->path);
        fresh = r == -ENOENT;
        if (!fresh) {
                if (!streq(id, secret_key_id(k)))
                        return log_error_errno(
                                        -EKEYREJECTED,
                                        "The secrets in %s were sealed with key id %s, but the key from "
                                        "%s%s%s has "
                                        "id %s. Refusing to start with the wrong key: restore the key that "
                                        "belongs to "
                                        "this database (see lockhubd(8), SECURITY). If 'lockhubctl rekey' "
                                        "was just run "
                                        "with a credential, install the new key as the credential %s.",
                                        s->path, id, secret_key_source_to_string(k->source),
                                        k->path[0] ? " " : "", k->path, secret_key_id(k), SECRET_CREDENTIAL);
                r = read_key_version(s, &version);
                if (r < 0)
                        return log_error_errno(r == -ENOENT ? -EBADMSG : r,
                                               "Database %s records key id %s without a valid key version.",
                                               s->path, id);
        }

        if (fresh) {
                /* No key id but sealed rows: a salvaged database that lost its meta rows. The
                 * key is the right one when every row of the newest version opens with it. */
                r = max_key_version(s, &version);
                if (r < 0)
                        return log_error_errno(r, "Failed to read %s: %m", s->path);
                if (version > 0) {
                        n = reseal_all(s, version, copy, 0);
                        if (n < 0)
                                return log_error_errno(n == -EBADMSG ? -EKEYREJECTED : n,
                                                       "Database %s records no key id, and its secrets (key "
                                                       "version %u) do "
                                                       "not open with the key from %s%s%s (id %s). Refusing "
                                                       "to start: "
                                                       "restore the key that belongs to this database (see "
                                                       "lockhubd(8)).",
                                                       s->path, version,
                                                       secret_key_source_to_string(k->source),
                                                       k->path[0] ? " " : "", k->path, secret_key_id(k));
                        log_notice("Database %s records no key id, but its %d sealed row(s) open with key "
                                   "id %s: "
                                   "recording it as key version %u.",
                                   s->path, n, secret_key_id(k), version);
                } else
                        version = 1;
        }

        r = count_foreign(s, version, &foreign);
        if (r < 0)
                return log_error_errno(r, "Failed to read %s: %m", s->path);
        if (foreign > 0)
                log_warning("Database %s holds %" PRId64 " row(s) sealed with another key version than %u; "
                            "their secrets cannot be read.",
                            s->path, foreign, version);

        r = store_begin(s);
        if (r < 0)
                return log_error_errno(r, "Failed to start a transaction on %s: %m", s->path);
        s->key = TAKE_PTR(copy);
        s->key_version = version;
        if (fresh)
                r = write_key_meta(s, k, version);
        n = r < 0 ? r : reseal_all(s, 0, NULL, version);
        if (n >= 0)
                r = store_commit(s);
        else
                r = n;
        if (r < 0) {
                store_rollback(s);
                s->key = secret_key_free(s->key);
                return log_error_errno(r, "Failed to seal the secrets in %s: %m", s->path);
        }
        if (fresh)
                log_info("Database %s: secrets are sealed with key id %s (version %u).", s->path,
                         secret_key_id(k), version);
        if (n > 0) {
                log_notice("Database %s: sealed the secrets of %d row(s) stored before there was a key.",
                           s->path, n);
                purge_wal(s);
        }
        return 0;
}

int store_rekey(Store *s, const SecretKey *old, const SecretKey *new)
{
        _cleanup_(secret_key_freep) SecretKey *copy = NULL;
        SecretKey *prev;
        unsigned version;
        int r, n;

        if (!s->key || !old || !new)
                return -ENOKEY;
        if (!streq(secret_key_id(old), secret_key_id(s->key)))
                return -EKEYREJECTED;
        if (streq(secret_key_id(new), secret_key_id(old)))
                return -EINVAL;
        if (!sqlite3_get_autocommit(s->db))
                return -EBUSY;
        r = secret_key_dup(new, &copy);
        if (r < 0)
                return r;

        version = s->key_version + 1;
        r = store_begin(s);
        if (r < 0)
                return r;
        prev = s->key;
        s->key = copy;
        /* rows still in plaintext (written before there was a key), then the sealed ones */
        n = reseal_all(s, 0, NULL, version);
        if (n >= 0) {
                int sealed = reseal_all(s, s->key_version, prev, version);
                n = sealed < 0 ? sealed : n + sealed;
        }
        r = n < 0 ? n : write_key_meta(s, new, version);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0) {
                store_rollback(s);
                s->key = prev;
                return r;
        }
        TAKE_PTR(copy);
        secret_key_free(prev);
        s->key_version = version;
        purge_wal(s);
        return n;
}

int64_t store_next_id(Store *s, const char *table)
{
        _cleanup_free_ char *sql = NULL;
        sqlite3_stmt *st = NULL;
        int64_t id = 0;
        int rc;

        if (asprintf(&sql, "SELECT coalesce(max(id), 0) + 1 FROM %s", table) < 0)
                return -ENOMEM;
        rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc != SQLITE_OK)
                return store_error(s, rc);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                id = sqlite3_column_int64(st, 0);
        else
                id = store_error(s, rc);
        sqlite3_finalize(st);
        return id;
}

int store_savepoint(Store *s, const char *name)
{
        char sql[64];

        int r;

        snprintf(sql, sizeof sql, "SAVEPOINT %s", name);
        r = exec(s, sql);
        /* Where its kept changes start: they go too when it is rolled back. */
        if (r >= 0 && s->n_savepoints < ELEMENTSOF(s->savepoint_mark))
                s->savepoint_mark[s->n_savepoints] = s->n_replay;
        if (r >= 0)
                s->n_savepoints++;
        return r;
}

int store_savepoint_end(Store *s, const char *name, int r)
{
        char sql[96];
        int k;

        if (s->n_savepoints > 0 && --s->n_savepoints < ELEMENTSOF(s->savepoint_mark) && r < 0)
                store_replay_truncate(s, s->savepoint_mark[s->n_savepoints]);
        /* A full disk undid the batch this savepoint was part of: its changes are kept. */
        if (store_keeping(s) && sqlite3_get_autocommit(s->db))
                return r;
        if (r < 0) {
                snprintf(sql, sizeof sql, "ROLLBACK TO %s; RELEASE %s", name, name);
                (void) sqlite3_exec(s->db, sql, NULL, NULL, NULL);
                return r;
        }
        snprintf(sql, sizeof sql, "RELEASE %s", name);
        k = exec(s, sql);
        return k < 0 ? k : r;
}

int store_checkpoint(Store *s)
{
        int busy = 0, rc;

        rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, &busy);
        if (rc != SQLITE_OK)
                return store_error(s, rc);
        return busy ? -EBUSY : 0;
}
