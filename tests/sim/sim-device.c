/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * org.bluez.Device1 and the GATT client objects (GattService1, GattCharacteristic1,
 * GattDescriptor1) as bluetoothd 5.66 exports them (src/device.c, src/gatt-client.c),
 * see reference/bluez.md sections 3 and 4.
 *
 * Link state machine (SimDevice.link), one function per transition:
 *
 *   DOWN --Connect()--> CONNECTING --link_up()--> UP --Disconnect()--> DISCONNECTING
 *     ^                     |  timeout: connect_failed()    |               |
 *     |                     |  Disconnect(): canceled       | link_lost()   | link_down()
 *     +---------------------+-------------------------------+---------------+
 *
 *  - Connect replies when the link is up (Connected=true flushed just before the reply),
 *    then GATT discovery exports the objects (parents first), and only after that
 *    ServicesResolved=true; any LE failure is Failed "le-connection-abort-by-local".
 *  - Disconnect: ServicesResolved=false at once, the link drops after the 2 s
 *    DISCONNECT_TIMER, then the reply, then Connected=false.
 *  - Link loss: ServicesResolved and Connected false in one PropertiesChanged; pending
 *    GATT calls fail with ATT error 0x0e.
 *  - GATT objects stay after disconnect (Cache=always) and go with the device. If the
 *    lock's table changed without Service Changed, the cached handles are stale and
 *    every ATT operation on them fails (ATT 0x01) until the device is removed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "sim-lock.h"
#include "sim.h"

#define IFACE_DEVICE  "org.bluez.Device1"
#define IFACE_SERVICE "org.bluez.GattService1"
#define IFACE_CHR     "org.bluez.GattCharacteristic1"
#define IFACE_DESC    "org.bluez.GattDescriptor1"

#define ERR_FAILED      "org.bluez.Error.Failed"
#define ERR_IN_PROGRESS "org.bluez.Error.InProgress"
#define ERR_NOT_READY   "org.bluez.Error.NotReady"
#define ERR_INVALID     "org.bluez.Error.InvalidArguments"
#define ERR_NOT_SUPP    "org.bluez.Error.NotSupported"
#define ERR_NOT_PERM    "org.bluez.Error.NotPermitted"

#define CCCD_UUID "00002902-0000-1000-8000-00805f9b34fb"

typedef struct SimIndication {
        struct SimIndication *next;
        int chr;
        size_t len;
        uint8_t data[];
} SimIndication;

typedef struct NotifySession {
        char *owner;
        sd_bus_message *pending; /* StartNotify waiting for the CCCD write */
} NotifySession;

typedef struct SimGattDesc {
        SimGattChr *chr;
        uint16_t handle;
        char path[128];
        SimObj *obj;
} SimGattDesc;

struct SimGattChr {
        SimGattSvc *svc;
        const SimGattChrDef *def;
        uint16_t handle;
        char path[112];
        SimObj *obj;
        bool has_value;
        uint8_t value[512];
        size_t value_len;
        bool notifying;
        NotifySession *sessions;
        size_t n_sessions;
        sd_event_source *cccd_timer;
        sd_bus_message *write_call;
        uint8_t *write_buf;
        size_t write_len;
        sd_event_source *write_timer;
        sd_bus_message **read_calls;
        size_t n_read_calls;
        uint16_t read_offset;
        sd_event_source *read_timer;
        SimGattDesc *desc; /* CCCD, if notify or indicate */
};

struct SimGattSvc {
        SimGattSvc *next;
        SimDevice *dev;
        const SimGattSvcDef *def;
        uint16_t handle;
        char path[96];
        SimObj *obj;
        SimGattChr *chrs[4];
        size_t n_chrs;
};

static Sim *dev_sim(SimDevice *d)
{
        return d->adapter->sim;
}

static bool gatt_stale(SimDevice *d)
{
        return d->lock && d->gatt_generation != d->lock->gatt_generation;
}

/* ATT error → D-Bus error, the client-side mapping of src/gatt-client.c */
static int reply_att_error(sd_bus_message *m, uint8_t att)
{
        switch (att) {
        case 0x02:
                return sim_reply_error(m, ERR_NOT_PERM, "Read not permitted");
        case 0x03:
                return sim_reply_error(m, ERR_NOT_PERM, "Write not permitted");
        case 0x05:
        case 0x0c:
        case 0x0f:
                return sim_reply_error(m, ERR_NOT_PERM, "Not paired");
        case 0x07:
                return sim_reply_error(m, ERR_INVALID, "Invalid offset");
        case 0x0d:
                return sim_reply_error(m, ERR_INVALID, "Invalid Length");
        case 0x08:
                return sim_reply_error(m, "org.bluez.Error.NotAuthorized", "Operation Not Authorized");
        case 0x06:
                return sim_reply_error(m, ERR_NOT_SUPP, "Operation is not supported");
        default:
                return sim_reply_error(m, ERR_FAILED, "Operation failed with ATT error: 0x%02x", att);
        }
}

/* ---- Device1 properties ---- */

static int get_address(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", ((SimDevice *) data)->address);
}
static int get_address_type(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", "public");
}
static int get_name(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", ((SimDevice *) data)->name);
}
static bool has_name(void *data)
{
        return ((SimDevice *) data)->has_name;
}
static int get_alias(void *data, sd_bus_message *m)
{
        SimDevice *d = data;
        char buf[18];

        if (d->alias)
                return sd_bus_message_append(m, "s", d->alias);
        if (d->has_name)
                return sd_bus_message_append(m, "s", d->name);
        snprintf(buf, sizeof(buf), "%s", d->address);
        for (char *p = buf; *p; p++)
                if (*p == ':')
                        *p = '-';
        return sd_bus_message_append(m, "s", buf);
}
static int set_alias(void *data, sd_bus_message *m)
{
        SimDevice *d = data;
        const char *v;
        int r = sd_bus_message_read(m, "s", &v);
        if (r < 0)
                return r;
        d->alias = mfree(d->alias);
        if (*v) {
                d->alias = strdup(v);
                if (!d->alias)
                        return -ENOMEM;
        }
        sim_obj_changed(d->obj, IFACE_DEVICE, "Alias");
        return sim_reply(m, NULL);
}
static int get_paired(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimDevice *) data)->paired);
}
static int get_bonded(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimDevice *) data)->bonded);
}
static int get_trusted(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimDevice *) data)->trusted);
}
static int set_trusted(void *data, sd_bus_message *m)
{
        SimDevice *d = data;
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        if (d->trusted != !!v) {
                d->trusted = v;
                sim_obj_changed(d->obj, IFACE_DEVICE, "Trusted");
        }
        return sim_reply(m, NULL);
}
static int get_blocked(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimDevice *) data)->blocked);
}
static int set_blocked(void *data, sd_bus_message *m)
{
        SimDevice *d = data;
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        if (d->blocked != !!v) {
                d->blocked = v;
                sim_obj_changed(d->obj, IFACE_DEVICE, "Blocked");
                if (v && d->link != SIM_LINK_DOWN)
                        sim_device_link_lost(d, "blocked");
        }
        return sim_reply(m, NULL);
}
static int get_false(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", false);
}
static int get_rssi(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "n", ((SimDevice *) data)->rssi);
}
static bool has_rssi(void *data)
{
        return ((SimDevice *) data)->has_rssi;
}
static int get_tx_power(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "n", ((SimDevice *) data)->tx_power);
}
static bool has_tx_power(void *data)
{
        return ((SimDevice *) data)->has_tx_power;
}
static int get_connected(void *data, sd_bus_message *m)
{
        SimDevice *d = data;
        return sd_bus_message_append(m, "b", d->link == SIM_LINK_UP || d->link == SIM_LINK_DISCONNECTING);
}
static int get_uuids(void *data, sd_bus_message *m)
{
        SimDevice *d = data;
        int r = sd_bus_message_open_container(m, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; i < d->n_uuids; i++) {
                r = sd_bus_message_append(m, "s", d->uuids[i]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}
static int get_adapter(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "o", ((SimDevice *) data)->adapter->path);
}
static int get_mfr(void *data, sd_bus_message *m)
{
        SimDevice *d = data;
        int r = sd_bus_message_open_container(m, 'a', "{qv}");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'e', "qv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "q", d->mfr_company);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', "ay");
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', d->mfr, d->mfr_len);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}
static bool has_mfr(void *data)
{
        return ((SimDevice *) data)->has_mfr;
}
static int get_sd(void *data, sd_bus_message *m)
{
        SimDevice *d = data;
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'e', "sv");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", d->sd_uuid);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'v', "ay");
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', d->sd, d->sd_len);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}
static bool has_sd(void *data)
{
        return ((SimDevice *) data)->has_sd;
}
static int get_services_resolved(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimDevice *) data)->services_resolved);
}

