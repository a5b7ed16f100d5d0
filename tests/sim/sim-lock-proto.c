/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The lock side of the Nuki BLE protocol, built on src/nuki/: NukiPairLock for pairing,
 * NukiLockSession for decryption, challenge and PIN checks, the command codecs for every
 * payload. Nothing here frames, encrypts or computes a CRC by itself.
 *
 * One SimLockSession per BLE connection (the firmware forgets everything at
 * disconnect): a reassembly buffer per characteristic, the pairing machine if a
 * pairing runs, and the lock session of the authorization that last spoke on USDIO.
 *
 * Replies: every answer is an indication on the characteristic the request came in
 * on (pairing GDIO, USDIO); frames the lock cannot attribute to an authorization get an
 * unencrypted Error Report K_ERROR_NOT_AUTHORIZED on the Keyturner GDIO (forum t/7912).
 * Lock actions answer ACCEPTED at once, push Keyturner States while the motor runs, and
 * finish with COMPLETE or an Error Report (e.g. K_ERROR_MOTOR_BLOCKED on a jam).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-frame.h"
#include "lockhub/nuki-pair.h"
#include "lockhub/nuki-session.h"
#include "sim-lock.h"

#define MAX_PIN_FAILURES 3
#define PIN_LOCKOUT_SEC  300 /* then the lock takes PINs again */

struct SimLockSession {
        SimLock *lock;
        NukiReasm reasm_pairing, reasm_usdio, reasm_gdio;
        NukiPairLock *pair;
        NukiLockSession ls;
        bool ls_valid;
        bool action_waiting; /* the client that started the motor waits for COMPLETE */
        uint16_t action_command;
};

SimLockSession *sim_lock_session_new(SimLock *l)
{
        SimLockSession *s = calloc(1, sizeof(*s));
        if (!s)
                abort();
        s->lock = l;
        nuki_reasm_init(&s->reasm_pairing, NUKI_REASM_PLAIN);
        nuki_reasm_init(&s->reasm_usdio, NUKI_REASM_ENCRYPTED);
        nuki_reasm_init(&s->reasm_gdio, NUKI_REASM_PLAIN);
        return s;
}

SimLockSession *sim_lock_session_free(SimLockSession *s)
{
        if (!s)
                return NULL;
        nuki_pair_lock_free(s->pair);
        nuki_lock_session_wipe(&s->ls);
        nuki_wipe(s, sizeof(*s));
        free(s);
        return NULL;
}

static void to_nuki_time(int64_t t, NukiTime *ret)
{
        time_t tt = (time_t) t;
        struct tm tm;

        gmtime_r(&tt, &tm);
        *ret = (NukiTime){ .year = (uint16_t) (tm.tm_year + 1900),
                           .month = (uint8_t) (tm.tm_mon + 1),
                           .day = (uint8_t) tm.tm_mday,
                           .hour = (uint8_t) tm.tm_hour,
                           .minute = (uint8_t) tm.tm_min,
                           .second = (uint8_t) tm.tm_sec };
}

static int64_t from_nuki_time(const NukiTime *t)
{
        struct tm tm = { .tm_year = t->year - 1900,
                         .tm_mon = t->month - 1,
                         .tm_mday = t->day,
                         .tm_hour = t->hour,
                         .tm_min = t->minute,
                         .tm_sec = t->second };
        return (int64_t) timegm(&tm);
}

/* ---- sending ---- */

static void send_msg(SimLock *l, const NukiMsg *m)
{
        SimLockSession *s = l->session;
        uint8_t out[NUKI_FRAME_MAX];
        int n;

        if (!s || !s->ls_valid)
                return;
        n = nuki_lock_session_send(&s->ls, m, NULL, out, sizeof(out));
        if (n < 0) {
                log_error_errno(n, "%s: cannot encode command 0x%04x: %m", l->name, m->command);
                return;
        }
        sim_lock_indicate(l, SIM_CHR_USDIO, out, (size_t) n);
}

static void send_status(SimLock *l, uint8_t status)
{
        SimLockSession *s = l->session;
        uint8_t out[NUKI_FRAME_MAX];
        int n;

        if (!s || !s->ls_valid)
                return;
        n = nuki_lock_session_send_status(&s->ls, status, NULL, out, sizeof(out));
        if (n > 0)
                sim_lock_indicate(l, SIM_CHR_USDIO, out, (size_t) n);
}

static void send_error(SimLock *l, uint8_t code, uint16_t command)
{
        SimLockSession *s = l->session;
        uint8_t out[NUKI_FRAME_MAX];
        int n;

        if (!s || !s->ls_valid)
                return;
        n = nuki_lock_session_send_error(&s->ls, code, command, NULL, out, sizeof(out));
        if (n > 0)
                sim_lock_indicate(l, SIM_CHR_USDIO, out, (size_t) n);
}

static void send_plain_error(SimLock *l, SimChr chr, uint8_t code, uint16_t command)
{
        uint8_t out[16];
        int n = nuki_lock_plain_error(code, command, out, sizeof(out));
        if (n > 0)
                sim_lock_indicate(l, chr, out, (size_t) n);
}

/* ---- messages the lock builds ---- */

