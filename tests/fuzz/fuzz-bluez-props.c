/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The BlueZ client's property parser (src/bluez/bluez-object.c) and error
 * translation. sd-bus has no public way to turn raw bytes into a message, and it
 * rejects malformed wire data itself, so the input is read as a small program that
 * builds a well-formed a{sv} with arbitrary names, variant types and contents: what a
 * non-conforming or newer bluetoothd (or python-dbusmock) could send. Each message is
 * parsed as all four object kinds, then the property names are invalidated.
 *
 * Program: repeated [name byte][type byte][payload...]; payload lengths come from
 * the input and are cut at its end.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "../../src/bluez/bluez-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[] = {
        "Address",     "AddressType",      "Name",   "Alias", "Adapter", "RSSI",        "TxPower",
        "Connected",   "ServicesResolved", "Paired", "UUIDs", "UUID",    "Device",      "Service",
        "Flags",       "Notifying",        "MTU",    "Value", "Powered", "Discovering", "ManufacturerData",
        "ServiceData", "Unknown",
};

typedef struct Input {
        const uint8_t *p;
        size_t n;
} Input;

static uint8_t take(Input *in)
{
        if (in->n == 0)
                return 0;
        in->n--;
        return *in->p++;
}

static size_t take_bytes(Input *in, const uint8_t **ret, size_t max)
{
        size_t want = take(in); /* not inside MIN(): it evaluates twice */
        size_t n = MIN(want, MIN(max, in->n));
        *ret = in->p;
        in->p += n;
        in->n -= n;
        return n;
}

static sd_bus *fuzz_bus(void)
{
        static sd_bus *bus;
        int fds[2];

        if (bus)
                return bus;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 || sd_bus_new(&bus) < 0 ||
            sd_bus_set_fd(bus, fds[0], fds[0]) < 0 || sd_bus_start(bus) < 0)
                abort();
        return bus;
}

/* Appends one variant of a type chosen by the input. */
static int append_value(sd_bus_message *m, Input *in)
{
        const uint8_t *b;
        size_t n;
        char s[64];
        unsigned t = take(in) % 12;
        uint16_t w;
        int r;

        switch (t) {
        case 0:
                n = take_bytes(in, &b, sizeof(s) - 1);
                memcpy(s, b, n);
                s[n] = 0;
                /* sd-bus refuses invalid UTF-8 and embedded NULs itself */
                r = sd_bus_message_append(m, "v", "s", s);
                return r < 0 ? sd_bus_message_append(m, "v", "s", "x") : r;
        case 1:
                return sd_bus_message_append(m, "v", "o", (take(in) & 1) ? "/org/bluez/hci0" : "/");
        case 2:
                return sd_bus_message_append(m, "v", "b", (int) (take(in) & 1));
        case 3:
                w = (uint16_t) (take(in) << 8);
                w |= take(in);
                return sd_bus_message_append(m, "v", "n", (int16_t) w);
        case 4:
                w = (uint16_t) (take(in) << 8);
                w |= take(in);
                return sd_bus_message_append(m, "v", "q", w);
        case 5:
                return sd_bus_message_append(m, "v", "u", (uint32_t) take(in));
        case 6:
                return sd_bus_message_append(m, "v", "as", 2, "a92ee202-5501-11e4-916c-0800200c9a66",
                                             (take(in) & 1) ? "notify" : "write");
        case 7:
                n = take_bytes(in, &b, 600);
                r = sd_bus_message_open_container(m, 'v', "ay");
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', b, n);
                return r < 0 ? r : sd_bus_message_close_container(m);
        case 8:   /* a{qv}, values ay or (wrongly) something else */
        case 9: { /* a{sv} */
                bool q = t == 8;
                unsigned k = take(in) % 4;

                r = sd_bus_message_open_container(m, 'v', q ? "a{qv}" : "a{sv}");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', q ? "{qv}" : "{sv}");
                for (unsigned i = 0; r >= 0 && i < k; i++) {
                        r = sd_bus_message_open_container(m, 'e', q ? "qv" : "sv");
                        if (r >= 0)
                                r = q ? sd_bus_message_append(m, "q", (uint16_t) take(in))
                                      : sd_bus_message_append(m, "s",
                                                              "a92ee100-5501-11e4-916c-0800200c9a66");
                        if (r >= 0 && (take(in) & 1)) {
                                n = take_bytes(in, &b, 64);
                                r = sd_bus_message_open_container(m, 'v', "ay");
                                if (r >= 0)
                                        r = sd_bus_message_append_array(m, 'y', b, n);
                                if (r >= 0)
                                        r = sd_bus_message_close_container(m);
                        } else if (r >= 0)
                                r = sd_bus_message_append(m, "v", "u", 7U);
                        if (r >= 0)
                                r = sd_bus_message_close_container(m);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r < 0 ? r : sd_bus_message_close_container(m);
        }
        case 10: /* python-dbusmock's aa{qv} */
                return sd_bus_message_append(m, "v", "aa{qv}", 1, 1, (uint16_t) 0x4c, "ay", 1, (uint8_t) 2);
        default:
                return sd_bus_message_append(m, "v", "(ii)", 1, 2);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        char *invalidate[ELEMENTSOF(names) + 1] = {};
        size_t n_inv = 0;
        Input in = { data, size };
        char name[64], message[64];
        int r;

        /* error translation: first bytes as a name and a message */
        snprintf(name, sizeof(name), "org.bluez.Error.%.*s", (int) MIN(size, (size_t) 20),
                 (const char *) data);
        snprintf(message, sizeof(message), "%.*s", (int) MIN(size, (size_t) 40), (const char *) data);
        (void) bluez_error_translate(name, message, NULL);
        (void) bluez_error_translate("org.bluez.Error.Failed", message, NULL);

        if (sd_bus_message_new_signal(fuzz_bus(), &m, "/org/bluez/hci0", "x.y", "Z") < 0)
                return 0;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (unsigned i = 0; r >= 0 && in.n > 0 && i < 64; i++) {
                const char *key = names[take(&in) % ELEMENTSOF(names)];

                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", key);
                if (r >= 0)
                        r = append_value(m, &in);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0 && n_inv < ELEMENTSOF(names) && (i & 1))
                        invalidate[n_inv++] = (char *) key;
        }
        if (r < 0 || sd_bus_message_close_container(m) < 0 || sd_bus_message_seal(m, 1, 0) < 0)
                return 0;

        for (int k = 0; k < _BLUEZ_OBJECT_KIND_MAX; k++) {
                _cleanup_(bluez_object_freep) BluezObject *o = bluez_object_new(k, "/org/bluez/hci0/dev_X");
                unsigned changed = 0;
                BluezValue v;

                if (!o || sd_bus_message_rewind(m, true) < 0)
                        abort();
                if (bluez_object_parse_props(o, m, &changed, &v) < 0)
                        continue;
                if (v.present && v.size > 0)
                        (void) ((volatile const uint8_t *) v.data)[v.size - 1];
                for (size_t i = 0; i < o->n_mfr; i++)
                        if (o->mfr[i].size > 0)
                                (void) ((volatile const uint8_t *) o->mfr[i].data)[o->mfr[i].size - 1];
                bluez_object_invalidate(o, invalidate, &changed);
        }
        return 0;
}
