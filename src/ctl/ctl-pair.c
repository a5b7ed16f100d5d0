/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhubctl verbs for pairing and history: pair, unpair, events, monitor.
 * Exit status as in ctl.h.
 */

#include <getopt.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "lockhub/api.h"
#include "lockhub/macro.h"

#define USEC_PER_SEC 1000000ULL

static void json_putp(json_object **o)
{
        json_object_put(*o);
}

static uint64_t now_realtime(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void format_time(uint64_t usec, char *buf, size_t n)
{
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!usec || !localtime_r(&t, &tm)) {
                snprintf(buf, n, "-");
                return;
        }
        strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
}

/* "--since": a Unix time in seconds, "@SECONDS", "-5min"/"5min ago"-style relative
 * durations (s, min, h, d), or "YYYY-MM-DD[ HH:MM[:SS]]" in local time. */
static int parse_since(const char *s, uint64_t *ret)
{
        char *end;
        double v;
        struct tm tm = {};
        const char *p;

        if (s[0] == '@')
                s++;
        if (s[0] == '-') {
                unsigned long long mult = 1;
                v = strtod(s + 1, &end);
                if (end == s + 1 || v < 0)
                        return -EINVAL;
                if (streq(end, "") || streq(end, "s"))
                        mult = 1;
                else if (streq(end, "min") || streq(end, "m"))
                        mult = 60;
                else if (streq(end, "h"))
                        mult = 3600;
                else if (streq(end, "d"))
                        mult = 86400;
                else
                        return -EINVAL;
                *ret = now_realtime() - (uint64_t) (v * (double) mult * (double) USEC_PER_SEC);
                return 0;
        }
        p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
        if (!p || *p) {
                memset(&tm, 0, sizeof tm);
                p = strptime(s, "%Y-%m-%d %H:%M", &tm);
        }
        if (!p || *p) {
                memset(&tm, 0, sizeof tm);
                p = strptime(s, "%Y-%m-%d", &tm);
        }
        if (p && !*p) {
                time_t t;
                tm.tm_isdst = -1;
                t = mktime(&tm);
                if (t < 0)
                        return -EINVAL;
                *ret = (uint64_t) t * USEC_PER_SEC;
                return 0;
        }
        v = strtod(s, &end);
        if (end == s || *end || v < 0)
                return -EINVAL;
        *ret = (uint64_t) (v * (double) USEC_PER_SEC);
        return 0;
}

/* ---- pair / unpair ---- */

typedef enum PinFrom {
        PIN_NONE,
        PIN_ASK,   /* --pin: the terminal without echo, else a line of standard input */
        PIN_STDIN, /* --pin-stdin */
        PIN_FILE,  /* --pin-file FILE */
} PinFrom;

/* The security PIN, never from the command line (where ps shows it): one line of f,
 * up to 10 digits. With prompt, f is a terminal and is read without echo. */
static int read_pin(FILE *f, const char *prompt, char *buf, size_t size)
{
        struct termios old, quiet;
        bool tty = prompt && tcgetattr(fileno(f), &old) == 0;
        size_t n;

        if (tty) {
                fprintf(stderr, "%s", prompt);
                quiet = old;
                quiet.c_lflag &= (tcflag_t) ~ECHO;
                (void) tcsetattr(fileno(f), TCSAFLUSH, &quiet);
        }
        if (!fgets(buf, (int) size, f))
                buf[0] = '\0';
        if (tty) {
                (void) tcsetattr(fileno(f), TCSAFLUSH, &old);
                fprintf(stderr, "\n");
        }
        n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
        if (n == 0)
                return -ENODATA;
        if (n > 10 || strspn(buf, "0123456789") != n)
                return -EINVAL;
        return 0;
}