static void build_keyturner_states(SimLock *l, NukiMsg *m)
{
        nuki_msg_init(m, NUKI_CMD_KEYTURNER_STATES, NUKI_VARIANT_DEFAULT);
        m->keyturner_states.nuki_state = l->nuki_state;
        m->keyturner_states.lock_state = l->lock_state;
        m->keyturner_states.trigger = l->trigger;
        to_nuki_time(sim_lock_time(l), &m->keyturner_states.current_time);
        m->keyturner_states.timezone_offset = l->cfg.tz_offset;
        m->keyturner_states.battery = sim_lock_battery_byte(l);
        m->keyturner_states.config_update_count = l->config_update_count;
        m->keyturner_states.lockngo_timer = l->lng_timer ? l->adv.lockngo_timeout : 0;
        m->keyturner_states.last_lock_action = l->last_action;
        m->keyturner_states.last_lock_action_trigger = l->last_trigger;
        m->keyturner_states.last_lock_action_completion_status = l->last_completion;
        m->keyturner_states.door_sensor_state = sim_lock_door_byte(l);
        m->keyturner_states.nightmode_active = false;
        m->keyturner_states.accessory_battery_state = 0;
        m->keyturner_states.remote_access_status = 0x02; /* bridge paired */
        m->keyturner_states.ble_strength = (int8_t) l->rssi;
        m->keyturner_states.wifi_strength = 0;
        /* the payload grows with the generation (fact sheet 5.3: 15..27 bytes) */
        switch (l->gen) {
        case SIM_GEN_1:
                m->n_optional = 0;
                break;
        case SIM_GEN_2:
                m->n_optional = 4;
                break;
        case SIM_GEN_3:
                m->n_optional = 6;
                break;
        case SIM_GEN_4:
        case SIM_GEN_ULTRA:
                m->n_optional = NUKI_OPTIONAL_ALL;
                break;
        }
}

static void build_battery_report(SimLock *l, NukiMsg *m)
{
        nuki_msg_init(m, NUKI_CMD_BATTERY_REPORT, NUKI_VARIANT_DEFAULT);
        m->battery_report.drain = l->last_drain;
        m->battery_report.voltage = sim_lock_battery_mv(l);
        m->battery_report.critical = sim_lock_battery_critical(l);
        m->battery_report.last_lock_action = l->last_action;
        m->battery_report.start_voltage = (uint16_t) (sim_lock_battery_mv(l) + 40);
        m->battery_report.lowest_voltage = l->lowest_mv;
        m->battery_report.lock_distance = 360;
        m->battery_report.start_temperature = 21;
        m->battery_report.max_turn_current = l->jams_pending ? 1500 : 600;
        m->battery_report.battery_resistance = (uint16_t) (200 + (100.0 - l->battery) * 4);
}

static void build_config(SimLock *l, NukiMsg *m)
{
        nuki_msg_init(m, NUKI_CMD_CONFIG, NUKI_VARIANT_DEFAULT);
        m->config.nuki_id = l->nuki_id;
        snprintf(m->config.name, sizeof(m->config.name), "%s", l->cfg.name);
        m->config.latitude = l->cfg.latitude;
        m->config.longitude = l->cfg.longitude;
        m->config.auto_unlatch = l->cfg.auto_unlatch;
        m->config.pairing_enabled = l->cfg.pairing_enabled;
        m->config.button_enabled = l->cfg.button_enabled;
        m->config.led_enabled = l->cfg.led_enabled;
        m->config.led_brightness = l->cfg.led_brightness;
        to_nuki_time(sim_lock_time(l), &m->config.current_time);
        m->config.timezone_offset = l->cfg.tz_offset;
        m->config.dst_mode = l->cfg.dst_mode;
        m->config.has_fob = l->cfg.has_fob;
        m->config.fob_action_1 = l->cfg.fob_action[0];
        m->config.fob_action_2 = l->cfg.fob_action[1];
        m->config.fob_action_3 = l->cfg.fob_action[2];
        m->config.single_lock = l->cfg.single_lock;
        m->config.advertising_mode = l->cfg.advertising_mode;
        m->config.has_keypad = l->n_codes > 0 || l->cfg.has_keypad;
        memcpy(m->config.firmware_version, l->firmware, 3);
        memcpy(m->config.hardware_revision, l->hw_rev, 2);
        m->config.homekit_status = l->gen == SIM_GEN_2 || l->gen == SIM_GEN_3 ? 1 : 0;
        m->config.timezone_id = l->cfg.timezone_id;
        m->config.device_type = l->gen == SIM_GEN_ULTRA ? 0x05 : l->gen >= SIM_GEN_3 ? 0x04 : 0x00;
        m->config.capabilities = l->gen >= SIM_GEN_4 ? 0x03 : 0x00;
        switch (l->gen) {
        case SIM_GEN_1:
        case SIM_GEN_2:
                m->n_optional = 0;
                break;
        case SIM_GEN_3:
                m->n_optional = 3;
                break;
        case SIM_GEN_4:
        case SIM_GEN_ULTRA:
                m->n_optional = 6;
                break;
        }
}

static void build_advanced_config(SimLock *l, NukiMsg *m)
{
        const SimLockAdvConfig *a = &l->adv;

        nuki_msg_init(m, NUKI_CMD_ADVANCED_CONFIG, NUKI_VARIANT_DEFAULT);
        m->advanced_config.total_degrees = a->total_degrees;
        m->advanced_config.unlocked_position_offset = a->unlocked_offset;
        m->advanced_config.locked_position_offset = a->locked_offset;
        m->advanced_config.single_locked_position_offset = a->single_locked_offset;
        m->advanced_config.unlocked_to_locked_transition_offset = a->unlocked_to_locked_offset;
        m->advanced_config.lockngo_timeout = a->lockngo_timeout;
        m->advanced_config.single_button_press_action = a->single_button_action;
        m->advanced_config.double_button_press_action = a->double_button_action;
        m->advanced_config.detached_cylinder = a->detached_cylinder;
        m->advanced_config.battery_type = a->battery_type;
        m->advanced_config.automatic_battery_type_detection = a->auto_battery_type_detection;
        m->advanced_config.unlatch_duration = a->unlatch_duration;
        m->advanced_config.auto_lock_timeout = a->auto_lock_timeout;
        m->advanced_config.auto_unlock_disabled = a->auto_unlock_disabled;
        m->advanced_config.nightmode_enabled = a->nightmode_enabled;
        m->advanced_config.nightmode_start = (NukiTimeOfDay){ a->nightmode_start[0], a->nightmode_start[1] };
        m->advanced_config.nightmode_end = (NukiTimeOfDay){ a->nightmode_end[0], a->nightmode_end[1] };
        m->advanced_config.nightmode_auto_lock_enabled = a->nightmode_auto_lock;
        m->advanced_config.nightmode_auto_unlock_disabled = a->nightmode_auto_unlock_disabled;
        m->advanced_config.nightmode_immediate_lock_on_start = a->nightmode_immediate_lock;
        m->advanced_config.auto_lock_enabled = a->auto_lock_enabled;
        m->advanced_config.immediate_auto_lock_enabled = a->immediate_auto_lock;
        m->advanced_config.auto_update_enabled = a->auto_update;
        switch (l->gen) {
        case SIM_GEN_1:
        case SIM_GEN_2:
                m->n_optional = 0;
                break;
        case SIM_GEN_3:
        case SIM_GEN_4:
                m->n_optional = 3;
                break;
        case SIM_GEN_ULTRA:
                m->n_optional = NUKI_OPTIONAL_ALL;
                break;
        }
}

