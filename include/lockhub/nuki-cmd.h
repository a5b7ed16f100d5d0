/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Nuki command codecs (fact sheet section 5): every message of the master table up to
 * 0x0048, plus 0x004C and 0x0100, in both directions.
 *
 * One tagged union, NukiMsg, holds any message; one table (nuki-cmd.c) describes each
 * command's payload as a list of fields in wire order. The same table drives encoding,
 * decoding, JSON output (nuki-json.h) and the tests, so a layout is written once.
 *
 * A payload has three sections:
 *   head      required fields, from the start;
 *   optional  fields that later firmware appends (Keyturner States 15..27 bytes, Config,
 *             Advanced Config), optional groups (the time window of authorization and
 *             keypad entries) and optional middles (Lock Action's name suffix, the id-type
 *             filter of Request Authorization Entries); decoded in order as long as the
 *             bytes allow, and counted in NukiMsg.n_optional;
 *   tail      fields anchored at the end: nonce[32] and the security PIN.
 *
 * PIN size: 2 bytes on Smart Lock 1.0-4th gen, 4 on Ultra/"5G" firmware (fact sheet 7).
 * Encoders take it as pin_size (2 or 4). Decoders take 2, 4, or 0 = infer from the length
 * (2 is tried first; the only ambiguous case is Set Advanced Config, where a 4-byte PIN
 * cannot be told from two more 1-byte fields: pass the size you know).
 *
 * Not covered (fact sheet 9): Opener-specific lock state meanings (open question 6; the
 * Opener's states share values with different meanings, so they are shown as Smart Lock
 * states), and ids above 0x004C other than 0x0100, which only [ESP] lists (open question
 * 7): they decode as unknown commands (-ENOENT) and `lockhubctl decode` shows their bytes.
 *
 * Errors: -ENOENT unknown command id, -EMSGSIZE payload length does not fit the layout
 * (or exceeds a buffer), -ERANGE a value does not fit its wire field (a PIN > 65535 with
 * pin_size 2), -EINVAL bad arguments, -ENOBUFS output too small.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/nuki-frame.h"

typedef enum NukiCommandId {
        NUKI_CMD_REQUEST_DATA = 0x0001,
        NUKI_CMD_PUBLIC_KEY = 0x0003,
        NUKI_CMD_CHALLENGE = 0x0004,
        NUKI_CMD_AUTHORIZATION_AUTHENTICATOR = 0x0005,
        NUKI_CMD_AUTHORIZATION_DATA = 0x0006,
        NUKI_CMD_AUTHORIZATION_ID = 0x0007,
        NUKI_CMD_REMOVE_AUTHORIZATION_ENTRY = 0x0008,
        NUKI_CMD_REQUEST_AUTHORIZATION_ENTRIES = 0x0009,
        NUKI_CMD_AUTHORIZATION_ENTRY = 0x000A,
        NUKI_CMD_AUTHORIZATION_DATA_INVITE = 0x000B,
        NUKI_CMD_KEYTURNER_STATES = 0x000C,
        NUKI_CMD_LOCK_ACTION = 0x000D,
        NUKI_CMD_STATUS = 0x000E,
        NUKI_CMD_MOST_RECENT_COMMAND = 0x000F,
        NUKI_CMD_OPENINGS_CLOSINGS_SUMMARY = 0x0010,
        NUKI_CMD_BATTERY_REPORT = 0x0011,
        NUKI_CMD_ERROR_REPORT = 0x0012,
        NUKI_CMD_SET_CONFIG = 0x0013,
        NUKI_CMD_REQUEST_CONFIG = 0x0014,
        NUKI_CMD_CONFIG = 0x0015,
        NUKI_CMD_SET_SECURITY_PIN = 0x0019,
        NUKI_CMD_REQUEST_CALIBRATION = 0x001A,
        NUKI_CMD_REQUEST_REBOOT = 0x001D,
        NUKI_CMD_AUTHORIZATION_ID_CONFIRMATION = 0x001E,
        NUKI_CMD_AUTHORIZATION_ID_INVITE = 0x001F,
        NUKI_CMD_VERIFY_SECURITY_PIN = 0x0020,
        NUKI_CMD_UPDATE_TIME = 0x0021,
        NUKI_CMD_UPDATE_AUTHORIZATION_ENTRY = 0x0025,
        NUKI_CMD_AUTHORIZATION_ENTRY_COUNT = 0x0027,
        NUKI_CMD_REQUEST_LOG_ENTRIES = 0x0031,
        NUKI_CMD_LOG_ENTRY = 0x0032,
        NUKI_CMD_LOG_ENTRY_COUNT = 0x0033,
        NUKI_CMD_ENABLE_LOGGING = 0x0034,
        NUKI_CMD_SET_ADVANCED_CONFIG = 0x0035,
        NUKI_CMD_REQUEST_ADVANCED_CONFIG = 0x0036,
        NUKI_CMD_ADVANCED_CONFIG = 0x0037,
        NUKI_CMD_ADD_TIME_CONTROL_ENTRY = 0x0039,
        NUKI_CMD_TIME_CONTROL_ENTRY_ID = 0x003A,
        NUKI_CMD_REMOVE_TIME_CONTROL_ENTRY = 0x003B,
        NUKI_CMD_REQUEST_TIME_CONTROL_ENTRIES = 0x003C,
        NUKI_CMD_TIME_CONTROL_ENTRY_COUNT = 0x003D,
        NUKI_CMD_TIME_CONTROL_ENTRY = 0x003E,
        NUKI_CMD_UPDATE_TIME_CONTROL_ENTRY = 0x003F,
        NUKI_CMD_ADD_KEYPAD_CODE = 0x0041,
        NUKI_CMD_KEYPAD_CODE_ID = 0x0042,
        NUKI_CMD_REQUEST_KEYPAD_CODES = 0x0043,
        NUKI_CMD_KEYPAD_CODE_COUNT = 0x0044,
        NUKI_CMD_KEYPAD_CODE = 0x0045,
        NUKI_CMD_UPDATE_KEYPAD_CODE = 0x0046,
        NUKI_CMD_REMOVE_KEYPAD_CODE = 0x0047,
        NUKI_CMD_KEYPAD_ACTION = 0x0048,
        NUKI_CMD_AUTHORIZATION_INFO = 0x004C,
        NUKI_CMD_SIMPLE_LOCK_ACTION = 0x0100,
} NukiCommandId;

