/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control service org.lockhub.Sim, on its own bus connection so that it survives
 * a simulated bluetoothd crash:
 *
 *   /org/lockhub/sim         org.lockhub.SimHub1  HangAdapter(s), CrashBluez(u),
 *                                                 StopBluez(u), StartBluez(), Dump()→s
 *   /org/lockhub/sim/<lock>  org.lockhub.Sim1     fault injection, model changes, and
 *                                                 read-back (properties, Dump()→s JSON)
 *
 * and `lockhub-sim ctl`, a small client for shell scripts:
 *   lockhub-sim ctl hub METHOD [ARG...]
 *   lockhub-sim ctl LOCK METHOD [ARG...]
 *   lockhub-sim ctl LOCK get PROPERTY
 *   lockhub-sim ctl wait-bluez SECONDS      (exit 0 once an adapter is powered)
 */

#include <errno.h>
#include <json-c/json.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "sim-lock.h"
#include "sim.h"

#define SIM_PATH   "/org/lockhub/sim"
#define IFACE_LOCK "org.lockhub.Sim1"
#define IFACE_HUB  "org.lockhub.SimHub1"

static int parse_action(const char *s, uint8_t *ret)
{
        if (streq(s, "unlock"))
                *ret = 0x01;
        else if (streq(s, "lock"))
                *ret = 0x02;
        else if (streq(s, "unlatch"))
                *ret = 0x03;
        else
                return -EINVAL;
        return 0;
}

static int parse_door(const char *s, uint8_t *ret)
{
        if (streq(s, "closed"))
                *ret = SIM_DOOR_CLOSED;
        else if (streq(s, "opened") || streq(s, "open"))
                *ret = SIM_DOOR_OPENED;
        else if (streq(s, "tampered"))
                *ret = SIM_DOOR_TAMPERED;
        else if (streq(s, "unknown"))
                *ret = SIM_DOOR_UNKNOWN;
        else if (streq(s, "unavailable"))
                *ret = SIM_DOOR_UNAVAILABLE;
        else if (streq(s, "deactivated"))
                *ret = SIM_DOOR_DEACTIVATED;
        else
                return -EINVAL;
        return 0;
}

