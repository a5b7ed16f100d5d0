/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhub.conf parser; the contract is in include/lockhub/conf.h.
 *
 * Everything about a key lives in one row of a table (conf_keys[] for the fixed
 * sections, lock_keys[] for "[Lock NAME]"): section, name, type, range, where it is
 * stored, and its default as text. Defaults are applied by running that text through
 * the same value parser a file goes through, so a default can never be a value the
 * parser would reject, and conf_format() can print every key from the same table.
 *
 * The parser walks the buffer line by line and never stops at an error: each problem
 * becomes a diagnostic with its line, the key keeps its previous value, and parsing
 * continues, so a user sees every mistake of a file at once. Cross-key rules (Socket=
 * against Host=, thresholds that must be ordered…) run after the last line and point
 * at the line that set the later of the keys involved. Any error discards the result.
 */

#include <assert.h>
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lockhub/conf.h"
#include "lockhub/lock.h"
#include "lockhub/log.h"

#ifndef LOCKHUB_DATADIR
#define LOCKHUB_DATADIR "/usr/local/share/lockhub"
#endif
#define KNOWN_FIRMWARE_DEFAULT LOCKHUB_DATADIR "/known-firmware.json"

#define SEC_MINUTE 60u
#define SEC_HOUR   (60u * SEC_MINUTE)
#define SEC_DAY    (24u * SEC_HOUR)

typedef enum ConfType {
        CONF_T_BOOL,     /* bool */
        CONF_T_TRISTATE, /* int: -1 (inherit), 0, 1 */
        CONF_T_INT,      /* int */
        CONF_T_UINT,     /* unsigned */
        CONF_T_SEC,      /* unsigned seconds; accepts 30s, 5min, 2h, 1d, 1w, combined */
        CONF_T_ENUM,     /* int index into names */
        CONF_T_LOGLEVEL, /* int syslog level */
        CONF_T_NAME,     /* char *: printable text, spaces allowed */
        CONF_T_TOKEN,    /* char *: printable, no whitespace */
        CONF_T_HOST,     /* char *: host name or IP address */
        CONF_T_TOPIC,    /* char *: MQTT topic prefix without wildcards */
        CONF_T_PATH,     /* char *: absolute path */
        CONF_T_ADAPTERS, /* char **: NULL = auto */
} ConfType;

typedef struct ConfKey {
        const char *section;
        const char *name;
        ConfType type;
        size_t offset;
        long long min, max;       /* numbers; for strings max is the length limit in bytes */
        const char *const *names; /* CONF_T_ENUM, NULL-terminated */
        const char *def;          /* default as it would be written in the file; NULL = unset */
} ConfKey;

/* CONF_T_ENUM stores through an int pointer. */
_Static_assert(sizeof(ConfDriftPolicy) == sizeof(int), "enum size");
_Static_assert(sizeof(ConfMqttProtocol) == sizeof(int), "enum size");
_Static_assert(sizeof(ConfScanMode) == sizeof(int), "enum size");

static const char *const drift_policy_names[] = {
        [CONF_DRIFT_HUB] = "hub", [CONF_DRIFT_LOCK] = "lock", NULL
};
static const char *const mqtt_protocol_names[] = { [CONF_MQTT_V311] = "3.1.1", [CONF_MQTT_V5] = "5", NULL };
static const char *const scan_mode_names[] = { [CONF_SCAN_LE] = "le", [CONF_SCAN_QUIET] = "quiet", NULL };

#define K(sec, key, t, field, lo, hi, d)                                                                    \
        {                                                                                                   \
                .section = (sec), .name = (key), .type = (t), .offset = offsetof(Conf, field), .min = (lo), \
                .max = (hi), .def = (d)                                                                     \
        }
#define E(sec, key, field, n, d)                                                                       \
        {                                                                                              \
                .section = (sec), .name = (key), .type = CONF_T_ENUM, .offset = offsetof(Conf, field), \
                .names = (n), .def = (d)                                                               \
        }

