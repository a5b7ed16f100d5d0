/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The recording sd-bus client used by the lockhub-sim tests; see sim-probe.h.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/macro.h"
#include "sim-probe.h"
#include "sim.h"

static uint64_t now_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static void record(Probe *p, char *line)
{
        if (p->n_ev == p->alloc_ev) {
                p->alloc_ev = p->alloc_ev ? p->alloc_ev * 2 : 256;
                p->ev = realloc(p->ev, p->alloc_ev * sizeof(char *));
                if (!p->ev)
                        abort();
        }
        if (p->verbose)
                fprintf(stderr, "  [%zu] %s\n", p->n_ev, line);
        p->ev[p->n_ev++] = line;
}

static int fmt(sd_bus_message *m, FILE *f);

static int fmt_container_items(sd_bus_message *m, FILE *f)
{
        bool first = true;

        for (;;) {
                char type;
                const char *contents;
                int r;
                r = sd_bus_message_peek_type(m, &type, &contents);
                if (r < 0)
                        return r;
                if (r == 0)
                        return 0;
                if (!first)
                        fputc(',', f);
                first = false;
                if (type == 'e') {
                        r = sd_bus_message_enter_container(m, 'e', contents);
                        if (r < 0)
                                return r;
                        r = fmt(m, f);
                        if (r < 0)
                                return r;
                        fputc('=', f);
                        r = fmt(m, f);
                        if (r < 0)
                                return r;
                        r = sd_bus_message_exit_container(m);
                } else
                        r = fmt(m, f);
                if (r < 0)
                        return r;
        }
}

static int fmt(sd_bus_message *m, FILE *f)
{
        const char *contents;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r <= 0)
                return r < 0 ? r : -ENODATA;
        switch (type) {
        case 'v':
                r = sd_bus_message_enter_container(m, 'v', contents);
                if (r < 0)
                        return r;
                fprintf(f, "%s:", contents);
                r = fmt(m, f);
                if (r < 0)
                        return r;
                return sd_bus_message_exit_container(m);
        case 'a':
                if (streq(contents, "y")) {
                        const uint8_t *d;
                        size_t n;
                        r = sd_bus_message_read_array(m, 'y', (const void **) &d, &n);
                        if (r < 0)
                                return r;
                        for (size_t i = 0; i < n; i++)
                                fprintf(f, "%02x", d[i]);
                        return 0;
                }
                r = sd_bus_message_enter_container(m, 'a', contents);
                if (r < 0)
                        return r;
                fputc('[', f);
                r = fmt_container_items(m, f);
                if (r < 0)
                        return r;
                fputc(']', f);
                return sd_bus_message_exit_container(m);
        case 'r':
                r = sd_bus_message_enter_container(m, 'r', contents);
                if (r < 0)
                        return r;
                fputc('(', f);
                r = fmt_container_items(m, f);
                if (r < 0)
                        return r;
                fputc(')', f);
                return sd_bus_message_exit_container(m);
        case 'b': {
                int v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fputs(v ? "true" : "false", f);
                return r;
        }
        case 'y': {
                uint8_t v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fprintf(f, "%u", (unsigned) v);
                return r;
        }
        case 'n': {
                int16_t v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fprintf(f, "%d", (int) v);
                return r;
        }
        case 'q': {
                uint16_t v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fprintf(f, "%u", (unsigned) v);
                return r;
        }
        case 'i': {
                int32_t v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fprintf(f, "%d", v);
                return r;
        }
        case 'u': {
                uint32_t v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fprintf(f, "%u", v);
                return r;
        }
        case 'd': {
                double v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fprintf(f, "%g", v);
                return r;
        }
        case 's':
        case 'o':
        case 'g': {
                const char *v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fputs(v, f);
                return r;
        }
        case 'h': {
                int v;
                r = sd_bus_message_read_basic(m, type, &v);
                if (r >= 0)
                        fputs("fd", f);
                return r;
        }
        default:
                return sd_bus_message_skip(m, NULL);
        }
}

int probe_format_value(sd_bus_message *m, char *buf, size_t size)
{
        _cleanup_free_ char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        int r;

        if (!f)
                return -ENOMEM;
        r = fmt(m, f);
        fclose(f);
        snprintf(buf, size, "%s", strempty(s));
        return r < 0 ? r : 0;
}

