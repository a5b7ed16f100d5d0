/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Cached BlueZ objects and the parsing of their properties from a{sv} dictionaries
 * (GetManagedObjects, InterfacesAdded, PropertiesChanged). Pure: no bus I/O, so it is
 * unit-tested with hand-built messages.
 *
 * Every property is checked against the D-Bus type bluetoothd 5.66 sends; a value of
 * another type is skipped as if the property were unknown (python-dbusmock, for one,
 * sends ManufacturerData as aa{qv}). Parsing never fails on content, only on a
 * malformed message.
 */

#include <stdio.h>
#include <strings.h>

#include "bluez-internal.h"

static void strv_free(char **l)
{
        if (!l)
                return;
        for (char **i = l; *i; i++)
                free(*i);
        free(l);
}

static void mfr_clear(BluezObject *o)
{
        for (size_t i = 0; i < o->n_mfr; i++)
                free((void *) o->mfr[i].data);
        free(o->mfr);
        o->mfr = NULL;
        o->n_mfr = 0;
}

static void sd_clear(BluezObject *o)
{
        for (size_t i = 0; i < o->n_sd; i++) {
                free((void *) o->sd[i].uuid);
                free((void *) o->sd[i].data);
        }
        free(o->sd);
        o->sd = NULL;
        o->n_sd = 0;
}

BluezObject *bluez_object_new(BluezObjectKind kind, const char *path)
{
        BluezObject *o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        o->kind = kind;
        o->path = strdup(path);
        if (!o->path)
                return bluez_object_free(o);
        if (kind == BLUEZ_OBJECT_ADAPTER) {
                const char *slash = strrchr(path, '/');
                o->name = strdup(slash ? slash + 1 : path);
                if (!o->name)
                        return bluez_object_free(o);
        }
        return o;
}

BluezObject *bluez_object_free(BluezObject *o)
{
        if (!o)
                return NULL;
        mfr_clear(o);
        sd_clear(o);
        strv_free(o->uuids);
        strv_free(o->flags);
        free(o->path);
        free(o->uuid);
        free(o->parent);
        free(o->address);
        free(o->address_type);
        free(o->name);
        free(o);
        return NULL;
}

static const char *const kind_iface[_BLUEZ_OBJECT_KIND_MAX] = {
        [BLUEZ_OBJECT_ADAPTER] = BLUEZ_IFACE_ADAPTER,
        [BLUEZ_OBJECT_DEVICE] = BLUEZ_IFACE_DEVICE,
        [BLUEZ_OBJECT_SERVICE] = BLUEZ_IFACE_SERVICE,
        [BLUEZ_OBJECT_CHAR] = BLUEZ_IFACE_CHAR,
};

const char *bluez_object_kind_interface(BluezObjectKind kind)
{
        if ((unsigned) kind >= _BLUEZ_OBJECT_KIND_MAX)
                return NULL;
        return kind_iface[kind];
}

int bluez_object_kind_from_interface(const char *iface)
{
        for (int k = 0; k < _BLUEZ_OBJECT_KIND_MAX; k++)
                if (streq(kind_iface[k], iface))
                        return k;
        return -EINVAL;
}

/* Enters the variant at the current position if it holds `sig`: 1. Otherwise skips
 * it: 0. */
static int enter_variant(sd_bus_message *m, const char *sig)
{
        const char *contents = NULL;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (r == 0 || type != SD_BUS_TYPE_VARIANT)
                return -EBADMSG;
        if (!contents || !streq(contents, sig)) {
                r = sd_bus_message_skip(m, "v");
                return r < 0 ? r : 0;
        }
        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, sig);
        return r < 0 ? r : 1;
}

