/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bluez-probe: drives the BlueZ client library from a small script, for the
 * integration tests (tests/integration/t-bluez-*.sh) and for poking at a real or
 * simulated bluetoothd by hand.
 *
 *   bluez-probe [--adapter NAME]... [--max-connections N] [--idle SEC]
 *               [--connect-timeout SEC] [--queue-timeout SEC] [--resolve-timeout SEC]
 *               [--attempts N]
 *               [--notify UUID]... [--timeout SEC] [--all-adverts] < script
 *
 * Every event of the library is printed as one line on stdout:
 *   service up|down
 *   adapter NAME EVENT powered=0|1
 *   advert ADAPTER ADDRESS rssi=N name=NAME mfr=CCCC:HEX... sd=UUID:HEX... (only when
 *          the data other than RSSI changed for that address, unless --all-adverts)
 *   connected ADDRESS via ADAPTER
 *   failed ADDRESS ERRNO NAME MESSAGE
 *   disconnected ADDRESS ERRNO|ok [NAME MESSAGE]
 *   indication ADDRESS UUID HEX
 *   write ADDRESS UUID ok|ERRNO NAME MESSAGE
 *   read ADDRESS UUID HEX|ERRNO ...
 *   power-cycle ADAPTER ok|ERRNO ...      remove ADDRESS ok|ERRNO ...
 *
 * Script, one command per line (# comments), run in order:
 *   scan on|off                 discovery
 *   scan le|le-duplicates|quiet how it listens (bluez_client_set_scan_mode())
 *   connect ADDRESS [user|refresh|maintenance]   (prints "connect ADDRESS already"
 *                               when it was connected; otherwise events follow)
 *   disconnect ADDRESS          ("disconnect ADDRESS immediate" when nothing was up)
 *   write ADDRESS UUID HEX      read ADDRESS UUID
 *   link ADDRESS                create the link object without connecting
 *   free ADDRESS                drop the link object
 *   power-cycle ADAPTER         remove ADDRESS
 *   state ADDRESS               prints "state ADDRESS STATE"
 *   adapters                    prints "adapter NAME info powered=.. discovery=.. links=N"
 *   expect TEXT                 wait (up to --timeout) for a printed line containing
 *                               TEXT, after the line the previous expect matched
 *   wait TEXT                   the same, but any line printed so far counts
 *   sleep SECONDS               (fractions allowed)
 *   run SHELL-COMMAND           run it (synchronously: keep it short)
 * At the end of the script: exit 0. A failed expect prints "TIMEOUT: TEXT" and exits 1.
 */

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <systemd/sd-event.h>

#include "lockhub/bluez.h"
#include "lockhub/log.h"
#include "lockhub/macro.h"

#define MAX_LINES 100000
#define MAX_LINKS 64

typedef struct Probe Probe;

typedef struct ProbeLink {
        Probe *probe;
        BluezLink *link;
        char address[18];
} ProbeLink;

typedef struct SeenAdvert {
        char address[32]; /* "hci0 AA:BB:CC:DD:EE:FF" */
        char *summary;
} SeenAdvert;

struct Probe {
        sd_event *event;
        BluezClient *client;
        char **script;
        size_t n_script, pc;
        char **lines;
        size_t n_lines, expect_from;
        sd_event_source *wait_timer, *step_defer;
        const char *expecting;
        bool anywhere;
        ProbeLink links[MAX_LINKS];
        size_t n_links;
        SeenAdvert *seen;
        size_t n_seen;
        const char **notify;
        size_t n_notify;
        uint64_t timeout;
        bool all_adverts;
        int exit_code;
};

static const BluezLinkOps probe_link_ops;
static void script_continue(Probe *p);

static const char *errname(int e)
{
        const char *n = strerrorname_np(e < 0 ? -e : e);
        return n ? n : "E?";
}

static char *hex(const uint8_t *d, size_t n)
{
        char *s = malloc(n * 2 + 1);
        if (!s)
                abort();
        for (size_t i = 0; i < n; i++)
                sprintf(s + i * 2, "%02x", d[i]);
        s[n * 2] = 0;
        return s;
}

static void out(Probe *p, const char *fmt, ...) _printf_(2, 3);
static void out(Probe *p, const char *fmt, ...)
{
        va_list ap;
        char *line;

        va_start(ap, fmt);
        if (vasprintf(&line, fmt, ap) < 0)
                abort();
        va_end(ap);
        printf("%s\n", line);
        fflush(stdout);
        if (p->n_lines < MAX_LINES) {
                p->lines[p->n_lines++] = line;
        } else
                free(line);
        if (p->expecting)
                script_continue(p);
}

static char *err_text(const BluezError *e)
{
        char *s;

        if (!e)
                return strdup("ok");
        if (asprintf(&s, "%s %s %s", errname(e->error), strna(e->name), strna(e->message)) < 0)
                abort();
        return s;
}

static ProbeLink *find_link(Probe *p, const char *address, bool create)
{
        ProbeLink *pl;
        const char *notify[17] = {};
        int r;

        for (size_t i = 0; i < p->n_links; i++)
                if (strcasecmp(p->links[i].address, address) == 0 && p->links[i].link)
                        return &p->links[i];
        if (!create || p->n_links == MAX_LINKS)
                return NULL;
        pl = &p->links[p->n_links];
        for (size_t i = 0; i < p->n_notify && i < 16; i++)
                notify[i] = p->notify[i];
        pl->probe = p;
        snprintf(pl->address, sizeof(pl->address), "%s", address);
        r = bluez_link_new(p->client, address, notify, &probe_link_ops, pl, &pl->link);
        if (r < 0) {
                out(p, "error link %s %s", address, errname(r));
                return NULL;
        }
        p->n_links++;
        return pl;
}

/* ---- library callbacks ---- */

static void on_connected(BluezLink *l, void *userdata)
{
        ProbeLink *pl = userdata;
        out(pl->probe, "connected %s via %s", pl->address, strna(bluez_link_get_adapter(l)));
}

static void on_disconnected(BluezLink *l, const BluezError *err, void *userdata)
{
        ProbeLink *pl = userdata;
        _cleanup_free_ char *e = err_text(err);
        out(pl->probe, "disconnected %s %s", pl->address, e);
}

static void on_failed(BluezLink *l, const BluezError *err, void *userdata)
{
        ProbeLink *pl = userdata;
        _cleanup_free_ char *e = err_text(err);
        out(pl->probe, "failed %s %s", pl->address, e);
}

static void on_indication(BluezLink *l, const char *uuid, const uint8_t *data, size_t size, void *userdata)
{
        ProbeLink *pl = userdata;
        _cleanup_free_ char *h = hex(data, size);
        out(pl->probe, "indication %s %s %s", pl->address, uuid, h);
}

static const BluezLinkOps probe_link_ops = {
        .connected = on_connected,
        .disconnected = on_disconnected,
        .failed = on_failed,
        .indication = on_indication,
};

static void on_write(BluezLink *l, const BluezError *err, void *userdata)
{
        ProbeLink *pl = userdata;
        _cleanup_free_ char *e = err_text(err);
        out(pl->probe, "write %s %s", pl->address, e);
}

static void on_read(BluezLink *l, const BluezError *err, const uint8_t *data, size_t size, void *userdata)
{
        ProbeLink *pl = userdata;
        _cleanup_free_ char *e = err ? err_text(err) : hex(data, size);
        out(pl->probe, "read %s %s", pl->address, e);
}

static void on_service(BluezClient *c, bool up, void *userdata)
{
        out(userdata, "service %s", up ? "up" : "down");
}

static void on_adapter(BluezClient *c, BluezAdapterEvent ev, const BluezAdapterInfo *info, void *userdata)
{
        out(userdata, "adapter %s %s powered=%d", info->name, bluez_adapter_event_to_string(ev),
            info->powered);
}

static void on_advert(BluezClient *c, const BluezAdvert *a, void *userdata)
{
        Probe *p = userdata;
        _cleanup_free_ char *summary = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&summary, &len);
        SeenAdvert *s = NULL;

        if (!f)
                abort();
        fprintf(f, "name=%s", a->name ? a->name : "-");
        for (size_t i = 0; i < a->n_manufacturer_data; i++) {
                _cleanup_free_ char *h = hex(a->manufacturer_data[i].data, a->manufacturer_data[i].size);
                fprintf(f, " mfr=%04x:%s", a->manufacturer_data[i].company, h);
        }
        for (size_t i = 0; i < a->n_service_data; i++) {
                _cleanup_free_ char *h = hex(a->service_data[i].data, a->service_data[i].size);
                fprintf(f, " sd=%s:%s", a->service_data[i].uuid, h);
        }
        for (char *const *u = a->uuids; u && *u; u++)
                fprintf(f, " uuid=%s", *u);
        fclose(f);

        char key[32];

        snprintf(key, sizeof(key), "%s %s", a->adapter, a->address);
        for (size_t i = 0; i < p->n_seen; i++)
                if (streq(p->seen[i].address, key))
                        s = &p->seen[i];
        if (!s) {
                p->seen = reallocarray(p->seen, p->n_seen + 1, sizeof(*p->seen));
                if (!p->seen)
                        abort();
                s = &p->seen[p->n_seen++];
                *s = (SeenAdvert){};
                snprintf(s->address, sizeof(s->address), "%s", key);
        } else if (!p->all_adverts && s->summary && streq(s->summary, summary))
                return;
        free(s->summary);
        s->summary = strdup(summary);
        if (a->has_rssi)
                out(p, "advert %s %s rssi=%d %s", a->adapter, a->address, a->rssi, summary);
        else
                out(p, "advert %s %s rssi=none %s", a->adapter, a->address, summary);
}

