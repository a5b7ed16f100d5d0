/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The hub key and sealing (see lockhub/secret.h for where the key comes from and the
 * format of a sealed blob).
 *
 * Files in the state directory:
 *     lockhub.key       the key (32 raw bytes, 0600)
 *     lockhub.key.new   a rotation in progress: written and fsync'ed before the database
 *                       commits the re-sealed secrets, renamed over lockhub.key after
 *     .lockhub.key.XXXXXX  a temporary file while one of the above is written
 * A new key file is linked into place with link(2), which fails when the name exists, so a
 * key file is never replaced by accident (two daemons starting at once, a restore).
 */

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lockhub/log.h"
#include "lockhub/secret.h"

#define KEY_ID_CONTEXT "lockhub key id v1"
#define MAX_KEY_FILE   128

static int secret_init(void)
{
        return sodium_init() < 0 ? -EIO : 0;
}

static int key_new(SecretKey **ret)
{
        SecretKey *k;

        if (secret_init() < 0)
                return -EIO;
        k = sodium_malloc(sizeof *k);
        if (!k)
                return -ENOMEM;
        memset(k, 0, sizeof *k);
        *ret = k;
        return 0;
}

SecretKey *secret_key_free(SecretKey *k)
{
        if (k)
                sodium_free(k); /* wipes */
        return NULL;
}

static void key_set_id(SecretKey *k)
{
        uint8_t h[crypto_generichash_BYTES_MIN];

        crypto_generichash(h, sizeof h, (const uint8_t *) KEY_ID_CONTEXT, strlen(KEY_ID_CONTEXT), k->bytes,
                           sizeof k->bytes);
        sodium_bin2hex(k->id, sizeof k->id, h, SECRET_KEY_ID_LEN / 2);
        sodium_memzero(h, sizeof h);
}

int secret_key_generate(SecretKey **ret)
{
        SecretKey *k;
        int r;

        r = key_new(&k);
        if (r < 0)
                return r;
        randombytes_buf(k->bytes, sizeof k->bytes);
        key_set_id(k);
        *ret = k;
        return 0;
}

int secret_key_from_bytes(const void *p, size_t n, SecretKey **ret)
{
        const char *s = p;
        SecretKey *k;
        size_t bin = 0;
        int r;

        if (n == 2 * SECRET_KEY_SIZE + 1 && s[n - 1] == '\n')
                n--;
        if (n != SECRET_KEY_SIZE && n != 2 * SECRET_KEY_SIZE)
                return -EBADMSG;
        r = key_new(&k);
        if (r < 0)
                return r;
        if (n == SECRET_KEY_SIZE)
                memcpy(k->bytes, p, n);
        else if (sodium_hex2bin(k->bytes, sizeof k->bytes, s, n, NULL, &bin, NULL) < 0 ||
                 bin != SECRET_KEY_SIZE) {
                secret_key_free(k);
                return -EBADMSG;
        }
        key_set_id(k);
        *ret = k;
        return 0;
}

int secret_key_dup(const SecretKey *k, SecretKey **ret)
{
        SecretKey *c;
        int r;

        r = key_new(&c);
        if (r < 0)
                return r;
        memcpy(c, k, sizeof *c);
        *ret = c;
        return 0;
}

const char *secret_key_id(const SecretKey *k)
{
        return k->id;
}

const char *secret_key_source_to_string(SecretKeySource s)
{
        switch (s) {
        case SECRET_KEY_SOURCE_CREDENTIAL:
                return "credential";
        case SECRET_KEY_SOURCE_FILE:
                return "file";
        case SECRET_KEY_SOURCE_NONE:
                break;
        }
        return "memory";
}

/* Reads up to MAX_KEY_FILE bytes of an open file into buf (sodium memory). */
static int read_fd(int fd, uint8_t *buf, size_t *ret_n)
{
        size_t n = 0;

        for (;;) {
                ssize_t k = read(fd, buf + n, MAX_KEY_FILE - n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n == MAX_KEY_FILE)
                        break;
        }
        *ret_n = n;
        return 0;
}