static const SimProperty device_props[] = {
        { "Address", "s", get_address, NULL, NULL },
        { "AddressType", "s", get_address_type, NULL, NULL },
        { "Name", "s", get_name, has_name, NULL },
        { "Alias", "s", get_alias, NULL, set_alias },
        { "Paired", "b", get_paired, NULL, NULL },
        { "Bonded", "b", get_bonded, NULL, NULL },
        { "Trusted", "b", get_trusted, NULL, set_trusted },
        { "Blocked", "b", get_blocked, NULL, set_blocked },
        { "LegacyPairing", "b", get_false, NULL, NULL },
        { "RSSI", "n", get_rssi, has_rssi, NULL },
        { "TxPower", "n", get_tx_power, has_tx_power, NULL },
        { "Connected", "b", get_connected, NULL, NULL },
        { "UUIDs", "as", get_uuids, NULL, NULL },
        { "Adapter", "o", get_adapter, NULL, NULL },
        { "ManufacturerData", "a{qv}", get_mfr, has_mfr, NULL },
        { "ServiceData", "a{sv}", get_sd, has_sd, NULL },
        { "ServicesResolved", "b", get_services_resolved, NULL, NULL },
        {},
};

static void dev_changed(SimDevice *d, const char *prop)
{
        if (d->obj)
                sim_obj_changed(d->obj, IFACE_DEVICE, prop);
}

/* ---- GATT export ---- */

static void chr_fail_pending(SimGattChr *c, bool link_loss)
{
        if (c->write_call) {
                if (link_loss)
                        (void) reply_att_error(c->write_call, 0x0e);
                c->write_call = sd_bus_message_unref(c->write_call);
        }
        c->write_timer = sd_event_source_disable_unref(c->write_timer);
        c->write_buf = mfree(c->write_buf);
        for (size_t i = 0; i < c->n_read_calls; i++) {
                if (link_loss)
                        (void) reply_att_error(c->read_calls[i], 0x0e);
                sd_bus_message_unref(c->read_calls[i]);
        }
        c->read_calls = mfree(c->read_calls);
        c->n_read_calls = 0;
        c->read_timer = sd_event_source_disable_unref(c->read_timer);
        c->cccd_timer = sd_event_source_disable_unref(c->cccd_timer);
        for (size_t i = 0; i < c->n_sessions; i++)
                if (c->sessions[i].pending) {
                        if (link_loss)
                                (void) reply_att_error(c->sessions[i].pending, 0x0e);
                        c->sessions[i].pending = sd_bus_message_unref(c->sessions[i].pending);
                }
}

static void chr_free(SimGattChr *c)
{
        chr_fail_pending(c, false);
        for (size_t i = 0; i < c->n_sessions; i++) {
                free(c->sessions[i].owner);
                sd_bus_message_unref(c->sessions[i].pending);
        }
        free(c->sessions);
        if (c->desc) {
                sim_obj_free(c->desc->obj);
                free(c->desc);
        }
        sim_obj_free(c->obj);
        free(c);
}

void sim_device_gatt_unexport(SimDevice *d)
{
        while (d->services) {
                SimGattSvc *s = d->services;
                d->services = s->next;
                /* children first, as a client would hope (it must not rely on it) */
                for (size_t i = 0; i < s->n_chrs; i++)
                        chr_free(s->chrs[i]);
                sim_obj_free(s->obj);
                free(s);
        }
        d->gatt_exported = false;
}

extern const SimInterface sim_gatt_service_iface, sim_gatt_chr_iface, sim_gatt_desc_iface;

static void gatt_export(SimDevice *d)
{
        SimLock *l = d->lock;
        SimGattSvc **tail = &d->services;

        if (!l || !dev_sim(d)->bluez)
                return;
        for (size_t i = 0; i < l->n_services; i++) {
                const SimGattSvcDef *def = &l->services[i];
                SimGattSvc *s;
                uint16_t h;

                if (strneq(def->uuid, "00001800-", 9))
                        continue; /* GAP is claimed by bluetoothd's own plugin: never exported */
                s = calloc(1, sizeof(*s));
                if (!s)
                        abort();
                s->dev = d;
                s->def = def;
                s->handle = def->handle;
                snprintf(s->path, sizeof(s->path), "%s/service%04x", d->path, s->handle);
                s->obj = sim_obj_new(dev_sim(d)->bluez, s->path);
                (void) sim_obj_add_iface(s->obj, &sim_gatt_service_iface, s);
                h = (uint16_t) (s->handle + 1);
                for (size_t k = 0; k < def->n_chrs; k++) {
                        SimGattChr *c = calloc(1, sizeof(*c));
                        if (!c)
                                abort();
                        c->svc = s;
                        c->def = def->chrs[k];
                        c->handle = h;
                        snprintf(c->path, sizeof(c->path), "%s/char%04x", s->path, c->handle);
                        c->obj = sim_obj_new(dev_sim(d)->bluez, c->path);
                        (void) sim_obj_add_iface(c->obj, &sim_gatt_chr_iface, c);
                        h = (uint16_t) (h + 2);
                        if (c->def->flags & (SIM_F_NOTIFY | SIM_F_INDICATE)) {
                                c->desc = calloc(1, sizeof(*c->desc));
                                if (!c->desc)
                                        abort();
                                c->desc->chr = c;
                                c->desc->handle = h++;
                                snprintf(c->desc->path, sizeof(c->desc->path), "%s/desc%04x", c->path,
                                         c->desc->handle);
                                c->desc->obj = sim_obj_new(dev_sim(d)->bluez, c->desc->path);
                                (void) sim_obj_add_iface(c->desc->obj, &sim_gatt_desc_iface, c->desc);
                        }
                        s->chrs[s->n_chrs++] = c;
                }
                *tail = s;
                tail = &s->next;
        }
        d->gatt_exported = true;
        d->gatt_generation = l->gatt_generation;
}

