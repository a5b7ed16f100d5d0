/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Scenario files: INI-style sections describing the simulator, its adapters and its
 * locks. Every error is reported with file:line, all of them in one pass.
 *
 *   # comment
 *   [sim]
 *   scale = 20                  # time scale: every delay divided by this
 *   experimental = no           # bluetoothd -E: Adapter1.ConnectDevice exists
 *   disconnected-signal = no    # 5.83+: Device1.Disconnected(reason, message)
 *   connect-reply-first = no    # reorderings 5.66 does not rule out: the Connect reply
 *   remove-parents-first = no   #   before Connected=true; a device removed before its GATT
 *                               #   objects
 *   seed = 1                    # random seed (RSSI noise, jitter, loss)
 *   le-connect-timeout = 20000  # timings in real-world ms, before scaling:
 *   disconnect-delay = 2000     #   also temporary-timeout, power-delay,
 *   temporary-timeout = 30000   #   scan-start-delay, gatt-discovery, att-round-trip,
 *   motor-action = 2500         #   adapter-probe, auto-enable, pairing-mode-timeout,
 *                               #   lockngo
 *   [adapter hci0]               # no [adapter]: hci0; no [lock]: the default three locks
 *   address = 00:1A:7D:DA:71:10
 *   rssi-offset = 0             # dB added to every lock as this adapter hears it
 *
 *   [lock front]                # name: [A-Za-z0-9_], the control object's last element
 *   address = 54:D2:72:00:00:01 # default: 54:D2:72:00:00:NN, NN = position in the file
 *   generation = 2              # 1, 2, 3, 4 or ultra
 *   nuki-id = 2A000001          # hex
 *   firmware = 2.12.4
 *   battery = 80                # percent
 *   rssi = -60                  # dBm (noise +-3 dB)
 *   adv-interval = 500          # ms
 *   pairing-mode = yes
 *   uninitialized = no          # factory-new: advertises the initialization service
 *   security-pin = 1234
 *   max-authorizations = 200
 *   paired = yes                # holds a Bridge authorization ...
 *   auth-id = 5                 # ... with this id
 *   auth-key = 00112233...      # ... and this 32-byte shared key (64 hex digits)
 *   known = yes                 # bluetoothd has the device stored (exists at start)
 *   adapter = hci0              # the adapter that has it stored (default: first)
 *   ultra-reply = encrypted     # Ultra Authorization-ID reply: encrypted, encrypted-no-id,
 *                               # plain (fact sheet 4.2 leaves it open)
 */

#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "sim-lock.h"
#include "sim.h"

static char *strip(char *s)
{
        char *e;
        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

static int parse_bool(const char *v, bool *ret)
{
        if (streq(v, "yes") || streq(v, "true") || streq(v, "1") || streq(v, "on"))
                *ret = true;
        else if (streq(v, "no") || streq(v, "false") || streq(v, "0") || streq(v, "off"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_long(const char *v, long min, long max, int base, long *ret)
{
        char *end;
        long l = strtol(v, &end, base);
        if (!*v || *end || l < min || l > max)
                return -EINVAL;
        *ret = l;
        return 0;
}

static bool valid_address(const char *s)
{
        if (strlen(s) != 17)
                return false;
        for (int i = 0; i < 17; i++)
                if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char) s[i]))
                        return false;
        return true;
}

static bool valid_name(const char *s)
{
        if (!*s || strlen(s) > 30)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && *s != '_')
                        return false;
        return true;
}

typedef struct Timing {
        const char *key;
        size_t offset;
} Timing;

static const Timing timings[] = {
        { "le-connect-timeout", offsetof(SimTimings, le_connect_timeout) },
        { "disconnect-delay", offsetof(SimTimings, disconnect_delay) },
        { "temporary-timeout", offsetof(SimTimings, temporary_timeout) },
        { "power-delay", offsetof(SimTimings, power_delay) },
        { "scan-start-delay", offsetof(SimTimings, scan_start_delay) },
        { "gatt-discovery", offsetof(SimTimings, gatt_discovery) },
        { "att-round-trip", offsetof(SimTimings, att_round_trip) },
        { "adapter-probe", offsetof(SimTimings, adapter_probe) },
        { "auto-enable", offsetof(SimTimings, auto_enable) },
        { "pairing-mode-timeout", offsetof(SimTimings, pairing_mode) },
        { "motor-action", offsetof(SimTimings, motor_action) },
        { "lockngo", offsetof(SimTimings, lockngo) },
};

