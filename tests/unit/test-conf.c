/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhub.conf parser: values, defaults, and the diagnostics a user reads (exact texts
 * and line numbers). Run from the repository root (conf/lockhub.conf is read).
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "lockhub/conf.h"

#define SHIPPED_CONF "conf/lockhub.conf"

static int parse(const char *text, Conf **ret, ConfDiags **diags)
{
        return conf_parse("test.conf", text, strlen(text), ret, diags);
}

/* Asserts that the diagnostics are exactly the given messages, in order. */
static void assert_diags(const ConfDiags *d, const char *const *expected)
{
        size_t n = 0;

        while (expected[n])
                n++;
        for (size_t i = 0; i < d->n_items; i++)
                print_message("  diag: %s\n", d->items[i].message);
        assert_int_equal(d->n_items, n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(d->items[i].message, expected[i]);
}
#define ASSERT_DIAGS(d, ...) assert_diags((d), (const char *const[]){ __VA_ARGS__, NULL })

static void expect_error(const char *text, unsigned line, const char *message)
{
        _cleanup_(conf_freep) Conf *c = NULL;
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL;

        assert_int_equal(parse(text, &c, &d), -EINVAL);
        assert_null(c);
        assert_non_null(d);
        ASSERT_DIAGS(d, message);
        assert_int_equal(d->items[0].level, CONF_DIAG_ERROR);
        assert_int_equal(d->items[0].line, line);
        assert_int_equal(d->n_errors, 1);
}

static void test_defaults(void **state)
{
        _cleanup_(conf_freep) Conf *c = conf_new_defaults();

        assert_non_null(c);
        assert_string_equal(c->hub.name, "lockhub");
        assert_int_equal(c->hub.log_level, LOG_INFO);
        assert_int_equal(c->hub.time_sync_drift_sec, 60);
        assert_null(c->bluetooth.adapters);
        assert_int_equal(c->bluetooth.max_connections, 3);
        assert_int_equal(c->bluetooth.connect_timeout_sec, 20);
        assert_int_equal(c->bluetooth.idle_disconnect_sec, 10);
        assert_int_equal(c->bluetooth.command_timeout_sec, 30);
        assert_true(c->bluetooth.scan_while_paired);
        assert_int_equal(c->bluetooth.scan_mode, CONF_SCAN_LE);
        assert_true(c->mqtt.enabled);
        assert_string_equal(c->mqtt.host, "localhost");
        assert_int_equal(c->mqtt.port, 1883);
        assert_null(c->mqtt.socket);
        assert_null(c->mqtt.username);
        assert_null(c->mqtt.password_file);
        assert_null(c->mqtt.client_id);
        assert_string_equal(c->mqtt.base_topic, "lockhub");
        assert_string_equal(c->mqtt.discovery_prefix, "homeassistant");
        assert_true(c->mqtt.discovery);
        assert_int_equal(c->mqtt.protocol, CONF_MQTT_V311);
        assert_int_equal(c->mqtt.keepalive_sec, 60);
        assert_false(c->mqtt.tls);
        assert_false(c->mqtt.tls_insecure);
        assert_int_equal(c->mqtt.reconnect_min_sec, 1);
        assert_int_equal(c->mqtt.reconnect_max_sec, 120);
        assert_int_equal(c->mqtt.command_expiry_sec, 0);
        assert_false(c->mqtt.require_unlock_code);
        assert_true(c->mqtt.allow_remote_unlock);
        assert_true(c->mqtt.allow_remote_unlatch);
        assert_false(c->mqtt.allow_remote_code_changes);
        assert_int_equal(c->health.battery_low_percent, 25);
        assert_int_equal(c->health.battery_critical_percent, 10);
        assert_int_equal(c->health.weak_signal_dbm, -85);
        assert_int_equal(c->health.not_seen_sec, 30 * 60);
        assert_int_equal(c->health.jam_window_sec, 7 * 86400);
        assert_int_equal(c->health.jam_threshold, 3);
        assert_int_equal(c->health.recovery_max_attempts, 5);
        assert_true(c->health.adapter_power_cycle);
        assert_non_null(c->health.known_firmware_file);
        assert_true(c->health.known_firmware_file[0] == '/');
        assert_int_equal(c->codes.drift_policy, CONF_DRIFT_HUB);
        assert_true(c->codes.reprovision_after_reset);
        assert_int_equal(c->store.event_retention_sec, 365 * 86400);
        assert_int_equal(c->store.event_retention_count, 1000000);
        assert_int_equal(c->store.sample_retention_sec, 90 * 86400);
        assert_int_equal(c->n_locks, 0);
}

static void test_empty_is_defaults(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL, *def = conf_new_defaults();
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL;

        assert_int_equal(parse("", &c, &d), 0);
        assert_int_equal(d->n_items, 0);
        assert_int_equal(conf_format(c, &a), 0);
        assert_int_equal(conf_format(def, &b), 0);
        assert_string_equal(a, b);
}

static const char valid[] = "# a hub\n"
                            "[Hub]\n"
                            "Name = Front hall hub\n"
                            "LogLevel=debug\n"
                            "\n"
                            "[Bluetooth]\n"
                            "  Adapter = hci1, aa:bb:cc:dd:ee:0f  \n"
                            "MaxConnections=5\n"
                            "ConnectTimeoutSec=1min 30s\n"
                            "IdleDisconnectSec=0\n"
                            "CommandTimeoutSec=45\n"
                            "ScanWhilePaired=off\n"
                            "ScanMode=quiet\n"
                            "; MQTT over TLS\n"
                            "[MQTT]\n"
                            "Host=broker.example.org\n"
                            "Username=hub\n"
                            "PasswordFile=/etc/lockhub/mqtt-password\n"
                            "ClientId=hub-1\n"
                            "BaseTopic=home/locks\n"
                            "DiscoveryPrefix=ha\n"
                            "Protocol=5\n"
                            "KeepaliveSec=2min\n"
                            "TLS=true\n"
                            "CAFile=/etc/ssl/certs/ca.pem\n"
                            "CertFile=/etc/lockhub/hub.crt\n"
                            "KeyFile=/etc/lockhub/hub.key\n"
                            "ReconnectMinSec=2\n"
                            "ReconnectMaxSec=1h\n"
                            "CommandExpirySec=30s\n"
                            "RequireUnlockCode=yes\n"
                            "UnlockCodeFile=/etc/lockhub/unlock-code\n"
                            "AllowRemoteUnlatch=no\n"
                            "AllowRemoteCodeChanges=yes\n"
                            "[Health]\n"
                            "BatteryLowPercent=30\n"
                            "BatteryCriticalPercent=15\n"
                            "WeakSignalDBm=-90\n"
                            "NotSeenSec=1h\n"
                            "JamWindowSec=2w\n"
                            "JamThreshold=4\n"
                            "RetryBackoffMinSec=5\n"
                            "RetryBackoffMaxSec=10min\n"
                            "AdapterPowerCycle=no\n"
                            "KnownFirmwareFile=/etc/lockhub/known-firmware.json\n"
                            "[Codes]\n"
                            "DriftPolicy=lock\n"
                            "ReprovisionAfterReset=no\n"
                            "SyncRetryMaxSec=30min\n"
                            "[Store]\n"
                            "EventRetentionSec=0\n"
                            "EventRetentionCount=5000\n"
                            "SampleRetentionSec=30d\n"
                            "[Lock garage]\n"
                            "AllowRemoteUnlock=no\n"
                            "[Lock front-door]\n"
                            "RequireUnlockCode=no\n"
                            "UnlockCodeFile=/etc/lockhub/front-code\n";

static void test_valid_file(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL;
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL;
        ConfLockPolicy pol;

        assert_int_equal(parse(valid, &c, &d), 0);
        assert_int_equal(d->n_items, 0);

        assert_string_equal(c->hub.name, "Front hall hub");
        assert_int_equal(c->hub.log_level, LOG_DEBUG);
        assert_non_null(c->bluetooth.adapters);
        assert_string_equal(c->bluetooth.adapters[0], "hci1");
        assert_string_equal(c->bluetooth.adapters[1], "AA:BB:CC:DD:EE:0F");
        assert_null(c->bluetooth.adapters[2]);
        assert_int_equal(c->bluetooth.max_connections, 5);
        assert_int_equal(c->bluetooth.connect_timeout_sec, 90);
        assert_int_equal(c->bluetooth.idle_disconnect_sec, 0);
        assert_int_equal(c->bluetooth.command_timeout_sec, 45);
        assert_false(c->bluetooth.scan_while_paired);
        assert_int_equal(c->bluetooth.scan_mode, CONF_SCAN_QUIET);
        assert_string_equal(conf_scan_mode_to_string(c->bluetooth.scan_mode), "quiet");

        assert_string_equal(c->mqtt.host, "broker.example.org");
        assert_int_equal(c->mqtt.port, 8883); /* TLS=yes and no Port= */
        assert_string_equal(c->mqtt.username, "hub");
        assert_string_equal(c->mqtt.password_file, "/etc/lockhub/mqtt-password");
        assert_string_equal(c->mqtt.client_id, "hub-1");
        assert_string_equal(c->mqtt.base_topic, "home/locks");
        assert_string_equal(c->mqtt.discovery_prefix, "ha");
        assert_int_equal(c->mqtt.protocol, CONF_MQTT_V5);
        assert_int_equal(c->mqtt.keepalive_sec, 120);
        assert_true(c->mqtt.tls);
        assert_string_equal(c->mqtt.ca_file, "/etc/ssl/certs/ca.pem");
        assert_null(c->mqtt.ca_path);
        assert_string_equal(c->mqtt.cert_file, "/etc/lockhub/hub.crt");
        assert_string_equal(c->mqtt.key_file, "/etc/lockhub/hub.key");
        assert_int_equal(c->mqtt.reconnect_min_sec, 2);
        assert_int_equal(c->mqtt.reconnect_max_sec, 3600);
        assert_int_equal(c->mqtt.command_expiry_sec, 30);
        assert_true(c->mqtt.require_unlock_code);
        assert_string_equal(c->mqtt.unlock_code_file, "/etc/lockhub/unlock-code");
        assert_true(c->mqtt.allow_remote_unlock);
        assert_false(c->mqtt.allow_remote_unlatch);
        assert_true(c->mqtt.allow_remote_code_changes);

        assert_int_equal(c->health.battery_low_percent, 30);
        assert_int_equal(c->health.battery_critical_percent, 15);
        assert_int_equal(c->health.weak_signal_dbm, -90);
        assert_int_equal(c->health.not_seen_sec, 3600);
        assert_int_equal(c->health.jam_window_sec, 14 * 86400);
        assert_int_equal(c->health.jam_threshold, 4);
        assert_int_equal(c->health.retry_backoff_min_sec, 5);
        assert_int_equal(c->health.retry_backoff_max_sec, 600);
        assert_false(c->health.adapter_power_cycle);
        assert_string_equal(c->health.known_firmware_file, "/etc/lockhub/known-firmware.json");

        assert_int_equal(c->codes.drift_policy, CONF_DRIFT_LOCK);
        assert_false(c->codes.reprovision_after_reset);
        assert_int_equal(c->codes.sync_retry_max_sec, 1800);

        assert_int_equal(c->store.event_retention_sec, 0);
        assert_int_equal(c->store.event_retention_count, 5000);
        assert_int_equal(c->store.sample_retention_sec, 30 * 86400);

        /* Per-lock overrides fall back to [MQTT] for what they do not set. */
        assert_int_equal(c->n_locks, 2);
        assert_non_null(conf_find_lock(c, "garage"));
        assert_int_equal(conf_find_lock(c, "garage")->line, 54);
        assert_null(conf_find_lock(c, "back-door"));
        conf_lock_policy(c, "garage", &pol);
        assert_true(pol.require_unlock_code);
        assert_string_equal(pol.unlock_code_file, "/etc/lockhub/unlock-code");
        assert_false(pol.allow_remote_unlock);
        assert_false(pol.allow_remote_unlatch);
        conf_lock_policy(c, "front-door", &pol);
        assert_false(pol.require_unlock_code);
        assert_string_equal(pol.unlock_code_file, "/etc/lockhub/front-code");
        assert_true(pol.allow_remote_unlock);
        conf_lock_policy(c, "back-door", &pol);
        assert_true(pol.require_unlock_code);
        assert_true(pol.allow_remote_unlock);
}

static void test_format_round_trip(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL, *c2 = NULL;
        _cleanup_free_ char *a = NULL, *b = NULL;

        assert_int_equal(parse(valid, &c, NULL), 0);
        assert_int_equal(conf_format(c, &a), 0);
        assert_non_null(strstr(a, "\n[MQTT]\n"));
        assert_non_null(strstr(a, "\nConnectTimeoutSec=1min 30s\n"));
        assert_non_null(strstr(a, "\nAdapter=hci1 AA:BB:CC:DD:EE:0F\n"));
        assert_non_null(strstr(a, "\n[Lock garage]\nAllowRemoteUnlock=no\n"));
        assert_int_equal(parse(a, &c2, NULL), 0);
        assert_int_equal(conf_format(c2, &b), 0);
        assert_string_equal(a, b);
}

static void test_syntax_and_values(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL;

        /* Later assignments win; an empty value restores the default; comments only at
         * the start of a line; CRLF and a UTF-8 BOM are fine. */
        static const char text[] = "\xEF\xBB\xBF[MQTT]\r\n"
                                   "Port=1000\r\n"
                                   "Port=2000\n"
                                   "  # Port=3000\n"
                                   "BaseTopic=x\n"
                                   "BaseTopic=\n"
                                   "Enabled=OFF\n"
                                   "[Bluetooth]\n"
                                   "Adapter=hci0\n"
                                   "Adapter=auto\n"
                                   "ConnectTimeoutSec=5 min\n"
                                   "[Hub]\n"
                                   "LogLevel=3\n";

        assert_int_equal(parse(text, &c, NULL), 0);
        assert_int_equal(c->mqtt.port, 2000);
        assert_string_equal(c->mqtt.base_topic, "lockhub");
        assert_false(c->mqtt.enabled);
        assert_null(c->bluetooth.adapters);
        assert_int_equal(c->bluetooth.connect_timeout_sec, 300);
        assert_int_equal(c->hub.log_level, LOG_ERR);
}

static void test_socket(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL;

        assert_int_equal(parse("[MQTT]\nSocket=/run/mosquitto/mqtt.sock\n", &c, NULL), 0);
        assert_string_equal(c->mqtt.socket, "/run/mosquitto/mqtt.sock");
        assert_null(c->mqtt.host);

        expect_error("[MQTT]\nHost=broker\n\nSocket=/run/mqtt.sock\n", 4,
                     "test.conf:4: [MQTT] Socket= cannot be combined with Host= or Port= (line 2)");
}

static void test_bad_section(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL;
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL;

        expect_error("[Hub]\nName=x\n[MQTT\nPort=1\n", 3,
                     "test.conf:3: unterminated section header, expected [Section]");
        expect_error("\n[Lock]\n", 2, "test.conf:2: [Lock] needs the name of a lock: [Lock NAME]");
        expect_error("[Lock front door]\nAllowRemoteUnlock=no\n", 1,
                     "test.conf:1: [Lock front door]: invalid lock name (1-32 letters, digits, - and _, "
                     "not starting with -)");
        expect_error("[]\n", 1, "test.conf:1: empty section name []");

        /* An unknown section is a warning; its keys are skipped without more noise. */
        assert_int_equal(parse("[Hub]\nName=a\n[Zigbee]\nChannel=11\nFoo\n[Hub]\nName=b\n", &c, &d),
                         -EINVAL);
        ASSERT_DIAGS(d, "test.conf:3: unknown section [Zigbee], ignoring its keys",
                     "test.conf:5: expected Key=value or [Section]");
        d = conf_diags_free(d);
        assert_int_equal(parse("[Hub]\nName=a\n[Zigbee]\nChannel=11\n[Hub]\nName=b\n", &c, &d), 0);
        assert_int_equal(d->n_warnings, 1);
        assert_int_equal(d->n_errors, 0);
        assert_int_equal(d->items[0].level, CONF_DIAG_WARNING);
        assert_int_equal(d->items[0].line, 3);
        assert_string_equal(c->hub.name, "b");
}

static void test_unknown_key_is_warning(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL;
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL;

        assert_int_equal(parse("[MQTT]\nHost=h\n\n\n\n\nFoo=bar\nport=1884\n[Lock a]\nColour=red\n", &c, &d),
                         0);
        assert_non_null(c);
        ASSERT_DIAGS(d, "test.conf:7: unknown key 'Foo' in [MQTT], ignoring",
                     "test.conf:8: unknown key 'port' in [MQTT] (did you mean 'Port'?), ignoring",
                     "test.conf:10: unknown key 'Colour' in [Lock a], ignoring");
        assert_int_equal(d->n_warnings, 3);
        assert_int_equal(d->n_errors, 0);
        assert_int_equal(d->items[0].line, 7);
        assert_int_equal(c->mqtt.port, 1883);
}

static void test_out_of_range(void **state)
{
        expect_error("[Hub]\n[MQTT]\nPort=70000\n", 3,
                     "test.conf:3: [MQTT] Port=70000: value out of range 1..65535");
        expect_error("[MQTT]\nPort=0\n", 2, "test.conf:2: [MQTT] Port=0: value out of range 1..65535");
        expect_error("[MQTT]\nPort=99999999999999999999\n", 2,
                     "test.conf:2: [MQTT] Port=99999999999999999999: value out of range 1..65535");
        expect_error("[Bluetooth]\nMaxConnections=11\n", 2,
                     "test.conf:2: [Bluetooth] MaxConnections=11: value out of range 1..10");
        expect_error("[Bluetooth]\nConnectTimeoutSec=6min\n", 2,
                     "test.conf:2: [Bluetooth] ConnectTimeoutSec=6min: value out of range 1s..5min");
        expect_error("[Health]\nWeakSignalDBm=-121\n", 2,
                     "test.conf:2: [Health] WeakSignalDBm=-121: value out of range -120..0");
        expect_error("[Health]\nNotSeenSec=30\n", 2,
                     "test.conf:2: [Health] NotSeenSec=30: value out of range 1min..30d");
        expect_error("[Health]\nBatteryLowPercent=5\n", 2,
                     "test.conf:2: [Health] BatteryCriticalPercent= (10) must be below BatteryLowPercent= "
                     "(5)");
        expect_error("[MQTT]\nReconnectMinSec=10min\nReconnectMaxSec=5min\n", 3,
                     "test.conf:3: [MQTT] ReconnectMinSec= (600s) must not exceed ReconnectMaxSec= (300s)");
}

static void test_bad_values(void **state)
{
        expect_error("[MQTT]\nPort=18 83\n", 2, "test.conf:2: [MQTT] Port=18 83: expected an integer");
        expect_error("[MQTT]\nTLS=maybe\n", 2,
                     "test.conf:2: [MQTT] TLS=maybe: expected a boolean (yes/no, true/false, on/off, 1/0)");
        expect_error("[MQTT]\nProtocol=4\n", 2, "test.conf:2: [MQTT] Protocol=4: expected '3.1.1' or '5'");
        expect_error("[Bluetooth]\nScanMode=auto\n", 2,
                     "test.conf:2: [Bluetooth] ScanMode=auto: expected 'le' or 'quiet'");
        expect_error("[MQTT]\nBaseTopic=lockhub/#\n", 2,
                     "test.conf:2: [MQTT] BaseTopic=lockhub/#: must not contain the wildcards + or #");
        expect_error("[MQTT]\nBaseTopic=lockhub/\n", 2,
                     "test.conf:2: [MQTT] BaseTopic=lockhub/: must not start or end with /");
        expect_error("[MQTT]\nBaseTopic=lockhub\nDiscoveryPrefix=lockhub\n", 3,
                     "test.conf:3: [MQTT] BaseTopic= and DiscoveryPrefix= must differ");
        expect_error("[MQTT]\nCAFile=certs/ca.pem\n", 2,
                     "test.conf:2: [MQTT] CAFile=certs/ca.pem: must be an absolute path");
        expect_error("[MQTT]\nKeyFile=/etc/../root/key\n", 2,
                     "test.conf:2: [MQTT] KeyFile=/etc/../root/key: must not contain .. components");
        expect_error("[MQTT]\nTLS=yes\nCertFile=/etc/lockhub/c.pem\n", 3,
                     "test.conf:3: [MQTT] CertFile= and KeyFile= must be given together");
        expect_error("[MQTT]\nHost=my broker\n", 2,
                     "test.conf:2: [MQTT] Host=my broker: not a valid host name or IP address");
        expect_error("[Hub]\nLogLevel=loud\n", 2,
                     "test.conf:2: [Hub] LogLevel=loud: expected emerg, alert, crit, err, warning, notice, "
                     "info "
                     "or debug");
        expect_error("[Codes]\nSyncRetryMaxSec=5 fortnights\n", 2,
                     "test.conf:2: [Codes] SyncRetryMaxSec=5 fortnights: expected a duration such as 30, "
                     "30s, "
                     "5min, 2h or 7d");
        expect_error("[Bluetooth]\nAdapter=hci0 auto\n", 2,
                     "test.conf:2: [Bluetooth] Adapter=hci0 auto: 'auto' cannot be combined with adapter "
                     "names");
        expect_error("[Bluetooth]\nAdapter=usb0\n", 2,
                     "test.conf:2: [Bluetooth] Adapter=usb0: 'usb0' is not 'auto', hciN or a Bluetooth "
                     "address");
        expect_error("[Bluetooth]\nAdapter=hci0 hci0\n", 2,
                     "test.conf:2: [Bluetooth] Adapter=hci0 hci0: adapter 'hci0' listed twice");
        expect_error("[MQTT]\nPasswordFile=hunter2\n", 2,
                     "test.conf:2: [MQTT] PasswordFile=: must be an absolute path (value not shown)");
        expect_error("[Lock garage]\nUnlockCodeFile=123456\n", 2,
                     "test.conf:2: [Lock garage] UnlockCodeFile=: must be an absolute path (value not "
                     "shown)");
        expect_error("[MQTT]\nPassword=hunter2\n", 2,
                     "test.conf:2: [MQTT] Password=: secrets do not belong in this file, use PasswordFile= "
                     "or "
                     "the credential mqtt-password");
}

static void test_bad_syntax(void **state)
{
        char *long_line;

        expect_error("[Hub]\nName\n", 2, "test.conf:2: expected Key=value or [Section]");
        expect_error("# comment\nName=x\n", 2, "test.conf:2: key 'Name' outside of any section");
        expect_error("[Hub]\n=x\n", 2, "test.conf:2: missing key name before '='");
        expect_error("[Hub]\nName=caf\xC3\n", 2, "test.conf:2: line is not valid UTF-8");
        expect_error("[Hub]\nName=\xC0\xAF\n", 2, "test.conf:2: line is not valid UTF-8");
        expect_error("[Hub]\nName=a\tb\n", 2,
                     "test.conf:2: [Hub] Name=a\tb: must not contain control characters");

        {
                _cleanup_(conf_freep) Conf *c = NULL;
                _cleanup_(conf_diags_freep) ConfDiags *d = NULL;
                static const char nul[] = "[Hub]\nName=a\0b\n";

                assert_int_equal(conf_parse("test.conf", nul, sizeof nul - 1, &c, &d), -EINVAL);
                ASSERT_DIAGS(d, "test.conf:2: line contains a NUL byte");
        }

        long_line = malloc(CONF_LINE_MAX + 32);
        assert_non_null(long_line);
        strcpy(long_line, "[Hub]\n\nName=");
        memset(long_line + strlen(long_line), 'a', CONF_LINE_MAX);
        strcpy(long_line + strlen("[Hub]\n\nName=") + CONF_LINE_MAX, "\n");
        expect_error(long_line, 3, "test.conf:3: line longer than 4096 bytes");
        free(long_line);
}

static void test_all_errors_reported(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL;
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL;
        static const char text[] = "Stray=1\n"               /* 1 */
                                   "[Hub]\n"                 /* 2 */
                                   "LogLevel=chatty\n"       /* 3 */
                                   "[MQTT]\n"                /* 4 */
                                   "Port=70000\n"            /* 5 */
                                   "Bogus=1\n"               /* 6 */
                                   "TLS=perhaps\n"           /* 7 */
                                   "[Health\n"               /* 8 */
                                   "[Health]\n"              /* 9 */
                                   "BatteryLowPercent=abc\n" /* 10 */
                                   "oops\n"                  /* 11 */
                                   "[Store]\n"               /* 12 */
                                   "EventRetentionCount=-1"; /* 13, no final newline */
        static const unsigned lines[] = { 1, 3, 5, 6, 7, 8, 10, 11, 13 };

        assert_int_equal(parse(text, &c, &d), -EINVAL);
        assert_null(c);
        assert_int_equal(d->n_errors, 8);
        assert_int_equal(d->n_warnings, 1);
        assert_int_equal(d->n_items, ELEMENTSOF(lines));
        for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
                print_message("  %s\n", d->items[i].message);
                assert_int_equal(d->items[i].line, lines[i]);
                assert_int_equal(d->items[i].level, lines[i] == 6 ? CONF_DIAG_WARNING : CONF_DIAG_ERROR);
        }
        assert_string_equal(d->items[2].message,
                            "test.conf:5: [MQTT] Port=70000: value out of range 1..65535");
        assert_string_equal(d->items[8].message,
                            "test.conf:13: [Store] EventRetentionCount=-1: value out of range 0..100000000");
}

