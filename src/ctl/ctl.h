/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* lockhubctl verbs. Each returns the process exit status (see lockhubctl(1)). */

enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILURE = 1,     /* generic failure, or a message that failed to decode */
        CTL_EXIT_USAGE = 2,       /* bad arguments */
        CTL_EXIT_UNREACHABLE = 3, /* lock or daemon not reachable */
        CTL_EXIT_LOCK_ERROR = 4,  /* the lock reported a failure (jammed, rejected…) */
};

int verb_decode(int argc, char *argv[]);
int verb_list(int argc, char *argv[]);
int verb_status(int argc, char *argv[]);
int verb_action(int argc, char *argv[]); /* lock, unlock, open */
int verb_pair(int argc, char *argv[]);
int verb_unpair(int argc, char *argv[]);
int verb_pin(int argc, char *argv[]);
int verb_events(int argc, char *argv[]);
int verb_monitor(int argc, char *argv[]);
int verb_rekey(int argc, char *argv[]);
int verb_diagnose(int argc, char *argv[]);
int verb_calibrate(int argc, char *argv[]);
int verb_support_bundle(int argc, char *argv[]);
int verb_user(int argc, char *argv[]); /* ctl-codes.c */
int verb_code(int argc, char *argv[]);
int verb_backup(int argc, char *argv[]);
int verb_restore(int argc, char *argv[]);
int verb_auth(int argc, char *argv[]);

/* Shared by the D-Bus verbs. */
#include <systemd/sd-bus.h>
int ctl_bus_connect(sd_bus **ret);
int ctl_exit_from_bus_error(const sd_bus_error *e, int r);
