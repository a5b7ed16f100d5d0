/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The BlueZ client: the only code that knows org.bluez. Lock drivers see a transport
 * (adverts in; connect, write, read, indications out) and never D-Bus.
 *
 * Written against bluetoothd 5.66 as described in reference/bluez.md; section 11 of
 * that file is the rule book and every rule is followed here:
 *
 *  - Object cache. Matches for InterfacesAdded/Removed, PropertiesChanged (sender
 *    org.bluez) and NameOwnerChanged(org.bluez) are installed first; only when all are
 *    confirmed is GetNameOwner and then GetManagedObjects called. Signals arriving
 *    while GetManagedObjects is pending are dropped: bluetoothd flushes its queued
 *    signals before any reply, so the snapshot already contains them. `invalidated`
 *    properties are removed from the cache; unknown interfaces and properties, and
 *    properties of an unexpected D-Bus type, are ignored. Signals from a sender other
 *    than the current owner of org.bluez are ignored.
 *  - bluetoothd restart or crash (owner lost): every object is dropped, every link
 *    that was not idle is reported down (-EHOSTDOWN), adapters are reported removed and
 *    the service callback says "down". When a new owner appears the cache is rebuilt,
 *    discovery restarted, and queued links are connected again.
 *  - Adapters: all of them ("auto") or those named in the configuration (hciN or
 *    address). Only selected adapters are scanned on and connected through; adverts
 *    of devices on other adapters are not delivered.
 *  - Discovery: SetDiscoveryFilter (by default {Transport="le", DuplicateData=false};
 *    see bluez_client_set_scan_mode()) then StartDiscovery, while the owner wants it
 *    and the adapter is powered; restarted after a power cycle or a bluetoothd
 *    restart. No UUIDs key: BlueZ matches that key only against the advertised
 *    service-UUID list, and a Nuki lock's iBeacon frame (the one with the
 *    state-changed bit) carries manufacturer data only, and its pairing-mode advert
 *    carries service data, not a service-UUID list. Setting any filter also makes
 *    BlueZ create objects for non-discoverable adverts and signal RSSI with every
 *    advert. With DuplicateData=false the manufacturer data BlueZ holds is that of the
 *    latest advert with that company ID (a change of bytes is signalled), so the
 *    state-changed bit in it is current, also in an RSSI-only signal.
 *    Adverts are not filtered here: the driver's parser decides what is a lock.
 *  - Connections: one BluezLink per remote device (address) that a driver wants to
 *    talk to. Requests wait in a queue ordered by priority (user commands, then
 *    refreshes, then maintenance; FIFO within a priority) until an adapter that
 *    sees the device has a free slot (max_connections per adapter). Connect has an
 *    explicit timeout; after its reply the link waits for ServicesResolved=true;
 *    then characteristics are looked up by UUID under the device path (never cached
 *    across connections) and StartNotify is called on the ones the driver named.
 *  - Errors are translated once, by bluez_error_translate(): a -errno, whether the
 *    error is worth retrying, and the D-Bus name and message kept for the logs.
 *
 * Connection state machine of a BluezLink (one per device; function behind each
 * transition in brackets):
 *
 *                       bluez_link_connect()
 *        +--------+  -----------------------> +--------+  queue deadline
 *        |  IDLE  | <-----------------------  | QUEUED | ----------------> IDLE, failed()
 *        +--------+  bluez_link_disconnect()  +--------+
 *          ^  ^                                   | slot free and device seen
 *          |  |                                   v        [link_start_connect]
 *          |  |  failed()                   +------------+ retryable error, attempt was quick
 *          |  +-----------------------------| CONNECTING |------------------+
 *          |    fatal error / no attempts   +------------+                  v
 *          |                                      | Connect() ok    +-----------+
 *          |                                      v                 | WAIT_DOWN | Connected=false
 *          |                                +-----------+           +-----------+ or 5 s
 *          |                                | RESOLVING |<--------------+ |  [on_retry_timer]
 *          |                                +-----------+ (if resolved)   v
 *          |                                      | ServicesResolved=true   CONNECTING again
 *          |                                      v        [link_setup]
 *          |                                +-----------+ Connected=false → WAIT_DOWN (retry)
 *          |                                |   SETUP   | or failed(); timeout/StartNotify
 *          |                                +-----------+ error → failed() + DISCONNECTING
 *          |                                                [link_fail_and_teardown]
 *          |                                      | every StartNotify answered
 *          |                                      v        [link_set_connected]
 *          |  Connected=false: disconnected()  +-----------+
 *          +-----------------------------------| CONNECTED | GATT ops run one at a time
 *          |                                   +-----------+
 *          |                                      | idle timer, bluez_link_disconnect(),
 *          |                                      | [link_teardown]
 *          |                                      v
 *          |   reply or Connected=false     +---------------+
 *          +--------------------------------| DISCONNECTING | Device1.Disconnect()
 *             [link_finish_teardown]        +---------------+
 *
 * Stray connections: a device that is connected while its link is IDLE (after a
 * restart of ours, or connected by someone else) is disconnected, once
 * (bluez.md 3.5: connections outlive their client, and a connected lock stops
 * advertising).
 *
 * When the event loop exits, every link that is up or coming up is disconnected
 * (from an exit source that runs before sd-bus closes the connection).
 *
 * Bluetoothd lost: any state but IDLE/QUEUED → IDLE with -EHOSTDOWN. Device object
 * removed: → IDLE with -ENODEV. A connect request made while DISCONNECTING is kept:
 * when the link is down, disconnected() is reported for the old connection (a
 * failed() of an aborted attempt is not: the new request carries on) and the link
 * goes back to QUEUED.
 *
 * Ownership and callbacks: the BluezClient is owned by whoever created it; links by
 * the driver that created them (bluez_link_free() may be called from inside any link
 * callback). Callbacks are never called from inside the bluez_* function that
 * triggers them; they run from the event loop. Pointers passed to callbacks are
 * borrowed and valid only during the call. Nothing secret passes through this module
 * in a form it could log: written bytes are never logged.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "lockhub/macro.h"

