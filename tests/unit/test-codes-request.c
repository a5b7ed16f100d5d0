/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Requests on users and codes as the MQTT bridge passes them on: what each one changes in
 * the store, the response object, and refusals (unknown keys, wrong types, a broken code
 * rule named in "rule") that change nothing. Also the per-lock sync summary.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lockhub/codes.h"
#include "lockhub/log.h"

struct fixture {
        char dir[64];
        Store *store;
        int64_t front;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof *f);
        struct store_lock l;

        log_set_max_level(LOG_WARNING);
        snprintf(f->dir, sizeof f->dir, "/tmp/test-codes-request-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(store_open(f->dir, &f->store), 0);
        store_lock_init(&l);
        l.name = (char *) "front";
        l.address = (char *) "AA:BB:CC:DD:EE:01";
        f->front = store_lock_add(f->store, &l);
        assert_true(f->front > 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        store_free(f->store);
        (void) nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* Runs a request; returns the response as compact text (caller frees). */
static char *request(struct fixture *f, const char *op, const char *json, int expect)
{
        json_object *req = json_tokener_parse(json), *reply = NULL;
        char *s;

        assert_non_null(req);
        assert_int_equal(codes_request(f->store, NULL, op, req, &reply), expect);
        assert_non_null(reply);
        s = strdup(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        json_object_put(req);
        json_object_put(reply);
        return s;
}

#define EXPECT(f, op, json, r, text)                        \
        do {                                                \
                char *_s = request((f), (op), (json), (r)); \
                assert_string_equal(_s, (text));            \
                free(_s);                                   \
        } while (0)

static void test_users_and_codes(void **state)
{
        struct fixture *f = *state;
        CodeSyncSummary sum;
        char *s;

        EXPECT(f, "user/add", "{\"name\":\"Alice\",\"transaction\":\"t1\"}", 0,
               "{\"status\":\"ok\",\"data\":1}");
        EXPECT(f, "user/add", "{\"name\":\"Alice\"}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"user exists already\"}");
        EXPECT(f, "user/list", "{}", 0,
               "{\"status\":\"ok\",\"data\":[{\"name\":\"Alice\",\"removing\":false}]}");
        EXPECT(f, "code/add",
               "{\"user\":\"Alice\",\"name\":\"Alice\",\"digits\":\"345678\",\"locks\":[\"front\"],"
               "\"weekdays\":[\"mon\",\"fri\"],\"time_from\":\"08:00\",\"time_until\":\"12:30\"}",
               0, "{\"status\":\"ok\",\"data\":1}");
        s = request(f, "code/list", "{\"lock\":\"front\"}", 0);
        assert_non_null(strstr(s, "\"weekdays\":17"));
        assert_non_null(strstr(s, "\"time_from_min\":480,\"time_until_min\":750"));
        assert_non_null(strstr(s, "\"state\":\"pending\""));
        assert_null(strstr(s, "345678"));
        free(s);

        /* every rule named, nothing stored */
        EXPECT(f, "code/add",
               "{\"user\":\"Alice\",\"name\":\"Bad\",\"digits\":\"123456\",\"locks\":[\"front\"]}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"prefix-12: A code must not start with \\\"12\\\".\","
               "\"rule\":\"prefix-12\"}");
        EXPECT(f, "code/add",
               "{\"user\":\"Alice\",\"name\":\"Dup\",\"digits\":\"345678\",\"locks\":[\"front\"]}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"duplicate: Another code on the same lock already has "
               "these "
               "digits.\",\"rule\":\"duplicate\"}");
        EXPECT(f, "code/add",
               "{\"user\":\"Alice\",\"name\":\"X\",\"digits\":\"456789\",\"locks\":[\"garage\"]}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"\\\"locks\\\"[0]: no paired lock of that name\"}");
        EXPECT(f, "code/add", "{\"user\":\"Alice\",\"name\":\"X\",\"digits\":456789,\"locks\":[]}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"\\\"digits\\\" must be a string of 1 to 16 bytes\"}");
        EXPECT(f, "code/add", "{\"user\":\"Alice\",\"name\":\"X\",\"digits\":\"456789\",\"pin\":1}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"unknown key \\\"pin\\\"\"}");
        EXPECT(f, "code/update", "{\"id\":1,\"time_from\":\"25:00\"}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"\\\"time_from\\\" must be \\\"HH:MM\\\" or null\"}");
        EXPECT(f, "code/update", "{\"id\":1,\"weekdays\":[\"someday\"]}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"\\\"weekdays\\\"[0] is not one of mon, tue, wed, thu, "
               "fri, sat, "
               "sun\"}");
        assert_int_equal(codes_lock_summary(f->store, f->front, &sum), 0);
        assert_int_equal(sum.pending, 1);
        assert_int_equal(sum.synced + sum.failed + sum.drifted, 0);

        EXPECT(f, "code/update", "{\"id\":1,\"enabled\":false,\"time_from\":null,\"time_until\":null}", 0,
               "{\"status\":\"ok\"}");
        s = request(f, "code/list", "{}", 0);
        assert_non_null(strstr(s, "\"enabled\":false"));
        assert_null(strstr(s, "time_from_min"));
        assert_non_null(strstr(s, "\"revision\":2"));
        free(s);
        EXPECT(f, "code/update", "{\"id\":1,\"locks\":[]}", 0, "{\"status\":\"ok\"}");
        s = request(f, "code/list", "{}", 0);
        assert_non_null(strstr(s, "\"desired\":\"absent\""));
        free(s);
        EXPECT(f, "code/remove", "{\"id\":9}", -EINVAL, "{\"status\":\"error\",\"error\":\"no such code\"}");
        EXPECT(f, "code/remove", "{\"id\":1}", 0, "{\"status\":\"ok\"}");
        EXPECT(f, "user/remove", "{\"name\":\"Alice\"}", 0, "{\"status\":\"ok\"}");
}

static void test_backup_and_restore_requests(void **state)
{
        struct fixture *f = *state;
        json_object *req, *reply = NULL, *doc, *data;

        free(request(f, "user/add", "{\"name\":\"Bob\"}", 0));
        free(request(f, "code/add",
                     "{\"user\":\"Bob\",\"name\":\"Bob\",\"digits\":\"456789\",\"locks\":[\"front\"]}", 0));
        req = json_tokener_parse("{\"locks\":[\"front\"]}");
        assert_int_equal(codes_request(f->store, NULL, "backup", req, &reply), 0);
        json_object_put(req);
        assert_true(json_object_object_get_ex(reply, "data", &data));
        assert_null(strstr(json_object_to_json_string(data), "456789"));
        doc = json_object_get(data);
        json_object_put(reply);

        /* restore it back: valid, nothing new */
        req = json_object_new_object();
        json_object_object_add(req, "document", doc);
        assert_int_equal(codes_request(f->store, NULL, "restore", req, &reply), 0);
        assert_string_equal(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN),
                            "{\"status\":\"ok\",\"data\":{\"users_added\":0,\"codes_added\":0,\"codes_"
                            "updated\":0,"
                            "\"codes_skipped\":0,\"assignments\":0,\"setting_snapshots\":0}}");
        json_object_put(reply);
        json_object_put(req);

        EXPECT(f, "restore",
               "{\"document\":{\"format\":\"lockhub-backup\",\"version\":7,\"locks\":[],\"users\":[]}}",
               -EINVAL,
               "{\"status\":\"error\",\"error\":\"document.version: written by a newer lockhub (version 7); "
               "this "
               "one reads version 1\"}");
        EXPECT(f, "restore", "{\"document\":[]}", -EINVAL,
               "{\"status\":\"error\",\"error\":\"\\\"document\\\" must be a backup document (a JSON "
               "object)\"}");
        req = json_tokener_parse("{}");
        assert_int_equal(codes_request(f->store, NULL, "code/explode", req, &reply), -EOPNOTSUPP);
        assert_null(reply);
        json_object_put(req);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_users_and_codes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_backup_and_restore_requests, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
