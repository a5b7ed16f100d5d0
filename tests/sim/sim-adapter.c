/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.bluez.Adapter1 as bluetoothd 5.66 implements it (src/adapter.c), see
 * reference/bluez.md sections 2 and 3.3:
 *
 *  - Powered: the Set reply comes when the "controller" acknowledges (power_delay);
 *    power-off first removes temporary devices, then after the reply drops every
 *    discovery session and filter, tears down links, Discovering=false, Class=0,
 *    Powered=false. Power-on only signals Powered=true and restores nothing.
 *  - Discovery sessions are per calling unique name; the scan starts with the first and
 *    stops with the last; Discovering is signalled after the StartDiscovery reply and
 *    only on real transitions. Filters are per client, survive StopDiscovery, are merged
 *    (OR) over the clients that scan, and are all dropped on power-off.
 *  - Adverts only reach D-Bus while Discovering (sim_adapter_device_found()).
 *  - A hung adapter swallows every call (the client's own timeout fires) until it is
 *    powered off and on again.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "sim-lock.h"
#include "sim.h"

#define ERR_NOT_READY   "org.bluez.Error.NotReady"
#define ERR_IN_PROGRESS "org.bluez.Error.InProgress"
#define ERR_FAILED      "org.bluez.Error.Failed"
#define ERR_INVALID     "org.bluez.Error.InvalidArguments"
#define ERR_NOT_EXIST   "org.bluez.Error.DoesNotExist"
#define ERR_BUSY        "org.bluez.Error.Busy"

struct SimDiscoveryClient {
        SimDiscoveryClient *next;
        char *owner;
        bool active;
        bool has_filter;
        char *uuids[8];
        size_t n_uuids;
        bool has_rssi;
        int16_t rssi;
        bool has_pathloss;
        uint16_t pathloss;
        bool dup;
        bool discoverable;
        char *pattern;
        sd_bus_message *start_call; /* waiting for the scan to start */
        sd_bus_message *stop_call;  /* waiting for the scan to stop */
};

static void client_clear_filter(SimDiscoveryClient *c)
{
        for (size_t i = 0; i < c->n_uuids; i++)
                free(c->uuids[i]);
        c->n_uuids = 0;
        c->pattern = mfree(c->pattern);
        c->has_filter = c->has_rssi = c->has_pathloss = c->dup = c->discoverable = false;
}

static SimDiscoveryClient *client_free(SimDiscoveryClient *c)
{
        if (!c)
                return NULL;
        client_clear_filter(c);
        sd_bus_message_unref(c->start_call);
        sd_bus_message_unref(c->stop_call);
        free(c->owner);
        free(c);
        return NULL;
}

static SimDiscoveryClient *client_find(SimAdapter *a, const char *owner)
{
        for (SimDiscoveryClient *c = a->clients; c; c = c->next)
                if (streq(c->owner, owner))
                        return c;
        return NULL;
}

static SimDiscoveryClient *client_get(SimAdapter *a, const char *owner)
{
        SimDiscoveryClient *c = client_find(a, owner);
        if (c)
                return c;
        c = calloc(1, sizeof(*c));
        if (!c)
                abort();
        c->owner = strdup(owner);
        if (!c->owner)
                abort();
        c->next = a->clients;
        a->clients = c;
        return c;
}

static void client_remove(SimAdapter *a, SimDiscoveryClient *c)
{
        for (SimDiscoveryClient **p = &a->clients; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        client_free(c);
                        return;
                }
}

static size_t n_active(SimAdapter *a)
{
        size_t n = 0;
        for (SimDiscoveryClient *c = a->clients; c; c = c->next)
                if (c->active)
                        n++;
        return n;
}

/* ---- device list ---- */

SimDevice *sim_adapter_find_device(SimAdapter *a, const char *address)
{
        for (SimDevice *d = a->devices; d; d = d->next)
                if (strcasecmp(d->address, address) == 0)
                        return d;
        return NULL;
}

static SimDevice *find_device_by_path(SimAdapter *a, const char *path)
{
        for (SimDevice *d = a->devices; d; d = d->next)
                if (streq(d->path, path))
                        return d;
        return NULL;
}

void sim_adapter_store(SimAdapter *a, const char *address)
{
        for (size_t i = 0; i < a->n_stored; i++)
                if (strcasecmp(a->stored[i], address) == 0)
                        return;
        a->stored = realloc(a->stored, (a->n_stored + 1) * sizeof(*a->stored));
        if (!a->stored)
                abort();
        snprintf(a->stored[a->n_stored++], sizeof(a->stored[0]), "%s", address);
}

void sim_adapter_forget_stored(SimAdapter *a, const char *address)
{
        for (size_t i = 0; i < a->n_stored; i++)
                if (strcasecmp(a->stored[i], address) == 0) {
                        memmove(&a->stored[i], &a->stored[i + 1],
                                (a->n_stored - i - 1) * sizeof(a->stored[0]));
                        a->n_stored--;
                        return;
                }
}

static void remove_device(SimAdapter *a, SimDevice *d)
{
        for (SimDevice **p = &a->devices; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        sim_device_free(d);
                        return;
                }
}

/* ---- hang ---- */

bool sim_adapter_swallow(SimAdapter *a, sd_bus_message *call)
{
        if (!a->hung)
                return false;
        a->held = realloc(a->held, (a->n_held + 1) * sizeof(*a->held));
        if (!a->held)
                abort();
        a->held[a->n_held++] = sd_bus_message_ref(call);
        return true;
}

static void release_held(SimAdapter *a)
{
        for (size_t i = 0; i < a->n_held; i++)
                sd_bus_message_unref(a->held[i]);
        a->held = mfree(a->held);
        a->n_held = 0;
}

void sim_adapter_hang(SimAdapter *a)
{
        a->hung = true;
        log_info("Adapter %s hangs until it is powered off and on", a->name);
}

/* ---- discovery ---- */

static void discovery_stopped(SimAdapter *a)
{
        if (a->discovering) {
                a->discovering = false;
                if (a->obj)
                        sim_obj_changed(a->obj, "org.bluez.Adapter1", "Discovering");
        }
        for (SimDevice *d = a->devices, *next; d; d = next) {
                next = d->next;
                sim_device_discovery_stopped(d);
                if (d->temporary && !d->connectable && d->link == SIM_LINK_DOWN)
                        remove_device(a, d);
        }
}

static int scan_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimAdapter *a = userdata;
        bool want;

        a->scan_timer = sd_event_source_disable_unref(a->scan_timer);
        for (SimDiscoveryClient *c = a->clients, *next; c; c = next) {
                next = c->next;
                if (c->start_call) {
                        (void) sim_reply(c->start_call, NULL);
                        c->start_call = sd_bus_message_unref(c->start_call);
                }
                if (c->stop_call) {
                        (void) sim_reply(c->stop_call, NULL);
                        c->stop_call = sd_bus_message_unref(c->stop_call);
                        c->active = false;
                }
        }
        want = n_active(a) > 0;
        if (want && !a->discovering) {
                a->discovering = true;
                sim_obj_changed(a->obj, "org.bluez.Adapter1", "Discovering");
        } else if (!want && a->discovering)
                discovery_stopped(a);
        return 0;
}

