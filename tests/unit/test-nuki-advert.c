/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Advertisement parsing: the Smart Lock 3.0 capture from forum t/19134, the state-changed
 * bit on both generations' TX-power values, HomeKit frames ignored, pairing mode (gen 1-4,
 * Ultra, Opener), the initialization service, names, and malformed raw AD data.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-advert.h"
#include "nuki-vectors.h"

/* 4c000215 a92ee200550111e4916c0800200c9a66 33c335c5 c8, from a lock named Nuki_33C335C5 */
#define CAPTURE "4c000215a92ee200550111e4916c0800200c9a6633c335c5c8"

static void test_beacon_capture(void **state)
{
        static const struct {
                uint8_t power;
                bool changed;
        } powers[] = { { 0xC8, false }, { 0xC9, true }, { 0xC4, false }, { 0xC5, true } };
        uint8_t d[32];
        size_t n = unhex(CAPTURE, d, sizeof(d));

        assert_int_equal(n, 25);
        for (size_t i = 0; i < ELEMENTSOF(powers); i++) {
                NukiAdvert a;
                uint32_t id;

                d[24] = powers[i].power;
                nuki_advert_init(&a);
                /* BlueZ strips the company id into the dictionary key */
                assert_int_equal(nuki_advert_parse_manufacturer(&a, (uint16_t) (d[0] | d[1] << 8), d + 2,
                                                                n - 2),
                                 1);
                assert_true(a.is_nuki);
                assert_true(a.has_beacon);
                assert_int_equal(a.nuki_id, 0x33C335C5);
                assert_int_equal(a.state_changed, powers[i].changed);
                assert_int_equal(a.tx_power, (int8_t) powers[i].power);
                assert_false(a.opener);
                assert_true(nuki_advert_nuki_id(&a, &id));
                assert_int_equal(id, 0x33C335C5);
        }
}

static void test_beacon_ignored(void **state)
{
        uint8_t d[32];
        NukiAdvert a;
        size_t n = unhex(CAPTURE, d, sizeof(d));
        uint32_t id;

        nuki_advert_init(&a);
        /* HomeKit (type 0x06) under the same company id */
        d[2] = 0x06;
        assert_int_equal(nuki_advert_parse_manufacturer(&a, 0x004C, d + 2, n - 2), 0);
        d[2] = 0x02;
        /* another company */
        assert_int_equal(nuki_advert_parse_manufacturer(&a, 0x0059, d + 2, n - 2), 0);
        /* another beacon uuid */
        d[5] = 0x00;
        assert_int_equal(nuki_advert_parse_manufacturer(&a, 0x004C, d + 2, n - 2), 0);
        d[5] = 0xe2;
        /* every truncation */
        for (size_t l = 0; l < n - 2; l++)
                assert_int_equal(nuki_advert_parse_manufacturer(&a, 0x004C, d + 2, l), 0);
        assert_false(a.is_nuki);
        assert_false(nuki_advert_nuki_id(&a, &id));
        /* the Opener's beacon */
        d[5] = 0x2a;
        assert_int_equal(nuki_advert_parse_manufacturer(&a, 0x004C, d + 2, n - 2), 1);
        assert_true(a.opener);
}

static void test_service_data_and_uuids(void **state)
{
        static const uint8_t id[4] = { 0x33, 0xC3, 0x35, 0xC5 };
        NukiAdvert a;
        uint32_t v;

        nuki_advert_init(&a);
        /* the pairing service is always there; only its service data means pairing mode */
        assert_int_equal(nuki_advert_parse_uuid(&a, "a92ee100-5501-11e4-916c-0800200c9a66"), 0);
        assert_false(a.pairing_mode);
        assert_int_equal(nuki_advert_parse_service_data(&a, "A92EE100-5501-11E4-916C-0800200C9A66", id, 4),
                         1);
        assert_true(a.pairing_mode);
        assert_false(a.pairing_ultra);
        assert_true(a.has_pairing_nuki_id);
        assert_true(nuki_advert_nuki_id(&a, &v));
        assert_int_equal(v, 0x33C335C5);

        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_service_data(&a, "a92ee300-5501-11e4-916c-0800200c9a66", NULL, 0),
                         1);
        assert_true(a.pairing_mode);
        assert_true(a.pairing_ultra);
        assert_false(a.has_pairing_nuki_id);

        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_service_data(&a, "a92ae100-5501-11e4-916c-0800200c9a66", id, 4),
                         1);
        assert_true(a.opener);

        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_uuid(&a, "a92ee000-5501-11e4-916c-0800200c9a66"), 1);
        assert_true(a.uninitialized);

        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_uuid(&a, "0000180f-0000-1000-8000-00805f9b34fb"), 0);
        assert_int_equal(nuki_advert_parse_uuid(&a, "a92ee100-5501-11e4-916c-0800200c9a6"), 0);
        assert_int_equal(nuki_advert_parse_uuid(&a, "g92ee100-5501-11e4-916c-0800200c9a66"), 0);
        assert_int_equal(nuki_advert_parse_uuid(&a, NULL), 0);
        assert_int_equal(nuki_advert_parse_service_data(&a, "a92ee999-5501-11e4-916c-0800200c9a66", id, 4),
                         0);
        assert_false(a.is_nuki);
}

