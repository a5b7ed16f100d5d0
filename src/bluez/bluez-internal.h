/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Internals of the BlueZ client shared by its files (and by its unit tests).
 *
 * The object cache: one BluezObject per D-Bus path that carries one of the four
 * org.bluez interfaces we use (Adapter1, Device1, GattService1, GattCharacteristic1;
 * descriptors and everything else are ignored). Objects are indexed by path in a
 * tsearch() tree and also kept on one list per kind for iteration. Objects refer to
 * each other by path only, never by pointer, so removals in any order (bluetoothd
 * does not promise children first) never leave a dangling pointer.
 *
 * Links refer to their adapter and device by path too, and look the objects up when
 * they need them.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "lockhub/bluez.h"

#define BLUEZ_SERVICE         "org.bluez"
#define BLUEZ_IFACE_ADAPTER   "org.bluez.Adapter1"
#define BLUEZ_IFACE_DEVICE    "org.bluez.Device1"
#define BLUEZ_IFACE_SERVICE   "org.bluez.GattService1"
#define BLUEZ_IFACE_CHAR      "org.bluez.GattCharacteristic1"
#define DBUS_IFACE_PROPERTIES "org.freedesktop.DBus.Properties"
#define DBUS_IFACE_OM         "org.freedesktop.DBus.ObjectManager"

/* Intrusive doubly linked lists. */
#define LIST_FIELDS(t, name) t *name##_next, *name##_prev
#define LIST_PREPEND(name, head, item)                                  \
        do {                                                            \
                __typeof__(*(head)) **_head = &(head), *_item = (item); \
                _item->name##_prev = NULL;                              \
                _item->name##_next = *_head;                            \
                if (*_head)                                             \
                        (*_head)->name##_prev = _item;                  \
                *_head = _item;                                         \
        } while (0)
