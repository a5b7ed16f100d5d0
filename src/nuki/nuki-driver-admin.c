/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Administrative jobs of the Nuki driver, on the core's queue (nuki-driver-internal.h):
 *
 *   list-auths    Request Authorization Entries, page by page (count, then one entry
 *                 each) until the announced count is read; lockhub's own is marked
 *   enable-auth   the same listing until the entry is found, then Update Authorization
 *                 Entry with every field as read and only "enabled" changed
 *   remove-auth   Remove Authorization Entry of another authorization
 *
 * All of them need the security PIN (-ENOKEY without it) and refuse lockhub's own
 * authorization (-EPERM: unpairing removes that one). An id the lock does not know is
 * -ENOENT (Error Report INVALID_AUTH_ID, or not in the list).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "nuki-driver-internal.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define AUTH_PAGE    50U
#define AUTHS_MAX    1024U

/* ---- authorizations ---------------------------------------------------------------------- */

typedef enum AuthJobKind {
        AUTH_JOB_LIST,
        AUTH_JOB_ENABLE,
        AUTH_JOB_REMOVE,
} AuthJobKind;

typedef struct AuthJob {
        AuthJobKind kind;
        lock_auths_listed_t listed;
        lock_command_done_t done;
        void *userdata;
        uint32_t id;
        bool enabled;
        /* listing */
        LockAuthorization *auths;
        size_t n_auths;
        size_t page_mark; /* n_auths when this page was asked for */
        unsigned received;
        unsigned announced;
        bool have_announced;
        /* enable: the entry as the lock holds it, once found */
        bool found;
        bool updating;
        NukiMsg entry;
} AuthJob;

static void auth_job_free(AuthJob *a)
{
        if (!a)
                return;
        free(a->auths);
        nuki_msg_wipe(&a->entry);
        free(a);
}

static const char *auth_type_to_string(uint8_t t)
{
        switch (t) {
        case NUKI_ID_TYPE_APP:
                return "app";
        case NUKI_ID_TYPE_BRIDGE:
                return "bridge";
        case NUKI_ID_TYPE_FOB:
                return "fob";
        case NUKI_ID_TYPE_KEYPAD:
        case NUKI_ID_TYPE_KEYPAD_2:
                return "keypad";
        default:
                return "unknown";
        }
}

static uint64_t usec_of(const NukiTime *t)
{
        int64_t s = nuki_time_to_unix_sec(t);
        return s > 0 ? (uint64_t) s * USEC_PER_SEC : 0;
}

static int auth_request_page(NukiDriver *d, AuthJob *a)
{
        NukiMsg m;
        int r;

        a->received = 0;
        a->page_mark = a->n_auths;
        nuki_msg_init(&m, NUKI_CMD_REQUEST_AUTHORIZATION_ENTRIES, NUKI_VARIANT_DEFAULT);
        m.request_authorization_entries.offset = (uint16_t) a->n_auths;
        m.request_authorization_entries.count = AUTH_PAGE;
        m.n_optional = 0; /* no id-type filter: older firmware does not know it */
        r = nuki_driver_begin(d, &m);
        nuki_msg_wipe(&m);
        return r;
}

static int auth_send_update(NukiDriver *d, AuthJob *a)
{
        const __typeof__(a->entry.authorization_entry) *e = &a->entry.authorization_entry;
        NukiMsg m;
        int r;

        nuki_msg_init(&m, NUKI_CMD_UPDATE_AUTHORIZATION_ENTRY, NUKI_VARIANT_DEFAULT);
        m.update_authorization_entry.auth_id = e->auth_id;
        memcpy(m.update_authorization_entry.name, e->name, sizeof m.update_authorization_entry.name);
        m.update_authorization_entry.enabled = a->enabled;
        m.update_authorization_entry.remote_allowed = e->remote_allowed;
        m.update_authorization_entry.time_limited = e->time_limited;
        m.update_authorization_entry.allowed_from = e->allowed_from;
        m.update_authorization_entry.allowed_until = e->allowed_until;
        m.update_authorization_entry.weekdays = e->weekdays;
        m.update_authorization_entry.from_time = e->from_time;
        m.update_authorization_entry.until_time = e->until_time;
        a->updating = true;
        r = nuki_driver_begin(d, &m);
        nuki_msg_wipe(&m);
        return r;
}

static int auth_step(NukiDriver *d, void *data)
{
        AuthJob *a = data;
        NukiMsg m;
        int r;

        if (!nuki_driver_credentials(d)->has_pin)
                return -ENOKEY;
        switch (a->kind) {
        case AUTH_JOB_LIST:
        case AUTH_JOB_ENABLE:
                if (a->found)
                        return auth_send_update(d, a);
                return auth_request_page(d, a);
        case AUTH_JOB_REMOVE:
                nuki_msg_init(&m, NUKI_CMD_REMOVE_AUTHORIZATION_ENTRY, NUKI_VARIANT_DEFAULT);
                m.remove_authorization_entry.auth_id = a->id;
                r = nuki_driver_begin(d, &m);
                nuki_msg_wipe(&m);
                return r;
        }
        return -EINVAL;
}

