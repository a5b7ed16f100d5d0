/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The BlueZ client: bus plumbing, the object cache, adapters, discovery and adverts.
 * Links (connections and GATT I/O) are in bluez-link.c. The contract is in
 * include/lockhub/bluez.h.
 *
 * Start-up: four matches are added asynchronously (ObjectManager InterfacesAdded and
 * InterfacesRemoved on "/", PropertiesChanged under /org/bluez, all with
 * sender='org.bluez'; NameOwnerChanged with arg0='org.bluez'). When the bus has
 * confirmed all four, GetNameOwner tells whether bluetoothd runs; if it does,
 * GetManagedObjects fills the cache. From then on the cache follows the signals.
 *
 *   no owner ──NameOwnerChanged/GetNameOwner──▶ loading (GetManagedObjects pending;
 *      ▲                                          signals ignored: the reply is newer)
 *      │ owner lost [service_lost]                 │ reply [on_managed_objects]
 *      └──────────────────────────────────── up ◀──┘
 *
 * Discovery, per selected adapter (BluezAdapterState.discovery):
 *
 *   OFF ──wanted, powered──▶ FILTER ──reply──▶ STARTING ──ok/InProgress──▶ ON
 *    ▲  (SetDiscoveryFilter)          (StartDiscovery)                     │
 *    ├────── NotReady / error (retry after 5 s) ◀──────────────────────────┤
 *    ├────── Powered=false, or Discovering=false while ON (session lost) ◀─┤
 *    └────── reply ◀── STOPPING (StopDiscovery) ◀── not wanted any more ───┘
 */

#include <search.h>
#include <stdio.h>
#include <strings.h>

#include "bluez-internal.h"
#include "lockhub/log.h"

#define DISCOVERY_RETRY_USEC (5 * BLUEZ_USEC_PER_SEC)
#define DISCOVERY_LOST_USEC  (1 * BLUEZ_USEC_PER_SEC)
#define GMO_RETRY_USEC       (1 * BLUEZ_USEC_PER_SEC)

typedef enum PendingKind {
        PENDING_POWER_CYCLE,
        PENDING_REMOVE_DEVICE,
} PendingKind;

struct BluezPending {
        BluezClient *client;
        PendingKind kind;
        char *path; /* adapter path (power cycle) */
        unsigned step;
        unsigned n_outstanding;
        sd_bus_slot **slots;
        size_t n_slots;
        int error;
        bool retryable;
        char *err_name, *err_message;
        bluez_result_cb cb;
        void *userdata;
        LIST_FIELDS(BluezPending, pending);
};

static void discovery_sync(BluezAdapterState *s);
static int on_discovery_retry(sd_event_source *es, uint64_t usec, void *userdata);

static bool isempty(const char *s)
{
        return !s || !*s;
}

static int object_compare(const void *a, const void *b)
{
        return strcmp(((const BluezObject *) a)->path, ((const BluezObject *) b)->path);
}

BluezObject *bluez_client_find_object(BluezClient *c, const char *path)
{
        BluezObject key = { .path = (char *) path };
        void *n;

        if (!path)
                return NULL;
        n = tfind(&key, &c->index, object_compare);
        return n ? *(BluezObject **) n : NULL;
}

BluezObject *bluez_client_find_device(BluezClient *c, const char *adapter_path, const char *address)
{
        BluezObject *d;

        LIST_FOREACH (objects, d, c->objects[BLUEZ_OBJECT_DEVICE])
                if (d->address && strcasecmp(d->address, address) == 0 &&
                    bluez_path_is_below(d->path, adapter_path))
                        return d;
        return NULL;
}

BluezObject *bluez_client_find_char(BluezClient *c, const char *device_path, const char *uuid)
{
        BluezObject *ch;

        LIST_FOREACH (objects, ch, c->objects[BLUEZ_OBJECT_CHAR])
                if (bluez_uuid_equal(ch->uuid, uuid) && bluez_path_is_below(ch->path, device_path))
                        return ch;
        return NULL;
}

BluezAdapterState *bluez_client_adapter_state(BluezClient *c, const char *adapter_path)
{
        BluezAdapterState *s;

        if (!adapter_path)
                return NULL;
        LIST_FOREACH (adapters, s, c->adapter_states)
                if (streq(s->path, adapter_path))
                        return s;
        return NULL;
}

int bluez_new_call(BluezClient *c, const char *path, const char *iface, const char *member,
                   sd_bus_message **ret)
{
        return sd_bus_message_new_method_call(c->bus, ret, BLUEZ_SERVICE, path, iface, member);
}

int bluez_call(BluezClient *c, sd_bus_message *m, uint64_t timeout, sd_bus_message_handler_t cb,
               void *userdata, sd_bus_slot **ret_slot)
{
        return sd_bus_call_async(c->bus, ret_slot, m, cb, userdata, timeout);
}

int bluez_arm_timer(BluezClient *c, sd_event_source **s, uint64_t usec, sd_event_time_handler_t cb,
                    void *userdata)
{
        if (*s) {
                int r = sd_event_source_set_time_relative(*s, usec);
                if (r < 0)
                        return r;
                return sd_event_source_set_enabled(*s, SD_EVENT_ONESHOT);
        }
        return sd_event_add_time_relative(c->event, s, CLOCK_MONOTONIC, usec, 10 * 1000, cb, userdata);
}

