/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The firmware model of a simulated Nuki lock (see sim-lock.h for the interface).
 *
 * Motor: an action moves the lock state to its transitional value (unlocking,
 * locking, unlatching) at once and to the final one after motor_action (scaled); an
 * injected jam ends it in "motor blocked" instead. Every finished or failed action is
 * logged with its trigger and completion status and drains the battery.
 *
 * Battery: a percentage that drops per motor action (more when it jams) and with
 * time (a drain timer every simulated 10 minutes), rises while a battery pack charges;
 * voltage and the critical flag follow from it.
 *
 * The state-changed bit (bit 0 of the iBeacon TX-power byte) is set by every change a
 * bridge should hear about and cleared only when a Bridge authorization reads the
 * Keyturner States (sim-lock-proto.c). A connected bridge with indications on the
 * Keyturner GDIO also gets the unencrypted Status 0xF1.
 */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-frame.h"
#include "sim-lock.h"
#include "sim.h"

#define UUID_GAP           "00001800-0000-1000-8000-00805f9b34fb"
#define UUID_GATT          "00001801-0000-1000-8000-00805f9b34fb"
#define UUID_DIS           "0000180a-0000-1000-8000-00805f9b34fb"
#define UUID_PAIRING_SVC   "a92ee100-5501-11e4-916c-0800200c9a66"
#define UUID_PAIRING_SVC_U "a92ee300-5501-11e4-916c-0800200c9a66"
#define UUID_KEYTURNER_SVC "a92ee200-5501-11e4-916c-0800200c9a66"
#define UUID_INIT_SVC      "a92ee000-5501-11e4-916c-0800200c9a66"

static const SimGattChrDef chr_defs[SIM_CHR_COUNT] = {
        [SIM_CHR_SERVICE_CHANGED] = { SIM_CHR_SERVICE_CHANGED, "00002a05-0000-1000-8000-00805f9b34fb",
                                      SIM_F_INDICATE },
        [SIM_CHR_DIS_MANUFACTURER] = { SIM_CHR_DIS_MANUFACTURER, "00002a29-0000-1000-8000-00805f9b34fb",
                                       SIM_F_READ },
        [SIM_CHR_DIS_MODEL] = { SIM_CHR_DIS_MODEL, "00002a24-0000-1000-8000-00805f9b34fb", SIM_F_READ },
        [SIM_CHR_DIS_FIRMWARE] = { SIM_CHR_DIS_FIRMWARE, "00002a26-0000-1000-8000-00805f9b34fb",
                                   SIM_F_READ },
        [SIM_CHR_PAIRING] = { SIM_CHR_PAIRING, "a92ee101-5501-11e4-916c-0800200c9a66",
                              SIM_F_WRITE | SIM_F_INDICATE },
        [SIM_CHR_GDIO] = { SIM_CHR_GDIO, "a92ee201-5501-11e4-916c-0800200c9a66",
                           SIM_F_WRITE | SIM_F_INDICATE },
        [SIM_CHR_USDIO] = { SIM_CHR_USDIO, "a92ee202-5501-11e4-916c-0800200c9a66",
                            SIM_F_WRITE | SIM_F_INDICATE },
};
static const SimGattChrDef chr_pairing_ultra = { SIM_CHR_PAIRING, "a92ee301-5501-11e4-916c-0800200c9a66",
                                                 SIM_F_WRITE | SIM_F_INDICATE };

const SimGattChrDef *sim_lock_chr_def(SimChr id)
{
        return &chr_defs[id];
}

/* keyturner service UUID, big-endian, as in the iBeacon proximity UUID */
static const uint8_t keyturner_uuid_be[16] = { 0xa9, 0x2e, 0xe2, 0x00, 0x55, 0x01, 0x11, 0xe4,
                                               0x91, 0x6c, 0x08, 0x00, 0x20, 0x0c, 0x9a, 0x66 };

const char *sim_gen_to_string(SimGen g)
{
        switch (g) {
        case SIM_GEN_1:
                return "1";
        case SIM_GEN_2:
                return "2";
        case SIM_GEN_3:
                return "3";
        case SIM_GEN_4:
                return "4";
        case SIM_GEN_ULTRA:
                return "ultra";
        }
        return "?";
}

int sim_gen_from_string(const char *s, SimGen *ret)
{
        if (streq(s, "1"))
                *ret = SIM_GEN_1;
        else if (streq(s, "2"))
                *ret = SIM_GEN_2;
        else if (streq(s, "3"))
                *ret = SIM_GEN_3;
        else if (streq(s, "4"))
                *ret = SIM_GEN_4;
        else if (streq(s, "ultra") || streq(s, "5"))
                *ret = SIM_GEN_ULTRA;
        else
                return -EINVAL;
        return 0;
}

