/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The MQTT bridge: publishes every lock of the Manager to Home Assistant and carries
 * out what arrives on MQTT. Topics and payloads are in lockhub/mqtt-ha.h; the
 * connection is lockhub/mqtt-client.h.
 *
 *  - On every (re)connect: B/bridge/state online (birth; the will says offline),
 *    B/bridge/info, then the discovery configs of the hub and of every lock, then
 *    every lock's availability and state. The same again, after a random delay of
 *    a second or two, when Home Assistant announces itself ("online" on
 *    <prefix>/status). For a few seconds after connecting, retained device configs
 *    of this hub that belong to no paired lock (unpaired while the broker was out of
 *    reach) are removed.
 *  - Follows every lock (a listener): the retained state is republished after a
 *    change (changes within one loop iteration are published once), discovery when
 *    model or firmware change, events for operations not started over MQTT and for
 *    alarms (jammed, battery critical, door tampered, needs re-pairing).
 *  - B/<lock>/set and the lock/action request: policy first (AllowRemoteUnlock=,
 *    AllowRemoteUnlatch=, RequireUnlockCode= and its code), then the driver. Every
 *    command ends in exactly one event on B/<lock>/event, done or failed with a
 *    reason (and a response when it came as a request). Wrong codes are recorded as
 *    "access" events with source mqtt and lock out further codes hub-wide for a
 *    delay that doubles with every wrong code (1 s … 5 min). A lock that is not
 *    reachable gets its command rejected at once, or held for CommandExpirySec=.
 *    Retained commands and requests are ignored: they would replay at every
 *    reconnect.
 *  - Requests that change users, codes or (restore) lock settings: refused unless
 *    AllowRemoteCodeChanges=yes, and with RequireUnlockCode=yes on the hub or any
 *    lock they need "unlock_code" (the same check and lockout as commands); every
 *    refusal is an "access" event. Requests over the flood limit are refused unread,
 *    answered at most once a second and otherwise counted.
 *
 * Ownership: the Manager owns the bridge; the bridge borrows the Manager (its conf,
 * store and locks) and owns its MqttClient. It adds a listener to every lock it
 * follows and removes it when freed. A lock that is freed is dropped silently (hub
 * shutdown keeps everything retained); unpairing is mqtt_bridge_lock_removed().
 */

#include "lockhub/lock.h"
#include "lockhub/macro.h"

typedef struct Manager Manager;
typedef struct MqttBridge MqttBridge;

/* The meta key of the hub id in the store. */
#define MQTT_BRIDGE_HUB_ID_KEY "hub-id"

/* Reads (or creates, once) the hub id, sets up the client from m->conf's [MQTT] and
 * follows every lock in m->locks. Does not connect yet. Logs its errors. */
int mqtt_bridge_new(Manager *m, MqttBridge **ret);
/* Starts connecting (in the background). */
int mqtt_bridge_start(MqttBridge *b);
/* Publishes offline, disconnects, stops following the locks; pending commands are
 * forgotten (their outcome goes nowhere). Accepts NULL, returns NULL. */
MqttBridge *mqtt_bridge_free(MqttBridge *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(MqttBridge *, mqtt_bridge_free);

/* A lock was paired (or loaded): follow it and publish it. */
int mqtt_bridge_lock_added(MqttBridge *b, Lock *l);
/* A lock is being unpaired: its device disappears from Home Assistant (empty retained
 * config) and its retained state and availability are cleared. Call before freeing it. */
int mqtt_bridge_lock_removed(MqttBridge *b, Lock *l);

/* Something bridge/info reports changed (the database's writability): republish it. */
void mqtt_bridge_info_changed(MqttBridge *b);

/* After a configuration reload: command policy and discovery (code, OPEN) are
 * re-read and discovery republished. Connection settings need a restart. */
void mqtt_bridge_reload(MqttBridge *b);

/* Reads the hub id from the store, creating it on first use: MQTT_HA_HUB_ID_LEN
 * lower-case hex characters. */
typedef struct Store Store;
int mqtt_bridge_hub_id(Store *s, char **ret);