static void timer_disarm(sd_event_source *s)
{
        if (s)
                (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

static bool timer_armed(sd_event_source *s)
{
        int enabled = SD_EVENT_OFF;

        if (!s)
                return false;
        (void) sd_event_source_get_enabled(s, &enabled);
        return enabled != SD_EVENT_OFF;
}

/* ---- adapters ------------------------------------------------------------------ */

static void adapter_info(BluezClient *c, BluezAdapterState *s, BluezAdapterInfo *ret)
{
        BluezObject *a = bluez_client_find_object(c, s->path);

        *ret = (BluezAdapterInfo){
                .name = s->name,
                .address = a ? a->address : NULL,
                .powered = a && a->powered,
                .discovering = a && a->discovering,
                .discovery_active = s->discovery == BLUEZ_DISCOVERY_ON,
                .n_links = bluez_links_count_on_adapter(c, s->path),
        };
}

static void adapter_event(BluezClient *c, BluezAdapterState *s, BluezAdapterEvent ev)
{
        BluezAdapterInfo info;

        adapter_info(c, s, &info);
        log_debug("bluez: adapter %s %s", s->name, bluez_adapter_event_to_string(ev));
        if (c->cb.adapter)
                c->cb.adapter(c, ev, &info, c->userdata);
}

static BluezAdapterState *adapter_state_free(BluezAdapterState *s)
{
        if (!s)
                return NULL;
        sd_bus_slot_unref(s->discovery_slot);
        sd_bus_slot_unref(s->refilter_slot);
        sd_event_source_disable_unref(s->discovery_retry);
        free(s->path);
        free(s->name);
        free(s);
        return NULL;
}

static void adapter_added(BluezClient *c, BluezObject *a)
{
        BluezAdapterState *s;

        a->selected = bluez_adapter_is_selected((const char *const *) c->adapters_conf, a->name, a->address);
        if (!a->selected) {
                log_info("bluez: ignoring adapter %s (%s): not selected in the configuration", a->name,
                         strna(a->address));
                return;
        }
        if (bluez_client_adapter_state(c, a->path))
                return;
        s = calloc(1, sizeof(*s));
        if (!s || !(s->path = strdup(a->path)) || !(s->name = strdup(a->name))) {
                adapter_state_free(s);
                log_error("bluez: out of memory tracking adapter %s", a->name);
                return;
        }
        s->client = c;
        LIST_PREPEND(adapters, c->adapter_states, s);
        log_info("bluez: adapter %s (%s), %s", a->name, strna(a->address), a->powered ? "powered" : "off");
        adapter_event(c, s, BLUEZ_ADAPTER_ADDED);
}

static void discovery_set_off(BluezAdapterState *s)
{
        bool was_on = s->discovery == BLUEZ_DISCOVERY_ON;

        s->discovery_slot = sd_bus_slot_unref(s->discovery_slot);
        s->discovery = BLUEZ_DISCOVERY_OFF;
        if (was_on)
                adapter_event(s->client, s, BLUEZ_ADAPTER_DISCOVERY_OFF);
}

static void adapter_changed(BluezClient *c, BluezObject *a, unsigned changed)
{
        BluezAdapterState *s = bluez_client_adapter_state(c, a->path);

        if (!s)
                return;
        if (changed & BLUEZ_PROP_POWERED) {
                log_info("bluez: adapter %s powered %s", a->name, a->powered ? "on" : "off");
                if (!a->powered)
                        /* bluetoothd dropped every session and filter (bluez.md 2.4). */
                        discovery_set_off(s);
                adapter_event(c, s, a->powered ? BLUEZ_ADAPTER_POWERED_ON : BLUEZ_ADAPTER_POWERED_OFF);
                if (a->powered)
                        bluez_links_schedule(c);
        }
        if ((changed & BLUEZ_PROP_DISCOVERING) && !a->discovering && s->discovery == BLUEZ_DISCOVERY_ON) {
                /* Discovering goes false only when no session is left, so ours is gone. */
                log_warning("bluez: discovery on %s stopped under us, restarting", a->name);
                discovery_set_off(s);
                (void) bluez_arm_timer(c, &s->discovery_retry, DISCOVERY_LOST_USEC, on_discovery_retry, s);
        }
        discovery_sync(s);
}

static void adapter_removed(BluezClient *c, const char *path)
{
        BluezAdapterState *s = bluez_client_adapter_state(c, path);

        if (!s)
                return;
        log_info("bluez: adapter %s removed", s->name);
        s->discovery_slot = sd_bus_slot_unref(s->discovery_slot);
        s->discovery = BLUEZ_DISCOVERY_OFF;
        adapter_event(c, s, BLUEZ_ADAPTER_REMOVED);
        LIST_REMOVE(adapters, c->adapter_states, s);
        adapter_state_free(s);
}

/* ---- discovery ------------------------------------------------------------------- */

static int on_discovery_retry(sd_event_source *es, uint64_t usec, void *userdata)
{
        discovery_sync(userdata);
        return 0;
}

static void discovery_failed(BluezAdapterState *s, const char *what, const sd_bus_error *e)
{
        BluezError err;

        bluez_error_from_bus(e, &err);
        s->discovery = BLUEZ_DISCOVERY_OFF;
        if (err.error == -ENETDOWN) {
                /* Powered off meanwhile: Powered=true will bring us back. */
                log_debug("bluez: %s on %s: adapter not ready", what, s->name);
                return;
        }
        log_warning_errno(err.error, "bluez: %s on %s failed (%s: %s), retrying: %m", what, s->name,
                          strna(err.name), strna(err.message));
        (void) bluez_arm_timer(s->client, &s->discovery_retry, DISCOVERY_RETRY_USEC, on_discovery_retry, s);
}

static int on_start_discovery(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezAdapterState *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        s->discovery_slot = sd_bus_slot_unref(s->discovery_slot);
        /* InProgress: this connection already has a session; that is what we want. */
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.InProgress")) {
                discovery_failed(s, "StartDiscovery", e);
                return 0;
        }
        s->discovery = BLUEZ_DISCOVERY_ON;
        log_info("bluez: discovery running on %s", s->name);
        adapter_event(s->client, s, BLUEZ_ADAPTER_DISCOVERY_ON);
        discovery_sync(s);
        return 0;
}

static void discovery_start(BluezAdapterState *s)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BluezClient *c = s->client;
        int r;

        r = bluez_new_call(c, s->path, BLUEZ_IFACE_ADAPTER, "StartDiscovery", &m);
        if (r >= 0)
                r = bluez_call(c, m, c->call_timeout, on_start_discovery, s, &s->discovery_slot);
        if (r < 0) {
                log_warning_errno(r, "bluez: cannot call StartDiscovery on %s: %m", s->name);
                s->discovery = BLUEZ_DISCOVERY_OFF;
                (void) bluez_arm_timer(c, &s->discovery_retry, DISCOVERY_RETRY_USEC, on_discovery_retry, s);
                return;
        }
        s->discovery = BLUEZ_DISCOVERY_STARTING;
}

