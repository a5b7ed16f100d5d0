/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What lockhub publishes to Home Assistant and what it accepts on MQTT: exact keys and
 * values of discovery, state, events and responses; strict parsing of commands and
 * requests. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>

#include "lockhub/mqtt-bridge.h"
#include "lockhub/mqtt-ha.h"
#include "lockhub/store.h"

#define HUB_ID "0123456789abcdef"
#define DEV_ID "lockhub_0123456789abcdef_aabbccddeeff"

static const MqttHaHub hub = {
        .hub_id = HUB_ID,
        .name = "Hallway hub",
        .version = "0.1.0",
        .base_topic = "lockhub",
        .discovery_prefix = "homeassistant",
};

/* Member at a dotted path ("components.lock.platform"); array indices as numbers. */
static json_object *at(json_object *o, const char *path)
{
        char buf[256], *save = NULL;

        snprintf(buf, sizeof buf, "%s", path);
        for (char *k = strtok_r(buf, ".", &save); k && o; k = strtok_r(NULL, ".", &save)) {
                if (json_object_is_type(o, json_type_array))
                        o = json_object_array_get_idx(o, (size_t) atoi(k));
                else if (!json_object_object_get_ex(o, k, &o))
                        return NULL;
        }
        return o;
}

static bool has(json_object *o, const char *path)
{
        char buf[256], *dot;

        /* present, even if null */
        snprintf(buf, sizeof buf, "%s", path);
        dot = strrchr(buf, '.');
        if (!dot)
                return json_object_object_get_ex(o, path, NULL);
        *dot = '\0';
        return json_object_object_get_ex(at(o, buf), dot + 1, NULL);
}

static const char *str(json_object *o, const char *path)
{
        json_object *v = at(o, path);

        assert_non_null(v);
        assert_true(json_object_is_type(v, json_type_string));
        return json_object_get_string(v);
}

static json_object *parse(const char *s)
{
        json_object *o;

        assert_non_null(s);
        o = json_tokener_parse(s);
        assert_non_null(o);
        return o;
}

static Lock *new_lock(const char *name)
{
        Lock *l = NULL;

        assert_int_equal(lock_new(name, "aa:bb:cc:dd:ee:ff", &l), 0);
        return l;
}

static void test_ids_and_topics(void **state)
{
        _cleanup_free_ char *hub_dev = mqtt_ha_hub_device_id(&hub);
        _cleanup_free_ char *dev = mqtt_ha_lock_device_id(&hub, "aa:bb:cc:dd:ee:ff");
        _cleanup_free_ char *dev2 = mqtt_ha_lock_device_id(&hub, "AA:BB:CC:DD:EE:FF");
        _cleanup_free_ char *dt = mqtt_ha_discovery_topic(&hub, dev);
        _cleanup_free_ char *st = mqtt_ha_lock_topic(&hub, "front-door", NULL);
        _cleanup_free_ char *set = mqtt_ha_lock_topic(&hub, "front-door", "set");
        _cleanup_free_ char *bs = mqtt_ha_bridge_topic(&hub, "state");

        assert_string_equal(hub_dev, "lockhub_" HUB_ID);
        assert_string_equal(dev, DEV_ID);
        assert_string_equal(dev2, DEV_ID);
        assert_null(mqtt_ha_lock_device_id(&hub, "not-an-address"));
        assert_string_equal(dt, "homeassistant/device/" DEV_ID "/config");
        assert_string_equal(st, "lockhub/front-door");
        assert_string_equal(set, "lockhub/front-door/set");
        assert_string_equal(bs, "lockhub/bridge/state");
        assert_true(mqtt_ha_hub_id_is_valid(HUB_ID));
        assert_false(mqtt_ha_hub_id_is_valid("0123456789ABCDEF"));
        assert_false(mqtt_ha_hub_id_is_valid("0123"));
        assert_false(mqtt_ha_hub_id_is_valid(NULL));
        assert_string_equal(mqtt_ha_code_format("1234"), "^\\d+$");
        assert_string_equal(mqtt_ha_code_format("abc1"), "^.+$");
        assert_string_equal(mqtt_ha_bridge_state(true), "{\"state\":\"online\"}");
        assert_string_equal(mqtt_ha_bridge_state(false), "{\"state\":\"offline\"}");
}

static const struct {
        const char *key, *platform, *default_entity_id;
} lock_components[] = {
        { "lock", "lock", "lock.front_door" },
        { "battery", "sensor", "sensor.front_door_battery" },
        { "battery_critical", "binary_sensor", "binary_sensor.front_door_battery_critical" },
        { "door", "binary_sensor", "binary_sensor.front_door_door" },
        { "problem", "binary_sensor", "binary_sensor.front_door_problem" },
        { "rssi", "sensor", "sensor.front_door_rssi" },
        { "connectivity", "binary_sensor", "binary_sensor.front_door_connectivity" },
        { "activity", "event", "event.front_door_activity" },
        { "firmware", "update", "update.front_door_firmware" },
        { "health", "sensor", "sensor.front_door_health" },
        { "code_sync", "sensor", "sensor.front_door_code_sync" },
};