int sim_firmware_parse(const char *s, uint8_t fw[3])
{
        unsigned a, b, c;
        char tail;
        if (sscanf(s, "%u.%u.%u%c", &a, &b, &c, &tail) != 3 || a > 255 || b > 255 || c > 255)
                return -EINVAL;
        fw[0] = (uint8_t) a;
        fw[1] = (uint8_t) b;
        fw[2] = (uint8_t) c;
        return 0;
}

static const char *model_name(SimGen g)
{
        switch (g) {
        case SIM_GEN_1:
                return "Smart Lock 1.0";
        case SIM_GEN_2:
                return "Smart Lock 2.0";
        case SIM_GEN_3:
                return "Smart Lock 3.0";
        case SIM_GEN_4:
                return "Smart Lock 4th Generation";
        case SIM_GEN_ULTRA:
                return "Smart Lock Ultra";
        }
        return "Smart Lock";
}

const char *sim_lock_state_to_string(uint8_t s)
{
        switch (s) {
        case SIM_LS_UNCALIBRATED:
                return "uncalibrated";
        case SIM_LS_LOCKED:
                return "locked";
        case SIM_LS_UNLOCKING:
                return "unlocking";
        case SIM_LS_UNLOCKED:
                return "unlocked";
        case SIM_LS_LOCKING:
                return "locking";
        case SIM_LS_UNLATCHED:
                return "unlatched";
        case SIM_LS_UNLOCKED_LNG:
                return "unlocked-lockngo";
        case SIM_LS_UNLATCHING:
                return "unlatching";
        case SIM_LS_CALIBRATION:
                return "calibration";
        case SIM_LS_BOOT_RUN:
                return "boot-run";
        case SIM_LS_MOTOR_BLOCKED:
                return "motor-blocked";
        default:
                return "undefined";
        }
}

const char *sim_door_to_string(uint8_t d)
{
        switch (d) {
        case SIM_DOOR_UNAVAILABLE:
                return "unavailable";
        case SIM_DOOR_DEACTIVATED:
                return "deactivated";
        case SIM_DOOR_CLOSED:
                return "closed";
        case SIM_DOOR_OPENED:
                return "opened";
        case SIM_DOOR_TAMPERED:
                return "tampered";
        default:
                return "unknown";
        }
}

/* ---- GATT table ---- */

static void build_gatt(SimLock *l)
{
        /* A firmware update that moves the handles shifts the Nuki services by 0x10. */
        uint16_t shift = (uint16_t) (0x10 * (l->gatt_generation % 8));
        SimGattSvcDef *s = l->services;

        l->n_services = 0;
        s[l->n_services++] = (SimGattSvcDef){ .uuid = UUID_GAP, .handle = 0x0001 };
        s[l->n_services++] = (SimGattSvcDef){ .uuid = UUID_GATT,
                                              .handle = 0x0008,
                                              .chrs = { &chr_defs[SIM_CHR_SERVICE_CHANGED] },
                                              .n_chrs = 1 };
        s[l->n_services++] = (SimGattSvcDef){ .uuid = UUID_DIS,
                                              .handle = 0x000c,
                                              .chrs = { &chr_defs[SIM_CHR_DIS_MANUFACTURER],
                                                        &chr_defs[SIM_CHR_DIS_MODEL],
                                                        &chr_defs[SIM_CHR_DIS_FIRMWARE] },
                                              .n_chrs = 3 };
        s[l->n_services++] = (SimGattSvcDef){
                .uuid = l->gen == SIM_GEN_ULTRA ? UUID_PAIRING_SVC_U : UUID_PAIRING_SVC,
                .handle = (uint16_t) (0x0020 + shift),
                .chrs = { l->gen == SIM_GEN_ULTRA ? &chr_pairing_ultra : &chr_defs[SIM_CHR_PAIRING] },
                .n_chrs = 1,
        };
        s[l->n_services++] = (SimGattSvcDef){ .uuid = UUID_KEYTURNER_SVC,
                                              .handle = (uint16_t) (0x0030 + shift),
                                              .chrs = { &chr_defs[SIM_CHR_GDIO], &chr_defs[SIM_CHR_USDIO] },
                                              .n_chrs = 2 };
}

void sim_lock_gatt_changed(SimLock *l)
{
        l->gatt_generation++;
        build_gatt(l);
}

/* ---- time ---- */

int64_t sim_lock_time(const SimLock *l)
{
        return sim_wallclock(l->sim) + l->clock_offset;
}

void sim_time_encode(int64_t t, uint8_t out[7])
{
        time_t tt = (time_t) t;
        struct tm tm;

        gmtime_r(&tt, &tm);
        nuki_put_u16(out, (uint16_t) (tm.tm_year + 1900));
        out[2] = (uint8_t) (tm.tm_mon + 1);
        out[3] = (uint8_t) tm.tm_mday;
        out[4] = (uint8_t) tm.tm_hour;
        out[5] = (uint8_t) tm.tm_min;
        out[6] = (uint8_t) tm.tm_sec;
}

/* ---- battery ---- */

uint16_t sim_lock_battery_mv(const SimLock *l)
{
        return (uint16_t) (4500 + l->battery * 19.0);
}