static void test_diag_limit(void **state)
{
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        assert_non_null(f);
        fputs("[Hub]\n", f);
        for (int i = 0; i < 500; i++)
                fputs("junk\n", f);
        fclose(f);
        assert_int_equal(conf_parse("test.conf", text, size, NULL, &d), -EINVAL);
        assert_int_equal(d->n_errors, 500);
        assert_int_equal(d->n_items, CONF_DIAGS_MAX);
        assert_string_equal(d->items[CONF_DIAGS_MAX - 1].message,
                            "test.conf: too many problems, not listing any more");
}

static void test_tls_warnings(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL, *c2 = NULL;
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL, *d2 = NULL;

        assert_int_equal(parse("[MQTT]\nCAFile=/etc/ssl/ca.pem\n", &c, &d), 0);
        ASSERT_DIAGS(d, "test.conf:2: [MQTT] CAFile= has no effect without TLS=yes");
        assert_int_equal(c->mqtt.port, 1883);

        assert_int_equal(parse("[MQTT]\nTLS=yes\nPort=8884\nTLSInsecure=yes\n", &c2, &d2), 0);
        ASSERT_DIAGS(d2, "test.conf:4: [MQTT] TLSInsecure=yes: the broker's certificate is not verified; "
                         "use this "
                         "for testing only");
        assert_int_equal(c2->mqtt.port, 8884);
}

