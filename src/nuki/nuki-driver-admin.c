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
 *
 * Settings:
 *
 *   apply-settings  Request Config then Set Config, Request Advanced Config then Set
 *                   Advanced Config (what the lock reports, with every field of the settings
 *                   that it has: a backup of another model sets what this one knows), then
 *                   the time controls: Request Time Control Entries, Remove each, Add each of
 *                   the settings (and Update the disabled ones). Fields are matched by the
 *                   names of the command table, so a snapshot of Config fills Set Config;
 *                   the settings are checked before the job is queued (-EINVAL).
 *   read-settings   after each config read: Request Advanced Config and (with the PIN)
 *                   Request Time Control Entries, stored as the snapshots "advanced-config"
 *                   and "time-controls" that backups carry. While the lock rejects
 *                   the stored PIN (the latch below) only the advanced config is read.
 *
 *   set-pin         Verify Security PIN with a new PIN (the lock's, changed in the vendor's
 *                   app); only once the lock accepts it is it stored and used. A person's
 *                   request: tried even while the latch is set, and its rejection does not
 *                   set the latch (the stored PIN was not tried).
 *
 * The PIN latch (nuki-driver-internal.h): stored as meta HEALTH_META_PIN_REJECTED, a JSON
 * object {"since_usec", "request", "error"} while set, "" once cleared.
 */

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/health.h"
#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "lockhub/message-id.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-json.h"
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

/* ---- settings ------------------------------------------------------------------------------ */

static void json_putp(json_object **o)
{
        json_object_put(*o);
}

#define TIME_CONTROLS_MAX 32U

/* Fill the settable fields of m (after nuki_msg_init) from o, by the field names of the
 * command's table: the names the lock's own messages have in JSON (nuki-json.h), so a
 * snapshot of Config fills Set Config. Head fields must be there (partial: checks only
 * what is there; a timezone id that the lock does not report is "none"); optional ones
 * are taken in order while present. */
