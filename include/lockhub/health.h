/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Health: the recovery ladder that repairs a lock's link by itself, the analytics over a
 * lock's history (battery, link, installation, firmware), and the diagnosis that turns
 * both into plain findings with a next step for a person.
 *
 * Three layers, each usable alone:
 *
 *  - Recovery (src/health/ladder.c). A HealthRecovery holds one HealthLadder per lock
 *    and what it knows of the adapters and bluetoothd. It is a pure state machine: it
 *    is told what happened (health_ladder_*() and health_recovery_*() below) and acts
 *    only through HealthLadderOps and a HealthClock, so tests drive it with a fake clock
 *    and the daemon wires it to sd-event and the BlueZ client. No callback is ever made
 *    from inside health_recovery_new()/health_recovery_add_lock(); ops may be called
 *    from inside any event function, and an op must not free the ladder it was given.
 *
 *  - Analytics (src/health/analytics.c, firmware.c). Pure functions over arrays of
 *    (time, value) points: no store, no clock of their own ("now" is a parameter).
 *
 *  - Diagnosis (src/health/diagnose.c). Findings from the analytics, the lock's state
 *    and the recovery attempts; health_diagnose() is pure, health_diagnose_lock() reads
 *    the store. Renderings: JSON (json-c) and text.
 *
 * Times: the ladder's clock is monotonic (µs); everything recorded or analysed is
 * CLOCK_REALTIME µs like the store. Errors are -errno. Nothing here sees a secret.
 */

#include <inttypes.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/conf.h"
#include "lockhub/lock.h"
#include "lockhub/macro.h"
#include "lockhub/store.h"

#define HEALTH_USEC_PER_SEC  1000000ULL
#define HEALTH_USEC_PER_MIN  (60ULL * HEALTH_USEC_PER_SEC)
#define HEALTH_USEC_PER_HOUR (60ULL * HEALTH_USEC_PER_MIN)
#define HEALTH_USEC_PER_DAY  (24ULL * HEALTH_USEC_PER_HOUR)

/* ==== recovery ladder ================================================================= */

typedef struct HealthRecovery HealthRecovery;
typedef struct HealthLadder HealthLadder;

/* The rungs, in climbing order, plus what is recorded beside them. Names are the store's
 * recovery_attempts.step values. */
typedef enum HealthStep {
        HEALTH_STEP_RETRY,         /* "retry": the driver repeats the pending work */
        HEALTH_STEP_RECONNECT,     /* "reconnect": disconnect, connect, repeat the work */
        HEALTH_STEP_POWER_CYCLE,   /* "adapter-power-cycle": Powered off and on */
        HEALTH_STEP_ADAPTER_MOVE,  /* "adapter-move": connect through another adapter */
        HEALTH_STEP_REMOVE_DEVICE, /* "device-remove": RemoveDevice, rediscover, reconnect */
        HEALTH_STEP_NEEDS_REPAIR,  /* "needs-repair": the lock rejects our pairing */
        HEALTH_STEP_REPROVISION,   /* "reprovision": recorded by whoever re-provisions */
        HEALTH_STEP_BLUEZ_RESTART, /* "bluez-restart": bluetoothd came back (hub-wide) */
        _HEALTH_STEP_MAX,
} HealthStep;

typedef enum HealthOutcome {
        HEALTH_OUTCOME_SUCCESS,
        HEALTH_OUTCOME_FAILURE,
        HEALTH_OUTCOME_SKIPPED, /* the rung was passed over; reason says why */
        HEALTH_OUTCOME_ABORTED, /* overtaken: bluetoothd or the adapter went away */
        _HEALTH_OUTCOME_MAX,
} HealthOutcome;