/* ---- enumerations; each has snake_case names (nuki_enum_to_string) ---- */

typedef enum NukiEnumKind {
        NUKI_ENUM_NONE,
        NUKI_ENUM_NUKI_STATE,
        NUKI_ENUM_LOCK_STATE,
        NUKI_ENUM_TRIGGER,
        NUKI_ENUM_LOCK_ACTION,
        NUKI_ENUM_COMPLETION_STATUS,
        NUKI_ENUM_DOOR_SENSOR_STATE,
        NUKI_ENUM_STATUS,
        NUKI_ENUM_ERROR,
        NUKI_ENUM_ID_TYPE,
        NUKI_ENUM_KEYPAD_SOURCE,
        NUKI_ENUM_KEYPAD_ACTION,
        NUKI_ENUM_BUTTON_ACTION,
        NUKI_ENUM_FOB_ACTION,
        NUKI_ENUM_BATTERY_TYPE,
        NUKI_ENUM_ADVERTISING_MODE,
        NUKI_ENUM_DST_MODE,
        NUKI_ENUM_HOMEKIT_STATUS,
        NUKI_ENUM_DEVICE_TYPE,
        NUKI_ENUM_MATTER_STATUS,
        NUKI_ENUM_LOG_TYPE,
        NUKI_ENUM_LOG_DOOR_SENSOR,
        NUKI_ENUM_SORT_ORDER,
        NUKI_ENUM_MOTOR_SPEED,
        _NUKI_ENUM_MAX,
} NukiEnumKind;

typedef enum NukiLockState {
        NUKI_LOCK_STATE_UNCALIBRATED = 0x00,
        NUKI_LOCK_STATE_LOCKED = 0x01,
        NUKI_LOCK_STATE_UNLOCKING = 0x02,
        NUKI_LOCK_STATE_UNLOCKED = 0x03,
        NUKI_LOCK_STATE_LOCKING = 0x04,
        NUKI_LOCK_STATE_UNLATCHED = 0x05,
        NUKI_LOCK_STATE_UNLOCKED_LOCKNGO = 0x06,
        NUKI_LOCK_STATE_UNLATCHING = 0x07,
        NUKI_LOCK_STATE_CALIBRATION = 0xFC,
        NUKI_LOCK_STATE_BOOT_RUN = 0xFD,
        NUKI_LOCK_STATE_MOTOR_BLOCKED = 0xFE,
        NUKI_LOCK_STATE_UNDEFINED = 0xFF,
} NukiLockState;

