/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Writes the seed corpora of the fuzz-nuki-* targets from the official examples (see
 * tests/unit/nuki-vectors.h) and from messages encrypted with example A's shared key.
 * Not part of the build; the seeds are committed. To regenerate, from the top directory:
 *
 *   cc -std=c11 -D_GNU_SOURCE -Iinclude -Itests/unit tests/fuzz/nuki-corpus-gen.c \
 *      build/liblockhub.a $(pkg-config --libs libsodium json-c) -o build/nuki-corpus-gen
 *   build/nuki-corpus-gen tests/fuzz/corpus
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lockhub/nuki-advert.h"
#include "lockhub/nuki-cmd.h"
#include "lockhub/nuki-frame.h"
#include "nuki-vectors.h"

static const char *top;

static void put(const char *target, const char *name, const uint8_t *p, size_t n)
{
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", top, target);
        (void) mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/%s/%s", top, target, name);
        f = fopen(path, "wb");
        if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
                perror(path);
                exit(EXIT_FAILURE);
        }
}

typedef struct Buf {
        uint8_t d[4096];
        size_t n;
} Buf;

static void add(Buf *b, const uint8_t *p, size_t n)
{
        if (n > sizeof(b->d) - b->n)
                abort();
        memcpy(b->d + b->n, p, n);
        b->n += n;
}

static void add_byte(Buf *b, uint8_t x)
{
        add(b, &x, 1);
}

/* as length-prefixed chunks of at most `frag` bytes */
static void add_chunks(Buf *b, const uint8_t *p, size_t n, size_t frag)
{
        for (size_t o = 0; o < n; o += frag) {
                size_t l = n - o < frag ? n - o : frag;
                add_byte(b, (uint8_t) l);
                add(b, p + o, l);
        }
}

static const char *const plain[] = {
        A_STEP1,
        A_STEP2_FRAG1 A_STEP2_FRAG2,
        A_STEP3,
        A_STEP4_FRAG1 A_STEP4_FRAG2,
        A_STEP5,
        A_STEP7,
        A_STEP8_FRAG1 A_STEP8_FRAG2 A_STEP8_FRAG3 A_STEP8_FRAG4 A_STEP8_FRAG5,
        A_STEP9,
        A_STEP10,
        D_STEP7,
        D_STEP8,
        E_STEP6,
        E_STEP8,
        FORUM_AUTH_INFO_PIN_SET,
        FORUM_STATUS_F1,
        FORUM_ERROR_NOT_AUTH,
        FORUM_ERROR_BAD_CRC,
        FORUM_ERROR_UNKNOWN,
};

static uint8_t key[32];

/* One message of every command, filled with a pattern; returns the payload length. */
static int sample(const NukiCommand *c, unsigned pin, NukiMsg *m, uint8_t *payload)
{
        nuki_msg_init(m, c->id, c->variant);
        for (size_t i = 0; i < c->n_fields; i++) {
                const NukiField *f = &c->fields[i];
                uint8_t *v = (uint8_t *) m + f->offset;

                switch (f->type) {
                case NUKI_FIELD_BOOL:
                        *(bool *) v = true;
                        break;
                case NUKI_FIELD_NAME:
                        memcpy(v, "lockhub", 7);
                        break;
                case NUKI_FIELD_PIN:
                        *(uint32_t *) v = pin == 2 ? 1234 : 123456;
                        break;
                case NUKI_FIELD_BLOB:
                        ((NukiBlob *) v)->len = 4;
                        memset(((NukiBlob *) v)->data, 2, 4);
                        break;
                case NUKI_FIELD_TIME:
                        *(NukiTime *) v = (NukiTime){ 2024, 5, 17, 12, 30, 45 };
                        break;
                case NUKI_FIELD_U8:
                        *v = 2;
                        break;
                case NUKI_FIELD_U16:
                case NUKI_FIELD_S16:
                case NUKI_FIELD_U32:
                case NUKI_FIELD_S8:
                case NUKI_FIELD_F32:
                case NUKI_FIELD_TIME_OF_DAY:
                case NUKI_FIELD_BYTES:
                        *v = 0x11;
                        break;
                }
        }
        return nuki_msg_encode_payload(m, pin, payload, NUKI_PAYLOAD_MAX);
}

