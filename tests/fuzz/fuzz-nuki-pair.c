/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The state machines fed hostile peers: byte 0 picks the machine (pairing client, pairing
 * lock, gen 1-4 or Ultra, client session, lock session), the rest is a sequence of
 * messages (length byte + bytes). Keys and nonces are fixed (example A), so seeds can walk
 * deep into a pairing.
 */

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-pair.h"
#include "lockhub/nuki-session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t client_sk[32] = {
        0x8C, 0xAA, 0x54, 0x67, 0x23, 0x07, 0xBF, 0xFD, 0xF5, 0xEA, 0x18, 0x3F, 0xC6, 0x07, 0x15, 0x8D,
        0x20, 0x11, 0xD0, 0x08, 0xEC, 0xA6, 0xA1, 0x08, 0x86, 0x14, 0xFF, 0x08, 0x53, 0xA5, 0xAA, 0x07,
};
static const uint8_t nabf[32] = {
        0x52, 0xAF, 0xE0, 0xA6, 0x64, 0xB4, 0xE9, 0xB5, 0x6D, 0xC6, 0xBD, 0x4C, 0xB7, 0x18, 0xA6, 0xC9,
        0xFE, 0xD6, 0xBE, 0x17, 0xA7, 0x41, 0x10, 0x72, 0xAA, 0x0D, 0x31, 0x53, 0x78, 0x14, 0x05, 0x77,
};
static const uint8_t s_key[32] = {
        0x21, 0x7F, 0xCB, 0x0F, 0x18, 0xCA, 0xF2, 0x84, 0xE9, 0xBD, 0xEA, 0x0B, 0x94, 0xB8, 0x3B, 0x8D,
        0x10, 0x86, 0x7E, 0xD7, 0x06, 0xBF, 0xDE, 0xDB, 0xD2, 0x38, 0x1F, 0x4C, 0xB3, 0xB8, 0xF7, 0x30,
};
static const uint8_t zero24[24];
static const uint8_t nonces[96] = { 1, 2, 3 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = NULL;
        _cleanup_(nuki_pair_lock_freep) NukiPairLock *l = NULL;
        uint8_t out[NUKI_PAIR_OUT_MAX];
        NukiSession s;
        NukiLockSession ls;
        unsigned which;
        size_t pos = 1, olen;
        int r = 0;

        if (size < 1)
                return 0;
        which = data[0] % 6;
        switch (which) {
        case 0:
        case 1: {
                NukiPairParams p;
                nuki_pair_params_init(&p);
                p.id_type = NUKI_ID_TYPE_APP;
                p.name = "Marc (Test)";
                p.secret_key = client_sk;
                p.client_nonce = nabf;
                p.message_nonce = zero24;
                p.security_pin = 123456;
                if (nuki_pair_client_new(&c, &p) < 0 || nuki_pair_client_start(c, out, sizeof(out)) < 0)
                        return 0;
                break;
        }
        case 2:
        case 3: {
                NukiPairLockParams p;
                nuki_pair_lock_params_init(&p);
                p.ultra = which == 3;
                p.secret_key = client_sk;
                p.nonces = nonces;
                p.message_nonce = zero24;
                if (nuki_pair_lock_new(&l, &p) < 0)
                        return 0;
                break;
        }
        case 4: {
                NukiMsg cmd;
                nuki_session_init(&s, s_key, 2, 1234, data[0] & 8);
                /* byte 0 bit 4: wait for a challenge (lock action) or for data (states) */
                if (data[0] & 16) {
                        nuki_msg_init(&cmd, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
                        (void) nuki_session_begin(&s, &cmd, zero24, out, sizeof(out));
                } else
                        (void) nuki_session_request(&s, NUKI_CMD_KEYTURNER_STATES, zero24, out, sizeof(out));
                break;
        }
        default:
                nuki_lock_session_init(&ls, s_key, 2, 1234, data[0] & 8);
                break;
        }

        while (pos < size && r >= 0) {
                size_t n = data[pos++];
                NukiMsg m;

                if (n > size - pos)
                        n = size - pos;
                switch (which) {
                case 0:
                case 1:
                        r = nuki_pair_client_feed(c, data + pos, n, out, sizeof(out), &olen);
                        assert(olen <= sizeof(out));
                        /* a failure is final; a finished pairing keeps its result */
                        if (r < 0)
                                assert(nuki_pair_client_state(c) == NUKI_PAIR_FAILED ||
                                       nuki_pair_client_state(c) == NUKI_PAIR_DONE);
                        if (r == 1) {
                                NukiPairing res;
                                assert(nuki_pair_client_get_result(c, &res) == 0);
                        }
                        break;
                case 2:
                case 3:
                        r = nuki_pair_lock_feed(l, data + pos, n, out, sizeof(out), &olen);
                        assert(olen <= sizeof(out));
                        break;
                case 4:
                        r = nuki_session_feed(&s, data + pos, n, zero24, &m, out, sizeof(out), &olen);
                        if (r == -ENOENT || r == -EREMOTEIO)
                                r = 0;
                        break;
                default:
                        r = nuki_lock_session_receive(&ls, data + pos, n, &m);
                        if (r > 0 || (pos & 1))
                                (void) nuki_lock_session_challenge(&ls, NULL, zero24, out, sizeof(out));
                        r = 0;
                        break;
                }
                pos += n;
        }
        return 0;
}