static int get_pin(PinFrom from, const char *file, char *buf, size_t size)
{
        FILE *f;
        int r = -EINVAL;

        switch (from) {
        case PIN_NONE:
                buf[0] = '\0';
                return 0;
        case PIN_ASK:
                r = read_pin(stdin, isatty(STDIN_FILENO) ? "Security PIN of the lock: " : NULL, buf, size);
                break;
        case PIN_STDIN:
                r = read_pin(stdin, NULL, buf, size);
                break;
        case PIN_FILE:
                f = fopen(file, "re");
                if (!f) {
                        r = negative_errno();
                        fprintf(stderr, "lockhubctl: cannot read the PIN from %s: %s\n", file, strerror(-r));
                        return r;
                }
                r = read_pin(f, NULL, buf, size);
                fclose(f);
                break;
        }
        if (r == -ENODATA)
                fprintf(stderr, "lockhubctl: no security PIN given\n");
        else if (r < 0)
                fprintf(stderr, "lockhubctl: the security PIN is up to 10 digits\n");
        return r;
}

int verb_pair(int argc, char *argv[])
{
        enum { ARG_PIN_STDIN = 0x100, ARG_PIN_FILE };
        static const struct option options[] = {
                { "name", required_argument, NULL, 'n' },
                { "pin", no_argument, NULL, 'p' },
                { "pin-stdin", no_argument, NULL, ARG_PIN_STDIN },
                { "pin-file", required_argument, NULL, ARG_PIN_FILE },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char usage[] =
                        "pair [ADDRESS] --name NAME [--pin|--pin-stdin|--pin-file FILE] [--json]";
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *name = NULL, *address = "", *path, *pin_file = NULL;
        PinFrom pin_from = PIN_NONE;
        char pin[16];
        bool json = false;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "n:pjh", options, NULL)) >= 0)
                switch (c) {
                case 'n':
                        name = optarg;
                        break;
                case 'p':
                        pin_from = PIN_ASK;
                        break;
                case ARG_PIN_STDIN:
                        pin_from = PIN_STDIN;
                        break;
                case ARG_PIN_FILE:
                        pin_from = PIN_FILE;
                        pin_file = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n\n"
                               "Pair the lock in pairing mode (hold its button for 5 s first). Without\n"
                               "ADDRESS, the only lock seen in pairing mode is paired. The lock's security\n"
                               "PIN (needed by a Smart Lock Ultra) is never given on the command line:\n"
                               "--pin asks for it (without echo), --pin-stdin reads it from standard "
                               "input,\n"
                               "--pin-file from the first line of FILE.\n",
                               usage);
                        return CTL_EXIT_OK;
                default:
                        if (strneq(argv[optind - 1], "--pin=", 6))
                                fprintf(stderr, "lockhubctl pair: the PIN is not taken on the command line "
                                                "(ps shows "
                                                "it): use --pin, --pin-stdin or --pin-file FILE.\n");
                        else
                                fprintf(stderr, "lockhubctl pair: bad option '%s'.\nUsage: lockhubctl %s\n",
                                        argv[optind - 1], usage);
                        return CTL_EXIT_USAGE;
                }
        if (argc - optind > 1 || !name) {
                if (pin_from == PIN_ASK && argc - optind >= 1 &&
                    strspn(argv[argc - 1], "0123456789") == strlen(argv[argc - 1]))
                        fprintf(stderr, "lockhubctl pair: --pin takes no value: it asks for the PIN (or use "
                                        "--pin-stdin, --pin-file FILE).\n");
                fprintf(stderr, "Usage: lockhubctl %s\n", usage);
                return CTL_EXIT_USAGE;
        }
        if (optind < argc)
                address = argv[optind];
        if (pin_from == PIN_ASK && *address && strspn(address, "0123456789") == strlen(address)) {
                fprintf(stderr, "lockhubctl pair: --pin takes no value: it asks for the PIN (or use "
                                "--pin-stdin, --pin-file FILE).\n");
                return CTL_EXIT_USAGE;
        }
        if (get_pin(pin_from, pin_file, pin, sizeof pin) < 0)
                return CTL_EXIT_USAGE;

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = sd_bus_message_new_method_call(bus, &m, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1",
                                           "Pair");
        if (r >= 0) {
                r = sd_bus_message_sensitive(m);
                if (r >= 0)
                        r = sd_bus_message_append(m, "sss", address, name, pin);
        }
        explicit_bzero(pin, sizeof pin);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        if (!json)
                fprintf(stderr, "Pairing%s%s as '%s'...\n", *address ? " with " : "", address, name);
        r = sd_bus_call(bus, m, 180 * USEC_PER_SEC, &e, &reply);
        if (r < 0) {
                fprintf(stderr, "lockhubctl: pairing failed: %s\n", e.message ?: strerror(-r));
                if (sd_bus_error_has_names(&e, "org.lockhub.Error.NotInPairingMode",
                                           "org.lockhub.Error.AlreadyPaired", "org.lockhub.Error.LockFull"))
                        return CTL_EXIT_LOCK_ERROR;
                return ctl_exit_from_bus_error(&e, r);
        }
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return CTL_EXIT_FAILURE;

        /* Show what was paired. */
        {
                _cleanup_free_ char *addr = NULL, *model = NULL, *fw = NULL, *state = NULL;
                int32_t battery = -1;

                (void) sd_bus_get_property_string(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "Address",
                                                  NULL, &addr);
                (void) sd_bus_get_property_string(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "Model",
                                                  NULL, &model);
                (void) sd_bus_get_property_string(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "Firmware",
                                                  NULL, &fw);
                (void) sd_bus_get_property_string(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "State",
                                                  NULL, &state);
                (void) sd_bus_get_property_trivial(bus, API_BUS_NAME, path, "org.lockhub.Lock1",
                                                   "BatteryPercent", NULL, 'i', &battery);
                if (json) {
                        _cleanup_(json_putp) json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(name));
                        json_object_object_add(o, "address", json_object_new_string(strempty(addr)));
                        json_object_object_add(o, "path", json_object_new_string(path));
                        json_object_object_add(o, "model",
                                               model && *model ? json_object_new_string(model) : NULL);
                        json_object_object_add(o, "firmware", fw && *fw ? json_object_new_string(fw) : NULL);
                        json_object_object_add(o, "state", json_object_new_string(strempty(state)));
                        json_object_object_add(o, "battery",
                                               battery >= 0 ? json_object_new_int(battery) : NULL);
                        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                } else {
                        printf("Paired %s (%s).\n", name, strempty(addr));
                        printf("     Model: %s\n  Firmware: %s\n     State: %s\n",
                               model && *model ? model : "?", fw && *fw ? fw : "?", strempty(state));
                        if (battery >= 0)
                                printf("   Battery: %d%%\n", battery);
                        else
                                printf("   Battery: ?\n");
                }
        }
        return CTL_EXIT_OK;
}

