/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The pure parts of the BlueZ client: error-name translation, property parsing from
 * real sd-bus messages (built on an unconnected bus, no daemon), invalidation, adapter
 * selection and the connection queue order.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "../../src/bluez/bluez-internal.h"

/* sd_bus_message_new needs a bus that is past BUS_UNSET; one end of a socketpair does. */
static sd_bus *test_bus(void)
{
        static sd_bus *bus;
        int fds[2];

        if (bus)
                return bus;
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        assert_int_equal(sd_bus_new(&bus), 0);
        assert_int_equal(sd_bus_set_fd(bus, fds[0], fds[0]), 0);
        assert_int_equal(sd_bus_start(bus), 0);
        return bus;
}

static sd_bus_message *new_msg(void)
{
        sd_bus_message *m = NULL;

        assert_int_equal(sd_bus_message_new_signal(test_bus(), &m, "/org/bluez/hci0", "x.y", "Z"), 0);
        return m;
}

static void seal(sd_bus_message *m)
{
        assert_int_equal(sd_bus_message_seal(m, 1, 0), 0);
        assert_true(sd_bus_message_rewind(m, true) >= 0);
}

static void test_error_translate(void **state)
{
        static const struct {
                const char *name, *message;
                int error;
                bool retryable;
        } cases[] = {
                { "org.bluez.Error.Failed", "le-connection-abort-by-local", -ECONNABORTED, true },
                { "org.bluez.Error.Failed", "br-connection-canceled", -ECANCELED, true },
                { "org.bluez.Error.Failed", "Operation already in progress", -EALREADY, true },
                { "org.bluez.Error.Failed", "Not connected", -ENOTCONN, false },
                { "org.bluez.Error.Failed", "No discovery started", -ESRCH, false },
                { "org.bluez.Error.Failed", "Operation failed with ATT error: 0x0e", -ECONNRESET, true },
                { "org.bluez.Error.Failed", "Operation failed with ATT error: 0x01", -EPROTO, false },
                { "org.bluez.Error.Failed", "Input/output error", -EIO, false },
                { "org.bluez.Error.Failed", NULL, -EIO, false },
                { "org.bluez.Failed", "le-connection-abort-by-local", -ECONNABORTED, true },
                { "org.bluez.Error.InProgress", "In Progress", -EINPROGRESS, true },
                { "org.bluez.Error.NotReady", "Resource Not Ready", -ENETDOWN, false },
                { "org.bluez.Error.NotPermitted", "Not paired", -EPERM, false },
                { "org.bluez.Error.NotAuthorized", NULL, -EACCES, false },
                { "org.bluez.Error.InvalidArguments", "Invalid offset", -EINVAL, false },
                { "org.bluez.Error.NotSupported", NULL, -EOPNOTSUPP, false },
                { "org.bluez.Error.DoesNotExist", "Does Not Exist", -ENOENT, false },
                { "org.bluez.Error.Blocked", NULL, -ERFKILL, false },
                { "org.freedesktop.DBus.Error.UnknownObject", "Method ...", -ENODEV, false },
                { "org.freedesktop.DBus.Error.UnknownMethod", "Method ...", -EOPNOTSUPP, false },
                { "org.freedesktop.DBus.Error.NoReply", "Method call timed out", -ETIMEDOUT, true },
                { "org.freedesktop.DBus.Error.ServiceUnknown", NULL, -EHOSTDOWN, false },
                { "org.example.Whatever", "x", -EIO, false },
                { NULL, NULL, -EIO, false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                bool retryable = !cases[i].retryable;
                int r = bluez_error_translate(cases[i].name, cases[i].message, &retryable);
                print_message("  %s %s\n", strna(cases[i].name), strna(cases[i].message));
                assert_int_equal(r, cases[i].error);
                assert_int_equal(retryable, cases[i].retryable);
        }

        sd_bus_error e = SD_BUS_ERROR_MAKE_CONST("org.bluez.Error.Failed", "le-connection-abort-by-local");
        BluezError be;
        bluez_error_from_bus(&e, &be);
        assert_int_equal(be.error, -ECONNABORTED);
        assert_true(be.retryable);
        assert_string_equal(be.name, "org.bluez.Error.Failed");
        assert_string_equal(be.message, "le-connection-abort-by-local");
}

static void append_mfr(sd_bus_message *m, uint16_t company, const uint8_t *d, size_t n)
{
        assert_true(sd_bus_message_open_container(m, 'e', "qv") >= 0);
        assert_true(sd_bus_message_append(m, "q", company) >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "ay") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', d, n) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
}

/* The iBeacon frame of a Nuki lock (reference/nuki-ble.md section 6), minus the
 * company id that BlueZ puts in the key. */
static const uint8_t beacon[] = { 0x02, 0x15, 0xa9, 0x2e, 0xe2, 0x00, 0x55, 0x01, 0x11, 0xe4, 0x91, 0x6c,
                                  0x08, 0x00, 0x20, 0x0c, 0x9a, 0x66, 0x33, 0xc3, 0x35, 0xc5, 0xc9 };

static void test_device_props(void **state)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_msg();
        _cleanup_(bluez_object_freep) BluezObject *d =
                        bluez_object_new(BLUEZ_OBJECT_DEVICE, "/org/bluez/hci0/dev_C0_FF_EE_00_00_01");
        const uint8_t pairing[] = { 0x33, 0xc3, 0x35, 0xc5 };
        unsigned changed = 0;

        assert_non_null(d);
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "Address", "s", "C0:FF:EE:00:00:01") >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "AddressType", "s", "random") >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "Name", "s", "Nuki_33C335C5") >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "Adapter", "o", "/org/bluez/hci0") >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "RSSI", "n", (int16_t) -67) >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "Connected", "b", 0) >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "ServicesResolved", "b", 0) >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "Icon", "s", "unknown-property") >= 0);
        /* An unexpected type (what dbusmock sends for TxPower here) is skipped. */
        assert_true(sd_bus_message_append(m, "{sv}", "TxPower", "s", "not-a-number") >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "UUIDs", "as", 1,
                                          "a92ee200-5501-11e4-916c-0800200c9a66") >= 0);
        /* ManufacturerData a{qv} with ay values */
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "ManufacturerData") >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "a{qv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{qv}") >= 0);
        append_mfr(m, 0x004c, beacon, sizeof(beacon));
        append_mfr(m, 0x0001, (const uint8_t *) "", 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        /* ServiceData a{sv}, pairing mode */
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "ServiceData") >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "a{sv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "a92ee100-5501-11e4-916c-0800200c9a66") >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "ay") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', pairing, sizeof(pairing)) >= 0);
        for (int i = 0; i < 5; i++)
                assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "Paired", "b", 1) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_append(m, "s", "after") >= 0);
        seal(m);

        assert_int_equal(bluez_object_parse_props(d, m, &changed, NULL), 1);
        const char *after;
        assert_int_equal(sd_bus_message_read(m, "s", &after), 1);
        assert_string_equal(after, "after");

        assert_string_equal(d->address, "C0:FF:EE:00:00:01");
        assert_string_equal(d->address_type, "random");
        assert_string_equal(d->name, "Nuki_33C335C5");
        assert_string_equal(d->parent, "/org/bluez/hci0");
        assert_true(d->has_rssi);
        assert_int_equal(d->rssi, -67);
        assert_false(d->has_tx_power);
        assert_false(d->connected);
        assert_true(d->paired);
        assert_non_null(d->uuids);
        assert_string_equal(d->uuids[0], "a92ee200-5501-11e4-916c-0800200c9a66");
        assert_null(d->uuids[1]);
        assert_int_equal(d->n_mfr, 2);
        assert_int_equal(d->mfr[0].company, 0x004c);
        assert_int_equal(d->mfr[0].size, sizeof(beacon));
        assert_memory_equal(d->mfr[0].data, beacon, sizeof(beacon));
        assert_int_equal(d->mfr[1].size, 0);
        assert_int_equal(d->n_sd, 1);
        assert_string_equal(d->sd[0].uuid, "a92ee100-5501-11e4-916c-0800200c9a66");
        assert_memory_equal(d->sd[0].data, pairing, sizeof(pairing));
        assert_true(changed & BLUEZ_PROP_RSSI);
        assert_true(changed & BLUEZ_PROP_MANUFACTURER_DATA);
        assert_true(changed & BLUEZ_PROP_SERVICE_DATA);
        assert_false(changed & BLUEZ_PROP_TX_POWER);
        assert_true(changed & BLUEZ_PROPS_ADVERT);

        /* Discovery ended: RSSI invalidated; ManufacturerData replaced by a new advert. */
        changed = 0;
        char *inv[] = { (char *) "RSSI", (char *) "ServiceData", (char *) "Unknown", NULL };
        bluez_object_invalidate(d, inv, &changed);
        assert_false(d->has_rssi);
        assert_int_equal(d->n_sd, 0);
        assert_int_equal(d->n_mfr, 2);
        assert_int_equal(changed, BLUEZ_PROP_RSSI | BLUEZ_PROP_SERVICE_DATA);
}

