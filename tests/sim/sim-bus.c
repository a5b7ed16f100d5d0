/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gdbus-like object layer for the fake bluetoothd; the semantics are listed in
 * sim-bus.h.
 *
 * Data structures: objects live in one list in creation order (so parents come before
 * children when we iterate). A FIFO "queue" holds the work for the next flush: either
 * a live object (its not yet announced interfaces and dirty properties are sent) or a
 * detached removal record (path and interface names of a freed object). A queued
 * object is in the FIFO at most once; freeing it turns its entry into a removal record,
 * or drops it when nothing of it had been announced.
 *
 * Every method call of the connection arrives at one fallback registered at `/`, which
 * does the dispatch itself, so sd-bus never answers on our behalf (except for
 * org.freedesktop.DBus.Peer, as bluetoothd's libdbus does).
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "sim-bus.h"

#define OBJ_MAX_IFACES       6
#define IFACE_INTROSPECTABLE "org.freedesktop.DBus.Introspectable"
#define IFACE_PROPERTIES     "org.freedesktop.DBus.Properties"
#define IFACE_OM             "org.freedesktop.DBus.ObjectManager"

typedef struct IfaceEntry {
        const SimInterface *iface;
        void *data;
        bool announced;
        uint64_t dirty;
} IfaceEntry;

struct SimObj {
        SimBus *bus;
        char *path;
        IfaceEntry ifaces[OBJ_MAX_IFACES];
        size_t n_ifaces;
        bool queued;
        SimObj *prev, *next;
};

typedef struct QueueEntry {
        SimObj *obj;  /* live object, or NULL for a removal record */
        char *path;   /* removal record */
        char **names; /* removal record, NULL-terminated */
} QueueEntry;

struct SimBus {
        sd_bus *bus;
        sd_event *event;
        sd_bus_slot *fallback;
        sd_event_source *defer;
        SimObj *first, *last;
        QueueEntry *queue;
        size_t n_queue, queue_alloc;
        bool flushing;
};

static SimBus *current;

SimBus *sim_bus_current(void)
{
        return current;
}

sd_bus *sim_bus_get(SimBus *b)
{
        return b ? b->bus : NULL;
}

static void queue_entry_done(QueueEntry *e)
{
        free(e->path);
        if (e->names)
                for (char **n = e->names; *n; n++)
                        free(*n);
        free(e->names);
        *e = (QueueEntry){ 0 };
}

static int defer_handler(sd_event_source *s, void *userdata)
{
        sim_bus_flush(userdata);
        return 0;
}

static void queue_arm(SimBus *b)
{
        if (b->defer)
                (void) sd_event_source_set_enabled(b->defer, SD_EVENT_ONESHOT);
}

static QueueEntry *queue_push(SimBus *b)
{
        if (b->n_queue == b->queue_alloc) {
                size_t n = b->queue_alloc ? b->queue_alloc * 2 : 64;
                QueueEntry *q = realloc(b->queue, n * sizeof(*q));
                if (!q)
                        abort();
                b->queue = q;
                b->queue_alloc = n;
        }
        b->queue[b->n_queue] = (QueueEntry){ 0 };
        queue_arm(b);
        return &b->queue[b->n_queue++];
}

static void obj_queue(SimObj *o)
{
        if (o->queued)
                return;
        o->queued = true;
        queue_push(o->bus)->obj = o;
}

SimObj *sim_obj_new(SimBus *b, const char *path)
{
        SimObj *o = calloc(1, sizeof(*o));
        if (!o)
                abort();
        o->bus = b;
        o->path = strdup(path);
        if (!o->path)
                abort();
        o->prev = b->last;
        if (b->last)
                b->last->next = o;
        else
                b->first = o;
        b->last = o;
        return o;
}

const char *sim_obj_path(const SimObj *o)
{
        return o->path;
}

static bool obj_announced(const SimObj *o)
{
        for (size_t i = 0; i < o->n_ifaces; i++)
                if (o->ifaces[i].announced)
                        return true;
        return false;
}

SimObj *sim_obj_free(SimObj *o)
{
        SimBus *b;

        if (!o)
                return NULL;
        b = o->bus;

        if (o->queued)
                for (size_t i = 0; i < b->n_queue; i++)
                        if (b->queue[i].obj == o)
                                b->queue[i].obj = NULL; /* becomes an empty record */

        if (obj_announced(o)) {
                QueueEntry *e = queue_push(b);
                size_t k = 0;

                e->path = strdup(o->path);
                e->names = calloc(o->n_ifaces + 3, sizeof(char *));
                if (!e->path || !e->names)
                        abort();
                /* bluetoothd lists them in this order (interfaces are prepended) */
                e->names[k++] = strdup(IFACE_PROPERTIES);
                e->names[k++] = strdup(IFACE_INTROSPECTABLE);
                for (size_t i = o->n_ifaces; i > 0; i--)
                        if (o->ifaces[i - 1].announced)
                                e->names[k++] = strdup(o->ifaces[i - 1].iface->name);
        }

        if (o->prev)
                o->prev->next = o->next;
        else
                b->first = o->next;
        if (o->next)
                o->next->prev = o->prev;
        else
                b->last = o->prev;
        free(o->path);
        free(o);
        return NULL;
}

int sim_obj_add_iface(SimObj *o, const SimInterface *iface, void *data)
{
        if (o->n_ifaces >= OBJ_MAX_IFACES)
                return -E2BIG;
        o->ifaces[o->n_ifaces++] = (IfaceEntry){ .iface = iface, .data = data };
        obj_queue(o);
        return 0;
}

static IfaceEntry *obj_find_iface(SimObj *o, const char *name)
{
        for (size_t i = 0; i < o->n_ifaces; i++)
                if (streq(o->ifaces[i].iface->name, name))
                        return &o->ifaces[i];
        return NULL;
}

static const SimProperty *iface_find_prop(const SimInterface *iface, const char *name, size_t *idx)
{
        if (!iface->props)
                return NULL;
        for (size_t i = 0; iface->props[i].name; i++)
                if (streq(iface->props[i].name, name)) {
                        if (idx)
                                *idx = i;
                        return &iface->props[i];
                }
        return NULL;
}

void sim_obj_changed(SimObj *o, const char *iface, const char *prop)
{
        IfaceEntry *e = obj_find_iface(o, iface);
        size_t idx;

        if (!e || !iface_find_prop(e->iface, prop, &idx)) {
                log_error("BUG: unknown property %s.%s on %s", iface, prop, o->path);
                abort();
        }
        if (!e->announced)
                return; /* folded into InterfacesAdded */
        e->dirty |= UINT64_C(1) << idx;
        obj_queue(o);
}

static bool prop_exists(const SimProperty *p, void *data)
{
        return !p->exists || p->exists(data);
}

static int append_prop_value(sd_bus_message *m, const SimProperty *p, void *data)
{
        int r = sd_bus_message_open_container(m, 'v', p->sig);
        if (r < 0)
                return r;
        r = p->get(data, m);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

/* a{sv} of every existing property */
static int append_all_props(sd_bus_message *m, const SimInterface *iface, void *data)
{
        int r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; iface->props && iface->props[i].name; i++) {
                const SimProperty *p = &iface->props[i];
                if (!prop_exists(p, data))
                        continue;
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                r = sd_bus_message_append(m, "s", p->name);
                if (r < 0)
                        return r;
                r = append_prop_value(m, p, data);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

static int append_empty_iface(sd_bus_message *m, const char *name)
{
        return sd_bus_message_append(m, "{sa{sv}}", name, 0);
}

static int append_iface_entry(sd_bus_message *m, const IfaceEntry *e)
{
        int r = sd_bus_message_open_container(m, 'e', "sa{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", e->iface->name);
        if (r < 0)
                return r;
        r = append_all_props(m, e->iface, e->data);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int send_raw(SimBus *b, sd_bus_message *m)
{
        int r = sd_bus_send(b->bus, m, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to send message: %m");
        return r;
}

static int emit_added(SimBus *b, SimObj *o)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        bool first = !obj_announced(o);
        int r;

        r = sd_bus_message_new_signal(b->bus, &m, "/", IFACE_OM, "InterfacesAdded");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "o", o->path);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        if (first) {
                r = append_empty_iface(m, IFACE_INTROSPECTABLE);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < o->n_ifaces; i++) {
                IfaceEntry *e = &o->ifaces[i];
                if (e->announced)
                        continue;
                r = append_iface_entry(m, e);
                if (r < 0)
                        return r;
                e->announced = true;
                e->dirty = 0;
        }
        if (first) {
                r = append_empty_iface(m, IFACE_PROPERTIES);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return send_raw(b, m);
}

static int emit_props_changed(SimBus *b, SimObj *o, IfaceEntry *e)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        const SimProperty *props = e->iface->props;
        uint64_t dirty = e->dirty;
        int r;

        e->dirty = 0;
        r = sd_bus_message_new_signal(b->bus, &m, o->path, IFACE_PROPERTIES, "PropertiesChanged");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "s", e->iface->name);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; props[i].name; i++) {
                if (!(dirty & (UINT64_C(1) << i)) || !prop_exists(&props[i], e->data))
                        continue;
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r < 0)
                        return r;
                r = sd_bus_message_append(m, "s", props[i].name);
                if (r < 0)
                        return r;
                r = append_prop_value(m, &props[i], e->data);
                if (r < 0)
                        return r;
                r = sd_bus_message_close_container(m);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(m, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; props[i].name; i++) {
                if (!(dirty & (UINT64_C(1) << i)) || prop_exists(&props[i], e->data))
                        continue;
                r = sd_bus_message_append(m, "s", props[i].name);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(m);
        if (r < 0)
                return r;
        return send_raw(b, m);
}

static int emit_removed(SimBus *b, const char *path, char **names)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_signal(b->bus, &m, "/", IFACE_OM, "InterfacesRemoved");
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "o", path);
        if (r < 0)
                return r;
        r = sd_bus_message_append_strv(m, names);
        if (r < 0)
                return r;
        return send_raw(b, m);
}

