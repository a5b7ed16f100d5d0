/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Store: lockhub's SQLite database (schema in sql/NNNN-name.sql, embedded at build time).
 *
 * Opening (store_open):
 *   - the file is created 0600 whatever the umask; an existing file with a looser mode is
 *     tightened to 0600 (and its -wal/-shm too), with a notice;
 *   - before SQLite touches the file, its header is read directly: a file that is not an
 *     SQLite database, or whose user_version is newer than this binary knows, is refused and
 *     left exactly as it was (no journal mode switch, no -wal/-shm created);
 *   - then PRAGMA quick_check (reads the whole file once: start-up time grows with its size),
 *     unless the last close was a clean one of this very file (STORE_FILENAME-clean, written by
 *     store_free() after the final checkpoint, names the file's inode, size and mtime; it is
 *     removed at open, before anything is written, so it never outlives a run); then
 *     WAL, synchronous=FULL (a committed event survives a power cut), foreign_keys=ON,
 *     secure_delete=FAST, journal_size_limit 4 MiB, a 1 MiB page cache, busy timeout 1 s (the
 *     loop waits at most that long when another process holds the database);
 *   - pending migrations run in order, each in its own transaction that also sets
 *     PRAGMA user_version; running them again changes nothing.
 *   store_open() logs its failure once, naming the path; the caller only maps the error:
 *     -ENOENT (directory missing), -EACCES/-EPERM, -EROFS, -EUCLEAN (not a database, or
 *     corrupt), -EPROTONOSUPPORT (newer schema), -ENOSPC, -EIO.
 *
 * Every other function returns 0 or a positive value on success and -errno on failure,
 * without logging (the SQLite message goes to the debug log once, where it is translated):
 *     -EEXIST   a unique value is taken (lock name or address, user name, log entry, ...)
 *     -EINVAL   a value outside its CHECK (unknown kind, range) or a missing required value
 *     -ENOENT   a row that was asked for or referred to does not exist (foreign key)
 *     -EBUSY    the database is locked by another process for longer than the busy timeout
 *     -ENOSPC, -EIO, -EUCLEAN (corruption found while running), -ENOMEM
 *
 * Times are microseconds since the Unix epoch (CLOCK_REALTIME), "usec". An optional time
 * is 0 when absent; an optional id is 0 when absent; optional integers say so below.
 *
 * Secrets (*_sealed members: a lock's shared key and security PIN, a credential's code):
 * callers always give and get plaintext, with key_version 0. Once store_set_key() gave the
 * store the hub key (lockhub/secret.h), it seals them on every write and opens them on every
 * read (store-secret.c), so they never reach the database file in the clear. Without a key
 * they are stored and returned exactly as given, with key_version as given.
 *   A sealed secret that does not open (damaged row, blob moved from another row) is logged,
 *   naming the row but never the bytes; store_*_get() then fails with -EBADMSG, and
 *   store_*_list() returns the row without its secrets (NULL, size 0) and with its stored
 *   key_version (non-zero: "unusable, enter it again"), so one bad row does not hide the
 *   others. Writing a struct with key_version != 0 while the store has a key is -EINVAL.
 *   The store never logs secrets; *_done() wipes them.
 *
 * Ownership: structs filled by store_*_get()/list() own their strings and blobs; release
 * them with the matching *_done() / *_array_free(). Structs passed in are only read.
 * One Store is used from one thread.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/macro.h"

struct store_migration {
        unsigned version; /* NNNN of sql/NNNN-name.sql; PRAGMA user_version after it ran */
        const char *name;
        const char *sql;
};

/* Generated at build time from the files in sql/ (scripts/embed-sql.sh), ordered by version. */
extern const struct store_migration store_migrations[];
extern const unsigned store_migrations_count;

#define STORE_FILENAME "lockhub.db"

typedef struct Store Store;

/* dir_or_path: the state directory (the file is STORE_FILENAME in it), or the database file
 * itself when it exists or its name ends in ".db". A missing directory is never created. */