typedef enum HealthLadderState {
        HEALTH_LADDER_IDLE,         /* working; nothing to do */
        HEALTH_LADDER_BACKOFF,      /* waiting for the timer before the next step */
        HEALTH_LADDER_RUNNING,      /* a step was taken; waiting for its outcome */
        HEALTH_LADDER_WAIT_LOCK,    /* not heard from: waiting for an advert */
        HEALTH_LADDER_WAIT_ADAPTER, /* bluetoothd or every usable adapter is away */
        HEALTH_LADDER_GAVE_UP,      /* every step spent; a slow probe now and then */
        HEALTH_LADDER_NEEDS_REPAIR, /* until health_ladder_repaired() */
        _HEALTH_LADDER_STATE_MAX,
} HealthLadderState;

/* What failed: a connection attempt, or a command on a link that was up. */
typedef enum HealthFailureKind {
        HEALTH_FAILURE_CONNECT,
        HEALTH_FAILURE_COMMAND,
        _HEALTH_FAILURE_KIND_MAX,
} HealthFailureKind;

/* How the ladder reads an error (health_error_class()). */
typedef enum HealthErrorClass {
        HEALTH_ERROR_LINK,    /* the radio path: climb */
        HEALTH_ERROR_ADAPTER, /* points at the adapter or bluetoothd (evidence for that rung) */
        HEALTH_ERROR_GATT,    /* characteristic or device missing, ATT error: stale GATT cache */
        HEALTH_ERROR_AUTH,    /* the lock rejects the pairing: needs-repair */
        HEALTH_ERROR_LOCK,    /* the lock answered (jammed, busy, invalid): the link works */
        HEALTH_ERROR_IGNORE,  /* cancelled, or bluetoothd gone (reported separately) */
        _HEALTH_ERROR_CLASS_MAX,
} HealthErrorClass;

/* One recorded step. Strings are borrowed for the duration of the call. */
typedef struct HealthAttempt {
        const char *lock;    /* NULL: an adapter or bluetoothd only */
        void *lock_data;     /* the ladder's data, NULL when lock is NULL */
        const char *adapter; /* NULL: not known / n/a */
        HealthStep step;
        unsigned attempt; /* n-th step of this kind in the current episode, >= 1 */
        HealthOutcome outcome;
        uint64_t start_usec;    /* realtime */
        uint64_t duration_usec; /* monotonic difference */
        int error;              /* 0, or the -errno that ended the step */
        const char *reason;     /* why this step (or why skipped); never NULL */
} HealthAttempt;

/*
 * Actions. Per-lock ops get the ladder (health_ladder_get_name()/get_data()). Each
 * returns 0 when the action was started: its outcome is the next health_ladder_success()
 * or health_ladder_failure() for that lock (or, for the power cycle,
 * health_recovery_power_cycle_done()). A negative return means it could not be started
 * and counts as a failed step. A step that hears nothing within step_timeout_usec fails
 * with -ETIMEDOUT.
 *
 *  retry:    repeat the pending work (the command or connection that failed). A lock
 *            action must not be sent twice: refresh the state first and send it again
 *            only when the lock did not carry it out.
 *  reconnect: disconnect (if connected), connect again, then as retry.
 *  power_cycle_adapter: Powered=false then true on the adapter (bluez_client_power_cycle);
 *            when done call health_recovery_power_cycle_done(). The ladder then asks the
 *            lock that triggered it, and every other waiting lock on it, to reconnect.
 *  move_adapter: connect this lock through another adapter than `from` from now on; NULL
 *            when not supported (then the adapter is power-cycled).
 *  remove_device: Adapter1.RemoveDevice (bluez_client_remove_device), keep discovering,
 *            and connect again when the device reappears; then as retry.
 *  mark_needs_repair: lock_set_needs_repair(l, true) and tell people how to re-pair.
 *  record_attempt: store it (health_attempt_store()) and announce it; the ladder has
 *            logged it to the journal already (with a MESSAGE_ID).
 *  adapter_busy: is another lock than `except` on this adapter in the middle of an
 *            action (motor turning, pairing)? NULL: never.
 *  state_changed: optional, after every state change (MQTT health, reachability).
 */
