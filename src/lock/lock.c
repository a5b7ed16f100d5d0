/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The generic lock model (see lockhub/lock.h for the contract).
 *
 * Invariant: every field of a Lock that users can see changes only in a setter here,
 * and every setter that changes something records an event (through event_sink)
 * before it tells the listeners. Drivers never write the fields directly.
 *
 * Telling (lock_notify()) is either immediate or, once lock_set_event() attached the lock
 * to the event loop, deferred: the bits are gathered in notify_pending and told once by the
 * lock's notify defer, after the store's commit defer and before any source of normal
 * priority (lockhub/lock.h explains the order).
 */

#include <ctype.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

#include "lockhub/lock.h"

static const char *const state_names[_LOCK_STATE_MAX] = {
        [LOCK_STATE_UNKNOWN] = "unknown",           [LOCK_STATE_LOCKED] = "locked",
        [LOCK_STATE_UNLOCKING] = "unlocking",       [LOCK_STATE_UNLOCKED] = "unlocked",
        [LOCK_STATE_LOCKING] = "locking",           [LOCK_STATE_UNLATCHED] = "unlatched",
        [LOCK_STATE_UNLATCHING] = "unlatching",     [LOCK_STATE_JAMMED] = "jammed",
        [LOCK_STATE_UNCALIBRATED] = "uncalibrated", [LOCK_STATE_CALIBRATING] = "calibrating",
};

static const char *const action_names[_LOCK_ACTION_MAX] = {
        [LOCK_ACTION_LOCK] = "lock",
        [LOCK_ACTION_UNLOCK] = "unlock",
        [LOCK_ACTION_UNLATCH] = "unlatch",
        [LOCK_ACTION_LOCK_N_GO] = "lockngo",
        [LOCK_ACTION_LOCK_N_GO_UNLATCH] = "lockngo_unlatch",
        [LOCK_ACTION_FULL_LOCK] = "full_lock",
};

static const char *const door_names[_LOCK_DOOR_MAX] = {
        [LOCK_DOOR_UNKNOWN] = "unknown", [LOCK_DOOR_NONE] = "none",         [LOCK_DOOR_CLOSED] = "closed",
        [LOCK_DOOR_OPEN] = "open",       [LOCK_DOOR_TAMPERED] = "tampered",
};

static const char *const source_names[_LOCK_SOURCE_MAX] = {
        [LOCK_SOURCE_HUB] = "hub",       [LOCK_SOURCE_DBUS] = "dbus",     [LOCK_SOURCE_MQTT] = "mqtt",
        [LOCK_SOURCE_LOCK] = "lock",     [LOCK_SOURCE_MANUAL] = "manual", [LOCK_SOURCE_BUTTON] = "button",
        [LOCK_SOURCE_KEYPAD] = "keypad", [LOCK_SOURCE_AUTO] = "auto",     [LOCK_SOURCE_APP] = "app",
};

const char *lock_state_to_string(LockState s)
{
        return s >= 0 && s < _LOCK_STATE_MAX ? state_names[s] : NULL;
}

LockState lock_state_from_string(const char *s)
{
        for (int i = 0; s && i < _LOCK_STATE_MAX; i++)
                if (streq(s, state_names[i]))
                        return (LockState) i;
        return _LOCK_STATE_MAX;
}

const char *lock_action_to_string(LockAction a)
{
        return a >= 0 && a < _LOCK_ACTION_MAX ? action_names[a] : NULL;
}

LockAction lock_action_from_string(const char *s)
{
        if (s && streq(s, "open"))
                return LOCK_ACTION_UNLATCH;
        for (int i = 0; s && i < _LOCK_ACTION_MAX; i++)
                if (streq(s, action_names[i]))
                        return (LockAction) i;
        return _LOCK_ACTION_MAX;
}

const char *lock_door_to_string(LockDoor d)
{
        return d >= 0 && d < _LOCK_DOOR_MAX ? door_names[d] : NULL;
}

const char *lock_source_to_string(LockSource s)
{
        return s >= 0 && s < _LOCK_SOURCE_MAX ? source_names[s] : NULL;
}

