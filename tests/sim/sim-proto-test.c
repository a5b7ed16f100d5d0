/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Protocol and firmware-model tests (see sim-proto-test.h). The client side is the
 * library's: NukiPairClient for pairing, NukiSession for commands, NukiReasm for the
 * indications; this file only moves bytes between them and D-Bus and checks results.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-frame.h"
#include "lockhub/nuki-pair.h"
#include "lockhub/nuki-session.h"
#include "sim-proto-test.h"
#include "sim.h"

#define SEC     USEC_PER_SEC
#define ADAPTER "/org/bluez/hci0"
#define IF_CHR  "org.bluez.GattCharacteristic1"
#define IF_DEV  "org.bluez.Device1"

static double scale = 1.0;

void sim_proto_set_scale(double s)
{
        scale = s;
}

static uint64_t T(uint64_t real_usec)
{
        /* generous slack: the machine may be busy; waits end as soon as the event is there */
        return (uint64_t) ((double) real_usec / scale) + SEC;
}

enum { CH_PAIRING, CH_GDIO, CH_USDIO, CH_N };

typedef struct Msg {
        int ch;
        size_t len;
        uint8_t data[NUKI_FRAME_MAX];
} Msg;

typedef struct Link {
        Probe *p;
        char dev[96];
        char path[CH_N][128];
        NukiReasm reasm[CH_N];
        Msg queue[64];
        size_t n_queue;
        uint8_t last_write[NUKI_FRAME_MAX];
        size_t last_write_len;
} Link;

static void on_value(Probe *p, const char *path, const uint8_t *d, size_t n)
{
        Link *k = p->userdata;
        uint8_t msg[NUKI_FRAME_MAX];
        size_t len;

        for (int ch = 0; ch < CH_N; ch++) {
                if (!streq(path, k->path[ch]))
                        continue;
                (void) nuki_reasm_feed(&k->reasm[ch], d, n, 0);
                while (nuki_reasm_pop(&k->reasm[ch], msg, sizeof(msg), &len) > 0 &&
                       k->n_queue < ELEMENTSOF(k->queue)) {
                        Msg *m = &k->queue[k->n_queue++];
                        m->ch = ch;
                        m->len = len;
                        memcpy(m->data, msg, len);
                }
        }
}

static int link_write(Link *k, int ch, const uint8_t *d, size_t n)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        memcpy(k->last_write, d, n);
        k->last_write_len = n;
        r = sd_bus_message_new_method_call(k->p->bus, &m, "org.bluez", k->path[ch], IF_CHR, "WriteValue");
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', d, n);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a{sv}", 1, "type", "s", "request");
        if (r < 0)
                return r;
        return probe_send(k->p, m, 10 * SEC, "WriteValue");
}

/* the next complete message from the lock on any of our characteristics */
static bool link_next(Link *k, Msg *ret, uint64_t usec)
{
        struct timespec ts;
        uint64_t deadline;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        deadline = (uint64_t) ts.tv_sec * SEC + (uint64_t) ts.tv_nsec / 1000 + usec;
        for (;;) {
                if (k->n_queue > 0) {
                        *ret = k->queue[0];
                        memmove(&k->queue[0], &k->queue[1], (k->n_queue - 1) * sizeof(Msg));
                        k->n_queue--;
                        return true;
                }
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t t = (uint64_t) ts.tv_sec * SEC + (uint64_t) ts.tv_nsec / 1000;
                if (t >= deadline)
                        return false;
                probe_run(k->p, MIN(deadline - t, 20 * USEC_PER_MSEC));
        }
}

static bool link_open(Probe *p, Link *k, const char *address)
{
        char needle[160];
        size_t m;

        memset(k, 0, sizeof(*k));
        k->p = p;
        p->userdata = k;
        p->value_cb = on_value;
        snprintf(k->dev, sizeof(k->dev), ADAPTER "/dev_%s", address);
        for (char *c = k->dev; *c; c++)
                if (*c == ':')
                        *c = '_';
        snprintf(k->path[CH_PAIRING], sizeof(k->path[0]), "%s/service0020/char0021", k->dev);
        snprintf(k->path[CH_GDIO], sizeof(k->path[0]), "%s/service0030/char0031", k->dev);
        snprintf(k->path[CH_USDIO], sizeof(k->path[0]), "%s/service0030/char0034", k->dev);
        nuki_reasm_init(&k->reasm[CH_PAIRING], NUKI_REASM_PLAIN);
        nuki_reasm_init(&k->reasm[CH_GDIO], NUKI_REASM_PLAIN);
        nuki_reasm_init(&k->reasm[CH_USDIO], NUKI_REASM_ENCRYPTED);

        snprintf(needle, sizeof(needle), "IA %s ", k->dev);
        if (probe_find(p, 0, needle) < 0) {
                (void) probe_call(p, 5 * SEC, ADAPTER, "org.bluez.Adapter1", "StartDiscovery", NULL);
                if (probe_wait(p, 0, needle, T(10 * SEC)) < 0)
                        return false;
        }
        m = probe_mark(p);
        if (probe_call(p, 40 * SEC, k->dev, IF_DEV, "Connect", NULL) < 0)
                return false;
        snprintf(needle, sizeof(needle), "PC %s Device1 {ServicesResolved=b:true}", k->dev);
        if (probe_find(p, m, needle) < 0 && probe_wait(p, m, needle, T(5 * SEC)) < 0)
                return false;
        for (int ch = 0; ch < CH_N; ch++)
                if (probe_call(p, 5 * SEC, k->path[ch], IF_CHR, "StartNotify", NULL) < 0)
                        return false;
        return true;
}