#define BLUEZ_USEC_PER_SEC                    1000000ULL
#define BLUEZ_CONNECT_TIMEOUT_USEC_DEFAULT    (25 * BLUEZ_USEC_PER_SEC) /* kernel's 20 s + margin */
#define BLUEZ_RESOLVE_TIMEOUT_USEC_DEFAULT    (20 * BLUEZ_USEC_PER_SEC)
#define BLUEZ_CALL_TIMEOUT_USEC_DEFAULT       (10 * BLUEZ_USEC_PER_SEC)
#define BLUEZ_DISCONNECT_TIMEOUT_USEC_DEFAULT (10 * BLUEZ_USEC_PER_SEC) /* bluetoothd waits 2 s */
#define BLUEZ_QUEUE_TIMEOUT_USEC_DEFAULT      (60 * BLUEZ_USEC_PER_SEC)
#define BLUEZ_CONNECT_ATTEMPTS_DEFAULT        3U
#define BLUEZ_MAX_CONNECTIONS_DEFAULT         1U
/* GATT attribute values are at most 512 bytes (Core spec, Vol 3 Part F 3.2.9). */
#define BLUEZ_VALUE_MAX 512U

typedef struct BluezClient BluezClient;
typedef struct BluezLink BluezLink;

typedef struct BluezConfig {
        /* NULL, empty, or containing "auto": every adapter. Else "hciN" names or
         * adapter addresses. The strings are copied. */
        const char *const *adapters;
        unsigned max_connections;      /* per adapter; 0: default */
        uint64_t connect_timeout_usec; /* one Device1.Connect call; 0: default */
        uint64_t resolve_timeout_usec; /* Connect reply to ServicesResolved=true; 0: default */
        uint64_t call_timeout_usec;    /* every other call (GATT, discovery, properties); 0: default */
        uint64_t idle_disconnect_usec; /* connected with no I/O this long → Disconnect; 0: never */
        uint64_t queue_timeout_usec;   /* waiting for a slot and for the device; 0: default */
        unsigned connect_attempts;     /* attempts per request for retryable errors; 0: default */
} BluezConfig;

/* A translated error. name/message are BlueZ's (or the bus's) and may be NULL for
 * errors raised here; error is a negative errno; never 0 when reported. */