bool lock_name_is_valid(const char *name)
{
        size_t n;

        if (!name)
                return false;
        n = strlen(name);
        if (n < 1 || n > 32 || name[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isascii((unsigned char) name[i]) ||
                    !(isalnum((unsigned char) name[i]) || name[i] == '-' || name[i] == '_'))
                        return false;
        return true;
}

int lock_address_normalize(const char *address, char ret[static 18])
{
        if (!address || strlen(address) != 17)
                return -EINVAL;
        for (size_t i = 0; i < 17; i++) {
                char c = address[i];
                if (i % 3 == 2) {
                        if (c != ':')
                                return -EINVAL;
                } else if (!isxdigit((unsigned char) c))
                        return -EINVAL;
                ret[i] = (char) toupper((unsigned char) c);
        }
        ret[17] = '\0';
        return 0;
}

int lock_new(const char *name, const char *address, Lock **ret)
{
        _cleanup_free_ Lock *l = NULL;
        char addr[18];
        int r;

        if (!lock_name_is_valid(name))
                return -EINVAL;
        r = lock_address_normalize(address, addr);
        if (r < 0)
                return r;

        l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->name = strdup(name);
        l->address = strdup(addr);
        if (!l->name || !l->address) {
                free(l->name);
                free(l->address);
                return -ENOMEM;
        }
        l->battery = (LockBattery){ .percent = -1, .keypad_critical = -1, .door_sensor_critical = -1 };
        l->store_id = -1;
        *ret = TAKE_PTR(l);
        return 0;
}

static void lock_tell(Lock *l, unsigned changes)
{
        /* Listeners must not add or remove listeners while being called. */
        for (size_t i = 0; i < l->n_listeners; i++)
                l->listeners[i].fn(l, changes, l->listeners[i].userdata);
}

void lock_notify_flush(Lock *l)
{
        unsigned changes = l->notify_pending;

        if (changes == 0)
                return;
        /* A listener may change the lock again: that is gathered anew and told by the
         * next dispatch of the defer. */
        l->notify_pending = 0;
        (void) sd_event_source_set_enabled(l->notify_defer, SD_EVENT_OFF);
        lock_tell(l, changes);
}

static int on_notify_defer(sd_event_source *es, void *userdata)
{
        lock_notify_flush(userdata);
        return 0;
}

static void lock_notify(Lock *l, unsigned changes)
{
        if (l->notify_defer) {
                l->notify_pending |= changes;
                if (sd_event_source_set_enabled(l->notify_defer, SD_EVENT_ONESHOT) >= 0)
                        return;
                /* Cannot defer (cannot happen with a valid source): tell now, in order. */
                changes = l->notify_pending;
                l->notify_pending = 0;
        }
        lock_tell(l, changes);
}

int lock_set_event(Lock *l, sd_event *e, int64_t priority)
{
        int r;

        if (l->notify_defer)
                return -EBUSY;
        r = sd_event_add_defer(e, &l->notify_defer, on_notify_defer, l);
        if (r >= 0)
                r = sd_event_source_set_priority(l->notify_defer, priority);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->notify_defer, SD_EVENT_OFF);
        if (r >= 0)
                (void) sd_event_source_set_description(l->notify_defer, "lock-notify");
        if (r < 0)
                l->notify_defer = sd_event_source_disable_unref(l->notify_defer);
        return r;
}

Lock *lock_free(Lock *l)
{
        if (!l)
                return NULL;
        /* What was not told yet is not told: the lock goes. */
        l->notify_defer = sd_event_source_disable_unref(l->notify_defer);
        l->notify_pending = 0;
        lock_tell(l, LOCK_CHANGE_REMOVED);
        if (l->ops && l->ops->free)
                l->ops->free(l);
        free(l->listeners);
        free(l->name);
        free(l->address);
        free(l->model);
        free(l->firmware);
        free(l);
        return NULL;
}

int lock_add_listener(Lock *l, lock_listener_t fn, void *userdata)
{
        struct lock_listener *n;

        n = reallocarray(l->listeners, l->n_listeners + 1, sizeof *n);
        if (!n)
                return -ENOMEM;
        l->listeners = n;
        l->listeners[l->n_listeners++] = (struct lock_listener){ fn, userdata };
        return 0;
}

void lock_remove_listener(Lock *l, lock_listener_t fn, void *userdata)
{
        for (size_t i = 0; i < l->n_listeners; i++)
                if (l->listeners[i].fn == fn && l->listeners[i].userdata == userdata) {
                        memmove(l->listeners + i, l->listeners + i + 1,
                                (l->n_listeners - i - 1) * sizeof *l->listeners);
                        l->n_listeners--;
                        return;
                }
}