static SimGattChr *find_chr(SimDevice *d, int id)
{
        for (SimGattSvc *s = d->services; s; s = s->next)
                for (size_t i = 0; i < s->n_chrs; i++)
                        if ((int) s->chrs[i]->def->id == id)
                                return s->chrs[i];
        return NULL;
}

static void set_uuids_from_gatt(SimDevice *d)
{
        bool changed = false;

        if (!d->lock)
                return;
        for (size_t i = 0; i < d->lock->n_services; i++) {
                const char *u = d->lock->services[i].uuid;
                bool found = false;
                for (size_t k = 0; k < d->n_uuids; k++)
                        if (streq(d->uuids[k], u))
                                found = true;
                if (found || d->n_uuids >= ELEMENTSOF(d->uuids))
                        continue;
                d->uuids[d->n_uuids] = strdup(u);
                if (!d->uuids[d->n_uuids])
                        abort();
                d->n_uuids++;
                changed = true;
        }
        if (changed)
                dev_changed(d, "UUIDs");
}

/* ---- link state machine ---- */

static void each_chr(SimDevice *d, void (*fn)(SimGattChr *c, void *u), void *u)
{
        for (SimGattSvc *s = d->services; s; s = s->next)
                for (size_t i = 0; i < s->n_chrs; i++)
                        fn(s->chrs[i], u);
}

static void chr_mtu_changed(SimGattChr *c, void *u)
{
        sim_obj_changed(c->obj, IFACE_CHR, "MTU");
}

static void chr_rearm_notify(SimGattChr *c, void *u)
{
        SimDevice *d = c->svc->dev;
        if (c->n_sessions > 0 && d->lock && !gatt_stale(d))
                sim_lock_cccd(d->lock, c->def->id, true);
}

static void chr_link_lost(SimGattChr *c, void *u)
{
        chr_fail_pending(c, true);
}

static void indications_clear(SimDevice *d)
{
        while (d->ind_head) {
                SimIndication *i = d->ind_head;
                d->ind_head = i->next;
                free(i);
        }
        d->ind_tail = NULL;
        d->ind_timer = sd_event_source_disable_unref(d->ind_timer);
}

static int resolve_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimDevice *d = userdata;

        d->resolve_timer = sd_event_source_disable_unref(d->resolve_timer);
        if (d->link != SIM_LINK_UP)
                return 0;
        if (!d->gatt_exported) {
                gatt_export(d);
                set_uuids_from_gatt(d);
                /* the objects (parents first) must be out before ServicesResolved */
                sim_bus_flush(dev_sim(d)->bluez);
        }
        d->temporary = false;
        d->services_resolved = true;
        dev_changed(d, "ServicesResolved");
        return 0;
}

static int pair_handler(sd_event_source *s, uint64_t usec, void *userdata);

static void link_up(SimDevice *d)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = TAKE_PTR(d->connect_call);
        SimLock *l = d->lock;

        d->link_timer = sd_event_source_disable_unref(d->link_timer);
        d->link = SIM_LINK_UP;
        d->mtu = l ? l->mtu : 23;
        l->link = d;
        sim_lock_connected(l, d);
        if (!dev_sim(d)->connect_reply_first) {
                dev_changed(d, "Connected");
                each_chr(d, chr_mtu_changed, NULL);
        }
        if (call && d->connect_reply_path)
                (void) sim_reply(call, "o", d->path);
        else if (call)
                (void) sim_reply(call, NULL);
        if (dev_sim(d)->connect_reply_first) {
                dev_changed(d, "Connected");
                each_chr(d, chr_mtu_changed, NULL);
        }
        each_chr(d, chr_rearm_notify, NULL);
        (void) sim_timer(dev_sim(d), &d->resolve_timer, dev_sim(d)->t.gatt_discovery, resolve_handler, d);
        if (d->pair_call)
                (void) sim_timer(dev_sim(d), &d->pair_timer, 3 * dev_sim(d)->t.att_round_trip, pair_handler,
                                 d);
}

static void link_down(SimDevice *d, bool remote, const char *why)
{
        sd_bus_message **calls = TAKE_PTR(d->disconnect_calls);
        size_t n = d->n_disconnect_calls;
        bool was_up = d->link == SIM_LINK_UP || d->link == SIM_LINK_DISCONNECTING;

        d->n_disconnect_calls = 0;
        d->link_timer = sd_event_source_disable_unref(d->link_timer);
        d->resolve_timer = sd_event_source_disable_unref(d->resolve_timer);
        indications_clear(d);
        if (d->lock && d->lock->link == d) {
                d->lock->link = NULL;
                sim_lock_disconnected(d->lock);
        }
        if (d->pair_call) {
                (void) sim_reply_error(d->pair_call, "org.bluez.Error.AuthenticationCanceled",
                                       "Authentication Canceled");
                d->pair_call = sd_bus_message_unref(d->pair_call);
                d->pair_timer = sd_event_source_disable_unref(d->pair_timer);
        }
        each_chr(d, chr_link_lost, NULL);
        if (d->services_resolved) {
                d->services_resolved = false;
                dev_changed(d, "ServicesResolved");
        }
        if (!remote) /* reply before Connected=false: flush what is queued, then answer */
                for (size_t i = 0; i < n; i++)
                        (void) sim_reply(calls[i], NULL);
        d->link = SIM_LINK_DOWN;
        if (was_up && dev_sim(d)->disconnected_signal) {
                /* 5.83+: after ServicesResolved=false, before Connected=false */
                const char *reason = remote ? "org.bluez.Reason.Remote" : "org.bluez.Reason.Local",
                           *text = remote ? "Connection terminated by remote user"
                                          : "Connection terminated by local host";
                if (remote && (strstr(why, "loss") || strstr(why, "range") || strstr(why, "timeout"))) {
                        reason = "org.bluez.Reason.Timeout";
                        text = "Connection timeout";
                }
                (void) sim_emit(dev_sim(d)->bluez, d->path, IFACE_DEVICE, "Disconnected", "ss", reason,
                                text);
        }
        if (was_up) {
                dev_changed(d, "Connected");
                each_chr(d, chr_mtu_changed, NULL);
        }
        if (remote)
                for (size_t i = 0; i < n; i++)
                        (void) sim_reply(calls[i], NULL);
        for (size_t i = 0; i < n; i++)
                sd_bus_message_unref(calls[i]);
        free(calls);
        log_debug("%s: link down (%s)", d->address, why);
        if (d->remove_call)
                sim_adapter_finish_removal(d->adapter, d);
}

