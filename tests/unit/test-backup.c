/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backup and restore: the round trip between two hubs' databases, the passphrase, and
 * every kind of bad document refused with a message naming the place, while the
 * database stays exactly as it was.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lockhub/backup.h"
#include "lockhub/codes.h"
#include "lockhub/log.h"

#define NOW UINT64_C(1772323200000000)

static const BackupOptions secret_opts = {
        .include_secrets = true,
        .passphrase = "correct horse battery staple",
        .opslimit = crypto_pwhash_OPSLIMIT_MIN,
        .memlimit = crypto_pwhash_MEMLIMIT_MIN,
};

struct fixture {
        char dir[2][64];
        Store *store[2];
        int64_t front, back;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int64_t add_lock(Store *s, const char *name, const char *address, bool with_keys)
{
        struct store_lock l;
        uint8_t key[32], pin[2] = { 0xd2, 0x04 };

        memset(key, 0xab, sizeof key);
        store_lock_init(&l);
        l.name = (char *) name;
        l.address = (char *) address;
        l.model = (char *) "Smart Lock 3.0";
        if (with_keys) {
                l.auth_id = 42;
                l.app_id = 7;
                l.id_type = 1;
                l.shared_key_sealed = key;
                l.shared_key_sealed_size = sizeof key;
                l.security_pin_sealed = pin;
                l.security_pin_sealed_size = sizeof pin;
        }
        return store_lock_add(s, &l);
}

static LockCode mk(const char *digits, const char *name)
{
        LockCode c;

        lock_code_init(&c);
        snprintf(c.digits, sizeof c.digits, "%s", digits);
        snprintf(c.name, sizeof c.name, "%s", name);
        return c;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof *f);
        int64_t alice, bob, both[2];
        LockCode c;