void sim_bus_flush(SimBus *b)
{
        if (!b || b->flushing)
                return;
        b->flushing = true;
        /* entries may be appended while we walk (a getter never does that, but be safe) */
        for (size_t i = 0; i < b->n_queue; i++) {
                QueueEntry *e = &b->queue[i];
                if (e->obj) {
                        SimObj *o = e->obj;
                        bool pending_add = false;

                        o->queued = false;
                        for (size_t k = 0; k < o->n_ifaces; k++)
                                if (!o->ifaces[k].announced)
                                        pending_add = true;
                        if (pending_add)
                                (void) emit_added(b, o);
                        for (size_t k = 0; k < o->n_ifaces; k++)
                                if (o->ifaces[k].dirty)
                                        (void) emit_props_changed(b, o, &o->ifaces[k]);
                } else if (e->path)
                        (void) emit_removed(b, e->path, e->names);
                queue_entry_done(&b->queue[i]);
        }
        b->n_queue = 0;
        b->flushing = false;
        if (b->defer)
                (void) sd_event_source_set_enabled(b->defer, SD_EVENT_OFF);
}

int sim_bus_send(SimBus *b, sd_bus_message *m)
{
        sim_bus_flush(b);
        return send_raw(b, m);
}

int sim_reply(sd_bus_message *call, const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!current || sd_bus_message_get_bus(call) != current->bus)
                return 0; /* the connection it came from is gone */
        r = sd_bus_message_new_method_return(call, &m);
        if (r < 0)
                return r;
        if (types) {
                va_list ap;
                va_start(ap, types);
                r = sd_bus_message_appendv(m, types, ap);
                va_end(ap);
                if (r < 0)
                        return r;
        }
        return sim_bus_send(current, m);
}