static int start_discovery(sd_bus_message *m, void *data)
{
        SimAdapter *a = data;
        const char *sender = sd_bus_message_get_sender(m);
        SimDiscoveryClient *c;

        if (sim_adapter_swallow(a, m))
                return 0;
        if (!a->powered)
                return sim_reply_error(m, ERR_NOT_READY, "Resource Not Ready");
        c = client_find(a, sender);
        if (c && (c->active || c->start_call))
                return sim_reply_error(m, ERR_IN_PROGRESS, "Operation already in progress");
        c = client_get(a, sender);
        c->active = true;
        if (a->discovering && !a->scan_timer)
                return sim_reply(m, NULL);
        c->start_call = sd_bus_message_ref(m);
        if (!a->scan_timer)
                return sim_timer(a->sim, &a->scan_timer, a->sim->t.scan_start_delay, scan_timer_handler, a);
        return 0;
}

static int stop_discovery(sd_bus_message *m, void *data)
{
        SimAdapter *a = data;
        SimDiscoveryClient *c = client_find(a, sd_bus_message_get_sender(m));

        if (sim_adapter_swallow(a, m))
                return 0;
        if (!a->powered)
                return sim_reply_error(m, ERR_NOT_READY, "Resource Not Ready");
        if (!c || !c->active)
                return sim_reply_error(m, ERR_FAILED, "No discovery started");
        if (c->stop_call)
                return sim_reply_error(m, ERR_IN_PROGRESS, "Operation already in progress");
        if (c->start_call) {
                /* started and stopped before the scan came up: answer the start first */
                (void) sim_reply(c->start_call, NULL);
                c->start_call = sd_bus_message_unref(c->start_call);
        }
        if (n_active(a) > 1) {
                c->active = false;
                return sim_reply(m, NULL);
        }
        c->stop_call = sd_bus_message_ref(m);
        return sim_timer(a->sim, &a->scan_timer, a->sim->t.scan_start_delay, scan_timer_handler, a);
}

