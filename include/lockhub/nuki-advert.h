/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Nuki advertisements (fact sheet section 6). Feed what BlueZ reports for a device
 * (ManufacturerData per company id, ServiceData per UUID, UUIDs, Name) or raw AD
 * structures from an advertising report; a NukiAdvert accumulates what was recognised.
 * Everything that is not Nuki's is ignored, including Apple HomeKit frames (type 0x06)
 * that HomeKit-enabled locks send under the same company id.
 *
 *   iBeacon (company 0x004C): 02 15 | proximity uuid = keyturner service a92ee200 (a92ae200
 *            for the Opener) | Nuki ID (major+minor, big-endian) | TX power; bit 0 of the
 *            TX-power byte is the "state changed" flag (staff, forum t/1109)
 *   pairing mode: service data under a92ee100 (gen 1-4), a92ee300 (Ultra), a92ae100 (Opener)
 *   uninitialised: the initialization service a92ee000 is advertised
 *   name: Nuki_XXXXXXXX (Nuki ID in hex), Nuki_Opener_XXXXXXXX
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NUKI_APPLE_COMPANY_ID 0x004CU

typedef struct NukiAdvert {
        bool is_nuki;

        bool has_beacon;
        uint32_t nuki_id;   /* from the beacon */
        bool state_changed; /* bit 0 of the TX-power byte */
        int8_t tx_power;
        bool opener;

        bool pairing_mode;
        bool pairing_ultra; /* a92ee300: use the Ultra pairing flow */
        bool has_pairing_nuki_id;
        uint32_t pairing_nuki_id; /* 4 bytes of pairing service data, if present (LIKELY) */

        bool uninitialized;

        bool has_name_id;
        uint32_t name_nuki_id;
} NukiAdvert;

void nuki_advert_init(NukiAdvert *a);

/* Each returns 1 if it recognised something Nuki, 0 if it ignored the input. */
int nuki_advert_parse_manufacturer(NukiAdvert *a, uint16_t company_id, const uint8_t *data, size_t n);
/* uuid: the 128-bit UUID as a string, any case (as BlueZ reports it). */
int nuki_advert_parse_service_data(NukiAdvert *a, const char *uuid, const uint8_t *data, size_t n);
int nuki_advert_parse_uuid(NukiAdvert *a, const char *uuid);
int nuki_advert_parse_name(NukiAdvert *a, const char *name);
/* Raw AD structures (len | type | data)*. Returns 1/0 as above, or -EBADMSG if a length
 * runs past the end (what came before is kept). */
int nuki_advert_parse_raw(NukiAdvert *a, const uint8_t *ad, size_t n);

/* The Nuki ID from whichever source had it; false if none. */
bool nuki_advert_nuki_id(const NukiAdvert *a, uint32_t *ret);
