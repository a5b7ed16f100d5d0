/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store-secret: writes and reads a lock's pairing secrets the way lockhubd does (the hub
 * key from $CREDENTIALS_DIRECTORY/lockhub-key or STATE_DIR/lockhub.key, created when the
 * database records none), for integration tests of secrets at rest.
 *
 *   store-secret add STATE_DIR NAME ADDRESS KEYHEX PINHEX CODE
 *       a lock with that shared key and PIN, and a user NAME with keypad code CODE
 *   store-secret add-plain STATE_DIR NAME ADDRESS KEYHEX PINHEX CODE
 *       the same without a key: stored in plaintext (key_version 0), as before sealing
 *   store-secret get STATE_DIR NAME
 *       prints "KEYHEX PINHEX CODE" as read back (opened with the key)
 *
 * Exit 0, or 1 with a message.
 */

#include <stdio.h>

#include "lockhub/log.h"
#include "lockhub/secret.h"
#include "lockhub/store.h"

static int unhex(const char *s, uint8_t *buf, size_t size, size_t *ret_n)
{
        size_t n = strlen(s);

        if (n % 2 || n / 2 > size)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                if (sscanf(s + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                buf[i] = (uint8_t) v;
        }
        *ret_n = n / 2;
        return 0;
}

static void print_hex(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                printf("%02x", p[i]);
}

static int use_key(Store *s, const char *state_dir, SecretKey **ret)
{
        _cleanup_free_ char *id = NULL;
        int r;

        r = store_key_id(s, &id);
        if (r < 0 && r != -ENOENT)
                return r;
        r = secret_key_load(state_dir, id, ret);
        if (r < 0)
                return r;
        return store_set_key(s, *ret);
}

static int do_get(Store *s, const char *name)
{
        struct store_lock l;
        struct store_user u;
        struct store_credential *c = NULL;
        size_t n = 0;
        int r;

        r = store_lock_get_by_name(s, name, &l);
        if (r < 0) {
                fprintf(stderr, "Cannot read lock %s: %s\n", name, strerror(-r));
                return 1;
        }
        print_hex(l.shared_key_sealed, l.shared_key_sealed_size);
        printf(" ");
        print_hex(l.security_pin_sealed, l.security_pin_sealed_size);
        store_lock_done(&l);
        if (store_user_get_by_name(s, name, &u) >= 0) {
                if (store_credential_list(s, u.id, &c, &n) >= 0 && n > 0)
                        printf(" %.*s", (int) c[0].code_sealed_size, (const char *) c[0].code_sealed);
                store_user_done(&u);
        }
        printf("\n");
        store_credential_array_free(c, n);
        return 0;
}

int main(int argc, char **argv)
{
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(secret_key_freep) SecretKey *k = NULL;
        uint8_t key[64], pin[8];
        size_t key_n = 0, pin_n = 0;
        struct store_lock l;
        struct store_credential c;
        int64_t id, user;
        bool plain;
        int r;

        log_open(LOG_TARGET_STDERR);
        if (argc == 4 && streq(argv[1], "get")) {
                if (store_open(argv[2], &s) < 0 || use_key(s, argv[2], &k) < 0)
                        return 1; /* logged */
                return do_get(s, argv[3]);
        }
        if (argc != 8 || (!streq(argv[1], "add") && !streq(argv[1], "add-plain"))) {
                fprintf(stderr,
                        "usage: %s add|add-plain STATE_DIR NAME ADDRESS KEYHEX PINHEX CODE\n"
                        "       %s get STATE_DIR NAME\n",
                        argv[0], argv[0]);
                return 1;
        }
        plain = streq(argv[1], "add-plain");
        if (unhex(argv[5], key, sizeof key, &key_n) < 0 || unhex(argv[6], pin, sizeof pin, &pin_n) < 0) {
                fprintf(stderr, "Invalid hex.\n");
                return 1;
        }
        if (store_open(argv[2], &s) < 0 || (!plain && use_key(s, argv[2], &k) < 0))
                return 1;

        store_lock_init(&l);
        l.name = argv[3];
        l.address = argv[4];
        l.auth_id = 1;
        l.app_id = 1;
        l.id_type = 1;
        l.shared_key_sealed = key;
        l.shared_key_sealed_size = key_n;
        l.security_pin_sealed = pin_n ? pin : NULL;
        l.security_pin_sealed_size = pin_n;
        id = store_lock_add(s, &l);
        if (id < 0) {
                fprintf(stderr, "Failed to add lock %s: %s\n", argv[3], strerror((int) -id));
                return 1;
        }
        user = store_user_add(s, argv[3], 0);
        if (user < 0) {
                fprintf(stderr, "Failed to add user %s: %s\n", argv[3], strerror((int) -user));
                return 1;
        }
        store_credential_init(&c);
        c.user_id = user;
        c.name = argv[3];
        c.code_sealed = (uint8_t *) argv[7];
        c.code_sealed_size = strlen(argv[7]);
        r = (int) store_credential_add(s, &c);
        if (r < 0) {
                fprintf(stderr, "Failed to add the code of %s: %s\n", argv[3], strerror(-r));
                return 1;
        }
        printf("%lld\n", (long long) id);
        return 0;
}