static int normalize_uuid(const char *in, char **ret)
{
        char *end;
        size_t l = strlen(in);

        if (l == 4 || l == 8) {
                unsigned long v = strtoul(in, &end, 16);
                if (*end)
                        return -EINVAL;
                return asprintf(ret, "%08lx-0000-1000-8000-00805f9b34fb", v) < 0 ? -ENOMEM : 0;
        }
        if (l != 36)
                return -EINVAL;
        for (size_t i = 0; i < l; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? in[i] != '-' : !strchr("0123456789abcdefABCDEF", in[i]))
                        return -EINVAL;
        }
        *ret = strdup(in);
        if (!*ret)
                return -ENOMEM;
        for (char *p = *ret; *p; p++)
                if (*p >= 'A' && *p <= 'F')
                        *p = (char) (*p - 'A' + 'a');
        return 0;
}

static int parse_filter(sd_bus_message *m, SimDiscoveryClient *f)
{
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents;
                char type;

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (streq(key, "UUIDs")) {
                        if (!streq(contents, "as"))
                                return -EINVAL;
                        r = sd_bus_message_enter_container(m, 'v', "as");
                        if (r < 0)
                                return r;
                        r = sd_bus_message_enter_container(m, 'a', "s");
                        if (r < 0)
                                return r;
                        for (;;) {
                                const char *u;
                                char *n;
                                r = sd_bus_message_read(m, "s", &u);
                                if (r < 0)
                                        return r;
                                if (r == 0)
                                        break;
                                if (normalize_uuid(u, &n) < 0)
                                        return -EINVAL;
                                if (f->n_uuids >= ELEMENTSOF(f->uuids)) {
                                        free(n);
                                        continue;
                                }
                                f->uuids[f->n_uuids++] = n;
                        }
                        r = sd_bus_message_exit_container(m);
                        if (r < 0)
                                return r;
                } else if (streq(key, "RSSI")) {
                        int16_t v;
                        if (!streq(contents, "n"))
                                return -EINVAL;
                        r = sd_bus_message_read(m, "v", "n", &v);
                        if (r < 0)
                                return r;
                        if (v < -127 || v > 20)
                                return -EINVAL;
                        f->has_rssi = true;
                        f->rssi = v;
                        goto next;
                } else if (streq(key, "Pathloss")) {
                        uint16_t v;
                        if (!streq(contents, "q"))
                                return -EINVAL;
                        r = sd_bus_message_read(m, "v", "q", &v);
                        if (r < 0)
                                return r;
                        f->has_pathloss = true;
                        f->pathloss = v;
                        goto next;
                } else if (streq(key, "Transport")) {
                        const char *v;
                        if (!streq(contents, "s"))
                                return -EINVAL;
                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                return r;
                        if (!streq(v, "auto") && !streq(v, "bredr") && !streq(v, "le"))
                                return -EINVAL;
                        goto next;
                } else if (streq(key, "DuplicateData") || streq(key, "Discoverable")) {
                        int v;
                        if (!streq(contents, "b"))
                                return -EINVAL;
                        r = sd_bus_message_read(m, "v", "b", &v);
                        if (r < 0)
                                return r;
                        if (streq(key, "DuplicateData"))
                                f->dup = v;
                        else
                                f->discoverable = v;
                        goto next;
                } else if (streq(key, "Pattern")) {
                        const char *v;
                        if (!streq(contents, "s"))
                                return -EINVAL;
                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                return r;
                        free(f->pattern);
                        f->pattern = strdup(v);
                        if (!f->pattern)
                                return -ENOMEM;
                        goto next;
                } else
                        return -EINVAL;
                r = sd_bus_message_exit_container(m); /* the variant of UUIDs */
                if (r < 0)
                        return r;
        next:
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                f->has_filter = true;
        }
        if (r < 0)
                return r;
        if (f->has_rssi && f->has_pathloss)
                return -EINVAL;
        return sd_bus_message_exit_container(m);
}

