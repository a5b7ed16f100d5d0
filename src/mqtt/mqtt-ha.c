/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Home Assistant discovery, retained lock state and event payloads (see
 * lockhub/mqtt-ha.h for the topics and identifiers).
 *
 * One device-discovery message per lock carries every entity of that lock. All of
 * them read the one retained state topic B/<lock> through value templates, so a
 * single publish updates everything and Home Assistant replays it after a restart.
 * Availability is "all" of: the bridge is online (B/bridge/state) and the lock is
 * reachable (B/<lock>/availability), except for the entities whose whole point is to
 * say what is wrong with an unreachable lock (connectivity, health), which follow the
 * bridge only.
 *
 * Keys are written out in full (no abbreviations): the payloads are read by people
 * debugging with mosquitto_sub far more often than they are size-critical.
 */

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lockhub/mqtt-ha.h"

static const char *const reason_names[_MQTT_HA_REASON_MAX] = {
        [MQTT_HA_REASON_JAMMED] = "jammed",
        [MQTT_HA_REASON_UNREACHABLE] = "unreachable",
        [MQTT_HA_REASON_TIMEOUT] = "timeout",
        [MQTT_HA_REASON_REJECTED_CODE] = "rejected_code",
        [MQTT_HA_REASON_RATE_LIMITED] = "rate_limited",
        [MQTT_HA_REASON_BUSY] = "busy",
        [MQTT_HA_REASON_NOT_SUPPORTED] = "not_supported",
        [MQTT_HA_REASON_NOT_ALLOWED] = "not_allowed",
        [MQTT_HA_REASON_NOT_AUTHORIZED] = "not_authorized",
        [MQTT_HA_REASON_INVALID] = "invalid",
        [MQTT_HA_REASON_CANCELLED] = "cancelled",
        [MQTT_HA_REASON_FAILED] = "failed",
};

const char *mqtt_ha_reason_to_string(MqttHaReason r)
{
        return r >= 0 && r < _MQTT_HA_REASON_MAX ? reason_names[r] : NULL;
}

MqttHaReason mqtt_ha_reason_from_errno(int r)
{
        switch (-r) {
        case EDEADLK:
                return MQTT_HA_REASON_JAMMED;
        case EHOSTUNREACH:
                return MQTT_HA_REASON_UNREACHABLE;
        case ETIMEDOUT:
                return MQTT_HA_REASON_TIMEOUT;
        case EBUSY:
                return MQTT_HA_REASON_BUSY;
        case EACCES:
                return MQTT_HA_REASON_NOT_AUTHORIZED;
        case EINVAL:
                return MQTT_HA_REASON_INVALID;
        case ECANCELED:
                return MQTT_HA_REASON_CANCELLED;
        case EOPNOTSUPP:
                return MQTT_HA_REASON_NOT_SUPPORTED;
        case EPERM:
                return MQTT_HA_REASON_NOT_ALLOWED;
        default:
                return MQTT_HA_REASON_FAILED;
        }
}

/* The names of actions on MQTT: Home Assistant's "open" rather than the model's
 * "unlatch". Also the event types of operations. */
static const char *const action_names[_LOCK_ACTION_MAX] = {
        [LOCK_ACTION_LOCK] = "lock",
        [LOCK_ACTION_UNLOCK] = "unlock",
        [LOCK_ACTION_UNLATCH] = "open",
        [LOCK_ACTION_LOCK_N_GO] = "lock_n_go",
        [LOCK_ACTION_LOCK_N_GO_UNLATCH] = "lock_n_go_open",
        [LOCK_ACTION_FULL_LOCK] = "full_lock",
};

static const char *action_name(LockAction a)
{
        return a >= 0 && a < _LOCK_ACTION_MAX ? action_names[a] : "unknown";
}

const char *const mqtt_ha_event_types[] = {
        "lock",         "unlock", "open",   "lock_n_go",        "lock_n_go_open",
        "full_lock",    "failed", "jammed", "battery_critical", "door_tampered",
        "needs_repair", NULL,
};

/* ---- identifiers and topics ---- */

