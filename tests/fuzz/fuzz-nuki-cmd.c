/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every command decoder: bytes 0-1 are the command id (little-endian), byte 2 the PIN size
 * (0 = infer, 2, 4), the rest the payload. A decoded message must encode, and decoding
 * that encoding must give the same bytes again.
 */

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t a[NUKI_PAYLOAD_MAX], b[NUKI_PAYLOAD_MAX];
        static const unsigned pins[] = { 0, 2, 4 };
        unsigned pin, enc_pin;
        NukiMsg m, m2;
        json_object *j;
        int la, lb;

        if (size < 3)
                return 0;
        pin = pins[data[2] % 3];
        if (nuki_msg_decode_payload(nuki_get_u16(data), data + 3, size - 3, pin, &m) < 0)
                return 0;
        j = nuki_json_fields_full(&m, true);
        json_object_put(j);

        /* with an inferred size, a PIN that fits 16 bits may have come in 2 or 4 bytes */
        enc_pin = pin ? pin : 4;
        la = nuki_msg_encode_payload(&m, enc_pin, a, sizeof(a));
        assert(la >= 0);
        assert(nuki_msg_decode_payload(m.command, a, (size_t) la, enc_pin, &m2) == 0);
        lb = nuki_msg_encode_payload(&m2, enc_pin, b, sizeof(b));
        assert(la == lb && memcmp(a, b, (size_t) la) == 0);
        nuki_msg_wipe(&m);
        return 0;
}