typedef enum NukiLockAction {
        NUKI_LOCK_ACTION_UNLOCK = 0x01,
        NUKI_LOCK_ACTION_LOCK = 0x02,
        NUKI_LOCK_ACTION_UNLATCH = 0x03,
        NUKI_LOCK_ACTION_LOCKNGO = 0x04,
        NUKI_LOCK_ACTION_LOCKNGO_UNLATCH = 0x05,
        NUKI_LOCK_ACTION_FULL_LOCK = 0x06,
        NUKI_LOCK_ACTION_FOB_ACTION_1 = 0x81,
        NUKI_LOCK_ACTION_FOB_ACTION_2 = 0x82,
        NUKI_LOCK_ACTION_FOB_ACTION_3 = 0x83,
} NukiLockAction;

typedef enum NukiNukiState {
        NUKI_STATE_UNINITIALIZED = 0x00,
        NUKI_STATE_PAIRING_MODE = 0x01,
        NUKI_STATE_DOOR_MODE = 0x02,
        NUKI_STATE_CONTINUOUS_MODE = 0x03, /* Opener only */
        NUKI_STATE_MAINTENANCE_MODE = 0x04,
} NukiNukiState;

typedef enum NukiTrigger {
        NUKI_TRIGGER_SYSTEM = 0x00,
        NUKI_TRIGGER_MANUAL = 0x01,
        NUKI_TRIGGER_BUTTON = 0x02,
        NUKI_TRIGGER_AUTOMATIC = 0x03,
        NUKI_TRIGGER_AUTO_LOCK = 0x06,
        NUKI_TRIGGER_HOMEKIT = 0xAB, /* [ESP] only */
        NUKI_TRIGGER_MQTT = 0xAC,    /* [ESP] only */
} NukiTrigger;

typedef enum NukiStatus {
        NUKI_STATUS_COMPLETE = 0x00,
        NUKI_STATUS_ACCEPTED = 0x01,
        NUKI_STATUS_STATE_CHANGED = 0xF1, /* unencrypted, to bridges [WEB t/14223] */
} NukiStatus;

typedef enum NukiIdType {
        NUKI_ID_TYPE_APP = 0,
        NUKI_ID_TYPE_BRIDGE = 1,
        NUKI_ID_TYPE_FOB = 2,
        NUKI_ID_TYPE_KEYPAD = 3,
        NUKI_ID_TYPE_DOOR_SENSOR = 4, /* [S23], as a filter value */
        NUKI_ID_TYPE_KEYPAD_2 = 5,    /* [S23], as a filter value */
} NukiIdType;

typedef enum NukiError {
        NUKI_P_ERROR_NOT_PAIRING = 0x10,
        NUKI_P_ERROR_BAD_AUTHENTICATOR = 0x11,
        NUKI_P_ERROR_BAD_PARAMETER = 0x12,
        NUKI_P_ERROR_MAX_USER = 0x13,
        NUKI_K_ERROR_NOT_AUTHORIZED = 0x20,
        NUKI_K_ERROR_BAD_PIN = 0x21,
        NUKI_K_ERROR_BAD_NONCE = 0x22,
        NUKI_K_ERROR_BAD_PARAMETER = 0x23,
        NUKI_K_ERROR_INVALID_AUTH_ID = 0x24,
        NUKI_K_ERROR_DISABLED = 0x25,
        NUKI_K_ERROR_REMOTE_NOT_ALLOWED = 0x26,
        NUKI_K_ERROR_TIME_NOT_ALLOWED = 0x27,
        NUKI_K_ERROR_TOO_MANY_PIN_ATTEMPTS = 0x28,
        NUKI_K_ERROR_TOO_MANY_ENTRIES = 0x29,
        NUKI_K_ERROR_CODE_ALREADY_EXISTS = 0x2A,
        NUKI_K_ERROR_CODE_INVALID = 0x2B,
        NUKI_K_ERROR_CODE_INVALID_TIMEOUT_1 = 0x2C,
        NUKI_K_ERROR_CODE_INVALID_TIMEOUT_2 = 0x2D,
        NUKI_K_ERROR_CODE_INVALID_TIMEOUT_3 = 0x2E,
        NUKI_K_ERROR_AUTO_UNLOCK_TOO_RECENT = 0x40,
        NUKI_K_ERROR_POSITION_UNKNOWN = 0x41,
        NUKI_K_ERROR_MOTOR_BLOCKED = 0x42,
        NUKI_K_ERROR_CLUTCH_FAILURE = 0x43,
        NUKI_K_ERROR_MOTOR_TIMEOUT = 0x44,
        NUKI_K_ERROR_BUSY = 0x45,
        NUKI_K_ERROR_CANCELED = 0x46,
        NUKI_K_ERROR_NOT_CALIBRATED = 0x47,
        NUKI_K_ERROR_MOTOR_POSITION_LIMIT = 0x48,
        NUKI_K_ERROR_MOTOR_LOW_VOLTAGE = 0x49,
        NUKI_K_ERROR_MOTOR_POWER_FAILURE = 0x4A,
        NUKI_K_ERROR_CLUTCH_POWER_FAILURE = 0x4B,
        NUKI_K_ERROR_VOLTAGE_TOO_LOW = 0x4C,
        NUKI_K_ERROR_FIRMWARE_UPDATE_NEEDED = 0x4D,
        NUKI_ERROR_BAD_CRC = 0xFD,
        NUKI_ERROR_BAD_LENGTH = 0xFE,
        NUKI_ERROR_UNKNOWN = 0xFF,
} NukiError;

