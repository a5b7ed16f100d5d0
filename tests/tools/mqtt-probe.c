/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mqtt-probe: the MQTT client on an sd-event loop, for tests/integration/t-mqtt-client.sh.
 *
 * Connects with the options given, subscribes to every --sub, and prints one line per
 * event on stdout:
 *      connected
 *      disconnected <errno name>
 *      message <topic> <payload>          (retained messages: "message-retained")
 *      publish <rc>                       (the result of a stdin "pub"/"pubr" command)
 * Commands on stdin, one per line: "pub TOPIC PAYLOAD", "pubr TOPIC PAYLOAD" (retained),
 * "sub FILTER", "unsub FILTER", "stop" (stop the client and exit), "free" (free the
 * client but keep running), "quit". SIGTERM/SIGINT stop cleanly (the will payload is
 * published first). Logs go to stderr.
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "lockhub/log.h"
#include "lockhub/mqtt-client.h"

typedef struct Probe {
        sd_event *event;
        MqttClient *client;
        char buf[8192];
        size_t n;
} Probe;

static void on_connect(MqttClient *c, bool connected, int error, void *userdata)
{
        if (connected)
                printf("connected\n");
        else
                printf("disconnected %s\n", strerrorname_np(-error) ?: "?");
        fflush(stdout);
}

static void on_message(MqttClient *c, const char *topic, const void *payload, size_t len, bool retained,
                       void *userdata)
{
        printf("message%s %s %.*s\n", retained ? "-retained" : "", topic, (int) len, (const char *) payload);
        fflush(stdout);
}

static void probe_command(Probe *p, char *line)
{
        char *arg = strchr(line, ' '), *payload = NULL;
        int r;

        if (arg) {
                *arg++ = '\0';
                payload = strchr(arg, ' ');
                if (payload)
                        *payload++ = '\0';
        }
        if (streq(line, "quit")) {
                (void) sd_event_exit(p->event, 0);
                return;
        }
        if (!p->client) {
                printf("no client\n");
                fflush(stdout);
                return;
        }
        if (streq(line, "free")) {
                p->client = mqtt_client_free(p->client);
                printf("freed\n");
        } else if ((streq(line, "pub") || streq(line, "pubr")) && arg) {
                r = mqtt_client_publish_string(p->client, arg, strempty(payload), 1, streq(line, "pubr"));
                printf("publish %d\n", r);
        } else if (streq(line, "sub") && arg) {
                r = mqtt_client_subscribe(p->client, arg, 1);
                printf("subscribe %d\n", r);
        } else if (streq(line, "unsub") && arg) {
                r = mqtt_client_unsubscribe(p->client, arg);
                printf("unsubscribe %d\n", r);
        } else if (streq(line, "stop")) {
                mqtt_client_stop(p->client);
                (void) sd_event_exit(p->event, 0);
        } else
                printf("unknown command\n");
        fflush(stdout);
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        Probe *p = userdata;
        ssize_t k = read(fd, p->buf + p->n, sizeof(p->buf) - 1 - p->n);
        char *nl;

        if (k <= 0) {
                if (k < 0 && errno == EAGAIN)
                        return 0;
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        }
        p->n += (size_t) k;
        p->buf[p->n] = '\0';
        while ((nl = strchr(p->buf, '\n'))) {
                *nl = '\0';
                probe_command(p, p->buf);
                p->n -= (size_t) (nl + 1 - p->buf);
                memmove(p->buf, nl + 1, p->n + 1);
        }
        if (p->n >= sizeof(p->buf) - 1)
                p->n = 0;
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Probe *p = userdata;

        mqtt_client_stop(p->client);
        return sd_event_exit(p->event, 0);
}

static void usage(void)
{
        fprintf(stderr, "usage: mqtt-probe [--host H --port P | --socket PATH] [--tls --cafile F --capath D "
                        "--cert F --key F --insecure] [--username U --password-file F] [--client-id ID] "
                        "[--protocol 3.1.1|5] [--keepalive S] [--reconnect-min S --reconnect-max S] "
                        "[--will-topic T --will-payload P] [--birth-topic T --birth-payload P] [--sub F]... "
                        "[--queue-max N] [--debug]\n");
}

