/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Diagnosis: findings and their order for typical faults, the text and JSON a person
 * reads, the history read back from a real store, recovery attempts recorded in it, and
 * the journal catalog (every MESSAGE_ID has exactly one entry, and journalctl accepts
 * the file when it is installed here). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <json-c/json.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

#include "lockhub/health.h"
#include "lockhub/log.h"
#include "lockhub/manager-health.h"
#include "lockhub/message-id.h"

#define HOUR HEALTH_USEC_PER_HOUR
#define DAY  HEALTH_USEC_PER_DAY
#define NOW  (1764000000ULL * HEALTH_USEC_PER_SEC)

static Conf *conf;

static const char known_json[] = "{ \"format\": 1, \"models\": [ { \"model\": \"Nuki Smart Lock 3.0\", "
                                 "\"latest\": \"3.6.9\", \"known_bad\": [ { \"version\": \"3.5.1\", "
                                 "\"reason\": \"drains the battery\" } ] } ] }";

static HealthKnownFirmware *known(void)
{
        HealthKnownFirmware *k = NULL;

        assert_int_equal(health_known_firmware_parse(known_json, sizeof known_json - 1, &k, NULL), 0);
        return k;
}

static void base_input(HealthDiagnoseInput *in)
{
        *in = (HealthDiagnoseInput){
                .lock = "front",
                .model = "Nuki Smart Lock 3.0",
                .firmware = "3.6.9",
                .conf = &conf->health,
                .now_usec = NOW,
                .link = { .since_usec = NOW - DAY, .last_seen_usec = NOW - 10 * HEALTH_USEC_PER_SEC },
                .install = { .window_usec = 7 * DAY },
        };
}

static const char *ids(const HealthReport *r)
{
        static char buf[512];
        size_t n = 0;

        buf[0] = 0;
        for (size_t i = 0; i < r->n_findings; i++)
                n += (size_t) snprintf(buf + n, sizeof buf - n, "%s%s", i ? "," : "",
                                       health_finding_id_to_string(r->findings[i].id));
        return buf;
}

static void test_healthy(void **state)
{
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = known();
        _cleanup_(health_report_freep) HealthReport *r = NULL;
        _cleanup_free_ char *text = NULL;
        LockBattery b = { .percent = 80, .keypad_critical = -1, .door_sensor_critical = -1 };
        HealthDiagnoseInput in;

        base_input(&in);
        in.battery = &b;
        in.known_firmware = k;
        assert_int_equal(health_diagnose(&in, &r), 0);
        assert_int_equal(r->n_findings, 0);
        assert_string_equal(health_report_headline(r), "ok");
        assert_false(health_report_problem(r));
        assert_int_equal(r->firmware_verdict, HEALTH_FIRMWARE_CURRENT);
        assert_int_equal(health_report_to_text(r, &text), 0);
        assert_string_equal(text, "front (Nuki Smart Lock 3.0, firmware 3.6.9): no problem found\n");
}

/* A reset lock with a low battery and old firmware: the pairing first, firmware last. */
static void test_needs_repair_first(void **state)
{
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = known();
        _cleanup_(health_report_freep) HealthReport *r = NULL;
        _cleanup_free_ char *text = NULL;
        LockBattery b = { .percent = 20, .keypad_critical = 1, .door_sensor_critical = -1 };
        HealthDiagnoseInput in;
        json_object *j, *f, *v;

        base_input(&in);
        in.battery = &b;
        in.needs_repair = true;
        in.firmware = "3.2.0";
        in.known_firmware = k;
        assert_int_equal(health_diagnose(&in, &r), 0);
        assert_string_equal(ids(r), "needs-repair,battery-low,accessory-battery,firmware-outdated");
        assert_string_equal(health_report_headline(r), "needs-repair");
        assert_true(health_report_problem(r));
        assert_int_equal(health_report_worst(r), HEALTH_SEVERITY_CRITICAL);
        assert_non_null(strstr(r->findings[0].next_step, "lockhubctl pair front"));
        assert_string_equal(r->findings[1].title, "Battery low: 20 %");
        assert_string_equal(r->findings[3].title, "Firmware 3.2.0 is older than 3.6.9");

        assert_int_equal(health_report_to_text(r, &text), 0);
        assert_non_null(strstr(text, "front (Nuki Smart Lock 3.0, firmware 3.2.0): needs attention\n"));
        assert_non_null(strstr(
                        text, "\n1. [critical] The lock no longer accepts the hub's pairing (needs-repair)\n"
                              "   Evidence: "));
        assert_non_null(strstr(text,
                               "\n4. [info] Firmware 3.2.0 is older than 3.6.9 (firmware-outdated)\n"));

        j = health_report_to_json(r);
        assert_non_null(j);
        assert_true(json_object_object_get_ex(j, "findings", &f));
        assert_int_equal(json_object_array_length(f), 4);
        v = json_object_object_get(json_object_array_get_idx(f, 0), "message_id");
        assert_string_equal(json_object_get_string(v), LOCKHUB_MESSAGE_NEEDS_REPAIR);
        assert_string_equal(json_object_get_string(json_object_object_get(j, "health")), "needs-repair");
        assert_true(json_object_get_boolean(json_object_object_get(j, "problem")));
        v = json_object_object_get(j, "firmware_check");
        assert_string_equal(json_object_get_string(json_object_object_get(v, "latest")), "3.6.9");
        assert_string_equal(json_object_get_string(json_object_object_get(v, "verdict")), "older");
        json_object_put(j);
}

