/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * What lockhub says on MQTT, and what it accepts: pure functions, no I/O, no event
 * loop, so that the unit tests and the fuzz targets see exactly the bytes the daemon
 * sends and parses. The bridge (lockhub/mqtt-bridge.h) moves them over the wire.
 *
 * Topics (zigbee2mqtt conventions; B = base topic, default "lockhub"; P = discovery
 * prefix, default "homeassistant"):
 *
 *   B/bridge/state               retained {"state":"online"} / will {"state":"offline"}
 *   B/bridge/info                retained: version, hub id, locks, config summary
 *   B/<lock>                     retained JSON state (mqtt_ha_lock_state())
 *   B/<lock>/availability        retained "online" / "offline": the lock is reachable
 *   B/<lock>/set                 LOCK, UNLOCK, OPEN or {"state": "...", "code": "..."}
 *   B/<lock>/event               not retained: operations, their outcomes and alarms
 *   B/bridge/request/<op>        JSON request, optional "transaction"
 *   B/bridge/response/<op>       {"status":"ok"|"error","data":...,"error":...,"transaction":...}
 *   P/device/<device id>/config  retained Home Assistant device discovery, one per lock and
 *                                one for the hub; an empty retained payload removes it
 *
 * Identifiers: the hub id is a random hex string stored once in the database (meta
 * "hub-id"). The hub device is "lockhub_<hub id>", a lock device
 * "lockhub_<hub id>_<address without colons, lower case>", and every entity
 * "<device id>_<component>". Nothing is derived from the lock's name, which users may
 * change, so Home Assistant keeps its entities, names and history across renames and
 * restarts.
 *
 * Every builder returns a NUL-terminated string that the caller frees, or NULL when out
 * of memory. Every parser takes untrusted bytes (not NUL-terminated), checks size,
 * UTF-8, nesting and types before anything else, and on failure returns -EINVAL with a
 * short English message for the sender in *ret_error (caller frees) and nothing else.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/codes.h"
#include "lockhub/health.h"
#include "lockhub/lock.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

#define MQTT_HA_HUB_ID_LEN 16 /* hex characters */

/* Bounds of what we accept from the network. */
#define MQTT_HA_COMMAND_MAX     1024         /* bytes of a B/<lock>/set payload */
#define MQTT_HA_REQUEST_MAX     (256 * 1024) /* bytes of a request payload (restore: a document) */
#define MQTT_HA_JSON_DEPTH_MAX  8            /* nesting of any JSON we parse */
#define MQTT_HA_CODE_MAX        64           /* bytes of an unlock code */
#define MQTT_HA_TRANSACTION_MAX 128          /* bytes of a string transaction id */
#define MQTT_HA_OP_MAX          64           /* bytes of a request op ("lock/action") */

/* The hub as Home Assistant sees it. Borrowed strings. */
typedef struct MqttHaHub {
        const char *hub_id;           /* MQTT_HA_HUB_ID_LEN hex characters */
        const char *name;             /* device name shown in Home Assistant */
        const char *version;          /* lockhub version */
        const char *base_topic;       /* "lockhub" */
        const char *discovery_prefix; /* "homeassistant" */
} MqttHaHub;

/* What discovery needs to know about one lock beyond the model. Borrowed strings. */
typedef struct MqttHaLockInfo {
        const char *manufacturer; /* NULL: unknown */
        const char *hw_version;   /* NULL: unknown */
        bool allow_unlatch;       /* offer OPEN (payload_open) */
        /* NULL: no code needed. Else the regex Home Assistant checks codes against
         * (mqtt_ha_code_format()); the command template then carries the code. */
        const char *code_format;
} MqttHaLockInfo;

/* Why a command failed: the "reason" of a failed event and of an error response. */
typedef enum MqttHaReason {
        MQTT_HA_REASON_JAMMED,
        MQTT_HA_REASON_UNREACHABLE,
        MQTT_HA_REASON_TIMEOUT,
        MQTT_HA_REASON_REJECTED_CODE,
        MQTT_HA_REASON_RATE_LIMITED,
        MQTT_HA_REASON_BUSY,
        MQTT_HA_REASON_NOT_SUPPORTED,
        MQTT_HA_REASON_NOT_ALLOWED,
        MQTT_HA_REASON_NOT_AUTHORIZED,
        MQTT_HA_REASON_INVALID,
        MQTT_HA_REASON_CANCELLED,
        MQTT_HA_REASON_FAILED,
        _MQTT_HA_REASON_MAX,
} MqttHaReason;