#define LIST_REMOVE(name, head, item)                                         \
        do {                                                                  \
                __typeof__(*(head)) **_head = &(head), *_item = (item);       \
                if (_item->name##_next)                                       \
                        _item->name##_next->name##_prev = _item->name##_prev; \
                if (_item->name##_prev)                                       \
                        _item->name##_prev->name##_next = _item->name##_next; \
                else                                                          \
                        *_head = _item->name##_next;                          \
                _item->name##_next = _item->name##_prev = NULL;               \
        } while (0)
#define LIST_FOREACH(name, i, head) for ((i) = (head); (i); (i) = (i)->name##_next)
#define LIST_FOREACH_SAFE(name, i, n, head) \
        for ((i) = (head); (i) && (((n) = (i)->name##_next), 1); (i) = (n))

typedef enum BluezObjectKind {
        BLUEZ_OBJECT_ADAPTER,
        BLUEZ_OBJECT_DEVICE,
        BLUEZ_OBJECT_SERVICE,
        BLUEZ_OBJECT_CHAR,
        _BLUEZ_OBJECT_KIND_MAX,
} BluezObjectKind;

/* Bits saying which properties a parse or an invalidation touched. */
enum {
        BLUEZ_PROP_ADDRESS = 1U << 0,
        BLUEZ_PROP_ADDRESS_TYPE = 1U << 1,
        BLUEZ_PROP_NAME = 1U << 2,
        BLUEZ_PROP_POWERED = 1U << 3,
        BLUEZ_PROP_DISCOVERING = 1U << 4,
        BLUEZ_PROP_RSSI = 1U << 5,
        BLUEZ_PROP_TX_POWER = 1U << 6,
        BLUEZ_PROP_MANUFACTURER_DATA = 1U << 7,
        BLUEZ_PROP_SERVICE_DATA = 1U << 8,
        BLUEZ_PROP_UUIDS = 1U << 9,
        BLUEZ_PROP_CONNECTED = 1U << 10,
        BLUEZ_PROP_SERVICES_RESOLVED = 1U << 11,
        BLUEZ_PROP_PAIRED = 1U << 12,
        BLUEZ_PROP_ADAPTER = 1U << 13,
        BLUEZ_PROP_UUID = 1U << 14,
        BLUEZ_PROP_PARENT = 1U << 15, /* Device (of a service) / Service (of a char) */
        BLUEZ_PROP_FLAGS = 1U << 16,
        BLUEZ_PROP_NOTIFYING = 1U << 17,
        BLUEZ_PROP_VALUE = 1U << 18,
        BLUEZ_PROP_MTU = 1U << 19,
};
#define BLUEZ_PROPS_ADVERT \
        (BLUEZ_PROP_RSSI | BLUEZ_PROP_TX_POWER | BLUEZ_PROP_MANUFACTURER_DATA | BLUEZ_PROP_SERVICE_DATA)

typedef struct BluezObject BluezObject;
struct BluezObject {
        char *path; /* first: the tsearch key */
        BluezObjectKind kind;
        LIST_FIELDS(BluezObject, objects);

        /* every kind */
        char *uuid;    /* service, char */
        char *parent;  /* device: its adapter; service: its device; char: its service */
        char *address; /* adapter, device */
        char *address_type;
        char *name; /* adapter: basename of the path; device: Name property */

        /* adapter */
        bool powered, discovering;
        bool selected;

        /* device */
        bool has_rssi, has_tx_power;
        int16_t rssi, tx_power;
        bool connected, services_resolved, paired;
        char **uuids;
        BluezManufacturerData *mfr;
        size_t n_mfr;
        BluezServiceData *sd;
        size_t n_sd;

        /* characteristic */
        char **flags;
        bool notifying;
        bool has_mtu;
        uint16_t mtu;
};

/* Filled by a characteristic parse: the Value seen, borrowed from the message. */
typedef struct BluezValue {
        bool present;
        const uint8_t *data;
        size_t size;
} BluezValue;

BluezObject *bluez_object_new(BluezObjectKind kind, const char *path);
BluezObject *bluez_object_free(BluezObject *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(BluezObject *, bluez_object_free);
const char *bluez_object_kind_interface(BluezObjectKind kind);
/* The kind whose interface this is, or -EINVAL. */
int bluez_object_kind_from_interface(const char *iface);

/* Reads an a{sv} of `o`'s interface at the current position of m; ORs the touched
 * properties into *changed. Unknown names and unexpected types are skipped. For
 * characteristics, Value is not stored but returned in *value (may be NULL). */
int bluez_object_parse_props(BluezObject *o, sd_bus_message *m, unsigned *changed, BluezValue *value);
/* Forgets the named properties (PropertiesChanged `invalidated`). */
void bluez_object_invalidate(BluezObject *o, char *const *names, unsigned *changed);

/*
 * DuplicateData=true makes bluetoothd clear a device's ManufacturerData and
 * ServiceData and re-add (and signal) every entry of each advert; entries that an
 * advert lacks disappear without any signal (5.66 device_set_service_data(): only
 * additions emit PropertiesChanged). With a filter set, every advert signals RSSI. So
 * while our DuplicateData session runs, a PropertiesChanged that carries RSSI is one
 * advert, and a field it does not carry was not in that advert: this clears it. Call
 * only then. Returns the properties it cleared.
 */
unsigned bluez_device_advert_fixup(BluezObject *o, unsigned changed);

/* Case-insensitive UUID comparison (BlueZ sends lower case; users may not). */
bool bluez_uuid_equal(const char *a, const char *b);
/* Is `path` strictly below `parent` ("/a/b" below "/a")? */
bool bluez_path_is_below(const char *path, const char *parent);

/* ---- the client -------------------------------------------------------------- */

typedef enum BluezDiscoveryState {
        BLUEZ_DISCOVERY_OFF,
        BLUEZ_DISCOVERY_FILTER,   /* SetDiscoveryFilter pending */
        BLUEZ_DISCOVERY_STARTING, /* StartDiscovery pending */
        BLUEZ_DISCOVERY_ON,
        BLUEZ_DISCOVERY_STOPPING, /* StopDiscovery pending */
        _BLUEZ_DISCOVERY_STATE_MAX,
} BluezDiscoveryState;

/* Per selected adapter (by path): our discovery session. Lives as long as the
 * adapter object. */
typedef struct BluezAdapterState BluezAdapterState;
struct BluezAdapterState {
        BluezClient *client;
        char *path;
        char *name;
        BluezDiscoveryState discovery;
        bool duplicate_data;       /* our filter with DuplicateData=true was accepted */
        BluezScanMode filter_mode; /* the filter last sent */
        sd_bus_slot *discovery_slot;
        sd_bus_slot *refilter_slot; /* SetDiscoveryFilter while discovering */
        sd_event_source *discovery_retry;
        LIST_FIELDS(BluezAdapterState, adapters);
};

typedef struct BluezPending BluezPending; /* power cycle, remove device */

typedef struct BluezOp BluezOp;

typedef struct BluezEarly BluezEarly; /* a notification that came during SETUP */
struct BluezEarly {
        BluezEarly *next;
        char *uuid;
        size_t size;
        uint8_t data[];
};

struct BluezLink {
        unsigned n_ref;
        BluezClient *client; /* NULL once the client is gone */
        char *address;
        char **notify_uuids;
        const BluezLinkOps *ops;
        void *userdata;
        bool freed;

        BluezLinkState state;
        BluezPriority priority;
        uint64_t seq;          /* FIFO within a priority */
        bool reconnect;        /* connect asked for while DISCONNECTING */
        bool released;         /* bluez_link_release(): CONNECTED but may give up its slot */
        bool teardown_failure; /* DISCONNECTING ends in failed() rather than disconnected() */
        bool teardown_silent;  /* DISCONNECTING ends without a callback */
        int teardown_error;
        char *err_name, *err_message; /* kept for the callback at the end of teardown */

        char *adapter_path, *adapter_name, *device_path; /* while not IDLE/QUEUED */
        unsigned attempts;
        uint64_t attempt_started; /* CLOCK_MONOTONIC */
        bool saw_disconnect;      /* Connected=false seen during this attempt */
        unsigned n_notify_pending;

        sd_bus_slot *slot;          /* Connect / Disconnect in flight */
        sd_bus_slot **notify_slots; /* StartNotify calls, one per notify uuid */
        sd_event_source *timer;     /* queue deadline, resolve timeout, retry wait */
        sd_event_source *idle_timer;

        BluezOp *ops_head, *ops_tail; /* GATT ops; head is in flight when op_slot is set */
        sd_bus_slot *op_slot;
        char *reading_path; /* char path while a ReadValue is pending */
        char *stray_path;   /* device we sent a Disconnect to while IDLE */
        BluezEarly *early;  /* notifications during SETUP, delivered after connected() */
        unsigned n_early;

        LIST_FIELDS(BluezLink, links);
};

struct BluezClient {
        sd_event *event;
        sd_bus *bus;
        bool own_bus;
        BluezCallbacks cb;
        void *userdata;

        char **adapters_conf;
        unsigned max_connections;
        uint64_t connect_timeout, resolve_timeout, call_timeout, idle_timeout, queue_timeout;
        unsigned connect_attempts;

        sd_bus_slot *match_slots[4];
        unsigned n_matches_installed;
        bool started;
        sd_bus_slot *owner_slot; /* GetNameOwner */
        char *owner;             /* unique name of bluetoothd, NULL when not running */
        sd_bus_slot *gmo_slot;   /* GetManagedObjects */
        sd_event_source *gmo_retry;
        bool up;

        void *index; /* tsearch root: BluezObject* by path */
        BluezObject *objects[_BLUEZ_OBJECT_KIND_MAX];
        BluezAdapterState *adapter_states;
        bool discovery_wanted;
        BluezScanMode scan_mode; /* bluez_client_set_scan_mode() */

        BluezLink *links;
        uint64_t link_seq;
        sd_event_source *schedule_defer;
        sd_event_source *exit_source;

        BluezPending *pending;
};

BluezObject *bluez_client_find_object(BluezClient *c, const char *path);
BluezObject *bluez_client_find_device(BluezClient *c, const char *adapter_path, const char *address);
BluezObject *bluez_client_find_char(BluezClient *c, const char *device_path, const char *uuid);
BluezAdapterState *bluez_client_adapter_state(BluezClient *c, const char *adapter_path);

/* A method call to org.bluez with an explicit timeout. m is built by the caller. */
int bluez_call(BluezClient *c, sd_bus_message *m, uint64_t timeout, sd_bus_message_handler_t cb,
               void *userdata, sd_bus_slot **ret_slot);
int bluez_new_call(BluezClient *c, const char *path, const char *iface, const char *member,
                   sd_bus_message **ret);
int bluez_arm_timer(BluezClient *c, sd_event_source **s, uint64_t usec, sd_event_time_handler_t cb,
                    void *userdata);

/* link side, called by the client */
void bluez_links_schedule(BluezClient *c);
void bluez_links_device_changed(BluezClient *c, BluezObject *dev, unsigned changed);
void bluez_links_device_removed(BluezClient *c, const char *path);
void bluez_links_char_added(BluezClient *c, BluezObject *chr);
void bluez_links_value(BluezClient *c, BluezObject *chr, const BluezValue *v);
void bluez_links_service_lost(BluezClient *c);
void bluez_links_client_freed(BluezClient *c);
void bluez_links_exiting(BluezClient *c);
unsigned bluez_links_count_on_adapter(BluezClient *c, const char *adapter_path);

/* The queue order: negative if a goes before b. */
int bluez_link_queue_compare(BluezPriority pa, uint64_t seqa, BluezPriority pb, uint64_t seqb);