int store_open(const char *dir_or_path, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);

/* ---- the hub key (store-secret.c) ----
 * store_set_key(): takes a copy of the key. When meta records a key id (key-id) it must be
 * this key's: another key is refused (-EKEYREJECTED) with a message naming both ids. A
 * database without one records this key's id as key version 1 — or, when it holds sealed
 * rows (a salvage that lost the meta rows), as their newest key version, provided every
 * one of those rows opens with this key (else -EKEYREJECTED). Rows written in plaintext
 * (key_version 0: before there was a key) are then sealed in one transaction and the WAL is
 * truncated so no plaintext copy stays in it. Logs its failures. Not inside a transaction. */
typedef struct SecretKey SecretKey;
int store_set_key(Store *s, const SecretKey *key);
bool store_has_key(const Store *s);
/* The version of the store's key (0: no key). */
unsigned store_key_version(const Store *s);
/* The recorded key id (meta key-id): 0, or -ENOENT when the database records none. */
int store_key_id(Store *s, char **ret);
/* Key rotation: re-seals every secret with new_key in one transaction, records its id as key
 * version + 1, makes it the store's key, and truncates the WAL so no blob sealed with the
 * old key stays in it. old must be the store's key (-EKEYREJECTED), new another key
 * (-EINVAL). Returns the number of rows re-sealed. A row that does not open fails the whole
 * rotation with -EBADMSG (logged, naming the row): nothing is changed. */
int store_rekey(Store *s, const SecretKey *old_key, const SecretKey *new_key);
/* Checkpoints the WAL into the database file and truncates it (-EBUSY when a reader kept
 * part of it). */
int store_checkpoint(Store *s);

/* The newest schema version this binary knows (= user_version of a database it opened). */
unsigned store_schema_version(void);
const char *store_path(const Store *s);

/* Write batching (lockhubd). After store_set_event(), a write outside a transaction opens
 * one (the "batch") that stays open while the current event source is dispatched and further
 * writes join it; a defer source of the given priority commits it (one fsync for all of them),
 * and store_flush() commits it at once. Whoever tells the outside world (MQTT, D-Bus) about a
 * stored change calls store_flush() first, or runs after the commit by priority; see
 * src/store/store.c. A commit that fails (full disk, I/O error) is reported once; its changes
 * stay in memory (as SQL, at most 20000) and are written by the next batch or a retry every
 * 5 s, in their order; store_write_error() tells whether that is the case. A write that hits
 * a full disk undoes its whole batch, which is kept too. While changes are kept, the writes of
 * the event loop are kept without being run (readers do not see them yet; functions that
 * return a new row's id refuse with -ENOSPC, store_event_append() and the other appends
 * return 0 as id) and store_begin() refuses with the error, so that nothing is written
 * ahead of them; only the retry writes them. store_begin() commits an open batch first.
 * Readers on this connection see the batch before its commit. */
typedef struct sd_event sd_event;
int store_set_event(Store *s, sd_event *e, int64_t priority);
int store_flush(Store *s);
/* 0, or the error of the failing commits (-ENOSPC ...) and how many changes wait in memory. */
int store_write_error(const Store *s, size_t *ret_pending);
/* Changes that could not be kept during the current outage (0 once it ended: the count is
 * logged then): the list was full (samples stop being kept first, at 15000), or memory ran
 * out. */
uint64_t store_write_lost(const Store *s);
/* Called when commits start failing (error < 0) and when they work again (0). */
typedef void (*store_write_state_fn)(Store *s, int error, void *userdata);
void store_set_write_state_callback(Store *s, store_write_state_fn fn, void *userdata);

/* Group several writes into one transaction (BEGIN IMMEDIATE). Not nestable. */
int store_begin(Store *s);
int store_commit(Store *s);
void store_rollback(Store *s);

