/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Nuki pairing ("Authorize App", fact sheet section 4), both roles:
 *
 *   NukiPairClient  the hub: Smart Lock 1.0-4th gen flow (a92ee101) and the Ultra/"5G"
 *                   flow (a92ee301). The flow is chosen by what the lock sends after the
 *                   authenticator: a second Challenge (gen 1-4) or Authorization Info
 *                   0x004C (Ultra) — [CLI] decides the same way.
 *   NukiPairLock    the lock, for the simulator: fed client frames, emits lock frames.
 *
 * Both are pure state machines. Feed them one complete message at a time (use a
 * NukiReasm in the mode nuki_pair_*_reasm_mode() says); every call may produce one frame
 * to send (*ret_len > 0; send it even when the call fails, the lock side then carries an
 * Error Report). Keys and nonces can be injected so the official examples are
 * reproducible; otherwise they are random.
 *
 * Return values of the feed functions:
 *    0  continue (send *ret_len bytes if > 0, then wait for the next message)
 *    1  paired: nuki_pair_*_get_result()
 *   <0  failed, the machine is in state FAILED and its secrets are wiped (a machine that
 *       is already DONE answers further messages with -EPROTO and keeps its result):
 *       -EPERM         the lock is not in pairing mode (P_ERROR_NOT_PAIRING)
 *       -EACCES        the lock rejected our authenticator (P_ERROR_BAD_AUTHENTICATOR)
 *       -EINVAL        the lock rejected a parameter (P_ERROR_BAD_PARAMETER)
 *       -ENOSPC        the lock has no room for another authorization (P_ERROR_MAX_USER)
 *       -EREMOTEIO     any other Error Report (nuki_pair_client_lock_error() has the code,
 *                      e.g. K_ERROR_BAD_PIN on Ultra)
 *       -EKEYREJECTED  the peer's authenticator did not verify: we abort
 *       -EBADMSG       a malformed message (CRC, tag, length)
 *       -EPROTO        a message that does not belong in this state
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-frame.h"

/* Buffer size that always holds one frame emitted by the pairing machines. */
#define NUKI_PAIR_OUT_MAX NUKI_FRAME_MAX

/*
 * The ADATA/PDATA auth-id of the encrypted Ultra Authorization Data. [S23] says
 * "0x7FFFFFFF" without showing bytes (fact sheet 4.2, open question 1):
 *   BYTES_7FFFFFFF   bytes 7F FF FF FF on the wire: [CLI] (Nuki's own org) and [PY]; default
 *   LE_7FFFFFFF      the value 0x7FFFFFFF little-endian (FF FF FF 7F), the convention
 *                    everywhere else in the protocol
 *   APP_ID           the app id: what [ESP] sends
 */
typedef enum NukiUltraAuthId {
        NUKI_ULTRA_AUTH_ID_BYTES_7FFFFFFF,
        NUKI_ULTRA_AUTH_ID_LE_7FFFFFFF,
        NUKI_ULTRA_AUTH_ID_APP_ID,
} NukiUltraAuthId;

uint32_t nuki_ultra_auth_id(NukiUltraAuthId mode, uint32_t app_id);

/*
 * The format of the lock's Ultra Authorization-ID reply (open question 1, fact sheet 4.2):
 *   ENCRYPTED          a normal encrypted message: [CLI], [PY] and [ESP] parse it so
 *   ENCRYPTED_NO_ID    encrypted, but PDATA = cmd | payload | crc without the auth-id
 *                      (the CRC printed in [S23] covers only cmd + payload)
 *   PLAIN              an unencrypted frame, exactly as [S23] prints it
 * The client accepts all three; the lock side emits the one it is told to.
 */
typedef enum NukiUltraReply {
        NUKI_ULTRA_REPLY_ENCRYPTED,
        NUKI_ULTRA_REPLY_ENCRYPTED_NO_ID,
        NUKI_ULTRA_REPLY_PLAIN,
} NukiUltraReply;

/* The outcome of a pairing, on either side. Secret: wipe with nuki_pairing_wipe(). */
typedef struct NukiPairing {
        uint32_t auth_id;
        uint8_t shared_key[NUKI_KEY_SIZE];
        uint8_t uuid[NUKI_UUID_SIZE];
        uint32_t app_id;
        NukiIdType id_type;
        char name[NUKI_NAME_SIZE + 1];
        bool ultra; /* PINs are uint32 from now on */
        uint8_t peer_public_key[NUKI_KEY_SIZE];
} NukiPairing;

void nuki_pairing_wipe(NukiPairing *p);

/* ---- client ---- */

typedef enum NukiPairState {
        NUKI_PAIR_IDLE,
        NUKI_PAIR_WAIT_PUBLIC_KEY,
        NUKI_PAIR_WAIT_CHALLENGE_1,
        NUKI_PAIR_WAIT_CHALLENGE_2, /* or Authorization Info (Ultra) */
        NUKI_PAIR_WAIT_AUTHORIZATION_ID,
        NUKI_PAIR_WAIT_STATUS,
        NUKI_PAIR_WAIT_AUTHORIZATION_ID_ULTRA,
        NUKI_PAIR_DONE,
        NUKI_PAIR_FAILED,
} NukiPairState;