static void link_close(Link *k)
{
        (void) probe_call(k->p, 10 * SEC, k->dev, IF_DEV, "Disconnect", NULL);
        k->p->value_cb = NULL;
}

/* Runs a whole pairing; returns 1 (paired), or the client's negative errno. */
static int do_pair(Link *k, const NukiPairParams *pp, NukiPairing *res, int *lock_err)
{
        _cleanup_(nuki_pair_client_freep) NukiPairClient *c = NULL;
        uint8_t out[NUKI_PAIR_OUT_MAX];
        size_t len;
        Msg m;
        int r;

        *lock_err = -1;
        r = nuki_pair_client_new(&c, pp);
        if (r < 0)
                return r;
        r = nuki_pair_client_start(c, out, sizeof(out));
        if (r < 0)
                return r;
        nuki_reasm_set_mode(&k->reasm[CH_PAIRING], nuki_pair_client_reasm_mode(c));
        (void) link_write(k, CH_PAIRING, out, (size_t) r);
        for (;;) {
                if (!link_next(k, &m, T(5 * SEC)))
                        return -ETIMEDOUT;
                if (m.ch != CH_PAIRING)
                        continue;
                len = 0;
                r = nuki_pair_client_feed(c, m.data, m.len, out, sizeof(out), &len);
                nuki_reasm_set_mode(&k->reasm[CH_PAIRING], nuki_pair_client_reasm_mode(c));
                if (len > 0)
                        (void) link_write(k, CH_PAIRING, out, len);
                if (r < 0) {
                        *lock_err = nuki_pair_client_lock_error(c);
                        return r;
                }
                if (r == 1)
                        return nuki_pair_client_get_result(c, res) < 0 ? -EIO : 1;
        }
}

/* One command exchange; the replies land in rep[]. 0, or -EREMOTEIO (lock error in
 * s->lock_error, or *plain_err for an unencrypted one on GDIO), -ETIMEDOUT. */
static int do_cmd(Link *k, NukiSession *s, const NukiMsg *cmd, uint16_t request, NukiMsg *rep, size_t max,
                  size_t *n_rep, int *plain_err)
{
        uint8_t out[NUKI_FRAME_MAX];
        size_t len;
        NukiMsg msg;
        Msg m;
        int r;

        *n_rep = 0;
        if (plain_err)
                *plain_err = -1;
        /* a list may end with a Status the session did not wait for ([P]): drop leftovers */
        probe_run(k->p, 30 * USEC_PER_MSEC);
        k->n_queue = 0;
        r = cmd ? nuki_session_begin(s, cmd, NULL, out, sizeof(out))
                : nuki_session_request(s, request, NULL, out, sizeof(out));
        if (r < 0)
                return r;
        (void) link_write(k, CH_USDIO, out, (size_t) r);
        for (;;) {
                if (!link_next(k, &m, T(15 * SEC))) {
                        nuki_session_reset(s);
                        return -ETIMEDOUT;
                }
                if (m.ch == CH_GDIO) {
                        NukiFrame f;
                        if (nuki_frame_decode_plain(m.data, m.len, &f) >= 0 &&
                            f.command == NUKI_CMD_ERROR_REPORT && f.payload_len >= 1) {
                                if (plain_err)
                                        *plain_err = f.payload[0];
                                nuki_session_reset(s);
                                return -EREMOTEIO;
                        }
                        continue;
                }
                if (m.ch != CH_USDIO)
                        continue;
                len = 0;
                r = nuki_session_feed(s, m.data, m.len, NULL, &msg, out, sizeof(out), &len);
                if (len > 0)
                        (void) link_write(k, CH_USDIO, out, len);
                if (r == NUKI_SESSION_PROGRESS || r == NUKI_SESSION_DONE || r == -EREMOTEIO) {
                        if (*n_rep < max)
                                rep[(*n_rep)++] = msg;
                }
                if (r == NUKI_SESSION_DONE)
                        return 0;
                if (r == -EREMOTEIO)
                        return r;
                if (r < 0 && r != -ENOENT)
                        return r;
        }
}

static const NukiMsg *find_reply(const NukiMsg *rep, size_t n, uint16_t command)
{
        for (size_t i = n; i > 0; i--)
                if (rep[i - 1].command == command)
                        return &rep[i - 1];
        return NULL;
}

static int ctl_str(Probe *p, const char *lock, const char *prop, char *buf, size_t size)
{
        return probe_ctl_get(p, lock, prop, buf, size);
}

static bool ctl_is(Probe *p, const char *lock, const char *prop, const char *want)
{
        char v[64] = "";
        (void) ctl_str(p, lock, prop, v, sizeof(v));
        return streq(v, want);
}

static bool wait_ctl(Probe *p, const char *lock, const char *prop, const char *want, uint64_t usec)
{
        for (uint64_t t = 0; t < usec; t += 20 * USEC_PER_MSEC) {
                if (ctl_is(p, lock, prop, want))
                        return true;
                probe_run(p, 20 * USEC_PER_MSEC);
        }
        return ctl_is(p, lock, prop, want);
}

