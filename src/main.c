/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockhubd: arguments, then the Manager does everything. */

#include <getopt.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "lockhub/log.h"
#include "lockhub/manager.h"

static const char *arg_config = LOCKHUB_SYSCONFDIR "/lockhub/lockhub.conf";
static const char *arg_state_dir;
static int arg_log_level = -1;

static void help(void)
{
        printf("Usage: lockhubd [OPTIONS]\n"
               "Bridge Bluetooth LE smart locks to the home: BlueZ, SQLite, MQTT/Home Assistant.\n\n"
               "  -c, --config PATH       configuration file (default %s)\n"
               "  -s, --state-dir PATH    state directory (default $STATE_DIRECTORY, else "
               "/var/lib/lockhub)\n"
               "  -l, --log-level LEVEL   emerg, alert, crit, err, warning, notice, info or debug\n"
               "                          (overrides LogLevel= of the configuration)\n"
               "  -h, --help              show this help\n"
               "      --version           show the version\n\n"
               "See lockhubd(8) and lockhub.conf(5).\n",
               LOCKHUB_SYSCONFDIR "/lockhub/lockhub.conf");
}

/* Returns 1 to run, 0 to exit successfully, or a negative errno for a usage error. */
static int parse_argv(int argc, char *argv[])
{
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },    { "state-dir", required_argument, NULL, 's' },
                { "log-level", required_argument, NULL, 'l' }, { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION }, {},
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":c:s:l:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case 's':
                        arg_state_dir = optarg;
                        break;
                case 'l':
                        arg_log_level = log_level_from_string(optarg);
                        if (arg_log_level < 0)
                                return log_error_errno(-EINVAL, "Invalid log level '%s'.", optarg);
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("lockhubd %s\n", LOCKHUB_VERSION);
                        return 0;
                case ':':
                        return log_error_errno(-EINVAL, "Option '%s' needs an argument.", argv[optind - 1]);
                default:
                        return log_error_errno(-EINVAL, "Unknown option '%s'.", argv[optind - 1]);
                }

        if (optind < argc)
                return log_error_errno(-EINVAL, "Unexpected argument '%s'.", argv[optind]);
        return 1;
}

static const char *default_state_dir(void)
{
        static char buf[4096];
        const char *e = getenv("STATE_DIRECTORY");

        if (!e || !*e)
                return "/var/lib/lockhub";
        /* systemd passes a colon-separated list when several are configured; ours is the first. */
        snprintf(buf, sizeof buf, "%.*s", (int) strcspn(e, ":"), e);
        return buf;
}

int main(int argc, char *argv[])
{
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        log_set_ident("lockhubd");
        log_open(LOG_TARGET_AUTO);

        r = parse_argv(argc, argv);
        if (r < 0) {
                fprintf(stderr, "Try 'lockhubd --help'.\n");
                return LOCKHUBD_EXIT_USAGE;
        }
        if (r == 0)
                return 0;
        if (arg_log_level >= 0)
                log_set_max_level(arg_log_level);

        r = manager_new(arg_config, arg_state_dir ?: default_state_dir(), arg_log_level, &m);
        if (r == -ENOMEM)
                return log_error_errno(r, "Out of memory."), LOCKHUBD_EXIT_FAILURE;
        if (r < 0) {
                /* conf_load() has logged every problem with file:line, and a summary */
                (void) sd_notifyf(false, "STATUS=Invalid configuration %s\nERRNO=%d", arg_config, -r);
                return LOCKHUBD_EXIT_CONFIG;
        }

        r = manager_start(m);
        if (r < 0) {
                (void) sd_notifyf(false, "STATUS=Failed to start: %s\nERRNO=%d", strerror(-r), -r);
                switch (r) {
                case -EPROTONOSUPPORT: /* database newer than this binary */
                case -EUCLEAN:         /* corrupt, or not a database */
                case -EKEYREJECTED:    /* sealed with another key */
                        return LOCKHUBD_EXIT_DATABASE;
                case -ENOKEY: /* no usable hub key */
                        return LOCKHUBD_EXIT_CONFIG;
                default:
                        return LOCKHUBD_EXIT_FAILURE;
                }
        }

        r = manager_run(m);
        return r < 0 ? LOCKHUBD_EXIT_FAILURE : 0;
}
