/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * `lockhub-sim test NAME`: D-Bus client tests against a running lockhub-sim, one per
 * group of checklist items of reference/bluez.md section 10. Each asserts the traffic a
 * client sees (signals, replies, errors and their order) through the recording probe
 * (sim-probe.h). Expects the default scenario (hci0; front: SL 2.0 in pairing mode,
 * back: SL 3.0, garage: 4th gen) unless the test says otherwise; exits 0 if all checks
 * passed. SIM_TEST_VERBOSE=1 prints every recorded line.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lockhub/macro.h"
#include "sim-probe.h"
#include "sim-proto-test.h"
#include "sim.h"

#define ADAPTER "/org/bluez/hci0"
#define FRONT   ADAPTER "/dev_54_D2_72_00_00_01"
#define BACK    ADAPTER "/dev_54_D2_72_00_00_02"
#define GARAGE  ADAPTER "/dev_54_D2_72_00_00_03"
#define IF_AD   "org.bluez.Adapter1"
#define IF_DEV  "org.bluez.Device1"
#define IF_CHR  "org.bluez.GattCharacteristic1"
#define IF_DESC "org.bluez.GattDescriptor1"
#define IF_PROP "org.freedesktop.DBus.Properties"
#define IF_OM   "org.freedesktop.DBus.ObjectManager"
/* front (gen 2): handles as the lock's table lays them out */
#define F_DIS_FW   FRONT "/service000c/char0011"
#define F_PAIRING  FRONT "/service0020/char0021"
#define F_PAIR_CCC FRONT "/service0020/char0021/desc0023"
#define F_USDIO    FRONT "/service0030/char0034"

#define SEC USEC_PER_SEC

static double scale = 1.0;

/* a real-world duration as the test sees it, with slack */
static uint64_t T(uint64_t real_usec)
{
        return (uint64_t) ((double) real_usec / scale) + SEC;
}

static uint64_t now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * SEC + (uint64_t) ts.tv_nsec / 1000;
}

static bool err_is(Probe *p, int r, const char *name, const char *msg)
{
        return r == -EIO && streq(p->err_name, name) && (!msg || streq(p->err_msg, msg));
}

static int start_discovery(Probe *p)
{
        return probe_call(p, 5 * SEC, ADAPTER, IF_AD, "StartDiscovery", NULL);
}

static int stop_discovery(Probe *p)
{
        return probe_call(p, 5 * SEC, ADAPTER, IF_AD, "StopDiscovery", NULL);
}

static bool discover(Probe *p, const char *dev)
{
        char needle[128];
        snprintf(needle, sizeof(needle), "IA %s ", dev);
        if (probe_find(p, 0, needle) >= 0)
                return true;
        return probe_wait(p, 0, needle, T(5 * SEC)) >= 0;
}

static bool connect_resolved(Probe *p, const char *dev)
{
        char needle[160];
        size_t m = probe_mark(p);
        if (probe_call(p, 40 * SEC, dev, IF_DEV, "Connect", NULL) < 0)
                return false;
        snprintf(needle, sizeof(needle), "PC %s Device1 {ServicesResolved=b:true}", dev);
        return probe_wait(p, m, needle, T(5 * SEC)) >= 0;
}

static size_t count2(Probe *p, size_t from, const char *a, const char *b)
{
        size_t n = 0;
        for (size_t i = from; i < p->n_ev; i++)
                if (strstr(p->ev[i], a) && strstr(p->ev[i], b))
                        n++;
        return n;
}

static int line_of(Probe *p, size_t from, const char *a, const char *b)
{
        for (size_t i = from; i < p->n_ev; i++)
                if (strstr(p->ev[i], a) && (!b || strstr(p->ev[i], b)))
                        return (int) i;
        return -1;
}

/* ---- object model ---- */

static void test_objects(Probe *p)
{
        char v[256];
        int r, i_dev, i_svc, i_chr, i_desc, i_res;
        const char *ia;
        size_t m;

        r = probe_call(p, SEC, "/org/bluez", IF_OM, "GetManagedObjects", NULL);
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.UnknownMethod", NULL), "ObjectManager only at /");
        r = probe_call(p, SEC, "/", IF_OM, "GetManagedObjects", NULL);
        CHECK(p,
              r == 0 && line_of(p, 0,
                                "/org/"
                                "bluez=[org.freedesktop.DBus.Introspectable=[],org.bluez.AgentManager1=[],"
                                "org.bluez.ProfileManager1=[],org.freedesktop.DBus.Properties=[]]",
                                NULL) >= 0,
              "/org/bluez has AgentManager1 and ProfileManager1, with empty Introspectable/Properties "
              "entries");
        CHECK(p,
              line_of(p, 0, "REPLY GetManagedObjects", "/org/bluez/hci0=[") >= 0 &&
                              line_of(p, 0, "REPLY GetManagedObjects [/=", NULL) < 0,
              "adapter at /org/bluez/hci0; / itself is not listed");
        r = probe_get(p, ADAPTER, IF_AD, "Class", v, sizeof(v));
        CHECK(p, r == 0, "Adapter Class is u (%s)", v);

        start_discovery(p);
        CHECK(p, discover(p, FRONT), "device path dev_54_D2_72_00_00_01 (upper case, underscores)");
        i_dev = line_of(p, 0, "IA " FRONT " ", NULL);
        ia = i_dev >= 0 ? p->ev[i_dev] : "";
        CHECK(p,
              strstr(ia, " Introspectable{} Device1{Address=s:54:D2:72:00:00:01;") &&
                              strstr(ia, "} Properties{}"),
              "InterfacesAdded: Introspectable first, Properties last, current values");
        CHECK(p, strstr(ia, "RSSI=n:") != NULL, "RSSI is n");
        CHECK(p,
              strstr(ia, "ManufacturerData=a{qv}:[76=ay:0215a92ee200550111e4916c0800200c9a662a000001c") !=
                              NULL,
              "ManufacturerData is a{qv} with ay variant (iBeacon under 0x004C)");
        CHECK(p, strstr(ia, "ServiceData=a{sv}:[a92ee100-5501-11e4-916c-0800200c9a66=ay:2a000001]") != NULL,
              "ServiceData is a{sv} keyed by the 128-bit UUID");
        CHECK(p, strstr(ia, "UUIDs=as:[") && strstr(ia, "Adapter=o:/org/bluez/hci0"), "UUIDs as, Adapter o");
        CHECK(p,
              !strstr(ia, "TxPower") && !strstr(ia, "Appearance") && !strstr(ia, "Icon") &&
                              !strstr(ia, "Class"),
              "optional properties absent, not zero");

        discover(p, BACK);
        m = probe_mark(p);
        CHECK(p, connect_resolved(p, FRONT), "connect and resolve front");
        i_svc = line_of(p, m, "IA " FRONT "/service0020 ", NULL);
        i_chr = line_of(p, m, "IA " FRONT "/service0020/char0021 ", NULL);
        i_desc = line_of(p, m, "IA " FRONT "/service0020/char0021/desc0023 ", NULL);
        i_res = line_of(p, m, "PC " FRONT " Device1 {ServicesResolved=b:true}", NULL);
        CHECK(p, i_svc >= 0 && i_svc < i_chr && i_chr < i_desc && i_desc < i_res,
              "service%%04x, char%%04x (declaration handle), desc%%04x; parents first, then "
              "ServicesResolved");
        CHECK(p,
              line_of(p, m, "IA " FRONT "/service0001", NULL) < 0 &&
                              line_of(p, m, "IA " FRONT "/service", "UUID=s:00001800-") < 0,
              "no GAP (0x1800) service exported");
        ia = i_chr >= 0 ? p->ev[i_chr] : "";
        CHECK(p,
              strstr(ia, "Flags=as:[write,indicate]") && strstr(ia, "MTU=q:23") &&
                              strstr(ia, "Notifying=b:false") && !strstr(ia, "Value="),
              "characteristic: Flags as, MTU q, Notifying b, no Value before a read");
        CHECK(p, line_of(p, m, "IA " FRONT "/service0020 ", "Primary=b:true;Includes=ao:[]") >= 0,
              "service: Primary b, Includes ao");

        stop_discovery(p);
        r = probe_wait(p, 0, "PC " BACK " Device1 {} inv=[RSSI]", T(SEC));
        CHECK(p, r >= 0, "RSSI invalidated when discovery ends");
        r = probe_get(p, BACK, IF_DEV, "RSSI", v, sizeof(v));
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.InvalidArgs", "No such property 'RSSI'"),
              "Get of an absent property: InvalidArgs");
        m = probe_mark(p);
        r = probe_call(p, 5 * SEC, ADAPTER, IF_AD, "RemoveDevice", "o", BACK);
        CHECK(p, r == 0 && line_of(p, m, "IR " BACK " Properties,Introspectable,Device1", NULL) >= 0,
              "InterfacesRemoved lists several names");
        probe_call(p, 10 * SEC, FRONT, IF_DEV, "Disconnect", NULL);
}