/* Silent for an hour with a battery that was already low: probably empty, first. */
static void test_not_seen_dead_battery(void **state)
{
        _cleanup_(health_report_freep) HealthReport *r = NULL;
        HealthPoint pct[20];
        HealthDiagnoseInput in;

        base_input(&in);
        for (int i = 0; i < 20; i++)
                pct[i] = (HealthPoint){ NOW - 2 * HOUR - (uint64_t) (19 - i) * DAY, 40.0 - 1.5 * i };
        in.battery_pct = pct;
        in.n_battery_pct = 20;
        in.link.last_seen_usec = NOW - 2 * HOUR;
        assert_int_equal(health_diagnose(&in, &r), 0);
        assert_string_equal(ids(r), "not-seen,battery-low");
        assert_string_equal(r->findings[0].title, "Not seen for 2.0 hours");
        assert_non_null(strstr(r->findings[0].evidence, "probably empty"));
        assert_non_null(strstr(r->findings[0].next_step, "Replace the batteries"));
        assert_float_equal(r->battery.drain_per_day, 1.5, 0.01);
        assert_non_null(strstr(r->findings[1].evidence, "1.50 %/day"));
}

/* Drain that jumped on the same batteries, right after a firmware update: both said. */
static void test_abnormal_drain_after_update(void **state)
{
        _cleanup_(health_report_freep) HealthReport *r = NULL;
        HealthPoint pct[40];
        HealthDiagnoseInput in;
        size_t n = 0;

        base_input(&in);
        for (int i = 0; i <= 20; i++)
                pct[n++] = (HealthPoint){ NOW - 23 * DAY + (uint64_t) i * DAY, 95.0 - 0.3 * i };
        for (int i = 1; i <= 12; i++)
                pct[n++] = (HealthPoint){ NOW - 3 * DAY + (uint64_t) i * 6 * HOUR, 89.0 - 0.75 * i };
        in.battery_pct = pct;
        in.n_battery_pct = n;
        in.firmware_changed_usec = NOW - 3 * DAY;
        in.firmware_previous = "3.6.8";
        assert_int_equal(health_diagnose(&in, &r), 0);
        assert_string_equal(ids(r), "battery-drain-abnormal");
        assert_non_null(strstr(r->findings[0].evidence, "The firmware changed from 3.6.8 to 3.6.9 at "));
        assert_non_null(strstr(r->findings[0].next_step, "lockhubctl calibrate front"));
}

