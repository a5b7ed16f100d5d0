/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Manager's hub key: loading at start-up and rotation (see lockhub/manager-secret.h). */

#include <inttypes.h>
#include <stdio.h>

#include "lockhub/log.h"
#include "lockhub/manager-secret.h"
#include "lockhub/manager.h"
#include "lockhub/secret.h"

int manager_secret_start(Manager *m)
{
        _cleanup_free_ char *id = NULL;
        int r;

        r = store_key_id(m->store, &id);
        if (r < 0 && r != -ENOENT)
                return log_error_errno(r, "Failed to read the key id from %s: %m", store_path(m->store));
        r = secret_key_load(m->state_dir, id, &m->key);
        if (r < 0)
                return r;
        r = store_set_key(m->store, m->key);
        if (r < 0)
                return r;
        log_info("Secrets in %s are sealed with key id %s (version %u, from the %s %s).",
                 store_path(m->store), secret_key_id(m->key), store_key_version(m->store),
                 secret_key_source_to_string(m->key->source), m->key->path);
        return 0;
}

void manager_secret_free(Manager *m)
{
        m->key = secret_key_free(m->key);
}

static void record_rekey_event(Manager *m, const struct manager_rekey_result *res)
{
        struct store_event e;
        char detail[160];

        snprintf(detail, sizeof detail,
                 "{\"action\":\"rekey\",\"key_id\":\"%s\",\"key_version\":%u,\"key_source\":\"%s\",\"rows\":"
                 "%u}",
                 res->key_id, res->key_version, res->key_source, res->rows);
        store_event_init(&e);
        e.kind = (char *) "hub";
        e.source = (char *) "dbus";
        e.detail = detail;
        if (store_event_append(m->store, &e, NULL) < 0)
                log_warning("Failed to record the key rotation as an event.");
}

int manager_rekey(Manager *m, const void *new_key, size_t n, struct manager_rekey_result *ret,
                  char **ret_message)
{
        _cleanup_(secret_key_freep) SecretKey *k = NULL;
        bool credential = m->key->source == SECRET_KEY_SOURCE_CREDENTIAL;
        int r;

        *ret_message = NULL;
        if (n == 0 && credential) {
                *ret_message = strdup("The key comes from the credential " SECRET_CREDENTIAL
                                      ", which lockhubd cannot rewrite. Give the new key: "
                                      "'lockhubctl rekey --new-key FILE' (see lockhubctl(1)).");
                return -EOPNOTSUPP;
        }
        r = n == 0 ? secret_key_generate(&k) : secret_key_from_bytes(new_key, n, &k);
        if (r == -EBADMSG) {
                *ret_message = strdup("A key is 32 bytes (or 64 hex digits).");
                return -EINVAL;
        }
        if (r < 0)
                return r;
        if (streq(secret_key_id(k), secret_key_id(m->key))) {
                *ret_message = strdup("That is the current key.");
                return -EINVAL;
        }

        if (!credential) {
                r = secret_key_stage_file(m->state_dir, k);
                if (r < 0) {
                        *ret_message = strdup("Cannot write the new key file; nothing was changed.");
                        return r;
                }
        }
        r = store_rekey(m->store, m->key, k);
        if (r < 0) {
                if (!credential)
                        secret_key_unstage_file(m->state_dir);
                log_error_errno(r, "Key rotation failed, nothing was changed: %m");
                *ret_message = strdup(
                                r == -EBADMSG ? "A sealed row does not open (see the journal); "
                                                "nothing was changed."
                                              : "The database refused the rotation; nothing was changed.");
                return r;
        }
        *ret = (struct manager_rekey_result){
                .key_version = store_key_version(m->store),
                .key_source = secret_key_source_to_string(m->key->source),
                .rows = (unsigned) r,
        };
        snprintf(ret->key_id, sizeof ret->key_id, "%s", secret_key_id(k));
        k->source = m->key->source;
        snprintf(k->path, sizeof k->path, "%s", m->key->path);

        if (!credential) {
                r = secret_key_commit_file(m->state_dir);
                if (r < 0)
                        /* The next start completes it (the .new file has the recorded id). */
                        log_warning("The new key is in %s.new; lockhubd will finish the rotation at its "
                                    "next start.",
                                    m->key->path);
                if (asprintf(ret_message,
                             "Secrets re-sealed with key id %s (version %u); the new key is in %s.",
                             ret->key_id, ret->key_version, m->key->path) < 0)
                        *ret_message = NULL;
        } else if (asprintf(ret_message,
                            "Secrets re-sealed with key id %s (version %u). Install the new key as the "
                            "credential " SECRET_CREDENTIAL
                            " now: the next start refuses the old one (see lockhubd(8), SECURITY).",
                            ret->key_id, ret->key_version) < 0)
                *ret_message = NULL;

        secret_key_free(m->key);
        m->key = TAKE_PTR(k);
        log_notice("Hub key rotated: %u row(s) re-sealed with key id %s (version %u, %s).", ret->rows,
                   ret->key_id, ret->key_version, ret->key_source);
        record_rekey_event(m, ret);
        return 0;
}
