/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The Manager's hub key (lockhub/secret.h): loaded at start-up and handed to the store,
 * which then seals and opens every secret; rotated on request (org.lockhub.Manager1.Rekey,
 * `lockhubctl rekey`).
 *
 * Rotation, with a key file (<state dir>/lockhub.key):
 *     new key (generated, or given) → lockhub.key.new (fsync) → store_rekey() (one
 *     transaction) → rename over lockhub.key
 *   a crash at any point leaves a database and a key that belong together (secret.h).
 * With the credential lockhub-key, lockhubd cannot write the key: the caller must give the
 * new key, which lockhubd uses from then on; the administrator installs it as the credential
 * before the next start (a start with the old credential is refused, naming both key ids).
 */

#include <stddef.h>

typedef struct Manager Manager;

/* Loads the key (creating the key file on the first start) and gives it to the store.
 * Errors are logged: -ENOKEY (no usable key), -EKEYREJECTED (not this database's key). */
int manager_secret_start(Manager *m);
void manager_secret_free(Manager *m);

struct manager_rekey_result {
        char key_id[17];
        unsigned key_version;
        const char *key_source; /* "file" or "credential" */
        unsigned rows;          /* rows re-sealed */
};

/* Rotates the key: new_key is the new key as a key file holds it (n 0: generate one, only
 * with a key file). Errors, with a message for a person in *ret_message (caller frees):
 *   -EOPNOTSUPP  the key is a credential and no new key was given
 *   -EINVAL      new_key is not a key, or is the current key
 *   -EBADMSG     a sealed row does not open (nothing changed)
 *   and the store's and the file system's errors. */
int manager_rekey(Manager *m, const void *new_key, size_t n, struct manager_rekey_result *ret,
                  char **ret_message);
