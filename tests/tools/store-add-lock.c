/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store-add-lock: puts a paired lock into a state directory's database (creating the
 * database if needed), the way pairing will, for integration tests that need a lock
 * before the driver pairs one.
 *
 *   store-add-lock STATE_DIR NAME ADDRESS [MODEL [FIRMWARE [HARDWARE]]]
 *
 * Prints the new lock's id. Exit 0, or 1 with a message.
 */

#include <stdio.h>

#include "lockhub/lock.h"
#include "lockhub/log.h"
#include "lockhub/store.h"

int main(int argc, char **argv)
{
        _cleanup_(store_freep) Store *s = NULL;
        struct store_lock l;
        char address[18];
        int64_t id;
        int r;

        if (argc < 4 || argc > 7) {
                fprintf(stderr, "usage: %s STATE_DIR NAME ADDRESS [MODEL [FIRMWARE [HARDWARE]]]\n", argv[0]);
                return 1;
        }
        log_open(LOG_TARGET_STDERR);
        if (!lock_name_is_valid(argv[2]) || lock_address_normalize(argv[3], address) < 0) {
                fprintf(stderr, "Invalid lock name '%s' or address '%s'.\n", argv[2], argv[3]);
                return 1;
        }
        r = store_open(argv[1], &s);
        if (r < 0)
                return 1; /* logged */

        store_lock_init(&l);
        l.name = argv[2];
        l.address = address;
        l.model = argc > 4 ? argv[4] : NULL;
        l.firmware = argc > 5 ? argv[5] : NULL;
        l.hardware = argc > 6 ? argv[6] : NULL;
        id = store_lock_add(s, &l);
        if (id < 0) {
                fprintf(stderr, "Failed to add lock %s: %s\n", argv[2], strerror((int) -id));
                return 1;
        }
        printf("%lld\n", (long long) id);
        return 0;
}