static int read_key(const char *path, bool check_mode, SecretKey **ret)
{
        _cleanup_close_ int fd = -EBADF;
        SecretKey *k = NULL;
        uint8_t *buf;
        struct stat st;
        size_t n = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                if (errno == ELOOP)
                        return log_error_errno(-ENOKEY, "Key %s is a symbolic link, refusing it.", path);
                return log_error_errno(-errno, "Failed to open the key %s: %m", path);
        }
        if (fstat(fd, &st) < 0)
                return log_error_errno(-errno, "Failed to stat the key %s: %m", path);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(-ENOKEY, "Key %s is not a regular file, refusing it.", path);
        if (check_mode && (st.st_mode & 0077) != 0)
                return log_error_errno(
                                -ENOKEY,
                                "Key %s has mode %04o: readable or writable by others than its owner. "
                                "Refusing it: anyone who can read it can read the secrets in the "
                                "database. Check who may have copied it, then 'chmod 0600 %s' "
                                "(or rotate the key with 'lockhubctl rekey').",
                                path, (unsigned) (st.st_mode & 07777), path);
        if (check_mode && st.st_uid != geteuid())
                return log_error_errno(-ENOKEY,
                                       "Key %s belongs to uid %u, not to uid %u that runs lockhubd.", path,
                                       (unsigned) st.st_uid, (unsigned) geteuid());

        r = secret_init();
        if (r < 0)
                return r;
        buf = sodium_malloc(MAX_KEY_FILE);
        if (!buf)
                return -ENOMEM;
        r = read_fd(fd, buf, &n);
        if (r < 0) {
                sodium_free(buf);
                return log_error_errno(r, "Failed to read the key %s: %m", path);
        }
        r = secret_key_from_bytes(buf, n, &k);
        sodium_free(buf);
        if (r == -EBADMSG)
                return log_error_errno(
                                -ENOKEY,
                                "Key %s has %s%zu bytes; a key is %d random bytes (or %d hex digits). "
                                "Refusing it.",
                                path, n == MAX_KEY_FILE ? "at least " : "", n, SECRET_KEY_SIZE,
                                2 * SECRET_KEY_SIZE);
        if (r < 0)
                return log_error_errno(r, "Failed to load the key %s: %m", path);
        snprintf(k->path, sizeof k->path, "%s", path);
        *ret = k;
        return 0;
}

int secret_key_read_file(const char *path, SecretKey **ret)
{
        SecretKey *k;
        int r;

        r = read_key(path, true, &k);
        if (r < 0)
                return r;
        k->source = SECRET_KEY_SOURCE_FILE;
        *ret = k;
        return 0;
}

static int fsync_dir_of(const char *path)
{
        _cleanup_free_ char *dir = strdup(path);
        _cleanup_close_ int fd = -EBADF;
        char *slash;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash == dir)
                slash[1] = 0;
        else if (slash)
                *slash = 0;
        else
                strcpy(dir, ".");
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

/* Writes the key (raw) to a new temporary file next to path; *ret_tmp names it. */
static int write_temp(const char *path, const SecretKey *k, char **ret_tmp)
{
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        const char *base = strrchr(path, '/');
        int r;

        if (asprintf(&tmp, "%.*s.%s.XXXXXX", base ? (int) (base - path + 1) : 0, path,
                     base ? base + 1 : path) < 0)
                return -ENOMEM;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fchmod(fd, 0600) < 0 || write(fd, k->bytes, sizeof k->bytes) != (ssize_t) sizeof k->bytes ||
            fsync(fd) < 0) {
                r = errno > 0 ? -errno : -EIO;
                (void) unlink(tmp);
                return r;
        }
        *ret_tmp = TAKE_PTR(tmp);
        return 0;
}

int secret_key_write_file(const char *path, const SecretKey *k)
{
        _cleanup_free_ char *tmp = NULL;
        int r;

        r = write_temp(path, k, &tmp);
        if (r < 0)
                return log_error_errno(r, "Failed to write a new key next to %s: %m", path);
        if (rename(tmp, path) < 0) {
                r = -errno;
                (void) unlink(tmp);
                return log_error_errno(r, "Failed to put the new key in place as %s: %m", path);
        }
        r = fsync_dir_of(path);
        if (r < 0)
                return log_error_errno(r, "Failed to sync the directory of %s: %m", path);
        return 0;
}