const char *bluez_scan_mode_to_string(BluezScanMode mode)
{
        switch (mode) {
        case BLUEZ_SCAN_LE:
                return "le";
        case BLUEZ_SCAN_LE_DUPLICATES:
                return "le-duplicates";
        case BLUEZ_SCAN_QUIET:
                return "quiet";
        case _BLUEZ_SCAN_MODE_MAX:
                break;
        }
        return NULL;
}

/* The filter of each mode (include/lockhub/bluez.h). Any key at all makes bluetoothd 5.66
 * signal RSSI with every advert and create devices for non-discoverable adverts; Transport
 * le keeps a dual-mode controller from interleaving BR/EDR inquiry with the LE scan. */
static int append_filter(BluezAdapterState *s, sd_bus_message *m)
{
        s->filter_mode = s->client->scan_mode;
        switch (s->filter_mode) {
        case BLUEZ_SCAN_LE:
                return sd_bus_message_append(m, "a{sv}", 2, "Transport", "s", "le", "DuplicateData", "b", 0);
        case BLUEZ_SCAN_LE_DUPLICATES:
                return sd_bus_message_append(m, "a{sv}", 2, "Transport", "s", "le", "DuplicateData", "b", 1);
        case BLUEZ_SCAN_QUIET:
        case _BLUEZ_SCAN_MODE_MAX:
                break;
        }
        return sd_bus_message_append(m, "a{sv}", 0);
}

static void discovery_refilter(BluezAdapterState *s);

static int on_refilter(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezAdapterState *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        s->refilter_slot = sd_bus_slot_unref(s->refilter_slot);
        if (e)
                /* Not retried (it would fail the same way): the next mode change tries again. */
                log_warning("bluez: SetDiscoveryFilter (scan mode %s) on %s failed: %s: %s",
                            bluez_scan_mode_to_string(s->filter_mode), s->name, e->name, strna(e->message));
        else {
                s->duplicate_data = s->filter_mode == BLUEZ_SCAN_LE_DUPLICATES;
                log_debug("bluez: scan mode %s on %s", bluez_scan_mode_to_string(s->filter_mode), s->name);
        }
        discovery_sync(s);
        return 0;
}

/* Adapter1.SetDiscoveryFilter with the filter of the adapter's scan mode. */
static int call_set_filter(BluezAdapterState *s, sd_bus_message_handler_t done, sd_bus_slot **slot)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BluezClient *c = s->client;
        int r;

        r = bluez_new_call(c, s->path, BLUEZ_IFACE_ADAPTER, "SetDiscoveryFilter", &m);
        if (r >= 0)
                r = append_filter(s, m);
        if (r >= 0)
                r = bluez_call(c, m, c->call_timeout, done, s, slot);
        return r;
}

/* Changes the filter of a running discovery session. */
static void discovery_refilter(BluezAdapterState *s)
{
        int r;

        r = call_set_filter(s, on_refilter, &s->refilter_slot);
        if (r < 0)
                log_warning_errno(r, "bluez: cannot call SetDiscoveryFilter on %s: %m", s->name);
}

static int on_set_filter(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezAdapterState *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        s->discovery_slot = sd_bus_slot_unref(s->discovery_slot);
        s->duplicate_data = !e && s->filter_mode == BLUEZ_SCAN_LE_DUPLICATES;
        if (e) {
                BluezError err;

                bluez_error_from_bus(e, &err);
                if (err.error == -ENETDOWN) {
                        discovery_failed(s, "SetDiscoveryFilter", e);
                        return 0;
                }
                /* Without the filter BlueZ still reports discoverable adverts: go on. */
                log_warning("bluez: SetDiscoveryFilter on %s failed (%s: %s); scanning without it", s->name,
                            strna(err.name), strna(err.message));
        }
        discovery_start(s);
        return 0;
}

static void discovery_set_filter(BluezAdapterState *s)
{
        BluezClient *c = s->client;
        int r;

        r = call_set_filter(s, on_set_filter, &s->discovery_slot);
        if (r < 0) {
                log_warning_errno(r, "bluez: cannot call SetDiscoveryFilter on %s: %m", s->name);
                (void) bluez_arm_timer(c, &s->discovery_retry, DISCOVERY_RETRY_USEC, on_discovery_retry, s);
                return;
        }
        s->discovery = BLUEZ_DISCOVERY_FILTER;
}

static int on_stop_discovery(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezAdapterState *s = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        s->discovery_slot = sd_bus_slot_unref(s->discovery_slot);
        if (e)
                /* "No discovery started" or NotReady: either way we have no session. */
                log_debug("bluez: StopDiscovery on %s: %s: %s", s->name, e->name, strna(e->message));
        s->discovery = BLUEZ_DISCOVERY_ON; /* so that set_off reports the change */
        discovery_set_off(s);
        log_info("bluez: discovery stopped on %s", s->name);
        discovery_sync(s);
        return 0;
}

