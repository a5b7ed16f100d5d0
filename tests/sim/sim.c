/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The simulator core: scaled time, advert delivery, and the life cycle of the fake
 * bluetoothd on its own bus connection (reference/bluez.md section 5):
 *
 *   start:  take the name org.bluez first, export / and /org/bluez; the adapters
 *           appear adapter_probe later (InterfacesAdded, Powered=false, with the stored
 *           devices but no GATT objects) and AutoEnable powers them auto_enable after.
 *   clean stop (SIGTERM): power every adapter off (the whole Powered=false cascade is
 *           signalled), then drop the connection: the bus sends NameOwnerChanged and no
 *           InterfacesRemoved for what is left.
 *   crash:  drop the connection at once: name loss only.
 *
 * Per-client state (discovery sessions and filters, notify sessions, agents) dies with
 * the connection; the locks and what "bluetoothd stored on disk" (non-temporary
 * devices) survive.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "sim-lock.h"
#include "sim.h"

void sim_timings_default(SimTimings *t)
{
        *t = (SimTimings){
                .le_connect_timeout = 20 * USEC_PER_SEC,
                .disconnect_delay = 2 * USEC_PER_SEC,
                .temporary_timeout = 30 * USEC_PER_SEC,
                .power_delay = 40 * USEC_PER_MSEC,
                .scan_start_delay = 15 * USEC_PER_MSEC,
                .gatt_discovery = 350 * USEC_PER_MSEC,
                .att_round_trip = 60 * USEC_PER_MSEC,
                .adapter_probe = 150 * USEC_PER_MSEC,
                .auto_enable = 100 * USEC_PER_MSEC,
                .pairing_mode = 300 * USEC_PER_SEC,
                .motor_action = 2500 * USEC_PER_MSEC,
                .lockngo = 20 * USEC_PER_SEC,
        };
}

uint64_t sim_scaled(const Sim *sim, uint64_t real_usec)
{
        double v = (double) real_usec / sim->scale;
        return v < 1.0 ? 1 : (uint64_t) v;
}

uint64_t sim_now(const Sim *sim)
{
        uint64_t now = 0;
        (void) sd_event_now(sim->event, CLOCK_MONOTONIC, &now);
        return now;
}

int64_t sim_wallclock(const Sim *sim)
{
        double elapsed = (double) (sim_now(sim) - sim->start_usec) / (double) USEC_PER_SEC * sim->scale;
        return sim->start_realtime + (int64_t) elapsed;
}

int sim_timer(Sim *sim, sd_event_source **s, uint64_t real_usec, sd_event_time_handler_t cb, void *userdata)
{
        /* always a new source: the callback may differ from the old one's (unreferencing
         * a source from its own callback is fine in sd-event) */
        *s = sd_event_source_disable_unref(*s);
        return sd_event_add_time(sim->event, s, CLOCK_MONOTONIC, sim_now(sim) + sim_scaled(sim, real_usec),
                                 1, cb, userdata); /* accuracy 0 would mean 250 ms */
}

void sim_timer_stop(sd_event_source **s)
{
        *s = sd_event_source_disable_unref(*s);
}

