/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nuki command codecs, table-driven.
 *
 * Each command is a list of NukiField in wire order: head fields, then optional ones,
 * then tail fields (nonce, PIN). The encoder walks the list and writes what is present;
 * the decoder first checks that the payload is at least head + tail long, decodes the
 * head, anchors the tail at the end, and decodes as many optional fields (or whole
 * optional groups) as fit in between. Leftover bytes are an error unless the command is
 * one that later firmware extends (NUKI_CMD_FLAG_EXTRA_OK), where they are ignored.
 *
 * Invariants (checked by the unit tests over the whole table): within a command, all
 * head fields come before all optional fields, which come before all tail fields; group
 * members are contiguous; a BLOB is the last optional field of a command without a tail.
 *
 * Layouts are from the fact sheet, section 5 (and 4.1/4.2 for pairing).
 */

#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <string.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-cmd.h"

#define FIELD(s, t, fm, ek, g, m, f)                                                                       \
        {                                                                                                  \
                .name = #f, .type = NUKI_FIELD_##t, .section = NUKI_SECTION_##s,                           \
                .format = NUKI_FORMAT_##fm, .enum_kind = NUKI_ENUM_##ek, .group = g,                       \
                .offset = offsetof(NukiMsg, m.f),                                                          \
                .size = (uint8_t) (NUKI_FIELD_##t == NUKI_FIELD_BLOB                                       \
                                                   ? NUKI_BLOB_MAX                                         \
                                                   : sizeof(((NukiMsg *) 0)->m.f) -                        \
                                                                     (NUKI_FIELD_##t == NUKI_FIELD_NAME)), \
        }

/* M names the union member of the table being written. */
#define H(t, f)      FIELD(HEAD, t, NUMBER, NONE, 0, M, f)
#define HE(f, k)     FIELD(HEAD, U8, ENUM, k, 0, M, f)
#define HF(t, f, fm) FIELD(HEAD, t, fm, NONE, 0, M, f)
#define O(t, f)      FIELD(OPTIONAL, t, NUMBER, NONE, 0, M, f)
#define OE(f, k)     FIELD(OPTIONAL, U8, ENUM, k, 0, M, f)
#define OF(t, f, fm) FIELD(OPTIONAL, t, fm, NONE, 0, M, f)
#define OG(t, f, g)  FIELD(OPTIONAL, t, NUMBER, NONE, g, M, f)
#define F_NONCE      FIELD(TAIL, BYTES, NUMBER, NONE, 0, M, nonce)
#define F_PIN        FIELD(TAIL, PIN, NUMBER, NONE, 0, M, pin)

#define TIME_WINDOW_HEAD                                                                                 \
        H(TIME, allowed_from), H(TIME, allowed_until), HF(U8, weekdays, HEX), H(TIME_OF_DAY, from_time), \
                        H(TIME_OF_DAY, until_time)
#define TIME_WINDOW_OPTIONAL                                                                           \
        OG(TIME, allowed_from, 1), OG(TIME, allowed_until, 1),                                         \
                        FIELD(OPTIONAL, U8, HEX, NONE, 1, M, weekdays), OG(TIME_OF_DAY, from_time, 1), \
                        OG(TIME_OF_DAY, until_time, 1)

#define M request_data
static const NukiField f_request_data[] = { HF(U16, command, COMMAND), O(BLOB, extra) };
#undef M
#define M public_key
static const NukiField f_public_key[] = { H(BYTES, key) };
#undef M
#define M challenge
static const NukiField f_challenge[] = { H(BYTES, nonce) };
#undef M
#define M authorization_authenticator
static const NukiField f_authorization_authenticator[] = { H(BYTES, authenticator) };
#undef M
#define M authorization_data
static const NukiField f_authorization_data[] = {
        H(BYTES, authenticator), HE(id_type, ID_TYPE), H(U32, app_id), H(NAME, name), H(BYTES, nonce),
};
#undef M
#define M authorization_data_ultra
static const NukiField f_authorization_data_ultra[] = { H(U32, app_id), H(NAME, name),
                                                        H(U32, security_pin) };
#undef M
#define M authorization_id
static const NukiField f_authorization_id[] = {
        H(BYTES, authenticator),
        H(U32, auth_id),
        H(BYTES, uuid),
        H(BYTES, nonce),
};
#undef M
#define M authorization_id_ultra
static const NukiField f_authorization_id_ultra[] = { H(U32, auth_id), H(BYTES, uuid) };
#undef M
#define M remove_authorization_entry
static const NukiField f_remove_authorization_entry[] = { H(U32, auth_id), F_NONCE, F_PIN };
#undef M
#define M request_authorization_entries
static const NukiField f_request_authorization_entries[] = {
        H(U16, offset), H(U16, count), OE(filter_id_type, ID_TYPE), F_NONCE, F_PIN,
};
#undef M
#define M authorization_entry
static const NukiField f_authorization_entry[] = {
        H(U32, auth_id),         HE(id_type, ID_TYPE), H(NAME, name),        H(BOOL, enabled),
        H(BOOL, remote_allowed), H(TIME, created),     H(TIME, last_active), H(U16, lock_count),
        H(BOOL, time_limited),   TIME_WINDOW_OPTIONAL,
};
#undef M
#define M authorization_data_invite
static const NukiField f_authorization_data_invite[] = {
        H(NAME, name),
        HE(id_type, ID_TYPE),
        H(BYTES, shared_key),
        H(BOOL, remote_allowed),
        H(BOOL, time_limited),
        TIME_WINDOW_HEAD,
        F_NONCE,
        F_PIN,
};
#undef M
#define M keyturner_states
static const NukiField f_keyturner_states[] = {
        HE(nuki_state, NUKI_STATE),
        HE(lock_state, LOCK_STATE),
        HE(trigger, TRIGGER),
        H(TIME, current_time),
        H(S16, timezone_offset),
        HF(U8, battery, BATTERY),
        H(U8, config_update_count),
        H(U8, lockngo_timer),
        OE(last_lock_action, LOCK_ACTION),
        OE(last_lock_action_trigger, TRIGGER),
        OE(last_lock_action_completion_status, COMPLETION_STATUS),
        OE(door_sensor_state, DOOR_SENSOR_STATE),
        O(BOOL, nightmode_active),
        OF(U8, accessory_battery_state, HEX),
        OF(U8, remote_access_status, HEX),
        O(S8, ble_strength),
        O(S8, wifi_strength),
        OF(U8, wifi_status, HEX),
        OF(U8, mqtt_status, HEX),
        OF(U8, thread_status, HEX),
};
#undef M
#define M lock_action
static const NukiField f_lock_action[] = {
        HE(action, LOCK_ACTION), H(U32, app_id), HF(U8, flags, HEX), O(NAME, name_suffix), F_NONCE,
};
#undef M
#define M status
static const NukiField f_status[] = { HE(status, STATUS) };
#undef M
#define M most_recent_command
static const NukiField f_most_recent_command[] = { HF(U16, command, COMMAND) };
#undef M
#define M openings_closings_summary
static const NukiField f_openings_closings_summary[] = {
        H(U16, openings_total),
        H(U16, closings_total),
        H(U16, openings_since_boot),
        H(U16, closings_since_boot),
};
#undef M
#define M battery_report
static const NukiField f_battery_report[] = {
        H(U16, drain),
        H(U16, voltage),
        H(BOOL, critical),
        HE(last_lock_action, LOCK_ACTION),
        H(U16, start_voltage),
        H(U16, lowest_voltage),
        H(U16, lock_distance),
        H(S8, start_temperature),
        H(U16, max_turn_current),
        H(U16, battery_resistance),
};
#undef M
#define M error_report
static const NukiField f_error_report[] = { HE(error, ERROR), HF(U16, command, COMMAND) };
#undef M
#define M set_config
static const NukiField f_set_config[] = {
        H(NAME, name),
        H(F32, latitude),
        H(F32, longitude),
        H(BOOL, auto_unlatch),
        H(BOOL, pairing_enabled),
        H(BOOL, button_enabled),
        H(BOOL, led_enabled),
        H(U8, led_brightness),
        H(S16, timezone_offset),
        HE(dst_mode, DST_MODE),
        HE(fob_action_1, FOB_ACTION),
        HE(fob_action_2, FOB_ACTION),
        HE(fob_action_3, FOB_ACTION),
        H(BOOL, single_lock),
        HE(advertising_mode, ADVERTISING_MODE),
        H(U16, timezone_id),
        F_NONCE,
        F_PIN,
};
#undef M
#define M request_config
static const NukiField f_request_config[] = { F_NONCE };
#undef M
#define M request_advanced_config
static const NukiField f_request_advanced_config[] = { F_NONCE };
#undef M
#define M config
static const NukiField f_config[] = {
        H(U32, nuki_id),
        H(NAME, name),
        H(F32, latitude),
        H(F32, longitude),
        H(BOOL, auto_unlatch),
        H(BOOL, pairing_enabled),
        H(BOOL, button_enabled),
        H(BOOL, led_enabled),
        H(U8, led_brightness),
        H(TIME, current_time),
        H(S16, timezone_offset),
        HE(dst_mode, DST_MODE),
        H(BOOL, has_fob),
        HE(fob_action_1, FOB_ACTION),
        HE(fob_action_2, FOB_ACTION),
        HE(fob_action_3, FOB_ACTION),
        H(BOOL, single_lock),
        HE(advertising_mode, ADVERTISING_MODE),
        H(BOOL, has_keypad),
        HF(BYTES, firmware_version, VERSION),
        HF(BYTES, hardware_revision, VERSION),
        OE(homekit_status, HOMEKIT_STATUS),
        O(U16, timezone_id),
        OE(device_type, DEVICE_TYPE),
        OF(U8, capabilities, HEX),
        O(BOOL, has_keypad_v2),
        OE(matter_status, MATTER_STATUS),
        O(U8, product_variant), /* [ESP] only */
};
#undef M
#define M set_security_pin
static const NukiField f_set_security_pin[] = { H(PIN, new_pin), F_NONCE, F_PIN };
#undef M
#define M request_calibration
static const NukiField f_request_calibration[] = { F_NONCE, F_PIN };
#undef M
#define M request_reboot
static const NukiField f_request_reboot[] = { F_NONCE, F_PIN };
#undef M
#define M verify_security_pin
static const NukiField f_verify_security_pin[] = { F_NONCE, F_PIN };
#undef M
#define M request_time_control_entries
static const NukiField f_request_time_control_entries[] = { F_NONCE, F_PIN };
#undef M
#define M authorization_id_confirmation
static const NukiField f_authorization_id_confirmation[] = { H(BYTES, authenticator), H(U32, auth_id) };
#undef M
#define M authorization_id_invite
static const NukiField f_authorization_id_invite[] = { H(U32, auth_id), H(TIME, created) };
#undef M
#define M update_time
static const NukiField f_update_time[] = { H(TIME, time), F_NONCE, F_PIN };
#undef M
#define M update_authorization_entry
static const NukiField f_update_authorization_entry[] = {
        H(U32, auth_id),       H(NAME, name),    H(BOOL, enabled), H(BOOL, remote_allowed),
        H(BOOL, time_limited), TIME_WINDOW_HEAD, F_NONCE,          F_PIN,
};
#undef M
#define M authorization_entry_count
static const NukiField f_authorization_entry_count[] = { H(U16, count) };
#undef M
#define M request_log_entries
static const NukiField f_request_log_entries[] = {
        H(U32, start_index), H(U16, count), HE(sort_order, SORT_ORDER), H(BOOL, total_count), F_NONCE, F_PIN,
};
#undef M
#define M log_entry
static const NukiField f_log_entry[] = {
        H(U32, index), H(TIME, timestamp), H(U32, auth_id), H(NAME, name), HE(type, LOG_TYPE), O(BLOB, data),
};
#undef M
#define M log_entry_count
static const NukiField f_log_entry_count[] = {
        H(BOOL, logging_enabled),
        H(U16, count),
        H(BOOL, door_sensor_enabled),
        H(BOOL, door_sensor_logging_enabled),
};
#undef M
#define M enable_logging
static const NukiField f_enable_logging[] = { H(BOOL, enabled), F_NONCE, F_PIN };
#undef M

#define ADVANCED_CONFIG_COMMON                                                                             \
        H(S16, unlocked_position_offset), H(S16, locked_position_offset),                                  \
                        H(S16, single_locked_position_offset),                                             \
                        H(S16, unlocked_to_locked_transition_offset), H(U8, lockngo_timeout),              \
                        HE(single_button_press_action, BUTTON_ACTION),                                     \
                        HE(double_button_press_action, BUTTON_ACTION), H(BOOL, detached_cylinder),         \
                        HE(battery_type, BATTERY_TYPE), H(BOOL, automatic_battery_type_detection),         \
                        H(U8, unlatch_duration), H(U16, auto_lock_timeout), H(BOOL, auto_unlock_disabled), \
                        H(BOOL, nightmode_enabled), H(TIME_OF_DAY, nightmode_start),                       \
                        H(TIME_OF_DAY, nightmode_end), H(BOOL, nightmode_auto_lock_enabled),               \
                        H(BOOL, nightmode_auto_unlock_disabled),                                           \
                        H(BOOL, nightmode_immediate_lock_on_start), O(BOOL, auto_lock_enabled),            \
                        OF(U8, immediate_auto_lock_enabled, HEX), O(BOOL, auto_update_enabled),            \
                        OE(motor_speed, MOTOR_SPEED), O(BOOL, slow_speed_during_nightmode)

#define M advanced_config
static const NukiField f_advanced_config[] = { H(U16, total_degrees), ADVANCED_CONFIG_COMMON };
#undef M
#define M set_advanced_config
static const NukiField f_set_advanced_config[] = { ADVANCED_CONFIG_COMMON, F_NONCE, F_PIN };
#undef M
#define M add_time_control_entry
static const NukiField f_add_time_control_entry[] = {
        HF(U8, weekdays, HEX), H(TIME_OF_DAY, time), HE(lock_action, LOCK_ACTION), F_NONCE, F_PIN,
};
#undef M
#define M time_control_entry_id
static const NukiField f_time_control_entry_id[] = { H(U8, entry_id) };
#undef M
#define M remove_time_control_entry
static const NukiField f_remove_time_control_entry[] = { H(U8, entry_id), F_NONCE, F_PIN };
#undef M
#define M time_control_entry_count
static const NukiField f_time_control_entry_count[] = { H(U8, count) };
#undef M
#define M time_control_entry
static const NukiField f_time_control_entry[] = {
        H(U8, entry_id),
        H(BOOL, enabled),
        HF(U8, weekdays, HEX),
        H(TIME_OF_DAY, time),
        HE(lock_action, LOCK_ACTION),
};
#undef M
#define M update_time_control_entry
static const NukiField f_update_time_control_entry[] = {
        H(U8, entry_id),
        H(BOOL, enabled),
        HF(U8, weekdays, HEX),
        H(TIME_OF_DAY, time),
        HE(lock_action, LOCK_ACTION),
        F_NONCE,
        F_PIN,
};
#undef M
#define M add_keypad_code
static const NukiField f_add_keypad_code[] = {
        H(U32, code), H(NAME, name), H(BOOL, time_limited), TIME_WINDOW_HEAD, F_NONCE, F_PIN,
};
#undef M
#define M keypad_code_id
static const NukiField f_keypad_code_id[] = { H(U16, code_id), H(TIME, created) };
#undef M
#define M request_keypad_codes
static const NukiField f_request_keypad_codes[] = { H(U16, offset), H(U16, count), F_NONCE, F_PIN };
#undef M
#define M keypad_code_count
static const NukiField f_keypad_code_count[] = { H(U16, count) };
#undef M
#define M keypad_code
static const NukiField f_keypad_code[] = {
        H(U16, code_id),    H(U32, code),          H(NAME, name),
        H(BOOL, enabled),   H(TIME, created),      H(TIME, last_active),
        H(U16, lock_count), H(BOOL, time_limited), TIME_WINDOW_OPTIONAL,
};
#undef M
#define M update_keypad_code
static const NukiField f_update_keypad_code[] = {
        H(U16, code_id),       H(U32, code),     H(NAME, name), H(BOOL, enabled),
        H(BOOL, time_limited), TIME_WINDOW_HEAD, F_NONCE,       F_PIN,
};
#undef M
#define M remove_keypad_code
static const NukiField f_remove_keypad_code[] = { H(U16, code_id), F_NONCE, F_PIN };
#undef M
#define M keypad_action
static const NukiField f_keypad_action[] = {
        HE(source, KEYPAD_SOURCE),
        H(U32, code),
        HE(action, KEYPAD_ACTION),
        F_NONCE,
};
#undef M
#define M authorization_info
static const NukiField f_authorization_info[] = { H(U8, security_pin_info) };
#undef M
#define M simple_lock_action
static const NukiField f_simple_lock_action[] = { HE(action, LOCK_ACTION), O(NAME, name_suffix), F_NONCE };
#undef M

enum {
        CL = NUKI_CMD_FLAG_FROM_CLIENT,
        SL = NUKI_CMD_FLAG_FROM_LOCK,
        CH = NUKI_CMD_FLAG_CHALLENGE,
        PN = NUKI_CMD_FLAG_PIN,
        EX = NUKI_CMD_FLAG_EXTRA_OK,
        E = NUKI_CMD_FLAG_ENCRYPTED,
        U = NUKI_CMD_FLAG_PLAIN,
};

#define CMD(i, v, n, fl)                                                                        \
        {                                                                                       \
                .id = i, .variant = NUKI_VARIANT_##v, .name = #n, .flags = fl, .fields = f_##n, \
                .n_fields = ELEMENTSOF(f_##n)                                                   \
        }
#define CMDN(i, v, n, fl, f)                                                                    \
        {                                                                                       \
                .id = i, .variant = NUKI_VARIANT_##v, .name = #n, .flags = fl, .fields = f_##f, \
                .n_fields = ELEMENTSOF(f_##f)                                                   \
        }

static const NukiCommand commands[] = {
        CMD(0x0001, DEFAULT, request_data, CL | U | E),
        CMD(0x0003, DEFAULT, public_key, CL | SL | U),
        CMD(0x0004, DEFAULT, challenge, SL | U | E),
        CMD(0x0005, DEFAULT, authorization_authenticator, CL | U),
        CMD(0x0006, DEFAULT, authorization_data, CL | U),
        CMDN(0x0006, ULTRA, authorization_data, CL | E, authorization_data_ultra),
        CMD(0x0007, DEFAULT, authorization_id, SL | U),
        CMDN(0x0007, ULTRA, authorization_id, SL | E | U, authorization_id_ultra),
        CMD(0x0008, DEFAULT, remove_authorization_entry, CL | E | CH | PN),
        CMD(0x0009, DEFAULT, request_authorization_entries, CL | E | CH | PN),
        CMD(0x000A, DEFAULT, authorization_entry, SL | E),
        CMD(0x000B, DEFAULT, authorization_data_invite, CL | E | CH | PN),
        CMD(0x000C, DEFAULT, keyturner_states, SL | E | EX),
        CMD(0x000D, DEFAULT, lock_action, CL | E | CH),
        CMD(0x000E, DEFAULT, status, SL | E | U),
        CMD(0x000F, DEFAULT, most_recent_command, SL | E),
        CMD(0x0010, DEFAULT, openings_closings_summary, SL | E),
        CMD(0x0011, DEFAULT, battery_report, SL | E | EX),
        CMD(0x0012, DEFAULT, error_report, SL | E | U),
        CMD(0x0013, DEFAULT, set_config, CL | E | CH | PN),
        CMD(0x0014, DEFAULT, request_config, CL | E | CH),
        CMD(0x0015, DEFAULT, config, SL | E | EX),
        CMD(0x0019, DEFAULT, set_security_pin, CL | E | CH | PN),
        CMD(0x001A, DEFAULT, request_calibration, CL | E | CH | PN),
        CMD(0x001D, DEFAULT, request_reboot, CL | E | CH | PN),
        CMD(0x001E, DEFAULT, authorization_id_confirmation, CL | U),
        CMD(0x001F, DEFAULT, authorization_id_invite, SL | E),
        CMD(0x0020, DEFAULT, verify_security_pin, CL | E | CH | PN),
        CMD(0x0021, DEFAULT, update_time, CL | E | CH | PN),
        CMD(0x0025, DEFAULT, update_authorization_entry, CL | E | CH | PN),
        CMD(0x0027, DEFAULT, authorization_entry_count, SL | E),
        CMD(0x0031, DEFAULT, request_log_entries, CL | E | CH | PN),
        /* [PY] found padding after the data on SL3/SL4: the entry length comes from the frame */
        CMD(0x0032, DEFAULT, log_entry, SL | E),
        CMD(0x0033, DEFAULT, log_entry_count, SL | E),
        CMD(0x0034, DEFAULT, enable_logging, CL | E | CH | PN),
        CMD(0x0035, DEFAULT, set_advanced_config, CL | E | CH | PN),
        CMD(0x0036, DEFAULT, request_advanced_config, CL | E | CH),
        CMD(0x0037, DEFAULT, advanced_config, SL | E | EX),
        CMD(0x0039, DEFAULT, add_time_control_entry, CL | E | CH | PN),
        CMD(0x003A, DEFAULT, time_control_entry_id, SL | E),
        CMD(0x003B, DEFAULT, remove_time_control_entry, CL | E | CH | PN),
        CMD(0x003C, DEFAULT, request_time_control_entries, CL | E | CH | PN),
        CMD(0x003D, DEFAULT, time_control_entry_count, SL | E),
        CMD(0x003E, DEFAULT, time_control_entry, SL | E),
        CMD(0x003F, DEFAULT, update_time_control_entry, CL | E | CH | PN),
        CMD(0x0041, DEFAULT, add_keypad_code, CL | E | CH | PN),
        CMD(0x0042, DEFAULT, keypad_code_id, SL | E),
        CMD(0x0043, DEFAULT, request_keypad_codes, CL | E | CH | PN),
        CMD(0x0044, DEFAULT, keypad_code_count, SL | E),
        CMD(0x0045, DEFAULT, keypad_code, SL | E),
        CMD(0x0046, DEFAULT, update_keypad_code, CL | E | CH | PN),
        CMD(0x0047, DEFAULT, remove_keypad_code, CL | E | CH | PN),
        CMD(0x0048, DEFAULT, keypad_action, CL | E | CH),
        CMD(0x004C, DEFAULT, authorization_info, SL | U),
        CMD(0x0100, DEFAULT, simple_lock_action, CL | E | CH),
};

size_t nuki_command_table(const NukiCommand **ret)
{
        *ret = commands;
        return ELEMENTSOF(commands);
}

const NukiCommand *nuki_command_find(uint16_t id, NukiVariant variant)
{
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].id == id && commands[i].variant == variant)
                        return &commands[i];
        return NULL;
}

const char *nuki_command_name(uint16_t id)
{
        const NukiCommand *c = nuki_command_find(id, NUKI_VARIANT_DEFAULT);
        return c ? c->name : NULL;
}

void nuki_msg_init(NukiMsg *m, uint16_t command, NukiVariant variant)
{
        memset(m, 0, sizeof(*m));
        m->command = command;
        m->variant = variant;
        m->n_optional = NUKI_OPTIONAL_ALL;
}

void nuki_msg_wipe(NukiMsg *m)
{
        if (m)
                sodium_memzero(m, sizeof(*m));
}

static size_t wire_size(const NukiField *f, unsigned pin_size)
{
        switch (f->type) {
        case NUKI_FIELD_U8:
        case NUKI_FIELD_S8:
        case NUKI_FIELD_BOOL:
                return 1;
        case NUKI_FIELD_U16:
        case NUKI_FIELD_S16:
        case NUKI_FIELD_TIME_OF_DAY:
                return 2;
        case NUKI_FIELD_U32:
        case NUKI_FIELD_F32:
                return 4;
        case NUKI_FIELD_TIME:
                return 7;
        case NUKI_FIELD_BYTES:
        case NUKI_FIELD_NAME:
                return f->size;
        case NUKI_FIELD_PIN:
                return pin_size;
        case NUKI_FIELD_BLOB:
                return 0;
        }
        return 0;
}

static bool has_pin(const NukiCommand *c)
{
        for (size_t i = 0; i < c->n_fields; i++)
                if (c->fields[i].type == NUKI_FIELD_PIN)
                        return true;
        return false;
}

/* Index of field i among the optional fields, and of the first member of its group. */
static size_t optional_index(const NukiCommand *c, size_t i)
{
        size_t k = 0;

        for (size_t j = 0; j < i; j++)
                if (c->fields[j].section == NUKI_SECTION_OPTIONAL)
                        k++;
        return k;
}

bool nuki_msg_field_present(const NukiMsg *m, const NukiCommand *c, size_t i)
{
        const NukiField *f = &c->fields[i];
        size_t first = i;

        if (f->section != NUKI_SECTION_OPTIONAL)
                return true;
        if (f->group != 0)
                while (first > 0 && c->fields[first - 1].section == NUKI_SECTION_OPTIONAL &&
                       c->fields[first - 1].group == f->group)
                        first--;
        return optional_index(c, first) < m->n_optional;
}

static int put_field(const NukiMsg *m, const NukiField *f, unsigned pin_size, uint8_t *out)
{
        const uint8_t *v = (const uint8_t *) m + f->offset;

        switch (f->type) {
        case NUKI_FIELD_U8:
                *out = *v;
                return 1;
        case NUKI_FIELD_S8: {
                int8_t x;
                memcpy(&x, v, 1);
                *out = (uint8_t) x;
                return 1;
        }
        case NUKI_FIELD_BOOL: {
                bool b;
                memcpy(&b, v, sizeof(b));
                *out = b ? 1 : 0;
                return 1;
        }
        case NUKI_FIELD_U16: {
                uint16_t x;
                memcpy(&x, v, 2);
                nuki_put_u16(out, x);
                return 2;
        }
        case NUKI_FIELD_S16: {
                int16_t x;
                memcpy(&x, v, 2);
                nuki_put_u16(out, (uint16_t) x);
                return 2;
        }
        case NUKI_FIELD_U32: {
                uint32_t x;
                memcpy(&x, v, 4);
                nuki_put_u32(out, x);
                return 4;
        }
        case NUKI_FIELD_F32: {
                uint32_t x;
                memcpy(&x, v, 4); /* IEEE-754 binary32 */
                nuki_put_u32(out, x);
                return 4;
        }
        case NUKI_FIELD_TIME: {
                NukiTime t;
                memcpy(&t, v, sizeof(t));
                nuki_put_u16(out, t.year);
                out[2] = t.month;
                out[3] = t.day;
                out[4] = t.hour;
                out[5] = t.minute;
                out[6] = t.second;
                return 7;
        }
        case NUKI_FIELD_TIME_OF_DAY: {
                NukiTimeOfDay t;
                memcpy(&t, v, sizeof(t));
                out[0] = t.hour;
                out[1] = t.minute;
                return 2;
        }
        case NUKI_FIELD_BYTES:
                memcpy(out, v, f->size);
                return f->size;
        case NUKI_FIELD_NAME: {
                size_t l = strnlen((const char *) v, f->size);
                memset(out, 0, f->size);
                memcpy(out, v, l);
                return f->size;
        }
        case NUKI_FIELD_PIN: {
                uint32_t x;
                memcpy(&x, v, 4);
                if (pin_size == 2) {
                        if (x > UINT16_MAX)
                                return -ERANGE;
                        nuki_put_u16(out, (uint16_t) x);
                        return 2;
                }
                nuki_put_u32(out, x);
                return 4;
        }
        case NUKI_FIELD_BLOB: {
                NukiBlob b;
                memcpy(&b.len, v + offsetof(NukiBlob, len), sizeof(b.len));
                if (b.len > NUKI_BLOB_MAX)
                        return -EMSGSIZE;
                memcpy(out, v + offsetof(NukiBlob, data), b.len);
                return (int) b.len;
        }
        }
        return -EINVAL;
}

int nuki_msg_encode_payload(const NukiMsg *m, unsigned pin_size, uint8_t *out, size_t size)
{
        const NukiCommand *c;
        size_t pos = 0;

        c = nuki_command_find(m->command, m->variant);
        if (!c)
                return -ENOENT;
        if (has_pin(c) && pin_size != 2 && pin_size != 4)
                return -EINVAL;

        for (size_t i = 0; i < c->n_fields; i++) {
                const NukiField *f = &c->fields[i];
                size_t n;
                int r;

                if (!nuki_msg_field_present(m, c, i))
                        continue;
                if (f->type == NUKI_FIELD_BLOB) {
                        const NukiBlob *b = (const NukiBlob *) ((const uint8_t *) m + f->offset);
                        n = b->len;
                } else
                        n = wire_size(f, pin_size);
                if (n > size - pos)
                        return -ENOBUFS;
                r = put_field(m, f, pin_size, out + pos);
                if (r < 0)
                        return r;
                pos += (size_t) r;
        }
        if (pos > NUKI_PAYLOAD_MAX)
                return -EMSGSIZE;
        return (int) pos;
}

/* Reads exactly wire_size(f) bytes (the caller checked they are there). */
static void get_field(NukiMsg *m, const NukiField *f, unsigned pin_size, const uint8_t *in, size_t blob_len)
{
        uint8_t *v = (uint8_t *) m + f->offset;

        switch (f->type) {
        case NUKI_FIELD_U8:
                *v = in[0];
                return;
        case NUKI_FIELD_S8: {
                int8_t x = (int8_t) in[0];
                memcpy(v, &x, 1);
                return;
        }
        case NUKI_FIELD_BOOL: {
                bool b = in[0] != 0;
                memcpy(v, &b, sizeof(b));
                return;
        }
        case NUKI_FIELD_U16: {
                uint16_t x = nuki_get_u16(in);
                memcpy(v, &x, 2);
                return;
        }
        case NUKI_FIELD_S16: {
                int16_t x = (int16_t) nuki_get_u16(in);
                memcpy(v, &x, 2);
                return;
        }
        case NUKI_FIELD_U32:
        case NUKI_FIELD_F32: {
                uint32_t x = nuki_get_u32(in);
                memcpy(v, &x, 4);
                return;
        }
        case NUKI_FIELD_TIME: {
                NukiTime t = {
                        .year = nuki_get_u16(in),
                        .month = in[2],
                        .day = in[3],
                        .hour = in[4],
                        .minute = in[5],
                        .second = in[6],
                };
                memcpy(v, &t, sizeof(t));
                return;
        }
        case NUKI_FIELD_TIME_OF_DAY: {
                NukiTimeOfDay t = { .hour = in[0], .minute = in[1] };
                memcpy(v, &t, sizeof(t));
                return;
        }
        case NUKI_FIELD_BYTES:
                memcpy(v, in, f->size);
                return;
        case NUKI_FIELD_NAME:
                /* v has size + 1 bytes and is zeroed: always NUL-terminated */
                memcpy(v, in, strnlen((const char *) in, f->size));
                return;
        case NUKI_FIELD_PIN: {
                uint32_t x = pin_size == 2 ? nuki_get_u16(in) : nuki_get_u32(in);
                memcpy(v, &x, 4);
                return;
        }
        case NUKI_FIELD_BLOB: {
                NukiBlob *b = (NukiBlob *) v;
                b->len = blob_len;
                memcpy(b->data, in, blob_len);
                return;
        }
        }
}

static int decode_layout(const NukiCommand *c, const uint8_t *p, size_t len, unsigned pin_size, NukiMsg *m)
{
        size_t head = 0, tail = 0, pos = 0, end, i;
        unsigned n_opt = 0;

        for (i = 0; i < c->n_fields; i++) {
                if (c->fields[i].section == NUKI_SECTION_HEAD)
                        head += wire_size(&c->fields[i], pin_size);
                else if (c->fields[i].section == NUKI_SECTION_TAIL)
                        tail += wire_size(&c->fields[i], pin_size);
        }
        if (len < head + tail)
                return -EMSGSIZE;
        end = len - tail;

        nuki_msg_init(m, c->id, c->variant);
        for (i = 0; i < c->n_fields && c->fields[i].section == NUKI_SECTION_HEAD; i++) {
                get_field(m, &c->fields[i], pin_size, p + pos, 0);
                pos += wire_size(&c->fields[i], pin_size);
        }
        while (i < c->n_fields && c->fields[i].section == NUKI_SECTION_OPTIONAL) {
                const NukiField *f = &c->fields[i];
                size_t n = 0, g = i;

                if (f->type == NUKI_FIELD_BLOB) {
                        if (end - pos > NUKI_BLOB_MAX)
                                return -EMSGSIZE;
                        get_field(m, f, pin_size, p + pos, end - pos);
                        pos = end;
                        n_opt++;
                        i++;
                        continue;
                }
                /* a group, or a single field */
                do
                        n += wire_size(&c->fields[g++], pin_size);
                while (f->group != 0 && g < c->n_fields && c->fields[g].section == NUKI_SECTION_OPTIONAL &&
                       c->fields[g].group == f->group);
                if (n > end - pos)
                        break;
                for (; i < g; i++) {
                        get_field(m, &c->fields[i], pin_size, p + pos, 0);
                        pos += wire_size(&c->fields[i], pin_size);
                        n_opt++;
                }
        }
        if (pos != end && !(c->flags & NUKI_CMD_FLAG_EXTRA_OK))
                return -EMSGSIZE;
        pos = end;
        while (i < c->n_fields && c->fields[i].section == NUKI_SECTION_OPTIONAL)
                i++;
        for (; i < c->n_fields; i++) {
                get_field(m, &c->fields[i], pin_size, p + pos, 0);
                pos += wire_size(&c->fields[i], pin_size);
        }
        m->n_optional = (uint8_t) MIN(n_opt, NUKI_OPTIONAL_ALL - 1);
        return 0;
}

int nuki_msg_decode_payload(uint16_t command, const uint8_t *payload, size_t len, unsigned pin_size,
                            NukiMsg *ret)
{
        int r = -ENOENT;

        if (pin_size != 0 && pin_size != 2 && pin_size != 4)
                return -EINVAL;
        if (len > NUKI_PAYLOAD_MAX)
                return -EMSGSIZE;

        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                const NukiCommand *c = &commands[i];

                if (c->id != command)
                        continue;
                if (!has_pin(c))
                        r = decode_layout(c, payload, len, 2, ret);
                else if (pin_size != 0)
                        r = decode_layout(c, payload, len, pin_size, ret);
                else {
                        r = decode_layout(c, payload, len, 2, ret);
                        if (r < 0)
                                r = decode_layout(c, payload, len, 4, ret);
                }
                if (r >= 0)
                        return 0;
        }
        if (r < 0)
                nuki_msg_wipe(ret);
        return r;
}

int nuki_msg_encode_plain(const NukiMsg *m, unsigned pin_size, uint8_t *out, size_t size)
{
        uint8_t payload[NUKI_PAYLOAD_MAX];
        int r;

        r = nuki_msg_encode_payload(m, pin_size, payload, sizeof(payload));
        if (r >= 0)
                r = nuki_frame_encode_plain(m->command, payload, (size_t) r, out, size);
        sodium_memzero(payload, sizeof(payload));
        return r;
}

int nuki_msg_encode_encrypted(const NukiMsg *m, unsigned pin_size, const uint8_t key[NUKI_KEY_SIZE],
                              const uint8_t nonce[NUKI_NONCE_SIZE], uint32_t auth_id, uint8_t *out,
                              size_t size)
{
        uint8_t payload[NUKI_PAYLOAD_MAX];
        int r;

        r = nuki_msg_encode_payload(m, pin_size, payload, sizeof(payload));
        if (r >= 0)
                r = nuki_frame_encode_encrypted(key, nonce, auth_id, m->command, payload, (size_t) r, out,
                                                size);
        sodium_memzero(payload, sizeof(payload));
        return r;
}

static const NukiField *find_tail_field(const NukiMsg *m, NukiFieldType type, const char *name)
{
        const NukiCommand *c = nuki_command_find(m->command, m->variant);

        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_fields; i++)
                if (c->fields[i].section == NUKI_SECTION_TAIL && c->fields[i].type == type &&
                    streq(c->fields[i].name, name))
                        return &c->fields[i];
        return NULL;
}

