/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Parsing what arrives over MQTT (set commands, bridge requests) and formatting the
 * responses (see lockhub/mqtt-ha.h for the topics and the contract).
 *
 * Everything here handles bytes from the network, so it checks in this order, before
 * json-c sees anything: size, no NUL, UTF-8; then json-c in strict mode with a depth
 * limit; then that nothing but white space follows the value; then the type of every
 * member that is used and that no unknown member is present where the set is closed.
 * A parser either fills its result completely or returns -EINVAL with one message for
 * the sender; it never logs (the caller decides what deserves a log line).
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lockhub/mqtt-ha.h"

static int fail(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int fail(char **ret_error, const char *fmt, ...)
{
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

bool mqtt_ha_utf8_is_valid(const void *s, size_t len)
{
        const unsigned char *p = s;
        size_t i = 0;

        while (i < len) {
                unsigned char c = p[i];
                uint32_t cp;
                size_t n;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xC2 && c <= 0xDF)
                        n = 1, cp = c & 0x1F;
                else if (c >= 0xE0 && c <= 0xEF)
                        n = 2, cp = c & 0x0F;
                else if (c >= 0xF0 && c <= 0xF4)
                        n = 3, cp = c & 0x07;
                else
                        return false; /* continuation byte, overlong lead (C0, C1) or > F4 */
                if (len - i - 1 < n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((p[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3F);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += n + 1;
        }
        return true;
}

char *mqtt_ha_json_to_string(json_object *o)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                          JSON_C_TO_STRING_NOSLASHESCAPE);

        return s ? strdup(s) : NULL;
}

int mqtt_ha_json_parse(const void *payload, size_t len, size_t max_len, json_object **ret, char **ret_error)
{
        _cleanup_free_ char *buf = NULL;
        json_tokener *tok;
        json_object *o;
        enum json_tokener_error e;
        size_t used, trailing;

        if (len > max_len)
                return fail(ret_error, "payload too large (%zu bytes, at most %zu)", len, max_len);
        if (len > 0 && memchr(payload, 0, len))
                return fail(ret_error, "payload contains a NUL byte");
        if (!mqtt_ha_utf8_is_valid(payload, len))
                return fail(ret_error, "payload is not valid UTF-8");

        tok = json_tokener_new_ex(MQTT_HA_JSON_DEPTH_MAX);
        if (!tok)
                return -ENOMEM;
        buf = malloc(len + 1);
        if (!buf) {
                json_tokener_free(tok);
                return -ENOMEM;
        }
        if (len > 0)
                memcpy(buf, payload, len);
        buf[len] = '\0';

        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        /* Including the NUL lets json-c finish a value at the very end (a number). */
        o = json_tokener_parse_ex(tok, buf, (int) len + 1);
        e = json_tokener_get_error(tok);
        used = json_tokener_get_parse_end(tok);
        /* The payload may carry a code or a passphrase: neither our copy nor the
         * tokener's string buffer goes back to the heap with it. */
        if (tok->pb && tok->pb->buf)
                explicit_bzero(tok->pb->buf, (size_t) tok->pb->size);
        json_tokener_free(tok);
        for (trailing = used; trailing < len && isspace((unsigned char) buf[trailing]); trailing++)
                ;
        explicit_bzero(buf, len + 1);

        if (e != json_tokener_success) {
                mqtt_ha_json_put_wipe(o);
                if (e == json_tokener_error_depth)
                        return fail(ret_error, "invalid JSON: nested deeper than %d levels",
                                    MQTT_HA_JSON_DEPTH_MAX);
                if (e == json_tokener_continue)
                        return fail(ret_error, "invalid JSON: unexpected end of payload");
                return fail(ret_error, "invalid JSON at byte %zu: %s", used, json_tokener_error_desc(e));
        }
        if (trailing < len) {
                mqtt_ha_json_put_wipe(o);
                return fail(ret_error, "invalid JSON: unexpected data after the value at byte %zu",
                            trailing);
        }
        *ret = o;
        return 0;
}

/* The names under which a secret travels: unlock and keypad codes, passphrases, PINs,
 * and the pairing secrets of a backup document (backup.c). */
static const char *const secret_keys[] = {
        "code", "digits", "passphrase", "pin", "unlock_code", "shared_key", "security_pin", "password", NULL,
};

static bool key_is_secret(const char *key)
{
        for (size_t i = 0; secret_keys[i]; i++)
                if (streq(key, secret_keys[i]))
                        return true;
        return false;
}

/* A value under a secret name, whatever its type: a code sent as a number is a secret
 * too. A double keeps the text it was parsed from as its userdata (json-c). */
static void wipe_value(json_object *o)
{
        char *text;

        switch (json_object_get_type(o)) {
        case json_type_string:
                explicit_bzero((char *) json_object_get_string(o), (size_t) json_object_get_string_len(o));
                return;
        case json_type_int:
                (void) json_object_set_int64(o, 0);
                return;
        case json_type_double:
                text = json_object_get_userdata(o);
                if (text)
                        explicit_bzero(text, strlen(text));
                (void) json_object_set_double(o, 0);
                return;
        case json_type_null:
        case json_type_boolean:
        case json_type_object:
        case json_type_array:
                return;
        }
}

/* secret: o is (inside) the value of a secret name, so everything in it is wiped. */
static void wipe_secrets(json_object *o, bool secret, unsigned depth)
{
        if (!o || depth > MQTT_HA_JSON_DEPTH_MAX + 1)
                return;
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        wipe_secrets(json_object_array_get_idx(o, i), secret, depth + 1);
                return;
        }
        if (!json_object_is_type(o, json_type_object)) {
                if (secret)
                        wipe_value(o);
                return;
        }
        json_object_object_foreach (o, key, val)
                wipe_secrets(val, secret || key_is_secret(key), depth + 1);
}

void mqtt_ha_json_wipe_secrets(json_object *o)
{
        wipe_secrets(o, false, 0);
}

void mqtt_ha_json_wipe(json_object *o)
{
        wipe_secrets(o, true, 0);
}

static bool has_secrets(json_object *o, unsigned depth)
{
        if (!o || depth > MQTT_HA_JSON_DEPTH_MAX + 1)
                return false;
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (has_secrets(json_object_array_get_idx(o, i), depth + 1))
                                return true;
                return false;
        }
        if (!json_object_is_type(o, json_type_object))
                return false;
        json_object_object_foreach (o, key, val)
                if (key_is_secret(key) || has_secrets(val, depth + 1))
                        return true;
        return false;
}

