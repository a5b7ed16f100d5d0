/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The simulated Nuki lock: a model of the firmware, not canned replies.
 *
 * The BlueZ side talks to it through a narrow interface: connection up/down, CCCD
 * enable/disable, a complete GATT write (after Write Long reassembly) or read on a
 * characteristic id, and the lock answers with indications through
 * sim_device_indicate() on the device it is connected to. Nothing here knows D-Bus.
 *
 * The lock side of the Nuki protocol (frames, crypto, pairing, command handling) is in
 * sim-lock-proto.c on top of src/nuki/; this file holds the state: motor, battery,
 * door, stores for authorizations, keypad codes and the activity log, configuration,
 * radio parameters and counters, and the state-changed advert bit.
 */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "sim.h"

typedef enum SimGen {
        SIM_GEN_1 = 1,
        SIM_GEN_2 = 2,
        SIM_GEN_3 = 3,
        SIM_GEN_4 = 4,
        SIM_GEN_ULTRA = 5,
} SimGen;

/* Characteristics the lock serves (index into its GATT table). */
typedef enum SimChr {
        SIM_CHR_SERVICE_CHANGED,
        SIM_CHR_DIS_MANUFACTURER,
        SIM_CHR_DIS_MODEL,
        SIM_CHR_DIS_FIRMWARE,
        SIM_CHR_PAIRING,
        SIM_CHR_GDIO,
        SIM_CHR_USDIO,
        SIM_CHR_COUNT,
} SimChr;

/* GATT characteristic flags (BlueZ names) */
#define SIM_F_READ     (1U << 0)
#define SIM_F_WRITE    (1U << 1)
#define SIM_F_WRITE_NR (1U << 2)
#define SIM_F_NOTIFY   (1U << 3)
#define SIM_F_INDICATE (1U << 4)

typedef struct SimGattChrDef {
        SimChr id;
        const char *uuid;
        unsigned flags;
} SimGattChrDef;

typedef struct SimGattSvcDef {
        const char *uuid;
        uint16_t handle;
        const SimGattChrDef *chrs[4];
        size_t n_chrs;
} SimGattSvcDef;

#define SIM_MAX_AUTHS        256
#define SIM_MAX_CODES        200
#define SIM_MAX_LOG          1000
#define SIM_MAX_TIME_CONTROL 20

/* a scheduled lock action (Time Control entry), run in the lock's local time */
typedef struct SimTimeControl {
        uint8_t id;
        bool enabled;
        uint8_t weekdays; /* bit 6 Mon .. bit 0 Sun; 0 = every day */
        uint8_t hour, minute;
        uint8_t action;
} SimTimeControl;

typedef struct SimAuth {
        uint32_t id;
        uint8_t type; /* 0 app, 1 bridge, 2 fob, 3 keypad */
        uint32_t app_id;
        char name[33];
        uint8_t key[32];
        bool enabled, remote_allowed, time_limited;
        uint8_t allowed_from[7], allowed_until[7], weekdays, from_time[2], until_time[2];
        int64_t created, last_active;
        uint16_t lock_count;
} SimAuth;

typedef struct SimCode {
        uint16_t id;
        uint32_t code;
        char name[21];
        bool enabled, time_limited;
        uint8_t allowed_from[7], allowed_until[7], weekdays, from_time[2], until_time[2];
        int64_t created, last_active;
        uint16_t lock_count;
} SimCode;

typedef struct SimLogEntry {
        uint32_t index;
        int64_t time;
        uint32_t auth_id;
        char name[33];
        uint8_t type;
        uint8_t data[5];
        uint8_t len;
} SimLogEntry;