bool sim_lock_battery_critical(const SimLock *l)
{
        return l->battery < 20.0;
}

uint8_t sim_lock_battery_byte(const SimLock *l)
{
        unsigned pct = (unsigned) lround(l->battery);
        return (uint8_t) ((sim_lock_battery_critical(l) ? 1 : 0) | (l->charging ? 2 : 0) | ((pct / 2) << 2));
}

uint8_t sim_lock_door_byte(const SimLock *l)
{
        if (l->gen <= SIM_GEN_2) {
                switch (l->door) {
                case SIM_DOOR_TAMPERED:
                        return 0x04;
                default:
                        return l->door;
                }
        }
        if (l->door == SIM_DOOR_UNKNOWN)
                return 0xFF;
        if (l->door == SIM_DOOR_DEACTIVATED)
                return 0x00;
        return l->door;
}

static void battery_drain(SimLock *l, double pct)
{
        bool was_critical = sim_lock_battery_critical(l);
        uint16_t mv;

        l->battery = fmax(0.0, fmin(100.0, l->battery - pct));
        mv = sim_lock_battery_mv(l);
        if (mv < l->lowest_mv || l->lowest_mv == 0)
                l->lowest_mv = mv;
        if (was_critical != sim_lock_battery_critical(l))
                sim_lock_state_changed(l);
}

void sim_lock_set_battery(SimLock *l, double percent)
{
        bool was_critical = sim_lock_battery_critical(l);
        l->battery = fmax(0.0, fmin(100.0, percent));
        l->lowest_mv = sim_lock_battery_mv(l);
        if (was_critical != sim_lock_battery_critical(l))
                sim_lock_state_changed(l);
}

#define DRAIN_PERIOD       (600 * USEC_PER_SEC) /* simulated 10 minutes */
#define FAULT_DRAIN_PERIOD (6 * USEC_PER_SEC)   /* SetDrainRate: simulated 6 s steps */
#define TC_PERIOD          (20 * USEC_PER_SEC)  /* Time Control entries are checked 3 times a minute */

static int tc_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimLock *l = userdata;
        int64_t local = sim_lock_time(l) + (int64_t) l->cfg.tz_offset * 60, minute = local / 60;
        time_t tt = (time_t) local;
        struct tm tm;

        gmtime_r(&tt, &tm);
        if (minute != l->tc_last_minute) {
                /* tm_wday: 0 = Sunday; the weekday mask has Monday in bit 6, Sunday in bit 0 */
                unsigned bit = tm.tm_wday == 0 ? 0 : (unsigned) (7 - tm.tm_wday);
                l->tc_last_minute = minute;
                for (size_t i = 0; i < l->n_tc; i++) {
                        SimTimeControl *t = &l->tc[i];
                        if (!t->enabled || t->hour != tm.tm_hour || t->minute != tm.tm_min)
                                continue;
                        if (t->weekdays && !(t->weekdays & (1U << bit)))
                                continue;
                        (void) sim_lock_start_action(l, t->action, 0x03 /* automatic */, 0, "Time Control",
                                                     false, 0);
                }
        }
        return sim_timer(l->sim, &l->tc_timer, TC_PERIOD, tc_handler, l);
}

static int drain_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimLock *l = userdata;

        if (l->charging)
                battery_drain(l, -5.0 / 6.0); /* 5 %/h */
        else if (l->drain_per_hour >= 0) {
                /* SetDrainRate: in finer steps, so a client sees it fall steadily */
                battery_drain(l, l->drain_per_hour * (double) FAULT_DRAIN_PERIOD / (3600.0 * USEC_PER_SEC));
                return sim_timer(l->sim, &l->drain_timer, FAULT_DRAIN_PERIOD, drain_handler, l);
        } else
                battery_drain(l, 0.02 / 6.0); /* 0.02 %/h idle: about 7 months on a set */
        return sim_timer(l->sim, &l->drain_timer, DRAIN_PERIOD, drain_handler, l);
}

void sim_lock_set_drain_rate(SimLock *l, double percent_per_hour)
{
        l->drain_per_hour = percent_per_hour;
        (void) sim_timer(l->sim, &l->drain_timer, percent_per_hour >= 0 ? FAULT_DRAIN_PERIOD : DRAIN_PERIOD,
                         drain_handler, l);
}

/* ---- log and state ---- */

void sim_lock_log(SimLock *l, uint32_t auth_id, const char *name, uint8_t type, const uint8_t *data,
                  uint8_t len)
{
        SimLogEntry *e;

        if (!l->logging_enabled && type != 0x01)
                return;
        if (l->n_log == SIM_MAX_LOG) {
                memmove(&l->log[0], &l->log[1], (SIM_MAX_LOG - 1) * sizeof(l->log[0]));
                l->n_log--;
        }
        e = &l->log[l->n_log++];
        *e = (SimLogEntry){ .index = l->next_log_index++,
                            .time = sim_lock_time(l),
                            .auth_id = auth_id,
                            .type = type,
                            .len = (uint8_t) MIN(len, sizeof(e->data)) };
        snprintf(e->name, sizeof(e->name), "%s", strempty(name));
        memcpy(e->data, data, e->len);
}