bool mqtt_ha_hub_id_is_valid(const char *id)
{
        if (!id || strlen(id) != MQTT_HA_HUB_ID_LEN)
                return false;
        for (size_t i = 0; i < MQTT_HA_HUB_ID_LEN; i++)
                if (!isdigit((unsigned char) id[i]) && !(id[i] >= 'a' && id[i] <= 'f'))
                        return false;
        return true;
}

char *mqtt_ha_hub_device_id(const MqttHaHub *h)
{
        char *s;

        return asprintf(&s, "lockhub_%s", h->hub_id) < 0 ? NULL : s;
}

char *mqtt_ha_lock_device_id(const MqttHaHub *h, const char *address)
{
        char a[18], hex[13];
        size_t n = 0;
        char *s;

        if (lock_address_normalize(address, a) < 0)
                return NULL;
        for (size_t i = 0; i < 17; i++)
                if (a[i] != ':')
                        hex[n++] = (char) tolower((unsigned char) a[i]);
        hex[n] = '\0';
        return asprintf(&s, "lockhub_%s_%s", h->hub_id, hex) < 0 ? NULL : s;
}

char *mqtt_ha_lock_topic(const MqttHaHub *h, const char *lock_name, const char *suffix)
{
        char *s;

        if (asprintf(&s, "%s/%s%s%s", h->base_topic, lock_name, suffix ? "/" : "", strempty(suffix)) < 0)
                return NULL;
        return s;
}

char *mqtt_ha_bridge_topic(const MqttHaHub *h, const char *suffix)
{
        char *s;

        return asprintf(&s, "%s/bridge/%s", h->base_topic, suffix) < 0 ? NULL : s;
}

char *mqtt_ha_discovery_topic(const MqttHaHub *h, const char *device_id)
{
        char *s;

        return asprintf(&s, "%s/device/%s/config", h->discovery_prefix, device_id) < 0 ? NULL : s;
}

const char *mqtt_ha_code_format(const char *code)
{
        if (!code || !*code)
                return "^.+$";
        for (const char *p = code; *p; p++)
                if (!isdigit((unsigned char) *p))
                        return "^.+$";
        return "^\\d+$";
}