static int settings_fill(json_object *o, NukiMsg *m, bool partial, const char *what, char *error,
                         size_t size)
{
        const NukiCommand *c = nuki_command_find(m->command, NUKI_VARIANT_DEFAULT);
        unsigned n_optional = 0;
        bool optional_gap = false;

        if (!c || !json_object_is_type(o, json_type_object)) {
                snprintf(error, size, "%s: must be an object", what);
                return -EINVAL;
        }
        for (size_t i = 0; i < c->n_fields; i++) {
                const NukiField *f = &c->fields[i];
                uint8_t *v = (uint8_t *) m + f->offset;
                json_object *j;
                int64_t x = 0, lo = 0, hi = 0;

                if (f->section == NUKI_SECTION_TAIL)
                        continue;
                if (!json_object_object_get_ex(o, f->name, &j) || json_object_is_type(j, json_type_null)) {
                        if (f->section == NUKI_SECTION_OPTIONAL) {
                                optional_gap = true;
                                continue;
                        }
                        if (partial)
                                continue;
                        if (m->command == NUKI_CMD_SET_CONFIG && streq(f->name, "timezone_id")) {
                                m->set_config.timezone_id = 0xFFFF; /* SL 1.0/2.0 have none */
                                continue;
                        }
                        snprintf(error, size, "%s.%s: missing", what, f->name);
                        return -EINVAL;
                }
                if (f->section == NUKI_SECTION_OPTIONAL) {
                        if (optional_gap)
                                continue;
                        n_optional++;
                }

                switch (f->type) {
                case NUKI_FIELD_NAME: {
                        const char *s = json_object_get_string(j);
                        if (!json_object_is_type(j, json_type_string) || strlen(s) > f->size) {
                                snprintf(error, size, "%s.%s: must be a string of at most %u bytes", what,
                                         f->name, f->size);
                                return -EINVAL;
                        }
                        memset(v, 0, (size_t) f->size + 1);
                        memcpy(v, s, strlen(s));
                        continue;
                }
                case NUKI_FIELD_TIME_OF_DAY: {
                        unsigned h, mi;
                        char tail;
                        if (!json_object_is_type(j, json_type_string) ||
                            sscanf(json_object_get_string(j), "%u:%u%c", &h, &mi, &tail) != 2 || h > 23 ||
                            mi > 59) {
                                snprintf(error, size, "%s.%s: must be \"HH:MM\"", what, f->name);
                                return -EINVAL;
                        }
                        *(NukiTimeOfDay *) (void *) v = (NukiTimeOfDay){ (uint8_t) h, (uint8_t) mi };
                        continue;
                }
                case NUKI_FIELD_F32: {
                        float fl;
                        if (!json_object_is_type(j, json_type_double) &&
                            !json_object_is_type(j, json_type_int)) {
                                snprintf(error, size, "%s.%s: must be a number", what, f->name);
                                return -EINVAL;
                        }
                        fl = (float) json_object_get_double(j);
                        memcpy(v, &fl, sizeof fl);
                        continue;
                }
                case NUKI_FIELD_BOOL: {
                        bool b;
                        if (json_object_is_type(j, json_type_boolean))
                                b = json_object_get_boolean(j);
                        else if (json_object_is_type(j, json_type_int) && json_object_get_int64(j) >= 0 &&
                                 json_object_get_int64(j) <= 1)
                                b = json_object_get_int64(j) != 0;
                        else {
                                snprintf(error, size, "%s.%s: must be true or false", what, f->name);
                                return -EINVAL;
                        }
                        memcpy(v, &b, sizeof b);
                        continue;
                }
                case NUKI_FIELD_U8:
                        hi = UINT8_MAX;
                        break;
                case NUKI_FIELD_S8:
                        lo = INT8_MIN;
                        hi = INT8_MAX;
                        break;
                case NUKI_FIELD_U16:
                        hi = UINT16_MAX;
                        break;
                case NUKI_FIELD_S16:
                        lo = INT16_MIN;
                        hi = INT16_MAX;
                        break;
                case NUKI_FIELD_U32:
                        hi = UINT32_MAX;
                        break;
                case NUKI_FIELD_TIME:
                case NUKI_FIELD_BYTES:
                case NUKI_FIELD_PIN:
                case NUKI_FIELD_BLOB:
                        snprintf(error, size, "%s.%s: cannot be written", what, f->name);
                        return -EINVAL;
                }

                /* integers: a number, an enumeration name or "0x.." */
                if (json_object_is_type(j, json_type_int))
                        x = json_object_get_int64(j);
                else if (json_object_is_type(j, json_type_string)) {
                        const char *s = json_object_get_string(j);
                        char *end = NULL;
                        int e = f->format == NUKI_FORMAT_ENUM ? nuki_enum_from_string(f->enum_kind, s)
                                                              : -EINVAL;

                        if (e >= 0)
                                x = e;
                        else if (strncmp(s, "0x", 2) == 0 && s[2]) {
                                errno = 0;
                                x = (int64_t) strtoull(s + 2, &end, 16);
                                if (errno != 0 || *end)
                                        x = -1, lo = 0; /* refused below */
                        } else
                                x = lo - 1;
                } else
                        x = lo - 1;
                if (x < lo || x > hi) {
                        snprintf(error, size, "%s.%s: not a valid value", what, f->name);
                        return -EINVAL;
                }
                switch (f->type) {
                case NUKI_FIELD_U8:
                case NUKI_FIELD_S8:
                        *v = (uint8_t) x;
                        break;
                case NUKI_FIELD_U16:
                case NUKI_FIELD_S16: {
                        uint16_t u = (uint16_t) x;
                        memcpy(v, &u, sizeof u);
                        break;
                }
                case NUKI_FIELD_U32: {
                        uint32_t u = (uint32_t) x;
                        memcpy(v, &u, sizeof u);
                        break;
                }
                case NUKI_FIELD_NAME:
                case NUKI_FIELD_TIME_OF_DAY:
                case NUKI_FIELD_F32:
                case NUKI_FIELD_BOOL:
                case NUKI_FIELD_TIME:
                case NUKI_FIELD_BYTES:
                case NUKI_FIELD_PIN:
                case NUKI_FIELD_BLOB:
                        break;
                }
        }
        m->n_optional = (uint8_t) n_optional;
        return 0;
}

/* The lock's own settings (a Config or Advanced Config message) with the values of over
 * for every field the set command writes and the lock has: a backup of another model
 * sets what this one knows. */
