/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * lockhub-sim: a fake bluetoothd 5.66 (org.bluez on the bus in DBUS_SYSTEM_BUS_ADDRESS)
 * with simulated Nuki locks behind it, and a control service (org.lockhub.Sim) for
 * fault injection and read-back.
 *
 * Ownership: Sim owns the adapters (SimAdapter, persistent configuration plus run-time
 * state), the locks (SimLock, the firmware model; they outlive bluetoothd restarts) and
 * the org.bluez connection (SimBus). An adapter owns its devices (SimDevice); a device
 * owns its GATT objects. A device points at the lock it talks to; a lock points at the
 * device it is connected to (at most one link at a time, like the real firmware).
 *
 * Time: every delay is written in real-world microseconds and divided by the time scale
 * (sim_scaled()); the lock's clock runs scale times faster than CLOCK_MONOTONIC.
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "sim-bus.h"

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC  UINT64_C(1000000)

#define SIM_MAX_ADAPTERS 4
#define SIM_MAX_LOCKS    128

static inline void *mfree(void *p)
{
        free(p);
        return NULL;
}

typedef struct Sim Sim;
typedef struct SimAdapter SimAdapter;
typedef struct SimDevice SimDevice;
typedef struct SimLock SimLock;

/* Delays in real-world microseconds, before scaling. Defaults: sim_timings_default(). */
typedef struct SimTimings {
        uint64_t le_connect_timeout; /* kernel LE connection timeout: 20 s */
        uint64_t disconnect_delay;   /* DISCONNECT_TIMER: 2 s */
        uint64_t temporary_timeout;  /* main.conf TemporaryTimeout: 30 s */
        uint64_t power_delay;        /* controller acknowledges Powered: 40 ms */
        uint64_t scan_start_delay;   /* kernel confirms StartDiscovery: 15 ms */
        uint64_t gatt_discovery;     /* primary/char/desc discovery after link up: 350 ms */
        uint64_t att_round_trip;     /* request + response: 2 connection intervals, 60 ms */
        uint64_t adapter_probe;      /* after a (re)start, adapter appears: 150 ms */
        uint64_t auto_enable;        /* then AutoEnable powers it: 100 ms */
        uint64_t pairing_mode;       /* the lock leaves pairing mode after 5 min */
        uint64_t motor_action;       /* lock/unlock: 2.5 s; unlatch adds half of it */
        uint64_t lockngo;            /* lock'n'go timer: 20 s */
} SimTimings;

void sim_timings_default(SimTimings *t);

typedef struct SimAdvert {
        bool discoverable; /* LE General Discoverable flag */
        bool connectable;
        char name[32];
        /* ManufacturerData: one company id */
        uint16_t company;
        uint8_t mfr[32];
        size_t mfr_len;
        /* ServiceData: one UUID, or none */
        char sd_uuid[40];
        uint8_t sd[8];
        size_t sd_len;
        /* advertised service UUIDs */
        const char *uuids[2];
        size_t n_uuids;
        bool has_tx_power;
        int8_t tx_power;
} SimAdvert;

struct Sim {
        sd_event *event;
        sd_bus *ctl_bus;   /* org.lockhub.Sim; survives bluetoothd crashes */
        sd_bus *bluez_bus; /* org.bluez, NULL while "bluetoothd" is down */
        SimBus *bluez;
        sd_bus_slot *name_owner_slot;
        sd_event_source *restart_timer;
        sd_event_source *probe_timer;
        sd_event_source *stop_timer;
        uint32_t restart_ms; /* after a clean stop; UINT32_MAX: stay down */

        double scale;
        SimTimings t;
        bool experimental;        /* bluetoothd -E: ConnectDevice exists */
        bool disconnected_signal; /* 5.83+: Device1.Disconnected(reason, message) */
        /* reorderings bluetoothd does not guarantee against, to test a client's tolerance */
        bool connect_reply_first;  /* Connect reply before Connected=true */
        bool remove_parents_first; /* a device's InterfacesRemoved before its GATT objects' */
        unsigned seed;

        SimAdapter *adapters[SIM_MAX_ADAPTERS];
        size_t n_adapters;
        SimLock *locks[SIM_MAX_LOCKS];
        size_t n_locks;