void sim_lock_state_changed(SimLock *l)
{
        bool bridge = false;

        l->state_changed = true;
        sim_trace(l->sim, l->name, "state", l->lock_state);
        for (size_t i = 0; i < l->n_auths; i++)
                if (l->auths[i].type == 1)
                        bridge = true;
        if (l->link && bridge && l->cccd[SIM_CHR_GDIO]) {
                uint8_t st = 0xF1, frame[8];
                int n = nuki_frame_encode_plain(0x000E, &st, 1, frame, sizeof(frame));
                if (n > 0)
                        sim_lock_indicate(l, SIM_CHR_GDIO, frame, (size_t) n);
        }
        sim_lock_proto_state_push(l);
}

/* ---- motor ---- */

static uint8_t final_state(uint8_t action)
{
        switch (action) {
        case 0x01:
                return SIM_LS_UNLOCKED;
        case 0x02:
        case 0x06:
                return SIM_LS_LOCKED;
        case 0x03:
                return SIM_LS_UNLATCHED;
        case 0x04:
        case 0x05:
                return SIM_LS_UNLOCKED_LNG;
        default:
                return SIM_LS_UNDEFINED;
        }
}

static uint8_t moving_state(uint8_t action)
{
        switch (action) {
        case 0x01:
        case 0x04:
                return SIM_LS_UNLOCKING;
        case 0x02:
        case 0x06:
                return SIM_LS_LOCKING;
        default:
                return SIM_LS_UNLATCHING;
        }
}

static void log_action(SimLock *l, uint8_t action, uint8_t trigger, uint8_t completion, uint32_t auth_id,
                       const char *name, bool keypad, uint16_t code_id)
{
        if (keypad) {
                uint8_t data[5] = { action, 1, completion, 0, 0 };
                nuki_put_u16(data + 3, code_id);
                sim_lock_log(l, auth_id, name, 0x05, data, 5);
        } else {
                uint8_t data[4] = { action, trigger, 0, completion };
                sim_lock_log(l, auth_id, name, 0x02, data, 4);
        }
}

static int lng_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimLock *l = userdata;

        l->lng_timer = sd_event_source_disable_unref(l->lng_timer);
        if (l->lock_state != SIM_LS_UNLOCKED_LNG || l->motor_action)
                return 0;
        (void) sim_lock_start_action(l, 0x02, 0x06, 0, "Auto Lock", false, 0);
        return 0;
}

static int motor_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimLock *l = userdata;
        uint8_t action = l->motor_action, completion = 0, error = 0;

        l->motor_timer = sd_event_source_disable_unref(l->motor_timer);
        if (l->jams_pending > 0) {
                l->jams_pending--;
                l->lock_state = SIM_LS_MOTOR_BLOCKED;
                completion = 0x01;
                error = 0x42; /* K_ERROR_MOTOR_BLOCKED */
                l->last_drain = 2400;
                battery_drain(l, 0.12);
        } else {
                l->lock_state = final_state(action);
                l->last_drain = action == 0x03 || action == 0x05 ? 1800 : 1200;
                battery_drain(l, action == 0x03 || action == 0x05 ? 0.08 : 0.05);
                if (l->lock_state == SIM_LS_LOCKED)
                        l->closings++;
                else
                        l->openings++;
        }
        l->last_action = action;
        l->last_trigger = l->motor_trigger;
        l->last_completion = completion;
        l->motor_action = 0;
        l->n_actions++;
        log_action(l, action, l->motor_trigger, completion, l->motor_auth, l->motor_name, l->motor_keypad,
                   l->motor_code_id);
        if (!error && l->lock_state == SIM_LS_UNLATCHED)
                /* the latch is held for the unlatch duration, then the lock rests unlocked */
                l->lock_state = SIM_LS_UNLOCKED;
        if (!error && l->lock_state == SIM_LS_UNLOCKED_LNG)
                (void) sim_timer(l->sim, &l->lng_timer, l->sim->t.lockngo, lng_handler, l);
        sim_lock_proto_action_done(l, completion, error);
        sim_lock_state_changed(l);
        if (l->then_pending) {
                /* fault: someone turns the lock by hand before the hub is back */
                action = l->then_pending;
                l->then_pending = 0;
                sim_lock_manual(l, action);
        }
        return 0;
}