/* lockhubctl pin LOCK: the lock's security PIN changed (in the vendor's app); the lock
 * checks the new one before the hub stores it. */
int verb_pin(int argc, char *argv[])
{
        enum { ARG_PIN_STDIN = 0x100, ARG_PIN_FILE };
        static const struct option options[] = {
                { "pin", no_argument, NULL, 'p' },
                { "pin-stdin", no_argument, NULL, ARG_PIN_STDIN },
                { "pin-file", required_argument, NULL, ARG_PIN_FILE },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char usage[] = "pin LOCK [--pin|--pin-stdin|--pin-file FILE]";
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *path = NULL;
        const char *name, *pin_file = NULL;
        PinFrom pin_from = PIN_ASK;
        char pin[16];
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "ph", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        pin_from = PIN_ASK;
                        break;
                case ARG_PIN_STDIN:
                        pin_from = PIN_STDIN;
                        break;
                case ARG_PIN_FILE:
                        pin_from = PIN_FILE;
                        pin_file = optarg;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n\nSets the lock's security PIN after it was "
                               "changed in the vendor's app. The lock checks it first; only a PIN it "
                               "accepts is stored. --pin (the default) asks for it (without echo), "
                               "--pin-stdin reads it from standard input, --pin-file from the first line "
                               "of FILE.\n",
                               usage);
                        return CTL_EXIT_OK;
                default:
                        if (strneq(argv[optind - 1], "--pin=", 6))
                                fprintf(stderr, "lockhubctl pin: the PIN is never taken on the command line "
                                                "(where others can read it): use --pin, --pin-stdin or "
                                                "--pin-file FILE.\n");
                        else
                                fprintf(stderr, "lockhubctl pin: unknown option '%s'.\n", argv[optind - 1]);
                        return CTL_EXIT_USAGE;
                }
        if (argc - optind != 1) {
                if (argc - optind > 1)
                        fprintf(stderr, "lockhubctl pin: the PIN is never taken on the command line.\n");
                fprintf(stderr, "Usage: lockhubctl %s\n", usage);
                return CTL_EXIT_USAGE;
        }
        name = argv[optind];
        if (get_pin(pin_from, pin_file, pin, sizeof pin) < 0)
                return CTL_EXIT_USAGE;

        r = ctl_bus_connect(&bus);
        if (r >= 0)
                r = api_lock_path(name, &path);
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, API_BUS_NAME, path, "org.lockhub.Lock1",
                                                   "SetSecurityPin");
        if (r >= 0)
                r = sd_bus_message_sensitive(m);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", pin);
        explicit_bzero(pin, sizeof pin);
        if (r < 0)
                return bus ? CTL_EXIT_FAILURE : CTL_EXIT_UNREACHABLE;
        r = sd_bus_call(bus, m, 120 * USEC_PER_SEC, &e, &reply);
        if (r < 0) {
                if (sd_bus_error_has_names(&e, SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_METHOD)) {
                        fprintf(stderr, "lockhubctl: no lock named '%s'. See 'lockhubctl list'.\n", name);
                        return CTL_EXIT_USAGE;
                }
                fprintf(stderr, "lockhubctl pin: %s\n", e.message ?: strerror(-r));
                return ctl_exit_from_bus_error(&e, r);
        }
        printf("%s: the lock accepted the security PIN; it is stored.\n", name);
        return CTL_EXIT_OK;
}

