/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * MQTT client without a broker: what mqtt_client_new() refuses and why, where the
 * password comes from, what publish/subscribe answer before a connection exists,
 * libmosquitto error translation, and the mapping from lockhub.conf. Everything
 * that needs a broker is in tests/integration/t-mqtt-client.sh.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <mosquitto.h>

#include "lockhub/conf.h"
#include "lockhub/log.h"
#include "lockhub/mqtt-client.h"

static char dir[] = "/tmp/test-mqtt-client.XXXXXX";

/* A path in the test directory; the result stays valid for the next 15 calls. */
static const char *path(const char *name)
{
        static char buf[16][256];
        static unsigned i;
        char *b = buf[i++ % ELEMENTSOF(buf)];

        snprintf(b, sizeof(buf[0]), "%s/%s", dir, name);
        return b;
}

static void write_file(const char *name, const void *data, size_t len)
{
        FILE *f = fopen(path(name), "we");

        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

static int new_client(const MqttClientOptions *o)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        MqttClient *c = NULL;
        int r;

        assert_int_equal(sd_event_new(&e), 0);
        r = mqtt_client_new(e, o, &c);
        if (r >= 0)
                assert_non_null(c);
        mqtt_client_free(c);
        return r;
}

static void test_options_refused(void **state)
{
        MqttClientOptions o = { .host = "127.0.0.1" };

        assert_int_equal(new_client(&o), 0);
        assert_int_equal(new_client(&(MqttClientOptions){}), -EINVAL);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .socket_path = "/s" }), -EINVAL);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "" }), -EINVAL);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .port = 65536 }), -EINVAL);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .keepalive_sec = 4 }), -EINVAL);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .keepalive_sec = 5 }), 0);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .client_id = "" }), -EINVAL);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .will_topic = "a/#" }), -EINVAL);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .birth_topic = "a/+/b" }), -EINVAL);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .tls = true, .cert_file = "/c" }),
                         -EINVAL);
}

static void test_tls_files(void **state)
{
        write_file("ca.crt", "not really a certificate\n", 25);

        assert_int_equal(new_client(&(MqttClientOptions){
                                         .host = "h", .tls = true, .ca_file = path("missing.crt") }),
                         -ENOENT);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .tls = true, .ca_file = dir }),
                         -EISDIR);
        assert_int_equal(new_client(&(MqttClientOptions){
                                         .host = "h", .tls = true, .ca_path = path("ca.crt") }),
                         -ENOTDIR);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h",
                                                          .tls = true,
                                                          .ca_path = dir,
                                                          .cert_file = path("ca.crt"),
                                                          .key_file = path("missing.key") }),
                         -ENOENT);
        /* Files are only parsed when connecting; TLS with the system's store needs none. */
        assert_int_equal(new_client(&(MqttClientOptions){
                                         .host = "h", .tls = true, .ca_file = path("ca.crt") }),
                         0);
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .tls = true }), 0);
        /* Without TLS, TLS files are not looked at. */
        assert_int_equal(new_client(&(MqttClientOptions){ .host = "h", .ca_file = path("missing.crt") }), 0);
}

static void test_password_sources(void **state)
{
        char big[70000];
        MqttClientOptions o = { .host = "h", .username = "hub", .password_file = path("pw") };

        assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
        assert_int_equal(new_client(&o), -ENOENT); /* PasswordFile= given but missing */
        write_file("pw", "secret\n", 7);
        assert_int_equal(new_client(&o), 0);

        memset(big, 'x', sizeof(big));
        write_file("big", big, sizeof(big));
        o.password_file = path("big");
        assert_int_equal(new_client(&o), -EFBIG);
        write_file("nul", "se\0cret", 7);
        o.password_file = path("nul");
        assert_int_equal(new_client(&o), -EBADMSG);
        o.password_file = dir;
        assert_int_equal(new_client(&o), -EISDIR);

        /* The credential wins over PasswordFile=: a broken file is not even read. */
        assert_int_equal(mkdir(path("creds"), 0700), 0);
        write_file("creds/mqtt-password", "secret\n", 7);
        assert_int_equal(setenv("CREDENTIALS_DIRECTORY", path("creds"), 1), 0);
        o.password_file = path("big");
        assert_int_equal(new_client(&o), 0);
        /* An empty credential directory falls back to the file. */
        assert_int_equal(mkdir(path("nocreds"), 0700), 0);
        assert_int_equal(setenv("CREDENTIALS_DIRECTORY", path("nocreds"), 1), 0);
        assert_int_equal(new_client(&o), -EFBIG);
        o.password_file = NULL;
        assert_int_equal(new_client(&o), 0);
        /* A credential that cannot be read is an error, not a silent fallback. */
        assert_int_equal(mkdir(path("badcreds"), 0700), 0);
        assert_int_equal(mkdir(path("badcreds/mqtt-password"), 0700), 0);
        assert_int_equal(setenv("CREDENTIALS_DIRECTORY", path("badcreds"), 1), 0);
        assert_int_equal(new_client(&o), -EISDIR);
        assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
}