static void discovery_stop(BluezAdapterState *s)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BluezClient *c = s->client;
        int r;

        r = bluez_new_call(c, s->path, BLUEZ_IFACE_ADAPTER, "StopDiscovery", &m);
        if (r >= 0)
                r = bluez_call(c, m, c->call_timeout, on_stop_discovery, s, &s->discovery_slot);
        if (r < 0) {
                log_warning_errno(r, "bluez: cannot call StopDiscovery on %s: %m", s->name);
                return;
        }
        s->discovery = BLUEZ_DISCOVERY_STOPPING;
}

static void discovery_sync(BluezAdapterState *s)
{
        BluezClient *c = s->client;
        BluezObject *a = bluez_client_find_object(c, s->path);
        bool powered = a && a->powered;
        bool want = c->discovery_wanted && c->up && powered;

        switch (s->discovery) {
        case BLUEZ_DISCOVERY_OFF:
                if (want && !timer_armed(s->discovery_retry))
                        discovery_set_filter(s);
                break;
        case BLUEZ_DISCOVERY_ON:
                if (!want) {
                        if (powered && c->up)
                                discovery_stop(s);
                        else
                                discovery_set_off(s);
                } else if (s->filter_mode != c->scan_mode && !s->refilter_slot)
                        discovery_refilter(s);
                break;
        case BLUEZ_DISCOVERY_FILTER:
        case BLUEZ_DISCOVERY_STARTING:
        case BLUEZ_DISCOVERY_STOPPING:
                break; /* looked at again when the reply comes */
        case _BLUEZ_DISCOVERY_STATE_MAX:
                break;
        }
}

void bluez_client_set_scan_mode(BluezClient *c, BluezScanMode mode)
{
        BluezAdapterState *s;

        if (c->scan_mode == mode || mode < 0 || mode >= _BLUEZ_SCAN_MODE_MAX)
                return;
        c->scan_mode = mode;
        log_debug("bluez: scan mode %s", bluez_scan_mode_to_string(mode));
        LIST_FOREACH (adapters, s, c->adapter_states)
                discovery_sync(s);
}

int bluez_client_set_discovery(BluezClient *c, bool on)
{
        BluezAdapterState *s;

        c->discovery_wanted = on;
        LIST_FOREACH (adapters, s, c->adapter_states) {
                if (!on)
                        timer_disarm(s->discovery_retry);
                discovery_sync(s);
        }
        return 0;
}

/* ---- adverts -------------------------------------------------------------------- */

static BluezObject *device_adapter(BluezClient *c, BluezObject *d)
{
        BluezObject *a = bluez_client_find_object(c, d->parent);

        if (a && a->kind == BLUEZ_OBJECT_ADAPTER && bluez_path_is_below(d->path, a->path))
                return a;
        /* Adapter property not (yet) known: the path says it. */
        LIST_FOREACH (objects, a, c->objects[BLUEZ_OBJECT_ADAPTER])
                if (bluez_path_is_below(d->path, a->path))
                        return a;
        return NULL;
}

/* Is our discovery session with DuplicateData=true running on the device's adapter?
 * (Then the merged filter has DuplicateData, whatever other clients asked for.) */
static bool device_in_our_dup_session(BluezClient *c, BluezObject *d)
{
        BluezObject *a = device_adapter(c, d);
        BluezAdapterState *s = a ? bluez_client_adapter_state(c, a->path) : NULL;

        return s && s->discovery == BLUEZ_DISCOVERY_ON && s->duplicate_data;
}

static void deliver_advert(BluezClient *c, BluezObject *d)
{
        BluezObject *a;
        BluezAdvert adv;

        if (!c->cb.advert || !d->address)
                return;
        a = device_adapter(c, d);
        if (!a || !a->selected)
                return;
        adv = (BluezAdvert){
                .adapter = a->name,
                .address = d->address,
                .address_type = d->address_type,
                .name = d->name,
                .has_rssi = d->has_rssi,
                .rssi = d->rssi,
                .has_tx_power = d->has_tx_power,
                .tx_power = d->tx_power,
                .connected = d->connected,
                .paired = d->paired,
                .manufacturer_data = d->mfr,
                .n_manufacturer_data = d->n_mfr,
                .service_data = d->sd,
                .n_service_data = d->n_sd,
                .uuids = d->uuids,
        };
        c->cb.advert(c, &adv, c->userdata);
}

/* ---- the cache ---------------------------------------------------------------- */

static int object_add(BluezClient *c, BluezObject *o)
{
        void *n = tsearch(o, &c->index, object_compare);

        if (!n)
                return -ENOMEM;
        if (*(BluezObject **) n != o)
                return -EEXIST;
        LIST_PREPEND(objects, c->objects[o->kind], o);
        return 0;
}

static void object_remove(BluezClient *c, BluezObject *o)
{
        tdelete(o, &c->index, object_compare);
        LIST_REMOVE(objects, c->objects[o->kind], o);
        bluez_object_free(o);
}

/* Removes every object below path (any kind), children of removed objects included. */
static void objects_remove_below(BluezClient *c, const char *path)
{
        for (int k = _BLUEZ_OBJECT_KIND_MAX - 1; k >= 0; k--) {
                BluezObject *o, *n;

                LIST_FOREACH_SAFE(objects, o, n, c->objects[k])
                if (bluez_path_is_below(o->path, path)) {
                        if (o->kind == BLUEZ_OBJECT_DEVICE)
                                bluez_links_device_removed(c, o->path);
                        object_remove(c, o);
                }
        }
}

static void cache_drop(BluezClient *c)
{
        for (int k = 0; k < _BLUEZ_OBJECT_KIND_MAX; k++) {
                BluezObject *o, *n;

                LIST_FOREACH_SAFE(objects, o, n, c->objects[k])
                object_remove(c, o);
        }
}

/* After an object gained an interface or changed properties (not during the
 * GetManagedObjects snapshot). */