/* ---- pairing ---- */

static void pairing_write(SimLock *l, const uint8_t *data, size_t len)
{
        SimLockSession *s = l->session;
        uint8_t msg[NUKI_FRAME_MAX], out[NUKI_PAIR_OUT_MAX];
        size_t n, out_len;
        int r;

        (void) nuki_reasm_feed(&s->reasm_pairing, data, len, 0);
        while ((r = nuki_reasm_pop(&s->reasm_pairing, msg, sizeof(msg), &n)) > 0) {
                if (s->pair && n >= 2 && nuki_get_u16(msg) == NUKI_CMD_REQUEST_DATA &&
                    nuki_pair_lock_state(s->pair) != NUKI_PAIR_LOCK_WAIT_REQUEST)
                        /* the client starts over: so does the lock */
                        s->pair = nuki_pair_lock_free(s->pair);
                if (!s->pair) {
                        NukiPairLockParams p;

                        nuki_pair_lock_params_init(&p);
                        p.ultra = l->gen == SIM_GEN_ULTRA;
                        p.pairing_mode = l->pairing_mode;
                        p.full = l->n_auths >= l->max_auths;
                        p.auth_id = l->next_auth_id;
                        p.uuid = l->uuid;
                        p.security_pin = l->security_pin;
                        p.security_pin_set = l->security_pin != 0;
                        p.ultra_reply = (NukiUltraReply) l->ultra_reply;
                        p.secret_key = l->secret_key;
                        r = nuki_pair_lock_new(&s->pair, &p);
                        if (r < 0) {
                                log_error_errno(r, "%s: cannot start pairing: %m", l->name);
                                return;
                        }
                }
                out_len = 0;
                r = nuki_pair_lock_feed(s->pair, msg, n, out, sizeof(out), &out_len);
                if (out_len > 0)
                        sim_lock_indicate(l, SIM_CHR_PAIRING, out, out_len);
                nuki_reasm_set_mode(&s->reasm_pairing, nuki_pair_lock_reasm_mode(s->pair));
                if (r == 1) {
                        NukiPairing res;
                        SimAuth *a;

                        if (nuki_pair_lock_get_result(s->pair, &res) >= 0) {
                                r = sim_lock_add_auth(l, (uint8_t) res.id_type, res.app_id, res.name,
                                                      res.shared_key, &a);
                                if (r >= 0) {
                                        a->id = res.auth_id;
                                        if (a->id >= l->next_auth_id)
                                                l->next_auth_id = a->id + 1;
                                        log_info("%s: paired with '%s' (auth-id %u, type %u)", l->name,
                                                 a->name, a->id, (unsigned) a->type);
                                }
                                nuki_pairing_wipe(&res);
                        }
                        sim_lock_set_pairing_mode(l, false);
                        s->pair = nuki_pair_lock_free(s->pair);
                        nuki_reasm_set_mode(&s->reasm_pairing, NUKI_REASM_PLAIN);
                } else if (r < 0) {
                        log_info("%s: pairing failed: %s", l->name, strerror(-r));
                        s->pair = nuki_pair_lock_free(s->pair);
                        nuki_reasm_set_mode(&s->reasm_pairing, NUKI_REASM_PLAIN);
                }
        }
}

/* ---- commands ---- */

static SimAuth *session_auth(SimLock *l)
{
        return l->session && l->session->ls_valid ? sim_lock_find_auth(l, l->session->ls.auth_id) : NULL;
}

static void copy_window(uint8_t from[7], uint8_t until[7], uint8_t *weekdays, uint8_t ft[2], uint8_t ut[2],
                        const NukiTime *f, const NukiTime *u, uint8_t wd, NukiTimeOfDay a, NukiTimeOfDay b)
{
        /* as given, field by field: an unset time (all zero) stays unset */
        const NukiTime *src[2] = { f, u };
        uint8_t *dst[2] = { from, until };
        for (size_t i = 0; i < 2; i++) {
                dst[i][0] = (uint8_t) (src[i]->year & 0xff);
                dst[i][1] = (uint8_t) (src[i]->year >> 8);
                dst[i][2] = src[i]->month;
                dst[i][3] = src[i]->day;
                dst[i][4] = src[i]->hour;
                dst[i][5] = src[i]->minute;
                dst[i][6] = src[i]->second;
        }
        *weekdays = wd;
        ft[0] = a.hour;
        ft[1] = a.minute;
        ut[0] = b.hour;
        ut[1] = b.minute;
}

/* the stored window as the wire wants it (stored times are encoded local times) */
static void window_out(const uint8_t from[7], const uint8_t until[7], uint8_t wd, const uint8_t ft[2],
                       const uint8_t ut[2], NukiTime *f, NukiTime *u, uint8_t *weekdays, NukiTimeOfDay *a,
                       NukiTimeOfDay *b)
{
        *f = (NukiTime){ .year = (uint16_t) (from[0] | from[1] << 8),
                         .month = from[2],
                         .day = from[3],
                         .hour = from[4],
                         .minute = from[5],
                         .second = from[6] };
        *u = (NukiTime){ .year = (uint16_t) (until[0] | until[1] << 8),
                         .month = until[2],
                         .day = until[3],
                         .hour = until[4],
                         .minute = until[5],
                         .second = until[6] };
        *weekdays = wd;
        *a = (NukiTimeOfDay){ ft[0], ft[1] };
        *b = (NukiTimeOfDay){ ut[0], ut[1] };
}