static void test_lock_discovery(void **state)
{
        _cleanup_(lock_freep) Lock *l = new_lock("front-door");
        MqttHaLockInfo info = { .manufacturer = "Nuki", .allow_unlatch = true };
        _cleanup_free_ char *s = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        json_object *cmps, *v;

        l->model = strdup("Smart Lock 3.0 Pro");
        l->firmware = strdup("3.5.6");
        s = mqtt_ha_lock_discovery(&hub, l, &info);
        o = parse(s);
        assert_null(strstr(s, "object_id"));
        assert_null(strstr(s, "\\/"));

        /* device */
        assert_string_equal(str(o, "device.identifiers.0"), DEV_ID);
        assert_int_equal(json_object_array_length(at(o, "device.identifiers")), 1);
        assert_string_equal(str(o, "device.connections.0.0"), "bluetooth");
        assert_string_equal(str(o, "device.connections.0.1"), "AA:BB:CC:DD:EE:FF");
        assert_string_equal(str(o, "device.name"), "front-door");
        assert_string_equal(str(o, "device.manufacturer"), "Nuki");
        assert_string_equal(str(o, "device.model"), "Smart Lock 3.0 Pro");
        assert_string_equal(str(o, "device.sw_version"), "3.5.6");
        assert_string_equal(str(o, "device.via_device"), "lockhub_" HUB_ID);
        assert_false(has(o, "device.hw_version"));
        /* origin */
        assert_string_equal(str(o, "origin.name"), "lockhub");
        assert_string_equal(str(o, "origin.sw_version"), "0.1.0");
        /* availability: bridge and lock, both needed */
        assert_int_equal(json_object_array_length(at(o, "availability")), 2);
        assert_string_equal(str(o, "availability.0.topic"), "lockhub/bridge/state");
        assert_string_equal(str(o, "availability.0.value_template"), "{{ value_json.state }}");
        assert_string_equal(str(o, "availability.1.topic"), "lockhub/front-door/availability");
        assert_false(has(o, "availability.1.value_template"));
        assert_string_equal(str(o, "availability_mode"), "all");
        assert_int_equal(json_object_get_int(at(o, "qos")), 1);

        cmps = at(o, "components");
        assert_int_equal(json_object_object_length(cmps), ELEMENTSOF(lock_components));
        for (size_t i = 0; i < ELEMENTSOF(lock_components); i++) {
                char uid[128];
                json_object *c = at(cmps, lock_components[i].key);

                assert_non_null(c);
                snprintf(uid, sizeof uid, DEV_ID "_%s", lock_components[i].key);
                assert_string_equal(str(c, "platform"), lock_components[i].platform);
                assert_string_equal(str(c, "unique_id"), uid);
                assert_string_equal(str(c, "default_entity_id"), lock_components[i].default_entity_id);
                assert_true(has(c, "name"));
                assert_non_null(at(c, "state_topic"));
                assert_false(has(c, "object_id"));
        }

        /* lock entity */
        assert_true(json_object_is_type(at(cmps, "lock.name"), json_type_null));
        assert_string_equal(str(cmps, "lock.command_topic"), "lockhub/front-door/set");
        assert_string_equal(str(cmps, "lock.state_topic"), "lockhub/front-door");
        assert_string_equal(str(cmps, "lock.value_template"), "{{ value_json.state }}");
        assert_string_equal(str(cmps, "lock.payload_lock"), "LOCK");
        assert_string_equal(str(cmps, "lock.payload_unlock"), "UNLOCK");
        assert_string_equal(str(cmps, "lock.payload_open"), "OPEN");
        assert_string_equal(str(cmps, "lock.state_locked"), "LOCKED");
        assert_string_equal(str(cmps, "lock.state_unlocked"), "UNLOCKED");
        assert_string_equal(str(cmps, "lock.state_locking"), "LOCKING");
        assert_string_equal(str(cmps, "lock.state_unlocking"), "UNLOCKING");
        assert_string_equal(str(cmps, "lock.state_jammed"), "JAMMED");
        assert_string_equal(str(cmps, "lock.state_open"), "OPEN");
        assert_string_equal(str(cmps, "lock.state_opening"), "OPENING");
        assert_false(has(cmps, "lock.code_format"));
        assert_false(has(cmps, "lock.command_template"));

        assert_string_equal(str(cmps, "battery.device_class"), "battery");
        assert_string_equal(str(cmps, "battery.unit_of_measurement"), "%");
        assert_string_equal(str(cmps, "battery.value_template"), "{{ value_json.battery }}");
        assert_string_equal(str(cmps, "battery_critical.device_class"), "battery");
        assert_string_equal(str(cmps, "door.device_class"), "door");
        assert_string_equal(str(cmps, "problem.device_class"), "problem");
        assert_string_equal(str(cmps, "problem.json_attributes_topic"), "lockhub/front-door");
        assert_string_equal(str(cmps, "rssi.device_class"), "signal_strength");
        assert_string_equal(str(cmps, "rssi.unit_of_measurement"), "dBm");
        assert_string_equal(str(cmps, "rssi.entity_category"), "diagnostic");
        assert_string_equal(str(cmps, "connectivity.device_class"), "connectivity");
        assert_string_equal(str(cmps, "connectivity.entity_category"), "diagnostic");
        /* connectivity follows the bridge only: "off", not "unavailable", when unreachable */
        assert_int_equal(json_object_array_length(at(cmps, "connectivity.availability")), 1);
        assert_string_equal(str(cmps, "connectivity.availability.0.topic"), "lockhub/bridge/state");
        assert_string_equal(str(cmps, "activity.state_topic"), "lockhub/front-door/event");
        assert_false(has(cmps, "activity.entity_category"));
        v = at(cmps, "activity.event_types");
        assert_int_equal(json_object_array_length(v), 11);
        assert_string_equal(str(v, "0"), "lock");
        assert_string_equal(str(v, "2"), "open");
        assert_string_equal(str(v, "6"), "failed");
        assert_string_equal(str(v, "7"), "jammed");
        assert_string_equal(str(cmps, "firmware.device_class"), "firmware");
        assert_string_equal(str(cmps, "firmware.value_template"), "{{ value_json.update | tojson }}");
        assert_string_equal(str(cmps, "health.device_class"), "enum");
        /* the health sensor shows the diagnosis' headline: "ok" or a finding (or a live alarm) */
        assert_string_equal(str(cmps, "health.value_template"), "{{ value_json.health.headline }}");
        assert_string_equal(str(cmps, "health.json_attributes_template"),
                            "{{ value_json.health | tojson }}");
        v = at(cmps, "health.options");
        assert_int_equal(json_object_array_length(v), 1 + _HEALTH_FINDING_MAX + 8);
        assert_string_equal(str(v, "0"), "ok");
        for (HealthFindingId f = 0; f < _HEALTH_FINDING_MAX; f++) {
                char k[8];
                snprintf(k, sizeof k, "%d", 1 + (int) f);
                assert_string_equal(str(v, k), health_finding_id_to_string(f));
        }
        {
                char k[8];
                /* the live findings follow */
                snprintf(k, sizeof k, "%d", 1 + _HEALTH_FINDING_MAX);
                assert_string_equal(str(v, k), "needs_repair");
                snprintf(k, sizeof k, "%d", 2 + _HEALTH_FINDING_MAX);
                assert_string_equal(str(v, k), "jammed");
        }
        assert_int_equal(json_object_array_length(at(cmps, "health.availability")), 1);
        /* the code sync sensor: one state of four, the counts as attributes, known while the
         * lock is out of reach */
        assert_string_equal(str(cmps, "code_sync.platform"), "sensor");
        assert_string_equal(str(cmps, "code_sync.state_topic"), "lockhub/front-door");
        assert_string_equal(str(cmps, "code_sync.value_template"), "{{ value_json.codes.state }}");
        assert_string_equal(str(cmps, "code_sync.json_attributes_topic"), "lockhub/front-door");
        assert_string_equal(str(cmps, "code_sync.json_attributes_template"),
                            "{{ value_json.codes | tojson }}");
        assert_string_equal(str(cmps, "code_sync.device_class"), "enum");
        assert_string_equal(str(cmps, "code_sync.entity_category"), "diagnostic");
        v = at(cmps, "code_sync.options");
        assert_int_equal(json_object_array_length(v), 4);
        assert_string_equal(str(v, "0"), "synced");
        assert_string_equal(str(v, "1"), "pending");
        assert_string_equal(str(v, "2"), "drifted");
        assert_string_equal(str(v, "3"), "failed");
        assert_int_equal(json_object_array_length(at(cmps, "code_sync.availability")), 1);
        assert_string_equal(str(cmps, "code_sync.availability.0.topic"), "lockhub/bridge/state");
}

