/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The lock model: every change is recorded before it is announced; no-ops are silent. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>

#include "lockhub/lock.h"

struct record {
        char log[2048];  /* "kind/source/actor/detail;" per event, then "N:changes;" per notify */
        unsigned events; /* events seen by the sink */
        unsigned notifies;
};

static int sink(Lock *l, const char *kind, LockSource source, const char *actor, const char *detail,
                void *userdata)
{
        struct record *r = userdata;
        size_t n = strlen(r->log);

        snprintf(r->log + n, sizeof r->log - n, "%s/%s/%s/%s;", kind, lock_source_to_string(source),
                 strempty(actor), strempty(detail));
        r->events++;
        return 0;
}

static void listener(Lock *l, unsigned changes, void *userdata)
{
        struct record *r = userdata;
        size_t n = strlen(r->log);

        snprintf(r->log + n, sizeof r->log - n, "N:%u;", changes);
        r->notifies++;
}

static Lock *new_lock(struct record *r)
{
        Lock *l = NULL;

        assert_int_equal(lock_new("front-door", "aa:bb:cc:dd:ee:ff", &l), 0);
        l->event_sink = sink;
        l->event_sink_userdata = r;
        assert_int_equal(lock_add_listener(l, listener, r), 0);
        return l;
}

static void test_names(void **state)
{
        char a[18];
        Lock *l = NULL;

        assert_true(lock_name_is_valid("front-door"));
        assert_true(lock_name_is_valid("Garage_2"));
        assert_false(lock_name_is_valid(""));
        assert_false(lock_name_is_valid("-x"));
        assert_false(lock_name_is_valid("a/b"));
        assert_false(lock_name_is_valid("a b"));
        assert_false(lock_name_is_valid("käse"));
        assert_false(lock_name_is_valid("123456789012345678901234567890123"));
        assert_int_equal(lock_address_normalize("aa:bb:cc:dd:ee:0f", a), 0);
        assert_string_equal(a, "AA:BB:CC:DD:EE:0F");
        assert_int_equal(lock_address_normalize("aa:bb:cc:dd:ee:0", a), -EINVAL);
        assert_int_equal(lock_address_normalize("aa-bb-cc-dd-ee-0f", a), -EINVAL);
        assert_int_equal(lock_address_normalize("gg:bb:cc:dd:ee:0f", a), -EINVAL);
        assert_int_equal(lock_new("bad name", "AA:BB:CC:DD:EE:FF", &l), -EINVAL);
        assert_int_equal(lock_new("ok", "nope", &l), -EINVAL);
        assert_null(l);
}

static void test_enums_round_trip(void **state)
{
        for (int i = 0; i < _LOCK_STATE_MAX; i++)
                assert_int_equal(lock_state_from_string(lock_state_to_string((LockState) i)), i);
        for (int i = 0; i < _LOCK_ACTION_MAX; i++)
                assert_int_equal(lock_action_from_string(lock_action_to_string((LockAction) i)), i);
        assert_int_equal(lock_action_from_string("open"), LOCK_ACTION_UNLATCH);
        assert_int_equal(lock_action_from_string("explode"), _LOCK_ACTION_MAX);
        assert_int_equal(lock_state_from_string(NULL), _LOCK_STATE_MAX);
        assert_null(lock_state_to_string(_LOCK_STATE_MAX));
}

static void test_state_event_then_notify(void **state)
{
        struct record r = {};
        _cleanup_(lock_freep) Lock *l = new_lock(&r);

        assert_int_equal(lock_set_state(l, LOCK_STATE_LOCKED, LOCK_SOURCE_DBUS, "alice"), 1);
        assert_string_equal(r.log, "state/dbus/alice/{\"from\":\"unknown\",\"to\":\"locked\"};N:1;");
        /* The same state again: no event, no notification. */
        assert_int_equal(lock_set_state(l, LOCK_STATE_LOCKED, LOCK_SOURCE_DBUS, "alice"), 0);
        assert_int_equal(r.events, 1);
        assert_int_equal(r.notifies, 1);
        assert_int_equal(lock_set_state(l, _LOCK_STATE_MAX, LOCK_SOURCE_DBUS, NULL), 0);
        assert_int_equal(l->state, LOCK_STATE_LOCKED);
}

