/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhubctl user …, code …, backup, restore: the Manager1 methods of src/api/api-codes.c.
 *
 * Code digits and passphrases never have to appear on the command line: without --digits
 * the digits are read from standard input (a prompt without echo on a terminal), and a
 * passphrase comes from --passphrase-file or a prompt on the terminal. Backups are written
 * 0600, through a temporary file renamed into place, so a failed backup never leaves half
 * a file under the name asked for.
 */

#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <termios.h>
#include <time.h>

#include "ctl.h"
#include "lockhub/api.h"
#include "lockhub/macro.h"

#define LOCKS_MAX 64

static int bus_fail(const char *what, const sd_bus_error *e, int r)
{
        if (sd_bus_error_has_name(e, "org.lockhub.Error.CodeRule")) {
                fprintf(stderr, "lockhubctl: code refused by rule %s\n", e->message);
                return CTL_EXIT_USAGE;
        }
        fprintf(stderr, "lockhubctl: %s: %s\n", what, e && e->message ? e->message : strerror(-r));
        if (sd_bus_error_has_names(e, "org.lockhub.Error.NotFound", "org.lockhub.Error.Exists",
                                   "org.lockhub.Error.InvalidBackup", "org.lockhub.Error.WrongPassphrase",
                                   "org.lockhub.Error.PassphraseRequired", "org.lockhub.Error.NewerBackup"))
                return CTL_EXIT_USAGE;
        return ctl_exit_from_bus_error(e, r);
}

static int usage(const char *u)
{
        fprintf(stderr, "Usage: lockhubctl %s\n", u);
        return CTL_EXIT_USAGE;
}