int sim_reply_error(sd_bus_message *call, const char *name, const char *fmt, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *text = NULL;
        va_list ap;
        int r;

        if (!current || sd_bus_message_get_bus(call) != current->bus)
                return 0;
        va_start(ap, fmt);
        r = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        r = sd_bus_message_new_method_error(call, &m, &SD_BUS_ERROR_MAKE_CONST(name, text));
        if (r < 0)
                return r;
        return sim_bus_send(current, m);
}

int sim_emit(SimBus *b, const char *path, const char *iface, const char *member, const char *types, ...)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_signal(b->bus, &m, path, iface, member);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        return sim_bus_send(b, m);
}

static SimObj *find_obj(SimBus *b, const char *path)
{
        for (SimObj *o = b->first; o; o = o->next)
                if (streq(o->path, path))
                        return o;
        return NULL;
}

/* ---- standard interfaces ---- */

static int reply_unknown_method(sd_bus_message *m)
{
        return sim_reply_error(m, "org.freedesktop.DBus.Error.UnknownMethod",
                               "Method \"%s\" with signature \"%s\" on interface \"%s\" doesn't exist\n",
                               sd_bus_message_get_member(m), strempty(sd_bus_message_get_signature(m, true)),
                               strna(sd_bus_message_get_interface(m)));
}

