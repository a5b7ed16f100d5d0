/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhubctl rekey: rotate the hub key that seals the secrets in the database.
 *
 *   lockhubctl rekey                  lockhubd makes the new key and writes its key file
 *   lockhubctl rekey --new-key FILE   the new key is FILE (created 0600 with a random key
 *                                     when missing); for a key kept as a systemd credential
 *
 * The key goes to lockhubd over the system bus (the call is marked sensitive); it is never
 * printed. Exit status as in ctl.h.
 */

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>

#include "ctl.h"
#include "lockhub/api.h"
#include "lockhub/macro.h"
#include "lockhub/secret.h"

#define USEC_PER_SEC 1000000ULL
#define USAGE        "Usage: lockhubctl rekey [--new-key FILE]\n"

/* Reads FILE, or creates it with a new random key when it does not exist. */
static int new_key_from_file(const char *path, SecretKey **ret, bool *ret_created)
{
        SecretKey *k = NULL;
        int fd, r;

        *ret_created = false;
        r = secret_key_read_file(path, &k);
        if (r >= 0) {
                *ret = k;
                return 0;
        }
        if (r != -ENOENT)
                return r; /* logged: mode, size, owner */

        r = secret_key_generate(&k);
        if (r < 0)
                return r;
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || fchmod(fd, 0600) < 0 ||
            write(fd, k->bytes, sizeof k->bytes) != (ssize_t) sizeof k->bytes || fsync(fd) < 0) {
                r = errno > 0 ? -errno : -EIO;
                if (fd >= 0) {
                        (void) unlink(path);
                        close(fd);
                }
                secret_key_free(k);
                fprintf(stderr, "lockhubctl: cannot create %s: %s\n", path, strerror(-r));
                return r;
        }
        close(fd);
        *ret_created = true;
        *ret = k;
        return 0;
}

int verb_rekey(int argc, char *argv[])
{
        static const struct option options[] = {
                { "new-key", required_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(secret_key_freep) SecretKey *k = NULL;
        const char *key_file = NULL, *id, *source, *message;
        bool created = false;
        uint32_t version;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "k:h", options, NULL)) >= 0)
                switch (c) {
                case 'k':
                        key_file = optarg;
                        break;
                case 'h':
                        printf(USAGE "Re-seal the secrets in lockhubd's database with a new key. See "
                                     "lockhubctl(1).\n");
                        return CTL_EXIT_OK;
                default:
                        fprintf(stderr, USAGE);
                        return CTL_EXIT_USAGE;
                }
        if (optind != argc) {
                fprintf(stderr, USAGE);
                return CTL_EXIT_USAGE;
        }

        if (key_file) {
                r = new_key_from_file(key_file, &k, &created);
                if (r < 0)
                        return CTL_EXIT_USAGE;
        }

        r = ctl_bus_connect(&bus);
        if (r < 0)
                return CTL_EXIT_UNREACHABLE;
        r = sd_bus_message_new_method_call(bus, &m, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1",
                                           "Rekey");
        if (r >= 0)
                r = sd_bus_message_sensitive(m);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', k ? k->bytes : NULL, k ? sizeof k->bytes : 0);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        r = sd_bus_call(bus, m, 60 * USEC_PER_SEC, &e, &reply);
        if (r < 0) {
                fprintf(stderr, "lockhubctl: rekey failed: %s\n", e.message ?: strerror(-r));
                if (created)
                        (void) unlink(key_file); /* never used: do not leave a key lying around */
                if (sd_bus_error_has_names(&e, "org.lockhub.Error.NotSupported",
                                           "org.lockhub.Error.InvalidArgs"))
                        return CTL_EXIT_USAGE;
                r = ctl_exit_from_bus_error(&e, r);
                return r == CTL_EXIT_LOCK_ERROR ? CTL_EXIT_FAILURE : r;
        }
        r = sd_bus_message_read(reply, "suss", &id, &version, &source, &message);
        if (r < 0)
                return CTL_EXIT_FAILURE;

        printf("%s\n", message);
        if (streq(source, "credential") && key_file)
                printf("\nInstall it as the credential and remove the plain copy:\n"
                       "  systemd-creds encrypt --name=%s %s /etc/credstore.encrypted/%s\n"
                       "  shred -u %s\n",
                       SECRET_CREDENTIAL, key_file, SECRET_CREDENTIAL, key_file);
        else if (key_file)
                printf("%s is a copy of the new key: keep it with your backups, or remove it (shred -u "
                       "%s).\n",
                       key_file, key_file);
        return CTL_EXIT_OK;
}