static const ConfKey conf_keys[] = {
        K("Hub", "Name", CONF_T_NAME, hub.name, 1, 64, "lockhub"),
        K("Hub", "LogLevel", CONF_T_LOGLEVEL, hub.log_level, 0, 0, "info"),
        K("Hub", "TimeSyncDriftSec", CONF_T_SEC, hub.time_sync_drift_sec, 0, SEC_DAY, "1min"),

        K("Bluetooth", "Adapter", CONF_T_ADAPTERS, bluetooth.adapters, 0, 0, "auto"),
        K("Bluetooth", "MaxConnections", CONF_T_UINT, bluetooth.max_connections, 1, 10, "3"),
        K("Bluetooth", "ConnectTimeoutSec", CONF_T_SEC, bluetooth.connect_timeout_sec, 1, 5 * SEC_MINUTE,
          "20s"),
        K("Bluetooth", "IdleDisconnectSec", CONF_T_SEC, bluetooth.idle_disconnect_sec, 0, SEC_HOUR, "10s"),
        K("Bluetooth", "CommandTimeoutSec", CONF_T_SEC, bluetooth.command_timeout_sec, 1, 10 * SEC_MINUTE,
          "30s"),
        K("Bluetooth", "ScanWhilePaired", CONF_T_BOOL, bluetooth.scan_while_paired, 0, 0, "yes"),
        E("Bluetooth", "ScanMode", bluetooth.scan_mode, scan_mode_names, "le"),

        K("MQTT", "Enabled", CONF_T_BOOL, mqtt.enabled, 0, 0, "yes"),
        K("MQTT", "Host", CONF_T_HOST, mqtt.host, 1, 253, "localhost"),
        K("MQTT", "Port", CONF_T_UINT, mqtt.port, 1, 65535, "1883"),
        K("MQTT", "Socket", CONF_T_PATH, mqtt.socket, 1, 107, NULL),
        K("MQTT", "Username", CONF_T_TOKEN, mqtt.username, 1, 256, NULL),
        K("MQTT", "PasswordFile", CONF_T_PATH, mqtt.password_file, 1, PATH_MAX - 1, NULL),
        K("MQTT", "ClientId", CONF_T_TOKEN, mqtt.client_id, 1, 128, NULL),
        K("MQTT", "BaseTopic", CONF_T_TOPIC, mqtt.base_topic, 1, 128, "lockhub"),
        K("MQTT", "DiscoveryPrefix", CONF_T_TOPIC, mqtt.discovery_prefix, 1, 128, "homeassistant"),
        K("MQTT", "Discovery", CONF_T_BOOL, mqtt.discovery, 0, 0, "yes"),
        E("MQTT", "Protocol", mqtt.protocol, mqtt_protocol_names, "3.1.1"),
        K("MQTT", "KeepaliveSec", CONF_T_SEC, mqtt.keepalive_sec, 5, 65535, "60s"),
        K("MQTT", "TLS", CONF_T_BOOL, mqtt.tls, 0, 0, "no"),
        K("MQTT", "CAFile", CONF_T_PATH, mqtt.ca_file, 1, PATH_MAX - 1, NULL),
        K("MQTT", "CAPath", CONF_T_PATH, mqtt.ca_path, 1, PATH_MAX - 1, NULL),
        K("MQTT", "CertFile", CONF_T_PATH, mqtt.cert_file, 1, PATH_MAX - 1, NULL),
        K("MQTT", "KeyFile", CONF_T_PATH, mqtt.key_file, 1, PATH_MAX - 1, NULL),
        K("MQTT", "TLSInsecure", CONF_T_BOOL, mqtt.tls_insecure, 0, 0, "no"),
        K("MQTT", "ReconnectMinSec", CONF_T_SEC, mqtt.reconnect_min_sec, 1, SEC_HOUR, "1s"),
        K("MQTT", "ReconnectMaxSec", CONF_T_SEC, mqtt.reconnect_max_sec, 1, SEC_HOUR, "2min"),
        K("MQTT", "CommandExpirySec", CONF_T_SEC, mqtt.command_expiry_sec, 0, 10 * SEC_MINUTE, "0"),
        K("MQTT", "RequireUnlockCode", CONF_T_BOOL, mqtt.require_unlock_code, 0, 0, "no"),
        K("MQTT", "UnlockCodeFile", CONF_T_PATH, mqtt.unlock_code_file, 1, PATH_MAX - 1, NULL),
        K("MQTT", "AllowRemoteUnlock", CONF_T_BOOL, mqtt.allow_remote_unlock, 0, 0, "yes"),
        K("MQTT", "AllowRemoteUnlatch", CONF_T_BOOL, mqtt.allow_remote_unlatch, 0, 0, "yes"),
        K("MQTT", "AllowRemoteCodeChanges", CONF_T_BOOL, mqtt.allow_remote_code_changes, 0, 0, "no"),

        K("Health", "BatteryLowPercent", CONF_T_UINT, health.battery_low_percent, 1, 100, "25"),
        K("Health", "BatteryCriticalPercent", CONF_T_UINT, health.battery_critical_percent, 0, 99, "10"),
        K("Health", "BatteryWindowSec", CONF_T_SEC, health.battery_window_sec, SEC_DAY, 365 * SEC_DAY,
          "30d"),
        K("Health", "WeakSignalDBm", CONF_T_INT, health.weak_signal_dbm, -120, 0, "-85"),
        K("Health", "NotSeenSec", CONF_T_SEC, health.not_seen_sec, SEC_MINUTE, 30 * SEC_DAY, "30min"),
        K("Health", "JamWindowSec", CONF_T_SEC, health.jam_window_sec, SEC_HOUR, 365 * SEC_DAY, "7d"),
        K("Health", "JamThreshold", CONF_T_UINT, health.jam_threshold, 1, 100, "3"),
        K("Health", "RecoveryMaxAttempts", CONF_T_UINT, health.recovery_max_attempts, 1, 100, "5"),
        K("Health", "RetryBackoffMinSec", CONF_T_SEC, health.retry_backoff_min_sec, 1, SEC_HOUR, "2s"),
        K("Health", "RetryBackoffMaxSec", CONF_T_SEC, health.retry_backoff_max_sec, 1, SEC_DAY, "5min"),
        K("Health", "AdapterPowerCycle", CONF_T_BOOL, health.adapter_power_cycle, 0, 0, "yes"),
        K("Health", "KnownFirmwareFile", CONF_T_PATH, health.known_firmware_file, 1, PATH_MAX - 1,
          KNOWN_FIRMWARE_DEFAULT),

        E("Codes", "DriftPolicy", codes.drift_policy, drift_policy_names, "hub"),
        K("Codes", "ReprovisionAfterReset", CONF_T_BOOL, codes.reprovision_after_reset, 0, 0, "yes"),
        K("Codes", "SyncRetryMaxSec", CONF_T_SEC, codes.sync_retry_max_sec, 10, SEC_DAY, "15min"),

        K("Store", "EventRetentionSec", CONF_T_SEC, store.event_retention_sec, 0, 100 * 365 * SEC_DAY,
          "365d"),
        K("Store", "EventRetentionCount", CONF_T_UINT, store.event_retention_count, 0, 100000000, "1000000"),
        K("Store", "SampleRetentionSec", CONF_T_SEC, store.sample_retention_sec, 0, 100 * 365 * SEC_DAY,
          "90d"),
};

#define L(key, t, field, lo, hi)                                                                    \
        {                                                                                           \
                .section = "Lock", .name = (key), .type = (t), .offset = offsetof(ConfLock, field), \
                .min = (lo), .max = (hi)                                                            \
        }

static const ConfKey lock_keys[] = {
        L("RequireUnlockCode", CONF_T_TRISTATE, require_unlock_code, 0, 0),
        L("UnlockCodeFile", CONF_T_PATH, unlock_code_file, 1, PATH_MAX - 1),
        L("AllowRemoteUnlock", CONF_T_TRISTATE, allow_remote_unlock, 0, 0),
        L("AllowRemoteUnlatch", CONF_T_TRISTATE, allow_remote_unlatch, 0, 0),
};

static const char *const sections[] = { "Hub", "Bluetooth", "MQTT", "Health", "Codes", "Store" };

/* Keys people write by habit that would put a secret into a world-readable file. */
static const struct {
        const char *section, *key, *instead;
} secret_keys[] = {
        { "MQTT", "Password", "PasswordFile= or the credential mqtt-password" },
        { "MQTT", "UnlockCode", "UnlockCodeFile= or the credential mqtt-unlock-code" },
        { "Lock", "UnlockCode", "UnlockCodeFile=" },
};

