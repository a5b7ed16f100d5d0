/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Manager's Bluetooth side (see lockhub/manager-bluez.h).
 *
 * Data: the BluezClient; a table of sightings (one per Nuki address heard lately: RSSI,
 * pairing mode, Ultra pairing service); the pairing and unpairing requests in flight.
 *
 * Scanning (scan_update(), bluez_client_set_scan_mode()): only a real advert is a sighting
 * (BlueZ's cached RSSI of a lock that went away is not). By default (ScanMode=le) the
 * discovery filter is {Transport le, DuplicateData false}: every advert is signalled with
 * its RSSI. While an unpaired lock was seen in pairing mode within PAIRING_SEEN_MAX_USEC
 * it is {..., DuplicateData true}, so that pairing mode is seen to end (BlueZ otherwise
 * keeps the pairing service data) and `lockhubctl pair` without an address finds it fresh.
 * ScanMode=quiet sets no filter, so that an idle lock is not signalled at all; it scans
 * filtered (LE) while a pairing request runs, while a paired lock is not reachable (not
 * heard since start, or failing), and for short windows: when a paired lock's last real
 * sighting is older than quiet_stale_usec() (at most one window per that period), until
 * every paired lock was heard or QUIET_WINDOW_USEC passed. So "not seen" and the RSSI
 * samples keep working, and health's adapter and lock evidence stays fresh.
 *
 * Pairing request (one per Manager1.Pair call):
 *
 *   manager_pair()  checks name, PIN, address → PAIRING  [nuki_pair_op_start]
 *   PAIRING   --paired-->  store row + Lock + driver → SETUP  [on_paired]
 *   SETUP     --config and states read (or failed: still paired)--> done(0, lock)
 *   any failure → done(r, message)
 *
 * Unpairing: Remove Authorization Entry through the driver when the PIN is known
 * (best effort, bounded by the command timeout), then, from a defer source (never from
 * inside the driver's callback), the rows and the Lock go.
 */

#include <ctype.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lockhub/api.h"
#include "lockhub/bluez.h"
#include "lockhub/codes.h"
#include "lockhub/log.h"
#include "lockhub/manager-bluez.h"
#include "lockhub/manager-health.h"
#include "lockhub/manager.h"
#include "lockhub/nuki-advert.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-driver.h"

#define USEC_PER_SEC          1000000ULL
#define PAIRING_SEEN_MAX_USEC (30 * USEC_PER_SEC) /* a pairing-mode advert counts this long */
#define QUIET_WINDOW_USEC     (10 * USEC_PER_SEC) /* a filtered window of ScanMode=quiet */
#define QUIET_STALE_MAX_USEC  (60 * USEC_PER_SEC) /* ... opened when a lock was not heard this long */
#define PAIR_SEARCH_USEC      (10 * USEC_PER_SEC) /* pair without address, quiet: look this long */
#define SIGHTINGS_MAX         256

typedef struct Sighting {
        char address[18];
        bool pairing_mode;
        bool ultra;
        int16_t rssi;
        uint64_t pairing_seen_usec; /* monotonic; last advert in pairing mode */
        uint64_t seen_usec;         /* monotonic */
} Sighting;

typedef struct PairRequest PairRequest;
struct PairRequest {
        ManagerBluez *mb;
        NukiPairOp *op;
        char *address, *name;
        bool has_pin;
        uint32_t pin;
        manager_pair_done_t done;
        void *userdata;
        sd_event_source *search; /* no address yet: looking for a lock in pairing mode */
        PairRequest *next;
};

typedef struct UnpairRequest UnpairRequest;
struct UnpairRequest {
        ManagerBluez *mb;
        char *name;
        char *message;
        int result;
        bool waiting; /* for the driver */
        sd_event_source *defer;
        manager_unpair_done_t done;
        void *userdata;
        UnpairRequest *next;
};

struct ManagerBluez {
        Manager *manager;
        BluezClient *client;
        NukiDriverContext ctx;
        Sighting *sightings;
        size_t n_sightings;
        PairRequest *pairs;
        UnpairRequest *unpairs;
        sd_event_source *scan_timer; /* the next scan_update() that time brings */
        uint64_t window_start;       /* monotonic: ScanMode=quiet's last filtered window */
        uint64_t window_until;       /* ... the window is open until then; 0: closed */
};

static uint64_t now_usec(clockid_t clock)
{
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static Lock *find_lock_by_address(Manager *m, const char *address)
{
        for (size_t i = 0; i < m->n_locks; i++)
                if (strcasecmp(m->locks[i]->address, address) == 0)
                        return m->locks[i];
        return NULL;
}

static Sighting *sighting_get(ManagerBluez *mb, const char *address)
{
        Sighting *n;

        for (size_t i = 0; i < mb->n_sightings; i++)
                if (strcasecmp(mb->sightings[i].address, address) == 0)
                        return &mb->sightings[i];
        if (mb->n_sightings >= SIGHTINGS_MAX)
                return NULL;
        n = reallocarray(mb->sightings, mb->n_sightings + 1, sizeof *n);
        if (!n)
                return NULL;
        mb->sightings = n;
        n = &mb->sightings[mb->n_sightings++];
        *n = (Sighting){};
        (void) lock_address_normalize(address, n->address);
        return n;
}

static bool sighting_in_pairing_mode(const Sighting *s, uint64_t now)
{
        return s->pairing_mode && s->pairing_seen_usec + PAIRING_SEEN_MAX_USEC > now;
}

/* ---- BlueZ callbacks ------------------------------------------------------------------ */

static void scan_update(ManagerBluez *mb);
static void pair_searches_found(ManagerBluez *mb);

static void on_advert(BluezClient *c, const BluezAdvert *a, void *userdata)
{
        ManagerBluez *mb = userdata;
        NukiAdvert na;
        Sighting *s;
        Lock *l;

        if (!a->address)
                return;
        manager_health_adapter_heard(mb->manager, a->adapter); /* the adapter is not deaf */
        nuki_advert_init(&na);
        for (size_t i = 0; i < a->n_manufacturer_data; i++)
                (void) nuki_advert_parse_manufacturer(&na, a->manufacturer_data[i].company,
                                                      a->manufacturer_data[i].data,
                                                      a->manufacturer_data[i].size);
        for (size_t i = 0; i < a->n_service_data; i++)
                (void) nuki_advert_parse_service_data(&na, a->service_data[i].uuid, a->service_data[i].data,
                                                      a->service_data[i].size);
        for (char *const *u = a->uuids; u && *u; u++)
                (void) nuki_advert_parse_uuid(&na, *u);
        if (a->name)
                (void) nuki_advert_parse_name(&na, a->name);
        if (!na.is_nuki)
                return;

        s = sighting_get(mb, a->address);
        if (s) {
                uint64_t now = now_usec(CLOCK_MONOTONIC);
                bool was = sighting_in_pairing_mode(s, now);
                s->seen_usec = now;
                if (a->has_rssi)
                        s->rssi = a->rssi;
                /* With DuplicateData=true (scan_update() sets it once pairing mode is seen)
                 * ServiceData is rebuilt with every advert, so its absence means the lock
                 * left pairing mode. Otherwise BlueZ keeps the pairing service data: it is
                 * taken as pairing mode until DuplicateData=true says otherwise. */
                s->pairing_mode = na.pairing_mode;
                s->ultra = na.pairing_ultra;
                if (na.pairing_mode)
                        s->pairing_seen_usec = now;
                if (na.pairing_mode || was != sighting_in_pairing_mode(s, now))
                        scan_update(mb);
                if (na.pairing_mode && !was && mb->pairs)
                        pair_searches_found(mb);
        }

        l = find_lock_by_address(mb->manager, a->address);
        if (l)
                manager_health_lock_seen(mb->manager, l, a->adapter);
        if (l && l->ops && streq(l->ops->protocol, "nuki"))
                nuki_driver_advert(l, a, &na);
        if (l && (mb->window_until > 0 || mb->manager->conf->bluetooth.scan_mode == CONF_SCAN_QUIET))
                scan_update(mb); /* a window may close, the next one moves */
}

static int on_scan_timer(sd_event_source *es, uint64_t usec, void *userdata);

/* Locks whose sightings decide ScanMode=quiet's windows. */
static bool lock_is_watched(const Lock *l)
{
        return l->ops && !l->needs_repair;
}

static uint64_t lock_seen_usec(ManagerBluez *mb, const Lock *l)
{
        for (size_t i = 0; i < mb->n_sightings; i++)
                if (strcasecmp(mb->sightings[i].address, l->address) == 0)
                        return mb->sightings[i].seen_usec;
        return 0;
}

/* ScanMode=quiet: a lock not heard for this long opens a window; windows are at least
 * this far apart. A third of NotSeenSec=, and at most a minute: health takes a lock or
 * an adapter not heard for 2 minutes as silent. */
static uint64_t quiet_stale_usec(const Manager *m)
{
        return MIN((uint64_t) m->conf->health.not_seen_sec * USEC_PER_SEC / 3, QUIET_STALE_MAX_USEC);
}

/* ScanMode=quiet's windows; returns when the next change is due (0: none). */
static uint64_t quiet_windows(ManagerBluez *mb, uint64_t now, bool *ret_open)
{
        Manager *m = mb->manager;
        uint64_t stale = quiet_stale_usec(m), due = UINT64_MAX;
        bool all_heard = true;

        for (size_t i = 0; i < m->n_locks; i++) {
                const Lock *l = m->locks[i];
                uint64_t seen;

                if (!lock_is_watched(l))
                        continue;
                seen = lock_seen_usec(mb, l);
                due = MIN(due, seen + stale);
                if (seen < mb->window_start)
                        all_heard = false;
        }
        if (mb->window_until > 0 && (now >= mb->window_until || all_heard)) {
                log_debug("Quiet scanning: window closed after %" PRIu64 " ms, %s.",
                          (now - mb->window_start) / 1000, all_heard ? "every lock heard" : "timed out");
                mb->window_until = 0;
        }
        if (mb->window_until == 0 && due != UINT64_MAX) {
                due = MAX(due, mb->window_start + stale);
                if (due <= now) {
                        mb->window_start = now;
                        mb->window_until = now + QUIET_WINDOW_USEC;
                        log_debug("Quiet scanning: a filtered window.");
                }
        }
        *ret_open = mb->window_until > 0;
        if (mb->window_until > 0)
                return mb->window_until;
        return due == UINT64_MAX ? 0 : due;
}

/* Decides the scan mode (see the top of this file) and when to decide again. */
static void scan_update(ManagerBluez *mb)
{
        Manager *m = mb->manager;
        uint64_t now = now_usec(CLOCK_MONOTONIC), pairing_until = 0, wake = 0;
        bool quiet = m->conf->bluetooth.scan_mode == CONF_SCAN_QUIET, le = !quiet || mb->pairs != NULL,
             window;
        BluezScanMode mode;
        int r = 0;

        for (size_t i = 0; i < mb->n_sightings; i++) {
                const Sighting *s = &mb->sightings[i];
                if (sighting_in_pairing_mode(s, now) && !find_lock_by_address(m, s->address))
                        pairing_until = MAX(pairing_until, s->pairing_seen_usec + PAIRING_SEEN_MAX_USEC);
        }
        for (size_t i = 0; i < m->n_locks; i++)
                if (lock_is_watched(m->locks[i]) && !m->locks[i]->link.reachable)
                        le = true;
        if (quiet) {
                wake = quiet_windows(mb, now, &window);
                le = le || window;
        } else
                mb->window_until = 0;
        if (pairing_until > 0) {
                mode = BLUEZ_SCAN_LE_DUPLICATES;
                wake = wake > 0 ? MIN(wake, pairing_until) : pairing_until;
        } else
                mode = le ? BLUEZ_SCAN_LE : BLUEZ_SCAN_QUIET;
        bluez_client_set_scan_mode(mb->client, mode);

        if (wake == 0) {
                if (mb->scan_timer)
                        (void) sd_event_source_set_enabled(mb->scan_timer, SD_EVENT_OFF);
                return;
        }
        if (!mb->scan_timer)
                r = sd_event_add_time(m->event, &mb->scan_timer, CLOCK_MONOTONIC, wake, USEC_PER_SEC / 4,
                                      on_scan_timer, mb);
        else {
                r = sd_event_source_set_time(mb->scan_timer, wake);
                if (r >= 0)
                        r = sd_event_source_set_enabled(mb->scan_timer, SD_EVENT_ONESHOT);
        }
        if (r < 0)
                log_warning_errno(r, "Failed to arm the scanning timer: %m");
}

static int on_scan_timer(sd_event_source *es, uint64_t usec, void *userdata)
{
        scan_update(userdata);
        return 0;
}

static void on_service(BluezClient *c, bool up, void *userdata)
{
        ManagerBluez *mb = userdata;

        manager_health_bluez_service(mb->manager, up);
        if (up)
                log_info("Bluetooth service is up.");
        else
                log_warning("Bluetooth service (bluetoothd) is gone; waiting for it to come back.");
}

static void on_adapter(BluezClient *c, BluezAdapterEvent event, const BluezAdapterInfo *info, void *userdata)
{
        ManagerBluez *mb = userdata;

        switch (event) {
        case BLUEZ_ADAPTER_ADDED:
        case BLUEZ_ADAPTER_POWERED_ON:
        case BLUEZ_ADAPTER_POWERED_OFF:
                manager_health_adapter_event(mb->manager, info->name, true, info->powered);
                break;
        case BLUEZ_ADAPTER_REMOVED:
                manager_health_adapter_event(mb->manager, info->name, false, false);
                break;
        case BLUEZ_ADAPTER_DISCOVERY_ON:
        case BLUEZ_ADAPTER_DISCOVERY_OFF:
        case _BLUEZ_ADAPTER_EVENT_MAX:
                break;
        }
}

static const BluezCallbacks bluez_callbacks = {
        .service = on_service,
        .adapter = on_adapter,
        .advert = on_advert,
};

/* ---- log entries into the store -------------------------------------------------------- */

static int record_log_entry(Lock *l, const LockLogEntry *e, void *userdata)
{
        Manager *m = userdata;
        struct store_event ev;
        CodeAttribution who;
        int r;

        if (l->store_id <= 0)
                return 0;
        store_event_init(&ev);
        ev.lock_id = l->store_id;
        ev.lock_time_usec = e->lock_time_usec;
        ev.kind = (char *) e->kind;
        ev.source = (char *) lock_source_to_string(e->source);
        ev.actor = (char *) e->actor;
        ev.auth_id = e->auth_id;
        ev.log_index = e->index;
        ev.detail = (char *) e->detail_json;
        /* A keypad entry names the code's user (the lock only knows the code's name). */
        if (streq(strempty(e->kind), "keypad") &&
            codes_attribute_detail(m->store, l->store_id, e->detail_json, &who) >= 0) {
                ev.user_id = who.user_id;
                ev.credential_id = who.credential_id;
                ev.actor = who.actor;
        }
        r = store_event_append(m->store, &ev, NULL);
        if (r < 0) {
                char field[96];
                snprintf(field, sizeof field, "LOCK=%s", l->name);
                return log_struct(LOG_ERR, r, LOG_FIELDS(field), "Failed to record log entry %u of %s: %m",
                                  e->index, l->name);
        }
        return r;
}

/* ---- locks ------------------------------------------------------------------------------- */

static void restore_state(Lock *l, const char *json)
{
        json_object *o, *v, *b;
        LockState s;

        if (!json)
                return;
        o = json_tokener_parse(json);
        if (!o)
                return;
        /* Straight into the model: this is what it was, not a change to announce. */
        if (json_object_object_get_ex(o, "state", &v) &&
            (s = lock_state_from_string(json_object_get_string(v))) != _LOCK_STATE_MAX)
                l->state = s;
        if (json_object_object_get_ex(o, "door", &v))
                for (int d = 0; d < _LOCK_DOOR_MAX; d++)
                        if (streq(strempty(json_object_get_string(v)), lock_door_to_string((LockDoor) d)))
                                l->door = (LockDoor) d;
        if (json_object_object_get_ex(o, "battery", &b)) {
                if (json_object_object_get_ex(b, "percent", &v) && v)
                        l->battery.percent = json_object_get_int(v);
                if (json_object_object_get_ex(b, "critical", &v))
                        l->battery.critical = json_object_get_boolean(v);
                if (json_object_object_get_ex(b, "charging", &v))
                        l->battery.charging = json_object_get_boolean(v);
        }
        if (json_object_object_get_ex(o, "link", &b) && json_object_object_get_ex(b, "rssi", &v) && v)
                l->link.rssi = json_object_get_int(v);
        if (json_object_object_get_ex(o, "last_action", &b) && b) {
                if (json_object_object_get_ex(b, "action", &v))
                        l->last_action.action = lock_action_from_string(json_object_get_string(v));
                if (l->last_action.action == _LOCK_ACTION_MAX)
                        l->last_action.action = LOCK_ACTION_LOCK;
                else if (json_object_object_get_ex(b, "time_usec", &v)) {
                        l->last_action.time_usec = json_object_get_uint64(v);
                        if (json_object_object_get_ex(b, "source", &v))
                                for (int i = 0; i < _LOCK_SOURCE_MAX; i++)
                                        if (streq(strempty(json_object_get_string(v)),
                                                  lock_source_to_string((LockSource) i)))
                                                l->last_action.source = (LockSource) i;
                        if (json_object_object_get_ex(b, "actor", &v))
                                snprintf(l->last_action.actor, sizeof l->last_action.actor, "%s",
                                         strempty(json_object_get_string(v)));
                }
        }
        json_object_put(o);
}

static void on_lock_link(Lock *l, unsigned changes, void *userdata)
{
        ManagerBluez *mb = userdata;

        if ((changes & (LOCK_CHANGE_LINK | LOCK_CHANGE_HEALTH)) && !(changes & LOCK_CHANGE_REMOVED))
                scan_update(mb);
}

int manager_bluez_lock_added(Manager *m, Lock *l, const struct store_lock *sl)
{
        ManagerBluez *mb = m->bluez;
        NukiCredentials cred;
        int r;

        l->log_sink = record_log_entry;
        l->log_sink_userdata = m;
        restore_state(l, sl->last_state);
        if (!mb)
                return 0;
        if (sl->protocol && !streq(sl->protocol, "nuki")) {
                log_warning("Lock %s uses protocol '%s', which this lockhubd does not know.", l->name,
                            sl->protocol);
                return 0;
        }
        r = nuki_credentials_from_store(sl, &cred);
        if (r < 0) {
                log_warning("Lock %s has no usable credentials (sealed with key version %u?); re-pair it.",
                            l->name, sl->key_version);
                (void) lock_set_needs_repair(l, true);
                return 0;
        }
        r = nuki_driver_attach(l, &mb->ctx, &cred);
        nuki_credentials_wipe(&cred);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the Nuki driver to %s: %m", l->name);
        r = lock_add_listener(l, on_lock_link, mb);
        if (r < 0)
                return log_oom();
        scan_update(mb); /* not heard yet: ScanMode=quiet scans filtered until it is */
        return 0;
}

/* ---- pairing ---------------------------------------------------------------------------- */

static PairRequest *pair_request_free(PairRequest *p)
{
        if (!p)
                return NULL;
        if (p->mb) {
                PairRequest **i = &p->mb->pairs;
                while (*i && *i != p)
                        i = &(*i)->next;
                if (*i)
                        *i = p->next;
        }
        nuki_pair_op_free(p->op);
        sd_event_source_disable_unref(p->search);
        free(p->address);
        free(p->name);
        nuki_wipe(&p->pin, sizeof p->pin);
        free(p);
        return NULL;
}

static void pair_finish(PairRequest *p, int r, const char *message, Lock *l)
{
        Manager *m = p->mb->manager;
        manager_pair_done_t done = p->done;
        void *userdata = p->userdata;

        p->done = NULL;
        pair_request_free(p);
        scan_update(m->bluez);
        if (done)
                done(m, r, message, l, userdata);
}

struct setup_ctx {
        Manager *m;
        char *name;
        manager_pair_done_t done;
        void *userdata;
};

static void on_setup_done(Lock *l, int r, const char *message, void *userdata)
{
        struct setup_ctx *s = userdata;

        if (r < 0)
                log_warning("Paired %s, but could not read its configuration yet: %s", l->name,
                            message ?: strerror(-r));
        if (s->done)
                s->done(s->m, 0, r < 0 ? "paired; the configuration will be read later" : NULL, l,
                        s->userdata);
        free(s->name);
        free(s);
}

static void on_paired(int r, const char *message, const NukiPairing *p, void *userdata)
{
        PairRequest *req = userdata;
        Manager *m = req->mb->manager;
        struct store_lock sl;
        uint8_t pin[4];
        struct setup_ctx *s;
        int64_t id;
        Lock *l;

        if (r < 0) {
                pair_finish(req, r, message, NULL);
                return;
        }

        store_lock_init(&sl);
        sl.name = req->name;
        sl.address = req->address;
        sl.protocol = (char *) "nuki";
        sl.uuid = (uint8_t *) p->uuid;
        sl.uuid_size = sizeof p->uuid;
        sl.auth_id = p->auth_id;
        sl.app_id = p->app_id;
        sl.id_type = p->id_type;
        sl.ultra = p->ultra;
        sl.shared_key_sealed = (uint8_t *) p->shared_key;
        sl.shared_key_sealed_size = sizeof p->shared_key;
        if (req->has_pin) {
                nuki_put_u32(pin, req->pin);
                sl.security_pin_sealed = pin;
                sl.security_pin_sealed_size = sizeof pin;
        }
        sl.key_version = 0;
        sl.paired_usec = now_usec(CLOCK_REALTIME);
        id = store_lock_add(m->store, &sl);
        if (id < 0) {
                nuki_wipe(pin, sizeof pin);
                log_error_errno((int) id, "Failed to store the pairing of %s: %m", req->name);
                pair_finish(req, (int) id, "paired, but the database refused the new lock", NULL);
                return;
        }
        sl.id = id;

        r = manager_add_lock(m, &sl);
        nuki_wipe(pin, sizeof pin);
        l = manager_find_lock(m, req->name);
        if (r < 0 || !l) {
                pair_finish(req, r < 0 ? r : -EIO, "paired, but the lock could not be set up", NULL);
                return;
        }
        if (l->event_sink)
                (void) l->event_sink(l, "pairing", LOCK_SOURCE_DBUS, NULL, "{\"status\":\"paired\"}",
                                     l->event_sink_userdata);
        {
                char f1[64], f2[40];
                snprintf(f1, sizeof f1, "LOCK=%s", l->name);
                snprintf(f2, sizeof f2, "LOCK_ADDRESS=%s", l->address);
                log_struct(LOG_INFO, 0, LOG_FIELDS(f1, f2),
                           "Paired %s (%s) as a Bridge, authorization %u%s.", l->name, l->address,
                           p->auth_id, p->ultra ? ", Ultra" : "");
        }

        s = calloc(1, sizeof *s);
        if (!s) {
                pair_finish(req, 0, NULL, l);
                return;
        }
        s->m = m;
        s->done = req->done;
        s->userdata = req->userdata;
        req->done = NULL;
        pair_request_free(req);
        if (!l->driver_data || nuki_driver_setup(l, on_setup_done, s) < 0)
                on_setup_done(l, -EIO, "no driver", s);
}

static int parse_pin(const char *s, bool *has, uint32_t *ret)
{
        unsigned long v;
        char *end;

        *has = false;
        *ret = 0;
        if (!s || !*s)
                return 0;
        if (strlen(s) > 6)
                return -EINVAL;
        for (const char *c = s; *c; c++)
                if (!isdigit((unsigned char) *c))
                        return -EINVAL;
        v = strtoul(s, &end, 10);
        if (*end || v > 999999)
                return -EINVAL;
        *has = true;
        *ret = (uint32_t) v;
        return 0;
}

/* The one unpaired lock seen in pairing mode lately, into addr; -ENOENT or -ENOTUNIQ
 * with a message for people. */
static int pair_pick(ManagerBluez *mb, char addr[18], char **ret_message)
{
        uint64_t now = now_usec(CLOCK_MONOTONIC);
        const Sighting *found = NULL;
        _cleanup_free_ char *list = NULL;
        size_t n = 0;

        *ret_message = NULL;
        for (size_t i = 0; i < mb->n_sightings; i++) {
                const Sighting *s = &mb->sightings[i];
                char *t = NULL;

                if (!sighting_in_pairing_mode(s, now) || find_lock_by_address(mb->manager, s->address))
                        continue;
                n++;
                found = s;
                if (asprintf(&t, "%s%s%s", strempty(list), list ? ", " : "", s->address) >= 0) {
                        free(list);
                        list = t;
                }
        }
        if (n == 0) {
                if (asprintf(ret_message, "No lock in pairing mode was seen. Hold the lock's button for 5 "
                                          "seconds until its ring lights up, then try again.") < 0)
                        *ret_message = NULL;
                return -ENOENT;
        }
        if (n > 1) {
                if (asprintf(ret_message, "%zu locks are in pairing mode (%s); name the one to pair.", n,
                             strempty(list)) < 0)
                        *ret_message = NULL;
                return -ENOTUNIQ;
        }
        memcpy(addr, found->address, 18);
        return 0;
}

/* Checks the address and starts pairing p with it (p is not in mb->pairs yet). */
static int pair_begin(ManagerBluez *mb, PairRequest *p, const char *addr, char **ret_message)
{
        Lock *l = find_lock_by_address(mb->manager, addr);
        Sighting *s;
        int r;

#define FAIL(err, ...)                                      \
        do {                                                \
                if (asprintf(ret_message, __VA_ARGS__) < 0) \
                        *ret_message = NULL;                \
                return (err);                               \
        } while (0)

        *ret_message = NULL;
        if (l)
                FAIL(-EEXIST, "The lock %s is paired already, as '%s' (unpair it first to pair it again).",
                     addr, l->name);
        for (PairRequest *i = mb->pairs; i; i = i->next)
                if (i != p && i->address && streq(i->address, addr))
                        FAIL(-EBUSY, "The lock %s is being paired right now.", addr);
        s = sighting_get(mb, addr);
        if (s && s->ultra && s->pairing_mode && !p->has_pin)
                FAIL(-EINVAL,
                     "The lock %s is a Smart Lock Ultra: pairing needs its 6-digit security PIN (--pin).",
                     addr);
        free(p->address);
        p->address = strdup(addr);
        if (!p->address)
                return -ENOMEM;
        r = nuki_pair_op_start(&mb->ctx, addr, p->name, p->has_pin, p->pin, on_paired, p, &p->op);
        if (r < 0)
                FAIL(r, "Cannot start pairing with %s: %s", addr, strerror(-r));
        log_info("Pairing with %s as '%s'...", addr, p->name);
        return 0;
#undef FAIL
}

/* ScanMode=quiet, pair without an address: the search is over (or a lock was found). */
static int on_pair_search(sd_event_source *es, uint64_t usec, void *userdata)
{
        PairRequest *p = userdata;
        _cleanup_free_ char *msg = NULL;
        char addr[18];
        int r;

        p->search = sd_event_source_disable_unref(p->search);
        r = pair_pick(p->mb, addr, &msg);
        if (r >= 0) {
                free(msg);
                msg = NULL;
                r = pair_begin(p->mb, p, addr, &msg);
        }
        if (r < 0)
                pair_finish(p, r, msg, NULL);
        return 0;
}

/* A lock was seen in pairing mode: a search that waits ends soon (not at once: a second
 * lock in pairing mode makes the request ambiguous). */
static void pair_searches_found(ManagerBluez *mb)
{
        for (PairRequest *p = mb->pairs; p; p = p->next) {
                uint64_t t;
                if (p->search && sd_event_source_get_time(p->search, &t) >= 0 &&
                    t > now_usec(CLOCK_MONOTONIC) + 2 * USEC_PER_SEC)
                        (void) sd_event_source_set_time_relative(p->search, 2 * USEC_PER_SEC);
        }
}

int manager_pair(Manager *m, const char *address, const char *name, const char *pin,
                 manager_pair_done_t done, void *userdata, char **ret_message)
{
        ManagerBluez *mb = m->bluez;
        char addr[18], *msg = NULL;
        PairRequest *p;
        bool has_pin;
        uint32_t pin_value;
        struct store_lock row;
        int r;

#define FAIL(err, ...)                               \
        do {                                         \
                if (asprintf(&msg, __VA_ARGS__) < 0) \
                        msg = NULL;                  \
                *ret_message = msg;                  \
                return (err);                        \
        } while (0)

        *ret_message = NULL;
        if (!mb)
                FAIL(-EOPNOTSUPP, "Bluetooth is not available.");
        if (!lock_name_is_valid(name))
                FAIL(-EINVAL,
                     "Invalid lock name '%s': use 1 to 32 letters, digits, '-' or '_', not starting with "
                     "'-'.",
                     strempty(name));
        if (manager_find_lock(m, name))
                FAIL(-EINVAL, "A lock named '%s' exists already.", name);
        store_lock_init(&row);
        r = store_lock_get_by_name(m->store, name, &row);
        store_lock_done(&row);
        if (r >= 0)
                FAIL(-EINVAL, "A lock named '%s' exists already.", name);
        for (PairRequest *i = mb->pairs; i; i = i->next)
                if (streq(i->name, name))
                        FAIL(-EINVAL, "A lock named '%s' is being paired right now.", name);
        if (parse_pin(pin, &has_pin, &pin_value) < 0)
                FAIL(-EINVAL,
                     "Invalid security PIN: use the lock's 4-digit PIN (6 digits on a Smart Lock Ultra).");

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->name = strdup(name);
        p->has_pin = has_pin;
        p->pin = pin_value;
        if (!p->name) {
                pair_request_free(p);
                return -ENOMEM;
        }
        if (address && *address) {
                if (lock_address_normalize(address, addr) < 0) {
                        pair_request_free(p);
                        FAIL(-EINVAL, "Invalid address '%s': expected AA:BB:CC:DD:EE:FF.", address);
                }
        } else {
                r = pair_pick(mb, addr, &msg);
                /* ScanMode=quiet may not have heard it yet: look, filtered, for a while. */
                if (r == -ENOENT && m->conf->bluetooth.scan_mode == CONF_SCAN_QUIET) {
                        free(msg);
                        r = sd_event_add_time_relative(m->event, &p->search, CLOCK_MONOTONIC,
                                                       PAIR_SEARCH_USEC, USEC_PER_SEC / 4, on_pair_search,
                                                       p);
                        if (r < 0) {
                                pair_request_free(p);
                                return r;
                        }
                        p->done = done;
                        p->userdata = userdata;
                        p->mb = mb;
                        p->next = mb->pairs;
                        mb->pairs = p;
                        scan_update(mb);
                        log_info("Looking for a lock in pairing mode to pair as '%s'...", name);
                        return 0;
                }
                if (r < 0) {
                        pair_request_free(p);
                        *ret_message = msg;
                        return r;
                }
        }
        p->done = done;
        p->userdata = userdata;
        r = pair_begin(mb, p, addr, &msg);
        if (r < 0) {
                p->done = NULL;
                pair_request_free(p);
                *ret_message = msg;
                return r;
        }
        p->mb = mb;
        p->next = mb->pairs;
        mb->pairs = p;
        scan_update(mb); /* pairing scans filtered */
        return 0;
#undef FAIL
}

/* ---- unpairing ---------------------------------------------------------------------------- */

static UnpairRequest *unpair_request_free(UnpairRequest *u)
{
        if (!u)
                return NULL;
        if (u->mb) {
                UnpairRequest **i = &u->mb->unpairs;
                while (*i && *i != u)
                        i = &(*i)->next;
                if (*i)
                        *i = u->next;
        }
        sd_event_source_disable_unref(u->defer);
        free(u->name);
        free(u->message);
        free(u);
        return NULL;
}

static int on_unpair_defer(sd_event_source *s, void *userdata)
{
        UnpairRequest *u = userdata;
        Manager *m = u->mb->manager;
        manager_unpair_done_t done = u->done;
        void *ud = u->userdata;
        _cleanup_free_ char *message = TAKE_PTR(u->message);
        Lock *l;
        int r = 0;

        l = manager_find_lock(m, u->name);
        if (l) {
                if (l->store_id > 0) {
                        /* which codes it held, so pairing it again gives them back */
                        (void) codes_lock_unpairing(m->store, l->store_id, l->address);
                        r = store_lock_remove(m->store, l->store_id);
                        if (r < 0)
                                log_error_errno(r, "Failed to remove %s from the database: %m", l->name);
                }
                if (r >= 0) {
                        log_info("Unpaired %s (%s): %s", l->name, l->address, strempty(message));
                        (void) manager_remove_lock(m, l);
                }
        } else
                r = -ENOENT;
        u->done = NULL;
        unpair_request_free(u);
        if (done)
                done(m, r, r < 0 ? "the lock could not be removed from the database" : message, ud);
        return 0;
}

static void unpair_continue(UnpairRequest *u, const char *message)
{
        int r;

        free(u->message);
        u->message = message ? strdup(message) : NULL;
        r = sd_event_add_defer(u->mb->manager->event, &u->defer, on_unpair_defer, u);
        if (r < 0) {
                log_error_errno(r, "Failed to schedule the unpairing: %m");
                on_unpair_defer(NULL, u);
        }
}

static void on_authorization_removed(Lock *l, int r, const char *message, void *userdata)
{
        UnpairRequest *u = userdata;
        _cleanup_free_ char *msg = NULL;

        u->waiting = false;
        if (r >= 0)
                msg = strdup("the lock's authorization for the hub was removed");
        else if (asprintf(&msg,
                          "the authorization could not be removed from the lock (%s); remove the entry '%s' "
                          "in the Nuki app",
                          message ?: strerror(-r), l->name) < 0)
                msg = NULL;
        unpair_continue(u, msg);
}

int manager_unpair(Manager *m, const char *name, manager_unpair_done_t done, void *userdata)
{
        ManagerBluez *mb = m->bluez;
        UnpairRequest *u;
        Lock *l;
        int r;

        l = name ? manager_find_lock(m, name) : NULL;
        if (!l)
                return -ENOENT;
        for (UnpairRequest *i = mb ? mb->unpairs : NULL; i; i = i->next)
                if (streq(i->name, name))
                        return -EBUSY;
        if (!mb)
                return -EOPNOTSUPP;
        u = calloc(1, sizeof *u);
        if (!u)
                return -ENOMEM;
        u->name = strdup(name);
        if (!u->name) {
                free(u);
                return -ENOMEM;
        }
        u->mb = mb;
        u->done = done;
        u->userdata = userdata;
        u->next = mb->unpairs;
        mb->unpairs = u;

        if (l->ops && streq(l->ops->protocol, "nuki") && l->driver_data) {
                u->waiting = true;
                r = nuki_driver_remove_authorization(l, on_authorization_removed, u);
                if (r >= 0)
                        return 0;
                u->waiting = false;
                if (r == -ENOKEY) {
                        _cleanup_free_ char *msg = NULL;
                        if (asprintf(&msg,
                                     "no security PIN was given when pairing, so the lock still holds the "
                                     "authorization '%s'; remove it in the Nuki app",
                                     l->name) < 0)
                                msg = NULL;
                        unpair_continue(u, msg);
                        return 0;
                }
        }
        unpair_continue(u, "the lock was not contacted");
        return 0;
}

/* ---- life cycle ---------------------------------------------------------------------------- */

int manager_bluez_start(Manager *m)
{
        ManagerBluez *mb;
        const Conf *c = m->conf;
        BluezConfig bc = {
                .adapters = (const char *const *) c->bluetooth.adapters,
                .max_connections = c->bluetooth.max_connections,
                .connect_timeout_usec = (uint64_t) c->bluetooth.connect_timeout_sec * USEC_PER_SEC,
                .idle_disconnect_usec = (uint64_t) c->bluetooth.idle_disconnect_sec * USEC_PER_SEC,
                /* A command waits for a slot as long as it may take at all. */
                .queue_timeout_usec = (uint64_t) MAX(c->bluetooth.connect_timeout_sec,
                                                     c->bluetooth.command_timeout_sec) *
                                      USEC_PER_SEC,
        };
        int r;

        mb = calloc(1, sizeof *mb);
        if (!mb)
                return log_oom();
        mb->manager = m;
        r = bluez_client_new(m->event, NULL, &bc, &bluez_callbacks, mb, &mb->client);
        if (r < 0) {
                free(mb);
                return log_error_errno(r, "Failed to create the BlueZ client: %m");
        }
        mb->ctx = (NukiDriverContext){
                .event = m->event,
                .client = mb->client,
                .store = m->store,
                .conf = &m->conf,
        };
        m->bluez = mb;
        manager_health_set_bluez(m, mb->client); /* adapter power cycles, RemoveDevice */
        r = bluez_client_start(mb->client);
        if (r < 0)
                return log_error_errno(r, "Failed to start the BlueZ client: %m");
        /* BlueZ forgets a lock that is neither bonded nor seen for 30 s, and a forgotten
         * device cannot be connected: without on-demand scanning before each connection,
         * lockhubd has to keep scanning. */
        if (!m->conf->bluetooth.scan_while_paired)
                log_warning("ScanWhilePaired=no is not supported yet; lockhubd keeps scanning for adverts.");
        scan_update(mb);
        r = bluez_client_set_discovery(mb->client, true);
        if (r < 0)
                return log_error_errno(r, "Failed to start discovery: %m");
        return 0;
}

void manager_bluez_free(Manager *m)
{
        ManagerBluez *mb = m->bluez;

        if (!mb)
                return;
        while (mb->pairs) {
                PairRequest *p = mb->pairs;
                pair_finish(p, -ECANCELED, "lockhubd is stopping", NULL);
        }
        while (mb->unpairs) {
                UnpairRequest *u = mb->unpairs;
                manager_unpair_done_t done = u->done;
                void *ud = u->userdata;
                u->done = NULL;
                unpair_request_free(u);
                if (done)
                        done(m, -ECANCELED, "lockhubd is stopping", ud);
        }
        manager_health_set_bluez(m, NULL);
        sd_event_source_disable_unref(mb->scan_timer);
        bluez_client_free(mb->client);
        free(mb->sightings);
        free(mb);
        m->bluez = NULL;
}
