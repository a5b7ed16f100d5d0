/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The Nuki lock driver: the generic lock model (lockhub/lock.h) on top of the pure
 * protocol library (nuki-*.h) and the BlueZ client (lockhub/bluez.h).
 *
 * A driver instance belongs to one Lock (l->driver_data, freed through ops->free). It
 * owns one BluezLink to the lock's address and runs jobs on it, one at a time, in
 * priority order (user commands, then refreshes, then maintenance). A job is a short
 * sequence of encrypted commands on USDIO; nuki-session.h does the challenge-then-
 * command sequencing and classifies the replies.
 *
 *   action        Lock Action (lock, unlock, unlatch, lock'n'go): ACCEPTED, Keyturner
 *                 States..., COMPLETE or an Error Report; the outcome goes to the caller
 *   refresh       Request Data(Keyturner States): state, battery, door; a Bridge reading
 *                 it clears the advert's state-changed bit
 *   config        Request Config and Battery Report: model, firmware, device type
 *   log-sync      Request Log Entries after the last imported index (needs the PIN)
 *   time-sync     Update Time when the lock's clock is off by more than TimeSyncDriftSec
 *   remove-auth   Remove Authorization Entry of our own authorization (unpairing)
 *   keypad codes  Request Keypad Codes (every page), Add, Update and Remove Keypad Code:
 *                 the list_codes/add_code/update_code/remove_code ops (need the PIN)
 *
 * The driver never polls. It connects when a user asks for something, when an advert
 * carries the state-changed bit, or when the lock sends the unencrypted Status 0xF1 on
 * the Keyturner GDIO while connected; every other job rides on such a connection. A
 * quiet lock therefore costs no connection at all.
 *
 * Secrets (shared key, PIN) live only in the driver's memory and are wiped on free.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "lockhub/bluez.h"
#include "lockhub/conf.h"
#include "lockhub/lock.h"
#include "lockhub/nuki-advert.h"
#include "lockhub/nuki-frame.h"
#include "lockhub/nuki-pair.h"
#include "lockhub/store.h"

#define NUKI_UUID_PAIRING_GDIO       "a92ee101-5501-11e4-916c-0800200c9a66"
#define NUKI_UUID_PAIRING_GDIO_ULTRA "a92ee301-5501-11e4-916c-0800200c9a66"
#define NUKI_UUID_KEYTURNER_GDIO     "a92ee201-5501-11e4-916c-0800200c9a66"
#define NUKI_UUID_KEYTURNER_USDIO    "a92ee202-5501-11e4-916c-0800200c9a66"

/* What a pairing leaves behind, as the store keeps it. */
typedef struct NukiCredentials {
        uint32_t auth_id;
        uint32_t app_id;
        uint8_t shared_key[NUKI_KEY_SIZE];
        bool ultra; /* 32-bit security PIN */
        bool has_pin;
        uint32_t security_pin;
} NukiCredentials;

/* Everything a driver borrows from its owner; all of it must outlive the driver. */
typedef struct NukiDriverContext {
        sd_event *event;
        BluezClient *client;
        Store *store;
        Conf *const *conf; /* the owner's current configuration (replaced on reload) */
} NukiDriverContext;

/* Sets l->ops and l->driver_data. The credentials are copied. */
int nuki_driver_attach(Lock *l, const NukiDriverContext *ctx, const NukiCredentials *cred);

/* An advert of this lock's address (RSSI, state-changed bit). */
void nuki_driver_advert(Lock *l, const BluezAdvert *a, const NukiAdvert *na);

/* After pairing: read config, firmware, battery and states. done is called once. */
int nuki_driver_setup(Lock *l, lock_command_done_t done, void *userdata);

/* Remove our authorization from the lock (needs the security PIN: -ENOKEY without it). */
int nuki_driver_remove_authorization(Lock *l, lock_command_done_t done, void *userdata);

/* Serialise/parse the credentials as the store keeps them (key_version 0: not sealed). */
int nuki_credentials_from_store(const struct store_lock *sl, NukiCredentials *ret);
void nuki_credentials_wipe(NukiCredentials *c);

/* ---- pairing ---------------------------------------------------------------------- */

typedef struct NukiPairOp NukiPairOp;

/* r = 0 and the pairing, or a negative errno and a human message:
 *   -EPERM not in pairing mode, -EACCES authenticator rejected or wrong PIN, -ENOSPC the
 *   lock is full, -EHOSTUNREACH not reachable, -ETIMEDOUT no answer, -EOPNOTSUPP not a
 *   Nuki lock, -EINVAL a PIN is needed (Ultra), -EPROTO/-EBADMSG protocol trouble. */
typedef void (*nuki_pair_done_t)(int r, const char *message, const NukiPairing *p, void *userdata);

/* Pair as a Bridge with the lock at address. pin: the security PIN (Ultra needs it),
 * has_pin false: none. done is called exactly once from the event loop, unless the op
 * is freed first. */
int nuki_pair_op_start(const NukiDriverContext *ctx, const char *address, const char *name, bool has_pin,
                       uint32_t pin, nuki_pair_done_t done, void *userdata, NukiPairOp **ret);
NukiPairOp *nuki_pair_op_free(NukiPairOp *op);
