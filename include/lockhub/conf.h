/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The configuration file, /etc/lockhub/lockhub.conf: systemd-style INI.
 *
 *   [Section]            one of Hub, Bluetooth, MQTT, Health, Codes, Store, or "Lock NAME"
 *   Key=value            whitespace around key and value is trimmed
 *   # or ; comment       only as the first non-blank character of a line
 *
 * A key given twice takes the last value; an empty value ("Key=") resets the key to its
 * default. Every value is checked (syntax, range, cross-field rules) and every problem of
 * a file is reported in one pass, each as "FILE:LINE: message". Errors make the whole
 * parse fail, so a caller holding a working Conf keeps it (SIGHUP re-reads). Unknown keys
 * and sections are warnings.
 *
 * Secrets never live in this file: only paths to files that hold them (PasswordFile=,
 * UnlockCodeFile=), and systemd credentials take precedence over those files.
 *
 * Ownership: a Conf and everything it points to belong to whoever got it from
 * conf_parse()/conf_load()/conf_new_defaults() and is released with conf_free(). A
 * Conf is never modified after it is returned; a reload builds a new one.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/macro.h"

#ifndef LOCKHUB_SYSCONFDIR
#define LOCKHUB_SYSCONFDIR "/etc"
#endif
#define CONF_DEFAULT_PATH LOCKHUB_SYSCONFDIR "/lockhub/lockhub.conf"

/* Files larger than this are refused (-EFBIG); lines longer than this are errors. */
#define CONF_FILE_SIZE_MAX ((size_t) 1024 * 1024)
#define CONF_LINE_MAX      4096
/* At most this many diagnostics are kept; further errors are still counted. */
#define CONF_DIAGS_MAX    100
#define CONF_ADAPTERS_MAX 8

typedef enum ConfDriftPolicy {
        CONF_DRIFT_HUB,  /* the hub's database wins: changes made on the lock are reverted */
        CONF_DRIFT_LOCK, /* the lock wins: changes made on the lock are adopted */
        _CONF_DRIFT_POLICY_MAX,
} ConfDriftPolicy;

typedef enum ConfMqttProtocol {
        CONF_MQTT_V311,
        CONF_MQTT_V5,
        _CONF_MQTT_PROTOCOL_MAX,
} ConfMqttProtocol;

typedef enum ConfScanMode {
        CONF_SCAN_LE,    /* a filtered LE discovery: every advert is heard */
        CONF_SCAN_QUIET, /* no filter, with short filtered windows (lockhub.conf(5)) */
        _CONF_SCAN_MODE_MAX,
} ConfScanMode;

/* "[Lock NAME]": per-lock overrides. -1 / NULL means "inherit the hub-wide setting";
 * use conf_lock_policy() rather than reading these directly. */
typedef struct ConfLock {
        char *name;
        unsigned line; /* where the section first appeared, for messages */
        int require_unlock_code;
        char *unlock_code_file;
        int allow_remote_unlock;
        int allow_remote_unlatch;
} ConfLock;

typedef struct ConfHub {
        char *name;                   /* Name=: shown as the hub device in Home Assistant */
        int log_level;                /* LogLevel=: LOG_EMERG..LOG_DEBUG */
        unsigned time_sync_drift_sec; /* TimeSyncDriftSec=: 0 = never set lock clocks */
} ConfHub;

typedef struct ConfBluetooth {
        char **adapters;          /* Adapter=: NULL = auto; else hciN or MAC, NULL-terminated */
        unsigned max_connections; /* per adapter */
        unsigned connect_timeout_sec;
        unsigned idle_disconnect_sec;
        unsigned command_timeout_sec;
        bool scan_while_paired;
        ConfScanMode scan_mode;
} ConfBluetooth;

typedef struct ConfMqtt {
        bool enabled;
        char *host;          /* NULL when socket is set */
        unsigned port;       /* 1883, or 8883 with TLS=yes unless Port= was given */
        char *socket;        /* Unix socket path or NULL */
        char *username;      /* NULL = anonymous */
        char *password_file; /* fallback for the credential "mqtt-password" */
        char *client_id;     /* NULL = derived by the MQTT client */
        char *base_topic;
        char *discovery_prefix;
        bool discovery;
        ConfMqttProtocol protocol;
        unsigned keepalive_sec;
        bool tls;
        char *ca_file, *ca_path, *cert_file, *key_file;
        bool tls_insecure;
        unsigned reconnect_min_sec, reconnect_max_sec;
        unsigned command_expiry_sec; /* 0 = reject commands for unreachable locks at once */
        bool require_unlock_code;
        char *unlock_code_file; /* fallback for the credential "mqtt-unlock-code" */
        bool allow_remote_unlock;
        bool allow_remote_unlatch;
        bool allow_remote_code_changes; /* users, codes and restore over MQTT */
} ConfMqtt;