        log_set_max_level(LOG_WARNING);
        for (int i = 0; i < 2; i++) {
                snprintf(f->dir[i], sizeof f->dir[i], "/tmp/test-backup-XXXXXX");
                assert_non_null(mkdtemp(f->dir[i]));
                assert_int_equal(store_open(f->dir[i], &f->store[i]), 0);
        }
        f->front = add_lock(f->store[0], "front", "AA:BB:CC:DD:EE:01", true);
        f->back = add_lock(f->store[0], "back", "AA:BB:CC:DD:EE:02", true);
        both[0] = f->front;
        both[1] = f->back;
        assert_true(store_snapshot_add(f->store[0], f->front, "config", "paired", 3, NOW,
                                       "{\"name\":\"Front door\",\"led_brightness\":3,\"timezone_id\":37}") >
                    0);
        assert_true(store_snapshot_add(f->store[0], f->front, "advanced-config", "paired", 3, NOW,
                                       "{\"auto_lock_timeout\":120,\"nightmode_enabled\":false}") > 0);
        assert_int_equal(codes_user_add(f->store[0], "Alice", &alice), 0);
        assert_int_equal(codes_user_add(f->store[0], "Bob", &bob), 0);
        c = mk("345678", "Alice");
        assert_int_equal(codes_code_add(f->store[0], alice, &c, both, 2, NULL, NULL), 0);
        c = mk("456789", "Bob weekdays");
        c.weekdays = 0x1f;
        c.time_from_min = 7 * 60;
        c.time_until_min = 19 * 60;
        c.valid_until_usec = NOW + UINT64_C(86400000000);
        assert_int_equal(codes_code_add(f->store[0], bob, &c, &f->front, 1, NULL, NULL), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        for (int i = 0; i < 2; i++) {
                store_free(f->store[i]);
                (void) nftw(f->dir[i], rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        }
        free(f);
        return 0;
}

/* Everything restore could touch, as text, to prove a refusal changed nothing. */
static char *fingerprint(Store *s)
{
        struct store_user *u = NULL;
        struct store_credential *c = NULL;
        struct store_assignment *a = NULL;
        struct store_lock *l = NULL;
        size_t nu = 0, nc = 0, na = 0, nl = 0;
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_int_equal(store_user_list(s, &u, &nu), 0);
        assert_int_equal(store_credential_list(s, 0, &c, &nc), 0);
        assert_int_equal(store_assignment_list(s, 0, &a, &na), 0);
        assert_int_equal(store_lock_list(s, &l, &nl), 0);
        for (size_t i = 0; i < nu; i++)
                fprintf(f, "u %s;", u[i].name);
        for (size_t i = 0; i < nc; i++)
                fprintf(f, "c %s %lld %u;", c[i].name, (long long) c[i].revision, c[i].weekdays);
        /* by names: ids differ between two hubs */
        for (size_t i = 0; i < nl; i++)
                for (size_t j = 0; j < na; j++)
                        for (size_t k = 0; k < nc; k++)
                                if (a[j].lock_id == l[i].id && a[j].credential_id == c[k].id)
                                        fprintf(f, "a %s %s %s %s;", l[i].name, c[k].name, a[j].desired,
                                                a[j].state);
        for (size_t i = 0; i < nl; i++)
                fprintf(f, "l %s %s;", l[i].name, l[i].address);
        for (size_t i = 0; i < nl; i++) {
                char *j = NULL;
                if (store_snapshot_latest(s, l[i].address, "config", &j) >= 0)
                        fprintf(f, "s %s;", j);
                free(j);
        }
        fclose(f);
        store_user_array_free(u, nu);
        store_credential_array_free(c, nc);
        store_assignment_array_free(a, na);
        store_lock_array_free(l, nl);
        return buf;
}

static void test_plain_backup_has_no_secrets(void **state)
{
        struct fixture *f = *state;
        uint8_t *data = NULL;
        size_t size = 0;
        char *err = NULL, *text;
        Backup *b = NULL;

        assert_int_equal(backup_create(f->store[0], NULL, 0, &(BackupOptions){}, NOW, &data, &size, &err),
                         0);
        text = strndup((char *) data, size);
        assert_null(strstr(text, "345678"));
        assert_null(strstr(text, "abababab"));
        assert_null(strstr(text, "shared_key"));
        assert_non_null(strstr(text, "\"format\": \"lockhub-backup\""));
        assert_non_null(strstr(text, "\"Front door\""));
        assert_false(backup_is_encrypted(data, size));

        assert_int_equal(backup_parse(data, size, NULL, &b, &err), 0);
        assert_false(backup_has_secrets(b));
        assert_int_equal(backup_n_locks(b), 2);
        assert_int_equal(backup_n_users(b), 2);
        assert_int_equal(backup_n_codes(b), 2);
        backup_free(b);

        /* one lock only: Bob's code and Alice's both on "front" */
        free(data);
        assert_int_equal(
                        backup_create(f->store[0], &f->back, 1, &(BackupOptions){}, NOW, &data, &size, &err),
                        0);
        assert_int_equal(backup_parse(data, size, NULL, &b, &err), 0);
        assert_int_equal(backup_n_locks(b), 1);
        assert_int_equal(backup_n_users(b), 1); /* only Alice has a code on "back" */
        backup_free(b);
        free(data);
        free(text);
}

static void test_round_trip_with_secrets(void **state)
{
        struct fixture *f = *state;
        BackupRestoreResult res = {};
        uint8_t *data = NULL;
        size_t size = 0;
        char *err = NULL, *a, *bfp;
        Backup *b = NULL;
        struct store_lock l;
        struct store_credential *creds = NULL;
        size_t n = 0;

        assert_int_equal(backup_create(f->store[0], NULL, 0, &(BackupOptions){ .include_secrets = true },
                                       NOW, &data, &size, &err),
                         -EINVAL);
        assert_string_equal(err, "a backup with secrets needs a passphrase");
        free(err);
        err = NULL;

        assert_int_equal(backup_create(f->store[0], NULL, 0, &secret_opts, NOW, &data, &size, &err), 0);
        assert_true(backup_is_encrypted(data, size));
        assert_null(memmem(data, size, "345678", 6));
        assert_null(memmem(data, size, "Alice", 5));

        /* the passphrase is needed, and only the right one opens it */
        assert_int_equal(backup_parse(data, size, NULL, &b, &err), -ENOKEY);
        assert_string_equal(err, "the backup is encrypted: a passphrase is needed");
        assert_int_equal(backup_parse(data, size, "wrong", &b, &err), -EBADMSG);
        assert_string_equal(err, "cannot decrypt the backup: wrong passphrase, or the file was changed");
        free(err);
        err = NULL;
        assert_int_equal(backup_parse(data, size, secret_opts.passphrase, &b, &err), 0);
        assert_true(backup_has_secrets(b));

        /* onto an empty hub: locks come back paired, users and codes with their digits */
        assert_int_equal(backup_restore(f->store[1], b, NULL, NULL, NOW, &res, &err), 0);
        assert_int_equal(res.locks_added, 2);
        assert_int_equal(res.users_added, 2);
        assert_int_equal(res.codes_added, 2);
        assert_int_equal(res.assignments, 3);
        assert_int_equal(res.snapshots, 2);
        assert_int_equal(res.n_lock_ids, 2);
        backup_restore_result_done(&res);
        a = fingerprint(f->store[0]);
        bfp = fingerprint(f->store[1]);
        assert_string_equal(a, bfp);
        free(a);
        free(bfp);
        store_lock_init(&l);
        assert_int_equal(store_lock_get_by_name(f->store[1], "front", &l), 0);
        assert_int_equal(l.auth_id, 42);
        assert_int_equal(l.shared_key_sealed_size, 32);
        assert_int_equal(l.shared_key_sealed[31], 0xab);
        assert_int_equal(l.security_pin_sealed_size, 2);
        store_lock_done(&l);
        assert_int_equal(store_credential_list(f->store[1], 0, &creds, &n), 0);
        assert_int_equal(n, 2);
        assert_memory_equal(creds[0].code_sealed, "345678", 6);
        assert_int_equal(creds[1].time_from_min, 7 * 60);
        assert_int_equal(creds[1].weekdays, 0x1f);
        store_credential_array_free(creds, n);

        /* restoring again changes nothing */
        a = fingerprint(f->store[1]);
        assert_int_equal(backup_restore(f->store[1], b, NULL, NULL, NOW, &res, &err), 0);
        assert_int_equal(res.users_added + res.codes_added + res.codes_updated + res.locks_added +
                                         res.assignments,
                         0);
        backup_restore_result_done(&res);
        bfp = fingerprint(f->store[1]);
        assert_string_equal(a, bfp);
        free(a);
        free(bfp);
        backup_free(b);
        free(data);
}

static void test_restore_to_another_lock(void **state)
{
        struct fixture *f = *state;
        BackupRestoreResult res = {};
        struct store_assignment *asg = NULL;
        uint8_t *data = NULL;
        size_t size = 0, n = 0;
        char *err = NULL;
        Backup *b = NULL;
        int64_t garage = add_lock(f->store[1], "garage", "AA:BB:CC:DD:EE:09", true);

        assert_int_equal(backup_create(f->store[0], &f->front, 1, &secret_opts, NOW, &data, &size, &err), 0);
        assert_int_equal(backup_parse(data, size, secret_opts.passphrase, &b, &err), 0);
        assert_int_equal(backup_restore(f->store[1], b, NULL, "nope", NOW, &res, &err), -ENOENT);
        assert_string_equal(err, "no paired lock named \"nope\"");
        assert_int_equal(backup_restore(f->store[1], b, NULL, "garage", NOW, &res, &err), 0);
        assert_int_equal(res.locks_added, 0);
        assert_int_equal(res.codes_added, 2);
        assert_int_equal(res.n_lock_ids, 1);
        assert_int_equal(res.lock_ids[0], garage);
        backup_restore_result_done(&res);
        assert_int_equal(store_assignment_list(f->store[1], garage, &asg, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(asg[0].state, "pending");
        store_assignment_array_free(asg, n);
        backup_free(b);
        free(data);
        free(err);
}

static void test_tampered_refused_nothing_changed(void **state)
{
        struct fixture *f = *state;
        uint8_t *data = NULL;
        size_t size = 0;
        char *err = NULL, *before, *after;
        Backup *b = NULL;

        before = fingerprint(f->store[0]);
        assert_int_equal(backup_create(f->store[0], NULL, 0, &secret_opts, NOW, &data, &size, &err), 0);
        /* a flipped bit anywhere: ciphertext, tag, salt, nonce, or the cost parameters */
        for (size_t at = 8; at < size; at += (at < 64 ? 1 : 97)) {
                data[at] ^= 0x01;
                assert_int_not_equal(backup_parse(data, size, secret_opts.passphrase, &b, &err), 0);
                data[at] ^= 0x01;
        }
        assert_int_equal(backup_parse(data, size - 1, secret_opts.passphrase, &b, &err), -EBADMSG);
        assert_int_equal(backup_parse(data, 40, secret_opts.passphrase, &b, &err), -EINVAL);
        assert_string_equal(err, "encrypted backup is truncated");
        /* absurd cost parameters are refused before any work is done */
        data[16 + 7] = 0x7f;
        assert_int_equal(backup_parse(data, size, secret_opts.passphrase, &b, &err), -EINVAL);
        assert_string_equal(err, "encrypted backup: key derivation parameters out of range");
        after = fingerprint(f->store[0]);
        assert_string_equal(before, after);
        free(before);
        free(after);
        free(data);
        free(err);
}

struct bad_doc {
        const char *json;
        int r;
        const char *error;
};

#define HEAD "{\"format\":\"lockhub-backup\",\"version\":1,\"secrets\":false,"
#define LOCK "{\"name\":\"front\",\"address\":\"aa:bb:cc:dd:ee:01\"}"

static const struct bad_doc bad_docs[] = {
        { "", -EINVAL, "the file is empty" },
        { "[]", -EINVAL, "document: must be a JSON object" },
        { "{\"format\":\"x\"}", -EINVAL, "document.format: not a lockhub backup (\"x\")" },
        { "{\"format\":\"lockhub-backup\",\"version\":2,\"locks\":[],\"users\":[]}", -EPROTONOSUPPORT,
          "document.version: written by a newer lockhub (version 2); this one reads version 1" },
        { "{\"format\":\"lockhub-backup\",\"version\":\"1\",\"locks\":[],\"users\":[]}", -EINVAL,
          "document.version: must be an integer" },
        { HEAD "\"locks\":[],\"users\":[],\"extra\":1}", -EINVAL, "document: unknown key \"extra\"" },
        { HEAD "\"locks\":[]}", -EINVAL, "document: \"users\" is missing" },
        { "{\"format\":\"lockhub-backup\",\"version\":1,\"secrets\":true,\"locks\":[],\"users\":[]}",
          -EINVAL, "document.secrets: a document with secrets must be encrypted" },
        { HEAD "\"locks\":[{\"name\":\"a b\",\"address\":\"aa:bb:cc:dd:ee:01\"}],\"users\":[]}", -EINVAL,
          "locks[0].name: \"a b\" is not a valid lock name" },
        { HEAD "\"locks\":[{\"name\":\"a\",\"address\":\"aa:bb:cc:dd:ee\"}],\"users\":[]}", -EINVAL,
          "locks[0].address: \"aa:bb:cc:dd:ee\" is not a Bluetooth address" },
        { HEAD "\"locks\":[" LOCK "," LOCK "],\"users\":[]}", -EINVAL,
          "locks[1].name: \"front\" appears twice" },
        { HEAD
          "\"locks\":[{\"name\":\"front\",\"address\":\"aa:bb:cc:dd:ee:01\",\"config\":{\"a\":{\"b\":1}}}],"
          "\"users\":[]}",
          -EINVAL, "locks[0].config.a: must be a number, string, boolean or null" },
        { HEAD "\"locks\":[{\"name\":\"front\",\"address\":\"aa:bb:cc:dd:ee:01\",\"pairing\":{\"auth_id\":1,"
               "\"shared_key\":\"00\"}}],\"users\":[]}",
          -EINVAL, "locks[0].pairing: pairing secrets in a document without \"secrets\": true" },
        { HEAD "\"locks\":[" LOCK
               "],\"users\":[{\"name\":\"A\",\"codes\":[{\"name\":\"A\",\"locks\":[\"back\"]}]}]}",
          -EINVAL, "users[0].codes[0].locks[0]: not the name of a lock in this document" },
        { HEAD "\"locks\":[" LOCK
               "],\"users\":[{\"name\":\"A\",\"codes\":[{\"name\":\"A\",\"locks\":[\"front\"],"
               "\"digits\":\"345678\"}]}]}",
          -EINVAL, "users[0].codes[0].digits: code digits in a document without \"secrets\": true" },
        { HEAD "\"locks\":[" LOCK "],\"users\":[{\"name\":\"A\",\"codes\":[{\"name\":\"A\",\"locks\":[],"
               "\"weekdays\":0}]}]}",
          -EINVAL,
          "users[0].codes[0]: At least one weekday must be allowed (Monday to Sunday). (rule weekdays)" },
        { HEAD "\"locks\":[" LOCK "],\"users\":[{\"name\":\"A\",\"codes\":[{\"name\":\"A\",\"locks\":[],"
               "\"time_from_min\":1440}]}]}",
          -EINVAL, "users[0].codes[0].time_from_min: must be between -1 and 1439" },
        { HEAD "\"locks\":[" LOCK "],\"users\":[{\"name\":\"A\",\"codes\":[{\"name\":\"A\",\"locks\":[],"
               "\"valid_from_usec\":-5}]}]}",
          -EINVAL, "users[0].codes[0].valid_from_usec: must be between 0 and 9223372036854775807" },
        { HEAD "\"locks\":[],\"users\":[{\"name\":\"A\"},{\"name\":\"A\"}]}", -EINVAL,
          "users[1].name: \"A\" appears twice" },
        { HEAD "\"locks\":[],\"users\":[{\"name\":\" A\"}]}", -EINVAL,
          "users[0].name: must not start or end with a space" },
        { HEAD "\"locks\":[],\"users\":[{\"name\":\"A\\u0000B\"}]}", -EINVAL,
          "users[0].name: contains a control character" },
        { HEAD "\"locks\":[],\"users\":[{\"name\":\"A\\u0007\"}]}", -EINVAL,
          "users[0].name: contains a control character" },
        { HEAD "\"locks\":[],\"users\":[{\"name\":\"\xc3\x28\"}]}", -EINVAL, NULL }, /* invalid UTF-8 */
        { HEAD "\"locks\":[],\"users\":[]} x", -EINVAL, "invalid JSON at byte 78: unexpected character" },
        { HEAD "\"locks\":[],\"users\":[[[[[[[[[[1]]]]]]]]]]}", -EINVAL,
          "invalid JSON: nested deeper than 8 levels" },
        { HEAD "\"locks\":[],\"users\":[],}", -EINVAL, NULL }, /* strict JSON: no trailing comma */
};

static void test_bad_documents(void **state)
{
        struct fixture *f = *state;
        char *before = fingerprint(f->store[0]), *after;

        for (size_t i = 0; i < ELEMENTSOF(bad_docs); i++) {
                char *err = NULL;
                Backup *b = NULL;
                int r = backup_parse(bad_docs[i].json, strlen(bad_docs[i].json), NULL, &b, &err);

                if (r != bad_docs[i].r || (bad_docs[i].error && (!err || !streq(err, bad_docs[i].error))))
                        fail_msg("document %zu: got %d \"%s\", want %d \"%s\"", i, r, strna(err),
                                 bad_docs[i].r, strna(bad_docs[i].error));
                assert_non_null(err);
                assert_null(b);
                free(err);
        }
        after = fingerprint(f->store[0]);
        assert_string_equal(before, after);
        free(before);
        free(after);
}

/* A document that is valid in itself but clashes with the hub: refused, rolled back. */
static void test_restore_conflict_rolls_back(void **state)
{
        struct fixture *f = *state;
        const char *doc = "{\"format\":\"lockhub-backup\",\"version\":1,\"secrets\":true,"
                          "\"locks\":[{\"name\":\"front\",\"address\":\"AA:BB:CC:DD:EE:01\"}],"
                          "\"users\":[{\"name\":\"Carol\",\"codes\":[{\"name\":\"Carol\",\"locks\":["
                          "\"front\"],"
                          "\"digits\":\"567891\"}]},"
                          "{\"name\":\"Dave\",\"codes\":[{\"name\":\"Dave\",\"locks\":[\"front\"],"
                          "\"digits\":\"345678\"}]}]}";
        BackupOptions o = secret_opts;
        BackupRestoreResult res = {};
        char *err = NULL, *before = fingerprint(f->store[0]), *after;
        uint8_t *enc = NULL;
        size_t size = 0;
        Backup *b = NULL;
        struct store_user u;

        /* encrypt by hand: the same format backup_create() writes */
        {
                uint8_t key[32];
                unsigned long long clen;

                size = BACKUP_HEADER_SIZE + strlen(doc) + crypto_aead_xchacha20poly1305_ietf_ABYTES;
                enc = calloc(1, size);
                memcpy(enc, BACKUP_MAGIC, 8);
                enc[8] = (uint8_t) o.opslimit;
                for (int i = 0; i < 8; i++)
                        enc[16 + i] = (uint8_t) (o.memlimit >> (8 * i));
                assert_int_equal(crypto_pwhash(key, 32, o.passphrase, strlen(o.passphrase), enc + 24,
                                               o.opslimit, (size_t) o.memlimit,
                                               crypto_pwhash_ALG_ARGON2ID13),
                                 0);
                crypto_aead_xchacha20poly1305_ietf_encrypt(enc + 64, &clen, (const uint8_t *) doc,
                                                           strlen(doc), enc, 64, NULL, enc + 40, key);
        }
        assert_int_equal(backup_parse(enc, size, o.passphrase, &b, &err), 0);
        assert_int_equal(backup_restore(f->store[0], b, NULL, NULL, NOW, &res, &err), -EINVAL);
        assert_string_equal(err,
                            "users[1].codes[0]: on lock front: Another code on the same lock already has "
                            "these digits. (rule duplicate)");
        after = fingerprint(f->store[0]);
        assert_string_equal(before, after); /* Carol, added before the clash, is gone again */
        assert_int_equal(store_user_get_by_name(f->store[0], "Carol", &u), -ENOENT);
        backup_free(b);
        free(enc);
        free(err);
        free(before);
        free(after);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_plain_backup_has_no_secrets, setup, teardown),
                cmocka_unit_test_setup_teardown(test_round_trip_with_secrets, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restore_to_another_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tampered_refused_nothing_changed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_documents, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restore_conflict_rolls_back, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