static void object_changed(BluezClient *c, BluezObject *o, bool is_new, unsigned changed,
                           const BluezValue *value)
{
        switch (o->kind) {
        case BLUEZ_OBJECT_ADAPTER:
                if (is_new) {
                        adapter_added(c, o);
                        BluezAdapterState *s = bluez_client_adapter_state(c, o->path);
                        if (s)
                                discovery_sync(s);
                        bluez_links_schedule(c);
                } else
                        adapter_changed(c, o, changed);
                break;
        case BLUEZ_OBJECT_DEVICE:
                if ((is_new && o->has_rssi) || (!is_new && (changed & BLUEZ_PROPS_ADVERT)))
                        deliver_advert(c, o);
                if (is_new)
                        bluez_links_schedule(c);
                else
                        bluez_links_device_changed(c, o, changed);
                break;
        case BLUEZ_OBJECT_SERVICE:
                break;
        case BLUEZ_OBJECT_CHAR:
                if (is_new)
                        bluez_links_char_added(c, o);
                if (value && value->present)
                        bluez_links_value(c, o, value);
                break;
        case _BLUEZ_OBJECT_KIND_MAX:
                break;
        }
}

/* Reads a{sa{sv}} for `path`. snapshot: part of GetManagedObjects (no hooks). */
static int parse_interfaces(BluezClient *c, const char *path, sd_bus_message *m, bool snapshot)
{
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sa{sv}}");
        if (r < 0)
                return r;
        for (;;) {
                const char *iface;
                BluezObject *o;
                unsigned changed = 0;
                BluezValue value;
                int kind;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sa{sv}");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &iface);
                if (r < 0)
                        return r;
                kind = bluez_object_kind_from_interface(iface);
                o = bluez_client_find_object(c, path);
                if (kind < 0 || (o && o->kind != (BluezObjectKind) kind)) {
                        r = sd_bus_message_skip(m, "a{sv}");
                        if (r < 0)
                                return r;
                } else {
                        bool is_new = false;

                        if (!o) {
                                o = bluez_object_new(kind, path);
                                if (!o)
                                        return -ENOMEM;
                                r = object_add(c, o);
                                if (r < 0) {
                                        bluez_object_free(o);
                                        return r;
                                }
                                is_new = true;
                        }
                        r = bluez_object_parse_props(o, m, &changed, &value);
                        if (r < 0)
                                return r;
                        if (!snapshot)
                                object_changed(c, o, is_new, changed, &value);
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(m);
}

static bool from_owner(BluezClient *c, sd_bus_message *m)
{
        const char *sender = sd_bus_message_get_sender(m);

        /* While GetManagedObjects is pending its reply supersedes every signal. */
        return c->owner && sender && streq(sender, c->owner) && c->up;
}

static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezClient *c = userdata;
        const char *path;
        int r;

        if (!from_owner(c, m))
                return 0;
        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = parse_interfaces(c, path, m, false);
        if (r < 0)
                log_warning_errno(r, "bluez: bad InterfacesAdded: %m");
        return 0;
}

static int on_interfaces_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezClient *c = userdata;
        _cleanup_free_ char **ifaces = NULL;
        const char *path;
        BluezObject *o;
        bool gone = false;
        int r;

        if (!from_owner(c, m))
                return 0;
        r = sd_bus_message_read(m, "o", &path);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &ifaces);
        if (r < 0) {
                log_warning_errno(r, "bluez: bad InterfacesRemoved: %m");
                return 0;
        }
        o = bluez_client_find_object(c, path);
        for (char **i = ifaces; i && *i; i++) {
                if (o && streq(*i, bluez_object_kind_interface(o->kind)))
                        gone = true;
                free(*i);
        }
        if (!gone)
                return 0;

        /* bluetoothd does not promise children first: take the subtree with it. */
        objects_remove_below(c, path);
        switch (o->kind) {
        case BLUEZ_OBJECT_ADAPTER:
                object_remove(c, o);
                adapter_removed(c, path);
                break;
        case BLUEZ_OBJECT_DEVICE:
                object_remove(c, o);
                bluez_links_device_removed(c, path);
                break;
        case BLUEZ_OBJECT_SERVICE:
        case BLUEZ_OBJECT_CHAR:
        case _BLUEZ_OBJECT_KIND_MAX:
                object_remove(c, o);
                break;
        }
        return 0;
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezClient *c = userdata;
        _cleanup_free_ char **invalidated = NULL;
        const char *iface, *path = sd_bus_message_get_path(m);
        BluezObject *o;
        unsigned changed = 0, inv_changed;
        BluezValue value;
        int r;

        if (!from_owner(c, m))
                return 0;
        o = bluez_client_find_object(c, path);
        if (!o)
                return 0;
        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0)
                goto bad;
        if (!streq(iface, bluez_object_kind_interface(o->kind)))
                return 0;
        r = bluez_object_parse_props(o, m, &changed, &value);
        if (r < 0)
                goto bad;
        r = sd_bus_message_read_strv(m, &invalidated);
        if (r < 0)
                goto bad;
        if (o->kind == BLUEZ_OBJECT_DEVICE && device_in_our_dup_session(c, o))
                changed |= bluez_device_advert_fixup(o, changed);
        /* An invalidated RSSI (discovery ended) is no sighting: no advert for it. */
        inv_changed = 0;
        bluez_object_invalidate(o, invalidated, &inv_changed);
        for (char **i = invalidated; i && *i; i++)
                free(*i);
        if (!(changed & BLUEZ_PROPS_ADVERT))
                inv_changed &= ~BLUEZ_PROPS_ADVERT;
        object_changed(c, o, false, changed | inv_changed, &value);
        return 0;
bad:
        log_warning_errno(r, "bluez: bad PropertiesChanged on %s: %m", strna(path));
        return 0;
}

/* ---- bluetoothd coming and going ---------------------------------------------- */

static void service_appeared(BluezClient *c, const char *owner);

