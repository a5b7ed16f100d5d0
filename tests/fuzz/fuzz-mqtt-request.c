/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * B/bridge/request/<op>: the input is "<op>\n<payload>" (no newline: all payload,
 * op "health"). Any bytes give a parsed request or -EINVAL with a message; either way
 * the response built from it is valid JSON with the right status and the request's
 * transaction echoed (also a reply built elsewhere, mqtt_ha_response_from()); wiping the
 * request's secrets leaves no byte of a code, digits, passphrase or PIN.
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

static void check_wiped(json_object *params)
{
        static const char *const keys[] = { "code", "digits", "passphrase", "pin" };
        json_object *v;

        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (json_object_object_get_ex(params, keys[i], &v) &&
                    json_object_is_type(v, json_type_string))
                        for (int k = 0; k < json_object_get_string_len(v); k++)
                                assert(json_object_get_string(v)[k] == '\0');
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
                /* the secrets of the request are wiped before it is freed */
                mqtt_ha_json_wipe_secrets(r.params);
                check_wiped(r.params);
        }
        mqtt_ha_request_done(&r);
        return 0;
}
