/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lockhubctl decode [--shared-key HEX] [--auth-id N] [--pin-size 2|4] [--show-secrets] HEX...
 *
 * Offline decoder for captured Nuki BLE traffic. Each argument is one indication or
 * write, in hex (any case, spaces and colons allowed). A 20-byte argument that does not
 * complete a message is joined with the next one (the lock sends long messages as
 * 20-byte indications). One JSON object per message on stdout. The decoding itself is
 * nuki_json_decode_frame(); this file only parses arguments and prints.
 */

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-json.h"

#define FRAGMENT_SIZE 20U

/* Returns the number of bytes, or -EINVAL. */
static int parse_hex(const char *s, uint8_t *out, size_t size)
{
        size_t n = 0;
        int hi = -1;

        for (; *s; s++) {
                int c = (unsigned char) *s, v;

                if (c == ' ' || c == ':' || c == '\t' || c == '\n')
                        continue;
                if (!isxdigit(c))
                        return -EINVAL;
                v = isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
                if (hi < 0) {
                        hi = v;
                        continue;
                }
                if (n >= size)
                        return -EMSGSIZE;
                out[n++] = (uint8_t) (hi << 4 | v);
                hi = -1;
        }
        if (hi >= 0)
                return -EINVAL;
        return (int) n;
}

static void help(void)
{
        printf("Usage: lockhubctl decode [--shared-key HEX] [--auth-id N] [--pin-size 2|4] [--show-secrets] "
               "HEX...\n\n"
               "Decode captured Nuki BLE messages offline, one JSON object per message.\n"
               "20-byte fragments of one message may be given as consecutive arguments.\n\n"
               "  --shared-key HEX  the 32-byte pairing key, to decrypt encrypted messages\n"
               "  --auth-id N       the expected authorization id of encrypted messages\n"
               "  --pin-size 2|4    security PIN size (2: Smart Lock 1-4, 4: Ultra; default: guess)\n"
               "  --show-secrets    print security PINs and invite keys instead of \"redacted\"\n");
}

static int print_object(json_object *o)
{
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                          JSON_C_TO_STRING_NOSLASHESCAPE);

        if (!s)
                return -ENOMEM;
        puts(s);
        return 0;
}

int verb_decode(int argc, char *argv[])
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },          { "shared-key", required_argument, NULL, 'k' },
                { "auth-id", required_argument, NULL, 'a' }, { "pin-size", required_argument, NULL, 'p' },
                { "show-secrets", no_argument, NULL, 's' },  {},
        };
        uint8_t key[NUKI_KEY_SIZE], buf[NUKI_FRAME_MAX], frag[NUKI_FRAME_MAX];
        NukiJsonOptions opts = {};
        uint32_t auth_id = 0;
        size_t len = 0;
        int c, r, failed = 0;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hk:a:p:s", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return CTL_EXIT_OK;
                case 'k':
                        if (parse_hex(optarg, key, sizeof(key)) != (int) sizeof(key)) {
                                fprintf(stderr, "lockhubctl decode: --shared-key needs 32 bytes of hex\n");
                                return CTL_EXIT_USAGE;
                        }
                        opts.shared_key = key;
                        break;
                case 'a': {
                        char *end;
                        unsigned long long v;

                        errno = 0;
                        v = strtoull(optarg, &end, 0);
                        if (errno || *end || !*optarg || v > UINT32_MAX || optarg[0] == '-') {
                                fprintf(stderr, "lockhubctl decode: invalid --auth-id '%s'\n", optarg);
                                return CTL_EXIT_USAGE;
                        }
                        auth_id = (uint32_t) v;
                        opts.expected_auth_id = &auth_id;
                        break;
                }
                case 'p':
                        if (!streq(optarg, "2") && !streq(optarg, "4")) {
                                fprintf(stderr, "lockhubctl decode: --pin-size must be 2 or 4\n");
                                return CTL_EXIT_USAGE;
                        }
                        opts.pin_size = (unsigned) (optarg[0] - '0');
                        break;
                case 's':
                        opts.show_secrets = true;
                        break;
                default:
                        return CTL_EXIT_USAGE;
                }

        if (optind >= argc) {
                fprintf(stderr, "lockhubctl decode: no messages given. Try 'lockhubctl decode --help'.\n");
                return CTL_EXIT_USAGE;
        }

        for (int i = optind; i < argc; i++) {
                json_object *o = NULL;
                int n;

                n = parse_hex(argv[i], frag, sizeof(frag));
                if (n < 0) {
                        fprintf(stderr, "lockhubctl decode: argument %d is not hex: '%s'\n", i - optind + 1,
                                argv[i]);
                        nuki_wipe(key, sizeof(key));
                        return CTL_EXIT_USAGE;
                }
                if ((size_t) n > sizeof(buf) - len) {
                        /* longer than any message: report what we have as one failure */
                        n = (int) MIN((size_t) n, sizeof(buf) - len);
                }
                memcpy(buf + len, frag, (size_t) n);
                len += (size_t) n;
                if ((size_t) n == FRAGMENT_SIZE && i + 1 < argc && !nuki_json_frame_complete(buf, len))
                        continue;

                r = nuki_json_decode_frame(buf, len, &opts, &o);
                if (r < 0)
                        failed++;
                if (!o || print_object(o) < 0) {
                        fprintf(stderr, "lockhubctl decode: out of memory\n");
                        json_object_put(o);
                        nuki_wipe(key, sizeof(key));
                        return CTL_EXIT_FAILURE;
                }
                json_object_put(o);
                nuki_wipe(buf, len);
                len = 0;
        }
        nuki_wipe(key, sizeof(key));
        nuki_wipe(frag, sizeof(frag));
        return failed ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}