static int m_set_pairing_mode(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        sim_lock_set_pairing_mode(userdata, v);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_battery(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        uint8_t v;
        int r = sd_bus_message_read(m, "y", &v);
        if (r < 0)
                return r;
        if (v > 100)
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS, "percent must be 0..100");
        sim_lock_set_battery(userdata, v);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_charging(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        if (v && !l->battery_pack)
                return sd_bus_error_set(e, SD_BUS_ERROR_NOT_SUPPORTED, "this model has no battery pack");
        l->charging = v;
        sim_lock_state_changed(l);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_rssi(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        int16_t v;
        int r = sd_bus_message_read(m, "n", &v);
        if (r < 0)
                return r;
        l->rssi = v;
        if (!sim_radio_reachable(l) && l->link)
                sim_device_link_lost(l->link, "out of range");
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_in_range(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        l->in_range = v;
        if (!v && l->link)
                sim_device_link_lost(l->link, "out of range");
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_discoverable(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        int v, r = sd_bus_message_read(m, "b", &v);
        if (r < 0)
                return r;
        l->non_discoverable = !v;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_latency(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        l->rtt = (uint64_t) v * USEC_PER_MSEC;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_loss(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        double v;
        int r = sd_bus_message_read(m, "d", &v);
        if (r < 0)
                return r;
        if (v < 0.0 || v > 1.0)
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS, "loss must be 0..1");
        l->loss = v;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_adv_interval(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        if (v < 20)
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS,
                                        "advertising interval must be >= 20 ms");
        l->adv_interval = (uint64_t) v * USEC_PER_MSEC;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_inject_jam(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        l->jams_pending = v;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_inject_att_error(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint8_t code;
        uint32_t count;
        int r = sd_bus_message_read(m, "yu", &code, &count);
        if (r < 0)
                return r;
        l->att_error = code;
        l->att_error_count = count;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_user_limit(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        if (v < 1 || v > SIM_MAX_AUTHS)
                return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "limit must be 1..%d", SIM_MAX_AUTHS);
        l->max_auths = v;
        return sd_bus_reply_method_return(m, NULL);
}

/* The PIN changes as in the vendor's app: the hub is not told. */
static int m_set_security_pin(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        if (v == 0 || (l->gen != SIM_GEN_ULTRA && v > 9999) || (l->gen == SIM_GEN_ULTRA && v > 999999))
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS,
                                        "PIN must be 1..9999 (Ultra: 1..999999)");
        l->security_pin = v;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_drop_link_on_action(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        l->drop_on_action = v;
        l->drop_then = 0;
        return sd_bus_reply_method_return(m, NULL);
}

/* DropLinkOnAction, and when that action's motor stops, `action` is done by hand at once
 * (auto-lock or a person, before the hub is connected again). */
static int m_drop_link_on_action_then(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        const char *s;
        uint32_t v;
        uint8_t a;
        int r = sd_bus_message_read(m, "us", &v, &s);
        if (r < 0)
                return r;
        if (parse_action(s, &a) < 0)
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS, "action: unlock, lock or unlatch");
        l->drop_on_action = v;
        l->drop_then = a;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_fail_action_reply(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        l->fail_action_reply = v;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_drop_link_before_action(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        uint32_t v;
        int r = sd_bus_message_read(m, "u", &v);
        if (r < 0)
                return r;
        l->drop_before_action = v;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_calibrated(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        int b, r = sd_bus_message_read(m, "b", &b);
        if (r < 0)
                return r;
        if (!b)
                sim_lock_uncalibrate(l);
        else if (l->lock_state == SIM_LS_UNCALIBRATED) {
                l->lock_state = SIM_LS_LOCKED;
                sim_lock_state_changed(l);
        }
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_drain_rate(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        double v;
        int r = sd_bus_message_read(m, "d", &v);
        if (r < 0)
                return r;
        if (!(v <= 1000.0))
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS,
                                        "%/h must be at most 1000 (< 0: normal)");
        sim_lock_set_drain_rate(l, v);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_motor_factor(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        double v;
        int r = sd_bus_message_read(m, "d", &v);
        if (r < 0)
                return r;
        if (!(v >= 0.1 && v <= 20.0))
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS, "factor must be 0.1..20");
        l->motor_factor = v;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_drop_link(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        if (!l->link)
                return sd_bus_error_set(e, "org.lockhub.Sim.Error.NotConnected", "no link to drop");
        sim_device_link_lost(l->link, "link loss (injected)");
        return sd_bus_reply_method_return(m, NULL);
}

static int m_manual_action(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        const char *s;
        uint8_t a;
        int r = sd_bus_message_read(m, "s", &s);
        if (r < 0)
                return r;
        if (parse_action(s, &a) < 0)
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS, "action: unlock, lock or unlatch");
        sim_lock_manual(userdata, a);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_keypad_entry(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        uint32_t code;
        int r = sd_bus_message_read(m, "u", &code);
        if (r < 0)
                return r;
        r = sim_lock_keypad_entry(userdata, code);
        return sd_bus_reply_method_return(m, "b", r == 0);
}

/* AddKeypadCode(u code, s name) → q id: a code entered on the lock's own keypad setup
 * (the app's job on a real lock), so keypad entries can be attributed in tests. */
static int m_add_keypad_code(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        const char *name;
        uint32_t code;
        uint8_t err;
        SimCode *c;
        int r = sd_bus_message_read(m, "us", &code, &name);
        if (r < 0)
                return r;
        err = sim_code_check(l, code, 0);
        if (err)
                return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "code refused (error 0x%02x)", err);
        if (l->n_codes >= SIM_MAX_CODES)
                return sd_bus_error_set(e, SD_BUS_ERROR_LIMITS_EXCEEDED, "code store full");
        c = &l->codes[l->n_codes++];
        *c = (SimCode){
                .id = l->next_code_id++, .code = code, .enabled = true, .created = sim_lock_time(l)
        };
        snprintf(c->name, sizeof(c->name), "%s", name);
        l->cfg.has_keypad = 1;
        /* changed behind the bridge's back: the config update count moves, bridges hear */
        l->config_update_count++;
        sim_lock_state_changed(l);
        return sd_bus_reply_method_return(m, "q", c->id);
}

/* AddAuthorization(s type, s name) → u id: another phone app, fob or keypad paired with
 * the lock (the app's job on a real lock). */
static int m_add_authorization(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        static const char *const types[] = { "app", "bridge", "fob", "keypad" };
        SimLock *l = userdata;
        const char *type, *name;
        uint8_t key[32];
        SimAuth *a;
        int r = sd_bus_message_read(m, "ss", &type, &name);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (streq(type, types[i]) && i != 1) {
                        nuki_random(key, sizeof(key));
                        if (sim_lock_add_auth(l, (uint8_t) i, 0, name, key, &a) < 0)
                                return sd_bus_error_set(e, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                        "authorizations full");
                        l->config_update_count++;
                        sim_lock_state_changed(l);
                        return sd_bus_reply_method_return(m, "u", a->id);
                }
        return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS, "type: app, fob or keypad");
}

/* SetSetting(s key, s value): a setting changed in the app, behind the bridge's back.
 * Keys: name, led_brightness, led_enabled, button_enabled, single_lock, lockngo_timeout,
 * auto_lock_timeout, auto_lock_enabled, nightmode_enabled, single_button_press_action, and
 * time_control "WEEKDAYS HH:MM ACTION [off]" (Nuki weekday bits, Lock Action code), which
 * adds a scheduled action. */
static int m_set_setting(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        static const struct {
                const char *key;
                size_t offset;
                bool adv, u16;
        } keys[] = {
                { "led_brightness", offsetof(SimLockConfig, led_brightness), false, false },
                { "led_enabled", offsetof(SimLockConfig, led_enabled), false, false },
                { "button_enabled", offsetof(SimLockConfig, button_enabled), false, false },
                { "single_lock", offsetof(SimLockConfig, single_lock), false, false },
                { "lockngo_timeout", offsetof(SimLockAdvConfig, lockngo_timeout), true, false },
                { "auto_lock_timeout", offsetof(SimLockAdvConfig, auto_lock_timeout), true, true },
                { "auto_lock_enabled", offsetof(SimLockAdvConfig, auto_lock_enabled), true, false },
                { "nightmode_enabled", offsetof(SimLockAdvConfig, nightmode_enabled), true, false },
                { "single_button_press_action", offsetof(SimLockAdvConfig, single_button_action), true,
                  false },
        };
        SimLock *l = userdata;
        const char *key, *value;
        unsigned long v;
        char *end;
        int r = sd_bus_message_read(m, "ss", &key, &value);
        if (r < 0)
                return r;
        if (streq(key, "name")) {
                if (strlen(value) > 32)
                        return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS, "name: at most 32 bytes");
                snprintf(l->cfg.name, sizeof(l->cfg.name), "%s", value);
        } else if (streq(key, "time_control")) {
                unsigned h, mi, action;
                int wd;
                char off[8] = "";
                if (sscanf(value, "%i %u:%u %u %7s", &wd, &h, &mi, &action, off) < 4 || wd < 0 ||
                    wd > 0x7f || h > 23 || mi > 59 || action < 1 || action > 6)
                        return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS,
                                                "time_control: WEEKDAYS HH:MM ACTION [off]");
                if (l->n_tc >= SIM_MAX_TIME_CONTROL)
                        return sd_bus_error_set(e, SD_BUS_ERROR_LIMITS_EXCEEDED, "time controls full");
                l->tc[l->n_tc++] = (SimTimeControl){ .id = l->next_tc_id++,
                                                     .enabled = !streq(off, "off"),
                                                     .weekdays = (uint8_t) wd,
                                                     .hour = (uint8_t) h,
                                                     .minute = (uint8_t) mi,
                                                     .action = (uint8_t) action };
        } else {
                size_t i;
                for (i = 0; i < ELEMENTSOF(keys); i++)
                        if (streq(key, keys[i].key))
                                break;
                errno = 0;
                v = strtoul(value, &end, 0);
                if (i >= ELEMENTSOF(keys) || errno != 0 || *end || !*value ||
                    v > (keys[i].u16 ? 0xffffUL : 0xffUL))
                        return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS,
                                                 "unknown key or bad value: %s=%s", key, value);
                uint8_t *base = keys[i].adv ? (uint8_t *) &l->adv : (uint8_t *) &l->cfg;
                if (keys[i].u16) {
                        uint16_t x = (uint16_t) v;
                        memcpy(base + keys[i].offset, &x, sizeof(x));
                } else
                        base[keys[i].offset] = (uint8_t) v;
        }
        l->config_update_count++;
        sim_lock_state_changed(l);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_door(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        const char *s;
        uint8_t d;
        int r = sd_bus_message_read(m, "s", &s);
        if (r < 0)
                return r;
        if (parse_door(s, &d) < 0)
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS,
                                        "door: closed, opened, tampered, unknown, unavailable, deactivated");
        sim_lock_set_door(userdata, d);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_set_firmware(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        const char *s;
        int r = sd_bus_message_read(m, "s", &s);
        if (r < 0)
                return r;
        if (sim_firmware_parse(s, l->firmware) < 0)
                return sd_bus_error_set(e, SD_BUS_ERROR_INVALID_ARGS, "firmware: X.Y.Z");
        /* an update reboots the lock */
        sim_lock_reboot(l);
        l->config_update_count++;
        return sd_bus_reply_method_return(m, NULL);
}

static int m_factory_reset(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        sim_lock_factory_reset(userdata);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_revoke(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        sim_lock_revoke(userdata);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_reboot(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        sim_lock_reboot(userdata);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_service_changed(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        /* the table moves and nobody is told: BlueZ's cache is stale until RemoveDevice */
        sim_lock_gatt_changed(userdata);
        return sd_bus_reply_method_return(m, NULL);
}

static int m_service_changed_indicate(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        SimLock *l = userdata;
        sim_lock_gatt_changed(l);
        if (l->link)
                sim_device_service_changed(l->link);
        return sd_bus_reply_method_return(m, NULL);
}

static json_object *time_json(int64_t t)
{
        char buf[32];
        time_t tt = (time_t) t;
        struct tm tm;

        if (t <= 0)
                return NULL;
        gmtime_r(&tt, &tm);
        strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        return json_object_new_string(buf);
}

/* a stored 7-byte time as "YYYY-MM-DDTHH:MM:SS"; null when unset */
static json_object *wire_time_json(const uint8_t t[7])
{
        char buf[32];
        unsigned y = (unsigned) (t[0] | t[1] << 8);

        if (y == 0)
                return NULL;
        snprintf(buf, sizeof(buf), "%04u-%02u-%02uT%02u:%02u:%02u", y, t[2], t[3], t[4], t[5], t[6]);
        return json_object_new_string(buf);
}

static json_object *hhmm_json(const uint8_t t[2])
{
        char buf[8];
        snprintf(buf, sizeof(buf), "%02u:%02u", t[0], t[1]);
        return json_object_new_string(buf);
}

/* the time window of a code or authorization, as the lock stores it (weekdays: Nuki's
 * bits, 6 Monday .. 0 Sunday, 0 every day) */
static void window_json(json_object *e, bool time_limited, const uint8_t from[7], const uint8_t until[7],
                        uint8_t weekdays, const uint8_t ft[2], const uint8_t ut[2])
{
        json_object_object_add(e, "time_limited", json_object_new_boolean(time_limited));
        json_object_object_add(e, "allowed_from", time_limited ? wire_time_json(from) : NULL);
        json_object_object_add(e, "allowed_until", time_limited ? wire_time_json(until) : NULL);
        json_object_object_add(e, "weekdays", json_object_new_int(time_limited ? weekdays : 0));
        json_object_object_add(e, "from_time", time_limited ? hhmm_json(ft) : NULL);
        json_object_object_add(e, "until_time", time_limited ? hhmm_json(ut) : NULL);
}

static json_object *settings_json(SimLock *l)
{
        json_object *o = json_object_new_object(), *a;
        const SimLockConfig *c = &l->cfg;
        const SimLockAdvConfig *v = &l->adv;

        json_object_object_add(o, "name", json_object_new_string(c->name));
        json_object_object_add(o, "latitude", json_object_new_double(c->latitude));
        json_object_object_add(o, "longitude", json_object_new_double(c->longitude));
        json_object_object_add(o, "auto_unlatch", json_object_new_int(c->auto_unlatch));
        json_object_object_add(o, "pairing_enabled", json_object_new_int(c->pairing_enabled));
        json_object_object_add(o, "button_enabled", json_object_new_int(c->button_enabled));
        json_object_object_add(o, "led_enabled", json_object_new_int(c->led_enabled));
        json_object_object_add(o, "led_brightness", json_object_new_int(c->led_brightness));
        json_object_object_add(o, "timezone_offset", json_object_new_int(c->tz_offset));
        json_object_object_add(o, "dst_mode", json_object_new_int(c->dst_mode));
        json_object_object_add(o, "fob_action_1", json_object_new_int(c->fob_action[0]));
        json_object_object_add(o, "fob_action_2", json_object_new_int(c->fob_action[1]));
        json_object_object_add(o, "fob_action_3", json_object_new_int(c->fob_action[2]));
        json_object_object_add(o, "single_lock", json_object_new_int(c->single_lock));
        json_object_object_add(o, "advertising_mode", json_object_new_int(c->advertising_mode));
        json_object_object_add(o, "timezone_id", json_object_new_int(c->timezone_id));
        json_object_object_add(o, "lockngo_timeout", json_object_new_int(v->lockngo_timeout));
        json_object_object_add(o, "single_button_press_action",
                               json_object_new_int(v->single_button_action));
        json_object_object_add(o, "double_button_press_action",
                               json_object_new_int(v->double_button_action));
        json_object_object_add(o, "detached_cylinder", json_object_new_int(v->detached_cylinder));
        json_object_object_add(o, "battery_type", json_object_new_int(v->battery_type));
        json_object_object_add(o, "unlatch_duration", json_object_new_int(v->unlatch_duration));
        json_object_object_add(o, "auto_lock_timeout", json_object_new_int(v->auto_lock_timeout));
        json_object_object_add(o, "auto_unlock_disabled", json_object_new_int(v->auto_unlock_disabled));
        json_object_object_add(o, "nightmode_enabled", json_object_new_int(v->nightmode_enabled));
        json_object_object_add(o, "nightmode_start", hhmm_json(v->nightmode_start));
        json_object_object_add(o, "nightmode_end", hhmm_json(v->nightmode_end));
        json_object_object_add(o, "auto_lock_enabled", json_object_new_int(v->auto_lock_enabled));
        json_object_object_add(o, "auto_update_enabled", json_object_new_int(v->auto_update));
        a = json_object_new_array();
        for (size_t i = 0; i < l->n_tc; i++) {
                json_object *e = json_object_new_object();
                uint8_t t[2] = { l->tc[i].hour, l->tc[i].minute };
                json_object_object_add(e, "id", json_object_new_int(l->tc[i].id));
                json_object_object_add(e, "enabled", json_object_new_boolean(l->tc[i].enabled));
                json_object_object_add(e, "weekdays", json_object_new_int(l->tc[i].weekdays));
                json_object_object_add(e, "time", hhmm_json(t));
                json_object_object_add(e, "lock_action", json_object_new_int(l->tc[i].action));
                json_object_array_add(a, e);
        }
        json_object_object_add(o, "time_controls", a);
        return o;
}

static json_object *lock_to_json(SimLock *l)
{
        json_object *o = json_object_new_object(), *a;
        char buf[64];

        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "address", json_object_new_string(l->address));
        json_object_object_add(o, "generation", json_object_new_string(sim_gen_to_string(l->gen)));
        snprintf(buf, sizeof(buf), "%u.%u.%u", l->firmware[0], l->firmware[1], l->firmware[2]);
        json_object_object_add(o, "firmware", json_object_new_string(buf));
        json_object_object_add(o, "nuki_id", json_object_new_int64(l->nuki_id));
        json_object_object_add(o, "nuki_state", json_object_new_int(l->nuki_state));
        json_object_object_add(o, "lock_state",
                               json_object_new_string(sim_lock_state_to_string(l->lock_state)));
        json_object_object_add(o, "door", json_object_new_string(sim_door_to_string(l->door)));
        json_object_object_add(o, "battery_percent", json_object_new_double(l->battery));
        json_object_object_add(o, "battery_mv", json_object_new_int(sim_lock_battery_mv(l)));
        json_object_object_add(o, "battery_critical", json_object_new_boolean(sim_lock_battery_critical(l)));
        json_object_object_add(o, "charging", json_object_new_boolean(l->charging));
        json_object_object_add(o, "pairing_mode", json_object_new_boolean(l->pairing_mode));
        json_object_object_add(o, "state_changed", json_object_new_boolean(l->state_changed));
        json_object_object_add(o, "connected", json_object_new_boolean(l->link != NULL));
        json_object_object_add(o, "in_range", json_object_new_boolean(l->in_range));
        json_object_object_add(o, "rssi", json_object_new_int(l->rssi));
        json_object_object_add(o, "jams_pending", json_object_new_int((int) l->jams_pending));
        json_object_object_add(o, "connections", json_object_new_int64(l->n_connections));
        json_object_object_add(o, "gatt_writes", json_object_new_int64(l->n_gatt_writes));
        json_object_object_add(o, "indications", json_object_new_int64(l->n_indications));
        json_object_object_add(o, "adverts", json_object_new_int64(l->n_adverts));
        json_object_object_add(o, "actions", json_object_new_int64(l->n_actions));
        a = json_object_new_array();
        for (size_t i = 0; i < l->n_auths; i++) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "id", json_object_new_int64(l->auths[i].id));
                json_object_object_add(e, "type", json_object_new_int(l->auths[i].type));
                json_object_object_add(e, "name", json_object_new_string(l->auths[i].name));
                json_object_object_add(e, "app_id", json_object_new_int64(l->auths[i].app_id));
                json_object_object_add(e, "enabled", json_object_new_boolean(l->auths[i].enabled));
                json_object_object_add(e, "remote_allowed",
                                       json_object_new_boolean(l->auths[i].remote_allowed));
                json_object_object_add(e, "created", time_json(l->auths[i].created));
                json_object_object_add(e, "last_active", time_json(l->auths[i].last_active));
                json_object_object_add(e, "lock_count", json_object_new_int(l->auths[i].lock_count));
                window_json(e, l->auths[i].time_limited, l->auths[i].allowed_from, l->auths[i].allowed_until,
                            l->auths[i].weekdays, l->auths[i].from_time, l->auths[i].until_time);
                json_object_array_add(a, e);
        }
        json_object_object_add(o, "authorizations", a);
        a = json_object_new_array();
        for (size_t i = 0; i < l->n_codes; i++) {
                json_object *e = json_object_new_object();
                json_object_object_add(e, "id", json_object_new_int(l->codes[i].id));
                json_object_object_add(e, "code", json_object_new_int64(l->codes[i].code));
                json_object_object_add(e, "name", json_object_new_string(l->codes[i].name));
                json_object_object_add(e, "enabled", json_object_new_boolean(l->codes[i].enabled));
                window_json(e, l->codes[i].time_limited, l->codes[i].allowed_from, l->codes[i].allowed_until,
                            l->codes[i].weekdays, l->codes[i].from_time, l->codes[i].until_time);
                json_object_array_add(a, e);
        }
        json_object_object_add(o, "keypad_codes", a);
        json_object_object_add(o, "config_update_count", json_object_new_int(l->config_update_count));
        json_object_object_add(o, "settings", settings_json(l));
        a = json_object_new_array();
        for (size_t i = 0; i < l->n_log; i++) {
                json_object *e = json_object_new_object();
                char hex[16] = "";
                for (size_t k = 0; k < l->log[i].len; k++)
                        snprintf(hex + 2 * k, sizeof(hex) - 2 * k, "%02x", l->log[i].data[k]);
                json_object_object_add(e, "index", json_object_new_int64(l->log[i].index));
                json_object_object_add(e, "time", json_object_new_int64(l->log[i].time));
                json_object_object_add(e, "auth_id", json_object_new_int64(l->log[i].auth_id));
                json_object_object_add(e, "name", json_object_new_string(l->log[i].name));
                json_object_object_add(e, "type", json_object_new_int(l->log[i].type));
                json_object_object_add(e, "data", json_object_new_string(hex));
                json_object_array_add(a, e);
        }
        json_object_object_add(o, "log", a);
        return o;
}

static int m_dump(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        json_object *o = lock_to_json(userdata);
        int r = sd_bus_reply_method_return(m, "s",
                                           json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
        json_object_put(o);
        return r;
}

#define PROP_FN(fname, sig, expr)                                                            \
        static int fname(sd_bus *bus, const char *path, const char *iface, const char *prop, \
                         sd_bus_message *reply, void *userdata, sd_bus_error *e)             \
        {                                                                                    \
                SimLock *l = userdata;                                                       \
                return sd_bus_message_append(reply, sig, expr);                              \
        }

static char fwbuf[16];
static const char *fw_string(SimLock *l)
{
        snprintf(fwbuf, sizeof(fwbuf), "%u.%u.%u", l->firmware[0], l->firmware[1], l->firmware[2]);
        return fwbuf;
}

PROP_FN(p_name, "s", l->name)
PROP_FN(p_address, "s", l->address)
PROP_FN(p_generation, "s", sim_gen_to_string(l->gen))
PROP_FN(p_firmware, "s", fw_string(l))
PROP_FN(p_nuki_id, "u", l->nuki_id)
PROP_FN(p_lock_state, "s", sim_lock_state_to_string(l->lock_state))
PROP_FN(p_nuki_state, "y", l->nuki_state)
PROP_FN(p_door, "s", sim_door_to_string(l->door))
PROP_FN(p_battery, "y", (uint8_t) (l->battery + 0.5))
PROP_FN(p_battery_mv, "q", sim_lock_battery_mv(l))
PROP_FN(p_critical, "b", sim_lock_battery_critical(l))
PROP_FN(p_charging, "b", l->charging)
PROP_FN(p_pairing, "b", l->pairing_mode)
PROP_FN(p_state_changed, "b", l->state_changed)
PROP_FN(p_rssi, "n", l->rssi)
PROP_FN(p_in_range, "b", l->in_range)
PROP_FN(p_connected, "b", l->link != NULL)
PROP_FN(p_connections, "u", l->n_connections)
PROP_FN(p_writes, "u", l->n_gatt_writes)
PROP_FN(p_indications, "u", l->n_indications)
PROP_FN(p_adverts, "u", l->n_adverts)
PROP_FN(p_actions, "u", l->n_actions)
PROP_FN(p_calibrations, "u", l->n_calibrations)
PROP_FN(p_auths, "u", (uint32_t) l->n_auths)
PROP_FN(p_codes, "u", (uint32_t) l->n_codes)
PROP_FN(p_log, "u", (uint32_t) l->n_log)
PROP_FN(p_pin, "u", l->security_pin)
PROP_FN(p_pin_failures, "u", l->n_pin_failures)

static const sd_bus_vtable lock_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("SetPairingMode", "b", "", m_set_pairing_mode, 0),
        SD_BUS_METHOD("SetBattery", "y", "", m_set_battery, 0),
        SD_BUS_METHOD("SetCharging", "b", "", m_set_charging, 0),
        SD_BUS_METHOD("SetRSSI", "n", "", m_set_rssi, 0),
        SD_BUS_METHOD("SetInRange", "b", "", m_set_in_range, 0),
        SD_BUS_METHOD("SetDiscoverable", "b", "", m_set_discoverable, 0),
        SD_BUS_METHOD("SetLatency", "u", "", m_set_latency, 0),
        SD_BUS_METHOD("SetLoss", "d", "", m_set_loss, 0),
        SD_BUS_METHOD("SetAdvInterval", "u", "", m_set_adv_interval, 0),
        SD_BUS_METHOD("InjectJam", "u", "", m_inject_jam, 0),
        SD_BUS_METHOD("InjectAttError", "yu", "", m_inject_att_error, 0),
        SD_BUS_METHOD("SetUserLimit", "u", "", m_set_user_limit, 0),
        SD_BUS_METHOD("SetSecurityPin", "u", "", m_set_security_pin, 0),
        SD_BUS_METHOD("DropLink", "", "", m_drop_link, 0),
        SD_BUS_METHOD("DropLinkOnAction", "u", "", m_drop_link_on_action, 0),
        SD_BUS_METHOD("DropLinkOnActionThen", "us", "", m_drop_link_on_action_then, 0),
        SD_BUS_METHOD("FailActionReply", "u", "", m_fail_action_reply, 0),
        SD_BUS_METHOD("DropLinkBeforeAction", "u", "", m_drop_link_before_action, 0),
        SD_BUS_METHOD("SetCalibrated", "b", "", m_set_calibrated, 0),
        SD_BUS_METHOD("SetDrainRate", "d", "", m_set_drain_rate, 0),
        SD_BUS_METHOD("SetMotorFactor", "d", "", m_set_motor_factor, 0),
        SD_BUS_METHOD("ManualAction", "s", "", m_manual_action, 0),
        SD_BUS_METHOD("KeypadEntry", "u", "b", m_keypad_entry, 0),
        SD_BUS_METHOD("AddKeypadCode", "us", "q", m_add_keypad_code, 0),
        SD_BUS_METHOD("AddAuthorization", "ss", "u", m_add_authorization, 0),
        SD_BUS_METHOD("SetSetting", "ss", "", m_set_setting, 0),
        SD_BUS_METHOD("SetDoor", "s", "", m_set_door, 0),
        SD_BUS_METHOD("SetFirmware", "s", "", m_set_firmware, 0),
        SD_BUS_METHOD("FactoryReset", "", "", m_factory_reset, 0),
        SD_BUS_METHOD("RevokeAuthorizations", "", "", m_revoke, 0),
        SD_BUS_METHOD("Reboot", "", "", m_reboot, 0),
        SD_BUS_METHOD("ServiceChanged", "", "", m_service_changed, 0),
        SD_BUS_METHOD("ServiceChangedIndicate", "", "", m_service_changed_indicate, 0),
        SD_BUS_METHOD("Dump", "", "s", m_dump, 0),
        SD_BUS_PROPERTY("Name", "s", p_name, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Address", "s", p_address, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Generation", "s", p_generation, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Firmware", "s", p_firmware, 0, 0),
        SD_BUS_PROPERTY("NukiId", "u", p_nuki_id, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("LockState", "s", p_lock_state, 0, 0),
        SD_BUS_PROPERTY("NukiState", "y", p_nuki_state, 0, 0),
        SD_BUS_PROPERTY("Door", "s", p_door, 0, 0),
        SD_BUS_PROPERTY("BatteryPercent", "y", p_battery, 0, 0),
        SD_BUS_PROPERTY("BatteryMillivolts", "q", p_battery_mv, 0, 0),
        SD_BUS_PROPERTY("BatteryCritical", "b", p_critical, 0, 0),
        SD_BUS_PROPERTY("Charging", "b", p_charging, 0, 0),
        SD_BUS_PROPERTY("PairingMode", "b", p_pairing, 0, 0),
        SD_BUS_PROPERTY("StateChanged", "b", p_state_changed, 0, 0),
        SD_BUS_PROPERTY("RSSI", "n", p_rssi, 0, 0),
        SD_BUS_PROPERTY("InRange", "b", p_in_range, 0, 0),
        SD_BUS_PROPERTY("Connected", "b", p_connected, 0, 0),
        SD_BUS_PROPERTY("Connections", "u", p_connections, 0, 0),
        SD_BUS_PROPERTY("GattWrites", "u", p_writes, 0, 0),
        SD_BUS_PROPERTY("Indications", "u", p_indications, 0, 0),
        SD_BUS_PROPERTY("Adverts", "u", p_adverts, 0, 0),
        SD_BUS_PROPERTY("Actions", "u", p_actions, 0, 0),
        SD_BUS_PROPERTY("Calibrations", "u", p_calibrations, 0, 0),
        SD_BUS_PROPERTY("Authorizations", "u", p_auths, 0, 0),
        SD_BUS_PROPERTY("KeypadCodes", "u", p_codes, 0, 0),
        SD_BUS_PROPERTY("LogEntries", "u", p_log, 0, 0),
        SD_BUS_PROPERTY("SecurityPin", "u", p_pin, 0, 0),
        SD_BUS_PROPERTY("PinFailures", "u", p_pin_failures, 0, 0),
        SD_BUS_VTABLE_END,
};

/* ---- hub ---- */

static int h_hang_adapter(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        Sim *sim = userdata;
        const char *name;
        SimAdapter *a;
        int r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        a = sim_find_adapter(sim, name);
        if (!a)
                return sd_bus_error_setf(e, SD_BUS_ERROR_INVALID_ARGS, "no adapter %s", name);
        sim_adapter_hang(a);
        return sd_bus_reply_method_return(m, NULL);
}

static int h_crash(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        uint32_t ms;
        int r = sd_bus_message_read(m, "u", &ms);
        if (r < 0)
                return r;
        r = sim_bluez_crash(userdata, ms, false);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, NULL);
}

static int h_stop(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        uint32_t ms;
        int r = sd_bus_message_read(m, "u", &ms);
        if (r < 0)
                return r;
        r = sim_bluez_crash(userdata, ms, true);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, NULL);
}

static int h_start(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        int r = sim_bluez_start(userdata);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, NULL);
}

static int h_dump(sd_bus_message *m, void *userdata, sd_bus_error *e)
{
        Sim *sim = userdata;
        json_object *o = json_object_new_object(), *a = json_object_new_array(),
                    *ad = json_object_new_array();
        int r;

        json_object_object_add(o, "time_scale", json_object_new_double(sim->scale));
        json_object_object_add(o, "bluez_running", json_object_new_boolean(sim->bluez != NULL));
        for (size_t i = 0; i < sim->n_adapters; i++) {
                json_object *x = json_object_new_object();
                json_object_object_add(x, "name", json_object_new_string(sim->adapters[i]->name));
                json_object_object_add(x, "address", json_object_new_string(sim->adapters[i]->address));
                json_object_object_add(x, "powered", json_object_new_boolean(sim->adapters[i]->powered));
                json_object_object_add(x, "hung", json_object_new_boolean(sim->adapters[i]->hung));
                json_object_array_add(ad, x);
        }
        json_object_object_add(o, "adapters", ad);
        for (size_t i = 0; i < sim->n_locks; i++)
                json_object_array_add(a, lock_to_json(sim->locks[i]));
        json_object_object_add(o, "locks", a);
        r = sd_bus_reply_method_return(m, "s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
        json_object_put(o);
        return r;
}

static int hp_scale(sd_bus *bus, const char *path, const char *iface, const char *prop,
                    sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
        return sd_bus_message_append(reply, "d", ((Sim *) userdata)->scale);
}

static int hp_running(sd_bus *bus, const char *path, const char *iface, const char *prop,
                      sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
        return sd_bus_message_append(reply, "b", ((Sim *) userdata)->bluez != NULL);
}

static int hp_locks(sd_bus *bus, const char *path, const char *iface, const char *prop,
                    sd_bus_message *reply, void *userdata, sd_bus_error *e)
{
        Sim *sim = userdata;
        int r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (size_t i = 0; i < sim->n_locks; i++) {
                r = sd_bus_message_append(reply, "s", sim->locks[i]->name);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static const sd_bus_vtable hub_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD("HangAdapter", "s", "", h_hang_adapter, 0),
        SD_BUS_METHOD("CrashBluez", "u", "", h_crash, 0),
        SD_BUS_METHOD("StopBluez", "u", "", h_stop, 0),
        SD_BUS_METHOD("StartBluez", "", "", h_start, 0),
        SD_BUS_METHOD("Dump", "", "s", h_dump, 0),
        SD_BUS_PROPERTY("TimeScale", "d", hp_scale, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BluezRunning", "b", hp_running, 0, 0),
        SD_BUS_PROPERTY("Locks", "as", hp_locks, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_VTABLE_END,
};

int sim_control_start(Sim *sim)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_attach_event(bus, sim->event, 0);
        if (r < 0)
                return r;
        r = sd_bus_add_object_vtable(bus, NULL, SIM_PATH, IFACE_HUB, hub_vtable, sim);
        if (r < 0)
                return log_error_errno(r, "Failed to export the hub object: %m");
        for (size_t i = 0; i < sim->n_locks; i++) {
                char path[128];
                snprintf(path, sizeof(path), SIM_PATH "/%s", sim->locks[i]->name);
                r = sd_bus_add_object_vtable(bus, NULL, path, IFACE_LOCK, lock_vtable, sim->locks[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to export %s: %m", path);
        }
        r = sd_bus_add_object_manager(bus, NULL, SIM_PATH);
        if (r < 0)
                return r;
        r = sd_bus_request_name(bus, "org.lockhub.Sim", 0);
        if (r < 0)
                return log_error_errno(r, "Failed to own org.lockhub.Sim: %m");
        sim->ctl_bus = TAKE_PTR(bus);
        return 0;
}

/* ---- lockhub-sim ctl ---- */

typedef struct CtlMethod {
        const char *name;
        const char *sig;
        const char *out;
} CtlMethod;

static const CtlMethod ctl_lock_methods[] = {
        { "SetPairingMode", "b", "" },
        { "SetBattery", "y", "" },
        { "SetCharging", "b", "" },
        { "SetRSSI", "n", "" },
        { "SetInRange", "b", "" },
        { "SetLatency", "u", "" },
        { "SetDiscoverable", "b", "" },
        { "SetLoss", "d", "" },
        { "SetAdvInterval", "u", "" },
        { "SetSecurityPin", "u", "" },
        { "InjectJam", "u", "" },
        { "InjectAttError", "yu", "" },
        { "DropLink", "", "" },
        { "DropLinkOnAction", "u", "" },
        { "DropLinkOnActionThen", "us", "" },
        { "FailActionReply", "u", "" },
        { "DropLinkBeforeAction", "u", "" },
        { "SetCalibrated", "b", "" },
        { "SetDrainRate", "d", "" },
        { "SetMotorFactor", "d", "" },
        { "ManualAction", "s", "" },
        { "KeypadEntry", "u", "b" },
        { "AddKeypadCode", "us", "q" },
        { "AddAuthorization", "ss", "u" },
        { "SetSetting", "ss", "" },
        { "SetDoor", "s", "" },
        { "SetFirmware", "s", "" },
        { "FactoryReset", "", "" },
        { "RevokeAuthorizations", "", "" },
        { "Reboot", "", "" },
        { "ServiceChanged", "", "" },
        { "ServiceChangedIndicate", "", "" },
        { "Dump", "", "s" },
        {},
};

static const CtlMethod ctl_hub_methods[] = {
        { "HangAdapter", "s", "" }, { "CrashBluez", "u", "" }, { "StopBluez", "u", "" },
        { "StartBluez", "", "" },   { "Dump", "", "s" },       {},
};

static int append_arg(sd_bus_message *m, char t, const char *s)
{
        char *end;
        switch (t) {
        case 'b':
                if (streq(s, "yes") || streq(s, "true") || streq(s, "1") || streq(s, "on"))
                        return sd_bus_message_append(m, "b", 1);
                if (streq(s, "no") || streq(s, "false") || streq(s, "0") || streq(s, "off"))
                        return sd_bus_message_append(m, "b", 0);
                return -EINVAL;
        case 's':
                return sd_bus_message_append(m, "s", s);
        case 'd': {
                double v = strtod(s, &end);
                if (*end)
                        return -EINVAL;
                return sd_bus_message_append(m, "d", v);
        }
        case 'n': {
                long v = strtol(s, &end, 0);
                if (*end || v < INT16_MIN || v > INT16_MAX)
                        return -EINVAL;
                return sd_bus_message_append(m, "n", (int16_t) v);
        }
        default: {
                unsigned long v = strtoul(s, &end, 0);
                if (*end || *s == '-')
                        return -EINVAL;
                if (t == 'y')
                        return v > 255 ? -EINVAL : sd_bus_message_append(m, "y", (uint8_t) v);
                return v > UINT32_MAX ? -EINVAL : sd_bus_message_append(m, "u", (uint32_t) v);
        }
        }
}

static int print_variant(sd_bus_message *m)
{
        const char *contents;
        char type;
        int r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;
        switch (contents[0]) {
        case 's': {
                const char *s;
                r = sd_bus_message_read(m, "s", &s);
                if (r >= 0)
                        printf("%s\n", s);
                break;
        }
        case 'b': {
                int v;
                r = sd_bus_message_read(m, "b", &v);
                if (r >= 0)
                        printf("%s\n", v ? "yes" : "no");
                break;
        }
        case 'y': {
                uint8_t v;
                r = sd_bus_message_read(m, "y", &v);
                if (r >= 0)
                        printf("%u\n", (unsigned) v);
                break;
        }
        case 'q': {
                uint16_t v;
                r = sd_bus_message_read(m, "q", &v);
                if (r >= 0)
                        printf("%u\n", (unsigned) v);
                break;
        }
        case 'n': {
                int16_t v;
                r = sd_bus_message_read(m, "n", &v);
                if (r >= 0)
                        printf("%d\n", (int) v);
                break;
        }
        case 'u': {
                uint32_t v;
                r = sd_bus_message_read(m, "u", &v);
                if (r >= 0)
                        printf("%u\n", v);
                break;
        }
        case 'd': {
                double v;
                r = sd_bus_message_read(m, "d", &v);
                if (r >= 0)
                        printf("%g\n", v);
                break;
        }
        case 'a': {
                const char *s;
                r = sd_bus_message_enter_container(m, 'a', "s");
                while (r >= 0 && (r = sd_bus_message_read(m, "s", &s)) > 0)
                        printf("%s\n", s);
                break;
        }
        default:
                r = -EOPNOTSUPP;
        }
        return r < 0 ? r : 0;
}

static int wait_bluez(sd_bus *bus, double seconds)
{
        for (int i = 0; i < (int) (seconds * 20); i++) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                int v = 0;
                if (sd_bus_get_property_trivial(bus, "org.bluez", "/org/bluez/hci0", "org.bluez.Adapter1",
                                                "Powered", &e, 'b', &v) >= 0 &&
                    v)
                        return 0;
                usleep(50000);
        }
        return -ETIMEDOUT;
}

int sim_ctl_main(int argc, char **argv)
{
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        const CtlMethod *table, *me = NULL;
        const char *iface;
        char path[160];
        int r;

        if (argc < 2) {
                fprintf(stderr, "usage: lockhub-sim ctl hub|LOCK METHOD [ARG...] | LOCK get PROP | "
                                "wait-bluez SECONDS\n");
                return 2;
        }
        r = sd_bus_open_system(&bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m"), 1;
        if (streq(argv[0], "wait-bluez"))
                return wait_bluez(bus, strtod(argv[1], NULL)) < 0 ? 1 : 0;
        if (streq(argv[0], "hub")) {
                snprintf(path, sizeof(path), SIM_PATH);
                iface = IFACE_HUB;
                table = ctl_hub_methods;
        } else {
                snprintf(path, sizeof(path), SIM_PATH "/%s", argv[0]);
                iface = IFACE_LOCK;
                table = ctl_lock_methods;
        }
        if (streq(argv[1], "get")) {
                if (argc != 3) {
                        fprintf(stderr, "usage: lockhub-sim ctl LOCK get PROPERTY\n");
                        return 2;
                }
                r = sd_bus_call_method(bus, "org.lockhub.Sim", path, "org.freedesktop.DBus.Properties",
                                       "Get", &e, &reply, "ss", iface, argv[2]);
                if (r < 0 && !sd_bus_error_is_set(&e))
                        return log_error_errno(r, "Failed to read %s: %m", argv[2]), 1;
                if (r < 0) {
                        fprintf(stderr, "%s: %s\n", e.name, e.message);
                        return 1;
                }
                r = print_variant(reply);
                return r < 0 ? 1 : 0;
        }
        for (size_t i = 0; table[i].name; i++)
                if (streq(table[i].name, argv[1]))
                        me = &table[i];
        if (!me) {
                fprintf(stderr, "unknown method %s\n", argv[1]);
                return 2;
        }
        if ((size_t) argc - 2 != strlen(me->sig)) {
                fprintf(stderr, "%s takes %zu argument(s) (%s)\n", me->name, strlen(me->sig), me->sig);
                return 2;
        }
        r = sd_bus_message_new_method_call(bus, &m, "org.lockhub.Sim", path, iface, me->name);
        if (r < 0)
                return 1;
        for (size_t i = 0; me->sig[i]; i++) {
                r = append_arg(m, me->sig[i], argv[2 + i]);
                if (r < 0) {
                        fprintf(stderr, "bad argument '%s' for type %c\n", argv[2 + i], me->sig[i]);
                        return 2;
                }
        }
        r = sd_bus_call(bus, m, 10 * USEC_PER_SEC, &e, &reply);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", strna(e.name), strna(e.message));
                return 1;
        }
        if (streq(me->out, "s")) {
                const char *s;
                if (sd_bus_message_read(reply, "s", &s) >= 0)
                        printf("%s\n", s);
        } else if (streq(me->out, "b")) {
                int v;
                if (sd_bus_message_read(reply, "b", &v) >= 0)
                        printf("%s\n", v ? "yes" : "no");
        } else if (streq(me->out, "u")) {
                uint32_t v;
                if (sd_bus_message_read(reply, "u", &v) >= 0)
                        printf("%u\n", v);
        } else if (streq(me->out, "q")) {
                uint16_t v;
                if (sd_bus_message_read(reply, "q", &v) >= 0)
                        printf("%u\n", v);
        }
        return 0;
}
