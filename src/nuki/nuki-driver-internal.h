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

/* After a config read: read the advanced config and (with the PIN) the time controls too,
 * and keep them as settings snapshots ("advanced-config", "time-controls") for backups. */
void nuki_admin_read_settings(NukiDriver *d);