/* Creates path with a new key; never replaces an existing file (-EEXIST). */
static int create_key_file(const char *path, SecretKey **ret)
{
        _cleanup_(secret_key_freep) SecretKey *k = NULL;
        _cleanup_free_ char *tmp = NULL;
        int r;

        r = secret_key_generate(&k);
        if (r < 0)
                return log_error_errno(r, "Failed to generate a key: %m");
        r = write_temp(path, k, &tmp);
        if (r < 0)
                return log_error_errno(r, "Failed to write a new key next to %s: %m", path);
        r = link(tmp, path) < 0 ? -errno : 0;
        (void) unlink(tmp);
        if (r == -EEXIST)
                return r;
        if (r < 0)
                return log_error_errno(r, "Failed to create the key %s: %m", path);
        r = fsync_dir_of(path);
        if (r < 0)
                return log_error_errno(r, "Failed to sync the directory of %s: %m", path);
        k->source = SECRET_KEY_SOURCE_FILE;
        snprintf(k->path, sizeof k->path, "%s", path);
        *ret = TAKE_PTR(k);
        return 0;
}

static int key_paths(const char *state_dir, char **ret_key, char **ret_new)
{
        if (asprintf(ret_key, "%s/%s", state_dir, SECRET_KEY_FILENAME) < 0)
                return -ENOMEM;
        if (ret_new && asprintf(ret_new, "%s/%s.new", state_dir, SECRET_KEY_FILENAME) < 0) {
                free(*ret_key);
                *ret_key = NULL;
                return -ENOMEM;
        }
        return 0;
}

static int load_credential(SecretKey **ret)
{
        _cleanup_free_ char *path = NULL;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        SecretKey *k;
        int r;

        if (!dir || !*dir)
                return -ENOENT;
        if (asprintf(&path, "%s/%s", dir, SECRET_CREDENTIAL) < 0)
                return -ENOMEM;
        /* systemd makes the copy read-only for us alone; its mode is not ours to judge. */
        r = read_key(path, false, &k);
        if (r < 0)
                return r;
        k->source = SECRET_KEY_SOURCE_CREDENTIAL;
        *ret = k;
        return 0;
}

/* A rotation was interrupted between writing lockhub.key.new and renaming it: keep the one
 * the database was sealed with. */
static int settle_rotation(const char *key_path, const char *new_path, const char *expected_id)
{
        _cleanup_(secret_key_freep) SecretKey *nk = NULL;
        int r;

        r = read_key(new_path, true, &nk);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (expected_id && streq(nk->id, expected_id)) {
                if (rename(new_path, key_path) < 0)
                        return log_error_errno(-errno, "Failed to rename %s to %s: %m", new_path, key_path);
                (void) fsync_dir_of(key_path);
                log_notice("Completed an interrupted key rotation: %s (key id %s) is now the key.", key_path,
                           nk->id);
                return 0;
        }
        if (unlink(new_path) < 0)
                return log_error_errno(-errno, "Failed to remove %s: %m", new_path);
        log_notice("Removed %s (key id %s) left by a key rotation that did not complete.", new_path, nk->id);
        return 0;
}

