/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.lockhub on the system bus: one static vtable per interface, registered in
 * api_start(). Lock objects are served through a fallback vtable below
 * /org/lockhub/lock, looked up by name in the Manager's lock table, so adding or
 * removing a lock needs no per-object registration.
 *
 * Commands are asynchronous: the method call is kept (referenced) until the driver
 * reports the outcome, and then answered exactly once.
 */

#include <grp.h>
#include <systemd/sd-bus.h>

#include "lockhub/api.h"
#include "lockhub/log.h"
#include "lockhub/manager-bluez.h"
#include "lockhub/manager-health.h"
#include "lockhub/manager-secret.h"
#include "lockhub/manager.h"
#include "lockhub/store.h"

static const struct {
        int errno_value;
        const char *name;
} error_map[] = {
        { EDEADLK, "org.lockhub.Error.Jammed" },
        { EHOSTUNREACH, "org.lockhub.Error.Unreachable" },
        { ETIMEDOUT, "org.lockhub.Error.Timeout" },
        { EBUSY, "org.lockhub.Error.Busy" },
        { EACCES, "org.lockhub.Error.NotAuthorized" },
        { EINVAL, "org.lockhub.Error.InvalidArgs" },
        { ECANCELED, "org.lockhub.Error.Cancelled" },
        { ENOENT, "org.lockhub.Error.NoSuchLock" },
        { EPERM, "org.lockhub.Error.AccessDenied" },
        { EOPNOTSUPP, "org.lockhub.Error.NotSupported" },
        { EINPROGRESS, "org.lockhub.Error.OutcomeUnknown" },
};

const char *api_error_name(int r)
{
        if (r == -EKEYREJECTED) /* the lock rejected the security PIN */
                return "org.lockhub.Error.NotAuthorized";
        for (size_t i = 0; i < ELEMENTSOF(error_map); i++)
                if (error_map[i].errno_value == -r)
                        return error_map[i].name;
        return "org.lockhub.Error.Failed";
}

int api_flush(Manager *m)
{
        int r;

        if (!m || !m->store)
                return 0;
        /* Changes not told yet are told before the reply, as when they were told from the
         * setters: a client sees PropertiesChanged before the reply of the command. */
        for (size_t i = 0; i < m->n_locks; i++)
                lock_notify_flush(m->locks[i]);
        r = store_flush(m->store);
        if (r >= 0)
                r = store_write_error(m->store, NULL); /* kept, not run, while commits fail */
        if (r < 0)
                log_debug_errno(r, "Replying before the change is stored: %m");
        return r;
}

int api_not_stored(Manager *m, sd_bus_error *error)
{
        int r = api_flush(m);

        if (r >= 0)
                return 0;
        return sd_bus_error_setf(
                        error, "org.lockhub.Error.NotStored",
                        "Done, but not stored yet (%s): the change is kept in memory and written as "
                        "soon as the database takes writes again.",
                        strerror(-r));
}

int api_lock_path(const char *name, char **ret)
{
        return sd_bus_path_encode(API_LOCK_PATH_PREFIX, name, ret);
}

/* Root, our own user, or a member of the lockhub group. */
static int check_caller(sd_bus_message *m, sd_bus_error *error);

int api_check_caller(sd_bus_message *m, sd_bus_error *error)
{
        return check_caller(m, error);
}