typedef struct BluezError {
        int error;
        bool retryable;
        const char *name;
        const char *message;
} BluezError;

/*
 * D-Bus error name + message → -errno. Retryable: the same call may succeed after
 * the link went down or a moment later (le-connection-abort-by-local,
 * br-connection-canceled, "Operation already in progress", InProgress, Busy, ATT
 * error 0x0e, timeouts, ConnectionAttemptFailed). Never returns 0. Pure function.
 *
 *   org.bluez.Error.Failed "le-connection-abort-by-local"   -ECONNABORTED  retryable
 *   org.bluez.Error.Failed "br-connection-canceled"         -ECANCELED     retryable
 *   org.bluez.Error.Failed "Operation already in progress"  -EALREADY      retryable
 *   org.bluez.Error.Failed "Not connected"                  -ENOTCONN
 *   org.bluez.Error.Failed "No discovery started"           -ESRCH
 *   org.bluez.Error.Failed "...ATT error: 0x0e"             -ECONNRESET    retryable
 *   org.bluez.Error.Failed "...ATT error: 0x.."             -EPROTO
 *   org.bluez.Error.Failed (anything else)                  -EIO
 *   (also the malformed org.bluez.Failed that ConnectDevice sends)
 *   org.bluez.Error.InProgress                              -EINPROGRESS   retryable
 *   org.bluez.Error.Busy                                    -EBUSY         retryable
 *   org.bluez.Error.NotReady                                -ENETDOWN (adapter off)
 *   org.bluez.Error.NotPermitted                            -EPERM
 *   org.bluez.Error.NotAuthorized                           -EACCES
 *   org.bluez.Error.InvalidArguments                        -EINVAL
 *   org.bluez.Error.NotSupported / NotAvailable             -EOPNOTSUPP
 *   org.bluez.Error.NotConnected                            -ENOTCONN
 *   org.bluez.Error.AlreadyConnected                        -EISCONN
 *   org.bluez.Error.AlreadyExists                           -EEXIST
 *   org.bluez.Error.DoesNotExist                            -ENOENT
 *   org.bluez.Error.Blocked                                 -ERFKILL
 *   org.bluez.Error.ConnectionAttemptFailed                 -EHOSTUNREACH  retryable
 *   org.bluez.Error.Authentication{Failed,Rejected}         -EACCES
 *   org.bluez.Error.AuthenticationCanceled                  -ECANCELED
 *   org.bluez.Error.AuthenticationTimeout                   -ETIMEDOUT
 *   org.freedesktop.DBus.Error.UnknownObject                -ENODEV (device object gone)
 *   org.freedesktop.DBus.Error.UnknownMethod                -EOPNOTSUPP
 *   org.freedesktop.DBus.Error.{UnknownProperty,InvalidArgs,InvalidSignature,
 *                               PropertyReadOnly}           -EINVAL
 *   org.freedesktop.DBus.Error.{NoReply,Timeout,TimedOut}   -ETIMEDOUT     retryable
 *   org.freedesktop.DBus.Error.{ServiceUnknown,NameHasNoOwner,Disconnected}
 *                                                           -EHOSTDOWN (bluetoothd gone)
 *   org.freedesktop.DBus.Error.NoMemory                     -ENOMEM
 *   org.freedesktop.DBus.Error.AccessDenied                 -EACCES
 *   anything else                                           -EIO
 */
int bluez_error_translate(const char *name, const char *message, bool *ret_retryable);
/* Same, from an sd-bus error; fills *ret with pointers into e. */
void bluez_error_from_bus(const sd_bus_error *e, BluezError *ret);

/* ---- adverts ------------------------------------------------------------------ */

typedef struct BluezManufacturerData {
        uint16_t company; /* Bluetooth SIG company identifier, e.g. 0x004c Apple (iBeacon) */
        const uint8_t *data;
        size_t size;
} BluezManufacturerData;

typedef struct BluezServiceData {
        const char *uuid; /* 128-bit, lower case as BlueZ sends it */
        const uint8_t *data;
        size_t size;
} BluezServiceData;