static void test_battery_door_info(void **state)
{
        struct record r = {};
        _cleanup_(lock_freep) Lock *l = new_lock(&r);
        LockBattery b = l->battery;

        b.percent = 42;
        b.critical = false;
        assert_int_equal(lock_set_battery(l, &b), 1);
        assert_int_equal(lock_set_battery(l, &b), 0);
        assert_int_equal(lock_set_door(l, LOCK_DOOR_OPEN, LOCK_SOURCE_LOCK), 1);
        assert_int_equal(lock_set_info(l, "Smart Lock 3.0", "3.2.7"), 1);
        assert_int_equal(lock_set_info(l, "Smart Lock 3.0", "3.2.7"), 0);
        assert_int_equal(lock_set_info(l, "Smart Lock 3.0", "3.3.0"), 1);
        assert_string_equal(l->firmware, "3.3.0");
        assert_non_null(strstr(r.log,
                               "battery/lock//{\"percent\":42,\"critical\":false,\"charging\":false};N:2;"));
        assert_non_null(strstr(r.log, "door/lock//{\"from\":\"unknown\",\"to\":\"open\"};N:4;"));
        assert_non_null(strstr(
                        r.log,
                        "firmware/lock//{\"model\":\"Smart Lock 3.0\",\"previous_firmware\":\"3.2.7\"}"));
        assert_int_equal(r.events, 4);
}

static void test_link_rssi_is_not_an_event(void **state)
{
        struct record r = {};
        _cleanup_(lock_freep) Lock *l = new_lock(&r);
        LockLink k = { .connected = false, .reachable = true, .rssi = -60, .last_seen_usec = 1 };

        assert_int_equal(lock_set_link(l, &k), 1); /* reachable: event */
        k.rssi = -61;
        k.last_seen_usec = 2;
        /* A small RSSI change right after: kept in the model, nobody woken. */
        assert_int_equal(lock_set_link(l, &k), 0);
        assert_int_equal(l->link.rssi, -61);
        assert_int_equal(l->link.last_seen_usec, 2);
        assert_int_equal(r.events, 1);
        assert_int_equal(r.notifies, 1);
        /* A move of LOCK_RSSI_NOTIFY_DB or more: announced, still no event. */
        k.rssi = -60 - LOCK_RSSI_NOTIFY_DB;
        assert_int_equal(lock_set_link(l, &k), 1);
        assert_int_equal(r.events, 1);
        assert_int_equal(r.notifies, 2);
        /* Connecting: an event and a notification. */
        k.connected = true;
        assert_int_equal(lock_set_link(l, &k), 1);
        assert_int_equal(r.events, 2);
        assert_int_equal(r.notifies, 3);
        /* After LOCK_LINK_NOTIFY_USEC a small change is announced again. */
        l->link_notified_usec -= LOCK_LINK_NOTIFY_USEC;
        k.rssi += 1;
        assert_int_equal(lock_set_link(l, &k), 1);
        assert_int_equal(r.notifies, 4);
}

static void test_json(void **state)
{
        struct record r = {};
        _cleanup_(lock_freep) Lock *l = new_lock(&r);
        _cleanup_free_ char *s = NULL;
        json_object *o;

        lock_set_state(l, LOCK_STATE_UNLOCKED, LOCK_SOURCE_LOCK, NULL);
        lock_set_last_action(l, LOCK_ACTION_UNLOCK, LOCK_SOURCE_MQTT, "home-assistant", 1700000000000000ULL);
        s = lock_to_json(l);
        assert_non_null(s);
        o = json_tokener_parse(s);
        assert_non_null(o);
        assert_string_equal(json_object_get_string(json_object_object_get(o, "state")), "unlocked");
        assert_string_equal(json_object_get_string(json_object_object_get(o, "address")),
                            "AA:BB:CC:DD:EE:FF");
        assert_string_equal(json_object_get_string(json_object_object_get(
                                            json_object_object_get(o, "last_action"), "source")),
                            "mqtt");
        assert_null(json_object_object_get(json_object_object_get(o, "battery"), "percent"));
        json_object_put(o);
}

static void test_removed_notification(void **state)
{
        struct record r = {};
        Lock *l = new_lock(&r);

        lock_free(l);
        assert_string_equal(r.log, "N:128;");
}

/* Attached to an event loop: the changes of one dispatch are told once, merged, after
 * their events were recorded; the changes of the next dispatch are told again; a listener
 * that changes the lock is told of that by the next dispatch; lock_free() drops what is
 * pending and tells REMOVED at once. */
static void relisten(Lock *l, unsigned changes, void *userdata)
{
        if (changes & LOCK_CHANGE_STATE)
                (void) lock_set_door(l, LOCK_DOOR_CLOSED, LOCK_SOURCE_LOCK);
}