static void test_names(void **state)
{
        NukiAdvert a;

        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_name(&a, "Nuki_33C335C5"), 1);
        assert_true(a.has_name_id);
        assert_int_equal(a.name_nuki_id, 0x33C335C5);
        assert_false(a.opener);

        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_name(&a, "Nuki_Opener_1A2B3C4D"), 1);
        assert_true(a.opener);
        assert_int_equal(a.name_nuki_id, 0x1A2B3C4D);

        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_name(&a, "Nuki_Bridge"), 1); /* Nuki, but no id */
        assert_false(a.has_name_id);
        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_name(&a, "Nuki_33C335C"), 1);
        assert_false(a.has_name_id);
        assert_int_equal(nuki_advert_parse_name(&a, "NukiX"), 0);
        assert_int_equal(nuki_advert_parse_name(&a, "Fitbit"), 0);
        assert_int_equal(nuki_advert_parse_name(&a, ""), 0);
        assert_int_equal(nuki_advert_parse_name(&a, NULL), 0);
}

static void test_raw(void **state)
{
        uint8_t ad[128], cap[32];
        size_t n = 0, cn = unhex(CAPTURE, cap, sizeof(cap));
        NukiAdvert a;

        /* flags */
        ad[n++] = 2;
        ad[n++] = 0x01;
        ad[n++] = 0x06;
        /* manufacturer data */
        ad[n++] = (uint8_t) (1 + cn);
        ad[n++] = 0xFF;
        memcpy(ad + n, cap, cn);
        n += cn;
        /* complete local name */
        ad[n++] = 14;
        ad[n++] = 0x09;
        memcpy(ad + n, "Nuki_33C335C5", 13);
        n += 13;

        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_raw(&a, ad, n), 1);
        assert_true(a.has_beacon);
        assert_true(a.has_name_id);
        assert_int_equal(a.name_nuki_id, a.nuki_id);

        /* every truncation: no read past the end, a clean error or a partial result */
        for (size_t l = 0; l < n; l++) {
                nuki_advert_init(&a);
                assert_true(nuki_advert_parse_raw(&a, ad, l) >= -EBADMSG);
        }
        /* a length that runs past the end */
        ad[0] = 200;
        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_raw(&a, ad, n), -EBADMSG);

        /* 128-bit service data (little-endian uuid) for the Ultra pairing service */
        {
                static const uint8_t svc[] = {
                        21,   0x21, 0x66, 0x9a, 0x0c, 0x20, 0x00, 0x08, 0x6c, 0x91, 0xe4, 0x11, 0x01, 0x55,
                        0x00, 0xe3, 0x2e, 0xa9, 0x33, 0xC3, 0x35, 0xC5, 17,   0x07, 0x66, 0x9a, 0x0c, 0x20,
                        0x00, 0x08, 0x6c, 0x91, 0xe4, 0x11, 0x01, 0x55, 0x00, 0xe0, 0x2e, 0xa9,
                };
                nuki_advert_init(&a);
                assert_int_equal(nuki_advert_parse_raw(&a, svc, sizeof(svc)), 1);
                assert_true(a.pairing_mode);
                assert_true(a.pairing_ultra);
                assert_int_equal(a.pairing_nuki_id, 0x33C335C5);
                assert_true(a.uninitialized);
        }
        /* zero length ends the walk */
        ad[0] = 0;
        nuki_advert_init(&a);
        assert_int_equal(nuki_advert_parse_raw(&a, ad, n), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_beacon_capture),
                cmocka_unit_test(test_beacon_ignored),
                cmocka_unit_test(test_service_data_and_uuids),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_raw),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