typedef enum NukiCompletionStatus {
        NUKI_COMPLETION_SUCCESS = 0x00,
        NUKI_COMPLETION_MOTOR_BLOCKED = 0x01,
        NUKI_COMPLETION_CANCELED = 0x02,
        NUKI_COMPLETION_TOO_RECENT = 0x03,
        NUKI_COMPLETION_BUSY = 0x04,
        NUKI_COMPLETION_LOW_MOTOR_VOLTAGE = 0x05,
        NUKI_COMPLETION_CLUTCH_FAILURE = 0x06,
        NUKI_COMPLETION_MOTOR_POWER_FAILURE = 0x07,
        NUKI_COMPLETION_INCOMPLETE = 0x08,
        NUKI_COMPLETION_REJECTED = 0x09,
        NUKI_COMPLETION_REJECTED_NIGHTMODE = 0x0A,
        NUKI_COMPLETION_HANDLE_NOT_LIFTED = 0x0B,
        NUKI_COMPLETION_INVALID_CODE = 0xE0,
        NUKI_COMPLETION_INVALID_FINGERPRINT = 0xE1,
        NUKI_COMPLETION_OTHER_ERROR = 0xFE,
        NUKI_COMPLETION_UNKNOWN = 0xFF,
} NukiCompletionStatus;

typedef struct NukiEnumValue {
        unsigned value;
        const char *name;
} NukiEnumValue;

/* NULL if the value has no name (callers print it as hex). */
const char *nuki_enum_to_string(NukiEnumKind kind, unsigned value);
/* The value, or -EINVAL. */
int nuki_enum_from_string(NukiEnumKind kind, const char *name);
/* The whole table of a kind (for tests and help texts). */
size_t nuki_enum_table(NukiEnumKind kind, const NukiEnumValue **ret);
const char *nuki_enum_kind_name(NukiEnumKind kind);

/* ---- field storage types ---- */

typedef struct NukiTime {
        uint16_t year;
        uint8_t month, day, hour, minute, second;
} NukiTime;

typedef struct NukiTimeOfDay {
        uint8_t hour, minute;
} NukiTimeOfDay;

#define NUKI_BLOB_MAX 64U
typedef struct NukiBlob {
        size_t len;
        uint8_t data[NUKI_BLOB_MAX];
} NukiBlob;

#define NUKI_NAME_SIZE       32U /* authorizations, locks, log entries */
#define NUKI_SHORT_NAME_SIZE 20U /* keypad codes, name suffix */
#define NUKI_OPTIONAL_ALL    255U
#define NUKI_PIN_SIZE_LEGACY 2U
#define NUKI_PIN_SIZE_ULTRA  4U

typedef enum NukiVariant {
        NUKI_VARIANT_DEFAULT = 0, /* gen 1-4 layouts, and every command that has one layout */
        NUKI_VARIANT_ULTRA = 1,   /* 0x0006 Authorization Data and 0x0007 Authorization-ID (4.2) */
} NukiVariant;