int verb_unpair(int argc, char *argv[])
{
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *result;
        bool json = false;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "jh", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: lockhubctl unpair NAME [--json]\n");
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr, "Usage: lockhubctl unpair NAME [--json]\n");
                        return CTL_EXIT_USAGE;
                }
        if (argc - optind != 1) {
                fprintf(stderr, "Usage: lockhubctl unpair NAME [--json]\n");
                return CTL_EXIT_USAGE;
        }
        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = sd_bus_message_new_method_call(bus, &m, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1",
                                           "Unpair");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", argv[optind]);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        r = sd_bus_call(bus, m, 120 * USEC_PER_SEC, &e, &reply);
        if (r < 0) {
                if (sd_bus_error_has_name(&e, "org.lockhub.Error.NoSuchLock")) {
                        fprintf(stderr, "lockhubctl: no lock named '%s'. See 'lockhubctl list'.\n",
                                argv[optind]);
                        return CTL_EXIT_USAGE;
                }
                fprintf(stderr, "lockhubctl: unpair failed: %s\n", e.message ?: strerror(-r));
                return ctl_exit_from_bus_error(&e, r);
        }
        r = sd_bus_message_read(reply, "s", &result);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        if (json) {
                _cleanup_(json_putp) json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(argv[optind]));
                json_object_object_add(o, "unpaired", json_object_new_boolean(true));
                json_object_object_add(o, "lock", json_object_new_string(result));
                printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        } else
                printf("Unpaired %s: %s.\n", argv[optind], result);
        return CTL_EXIT_OK;
}

/* ---- events ---- */

typedef struct Event {
        uint64_t id, ts;
        char *lock, *kind, *source, *actor, *detail;
} Event;

static int event_compare(const void *a, const void *b)
{
        const Event *x = a, *y = b;

        if (x->ts != y->ts)
                return x->ts < y->ts ? -1 : 1;
        return x->id < y->id ? -1 : x->id > y->id;
}