void sim_device_link_lost(SimDevice *d, const char *why)
{
        if (d->link == SIM_LINK_CONNECTING) {
                d->link_timer = sd_event_source_disable_unref(d->link_timer);
                d->link = SIM_LINK_DOWN;
                if (d->connect_call) {
                        /* ConnectDevice fails with the malformed name (5.66 and later) */
                        (void) sim_reply_error(d->connect_call,
                                               d->connect_reply_path ? "org.bluez.Failed" : ERR_FAILED,
                                               "le-connection-abort-by-local");
                        d->connect_call = sd_bus_message_unref(d->connect_call);
                }
                if (d->pair_call) {
                        (void) sim_reply_error(d->pair_call, "org.bluez.Error.ConnectionAttemptFailed",
                                               "Page Timeout");
                        d->pair_call = sd_bus_message_unref(d->pair_call);
                }
                if (d->remove_call)
                        sim_adapter_finish_removal(d->adapter, d);
                return;
        }
        if (d->link == SIM_LINK_DOWN)
                return;
        link_down(d, true, why);
}

bool sim_device_is_connected(const SimDevice *d)
{
        return d->link == SIM_LINK_UP;
}

static int connect_timeout_handler(sd_event_source *s, uint64_t usec, void *userdata);

static int connect_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimDevice *d = userdata;

        if (d->lock && sim_radio_reachable(d->lock) && !d->lock->link && !d->adapter->hung) {
                if (sim_radio_lost(d->lock)) {
                        /* the link comes up and drops during set-up: Connected=true, the
                         * error, then Connected=false (what bluetoothctl shows) */
                        d->link_timer = sd_event_source_disable_unref(d->link_timer);
                        d->link = SIM_LINK_UP;
                        dev_changed(d, "Connected");
                        sim_bus_flush(dev_sim(d)->bluez);
                        d->link = SIM_LINK_CONNECTING;
                        sim_device_link_lost(d, "link dropped during set-up");
                        dev_changed(d, "Connected");
                        return 0;
                }
                link_up(d);
        } else
                /* lost before it came up: wait for the kernel's LE connection timeout */
                return sim_timer(dev_sim(d), &d->link_timer, dev_sim(d)->t.le_connect_timeout,
                                 connect_timeout_handler, d);
        return 0;
}

static int connect_timeout_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimDevice *d = userdata;
        d->link_timer = sd_event_source_disable_unref(d->link_timer);
        sim_device_link_lost(d, "connection timeout");
        return 0;
}

static int start_link(SimDevice *d)
{
        Sim *sim = dev_sim(d);
        SimLock *l = d->lock;

        d->link = SIM_LINK_CONNECTING;
        if (d->temporary) {
                d->temporary = false;
                d->expiry_timer = sd_event_source_disable_unref(d->expiry_timer);
        }
        sim_adapter_store(d->adapter, d->address);
        if (l && sim_radio_reachable(l) && !l->link && !d->adapter->hung)
                return sim_timer(sim, &d->link_timer, sim_radio_latency(l) * 3 + l->conn_latency,
                                 connect_timer_handler, d);
        return sim_timer(sim, &d->link_timer, sim->t.le_connect_timeout, connect_timeout_handler, d);
}

int sim_device_connect_device(SimDevice *d, sd_bus_message *call)
{
        d->connect_call = sd_bus_message_ref(call);
        d->connect_reply_path = true;
        return start_link(d);
}

static int device_connect(sd_bus_message *m, void *data)
{
        SimDevice *d = data;

        if (sim_adapter_swallow(d->adapter, m))
                return 0;
        if (!d->adapter->powered)
                return sim_reply_error(m, ERR_NOT_READY, "Resource Not Ready");
        switch (d->link) {
        case SIM_LINK_UP:
                return sim_reply(m, NULL);
        case SIM_LINK_CONNECTING:
        case SIM_LINK_DISCONNECTING:
                return sim_reply_error(m, ERR_FAILED, "Operation already in progress");
        case SIM_LINK_DOWN:
                break;
        }
        if (d->blocked)
                return sim_reply_error(m, ERR_FAILED, "le-connection-abort-by-local");
        d->connect_call = sd_bus_message_ref(m);
        d->connect_reply_path = false;
        return start_link(d);
}

static int disconnect_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        link_down(userdata, false, "local disconnect");
        return 0;
}

static void start_disconnect(SimDevice *d)
{
        d->link = SIM_LINK_DISCONNECTING;
        d->resolve_timer = sd_event_source_disable_unref(d->resolve_timer);
        if (d->services_resolved) {
                d->services_resolved = false;
                dev_changed(d, "ServicesResolved");
        }
        (void) sim_timer(dev_sim(d), &d->link_timer, dev_sim(d)->t.disconnect_delay,
                         disconnect_timer_handler, d);
}

static void add_disconnect_call(SimDevice *d, sd_bus_message *m)
{
        d->disconnect_calls = realloc(d->disconnect_calls, (d->n_disconnect_calls + 1) * sizeof(void *));
        if (!d->disconnect_calls)
                abort();
        d->disconnect_calls[d->n_disconnect_calls++] = sd_bus_message_ref(m);
}

static int device_disconnect(sd_bus_message *m, void *data)
{
        SimDevice *d = data;

        if (sim_adapter_swallow(d->adapter, m))
                return 0;
        switch (d->link) {
        case SIM_LINK_DOWN:
                return sim_reply(m, NULL);
        case SIM_LINK_CONNECTING:
                d->link_timer = sd_event_source_disable_unref(d->link_timer);
                d->link = SIM_LINK_DOWN;
                if (d->connect_call) {
                        (void) sim_reply_error(d->connect_call, ERR_FAILED, "br-connection-canceled");
                        d->connect_call = sd_bus_message_unref(d->connect_call);
                }
                return sim_reply(m, NULL);
        case SIM_LINK_DISCONNECTING:
                add_disconnect_call(d, m);
                return 0;
        case SIM_LINK_UP:
                break;
        }
        add_disconnect_call(d, m);
        start_disconnect(d);
        return 0;
}

void sim_device_disconnect_for_removal(SimDevice *d, sd_bus_message *remove_call)
{
        d->remove_call = sd_bus_message_ref(remove_call);
        if (d->link == SIM_LINK_CONNECTING) {
                sim_device_link_lost(d, "removed");
                return;
        }
        if (d->link == SIM_LINK_UP)
                start_disconnect(d);
}

static int pair_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimDevice *d = userdata;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = TAKE_PTR(d->pair_call);

        d->pair_timer = sd_event_source_disable_unref(d->pair_timer);
        d->paired = d->bonded = true;
        dev_changed(d, "Paired");
        dev_changed(d, "Bonded");
        if (call)
                (void) sim_reply(call, NULL);
        return 0;
}