/* One sighting, delivered when an advert changed the device (RSSI, ManufacturerData,
 * ServiceData or TxPower signalled) or when a device object appears with an RSSI.
 * While our discovery session runs with DuplicateData=true (BLUEZ_SCAN_LE_DUPLICATES),
 * manufacturer and service data are those of the latest advert: bluetoothd signals
 * only what an advert has, never what it lacks, so a field missing from an advert's
 * signal is reported empty here (e.g. the pairing-mode service data goes when the
 * lock leaves pairing mode).
 * Otherwise they are BlueZ's accumulated values, which never drop an entry.
 * Only real signals are delivered: a value BlueZ still holds from an earlier advert
 * (RSSI stays until discovery stops, also for a device that went away) is never
 * delivered again, so a delivery always means the device was heard just now.
 * Everything is borrowed. */
typedef struct BluezAdvert {
        const char *adapter;      /* "hci0" */
        const char *address;      /* "AA:BB:CC:DD:EE:FF", from the Address property */
        const char *address_type; /* "public" or "random"; may be NULL */
        const char *name;         /* Name property; NULL when unknown */
        bool has_rssi;
        int16_t rssi; /* dBm */
        bool has_tx_power;
        int16_t tx_power;
        bool connected;
        bool paired;
        const BluezManufacturerData *manufacturer_data;
        size_t n_manufacturer_data;
        const BluezServiceData *service_data;
        size_t n_service_data;
        char *const *uuids; /* NULL-terminated, may be NULL */
} BluezAdvert;

/* ---- adapters and the client ------------------------------------------------- */

typedef enum BluezAdapterEvent {
        BLUEZ_ADAPTER_ADDED,
        BLUEZ_ADAPTER_REMOVED,
        BLUEZ_ADAPTER_POWERED_ON,
        BLUEZ_ADAPTER_POWERED_OFF,
        BLUEZ_ADAPTER_DISCOVERY_ON,  /* our discovery session is running */
        BLUEZ_ADAPTER_DISCOVERY_OFF, /* ... and is not, any more */
        _BLUEZ_ADAPTER_EVENT_MAX,
} BluezAdapterEvent;

typedef struct BluezAdapterInfo {
        const char *name;    /* "hci0" */
        const char *address; /* may be NULL if BlueZ did not say */
        bool powered;
        bool discovering;      /* BlueZ's Discovering: true also when only another client scans */
        bool discovery_active; /* our session is running */
        unsigned n_links;      /* links using a slot of this adapter */
} BluezAdapterInfo;

typedef struct BluezCallbacks {
        /* bluetoothd is there and the cache is built (up), or it went away (down). */
        void (*service)(BluezClient *c, bool up, void *userdata);
        /* Only for selected adapters. */
        void (*adapter)(BluezClient *c, BluezAdapterEvent event, const BluezAdapterInfo *info,
                        void *userdata);
        void (*advert)(BluezClient *c, const BluezAdvert *advert, void *userdata);
} BluezCallbacks;

/* Result of a client-level operation; err is NULL on success. */
typedef void (*bluez_result_cb)(BluezClient *c, const BluezError *err, void *userdata);

/*
 * Creates a client on `event`. bus may be NULL: the client then opens its own system
 * bus connection (honouring $DBUS_SYSTEM_BUS_ADDRESS), which is what a daemon should
 * do: BlueZ keys notify and discovery sessions by the caller's unique name. The
 * client does nothing until bluez_client_start(). cb may be NULL.
 */
int bluez_client_new(sd_event *event, sd_bus *bus, const BluezConfig *config, const BluezCallbacks *cb,
                     void *userdata, BluezClient **ret);
/* Fails every pending operation silently (no callbacks), frees links' resources
 * (links themselves stay owned by their drivers and become inert; free them before
 * or after). Must not be called from inside one of the client's callbacks. */