static const char *short_iface(const char *i)
{
        if (strneq(i, "org.bluez.", 10))
                return i + 10;
        if (strneq(i, "org.freedesktop.DBus.", 21))
                return i + 21;
        return i;
}

/* a{sv} as {K=sig:v;...} */
static int fmt_props(sd_bus_message *m, FILE *f)
{
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        fputc('{', f);
        for (bool first = true;; first = false) {
                const char *k;
                r = sd_bus_message_enter_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                r = sd_bus_message_read(m, "s", &k);
                if (r < 0)
                        return r;
                fprintf(f, "%s%s=", first ? "" : ";", k);
                r = fmt(m, f);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        fputc('}', f);
        return sd_bus_message_exit_container(m);
}

static int on_signal(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Probe *p = userdata;
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        const char *member = sd_bus_message_get_member(m), *path = sd_bus_message_get_path(m);
        int r;

        if (!f)
                return 0;
        if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded")) {
                const char *o, *iface;
                r = sd_bus_message_read(m, "o", &o);
                fprintf(f, "IA %s", o);
                if (r >= 0)
                        r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
                while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
                        r = sd_bus_message_read(m, "s", &iface);
                        if (r < 0)
                                break;
                        fprintf(f, " %s", short_iface(iface));
                        r = fmt_props(m, f);
                        if (r < 0)
                                break;
                        r = sd_bus_message_exit_container(m);
                }
        } else if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved")) {
                const char *o, *iface;
                r = sd_bus_message_read(m, "o", &o);
                fprintf(f, "IR %s ", o);
                if (r >= 0)
                        r = sd_bus_message_enter_container(m, 'a', "s");
                for (bool first = true; r >= 0 && (r = sd_bus_message_read(m, "s", &iface)) > 0;
                     first = false)
                        fprintf(f, "%s%s", first ? "" : ",", short_iface(iface));
        } else if (sd_bus_message_is_signal(m, "org.freedesktop.DBus.Properties", "PropertiesChanged")) {
                const char *iface, *inv;
                r = sd_bus_message_read(m, "s", &iface);
                fprintf(f, "PC %s %s ", path, r >= 0 ? short_iface(iface) : "?");
                if (r >= 0)
                        r = fmt_props(m, f);
                fputs(" inv=[", f);
                if (r >= 0)
                        r = sd_bus_message_enter_container(m, 'a', "s");
                for (bool first = true; r >= 0 && (r = sd_bus_message_read(m, "s", &inv)) > 0; first = false)
                        fprintf(f, "%s%s", first ? "" : ",", inv);
                fputc(']', f);
                if (p->value_cb && streq(iface, "org.bluez.GattCharacteristic1")) {
                        /* hand the raw Value to a protocol test */
                        const uint8_t *d;
                        size_t len;
                        (void) sd_bus_message_rewind(m, true);
                        if (sd_bus_message_skip(m, "s") >= 0 &&
                            sd_bus_message_enter_container(m, 'a', "{sv}") > 0) {
                                while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                                        const char *k;
                                        if (sd_bus_message_read(m, "s", &k) < 0)
                                                break;
                                        if (streq(k, "Value") &&
                                            sd_bus_message_enter_container(m, 'v', "ay") > 0 &&
                                            sd_bus_message_read_array(m, 'y', (const void **) &d, &len) >=
                                                            0) {
                                                p->value_cb(p, path, d, len);
                                                break;
                                        }
                                        if (sd_bus_message_skip(m, "v") < 0)
                                                break;
                                        (void) sd_bus_message_exit_container(m);
                                }
                        }
                }
        } else if (sd_bus_message_is_signal(m, "org.freedesktop.DBus", "NameOwnerChanged")) {
                const char *name, *o, *nw;
                r = sd_bus_message_read(m, "sss", &name, &o, &nw);
                if (r < 0 || !streq(name, "org.bluez")) {
                        fclose(f);
                        free(s);
                        return 0;
                }
                fprintf(f, "NOC org.bluez %s->%s", *o ? "owner" : "none", *nw ? "owner" : "none");
        } else
                fprintf(f, "SIG %s %s", path, member);
        fclose(f);
        record(p, s);
        return 0;
}