static int device_pair(sd_bus_message *m, void *data)
{
        SimDevice *d = data;

        if (sim_adapter_swallow(d->adapter, m))
                return 0;
        if (d->pair_call)
                return sim_reply_error(m, ERR_IN_PROGRESS, "In Progress");
        if (d->paired)
                return sim_reply_error(m, "org.bluez.Error.AlreadyExists", "Already Exists");
        if (!d->adapter->powered)
                return sim_reply_error(m, ERR_NOT_READY, "Resource Not Ready");
        d->pair_call = sd_bus_message_ref(m);
        switch (d->link) {
        case SIM_LINK_UP:
                return sim_timer(dev_sim(d), &d->pair_timer, 3 * dev_sim(d)->t.att_round_trip, pair_handler,
                                 d);
        case SIM_LINK_DOWN:
                return start_link(d);
        case SIM_LINK_CONNECTING:
        case SIM_LINK_DISCONNECTING:
                break;
        }
        return 0;
}

static int device_cancel_pairing(sd_bus_message *m, void *data)
{
        SimDevice *d = data;

        if (!d->pair_call)
                return sim_reply_error(m, "org.bluez.Error.DoesNotExist", "Does Not Exist");
        (void) sim_reply_error(d->pair_call, "org.bluez.Error.AuthenticationCanceled",
                               "Authentication Canceled");
        d->pair_call = sd_bus_message_unref(d->pair_call);
        d->pair_timer = sd_event_source_disable_unref(d->pair_timer);
        return sim_reply(m, NULL);
}

static int device_profile(sd_bus_message *m, void *data)
{
        return sim_reply_error(m, "org.bluez.Error.NotAvailable", "br-connection-profile-unavailable");
}

static const SimMethod device_methods[] = {
        { "Disconnect", "", "", device_disconnect },
        { "Connect", "", "", device_connect },
        { "ConnectProfile", "s", "", device_profile },
        { "DisconnectProfile", "s", "", device_profile },
        { "Pair", "", "", device_pair },
        { "CancelPairing", "", "", device_cancel_pairing },
        {},
};

static const SimSignal device_signals[] = {
        { "Disconnected", "ss" },
        {},
};
static const SimInterface device_iface = { IFACE_DEVICE, device_methods, device_props, device_signals };

/* ---- adverts ---- */

static int expiry_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimDevice *d = userdata;
        SimAdapter *a = d->adapter;

        d->expiry_timer = sd_event_source_disable_unref(d->expiry_timer);
        if (!d->temporary || d->link != SIM_LINK_DOWN)
                return 0;
        log_debug("%s: temporary device expired", d->address);
        for (SimDevice **p = &a->devices; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        sim_device_free(d);
                        break;
                }
        return 0;
}

void sim_device_restart_expiry(SimDevice *d)
{
        (void) sim_timer(dev_sim(d), &d->expiry_timer, dev_sim(d)->t.temporary_timeout, expiry_handler, d);
}

void sim_device_update_from_advert(SimDevice *d, const SimAdvert *ad, int16_t rssi, bool filtered, bool dup)
{
        if (filtered || !d->has_rssi || abs(rssi - d->rssi) >= 8) {
                d->rssi = rssi;
                d->has_rssi = true;
                dev_changed(d, "RSSI");
        }
        if (ad->has_tx_power && (!d->has_tx_power || d->tx_power != ad->tx_power)) {
                d->has_tx_power = true;
                d->tx_power = ad->tx_power;
                dev_changed(d, "TxPower");
        }
        if (ad->name[0] && (!d->has_name || !streq(d->name, ad->name))) {
                snprintf(d->name, sizeof(d->name), "%s", ad->name);
                d->has_name = true;
                dev_changed(d, "Name");
                if (!d->alias)
                        dev_changed(d, "Alias");
        }
        for (size_t i = 0; i < ad->n_uuids; i++) {
                bool found = false;
                for (size_t k = 0; k < d->n_uuids; k++)
                        if (streq(d->uuids[k], ad->uuids[i]))
                                found = true;
                if (!found && d->n_uuids < ELEMENTSOF(d->uuids)) {
                        d->uuids[d->n_uuids] = strdup(ad->uuids[i]);
                        if (!d->uuids[d->n_uuids])
                                abort();
                        d->n_uuids++;
                        dev_changed(d, "UUIDs");
                }
        }
        if (ad->mfr_len > 0 && (dup || !d->has_mfr || d->mfr_company != ad->company ||
                                d->mfr_len != ad->mfr_len || memcmp(d->mfr, ad->mfr, ad->mfr_len) != 0)) {
                d->has_mfr = true;
                d->mfr_company = ad->company;
                d->mfr_len = ad->mfr_len;
                memcpy(d->mfr, ad->mfr, ad->mfr_len);
                dev_changed(d, "ManufacturerData");
        }
        /* entries that are no longer advertised are never dropped (5.66), unless DuplicateData */
        if (ad->sd_len > 0 && (dup || !d->has_sd || !streq(d->sd_uuid, ad->sd_uuid) ||
                               d->sd_len != ad->sd_len || memcmp(d->sd, ad->sd, ad->sd_len) != 0)) {
                d->has_sd = true;
                snprintf(d->sd_uuid, sizeof(d->sd_uuid), "%s", ad->sd_uuid);
                d->sd_len = ad->sd_len;
                memcpy(d->sd, ad->sd, ad->sd_len);
                dev_changed(d, "ServiceData");
        } else if (dup && ad->sd_len == 0 && d->has_sd) {
                d->has_sd = false;
                dev_changed(d, "ServiceData");
        }
}

void sim_device_discovery_stopped(SimDevice *d)
{
        if (d->has_rssi) {
                d->has_rssi = false;
                dev_changed(d, "RSSI");
        }
        if (d->has_tx_power) {
                d->has_tx_power = false;
                dev_changed(d, "TxPower");
        }
}

/* ---- indications ---- */

static int ind_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimDevice *d = userdata;
        SimIndication *i = d->ind_head;
        SimGattChr *c;

        d->ind_timer = sd_event_source_disable_unref(d->ind_timer);
        if (!i)
                return 0;
        d->ind_head = i->next;
        if (!d->ind_head)
                d->ind_tail = NULL;
        c = gatt_stale(d) ? NULL : find_chr(d, i->chr);
        if (c && c->n_sessions > 0 && d->link == SIM_LINK_UP) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                SimBus *b = dev_sim(d)->bluez;

                c->has_value = true;
                c->value_len = MIN(i->len, sizeof(c->value));
                memcpy(c->value, i->data, c->value_len);
                /* an explicit signal, not batched: one per PDU, duplicates included */
                if (sd_bus_message_new_signal(sim_bus_get(b), &m, c->path, "org.freedesktop.DBus.Properties",
                                              "PropertiesChanged") >= 0 &&
                    sd_bus_message_append(m, "s", IFACE_CHR) >= 0 &&
                    sd_bus_message_open_container(m, 'a', "{sv}") >= 0 &&
                    sd_bus_message_open_container(m, 'e', "sv") >= 0 &&
                    sd_bus_message_append(m, "s", "Value") >= 0 &&
                    sd_bus_message_open_container(m, 'v', "ay") >= 0 &&
                    sd_bus_message_append_array(m, 'y', c->value, c->value_len) >= 0 &&
                    sd_bus_message_close_container(m) >= 0 && sd_bus_message_close_container(m) >= 0 &&
                    sd_bus_message_close_container(m) >= 0 && sd_bus_message_append(m, "as", 0) >= 0)
                        (void) sim_bus_send(b, m);
        }
        free(i);
        if (d->ind_head)
                (void) sim_timer(dev_sim(d), &d->ind_timer, d->lock ? sim_radio_latency(d->lock) : 30000,
                                 ind_handler, d);
        return 0;
}

