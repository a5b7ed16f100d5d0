/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The Manager's health side: diagnosis of its locks from the store and their live model,
 * and the support bundle; plus the D-Bus methods that expose them (registered in
 * api.c's Manager1 vtable):
 *
 *   Diagnose(s lock, b json) → s   the findings of one lock ("" = every lock) as text
 *                                  (what lockhubctl diagnose prints) or JSON (one object,
 *                                  or an array for every lock)
 *   SupportBundle() → s            a JSON document for support: hub and configuration
 *                                  (secrets redacted), and per lock its model, firmware,
 *                                  diagnosis, recent events, recovery attempts, battery
 *                                  and RSSI history. Never a key, PIN or code.
 *
 * Every call reads the known-firmware file afresh (KnownFirmwareFile=), so an edited
 * file counts at once; a missing or broken file only loses the firmware findings.
 */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#include "lockhub/health.h"
#include "lockhub/lock.h"

typedef struct Manager Manager;
struct BluezClient;

/* The report of one lock; ladder: its live status or NULL. */
int manager_health_report(Manager *m, Lock *l, const HealthLadderStatus *ladder, HealthReport **ret);
/* name NULL or "": every lock. -ENOENT for an unknown name. *ret is malloc'ed. */
int manager_health_diagnose(Manager *m, const char *name, bool json, char **ret);
int manager_health_support_bundle(Manager *m, char **ret);

/* The configuration as lockhub.conf text with the value of every key that could hold a
 * secret replaced by "(redacted)". Pure: exposed for tests. */
int manager_health_redact_conf(const char *text, char **ret);

/* sd-bus method handlers for org.lockhub.Manager1 (userdata: the Manager). */
int manager_health_method_diagnose(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int manager_health_method_support_bundle(sd_bus_message *msg, void *userdata, sd_bus_error *error);

/* ---- the recovery ladders of the Manager's locks ----
 *
 * manager_health_start() creates the HealthRecovery (on the Manager's sd-event loop);
 * manager_health_lock_added() gives a lock its ladder. The ladder hears of the lock
 * through a thin wrapper around its driver ops (every action and refresh outcome: a
 * failure with -EHOSTUNREACH is a connection failure, any other a command failure) and
 * through a lock listener (adverts move last_seen). It acts through the driver
 * (retry/reconnect: a refresh, which reads the state before anything is sent again, so
 * an action is never repeated blindly) and, once manager_health_set_bluez() was
 * called, through the BlueZ client (adapter power cycle, RemoveDevice). Every step is
 * stored (recovery_attempts + a "recovery" event) and logged with its MESSAGE_ID.
 * The same wrapper and listener record the link samples the diagnosis reads: the
 * round trip of every command that worked ("latency-ms"), every connection that could
 * not be made ("connect-failed"), and the advert RSSI at most once a minute ("rssi").
 *
 * The Bluetooth side reports bluetoothd and adapter changes with
 * manager_health_bluez_service() / manager_health_adapter_event(), any advert with
 * manager_health_adapter_heard() and a paired lock's with manager_health_lock_seen().
 * All of these accept a Manager without health. */
typedef struct ManagerHealth ManagerHealth;

int manager_health_start(Manager *m);
void manager_health_free(Manager *m); /* after the locks are freed */
/* The configuration was replaced: new [Health] limits apply from the next step. */
void manager_health_reload(Manager *m);
int manager_health_lock_added(Manager *m, Lock *l);
void manager_health_set_bluez(Manager *m, struct BluezClient *client);
void manager_health_bluez_service(Manager *m, bool up);
void manager_health_adapter_event(Manager *m, const char *adapter, bool present, bool powered);
void manager_health_adapter_heard(Manager *m, const char *adapter);
/* An advert of a paired lock, through adapter. */
void manager_health_lock_seen(Manager *m, Lock *l, const char *adapter);
/* The live ladder of a lock, or NULL. */
HealthLadder *manager_health_ladder(Manager *m, Lock *l);