static void test_deferred_notify(void **state)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        struct record r = {};
        LockBattery b = { .percent = 80, .keypad_critical = -1, .door_sensor_critical = -1 };
        Lock *l = new_lock(&r);

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(lock_set_event(l, e, SD_EVENT_PRIORITY_IMPORTANT + 1), 0);
        assert_int_equal(lock_set_event(l, e, SD_EVENT_PRIORITY_IMPORTANT + 1), -EBUSY);

        /* one dispatch: two changes, two events, nothing told yet */
        assert_int_equal(lock_set_state(l, LOCK_STATE_UNLOCKING, LOCK_SOURCE_MQTT, NULL), 1);
        assert_int_equal(lock_set_battery(l, &b), 1);
        assert_int_equal(r.events, 2);
        assert_int_equal(r.notifies, 0);
        assert_int_equal(sd_event_run(e, 0), 1);
        assert_int_equal(r.notifies, 1);
        assert_non_null(strstr(r.log, ";N:3;"));
        assert_int_equal(sd_event_run(e, 0), 0); /* nothing left */

        /* the next dispatch is told on its own */
        assert_int_equal(lock_set_state(l, LOCK_STATE_UNLOCKED, LOCK_SOURCE_LOCK, NULL), 1);
        assert_int_equal(sd_event_run(e, 0), 1);
        assert_int_equal(r.notifies, 2);

        /* lock_notify_flush() tells now; a no-op without pending changes */
        assert_int_equal(lock_set_door(l, LOCK_DOOR_OPEN, LOCK_SOURCE_LOCK), 1);
        lock_notify_flush(l);
        assert_int_equal(r.notifies, 3);
        lock_notify_flush(l);
        assert_int_equal(r.notifies, 3);
        assert_int_equal(sd_event_run(e, 0), 0);

        /* a listener's own change comes with the next dispatch */
        assert_int_equal(lock_add_listener(l, relisten, NULL), 0);
        assert_int_equal(lock_set_state(l, LOCK_STATE_LOCKED, LOCK_SOURCE_LOCK, NULL), 1);
        assert_int_equal(sd_event_run(e, 0), 1);
        assert_int_equal(r.notifies, 4);
        assert_int_equal(l->door, LOCK_DOOR_CLOSED);
        assert_int_equal(sd_event_run(e, 0), 1);
        assert_int_equal(r.notifies, 5);
        assert_non_null(strstr(r.log, ";N:1;door/lock//{\"from\":\"open\",\"to\":\"closed\"};N:4;"));
        lock_remove_listener(l, relisten, NULL);

        /* pending when freed: not told, REMOVED is */
        assert_int_equal(lock_set_state(l, LOCK_STATE_UNLOCKING, LOCK_SOURCE_LOCK, NULL), 1);
        r.log[0] = '\0';
        lock_free(l);
        assert_string_equal(r.log, "N:128;");
        assert_int_equal(sd_event_run(e, 0), 0);
}

/* Log entries: the sink decides (1 new, 0 stored already); only a new successful
 * action becomes the last action, announced once, with no second event row. */
static int log_sink_result;
static unsigned log_sink_calls;

static int log_sink(Lock *l, const LockLogEntry *e, void *userdata)
{
        log_sink_calls++;
        return log_sink_result;
}

static void test_import_log_entry(void **state)
{
        struct record r = {};
        Lock *l = new_lock(&r);
        LockLogEntry e = { .index = 7,
                           .kind = "keypad",
                           .source = LOCK_SOURCE_KEYPAD,
                           .actor = "Alice",
                           .auth_id = -1,
                           .is_action = true,
                           .action = LOCK_ACTION_UNLOCK };

        /* no sink: dropped */
        assert_int_equal(lock_import_log_entry(l, &e), 0);
        assert_int_equal(r.notifies, 0);

        l->log_sink = log_sink;
        log_sink_result = 1;
        assert_int_equal(lock_import_log_entry(l, &e), 1);
        assert_int_equal(log_sink_calls, 1);
        assert_int_equal(r.events, 0); /* the log row is the event */
        assert_int_equal(r.notifies, 1);
        assert_string_equal(r.log, "N:32;");
        assert_int_equal(l->last_action.action, LOCK_ACTION_UNLOCK);
        assert_int_equal(l->last_action.source, LOCK_SOURCE_KEYPAD);
        assert_string_equal(l->last_action.actor, "Alice");
        assert_true(l->last_action.time_usec > 0);

        /* already stored: nothing announced */
        log_sink_result = 0;
        e.action = LOCK_ACTION_LOCK;
        assert_int_equal(lock_import_log_entry(l, &e), 0);
        assert_int_equal(r.notifies, 1);
        assert_int_equal(l->last_action.action, LOCK_ACTION_UNLOCK);

        /* a new entry that is not a completed action: stored, not the last action */
        log_sink_result = 1;
        e.is_action = false;
        e.kind = "door";
        assert_int_equal(lock_import_log_entry(l, &e), 1);
        assert_int_equal(r.notifies, 1);

        /* the new sources have names */
        assert_string_equal(lock_source_to_string(LOCK_SOURCE_MANUAL), "manual");
        assert_string_equal(lock_source_to_string(LOCK_SOURCE_APP), "app");
        lock_remove_listener(l, listener, &r);
        lock_free(l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_enums_round_trip),
                cmocka_unit_test(test_state_event_then_notify),
                cmocka_unit_test(test_battery_door_info),
                cmocka_unit_test(test_link_rssi_is_not_an_event),
                cmocka_unit_test(test_json),
                cmocka_unit_test(test_removed_notification),
                cmocka_unit_test(test_import_log_entry),
                cmocka_unit_test(test_deferred_notify),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
