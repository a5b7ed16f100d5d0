/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-driver-hub: lockhubd's Manager (store, D-Bus API, MQTT bridge) with a scripted
 * stand-in for a lock driver on every paired lock, so that the MQTT side of commands
 * (outcomes, held commands, state and events published on lock changes, unpairing)
 * can be tested before the real driver exists. The driver runs commands in 100 ms;
 * what happens next, and what the "lock" does by itself, is read from stdin:
 *
 *   fail NAME ERRNO              the next command of NAME fails: EDEADLK (jams),
 *                                ETIMEDOUT, EBUSY, EHOSTUNREACH, or EBUSY-NOW (refused
 *                                synchronously)
 *   link NAME up|down [RSSI]     reachable or not
 *   manual NAME ACTION           turned by hand: lock, unlock, open
 *   battery NAME PERCENT critical|ok
 *   door NAME open|closed|tampered
 *   firmware NAME VERSION
 *   unpair NAME                  what unpairing will do on MQTT (mqtt_bridge_lock_removed)
 *
 * Each control line is echoed on stdout as "done: LINE" once applied.
 *
 *   fake-driver-hub --config FILE --state-dir DIR < control
 */

#include <getopt.h>
#include <stdio.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/manager.h"
#include "lockhub/mqtt-bridge.h"

typedef struct FakeLock {
        Lock *lock;
        int next_error; /* 0, or a positive errno; -EBUSY: refuse synchronously */
        sd_event_source *timer;
        LockAction action;
        LockSource source;
        lock_command_done_t done;
        void *userdata;
} FakeLock;

static Manager *manager;

static uint64_t now_usec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000;
}

static LockState final_state(LockAction a)
{
        switch (a) {
        case LOCK_ACTION_UNLOCK:
                return LOCK_STATE_UNLOCKED;
        case LOCK_ACTION_UNLATCH:
        case LOCK_ACTION_LOCK_N_GO_UNLATCH:
                return LOCK_STATE_UNLATCHED;
        case LOCK_ACTION_LOCK:
        case LOCK_ACTION_LOCK_N_GO:
        case LOCK_ACTION_FULL_LOCK:
        case _LOCK_ACTION_MAX:
                break;
        }
        return LOCK_STATE_LOCKED;
}

static int on_finish(sd_event_source *s, uint64_t usec, void *userdata)
{
        FakeLock *f = userdata;
        lock_command_done_t done = f->done;
        int e = f->next_error;

        f->timer = sd_event_source_unref(f->timer);
        f->done = NULL;
        f->next_error = 0;
        if (e == EDEADLK)
                lock_set_state(f->lock, LOCK_STATE_JAMMED, LOCK_SOURCE_LOCK, NULL);
        if (e) {
                done(f->lock, -e, "fake driver: scripted failure", f->userdata);
                return 0;
        }
        lock_set_state(f->lock, final_state(f->action), f->source, NULL);
        lock_set_last_action(f->lock, f->action, f->source, NULL, now_usec());
        done(f->lock, 0, NULL, f->userdata);
        return 0;
}

static int fake_action(Lock *l, LockAction a, LockSource source, const char *actor, lock_command_done_t done,
                       void *userdata)
{
        FakeLock *f = l->driver_data;
        int r;

        if (f->done)
                return -EBUSY;
        if (f->next_error == -EBUSY) {
                f->next_error = 0;
                return -EBUSY;
        }
        r = sd_event_add_time_relative(manager->event, &f->timer, CLOCK_MONOTONIC, 100 * 1000, 0, on_finish,
                                       f);
        if (r < 0)
                return r;
        f->action = a;
        f->source = source;
        f->done = done;
        f->userdata = userdata;
        lock_set_state(l,
                       a == LOCK_ACTION_UNLOCK    ? LOCK_STATE_UNLOCKING
                       : a == LOCK_ACTION_UNLATCH ? LOCK_STATE_UNLATCHING
                                                  : LOCK_STATE_LOCKING,
                       source, actor);
        return 0;
}

static int fake_refresh(Lock *l, lock_command_done_t done, void *userdata)
{
        done(l, 0, NULL, userdata);
        return 0;
}

static void fake_free(Lock *l)
{
        FakeLock *f = l->driver_data;

        if (f->done)
                f->done(l, -ECANCELED, "removed", f->userdata);
        sd_event_source_disable_unref(f->timer);
        free(f);
}

static const struct lock_driver_ops fake_ops = {
        .protocol = "fake",
        .action = fake_action,
        .refresh = fake_refresh,
        .free = fake_free,
};