static void send_auth_entries(SimLock *l, uint16_t offset, uint16_t count)
{
        SimAuth *self = session_auth(l);
        SimAuth *order[SIM_MAX_AUTHS];
        size_t n = 0, sent = 0;
        NukiMsg m;

        /* the caller's own authorization comes first */
        if (self)
                order[n++] = self;
        for (size_t i = 0; i < l->n_auths; i++)
                if (&l->auths[i] != self)
                        order[n++] = &l->auths[i];
        nuki_msg_init(&m, NUKI_CMD_AUTHORIZATION_ENTRY_COUNT, NUKI_VARIANT_DEFAULT);
        m.authorization_entry_count.count = (uint16_t) n;
        send_msg(l, &m);
        for (size_t i = offset; i < n && sent < count; i++, sent++) {
                SimAuth *a = order[i];
                nuki_msg_init(&m, NUKI_CMD_AUTHORIZATION_ENTRY, NUKI_VARIANT_DEFAULT);
                m.authorization_entry.auth_id = a->id;
                m.authorization_entry.id_type = a->type;
                snprintf(m.authorization_entry.name, sizeof(m.authorization_entry.name), "%s", a->name);
                m.authorization_entry.enabled = a->enabled;
                m.authorization_entry.remote_allowed = a->remote_allowed;
                to_nuki_time(a->created, &m.authorization_entry.created);
                to_nuki_time(a->last_active ? a->last_active : a->created,
                             &m.authorization_entry.last_active);
                m.authorization_entry.lock_count = a->lock_count;
                m.authorization_entry.time_limited = a->time_limited;
                if (a->time_limited)
                        window_out(a->allowed_from, a->allowed_until, a->weekdays, a->from_time,
                                   a->until_time, &m.authorization_entry.allowed_from,
                                   &m.authorization_entry.allowed_until, &m.authorization_entry.weekdays,
                                   &m.authorization_entry.from_time, &m.authorization_entry.until_time);
                m.n_optional = a->time_limited ? NUKI_OPTIONAL_ALL : 0;
                send_msg(l, &m);
        }
}