static int set_discovery_filter(sd_bus_message *m, void *data)
{
        SimAdapter *a = data;
        SimDiscoveryClient tmp = { 0 }, *c;
        int r;

        if (sim_adapter_swallow(a, m))
                return 0;
        if (!a->powered)
                return sim_reply_error(m, ERR_NOT_READY, "Resource Not Ready");
        r = parse_filter(m, &tmp);
        if (r < 0) {
                client_clear_filter(&tmp);
                return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
        }
        c = client_get(a, sd_bus_message_get_sender(m));
        client_clear_filter(c);
        memcpy(c->uuids, tmp.uuids, sizeof(tmp.uuids));
        c->n_uuids = tmp.n_uuids;
        c->has_filter = tmp.has_filter;
        c->has_rssi = tmp.has_rssi;
        c->rssi = tmp.rssi;
        c->has_pathloss = tmp.has_pathloss;
        c->pathloss = tmp.pathloss;
        c->dup = tmp.dup;
        c->discoverable = tmp.discoverable;
        c->pattern = tmp.pattern;
        if (!c->has_filter && !c->active)
                client_remove(a, c);
        return sim_reply(m, NULL);
}

static int get_discovery_filters(sd_bus_message *m, void *data)
{
        SimAdapter *a = data;
        if (sim_adapter_swallow(a, m))
                return 0;
        return sim_reply(m, "as", 7, "UUIDs", "RSSI", "Pathloss", "Transport", "DuplicateData",
                         "Discoverable", "Pattern");
}

static bool filters_active(SimAdapter *a, bool *dup)
{
        bool any = false;
        *dup = false;
        for (SimDiscoveryClient *c = a->clients; c; c = c->next)
                if (c->active && c->has_filter) {
                        any = true;
                        if (c->dup)
                                *dup = true;
                }
        return any;
}

static bool client_matches(const SimDiscoveryClient *c, const SimAdvert *ad, const char *address,
                           int16_t rssi)
{
        if (!c->has_filter)
                return true;
        if (c->has_rssi && rssi < c->rssi)
                return false;
        if (c->has_pathloss && (!ad->has_tx_power || ad->tx_power - rssi > c->pathloss))
                return false;
        if (c->pattern && *c->pattern && !strneq(address, c->pattern, strlen(c->pattern)) &&
            !strneq(ad->name, c->pattern, strlen(c->pattern)))
                return false;
        if (c->n_uuids > 0) {
                bool found = false;
                for (size_t i = 0; i < c->n_uuids && !found; i++)
                        for (size_t k = 0; k < ad->n_uuids; k++)
                                if (strcasecmp(c->uuids[i], ad->uuids[k]) == 0)
                                        found = true;
                if (!found)
                        return false;
        }
        if (c->discoverable && !ad->discoverable)
                return false;
        return true;
}

