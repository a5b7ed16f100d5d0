/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Diagnosis: the "my smart lock is not working" checklist, done from the hub's own
 * history (contract in lockhub/health.h).
 *
 * health_diagnose() is pure: it runs the analytics over what it is given and applies
 * one rule per finding. Each rule decides whether its finding applies, how severe it
 * is, and how likely it is to be *the* explanation of trouble, which orders the list:
 * a lock that rejects our key or has a critical battery explains almost anything, a
 * slightly old firmware explains little. Likelihoods are fixed per rule and nudged by
 * corroborating evidence (a silent lock whose battery was already low is probably dead,
 * not out of range). Every finding carries its numbers and a next step written for the
 * person at the door, not for a developer.
 *
 * health_diagnose_lock() gathers the inputs from the store (samples, events, recovery
 * attempts) and the live lock; the rendering functions turn a report into JSON (MQTT,
 * D-Bus, support bundle) and text (lockhubctl diagnose).
 */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/health.h"
#include "lockhub/log.h"
#include "lockhub/message-id.h"

#define LINK_WINDOW_USEC     (24 * HEALTH_USEC_PER_HOUR)
#define TRIED_WINDOW_USEC    (7 * HEALTH_USEC_PER_DAY)
#define TRIED_MAX            50U
#define MIN_RSSI_SAMPLES     5U
#define MIN_CONNECT_ATTEMPTS 5U
#define FAST_DRAIN_DAYS      30.0 /* a battery set that lasts less than a month is draining fast */

static const struct {
        const char *id;
        const char *message_id;
} finding_info[_HEALTH_FINDING_MAX] = {
        [HEALTH_FINDING_NEEDS_REPAIR] = { "needs-repair", LOCKHUB_MESSAGE_NEEDS_REPAIR },
        [HEALTH_FINDING_BATTERY_CRITICAL] = { "battery-critical", LOCKHUB_MESSAGE_BATTERY_CRITICAL },
        [HEALTH_FINDING_BATTERY_LOW] = { "battery-low", LOCKHUB_MESSAGE_BATTERY_LOW },
        [HEALTH_FINDING_BATTERY_DRAIN_FAST] = { "battery-drain-fast", LOCKHUB_MESSAGE_BATTERY_DRAIN_FAST },
        [HEALTH_FINDING_BATTERY_DRAIN_ABNORMAL] = { "battery-drain-abnormal",
                                                    LOCKHUB_MESSAGE_BATTERY_DRAIN_ABNORMAL },
        [HEALTH_FINDING_ACCESSORY_BATTERY] = { "accessory-battery", LOCKHUB_MESSAGE_ACCESSORY_BATTERY },
        [HEALTH_FINDING_NOT_SEEN] = { "not-seen", LOCKHUB_MESSAGE_NOT_SEEN },
        [HEALTH_FINDING_SIGNAL_WEAK] = { "signal-weak", LOCKHUB_MESSAGE_SIGNAL_WEAK },
        [HEALTH_FINDING_LINK_UNSTABLE] = { "link-unstable", LOCKHUB_MESSAGE_LINK_UNSTABLE },
        [HEALTH_FINDING_JAMS] = { "jams", LOCKHUB_MESSAGE_JAMS },
        [HEALTH_FINDING_MOTOR_SLOW] = { "motor-slow", LOCKHUB_MESSAGE_MOTOR_SLOW },
        [HEALTH_FINDING_DOOR_OPEN_LOCKED] = { "door-open-locked", LOCKHUB_MESSAGE_DOOR_OPEN_LOCKED },
        [HEALTH_FINDING_UNCALIBRATED] = { "uncalibrated", LOCKHUB_MESSAGE_UNCALIBRATED },
        [HEALTH_FINDING_FIRMWARE_BAD] = { "firmware-known-bad", LOCKHUB_MESSAGE_FIRMWARE_BAD },
        [HEALTH_FINDING_FIRMWARE_OUTDATED] = { "firmware-outdated", LOCKHUB_MESSAGE_FIRMWARE_OUTDATED },
        [HEALTH_FINDING_RECOVERY_EXHAUSTED] = { "recovery-exhausted", LOCKHUB_MESSAGE_RECOVERY_EXHAUSTED },
        [HEALTH_FINDING_PIN_REJECTED] = { "pin-rejected", LOCKHUB_MESSAGE_PIN_REJECTED },
};

_Static_assert(_HEALTH_FINDING_MAX <= 32, "finding masks are 32 bits");

static const char *const severity_names[_HEALTH_SEVERITY_MAX] = {
        [HEALTH_SEVERITY_INFO] = "info",
        [HEALTH_SEVERITY_WARNING] = "warning",
        [HEALTH_SEVERITY_ERROR] = "error",
        [HEALTH_SEVERITY_CRITICAL] = "critical",
};

const char *health_finding_id_to_string(HealthFindingId id)
{
        return id >= 0 && id < _HEALTH_FINDING_MAX ? finding_info[id].id : NULL;
}

HealthFindingId health_finding_id_from_string(const char *s)
{
        for (int i = 0; s && i < _HEALTH_FINDING_MAX; i++)
                if (streq(finding_info[i].id, s))
                        return (HealthFindingId) i;
        return _HEALTH_FINDING_MAX;
}

const char *health_finding_message_id(HealthFindingId id)
{
        return id >= 0 && id < _HEALTH_FINDING_MAX ? finding_info[id].message_id : NULL;
}

const char *health_severity_to_string(HealthSeverity s)
{
        return s >= 0 && s < _HEALTH_SEVERITY_MAX ? severity_names[s] : NULL;
}

/* ---- formatting helpers ------------------------------------------------------------------ */