typedef struct HealthLadderOps {
        int (*retry)(HealthLadder *l, void *userdata);
        int (*reconnect)(HealthLadder *l, void *userdata);
        int (*power_cycle_adapter)(HealthRecovery *r, const char *adapter, void *userdata);
        int (*move_adapter)(HealthLadder *l, const char *from, void *userdata);
        int (*remove_device)(HealthLadder *l, void *userdata);
        void (*mark_needs_repair)(HealthLadder *l, const char *reason, void *userdata);
        void (*record_attempt)(const HealthAttempt *a, void *userdata);
        bool (*adapter_busy)(const char *adapter, HealthLadder *except, void *userdata);
        void (*state_changed)(HealthLadder *l, HealthLadderState old, void *userdata);
} HealthLadderOps;

/*
 * The clock and one timer per ladder. now/realtime in µs. timer_set arms the ladder's
 * timer to call health_ladder_timer_elapsed(l) once at `usec` (monotonic), replacing an
 * earlier setting; usec 0 disarms. timer_data is a per-ladder slot for the
 * implementation (health_ladder_timer_slot()), released by timer_release when the ladder
 * is freed. random: jitter source; NULL: internal.
 */
typedef struct HealthClock {
        uint64_t (*now)(void *userdata);
        uint64_t (*realtime)(void *userdata);
        int (*timer_set)(HealthLadder *l, uint64_t usec, void *userdata);
        uint32_t (*random)(void *userdata);
        void (*timer_release)(HealthLadder *l, void *userdata); /* optional: the ladder is freed */
} HealthClock;

typedef struct HealthRecoveryConfig {
        unsigned max_attempts;        /* steps taken per failure episode before giving up */
        uint64_t backoff_min_usec;    /* before the first step; doubles per step */
        uint64_t backoff_max_usec;    /* cap, and the period of the probes after giving up */
        bool adapter_power_cycle;     /* allowed at all */
        uint64_t step_timeout_usec;   /* a step with no outcome fails; 0: 3 min */
        uint64_t lock_silent_usec;    /* not heard from this long: wait, do not climb; 0: 2 min */
        uint64_t adapter_silent_usec; /* an adapter that heard nothing this long is suspect; 0: 2 min */
        uint64_t adapter_cycle_max_interval_usec; /* cap of the growing wait between our power
                                                   * cycles of one adapter; 0: 60 min */
        uint64_t evidence_window_usec;            /* "several locks failing" within; 0: 10 min */
} HealthRecoveryConfig;

void health_recovery_config_from_conf(const Conf *c, HealthRecoveryConfig *ret);

int health_recovery_new(const HealthRecoveryConfig *config, const HealthClock *clock, void *clock_userdata,
                        const HealthLadderOps *ops, void *userdata, HealthRecovery **ret);