void mqtt_ha_format_time(uint64_t usec, char ret[static 32])
{
        time_t t = (time_t) (usec / 1000000);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(ret, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(ret, 32, "1970-01-01T00:00:00Z");
}

/* ---- small json-c helpers ---- */

static json_object *str_or_null(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static void add(json_object *o, const char *key, json_object *v)
{
        json_object_object_add(o, key, v);
}

static void add_str(json_object *o, const char *key, const char *v)
{
        add(o, key, json_object_new_string(v));
}

static json_object *time_or_null(uint64_t usec)
{
        char buf[32];

        if (usec == 0)
                return NULL;
        mqtt_ha_format_time(usec, buf);
        return json_object_new_string(buf);
}

static char *take_string(json_object *o)
{
        char *s = o ? mqtt_ha_json_to_string(o) : NULL;

        json_object_put(o);
        return s;
}

/* ---- discovery ---- */

const char *mqtt_ha_bridge_state(bool online)
{
        return online ? "{\"state\":\"online\"}" : "{\"state\":\"offline\"}";
}

const char *mqtt_ha_lock_state_name(LockState s)
{
        switch (s) {
        case LOCK_STATE_LOCKED:
                return "LOCKED";
        case LOCK_STATE_UNLOCKING:
                return "UNLOCKING";
        case LOCK_STATE_UNLOCKED:
                return "UNLOCKED";
        case LOCK_STATE_LOCKING:
        case LOCK_STATE_CALIBRATING: /* the motor runs, and calibration ends locked */
                return "LOCKING";
        case LOCK_STATE_UNLATCHED:
                return "OPEN";
        case LOCK_STATE_UNLATCHING:
                return "OPENING";
        case LOCK_STATE_JAMMED:
                return "JAMMED";
        case LOCK_STATE_UNKNOWN:
        case LOCK_STATE_UNCALIBRATED:
        case _LOCK_STATE_MAX:
                break;
        }
        return NULL;
}

static json_object *origin(const MqttHaHub *h)
{
        json_object *o = json_object_new_object();

        add_str(o, "name", "lockhub");
        add_str(o, "sw_version", h->version);
        return o;
}

static json_object *availability_entry(const char *topic, bool json_state)
{
        json_object *o = json_object_new_object();

        add_str(o, "topic", topic);
        if (json_state)
                add_str(o, "value_template", "{{ value_json.state }}");
        return o;
}

/* [bridge state] or [bridge state, lock availability] */
static json_object *availability(const MqttHaHub *h, const char *lock_name)
{
        _cleanup_free_ char *bridge = mqtt_ha_bridge_topic(h, "state");
        _cleanup_free_ char *lock = lock_name ? mqtt_ha_lock_topic(h, lock_name, "availability") : NULL;
        json_object *a = json_object_new_array();

        if (!a || !bridge || (lock_name && !lock)) {
                json_object_put(a);
                return NULL;
        }
        json_object_array_add(a, availability_entry(bridge, true));
        if (lock)
                json_object_array_add(a, availability_entry(lock, false));
        return a;
}

/* "lock.front_door", "sensor.front_door_battery": only [a-z0-9_] survive. */
static char *entity_id(const char *domain, const char *name, const char *suffix)
{
        char *s;

        if (asprintf(&s, "%s.%s%s%s", domain, name, suffix ? "_" : "", strempty(suffix)) < 0)
                return NULL;
        for (char *p = s + strlen(domain) + 1; *p; p++)
                *p = isalnum((unsigned char) *p) ? (char) tolower((unsigned char) *p) : '_';
        return s;
}

/* The codes of mqtt_ha_lock_health()'s live findings: states of the health sensor too. */
static const char *const live_codes[] = {
        "needs_repair",
        "jammed",
        "uncalibrated",
        "door_tampered",
        "battery_critical",
        "keypad_battery_critical",
        "door_sensor_battery_critical",
        "unreachable",
        NULL,
};

static const char *const code_sync_states[] = { "synced", "pending", "drifted", "failed", NULL };

/* The members every entity component has. */
static json_object *component(const char *platform, const char *device_id, const char *key, const char *name,
                              const char *entity_name, const char *entity_suffix)
{
        _cleanup_free_ char *uid = NULL, *eid = NULL;
        json_object *c;

        if (asprintf(&uid, "%s_%s", device_id, key) < 0)
                return NULL;
        eid = entity_id(platform, entity_name, entity_suffix);
        c = json_object_new_object();
        if (!c || !eid) {
                json_object_put(c);
                return NULL;
        }
        add_str(c, "platform", platform);
        add_str(c, "unique_id", uid);
        add(c, "default_entity_id", json_object_new_string(eid));
        add(c, "name", str_or_null(name));
        return c;
}

char *mqtt_ha_lock_discovery(const MqttHaHub *h, const Lock *l, const MqttHaLockInfo *info)
{
        _cleanup_free_ char *dev_id = mqtt_ha_lock_device_id(h, l->address);
        _cleanup_free_ char *hub_dev = mqtt_ha_hub_device_id(h);
        _cleanup_free_ char *state_t = mqtt_ha_lock_topic(h, l->name, NULL);
        _cleanup_free_ char *set_t = mqtt_ha_lock_topic(h, l->name, "set");
        _cleanup_free_ char *event_t = mqtt_ha_lock_topic(h, l->name, "event");
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *dev, *ids, *cns, *cn, *cmps, *c, *types;

        if (!dev_id || !hub_dev || !state_t || !set_t || !event_t)
                return NULL;
        o = json_object_new_object();
        if (!o)
                return NULL;

        dev = json_object_new_object();
        ids = json_object_new_array();
        json_object_array_add(ids, json_object_new_string(dev_id));
        add(dev, "identifiers", ids);
        cns = json_object_new_array();
        cn = json_object_new_array();
        json_object_array_add(cn, json_object_new_string("bluetooth"));
        json_object_array_add(cn, json_object_new_string(l->address));
        json_object_array_add(cns, cn);
        add(dev, "connections", cns);
        add_str(dev, "name", l->name);
        if (info->manufacturer)
                add_str(dev, "manufacturer", info->manufacturer);
        if (l->model)
                add_str(dev, "model", l->model);
        if (l->firmware)
                add_str(dev, "sw_version", l->firmware);
        if (info->hw_version)
                add_str(dev, "hw_version", info->hw_version);
        add_str(dev, "via_device", hub_dev);
        add(o, "device", dev);
        add(o, "origin", origin(h));
        add(o, "availability", availability(h, l->name));
        add_str(o, "availability_mode", "all");
        add(o, "qos", json_object_new_int(1));

        cmps = json_object_new_object();
        add(o, "components", cmps);

        c = component("lock", dev_id, "lock", NULL, l->name, NULL);
        add_str(c, "command_topic", set_t);
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ value_json.state }}");
        add_str(c, "payload_lock", "LOCK");
        add_str(c, "payload_unlock", "UNLOCK");
        if (info->allow_unlatch)
                add_str(c, "payload_open", "OPEN");
        add_str(c, "state_locked", "LOCKED");
        add_str(c, "state_unlocked", "UNLOCKED");
        add_str(c, "state_locking", "LOCKING");
        add_str(c, "state_unlocking", "UNLOCKING");
        add_str(c, "state_jammed", "JAMMED");
        add_str(c, "state_open", "OPEN");
        add_str(c, "state_opening", "OPENING");
        if (info->code_format) {
                add_str(c, "code_format", info->code_format);
                /* tojson: any code arrives as a proper JSON string (or null). */
                add_str(c, "command_template",
                        "{\"state\": \"{{ value }}\", \"code\": {{ code | tojson }}}");
        }
        add(c, "optimistic", json_object_new_boolean(false));
        add(cmps, "lock", c);

        c = component("sensor", dev_id, "battery", "Battery", l->name, "battery");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ value_json.battery }}");
        add_str(c, "device_class", "battery");
        add_str(c, "unit_of_measurement", "%");
        add_str(c, "state_class", "measurement");
        add_str(c, "entity_category", "diagnostic");
        add(cmps, "battery", c);

        c = component("binary_sensor", dev_id, "battery_critical", "Battery critical", l->name,
                      "battery_critical");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ 'ON' if value_json.battery_critical else 'OFF' }}");
        add_str(c, "device_class", "battery");
        add_str(c, "entity_category", "diagnostic");
        add(cmps, "battery_critical", c);

        c = component("binary_sensor", dev_id, "door", "Door", l->name, "door");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template",
                "{% if value_json.door == 'open' %}ON{% elif value_json.door == 'closed' %}OFF"
                "{% else %}None{% endif %}");
        add_str(c, "device_class", "door");
        add(cmps, "door", c);

        c = component("binary_sensor", dev_id, "problem", "Problem", l->name, "problem");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ 'ON' if value_json.problem else 'OFF' }}");
        add_str(c, "json_attributes_topic", state_t);
        add_str(c, "json_attributes_template",
                "{{ {'reason': value_json.problem_reason, 'jammed': value_json.jammed} | tojson }}");
        add_str(c, "device_class", "problem");
        add_str(c, "entity_category", "diagnostic");
        add(cmps, "problem", c);

        c = component("sensor", dev_id, "rssi", "Signal strength", l->name, "rssi");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ value_json.rssi }}");
        add_str(c, "device_class", "signal_strength");
        add_str(c, "unit_of_measurement", "dBm");
        add_str(c, "state_class", "measurement");
        add_str(c, "entity_category", "diagnostic");
        add(cmps, "rssi", c);

        c = component("binary_sensor", dev_id, "connectivity", "Bluetooth link", l->name, "connectivity");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ 'ON' if value_json.link.reachable else 'OFF' }}");
        add_str(c, "device_class", "connectivity");
        add_str(c, "entity_category", "diagnostic");
        add(c, "availability", availability(h, NULL));
        add(cmps, "connectivity", c);

        c = component("event", dev_id, "activity", "Activity", l->name, "activity");
        add_str(c, "state_topic", event_t);
        types = json_object_new_array();
        for (size_t i = 0; mqtt_ha_event_types[i]; i++)
                json_object_array_add(types, json_object_new_string(mqtt_ha_event_types[i]));
        add(c, "event_types", types);
        add(cmps, "activity", c);

        c = component("update", dev_id, "firmware", "Firmware", l->name, "firmware");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ value_json.update | tojson }}");
        add_str(c, "device_class", "firmware");
        add_str(c, "entity_category", "diagnostic");
        add(cmps, "firmware", c);

        /* The headline: "ok", else what is most likely wrong (a finding id of the
         * diagnosis, or a live alarm); the whole diagnosis as attributes. */
        c = component("sensor", dev_id, "health", "Health", l->name, "health");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ value_json.health.headline }}");
        add_str(c, "json_attributes_topic", state_t);
        add_str(c, "json_attributes_template", "{{ value_json.health | tojson }}");
        add_str(c, "device_class", "enum");
        types = json_object_new_array();
        json_object_array_add(types, json_object_new_string("ok"));
        for (HealthFindingId f = 0; f < _HEALTH_FINDING_MAX; f++)
                json_object_array_add(types, json_object_new_string(health_finding_id_to_string(f)));
        for (size_t i = 0; live_codes[i]; i++)
                json_object_array_add(types, json_object_new_string(live_codes[i]));
        add(c, "options", types);
        add_str(c, "entity_category", "diagnostic");
        add(c, "availability", availability(h, NULL));
        add(cmps, "health", c);

        /* The hub's keypad codes on this lock: known while the lock is out of reach too. */
        c = component("sensor", dev_id, "code_sync", "Code sync", l->name, "code_sync");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ value_json.codes.state }}");
        add_str(c, "json_attributes_topic", state_t);
        add_str(c, "json_attributes_template", "{{ value_json.codes | tojson }}");
        add_str(c, "device_class", "enum");
        types = json_object_new_array();
        for (size_t i = 0; code_sync_states[i]; i++)
                json_object_array_add(types, json_object_new_string(code_sync_states[i]));
        add(c, "options", types);
        add_str(c, "entity_category", "diagnostic");
        add(c, "availability", availability(h, NULL));
        add(cmps, "code_sync", c);

        return mqtt_ha_json_to_string(o);
}

