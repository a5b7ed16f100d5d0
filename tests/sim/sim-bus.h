/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A small object layer with the semantics of BlueZ's gdbus/object.c, because the
 * client-visible behaviour of bluetoothd comes from there and sd-bus's own object
 * machinery differs in exactly the places a client can trip over:
 *
 *  - optional properties: a property whose exists() is false is left out of GetAll and
 *    InterfacesAdded, Get answers InvalidArgs "No such property", and a change to it is
 *    reported in `invalidated`;
 *  - batching: property changes and added interfaces are queued and flushed from an
 *    idle (defer) source, one PropertiesChanged per object and interface, added
 *    interfaces folded into one InterfacesAdded with current values; an interface added
 *    and removed before the flush produces nothing;
 *  - any method reply or explicit signal sent through sim_bus_send() flushes the queue
 *    first, so signals queued before a reply always arrive before it;
 *  - InterfacesAdded carries empty Introspectable/Properties entries around the real
 *    ones, InterfacesRemoved lists them too; only `/` has an ObjectManager;
 *  - every error name is the one libdbus/gdbus would send (UnknownObject, UnknownMethod
 *    with the libdbus text, InvalidArgs, UnknownProperty, PropertyReadOnly,
 *    InvalidSignature).
 *
 * One SimBus per connection that owns org.bluez. It does not own the objects' data:
 * the interface tables point at callbacks that get the `data` pointer given to
 * sim_obj_add_iface().
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

typedef struct SimBus SimBus;
typedef struct SimObj SimObj;

/* Appends the property's value (the variant is already open with `sig`). */
typedef int (*sim_prop_get_t)(void *data, sd_bus_message *reply);
typedef bool (*sim_prop_exists_t)(void *data);
/* `call` is positioned inside the variant. The setter replies (possibly later) with
 * sim_reply()/sim_reply_error(); a negative return without a reply sends Failed. */
typedef int (*sim_prop_set_t)(void *data, sd_bus_message *call);
/* Method handler: replies now or later; a negative return without a reply sends
 * org.bluez.Error.Failed with strerror. */
typedef int (*sim_method_t)(sd_bus_message *call, void *data);

typedef struct SimProperty {
        const char *name;
        const char *sig;
        sim_prop_get_t get;
        sim_prop_exists_t exists; /* NULL: always there */
        sim_prop_set_t set;       /* NULL: read-only */
} SimProperty;

typedef struct SimMethod {
        const char *name;
        const char *in_sig;
        const char *out_sig;
        sim_method_t handler;
} SimMethod;

typedef struct SimSignal {
        const char *name;
        const char *sig;
} SimSignal;

typedef struct SimInterface {
        const char *name;
        const SimMethod *methods; /* terminated by { NULL } */
        const SimProperty *props; /* terminated by { NULL }, at most 64 */
        const SimSignal *signals; /* terminated by { NULL }, may be NULL */
} SimInterface;

/* Creates the layer on an already started bus connection; registers the fallback at /. */
int sim_bus_new(sd_bus *bus, sd_event *event, SimBus **ret);
/* Frees every object without sending anything (what a crash looks like). */
SimBus *sim_bus_free(SimBus *b);
sd_bus *sim_bus_get(SimBus *b);

/* Sends queued object-manager and property signals now. */
void sim_bus_flush(SimBus *b);
/* Flush, then send m (a reply or a signal). Errors on a dead bus are ignored. */
int sim_bus_send(SimBus *b, sd_bus_message *m);

/* Objects. Parents must be created before children. sim_obj_free() queues
 * InterfacesRemoved for what was announced. */
SimObj *sim_obj_new(SimBus *b, const char *path);
SimObj *sim_obj_free(SimObj *o);
const char *sim_obj_path(const SimObj *o);
int sim_obj_add_iface(SimObj *o, const SimInterface *iface, void *data);
/* Marks a property changed; it is signalled (or folded into a pending InterfacesAdded)
 * at the next flush. Unknown names abort: that is a bug in the caller. */
void sim_obj_changed(SimObj *o, const char *iface, const char *prop);

/* Replies through the queue (flush first). */
int sim_reply(sd_bus_message *call, const char *types, ...);
int sim_reply_error(sd_bus_message *call, const char *name, const char *fmt, ...)
                __attribute__((format(printf, 3, 4)));
/* Emits a signal on `path` right away (after flushing the queue). */
int sim_emit(SimBus *b, const char *path, const char *iface, const char *member, const char *types, ...);

/* The current layer (there is at most one org.bluez connection at a time). */
SimBus *sim_bus_current(void);