enum {
        SECTION_NONE = -1,    /* before the first header */
        SECTION_IGNORED = -2, /* unknown or invalid header: its keys are skipped quietly */
        SECTION_LOCK = -3,
};

typedef struct Parser {
        const char *path;
        unsigned line;
        ConfDiags *diags;
        Conf *conf;
        int section; /* index into sections[] or SECTION_* */
        char section_label[96];
        size_t lock_index;
        unsigned set_line[ELEMENTSOF(conf_keys)]; /* 0 = at its default */
        bool oom;
} Parser;

/* ---- small helpers ---------------------------------------------------------------------------- */

static void strv_free(char **l)
{
        for (char **i = l; i && *i; i++)
                free(*i);
        free(l);
}

static bool is_blank(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

/* Trims [*s, *s+*n) in place (pointer and length). */
static void trim(const char **s, size_t *n)
{
        while (*n > 0 && is_blank(**s)) {
                (*s)++;
                (*n)--;
        }
        while (*n > 0 && is_blank((*s)[*n - 1]))
                (*n)--;
}

static bool utf8_is_valid(const char *s, size_t n)
{
        const unsigned char *p = (const unsigned char *) s;
        size_t i = 0;

        while (i < n) {
                unsigned char c = p[i];
                size_t len;
                uint32_t cp;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF) {
                        len = 2;
                        cp = c & 0x1F;
                } else if (c >= 0xE0 && c <= 0xEF) {
                        len = 3;
                        cp = c & 0x0F;
                } else if (c >= 0xF0 && c <= 0xF4) {
                        len = 4;
                        cp = c & 0x07;
                } else
                        return false;
                if (n - i < len)
                        return false;
                for (size_t j = 1; j < len; j++) {
                        if ((p[i + j] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + j] & 0x3F);
                }
                if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += len;
        }
        return true;
}

/* Length of at most max bytes of s, not cutting a UTF-8 sequence in half. */
static int clip_len(const char *s, size_t max)
{
        size_t n = strlen(s);

        if (n <= max)
                return (int) n;
        while (max > 0 && ((unsigned char) s[max] & 0xC0) == 0x80)
                max--;
        return (int) max;
}

static bool has_control(const char *s)
{
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7F)
                        return true;
        return false;
}

/* ---- diagnostics ------------------------------------------------------------------------------ */

static void diag_add(Parser *p, ConfDiagLevel level, unsigned line, const char *fmt, ...) _printf_(4, 5);
static void diag_add(Parser *p, ConfDiagLevel level, unsigned line, const char *fmt, ...)
{
        ConfDiags *d = p->diags;
        _cleanup_free_ char *text = NULL;
        char *msg;
        va_list ap;
        int r;

        if (level == CONF_DIAG_ERROR)
                d->n_errors++;
        else
                d->n_warnings++;

        if (d->n_items >= CONF_DIAGS_MAX)
                return;

        va_start(ap, fmt);
        r = vasprintf(&text, fmt, ap);
        va_end(ap);
        if (r < 0) {
                text = NULL;
                p->oom = true;
                return;
        }

        if (d->n_items + 1 == CONF_DIAGS_MAX) {
                /* The last slot says why the list ends here. */
                r = asprintf(&msg, "%s: too many problems, not listing any more", p->path);
        } else if (line > 0)
                r = asprintf(&msg, "%s:%u: %s", p->path, line, text);
        else
                r = asprintf(&msg, "%s: %s", p->path, text);
        if (r < 0) {
                p->oom = true;
                return;
        }

        ConfDiag *items = realloc(d->items, (d->n_items + 1) * sizeof(ConfDiag));
        if (!items) {
                free(msg);
                p->oom = true;
                return;
        }
        d->items = items;
        d->items[d->n_items++] = (ConfDiag){ .level = level, .line = line, .message = msg };
}

#define error_at(p, line, ...)   diag_add((p), CONF_DIAG_ERROR, (line), __VA_ARGS__)
#define warning_at(p, line, ...) diag_add((p), CONF_DIAG_WARNING, (line), __VA_ARGS__)

/* Keys that point at a secret. Someone who pastes the secret itself there must not
 * find it in the journal, so their values are never quoted. */
static bool key_hides_value(const ConfKey *k)
{
        return streq(k->name, "PasswordFile") || streq(k->name, "UnlockCodeFile");
}

/* "[MQTT] Port=70000: value out of range 1..65535" */
static void key_error(Parser *p, const ConfKey *k, const char *value, const char *fmt, ...) _printf_(4, 5);
static void key_error(Parser *p, const ConfKey *k, const char *value, const char *fmt, ...)
{
        _cleanup_free_ char *reason = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&reason, fmt, ap);
        va_end(ap);
        if (r < 0) {
                reason = NULL;
                p->oom = true;
                return;
        }
        if (key_hides_value(k))
                error_at(p, p->line, "%s %s=: %s (value not shown)", p->section_label, k->name, reason);
        else
                error_at(p, p->line, "%s %s=%.*s: %s", p->section_label, k->name, clip_len(value, 64), value,
                         reason);
}

ConfDiags *conf_diags_free(ConfDiags *d)
{
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_items; i++)
                free(d->items[i].message);
        free(d->items);
        free(d);
        return NULL;
}

/* ---- value parsers ---------------------------------------------------------------------------- */