int nuki_msg_set_nonce(NukiMsg *m, const uint8_t nonce[NUKI_CHALLENGE_SIZE])
{
        const NukiField *f = find_tail_field(m, NUKI_FIELD_BYTES, "nonce");

        if (!f)
                return -ENOENT;
        memcpy((uint8_t *) m + f->offset, nonce, NUKI_CHALLENGE_SIZE);
        return 0;
}

int nuki_msg_set_pin(NukiMsg *m, uint32_t pin)
{
        const NukiField *f = find_tail_field(m, NUKI_FIELD_PIN, "pin");

        if (!f)
                return -ENOENT;
        memcpy((uint8_t *) m + f->offset, &pin, sizeof(pin));
        return 0;
}

int nuki_msg_get_nonce(const NukiMsg *m, uint8_t ret[NUKI_CHALLENGE_SIZE])
{
        const NukiField *f = find_tail_field(m, NUKI_FIELD_BYTES, "nonce");

        if (!f)
                return -ENOENT;
        memcpy(ret, (const uint8_t *) m + f->offset, NUKI_CHALLENGE_SIZE);
        return 0;
}

int nuki_msg_get_pin(const NukiMsg *m, uint32_t *ret)
{
        const NukiField *f = find_tail_field(m, NUKI_FIELD_PIN, "pin");

        if (!f)
                return -ENOENT;
        memcpy(ret, (const uint8_t *) m + f->offset, sizeof(*ret));
        return 0;
}