static void test_errors(Probe *p)
{
        char v[64];
        int r;

        r = probe_get(p, ADAPTER, IF_AD, "Nope", v, sizeof(v));
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.InvalidArgs", NULL),
              "Get unknown property: InvalidArgs");
        r = probe_call(p, SEC, ADAPTER, IF_PROP, "Set", "ssv", IF_AD, "Discovering", "b", 1);
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.PropertyReadOnly", NULL),
              "Set read-only: PropertyReadOnly");
        r = probe_call(p, SEC, ADAPTER, IF_PROP, "Set", "ssv", IF_AD, "Nope", "b", 1);
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.UnknownProperty", NULL),
              "Set unknown: UnknownProperty");
        r = probe_call(p, SEC, ADAPTER, IF_PROP, "Set", "ssv", IF_AD, "Powered", "s", "yes");
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.InvalidSignature", NULL),
              "Set wrong type: InvalidSignature");
        r = probe_call(p, SEC, ADAPTER, IF_PROP, "Set", "ssv", "org.bluez.Nope", "Powered", "b", 1);
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.InvalidArgs", NULL),
              "Set on unknown interface: InvalidArgs");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "StartDiscovery", "s", "x");
        CHECK(p,
              err_is(p, r, "org.freedesktop.DBus.Error.UnknownMethod",
                     "Method \"StartDiscovery\" with signature \"s\" on interface \"org.bluez.Adapter1\" "
                     "doesn't "
                     "exist\n"),
              "wrong signature: UnknownMethod with libdbus's text");
        r = probe_call(p, SEC, ADAPTER "/dev_00_11_22_33_44_55", IF_DEV, "Connect", NULL);
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.UnknownObject", NULL),
              "missing path: UnknownObject");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "ConnectDevice", "a{sv}", 1, "Address", "s",
                       "54:D2:72:00:00:01");
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.UnknownMethod", NULL),
              "ConnectDevice absent without experimental mode");
        r = probe_call(p, SEC, "/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", "/agent",
                       "Bogus");
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", NULL),
              "RegisterAgent checks the capability");
        r = probe_call(p, SEC, "/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", "/agent",
                       "NoInputNoOutput");
        CHECK(p, r == 0, "RegisterAgent");
        r = probe_call(p, SEC, "/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", "/agent",
                       "NoInputNoOutput");
        CHECK(p, err_is(p, r, "org.bluez.Error.AlreadyExists", NULL), "RegisterAgent twice: AlreadyExists");
}

/* ---- adapter ---- */

static void test_power(Probe *p)
{
        size_t m;
        int r, i_reply, i_pc;

        start_discovery(p);
        discover(p, BACK);
        discover(p, FRONT);
        CHECK(p, connect_resolved(p, FRONT), "connect front");
        m = probe_mark(p);
        r = probe_set_bool(p, ADAPTER, IF_AD, "Powered", false);
        probe_wait(p, m, "Powered=b:false", T(SEC));
        i_reply = line_of(p, m, "REPLY Set", NULL);
        i_pc = line_of(p, m, "PC " ADAPTER " Adapter1 {", "Powered=b:false");
        CHECK(p, r == 0 && i_reply >= 0 && i_pc > i_reply, "Powered=false: the reply, then the signal");
        CHECK(p, line_of(p, m, "IR " BACK, NULL) >= 0 && line_of(p, m, "IR " BACK, NULL) < i_reply,
              "temporary devices removed before the reply");
        CHECK(p, i_pc >= 0 && strstr(p->ev[i_pc], "Class=u:0") && strstr(p->ev[i_pc], "Discovering=b:false"),
              "Class=0, Discovering=false and Powered=false batched into one PropertiesChanged");
        CHECK(p, line_of(p, m, "PC " FRONT " Device1 {", "Connected=b:false;ServicesResolved=b:false") >= 0,
              "connections torn down: Connected and ServicesResolved false together");
        CHECK(p, line_of(p, m, "IR " FRONT, NULL) < 0, "the non-temporary device stays");
        r = start_discovery(p);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotReady", "Resource Not Ready"),
              "StartDiscovery while off: NotReady");
        r = stop_discovery(p);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotReady", NULL), "StopDiscovery while off: NotReady");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 0);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotReady", NULL), "SetDiscoveryFilter while off: NotReady");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "RemoveDevice", "o", FRONT);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotReady", NULL), "RemoveDevice while off: NotReady");
        m = probe_mark(p);
        r = probe_set_bool(p, ADAPTER, IF_AD, "Powered", true);
        probe_run(p, T(200 * USEC_PER_MSEC));
        CHECK(p, r == 0 && line_of(p, m, "Powered=b:true", NULL) > line_of(p, m, "REPLY Set", NULL),
              "Powered=true after the reply");
        CHECK(p, probe_count(p, m, "Discovering=b:true") == 0 && probe_count(p, m, "Connected=b:true") == 0,
              "power-on restores nothing (no discovery, no connection)");
        r = stop_discovery(p);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "No discovery started"), "the old session is gone");
}

