/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The Manager's Bluetooth side: it owns the BlueZ client, keeps discovery running,
 * routes adverts to the drivers of paired locks by address, remembers which locks were
 * seen in pairing mode, creates a driver for every lock the Manager loads or pairs, and
 * runs pairing and unpairing.
 *
 * Ownership: the ManagerBluez belongs to the Manager (m->bluez). Pairing and
 * unpairing requests hold a callback that is called exactly once, from the event loop
 * (never from inside manager_pair()/manager_unpair()), unless the Manager is freed
 * first (then it is called with -ECANCELED).
 */

#include <stdbool.h>

#include "lockhub/lock.h"
#include "lockhub/store.h"

typedef struct Manager Manager;
typedef struct ManagerBluez ManagerBluez;

/* Creates the client and starts discovery. */
int manager_bluez_start(Manager *m);
void manager_bluez_free(Manager *m);

/* A lock was loaded or paired: restore its last known state, attach its driver. */
int manager_bluez_lock_added(Manager *m, Lock *l, const struct store_lock *sl);

/* Pairing. done: r = 0 and the new lock, or a negative errno and a message:
 *   -EINVAL    name invalid or taken, PIN malformed, Ultra without PIN
 *   -EEXIST    a lock with that address is paired already
 *   -ENOENT    no lock in pairing mode was seen (address "")
 *   -ENOTUNIQ  several locks are in pairing mode (address "")
 *   -EPERM     the lock is not in pairing mode
 *   -EBUSY     a pairing with that lock is running
 *   and the errors of nuki_pair_op_start()'s callback.
 * Errors found before anything starts are returned at once, with a message in
 * *ret_message (the caller frees it), and done is not called. */
typedef void (*manager_pair_done_t)(Manager *m, int r, const char *message, Lock *l, void *userdata);
int manager_pair(Manager *m, const char *address, const char *name, const char *pin,
                 manager_pair_done_t done, void *userdata, char **ret_message);

/* Unpairing: removes the authorization on the lock when it can (best effort), then the
 * lock, its credentials and its rows. message says what happened on the lock. */
typedef void (*manager_unpair_done_t)(Manager *m, int r, const char *message, void *userdata);
int manager_unpair(Manager *m, const char *name, manager_unpair_done_t done, void *userdata);