uint8_t sim_lock_start_action(SimLock *l, uint8_t action, uint8_t trigger, uint32_t auth_id,
                              const char *name, bool keypad, uint16_t code_id)
{
        uint64_t duration = l->sim->t.motor_action;

        if (final_state(action) == SIM_LS_UNDEFINED)
                return 0x23; /* K_ERROR_BAD_PARAMETER */
        if (l->nuki_state == 0 || l->lock_state == SIM_LS_UNCALIBRATED)
                return 0x47; /* K_ERROR_NOT_CALIBRATED */
        if (l->motor_action || l->calibration_timer)
                return 0x45; /* K_ERROR_BUSY */
        if (l->battery < 2.0)
                return 0x49; /* K_ERROR_MOTOR_LOW_VOLTAGE */
        l->lng_timer = sd_event_source_disable_unref(l->lng_timer);
        l->motor_action = action;
        l->motor_trigger = trigger;
        l->motor_auth = auth_id;
        snprintf(l->motor_name, sizeof(l->motor_name), "%s", strempty(name));
        l->motor_keypad = keypad;
        l->motor_code_id = code_id;
        l->trigger = trigger;
        if (action == 0x03 || action == 0x05)
                duration += duration / 2;
        /* locking an already locked lock still turns the motor a little */
        if ((action == 0x02 && l->lock_state == SIM_LS_LOCKED) ||
            (action == 0x01 && l->lock_state == SIM_LS_UNLOCKED))
                duration /= 4;
        duration = (uint64_t) ((double) duration * l->motor_factor);
        l->lock_state = moving_state(action);
        sim_lock_state_changed(l);
        (void) sim_timer(l->sim, &l->motor_timer, duration, motor_handler, l);
        return 0;
}

void sim_lock_manual(SimLock *l, uint8_t action)
{
        l->lng_timer = sd_event_source_disable_unref(l->lng_timer);
        l->lock_state = final_state(action) == SIM_LS_UNLATCHED ? SIM_LS_UNLOCKED : final_state(action);
        if (l->lock_state == SIM_LS_UNLOCKED_LNG)
                l->lock_state = SIM_LS_UNLOCKED;
        l->trigger = 0x01;
        l->last_action = action;
        l->last_trigger = 0x01;
        l->last_completion = 0;
        log_action(l, action, 0x01, 0, 0, "Manual", false, 0);
        sim_lock_state_changed(l);
}

int sim_lock_keypad_entry(SimLock *l, uint32_t code)
{
        for (size_t i = 0; i < l->n_codes; i++) {
                SimCode *c = &l->codes[i];
                uint8_t err;
                if (c->code != code || !c->enabled)
                        continue;
                c->last_active = sim_lock_time(l);
                c->lock_count++;
                err = sim_lock_start_action(l, 0x01, 0x00, 0, c->name, true, c->id);
                if (err) {
                        log_action(l, 0x01, 0x00, 0xFE, 0, c->name, true, c->id);
                        return -EBUSY;
                }
                return 0;
        }
        log_action(l, 0x01, 0x00, 0xE0, 0, "Keypad", true, 0);
        sim_lock_state_changed(l);
        return -ENOENT;
}

void sim_lock_set_door(SimLock *l, uint8_t door)
{
        uint8_t v;

        if (l->door == door)
                return;
        l->door = door;
        switch (door) {
        case SIM_DOOR_OPENED:
                v = 0;
                break;
        case SIM_DOOR_CLOSED:
                v = 1;
                break;
        case SIM_DOOR_TAMPERED:
                v = 3;
                break;
        default:
                v = 0xFF;
                break;
        }
        if (v != 0xFF)
                sim_lock_log(l, 0, "Door sensor", 0x06, &v, 1);
        sim_lock_state_changed(l);
}

static int calibration_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimLock *l = userdata;

        l->calibration_timer = sd_event_source_disable_unref(l->calibration_timer);
        l->lock_state = SIM_LS_LOCKED;
        if (l->nuki_state == 0)
                l->nuki_state = 2;
        battery_drain(l, 0.3);
        sim_lock_proto_action_done(l, 0, 0);
        sim_lock_state_changed(l);
        return 0;
}

uint8_t sim_lock_calibrate(SimLock *l, uint32_t auth_id, const char *name)
{
        uint8_t data[4] = { 0, 0, 0, 0 };

        if (l->motor_action || l->calibration_timer)
                return 0x45; /* K_ERROR_BUSY */
        if (l->battery < 2.0)
                return 0x4C; /* K_ERROR_VOLTAGE_TOO_LOW */
        l->lng_timer = sd_event_source_disable_unref(l->lng_timer);
        l->lock_state = SIM_LS_CALIBRATION;
        l->n_calibrations++;
        sim_lock_log(l, auth_id, name, 0x03, data, 4);
        sim_lock_state_changed(l);
        /* both end positions and back: four motor runs */
        (void) sim_timer(l->sim, &l->calibration_timer,
                         (uint64_t) ((double) (4 * l->sim->t.motor_action) * l->motor_factor),
                         calibration_handler, l);
        return 0;
}

void sim_lock_uncalibrate(SimLock *l)
{
        l->calibration_timer = sd_event_source_disable_unref(l->calibration_timer);
        l->lock_state = SIM_LS_UNCALIBRATED;
        sim_lock_state_changed(l);
}