/* A lock the ladder gave up on: the summary of what was tried is in the evidence. */
static void test_recovery_exhausted(void **state)
{
        _cleanup_(health_report_freep) HealthReport *r = NULL;
        _cleanup_free_ char *text = NULL;
        HealthTried t[] = {
                { NOW - 300 * HEALTH_USEC_PER_SEC, HEALTH_STEP_RETRY, HEALTH_OUTCOME_FAILURE, 1, 800000,
                  NULL },
                { NOW - 290 * HEALTH_USEC_PER_SEC, HEALTH_STEP_RETRY, HEALTH_OUTCOME_FAILURE, 2, 900000,
                  NULL },
                { NOW - 280 * HEALTH_USEC_PER_SEC, HEALTH_STEP_RECONNECT, HEALTH_OUTCOME_FAILURE, 1, 4000000,
                  (char *) "hci0" },
                { NOW - 270 * HEALTH_USEC_PER_SEC, HEALTH_STEP_POWER_CYCLE, HEALTH_OUTCOME_SKIPPED, 1, 0,
                  NULL },
                { NOW - 260 * HEALTH_USEC_PER_SEC, HEALTH_STEP_REMOVE_DEVICE, HEALTH_OUTCOME_FAILURE, 1,
                  9000000, (char *) "hci0" },
        };
        HealthLadderStatus ls = { .state = HEALTH_LADDER_GAVE_UP,
                                  .reason = "every recovery step was tried (4)" };
        HealthDiagnoseInput in;

        base_input(&in);
        in.tried = t;
        in.n_tried = ELEMENTSOF(t);
        in.ladder = &ls;
        assert_int_equal(health_diagnose(&in, &r), 0);
        assert_string_equal(ids(r), "recovery-exhausted");
        assert_non_null(strstr(r->findings[0].evidence,
                               "The hub already tried: retry ×2 (failed), reconnect "
                               "(failed), device-remove (failed)."));
        assert_int_equal(health_report_to_text(r, &text), 0);
        assert_non_null(strstr(text, "What the hub tried:\n"));
        assert_non_null(strstr(text, "device-remove        #1  failure  9.0 s  hci0\n"));

        /* the same history, but the lock works again: no finding */
        health_report_free(TAKE_PTR(r));
        ls.state = HEALTH_LADDER_IDLE;
        assert_int_equal(health_diagnose(&in, &r), 0);
        assert_int_equal(r->n_findings, 0);
        assert_int_equal(r->n_tried, ELEMENTSOF(t));
}

/* ---- from a real store ---- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(p);
}

static void test_from_store(void **state)
{
        char dir[] = "/tmp/test-health-XXXXXX";
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = known();
        _cleanup_(health_report_freep) HealthReport *r = NULL;
        _cleanup_free_ char *text = NULL;
        struct store_lock sl;
        struct store_event e;
        Store *s = NULL;
        int64_t id;
        uint64_t now = NOW;
        static const char *const state_seq[] = { "locked", "jammed",   "unlocked", "jammed", "locked",
                                                 "jammed", "unlocked", "jammed",   "locked" };

        assert_non_null(mkdtemp(dir));
        assert_int_equal(store_open(dir, &s), 0);
        store_lock_init(&sl);
        sl.name = (char *) "front";
        sl.address = (char *) "AA:BB:CC:DD:EE:01";
        sl.model = (char *) "Nuki Smart Lock 3.0";
        sl.firmware = (char *) "3.5.1";
        sl.last_seen_usec = now - 60 * HEALTH_USEC_PER_SEC;
        sl.last_state = (char *) "{\"state\":\"locked\",\"door\":\"closed\",\"battery\":{\"percent\":22,"
                                 "\"critical\":false}}";
        id = store_lock_add(s, &sl);
        assert_true(id > 0);

        for (int i = 0; i < 15; i++) /* 2 %/day down to 22 % */
                assert_true(store_sample_append(s, id, "battery-percent", now - (uint64_t) (14 - i) * DAY,
                                                50 - 2 * i) > 0);
        for (int i = 0; i < 30; i++)
                assert_true(store_sample_append(s, id, "rssi", now - (uint64_t) i * 10 * HEALTH_USEC_PER_MIN,
                                                -93 + i % 3) > 0);
        /* four jams in the last week, among ordinary state changes; the door opened once
         * while locked */
        for (size_t i = 0; i < ELEMENTSOF(state_seq); i++) {
                char d[96];
                snprintf(d, sizeof d, "{\"from\":\"unknown\",\"to\":\"%s\"}", state_seq[i]);
                store_event_init(&e);
                e.lock_id = id;
                e.ts_usec = now - 5 * DAY + i * HOUR;
                e.kind = (char *) "state";
                e.source = (char *) "lock";
                e.detail = d;
                assert_true(store_event_append(s, &e, NULL) >= 0);
        }
        store_event_init(&e);
        e.lock_id = id;
        e.ts_usec = now - 5 * DAY + 8 * HOUR + 60 * HEALTH_USEC_PER_SEC;
        e.kind = (char *) "door";
        e.source = (char *) "lock";
        e.detail = (char *) "{\"from\":\"closed\",\"to\":\"open\"}";
        assert_true(store_event_append(s, &e, NULL) >= 0);

        /* what the ladder did, recorded as the daemon records it */
        HealthAttempt a = {
                .lock = "front",
                .adapter = "hci0",
                .step = HEALTH_STEP_RECONNECT,
                .attempt = 1,
                .outcome = HEALTH_OUTCOME_SUCCESS,
                .start_usec = now - HOUR,
                .duration_usec = 2500000,
                .reason = "retrying did not help",
        };
        assert_int_equal(health_attempt_store(s, id, &a), 0);
        {
                struct store_event *ev = NULL;
                size_t n = 0;
                struct store_event_filter f = { .lock_id = id, .kind = "recovery" };
                assert_int_equal(store_event_list(s, &f, &ev, &n), 0);
                assert_int_equal(n, 1);
                assert_non_null(strstr(ev[0].detail, "\"step\":\"reconnect\""));
                assert_non_null(strstr(ev[0].detail, "\"outcome\":\"success\""));
                store_event_array_free(ev, n);
        }

        assert_int_equal(health_diagnose_lock(s, conf, k, id, NULL, NULL, now, &r), 0);
        assert_string_equal(ids(r), "jams,battery-low,firmware-known-bad,signal-weak,door-open-locked");
        assert_int_equal(r->install.jams, 4);
        assert_float_equal(r->battery.drain_per_day, 2.0, 0.01);
        assert_float_equal(r->battery.days_left, 11, 0.5);
        assert_float_equal(r->link.rssi_median, -92, 0);
        assert_int_equal(r->n_tried, 1);
        assert_string_equal(r->tried[0].adapter, "hci0");
        assert_int_equal(r->tried[0].step, HEALTH_STEP_RECONNECT);
        assert_non_null(strstr(r->findings[0].next_step, "lockhubctl calibrate front"));
        assert_non_null(strstr(r->findings[2].evidence, "drains the battery"));
        assert_int_equal(health_report_to_text(r, &text), 0);
        assert_non_null(strstr(text, "reconnect            #1  success  2.5 s  hci0\n"));
        {
                uint32_t mask = health_report_log(r, 0);
                assert_int_equal(mask, (1u << HEALTH_FINDING_JAMS) | (1u << HEALTH_FINDING_BATTERY_LOW) |
                                                       (1u << HEALTH_FINDING_FIRMWARE_BAD) |
                                                       (1u << HEALTH_FINDING_SIGNAL_WEAK) |
                                                       (1u << HEALTH_FINDING_DOOR_OPEN_LOCKED));
                assert_int_equal(health_report_log(r, mask), mask); /* nothing new: silent */
        }

        store_free(s);
        assert_int_equal(nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS), 0);
}