static int check_caller(sd_bus_message *m, sd_bus_error *error)
{
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const gid_t *gids = NULL;
        struct group *g;
        uid_t uid;
        gid_t gid;
        int r, n;

        r = sd_bus_query_sender_creds(m,
                                      SD_BUS_CREDS_EUID | SD_BUS_CREDS_EGID |
                                                      SD_BUS_CREDS_SUPPLEMENTARY_GIDS | SD_BUS_CREDS_AUGMENT,
                                      &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        if (uid == 0 || uid == geteuid())
                return 0;

        g = getgrnam("lockhub");
        if (g) {
                if (sd_bus_creds_get_egid(creds, &gid) >= 0 && gid == g->gr_gid)
                        return 0;
                n = sd_bus_creds_get_supplementary_gids(creds, &gids);
                for (int i = 0; i < n; i++)
                        if (gids[i] == g->gr_gid)
                                return 0;
        }
        log_notice("Refused D-Bus call %s.%s from uid %u: not root and not in group lockhub.",
                   strna(sd_bus_message_get_interface(m)), strna(sd_bus_message_get_member(m)),
                   (unsigned) uid);
        return sd_bus_error_set(error, "org.lockhub.Error.AccessDenied",
                                "Only root and members of the group 'lockhub' may do this.");
}

int api_find_lock(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                  sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *name = NULL;
        Lock *l;
        int r;

        r = sd_bus_path_decode(path, API_LOCK_PATH_PREFIX, &name);
        if (r <= 0)
                return r;
        l = manager_find_lock(m, name);
        if (!l)
                return 0;
        *found = l;
        return 1;
}

static int enumerate_locks(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error)
{
        Manager *m = userdata;
        char **l;

        l = calloc(m->n_locks + 1, sizeof *l);
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_locks; i++) {
                int r = api_lock_path(m->locks[i]->name, &l[i]);
                if (r < 0) {
                        for (size_t j = 0; j < i; j++)
                                free(l[j]);
                        free(l);
                        return r;
                }
        }
        *nodes = l;
        return 1;
}

/* ---- Manager1 ---- */

static int method_list_locks(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Manager *m = userdata;
        int r;

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(sos)");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->n_locks; i++) {
                _cleanup_free_ char *path = NULL;
                r = api_lock_path(m->locks[i]->name, &path);
                if (r < 0)
                        return r;
                r = sd_bus_message_append(reply, "(sos)", m->locks[i]->name, path, m->locks[i]->address);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        return sd_bus_message_append(reply, "s", LOCKHUB_VERSION);
}

/* Errors of pairing and unpairing, beyond api_error_name(). */
static const char *pair_error_name(int r)
{
        switch (-r) {
        case EPERM:
        case ENOENT:
                return "org.lockhub.Error.NotInPairingMode";
        case EEXIST:
                return "org.lockhub.Error.AlreadyPaired";
        case EINVAL:
        case ENOTUNIQ:
                return "org.lockhub.Error.InvalidArgs";
        case ENOSPC:
                return "org.lockhub.Error.LockFull";
        case EACCES:
                return "org.lockhub.Error.NotAuthorized";
        default:
                return api_error_name(r);
        }
}

static void on_pair_done(Manager *m, int r, const char *message, Lock *l, void *userdata)
{
        sd_bus_message *call = userdata;
        _cleanup_free_ char *path = NULL;

        (void) api_flush(m); /* a failed commit keeps the pairing; lockhubd(8) */
        if (r >= 0 && l && api_lock_path(l->name, &path) >= 0)
                (void) sd_bus_reply_method_return(call, "o", path);
        else
                (void) sd_bus_reply_method_errorf(call, pair_error_name(r < 0 ? r : -EIO), "%s",
                                                  message ?: strerror(r < 0 ? -r : EIO));
        sd_bus_message_unref(call);
}

static int method_pair(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        _cleanup_free_ char *message = NULL;
        const char *address, *name, *pin;
        int r;

        r = check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "sss", &address, &name, &pin);
        if (r < 0)
                return r;
        r = manager_pair(m, address, name, pin, on_pair_done, sd_bus_message_ref(msg), &message);
        if (r < 0) {
                sd_bus_message_unref(msg);
                return sd_bus_error_setf(error, pair_error_name(r), "%s", message ?: strerror(-r));
        }
        return 1; /* answered when the pairing is done */
}

static void on_unpair_done(Manager *m, int r, const char *message, void *userdata)
{
        sd_bus_message *call = userdata;

        (void) api_flush(m);
        if (r >= 0)
                (void) sd_bus_reply_method_return(call, "s", strempty(message));
        else
                (void) sd_bus_reply_method_errorf(call, api_error_name(r), "%s", message ?: strerror(-r));
        sd_bus_message_unref(call);
}