static void service_lost(BluezClient *c)
{
        BluezAdapterState *s, *n;
        bool was_up = c->up;

        log_notice("bluez: bluetoothd (%s) went away; dropping every BlueZ object", strna(c->owner));
        free(c->owner);
        c->owner = NULL;
        c->up = false;
        c->gmo_slot = sd_bus_slot_unref(c->gmo_slot);
        timer_disarm(c->gmo_retry);

        LIST_FOREACH_SAFE(adapters, s, n, c->adapter_states)
        adapter_removed(c, s->path);
        cache_drop(c);
        bluez_links_service_lost(c);
        if (was_up && c->cb.service)
                c->cb.service(c, false, c->userdata);
}

static int on_managed_objects(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezClient *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        BluezObject *a;
        BluezAdapterState *s;
        int r;

        c->gmo_slot = sd_bus_slot_unref(c->gmo_slot);
        if (e) {
                log_warning("bluez: GetManagedObjects failed (%s: %s), retrying", e->name,
                            strna(e->message));
                (void) bluez_arm_timer(c, &c->gmo_retry, GMO_RETRY_USEC, NULL, NULL);
                return 0;
        }

        r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "{oa{sa{sv}}}");
        while (r >= 0) {
                const char *path;

                r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_DICT_ENTRY, "oa{sa{sv}}");
                if (r <= 0)
                        break;
                r = sd_bus_message_read(reply, "o", &path);
                if (r < 0)
                        break;
                r = parse_interfaces(c, path, reply, true);
                if (r < 0)
                        break;
                r = sd_bus_message_exit_container(reply);
        }
        if (r < 0) {
                log_warning_errno(r, "bluez: bad GetManagedObjects reply, retrying: %m");
                cache_drop(c);
                (void) bluez_arm_timer(c, &c->gmo_retry, GMO_RETRY_USEC, NULL, NULL);
                return 0;
        }

        c->up = true;
        log_info("bluez: bluetoothd (%s) is up", c->owner);
        if (c->cb.service)
                c->cb.service(c, true, c->userdata);
        LIST_FOREACH (objects, a, c->objects[BLUEZ_OBJECT_ADAPTER])
                adapter_added(c, a);
        LIST_FOREACH (adapters, s, c->adapter_states)
                discovery_sync(s);
        bluez_links_schedule(c);
        return 0;
}

static void load_objects(BluezClient *c)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        c->gmo_slot = sd_bus_slot_unref(c->gmo_slot);
        r = bluez_new_call(c, "/", DBUS_IFACE_OM, "GetManagedObjects", &m);
        if (r >= 0)
                r = bluez_call(c, m, c->call_timeout, on_managed_objects, c, &c->gmo_slot);
        if (r < 0) {
                log_warning_errno(r, "bluez: cannot call GetManagedObjects, retrying: %m");
                (void) bluez_arm_timer(c, &c->gmo_retry, GMO_RETRY_USEC, NULL, NULL);
        }
}

static int on_gmo_retry(sd_event_source *es, uint64_t usec, void *userdata)
{
        BluezClient *c = userdata;

        if (c->owner && !c->up && !c->gmo_slot)
                load_objects(c);
        return 0;
}

static void service_appeared(BluezClient *c, const char *owner)
{
        if (c->owner && streq(c->owner, owner))
                return;
        if (c->owner)
                service_lost(c);
        c->owner = strdup(owner);
        if (!c->owner) {
                log_error("bluez: out of memory");
                return;
        }
        log_info("bluez: org.bluez is owned by %s, loading objects", owner);
        load_objects(c);
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        BluezClient *c = userdata;
        const char *name, *old_owner, *new_owner;
        int r;

        r = sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner);
        if (r < 0 || !streq(name, BLUEZ_SERVICE))
                return 0;
        /* From now on the signals tell us everything; an answer to GetNameOwner would
         * be older than this. */
        c->owner_slot = sd_bus_slot_unref(c->owner_slot);
        if (c->owner && (isempty(new_owner) || !streq(c->owner, new_owner)))
                service_lost(c);
        if (!isempty(new_owner))
                service_appeared(c, new_owner);
        return 0;
}

static int on_get_name_owner(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezClient *c = userdata;
        const char *owner;

        c->owner_slot = sd_bus_slot_unref(c->owner_slot);
        if (sd_bus_message_is_method_error(reply, NULL)) {
                log_info("bluez: bluetoothd is not running; waiting for it");
                return 0;
        }
        if (sd_bus_message_read(reply, "s", &owner) >= 0)
                service_appeared(c, owner);
        return 0;
}

static int on_match_installed(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezClient *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int r;

        if (e) {
                /* Without the matches the cache would go stale silently: say so loudly. */
                log_error("bluez: cannot add a D-Bus match (%s: %s); BlueZ state will not be followed",
                          e->name, strna(e->message));
                return 0;
        }
        if (++c->n_matches_installed < ELEMENTSOF(c->match_slots))
                return 0;
        r = sd_bus_call_method_async(c->bus, &c->owner_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                     "org.freedesktop.DBus", "GetNameOwner", on_get_name_owner, c, "s",
                                     BLUEZ_SERVICE);
        if (r < 0)
                log_error_errno(r, "bluez: cannot call GetNameOwner: %m");
        return 0;
}

int bluez_client_start(BluezClient *c)
{
        static const char *const rules[] = {
                "type='signal',sender='org.bluez',path='/',interface='org.freedesktop.DBus.ObjectManager',"
                "member='InterfacesAdded'",
                "type='signal',sender='org.bluez',path='/',interface='org.freedesktop.DBus.ObjectManager',"
                "member='InterfacesRemoved'",
                "type='signal',sender='org.bluez',interface='org.freedesktop.DBus.Properties',"
                "member='PropertiesChanged',path_namespace='/org/bluez'",
                "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.bluez'",
        };
        static const sd_bus_message_handler_t handlers[] = {
                on_interfaces_added,
                on_interfaces_removed,
                on_properties_changed,
                on_name_owner_changed,
        };

        if (c->started)
                return -EALREADY;
        for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
                int r = sd_bus_add_match_async(c->bus, &c->match_slots[i], rules[i], handlers[i],
                                               on_match_installed, c);
                if (r < 0)
                        return log_error_errno(r, "bluez: cannot add D-Bus match: %m");
        }
        c->started = true;
        return 0;
}

