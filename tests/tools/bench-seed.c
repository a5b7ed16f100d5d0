/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-seed: fills a state directory's database for tests/bench, through the store API
 * and the hub key exactly as lockhubd would (so the secrets are sealed), without pairing.
 *
 *   bench-seed locks STATE_DIR N
 *       N paired Nuki locks b001..bNNN at 54:D2:72:01:HH:LL, each with its own shared key
 *       and authorization id; prints the matching lockhub-sim scenario [lock] sections
 *       (paired = yes, same auth-id and auth-key, known to bluetoothd) on stdout
 *   bench-seed events STATE_DIR N
 *       N hub-wide events (kind "state", source "hub") in one transaction, spread over the
 *       last N seconds
 *
 * Exit 0, or 1 with a message.
 */

#include <stdio.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/secret.h"
#include "lockhub/store.h"

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

static int seed_locks(Store *s, unsigned n)
{
        for (unsigned i = 1; i <= n; i++) {
                struct store_lock l;
                char name[16], address[18];
                uint8_t key[32];
                int64_t id;

                snprintf(name, sizeof name, "b%03u", i);
                snprintf(address, sizeof address, "54:D2:72:01:%02X:%02X", (i >> 8) & 0xff, i & 0xff);
                for (unsigned j = 0; j < sizeof key; j++)
                        key[j] = (uint8_t) (i * 31 + j * 7 + 1);

                store_lock_init(&l);
                l.name = name;
                l.address = address;
                l.protocol = (char *) "nuki";
                l.auth_id = 100 + i;
                l.app_id = 1;
                l.id_type = 1; /* Bridge */
                l.shared_key_sealed = key;
                l.shared_key_sealed_size = sizeof key;
                l.paired_usec = (uint64_t) time(NULL) * 1000000U;
                id = store_lock_add(s, &l);
                if (id < 0) {
                        fprintf(stderr, "Failed to add lock %s: %s\n", name, strerror((int) -id));
                        return 1;
                }
                printf("[lock %s]\naddress = %s\ngeneration = 3\nnuki-id = %08X\nfirmware = 3.6.9\n"
                       "paired = yes\nauth-id = %u\nauth-key = ",
                       name, address, 0x2B000000U + i, 100 + i);
                for (unsigned j = 0; j < sizeof key; j++)
                        printf("%02x", key[j]);
                printf("\nknown = yes\npairing-mode = no\n\n");
        }
        return 0;
}

static int seed_events(Store *s, unsigned long n)
{
        uint64_t now = (uint64_t) time(NULL) * 1000000U;
        int r;

        r = store_begin(s);
        if (r < 0)
                goto fail;
        for (unsigned long i = 0; i < n; i++) {
                struct store_event e;

                store_event_init(&e);
                e.ts_usec = now - (n - i) * 1000000U;
                e.kind = (char *) "state";
                e.source = (char *) "hub";
                e.detail = (char *) "{\"state\":\"locked\",\"bench\":true}";
                r = store_event_append(s, &e, NULL);
                if (r < 0) {
                        store_rollback(s);
                        goto fail;
                }
        }
        r = store_commit(s);
        if (r < 0)
                goto fail;
        return 0;
fail:
        fprintf(stderr, "Failed to add events: %s\n", strerror(-r));
        return 1;
}

int main(int argc, char **argv)
{
        _cleanup_(store_freep) Store *s = NULL;
        _cleanup_(secret_key_freep) SecretKey *k = NULL;
        unsigned long n;
        char *end;

        log_open(LOG_TARGET_STDERR);
        if (argc != 4 || (!streq(argv[1], "locks") && !streq(argv[1], "events"))) {
                fprintf(stderr, "usage: %s locks|events STATE_DIR N\n", argv[0]);
                return 1;
        }
        n = strtoul(argv[3], &end, 10);
        if (!*argv[3] || *end || n == 0 || n > 100000000UL) {
                fprintf(stderr, "Invalid count '%s'.\n", argv[3]);
                return 1;
        }
        if (store_open(argv[2], &s) < 0 || use_key(s, argv[2], &k) < 0)
                return 1; /* logged */
        if (streq(argv[1], "locks"))
                return n > 999 ? 1 : seed_locks(s, (unsigned) n);
        return seed_events(s, n);
}