static void send_keypad_codes(SimLock *l, uint16_t offset, uint16_t count)
{
        NukiMsg m;
        size_t sent = 0;

        nuki_msg_init(&m, NUKI_CMD_KEYPAD_CODE_COUNT, NUKI_VARIANT_DEFAULT);
        m.keypad_code_count.count = (uint16_t) l->n_codes;
        send_msg(l, &m);
        for (size_t i = offset; i < l->n_codes && sent < count; i++, sent++) {
                SimCode *c = &l->codes[i];
                nuki_msg_init(&m, NUKI_CMD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
                m.keypad_code.code_id = c->id;
                m.keypad_code.code = c->code;
                snprintf(m.keypad_code.name, sizeof(m.keypad_code.name), "%s", c->name);
                m.keypad_code.enabled = c->enabled;
                to_nuki_time(c->created, &m.keypad_code.created);
                to_nuki_time(c->last_active ? c->last_active : c->created, &m.keypad_code.last_active);
                m.keypad_code.lock_count = c->lock_count;
                m.keypad_code.time_limited = c->time_limited;
                if (c->time_limited)
                        window_out(c->allowed_from, c->allowed_until, c->weekdays, c->from_time,
                                   c->until_time, &m.keypad_code.allowed_from, &m.keypad_code.allowed_until,
                                   &m.keypad_code.weekdays, &m.keypad_code.from_time,
                                   &m.keypad_code.until_time);
                m.n_optional = c->time_limited ? NUKI_OPTIONAL_ALL : 0;
                send_msg(l, &m);
        }
}

static void send_log(SimLock *l, const NukiMsg *req)
{
        uint32_t start = req->request_log_entries.start_index;
        unsigned count = req->request_log_entries.count, sent = 0;
        bool desc = req->request_log_entries.sort_order == 1;
        NukiMsg m;

        if (req->request_log_entries.total_count) {
                nuki_msg_init(&m, NUKI_CMD_LOG_ENTRY_COUNT, NUKI_VARIANT_DEFAULT);
                m.log_entry_count.logging_enabled = l->logging_enabled;
                m.log_entry_count.count = (uint16_t) l->n_log;
                m.log_entry_count.door_sensor_enabled = l->door != SIM_DOOR_DEACTIVATED;
                m.log_entry_count.door_sensor_logging_enabled = l->door != SIM_DOOR_DEACTIVATED;
                send_msg(l, &m);
        }
        for (size_t k = 0; k < l->n_log && sent < count; k++) {
                const SimLogEntry *e = &l->log[desc ? l->n_log - 1 - k : k];
                /* start_index 0: from the oldest/newest; otherwise entries after/before it */
                if (start != 0 && (desc ? e->index >= start : e->index <= start))
                        continue;
                nuki_msg_init(&m, NUKI_CMD_LOG_ENTRY, NUKI_VARIANT_DEFAULT);
                m.log_entry.index = e->index;
                to_nuki_time(e->time, &m.log_entry.timestamp);
                m.log_entry.auth_id = e->auth_id;
                snprintf(m.log_entry.name, sizeof(m.log_entry.name), "%s", e->name);
                m.log_entry.type = e->type;
                m.log_entry.data.len = e->len;
                memcpy(m.log_entry.data.data, e->data, e->len);
                send_msg(l, &m);
                sent++;
        }
        send_status(l, NUKI_STATUS_COMPLETE);
}

static int reboot_handler(sd_event_source *src, uint64_t usec, void *userdata)
{
        SimLock *l = userdata;
        l->reboot_timer = sd_event_source_disable_unref(l->reboot_timer);
        sim_lock_reboot(l);
        return 0;
}

static int drop_handler(sd_event_source *src, uint64_t usec, void *userdata)
{
        SimLock *l = userdata;
        l->drop_timer = sd_event_source_disable_unref(l->drop_timer);
        if (l->link)
                sim_device_link_lost(l->link, "link loss during an action (injected)");
        return 0;
}

static uint8_t handle_command(SimLock *l, const NukiMsg *m)
{
        SimLockSession *s = l->session;
        SimAuth *self = session_auth(l);
        NukiMsg r;
        uint8_t err;

        switch (m->command) {
        case NUKI_CMD_REQUEST_DATA: {
                uint8_t out[NUKI_FRAME_MAX];
                int n;
                switch (m->request_data.command) {
                case NUKI_CMD_CHALLENGE:
                        n = nuki_lock_session_challenge(&s->ls, NULL, NULL, out, sizeof(out));
                        if (n > 0)
                                sim_lock_indicate(l, SIM_CHR_USDIO, out, (size_t) n);
                        return 0;
                case NUKI_CMD_KEYTURNER_STATES:
                        build_keyturner_states(l, &r);
                        send_msg(l, &r);
                        /* only a Bridge reading the states clears the advert bit (fact sheet 6) */
                        if (self && self->type == NUKI_ID_TYPE_BRIDGE)
                                l->state_changed = false;
                        return 0;
                case NUKI_CMD_BATTERY_REPORT:
                        build_battery_report(l, &r);
                        send_msg(l, &r);
                        return 0;
                default:
                        return NUKI_K_ERROR_BAD_PARAMETER;
                }
        }
        case NUKI_CMD_LOCK_ACTION:
        case NUKI_CMD_SIMPLE_LOCK_ACTION:
        case NUKI_CMD_KEYPAD_ACTION: {
                uint8_t action;
                if (l->drop_before_action > 0) {
                        /* fault: the link goes before the command is carried out */
                        l->drop_before_action--;
                        (void) sim_timer(l->sim, &l->drop_timer, 1, drop_handler, l);
                        return 0;
                }
                sim_trace(l->sim, l->name, "action", m->command);
                if (m->command == NUKI_CMD_LOCK_ACTION)
                        action = m->lock_action.action;
                else if (m->command == NUKI_CMD_SIMPLE_LOCK_ACTION)
                        action = m->simple_lock_action.action;
                else {
                        static const uint8_t map[] = { 0x01, 0x01, 0x02, 0x03, 0x04 };
                        bool found = false;
                        if (m->keypad_action.action >= ELEMENTSOF(map))
                                return NUKI_K_ERROR_BAD_PARAMETER;
                        action = m->keypad_action.action == 0
                                                 ? (l->lock_state == SIM_LS_LOCKED ? 0x01 : 0x02)
                                                 : map[m->keypad_action.action];
                        for (size_t i = 0; i < l->n_codes; i++)
                                if (l->codes[i].code == m->keypad_action.code && l->codes[i].enabled)
                                        found = true;
                        if (m->keypad_action.source == 1 && !found)
                                return NUKI_K_ERROR_CODE_INVALID;
                }
                err = sim_lock_start_action(l, action, NUKI_TRIGGER_SYSTEM, self ? self->id : 0,
                                            self ? self->name : "", false, 0);
                if (err)
                        return err;
                if (self) {
                        self->lock_count++;
                        self->last_active = sim_lock_time(l);
                }
                s->action_waiting = true;
                s->action_command = m->command;
                if (l->fail_action_reply > 0) {
                        /* fault: carried out, but BlueZ tells the writer it failed */
                        l->fail_action_reply--;
                        l->fail_this_reply = true;
                }
                send_status(l, NUKI_STATUS_ACCEPTED);
                build_keyturner_states(l, &r);
                send_msg(l, &r);
                if (l->drop_on_action > 0) {
                        /* fault: the link goes once the motor runs and the replies are out */
                        l->drop_on_action--;
                        l->then_pending = l->drop_then;
                        (void) sim_timer(l->sim, &l->drop_timer, 2 * l->rtt, drop_handler, l);
                }
                return 0;
        }
        case NUKI_CMD_REQUEST_CONFIG:
                build_config(l, &r);
                send_msg(l, &r);
                return 0;
        case NUKI_CMD_SET_CONFIG:
                snprintf(l->cfg.name, sizeof(l->cfg.name), "%s", m->set_config.name);
                l->cfg.latitude = m->set_config.latitude;
                l->cfg.longitude = m->set_config.longitude;
                l->cfg.auto_unlatch = m->set_config.auto_unlatch;
                l->cfg.pairing_enabled = m->set_config.pairing_enabled;
                l->cfg.button_enabled = m->set_config.button_enabled;
                l->cfg.led_enabled = m->set_config.led_enabled;
                l->cfg.led_brightness = m->set_config.led_brightness;
                l->cfg.tz_offset = m->set_config.timezone_offset;
                l->cfg.dst_mode = m->set_config.dst_mode;
                l->cfg.fob_action[0] = m->set_config.fob_action_1;
                l->cfg.fob_action[1] = m->set_config.fob_action_2;
                l->cfg.fob_action[2] = m->set_config.fob_action_3;
                l->cfg.single_lock = m->set_config.single_lock;
                l->cfg.advertising_mode = m->set_config.advertising_mode & 3;
                if (l->gen >= SIM_GEN_3) /* SL 1.0/2.0 have no timezone id (their Config lacks it) */
                        l->cfg.timezone_id = m->set_config.timezone_id;
                l->config_update_count++;
                send_status(l, NUKI_STATUS_COMPLETE);
                return 0;
        case NUKI_CMD_REQUEST_ADVANCED_CONFIG:
                build_advanced_config(l, &r);
                send_msg(l, &r);
                return 0;
        case NUKI_CMD_SET_ADVANCED_CONFIG: {
                SimLockAdvConfig *a = &l->adv;
                const __typeof__(m->set_advanced_config) *c = &m->set_advanced_config;
                if (c->auto_lock_timeout > 0 && c->auto_lock_timeout < 2)
                        return NUKI_K_ERROR_BAD_PARAMETER; /* minimum 2 s [S23] */
                a->unlocked_offset = c->unlocked_position_offset;
                a->locked_offset = c->locked_position_offset;
                a->single_locked_offset = c->single_locked_position_offset;
                a->unlocked_to_locked_offset = c->unlocked_to_locked_transition_offset;
                a->lockngo_timeout = c->lockngo_timeout;
                a->single_button_action = c->single_button_press_action;
                a->double_button_action = c->double_button_press_action;
                a->detached_cylinder = c->detached_cylinder;
                a->battery_type = c->battery_type;
                a->auto_battery_type_detection = c->automatic_battery_type_detection;
                a->unlatch_duration = c->unlatch_duration;
                a->auto_lock_timeout = c->auto_lock_timeout;
                a->auto_unlock_disabled = c->auto_unlock_disabled;
                a->nightmode_enabled = c->nightmode_enabled;
                a->nightmode_start[0] = c->nightmode_start.hour;
                a->nightmode_start[1] = c->nightmode_start.minute;
                a->nightmode_end[0] = c->nightmode_end.hour;
                a->nightmode_end[1] = c->nightmode_end.minute;
                a->nightmode_auto_lock = c->nightmode_auto_lock_enabled;
                a->nightmode_auto_unlock_disabled = c->nightmode_auto_unlock_disabled;
                a->nightmode_immediate_lock = c->nightmode_immediate_lock_on_start;
                a->auto_lock_enabled = c->auto_lock_enabled;
                a->immediate_auto_lock = c->immediate_auto_lock_enabled;
                a->auto_update = c->auto_update_enabled;
                l->config_update_count++;
                send_status(l, NUKI_STATUS_COMPLETE);
                return 0;
        }
        case NUKI_CMD_REQUEST_AUTHORIZATION_ENTRIES:
                send_auth_entries(l, m->request_authorization_entries.offset,
                                  m->request_authorization_entries.count);
                return 0;
        case NUKI_CMD_AUTHORIZATION_DATA_INVITE: {
                SimAuth *a;
                int q = sim_lock_add_auth(l, m->authorization_data_invite.id_type, 0,
                                          m->authorization_data_invite.name,
                                          m->authorization_data_invite.shared_key, &a);
                if (q < 0)
                        return NUKI_K_ERROR_TOO_MANY_ENTRIES;
                a->remote_allowed = m->authorization_data_invite.remote_allowed;
                a->time_limited = m->authorization_data_invite.time_limited;
                nuki_msg_init(&r, NUKI_CMD_AUTHORIZATION_ID_INVITE, NUKI_VARIANT_DEFAULT);
                r.authorization_id_invite.auth_id = a->id;
                to_nuki_time(a->created, &r.authorization_id_invite.created);
                send_msg(l, &r);
                return 0;
        }
        case NUKI_CMD_UPDATE_AUTHORIZATION_ENTRY: {
                SimAuth *a = sim_lock_find_auth(l, m->update_authorization_entry.auth_id);
                if (!a)
                        return NUKI_K_ERROR_INVALID_AUTH_ID;
                snprintf(a->name, sizeof(a->name), "%s", m->update_authorization_entry.name);
                a->enabled = m->update_authorization_entry.enabled;
                a->remote_allowed = m->update_authorization_entry.remote_allowed;
                a->time_limited = m->update_authorization_entry.time_limited;
                copy_window(a->allowed_from, a->allowed_until, &a->weekdays, a->from_time, a->until_time,
                            &m->update_authorization_entry.allowed_from,
                            &m->update_authorization_entry.allowed_until,
                            m->update_authorization_entry.weekdays, m->update_authorization_entry.from_time,
                            m->update_authorization_entry.until_time);
                send_status(l, NUKI_STATUS_COMPLETE);
                return 0;
        }
        case NUKI_CMD_REMOVE_AUTHORIZATION_ENTRY: {
                uint32_t id = m->remove_authorization_entry.auth_id;
                if (sim_lock_remove_auth(l, id) < 0)
                        return NUKI_K_ERROR_INVALID_AUTH_ID;
                send_status(l, NUKI_STATUS_COMPLETE);
                if (s->ls.auth_id == id)
                        s->ls_valid = false; /* removed itself: nothing more to say to it */
                return 0;
        }
        case NUKI_CMD_REQUEST_LOG_ENTRIES:
                send_log(l, m);
                return 0;
        case NUKI_CMD_ENABLE_LOGGING: {
                uint8_t v = m->enable_logging.enabled;
                l->logging_enabled = true; /* the change itself is logged */
                sim_lock_log(l, self ? self->id : 0, self ? self->name : "", 0x01, &v, 1);
                l->logging_enabled = v;
                send_status(l, NUKI_STATUS_COMPLETE);
                return 0;
        }
        case NUKI_CMD_ADD_KEYPAD_CODE: {
                SimCode *c;
                if (l->n_codes >= SIM_MAX_CODES)
                        return NUKI_K_ERROR_TOO_MANY_ENTRIES;
                err = sim_code_check(l, m->add_keypad_code.code, 0);
                if (err)
                        return err;
                c = &l->codes[l->n_codes++];
                *c = (SimCode){ .id = l->next_code_id++,
                                .code = m->add_keypad_code.code,
                                .enabled = true,
                                .created = sim_lock_time(l),
                                .time_limited = m->add_keypad_code.time_limited };
                snprintf(c->name, sizeof(c->name), "%s", m->add_keypad_code.name);
                copy_window(c->allowed_from, c->allowed_until, &c->weekdays, c->from_time, c->until_time,
                            &m->add_keypad_code.allowed_from, &m->add_keypad_code.allowed_until,
                            m->add_keypad_code.weekdays, m->add_keypad_code.from_time,
                            m->add_keypad_code.until_time);
                l->cfg.has_keypad = 1;
                nuki_msg_init(&r, NUKI_CMD_KEYPAD_CODE_ID, NUKI_VARIANT_DEFAULT);
                r.keypad_code_id.code_id = c->id;
                to_nuki_time(c->created, &r.keypad_code_id.created);
                send_msg(l, &r);
                return 0;
        }
        case NUKI_CMD_REQUEST_KEYPAD_CODES:
                send_keypad_codes(l, m->request_keypad_codes.offset, m->request_keypad_codes.count);
                return 0;
        case NUKI_CMD_UPDATE_KEYPAD_CODE:
                for (size_t i = 0; i < l->n_codes; i++) {
                        SimCode *c = &l->codes[i];
                        if (c->id != m->update_keypad_code.code_id)
                                continue;
                        err = sim_code_check(l, m->update_keypad_code.code, c->id);
                        if (err)
                                return err;
                        c->code = m->update_keypad_code.code;
                        snprintf(c->name, sizeof(c->name), "%s", m->update_keypad_code.name);
                        c->enabled = m->update_keypad_code.enabled;
                        c->time_limited = m->update_keypad_code.time_limited;
                        copy_window(c->allowed_from, c->allowed_until, &c->weekdays, c->from_time,
                                    c->until_time, &m->update_keypad_code.allowed_from,
                                    &m->update_keypad_code.allowed_until, m->update_keypad_code.weekdays,
                                    m->update_keypad_code.from_time, m->update_keypad_code.until_time);
                        send_status(l, NUKI_STATUS_COMPLETE);
                        return 0;
                }
                return NUKI_K_ERROR_BAD_PARAMETER;
        case NUKI_CMD_REMOVE_KEYPAD_CODE:
                for (size_t i = 0; i < l->n_codes; i++)
                        if (l->codes[i].id == m->remove_keypad_code.code_id) {
                                memmove(&l->codes[i], &l->codes[i + 1],
                                        (l->n_codes - i - 1) * sizeof(l->codes[0]));
                                l->n_codes--;
                                send_status(l, NUKI_STATUS_COMPLETE);
                                return 0;
                        }
                return NUKI_K_ERROR_BAD_PARAMETER;
        case NUKI_CMD_ADD_TIME_CONTROL_ENTRY: {
                SimTimeControl *t;
                const __typeof__(m->add_time_control_entry) *a = &m->add_time_control_entry;
                if (l->n_tc >= SIM_MAX_TIME_CONTROL)
                        return NUKI_K_ERROR_TOO_MANY_ENTRIES;
                if (a->time.hour > 23 || a->time.minute > 59 || a->lock_action < 1 || a->lock_action > 6)
                        return NUKI_K_ERROR_BAD_PARAMETER;
                t = &l->tc[l->n_tc++];
                *t = (SimTimeControl){ .id = l->next_tc_id++,
                                       .enabled = true,
                                       .weekdays = a->weekdays,
                                       .hour = a->time.hour,
                                       .minute = a->time.minute,
                                       .action = a->lock_action };
                nuki_msg_init(&r, NUKI_CMD_TIME_CONTROL_ENTRY_ID, NUKI_VARIANT_DEFAULT);
                r.time_control_entry_id.entry_id = t->id;
                send_msg(l, &r);
                return 0;
        }
        case NUKI_CMD_REQUEST_TIME_CONTROL_ENTRIES:
                nuki_msg_init(&r, NUKI_CMD_TIME_CONTROL_ENTRY_COUNT, NUKI_VARIANT_DEFAULT);
                r.time_control_entry_count.count = (uint8_t) l->n_tc;
                send_msg(l, &r);
                for (size_t i = 0; i < l->n_tc; i++) {
                        nuki_msg_init(&r, NUKI_CMD_TIME_CONTROL_ENTRY, NUKI_VARIANT_DEFAULT);
                        r.time_control_entry.entry_id = l->tc[i].id;
                        r.time_control_entry.enabled = l->tc[i].enabled;
                        r.time_control_entry.weekdays = l->tc[i].weekdays;
                        r.time_control_entry.time = (NukiTimeOfDay){ l->tc[i].hour, l->tc[i].minute };
                        r.time_control_entry.lock_action = l->tc[i].action;
                        send_msg(l, &r);
                }
                return 0;
        case NUKI_CMD_UPDATE_TIME_CONTROL_ENTRY:
        case NUKI_CMD_REMOVE_TIME_CONTROL_ENTRY: {
                uint8_t id = m->command == NUKI_CMD_REMOVE_TIME_CONTROL_ENTRY
                                             ? m->remove_time_control_entry.entry_id
                                             : m->update_time_control_entry.entry_id;
                for (size_t i = 0; i < l->n_tc; i++) {
                        SimTimeControl *t = &l->tc[i];
                        if (t->id != id)
                                continue;
                        if (m->command == NUKI_CMD_REMOVE_TIME_CONTROL_ENTRY) {
                                memmove(t, t + 1, (l->n_tc - i - 1) * sizeof(*t));
                                l->n_tc--;
                        } else {
                                t->enabled = m->update_time_control_entry.enabled;
                                t->weekdays = m->update_time_control_entry.weekdays;
                                t->hour = m->update_time_control_entry.time.hour;
                                t->minute = m->update_time_control_entry.time.minute;
                                t->action = m->update_time_control_entry.lock_action;
                        }
                        send_status(l, NUKI_STATUS_COMPLETE);
                        return 0;
                }
                return NUKI_K_ERROR_BAD_PARAMETER;
        }
        case NUKI_CMD_SET_SECURITY_PIN:
                if (l->gen != SIM_GEN_ULTRA && m->set_security_pin.new_pin > 9999)
                        return NUKI_K_ERROR_BAD_PARAMETER;
                l->security_pin = m->set_security_pin.new_pin;
                s->ls.security_pin = l->security_pin;
                send_status(l, NUKI_STATUS_COMPLETE);
                return 0;
        case NUKI_CMD_VERIFY_SECURITY_PIN:
                send_status(l, NUKI_STATUS_COMPLETE);
                return 0;
        case NUKI_CMD_REQUEST_CALIBRATION:
                /* ACCEPTED, the states through "calibration", COMPLETE when it is done */
                err = sim_lock_calibrate(l, self ? self->id : 0, self ? self->name : "");
                if (err)
                        return err;
                s->action_waiting = true;
                s->action_command = m->command;
                send_status(l, NUKI_STATUS_ACCEPTED);
                build_keyturner_states(l, &r);
                send_msg(l, &r);
                return 0;
        case NUKI_CMD_REQUEST_REBOOT:
                send_status(l, NUKI_STATUS_COMPLETE);
                /* the reboot takes the link down once the reply is out */
                (void) sim_timer(l->sim, &l->reboot_timer, 4 * l->rtt, reboot_handler, l);
                return 0;
        case NUKI_CMD_UPDATE_TIME:
                l->clock_offset = from_nuki_time(&m->update_time.time) - sim_wallclock(l->sim);
                send_status(l, NUKI_STATUS_COMPLETE);
                return 0;
        default:
                return NUKI_ERROR_UNKNOWN;
        }
}

static void usdio_message(SimLock *l, const uint8_t *msg, size_t n)
{
        SimLockSession *s = l->session;
        uint32_t auth_id;
        SimAuth *a;
        NukiMsg m;
        int r;

        if (nuki_frame_peek_auth_id(msg, n, &auth_id) < 0)
                return;
        a = sim_lock_find_auth(l, auth_id);
        if (!a) {
                /* nobody to encrypt for: unencrypted, on the Keyturner GDIO */
                send_plain_error(l, SIM_CHR_GDIO, NUKI_K_ERROR_NOT_AUTHORIZED, 0);
                return;
        }
        if (!s->ls_valid || s->ls.auth_id != auth_id || memcmp(s->ls.key, a->key, 32) != 0) {
                nuki_lock_session_wipe(&s->ls);
                nuki_lock_session_init(&s->ls, a->key, a->id, l->security_pin, l->gen == SIM_GEN_ULTRA);
                s->ls_valid = true;
        }
        s->ls.security_pin = l->security_pin;
        r = nuki_lock_session_receive(&s->ls, msg, n, &m);
        if (r < 0)
                return;
        if (r == NUKI_K_ERROR_NOT_AUTHORIZED) {
                send_plain_error(l, SIM_CHR_GDIO, NUKI_K_ERROR_NOT_AUTHORIZED, m.command);
                nuki_msg_wipe(&m);
                return;
        }
        if (r == NUKI_K_ERROR_BAD_PIN) {
                if (l->pin_failures > MAX_PIN_FAILURES && sim_lock_time(l) >= l->pin_lockout_until)
                        l->pin_failures = 0; /* the lockout is over */
                l->pin_failures++;
                l->n_pin_failures++;
                if (l->pin_failures == MAX_PIN_FAILURES + 1)
                        l->pin_lockout_until = sim_lock_time(l) + PIN_LOCKOUT_SEC;
                send_error(l,
                           l->pin_failures > MAX_PIN_FAILURES ? NUKI_K_ERROR_TOO_MANY_PIN_ATTEMPTS
                                                              : NUKI_K_ERROR_BAD_PIN,
                           m.command);
                nuki_msg_wipe(&m);
                return;
        }
        if (r > 0) {
                send_error(l, (uint8_t) r, m.command);
                nuki_msg_wipe(&m);
                return;
        }
        if (nuki_command_needs_pin(m.command)) {
                if (l->pin_failures > MAX_PIN_FAILURES && sim_lock_time(l) < l->pin_lockout_until) {
                        send_error(l, NUKI_K_ERROR_TOO_MANY_PIN_ATTEMPTS, m.command);
                        nuki_msg_wipe(&m);
                        return;
                }
                l->pin_failures = 0;
        }
        if (!a->enabled) {
                send_error(l, NUKI_K_ERROR_DISABLED, m.command);
                nuki_msg_wipe(&m);
                return;
        }
        a->last_active = sim_lock_time(l);
        r = handle_command(l, &m);
        if (r > 0)
                send_error(l, (uint8_t) r, m.command);
        nuki_msg_wipe(&m);
}

void sim_lock_proto_write(SimLock *l, SimChr chr, const uint8_t *data, size_t len)
{
        SimLockSession *s = l->session;
        uint8_t msg[NUKI_FRAME_MAX];
        size_t n;
        int r;

        if (!s)
                return;
        switch (chr) {
        case SIM_CHR_PAIRING:
                pairing_write(l, data, len);
                return;
        case SIM_CHR_USDIO:
                (void) nuki_reasm_feed(&s->reasm_usdio, data, len, 0);
                while ((r = nuki_reasm_pop(&s->reasm_usdio, msg, sizeof(msg), &n)) > 0)
                        usdio_message(l, msg, n);
                return;
        case SIM_CHR_GDIO:
                /* nothing is sent to the lock here in the protocol; answer like the firmware does */
                (void) nuki_reasm_feed(&s->reasm_gdio, data, len, 0);
                while ((r = nuki_reasm_pop(&s->reasm_gdio, msg, sizeof(msg), &n)) > 0)
                        send_plain_error(l, SIM_CHR_GDIO, NUKI_ERROR_UNKNOWN, nuki_get_u16(msg));
                return;
        case SIM_CHR_SERVICE_CHANGED:
        case SIM_CHR_DIS_MANUFACTURER:
        case SIM_CHR_DIS_MODEL:
        case SIM_CHR_DIS_FIRMWARE:
        case SIM_CHR_COUNT:
                return;
        }
}

void sim_lock_proto_action_done(SimLock *l, uint8_t completion, uint8_t error)
{
        SimLockSession *s = l->session;
        NukiMsg m;

        if (!s || !s->action_waiting)
                return;
        s->action_waiting = false;
        build_keyturner_states(l, &m);
        send_msg(l, &m);
        if (error)
                send_error(l, error, s->action_command);
        else
                send_status(l, NUKI_STATUS_COMPLETE);
}

void sim_lock_proto_state_push(SimLock *l)
{
        SimLockSession *s = l->session;
        NukiMsg m;

        /* while an action runs, the client that started it sees every state (fact sheet 5.3) */
        if (!s || !s->ls_valid || !s->action_waiting)
                return;
        build_keyturner_states(l, &m);
        send_msg(l, &m);
}
