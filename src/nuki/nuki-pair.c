/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nuki pairing state machines (fact sheet 4.1 and 4.2).
 *
 * Client (the hub). Messages in brackets are what we send on entering the next state.
 *
 *   IDLE
 *     | nuki_pair_client_start()                          [Request Data(0x0003)]
 *     v
 *   WAIT_PUBLIC_KEY
 *     | Public Key(pk_lock): s = kdf1(dh1(sk, pk_lock))   [Public Key(pk_client)]
 *     v
 *   WAIT_CHALLENGE_1
 *     | Challenge(nK1)           [Authorization Authenticator h1(pk_client|pk_lock|nK1)]
 *     v
 *   WAIT_CHALLENGE_2 -------------------------------------------.
 *     | Challenge(nK2)  (gen 1-4)                                | Authorization Info (Ultra)
 *     |  [Authorization Data h1(type|app|name|nABF|nK2)|...]     |  [encrypted Authorization
 *     v                                                          v   Data app|name|pin u32]
 *   WAIT_AUTHORIZATION_ID                         WAIT_AUTHORIZATION_ID_ULTRA
 *     | Authorization-ID: verify h1(id|uuid|nK3|nABF)            | Authorization-ID (any of the
 *     |  [Authorization-ID Confirmation h1(id|nK3)|id]           |  three formats, see 4.2)
 *     v                                                          |
 *   WAIT_STATUS                                                  |
 *     | Status COMPLETE                                          |
 *     v                                                          |
 *   DONE <------------------------------------------------------'
 *
 *   Any state --Error Report, bad CRC/tag, wrong authenticator, unexpected message--> FAILED
 *
 * Transitions happen only in client_feed_*() through client_set_state(); entering DONE or
 * FAILED is final, and FAILED wipes every secret.
 *
 * Lock (for the simulator), same messages seen from the other side:
 *
 *   WAIT_REQUEST --Request Data(0x0003)--> [Public Key] WAIT_PUBLIC_KEY
 *     (not in pairing mode: [Error Report P_ERROR_NOT_PAIRING] FAILED)
 *   WAIT_PUBLIC_KEY --Public Key--> [Challenge nK1] WAIT_AUTHENTICATOR
 *   WAIT_AUTHENTICATOR --Authenticator ok--> gen 1-4: [Challenge nK2] WAIT_AUTHORIZATION_DATA
 *                                            Ultra:   [Authorization Info] WAIT_AUTHORIZATION_DATA_ULTRA
 *     (bad: [Error Report P_ERROR_BAD_AUTHENTICATOR] FAILED)
 *   WAIT_AUTHORIZATION_DATA --ok--> [Authorization-ID] WAIT_CONFIRMATION
 *     (bad authenticator / full: Error Report, FAILED)
 *   WAIT_CONFIRMATION --ok--> [Status COMPLETE] DONE
 *   WAIT_AUTHORIZATION_DATA_ULTRA --PIN ok--> [Authorization-ID (Ultra)] DONE
 *     (wrong PIN: [Error Report K_ERROR_BAD_PIN] FAILED; full: P_ERROR_MAX_USER)
 */

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-pair.h"

void nuki_pairing_wipe(NukiPairing *p)
{
        if (p)
                sodium_memzero(p, sizeof(*p));
}

uint32_t nuki_ultra_auth_id(NukiUltraAuthId mode, uint32_t app_id)
{
        switch (mode) {
        case NUKI_ULTRA_AUTH_ID_BYTES_7FFFFFFF:
                return 0xFFFFFF7Fu; /* little-endian bytes 7F FF FF FF */
        case NUKI_ULTRA_AUTH_ID_LE_7FFFFFFF:
                return 0x7FFFFFFFu;
        case NUKI_ULTRA_AUTH_ID_APP_ID:
                return app_id;
        }
        return 0xFFFFFF7Fu;
}

void nuki_pair_params_init(NukiPairParams *p)
{
        memset(p, 0, sizeof(*p));
        p->id_type = NUKI_ID_TYPE_BRIDGE;
        p->name = "lockhub";
        p->ultra_auth_id = NUKI_ULTRA_AUTH_ID_BYTES_7FFFFFFF;
}

/* Map an Error Report received during pairing to the documented errno. */
static int pair_error_to_errno(uint8_t code)
{
        switch (code) {
        case NUKI_P_ERROR_NOT_PAIRING:
                return -EPERM;
        case NUKI_P_ERROR_BAD_AUTHENTICATOR:
                return -EACCES;
        case NUKI_P_ERROR_BAD_PARAMETER:
                return -EINVAL;
        case NUKI_P_ERROR_MAX_USER:
                return -ENOSPC;
        default:
                return -EREMOTEIO;
        }
}

/* ---- client ---- */

struct NukiPairClient {
        NukiPairState state;
        NukiIdType id_type;
        uint32_t app_id;
        char name[NUKI_NAME_SIZE + 1];
        uint32_t security_pin;
        NukiUltraAuthId ultra_auth_id;
        int lock_error;
        int security_pin_info;
        bool have_message_nonce;

