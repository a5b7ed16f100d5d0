/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Analytics over a lock's samples (contract in lockhub/health.h). Pure functions: arrays
 * in, numbers out, "now" passed in.
 *
 * Battery: the level a lock reports is coarse (Nuki: 2 % steps, or only "critical" on
 * old models), noisy with temperature, and sometimes wrong for one reading. A least-
 * squares line would follow every outlier, so the drain rate is the Theil–Sen slope
 * (median of all pairwise slopes), which ignores up to ~29 % of wild points. Only the
 * history since the last battery change counts (a rise of replaced_jump points or
 * more). "Abnormal" compares the recent slope with the slope before it, on the same
 * battery history: a lock that always drained 1 %/day is not abnormal; one that went
 * from 0.3 to 1.5 %/day after a firmware update or a door that started to stick is.
 *
 * Link and installation: medians and quantiles, counts per unit of time, and a
 * motor-duration trend (recent median against the earlier median, plus a Theil–Sen
 * slope for the evidence).
 */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/health.h"

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *) a, y = *(const double *) b;

        return (x > y) - (x < y);
}

double health_quantile(const double *v, size_t n, double q)
{
        double *c, pos, r;
        size_t i;

        if (n == 0)
                return NAN;
        c = malloc(n * sizeof *c);
        if (!c)
                return NAN;
        memcpy(c, v, n * sizeof *c);
        qsort(c, n, sizeof *c, cmp_double);
        q = q < 0 ? 0 : q > 1 ? 1 : q;
        pos = q * (double) (n - 1);
        i = (size_t) pos;
        r = i + 1 < n ? c[i] + (pos - (double) i) * (c[i + 1] - c[i]) : c[i];
        free(c);
        return r;
}

double health_median(const double *v, size_t n)
{
        return health_quantile(v, n, 0.5);
}

int health_theil_sen(const HealthPoint *p, size_t n, double *ret_slope_per_sec, double *ret_intercept)
{
        size_t stride = 1, m, k = 0, np;
        double *slopes, *icepts, slope, t0;
        const HealthPoint *sel[HEALTH_FIT_MAX_POINTS];

        if (n < 2)
                return -EDOM;
        if (n > HEALTH_FIT_MAX_POINTS)
                stride = (n + HEALTH_FIT_MAX_POINTS - 1) / HEALTH_FIT_MAX_POINTS;
        for (size_t i = 0, j = 0; i < n && j < HEALTH_FIT_MAX_POINTS; i += stride)
                sel[j++] = &p[i], k = j;
        np = k;
        m = np * (np - 1) / 2;
        slopes = malloc(m * sizeof *slopes);
        if (!slopes)
                return -ENOMEM;
        k = 0;
        for (size_t i = 0; i < np; i++)
                for (size_t j = i + 1; j < np; j++) {
                        if (sel[j]->t_usec == sel[i]->t_usec)
                                continue;
                        slopes[k++] = (sel[j]->v - sel[i]->v) /
                                      (((double) sel[j]->t_usec - (double) sel[i]->t_usec) / 1e6);
                }
        if (k == 0) {
                free(slopes);
                return -EDOM;
        }
        slope = health_median(slopes, k);
        free(slopes);

        icepts = malloc(np * sizeof *icepts);
        if (!icepts)
                return -ENOMEM;
        t0 = (double) sel[0]->t_usec;
        for (size_t i = 0; i < np; i++)
                icepts[i] = sel[i]->v - slope * (((double) sel[i]->t_usec - t0) / 1e6);
        if (ret_intercept)
                *ret_intercept = health_median(icepts, np);
        free(icepts);
        if (ret_slope_per_sec)
                *ret_slope_per_sec = slope;
        return 0;
}

/* ---- battery ------------------------------------------------------------------------------ */

/* The level fell this much between the first and the last few readings (medians, so
 * one wild reading does not count). */
static double level_fall(const HealthPoint *p, size_t n)
{
        double first[3], last[3];
        size_t k = MIN(n, ELEMENTSOF(first));

        for (size_t i = 0; i < k; i++) {
                first[i] = p[i].v;
                last[i] = p[n - k + i].v;
        }
        return health_median(first, k) - health_median(last, k);
}

/* Drain in %/day (positive while draining) of p[0..n) if there is enough evidence: the
 * readings span at least min_span, or they fell by HEALTH_FIT_FALL points or more over at
 * least HEALTH_FIT_FALL_POINTS readings (a drain that fast is measurable at once, and
 * is exactly the one that must not wait half a day to be noticed). */