double sim_gauss(void)
{
        double u1 = drand48(), u2 = drand48();
        if (u1 < 1e-12)
                u1 = 1e-12;
        return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void sim_trace(Sim *sim, const char *lock, const char *what, unsigned value)
{
        struct timespec ts;

        if (!sim->trace)
                return;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        fprintf(sim->trace, "%llu %s %s %u\n",
                (unsigned long long) ts.tv_sec * 1000000ULL + (unsigned long long) ts.tv_nsec / 1000ULL,
                lock, what, value);
        fflush(sim->trace);
}

SimLock *sim_find_lock(Sim *sim, const char *name)
{
        for (size_t i = 0; i < sim->n_locks; i++)
                if (streq(sim->locks[i]->name, name))
                        return sim->locks[i];
        return NULL;
}

SimAdapter *sim_find_adapter(Sim *sim, const char *name)
{
        for (size_t i = 0; i < sim->n_adapters; i++)
                if (streq(sim->adapters[i]->name, name))
                        return sim->adapters[i];
        return NULL;
}

void sim_deliver_advert(Sim *sim, SimLock *lock, const SimAdvert *ad)
{
        if (!sim_radio_reachable(lock))
                return;
        for (size_t i = 0; i < sim->n_adapters; i++) {
                SimAdapter *a = sim->adapters[i];
                int16_t rssi = sim_radio_rssi(lock, a);
                if (rssi <= -100)
                        continue;
                sim_adapter_device_found(a, lock, ad, rssi);
        }
}

/* ---- /org/bluez: AgentManager1, ProfileManager1 ---- */

typedef struct Agent {
        char *owner;
        char *path;
} Agent;

static Agent agents[32];
static size_t n_agents;

static Agent *find_agent(const char *owner)
{
        for (size_t i = 0; i < n_agents; i++)
                if (streq(agents[i].owner, owner))
                        return &agents[i];
        return NULL;
}

static void drop_agent(Agent *a)
{
        free(a->owner);
        free(a->path);
        *a = agents[--n_agents];
}

static int register_agent(sd_bus_message *m, void *data)
{
        const char *path, *cap;
        int r = sd_bus_message_read(m, "os", &path, &cap);
        if (r < 0)
                return r;
        if (!streq(cap, "") && !streq(cap, "DisplayOnly") && !streq(cap, "DisplayYesNo") &&
            !streq(cap, "KeyboardOnly") && !streq(cap, "NoInputNoOutput") && !streq(cap, "KeyboardDisplay"))
                return sim_reply_error(m, "org.bluez.Error.InvalidArguments",
                                       "Invalid arguments in method call");
        if (find_agent(sd_bus_message_get_sender(m)))
                return sim_reply_error(m, "org.bluez.Error.AlreadyExists", "Already Exists");
        if (n_agents == ELEMENTSOF(agents))
                return sim_reply_error(m, "org.bluez.Error.Failed", "Too many agents");
        agents[n_agents].owner = strdup(sd_bus_message_get_sender(m));
        agents[n_agents].path = strdup(path);
        n_agents++;
        return sim_reply(m, NULL);
}

static int unregister_agent(sd_bus_message *m, void *data)
{
        Agent *a = find_agent(sd_bus_message_get_sender(m));
        const char *path;
        int r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return r;
        if (!a || !streq(a->path, path))
                return sim_reply_error(m, "org.bluez.Error.DoesNotExist", "Does Not Exist");
        drop_agent(a);
        return sim_reply(m, NULL);
}

static int request_default_agent(sd_bus_message *m, void *data)
{
        Agent *a = find_agent(sd_bus_message_get_sender(m));
        if (!a)
                return sim_reply_error(m, "org.bluez.Error.DoesNotExist", "Does Not Exist");
        return sim_reply(m, NULL);
}

static int profile_ok(sd_bus_message *m, void *data)
{
        return sim_reply(m, NULL);
}

static const SimMethod agent_methods[] = {
        { "RegisterAgent", "os", "", register_agent },
        { "UnregisterAgent", "o", "", unregister_agent },
        { "RequestDefaultAgent", "o", "", request_default_agent },
        {},
};
static const SimMethod profile_methods[] = {
        { "RegisterProfile", "osa{sv}", "", profile_ok },
        { "UnregisterProfile", "o", "", profile_ok },
        {},
};
static const SimProperty no_props[] = { {} };
static const SimInterface agent_manager_iface = { "org.bluez.AgentManager1", agent_methods, no_props, NULL };
static const SimInterface profile_manager_iface = { "org.bluez.ProfileManager1", profile_methods, no_props,
                                                    NULL };

static SimObj *root_obj, *manager_obj;

/* ---- life cycle ---- */

static int name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error)
{
        Sim *sim = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (name[0] != ':' || *new_owner)
                return 0;
        for (size_t i = 0; i < sim->n_adapters; i++)
                sim_adapter_client_gone(sim->adapters[i], name);
        for (size_t i = 0; i < n_agents;)
                if (streq(agents[i].owner, name))
                        drop_agent(&agents[i]);
                else
                        i++;
        return 0;
}

static int auto_enable_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        Sim *sim = userdata;
        sim->probe_timer = sd_event_source_disable_unref(sim->probe_timer);
        for (size_t i = 0; i < sim->n_adapters; i++)
                (void) sim_adapter_set_powered(sim->adapters[i], true, NULL);
        return 0;
}

static int probe_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        Sim *sim = userdata;
        for (size_t i = 0; i < sim->n_adapters; i++)
                (void) sim_adapter_register(sim->adapters[i]);
        return sim_timer(sim, &sim->probe_timer, sim->t.auto_enable, auto_enable_handler, sim);
}