/* ---- meta: small key/value facts (hub id, key id, ...) ---- */
int store_meta_set(Store *s, const char *key, const char *value);
/* 0 and *ret = NULL-free copy; -ENOENT when the key is absent. */
int store_meta_get(Store *s, const char *key, char **ret);

/* ---- locks ---- */
struct store_lock {
        int64_t id; /* set by the store */
        char *name;
        char *address;                               /* "AA:BB:CC:DD:EE:FF" */
        char *protocol;                              /* NULL on add: "nuki" */
        int device_type;                             /* -1 unknown */
        char *model, *firmware, *hardware, *adapter; /* NULL unknown */
        uint8_t *uuid;
        size_t uuid_size;        /* 0: unknown */
        int64_t auth_id, app_id; /* -1 unknown */
        int id_type;             /* -1 unknown */
        bool ultra;
        uint8_t *shared_key_sealed;
        size_t shared_key_sealed_size;
        uint8_t *security_pin_sealed;
        size_t security_pin_sealed_size;
        unsigned key_version;
        bool needs_repair;
        int64_t config_update_count; /* -1 unknown */
        int64_t log_synced_index;    /* -1: nothing imported (in this log epoch) */
        int64_t log_epoch;           /* read only: bumped by the database when uuid changes */
        char *last_state;            /* JSON or NULL */
        uint64_t last_seen_usec, created_usec, paired_usec, updated_usec;
};

/* A struct with every optional member marked unknown; set what you know. */
void store_lock_init(struct store_lock *l);
void store_lock_done(struct store_lock *l);

/* created_usec/updated_usec default to now when 0. Returns the new id (> 0). */
int64_t store_lock_add(Store *s, const struct store_lock *l);
int store_lock_get(Store *s, int64_t id, struct store_lock *ret);
int store_lock_get_by_name(Store *s, const char *name, struct store_lock *ret);
int store_lock_get_by_address(Store *s, const char *address, struct store_lock *ret);
/* All locks ordered by name. */
int store_lock_list(Store *s, struct store_lock **ret, size_t *ret_n);
void store_lock_array_free(struct store_lock *a, size_t n);
/* Writes every member of l to the row l->id (except id, log_epoch, created_usec);
 * updated_usec = now when 0. -ENOENT when there is no such lock. A changed uuid starts a
 * new log epoch and clears log_synced_index. */
int store_lock_update(Store *s, const struct store_lock *l);
/* Removes the lock with its events, samples, code assignments and recovery attempts.
 * Snapshots stay, detached (matched by address when it is paired again). */
int store_lock_remove(Store *s, int64_t id);

/* ---- events ---- */
struct store_event {
        int64_t id;              /* set by the store */
        uint64_t ts_usec;        /* 0 on append: now */
        uint64_t lock_time_usec; /* 0: none */
        int64_t lock_id;         /* 0: hub-wide */
        char *kind;              /* see sql/0001-initial.sql: action, state, door, battery, keypad, ... */
        char *source;            /* hub, dbus, mqtt, lock, manual, button, keypad, auto, app, unknown */
        char *actor;             /* NULL: none */
        int64_t auth_id;         /* -1: none */
        int64_t user_id, credential_id; /* 0: none */
        int64_t log_index;              /* -1: not from the lock's log; else requires lock_id */
        int64_t log_epoch;              /* filled by the store from the lock's current epoch */
        char *detail;                   /* JSON or NULL; never a secret */
};

void store_event_init(struct store_event *e);
void store_event_array_free(struct store_event *a, size_t n);

/* Returns 1 and *ret_id = the new row's id, or 0 and *ret_id = the existing row's id when
 * the lock's log entry (lock, epoch, log_index) is already stored. ret_id may be NULL. */
int store_event_append(Store *s, const struct store_event *e, int64_t *ret_id);

