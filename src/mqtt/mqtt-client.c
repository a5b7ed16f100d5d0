/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MQTT transport: libmosquitto driven from the daemon's sd-event loop. The contract
 * is in include/lockhub/mqtt-client.h; this comment is about how it works.
 *
 * libmosquitto without its thread
 * -------------------------------
 * We never call mosquitto_loop*() blocking or start its thread. Instead:
 *  - an io source watches mosquitto_socket(): EPOLLIN always (a TLS handshake is
 *    advanced by loop_read), EPOLLOUT only while mosquitto_want_write();
 *  - one timer runs the state machine below; while connected it calls
 *    mosquitto_loop_misc() (PINGREQ and keepalive timeout) every keepalive/4;
 *  - after every call into libmosquitto, client_after_call() looks at what happened
 *    (CONNACK seen, socket gone) and re-syncs the io source. libmosquitto closes the
 *    socket itself on errors, and a new socket often gets the old fd number, so the
 *    io source is dropped whenever the socket goes away and rebuilt for a new one;
 *    an equal fd number is never taken as proof that it is the same socket;
 *  - reconnects are ours (libmosquitto's own backoff only exists in its thread).
 * Callbacks from libmosquitto only record what happened or hand a message to the
 * user; the state changes happen in client_after_call(), outside libmosquitto, where
 * writes go to the socket at once (inside a callback they are only queued).
 *
 * States (client_set_state() is the only place that changes c->state)
 * ------
 *
 *            start                 literal IP or Unix socket: connect_async here
 *   IDLE ─────────▶ WAITING ──timer──┬──────────────────────────────┐
 *                      ▲             │ host name                     ▼
 *                      │             ▼                          CONNECTING ──CONNACK 0──▶ CONNECTED
 *                      │         RESOLVING ──job done, rc 0────▶     │                        │
 *                      │             │                               │ refused, TLS error,    │ lost,
 *                      │             │ job failed (DNS, connect)     │ socket error, timeout  │ keepalive
 *                      └─────────────┴───────────────────────────────┴────────────────────────┘
 *                         client_connect_failed(): log, backoff timer
 *
 *   any state ──mqtt_client_stop()──▶ STOPPED (final)
 *
 * DNS never blocks the loop
 * -------------------------
 * mosquitto_connect_async() resolves the host with a plain, blocking getaddrinfo().
 * The alternatives considered:
 *  - sd-resolve: internal to systemd, not exported by libsystemd 252 (checked with
 *    nm -D);
 *  - getaddrinfo_a() or our own resolver, then connecting libmosquitto to the address
 *    we found: libmosquitto checks the broker's certificate against, and sends SNI
 *    for, the very string it was asked to connect to, so TLS with a host name would
 *    verify against an IP address (fails, or would need our own OpenSSL context).
 * So for a host name the whole connect_async() call (getaddrinfo, non-blocking TCP
 * connect, first TLS step) runs in a short-lived detached helper thread that owns
 * the mosquitto object for that time; the loop does not touch it until the thread
 * reports back through a socketpair (ConnectJob below). libmosquitto is built thread
 * safe and the hand-over is ordered by an atomic flag. A literal IP address or a
 * Unix socket needs no lookup and is connected directly from the loop.
 * If the client is freed while a lookup is still running (getaddrinfo cannot be
 * cancelled), the job is orphaned: the thread finishes and destroys the mosquitto
 * object itself; the loop is never blocked waiting for it.
 *
 * Messages published while disconnected: see the header. The queue is a small array
 * kept in insertion order; at most queue_max entries, so linear search is fine.
 */

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <mosquitto.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-id128.h>

#include "lockhub/conf.h"
#include "lockhub/log.h"
#include "lockhub/mqtt-client.h"

#define USEC_PER_SEC      ((uint64_t) 1000000)
#define CONNECT_TIMEOUT   (30 * USEC_PER_SEC)
#define STOP_FLUSH_MSEC   1000
#define PASSWORD_MAX      65535 /* the MQTT limit */
#define MQTT_PAYLOAD_MAX  268435455u
#define KEEPALIVE_DEFAULT 60
#define RECONNECT_MIN_DEF 1
#define RECONNECT_MAX_DEF 120

/* Used for the default client id: sd_id128_get_machine_app_specific(), so it is
 * stable for this machine and does not reveal the machine id. */
#define CLIENT_ID_APP SD_ID128_MAKE(6c, 0b, 8e, 51, 2d, 4a, 4f, 7c, 9a, 13, 5e, c1, 77, 0f, 3b, 92)

typedef enum ClientState {
        CLIENT_IDLE,
        CLIENT_WAITING,
        CLIENT_RESOLVING,
        CLIENT_CONNECTING,
        CLIENT_CONNECTED,
        CLIENT_STOPPED,
        _CLIENT_STATE_MAX,
} ClientState;

static const char *const client_state_names[_CLIENT_STATE_MAX] = {
        [CLIENT_IDLE] = "idle",           [CLIENT_WAITING] = "waiting",
        [CLIENT_RESOLVING] = "resolving", [CLIENT_CONNECTING] = "connecting",
        [CLIENT_CONNECTED] = "connected", [CLIENT_STOPPED] = "stopped",
};

/* A connect_async() running in the helper thread. Two references: the thread's and
 * the client's. Whoever drops the last one frees it, and destroys the mosquitto
 * object too if the client gave up on it (orphaned). */
typedef struct ConnectJob {
        atomic_int n_ref;
        atomic_bool orphaned;
        atomic_bool done; /* rc, saved_errno, error_text are valid */
        struct mosquitto *mosq;
        char *host;
        int port, keepalive;
        int notify_fd; /* thread's end of the socketpair */
        int rc, saved_errno;
        char error_text[256];
} ConnectJob;

/* Set in the helper thread only: libmosquitto callbacks running there must not touch
 * the client (which may be gone); the log callback writes here instead. */
static _Thread_local ConnectJob *current_job;

typedef struct Subscription {
        char *filter;
        int qos;
} Subscription;

typedef struct Pending {
        char *topic;
        void *payload;
        size_t len;
        int qos;
} Pending;

struct MqttClient {
        sd_event *event;
        struct mosquitto *mosq; /* lent to c->job while RESOLVING */
        ClientState state;

        char *host, *socket_path, *broker, *client_id;
        unsigned port, keepalive_sec;
        MqttProtocol protocol;
        bool tls, tls_insecure, have_password;
        char *ca_file, *ca_path;
        uint64_t reconnect_min, reconnect_max;
        char *will_topic, *will_payload;
        bool will_retain;
        char *birth_topic, *birth_payload;
        bool birth_retain;
        size_t queue_max;

        sd_event_source *io;
        int io_fd;
        uint32_t io_events;
        bool io_stale; /* the socket behind io_fd was closed */

        sd_event_source *timer;
        uint64_t connect_deadline; /* CLOCK_MONOTONIC, while CONNECTING */
        unsigned attempt;          /* failed attempts since the last connect */
        int last_error;            /* last failure logged loudly; repeats go to debug */

        ConnectJob *job;
        sd_event_source *job_source;
        int job_fd;

        /* What libmosquitto told us during the current call. */
        bool connack_seen;
        int connack_rc;
        int disconnect_rc; /* MOSQ_ERR_*, or a v5 reason code >= 0x80; -1: none */
        int disconnect_errno;
        bool force_down;
        bool stop_requested;  /* mqtt_client_stop() from a handler inside libmosquitto */
        char mosq_error[256]; /* last error line libmosquitto logged (OpenSSL's text) */

        unsigned in_mosq; /* > 0 while inside a libmosquitto call */
        bool in_after_call, after_call_again;

        Subscription *subs;
        size_t n_subs;
        Pending *queue;
        size_t n_queue;
        bool queue_full_logged;

        mqtt_connect_handler_t on_connect;
        mqtt_message_handler_t on_message;
        void *userdata;
};

static void client_after_call(MqttClient *c);
static void client_arm_timer(MqttClient *c, uint64_t usec);

int mqtt_error_from_mosquitto(int rc)
{
        switch ((enum mosq_err_t) rc) {
        case MOSQ_ERR_SUCCESS:
        case MOSQ_ERR_AUTH_CONTINUE:
        case MOSQ_ERR_NO_SUBSCRIBERS:
        case MOSQ_ERR_SUB_EXISTS:
        case MOSQ_ERR_CONN_PENDING:
                return 0;
        case MOSQ_ERR_NOMEM:
                return -ENOMEM;
        case MOSQ_ERR_PROTOCOL:
        case MOSQ_ERR_MALFORMED_PACKET:
        case MOSQ_ERR_DUPLICATE_PROPERTY:
                return -EPROTO;
        case MOSQ_ERR_INVAL:
        case MOSQ_ERR_MALFORMED_UTF8:
        case MOSQ_ERR_TOPIC_ALIAS_INVALID:
                return -EINVAL;
        case MOSQ_ERR_NO_CONN:
                return -ENOTCONN;
        case MOSQ_ERR_CONN_REFUSED:
        case MOSQ_ERR_PROXY:
                return -ECONNREFUSED;
        case MOSQ_ERR_NOT_FOUND:
        case MOSQ_ERR_LOOKUP:
                return -ENOENT;
        case MOSQ_ERR_CONN_LOST:
        case MOSQ_ERR_ADMINISTRATIVE_ACTION:
                return -ECONNRESET;
        case MOSQ_ERR_TLS:
        case MOSQ_ERR_TLS_HANDSHAKE:
        case MOSQ_ERR_OCSP:
                return -EBADE; /* "Invalid exchange": no errno says "TLS failed" better */
        case MOSQ_ERR_PAYLOAD_SIZE:
        case MOSQ_ERR_OVERSIZE_PACKET:
                return -EMSGSIZE;
        case MOSQ_ERR_NOT_SUPPORTED:
        case MOSQ_ERR_QOS_NOT_SUPPORTED:
        case MOSQ_ERR_RETAIN_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        case MOSQ_ERR_AUTH:
        case MOSQ_ERR_ACL_DENIED:
                return -EACCES;
        case MOSQ_ERR_ERRNO:
                return errno > 0 ? -errno : -EIO;
        case MOSQ_ERR_EAI:
                return -EHOSTUNREACH;
        case MOSQ_ERR_PLUGIN_DEFER:
                return -EAGAIN;
        case MOSQ_ERR_KEEPALIVE:
        case MOSQ_ERR_TIMEOUT:
                return -ETIMEDOUT;
        case MOSQ_ERR_ALREADY_EXISTS:
                return -EEXIST;
        case MOSQ_ERR_UNKNOWN:
                return -EIO;
        }
        return -EIO;
}

static void client_set_state(MqttClient *c, ClientState s)
{
        if (c->state == s)
                return;
        log_debug("MQTT: %s -> %s", client_state_names[c->state], client_state_names[s]);
        c->state = s;
}

/* ---- io source ---------------------------------------------------------------- */

static void client_drop_io(MqttClient *c)
{
        c->io = sd_event_source_disable_unref(c->io);
        c->io_fd = -1;
        c->io_events = 0;
        c->io_stale = false;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int client_sync_io(MqttClient *c)
{
        int fd = -1, r;
        uint32_t events;

        if (!c->job && (c->state == CLIENT_CONNECTING || c->state == CLIENT_CONNECTED))
                fd = mosquitto_socket(c->mosq);
        if (fd < 0 || c->io_stale || fd != c->io_fd)
                client_drop_io(c);
        if (fd < 0)
                return 0;

        events = EPOLLIN | (mosquitto_want_write(c->mosq) ? EPOLLOUT : 0);
        if (!c->io) {
                r = sd_event_add_io(c->event, &c->io, fd, events, on_io, c);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(c->io, "mqtt-socket");
                c->io_fd = fd;
        } else if (events != c->io_events) {
                r = sd_event_source_set_io_events(c->io, events);
                if (r < 0)
                        return r;
        }
        c->io_events = events;
        return 0;
}

/* ---- failures, backoff ------------------------------------------------------------ */

static uint64_t random_u64(void)
{
        uint64_t v;

        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t) sizeof(v))
                v = (uint64_t) random() << 32 ^ (uint64_t) random();
        return v;
}