        NukiKeyPair keys;
        uint8_t lock_public_key[NUKI_KEY_SIZE];
        uint8_t s[NUKI_KEY_SIZE];
        uint8_t nabf[NUKI_CHALLENGE_SIZE];
        uint8_t nk3[NUKI_CHALLENGE_SIZE];
        uint8_t message_nonce[NUKI_NONCE_SIZE];

        uint32_t auth_id;
        uint8_t uuid[NUKI_UUID_SIZE];
        bool ultra;
};

int nuki_pair_client_new(NukiPairClient **ret, const NukiPairParams *p)
{
        NukiPairClient *c;
        int r;

        if (!p || (unsigned) p->id_type > NUKI_ID_TYPE_KEYPAD_2)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->state = NUKI_PAIR_IDLE;
        c->id_type = p->id_type;
        c->app_id = p->app_id;
        if (p->name)
                memcpy(c->name, p->name, strnlen(p->name, NUKI_NAME_SIZE));
        c->security_pin = p->security_pin;
        c->ultra_auth_id = p->ultra_auth_id;
        c->lock_error = -1;
        c->security_pin_info = -1;

        r = p->secret_key ? nuki_keypair_from_secret(&c->keys, p->secret_key)
                          : nuki_keypair_generate(&c->keys);
        if (r < 0) {
                nuki_pair_client_free(c);
                return r;
        }
        if (p->client_nonce)
                memcpy(c->nabf, p->client_nonce, sizeof(c->nabf));
        else
                nuki_random(c->nabf, sizeof(c->nabf));
        if (p->message_nonce) {
                memcpy(c->message_nonce, p->message_nonce, sizeof(c->message_nonce));
                c->have_message_nonce = true;
        }
        *ret = c;
        return 0;
}

static void client_wipe_secrets(NukiPairClient *c)
{
        sodium_memzero(&c->keys, sizeof(c->keys));
        sodium_memzero(c->s, sizeof(c->s));
        sodium_memzero(c->nabf, sizeof(c->nabf));
        sodium_memzero(c->nk3, sizeof(c->nk3));
        sodium_memzero(&c->security_pin, sizeof(c->security_pin));
}

NukiPairClient *nuki_pair_client_free(NukiPairClient *c)
{
        if (!c)
                return NULL;
        sodium_memzero(c, sizeof(*c));
        free(c);
        return NULL;
}

NukiPairState nuki_pair_client_state(const NukiPairClient *c)
{
        return c->state;
}

const char *nuki_pair_state_to_string(NukiPairState s)
{
        switch (s) {
        case NUKI_PAIR_IDLE:
                return "idle";
        case NUKI_PAIR_WAIT_PUBLIC_KEY:
                return "wait-public-key";
        case NUKI_PAIR_WAIT_CHALLENGE_1:
                return "wait-challenge-1";
        case NUKI_PAIR_WAIT_CHALLENGE_2:
                return "wait-challenge-2";
        case NUKI_PAIR_WAIT_AUTHORIZATION_ID:
                return "wait-authorization-id";
        case NUKI_PAIR_WAIT_STATUS:
                return "wait-status";
        case NUKI_PAIR_WAIT_AUTHORIZATION_ID_ULTRA:
                return "wait-authorization-id-ultra";
        case NUKI_PAIR_DONE:
                return "done";
        case NUKI_PAIR_FAILED:
                return "failed";
        }
        return "invalid";
}

NukiReasmMode nuki_pair_client_reasm_mode(const NukiPairClient *c)
{
        return c->state == NUKI_PAIR_WAIT_AUTHORIZATION_ID_ULTRA ? NUKI_REASM_ULTRA_PAIRING_REPLY
                                                                 : NUKI_REASM_PLAIN;
}

int nuki_pair_client_lock_error(const NukiPairClient *c)
{
        return c->lock_error;
}

int nuki_pair_client_security_pin_info(const NukiPairClient *c)
{
        return c->security_pin_info;
}

const uint8_t *nuki_pair_client_public_key(const NukiPairClient *c)
{
        return c->keys.public_key;
}

static void client_set_state(NukiPairClient *c, NukiPairState s)
{
        c->state = s;
        if (s == NUKI_PAIR_FAILED)
                client_wipe_secrets(c);
}

static int client_fail(NukiPairClient *c, int r)
{
        client_set_state(c, NUKI_PAIR_FAILED);
        return r;
}

int nuki_pair_client_start(NukiPairClient *c, uint8_t *out, size_t size)
{
        uint8_t payload[2];
        int r;

        if (c->state != NUKI_PAIR_IDLE)
                return -EBUSY;
        nuki_put_u16(payload, NUKI_CMD_PUBLIC_KEY);
        r = nuki_frame_encode_plain(NUKI_CMD_REQUEST_DATA, payload, sizeof(payload), out, size);
        if (r < 0)
                return r;
        client_set_state(c, NUKI_PAIR_WAIT_PUBLIC_KEY);
        return r;
}