int main(int argc, char *argv[])
{
        const NukiCommand *t;
        size_t nt;
        uint8_t nonce[24] = { 0 }, fr[NUKI_FRAME_MAX], kts[NUKI_FRAME_MAX], payload[NUKI_PAYLOAD_MAX];
        int kts_len;
        char name[128];
        Buf b;

        if (argc != 2) {
                fprintf(stderr, "usage: %s CORPUS-DIR\n", argv[0]);
                return EXIT_FAILURE;
        }
        top = argv[1];
        unhex(A_S, key, 32);
        nt = nuki_command_table(&t);

        /* a full Keyturner States, encrypted for auth-id 2 */
        {
                NukiMsg m;
                nuki_msg_init(&m, NUKI_CMD_KEYTURNER_STATES, NUKI_VARIANT_DEFAULT);
                m.keyturner_states.nuki_state = 2;
                m.keyturner_states.lock_state = 1;
                m.keyturner_states.current_time = (NukiTime){ 2016, 3, 7, 8, 15, 30 };
                m.keyturner_states.battery = 0xA9;
                kts_len = nuki_msg_encode_encrypted(&m, 2, key, nonce, 2, kts, sizeof(kts));
        }

        /* fuzz-nuki-frame and fuzz-nuki-cmd: every vector frame, every command */
        for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
                NukiFrame f;
                size_t n = unhex(plain[i], fr, sizeof(fr));
                snprintf(name, sizeof(name), "vector-%02zu", i);
                put("fuzz-nuki-frame", name, fr, n);
                if (nuki_frame_decode_plain(fr, n, &f) == 0) {
                        b.n = 0;
                        add(&b, fr, 2);
                        add_byte(&b, 0);
                        add(&b, f.payload, f.payload_len);
                        put("fuzz-nuki-cmd", name, b.d, b.n);
                }
        }
        put("fuzz-nuki-frame", "keyturner-states-encrypted", kts, (size_t) kts_len);
        for (size_t i = 0; i < nt; i++)
                for (unsigned pin = 2; pin <= 4; pin += 2) {
                        NukiMsg m;
                        int n = sample(&t[i], pin, &m, payload);
                        int fl;

                        if (n < 0)
                                continue;
                        snprintf(name, sizeof(name), "%s-%s-pin%u", t[i].name,
                                 t[i].variant == NUKI_VARIANT_ULTRA ? "ultra" : "default", pin);
                        nonce[0] = (uint8_t) i;
                        fl = nuki_msg_encode_encrypted(&m, pin, key, nonce, 2, fr, sizeof(fr));
                        if (fl > 0)
                                put("fuzz-nuki-frame", name, fr, (size_t) fl);
                        b.n = 0;
                        add_byte(&b, (uint8_t) t[i].id);
                        add_byte(&b, (uint8_t) (t[i].id >> 8));
                        add_byte(&b, (uint8_t) (pin == 2 ? 1 : 2));
                        add(&b, payload, (size_t) n);
                        put("fuzz-nuki-cmd", name, b.d, b.n);
                }

        /* fuzz-nuki-reasm: mode, time step, chunks */
        b.n = 0;
        add_byte(&b, NUKI_REASM_PLAIN);
        add_byte(&b, 0);
        {
                size_t n = unhex(A_STEP2_FRAG1 A_STEP2_FRAG2, fr, sizeof(fr));
                add_chunks(&b, fr, n, 20);
                n = unhex(A_STEP8_FRAG1 A_STEP8_FRAG2 A_STEP8_FRAG3 A_STEP8_FRAG4 A_STEP8_FRAG5, fr,
                          sizeof(fr));
                add_chunks(&b, fr, n, 20);
                n = unhex(A_STEP10 FORUM_STATUS_F1, fr, sizeof(fr));
                add_chunks(&b, fr, n, 20);
        }
        put("fuzz-nuki-reasm", "plain-fragments", b.d, b.n);
        b.n = 0;
        add_byte(&b, NUKI_REASM_ENCRYPTED);
        add_byte(&b, 50);
        add_chunks(&b, kts, (size_t) kts_len, 20);
        add_chunks(&b, kts, (size_t) kts_len, 100);
        put("fuzz-nuki-reasm", "encrypted-fragments", b.d, b.n);
        b.n = 0;
        add_byte(&b, NUKI_REASM_ULTRA_PAIRING_REPLY);
        add_byte(&b, 1);
        {
                size_t n = unhex(E_STEP8, fr, sizeof(fr));
                add_chunks(&b, fr, n, 20);
        }
        add_chunks(&b, kts, (size_t) kts_len, 20);
        put("fuzz-nuki-reasm", "ultra-reply", b.d, b.n);

        /* fuzz-nuki-advert */
        {
                static const uint8_t ad[] = {
                        2,    0x01, 0x06, 26,   0xFF, 0x4c, 0x00, 0x02, 0x15, 0xa9, 0x2e, 0xe2, 0x00,
                        0x55, 0x01, 0x11, 0xe4, 0x91, 0x6c, 0x08, 0x00, 0x20, 0x0c, 0x9a, 0x66, 0x33,
                        0xc3, 0x35, 0xc5, 0xc9, 14,   0x09, 'N',  'u',  'k',  'i',  '_',  '3',  '3',
                        'C',  '3',  '3',  '5',  'C',  '5',  21,   0x21, 0x66, 0x9a, 0x0c, 0x20, 0x00,
                        0x08, 0x6c, 0x91, 0xe4, 0x11, 0x01, 0x55, 0x00, 0xe3, 0x2e, 0xa9, 0x33, 0xC3,
                        0x35, 0xC5, 17,   0x07, 0x66, 0x9a, 0x0c, 0x20, 0x00, 0x08, 0x6c, 0x91, 0xe4,
                        0x11, 0x01, 0x55, 0x00, 0xe0, 0x2e, 0xa9,
                };
                static const uint8_t beacon[] = { 0x00, 0x02, 0x15, 0xa9, 0x2e, 0xe2, 0x00, 0x55,
                                                  0x01, 0x11, 0xe4, 0x91, 0x6c, 0x08, 0x00, 0x20,
                                                  0x0c, 0x9a, 0x66, 0x33, 0xc3, 0x35, 0xc5, 0xc8 };
                static const uint8_t svc[] = { 0x02, 0x33, 0xc3, 0x35, 0xc5 };
                put("fuzz-nuki-advert", "raw", ad, sizeof(ad));
                put("fuzz-nuki-advert", "beacon", beacon, sizeof(beacon));
                put("fuzz-nuki-advert", "service-data", svc, sizeof(svc));
                put("fuzz-nuki-advert", "name", (const uint8_t *) "\x01Nuki_Opener_1A2B3C4D", 21);
        }

        /* fuzz-nuki-json: options byte, then arguments */
        b.n = 0;
        add_byte(&b, 2);
        {
                size_t n = unhex(A_STEP2_FRAG1 A_STEP2_FRAG2, fr, sizeof(fr));
                add_chunks(&b, fr, n, 20);
                add_chunks(&b, kts, (size_t) kts_len, 20);
                n = unhex("0E00009DD8", fr, sizeof(fr));
                add_chunks(&b, fr, n, 20);
                n = unhex(FORUM_ERROR_BAD_CRC, fr, sizeof(fr));
                add_chunks(&b, fr, n, 20);
        }
        put("fuzz-nuki-json", "session", b.d, b.n);
        b.n = 0;
        add_byte(&b, 1);
        add_chunks(&b, kts, (size_t) kts_len, 255);
        put("fuzz-nuki-json", "no-key", b.d, b.n);

        /* fuzz-nuki-pair: client gen 1-4 walks example A to the end; Ultra reply; lock; sessions */
        b.n = 0;
        add_byte(&b, 0);
        {
                static const char *const steps[] = {
                        A_STEP2_FRAG1 A_STEP2_FRAG2, A_STEP4_FRAG1 A_STEP4_FRAG2,
                        A_STEP6_FRAG1 A_STEP6_FRAG2,
                        A_STEP8_FRAG1 A_STEP8_FRAG2 A_STEP8_FRAG3 A_STEP8_FRAG4 A_STEP8_FRAG5, A_STEP10
                };
                for (size_t i = 0; i < 5; i++) {
                        size_t n = unhex(steps[i], fr, sizeof(fr));
                        add_byte(&b, (uint8_t) n);
                        add(&b, fr, n);
                }
        }
        put("fuzz-nuki-pair", "client-example-a", b.d, b.n);
        b.n = 0;
        add_byte(&b, 1);
        {
                static const char *const steps[] = { A_STEP2_FRAG1 A_STEP2_FRAG2,
                                                     A_STEP4_FRAG1 A_STEP4_FRAG2, E_STEP6, E_STEP8 };
                for (size_t i = 0; i < 4; i++) {
                        size_t n = unhex(steps[i], fr, sizeof(fr));
                        add_byte(&b, (uint8_t) n);
                        add(&b, fr, n);
                }
        }
        put("fuzz-nuki-pair", "client-ultra", b.d, b.n);
        for (uint8_t which = 2; which <= 3; which++) {
                b.n = 0;
                add_byte(&b, which);
                {
                        static const char *const steps[] = { A_STEP1, A_STEP3, A_STEP5, A_STEP7, A_STEP9 };
                        for (size_t i = 0; i < 5; i++) {
                                size_t n = unhex(steps[i], fr, sizeof(fr));
                                add_byte(&b, (uint8_t) n);
                                add(&b, fr, n);
                        }
                }
                put("fuzz-nuki-pair", which == 2 ? "lock" : "lock-ultra", b.d, b.n);
        }
        {
                NukiMsg m;
                int n;

                b.n = 0;
                add_byte(&b, 4 | 16);
                nuki_msg_init(&m, NUKI_CMD_CHALLENGE, NUKI_VARIANT_DEFAULT);
                n = nuki_msg_encode_encrypted(&m, 2, key, nonce, 2, fr, sizeof(fr));
                add_byte(&b, (uint8_t) n);
                add(&b, fr, (size_t) n);
                nuki_msg_init(&m, NUKI_CMD_STATUS, NUKI_VARIANT_DEFAULT);
                m.status.status = 1;
                n = nuki_msg_encode_encrypted(&m, 2, key, nonce, 2, fr, sizeof(fr));
                add_byte(&b, (uint8_t) n);
                add(&b, fr, (size_t) n);
                add_byte(&b, (uint8_t) kts_len);
                add(&b, kts, (size_t) kts_len);
                m.status.status = 0;
                n = nuki_msg_encode_encrypted(&m, 2, key, nonce, 2, fr, sizeof(fr));
                add_byte(&b, (uint8_t) n);
                add(&b, fr, (size_t) n);
                put("fuzz-nuki-pair", "session", b.d, b.n);

                b.n = 0;
                add_byte(&b, 5);
                nuki_msg_init(&m, NUKI_CMD_LOCK_ACTION, NUKI_VARIANT_DEFAULT);
                m.n_optional = 0;
                n = nuki_msg_encode_encrypted(&m, 2, key, nonce, 2, fr, sizeof(fr));
                add_byte(&b, (uint8_t) n);
                add(&b, fr, (size_t) n);
                nuki_msg_init(&m, NUKI_CMD_REQUEST_DATA, NUKI_VARIANT_DEFAULT);
                m.request_data.command = 4;
                m.n_optional = 0;
                n = nuki_msg_encode_encrypted(&m, 2, key, nonce, 2, fr, sizeof(fr));
                add_byte(&b, (uint8_t) n);
                add(&b, fr, (size_t) n);
                put("fuzz-nuki-pair", "lock-session", b.d, b.n);
        }
        return EXIT_SUCCESS;
}