static int read_basic(sd_bus_message *m, char type, void *ret)
{
        const char sig[2] = { type, 0 };
        int r;

        r = enter_variant(m, sig);
        if (r <= 0)
                return r;
        r = sd_bus_message_read_basic(m, type, ret);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static int read_string(sd_bus_message *m, char type, char **field)
{
        const char *s;
        int r;

        r = read_basic(m, type, &s);
        if (r <= 0)
                return r;
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 1;
}

static int read_bool(sd_bus_message *m, bool *field)
{
        int b, r;

        r = read_basic(m, 'b', &b);
        if (r > 0)
                *field = b;
        return r;
}

static int read_strv(sd_bus_message *m, char ***field)
{
        char **l = NULL;
        int r;

        r = enter_variant(m, "as");
        if (r <= 0)
                return r;
        r = sd_bus_message_read_strv(m, &l);
        if (r < 0)
                return r;
        strv_free(*field);
        *field = l;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

/* Reads one "ay" inside a variant; *ret_data borrowed from m. 0 if of another type. */
static int read_bytes_variant(sd_bus_message *m, const void **ret_data, size_t *ret_size)
{
        int r;

        r = enter_variant(m, "ay");
        if (r <= 0)
                return r;
        r = sd_bus_message_read_array(m, 'y', ret_data, ret_size);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static int dup_bytes(const void *p, size_t n, const uint8_t **ret)
{
        /* malloc(0) may return NULL: always allocate one byte. */
        uint8_t *copy = malloc(n ? n : 1);
        if (!copy)
                return -ENOMEM;
        if (n)
                memcpy(copy, p, n);
        *ret = copy;
        return 0;
}

static int read_manufacturer_data(BluezObject *o, sd_bus_message *m)
{
        int r;

        r = enter_variant(m, "a{qv}");
        if (r <= 0)
                return r;
        mfr_clear(o);
        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{qv}");
        if (r < 0)
                return r;
        for (;;) {
                const void *p;
                size_t n;
                uint16_t company;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "qv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "q", &company);
                if (r < 0)
                        return r;
                r = read_bytes_variant(m, &p, &n);
                if (r < 0)
                        return r;
                if (r > 0) {
                        BluezManufacturerData *a = reallocarray(o->mfr, o->n_mfr + 1, sizeof(*a));
                        if (!a)
                                return -ENOMEM;
                        o->mfr = a;
                        a[o->n_mfr] = (BluezManufacturerData){ .company = company, .size = n };
                        r = dup_bytes(p, n, &a[o->n_mfr].data);
                        if (r < 0)
                                return r;
                        o->n_mfr++;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_exit_container(m); /* array */
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m); /* variant */
        return r < 0 ? r : 1;
}

static int read_service_data(BluezObject *o, sd_bus_message *m)
{
        int r;

        r = enter_variant(m, "a{sv}");
        if (r <= 0)
                return r;
        sd_clear(o);
        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const void *p;
                size_t n;
                const char *uuid;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &uuid);
                if (r < 0)
                        return r;
                r = read_bytes_variant(m, &p, &n);
                if (r < 0)
                        return r;
                if (r > 0) {
                        BluezServiceData *a = reallocarray(o->sd, o->n_sd + 1, sizeof(*a));
                        if (!a)
                                return -ENOMEM;
                        o->sd = a;
                        a[o->n_sd] = (BluezServiceData){ .size = n };
                        a[o->n_sd].uuid = strdup(uuid);
                        if (!a[o->n_sd].uuid)
                                return -ENOMEM;
                        r = dup_bytes(p, n, &a[o->n_sd].data);
                        if (r < 0) {
                                free((void *) a[o->n_sd].uuid);
                                return r;
                        }
                        o->n_sd++;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static int parse_adapter_prop(BluezObject *o, const char *name, sd_bus_message *m, unsigned *changed)
{
        int r;

        if (streq(name, "Address")) {
                r = read_string(m, 's', &o->address);
                *changed |= r > 0 ? BLUEZ_PROP_ADDRESS : 0;
        } else if (streq(name, "Powered")) {
                r = read_bool(m, &o->powered);
                *changed |= r > 0 ? BLUEZ_PROP_POWERED : 0;
        } else if (streq(name, "Discovering")) {
                r = read_bool(m, &o->discovering);
                *changed |= r > 0 ? BLUEZ_PROP_DISCOVERING : 0;
        } else
                r = sd_bus_message_skip(m, "v");
        return r;
}

static int parse_device_prop(BluezObject *o, const char *name, sd_bus_message *m, unsigned *changed)
{
        unsigned bit = 0;
        int r;

        if (streq(name, "Address")) {
                r = read_string(m, 's', &o->address);
                bit = BLUEZ_PROP_ADDRESS;
        } else if (streq(name, "AddressType")) {
                r = read_string(m, 's', &o->address_type);
                bit = BLUEZ_PROP_ADDRESS_TYPE;
        } else if (streq(name, "Name")) {
                r = read_string(m, 's', &o->name);
                bit = BLUEZ_PROP_NAME;
        } else if (streq(name, "Adapter")) {
                r = read_string(m, 'o', &o->parent);
                bit = BLUEZ_PROP_ADAPTER;
        } else if (streq(name, "RSSI")) {
                r = read_basic(m, 'n', &o->rssi);
                if (r > 0)
                        o->has_rssi = true;
                bit = BLUEZ_PROP_RSSI;
        } else if (streq(name, "TxPower")) {
                r = read_basic(m, 'n', &o->tx_power);
                if (r > 0)
                        o->has_tx_power = true;
                bit = BLUEZ_PROP_TX_POWER;
        } else if (streq(name, "Connected")) {
                r = read_bool(m, &o->connected);
                bit = BLUEZ_PROP_CONNECTED;
        } else if (streq(name, "ServicesResolved")) {
                r = read_bool(m, &o->services_resolved);
                bit = BLUEZ_PROP_SERVICES_RESOLVED;
        } else if (streq(name, "Paired")) {
                r = read_bool(m, &o->paired);
                bit = BLUEZ_PROP_PAIRED;
        } else if (streq(name, "UUIDs")) {
                r = read_strv(m, &o->uuids);
                bit = BLUEZ_PROP_UUIDS;
        } else if (streq(name, "ManufacturerData")) {
                r = read_manufacturer_data(o, m);
                bit = BLUEZ_PROP_MANUFACTURER_DATA;
        } else if (streq(name, "ServiceData")) {
                r = read_service_data(o, m);
                bit = BLUEZ_PROP_SERVICE_DATA;
        } else
                r = sd_bus_message_skip(m, "v");
        if (r > 0)
                *changed |= bit;
        return r;
}

static int parse_service_prop(BluezObject *o, const char *name, sd_bus_message *m, unsigned *changed)
{
        int r;

        if (streq(name, "UUID")) {
                r = read_string(m, 's', &o->uuid);
                *changed |= r > 0 ? BLUEZ_PROP_UUID : 0;
        } else if (streq(name, "Device")) {
                r = read_string(m, 'o', &o->parent);
                *changed |= r > 0 ? BLUEZ_PROP_PARENT : 0;
        } else
                r = sd_bus_message_skip(m, "v");
        return r;
}

static int parse_char_prop(BluezObject *o, const char *name, sd_bus_message *m, unsigned *changed,
                           BluezValue *value)
{
        unsigned bit = 0;
        int r;

        if (streq(name, "UUID")) {
                r = read_string(m, 's', &o->uuid);
                bit = BLUEZ_PROP_UUID;
        } else if (streq(name, "Service")) {
                r = read_string(m, 'o', &o->parent);
                bit = BLUEZ_PROP_PARENT;
        } else if (streq(name, "Flags")) {
                r = read_strv(m, &o->flags);
                bit = BLUEZ_PROP_FLAGS;
        } else if (streq(name, "Notifying")) {
                r = read_bool(m, &o->notifying);
                bit = BLUEZ_PROP_NOTIFYING;
        } else if (streq(name, "MTU")) {
                r = read_basic(m, 'q', &o->mtu);
                if (r > 0)
                        o->has_mtu = true;
                bit = BLUEZ_PROP_MTU;
        } else if (streq(name, "Value")) {
                const void *p;
                size_t n;

                r = read_bytes_variant(m, &p, &n);
                if (r > 0 && value)
                        *value = (BluezValue){ .present = true, .data = p, .size = n };
                bit = BLUEZ_PROP_VALUE;
        } else
                r = sd_bus_message_skip(m, "v");
        if (r > 0)
                *changed |= bit;
        return r;
}

int bluez_object_parse_props(BluezObject *o, sd_bus_message *m, unsigned *changed, BluezValue *value)
{
        unsigned dummy = 0;
        int r;

        if (!changed)
                changed = &dummy;
        if (value)
                *value = (BluezValue){};

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        for (;;) {
                const char *name;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                switch (o->kind) {
                case BLUEZ_OBJECT_ADAPTER:
                        r = parse_adapter_prop(o, name, m, changed);
                        break;
                case BLUEZ_OBJECT_DEVICE:
                        r = parse_device_prop(o, name, m, changed);
                        break;
                case BLUEZ_OBJECT_SERVICE:
                        r = parse_service_prop(o, name, m, changed);
                        break;
                case BLUEZ_OBJECT_CHAR:
                        r = parse_char_prop(o, name, m, changed, value);
                        break;
                case _BLUEZ_OBJECT_KIND_MAX:
                        r = -EINVAL;
                        break;
                }
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_exit_container(m);
}

void bluez_object_invalidate(BluezObject *o, char *const *names, unsigned *changed)
{
        unsigned dummy = 0;

        if (!changed)
                changed = &dummy;
        for (char *const *i = names; i && *i; i++) {
                const char *n = *i;

                if (streq(n, "RSSI")) {
                        o->has_rssi = false;
                        *changed |= BLUEZ_PROP_RSSI;
                } else if (streq(n, "TxPower")) {
                        o->has_tx_power = false;
                        *changed |= BLUEZ_PROP_TX_POWER;
                } else if (streq(n, "ManufacturerData")) {
                        mfr_clear(o);
                        *changed |= BLUEZ_PROP_MANUFACTURER_DATA;
                } else if (streq(n, "ServiceData")) {
                        sd_clear(o);
                        *changed |= BLUEZ_PROP_SERVICE_DATA;
                } else if (streq(n, "Name") && o->kind == BLUEZ_OBJECT_DEVICE) {
                        free(o->name);
                        o->name = NULL;
                        *changed |= BLUEZ_PROP_NAME;
                } else if (streq(n, "UUIDs")) {
                        strv_free(o->uuids);
                        o->uuids = NULL;
                        *changed |= BLUEZ_PROP_UUIDS;
                } else if (streq(n, "MTU")) {
                        o->has_mtu = false;
                        *changed |= BLUEZ_PROP_MTU;
                } else if (streq(n, "Notifying")) {
                        o->notifying = false;
                        *changed |= BLUEZ_PROP_NOTIFYING;
                }
        }
}

unsigned bluez_device_advert_fixup(BluezObject *o, unsigned changed)
{
        unsigned cleared = 0;

        if (o->kind != BLUEZ_OBJECT_DEVICE || !(changed & BLUEZ_PROP_RSSI))
                return 0;
        if (!(changed & BLUEZ_PROP_MANUFACTURER_DATA) && o->n_mfr > 0) {
                mfr_clear(o);
                cleared |= BLUEZ_PROP_MANUFACTURER_DATA;
        }
        if (!(changed & BLUEZ_PROP_SERVICE_DATA) && o->n_sd > 0) {
                sd_clear(o);
                cleared |= BLUEZ_PROP_SERVICE_DATA;
        }
        return cleared;
}

bool bluez_uuid_equal(const char *a, const char *b)
{
        return a && b && strcasecmp(a, b) == 0;
}

bool bluez_path_is_below(const char *path, const char *parent)
{
        size_t n;

        if (!path || !parent)
                return false;
        n = strlen(parent);
        return strncmp(path, parent, n) == 0 && path[n] == '/' && path[n + 1] != 0;
}

bool bluez_adapter_is_selected(const char *const *config_adapters, const char *name, const char *address)
{
        if (!config_adapters || !config_adapters[0])
                return true;
        for (const char *const *i = config_adapters; *i; i++) {
                if (streq(*i, "auto"))
                        return true;
                if (name && streq(*i, name))
                        return true;
                if (address && strcasecmp(*i, address) == 0)
                        return true;
        }
        return false;
}

int bluez_link_queue_compare(BluezPriority pa, uint64_t seqa, BluezPriority pb, uint64_t seqb)
{
        if (pa != pb)
                return pa < pb ? -1 : 1;
        if (seqa != seqb)
                return seqa < seqb ? -1 : 1;
        return 0;
}

static const char *const link_state_names[_BLUEZ_LINK_STATE_MAX] = {
        [BLUEZ_LINK_IDLE] = "idle",
        [BLUEZ_LINK_QUEUED] = "queued",
        [BLUEZ_LINK_CONNECTING] = "connecting",
        [BLUEZ_LINK_WAIT_DOWN] = "wait-down",
        [BLUEZ_LINK_RESOLVING] = "resolving",
        [BLUEZ_LINK_SETUP] = "setup",
        [BLUEZ_LINK_CONNECTED] = "connected",
        [BLUEZ_LINK_DISCONNECTING] = "disconnecting",
};

const char *bluez_link_state_to_string(BluezLinkState s)
{
        return (unsigned) s < _BLUEZ_LINK_STATE_MAX ? link_state_names[s] : NULL;
}

static const char *const priority_names[_BLUEZ_PRIORITY_MAX] = {
        [BLUEZ_PRIORITY_USER] = "user",
        [BLUEZ_PRIORITY_REFRESH] = "refresh",
        [BLUEZ_PRIORITY_MAINTENANCE] = "maintenance",
};

const char *bluez_priority_to_string(BluezPriority p)
{
        return (unsigned) p < _BLUEZ_PRIORITY_MAX ? priority_names[p] : NULL;
}

static const char *const adapter_event_names[_BLUEZ_ADAPTER_EVENT_MAX] = {
        [BLUEZ_ADAPTER_ADDED] = "added",
        [BLUEZ_ADAPTER_REMOVED] = "removed",
        [BLUEZ_ADAPTER_POWERED_ON] = "powered-on",
        [BLUEZ_ADAPTER_POWERED_OFF] = "powered-off",
        [BLUEZ_ADAPTER_DISCOVERY_ON] = "discovery-on",
        [BLUEZ_ADAPTER_DISCOVERY_OFF] = "discovery-off",
};

const char *bluez_adapter_event_to_string(BluezAdapterEvent e)
{
        return (unsigned) e < _BLUEZ_ADAPTER_EVENT_MAX ? adapter_event_names[e] : NULL;
}