static unsigned ctl_uint(Probe *p, const char *lock, const char *prop)
{
        char v[64] = "0";
        (void) ctl_str(p, lock, prop, v, sizeof(v));
        return (unsigned) strtoul(v, NULL, 10);
}

static int pair_bridge(Link *k, NukiPairing *res, NukiIdType type, uint32_t app_id)
{
        NukiPairParams pp;
        int lock_err;

        nuki_pair_params_init(&pp);
        pp.id_type = type;
        pp.app_id = app_id;
        pp.name = type == NUKI_ID_TYPE_BRIDGE ? "lockhub" : "phone";
        return do_pair(k, &pp, res, &lock_err);
}

static int lock_action(Link *k, NukiSession *s, uint8_t action, NukiMsg *rep, size_t max, size_t *n)
{
        NukiMsg cmd;
        nuki_msg_init(&cmd, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
        cmd.lock_action.action = action;
        cmd.lock_action.app_id = 42;
        cmd.n_optional = 0;
        return do_cmd(k, s, &cmd, 0, rep, max, n, NULL);
}

/* ---- pairing ---- */

void sim_proto_test_pairing(Probe *p)
{
        NukiPairParams pp;
        NukiPairing res;
        Link k;
        int r, e;

        CHECK(p, link_open(p, &k, "54:D2:72:00:00:02"), "connect back (not in pairing mode)");
        nuki_pair_params_init(&pp);
        r = do_pair(&k, &pp, &res, &e);
        CHECK(p, r == -EPERM && e == NUKI_P_ERROR_NOT_PAIRING,
              "not in pairing mode: P_ERROR_NOT_PAIRING (%d, 0x%02x)", r, (unsigned) e);
        link_close(&k);

        CHECK(p, link_open(p, &k, "54:D2:72:00:00:01"), "connect front (pairing mode)");
        r = do_pair(&k, &pp, &res, &e);
        CHECK(p, r == 1 && res.auth_id >= 1, "paired as a bridge (auth-id %u)", res.auth_id);
        CHECK(p, ctl_uint(p, "front", "Authorizations") == 1, "the lock holds the authorization");
        CHECK(p, ctl_is(p, "front", "PairingMode", "false"), "pairing mode ends with the pairing");
        r = do_pair(&k, &pp, &res, &e);
        CHECK(p, r == -EPERM, "pairing again without pairing mode: refused");

        probe_ctl(p, "front", "SetUserLimit", "u", 1);
        probe_ctl(p, "front", "SetPairingMode", "b", 1);
        pp.id_type = NUKI_ID_TYPE_APP;
        pp.app_id = 77;
        pp.name = "phone";
        r = do_pair(&k, &pp, &res, &e);
        CHECK(p, r == -ENOSPC && e == NUKI_P_ERROR_MAX_USER, "user limit: P_ERROR_MAX_USER (%d)", r);
        probe_ctl(p, "front", "SetUserLimit", "u", 200);
        r = do_pair(&k, &pp, &res, &e);
        CHECK(p, r == 1 && ctl_uint(p, "front", "Authorizations") == 2, "an app next to the bridge");
        link_close(&k);
}

/* ---- commands ---- */

void sim_proto_test_protocol(Probe *p)
{
        NukiMsg rep[64], cmd;
        const NukiMsg *x;
        NukiPairing res;
        NukiSession s;
        size_t n;
        Link k;
        int r, pe;

        CHECK(p, link_open(p, &k, "54:D2:72:00:00:01"), "connect front");
        r = pair_bridge(&k, &res, NUKI_ID_TYPE_BRIDGE, 42);
        if (!CHECK(p, r == 1, "paired"))
                return;
        nuki_session_init(&s, res.shared_key, res.auth_id, 1234, false);

        r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_KEYTURNER_STATES);
        CHECK(p,
              r == 0 && x && x->keyturner_states.lock_state == NUKI_LOCK_STATE_LOCKED &&
                              x->keyturner_states.nuki_state == NUKI_STATE_DOOR_MODE &&
                              nuki_battery_percent(x->keyturner_states.battery) == 80,
              "Keyturner States: locked, door mode, 80 %%");

        static const struct {
                uint8_t action;
                const char *state;
        } actions[] = {
                { NUKI_LOCK_ACTION_UNLOCK, "unlocked" },          { NUKI_LOCK_ACTION_LOCK, "locked" },
                { NUKI_LOCK_ACTION_UNLATCH, "unlocked" },         { NUKI_LOCK_ACTION_FULL_LOCK, "locked" },
                { NUKI_LOCK_ACTION_LOCKNGO, "unlocked-lockngo" },
        };
        for (size_t i = 0; i < ELEMENTSOF(actions); i++) {
                bool accepted = false, moving = false;
                r = lock_action(&k, &s, actions[i].action, rep, 64, &n);
                for (size_t j = 0; j < n; j++) {
                        if (rep[j].command == NUKI_CMD_STATUS &&
                            rep[j].status.status == NUKI_STATUS_ACCEPTED)
                                accepted = true;
                        if (rep[j].command == NUKI_CMD_KEYTURNER_STATES &&
                            (rep[j].keyturner_states.lock_state == NUKI_LOCK_STATE_UNLOCKING ||
                             rep[j].keyturner_states.lock_state == NUKI_LOCK_STATE_LOCKING ||
                             rep[j].keyturner_states.lock_state == NUKI_LOCK_STATE_UNLATCHING))
                                moving = true;
                }
                x = n ? &rep[n - 1] : NULL;
                CHECK(p,
                      r == 0 && accepted && moving && x && x->command == NUKI_CMD_STATUS &&
                                      x->status.status == NUKI_STATUS_COMPLETE &&
                                      ctl_is(p, "front", "LockState", actions[i].state),
                      "lock action 0x%02x: ACCEPTED, moving states, COMPLETE, lock %s", actions[i].action,
                      actions[i].state);
        }
        CHECK(p, wait_ctl(p, "front", "LockState", "locked", T(25 * SEC)),
              "lock'n'go locks again by itself");

        nuki_msg_init(&cmd, NUKI_CMD_SIMPLE_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
        cmd.simple_lock_action.action = NUKI_LOCK_ACTION_UNLOCK;
        cmd.n_optional = 0;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == 0 && ctl_is(p, "front", "LockState", "unlocked"), "Simple Lock Action");

        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_CONFIG, NUKI_VARIANT_DEFAULT);
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_CONFIG);
        CHECK(p,
              r == 0 && x && x->config.nuki_id == 0x2A000001 && x->config.firmware_version[0] == 2 &&
                              x->config.firmware_version[1] == 12 && x->config.firmware_version[2] == 4,
              "Config: Nuki ID and firmware 2.12.4");
        nuki_msg_init(&cmd, NUKI_CMD_SET_CONFIG, NUKI_VARIANT_DEFAULT);
        snprintf(cmd.set_config.name, sizeof(cmd.set_config.name), "Hall");
        cmd.set_config.led_brightness = 2;
        cmd.set_config.timezone_id = 37;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_CONFIG, NUKI_VARIANT_DEFAULT);
        if (r == 0)
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_CONFIG);
        CHECK(p, r == 0 && x && streq(x->config.name, "Hall"), "Set Config, read back");

        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_ADVANCED_CONFIG, NUKI_VARIANT_DEFAULT);
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_ADVANCED_CONFIG);
        CHECK(p, r == 0 && x && x->advanced_config.total_degrees == 720, "Advanced Config");
        if (x) {
                NukiMsg set = *x;
                set.command = NUKI_CMD_SET_ADVANCED_CONFIG;
                set.set_advanced_config.lockngo_timeout = 30;
                set.n_optional = 0;
                r = do_cmd(&k, &s, &set, 0, rep, 64, &n, NULL);
                CHECK(p, r == 0, "Set Advanced Config");
        }

        r = do_cmd(&k, &s, NULL, NUKI_CMD_BATTERY_REPORT, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_BATTERY_REPORT);
        CHECK(p, r == 0 && x && x->battery_report.voltage == ctl_uint(p, "front", "BatteryMillivolts"),
              "Battery Report voltage (%u mV)", x ? (unsigned) x->battery_report.voltage : 0U);

        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_LOG_ENTRIES, NUKI_VARIANT_DEFAULT);
        cmd.request_log_entries.count = 50;
        cmd.request_log_entries.sort_order = 1;
        cmd.request_log_entries.total_count = true;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_LOG_ENTRY_COUNT);
        {
                const NukiMsg *le = find_reply(rep, n, NUKI_CMD_LOG_ENTRY);
                CHECK(p,
                      r == 0 && x && x->log_entry_count.count >= 7 && le &&
                                      le->log_entry.auth_id == res.auth_id,
                      "activity log: count, entries with our auth-id");
        }
        {
                const NukiMsg *first = NULL;
                for (size_t j = 0; j < n && !first; j++)
                        if (rep[j].command == NUKI_CMD_LOG_ENTRY)
                                first = &rep[j];
                CHECK(p,
                      first && first->log_entry.type == 2 && first->log_entry.data.data[0] == 1 &&
                                      first->log_entry.data.data[3] == 0,
                      "newest entry first: unlock, completed");
        }

        /* keypad codes */
        static const struct {
                uint32_t code;
                int err;
        } codes[] = {
                { 123456, NUKI_K_ERROR_CODE_INVALID }, /* starts with 12 */
                { 234506, NUKI_K_ERROR_CODE_INVALID }, /* a 0 */
                { 23456, NUKI_K_ERROR_CODE_INVALID },  /* 5 digits */
                { 234567, 0 },
                { 234567, NUKI_K_ERROR_CODE_ALREADY_EXISTS },
        };
        for (size_t i = 0; i < ELEMENTSOF(codes); i++) {
                nuki_msg_init(&cmd, NUKI_CMD_ADD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
                cmd.add_keypad_code.code = codes[i].code;
                snprintf(cmd.add_keypad_code.name, sizeof(cmd.add_keypad_code.name), "Kid");
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
                if (codes[i].err)
                        CHECK(p, r == -EREMOTEIO && nuki_session_lock_error(&s) == codes[i].err,
                              "keypad code %u refused with 0x%02x", codes[i].code, (unsigned) codes[i].err);
                else
                        CHECK(p, r == 0 && find_reply(rep, n, NUKI_CMD_KEYPAD_CODE_ID),
                              "keypad code %u added", codes[i].code);
        }
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_KEYPAD_CODES, NUKI_VARIANT_DEFAULT);
        cmd.request_keypad_codes.count = 10;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_KEYPAD_CODE);
        CHECK(p, r == 0 && x && x->keypad_code.code == 234567 && streq(x->keypad_code.name, "Kid"),
              "list keypad codes");
        nuki_msg_init(&cmd, NUKI_CMD_UPDATE_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        cmd.update_keypad_code.code_id = x ? x->keypad_code.code_id : 1;
        cmd.update_keypad_code.code = 345678;
        cmd.update_keypad_code.enabled = true;
        snprintf(cmd.update_keypad_code.name, sizeof(cmd.update_keypad_code.name), "Teen");
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == 0, "update a keypad code");
        nuki_msg_init(&cmd, NUKI_CMD_REMOVE_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        cmd.remove_keypad_code.code_id = 1;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == 0 && ctl_uint(p, "front", "KeypadCodes") == 0, "remove it");

        /* authorizations */
        nuki_msg_init(&cmd, NUKI_CMD_AUTHORIZATION_DATA_INVITE, NUKI_VARIANT_DEFAULT);
        snprintf(cmd.authorization_data_invite.name, sizeof(cmd.authorization_data_invite.name), "Guest");
        cmd.authorization_data_invite.id_type = NUKI_ID_TYPE_APP;
        nuki_random(cmd.authorization_data_invite.shared_key, 32);
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_AUTHORIZATION_ID_INVITE);
        CHECK(p, r == 0 && x && ctl_uint(p, "front", "Authorizations") == 2, "invite an authorization");
        {
                uint32_t guest = x ? x->authorization_id_invite.auth_id : 0;
                nuki_msg_init(&cmd, NUKI_CMD_REQUEST_AUTHORIZATION_ENTRIES, NUKI_VARIANT_DEFAULT);
                cmd.request_authorization_entries.count = 10;
                cmd.n_optional = 0;
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
                x = find_reply(rep, n, NUKI_CMD_AUTHORIZATION_ENTRY_COUNT);
                {
                        const NukiMsg *first = NULL;
                        for (size_t j = 0; j < n && !first; j++)
                                if (rep[j].command == NUKI_CMD_AUTHORIZATION_ENTRY)
                                        first = &rep[j];
                        CHECK(p,
                              r == 0 && x && x->authorization_entry_count.count == 2 && first &&
                                              first->authorization_entry.auth_id == res.auth_id,
                              "list authorizations: the caller's own first");
                }
                nuki_msg_init(&cmd, NUKI_CMD_REMOVE_AUTHORIZATION_ENTRY, NUKI_VARIANT_DEFAULT);
                cmd.remove_authorization_entry.auth_id = guest;
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
                CHECK(p, r == 0 && ctl_uint(p, "front", "Authorizations") == 1, "remove it");
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
                CHECK(p, r == -EREMOTEIO && nuki_session_lock_error(&s) == NUKI_K_ERROR_INVALID_AUTH_ID,
                      "remove it again: K_ERROR_INVALID_AUTH_ID");
        }

        /* wrong PIN, stale nonce, unknown authorization */
        s.security_pin = 4321;
        nuki_msg_init(&cmd, NUKI_CMD_VERIFY_SECURITY_PIN, NUKI_VARIANT_DEFAULT);
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == -EREMOTEIO && nuki_session_lock_error(&s) == NUKI_K_ERROR_BAD_PIN,
              "wrong PIN: K_ERROR_BAD_PIN");
        s.security_pin = 1234;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == 0, "right PIN: COMPLETE");

        /* Time Control: a scheduled lock at the next minute runs with trigger automatic */
        {
                NukiMsg st;
                r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, NULL);
                x = find_reply(rep, n, NUKI_CMD_KEYTURNER_STATES);
                CHECK(p, r == 0 && x, "Keyturner States (the lock's clock)");
                st = x ? *x : rep[0];
                nuki_msg_init(&cmd, NUKI_CMD_ADD_TIME_CONTROL_ENTRY, NUKI_VARIANT_DEFAULT);
                cmd.add_time_control_entry.time.hour = st.keyturner_states.current_time.hour;
                cmd.add_time_control_entry.time.minute =
                                (uint8_t) (st.keyturner_states.current_time.minute + 2);
                if (cmd.add_time_control_entry.time.minute > 59) {
                        cmd.add_time_control_entry.time.minute -= 60;
                        cmd.add_time_control_entry.time.hour =
                                        (uint8_t) ((cmd.add_time_control_entry.time.hour + 1) % 24);
                }
                cmd.add_time_control_entry.lock_action = NUKI_LOCK_ACTION_LOCK;
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
                x = find_reply(rep, n, NUKI_CMD_TIME_CONTROL_ENTRY_ID);
                CHECK(p, r == 0 && x, "Add Time Control Entry");
                nuki_msg_init(&cmd, NUKI_CMD_REQUEST_TIME_CONTROL_ENTRIES, NUKI_VARIANT_DEFAULT);
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
                x = find_reply(rep, n, NUKI_CMD_TIME_CONTROL_ENTRY);
                CHECK(p, r == 0 && x && x->time_control_entry.lock_action == NUKI_LOCK_ACTION_LOCK,
                      "Request Time Control Entries");
                CHECK(p, wait_ctl(p, "front", "LockState", "locked", T(200 * SEC)),
                      "the scheduled action runs (simulated minutes later)");
                r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, NULL);
                x = find_reply(rep, n, NUKI_CMD_KEYTURNER_STATES);
                CHECK(p,
                      r == 0 && x && x->keyturner_states.last_lock_action_trigger == NUKI_TRIGGER_AUTOMATIC,
                      "with trigger automatic");
                nuki_msg_init(&cmd, NUKI_CMD_REMOVE_TIME_CONTROL_ENTRY, NUKI_VARIANT_DEFAULT);
                cmd.remove_time_control_entry.entry_id = 1;
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
                CHECK(p, r == 0, "Remove Time Control Entry");
        }

        /* the remaining simple commands */
        nuki_msg_init(&cmd, NUKI_CMD_UPDATE_TIME, NUKI_VARIANT_DEFAULT);
        cmd.update_time.time = (NukiTime){ 2030, 1, 2, 3, 4, 5 };
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        if (r == 0)
                r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_KEYTURNER_STATES);
        CHECK(p, r == 0 && x && x->keyturner_states.current_time.year == 2030,
              "Update Time moves the lock's clock");
        nuki_msg_init(&cmd, NUKI_CMD_ENABLE_LOGGING, NUKI_VARIANT_DEFAULT);
        cmd.enable_logging.enabled = true;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == 0, "Enable Logging");
        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_CALIBRATION, NUKI_VARIANT_DEFAULT);
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == 0 && ctl_is(p, "front", "LockState", "locked"), "calibration");
        nuki_msg_init(&cmd, NUKI_CMD_KEYPAD_ACTION, NUKI_VARIANT_DEFAULT);
        cmd.keypad_action.source = 0;
        cmd.keypad_action.action = 1;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == 0 && ctl_is(p, "front", "LockState", "unlocked"), "Keypad Action (arrow key unlock)");
        nuki_msg_init(&cmd, NUKI_CMD_SET_SECURITY_PIN, NUKI_VARIANT_DEFAULT);
        cmd.set_security_pin.new_pin = 4711;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        s.security_pin = 4711;
        nuki_msg_init(&cmd, NUKI_CMD_VERIFY_SECURITY_PIN, NUKI_VARIANT_DEFAULT);
        if (r == 0)
                r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        CHECK(p, r == 0 && ctl_uint(p, "front", "SecurityPin") == 4711,
              "Set Security PIN, then the new one works");
        r = lock_action(&k, &s, NUKI_LOCK_ACTION_LOCK, rep, 64, &n);
        {
                /* replay the Lock Action frame: its challenge is used up */
                uint8_t frame[NUKI_FRAME_MAX];
                size_t len = k.last_write_len;
                Msg m;
                NukiFrame f;
                bool got = false;

                memcpy(frame, k.last_write, len);
                (void) link_write(&k, CH_USDIO, frame, len);
                while (link_next(&k, &m, T(2 * SEC)))
                        if (m.ch == CH_USDIO &&
                            nuki_frame_decode_encrypted(res.shared_key, NULL, m.data, m.len, &f) >= 0 &&
                            f.command == NUKI_CMD_ERROR_REPORT) {
                                got = f.payload[0] == NUKI_K_ERROR_BAD_NONCE;
                                break;
                        }
                CHECK(p, r == 0 && got, "a replayed command (stale nonce): K_ERROR_BAD_NONCE");
        }
        probe_ctl(p, "front", "RevokeAuthorizations", NULL);
        r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, &pe);
        CHECK(p, r == -EREMOTEIO && pe == NUKI_K_ERROR_NOT_AUTHORIZED,
              "revoked: unencrypted K_ERROR_NOT_AUTHORIZED on the Keyturner GDIO");
        {
                size_t mk = probe_mark(p);
                probe_ctl(p, "front", "SetPairingMode", "b", 1);
                r = pair_bridge(&k, &res, NUKI_ID_TYPE_BRIDGE, 42);
                nuki_session_wipe(&s);
                nuki_session_init(&s, res.shared_key, res.auth_id, 4711, false);
                nuki_msg_init(&cmd, NUKI_CMD_REQUEST_REBOOT, NUKI_VARIANT_DEFAULT);
                CHECK(p, r == 1, "re-paired after the revocation (%d)", r);
                if (r == 1)
                        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
                CHECK(p, r == 0, "Request Reboot: COMPLETE (%d)", r);
                CHECK(p,
                      probe_wait2(p, mk, "Connected=b:false", "ServicesResolved=b:false", T(2 * SEC)) >= 0,
                      "then the lock drops the link");
        }
        nuki_session_wipe(&s);
        link_close(&k);
}