const char *mqtt_ha_reason_to_string(MqttHaReason r);
/* A lock command's -errno (see lock_command_done_t) as a reason. */
MqttHaReason mqtt_ha_reason_from_errno(int r);

/* ---- identifiers and topics ---- */

bool mqtt_ha_hub_id_is_valid(const char *id);
/* "lockhub_<hub id>" */
char *mqtt_ha_hub_device_id(const MqttHaHub *h);
/* "lockhub_<hub id>_aabbccddeeff"; NULL also for an address that is not AA:BB:CC:DD:EE:FF. */
char *mqtt_ha_lock_device_id(const MqttHaHub *h, const char *address);
/* "<base>/<lock>" when suffix is NULL, else "<base>/<lock>/<suffix>". */
char *mqtt_ha_lock_topic(const MqttHaHub *h, const char *lock_name, const char *suffix);
/* "<base>/bridge/<suffix>" */
char *mqtt_ha_bridge_topic(const MqttHaHub *h, const char *suffix);
/* "<prefix>/device/<device id>/config" */
char *mqtt_ha_discovery_topic(const MqttHaHub *h, const char *device_id);
/* The code_format regex offered to Home Assistant for a required code: digits only
 * when the code is digits only (HA shows a keypad), any characters otherwise. The
 * code's length is not revealed. */
const char *mqtt_ha_code_format(const char *code);

/* ---- payloads we publish ---- */

/* {"state":"online"} or {"state":"offline"} */
const char *mqtt_ha_bridge_state(bool online);
/* Home Assistant's name of a lock state: LOCKED, UNLOCKED, LOCKING, UNLOCKING, JAMMED,
 * OPEN, OPENING; NULL for unknown and uncalibrated (shown as unknown). Home Assistant has
 * no calibrating: it shows as LOCKING (the motor runs; calibration ends locked). */
const char *mqtt_ha_lock_state_name(LockState s);
/* Device discovery config of one lock. */
char *mqtt_ha_lock_discovery(const MqttHaHub *h, const Lock *l, const MqttHaLockInfo *info);
/* Device discovery config of the hub itself. */
char *mqtt_ha_hub_discovery(const MqttHaHub *h);
/* The retained state of a lock (B/<lock>). now_usec: realtime, for "last seen" ages. */
char *mqtt_ha_lock_state(const Lock *l, uint64_t now_usec);

/* What the hub knows of a lock beyond its live model. Borrowed; any member may be NULL. */
typedef struct MqttHaLockExtra {
        /* The health module's diagnosis: drives "health" (the health sensor: its headline,
         * the report as attributes), "problem" and the update entity's latest version. */
        const HealthReport *health;
        /* The lock's keypad codes by sync state: "codes" (the code sync sensor). */
        const CodeSyncSummary *codes;
} MqttHaLockExtra;
/* The same with the extra facts (NULL: none, as mqtt_ha_lock_state()). */
char *mqtt_ha_lock_state_ex(const Lock *l, const MqttHaLockExtra *x, uint64_t now_usec);
/* The code sync sensor's state: "failed", "drifted" or "pending" when any code is in that
 * state (in that order), else "synced" (also with no codes). */
const char *mqtt_ha_code_sync_state(const CodeSyncSummary *s);
/* {"state": mqtt_ha_code_sync_state(), "synced": N, "pending": N, "drifted": N,
 * "failed": N}. New reference. */
json_object *mqtt_ha_code_sync_json(const CodeSyncSummary *s);
/* The health summary inside the state: {"status": "ok"|"warning"|"problem",
 * "findings": [{"code": ..., "severity": ..., "message": ...}]}. New reference. */
json_object *mqtt_ha_lock_health(const Lock *l);

/* Event payloads for B/<lock>/event. Every event has "event_type" (one of
 * mqtt_ha_event_types) and "time". */
extern const char *const mqtt_ha_event_types[];
/* An operation that happened (event_type = the action: lock, unlock, open...):
 * result "done", source, actor (NULL: none). */
char *mqtt_ha_event_action(LockAction a, LockSource source, const char *actor, uint64_t time_usec);
/* A command that failed: event_type "failed", with action, source, reason and a message. */
char *mqtt_ha_event_failed(LockAction a, LockSource source, MqttHaReason reason, const char *message,
                           uint64_t time_usec);