/* A line from fd-less input: the terminal without echo, or standard input. */
static int read_secret(const char *prompt, char *buf, size_t size)
{
        struct termios old, quiet;
        bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
        size_t n;

        if (tty) {
                fprintf(stderr, "%s", prompt);
                quiet = old;
                quiet.c_lflag &= (tcflag_t) ~ECHO;
                (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        }
        if (!fgets(buf, (int) size, stdin))
                buf[0] = '\0';
        if (tty) {
                (void) tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
                fprintf(stderr, "\n");
        }
        n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
        return n > 0 ? 0 : -ENODATA;
}

static int read_passphrase_file(const char *path, char *buf, size_t size)
{
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return negative_errno();
        if (!fgets(buf, (int) size, f))
                buf[0] = '\0';
        fclose(f);
        n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                buf[--n] = '\0';
        return n > 0 ? 0 : -ENODATA;
}

static int get_passphrase(const char *file, bool confirm, char *buf, size_t size)
{
        char again[256];
        int r;

        if (file) {
                r = read_passphrase_file(file, buf, size);
                if (r < 0)
                        fprintf(stderr, "lockhubctl: cannot read a passphrase from %s: %s\n", file,
                                strerror(-r));
                return r;
        }
        if (!isatty(STDIN_FILENO)) {
                fprintf(stderr, "lockhubctl: a passphrase is needed: use --passphrase-file FILE\n");
                return -ENOKEY;
        }
        r = read_secret("Passphrase: ", buf, size);
        if (r >= 0 && confirm) {
                r = read_secret("Passphrase again: ", again, sizeof again);
                if (r >= 0 && !streq(again, buf)) {
                        fprintf(stderr, "lockhubctl: the passphrases differ\n");
                        r = -EINVAL;
                }
                explicit_bzero(again, sizeof again);
        }
        if (r == -ENODATA)
                fprintf(stderr, "lockhubctl: an empty passphrase is not allowed\n");
        return r;
}

/* ---- schedule arguments ---- */

/* "YYYY-MM-DD" or "YYYY-MM-DD HH:MM" (local time), or "@SECONDS" since the epoch. */
static int parse_date(const char *s, uint64_t *ret)
{
        struct tm tm = {};
        const char *end;
        time_t t;

        if (s[0] == '@') {
                char *e;
                unsigned long long v = strtoull(s + 1, &e, 10);
                if (*e || e == s + 1)
                        return -EINVAL;
                *ret = (uint64_t) v * 1000000;
                return 0;
        }
        end = strptime(s, "%Y-%m-%d", &tm);
        if (end && *end)
                end = strptime(end, " %H:%M", &tm);
        if (!end || *end)
                return -EINVAL;
        tm.tm_isdst = -1;
        t = mktime(&tm);
        if (t <= 0)
                return -EINVAL;
        *ret = (uint64_t) t * 1000000;
        return 0;
}

static const char *const day_names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

static int day_index(const char *s, size_t n)
{
        for (int i = 0; i < 7; i++)
                if (n == 3 && strncasecmp(s, day_names[i], 3) == 0)
                        return i;
        return -1;
}

/* "mon,wed,fri", "mon-fri", "sat-sun", "all". */
static int parse_weekdays(const char *s, unsigned *ret)
{
        unsigned mask = 0;

        if (streq(s, "all")) {
                *ret = 0x7f;
                return 0;
        }
        while (*s) {
                size_t n = strcspn(s, ",");
                const char *dash = memchr(s, '-', n);
                int a, b;

                if (dash) {
                        a = day_index(s, (size_t) (dash - s));
                        b = day_index(dash + 1, n - (size_t) (dash - s) - 1);
                } else
                        a = b = day_index(s, n);
                if (a < 0 || b < 0 || b < a)
                        return -EINVAL;
                for (int i = a; i <= b; i++)
                        mask |= 1u << i;
                s += n;
                if (*s == ',')
                        s++;
        }
        if (mask == 0)
                return -EINVAL;
        *ret = mask;
        return 0;
}

/* "HH:MM-HH:MM". */
static int parse_window(const char *s, int *from, int *until)
{
        unsigned h1, m1, h2, m2;
        char tail;

        if (sscanf(s, "%u:%u-%u:%u%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 > 23 || h2 > 23 || m1 > 59 ||
            m2 > 59)
                return -EINVAL;
        *from = (int) (h1 * 60 + m1);
        *until = (int) (h2 * 60 + m2);
        return 0;
}

enum {
        ARG_LOCK = 0x100,
        ARG_DIGITS,
        ARG_NAME,
        ARG_FROM,
        ARG_UNTIL,
        ARG_WEEKDAYS,
        ARG_TIME,
        ARG_NO_LIMITS,
        ARG_DISABLED,
        ARG_JSON,
};

struct code_args {
        const char *locks[LOCKS_MAX];
        size_t n_locks;
        const char *digits, *name;
        bool has_from, has_until, has_weekdays, has_time, no_limits, disabled, json;
        uint64_t from, until;
        unsigned weekdays;
        int time_from, time_until;
};

static int parse_code_args(int argc, char *argv[], struct code_args *a, const char *u)
{
        static const struct option options[] = {
                { "lock", required_argument, NULL, ARG_LOCK },
                { "digits", required_argument, NULL, ARG_DIGITS },
                { "name", required_argument, NULL, ARG_NAME },
                { "from", required_argument, NULL, ARG_FROM },
                { "until", required_argument, NULL, ARG_UNTIL },
                { "weekdays", required_argument, NULL, ARG_WEEKDAYS },
                { "time", required_argument, NULL, ARG_TIME },
                { "no-limits", no_argument, NULL, ARG_NO_LIMITS },
                { "disabled", no_argument, NULL, ARG_DISABLED },
                { "json", no_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_LOCK:
                        if (a->n_locks >= LOCKS_MAX)
                                return usage(u);
                        a->locks[a->n_locks++] = optarg;
                        break;
                case ARG_DIGITS:
                        a->digits = optarg;
                        break;
                case ARG_NAME:
                        a->name = optarg;
                        break;
                case ARG_FROM:
                case ARG_UNTIL:
                        if (parse_date(optarg, c == ARG_FROM ? &a->from : &a->until) < 0) {
                                fprintf(stderr, "lockhubctl: '%s' is not a date (YYYY-MM-DD [HH:MM])\n",
                                        optarg);
                                return CTL_EXIT_USAGE;
                        }
                        if (c == ARG_FROM)
                                a->has_from = true;
                        else
                                a->has_until = true;
                        break;
                case ARG_WEEKDAYS:
                        if (parse_weekdays(optarg, &a->weekdays) < 0) {
                                fprintf(stderr,
                                        "lockhubctl: '%s' is not a list of weekdays (mon,tue or mon-fri)\n",
                                        optarg);
                                return CTL_EXIT_USAGE;
                        }
                        a->has_weekdays = true;
                        break;
                case ARG_TIME:
                        if (parse_window(optarg, &a->time_from, &a->time_until) < 0) {
                                fprintf(stderr, "lockhubctl: '%s' is not a time window (HH:MM-HH:MM)\n",
                                        optarg);
                                return CTL_EXIT_USAGE;
                        }
                        a->has_time = true;
                        break;
                case ARG_NO_LIMITS:
                        a->no_limits = true;
                        break;
                case ARG_DISABLED:
                        a->disabled = true;
                        break;
                case ARG_JSON:
                        a->json = true;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n", u);
                        return -1;
                default:
                        fprintf(stderr, "lockhubctl: unknown option '%s'\n", argv[optind - 1]);
                        return usage(u);
                }
        return 0;
}

static int append_locks(sd_bus_message *m, const struct code_args *a)
{
        const char *v[LOCKS_MAX + 1] = {};

        for (size_t i = 0; i < a->n_locks; i++)
                v[i] = a->locks[i];
        return sd_bus_message_append_strv(m, (char **) v);
}

/* The a{sv} of limits/changes; with_locks: the new set of locks (UpdateCode). */
static int append_changes(sd_bus_message *m, const struct code_args *a, bool update, int enabled,
                          bool with_locks)
{
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        if (a->name && update)
                r = sd_bus_message_append(m, "{sv}", "name", "s", a->name);
        if (r >= 0 && a->digits && update)
                r = sd_bus_message_append(m, "{sv}", "digits", "s", a->digits);
        if (r >= 0 && enabled >= 0)
                r = sd_bus_message_append(m, "{sv}", "enabled", "b", enabled);
        if (r >= 0 && (a->has_from || a->no_limits))
                r = sd_bus_message_append(m, "{sv}", "valid_from", "t",
                                          a->has_from ? a->from : (uint64_t) 0);
        if (r >= 0 && (a->has_until || a->no_limits))
                r = sd_bus_message_append(m, "{sv}", "valid_until", "t",
                                          a->has_until ? a->until : (uint64_t) 0);
        if (r >= 0 && (a->has_weekdays || a->no_limits))
                r = sd_bus_message_append(m, "{sv}", "weekdays", "u", a->has_weekdays ? a->weekdays : 0x7fu);
        if (r >= 0 && (a->has_time || a->no_limits))
                r = sd_bus_message_append(m, "{sv}{sv}", "time_from", "i", a->has_time ? a->time_from : -1,
                                          "time_until", "i", a->has_time ? a->time_until : -1);
        if (r >= 0 && with_locks) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", "locks");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', "as");
                if (r >= 0)
                        r = append_locks(m, a);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(m);
}

static int call(sd_bus *bus, sd_bus_message *m, sd_bus_message **reply, const char *what)
{
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call(bus, m, 120 * 1000000ULL, &e, reply);
        if (r < 0)
                return -bus_fail(what, &e, r) - 1000;
        return 0;
}

/* call() folds the exit status into r: recover it. */
static int exit_of(int r)
{
        return r <= -1000 ? -(r + 1000) : CTL_EXIT_FAILURE;
}

static int new_call(sd_bus *bus, const char *method, sd_bus_message **ret)
{
        return sd_bus_message_new_method_call(bus, ret, API_BUS_NAME, API_MANAGER_PATH,
                                              "org.lockhub.Manager1", method);
}

/* ---- user ---- */

int verb_user(int argc, char *argv[])
{
        static const char *u = "user list | user add NAME | user remove NAME";
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name;
        int64_t id;
        int removing, r;

        if (argc < 2 || streq(argv[1], "--help"))
                return argc < 2 ? usage(u) : (printf("Usage: lockhubctl %s\n", u), CTL_EXIT_OK);
        if (ctl_bus_connect(&bus) < 0)
                return CTL_EXIT_UNREACHABLE;
        if (streq(argv[1], "list") && argc == 2) {
                r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1",
                                       "ListUsers", &e, &reply, "");
                if (r < 0)
                        return bus_fail("cannot list users", &e, r);
                r = sd_bus_message_enter_container(reply, 'a', "(xsb)");
                while (r >= 0 && (r = sd_bus_message_read(reply, "(xsb)", &id, &name, &removing)) > 0)
                        printf("%s%s\n", name, removing ? " (being removed: waiting for the locks)" : "");
                return r < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
        }
        if (streq(argv[1], "add") && argc == 3) {
                r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1",
                                       "AddUser", &e, &reply, "s", argv[2]);
                if (r < 0)
                        return bus_fail("cannot add the user", &e, r);
                printf("User '%s' added.\n", argv[2]);
                return CTL_EXIT_OK;
        }
        if (streq(argv[1], "remove") && argc == 3) {
                r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1",
                                       "RemoveUser", &e, &reply, "s", argv[2]);
                if (r < 0)
                        return bus_fail("cannot remove the user", &e, r);
                printf("User '%s' removed; their codes are being withdrawn from the locks.\n", argv[2]);
                return CTL_EXIT_OK;
        }
        return usage(u);
}