        uint64_t start_usec;    /* CLOCK_MONOTONIC at start */
        int64_t start_realtime; /* seconds since the epoch at start */
        bool exiting;
        FILE *trace; /* --trace: benchmark timestamps (sim_trace()), NULL when off */
};

/* sim.c */
uint64_t sim_scaled(const Sim *sim, uint64_t real_usec);
uint64_t sim_now(const Sim *sim); /* CLOCK_MONOTONIC */
/* Simulated wall clock (seconds since the epoch, scaled). */
int64_t sim_wallclock(const Sim *sim);
/* One-shot timer in real-world microseconds (scaled); replaces *s. */
int sim_timer(Sim *sim, sd_event_source **s, uint64_t real_usec, sd_event_time_handler_t cb, void *userdata);
void sim_timer_stop(sd_event_source **s);
double sim_gauss(void);
/* --trace FILE: one line per traced fact, "<CLOCK_MONOTONIC usec> <lock> <what> <value>",
 * for tests/bench (a Lock Action received, a lock state set). No-op without --trace. */
void sim_trace(Sim *sim, const char *lock, const char *what, unsigned value);
int sim_bluez_start(Sim *sim);
void sim_bluez_stop(Sim *sim, bool clean);
/* Stops (clean: Powered=false cascade first) and restarts after restart_after_ms of
 * wall-clock time; UINT32_MAX: stays down. */
int sim_bluez_crash(Sim *sim, uint32_t restart_after_ms, bool clean);
/* sim-control.c: org.lockhub.Sim */
int sim_control_start(Sim *sim);
int sim_ctl_main(int argc, char **argv);
/* sim-test.c: the D-Bus client tests */
int sim_test_main(int argc, char **argv);
int sim_load_scenario(Sim *sim, const char *path);
int sim_load_default(Sim *sim);
SimLock *sim_find_lock(Sim *sim, const char *name);
SimAdapter *sim_find_adapter(Sim *sim, const char *name);
/* A lock's advert went out; deliver it to every adapter that can hear it. */
void sim_deliver_advert(Sim *sim, SimLock *lock, const SimAdvert *ad);

/* sim-adapter.c */
typedef struct SimDiscoveryClient SimDiscoveryClient;
struct SimAdapter {
        Sim *sim;
        unsigned index;
        char name[16]; /* hci0 */
        char path[32]; /* /org/bluez/hci0 */
        char address[18];
        char alias[64];
        int rssi_offset; /* added to every lock's RSSI as this adapter hears it */

        /* run time, reset by a bluetoothd restart */
        SimObj *obj;
        bool registered;
        bool powered;
        bool power_pending;
        bool hung;
        bool discovering;
        bool discoverable, pairable;
        uint32_t class_;
        sd_bus_message **held; /* calls swallowed while hung */
        size_t n_held;
        SimDiscoveryClient *clients;
        sd_event_source *power_timer;
        sd_event_source *scan_timer;
        sd_bus_message *power_call;
        bool power_target;

        SimDevice *devices;
        /* devices bluetoothd stored on disk (non-temporary), recreated on restart */
        char (*stored)[18];
        size_t n_stored;
};

int sim_adapter_new(Sim *sim, const char *name, const char *address, SimAdapter **ret);
SimAdapter *sim_adapter_free(SimAdapter *a);
int sim_adapter_register(SimAdapter *a); /* export on the current org.bluez bus */
void sim_adapter_unregister(SimAdapter *a, bool crash);
int sim_adapter_set_powered(SimAdapter *a, bool on, sd_bus_message *call);
void sim_adapter_device_found(SimAdapter *a, SimLock *lock, const SimAdvert *ad, int16_t rssi);
SimDevice *sim_adapter_find_device(SimAdapter *a, const char *address);
void sim_adapter_forget_stored(SimAdapter *a, const char *address);
void sim_adapter_store(SimAdapter *a, const char *address);
/* true if the call was swallowed because the adapter hangs */
bool sim_adapter_swallow(SimAdapter *a, sd_bus_message *call);
void sim_adapter_hang(SimAdapter *a);
/* the device's link is down after RemoveDevice: remove it and answer the call */
void sim_adapter_finish_removal(SimAdapter *a, SimDevice *d);
/* a client left the bus: its discovery session and filter (and notify sessions) go */
void sim_adapter_client_gone(SimAdapter *a, const char *owner);