/* An alarm: event_type one of jammed, battery_critical, door_tampered, needs_repair. */
char *mqtt_ha_event_alarm(const char *event_type, const char *message, uint64_t time_usec);

/* ISO 8601 UTC with seconds, "2026-11-25T21:55:00Z" (21 bytes with the NUL). */
void mqtt_ha_format_time(uint64_t usec, char ret[static 32]);

/* ---- what we accept ---- */

/* A command on B/<lock>/set. */
typedef struct MqttHaCommand {
        LockAction action; /* LOCK, UNLOCK or UNLATCH */
        char *code;        /* NULL: none given */
} MqttHaCommand;
void mqtt_ha_command_done(MqttHaCommand *c); /* wipes and frees the code */

/* LOCK, UNLOCK, OPEN (any case, surrounding white space ignored), or a JSON object
 * {"state": one of those, "code": "..."} with no other keys. */
int mqtt_ha_command_parse(const void *payload, size_t len, MqttHaCommand *ret, char **ret_error);

/* A request on B/bridge/request/<op>. */
typedef struct MqttHaRequest {
        char *op;                 /* "lock/action" */
        json_object *params;      /* the request object (empty for an empty payload); owned */
        json_object *transaction; /* NULL: none; owned */
} MqttHaRequest;
void mqtt_ha_request_done(MqttHaRequest *r);

/* op: the topic levels after B/bridge/request/ (checked: 1..MQTT_HA_OP_MAX bytes of
 * [a-z0-9_/-]). payload: empty, or a JSON object whose optional "transaction" is a
 * string (≤ MQTT_HA_TRANSACTION_MAX bytes) or an integer. On -EINVAL, *ret still
 * receives op and a transaction if one could be read, so the error response can echo
 * it; call mqtt_ha_request_done() in every case. */
int mqtt_ha_request_parse(const char *op, const void *payload, size_t len, MqttHaRequest *ret,
                          char **ret_error);
/* The op check of mqtt_ha_request_parse() alone (cheap: no payload is read). */
bool mqtt_ha_op_is_valid(const char *op);

/* Parameter helpers for request handlers: 0 and *ret (borrowed), -ENOENT when absent
 * and not required (*ret = NULL), -EINVAL with *ret_error otherwise. */
int mqtt_ha_request_get_string(const MqttHaRequest *r, const char *key, bool required, size_t max_len,
                               const char **ret, char **ret_error);

/* {"status":"ok","data":data,"transaction":...}; data is taken (NULL: {}). */
char *mqtt_ha_response_ok(const MqttHaRequest *r, json_object *data);
/* {"status":"error","data":{},"error":message,"transaction":...}; r may be NULL. */
char *mqtt_ha_response_error(const MqttHaRequest *r, const char *message);
/* A reply built elsewhere ({"status":...,"data"?:...,"error"?:...,"rule"?:...}, taken) as a
 * response: "data" added when missing ({}), the transaction echoed. */
char *mqtt_ha_response_from(const MqttHaRequest *r, json_object *reply);

/* Wipes the values of the members named code, digits, passphrase, pin, unlock_code,
 * shared_key, security_pin or password at any depth (before the object is freed: json-c
 * does not wipe): strings, numbers (and the text a double was parsed from) and everything
 * inside an object or array under such a name. */
void mqtt_ha_json_wipe_secrets(json_object *o);
/* Wipes every string and number in o, at any depth. */
void mqtt_ha_json_wipe(json_object *o);
/* Whether any member at any depth has one of those names. */
bool mqtt_ha_json_has_secrets(json_object *o);
/* mqtt_ha_json_wipe_secrets(), then json_object_put(). Accepts NULL. */
void mqtt_ha_json_put_wipe(json_object *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, mqtt_ha_json_put_wipe);

/* Parses untrusted bytes as one JSON value: at most max_len bytes, valid UTF-8, no NUL,
 * nesting at most MQTT_HA_JSON_DEPTH_MAX, strict JSON, nothing after the value. */
int mqtt_ha_json_parse(const void *payload, size_t len, size_t max_len, json_object **ret, char **ret_error);
bool mqtt_ha_utf8_is_valid(const void *s, size_t len);
/* A JSON value as compact text without "\/" escapes; caller frees. */
char *mqtt_ha_json_to_string(json_object *o);
