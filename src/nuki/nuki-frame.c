/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nuki frames: CRC, unencrypted and encrypted encode/decode, reassembly.
 *
 * Decoders treat every input byte as hostile: each length is compared to the bytes
 * actually present before anything is read, decrypted plaintext goes to a stack buffer
 * that is wiped on every path, and nothing is copied out before the tag and the CRC
 * have both been checked.
 */

#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/types.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-frame.h"

uint16_t nuki_crc16(const void *data, size_t n)
{
        const uint8_t *p = data;
        uint16_t crc = 0xFFFF;

        for (size_t i = 0; i < n; i++) {
                crc ^= (uint16_t) (p[i] << 8);
                for (unsigned b = 0; b < 8; b++)
                        crc = (crc & 0x8000) ? (uint16_t) ((crc << 1) ^ 0x1021) : (uint16_t) (crc << 1);
        }
        return crc;
}

static bool crc_ok(const uint8_t *p, size_t n)
{
        /* n includes the two CRC bytes */
        return n >= 2 && nuki_crc16(p, n - 2) == nuki_get_u16(p + n - 2);
}

void nuki_frame_wipe(NukiFrame *f)
{
        if (f)
                sodium_memzero(f, sizeof(*f));
}

int nuki_frame_encode_plain(uint16_t command, const void *payload, size_t len, uint8_t *out, size_t size)
{
        if (len > NUKI_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (size < len + 4)
                return -ENOBUFS;
        nuki_put_u16(out, command);
        if (len > 0)
                memcpy(out + 2, payload, len);
        nuki_put_u16(out + 2 + len, nuki_crc16(out, 2 + len));
        return (int) (len + 4);
}

int nuki_frame_decode_plain(const uint8_t *buf, size_t n, NukiFrame *ret)
{
        if (n < NUKI_PLAIN_MIN)
                return -ENODATA;
        if (n - 4 > NUKI_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (!crc_ok(buf, n))
                return -EBADMSG;
        memset(ret, 0, sizeof(*ret));
        ret->command = nuki_get_u16(buf);
        ret->encrypted = false;
        ret->payload_len = n - 4;
        memcpy(ret->payload, buf + 2, n - 4);
        return 0;
}

int nuki_frame_seal(const uint8_t key[NUKI_KEY_SIZE], const uint8_t nonce[NUKI_NONCE_SIZE],
                    uint32_t adata_auth_id, const uint8_t *pdata, size_t pdata_len, uint8_t *out,
                    size_t size)
{
        size_t total;

        if (pdata_len > NUKI_PDATA_MAX)
                return -EMSGSIZE;
        total = NUKI_ADATA_SIZE + NUKI_TAG_SIZE + pdata_len;
        if (size < total)
                return -ENOBUFS;
        if (sodium_init() < 0)
                return -EIO;
        memcpy(out, nonce, NUKI_NONCE_SIZE);
        nuki_put_u32(out + 24, adata_auth_id);
        nuki_put_u16(out + 28, (uint16_t) (NUKI_TAG_SIZE + pdata_len));
        if (crypto_secretbox_easy(out + NUKI_ADATA_SIZE, pdata, pdata_len, nonce, key) != 0)
                return -EIO;
        return (int) total;
}

int nuki_frame_encode_encrypted(const uint8_t key[NUKI_KEY_SIZE], const uint8_t nonce[NUKI_NONCE_SIZE],
                                uint32_t auth_id, uint16_t command, const void *payload, size_t len,
                                uint8_t *out, size_t size)
{
        uint8_t pdata[NUKI_PDATA_MAX];
        int r;

        if (len > NUKI_PAYLOAD_MAX)
                return -EMSGSIZE;
        nuki_put_u32(pdata, auth_id);
        nuki_put_u16(pdata + 4, command);
        if (len > 0)
                memcpy(pdata + 6, payload, len);
        nuki_put_u16(pdata + 6 + len, nuki_crc16(pdata, 6 + len));
        r = nuki_frame_seal(key, nonce, auth_id, pdata, 8 + len, out, size);
        sodium_memzero(pdata, sizeof(pdata));
        return r;
}

int nuki_frame_peek_auth_id(const uint8_t *buf, size_t n, uint32_t *ret)
{
        if (n < NUKI_ADATA_SIZE)
                return -ENODATA;
        *ret = nuki_get_u32(buf + 24);
        return 0;
}

int nuki_frame_open(const uint8_t key[NUKI_KEY_SIZE], const uint8_t *buf, size_t n, uint8_t *pdata,
                    size_t pdata_size, uint32_t *ret_adata_auth_id)
{
        size_t len, plen;

        if (n < NUKI_ADATA_SIZE + NUKI_TAG_SIZE)
                return -ENODATA;
        len = nuki_get_u16(buf + 28);
        if (len < NUKI_TAG_SIZE || len != n - NUKI_ADATA_SIZE)
                return -EMSGSIZE;
        plen = len - NUKI_TAG_SIZE;
        if (plen > pdata_size || plen > NUKI_PDATA_MAX)
                return -EMSGSIZE;
        if (sodium_init() < 0)
                return -EIO;
        if (crypto_secretbox_open_easy(pdata, buf + NUKI_ADATA_SIZE, len, buf, key) != 0) {
                sodium_memzero(pdata, plen);
                return -EKEYREJECTED;
        }
        if (ret_adata_auth_id)
                *ret_adata_auth_id = nuki_get_u32(buf + 24);
        return (int) plen;
}

int nuki_frame_decode_encrypted(const uint8_t key[NUKI_KEY_SIZE], const uint32_t *expected_auth_id,
                                const uint8_t *buf, size_t n, NukiFrame *ret)
{
        uint8_t pdata[NUKI_PDATA_MAX];
        uint32_t adata_id, pdata_id;
        int r, plen;

        plen = nuki_frame_open(key, buf, n, pdata, sizeof(pdata), &adata_id);
        if (plen < 0)
                return plen;
        if (plen < 8) {
                r = -EMSGSIZE;
                goto finish;
        }
        if (!crc_ok(pdata, (size_t) plen)) {
                r = -EBADMSG;
                goto finish;
        }
        pdata_id = nuki_get_u32(pdata);
        if (pdata_id != adata_id || (expected_auth_id && pdata_id != *expected_auth_id)) {
                r = -EPROTO;
                goto finish;
        }
        memset(ret, 0, sizeof(*ret));
        ret->command = nuki_get_u16(pdata + 4);
        ret->encrypted = true;
        ret->auth_id = pdata_id;
        ret->payload_len = (size_t) plen - 8;
        memcpy(ret->payload, pdata + 6, ret->payload_len);
        r = 0;
finish:
        sodium_memzero(pdata, sizeof(pdata));
        return r;
}

const char *nuki_frame_strerror(int r)
{
        switch (r) {
        case -ENODATA:
                return "message too short";
        case -EMSGSIZE:
                return "length field inconsistent with the message size";
        case -EKEYREJECTED:
                return "authentication tag mismatch (wrong key or corrupted message)";
        case -EBADMSG:
                return "CRC mismatch";
        case -EPROTO:
                return "auth-id mismatch";
        case -ENOBUFS:
                return "output buffer too small";
        case -ENOKEY:
                return "encrypted message but no shared key given";
        default:
                return "malformed message";
        }
}

/* ---- reassembly ---- */

size_t nuki_plain_expected_size(uint16_t command)
{
        /* Fact sheet 1.2 for the lock's messages; the client's pairing messages are fixed by
         * the layouts in 4.1 (the lock side of the simulator reassembles those). */
        switch (command) {
        case 0x0003: /* Public Key */
        case 0x0004: /* Challenge */
        case 0x0005: /* Authorization Authenticator */
                return 36;
        case 0x0006: /* Authorization Data (gen 1-4) */
                return 105;
        case 0x0007: /* Authorization-ID (gen 1-4) */
                return 88;
        case 0x000E: /* Status */
        case 0x004C: /* Authorization Info */
                return 5;
        case 0x0012: /* Error Report */
                return 7;
        case 0x001E: /* Authorization-ID Confirmation */
                return 40;
        default:
                return 0;
        }
}

void nuki_reasm_init(NukiReasm *r, NukiReasmMode mode)
{
        memset(r, 0, sizeof(*r));
        r->mode = mode;
        r->timeout_usec = NUKI_REASM_TIMEOUT_USEC;
}

void nuki_reasm_reset(NukiReasm *r)
{
        sodium_memzero(r->buf, sizeof(r->buf));
        r->len = 0;
}

void nuki_reasm_set_mode(NukiReasm *r, NukiReasmMode mode)
{
        /* Setting the mode it already has keeps a message that is half in. */
        if (r->mode == mode)
                return;
        nuki_reasm_reset(r);
        r->mode = mode;
}

int nuki_reasm_feed(NukiReasm *r, const void *data, size_t n, uint64_t now_usec)
{
        if (now_usec > 0) {
                if (r->len > 0 && r->timeout_usec > 0 && now_usec - r->last_usec > r->timeout_usec)
                        nuki_reasm_reset(r);
                r->last_usec = now_usec;
        }
        if (n > sizeof(r->buf) - r->len) {
                nuki_reasm_reset(r);
                return -EMSGSIZE;
        }
        if (n > 0)
                memcpy(r->buf + r->len, data, n);
        r->len += n;
        return 0;
}

/* Length of the complete message at the start of the buffer: >0, 0 = need more, <0 error. */
static ssize_t plain_message_len(const NukiReasm *r)
{
        size_t expected;

        if (r->len < 2)
                return 0;
        expected = nuki_plain_expected_size(nuki_get_u16(r->buf));
        if (expected > 0) {
                if (r->len < expected)
                        return 0;
                return crc_ok(r->buf, expected) ? (ssize_t) expected : -EBADMSG;
        }
        /* Unknown command: the first prefix whose CRC matches. */
        for (size_t l = NUKI_PLAIN_MIN; l <= r->len && l <= NUKI_PLAIN_MAX; l++)
                if (crc_ok(r->buf, l))
                        return (ssize_t) l;
        if (r->len >= NUKI_PLAIN_MAX)
                return -EMSGSIZE;
        return 0;
}

static ssize_t encrypted_message_len(const NukiReasm *r)
{
        size_t len;

        if (r->len < NUKI_ADATA_SIZE)
                return 0;
        len = nuki_get_u16(r->buf + 28);
        if (len < NUKI_TAG_SIZE + 8 || len > NUKI_TAG_SIZE + NUKI_PDATA_MAX)
                return -EMSGSIZE;
        if (r->len < NUKI_ADATA_SIZE + len)
                return 0;
        return (ssize_t) (NUKI_ADATA_SIZE + len);
}

static ssize_t ultra_reply_len(const NukiReasm *r)
{
        /* The lock may answer the encrypted Ultra Authorization Data with a plain frame: the
         * Authorization-ID as printed in [S23] (24 bytes), or an Error Report / Status. */
        static const struct {
                uint16_t command;
                size_t size;
        } plain[] = {
                { 0x0007, 24 },
                { 0x0012, 7 },
                { 0x000E, 5 },
        };

        if (r->len >= 2)
                for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                        if (nuki_get_u16(r->buf) != plain[i].command)
                                continue;
                        if (r->len >= plain[i].size && crc_ok(r->buf, plain[i].size))
                                return (ssize_t) plain[i].size;
                }
        return encrypted_message_len(r);
}

int nuki_reasm_pop(NukiReasm *r, uint8_t *out, size_t size, size_t *ret_len)
{
        ssize_t l = 0;

        switch (r->mode) {
        case NUKI_REASM_PLAIN:
                l = plain_message_len(r);
                break;
        case NUKI_REASM_ENCRYPTED:
                l = encrypted_message_len(r);
                break;
        case NUKI_REASM_ULTRA_PAIRING_REPLY:
                l = ultra_reply_len(r);
                break;
        }
        if (l == 0)
                return 0;
        if (l > 0 && (size_t) l > size)
                l = -EMSGSIZE;
        if (l < 0) {
                nuki_reasm_reset(r);
                return (int) l;
        }
        memcpy(out, r->buf, (size_t) l);
        memmove(r->buf, r->buf + l, r->len - (size_t) l);
        r->len -= (size_t) l;
        sodium_memzero(r->buf + r->len, (size_t) l);
        *ret_len = (size_t) l;
        return 1;
}