/* Lock states (Keyturner States byte 1) */
enum {
        SIM_LS_UNCALIBRATED = 0x00,
        SIM_LS_LOCKED = 0x01,
        SIM_LS_UNLOCKING = 0x02,
        SIM_LS_UNLOCKED = 0x03,
        SIM_LS_LOCKING = 0x04,
        SIM_LS_UNLATCHED = 0x05,
        SIM_LS_UNLOCKED_LNG = 0x06,
        SIM_LS_UNLATCHING = 0x07,
        SIM_LS_CALIBRATION = 0xFC,
        SIM_LS_BOOT_RUN = 0xFD,
        SIM_LS_MOTOR_BLOCKED = 0xFE,
        SIM_LS_UNDEFINED = 0xFF,
};

/* Door sensor states, SL 3.0 and later numbering (SL 1/2 map on output) */
enum {
        SIM_DOOR_UNAVAILABLE = 0x00,
        SIM_DOOR_DEACTIVATED = 0x01,
        SIM_DOOR_CLOSED = 0x02,
        SIM_DOOR_OPENED = 0x03,
        SIM_DOOR_UNKNOWN = 0x04,
        SIM_DOOR_TAMPERED = 0xF0,
};

typedef struct SimLockConfig {
        char name[33];
        float latitude, longitude;
        uint8_t auto_unlatch, pairing_enabled, button_enabled, led_enabled, led_brightness;
        int16_t tz_offset;
        uint8_t dst_mode, has_fob, fob_action[3], single_lock, advertising_mode, has_keypad;
        uint16_t timezone_id;
} SimLockConfig;

typedef struct SimLockAdvConfig {
        uint16_t total_degrees;
        int16_t unlocked_offset, locked_offset, single_locked_offset, unlocked_to_locked_offset;
        uint8_t lockngo_timeout, single_button_action, double_button_action, detached_cylinder;
        uint8_t battery_type, auto_battery_type_detection, unlatch_duration;
        uint16_t auto_lock_timeout;
        uint8_t auto_unlock_disabled, nightmode_enabled, nightmode_start[2], nightmode_end[2];
        uint8_t nightmode_auto_lock, nightmode_auto_unlock_disabled, nightmode_immediate_lock;
        uint8_t auto_lock_enabled, immediate_auto_lock, auto_update;
} SimLockAdvConfig;

typedef struct SimLockSession SimLockSession; /* sim-lock-proto.c: per connection */

struct SimLock {
        Sim *sim;
        char *name; /* control object name */
        char address[18];
        SimGen gen;
        uint32_t nuki_id;
        uint8_t firmware[3];
        uint8_t hw_rev[2];
        uint8_t uuid[16];
        uint8_t public_key[32], secret_key[32];

        /* GATT */
        SimGattSvcDef services[5];
        size_t n_services;
        unsigned gatt_generation;
        bool cccd[SIM_CHR_COUNT];
        uint16_t mtu;

        /* radio */
        int16_t rssi;
        double rssi_noise;
        uint64_t adv_interval; /* real usec */
        uint64_t conn_latency; /* real usec: link set-up, on top of 3 round trips */
        uint64_t rtt;          /* real usec: one ATT request/response */
        double loss;           /* per ATT exchange, 0..1: lost means link loss */
        bool in_range;
        bool non_discoverable; /* adverts without the LE General Discoverable flag */
        sd_event_source *adv_timer;
        SimDevice *link; /* the device (on some adapter) connected to us */