int probe_new(Probe **ret)
{
        Probe *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        p->verbose = getenv("SIM_TEST_VERBOSE") != NULL;
        r = sd_bus_open_system(&p->bus);
        if (r < 0)
                goto fail;
        r = sd_bus_add_match(p->bus, NULL, "type='signal',sender='org.bluez'", on_signal, p);
        if (r < 0)
                goto fail;
        r = sd_bus_add_match(p->bus, NULL,
                             "type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='"
                             "org.bluez'",
                             on_signal, p);
        if (r < 0)
                goto fail;
        *ret = p;
        return 0;
fail:
        probe_free(p);
        return r;
}

Probe *probe_free(Probe *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_ev; i++)
                free(p->ev[i]);
        free(p->ev);
        sd_bus_message_unref(p->reply);
        sd_bus_flush_close_unref(p->bus);
        for (size_t i = 0; i < p->n_pending; i++)
                free(p->pending[i]);
        free(p->pending);
        free(p);
        return NULL;
}

static void pump_once(Probe *p, uint64_t deadline)
{
        int r = sd_bus_process(p->bus, NULL);
        if (r > 0)
                return;
        uint64_t n = now_usec();
        if (n < deadline)
                (void) sd_bus_wait(p->bus, deadline - n);
}

void probe_run(Probe *p, uint64_t usec)
{
        uint64_t deadline = now_usec() + usec;
        while (now_usec() < deadline)
                pump_once(p, deadline);
}

int probe_find(Probe *p, size_t from, const char *needle)
{
        for (size_t i = from; i < p->n_ev; i++)
                if (strstr(p->ev[i], needle))
                        return (int) i;
        return -1;
}

size_t probe_count(Probe *p, size_t from, const char *needle)
{
        size_t n = 0;
        for (size_t i = from; i < p->n_ev; i++)
                if (strstr(p->ev[i], needle))
                        n++;
        return n;
}

size_t probe_mark(Probe *p)
{
        return p->n_ev;
}

void probe_dump(Probe *p, size_t from)
{
        for (size_t i = from; i < p->n_ev; i++)
                fprintf(stderr, "    [%zu] %s\n", i, p->ev[i]);
}

static int find2(Probe *p, size_t from, const char *a, const char *b)
{
        for (size_t i = from; i < p->n_ev; i++)
                if (strstr(p->ev[i], a) && strstr(p->ev[i], b))
                        return (int) i;
        return -1;
}

int probe_wait2(Probe *p, size_t from, const char *a, const char *b, uint64_t usec)
{
        uint64_t deadline = now_usec() + usec;
        int i;

        while ((i = find2(p, from, a, b)) < 0 && now_usec() < deadline)
                pump_once(p, deadline);
        return i;
}

int probe_wait(Probe *p, size_t from, const char *needle, uint64_t usec)
{
        uint64_t deadline = now_usec() + usec;
        int i;

        while ((i = probe_find(p, from, needle)) < 0 && now_usec() < deadline)
                pump_once(p, deadline);
        return i;
}

typedef struct Pending {
        Probe *p;
        char member[64];
        bool done;
        int result;
} Pending;

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Pending *pd = userdata;
        Probe *p = pd->p;
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);
                fprintf(f, "ERROR %s %s %s", pd->member, e->name, strempty(e->message));
                pd->result = -EIO;
                if (pd->done == false) {
                        snprintf(p->err_name, sizeof(p->err_name), "%s", e->name);
                        snprintf(p->err_msg, sizeof(p->err_msg), "%s", strempty(e->message));
                }
        } else {
                fprintf(f, "REPLY %s", pd->member);
                while (sd_bus_message_at_end(m, false) == 0) {
                        fputc(' ', f);
                        if (fmt(m, f) < 0)
                                break;
                }
                (void) sd_bus_message_rewind(m, true);
                pd->result = 0;
        }
        fclose(f);
        record(p, s);
        sd_bus_message_unref(p->reply);
        p->reply = sd_bus_message_ref(m);
        pd->done = true;
        return 0;
}

int probe_send(Probe *p, sd_bus_message *m, uint64_t timeout, const char *member)
{
        bool wait = timeout > 0;
        Pending *pd;
        uint64_t deadline;
        int r;

        if (!wait)
                timeout = 30 * USEC_PER_SEC;
        pd = calloc(1, sizeof(*pd));
        if (!pd)
                return -ENOMEM;
        pd->p = p;
        snprintf(pd->member, sizeof(pd->member), "%s", member);
        p->err_name[0] = p->err_msg[0] = 0;
        p->pending = realloc(p->pending, (p->n_pending + 1) * sizeof(void *));
        if (!p->pending)
                abort();
        p->pending[p->n_pending++] = pd;
        r = sd_bus_call_async(p->bus, NULL, m, on_reply, pd, timeout);
        if (r < 0)
                return r;
        if (!wait)
                return 0;
        deadline = now_usec() + timeout + USEC_PER_SEC;
        while (!pd->done && now_usec() < deadline)
                pump_once(p, deadline);
        if (!pd->done)
                return -ETIMEDOUT;
        return pd->result;
}