static json_object *settings_merge(const NukiMsg *reported, json_object *over, uint16_t set_command)
{
        const NukiCommand *c = nuki_command_find(set_command, NUKI_VARIANT_DEFAULT);
        json_object *base = nuki_json_fields(reported), *v;

        if (!base || !c)
                return base;
        for (size_t i = 0; i < c->n_fields; i++) {
                const NukiField *f = &c->fields[i];

                if (f->section == NUKI_SECTION_TAIL || !json_object_object_get_ex(over, f->name, &v))
                        continue;
                if (f->section == NUKI_SECTION_HEAD || json_object_object_get_ex(base, f->name, NULL))
                        json_object_object_add(base, f->name, json_object_get(v));
        }
        return base;
}

typedef enum ApplyPhase {
        APPLY_CONFIG_READ,
        APPLY_CONFIG,
        APPLY_ADVANCED_READ,
        APPLY_ADVANCED,
        APPLY_TC_LIST,
        APPLY_TC_REMOVE,
        APPLY_TC_ADD,
        APPLY_TC_DISABLE,
        APPLY_DONE,
} ApplyPhase;

typedef struct ApplyJob {
        lock_command_done_t done;
        void *userdata;
        ApplyPhase phase;
        bool have_config, have_advanced, have_tc;
        json_object *config_json, *advanced_json; /* from the settings */
        NukiMsg config, advanced;                 /* what is written: the lock's, with those */
        char error[160];
        NukiMsg *tc_add; /* Add Time Control Entry, one per entry of the settings */
        bool *tc_enabled;
        size_t n_tc, tc_index;
        uint8_t old_ids[TIME_CONTROLS_MAX]; /* what the lock held */
        size_t n_old, old_index;
        uint8_t new_id;
} ApplyJob;

static void apply_job_free(ApplyJob *a)
{
        if (!a)
                return;
        json_object_put(a->config_json);
        json_object_put(a->advanced_json);
        nuki_msg_wipe(&a->config);
        nuki_msg_wipe(&a->advanced);
        free(a->tc_add);
        free(a->tc_enabled);
        free(a);
}

/* Send the command of the current phase, skipping phases with nothing to do. */
static int apply_send(NukiDriver *d, ApplyJob *a)
{
        NukiMsg m;
        int r;

        for (;;)
                switch (a->phase) {
                case APPLY_CONFIG_READ:
                case APPLY_ADVANCED_READ:
                        if (a->phase == APPLY_CONFIG_READ ? !a->have_config : !a->have_advanced) {
                                a->phase = a->phase == APPLY_CONFIG_READ ? APPLY_ADVANCED_READ
                                                                         : APPLY_TC_LIST;
                                continue;
                        }
                        nuki_msg_init(&m,
                                      a->phase == APPLY_CONFIG_READ ? NUKI_CMD_REQUEST_CONFIG
                                                                    : NUKI_CMD_REQUEST_ADVANCED_CONFIG,
                                      NUKI_VARIANT_DEFAULT);
                        r = nuki_driver_begin(d, &m);
                        nuki_msg_wipe(&m);
                        return r;
                case APPLY_CONFIG:
                        return nuki_driver_begin(d, &a->config);
                case APPLY_ADVANCED:
                        return nuki_driver_begin(d, &a->advanced);
                case APPLY_TC_LIST:
                        if (!a->have_tc) {
                                a->phase = APPLY_DONE;
                                continue;
                        }
                        nuki_msg_init(&m, NUKI_CMD_REQUEST_TIME_CONTROL_ENTRIES, NUKI_VARIANT_DEFAULT);
                        r = nuki_driver_begin(d, &m);
                        nuki_msg_wipe(&m);
                        return r;
                case APPLY_TC_REMOVE:
                        if (a->old_index >= a->n_old) {
                                a->phase = APPLY_TC_ADD;
                                continue;
                        }
                        nuki_msg_init(&m, NUKI_CMD_REMOVE_TIME_CONTROL_ENTRY, NUKI_VARIANT_DEFAULT);
                        m.remove_time_control_entry.entry_id = a->old_ids[a->old_index];
                        r = nuki_driver_begin(d, &m);
                        nuki_msg_wipe(&m);
                        return r;
                case APPLY_TC_ADD:
                        if (a->tc_index >= a->n_tc) {
                                a->phase = APPLY_DONE;
                                continue;
                        }
                        return nuki_driver_begin(d, &a->tc_add[a->tc_index]);
                case APPLY_TC_DISABLE: {
                        const NukiMsg *add = &a->tc_add[a->tc_index];
                        nuki_msg_init(&m, NUKI_CMD_UPDATE_TIME_CONTROL_ENTRY, NUKI_VARIANT_DEFAULT);
                        m.update_time_control_entry.entry_id = a->new_id;
                        m.update_time_control_entry.enabled = false;
                        m.update_time_control_entry.weekdays = add->add_time_control_entry.weekdays;
                        m.update_time_control_entry.time = add->add_time_control_entry.time;
                        m.update_time_control_entry.lock_action = add->add_time_control_entry.lock_action;
                        r = nuki_driver_begin(d, &m);
                        nuki_msg_wipe(&m);
                        return r;
                }
                case APPLY_DONE:
                        return 0;
                }
}