void sim_adapter_device_found(SimAdapter *a, SimLock *lock, const SimAdvert *ad, int16_t rssi)
{
        bool filtered, dup = false, match = false;
        SimDevice *d;

        if (!a->registered || !a->powered || a->hung || !a->discovering)
                return;
        filtered = filters_active(a, &dup);
        d = sim_adapter_find_device(a, lock->address);
        if (!d && !filtered && !ad->discoverable)
                return;
        for (SimDiscoveryClient *c = a->clients; c; c = c->next)
                if (c->active && client_matches(c, ad, lock->address, rssi))
                        match = true;
        if (!match)
                return;
        if (!d) {
                if (sim_device_new(a, lock, lock->address, true, &d) < 0)
                        return;
                d->next = a->devices;
                a->devices = d;
                d->connectable = ad->connectable;
                sim_device_update_from_advert(d, ad, rssi, filtered, dup);
                (void) sim_device_register(d);
        } else
                sim_device_update_from_advert(d, ad, rssi, filtered, dup);
        if (d->temporary)
                sim_device_restart_expiry(d);
}

/* ---- RemoveDevice / ConnectDevice ---- */

static int remove_device_method(sd_bus_message *m, void *data)
{
        SimAdapter *a = data;
        const char *path;
        SimDevice *d;
        int r;

        if (sim_adapter_swallow(a, m))
                return 0;
        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
        d = find_device_by_path(a, path);
        if (!d)
                return sim_reply_error(m, ERR_NOT_EXIST, "Does Not Exist");
        if (!a->powered)
                return sim_reply_error(m, ERR_NOT_READY, "Resource Not Ready");
        sim_adapter_forget_stored(a, d->address);
        if (d->link != SIM_LINK_DOWN) {
                sim_device_disconnect_for_removal(d, m);
                return 0;
        }
        remove_device(a, d);
        return sim_reply(m, NULL);
}

void sim_adapter_finish_removal(SimAdapter *a, SimDevice *d)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = TAKE_PTR(d->remove_call);

        /* 5.66: the reply once the link is down, then the removal */
        if (call)
                (void) sim_reply(call, NULL);
        remove_device(a, d);
}

static int connect_device(sd_bus_message *m, void *data)
{
        SimAdapter *a = data;
        const char *address = NULL;
        SimLock *lock = NULL;
        SimDevice *d;
        int r;

        if (sim_adapter_swallow(a, m))
                return 0;
        if (!a->powered)
                return sim_reply_error(m, ERR_NOT_READY, "Resource Not Ready");
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *v;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "Address") || streq(key, "AddressType")) {
                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
                        if (streq(key, "Address"))
                                address = v;
                } else
                        return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (!address)
                return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
        if (sim_adapter_find_device(a, address))
                return sim_reply_error(m, "org.bluez.Error.AlreadyExists", "Already Exists");
        for (size_t i = 0; i < a->sim->n_locks; i++)
                if (strcasecmp(a->sim->locks[i]->address, address) == 0)
                        lock = a->sim->locks[i];
        /* a device object for the address, then a connection: an absent peer fails after
         * the LE connection timeout, with the malformed error name */
        r = sim_device_new(a, lock, address, false, &d);
        if (r < 0)
                return r;
        d->next = a->devices;
        a->devices = d;
        d->connectable = true;
        (void) sim_device_register(d);
        return sim_device_connect_device(d, m);
}

/* ---- properties ---- */

