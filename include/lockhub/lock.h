/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The generic lock model: what MQTT, the D-Bus API, health and the store see of a
 * lock, whatever its vendor. A driver (src/nuki/ for Nuki) fills it in through the
 * lock_set_*() functions and carries out commands through struct lock_driver_ops.
 *
 * Every change goes through one setter. A setter that changes something
 *   1. appends an event row through the event sink (the store) — before anything is
 *      announced, so nothing is acknowledged that is not on disk;
 *   2. then has every listener called with a LockChange mask saying what changed.
 * A setter that changes nothing does neither.
 *
 * When the lock is not attached to an event loop, listeners are called from within the
 * setter. Once lock_set_event() attached it (lockhubd), a setter only adds its bits to the
 * lock's pending mask and enables the lock's notify defer source; when that is dispatched
 * the listeners are called once with every bit gathered since, the lock's model being what
 * it is by then. The Manager's first listener commits the store's write batch, so one
 * dispatch (a GATT indication, an MQTT message) costs one commit, however many fields it
 * changed, and nothing is told before it is committed. The defer runs at a priority above
 * every normal source (and below the store's commit defer): changes that arrive in separate
 * dispatches are told separately, in their order ("unlocking", then "unlocked"). Only
 * changes made within one dispatch are merged. LOCK_CHANGE_REMOVED is always told from
 * within lock_free(), and cancels a pending notification.
 *
 * Ownership: a Lock is owned by the Manager's lock table; the driver's per-lock data
 * (driver_data) is owned by the driver and released through ops->free. Listeners are
 * borrowed: whoever adds one removes it before going away.
 */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "lockhub/macro.h"

typedef enum LockState {
        LOCK_STATE_UNKNOWN,
        LOCK_STATE_LOCKED,
        LOCK_STATE_UNLOCKING,
        LOCK_STATE_UNLOCKED,
        LOCK_STATE_LOCKING,
        LOCK_STATE_UNLATCHED, /* "open": latch pulled, door can be pushed open */
        LOCK_STATE_UNLATCHING,
        LOCK_STATE_JAMMED,       /* motor blocked */
        LOCK_STATE_UNCALIBRATED, /* needs calibration before it can move */
        LOCK_STATE_CALIBRATING,  /* calibration running: the motor turns to both ends, ends locked */
        _LOCK_STATE_MAX,
} LockState;

typedef enum LockAction {
        LOCK_ACTION_LOCK,
        LOCK_ACTION_UNLOCK,
        LOCK_ACTION_UNLATCH, /* "open" */
        LOCK_ACTION_LOCK_N_GO,
        LOCK_ACTION_LOCK_N_GO_UNLATCH,
        LOCK_ACTION_FULL_LOCK,
        _LOCK_ACTION_MAX,
} LockAction;

typedef enum LockDoor {
        LOCK_DOOR_UNKNOWN,
        LOCK_DOOR_NONE, /* no door sensor */
        LOCK_DOOR_CLOSED,
        LOCK_DOOR_OPEN,
        LOCK_DOOR_TAMPERED,
        _LOCK_DOOR_MAX,
} LockDoor;

/* Who or what caused a change: the first column of every event. */
typedef enum LockSource {
        LOCK_SOURCE_HUB,    /* lockhub itself (recovery, sync, time) */
        LOCK_SOURCE_DBUS,   /* lockhubctl or another D-Bus client */
        LOCK_SOURCE_MQTT,   /* Home Assistant or another MQTT client */
        LOCK_SOURCE_LOCK,   /* the lock reported it, trigger unknown */
        LOCK_SOURCE_MANUAL, /* turned by hand (key, thumb turn) */
        LOCK_SOURCE_BUTTON, /* the lock's button */
        LOCK_SOURCE_KEYPAD, /* keypad or fingerprint */
        LOCK_SOURCE_AUTO,   /* auto lock, lock 'n' go, time control on the lock */
        LOCK_SOURCE_APP,    /* another authorization: phone app, fob, another bridge */
        _LOCK_SOURCE_MAX,
} LockSource;

typedef enum LockChange {
        LOCK_CHANGE_STATE = 1u << 0,
        LOCK_CHANGE_BATTERY = 1u << 1,
        LOCK_CHANGE_DOOR = 1u << 2,
        LOCK_CHANGE_LINK = 1u << 3,
        LOCK_CHANGE_INFO = 1u << 4, /* model, firmware */
        LOCK_CHANGE_LAST_ACTION = 1u << 5,
        LOCK_CHANGE_HEALTH = 1u << 6,
        LOCK_CHANGE_REMOVED = 1u << 7, /* the lock is about to be freed */
        LOCK_CHANGE_CONFIG = 1u << 8,  /* settings or codes changed on the lock: lock_config_changed() */
} LockChange;

typedef struct LockBattery {
        int percent; /* 0..100, -1 unknown */
        bool critical;
        bool charging;
        int keypad_critical;      /* -1 no keypad battery reported, else 0/1 */
        int door_sensor_critical; /* -1 no door sensor battery reported, else 0/1 */
} LockBattery;

typedef struct LockLink {
        bool connected;
        int rssi;                /* dBm of the last sighting; 0 unknown */
        uint64_t last_seen_usec; /* realtime of the last advert or connection; 0 never */
        bool reachable;          /* false: not seen for too long, or connects fail */
} LockLink;

typedef struct LockLastAction {
        LockAction action;
        LockSource source;
        char actor[64];     /* user, code or authorization name; "" unknown */
        uint64_t time_usec; /* 0: none yet */
} LockLastAction;

typedef struct Lock Lock;

/* Result of a command, delivered exactly once. r = 0 done, or one of
 *   -EDEADLK  jammed (motor blocked)         -EHOSTUNREACH  lock not reachable
 *   -ETIMEDOUT no answer in time             -EBUSY         lock or hub busy
 *   -EACCES   not authorized (needs re-pair) -EINVAL        rejected as invalid
 *   -ECANCELED the lock was removed meanwhile
 * message: a short human reason from the lock or the transport, or NULL. */
typedef void (*lock_command_done_t)(Lock *l, int r, const char *message, void *userdata);

/* A keypad code as a lock holds it, vendor-neutral (lockhub/codes.h maps it to Nuki's
 * fields and checks the rules). Plain data, no pointers: copy it freely. Times are UTC
 * microseconds; the time-of-day window is in the lock's local time. */
#define LOCK_CODE_DIGITS_MAX 16
#define LOCK_CODE_NAME_MAX   20 /* bytes of UTF-8, without the NUL */
typedef struct LockCode {
        int id;                                /* the lock's id for it; -1: not on the lock */
        char digits[LOCK_CODE_DIGITS_MAX + 1]; /* "" when the lock does not report them */
        char name[LOCK_CODE_NAME_MAX + 1];
        bool enabled;
        uint64_t valid_from_usec, valid_until_usec; /* 0: unbounded */
        unsigned weekdays;                          /* bit 0 Monday .. bit 6 Sunday; 0x7f: every day */
        int time_from_min, time_until_min;          /* minutes after midnight; -1: no window */
        /* reported by the lock only (ignored by add/update): */
        uint64_t created_usec, last_active_usec; /* 0: unknown */
        unsigned use_count;
} LockCode;

/* list_codes result: the whole list the lock holds (codes borrowed for the call only). */
typedef void (*lock_codes_listed_t)(Lock *l, int r, const char *message, const LockCode *codes,
                                    size_t n_codes, void *userdata);
/* add_code result: the id the lock gave the new code (valid when r == 0). */
typedef void (*lock_code_added_t)(Lock *l, int r, const char *message, int code_id, void *userdata);

/* An authorization the lock holds (a phone app, a bridge, a fob, a keypad), vendor-neutral
 * (Nuki: an Authorization Entry). Plain data. */
#define LOCK_AUTH_NAME_MAX 32
typedef struct LockAuthorization {
        uint32_t id;
        const char *type; /* static: "app", "bridge", "fob", "keypad" or "unknown" */
        char name[LOCK_AUTH_NAME_MAX + 1];
        bool enabled;
        bool remote_allowed;
        bool own;                                /* lockhub's own authorization */
        uint64_t created_usec, last_active_usec; /* 0: unknown */
        unsigned use_count;
} LockAuthorization;

/* list_authorizations result: every authorization (borrowed for the call only). */
typedef void (*lock_auths_listed_t)(Lock *l, int r, const char *message, const LockAuthorization *auths,
                                    size_t n_auths, void *userdata);

/*
 * Driver operations. Every asynchronous op returns 0 when it was started, and then calls
 * its done callback exactly once, never from within the op call itself; or returns < 0
 * when it was not started, and then never calls it. A NULL member means "not supported".
 *
 * Keypad codes (all need the lock's security PIN: -ENOKEY when the hub does not know it):
 *   list_codes   every code the lock holds (Nuki: Request Keypad Codes, all pages)
 *   add_code     c->id is ignored; done gets the lock's new id (Nuki: Add Keypad Code)
 *   update_code  rewrites the entry c->id with every field of c (Nuki: Update Keypad Code)
 *   remove_code  removes the entry code_id (Nuki: Remove Keypad Code)
 * Beyond lock_command_done_t's errors: -ENOKEY no PIN, -ENOENT no such code id,
 * -ENOSPC the lock's code store is full, -EEXIST the lock refused a duplicate code.
 *
 * Authorizations (need the PIN too):
 *   list_authorizations        every entry, lockhub's own marked (Nuki: Request
 *                              Authorization Entries, all pages)
 *   set_authorization_enabled  enable or disable entry id, keeping its other fields (Nuki:
 *                              Update Authorization Entry after reading the entry)
 *   remove_authorization       remove entry id (Nuki: Remove Authorization Entry)
 * Both changing ops refuse lockhub's own authorization with -EPERM (unpairing is the way
 * to remove that), and an unknown id with -ENOENT.
 *
 * apply_settings  writes the lock's settings as a backup keeps them per lock (lockhub/
 *                 backup.h): settings_json is an object with any of "config",
 *                 "advanced_config" (objects of the lock's field names) and "time_controls"
 *                 (an array, replacing every scheduled action the lock holds). Nuki: Set
 *                 Config, Set Advanced Config, Request/Remove/Add/Update Time Control Entry;
 *                 needs the PIN (-ENOKEY). Checked before anything is sent: -EINVAL when a
 *                 member is missing or out of range. Fields the lock only reports (firmware,
 *                 Nuki ID, clock) are not written.
 *
 * calibrate  the lock learns its end positions again (Nuki: Request Calibration, needs the
 *            PIN: -ENOKEY without). done runs when the lock has finished calibrating (or
 *            failed: -EDEADLK when the motor was blocked); the driver records an "action"
 *            event {"action":"calibrate",...} with source and the outcome.
 *
 * busy       true while a motor may be turning for a command of ours: the lock accepted an
 *            action or a calibration that has not finished, or one is being checked after
 *            a link loss. Not a command (no callback); NULL: only the state tells.
 *
 * reconnect  drop the connection when one is up and no command runs on it, then refresh
 *            the state over a new one (done as for refresh). The recovery ladder's
 *            "reconnect" rung; NULL: the ladder refreshes only.
 *
 * set_security_pin  the lock's security PIN changed (in the vendor's app): the driver tries
 *            pin with the lock (Nuki: Verify Security PIN) and only when the lock accepts it
 *            stores it and uses it from then on; -EKEYREJECTED when the lock rejected it
 *            (the stored PIN stays), -EINVAL out of range for the model.
 *
 * A lock that rejects the stored PIN (-EKEYREJECTED from any op) makes the driver hold back
 * its own PIN requests and the codes ops (-EKEYREJECTED at once) until set_security_pin
 * succeeds or a person's request with the PIN does; the other ops still try.
 */
struct lock_driver_ops {
        const char *protocol; /* "nuki" */
        int (*action)(Lock *l, LockAction a, LockSource source, const char *actor, lock_command_done_t done,
                      void *userdata);
        int (*refresh)(Lock *l, lock_command_done_t done, void *userdata);
        int (*list_codes)(Lock *l, lock_codes_listed_t done, void *userdata);
        int (*add_code)(Lock *l, const LockCode *c, lock_code_added_t done, void *userdata);
        int (*update_code)(Lock *l, const LockCode *c, lock_command_done_t done, void *userdata);
        int (*remove_code)(Lock *l, int code_id, lock_command_done_t done, void *userdata);
        int (*list_authorizations)(Lock *l, lock_auths_listed_t done, void *userdata);
        int (*set_authorization_enabled)(Lock *l, uint32_t id, bool enabled, lock_command_done_t done,
                                         void *userdata);
        int (*remove_authorization)(Lock *l, uint32_t id, lock_command_done_t done, void *userdata);
        int (*apply_settings)(Lock *l, const char *settings_json, lock_command_done_t done, void *userdata);
        int (*calibrate)(Lock *l, LockSource source, lock_command_done_t done, void *userdata);
        bool (*busy)(Lock *l);
        int (*reconnect)(Lock *l, lock_command_done_t done, void *userdata);
        int (*set_security_pin)(Lock *l, uint32_t pin, lock_command_done_t done, void *userdata);
        void (*free)(Lock *l);
};

typedef void (*lock_listener_t)(Lock *l, unsigned changes, void *userdata);

/* Where events go: the manager points this at the store. Returns <0 if the event
 * could not be recorded (the change is still applied and announced, and the error is
 * reported by the sink itself). kind: the events.kind of sql/0001-initial.sql ("state",
 * "battery", "door", "link", "action", "firmware", "pairing"…); detail: JSON text or NULL. */
typedef int (*lock_event_sink_t)(Lock *l, const char *kind, LockSource source, const char *actor,
                                 const char *detail_json, void *userdata);

/* An entry of the lock's own activity log, imported into the event table at most once
 * (the sink de-duplicates on the lock's log index). Strings are borrowed. */
typedef struct LockLogEntry {
        uint32_t index;          /* the lock's log index */
        uint64_t lock_time_usec; /* the lock's timestamp; 0 unknown */
        const char *kind;        /* events.kind: "action", "keypad", "door", "log", ... */
        LockSource source;
        const char *actor; /* authorization, code or "Manual"; NULL unknown */
        int64_t auth_id;   /* -1: none */
        bool is_action;    /* a successful lock action: becomes the last action */
        LockAction action;
        const char *detail_json; /* NULL or a JSON object */
} LockLogEntry;

/* Returns 1 when the entry was stored, 0 when it was already there, <0 on failure. */
typedef int (*lock_log_sink_t)(Lock *l, const LockLogEntry *e, void *userdata);

struct Lock {
        char *name;    /* unique, [A-Za-z0-9_-], used in D-Bus paths and MQTT topics */
        char *address; /* "AA:BB:CC:DD:EE:FF" */
        int64_t store_id;

        LockState state;
        LockBattery battery;
        LockDoor door;
        LockLink link;
        int link_notified_rssi;      /* RSSI and time listeners last heard of */
        uint64_t link_notified_usec; /* (monotonic), see lock_set_link() */
        LockLastAction last_action;
        char *model;
        char *firmware;
        bool needs_repair;

        const struct lock_driver_ops *ops;
        void *driver_data;

        lock_event_sink_t event_sink;
        void *event_sink_userdata;
        lock_log_sink_t log_sink; /* may be NULL: log entries are then dropped */
        void *log_sink_userdata;

        struct lock_listener {
                lock_listener_t fn;
                void *userdata;
        } * listeners;
        size_t n_listeners;
        sd_event_source *notify_defer; /* NULL: listeners are called from the setter */
        unsigned notify_pending;       /* LockChange bits not told yet */
};

/* Validates name and address (see lock_name_is_valid()); -EINVAL otherwise. */
int lock_new(const char *name, const char *address, Lock **ret);
/* Tells listeners LOCK_CHANGE_REMOVED, calls ops->free, frees. */
Lock *lock_free(Lock *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(Lock *, lock_free);

/* 1..32 characters of [A-Za-z0-9_-], not starting with '-': safe as a D-Bus path
 * element, an MQTT topic level and a file name. */
bool lock_name_is_valid(const char *name);
/* "AA:BB:CC:DD:EE:FF" (either case); normalized to upper case in ret (18 bytes). */
int lock_address_normalize(const char *address, char ret[static 18]);

/* Tell listeners from a defer source of e at priority (see the top of this file) instead
 * of from within the setters. Once per lock; -EBUSY when already attached. */
int lock_set_event(Lock *l, sd_event *e, int64_t priority);
/* Tells the listeners of the pending changes now, if any (a caller about to answer from
 * the model, or a test). */
void lock_notify_flush(Lock *l);

int lock_add_listener(Lock *l, lock_listener_t fn, void *userdata);
void lock_remove_listener(Lock *l, lock_listener_t fn, void *userdata);

/* Setters: return 1 if something changed (event recorded, listeners told), 0 if not. */
int lock_set_state(Lock *l, LockState s, LockSource source, const char *actor);
int lock_set_battery(Lock *l, const LockBattery *b);
int lock_set_door(Lock *l, LockDoor d, LockSource source);
/* Connected/reachable changes are events and are announced at once. RSSI and last-seen
 * change with every advert: the model always holds the latest, but listeners hear of
 * them only when RSSI moved by LOCK_RSSI_NOTIFY_DB or more, or LOCK_LINK_NOTIFY_USEC
 * after the last notification; otherwise returns 0. */
#define LOCK_RSSI_NOTIFY_DB   10
#define LOCK_LINK_NOTIFY_USEC (60ULL * 1000000ULL)
int lock_set_link(Lock *l, const LockLink *link);
int lock_set_info(Lock *l, const char *model, const char *firmware);
int lock_set_last_action(Lock *l, LockAction a, LockSource source, const char *actor, uint64_t time_usec);
int lock_set_needs_repair(Lock *l, bool b);
/* The lock says its settings or keypad codes changed (Nuki: the config update count of
 * Keyturner States moved). Tells listeners LOCK_CHANGE_CONFIG (the keypad code service
 * then looks for drift); records nothing: whoever reads the change records it. */
void lock_config_changed(Lock *l);
/* Imports one log entry through log_sink. A new (not yet stored) successful action entry
 * becomes the last action (listeners told, no second event row); entries are imported
 * oldest first.
 * Returns what the sink returned (1 new, 0 duplicate), or 0 without a sink. */
int lock_import_log_entry(Lock *l, const LockLogEntry *e);

/* Stable lower-case names used in events, D-Bus properties, MQTT and the CLI. */
const char *lock_state_to_string(LockState s);
LockState lock_state_from_string(const char *s); /* _LOCK_STATE_MAX if unknown */
const char *lock_action_to_string(LockAction a);
LockAction lock_action_from_string(const char *s); /* accepts "open" for unlatch */
const char *lock_door_to_string(LockDoor d);
const char *lock_source_to_string(LockSource s);
/* A JSON object of the whole model (no secrets): for events, MQTT state, D-Bus. */
char *lock_to_json(const Lock *l);