/* Time-limited window shared by authorization and keypad entries. */
#define NUKI_TIME_WINDOW_FIELDS                                       \
        NukiTime allowed_from;                                        \
        NukiTime allowed_until;                                       \
        uint8_t weekdays; /* bit 6 Mon .. bit 0 Sun; 0 = every day */ \
        NukiTimeOfDay from_time;                                      \
        NukiTimeOfDay until_time

typedef struct NukiMsg {
        uint16_t command;
        NukiVariant variant;
        /* Optional fields present, in table order (decoders set it; encoders emit that many;
         * NUKI_OPTIONAL_ALL for all of them). A group counts as its number of fields. */
        uint8_t n_optional;
        union {
                struct {
                        uint16_t command;
                        NukiBlob extra; /* bytes after the command id, normally none */
                } request_data;
                struct {
                        uint8_t key[NUKI_KEY_SIZE];
                } public_key;
                struct {
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                } challenge;
                struct {
                        uint8_t authenticator[NUKI_AUTHENTICATOR_SIZE];
                } authorization_authenticator;
                struct {
                        uint8_t authenticator[NUKI_AUTHENTICATOR_SIZE];
                        uint8_t id_type;
                        uint32_t app_id;
                        char name[NUKI_NAME_SIZE + 1];
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                } authorization_data;
                struct {
                        uint32_t app_id;
                        char name[NUKI_NAME_SIZE + 1];
                        uint32_t security_pin;
                } authorization_data_ultra;
                struct {
                        uint8_t authenticator[NUKI_AUTHENTICATOR_SIZE];
                        uint32_t auth_id;
                        uint8_t uuid[NUKI_UUID_SIZE];
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                } authorization_id;
                struct {
                        uint32_t auth_id;
                        uint8_t uuid[NUKI_UUID_SIZE];
                } authorization_id_ultra;
                struct {
                        uint32_t auth_id;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } remove_authorization_entry;
                struct {
                        uint16_t offset;
                        uint16_t count;
                        uint8_t filter_id_type; /* optional: SL 4th gen and Ultra */
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } request_authorization_entries;
                struct {
                        uint32_t auth_id;
                        uint8_t id_type;
                        char name[NUKI_NAME_SIZE + 1];
                        bool enabled;
                        bool remote_allowed;
                        NukiTime created;
                        NukiTime last_active;
                        uint16_t lock_count;
                        bool time_limited;
                        NUKI_TIME_WINDOW_FIELDS; /* optional group: 56 or 75 bytes */
                } authorization_entry;
                struct {
                        char name[NUKI_NAME_SIZE + 1];
                        uint8_t id_type;
                        uint8_t shared_key[NUKI_KEY_SIZE];
                        bool remote_allowed;
                        bool time_limited;
                        NUKI_TIME_WINDOW_FIELDS;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } authorization_data_invite;
                struct {
                        uint8_t nuki_state;
                        uint8_t lock_state;
                        uint8_t trigger;
                        NukiTime current_time;
                        int16_t timezone_offset;
                        /* bit 0 critical, bit 1 charging ([S23]); bits 2-7 = percent / 2 from [CLI],
                         * [PY] and [HUB] only: the V2.3.0 text lost that row (open question 2) */
                        uint8_t battery;
                        uint8_t config_update_count;
                        uint8_t lockngo_timer;
                        /* optional, by length (15..27 bytes) */
                        uint8_t last_lock_action;
                        uint8_t last_lock_action_trigger;
                        uint8_t last_lock_action_completion_status;
                        uint8_t door_sensor_state;
                        bool nightmode_active;
                        /* bits: 0 keypad reports, 1 keypad critical, 2 door sensor reports,
                         * 3 door sensor critical; meanings from [CLI][HUB] only (open question 2),
                         * so shown raw */
                        uint8_t accessory_battery_state;
                        uint8_t remote_access_status;
                        int8_t ble_strength;
                        int8_t wifi_strength;
                        uint8_t wifi_status;
                        uint8_t mqtt_status;
                        uint8_t thread_status;
                } keyturner_states;
                struct {
                        uint8_t action;
                        uint32_t app_id;
                        uint8_t flags;                              /* bit 0 auto-unlock, bit 1 force */
                        char name_suffix[NUKI_SHORT_NAME_SIZE + 1]; /* optional */
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                } lock_action;
                struct {
                        uint8_t status;
                } status;
                struct {
                        uint16_t command;
                } most_recent_command;
                struct {
                        uint16_t openings_total;
                        uint16_t closings_total;
                        uint16_t openings_since_boot;
                        uint16_t closings_since_boot;
                } openings_closings_summary;
                struct {
                        uint16_t drain;
                        uint16_t voltage;
                        bool critical;
                        uint8_t last_lock_action;
                        uint16_t start_voltage;
                        uint16_t lowest_voltage;
                        uint16_t lock_distance;
                        int8_t start_temperature;
                        uint16_t max_turn_current;
                        uint16_t battery_resistance;
                } battery_report;
                struct {
                        uint8_t error;
                        uint16_t command;
                } error_report;
                struct {
                        char name[NUKI_NAME_SIZE + 1];
                        float latitude;
                        float longitude;
                        bool auto_unlatch;
                        bool pairing_enabled;
                        bool button_enabled;
                        bool led_enabled;
                        uint8_t led_brightness;
                        int16_t timezone_offset;
                        uint8_t dst_mode;
                        uint8_t fob_action_1;
                        uint8_t fob_action_2;
                        uint8_t fob_action_3;
                        bool single_lock;
                        uint8_t advertising_mode;
                        uint16_t timezone_id;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } set_config;
                struct {
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                } request_config, request_advanced_config;
                struct {
                        uint32_t nuki_id;
                        char name[NUKI_NAME_SIZE + 1];
                        float latitude;
                        float longitude;
                        bool auto_unlatch;
                        bool pairing_enabled;
                        bool button_enabled;
                        bool led_enabled;
                        uint8_t led_brightness;
                        NukiTime current_time;
                        int16_t timezone_offset;
                        uint8_t dst_mode;
                        bool has_fob;
                        uint8_t fob_action_1;
                        uint8_t fob_action_2;
                        uint8_t fob_action_3;
                        bool single_lock;
                        uint8_t advertising_mode;
                        bool has_keypad;
                        uint8_t firmware_version[3];
                        uint8_t hardware_revision[2];
                        /* optional, by length */
                        uint8_t homekit_status;
                        uint16_t timezone_id;
                        uint8_t device_type;
                        uint8_t capabilities;
                        bool has_keypad_v2;
                        uint8_t matter_status;
                        uint8_t product_variant; /* [ESP] only */
                } config;
                struct {
                        uint32_t new_pin;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } set_security_pin;
                struct {
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } request_calibration, request_reboot, verify_security_pin, request_time_control_entries;
                struct {
                        uint8_t authenticator[NUKI_AUTHENTICATOR_SIZE];
                        uint32_t auth_id;
                } authorization_id_confirmation;
                struct {
                        uint32_t auth_id;
                        NukiTime created;
                } authorization_id_invite;
                struct {
                        NukiTime time;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } update_time;
                struct {
                        uint32_t auth_id;
                        char name[NUKI_NAME_SIZE + 1];
                        bool enabled;
                        bool remote_allowed;
                        bool time_limited;
                        NUKI_TIME_WINDOW_FIELDS;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } update_authorization_entry;
                struct {
                        uint16_t count;
                } authorization_entry_count, keypad_code_count;
                struct {
                        uint32_t start_index;
                        uint16_t count;
                        uint8_t sort_order;
                        bool total_count;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } request_log_entries;
                struct {
                        uint32_t index;
                        NukiTime timestamp;
                        uint32_t auth_id;
                        char name[NUKI_NAME_SIZE + 1];
                        uint8_t type;
                        NukiBlob data; /* depends on type; may carry padding (see nuki-json.c) */
                } log_entry;
                struct {
                        bool logging_enabled;
                        uint16_t count;
                        bool door_sensor_enabled;
                        bool door_sensor_logging_enabled;
                } log_entry_count;
                struct {
                        bool enabled;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } enable_logging;
                struct {
                        uint16_t total_degrees; /* Advanced Config only, not in Set */
                        int16_t unlocked_position_offset;
                        int16_t locked_position_offset;
                        int16_t single_locked_position_offset;
                        int16_t unlocked_to_locked_transition_offset;
                        uint8_t lockngo_timeout;
                        uint8_t single_button_press_action;
                        uint8_t double_button_press_action;
                        bool detached_cylinder;
                        uint8_t battery_type;
                        bool automatic_battery_type_detection;
                        uint8_t unlatch_duration;
                        uint16_t auto_lock_timeout;
                        bool auto_unlock_disabled;
                        bool nightmode_enabled;
                        NukiTimeOfDay nightmode_start;
                        NukiTimeOfDay nightmode_end;
                        bool nightmode_auto_lock_enabled;
                        bool nightmode_auto_unlock_disabled;
                        bool nightmode_immediate_lock_on_start;
                        /* optional, by length: later firmware, then Ultra only */
                        bool auto_lock_enabled;
                        uint8_t immediate_auto_lock_enabled; /* 0xFF = not supported */
                        bool auto_update_enabled;
                        uint8_t motor_speed;
                        bool slow_speed_during_nightmode;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE]; /* Set only */
                        uint32_t pin;                       /* Set only */
                } advanced_config, set_advanced_config;
                struct {
                        uint8_t weekdays;
                        NukiTimeOfDay time;
                        uint8_t lock_action;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } add_time_control_entry;
                struct {
                        uint8_t entry_id;
                } time_control_entry_id;
                struct {
                        uint8_t entry_id;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } remove_time_control_entry;
                struct {
                        uint8_t count;
                } time_control_entry_count;
                struct {
                        uint8_t entry_id;
                        bool enabled;
                        uint8_t weekdays;
                        NukiTimeOfDay time;
                        uint8_t lock_action;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE]; /* Update only */
                        uint32_t pin;                       /* Update only */
                } time_control_entry, update_time_control_entry;
                struct {
                        uint32_t code;
                        char name[NUKI_SHORT_NAME_SIZE + 1];
                        bool time_limited;
                        NUKI_TIME_WINDOW_FIELDS;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } add_keypad_code;
                struct {
                        uint16_t code_id;
                        NukiTime created;
                } keypad_code_id;
                struct {
                        uint16_t offset;
                        uint16_t count;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } request_keypad_codes;
                struct {
                        uint16_t code_id;
                        uint32_t code;
                        char name[NUKI_SHORT_NAME_SIZE + 1];
                        bool enabled;
                        NukiTime created;
                        NukiTime last_active;
                        uint16_t lock_count;
                        bool time_limited;
                        NUKI_TIME_WINDOW_FIELDS; /* optional group */
                } keypad_code;
                struct {
                        uint16_t code_id;
                        uint32_t code;
                        char name[NUKI_SHORT_NAME_SIZE + 1];
                        bool enabled;
                        bool time_limited;
                        NUKI_TIME_WINDOW_FIELDS;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } update_keypad_code;
                struct {
                        uint16_t code_id;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                        uint32_t pin;
                } remove_keypad_code;
                struct {
                        uint8_t source;
                        uint32_t code;
                        uint8_t action;
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                } keypad_action;
                struct {
                        uint8_t security_pin_info;
                } authorization_info;
                struct {
                        uint8_t action;
                        char name_suffix[NUKI_SHORT_NAME_SIZE + 1]; /* optional (V2.3.0) */
                        uint8_t nonce[NUKI_CHALLENGE_SIZE];
                } simple_lock_action;
        };
} NukiMsg;

