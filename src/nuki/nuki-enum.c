/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Names of the Nuki enumerations, snake_case, as printed by `lockhubctl decode` and used
 * in MQTT payloads. Values and meanings from the fact sheet; where sources disagree the
 * comment says which one a name follows.
 */

#include <errno.h>
#include <string.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-cmd.h"

static const NukiEnumValue nuki_states[] = {
        { 0x00, "uninitialized" },    { 0x01, "pairing_mode" },
        { 0x02, "door_mode" },        { 0x03, "continuous_mode" }, /* Opener only [ESP][PY] */
        { 0x04, "maintenance_mode" },
};

static const NukiEnumValue lock_states[] = {
        { 0x00, "uncalibrated" },     { 0x01, "locked" },        { 0x02, "unlocking" },
        { 0x03, "unlocked" },         { 0x04, "locking" },       { 0x05, "unlatched" },
        { 0x06, "unlocked_lockngo" }, { 0x07, "unlatching" },    { 0xFC, "calibration" },
        { 0xFD, "boot_run" },         { 0xFE, "motor_blocked" }, { 0xFF, "undefined" },
};

static const NukiEnumValue triggers[] = {
        { 0x00, "system" },
        { 0x01, "manual" },
        { 0x02, "button" },
        { 0x03, "automatic" },
        { 0x06, "auto_lock" },
        /* [ESP] only (UNSURE) */
        { 0xAB, "homekit" },
        { 0xAC, "mqtt" },
};

static const NukiEnumValue lock_actions[] = {
        { 0x01, "unlock" },
        { 0x02, "lock" },
        { 0x03, "unlatch" },
        { 0x04, "lockngo" },
        { 0x05, "lockngo_unlatch" },
        { 0x06, "full_lock" },
        /* [ESP] only: values seen in logs and states (UNSURE) */
        { 0x50, "fob_no_action" },
        { 0x5A, "button_no_action" },
        { 0x81, "fob_action_1" },
        { 0x82, "fob_action_2" },
        { 0x83, "fob_action_3" },
};

/* 0x09-0x0B and 0xE1 are V2.3.0 only. 0x0B: [ESP] says "failure", [S23] "handle not
 * lifted"; the official document wins. */
static const NukiEnumValue completion_statuses[] = {
        { 0x00, "success" },
        { 0x01, "motor_blocked" },
        { 0x02, "canceled" },
        { 0x03, "too_recent" },
        { 0x04, "busy" },
        { 0x05, "low_motor_voltage" },
        { 0x06, "clutch_failure" },
        { 0x07, "motor_power_failure" },
        { 0x08, "incomplete" },
        { 0x09, "rejected" },
        { 0x0A, "rejected_nightmode" },
        { 0x0B, "handle_not_lifted" },
        { 0xE0, "invalid_code" },
        { 0xE1, "invalid_fingerprint" },
        { 0xFE, "other_error" },
        { 0xFF, "unknown" },
};

/* Two generations, one byte: SL 1.0/2.0 use 0x01, 0x04 and 0x05; SL 3.0 to Ultra use
 * 0x10, 0xF0 and 0xFF ([S23][ESP][PY][CLI]). The values do not collide, so one table
 * names both. */
static const NukiEnumValue door_sensor_states[] = {
        { 0x00, "unavailable" },  { 0x01, "deactivated" },        { 0x02, "door_closed" },
        { 0x03, "door_opened" },  { 0x04, "door_state_unknown" }, { 0x05, "calibrating" },
        { 0x10, "uncalibrated" }, { 0xF0, "tampered" },           { 0xFF, "unknown" },
};

/* 0xF1 has no name on purpose: the issue asks for the hex value there. */
static const NukiEnumValue statuses[] = {
        { 0x00, "complete" },
        { 0x01, "accepted" },
};

