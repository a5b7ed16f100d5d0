/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Advertisement parser: the input as raw AD structures, and as each of the structured
 * inputs BlueZ hands over (manufacturer data, service data, name).
 */

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/nuki-advert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const uuids[] = {
                "a92ee000-5501-11e4-916c-0800200c9a66",
                "a92ee100-5501-11e4-916c-0800200c9a66",
                "a92ee300-5501-11e4-916c-0800200c9a66",
                "a92ae100-5501-11e4-916c-0800200c9a66",
        };
        NukiAdvert a;
        uint32_t id;
        char name[64];
        size_t nl;
        int r;

        nuki_advert_init(&a);
        r = nuki_advert_parse_raw(&a, data, size);
        assert(r >= -EBADMSG && r <= 1);
        (void) nuki_advert_nuki_id(&a, &id);

        if (size < 1)
                return 0;
        nuki_advert_init(&a);
        (void) nuki_advert_parse_manufacturer(&a, 0x004C, data + 1, size - 1);
        (void) nuki_advert_parse_service_data(&a, uuids[data[0] % 4], data + 1, size - 1);
        nl = size - 1 < sizeof(name) - 1 ? size - 1 : sizeof(name) - 1;
        memcpy(name, data + 1, nl);
        name[nl] = 0;
        (void) nuki_advert_parse_name(&a, name);
        (void) nuki_advert_parse_uuid(&a, name);
        if (a.has_beacon)
                assert(a.state_changed == ((uint8_t) a.tx_power & 1));
        return 0;
}
