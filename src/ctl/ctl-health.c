/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhubctl diagnose [LOCK] [--json]    findings from lockhubd (Manager1.Diagnose)
 * lockhubctl calibrate LOCK [--yes]      recalibrate the lock (Lock1.Calibrate), after a
 *                                        confirmation on a terminal; without a terminal
 *                                        only with --yes
 * lockhubctl support-bundle -o FILE      one JSON document for support: what lockhubd
 *                                        reports (Manager1.SupportBundle, secrets
 *                                        redacted there) plus lockhubd's recent journal
 *                                        entries, read here with sd-journal when this
 *                                        user may read the journal. FILE is created 0600.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "ctl.h"
#include "lockhub/api.h"
#include "lockhub/macro.h"

#define JOURNAL_ENTRIES 1000U

int verb_diagnose(int argc, char *argv[])
{
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *usage = "diagnose [LOCK] [--json]", *out;
        bool json = false;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "jh", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n\nWhat is wrong with a lock, most likely cause first, "
                               "with the evidence, the next step, and what the hub already tried.\n",
                               usage);
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr, "lockhubctl diagnose: unknown option '%s'.\nUsage: lockhubctl %s\n",
                                argv[optind - 1], usage);
                        return CTL_EXIT_USAGE;
                }
        if (argc - optind > 1) {
                fprintf(stderr, "Usage: lockhubctl %s\n", usage);
                return CTL_EXIT_USAGE;
        }
        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1", "Diagnose", &e,
                               &reply, "sb", optind < argc ? argv[optind] : "", json);
        if (r < 0) {
                fprintf(stderr, "lockhubctl diagnose: %s\n", e.message ? e.message : strerror(-r));
                return ctl_exit_from_bus_error(&e, r);
        }
        r = sd_bus_message_read(reply, "s", &out);
        if (r < 0) {
                fprintf(stderr, "lockhubctl diagnose: bad reply: %s\n", strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        fputs(out, stdout);
        if (json)
                putchar('\n');
        return CTL_EXIT_OK;
}

/* 1 yes, 0 no, <0 no terminal to ask on. */
static int confirm(const char *question)
{
        char line[16];

        if (!isatty(STDIN_FILENO))
                return -ENOTTY;
        fprintf(stderr, "%s [y/N] ", question);
        fflush(stderr);
        if (!fgets(line, sizeof line, stdin))
                return 0;
        return line[0] == 'y' || line[0] == 'Y';
}

int verb_calibrate(int argc, char *argv[])
{
        static const struct option options[] = {
                { "yes", no_argument, NULL, 'y' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *path = NULL, *question = NULL, *state = NULL;
        const char *usage = "calibrate LOCK [--yes]", *name;
        bool yes = false;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "yh", options, NULL)) >= 0)
                switch (c) {
                case 'y':
                        yes = true;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n\nCalibrate the lock: it turns to both end positions "
                               "and learns them again (after fitting it, or when it reports it is not "
                               "calibrated). The door should be open while it runs. Asks for confirmation; "
                               "--yes skips the question (needed without a terminal).\n",
                               usage);
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr, "lockhubctl calibrate: unknown option '%s'.\nUsage: lockhubctl %s\n",
                                argv[optind - 1], usage);
                        return CTL_EXIT_USAGE;
                }
        if (argc - optind != 1) {
                fprintf(stderr, "Usage: lockhubctl %s\n", usage);
                return CTL_EXIT_USAGE;
        }
        name = argv[optind];

        /* The lock must exist before anything is asked or announced. */
        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = api_lock_path(name, &path);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        r = sd_bus_get_property_string(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "State", &e, &state);
        if (r < 0) {
                if (sd_bus_error_has_names(&e, SD_BUS_ERROR_UNKNOWN_OBJECT, SD_BUS_ERROR_UNKNOWN_INTERFACE,
                                           SD_BUS_ERROR_UNKNOWN_PROPERTY)) {
                        fprintf(stderr, "lockhubctl: no lock named '%s'. See 'lockhubctl list'.\n", name);
                        return CTL_EXIT_USAGE;
                }
                fprintf(stderr, "lockhubctl calibrate: %s\n", e.message ?: strerror(-r));
                return ctl_exit_from_bus_error(&e, r);
        }

        if (!yes) {
                if (asprintf(&question,
                             "Calibrate %s? The lock turns to both end positions; keep the door open "
                             "and do not touch the key or the knob until it has finished.",
                             name) < 0)
                        return CTL_EXIT_FAILURE;
                r = confirm(question);
                if (r < 0) {
                        fprintf(stderr,
                                "lockhubctl calibrate: not calibrating %s: no terminal to confirm on; "
                                "pass --yes to calibrate without asking.\n",
                                name);
                        return CTL_EXIT_USAGE;
                }
                if (r == 0) {
                        fprintf(stderr, "Not calibrating %s.\n", name);
                        return CTL_EXIT_FAILURE;
                }
        }
        r = sd_bus_message_new_method_call(bus, &m, API_BUS_NAME, path, "org.lockhub.Lock1", "Calibrate");
        if (r < 0)
                return CTL_EXIT_FAILURE;
        fprintf(stderr, "Calibrating %s...\n", name);
        r = sd_bus_call(bus, m, 300 * 1000000ULL, &e, &reply);
        if (r < 0) {
                if (sd_bus_error_has_names(&e, SD_BUS_ERROR_UNKNOWN_OBJECT)) {
                        fprintf(stderr, "lockhubctl: no lock named '%s'. See 'lockhubctl list'.\n", name);
                        return CTL_EXIT_USAGE;
                }
                fprintf(stderr, "lockhubctl calibrate: %s\n", e.message ?: strerror(-r));
                return ctl_exit_from_bus_error(&e, r);
        }
        printf("%s: calibrated.\n", name);
        return CTL_EXIT_OK;
}