static int handle_get(SimBus *b, SimObj *o, sd_bus_message *m)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *iname, *pname;
        const SimProperty *p;
        IfaceEntry *e;
        int r;

        r = sd_bus_message_read(m, "ss", &iname, &pname);
        if (r < 0)
                return r;
        e = obj_find_iface(o, iname);
        if (!e)
                return sim_reply_error(m, "org.freedesktop.DBus.Error.InvalidArgs", "No such interface '%s'",
                                       iname);
        p = iface_find_prop(e->iface, pname, NULL);
        if (!p || !prop_exists(p, e->data))
                return sim_reply_error(m, "org.freedesktop.DBus.Error.InvalidArgs", "No such property '%s'",
                                       pname);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = append_prop_value(reply, p, e->data);
        if (r < 0)
                return r;
        return sim_bus_send(b, reply);
}

static int handle_get_all(SimBus *b, SimObj *o, sd_bus_message *m)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *iname;
        IfaceEntry *e;
        int r;

        r = sd_bus_message_read(m, "s", &iname);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        e = obj_find_iface(o, iname);
        if (e) {
                r = append_all_props(reply, e->iface, e->data);
        } else if (streq(iname, IFACE_INTROSPECTABLE) || streq(iname, IFACE_PROPERTIES)) {
                r = sd_bus_message_append(reply, "a{sv}", 0);
        } else
                return sim_reply_error(m, "org.freedesktop.DBus.Error.InvalidArgs", "No such interface '%s'",
                                       iname);
        if (r < 0)
                return r;
        return sim_bus_send(b, reply);
}

static int handle_set(SimObj *o, sd_bus_message *m)
{
        const char *iname, *pname, *contents;
        const SimProperty *p;
        IfaceEntry *e;
        char type;
        int r;

        r = sd_bus_message_read(m, "ss", &iname, &pname);
        if (r < 0)
                return r;
        e = obj_find_iface(o, iname);
        if (!e)
                return sim_reply_error(m, "org.freedesktop.DBus.Error.InvalidArgs", "No such interface '%s'",
                                       iname);
        p = iface_find_prop(e->iface, pname, NULL);
        if (!p || !prop_exists(p, e->data))
                return sim_reply_error(m, "org.freedesktop.DBus.Error.UnknownProperty",
                                       "No such property '%s'", pname);
        if (!p->set)
                return sim_reply_error(m, "org.freedesktop.DBus.Error.PropertyReadOnly",
                                       "Property '%s' is not writable", pname);
        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type != 'v' || !streq(contents, p->sig))
                return sim_reply_error(m, "org.freedesktop.DBus.Error.InvalidSignature",
                                       "Invalid signature for '%s'", pname);
        r = sd_bus_message_enter_container(m, 'v', p->sig);
        if (r < 0)
                return r;
        return p->set(e->data, m);
}

