/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lock side of the Nuki BLE protocol, on top of src/nuki/. (Being wired up.)
 */

#include <stdlib.h>

#include "lockhub/log.h"
#include "sim-lock.h"

struct SimLockSession {
        SimLock *lock;
};

SimLockSession *sim_lock_session_new(SimLock *l)
{
        SimLockSession *s = calloc(1, sizeof(*s));
        if (s)
                s->lock = l;
        return s;
}

SimLockSession *sim_lock_session_free(SimLockSession *s)
{
        free(s);
        return NULL;
}

void sim_lock_proto_write(SimLock *l, SimChr chr, const uint8_t *data, size_t len)
{
        log_debug("%s: %zu bytes on characteristic %d", l->name, len, (int) chr);
}

void sim_lock_proto_action_done(SimLock *l, uint8_t completion, uint8_t error)
{
}

void sim_lock_proto_state_push(SimLock *l)
{
}