static void test_lock_discovery_code_and_no_unlatch(void **state)
{
        _cleanup_(lock_freep) Lock *l = new_lock("Garage_2");
        MqttHaLockInfo info = { .allow_unlatch = false, .code_format = "^\\d+$" };
        _cleanup_free_ char *s = mqtt_ha_lock_discovery(&hub, l, &info);
        _cleanup_(json_object_putp) json_object *o = parse(s);

        assert_false(has(o, "components.lock.payload_open"));
        assert_string_equal(str(o, "components.lock.code_format"), "^\\d+$");
        assert_string_equal(str(o, "components.lock.command_template"),
                            "{\"state\": \"{{ value }}\", \"code\": {{ code | tojson }}}");
        assert_string_equal(str(o, "components.lock.default_entity_id"), "lock.garage_2");
        assert_false(has(o, "device.manufacturer"));
        assert_false(has(o, "device.model"));
        assert_false(has(o, "device.sw_version"));
}

static void test_unique_ids_ignore_name(void **state)
{
        _cleanup_(lock_freep) Lock *a = new_lock("front-door");
        _cleanup_(lock_freep) Lock *b = new_lock("renamed");
        MqttHaLockInfo info = { 0 };
        _cleanup_free_ char *sa = mqtt_ha_lock_discovery(&hub, a, &info);
        _cleanup_free_ char *sb = mqtt_ha_lock_discovery(&hub, b, &info);
        _cleanup_(json_object_putp) json_object *oa = parse(sa), *ob = parse(sb);

        for (size_t i = 0; i < ELEMENTSOF(lock_components); i++) {
                char p[128];
                snprintf(p, sizeof p, "components.%s.unique_id", lock_components[i].key);
                assert_string_equal(str(oa, p), str(ob, p));
        }
        assert_string_equal(str(oa, "device.identifiers.0"), str(ob, "device.identifiers.0"));
}

static void test_hub_discovery(void **state)
{
        _cleanup_free_ char *s = mqtt_ha_hub_discovery(&hub);
        _cleanup_(json_object_putp) json_object *o = parse(s);

        assert_string_equal(str(o, "device.identifiers.0"), "lockhub_" HUB_ID);
        assert_string_equal(str(o, "device.name"), "Hallway hub");
        assert_string_equal(str(o, "device.sw_version"), "0.1.0");
        assert_false(has(o, "device.via_device"));
        assert_string_equal(str(o, "origin.name"), "lockhub");
        assert_false(has(o, "availability"));
        assert_string_equal(str(o, "components.state.platform"), "binary_sensor");
        /* entity ids from the hub's name: two hubs on one Home Assistant do not collide */
        assert_string_equal(str(o, "components.state.default_entity_id"),
                            "binary_sensor.hallway_hub_bridge_state");
        assert_string_equal(str(o, "components.version.default_entity_id"), "sensor.hallway_hub_version");
        assert_string_equal(str(o, "components.state.unique_id"), "lockhub_" HUB_ID "_state");
        assert_string_equal(str(o, "components.state.state_topic"), "lockhub/bridge/state");
        assert_string_equal(str(o, "components.state.payload_on"), "online");
        assert_string_equal(str(o, "components.state.payload_off"), "offline");
        assert_false(has(o, "components.state.availability"));
        assert_string_equal(str(o, "components.version.state_topic"), "lockhub/bridge/info");
        assert_string_equal(str(o, "components.locks.value_template"), "{{ value_json.locks | length }}");
        assert_string_equal(str(o, "components.reachable_locks.unique_id"),
                            "lockhub_" HUB_ID "_reachable_locks");
}

static void test_state_unknown(void **state)
{
        _cleanup_(lock_freep) Lock *l = new_lock("front-door");
        _cleanup_free_ char *s = mqtt_ha_lock_state(l, 0);

        assert_string_equal(s, "{\"state\":null,\"lock_state\":\"unknown\",\"battery\":null,\"battery_"
                               "critical\":false,"
                               "\"charging\":false,\"door\":\"unknown\",\"jammed\":false,\"jammed_reason\":"
                               "null,\"rssi\":null,"
                               "\"link\":{\"connected\":false,\"reachable\":false,\"last_seen\":null,\"last_"
                               "seen_sec\":null},"
                               "\"model\":null,\"firmware\":null,\"update\":{},\"codes\":null,\"last_"
                               "action\":null,\"needs_repair\":false,"
                               "\"problem\":false,\"problem_reason\":null,\"health\":{\"status\":"
                               "\"warning\",\"findings\":"
                               "[{\"code\":\"unreachable\",\"severity\":\"warning\",\"message\":\"Not "
                               "reachable over "
                               "Bluetooth; not seen yet.\"}],\"headline\":\"unreachable\"}}");
}