static int emit_plain(uint16_t cmd, const uint8_t *payload, size_t len, uint8_t *out, size_t size,
                      size_t *ret_len)
{
        int r = nuki_frame_encode_plain(cmd, payload, len, out, size);
        if (r < 0)
                return r;
        *ret_len = (size_t) r;
        return 0;
}

static int client_on_public_key(NukiPairClient *c, const NukiFrame *f, uint8_t *out, size_t size,
                                size_t *ret_len)
{
        int r;

        if (f->payload_len != NUKI_KEY_SIZE)
                return -EBADMSG;
        memcpy(c->lock_public_key, f->payload, NUKI_KEY_SIZE);
        r = nuki_shared_key(c->s, c->keys.secret_key, c->lock_public_key);
        if (r < 0)
                return -EKEYREJECTED; /* low-order point: no shared secret */
        r = emit_plain(NUKI_CMD_PUBLIC_KEY, c->keys.public_key, NUKI_KEY_SIZE, out, size, ret_len);
        if (r < 0)
                return r;
        client_set_state(c, NUKI_PAIR_WAIT_CHALLENGE_1);
        return 0;
}

static int client_on_challenge_1(NukiPairClient *c, const NukiFrame *f, uint8_t *out, size_t size,
                                 size_t *ret_len)
{
        uint8_t msg[3 * 32], auth[NUKI_AUTHENTICATOR_SIZE];
        int r;

        if (f->payload_len != NUKI_CHALLENGE_SIZE)
                return -EBADMSG;
        memcpy(msg, c->keys.public_key, 32);
        memcpy(msg + 32, c->lock_public_key, 32);
        memcpy(msg + 64, f->payload, 32);
        r = nuki_authenticator(auth, c->s, msg, sizeof(msg));
        if (r >= 0)
                r = emit_plain(NUKI_CMD_AUTHORIZATION_AUTHENTICATOR, auth, sizeof(auth), out, size, ret_len);
        sodium_memzero(auth, sizeof(auth));
        if (r < 0)
                return r;
        client_set_state(c, NUKI_PAIR_WAIT_CHALLENGE_2);
        return 0;
}

static int client_on_challenge_2(NukiPairClient *c, const NukiFrame *f, uint8_t *out, size_t size,
                                 size_t *ret_len)
{
        /* payload: auth[32] | id_type | app_id u32 | name[32] | nABF[32]; HMAC input is
         * everything after the authenticator, followed by nK2 (not transmitted). */
        uint8_t payload[32 + 101], *p = payload + 32;
        int r;

        if (f->payload_len != NUKI_CHALLENGE_SIZE)
                return -EBADMSG;
        p[0] = (uint8_t) c->id_type;
        nuki_put_u32(p + 1, c->app_id);
        memset(p + 5, 0, NUKI_NAME_SIZE);
        memcpy(p + 5, c->name, strnlen(c->name, NUKI_NAME_SIZE));
        memcpy(p + 37, c->nabf, 32);
        memcpy(p + 69, f->payload, 32); /* nK2, hidden */
        r = nuki_authenticator(payload, c->s, p, 101);
        if (r >= 0)
                r = emit_plain(NUKI_CMD_AUTHORIZATION_DATA, payload, 32 + 69, out, size, ret_len);
        sodium_memzero(payload, sizeof(payload));
        if (r < 0)
                return r;
        client_set_state(c, NUKI_PAIR_WAIT_AUTHORIZATION_ID);
        return 0;
}

static int client_on_authorization_info(NukiPairClient *c, const NukiFrame *f, uint8_t *out, size_t size,
                                        size_t *ret_len)
{
        NukiMsg m;
        uint8_t nonce[NUKI_NONCE_SIZE];
        int r;

        if (f->payload_len != 1)
                return -EBADMSG;
        c->security_pin_info = f->payload[0];
        c->ultra = true;

        /* [ESP] refuses to pair without a PIN; we send what we were given and let the
         * lock judge (it answers K_ERROR_BAD_PIN). */
        nuki_msg_init(&m, NUKI_CMD_AUTHORIZATION_DATA, NUKI_VARIANT_ULTRA);
        m.authorization_data_ultra.app_id = c->app_id;
        memcpy(m.authorization_data_ultra.name, c->name, sizeof(c->name));
        m.authorization_data_ultra.security_pin = c->security_pin;
        if (c->have_message_nonce)
                memcpy(nonce, c->message_nonce, sizeof(nonce));
        else
                nuki_random(nonce, sizeof(nonce));
        r = nuki_msg_encode_encrypted(&m, NUKI_PIN_SIZE_ULTRA, c->s, nonce,
                                      nuki_ultra_auth_id(c->ultra_auth_id, c->app_id), out, size);
        nuki_msg_wipe(&m);
        if (r < 0)
                return r;
        *ret_len = (size_t) r;
        client_set_state(c, NUKI_PAIR_WAIT_AUTHORIZATION_ID_ULTRA);
        return 0;
}