static int add_lock(Sim *sim, const SimLockSpec *spec)
{
        SimLock *l;
        int r;

        if (sim->n_locks >= SIM_MAX_LOCKS)
                return -E2BIG;
        r = sim_lock_new(sim, spec, &l);
        if (r < 0)
                return r;
        sim->locks[sim->n_locks++] = l;
        if (spec->known) {
                SimAdapter *a = spec->adapter[0] ? sim_find_adapter(sim, spec->adapter) : sim->adapters[0];
                if (a)
                        sim_adapter_store(a, l->address);
        }
        return 0;
}

static int add_adapter(Sim *sim, const char *name, const char *address, int rssi_offset)
{
        SimAdapter *a;
        int r;

        if (sim->n_adapters >= SIM_MAX_ADAPTERS)
                return -E2BIG;
        r = sim_adapter_new(sim, name, address, &a);
        if (r < 0)
                return r;
        a->rssi_offset = rssi_offset;
        a->index = (unsigned) sim->n_adapters;
        sim->adapters[sim->n_adapters++] = a;
        return 0;
}

int sim_load_scenario(Sim *sim, const char *path)
{
        _cleanup_free_ char *line = NULL;
        size_t alloc = 0;
        unsigned lineno = 0, errors = 0;
        enum { NONE, SIM, ADAPTER, LOCK } section = NONE;
        SimLockSpec spec = { 0 };
        char adapter_name[16] = "", adapter_addr[18] = "";
        long adapter_offset = 0;
        SimLockSpec *locks = NULL;
        size_t n_locks = 0;
        FILE *f;

#define ERR(...)                                  \
        do {                                      \
                log_error("%s:%u: " __VA_ARGS__); \
                errors++;                         \
        } while (0)

        f = fopen(path, "re");
        if (!f)
                return log_error_errno(-errno, "Failed to open %s: %m", path);

        /* adapters first (locks refer to them), so sections are collected and applied at the end */
        for (;;) {
                ssize_t n = getline(&line, &alloc, f);
                char *s = NULL, *eq, *key, *val;
                bool last = n < 0;

                if (!last) {
                        lineno++;
                        s = strip(line);
                        if (!*s || *s == '#' || *s == ';')
                                continue;
                }
                if (last || *s == '[') {
                        /* close the previous section */
                        if (section == ADAPTER) {
                                if (!valid_address(adapter_addr))
                                        ERR("adapter %s needs an address", path, lineno, adapter_name);
                                else if (add_adapter(sim, adapter_name, adapter_addr, (int) adapter_offset) <
                                         0)
                                        ERR("too many adapters", path, lineno);
                        } else if (section == LOCK) {
                                if (!valid_address(spec.address))
                                        ERR("lock %s needs an address", path, lineno, spec.name);
                                else {
                                        locks = realloc(locks, (n_locks + 1) * sizeof(*locks));
                                        if (!locks)
                                                abort();
                                        locks[n_locks++] = spec;
                                }
                        }
                        if (last)
                                break;
                        char *end = strchr(s, ']');
                        if (!end) {
                                ERR("missing ']'", path, lineno);
                                section = NONE;
                                continue;
                        }
                        *end = 0;
                        s = strip(s + 1);
                        if (streq(s, "sim"))
                                section = SIM;
                        else if (strneq(s, "adapter ", 8)) {
                                section = ADAPTER;
                                snprintf(adapter_name, sizeof(adapter_name), "%s", strip(s + 8));
                                adapter_addr[0] = 0;
                                adapter_offset = 0;
                                if (!valid_name(adapter_name))
                                        ERR("bad adapter name '%s'", path, lineno, adapter_name);
                        } else if (strneq(s, "lock ", 5)) {
                                section = LOCK;
                                sim_lock_spec_default(&spec, strip(s + 5), (unsigned) n_locks);
                                if (!valid_name(spec.name))
                                        ERR("bad lock name '%s' (letters, digits, _)", path, lineno,
                                            spec.name);
                        } else {
                                ERR("unknown section [%s]", path, lineno, s);
                                section = NONE;
                        }
                        continue;
                }
                eq = strchr(s, '=');
                if (!eq) {
                        ERR("expected key = value", path, lineno);
                        continue;
                }
                *eq = 0;
                key = strip(s);
                val = strip(eq + 1);
                if (section == SIM) {
                        long v;
                        bool b, found = false;
                        if (streq(key, "scale")) {
                                double d = strtod(val, NULL);
                                if (d <= 0.0)
                                        ERR("scale must be > 0", path, lineno);
                                else if (sim->scale <= 0.0)
                                        sim->scale = d;
                                continue;
                        }
                        if (streq(key, "experimental")) {
                                if (parse_bool(val, &b) < 0)
                                        ERR("experimental: yes or no", path, lineno);
                                else
                                        sim->experimental = sim->experimental || b;
                                continue;
                        }
                        if (streq(key, "disconnected-signal") || streq(key, "connect-reply-first") ||
                            streq(key, "remove-parents-first")) {
                                if (parse_bool(val, &b) < 0)
                                        ERR("%s: yes or no", path, lineno, key);
                                else if (streq(key, "disconnected-signal"))
                                        sim->disconnected_signal = sim->disconnected_signal || b;
                                else if (streq(key, "connect-reply-first"))
                                        sim->connect_reply_first = b;
                                else
                                        sim->remove_parents_first = b;
                                continue;
                        }
                        if (streq(key, "seed")) {
                                if (parse_long(val, 0, LONG_MAX, 10, &v) < 0)
                                        ERR("bad seed", path, lineno);
                                else
                                        sim->seed = (unsigned) v;
                                continue;
                        }
                        for (size_t i = 0; i < ELEMENTSOF(timings); i++)
                                if (streq(key, timings[i].key)) {
                                        found = true;
                                        if (parse_long(val, 0, 86400000L, 10, &v) < 0)
                                                ERR("%s: milliseconds", path, lineno, key);
                                        else
                                                *(uint64_t *) ((char *) &sim->t + timings[i].offset) =
                                                                (uint64_t) v * USEC_PER_MSEC;
                                }
                        if (!found)
                                ERR("unknown key '%s' in [sim]", path, lineno, key);
                } else if (section == ADAPTER) {
                        if (streq(key, "address"))
                                snprintf(adapter_addr, sizeof(adapter_addr), "%s", val);
                        else if (streq(key, "rssi-offset")) {
                                if (parse_long(val, -60, 60, 10, &adapter_offset) < 0)
                                        ERR("rssi-offset: -60..60", path, lineno);
                        } else
                                ERR("unknown key '%s' in [adapter]", path, lineno, key);
                } else if (section == LOCK) {
                        long v;
                        bool b;
                        if (streq(key, "address"))
                                snprintf(spec.address, sizeof(spec.address), "%s", val);
                        else if (streq(key, "generation")) {
                                if (sim_gen_from_string(val, &spec.gen) < 0)
                                        ERR("generation: 1, 2, 3, 4 or ultra", path, lineno);
                        } else if (streq(key, "nuki-id")) {
                                if (parse_long(val, 1, 0xFFFFFFFFL, 16, &v) < 0)
                                        ERR("nuki-id: 8 hex digits", path, lineno);
                                else
                                        spec.nuki_id = (uint32_t) v;
                        } else if (streq(key, "firmware")) {
                                uint8_t fw[3];
                                if (sim_firmware_parse(val, fw) < 0)
                                        ERR("firmware: X.Y.Z", path, lineno);
                                else
                                        snprintf(spec.firmware, sizeof(spec.firmware), "%s", val);
                        } else if (streq(key, "battery")) {
                                if (parse_long(val, 0, 100, 10, &v) < 0)
                                        ERR("battery: 0..100", path, lineno);
                                else
                                        spec.battery = (double) v;
                        } else if (streq(key, "rssi")) {
                                if (parse_long(val, -127, 20, 10, &v) < 0)
                                        ERR("rssi: -127..20", path, lineno);
                                else
                                        spec.rssi = (int16_t) v;
                        } else if (streq(key, "adv-interval")) {
                                if (parse_long(val, 20, 10240, 10, &v) < 0)
                                        ERR("adv-interval: 20..10240 ms", path, lineno);
                                else
                                        spec.adv_interval_ms = (uint64_t) v;
                        } else if (streq(key, "pairing-mode") || streq(key, "uninitialized") ||
                                   streq(key, "paired") || streq(key, "known")) {
                                if (parse_bool(val, &b) < 0)
                                        ERR("%s: yes or no", path, lineno, key);
                                else if (streq(key, "pairing-mode"))
                                        spec.pairing_mode = b;
                                else if (streq(key, "uninitialized"))
                                        spec.uninitialized = b;
                                else if (streq(key, "paired"))
                                        spec.paired = b;
                                else
                                        spec.known = b;
                        } else if (streq(key, "security-pin")) {
                                if (parse_long(val, 0, 999999, 10, &v) < 0)
                                        ERR("security-pin: 0..999999", path, lineno);
                                else
                                        spec.security_pin = (uint32_t) v;
                        } else if (streq(key, "max-authorizations")) {
                                if (parse_long(val, 1, SIM_MAX_AUTHS, 10, &v) < 0)
                                        ERR("max-authorizations: 1..%d", path, lineno, SIM_MAX_AUTHS);
                                else
                                        spec.max_auths = (unsigned) v;
                        } else if (streq(key, "auth-id")) {
                                if (parse_long(val, 1, 0x7FFFFFFEL, 0, &v) < 0)
                                        ERR("bad auth-id", path, lineno);
                                else
                                        spec.auth_id = (uint32_t) v;
                        } else if (streq(key, "auth-key")) {
                                if (strlen(val) != 64)
                                        ERR("auth-key: 64 hex digits", path, lineno);
                                else
                                        for (int i = 0; i < 32; i++) {
                                                unsigned x;
                                                if (sscanf(val + 2 * i, "%2x", &x) != 1) {
                                                        ERR("auth-key: 64 hex digits", path, lineno);
                                                        break;
                                                }
                                                spec.auth_key[i] = (uint8_t) x;
                                        }
                        } else if (streq(key, "ultra-reply")) {
                                /* fact sheet 4.2: the reply's format is an open question */
                                if (streq(val, "encrypted"))
                                        spec.ultra_reply = 0;
                                else if (streq(val, "encrypted-no-id"))
                                        spec.ultra_reply = 1;
                                else if (streq(val, "plain"))
                                        spec.ultra_reply = 2;
                                else
                                        ERR("ultra-reply: encrypted, encrypted-no-id or plain", path,
                                            lineno);
                        } else if (streq(key, "adapter"))
                                snprintf(spec.adapter, sizeof(spec.adapter), "%s", val);
                        else
                                ERR("unknown key '%s' in [lock]", path, lineno, key);
                } else
                        ERR("key outside of a section", path, lineno);
        }
        fclose(f);
        if (sim->scale <= 0.0)
                sim->scale = 1.0;
        if (sim->n_adapters == 0 && errors == 0)
                (void) add_adapter(sim, "hci0", "00:1A:7D:DA:71:10", 0);
        for (size_t i = 0; i < n_locks && errors == 0; i++) {
                int r = add_lock(sim, &locks[i]);
                if (r < 0) {
                        log_error_errno(r, "%s: lock %s: %m", path, locks[i].name);
                        errors++;
                }
        }
        nuki_wipe(locks, n_locks * sizeof(*locks));
        free(locks);
        if (errors)
                return -EINVAL;
        /* a scenario that only tunes [sim] or adapters gets the default locks */
        return n_locks == 0 ? sim_load_default(sim) : 0;
#undef ERR
}

int sim_load_default(Sim *sim)
{
        static const struct {
                const char *name;
                SimGen gen;
                const char *fw;
                double battery;
                int rssi;
                bool pairing;
        } def[] = {
                { "front", SIM_GEN_2, "2.12.4", 80, -58, true },
                { "back", SIM_GEN_3, "3.6.9", 55, -71, false },
                { "garage", SIM_GEN_4, "4.2.8", 95, -84, false },
        };
        int r;

        if (sim->n_adapters == 0) {
                r = add_adapter(sim, "hci0", "00:1A:7D:DA:71:10", 0);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < ELEMENTSOF(def); i++) {
                SimLockSpec s;
                sim_lock_spec_default(&s, def[i].name, (unsigned) i);
                s.gen = def[i].gen;
                snprintf(s.firmware, sizeof(s.firmware), "%s", def[i].fw);
                s.battery = def[i].battery;
                s.rssi = (int16_t) def[i].rssi;
                s.pairing_mode = def[i].pairing;
                r = add_lock(sim, &s);
                if (r < 0)
                        return r;
        }
        return 0;
}
