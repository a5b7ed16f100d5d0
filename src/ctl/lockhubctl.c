/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* lockhubctl: verb dispatch. Each verb lives in its own ctl-*.c file. */

#include <stdio.h>

#include "ctl.h"
#include "lockhub/log.h"

struct verb {
        const char *name;
        int (*run)(int argc, char *argv[]);
        const char *summary;
};

static const struct verb verbs[] = {
        { "list", verb_list, "list paired locks with state, battery and when last seen" },
        { "status", verb_status, "show everything about one lock, or all" },
        { "lock", verb_action, "lock LOCK and wait until it has finished" },
        { "unlock", verb_action, "unlock LOCK and wait until it has finished" },
        { "open", verb_action, "unlatch LOCK (open the door) and wait until it has finished" },
        { "pair", verb_pair, "pair the lock in pairing mode: [ADDRESS] --name NAME [--pin]" },
        { "unpair", verb_unpair, "forget LOCK and remove the hub's authorization from it" },
        { "pin", verb_pin, "set LOCK's security PIN after it was changed in the app: [--pin-stdin]" },
        { "events", verb_events, "show the history of one lock or all: [LOCK] [--since T] [--limit N]" },
        { "monitor", verb_monitor, "print every change of every lock as it happens, until Ctrl-C" },
        { "diagnose", verb_diagnose, "what is wrong with a lock and what to do: [LOCK] [--json]" },
        { "calibrate", verb_calibrate, "recalibrate LOCK (asks first; --yes for scripts)" },
        { "support-bundle", verb_support_bundle, "write a report for support, secrets redacted: -o FILE" },
        { "user", verb_user, "list, add or remove the people who have keypad codes" },
        { "code", verb_code,
          "keypad codes: list (with sync state), add, update, enable, disable, remove, sync" },
        { "backup", verb_backup,
          "save users, codes and settings: [LOCK...|--all] -o FILE [--include-secrets]" },
        { "restore", verb_restore,
          "restore a backup: FILE [--to LOCK] (checked fully before anything changes)" },
        { "auth", verb_auth,
          "the lock's authorizations (apps, bridges, fobs, keypads): list, enable, disable, remove" },
        { "rekey", verb_rekey, "re-seal the secrets in the database with a new key: [--new-key FILE]" },
        { "decode", verb_decode, "decode captured Nuki BLE frames offline (no daemon needed)" },
};

static void help(void)
{
        printf("Usage: lockhubctl [--help|--version] VERB [ARGS...]\n\n"
               "Control and inspect lockhubd.\n\nVerbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-10s %s\n", verbs[i].name, verbs[i].summary);
        printf("\nSee lockhubctl(1).\n");
}

int main(int argc, char *argv[])
{
        log_set_ident("lockhubctl");
        log_open(LOG_TARGET_STDERR);

        if (argc < 2) {
                help();
                return CTL_EXIT_USAGE;
        }
        if (streq(argv[1], "--help") || streq(argv[1], "-h") || streq(argv[1], "help")) {
                help();
                return CTL_EXIT_OK;
        }
        if (streq(argv[1], "--version")) {
                printf("lockhubctl %s\n", LOCKHUB_VERSION);
                return CTL_EXIT_OK;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[1], verbs[i].name))
                        return verbs[i].run(argc - 1, argv + 1);

        fprintf(stderr, "lockhubctl: unknown verb '%s'. Try 'lockhubctl --help'.\n", argv[1]);
        return CTL_EXIT_USAGE;
}