BluezClient *bluez_client_free(BluezClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(BluezClient *, bluez_client_free);

/* Installs the matches, then looks for bluetoothd. Returns 0 or -errno. */
int bluez_client_start(BluezClient *c);
sd_bus *bluez_client_get_bus(BluezClient *c);
/* True once the object cache is built for the current bluetoothd. */
bool bluez_client_is_up(BluezClient *c);

/* Keep discovery running on every selected, powered adapter (or stop our session). */
int bluez_client_set_discovery(BluezClient *c, bool on);
/* How discovery listens (the discovery filter of our session). Every BluezAdvert is a
 * real PropertiesChanged of an advert property or a new device object with an RSSI: a
 * value BlueZ merely still holds is never delivered again.
 *   LE (the default): {Transport le, DuplicateData false}. LE scanning only (no BR/EDR
 *     inquiry on a dual-mode controller); bluetoothd 5.66 signals RSSI with every
 *     advert, ManufacturerData/ServiceData when their bytes change (entries are never
 *     dropped), and creates devices for adverts without the discoverable flag.
 *   LE_DUPLICATES: {Transport le, DuplicateData true}: as LE, and the advert data is
 *     rebuilt with every advert, so what a lock stopped sending goes (pairing mode).
 *   QUIET: no filter. Transport auto (interleaved BR/EDR inquiry on a dual-mode
 *     controller); RSSI only when it moved by 8 dBm, advert data when its bytes change;
 *     only discoverable LE adverts create devices. An idle device is not signalled at all. */
typedef enum BluezScanMode {
        BLUEZ_SCAN_LE,
        BLUEZ_SCAN_LE_DUPLICATES,
        BLUEZ_SCAN_QUIET,
        _BLUEZ_SCAN_MODE_MAX,
} BluezScanMode;
void bluez_client_set_scan_mode(BluezClient *c, BluezScanMode mode);
const char *bluez_scan_mode_to_string(BluezScanMode mode);

/* Selected adapters currently known, in no particular order; i from 0. Returns
 * -ENOENT past the end. The info's strings are valid until the next event-loop
 * iteration. */
int bluez_client_get_adapter(BluezClient *c, size_t i, BluezAdapterInfo *ret);

/* Recovery-ladder helpers. Both call cb exactly once from the event loop unless the
 * client is freed first. userdata must stay valid until then. */
/* Set Powered=false, then Powered=true, on the named adapter ("hci0"). -ENODEV if the
 * adapter is unknown or not selected. */
int bluez_client_power_cycle(BluezClient *c, const char *adapter, bluez_result_cb cb, void *userdata);
/* Adapter1.RemoveDevice for this address on every selected adapter that knows it (it
 * forgets pairing data and the GATT cache; a connected device is disconnected first).
 * -ENOENT if no adapter knows the address (nothing to do). */
int bluez_client_remove_device(BluezClient *c, const char *address, bluez_result_cb cb, void *userdata);
/* The selected adapter ("hci0") whose device object has this address, one where it is
 * connected first; known without adverts (a paired device stays). NULL when none.
 * Valid until the next event-loop iteration. */
const char *bluez_client_device_adapter(BluezClient *c, const char *address);

/* Pure helper, exposed for tests: is an adapter with this name/address selected by a
 * configuration's adapters list? */
bool bluez_adapter_is_selected(const char *const *config_adapters, const char *name, const char *address);

/* ---- links --------------------------------------------------------------------- */

typedef enum BluezPriority {
        BLUEZ_PRIORITY_USER,        /* a person is waiting: lock/unlock, pairing */
        BLUEZ_PRIORITY_REFRESH,     /* the lock has news (state-changed bit) */
        BLUEZ_PRIORITY_MAINTENANCE, /* log sync, time sync, code reconciliation */
        _BLUEZ_PRIORITY_MAX,
} BluezPriority;

typedef enum BluezLinkState {
        BLUEZ_LINK_IDLE,
        BLUEZ_LINK_QUEUED,
        BLUEZ_LINK_CONNECTING,
        BLUEZ_LINK_WAIT_DOWN,
        BLUEZ_LINK_RESOLVING,
        BLUEZ_LINK_SETUP,
        BLUEZ_LINK_CONNECTED,
        BLUEZ_LINK_DISCONNECTING,
        _BLUEZ_LINK_STATE_MAX,
} BluezLinkState;

typedef struct BluezLinkOps {
        /* CONNECTED: services resolved, notifications on. */
        void (*connected)(BluezLink *l, void *userdata);
        /* Was CONNECTED, now IDLE. err NULL: we disconnected (idle timer or
         * bluez_link_disconnect()); else why (remote disconnect, bluetoothd gone...). */
        void (*disconnected)(BluezLink *l, const BluezError *err, void *userdata);
        /* A connect request ended without reaching CONNECTED. When the cause is found
         * here (our timeouts, StartNotify refused) this is called at once and the
         * Disconnect that cleans up runs on in the background: the link is
         * DISCONNECTING (holding its slot) for a moment, and a connect request made
         * from this callback is served after it. */
        void (*failed)(BluezLink *l, const BluezError *err, void *userdata);
        /* A Value notification/indication of a characteristic in notify_uuids, raw bytes
         * of one PDU (reassembly is the driver's job). Only while CONNECTED: those that
         * arrive during SETUP are kept and delivered right after connected(). */
        void (*indication)(BluezLink *l, const char *uuid, const uint8_t *data, size_t size, void *userdata);
} BluezLinkOps;

typedef void (*bluez_write_cb)(BluezLink *l, const BluezError *err, void *userdata);
typedef void (*bluez_read_cb)(BluezLink *l, const BluezError *err, const uint8_t *data, size_t size,
                              void *userdata);

/* A link to the device with this address (any adapter). notify_uuids: characteristics
 * to StartNotify on every connection when present (missing ones are skipped; use
 * bluez_link_has_characteristic()). Copied. ops is borrowed and must outlive the link. */
int bluez_link_new(BluezClient *c, const char *address, const char *const *notify_uuids,
                   const BluezLinkOps *ops, void *userdata, BluezLink **ret);
/* Cancels queued requests and GATT ops without callbacks; a connection that is up or
 * being set up is disconnected in the background. Accepts NULL; returns NULL. */
BluezLink *bluez_link_free(BluezLink *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(BluezLink *, bluez_link_free);

/*
 * Ask for a connection. Returns 1 if the link is CONNECTED already (the idle timer is
 * restarted; no callback follows), 0 if connected() or failed() will follow. Asking
 * again while queued raises the priority if the new one is higher.
 */
int bluez_link_connect(BluezLink *l, BluezPriority priority);
/* Returns 1 when nothing was connected or being connected (a queued request is
 * simply dropped, no callback), 0 when disconnected() (or failed() if it was not
 * yet CONNECTED, with -ECANCELED) will follow. */
int bluez_link_disconnect(BluezLink *l);

/* The owner has nothing to do on the link for now. It stays connected (until the idle
 * timer), but while another link waits for a connection slot on its adapter it is
 * disconnected at once to make room (disconnected() with err NULL, as for the idle timer).
 * bluez_link_connect() makes it the owner's again. No-op unless CONNECTED. */
void bluez_link_release(BluezLink *l);

BluezLinkState bluez_link_get_state(const BluezLink *l);
const char *bluez_link_get_address(const BluezLink *l);
/* "hci0" while not IDLE/QUEUED, else NULL. */
const char *bluez_link_get_adapter(const BluezLink *l);
/* While CONNECTED: does the device have a characteristic with this UUID? */
bool bluez_link_has_characteristic(const BluezLink *l, const char *uuid);

/* GATT operations, queued per link and run one at a time in order, each with the
 * call timeout. Only while CONNECTED (-ENOTCONN otherwise); -ENOENT when the device
 * has no such characteristic; -EMSGSIZE above BLUEZ_VALUE_MAX. cb is called exactly
 * once (with -ENOTCONN if the link goes down first) unless the link is freed.
 * Writes are "request" (with response). Each op restarts the idle timer. */
int bluez_link_write(BluezLink *l, const char *uuid, const void *data, size_t size, bluez_write_cb cb,
                     void *userdata);
/* While a read is pending, Value signals of that characteristic are taken as the read's
 * echo (bluetoothd sends one before the reply) and not delivered as indications. */
int bluez_link_read(BluezLink *l, const char *uuid, bluez_read_cb cb, void *userdata);

const char *bluez_link_state_to_string(BluezLinkState s);
const char *bluez_priority_to_string(BluezPriority p);
const char *bluez_adapter_event_to_string(BluezAdapterEvent e);
