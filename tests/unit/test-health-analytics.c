/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Analytics on synthetic series: robust drain rate under noise and outliers, days left,
 * battery changes, abnormal drain, link statistics, jam frequency, motor trend, and the
 * known-firmware file (the shipped one must parse). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "lockhub/health.h"

#define HOUR HEALTH_USEC_PER_HOUR
#define DAY  HEALTH_USEC_PER_DAY
#define T0   (1764000000ULL * HEALTH_USEC_PER_SEC)

static uint32_t rng = 12345;

/* Deterministic noise in [-a, a]. */
static double noise(double a)
{
        rng = rng * 1103515245u + 12345u;
        return ((double) ((rng >> 8) % 2001) / 1000.0 - 1.0) * a;
}

static void test_quantiles(void **state)
{
        double v[] = { 5, 1, 4, 2, 3 };

        assert_float_equal(health_median(v, 5), 3, 1e-9);
        assert_float_equal(health_quantile(v, 5, 0), 1, 1e-9);
        assert_float_equal(health_quantile(v, 5, 1), 5, 1e-9);
        assert_float_equal(health_quantile(v, 5, 0.25), 2, 1e-9);
        assert_float_equal(health_median(v, 4), 3, 1e-9); /* 5 1 4 2 → 1 2 4 5 → 3 */
        assert_true(isnan(health_median(v, 0)));
        assert_float_equal(v[0], 5, 0); /* the input is not reordered */
}

static void test_theil_sen(void **state)
{
        HealthPoint p[50];
        double slope, icept;

        for (int i = 0; i < 50; i++)
                p[i] = (HealthPoint){ T0 + (uint64_t) i * HOUR, 100.0 - 0.5 * i };
        /* a quarter of the points wildly wrong */
        for (int i = 0; i < 50; i += 4)
                p[i].v = i % 8 ? 0 : 100;
        assert_int_equal(health_theil_sen(p, 50, &slope, &icept), 0);
        assert_float_equal(slope * 3600.0, -0.5, 0.02);
        assert_float_equal(icept, 100.0, 1.0);
        assert_int_equal(health_theil_sen(p, 1, &slope, NULL), -EDOM);
        p[1].t_usec = p[0].t_usec;
        assert_int_equal(health_theil_sen(p, 2, &slope, NULL), -EDOM);
}

static void test_theil_sen_many_points(void **state)
{
        size_t n = 5000;
        HealthPoint *p = calloc(n, sizeof *p);
        double slope;

        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
                p[i] = (HealthPoint){ T0 + i * 60 * HEALTH_USEC_PER_SEC,
                                      80.0 - (double) i / 1440.0 + noise(2) };
        assert_int_equal(health_theil_sen(p, n, &slope, NULL), 0);
        assert_float_equal(slope * 86400.0, -1.0, 0.05);
        free(p);
}

/* 30 days at 1 %/day with ±2 % noise, Nuki's 2 % steps and a few absurd readings. */
static void test_battery_drain_noise_outliers(void **state)
{
        HealthPoint p[120];
        HealthBatteryStats s;
        HealthBatteryParams bp = { .window_usec = 30 * DAY };
        uint64_t now;
        size_t n = 0;

        for (int i = 0; i < 120; i++) {
                double v = 90.0 - (double) i * 0.25 + noise(2);
                p[n++] = (HealthPoint){ T0 + (uint64_t) i * 6 * HOUR, 2.0 * round(v / 2.0) };
        }
        p[17].v = 0;
        p[50].v = 100; /* one reading up is not a new battery */
        p[51].v = 3;
        p[90].v = 0;
        now = p[n - 1].t_usec + HOUR;
        health_battery_analyze(p, n, now, &bp, &s);
        assert_true(s.has_level);
        assert_true(s.has_rate);
        assert_false(s.replaced);
        assert_float_equal(s.drain_per_day, 1.0, 0.1);
        /* the fitted level is ~60.25 %: about 60 days left */
        assert_float_equal(s.days_left, 60, 6);
        assert_false(s.abnormal);
}

static void test_battery_replaced(void **state)
{
        HealthPoint p[60];
        HealthBatteryStats s;
        HealthBatteryParams bp = { .window_usec = 60 * DAY };
        size_t n = 0;

        for (int i = 0; i < 30; i++) /* old set: 40 → 11 at 1 %/day */
                p[n++] = (HealthPoint){ T0 + (uint64_t) i * DAY, 40.0 - i };
        for (int i = 0; i < 30; i++) /* new set: 100 at 0.5 %/day */
                p[n++] = (HealthPoint){ T0 + (uint64_t) (30 + i) * DAY, 100.0 - 0.5 * i };
        health_battery_analyze(p, n, p[n - 1].t_usec, &bp, &s);
        assert_true(s.replaced);
        assert_int_equal(s.replaced_usec, T0 + 30 * DAY);
        assert_int_equal(s.n_fit, 30);
        assert_float_equal(s.drain_per_day, 0.5, 0.01);
        assert_float_equal(s.days_left, 85.5 / 0.5, 2);
}