static int method_unpair(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        const char *name;
        int r;

        r = check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &name);
        if (r < 0)
                return r;
        r = manager_unpair(m, name, on_unpair_done, sd_bus_message_ref(msg));
        if (r < 0) {
                sd_bus_message_unref(msg);
                if (r == -ENOENT)
                        return sd_bus_error_setf(error, "org.lockhub.Error.NoSuchLock",
                                                 "No lock named '%s'.", name);
                return sd_bus_error_setf(error, api_error_name(r), "Cannot unpair %s: %s", name,
                                         strerror(-r));
        }
        return 1;
}

/* Rekey(ay new_key) → (s key_id, u key_version, s key_source, s message): re-seals every
 * secret with a new hub key (empty: lockhubd makes one; only with a key file). */
static int method_rekey(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        Manager *m = userdata;
        struct manager_rekey_result res;
        _cleanup_free_ char *message = NULL;
        const void *key = NULL;
        size_t n = 0;
        int r;

        r = check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read_array(msg, 'y', &key, &n);
        if (r < 0)
                return r;
        r = manager_rekey(m, key, n, &res, &message);
        if (r < 0)
                return sd_bus_error_setf(error,
                                         r == -EOPNOTSUPP ? "org.lockhub.Error.NotSupported"
                                         : r == -EINVAL   ? "org.lockhub.Error.InvalidArgs"
                                                          : "org.lockhub.Error.Failed",
                                         "%s", message ?: strerror(-r));
        return sd_bus_reply_method_return(msg, "suss", res.key_id, res.key_version, res.key_source,
                                          strempty(message));
}

/* The bundle holds the history of every lock: the same callers as for changes. */
static int method_support_bundle(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        int r = check_caller(msg, error);

        if (r < 0)
                return r;
        return manager_health_method_support_bundle(msg, userdata, error);
}

