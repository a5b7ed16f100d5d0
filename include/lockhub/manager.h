/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The Manager owns every object of the daemon: the event loop, the configuration,
 * the store and (in later modules) the BlueZ client, locks, MQTT and the D-Bus API.
 * main.c only parses arguments and hands them over.
 *
 * Life cycle: manager_new() → manager_start() (opens the store, arms timers and
 * signals, sends READY=1) → manager_run() (the loop) → manager_free().
 */

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "lockhub/conf.h"
#include "lockhub/lock.h"
#include "lockhub/macro.h"
#include "lockhub/mqtt-bridge.h"
#include "lockhub/store.h"

typedef struct Manager {
        sd_event *event;
        char *config_path;
        char *state_dir;
        int log_level_override; /* from --log-level, or -1: use the config's */
        Conf *conf;
        Store *store;
        SecretKey *key; /* the hub key that seals secrets in the store (src/manager-secret.c) */
        sd_bus *bus;
        struct ManagerBluez *bluez;   /* BlueZ client, drivers, pairing (src/manager-bluez.c) */
        struct CodesService *codes;   /* keypad code reconciliation (src/codes/) */
        struct ManagerHealth *health; /* recovery ladders, diagnosis (src/manager-health.c) */
        /* NULL when [MQTT] Enabled=no */
        MqttBridge *mqtt;
        Lock **locks; /* owned; paired locks, in the order they were paired */
        size_t n_locks;
        sd_event_source *retention_timer;
        sd_event_source *retention_defer;
        unsigned long long reloads;
} Manager;

/* Exit codes of lockhubd, documented in lockhubd(8). */
enum {
        LOCKHUBD_EXIT_FAILURE = 1,   /* runtime failure */
        LOCKHUBD_EXIT_USAGE = 2,     /* bad command line */
        LOCKHUBD_EXIT_CONFIG = 6,    /* invalid configuration, or no usable hub key (LSB "not configured") */
        LOCKHUBD_EXIT_DATABASE = 65, /* database refused: newer schema, corrupt, not a database, sealed
                                        with another key */
};

/* Takes copies of the paths. Loads the configuration (logging every problem). */
int manager_new(const char *config_path, const char *state_dir, int log_level_override, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

int manager_start(Manager *m);
/* Runs the loop until SIGTERM/SIGINT; returns 0 or a negative errno. */
int manager_run(Manager *m);

Lock *manager_find_lock(Manager *m, const char *name);
/* Creates the Lock of a stored lock, attaches its driver and announces it. */
int manager_add_lock(Manager *m, const struct store_lock *sl);
/* Takes the lock out of the table and frees it (its rows are the caller's business). */
int manager_remove_lock(Manager *m, Lock *l);

/* Re-reads the configuration; on any error keeps the old one and returns the error. */
int manager_reload(Manager *m);
