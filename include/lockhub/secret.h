/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The hub key: 32 random bytes that seal the secrets kept in the database (pairing shared
 * keys, security PINs, keypad code digits). It is never stored in the database, so a copy
 * of the database file (or of a backup of it) reveals no secret without it.
 *
 * Where it comes from (secret_key_load()), first match wins:
 *   1. the systemd credential "lockhub-key": $CREDENTIALS_DIRECTORY/lockhub-key, ideally
 *      passed with LoadCredentialEncrypted= (systemd-creds encrypt); lockhubd never writes it;
 *   2. <state dir>/lockhub.key, created 0600 on the first start when no key exists yet and
 *      the database records none; never overwritten except by a key rotation (rename of a
 *      fully written and fsync'ed new file).
 * A key is exactly 32 bytes, or 64 hex digits optionally followed by a newline (so
 * `openssl rand -hex 32` works too). A key file readable or writable by group or others,
 * not a regular file, or of another size is refused with a message that says why.
 *
 * The key id (secret_key_id()) is 16 hex digits of a keyed BLAKE2b of a fixed string under
 * the key: it names a key without revealing anything about it. The store records the id of
 * the key that sealed its secrets, so a wrong key is refused at start-up, by name.
 *
 * Sealing is XChaCha20-Poly1305 (IETF AEAD) with a random 192-bit nonce. The associated
 * data names where the ciphertext belongs (table, column, row id, key version), so a sealed
 * blob moved to another row or column no longer opens. Format of a sealed blob:
 *     0x01 | nonce (24) | ciphertext | tag (16)        = plaintext + 41 bytes
 *
 * Keys live in sodium_malloc() memory (guard pages, mlock'ed where the limit allows) and
 * are wiped when freed. Errors are -errno; only secret_key_load() and the file functions
 * log (once, naming the file), the others do not.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/macro.h"

#define SECRET_KEY_SIZE       32
#define SECRET_KEY_ID_LEN     16 /* hex digits */
#define SECRET_CREDENTIAL     "lockhub-key"
#define SECRET_KEY_FILENAME   "lockhub.key"
#define SECRET_SEAL_OVERHEAD  41
#define SECRET_SEAL_FORMAT_V1 0x01

typedef enum SecretKeySource {
        SECRET_KEY_SOURCE_NONE,       /* made from bytes (generated, or given over D-Bus) */
        SECRET_KEY_SOURCE_CREDENTIAL, /* $CREDENTIALS_DIRECTORY/lockhub-key */
        SECRET_KEY_SOURCE_FILE,       /* <state dir>/lockhub.key */
} SecretKeySource;

typedef struct SecretKey {
        uint8_t bytes[SECRET_KEY_SIZE];
        char id[SECRET_KEY_ID_LEN + 1];
        SecretKeySource source;
        char path[4096]; /* the file it was read from; "" when none */
} SecretKey;

/* 32 bytes from libsodium's CSPRNG. */
int secret_key_generate(SecretKey **ret);
/* From a buffer as a key file holds it (32 raw bytes or 64 hex digits [+ "\n"]). -EBADMSG
 * for any other size or content. */
int secret_key_from_bytes(const void *p, size_t n, SecretKey **ret);
int secret_key_dup(const SecretKey *k, SecretKey **ret);
SecretKey *secret_key_free(SecretKey *k);
DEFINE_TRIVIAL_CLEANUP_FUNC(SecretKey *, secret_key_free);

const char *secret_key_id(const SecretKey *k);
const char *secret_key_source_to_string(SecretKeySource s); /* "credential", "file", "memory" */

/* Reads a key file: a regular file, no group/other permission bits, the right size.
 * Refusals are logged with the reason and return -ENOKEY; a missing file -ENOENT (not
 * logged). */
int secret_key_read_file(const char *path, SecretKey **ret);
/* Writes k to path atomically: a temporary file in the same directory (0600, O_EXCL), fsync,
 * rename over path, fsync of the directory. Logs failures. */
int secret_key_write_file(const char *path, const SecretKey *k);

/* The key for the state directory, as described at the top. expected_id is the key id the
 * database records (NULL when it records none): a new key file is only created when it is
 * NULL, and it decides an interrupted rotation (see secret_key_rotate_file()). Logs every
 * refusal; returns -ENOKEY for a key that is missing or unusable. */
int secret_key_load(const char *state_dir, const char *expected_id, SecretKey **ret);

/* Key rotation with a key file, in two steps around the database transaction:
 *   secret_key_stage_file()  writes <state dir>/lockhub.key.new (fsync'ed) — before the commit;
 *   secret_key_commit_file() renames it over lockhub.key — after the commit.
 * A crash in between leaves both files; secret_key_load() then keeps whichever of the two
 * has the id the database records and removes the other. */
int secret_key_stage_file(const char *state_dir, const SecretKey *k);
int secret_key_commit_file(const char *state_dir);
void secret_key_unstage_file(const char *state_dir);

/* Seals n bytes: *ret (malloc'ed, n + SECRET_SEAL_OVERHEAD bytes). ad names the place. */
int secret_seal(const SecretKey *k, const void *ad, size_t ad_len, const void *plain, size_t n,
                uint8_t **ret, size_t *ret_n);
/* Opens a sealed blob: -EBADMSG when it is not one, or was sealed with another key or for
 * another place (ad). *ret is malloc'ed; free it with secret_free_wipe(). */
int secret_open(const SecretKey *k, const void *ad, size_t ad_len, const void *sealed, size_t n,
                uint8_t **ret, size_t *ret_n);
void secret_free_wipe(void *p, size_t n);