int main(int argc, char **argv)
{
        enum {
                ARG_HOST = 0x100,
                ARG_PORT,
                ARG_SOCKET,
                ARG_TLS,
                ARG_CAFILE,
                ARG_CAPATH,
                ARG_CERT,
                ARG_KEY,
                ARG_INSECURE,
                ARG_USERNAME,
                ARG_PASSWORD_FILE,
                ARG_CLIENT_ID,
                ARG_PROTOCOL,
                ARG_KEEPALIVE,
                ARG_RMIN,
                ARG_RMAX,
                ARG_WILL_TOPIC,
                ARG_WILL_PAYLOAD,
                ARG_BIRTH_TOPIC,
                ARG_BIRTH_PAYLOAD,
                ARG_SUB,
                ARG_DEBUG,
                ARG_QUEUE_MAX,
        };
        static const struct option options[] = {
                { "host", required_argument, NULL, ARG_HOST },
                { "port", required_argument, NULL, ARG_PORT },
                { "socket", required_argument, NULL, ARG_SOCKET },
                { "tls", no_argument, NULL, ARG_TLS },
                { "cafile", required_argument, NULL, ARG_CAFILE },
                { "capath", required_argument, NULL, ARG_CAPATH },
                { "cert", required_argument, NULL, ARG_CERT },
                { "key", required_argument, NULL, ARG_KEY },
                { "insecure", no_argument, NULL, ARG_INSECURE },
                { "username", required_argument, NULL, ARG_USERNAME },
                { "password-file", required_argument, NULL, ARG_PASSWORD_FILE },
                { "client-id", required_argument, NULL, ARG_CLIENT_ID },
                { "protocol", required_argument, NULL, ARG_PROTOCOL },
                { "keepalive", required_argument, NULL, ARG_KEEPALIVE },
                { "reconnect-min", required_argument, NULL, ARG_RMIN },
                { "reconnect-max", required_argument, NULL, ARG_RMAX },
                { "will-topic", required_argument, NULL, ARG_WILL_TOPIC },
                { "will-payload", required_argument, NULL, ARG_WILL_PAYLOAD },
                { "birth-topic", required_argument, NULL, ARG_BIRTH_TOPIC },
                { "birth-payload", required_argument, NULL, ARG_BIRTH_PAYLOAD },
                { "sub", required_argument, NULL, ARG_SUB },
                { "debug", no_argument, NULL, ARG_DEBUG },
                { "queue-max", required_argument, NULL, ARG_QUEUE_MAX },
                {},
        };
        MqttClientOptions o = { .will_retain = true, .birth_retain = true };
        const char *subs[32];
        size_t n_subs = 0;
        Probe p = {};
        sigset_t mask;
        int c, r;

        log_open(LOG_TARGET_STDERR);
        log_set_ident("mqtt-probe");
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case ARG_HOST:
                        o.host = optarg;
                        break;
                case ARG_PORT:
                        o.port = (unsigned) atoi(optarg);
                        break;
                case ARG_SOCKET:
                        o.socket_path = optarg;
                        break;
                case ARG_TLS:
                        o.tls = true;
                        break;
                case ARG_CAFILE:
                        o.ca_file = optarg;
                        break;
                case ARG_CAPATH:
                        o.ca_path = optarg;
                        break;
                case ARG_CERT:
                        o.cert_file = optarg;
                        break;
                case ARG_KEY:
                        o.key_file = optarg;
                        break;
                case ARG_INSECURE:
                        o.tls_insecure = true;
                        break;
                case ARG_USERNAME:
                        o.username = optarg;
                        break;
                case ARG_PASSWORD_FILE:
                        o.password_file = optarg;
                        break;
                case ARG_CLIENT_ID:
                        o.client_id = optarg;
                        break;
                case ARG_PROTOCOL:
                        o.protocol = streq(optarg, "5") ? MQTT_PROTO_V5 : MQTT_PROTO_V311;
                        break;
                case ARG_KEEPALIVE:
                        o.keepalive_sec = (unsigned) atoi(optarg);
                        break;
                case ARG_RMIN:
                        o.reconnect_min_sec = (unsigned) atoi(optarg);
                        break;
                case ARG_RMAX:
                        o.reconnect_max_sec = (unsigned) atoi(optarg);
                        break;
                case ARG_WILL_TOPIC:
                        o.will_topic = optarg;
                        break;
                case ARG_WILL_PAYLOAD:
                        o.will_payload = optarg;
                        break;
                case ARG_BIRTH_TOPIC:
                        o.birth_topic = optarg;
                        break;
                case ARG_BIRTH_PAYLOAD:
                        o.birth_payload = optarg;
                        break;
                case ARG_SUB:
                        if (n_subs < ELEMENTSOF(subs))
                                subs[n_subs++] = optarg;
                        break;
                case ARG_QUEUE_MAX:
                        o.queue_max = (size_t) atoi(optarg);
                        break;
                case ARG_DEBUG:
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        usage();
                        return 2;
                }

        r = sd_event_default(&p.event);
        if (r < 0)
                return log_error_errno(r, "Cannot create the event loop: %m"), 1;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(p.event, NULL, SIGTERM, on_signal, &p);
        (void) sd_event_add_signal(p.event, NULL, SIGINT, on_signal, &p);

        r = mqtt_client_new(p.event, &o, &p.client);
        if (r < 0)
                return 1;
        mqtt_client_set_handlers(p.client, on_connect, on_message, &p);
        for (size_t i = 0; i < n_subs; i++)
                if (mqtt_client_subscribe(p.client, subs[i], 1) < 0)
                        return log_error("Invalid topic filter %s", subs[i]), 2;
        /* stdin may be /dev/null, which epoll refuses: then there are just no commands. */
        (void) sd_event_add_io(p.event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, &p);

        r = mqtt_client_start(p.client);
        if (r < 0)
                return 1;
        r = sd_event_loop(p.event);
        p.client = mqtt_client_free(p.client);
        sd_event_unref(p.event);
        return r < 0 ? 1 : 0;
}