static int apply_step(NukiDriver *d, void *data)
{
        ApplyJob *a = data;

        if (!nuki_driver_credentials(d)->has_pin)
                return -ENOKEY;
        return apply_send(d, a);
}

static int apply_reply(NukiDriver *d, void *data, const NukiMsg *m, bool last, const char **message)
{
        ApplyJob *a = data;
        int r;

        if (a->phase == APPLY_TC_LIST && m->command == NUKI_CMD_TIME_CONTROL_ENTRY &&
            a->n_old < TIME_CONTROLS_MAX)
                a->old_ids[a->n_old++] = m->time_control_entry.entry_id;
        if (!last)
                return 1;

        switch (a->phase) {
        case APPLY_CONFIG_READ:
        case APPLY_ADVANCED_READ: {
                bool config = a->phase == APPLY_CONFIG_READ;
                uint16_t set = config ? NUKI_CMD_SET_CONFIG : NUKI_CMD_SET_ADVANCED_CONFIG;
                _cleanup_(json_putp) json_object *merged = NULL;

                if (m->command != (config ? NUKI_CMD_CONFIG : NUKI_CMD_ADVANCED_CONFIG)) {
                        *message = "the lock did not send its settings";
                        return -EPROTO;
                }
                merged = settings_merge(m, config ? a->config_json : a->advanced_json, set);
                if (!merged)
                        return -ENOMEM;
                nuki_msg_init(config ? &a->config : &a->advanced, set, NUKI_VARIANT_DEFAULT);
                r = settings_fill(merged, config ? &a->config : &a->advanced, false,
                                  config ? "config" : "advanced_config", a->error, sizeof a->error);
                if (r < 0) {
                        *message = a->error;
                        return r;
                }
                a->phase = config ? APPLY_CONFIG : APPLY_ADVANCED;
                break;
        }
        case APPLY_CONFIG:
                a->phase = APPLY_ADVANCED_READ;
                break;
        case APPLY_ADVANCED:
                a->phase = APPLY_TC_LIST;
                break;
        case APPLY_TC_LIST:
                a->phase = APPLY_TC_REMOVE;
                break;
        case APPLY_TC_REMOVE:
                a->old_index++;
                break;
        case APPLY_TC_ADD:
                if (m->command != NUKI_CMD_TIME_CONTROL_ENTRY_ID) {
                        *message = "the lock did not say which id the new time control has";
                        return -EPROTO;
                }
                a->new_id = m->time_control_entry_id.entry_id;
                if (!a->tc_enabled[a->tc_index])
                        a->phase = APPLY_TC_DISABLE;
                else
                        a->tc_index++;
                break;
        case APPLY_TC_DISABLE:
                a->phase = APPLY_TC_ADD;
                a->tc_index++;
                break;
        case APPLY_DONE:
                return 0;
        }
        if (a->phase == APPLY_TC_ADD && a->tc_index >= a->n_tc)
                a->phase = APPLY_DONE;
        if (a->phase == APPLY_DONE)
                return 0;
        r = apply_send(d, a);
        if (r < 0) {
                *message = "cannot send the command";
                return r;
        }
        return a->phase == APPLY_DONE ? 0 : 1;
}

static void apply_done(Lock *l, void *data, int r, const char *message)
{
        ApplyJob *a = data;

        if (a->done)
                a->done(l, r, message, a->userdata);
        apply_job_free(a);
}

static const NukiAdminClass apply_class = {
        .name = "apply-settings",
        .step = apply_step,
        .reply = apply_reply,
        .done = apply_done,
};

/* Build every message from the settings first: nothing is sent for a document that does
 * not fit. */