static const NukiEnumValue errors[] = {
        { 0x10, "p_error_not_pairing" },
        { 0x11, "p_error_bad_authenticator" },
        { 0x12, "p_error_bad_parameter" },
        { 0x13, "p_error_max_user" },
        { 0x20, "k_error_not_authorized" },
        { 0x21, "k_error_bad_pin" },
        { 0x22, "k_error_bad_nonce" },
        { 0x23, "k_error_bad_parameter" },
        { 0x24, "k_error_invalid_auth_id" },
        { 0x25, "k_error_disabled" },
        { 0x26, "k_error_remote_not_allowed" },
        { 0x27, "k_error_time_not_allowed" },
        { 0x28, "k_error_too_many_pin_attempts" },
        { 0x29, "k_error_too_many_entries" },
        { 0x2A, "k_error_code_already_exists" },
        { 0x2B, "k_error_code_invalid" },
        { 0x2C, "k_error_code_invalid_timeout_1" },
        { 0x2D, "k_error_code_invalid_timeout_2" },
        { 0x2E, "k_error_code_invalid_timeout_3" },
        { 0x40, "k_error_auto_unlock_too_recent" },
        { 0x41, "k_error_position_unknown" },
        { 0x42, "k_error_motor_blocked" },
        { 0x43, "k_error_clutch_failure" },
        { 0x44, "k_error_motor_timeout" },
        { 0x45, "k_error_busy" },
        { 0x46, "k_error_canceled" },
        { 0x47, "k_error_not_calibrated" },
        { 0x48, "k_error_motor_position_limit" },
        { 0x49, "k_error_motor_low_voltage" },
        { 0x4A, "k_error_motor_power_failure" },
        { 0x4B, "k_error_clutch_power_failure" },
        { 0x4C, "k_error_voltage_too_low" },
        { 0x4D, "k_error_firmware_update_needed" },
        { 0xFD, "error_bad_crc" },
        { 0xFE, "error_bad_length" },
        { 0xFF, "error_unknown" },
};

static const NukiEnumValue id_types[] = {
        { 0, "app" },
        { 1, "bridge" },
        { 2, "fob" },
        { 3, "keypad" },
        /* [S23] lists these as filter values for Request Authorization Entries */
        { 4, "door_sensor" },
        { 5, "keypad_2" },
};

static const NukiEnumValue keypad_sources[] = {
        { 0, "arrow_key" }, { 1, "code" }, { 2, "fingerprint" }, /* [ESP] only */
};

static const NukiEnumValue keypad_actions[] = {
        { 0, "intelligent" }, { 1, "unlock" }, { 2, "lock" }, { 3, "unlatch" }, { 4, "lockngo" },
};

static const NukiEnumValue button_actions[] = {
        { 0, "none" },    { 1, "intelligent" }, { 2, "unlock" },      { 3, "lock" },
        { 4, "unlatch" }, { 5, "lockngo" },     { 6, "show_status" },
};

static const NukiEnumValue fob_actions[] = {
        { 0, "none" }, { 1, "unlock" }, { 2, "lock" }, { 3, "lockngo" }, { 4, "intelligent" },
};

static const NukiEnumValue battery_types[] = {
        { 0, "alkali" },
        { 1, "accumulators" },
        { 2, "lithium" },
};

static const NukiEnumValue advertising_modes[] = {
        { 0, "automatic" },
        { 1, "normal" },
        { 2, "slow" },
        { 3, "slowest" },
};

static const NukiEnumValue dst_modes[] = {
        { 0, "off" },
        { 1, "european" },
};

static const NukiEnumValue homekit_statuses[] = {
        { 0, "not_available" },
        { 1, "disabled" },
        { 2, "enabled" },
        { 3, "enabled_paired" },
};

/* 0x04 and 0x05 from [S23]; 0x00, 0x02 and 0x03 from [PY]. */
static const NukiEnumValue device_types[] = {
        { 0, "smartlock_1_2" }, { 2, "opener" },          { 3, "smartdoor" },
        { 4, "smartlock_3_4" }, { 5, "smartlock_ultra" },
};