static int client_on_authorization_id(NukiPairClient *c, const NukiFrame *f, uint8_t *out, size_t size,
                                      size_t *ret_len)
{
        /* payload: auth[32] | auth_id u32 | uuid[16] | nK3[32]; HMAC over the 52 bytes after
         * the authenticator followed by nABF (not transmitted). */
        uint8_t msg[52 + 32], conf[32 + 4], cmsg[4 + 32];
        bool ok;
        int r;

        if (f->payload_len != 84)
                return -EBADMSG;
        memcpy(msg, f->payload + 32, 52);
        memcpy(msg + 52, c->nabf, 32);
        ok = nuki_authenticator_verify(f->payload, c->s, msg, sizeof(msg));
        sodium_memzero(msg, sizeof(msg));
        if (!ok)
                return -EKEYREJECTED;

        c->auth_id = nuki_get_u32(f->payload + 32);
        memcpy(c->uuid, f->payload + 36, NUKI_UUID_SIZE);
        memcpy(c->nk3, f->payload + 52, 32);

        nuki_put_u32(cmsg, c->auth_id);
        memcpy(cmsg + 4, c->nk3, 32);
        r = nuki_authenticator(conf, c->s, cmsg, sizeof(cmsg));
        nuki_put_u32(conf + 32, c->auth_id);
        if (r >= 0)
                r = emit_plain(NUKI_CMD_AUTHORIZATION_ID_CONFIRMATION, conf, sizeof(conf), out, size,
                               ret_len);
        sodium_memzero(conf, sizeof(conf));
        sodium_memzero(cmsg, sizeof(cmsg));
        if (r < 0)
                return r;
        client_set_state(c, NUKI_PAIR_WAIT_STATUS);
        return 0;
}

/*
 * The Ultra reply (fact sheet 4.2, open question 1). Try, in order:
 *   (a) a standard encrypted message keyed with s ([CLI], [PY], [ESP]);
 *   (b) encrypted, PDATA = cmd | payload | crc without the auth-id (the CRC printed in
 *       [S23] covers only cmd + payload);
 *   (c) a plain frame, exactly as [S23] prints it.
 * The ADATA auth-id of (a)/(b) is not checked: the spec does not say which the lock uses,
 * and the Poly1305 tag under the fresh s already proves the sender.
 */
static bool ultra_reply_plausible(uint16_t cmd, size_t payload_len)
{
        return (cmd == NUKI_CMD_AUTHORIZATION_ID && payload_len == 4 + NUKI_UUID_SIZE) ||
               (cmd == NUKI_CMD_ERROR_REPORT && payload_len == 3) ||
               (cmd == NUKI_CMD_STATUS && payload_len == 1);
}

static int client_parse_ultra_reply(NukiPairClient *c, const uint8_t *msg, size_t n, NukiFrame *f)
{
        uint8_t pdata[NUKI_PDATA_MAX];
        int plen, r = -EBADMSG;

        plen = nuki_frame_open(c->s, msg, n, pdata, sizeof(pdata), NULL);
        /* Both encrypted layouts end with a CRC over everything before it; they differ in
         * whether a 4-byte auth-id comes first, so the command position decides. */
        if (plen >= 4 && nuki_crc16(pdata, (size_t) plen - 2) == nuki_get_u16(pdata + plen - 2)) {
                size_t pl = (size_t) plen;

                memset(f, 0, sizeof(*f));
                f->encrypted = true;
                if (pl >= 8 && ultra_reply_plausible(nuki_get_u16(pdata + 4), pl - 8)) {
                        f->auth_id = nuki_get_u32(pdata);
                        f->command = nuki_get_u16(pdata + 4);
                        f->payload_len = pl - 8;
                        memcpy(f->payload, pdata + 6, f->payload_len);
                        r = 0;
                } else if (ultra_reply_plausible(nuki_get_u16(pdata), pl - 4)) {
                        f->command = nuki_get_u16(pdata);
                        f->payload_len = pl - 4;
                        memcpy(f->payload, pdata + 2, f->payload_len);
                        r = 0;
                }
        } else if (plen < 0 && nuki_frame_decode_plain(msg, n, f) >= 0)
                r = 0;
        sodium_memzero(pdata, sizeof(pdata));
        return r;
}

static int client_on_authorization_id_ultra(NukiPairClient *c, const NukiFrame *f)
{
        if (f->payload_len != 4 + NUKI_UUID_SIZE)
                return -EBADMSG;
        c->auth_id = nuki_get_u32(f->payload);
        memcpy(c->uuid, f->payload + 4, NUKI_UUID_SIZE);
        client_set_state(c, NUKI_PAIR_DONE);
        return 1;
}

