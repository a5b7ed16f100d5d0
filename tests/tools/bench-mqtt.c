/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-mqtt: the Home Assistant side of tests/bench. Sends LOCK/UNLOCK commands on
 * lockhub/<lock>/set and waits for lockhubd's state messages on lockhub/<lock>, with
 * CLOCK_MONOTONIC timestamps (the same clock as lockhub-sim --trace).
 *
 *   bench-mqtt seq PORT LOCK N GAP_MS TIMEOUT_S
 *       N commands one after the other, each the opposite of the lock's current state,
 *       the next GAP_MS after the previous one completed. One line per command:
 *           <i> <publish usec> <final state message usec> <LOCK|UNLOCK>
 *   bench-mqtt burst PORT TIMEOUT_S LOCK...
 *       one command to every lock at once; one line per lock
 *           <lock> <publish usec> <final state message usec, 0 if none> <failure reason or ->
 *       then "completed C of N in S seconds, F failed, L lost"
 *
 * A command is complete when a state message with the target state (LOCKED/UNLOCKED)
 * arrives, failed when lockhub/<lock>/event says "result": "failed" (with its reason),
 * lost when neither happened before the timeout. Connects to 127.0.0.1 only.
 * Exit 0 when every command completed, 1 otherwise.
 */

#include <json-c/json.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/macro.h"

#define MAX_LOCKS 256

typedef struct BenchLock {
        const char *name;
        char topic[96];
        char event_topic[112];
        char state[16];  /* last state seen, "" none */
        char failed[48]; /* reason of a failed event after the command, "" none */
        const char *target;
        unsigned long long t_pub, t_done;
} BenchLock;

static BenchLock locks[MAX_LOCKS];
static size_t n_locks;

static unsigned long long now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000ULL;
}

static void on_message(struct mosquitto *m, void *userdata, const struct mosquitto_message *msg)
{
        unsigned long long t = now_us();
        json_object *o, *s;

        for (size_t i = 0; i < n_locks; i++) {
                BenchLock *l = &locks[i];
                if (streq(msg->topic, l->event_topic) && l->target && !l->t_done && msg->payloadlen > 0) {
                        json_object *r;
                        o = json_tokener_parse((const char *) msg->payload);
                        if (o && json_object_object_get_ex(o, "result", &r) &&
                            streq(json_object_get_string(r), "failed")) {
                                snprintf(l->failed, sizeof l->failed, "%s",
                                         json_object_object_get_ex(o, "reason", &r)
                                                         ? json_object_get_string(r)
                                                         : "failed");
                                l->t_done = t;
                        }
                        json_object_put(o);
                        continue;
                }
                if (!streq(msg->topic, l->topic) || msg->payloadlen <= 0)
                        continue;
                o = json_tokener_parse((const char *) msg->payload);
                if (o && json_object_object_get_ex(o, "state", &s) &&
                    json_object_is_type(s, json_type_string)) {
                        snprintf(l->state, sizeof l->state, "%s", json_object_get_string(s));
                        if (l->target && !l->t_done && streq(l->state, l->target))
                                l->t_done = t;
                }
                json_object_put(o);
        }
}

static int pump(struct mosquitto *m, int ms)
{
        int r = mosquitto_loop(m, ms, 1);
        if (r != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "MQTT: %s\n", mosquitto_strerror(r));
                return -1;
        }
        return 0;
}

/* waits until every lock has a known final state (the retained message); a lock whose
 * state is still unknown (the hub has not read it since it started) gets LOCK first */
static int wait_states(struct mosquitto *m, unsigned long long deadline)
{
        for (;;) {
                bool all = true;
                for (size_t i = 0; i < n_locks; i++)
                        if (!streq(locks[i].state, "LOCKED") && !streq(locks[i].state, "UNLOCKED"))
                                all = false;
                if (all)
                        return 0;
                if (now_us() > deadline)
                        return 0;
                if (pump(m, 20) < 0)
                        return -1;
        }
}

static int send_command(struct mosquitto *m, BenchLock *l)
{
        char topic[128];
        const char *cmd = streq(l->state, "LOCKED") ? "UNLOCK" : "LOCK";

        l->target = streq(cmd, "LOCK") ? "LOCKED" : "UNLOCKED";
        l->t_done = 0;
        l->failed[0] = 0;
        snprintf(topic, sizeof topic, "%s/set", l->topic);
        l->t_pub = now_us();
        return mosquitto_publish(m, NULL, topic, (int) strlen(cmd), cmd, 1, false) == MOSQ_ERR_SUCCESS ? 0
                                                                                                       : -1;
}