typedef struct ResultTag {
        Probe *probe;
        char what[64]; /* "power-cycle hci0" */
} ResultTag;

static void on_result(BluezClient *c, const BluezError *err, void *userdata)
{
        ResultTag *tag = userdata;
        _cleanup_free_ char *e = err_text(err);

        out(tag->probe, "%s %s", tag->what, e);
        free(tag);
}

static ResultTag *result_tag(Probe *p, const char *verb, const char *arg)
{
        ResultTag *t = calloc(1, sizeof(*t));
        if (!t)
                abort();
        t->probe = p;
        snprintf(t->what, sizeof(t->what), "%s %s", verb, arg);
        return t;
}

/* ---- the script ---- */

static int on_wait_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Probe *p = userdata;

        if (p->expecting) {
                printf("TIMEOUT: %s\n", p->expecting);
                fflush(stdout);
                p->exit_code = 1;
                return sd_event_exit(p->event, 1);
        }
        script_continue(p); /* sleep over */
        return 0;
}

static bool expect_met(Probe *p)
{
        for (size_t i = p->anywhere ? 0 : p->expect_from; i < p->n_lines; i++)
                if (strstr(p->lines[i], p->expecting)) {
                        if (!p->anywhere)
                                p->expect_from = i + 1;
                        return true;
                }
        return false;
}