int nuki_pair_client_feed(NukiPairClient *c, const uint8_t *msg, size_t n, uint8_t *out, size_t size,
                          size_t *ret_len)
{
        NukiFrame f;
        int r = -EPROTO;

        *ret_len = 0;
        switch (c->state) {
        case NUKI_PAIR_IDLE:
        case NUKI_PAIR_DONE:
        case NUKI_PAIR_FAILED:
                return -EPROTO;
        case NUKI_PAIR_WAIT_AUTHORIZATION_ID_ULTRA:
                r = client_parse_ultra_reply(c, msg, n, &f);
                break;
        case NUKI_PAIR_WAIT_PUBLIC_KEY:
        case NUKI_PAIR_WAIT_CHALLENGE_1:
        case NUKI_PAIR_WAIT_CHALLENGE_2:
        case NUKI_PAIR_WAIT_AUTHORIZATION_ID:
        case NUKI_PAIR_WAIT_STATUS:
                r = nuki_frame_decode_plain(msg, n, &f);
                if (r < 0)
                        r = -EBADMSG;
                break;
        }
        if (r < 0)
                return client_fail(c, r);

        if (f.command == NUKI_CMD_ERROR_REPORT) {
                if (f.payload_len < 1)
                        r = -EBADMSG;
                else {
                        c->lock_error = f.payload[0];
                        r = pair_error_to_errno(f.payload[0]);
                }
                nuki_frame_wipe(&f);
                return client_fail(c, r);
        }

        r = -EPROTO;
        switch (c->state) {
        case NUKI_PAIR_WAIT_PUBLIC_KEY:
                if (f.command == NUKI_CMD_PUBLIC_KEY)
                        r = client_on_public_key(c, &f, out, size, ret_len);
                break;
        case NUKI_PAIR_WAIT_CHALLENGE_1:
                if (f.command == NUKI_CMD_CHALLENGE)
                        r = client_on_challenge_1(c, &f, out, size, ret_len);
                break;
        case NUKI_PAIR_WAIT_CHALLENGE_2:
                if (f.command == NUKI_CMD_CHALLENGE)
                        r = client_on_challenge_2(c, &f, out, size, ret_len);
                else if (f.command == NUKI_CMD_AUTHORIZATION_INFO)
                        r = client_on_authorization_info(c, &f, out, size, ret_len);
                break;
        case NUKI_PAIR_WAIT_AUTHORIZATION_ID:
                if (f.command == NUKI_CMD_AUTHORIZATION_ID)
                        r = client_on_authorization_id(c, &f, out, size, ret_len);
                break;
        case NUKI_PAIR_WAIT_STATUS:
                if (f.command == NUKI_CMD_STATUS && f.payload_len == 1 &&
                    f.payload[0] == NUKI_STATUS_COMPLETE) {
                        client_set_state(c, NUKI_PAIR_DONE);
                        r = 1;
                }
                break;
        case NUKI_PAIR_WAIT_AUTHORIZATION_ID_ULTRA:
                if (f.command == NUKI_CMD_AUTHORIZATION_ID)
                        r = client_on_authorization_id_ultra(c, &f);
                break;
        case NUKI_PAIR_IDLE:
        case NUKI_PAIR_DONE:
        case NUKI_PAIR_FAILED:
                break;
        }
        nuki_frame_wipe(&f);
        if (r < 0) {
                *ret_len = 0;
                return client_fail(c, r);
        }
        return r;
}

int nuki_pair_client_get_result(const NukiPairClient *c, NukiPairing *ret)
{
        if (c->state != NUKI_PAIR_DONE)
                return -EBUSY;
        memset(ret, 0, sizeof(*ret));
        ret->auth_id = c->auth_id;
        memcpy(ret->shared_key, c->s, NUKI_KEY_SIZE);
        memcpy(ret->uuid, c->uuid, NUKI_UUID_SIZE);
        ret->app_id = c->app_id;
        ret->id_type = c->id_type;
        memcpy(ret->name, c->name, sizeof(ret->name));
        ret->ultra = c->ultra;
        memcpy(ret->peer_public_key, c->lock_public_key, NUKI_KEY_SIZE);
        return 0;
}

/* ---- lock ---- */

struct NukiPairLock {
        NukiPairLockState state;
        bool ultra, pairing_mode, full, security_pin_set, have_nonces, have_message_nonce;
        uint32_t auth_id;
        uint32_t security_pin;
        NukiUltraReply ultra_reply;
        uint8_t uuid[NUKI_UUID_SIZE];

        NukiKeyPair keys;
        uint8_t client_public_key[NUKI_KEY_SIZE];
        uint8_t s[NUKI_KEY_SIZE];
        uint8_t nonces[3][NUKI_CHALLENGE_SIZE];
        uint8_t message_nonce[NUKI_NONCE_SIZE];

        /* from the client */
        uint32_t app_id;
        uint8_t id_type;
        char name[NUKI_NAME_SIZE + 1];
};

void nuki_pair_lock_params_init(NukiPairLockParams *p)
{
        memset(p, 0, sizeof(*p));
        p->pairing_mode = true;
        p->auth_id = 1;
        p->ultra_reply = NUKI_ULTRA_REPLY_ENCRYPTED;
}