typedef struct NukiPairParams {
        NukiIdType id_type; /* NUKI_ID_TYPE_BRIDGE unless you know better (DESIGN.md) */
        uint32_t app_id;
        const char *name;      /* shown in the app and the activity log; <= 32 bytes used */
        uint32_t security_pin; /* Ultra: the lock's 6-digit PIN */
        NukiUltraAuthId ultra_auth_id;
        /* Injected for reproducible tests; NULL means random. */
        const uint8_t *secret_key;    /* [32] client X25519 secret key */
        const uint8_t *client_nonce;  /* [32] nABF */
        const uint8_t *message_nonce; /* [24] nonce of the encrypted Ultra Authorization Data */
} NukiPairParams;

void nuki_pair_params_init(NukiPairParams *p);

typedef struct NukiPairClient NukiPairClient;

int nuki_pair_client_new(NukiPairClient **ret, const NukiPairParams *p);
NukiPairClient *nuki_pair_client_free(NukiPairClient *c);
static inline void nuki_pair_client_freep(NukiPairClient **c)
{
        if (*c)
                nuki_pair_client_free(*c);
}

/* First frame: Request Data(Public Key). Returns its length. */
int nuki_pair_client_start(NukiPairClient *c, uint8_t *out, size_t size);
int nuki_pair_client_feed(NukiPairClient *c, const uint8_t *msg, size_t n, uint8_t *out, size_t size,
                          size_t *ret_len);
NukiPairState nuki_pair_client_state(const NukiPairClient *c);
const char *nuki_pair_state_to_string(NukiPairState s);
NukiReasmMode nuki_pair_client_reasm_mode(const NukiPairClient *c);
/* The error code of the lock's Error Report after -EPERM/-EACCES/-EINVAL/-ENOSPC/-EREMOTEIO, else -1. */
int nuki_pair_client_lock_error(const NukiPairClient *c);
/* Ultra: the lock's Authorization Info (security PIN set?), -1 if not received. */
int nuki_pair_client_security_pin_info(const NukiPairClient *c);
/* The client public key (valid from creation). */
const uint8_t *nuki_pair_client_public_key(const NukiPairClient *c);
/* -EBUSY unless DONE. */
int nuki_pair_client_get_result(const NukiPairClient *c, NukiPairing *ret);

/* ---- lock (for the simulator) ---- */

typedef enum NukiPairLockState {
        NUKI_PAIR_LOCK_WAIT_REQUEST,
        NUKI_PAIR_LOCK_WAIT_PUBLIC_KEY,
        NUKI_PAIR_LOCK_WAIT_AUTHENTICATOR,
        NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA,
        NUKI_PAIR_LOCK_WAIT_CONFIRMATION,
        NUKI_PAIR_LOCK_WAIT_AUTHORIZATION_DATA_ULTRA,
        NUKI_PAIR_LOCK_DONE,
        NUKI_PAIR_LOCK_FAILED,
} NukiPairLockState;

typedef struct NukiPairLockParams {
        bool ultra;          /* pairing service a92ee300: Authorization Info instead of a 2nd challenge */
        bool pairing_mode;   /* false: Request Data is answered with P_ERROR_NOT_PAIRING */
        bool full;           /* true: Authorization Data is answered with P_ERROR_MAX_USER */
        uint32_t auth_id;    /* assigned to the new authorization */
        const uint8_t *uuid; /* [16] the lock's uuid (NULL = random) */
        /* Ultra: the lock's security PIN; the client must send it (K_ERROR_BAD_PIN otherwise).
         * security_pin_set is what Authorization Info reports. */
        uint32_t security_pin;
        bool security_pin_set;
        NukiUltraReply ultra_reply;
        /* Injected for reproducible tests; NULL means random. */
        const uint8_t *secret_key;    /* [32] lock X25519 secret key */
        const uint8_t *nonces;        /* [3 * 32] nK1, nK2, nK3 */
        const uint8_t *message_nonce; /* [24] nonce of the encrypted Ultra reply */
} NukiPairLockParams;

void nuki_pair_lock_params_init(NukiPairLockParams *p);

typedef struct NukiPairLock NukiPairLock;

int nuki_pair_lock_new(NukiPairLock **ret, const NukiPairLockParams *p);
NukiPairLock *nuki_pair_lock_free(NukiPairLock *l);
static inline void nuki_pair_lock_freep(NukiPairLock **l)
{
        if (*l)
                nuki_pair_lock_free(*l);
}
/* Same return convention as the client; errors mean the lock refused (the Error Report is
 * in out) or the client misbehaved. */
int nuki_pair_lock_feed(NukiPairLock *l, const uint8_t *msg, size_t n, uint8_t *out, size_t size,
                        size_t *ret_len);
NukiPairLockState nuki_pair_lock_state(const NukiPairLock *l);
NukiReasmMode nuki_pair_lock_reasm_mode(const NukiPairLock *l);
const uint8_t *nuki_pair_lock_public_key(const NukiPairLock *l);
int nuki_pair_lock_get_result(const NukiPairLock *l, NukiPairing *ret);