static void events_free(Event *ev, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(ev[i].lock);
                free(ev[i].kind);
                free(ev[i].source);
                free(ev[i].actor);
                free(ev[i].detail);
        }
        free(ev);
}

static int fetch_events(sd_bus *bus, const char *name, const char *path, uint64_t since, uint32_t limit,
                        Event **ev, size_t *n, sd_bus_error *e)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *kind, *source, *actor, *detail;
        uint64_t id, ts;
        int r;

        r = sd_bus_call_method(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "Events", e, &reply, "tu",
                               since, limit);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(ttssss)");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(reply, "(ttssss)", &id, &ts, &kind, &source, &actor, &detail)) > 0) {
                Event *x = reallocarray(*ev, *n + 1, sizeof **ev);
                if (!x)
                        return -ENOMEM;
                *ev = x;
                x[*n] = (Event){ .id = id,
                                 .ts = ts,
                                 .lock = strdup(name),
                                 .kind = strdup(kind),
                                 .source = strdup(source),
                                 .actor = strdup(actor),
                                 .detail = strdup(detail) };
                (*n)++;
        }
        return r;
}

int verb_events(int argc, char *argv[])
{
        static const struct option options[] = {
                { "since", required_argument, NULL, 's' },
                { "limit", required_argument, NULL, 'n' },
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char usage[] = "events [LOCK] [--since TIME] [--limit N] [--json]";
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *only = NULL, *name, *path, *address;
        uint64_t since = 0;
        unsigned long limit = 50;
        bool json = false, found = false;
        Event *ev = NULL;
        size_t n = 0, first;
        char *end;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "s:n:jh", options, NULL)) >= 0)
                switch (c) {
                case 's':
                        if (parse_since(optarg, &since) < 0) {
                                fprintf(stderr,
                                        "lockhubctl events: bad time '%s' (seconds since the epoch, -5min, "
                                        "-2h, -1d, or YYYY-MM-DD [HH:MM[:SS]]).\n",
                                        optarg);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'n':
                        limit = strtoul(optarg, &end, 10);
                        if (*end || !*optarg || optarg[0] == '-' || limit > UINT32_MAX) {
                                fprintf(stderr, "lockhubctl events: bad limit '%s'.\n", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n\nThe newest N events (default 50; 0: all), oldest "
                               "first.\n",
                               usage);
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr, "lockhubctl events: bad option '%s'.\nUsage: lockhubctl %s\n",
                                argv[optind - 1], usage);
                        return CTL_EXIT_USAGE;
                }
        if (argc - optind > 1) {
                fprintf(stderr, "Usage: lockhubctl %s\n", usage);
                return CTL_EXIT_USAGE;
        }
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
        r = sd_bus_message_enter_container(reply, 'a', "(sos)");
        if (r < 0)
                return CTL_EXIT_FAILURE;
        while ((r = sd_bus_message_read(reply, "(sos)", &name, &path, &address)) > 0) {
                if (only && !streq(only, name))
                        continue;
                found = true;
                r = fetch_events(bus, name, path, since, (uint32_t) limit, &ev, &n, &e);
                if (r < 0) {
                        fprintf(stderr, "lockhubctl: cannot read the events of %s: %s\n", name,
                                e.message ?: strerror(-r));
                        events_free(ev, n);
                        return ctl_exit_from_bus_error(&e, r);
                }
        }
        if (only && !found) {
                fprintf(stderr, "lockhubctl: no lock named '%s'. See 'lockhubctl list'.\n", only);
                return CTL_EXIT_USAGE;
        }
        if (n > 0)
                qsort(ev, n, sizeof *ev, event_compare);
        first = limit > 0 && n > limit ? n - limit : 0;

        if (json) {
                _cleanup_(json_putp) json_object *a = json_object_new_array();
                for (size_t i = first; i < n; i++) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "id", json_object_new_uint64(ev[i].id));
                        json_object_object_add(o, "time_usec", json_object_new_uint64(ev[i].ts));
                        json_object_object_add(o, "lock", json_object_new_string(ev[i].lock));
                        json_object_object_add(o, "kind", json_object_new_string(ev[i].kind));
                        json_object_object_add(o, "source", json_object_new_string(ev[i].source));
                        json_object_object_add(o, "actor",
                                               *ev[i].actor ? json_object_new_string(ev[i].actor) : NULL);
                        json_object_object_add(o, "detail",
                                               *ev[i].detail ? json_tokener_parse(ev[i].detail) : NULL);
                        json_object_array_add(a, o);
                }
                printf("%s\n", json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
        } else {
                printf("%-19s  %-12s %-8s %-7s %-16s %s\n", "TIME", "LOCK", "KIND", "SOURCE", "ACTOR",
                       "DETAIL");
                for (size_t i = first; i < n; i++) {
                        char t[32];
                        format_time(ev[i].ts, t, sizeof t);
                        printf("%-19s  %-12s %-8s %-7s %-16s %s\n", t, ev[i].lock, ev[i].kind, ev[i].source,
                               *ev[i].actor ? ev[i].actor : "-", ev[i].detail);
                }
        }
        events_free(ev, n);
        return CTL_EXIT_OK;
}

