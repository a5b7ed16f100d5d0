/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Backup documents: writing, encrypting, reading with full validation, restoring (the
 * format and the guarantees are in lockhub/backup.h).
 *
 * Validation is one pass over the parsed JSON that knows the whole schema; every check
 * names its place in the document. The parsed tree is kept in the Backup only after it
 * passed, and restore reads it from there, so restore never sees an unchecked value.
 */

#include <ctype.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>

#include "codes-internal.h"
#include "lockhub/backup.h"
#include "lockhub/codes.h"
#include "lockhub/lock.h"

#define LOCKS_MAX         64
#define USERS_MAX         1000
#define CODES_PER_USER    200
#define CODES_MAX         2000
#define SETTINGS_MEMBERS  64
#define TIME_CONTROLS_MAX 32
#define STRING_MAX        256
#define OPSLIMIT_MAX      8
#define MEMLIMIT_MAX      (UINT64_C(256) << 20) /* a file must not make the hub swap */
#define SALT_SIZE         16
#define NONCE_SIZE        24
#define KEY_SIZE          32

struct Backup {
        json_object *doc;
        bool encrypted;
        bool secrets;
};

_printf_(3, 4) static int fail(char **ret_error, int r, const char *fmt, ...)
{
        va_list ap;

        if (ret_error) {
                free(*ret_error);
                *ret_error = NULL;
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return r;
}

/* ---- validation helpers ---- */

typedef struct Ctx {
        char **error;
        bool secrets;
} Ctx;

static bool text_is_clean(const char *s, size_t len)
{
        if (strlen(s) != len)
                return false; /* an embedded NUL (\u0000) */
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

static int check_keys(Ctx *c, const char *path, json_object *o, const char *const *allowed,
                      const char *const *required)
{
        if (!json_object_is_type(o, json_type_object))
                return fail(c->error, -EINVAL, "%s: must be an object", path);
        json_object_object_foreach (o, key, val) {
                bool ok = false;

                (void) val;
                for (size_t i = 0; allowed[i]; i++)
                        if (streq(key, allowed[i]))
                                ok = true;
                if (!ok)
                        return fail(c->error, -EINVAL, "%s: unknown key \"%.64s\"", path, key);
        }
        for (size_t i = 0; required && required[i]; i++)
                if (!json_object_object_get_ex(o, required[i], NULL))
                        return fail(c->error, -EINVAL, "%s: \"%s\" is missing", path, required[i]);
        return 0;
}

static int get_int(Ctx *c, const char *path, json_object *o, const char *key, int64_t min, int64_t max,
                   int64_t def, int64_t *ret)
{
        json_object *v;
        int64_t x;

        if (!json_object_object_get_ex(o, key, &v)) {
                *ret = def;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int))
                return fail(c->error, -EINVAL, "%s.%s: must be an integer", path, key);
        errno = 0;
        x = json_object_get_int64(v);
        if (errno != 0 || x < min || x > max ||
            (x == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX))
                return fail(c->error, -EINVAL, "%s.%s: must be between %" PRIi64 " and %" PRIi64, path, key,
                            min, max);
        *ret = x;
        return 0;
}

static int get_bool(Ctx *c, const char *path, json_object *o, const char *key, bool def, bool *ret)
{
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v)) {
                *ret = def;
                return 0;
        }
        if (!json_object_is_type(v, json_type_boolean))
                return fail(c->error, -EINVAL, "%s.%s: must be true or false", path, key);
        *ret = json_object_get_boolean(v);
        return 0;
}

/* A string of 1..max bytes without control characters; *ret NULL when absent and optional. */
static int get_string(Ctx *c, const char *path, json_object *o, const char *key, size_t max, bool required,
                      const char **ret)
{
        json_object *v;
        const char *s;
        size_t len;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                if (required)
                        return fail(c->error, -EINVAL, "%s.%s: is missing", path, key);
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return fail(c->error, -EINVAL, "%s.%s: must be a string", path, key);
        s = json_object_get_string(v);
        len = (size_t) json_object_get_string_len(v);
        if (len == 0 || len > max)
                return fail(c->error, -EINVAL, "%s.%s: must be 1 to %zu bytes long", path, key, max);
        if (!text_is_clean(s, len))
                return fail(c->error, -EINVAL, "%s.%s: contains a control character", path, key);
        *ret = s;
        return 0;
}

static bool is_hex(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (!isxdigit((unsigned char) s[i]) || isupper((unsigned char) s[i]))
                        return false;
        return true;
}

static int check_scalar(Ctx *c, const char *path, json_object *v)
{
        switch (json_object_get_type(v)) {
        case json_type_null:
        case json_type_boolean:
        case json_type_int:
        case json_type_double:
                return 0;
        case json_type_string:
                if ((size_t) json_object_get_string_len(v) > STRING_MAX ||
                    !text_is_clean(json_object_get_string(v), (size_t) json_object_get_string_len(v)))
                        return fail(c->error, -EINVAL, "%s: strings must be at most %d bytes of text", path,
                                    STRING_MAX);
                return 0;
        case json_type_object:
        case json_type_array:
                break;
        }
        return fail(c->error, -EINVAL, "%s: must be a number, string, boolean or null", path);
}

