/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backup documents: any bytes, encrypted (passphrase "fuzz") or not, must either pass the
 * whole validation or be refused with a message, never crash, leak or read outside the
 * input. A document that passes must describe what it claims (counts, secrets only when
 * encrypted).
 */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(backup_freep) Backup *b = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        if (size > 256 * 1024)
                return 0;
        r = backup_parse(data, size, "fuzz", &b, &err);
        if (r == -ENOMEM)
                return 0;
        if (r < 0) {
                assert(!b);
                assert(err && err[0]);
                return 0;
        }
        assert(b);
        assert(backup_has_secrets(b) == backup_is_encrypted(data, size));
        assert(backup_n_locks(b) <= 64);
        assert(backup_n_users(b) <= 1000);
        assert(backup_n_codes(b) <= 2000);
        return 0;
}
