/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Advertisement parsing. Every input length is checked before a byte is read; unknown
 * structures are skipped, malformed raw AD data ends the walk.
 */

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-advert.h"

/* The 128-bit UUIDs involved differ only in bytes 1-3: a9 2e e2 00 / a9 2a e1 00 / ... */
#define NUKI_UUID_TAIL "-5501-11e4-916c-0800200c9a66"

static const uint8_t uuid_tail_be[12] = { 0x55, 0x01, 0x11, 0xe4, 0x91, 0x6c,
                                          0x08, 0x00, 0x20, 0x0c, 0x9a, 0x66 };

typedef enum NukiServiceKind {
        SVC_NONE,
        SVC_INIT,             /* a92ee000 */
        SVC_PAIRING,          /* a92ee100 */
        SVC_PAIRING_ULTRA,    /* a92ee300 */
        SVC_KEYTURNER,        /* a92ee200 */
        SVC_OPENER_PAIRING,   /* a92ae100 */
        SVC_OPENER_KEYTURNER, /* a92ae200 */
} NukiServiceKind;

static NukiServiceKind service_from_prefix(uint32_t p)
{
        switch (p) {
        case 0xa92ee000:
                return SVC_INIT;
        case 0xa92ee100:
                return SVC_PAIRING;
        case 0xa92ee300:
                return SVC_PAIRING_ULTRA;
        case 0xa92ee200:
                return SVC_KEYTURNER;
        case 0xa92ae100:
                return SVC_OPENER_PAIRING;
        case 0xa92ae200:
                return SVC_OPENER_KEYTURNER;
        default:
                return SVC_NONE;
        }
}

/* 16 bytes in big-endian (string) order. */
static NukiServiceKind service_from_be(const uint8_t *u)
{
        if (memcmp(u + 4, uuid_tail_be, sizeof(uuid_tail_be)) != 0)
                return SVC_NONE;
        return service_from_prefix(((uint32_t) u[0] << 24) | ((uint32_t) u[1] << 16) |
                                   ((uint32_t) u[2] << 8) | u[3]);
}

static NukiServiceKind service_from_string(const char *s)
{
        uint32_t p = 0;

        if (!s || strlen(s) != 36 || strcasecmp(s + 8, NUKI_UUID_TAIL) != 0)
                return SVC_NONE;
        for (size_t i = 0; i < 8; i++) {
                if (!isxdigit((unsigned char) s[i]))
                        return SVC_NONE;
                p = (p << 4) |
                    (uint32_t) (isdigit((unsigned char) s[i]) ? s[i] - '0'
                                                              : (tolower((unsigned char) s[i]) - 'a' + 10));
        }
        return service_from_prefix(p);
}

void nuki_advert_init(NukiAdvert *a)
{
        memset(a, 0, sizeof(*a));
}

int nuki_advert_parse_manufacturer(NukiAdvert *a, uint16_t company_id, const uint8_t *data, size_t n)
{
        NukiServiceKind k;

        /* iBeacon: type 0x02, length 0x15 (21 = uuid 16 + major/minor 4 + power 1). HomeKit
         * (type 0x06) and anything else is ignored ([PY]). */
        if (company_id != NUKI_APPLE_COMPANY_ID || n != 23 || data[0] != 0x02 || data[1] != 0x15)
                return 0;
        k = service_from_be(data + 2);
        if (k != SVC_KEYTURNER && k != SVC_OPENER_KEYTURNER)
                return 0;
        a->is_nuki = true;
        a->has_beacon = true;
        a->opener = k == SVC_OPENER_KEYTURNER;
        a->nuki_id = ((uint32_t) data[18] << 24) | ((uint32_t) data[19] << 16) | ((uint32_t) data[20] << 8) |
                     data[21];
        a->tx_power = (int8_t) data[22];
        /* Only bit 0 counts: SL2 alternates C4/C5, SL3 C8/C9. Comparing with -59/-60 as
         * [JS] and [GIE] do breaks on SL3 and later. */
        a->state_changed = data[22] & 0x01;
        return 1;
}