/* A settings snapshot: an object of scalars or short arrays of scalars. */
static int check_settings(Ctx *c, const char *path, json_object *o)
{
        char p[256];
        int r;

        if (!json_object_is_type(o, json_type_object))
                return fail(c->error, -EINVAL, "%s: must be an object", path);
        if (json_object_object_length(o) > SETTINGS_MEMBERS)
                return fail(c->error, -EINVAL, "%s: more than %d members", path, SETTINGS_MEMBERS);
        json_object_object_foreach (o, key, val) {
                size_t kl = strlen(key);

                if (kl == 0 || kl > 64 || !text_is_clean(key, kl))
                        return fail(c->error, -EINVAL, "%s: invalid member name", path);
                snprintf(p, sizeof p, "%s.%s", path, key);
                if (json_object_is_type(val, json_type_array)) {
                        size_t n = json_object_array_length(val);

                        if (n > 16)
                                return fail(c->error, -EINVAL, "%s: more than 16 elements", p);
                        for (size_t i = 0; i < n; i++) {
                                r = check_scalar(c, p, json_object_array_get_idx(val, i));
                                if (r < 0)
                                        return r;
                        }
                        continue;
                }
                r = check_scalar(c, p, val);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_pairing(Ctx *c, const char *path, json_object *o)
{
        static const char *const keys[] = { "auth_id",    "app_id",       "id_type", "ultra",
                                            "shared_key", "security_pin", NULL };
        static const char *const required[] = { "auth_id", "shared_key", NULL };
        const char *s;
        int64_t x;
        bool b;
        int r;

        if (!c->secrets)
                return fail(c->error, -EINVAL, "%s: pairing secrets in a document without \"secrets\": true",
                            path);
        if ((r = check_keys(c, path, o, keys, required)) < 0 ||
            (r = get_int(c, path, o, "auth_id", 0, UINT32_MAX, 0, &x)) < 0 ||
            (r = get_int(c, path, o, "app_id", 0, UINT32_MAX, 0, &x)) < 0 ||
            (r = get_int(c, path, o, "id_type", 0, 255, 1, &x)) < 0 ||
            (r = get_bool(c, path, o, "ultra", false, &b)) < 0)
                return r;
        r = get_string(c, path, o, "shared_key", 64, true, &s);
        if (r < 0)
                return r;
        if (strlen(s) != 64 || !is_hex(s, 64))
                return fail(c->error, -EINVAL, "%s.shared_key: must be 64 lower-case hex digits", path);
        r = get_string(c, path, o, "security_pin", 16, false, &s);
        if (r < 0)
                return r;
        if (s && (strlen(s) % 2 != 0 || !is_hex(s, strlen(s))))
                return fail(c->error, -EINVAL, "%s.security_pin: must be lower-case hex bytes", path);
        return 0;
}

static int check_lock(Ctx *c, const char *path, json_object *o, json_object *locks, size_t index)
{
        static const char *const keys[] = { "name",          "address", "model",
                                            "firmware",      "config",  "advanced_config",
                                            "time_controls", "pairing", NULL };
        static const char *const required[] = { "name", "address", NULL };
        const char *name, *address, *s;
        char norm[18], p[128];
        json_object *v;
        int r;

        if ((r = check_keys(c, path, o, keys, required)) < 0 ||
            (r = get_string(c, path, o, "name", 32, true, &name)) < 0 ||
            (r = get_string(c, path, o, "address", 17, true, &address)) < 0 ||
            (r = get_string(c, path, o, "model", 64, false, &s)) < 0 ||
            (r = get_string(c, path, o, "firmware", 32, false, &s)) < 0)
                return r;
        if (!lock_name_is_valid(name))
                return fail(c->error, -EINVAL, "%s.name: \"%s\" is not a valid lock name", path, name);
        if (lock_address_normalize(address, norm) < 0)
                return fail(c->error, -EINVAL, "%s.address: \"%s\" is not a Bluetooth address", path,
                            address);
        for (size_t i = 0; i < index; i++) {
                json_object *other = json_object_array_get_idx(locks, i), *on, *oa;
                char onorm[18];

                if (json_object_object_get_ex(other, "name", &on) && streq(json_object_get_string(on), name))
                        return fail(c->error, -EINVAL, "%s.name: \"%s\" appears twice", path, name);
                if (json_object_object_get_ex(other, "address", &oa) &&
                    lock_address_normalize(json_object_get_string(oa), onorm) >= 0 && streq(onorm, norm))
                        return fail(c->error, -EINVAL, "%s.address: %s appears twice", path, norm);
        }
        if (json_object_object_get_ex(o, "config", &v) && !json_object_is_type(v, json_type_null)) {
                snprintf(p, sizeof p, "%s.config", path);
                if ((r = check_settings(c, p, v)) < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "advanced_config", &v) && !json_object_is_type(v, json_type_null)) {
                snprintf(p, sizeof p, "%s.advanced_config", path);
                if ((r = check_settings(c, p, v)) < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "time_controls", &v) && !json_object_is_type(v, json_type_null)) {
                size_t n;

                snprintf(p, sizeof p, "%s.time_controls", path);
                if (!json_object_is_type(v, json_type_array))
                        return fail(c->error, -EINVAL, "%s: must be an array", p);
                n = json_object_array_length(v);
                if (n > TIME_CONTROLS_MAX)
                        return fail(c->error, -EINVAL, "%s: more than %d entries", p, TIME_CONTROLS_MAX);
                for (size_t i = 0; i < n; i++) {
                        char q[160];
                        snprintf(q, sizeof q, "%s[%zu]", p, i);
                        if ((r = check_settings(c, q, json_object_array_get_idx(v, i))) < 0)
                                return r;
                }
        }
        if (json_object_object_get_ex(o, "pairing", &v)) {
                snprintf(p, sizeof p, "%s.pairing", path);
                if ((r = check_pairing(c, p, v)) < 0)
                        return r;
        }
        return 0;
}

static bool doc_has_lock(json_object *locks, const char *name)
{
        for (size_t i = 0; i < json_object_array_length(locks); i++) {
                json_object *n;
                if (json_object_object_get_ex(json_object_array_get_idx(locks, i), "name", &n) &&
                    streq(json_object_get_string(n), name))
                        return true;
        }
        return false;
}

/* The LockCode of a code object that passed check_code() (digits "" without secrets). */
static void code_from_json(json_object *o, LockCode *c)
{
        json_object *v;

        lock_code_init(c);
        if (json_object_object_get_ex(o, "name", &v))
                snprintf(c->name, sizeof c->name, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "digits", &v))
                snprintf(c->digits, sizeof c->digits, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "enabled", &v))
                c->enabled = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "valid_from_usec", &v))
                c->valid_from_usec = (uint64_t) json_object_get_int64(v);
        if (json_object_object_get_ex(o, "valid_until_usec", &v))
                c->valid_until_usec = (uint64_t) json_object_get_int64(v);
        if (json_object_object_get_ex(o, "weekdays", &v))
                c->weekdays = (unsigned) json_object_get_int(v);
        if (json_object_object_get_ex(o, "time_from_min", &v))
                c->time_from_min = json_object_get_int(v);
        if (json_object_object_get_ex(o, "time_until_min", &v))
                c->time_until_min = json_object_get_int(v);
}