static void test_sessions(Probe *p)
{
        Probe *q = NULL;
        size_t m = probe_mark(p);
        int r;

        r = start_discovery(p);
        probe_wait(p, m, "Discovering=b:true", T(SEC));
        CHECK(p,
              r == 0 && line_of(p, m, "Discovering=b:true", NULL) >
                                              line_of(p, m, "REPLY StartDiscovery", NULL),
              "Discovering=true signalled after the StartDiscovery reply");
        r = start_discovery(p);
        CHECK(p, err_is(p, r, "org.bluez.Error.InProgress", "Operation already in progress"),
              "same sender twice: InProgress");
        if (probe_new(&q) < 0)
                return;
        r = start_discovery(q);
        probe_run(p, T(100 * USEC_PER_MSEC));
        CHECK(p, r == 0 && probe_count(p, m, "Discovering=b:true") == 1,
              "a second client: success, no signal");
        r = stop_discovery(p);
        probe_run(p, T(100 * USEC_PER_MSEC));
        CHECK(p, r == 0 && probe_count(p, m, "Discovering=b:false") == 0,
              "first client stops: scanning goes on for the other");
        r = stop_discovery(p);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "No discovery started"),
              "Stop without a session: Failed \"No discovery started\"");
        m = probe_mark(p);
        q = probe_free(q);
        CHECK(p, probe_wait(p, m, "PC " ADAPTER " Adapter1 {Discovering=b:false}", T(SEC)) >= 0,
              "the last client leaving the bus ends the scan");
}

static void test_filter(Probe *p)
{
        Probe *q = NULL;
        int r;

        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "Nope", "b", 1);
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", "Invalid arguments in method call"),
              "unknown key");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "RSSI", "i", 5);
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", NULL), "wrong type (RSSI i)");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "RSSI", "n",
                       (int16_t) -128);
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", NULL), "RSSI out of -127..20");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 2, "RSSI", "n", (int16_t) -70,
                       "Pathloss", "q", (uint16_t) 10);
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", NULL), "RSSI and Pathloss together");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "Transport", "s", "zigbee");
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", NULL), "bad Transport");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "UUIDs", "as", 1,
                       "not-a-uuid");
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", NULL), "bad UUID");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "GetDiscoveryFilters", NULL);
        CHECK(p,
              r == 0 && line_of(p, 0,
                                "REPLY GetDiscoveryFilters [UUIDs,RSSI,Pathloss,Transport,DuplicateData,"
                                "Discoverable,Pattern]",
                                NULL) >= 0,
              "GetDiscoveryFilters");

        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "Pattern", "s",
                       "Nuki_2A000002");
        CHECK(p, r == 0, "filter set before StartDiscovery");
        start_discovery(p);
        CHECK(p, discover(p, BACK), "Pattern filter: the matching lock is found");
        probe_run(p, T(1500 * USEC_PER_MSEC));
        CHECK(p, line_of(p, 0, "IA " FRONT, NULL) < 0 && line_of(p, 0, "IA " GARAGE, NULL) < 0,
              "the others are not");
        stop_discovery(p);
        start_discovery(p);
        probe_run(p, T(1500 * USEC_PER_MSEC));
        CHECK(p, line_of(p, 0, "IA " FRONT, NULL) < 0, "the filter survives StopDiscovery");
        if (probe_new(&q) < 0)
                return;
        probe_call(q, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 2, "UUIDs", "as", 1,
                   "a92ee200-5501-11e4-916c-0800200c9a66", "RSSI", "n", (int16_t) -75);
        start_discovery(q);
        CHECK(p, probe_wait(p, 0, "IA " FRONT, T(5 * SEC)) >= 0, "filters of two clients are merged (OR)");
        probe_run(p, T(1500 * USEC_PER_MSEC));
        CHECK(p, line_of(p, 0, "IA " GARAGE, NULL) < 0, "RSSI threshold applied (garage at -84 dBm)");
        probe_free(q);
}

static void test_creation(Probe *p)
{
        size_t m;
        int r;

        probe_ctl(p, "front", "SetDiscoverable", "b", 0);
        start_discovery(p);
        CHECK(p, discover(p, BACK), "a discoverable lock becomes a device");
        probe_run(p, T(1500 * USEC_PER_MSEC));
        CHECK(p, line_of(p, 0, "IA " FRONT " ", NULL) < 0,
              "without a filter, non-discoverable adverts create nothing");
        m = probe_mark(p);
        r = probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "Transport", "s", "le");
        CHECK(p, r == 0 && probe_wait(p, m, "IA " FRONT " ", T(3 * SEC)) >= 0,
              "once any client has a filter, they do");
}

static unsigned adverts(Probe *p, const char *lock)
{
        char v[32] = "0";
        probe_ctl_get(p, lock, "Adverts", v, sizeof(v));
        return (unsigned) strtoul(v, NULL, 10);
}

static void test_adverts(Probe *p)
{
        unsigned a0, a1;
        size_t m;
        int r, prev = 1000;
        bool delta_ok = true;

        probe_run(p, T(SEC));
        CHECK(p, line_of(p, 0, "dev_", NULL) < 0, "nothing from adverts while nobody scans");
        start_discovery(p);
        discover(p, FRONT);
        m = probe_mark(p);
        a0 = adverts(p, "front");
        probe_run(p, T(3 * SEC));
        a1 = adverts(p, "front");
        for (size_t i = m; i < p->n_ev; i++) {
                const char *s = strstr(p->ev[i], "PC " FRONT " Device1 {RSSI=n:");
                if (!s)
                        continue;
                int v = atoi(s + strlen("PC " FRONT " Device1 {RSSI=n:"));
                if (prev != 1000 && abs(v - prev) < 8)
                        delta_ok = false;
                prev = v;
        }
        CHECK(p, delta_ok && probe_count(p, m, "PC " FRONT " Device1 {RSSI") < (a1 - a0) / 2,
              "no filter: RSSI only on changes of 8 dBm or more (%zu signals, %u adverts)",
              probe_count(p, m, "PC " FRONT " Device1 {RSSI"), a1 - a0);
        CHECK(p, count2(p, m, "PC " FRONT " ", "ManufacturerData") == 0,
              "ManufacturerData: no signal while the bytes stay");
        m = probe_mark(p);
        probe_ctl(p, "front", "ManualAction", "s", "unlock");
        r = probe_wait(p, m, "ManufacturerData=a{qv}:[76=ay:0215a92ee200550111e4916c0800200c9a662a000001c5]",
                       T(2 * SEC));
        CHECK(p, r >= 0, "a state change flips the beacon's bit 0: one signal with the new bytes");
        probe_ctl(p, "front", "SetPairingMode", "b", 0);
        probe_run(p, T(SEC));
        {
                char v[256];
                r = probe_get(p, FRONT, IF_DEV, "ServiceData", v, sizeof(v));
                CHECK(p, r == 0 && strstr(v, "a92ee100"),
                      "ServiceData entries no longer advertised are kept");
        }
        stop_discovery(p);
        probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "Transport", "s", "le");
        start_discovery(p);
        probe_run(p, T(300 * USEC_PER_MSEC));
        m = probe_mark(p);
        a0 = adverts(p, "front");
        probe_run(p, T(2 * SEC));
        a1 = adverts(p, "front");
        /* per-iteration batching may merge a few under load */
        CHECK(p, probe_count(p, m, "PC " FRONT " Device1 {RSSI") + 2 >= (a1 - a0) / 3,
              "with a filter: RSSI on every advert (%zu signals, %u adverts)",
              probe_count(p, m, "PC " FRONT " Device1 {RSSI"), a1 - a0);
        CHECK(p, count2(p, m, "PC " FRONT " ", "ManufacturerData") == 0,
              "DuplicateData false: no repeats of the same bytes");
        stop_discovery(p);
        probe_call(p, SEC, ADAPTER, IF_AD, "SetDiscoveryFilter", "a{sv}", 1, "DuplicateData", "b", 1);
        start_discovery(p);
        probe_run(p, T(300 * USEC_PER_MSEC));
        m = probe_mark(p);
        probe_run(p, T(2 * SEC));
        CHECK(p,
              probe_count(p, m, "PC " FRONT " Device1 {RSSI=n:") >= 3 &&
                              probe_count(p, m, "ManufacturerData") >= 3,
              "DuplicateData true: ManufacturerData on every advert (%zu)",
              probe_count(p, m, "ManufacturerData"));
        m = probe_mark(p);
        stop_discovery(p);
        CHECK(p, probe_wait(p, m, "PC " FRONT " Device1 {} inv=[RSSI]", T(SEC)) >= 0,
              "RSSI invalidated at the end");
}

