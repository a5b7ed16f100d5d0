/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Thin wrappers over libsodium, named after the functions of the Nuki specification so
 * the pairing code reads like the spec. sodium_init() is idempotent and cheap after the
 * first call, so each entry point calls it rather than relying on global set-up.
 */

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/nuki-crypto.h"

int nuki_keypair_generate(NukiKeyPair *ret)
{
        if (sodium_init() < 0)
                return -EIO;
        if (crypto_box_keypair(ret->public_key, ret->secret_key) != 0)
                return -EIO;
        return 0;
}

int nuki_keypair_from_secret(NukiKeyPair *ret, const uint8_t secret_key[NUKI_KEY_SIZE])
{
        if (sodium_init() < 0)
                return -EIO;
        memcpy(ret->secret_key, secret_key, NUKI_KEY_SIZE);
        if (crypto_scalarmult_base(ret->public_key, ret->secret_key) != 0) {
                nuki_keypair_wipe(ret);
                return -EINVAL;
        }
        return 0;
}

void nuki_keypair_wipe(NukiKeyPair *kp)
{
        if (kp)
                sodium_memzero(kp, sizeof(*kp));
}

int nuki_dh1(uint8_t k[NUKI_KEY_SIZE], const uint8_t secret_key[NUKI_KEY_SIZE],
             const uint8_t peer_public_key[NUKI_KEY_SIZE])
{
        if (sodium_init() < 0)
                return -EIO;
        /* libsodium rejects low-order points (the result would be all zero). */
        if (crypto_scalarmult(k, secret_key, peer_public_key) != 0) {
                sodium_memzero(k, NUKI_KEY_SIZE);
                return -EINVAL;
        }
        return 0;
}

int nuki_kdf1(uint8_t s[NUKI_KEY_SIZE], const uint8_t k[NUKI_KEY_SIZE])
{
        static const uint8_t zero16[16] = { 0 };
        static const unsigned char sigma[16] = "expand 32-byte k";

        if (sodium_init() < 0)
                return -EIO;
        if (crypto_core_hsalsa20(s, zero16, k, sigma) != 0)
                return -EIO;
        return 0;
}

int nuki_shared_key(uint8_t s[NUKI_KEY_SIZE], const uint8_t secret_key[NUKI_KEY_SIZE],
                    const uint8_t peer_public_key[NUKI_KEY_SIZE])
{
        uint8_t k[NUKI_KEY_SIZE];
        int r;

        r = nuki_dh1(k, secret_key, peer_public_key);
        if (r >= 0)
                r = nuki_kdf1(s, k);
        sodium_memzero(k, sizeof(k));
        return r;
}

int nuki_authenticator(uint8_t out[NUKI_AUTHENTICATOR_SIZE], const uint8_t s[NUKI_KEY_SIZE], const void *msg,
                       size_t n)
{
        if (sodium_init() < 0)
                return -EIO;
        if (crypto_auth_hmacsha256(out, msg, n, s) != 0)
                return -EIO;
        return 0;
}

bool nuki_authenticator_verify(const uint8_t expected[NUKI_AUTHENTICATOR_SIZE],
                               const uint8_t s[NUKI_KEY_SIZE], const void *msg, size_t n)
{
        uint8_t a[NUKI_AUTHENTICATOR_SIZE];
        bool ok;

        ok = nuki_authenticator(a, s, msg, n) >= 0 && crypto_verify_32(a, expected) == 0;
        sodium_memzero(a, sizeof(a));
        return ok;
}

void nuki_random(void *buf, size_t n)
{
        /* randombytes_buf() works without sodium_init(); calling it first picks the best
         * implementation. A failure here would mean no entropy source at all. */
        if (sodium_init() < 0)
                abort();
        randombytes_buf(buf, n);
}

void nuki_wipe(void *p, size_t n)
{
        sodium_memzero(p, n);
}
