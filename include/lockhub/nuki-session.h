/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Nuki sessions after pairing (fact sheet 5 and 7), both roles.
 *
 * NukiSession (client): one command at a time, encrypted on USDIO.
 *   - Commands that carry a challenge nonce are preceded by an encrypted Request
 *     Data(Challenge); the nonce of that Challenge goes into the very next command and is
 *     never reused (a fresh challenge per command).
 *   - The security PIN is placed as uint16 (gen 1-4) or uint32 (Ultra).
 *   - Replies are classified: Status ACCEPTED, Keyturner States pushed during an action,
 *     list counts and entries are progress; Status COMPLETE or the requested data ends
 *     the exchange; an Error Report ends it with -EREMOTEIO. Per open question 3, ACCEPTED
 *     and Error Report are accepted as replies to any command.
 *
 * NukiLockSession (lock, for the simulator): decrypts a client's frame with the key of
 * its authorization, checks the challenge nonce (single use) and the PIN, and encrypts
 * replies. Which reply to send is the simulator's business.
 *
 * Nonces: every function that encrypts takes a 24-byte message nonce; NULL means random.
 *
 * A simulated lock, per connection and authorization:
 *   USDIO write → NukiReasm (NUKI_REASM_ENCRYPTED) → nuki_frame_peek_auth_id() to find the
 *   authorization (unknown: nuki_lock_plain_error(K_ERROR_NOT_AUTHORIZED, 0) on the
 *   Keyturner GDIO, as [WEB t/7912] observed) → nuki_lock_session_receive(), then
 *     > 0                    nuki_lock_session_send_error(code, m.command)
 *     Request Data(0x0004)   nuki_lock_session_challenge()
 *     Request Data(0x000C)   nuki_lock_session_send() of a Keyturner States message
 *     Lock Action            send_status(ACCEPTED), Keyturner States..., send_status(COMPLETE)
 *     configuration commands send_status(COMPLETE), or the data they ask for
 *   and, for bridges, nuki_lock_plain_status(0xF1) on the Keyturner GDIO when state changes.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-frame.h"

typedef enum NukiSessionState {
        NUKI_SESSION_IDLE,
        NUKI_SESSION_WAIT_CHALLENGE,
        NUKI_SESSION_WAIT_REPLY,
} NukiSessionState;

/* Results of nuki_session_feed() (>= 0). */
typedef enum NukiSessionResult {
        NUKI_SESSION_PENDING = 0,     /* consumed; send *ret_len bytes if > 0 */
        NUKI_SESSION_PROGRESS = 1,    /* *ret_msg is an intermediate reply */
        NUKI_SESSION_DONE = 2,        /* *ret_msg is the final reply; the session is idle again */
        NUKI_SESSION_UNSOLICITED = 3, /* *ret_msg arrived outside an exchange (Keyturner States, ...) */
} NukiSessionResult;

typedef struct NukiSession {
        NukiSessionState state;
        uint8_t key[NUKI_KEY_SIZE];
        uint32_t auth_id;
        uint32_t security_pin;
        unsigned pin_size;
        NukiMsg pending;    /* the command waiting for its challenge */
        uint16_t command;   /* in flight */
        uint16_t requested; /* Request Data: the command asked for */
        unsigned target;    /* list replies: entries expected (0 = until Status COMPLETE) */
        unsigned received;
        bool have_target;
        /* A list just ended by its count: the lock may still send a Status COMPLETE for it
         * ([PY] waits for one after log entries). One such Status is ignored while the next
         * exchange waits for its challenge or for requested data, where it cannot be a real
         * reply; any other message of the next exchange clears the flag. */
        bool trailing_status;
        int lock_error;
} NukiSession;

void nuki_session_init(NukiSession *s, const uint8_t key[NUKI_KEY_SIZE], uint32_t auth_id,
                       uint32_t security_pin, bool ultra);
void nuki_session_wipe(NukiSession *s);

/* Start a command. Emits the command itself, or first the Request Data(Challenge) it needs.
 * Returns the frame length; -EBUSY if an exchange is in progress. */
