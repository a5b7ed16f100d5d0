/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nuki session helpers: challenge-then-command sequencing, PIN placement and reply
 * classification for the client; challenge bookkeeping and checks for the lock.
 *
 * Client states (one exchange at a time):
 *
 *   IDLE --nuki_session_begin(cmd needs a challenge)--> [Request Data(0x0004)] WAIT_CHALLENGE
 *   IDLE --nuki_session_begin(other cmd)--------------> [cmd]                  WAIT_REPLY
 *   WAIT_CHALLENGE --Challenge nK--> [cmd with nK (and PIN)]                   WAIT_REPLY
 *   WAIT_REPLY --Status ACCEPTED / Keyturner States (actions) / list count / entry--> WAIT_REPLY
 *   WAIT_REPLY --Status COMPLETE / requested data / last list entry-----------------> IDLE (DONE)
 *   any --Error Report--> IDLE (-EREMOTEIO);  any --bad frame--> IDLE (error)
 *
 * Transitions are made in nuki_session_feed() and nuki_session_begin() only. The challenge
 * nonce is copied into the pending command and the copy wiped right after encryption, so
 * it cannot be used twice.
 *
 * Lists (open question 4): the count comes first; the exchange ends when the expected
 * number of entries has arrived, or at a Status COMPLETE (which [PY] waits for after log
 * entries). Log entry counts are totals, so for logs the requested count also bounds it.
 */

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-session.h"

bool nuki_command_needs_challenge(uint16_t command)
{
        const NukiCommand *c = nuki_command_find(command, NUKI_VARIANT_DEFAULT);
        return c && (c->flags & NUKI_CMD_FLAG_CHALLENGE);
}

bool nuki_command_needs_pin(uint16_t command)
{
        const NukiCommand *c = nuki_command_find(command, NUKI_VARIANT_DEFAULT);
        return c && (c->flags & NUKI_CMD_FLAG_PIN);
}

static const uint8_t *pick_nonce(const uint8_t *nonce, uint8_t buf[NUKI_NONCE_SIZE])
{
        if (nonce)
                return nonce;
        nuki_random(buf, NUKI_NONCE_SIZE);
        return buf;
}

void nuki_session_init(NukiSession *s, const uint8_t key[NUKI_KEY_SIZE], uint32_t auth_id,
                       uint32_t security_pin, bool ultra)
{
        memset(s, 0, sizeof(*s));
        memcpy(s->key, key, NUKI_KEY_SIZE);
        s->auth_id = auth_id;
        s->security_pin = security_pin;
        s->pin_size = ultra ? NUKI_PIN_SIZE_ULTRA : NUKI_PIN_SIZE_LEGACY;
        s->lock_error = -1;
}

void nuki_session_wipe(NukiSession *s)
{
        if (s)
                sodium_memzero(s, sizeof(*s));
}

void nuki_session_reset(NukiSession *s)
{
        nuki_msg_wipe(&s->pending);
        s->state = NUKI_SESSION_IDLE;
        s->command = 0;
        s->requested = 0;
        s->target = 0;
        s->received = 0;
        s->have_target = false;
}

static int send_command(NukiSession *s, NukiMsg *m, const uint8_t *nonce, uint8_t *out, size_t size)
{
        uint8_t nbuf[NUKI_NONCE_SIZE];
        int r;

        if (nuki_command_needs_pin(m->command)) {
                r = nuki_msg_set_pin(m, s->security_pin);
                if (r < 0)
                        return r;
        }
        r = nuki_msg_encode_encrypted(m, s->pin_size, s->key, pick_nonce(nonce, nbuf), s->auth_id, out,
                                      size);
        if (r < 0)
                return r;
        s->state = NUKI_SESSION_WAIT_REPLY;
        return r;
}