static void test_temporary(Probe *p)
{
        size_t m;
        int r, i_off, i_reply, i_ir;

        start_discovery(p);
        discover(p, BACK);
        discover(p, FRONT);
        CHECK(p, connect_resolved(p, FRONT), "Connect makes front persistent");
        m = probe_mark(p);
        stop_discovery(p);
        CHECK(p, probe_wait(p, m, "IR " BACK, T(31 * SEC)) >= 0,
              "a temporary device expires without adverts");
        probe_run(p, T(SEC));
        CHECK(p, line_of(p, m, "IR " FRONT, NULL) < 0, "the connected, non-temporary one does not");
        r = probe_call(p, SEC, ADAPTER, IF_AD, "RemoveDevice", "o", ADAPTER "/dev_00_00_00_00_00_01");
        CHECK(p, err_is(p, r, "org.bluez.Error.DoesNotExist", "Does Not Exist"),
              "RemoveDevice unknown: DoesNotExist");
        m = probe_mark(p);
        r = probe_call(p, 10 * SEC, ADAPTER, IF_AD, "RemoveDevice", "o", FRONT);
        probe_run(p, T(100 * USEC_PER_MSEC));
        i_off = line_of(p, m, "PC " FRONT " Device1 {Connected=b:false", NULL);
        i_reply = line_of(p, m, "REPLY RemoveDevice", NULL);
        i_ir = line_of(p, m, "IR " FRONT " ", NULL);
        CHECK(p, r == 0 && i_off >= 0 && i_off < i_reply && i_reply < i_ir,
              "RemoveDevice of a connected device: disconnect, reply, removal");
        CHECK(p, line_of(p, m, "IR " FRONT "/service0020/char0021 ", NULL) >= 0,
              "its GATT objects go with it");
}

/* ---- device ---- */

static void test_connect(Probe *p)
{
        size_t m;
        int r, i_conn, i_reply, i_res;
        uint64_t t0;

        start_discovery(p);
        discover(p, FRONT);
        discover(p, BACK);
        discover(p, GARAGE);
        m = probe_mark(p);
        CHECK(p, connect_resolved(p, FRONT), "Connect");
        i_conn = line_of(p, m, "PC " FRONT " Device1 {Connected=b:true}", NULL);
        i_reply = line_of(p, m, "REPLY Connect", NULL);
        i_res = line_of(p, m, "ServicesResolved=b:true", NULL);
        CHECK(p, i_conn >= 0 && i_conn < i_reply && i_reply < i_res,
              "Connected=true, then the reply, then ServicesResolved=true");
        r = probe_call(p, 5 * SEC, FRONT, IF_DEV, "Connect", NULL);
        CHECK(p, r == 0, "Connect when connected: success");

        m = probe_mark(p);
        t0 = now();
        r = probe_call(p, 10 * SEC, FRONT, IF_DEV, "Disconnect", NULL);
        probe_run(p, T(50 * USEC_PER_MSEC));
        CHECK(p, r == 0 && now() - t0 >= (uint64_t) (2.0 * SEC / scale * 0.9), "Disconnect waits ~2 s");
        CHECK(p,
              line_of(p, m, "{ServicesResolved=b:false}", NULL) < line_of(p, m, "REPLY Disconnect", NULL) &&
                              line_of(p, m, "REPLY Disconnect", NULL) <
                                              line_of(p, m, "{Connected=b:false}", NULL) &&
                              line_of(p, m, "{ServicesResolved=b:false}", NULL) >= 0,
              "ServicesResolved=false, reply, Connected=false");
        r = probe_call(p, 5 * SEC, FRONT, IF_DEV, "Disconnect", NULL);
        CHECK(p, r == 0, "Disconnect when not connected: success");

        m = probe_mark(p);
        probe_call_async(p, 40 * SEC, BACK, IF_DEV, "Connect", NULL);
        r = probe_call(p, 5 * SEC, BACK, IF_DEV, "Connect", NULL);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "Operation already in progress"),
              "Connect while one is pending: Failed \"Operation already in progress\"");
        CHECK(p, probe_wait(p, m, "REPLY Connect", T(5 * SEC)) >= 0, "the first Connect completes");
        probe_call(p, 10 * SEC, BACK, IF_DEV, "Disconnect", NULL);

        probe_ctl(p, "garage", "SetInRange", "b", 0);
        t0 = now();
        r = probe_call(p, 40 * SEC, GARAGE, IF_DEV, "Connect", NULL);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "le-connection-abort-by-local"),
              "out of range: Failed \"le-connection-abort-by-local\"");
        CHECK(p, now() - t0 >= (uint64_t) (20.0 * SEC / scale * 0.9),
              "after the 20 s LE connection timeout");

        m = probe_mark(p);
        probe_call_async(p, 40 * SEC, BACK, IF_DEV, "Connect", NULL);
        r = probe_call(p, 10 * SEC, BACK, IF_DEV, "Disconnect", NULL);
        probe_wait(p, m, "Connect org.bluez", T(SEC));
        CHECK(p,
              r == 0 && line_of(p, m, "ERROR Connect org.bluez.Error.Failed br-connection-canceled", NULL) >=
                                              0,
              "Disconnect during Connect: Failed \"br-connection-canceled\"");

        probe_ctl(p, "back", "SetLoss", "d", 1.0);
        m = probe_mark(p);
        r = probe_call(p, 40 * SEC, BACK, IF_DEV, "Connect", NULL);
        probe_run(p, T(50 * USEC_PER_MSEC));
        i_conn = line_of(p, m, "PC " BACK " Device1 {Connected=b:true}", NULL);
        i_reply = line_of(p, m, "ERROR Connect org.bluez.Error.Failed le-connection-abort-by-local", NULL);
        i_res = line_of(p, m, "PC " BACK " Device1 {Connected=b:false}", NULL);
        CHECK(p, r < 0 && i_conn >= 0 && i_conn < i_reply && i_reply < i_res,
              "a link that drops during set-up: Connected=true, the error, Connected=false");
        probe_ctl(p, "back", "SetLoss", "d", 0.0);

        CHECK(p, connect_resolved(p, FRONT), "connect again");
        m = probe_mark(p);
        probe_ctl(p, "front", "DropLink", NULL);
        CHECK(p,
              probe_wait2(p, m, "PC " FRONT " Device1 {", "Connected=b:false;ServicesResolved=b:false",
                          T(SEC)) >= 0,
              "link loss: Connected and ServicesResolved false in one signal");
}