struct store_event_filter {
        int64_t lock_id;     /* 0: every lock and hub-wide events */
        uint64_t since_usec; /* 0: no lower bound (ts_usec >= since) */
        uint64_t until_usec; /* 0: no upper bound (ts_usec < until) */
        int64_t after_id;    /* 0: none; only events with id > after_id (paging, live tails) */
        const char *kind;    /* NULL: every kind */
        unsigned limit;      /* 0: no limit; else the newest `limit` matching events */
};
/* Matching events, oldest first. */
int store_event_list(Store *s, const struct store_event_filter *f, struct store_event **ret, size_t *ret_n);

/* ---- samples ---- */
struct store_sample {
        int64_t id;
        int64_t lock_id;
        uint64_t ts_usec;
        char *kind; /* battery-percent, battery-mv, rssi, latency-ms, ... (see the schema) */
        double value;
};
/* ts_usec 0: now. Returns the new id. */
int64_t store_sample_append(Store *s, int64_t lock_id, const char *kind, uint64_t ts_usec, double value);
/* Samples of one lock (kind NULL: all kinds) with ts_usec >= since_usec, oldest first;
 * limit 0: all, else the newest `limit`. */
int store_sample_list(Store *s, int64_t lock_id, const char *kind, uint64_t since_usec, unsigned limit,
                      struct store_sample **ret, size_t *ret_n);
void store_sample_array_free(struct store_sample *a, size_t n);

/* ---- recovery attempts ---- */
struct store_recovery_attempt {
        int64_t id;
        int64_t lock_id;  /* 0: adapter or bluetoothd only */
        char *adapter;    /* NULL: n/a */
        uint64_t ts_usec; /* start; 0 on append: now */
        char *step;       /* retry, reconnect, adapter-power-cycle, adapter-move, device-remove, rediscover,
                             needs-repair, reprovision, bluez-restart */
        unsigned attempt; /* >= 1 */
        char *outcome;    /* success, failure, skipped, aborted */
        uint64_t duration_usec;
        char *detail; /* JSON or NULL */
};
int64_t store_recovery_append(Store *s, const struct store_recovery_attempt *a);
/* Attempts of one lock (0: all), oldest first; limit 0: all, else the newest `limit`. */
int store_recovery_list(Store *s, int64_t lock_id, unsigned limit, struct store_recovery_attempt **ret,
                        size_t *ret_n);
void store_recovery_array_free(struct store_recovery_attempt *a, size_t n);

/* ---- firmware history and settings snapshots ---- */
/* Records firmware (and hardware, may be NULL) unless it equals the lock's latest record.
 * Returns 1 when a row was added, 0 when nothing changed. */
int store_firmware_record(Store *s, int64_t lock_id, uint64_t ts_usec, const char *firmware,
                          const char *hardware);
/* kind: config, advanced-config, time-controls; reason: paired, changed, manual, before-restore.
 * config_update_count -1: unknown. Returns the new id. */
int64_t store_snapshot_add(Store *s, int64_t lock_id, const char *kind, const char *reason,
                           int64_t config_update_count, uint64_t ts_usec, const char *json);
/* The newest snapshot of that kind for the address (also from before an unpairing):
 * 0 and *ret_json, or -ENOENT. */
int store_snapshot_latest(Store *s, const char *address, const char *kind, char **ret_json);

/* ---- users ---- */
struct store_user {
        int64_t id;
        char *name;
        uint64_t created_usec, updated_usec;
};
int64_t store_user_add(Store *s, const char *name, uint64_t now_usec);
int store_user_get_by_name(Store *s, const char *name, struct store_user *ret);
int store_user_rename(Store *s, int64_t id, const char *name, uint64_t now_usec);
/* Removes the user and their credentials and assignments. Withdraw the codes from the locks
 * first (assignment desired = absent, reconciled). */
int store_user_remove(Store *s, int64_t id);
int store_user_list(Store *s, struct store_user **ret, size_t *ret_n);
void store_user_done(struct store_user *u);
void store_user_array_free(struct store_user *a, size_t n);