int nuki_session_begin(NukiSession *s, const NukiMsg *cmd, const uint8_t nonce[NUKI_NONCE_SIZE],
                       uint8_t *out, size_t size)
{
        const NukiCommand *c;
        NukiMsg m;
        int r;

        if (s->state != NUKI_SESSION_IDLE)
                return -EBUSY;
        c = nuki_command_find(cmd->command, cmd->variant);
        if (!c || !(c->flags & NUKI_CMD_FLAG_FROM_CLIENT))
                return -EINVAL;

        nuki_session_reset(s);
        s->lock_error = -1;
        s->command = cmd->command;
        switch (cmd->command) {
        case NUKI_CMD_REQUEST_DATA:
                s->requested = cmd->request_data.command;
                break;
        case NUKI_CMD_REQUEST_AUTHORIZATION_ENTRIES:
                s->target = cmd->request_authorization_entries.count;
                break;
        case NUKI_CMD_REQUEST_KEYPAD_CODES:
                s->target = cmd->request_keypad_codes.count;
                break;
        case NUKI_CMD_REQUEST_LOG_ENTRIES:
                s->target = cmd->request_log_entries.count;
                s->have_target = true;
                break;
        default:
                break;
        }

        if (c->flags & NUKI_CMD_FLAG_CHALLENGE) {
                uint8_t p[2], nbuf[NUKI_NONCE_SIZE];

                s->pending = *cmd;
                nuki_put_u16(p, NUKI_CMD_CHALLENGE);
                r = nuki_frame_encode_encrypted(s->key, pick_nonce(nonce, nbuf), s->auth_id,
                                                NUKI_CMD_REQUEST_DATA, p, sizeof(p), out, size);
                if (r < 0) {
                        nuki_session_reset(s);
                        return r;
                }
                s->state = NUKI_SESSION_WAIT_CHALLENGE;
                return r;
        }
        m = *cmd;
        r = send_command(s, &m, nonce, out, size);
        nuki_msg_wipe(&m);
        if (r < 0)
                nuki_session_reset(s);
        return r;
}

int nuki_session_request(NukiSession *s, uint16_t command, const uint8_t nonce[NUKI_NONCE_SIZE],
                         uint8_t *out, size_t size)
{
        NukiMsg m;

        nuki_msg_init(&m, NUKI_CMD_REQUEST_DATA, NUKI_VARIANT_DEFAULT);
        m.request_data.command = command;
        m.n_optional = 0;
        return nuki_session_begin(s, &m, nonce, out, size);
}

/* The single reply that ends an exchange besides Status COMPLETE (0: none). */
static uint16_t final_reply(const NukiSession *s)
{
        switch (s->command) {
        case NUKI_CMD_REQUEST_DATA:
                return s->requested;
        case NUKI_CMD_REQUEST_CONFIG:
                return NUKI_CMD_CONFIG;
        case NUKI_CMD_REQUEST_ADVANCED_CONFIG:
                return NUKI_CMD_ADVANCED_CONFIG;
        case NUKI_CMD_ADD_KEYPAD_CODE:
                return NUKI_CMD_KEYPAD_CODE_ID;
        case NUKI_CMD_AUTHORIZATION_DATA_INVITE:
                return NUKI_CMD_AUTHORIZATION_ID_INVITE;
        case NUKI_CMD_ADD_TIME_CONTROL_ENTRY:
                return NUKI_CMD_TIME_CONTROL_ENTRY_ID;
        default:
                return 0;
        }
}

