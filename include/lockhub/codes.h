/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Keypad codes with the hub as the source of truth.
 *
 * Four layers, each testable without a lock:
 *
 *   rules        codes_check(): the code rules (for Nuki: exactly 6 digits, digits 1-9
 *                only, not starting with "12", unique per lock) and the schedule rules,
 *                each broken rule a distinct CodeRule with its own message. Nothing is
 *                ever sent for a code that breaks one.
 *   mapping      LockCode (lock.h) <-> the Nuki keypad code fields of NukiMsg: date range
 *                as NukiTime (UTC), weekdays bit-reversed (ours: bit 0 Monday; Nuki: bit 6
 *                Monday, 0 = every day), the time-of-day window as NukiTimeOfDay, and
 *                time_limited set when any limit is.
 *   planner      codes_plan(): a pure function from the desired codes of one lock (rows of
 *                credential_locks + credentials) and the list the lock reports to the steps
 *                that make them agree (add / update / remove, or adopt under DriftPolicy=lock),
 *                with every drift found (changed, added or removed on the lock). Removals
 *                come first (a freed code number may be needed by an add), then updates,
 *                then adds. codes_verify() judges the read-back after the steps ran.
 *   service      CodesService (codes-sync.c): runs plan → steps → read-back → verify for a
 *                lock through its driver ops, writes the state of each code before every
 *                step (so a lock is never half-written without the database saying so),
 *                and retries with backoff while the lock cannot be reached.
 *
 * Per lock and code, the sync state (credential_locks.state) moves like this:
 *
 *     (any change of the desired state) ──────────────▶ pending
 *     pending ──step ok, read back equal──────────────▶ synced      codes_verify()
 *     pending ──lock unreachable / refused──▶ failed (reason, next_attempt_usec) ──retry──▶ …
 *     synced ──lock holds something else (next sync)──▶ drifted (reason) ──restore/adopt──▶ synced
 *
 * Ownership: a CodePlan owns its arrays (codes_plan_done()). Strings in CodeDesired are
 * borrowed for the call.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "lockhub/conf.h"
#include "lockhub/lock.h"
#include "lockhub/macro.h"
#include "lockhub/store.h"

struct NukiMsg;
struct json_object;
typedef struct CodesService CodesService;

/* ---- rules ---- */

typedef enum CodeRule {
        CODE_RULE_OK,
        CODE_RULE_LENGTH,      /* Nuki: exactly 6 digits */
        CODE_RULE_DIGITS,      /* Nuki: only the digits 1-9 */
        CODE_RULE_PREFIX,      /* Nuki: must not start with "12" */
        CODE_RULE_DUPLICATE,   /* another code on the same lock has the same digits */
        CODE_RULE_NAME,        /* 1..20 bytes of UTF-8 without control characters */
        CODE_RULE_DATE_RANGE,  /* valid_from must be before valid_until */
        CODE_RULE_WEEKDAYS,    /* at least one day, bits 0..6 only */
        CODE_RULE_TIME_WINDOW, /* both or neither, 00:00..23:59, from before until */
        _CODE_RULE_MAX,
} CodeRule;

#define CODE_DIGITS_NUKI 6

/* "length", "digits", "prefix-12", "duplicate", "name", "date-range", "weekdays", "time-window". */
const char *code_rule_to_string(CodeRule r);
/* A complete sentence for users: "A code must have exactly 6 digits." */
const char *code_rule_message(CodeRule r);

/* The digits alone (length, digits, prefix). */
CodeRule codes_check_digits(const char *digits);
/* Everything: digits, name, schedule, and uniqueness against the digits of the other
 * codes that the same lock holds or will hold (others may contain NULLs, skipped). */
CodeRule codes_check(const LockCode *c, const char *const *others, size_t n_others);

/* A LockCode with no limits: enabled, every day, no window, id -1. */
void lock_code_init(LockCode *c);
/* Same code as the lock would store it: digits (when both are known), name, enabled and
 * every limit at the lock's resolution (seconds). */