/* ---- code ---- */

static void format_schedule(json_object *c, char *buf, size_t size)
{
        json_object *v;
        size_t n = 0;
        int k;

        buf[0] = '\0';
#define ADD(...)                                                         \
        do {                                                             \
                k = snprintf(buf + n, size - n, "%s", n > 0 ? " " : ""); \
                n += k > 0 && (size_t) k < size - n ? (size_t) k : 0;    \
                k = snprintf(buf + n, size - n, __VA_ARGS__);            \
                n += k > 0 && (size_t) k < size - n ? (size_t) k : 0;    \
        } while (0)
        if (json_object_object_get_ex(c, "valid_from_usec", &v)) {
                time_t t = (time_t) (json_object_get_int64(v) / 1000000);
                char d[32];
                strftime(d, sizeof d, "%Y-%m-%d %H:%M", localtime(&t));
                ADD("from %s", d);
        }
        if (json_object_object_get_ex(c, "valid_until_usec", &v)) {
                time_t t = (time_t) (json_object_get_int64(v) / 1000000);
                char d[32];
                strftime(d, sizeof d, "%Y-%m-%d %H:%M", localtime(&t));
                ADD("until %s", d);
        }
        if (json_object_object_get_ex(c, "weekdays", &v) && json_object_get_int(v) != 0x7f) {
                char days[32] = "";
                for (int i = 0; i < 7; i++)
                        if (json_object_get_int(v) & (1 << i)) {
                                strcat(days, days[0] ? "," : "");
                                strcat(days, day_names[i]);
                        }
                ADD("%s", days);
        }
        if (json_object_object_get_ex(c, "time_from_min", &v)) {
                json_object *w;
                int f = json_object_get_int(v),
                    t = json_object_object_get_ex(c, "time_until_min", &w) ? json_object_get_int(w) : 0;
                ADD("%02d:%02d-%02d:%02d", f / 60, f % 60, t / 60, t % 60);
        }
        if (n == 0)
                ADD("always");
#undef ADD
}