/* ---- the command table ---- */

typedef enum NukiFieldType {
        NUKI_FIELD_U8,
        NUKI_FIELD_U16,
        NUKI_FIELD_U32,
        NUKI_FIELD_S8,
        NUKI_FIELD_S16,
        NUKI_FIELD_F32,
        NUKI_FIELD_BOOL,
        NUKI_FIELD_TIME,        /* NukiTime, 7 bytes */
        NUKI_FIELD_TIME_OF_DAY, /* NukiTimeOfDay, 2 bytes */
        NUKI_FIELD_BYTES,       /* uint8_t[size] */
        NUKI_FIELD_NAME,        /* char[size + 1], zero-padded on the wire */
        NUKI_FIELD_PIN,         /* uint32_t, 2 or 4 bytes on the wire */
        NUKI_FIELD_BLOB,        /* NukiBlob: the rest of the payload */
} NukiFieldType;

typedef enum NukiFieldSection {
        NUKI_SECTION_HEAD,
        NUKI_SECTION_OPTIONAL,
        NUKI_SECTION_TAIL,
} NukiFieldSection;

typedef enum NukiFieldFormat {
        NUKI_FORMAT_NUMBER,
        NUKI_FORMAT_ENUM,    /* enum_kind names the table */
        NUKI_FORMAT_COMMAND, /* u16 shown as "0x000C" */
        NUKI_FORMAT_HEX,     /* integers shown as "0x.." */
        NUKI_FORMAT_BATTERY, /* the keyturner battery byte */
        NUKI_FORMAT_VERSION, /* bytes shown as "a.b.c" */
} NukiFieldFormat;