bool lock_code_equal(const LockCode *a, const LockCode *b);
/* Which fields differ, as "digits, name, enabled, schedule" (at most size bytes). */
void lock_code_diff(const LockCode *a, const LockCode *b, char *ret, size_t size);
/* JSON object of a code as the lock reported it, never the digits ("reported" column). */
char *lock_code_to_json(const LockCode *c);

/* ---- Nuki mapping ---- */

/* Fills the fields of Add Keypad Code (0x0041) or Update Keypad Code (0x0046) of m from c,
 * after nuki_msg_init(m, command, ...); nonce and PIN are the caller's. -EINVAL when the
 * digits do not form a code the lock can hold or the message is of another command. */
int codes_to_nuki(const LockCode *c, struct NukiMsg *m);
/* A Keypad Code entry (0x0045) as a LockCode. */
int codes_from_nuki(const struct NukiMsg *m, LockCode *ret);

/* ---- planner ---- */

typedef enum CodeSyncState {
        CODE_SYNC_PENDING,
        CODE_SYNC_SYNCED,
        CODE_SYNC_FAILED,
        CODE_SYNC_DRIFTED,
        _CODE_SYNC_STATE_MAX,
} CodeSyncState;
const char *code_sync_state_to_string(CodeSyncState s);
CodeSyncState code_sync_state_from_string(const char *s); /* _CODE_SYNC_STATE_MAX if unknown */

/* One code the hub wants on (or off) one lock. */
typedef struct CodeDesired {
        int64_t credential_id;
        bool present;            /* desired = present; false: withdraw it from the lock */
        LockCode code;           /* desired content; code.id = credential_locks.lock_code_id */
        int64_t revision;        /* credentials.revision */
        int64_t synced_revision; /* credential_locks.synced_revision, 0: never confirmed */
        bool unreadable;         /* the stored digits do not open (hub key?): never written */
} CodeDesired;

typedef enum CodeDrift {
        CODE_DRIFT_NONE,
        CODE_DRIFT_CHANGED, /* a confirmed code was changed on the lock */
        CODE_DRIFT_ADDED,   /* the lock holds a code the hub does not know */
        CODE_DRIFT_REMOVED, /* a confirmed code is gone from the lock */
        _CODE_DRIFT_MAX,
} CodeDrift;
const char *code_drift_to_string(CodeDrift d); /* "none", "changed-on-lock", ... */

typedef enum CodeStepKind {
        CODE_STEP_KEEP,          /* the lock holds exactly the desired code: synced */
        CODE_STEP_ADD,           /* write code (code.id ignored) */
        CODE_STEP_UPDATE,        /* rewrite entry code.id with code */
        CODE_STEP_REMOVE,        /* remove entry code.id */
        CODE_STEP_FORGET,        /* withdrawn and not on the lock: drop the assignment */
        CODE_STEP_ADOPT,         /* DriftPolicy=lock: take code (the lock's version) into the database;
                                    credential_id 0: a new code found on the lock */
        CODE_STEP_ADOPT_REMOVAL, /* DriftPolicy=lock: the lock dropped it: withdraw it here too */
        CODE_STEP_REJECT,        /* breaks a rule: failed, nothing sent */
        _CODE_STEP_KIND_MAX,
} CodeStepKind;
const char *code_step_kind_to_string(CodeStepKind k);

typedef struct CodeStep {
        CodeStepKind kind;
        int64_t credential_id; /* 0: a code only the lock holds */
        LockCode code;         /* see CodeStepKind */
        CodeDrift drift;
        CodeRule rule;    /* REJECT: which rule */
        char reason[160]; /* drift: what differs; REJECT: the rule's message; else "" */
} CodeStep;

typedef struct CodePlan {
        CodeStep *steps; /* KEEP/FORGET/ADOPT/REJECT first, then REMOVE, UPDATE, ADD */
        size_t n_steps;
        size_t n_drifts;
        size_t n_writes; /* steps that write to the lock: ADD, UPDATE, REMOVE */
} CodePlan;