char *mqtt_ha_hub_discovery(const MqttHaHub *h)
{
        _cleanup_free_ char *dev_id = mqtt_ha_hub_device_id(h);
        _cleanup_free_ char *state_t = mqtt_ha_bridge_topic(h, "state");
        _cleanup_free_ char *info_t = mqtt_ha_bridge_topic(h, "info");
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *dev, *ids, *cmps, *c;

        if (!dev_id || !state_t || !info_t)
                return NULL;
        o = json_object_new_object();
        if (!o)
                return NULL;
        dev = json_object_new_object();
        ids = json_object_new_array();
        json_object_array_add(ids, json_object_new_string(dev_id));
        add(dev, "identifiers", ids);
        add_str(dev, "name", h->name);
        add_str(dev, "manufacturer", "lockhub");
        add_str(dev, "model", "lockhub hub");
        add_str(dev, "sw_version", h->version);
        add(o, "device", dev);
        add(o, "origin", origin(h));
        add(o, "qos", json_object_new_int(1));

        cmps = json_object_new_object();
        add(o, "components", cmps);

        /* No availability: it *is* the availability, "off" rather than "unavailable". */
        c = component("binary_sensor", dev_id, "state", "Bridge state", h->name, "bridge_state");
        add_str(c, "state_topic", state_t);
        add_str(c, "value_template", "{{ value_json.state }}");
        add_str(c, "payload_on", "online");
        add_str(c, "payload_off", "offline");
        add_str(c, "device_class", "connectivity");
        add_str(c, "entity_category", "diagnostic");
        add(cmps, "state", c);

        c = component("sensor", dev_id, "version", "Version", h->name, "version");
        add_str(c, "state_topic", info_t);
        add_str(c, "value_template", "{{ value_json.version }}");
        add_str(c, "entity_category", "diagnostic");
        add(c, "availability", availability(h, NULL));
        add(cmps, "version", c);

        c = component("sensor", dev_id, "locks", "Paired locks", h->name, "locks");
        add_str(c, "state_topic", info_t);
        add_str(c, "value_template", "{{ value_json.locks | length }}");
        add_str(c, "state_class", "measurement");
        add(c, "availability", availability(h, NULL));
        add(cmps, "locks", c);

        c = component("sensor", dev_id, "reachable_locks", "Reachable locks", h->name, "reachable_locks");
        add_str(c, "state_topic", info_t);
        add_str(c, "value_template", "{{ value_json.reachable_locks }}");
        add_str(c, "state_class", "measurement");
        add(c, "availability", availability(h, NULL));
        add(cmps, "reachable_locks", c);

        return mqtt_ha_json_to_string(o);
}

