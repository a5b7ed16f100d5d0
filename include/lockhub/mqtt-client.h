/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * MQTT transport: one connection to one broker, driven by libmosquitto on the
 * daemon's sd-event loop (no libmosquitto thread). It knows nothing about locks or
 * Home Assistant; the topic and discovery layers sit on top of it.
 *
 * What it does by itself:
 *  - connects (TCP, TLS or a Unix socket), and after any loss reconnects with capped
 *    exponential backoff and jitter, forever, until stopped;
 *  - never blocks the loop on DNS (see the top of src/mqtt/mqtt-client.c);
 *  - registers the last will, and on every (re)connect sends the birth message, then
 *    renews every subscription, then flushes the retained messages that were
 *    published while disconnected, then calls the connect handler;
 *  - on a clean stop publishes the will payload itself (a clean DISCONNECT makes the
 *    broker drop the will) before disconnecting.
 *
 * Publishing while not connected: a retained message is kept, newest per topic
 * (retained state is "latest value wins", so older values are dropped), at most
 * MqttClientOptions.queue_max topics, oldest dropped first, and sent after the next
 * connect; mqtt_client_publish() returns 1 for that. A non-retained message is
 * refused with -ENOTCONN: events are history, the caller decides what to do with
 * them (the store already has them).
 *
 * Ownership: the options are copied by mqtt_client_new() (nothing is borrowed after
 * it returns). The client holds a reference to the sd_event. Handlers run from the
 * event loop; they may publish, subscribe and stop, but must not free the client.
 * Secrets: the password is read from the credential or file, handed to libmosquitto
 * and wiped; it is never logged.
 */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "lockhub/macro.h"

typedef struct Conf Conf;

typedef enum MqttProtocol {
        MQTT_PROTO_V311,
        MQTT_PROTO_V5,
        _MQTT_PROTO_MAX,
} MqttProtocol;

/* The credential consulted before MqttClientOptions.password_file. */
#define MQTT_PASSWORD_CREDENTIAL "mqtt-password"
#define MQTT_PORT_DEFAULT        1883
#define MQTT_PORT_TLS_DEFAULT    8883
#define MQTT_QUEUE_MAX_DEFAULT   256

typedef struct MqttClientOptions {
        /* Exactly one of host or socket_path. */
        const char *host;        /* name or IP literal */
        unsigned port;           /* 0: 1883, or 8883 with TLS */
        const char *socket_path; /* Unix socket of the broker */

        const char *client_id; /* NULL: "lockhub-<hostname>" */
        const char *username;  /* NULL: anonymous */
        /* The password is $CREDENTIALS_DIRECTORY/mqtt-password when that exists, else
         * this file (NULL: none). One trailing newline is stripped. */
        const char *password_file;

        MqttProtocol protocol;
        unsigned keepalive_sec; /* 5..65535; 0: 60 */

        bool tls;
        const char *ca_file; /* ca_file/ca_path NULL: the system's trust store */
        const char *ca_path;
        const char *cert_file; /* client certificate and key: both or neither */
        const char *key_file;
        bool tls_insecure; /* accept any certificate and name: testing only */

        unsigned reconnect_min_sec; /* 0: 1 */
        unsigned reconnect_max_sec; /* 0: 120; raised to reconnect_min_sec if lower */

        /* Last will: QoS 1. will_topic NULL: none. Also published, retained as
         * will_retain says, by mqtt_client_stop() while connected. */
        const char *will_topic;
        const char *will_payload;
        bool will_retain;
        /* Birth: sent QoS 1 on every connect, before anything else. NULL: none. */
        const char *birth_topic;
        const char *birth_payload;
        bool birth_retain;

        size_t queue_max; /* retained topics kept while disconnected; 0: 256 */
} MqttClientOptions;

typedef struct MqttClient MqttClient;

/* connected: the broker accepted us (error 0), or the connection that was up is gone
 * (error: why, as -errno). Failed attempts while disconnected are logged, not
 * reported: the handler sees transitions only. Not called by stop or free. */
typedef void (*mqtt_connect_handler_t)(MqttClient *c, bool connected, int error, void *userdata);
/* payload is not NUL-terminated; len may be 0 (an empty retained message). */
typedef void (*mqtt_message_handler_t)(MqttClient *c, const char *topic, const void *payload, size_t len,
                                       bool retained, void *userdata);

/* Checks and copies the options, reads the password, sets up libmosquitto (TLS
 * files are checked here). Does not connect. -EINVAL with a log line naming the bad
 * option; -ENOENT/-EACCES... for an unreadable password, CA or certificate file. */
int mqtt_client_new(sd_event *e, const MqttClientOptions *o, MqttClient **ret);
/* Stops (see mqtt_client_stop()) and frees. Accepts NULL, returns NULL. */
MqttClient *mqtt_client_free(MqttClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(MqttClient *, mqtt_client_free);

void mqtt_client_set_handlers(MqttClient *c, mqtt_connect_handler_t on_connect,
                              mqtt_message_handler_t on_message, void *userdata);

/* Starts connecting in the background; returns at once. -EALREADY if started. */
int mqtt_client_start(MqttClient *c);
/* While connected: publishes the will payload (if any), then disconnects cleanly,
 * waiting at most about a second for the bytes to leave. Then stays down: no
 * reconnects, handlers are no longer called. Idempotent. Called from a message
 * handler, it takes effect when the handler returns. */
void mqtt_client_stop(MqttClient *c);

bool mqtt_client_is_connected(const MqttClient *c);
/* "host:port" or "unix:PATH", for messages. */
const char *mqtt_client_broker(const MqttClient *c);

/* qos 0..2. Returns 0 when handed to libmosquitto, 1 when kept for the next connect
 * (retained while disconnected), -ENOTCONN (not retained, disconnected), -EINVAL
 * (topic with wildcards or not UTF-8, bad qos), -EMSGSIZE, -ESHUTDOWN (stopped). */
int mqtt_client_publish(MqttClient *c, const char *topic, const void *payload, size_t len, int qos,
                        bool retain);
static inline int mqtt_client_publish_string(MqttClient *c, const char *topic, const char *payload, int qos,
                                             bool retain)
{
        return mqtt_client_publish(c, topic, payload, strlen(payload), qos, retain);
}
/* Remembered and renewed after every reconnect; subscribing again to the same filter
 * only updates its qos. -EINVAL for an invalid filter. */
int mqtt_client_subscribe(MqttClient *c, const char *filter, int qos);
/* -ENOENT if not subscribed. */
int mqtt_client_unsubscribe(MqttClient *c, const char *filter);

/* Fills the transport part of *ret from the [MQTT] section. Pointers borrow from c.
 * Will, birth and queue are left zeroed: the topic layer owns them. */
void mqtt_client_options_from_conf(const Conf *c, MqttClientOptions *ret);

/* Translates a libmosquitto MOSQ_ERR_* code into -errno (MOSQ_ERR_ERRNO: from errno). */
int mqtt_error_from_mosquitto(int mosq_err);

/* Reads a secret (the broker password, an unlock code) from a regular file: at most max
 * bytes after one trailing "\n" (or "\r\n") is removed, else -EFBIG; no NUL bytes, else
 * -EBADMSG. May be empty. Buffers are wiped; free the result with mqtt_secret_free(). */
int mqtt_read_secret_file(const char *path, size_t max, char **ret);
/* Wipes and frees; accepts NULL. */
void mqtt_secret_free(char *s);
static inline void mqtt_secret_freep(char **s)
{
        mqtt_secret_free(*s);
}