static int code_list(sd_bus *bus, const char *lock, bool json)
{
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_object *arr;
        const char *text;
        int r;

        r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1", "ListCodes", &e,
                               &reply, "s", strempty(lock));
        if (r < 0)
                return bus_fail("cannot list codes", &e, r);
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        if (json) {
                printf("%s\n", text);
                return CTL_EXIT_OK;
        }
        arr = json_tokener_parse(text);
        if (!arr)
                return CTL_EXIT_FAILURE;
        printf("%-4s %-16s %-20s %-8s %-28s %s\n", "ID", "USER", "NAME", "ENABLED", "SCHEDULE", "LOCKS");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                json_object *c = json_object_array_get_idx(arr, i), *v, *locks;
                char sched[128];

                format_schedule(c, sched, sizeof sched);
                json_object_object_get_ex(c, "locks", &locks);
                printf("%-4s %-16s %-20s %-8s %-28s",
                       json_object_object_get_ex(c, "id", &v) ? json_object_get_string(v) : "?",
                       json_object_object_get_ex(c, "user", &v) ? json_object_get_string(v) : "?",
                       json_object_object_get_ex(c, "name", &v) ? json_object_get_string(v) : "?",
                       json_object_object_get_ex(c, "removing", &v) && json_object_get_boolean(v)
                                       ? "removing"
                       : json_object_object_get_ex(c, "enabled", &v) && json_object_get_boolean(v) ? "yes"
                                                                                                   : "no",
                       sched);
                for (size_t k = 0; locks && k < json_object_array_length(locks); k++) {
                        json_object *l = json_object_array_get_idx(locks, k), *n, *s, *why;

                        json_object_object_get_ex(l, "lock", &n);
                        json_object_object_get_ex(l, "state", &s);
                        printf(" %s:%s", json_object_get_string(n), json_object_get_string(s));
                        if (json_object_object_get_ex(l, "desired", &v) &&
                            streq(json_object_get_string(v), "absent"))
                                printf("(removing)");
                        if (json_object_object_get_ex(l, "reason", &why))
                                printf("(%s)", json_object_get_string(why));
                }
                printf("\n");
        }
        json_object_put(arr);
        return CTL_EXIT_OK;
}