static int get_address(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", ((SimAdapter *) data)->address);
}
static int get_address_type(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", "public");
}
static int get_name(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", "lockhub-sim");
}
static int get_alias(void *data, sd_bus_message *m)
{
        SimAdapter *a = data;
        return sd_bus_message_append(m, "s", a->alias[0] ? a->alias : "lockhub-sim");
}
static int set_alias(void *data, sd_bus_message *m)
{
        SimAdapter *a = data;
        const char *v;
        int r = sd_bus_message_read(m, "s", &v);
        if (r < 0)
                return r;
        snprintf(a->alias, sizeof(a->alias), "%s", v);
        sim_obj_changed(a->obj, "org.bluez.Adapter1", "Alias");
        return sim_reply(m, NULL);
}
static int get_class(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "u", ((SimAdapter *) data)->class_);
}
static int get_powered(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimAdapter *) data)->powered);
}

static int power_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimAdapter *a = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = TAKE_PTR(a->power_call);

        a->power_timer = sd_event_source_disable_unref(a->power_timer);
        a->power_pending = false;
        if (call)
                (void) sim_reply(call, NULL);
        if (!a->power_target) {
                for (SimDiscoveryClient *c = a->clients; c; c = c->next) {
                        if (c->start_call)
                                (void) sim_reply_error(c->start_call, ERR_FAILED, "Resource Not Ready");
                        if (c->stop_call)
                                (void) sim_reply(c->stop_call, NULL);
                }
                while (a->clients) {
                        SimDiscoveryClient *c = a->clients;
                        a->clients = c->next;
                        client_free(c);
                }
                a->scan_timer = sd_event_source_disable_unref(a->scan_timer);
                for (SimDevice *d = a->devices; d; d = d->next)
                        if (d->link != SIM_LINK_DOWN)
                                sim_device_link_lost(d, "adapter powered off");
                discovery_stopped(a);
                if (a->class_) {
                        a->class_ = 0;
                        sim_obj_changed(a->obj, "org.bluez.Adapter1", "Class");
                }
                a->powered = false;
                sim_obj_changed(a->obj, "org.bluez.Adapter1", "Powered");
                if (a->hung) {
                        /* powering off resets the controller: the next power-on works */
                        a->hung = false;
                        release_held(a);
                        log_info("Adapter %s recovered by a power cycle", a->name);
                }
        } else {
                a->powered = true;
                a->class_ = 0x6c0000;
                sim_obj_changed(a->obj, "org.bluez.Adapter1", "Powered");
                sim_obj_changed(a->obj, "org.bluez.Adapter1", "Class");
        }
        return 0;
}

int sim_adapter_set_powered(SimAdapter *a, bool on, sd_bus_message *call)
{
        if (a->power_pending) {
                if (call)
                        return sim_reply_error(call, ERR_BUSY, "Operation currently not available");
                return -EBUSY;
        }
        if (on == a->powered) {
                if (call)
                        return sim_reply(call, NULL);
                return 0;
        }
        if (a->hung && on) {
                /* a hung controller does not come back without a power-off first */
                if (call)
                        return sim_adapter_swallow(a, call), 0;
                return 0;
        }
        if (!on)
                /* 5.66 removes temporary devices before it even tells the controller */
                for (SimDevice *d = a->devices, *next; d; d = next) {
                        next = d->next;
                        if (d->temporary && d->link == SIM_LINK_DOWN)
                                remove_device(a, d);
                }
        a->power_pending = true;
        a->power_target = on;
        a->power_call = call ? sd_bus_message_ref(call) : NULL;
        return sim_timer(a->sim, &a->power_timer, a->sim->t.power_delay, power_timer_handler, a);
}