int main(int argc, char **argv)
{
        struct mosquitto *m;
        unsigned long long timeout_us, deadline;
        bool seq;
        int port, first, ok = 0;
        unsigned long n = 0, gap_ms = 0;

        if (argc < 5 || (!streq(argv[1], "seq") && !streq(argv[1], "burst")) ||
            (streq(argv[1], "seq") && argc != 7)) {
                fprintf(stderr,
                        "usage: %s seq PORT LOCK N GAP_MS TIMEOUT_S\n"
                        "       %s burst PORT TIMEOUT_S LOCK...\n",
                        argv[0], argv[0]);
                return 2;
        }
        seq = streq(argv[1], "seq");
        port = atoi(argv[2]);
        if (seq) {
                n = strtoul(argv[4], NULL, 10);
                gap_ms = strtoul(argv[5], NULL, 10);
                timeout_us = strtoull(argv[6], NULL, 10) * 1000000ULL;
                first = 3;
                argc = 4;
        } else {
                timeout_us = strtoull(argv[3], NULL, 10) * 1000000ULL;
                first = 4;
        }
        for (int i = first; i < argc && n_locks < MAX_LOCKS; i++) {
                locks[n_locks].name = argv[i];
                snprintf(locks[n_locks].topic, sizeof locks[n_locks].topic, "lockhub/%s", argv[i]);
                snprintf(locks[n_locks].event_topic, sizeof locks[n_locks].event_topic, "lockhub/%s/event",
                         argv[i]);
                n_locks++;
        }

        mosquitto_lib_init();
        m = mosquitto_new(NULL, true, NULL);
        if (!m)
                return 2;
        mosquitto_message_callback_set(m, on_message);
        /* this client's own Nagle delay is not the hub's */
        (void) mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
        if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "cannot connect to 127.0.0.1:%d\n", port);
                return 2;
        }
        for (size_t i = 0; i < n_locks; i++) {
                (void) mosquitto_subscribe(m, NULL, locks[i].topic, 1);
                (void) mosquitto_subscribe(m, NULL, locks[i].event_topic, 1);
        }
        if (wait_states(m, now_us() + 3000000ULL) < 0)
                return 2;

        if (seq) {
                BenchLock *l = &locks[0];
                for (unsigned long i = 0; i < n; i++) {
                        if (send_command(m, l) < 0)
                                break;
                        deadline = l->t_pub + timeout_us;
                        while (!l->t_done && now_us() < deadline)
                                if (pump(m, 5) < 0)
                                        break;
                        if (!l->t_done || l->failed[0]) {
                                fprintf(stderr, "command %lu: %s\n", i,
                                        l->failed[0] ? l->failed : "timeout");
                                break;
                        }
                        printf("%lu %llu %llu %s\n", i, l->t_pub, l->t_done,
                               streq(l->target, "LOCKED") ? "LOCK" : "UNLOCK");
                        ok++;
                        deadline = now_us() + gap_ms * 1000ULL;
                        while (now_us() < deadline)
                                (void) pump(m, (int) MAX(1ULL, (deadline - now_us()) / 1000ULL));
                }
                fflush(stdout);
                mosquitto_disconnect(m);
                mosquitto_destroy(m);
                mosquitto_lib_cleanup();
                return (unsigned long) ok == n ? 0 : 1;
        }

        {
                unsigned long long start = now_us(), end = start;
                size_t done = 0, failed = 0;
                for (size_t i = 0; i < n_locks; i++)
                        (void) send_command(m, &locks[i]);
                deadline = start + timeout_us;
                while (now_us() < deadline) {
                        done = failed = 0;
                        for (size_t i = 0; i < n_locks; i++)
                                if (locks[i].t_done) {
                                        done++;
                                        failed += !!locks[i].failed[0];
                                        end = MAX(end, locks[i].t_done);
                                }
                        if (done == n_locks)
                                break;
                        if (pump(m, 20) < 0)
                                break;
                }
                for (size_t i = 0; i < n_locks; i++)
                        printf("%s %llu %llu %s\n", locks[i].name, locks[i].t_pub, locks[i].t_done,
                               locks[i].failed[0] ? locks[i].failed : "-");
                printf("completed %zu of %zu in %.3f seconds, %zu failed, %zu lost\n", done - failed,
                       n_locks, (double) (end - start) / 1e6, failed, n_locks - done);
                mosquitto_disconnect(m);
                mosquitto_destroy(m);
                mosquitto_lib_cleanup();
                return done == n_locks && !failed ? 0 : 1;
        }
}