/* ---- state ---- */

static void add_finding(json_object *findings, const char *code, const char *severity, const char *message)
{
        json_object *f = json_object_new_object();

        add_str(f, "code", code);
        add_str(f, "severity", severity);
        add_str(f, "message", message);
        json_object_array_add(findings, f);
}

#define JAM_MESSAGE                                                                                    \
        "The motor is blocked: check that the door is closed and the bolt moves freely, then lock or " \
        "unlock again."

json_object *mqtt_ha_lock_health(const Lock *l)
{
        json_object *o = json_object_new_object(), *f = json_object_new_array();
        const char *status = "ok";
        char buf[160], when[32];

        if (!o || !f) {
                json_object_put(o);
                json_object_put(f);
                return NULL;
        }
        /* Problems first: the first one is the problem sensor's reason. */
        if (l->needs_repair)
                add_finding(f, "needs_repair", "problem",
                            "The lock rejects the hub's pairing: pair it with the hub again.");
        if (l->state == LOCK_STATE_JAMMED)
                add_finding(f, "jammed", "problem", JAM_MESSAGE);
        if (l->state == LOCK_STATE_UNCALIBRATED)
                add_finding(f, "uncalibrated", "problem", "The lock is not calibrated: calibrate it.");
        if (l->door == LOCK_DOOR_TAMPERED)
                add_finding(f, "door_tampered", "problem", "The door sensor reports tampering.");
        if (json_object_array_length(f) > 0)
                status = "problem";

        if (l->battery.critical) {
                if (l->battery.percent >= 0)
                        snprintf(buf, sizeof buf,
                                 "Battery critically low (%d%%): replace the batteries soon.",
                                 l->battery.percent);
                else
                        snprintf(buf, sizeof buf, "Battery critically low: replace the batteries soon.");
                add_finding(f, "battery_critical", "warning", buf);
        }
        if (l->battery.keypad_critical == 1)
                add_finding(f, "keypad_battery_critical", "warning",
                            "The keypad's battery is critically low.");
        if (l->battery.door_sensor_critical == 1)
                add_finding(f, "door_sensor_battery_critical", "warning",
                            "The door sensor's battery is critically low.");
        if (!l->link.reachable) {
                if (l->link.last_seen_usec) {
                        mqtt_ha_format_time(l->link.last_seen_usec, when);
                        snprintf(buf, sizeof buf, "Not reachable over Bluetooth; last seen %s.", when);
                } else
                        snprintf(buf, sizeof buf, "Not reachable over Bluetooth; not seen yet.");
                add_finding(f, "unreachable", "warning", buf);
        }
        if (streq(status, "ok") && json_object_array_length(f) > 0)
                status = "warning";

        add_str(o, "status", status);
        add(o, "findings", f);
        return o;
}

