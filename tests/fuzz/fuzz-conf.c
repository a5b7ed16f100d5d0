/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhub.conf parser: any bytes must give either a Conf or a list of diagnostics,
 * never a crash, a leak or a read outside the input. A parsed Conf must print and
 * parse back to the same text.
 */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/conf.h"
#include "lockhub/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(conf_freep) Conf *c = NULL, *c2 = NULL;
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL;
        int r;

        if (size > 64 * 1024)
                return 0;
        r = conf_parse("fuzz.conf", (const char *) data, size, &c, &d);
        if (r == -ENOMEM)
                return 0;
        assert(d);
        assert((r == 0) == (d->n_errors == 0));
        for (size_t i = 0; i < d->n_items; i++)
                assert(d->items[i].message && strncmp(d->items[i].message, "fuzz.conf", 9) == 0);
        if (r < 0)
                return 0;

        if (conf_format(c, &a) < 0)
                return 0;
        r = conf_parse("fuzz.conf", a, strlen(a), &c2, NULL);
        assert(r == 0);
        if (conf_format(c2, &b) < 0)
                return 0;
        assert(strcmp(a, b) == 0);
        return 0;
}