typedef struct NukiField {
        const char *name; /* snake_case, also the JSON key */
        NukiFieldType type;
        NukiFieldSection section;
        NukiFieldFormat format;
        NukiEnumKind enum_kind;
        uint8_t size;    /* wire size for BYTES and NAME, capacity for BLOB */
        uint8_t group;   /* optional fields sharing a non-zero group come and go together */
        uint16_t offset; /* into NukiMsg */
} NukiField;

enum {
        NUKI_CMD_FLAG_FROM_CLIENT = 1U << 0,
        NUKI_CMD_FLAG_FROM_LOCK = 1U << 1,
        NUKI_CMD_FLAG_CHALLENGE = 1U << 2, /* carries the nonce of a fresh challenge */
        NUKI_CMD_FLAG_PIN = 1U << 3,       /* ends with the security PIN */
        NUKI_CMD_FLAG_EXTRA_OK = 1U << 4,  /* trailing unknown bytes are ignored */
        NUKI_CMD_FLAG_ENCRYPTED = 1U << 5, /* sent encrypted after pairing */
        NUKI_CMD_FLAG_PLAIN = 1U << 6,     /* may be sent unencrypted */
};

typedef struct NukiCommand {
        uint16_t id;
        NukiVariant variant;
        const char *name; /* snake_case */
        unsigned flags;
        const NukiField *fields;
        size_t n_fields;
} NukiCommand;

