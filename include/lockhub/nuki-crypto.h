/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Nuki cryptography, all of it libsodium (fact sheet section 3):
 *   key pair  X25519                          crypto_scalarmult_base
 *   dh1       X25519                          crypto_scalarmult
 *   kdf1      HSalsa20(zero16, "expand 32-byte k")  == crypto_box_beforenm
 *   h1        HMAC-SHA256 keyed with s        crypto_auth_hmacsha256
 *   e1        XSalsa20-Poly1305 secretbox     (nuki-frame.h)
 *
 * Every function that holds a secret in a temporary wipes it with sodium_memzero()
 * before returning. Functions return 0 or a negative errno.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lockhub/nuki-frame.h"

typedef struct NukiKeyPair {
        uint8_t public_key[NUKI_KEY_SIZE];
        uint8_t secret_key[NUKI_KEY_SIZE];
} NukiKeyPair;

/* Random key pair, or (secret_key != NULL) the pair for an injected secret key. */
int nuki_keypair_generate(NukiKeyPair *ret);
int nuki_keypair_from_secret(NukiKeyPair *ret, const uint8_t secret_key[NUKI_KEY_SIZE]);
void nuki_keypair_wipe(NukiKeyPair *kp);

/* k = dh1(sk, pk_peer). -EINVAL if pk_peer is a low-order point (all-zero result). */
int nuki_dh1(uint8_t k[NUKI_KEY_SIZE], const uint8_t secret_key[NUKI_KEY_SIZE],
             const uint8_t peer_public_key[NUKI_KEY_SIZE]);
/* s = kdf1(k) */
int nuki_kdf1(uint8_t s[NUKI_KEY_SIZE], const uint8_t k[NUKI_KEY_SIZE]);
/* s = kdf1(dh1(sk, pk_peer)), the long-term key of a pairing. */
int nuki_shared_key(uint8_t s[NUKI_KEY_SIZE], const uint8_t secret_key[NUKI_KEY_SIZE],
                    const uint8_t peer_public_key[NUKI_KEY_SIZE]);

/* HMAC-SHA256(s, msg) */
int nuki_authenticator(uint8_t out[NUKI_AUTHENTICATOR_SIZE], const uint8_t s[NUKI_KEY_SIZE], const void *msg,
                       size_t n);
/* Constant-time: true if HMAC-SHA256(s, msg) == expected. */
bool nuki_authenticator_verify(const uint8_t expected[NUKI_AUTHENTICATOR_SIZE],
                               const uint8_t s[NUKI_KEY_SIZE], const void *msg, size_t n);

/* Cryptographically random bytes (randombytes_buf). */
void nuki_random(void *buf, size_t n);
/* sodium_memzero, for callers that do not include sodium.h. */
void nuki_wipe(void *p, size_t n);