const char *mqtt_ha_code_sync_state(const CodeSyncSummary *s)
{
        return s->failed > 0 ? "failed" : s->drifted > 0 ? "drifted" : s->pending > 0 ? "pending" : "synced";
}

json_object *mqtt_ha_code_sync_json(const CodeSyncSummary *s)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        add_str(o, "state", mqtt_ha_code_sync_state(s));
        add(o, "synced", json_object_new_int((int) s->synced));
        add(o, "pending", json_object_new_int((int) s->pending));
        add(o, "drifted", json_object_new_int((int) s->drifted));
        add(o, "failed", json_object_new_int((int) s->failed));
        return o;
}

static const char *json_str(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* The health object of the state with a diagnosis: the report (health_report_to_json()) with
 * the live alarms it does not cover folded in. live: mqtt_ha_lock_health() (taken). Sets
 * *ret_problem and *ret_reason (borrowed from the result, NULL: none). */
static json_object *health_with_report(const HealthReport *rep, json_object *live, bool *ret_problem,
                                       const char **ret_reason)
{
        _cleanup_(json_object_putp) json_object *lv = live;
        json_object *o = health_report_to_json(rep), *lf = NULL, *first_live = NULL;
        const char *headline = health_report_headline(rep), *status = "ok", *reason = NULL;
        HealthSeverity worst = health_report_worst(rep);
        bool live_problem = false, live_warning = false;

        if (!o)
                return NULL;
        if (json_object_object_get_ex(lv, "findings", &lf) && json_object_array_length(lf) > 0) {
                const char *sev;

                first_live = json_object_array_get_idx(lf, 0);
                sev = json_str(first_live, "severity");
                live_problem = sev && streq(sev, "problem");
                live_warning = !live_problem;
        }
        /* A problem the lock has now (jammed, tampered) before what its history says. */
        if (live_problem || (rep->n_findings == 0 && live_warning)) {
                headline = json_str(first_live, "code");
                reason = json_str(first_live, "message");
        } else
                for (size_t i = 0; i < rep->n_findings; i++)
                        if (rep->findings[i].severity >= HEALTH_SEVERITY_WARNING) {
                                reason = rep->findings[i].title;
                                break;
                        }
        if (live_problem || worst >= HEALTH_SEVERITY_ERROR)
                status = "problem";
        else if (live_warning || worst == HEALTH_SEVERITY_WARNING)
                status = "warning";

        add_str(o, "status", status);
        add_str(o, "headline", headline ?: "ok");
        *ret_problem = health_report_problem(rep) || live_problem;
        add(o, "problem", json_object_new_boolean(*ret_problem));
        add(o, "live_findings", lf ? json_object_get(lf) : json_object_new_array());
        add(o, "problem_reason", *ret_problem && reason ? json_object_new_string(reason) : NULL);
        *ret_reason = *ret_problem ? json_str(o, "problem_reason") : NULL;
        return o;
}

char *mqtt_ha_lock_state(const Lock *l, uint64_t now_usec)
{
        return mqtt_ha_lock_state_ex(l, NULL, now_usec);
}

char *mqtt_ha_lock_state_ex(const Lock *l, const MqttHaLockExtra *x, uint64_t now_usec)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *link, *la, *upd, *health, *findings, *first = NULL;
        const HealthReport *rep = x ? x->health : NULL;
        const char *reason = NULL;
        bool problem = false;

        if (!o)
                return NULL;
        health = mqtt_ha_lock_health(l);
        if (!health)
                return NULL;
        if (rep) {
                health = health_with_report(rep, health, &problem, &reason);
                if (!health)
                        return NULL;
        } else if (json_object_object_get_ex(health, "findings", &findings) &&
                   json_object_array_length(findings) > 0) {
                json_object *sev;
                first = json_object_array_get_idx(findings, 0);
                problem = json_object_object_get_ex(first, "severity", &sev) &&
                          streq(json_object_get_string(sev), "problem");
                reason = problem ? json_str(first, "message") : NULL;
                add_str(health, "headline", json_str(first, "code"));
        } else
                add_str(health, "headline", "ok");

        add(o, "state", str_or_null(mqtt_ha_lock_state_name(l->state)));
        add_str(o, "lock_state", lock_state_to_string(l->state));
        add(o, "battery", l->battery.percent >= 0 ? json_object_new_int(l->battery.percent) : NULL);
        add(o, "battery_critical", json_object_new_boolean(l->battery.critical));
        add(o, "charging", json_object_new_boolean(l->battery.charging));
        add_str(o, "door", lock_door_to_string(l->door));
        add(o, "jammed", json_object_new_boolean(l->state == LOCK_STATE_JAMMED));
        add(o, "jammed_reason", l->state == LOCK_STATE_JAMMED ? json_object_new_string(JAM_MESSAGE) : NULL);
        add(o, "rssi", l->link.rssi ? json_object_new_int(l->link.rssi) : NULL);

        link = json_object_new_object();
        add(link, "connected", json_object_new_boolean(l->link.connected));
        add(link, "reachable", json_object_new_boolean(l->link.reachable));
        add(link, "last_seen", time_or_null(l->link.last_seen_usec));
        add(link, "last_seen_sec",
            l->link.last_seen_usec && now_usec >= l->link.last_seen_usec
                            ? json_object_new_int64(
                                              (int64_t) ((now_usec - l->link.last_seen_usec) / 1000000))
                            : NULL);
        add(o, "link", link);

        add(o, "model", str_or_null(l->model));
        add(o, "firmware", str_or_null(l->firmware));
        upd = json_object_new_object();
        if (l->firmware) {
                /* The newest version the known-firmware file names for the model; without
                 * one, latest = installed ("up to date"). */
                const char *latest =
                                rep && rep->firmware_latest &&
                                                                health_version_compare(rep->firmware_latest,
                                                                                       l->firmware) > 0
                                                ? rep->firmware_latest
                                                : l->firmware;
                add_str(upd, "installed_version", l->firmware);
                add_str(upd, "latest_version", latest);
        }
        add(o, "update", upd);
        add(o, "codes", x && x->codes ? mqtt_ha_code_sync_json(x->codes) : NULL);

        if (l->last_action.time_usec) {
                la = json_object_new_object();
                add_str(la, "action", action_name(l->last_action.action));
                add_str(la, "source", lock_source_to_string(l->last_action.source));
                add(la, "actor",
                    l->last_action.actor[0] ? json_object_new_string(l->last_action.actor) : NULL);
                add(la, "time", time_or_null(l->last_action.time_usec));
                add(o, "last_action", la);
        } else
                add(o, "last_action", NULL);

        add(o, "needs_repair", json_object_new_boolean(l->needs_repair));
        add(o, "problem", json_object_new_boolean(problem));
        add(o, "problem_reason", reason ? json_object_new_string(reason) : NULL);
        add(o, "health", health);
        return mqtt_ha_json_to_string(o);
}