int nuki_pair_lock_new(NukiPairLock **ret, const NukiPairLockParams *p)
{
        NukiPairLock *l;
        int r;

        if (!p)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->state = NUKI_PAIR_LOCK_WAIT_REQUEST;
        l->ultra = p->ultra;
        l->pairing_mode = p->pairing_mode;
        l->full = p->full;
        l->auth_id = p->auth_id;
        l->security_pin = p->security_pin;
        l->security_pin_set = p->security_pin_set;
        l->ultra_reply = p->ultra_reply;
        if (p->uuid)
                memcpy(l->uuid, p->uuid, NUKI_UUID_SIZE);
        else
                nuki_random(l->uuid, NUKI_UUID_SIZE);
        r = p->secret_key ? nuki_keypair_from_secret(&l->keys, p->secret_key)
                          : nuki_keypair_generate(&l->keys);
        if (r < 0) {
                nuki_pair_lock_free(l);
                return r;
        }
        if (p->nonces)
                memcpy(l->nonces, p->nonces, sizeof(l->nonces));
        else
                nuki_random(l->nonces, sizeof(l->nonces));
        if (p->message_nonce)
                memcpy(l->message_nonce, p->message_nonce, NUKI_NONCE_SIZE);
        else
                nuki_random(l->message_nonce, NUKI_NONCE_SIZE);
        *ret = l;
        return 0;
}

NukiPairLock *nuki_pair_lock_free(NukiPairLock *l)
{
        if (!l)
                return NULL;
        sodium_memzero(l, sizeof(*l));
        free(l);
        return NULL;
}

NukiPairLockState nuki_pair_lock_state(const NukiPairLock *l)
{
        return l->state;
}

NukiReasmMode nuki_pair_lock_reasm_mode(const NukiPairLock *l)
{
        return l->state == NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA_ULTRA ? NUKI_REASM_ENCRYPTED
                                                                        : NUKI_REASM_PLAIN;
}

const uint8_t *nuki_pair_lock_public_key(const NukiPairLock *l)
{
        return l->keys.public_key;
}

static void lock_set_state(NukiPairLock *l, NukiPairLockState s)
{
        l->state = s;
        if (s == NUKI_PAIR_LOCK_FAILED) {
                sodium_memzero(&l->keys, sizeof(l->keys));
                sodium_memzero(l->s, sizeof(l->s));
                sodium_memzero(l->nonces, sizeof(l->nonces));
                sodium_memzero(&l->security_pin, sizeof(l->security_pin));
        }
}

/* Send an Error Report and fail with the errno the client will see. */
static int lock_refuse(NukiPairLock *l, uint8_t code, uint16_t cmd, uint8_t *out, size_t size,
                       size_t *ret_len)
{
        uint8_t p[3];

        p[0] = code;
        nuki_put_u16(p + 1, cmd);
        (void) emit_plain(NUKI_CMD_ERROR_REPORT, p, sizeof(p), out, size, ret_len);
        lock_set_state(l, NUKI_PAIR_LOCK_FAILED);
        return pair_error_to_errno(code);
}

static int lock_on_ultra_data(NukiPairLock *l, const uint8_t *msg, size_t n, uint8_t *out, size_t size,
                              size_t *ret_len)
{
        NukiFrame f;
        NukiMsg m;
        uint8_t reply[4 + NUKI_UUID_SIZE], pdata[2 + sizeof(reply) + 2];
        int r;

        r = nuki_frame_decode_encrypted(l->s, NULL, msg, n, &f);
        if (r < 0)
                return r == -EPROTO ? r : -EBADMSG;
        if (f.command != NUKI_CMD_AUTHORIZATION_DATA) {
                nuki_frame_wipe(&f);
                return -EPROTO;
        }
        r = nuki_msg_decode_payload(f.command, f.payload, f.payload_len, NUKI_PIN_SIZE_ULTRA, &m);
        nuki_frame_wipe(&f);
        if (r < 0 || m.variant != NUKI_VARIANT_ULTRA) {
                nuki_msg_wipe(&m);
                return -EBADMSG;
        }
        if (l->security_pin_set && m.authorization_data_ultra.security_pin != l->security_pin) {
                nuki_msg_wipe(&m);
                return lock_refuse(l, NUKI_K_ERROR_BAD_PIN, NUKI_CMD_AUTHORIZATION_DATA, out, size, ret_len);
        }
        l->app_id = m.authorization_data_ultra.app_id;
        l->id_type = NUKI_ID_TYPE_APP; /* the Ultra flow carries no id type */
        memcpy(l->name, m.authorization_data_ultra.name, sizeof(l->name));
        nuki_msg_wipe(&m);
        if (l->full)
                return lock_refuse(l, NUKI_P_ERROR_MAX_USER, NUKI_CMD_AUTHORIZATION_DATA, out, size,
                                   ret_len);

        nuki_put_u32(reply, l->auth_id);
        memcpy(reply + 4, l->uuid, NUKI_UUID_SIZE);
        switch (l->ultra_reply) {
        case NUKI_ULTRA_REPLY_ENCRYPTED: {
                uint32_t aid;
                (void) nuki_frame_peek_auth_id(msg, n, &aid);
                r = nuki_frame_encode_encrypted(l->s, l->message_nonce, aid, NUKI_CMD_AUTHORIZATION_ID,
                                                reply, sizeof(reply), out, size);
                break;
        }
        case NUKI_ULTRA_REPLY_ENCRYPTED_NO_ID: {
                uint32_t aid;
                (void) nuki_frame_peek_auth_id(msg, n, &aid);
                nuki_put_u16(pdata, NUKI_CMD_AUTHORIZATION_ID);
                memcpy(pdata + 2, reply, sizeof(reply));
                nuki_put_u16(pdata + 2 + sizeof(reply), nuki_crc16(pdata, 2 + sizeof(reply)));
                r = nuki_frame_seal(l->s, l->message_nonce, aid, pdata, sizeof(pdata), out, size);
                break;
        }
        case NUKI_ULTRA_REPLY_PLAIN:
                r = nuki_frame_encode_plain(NUKI_CMD_AUTHORIZATION_ID, reply, sizeof(reply), out, size);
                break;
        }
        if (r < 0)
                return r;
        *ret_len = (size_t) r;
        lock_set_state(l, NUKI_PAIR_LOCK_DONE);
        return 1;
}