int verb_code(int argc, char *argv[])
{
        static const char *u = "code list [LOCK] [--json]\n"
                               "       lockhubctl code add USER NAME --lock LOCK... [--digits D] [--from "
                               "DATE] [--until DATE]\n"
                               "                  [--weekdays mon-fri] [--time HH:MM-HH:MM] [--disabled]\n"
                               "       lockhubctl code update ID [--name N] [--digits D] [--lock LOCK...] "
                               "[--from|--until|"
                               "--weekdays|--time ...] [--no-limits]\n"
                               "       lockhubctl code enable|disable|remove ID\n"
                               "       lockhubctl code sync [LOCK]";
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        struct code_args a = {};
        char digits[64] = "";
        const char *sub;
        int r;

        if (argc < 2)
                return usage(u);
        sub = argv[1];
        if (streq(sub, "--help")) {
                printf("Usage: lockhubctl %s\n", u);
                return CTL_EXIT_OK;
        }
        r = parse_code_args(argc - 1, argv + 1, &a, u);
        if (r != 0)
                return r < 0 ? CTL_EXIT_OK : r;
        argc -= optind + 1;
        argv += optind + 1;

        if (ctl_bus_connect(&bus) < 0)
                return CTL_EXIT_UNREACHABLE;

        if (streq(sub, "list") && argc <= 1)
                return code_list(bus, argc == 1 ? argv[0] : NULL, a.json);

        if (streq(sub, "sync") && argc <= 1) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1",
                                       "SyncCodes", &e, NULL, "s", argc == 1 ? argv[0] : "");
                if (r < 0)
                        return bus_fail("cannot sync", &e, r);
                printf("Reconciliation started; see 'lockhubctl code list' for the result.\n");
                return CTL_EXIT_OK;
        }

        if (streq(sub, "add") && argc == 2) {
                int64_t id;

                if (a.n_locks == 0) {
                        fprintf(stderr, "lockhubctl: say which lock(s) the code opens: --lock LOCK\n");
                        return CTL_EXIT_USAGE;
                }
                if (!a.digits) {
                        if (read_secret("Code digits: ", digits, sizeof digits) < 0) {
                                fprintf(stderr, "lockhubctl: no code digits given (--digits, or on standard "
                                                "input)\n");
                                return CTL_EXIT_USAGE;
                        }
                        a.digits = digits;
                }
                r = new_call(bus, "AddCode", &m);
                if (r >= 0)
                        r = sd_bus_message_append(m, "sss", argv[0], argv[1], a.digits);
                if (r >= 0)
                        r = append_locks(m, &a);
                if (r >= 0)
                        r = append_changes(m, &a, false, a.disabled ? 0 : -1, false);
                explicit_bzero(digits, sizeof digits);
                if (r < 0)
                        return CTL_EXIT_FAILURE;
                r = call(bus, m, &reply, "cannot add the code");
                if (r < 0)
                        return exit_of(r);
                if (sd_bus_message_read(reply, "x", &id) < 0)
                        return CTL_EXIT_FAILURE;
                printf("Code %lld '%s' of %s added; it is being written to %zu lock(s).\n", (long long) id,
                       argv[1], argv[0], a.n_locks);
                return CTL_EXIT_OK;
        }

        if ((streq(sub, "update") || streq(sub, "enable") || streq(sub, "disable")) && argc == 1) {
                char *end;
                long long id = strtoll(argv[0], &end, 10);
                int enabled = streq(sub, "enable") ? 1 : streq(sub, "disable") ? 0 : (a.disabled ? 0 : -1);

                if (*end || id <= 0)
                        return usage(u);
                r = new_call(bus, "UpdateCode", &m);
                if (r >= 0)
                        r = sd_bus_message_append(m, "x", (int64_t) id);
                if (r >= 0)
                        r = append_changes(m, &a, true, enabled, a.n_locks > 0);
                if (r < 0)
                        return CTL_EXIT_FAILURE;
                r = call(bus, m, &reply, "cannot change the code");
                if (r < 0)
                        return exit_of(r);
                printf("Code %lld %s; the locks are being updated.\n", id,
                       streq(sub, "enable")    ? "enabled"
                       : streq(sub, "disable") ? "disabled"
                                               : "changed");
                return CTL_EXIT_OK;
        }

        if (streq(sub, "remove") && argc == 1) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                char *end;
                long long id = strtoll(argv[0], &end, 10);

                if (*end || id <= 0)
                        return usage(u);
                r = sd_bus_call_method(bus, API_BUS_NAME, API_MANAGER_PATH, "org.lockhub.Manager1",
                                       "RemoveCode", &e, NULL, "x", (int64_t) id);
                if (r < 0)
                        return bus_fail("cannot remove the code", &e, r);
                printf("Code %lld is being removed from its locks.\n", id);
                return CTL_EXIT_OK;
        }
        return usage(u);
}