/* ---- power cycle, remove device --------------------------------------------- */

static BluezPending *pending_free(BluezPending *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_slots; i++)
                sd_bus_slot_unref(p->slots[i]);
        free(p->slots);
        free(p->path);
        free(p->err_name);
        free(p->err_message);
        free(p);
        return NULL;
}

static void pending_finish(BluezPending *p)
{
        BluezClient *c = p->client;
        BluezError err = {
                .error = p->error,
                .retryable = p->retryable,
                .name = p->err_name,
                .message = p->err_message,
        };

        LIST_REMOVE(pending, c->pending, p);
        if (p->cb)
                p->cb(c, p->error < 0 ? &err : NULL, p->userdata);
        pending_free(p);
}

static void pending_record_error(BluezPending *p, const sd_bus_error *e)
{
        BluezError err;

        if (p->error < 0)
                return; /* keep the first */
        bluez_error_from_bus(e, &err);
        p->error = err.error;
        p->retryable = err.retryable;
        p->err_name = err.name ? strdup(err.name) : NULL;
        p->err_message = err.message ? strdup(err.message) : NULL;
}

static BluezPending *pending_new(BluezClient *c, PendingKind kind, size_t n_slots, bluez_result_cb cb,
                                 void *userdata)
{
        BluezPending *p = calloc(1, sizeof(*p));

        if (!p)
                return NULL;
        p->slots = calloc(n_slots ? n_slots : 1, sizeof(sd_bus_slot *));
        if (!p->slots)
                return pending_free(p);
        p->client = c;
        p->kind = kind;
        p->cb = cb;
        p->userdata = userdata;
        LIST_PREPEND(pending, c->pending, p);
        return p;
}

static int power_set(BluezPending *p, bool on);

static int on_power_set(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezPending *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        p->slots[0] = sd_bus_slot_unref(p->slots[0]);
        if (e) {
                pending_record_error(p, e);
                log_warning("bluez: setting Powered=%s on %s failed: %s: %s",
                            p->step == 0 ? "false" : "true", p->path, e->name, strna(e->message));
                pending_finish(p);
                return 0;
        }
        if (p->step == 0) {
                int r;

                p->step = 1;
                r = power_set(p, true);
                if (r < 0) {
                        p->error = r;
                        pending_finish(p);
                }
                return 0;
        }
        log_info("bluez: adapter %s power-cycled", strrchr(p->path, '/') + 1);
        pending_finish(p);
        return 0;
}

static int power_set(BluezPending *p, bool on)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BluezClient *c = p->client;
        int r;

        r = bluez_new_call(c, p->path, DBUS_IFACE_PROPERTIES, "Set", &m);
        if (r >= 0)
                r = sd_bus_message_append(m, "ssv", BLUEZ_IFACE_ADAPTER, "Powered", "b", (int) on);
        if (r >= 0)
                r = bluez_call(c, m, c->call_timeout, on_power_set, p, &p->slots[0]);
        return r;
}

int bluez_client_power_cycle(BluezClient *c, const char *adapter, bluez_result_cb cb, void *userdata)
{
        BluezAdapterState *s;
        BluezPending *p;
        int r;

        LIST_FOREACH (adapters, s, c->adapter_states)
                if (streq(s->name, adapter))
                        break;
        if (!s)
                return -ENODEV;
        p = pending_new(c, PENDING_POWER_CYCLE, 1, cb, userdata);
        if (!p)
                return -ENOMEM;
        p->path = strdup(s->path);
        if (!p->path) {
                LIST_REMOVE(pending, c->pending, p);
                pending_free(p);
                return -ENOMEM;
        }
        log_notice("bluez: power-cycling adapter %s", adapter);
        r = power_set(p, false);
        if (r < 0) {
                LIST_REMOVE(pending, c->pending, p);
                pending_free(p);
                return r;
        }
        return 0;
}

static int on_remove_device(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezPending *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        for (size_t i = 0; i < p->n_slots; i++)
                if (p->slots[i] == sd_bus_get_current_slot(p->client->bus))
                        p->slots[i] = sd_bus_slot_unref(p->slots[i]);
        /* Already gone is what we wanted. */
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.DoesNotExist") &&
            !sd_bus_error_has_name(e, "org.freedesktop.DBus.Error.UnknownObject")) {
                log_warning("bluez: RemoveDevice failed: %s: %s", e->name, strna(e->message));
                pending_record_error(p, e);
        }
        if (--p->n_outstanding == 0)
                pending_finish(p);
        return 0;
}

const char *bluez_client_device_adapter(BluezClient *c, const char *address)
{
        BluezAdapterState *s;
        const char *found = NULL;

        if (!c || !address)
                return NULL;
        LIST_FOREACH (adapters, s, c->adapter_states) {
                BluezObject *d = bluez_client_find_device(c, s->path, address);

                if (!d)
                        continue;
                if (d->connected)
                        return s->name;
                if (!found)
                        found = s->name;
        }
        return found;
}