/* The configuration in a support bundle: values of secret-looking keys are gone, paths
 * to files holding secrets and everything else stay. */
static void test_redact_conf(void **state)
{
        _cleanup_free_ char *out = NULL;
        const char *in = "[MQTT]\nHost=broker\nUsername=hub\nPassword=hunter2\nPasswordFile=/etc/pw\n"
                         "# Password=commented\nKeepaliveSec=60\nUnlockCode = 1234\nApiToken=abc\n"
                         "PrivateKey=xyz\nRequireUnlockCode=yes\n[Lock "
                         "front]\nUnlockCodeFile=/etc/code\nSecurityPin=9999";

        assert_int_equal(manager_health_redact_conf(in, &out), 0);
        assert_string_equal(
                        out,
                        "[MQTT]\nHost=broker\nUsername=hub\nPassword=(redacted)\nPasswordFile=/etc/pw\n"
                        "# Password=commented\nKeepaliveSec=60\nUnlockCode =(redacted)\n"
                        "ApiToken=(redacted)\nPrivateKey=(redacted)\nRequireUnlockCode=yes\n[Lock front]\n"
                        "UnlockCodeFile=/etc/code\nSecurityPin=(redacted)\n");
}

/* ---- the journal catalog ---- */

static char *read_all(const char *path)
{
        FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;
        FILE *m;
        int c;

        assert_non_null(f);
        m = open_memstream(&buf, &size);
        assert_non_null(m);
        while ((c = fgetc(f)) != EOF)
                fputc(c, m);
        fclose(f);
        fclose(m);
        return buf;
}

/* Every 32-hex string in quotes in the header is an id. */
static size_t header_ids(char ids_out[][33], size_t max)
{
        _cleanup_free_ char *h = read_all("include/lockhub/message-id.h");
        regex_t re;
        regmatch_t m[2];
        const char *p = h;
        size_t n = 0;

        assert_int_equal(regcomp(&re, "\"([0-9a-f]{32})\"", REG_EXTENDED), 0);
        while (n < max && regexec(&re, p, 2, m, 0) == 0) {
                memcpy(ids_out[n], p + m[1].rm_so, 32);
                ids_out[n++][32] = 0;
                p += m[0].rm_eo;
        }
        regfree(&re);
        return n;
}