static void test_device_misc(Probe *p)
{
        Probe *q = NULL;
        char v[128];
        size_t m;
        int r;

        start_discovery(p);
        discover(p, FRONT);
        m = probe_mark(p);
        r = probe_call(p, 20 * SEC, FRONT, IF_DEV, "Pair", NULL);
        CHECK(p,
              r == 0 && line_of(p, m, "Paired=b:true", NULL) >= 0 &&
                              line_of(p, m, "Bonded=b:true", NULL) >= 0,
              "Pair (Just Works, no agent): Paired and Bonded true");
        r = probe_call(p, 20 * SEC, FRONT, IF_DEV, "Pair", NULL);
        CHECK(p, err_is(p, r, "org.bluez.Error.AlreadyExists", NULL), "Pair again: AlreadyExists");
        r = probe_call(p, 20 * SEC, FRONT, IF_DEV, "CancelPairing", NULL);
        CHECK(p, err_is(p, r, "org.bluez.Error.DoesNotExist", NULL),
              "CancelPairing without a pairing: DoesNotExist");
        r = probe_set_bool(p, FRONT, IF_DEV, "Trusted", true);
        CHECK(p, r == 0 && probe_wait(p, m, "{Trusted=b:true}", T(SEC)) >= 0, "Trusted is writable");
        r = probe_call(p, SEC, FRONT, IF_PROP, "Set", "ssv", IF_DEV, "Alias", "s", "Front door");
        CHECK(p, r == 0 && probe_wait(p, m, "{Alias=s:Front door}", T(SEC)) >= 0, "Alias set");
        probe_call(p, SEC, FRONT, IF_PROP, "Set", "ssv", IF_DEV, "Alias", "s", "");
        r = probe_get(p, FRONT, IF_DEV, "Alias", v, sizeof(v));
        CHECK(p, r == 0 && streq(v, "v:s:Nuki_2A000001") == false && strstr(v, "Nuki_2A000001"),
              "an empty Alias falls back to Name (%s)", v);

        m = probe_mark(p);
        probe_call_async(p, 40 * SEC, BACK, IF_DEV, "Pair", NULL);
        probe_run(p, 10 * USEC_PER_MSEC);
        r = probe_call(p, 5 * SEC, BACK, IF_DEV, "CancelPairing", NULL);
        probe_wait(p, m, "Pair org.bluez", T(SEC));
        CHECK(p, r == 0 && line_of(p, m, "ERROR Pair org.bluez.Error.AuthenticationCanceled", NULL) >= 0,
              "CancelPairing during Pair: Pair fails with AuthenticationCanceled");
        probe_call(p, 10 * SEC, BACK, IF_DEV, "Disconnect", NULL);

        if (probe_new(&q) < 0)
                return;
        probe_call(q, 40 * SEC, FRONT, IF_DEV, "Connect", NULL);
        probe_wait(q, 0, "ServicesResolved=b:true", T(2 * SEC));
        probe_call_async(q, 10 * SEC, FRONT, IF_DEV, "Disconnect", NULL);
        probe_run(q, 10 * USEC_PER_MSEC);
        r = probe_call(p, 5 * SEC, FRONT "/service0020/char0021", "org.bluez.GattCharacteristic1",
                       "StartNotify", NULL);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotConnected", NULL),
              "StartNotify while disconnecting: NotConnected");
        probe_wait(q, 0, "REPLY Disconnect", T(3 * SEC));
        probe_call(q, 40 * SEC, FRONT, IF_DEV, "Connect", NULL);
        q = probe_free(q);
        probe_run(p, T(500 * USEC_PER_MSEC));
        r = probe_ctl_get(p, "front", "Connected", v, sizeof(v));
        CHECK(p, r >= 0 && streq(v, "true"), "the connection survives the client that made it");
}

/* ---- GATT ---- */

static const uint8_t request_public_key[] = { 0x01, 0x00, 0x03, 0x00, 0x27, 0xa7 };

static int write_value(Probe *p, const char *path, const uint8_t *d, size_t n, const char *type, bool async)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        /* built by hand: "ay" wants an array, not varargs */
        r = sd_bus_message_new_method_call(p->bus, &m, "org.bluez", path, IF_CHR, "WriteValue");
        if (r < 0)
                return r;
        r = sd_bus_message_append_array(m, 'y', d, n);
        if (r < 0)
                return r;
        if (type)
                r = sd_bus_message_append(m, "a{sv}", 1, "type", "s", type);
        else
                r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return r;
        return probe_send(p, m, async ? 0 : 10 * SEC, "WriteValue");
}