static int apply_prepare(ApplyJob *a, const char *settings_json, char *error, size_t size)
{
        _cleanup_(json_putp) json_object *o = NULL;
        json_object *v;
        int r;

        o = json_tokener_parse(settings_json);
        if (!o || !json_object_is_type(o, json_type_object)) {
                snprintf(error, size, "the settings are not a JSON object");
                return -EINVAL;
        }
        /* checked here; written over what the lock reports when the job runs */
        if (json_object_object_get_ex(o, "config", &v) && !json_object_is_type(v, json_type_null)) {
                nuki_msg_init(&a->config, NUKI_CMD_SET_CONFIG, NUKI_VARIANT_DEFAULT);
                r = settings_fill(v, &a->config, true, "config", error, size);
                if (r < 0)
                        return r;
                a->config_json = json_object_get(v);
                a->have_config = true;
        }
        if (json_object_object_get_ex(o, "advanced_config", &v) && !json_object_is_type(v, json_type_null)) {
                nuki_msg_init(&a->advanced, NUKI_CMD_SET_ADVANCED_CONFIG, NUKI_VARIANT_DEFAULT);
                r = settings_fill(v, &a->advanced, true, "advanced_config", error, size);
                if (r < 0)
                        return r;
                a->advanced_json = json_object_get(v);
                a->have_advanced = true;
        }
        if (json_object_object_get_ex(o, "time_controls", &v) && !json_object_is_type(v, json_type_null)) {
                size_t n;

                if (!json_object_is_type(v, json_type_array) ||
                    (n = json_object_array_length(v)) > TIME_CONTROLS_MAX) {
                        snprintf(error, size, "time_controls: must be an array of at most %u entries",
                                 TIME_CONTROLS_MAX);
                        return -EINVAL;
                }
                a->tc_add = calloc(n + 1, sizeof *a->tc_add);
                a->tc_enabled = calloc(n + 1, sizeof *a->tc_enabled);
                if (!a->tc_add || !a->tc_enabled)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        json_object *e = json_object_array_get_idx(v, i), *en;
                        char what[32];

                        snprintf(what, sizeof what, "time_controls[%zu]", i);
                        nuki_msg_init(&a->tc_add[i], NUKI_CMD_ADD_TIME_CONTROL_ENTRY, NUKI_VARIANT_DEFAULT);
                        r = settings_fill(e, &a->tc_add[i], false, what, error, size);
                        if (r < 0)
                                return r;
                        a->tc_enabled[i] = !json_object_object_get_ex(e, "enabled", &en) ||
                                           json_object_get_boolean(en);
                }
                a->n_tc = n;
                a->have_tc = true;
        }
        return 0;
}

int nuki_op_apply_settings(Lock *l, const char *settings_json, lock_command_done_t done, void *userdata)
{
        NukiDriver *d = nuki_driver_of(l);
        ApplyJob *a;
        char error[160];
        int r;

        if (!d)
                return -ENODEV;
        if (!nuki_driver_credentials(d)->has_pin)
                return -ENOKEY;
        a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->done = done;
        a->userdata = userdata;
        r = apply_prepare(a, settings_json ?: "", error, sizeof error);
        if (r >= 0 && !a->have_config && !a->have_advanced && !a->have_tc) {
                snprintf(error, sizeof error, "no settings to write");
                r = -EINVAL;
        }
        if (r < 0) {
                if (r == -EINVAL)
                        log_warning("%s: settings not applied: %s", l->name, error);
                apply_job_free(a);
                return r;
        }
        r = nuki_driver_queue_admin(l, &apply_class, a);
        if (r < 0)
                apply_job_free(a);
        return r;
}

/* ---- reading the settings for backups -------------------------------------------------------- */

typedef struct ReadJob {
        unsigned phase; /* 0 advanced config, 1 time controls */
        json_object *tc;
} ReadJob;

static int read_step(NukiDriver *d, void *data)
{
        ReadJob *rj = data;
        NukiMsg m;
        int r;

        nuki_msg_init(&m,
                      rj->phase == 0 ? NUKI_CMD_REQUEST_ADVANCED_CONFIG
                                     : NUKI_CMD_REQUEST_TIME_CONTROL_ENTRIES,
                      NUKI_VARIANT_DEFAULT);
        r = nuki_driver_begin(d, &m);
        nuki_msg_wipe(&m);
        return r;
}