/* The reader the password and the bridge's unlock codes share. */
static void test_read_secret_file(void **state)
{
        char *s = NULL;

        write_file("s1", "1234\r\n", 6);
        assert_int_equal(mqtt_read_secret_file(path("s1"), 4, &s), 0);
        assert_string_equal(s, "1234");
        mqtt_secret_free(s);
        write_file("s2", "12345\n", 6);
        assert_int_equal(mqtt_read_secret_file(path("s2"), 4, &s), -EFBIG);
        write_file("s3", "12\n\n", 4); /* only one newline goes */
        assert_int_equal(mqtt_read_secret_file(path("s3"), 4, &s), 0);
        assert_string_equal(s, "12\n");
        mqtt_secret_free(s);
        write_file("s4", "", 0);
        assert_int_equal(mqtt_read_secret_file(path("s4"), 4, &s), 0);
        assert_string_equal(s, "");
        mqtt_secret_free(s);
        write_file("s5", "1\0002", 3);
        assert_int_equal(mqtt_read_secret_file(path("s5"), 4, &s), -EBADMSG);
        assert_int_equal(mqtt_read_secret_file(path("none"), 4, &s), -ENOENT);
        assert_int_equal(mqtt_read_secret_file(dir, 4, &s), -EISDIR);
        assert_int_equal(mqtt_read_secret_file("/dev/null", 4, &s), -EBADFD);
        mqtt_secret_free(NULL);
}

static void test_disconnected_publish(void **state)
{
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(mqtt_client_freep) MqttClient *c = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(mqtt_client_new(e, &(MqttClientOptions){ .host = "127.0.0.1", .queue_max = 2 }, &c),
                         0);
        assert_false(mqtt_client_is_connected(c));
        assert_string_equal(mqtt_client_broker(c), "127.0.0.1:1883");

        assert_int_equal(mqtt_client_publish_string(c, "lockhub/front", "{}", 1, true), 1);
        assert_int_equal(mqtt_client_publish_string(c, "lockhub/front", "{\"a\":1}", 1, true), 1);
        assert_int_equal(mqtt_client_publish_string(c, "lockhub/back", "{}", 1, true), 1);
        assert_int_equal(mqtt_client_publish_string(c, "lockhub/side", "{}", 1, true), 1); /* drops one */
        assert_int_equal(mqtt_client_publish(c, "lockhub/front", NULL, 0, 1, true), 1);    /* clears */
        assert_int_equal(mqtt_client_publish_string(c, "lockhub/front/event", "{}", 1, false), -ENOTCONN);

        assert_int_equal(mqtt_client_publish_string(c, "lockhub/#", "x", 1, true), -EINVAL);
        assert_int_equal(mqtt_client_publish_string(c, "lockhub/+", "x", 1, true), -EINVAL);
        assert_int_equal(mqtt_client_publish_string(c, "lockhub/\xff", "x", 1, true), -EINVAL);
        assert_int_equal(mqtt_client_publish_string(c, "lockhub/x", "x", 3, true), -EINVAL);
        assert_int_equal(mqtt_client_publish(c, "lockhub/x", NULL, 1, 1, true), -EINVAL);

        assert_int_equal(mqtt_client_subscribe(c, "lockhub/+/set", 1), 0);
        assert_int_equal(mqtt_client_subscribe(c, "lockhub/+/set", 0), 0);
        assert_int_equal(mqtt_client_subscribe(c, "lockhub/#/set", 1), -EINVAL);
        assert_int_equal(mqtt_client_subscribe(c, "lockhub/x", 3), -EINVAL);
        assert_int_equal(mqtt_client_unsubscribe(c, "lockhub/+/set"), 0);
        assert_int_equal(mqtt_client_unsubscribe(c, "lockhub/+/set"), -ENOENT);

        assert_int_equal(mqtt_client_start(c), 0);
        assert_int_equal(mqtt_client_start(c), -EALREADY);
        mqtt_client_stop(c);
        mqtt_client_stop(c);
        assert_int_equal(mqtt_client_publish_string(c, "lockhub/front", "{}", 1, true), -ESHUTDOWN);
        assert_int_equal(mqtt_client_subscribe(c, "lockhub/x", 1), -ESHUTDOWN);
}

static void test_error_translation(void **state)
{
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_SUCCESS), 0);
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_NOMEM), -ENOMEM);
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_NO_CONN), -ENOTCONN);
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_CONN_LOST), -ECONNRESET);
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_KEEPALIVE), -ETIMEDOUT);
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_AUTH), -EACCES);
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_PAYLOAD_SIZE), -EMSGSIZE);
        errno = ECONNREFUSED;
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_ERRNO), -ECONNREFUSED);
        errno = 0;
        assert_int_equal(mqtt_error_from_mosquitto(MOSQ_ERR_ERRNO), -EIO);
        assert_int_equal(mqtt_error_from_mosquitto(12345), -EIO);
}

static void test_options_from_conf(void **state)
{
        _cleanup_(conf_freep) Conf *conf = conf_new_defaults();
        MqttClientOptions o;

        assert_non_null(conf);
        mqtt_client_options_from_conf(conf, &o);
        assert_string_equal(o.host, conf->mqtt.host);
        assert_null(o.socket_path);
        assert_int_equal(o.port, conf->mqtt.port);
        assert_int_equal(o.protocol, MQTT_PROTO_V311);
        assert_int_equal(o.keepalive_sec, conf->mqtt.keepalive_sec);
        assert_int_equal(o.reconnect_min_sec, conf->mqtt.reconnect_min_sec);
        assert_int_equal(o.reconnect_max_sec, conf->mqtt.reconnect_max_sec);
        assert_null(o.will_topic);
        assert_null(o.birth_topic);
        /* The defaults make a client that can be created. */
        assert_int_equal(new_client(&o), 0);
}

static int setup(void **state)
{
        log_set_max_level(LOG_CRIT); /* the refusals above log errors on purpose */
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[sizeof(dir) + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_options_refused),   cmocka_unit_test(test_tls_files),
                cmocka_unit_test(test_password_sources),  cmocka_unit_test(test_disconnected_publish),
                cmocka_unit_test(test_error_translation), cmocka_unit_test(test_options_from_conf),
                cmocka_unit_test(test_read_secret_file),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