static void test_state_full(void **state)
{
        _cleanup_(lock_freep) Lock *l = new_lock("front-door");
        _cleanup_free_ char *s = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;
        const uint64_t t = 1764107700ULL * 1000000ULL; /* 2025-11-25T21:55:00Z */

        l->state = LOCK_STATE_UNLATCHED;
        l->battery = (LockBattery){ .percent = 7,
                                    .critical = true,
                                    .charging = false,
                                    .keypad_critical = -1,
                                    .door_sensor_critical = -1 };
        l->door = LOCK_DOOR_OPEN;
        l->link = (LockLink){ .connected = true, .rssi = -71, .last_seen_usec = t, .reachable = true };
        l->firmware = strdup("3.5.6");
        l->last_action = (LockLastAction){
                .action = LOCK_ACTION_UNLATCH, .source = LOCK_SOURCE_MQTT, .actor = "alice", .time_usec = t
        };
        s = mqtt_ha_lock_state(l, t + 90 * 1000000ULL);
        o = parse(s);
        assert_string_equal(str(o, "state"), "OPEN");
        assert_string_equal(str(o, "lock_state"), "unlatched");
        assert_int_equal(json_object_get_int(at(o, "battery")), 7);
        assert_true(json_object_get_boolean(at(o, "battery_critical")));
        assert_false(json_object_get_boolean(at(o, "charging")));
        assert_string_equal(str(o, "door"), "open");
        assert_false(json_object_get_boolean(at(o, "jammed")));
        assert_int_equal(json_object_get_int(at(o, "rssi")), -71);
        assert_true(json_object_get_boolean(at(o, "link.connected")));
        assert_string_equal(str(o, "link.last_seen"), "2025-11-25T21:55:00Z");
        assert_int_equal(json_object_get_int(at(o, "link.last_seen_sec")), 90);
        assert_string_equal(str(o, "firmware"), "3.5.6");
        assert_string_equal(str(o, "update.installed_version"), "3.5.6");
        assert_string_equal(str(o, "update.latest_version"), "3.5.6");
        assert_string_equal(str(o, "last_action.action"), "open");
        assert_string_equal(str(o, "last_action.source"), "mqtt");
        assert_string_equal(str(o, "last_action.actor"), "alice");
        assert_string_equal(str(o, "last_action.time"), "2025-11-25T21:55:00Z");
        assert_false(json_object_get_boolean(at(o, "problem")));
        assert_string_equal(str(o, "health.status"), "warning");
        assert_string_equal(str(o, "health.findings.0.code"), "battery_critical");
        assert_string_equal(str(o, "health.findings.0.message"),
                            "Battery critically low (7%): replace the batteries soon.");
}

static void test_state_jammed_problem(void **state)
{
        _cleanup_(lock_freep) Lock *l = new_lock("front-door");
        _cleanup_free_ char *s = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;

        l->state = LOCK_STATE_JAMMED;
        l->needs_repair = true;
        l->link.reachable = true;
        s = mqtt_ha_lock_state(l, 0);
        o = parse(s);
        assert_string_equal(str(o, "state"), "JAMMED");
        assert_true(json_object_get_boolean(at(o, "jammed")));
        assert_non_null(strstr(str(o, "jammed_reason"), "motor is blocked"));
        assert_true(json_object_get_boolean(at(o, "problem")));
        /* the first problem is the reason: re-pairing comes before the jam */
        assert_non_null(strstr(str(o, "problem_reason"), "pair it with the hub again"));
        assert_string_equal(str(o, "health.status"), "problem");
        assert_string_equal(str(o, "health.findings.0.code"), "needs_repair");
        assert_string_equal(str(o, "health.findings.1.code"), "jammed");
        assert_null(at(o, "health.findings.2"));
        assert_string_equal(str(o, "health.headline"), "needs_repair");
}

/* A diagnosis by hand: findings as health_diagnose() orders them. */
static HealthFinding finding(HealthFindingId id, HealthSeverity sev, const char *title)
{
        return (HealthFinding){ .id = id,
                                .severity = sev,
                                .likelihood = 50,
                                .title = (char *) title,
                                .evidence = (char *) "evidence",
                                .next_step = (char *) "next step" };
}

static void test_state_with_report(void **state)
{
        _cleanup_(lock_freep) Lock *l = new_lock("front-door");
        HealthFinding f[2] = {
                finding(HEALTH_FINDING_SIGNAL_WEAK, HEALTH_SEVERITY_WARNING, "Weak signal: -91 dBm"),
                finding(HEALTH_FINDING_FIRMWARE_OUTDATED, HEALTH_SEVERITY_INFO, "Firmware 3.5.6 is older"),
        };
        HealthReport rep = { .lock = (char *) "front-door",
                             .firmware = (char *) "3.5.6",
                             .findings = f,
                             .n_findings = 2,
                             .firmware_latest = (char *) "3.6.1",
                             .ladder_state = _HEALTH_LADDER_STATE_MAX };
        CodeSyncSummary codes = { .synced = 2, .pending = 1 };
        MqttHaLockExtra x = { .health = &rep, .codes = &codes };
        _cleanup_free_ char *s = NULL;
        _cleanup_(json_object_putp) json_object *o = NULL;

        l->link.reachable = true;
        l->firmware = strdup("3.5.6");
        s = mqtt_ha_lock_state_ex(l, &x, 0);
        o = parse(s);
        /* health sensor: the report's headline; problem sensor: a warning is a problem */
        assert_string_equal(str(o, "health.headline"), "signal-weak");
        assert_string_equal(str(o, "health.health"), "signal-weak");
        assert_string_equal(str(o, "health.status"), "warning");
        assert_true(json_object_get_boolean(at(o, "health.problem")));
        assert_true(json_object_get_boolean(at(o, "problem")));
        assert_string_equal(str(o, "problem_reason"), "Weak signal: -91 dBm");
        /* attributes: the report as diagnose --json has it */
        assert_string_equal(str(o, "health.findings.0.id"), "signal-weak");
        assert_string_equal(str(o, "health.findings.0.next_step"), "next step");
        assert_string_equal(str(o, "health.findings.1.id"), "firmware-outdated");
        assert_int_equal(json_object_array_length(at(o, "health.live_findings")), 0);
        /* update entity: the newest known firmware */
        assert_string_equal(str(o, "update.installed_version"), "3.5.6");
        assert_string_equal(str(o, "update.latest_version"), "3.6.1");
        /* code sync sensor */
        assert_string_equal(str(o, "codes.state"), "pending");
        assert_int_equal(json_object_get_int(at(o, "codes.synced")), 2);
        assert_int_equal(json_object_get_int(at(o, "codes.pending")), 1);
        assert_int_equal(json_object_get_int(at(o, "codes.drifted")), 0);
        assert_int_equal(json_object_get_int(at(o, "codes.failed")), 0);
        free(s);
        json_object_put(o);

        /* only an info finding, a known firmware older than the installed one */
        rep.findings = f + 1;
        rep.n_findings = 1;
        rep.firmware_latest = (char *) "3.4.0";
        s = mqtt_ha_lock_state_ex(l, &x, 0);
        o = parse(s);
        assert_string_equal(str(o, "health.headline"), "firmware-outdated");
        assert_string_equal(str(o, "health.status"), "ok");
        assert_false(json_object_get_boolean(at(o, "problem")));
        assert_true(json_object_is_type(at(o, "problem_reason"), json_type_null));
        assert_string_equal(str(o, "update.latest_version"), "3.5.6");
        free(s);
        json_object_put(o);

        /* a jam now comes first, before what the history says */
        l->state = LOCK_STATE_JAMMED;
        rep.findings = f;
        rep.n_findings = 2;
        s = mqtt_ha_lock_state_ex(l, &x, 0);
        o = parse(s);
        assert_string_equal(str(o, "health.headline"), "jammed");
        assert_string_equal(str(o, "health.status"), "problem");
        assert_true(json_object_get_boolean(at(o, "problem")));
        assert_non_null(strstr(str(o, "problem_reason"), "motor is blocked"));
        assert_string_equal(str(o, "health.live_findings.0.code"), "jammed");
        free(s);
        json_object_put(o);

        /* no findings at all */
        l->state = LOCK_STATE_LOCKED;
        rep.n_findings = 0;
        rep.firmware_latest = NULL;
        s = mqtt_ha_lock_state_ex(l, &x, 0);
        o = parse(s);
        assert_string_equal(str(o, "health.headline"), "ok");
        assert_string_equal(str(o, "health.status"), "ok");
        assert_false(json_object_get_boolean(at(o, "problem")));
        assert_string_equal(str(o, "update.latest_version"), "3.5.6");
}

