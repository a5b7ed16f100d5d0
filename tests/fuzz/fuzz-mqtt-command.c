/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * B/<lock>/set commands: any bytes give either a command (one of the three actions,
 * a code that is valid UTF-8 of bounded size) or -EINVAL with a message, never a
 * crash, a leak or a read outside the input.
 */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/mqtt-ha.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        MqttHaCommand c = { 0 };
        _cleanup_free_ char *err = NULL;
        int r;

        r = mqtt_ha_command_parse(data, size, &c, &err);
        if (r == -ENOMEM)
                return 0;
        if (r < 0) {
                assert(r == -EINVAL);
                assert(err && *err);
                assert(!c.code);
                return 0;
        }
        assert(!err);
        assert(c.action == LOCK_ACTION_LOCK || c.action == LOCK_ACTION_UNLOCK ||
               c.action == LOCK_ACTION_UNLATCH);
        if (c.code) {
                size_t n = strlen(c.code);
                assert(n > 0 && n <= MQTT_HA_CODE_MAX);
                assert(mqtt_ha_utf8_is_valid(c.code, n));
        }
        mqtt_ha_command_done(&c);
        return 0;
}