static void test_battery_abnormal(void **state)
{
        HealthPoint p[40];
        HealthBatteryStats s;
        HealthBatteryParams bp = { .window_usec = 30 * DAY };
        size_t n = 0;
        double v = 95;

        /* 20 days at 0.3 %/day, then 3 days at 3 %/day (a door that started to stick) */
        for (int i = 0; i <= 20; i++)
                p[n++] = (HealthPoint){ T0 + (uint64_t) i * DAY, v - 0.3 * i };
        v = p[n - 1].v;
        for (int i = 1; i <= 12; i++)
                p[n++] = (HealthPoint){ T0 + 20 * DAY + (uint64_t) i * 6 * HOUR, v - 0.75 * i };
        health_battery_analyze(p, n, p[n - 1].t_usec, &bp, &s);
        assert_true(s.has_baseline);
        assert_float_equal(s.baseline_per_day, 0.3, 0.1);
        assert_float_equal(s.recent_per_day, 3.0, 0.2);
        assert_true(s.abnormal);

        /* the same lock draining steadily at 1 %/day is not abnormal */
        n = 0;
        for (int i = 0; i <= 30; i++)
                p[n++] = (HealthPoint){ T0 + (uint64_t) i * DAY, 95.0 - i + noise(0.5) };
        health_battery_analyze(p, n, p[n - 1].t_usec, &bp, &s);
        assert_true(s.has_baseline);
        assert_false(s.abnormal);
}

static void test_battery_too_little_history(void **state)
{
        HealthPoint p[] = { { T0, 80 }, { T0 + HOUR, 78 }, { T0 + 2 * HOUR, 76 } };
        HealthBatteryStats s;
        HealthBatteryParams bp = { .window_usec = 30 * DAY };

        health_battery_analyze(p, 3, T0 + 3 * HOUR, &bp, &s);
        assert_true(s.has_level);
        assert_float_equal(s.level, 76, 0);
        assert_false(s.has_rate);
        assert_true(s.days_left < 0);
        health_battery_analyze(NULL, 0, T0, &bp, &s);
        assert_false(s.has_level);
}

/* A fall this steep is measurable in minutes; a small wobble over the same time is not. */
static void test_battery_fast_fall(void **state)
{
        HealthPoint p[10];
        HealthBatteryStats s;
        HealthBatteryParams bp = { .window_usec = 30 * DAY };
        size_t n = 0;

        for (int i = 0; i < 9; i++) /* 2 points a minute, in Nuki's 2 % steps: 60 → 44 */
                p[n++] = (HealthPoint){ T0 + (uint64_t) i * 60 * HEALTH_USEC_PER_SEC, 60.0 - 2.0 * i };
        health_battery_analyze(p, n, p[n - 1].t_usec, &bp, &s);
        assert_true(s.has_rate);
        assert_float_equal(s.drain_per_day, 2.0 * 1440, 1);
        assert_float_equal(s.days_left, 44.0 / 2880.0, 0.001);

        /* four readings are not enough, however steep */
        health_battery_analyze(p, 4, p[3].t_usec, &bp, &s);
        assert_false(s.has_rate);

        /* 80, 78, 80, 78, 76, 78, 76: no real fall, no rate before 12 h */
        n = 0;
        for (int i = 0; i < 7; i++)
                p[n++] = (HealthPoint){ T0 + (uint64_t) i * HOUR,
                                        (i % 2 ? 78.0 : 80.0) - (i >= 4 ? 2.0 : 0) };
        health_battery_analyze(p, n, p[n - 1].t_usec, &bp, &s);
        assert_false(s.has_rate);
}