typedef struct ConfHealth {
        unsigned battery_low_percent;
        unsigned battery_critical_percent;
        unsigned battery_window_sec;
        int weak_signal_dbm;
        unsigned not_seen_sec;
        unsigned jam_window_sec;
        unsigned jam_threshold;
        unsigned recovery_max_attempts;
        unsigned retry_backoff_min_sec, retry_backoff_max_sec;
        bool adapter_power_cycle;
        char *known_firmware_file;
} ConfHealth;

typedef struct ConfCodes {
        ConfDriftPolicy drift_policy;
        bool reprovision_after_reset;
        unsigned sync_retry_max_sec;
} ConfCodes;

typedef struct ConfStore {
        unsigned event_retention_sec;   /* 0 = no age limit */
        unsigned event_retention_count; /* 0 = no count limit */
        unsigned sample_retention_sec;  /* 0 = no age limit */
} ConfStore;

typedef struct Conf {
        ConfHub hub;
        ConfBluetooth bluetooth;
        ConfMqtt mqtt;
        ConfHealth health;
        ConfCodes codes;
        ConfStore store;
        ConfLock *locks; /* [Lock NAME] sections, in order of first appearance */
        size_t n_locks;
} Conf;

/* The effective MQTT command policy for one lock, overrides applied. */
typedef struct ConfLockPolicy {
        bool require_unlock_code;
        const char *unlock_code_file; /* borrowed from the Conf; may be NULL */
        bool allow_remote_unlock;
        bool allow_remote_unlatch;
} ConfLockPolicy;

typedef enum ConfDiagLevel {
        CONF_DIAG_ERROR,
        CONF_DIAG_WARNING,
} ConfDiagLevel;

typedef struct ConfDiag {
        ConfDiagLevel level;
        unsigned line; /* 1-based; 0 when the problem concerns the whole file */
        char *message; /* complete: "FILE:LINE: text" (or "FILE: text") */
} ConfDiag;

typedef struct ConfDiags {
        ConfDiag *items;
        size_t n_items;
        size_t n_errors; /* counted even beyond CONF_DIAGS_MAX */
        size_t n_warnings;
} ConfDiags;

/* A Conf holding every default. Returns NULL only when out of memory. */
Conf *conf_new_defaults(void);
Conf *conf_free(Conf *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Conf *, conf_free);

ConfDiags *conf_diags_free(ConfDiags *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(ConfDiags *, conf_diags_free);

/*
 * Parses len bytes of text (need not be NUL-terminated; may contain anything).
 * path is used in messages only. Does not log.
 * Returns 0 and *ret on success (warnings possible), -EINVAL when any error was found
 * (*ret untouched), -ENOMEM. When ret_diags is non-NULL it always receives the
 * diagnostics (possibly empty) on 0 and -EINVAL.
 */
int conf_parse(const char *path, const char *text, size_t len, Conf **ret, ConfDiags **ret_diags);

/* Reads and parses a file. Like conf_parse(), plus -ENOENT, -EACCES, -EFBIG, -EISDIR…
 * for a file that cannot be read, with one diagnostic (line 0) naming the path. */
int conf_read_file(const char *path, Conf **ret, ConfDiags **ret_diags);

/* conf_read_file() that logs every diagnostic (errors with log_error, warnings with
 * log_warning, journal fields CONFIG_FILE= and CONFIG_LINE=), and a summary line on
 * failure. Returns as conf_read_file(). */
int conf_load(const char *path, Conf **ret);

/* NULL when no [Lock NAME] section names this lock. */
const ConfLock *conf_find_lock(const Conf *c, const char *name);
void conf_lock_policy(const Conf *c, const char *name, ConfLockPolicy *ret);

/* The effective configuration as lockhub.conf text, every key with its value (no
 * secrets exist in a Conf). For support bundles and "bridge/info". */
int conf_format(const Conf *c, char **ret);

const char *conf_drift_policy_to_string(ConfDriftPolicy p);
const char *conf_mqtt_protocol_to_string(ConfMqttProtocol p);
const char *conf_scan_mode_to_string(ConfScanMode p);