static void test_gatt(Probe *p)
{
        Probe *q = NULL;
        char v[256];
        size_t m;
        int r, i;

        start_discovery(p);
        discover(p, FRONT);
        CHECK(p, connect_resolved(p, FRONT), "connected");
        stop_discovery(p);

        /* ReadValue */
        m = probe_mark(p);
        probe_call_async(p, 5 * SEC, F_DIS_FW, IF_CHR, "ReadValue", "a{sv}", 0);
        r = probe_call(p, 5 * SEC, F_DIS_FW, IF_CHR, "ReadValue", "a{sv}", 0);
        probe_run(p, T(50 * USEC_PER_MSEC));
        i = line_of(p, m, "PC " F_DIS_FW " GattCharacteristic1 {Value=ay:322e31322e34}", NULL);
        CHECK(p, r == 0 && i >= 0 && i < line_of(p, m, "REPLY ReadValue", NULL),
              "Value signalled before the reply");
        CHECK(p, probe_count(p, m, "REPLY ReadValue 322e31322e34") == 2 && probe_count(p, m, "{Value=") == 1,
              "two reads at the same offset share one ATT read");
        r = probe_call(p, 5 * SEC, F_DIS_FW, IF_CHR, "ReadValue", "a{sv}", 1, "offset", "q", (uint16_t) 2);
        CHECK(p, r == 0 && line_of(p, m, "REPLY ReadValue 31322e34", NULL) >= 0, "offset (q)");
        r = probe_call(p, 5 * SEC, F_DIS_FW, IF_CHR, "ReadValue", "a{sv}", 1, "offset", "u", (uint32_t) 2);
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", NULL),
              "offset of the wrong type: InvalidArguments");
        r = probe_call(p, 5 * SEC, F_DIS_FW, IF_CHR, "ReadValue", "a{sv}", 1, "offset", "q", (uint16_t) 100);
        CHECK(p, err_is(p, r, "org.bluez.Error.InvalidArguments", "Invalid offset"), "ATT Invalid Offset");
        probe_call_async(p, 5 * SEC, F_DIS_FW, IF_CHR, "ReadValue", "a{sv}", 0);
        r = probe_call(p, 5 * SEC, F_DIS_FW, IF_CHR, "ReadValue", "a{sv}", 1, "offset", "q", (uint16_t) 1);
        CHECK(p, err_is(p, r, "org.bluez.Error.InProgress", NULL), "a read at another offset: InProgress");
        r = probe_call(p, 5 * SEC, F_PAIRING, IF_CHR, "ReadValue", "a{sv}", 0);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotPermitted", "Read not permitted"),
              "reading a write-only value");

        /* WriteValue */
        r = write_value(p, F_PAIRING, request_public_key, 6, "bogus", false);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotSupported", NULL), "unknown write type: NotSupported");
        {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *w = NULL;
                sd_bus_message_new_method_call(p->bus, &w, "org.bluez", F_PAIRING, IF_CHR, "WriteValue");
                sd_bus_message_append_array(w, 'y', request_public_key, 6);
                sd_bus_message_append(w, "a{sv}", 2, "type", "s", "command", "offset", "q", (uint16_t) 1);
                r = probe_send(p, w, 5 * SEC, "WriteValue");
                CHECK(p, err_is(p, r, "org.bluez.Error.NotSupported", NULL),
                      "command with an offset: NotSupported");
        }
        write_value(p, F_USDIO, request_public_key, 6, "request", true);
        r = write_value(p, F_USDIO, request_public_key, 6, "request", false);
        CHECK(p, err_is(p, r, "org.bluez.Error.InProgress", NULL),
              "a second write request while one is pending");
        probe_run(p, T(300 * USEC_PER_MSEC));
        r = probe_call(p, 5 * SEC, F_PAIR_CCC, IF_DESC, "WriteValue", "aya{sv}", 2, 2, 0, 0);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotPermitted", "Write not permitted"),
              "writing the CCCD: NotPermitted");
        r = probe_get(p, F_PAIRING, IF_CHR, "MTU", v, sizeof(v));
        CHECK(p, r == 0 && streq(v, "q:23"), "MTU while connected (%s)", v);

        /* notifications */
        r = probe_call(p, 5 * SEC, F_DIS_FW, IF_CHR, "StartNotify", NULL);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotSupported", NULL), "StartNotify without notify/indicate");
        r = probe_call(p, 5 * SEC, F_PAIRING, IF_CHR, "StopNotify", NULL);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "No notify session started"),
              "StopNotify without a session");
        m = probe_mark(p);
        r = probe_call(p, 5 * SEC, F_PAIRING, IF_CHR, "StartNotify", NULL);
        i = line_of(p, m, "PC " F_PAIRING " GattCharacteristic1 {Notifying=b:true}", NULL);
        CHECK(p, r == 0 && i >= 0 && i < line_of(p, m, "REPLY StartNotify", NULL),
              "Notifying=true before the reply");
        r = probe_call(p, 5 * SEC, F_PAIRING, IF_CHR, "StartNotify", NULL);
        CHECK(p, r == 0, "StartNotify again: success");
        m = probe_mark(p);
        write_value(p, F_PAIRING, request_public_key, 6, "request", false);
        write_value(p, F_PAIRING, request_public_key, 6, "request", false);
        probe_run(p, T(500 * USEC_PER_MSEC));
        CHECK(p,
              probe_count(p, m, "PC " F_PAIRING " GattCharacteristic1 {Value=ay:0300") == 2 &&
                              probe_count(p, m, "PC " F_PAIRING " GattCharacteristic1 {Value=ay:") == 4,
              "indications: one Value signal per PDU (36 bytes at MTU 23: 20 + 16), duplicates included");

        /* ATT error mapping */
        {
                static const struct {
                        uint8_t att;
                        const char *name, *msg;
                } map[] = {
                        { 0x05, "org.bluez.Error.NotPermitted", "Not paired" },
                        { 0x07, "org.bluez.Error.InvalidArguments", "Invalid offset" },
                        { 0x0d, "org.bluez.Error.InvalidArguments", "Invalid Length" },
                        { 0x08, "org.bluez.Error.NotAuthorized", NULL },
                        { 0x06, "org.bluez.Error.NotSupported", NULL },
                        { 0x11, "org.bluez.Error.Failed", "Operation failed with ATT error: 0x11" },
                };
                for (size_t k = 0; k < ELEMENTSOF(map); k++) {
                        probe_ctl(p, "front", "InjectAttError", "yu", map[k].att, 1);
                        r = write_value(p, F_USDIO, request_public_key, 6, NULL, false);
                        CHECK(p, err_is(p, r, map[k].name, map[k].msg), "ATT error 0x%02x -> %s", map[k].att,
                              map[k].name);
                }
        }
        {
                char w0[32], w1[32];
                probe_ctl_get(p, "front", "GattWrites", w0, sizeof(w0));
                r = write_value(p, F_USDIO, request_public_key, 6, "command", false);
                probe_run(p, T(200 * USEC_PER_MSEC));
                probe_ctl_get(p, "front", "GattWrites", w1, sizeof(w1));
                CHECK(p, r == 0 && atoi(w1) == atoi(w0) + 1,
                      "write command: success, delivered to the lock");
        }
        m = probe_mark(p);
        probe_call_async(p, 5 * SEC, F_USDIO, IF_CHR, "StartNotify", NULL);
        r = probe_call(p, 5 * SEC, F_USDIO, IF_CHR, "StartNotify", NULL);
        probe_wait(p, m, "REPLY StartNotify", T(SEC));
        CHECK(p, err_is(p, r, "org.bluez.Error.InProgress", NULL),
              "StartNotify while the CCCD write is pending");
        probe_ctl(p, "front", "SetLoss", "d", 1.0);
        m = probe_mark(p);
        r = write_value(p, F_USDIO, request_public_key, 6, NULL, false);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "Operation failed with ATT error: 0x0e"),
              "link loss during a write: ATT error 0x0e");
        probe_ctl(p, "front", "SetLoss", "d", 0.0);
        probe_run(p, T(100 * USEC_PER_MSEC));

        /* after disconnect */
        r = probe_get(p, F_PAIRING, IF_CHR, "UUID", v, sizeof(v));
        CHECK(p, r == 0, "GATT objects stay after disconnect");
        r = probe_get(p, F_PAIRING, IF_CHR, "MTU", v, sizeof(v));
        CHECK(p, err_is(p, r, "org.freedesktop.DBus.Error.InvalidArgs", NULL), "no MTU while disconnected");
        r = probe_call(p, 5 * SEC, F_DIS_FW, IF_CHR, "ReadValue", "a{sv}", 0);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "Not connected"),
              "ReadValue: Failed \"Not connected\"");
        r = write_value(p, F_USDIO, request_public_key, 6, NULL, false);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "Not connected"),
              "WriteValue: Failed \"Not connected\"");
        if (probe_new(&q) < 0)
                return;
        r = probe_call(q, 5 * SEC, F_PAIRING, IF_CHR, "StartNotify", NULL);
        CHECK(p, r == 0, "StartNotify while disconnected: success (armed)");
        CHECK(p, line_of(p, m, "{Notifying=b:false}", NULL) < 0, "Notifying stays true across the gap");
        CHECK(p, connect_resolved(p, FRONT), "reconnect");
        m = probe_mark(p);
        write_value(p, F_PAIRING, request_public_key, 6, "request", false);
        CHECK(p, probe_wait(p, m, "PC " F_PAIRING " GattCharacteristic1 {Value=ay:0300", T(SEC)) >= 0,
              "sessions survive the reconnect (re-enabled by the daemon)");
        q = probe_free(q);
        probe_run(p, T(100 * USEC_PER_MSEC));
        CHECK(p, line_of(p, m, "{Notifying=b:false}", NULL) < 0,
              "one client leaving: the other's session stays");
        r = probe_call(p, 5 * SEC, F_PAIRING, IF_CHR, "StopNotify", NULL);
        CHECK(p, r == 0 && probe_wait(p, m, "{Notifying=b:false}", T(SEC)) >= 0,
              "the last StopNotify: Notifying=false");
        r = probe_call(p, 5 * SEC, F_PAIRING, IF_CHR, "AcquireWrite", "a{sv}", 0);
        CHECK(p, err_is(p, r, "org.bluez.Error.NotSupported", NULL),
              "AcquireWrite without write-without-response");
}

