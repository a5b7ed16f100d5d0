/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Nuki BLE framing: CRC, unencrypted and encrypted messages, and reassembly of
 * indications into whole messages. Pure code: callers pass bytes in and get bytes out.
 *
 *   unencrypted:  cmd u16 | payload | crc u16                 (crc over cmd|payload)
 *   encrypted:    nonce[24] | auth_id u32 | len u16 | secretbox(PDATA)
 *                 PDATA = auth_id u32 | cmd u16 | payload | crc u16 (crc over auth_id|cmd|payload)
 *                 len = 16 (Poly1305 tag) + len(PDATA)
 *
 * Everything is little-endian. Decoders check every length before reading and never
 * read past the buffer they are given.
 *
 * Errors returned by the decoders (negative errno):
 *   -ENODATA       shorter than the smallest possible frame
 *   -EMSGSIZE      a length (field or buffer) is inconsistent or exceeds NUKI_PAYLOAD_MAX
 *   -EKEYREJECTED  the Poly1305 tag did not verify (wrong key, or the bytes were changed)
 *   -EBADMSG       the CRC does not match
 *   -EPROTO        the auth-id in ADATA and PDATA differ, or is not the one expected
 *   -ENOBUFS       the output buffer is too small (encoders)
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NUKI_KEY_SIZE           32U /* shared key s, X25519 keys */
#define NUKI_NONCE_SIZE         24U /* per-message secretbox nonce */
#define NUKI_CHALLENGE_SIZE     32U /* nK / nABF */
#define NUKI_AUTHENTICATOR_SIZE 32U /* HMAC-SHA256 */
#define NUKI_UUID_SIZE          16U
#define NUKI_TAG_SIZE           16U
#define NUKI_ADATA_SIZE         30U /* nonce | auth_id | len */
#define NUKI_PAYLOAD_MAX        256U
#define NUKI_PLAIN_MAX          (2U + NUKI_PAYLOAD_MAX + 2U)
#define NUKI_PDATA_MAX          (4U + 2U + NUKI_PAYLOAD_MAX + 2U)
#define NUKI_FRAME_MAX          (NUKI_ADATA_SIZE + NUKI_TAG_SIZE + NUKI_PDATA_MAX)
#define NUKI_PLAIN_MIN          4U
#define NUKI_ENCRYPTED_MIN      (NUKI_ADATA_SIZE + NUKI_TAG_SIZE + 8U)

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no xor-out. */
uint16_t nuki_crc16(const void *data, size_t n);

static inline void nuki_put_u16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static inline void nuki_put_u32(uint8_t *p, uint32_t v)
{
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
        p[2] = (uint8_t) (v >> 16);
        p[3] = (uint8_t) (v >> 24);
}

static inline uint16_t nuki_get_u16(const uint8_t *p)
{
        return (uint16_t) (p[0] | (p[1] << 8));
}