static void test_missing_file(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL;
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL, *d2 = NULL;

        assert_int_equal(conf_read_file("/nonexistent/lockhub.conf", &c, &d), -ENOENT);
        assert_null(c);
        ASSERT_DIAGS(d,
                     "/nonexistent/lockhub.conf: cannot read configuration file: No such file or directory");
        assert_int_equal(conf_load("/nonexistent/lockhub.conf", &c), -ENOENT);
        assert_int_equal(conf_read_file("conf", &c, &d2), -EISDIR);
}

/* The shipped file parses cleanly, and every "#Key=value" line in it is the default:
 * uncommenting all of them changes nothing. */
static void test_shipped_conf(void **state)
{
        _cleanup_(conf_freep) Conf *c = NULL, *c2 = NULL, *u = NULL, *def = conf_new_defaults();
        _cleanup_(conf_diags_freep) ConfDiags *d = NULL, *du = NULL;
        _cleanup_free_ char *text = NULL, *a = NULL, *b = NULL;
        char line[1024];
        size_t size = 0, keys = 0;
        FILE *in, *out;

        assert_int_equal(conf_read_file(SHIPPED_CONF, &c, &d), 0);
        assert_int_equal(d->n_items, 0);
        assert_int_equal(conf_load(SHIPPED_CONF, &c2), 0);

        in = fopen(SHIPPED_CONF, "re");
        assert_non_null(in);
        out = open_memstream(&text, &size);
        assert_non_null(out);
        while (fgets(line, sizeof line, in)) {
                /* "#Key=value" (no space after #) is a commented-out setting. */
                if (line[0] == '#' && line[1] >= 'A' && line[1] <= 'Z' && strchr(line, '=')) {
                        fputs(line + 1, out);
                        keys++;
                } else
                        fputs(line, out);
        }
        fclose(in);
        fclose(out);
        print_message("  %zu commented-out keys\n", keys);
        assert_true(keys >= 50);

        assert_int_equal(conf_parse(SHIPPED_CONF, text, size, &u, &du), 0);
        for (size_t i = 0; i < du->n_items; i++)
                print_message("  %s\n", du->items[i].message);
        assert_int_equal(du->n_items, 0);
        assert_int_equal(conf_format(u, &a), 0);
        assert_int_equal(conf_format(def, &b), 0);
        assert_string_equal(a, b);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),          cmocka_unit_test(test_empty_is_defaults),
                cmocka_unit_test(test_valid_file),        cmocka_unit_test(test_format_round_trip),
                cmocka_unit_test(test_syntax_and_values), cmocka_unit_test(test_socket),
                cmocka_unit_test(test_bad_section),       cmocka_unit_test(test_unknown_key_is_warning),
                cmocka_unit_test(test_out_of_range),      cmocka_unit_test(test_bad_values),
                cmocka_unit_test(test_bad_syntax),        cmocka_unit_test(test_all_errors_reported),
                cmocka_unit_test(test_diag_limit),        cmocka_unit_test(test_tls_warnings),
                cmocka_unit_test(test_missing_file),      cmocka_unit_test(test_shipped_conf),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