static void test_service_changed(Probe *p)
{
        size_t m;
        int r;

        start_discovery(p);
        discover(p, FRONT);
        CHECK(p, connect_resolved(p, FRONT), "connected");
        m = probe_mark(p);
        probe_ctl(p, "front", "ServiceChangedIndicate", NULL);
        r = probe_wait(p, m, "IA " FRONT "/service0030 ", T(SEC));
        probe_run(p, T(100 * USEC_PER_MSEC));
        CHECK(p,
              r >= 0 && line_of(p, m, "IR " FRONT "/service0020 ", NULL) >= 0 &&
                              line_of(p, m, "IR " FRONT "/service0020 ", NULL) < r,
              "Service Changed: objects removed and re-added live");
        r = line_of(p, m, "ServicesResolved", NULL);
        CHECK(p, r < 0, "ServicesResolved does not toggle%s%s", r >= 0 ? ": " : "", r >= 0 ? p->ev[r] : "");
        CHECK(p, line_of(p, m, "IA " FRONT "/service0030 ", "UUID=s:a92ee100") >= 0, "at the new handles");

        probe_ctl(p, "front", "ServiceChanged", NULL);
        r = write_value(p, FRONT "/service0030/char0031", request_public_key, 6, NULL, false);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "Operation failed with ATT error: 0x01"),
              "table changed without Service Changed: stale handles fail");
        probe_call(p, 10 * SEC, FRONT, IF_DEV, "Disconnect", NULL);
        CHECK(p, connect_resolved(p, FRONT), "reconnect");
        r = write_value(p, FRONT "/service0030/char0031", request_public_key, 6, NULL, false);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "Operation failed with ATT error: 0x01"),
              "still stale after a reconnect (no database hash)");
        probe_call(p, 10 * SEC, ADAPTER, IF_AD, "RemoveDevice", "o", FRONT);
        m = probe_mark(p);
        CHECK(p, probe_wait(p, m, "IA " FRONT " ", T(5 * SEC)) >= 0, "rediscovered after RemoveDevice");
        CHECK(p, connect_resolved(p, FRONT), "connect");
        r = write_value(p, FRONT "/service0040/char0041", request_public_key, 6, NULL, false);
        CHECK(p, r == 0, "fresh objects at the new handles work");
}

/* ---- life cycle ---- */

static void test_lifecycle(Probe *p)
{
        size_t m;
        int r, i_noc, i_ia, i_on;

        start_discovery(p);
        discover(p, FRONT);
        CHECK(p, connect_resolved(p, FRONT), "connected");
        m = probe_mark(p);
        probe_ctl(p, NULL, "StopBluez", "u", 500);
        i_noc = probe_wait(p, m, "NOC org.bluez owner->none", 5 * SEC);
        CHECK(p,
              i_noc >= 0 && line_of(p, m, "Powered=b:false", NULL) >= 0 &&
                              line_of(p, m, "Powered=b:false", NULL) < i_noc &&
                              line_of(p, m, "Connected=b:false;ServicesResolved=b:false", NULL) < i_noc,
              "clean shutdown: the Powered=false cascade, then the name goes");
        CHECK(p, line_of(p, m, "IR ", NULL) < 0 || line_of(p, m, "IR ", NULL) < i_noc,
              "no InterfacesRemoved after the name is gone");
        m = probe_mark(p);
        r = probe_wait(p, m, "NOC org.bluez none->owner", 5 * SEC);
        i_ia = probe_wait(p, m, "IA " ADAPTER " ", 5 * SEC);
        i_on = probe_wait(p, m, "PC " ADAPTER " Adapter1 {", 5 * SEC);
        CHECK(p, r >= 0 && r < i_ia && i_ia < i_on && strstr(p->ev[i_on], "Powered=b:true"),
              "restart: name first, adapter later, Powered=true shortly after");
        CHECK(p,
              line_of(p, m, "IA " FRONT " ", NULL) >= 0 && line_of(p, m, "IA " FRONT "/service", NULL) < 0,
              "the stored device is back, without GATT objects until it connects");
        r = stop_discovery(p);
        CHECK(p, err_is(p, r, "org.bluez.Error.Failed", "No discovery started"), "all sessions forgotten");
        CHECK(p, connect_resolved(p, FRONT) && line_of(p, m, "IA " FRONT "/service0020 ", NULL) >= 0,
              "GATT objects exported again on connect");
        m = probe_mark(p);
        probe_ctl(p, NULL, "CrashBluez", "u", 300);
        i_noc = probe_wait(p, m, "NOC org.bluez owner->none", 5 * SEC);
        CHECK(p, i_noc >= 0 && line_of(p, m, "PC ", NULL) < 0 && line_of(p, m, "IR ", NULL) < 0,
              "crash: name loss only");
        CHECK(p, probe_wait(p, m, "Powered=b:true", 5 * SEC) >= 0, "and back");
}