bool mqtt_ha_json_has_secrets(json_object *o)
{
        return has_secrets(o, 0);
}

void mqtt_ha_json_put_wipe(json_object *o)
{
        mqtt_ha_json_wipe_secrets(o);
        json_object_put(o);
}

/* A JSON string without embedded NULs, 1..max bytes. */
static int get_string(json_object *v, const char *key, size_t max_len, const char **ret, char **ret_error)
{
        size_t n;

        if (!json_object_is_type(v, json_type_string))
                return fail(ret_error, "'%s' must be a string", key);
        n = (size_t) json_object_get_string_len(v);
        if (n == 0)
                return fail(ret_error, "'%s' must not be empty", key);
        if (n > max_len)
                return fail(ret_error, "'%s' is too long (at most %zu bytes)", key, max_len);
        if (strlen(json_object_get_string(v)) != n)
                return fail(ret_error, "'%s' contains a NUL character", key);
        *ret = json_object_get_string(v);
        return 0;
}

/* ---- B/<lock>/set ---- */

void mqtt_ha_command_done(MqttHaCommand *c)
{
        if (!c)
                return;
        if (c->code) {
                explicit_bzero(c->code, strlen(c->code));
                free(c->code);
        }
        *c = (MqttHaCommand){ 0 };
}

static int command_word(const char *s, size_t n, LockAction *ret)
{
        static const struct {
                const char *word;
                LockAction action;
        } words[] = {
                { "LOCK", LOCK_ACTION_LOCK },
                { "UNLOCK", LOCK_ACTION_UNLOCK },
                { "OPEN", LOCK_ACTION_UNLATCH },
        };

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strlen(words[i].word) == n && strncasecmp(s, words[i].word, n) == 0) {
                        *ret = words[i].action;
                        return 0;
                }
        return -EINVAL;
}

int mqtt_ha_command_parse(const void *payload, size_t len, MqttHaCommand *ret, char **ret_error)
{
        _cleanup_(mqtt_ha_json_put_wipep) json_object *o = NULL;
        const char *p = payload, *state = NULL, *code = NULL;
        LockAction a;
        size_t b = 0, e = len;
        int r;

        if (len > MQTT_HA_COMMAND_MAX)
                return fail(ret_error, "command too large (%zu bytes, at most %d)", len,
                            MQTT_HA_COMMAND_MAX);
        while (b < e && isspace((unsigned char) p[b]))
                b++;
        while (e > b && isspace((unsigned char) p[e - 1]))
                e--;
        if (b == e)
                return fail(ret_error, "empty command; expected LOCK, UNLOCK or OPEN");

        if (p[b] != '{') {
                if (!mqtt_ha_utf8_is_valid(p + b, e - b) || memchr(p + b, 0, e - b))
                        return fail(ret_error, "command is not valid UTF-8 text");
                if (command_word(p + b, e - b, &a) < 0)
                        /* not echoed: someone may have sent their unlock code as text */
                        return fail(ret_error, "unknown command; expected LOCK, UNLOCK or OPEN");
                *ret = (MqttHaCommand){ .action = a };
                return 0;
        }

        r = mqtt_ha_json_parse(payload, len, MQTT_HA_COMMAND_MAX, &o, ret_error);
        if (r < 0)
                return r;
        if (!json_object_is_type(o, json_type_object))
                return fail(ret_error, "command must be a JSON object");
        json_object_object_foreach (o, key, val) {
                if (streq(key, "state")) {
                        r = get_string(val, "state", 16, &state, ret_error);
                        if (r < 0)
                                return r;
                } else if (streq(key, "code")) {
                        if (json_object_is_type(val, json_type_null))
                                continue; /* Home Assistant sends null when no code was entered */
                        r = get_string(val, "code", MQTT_HA_CODE_MAX, &code, ret_error);
                        if (r < 0)
                                return r;
                } else
                        return fail(ret_error, "unknown key '%.64s' in command; expected 'state' and 'code'",
                                    key);
        }
        if (!state)
                return fail(ret_error, "command has no 'state'; expected LOCK, UNLOCK or OPEN");
        if (command_word(state, strlen(state), &a) < 0)
                return fail(ret_error, "unknown state '%s'; expected LOCK, UNLOCK or OPEN", state);

        *ret = (MqttHaCommand){ .action = a };
        if (code) {
                ret->code = strdup(code);
                if (!ret->code)
                        return -ENOMEM;
        }
        /* json-c's copy of the code is wiped with the object (on every path). */
        return 0;
}