void codes_plan_done(CodePlan *p);

/* The pure planner. lock_codes: what the lock reported (digits may be ""). Matching: by the
 * lock's code id first, then (for a code whose add was never confirmed: id -1) by digits
 * and name, so an add interrupted after the lock took it is recognised rather than
 * repeated. -ENOMEM only. */
int codes_plan(const CodeDesired *desired, size_t n_desired, const LockCode *lock_codes, size_t n_lock_codes,
               ConfDriftPolicy policy, CodePlan *ret);

/* Read-back judgement for one desired code after the steps: the state it goes to, the
 * lock's id for it (-1 none), and a reason when not synced. For a withdrawn code, synced
 * means "gone from the lock". */
CodeSyncState codes_verify(const CodeDesired *d, const LockCode *lock_codes, size_t n_lock_codes,
                           int *ret_lock_code_id, char *ret_reason, size_t reason_size);

/* Backoff before retry number `attempts` (1-based): 5 s, 10 s, 20 s, ... capped at max_sec. */
uint64_t codes_retry_delay_usec(unsigned attempts, unsigned max_sec);

/* ---- database operations (the hub's desired state) ----
 * Each checks the rules first and writes nothing when one is broken: -EINVAL and
 * *ret_rule says which (ret_rule may be NULL). Other errors as in store.h. A change puts
 * every affected assignment back to pending; the caller then asks the service to sync. */

int codes_user_add(Store *s, const char *name, int64_t *ret_id);
/* Withdraws every code of the user from every lock; the user row goes when the last of
 * them is confirmed gone (or at once when the user has no assignment). */
int codes_user_remove(Store *s, int64_t user_id);
/* Adds a code for a user, assigned to the given locks (store ids). */
int codes_code_add(Store *s, int64_t user_id, const LockCode *c, const int64_t *lock_ids, size_t n_locks,
                   CodeRule *ret_rule, int64_t *ret_id);
/* Rewrites a code (name, digits when non-empty, enabled, limits). */
int codes_code_update(Store *s, int64_t credential_id, const LockCode *c, CodeRule *ret_rule);
int codes_code_set_enabled(Store *s, int64_t credential_id, bool enabled);
/* Assign to / withdraw from one lock. */
int codes_code_assign(Store *s, int64_t credential_id, int64_t lock_id, bool present, CodeRule *ret_rule);
/* Withdraws the code from every lock; the row goes when the locks confirmed it. */
int codes_code_remove(Store *s, int64_t credential_id);
/* Is the credential (or user) being withdrawn (removed, waiting for the locks)? */
bool codes_code_is_withdrawn(Store *s, int64_t credential_id);
bool codes_user_is_withdrawn(Store *s, int64_t user_id);
/* The LockCode of a credential row (digits from code_sealed, id -1). */
int codes_code_from_store(const struct store_credential *cred, LockCode *ret);
/* The desired codes of one lock, for codes_plan(). *ret freed with free(). */
int codes_desired_load(Store *s, int64_t lock_id, CodeDesired **ret, size_t *ret_n);

/* Attribution of a keypad entry in a lock's log: the user and code that the lock's code id
 * stands for on that lock. actor is "USER" when the code is named like its user, else
 * "USER (CODE)". 0, or -ENOENT when the hub does not know that code id. */
typedef struct CodeAttribution {
        int64_t user_id, credential_id;
        char actor[128];
} CodeAttribution;
int codes_attribute(Store *s, int64_t lock_id, int lock_code_id, CodeAttribution *ret);
/* The same for a log entry's detail JSON ({"code_id": N, ...}): -ENOENT without one. */
int codes_attribute_detail(Store *s, int64_t lock_id, const char *detail_json, CodeAttribution *ret);

/* Re-provisioning across an unpairing (a factory reset means unpair, pair again): before
 * the lock's row goes, remember which codes it held, by address; when a lock of that
 * address is paired again, assign them again (the service then writes them). */