static void read_snapshot(NukiDriver *d, const char *kind, json_object *o)
{
        const NukiDriverContext *ctx = nuki_driver_context(d);
        Lock *l = nuki_driver_lock(d);

        if (!o || !ctx->store || l->store_id <= 0)
                return;
        (void) store_snapshot_add(ctx->store, l->store_id, kind,
                                  nuki_driver_config_count(d) < 0 ? "paired" : "changed",
                                  nuki_driver_config_count(d), 0,
                                  json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
}

static int read_reply(NukiDriver *d, void *data, const NukiMsg *m, bool last, const char **message)
{
        ReadJob *rj = data;

        if (rj->phase == 0 && m->command == NUKI_CMD_ADVANCED_CONFIG) {
                _cleanup_(json_putp) json_object *o = nuki_json_fields(m);
                read_snapshot(d, "advanced-config", o);
        }
        if (rj->phase == 1 && m->command == NUKI_CMD_TIME_CONTROL_ENTRY && rj->tc &&
            json_object_array_length(rj->tc) < TIME_CONTROLS_MAX)
                json_object_array_add(rj->tc, nuki_json_fields(m));
        if (!last)
                return 1;
        if (rj->phase == 0 && nuki_driver_credentials(d)->has_pin && !nuki_driver_pin_rejected(d)) {
                int r;

                rj->phase = 1;
                rj->tc = json_object_new_array();
                r = read_step(d, rj);
                if (r < 0) {
                        *message = "cannot send the command";
                        return r;
                }
                return 1;
        }
        if (rj->phase == 1)
                read_snapshot(d, "time-controls", rj->tc);
        return 0;
}

static void read_done(Lock *l, void *data, int r, const char *message)
{
        ReadJob *rj = data;

        if (r < 0)
                log_debug("%s: could not read the settings: %s", l->name, message ?: strerror(-r));
        json_object_put(rj->tc);
        free(rj);
}

static const NukiAdminClass read_class = {
        .name = "read-settings",
        .step = read_step,
        .reply = read_reply,
        .done = read_done,
        .background = true,
};

void nuki_admin_read_settings(NukiDriver *d)
{
        ReadJob *rj = calloc(1, sizeof *rj);

        if (!rj) {
                (void) log_oom();
                return;
        }
        if (nuki_driver_queue_admin(nuki_driver_lock(d), &read_class, rj) < 0)
                free(rj);
}

/* ---- the PIN latch ------------------------------------------------------------------------- */

static bool latch_key(const NukiDriverContext *ctx, const Lock *l, char *buf, size_t size)
{
        if (!ctx->store || l->store_id <= 0)
                return false;
        snprintf(buf, size, HEALTH_META_PIN_REJECTED, l->store_id);
        return true;
}

bool nuki_pin_latch_load(const NukiDriverContext *ctx, const Lock *l)
{
        _cleanup_free_ char *v = NULL;
        char key[64];

        if (!latch_key(ctx, l, key, sizeof key) || store_meta_get(ctx->store, key, &v) < 0)
                return false;
        return v && *v;
}

void nuki_pin_latch_set(const NukiDriverContext *ctx, const Lock *l, const char *request, const char *error)
{
        _cleanup_(json_putp) json_object *o = json_object_new_object();
        char key[64], f_id[64], f_lock[64];
        struct timespec ts;
        int r = -ENOMEM;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (o) {
                json_object_object_add(
                                o, "since_usec",
                                json_object_new_int64((int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000));
                json_object_object_add(o, "request", json_object_new_string(strempty(request)));
                json_object_object_add(o, "error", json_object_new_string(strempty(error)));
                r = 0;
        }
        if (r >= 0 && latch_key(ctx, l, key, sizeof key))
                r = store_meta_set(ctx->store, key,
                                   json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        if (r < 0)
                log_warning_errno(r, "%s: cannot store that the lock rejected the PIN: %m", l->name);
        snprintf(f_id, sizeof f_id, "MESSAGE_ID=%s", LOCKHUB_MESSAGE_PIN_REJECTED);
        snprintf(f_lock, sizeof f_lock, "LOCK=%s", l->name);
        (void) log_struct(LOG_WARNING, 0, LOG_FIELDS(f_id, f_lock),
                          "%s: the lock rejected the stored security PIN (%s, %s); the hub stops using it "
                          "until it is set again with 'lockhubctl pin %s'.",
                          l->name, strempty(request), strempty(error), l->name);
}

void nuki_pin_latch_clear(const NukiDriverContext *ctx, const Lock *l)
{
        char key[64];
        int r;

        if (!latch_key(ctx, l, key, sizeof key))
                return;
        r = store_meta_set(ctx->store, key, "");
        if (r < 0)
                log_warning_errno(r, "%s: cannot store that the PIN works again: %m", l->name);
        else
                log_info("%s: the lock accepts the security PIN again.", l->name);
}

/* ---- set-pin ------------------------------------------------------------------------------- */

typedef struct PinJob {
        uint32_t pin, old_pin;
        bool had_pin, applied;
        lock_command_done_t done;
        void *userdata;
} PinJob;

static int pin_step(NukiDriver *d, void *data)
{
        PinJob *pj = data;
        const NukiCredentials *c = nuki_driver_credentials(d);
        NukiMsg m;
        int r;

        if (!pj->applied) {
                pj->had_pin = c->has_pin;
                pj->old_pin = c->security_pin;
                nuki_driver_use_pin(d, true, pj->pin);
                pj->applied = true;
        }
        nuki_msg_init(&m, NUKI_CMD_VERIFY_SECURITY_PIN, NUKI_VARIANT_DEFAULT);
        r = nuki_driver_begin(d, &m);
        nuki_msg_wipe(&m);
        return r;
}

static int pin_reply(NukiDriver *d, void *data, const NukiMsg *m, bool last, const char **message)
{
        return last ? 0 : 1;
}

static void pin_save(const NukiDriverContext *ctx, Lock *l, uint32_t pin)
{
        struct store_lock row;
        uint8_t b[4];
        int r;

        if (!ctx->store || l->store_id <= 0)
                return;
        store_lock_init(&row);
        r = store_lock_get(ctx->store, l->store_id, &row);
        if (r >= 0) {
                if (row.security_pin_sealed)
                        nuki_wipe(row.security_pin_sealed, row.security_pin_sealed_size);
                free(row.security_pin_sealed);
                row.security_pin_sealed = NULL;
                row.security_pin_sealed_size = 0;
                nuki_put_u32(b, pin);
                row.security_pin_sealed = malloc(sizeof b);
                if (row.security_pin_sealed) {
                        memcpy(row.security_pin_sealed, b, sizeof b);
                        row.security_pin_sealed_size = sizeof b;
                        row.updated_usec = 0;
                        r = store_lock_update(ctx->store, &row);
                } else
                        r = -ENOMEM;
                nuki_wipe(b, sizeof b);
        }
        if (r < 0)
                log_warning_errno(r, "%s: cannot store the security PIN: %m", l->name);
        store_lock_done(&row);
}

static void pin_done(Lock *l, void *data, int r, const char *message)
{
        PinJob *pj = data;
        NukiDriver *d = nuki_driver_of(l);

        if (d && r < 0 && pj->applied)
                nuki_driver_use_pin(d, pj->had_pin, pj->old_pin);
        if (d && r >= 0) {
                pin_save(nuki_driver_context(d), l, pj->pin);
                log_info("%s: the lock accepted the new security PIN; it is stored.", l->name);
                /* codes and settings held back while the PIN was rejected: sync them now */
                lock_config_changed(l);
        }
        if (pj->done)
                pj->done(l, r, message, pj->userdata);
        nuki_wipe(pj, sizeof *pj);
        free(pj);
}

static const NukiAdminClass pin_class = {
        .name = "set-pin",
        .step = pin_step,
        .reply = pin_reply,
        .done = pin_done,
        .trial_pin = true,
};

int nuki_op_set_security_pin(Lock *l, uint32_t pin, lock_command_done_t done, void *userdata)
{
        NukiDriver *d = nuki_driver_of(l);
        PinJob *pj;
        int r;

        if (!d)
                return -ENODEV;
        if (pin == 0 || pin > (nuki_driver_credentials(d)->ultra ? 999999u : 9999u))
                return -EINVAL;
        pj = calloc(1, sizeof *pj);
        if (!pj)
                return -ENOMEM;
        *pj = (PinJob){ .pin = pin, .done = done, .userdata = userdata };
        r = nuki_driver_queue_admin(l, &pin_class, pj);
        if (r < 0) {
                nuki_wipe(pj, sizeof *pj);
                free(pj);
        }
        return r;
}
