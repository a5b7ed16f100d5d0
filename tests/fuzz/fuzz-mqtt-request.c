/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * B/bridge/request/<op>: the input is "<op>\n<payload>" (no newline: all payload,
 * op "health"). Any bytes give a parsed request or -EINVAL with a message; either way
 * the response built from it is valid JSON with the right status and the request's
 * transaction echoed (also a reply built elsewhere, mqtt_ha_response_from()); wiping the
 * request's secrets leaves no byte of a code, digits, passphrase, PIN or key at any depth,
 * as strings or numbers, and changes nothing in a request that has none.
 */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/mqtt-ha.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_response(const char *s, bool ok, const MqttHaRequest *r)
{
        json_object *o, *v;

        if (!s)
                return; /* out of memory */
        o = json_tokener_parse(s);
        assert(o);
        assert(json_object_object_get_ex(o, "status", &v));
        assert(strcmp(json_object_get_string(v), ok ? "ok" : "error") == 0);
        assert(json_object_object_get_ex(o, "data", NULL));
        assert(ok || json_object_object_get_ex(o, "error", NULL));
        if (r->transaction) {
                assert(json_object_object_get_ex(o, "transaction", &v));
                assert(json_object_equal(v, r->transaction));
        } else
                assert(!json_object_object_get_ex(o, "transaction", NULL));
        json_object_put(o);
}

static json_object *reply_error(const char *message)
{
        json_object *o = json_object_new_object();

        if (o) {
                json_object_object_add(o, "status", json_object_new_string("error"));
                json_object_object_add(o, "error", json_object_new_string(message));
                json_object_object_add(o, "rule", json_object_new_string("length"));
        }
        return o;
}

static bool is_secret(const char *key)
{
        static const char *const keys[] = { "code",        "digits",     "passphrase",   "pin",
                                            "unlock_code", "shared_key", "security_pin", "password" };

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (strcmp(key, keys[i]) == 0)
                        return true;
        return false;
}

/* secret: under a secret name, so nothing but zeros. */
static void check_wiped(json_object *o, bool secret)
{
        switch (json_object_get_type(o)) {
        case json_type_object: {
                json_object_object_foreach (o, key, val)
                        check_wiped(val, secret || is_secret(key));
                return;
        }
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        check_wiped(json_object_array_get_idx(o, i), secret);
                return;
        case json_type_string:
                for (int k = 0; secret && k < json_object_get_string_len(o); k++)
                        assert(json_object_get_string(o)[k] == '\0');
                return;
        case json_type_int:
                assert(!secret || json_object_get_int64(o) == 0);
                return;
        case json_type_double:
                assert(!secret || json_object_get_double(o) == 0);
                return;
        case json_type_null:
        case json_type_boolean:
                return;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_free_ char *op = NULL, *err = NULL, *resp = NULL;
        const uint8_t *nl = memchr(data, '\n', size);
        const uint8_t *payload = data;
        MqttHaRequest r = { 0 };
        const char *s;
        int x;

        if (nl) {
                op = strndup((const char *) data, (size_t) (nl - data));
                payload = nl + 1;
        } else
                op = strdup("health");
        if (!op)
                return 0;

        x = mqtt_ha_request_parse(op, payload, size - (size_t) (payload - data), &r, &err);
        if (x == -ENOMEM) {
                mqtt_ha_request_done(&r);
                return 0;
        }
        if (x < 0) {
                assert(x == -EINVAL);
                assert(err && *err);
                resp = mqtt_ha_response_error(&r, err);
                check_response(resp, false, &r);
        } else {
                assert(r.op && json_object_is_type(r.params, json_type_object));
                x = mqtt_ha_request_get_string(&r, "lock", true, 32, &s, &err);
                assert(x == 0 ? s != NULL : x == -EINVAL && err);
                resp = mqtt_ha_response_ok(&r, json_object_get(r.params));
                check_response(resp, true, &r);
                free(resp);
                /* a reply made elsewhere (codes_request()) gets data and the transaction */
                resp = mqtt_ha_response_from(&r, reply_error("length: A code must have exactly 6 digits."));
                check_response(resp, false, &r);
                /* the secrets of the request are wiped before it is freed, and nothing else */
                {
                        bool has = mqtt_ha_json_has_secrets(r.params);
                        char *before = has ? NULL : mqtt_ha_json_to_string(r.params), *after;

                        mqtt_ha_json_wipe_secrets(r.params);
                        check_wiped(r.params, false);
                        after = has ? NULL : mqtt_ha_json_to_string(r.params);
                        assert(!before || !after || strcmp(before, after) == 0);
                        free(before);
                        free(after);
                }
        }
        mqtt_ha_request_done(&r);
        return 0;
}