/* min·2^attempt, capped at max, plus up to a quarter of jitter (downwards once at
 * the cap), never below min. */
static uint64_t client_backoff(MqttClient *c)
{
        uint64_t d = c->reconnect_min;

        for (unsigned i = 0; i < c->attempt && d < c->reconnect_max; i++)
                d *= 2;
        if (d >= c->reconnect_max) {
                d = c->reconnect_max;
                d -= random_u64() % (d / 4 + 1);
        } else
                d += random_u64() % (d / 4 + 1);
        return MAX(d, c->reconnect_min);
}

static bool connack_is_auth(const MqttClient *c, int rc)
{
        if (c->protocol == MQTT_PROTO_V5)
                return rc == 0x86 || rc == 0x87 || rc == 0x8A || rc == 0x8C;
        return rc == 4 || rc == 5;
}

static int connack_to_errno(const MqttClient *c, int rc)
{
        if (connack_is_auth(c, rc))
                return -EACCES;
        if (c->protocol == MQTT_PROTO_V5)
                return rc == 0x84 ? -EPROTONOSUPPORT : rc == 0x85 ? -EINVAL : -ECONNREFUSED;
        return rc == 1 ? -EPROTONOSUPPORT : rc == 2 ? -EINVAL : -ECONNREFUSED;
}

/* asprintf() that leaves *ret NULL on failure: these texts are only for messages. */
_printf_(2, 3) static void xasprintf(char **ret, const char *format, ...)
{
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret, format, ap) < 0)
                *ret = NULL;
        va_end(ap);
}