static int set_powered(void *data, sd_bus_message *m)
{
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        return sim_adapter_set_powered(data, v, m);
}
static int get_discoverable(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimAdapter *) data)->discoverable);
}
static int set_discoverable(void *data, sd_bus_message *m)
{
        SimAdapter *a = data;
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        if (!a->powered)
                return sim_reply_error(m, ERR_NOT_READY, "Resource Not Ready");
        if (a->discoverable != !!v) {
                a->discoverable = v;
                sim_obj_changed(a->obj, "org.bluez.Adapter1", "Discoverable");
        }
        return sim_reply(m, NULL);
}
static int get_pairable(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimAdapter *) data)->pairable);
}
static int set_pairable(void *data, sd_bus_message *m)
{
        SimAdapter *a = data;
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        if (a->pairable != !!v) {
                a->pairable = v;
                sim_obj_changed(a->obj, "org.bluez.Adapter1", "Pairable");
        }
        return sim_reply(m, NULL);
}
static int get_timeout_180(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "u", 180);
}
static int get_timeout_0(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "u", 0);
}
static int set_timeout(void *data, sd_bus_message *m)
{
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        return sim_reply(m, NULL);
}
static int get_discovering(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimAdapter *) data)->discovering);
}
static int get_uuids(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "as", 4, "00001800-0000-1000-8000-00805f9b34fb",
                                     "00001801-0000-1000-8000-00805f9b34fb",
                                     "0000180a-0000-1000-8000-00805f9b34fb",
                                     "0000110e-0000-1000-8000-00805f9b34fb");
}
static int get_modalias(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", "usb:v1D6Bp0246d0542");
}
static int get_roles(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "as", 3, "central", "peripheral", "central-peripheral");
}
static int get_experimental(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "as", 0);
}
static bool has_experimental(void *data)
{
        return ((SimAdapter *) data)->sim->experimental;
}

static const SimProperty adapter_props[] = {
        { "Address", "s", get_address, NULL, NULL },
        { "AddressType", "s", get_address_type, NULL, NULL },
        { "Name", "s", get_name, NULL, NULL },
        { "Alias", "s", get_alias, NULL, set_alias },
        { "Class", "u", get_class, NULL, NULL },
        { "Powered", "b", get_powered, NULL, set_powered },
        { "Discoverable", "b", get_discoverable, NULL, set_discoverable },
        { "DiscoverableTimeout", "u", get_timeout_180, NULL, set_timeout },
        { "Pairable", "b", get_pairable, NULL, set_pairable },
        { "PairableTimeout", "u", get_timeout_0, NULL, set_timeout },
        { "Discovering", "b", get_discovering, NULL, NULL },
        { "UUIDs", "as", get_uuids, NULL, NULL },
        { "Modalias", "s", get_modalias, NULL, NULL },
        { "Roles", "as", get_roles, NULL, NULL },
        { "ExperimentalFeatures", "as", get_experimental, has_experimental, NULL },
        {},
};

static const SimMethod adapter_methods[] = {
        { "StartDiscovery", "", "", start_discovery },
        { "SetDiscoveryFilter", "a{sv}", "", set_discovery_filter },
        { "StopDiscovery", "", "", stop_discovery },
        { "RemoveDevice", "o", "", remove_device_method },
        { "GetDiscoveryFilters", "", "as", get_discovery_filters },
        {},
};

static const SimMethod adapter_methods_experimental[] = {
        { "StartDiscovery", "", "", start_discovery },
        { "SetDiscoveryFilter", "a{sv}", "", set_discovery_filter },
        { "StopDiscovery", "", "", stop_discovery },
        { "RemoveDevice", "o", "", remove_device_method },
        { "GetDiscoveryFilters", "", "as", get_discovery_filters },
        { "ConnectDevice", "a{sv}", "o", connect_device },
        {},
};

static const SimInterface adapter_iface = { "org.bluez.Adapter1", adapter_methods, adapter_props, NULL };
static const SimInterface adapter_iface_experimental = { "org.bluez.Adapter1", adapter_methods_experimental,
                                                         adapter_props, NULL };