/* the settings of a lock fresh from the factory */
static void default_settings(SimLock *l)
{
        l->cfg = (SimLockConfig){ .latitude = 48.2f,
                                  .longitude = 16.37f,
                                  .pairing_enabled = 1,
                                  .button_enabled = 1,
                                  .led_enabled = 1,
                                  .led_brightness = 3,
                                  .dst_mode = 1,
                                  .timezone_id = 37 };
        l->adv = (SimLockAdvConfig){ .total_degrees = 720,
                                     .lockngo_timeout = 20,
                                     .single_button_action = 1,
                                     .double_button_action = 5,
                                     .unlatch_duration = 3,
                                     .auto_lock_timeout = 300,
                                     .immediate_auto_lock = 0 };
}

static void new_identity(SimLock *l)
{
        NukiKeyPair kp;
        (void) nuki_keypair_generate(&kp);
        memcpy(l->public_key, kp.public_key, 32);
        memcpy(l->secret_key, kp.secret_key, 32);
        nuki_keypair_wipe(&kp);
        nuki_random(l->uuid, sizeof(l->uuid));
}

void sim_lock_reboot(SimLock *l)
{
        if (l->link)
                sim_device_link_lost(l->link, "lock rebooted");
        l->motor_timer = sd_event_source_disable_unref(l->motor_timer);
        l->motor_action = 0;
        if (l->lock_state == SIM_LS_LOCKING || l->lock_state == SIM_LS_UNLOCKING ||
            l->lock_state == SIM_LS_UNLATCHING)
                l->lock_state = SIM_LS_UNDEFINED;
        if (l->calibration_timer) {
                l->calibration_timer = sd_event_source_disable_unref(l->calibration_timer);
                l->lock_state = SIM_LS_UNCALIBRATED;
        }
}

void sim_lock_factory_reset(SimLock *l)
{
        sim_lock_reboot(l);
        l->n_auths = 0;
        l->n_codes = 0;
        l->n_tc = 0;
        l->n_log = 0;
        l->next_log_index = 1;
        new_identity(l);
        l->nuki_state = 0;
        l->lock_state = SIM_LS_UNCALIBRATED;
        l->pin_failures = 0;
        l->clock_offset = 0;
        l->logging_enabled = true;
        l->config_update_count++;
        default_settings(l);
        snprintf(l->cfg.name, sizeof(l->cfg.name), "Nuki_%08X", l->nuki_id);
        sim_lock_set_pairing_mode(l, true);
        l->state_changed = true;
}

void sim_lock_revoke(SimLock *l)
{
        l->n_auths = 0;
}

static int pairing_timeout_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        sim_lock_set_pairing_mode(userdata, false);
        return 0;
}

void sim_lock_set_pairing_mode(SimLock *l, bool on)
{
        l->pairing_mode = on;
        if (on) {
                if (l->nuki_state != 0)
                        l->nuki_state = 1;
                (void) sim_timer(l->sim, &l->pairing_timer, l->sim->t.pairing_mode, pairing_timeout_handler,
                                 l);
        } else {
                if (l->nuki_state == 1)
                        l->nuki_state = 2;
                l->pairing_timer = sd_event_source_disable_unref(l->pairing_timer);
        }
}

/* ---- stores ---- */

SimAuth *sim_lock_find_auth(SimLock *l, uint32_t id)
{
        for (size_t i = 0; i < l->n_auths; i++)
                if (l->auths[i].id == id)
                        return &l->auths[i];
        return NULL;
}

int sim_lock_remove_auth(SimLock *l, uint32_t id)
{
        for (size_t i = 0; i < l->n_auths; i++)
                if (l->auths[i].id == id) {
                        memmove(&l->auths[i], &l->auths[i + 1], (l->n_auths - i - 1) * sizeof(l->auths[0]));
                        l->n_auths--;
                        return 0;
                }
        return -ENOENT;
}

int sim_lock_add_auth(SimLock *l, uint8_t type, uint32_t app_id, const char *name, const uint8_t key[32],
                      SimAuth **ret)
{
        SimAuth *a;

        /* a lock holds one bridge; the same app id pairing again replaces its entry */
        for (size_t i = 0; i < l->n_auths; i++)
                if ((type == 1 && l->auths[i].type == 1) ||
                    (l->auths[i].app_id == app_id && l->auths[i].type == type && app_id != 0)) {
                        (void) sim_lock_remove_auth(l, l->auths[i].id);
                        break;
                }
        if (l->n_auths >= l->max_auths || l->n_auths >= SIM_MAX_AUTHS)
                return -ENOSPC;
        a = &l->auths[l->n_auths++];
        *a = (SimAuth){ .id = l->next_auth_id++,
                        .type = type,
                        .app_id = app_id,
                        .enabled = true,
                        .remote_allowed = true,
                        .created = sim_lock_time(l) };
        snprintf(a->name, sizeof(a->name), "%s", strempty(name));
        memcpy(a->key, key, 32);
        if (ret)
                *ret = a;
        return 0;
}