static void test_code_sync_state(void **state)
{
        _cleanup_(json_object_putp) json_object *o = NULL;

        assert_string_equal(mqtt_ha_code_sync_state(&(CodeSyncSummary){}), "synced");
        assert_string_equal(mqtt_ha_code_sync_state(&(CodeSyncSummary){ .synced = 3 }), "synced");
        assert_string_equal(mqtt_ha_code_sync_state(&(CodeSyncSummary){ .synced = 3, .pending = 1 }),
                            "pending");
        assert_string_equal(mqtt_ha_code_sync_state(&(CodeSyncSummary){ .pending = 1, .drifted = 1 }),
                            "drifted");
        assert_string_equal(mqtt_ha_code_sync_state(&(CodeSyncSummary){ .drifted = 1, .failed = 2 }),
                            "failed");
        o = mqtt_ha_code_sync_json(
                        &(CodeSyncSummary){ .synced = 1, .pending = 2, .drifted = 3, .failed = 4 });
        assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                            "{\"state\":\"failed\",\"synced\":1,\"pending\":2,\"drifted\":3,\"failed\":4}");
}

static void test_state_names(void **state)
{
        assert_string_equal(mqtt_ha_lock_state_name(LOCK_STATE_LOCKED), "LOCKED");
        assert_string_equal(mqtt_ha_lock_state_name(LOCK_STATE_UNLOCKED), "UNLOCKED");
        assert_string_equal(mqtt_ha_lock_state_name(LOCK_STATE_LOCKING), "LOCKING");
        assert_string_equal(mqtt_ha_lock_state_name(LOCK_STATE_UNLOCKING), "UNLOCKING");
        assert_string_equal(mqtt_ha_lock_state_name(LOCK_STATE_UNLATCHED), "OPEN");
        assert_string_equal(mqtt_ha_lock_state_name(LOCK_STATE_UNLATCHING), "OPENING");
        assert_string_equal(mqtt_ha_lock_state_name(LOCK_STATE_JAMMED), "JAMMED");
        assert_null(mqtt_ha_lock_state_name(LOCK_STATE_UNKNOWN));
        assert_null(mqtt_ha_lock_state_name(LOCK_STATE_UNCALIBRATED));
        /* Home Assistant has no calibrating: the motor runs, and it ends locked */
        assert_string_equal(mqtt_ha_lock_state_name(LOCK_STATE_CALIBRATING), "LOCKING");
        assert_string_equal(lock_state_to_string(LOCK_STATE_CALIBRATING), "calibrating");
}

static void test_events(void **state)
{
        const uint64_t t = 1764107700ULL * 1000000ULL;
        _cleanup_free_ char *a = mqtt_ha_event_action(LOCK_ACTION_UNLATCH, LOCK_SOURCE_LOCK, NULL, t);
        _cleanup_free_ char *b = mqtt_ha_event_action(LOCK_ACTION_LOCK, LOCK_SOURCE_DBUS, "uid 1000", t);
        _cleanup_free_ char *c = mqtt_ha_event_failed(LOCK_ACTION_UNLOCK, LOCK_SOURCE_MQTT,
                                                      MQTT_HA_REASON_NOT_SUPPORTED, "no driver", t);
        _cleanup_free_ char *d = mqtt_ha_event_alarm("jammed", "blocked", t);

        assert_string_equal(a,
                            "{\"event_type\":\"open\",\"time\":\"2025-11-25T21:55:00Z\",\"action\":\"open\","
                            "\"result\":\"done\",\"source\":\"lock\",\"actor\":null}");
        assert_string_equal(b,
                            "{\"event_type\":\"lock\",\"time\":\"2025-11-25T21:55:00Z\",\"action\":\"lock\","
                            "\"result\":\"done\",\"source\":\"dbus\",\"actor\":\"uid 1000\"}");
        assert_string_equal(c, "{\"event_type\":\"failed\",\"time\":\"2025-11-25T21:55:00Z\",\"action\":"
                               "\"unlock\",\"result\":\"failed\",\"reason\":\"not_supported\",\"message\":"
                               "\"no driver\",\"source\":\"mqtt\"}");
        assert_string_equal(d, "{\"event_type\":\"jammed\",\"time\":\"2025-11-25T21:55:00Z\",\"message\":"
                               "\"blocked\"}");
}

static void test_reasons(void **state)
{
        assert_string_equal(mqtt_ha_reason_to_string(mqtt_ha_reason_from_errno(-EDEADLK)), "jammed");
        assert_string_equal(mqtt_ha_reason_to_string(mqtt_ha_reason_from_errno(-EHOSTUNREACH)),
                            "unreachable");
        assert_string_equal(mqtt_ha_reason_to_string(mqtt_ha_reason_from_errno(-ETIMEDOUT)), "timeout");
        assert_string_equal(mqtt_ha_reason_to_string(mqtt_ha_reason_from_errno(-EBUSY)), "busy");
        assert_string_equal(mqtt_ha_reason_to_string(mqtt_ha_reason_from_errno(-EOPNOTSUPP)),
                            "not_supported");
        assert_string_equal(mqtt_ha_reason_to_string(mqtt_ha_reason_from_errno(-EACCES)), "not_authorized");
        assert_string_equal(mqtt_ha_reason_to_string(mqtt_ha_reason_from_errno(-EIO)), "failed");
        assert_string_equal(mqtt_ha_reason_to_string(MQTT_HA_REASON_REJECTED_CODE), "rejected_code");
        for (int i = 0; i < _MQTT_HA_REASON_MAX; i++)
                assert_non_null(mqtt_ha_reason_to_string((MqttHaReason) i));
}

/* ---- parsing ---- */