static int append_object(sd_bus_message *reply, SimObj *o)
{
        int r = sd_bus_message_open_container(reply, 'e', "oa{sa{sv}}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "o", o->path);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{sa{sv}}");
        if (r < 0)
                return r;
        r = append_empty_iface(reply, IFACE_INTROSPECTABLE);
        if (r < 0)
                return r;
        for (size_t i = 0; i < o->n_ifaces; i++) {
                r = append_iface_entry(reply, &o->ifaces[i]);
                if (r < 0)
                        return r;
        }
        r = append_empty_iface(reply, IFACE_PROPERTIES);
        if (r < 0)
                return r;
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int handle_get_managed_objects(SimBus *b, sd_bus_message *m)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                return r;
        for (SimObj *o = b->first; o; o = o->next) {
                if (streq(o->path, "/"))
                        continue;
                r = append_object(reply, o);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sim_bus_send(b, reply);
}

/* ---- introspection ---- */

static void xml_args(FILE *f, const char *sig, const char *dir)
{
        const char *p = sig;

        while (p && *p) {
                size_t l = 0;
                /* one complete type */
                int depth = 0;
                do {
                        char c = p[l++];
                        if (c == '(' || c == '{')
                                depth++;
                        else if (c == ')' || c == '}')
                                depth--;
                        else if (c == 'a') {
                                continue;
                        }
                } while (p[l] && (depth > 0 || p[l - 1] == 'a'));
                fprintf(f, "      <arg type=\"%.*s\" direction=\"%s\"/>\n", (int) l, p, dir);
                p += l;
        }
}

static int introspect(SimBus *b, const char *path, SimObj *o, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, plen = strlen(path);
        char **children = NULL;
        size_t n_children = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs("<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
              "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n",
              f);
        if (o) {
                fputs("  <interface name=\"org.freedesktop.DBus.Introspectable\">\n"
                      "    <method name=\"Introspect\"><arg name=\"xml\" type=\"s\" direction=\"out\"/>"
                      "</method>\n  </interface>\n",
                      f);
                if (streq(path, "/"))
                        fputs("  <interface name=\"org.freedesktop.DBus.ObjectManager\">\n"
                              "    <method name=\"GetManagedObjects\"><arg type=\"a{oa{sa{sv}}}\" "
                              "direction=\"out\"/></method>\n"
                              "    <signal name=\"InterfacesAdded\"><arg type=\"o\"/><arg "
                              "type=\"a{sa{sv}}\"/></signal>\n"
                              "    <signal name=\"InterfacesRemoved\"><arg type=\"o\"/><arg "
                              "type=\"as\"/></signal>\n  </interface>\n",
                              f);
                for (size_t i = 0; i < o->n_ifaces; i++) {
                        const SimInterface *it = o->ifaces[i].iface;
                        fprintf(f, "  <interface name=\"%s\">\n", it->name);
                        for (size_t k = 0; it->methods && it->methods[k].name; k++) {
                                fprintf(f, "    <method name=\"%s\">\n", it->methods[k].name);
                                xml_args(f, it->methods[k].in_sig, "in");
                                xml_args(f, it->methods[k].out_sig, "out");
                                fputs("    </method>\n", f);
                        }
                        for (size_t k = 0; it->signals && it->signals[k].name; k++) {
                                fprintf(f, "    <signal name=\"%s\">\n", it->signals[k].name);
                                xml_args(f, it->signals[k].sig, "out");
                                fputs("    </signal>\n", f);
                        }
                        for (size_t k = 0; it->props && it->props[k].name; k++)
                                fprintf(f, "    <property name=\"%s\" type=\"%s\" access=\"%s\"/>\n",
                                        it->props[k].name, it->props[k].sig,
                                        it->props[k].set ? "readwrite" : "read");
                        fputs("  </interface>\n", f);
                }
                if (o->n_ifaces > 0)
                        fputs("  <interface name=\"org.freedesktop.DBus.Properties\">\n"
                              "    <method name=\"Get\"><arg type=\"s\" direction=\"in\"/><arg type=\"s\" "
                              "direction=\"in\"/><arg type=\"v\" direction=\"out\"/></method>\n"
                              "    <method name=\"Set\"><arg type=\"s\" direction=\"in\"/><arg type=\"s\" "
                              "direction=\"in\"/><arg type=\"v\" direction=\"in\"/></method>\n"
                              "    <method name=\"GetAll\"><arg type=\"s\" direction=\"in\"/><arg "
                              "type=\"a{sv}\" direction=\"out\"/></method>\n"
                              "    <signal name=\"PropertiesChanged\"><arg type=\"s\"/><arg "
                              "type=\"a{sv}\"/><arg type=\"as\"/></signal>\n  </interface>\n",
                              f);
        }
        /* direct children: the next path component of every object below us */
        for (SimObj *c = b->first; c; c = c->next) {
                const char *rest, *slash;
                bool dup = false;
                size_t l;

                if (streq(path, "/"))
                        rest = c->path + 1;
                else if (strneq(c->path, path, plen) && c->path[plen] == '/')
                        rest = c->path + plen + 1;
                else
                        continue;
                if (!*rest)
                        continue;
                slash = strchr(rest, '/');
                l = slash ? (size_t) (slash - rest) : strlen(rest);
                for (size_t i = 0; i < n_children; i++)
                        if (strlen(children[i]) == l && strneq(children[i], rest, l))
                                dup = true;
                if (dup)
                        continue;
                children = realloc(children, (n_children + 1) * sizeof(char *));
                if (!children)
                        abort();
                children[n_children] = strndup(rest, l);
                fprintf(f, "  <node name=\"%s\"/>\n", children[n_children]);
                n_children++;
        }
        for (size_t i = 0; i < n_children; i++)
                free(children[i]);
        free(children);
        fputs("</node>\n", f);
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

static bool is_prefix_of_object(SimBus *b, const char *path)
{
        size_t l = strlen(path);
        for (SimObj *c = b->first; c; c = c->next)
                if (streq(path, "/") || (strneq(c->path, path, l) && c->path[l] == '/'))
                        return true;
        return false;
}

static int dispatch(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        SimBus *b = userdata;
        const char *path = sd_bus_message_get_path(m), *iface = sd_bus_message_get_interface(m),
                   *member = sd_bus_message_get_member(m);
        SimObj *o;
        int r;

        if (!sd_bus_message_is_method_call(m, NULL, NULL))
                return 0;
        if (iface && streq(iface, "org.freedesktop.DBus.Peer"))
                return 0;

        o = find_obj(b, path);
        if (!o) {
                if (iface && streq(iface, IFACE_INTROSPECTABLE) && streq(member, "Introspect") &&
                    is_prefix_of_object(b, path)) {
                        _cleanup_free_ char *xml = NULL;
                        r = introspect(b, path, NULL, &xml);
                        if (r < 0)
                                return r;
                        return sim_reply(m, "s", xml) < 0 ? -EIO : 1;
                }
                (void) sim_reply_error(m, "org.freedesktop.DBus.Error.UnknownObject",
                                       "No such object path '%s'", path);
                return 1;
        }

        if (!iface || streq(iface, IFACE_INTROSPECTABLE)) {
                if (streq(member, "Introspect") && sd_bus_message_has_signature(m, "")) {
                        _cleanup_free_ char *xml = NULL;
                        r = introspect(b, path, o, &xml);
                        if (r < 0)
                                return r;
                        (void) sim_reply(m, "s", xml);
                        return 1;
                }
        }
        if (!iface || streq(iface, IFACE_PROPERTIES)) {
                if (streq(member, "Get") && sd_bus_message_has_signature(m, "ss"))
                        r = handle_get(b, o, m);
                else if (streq(member, "GetAll") && sd_bus_message_has_signature(m, "s"))
                        r = handle_get_all(b, o, m);
                else if (streq(member, "Set") && sd_bus_message_has_signature(m, "ssv"))
                        r = handle_set(o, m);
                else if (iface)
                        return reply_unknown_method(m), 1;
                else
                        goto own;
                if (r < 0)
                        (void) sim_reply_error(m, "org.bluez.Error.Failed", "%s", strerror(-r));
                return 1;
        }
        if (streq(iface, IFACE_OM)) {
                if (streq(path, "/") && streq(member, "GetManagedObjects") &&
                    sd_bus_message_has_signature(m, ""))
                        (void) handle_get_managed_objects(b, m);
                else
                        (void) reply_unknown_method(m);
                return 1;
        }

own:
        for (size_t i = 0; i < o->n_ifaces; i++) {
                const SimInterface *it = o->ifaces[i].iface;
                if (iface && !streq(iface, it->name))
                        continue;
                for (size_t k = 0; it->methods && it->methods[k].name; k++) {
                        const SimMethod *me = &it->methods[k];
                        if (!streq(me->name, member))
                                continue;
                        if (!sd_bus_message_has_signature(m, me->in_sig))
                                break;
                        r = me->handler(m, o->ifaces[i].data);
                        if (r < 0)
                                (void) sim_reply_error(m, "org.bluez.Error.Failed", "%s", strerror(-r));
                        return 1;
                }
        }
        (void) reply_unknown_method(m);
        return 1;
}

int sim_bus_new(sd_bus *bus, sd_event *event, SimBus **ret)
{
        SimBus *b;
        int r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->bus = sd_bus_ref(bus);
        b->event = sd_event_ref(event);
        r = sd_bus_add_fallback(bus, &b->fallback, "/", dispatch, b);
        if (r < 0)
                goto fail;
        r = sd_event_add_defer(event, &b->defer, defer_handler, b);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_enabled(b->defer, SD_EVENT_OFF);
        /* after everything else that is ready in this iteration, like gdbus's idle */
        (void) sd_event_source_set_priority(b->defer, SD_EVENT_PRIORITY_IDLE);
        current = b;
        *ret = b;
        return 0;
fail:
        sim_bus_free(b);
        return r;
}

SimBus *sim_bus_free(SimBus *b)
{
        if (!b)
                return NULL;
        for (size_t i = 0; i < b->n_queue; i++)
                queue_entry_done(&b->queue[i]);
        free(b->queue);
        while (b->first) {
                SimObj *o = b->first;
                b->first = o->next;
                free(o->path);
                free(o);
        }
        sd_bus_slot_unref(b->fallback);
        sd_event_source_disable_unref(b->defer);
        sd_bus_unref(b->bus);
        sd_event_unref(b->event);
        if (current == b)
                current = NULL;
        free(b);
        return NULL;
}
