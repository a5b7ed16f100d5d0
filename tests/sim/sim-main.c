/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhub-sim: entry point.
 *
 *   lockhub-sim [--scenario FILE] [--scale N] [--experimental] [--disconnected-signal]
 *               [--seed N] [--log-level L] [--trace FILE]
 *   lockhub-sim ctl ...        drive a running simulator (see sim-control.c)
 *   lockhub-sim test NAME      D-Bus client tests against a running simulator (sim-test.c)
 *
 * Owns org.bluez and org.lockhub.Sim on the bus in DBUS_SYSTEM_BUS_ADDRESS. SIGTERM and
 * SIGINT shut the fake bluetoothd down cleanly (Powered=false cascade, then name loss).
 */

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "sim-lock.h"
#include "sim.h"

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        Sim *sim = userdata;
        /* a clean shutdown, like bluetoothd on SIGTERM; the loop ends when it is done */
        sim->exiting = true;
        sim_bluez_stop(sim, true);
        return 0;
}

static void help(void)
{
        printf("lockhub-sim [OPTIONS]          fake BlueZ with simulated Nuki locks\n"
               "lockhub-sim ctl ...            control a running simulator\n"
               "lockhub-sim test NAME          run a D-Bus client test against it\n\n"
               "  --scenario FILE   adapters and locks (default: hci0 and three locks)\n"
               "  --scale N         divide every delay by N (default 1: real time)\n"
               "  --experimental    act as bluetoothd -E (ConnectDevice exists)\n"
               "  --disconnected-signal  act as bluetoothd 5.83+: Device1.Disconnected before\n"
               "                    Connected=false\n"
               "  --seed N          random seed\n"
               "  --log-level L     emerg..debug\n"
               "  --trace FILE      append benchmark timestamps (Lock Action received, lock\n"
               "                    state set) to FILE\n");
}

int main(int argc, char **argv)
{
        static const struct option options[] = {
                { "scenario", required_argument, NULL, 'f' },
                { "scale", required_argument, NULL, 's' },
                { "experimental", no_argument, NULL, 'x' },
                { "disconnected-signal", no_argument, NULL, 'D' },
                { "seed", required_argument, NULL, 'S' },
                { "log-level", required_argument, NULL, 'l' },
                { "trace", required_argument, NULL, 'T' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        Sim sim = { .seed = 1 };
        const char *scenario = NULL;
        sigset_t mask;
        int c, r;

        log_open(LOG_TARGET_STDERR);
        log_set_ident("lockhub-sim");
        if (argc > 1 && streq(argv[1], "ctl"))
                return sim_ctl_main(argc - 2, argv + 2);
        if (argc > 1 && streq(argv[1], "test"))
                return sim_test_main(argc - 2, argv + 2);

        while ((c = getopt_long(argc, argv, "f:s:xDS:l:T:h", options, NULL)) >= 0)
                switch (c) {
                case 'f':
                        scenario = optarg;
                        break;
                case 's':
                        sim.scale = strtod(optarg, NULL);
                        if (sim.scale <= 0.0) {
                                log_error("--scale must be > 0");
                                return 2;
                        }
                        break;
                case 'x':
                        sim.experimental = true;
                        break;
                case 'D':
                        sim.disconnected_signal = true;
                        break;
                case 'S':
                        sim.seed = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 'l':
                        r = log_level_from_string(optarg);
                        if (r < 0) {
                                log_error("Unknown log level %s", optarg);
                                return 2;
                        }
                        log_set_max_level(r);
                        break;
                case 'T':
                        sim.trace = fopen(optarg, "ae");
                        if (!sim.trace) {
                                log_error_errno(-errno, "Cannot open %s: %m", optarg);
                                return 2;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return 2;
                }

        sim_timings_default(&sim.t);
        r = sd_event_default(&sim.event);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m"), 1;
        (void) sd_event_now(sim.event, CLOCK_MONOTONIC, &sim.start_usec);
        sim.start_realtime = (int64_t) time(NULL);
        if (!scenario && sim.scale <= 0.0)
                sim.scale = 1.0;
        /* the scenario's [sim] section (scale, timings) is applied before any lock exists */
        r = scenario ? sim_load_scenario(&sim, scenario) : sim_load_default(&sim);
        if (r < 0)
                return 1;
        srand48(sim.seed);
        for (size_t i = 0; i < sim.n_locks; i++) {
                r = sim_radio_start(sim.locks[i]);
                if (r < 0)
                        return 1;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(sim.event, NULL, SIGTERM, on_signal, &sim);
        (void) sd_event_add_signal(sim.event, NULL, SIGINT, on_signal, &sim);

        r = sim_control_start(&sim);
        if (r < 0)
                return 1;
        r = sim_bluez_start(&sim);
        if (r < 0)
                return 1;
        log_info("lockhub-sim running: %zu adapter(s), %zu lock(s), time scale %g", sim.n_adapters,
                 sim.n_locks, sim.scale);
        r = sd_event_loop(sim.event);

        sim.restart_timer = sd_event_source_disable_unref(sim.restart_timer);
        sim.stop_timer = sd_event_source_disable_unref(sim.stop_timer);
        sim.exiting = false;
        sim_bluez_stop(&sim, false);
        for (size_t i = 0; i < sim.n_locks; i++)
                sim_lock_free(sim.locks[i]);
        for (size_t i = 0; i < sim.n_adapters; i++)
                sim_adapter_free(sim.adapters[i]);
        sd_bus_flush_close_unref(sim.ctl_bus);
        sd_event_unref(sim.event);
        if (sim.trace)
                fclose(sim.trace);
        return r < 0 ? 1 : 0;
}