static void test_hang(Probe *p)
{
        int r;

        probe_ctl(p, NULL, "HangAdapter", "s", "hci0");
        r = probe_call(p, 500 * USEC_PER_MSEC, ADAPTER, IF_AD, "StartDiscovery", NULL);
        CHECK(p, r < 0 && (streq(p->err_name, "org.freedesktop.DBus.Error.NoReply") || r == -ETIMEDOUT),
              "a hung adapter: calls time out (%s)", p->err_name);
        r = probe_set_bool(p, ADAPTER, IF_AD, "Powered", false);
        CHECK(p, r == 0, "power off");
        r = probe_set_bool(p, ADAPTER, IF_AD, "Powered", true);
        CHECK(p, r == 0, "power on");
        r = start_discovery(p);
        CHECK(p, r == 0, "works again after the power cycle");
}

static void test_experimental(Probe *p)
{
        char v[128];
        size_t m;
        int r;

        r = probe_call(p, 40 * SEC, ADAPTER, IF_AD, "ConnectDevice", "a{sv}", 1, "Address", "s",
                       "11:22:33:44:55:66");
        CHECK(p, err_is(p, r, "org.bluez.Failed", NULL),
              "ConnectDevice failure uses the malformed name org.bluez.Failed");
        m = probe_mark(p);
        r = probe_call(p, 40 * SEC, ADAPTER, IF_AD, "ConnectDevice", "a{sv}", 1, "Address", "s",
                       "54:D2:72:00:00:02");
        CHECK(p,
              r == 0 && line_of(p, m, "{Connected=b:true}", NULL) >= 0 &&
                              line_of(p, m, "REPLY ConnectDevice " BACK, NULL) >
                                              line_of(p, m, "{Connected=b:true}", NULL),
              "ConnectDevice: the device path once the link is up");
        r = probe_get(p, BACK, IF_DEV, "Alias", v, sizeof(v));
        CHECK(p, r == 0 && strstr(v, "54-D2-72-00-00-02"),
              "Alias falls back to the address with dashes (%s)", v);
        r = probe_call(p, 5 * SEC, ADAPTER, IF_AD, "ConnectDevice", "a{sv}", 1, "Address", "s",
                       "54:D2:72:00:00:02");
        CHECK(p, err_is(p, r, "org.bluez.Error.AlreadyExists", NULL),
              "ConnectDevice of a known device: AlreadyExists");
        probe_call(p, 10 * SEC, BACK, IF_DEV, "Disconnect", NULL);
        m = probe_mark(p);
        start_discovery(p);
        CHECK(p,
              probe_wait(p, m, "PC " BACK " Device1 {Name=s:Nuki_2A000002;Alias=s:Nuki_2A000002",
                         T(5 * SEC)) >= 0,
              "a Name change also signals Alias");
}

static void test_disconnected_signal(Probe *p)
{
        size_t m;
        int i_sr, i_sig, i_off;

        start_discovery(p);
        discover(p, FRONT);
        CHECK(p, connect_resolved(p, FRONT), "connected");
        m = probe_mark(p);
        probe_call(p, 10 * SEC, FRONT, IF_DEV, "Disconnect", NULL);
        probe_run(p, T(50 * USEC_PER_MSEC));
        i_sr = line_of(p, m, "{ServicesResolved=b:false}", NULL);
        i_sig = line_of(p, m, "SIG " FRONT " Disconnected", NULL);
        i_off = line_of(p, m, "{Connected=b:false}", NULL);
        CHECK(p, i_sr >= 0 && i_sr < i_sig && i_sig < i_off,
              "5.83 mode: Disconnected after ServicesResolved=false, before Connected=false");
        CHECK(p, connect_resolved(p, FRONT), "connected again");
        m = probe_mark(p);
        probe_ctl(p, "front", "DropLink", NULL);
        CHECK(p, probe_wait(p, m, "SIG " FRONT " Disconnected", T(SEC)) >= 0, "also on link loss");
}

/* run with connect-reply-first and remove-parents-first: what a tolerant client must survive */
static void test_reorder(Probe *p)
{
        size_t m;
        int r;

        start_discovery(p);
        discover(p, FRONT);
        m = probe_mark(p);
        CHECK(p, connect_resolved(p, FRONT), "connected");
        CHECK(p, line_of(p, m, "REPLY Connect", NULL) < line_of(p, m, "{Connected=b:true}", NULL),
              "the Connect reply before Connected=true");
        probe_call(p, 10 * SEC, FRONT, IF_DEV, "Disconnect", NULL);
        m = probe_mark(p);
        r = probe_call(p, 10 * SEC, ADAPTER, IF_AD, "RemoveDevice", "o", FRONT);
        CHECK(p,
              r == 0 && line_of(p, m, "IR " FRONT " ", NULL) >= 0 &&
                              line_of(p, m, "IR " FRONT " ", NULL) <
                                              line_of(p, m, "IR " FRONT "/service", NULL),
              "a device removed before its GATT objects");
}

typedef struct Test {
        const char *name;
        void (*fn)(Probe *p);
} Test;

static const Test tests[] = {
        { "objects", test_objects },
        { "errors", test_errors },
        { "power", test_power },
        { "sessions", test_sessions },
        { "filter", test_filter },
        { "adverts", test_adverts },
        { "temporary", test_temporary },
        { "connect", test_connect },
        { "device", test_device_misc },
        { "gatt", test_gatt },
        { "service-changed", test_service_changed },
        { "lifecycle", test_lifecycle },
        { "hang", test_hang },
        { "experimental", test_experimental },
        { "creation", test_creation },
        { "reorder", test_reorder },
        { "disconnected-signal", test_disconnected_signal },
        { "protocol", sim_proto_test_protocol },
        { "pairing", sim_proto_test_pairing },
        { "model", sim_proto_test_model },
        { "advert-bit", sim_proto_test_advert_bit },
        { "ultra", sim_proto_test_ultra },
};

int sim_test_main(int argc, char **argv)
{
        Probe *p = NULL;
        char v[32];
        int ret;

        if (argc != 1) {
                fprintf(stderr, "usage: lockhub-sim test NAME\n  NAME:");
                for (size_t i = 0; i < ELEMENTSOF(tests); i++)
                        fprintf(stderr, " %s", tests[i].name);
                fputc('\n', stderr);
                return 2;
        }
        for (size_t i = 0; i < ELEMENTSOF(tests); i++) {
                if (!streq(tests[i].name, argv[0]))
                        continue;
                if (probe_new(&p) < 0) {
                        fprintf(stderr, "cannot connect to the bus\n");
                        return 1;
                }
                if (probe_ctl_get(p, NULL, "TimeScale", v, sizeof(v)) >= 0)
                        scale = strtod(v, NULL);
                if (scale <= 0.0)
                        scale = 1.0;
                sim_proto_set_scale(scale);
                tests[i].fn(p);
                printf("%s: %u checks, %u failed\n", argv[0], p->checks, p->failed);
                if (p->failed && getenv("SIM_TEST_DUMP"))
                        probe_dump(p, 0);
                ret = p->failed || p->checks == 0 ? 1 : 0;
                probe_free(p);
                return ret;
        }
        fprintf(stderr, "unknown test %s\n", argv[0]);
        return 2;
}