void sim_device_indicate(SimDevice *d, int chr_id, const uint8_t *data, size_t len)
{
        SimIndication *i;

        if (d->link != SIM_LINK_UP)
                return;
        i = malloc(sizeof(*i) + len);
        if (!i)
                abort();
        i->next = NULL;
        i->chr = chr_id;
        i->len = len;
        memcpy(i->data, data, len);
        if (d->ind_tail)
                d->ind_tail->next = i;
        else
                d->ind_head = i;
        d->ind_tail = i;
        if (!d->ind_timer)
                /* each indication waits for its confirmation: half a round trip apiece */
                (void) sim_timer(dev_sim(d), &d->ind_timer, d->lock ? sim_radio_latency(d->lock) / 2 : 30000,
                                 ind_handler, d);
}

void sim_device_service_changed(SimDevice *d)
{
        /* a live Service Changed indication: objects go and come back with the new
         * handles; ServicesResolved does not toggle (5.66) */
        if (d->link != SIM_LINK_UP || !d->gatt_exported)
                return;
        sim_device_gatt_unexport(d);
        sim_bus_flush(dev_sim(d)->bluez);
        gatt_export(d);
}

static void chr_client_gone(SimGattChr *c, void *u)
{
        const char *owner = u;
        for (size_t i = 0; i < c->n_sessions; i++)
                if (streq(c->sessions[i].owner, owner)) {
                        free(c->sessions[i].owner);
                        sd_bus_message_unref(c->sessions[i].pending);
                        memmove(&c->sessions[i], &c->sessions[i + 1],
                                (c->n_sessions - i - 1) * sizeof(c->sessions[0]));
                        c->n_sessions--;
                        if (c->n_sessions == 0) {
                                if (c->notifying) {
                                        c->notifying = false;
                                        sim_obj_changed(c->obj, IFACE_CHR, "Notifying");
                                }
                                if (c->svc->dev->link == SIM_LINK_UP && c->svc->dev->lock)
                                        sim_lock_cccd(c->svc->dev->lock, c->def->id, false);
                        }
                        return;
                }
}

void sim_device_client_gone(SimDevice *d, const char *sender)
{
        each_chr(d, chr_client_gone, (void *) sender);
}

/* ---- GATT characteristic methods ---- */

static int parse_options(sd_bus_message *m, const char **type, int *offset)
{
        int r;

        *offset = -1;
        if (type)
                *type = NULL;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *contents;
                char t;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, &t, &contents);
                if (r < 0)
                        return r;
                if (streq(key, "offset")) {
                        uint16_t v;
                        if (!streq(contents, "q"))
                                return -EINVAL;
                        r = sd_bus_message_read(m, "v", "q", &v);
                        if (r < 0)
                                return r;
                        *offset = v;
                } else if (type && streq(key, "type")) {
                        if (!streq(contents, "s"))
                                return -EINVAL;
                        r = sd_bus_message_read(m, "v", "s", type);
                        if (r < 0)
                                return r;
                } else {
                        r = sd_bus_message_skip(m, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int read_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimGattChr *c = userdata;
        SimDevice *d = c->svc->dev;
        sd_bus_message **calls = TAKE_PTR(c->read_calls);
        size_t n = c->n_read_calls;
        uint8_t buf[512];
        size_t len = 0;
        uint8_t att;

        c->n_read_calls = 0;
        c->read_timer = sd_event_source_disable_unref(c->read_timer);
        att = gatt_stale(d) ? 0x01
                            : sim_lock_read(d->lock, c->def->id, c->read_offset, buf, sizeof(buf), &len);
        if (att == 0) {
                c->has_value = true;
                c->value_len = len;
                memcpy(c->value, buf, len);
                /* Value is signalled before the reply (bleak PR #1856) */
                sim_obj_changed(c->obj, IFACE_CHR, "Value");
        }
        for (size_t i = 0; i < n; i++) {
                if (att == 0) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
                        if (sd_bus_message_new_method_return(calls[i], &reply) >= 0 &&
                            sd_bus_message_append_array(reply, 'y', buf, len) >= 0)
                                (void) sim_bus_send(dev_sim(d)->bluez, reply);
                } else
                        (void) reply_att_error(calls[i], att);
                sd_bus_message_unref(calls[i]);
        }
        free(calls);
        return 0;
}

static int chr_read_value(sd_bus_message *m, void *data)
{
        SimGattChr *c = data;
        SimDevice *d = c->svc->dev;
        int offset;

        if (parse_options(m, NULL, &offset) < 0)
                return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
        if (sim_adapter_swallow(d->adapter, m))
                return 0;
        if (d->link != SIM_LINK_UP)
                return sim_reply_error(m, ERR_FAILED, "Not connected");
        if (offset < 0)
                offset = 0;
        if (c->n_read_calls > 0 && c->read_offset != offset)
                return sim_reply_error(m, ERR_IN_PROGRESS, "In Progress");
        c->read_calls = realloc(c->read_calls, (c->n_read_calls + 1) * sizeof(void *));
        if (!c->read_calls)
                abort();
        c->read_calls[c->n_read_calls++] = sd_bus_message_ref(m);
        c->read_offset = (uint16_t) offset;
        if (c->n_read_calls > 1)
                return 0; /* joins the read in flight */
        if (d->lock && sim_radio_lost(d->lock)) {
                sim_device_link_lost(d, "supervision timeout");
                return 0;
        }
        return sim_timer(dev_sim(d), &c->read_timer, sim_radio_latency(d->lock), read_timer_handler, c);
}

static int write_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimGattChr *c = userdata;
        SimDevice *d = c->svc->dev;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = TAKE_PTR(c->write_call);
        _cleanup_free_ uint8_t *buf = TAKE_PTR(c->write_buf);
        uint8_t att;

        c->write_timer = sd_event_source_disable_unref(c->write_timer);
        if (gatt_stale(d))
                att = 0x01;
        else if (d->lock->att_error_count > 0) {
                d->lock->att_error_count--;
                att = d->lock->att_error;
        } else
                att = sim_lock_write(d->lock, c->def->id, buf, c->write_len);
        if (!att && d->lock->fail_this_reply) {
                /* fault: the lock took it, the writer hears a failure (outcome unknown) */
                d->lock->fail_this_reply = false;
                if (call)
                        (void) sim_reply_error(call, ERR_FAILED, "Operation failed");
                return 0;
        }
        if (!call)
                return 0; /* write command: nobody waits */
        if (att)
                (void) reply_att_error(call, att);
        else
                (void) sim_reply(call, NULL);
        return 0;
}