static int check_code(Ctx *c, const char *path, json_object *o, json_object *locks, json_object *codes,
                      size_t index)
{
        static const char *const keys[] = {
                "name",          "enabled",        "valid_from_usec", "valid_until_usec", "weekdays",
                "time_from_min", "time_until_min", "locks",           "digits",           NULL
        };
        static const char *const required[] = { "name", "locks", NULL };
        const char *s;
        json_object *v;
        LockCode code;
        int64_t x;
        bool b;
        CodeRule rule;
        int r;

        if ((r = check_keys(c, path, o, keys, required)) < 0 ||
            (r = get_string(c, path, o, "name", LOCK_CODE_NAME_MAX, true, &s)) < 0 ||
            (r = get_bool(c, path, o, "enabled", true, &b)) < 0 ||
            (r = get_int(c, path, o, "valid_from_usec", 0, INT64_MAX, 0, &x)) < 0 ||
            (r = get_int(c, path, o, "valid_until_usec", 0, INT64_MAX, 0, &x)) < 0 ||
            (r = get_int(c, path, o, "weekdays", 0, 127, 127, &x)) < 0 ||
            (r = get_int(c, path, o, "time_from_min", -1, 1439, -1, &x)) < 0 ||
            (r = get_int(c, path, o, "time_until_min", -1, 1439, -1, &x)) < 0)
                return r;
        if (json_object_object_get_ex(o, "digits", &v)) {
                if (!c->secrets)
                        return fail(c->error, -EINVAL,
                                    "%s.digits: code digits in a document without \"secrets\": true", path);
                if ((r = get_string(c, path, o, "digits", LOCK_CODE_DIGITS_MAX, true, &s)) < 0)
                        return r;
        } else if (c->secrets)
                return fail(c->error, -EINVAL, "%s.digits: is missing", path);

        code_from_json(o, &code);
        if (!c->secrets)
                memcpy(code.digits, "999999", 7); /* only the name and schedule rules apply */
        rule = codes_check(&code, NULL, 0);
        explicit_bzero(&code, sizeof code);
        if (rule != CODE_RULE_OK)
                return fail(c->error, -EINVAL, "%s: %s (rule %s)", path, code_rule_message(rule),
                            code_rule_to_string(rule));

        for (size_t i = 0; i < index; i++) {
                json_object *on;
                if (json_object_object_get_ex(json_object_array_get_idx(codes, i), "name", &on) &&
                    json_object_object_get_ex(o, "name", &v) &&
                    streq(json_object_get_string(on), json_object_get_string(v)))
                        return fail(c->error, -EINVAL, "%s.name: the user has two codes named \"%s\"", path,
                                    json_object_get_string(v));
        }

        json_object_object_get_ex(o, "locks", &v);
        if (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > LOCKS_MAX)
                return fail(c->error, -EINVAL, "%s.locks: must be an array of at most %d lock names", path,
                            LOCKS_MAX);
        for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);

                if (!json_object_is_type(e, json_type_string) ||
                    !doc_has_lock(locks, json_object_get_string(e)))
                        return fail(c->error, -EINVAL,
                                    "%s.locks[%zu]: not the name of a lock in this document", path, i);
                for (size_t j = 0; j < i; j++)
                        if (streq(json_object_get_string(json_object_array_get_idx(v, j)),
                                  json_object_get_string(e)))
                                return fail(c->error, -EINVAL, "%s.locks[%zu]: named twice", path, i);
        }
        return 0;
}

static bool code_on_lock(json_object *code, const char *lock)
{
        json_object *v;

        if (!json_object_object_get_ex(code, "locks", &v))
                return false;
        for (size_t i = 0; i < json_object_array_length(v); i++)
                if (streq(json_object_get_string(json_object_array_get_idx(v, i)), lock))
                        return true;
        return false;
}

/* The code rule "unique per lock" across every user of the document. */
static int check_unique_digits(Ctx *c, json_object *users)
{
        size_t n_users = json_object_array_length(users);

        for (size_t u = 0; u < n_users; u++) {
                json_object *codes;

                json_object_object_get_ex(json_object_array_get_idx(users, u), "codes", &codes);
                for (size_t k = 0; codes && k < json_object_array_length(codes); k++) {
                        json_object *a = json_object_array_get_idx(codes, k), *da, *la;

                        if (!json_object_object_get_ex(a, "digits", &da) ||
                            !json_object_object_get_ex(a, "locks", &la))
                                continue;
                        for (size_t u2 = u; u2 < n_users; u2++) {
                                json_object *codes2;

                                json_object_object_get_ex(json_object_array_get_idx(users, u2), "codes",
                                                          &codes2);
                                for (size_t k2 = u2 == u ? k + 1 : 0;
                                     codes2 && k2 < json_object_array_length(codes2); k2++) {
                                        json_object *b = json_object_array_get_idx(codes2, k2), *db;

                                        if (!json_object_object_get_ex(b, "digits", &db) ||
                                            !streq(json_object_get_string(da), json_object_get_string(db)))
                                                continue;
                                        for (size_t l = 0; l < json_object_array_length(la); l++)
                                                if (code_on_lock(b,
                                                                 json_object_get_string(
                                                                                 json_object_array_get_idx(
                                                                                                 la, l))))
                                                        return fail(c->error, -EINVAL,
                                                                    "users[%zu].codes[%zu]: %s (rule %s)",
                                                                    u2, k2,
                                                                    code_rule_message(CODE_RULE_DUPLICATE),
                                                                    code_rule_to_string(
                                                                                    CODE_RULE_DUPLICATE));
                                }
                        }
                }
        }
        return 0;
}