static bool list_commands(uint16_t command, uint16_t *count, uint16_t *entry)
{
        switch (command) {
        case NUKI_CMD_REQUEST_AUTHORIZATION_ENTRIES:
                *count = NUKI_CMD_AUTHORIZATION_ENTRY_COUNT;
                *entry = NUKI_CMD_AUTHORIZATION_ENTRY;
                return true;
        case NUKI_CMD_REQUEST_KEYPAD_CODES:
                *count = NUKI_CMD_KEYPAD_CODE_COUNT;
                *entry = NUKI_CMD_KEYPAD_CODE;
                return true;
        case NUKI_CMD_REQUEST_TIME_CONTROL_ENTRIES:
                *count = NUKI_CMD_TIME_CONTROL_ENTRY_COUNT;
                *entry = NUKI_CMD_TIME_CONTROL_ENTRY;
                return true;
        case NUKI_CMD_REQUEST_LOG_ENTRIES:
                *count = NUKI_CMD_LOG_ENTRY_COUNT;
                *entry = NUKI_CMD_LOG_ENTRY;
                return true;
        default:
                return false;
        }
}

static bool is_action(uint16_t command)
{
        return command == NUKI_CMD_LOCK_ACTION || command == NUKI_CMD_SIMPLE_LOCK_ACTION ||
               command == NUKI_CMD_KEYPAD_ACTION;
}

/* The count message of a list: how many entries to wait for. */
static void list_set_target(NukiSession *s, const NukiMsg *m)
{
        unsigned announced = 0, offset = 0;

        switch (m->command) {
        case NUKI_CMD_AUTHORIZATION_ENTRY_COUNT:
                announced = m->authorization_entry_count.count;
                offset = s->pending.request_authorization_entries.offset;
                break;
        case NUKI_CMD_KEYPAD_CODE_COUNT:
                announced = m->keypad_code_count.count;
                offset = s->pending.request_keypad_codes.offset;
                break;
        case NUKI_CMD_TIME_CONTROL_ENTRY_COUNT:
                /* no requested count: the announced one is it */
                s->target = m->time_control_entry_count.count;
                s->have_target = true;
                return;
        case NUKI_CMD_LOG_ENTRY_COUNT:
                announced = m->log_entry_count.count;
                break;
        default:
                return;
        }
        announced = announced > offset ? announced - offset : 0;
        s->target = MIN(s->target, announced);
        s->have_target = true;
}

static int classify_reply(NukiSession *s, const NukiMsg *m)
{
        uint16_t count_cmd, entry_cmd;

        if (m->command == NUKI_CMD_STATUS) {
                if (m->status.status == NUKI_STATUS_COMPLETE)
                        return NUKI_SESSION_DONE;
                if (m->status.status == NUKI_STATUS_ACCEPTED)
                        return NUKI_SESSION_PROGRESS;
                return NUKI_SESSION_UNSOLICITED;
        }
        if (list_commands(s->command, &count_cmd, &entry_cmd)) {
                if (m->command == count_cmd) {
                        list_set_target(s, m);
                        return s->have_target && s->target == 0 ? NUKI_SESSION_DONE : NUKI_SESSION_PROGRESS;
                }
                if (m->command == entry_cmd) {
                        s->received++;
                        if (s->have_target && s->received >= s->target) {
                                s->trailing_status = true;
                                return NUKI_SESSION_DONE;
                        }
                        return NUKI_SESSION_PROGRESS;
                }
        }
        if (final_reply(s) != 0 && m->command == final_reply(s))
                return NUKI_SESSION_DONE;
        if (m->command == NUKI_CMD_KEYTURNER_STATES && is_action(s->command))
                return NUKI_SESSION_PROGRESS;
        return NUKI_SESSION_UNSOLICITED;
}