static int chr_write_value(sd_bus_message *m, void *data)
{
        SimGattChr *c = data;
        SimDevice *d = c->svc->dev;
        const void *value;
        const char *type;
        size_t len;
        int offset, r;
        bool command;

        r = sd_bus_message_read_array(m, 'y', &value, &len);
        if (r < 0)
                return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
        if (parse_options(m, &type, &offset) < 0)
                return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
        if (sim_adapter_swallow(d->adapter, m))
                return 0;
        if (d->link != SIM_LINK_UP)
                return sim_reply_error(m, ERR_FAILED, "Not connected");
        if (type) {
                if (streq(type, "command"))
                        command = true;
                else if (streq(type, "request") || streq(type, "reliable"))
                        command = false;
                else
                        return sim_reply_error(m, ERR_NOT_SUPP, "Operation is not supported");
        } else if (c->def->flags & SIM_F_WRITE)
                command = false;
        else if (c->def->flags & SIM_F_WRITE_NR)
                command = true;
        else
                return sim_reply_error(m, ERR_NOT_SUPP, "Operation is not supported");
        if (command && offset > 0)
                return sim_reply_error(m, ERR_NOT_SUPP, "Operation is not supported");
        if (c->write_timer)
                return sim_reply_error(m, ERR_IN_PROGRESS, "In Progress");
        if (len > 512)
                return reply_att_error(m, 0x0d);
        c->write_buf = malloc(len ? len : 1);
        if (!c->write_buf)
                return -ENOMEM;
        memcpy(c->write_buf, value, len);
        c->write_len = len;
        d->lock->n_gatt_writes++;
        if (command) {
                r = sim_reply(m, NULL);
                if (r < 0)
                        return r;
        } else
                c->write_call = sd_bus_message_ref(m);
        if (sim_radio_lost(d->lock)) {
                sim_device_link_lost(d, "supervision timeout");
                return 0;
        }
        /* Write Long when it does not fit: one more round trip per MTU-sized piece */
        return sim_timer(dev_sim(d), &c->write_timer,
                         sim_radio_latency(d->lock) * (1 + len / (size_t) MAX(d->mtu - 5, 1)),
                         write_timer_handler, c);
}

static NotifySession *find_session(SimGattChr *c, const char *owner)
{
        for (size_t i = 0; i < c->n_sessions; i++)
                if (streq(c->sessions[i].owner, owner))
                        return &c->sessions[i];
        return NULL;
}

static int cccd_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimGattChr *c = userdata;
        SimDevice *d = c->svc->dev;
        uint8_t att = 0;

        c->cccd_timer = sd_event_source_disable_unref(c->cccd_timer);
        if (gatt_stale(d))
                att = 0x01;
        else
                sim_lock_cccd(d->lock, c->def->id, true);
        if (!att && !c->notifying) {
                c->notifying = true;
                sim_obj_changed(c->obj, IFACE_CHR, "Notifying");
        }
        for (size_t i = 0; i < c->n_sessions;) {
                NotifySession *ns = &c->sessions[i];
                if (!ns->pending) {
                        i++;
                        continue;
                }
                if (att) {
                        (void) reply_att_error(ns->pending, att);
                        sd_bus_message_unref(ns->pending);
                        free(ns->owner);
                        memmove(ns, ns + 1, (c->n_sessions - i - 1) * sizeof(*ns));
                        c->n_sessions--;
                        continue;
                }
                (void) sim_reply(ns->pending, NULL);
                ns->pending = sd_bus_message_unref(ns->pending);
                i++;
        }
        return 0;
}

static int chr_start_notify(sd_bus_message *m, void *data)
{
        SimGattChr *c = data;
        SimDevice *d = c->svc->dev;
        const char *owner = sd_bus_message_get_sender(m);
        NotifySession *ns;

        if (!(c->def->flags & (SIM_F_NOTIFY | SIM_F_INDICATE)))
                return sim_reply_error(m, ERR_NOT_SUPP, "Operation is not supported");
        if (sim_adapter_swallow(d->adapter, m))
                return 0;
        if (d->link == SIM_LINK_DISCONNECTING)
                return sim_reply_error(m, "org.bluez.Error.NotConnected", "Not Connected");
        ns = find_session(c, owner);
        if (ns)
                return ns->pending ? sim_reply_error(m, ERR_IN_PROGRESS, "In Progress") : sim_reply(m, NULL);
        c->sessions = realloc(c->sessions, (c->n_sessions + 1) * sizeof(*c->sessions));
        if (!c->sessions)
                abort();
        ns = &c->sessions[c->n_sessions++];
        *ns = (NotifySession){ .owner = strdup(owner) };
        if (!ns->owner)
                abort();
        if (d->link != SIM_LINK_UP)
                /* armed for the next connection */
                return sim_reply(m, NULL);
        if (c->notifying && !c->cccd_timer)
                return sim_reply(m, NULL);
        ns->pending = sd_bus_message_ref(m);
        if (!c->cccd_timer)
                return sim_timer(dev_sim(d), &c->cccd_timer, sim_radio_latency(d->lock), cccd_timer_handler,
                                 c);
        return 0;
}

static int chr_stop_notify(sd_bus_message *m, void *data)
{
        SimGattChr *c = data;
        SimDevice *d = c->svc->dev;
        const char *owner = sd_bus_message_get_sender(m);
        NotifySession *ns = find_session(c, owner);

        if (sim_adapter_swallow(d->adapter, m))
                return 0;
        if (!ns)
                return sim_reply_error(m, ERR_FAILED, "No notify session started");
        if (ns->pending)
                (void) sim_reply_error(ns->pending, ERR_FAILED, "Operation failed with ATT error: 0x0e");
        chr_client_gone(c, (void *) owner);
        return sim_reply(m, NULL);
}

static int chr_acquire_write(sd_bus_message *m, void *data)
{
        SimGattChr *c = data;
        if (!(c->def->flags & SIM_F_WRITE_NR))
                return sim_reply_error(m, ERR_NOT_SUPP, "Operation is not supported");
        return sim_reply_error(m, ERR_FAILED, "Operation failed");
}

static int chr_acquire_notify(sd_bus_message *m, void *data)
{
        SimGattChr *c = data;
        if (!(c->def->flags & SIM_F_NOTIFY))
                return sim_reply_error(m, ERR_NOT_SUPP, "Operation is not supported");
        if (c->n_sessions > 0)
                return sim_reply_error(m, ERR_IN_PROGRESS, "In Progress");
        return sim_reply_error(m, ERR_FAILED, "Operation failed");
}