uint8_t sim_code_check(const SimLock *l, uint32_t code, uint16_t except_id)
{
        char s[16];

        snprintf(s, sizeof(s), "%u", code);
        if (strlen(s) != 6 || strchr(s, '0') || strneq(s, "12", 2))
                return 0x2B; /* K_ERROR_CODE_INVALID */
        for (size_t i = 0; i < l->n_codes; i++)
                if (l->codes[i].code == code && l->codes[i].id != except_id)
                        return 0x2A; /* K_ERROR_CODE_ALREADY_EXISTS */
        return 0;
}

/* ---- GATT side ---- */

void sim_lock_connected(SimLock *l, SimDevice *d)
{
        l->n_connections++;
        memset(l->cccd, 0, sizeof(l->cccd));
        l->session = sim_lock_session_free(l->session);
        l->session = sim_lock_session_new(l);
}

void sim_lock_disconnected(SimLock *l)
{
        memset(l->cccd, 0, sizeof(l->cccd));
        l->session = sim_lock_session_free(l->session);
}

void sim_lock_cccd(SimLock *l, SimChr chr, bool enabled)
{
        l->cccd[chr] = enabled;
}

uint8_t sim_lock_read(SimLock *l, SimChr chr, uint16_t offset, uint8_t *buf, size_t size, size_t *ret_len)
{
        char s[64];
        size_t n;

        switch (chr) {
        case SIM_CHR_DIS_MANUFACTURER:
                snprintf(s, sizeof(s), "Nuki Home Solutions GmbH");
                break;
        case SIM_CHR_DIS_MODEL:
                snprintf(s, sizeof(s), "%s", model_name(l->gen));
                break;
        case SIM_CHR_DIS_FIRMWARE:
                snprintf(s, sizeof(s), "%u.%u.%u", l->firmware[0], l->firmware[1], l->firmware[2]);
                break;
        case SIM_CHR_SERVICE_CHANGED:
        case SIM_CHR_PAIRING:
        case SIM_CHR_GDIO:
        case SIM_CHR_USDIO:
        case SIM_CHR_COUNT:
                return 0x02; /* Read Not Permitted */
        }
        n = strlen(s);
        if (offset > n)
                return 0x07; /* Invalid Offset */
        n = MIN(n - offset, size);
        memcpy(buf, s + offset, n);
        *ret_len = n;
        return 0;
}

uint8_t sim_lock_write(SimLock *l, SimChr chr, const uint8_t *data, size_t len)
{
        if (!(chr_defs[chr].flags & (SIM_F_WRITE | SIM_F_WRITE_NR)))
                return 0x03; /* Write Not Permitted */
        sim_lock_proto_write(l, chr, data, len);
        return 0;
}

void sim_lock_indicate(SimLock *l, SimChr chr, const uint8_t *data, size_t len)
{
        size_t chunk;

        if (!l->link || !l->cccd[chr])
                return;
        /* one indication carries at most MTU-3 bytes: long messages go in pieces */
        chunk = (size_t) MAX(l->link->mtu - 3, 20);
        for (size_t off = 0; off < len; off += chunk) {
                sim_device_indicate(l->link, (int) chr, data + off, MIN(chunk, len - off));
                l->n_indications++;
        }
}

void sim_lock_build_advert(SimLock *l, SimAdvert *ad)
{
        uint8_t tx = l->gen <= SIM_GEN_2 ? 0xC4 : 0xC8;

        *ad = (SimAdvert){ .discoverable = !l->non_discoverable, .connectable = true, .company = 0x004C };
        snprintf(ad->name, sizeof(ad->name), "Nuki_%08X", l->nuki_id);
        ad->mfr[0] = 0x02;
        ad->mfr[1] = 0x15;
        memcpy(ad->mfr + 2, keyturner_uuid_be, 16);
        ad->mfr[18] = (uint8_t) (l->nuki_id >> 24);
        ad->mfr[19] = (uint8_t) (l->nuki_id >> 16);
        ad->mfr[20] = (uint8_t) (l->nuki_id >> 8);
        ad->mfr[21] = (uint8_t) l->nuki_id;
        ad->mfr[22] = (uint8_t) (tx | (l->state_changed ? 1 : 0));
        ad->mfr_len = 23;
        if (l->pairing_mode) {
                snprintf(ad->sd_uuid, sizeof(ad->sd_uuid), "%s",
                         l->gen == SIM_GEN_ULTRA ? UUID_PAIRING_SVC_U : UUID_PAIRING_SVC);
                memcpy(ad->sd, ad->mfr + 18, 4);
                ad->sd_len = 4;
        }
        ad->uuids[ad->n_uuids++] = UUID_KEYTURNER_SVC;
        if (l->nuki_state == 0)
                ad->uuids[ad->n_uuids++] = UUID_INIT_SVC;
}