int nuki_pair_lock_feed(NukiPairLock *l, const uint8_t *msg, size_t n, uint8_t *out, size_t size,
                        size_t *ret_len)
{
        NukiFrame f;
        int r = -EPROTO;

        *ret_len = 0;
        switch (l->state) {
        case NUKI_PAIR_LOCK_DONE:
        case NUKI_PAIR_LOCK_FAILED:
                return -EPROTO;
        case NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA_ULTRA:
                r = lock_on_ultra_data(l, msg, n, out, size, ret_len);
                if (r < 0 && l->state != NUKI_PAIR_LOCK_FAILED)
                        lock_set_state(l, NUKI_PAIR_LOCK_FAILED);
                return r;
        case NUKI_PAIR_LOCK_WAIT_REQUEST:
        case NUKI_PAIR_LOCK_WAIT_PUBLIC_KEY:
        case NUKI_PAIR_LOCK_WAIT_AUTHENTICATOR:
        case NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA:
        case NUKI_PAIR_LOCK_WAIT_CONFIRMATION:
                break;
        }

        r = nuki_frame_decode_plain(msg, n, &f);
        if (r < 0) {
                /* The firmware reports a bad CRC with ERROR_BAD_CRC; the pairing is over. */
                if (r == -EBADMSG && n >= 2)
                        (void) lock_refuse(l, NUKI_ERROR_BAD_CRC, nuki_get_u16(msg), out, size, ret_len);
                lock_set_state(l, NUKI_PAIR_LOCK_FAILED);
                return -EBADMSG;
        }

        r = -EPROTO;
        switch (l->state) {
        case NUKI_PAIR_LOCK_WAIT_REQUEST:
                if (f.command != NUKI_CMD_REQUEST_DATA || f.payload_len != 2 ||
                    nuki_get_u16(f.payload) != NUKI_CMD_PUBLIC_KEY)
                        break;
                if (!l->pairing_mode) {
                        r = lock_refuse(l, NUKI_P_ERROR_NOT_PAIRING, NUKI_CMD_REQUEST_DATA, out, size,
                                        ret_len);
                        break;
                }
                r = emit_plain(NUKI_CMD_PUBLIC_KEY, l->keys.public_key, NUKI_KEY_SIZE, out, size, ret_len);
                if (r >= 0)
                        lock_set_state(l, NUKI_PAIR_LOCK_WAIT_PUBLIC_KEY);
                break;
        case NUKI_PAIR_LOCK_WAIT_PUBLIC_KEY:
                if (f.command != NUKI_CMD_PUBLIC_KEY || f.payload_len != NUKI_KEY_SIZE)
                        break;
                memcpy(l->client_public_key, f.payload, NUKI_KEY_SIZE);
                if (nuki_shared_key(l->s, l->keys.secret_key, l->client_public_key) < 0) {
                        r = lock_refuse(l, NUKI_P_ERROR_BAD_PARAMETER, NUKI_CMD_PUBLIC_KEY, out, size,
                                        ret_len);
                        break;
                }
                r = emit_plain(NUKI_CMD_CHALLENGE, l->nonces[0], NUKI_CHALLENGE_SIZE, out, size, ret_len);
                if (r >= 0)
                        lock_set_state(l, NUKI_PAIR_LOCK_WAIT_AUTHENTICATOR);
                break;
        case NUKI_PAIR_LOCK_WAIT_AUTHENTICATOR: {
                uint8_t m[96];
                bool ok;

                if (f.command != NUKI_CMD_AUTHORIZATION_AUTHENTICATOR || f.payload_len != 32)
                        break;
                memcpy(m, l->client_public_key, 32);
                memcpy(m + 32, l->keys.public_key, 32);
                memcpy(m + 64, l->nonces[0], 32);
                ok = nuki_authenticator_verify(f.payload, l->s, m, sizeof(m));
                if (!ok) {
                        r = lock_refuse(l, NUKI_P_ERROR_BAD_AUTHENTICATOR, f.command, out, size, ret_len);
                        break;
                }
                if (l->ultra) {
                        uint8_t info = l->security_pin_set ? 1 : 0;
                        r = emit_plain(NUKI_CMD_AUTHORIZATION_INFO, &info, 1, out, size, ret_len);
                        if (r >= 0)
                                lock_set_state(l, NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA_ULTRA);
                } else {
                        r = emit_plain(NUKI_CMD_CHALLENGE, l->nonces[1], NUKI_CHALLENGE_SIZE, out, size,
                                       ret_len);
                        if (r >= 0)
                                lock_set_state(l, NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA);
                }
                break;
        }
        case NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA: {
                uint8_t m[101], reply[84], am[84];
                bool ok;

                if (f.command != NUKI_CMD_AUTHORIZATION_DATA || f.payload_len != 101)
                        break;
                memcpy(m, f.payload + 32, 69);
                memcpy(m + 69, l->nonces[1], 32);
                ok = nuki_authenticator_verify(f.payload, l->s, m, sizeof(m));
                sodium_memzero(m, sizeof(m));
                if (!ok) {
                        r = lock_refuse(l, NUKI_P_ERROR_BAD_AUTHENTICATOR, f.command, out, size, ret_len);
                        break;
                }
                l->id_type = f.payload[32];
                l->app_id = nuki_get_u32(f.payload + 33);
                memcpy(l->name, f.payload + 37, strnlen((const char *) f.payload + 37, NUKI_NAME_SIZE));
                if (l->id_type > NUKI_ID_TYPE_KEYPAD) {
                        r = lock_refuse(l, NUKI_P_ERROR_BAD_PARAMETER, f.command, out, size, ret_len);
                        break;
                }
                if (l->full) {
                        r = lock_refuse(l, NUKI_P_ERROR_MAX_USER, f.command, out, size, ret_len);
                        break;
                }
                /* reply: auth | auth_id | uuid | nK3; HMAC over the rest followed by nABF */
                nuki_put_u32(reply + 32, l->auth_id);
                memcpy(reply + 36, l->uuid, NUKI_UUID_SIZE);
                memcpy(reply + 52, l->nonces[2], 32);
                memcpy(am, reply + 32, 52);
                memcpy(am + 52, f.payload + 69, 32);
                r = nuki_authenticator(reply, l->s, am, sizeof(am));
                sodium_memzero(am, sizeof(am));
                if (r >= 0)
                        r = emit_plain(NUKI_CMD_AUTHORIZATION_ID, reply, sizeof(reply), out, size, ret_len);
                if (r >= 0)
                        lock_set_state(l, NUKI_PAIR_LOCK_WAIT_CONFIRMATION);
                break;
        }
        case NUKI_PAIR_LOCK_WAIT_CONFIRMATION: {
                uint8_t m[36], st = NUKI_STATUS_COMPLETE;
                bool ok;

                if (f.command != NUKI_CMD_AUTHORIZATION_ID_CONFIRMATION || f.payload_len != 36)
                        break;
                nuki_put_u32(m, l->auth_id);
                memcpy(m + 4, l->nonces[2], 32);
                ok = nuki_authenticator_verify(f.payload, l->s, m, sizeof(m)) &&
                     nuki_get_u32(f.payload + 32) == l->auth_id;
                if (!ok) {
                        r = lock_refuse(l, NUKI_P_ERROR_BAD_AUTHENTICATOR, f.command, out, size, ret_len);
                        break;
                }
                r = emit_plain(NUKI_CMD_STATUS, &st, 1, out, size, ret_len);
                if (r >= 0) {
                        lock_set_state(l, NUKI_PAIR_LOCK_DONE);
                        r = 1;
                }
                break;
        }
        case NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA_ULTRA:
        case NUKI_PAIR_LOCK_DONE:
        case NUKI_PAIR_LOCK_FAILED:
                break;
        }
        nuki_frame_wipe(&f);
        if (r < 0 && l->state != NUKI_PAIR_LOCK_FAILED)
                lock_set_state(l, NUKI_PAIR_LOCK_FAILED);
        return r;
}

int nuki_pair_lock_get_result(const NukiPairLock *l, NukiPairing *ret)
{
        if (l->state != NUKI_PAIR_LOCK_DONE)
                return -EBUSY;
        memset(ret, 0, sizeof(*ret));
        ret->auth_id = l->auth_id;
        memcpy(ret->shared_key, l->s, NUKI_KEY_SIZE);
        memcpy(ret->uuid, l->uuid, NUKI_UUID_SIZE);
        ret->app_id = l->app_id;
        ret->id_type = (NukiIdType) l->id_type;
        memcpy(ret->name, l->name, sizeof(ret->name));
        ret->ultra = l->ultra;
        memcpy(ret->peer_public_key, l->client_public_key, NUKI_KEY_SIZE);
        return 0;
}