int secret_key_load(const char *state_dir, const char *expected_id, SecretKey **ret)
{
        _cleanup_free_ char *key_path = NULL, *new_path = NULL;
        SecretKey *k = NULL;
        int r;

        r = key_paths(state_dir, &key_path, &new_path);
        if (r < 0)
                return log_oom();

        r = load_credential(&k);
        if (r >= 0) {
                if (access(key_path, F_OK) >= 0)
                        log_notice("Using the key from the credential %s (key id %s); %s is not used. "
                                   "Remove it (shred -u) once the credential is known to work.",
                                   SECRET_CREDENTIAL, k->id, key_path);
                *ret = k;
                return 0;
        }
        if (r != -ENOENT)
                return r == -ENOMEM ? r : -ENOKEY;

        r = settle_rotation(key_path, new_path, expected_id);
        if (r < 0)
                return -ENOKEY;

        r = secret_key_read_file(key_path, &k);
        if (r >= 0) {
                *ret = k;
                return 0;
        }
        if (r != -ENOENT)
                return r == -ENOMEM ? r : -ENOKEY;

        if (expected_id)
                return log_error_errno(
                                -ENOKEY,
                                "The database holds secrets sealed with key id %s, but there is no key: "
                                "neither the credential %s nor %s exists. Restore the key file (or the "
                                "credential) that belongs to this database; see lockhubd(8), "
                                "SECURITY.",
                                expected_id, SECRET_CREDENTIAL, key_path);

        r = create_key_file(key_path, &k);
        if (r == -EEXIST) /* someone else just created it: use theirs */
                r = secret_key_read_file(key_path, &k);
        if (r < 0)
                return r == -ENOMEM ? r : -ENOKEY;
        log_info("Created the key %s (key id %s) that seals the secrets in the database. Keep a copy "
                 "of it with every backup of the database, and separate from it.",
                 key_path, k->id);
        *ret = k;
        return 0;
}

int secret_key_stage_file(const char *state_dir, const SecretKey *k)
{
        _cleanup_free_ char *key_path = NULL, *new_path = NULL;

        if (key_paths(state_dir, &key_path, &new_path) < 0)
                return log_oom();
        return secret_key_write_file(new_path, k);
}

int secret_key_commit_file(const char *state_dir)
{
        _cleanup_free_ char *key_path = NULL, *new_path = NULL;
        int r;

        if (key_paths(state_dir, &key_path, &new_path) < 0)
                return log_oom();
        if (rename(new_path, key_path) < 0)
                return log_error_errno(-errno, "Failed to rename %s to %s: %m", new_path, key_path);
        r = fsync_dir_of(key_path);
        if (r < 0)
                return log_error_errno(r, "Failed to sync the directory of %s: %m", key_path);
        return 0;
}

void secret_key_unstage_file(const char *state_dir)
{
        _cleanup_free_ char *key_path = NULL, *new_path = NULL;

        if (key_paths(state_dir, &key_path, &new_path) >= 0)
                (void) unlink(new_path);
}

int secret_seal(const SecretKey *k, const void *ad, size_t ad_len, const void *plain, size_t n,
                uint8_t **ret, size_t *ret_n)
{
        uint8_t *out;
        unsigned long long clen = 0;

        if (secret_init() < 0)
                return -EIO;
        if (n > SIZE_MAX - SECRET_SEAL_OVERHEAD)
                return -E2BIG;
        out = malloc(n + SECRET_SEAL_OVERHEAD);
        if (!out)
                return -ENOMEM;
        out[0] = SECRET_SEAL_FORMAT_V1;
        randombytes_buf(out + 1, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
        crypto_aead_xchacha20poly1305_ietf_encrypt(out + 1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                   &clen, plain, n, ad, ad_len, NULL, out + 1, k->bytes);
        *ret = out;
        *ret_n = 1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (size_t) clen;
        return 0;
}

int secret_open(const SecretKey *k, const void *ad, size_t ad_len, const void *sealed, size_t n,
                uint8_t **ret, size_t *ret_n)
{
        const uint8_t *in = sealed;
        unsigned long long plen = 0;
        uint8_t *out;

        if (secret_init() < 0)
                return -EIO;
        if (!in || n < SECRET_SEAL_OVERHEAD || in[0] != SECRET_SEAL_FORMAT_V1)
                return -EBADMSG;
        /* +1: a zero-length secret still gets a pointer of its own */
        out = malloc(n - SECRET_SEAL_OVERHEAD + 1);
        if (!out)
                return -ENOMEM;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL,
                                                       in + 1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                       n - 1 - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                                       ad, ad_len, in + 1, k->bytes) != 0) {
                free(out);
                return -EBADMSG;
        }
        *ret = out;
        *ret_n = (size_t) plen;
        return 0;
}

void secret_free_wipe(void *p, size_t n)
{
        if (p)
                sodium_memzero(p, n);
        free(p);
}