/* The descriptor, or NULL. */
const NukiCommand *nuki_command_find(uint16_t id, NukiVariant variant);
/* snake_case name, or NULL for unknown ids. */
const char *nuki_command_name(uint16_t id);
/* The whole table (for tests, fuzzing, JSON). */
size_t nuki_command_table(const NukiCommand **ret);

/* Initialise a message of this command (zeroed, n_optional = NUKI_OPTIONAL_ALL). */
void nuki_msg_init(NukiMsg *m, uint16_t command, NukiVariant variant);
void nuki_msg_wipe(NukiMsg *m);

/* Payload bytes of m into out: the length, or a negative errno. */
int nuki_msg_encode_payload(const NukiMsg *m, unsigned pin_size, uint8_t *out, size_t size);
/* Decode a payload (any variant whose layout fits). */
int nuki_msg_decode_payload(uint16_t command, const uint8_t *payload, size_t len, unsigned pin_size,
                            NukiMsg *ret);
static inline int nuki_msg_decode_frame(const NukiFrame *f, unsigned pin_size, NukiMsg *ret)
{
        return nuki_msg_decode_payload(f->command, f->payload, f->payload_len, pin_size, ret);
}

/* Whole frames. */
int nuki_msg_encode_plain(const NukiMsg *m, unsigned pin_size, uint8_t *out, size_t size);
int nuki_msg_encode_encrypted(const NukiMsg *m, unsigned pin_size, const uint8_t key[NUKI_KEY_SIZE],
                              const uint8_t nonce[NUKI_NONCE_SIZE], uint32_t auth_id, uint8_t *out,
                              size_t size);

/* Fill the challenge nonce / security PIN field(s) of a message: -ENOENT if it has none.
 * Set Security PIN: nuki_msg_set_pin() sets the current PIN (the tail field). */
int nuki_msg_set_nonce(NukiMsg *m, const uint8_t nonce[NUKI_CHALLENGE_SIZE]);
int nuki_msg_set_pin(NukiMsg *m, uint32_t pin);
int nuki_msg_get_nonce(const NukiMsg *m, uint8_t ret[NUKI_CHALLENGE_SIZE]);
int nuki_msg_get_pin(const NukiMsg *m, uint32_t *ret);

/* Is field i of the descriptor present in m (optional fields by n_optional)? */
bool nuki_msg_field_present(const NukiMsg *m, const NukiCommand *c, size_t i);

/* Keyturner battery byte. */
static inline bool nuki_battery_critical(uint8_t b)
{
        return b & 0x01;
}
static inline bool nuki_battery_charging(uint8_t b)
{
        return b & 0x02;
}
static inline unsigned nuki_battery_percent(uint8_t b)
{
        return (unsigned) (b >> 2) * 2U;
}