static void test_link(void **state)
{
        HealthPoint rssi[100], conn[8], fail[2], lat[100];
        uint64_t lost[] = { T0 - 2 * DAY, T0 + HOUR, T0 + 2 * HOUR };
        HealthLinkStats s;
        uint64_t now = T0 + 24 * HOUR;

        for (int i = 0; i < 100; i++) {
                rssi[i] = (HealthPoint){ T0 + (uint64_t) i * 10 * HEALTH_USEC_PER_MIN, -70.0 - (i % 21) };
                lat[i] = (HealthPoint){ T0 + (uint64_t) i * 10 * HEALTH_USEC_PER_MIN, 100.0 + i };
        }
        for (int i = 0; i < 8; i++)
                conn[i] = (HealthPoint){ T0 + (uint64_t) i * HOUR, 800 };
        fail[0] = (HealthPoint){ T0 + HOUR, 1 };
        fail[1] = (HealthPoint){ T0 - 3 * DAY, 1 }; /* outside the window */

        HealthLinkInput in = {
                .rssi = rssi,
                .n_rssi = 100,
                .connect_ms = conn,
                .n_connect_ms = 8,
                .connect_failed = fail,
                .n_connect_failed = 2,
                .latency_ms = lat,
                .n_latency = 100,
                .lost_usec = lost,
                .n_lost = 3,
                .last_seen_usec = now - 40 * HEALTH_USEC_PER_MIN,
                .since_usec = T0,
        };
        health_link_analyze(&in, now, &s);
        assert_int_equal(s.n_rssi, 100);
        assert_float_equal(s.rssi_median, -80, 1);
        assert_float_equal(s.rssi_min, -90, 0);
        assert_int_equal(s.connects, 8);
        assert_int_equal(s.connect_failures, 1);
        assert_float_equal(s.connect_success_rate, 8.0 / 9.0, 1e-9);
        assert_float_equal(s.latency_p50, 149.5, 0.01);
        assert_float_equal(s.latency_p90, 189.1, 0.01);
        assert_float_equal(s.latency_p99, 198.01, 0.01);
        assert_int_equal(s.lost, 2);
        assert_float_equal(s.lost_per_hour, 2.0 / 24.0, 1e-9);
        assert_true(s.ever_seen);
        assert_int_equal(s.not_seen_usec, 40 * HEALTH_USEC_PER_MIN);

        HealthLinkInput empty = { .since_usec = T0 };
        health_link_analyze(&empty, now, &s);
        assert_int_equal(s.n_rssi, 0);
        assert_true(isnan(s.rssi_median));
        assert_true(s.connect_success_rate < 0);
        assert_false(s.ever_seen);
}

static void test_install(void **state)
{
        uint64_t now = T0 + 30 * DAY;
        uint64_t jams[] = { T0, T0 + DAY, now - 6 * DAY, now - 3 * DAY, now - 2 * DAY, now - HOUR };
        uint64_t door[] = { now - 5 * DAY };
        HealthPoint motor[40];
        HealthInstallStats s;

        for (int i = 0; i < 40; i++) /* 1.2 s, then the last 10 take 1.8 s */
                motor[i] = (HealthPoint){ now - 6 * DAY + (uint64_t) i * 3 * HOUR,
                                          i < 30 ? 1200 + noise(50) : 1800 };
        HealthInstallInput in = {
                .jam_usec = jams,
                .n_jams = 6,
                .motor_ms = motor,
                .n_motor = 40,
                .door_open_locked_usec = door,
                .n_door_open_locked = 1,
                .window_usec = 7 * DAY,
        };
        health_install_analyze(&in, now, &s);
        assert_int_equal(s.jams, 4);
        assert_float_equal(s.jams_per_week, 4.0, 1e-9);
        assert_int_equal(s.last_jam_usec, now - HOUR);
        assert_int_equal(s.door_open_locked, 1);
        assert_true(s.motor_slowing);
        assert_float_equal(s.motor_recent_median_ms, 1800, 0);
        assert_float_equal(s.motor_baseline_median_ms, 1200, 60);
        assert_true(s.motor_trend_ms_per_day > 0);
        assert_false(s.uncalibrated);

        for (int i = 0; i < 40; i++)
                motor[i].v = 1200 + noise(50);
        health_install_analyze(&in, now, &s);
        assert_false(s.motor_slowing);
}

static void test_version_compare(void **state)
{
        assert_true(health_version_compare("3.10.0", "3.9.2") > 0);
        assert_true(health_version_compare("3.6.9", "3.6.10") < 0);
        assert_int_equal(health_version_compare("2.12.4", "2.12.4"), 0);
        assert_int_equal(health_version_compare("1.2", "1.2.0"), 0);
        assert_true(health_version_compare("1.2", "1.2.1") < 0);
        assert_true(health_version_compare("4.0.0", "3.99.99") > 0);
        assert_true(health_version_compare("1.2.0-beta", "1.2.0") != 0);
}

static const char known[] =
                "{ \"format\": 1, \"models\": ["
                "{ \"model\": \"Nuki Smart Lock 3.0\", \"latest\": \"3.6.9\", \"minimum\": \"3.2.0\","
                "  \"known_bad\": [ { \"version\": \"3.5.1\", \"reason\": \"drains the battery\" } ] },"
                "{ \"model\": \"Nuki Smart Lock 2.0\", \"latest\": \"2.12.4\", \"x-future\": true } ] }";