int codes_lock_unpairing(Store *s, int64_t lock_id, const char *address);
int codes_lock_reprovision(Store *s, int64_t lock_id, const char *address, size_t *ret_n);

/* ---- listings and requests (D-Bus, MQTT) ---- */

typedef struct CodeSyncSummary {
        unsigned synced, pending, failed, drifted;
} CodeSyncSummary;
/* One lock's codes counted by sync state (the Home Assistant sensor). */
int codes_lock_summary(Store *s, int64_t lock_id, CodeSyncSummary *ret);
/* Every code (lock_id 0: of every lock) with its user, limits and per-lock sync state, as
 * a JSON array; never the digits. */
int codes_list_json(Store *s, int64_t lock_id, struct json_object **ret);
/* A request on users and codes as the MQTT bridge receives it (lockhub/bridge/request/OP):
 * op "user/add" {name}, "user/remove" {name}, "user/list", "code/add" {user, name, digits,
 * locks[], enabled?, valid_from_usec?, valid_until_usec?, weekdays? ["mon",..],
 * time_from? "HH:MM", time_until?}, "code/update" {id, any of those}, "code/remove" {id},
 * "code/list" {lock?}, "backup" {locks[]?} (never with secrets), "restore" {document,
 * to?, from?} (a document without secrets). "transaction" is allowed and ignored (the
 * bridge echoes it). The whole request is checked first; *ret is the response:
 * {"status":"ok","data":...} or {"status":"error","error":"...","rule"?:"..."}.
 * Returns 0, -EINVAL (refused: *ret says why), -EOPNOTSUPP (unknown op: no *ret),
 * -ENOMEM. svc may be NULL (then nothing is synced). */
int codes_request(Store *s, CodesService *svc, const char *op, struct json_object *req,
                  struct json_object **ret);

/* ---- the service ---- */

/* Called after each reconciliation of a lock: r < 0 when it could not run to the end
 * (lock unreachable: a retry is armed). */
typedef void (*codes_synced_t)(CodesService *svc, Lock *l, int r, void *userdata);

/* conf: the owner's current configuration pointer (replaced on reload). */
int codes_service_new(sd_event *event, Store *store, Conf *const *conf, CodesService **ret);
CodesService *codes_service_free(CodesService *svc);
DEFINE_TRIVIAL_CLEANUP_FUNC(CodesService *, codes_service_free);

void codes_service_set_synced_callback(CodesService *svc, codes_synced_t cb, void *userdata);
/* Track a lock (no-op when its driver cannot do keypad codes) / stop (before it is freed). */
int codes_service_add_lock(CodesService *svc, Lock *l);
void codes_service_remove_lock(CodesService *svc, Lock *l);
/* Ask for a reconciliation of the lock soon; requests made while one runs are coalesced
 * into one more run after it. why is logged ("paired", "config-changed", "user-change"). */
int codes_service_sync(CodesService *svc, Lock *l, const char *why);
/* Every tracked lock whose store id is in lock_ids (n 0: every lock). */
void codes_service_sync_locks(CodesService *svc, const int64_t *lock_ids, size_t n, const char *why);
/* Settings as a backup holds them per lock ({"config", "advanced_config", "time_controls"},
 * lockhub/backup.h), from the newest snapshots of that address; NULL when there are none. */
char *codes_settings_load(Store *s, const char *address);
/* Write settings_json to the lock through its driver (apply_settings); the outcome is a
 * "config" event {"settings":"restored"|"failed","why":why}. 1 started, 0 nothing to write,
 * <0 not started (-EOPNOTSUPP: the driver cannot). */
int codes_service_apply_settings(CodesService *svc, Lock *l, const char *settings_json, const char *why);
/* The newest settings snapshots of each tracked lock in lock_ids, written to it (restore). */
void codes_service_restore_settings(CodesService *svc, const int64_t *lock_ids, size_t n, const char *why);
/* True while a reconciliation of the lock runs or is scheduled to run now. */
bool codes_service_busy(CodesService *svc, Lock *l);
