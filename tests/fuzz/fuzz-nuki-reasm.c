/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Reassembly: byte 0 picks the mode, then the input is cut into indications, each
 * prefixed by its length byte; byte 1 sets the time step between them. Every message
 * handed out must be complete by the rule of its mode.
 */

#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "lockhub/nuki-frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t out[NUKI_FRAME_MAX];
        NukiReasmMode mode;
        NukiReasm r;
        uint64_t now = 1, step;
        size_t pos = 2, len;

        if (size < 2)
                return 0;
        mode = (NukiReasmMode) (data[0] % 3);
        step = (uint64_t) data[1] * 100000U;
        nuki_reasm_init(&r, mode);
        while (pos < size) {
                size_t n = data[pos++];

                if (n > size - pos)
                        n = size - pos;
                (void) nuki_reasm_feed(&r, data + pos, n, now);
                pos += n;
                now += step;
                while (nuki_reasm_pop(&r, out, sizeof(out), &len) == 1) {
                        NukiFrame f;

                        assert(len > 0 && len <= NUKI_FRAME_MAX);
                        if (mode == NUKI_REASM_PLAIN)
                                assert(nuki_frame_decode_plain(out, len, &f) == 0);
                        else if (mode == NUKI_REASM_ENCRYPTED)
                                assert(len == NUKI_ADATA_SIZE + (size_t) nuki_get_u16(out + 28));
                }
                assert(nuki_reasm_pending(&r) <= NUKI_FRAME_MAX);
        }
        nuki_reasm_reset(&r);
        return 0;
}