/* ---- monitor ---- */

static bool monitor_json;

static void print_value(sd_bus_message *m, char *buf, size_t n, json_object **ret)
{
        const char *contents;
        char type;

        *ret = NULL;
        snprintf(buf, n, "?");
        if (sd_bus_message_peek_type(m, &type, &contents) < 0 || type != 'v')
                return;
        if (sd_bus_message_enter_container(m, 'v', contents) < 0)
                return;
        switch (contents[0]) {
        case 's': {
                const char *s;
                if (sd_bus_message_read(m, "s", &s) >= 0) {
                        snprintf(buf, n, "%s", s);
                        *ret = json_object_new_string(s);
                }
                break;
        }
        case 'b': {
                int v;
                if (sd_bus_message_read(m, "b", &v) >= 0) {
                        snprintf(buf, n, "%s", v ? "yes" : "no");
                        *ret = json_object_new_boolean(v);
                }
                break;
        }
        case 'i': {
                int32_t v;
                if (sd_bus_message_read(m, "i", &v) >= 0) {
                        snprintf(buf, n, "%d", v);
                        *ret = json_object_new_int(v);
                }
                break;
        }
        case 'n': {
                int16_t v;
                if (sd_bus_message_read(m, "n", &v) >= 0) {
                        snprintf(buf, n, "%d", v);
                        *ret = json_object_new_int(v);
                }
                break;
        }
        case 't': {
                uint64_t v;
                if (sd_bus_message_read(m, "t", &v) >= 0) {
                        /* the only 't' property is a time (LastSeen) */
                        format_time(v, buf, n);
                        *ret = json_object_new_uint64(v);
                }
                break;
        }
        case '(': {
                const char *a, *s, *actor;
                uint64_t t;
                if (sd_bus_message_read(m, "(ssst)", &a, &s, &actor, &t) >= 0) {
                        snprintf(buf, n, "%s by %s%s%s", *a ? a : "-", *s ? s : "-", *actor ? " " : "",
                                 actor);
                        *ret = json_object_new_object();
                        json_object_object_add(*ret, "action", json_object_new_string(a));
                        json_object_object_add(*ret, "source", json_object_new_string(s));
                        json_object_object_add(*ret, "actor", json_object_new_string(actor));
                        json_object_object_add(*ret, "time_usec", json_object_new_uint64(t));
                }
                break;
        }
        default:
                (void) sd_bus_message_skip(m, contents);
        }
        (void) sd_bus_message_exit_container(m);
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        _cleanup_free_ char *name = NULL;
        const char *path = sd_bus_message_get_path(m), *iface, *prop;
        char t[32];
        int r;

        if (!path || sd_bus_path_decode(path, API_LOCK_PATH_PREFIX, &name) <= 0)
                return 0;
        r = sd_bus_message_read(m, "s", &iface);
        if (r < 0 || !streq(iface, "org.lockhub.Lock1"))
                return 0;
        format_time(now_realtime(), t, sizeof t);
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return 0;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                char value[160];
                json_object *v;

                if (sd_bus_message_read(m, "s", &prop) < 0)
                        break;
                print_value(m, value, sizeof value, &v);
                (void) sd_bus_message_exit_container(m);
                if (monitor_json) {
                        _cleanup_(json_putp) json_object *o = json_object_new_object();
                        json_object_object_add(o, "time_usec", json_object_new_uint64(now_realtime()));
                        json_object_object_add(o, "lock", json_object_new_string(name));
                        json_object_object_add(o, "property", json_object_new_string(prop));
                        json_object_object_add(o, "value", v);
                        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
                } else {
                        json_object_put(v);
                        printf("%s  %-12s %-16s %s\n", t, name, prop, value);
                }
        }
        /* invalidated properties: lockhubd sends values, but be tolerant */
        fflush(stdout);
        return 0;
}