/* ---- the lock's authorizations ---- */

int verb_auth(int argc, char *argv[])
{
        static const char *u = "auth list LOCK [--json] | auth enable|disable|remove LOCK ID";
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL;
        bool json = argc == 4 && streq(argv[3], "--json");
        const char *type, *name, *done;
        uint64_t created, active;
        uint32_t id, uses;
        int enabled, remote, own, r;
        char *end;

        if (argc >= 2 && streq(argv[1], "--help")) {
                printf("Usage: lockhubctl %s\n", u);
                return CTL_EXIT_OK;
        }
        if (argc < 3)
                return usage(u);
        if (ctl_bus_connect(&bus) < 0)
                return CTL_EXIT_UNREACHABLE;
        if (sd_bus_path_encode(API_LOCK_PATH_PREFIX, argv[2], &path) < 0)
                return CTL_EXIT_FAILURE;

        if (streq(argv[1], "list") && (argc == 3 || json)) {
                json_object *arr = json ? json_object_new_array() : NULL;

                r = sd_bus_call_method(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "ListAuthorizations",
                                       &e, &reply, "");
                if (r < 0) {
                        json_object_put(arr);
                        return bus_fail("cannot list the authorizations", &e, r);
                }
                r = sd_bus_message_enter_container(reply, 'a', "(ussbbbttu)");
                if (!json)
                        printf("%-10s %-8s %-32s %-8s %-6s %s\n", "ID", "TYPE", "NAME", "ENABLED", "REMOTE",
                               "LAST ACTIVE");
                while (r >= 0 && (r = sd_bus_message_read(reply, "(ussbbbttu)", &id, &type, &name, &enabled,
                                                          &remote, &own, &created, &active, &uses)) > 0) {
                        char when[32] = "-";

                        if (active > 0) {
                                time_t t = (time_t) (active / 1000000);
                                strftime(when, sizeof when, "%Y-%m-%d %H:%M", localtime(&t));
                        }
                        if (json) {
                                json_object *o = json_object_new_object();
                                json_object_object_add(o, "id", json_object_new_int64(id));
                                json_object_object_add(o, "type", json_object_new_string(type));
                                json_object_object_add(o, "name", json_object_new_string(name));
                                json_object_object_add(o, "enabled", json_object_new_boolean(enabled));
                                json_object_object_add(o, "remote_allowed", json_object_new_boolean(remote));
                                json_object_object_add(o, "own", json_object_new_boolean(own));
                                json_object_object_add(o, "created_usec",
                                                       json_object_new_int64((int64_t) created));
                                json_object_object_add(o, "last_active_usec",
                                                       json_object_new_int64((int64_t) active));
                                json_object_object_add(o, "uses", json_object_new_int64(uses));
                                json_object_array_add(arr, o);
                        } else
                                printf("%-10u %-8s %-32s %-8s %-6s %s%s\n", id, type, name,
                                       enabled ? "yes" : "no", remote ? "yes" : "no", when,
                                       own ? "  (lockhub)" : "");
                }
                if (json) {
                        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
                        json_object_put(arr);
                }
                return r < 0 ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
        }
        if (argc != 4)
                return usage(u);
        errno = 0;
        id = (uint32_t) strtoul(argv[3], &end, 10);
        if (*end || errno != 0 || argv[3][0] == '\0' || argv[3][0] == '-')
                return usage(u);
        if (streq(argv[1], "enable") || streq(argv[1], "disable")) {
                r = sd_bus_call_method(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "EnableAuthorization",
                                       &e, NULL, "ub", id, (int) streq(argv[1], "enable"));
                done = streq(argv[1], "enable") ? "enabled" : "disabled";
        } else if (streq(argv[1], "remove")) {
                r = sd_bus_call_method(bus, API_BUS_NAME, path, "org.lockhub.Lock1", "RemoveAuthorization",
                                       &e, NULL, "u", id);
                done = "removed";
        } else
                return usage(u);
        if (r < 0)
                return bus_fail("the lock refused", &e, r);
        printf("Authorization %u %s on %s.\n", id, done, argv[2]);
        return CTL_EXIT_OK;
}