static void fmt_time(char *buf, size_t n, uint64_t usec)
{
        time_t t = (time_t) (usec / HEALTH_USEC_PER_SEC);
        struct tm tm;

        if (usec == 0 || !localtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M", &tm) == 0)
                snprintf(buf, n, "never");
}

static void fmt_duration(char *buf, size_t n, uint64_t usec)
{
        if (usec >= 2 * HEALTH_USEC_PER_DAY)
                snprintf(buf, n, "%.1f days", (double) usec / (double) HEALTH_USEC_PER_DAY);
        else if (usec >= 2 * HEALTH_USEC_PER_HOUR)
                snprintf(buf, n, "%.1f hours", (double) usec / (double) HEALTH_USEC_PER_HOUR);
        else if (usec >= 2 * HEALTH_USEC_PER_MIN)
                snprintf(buf, n, "%" PRIu64 " minutes", (uint64_t) (usec / HEALTH_USEC_PER_MIN));
        else
                snprintf(buf, n, "%.1f s", (double) usec / (double) HEALTH_USEC_PER_SEC);
}

/* Days left as a person says it: "about 40 days", "about 5 hours", "minutes". */
static void fmt_left(char *buf, size_t n, double days)
{
        if (days >= 2)
                snprintf(buf, n, "about %.0f days", days);
        else if (days * 24 >= 2)
                snprintf(buf, n, "about %.0f hours", days * 24);
        else if (days * 24 * 60 >= 2)
                snprintf(buf, n, "about %.0f minutes", days * 24 * 60);
        else
                snprintf(buf, n, "a minute or less");
}

static char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
static char *strdup_printf(const char *fmt, ...)
{
        va_list ap;
        char *s = NULL;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}

/* ---- report building ---------------------------------------------------------------------- */

typedef struct Builder {
        HealthReport *r;
        size_t allocated;
        int error;
        const HealthDiagnoseInput *in;
} Builder;

static void add(Builder *b, HealthFindingId id, HealthSeverity sev, unsigned likelihood, char *title,
                char *evidence, char *next_step)
{
        HealthFinding *f;

        if (!title || !evidence || !next_step) {
                b->error = -ENOMEM;
                goto fail;
        }
        if (b->r->n_findings == b->allocated) {
                size_t n = MAX(b->allocated * 2, (size_t) 8);
                f = realloc(b->r->findings, n * sizeof *f);
                if (!f) {
                        b->error = -ENOMEM;
                        goto fail;
                }
                b->r->findings = f;
                b->allocated = n;
        }
        b->r->findings[b->r->n_findings++] = (HealthFinding){
                .id = id,
                .severity = sev,
                .likelihood = MIN(likelihood, 100u),
                .title = title,
                .evidence = evidence,
                .next_step = next_step,
        };
        return;
fail:
        free(title);
        free(evidence);
        free(next_step);
}

static const char *lock_name(const Builder *b)
{
        return b->in->lock ? b->in->lock : "LOCK";
}

/* "The hub already tried: retry ×2 (failed), reconnect (failed)." or "" */
static char *tried_summary(const HealthReport *r)
{
        unsigned count[_HEALTH_STEP_MAX] = {}, failed[_HEALTH_STEP_MAX] = {};
        char buf[512] = "";
        size_t n = 0;

        for (size_t i = 0; i < r->n_tried; i++) {
                if (r->tried[i].outcome == HEALTH_OUTCOME_SKIPPED)
                        continue;
                count[r->tried[i].step]++;
                if (r->tried[i].outcome != HEALTH_OUTCOME_SUCCESS)
                        failed[r->tried[i].step]++;
        }
        for (int s = 0; s < _HEALTH_STEP_MAX; s++) {
                if (!count[s] || s == HEALTH_STEP_BLUEZ_RESTART)
                        continue;
                n += (size_t) snprintf(buf + n, n < sizeof buf ? sizeof buf - n : 0, "%s%s", n ? ", " : "",
                                       health_step_to_string((HealthStep) s));
                if (n < sizeof buf && count[s] > 1)
                        n += (size_t) snprintf(buf + n, sizeof buf - n, " ×%u", count[s]);
                if (n < sizeof buf)
                        n += (size_t) snprintf(buf + n, sizeof buf - n, " (%s)",
                                               failed[s] == count[s] ? "failed"
                                               : failed[s] == 0      ? "worked"
                                                                     : "partly worked");
        }
        if (n == 0)
                return strdup("");
        return strdup_printf(" The hub already tried: %s.", buf);
}

static void rule_needs_repair(Builder *b)
{
        const HealthDiagnoseInput *in = b->in;
        bool ladder = in->ladder && in->ladder->state == HEALTH_LADDER_NEEDS_REPAIR;

        if (!in->needs_repair && !ladder)
                return;
        add(b, HEALTH_FINDING_NEEDS_REPAIR, HEALTH_SEVERITY_CRITICAL, 98,
            strdup("The lock no longer accepts the hub's pairing"),
            strdup_printf("The lock refused the hub's key%s%s%s. This happens after a factory reset of the "
                          "lock, or when the hub's authorization was removed in the vendor's app.",
                          ladder && in->ladder->reason ? " (" : "",
                          ladder ? strempty(in->ladder->reason) : "",
                          ladder && in->ladder->reason ? ")" : ""),
            strdup_printf("Pair the lock again: put it in pairing mode (press its button for 5 seconds "
                          "until "
                          "the light ring is on) and run 'lockhubctl pair %s'. The hub then restores its "
                          "codes and settings by itself.",
                          lock_name(b)));
}

static void rule_pin_rejected(Builder *b)
{
        const HealthDiagnoseInput *in = b->in;
        char when[64];

        if (in->pin_rejected_usec == 0)
                return;
        fmt_time(when, sizeof when, in->pin_rejected_usec);
        add(b, HEALTH_FINDING_PIN_REJECTED, HEALTH_SEVERITY_ERROR, 90,
            strdup("The lock rejects the hub's security PIN"),
            strdup_printf("The lock rejected the stored security PIN at %s%s%s%s. Since then the hub sends "
                          "none of its own PIN requests (keypad code sync, log import, time sync), so that "
                          "the lock does not lock the PIN out, also for its app; codes wait as pending.",
                          when, in->pin_rejected_request ? " (request: " : "",
                          strempty(in->pin_rejected_request), in->pin_rejected_request ? ")" : ""),
            strdup_printf("The PIN was probably changed in the Nuki app. Set the lock's current PIN with "
                          "'lockhubctl pin %s'; the hub then syncs the codes again.",
                          lock_name(b)));
}

static void rule_battery(Builder *b, const HealthBatteryStats *bs)
{
        const HealthDiagnoseInput *in = b->in;
        const ConfHealth *c = in->conf;
        bool critical_flag = in->battery && in->battery->critical;
        char when[32], days[96] = "", left[32] = "";

        if (!bs->has_level && !critical_flag)
                goto accessories;
        fmt_time(when, sizeof when, bs->level_usec);
        if (bs->has_rate && bs->days_left >= 0) {
                fmt_left(left, sizeof left, bs->days_left);
                snprintf(days, sizeof days, " It drains %.2f %%/day: %s left.", bs->drain_per_day, left);
        }

        if (critical_flag || (bs->has_level && bs->level <= c->battery_critical_percent)) {
                add(b, HEALTH_FINDING_BATTERY_CRITICAL, HEALTH_SEVERITY_CRITICAL, 95,
                    bs->has_level ? strdup_printf("Battery critical: %.0f %%", bs->level)
                                  : strdup("Battery critical"),
                    bs->has_level ? strdup_printf("The lock reported %.0f %% at %s%s (critical at %u %% or "
                                                  "below).%s",
                                                  bs->level, when,
                                                  critical_flag ? " and its critical flag" : "",
                                                  c->battery_critical_percent, days)
                                  : strdup("The lock reports its battery as critical."),
                    strdup("Replace the batteries now: the lock may stop moving at any time. Use the type "
                           "the vendor specifies; keep a key at hand until it is done."));
        } else if (bs->has_level && bs->level <= c->battery_low_percent) {
                add(b, HEALTH_FINDING_BATTERY_LOW, HEALTH_SEVERITY_WARNING, 70,
                    strdup_printf("Battery low: %.0f %%", bs->level),
                    strdup_printf("The lock reported %.0f %% at %s (low at %u %% or below).%s", bs->level,
                                  when, c->battery_low_percent, days),
                    strdup(bs->has_rate && bs->days_left >= 0 && bs->days_left < 2
                                           ? "Replace the batteries now: at this rate they are empty within "
                                             "hours."
                                           : "Replace the batteries within the next days."));
        } else if (bs->has_rate && bs->days_left >= 0 && bs->days_left < FAST_DRAIN_DAYS) {
                add(b, HEALTH_FINDING_BATTERY_DRAIN_FAST, HEALTH_SEVERITY_WARNING, 60,
                    strdup_printf("Battery draining fast: %s left", left),
                    strdup_printf("The level fell at %.2f %%/day over %zu readings; %.0f %% at %s.",
                                  bs->drain_per_day, bs->n_fit, bs->level, when),
                    strdup("Look for what makes the motor work hard (a door that must be pushed or pulled "
                           "to lock, a bolt that rubs) and for frequent actions or a weak signal that "
                           "keeps the radio busy; plan new batteries."));
        }
        if (bs->abnormal) {
                char fw[160] = "";
                if (in->firmware_changed_usec > 0) {
                        fmt_time(when, sizeof when, in->firmware_changed_usec);
                        snprintf(fw, sizeof fw, " The firmware changed%s%s to %s at %s.",
                                 in->firmware_previous ? " from " : "", strempty(in->firmware_previous),
                                 strna(in->firmware), when);
                }
                add(b, HEALTH_FINDING_BATTERY_DRAIN_ABNORMAL, HEALTH_SEVERITY_WARNING, 65,
                    strdup("Battery draining faster than usual for this lock"),
                    strdup_printf("Recently %.2f %%/day, against %.2f %%/day before on the same "
                                  "batteries.%s",
                                  bs->recent_per_day, bs->baseline_per_day, fw),
                    strdup_printf("Something changed: a door that started to stick or a misaligned strike "
                                  "plate (the motor works harder), a firmware update, or many more actions "
                                  "than usual. Check the alignment and recalibrate ('lockhubctl calibrate "
                                  "%s').",
                                  lock_name(b)));
        }

accessories:
        if (in->battery && (in->battery->keypad_critical == 1 || in->battery->door_sensor_critical == 1)) {
                bool kp = in->battery->keypad_critical == 1, ds = in->battery->door_sensor_critical == 1;
                add(b, HEALTH_FINDING_ACCESSORY_BATTERY, HEALTH_SEVERITY_WARNING, 50,
                    strdup_printf("%s battery critical", kp && ds ? "Keypad and door sensor"
                                                         : kp     ? "Keypad"
                                                                  : "Door sensor"),
                    strdup_printf("The lock reports the %s battery as critical.",
                                  kp && ds ? "keypad's and the door sensor's"
                                  : kp     ? "keypad's"
                                           : "door sensor's"),
                    strdup(kp ? "Replace the keypad's battery; until then codes may not be accepted."
                              : "Replace the door sensor's battery; until then the door state is "
                                "unreliable."));
        }
}

static void rule_link(Builder *b, const HealthLinkStats *ls, const HealthBatteryStats *bs, const char *tried)
{
        const HealthDiagnoseInput *in = b->in;
        const ConfHealth *c = in->conf;
        uint64_t not_seen_limit = (uint64_t) c->not_seen_sec * HEALTH_USEC_PER_SEC;
        bool waiting = in->ladder && in->ladder->state == HEALTH_LADDER_WAIT_LOCK;
        char d[48], when[32];

        if ((ls->ever_seen && ls->not_seen_usec >= not_seen_limit) || waiting) {
                bool dead = bs->has_level && bs->level <= c->battery_low_percent;
                fmt_duration(d, sizeof d, ls->not_seen_usec);
                fmt_time(when, sizeof when, in->link.last_seen_usec);
                add(b, HEALTH_FINDING_NOT_SEEN, HEALTH_SEVERITY_ERROR, dead ? 96 : 90,
                    strdup_printf("Not seen for %s", d),
                    strdup_printf("No advert or connection since %s.%s%s%s", when,
                                  dead ? " Its battery was already low: it is probably empty." : "",
                                  isnan(ls->rssi_median) ? "" : " The signal was ",
                                  isnan(ls->rssi_median)
                                                  ? ""
                                                  : (ls->rssi_median < c->weak_signal_dbm ? "weak before."
                                                                                          : "fine before.")),
                    strdup_printf("%sCheck that the lock has power (press its button: does the light ring "
                                  "react?) and that the hub is within range (about 10 m, few walls). "
                                  "Nothing "
                                  "else needs doing: the hub reconnects by itself when the lock is heard "
                                  "again.%s",
                                  dead ? "Replace the batteries. " : "", tried));
        }
        if (ls->n_rssi >= MIN_RSSI_SAMPLES && ls->rssi_median < c->weak_signal_dbm) {
                unsigned like = 55;
                if (ls->connect_success_rate >= 0 && ls->connect_success_rate < 0.9)
                        like += 15;
                add(b, HEALTH_FINDING_SIGNAL_WEAK, HEALTH_SEVERITY_WARNING, like,
                    strdup_printf("Weak signal: %.0f dBm", ls->rssi_median),
                    strdup_printf("Median %.0f dBm, weakest %.0f dBm over %zu readings in the last 24 hours "
                                  "(weak below %d dBm).",
                                  ls->rssi_median, ls->rssi_min, ls->n_rssi, c->weak_signal_dbm),
                    strdup("Bring the hub closer to the lock or give its Bluetooth adapter a clear line "
                           "(a USB extension cable away from metal and the hub's own USB 3 ports), or add "
                           "a second adapter nearer the door."));
        }
        if (ls->connects + ls->connect_failures >= MIN_CONNECT_ATTEMPTS &&
            (ls->connect_success_rate < 0.8 || ls->lost_per_hour > 1.0)) {
                add(b, HEALTH_FINDING_LINK_UNSTABLE, HEALTH_SEVERITY_WARNING, 50,
                    strdup("Unstable connection"),
                    strdup_printf("%u of %u connection attempts worked (%.0f %%) and the link was lost %u "
                                  "times (%.1f per hour) in the last 24 hours.%s",
                                  ls->connects, ls->connects + ls->connect_failures,
                                  100.0 * ls->connect_success_rate, ls->lost, ls->lost_per_hour, tried),
                    strdup("Look for interference (Wi-Fi routers, USB 3 devices, microwave ovens near the "
                           "hub) and for a weak signal; restarting the lock (remove a battery for 10 "
                           "seconds) helps when its radio is stuck."));
        }
}

static void rule_install(Builder *b, const HealthInstallStats *is)
{
        const HealthDiagnoseInput *in = b->in;
        const ConfHealth *c = in->conf;
        char when[32], w[48];

        fmt_duration(w, sizeof w, (uint64_t) c->jam_window_sec * HEALTH_USEC_PER_SEC);
        if (is->uncalibrated)
                add(b, HEALTH_FINDING_UNCALIBRATED, HEALTH_SEVERITY_ERROR, 85,
                    strdup("The lock is not calibrated"),
                    strdup("The lock reports that it is uncalibrated and will not move until it is."),
                    strdup_printf("Check that the lock sits straight on the door and the key is in, then "
                                  "run 'lockhubctl calibrate %s' with the door open and follow the lock's "
                                  "light.",
                                  lock_name(b)));
        if (is->jams >= c->jam_threshold) {
                fmt_time(when, sizeof when, is->last_jam_usec);
                add(b, HEALTH_FINDING_JAMS, HEALTH_SEVERITY_ERROR, 75,
                    strdup_printf("Motor blocked %u times in %s", is->jams, w),
                    strdup_printf("%u jams (%.1f per week), the last at %s (alignment finding at %u or "
                                  "more).",
                                  is->jams, is->jams_per_week, when, c->jam_threshold),
                    strdup_printf("Check the alignment: with the door closed the bolt must run freely "
                                  "without pushing or pulling the door (adjust the strike plate or the "
                                  "door's "
                                  "hinges); check that the cylinder turns easily with a key. Then "
                                  "recalibrate "
                                  "('lockhubctl calibrate %s').",
                                  lock_name(b)));
        }
        if (is->motor_slowing)
                add(b, HEALTH_FINDING_MOTOR_SLOW, HEALTH_SEVERITY_WARNING, 45,
                    strdup("The motor is getting slower"),
                    strdup_printf("Recent actions take %.0f ms (median) against %.0f ms before, over %zu "
                                  "actions.",
                                  is->motor_recent_median_ms, is->motor_baseline_median_ms, is->n_motor),
                    strdup_printf("The bolt meets more resistance: check the alignment of the door and the "
                                  "strike plate, and the cylinder; then recalibrate ('lockhubctl calibrate "
                                  "%s'). Weak batteries slow the motor too.",
                                  lock_name(b)));
        if (is->door_open_locked > 0) {
                fmt_time(when, sizeof when, is->last_door_open_locked_usec);
                add(b, HEALTH_FINDING_DOOR_OPEN_LOCKED, HEALTH_SEVERITY_WARNING, 40,
                    strdup("Locked while the door was open"),
                    strdup_printf("%u time%s in %s the door sensor said open while the lock was locked, the "
                                  "last at %s.",
                                  is->door_open_locked, is->door_open_locked == 1 ? "" : "s", w, when),
                    strdup("A bolt thrown with the door open hits the frame when the door is closed. If the "
                           "door was really closed, recalibrate the door sensor in the vendor's app; "
                           "otherwise check auto-lock settings."));
        }
}

static void rule_firmware(Builder *b, HealthFirmwareVerdict v, const char *latest, const char *reason)
{
        const HealthDiagnoseInput *in = b->in;

        switch (v) {
        case HEALTH_FIRMWARE_BAD:
                add(b, HEALTH_FINDING_FIRMWARE_BAD, HEALTH_SEVERITY_ERROR, 60,
                    strdup_printf("Firmware %s has a known problem", in->firmware),
                    strdup_printf("%s with firmware %s: %s.%s%s%s", strna(in->model), in->firmware,
                                  reason ? reason : "listed as known-bad", latest ? " Known-good: " : "",
                                  strempty(latest), latest ? "." : ""),
                    strdup("Update the lock's firmware with the vendor's app."));
                break;
        case HEALTH_FIRMWARE_OUTDATED:
        case HEALTH_FIRMWARE_OLDER:
                add(b, HEALTH_FINDING_FIRMWARE_OUTDATED,
                    v == HEALTH_FIRMWARE_OUTDATED ? HEALTH_SEVERITY_WARNING : HEALTH_SEVERITY_INFO,
                    v == HEALTH_FIRMWARE_OUTDATED ? 35 : 20,
                    strdup_printf("Firmware %s is older than %s", in->firmware, strna(latest)),
                    strdup_printf("%s runs %s; the latest known-good version is %s.", strna(in->model),
                                  in->firmware, strna(latest)),
                    strdup("Update the lock's firmware with the vendor's app when convenient (keep the "
                           "phone next to the lock until it is done)."));
                break;
        case HEALTH_FIRMWARE_UNKNOWN:
        case HEALTH_FIRMWARE_CURRENT:
        case _HEALTH_FIRMWARE_VERDICT_MAX:
                break;
        }
}

static void rule_recovery(Builder *b, const char *tried)
{
        const HealthDiagnoseInput *in = b->in;
        const HealthReport *r = b->r;
        size_t failures = 0;
        uint64_t last = 0;

        /* Failures since the last success, in the window we were given. */
        for (size_t i = 0; i < r->n_tried; i++) {
                const HealthTried *t = &r->tried[i];
                if (t->step == HEALTH_STEP_BLUEZ_RESTART || t->step == HEALTH_STEP_NEEDS_REPAIR ||
                    t->step == HEALTH_STEP_REPROVISION)
                        continue;
                if (t->outcome == HEALTH_OUTCOME_SUCCESS)
                        failures = 0;
                else if (t->outcome == HEALTH_OUTCOME_FAILURE) {
                        failures++;
                        last = t->ts_usec;
                }
        }
        if (!(in->ladder && in->ladder->state == HEALTH_LADDER_GAVE_UP) && failures < 3)
                return;
        if (in->ladder && in->ladder->state == HEALTH_LADDER_IDLE)
                return; /* it has recovered since */
        char when[32];
        fmt_time(when, sizeof when, last);
        add(b, HEALTH_FINDING_RECOVERY_EXHAUSTED, HEALTH_SEVERITY_ERROR, 80,
            strdup("The hub cannot reach the lock by itself"),
            strdup_printf("%zu recovery steps failed, the last at %s.%s%s%s", failures, when, tried,
                          in->ladder && in->ladder->state == HEALTH_LADDER_GAVE_UP ? " Last reason: " : "",
                          in->ladder && in->ladder->state == HEALTH_LADDER_GAVE_UP ? in->ladder->reason
                                                                                   : ""),
            strdup("Restart the lock (take one battery out for 10 seconds), then restart the hub "
                   "('systemctl restart bluetooth lockhubd'). If it still fails, see the other findings "
                   "and 'lockhubctl support-bundle'."));
}

static int cmp_finding(const void *a, const void *b)
{
        const HealthFinding *x = a, *y = b;

        if (x->likelihood != y->likelihood)
                return x->likelihood > y->likelihood ? -1 : 1;
        if (x->severity != y->severity)
                return x->severity > y->severity ? -1 : 1;
        return (x->id > y->id) - (x->id < y->id);
}

int health_diagnose(const HealthDiagnoseInput *in, HealthReport **ret)
{
        _cleanup_(health_report_freep) HealthReport *r = NULL;
        _cleanup_free_ char *tried = NULL;
        const char *latest = NULL, *reason = NULL;
        HealthBatteryParams bp = {};
        Builder b = {};

        if (!in || !in->conf || !ret)
                return -EINVAL;
        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->ladder_state = in->ladder ? in->ladder->state : _HEALTH_LADDER_STATE_MAX;
        r->now_usec = in->now_usec;
        if ((in->lock && !(r->lock = strdup(in->lock))) || (in->model && !(r->model = strdup(in->model))) ||
            (in->firmware && !(r->firmware = strdup(in->firmware))))
                return -ENOMEM;
        if (in->n_tried > 0) {
                r->tried = calloc(in->n_tried, sizeof *r->tried);
                if (!r->tried)
                        return -ENOMEM;
                for (size_t i = 0; i < in->n_tried; i++) {
                        r->tried[i] = in->tried[i];
                        r->tried[i].adapter = NULL;
                        if (in->tried[i].adapter && !(r->tried[i].adapter = strdup(in->tried[i].adapter)))
                                return -ENOMEM;
                        r->n_tried = i + 1;
                }
        }

        bp.window_usec = (uint64_t) in->conf->battery_window_sec * HEALTH_USEC_PER_SEC;
        health_battery_analyze(in->battery_pct, in->n_battery_pct, in->now_usec, &bp, &r->battery);
        if (!r->battery.has_level && in->battery && in->battery->percent >= 0) {
                r->battery.has_level = true;
                r->battery.level = in->battery->percent;
                r->battery.level_usec = in->now_usec;
        }
        health_link_analyze(&in->link, in->now_usec, &r->link);
        health_install_analyze(&in->install, in->now_usec, &r->install);
        r->firmware_verdict =
                        health_firmware_check(in->known_firmware, in->model, in->firmware, &latest, &reason);
        if (latest && !(r->firmware_latest = strdup(latest)))
                return -ENOMEM;

        tried = tried_summary(r);
        if (!tried)
                return -ENOMEM;
        b.r = r;
        b.in = in;
        rule_needs_repair(&b);
        rule_pin_rejected(&b);
        rule_battery(&b, &r->battery);
        rule_link(&b, &r->link, &r->battery, tried);
        rule_install(&b, &r->install);
        rule_firmware(&b, r->firmware_verdict, latest, reason);
        rule_recovery(&b, tried);
        if (b.error < 0)
                return b.error;
        if (r->n_findings > 1)
                qsort(r->findings, r->n_findings, sizeof *r->findings, cmp_finding);
        *ret = TAKE_PTR(r);
        return 0;
}

HealthReport *health_report_free(HealthReport *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_findings; i++) {
                free(r->findings[i].title);
                free(r->findings[i].evidence);
                free(r->findings[i].next_step);
        }
        free(r->findings);
        for (size_t i = 0; i < r->n_tried; i++)
                free(r->tried[i].adapter);
        free(r->tried);
        free(r->lock);
        free(r->model);
        free(r->firmware);
        free(r->firmware_latest);
        free(r);
        return NULL;
}