/* One entry of the listing. */
static void auth_take(NukiDriver *d, AuthJob *a, const NukiMsg *m)
{
        const __typeof__(m->authorization_entry) *e = &m->authorization_entry;
        LockAuthorization *n;

        a->received++;
        if (a->kind == AUTH_JOB_ENABLE) {
                if (e->auth_id == a->id && !a->found) {
                        a->entry = *m;
                        a->found = true;
                }
                a->n_auths++; /* counted for paging only */
                return;
        }
        if (a->n_auths >= AUTHS_MAX)
                return;
        n = reallocarray(a->auths, a->n_auths + 1, sizeof *n);
        if (!n)
                return;
        a->auths = n;
        n = &a->auths[a->n_auths++];
        *n = (LockAuthorization){
                .id = e->auth_id,
                .type = auth_type_to_string(e->id_type),
                .enabled = e->enabled,
                .remote_allowed = e->remote_allowed,
                .own = e->auth_id == nuki_driver_credentials(d)->auth_id,
                .created_usec = usec_of(&e->created),
                .last_active_usec = usec_of(&e->last_active),
                .use_count = e->lock_count,
        };
        snprintf(n->name, sizeof n->name, "%s", e->name);
}

static int auth_reply(NukiDriver *d, void *data, const NukiMsg *m, bool last, const char **message)
{
        AuthJob *a = data;

        switch (m->command) {
        case NUKI_CMD_AUTHORIZATION_ENTRY_COUNT:
                a->announced = m->authorization_entry_count.count;
                a->have_announced = true;
                break;
        case NUKI_CMD_AUTHORIZATION_ENTRY:
                auth_take(d, a, m);
                break;
        default:
                break;
        }
        if (!last)
                return 1;

        if (a->kind == AUTH_JOB_REMOVE || a->updating)
                return 0;
        if (a->kind == AUTH_JOB_ENABLE && a->found) {
                int r = auth_send_update(d, a);
                if (r < 0) {
                        *message = "cannot send the command";
                        return r;
                }
                return 1;
        }
        /* a full page that brought something new, and more announced: the next one */
        if (m->command == NUKI_CMD_AUTHORIZATION_ENTRY && a->received >= AUTH_PAGE &&
            a->n_auths > a->page_mark && (!a->have_announced || a->n_auths < a->announced) &&
            a->n_auths < AUTHS_MAX) {
                int r = auth_request_page(d, a);
                if (r < 0) {
                        *message = "cannot send the command";
                        return r;
                }
                return 1;
        }
        if (a->kind == AUTH_JOB_ENABLE) {
                *message = "the lock has no such authorization";
                return -ENOENT;
        }
        return 0;
}

static int auth_lock_error(int code, int r)
{
        return code == NUKI_K_ERROR_INVALID_AUTH_ID ? -ENOENT : r;
}

static void auth_done(Lock *l, void *data, int r, const char *message)
{
        static const LockAuthorization none = {};
        AuthJob *a = data;

        if (a->kind == AUTH_JOB_LIST) {
                if (a->listed)
                        a->listed(l, r, message, r < 0 || !a->auths ? &none : a->auths,
                                  r < 0 ? 0 : a->n_auths, a->userdata);
        } else if (a->done)
                a->done(l, r, message, a->userdata);
        auth_job_free(a);
}

static const NukiAdminClass auth_class = {
        .name = "authorizations",
        .step = auth_step,
        .reply = auth_reply,
        .lock_error = auth_lock_error,
        .done = auth_done,
};

static int auth_queue(Lock *l, AuthJob *a)
{
        NukiDriver *d = nuki_driver_of(l);
        int r;

        if (!d)
                r = -ENODEV;
        else if (!nuki_driver_credentials(d)->has_pin)
                r = -ENOKEY;
        else if (a->kind != AUTH_JOB_LIST && a->id == nuki_driver_credentials(d)->auth_id)
                r = -EPERM;
        else
                r = nuki_driver_queue_admin(l, &auth_class, a);
        if (r < 0)
                auth_job_free(a);
        return r;
}

int nuki_op_list_authorizations(Lock *l, lock_auths_listed_t done, void *userdata)
{
        AuthJob *a = calloc(1, sizeof *a);

        if (!a)
                return -ENOMEM;
        a->kind = AUTH_JOB_LIST;
        a->listed = done;
        a->userdata = userdata;
        return auth_queue(l, a);
}

int nuki_op_set_authorization_enabled(Lock *l, uint32_t id, bool enabled, lock_command_done_t done,
                                      void *userdata)
{
        AuthJob *a = calloc(1, sizeof *a);

        if (!a)
                return -ENOMEM;
        a->kind = AUTH_JOB_ENABLE;
        a->id = id;
        a->enabled = enabled;
        a->done = done;
        a->userdata = userdata;
        return auth_queue(l, a);
}

int nuki_op_remove_authorization(Lock *l, uint32_t id, lock_command_done_t done, void *userdata)
{
        AuthJob *a = calloc(1, sizeof *a);

        if (!a)
                return -ENOMEM;
        a->kind = AUTH_JOB_REMOVE;
        a->id = id;
        a->done = done;
        a->userdata = userdata;
        return auth_queue(l, a);
}