static inline uint32_t nuki_get_u32(const uint8_t *p)
{
        return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/* A decoded frame. Decrypted payloads may hold secrets (PINs, invite keys): callers wipe
 * them with nuki_frame_wipe() when done. */
typedef struct NukiFrame {
        uint16_t command;
        bool encrypted;
        uint32_t auth_id; /* encrypted frames only: the auth-id (ADATA == PDATA) */
        size_t payload_len;
        uint8_t payload[NUKI_PAYLOAD_MAX];
} NukiFrame;

void nuki_frame_wipe(NukiFrame *f);

/* Returns the number of bytes written to out (>0), or -EMSGSIZE if len > NUKI_PAYLOAD_MAX,
 * -ENOBUFS if out is too small. */
int nuki_frame_encode_plain(uint16_t command, const void *payload, size_t len, uint8_t *out, size_t size);
int nuki_frame_decode_plain(const uint8_t *buf, size_t n, NukiFrame *ret);

/* nonce: 24 fresh random bytes for every message (see nuki_random()). */
int nuki_frame_encode_encrypted(const uint8_t key[NUKI_KEY_SIZE], const uint8_t nonce[NUKI_NONCE_SIZE],
                                uint32_t auth_id, uint16_t command, const void *payload, size_t len,
                                uint8_t *out, size_t size);

/* Verifies, in order: lengths, the tag, the CRC, ADATA auth-id == PDATA auth-id, and, if
 * expected_auth_id is not NULL, that it equals *expected_auth_id. */
int nuki_frame_decode_encrypted(const uint8_t key[NUKI_KEY_SIZE], const uint32_t *expected_auth_id,
                                const uint8_t *buf, size_t n, NukiFrame *ret);

/* Lower level, for the Ultra pairing reply whose PDATA layout is uncertain: seal arbitrary
 * PDATA under an ADATA auth-id, and open a frame into its raw PDATA (tag checked, nothing
 * else). nuki_frame_open() returns the PDATA length. */
int nuki_frame_seal(const uint8_t key[NUKI_KEY_SIZE], const uint8_t nonce[NUKI_NONCE_SIZE],
                    uint32_t adata_auth_id, const uint8_t *pdata, size_t pdata_len, uint8_t *out,
                    size_t size);
int nuki_frame_open(const uint8_t key[NUKI_KEY_SIZE], const uint8_t *buf, size_t n, uint8_t *pdata,
                    size_t pdata_size, uint32_t *ret_adata_auth_id);

/* Encrypted frames: the auth-id in ADATA, without decrypting (-ENODATA if too short). */
int nuki_frame_peek_auth_id(const uint8_t *buf, size_t n, uint32_t *ret);

/* Human-readable reason for a decoder error, for tools ("CRC mismatch", ...). */
const char *nuki_frame_strerror(int r);

/*
 * Reassembly: one buffer per characteristic. Indications of any size are appended with
 * nuki_reasm_feed(); nuki_reasm_pop() hands out one complete message at a time (several
 * messages coalesced into one indication are split). When a message is complete:
 *   encrypted:  at least 30 bytes, then 30 + len (the field at offset 28);
 *   plain:      the expected size for known command ids (Public Key 36, Challenge 36,
 *               Authorization-ID 88, Status 5, Error Report 7, Authorization Info 5, and the
 *               client's pairing messages), else the first length whose CRC matches;
 *   ultra pairing reply: a plain Authorization-ID (24 bytes), Error Report or Status whose
 *               CRC matches, else the encrypted rule (see nuki-pair.h, and the fact sheet
 *               4.2 on why the reply's format is uncertain).
 * The buffer is capped at NUKI_FRAME_MAX; garbage or overflow resets it. Bytes older than
 * timeout_usec (if now_usec is given, i.e. non-zero) are dropped before new ones are added.
 */
typedef enum NukiReasmMode {
        NUKI_REASM_PLAIN,
        NUKI_REASM_ENCRYPTED,
        NUKI_REASM_ULTRA_PAIRING_REPLY,
} NukiReasmMode;

#define NUKI_REASM_TIMEOUT_USEC (3U * 1000U * 1000U)

typedef struct NukiReasm {
        NukiReasmMode mode;
        uint64_t timeout_usec;
        uint64_t last_usec;
        size_t len;
        uint8_t buf[NUKI_FRAME_MAX];
} NukiReasm;

void nuki_reasm_init(NukiReasm *r, NukiReasmMode mode);
/* Switching to another mode discards buffered bytes; setting the current mode does nothing. */
void nuki_reasm_set_mode(NukiReasm *r, NukiReasmMode mode);
void nuki_reasm_reset(NukiReasm *r);
/* 0, or -EMSGSIZE if the buffer would overflow (it is reset and the data dropped). */
int nuki_reasm_feed(NukiReasm *r, const void *data, size_t n, uint64_t now_usec);
/* 1 and the message in out (length in *ret_len); 0 if more bytes are needed; -EBADMSG (CRC mismatch at
 * the expected size) or -EMSGSIZE (length field out of range, or out too small): the buffer
 * has been reset. */
int nuki_reasm_pop(NukiReasm *r, uint8_t *out, size_t size, size_t *ret_len);
static inline size_t nuki_reasm_pending(const NukiReasm *r)
{
        return r->len;
}
/* Expected total size of an unencrypted message with this command id, 0 if unknown. */
size_t nuki_plain_expected_size(uint16_t command);
