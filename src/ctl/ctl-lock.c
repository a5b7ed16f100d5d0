/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhubctl verbs that talk to lockhubd over D-Bus: list, status, lock, unlock, open.
 * Exit status as in ctl.h: 3 when the daemon or the lock cannot be reached, 4 when
 * the lock reported a failure (jammed…), 2 for bad arguments.
 */

#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <systemd/sd-bus.h>
#include <time.h>

#include "ctl.h"
#include "lockhub/api.h"
#include "lockhub/macro.h"

static bool arg_json;

static int parse_common(int argc, char *argv[], int min_args, int max_args, const char *usage)
{
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+jh", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        arg_json = true;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n", usage);
                        return 0;
                default:
                        fprintf(stderr, "lockhubctl %s: unknown option '%s'.\nUsage: lockhubctl %s\n",
                                argv[0], argv[optind - 1], usage);
                        return -EINVAL;
                }
        if (argc - optind < min_args || argc - optind > max_args) {
                fprintf(stderr, "Usage: lockhubctl %s\n", usage);
                return -EINVAL;
        }
        return 1;
}

/* Connects to the system bus (or $DBUS_SYSTEM_BUS_ADDRESS) and checks lockhubd is there. */
int ctl_bus_connect(sd_bus **ret)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "lockhubctl: cannot connect to the system bus: %s\n", strerror(-r));
                return -EHOSTUNREACH;
        }
        r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetNameOwner", NULL, NULL, "s", API_BUS_NAME);
        if (r < 0) {
                fprintf(stderr,
                        "lockhubctl: lockhubd is not running (no %s on the system bus).\n"
                        "Start it with: systemctl start lockhubd\n",
                        API_BUS_NAME);
                return -EHOSTUNREACH;
        }
        *ret = TAKE_PTR(bus);
        return 0;
}

int ctl_exit_from_bus_error(const sd_bus_error *e, int r)
{
        if (sd_bus_error_has_names(e, "org.lockhub.Error.Unreachable", "org.lockhub.Error.Timeout",
                                   SD_BUS_ERROR_NO_REPLY, SD_BUS_ERROR_SERVICE_UNKNOWN,
                                   SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return CTL_EXIT_UNREACHABLE;
        if (sd_bus_error_has_names(e, "org.lockhub.Error.Jammed", "org.lockhub.Error.Busy",
                                   "org.lockhub.Error.NotAuthorized", "org.lockhub.Error.Failed",
                                   "org.lockhub.Error.OutcomeUnknown"))
                return CTL_EXIT_LOCK_ERROR;
        if (sd_bus_error_has_names(e, "org.lockhub.Error.InvalidArgs", "org.lockhub.Error.NoSuchLock",
                                   SD_BUS_ERROR_INVALID_ARGS))
                return CTL_EXIT_USAGE;
        return CTL_EXIT_FAILURE;
}

struct lock_status {
        char *name, *address, *state, *door, *model, *firmware;
        int32_t battery;
        int battery_critical, charging, connected, reachable, needs_repair;
        int16_t rssi;
        uint64_t last_seen;
};

static void lock_status_done(struct lock_status *s)
{
        free(s->name);
        free(s->address);
        free(s->state);
        free(s->door);
        free(s->model);
        free(s->firmware);
}

static int fetch_status(sd_bus *bus, const char *path, struct lock_status *s)
{
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        struct {
                const char *name;
                char **ret;
        } strs[] = {
                { "Name", &s->name }, { "Address", &s->address }, { "State", &s->state },
                { "Door", &s->door }, { "Model", &s->model },     { "Firmware", &s->firmware },
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(strs); i++) {
                r = sd_bus_get_property_string(bus, API_BUS_NAME, path, "org.lockhub.Lock1", strs[i].name,
                                               &e, strs[i].ret);
                if (r < 0)
                        return r;
        }
        r = sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "BatteryPercent", &e,
                                        'i', &s->battery);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1",
                                                "BatteryCritical", &e, 'b', &s->battery_critical);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "Charging", &e,
                                                'b', &s->charging);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "Connected",
                                                &e, 'b', &s->connected);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "Reachable",
                                                &e, 'b', &s->reachable);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "NeedsRepair",
                                                &e, 'b', &s->needs_repair);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "RSSI", &e,
                                                'n', &s->rssi);
        if (r >= 0)
                r = sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "LastSeen", &e,
                                                't', &s->last_seen);
        return r;
}

static json_object *status_json(const struct lock_status *s)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(s->name));
        json_object_object_add(o, "address", json_object_new_string(s->address));
        json_object_object_add(o, "state", json_object_new_string(s->state));
        json_object_object_add(o, "door", json_object_new_string(s->door));
        json_object_object_add(o, "battery", s->battery >= 0 ? json_object_new_int(s->battery) : NULL);
        json_object_object_add(o, "battery_critical", json_object_new_boolean(s->battery_critical));
        json_object_object_add(o, "charging", json_object_new_boolean(s->charging));
        json_object_object_add(o, "connected", json_object_new_boolean(s->connected));
        json_object_object_add(o, "reachable", json_object_new_boolean(s->reachable));
        json_object_object_add(o, "rssi", s->rssi ? json_object_new_int(s->rssi) : NULL);
        json_object_object_add(o, "last_seen_usec",
                               s->last_seen ? json_object_new_uint64(s->last_seen) : NULL);
        json_object_object_add(o, "model", *s->model ? json_object_new_string(s->model) : NULL);
        json_object_object_add(o, "firmware", *s->firmware ? json_object_new_string(s->firmware) : NULL);
        json_object_object_add(o, "needs_repair", json_object_new_boolean(s->needs_repair));
        return o;
}