/* ---- backup and restore ---- */

static int write_file_atomic(const char *path, const void *data, size_t size)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const uint8_t *p = data;

        if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, 0600) < 0)
                goto fail;
        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        goto fail;
                }
                p += n;
                size -= (size_t) n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0)
                goto fail;
        return 0;
fail : {
        int r = negative_errno();
        (void) unlink(tmp);
        return r;
}
}

static int read_file(const char *path, uint8_t **ret, size_t *ret_size)
{
        FILE *f = fopen(path, "re");
        uint8_t *buf = NULL;
        size_t size = 0, n;

        if (!f)
                return negative_errno();
        for (;;) {
                uint8_t *b;

                if (size > 8 * 1024 * 1024) {
                        fclose(f);
                        free(buf);
                        return -EFBIG;
                }
                b = realloc(buf, size + 65536);
                if (!b) {
                        fclose(f);
                        free(buf);
                        return -ENOMEM;
                }
                buf = b;
                n = fread(buf + size, 1, 65536, f);
                size += n;
                if (n < 65536)
                        break;
        }
        fclose(f);
        *ret = buf;
        *ret_size = size;
        return 0;
}

int verb_backup(int argc, char *argv[])
{
        static const struct option options[] = {
                { "output", required_argument, NULL, 'o' },
                { "all", no_argument, NULL, 'a' },
                { "include-secrets", no_argument, NULL, 's' },
                { "passphrase-file", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char *u = "backup [LOCK...|--all] -o FILE [--include-secrets [--passphrase-file F]]";
        static char *no_locks[] = { NULL };
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *output = NULL, *pfile = NULL;
        char pass[256] = "";
        bool all = false, secrets = false;
        const void *data;
        size_t size;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "o:h", options, NULL)) >= 0)
                switch (c) {
                case 'o':
                        output = optarg;
                        break;
                case 'a':
                        all = true;
                        break;
                case 's':
                        secrets = true;
                        break;
                case 'p':
                        pfile = optarg;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n", u);
                        return CTL_EXIT_OK;
                default:
                        return usage(u);
                }
        if (!output || (all && optind < argc) || (!all && optind == argc))
                return usage(u);
        if (secrets && get_passphrase(pfile, true, pass, sizeof pass) < 0)
                return CTL_EXIT_USAGE;
        if (ctl_bus_connect(&bus) < 0)
                return CTL_EXIT_UNREACHABLE;
        r = new_call(bus, "Backup", &m);
        if (r >= 0)
                r = sd_bus_message_append_strv(m, all ? no_locks : argv + optind);
        if (r >= 0)
                r = sd_bus_message_append(m, "bs", secrets, pass);
        explicit_bzero(pass, sizeof pass);
        if (r >= 0)
                (void) sd_bus_message_sensitive(m);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        r = call(bus, m, &reply, "backup failed");
        if (r < 0)
                return exit_of(r);
        r = sd_bus_message_read_array(reply, 'y', &data, &size);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        r = write_file_atomic(output, data, size);
        if (r < 0) {
                fprintf(stderr, "lockhubctl: cannot write %s: %s\n", output, strerror(-r));
                return CTL_EXIT_FAILURE;
        }
        printf("Backup written to %s (%zu bytes%s).\n", output, size,
               secrets ? ", with secrets, encrypted with the passphrase" : ", without secrets");
        return CTL_EXIT_OK;
}