/* sim-device.c */
typedef struct SimGattChr SimGattChr;
typedef struct SimGattSvc SimGattSvc;

typedef enum SimLinkState {
        SIM_LINK_DOWN,
        SIM_LINK_CONNECTING,
        SIM_LINK_UP,
        SIM_LINK_DISCONNECTING,
} SimLinkState;

struct SimDevice {
        SimAdapter *adapter;
        SimLock *lock;
        SimDevice *next;
        char address[18];
        char path[64];
        SimObj *obj;

        bool temporary;
        bool connectable;
        bool paired, bonded, trusted, blocked;
        char *alias; /* set by a client; NULL: falls back */
        char name[32];
        bool has_name;
        char *uuids[12];
        size_t n_uuids;
        bool has_rssi;
        int16_t rssi;
        bool has_tx_power;
        int16_t tx_power;
        bool has_mfr;
        uint16_t mfr_company;
        uint8_t mfr[32];
        size_t mfr_len;
        bool has_sd;
        char sd_uuid[40];
        uint8_t sd[8];
        size_t sd_len;

        SimLinkState link;
        bool services_resolved;
        uint16_t mtu;
        sd_bus_message *connect_call;
        bool connect_reply_path; /* ConnectDevice: reply with the path, fail as org.bluez.Failed */
        sd_bus_message **disconnect_calls;
        size_t n_disconnect_calls;
        sd_bus_message *remove_call; /* RemoveDevice waiting for the link to go down */
        sd_event_source *link_timer; /* connecting / disconnecting */
        sd_event_source *resolve_timer;
        sd_event_source *expiry_timer;

        sd_bus_message *pair_call;
        sd_event_source *pair_timer;
        struct SimIndication *ind_head, *ind_tail; /* indications in flight, in order */
        sd_event_source *ind_timer;

        /* GATT objects (the cache), kept after disconnect */
        SimGattSvc *services;
        unsigned gatt_generation; /* of the lock's table when discovered */
        bool gatt_exported;
};

int sim_device_new(SimAdapter *a, SimLock *lock, const char *address, bool temporary, SimDevice **ret);
/* Removes the object (and its GATT children) and frees it. */
SimDevice *sim_device_free(SimDevice *d);
int sim_device_register(SimDevice *d);
void sim_device_update_from_advert(SimDevice *d, const SimAdvert *ad, int16_t rssi, bool filtered, bool dup);
void sim_device_discovery_stopped(SimDevice *d);
void sim_device_restart_expiry(SimDevice *d);
/* The link went down without the client asking: link loss, power-off, remote
 * disconnect. Pending GATT calls fail with ATT 0x0e. */
void sim_device_link_lost(SimDevice *d, const char *why);
bool sim_device_is_connected(const SimDevice *d);
/* Adapter1.ConnectDevice: bring the link up, answer call with the device path. */
int sim_device_connect_device(SimDevice *d, sd_bus_message *call);
void sim_device_disconnect_for_removal(SimDevice *d, sd_bus_message *remove_call);
/* The lock indicates on a characteristic (value handle); delivered as Value. */
void sim_device_indicate(SimDevice *d, int chr_id, const uint8_t *data, size_t len);
/* The lock's table changed: indicate Service Changed (live re-add) or not (stale). */
void sim_device_service_changed(SimDevice *d);
/* A bus client left: drop its notify sessions. */
void sim_device_client_gone(SimDevice *d, const char *sender);
void sim_device_gatt_unexport(SimDevice *d);

/* sim-radio.c: the lock's side of the radio */
int sim_radio_start(SimLock *lock);
void sim_radio_stop(SimLock *lock);
int16_t sim_radio_rssi(SimLock *lock, SimAdapter *a);
bool sim_radio_reachable(SimLock *lock);
/* probability draw for packet loss: true if this exchange is lost */
bool sim_radio_lost(SimLock *lock);
uint64_t sim_radio_latency(SimLock *lock); /* real usec for one ATT round trip */