static void format_age(uint64_t usec, char *buf, size_t n)
{
        struct timespec ts;
        uint64_t now, d;

        if (!usec) {
                snprintf(buf, n, "never");
                return;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
        d = now > usec ? (now - usec) / 1000000ULL : 0;
        if (d < 120)
                snprintf(buf, n, "%llus ago", (unsigned long long) d);
        else if (d < 7200)
                snprintf(buf, n, "%llumin ago", (unsigned long long) d / 60);
        else
                snprintf(buf, n, "%lluh ago", (unsigned long long) d / 3600);
}

/* list and status share this: every lock, or one. */
static int show_locks(int argc, char *argv[], bool detailed)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *only = NULL, *name, *path, *address;
        json_object *arr = NULL;
        unsigned shown = 0;
        int r;

        r = parse_common(argc, argv, 0, 1, detailed ? "status [LOCK] [--json]" : "list [--json]");
        if (r <= 0)
                return r < 0 ? CTL_EXIT_USAGE : CTL_EXIT_OK;
        if (optind < argc)
                only = argv[optind];

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1", "ListLocks", &e,
                               &reply, "");
        if (r < 0) {
                fprintf(stderr, "lockhubctl: %s\n", e.message ?: strerror(-r));
                return ctl_exit_from_bus_error(&e, r);
        }

        if (arg_json)
                arr = json_object_new_array();
        else if (!detailed)
                printf("%-20s %-17s %-12s %-8s %s\n", "NAME", "ADDRESS", "STATE", "BATTERY", "LAST SEEN");

        r = sd_bus_message_enter_container(reply, 'a', "(sos)");
        if (r < 0)
                return CTL_EXIT_FAILURE;
        while ((r = sd_bus_message_read(reply, "(sos)", &name, &path, &address)) > 0) {
                struct lock_status s = {};
                char seen[32], battery[16];

                if (only && !streq(only, name))
                        continue;
                r = fetch_status(bus, path, &s);
                if (r < 0) {
                        lock_status_done(&s);
                        fprintf(stderr, "lockhubctl: cannot read %s: %s\n", name, strerror(-r));
                        return CTL_EXIT_FAILURE;
                }
                shown++;
                format_age(s.last_seen, seen, sizeof seen);
                if (s.battery >= 0)
                        snprintf(battery, sizeof battery, "%d%%%s", s.battery,
                                 s.battery_critical ? "!" : "");
                else
                        snprintf(battery, sizeof battery, "?");

                if (arg_json)
                        json_object_array_add(arr, status_json(&s));
                else if (!detailed)
                        printf("%-20s %-17s %-12s %-8s %s\n", s.name, s.address,
                               s.needs_repair ? "needs-repair" : s.state, battery, seen);
                else {
                        printf("%s (%s)\n", s.name, s.address);
                        printf("      State: %s%s\n", s.state, s.needs_repair ? " (needs re-pairing)" : "");
                        printf("       Door: %s\n", s.door);
                        printf("    Battery: %s%s%s\n", battery, s.battery_critical ? " critical" : "",
                               s.charging ? " charging" : "");
                        printf("       Link: %s, %s, RSSI %d dBm, last seen %s\n",
                               s.connected ? "connected" : "idle", s.reachable ? "reachable" : "unreachable",
                               s.rssi, seen);
                        printf("      Model: %s\n   Firmware: %s\n\n", *s.model ? s.model : "?",
                               *s.firmware ? s.firmware : "?");
                }
                lock_status_done(&s);
        }
        if (arg_json) {
                printf("%s\n",
                       json_object_to_json_string_ext(only && json_object_array_length(arr) == 1
                                                                      ? json_object_array_get_idx(arr, 0)
                                                                      : arr,
                                                      JSON_C_TO_STRING_PLAIN));
                json_object_put(arr);
        }
        if (only && shown == 0) {
                fprintf(stderr, "lockhubctl: no lock named '%s'. See 'lockhubctl list'.\n", only);
                return CTL_EXIT_USAGE;
        }
        return CTL_EXIT_OK;
}

int verb_list(int argc, char *argv[])
{
        return show_locks(argc, argv, false);
}

int verb_status(int argc, char *argv[])
{
        return show_locks(argc, argv, true);
}

/* lock|unlock|open LOCK: waits for the lock to finish (up to two minutes). */
int verb_action(int argc, char *argv[])
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *path = NULL;
        const char *method;
        int r;

        method = streq(argv[0], "lock") ? "Lock" : streq(argv[0], "unlock") ? "Unlock" : "Unlatch";
        r = parse_common(argc, argv, 1, 1,
                         streq(argv[0], "open")   ? "open LOCK"
                         : streq(argv[0], "lock") ? "lock LOCK"
                                                  : "unlock LOCK");
        if (r <= 0)
                return r < 0 ? CTL_EXIT_USAGE : CTL_EXIT_OK;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = api_lock_path(argv[optind], &path);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        r = sd_bus_message_new_method_call(bus, &m, API_BUS_NAME, path, "org.lockhub.Lock1", method);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        r = sd_bus_call(bus, m, 120 * 1000000ULL, &e, &reply);
        if (r < 0) {
                if (sd_bus_error_has_names(&e, SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_METHOD)) {
                        fprintf(stderr, "lockhubctl: no lock named '%s'. See 'lockhubctl list'.\n",
                                argv[optind]);
                        return CTL_EXIT_USAGE;
                }
                fprintf(stderr, "lockhubctl: %s failed: %s\n", argv[0], e.message ?: strerror(-r));
                return ctl_exit_from_bus_error(&e, r);
        }
        if (arg_json)
                printf("{\"lock\":\"%s\",\"action\":\"%s\",\"result\":\"done\"}\n", argv[optind], argv[0]);
        else
                printf("%s: %s done.\n", argv[optind], argv[0]);
        return CTL_EXIT_OK;
}