static void set_link(Lock *l, bool up, int rssi)
{
        LockLink k = l->link;

        k.reachable = up;
        k.connected = false;
        k.rssi = rssi;
        k.last_seen_usec = up ? now_usec() : k.last_seen_usec;
        lock_set_link(l, &k);
}

static int control(const char *line)
{
        char cmd[32], name[64], arg[64] = "", arg2[64] = "";
        Lock *l;
        FakeLock *f;

        if (sscanf(line, "%31s %63s %63s %63s", cmd, name, arg, arg2) < 2)
                return -EINVAL;
        l = manager_find_lock(manager, name);
        if (!l || l->ops != &fake_ops)
                return -ENOENT;
        f = l->driver_data;
        if (streq(cmd, "fail")) {
                f->next_error = streq(arg, "EDEADLK")        ? EDEADLK
                                : streq(arg, "ETIMEDOUT")    ? ETIMEDOUT
                                : streq(arg, "EBUSY")        ? EBUSY
                                : streq(arg, "EHOSTUNREACH") ? EHOSTUNREACH
                                : streq(arg, "EBUSY-NOW")    ? -EBUSY
                                                             : EIO;
        } else if (streq(cmd, "link"))
                set_link(l, streq(arg, "up"), *arg2 ? atoi(arg2) : -70);
        else if (streq(cmd, "manual")) {
                LockAction a = lock_action_from_string(arg);
                if (a >= _LOCK_ACTION_MAX)
                        return -EINVAL;
                lock_set_state(l, final_state(a), LOCK_SOURCE_LOCK, NULL);
                lock_set_last_action(l, a, LOCK_SOURCE_LOCK, "manual", now_usec());
        } else if (streq(cmd, "battery")) {
                LockBattery b = l->battery;
                b.percent = atoi(arg);
                b.critical = streq(arg2, "critical");
                lock_set_battery(l, &b);
        } else if (streq(cmd, "door"))
                lock_set_door(l,
                              streq(arg, "open")       ? LOCK_DOOR_OPEN
                              : streq(arg, "tampered") ? LOCK_DOOR_TAMPERED
                                                       : LOCK_DOOR_CLOSED,
                              LOCK_SOURCE_LOCK);
        else if (streq(cmd, "firmware"))
                lock_set_info(l, l->model, arg);
        else if (streq(cmd, "unpair"))
                return manager->mqtt ? mqtt_bridge_lock_removed(manager->mqtt, l) : -ENOTCONN;
        else
                return -EINVAL;
        return 0;
}

static int on_stdin(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        static char buf[4096];
        static size_t n;
        ssize_t k;
        char *nl;

        k = read(fd, buf + n, sizeof buf - 1 - n);
        if (k <= 0)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        n += (size_t) k;
        buf[n] = '\0';
        while ((nl = strchr(buf, '\n'))) {
                int r;
                *nl = '\0';
                r = control(buf);
                if (r < 0)
                        printf("error %d: %s\n", r, buf);
                else
                        printf("done: %s\n", buf);
                fflush(stdout);
                n -= (size_t) (nl + 1 - buf);
                memmove(buf, nl + 1, n + 1);
        }
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "state-dir", required_argument, NULL, 's' },
                {},
        };
        const char *config = NULL, *state_dir = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case 's':
                        state_dir = optarg;
                        break;
                default:
                        return 2;
                }
        if (!config || !state_dir) {
                fprintf(stderr, "usage: %s --config FILE --state-dir DIR < control\n", argv[0]);
                return 2;
        }
        log_set_ident("fake-driver-hub");
        log_open(LOG_TARGET_STDERR);

        r = manager_new(config, state_dir, -1, &manager);
        if (r < 0)
                return 1;
        r = manager_start(manager);
        if (r < 0)
                goto finish;
        for (size_t i = 0; i < manager->n_locks; i++) {
                Lock *l = manager->locks[i];
                FakeLock *f;

                if (l->ops) {
                        log_warning("%s already has a driver, leaving it alone.", l->name);
                        continue;
                }
                f = calloc(1, sizeof *f);
                if (!f) {
                        r = log_oom();
                        goto finish;
                }
                f->lock = l;
                l->driver_data = f;
                l->ops = &fake_ops;
                /* Rows without pairing credentials are marked for re-pairing; this driver needs none. */
                lock_set_needs_repair(l, false);
                set_link(l, true, -70);
        }
        r = sd_event_add_io(manager->event, NULL, STDIN_FILENO, EPOLLIN, on_stdin, NULL);
        if (r < 0)
                goto finish;
        r = manager_run(manager);
finish:
        manager = manager_free(manager);
        return r < 0 ? 1 : 0;
}