static const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_NAMES("ListLocks", "", , "a(sos)", SD_BUS_PARAM(locks), method_list_locks,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Pair", "sss", SD_BUS_PARAM(address) SD_BUS_PARAM(name) SD_BUS_PARAM(pin),
                                 "o", SD_BUS_PARAM(lock), method_pair,
                                 SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("Unpair", "s", SD_BUS_PARAM(name), "s", SD_BUS_PARAM(result), method_unpair,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Rekey", "ay", SD_BUS_PARAM(new_key), "suss",
                                 SD_BUS_PARAM(key_id) SD_BUS_PARAM(key_version) SD_BUS_PARAM(key_source)
                                                 SD_BUS_PARAM(message),
                                 method_rekey, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("Diagnose", "sb", SD_BUS_PARAM(lock) SD_BUS_PARAM(json), "s",
                                 SD_BUS_PARAM(report), manager_health_method_diagnose,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SupportBundle", "", , "s", SD_BUS_PARAM(bundle), method_support_bundle,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* ---- Lock1 ---- */

struct pending_call {
        sd_bus_message *call;
};

static void on_command_done(Lock *l, int r, const char *message, void *userdata)
{
        struct pending_call *p = userdata;

        /* the command's event (and the state it left) is committed before the caller hears
         * of it; while the disk is full the lock still did it: success all the same, the
         * event is kept (lockhubd(8), "When the disk is full") */
        (void) api_flush(l->event_sink_userdata); /* the manager, as in method_events() */
        if (r >= 0)
                (void) sd_bus_reply_method_return(p->call, "");
        else
                (void) sd_bus_reply_method_errorf(p->call, api_error_name(r), "%s: %s", l->name,
                                                  message ?: strerror(-r));
        sd_bus_message_unref(p->call);
        free(p);
}

/* start_command()'s action: a LockAction, or one of these. */
#define COMMAND_REFRESH   (-1)
#define COMMAND_CALIBRATE (-2)

static int start_command(sd_bus_message *msg, Lock *l, int action, sd_bus_error *error)
{
        struct pending_call *p;
        int r;

        r = check_caller(msg, error);
        if (r < 0)
                return r;
        if (!l->ops)
                return sd_bus_error_setf(error, "org.lockhub.Error.NotSupported", "%s has no driver.",
                                         l->name);

        p = malloc(sizeof *p);
        if (!p)
                return -ENOMEM;
        p->call = sd_bus_message_ref(msg);
        if (action == COMMAND_CALIBRATE)
                r = l->ops->calibrate ? l->ops->calibrate(l, LOCK_SOURCE_DBUS, on_command_done, p)
                                      : -EOPNOTSUPP;
        else if (action < 0)
                r = l->ops->refresh(l, on_command_done, p);
        else
                r = l->ops->action(l, (LockAction) action, LOCK_SOURCE_DBUS, NULL, on_command_done, p);
        if (r < 0) {
                /* Not started: the callback will not run. */
                sd_bus_message_unref(p->call);
                free(p);
                return sd_bus_error_setf(error, api_error_name(r), "%s: %s", l->name,
                                         r == -ENOKEY ? "the hub does not know the lock's security PIN"
                                                      : strerror(-r));
        }
        return 1; /* answered later */
}

static int method_lock(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return start_command(msg, userdata, LOCK_ACTION_LOCK, error);
}

static int method_unlock(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return start_command(msg, userdata, LOCK_ACTION_UNLOCK, error);
}

static int method_unlatch(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return start_command(msg, userdata, LOCK_ACTION_UNLATCH, error);
}

static int method_lockngo(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return start_command(msg, userdata, LOCK_ACTION_LOCK_N_GO, error);
}

static int method_refresh(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return start_command(msg, userdata, COMMAND_REFRESH, error);
}

/* Calibrate(): the lock learns its end positions again; answered when it has finished. */
static int method_calibrate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        return start_command(msg, userdata, COMMAND_CALIBRATE, error);
}

/* SetSecurityPin(s pin): the lock's PIN changed in the vendor's app; answered once the lock
 * accepted the new one (then stored), NotAuthorized when it rejected it. */
static int method_set_security_pin(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        struct pending_call *p;
        Lock *l = userdata;
        const char *pin;
        unsigned long v;
        char *end;
        int r;

        r = check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "s", &pin);
        if (r < 0)
                return r;
        if (!l->ops || !l->ops->set_security_pin)
                return sd_bus_error_setf(error, "org.lockhub.Error.NotSupported", "%s has no security PIN.",
                                         l->name);
        if (*pin < '0' || *pin > '9' || strlen(pin) > 6 || (v = strtoul(pin, &end, 10), *end))
                return sd_bus_error_set(error, "org.lockhub.Error.InvalidArgs",
                                        "Invalid security PIN: use the lock's 4-digit PIN (6 digits on a "
                                        "Smart Lock Ultra).");
        p = malloc(sizeof *p);
        if (!p)
                return -ENOMEM;
        p->call = sd_bus_message_ref(msg);
        r = l->ops->set_security_pin(l, (uint32_t) v, on_command_done, p);
        if (r < 0) {
                sd_bus_message_unref(p->call);
                free(p);
                return sd_bus_error_setf(error, api_error_name(r), "%s: %s", l->name,
                                         r == -EINVAL ? "invalid security PIN for this lock" : strerror(-r));
        }
        return 1; /* answered later */
}

/* Events(t since_usec, u limit) → a(ttssss): id, time, kind, source, actor, detail (JSON
 * or ""), oldest first; limit 0: all, else the newest `limit`. */
static int method_events(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Lock *l = userdata;
        Manager *m;
        struct store_event *ev = NULL;
        size_t n = 0;
        uint64_t since;
        uint32_t limit;
        int r;

        /* A lock's history (who opened the door, when) is for the same callers as changes,
         * like the support bundle. */
        r = check_caller(msg, error);
        if (r < 0)
                return r;
        r = sd_bus_message_read(msg, "tu", &since, &limit);
        if (r < 0)
                return r;
        if (l->store_id <= 0 || !l->event_sink_userdata)
                return sd_bus_reply_method_return(msg, "a(ttssss)", 0);
        m = l->event_sink_userdata; /* the manager: it records this lock's events */
        r = store_event_list(m->store,
                             &(struct store_event_filter){
                                             .lock_id = l->store_id, .since_usec = since, .limit = limit },
                             &ev, &n);
        if (r < 0)
                return sd_bus_error_setf(error, "org.lockhub.Error.Failed",
                                         "Cannot read the events of %s: %s", l->name, strerror(-r));
        r = sd_bus_message_new_method_return(msg, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ttssss)");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(reply, "(ttssss)", (uint64_t) ev[i].id, ev[i].ts_usec,
                                          strempty(ev[i].kind), strempty(ev[i].source),
                                          strempty(ev[i].actor), strempty(ev[i].detail));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        store_event_array_free(ev, n);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
        Lock *l = userdata;

        if (streq(property, "Name"))
                return sd_bus_message_append(reply, "s", l->name);
        if (streq(property, "Address"))
                return sd_bus_message_append(reply, "s", l->address);
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", lock_state_to_string(l->state));
        if (streq(property, "Door"))
                return sd_bus_message_append(reply, "s", lock_door_to_string(l->door));
        if (streq(property, "BatteryPercent"))
                return sd_bus_message_append(reply, "i", l->battery.percent);
        if (streq(property, "BatteryCritical"))
                return sd_bus_message_append(reply, "b", l->battery.critical);
        if (streq(property, "Charging"))
                return sd_bus_message_append(reply, "b", l->battery.charging);
        if (streq(property, "Connected"))
                return sd_bus_message_append(reply, "b", l->link.connected);
        if (streq(property, "Reachable"))
                return sd_bus_message_append(reply, "b", l->link.reachable);
        if (streq(property, "RSSI"))
                return sd_bus_message_append(reply, "n", (int16_t) l->link.rssi);
        if (streq(property, "LastSeen"))
                return sd_bus_message_append(reply, "t", l->link.last_seen_usec);
        if (streq(property, "Model"))
                return sd_bus_message_append(reply, "s", strempty(l->model));
        if (streq(property, "Firmware"))
                return sd_bus_message_append(reply, "s", strempty(l->firmware));
        if (streq(property, "NeedsRepair"))
                return sd_bus_message_append(reply, "b", l->needs_repair);
        if (streq(property, "LastAction"))
                return sd_bus_message_append(
                                reply, "(ssst)",
                                l->last_action.time_usec ? lock_action_to_string(l->last_action.action) : "",
                                l->last_action.time_usec ? lock_source_to_string(l->last_action.source) : "",
                                l->last_action.actor, l->last_action.time_usec);
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "No property %s.", property);
}

