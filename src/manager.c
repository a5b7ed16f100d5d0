/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Manager: one per process, owner of everything (see lockhub/manager.h).
 *
 * Event sources of the loop, all owned here:
 *   SIGTERM, SIGINT  → stop: STOPPING=1, leave the loop, close the store
 *   SIGHUP           → manager_reload(): RELOADING=1 … READY=1; an invalid new
 *                      configuration is reported and the old one stays in force
 *   retention timer  → every RETENTION_INTERVAL, trims events and samples to the
 *                      configured limits in small batches; while a batch deleted
 *                      rows, a defer source runs the next one on a later loop
 *                      iteration, so other sources are served in between
 *   watchdog         → sd_event_set_watchdog() pings while the loop turns
 *   system bus       → org.lockhub (src/api/), and later BlueZ
 *
 * Locks: loaded from the store at start-up; each Lock's event sink writes to the
 * store, so every change of the lock model is on disk before D-Bus or MQTT hear of it.
 */

#include <signal.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "lockhub/api.h"
#include "lockhub/codes.h"
#include "lockhub/log.h"
#include "lockhub/manager-bluez.h"
#include "lockhub/manager-health.h"
#include "lockhub/manager-secret.h"
#include "lockhub/manager.h"
#include "lockhub/mqtt-bridge.h"

#define USEC_PER_SEC            1000000ULL
#define RETENTION_FIRST_USEC    (30 * USEC_PER_SEC)
#define RETENTION_INTERVAL_USEC (15 * 60 * USEC_PER_SEC)
#define RETENTION_BATCH         500

static void manager_notify_status(Manager *m);

static void manager_apply_log_level(Manager *m)
{
        if (m->log_level_override >= 0)
                log_set_max_level(m->log_level_override);
        else
                log_set_max_level(m->conf->hub.log_level);
}

int manager_new(const char *config_path, const char *state_dir, int log_level_override, Manager **ret)
{
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->log_level_override = log_level_override;
        m->config_path = strdup(config_path);
        m->state_dir = strdup(state_dir);
        if (!m->config_path || !m->state_dir)
                return -ENOMEM;

        r = conf_load(m->config_path, &m->conf);
        if (r < 0)
                return r; /* every problem was logged with file:line */
        manager_apply_log_level(m);

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m)
{
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->retention_timer);
        sd_event_source_disable_unref(m->retention_defer);
        m->mqtt = mqtt_bridge_free(m->mqtt); /* publishes offline while the loop still exists */
        m->codes = codes_service_free(m->codes);
        for (size_t i = 0; i < m->n_locks; i++)
                lock_free(m->locks[i]);
        free(m->locks);
        manager_health_free(m); /* after the locks: each holds a ladder */
        manager_bluez_free(m);
        sd_bus_flush_close_unref(m->bus);
        store_free(m->store);
        manager_secret_free(m);
        conf_free(m->conf);
        sd_event_unref(m->event);
        free(m->config_path);
        free(m->state_dir);
        free(m);
        return NULL;
}

static uint64_t now_realtime_usec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

Lock *manager_find_lock(Manager *m, const char *name)
{
        for (size_t i = 0; i < m->n_locks; i++)
                if (streq(m->locks[i]->name, name))
                        return m->locks[i];
        return NULL;
}

/* The event sink of every lock: one row per change, written before anyone is told. */
static int manager_record_event(Lock *l, const char *kind, LockSource source, const char *actor,
                                const char *detail_json, void *userdata)
{
        Manager *m = userdata;
        struct store_event e;
        int r;

        store_event_init(&e);
        e.lock_id = l->store_id > 0 ? l->store_id : 0;
        e.kind = (char *) kind;
        e.source = (char *) lock_source_to_string(source);
        e.actor = (char *) actor;
        e.detail = (char *) detail_json;
        r = store_event_append(m->store, &e, NULL);
        if (r < 0) {
                char field[96];
                snprintf(field, sizeof field, "LOCK=%s", l->name);
                return log_struct(LOG_ERR, r, LOG_FIELDS(field), "Failed to record %s event of %s: %m", kind,
                                  l->name);
        }
        return 0;
}

/* The first listener of every lock: the open write batch (the change's event among it) is
 * committed before the other listeners tell D-Bus or MQTT about the change. Listeners are
 * called from the lock's notify defer (lock_set_event()), once per dispatch that changed it:
 * one commit for all the changes of the dispatch, usually already done by the store's commit
 * defer, which runs first. */
static void manager_commit_before_telling(Lock *l, unsigned changes, void *userdata)
{
        Manager *m = userdata;

        (void) store_flush(m->store);
}

