/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nuki frame decoding, unencrypted and encrypted (with a fixed key, example A's shared
 * key, so seeds made with it reach the command decoders), then the command decoders and
 * JSON. Any input: a clean error or a message that encodes back to the same frame.
 */

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-frame.h"
#include "lockhub/nuki-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t key[NUKI_KEY_SIZE] = {
        0x21, 0x7F, 0xCB, 0x0F, 0x18, 0xCA, 0xF2, 0x84, 0xE9, 0xBD, 0xEA, 0x0B, 0x94, 0xB8, 0x3B, 0x8D,
        0x10, 0x86, 0x7E, 0xD7, 0x06, 0xBF, 0xDE, 0xDB, 0xD2, 0x38, 0x1F, 0x4C, 0xB3, 0xB8, 0xF7, 0x30,
};

static void check_message(const NukiFrame *f)
{
        for (unsigned pin = 0; pin <= 4; pin += 2) {
                uint8_t out[NUKI_PAYLOAD_MAX];
                NukiMsg m;
                json_object *j;

                if (nuki_msg_decode_frame(f, pin, &m) < 0)
                        continue;
                assert(nuki_msg_encode_payload(&m, pin ? pin : 4, out, sizeof(out)) >= 0 ||
                       nuki_msg_encode_payload(&m, 2, out, sizeof(out)) >= 0);
                j = nuki_json_fields_full(&m, true);
                json_object_put(j);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t re[NUKI_FRAME_MAX];
        uint32_t two = 2;
        NukiFrame f;

        if (nuki_frame_decode_plain(data, size, &f) == 0) {
                int n = nuki_frame_encode_plain(f.command, f.payload, f.payload_len, re, sizeof(re));
                assert(n == (int) size && memcmp(re, data, size) == 0);
                check_message(&f);
        }
        if (nuki_frame_decode_encrypted(key, NULL, data, size, &f) == 0) {
                assert(f.encrypted && size == NUKI_ADATA_SIZE + NUKI_TAG_SIZE + 8 + f.payload_len);
                check_message(&f);
        }
        (void) nuki_frame_decode_encrypted(key, &two, data, size, &f);
        return 0;
}