static void lock_record(Lock *l, const char *kind, LockSource source, const char *actor, json_object *detail)
{
        if (l->event_sink)
                (void) l->event_sink(l, kind, source, actor,
                                     detail ? json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN)
                                            : NULL,
                                     l->event_sink_userdata);
        json_object_put(detail);
}

static json_object *detail_pair(const char *k1, const char *v1, const char *k2, const char *v2)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (k1 && v1)
                json_object_object_add(o, k1, json_object_new_string(v1));
        if (k2 && v2)
                json_object_object_add(o, k2, json_object_new_string(v2));
        return o;
}

int lock_set_state(Lock *l, LockState s, LockSource source, const char *actor)
{
        LockState old = l->state;

        if (s == old || s < 0 || s >= _LOCK_STATE_MAX)
                return 0;
        l->state = s;
        lock_record(l, "state", source, actor, detail_pair("from", state_names[old], "to", state_names[s]));
        lock_notify(l, LOCK_CHANGE_STATE);
        return 1;
}

int lock_set_battery(Lock *l, const LockBattery *b)
{
        json_object *d;

        if (memcmp(b, &l->battery, sizeof *b) == 0)
                return 0;
        l->battery = *b;
        d = json_object_new_object();
        if (d) {
                json_object_object_add(d, "percent",
                                       b->percent >= 0 ? json_object_new_int(b->percent) : NULL);
                json_object_object_add(d, "critical", json_object_new_boolean(b->critical));
                json_object_object_add(d, "charging", json_object_new_boolean(b->charging));
        }
        lock_record(l, "battery", LOCK_SOURCE_LOCK, NULL, d);
        lock_notify(l, LOCK_CHANGE_BATTERY);
        return 1;
}

int lock_set_door(Lock *l, LockDoor d, LockSource source)
{
        LockDoor old = l->door;

        if (d == old || d < 0 || d >= _LOCK_DOOR_MAX)
                return 0;
        l->door = d;
        lock_record(l, "door", source, NULL, detail_pair("from", door_names[old], "to", door_names[d]));
        lock_notify(l, LOCK_CHANGE_DOOR);
        return 1;
}

static uint64_t now_monotonic_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

int lock_set_link(Lock *l, const LockLink *link)
{
        bool announce = link->connected != l->link.connected || link->reachable != l->link.reachable;
        uint64_t now = now_monotonic_usec();

        if (memcmp(link, &l->link, sizeof *link) == 0)
                return 0;

        if (announce) {
                json_object *d = json_object_new_object();
                if (d) {
                        json_object_object_add(d, "connected", json_object_new_boolean(link->connected));
                        json_object_object_add(d, "reachable", json_object_new_boolean(link->reachable));
                        json_object_object_add(d, "rssi",
                                               link->rssi ? json_object_new_int(link->rssi) : NULL);
                }
                l->link = *link;
                lock_record(l, "link", LOCK_SOURCE_HUB, NULL, d);
        } else {
                l->link = *link;
                /* Adverts arrive several times a second: keep the model current, but do not
                 * wake D-Bus and MQTT listeners for noise. */
                if (abs(link->rssi - l->link_notified_rssi) < LOCK_RSSI_NOTIFY_DB &&
                    l->link_notified_usec != 0 && now - l->link_notified_usec < LOCK_LINK_NOTIFY_USEC)
                        return 0;
        }
        l->link_notified_rssi = link->rssi;
        l->link_notified_usec = now;
        lock_notify(l, LOCK_CHANGE_LINK);
        return 1;
}

static int replace_string(char **field, const char *value, bool *changed)
{
        if ((!*field && !value) || (*field && value && streq(*field, value)))
                return 0;
        if (value) {
                char *c = strdup(value);
                if (!c)
                        return -ENOMEM;
                free(*field);
                *field = c;
        } else
                *field = (free(*field), NULL);
        *changed = true;
        return 0;
}