static int cmd(const char *s, MqttHaCommand *c, char **err)
{
        *c = (MqttHaCommand){ 0 };
        *err = NULL;
        return mqtt_ha_command_parse(s, strlen(s), c, err);
}

static void expect_cmd(const char *s, LockAction a, const char *code)
{
        MqttHaCommand c;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(cmd(s, &c, &err), 0);
        assert_null(err);
        assert_int_equal(c.action, a);
        if (code)
                assert_string_equal(c.code, code);
        else
                assert_null(c.code);
        mqtt_ha_command_done(&c);
}

static void expect_cmd_error(const char *s, size_t len, const char *error)
{
        MqttHaCommand c = { 0 };
        _cleanup_free_ char *err = NULL;

        assert_int_equal(mqtt_ha_command_parse(s, len, &c, &err), -EINVAL);
        assert_non_null(err);
        if (!strstr(err, error))
                fail_msg("error '%s' does not contain '%s'", err, error);
        assert_null(c.code);
}
#define expect_cmd_error_s(s, e) expect_cmd_error((s), strlen(s), (e))

static void test_command_parse(void **state)
{
        char big[MQTT_HA_COMMAND_MAX + 2];
        char deep[64] = "{\"state\":";

        expect_cmd("LOCK", LOCK_ACTION_LOCK, NULL);
        expect_cmd("UNLOCK", LOCK_ACTION_UNLOCK, NULL);
        expect_cmd("OPEN", LOCK_ACTION_UNLATCH, NULL);
        expect_cmd(" unlock\n", LOCK_ACTION_UNLOCK, NULL);
        expect_cmd("{\"state\": \"UNLOCK\", \"code\": \"1234\"}", LOCK_ACTION_UNLOCK, "1234");
        expect_cmd("{\"state\":\"lock\"}", LOCK_ACTION_LOCK, NULL);
        expect_cmd("{\"state\": \"OPEN\", \"code\": null}\n", LOCK_ACTION_UNLATCH, NULL);
        expect_cmd("{\"code\": \"k\\u00e4se\", \"state\": \"OPEN\"}", LOCK_ACTION_UNLATCH, "k\xc3\xa4se");

        expect_cmd_error_s("", "empty command");
        expect_cmd_error_s("  \n", "empty command");
        expect_cmd_error_s("UNLATCH", "unknown command; expected LOCK, UNLOCK or OPEN");
        {
                /* a code sent as text is never echoed into logs or MQTT */
                MqttHaCommand c = { 0 };
                _cleanup_free_ char *err = NULL;
                assert_int_equal(mqtt_ha_command_parse("482917", 6, &c, &err), -EINVAL);
                assert_null(strstr(err, "482917"));
        }
        expect_cmd_error_s("LOCK NOW", "unknown command");
        expect_cmd_error("LO\0CK", 5, "not valid UTF-8 text");
        expect_cmd_error_s("\xff\xfe", "not valid UTF-8");
        expect_cmd_error_s("{\"state\": \"LOCK\"", "unexpected end");
        expect_cmd_error_s("{\"state\": \"LOCK\"} x", "invalid JSON");
        expect_cmd_error_s("{\"state\": \"LOCK\"} {}", "invalid JSON");
        expect_cmd_error_s("{\"state\": \"LOCK\",}", "invalid JSON");
        expect_cmd_error_s("{'state': 'LOCK'}", "invalid JSON");
        expect_cmd_error_s("{\"state\": 1}", "'state' must be a string");
        expect_cmd_error_s("{\"state\": \"\"}", "'state' must not be empty");
        expect_cmd_error_s("{\"state\": \"LOCK\", \"code\": 1234}", "'code' must be a string");
        expect_cmd_error_s("{\"state\": \"LOCK\", \"code\": \"a\\u0000b\"}", "NUL character");
        expect_cmd_error_s("{\"code\": \"1234\"}", "has no 'state'");
        expect_cmd_error_s("{\"state\": \"FLY\"}", "unknown state 'FLY'");
        expect_cmd_error_s("{\"state\": \"LOCK\", \"delay\": 5}", "unknown key 'delay'");
        expect_cmd_error_s("{\"state\": \"LOCK\", \"code\": \"\xc0\xaf\"}", "not valid UTF-8");
        expect_cmd_error_s("{\"state\": \"LOCK\", \"code\": \"\xed\xa0\x80\"}", "not valid UTF-8");

        for (size_t i = 0; i < 10; i++)
                strcat(deep, "[");
        expect_cmd_error_s(deep, "nested deeper");

        memset(big, ' ', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        memcpy(big, "LOCK", 4);
        expect_cmd_error_s(big, "too large");
}

static void test_request_parse(void **state)
{
        MqttHaRequest r;
        _cleanup_free_ char *err = NULL, *resp = NULL;
        const char *lock;
        const char *p;

        p = "";
        assert_int_equal(mqtt_ha_request_parse("health", p, 0, &r, &err), 0);
        assert_string_equal(r.op, "health");
        assert_int_equal(json_object_object_length(r.params), 0);
        assert_null(r.transaction);
        resp = mqtt_ha_response_ok(&r, NULL);
        assert_string_equal(resp, "{\"status\":\"ok\",\"data\":{}}");
        mqtt_ha_request_done(&r);
        free(resp);

        p = "{\"lock\": \"front-door\", \"transaction\": \"abc-1\"}";
        assert_int_equal(mqtt_ha_request_parse("lock/refresh", p, strlen(p), &r, &err), 0);
        assert_int_equal(mqtt_ha_request_get_string(&r, "lock", true, 32, &lock, &err), 0);
        assert_string_equal(lock, "front-door");
        assert_int_equal(mqtt_ha_request_get_string(&r, "action", false, 32, &lock, &err), -ENOENT);
        assert_null(lock);
        resp = mqtt_ha_response_error(&r, "no such lock");
        assert_string_equal(resp, "{\"status\":\"error\",\"data\":{},\"error\":\"no such "
                                  "lock\",\"transaction\":\"abc-1\"}");
        free(resp);
        resp = mqtt_ha_response_ok(&r, json_object_new_string("x/y"));
        assert_string_equal(resp, "{\"status\":\"ok\",\"data\":\"x/y\",\"transaction\":\"abc-1\"}");
        mqtt_ha_request_done(&r);
        free(resp);

        p = "{\"transaction\": 42}";
        assert_int_equal(mqtt_ha_request_parse("locks", p, strlen(p), &r, &err), 0);
        resp = mqtt_ha_response_ok(&r, json_object_new_array());
        assert_string_equal(resp, "{\"status\":\"ok\",\"data\":[],\"transaction\":42}");
        assert_int_equal(mqtt_ha_request_get_string(&r, "lock", true, 32, &lock, &err), -EINVAL);
        assert_string_equal(err, "missing 'lock'");
        mqtt_ha_request_done(&r);
        free(resp);
        resp = NULL;
        free(err);
        err = NULL;

        p = "{\"transaction\": [1]}";
        assert_int_equal(mqtt_ha_request_parse("locks", p, strlen(p), &r, &err), -EINVAL);
        assert_string_equal(err, "'transaction' must be a string or an integer");
        mqtt_ha_request_done(&r);
        free(err);
        err = NULL;

        p = "{\"lock\": 5, \"transaction\": \"t\"}";
        assert_int_equal(mqtt_ha_request_parse("lock/refresh", p, strlen(p), &r, &err), 0);
        assert_int_equal(mqtt_ha_request_get_string(&r, "lock", true, 32, &lock, &err), -EINVAL);
        assert_string_equal(err, "'lock' must be a string");
        mqtt_ha_request_done(&r);
        free(err);
        err = NULL;

        p = "[1,2]";
        assert_int_equal(mqtt_ha_request_parse("health", p, strlen(p), &r, &err), -EINVAL);
        assert_string_equal(err, "request must be a JSON object");
        /* the op survives a bad payload, for the error response's topic */
        assert_string_equal(r.op, "health");
        mqtt_ha_request_done(&r);
        free(err);
        err = NULL;

        p = "{not json";
        assert_int_equal(mqtt_ha_request_parse("health", p, strlen(p), &r, &err), -EINVAL);
        assert_non_null(strstr(err, "invalid JSON"));
        resp = mqtt_ha_response_error(&r, err);
        assert_non_null(strstr(resp, "\"status\":\"error\""));
        mqtt_ha_request_done(&r);
        free(err);
        err = NULL;

        assert_int_equal(mqtt_ha_request_parse("Health", "", 0, &r, &err), -EINVAL);
        mqtt_ha_request_done(&r);
        free(err);
        err = NULL;
        assert_int_equal(mqtt_ha_request_parse("lock//action", "", 0, &r, &err), -EINVAL);
        mqtt_ha_request_done(&r);
        free(err);
        err = NULL;
        assert_int_equal(mqtt_ha_request_parse("lock/+", "", 0, &r, &err), -EINVAL);
        mqtt_ha_request_done(&r);
        free(err);
        err = NULL;
}

static void test_response_from_and_wipe(void **state)
{
        MqttHaRequest r;
        _cleanup_free_ char *err = NULL, *resp = NULL;
        json_object *reply, *v, *d;
        const char *p, *digits, *nested, *name;

        p = "{\"user\": \"Alice\", \"digits\": \"345678\", \"transaction\": 9,"
            " \"document\": {\"users\": [{\"codes\": [{\"digits\": \"456789\", \"name\": \"X\"}]}]},"
            " \"passphrase\": \"open sesame\"}";
        assert_int_equal(mqtt_ha_request_parse("code/add", p, strlen(p), &r, &err), 0);

        /* a reply made elsewhere: data added, rule kept, transaction echoed */
        reply = json_object_new_object();
        json_object_object_add(reply, "status", json_object_new_string("error"));
        json_object_object_add(reply, "error", json_object_new_string("prefix-12: no"));
        json_object_object_add(reply, "rule", json_object_new_string("prefix-12"));
        resp = mqtt_ha_response_from(&r, reply);
        assert_string_equal(resp, "{\"status\":\"error\",\"error\":\"prefix-12: no\",\"rule\":\"prefix-12\","
                                  "\"data\":{},\"transaction\":9}");
        free(resp);
        reply = json_object_new_object();
        json_object_object_add(reply, "status", json_object_new_string("ok"));
        json_object_object_add(reply, "data", json_object_new_int(4));
        resp = mqtt_ha_response_from(&r, reply);
        assert_string_equal(resp, "{\"status\":\"ok\",\"data\":4,\"transaction\":9}");
        assert_null(mqtt_ha_response_from(&r, NULL));

        /* every secret at any depth is zeroed in place, nothing else */
        assert_true(json_object_object_get_ex(r.params, "digits", &v));
        digits = json_object_get_string(v);
        d = json_object_object_get(r.params, "document");
        v = json_object_array_get_idx(json_object_object_get(d, "users"), 0);
        v = json_object_array_get_idx(json_object_object_get(v, "codes"), 0);
        nested = json_object_get_string(json_object_object_get(v, "digits"));
        name = json_object_get_string(json_object_object_get(v, "name"));
        mqtt_ha_json_wipe_secrets(r.params);
        assert_memory_equal(digits, "\0\0\0\0\0\0", 6);
        assert_memory_equal(nested, "\0\0\0\0\0\0", 6);
        assert_int_equal(strlen(json_object_get_string(json_object_object_get(r.params, "passphrase"))), 0);
        assert_string_equal(name, "X");
        assert_string_equal(json_object_get_string(json_object_object_get(r.params, "user")), "Alice");
        mqtt_ha_request_done(&r);
        mqtt_ha_json_put_wipe(NULL);
}

/* The pairing secrets of a backup document, the unlock code of a request, codes given as
 * numbers (and the text a double keeps), and whatever sits under a secret name. */
static void test_wipe_more_secrets(void **state)
{
        _cleanup_free_ char *err = NULL;
        MqttHaRequest r;
        json_object *doc, *pairing, *v;
        const char *p, *key, *pin, *unlock, *name, *inner;
        char *dtext;

        p = "{\"unlock_code\": \"2468\", \"document\": {\"locks\": [{\"name\": \"front\", \"pairing\":"
            " {\"auth_id\": 7, \"shared_key\": \"00112233\", \"security_pin\": \"04d2\"}}],"
            " \"users\": [{\"codes\": [{\"digits\": 345678, \"name\": \"N\"}, {\"digits\": 456789.0}]}]},"
            " \"passphrase\": [\"567891\", {\"x\": \"678912\"}], \"code\": 97531, \"pin\": 1234}";
        assert_int_equal(mqtt_ha_request_parse("restore", p, strlen(p), &r, &err), 0);
        doc = json_object_object_get(r.params, "document");
        assert_true(mqtt_ha_json_has_secrets(doc));
        pairing = json_object_object_get(json_object_array_get_idx(json_object_object_get(doc, "locks"), 0),
                                         "pairing");
        key = json_object_get_string(json_object_object_get(pairing, "shared_key"));
        pin = json_object_get_string(json_object_object_get(pairing, "security_pin"));
        unlock = json_object_get_string(json_object_object_get(r.params, "unlock_code"));
        v = json_object_object_get(json_object_array_get_idx(json_object_object_get(doc, "users"), 0),
                                   "codes");
        name = json_object_get_string(json_object_object_get(json_object_array_get_idx(v, 0), "name"));
        dtext = json_object_get_userdata(json_object_object_get(json_object_array_get_idx(v, 1), "digits"));
        /* json-c keeps the text of a double (freed, once wiped, when the value is reset) */
        assert_non_null(dtext);
        assert_string_equal(dtext, "456789.0");
        inner = json_object_get_string(json_object_object_get(
                        json_object_array_get_idx(json_object_object_get(r.params, "passphrase"), 1), "x"));

        mqtt_ha_json_wipe_secrets(r.params);
        assert_memory_equal(key, "\0\0\0\0\0\0\0\0", 8);
        assert_memory_equal(pin, "\0\0\0\0", 4);
        assert_memory_equal(unlock, "\0\0\0\0", 4);
        assert_memory_equal(inner, "\0\0\0\0\0\0", 6);
        assert_int_equal(json_object_get_int64(json_object_object_get(pairing, "auth_id")), 7);
        assert_string_equal(name, "N");
        assert_int_equal(json_object_get_int64(
                                         json_object_object_get(json_object_array_get_idx(v, 0), "digits")),
                         0);
        assert_true(json_object_get_double(
                                    json_object_object_get(json_object_array_get_idx(v, 1), "digits")) == 0);
        assert_int_equal(json_object_get_int64(json_object_object_get(r.params, "code")), 0);
        assert_int_equal(json_object_get_int64(json_object_object_get(r.params, "pin")), 0);
        /* nothing of them when written out again */
        p = json_object_to_json_string_ext(r.params, JSON_C_TO_STRING_PLAIN);
        for (const char *const *s = (const char *const[]){ "2468", "00112233", "04d2", "345678", "456789",
                                                           "567891", "678912", "97531", "1234", NULL };
             *s; s++)
                assert_null(strstr(p, *s));

        /* mqtt_ha_json_wipe(): everything in the object */
        v = json_object_new_object();
        json_object_object_add(v, "a", json_object_new_string("secret"));
        json_object_object_add(v, "b", json_object_new_int(42));
        key = json_object_get_string(json_object_object_get(v, "a"));
        mqtt_ha_json_wipe(v);
        assert_memory_equal(key, "\0\0\0\0\0\0", 6);
        assert_int_equal(json_object_get_int(json_object_object_get(v, "b")), 0);
        json_object_put(v);

        /* a backup document without secrets has none */
        v = json_tokener_parse("{\"format\": \"lockhub-backup\", \"users\": [{\"name\": \"A\", \"codes\":"
                               " [{\"name\": \"A\", \"locks\": [\"front\"]}]}]}");
        assert_false(mqtt_ha_json_has_secrets(v));
        json_object_put(v);
        mqtt_ha_request_done(&r);

        assert_true(mqtt_ha_op_is_valid("code/add"));
        assert_false(mqtt_ha_op_is_valid("code/+"));
        assert_false(mqtt_ha_op_is_valid("code//add"));
        assert_false(mqtt_ha_op_is_valid(""));
}

static void test_utf8(void **state)
{
        assert_true(mqtt_ha_utf8_is_valid("", 0));
        assert_true(mqtt_ha_utf8_is_valid("abc", 3));
        assert_true(mqtt_ha_utf8_is_valid("\xc3\xa4", 2));
        assert_true(mqtt_ha_utf8_is_valid("\xe2\x82\xac", 3));
        assert_true(mqtt_ha_utf8_is_valid("\xf0\x9f\x94\x92", 4));
        assert_false(mqtt_ha_utf8_is_valid("\xc3", 1));
        assert_false(mqtt_ha_utf8_is_valid("\x80", 1));
        assert_false(mqtt_ha_utf8_is_valid("\xc0\x80", 2));         /* overlong NUL */
        assert_false(mqtt_ha_utf8_is_valid("\xe0\x80\xaf", 3));     /* overlong */
        assert_false(mqtt_ha_utf8_is_valid("\xed\xa0\x80", 3));     /* surrogate */
        assert_false(mqtt_ha_utf8_is_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
        assert_false(mqtt_ha_utf8_is_valid("\xf5\x80\x80\x80", 4));
}

/* The hub id: made once, then the same forever (it is in every unique id). */
static void test_hub_id(void **state)
{
        char dir[] = "/tmp/test-mqtt-ha-XXXXXX", path[64];
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        Store *s = NULL;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(store_open(dir, &s), 0);
        assert_int_equal(mqtt_bridge_hub_id(s, &a), 0);
        assert_true(mqtt_ha_hub_id_is_valid(a));
        s = store_free(s);

        assert_int_equal(store_open(dir, &s), 0);
        assert_int_equal(mqtt_bridge_hub_id(s, &b), 0);
        assert_string_equal(a, b);
        /* a damaged value is replaced rather than used */
        assert_int_equal(store_meta_set(s, MQTT_BRIDGE_HUB_ID_KEY, "not-hex"), 0);
        assert_int_equal(mqtt_bridge_hub_id(s, &c), 0);
        assert_true(mqtt_ha_hub_id_is_valid(c));
        assert_string_not_equal(c, a);
        s = store_free(s);

        for (const char *const *f = (const char *const[]){ "lockhub.db", "lockhub.db-wal", "lockhub.db-shm",
                                                           "lockhub.db-clean", NULL };
             *f; f++) {
                snprintf(path, sizeof path, "%s/%s", dir, *f);
                (void) unlink(path);
        }
        assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_state_with_report),
                cmocka_unit_test(test_code_sync_state),
                cmocka_unit_test(test_response_from_and_wipe),
                cmocka_unit_test(test_wipe_more_secrets),
                cmocka_unit_test(test_ids_and_topics),
                cmocka_unit_test(test_lock_discovery),
                cmocka_unit_test(test_lock_discovery_code_and_no_unlatch),
                cmocka_unit_test(test_unique_ids_ignore_name),
                cmocka_unit_test(test_hub_discovery),
                cmocka_unit_test(test_state_unknown),
                cmocka_unit_test(test_state_full),
                cmocka_unit_test(test_state_jammed_problem),
                cmocka_unit_test(test_state_names),
                cmocka_unit_test(test_events),
                cmocka_unit_test(test_reasons),
                cmocka_unit_test(test_command_parse),
                cmocka_unit_test(test_request_parse),
                cmocka_unit_test(test_utf8),
                cmocka_unit_test(test_hub_id),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