/* ---- firmware model ---- */

void sim_proto_test_model(Probe *p)
{
        NukiMsg rep[64], cmd;
        const NukiMsg *x;
        NukiPairing res;
        NukiSession s;
        size_t n;
        Link k;
        unsigned mv0, mv1;
        int r;

        CHECK(p, link_open(p, &k, "54:D2:72:00:00:01"), "connect front");
        r = pair_bridge(&k, &res, NUKI_ID_TYPE_BRIDGE, 42);
        if (!CHECK(p, r == 1, "paired"))
                return;
        nuki_session_init(&s, res.shared_key, res.auth_id, 1234, false);

        mv0 = ctl_uint(p, "front", "BatteryMillivolts");
        lock_action(&k, &s, NUKI_LOCK_ACTION_UNLOCK, rep, 64, &n);
        lock_action(&k, &s, NUKI_LOCK_ACTION_LOCK, rep, 64, &n);
        mv1 = ctl_uint(p, "front", "BatteryMillivolts");
        CHECK(p, mv1 < mv0, "the battery drains with motor actions (%u -> %u mV)", mv0, mv1);

        probe_ctl(p, "front", "InjectJam", "u", 1);
        r = lock_action(&k, &s, NUKI_LOCK_ACTION_UNLOCK, rep, 64, &n);
        CHECK(p,
              r == -EREMOTEIO && nuki_session_lock_error(&s) == NUKI_K_ERROR_MOTOR_BLOCKED &&
                              ctl_is(p, "front", "LockState", "motor-blocked"),
              "an injected jam: K_ERROR_MOTOR_BLOCKED, lock state motor blocked");

        probe_ctl(p, "front", "ManualAction", "s", "lock");
        CHECK(p, ctl_is(p, "front", "LockState", "locked"),
              "manual action (key, thumb-turn) changes the state");

        nuki_msg_init(&cmd, NUKI_CMD_ADD_KEYPAD_CODE, NUKI_VARIANT_DEFAULT);
        cmd.add_keypad_code.code = 234567;
        snprintf(cmd.add_keypad_code.name, sizeof(cmd.add_keypad_code.name), "Kid");
        do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        r = probe_ctl(p, "front", "KeypadEntry", "u", 234567);
        CHECK(p, r == 0 && wait_ctl(p, "front", "LockState", "unlocked", T(5 * SEC)),
              "keypad entry unlocks");
        probe_ctl(p, "front", "KeypadEntry", "u", 999999);
        probe_ctl(p, "front", "SetDoor", "s", "opened");
        CHECK(p, ctl_is(p, "front", "Door", "opened"), "door sensor");

        nuki_msg_init(&cmd, NUKI_CMD_REQUEST_LOG_ENTRIES, NUKI_VARIANT_DEFAULT);
        cmd.request_log_entries.count = 6;
        cmd.request_log_entries.sort_order = 1;
        r = do_cmd(&k, &s, &cmd, 0, rep, 64, &n, NULL);
        {
                const NukiMsg *e[6] = { 0 };
                size_t ne = 0;
                for (size_t j = 0; j < n && ne < 6; j++)
                        if (rep[j].command == NUKI_CMD_LOG_ENTRY)
                                e[ne++] = &rep[j];
                /* newest first: door, bad code, keypad unlock, manual lock, jam */
                CHECK(p, r == 0 && ne >= 5, "log read (%zu entries)", ne);
                if (ne >= 5) {
                        CHECK(p, e[0]->log_entry.type == 6 && e[0]->log_entry.data.data[0] == 0,
                              "door opened logged");
                        CHECK(p, e[1]->log_entry.type == 5 && e[1]->log_entry.data.data[2] == 0xE0,
                              "wrong keypad code logged (invalid code)");
                        CHECK(p,
                              e[2]->log_entry.type == 5 && e[2]->log_entry.data.data[2] == 0 &&
                                              e[2]->log_entry.data.data[3] == 1,
                              "keypad unlock logged with the code id");
                        CHECK(p,
                              e[3]->log_entry.type == 2 &&
                                              e[3]->log_entry.data.data[1] == NUKI_TRIGGER_MANUAL,
                              "manual lock logged with trigger manual");
                        CHECK(p,
                              e[4]->log_entry.type == 2 &&
                                              e[4]->log_entry.data.data[3] == NUKI_COMPLETION_MOTOR_BLOCKED,
                              "the jam logged with completion motor blocked");
                }
        }
        r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_KEYTURNER_STATES);
        CHECK(p,
              r == 0 && x && x->keyturner_states.door_sensor_state == 0x03 &&
                              x->keyturner_states.last_lock_action_trigger == 0x00,
              "Keyturner States report door and last action");

        probe_ctl(p, "front", "SetBattery", "y", 15);
        r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, NULL);
        x = find_reply(rep, n, NUKI_CMD_KEYTURNER_STATES);
        CHECK(p,
              r == 0 && x && nuki_battery_critical(x->keyturner_states.battery) &&
                              nuki_battery_percent(x->keyturner_states.battery) == 14,
              "battery critical below 20 %%");

        probe_ctl(p, "front", "FactoryReset", NULL);
        CHECK(p,
              ctl_uint(p, "front", "Authorizations") == 0 && ctl_uint(p, "front", "KeypadCodes") == 0 &&
                              ctl_uint(p, "front", "LogEntries") == 0 &&
                              ctl_uint(p, "front", "NukiState") == 0,
              "factory reset wipes authorizations, codes and log; uninitialized");
        CHECK(p, probe_wait2(p, 0, "Connected=b:false", "ServicesResolved=b:false", T(2 * SEC)) >= 0,
              "the reset drops the link");
        {
                size_t m = probe_mark(p);
                (void) probe_call(p, 5 * SEC, ADAPTER, "org.bluez.Adapter1", "SetDiscoveryFilter", "a{sv}",
                                  1, "DuplicateData", "b", 1);
                (void) probe_call(p, 5 * SEC, ADAPTER, "org.bluez.Adapter1", "StopDiscovery", NULL);
                (void) probe_call(p, 5 * SEC, ADAPTER, "org.bluez.Adapter1", "StartDiscovery", NULL);
                r = probe_wait(p, m, "a92ee000-5501-11e4-916c-0800200c9a66", T(20 * SEC));
                CHECK(p, r >= 0, "an uninitialized lock advertises the initialization service");
                char v[64];
                (void) probe_get(p, k.dev, IF_DEV, "ServiceData", v, sizeof(v));
                CHECK(p, strstr(v, "a92ee100") != NULL, "and is in pairing mode");
        }
        nuki_session_wipe(&s);
        p->value_cb = NULL;
}