int verb_restore(int argc, char *argv[])
{
        static const struct option options[] = {
                { "to", required_argument, NULL, 't' },
                { "from", required_argument, NULL, 'f' },
                { "passphrase-file", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        static const char *u = "restore FILE [--to LOCK] [--from LOCK] [--passphrase-file F]";
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        const char *to = "", *from = "", *pfile = NULL, *summary;
        char pass[256] = "";
        size_t size = 0;
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 't':
                        to = optarg;
                        break;
                case 'f':
                        from = optarg;
                        break;
                case 'p':
                        pfile = optarg;
                        break;
                case 'h':
                        printf("Usage: lockhubctl %s\n", u);
                        return CTL_EXIT_OK;
                default:
                        return usage(u);
                }
        if (argc - optind != 1)
                return usage(u);
        r = read_file(argv[optind], &data, &size);
        if (r < 0) {
                fprintf(stderr, "lockhubctl: cannot read %s: %s\n", argv[optind], strerror(-r));
                return CTL_EXIT_USAGE;
        }
        if (size >= 8 && memcmp(data, "LHBKENC1", 8) == 0 &&
            get_passphrase(pfile, false, pass, sizeof pass) < 0)
                return CTL_EXIT_USAGE;
        if (ctl_bus_connect(&bus) < 0)
                return CTL_EXIT_UNREACHABLE;
        r = new_call(bus, "Restore", &m);
        if (r >= 0)
                r = sd_bus_message_append_array(m, 'y', data, size);
        if (r >= 0)
                r = sd_bus_message_append(m, "sss", pass, from, to);
        explicit_bzero(pass, sizeof pass);
        if (r >= 0)
                (void) sd_bus_message_sensitive(m);
        if (r < 0)
                return CTL_EXIT_FAILURE;
        r = call(bus, m, &reply, "restore refused");
        if (r < 0)
                return exit_of(r);
        if (sd_bus_message_read(reply, "s", &summary) < 0)
                return CTL_EXIT_FAILURE;
        printf("Restored: %s.\n", summary);
        return CTL_EXIT_OK;
}