/* libmosquitto's texts end with a full stop; ours continue after them. */
static const char *mosq_text(const char *s, char *buf, size_t size)
{
        size_t n;

        snprintf(buf, size, "%s", strempty(s));
        n = strlen(buf);
        while (n > 0 && buf[n - 1] == '.')
                buf[--n] = '\0';
        return buf;
}

static const char *connack_text(const MqttClient *c, int rc, char *buf, size_t size)
{
        return mosq_text(c->protocol == MQTT_PROTO_V5 ? mosquitto_reason_string(rc)
                                                      : mosquitto_connack_string(rc),
                         buf, size);
}

/* The TLS part of a failure. OpenSSL's reason is the text after the last "::" of
 * the line libmosquitto logged ("OpenSSL Error[0]: error:0A000086:SSL routines::
 * certificate verify failed"); whatever the MOSQ_ERR code was (a failed client
 * certificate shows up as a lost connection), that line is the real story. */
static int client_describe_tls_failure(MqttClient *c, const char *openssl, char **ret)
{
        const char *reason = openssl;

        for (const char *p = openssl; (p = strstr(p, "::")); p += 2)
                reason = p + 2;

        if (strstr(reason, "certificate verify failed")) {
                _cleanup_free_ char *trust = NULL;
                if (c->ca_file || c->ca_path)
                        xasprintf(&trust, "%s%s%s%s%s", c->ca_file ? "CAFile=" : "", strempty(c->ca_file),
                                  c->ca_file && c->ca_path ? ", " : "", c->ca_path ? "CAPath=" : "",
                                  strempty(c->ca_path));
                xasprintf(ret,
                          "TLS: the broker's certificate was not accepted (%s): it must be signed by a CA "
                          "in %s, "
                          "be valid now, and name \"%s\"",
                          reason, trust ? trust : "the system's trust store",
                          c->host ? c->host : c->socket_path);
        } else if (strstr(reason, "certificate required"))
                xasprintf(ret,
                          "TLS: the broker requires a client certificate (%s): set CertFile= and KeyFile=",
                          reason);
        else
                xasprintf(ret, "TLS failed (%s): check CertFile=, KeyFile= and the broker's TLS settings",
                          reason);
        return mqtt_error_from_mosquitto(MOSQ_ERR_TLS);
}

/* Why the current attempt or connection failed: -errno and a sentence for people. */
static int client_describe_failure(MqttClient *c, char **ret)
{
        int rc = c->disconnect_rc;
        char t[256];

        if (c->connack_seen && c->connack_rc != 0) {
                int k = c->connack_rc;
                if (connack_is_auth(c, k))
                        xasprintf(ret,
                                  "the broker refused the connection: %s; check Username= and the password "
                                  "(credential \"%s\" or PasswordFile=)%s",
                                  connack_text(c, k, t, sizeof(t)), MQTT_PASSWORD_CREDENTIAL,
                                  c->have_password ? "" : "; no password is configured");
                else
                        xasprintf(ret, "the broker refused the connection: %s",
                                  connack_text(c, k, t, sizeof(t)));
                return connack_to_errno(c, k);
        }

        if (c->tls && strstr(c->mosq_error, "OpenSSL Error"))
                return client_describe_tls_failure(c, c->mosq_error, ret);
        /* libmosquitto reports some TLS failures (a refused client certificate, say)
         * as EPROTO without logging OpenSSL's reason. */
        if (c->tls && rc == MOSQ_ERR_ERRNO && c->disconnect_errno == EPROTO)
                return client_describe_tls_failure(c, "protocol error", ret);
        if (rc == MOSQ_ERR_TLS || rc == MOSQ_ERR_TLS_HANDSHAKE)
                return client_describe_tls_failure(
                                c,
                                c->mosq_error[0] ? c->mosq_error
                                                 : mosq_text(mosquitto_strerror(rc), t, sizeof(t)),
                                ret);
        if (rc == MOSQ_ERR_ERRNO) {
                int r = c->disconnect_errno > 0 ? -c->disconnect_errno : -EIO;
                xasprintf(ret, "%s", strerror(-r));
                return r;
        }
        if (rc == MOSQ_ERR_EAI) {
                xasprintf(ret, "cannot resolve \"%s\": %s", strempty(c->host),
                          c->disconnect_errno ? gai_strerror(c->disconnect_errno) : "lookup failed");
                return -EHOSTUNREACH;
        }
        if (rc == MOSQ_ERR_KEEPALIVE) {
                xasprintf(ret, "no answer from the broker within the keepalive interval (%us)",
                          c->keepalive_sec);
                return -ETIMEDOUT;
        }
        if (rc >= 0x80) { /* an MQTT 5 DISCONNECT from the broker, with its reason */
                xasprintf(ret, "the broker disconnected us: %s",
                          mosq_text(mosquitto_reason_string(rc), t, sizeof(t)));
                return -ECONNRESET;
        }
        if (rc < 0)
                rc = MOSQ_ERR_CONN_LOST;
        xasprintf(ret, "%s", mosq_text(mosquitto_strerror(rc), t, sizeof(t)));
        return mqtt_error_from_mosquitto(rc);
}

static void client_reset_call_state(MqttClient *c)
{
        c->connack_seen = false;
        c->connack_rc = 0;
        c->disconnect_rc = -1;
        c->disconnect_errno = 0;
        c->force_down = false;
        c->mosq_error[0] = '\0';
}

/* The attempt or the connection is over: log why, schedule the next attempt. */
static void client_connect_failed(MqttClient *c, int error, const char *why)
{
        bool was_connected = c->state == CLIENT_CONNECTED;
        uint64_t delay;

        client_drop_io(c);
        if (c->state == CLIENT_STOPPED)
                return;

        delay = client_backoff(c);
        c->attempt++;
        client_set_state(c, CLIENT_WAITING);
        client_arm_timer(c, delay);

        if (was_connected)
                log_warning("MQTT: lost the connection to broker %s: %s; reconnecting in %.1fs", c->broker,
                            why, (double) delay / USEC_PER_SEC);
        else if (error != c->last_error)
                log_error("MQTT: cannot connect to broker %s: %s; retrying in %.1fs", c->broker, why,
                          (double) delay / USEC_PER_SEC);
        else
                log_debug("MQTT: cannot connect to broker %s: %s; retrying in %.1fs", c->broker, why,
                          (double) delay / USEC_PER_SEC);
        c->last_error = error;
        client_reset_call_state(c);

        if (was_connected && c->on_connect)
                c->on_connect(c, false, error, c->userdata);
}

static void client_connection_down(MqttClient *c)
{
        _cleanup_free_ char *why = NULL;
        int error = client_describe_failure(c, &why);

        client_connect_failed(c, error, why ? why : strerror(-error));
}

/* ---- connected --------------------------------------------------------------------- */

static uint64_t client_tick(const MqttClient *c)
{
        return MAX((uint64_t) c->keepalive_sec / 4, (uint64_t) 1) * USEC_PER_SEC;
}

static void pending_free(Pending *p)
{
        free(p->topic);
        free(p->payload);
}

