/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The decode path of `lockhubctl decode`: the input is cut into arguments (length byte +
 * bytes), 20-byte arguments that do not complete a message are joined with the next, and
 * each message is decoded to JSON, with and (byte 0 odd) without the fixed shared key.
 */

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "lockhub/nuki-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[NUKI_KEY_SIZE] = {
        0x21, 0x7F, 0xCB, 0x0F, 0x18, 0xCA, 0xF2, 0x84, 0xE9, 0xBD, 0xEA, 0x0B, 0x94, 0xB8, 0x3B, 0x8D,
        0x10, 0x86, 0x7E, 0xD7, 0x06, 0xBF, 0xDE, 0xDB, 0xD2, 0x38, 0x1F, 0x4C, 0xB3, 0xB8, 0xF7, 0x30,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t buf[NUKI_FRAME_MAX];
        uint32_t two = 2;
        NukiJsonOptions o = { .shared_key = key };
        size_t pos = 1, len = 0;

        if (size < 1)
                return 0;
        if (data[0] & 1)
                o.shared_key = NULL;
        if (data[0] & 2)
                o.expected_auth_id = &two;
        o.pin_size = (data[0] >> 2) % 3 * 2;
        while (pos < size) {
                size_t n = data[pos++];
                json_object *j = NULL;
                int r;

                if (n > size - pos)
                        n = size - pos;
                if (n > sizeof(buf) - len)
                        n = sizeof(buf) - len;
                memcpy(buf + len, data + pos, n);
                len += n;
                pos += n;
                if (n == 20 && pos < size && !nuki_json_frame_complete(buf, len))
                        continue;
                r = nuki_json_decode_frame(buf, len, &o, &j);
                assert(j);
                assert(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
                /* an error is always described */
                assert(r == 0 || json_object_object_get_ex(j, "error", NULL));
                json_object_put(j);
                len = 0;
        }
        return 0;
}