static int get_adv_instances(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "y", 0);
}
static int get_adv_supported(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "y", 5);
}
static int get_adv_includes(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "as", 3, "tx-power", "appearance", "local-name");
}
static const SimProperty adv_props[] = {
        { "ActiveInstances", "y", get_adv_instances, NULL, NULL },
        { "SupportedInstances", "y", get_adv_supported, NULL, NULL },
        { "SupportedIncludes", "as", get_adv_includes, NULL, NULL },
        {},
};
static const SimMethod no_methods[] = { {} };
static const SimProperty no_props[] = { {} };
static const SimInterface gatt_manager_iface = { "org.bluez.GattManager1", no_methods, no_props, NULL };
static const SimInterface adv_manager_iface = { "org.bluez.LEAdvertisingManager1", no_methods, adv_props,
                                                NULL };

int sim_adapter_new(Sim *sim, const char *name, const char *address, SimAdapter **ret)
{
        SimAdapter *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->sim = sim;
        snprintf(a->name, sizeof(a->name), "%s", name);
        snprintf(a->path, sizeof(a->path), "/org/bluez/%s", name);
        snprintf(a->address, sizeof(a->address), "%s", address);
        a->pairable = true;
        *ret = a;
        return 0;
}

int sim_adapter_register(SimAdapter *a)
{
        SimBus *b = a->sim->bluez;
        int r;

        a->obj = sim_obj_new(b, a->path);
        r = sim_obj_add_iface(a->obj, a->sim->experimental ? &adapter_iface_experimental : &adapter_iface,
                              a);
        if (r < 0)
                return r;
        (void) sim_obj_add_iface(a->obj, &gatt_manager_iface, a);
        (void) sim_obj_add_iface(a->obj, &adv_manager_iface, a);
        a->registered = true;
        a->powered = false;
        a->class_ = 0;
        /* devices bluetoothd had stored: back without GATT objects until they connect */
        for (size_t i = 0; i < a->n_stored; i++) {
                SimDevice *d;
                SimLock *lock = NULL;
                for (size_t k = 0; k < a->sim->n_locks; k++)
                        if (strcasecmp(a->sim->locks[k]->address, a->stored[i]) == 0)
                                lock = a->sim->locks[k];
                if (sim_device_new(a, lock, a->stored[i], false, &d) < 0)
                        continue;
                d->connectable = true;
                if (lock) {
                        snprintf(d->name, sizeof(d->name), "Nuki_%08X", lock->nuki_id);
                        d->has_name = true;
                }
                d->next = a->devices;
                a->devices = d;
                (void) sim_device_register(d);
        }
        return 0;
}

void sim_adapter_unregister(SimAdapter *a, bool crash)
{
        a->scan_timer = sd_event_source_disable_unref(a->scan_timer);
        a->power_timer = sd_event_source_disable_unref(a->power_timer);
        a->power_call = sd_bus_message_unref(a->power_call);
        a->power_pending = false;
        while (a->clients) {
                SimDiscoveryClient *c = a->clients;
                a->clients = c->next;
                client_free(c);
        }
        while (a->devices) {
                SimDevice *d = a->devices;
                a->devices = d->next;
                if (!d->temporary)
                        sim_adapter_store(a, d->address);
                sim_device_free(d);
        }
        release_held(a);
        a->hung = false;
        a->obj = sim_obj_free(a->obj);
        a->registered = a->powered = a->discovering = false;
}

SimAdapter *sim_adapter_free(SimAdapter *a)
{
        if (!a)
                return NULL;
        if (a->registered)
                sim_adapter_unregister(a, true);
        free(a->stored);
        free(a);
        return NULL;
}

void sim_adapter_client_gone(SimAdapter *a, const char *owner)
{
        SimDiscoveryClient *c = client_find(a, owner);
        bool was_active;

        for (SimDevice *d = a->devices; d; d = d->next)
                sim_device_client_gone(d, owner);
        if (!c)
                return;
        was_active = c->active;
        client_remove(a, c);
        if (was_active && n_active(a) == 0 && a->discovering) {
                a->scan_timer = sd_event_source_disable_unref(a->scan_timer);
                discovery_stopped(a);
        }
}