int nuki_session_feed(NukiSession *s, const uint8_t *frame, size_t n, const uint8_t nonce[NUKI_NONCE_SIZE],
                      NukiMsg *ret_msg, uint8_t *out, size_t size, size_t *ret_len)
{
        NukiFrame f;
        int r;

        *ret_len = 0;
        r = nuki_frame_decode_encrypted(s->key, &s->auth_id, frame, n, &f);
        if (r < 0) {
                nuki_session_reset(s);
                return r;
        }
        r = nuki_msg_decode_frame(&f, s->pin_size, ret_msg);
        nuki_frame_wipe(&f);
        if (r == -ENOENT)
                return r;
        if (r < 0) {
                nuki_session_reset(s);
                return -EBADMSG;
        }

        if (ret_msg->command == NUKI_CMD_ERROR_REPORT) {
                bool ours = s->state != NUKI_SESSION_IDLE;
                s->lock_error = ret_msg->error_report.error;
                nuki_session_reset(s);
                return ours ? -EREMOTEIO : NUKI_SESSION_UNSOLICITED;
        }

        if (s->trailing_status && ret_msg->command == NUKI_CMD_STATUS &&
            ret_msg->status.status == NUKI_STATUS_COMPLETE &&
            (s->state == NUKI_SESSION_IDLE || s->state == NUKI_SESSION_WAIT_CHALLENGE ||
             (s->state == NUKI_SESSION_WAIT_REPLY && final_reply(s) != 0))) {
                s->trailing_status = false;
                return NUKI_SESSION_UNSOLICITED;
        }
        if (ret_msg->command != NUKI_CMD_KEYTURNER_STATES)
                s->trailing_status = false;

        switch (s->state) {
        case NUKI_SESSION_IDLE:
                return NUKI_SESSION_UNSOLICITED;
        case NUKI_SESSION_WAIT_CHALLENGE:
                if (ret_msg->command == NUKI_CMD_CHALLENGE) {
                        NukiMsg m = s->pending;

                        r = nuki_msg_set_nonce(&m, ret_msg->challenge.nonce);
                        if (r >= 0)
                                r = send_command(s, &m, nonce, out, size);
                        nuki_msg_wipe(&m);
                        if (r < 0) {
                                nuki_session_reset(s);
                                return r;
                        }
                        /* s->pending keeps the list parameters; it never held the nonce */
                        *ret_len = (size_t) r;
                        return NUKI_SESSION_PENDING;
                }
                if (ret_msg->command == NUKI_CMD_KEYTURNER_STATES)
                        return NUKI_SESSION_UNSOLICITED;
                nuki_session_reset(s);
                return -EPROTO;
        case NUKI_SESSION_WAIT_REPLY:
                r = classify_reply(s, ret_msg);
                if (r == NUKI_SESSION_DONE)
                        nuki_session_reset(s);
                return r;
        }
        return -EPROTO;
}

/* ---- lock side ---- */

void nuki_lock_session_init(NukiLockSession *ls, const uint8_t key[NUKI_KEY_SIZE], uint32_t auth_id,
                            uint32_t security_pin, bool ultra)
{
        memset(ls, 0, sizeof(*ls));
        memcpy(ls->key, key, NUKI_KEY_SIZE);
        ls->auth_id = auth_id;
        ls->security_pin = security_pin;
        ls->pin_size = ultra ? NUKI_PIN_SIZE_ULTRA : NUKI_PIN_SIZE_LEGACY;
}

void nuki_lock_session_wipe(NukiLockSession *ls)
{
        if (ls)
                sodium_memzero(ls, sizeof(*ls));
}

