/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Between the Nuki driver's core (nuki-driver.c: link, session, job queue) and the files
 * that add jobs to it without knowing its insides (nuki-driver-admin.c: authorizations
 * and settings).
 *
 * An admin job is a NukiAdminClass plus the class's own data. It waits in the driver's
 * queue like every other job (maintenance priority, FIFO) and runs only while connected:
 *
 *   step(d, data)           send the next command with nuki_driver_begin(); < 0 fails the
 *                           job (-ENOKEY: "no security PIN known")
 *   reply(d, data, m, last) a reply of the command in flight; last: the reply that ends the
 *                           exchange (Status COMPLETE, the requested data, a list's last
 *                           entry). Returns 0 when the job is done, 1 when it goes on (a
 *                           last reply: step() was called again for the next command), or
 *                           a negative errno (the job fails with *message if set)
 *   lock_error(code, r)     the errno for an Error Report of the lock (r: the driver's own
 *                           mapping); NULL keeps the driver's
 *   done(l, data, r, msg)   exactly once, with the outcome; frees data
 *
 * Nothing here is called from within the op that queued the job: done runs from the event
 * loop, as struct lock_driver_ops wants it.
 */

#include "lockhub/lock.h"
#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-driver.h"

typedef struct NukiDriver NukiDriver;

typedef struct NukiAdminClass {
        const char *name; /* in debug logs: "list-auths", ... */
        int (*step)(NukiDriver *d, void *data);
        int (*reply)(NukiDriver *d, void *data, const NukiMsg *m, bool last, const char **message);
        int (*lock_error)(int code, int r);
        void (*done)(Lock *l, void *data, int r, const char *message);
        bool background; /* the hub's own job, not a person's request: never sent while the
                          * lock rejects the stored PIN (see below) */
        bool trial_pin;  /* sends a PIN being tried, not the stored one: a rejection does
                          * not set the latch */
} NukiAdminClass;

/* Queues an admin job on the lock's driver. On error (-ENODEV no driver, -ENOMEM) nothing
 * was queued and done will not be called: data stays the caller's. */
int nuki_driver_queue_admin(Lock *l, const NukiAdminClass *c, void *data);

/* Sends a command (preceded by the challenge it needs) in the running job's session. */
int nuki_driver_begin(NukiDriver *d, const NukiMsg *m);

Lock *nuki_driver_lock(const NukiDriver *d);
const NukiCredentials *nuki_driver_credentials(const NukiDriver *d);
const NukiDriverContext *nuki_driver_context(const NukiDriver *d);
/* The config update count of the config last read, -1 unknown. */
int64_t nuki_driver_config_count(const NukiDriver *d);
/* The driver of a lock, NULL when it has none (yet). */
NukiDriver *nuki_driver_of(Lock *l);

/* Time conversions of the driver (UTC). nuki_time_to_unix_sec: 0 for an unset time. */
int64_t nuki_time_to_unix_sec(const NukiTime *t);

/* lock_driver_ops members implemented in nuki-driver-admin.c */
int nuki_op_list_authorizations(Lock *l, lock_auths_listed_t done, void *userdata);
int nuki_op_set_authorization_enabled(Lock *l, uint32_t id, bool enabled, lock_command_done_t done,
                                      void *userdata);
int nuki_op_remove_authorization(Lock *l, uint32_t id, lock_command_done_t done, void *userdata);
int nuki_op_apply_settings(Lock *l, const char *settings_json, lock_command_done_t done, void *userdata);
int nuki_op_set_security_pin(Lock *l, uint32_t pin, lock_command_done_t done, void *userdata);

/*
 * The PIN latch. A lock that rejected the stored security PIN (K_ERROR_BAD_PIN or
 * K_ERROR_TOO_MANY_PIN_ATTEMPTS) is latched: the hub's own PIN commands (log and code syncs,
 * time sync, settings reads) are not sent until a person sets the PIN again or one of their
 * own requests with the PIN succeeds, since every further attempt counts towards the lock's
 * lockout, which locks out the owner's app too. The latch is kept in the store's meta
 * (HEALTH_META_PIN_REJECTED, read by the diagnosis) and survives a restart.
 */
#define NUKI_PIN_LATCHED_MESSAGE \
        "the lock rejected the stored security PIN; set it with 'lockhubctl pin LOCK'"

/* Whether the lock's latch is set (in the store). */
bool nuki_pin_latch_load(const NukiDriverContext *ctx, const Lock *l);
/* Sets it, with what was rejected (request: the job, error: the lock's error name). */
void nuki_pin_latch_set(const NukiDriverContext *ctx, const Lock *l, const char *request, const char *error);
void nuki_pin_latch_clear(const NukiDriverContext *ctx, const Lock *l);
/* Whether the driver's latch is set now. */
bool nuki_driver_pin_rejected(const NukiDriver *d);
/* The PIN the driver's commands carry from now on (credentials and session). */
void nuki_driver_use_pin(NukiDriver *d, bool has_pin, uint32_t pin);

/* After a config read: read the advanced config and (with the PIN) the time controls too,
 * and keep them as settings snapshots ("advanced-config", "time-controls") for backups. */
void nuki_admin_read_settings(NukiDriver *d);