/* ---- life cycle ---- */

void sim_lock_spec_default(SimLockSpec *s, const char *name, unsigned n)
{
        *s = (SimLockSpec){ .gen = SIM_GEN_3,
                            .battery = 90.0,
                            .rssi = -60,
                            .adv_interval_ms = 0,
                            .security_pin = 1234,
                            .max_auths = 0 };
        snprintf(s->name, sizeof(s->name), "%s", name);
        snprintf(s->address, sizeof(s->address), "54:D2:72:00:00:%02X", (n + 1) & 0xFF);
        s->nuki_id = 0x2A000000u + n + 1;
        snprintf(s->firmware, sizeof(s->firmware), "3.6.9");
}

int sim_lock_new(Sim *sim, const SimLockSpec *spec, SimLock **ret)
{
        SimLock *l = calloc(1, sizeof(*l));
        int r;

        if (!l)
                return -ENOMEM;
        l->sim = sim;
        l->name = strdup(spec->name);
        if (!l->name) {
                free(l);
                return -ENOMEM;
        }
        snprintf(l->address, sizeof(l->address), "%s", spec->address);
        for (char *p = l->address; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char) (*p - 'a' + 'A');
        l->gen = spec->gen;
        l->nuki_id = spec->nuki_id;
        r = sim_firmware_parse(spec->firmware, l->firmware);
        if (r < 0) {
                sim_lock_free(l);
                return r;
        }
        l->hw_rev[0] = (uint8_t) (l->gen == SIM_GEN_ULTRA ? 5 : l->gen);
        l->hw_rev[1] = 0;
        new_identity(l);
        build_gatt(l);
        l->mtu = l->gen <= SIM_GEN_2 ? 23 : 185;
        l->rssi = spec->rssi;
        l->rssi_noise = 3.0;
        l->adv_interval = spec->adv_interval_ms ? spec->adv_interval_ms * USEC_PER_MSEC
                                                : (l->gen <= SIM_GEN_2 ? 500 : 1000) * USEC_PER_MSEC;
        l->conn_latency = l->adv_interval / 2;
        l->rtt = sim->t.att_round_trip;
        l->in_range = true;
        l->nuki_state = spec->uninitialized ? 0 : 2;
        l->lock_state = spec->uninitialized ? SIM_LS_UNCALIBRATED : SIM_LS_LOCKED;
        l->door = l->gen >= SIM_GEN_3 ? SIM_DOOR_CLOSED : SIM_DOOR_DEACTIVATED;
        l->battery = spec->battery;
        l->battery_pack = l->gen >= SIM_GEN_4;
        l->lowest_mv = sim_lock_battery_mv(l);
        l->security_pin = spec->security_pin;
        if (l->gen == SIM_GEN_ULTRA && l->security_pin < 100000)
                l->security_pin = 123456;
        l->logging_enabled = true;
        l->motor_factor = 1.0;
        l->drain_per_hour = -1.0;
        l->max_auths = spec->max_auths ? spec->max_auths : (l->gen == SIM_GEN_1 ? 100 : 200);
        l->ultra_reply = spec->ultra_reply;
        l->next_auth_id = 1;
        l->next_code_id = 1;
        l->next_log_index = 1;
        default_settings(l);
        snprintf(l->cfg.name, sizeof(l->cfg.name), "%s", spec->name);
        if (spec->paired) {
                SimAuth *a;
                r = sim_lock_add_auth(l, 1, 0, "lockhub", spec->auth_key, &a);
                if (r < 0) {
                        sim_lock_free(l);
                        return r;
                }
                a->id = spec->auth_id ? spec->auth_id : a->id;
                if (a->id >= l->next_auth_id)
                        l->next_auth_id = a->id + 1;
        }
        if (spec->pairing_mode || spec->uninitialized)
                sim_lock_set_pairing_mode(l, true);
        (void) sim_timer(sim, &l->drain_timer, DRAIN_PERIOD, drain_handler, l);
        (void) sim_timer(sim, &l->tc_timer, TC_PERIOD, tc_handler, l);
        l->next_tc_id = 1;
        *ret = l;
        return 0;
}

SimLock *sim_lock_free(SimLock *l)
{
        if (!l)
                return NULL;
        sim_radio_stop(l);
        l->session = sim_lock_session_free(l->session);
        sd_event_source_disable_unref(l->motor_timer);
        sd_event_source_disable_unref(l->lng_timer);
        sd_event_source_disable_unref(l->pairing_timer);
        sd_event_source_disable_unref(l->drain_timer);
        sd_event_source_disable_unref(l->reboot_timer);
        sd_event_source_disable_unref(l->tc_timer);
        sd_event_source_disable_unref(l->drop_timer);
        sd_event_source_disable_unref(l->calibration_timer);
        nuki_wipe(l->secret_key, sizeof(l->secret_key));
        nuki_wipe(l->auths, sizeof(l->auths));
        free(l->name);
        free(l);
        return NULL;
}