/* Frees every ladder (disarming their timers, no ops called). Accepts NULL. */
HealthRecovery *health_recovery_free(HealthRecovery *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(HealthRecovery *, health_recovery_free);
/* New limits apply from the next step. */
void health_recovery_set_config(HealthRecovery *r, const HealthRecoveryConfig *config);

/* name is copied (used in records and logs); data is the caller's (e.g. the Lock). -EEXIST
 * when a ladder of that name exists. The ladder belongs to the recovery. */
int health_recovery_add_lock(HealthRecovery *r, const char *name, void *data, HealthLadder **ret);
HealthLadder *health_recovery_find(HealthRecovery *r, const char *name);
/* Removes and frees one ladder (a lock unpaired); a running step is recorded as aborted. */
void health_ladder_remove(HealthLadder *l);

/* ---- what happened to a lock ---- */
/* A connection or command failed with -errno (adapter: the one used, or NULL). */
void health_ladder_failure(HealthLadder *l, HealthFailureKind kind, int error, const char *adapter);
/* A command or connection worked: the episode ends, the ladder resets. */
void health_ladder_success(HealthLadder *l, const char *adapter);
/* An advert of the lock (through adapter). Frequent: cheap when nothing waits on it. */
void health_ladder_seen(HealthLadder *l, const char *adapter);
/* The lock's GATT table changed (Service Changed, or an expected characteristic is
 * missing after ServicesResolved): the next failure goes straight to remove-device. */
void health_ladder_services_changed(HealthLadder *l);
/* The lock was paired again: NEEDS_REPAIR → IDLE (re-provisioning is the caller's). */
void health_ladder_repaired(HealthLadder *l);
void health_ladder_timer_elapsed(HealthLadder *l);

/* ---- what happened around the locks ---- */
/* bluetoothd appeared (up) or went away (NameOwnerChanged for org.bluez). */
void health_recovery_bluez(HealthRecovery *r, bool up);
/* An adapter appeared, went away, or was powered on/off (by anyone). */
void health_recovery_adapter(HealthRecovery *r, const char *adapter, bool present, bool powered);
/* Any advert at all came through this adapter (the adapter is not deaf). */
void health_recovery_adapter_heard(HealthRecovery *r, const char *adapter);
/* The power cycle asked through ops->power_cycle_adapter ended (error 0 or -errno). */
void health_recovery_power_cycle_done(HealthRecovery *r, const char *adapter, int error);

/* ---- inspection ---- */
typedef struct HealthLadderStatus {
        HealthLadderState state;
        HealthStep step;             /* running or next step; valid in BACKOFF/RUNNING */
        unsigned steps_taken;        /* in the current episode */
        int last_error;              /* 0 or -errno of the last failure */
        uint64_t episode_start_usec; /* realtime; 0 when IDLE */
        const char *adapter;         /* last adapter used or seen on; may be NULL */
        const char *reason;          /* why the current step/state; never NULL */
} HealthLadderStatus;

void health_ladder_get_status(const HealthLadder *l, HealthLadderStatus *ret);
HealthLadderState health_ladder_get_state(const HealthLadder *l);
const char *health_ladder_get_name(const HealthLadder *l);
void *health_ladder_get_data(const HealthLadder *l);
void **health_ladder_timer_slot(HealthLadder *l);
HealthRecovery *health_ladder_get_recovery(const HealthLadder *l);

HealthErrorClass health_error_class(HealthFailureKind kind, int error);
const char *health_step_to_string(HealthStep s);
const char *health_outcome_to_string(HealthOutcome o);
const char *health_ladder_state_to_string(HealthLadderState s);
/* The catalog MESSAGE_ID (32 hex) logged for a recorded step with this outcome. */
const char *health_attempt_message_id(HealthStep step, HealthOutcome outcome);

/* Backoff before step n (1-based) of an episode: min·2^(n-1), capped at max, with
 * ±20% jitter from rnd, never below min nor above max. Pure. */
uint64_t health_backoff_usec(uint64_t min_usec, uint64_t max_usec, unsigned n, uint32_t rnd);

/* store_recovery_append() plus a "recovery" event (source hub) with the same facts, in
 * one transaction when none is open. lock_id 0: hub-wide. */
int health_attempt_store(Store *s, int64_t lock_id, const HealthAttempt *a);

/* The sd-event implementation of HealthClock (clock_userdata: the sd_event). */
extern const HealthClock health_clock_event;

/* ==== analytics ======================================================================== */

typedef struct HealthPoint {
        uint64_t t_usec;
        double v;
} HealthPoint;

/* Theil–Sen: the median of pairwise slopes (per second) and the median intercept at the
 * first point's time. Above HEALTH_FIT_MAX_POINTS points, an even subsample is used.
 * -EDOM with fewer than 2 points of distinct times. Pure. */
#define HEALTH_FIT_MAX_POINTS 400U
int health_theil_sen(const HealthPoint *p, size_t n, double *ret_slope_per_sec, double *ret_intercept);

/* Quantile q (0..1) with linear interpolation of a copy of v; NAN when n == 0. */
double health_quantile(const double *v, size_t n, double q);
double health_median(const double *v, size_t n);

#define HEALTH_FIT_FALL        10.0
#define HEALTH_FIT_FALL_POINTS 5U

typedef struct HealthBatteryParams {
        uint64_t window_usec;          /* history fitted (BatteryWindowSec=) */
        uint64_t min_span_usec;        /* a fit needs at least this much time (0: 12 h), or a fall
                                        * of HEALTH_FIT_FALL points over HEALTH_FIT_FALL_POINTS
                                        * readings */
        uint64_t recent_usec;          /* "recent" for the abnormal-drain test; 0: 3 days */
        double replaced_jump;          /* a rise of this many points is a new battery; 0: 15 */
        double abnormal_factor;        /* recent rate above factor × own baseline; 0: 2.0 */
        double abnormal_floor_per_day; /* and above this %/day; 0: 0.5 */
} HealthBatteryParams;

typedef struct HealthBatteryStats {
        bool has_level;
        double level; /* latest %, from the newest sample */
        uint64_t level_usec;
        size_t n_fit; /* points in the fit (since the last battery change, in the window) */
        bool has_rate;
        double drain_per_day; /* %/day, positive while draining (Theil–Sen) */
        double days_left;     /* to 0 %, from the fitted line; -1 unknown or not draining */
        bool replaced;        /* a battery change was seen in the window */
        uint64_t replaced_usec;
        bool has_baseline;
        double baseline_per_day; /* drain before the recent period, same battery history */
        double recent_per_day;
        bool abnormal; /* recent drain well above this lock's own baseline */
} HealthBatteryStats;

/* pct: battery-percent samples, oldest first. */
void health_battery_analyze(const HealthPoint *pct, size_t n, uint64_t now_usec,
                            const HealthBatteryParams *p, HealthBatteryStats *ret);

typedef struct HealthLinkInput {
        const HealthPoint *rssi; /* dBm */
        size_t n_rssi;
        const HealthPoint *connect_ms; /* one per successful connection */
        size_t n_connect_ms;
        const HealthPoint *connect_failed; /* one per failed attempt */
        size_t n_connect_failed;
        const HealthPoint *latency_ms;
        size_t n_latency;
        const uint64_t *lost_usec; /* link events with reachable=false or unexpected drops */
        size_t n_lost;
        uint64_t last_seen_usec; /* 0: never */
        uint64_t since_usec;     /* start of the window analysed */
} HealthLinkInput;

typedef struct HealthLinkStats {
        size_t n_rssi;
        double rssi_median, rssi_min, rssi_spread; /* spread: p90 - p10 */
        unsigned connects, connect_failures;
        double connect_success_rate; /* 0..1, -1 unknown */
        double connect_ms_median;    /* NAN unknown */
        size_t n_latency;
        double latency_p50, latency_p90, latency_p99; /* NAN unknown */
        unsigned lost;
        double lost_per_hour;
        bool ever_seen;
        uint64_t not_seen_usec; /* now - last seen */
} HealthLinkStats;

void health_link_analyze(const HealthLinkInput *in, uint64_t now_usec, HealthLinkStats *ret);

typedef struct HealthInstallInput {
        const uint64_t *jam_usec; /* times the lock reported a jam */
        size_t n_jams;
        const HealthPoint *motor_ms;
        size_t n_motor;
        const uint64_t *door_open_locked_usec; /* door opened while the lock was locked */
        size_t n_door_open_locked;
        bool uncalibrated; /* current state */
        uint64_t window_usec;
} HealthInstallInput;

typedef struct HealthInstallStats {
        unsigned jams; /* in the window */
        double jams_per_week;
        uint64_t last_jam_usec;
        size_t n_motor;
        double motor_median_ms, motor_recent_median_ms, motor_baseline_median_ms; /* NAN unknown */
        double motor_trend_ms_per_day; /* Theil–Sen over the window; NAN unknown */
        bool motor_slowing;            /* recent median ≥ 1.3 × baseline and ≥ +150 ms */
        unsigned door_open_locked;
        uint64_t last_door_open_locked_usec;
        bool uncalibrated;
} HealthInstallStats;

void health_install_analyze(const HealthInstallInput *in, uint64_t now_usec, HealthInstallStats *ret);

/* ---- firmware ----
 * conf/known-firmware.json (installed as $(DATADIR)/known-firmware.json):
 *   { "format": 1, "updated": "YYYY-MM-DD",
 *     "models": [ { "model": "Nuki Smart Lock 3.0",        exact lock model string
 *                   "latest": "3.6.9",                      latest known-good version
 *                   "minimum": "3.5.0",                     older than this: outdated (optional)
 *                   "known_bad": [ { "version": "3.3.5", "reason": "..." } ] } ] }
 * Versions are dotted numbers compared numerically ("3.10.0" > "3.9.2"). Unknown keys
 * are ignored so the format can grow. */
typedef struct HealthKnownFirmware HealthKnownFirmware;

typedef enum HealthFirmwareVerdict {
        HEALTH_FIRMWARE_UNKNOWN,  /* no entry for the model, or no version */
        HEALTH_FIRMWARE_CURRENT,  /* at or above latest */
        HEALTH_FIRMWARE_OLDER,    /* below latest (and not below minimum) */
        HEALTH_FIRMWARE_OUTDATED, /* below minimum */
        HEALTH_FIRMWARE_BAD,      /* listed as known-bad */
        _HEALTH_FIRMWARE_VERDICT_MAX,
} HealthFirmwareVerdict;

/* -EINVAL with a message in *ret_error (may be NULL) for a malformed file. */
int health_known_firmware_parse(const char *text, size_t len, HealthKnownFirmware **ret, char **ret_error);
int health_known_firmware_load(const char *path, HealthKnownFirmware **ret, char **ret_error);
HealthKnownFirmware *health_known_firmware_free(HealthKnownFirmware *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(HealthKnownFirmware *, health_known_firmware_free);
/* ret_latest/ret_reason: borrowed from k (NULL when none). */
HealthFirmwareVerdict health_firmware_check(const HealthKnownFirmware *k, const char *model,
                                            const char *firmware, const char **ret_latest,
                                            const char **ret_reason);
/* Dotted-number comparison: <0, 0, >0; non-numeric parts compare as strings. */
int health_version_compare(const char *a, const char *b);

/* ==== diagnosis ========================================================================= */

typedef enum HealthSeverity {
        HEALTH_SEVERITY_INFO,
        HEALTH_SEVERITY_WARNING,
        HEALTH_SEVERITY_ERROR,
        HEALTH_SEVERITY_CRITICAL,
        _HEALTH_SEVERITY_MAX,
} HealthSeverity;

/* Store meta key (printf with the lock's store id): set by the lock's driver while the lock
 * rejects the stored security PIN, to JSON {"since_usec", "request", "error"}; "" or
 * absent otherwise. */
#define HEALTH_META_PIN_REJECTED "lock.pin-rejected.%" PRIi64

/* Stable finding ids; the catalog has one MESSAGE_ID each. */
typedef enum HealthFindingId {
        HEALTH_FINDING_NEEDS_REPAIR,
        HEALTH_FINDING_BATTERY_CRITICAL,
        HEALTH_FINDING_BATTERY_LOW,
        HEALTH_FINDING_BATTERY_DRAIN_FAST,
        HEALTH_FINDING_BATTERY_DRAIN_ABNORMAL,
        HEALTH_FINDING_ACCESSORY_BATTERY,
        HEALTH_FINDING_NOT_SEEN,
        HEALTH_FINDING_SIGNAL_WEAK,
        HEALTH_FINDING_LINK_UNSTABLE,
        HEALTH_FINDING_JAMS,
        HEALTH_FINDING_MOTOR_SLOW,
        HEALTH_FINDING_DOOR_OPEN_LOCKED,
        HEALTH_FINDING_UNCALIBRATED,
        HEALTH_FINDING_FIRMWARE_BAD,
        HEALTH_FINDING_FIRMWARE_OUTDATED,
        HEALTH_FINDING_RECOVERY_EXHAUSTED,
        HEALTH_FINDING_PIN_REJECTED,
        _HEALTH_FINDING_MAX,
} HealthFindingId;

typedef struct HealthFinding {
        HealthFindingId id;
        HealthSeverity severity;
        unsigned likelihood; /* 0..100: how likely this is what is wrong; the sort key */
        char *title;         /* one line */
        char *evidence;      /* numbers and times, one or more sentences */
        char *next_step;     /* what a person should do */
} HealthFinding;

/* What the hub already tried, newest last. */
typedef struct HealthTried {
        uint64_t ts_usec;
        HealthStep step;
        HealthOutcome outcome;
        unsigned attempt;
        uint64_t duration_usec;
        char *adapter; /* may be NULL */
} HealthTried;

/* Everything health_diagnose() looks at; all borrowed. */
typedef struct HealthDiagnoseInput {
        const char *lock;
        const char *model, *firmware; /* may be NULL */
        LockState state;
        LockDoor door;
        const LockBattery *battery; /* NULL: unknown */
        bool needs_repair;
        uint64_t pin_rejected_usec; /* the lock rejected the stored PIN then (realtime); 0: it did not */
        const char *pin_rejected_request; /* the request it rejected, or NULL */
        const HealthLadderStatus *ladder; /* NULL: no live ladder */
        const HealthPoint *battery_pct;
        size_t n_battery_pct;
        HealthLinkInput link;
        HealthInstallInput install;
        const HealthKnownFirmware *known_firmware; /* may be NULL */
        uint64_t firmware_changed_usec;            /* last firmware change in the battery window; 0: none */
        const char *firmware_previous;             /* the version before it, or NULL */
        const HealthTried *tried;
        size_t n_tried;
        const ConfHealth *conf;
        uint64_t now_usec;
} HealthDiagnoseInput;

typedef struct HealthReport {
        char *lock, *model, *firmware;
        uint64_t now_usec;
        HealthFinding *findings; /* ordered: likelihood, then severity, then id */
        size_t n_findings;
        HealthTried *tried;
        size_t n_tried;
        HealthBatteryStats battery;
        HealthLinkStats link;
        HealthInstallStats install;
        HealthFirmwareVerdict firmware_verdict;
        char *firmware_latest;          /* NULL unknown */
        HealthLadderState ladder_state; /* _HEALTH_LADDER_STATE_MAX: no live ladder */
} HealthReport;

int health_diagnose(const HealthDiagnoseInput *in, HealthReport **ret);
HealthReport *health_report_free(HealthReport *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(HealthReport *, health_report_free);

/* Reads the lock's history from the store (samples in the battery and jam windows,
 * events, recovery attempts of the last 7 days) and diagnoses it. live: the lock as the
 * daemon holds it now (state, battery, door), or NULL to use the stored last state.
 * ladder: the live ladder or NULL. known_firmware may be NULL. */
int health_diagnose_lock(Store *s, const Conf *conf, const HealthKnownFirmware *known_firmware,
                         int64_t lock_id, const Lock *live, const HealthLadderStatus *ladder,
                         uint64_t now_usec, HealthReport **ret);

/* The worst severity among the findings (INFO when none) and the headline for the MQTT
 * health sensor: "ok" or the first finding's id string. */
HealthSeverity health_report_worst(const HealthReport *r);
const char *health_report_headline(const HealthReport *r);
/* true when a finding of severity WARNING or above exists: the "problem" binary sensor. */
bool health_report_problem(const HealthReport *r);

json_object *health_report_to_json(const HealthReport *r);
/* Text for lockhubctl diagnose; *ret is malloc'ed. */
int health_report_to_text(const HealthReport *r, char **ret);
/* Logs each finding not in already_logged (a mask of 1u << HealthFindingId) with its
 * MESSAGE_ID and LOCK=/FINDING=/SEVERITY= fields, and a line for each finding of
 * already_logged that no longer applies. Returns the mask of the report's findings:
 * pass it back next time so a finding is logged when it appears, not on every check. */
uint32_t health_report_log(const HealthReport *r, uint32_t already_logged);

const char *health_finding_id_to_string(HealthFindingId id);
HealthFindingId health_finding_id_from_string(const char *s);
const char *health_finding_message_id(HealthFindingId id);
const char *health_severity_to_string(HealthSeverity s);
const char *health_firmware_verdict_to_string(HealthFirmwareVerdict v);