static void client_enter_connected(MqttClient *c)
{
        int rc;

        client_set_state(c, CLIENT_CONNECTED);
        c->attempt = 0;
        c->last_error = 0;
        c->queue_full_logged = false;
        log_info("MQTT: connected to broker %s (MQTT %s%s%s)", c->broker,
                 c->protocol == MQTT_PROTO_V5 ? "5" : "3.1.1", c->tls ? ", TLS" : "",
                 c->tls && c->tls_insecure ? " without certificate checks" : "");

        c->in_mosq++;
        if (c->birth_topic) {
                rc = mosquitto_publish(c->mosq, NULL, c->birth_topic,
                                       (int) strlen(strempty(c->birth_payload)), strempty(c->birth_payload),
                                       1, c->birth_retain);
                if (rc != MOSQ_ERR_SUCCESS)
                        log_warning("MQTT: cannot publish the birth message on %s: %s", c->birth_topic,
                                    mosquitto_strerror(rc));
        }
        for (size_t i = 0; i < c->n_subs; i++) {
                rc = mosquitto_subscribe(c->mosq, NULL, c->subs[i].filter, c->subs[i].qos);
                if (rc != MOSQ_ERR_SUCCESS)
                        log_warning("MQTT: cannot subscribe to %s: %s", c->subs[i].filter,
                                    mosquitto_strerror(rc));
        }
        for (size_t i = 0; i < c->n_queue; i++) {
                Pending *p = &c->queue[i];
                rc = mosquitto_publish(c->mosq, NULL, p->topic, (int) p->len, p->payload, p->qos, true);
                if (rc != MOSQ_ERR_SUCCESS)
                        log_warning("MQTT: cannot publish the held message on %s: %s", p->topic,
                                    mosquitto_strerror(rc));
                pending_free(p);
        }
        if (c->n_queue > 0)
                log_debug("MQTT: sent %zu retained message(s) held while disconnected", c->n_queue);
        c->n_queue = 0;
        c->in_mosq--;

        client_arm_timer(c, client_tick(c));
        if (c->on_connect)
                c->on_connect(c, true, 0, c->userdata);
}

/* Runs after every call into libmosquitto: turns what the callbacks recorded into
 * state changes, then makes the io source match the socket. Re-entrant calls (a
 * handler publishing) only ask for another round. */
static void client_after_call(MqttClient *c)
{
        int r;

        if (c->in_after_call) {
                c->after_call_again = true;
                return;
        }
        c->in_after_call = true;
        do {
                c->after_call_again = false;
                if (c->stop_requested) {
                        c->stop_requested = false;
                        mqtt_client_stop(c);
                }
                if (c->state == CLIENT_STOPPED) {
                        client_drop_io(c);
                        break;
                }
                if (c->state == CLIENT_CONNECTING && c->connack_seen && c->connack_rc == 0 &&
                    mosquitto_socket(c->mosq) >= 0) {
                        c->connack_seen = false;
                        client_enter_connected(c);
                } else if (c->connack_seen && c->connack_rc != 0)
                        c->force_down = true;

                if ((c->state == CLIENT_CONNECTING || c->state == CLIENT_CONNECTED) &&
                    (c->force_down || mosquitto_socket(c->mosq) < 0)) {
                        client_connection_down(c);
                        continue;
                }
                r = client_sync_io(c);
                if (r < 0) {
                        log_error_errno(r, "MQTT: cannot watch the broker's socket: %m");
                        c->force_down = true;
                        c->disconnect_rc = MOSQ_ERR_ERRNO;
                        c->disconnect_errno = -r;
                        c->after_call_again = true;
                }
        } while (c->after_call_again);
        c->in_after_call = false;
}

/* ---- libmosquitto callbacks --------------------------------------------------- */

static void on_mosq_connect(struct mosquitto *m, void *userdata, int rc, int flags,
                            const mosquitto_property *p)
{
        MqttClient *c = userdata;

        if (current_job)
                return;
        c->connack_seen = true;
        c->connack_rc = rc;
}

static void on_mosq_disconnect(struct mosquitto *m, void *userdata, int rc, const mosquitto_property *p)
{
        int saved_errno = errno;
        MqttClient *c = userdata;

        if (current_job)
                return;
        c->io_stale = true;
        if (rc != MOSQ_ERR_SUCCESS && c->disconnect_rc < 0) {
                c->disconnect_rc = rc;
                c->disconnect_errno = saved_errno;
        }
}

static void on_mosq_message(struct mosquitto *m, void *userdata, const struct mosquitto_message *msg,
                            const mosquitto_property *p)
{
        MqttClient *c = userdata;

        if (current_job || c->state != CLIENT_CONNECTED || c->stop_requested || !c->on_message)
                return;
        if (msg->payloadlen < 0)
                return;
        c->on_message(c, msg->topic, msg->payload, (size_t) msg->payloadlen, msg->retain, c->userdata);
        /* A command or request may carry a code or a passphrase: libmosquitto frees the
         * message as it is. */
        if (msg->payload && msg->payloadlen > 0)
                explicit_bzero(msg->payload, (size_t) msg->payloadlen);
}

static void on_mosq_log(struct mosquitto *m, void *userdata, int level, const char *text)
{
        MqttClient *c = userdata;

        if (current_job) {
                if (level & MOSQ_LOG_ERR)
                        snprintf(current_job->error_text, sizeof(current_job->error_text), "%s", text);
                return;
        }
        if (level & MOSQ_LOG_ERR)
                snprintf(c->mosq_error, sizeof(c->mosq_error), "%s", text);
        log_debug("libmosquitto: %s", text);
}

/* ---- connecting ---------------------------------------------------------------- */

static void connect_job_unref(ConnectJob *j)
{
        if (!j || atomic_fetch_sub(&j->n_ref, 1) != 1)
                return;
        if (atomic_load(&j->orphaned))
                mosquitto_destroy(j->mosq);
        safe_close(j->notify_fd);
        free(j->host);
        free(j);
}

static void *connect_job_run(void *p)
{
        ConnectJob *j = p;

        current_job = j;
        j->rc = mosquitto_connect_async(j->mosq, j->host, j->port, j->keepalive);
        j->saved_errno = errno;
        current_job = NULL;
        atomic_store(&j->done, true);
        (void) send(j->notify_fd, "", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        j->notify_fd = safe_close(j->notify_fd);
        connect_job_unref(j);
        return NULL;
}

static void client_connect_started(MqttClient *c, int rc, int saved_errno)
{
        if (rc != MOSQ_ERR_SUCCESS) {
                c->disconnect_rc = rc;
                c->disconnect_errno = saved_errno;
                client_set_state(c, CLIENT_CONNECTING); /* so that failing logs as a failed attempt */
                c->force_down = true;
                client_after_call(c);
                return;
        }
        uint64_t now = 0;

        client_set_state(c, CLIENT_CONNECTING);
        c->io_stale = true; /* a new socket, whatever its number */
        (void) sd_event_now(c->event, CLOCK_MONOTONIC, &now);
        c->connect_deadline = now + CONNECT_TIMEOUT;
        client_arm_timer(c, CONNECT_TIMEOUT);
        client_after_call(c);
}

static int on_job_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        MqttClient *c = userdata;
        ConnectJob *j = c->job;
        char b;

        (void) recv(fd, &b, 1, MSG_DONTWAIT);
        /* The thread sets done before it writes or closes its end. */
        if (!atomic_load(&j->done))
                return 0;

        c->job_source = sd_event_source_disable_unref(c->job_source);
        c->job_fd = safe_close(c->job_fd);
        c->job = NULL;
        if (j->error_text[0])
                snprintf(c->mosq_error, sizeof(c->mosq_error), "%s", j->error_text);
        int rc = j->rc, saved_errno = j->saved_errno;
        connect_job_unref(j);

        if (c->state != CLIENT_RESOLVING)
                return 0;
        client_connect_started(c, rc, saved_errno);
        return 0;
}