/* The database stopped (or resumed) taking writes: Home Assistant hears of it. */
static void manager_write_state(Store *s, int error, void *userdata)
{
        Manager *m = userdata;

        if (error < 0)
                (void) sd_notifyf(false, "STATUS=Database not writable (%s); locks keep working",
                                  strerror(-error));
        else
                manager_notify_status(m);
        mqtt_bridge_info_changed(m->mqtt);
}

int manager_add_lock(Manager *m, const struct store_lock *sl)
{
        _cleanup_(lock_freep) Lock *l = NULL;
        Lock **n;
        int r;

        r = lock_new(sl->name, sl->address, &l);
        if (r < 0)
                return log_error_errno(r,
                                       "Stored lock '%s' (%s) has an invalid name or address, ignoring: %m",
                                       sl->name, sl->address);
        l->store_id = sl->id;
        l->needs_repair = sl->needs_repair;
        if (sl->model)
                l->model = strdup(sl->model);
        if (sl->firmware)
                l->firmware = strdup(sl->firmware);
        l->link.last_seen_usec = sl->last_seen_usec;
        l->event_sink = manager_record_event;
        l->event_sink_userdata = m;
        r = lock_add_listener(l, manager_commit_before_telling, m);
        if (r < 0)
                return log_oom();
        (void) manager_bluez_lock_added(m, l, sl);
        if (m->codes)
                (void) codes_service_add_lock(m->codes, l); /* after the driver is attached */
        /* Wraps the driver ops: after the driver is attached. */
        (void) manager_health_lock_added(m, l);

        n = reallocarray(m->locks, m->n_locks + 1, sizeof *n);
        if (!n)
                return log_oom();
        m->locks = n;
        m->locks[m->n_locks++] = l;
        if (m->mqtt)
                (void) mqtt_bridge_lock_added(m->mqtt, l);
        /* After the listeners are in: what changed while loading was never told before
         * either. Just after the store's commit defer, before every source of normal priority. */
        if (m->event) {
                r = lock_set_event(l, m->event, SD_EVENT_PRIORITY_IMPORTANT + 1);
                if (r < 0)
                        log_warning_errno(r, "Lock %s tells its changes synchronously: %m", l->name);
        }
        r = api_lock_added(m, TAKE_PTR(l));
        if (r < 0)
                return log_error_errno(r, "Failed to publish lock %s on D-Bus: %m", sl->name);
        return 0;
}

int manager_remove_lock(Manager *m, Lock *l)
{
        for (size_t i = 0; i < m->n_locks; i++)
                if (m->locks[i] == l) {
                        memmove(m->locks + i, m->locks + i + 1, (m->n_locks - i - 1) * sizeof *m->locks);
                        m->n_locks--;
                        if (m->mqtt) /* its Home Assistant device goes too */
                                (void) mqtt_bridge_lock_removed(m->mqtt, l);
                        lock_free(l);
                        return 0;
                }
        return -ENOENT;
}

static int manager_load_locks(Manager *m)
{
        struct store_lock *a = NULL;
        size_t n = 0;
        int r;

        r = store_lock_list(m->store, &a, &n);
        if (r < 0)
                return log_error_errno(r, "Failed to read the paired locks from %s: %m",
                                       store_path(m->store));
        for (size_t i = 0; i < n; i++)
                (void) manager_add_lock(m, &a[i]);
        store_lock_array_free(a, n);
        log_info("%zu paired lock(s) loaded.", m->n_locks);
        return 0;
}

/* One batch of retention; returns rows deleted, 0 when nothing is left to do. */
static int manager_retention_batch(Manager *m)
{
        const Conf *c = m->conf;
        uint64_t now = now_realtime_usec();
        int r, total = 0;

        r = store_retention_step(m->store, c->store.event_retention_count, c->store.event_retention_sec,
                                 RETENTION_BATCH, now);
        if (r < 0)
                return log_warning_errno(r, "Failed to apply event retention, will retry: %m");
        total += r;

        r = store_sample_retention_step(m->store, 0, c->store.sample_retention_sec, RETENTION_BATCH, now);
        if (r < 0)
                return log_warning_errno(r, "Failed to apply sample retention, will retry: %m");
        total += r;

        /* Recovery attempts are events of a kind: the same age limit. */
        r = store_recovery_retention_step(m->store, 0, c->store.event_retention_sec, RETENTION_BATCH, now);
        if (r < 0)
                return log_warning_errno(r, "Failed to apply recovery-attempt retention, will retry: %m");
        total += r;

        if (total > 0)
                log_debug("Retention removed %d old rows.", total);
        return total;
}