static void test_known_firmware(void **state)
{
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = NULL;
        const char *latest, *reason;
        char *err = NULL;

        assert_int_equal(health_known_firmware_parse(known, sizeof known - 1, &k, &err), 0);
        assert_null(err);
        assert_int_equal(health_firmware_check(k, "Nuki Smart Lock 3.0", "3.6.9", &latest, &reason),
                         HEALTH_FIRMWARE_CURRENT);
        assert_string_equal(latest, "3.6.9");
        assert_int_equal(health_firmware_check(k, "Nuki Smart Lock 3.0", "3.6.10", NULL, NULL),
                         HEALTH_FIRMWARE_CURRENT);
        assert_int_equal(health_firmware_check(k, "Nuki Smart Lock 3.0", "3.4.0", NULL, NULL),
                         HEALTH_FIRMWARE_OLDER);
        assert_int_equal(health_firmware_check(k, "Nuki Smart Lock 3.0", "3.1.7", NULL, NULL),
                         HEALTH_FIRMWARE_OUTDATED);
        assert_int_equal(health_firmware_check(k, "Nuki Smart Lock 3.0", "3.5.1", &latest, &reason),
                         HEALTH_FIRMWARE_BAD);
        assert_string_equal(reason, "drains the battery");
        assert_int_equal(health_firmware_check(k, "Nuki Opener", "1.0.0", &latest, NULL),
                         HEALTH_FIRMWARE_UNKNOWN);
        assert_null(latest);
        assert_int_equal(health_firmware_check(k, "Nuki Smart Lock 2.0", NULL, NULL, NULL),
                         HEALTH_FIRMWARE_UNKNOWN);
        assert_int_equal(health_firmware_check(NULL, "Nuki Smart Lock 2.0", "2.0.0", NULL, NULL),
                         HEALTH_FIRMWARE_UNKNOWN);
}

static void test_known_firmware_errors(void **state)
{
        static const char *const bad[] = {
                "",
                "[]",
                "{ \"models\": [] }",
                "{ \"format\": 2, \"models\": [] }",
                "{ \"format\": 1, \"models\": {} }",
                "{ \"format\": 1, \"models\": [ { \"latest\": \"1.0\" } ] }",
                "{ \"format\": 1, \"models\": [ { \"model\": \"A\", \"latest\": \"one\" } ] }",
                "{ \"format\": 1, \"models\": [ { \"model\": \"A\" }, { \"model\": \"A\" } ] }",
                "{ \"format\": 1, \"models\": [ { \"model\": \"A\", \"known_bad\": [ {} ] } ] }",
                "{ \"format\": 1, \"models\": [ { \"model\": \"A\", \"known_bad\": [ 3 ] } ] }",
                "{ \"format\": 1, \"models\": [ 3 ] }",
                "{ \"format\": 1, \"models\": [ ",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                HealthKnownFirmware *k = NULL;
                char *err = NULL;
                assert_int_equal(health_known_firmware_parse(bad[i], strlen(bad[i]), &k, &err), -EINVAL);
                assert_null(k);
                assert_non_null(err);
                free(err);
        }
}

/* The file lockhub ships parses, and knows the models the Nuki driver names. */
static void test_shipped_known_firmware(void **state)
{
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = NULL;
        char *err = NULL;
        const char *latest;

        assert_int_equal(health_known_firmware_load("conf/known-firmware.json", &k, &err), 0);
        assert_null(err);
        assert_int_equal(health_firmware_check(k, "Nuki Smart Lock 3.0", "3.0.0", &latest, NULL),
                         HEALTH_FIRMWARE_OLDER);
        assert_non_null(latest);
        assert_int_equal(health_known_firmware_load("conf/no-such-file.json", &k, &err), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_quantiles),
                cmocka_unit_test(test_theil_sen),
                cmocka_unit_test(test_theil_sen_many_points),
                cmocka_unit_test(test_battery_drain_noise_outliers),
                cmocka_unit_test(test_battery_replaced),
                cmocka_unit_test(test_battery_abnormal),
                cmocka_unit_test(test_battery_too_little_history),
                cmocka_unit_test(test_battery_fast_fall),
                cmocka_unit_test(test_link),
                cmocka_unit_test(test_install),
                cmocka_unit_test(test_version_compare),
                cmocka_unit_test(test_known_firmware),
                cmocka_unit_test(test_known_firmware_errors),
                cmocka_unit_test(test_shipped_known_firmware),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
