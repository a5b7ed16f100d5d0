/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Requests on users and codes (the MQTT bridge's lockhub/bridge/request/<op>): the input
 * is "OP\n" followed by the JSON request. Any request must be answered (ok, or an error
 * object with a message) or be an unknown op, never crash or leak, and no answer may
 * hold the digits of a code. One store in a temporary directory lives for the whole run.
 */

#include <assert.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/codes.h"
#include "lockhub/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static Store *store;
static char dir[64];

static void cleanup(void)
{
        char cmd[128];

        store = store_free(store);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "fuzz-codes-request: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        struct store_lock l;
        int64_t user = 0, lock;
        LockCode c;

        log_set_max_level(LOG_CRIT);
        snprintf(dir, sizeof dir, "/tmp/fuzz-codes-request-XXXXXX");
        if (!mkdtemp(dir) || store_open(dir, &store) < 0)
                abort();
        atexit(cleanup);
        store_lock_init(&l);
        l.name = (char *) "front";
        l.address = (char *) "AA:BB:CC:DD:EE:01";
        lock = store_lock_add(store, &l);
        assert(lock > 0);
        assert(codes_user_add(store, "Alice", &user) == 0);
        lock_code_init(&c);
        memcpy(c.digits, "345678", 7);
        memcpy(c.name, "Alice", 6);
        assert(codes_code_add(store, user, &c, &lock, 1, NULL, NULL) == 0);
        return 0;
}

/* Does any object in o have a "digits" member? */
static bool has_digits(json_object *o)
{
        if (json_object_is_type(o, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        if (has_digits(json_object_array_get_idx(o, i)))
                                return true;
                return false;
        }
        if (!json_object_is_type(o, json_type_object))
                return false;
        json_object_object_foreach (o, key, val)
                if (streq(key, "digits") || has_digits(val))
                        return true;
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nl = memchr(data, '\n', size);
        json_object *req, *reply = NULL;
        json_tokener *tok;
        char op[32];
        size_t n;
        int r;

        if (!store)
                LLVMFuzzerInitialize(NULL, NULL);
        if (!nl || size > 64 * 1024 || (size_t) (nl - data) >= sizeof op)
                return 0;
        n = (size_t) (nl - data);
        memcpy(op, data, n);
        op[n] = '\0';
        tok = json_tokener_new_ex(8);
        if (!tok)
                return 0;
        req = json_tokener_parse_ex(tok, (const char *) nl + 1, (int) (size - n - 1));
        json_tokener_free(tok);
        if (!req)
                return 0;

        r = codes_request(store, NULL, op, req, &reply);
        if (r == -EOPNOTSUPP)
                assert(!reply);
        else if (r != -ENOMEM) {
                json_object *status;

                assert(reply);
                assert(json_object_object_get_ex(reply, "status", &status));
                assert(streq(json_object_get_string(status), r == 0 ? "ok" : "error"));
                /* no answer ever carries code digits (backups over MQTT have none) */
                assert(!has_digits(reply));
        }
        json_object_put(reply);
        json_object_put(req);
        return 0;
}