int nuki_lock_session_receive(NukiLockSession *ls, const uint8_t *frame, size_t n, NukiMsg *ret)
{
        uint8_t nk[NUKI_CHALLENGE_SIZE];
        NukiFrame f;
        uint32_t pin;
        int r;

        nuki_msg_init(ret, 0, NUKI_VARIANT_DEFAULT);
        r = nuki_frame_decode_encrypted(ls->key, &ls->auth_id, frame, n, &f);
        switch (r) {
        case 0:
                break;
        case -EKEYREJECTED:
        case -EPROTO:
                return NUKI_K_ERROR_NOT_AUTHORIZED;
        case -EBADMSG:
                return NUKI_ERROR_BAD_CRC;
        default:
                return r;
        }
        r = nuki_msg_decode_frame(&f, ls->pin_size, ret);
        if (r < 0) {
                nuki_msg_init(ret, f.command, NUKI_VARIANT_DEFAULT);
                nuki_frame_wipe(&f);
                return r == -ENOENT ? NUKI_ERROR_UNKNOWN : NUKI_ERROR_BAD_LENGTH;
        }
        nuki_frame_wipe(&f);

        if (nuki_command_needs_challenge(ret->command)) {
                bool ok;

                if (nuki_msg_get_nonce(ret, nk) < 0)
                        return NUKI_ERROR_UNKNOWN;
                ok = ls->challenge_valid && sodium_memcmp(nk, ls->challenge, NUKI_CHALLENGE_SIZE) == 0;
                /* single use, whatever the outcome */
                ls->challenge_valid = false;
                sodium_memzero(ls->challenge, sizeof(ls->challenge));
                sodium_memzero(nk, sizeof(nk));
                if (!ok)
                        return NUKI_K_ERROR_BAD_NONCE;
        }
        if (nuki_command_needs_pin(ret->command)) {
                if (nuki_msg_get_pin(ret, &pin) < 0 || pin != ls->security_pin)
                        return NUKI_K_ERROR_BAD_PIN;
        }
        return 0;
}

int nuki_lock_session_challenge(NukiLockSession *ls, const uint8_t nk[NUKI_CHALLENGE_SIZE],
                                const uint8_t nonce[NUKI_NONCE_SIZE], uint8_t *out, size_t size)
{
        uint8_t nbuf[NUKI_NONCE_SIZE];
        int r;

        if (nk)
                memcpy(ls->challenge, nk, NUKI_CHALLENGE_SIZE);
        else
                nuki_random(ls->challenge, NUKI_CHALLENGE_SIZE);
        ls->challenge_valid = true;
        r = nuki_frame_encode_encrypted(ls->key, pick_nonce(nonce, nbuf), ls->auth_id, NUKI_CMD_CHALLENGE,
                                        ls->challenge, NUKI_CHALLENGE_SIZE, out, size);
        if (r < 0)
                ls->challenge_valid = false;
        return r;
}

int nuki_lock_session_send(const NukiLockSession *ls, const NukiMsg *m, const uint8_t nonce[NUKI_NONCE_SIZE],
                           uint8_t *out, size_t size)
{
        uint8_t nbuf[NUKI_NONCE_SIZE];

        return nuki_msg_encode_encrypted(m, ls->pin_size, ls->key, pick_nonce(nonce, nbuf), ls->auth_id, out,
                                         size);
}

int nuki_lock_session_send_status(const NukiLockSession *ls, uint8_t status,
                                  const uint8_t nonce[NUKI_NONCE_SIZE], uint8_t *out, size_t size)
{
        NukiMsg m;

        nuki_msg_init(&m, NUKI_CMD_STATUS, NUKI_VARIANT_DEFAULT);
        m.status.status = status;
        return nuki_lock_session_send(ls, &m, nonce, out, size);
}

int nuki_lock_session_send_error(const NukiLockSession *ls, uint8_t code, uint16_t command,
                                 const uint8_t nonce[NUKI_NONCE_SIZE], uint8_t *out, size_t size)
{
        NukiMsg m;

        nuki_msg_init(&m, NUKI_CMD_ERROR_REPORT, NUKI_VARIANT_DEFAULT);
        m.error_report.error = code;
        m.error_report.command = command;
        return nuki_lock_session_send(ls, &m, nonce, out, size);
}

int nuki_lock_plain_status(uint8_t status, uint8_t *out, size_t size)
{
        return nuki_frame_encode_plain(NUKI_CMD_STATUS, &status, 1, out, size);
}

int nuki_lock_plain_error(uint8_t code, uint16_t command, uint8_t *out, size_t size)
{
        uint8_t p[3] = { code };

        nuki_put_u16(p + 1, command);
        return nuki_frame_encode_plain(NUKI_CMD_ERROR_REPORT, p, sizeof(p), out, size);
}