static int on_interfaces(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        _cleanup_free_ char *name = NULL;
        const char *path;
        char t[32];
        bool added = streq(sd_bus_message_get_member(m), "InterfacesAdded");

        if (sd_bus_message_read(m, "o", &path) < 0 ||
            sd_bus_path_decode(path, API_LOCK_PATH_PREFIX, &name) <= 0)
                return 0;
        format_time(now_realtime(), t, sizeof t);
        if (monitor_json)
                printf("{\"time_usec\":%llu,\"lock\":\"%s\",\"event\":\"%s\"}\n",
                       (unsigned long long) now_realtime(), name, added ? "added" : "removed");
        else
                printf("%s  %-12s %s\n", t, name, added ? "(paired)" : "(removed)");
        fflush(stdout);
        return 0;
}

static int on_daemon_gone(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        const char *n, *old, *new;

        if (sd_bus_message_read(m, "sss", &n, &old, &new) >= 0 && streq(n, API_BUS_NAME) && !*new) {
                fprintf(stderr, "lockhubctl: lockhubd went away.\n");
                (void) sd_event_exit(userdata, CTL_EXIT_UNREACHABLE);
        }
        return 0;
}

int verb_monitor(int argc, char *argv[])
{
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        sigset_t mask;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "jh", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        monitor_json = true;
                        break;
                case 'h':
                        printf("Usage: lockhubctl monitor [--json]\n\nOne line per change of any lock until "
                               "Ctrl-C.\n");
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr, "Usage: lockhubctl monitor [--json]\n");
                        return CTL_EXIT_USAGE;
                }
        if (argc - optind != 0) {
                fprintf(stderr, "Usage: lockhubctl monitor [--json]\n");
                return CTL_EXIT_USAGE;
        }
        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = sd_event_default(&event);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(event, NULL, SIGINT, NULL, NULL);
        (void) sd_event_add_signal(event, NULL, SIGTERM, NULL, NULL);
        r = sd_bus_attach_event(bus, event, 0);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, API_BUS_NAME, NULL, "org.freedesktop.DBus.Properties",
                                        "PropertiesChanged", on_properties_changed, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, API_BUS_NAME, API_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
                                        on_interfaces, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, API_BUS_NAME, API_MANAGER_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
                                        on_interfaces, NULL);
        if (r >= 0)
                r = sd_bus_match_signal(bus, NULL, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                        "org.freedesktop.DBus", "NameOwnerChanged", on_daemon_gone, event);
        if (r < 0) {
                fprintf(stderr, "lockhubctl: cannot subscribe to lockhubd's signals: %s\n", strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        if (!monitor_json) {
                fprintf(stderr, "Watching every lock; Ctrl-C to stop.\n");
                printf("%-19s  %-12s %-16s %s\n", "TIME", "LOCK", "PROPERTY", "VALUE");
                fflush(stdout);
        }
        r = sd_event_loop(event);
        return r < 0 ? CTL_EXIT_FAILURE : r;
}