HealthSeverity health_report_worst(const HealthReport *r)
{
        HealthSeverity w = HEALTH_SEVERITY_INFO;

        for (size_t i = 0; i < r->n_findings; i++)
                w = MAX(w, r->findings[i].severity);
        return w;
}

const char *health_report_headline(const HealthReport *r)
{
        return r->n_findings > 0 ? health_finding_id_to_string(r->findings[0].id) : "ok";
}

bool health_report_problem(const HealthReport *r)
{
        for (size_t i = 0; i < r->n_findings; i++)
                if (r->findings[i].severity >= HEALTH_SEVERITY_WARNING)
                        return true;
        return false;
}

/* ---- renderings ----------------------------------------------------------------------------- */

static json_object *num_or_null(double v)
{
        return isnan(v) || isinf(v) ? NULL : json_object_new_double(round(v * 100.0) / 100.0);
}

json_object *health_report_to_json(const HealthReport *r)
{
        json_object *o = json_object_new_object(), *a, *x;

        if (!o)
                return NULL;
        json_object_object_add(o, "lock", r->lock ? json_object_new_string(r->lock) : NULL);
        json_object_object_add(o, "model", r->model ? json_object_new_string(r->model) : NULL);
        json_object_object_add(o, "firmware", r->firmware ? json_object_new_string(r->firmware) : NULL);
        json_object_object_add(o, "time_usec", json_object_new_uint64(r->now_usec));
        json_object_object_add(o, "health", json_object_new_string(health_report_headline(r)));
        json_object_object_add(o, "problem", json_object_new_boolean(health_report_problem(r)));
        json_object_object_add(o, "severity",
                               json_object_new_string(health_severity_to_string(health_report_worst(r))));
        json_object_object_add(o, "recovery",
                               r->ladder_state < _HEALTH_LADDER_STATE_MAX
                                               ? json_object_new_string(health_ladder_state_to_string(
                                                                 r->ladder_state))
                                               : NULL);

        a = json_object_new_array();
        for (size_t i = 0; a && i < r->n_findings; i++) {
                const HealthFinding *f = &r->findings[i];
                x = json_object_new_object();
                if (!x)
                        break;
                json_object_object_add(x, "id", json_object_new_string(health_finding_id_to_string(f->id)));
                json_object_object_add(x, "message_id",
                                       json_object_new_string(health_finding_message_id(f->id)));
                json_object_object_add(x, "severity",
                                       json_object_new_string(health_severity_to_string(f->severity)));
                json_object_object_add(x, "likelihood", json_object_new_int((int) f->likelihood));
                json_object_object_add(x, "title", json_object_new_string(f->title));
                json_object_object_add(x, "evidence", json_object_new_string(f->evidence));
                json_object_object_add(x, "next_step", json_object_new_string(f->next_step));
                json_object_array_add(a, x);
        }
        json_object_object_add(o, "findings", a);

        a = json_object_new_array();
        for (size_t i = 0; a && i < r->n_tried; i++) {
                const HealthTried *t = &r->tried[i];
                x = json_object_new_object();
                if (!x)
                        break;
                json_object_object_add(x, "time_usec", json_object_new_uint64(t->ts_usec));
                json_object_object_add(x, "step", json_object_new_string(health_step_to_string(t->step)));
                json_object_object_add(x, "attempt", json_object_new_int((int) t->attempt));
                json_object_object_add(x, "outcome",
                                       json_object_new_string(health_outcome_to_string(t->outcome)));
                json_object_object_add(x, "duration_ms",
                                       json_object_new_int64((int64_t) (t->duration_usec / 1000)));
                json_object_object_add(x, "adapter", t->adapter ? json_object_new_string(t->adapter) : NULL);
                json_object_array_add(a, x);
        }
        json_object_object_add(o, "tried", a);

        x = json_object_new_object();
        if (x) {
                json_object_object_add(x, "percent",
                                       r->battery.has_level ? num_or_null(r->battery.level) : NULL);
                json_object_object_add(x, "drain_per_day",
                                       r->battery.has_rate ? num_or_null(r->battery.drain_per_day) : NULL);
                json_object_object_add(x, "days_left",
                                       r->battery.days_left >= 0 ? num_or_null(r->battery.days_left) : NULL);
                json_object_object_add(x, "abnormal", json_object_new_boolean(r->battery.abnormal));
                json_object_object_add(x, "replaced_usec",
                                       r->battery.replaced ? json_object_new_uint64(r->battery.replaced_usec)
                                                           : NULL);
        }
        json_object_object_add(o, "battery", x);

        x = json_object_new_object();
        if (x) {
                json_object_object_add(x, "rssi_median", num_or_null(r->link.rssi_median));
                json_object_object_add(x, "rssi_min", num_or_null(r->link.rssi_min));
                json_object_object_add(x, "connect_success_rate",
                                       r->link.connect_success_rate >= 0
                                                       ? num_or_null(r->link.connect_success_rate)
                                                       : NULL);
                json_object_object_add(x, "connect_ms_median", num_or_null(r->link.connect_ms_median));
                json_object_object_add(x, "latency_ms_p50", num_or_null(r->link.latency_p50));
                json_object_object_add(x, "latency_ms_p90", num_or_null(r->link.latency_p90));
                json_object_object_add(x, "latency_ms_p99", num_or_null(r->link.latency_p99));
                json_object_object_add(x, "lost_per_hour", num_or_null(r->link.lost_per_hour));
                json_object_object_add(x, "not_seen_sec",
                                       r->link.ever_seen ? json_object_new_uint64(r->link.not_seen_usec /
                                                                                  HEALTH_USEC_PER_SEC)
                                                         : NULL);
        }
        json_object_object_add(o, "link", x);

        x = json_object_new_object();
        if (x) {
                json_object_object_add(x, "jams", json_object_new_int((int) r->install.jams));
                json_object_object_add(x, "jams_per_week", num_or_null(r->install.jams_per_week));
                json_object_object_add(x, "motor_ms_median", num_or_null(r->install.motor_median_ms));
                json_object_object_add(x, "motor_ms_trend_per_day",
                                       num_or_null(r->install.motor_trend_ms_per_day));
                json_object_object_add(x, "door_open_while_locked",
                                       json_object_new_int((int) r->install.door_open_locked));
                json_object_object_add(x, "uncalibrated", json_object_new_boolean(r->install.uncalibrated));
        }
        json_object_object_add(o, "installation", x);

        x = json_object_new_object();
        if (x) {
                json_object_object_add(x, "installed",
                                       r->firmware ? json_object_new_string(r->firmware) : NULL);
                json_object_object_add(x, "latest",
                                       r->firmware_latest ? json_object_new_string(r->firmware_latest)
                                                          : NULL);
                json_object_object_add(x, "verdict",
                                       json_object_new_string(health_firmware_verdict_to_string(
                                                       r->firmware_verdict)));
        }
        json_object_object_add(o, "firmware_check", x);
        return o;
}