/* ---- credentials (keypad codes) ---- */
struct store_credential {
        int64_t id;
        int64_t user_id;
        char *name; /* 1..20 bytes */
        uint8_t *code_sealed;
        size_t code_sealed_size;
        unsigned key_version;
        bool enabled;
        uint64_t valid_from_usec, valid_until_usec; /* 0: unbounded */
        unsigned weekdays;                          /* bit 0 Monday .. bit 6 Sunday */
        int time_from_min, time_until_min;          /* minutes after midnight; -1: no window */
        int64_t revision;                           /* bumped by every store_credential_update() */
        uint64_t created_usec, updated_usec;
};
void store_credential_init(struct store_credential *c);
void store_credential_done(struct store_credential *c);
void store_credential_array_free(struct store_credential *a, size_t n);
int64_t store_credential_add(Store *s, const struct store_credential *c);
int store_credential_get(Store *s, int64_t id, struct store_credential *ret);
/* Every credential (user_id 0) or one user's, by id. */
int store_credential_list(Store *s, int64_t user_id, struct store_credential **ret, size_t *ret_n);
/* Writes the desired state (name, code, enabled, limits) and bumps revision; every lock's
 * assignment that is synced goes back to pending. Returns the new revision. */
int64_t store_credential_update(Store *s, const struct store_credential *c);
int store_credential_remove(Store *s, int64_t id);

/* ---- assignments of credentials to locks, with the lock's sync state ---- */
struct store_assignment {
        int64_t lock_id, credential_id;
        char *desired;           /* present, absent */
        char *state;             /* pending, synced, failed, drifted */
        char *reason;            /* NULL or why failed/drifted */
        int lock_code_id;        /* -1: not on the lock (yet) */
        int64_t synced_revision; /* 0: never */
        char *reported;          /* JSON of what the lock reported (never the digits) or NULL */
        uint64_t last_verified_usec;
        unsigned attempts;
        uint64_t next_attempt_usec; /* 0: now */
        uint64_t updated_usec;
};
void store_assignment_done(struct store_assignment *a);
void store_assignment_array_free(struct store_assignment *a, size_t n);
/* Creates or changes the desired state ("present"/"absent") of a credential on a lock;
 * the state becomes pending. */
int store_assignment_set(Store *s, int64_t lock_id, int64_t credential_id, const char *desired,
                         uint64_t now_usec);
/* Records a reconciliation result: state, reason, lock_code_id, synced_revision, reported,
 * last_verified_usec, attempts, next_attempt_usec (desired is not changed). */
int store_assignment_update_sync(Store *s, const struct store_assignment *a);
int store_assignment_get(Store *s, int64_t lock_id, int64_t credential_id, struct store_assignment *ret);
/* Assignments of one lock (or of every lock: 0), by credential id. */
int store_assignment_list(Store *s, int64_t lock_id, struct store_assignment **ret, size_t *ret_n);
int store_assignment_remove(Store *s, int64_t lock_id, int64_t credential_id);

/* ---- retention ----
 * Deletes up to `batch` of the oldest rows beyond max_count (0: no count limit) and then,
 * within what is left of the batch, rows older than max_age_sec before now_usec (0: no age
 * limit). now_usec is CLOCK_REALTIME in microseconds, like every time in the store.
 * Returns the number of rows deleted; call it again (from a timer, not in a loop that
 * blocks) until it returns 0. Each call is one short transaction (a savepoint when the
 * caller has one open). The count limit costs O(max_count) index steps per call. */
int store_retention_step(Store *s, uint64_t max_count, uint64_t max_age_sec, unsigned batch,
                         uint64_t now_usec);
int store_sample_retention_step(Store *s, uint64_t max_count, uint64_t max_age_sec, unsigned batch,
                                uint64_t now_usec);
int store_recovery_retention_step(Store *s, uint64_t max_count, uint64_t max_age_sec, unsigned batch,
                                  uint64_t now_usec);

/* Translates an SQLite result code (primary or extended) to -errno; 0 for OK/ROW/DONE. */
int store_errno_from_sqlite(int rc);