/* ---- B/bridge/request/<op> ---- */

void mqtt_ha_request_done(MqttHaRequest *r)
{
        if (!r)
                return;
        free(r->op);
        mqtt_ha_json_put_wipe(r->params);
        json_object_put(r->transaction);
        *r = (MqttHaRequest){ 0 };
}

bool mqtt_ha_op_is_valid(const char *op)
{
        size_t n = strlen(op);

        if (n < 1 || n > MQTT_HA_OP_MAX || op[0] == '/' || op[n - 1] == '/')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(islower((unsigned char) op[i]) || isdigit((unsigned char) op[i]) || op[i] == '_' ||
                      op[i] == '-' || op[i] == '/') ||
                    (op[i] == '/' && op[i + 1] == '/'))
                        return false;
        return true;
}

int mqtt_ha_request_parse(const char *op, const void *payload, size_t len, MqttHaRequest *ret,
                          char **ret_error)
{
        json_object *o = NULL, *t;
        const char *p = payload;
        size_t i;
        int r;

        *ret = (MqttHaRequest){ 0 };
        if (!op || !mqtt_ha_op_is_valid(op))
                return fail(ret_error, "invalid request topic");
        ret->op = strdup(op);
        if (!ret->op)
                return -ENOMEM;

        for (i = 0; i < len && isspace((unsigned char) p[i]); i++)
                ;
        if (i == len) {
                /* An empty request is an empty object: "health" needs nothing. */
                ret->params = json_object_new_object();
                return ret->params ? 0 : -ENOMEM;
        }

        r = mqtt_ha_json_parse(payload, len, MQTT_HA_REQUEST_MAX, &o, ret_error);
        if (r < 0)
                return r;
        if (!json_object_is_type(o, json_type_object)) {
                mqtt_ha_json_put_wipe(o);
                return fail(ret_error, "request must be a JSON object");
        }
        ret->params = o;

        if (json_object_object_get_ex(o, "transaction", &t)) {
                switch (json_object_get_type(t)) {
                case json_type_string:
                        if ((size_t) json_object_get_string_len(t) > MQTT_HA_TRANSACTION_MAX)
                                return fail(ret_error, "'transaction' is too long (at most %d bytes)",
                                            MQTT_HA_TRANSACTION_MAX);
                        break;
                case json_type_int:
                        break;
                case json_type_null:
                case json_type_boolean:
                case json_type_double:
                case json_type_object:
                case json_type_array:
                        return fail(ret_error, "'transaction' must be a string or an integer");
                }
                ret->transaction = json_object_get(t);
        }
        return 0;
}

int mqtt_ha_request_get_string(const MqttHaRequest *r, const char *key, bool required, size_t max_len,
                               const char **ret, char **ret_error)
{
        json_object *v;

        *ret = NULL;
        if (!r->params || !json_object_object_get_ex(r->params, key, &v)) {
                if (required)
                        return fail(ret_error, "missing '%s'", key);
                return -ENOENT;
        }
        return get_string(v, key, max_len, ret, ret_error);
}

static char *response(const MqttHaRequest *r, bool ok, json_object *data, const char *error)
{
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o) {
                json_object_put(data);
                return NULL;
        }
        json_object_object_add(o, "status", json_object_new_string(ok ? "ok" : "error"));
        json_object_object_add(o, "data", data ?: json_object_new_object());
        if (!ok)
                json_object_object_add(o, "error", json_object_new_string(strempty(error)));
        if (r && r->transaction)
                json_object_object_add(o, "transaction", json_object_get(r->transaction));
        return mqtt_ha_json_to_string(o);
}

char *mqtt_ha_response_ok(const MqttHaRequest *r, json_object *data)
{
        return response(r, true, data, NULL);
}

char *mqtt_ha_response_error(const MqttHaRequest *r, const char *message)
{
        return response(r, false, NULL, message);
}

char *mqtt_ha_response_from(const MqttHaRequest *r, json_object *reply)
{
        _cleanup_(json_object_putp) json_object *o = reply;
        json_object *v;

        if (!o)
                return NULL;
        if (!json_object_object_get_ex(o, "data", &v))
                json_object_object_add(o, "data", json_object_new_object());
        if (r && r->transaction)
                json_object_object_add(o, "transaction", json_object_get(r->transaction));
        return mqtt_ha_json_to_string(o);
}