static int on_retention_defer(sd_event_source *s, void *userdata)
{
        Manager *m = userdata;

        if (manager_retention_batch(m) <= 0)
                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0; /* stays SD_EVENT_ON: next batch on the next iteration */
}

static int on_retention_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        Manager *m = userdata;
        int r;

        r = sd_event_source_set_time_relative(s, RETENTION_INTERVAL_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Failed to re-arm the retention timer: %m");

        if (manager_retention_batch(m) > 0)
                (void) sd_event_source_set_enabled(m->retention_defer, SD_EVENT_ON);
        return 0;
}

static void manager_notify_status(Manager *m)
{
        (void) sd_notifyf(false, "STATUS=Running; %zu lock(s) paired; database schema %u", m->n_locks,
                          store_schema_version());
}

int manager_reload(Manager *m)
{
        _cleanup_(conf_freep) Conf *c = NULL;
        struct timespec ts;
        int r;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=Reloading configuration",
                          (unsigned long long) ts.tv_sec * USEC_PER_SEC +
                                          (unsigned long long) ts.tv_nsec / 1000);

        r = conf_load(m->config_path, &c);
        if (r < 0)
                log_error_errno(r, "Configuration %s is invalid, keeping the previous configuration.",
                                m->config_path);
        else {
                conf_free(m->conf);
                m->conf = TAKE_PTR(c);
                manager_apply_log_level(m);
                m->reloads++;
                mqtt_bridge_reload(m->mqtt);
                manager_health_reload(m);
                log_info("Configuration %s reloaded.", m->config_path);
        }

        (void) sd_notify(false, "READY=1");
        manager_notify_status(m);
        return r;
}

static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        (void) manager_reload(userdata);
        return 0;
}

static int on_terminate(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Manager *m = userdata;

        log_info("Received %s, stopping.", si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        return sd_event_exit(m->event, 0);
}

int manager_start(Manager *m)
{
        sigset_t mask;
        int r;

        r = store_open(m->state_dir, &m->store);
        if (r < 0)
                return r; /* store_open() logged the reason with the path */
        r = manager_secret_start(m);
        if (r < 0)
                return r; /* logged */

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");
        /* Writes of one dispatch are committed together, before any other source runs. */
        r = store_set_event(m->store, m->event, SD_EVENT_PRIORITY_IMPORTANT);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the database to the event loop: %m");
        store_set_write_state_callback(m->store, manager_write_state, m);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(negative_errno(), "Failed to block signals: %m");

        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_terminate, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_terminate, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGHUP, on_sighup, m);
        if (r < 0)
                return log_error_errno(r, "Failed to install signal handlers: %m");

        r = sd_event_add_time_relative(m->event, &m->retention_timer, CLOCK_MONOTONIC, RETENTION_FIRST_USEC,
                                       USEC_PER_SEC, on_retention_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the retention timer: %m");
        r = sd_event_add_defer(m->event, &m->retention_defer, on_retention_defer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->retention_defer, SD_EVENT_OFF);
        if (r >= 0)
                /* Below normal priority: lock traffic goes first. */
                r = sd_event_source_set_priority(m->retention_defer, SD_EVENT_PRIORITY_IDLE);
        if (r < 0)
                return log_error_errno(r, "Failed to add the retention source: %m");

        r = sd_bus_open_system(&m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        r = api_start(m);
        if (r < 0)
                return r;

        r = codes_service_new(m->event, m->store, &m->conf, &m->codes);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the keypad code service: %m");

        r = manager_health_start(m);
        if (r < 0)
                return r;
        r = manager_bluez_start(m);
        if (r < 0)
                return r;
        r = manager_load_locks(m);
        if (r < 0)
                return r;

        if (m->conf->mqtt.enabled) {
                r = mqtt_bridge_new(m, &m->mqtt);
                if (r >= 0)
                        r = mqtt_bridge_start(m->mqtt);
                if (r < 0)
                        return r;
        }

        r = sd_event_set_watchdog(m->event, true);
        if (r < 0)
                return log_error_errno(r, "Failed to enable the watchdog: %m");

        log_info("lockhubd %s started; state in %s, configuration %s.", LOCKHUB_VERSION, m->state_dir,
                 m->config_path);
        (void) sd_notify(false, "READY=1");
        manager_notify_status(m);
        return 0;
}

int manager_run(Manager *m)
{
        int r;

        r = sd_event_loop(m->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}