static int parse_hex(const char *s, uint8_t *buf, size_t max, size_t *ret)
{
        size_t n = strlen(s);

        if (n % 2 || n / 2 > max)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                unsigned v;
                if (sscanf(s + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                buf[i] = (uint8_t) v;
        }
        *ret = n / 2;
        return 0;
}

static BluezPriority parse_priority(const char *s)
{
        if (s && streq(s, "refresh"))
                return BLUEZ_PRIORITY_REFRESH;
        if (s && streq(s, "maintenance"))
                return BLUEZ_PRIORITY_MAINTENANCE;
        return BLUEZ_PRIORITY_USER;
}

/* Runs one command; returns true when the script must wait. */
static bool run_command(Probe *p, char *line)
{
        char *argv[8] = {};
        size_t argc = 0;
        char *save = NULL;
        ProbeLink *pl;
        int r;

        if (line[0] == '#')
                return false;
        if (strncmp(line, "expect ", 7) == 0 || strncmp(line, "wait ", 5) == 0) {
                p->anywhere = line[0] == 'w';
                p->expecting = line + (p->anywhere ? 5 : 7);
                if (expect_met(p)) {
                        p->expecting = NULL;
                        return false;
                }
                (void) sd_event_add_time_relative(p->event, &p->wait_timer, CLOCK_MONOTONIC, p->timeout, 0,
                                                  on_wait_timer, p);
                return true;
        }
        if (strncmp(line, "run ", 4) == 0) {
                /* Blocks the loop for as long as the command runs: keep it short. */
                int status = system(line + 4);
                if (status != 0)
                        out(p, "run failed (%d): %s", status, line + 4);
                return false;
        }
        for (char *t = strtok_r(line, " \t", &save); t && argc < ELEMENTSOF(argv);
             t = strtok_r(NULL, " \t", &save))
                argv[argc++] = t;
        if (argc == 0)
                return false;

        if (streq(argv[0], "sleep") && argc == 2) {
                double sec = strtod(argv[1], NULL);
                (void) sd_event_add_time_relative(p->event, &p->wait_timer, CLOCK_MONOTONIC,
                                                  (uint64_t) (sec * 1e6), 0, on_wait_timer, p);
                return true;
        } else if (streq(argv[0], "scan") && argc == 2 && !streq(argv[1], "on") && !streq(argv[1], "off")) {
                int m = -1;
                for (int i = 0; i < _BLUEZ_SCAN_MODE_MAX; i++)
                        if (streq(argv[1], bluez_scan_mode_to_string((BluezScanMode) i)))
                                m = i;
                if (m < 0) {
                        fprintf(stderr, "unknown scan mode %s\n", argv[1]);
                        return false;
                }
                bluez_client_set_scan_mode(p->client, (BluezScanMode) m);
        } else if (streq(argv[0], "scan") && argc == 2)
                bluez_client_set_discovery(p->client, streq(argv[1], "on"));
        else if (streq(argv[0], "connect") && argc >= 2) {
                pl = find_link(p, argv[1], true);
                if (!pl)
                        return false;
                r = bluez_link_connect(pl->link, parse_priority(argv[2]));
                if (r < 0)
                        out(p, "connect %s %s", argv[1], errname(r));
                else if (r > 0)
                        out(p, "connect %s already", argv[1]);
        } else if (streq(argv[0], "disconnect") && argc == 2) {
                pl = find_link(p, argv[1], false);
                r = pl ? bluez_link_disconnect(pl->link) : 1;
                if (r > 0)
                        out(p, "disconnect %s immediate", argv[1]);
        } else if (streq(argv[0], "link") && argc == 2) {
                (void) find_link(p, argv[1], true);
        } else if (streq(argv[0], "free") && argc == 2) {
                pl = find_link(p, argv[1], false);
                if (pl)
                        pl->link = bluez_link_free(pl->link);
        } else if (streq(argv[0], "state") && argc == 2) {
                pl = find_link(p, argv[1], false);
                out(p, "state %s %s", argv[1],
                    pl ? bluez_link_state_to_string(bluez_link_get_state(pl->link)) : "none");
        } else if (streq(argv[0], "write") && argc == 4) {
                uint8_t buf[BLUEZ_VALUE_MAX + 1];
                size_t n;

                pl = find_link(p, argv[1], false);
                if (parse_hex(argv[3], buf, sizeof(buf), &n) < 0) {
                        out(p, "write %s EINVAL bad hex", argv[1]);
                        return false;
                }
                r = pl ? bluez_link_write(pl->link, argv[2], buf, n, on_write, pl) : -ENOTCONN;
                if (r < 0)
                        out(p, "write %s %s (at once)", argv[1], errname(r));
        } else if (streq(argv[0], "read") && argc == 3) {
                pl = find_link(p, argv[1], false);
                r = pl ? bluez_link_read(pl->link, argv[2], on_read, pl) : -ENOTCONN;
                if (r < 0)
                        out(p, "read %s %s (at once)", argv[1], errname(r));
        } else if (streq(argv[0], "power-cycle") && argc == 2) {
                ResultTag *tag = result_tag(p, "power-cycle", argv[1]);
                r = bluez_client_power_cycle(p->client, argv[1], on_result, tag);
                if (r < 0) {
                        out(p, "power-cycle %s %s (at once)", argv[1], errname(r));
                        free(tag);
                }
        } else if (streq(argv[0], "remove") && argc == 2) {
                ResultTag *tag = result_tag(p, "remove", argv[1]);
                r = bluez_client_remove_device(p->client, argv[1], on_result, tag);
                if (r < 0) {
                        out(p, "remove %s %s (at once)", argv[1], errname(r));
                        free(tag);
                }
        } else if (streq(argv[0], "adapters")) {
                BluezAdapterInfo info;
                for (size_t i = 0; bluez_client_get_adapter(p->client, i, &info) >= 0; i++)
                        out(p, "adapter %s info powered=%d discovery=%d links=%u", info.name, info.powered,
                            info.discovery_active, info.n_links);
        } else
                out(p, "error unknown command: %s", argv[0]);
        return false;
}

static void script_continue(Probe *p)
{
        if (p->expecting) {
                if (!expect_met(p))
                        return;
                p->expecting = NULL;
        }
        p->wait_timer = sd_event_source_disable_unref(p->wait_timer);
        /* Never run commands from inside a library callback. */
        (void) sd_event_source_set_enabled(p->step_defer, SD_EVENT_ONESHOT);
}

static int script_step(sd_event_source *s, void *userdata)
{
        Probe *p = userdata;

        while (p->pc < p->n_script && !p->expecting && !p->wait_timer) {
                _cleanup_free_ char *line = strdup(p->script[p->pc]);
                /* expect keeps a pointer into the script: pass the original for it */
                if (strncmp(p->script[p->pc], "expect ", 7) == 0 ||
                    strncmp(p->script[p->pc], "wait ", 5) == 0) {
                        p->pc++;
                        if (run_command(p, p->script[p->pc - 1]))
                                return 0;
                        continue;
                }
                p->pc++;
                if (run_command(p, line))
                        return 0;
        }
        if (p->pc >= p->n_script && !p->expecting && !p->wait_timer)
                return sd_event_exit(p->event, 0);
        return 0;
}

static int read_script(Probe *p)
{
        char *line = NULL;
        size_t n = 0;
        ssize_t k;

        while ((k = getline(&line, &n, stdin)) >= 0) {
                while (k > 0 && (line[k - 1] == '\n' || line[k - 1] == '\r' || line[k - 1] == ' '))
                        line[--k] = 0;
                if (k == 0)
                        continue;
                p->script = reallocarray(p->script, p->n_script + 1, sizeof(char *));
                if (!p->script)
                        return -ENOMEM;
                p->script[p->n_script++] = strdup(line);
        }
        free(line);
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "adapter", required_argument, NULL, 'a' },
                { "max-connections", required_argument, NULL, 'm' },
                { "idle", required_argument, NULL, 'i' },
                { "connect-timeout", required_argument, NULL, 'c' },
                { "queue-timeout", required_argument, NULL, 'q' },
                { "resolve-timeout", required_argument, NULL, 'r' },
                { "attempts", required_argument, NULL, 'n' },
                { "notify", required_argument, NULL, 'N' },
                { "timeout", required_argument, NULL, 't' },
                { "all-adverts", no_argument, NULL, 'A' },
                { "debug", no_argument, NULL, 'd' },
                {},
        };
        static const char *default_notify[] = {
                "a92ee101-5501-11e4-916c-0800200c9a66",
                "a92ee201-5501-11e4-916c-0800200c9a66",
                "a92ee202-5501-11e4-916c-0800200c9a66",
                "a92ee301-5501-11e4-916c-0800200c9a66",
        };
        static const BluezCallbacks cb = {
                .service = on_service,
                .adapter = on_adapter,
                .advert = on_advert,
        };
        const char *adapters[9] = {};
        const char *notify[17] = {};
        size_t n_adapters = 0;
        BluezConfig config = {};
        Probe p = { .timeout = 30 * BLUEZ_USEC_PER_SEC };
        int c, r;

        log_open(LOG_TARGET_STDERR);
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'a':
                        if (n_adapters < 8)
                                adapters[n_adapters++] = optarg;
                        break;
                case 'm':
                        config.max_connections = (unsigned) atoi(optarg);
                        break;
                case 'i':
                        config.idle_disconnect_usec = (uint64_t) (strtod(optarg, NULL) * 1e6);
                        break;
                case 'c':
                        config.connect_timeout_usec = (uint64_t) (strtod(optarg, NULL) * 1e6);
                        break;
                case 'q':
                        config.queue_timeout_usec = (uint64_t) (strtod(optarg, NULL) * 1e6);
                        break;
                case 'r':
                        config.resolve_timeout_usec = (uint64_t) (strtod(optarg, NULL) * 1e6);
                        break;
                case 'n':
                        config.connect_attempts = (unsigned) atoi(optarg);
                        break;
                case 'N':
                        if (p.n_notify < 16)
                                notify[p.n_notify++] = optarg;
                        break;
                case 't':
                        p.timeout = (uint64_t) (strtod(optarg, NULL) * 1e6);
                        break;
                case 'A':
                        p.all_adverts = true;
                        break;
                case 'd':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return 2;
                }
        if (p.n_notify > 0)
                p.notify = notify;
        else {
                p.notify = default_notify;
                p.n_notify = ELEMENTSOF(default_notify);
        }
        config.adapters = n_adapters ? adapters : NULL;

        p.lines = calloc(MAX_LINES, sizeof(char *));
        if (!p.lines || read_script(&p) < 0)
                return 1;
        r = sd_event_default(&p.event);
        if (r < 0)
                return 1;
        r = bluez_client_new(p.event, NULL, &config, &cb, &p, &p.client);
        if (r < 0) {
                fprintf(stderr, "bluez_client_new: %s\n", strerror(-r));
                return 1;
        }
        r = bluez_client_start(p.client);
        if (r < 0)
                return 1;
        r = sd_event_add_defer(p.event, &p.step_defer, script_step, &p);
        if (r < 0)
                return 1;
        r = sd_event_loop(p.event);

        for (size_t i = 0; i < p.n_links; i++)
                bluez_link_free(p.links[i].link);
        bluez_client_free(p.client);
        sd_event_source_disable_unref(p.step_defer);
        sd_event_source_disable_unref(p.wait_timer);
        sd_event_unref(p.event);
        for (size_t i = 0; i < p.n_lines; i++)
                free(p.lines[i]);
        free(p.lines);
        for (size_t i = 0; i < p.n_script; i++)
                free(p.script[i]);
        free(p.script);
        for (size_t i = 0; i < p.n_seen; i++)
                free(p.seen[i].summary);
        free(p.seen);
        return r < 0 ? 1 : p.exit_code ? p.exit_code : r;
}