static bool drain_rate(const HealthPoint *p, size_t n, uint64_t min_span, double *ret)
{
        double slope;

        if (n < 3)
                return false;
        if (p[n - 1].t_usec - p[0].t_usec < min_span &&
            (n < HEALTH_FIT_FALL_POINTS || level_fall(p, n) < HEALTH_FIT_FALL))
                return false;
        if (health_theil_sen(p, n, &slope, NULL) < 0)
                return false;
        *ret = -slope * 86400.0;
        return true;
}

void health_battery_analyze(const HealthPoint *pct, size_t n, uint64_t now_usec,
                            const HealthBatteryParams *params, HealthBatteryStats *ret)
{
        HealthBatteryParams p = *params;
        size_t start = 0, split;
        double intercept, slope;

        *ret = (HealthBatteryStats){ .days_left = -1 };
        if (p.min_span_usec == 0)
                p.min_span_usec = 12 * HEALTH_USEC_PER_HOUR;
        if (p.recent_usec == 0)
                p.recent_usec = 3 * HEALTH_USEC_PER_DAY;
        if (p.replaced_jump <= 0)
                p.replaced_jump = 15;
        if (p.abnormal_factor <= 0)
                p.abnormal_factor = 2.0;
        if (p.abnormal_floor_per_day <= 0)
                p.abnormal_floor_per_day = 0.5;
        if (n == 0)
                return;

        ret->has_level = true;
        ret->level = pct[n - 1].v;
        ret->level_usec = pct[n - 1].t_usec;

        /* The window, then the last battery change inside it: a step up between the
         * median of the few readings before and the few from here on, so a single wild
         * reading (high or low) is not a change. */
        while (start < n && p.window_usec > 0 && now_usec > p.window_usec &&
               pct[start].t_usec < now_usec - p.window_usec)
                start++;
        if (start >= n)
                return;
        for (size_t i = start + 1; i + 1 < n; i++) {
                double before[5], after[3];
                size_t nb = 0, na = 0;

                for (size_t j = i; j > start && nb < ELEMENTSOF(before); j--)
                        before[nb++] = pct[j - 1].v;
                for (size_t j = i; j < n && na < ELEMENTSOF(after); j++)
                        after[na++] = pct[j].v;
                if (health_median(after, na) - health_median(before, nb) >= p.replaced_jump) {
                        ret->replaced = true;
                        ret->replaced_usec = pct[i].t_usec;
                        start = i;
                }
        }
        ret->n_fit = n - start;
        if (!drain_rate(pct + start, n - start, p.min_span_usec, &ret->drain_per_day))
                return;
        ret->has_rate = true;

        /* Days left from the fitted line, not the last (noisy) reading. */
        if (health_theil_sen(pct + start, n - start, &slope, &intercept) >= 0 && ret->drain_per_day > 0.01) {
                double t = ((double) now_usec - (double) pct[start].t_usec) / 1e6;
                double level_now = intercept + slope * t;
                level_now = level_now < 0 ? 0 : level_now > 100 ? 100 : level_now;
                ret->days_left = level_now / ret->drain_per_day;
        }

        /* Recent against this battery's own baseline. */
        split = start;
        while (split < n && now_usec > p.recent_usec && pct[split].t_usec < now_usec - p.recent_usec)
                split++;
        if (split - start >= 3 && n - split >= 3 &&
            drain_rate(pct + start, split - start + 1, p.min_span_usec, &ret->baseline_per_day) &&
            drain_rate(pct + split, n - split, p.min_span_usec / 2, &ret->recent_per_day)) {
                ret->has_baseline = true;
                ret->abnormal = ret->recent_per_day >= p.abnormal_floor_per_day &&
                                ret->recent_per_day > p.abnormal_factor * MAX(ret->baseline_per_day, 0.05);
        }
}

/* ---- link ---------------------------------------------------------------------------------- */

static size_t values_since(const HealthPoint *p, size_t n, uint64_t since, double **ret)
{
        size_t k = 0;

        *ret = n ? malloc(n * sizeof **ret) : NULL;
        if (!*ret)
                return 0;
        for (size_t i = 0; i < n; i++)
                if (p[i].t_usec >= since)
                        (*ret)[k++] = p[i].v;
        return k;
}

static unsigned count_since(const HealthPoint *p, size_t n, uint64_t since)
{
        unsigned k = 0;

        for (size_t i = 0; i < n; i++)
                if (p[i].t_usec >= since)
                        k++;
        return k;
}