/* ---- events ---- */

static json_object *event_new(const char *type, uint64_t time_usec)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        add_str(o, "event_type", type);
        add(o, "time", time_or_null(time_usec));
        return o;
}

char *mqtt_ha_event_action(LockAction a, LockSource source, const char *actor, uint64_t time_usec)
{
        json_object *o = event_new(action_name(a), time_usec);

        if (!o)
                return NULL;
        add_str(o, "action", action_name(a));
        add_str(o, "result", "done");
        add_str(o, "source", strna(lock_source_to_string(source)));
        add(o, "actor", actor && *actor ? json_object_new_string(actor) : NULL);
        return take_string(o);
}

char *mqtt_ha_event_failed(LockAction a, LockSource source, MqttHaReason reason, const char *message,
                           uint64_t time_usec)
{
        json_object *o = event_new("failed", time_usec);

        if (!o)
                return NULL;
        add_str(o, "action", action_name(a));
        add_str(o, "result", "failed");
        add_str(o, "reason", strna(mqtt_ha_reason_to_string(reason)));
        add(o, "message", str_or_null(message));
        add_str(o, "source", strna(lock_source_to_string(source)));
        return take_string(o);
}

char *mqtt_ha_event_alarm(const char *event_type, const char *message, uint64_t time_usec)
{
        json_object *o = event_new(event_type, time_usec);

        if (!o)
                return NULL;
        add(o, "message", str_or_null(message));
        return take_string(o);
}