/* Under DuplicateData an advert without service data leaves no signal: a batch with
 * RSSI but without ServiceData means the advert had none. */
static void test_advert_fixup(void **state)
{
        _cleanup_(bluez_object_freep) BluezObject *d = bluez_object_new(BLUEZ_OBJECT_DEVICE, "/d");
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_msg();
        const uint8_t id[] = { 0x2a, 0, 0, 1 };

        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "ManufacturerData") >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "a{qv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{qv}") >= 0);
        append_mfr(m, 0x004c, beacon, sizeof(beacon));
        for (int i = 0; i < 3; i++)
                assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "ServiceData") >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "a{sv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "a92ee100-5501-11e4-916c-0800200c9a66") >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "ay") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', id, sizeof(id)) >= 0);
        for (int i = 0; i < 5; i++)
                assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        seal(m);
        assert_int_equal(bluez_object_parse_props(d, m, NULL, NULL), 1);
        assert_int_equal(d->n_mfr, 1);
        assert_int_equal(d->n_sd, 1);

        /* a batch without RSSI is no advert: nothing inferred */
        assert_int_equal(bluez_device_advert_fixup(d, BLUEZ_PROP_CONNECTED), 0);
        /* an advert that carried both */
        assert_int_equal(bluez_device_advert_fixup(d, BLUEZ_PROP_RSSI | BLUEZ_PROP_MANUFACTURER_DATA |
                                                                      BLUEZ_PROP_SERVICE_DATA),
                         0);
        assert_int_equal(d->n_sd, 1);
        /* the lock left pairing mode: RSSI and the beacon, no service data */
        assert_int_equal(bluez_device_advert_fixup(d, BLUEZ_PROP_RSSI | BLUEZ_PROP_MANUFACTURER_DATA),
                         BLUEZ_PROP_SERVICE_DATA);
        assert_int_equal(d->n_sd, 0);
        assert_int_equal(d->n_mfr, 1);
        /* only RSSI: the advert had no manufacturer data either */
        assert_int_equal(bluez_device_advert_fixup(d, BLUEZ_PROP_RSSI), BLUEZ_PROP_MANUFACTURER_DATA);
        assert_int_equal(d->n_mfr, 0);
        assert_int_equal(bluez_device_advert_fixup(d, BLUEZ_PROP_RSSI), 0);
}

