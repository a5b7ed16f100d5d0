/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The D-Bus API of lockhubd, name org.lockhub on the system bus:
 *
 *   /org/lockhub                 org.lockhub.Manager1
 *       ListLocks() → a(sos)     name, object path, address
 *       Pair(s address, s name, s pin) → o
 *                                pair the lock at address ("" = the only one seen in
 *                                pairing mode) as a Bridge; pin "" = none. Replies when
 *                                the lock is paired and its configuration read. Errors:
 *                                NotInPairingMode (none seen, or the lock refused),
 *                                AlreadyPaired, InvalidArgs (name invalid or taken, PIN,
 *                                several locks in pairing mode), LockFull, Unreachable,
 *                                Timeout, NotAuthorized (wrong PIN)
 *       Unpair(s name) → s       removes the lock, its credentials and rows, and its
 *                                authorization on the lock when it can; the string says
 *                                what happened on the lock
 *       Rekey(ay new_key) → (s key_id, u key_version, s key_source, s message)
 *                                re-seal every secret with a new hub key (empty: lockhubd
 *                                makes one, only with a key file); see manager-secret.h
 *       Diagnose(s lock, b json) → s
 *                                findings of one lock ("" = all) as text or JSON, ordered
 *                                by likelihood, with evidence, next step and what the hub
 *                                tried (lockhub/manager-health.h)
 *       SupportBundle() → s      JSON for support, secrets redacted (privileged)
 *       Version                  property s
 *       users, keypad codes, backup and restore: see src/api/api-codes.c
 *   /org/lockhub/lock/<name>     org.lockhub.Lock1   (<name> escaped with sd_bus_path_encode)
 *       Lock(), Unlock(), Unlatch(), LockNGo(), Refresh()   reply when the lock has finished
 *                                (LockNGo: unlock now, lock again after the lock's timer)
 *       SetSecurityPin(s pin)    the lock's PIN changed in its app: stored once the lock
 *                                accepted it (NotAuthorized: it rejected it, nothing stored)
 *       Events(t since_usec, u limit) → a(ttssss)
 *                                the lock's events with ts_usec >= since_usec, oldest first,
 *                                the newest `limit` (0: all): (id, ts_usec, kind, source,
 *                                actor or "", detail JSON or "")
 *       properties: the lock model (see lockhub/lock.h), PropertiesChanged on every change
 *
 * Errors are org.lockhub.Error.* (see api_error_name()) with a human message. Two of them
 * do not mean "not done": OutcomeUnknown (the link was lost after the lock acknowledged an
 * action and its log cannot tell whether it ran: not sent again, check the lock) and
 * NotStored (a change to users or codes is made but kept in memory: a full disk).
 * Every method that changes something checks the caller's credentials: root, the
 * daemon's own user, or a member of the "lockhub" group; the bus policy says the
 * same, so a misconfigured policy alone does not open the door.
 */

#include <systemd/sd-bus.h>

#include "lockhub/lock.h"

typedef struct Manager Manager;

#define API_BUS_NAME         "org.lockhub"
#define API_MANAGER_PATH     "/org/lockhub"
#define API_LOCK_PATH_PREFIX "/org/lockhub/lock"

/* Registers the objects on m->bus and requests the name (asynchronously). */
int api_start(Manager *m);
/* Call when a lock is added, so its object is announced and its changes followed. */
int api_lock_added(Manager *m, Lock *l);

/* org.lockhub.Error.* for a -errno from a lock command (see lock_command_done_t). */
const char *api_error_name(int r);
/* Before every reply that follows a write: commits the open write batch (lockhub/store.h),
 * so that what the caller is told is on disk, and tells the locks' listeners of changes not
 * told yet (lock_notify_flush()), so that PropertiesChanged comes before the reply. < 0 when the change is
 * not stored yet (a full disk: it is kept in memory and written once writes work again, lockhubd(8)). */
int api_flush(Manager *m);
/* api_flush() for a method whose change is in the database only: 0 when stored, else
 * org.lockhub.Error.NotStored set on error (the change is kept) and its negative errno. */
int api_not_stored(Manager *m, sd_bus_error *error);
/* The check of every method that changes something: root, our user, group "lockhub". */
int api_check_caller(sd_bus_message *m, sd_bus_error *error);
/* Registers the user, code, backup and restore methods of Manager1 (api-codes.c). */
int api_codes_start(Manager *m);
/* The object finder of every fallback vtable under API_LOCK_PATH_PREFIX (userdata: the
 * Manager): the Lock of that path, or 0 when there is none. */
int api_find_lock(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                  sd_bus_error *error);
/* The D-Bus object path of a lock; caller frees. */
int api_lock_path(const char *name, char **ret);