static int check_user(Ctx *c, const char *path, json_object *o, json_object *locks, json_object *users,
                      size_t index, size_t *total_codes)
{
        static const char *const keys[] = { "name", "codes", NULL };
        static const char *const required[] = { "name", NULL };
        const char *name;
        json_object *codes;
        char p[96];
        size_t n;
        int r;

        if ((r = check_keys(c, path, o, keys, required)) < 0 ||
            (r = get_string(c, path, o, "name", 64, true, &name)) < 0)
                return r;
        if (isspace((unsigned char) name[0]) || isspace((unsigned char) name[strlen(name) - 1]))
                return fail(c->error, -EINVAL, "%s.name: must not start or end with a space", path);
        for (size_t i = 0; i < index; i++) {
                json_object *on;
                if (json_object_object_get_ex(json_object_array_get_idx(users, i), "name", &on) &&
                    streq(json_object_get_string(on), name))
                        return fail(c->error, -EINVAL, "%s.name: \"%s\" appears twice", path, name);
        }
        if (!json_object_object_get_ex(o, "codes", &codes))
                return 0;
        if (!json_object_is_type(codes, json_type_array))
                return fail(c->error, -EINVAL, "%s.codes: must be an array", path);
        n = json_object_array_length(codes);
        if (n > CODES_PER_USER || *total_codes + n > CODES_MAX)
                return fail(c->error, -EINVAL, "%s.codes: too many codes", path);
        *total_codes += n;
        for (size_t i = 0; i < n; i++) {
                snprintf(p, sizeof p, "%s.codes[%zu]", path, i);
                r = check_code(c, p, json_object_array_get_idx(codes, i), locks, codes, i);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int check_document(json_object *doc, bool encrypted, bool *ret_secrets, char **ret_error)
{
        static const char *const keys[] = { "format", "version", "created_usec", "secrets", "locks",
                                            "users",  NULL };
        static const char *const required[] = { "format", "version", "locks", "users", NULL };
        Ctx c = { .error = ret_error };
        json_object *locks, *users;
        const char *format;
        size_t total = 0;
        int64_t x;
        int r;

        if (!json_object_is_type(doc, json_type_object))
                return fail(ret_error, -EINVAL, "document: must be a JSON object");
        r = get_string(&c, "document", doc, "format", 64, true, &format);
        if (r < 0)
                return r;
        if (!streq(format, BACKUP_FORMAT))
                return fail(ret_error, -EINVAL, "document.format: not a lockhub backup (\"%s\")", format);
        r = get_int(&c, "document", doc, "version", 1, INT32_MAX, 0, &x);
        if (r < 0)
                return r;
        if (x > BACKUP_VERSION)
                return fail(ret_error, -EPROTONOSUPPORT,
                            "document.version: written by a newer lockhub (version %" PRIi64
                            "); this one reads version %d",
                            x, BACKUP_VERSION);
        if ((r = check_keys(&c, "document", doc, keys, required)) < 0 ||
            (r = get_int(&c, "document", doc, "created_usec", 0, INT64_MAX, 0, &x)) < 0 ||
            (r = get_bool(&c, "document", doc, "secrets", false, &c.secrets)) < 0)
                return r;
        if (c.secrets && !encrypted)
                return fail(ret_error, -EINVAL,
                            "document.secrets: a document with secrets must be encrypted");
        if (!c.secrets && encrypted)
                return fail(ret_error, -EINVAL,
                            "document.secrets: an encrypted document must say it holds secrets");

        json_object_object_get_ex(doc, "locks", &locks);
        json_object_object_get_ex(doc, "users", &users);
        if (!json_object_is_type(locks, json_type_array) || json_object_array_length(locks) > LOCKS_MAX)
                return fail(ret_error, -EINVAL, "document.locks: must be an array of at most %d locks",
                            LOCKS_MAX);
        if (!json_object_is_type(users, json_type_array) || json_object_array_length(users) > USERS_MAX)
                return fail(ret_error, -EINVAL, "document.users: must be an array of at most %d users",
                            USERS_MAX);
        for (size_t i = 0; i < json_object_array_length(locks); i++) {
                char p[32];
                snprintf(p, sizeof p, "locks[%zu]", i);
                if ((r = check_lock(&c, p, json_object_array_get_idx(locks, i), locks, i)) < 0)
                        return r;
        }
        for (size_t i = 0; i < json_object_array_length(users); i++) {
                char p[32];
                snprintf(p, sizeof p, "users[%zu]", i);
                if ((r = check_user(&c, p, json_object_array_get_idx(users, i), locks, users, i, &total)) <
                    0)
                        return r;
        }
        r = check_unique_digits(&c, users);
        if (r < 0)
                return r;
        *ret_secrets = c.secrets;
        return 0;
}

/* ---- JSON text ---- */

static int parse_json(const char *text, size_t len, json_object **ret, char **ret_error)
{
        json_tokener *tok;
        enum json_tokener_error e;
        json_object *o;
        size_t used;
        char *buf;

        if (len == 0)
                return fail(ret_error, -EINVAL, "the file is empty");
        if (memchr(text, 0, len))
                return fail(ret_error, -EINVAL, "not a JSON document (contains a NUL byte)");
        buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;
        memcpy(buf, text, len);
        buf[len] = '\0';
        tok = json_tokener_new_ex(BACKUP_DEPTH_MAX);
        if (!tok) {
                free(buf);
                return -ENOMEM;
        }
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, buf, (int) len + 1);
        e = json_tokener_get_error(tok);
        used = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (e != json_tokener_success) {
                json_object_put(o);
                free(buf);
                if (e == json_tokener_error_depth)
                        return fail(ret_error, -EINVAL, "invalid JSON: nested deeper than %d levels",
                                    BACKUP_DEPTH_MAX);
                return fail(ret_error, -EINVAL, "invalid JSON at byte %zu: %s", used,
                            json_tokener_error_desc(e));
        }
        for (size_t i = used; i < len; i++)
                if (!isspace((unsigned char) buf[i])) {
                        json_object_put(o);
                        free(buf);
                        return fail(ret_error, -EINVAL, "invalid JSON: data after the document at byte %zu",
                                    i);
                }
        free(buf);
        *ret = o;
        return 0;
}

/* ---- encryption ---- */

static void put_u64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

bool backup_is_encrypted(const void *data, size_t size)
{
        return size >= strlen(BACKUP_MAGIC) && memcmp(data, BACKUP_MAGIC, strlen(BACKUP_MAGIC)) == 0;
}

static int derive_key(const char *passphrase, const uint8_t *salt, uint64_t ops, uint64_t mem,
                      uint8_t key[KEY_SIZE])
{
        if (crypto_pwhash(key, KEY_SIZE, passphrase, strlen(passphrase), salt, (unsigned long long) ops,
                          (size_t) mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
                return -ENOMEM;
        return 0;
}

static int encrypt_doc(const char *text, size_t len, const BackupOptions *o, uint8_t **ret, size_t *ret_size)
{
        uint64_t ops = o->opslimit ?: crypto_pwhash_OPSLIMIT_INTERACTIVE;
        uint64_t mem = o->memlimit ?: crypto_pwhash_MEMLIMIT_INTERACTIVE;
        uint8_t key[KEY_SIZE], *out;
        unsigned long long clen = 0;
        size_t size = BACKUP_HEADER_SIZE + len + crypto_aead_xchacha20poly1305_ietf_ABYTES;
        int r;

        out = malloc(size);
        if (!out)
                return -ENOMEM;
        memcpy(out, BACKUP_MAGIC, 8);
        put_u64(out + 8, ops);
        put_u64(out + 16, mem);
        randombytes_buf(out + 24, SALT_SIZE);
        randombytes_buf(out + 24 + SALT_SIZE, NONCE_SIZE);
        r = derive_key(o->passphrase, out + 24, ops, mem, key);
        if (r < 0) {
                free(out);
                return r;
        }
        crypto_aead_xchacha20poly1305_ietf_encrypt(out + BACKUP_HEADER_SIZE, &clen, (const uint8_t *) text,
                                                   len, out, BACKUP_HEADER_SIZE, NULL, out + 24 + SALT_SIZE,
                                                   key);
        sodium_memzero(key, sizeof key);
        *ret = out;
        *ret_size = BACKUP_HEADER_SIZE + (size_t) clen;
        return 0;
}

static int decrypt_doc(const uint8_t *data, size_t size, const char *passphrase, char **ret, size_t *ret_len,
                       char **ret_error)
{
        uint64_t ops, mem;
        uint8_t key[KEY_SIZE];
        unsigned long long mlen = 0;
        char *plain;
        int r;

        if (size < BACKUP_HEADER_SIZE + crypto_aead_xchacha20poly1305_ietf_ABYTES)
                return fail(ret_error, -EINVAL, "encrypted backup is truncated");
        if (!passphrase)
                return fail(ret_error, -ENOKEY, "the backup is encrypted: a passphrase is needed");
        ops = get_u64(data + 8);
        mem = get_u64(data + 16);
        if (ops < crypto_pwhash_OPSLIMIT_MIN || ops > OPSLIMIT_MAX || mem < crypto_pwhash_MEMLIMIT_MIN ||
            mem > MEMLIMIT_MAX)
                return fail(ret_error, -EINVAL, "encrypted backup: key derivation parameters out of range");
        r = derive_key(passphrase, data + 24, ops, mem, key);
        if (r < 0)
                return fail(ret_error, r, "not enough memory to derive the key");
        plain = malloc(size - BACKUP_HEADER_SIZE);
        if (!plain) {
                sodium_memzero(key, sizeof key);
                return -ENOMEM;
        }
        r = crypto_aead_xchacha20poly1305_ietf_decrypt((uint8_t *) plain, &mlen, NULL,
                                                       data + BACKUP_HEADER_SIZE, size - BACKUP_HEADER_SIZE,
                                                       data, BACKUP_HEADER_SIZE, data + 24 + SALT_SIZE, key);
        sodium_memzero(key, sizeof key);
        if (r != 0) {
                free(plain);
                return fail(ret_error, -EBADMSG,
                            "cannot decrypt the backup: wrong passphrase, or the file was changed");
        }
        *ret = plain;
        *ret_len = (size_t) mlen;
        return 0;
}

/* ---- parse ---- */

int backup_parse(const void *data, size_t size, const char *passphrase, Backup **ret, char **ret_error)
{
        _cleanup_free_ char *plain = NULL;
        json_object *doc = NULL;
        size_t plain_len = 0;
        bool encrypted, secrets = false;
        Backup *b;
        int r;

        if (sodium_init() < 0)
                return -EIO;
        if (size > BACKUP_SIZE_MAX)
                return fail(ret_error, -EFBIG, "the backup is larger than %zu bytes", BACKUP_SIZE_MAX);
        encrypted = backup_is_encrypted(data, size);
        if (encrypted) {
                r = decrypt_doc(data, size, passphrase, &plain, &plain_len, ret_error);
                if (r < 0)
                        return r;
                r = parse_json(plain, plain_len, &doc, ret_error);
                sodium_memzero(plain, plain_len);
        } else
                r = parse_json(data, size, &doc, ret_error);
        if (r < 0)
                return r;
        r = check_document(doc, encrypted, &secrets, ret_error);
        if (r < 0) {
                json_object_put(doc);
                return r;
        }
        b = calloc(1, sizeof *b);
        if (!b) {
                json_object_put(doc);
                return -ENOMEM;
        }
        *b = (Backup){ .doc = doc, .encrypted = encrypted, .secrets = secrets };
        *ret = b;
        return 0;
}

Backup *backup_free(Backup *b)
{
        if (!b)
                return NULL;
        json_object_put(b->doc);
        free(b);
        return NULL;
}

static json_object *member(json_object *o, const char *key)
{
        json_object *v = NULL;

        json_object_object_get_ex(o, key, &v);
        return v;
}

bool backup_has_secrets(const Backup *b)
{
        return b->secrets;
}

size_t backup_n_locks(const Backup *b)
{
        return json_object_array_length(member(b->doc, "locks"));
}

size_t backup_n_users(const Backup *b)
{
        return json_object_array_length(member(b->doc, "users"));
}

size_t backup_n_codes(const Backup *b)
{
        json_object *users = member(b->doc, "users");
        size_t n = 0;

        for (size_t i = 0; i < json_object_array_length(users); i++) {
                json_object *codes = member(json_object_array_get_idx(users, i), "codes");
                n += codes ? json_object_array_length(codes) : 0;
        }
        return n;
}

/* ---- create ---- */

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
        for (size_t i = 0; i < n; i++)
                snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int hex_decode(const char *s, uint8_t *out, size_t max, size_t *ret_n)
{
        size_t n = strlen(s) / 2;

        if (n > max)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                unsigned v;
                if (sscanf(s + 2 * i, "%2x", &v) != 1)
                        return -EINVAL;
                out[i] = (uint8_t) v;
        }
        *ret_n = n;
        return 0;
}

static json_object *snapshot_json(Store *s, const char *address, const char *kind)
{
        _cleanup_free_ char *text = NULL;

        if (store_snapshot_latest(s, address, kind, &text) < 0 || !text)
                return NULL;
        return json_tokener_parse(text);
}

static json_object *lock_json(Store *s, const struct store_lock *l, bool secrets)
{
        json_object *o = json_object_new_object(), *v;

        if (!o)
                return NULL;
        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "address", json_object_new_string(l->address));
        if (l->model)
                json_object_object_add(o, "model", json_object_new_string(l->model));
        if (l->firmware)
                json_object_object_add(o, "firmware", json_object_new_string(l->firmware));
        if ((v = snapshot_json(s, l->address, "config")))
                json_object_object_add(o, "config", v);
        if ((v = snapshot_json(s, l->address, "advanced-config")))
                json_object_object_add(o, "advanced_config", v);
        if ((v = snapshot_json(s, l->address, "time-controls"))) {
                if (!json_object_is_type(v, json_type_array)) {
                        json_object *a = json_object_new_array();
                        json_object_array_add(a, v);
                        v = a;
                }
                json_object_object_add(o, "time_controls", v);
        }
        if (secrets && l->shared_key_sealed_size == 32 && l->auth_id >= 0) {
                json_object *p = json_object_new_object();
                char hex[2 * 32 + 1];

                json_object_object_add(p, "auth_id", json_object_new_int64(l->auth_id));
                if (l->app_id >= 0)
                        json_object_object_add(p, "app_id", json_object_new_int64(l->app_id));
                if (l->id_type >= 0)
                        json_object_object_add(p, "id_type", json_object_new_int(l->id_type));
                json_object_object_add(p, "ultra", json_object_new_boolean(l->ultra));
                hex_encode(l->shared_key_sealed, 32, hex);
                json_object_object_add(p, "shared_key", json_object_new_string(hex));
                if (l->security_pin_sealed_size > 0 && l->security_pin_sealed_size <= 8) {
                        hex_encode(l->security_pin_sealed, l->security_pin_sealed_size, hex);
                        json_object_object_add(p, "security_pin", json_object_new_string(hex));
                }
                sodium_memzero(hex, sizeof hex);
                json_object_object_add(o, "pairing", p);
        }
        return o;
}

static bool id_selected(int64_t id, const int64_t *ids, size_t n)
{
        if (n == 0)
                return true;
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

static const char *lock_name_of(const struct store_lock *locks, size_t n, int64_t id)
{
        for (size_t i = 0; i < n; i++)
                if (locks[i].id == id)
                        return locks[i].name;
        return NULL;
}

int backup_create(Store *s, const int64_t *lock_ids, size_t n, const BackupOptions *o, uint64_t now_usec,
                  uint8_t **ret, size_t *ret_size, char **ret_error)
{
        struct store_lock *locks = NULL;
        struct store_user *users = NULL;
        struct store_assignment *asg = NULL;
        size_t n_locks = 0, n_users = 0, n_asg = 0;
        json_object *doc = NULL, *jl, *ju;
        const char *text;
        size_t len;
        int r;

        if (sodium_init() < 0)
                return -EIO;
        if (o->include_secrets && (!o->passphrase || !o->passphrase[0]))
                return fail(ret_error, -EINVAL, "a backup with secrets needs a passphrase");
        if ((r = store_lock_list(s, &locks, &n_locks)) < 0 ||
            (r = store_user_list(s, &users, &n_users)) < 0 ||
            (r = store_assignment_list(s, 0, &asg, &n_asg)) < 0)
                goto finish;
        for (size_t i = 0; i < n; i++)
                if (!lock_name_of(locks, n_locks, lock_ids[i])) {
                        r = fail(ret_error, -ENOENT, "no lock with id %" PRIi64, lock_ids[i]);
                        goto finish;
                }

        doc = json_object_new_object();
        jl = json_object_new_array();
        ju = json_object_new_array();
        json_object_object_add(doc, "format", json_object_new_string(BACKUP_FORMAT));
        json_object_object_add(doc, "version", json_object_new_int(BACKUP_VERSION));
        json_object_object_add(doc, "created_usec", json_object_new_int64((int64_t) now_usec));
        json_object_object_add(doc, "secrets", json_object_new_boolean(o->include_secrets));
        json_object_object_add(doc, "locks", jl);
        json_object_object_add(doc, "users", ju);

        for (size_t i = 0; i < n_locks; i++) {
                /* store_lock_list() leaves secrets out of nothing: get the row for the keys */
                struct store_lock full;

                if (!id_selected(locks[i].id, lock_ids, n))
                        continue;
                store_lock_init(&full);
                if (o->include_secrets && store_lock_get(s, locks[i].id, &full) >= 0) {
                        json_object_array_add(jl, lock_json(s, &full, true));
                        store_lock_done(&full);
                } else
                        json_object_array_add(jl, lock_json(s, &locks[i], false));
        }

        for (size_t u = 0; u < n_users; u++) {
                struct store_credential *creds = NULL;
                size_t n_creds = 0;
                json_object *juser, *jcodes;

                if (codes_user_is_withdrawn(s, users[u].id))
                        continue;
                r = store_credential_list(s, users[u].id, &creds, &n_creds);
                if (r < 0)
                        goto finish;
                juser = json_object_new_object();
                jcodes = json_object_new_array();
                json_object_object_add(juser, "name", json_object_new_string(users[u].name));
                for (size_t k = 0; k < n_creds; k++) {
                        json_object *jc, *jlocks;
                        LockCode c;

                        if (codes_code_is_withdrawn(s, creds[k].id) ||
                            codes_code_from_store(&creds[k], &c) < 0)
                                continue;
                        jlocks = json_object_new_array();
                        for (size_t a = 0; a < n_asg; a++)
                                if (asg[a].credential_id == creds[k].id &&
                                    streq(asg[a].desired, "present") &&
                                    id_selected(asg[a].lock_id, lock_ids, n))
                                        json_object_array_add(jlocks, json_object_new_string(lock_name_of(
                                                                                      locks, n_locks,
                                                                                      asg[a].lock_id)));
                        if (n > 0 && json_object_array_length(jlocks) == 0) {
                                json_object_put(jlocks); /* not on any of the locks backed up */
                                explicit_bzero(&c, sizeof c);
                                continue;
                        }
                        jc = json_object_new_object();
                        json_object_object_add(jc, "name", json_object_new_string(c.name));
                        json_object_object_add(jc, "enabled", json_object_new_boolean(c.enabled));
                        json_object_object_add(jc, "valid_from_usec",
                                               json_object_new_int64((int64_t) c.valid_from_usec));
                        json_object_object_add(jc, "valid_until_usec",
                                               json_object_new_int64((int64_t) c.valid_until_usec));
                        json_object_object_add(jc, "weekdays", json_object_new_int((int) c.weekdays));
                        json_object_object_add(jc, "time_from_min", json_object_new_int(c.time_from_min));
                        json_object_object_add(jc, "time_until_min", json_object_new_int(c.time_until_min));
                        json_object_object_add(jc, "locks", jlocks);
                        if (o->include_secrets)
                                json_object_object_add(jc, "digits", json_object_new_string(c.digits));
                        explicit_bzero(&c, sizeof c);
                        json_object_array_add(jcodes, jc);
                }
                store_credential_array_free(creds, n_creds);
                if (n > 0 && json_object_array_length(jcodes) == 0) {
                        json_object_put(jcodes);
                        json_object_put(juser);
                        continue;
                }
                json_object_object_add(juser, "codes", jcodes);
                json_object_array_add(ju, juser);
        }

        text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE);
        len = strlen(text);
        if (o->include_secrets)
                r = encrypt_doc(text, len, o, ret, ret_size);
        else {
                *ret = (uint8_t *) strndup(text, len);
                *ret_size = len;
                r = *ret ? 0 : -ENOMEM;
        }
        sodium_memzero((void *) text, len); /* json-c's buffer held the digits */
finish:
        json_object_put(doc);
        store_lock_array_free(locks, n_locks);
        store_user_array_free(users, n_users);
        store_assignment_array_free(asg, n_asg);
        return r;
}

/* ---- restore ---- */

void backup_restore_result_done(BackupRestoreResult *r)
{
        if (!r)
                return;
        free(r->lock_ids);
        *r = (BackupRestoreResult){};
}

static int result_add_lock(BackupRestoreResult *res, int64_t id)
{
        int64_t *a;

        for (size_t i = 0; i < res->n_lock_ids; i++)
                if (res->lock_ids[i] == id)
                        return 0;
        a = reallocarray(res->lock_ids, res->n_lock_ids + 1, sizeof *a);
        if (!a)
                return -ENOMEM;
        res->lock_ids = a;
        res->lock_ids[res->n_lock_ids++] = id;
        return 0;
}

typedef struct Target {
        const char *doc_name; /* the lock's name in the document */
        int64_t lock_id;      /* the stored lock it is restored onto; 0: to be added */
        json_object *jlock;
} Target;

static int64_t target_of(const Target *t, size_t n, const char *doc_name)
{
        for (size_t i = 0; i < n; i++)
                if (streq(t[i].doc_name, doc_name))
                        return t[i].lock_id;
        return 0;
}

static int add_lock_from_doc(Store *s, json_object *jl, uint64_t now_usec, int64_t *ret_id)
{
        json_object *p = member(jl, "pairing");
        struct store_lock l;
        uint8_t key[32], pin[8];
        size_t nk = 0, np = 0;
        char addr[18];
        int64_t id;
        int r;

        store_lock_init(&l);
        l.name = (char *) json_object_get_string(member(jl, "name"));
        r = lock_address_normalize(json_object_get_string(member(jl, "address")), addr);
        if (r < 0)
                return r;
        l.address = addr;
        l.model = (char *) (member(jl, "model") ? json_object_get_string(member(jl, "model")) : NULL);
        l.firmware = (char *) (member(jl, "firmware") ? json_object_get_string(member(jl, "firmware"))
                                                      : NULL);
        l.auth_id = json_object_get_int64(member(p, "auth_id"));
        l.app_id = member(p, "app_id") ? json_object_get_int64(member(p, "app_id")) : -1;
        l.id_type = member(p, "id_type") ? json_object_get_int(member(p, "id_type")) : 1;
        l.ultra = member(p, "ultra") && json_object_get_boolean(member(p, "ultra"));
        r = hex_decode(json_object_get_string(member(p, "shared_key")), key, sizeof key, &nk);
        if (r >= 0 && member(p, "security_pin"))
                r = hex_decode(json_object_get_string(member(p, "security_pin")), pin, sizeof pin, &np);
        if (r < 0)
                return r;
        l.shared_key_sealed = key;
        l.shared_key_sealed_size = nk;
        l.security_pin_sealed = np > 0 ? pin : NULL;
        l.security_pin_sealed_size = np;
        l.paired_usec = now_usec;
        id = store_lock_add(s, &l);
        sodium_memzero(key, sizeof key);
        sodium_memzero(pin, sizeof pin);
        if (id < 0)
                return (int) id;
        *ret_id = id;
        return 0;
}

/* The user's code named name: 0 and *ret_id, or -ENOENT. */
static int find_code(Store *s, int64_t user_id, const char *name, int64_t *ret_id)
{
        struct store_credential *a = NULL;
        size_t n = 0;
        int r;

        r = store_credential_list(s, user_id, &a, &n);
        if (r < 0)
                return r;
        r = -ENOENT;
        for (size_t i = 0; i < n; i++)
                if (streq(a[i].name, name) && !codes_code_is_withdrawn(s, a[i].id)) {
                        *ret_id = a[i].id;
                        r = 0;
                        break;
                }
        store_credential_array_free(a, n);
        return r;
}

static int restore_code(Store *s, const Backup *b, int64_t user_id, json_object *jc, const Target *t,
                        size_t n_t, BackupRestoreResult *res, char **ret_error, const char *path)
{
        json_object *jlocks = member(jc, "locks");
        int64_t cred_id = 0;
        LockCode want;
        CodeRule rule = CODE_RULE_OK;
        int r;

        code_from_json(jc, &want);
        r = find_code(s, user_id, want.name, &cred_id);
        if (r == -ENOENT) {
                if (!b->secrets) {
                        res->codes_skipped++;
                        return 0;
                }
                r = codes_code_add_in_transaction(s, user_id, &want, NULL, 0, &rule, &cred_id);
                if (r >= 0)
                        res->codes_added++;
        } else if (r >= 0) {
                struct store_credential cred;
                LockCode have;

                r = store_credential_get(s, cred_id, &cred);
                if (r >= 0) {
                        r = codes_code_from_store(&cred, &have);
                        store_credential_done(&cred);
                }
                if (r >= 0 && (!lock_code_equal(&have, &want) ||
                               (want.digits[0] && !streq(have.digits, want.digits)))) {
                        r = codes_code_update(s, cred_id, &want, &rule);
                        if (r >= 0)
                                res->codes_updated++;
                }
                explicit_bzero(&have, sizeof have);
        }
        explicit_bzero(&want, sizeof want);
        if (r < 0)
                return rule != CODE_RULE_OK ? fail(ret_error, r, "%s: %s (rule %s)", path,
                                                   code_rule_message(rule), code_rule_to_string(rule))
                                            : fail(ret_error, r, "%s: cannot store the code: %s", path,
                                                   strerror(-r));

        for (size_t i = 0; i < json_object_array_length(jlocks); i++) {
                int64_t lock_id = target_of(t, n_t,
                                            json_object_get_string(json_object_array_get_idx(jlocks, i)));

                struct store_assignment have;

                if (lock_id <= 0)
                        continue; /* a lock of the document that is not restored now */
                if (store_assignment_get(s, lock_id, cred_id, &have) >= 0) {
                        bool present = streq(have.desired, "present");

                        store_assignment_done(&have);
                        if (present)
                                continue; /* assigned already: keep its sync state */
                }
                r = codes_code_assign(s, cred_id, lock_id, true, &rule);
                if (r < 0)
                        return rule != CODE_RULE_OK
                                               ? fail(ret_error, r, "%s: on lock %s: %s (rule %s)", path,
                                                      json_object_get_string(
                                                                      json_object_array_get_idx(jlocks, i)),
                                                      code_rule_message(rule), code_rule_to_string(rule))
                                               : fail(ret_error, r, "%s: cannot assign the code: %s", path,
                                                      strerror(-r));
                res->assignments++;
                r = result_add_lock(res, lock_id);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int restore_all(Store *s, const Backup *b, Target *t, size_t n_t, uint64_t now_usec,
                       BackupRestoreResult *res, char **ret_error)
{
        static const struct {
                const char *key, *kind;
        } snaps[] = { { "config", "config" },
                      { "advanced_config", "advanced-config" },
                      { "time_controls", "time-controls" } };
        json_object *users = member(b->doc, "users");
        int r;

        for (size_t i = 0; i < n_t; i++) {
                if (t[i].lock_id == 0) {
                        r = add_lock_from_doc(s, t[i].jlock, now_usec, &t[i].lock_id);
                        if (r < 0)
                                return fail(ret_error, r, "cannot add lock %s: %s", t[i].doc_name,
                                            strerror(-r));
                        res->locks_added++;
                }
                for (size_t k = 0; k < ELEMENTSOF(snaps); k++) {
                        json_object *v = member(t[i].jlock, snaps[k].key);
                        int64_t id;

                        if (!v || json_object_is_type(v, json_type_null))
                                continue;
                        id = store_snapshot_add(s, t[i].lock_id, snaps[k].kind, "manual", -1, now_usec,
                                                json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
                        if (id < 0)
                                return fail(ret_error, (int) id, "cannot store the %s of %s: %s",
                                            snaps[k].kind, t[i].doc_name, strerror((int) -id));
                        res->snapshots++;
                }
                r = result_add_lock(res, t[i].lock_id);
                if (r < 0)
                        return r;
        }

        for (size_t u = 0; u < json_object_array_length(users); u++) {
                json_object *ju = json_object_array_get_idx(users, u), *codes = member(ju, "codes");
                const char *name = json_object_get_string(member(ju, "name"));
                struct store_user su = {};
                int64_t user_id;

                r = store_user_get_by_name(s, name, &su);
                user_id = su.id;
                store_user_done(&su);
                if (r == -ENOENT) {
                        r = codes_user_add(s, name, &user_id);
                        if (r >= 0)
                                res->users_added++;
                }
                if (r < 0)
                        return fail(ret_error, r, "users[%zu]: cannot store user \"%s\": %s", u, name,
                                    strerror(-r));
                for (size_t k = 0; codes && k < json_object_array_length(codes); k++) {
                        char path[64];

                        snprintf(path, sizeof path, "users[%zu].codes[%zu]", u, k);
                        r = restore_code(s, b, user_id, json_object_array_get_idx(codes, k), t, n_t, res,
                                         ret_error, path);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int backup_restore(Store *s, const Backup *b, const char *from_lock, const char *to_lock, uint64_t now_usec,
                   BackupRestoreResult *ret, char **ret_error)
{
        json_object *locks = member(b->doc, "locks");
        size_t n_locks = json_object_array_length(locks), n_t = 0;
        _cleanup_free_ Target *t = NULL;
        BackupRestoreResult res = {};
        int r;

        t = calloc(n_locks + 1, sizeof *t);
        if (!t)
                return -ENOMEM;

        /* Map the document's locks onto stored locks before anything is written. */
        if (to_lock) {
                struct store_lock target;
                json_object *src = NULL;

                for (size_t i = 0; i < n_locks; i++) {
                        json_object *jl = json_object_array_get_idx(locks, i);
                        if (from_lock ? streq(json_object_get_string(member(jl, "name")), from_lock)
                                      : n_locks == 1)
                                src = jl;
                }
                if (!src && from_lock)
                        return fail(ret_error, -EINVAL, "the backup holds no lock named \"%s\"", from_lock);
                if (!src)
                        return fail(ret_error, -EINVAL,
                                    "the backup holds %zu locks: say which one to restore onto %s (--from)",
                                    n_locks, to_lock);
                store_lock_init(&target);
                r = store_lock_get_by_name(s, to_lock, &target);
                if (r < 0)
                        return fail(ret_error, r, "no paired lock named \"%s\"", to_lock);
                t[n_t++] = (Target){ json_object_get_string(member(src, "name")), target.id, src };
                store_lock_done(&target);
        } else
                for (size_t i = 0; i < n_locks; i++) {
                        json_object *jl = json_object_array_get_idx(locks, i);
                        const char *name = json_object_get_string(member(jl, "name"));
                        struct store_lock sl;

                        if (from_lock && !streq(name, from_lock))
                                continue;
                        store_lock_init(&sl);
                        r = store_lock_get_by_name(s, name, &sl);
                        if (r == -ENOENT && !member(jl, "pairing"))
                                return fail(ret_error, -ENOENT,
                                            "lock \"%s\" of the backup is not paired with this hub (pair "
                                            "it, or use "
                                            "--to)",
                                            name);
                        if (r < 0 && r != -ENOENT)
                                return fail(ret_error, r, "cannot read lock \"%s\": %s", name, strerror(-r));
                        t[n_t++] = (Target){ name, r >= 0 ? sl.id : 0, jl };
                        store_lock_done(&sl);
                }

        r = store_begin(s);
        if (r < 0)
                return fail(ret_error, r, "cannot start a transaction: %s", strerror(-r));
        r = restore_all(s, b, t, n_t, now_usec, &res, ret_error);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0) {
                store_rollback(s);
                backup_restore_result_done(&res);
                return r;
        }
        *ret = res;
        return 0;
}