int sim_bluez_start(Sim *sim)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        if (sim->bluez)
                return 0;
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(bus, sim->event, 0);
        if (r < 0)
                return r;
        r = sd_bus_match_signal(bus, &sim->name_owner_slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                "org.freedesktop.DBus", "NameOwnerChanged", name_owner_changed, sim);
        if (r < 0)
                return log_error_errno(r, "Failed to watch bus clients: %m");
        r = sim_bus_new(bus, sim->event, &sim->bluez);
        if (r < 0)
                return r;
        root_obj = sim_obj_new(sim->bluez, "/");
        manager_obj = sim_obj_new(sim->bluez, "/org/bluez");
        (void) sim_obj_add_iface(manager_obj, &agent_manager_iface, sim);
        (void) sim_obj_add_iface(manager_obj, &profile_manager_iface, sim);
        r = sd_bus_request_name(bus, "org.bluez", 0);
        if (r < 0) {
                sim->bluez = sim_bus_free(sim->bluez);
                sim->name_owner_slot = sd_bus_slot_unref(sim->name_owner_slot);
                return log_error_errno(r, "Failed to own org.bluez: %m");
        }
        sim->bluez_bus = TAKE_PTR(bus);
        log_info("org.bluez is up");
        return sim_timer(sim, &sim->probe_timer, sim->t.adapter_probe, probe_handler, sim);
}

static void bluez_drop(Sim *sim)
{
        sim->probe_timer = sd_event_source_disable_unref(sim->probe_timer);
        for (size_t i = 0; i < sim->n_adapters; i++)
                sim_adapter_unregister(sim->adapters[i], true);
        for (size_t i = 0; i < n_agents; i++) {
                free(agents[i].owner);
                free(agents[i].path);
        }
        n_agents = 0;
        root_obj = sim_obj_free(root_obj);
        manager_obj = sim_obj_free(manager_obj);
        sim->bluez = sim_bus_free(sim->bluez);
        sim->name_owner_slot = sd_bus_slot_unref(sim->name_owner_slot);
        if (sim->bluez_bus) {
                sd_bus_flush(sim->bluez_bus);
                sd_bus_close(sim->bluez_bus);
                sim->bluez_bus = sd_bus_unref(sim->bluez_bus);
        }
}

static int restart_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        Sim *sim = userdata;
        sim->restart_timer = sd_event_source_disable_unref(sim->restart_timer);
        (void) sim_bluez_start(sim);
        return 0;
}

static int schedule_restart(Sim *sim, uint32_t ms)
{
        sim->restart_timer = sd_event_source_disable_unref(sim->restart_timer);
        if (ms == UINT32_MAX)
                return 0;
        return sd_event_add_time_relative(sim->event, &sim->restart_timer, CLOCK_MONOTONIC,
                                          (uint64_t) ms * USEC_PER_MSEC, 1, restart_handler, sim);
}

static int stop_timer_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        Sim *sim = userdata;

        for (size_t i = 0; i < sim->n_adapters; i++)
                if (sim->adapters[i]->power_pending)
                        return sim_timer(sim, &sim->stop_timer, 5 * USEC_PER_MSEC, stop_timer_handler, sim);
        sim->stop_timer = sd_event_source_disable_unref(sim->stop_timer);
        /* the cascade goes out before the name does */
        sim_bus_flush(sim->bluez);
        log_info("org.bluez goes away (clean shutdown)");
        bluez_drop(sim);
        if (sim->exiting)
                return sd_event_exit(sim->event, 0);
        return schedule_restart(sim, sim->restart_ms);
}

void sim_bluez_stop(Sim *sim, bool clean)
{
        if (!sim->bluez) {
                if (sim->exiting)
                        (void) sd_event_exit(sim->event, 0);
                return;
        }
        if (!clean) {
                sim->stop_timer = sd_event_source_disable_unref(sim->stop_timer);
                log_info("org.bluez goes away (crash)");
                bluez_drop(sim);
                return;
        }
        if (sim->stop_timer)
                return;
        /* power everything down first; the event loop carries the cascade out */
        for (size_t i = 0; i < sim->n_adapters; i++)
                if (sim->adapters[i]->registered)
                        (void) sim_adapter_set_powered(sim->adapters[i], false, NULL);
        (void) sim_timer(sim, &sim->stop_timer, sim->t.power_delay + USEC_PER_MSEC, stop_timer_handler, sim);
}

/* restart_after_ms is wall-clock (not scaled): it is a test's own timing. */
int sim_bluez_crash(Sim *sim, uint32_t restart_after_ms, bool clean)
{
        if (clean && sim->bluez) {
                sim->restart_ms = restart_after_ms;
                sim_bluez_stop(sim, true);
                return 0;
        }
        sim_bluez_stop(sim, false);
        return schedule_restart(sim, restart_after_ms);
}