static const NukiEnumValue matter_statuses[] = {
        { 0, "not_available" }, { 1, "disabled" },       { 2, "disabled_with_data" },
        { 3, "enabled" },       { 4, "enabled_paired" },
};

static const NukiEnumValue log_types[] = {
        { 1, "logging" },
        { 2, "lock_action" },
        { 3, "calibration" },
        { 4, "initialization_run" },
        { 5, "keypad_action" },
        { 6, "door_sensor" },
        { 7, "door_sensor_logging" },
};

/* 3 (tampered) is V2.3.0 only */
static const NukiEnumValue log_door_sensor[] = {
        { 0, "opened" },
        { 1, "closed" },
        { 2, "jammed" },
        { 3, "tampered" },
};

static const NukiEnumValue sort_orders[] = {
        { 0, "ascending" },
        { 1, "descending" },
};

/* Ultra only */
static const NukiEnumValue motor_speeds[] = {
        { 0, "standard" },
        { 1, "insane" },
        { 2, "gentle" },
};

static const struct {
        const char *name;
        const NukiEnumValue *values;
        size_t n;
} tables[_NUKI_ENUM_MAX] = {
#define T(k, n, t) [NUKI_ENUM_##k] = { n, t, ELEMENTSOF(t) }
        [NUKI_ENUM_NONE] = { "none", NULL, 0 },
        T(NUKI_STATE, "nuki_state", nuki_states),
        T(LOCK_STATE, "lock_state", lock_states),
        T(TRIGGER, "trigger", triggers),
        T(LOCK_ACTION, "lock_action", lock_actions),
        T(COMPLETION_STATUS, "completion_status", completion_statuses),
        T(DOOR_SENSOR_STATE, "door_sensor_state", door_sensor_states),
        T(STATUS, "status", statuses),
        T(ERROR, "error", errors),
        T(ID_TYPE, "id_type", id_types),
        T(KEYPAD_SOURCE, "keypad_source", keypad_sources),
        T(KEYPAD_ACTION, "keypad_action", keypad_actions),
        T(BUTTON_ACTION, "button_action", button_actions),
        T(FOB_ACTION, "fob_action", fob_actions),
        T(BATTERY_TYPE, "battery_type", battery_types),
        T(ADVERTISING_MODE, "advertising_mode", advertising_modes),
        T(DST_MODE, "dst_mode", dst_modes),
        T(HOMEKIT_STATUS, "homekit_status", homekit_statuses),
        T(DEVICE_TYPE, "device_type", device_types),
        T(MATTER_STATUS, "matter_status", matter_statuses),
        T(LOG_TYPE, "log_type", log_types),
        T(LOG_DOOR_SENSOR, "log_door_sensor", log_door_sensor),
        T(SORT_ORDER, "sort_order", sort_orders),
        T(MOTOR_SPEED, "motor_speed", motor_speeds),
#undef T
};

size_t nuki_enum_table(NukiEnumKind kind, const NukiEnumValue **ret)
{
        if ((unsigned) kind >= _NUKI_ENUM_MAX) {
                *ret = NULL;
                return 0;
        }
        *ret = tables[kind].values;
        return tables[kind].n;
}

const char *nuki_enum_kind_name(NukiEnumKind kind)
{
        if ((unsigned) kind >= _NUKI_ENUM_MAX)
                return NULL;
        return tables[kind].name;
}

const char *nuki_enum_to_string(NukiEnumKind kind, unsigned value)
{
        const NukiEnumValue *t;
        size_t n = nuki_enum_table(kind, &t);

        for (size_t i = 0; i < n; i++)
                if (t[i].value == value)
                        return t[i].name;
        return NULL;
}

int nuki_enum_from_string(NukiEnumKind kind, const char *name)
{
        const NukiEnumValue *t;
        size_t n = nuki_enum_table(kind, &t);

        if (!name)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (streq(t[i].name, name))
                        return (int) t[i].value;
        return -EINVAL;
}