int health_report_to_text(const HealthReport *r, char **ret)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fprintf(f, "%s", strna(r->lock));
        if (r->model || r->firmware)
                fprintf(f, " (%s%s%s)", strempty(r->model), r->model && r->firmware ? ", firmware " : "",
                        strempty(r->firmware));
        fprintf(f, ": %s\n",
                r->n_findings == 0         ? "no problem found"
                : health_report_problem(r) ? "needs attention"
                                           : "fine");

        for (size_t i = 0; i < r->n_findings; i++) {
                const HealthFinding *x = &r->findings[i];
                fprintf(f, "\n%zu. [%s] %s (%s)\n", i + 1, health_severity_to_string(x->severity), x->title,
                        health_finding_id_to_string(x->id));
                fprintf(f, "   Evidence: %s\n", x->evidence);
                fprintf(f, "   Next step: %s\n", x->next_step);
        }

        if (r->n_tried > 0) {
                fprintf(f, "\nWhat the hub tried:\n");
                for (size_t i = 0; i < r->n_tried; i++) {
                        const HealthTried *t = &r->tried[i];
                        char when[32], d[48];
                        fmt_time(when, sizeof when, t->ts_usec);
                        fmt_duration(d, sizeof d, t->duration_usec);
                        fprintf(f, "   %s  %-20s #%-2u %-8s %s%s%s\n", when, health_step_to_string(t->step),
                                t->attempt, health_outcome_to_string(t->outcome), d, t->adapter ? "  " : "",
                                strempty(t->adapter));
                }
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

uint32_t health_report_log(const HealthReport *r, uint32_t already_logged)
{
        uint32_t mask = 0;

        for (size_t i = 0; i < r->n_findings; i++) {
                const HealthFinding *x = &r->findings[i];
                char f_id[64], f_lock[64], f_finding[64], f_sev[32];
                int level = x->severity >= HEALTH_SEVERITY_ERROR     ? LOG_ERR
                            : x->severity == HEALTH_SEVERITY_WARNING ? LOG_WARNING
                                                                     : LOG_NOTICE;

                mask |= 1u << x->id;
                if (already_logged & (1u << x->id))
                        continue;
                snprintf(f_id, sizeof f_id, "MESSAGE_ID=%s", health_finding_message_id(x->id));
                snprintf(f_lock, sizeof f_lock, "LOCK=%s", strna(r->lock));
                snprintf(f_finding, sizeof f_finding, "FINDING=%s", health_finding_id_to_string(x->id));
                snprintf(f_sev, sizeof f_sev, "SEVERITY=%s", health_severity_to_string(x->severity));
                (void) log_struct(level, 0, LOG_FIELDS(f_id, f_lock, f_finding, f_sev), "%s: %s. %s",
                                  strna(r->lock), x->title, x->evidence);
        }
        for (int id = 0; id < _HEALTH_FINDING_MAX; id++)
                if ((already_logged & ~mask) & (1u << id))
                        log_info("%s: %s no longer applies.", strna(r->lock),
                                 health_finding_id_to_string((HealthFindingId) id));
        return mask;
}

/* ---- from the store ------------------------------------------------------------------------ */

typedef struct Points {
        HealthPoint *p;
        size_t n;
} Points;

static int load_points(Store *s, int64_t lock_id, const char *kind, uint64_t since, Points *ret)
{
        struct store_sample *a = NULL;
        size_t n = 0;
        int r;

        r = store_sample_list(s, lock_id, kind, since, 0, &a, &n);
        if (r < 0)
                return r;
        ret->p = n ? calloc(n, sizeof *ret->p) : NULL;
        if (n && !ret->p) {
                store_sample_array_free(a, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                ret->p[i] = (HealthPoint){ .t_usec = a[i].ts_usec, .v = a[i].value };
        ret->n = n;
        store_sample_array_free(a, n);
        return 0;
}

static const char *detail_string(json_object *d, const char *key)
{
        json_object *v;

        if (d && json_object_object_get_ex(d, key, &v) && json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

static int push_time(uint64_t **a, size_t *n, uint64_t t)
{
        uint64_t *x = realloc(*a, (*n + 1) * sizeof **a);

        if (!x)
                return -ENOMEM;
        x[(*n)++] = t;
        *a = x;
        return 0;
}

typedef struct History {
        uint64_t *jams, *door_open_locked, *lost;
        size_t n_jams, n_door_open_locked, n_lost;
} History;

static int load_events(Store *s, int64_t lock_id, uint64_t since_install, uint64_t since_link, History *h)
{
        static const char *const kinds[] = { "state", "door", "link" };
        struct store_event *ev[3] = {};
        size_t n[3] = {}, i[3] = {};
        LockState state = LOCK_STATE_UNKNOWN;
        int r = 0;

        for (size_t k = 0; k < 3; k++) {
                struct store_event_filter f = {
                        .lock_id = lock_id,
                        .since_usec = k == 2 ? since_link : since_install,
                        .kind = kinds[k],
                };
                r = store_event_list(s, &f, &ev[k], &n[k]);
                if (r < 0)
                        goto finish;
        }
        /* Merge state and door events by id: "door open while locked" needs both. */
        for (;;) {
                size_t k;
                if (i[0] < n[0] && (i[1] >= n[1] || ev[0][i[0]].id < ev[1][i[1]].id))
                        k = 0;
                else if (i[1] < n[1])
                        k = 1;
                else
                        break;
                struct store_event *e = &ev[k][i[k]++];
                json_object *d = e->detail ? json_tokener_parse(e->detail) : NULL;
                const char *to = detail_string(d, "to");
                if (k == 0 && to) {
                        state = lock_state_from_string(to);
                        if (state == LOCK_STATE_JAMMED)
                                r = push_time(&h->jams, &h->n_jams, e->ts_usec);
                } else if (k == 1 && to && streq(to, "open") && state == LOCK_STATE_LOCKED)
                        r = push_time(&h->door_open_locked, &h->n_door_open_locked, e->ts_usec);
                json_object_put(d);
                if (r < 0)
                        goto finish;
        }
        for (size_t j = 0; j < n[2]; j++) {
                json_object *d = ev[2][j].detail ? json_tokener_parse(ev[2][j].detail) : NULL, *v;
                if (d && json_object_object_get_ex(d, "reachable", &v) && !json_object_get_boolean(v))
                        r = push_time(&h->lost, &h->n_lost, ev[2][j].ts_usec);
                json_object_put(d);
                if (r < 0)
                        goto finish;
        }
        r = 0;
finish:
        for (size_t k = 0; k < 3; k++)
                store_event_array_free(ev[k], n[k]);
        return r;
}

static HealthStep step_from_string(const char *s)
{
        for (int i = 0; s && i < _HEALTH_STEP_MAX; i++)
                if (streq(health_step_to_string((HealthStep) i), s))
                        return (HealthStep) i;
        return _HEALTH_STEP_MAX;
}

static HealthOutcome outcome_from_string(const char *s)
{
        for (int i = 0; s && i < _HEALTH_OUTCOME_MAX; i++)
                if (streq(health_outcome_to_string((HealthOutcome) i), s))
                        return (HealthOutcome) i;
        return _HEALTH_OUTCOME_MAX;
}

int health_diagnose_lock(Store *s, const Conf *conf, const HealthKnownFirmware *known_firmware,
                         int64_t lock_id, const Lock *live, const HealthLadderStatus *ladder,
                         uint64_t now_usec, HealthReport **ret)
{
        const ConfHealth *c = &conf->health;
        uint64_t since_battery =
                        now_usec - MIN(now_usec, (uint64_t) c->battery_window_sec * HEALTH_USEC_PER_SEC);
        uint64_t since_install =
                        now_usec - MIN(now_usec, (uint64_t) c->jam_window_sec * HEALTH_USEC_PER_SEC);
        uint64_t since_link = now_usec - MIN(now_usec, LINK_WINDOW_USEC);
        Points pct = {}, rssi = {}, conn = {}, connfail = {}, lat = {}, motor = {};
        struct store_recovery_attempt *ra = NULL;
        HealthTried *tried = NULL;
        size_t n_ra = 0, n_tried = 0;
        History h = {};
        struct store_lock sl;
        LockBattery battery = { .percent = -1, .keypad_critical = -1, .door_sensor_critical = -1 };
        LockState state = LOCK_STATE_UNKNOWN;
        LockDoor door = LOCK_DOOR_UNKNOWN;
        json_object *last = NULL;
        uint64_t fw_changed = 0;
        char *fw_previous = NULL;
        json_object *pin = NULL;
        uint64_t pin_usec = 0;
        char key[64];
        int r;

        store_lock_init(&sl);
        r = store_lock_get(s, lock_id, &sl);
        if (r < 0)
                return r;

        snprintf(key, sizeof key, HEALTH_META_PIN_REJECTED, lock_id);
        {
                _cleanup_free_ char *v = NULL;
                json_object *t;

                if (store_meta_get(s, key, &v) >= 0 && v && *v && (pin = json_tokener_parse(v))) {
                        if (json_object_object_get_ex(pin, "since_usec", &t))
                                pin_usec = (uint64_t) json_object_get_int64(t);
                        pin_usec = MAX(pin_usec, (uint64_t) 1);
                }
        }

        if ((r = load_points(s, lock_id, "battery-percent", since_battery, &pct)) < 0 ||
            (r = load_points(s, lock_id, "rssi", since_link, &rssi)) < 0 ||
            (r = load_points(s, lock_id, "connect-ms", since_link, &conn)) < 0 ||
            (r = load_points(s, lock_id, "connect-failed", since_link, &connfail)) < 0 ||
            (r = load_points(s, lock_id, "latency-ms", since_link, &lat)) < 0 ||
            (r = load_points(s, lock_id, "motor-ms", since_install, &motor)) < 0 ||
            (r = load_events(s, lock_id, since_install, since_link, &h)) < 0)
                goto finish;

        {
                struct store_event_filter f = { .lock_id = lock_id,
                                                .since_usec = since_battery,
                                                .kind = "firmware" };
                struct store_event *ev = NULL;
                size_t n = 0;

                r = store_event_list(s, &f, &ev, &n);
                if (r < 0)
                        goto finish;
                for (size_t i = 0; i < n; i++) {
                        json_object *d = ev[i].detail ? json_tokener_parse(ev[i].detail) : NULL;
                        const char *prev = detail_string(d, "previous_firmware");
                        if (prev) { /* a change, not the first reading */
                                fw_changed = ev[i].ts_usec;
                                free(fw_previous);
                                fw_previous = strdup(prev);
                        }
                        json_object_put(d);
                }
                store_event_array_free(ev, n);
        }

        r = store_recovery_list(s, lock_id, TRIED_MAX, &ra, &n_ra);
        if (r < 0)
                goto finish;
        tried = n_ra ? calloc(n_ra, sizeof *tried) : NULL;
        for (size_t i = 0; tried && i < n_ra; i++) {
                HealthStep st = step_from_string(ra[i].step);
                HealthOutcome oc = outcome_from_string(ra[i].outcome);
                if (st == _HEALTH_STEP_MAX || oc == _HEALTH_OUTCOME_MAX ||
                    ra[i].ts_usec + TRIED_WINDOW_USEC < now_usec)
                        continue;
                tried[n_tried++] = (HealthTried){
                        .ts_usec = ra[i].ts_usec,
                        .step = st,
                        .outcome = oc,
                        .attempt = ra[i].attempt,
                        .duration_usec = ra[i].duration_usec,
                        .adapter = ra[i].adapter,
                };
        }

        if (live) {
                state = live->state;
                door = live->door;
                battery = live->battery;
        } else if (sl.last_state && (last = json_tokener_parse(sl.last_state))) {
                json_object *b, *v;
                const char *st = detail_string(last, "state"), *dr = detail_string(last, "door");
                if (st && lock_state_from_string(st) < _LOCK_STATE_MAX)
                        state = lock_state_from_string(st);
                for (int i = 0; dr && i < _LOCK_DOOR_MAX; i++)
                        if (streq(lock_door_to_string((LockDoor) i), dr))
                                door = (LockDoor) i;
                if (json_object_object_get_ex(last, "battery", &b)) {
                        if (json_object_object_get_ex(b, "percent", &v) &&
                            json_object_is_type(v, json_type_int))
                                battery.percent = json_object_get_int(v);
                        if (json_object_object_get_ex(b, "critical", &v))
                                battery.critical = json_object_get_boolean(v);
                }
        }

        HealthDiagnoseInput in = {
                .lock = sl.name,
                .model = live && live->model ? live->model : sl.model,
                .firmware = live && live->firmware ? live->firmware : sl.firmware,
                .state = state,
                .door = door,
                .battery = &battery,
                .needs_repair = sl.needs_repair || (live && live->needs_repair),
                .pin_rejected_usec = pin_usec,
                .pin_rejected_request = detail_string(pin, "request"),
                .ladder = ladder,
                .battery_pct = pct.p,
                .n_battery_pct = pct.n,
                .link = {
                        .rssi = rssi.p, .n_rssi = rssi.n,
                        .connect_ms = conn.p, .n_connect_ms = conn.n,
                        .connect_failed = connfail.p, .n_connect_failed = connfail.n,
                        .latency_ms = lat.p, .n_latency = lat.n,
                        .lost_usec = h.lost, .n_lost = h.n_lost,
                        .last_seen_usec = live && live->link.last_seen_usec ? live->link.last_seen_usec
                                                                            : sl.last_seen_usec,
                        .since_usec = since_link,
                },
                .install = {
                        .jam_usec = h.jams, .n_jams = h.n_jams,
                        .motor_ms = motor.p, .n_motor = motor.n,
                        .door_open_locked_usec = h.door_open_locked,
                        .n_door_open_locked = h.n_door_open_locked,
                        .uncalibrated = state == LOCK_STATE_UNCALIBRATED,
                        .window_usec = (uint64_t) c->jam_window_sec * HEALTH_USEC_PER_SEC,
                },
                .known_firmware = known_firmware,
                .firmware_changed_usec = fw_changed,
                .firmware_previous = fw_previous,
                .tried = tried,
                .n_tried = n_tried,
                .conf = c,
                .now_usec = now_usec,
        };
        r = health_diagnose(&in, ret);

finish:
        free(fw_previous);
        json_object_put(pin);
        json_object_put(last);
        free(pct.p);
        free(rssi.p);
        free(conn.p);
        free(connfail.p);
        free(lat.p);
        free(motor.p);
        free(h.jams);
        free(h.door_open_locked);
        free(h.lost);
        free(tried);
        store_recovery_array_free(ra, n_ra);
        store_lock_done(&sl);
        return r;
}