void sim_proto_test_advert_bit(Probe *p)
{
        NukiMsg rep[64];
        NukiPairing app, bridge;
        NukiSession s;
        size_t n, m;
        Link k;
        Msg msg;
        bool f1 = false;
        int r;

        /* an App pairing never clears the bit */
        CHECK(p, link_open(p, &k, "54:D2:72:00:00:01"), "connect front");
        r = pair_bridge(&k, &app, NUKI_ID_TYPE_APP, 7);
        CHECK(p, r == 1, "paired as an app");
        probe_ctl(p, "front", "ManualAction", "s", "unlock");
        CHECK(p, ctl_is(p, "front", "StateChanged", "true"), "a state change sets the advert bit");
        nuki_session_init(&s, app.shared_key, app.auth_id, 1234, false);
        r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, NULL);
        CHECK(p, r == 0 && ctl_is(p, "front", "StateChanged", "true"),
              "an App reading the states leaves it set");
        nuki_session_wipe(&s);
        link_close(&k);

        /* a Bridge clears it, and hears 0xF1 while connected */
        probe_ctl(p, "back", "SetPairingMode", "b", 1);
        CHECK(p, link_open(p, &k, "54:D2:72:00:00:02"), "connect back");
        r = pair_bridge(&k, &bridge, NUKI_ID_TYPE_BRIDGE, 42);
        CHECK(p, r == 1, "paired as a bridge");
        probe_ctl(p, "back", "ManualAction", "s", "unlock");
        while (link_next(&k, &msg, T(SEC)))
                if (msg.ch == CH_GDIO && msg.len == 5 && memcmp(msg.data, "\x0e\x00\xf1\xa3\x28", 5) == 0)
                        f1 = true;
        CHECK(p, f1, "a connected bridge gets the unencrypted Status 0xF1 on the Keyturner GDIO");
        nuki_session_init(&s, bridge.shared_key, bridge.auth_id, 1234, false);
        r = do_cmd(&k, &s, NULL, NUKI_CMD_KEYTURNER_STATES, rep, 64, &n, NULL);
        CHECK(p, r == 0 && ctl_is(p, "back", "StateChanged", "false"),
              "a Bridge reading the states clears it");
        nuki_session_wipe(&s);
        link_close(&k);
        m = probe_mark(p);
        (void) probe_call(p, 5 * SEC, ADAPTER, "org.bluez.Adapter1", "SetDiscoveryFilter", "a{sv}", 1,
                          "DuplicateData", "b", 1);
        (void) probe_call(p, 5 * SEC, ADAPTER, "org.bluez.Adapter1", "StopDiscovery", NULL);
        (void) probe_call(p, 5 * SEC, ADAPTER, "org.bluez.Adapter1", "StartDiscovery", NULL);
        CHECK(p, probe_wait(p, m, "0215a92ee200550111e4916c0800200c9a662a000002c8", T(3 * SEC)) >= 0,
              "the beacon's TX-power byte is even again (0xC8)");
        CHECK(p, probe_wait(p, m, "0215a92ee200550111e4916c0800200c9a662a000001c5", T(3 * SEC)) >= 0,
              "the app-paired lock still advertises news (0xC5)");
        p->value_cb = NULL;
}