static void test_catalog(void **state)
{
        _cleanup_free_ char *cat = read_all("systemd/lockhub.catalog");
        char hids[64][33], cids[64][33];
        size_t nh = header_ids(hids, 64), nc = 0;
        char *line, *save = NULL;
        bool in_header = false, subject = false, defined_by = false;

        assert_true(nh >= 20);
        for (line = strtok_r(cat, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (strneq(line, "-- ", 3)) {
                        if (nc > 0)
                                assert_true(subject && defined_by);
                        assert_int_equal(strlen(line), 3 + 32);
                        assert_int_equal(strspn(line + 3, "0123456789abcdef"), 32);
                        assert_true(nc < 64);
                        memcpy(cids[nc], line + 3, 33);
                        for (size_t i = 0; i < nc; i++)
                                assert_string_not_equal(cids[i], cids[nc]);
                        nc++;
                        in_header = true;
                        subject = defined_by = false;
                        continue;
                }
                if (line[0] == '#' || !in_header)
                        continue;
                /* strtok_r skips empty lines: the header ends at the first line without a
                 * known key, which is the explanation. */
                if (strneq(line, "Subject: ", 9))
                        subject = true;
                else if (strneq(line, "Defined-By: lockhub", 19))
                        defined_by = true;
                else if (strneq(line, "Documentation: ", 15))
                        assert_true(strneq(line + 15, "man:", 4));
                else
                        in_header = false;
        }
        assert_true(subject && defined_by);
        assert_int_equal(nc, nh);
        for (size_t i = 0; i < nh; i++) {
                bool found = false;
                for (size_t j = 0; j < nc; j++)
                        found = found || streq(hids[i], cids[j]);
                assert_true(found);
        }

        /* ids that the code logs are among them */
        for (int i = 0; i < _HEALTH_FINDING_MAX; i++)
                assert_int_equal(strlen(health_finding_message_id((HealthFindingId) i)), 32);
        for (int s = 0; s < _HEALTH_STEP_MAX; s++)
                for (int o = 0; o < _HEALTH_OUTCOME_MAX; o++) {
                        const char *id = health_attempt_message_id((HealthStep) s, (HealthOutcome) o);
                        bool found = false;
                        for (size_t j = 0; j < nc; j++)
                                found = found || streq(id, cids[j]);
                        assert_true(found);
                }
}

/* journalctl itself accepts the file (when journalctl is installed). */
static void test_catalog_journalctl(void **state)
{
        char dir[] = "/tmp/test-catalog-XXXXXX", cmd[1024];
        FILE *p;
        unsigned lines = 0;
        char buf[512];

        if (system("command -v journalctl >/dev/null 2>&1") != 0) {
                skip();
                return;
        }
        assert_non_null(mkdtemp(dir));
        snprintf(cmd, sizeof cmd,
                 "mkdir -p %1$s/usr/lib/systemd/catalog %1$s/var/lib/systemd/catalog && "
                 "cp systemd/lockhub.catalog %1$s/usr/lib/systemd/catalog/ && "
                 "journalctl --update-catalog --root=%1$s 2>&1",
                 dir);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd, "journalctl --root=%s --list-catalog 2>&1", dir);
        p = popen(cmd, "r");
        assert_non_null(p);
        while (fgets(buf, sizeof buf, p))
                if (strstr(buf, " lockhub: "))
                        lines++;
        assert_int_equal(pclose(p), 0);
        {
                char hids[64][33];
                assert_int_equal(lines, header_ids(hids, 64));
        }
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
        setenv("TZ", "UTC", 1);
        tzset();
        conf = conf_new_defaults();
        return conf ? 0 : -1;
}

static int teardown(void **state)
{
        conf = conf_free(conf);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_healthy),
                cmocka_unit_test(test_needs_repair_first),
                cmocka_unit_test(test_not_seen_dead_battery),
                cmocka_unit_test(test_abnormal_drain_after_update),
                cmocka_unit_test(test_recovery_exhausted),
                cmocka_unit_test(test_from_store),
                cmocka_unit_test(test_redact_conf),
                cmocka_unit_test(test_catalog),
                cmocka_unit_test(test_catalog_journalctl),
        };

        log_set_max_level(LOG_WARNING);
        return cmocka_run_group_tests(tests, setup, teardown);
}
