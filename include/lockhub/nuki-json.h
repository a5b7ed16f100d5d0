/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Nuki messages as JSON (json-c), for `lockhubctl decode`, the simulator's logs and the
 * fuzzers. Keys are snake_case; enumerations are names (hex when unnamed); timestamps are
 * "YYYY-MM-DDTHH:MM:SS"; byte arrays lowercase hex.
 *
 * A decoded frame:
 *   {"command":"0x000C","name":"keyturner_states","encrypted":true,"auth_id":2,
 *    "crc_ok":true,"fields":{...}}
 * A frame that fails: {"error":"CRC mismatch", ...whatever is known: "command", "name",
 *   "encrypted", "auth_id", "crc_ok":false, "hex"}.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/nuki-cmd.h"

/* The "fields" object of a message. NULL on allocation failure. Secrets (security PINs,
 * the key of an invite) are shown as "redacted" (nuki_json_fields) unless show_secrets is
 * set: DESIGN.md keeps them out of logs and diagnostics. */
json_object *nuki_json_fields(const NukiMsg *m);
json_object *nuki_json_fields_full(const NukiMsg *m, bool show_secrets);

typedef struct NukiJsonOptions {
        const uint8_t *shared_key;        /* NULL: encrypted frames cannot be decoded */
        const uint32_t *expected_auth_id; /* NULL: any (ADATA must still equal PDATA) */
        unsigned pin_size;                /* 0 = infer from the length */
        bool show_secrets;                /* PINs and keys in clear */
} NukiJsonOptions;

/* Decode one complete frame, plain or encrypted, told apart by shape: with a key, a frame
 * whose length field matches and that decrypts is encrypted; otherwise a frame whose CRC
 * matches is plain; otherwise the shape decides which error to report. *ret always gets
 * an object; the return value is 0, or the negative errno of the failure it describes. */
int nuki_json_decode_frame(const uint8_t *buf, size_t n, const NukiJsonOptions *o, json_object **ret);

/* Would buf be a complete message (plain CRC matches, encrypted length reached, or a known
 * plain size reached)? Used to join 20-byte fragments. */
bool nuki_json_frame_complete(const uint8_t *buf, size_t n);