void health_link_analyze(const HealthLinkInput *in, uint64_t now_usec, HealthLinkStats *ret)
{
        double *v = NULL;
        size_t k;
        uint64_t span;

        *ret = (HealthLinkStats){
                .rssi_median = NAN,
                .rssi_min = NAN,
                .rssi_spread = NAN,
                .connect_success_rate = -1,
                .connect_ms_median = NAN,
                .latency_p50 = NAN,
                .latency_p90 = NAN,
                .latency_p99 = NAN,
        };

        k = values_since(in->rssi, in->n_rssi, in->since_usec, &v);
        if (k > 0) {
                ret->n_rssi = k;
                ret->rssi_median = health_median(v, k);
                ret->rssi_min = health_quantile(v, k, 0);
                ret->rssi_spread = health_quantile(v, k, 0.9) - health_quantile(v, k, 0.1);
        }
        free(v);

        k = values_since(in->connect_ms, in->n_connect_ms, in->since_usec, &v);
        ret->connects = (unsigned) k;
        if (k > 0)
                ret->connect_ms_median = health_median(v, k);
        free(v);
        ret->connect_failures = count_since(in->connect_failed, in->n_connect_failed, in->since_usec);
        if (ret->connects + ret->connect_failures > 0)
                ret->connect_success_rate =
                                (double) ret->connects / (double) (ret->connects + ret->connect_failures);

        k = values_since(in->latency_ms, in->n_latency, in->since_usec, &v);
        if (k > 0) {
                ret->n_latency = k;
                ret->latency_p50 = health_quantile(v, k, 0.5);
                ret->latency_p90 = health_quantile(v, k, 0.9);
                ret->latency_p99 = health_quantile(v, k, 0.99);
        }
        free(v);

        for (size_t i = 0; i < in->n_lost; i++)
                if (in->lost_usec[i] >= in->since_usec)
                        ret->lost++;
        span = now_usec > in->since_usec ? now_usec - in->since_usec : 0;
        if (span >= HEALTH_USEC_PER_HOUR / 60)
                ret->lost_per_hour = (double) ret->lost / ((double) span / (double) HEALTH_USEC_PER_HOUR);

        ret->ever_seen = in->last_seen_usec > 0;
        if (ret->ever_seen && now_usec > in->last_seen_usec)
                ret->not_seen_usec = now_usec - in->last_seen_usec;
}

/* ---- installation ------------------------------------------------------------------------- */

void health_install_analyze(const HealthInstallInput *in, uint64_t now_usec, HealthInstallStats *ret)
{
        uint64_t since = in->window_usec > 0 && now_usec > in->window_usec ? now_usec - in->window_usec : 0;
        double *v;
        size_t k;

        *ret = (HealthInstallStats){
                .motor_median_ms = NAN,
                .motor_recent_median_ms = NAN,
                .motor_baseline_median_ms = NAN,
                .motor_trend_ms_per_day = NAN,
                .uncalibrated = in->uncalibrated,
        };

        for (size_t i = 0; i < in->n_jams; i++)
                if (in->jam_usec[i] >= since) {
                        ret->jams++;
                        ret->last_jam_usec = MAX(ret->last_jam_usec, in->jam_usec[i]);
                }
        if (ret->jams > 0) {
                uint64_t span = now_usec - since;
                ret->jams_per_week = (double) ret->jams * 7.0 * (double) HEALTH_USEC_PER_DAY /
                                     (double) MAX(span, 1u);
        }
        for (size_t i = 0; i < in->n_door_open_locked; i++)
                if (in->door_open_locked_usec[i] >= since) {
                        ret->door_open_locked++;
                        ret->last_door_open_locked_usec =
                                        MAX(ret->last_door_open_locked_usec, in->door_open_locked_usec[i]);
                }

        k = values_since(in->motor_ms, in->n_motor, since, &v);
        ret->n_motor = k;
        if (k > 0)
                ret->motor_median_ms = health_median(v, k);
        /* Recent quarter (at least 3 actions) against what came before it. */
        if (k >= 8) {
                size_t recent = MAX(k / 4, (size_t) 3);
                ret->motor_baseline_median_ms = health_median(v, k - recent);
                ret->motor_recent_median_ms = health_median(v + (k - recent), recent);
                ret->motor_slowing = ret->motor_recent_median_ms >= 1.3 * ret->motor_baseline_median_ms &&
                                     ret->motor_recent_median_ms - ret->motor_baseline_median_ms >= 150;
        }
        free(v);
        {
                size_t first = 0;
                double slope;
                while (first < in->n_motor && in->motor_ms[first].t_usec < since)
                        first++;
                if (in->n_motor - first >= 3 &&
                    health_theil_sen(in->motor_ms + first, in->n_motor - first, &slope, NULL) >= 0)
                        ret->motor_trend_ms_per_day = slope * 86400.0;
        }
}