static int client_start_job(MqttClient *c)
{
        _cleanup_close_ int fd0 = -EBADF, fd1 = -EBADF;
        int fds[2], r;
        ConnectJob *j;
        pthread_attr_t attr;
        pthread_t t;
        sigset_t all, old;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
                return -errno;
        fd0 = fds[0];
        fd1 = fds[1];

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->host = strdup(c->host);
        if (!j->host) {
                free(j);
                return -ENOMEM;
        }
        atomic_init(&j->n_ref, 2);
        atomic_init(&j->orphaned, false);
        atomic_init(&j->done, false);
        j->mosq = c->mosq;
        j->port = (int) c->port;
        j->keepalive = (int) c->keepalive_sec;
        j->notify_fd = -EBADF;

        r = sd_event_add_io(c->event, &c->job_source, fd0, EPOLLIN, on_job_done, c);
        if (r < 0) {
                free(j->host);
                free(j);
                return r;
        }
        (void) sd_event_source_set_description(c->job_source, "mqtt-connect-job");
        j->notify_fd = TAKE_FD(fd1);

        /* The helper must never take a signal meant for the loop's signalfd. */
        sigfillset(&all);
        r = -pthread_attr_init(&attr);
        if (r == 0) {
                (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                (void) pthread_sigmask(SIG_SETMASK, &all, &old);
                r = -pthread_create(&t, &attr, connect_job_run, j);
                (void) pthread_sigmask(SIG_SETMASK, &old, NULL);
                (void) pthread_attr_destroy(&attr);
        }
        if (r < 0) {
                c->job_source = sd_event_source_disable_unref(c->job_source);
                safe_close(j->notify_fd);
                free(j->host);
                free(j);
                return r;
        }
        c->job = j;
        c->job_fd = TAKE_FD(fd0);
        return 0;
}

static bool host_is_literal(const char *host)
{
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static void client_attempt(MqttClient *c)
{
        int rc, r;

        client_reset_call_state(c);
        client_drop_io(c);

        if (c->host && !host_is_literal(c->host)) {
                r = client_start_job(c);
                if (r >= 0) {
                        client_set_state(c, CLIENT_RESOLVING);
                        return;
                }
                log_warning_errno(r, "MQTT: cannot start the connect helper: %m");
                client_connect_started(c, MOSQ_ERR_ERRNO, -r);
                return;
        }

        c->in_mosq++;
        if (c->socket_path)
                rc = mosquitto_connect_async(c->mosq, c->socket_path, 0, (int) c->keepalive_sec);
        else
                rc = mosquitto_connect_async(c->mosq, c->host, (int) c->port, (int) c->keepalive_sec);
        int saved_errno = errno;
        c->in_mosq--;
        client_connect_started(c, rc, saved_errno);
}

/* ---- timer ----------------------------------------------------------------------- */

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        MqttClient *c = userdata;
        uint64_t now;

        switch (c->state) {
        case CLIENT_WAITING:
                client_attempt(c);
                break;
        case CLIENT_CONNECTING:
                if (sd_event_now(c->event, CLOCK_MONOTONIC, &now) < 0 || now >= c->connect_deadline) {
                        client_connect_failed(c, -ETIMEDOUT, "no answer from the broker within 30s");
                        break;
                }
                client_arm_timer(c, c->connect_deadline - now);
                break;
        case CLIENT_CONNECTED: {
                c->in_mosq++;
                int rc = mosquitto_loop_misc(c->mosq);
                c->in_mosq--;
                if (rc != MOSQ_ERR_SUCCESS && c->disconnect_rc < 0) {
                        c->disconnect_rc = rc;
                        c->disconnect_errno = errno;
                }
                client_after_call(c);
                if (c->state == CLIENT_CONNECTED)
                        client_arm_timer(c, client_tick(c));
                break;
        }
        case CLIENT_IDLE:
        case CLIENT_RESOLVING:
        case CLIENT_STOPPED:
        case _CLIENT_STATE_MAX:
                break;
        }
        return 0;
}

static void client_arm_timer(MqttClient *c, uint64_t usec)
{
        int r;

        if (!c->timer) {
                r = sd_event_add_time_relative(c->event, &c->timer, CLOCK_MONOTONIC, usec, 0, on_timer, c);
                if (r >= 0)
                        (void) sd_event_source_set_description(c->timer, "mqtt-timer");
        } else {
                r = sd_event_source_set_time_relative(c->timer, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_error_errno(r, "MQTT: cannot arm the timer, reconnects may stall: %m");
}

/* ---- io ---------------------------------------------------------------------------- */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        MqttClient *c = userdata;
        int rc = MOSQ_ERR_SUCCESS;

        c->in_mosq++;
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                rc = mosquitto_loop_read(c->mosq, 1);
        if (rc == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT) && !c->io_stale &&
            mosquitto_socket(c->mosq) == fd)
                rc = mosquitto_loop_write(c->mosq, 1);
        int saved_errno = errno;
        c->in_mosq--;
        if (rc != MOSQ_ERR_SUCCESS && c->disconnect_rc < 0) {
                c->disconnect_rc = rc;
                c->disconnect_errno = saved_errno;
        }

        /* A socket in error that libmosquitto did not close (it may ignore a pending
         * connect's error) would make a level-triggered source spin: give it up here. */
        if ((revents & (EPOLLHUP | EPOLLERR)) && !c->io_stale && mosquitto_socket(c->mosq) == fd &&
            c->state != CLIENT_STOPPED) {
                int err = 0;
                socklen_t len = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
                        err = ECONNRESET;
                if (c->disconnect_rc < 0) {
                        c->disconnect_rc = MOSQ_ERR_ERRNO;
                        c->disconnect_errno = err;
                }
                c->force_down = true;
        }
        client_after_call(c);
        return 0;
}

/* ---- construction --------------------------------------------------------------- */

int mqtt_read_secret_file(const char *path, size_t max, char **ret)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = max + 3, n = 0; /* room for "\r\n" and one byte too many */
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        while (n < size) {
                ssize_t k = read(fd, buf + n, size - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int r = -errno;
                        explicit_bzero(buf, size);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        if (n > 0 && buf[n - 1] == '\n') {
                n--;
                if (n > 0 && buf[n - 1] == '\r')
                        n--;
        }
        if (n > max || memchr(buf, '\0', n)) {
                explicit_bzero(buf, size);
                return n > max ? -EFBIG : -EBADMSG;
        }
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

void mqtt_secret_free(char *s)
{
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

/* Logs its errors. *ret NULL: no password anywhere. */
static int mqtt_read_password(const char *password_file, char **ret)
{
        const char *d = getenv("CREDENTIALS_DIRECTORY");
        int r;

        *ret = NULL;
        if (d && *d) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", d, MQTT_PASSWORD_CREDENTIAL) < 0)
                        return log_error_errno(-ENOMEM, "MQTT: out of memory");
                r = mqtt_read_secret_file(p, PASSWORD_MAX, ret);
                if (r >= 0) {
                        log_debug("MQTT: password from the credential \"%s\"", MQTT_PASSWORD_CREDENTIAL);
                        return 0;
                }
                if (r != -ENOENT)
                        return log_error_errno(r, "MQTT: cannot read the credential %s: %m", p);
        }
        if (!password_file)
                return 0;
        r = mqtt_read_secret_file(password_file, PASSWORD_MAX, ret);
        if (r < 0)
                return log_error_errno(r, "MQTT: cannot read PasswordFile=%s: %m", password_file);
        log_debug("MQTT: password from %s", password_file);
        return 0;
}

static int check_readable(const char *what, const char *path, bool directory)
{
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (directory ? O_DIRECTORY : 0));
        if (fd < 0)
                return log_error_errno(-errno, "MQTT: cannot read %s=%s: %m", what, path);
        if (fstat(fd, &st) < 0)
                return log_error_errno(-errno, "MQTT: cannot read %s=%s: %m", what, path);
        if (!directory && S_ISDIR(st.st_mode))
                return log_error_errno(-EISDIR, "MQTT: %s=%s is a directory%s", what, path,
                                       streq(what, "CAFile") ? " (use CAPath=)" : "");
        return 0;
}

/* OpenSSL would prompt on a terminal for an encrypted key; a daemon has none. */
static int no_key_password(char *buf, int size, int rwflag, void *userdata)
{
        return 0;
}

static int default_client_id(char **ret)
{
        sd_id128_t id;
        char host[HOST_NAME_MAX + 1];

        if (sd_id128_get_machine_app_specific(CLIENT_ID_APP, &id) >= 0)
                return asprintf(ret, "lockhub-%02x%02x%02x%02x%02x%02x", id.bytes[0], id.bytes[1],
                                id.bytes[2], id.bytes[3], id.bytes[4], id.bytes[5]) < 0
                                       ? -ENOMEM
                                       : 0;
        if (gethostname(host, sizeof(host)) < 0)
                snprintf(host, sizeof(host), "hub");
        host[sizeof(host) - 1] = '\0';
        return asprintf(ret, "lockhub-%s", host) < 0 ? -ENOMEM : 0;
}

static int strdup_opt(const char *s, char **ret)
{
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static void lib_init(void)
{
        /* Never paired with mosquitto_lib_cleanup(): an orphaned helper thread may
         * still be using the library when the last client is freed. */
        (void) mosquitto_lib_init();
}

static int mosq_setup_error(int rc, const char *what)
{
        int r = mqtt_error_from_mosquitto(rc);
        return log_error_errno(r, "MQTT: cannot set up %s: %s", what, mosquitto_strerror(rc));
}

int mqtt_client_new(sd_event *e, const MqttClientOptions *o, MqttClient **ret)
{
        _cleanup_(mqtt_client_freep) MqttClient *c = NULL;
        char *password = NULL;
        int r, rc;

        if (!e || !o || !ret)
                return -EINVAL;
        if (!!o->host == !!o->socket_path)
                return log_error_errno(-EINVAL, "MQTT: exactly one of a broker host and a socket is needed");
        if (o->host && !*o->host)
                return log_error_errno(-EINVAL, "MQTT: the broker host name is empty");
        if (o->port > 65535)
                return log_error_errno(-EINVAL, "MQTT: port %u is out of range", o->port);
        if (o->keepalive_sec != 0 && (o->keepalive_sec < 5 || o->keepalive_sec > 65535))
                return log_error_errno(-EINVAL, "MQTT: keepalive %us is out of range (5s-65535s)",
                                       o->keepalive_sec);
        if ((unsigned) o->protocol >= _MQTT_PROTO_MAX)
                return log_error_errno(-EINVAL, "MQTT: unknown protocol version");
        if (!!o->cert_file != !!o->key_file)
                return log_error_errno(-EINVAL, "MQTT: CertFile= and KeyFile= go together");
        if (o->will_topic && mosquitto_pub_topic_check(o->will_topic) != MOSQ_ERR_SUCCESS)
                return log_error_errno(-EINVAL, "MQTT: invalid will topic \"%s\"", o->will_topic);
        if (o->birth_topic && mosquitto_pub_topic_check(o->birth_topic) != MOSQ_ERR_SUCCESS)
                return log_error_errno(-EINVAL, "MQTT: invalid birth topic \"%s\"", o->birth_topic);

        (void) pthread_once(&lib_once, lib_init);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->io_fd = -1;
        c->job_fd = -EBADF;
        c->disconnect_rc = -1;

        if (strdup_opt(o->host, &c->host) < 0 || strdup_opt(o->socket_path, &c->socket_path) < 0 ||
            strdup_opt(o->ca_file, &c->ca_file) < 0 || strdup_opt(o->ca_path, &c->ca_path) < 0 ||
            strdup_opt(o->will_topic, &c->will_topic) < 0 ||
            strdup_opt(o->will_payload, &c->will_payload) < 0 ||
            strdup_opt(o->birth_topic, &c->birth_topic) < 0 ||
            strdup_opt(o->birth_payload, &c->birth_payload) < 0)
                return -ENOMEM;
        c->tls = o->tls;
        c->tls_insecure = o->tls && o->tls_insecure;
        c->port = o->port ? o->port : o->tls ? MQTT_PORT_TLS_DEFAULT : MQTT_PORT_DEFAULT;
        c->keepalive_sec = o->keepalive_sec ? o->keepalive_sec : KEEPALIVE_DEFAULT;
        c->protocol = o->protocol;
        c->reconnect_min = (o->reconnect_min_sec ? o->reconnect_min_sec : RECONNECT_MIN_DEF) * USEC_PER_SEC;
        c->reconnect_max = (o->reconnect_max_sec ? o->reconnect_max_sec : RECONNECT_MAX_DEF) * USEC_PER_SEC;
        c->reconnect_max = MAX(c->reconnect_max, c->reconnect_min);
        c->will_retain = o->will_retain;
        c->birth_retain = o->birth_retain;
        c->queue_max = o->queue_max ? o->queue_max : MQTT_QUEUE_MAX_DEFAULT;

        if (c->socket_path)
                r = asprintf(&c->broker, "unix:%s", c->socket_path);
        else
                r = asprintf(&c->broker, strchr(c->host, ':') ? "[%s]:%u" : "%s:%u", c->host, c->port);
        if (r < 0)
                return -ENOMEM;

        if (o->client_id) {
                if (!*o->client_id || strlen(o->client_id) > 65535)
                        return log_error_errno(-EINVAL, "MQTT: invalid client id");
                c->client_id = strdup(o->client_id);
                if (!c->client_id)
                        return -ENOMEM;
        } else if (default_client_id(&c->client_id) < 0)
                return -ENOMEM;

        c->mosq = mosquitto_new(c->client_id, true, c);
        if (!c->mosq)
                return log_error_errno(errno == EINVAL ? -EINVAL : -ENOMEM,
                                       "MQTT: cannot create the client: %m");
        mosquitto_connect_v5_callback_set(c->mosq, on_mosq_connect);
        mosquitto_disconnect_v5_callback_set(c->mosq, on_mosq_disconnect);
        mosquitto_message_v5_callback_set(c->mosq, on_mosq_message);
        mosquitto_log_callback_set(c->mosq, on_mosq_log);

        rc = mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                                  c->protocol == MQTT_PROTO_V5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
        if (rc != MOSQ_ERR_SUCCESS)
                return mosq_setup_error(rc, "the protocol version");
        if (!c->socket_path)
                (void) mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);

        if (c->will_topic) {
                const char *p = strempty(c->will_payload);
                rc = mosquitto_will_set(c->mosq, c->will_topic, (int) strlen(p), p, 1, c->will_retain);
                if (rc != MOSQ_ERR_SUCCESS)
                        return mosq_setup_error(rc, "the last will");
        }

        r = mqtt_read_password(o->password_file, &password);
        if (r < 0)
                return r;
        if (password && !o->username) {
                log_warning("MQTT: a password is configured but no Username=; connecting anonymously");
                password = (mqtt_secret_free(password), NULL);
        }
        if (o->username) {
                rc = mosquitto_username_pw_set(c->mosq, o->username, password);
                c->have_password = !!password;
                mqtt_secret_free(password);
                if (rc != MOSQ_ERR_SUCCESS)
                        return mosq_setup_error(rc, "the user name and password");
        }

        if (c->tls) {
                if (o->ca_file && (r = check_readable("CAFile", o->ca_file, false)) < 0)
                        return r;
                if (o->ca_path && (r = check_readable("CAPath", o->ca_path, true)) < 0)
                        return r;
                if (o->cert_file && (r = check_readable("CertFile", o->cert_file, false)) < 0)
                        return r;
                if (o->key_file && (r = check_readable("KeyFile", o->key_file, false)) < 0)
                        return r;
                if (!o->ca_file && !o->ca_path) {
                        rc = mosquitto_int_option(c->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
                        if (rc != MOSQ_ERR_SUCCESS)
                                return mosq_setup_error(rc, "TLS with the system's trust store");
                }
                /* mosquitto_tls_set() insists on a CA; with the system store and a client
                 * certificate, name the system's directory as well. */
                if (o->ca_file || o->ca_path || o->cert_file) {
                        rc = mosquitto_tls_set(c->mosq, o->ca_file,
                                               o->ca_file || o->ca_path ? o->ca_path : "/etc/ssl/certs",
                                               o->cert_file, o->key_file, no_key_password);
                        if (rc != MOSQ_ERR_SUCCESS)
                                return mosq_setup_error(rc, "TLS (CAFile=, CAPath=, CertFile=, KeyFile=)");
                }
                rc = mosquitto_tls_opts_set(c->mosq, c->tls_insecure ? 0 : 1, "tlsv1.2", NULL);
                if (rc != MOSQ_ERR_SUCCESS)
                        return mosq_setup_error(rc, "TLS options");
                if (c->tls_insecure) {
                        rc = mosquitto_tls_insecure_set(c->mosq, true);
                        if (rc != MOSQ_ERR_SUCCESS)
                                return mosq_setup_error(rc, "TLS without checks");
                        log_warning("MQTT: TLSInsecure=yes: the broker's certificate and name are not "
                                    "checked; use this for testing only");
                }
        }

        *ret = TAKE_PTR(c);
        return 0;
}

void mqtt_client_set_handlers(MqttClient *c, mqtt_connect_handler_t on_connect,
                              mqtt_message_handler_t on_message, void *userdata)
{
        c->on_connect = on_connect;
        c->on_message = on_message;
        c->userdata = userdata;
}

int mqtt_client_start(MqttClient *c)
{
        if (c->state != CLIENT_IDLE)
                return -EALREADY;
        log_debug("MQTT: connecting to %s as %s", c->broker, c->client_id);
        client_set_state(c, CLIENT_WAITING);
        client_arm_timer(c, 0);
        return 0;
}

void mqtt_client_stop(MqttClient *c)
{
        ClientState prev;

        if (!c || c->state == CLIENT_STOPPED)
                return;
        if (c->in_mosq > 0) {
                /* Called by a handler from inside libmosquitto: finish there first;
                 * client_after_call() comes back here. */
                c->stop_requested = true;
                return;
        }
        prev = c->state;
        client_set_state(c, CLIENT_STOPPED);
        if (c->timer)
                (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);

        if (prev == CLIENT_CONNECTED) {
                int fd, rc;

                c->in_mosq++;
                if (c->will_topic) {
                        const char *p = strempty(c->will_payload);
                        rc = mosquitto_publish(c->mosq, NULL, c->will_topic, (int) strlen(p), p, 1,
                                               c->will_retain);
                        if (rc != MOSQ_ERR_SUCCESS)
                                log_warning("MQTT: cannot publish %s before disconnecting: %s",
                                            c->will_topic, mosquitto_strerror(rc));
                }
                (void) mosquitto_disconnect(c->mosq);
                /* Let the bytes leave: bounded, this runs at shutdown. */
                for (int waited = 0; waited < STOP_FLUSH_MSEC;) {
                        fd = mosquitto_socket(c->mosq);
                        if (fd < 0 || !mosquitto_want_write(c->mosq))
                                break;
                        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                        if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
                                break;
                        waited += 50;
                        if (mosquitto_loop_write(c->mosq, 1) != MOSQ_ERR_SUCCESS)
                                break;
                }
                c->in_mosq--;
                log_info("MQTT: disconnected from broker %s", c->broker);
        }
        client_drop_io(c);
}

MqttClient *mqtt_client_free(MqttClient *c)
{
        if (!c)
                return NULL;
        mqtt_client_stop(c);
        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->job) {
                c->job_source = sd_event_source_disable_unref(c->job_source);
                c->job_fd = safe_close(c->job_fd);
                atomic_store(&c->job->orphaned, true);
                connect_job_unref(c->job);
        } else if (c->mosq)
                mosquitto_destroy(c->mosq);
        for (size_t i = 0; i < c->n_subs; i++)
                free(c->subs[i].filter);
        free(c->subs);
        for (size_t i = 0; i < c->n_queue; i++)
                pending_free(&c->queue[i]);
        free(c->queue);
        free(c->host);
        free(c->socket_path);
        free(c->broker);
        free(c->client_id);
        free(c->ca_file);
        free(c->ca_path);
        free(c->will_topic);
        free(c->will_payload);
        free(c->birth_topic);
        free(c->birth_payload);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

bool mqtt_client_is_connected(const MqttClient *c)
{
        return c && c->state == CLIENT_CONNECTED;
}

const char *mqtt_client_broker(const MqttClient *c)
{
        return c->broker;
}

/* ---- publish, subscribe ------------------------------------------------------------- */

static int client_hold(MqttClient *c, const char *topic, const void *payload, size_t len, int qos)
{
        _cleanup_free_ char *t = NULL;
        _cleanup_free_ void *p = NULL;
        size_t i;

        t = strdup(topic);
        p = malloc(MAX(len, (size_t) 1));
        if (!t || !p)
                return -ENOMEM;
        if (len > 0)
                memcpy(p, payload, len);

        /* Latest value wins, and moves to the back (oldest is dropped first). */
        for (i = 0; i < c->n_queue; i++)
                if (streq(c->queue[i].topic, topic))
                        break;
        if (i < c->n_queue) {
                pending_free(&c->queue[i]);
                memmove(c->queue + i, c->queue + i + 1, (c->n_queue - i - 1) * sizeof(Pending));
                c->n_queue--;
        } else if (c->n_queue >= c->queue_max) {
                if (!c->queue_full_logged)
                        log_warning("MQTT: more than %zu retained topics changed while disconnected; "
                                    "dropping the oldest (%s)",
                                    c->queue_max, c->queue[0].topic);
                c->queue_full_logged = true;
                pending_free(&c->queue[0]);
                memmove(c->queue, c->queue + 1, (c->n_queue - 1) * sizeof(Pending));
                c->n_queue--;
        } else {
                Pending *q = reallocarray(c->queue, c->n_queue + 1, sizeof(Pending));
                if (!q)
                        return -ENOMEM;
                c->queue = q;
        }
        c->queue[c->n_queue++] =
                        (Pending){ .topic = TAKE_PTR(t), .payload = TAKE_PTR(p), .len = len, .qos = qos };
        return 1;
}

int mqtt_client_publish(MqttClient *c, const char *topic, const void *payload, size_t len, int qos,
                        bool retain)
{
        int rc;

        if (!c || !topic || (!payload && len > 0) || qos < 0 || qos > 2)
                return -EINVAL;
        if (c->state == CLIENT_STOPPED)
                return -ESHUTDOWN;
        if (len > MQTT_PAYLOAD_MAX)
                return -EMSGSIZE;
        if (mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
            mosquitto_validate_utf8(topic, (int) strlen(topic)) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        if (c->state != CLIENT_CONNECTED)
                return retain ? client_hold(c, topic, payload, len, qos) : -ENOTCONN;

        c->in_mosq++;
        rc = mosquitto_publish(c->mosq, NULL, topic, (int) len, payload, qos, retain);
        int saved_errno = errno;
        c->in_mosq--;
        if (c->in_mosq == 0)
                client_after_call(c);
        if (rc == MOSQ_ERR_NO_CONN)
                return retain ? client_hold(c, topic, payload, len, qos) : -ENOTCONN;
        if (rc != MOSQ_ERR_SUCCESS) {
                errno = saved_errno;
                return mqtt_error_from_mosquitto(rc);
        }
        return 0;
}

int mqtt_client_subscribe(MqttClient *c, const char *filter, int qos)
{
        Subscription *s = NULL;
        int rc;

        if (!c || !filter || qos < 0 || qos > 2 || mosquitto_sub_topic_check(filter) != MOSQ_ERR_SUCCESS ||
            mosquitto_validate_utf8(filter, (int) strlen(filter)) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        if (c->state == CLIENT_STOPPED)
                return -ESHUTDOWN;

        for (size_t i = 0; i < c->n_subs; i++)
                if (streq(c->subs[i].filter, filter))
                        s = &c->subs[i];
        if (!s) {
                _cleanup_free_ char *f = strdup(filter);
                Subscription *a = f ? reallocarray(c->subs, c->n_subs + 1, sizeof(Subscription)) : NULL;
                if (!a)
                        return -ENOMEM;
                c->subs = a;
                s = &c->subs[c->n_subs++];
                s->filter = TAKE_PTR(f);
        }
        s->qos = qos;

        if (c->state != CLIENT_CONNECTED)
                return 0;
        c->in_mosq++;
        rc = mosquitto_subscribe(c->mosq, NULL, filter, qos);
        c->in_mosq--;
        if (c->in_mosq == 0)
                client_after_call(c);
        /* Not connected after all: renewed on the next connect anyway. */
        if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
                return mqtt_error_from_mosquitto(rc);
        return 0;
}

int mqtt_client_unsubscribe(MqttClient *c, const char *filter)
{
        size_t i;

        if (!c || !filter)
                return -EINVAL;
        for (i = 0; i < c->n_subs; i++)
                if (streq(c->subs[i].filter, filter))
                        break;
        if (i >= c->n_subs)
                return -ENOENT;
        free(c->subs[i].filter);
        memmove(c->subs + i, c->subs + i + 1, (c->n_subs - i - 1) * sizeof(Subscription));
        c->n_subs--;

        if (c->state != CLIENT_CONNECTED)
                return 0;
        c->in_mosq++;
        (void) mosquitto_unsubscribe(c->mosq, NULL, filter);
        c->in_mosq--;
        if (c->in_mosq == 0)
                client_after_call(c);
        return 0;
}

void mqtt_client_options_from_conf(const Conf *conf, MqttClientOptions *ret)
{
        *ret = (MqttClientOptions){
                .host = conf->mqtt.socket ? NULL : conf->mqtt.host,
                .port = conf->mqtt.port,
                .socket_path = conf->mqtt.socket,
                .client_id = conf->mqtt.client_id,
                .username = conf->mqtt.username,
                .password_file = conf->mqtt.password_file,
                .protocol = conf->mqtt.protocol == CONF_MQTT_V5 ? MQTT_PROTO_V5 : MQTT_PROTO_V311,
                .keepalive_sec = conf->mqtt.keepalive_sec,
                .tls = conf->mqtt.tls,
                .ca_file = conf->mqtt.ca_file,
                .ca_path = conf->mqtt.ca_path,
                .cert_file = conf->mqtt.cert_file,
                .key_file = conf->mqtt.key_file,
                .tls_insecure = conf->mqtt.tls_insecure,
                .reconnect_min_sec = conf->mqtt.reconnect_min_sec,
                .reconnect_max_sec = conf->mqtt.reconnect_max_sec,
        };
}