int bluez_client_remove_device(BluezClient *c, const char *address, bluez_result_cb cb, void *userdata)
{
        BluezAdapterState *s;
        BluezPending *p;
        size_t n = 0;
        int r;

        LIST_FOREACH (adapters, s, c->adapter_states)
                if (bluez_client_find_device(c, s->path, address))
                        n++;
        if (n == 0)
                return -ENOENT;
        p = pending_new(c, PENDING_REMOVE_DEVICE, n, cb, userdata);
        if (!p)
                return -ENOMEM;
        LIST_FOREACH (adapters, s, c->adapter_states) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                BluezObject *d = bluez_client_find_device(c, s->path, address);

                if (!d)
                        continue;
                log_notice("bluez: removing device %s from %s", address, s->name);
                r = bluez_new_call(c, s->path, BLUEZ_IFACE_ADAPTER, "RemoveDevice", &m);
                if (r >= 0)
                        r = sd_bus_message_append(m, "o", d->path);
                if (r >= 0)
                        r = bluez_call(c, m, c->call_timeout, on_remove_device, p, &p->slots[p->n_slots]);
                if (r < 0) {
                        if (p->n_outstanding == 0) {
                                LIST_REMOVE(pending, c->pending, p);
                                pending_free(p);
                                return r;
                        }
                        p->error = r;
                        break;
                }
                p->n_slots++;
                p->n_outstanding++;
        }
        return 0;
}

/* ---- life cycle ------------------------------------------------------------------- */

static int on_event_exit(sd_event_source *s, void *userdata)
{
        bluez_links_exiting(userdata);
        return 0;
}

int bluez_client_new(sd_event *event, sd_bus *bus, const BluezConfig *config, const BluezCallbacks *cb,
                     void *userdata, BluezClient **ret)
{
        _cleanup_(bluez_client_freep) BluezClient *c = NULL;
        BluezConfig defaults = {};
        size_t n = 0;
        int r;

        if (!event || !ret)
                return -EINVAL;
        if (!config)
                config = &defaults;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        if (cb)
                c->cb = *cb;
        c->userdata = userdata;
        c->max_connections = config->max_connections ?: BLUEZ_MAX_CONNECTIONS_DEFAULT;
        c->connect_timeout = config->connect_timeout_usec ?: BLUEZ_CONNECT_TIMEOUT_USEC_DEFAULT;
        c->resolve_timeout = config->resolve_timeout_usec ?: BLUEZ_RESOLVE_TIMEOUT_USEC_DEFAULT;
        c->call_timeout = config->call_timeout_usec ?: BLUEZ_CALL_TIMEOUT_USEC_DEFAULT;
        c->idle_timeout = config->idle_disconnect_usec;
        c->queue_timeout = config->queue_timeout_usec ?: BLUEZ_QUEUE_TIMEOUT_USEC_DEFAULT;
        c->connect_attempts = config->connect_attempts ?: BLUEZ_CONNECT_ATTEMPTS_DEFAULT;

        for (const char *const *i = config->adapters; i && *i; i++)
                n++;
        if (n > 0) {
                c->adapters_conf = calloc(n + 1, sizeof(char *));
                if (!c->adapters_conf)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++)
                        if (!(c->adapters_conf[i] = strdup(config->adapters[i])))
                                return -ENOMEM;
        }

        if (bus)
                c->bus = sd_bus_ref(bus);
        else {
                r = sd_bus_open_system_with_description(&c->bus, "bluez");
                if (r < 0)
                        return r;
                c->own_bus = true;
        }
        if (!sd_bus_get_event(c->bus)) {
                r = sd_bus_attach_event(c->bus, event, SD_EVENT_PRIORITY_NORMAL);
                if (r < 0)
                        return r;
        }
        /* Before sd-bus's own exit source (which closes the bus). */
        r = sd_event_add_exit(event, &c->exit_source, on_event_exit, c);
        if (r < 0)
                return r;
        r = sd_event_source_set_priority(c->exit_source, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(event, &c->gmo_retry, CLOCK_MONOTONIC, GMO_RETRY_USEC, 10 * 1000,
                                       on_gmo_retry, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(c->gmo_retry, SD_EVENT_OFF);

        *ret = TAKE_PTR(c);
        return 0;
}

static void noop_free(void *p)
{
}

BluezClient *bluez_client_free(BluezClient *c)
{
        BluezAdapterState *s, *sn;
        BluezPending *p, *pn;

        if (!c)
                return NULL;
        bluez_links_client_freed(c);
        LIST_FOREACH_SAFE(pending, p, pn, c->pending)
        {
                LIST_REMOVE(pending, c->pending, p);
                pending_free(p);
        }
        LIST_FOREACH_SAFE(adapters, s, sn, c->adapter_states)
        {
                LIST_REMOVE(adapters, c->adapter_states, s);
                adapter_state_free(s);
        }
        tdestroy(c->index, noop_free);
        c->index = NULL;
        for (int k = 0; k < _BLUEZ_OBJECT_KIND_MAX; k++) {
                BluezObject *o, *n;

                LIST_FOREACH_SAFE(objects, o, n, c->objects[k])
                bluez_object_free(o);
        }
        for (size_t i = 0; i < ELEMENTSOF(c->match_slots); i++)
                sd_bus_slot_unref(c->match_slots[i]);
        sd_bus_slot_unref(c->owner_slot);
        sd_bus_slot_unref(c->gmo_slot);
        sd_event_source_disable_unref(c->gmo_retry);
        sd_event_source_disable_unref(c->schedule_defer);
        sd_event_source_disable_unref(c->exit_source);
        free(c->owner);
        for (char **i = c->adapters_conf; i && *i; i++)
                free(*i);
        free(c->adapters_conf);
        if (c->own_bus)
                sd_bus_flush_close_unref(c->bus);
        else
                sd_bus_unref(c->bus);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

sd_bus *bluez_client_get_bus(BluezClient *c)
{
        return c->bus;
}

bool bluez_client_is_up(BluezClient *c)
{
        return c->up;
}

int bluez_client_get_adapter(BluezClient *c, size_t i, BluezAdapterInfo *ret)
{
        BluezAdapterState *s;

        LIST_FOREACH (adapters, s, c->adapter_states)
                if (i-- == 0) {
                        adapter_info(c, s, ret);
                        return 0;
                }
        return -ENOENT;
}