int nuki_session_begin(NukiSession *s, const NukiMsg *cmd, const uint8_t nonce[NUKI_NONCE_SIZE],
                       uint8_t *out, size_t size);
/* Convenience: Request Data(cmd) (Keyturner States 0x000C, Battery Report 0x0011). */
int nuki_session_request(NukiSession *s, uint16_t command, const uint8_t nonce[NUKI_NONCE_SIZE],
                         uint8_t *out, size_t size);

/* Feed one complete encrypted frame from USDIO. Returns a NukiSessionResult, or
 * -EREMOTEIO (Error Report: *ret_msg holds it, nuki_session_lock_error() its code),
 * -EKEYREJECTED/-EBADMSG/-EMSGSIZE/-ENODATA/-EPROTO (bad frame or auth-id; the exchange
 * is abandoned), -ENOENT (unknown command id: ignored, the exchange continues). */
int nuki_session_feed(NukiSession *s, const uint8_t *frame, size_t n, const uint8_t nonce[NUKI_NONCE_SIZE],
                      NukiMsg *ret_msg, uint8_t *out, size_t size, size_t *ret_len);
/* Abandon the exchange (time-out, disconnect). */
void nuki_session_reset(NukiSession *s);
static inline int nuki_session_lock_error(const NukiSession *s)
{
        return s->lock_error;
}

/* Does this command need a fresh challenge / a PIN? */
bool nuki_command_needs_challenge(uint16_t command);
bool nuki_command_needs_pin(uint16_t command);

/* ---- lock side ---- */

typedef struct NukiLockSession {
        uint8_t key[NUKI_KEY_SIZE];
        uint32_t auth_id;
        uint32_t security_pin;
        unsigned pin_size;
        uint8_t challenge[NUKI_CHALLENGE_SIZE];
        bool challenge_valid;
} NukiLockSession;

void nuki_lock_session_init(NukiLockSession *ls, const uint8_t key[NUKI_KEY_SIZE], uint32_t auth_id,
                            uint32_t security_pin, bool ultra);
void nuki_lock_session_wipe(NukiLockSession *ls);

/*
 * Decrypt and check a client frame. Returns
 *    0  *ret is a valid command (its challenge, if it needs one, was the current one and
 *       is now used up; its PIN, if it has one, matched);
 *   >0  a Nuki error code to answer with an Error Report for ret->command:
 *       K_ERROR_NOT_AUTHORIZED (tag or auth-id), ERROR_BAD_CRC, ERROR_BAD_LENGTH,
 *       K_ERROR_BAD_NONCE, K_ERROR_BAD_PIN, ERROR_UNKNOWN (unknown command);
 *   <0  -ENODATA/-EMSGSIZE: not a frame at all, drop it.
 */
int nuki_lock_session_receive(NukiLockSession *ls, const uint8_t *frame, size_t n, NukiMsg *ret);
/* Issue a new challenge (nk NULL = random): the encrypted Challenge frame. */
int nuki_lock_session_challenge(NukiLockSession *ls, const uint8_t nk[NUKI_CHALLENGE_SIZE],
                                const uint8_t nonce[NUKI_NONCE_SIZE], uint8_t *out, size_t size);
/* Encrypt any lock message for this authorization. */
int nuki_lock_session_send(const NukiLockSession *ls, const NukiMsg *m, const uint8_t nonce[NUKI_NONCE_SIZE],
                           uint8_t *out, size_t size);
int nuki_lock_session_send_status(const NukiLockSession *ls, uint8_t status,
                                  const uint8_t nonce[NUKI_NONCE_SIZE], uint8_t *out, size_t size);
int nuki_lock_session_send_error(const NukiLockSession *ls, uint8_t code, uint16_t command,
                                 const uint8_t nonce[NUKI_NONCE_SIZE], uint8_t *out, size_t size);

/* Unencrypted frames the lock sends on the Keyturner GDIO: Status 0xF1 to bridges, Error
 * Reports for messages it could not decrypt ([WEB t/14223], [WEB t/7912]). */
int nuki_lock_plain_status(uint8_t status, uint8_t *out, size_t size);
int nuki_lock_plain_error(uint8_t code, uint16_t command, uint8_t *out, size_t size);