        /* firmware state */
        uint8_t nuki_state; /* 0 uninitialized, 1 pairing, 2 door mode */
        bool pairing_mode;
        uint8_t lock_state, trigger;
        uint8_t last_action, last_trigger, last_completion;
        uint8_t door;
        double battery;    /* percent, 0..100 */
        bool battery_pack; /* rechargeable pack: can be charging */
        bool charging;
        uint16_t last_drain; /* mWs of the last action */
        uint16_t lowest_mv;
        unsigned jams_pending;
        unsigned drop_on_action;     /* faults: drop the link after taking this many Lock Actions */
        unsigned drop_before_action; /* faults: lose this many Lock Actions with the link */
        uint8_t drop_then;           /* faults: done by hand as such a dropped action's motor stops */
        uint8_t then_pending;        /* ... for the action running now */
        unsigned fail_action_reply;  /* faults: carry out this many Lock Actions, fail their write's reply */
        bool fail_this_reply;        /* ... the write being handled now */
        double motor_factor;         /* faults: the motor takes this many times as long (1) */
        double drain_per_hour;       /* faults: idle drain in %/h; < 0: the normal 0.02 */
        sd_event_source *drop_timer;
        sd_event_source *calibration_timer;
        uint8_t motor_target; /* lock state after the running action */
        uint8_t motor_action; /* Lock Action code of the running action, 0 if idle */
        uint32_t motor_auth;  /* who started it, for the log */
        char motor_name[33];
        uint8_t motor_trigger;
        uint16_t motor_code_id;
        bool motor_keypad;
        sd_event_source *motor_timer;
        sd_event_source *lng_timer;
        sd_event_source *pairing_timer;
        sd_event_source *drain_timer;
        sd_event_source *reboot_timer;
        uint8_t config_update_count;
        bool state_changed; /* advert bit 0 of the TX-power byte */
        uint32_t security_pin;
        unsigned pin_failures;     /* wrong PINs in a row */
        int64_t pin_lockout_until; /* sim_lock_time(): locked out until then, after too many */
        int64_t clock_offset;      /* seconds added to the simulated wall clock */
        bool logging_enabled;
        unsigned max_auths;
        int ultra_reply; /* NukiUltraReply */
        SimLockConfig cfg;
        SimLockAdvConfig adv;
        uint16_t openings, closings;

        SimAuth auths[SIM_MAX_AUTHS];
        size_t n_auths;
        uint32_t next_auth_id;
        SimCode codes[SIM_MAX_CODES];
        size_t n_codes;
        uint16_t next_code_id;
        SimTimeControl tc[SIM_MAX_TIME_CONTROL];
        size_t n_tc;
        uint8_t next_tc_id;
        sd_event_source *tc_timer;
        int64_t tc_last_minute;
        SimLogEntry log[SIM_MAX_LOG];
        size_t n_log;
        uint32_t next_log_index;

        SimLockSession *session;
        /* injected ATT errors for the next writes on this lock */
        uint8_t att_error;
        unsigned att_error_count;

        /* counters */
        uint32_t n_connections, n_gatt_writes, n_indications, n_adverts, n_actions;
        uint32_t n_calibrations;
        uint32_t n_pin_failures; /* commands refused for a wrong security PIN */
};

/* what the lock config in a scenario says */
typedef struct SimLockSpec {
        char name[32];
        char address[18];
        SimGen gen;
        uint32_t nuki_id;
        char firmware[16];
        double battery;
        int16_t rssi;
        bool pairing_mode;
        bool uninitialized;
        uint64_t adv_interval_ms;
        uint32_t security_pin;
        /* pre-existing bridge authorization (paired = yes) */
        bool paired;
        uint32_t auth_id;
        uint8_t auth_key[32];
        bool known; /* bluetoothd already has the device stored */
        char adapter[16];
        unsigned max_auths;
        int ultra_reply; /* NukiUltraReply: the format of the Ultra Authorization-ID reply */
} SimLockSpec;

void sim_lock_spec_default(SimLockSpec *s, const char *name, unsigned n);
int sim_lock_new(Sim *sim, const SimLockSpec *spec, SimLock **ret);
SimLock *sim_lock_free(SimLock *l);
const char *sim_gen_to_string(SimGen g);
int sim_gen_from_string(const char *s, SimGen *ret);
int sim_firmware_parse(const char *s, uint8_t fw[3]);

