/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * A small sd-bus test client for the lockhub-sim tests: it records, in arrival order,
 * every signal org.bluez sends and the reply or error of every call it makes, as one
 * line of text each, so a test can assert what a client sees and in which order:
 *
 *   IA <path> <iface>{Prop=sig:value;...} ...        InterfacesAdded (short iface names)
 *   IR <path> name,name,...                           InterfacesRemoved
 *   PC <path> <iface> {Prop=sig:value;...} inv=[..]   PropertiesChanged
 *   NOC org.bluez <old>-><new>                        NameOwnerChanged
 *   REPLY <member> <values>                           a method return
 *   ERROR <member> <error name> <message>             an error reply
 *
 * Values print as their D-Bus signature, ':', the value: b:true, n:-58, q:23,
 * ay:0215a92e..., as:[a,b], a{qv}:[76=ay:0215...], o:/org/bluez/hci0.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

typedef struct Probe {
        sd_bus *bus;
        char **ev;
        size_t n_ev, alloc_ev;
        bool verbose;
        unsigned checks, failed;
        /* the last call */
        sd_bus_message *reply;
        char err_name[128];
        char err_msg[256];
        /* characteristic values collected for protocol tests, per path */
        void (*value_cb)(struct Probe *p, const char *path, const uint8_t *data, size_t n);
        void *userdata;
        void **pending; /* call bookkeeping, freed with the probe */
        size_t n_pending;
} Probe;

int probe_new(Probe **ret);
Probe *probe_free(Probe *p);
/* Runs the bus for up to usec, recording. */
void probe_run(Probe *p, uint64_t usec);
/* Waits until a recorded line from index `from` on contains `needle`; returns its index or -1. */
int probe_wait(Probe *p, size_t from, const char *needle, uint64_t usec);
int probe_find(Probe *p, size_t from, const char *needle);
/* Like probe_wait, for a line that contains both a and b (signals batch other properties in). */
int probe_wait2(Probe *p, size_t from, const char *a, const char *b, uint64_t usec);
size_t probe_count(Probe *p, size_t from, const char *needle);
size_t probe_mark(Probe *p);
void probe_dump(Probe *p, size_t from);
/* Calls org.bluez and waits for the answer (recorded). 0 on success, -EIO on an error
 * reply (err_name/err_msg hold it), -ETIMEDOUT. */
int probe_call(Probe *p, uint64_t timeout, const char *path, const char *iface, const char *member,
               const char *types, ...);
/* Starts a call and returns at once; the answer is recorded when it comes. */
int probe_call_async(Probe *p, uint64_t timeout, const char *path, const char *iface, const char *member,
                     const char *types, ...);
/* Sends a prepared call; timeout 0: do not wait (the answer is recorded later). */
int probe_send(Probe *p, sd_bus_message *m, uint64_t timeout, const char *member);
int probe_get(Probe *p, const char *path, const char *iface, const char *prop, char *buf, size_t size);
int probe_set_bool(Probe *p, const char *path, const char *iface, const char *prop, bool v);
/* lockhub-sim control: org.lockhub.Sim */
int probe_ctl(Probe *p, const char *lock, const char *method, const char *types, ...);
/* lock NULL: the hub object */
int probe_ctl_get(Probe *p, const char *lock, const char *prop, char *buf, size_t size);
/* Formats the next complete value of m (any type) into buf. */
int probe_format_value(sd_bus_message *m, char *buf, size_t size);

bool probe_check(Probe *p, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define CHECK(p, cond, ...) probe_check((p), (cond), __VA_ARGS__)