static void test_wrong_type_mfr(void **state)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_msg();
        _cleanup_(bluez_object_freep) BluezObject *d = bluez_object_new(BLUEZ_OBJECT_DEVICE, "/d");
        unsigned changed = 0;

        /* python-dbusmock's AddDevice: ManufacturerData as aa{qv} */
        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "ManufacturerData") >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "aa{qv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "a{qv}") >= 0);
        assert_true(sd_bus_message_open_container(m, 'a', "{qv}") >= 0);
        append_mfr(m, 0x004c, beacon, sizeof(beacon));
        for (int i = 0; i < 4; i++)
                assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "Connected", "b", 1) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        seal(m);

        assert_int_equal(bluez_object_parse_props(d, m, &changed, NULL), 1);
        assert_int_equal(d->n_mfr, 0);
        assert_true(d->connected);
        assert_int_equal(changed, BLUEZ_PROP_CONNECTED);
}

static void test_char_value(void **state)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_msg();
        _cleanup_(bluez_object_freep) BluezObject *ch = bluez_object_new(
                        BLUEZ_OBJECT_CHAR, "/org/bluez/hci0/dev_C0_FF_EE_00_00_01/service000a/char000b");
        const uint8_t frame[] = { 0x0e, 0x00, 0xf1, 0xa3, 0x28 };
        unsigned changed = 0;
        BluezValue v;

        assert_true(sd_bus_message_open_container(m, 'a', "{sv}") >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "UUID", "s", "a92ee202-5501-11e4-916c-0800200c9a66") >=
                    0);
        assert_true(sd_bus_message_append(m, "{sv}", "Flags", "as", 2, "write", "indicate") >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "Notifying", "b", 1) >= 0);
        assert_true(sd_bus_message_append(m, "{sv}", "MTU", "q", (uint16_t) 247) >= 0);
        assert_true(sd_bus_message_open_container(m, 'e', "sv") >= 0);
        assert_true(sd_bus_message_append(m, "s", "Value") >= 0);
        assert_true(sd_bus_message_open_container(m, 'v', "ay") >= 0);
        assert_true(sd_bus_message_append_array(m, 'y', frame, sizeof(frame)) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        assert_true(sd_bus_message_close_container(m) >= 0);
        seal(m);

        assert_int_equal(bluez_object_parse_props(ch, m, &changed, &v), 1);
        assert_true(v.present);
        assert_int_equal(v.size, sizeof(frame));
        assert_memory_equal(v.data, frame, sizeof(frame));
        assert_true(bluez_uuid_equal(ch->uuid, "A92EE202-5501-11E4-916C-0800200C9A66"));
        assert_string_equal(ch->flags[1], "indicate");
        assert_true(ch->notifying);
        assert_true(ch->has_mtu);
        assert_int_equal(ch->mtu, 247);
        assert_true(changed & BLUEZ_PROP_VALUE);
}