static int parse_boolean(const char *v)
{
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(v, yes[i]) == 0)
                        return 1;
                if (strcasecmp(v, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

static int parse_integer(const char *v, long long *ret)
{
        const char *s = v;
        char *end;
        long long x;

        if (*s == '-')
                s++;
        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        x = strtoll(v, &end, 10);
        if (*end != '\0')
                return -EINVAL;
        if (errno == ERANGE)
                return -ERANGE;
        *ret = x;
        return 0;
}

static const struct {
        const char *suffix;
        unsigned long long factor;
} time_units[] = {
        { "s", 1 },       { "sec", 1 },       { "second", 1 },     { "seconds", 1 }, { "m", 60 },
        { "min", 60 },    { "minute", 60 },   { "minutes", 60 },   { "h", 3600 },    { "hr", 3600 },
        { "hour", 3600 }, { "hours", 3600 },  { "d", 86400 },      { "day", 86400 }, { "days", 86400 },
        { "w", 604800 },  { "week", 604800 }, { "weeks", 604800 },
};

/* "90", "90s", "1min 30s", "2h", "7d", "1w". A bare number means seconds. */
static int parse_seconds(const char *v, unsigned long long *ret)
{
        unsigned long long total = 0;
        const char *s = v;

        if (!*s)
                return -EINVAL;
        while (*s) {
                unsigned long long n = 0, factor = 1;
                const char *u;
                size_t ulen;

                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                for (; isdigit((unsigned char) *s); s++) {
                        if (n > (ULLONG_MAX - 9) / 10)
                                return -ERANGE;
                        n = n * 10 + (unsigned long long) (*s - '0');
                }
                while (is_blank(*s)) /* "5 min" */
                        s++;
                for (u = s; isalpha((unsigned char) *s); s++)
                        ;
                ulen = (size_t) (s - u);
                if (ulen > 0) {
                        size_t i;
                        for (i = 0; i < ELEMENTSOF(time_units); i++)
                                if (strlen(time_units[i].suffix) == ulen &&
                                    strneq(u, time_units[i].suffix, ulen))
                                        break;
                        if (i >= ELEMENTSOF(time_units))
                                return -EINVAL;
                        factor = time_units[i].factor;
                }
                if (n > ULLONG_MAX / factor || total > ULLONG_MAX - n * factor)
                        return -ERANGE;
                total += n * factor;
                while (is_blank(*s))
                        s++;
        }
        *ret = total;
        return 0;
}

/* Shortest exact rendering that parse_seconds() reads back: "0", "45s", "1min 30s", "7d". */
static void format_seconds(unsigned long long sec, char *buf, size_t size)
{
        static const struct {
                const char *suffix;
                unsigned long long factor;
        } units[] = { { "d", 86400 }, { "h", 3600 }, { "min", 60 }, { "s", 1 } };
        size_t off = 0;

        if (sec == 0) {
                snprintf(buf, size, "0");
                return;
        }
        buf[0] = '\0';
        for (size_t i = 0; i < ELEMENTSOF(units) && sec > 0; i++) {
                unsigned long long n = sec / units[i].factor;
                if (n == 0)
                        continue;
                sec -= n * units[i].factor;
                int r = snprintf(buf + off, size - off, "%s%llu%s", off ? " " : "", n, units[i].suffix);
                if (r < 0 || (size_t) r >= size - off)
                        return;
                off += (size_t) r;
        }
}

static bool host_is_valid(const char *v)
{
        if (*v == '-' || *v == '.')
                return false;
        for (const char *s = v; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr(".-_:%", *s))
                        return false;
        return true;
}

static const char *topic_problem(const char *v)
{
        if (strpbrk(v, "+#"))
                return "must not contain the wildcards + or #";
        if (v[0] == '$')
                return "must not start with $";
        if (v[0] == '/' || v[strlen(v) - 1] == '/')
                return "must not start or end with /";
        if (strstr(v, "//"))
                return "must not contain an empty level (//)";
        for (const char *s = v; *s; s++)
                if ((unsigned char) *s <= ' ' || *s == 0x7F)
                        return "must not contain whitespace or control characters";
        return NULL;
}

static const char *path_problem(const char *v)
{
        if (v[0] != '/')
                return "must be an absolute path";
        if (has_control(v))
                return "must not contain control characters";
        for (const char *s = v; (s = strstr(s, "..")); s += 2)
                if ((s == v || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
                        return "must not contain .. components";
        return NULL;
}

/* An adapter is "hciN" or its Bluetooth address; addresses are stored upper-case. */
static char *adapter_normalize(const char *v)
{
        if (strneq(v, "hci", 3) && v[3]) {
                size_t n = strspn(v + 3, "0123456789");
                if (v[3 + n] == '\0' && n <= 3 && atoi(v + 3) <= 255)
                        return strdup(v);
                return NULL;
        }
        if (strlen(v) != 17)
                return NULL;
        for (size_t i = 0; i < 17; i++)
                if (i % 3 == 2 ? v[i] != ':' : !isxdigit((unsigned char) v[i]))
                        return NULL;
        char *s = strdup(v);
        for (char *c = s; c && *c; c++)
                *c = (char) toupper((unsigned char) *c);
        return s;
}

static int parse_adapters(Parser *p, const ConfKey *k, const char *value, char ***dest)
{
        _cleanup_free_ char *copy = strdup(value);
        char **list = NULL;
        size_t n = 0;
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *w = strtok_r(copy, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
                if (streq(w, "auto")) {
                        if (n > 0 || strtok_r(NULL, " \t,", &save)) {
                                strv_free(list);
                                key_error(p, k, value, "'auto' cannot be combined with adapter names");
                                return -EINVAL;
                        }
                        break;
                }
                if (n >= CONF_ADAPTERS_MAX) {
                        strv_free(list);
                        key_error(p, k, value, "at most %d adapters", CONF_ADAPTERS_MAX);
                        return -EINVAL;
                }
                errno = 0;
                char *a = adapter_normalize(w);
                if (!a) {
                        strv_free(list);
                        if (errno == ENOMEM)
                                return -ENOMEM;
                        key_error(p, k, value, "'%.*s' is not 'auto', hciN or a Bluetooth address",
                                  clip_len(w, 32), w);
                        return -EINVAL;
                }
                for (size_t i = 0; i < n; i++)
                        if (streq(list[i], a)) {
                                free(a);
                                strv_free(list);
                                key_error(p, k, value, "adapter '%.*s' listed twice", clip_len(w, 32), w);
                                return -EINVAL;
                        }
                char **l = realloc(list, (n + 2) * sizeof(char *));
                if (!l) {
                        free(a);
                        strv_free(list);
                        return -ENOMEM;
                }
                list = l;
                list[n++] = a;
                list[n] = NULL;
        }

        strv_free(*dest);
        *dest = list; /* NULL for "auto" */
        return 0;
}

/* Parses value for key k into the struct at base. Reports its own errors; returns
 * 0, -EINVAL (reported) or -ENOMEM. An empty value means the key's default. */
static int parse_value(Parser *p, const ConfKey *k, const char *value, void *base)
{
        void *dest = (uint8_t *) base + k->offset;
        long long x;
        int r;

        if (!*value) {
                if (k->type == CONF_T_TRISTATE) {
                        *(int *) dest = -1;
                        return 0;
                }
                if (k->def)
                        value = k->def;
        }

        switch (k->type) {
        case CONF_T_BOOL:
        case CONF_T_TRISTATE:
                r = parse_boolean(value);
                if (r < 0) {
                        key_error(p, k, value, "expected a boolean (yes/no, true/false, on/off, 1/0)");
                        return -EINVAL;
                }
                if (k->type == CONF_T_BOOL)
                        *(bool *) dest = r;
                else
                        *(int *) dest = r;
                return 0;

        case CONF_T_INT:
        case CONF_T_UINT:
                r = parse_integer(value, &x);
                if (r == -EINVAL) {
                        key_error(p, k, value, "expected an integer");
                        return -EINVAL;
                }
                if (r < 0 || x < k->min || x > k->max) {
                        key_error(p, k, value, "value out of range %lld..%lld", k->min, k->max);
                        return -EINVAL;
                }
                if (k->type == CONF_T_INT)
                        *(int *) dest = (int) x;
                else
                        *(unsigned *) dest = (unsigned) x;
                return 0;

        case CONF_T_SEC: {
                unsigned long long s;
                char lo[32], hi[32];

                r = parse_seconds(value, &s);
                if (r == -EINVAL) {
                        key_error(p, k, value, "expected a duration such as 30, 30s, 5min, 2h or 7d");
                        return -EINVAL;
                }
                if (r < 0 || s < (unsigned long long) k->min || s > (unsigned long long) k->max) {
                        format_seconds((unsigned long long) k->min, lo, sizeof lo);
                        format_seconds((unsigned long long) k->max, hi, sizeof hi);
                        key_error(p, k, value, "value out of range %s..%s", lo, hi);
                        return -EINVAL;
                }
                *(unsigned *) dest = (unsigned) s;
                return 0;
        }

        case CONF_T_ENUM:
                for (size_t i = 0; k->names[i]; i++)
                        if (strcasecmp(value, k->names[i]) == 0) {
                                *(int *) dest = (int) i;
                                return 0;
                        }
                if (k->names[0] && k->names[1] && !k->names[2])
                        key_error(p, k, value, "expected '%s' or '%s'", k->names[0], k->names[1]);
                else
                        key_error(p, k, value, "not a valid value");
                return -EINVAL;

        case CONF_T_LOGLEVEL:
                r = log_level_from_string(value);
                if (r < 0) {
                        key_error(p, k, value,
                                  "expected emerg, alert, crit, err, warning, notice, info or debug");
                        return -EINVAL;
                }
                *(int *) dest = r;
                return 0;

        case CONF_T_NAME:
        case CONF_T_TOKEN:
        case CONF_T_HOST:
        case CONF_T_TOPIC:
        case CONF_T_PATH: {
                const char *problem = NULL;
                size_t len = strlen(value);
                char *s;

                if (len == 0) { /* a key without default: unset */
                        free(*(char **) dest);
                        *(char **) dest = NULL;
                        return 0;
                }
                if (len > (size_t) k->max) {
                        key_error(p, k, value, "longer than %lld bytes", k->max);
                        return -EINVAL;
                }
                switch (k->type) {
                case CONF_T_NAME:
                        if (has_control(value))
                                problem = "must not contain control characters";
                        break;
                case CONF_T_TOKEN:
                        for (const char *c = value; *c && !problem; c++)
                                if ((unsigned char) *c <= ' ' || *c == 0x7F)
                                        problem = "must not contain whitespace or control characters";
                        break;
                case CONF_T_HOST:
                        if (!host_is_valid(value))
                                problem = "not a valid host name or IP address";
                        break;
                case CONF_T_TOPIC:
                        problem = topic_problem(value);
                        break;
                case CONF_T_PATH:
                        problem = path_problem(value);
                        break;
                case CONF_T_BOOL:
                case CONF_T_TRISTATE:
                case CONF_T_INT:
                case CONF_T_UINT:
                case CONF_T_SEC:
                case CONF_T_ENUM:
                case CONF_T_LOGLEVEL:
                case CONF_T_ADAPTERS:
                        assert(false);
                        break;
                }
                if (problem) {
                        key_error(p, k, value, "%s", problem);
                        return -EINVAL;
                }
                s = strdup(value);
                if (!s)
                        return -ENOMEM;
                free(*(char **) dest);
                *(char **) dest = s;
                return 0;
        }

        case CONF_T_ADAPTERS:
                return parse_adapters(p, k, value, (char ***) dest);
        }
        return -EINVAL;
}

/* ---- lines ------------------------------------------------------------------------------------ */

static const ConfKey *key_lookup(const ConfKey *table, size_t n, const char *section, const char *name,
                                 bool icase)
{
        for (size_t i = 0; i < n; i++)
                if (streq(table[i].section, section) &&
                    (icase ? strcasecmp(table[i].name, name) == 0 : streq(table[i].name, name)))
                        return &table[i];
        return NULL;
}

static int lock_section_open(Parser *p, const char *name)
{
        Conf *c = p->conf;

        for (size_t i = 0; i < c->n_locks; i++)
                if (streq(c->locks[i].name, name)) {
                        p->lock_index = i;
                        return 0;
                }

        ConfLock *l = realloc(c->locks, (c->n_locks + 1) * sizeof(ConfLock));
        if (!l)
                return -ENOMEM;
        c->locks = l;
        l[c->n_locks] = (ConfLock){
                .name = strdup(name),
                .line = p->line,
                .require_unlock_code = -1,
                .allow_remote_unlock = -1,
                .allow_remote_unlatch = -1,
        };
        if (!l[c->n_locks].name)
                return -ENOMEM;
        p->lock_index = c->n_locks++;
        return 0;
}

static int section_header(Parser *p, const char *s, size_t n)
{
        _cleanup_free_ char *name = NULL;
        const char *in;
        size_t in_len;

        if (n < 2 || s[n - 1] != ']') {
                error_at(p, p->line, "unterminated section header, expected [Section]");
                p->section = SECTION_IGNORED;
                return 0;
        }
        in = s + 1;
        in_len = n - 2;
        trim(&in, &in_len);
        name = strndup(in, in_len);
        if (!name)
                return -ENOMEM;

        for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                if (streq(name, sections[i])) {
                        p->section = (int) i;
                        snprintf(p->section_label, sizeof p->section_label, "[%s]", sections[i]);
                        return 0;
                }

        if (strneq(name, "Lock", 4) && (name[4] == '\0' || is_blank(name[4]))) {
                const char *ln = name + 4;
                size_t ln_len = strlen(ln);

                trim(&ln, &ln_len);
                p->section = SECTION_IGNORED;
                if (ln_len == 0) {
                        error_at(p, p->line, "[Lock] needs the name of a lock: [Lock NAME]");
                        return 0;
                }
                if (!lock_name_is_valid(ln)) {
                        error_at(p, p->line,
                                 "[Lock %.*s]: invalid lock name (1-32 letters, digits, - and _, "
                                 "not starting with -)",
                                 clip_len(ln, 64), ln);
                        return 0;
                }
                if (lock_section_open(p, ln) < 0)
                        return -ENOMEM;
                p->section = SECTION_LOCK;
                snprintf(p->section_label, sizeof p->section_label, "[Lock %s]", ln);
                return 0;
        }

        if (in_len == 0)
                error_at(p, p->line, "empty section name []");
        else
                warning_at(p, p->line, "unknown section [%.*s], ignoring its keys", clip_len(name, 64),
                           name);
        p->section = SECTION_IGNORED;
        return 0;
}

static int assignment(Parser *p, char *s, size_t n)
{
        const char *eq = memchr(s, '=', n);
        const char *ks = s, *vs;
        size_t kn, vn;
        const char *section;
        const ConfKey *k;
        void *base;

        if (!eq) {
                /* Not quoted: a stray line may well be a pasted password. */
                error_at(p, p->line, "expected Key=value or [Section]");
                return 0;
        }
        kn = (size_t) (eq - s);
        vs = eq + 1;
        vn = n - kn - 1;
        trim(&ks, &kn);
        trim(&vs, &vn);

        if (p->section == SECTION_NONE) {
                ((char *) ks)[kn] = '\0';
                error_at(p, p->line, "key '%.*s' outside of any section", clip_len(ks, 64), ks);
                return 0;
        }
        if (p->section == SECTION_IGNORED)
                return 0;
        if (kn == 0) {
                error_at(p, p->line, "missing key name before '='");
                return 0;
        }

        _cleanup_free_ char *key = strndup(ks, kn);
        _cleanup_free_ char *value = strndup(vs, vn);
        if (!key || !value)
                return -ENOMEM;

        section = p->section == SECTION_LOCK ? "Lock" : sections[p->section];
        if (p->section == SECTION_LOCK) {
                k = key_lookup(lock_keys, ELEMENTSOF(lock_keys), section, key, false);
                base = &p->conf->locks[p->lock_index];
        } else {
                k = key_lookup(conf_keys, ELEMENTSOF(conf_keys), section, key, false);
                base = p->conf;
        }

        if (!k) {
                for (size_t i = 0; i < ELEMENTSOF(secret_keys); i++)
                        if (streq(secret_keys[i].section, section) &&
                            strcasecmp(secret_keys[i].key, key) == 0) {
                                error_at(p, p->line, "%s %s=: secrets do not belong in this file, use %s",
                                         p->section_label, secret_keys[i].key, secret_keys[i].instead);
                                return 0;
                        }
                k = p->section == SECTION_LOCK
                                    ? key_lookup(lock_keys, ELEMENTSOF(lock_keys), section, key, true)
                                    : key_lookup(conf_keys, ELEMENTSOF(conf_keys), section, key, true);
                if (k)
                        warning_at(p, p->line, "unknown key '%.*s' in %s (did you mean '%s'?), ignoring",
                                   clip_len(key, 64), key, p->section_label, k->name);
                else
                        warning_at(p, p->line, "unknown key '%.*s' in %s, ignoring", clip_len(key, 64), key,
                                   p->section_label);
                return 0;
        }

        int r = parse_value(p, k, value, base);
        if (r == -ENOMEM)
                return r;
        if (p->section != SECTION_LOCK) {
                size_t idx = (size_t) (k - conf_keys);
                if (r == 0)
                        p->set_line[idx] = value[0] ? p->line : 0;
        }
        return 0;
}

static int parse_line(Parser *p, const char *s, size_t n)
{
        if (memchr(s, '\0', n)) {
                error_at(p, p->line, "line contains a NUL byte");
                return 0;
        }
        if (n > CONF_LINE_MAX) {
                error_at(p, p->line, "line longer than %d bytes", CONF_LINE_MAX);
                return 0;
        }
        if (!utf8_is_valid(s, n)) {
                error_at(p, p->line, "line is not valid UTF-8");
                return 0;
        }
        if (p->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
                s += 3;
                n -= 3;
        }
        trim(&s, &n);
        if (n == 0 || s[0] == '#' || s[0] == ';')
                return 0;

        /* From here on the line is a C string, so messages can quote it safely. */
        char buf[CONF_LINE_MAX + 1];
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (buf[0] == '[')
                return section_header(p, buf, n);
        return assignment(p, buf, n);
}

/* ---- cross-key rules -------------------------------------------------------------------------- */

static size_t key_index(const char *section, const char *name)
{
        const ConfKey *k = key_lookup(conf_keys, ELEMENTSOF(conf_keys), section, name, false);
        assert(k);
        return (size_t) (k - conf_keys);
}

static unsigned set_line(const Parser *p, const char *section, const char *name)
{
        return p->set_line[key_index(section, name)];
}

static void check_conf(Parser *p)
{
        Conf *c = p->conf;
        unsigned l1, l2;

        if (c->mqtt.socket) {
                l1 = set_line(p, "MQTT", "Host");
                l2 = set_line(p, "MQTT", "Port");
                if (l1 || l2)
                        error_at(p, set_line(p, "MQTT", "Socket"),
                                 "[MQTT] Socket= cannot be combined with Host= or Port= (line %u)",
                                 MAX(l1, l2));
                free(c->mqtt.host);
                c->mqtt.host = NULL;
        }
        if (c->mqtt.tls && !set_line(p, "MQTT", "Port"))
                c->mqtt.port = 8883;

        if (!c->mqtt.cert_file != !c->mqtt.key_file)
                error_at(p, MAX(set_line(p, "MQTT", "CertFile"), set_line(p, "MQTT", "KeyFile")),
                         "[MQTT] CertFile= and KeyFile= must be given together");
        if (!c->mqtt.tls) {
                static const char *const tls_keys[] = { "CAFile", "CAPath", "CertFile", "KeyFile",
                                                        "TLSInsecure" };
                for (size_t i = 0; i < ELEMENTSOF(tls_keys); i++) {
                        l1 = set_line(p, "MQTT", tls_keys[i]);
                        /* TLSInsecure=no is harmless anywhere. */
                        if (l1 && !(streq(tls_keys[i], "TLSInsecure") && !c->mqtt.tls_insecure))
                                warning_at(p, l1, "[MQTT] %s= has no effect without TLS=yes", tls_keys[i]);
                }
        } else if (c->mqtt.tls_insecure)
                warning_at(p, set_line(p, "MQTT", "TLSInsecure"),
                           "[MQTT] TLSInsecure=yes: the broker's certificate is not verified; use this for "
                           "testing only");

        if (c->mqtt.reconnect_min_sec > c->mqtt.reconnect_max_sec)
                error_at(p,
                         MAX(set_line(p, "MQTT", "ReconnectMinSec"), set_line(p, "MQTT", "ReconnectMaxSec")),
                         "[MQTT] ReconnectMinSec= (%us) must not exceed ReconnectMaxSec= (%us)",
                         c->mqtt.reconnect_min_sec, c->mqtt.reconnect_max_sec);
        if (streq(c->mqtt.base_topic, c->mqtt.discovery_prefix))
                error_at(p, MAX(set_line(p, "MQTT", "BaseTopic"), set_line(p, "MQTT", "DiscoveryPrefix")),
                         "[MQTT] BaseTopic= and DiscoveryPrefix= must differ");

        if (c->health.battery_critical_percent >= c->health.battery_low_percent)
                error_at(p,
                         MAX(set_line(p, "Health", "BatteryLowPercent"),
                             set_line(p, "Health", "BatteryCriticalPercent")),
                         "[Health] BatteryCriticalPercent= (%u) must be below BatteryLowPercent= (%u)",
                         c->health.battery_critical_percent, c->health.battery_low_percent);
        if (c->health.retry_backoff_min_sec > c->health.retry_backoff_max_sec)
                error_at(p,
                         MAX(set_line(p, "Health", "RetryBackoffMinSec"),
                             set_line(p, "Health", "RetryBackoffMaxSec")),
                         "[Health] RetryBackoffMinSec= (%us) must not exceed RetryBackoffMaxSec= (%us)",
                         c->health.retry_backoff_min_sec, c->health.retry_backoff_max_sec);
}

/* ---- public ----------------------------------------------------------------------------------- */

static void free_strings(const ConfKey *table, size_t n, void *base)
{
        for (size_t i = 0; i < n; i++) {
                void *dest = (uint8_t *) base + table[i].offset;
                switch (table[i].type) {
                case CONF_T_NAME:
                case CONF_T_TOKEN:
                case CONF_T_HOST:
                case CONF_T_TOPIC:
                case CONF_T_PATH:
                        free(*(char **) dest);
                        *(char **) dest = NULL;
                        break;
                case CONF_T_ADAPTERS:
                        strv_free(*(char ***) dest);
                        *(char ***) dest = NULL;
                        break;
                case CONF_T_BOOL:
                case CONF_T_TRISTATE:
                case CONF_T_INT:
                case CONF_T_UINT:
                case CONF_T_SEC:
                case CONF_T_ENUM:
                case CONF_T_LOGLEVEL:
                        break;
                }
        }
}

Conf *conf_free(Conf *c)
{
        if (!c)
                return NULL;
        free_strings(conf_keys, ELEMENTSOF(conf_keys), c);
        for (size_t i = 0; i < c->n_locks; i++) {
                free_strings(lock_keys, ELEMENTSOF(lock_keys), &c->locks[i]);
                free(c->locks[i].name);
        }
        free(c->locks);
        free(c);
        return NULL;
}

Conf *conf_new_defaults(void)
{
        _cleanup_(conf_diags_freep) ConfDiags *diags = calloc(1, sizeof(ConfDiags));
        _cleanup_(conf_freep) Conf *c = calloc(1, sizeof(Conf));
        Parser p = { .path = "(defaults)", .conf = c, .diags = diags };

        if (!c || !diags)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
                snprintf(p.section_label, sizeof p.section_label, "[%s]", conf_keys[i].section);
                if (parse_value(&p, &conf_keys[i], "", c) == -ENOMEM || p.oom)
                        return NULL;
        }
        /* A default the parser rejects is a bug in the table above. */
        assert(diags->n_errors == 0);
        return TAKE_PTR(c);
}

int conf_parse(const char *path, const char *text, size_t len, Conf **ret, ConfDiags **ret_diags)
{
        _cleanup_(conf_diags_freep) ConfDiags *diags = calloc(1, sizeof(ConfDiags));
        _cleanup_(conf_freep) Conf *c = conf_new_defaults();
        Parser p = { .path = path ?: "(string)", .conf = c, .diags = diags, .section = SECTION_NONE };
        size_t pos = 0;
        int r;

        if (!c || !diags)
                return -ENOMEM;

        while (pos < len) {
                const char *s = text + pos;
                const char *nl = memchr(s, '\n', len - pos);
                size_t n = nl ? (size_t) (nl - s) : len - pos;

                pos += n + (nl ? 1 : 0);
                p.line++;
                r = parse_line(&p, s, n);
                if (r < 0)
                        return r;
                if (p.oom)
                        return -ENOMEM;
        }
        check_conf(&p);
        if (p.oom)
                return -ENOMEM;

        r = diags->n_errors > 0 ? -EINVAL : 0;
        if (r == 0 && ret)
                *ret = TAKE_PTR(c);
        if (ret_diags)
                *ret_diags = TAKE_PTR(diags);
        return r;
}

static int file_error(const char *path, int r, ConfDiags **ret_diags)
{
        if (ret_diags) {
                ConfDiags *d = calloc(1, sizeof(ConfDiags));
                Parser p = { .path = path, .diags = d };

                if (!d)
                        return -ENOMEM;
                errno = -r;
                if (r == -EBADFD)
                        error_at(&p, 0, "cannot read configuration file: not a regular file");
                else
                        error_at(&p, 0, "cannot read configuration file: %m");
                if (p.oom) {
                        conf_diags_free(d);
                        return -ENOMEM;
                }
                *ret_diags = d;
        }
        return r;
}

int conf_read_file(const char *path, Conf **ret, ConfDiags **ret_diags)
{
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t n = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return file_error(path, negative_errno(), ret_diags);
        if (fstat(fd, &st) < 0)
                return file_error(path, negative_errno(), ret_diags);
        if (S_ISDIR(st.st_mode))
                return file_error(path, -EISDIR, ret_diags);
        if (!S_ISREG(st.st_mode))
                return file_error(path, -EBADFD, ret_diags);
        if ((size_t) st.st_size > CONF_FILE_SIZE_MAX)
                return file_error(path, -EFBIG, ret_diags);

        buf = malloc(CONF_FILE_SIZE_MAX + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = read(fd, buf + n, CONF_FILE_SIZE_MAX + 1 - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return file_error(path, negative_errno(), ret_diags);
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > CONF_FILE_SIZE_MAX) /* grew since fstat() */
                        return file_error(path, -EFBIG, ret_diags);
        }
        return conf_parse(path, buf, n, ret, ret_diags);
}

int conf_load(const char *path, Conf **ret)
{
        _cleanup_(conf_diags_freep) ConfDiags *diags = NULL;
        int r;

        r = conf_read_file(path, ret, &diags);
        for (size_t i = 0; diags && i < diags->n_items; i++) {
                const ConfDiag *d = &diags->items[i];
                char file_field[PATH_MAX + 16], line_field[32];

                snprintf(file_field, sizeof file_field, "CONFIG_FILE=%s", path);
                snprintf(line_field, sizeof line_field, "CONFIG_LINE=%u", d->line);
                (void) log_struct(d->level == CONF_DIAG_ERROR ? LOG_ERR : LOG_WARNING, 0,
                                  LOG_FIELDS(file_field, line_field), "%s", d->message);
        }
        if (r == -EINVAL && diags)
                log_error("%s: %zu error%s, configuration not loaded", path, diags->n_errors,
                          diags->n_errors == 1 ? "" : "s");
        return r;
}

const ConfLock *conf_find_lock(const Conf *c, const char *name)
{
        for (size_t i = 0; c && name && i < c->n_locks; i++)
                if (streq(c->locks[i].name, name))
                        return &c->locks[i];
        return NULL;
}

void conf_lock_policy(const Conf *c, const char *name, ConfLockPolicy *ret)
{
        const ConfLock *l = conf_find_lock(c, name);

        *ret = (ConfLockPolicy){
                .require_unlock_code = c->mqtt.require_unlock_code,
                .unlock_code_file = c->mqtt.unlock_code_file,
                .allow_remote_unlock = c->mqtt.allow_remote_unlock,
                .allow_remote_unlatch = c->mqtt.allow_remote_unlatch,
        };
        if (!l)
                return;
        if (l->require_unlock_code >= 0)
                ret->require_unlock_code = l->require_unlock_code;
        if (l->unlock_code_file)
                ret->unlock_code_file = l->unlock_code_file;
        if (l->allow_remote_unlock >= 0)
                ret->allow_remote_unlock = l->allow_remote_unlock;
        if (l->allow_remote_unlatch >= 0)
                ret->allow_remote_unlatch = l->allow_remote_unlatch;
}

static void format_key(FILE *f, const ConfKey *k, const void *base)
{
        const void *src = (const uint8_t *) base + k->offset;
        char buf[64];

        switch (k->type) {
        case CONF_T_BOOL:
                fprintf(f, "%s=%s\n", k->name, *(const bool *) src ? "yes" : "no");
                return;
        case CONF_T_TRISTATE:
                if (*(const int *) src >= 0)
                        fprintf(f, "%s=%s\n", k->name, *(const int *) src ? "yes" : "no");
                return;
        case CONF_T_INT:
                fprintf(f, "%s=%d\n", k->name, *(const int *) src);
                return;
        case CONF_T_UINT:
                fprintf(f, "%s=%u\n", k->name, *(const unsigned *) src);
                return;
        case CONF_T_SEC:
                format_seconds(*(const unsigned *) src, buf, sizeof buf);
                fprintf(f, "%s=%s\n", k->name, buf);
                return;
        case CONF_T_ENUM:
                fprintf(f, "%s=%s\n", k->name, k->names[*(const int *) src]);
                return;
        case CONF_T_LOGLEVEL:
                fprintf(f, "%s=%s\n", k->name, strna(log_level_to_string(*(const int *) src)));
                return;
        case CONF_T_NAME:
        case CONF_T_TOKEN:
        case CONF_T_HOST:
        case CONF_T_TOPIC:
        case CONF_T_PATH:
                if (*(char *const *) src || !streq(k->section, "Lock"))
                        fprintf(f, "%s=%s\n", k->name, strempty(*(char *const *) src));
                return;
        case CONF_T_ADAPTERS: {
                char *const *l = *(char **const *) src;
                fprintf(f, "%s=", k->name);
                if (!l)
                        fputs("auto", f);
                for (size_t i = 0; l && l[i]; i++)
                        fprintf(f, "%s%s", i ? " " : "", l[i]);
                fputc('\n', f);
                return;
        }
        }
}

int conf_format(const Conf *c, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        const char *section = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(conf_keys); i++) {
                const ConfKey *k = &conf_keys[i];

                if (!section || !streq(section, k->section)) {
                        fprintf(f, "%s[%s]\n", section ? "\n" : "", k->section);
                        section = k->section;
                }
                /* With a socket, Host= and Port= are unused and may not be given. */
                if (c->mqtt.socket && streq(k->section, "MQTT") &&
                    (streq(k->name, "Host") || streq(k->name, "Port")))
                        continue;
                format_key(f, k, c);
        }
        for (size_t i = 0; i < c->n_locks; i++) {
                fprintf(f, "\n[Lock %s]\n", c->locks[i].name);
                for (size_t j = 0; j < ELEMENTSOF(lock_keys); j++)
                        format_key(f, &lock_keys[j], &c->locks[i]);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

const char *conf_drift_policy_to_string(ConfDriftPolicy p)
{
        return p >= 0 && p < _CONF_DRIFT_POLICY_MAX ? drift_policy_names[p] : NULL;
}

const char *conf_mqtt_protocol_to_string(ConfMqttProtocol p)
{
        return p >= 0 && p < _CONF_MQTT_PROTOCOL_MAX ? mqtt_protocol_names[p] : NULL;
}

const char *conf_scan_mode_to_string(ConfScanMode p)
{
        return p >= 0 && p < _CONF_SCAN_MODE_MAX ? scan_mode_names[p] : NULL;
}
