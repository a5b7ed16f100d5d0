/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Backup and restore documents: users, codes and their assignments, and per lock its
 * settings as the hub last read them (config, advanced config and time controls snapshots).
 *
 * The document is JSON, version BACKUP_VERSION:
 *
 *   { "format": "lockhub-backup", "version": 1, "created_usec": N, "secrets": false,
 *     "locks": [ { "name", "address", "model"?, "firmware"?, "config"?, "advanced_config"?,
 *                  "time_controls"?, "pairing"? } ],
 *     "users": [ { "name", "codes": [ { "name", "enabled", "valid_from_usec", "valid_until_usec",
 *                  "weekdays", "time_from_min", "time_until_min", "locks": [names], "digits"? } ] } ] }
 *
 * Secrets (the pairing keys and PINs, the digits of every code) are in it only when asked
 * ("secrets": true), and then the whole document is encrypted with a passphrase:
 *
 *   "LHBKENC1" | opslimit u64 LE | memlimit u64 LE | salt[16] | nonce[24] | ciphertext
 *
 * key = Argon2id13(passphrase, salt, opslimit, memlimit), cipher XChaCha20-Poly1305 (IETF
 * AEAD) with the 64-byte header as associated data, so the parameters cannot be altered
 * either. A document with "secrets": true is only accepted encrypted, and one without
 * secrets only in the clear: neither can be passed off as the other.
 *
 * Reading (backup_parse) validates everything before anything is used: the size, the
 * encryption, strict JSON in UTF-8 nested at most BACKUP_DEPTH_MAX levels, the version,
 * every key (unknown keys are refused), every value's type and range, every code against
 * the code rules (and unique per lock), the cross references (a code's locks must be in
 * the document; names unique). Any problem refuses the whole document with one message
 * naming the place ("users[1].codes[0].digits: ..."). Restoring changes nothing before
 * the document passed, and then writes in one transaction.
 *
 * Errors: -EINVAL invalid document (message), -EBADMSG wrong passphrase or tampered file,
 * -ENOKEY encrypted and no passphrase given, -EPROTONOSUPPORT newer version, -EFBIG too
 * large, -ENOENT --to lock or the document's lock not found, -ENOMEM.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/macro.h"
#include "lockhub/store.h"

#define BACKUP_FORMAT      "lockhub-backup"
#define BACKUP_VERSION     1
#define BACKUP_SIZE_MAX    ((size_t) 4 * 1024 * 1024)
#define BACKUP_DEPTH_MAX   8
#define BACKUP_MAGIC       "LHBKENC1"
#define BACKUP_HEADER_SIZE 64

typedef struct BackupOptions {
        bool include_secrets;
        const char *passphrase; /* required with include_secrets */
        /* Argon2id cost; 0: libsodium's "interactive" limits (tests pass the minimum) */
        uint64_t opslimit;
        uint64_t memlimit;
} BackupOptions;

/* The document for the locks with these store ids (n 0: every lock, and every user).
 * Returns the bytes (JSON text, or the encrypted file) in *ret and *ret_size. */
int backup_create(Store *s, const int64_t *lock_ids, size_t n, const BackupOptions *o, uint64_t now_usec,
                  uint8_t **ret, size_t *ret_size, char **ret_error);

typedef struct Backup Backup;

/* Decrypts (when encrypted) and validates a document. */
int backup_parse(const void *data, size_t size, const char *passphrase, Backup **ret, char **ret_error);
Backup *backup_free(Backup *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(Backup *, backup_free);

bool backup_is_encrypted(const void *data, size_t size);
bool backup_has_secrets(const Backup *b);
size_t backup_n_locks(const Backup *b);
size_t backup_n_users(const Backup *b);
size_t backup_n_codes(const Backup *b);

typedef struct BackupRestoreResult {
        unsigned users_added, codes_added, codes_updated, assignments, snapshots, locks_added;
        unsigned codes_skipped; /* new codes without digits (a backup without secrets) */
        int64_t *lock_ids;      /* store ids of the locks whose codes changed (free()) */
        size_t n_lock_ids;
} BackupRestoreResult;
void backup_restore_result_done(BackupRestoreResult *r);

/* Writes the document into the store in one transaction: users and codes (matched by user
 * and code name: updated, else added), assignments, and the settings snapshots.
 * to_lock: NULL restores each of the document's locks to the lock of the same name (a lock
 * missing from the store is added when the document holds its pairing, else -ENOENT);
 * else the document must hold exactly one lock (or from_lock names one), restored onto the
 * stored lock named to_lock. Sync the locks in ret->lock_ids afterwards. */
int backup_restore(Store *s, const Backup *b, const char *from_lock, const char *to_lock, uint64_t now_usec,
                   BackupRestoreResult *ret, char **ret_error);