static int call_v(Probe *p, bool wait, uint64_t timeout, const char *dest, const char *path,
                  const char *iface, const char *member, const char *types, va_list ap)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(p->bus, &m, dest, path, iface, member);
        if (r < 0)
                return r;
        if (types) {
                r = sd_bus_message_appendv(m, types, ap);
                if (r < 0)
                        return r;
        }
        if (!wait) {
                /* async calls keep their own timeout */
                int q = probe_send(p, m, 0, member);
                (void) timeout;
                return q;
        }
        return probe_send(p, m, timeout, member);
}

int probe_call(Probe *p, uint64_t timeout, const char *path, const char *iface, const char *member,
               const char *types, ...)
{
        va_list ap;
        int r;
        va_start(ap, types);
        r = call_v(p, true, timeout, "org.bluez", path, iface, member, types, ap);
        va_end(ap);
        return r;
}

int probe_call_async(Probe *p, uint64_t timeout, const char *path, const char *iface, const char *member,
                     const char *types, ...)
{
        va_list ap;
        int r;
        va_start(ap, types);
        r = call_v(p, false, timeout, "org.bluez", path, iface, member, types, ap);
        va_end(ap);
        return r;
}

int probe_get(Probe *p, const char *path, const char *iface, const char *prop, char *buf, size_t size)
{
        int r = probe_call(p, 5 * USEC_PER_SEC, path, "org.freedesktop.DBus.Properties", "Get", "ss", iface,
                           prop);
        if (r < 0)
                return r;
        return probe_format_value(p->reply, buf, size);
}

int probe_set_bool(Probe *p, const char *path, const char *iface, const char *prop, bool v)
{
        return probe_call(p, 5 * USEC_PER_SEC, path, "org.freedesktop.DBus.Properties", "Set", "ssv", iface,
                          prop, "b", v);
}

int probe_ctl(Probe *p, const char *lock, const char *method, const char *types, ...)
{
        char path[128];
        va_list ap;
        int r;

        if (lock)
                snprintf(path, sizeof(path), "/org/lockhub/sim/%s", lock);
        else
                snprintf(path, sizeof(path), "/org/lockhub/sim");
        va_start(ap, types);
        r = call_v(p, true, 10 * USEC_PER_SEC, "org.lockhub.Sim", path,
                   lock ? "org.lockhub.Sim1" : "org.lockhub.SimHub1", method, types, ap);
        va_end(ap);
        return r;
}

int probe_ctl_get(Probe *p, const char *lock, const char *prop, char *buf, size_t size)
{
        char path[128];
        int r;

        snprintf(path, sizeof(path), "/org/lockhub/sim/%s", lock ? lock : "");
        if (!lock)
                path[strlen(path) - 1] = 0;
        p->reply = sd_bus_message_unref(p->reply);
        r = sd_bus_call_method(p->bus, "org.lockhub.Sim", path, "org.freedesktop.DBus.Properties", "Get",
                               NULL, &p->reply, "ss", lock ? "org.lockhub.Sim1" : "org.lockhub.SimHub1",
                               prop);
        if (r < 0)
                return r;
        r = probe_format_value(p->reply, buf, size);
        p->reply = sd_bus_message_unref(p->reply);
        /* drop the variant's "sig:" prefix: callers want the plain value */
        {
                char *c = strchr(buf, ':');
                if (c)
                        memmove(buf, c + 1, strlen(c + 1) + 1);
        }
        return r;
}

bool probe_check(Probe *p, bool ok, const char *fmt_, ...)
{
        va_list ap;

        p->checks++;
        if (!ok)
                p->failed++;
        fputs(ok ? "  ok: " : "  NOT OK: ", stdout);
        va_start(ap, fmt_);
        vprintf(fmt_, ap);
        va_end(ap);
        if (!ok && p->err_name[0])
                printf(" (last error: %s %s)", p->err_name, p->err_msg);
        putchar('\n');
        fflush(stdout);
        return ok;
}