void sim_proto_test_ultra(Probe *p)
{
        NukiPairParams pp;
        NukiPairing res;
        NukiSession s;
        NukiMsg rep[16], cmd;
        size_t n;
        Link k;
        int r, e;

        CHECK(p, link_open(p, &k, "54:D2:72:00:00:05"), "connect the Ultra");
        nuki_pair_params_init(&pp);
        pp.security_pin = 111111;
        r = do_pair(&k, &pp, &res, &e);
        CHECK(p, r < 0 && e == NUKI_K_ERROR_BAD_PIN,
              "Ultra pairing with a wrong PIN: K_ERROR_BAD_PIN (%d, 0x%02x)", r, (unsigned) e);
        pp.security_pin = 123456;
        r = do_pair(&k, &pp, &res, &e);
        CHECK(p, r == 1 && res.ultra, "Ultra pairing (Authorization Info, encrypted Authorization Data)");
        if (r != 1)
                return;
        nuki_session_init(&s, res.shared_key, res.auth_id, 123456, true);
        nuki_msg_init(&cmd, NUKI_CMD_VERIFY_SECURITY_PIN, NUKI_VARIANT_DEFAULT);
        r = do_cmd(&k, &s, &cmd, 0, rep, 16, &n, NULL);
        CHECK(p, r == 0, "a 6-digit PIN as uint32 is accepted");
        r = lock_action(&k, &s, NUKI_LOCK_ACTION_UNLOCK, rep, 16, &n);
        CHECK(p, r == 0 && ctl_is(p, "ultra", "LockState", "unlocked"), "Ultra unlocks");
        nuki_session_wipe(&s);
        link_close(&k);
}