static const char *field(sd_journal *j, const char *name, char *buf, size_t size)
{
        const void *d;
        size_t len, n = strlen(name);

        if (sd_journal_get_data(j, name, &d, &len) < 0 || len <= n + 1)
                return NULL;
        len -= n + 1;
        snprintf(buf, size, "%.*s", (int) MIN(len, size - 1), (const char *) d + n + 1);
        return buf;
}

/* lockhubd's newest entries, oldest first; NULL when there is no journal to read. */
static json_object *journal_entries(char **ret_note)
{
        sd_journal *j = NULL;
        json_object *a = NULL;
        unsigned n = 0;
        int r;

        r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        if (r < 0) {
                (void) asprintf(ret_note, "journal not readable: %s", strerror(-r));
                return NULL;
        }
        if (sd_journal_add_match(j, "_SYSTEMD_UNIT=lockhubd.service", 0) < 0 ||
            sd_journal_add_disjunction(j) < 0 ||
            sd_journal_add_match(j, "SYSLOG_IDENTIFIER=lockhubd", 0) < 0 || sd_journal_seek_tail(j) < 0) {
                sd_journal_close(j);
                return NULL;
        }
        a = json_object_new_array();
        while (a && n < JOURNAL_ENTRIES && sd_journal_previous(j) > 0) {
                static const char *const names[] = { "MESSAGE", "PRIORITY", "MESSAGE_ID", "LOCK",
                                                     "ADAPTER", "STEP",     "OUTCOME",    "FINDING" };
                json_object *o = json_object_new_object();
                uint64_t t = 0;
                char buf[2048];

                if (!o)
                        break;
                (void) sd_journal_get_realtime_usec(j, &t);
                json_object_object_add(o, "time_usec", json_object_new_uint64(t));
                for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                        const char *v = field(j, names[i], buf, sizeof buf);
                        if (v)
                                json_object_object_add(o, names[i], json_object_new_string(v));
                }
                json_object_array_add(a, o);
                n++;
        }
        sd_journal_close(j);
        if (a && n == 0)
                (void) asprintf(ret_note,
                                "no journal entries of lockhubd found (not run under systemd, or this "
                                "user may not read the system journal)");
        /* newest first → oldest first */
        if (a) {
                size_t len = json_object_array_length(a);
                json_object *b = json_object_new_array();
                for (size_t i = len; b && i > 0; i--)
                        json_object_array_add(b, json_object_get(json_object_array_get_idx(a, i - 1)));
                json_object_put(a);
                a = b;
        }
        return a;
}

int verb_support_bundle(int argc, char *argv[])
{
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *note = NULL;
        const char *usage = "support-bundle -o FILE", *output = NULL, *text, *s;
        json_object *o, *journal;
        size_t len;
        int c, r, fd;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "o:h", options, NULL)) >= 0)
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n\nWrite everything support needs (models, firmware, "
                               "history, recovery attempts, redacted configuration, lockhubd's journal) to "
                               "FILE (\"-\": standard output). No key, PIN or code is included.\n",
                               usage);
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr,
                                "lockhubctl support-bundle: unknown option '%s'.\nUsage: lockhubctl %s\n",
                                argv[optind - 1], usage);
                        return CTL_EXIT_USAGE;
                }
        if (!output || argc - optind > 0) {
                fprintf(stderr, "Usage: lockhubctl %s\n", usage);
                return CTL_EXIT_USAGE;
        }
        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1", "SupportBundle",
                               &e, &reply, "");
        if (r < 0) {
                fprintf(stderr, "lockhubctl support-bundle: %s\n", e.message ? e.message : strerror(-r));
                return ctl_exit_from_bus_error(&e, r);
        }
        r = sd_bus_message_read(reply, "s", &text);
        o = r >= 0 ? json_tokener_parse(text) : NULL;
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                fprintf(stderr, "lockhubctl support-bundle: lockhubd sent a malformed bundle.\n");
                return CTL_EXIT_FAILURE;
        }
        journal = journal_entries(&note);
        json_object_object_add(o, "journal", journal);
        if (note)
                json_object_object_add(o, "journal_note", json_object_new_string(note));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        len = strlen(s);

        if (streq(output, "-"))
                fd = STDOUT_FILENO;
        else {
                (void) unlink(output); /* a fresh 0600 file, whatever was there */
                fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        }
        if (fd < 0) {
                fprintf(stderr, "lockhubctl support-bundle: cannot create %s: %s\n", output,
                        strerror(errno));
                json_object_put(o);
                return CTL_EXIT_FAILURE;
        }
        for (size_t done = 0; done < len;) {
                ssize_t k = write(fd, s + done, len - done);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "lockhubctl support-bundle: cannot write %s: %s\n", output,
                                strerror(errno));
                        json_object_put(o);
                        if (fd != STDOUT_FILENO)
                                close(fd);
                        return CTL_EXIT_FAILURE;
                }
                done += (size_t) k;
        }
        (void) write(fd, "\n", 1);
        json_object_put(o);
        if (fd != STDOUT_FILENO && close(fd) < 0) {
                fprintf(stderr, "lockhubctl support-bundle: cannot write %s: %s\n", output, strerror(errno));
                return CTL_EXIT_FAILURE;
        }
        if (fd != STDOUT_FILENO)
                fprintf(stderr, "Wrote %s (%zu bytes).%s%s\n", output, len + 1, note ? " Note: " : "",
                        strempty(note));
        return CTL_EXIT_OK;
}
