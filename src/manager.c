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
 */

#include <signal.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/manager.h"

#define USEC_PER_SEC            1000000ULL
#define RETENTION_FIRST_USEC    (30 * USEC_PER_SEC)
#define RETENTION_INTERVAL_USEC (15 * 60 * USEC_PER_SEC)
#define RETENTION_BATCH         500

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
        store_free(m->store);
        conf_free(m->conf);
        sd_event_unref(m->event);
        free(m->config_path);
        free(m->state_dir);
        free(m);
        return NULL;
}

static uint64_t now_realtime_sec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec;
}

/* One batch of retention; returns rows deleted, 0 when nothing is left to do. */
static int manager_retention_batch(Manager *m)
{
        const ConfStore *c = &m->conf->store;
        int r, total = 0;

        r = store_retention_step(m->store, c->event_retention_count, c->event_retention_sec, RETENTION_BATCH,
                                 now_realtime_sec());
        if (r < 0)
                return log_warning_errno(r, "Failed to apply event retention, will retry: %m");
        total += r;

        r = store_sample_retention_step(m->store, c->sample_retention_sec, RETENTION_BATCH,
                                        now_realtime_sec());
        if (r < 0)
                return log_warning_errno(r, "Failed to apply sample retention, will retry: %m");
        total += r;

        if (total > 0)
                log_debug("Retention removed %d old rows", total);
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
        (void) sd_notifyf(false, "STATUS=Running; database schema %u, %u lock(s) paired",
                          store_schema_version(m->store), store_lock_count(m->store));
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

        r = sd_event_default(&m->event);
        if (r < 0)
                return log_error_errno(r, "Failed to allocate the event loop: %m");

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