/* Link events from the BlueZ side */
void sim_lock_connected(SimLock *l, SimDevice *d);
void sim_lock_disconnected(SimLock *l);
void sim_lock_cccd(SimLock *l, SimChr chr, bool enabled);
/* returns 0 or an ATT error code */
uint8_t sim_lock_write(SimLock *l, SimChr chr, const uint8_t *data, size_t len);
uint8_t sim_lock_read(SimLock *l, SimChr chr, uint16_t offset, uint8_t *buf, size_t size, size_t *ret_len);
/* sends an indication to the connected device (if its CCCD is on) */
void sim_lock_indicate(SimLock *l, SimChr chr, const uint8_t *data, size_t len);
void sim_lock_build_advert(SimLock *l, SimAdvert *ad);
const SimGattChrDef *sim_lock_chr_def(SimChr id);

/* firmware model */
/* Starts a motor action; returns 0 or a Nuki error code (K_ERROR_*). */
uint8_t sim_lock_start_action(SimLock *l, uint8_t action, uint8_t trigger, uint32_t auth_id,
                              const char *name, bool keypad, uint16_t code_id);
void sim_lock_manual(SimLock *l, uint8_t action);
int sim_lock_keypad_entry(SimLock *l, uint32_t code);
void sim_lock_set_door(SimLock *l, uint8_t door);
void sim_lock_set_battery(SimLock *l, double percent);
void sim_lock_factory_reset(SimLock *l);
void sim_lock_revoke(SimLock *l);
void sim_lock_set_pairing_mode(SimLock *l, bool on);
/* Starts a calibration: lock state "calibration" for 4 motor actions, then locked (and
 * sim_lock_proto_action_done()). Returns 0 or a Nuki error code (busy, too low). */
uint8_t sim_lock_calibrate(SimLock *l, uint32_t auth_id, const char *name);
/* Forget the calibration (fault): lock state uncalibrated, actions refused. */
void sim_lock_uncalibrate(SimLock *l);
/* Idle drain in %/h of simulated time, in 6 s steps (fault); < 0: the normal slow drain. */
void sim_lock_set_drain_rate(SimLock *l, double percent_per_hour);
void sim_lock_reboot(SimLock *l);
/* The GATT table moves (a firmware update): handles shift, BlueZ's cache goes stale. */
void sim_lock_gatt_changed(SimLock *l);
/* Something a bridge should hear about happened: sets the advert bit, sends 0xF1. */
void sim_lock_state_changed(SimLock *l);
void sim_lock_log(SimLock *l, uint32_t auth_id, const char *name, uint8_t type, const uint8_t *data,
                  uint8_t len);
uint16_t sim_lock_battery_mv(const SimLock *l);
bool sim_lock_battery_critical(const SimLock *l);
uint8_t sim_lock_battery_byte(const SimLock *l);
uint8_t sim_lock_door_byte(const SimLock *l);
int64_t sim_lock_time(const SimLock *l);
void sim_time_encode(int64_t t, uint8_t out[7]);
SimAuth *sim_lock_find_auth(SimLock *l, uint32_t id);
int sim_lock_add_auth(SimLock *l, uint8_t type, uint32_t app_id, const char *name, const uint8_t key[32],
                      SimAuth **ret);
int sim_lock_remove_auth(SimLock *l, uint32_t id);
/* keypad code rules: 6 digits, 1-9 only, not starting with 12; 0 or a K_ERROR_* code */
uint8_t sim_code_check(const SimLock *l, uint32_t code, uint16_t except_id);
const char *sim_lock_state_to_string(uint8_t s);
const char *sim_door_to_string(uint8_t d);

/* sim-lock-proto.c */
SimLockSession *sim_lock_session_new(SimLock *l);
SimLockSession *sim_lock_session_free(SimLockSession *s);
void sim_lock_proto_write(SimLock *l, SimChr chr, const uint8_t *data, size_t len);
/* the motor finished or a state changed while a client waits for it */
void sim_lock_proto_action_done(SimLock *l, uint8_t completion, uint8_t error);
void sim_lock_proto_state_push(SimLock *l);