static int get_chr_uuid(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", ((SimGattChr *) data)->def->uuid);
}
static int get_chr_service(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "o", ((SimGattChr *) data)->svc->path);
}
static int get_chr_value(void *data, sd_bus_message *m)
{
        SimGattChr *c = data;
        return sd_bus_message_append_array(m, 'y', c->value, c->value_len);
}
static bool has_chr_value(void *data)
{
        return ((SimGattChr *) data)->has_value;
}
static int get_chr_notifying(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", ((SimGattChr *) data)->notifying);
}
static bool has_chr_notifying(void *data)
{
        return ((SimGattChr *) data)->def->flags & (SIM_F_NOTIFY | SIM_F_INDICATE);
}
static int get_chr_flags(void *data, sd_bus_message *m)
{
        SimGattChr *c = data;
        unsigned f = c->def->flags;
        int r = sd_bus_message_open_container(m, 'a', "s");
        if (r < 0)
                return r;
        if ((f & SIM_F_READ) && (r = sd_bus_message_append(m, "s", "read")) < 0)
                return r;
        if ((f & SIM_F_WRITE_NR) && (r = sd_bus_message_append(m, "s", "write-without-response")) < 0)
                return r;
        if ((f & SIM_F_WRITE) && (r = sd_bus_message_append(m, "s", "write")) < 0)
                return r;
        if ((f & SIM_F_NOTIFY) && (r = sd_bus_message_append(m, "s", "notify")) < 0)
                return r;
        if ((f & SIM_F_INDICATE) && (r = sd_bus_message_append(m, "s", "indicate")) < 0)
                return r;
        return sd_bus_message_close_container(m);
}
static int get_chr_mtu(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "q", ((SimGattChr *) data)->svc->dev->mtu);
}
static bool has_chr_mtu(void *data)
{
        return ((SimGattChr *) data)->svc->dev->link == SIM_LINK_UP;
}
static int get_chr_acquired(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", false);
}
static bool has_write_acquired(void *data)
{
        return ((SimGattChr *) data)->def->flags & SIM_F_WRITE_NR;
}
static bool has_notify_acquired(void *data)
{
        return ((SimGattChr *) data)->def->flags & SIM_F_NOTIFY;
}

static const SimProperty chr_props[] = {
        { "UUID", "s", get_chr_uuid, NULL, NULL },
        { "Service", "o", get_chr_service, NULL, NULL },
        { "Value", "ay", get_chr_value, has_chr_value, NULL },
        { "Notifying", "b", get_chr_notifying, has_chr_notifying, NULL },
        { "Flags", "as", get_chr_flags, NULL, NULL },
        { "WriteAcquired", "b", get_chr_acquired, has_write_acquired, NULL },
        { "NotifyAcquired", "b", get_chr_acquired, has_notify_acquired, NULL },
        { "MTU", "q", get_chr_mtu, has_chr_mtu, NULL },
        {},
};

static const SimMethod chr_methods[] = {
        { "ReadValue", "a{sv}", "ay", chr_read_value },
        { "WriteValue", "aya{sv}", "", chr_write_value },
        { "AcquireWrite", "a{sv}", "hq", chr_acquire_write },
        { "AcquireNotify", "a{sv}", "hq", chr_acquire_notify },
        { "StartNotify", "", "", chr_start_notify },
        { "StopNotify", "", "", chr_stop_notify },
        {},
};

const SimInterface sim_gatt_chr_iface = { IFACE_CHR, chr_methods, chr_props, NULL };

/* ---- descriptor (CCCD) ---- */

static int desc_read_value(sd_bus_message *m, void *data)
{
        SimGattDesc *de = data;
        SimDevice *d = de->chr->svc->dev;
        uint8_t v[2] = { 0, 0 };
        int offset;

        if (parse_options(m, NULL, &offset) < 0)
                return sim_reply_error(m, ERR_INVALID, "Invalid arguments in method call");
        if (d->link != SIM_LINK_UP)
                return sim_reply_error(m, ERR_FAILED, "Not connected");
        if (gatt_stale(d))
                return reply_att_error(m, 0x01);
        if (d->lock && d->lock->cccd[de->chr->def->id])
                v[0] = (de->chr->def->flags & SIM_F_INDICATE) ? 0x02 : 0x01;
        return sim_reply(m, "ay", 2, v[0], v[1]);
}

static int desc_write_value(sd_bus_message *m, void *data)
{
        return sim_reply_error(m, ERR_NOT_PERM, "Write not permitted");
}

static int get_desc_uuid(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", CCCD_UUID);
}
static int get_desc_chr(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "o", ((SimGattDesc *) data)->chr->path);
}

static const SimProperty desc_props[] = {
        { "UUID", "s", get_desc_uuid, NULL, NULL },
        { "Characteristic", "o", get_desc_chr, NULL, NULL },
        {},
};
static const SimMethod desc_methods[] = {
        { "ReadValue", "a{sv}", "ay", desc_read_value },
        { "WriteValue", "aya{sv}", "", desc_write_value },
        {},
};
const SimInterface sim_gatt_desc_iface = { IFACE_DESC, desc_methods, desc_props, NULL };

static int get_svc_uuid(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "s", ((SimGattSvc *) data)->def->uuid);
}
static int get_svc_device(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "o", ((SimGattSvc *) data)->dev->path);
}
static int get_true(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "b", true);
}
static int get_includes(void *data, sd_bus_message *m)
{
        return sd_bus_message_append(m, "ao", 0);
}
static const SimProperty svc_props[] = {
        { "UUID", "s", get_svc_uuid, NULL, NULL },
        { "Device", "o", get_svc_device, NULL, NULL },
        { "Primary", "b", get_true, NULL, NULL },
        { "Includes", "ao", get_includes, NULL, NULL },
        {},
};
static const SimMethod svc_methods[] = { {} };
const SimInterface sim_gatt_service_iface = { IFACE_SERVICE, svc_methods, svc_props, NULL };

/* ---- life cycle ---- */

int sim_device_new(SimAdapter *a, SimLock *lock, const char *address, bool temporary, SimDevice **ret)
{
        SimDevice *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->adapter = a;
        d->lock = lock;
        d->temporary = temporary;
        snprintf(d->address, sizeof(d->address), "%s", address);
        for (char *p = d->address; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char) (*p - 'a' + 'A');
        snprintf(d->path, sizeof(d->path), "%s/dev_%s", a->path, d->address);
        for (char *p = d->path + strlen(a->path); *p; p++)
                if (*p == ':')
                        *p = '_';
        d->mtu = 23;
        *ret = d;
        return 0;
}

int sim_device_register(SimDevice *d)
{
        d->obj = sim_obj_new(dev_sim(d)->bluez, d->path);
        return sim_obj_add_iface(d->obj, &device_iface, d);
}

SimDevice *sim_device_free(SimDevice *d)
{
        if (!d)
                return NULL;
        if (d->lock && d->lock->link == d) {
                d->lock->link = NULL;
                sim_lock_disconnected(d->lock);
        }
        indications_clear(d);
        if (dev_sim(d)->remove_parents_first && dev_sim(d)->bluez)
                d->obj = sim_obj_free(d->obj);
        sim_device_gatt_unexport(d);
        d->connect_call = sd_bus_message_unref(d->connect_call);
        d->pair_call = sd_bus_message_unref(d->pair_call);
        d->remove_call = sd_bus_message_unref(d->remove_call);
        for (size_t i = 0; i < d->n_disconnect_calls; i++)
                sd_bus_message_unref(d->disconnect_calls[i]);
        free(d->disconnect_calls);
        sd_event_source_disable_unref(d->link_timer);
        sd_event_source_disable_unref(d->resolve_timer);
        sd_event_source_disable_unref(d->expiry_timer);
        sd_event_source_disable_unref(d->pair_timer);
        sim_obj_free(d->obj);
        for (size_t i = 0; i < d->n_uuids; i++)
                free(d->uuids[i]);
        free(d->alias);
        free(d);
        return NULL;
}