static void test_adapter_props(void **state)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = new_msg();
        _cleanup_(bluez_object_freep) BluezObject *a =
                        bluez_object_new(BLUEZ_OBJECT_ADAPTER, "/org/bluez/hci1");
        unsigned changed = 0;

        assert_string_equal(a->name, "hci1");
        assert_true(sd_bus_message_append(m, "a{sv}", 4, "Address", "s", "00:1A:7D:DA:71:13", "Powered", "b",
                                          1, "Discovering", "b", 0, "Roles", "as", 1, "central") >= 0);
        seal(m);
        assert_int_equal(bluez_object_parse_props(a, m, &changed, NULL), 1);
        assert_string_equal(a->address, "00:1A:7D:DA:71:13");
        assert_true(a->powered);
        assert_false(a->discovering);
        assert_int_equal(changed, BLUEZ_PROP_ADDRESS | BLUEZ_PROP_POWERED | BLUEZ_PROP_DISCOVERING);
        assert_int_equal(bluez_object_kind_from_interface("org.bluez.Adapter1"), BLUEZ_OBJECT_ADAPTER);
        assert_int_equal(bluez_object_kind_from_interface("org.bluez.GattDescriptor1"), -EINVAL);
}

static void test_selection(void **state)
{
        const char *const auto_[] = { "auto", NULL };
        const char *const some[] = { "hci1", "00:1a:7d:da:71:13", NULL };
        const char *const none[] = { NULL };

        assert_true(bluez_adapter_is_selected(NULL, "hci0", NULL));
        assert_true(bluez_adapter_is_selected(none, "hci0", NULL));
        assert_true(bluez_adapter_is_selected(auto_, "hci3", "11:22:33:44:55:66"));
        assert_true(bluez_adapter_is_selected(some, "hci1", NULL));
        assert_true(bluez_adapter_is_selected(some, "hci0", "00:1A:7D:DA:71:13"));
        assert_false(bluez_adapter_is_selected(some, "hci0", "00:1A:7D:DA:71:14"));
        assert_false(bluez_adapter_is_selected(some, "hci0", NULL));
}

typedef struct Req {
        BluezPriority prio;
        uint64_t seq;
        const char *name;
} Req;

static int req_cmp(const void *a, const void *b)
{
        const Req *x = a, *y = b;
        return bluez_link_queue_compare(x->prio, x->seq, y->prio, y->seq);
}

static void test_queue_order(void **state)
{
        Req q[] = {
                { BLUEZ_PRIORITY_MAINTENANCE, 1, "logsync" }, { BLUEZ_PRIORITY_REFRESH, 2, "refresh-a" },
                { BLUEZ_PRIORITY_USER, 5, "unlock-b" },       { BLUEZ_PRIORITY_REFRESH, 3, "refresh-b" },
                { BLUEZ_PRIORITY_USER, 4, "lock-a" },         { BLUEZ_PRIORITY_MAINTENANCE, 0, "timesync" },
        };
        const char *expected[] = { "lock-a", "unlock-b", "refresh-a", "refresh-b", "timesync", "logsync" };

        qsort(q, ELEMENTSOF(q), sizeof(q[0]), req_cmp);
        for (size_t i = 0; i < ELEMENTSOF(q); i++)
                assert_string_equal(q[i].name, expected[i]);
        assert_string_equal(bluez_priority_to_string(BLUEZ_PRIORITY_USER), "user");
        assert_string_equal(bluez_link_state_to_string(BLUEZ_LINK_WAIT_DOWN), "wait-down");
}

static void test_paths(void **state)
{
        assert_true(bluez_path_is_below("/org/bluez/hci0/dev_AA/service0010", "/org/bluez/hci0/dev_AA"));
        assert_false(bluez_path_is_below("/org/bluez/hci0/dev_AAB/service0010", "/org/bluez/hci0/dev_AA"));
        assert_false(bluez_path_is_below("/org/bluez/hci0/dev_AA", "/org/bluez/hci0/dev_AA"));
        assert_false(bluez_path_is_below("/org/bluez/hci0/dev_AA/", "/org/bluez/hci0/dev_AA"));
        assert_true(bluez_uuid_equal("a92ee202-5501-11e4-916c-0800200c9a66",
                                     "A92EE202-5501-11e4-916c-0800200c9a66"));
        assert_false(bluez_uuid_equal("a92ee202", NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_translate), cmocka_unit_test(test_device_props),
                cmocka_unit_test(test_advert_fixup),    cmocka_unit_test(test_wrong_type_mfr),
                cmocka_unit_test(test_char_value),      cmocka_unit_test(test_adapter_props),
                cmocka_unit_test(test_selection),       cmocka_unit_test(test_queue_order),
                cmocka_unit_test(test_paths),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