#define LOCK_PROPERTY(name, sig) \
        SD_BUS_PROPERTY(name, sig, property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

static const sd_bus_vtable lock_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Address", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        LOCK_PROPERTY("State", "s"),
        LOCK_PROPERTY("Door", "s"),
        LOCK_PROPERTY("BatteryPercent", "i"),
        LOCK_PROPERTY("BatteryCritical", "b"),
        LOCK_PROPERTY("Charging", "b"),
        LOCK_PROPERTY("Connected", "b"),
        LOCK_PROPERTY("Reachable", "b"),
        LOCK_PROPERTY("RSSI", "n"),
        LOCK_PROPERTY("LastSeen", "t"),
        LOCK_PROPERTY("Model", "s"),
        LOCK_PROPERTY("Firmware", "s"),
        LOCK_PROPERTY("NeedsRepair", "b"),
        LOCK_PROPERTY("LastAction", "(ssst)"),
        SD_BUS_METHOD("Lock", "", "", method_lock, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Unlock", "", "", method_unlock, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Unlatch", "", "", method_unlatch, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("LockNGo", "", "", method_lockngo, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Refresh", "", "", method_refresh, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Calibrate", "", "", method_calibrate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetSecurityPin", "s", SD_BUS_PARAM(pin), "", , method_set_security_pin,
                                 SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_NAMES("Events", "tu", SD_BUS_PARAM(since_usec) SD_BUS_PARAM(limit), "a(ttssss)",
                                 SD_BUS_PARAM(events), method_events, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

static void on_lock_changed(Lock *l, unsigned changes, void *userdata)
{
        Manager *m = userdata;
        _cleanup_free_ char *path = NULL;
        const char *names[16];
        size_t n = 0;

        if (!m->bus || api_lock_path(l->name, &path) < 0)
                return;
        if (changes & LOCK_CHANGE_REMOVED) {
                (void) sd_bus_emit_object_removed(m->bus, path);
                return;
        }
        if (changes & LOCK_CHANGE_STATE)
                names[n++] = "State";
        if (changes & LOCK_CHANGE_DOOR)
                names[n++] = "Door";
        if (changes & LOCK_CHANGE_BATTERY) {
                names[n++] = "BatteryPercent";
                names[n++] = "BatteryCritical";
                names[n++] = "Charging";
        }
        if (changes & LOCK_CHANGE_LINK) {
                names[n++] = "Connected";
                names[n++] = "Reachable";
                names[n++] = "RSSI";
                names[n++] = "LastSeen";
        }
        if (changes & LOCK_CHANGE_INFO) {
                names[n++] = "Model";
                names[n++] = "Firmware";
        }
        if (changes & LOCK_CHANGE_HEALTH)
                names[n++] = "NeedsRepair";
        if (changes & LOCK_CHANGE_LAST_ACTION)
                names[n++] = "LastAction";
        names[n] = NULL;
        if (n > 0)
                (void) sd_bus_emit_properties_changed_strv(m->bus, path, "org.lockhub.Lock1",
                                                           (char **) names);
}

int api_lock_added(Manager *m, Lock *l)
{
        _cleanup_free_ char *path = NULL;
        int r;

        r = lock_add_listener(l, on_lock_changed, m);
        if (r < 0)
                return r;
        if (!m->bus)
                return 0;
        r = api_lock_path(l->name, &path);
        if (r < 0)
                return r;
        (void) sd_bus_emit_object_added(m->bus, path);
        return 0;
}

static int on_name_acquired(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        if (e)
                log_error("Failed to acquire the bus name %s: %s. Is another lockhubd running, or is the "
                          "D-Bus "
                          "policy (org.lockhub.conf) missing?",
                          API_BUS_NAME, e->message ?: e->name);
        else
                log_debug("Acquired bus name %s.", API_BUS_NAME);
        return 0;
}

int api_start(Manager *m)
{
        int r;

        r = sd_bus_add_object_vtable(m->bus, NULL, API_MANAGER_PATH, "org.lockhub.Manager1", manager_vtable,
                                     m);
        if (r < 0)
                return log_error_errno(r, "Failed to register org.lockhub.Manager1: %m");
        r = api_codes_start(m);
        if (r < 0)
                return r;
        r = sd_bus_add_fallback_vtable(m->bus, NULL, API_LOCK_PATH_PREFIX, "org.lockhub.Lock1", lock_vtable,
                                       api_find_lock, m);
        if (r < 0)
                return log_error_errno(r, "Failed to register org.lockhub.Lock1: %m");
        r = sd_bus_add_node_enumerator(m->bus, NULL, API_LOCK_PATH_PREFIX, enumerate_locks, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the lock enumerator: %m");
        r = sd_bus_add_object_manager(m->bus, NULL, API_MANAGER_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to add the object manager: %m");
        r = sd_bus_request_name_async(m->bus, NULL, API_BUS_NAME, 0, on_name_acquired, m);
        if (r < 0)
                return log_error_errno(r, "Failed to request the bus name %s: %m", API_BUS_NAME);
        return 0;
}