static int service_seen(NukiAdvert *a, NukiServiceKind k, const uint8_t *data, size_t n, bool is_data)
{
        switch (k) {
        case SVC_NONE:
        case SVC_KEYTURNER:
        case SVC_OPENER_KEYTURNER:
                return 0;
        case SVC_INIT:
                a->uninitialized = true;
                break;
        case SVC_PAIRING:
        case SVC_PAIRING_ULTRA:
        case SVC_OPENER_PAIRING:
                /* [ESP]: service data under the pairing service means pairing mode; a bare
                 * UUID in the list does not (the service always exists). */
                if (!is_data)
                        return 0;
                a->pairing_mode = true;
                a->pairing_ultra = k == SVC_PAIRING_ULTRA;
                a->opener = a->opener || k == SVC_OPENER_PAIRING;
                if (n == 4) {
                        a->has_pairing_nuki_id = true;
                        a->pairing_nuki_id = ((uint32_t) data[0] << 24) | ((uint32_t) data[1] << 16) |
                                             ((uint32_t) data[2] << 8) | data[3];
                }
                break;
        }
        a->is_nuki = true;
        return 1;
}

int nuki_advert_parse_service_data(NukiAdvert *a, const char *uuid, const uint8_t *data, size_t n)
{
        return service_seen(a, service_from_string(uuid), data, n, true);
}

int nuki_advert_parse_uuid(NukiAdvert *a, const char *uuid)
{
        return service_seen(a, service_from_string(uuid), NULL, 0, false);
}

static bool parse_hex8(const char *s, size_t n, uint32_t *ret)
{
        uint32_t v = 0;

        if (n != 8)
                return false;
        for (size_t i = 0; i < 8; i++) {
                int c = (unsigned char) s[i];
                if (!isxdigit(c))
                        return false;
                v = (v << 4) | (uint32_t) (isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
        }
        *ret = v;
        return true;
}

static int parse_name_len(NukiAdvert *a, const char *name, size_t n)
{
        if (n < 5 || memcmp(name, "Nuki_", 5) != 0)
                return 0;
        a->is_nuki = true;
        if (n >= 12 && memcmp(name + 5, "Opener_", 7) == 0) {
                a->opener = true;
                name += 12;
                n -= 12;
        } else {
                name += 5;
                n -= 5;
        }
        if (parse_hex8(name, n, &a->name_nuki_id))
                a->has_name_id = true;
        return 1;
}

int nuki_advert_parse_name(NukiAdvert *a, const char *name)
{
        if (!name)
                return 0;
        return parse_name_len(a, name, strlen(name));
}

int nuki_advert_parse_raw(NukiAdvert *a, const uint8_t *ad, size_t n)
{
        size_t pos = 0;
        int found = 0;

        while (pos < n) {
                size_t len = ad[pos];
                const uint8_t *d;
                size_t dl;

                if (len == 0) /* early end of significant part */
                        break;
                if (len > n - pos - 1)
                        return -EBADMSG;
                d = ad + pos + 2;
                dl = len - 1;
                switch (ad[pos + 1]) {
                case 0x06: /* incomplete / complete list of 128-bit UUIDs, little-endian */
                case 0x07:
                        for (size_t i = 0; i + 16 <= dl; i += 16) {
                                uint8_t be[16];
                                for (size_t j = 0; j < 16; j++)
                                        be[j] = d[i + 15 - j];
                                found |= service_seen(a, service_from_be(be), NULL, 0, false);
                        }
                        break;
                case 0x08: /* shortened / complete local name */
                case 0x09:
                        found |= parse_name_len(a, (const char *) d, dl);
                        break;
                case 0x21: /* service data, 128-bit UUID (little-endian) then data */
                        if (dl >= 16) {
                                uint8_t be[16];
                                for (size_t j = 0; j < 16; j++)
                                        be[j] = d[15 - j];
                                found |= service_seen(a, service_from_be(be), d + 16, dl - 16, true);
                        }
                        break;
                case 0xFF: /* manufacturer specific: company id (LE) then data */
                        if (dl >= 2)
                                found |= nuki_advert_parse_manufacturer(a, (uint16_t) (d[0] | (d[1] << 8)),
                                                                        d + 2, dl - 2);
                        break;
                default:
                        break;
                }
                pos += 1 + len;
        }
        return found;
}

bool nuki_advert_nuki_id(const NukiAdvert *a, uint32_t *ret)
{
        if (a->has_beacon)
                *ret = a->nuki_id;
        else if (a->has_pairing_nuki_id)
                *ret = a->pairing_nuki_id;
        else if (a->has_name_id)
                *ret = a->name_nuki_id;
        else
                return false;
        return true;
}