int lock_set_info(Lock *l, const char *model, const char *firmware)
{
        _cleanup_free_ char *old_fw = l->firmware ? strdup(l->firmware) : NULL;
        bool changed = false;
        int r;

        r = replace_string(&l->model, model, &changed);
        if (r < 0)
                return r;
        r = replace_string(&l->firmware, firmware, &changed);
        if (r < 0)
                return r;
        if (!changed)
                return 0;
        lock_record(l, "firmware", LOCK_SOURCE_LOCK, NULL,
                    detail_pair("model", l->model, old_fw ? "previous_firmware" : NULL, old_fw));
        lock_notify(l, LOCK_CHANGE_INFO);
        return 1;
}

int lock_set_last_action(Lock *l, LockAction a, LockSource source, const char *actor, uint64_t time_usec)
{
        json_object *d;

        l->last_action.action = a;
        l->last_action.source = source;
        snprintf(l->last_action.actor, sizeof l->last_action.actor, "%s", strempty(actor));
        l->last_action.time_usec = time_usec;

        d = detail_pair("action", lock_action_to_string(a), actor ? "actor" : NULL, actor);
        lock_record(l, "action", source, actor, d);
        lock_notify(l, LOCK_CHANGE_LAST_ACTION);
        return 1;
}

int lock_set_needs_repair(Lock *l, bool b)
{
        if (l->needs_repair == b)
                return 0;
        l->needs_repair = b;
        lock_record(l, "pairing", LOCK_SOURCE_HUB, NULL,
                    detail_pair("status", b ? "needs-repair" : "repaired", NULL, NULL));
        lock_notify(l, LOCK_CHANGE_HEALTH);
        return 1;
}

void lock_config_changed(Lock *l)
{
        lock_notify(l, LOCK_CHANGE_CONFIG);
}

int lock_import_log_entry(Lock *l, const LockLogEntry *e)
{
        int r;

        if (!l->log_sink)
                return 0;
        r = l->log_sink(l, e, l->log_sink_userdata);
        if (r <= 0)
                return r;
        /* Entries arrive oldest first; the lock's clock may be off, so the time of the
         * last action is when the hub learnt of it. */
        if (e->is_action && e->action >= 0 && e->action < _LOCK_ACTION_MAX) {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                l->last_action.action = e->action;
                l->last_action.source = e->source;
                snprintf(l->last_action.actor, sizeof l->last_action.actor, "%s", strempty(e->actor));
                l->last_action.time_usec = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
                lock_notify(l, LOCK_CHANGE_LAST_ACTION);
        }
        return r;
}

char *lock_to_json(const Lock *l)
{
        json_object *o, *b, *link, *la;
        char *s;

        o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "address", json_object_new_string(l->address));
        json_object_object_add(o, "state", json_object_new_string(state_names[l->state]));
        json_object_object_add(o, "door", json_object_new_string(door_names[l->door]));

        b = json_object_new_object();
        json_object_object_add(b, "percent",
                               l->battery.percent >= 0 ? json_object_new_int(l->battery.percent) : NULL);
        json_object_object_add(b, "critical", json_object_new_boolean(l->battery.critical));
        json_object_object_add(b, "charging", json_object_new_boolean(l->battery.charging));
        json_object_object_add(o, "battery", b);

        link = json_object_new_object();
        json_object_object_add(link, "connected", json_object_new_boolean(l->link.connected));
        json_object_object_add(link, "reachable", json_object_new_boolean(l->link.reachable));
        json_object_object_add(link, "rssi", l->link.rssi ? json_object_new_int(l->link.rssi) : NULL);
        json_object_object_add(link, "last_seen_usec",
                               l->link.last_seen_usec ? json_object_new_uint64(l->link.last_seen_usec)
                                                      : NULL);
        json_object_object_add(o, "link", link);

        json_object_object_add(o, "model", l->model ? json_object_new_string(l->model) : NULL);
        json_object_object_add(o, "firmware", l->firmware ? json_object_new_string(l->firmware) : NULL);
        json_object_object_add(o, "needs_repair", json_object_new_boolean(l->needs_repair));

        if (l->last_action.time_usec) {
                la = json_object_new_object();
                json_object_object_add(la, "action",
                                       json_object_new_string(action_names[l->last_action.action]));
                json_object_object_add(la, "source",
                                       json_object_new_string(source_names[l->last_action.source]));
                json_object_object_add(la, "actor", json_object_new_string(l->last_action.actor));
                json_object_object_add(la, "time_usec", json_object_new_uint64(l->last_action.time_usec));
                json_object_object_add(o, "last_action", la);
        } else
                json_object_object_add(o, "last_action", NULL);

        s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return s;
}
