/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The MQTT bridge (contract in lockhub/mqtt-bridge.h): the glue between the Manager's
 * locks, the payloads of mqtt-ha.c and the connection of mqtt-client.c.
 *
 * Data structures
 *   MqttBridge   one per Manager: the client, the hub identity, one BridgeLock per
 *                followed lock, the commands waiting for a driver, the wrong-code
 *                lockout, and two event sources: "flush" (a defer source that
 *                publishes the states marked dirty, so a burst of changes in one loop
 *                iteration is one message) and "rediscover" (the random delay after
 *                Home Assistant's "online").
 *   BridgeLock   what we remember of one lock: its device id, the values behind the
 *                alarms (to publish an alarm once, when it starts), a dirty flag, and
 *                at most one command held until the lock is reachable again.
 *   Command      one set command or request, from arrival to its single outcome.
 *
 * Life of a command
 *
 *     arrival ──policy──▶ refused ─────────────────────────────┐
 *        │                                                     │
 *        ├─ no driver, unreachable (expiry 0) ─────────────────┤
 *        │                                                     ▼
 *        ├─ unreachable, expiry > 0 ──▶ HELD ──expiry──▶ command_finish(): one event
 *        │                               │ reachable            (and a response for
 *        ▼                               ▼                      a request), freed
 *     command_run() ──▶ RUNNING (in b->commands) ──driver done──▲
 *
 * A RUNNING command outlives the bridge if the bridge is freed first: its bridge
 * pointer is cleared and the driver's callback only frees it.
 */

#include <stdio.h>
#include <sys/random.h>
#include <time.h>

#include "lockhub/codes.h"
#include "lockhub/conf.h"
#include "lockhub/log.h"
#include "lockhub/manager-health.h"
#include "lockhub/manager.h"
#include "lockhub/mqtt-bridge.h"
#include "lockhub/mqtt-client.h"
#include "lockhub/mqtt-ha.h"
#include "lockhub/store.h"

#define USEC_PER_SEC            1000000ULL
#define CODE_DELAY_MAX_USEC     (300 * USEC_PER_SEC)
#define REDISCOVER_MIN_USEC     (500 * 1000ULL)
#define REDISCOVER_SPREAD_USEC  (2 * USEC_PER_SEC)
#define UNLOCK_CODE_CREDENTIAL  "mqtt-unlock-code"
#define UNLOCK_CODE_FILE_MAX    256
#define REQUEST_TOPIC_LEVEL_MAX 128
#define SCAN_USEC               (5 * USEC_PER_SEC)

/* Flood limits: what a burst of messages can cost is bounded, whatever its size. */
#define LOCK_COMMANDS_MAX    8    /* per lock: running and held, set commands and lock requests */
#define SET_RATE_PER_SEC     2.0  /* per lock: set commands accepted, sustained ... */
#define SET_BURST            10.0 /* ... and at once */
#define REQUEST_RATE_PER_SEC 10.0 /* requests accepted, every op and lock together */
#define REQUEST_BURST        50.0
#define ACCESS_RATE_PER_SEC  1.0 /* refused-command ("access") events written to the store */
#define ACCESS_BURST         5.0
#define FLOOD_LOG_USEC       (10 * USEC_PER_SEC) /* at most one summary line per window */
#define REFUSAL_ANSWER_USEC  USEC_PER_SEC        /* at most one answer to rate-limited requests */

/* The diagnosis behind the health sensor: read again when something it looks at changed
 * (at most once a second), else when it is older than HEALTH_MAX_AGE_USEC. The code sync
 * summary is read again every HEALTH_TIMER_USEC and after every change made over MQTT. */
#define HEALTH_MIN_AGE_USEC (1 * USEC_PER_SEC)
#define HEALTH_MAX_AGE_USEC (120 * USEC_PER_SEC)
#define HEALTH_TIMER_USEC   (15 * USEC_PER_SEC)

typedef struct BridgeLock BridgeLock;
typedef struct Command Command;

/* A token bucket: `burst` at once, then `rate` per second. */
typedef struct RateLimit {
        double tokens;
        uint64_t last_usec; /* 0: full */
} RateLimit;

static BridgeLock *bridge_find(MqttBridge *b, const Lock *l);

static bool rate_limit_take(RateLimit *rl, uint64_t now, double rate, double burst)
{
        if (rl->last_usec == 0)
                rl->tokens = burst;
        else if (now > rl->last_usec)
                rl->tokens = MIN(burst,
                                 rl->tokens + (double) (now - rl->last_usec) * rate / (double) USEC_PER_SEC);
        rl->last_usec = now;
        if (rl->tokens < 1.0)
                return false;
        rl->tokens -= 1.0;
        return true;
}

struct Command {
        MqttBridge *bridge; /* NULL: the bridge is gone, drop the outcome */
        Command *next;      /* in bridge->commands while RUNNING */
        char *lock_name;
        LockAction action;
        bool refresh;
        bool is_request;
        MqttHaRequest request; /* when is_request */
        BridgeLock *held_by;   /* HELD */
        sd_event_source *expiry;
};

struct BridgeLock {
        MqttBridge *bridge;
        Lock *lock;
        char *device_id;
        char *manufacturer; /* from the store's protocol; NULL unknown */
        char *hw_version;
        LockState prev_state;
        bool prev_critical;
        LockDoor prev_door;
        bool prev_needs_repair;
        bool prev_reachable;
        int published_available; /* -1: not yet */
        int prev_battery;
        bool dirty;
        bool discovery_dirty;
        Command *held;
        RateLimit set_limit;
        HealthReport *health; /* the last diagnosis, or NULL */
        char *health_sig;     /* what of it the sensors show, to see when that changed */
        uint64_t health_usec; /* CLOCK_MONOTONIC of the diagnosis */
        bool health_stale;    /* something it looks at changed since */
        bool health_recheck;  /* diagnosed for a change: again at the next tick, for what was
                                 recorded of the change after we looked */
        CodeSyncSummary codes;
};

struct MqttBridge {
        Manager *manager;
        MqttClient *client;
        MqttHaHub hub;
        char *hub_id, *hub_name, *base_topic, *discovery_prefix;
        char *state_topic, *info_topic, *status_topic, *request_prefix;
        char *scan_filter;   /* <prefix>/device/+/config */
        char *device_prefix; /* <prefix>/device/lockhub_<hub id>_ */
        bool discovery;
        BridgeLock **locks;
        size_t n_locks;
        Command *commands;
        unsigned code_failures;
        uint64_t code_blocked_until; /* CLOCK_MONOTONIC */
        RateLimit request_limit, access_limit;
        uint64_t refused_commands, refused_requests, suppressed_access; /* since start */
        uint64_t unanswered_requests;              /* rate-limited requests not answered, since start */
        uint64_t refusal_answered_usec;            /* CLOCK_MONOTONIC of the last answer to one */
        unsigned window_commands, window_requests; /* since the last log line */
        unsigned access_suppressed;                /* since the last access event */
        sd_event_source *flood_log;
        sd_event_source *health_timer;
        sd_event_source *flush;
        sd_event_source *rediscover;
        sd_event_source *scan_end;
};

static uint64_t now_realtime(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t now_monotonic(MqttBridge *b)
{
        uint64_t t = 0;

        (void) sd_event_now(b->manager->event, CLOCK_MONOTONIC, &t);
        return t;
}

static bool streq_ptr(const char *a, const char *b)
{
        return a && b ? streq(a, b) : a == b;
}

static const char *startswith(const char *s, const char *prefix)
{
        size_t n = strlen(prefix);

        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

static void log_lock(int level, const Lock *l, int error, const char *message)
{
        char field[64];

        snprintf(field, sizeof field, "LOCK=%s", l->name);
        (void) log_struct(level, error, LOG_FIELDS(field), "%s: %s", l->name, message);
}

/* ---- publishing ---- */

static void publish(MqttBridge *b, const char *topic, const char *payload, bool retain)
{
        int r;

        if (!topic || !payload) {
                log_oom();
                return;
        }
        /* What we tell is in the database first (the open write batch is committed). */
        (void) store_flush(b->manager->store);
        r = mqtt_client_publish(b->client, topic, payload, strlen(payload), 1, retain);
        if (r == -ENOTCONN)
                log_debug("Not connected to the broker: %s not sent.", topic);
        else if (r < 0)
                log_warning_errno(r, "Failed to publish to %s: %m", topic);
}

static void publish_lock_topic(MqttBridge *b, const Lock *l, const char *suffix, const char *payload,
                               bool retain)
{
        _cleanup_free_ char *t = mqtt_ha_lock_topic(&b->hub, l->name, suffix);

        publish(b, t, payload, retain);
}

static void publish_event(MqttBridge *b, const Lock *l, char *payload /* taken */)
{
        publish_lock_topic(b, l, "event", payload, false);
        free(payload);
}

/* An unlock code: not empty. */
static int read_code_file(const char *path, char **ret)
{
        int r = mqtt_read_secret_file(path, UNLOCK_CODE_FILE_MAX, ret);

        if (r >= 0 && !**ret) {
                *ret = (mqtt_secret_free(*ret), NULL);
                return -ENOKEY;
        }
        return r;
}

/* The lock's own UnlockCodeFile=, else the credential, else the hub-wide file. Sets
 * *ret_source to what was tried, for messages (never the code). */
static int read_unlock_code(MqttBridge *b, const char *lock_name, char **ret, const char **ret_source)
{
        const Conf *c = b->manager->conf;
        const ConfLock *cl = conf_find_lock(c, lock_name);
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        int r;

        if (cl && cl->unlock_code_file) {
                *ret_source = cl->unlock_code_file;
                return read_code_file(cl->unlock_code_file, ret);
        }
        if (dir) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, UNLOCK_CODE_CREDENTIAL) < 0)
                        return -ENOMEM;
                r = read_code_file(p, ret);
                if (r != -ENOENT) {
                        *ret_source = "the credential " UNLOCK_CODE_CREDENTIAL;
                        return r;
                }
        }
        if (c->mqtt.unlock_code_file) {
                *ret_source = c->mqtt.unlock_code_file;
                return read_code_file(c->mqtt.unlock_code_file, ret);
        }
        *ret_source = "UnlockCodeFile= or the credential " UNLOCK_CODE_CREDENTIAL;
        return -ENOENT;
}

static bool code_equal(const char *given, const char *expected)
{
        size_t ng = strlen(given), ne = strlen(expected);
        volatile unsigned char d = ng != ne;

        /* Time depends on the length of the guess only, not on where it differs. */
        for (size_t i = 0; i < ng; i++)
                d |= (unsigned char) (given[i] ^ expected[i % ne]);
        return d == 0;
}

static void lock_info(MqttBridge *b, const BridgeLock *bl, MqttHaLockInfo *info, char **code)
{
        const Lock *l = bl->lock;
        ConfLockPolicy p;
        const char *src;

        conf_lock_policy(b->manager->conf, l->name, &p);
        *info = (MqttHaLockInfo){
                .manufacturer = bl->manufacturer,
                .hw_version = bl->hw_version,
                .allow_unlatch = p.allow_remote_unlatch,
        };
        if (p.require_unlock_code) {
                /* Only the kind of code is revealed (digits or not), not its length. */
                if (read_unlock_code(b, l->name, code, &src) < 0)
                        *code = NULL;
                info->code_format = mqtt_ha_code_format(*code);
        }
}

static void publish_lock_discovery(MqttBridge *b, BridgeLock *bl)
{
        _cleanup_(mqtt_secret_freep) char *code = NULL;
        _cleanup_free_ char *topic = NULL, *payload = NULL;
        MqttHaLockInfo info;

        bl->discovery_dirty = false;
        if (!b->discovery)
                return;
        lock_info(b, bl, &info, &code);
        topic = mqtt_ha_discovery_topic(&b->hub, bl->device_id);
        payload = mqtt_ha_lock_discovery(&b->hub, bl->lock, &info);
        publish(b, topic, payload, true);
}

/* What the health and problem sensors show of a report: changes of anything else (times,
 * statistics) are not worth a publish by themselves. */
static char *health_signature(const HealthReport *rep)
{
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        FILE *f;

        if (!rep)
                return NULL;
        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fprintf(f, "%s %d %s", health_report_headline(rep), health_report_problem(rep),
                strempty(rep->firmware_latest));
        for (size_t i = 0; i < rep->n_findings; i++)
                fprintf(f, " %s:%s", health_finding_id_to_string(rep->findings[i].id),
                        health_severity_to_string(rep->findings[i].severity));
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(buf);
}

/* Diagnoses the lock again when force or its report is too old. Returns true when what the
 * sensors show changed. */
static bool bridge_lock_diagnose(MqttBridge *b, BridgeLock *bl, bool force)
{
        HealthReport *rep = NULL;
        uint64_t now = now_monotonic(b);
        char *sig;
        bool changed;
        int r;

        if (bl->health && !force && now - bl->health_usec < HEALTH_MAX_AGE_USEC)
                return false;
        if (bl->health && force && now - bl->health_usec < HEALTH_MIN_AGE_USEC)
                return false; /* bl->health_stale stays: the timer comes back to it */
        r = manager_health_report(b->manager, bl->lock, NULL, &rep);
        if (r < 0 && r != -ENOENT)
                log_lock(LOG_DEBUG, bl->lock, r, "cannot diagnose for Home Assistant");
        bl->health = health_report_free(bl->health);
        bl->health = r >= 0 ? rep : NULL;
        bl->health_usec = now;
        bl->health_recheck = bl->health_stale;
        bl->health_stale = false;
        sig = health_signature(bl->health);
        changed = !streq_ptr(sig, bl->health_sig);
        free(bl->health_sig);
        bl->health_sig = sig;
        return changed;
}

/* Reads the lock's code sync summary again; true when it changed. */
static bool bridge_lock_read_codes(MqttBridge *b, BridgeLock *bl)
{
        CodeSyncSummary s = {};

        if (bl->lock->store_id > 0 && codes_lock_summary(b->manager->store, bl->lock->store_id, &s) < 0)
                return false;
        if (memcmp(&s, &bl->codes, sizeof s) == 0)
                return false;
        bl->codes = s;
        return true;
}

/* all: also availability when it did not change (after a connect, for Home Assistant). */
static void publish_lock_state(MqttBridge *b, BridgeLock *bl, bool all)
{
        _cleanup_free_ char *state = NULL;
        int available = bl->lock->link.reachable;

        (void) bridge_lock_diagnose(b, bl, bl->health_stale || all);
        state = mqtt_ha_lock_state_ex(bl->lock,
                                      &(MqttHaLockExtra){ .health = bl->health, .codes = &bl->codes },
                                      now_realtime());

        bl->dirty = false;
        if (all || available != bl->published_available)
                publish_lock_topic(b, bl->lock, "availability", available ? "online" : "offline", true);
        bl->published_available = available;
        publish_lock_topic(b, bl->lock, NULL, state, true);
}

static char *bridge_info(MqttBridge *b)
{
        const Conf *c = b->manager->conf;
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        json_object *locks, *adapters, *cfg;
        unsigned reachable = 0;

        if (!o)
                return NULL;
        json_object_object_add(o, "version", json_object_new_string(b->hub.version));
        json_object_object_add(o, "hub_id", json_object_new_string(b->hub_id));
        json_object_object_add(o, "name", json_object_new_string(b->hub_name));
        locks = json_object_new_array();
        for (size_t i = 0; i < b->n_locks; i++) {
                json_object_array_add(locks, json_object_new_string(b->locks[i]->lock->name));
                reachable += b->locks[i]->lock->link.reachable;
        }
        json_object_object_add(o, "locks", locks);
        json_object_object_add(o, "reachable_locks", json_object_new_int((int) reachable));
        adapters = json_object_new_array();
        for (char **a = c->bluetooth.adapters; a && *a; a++)
                json_object_array_add(adapters, json_object_new_string(*a));
        if (!c->bluetooth.adapters)
                json_object_array_add(adapters, json_object_new_string("auto"));
        json_object_object_add(o, "adapters", adapters);

        /* A summary, no secrets and no paths to them. */
        cfg = json_object_new_object();
        json_object_object_add(cfg, "broker", json_object_new_string(mqtt_client_broker(b->client)));
        json_object_object_add(cfg, "base_topic", json_object_new_string(b->base_topic));
        json_object_object_add(cfg, "discovery", json_object_new_boolean(b->discovery));
        json_object_object_add(cfg, "discovery_prefix", json_object_new_string(b->discovery_prefix));
        json_object_object_add(cfg, "protocol",
                               json_object_new_string(conf_mqtt_protocol_to_string(c->mqtt.protocol)));
        json_object_object_add(cfg, "tls", json_object_new_boolean(c->mqtt.tls));
        json_object_object_add(cfg, "command_expiry_sec",
                               json_object_new_int((int) c->mqtt.command_expiry_sec));
        json_object_object_add(cfg, "require_unlock_code",
                               json_object_new_boolean(c->mqtt.require_unlock_code));
        json_object_object_add(cfg, "allow_remote_unlock",
                               json_object_new_boolean(c->mqtt.allow_remote_unlock));
        json_object_object_add(cfg, "allow_remote_unlatch",
                               json_object_new_boolean(c->mqtt.allow_remote_unlatch));
        json_object_object_add(cfg, "allow_remote_code_changes",
                               json_object_new_boolean(c->mqtt.allow_remote_code_changes));
        json_object_object_add(o, "config", cfg);
        {
                /* Writes failing (full disk ...): the locks work, their history waits. */
                size_t pending = 0;
                int err = store_write_error(b->manager->store, &pending);
                json_object *db = json_object_new_object();
                json_object_object_add(db, "writable", json_object_new_boolean(err >= 0));
                if (err < 0) {
                        json_object_object_add(db, "error", json_object_new_string(strerror(-err)));
                        json_object_object_add(db, "pending_changes",
                                               json_object_new_int64((int64_t) pending));
                }
                /* changes a long outage made the store give up (samples first), since start */
                json_object_object_add(db, "lost_changes",
                                       json_object_new_int64((int64_t) store_write_lost(b->manager->store)));
                json_object_object_add(o, "database", db);
        }
        return mqtt_ha_json_to_string(o);
}

static void publish_info(MqttBridge *b)
{
        _cleanup_free_ char *info = bridge_info(b);

        publish(b, b->info_topic, info, true);
}

/* Discovery first, then states: Home Assistant subscribes to a state topic only once
 * it has the config that names it. */
static void publish_all(MqttBridge *b)
{
        publish_info(b);
        if (b->discovery) {
                _cleanup_free_ char *topic = NULL, *payload = NULL;
                _cleanup_free_ char *dev = mqtt_ha_hub_device_id(&b->hub);

                topic = dev ? mqtt_ha_discovery_topic(&b->hub, dev) : NULL;
                payload = mqtt_ha_hub_discovery(&b->hub);
                publish(b, topic, payload, true);
                for (size_t i = 0; i < b->n_locks; i++)
                        publish_lock_discovery(b, b->locks[i]);
        }
        for (size_t i = 0; i < b->n_locks; i++) {
                (void) bridge_lock_read_codes(b, b->locks[i]);
                publish_lock_state(b, b->locks[i], true);
        }
}

static int on_flush(sd_event_source *s, void *userdata)
{
        MqttBridge *b = userdata;
        bool connected = mqtt_client_is_connected(b->client), info = false;

        /* While disconnected, everything is published on the next connect anyway. */
        for (size_t i = 0; i < b->n_locks; i++) {
                BridgeLock *bl = b->locks[i];
                if (bl->discovery_dirty && connected)
                        publish_lock_discovery(b, bl);
                if (bl->dirty && connected)
                        publish_lock_state(b, bl, false);
                if (bl->prev_reachable != bl->lock->link.reachable)
                        info = true;
                bl->prev_reachable = bl->lock->link.reachable;
                bl->dirty = bl->discovery_dirty = false;
        }
        if (info && connected)
                publish_info(b);
        return 0;
}

static void schedule_flush(MqttBridge *b)
{
        (void) sd_event_source_set_enabled(b->flush, SD_EVENT_ONESHOT);
}

/* ---- commands ---- */

static Command *command_free(Command *cmd)
{
        if (!cmd)
                return NULL;
        sd_event_source_disable_unref(cmd->expiry);
        mqtt_ha_request_done(&cmd->request);
        free(cmd->lock_name);
        free(cmd);
        return NULL;
}

static void respond(MqttBridge *b, const MqttHaRequest *req, const char *op, char *payload /* taken */)
{
        _cleanup_free_ char *suffix = NULL, *topic = NULL;

        if (asprintf(&suffix, "response/%s", req && req->op ? req->op : op) >= 0)
                topic = mqtt_ha_bridge_topic(&b->hub, suffix);
        publish(b, topic, payload, false);
        free(payload);
}

static json_object *lock_summary(MqttBridge *b, const Lock *l)
{
        const BridgeLock *bl = bridge_find(b, l);
        _cleanup_free_ char *state = mqtt_ha_lock_state_ex(
                        l, bl ? &(MqttHaLockExtra){ .health = bl->health, .codes = &bl->codes } : NULL,
                        now_realtime());
        _cleanup_free_ char *dev = mqtt_ha_lock_device_id(&b->hub, l->address);
        json_object *o = json_object_new_object(), *s = state ? json_tokener_parse(state) : NULL;

        json_object_object_add(o, "name", json_object_new_string(l->name));
        json_object_object_add(o, "address", json_object_new_string(l->address));
        json_object_object_add(o, "device_id", dev ? json_object_new_string(dev) : NULL);
        json_object_object_add(o, "driver", json_object_new_boolean(l->ops != NULL));
        json_object_object_add(o, "state", s);
        return o;
}

/* The single outcome of a command: r >= 0 done, else failed for reason. */
static void command_finish(MqttBridge *b, Command *cmd, int r, MqttHaReason reason, const char *message)
{
        Lock *l = manager_find_lock(b->manager, cmd->lock_name);
        const char *what = cmd->refresh ? "refresh" : lock_action_to_string(cmd->action);
        char buf[256];

        if (r >= 0) {
                if (l)
                        log_lock(LOG_INFO, l, 0,
                                 cmd->refresh ? "refresh over MQTT done." : "command over MQTT done.");
                if (!cmd->refresh && l)
                        publish_event(b, l,
                                      mqtt_ha_event_action(cmd->action, LOCK_SOURCE_MQTT, NULL,
                                                           now_realtime()));
                if (cmd->is_request) {
                        json_object *d = l ? lock_summary(b, l) : json_object_new_object();
                        json_object_object_add(d, "result", json_object_new_string("done"));
                        respond(b, &cmd->request, NULL, mqtt_ha_response_ok(&cmd->request, d));
                }
        } else {
                snprintf(buf, sizeof buf, "%s over MQTT failed (%s): %s", strna(what),
                         mqtt_ha_reason_to_string(reason), strempty(message));
                if (l)
                        log_lock(LOG_NOTICE, l, 0, buf);
                if (!cmd->refresh && l)
                        publish_event(b, l,
                                      mqtt_ha_event_failed(cmd->action, LOCK_SOURCE_MQTT, reason, message,
                                                           now_realtime()));
                if (cmd->is_request) {
                        snprintf(buf, sizeof buf, "%s: %s", mqtt_ha_reason_to_string(reason),
                                 strempty(message));
                        respond(b, &cmd->request, NULL, mqtt_ha_response_error(&cmd->request, buf));
                }
        }
        command_free(cmd);
}

static void command_fail(MqttBridge *b, Command *cmd, MqttHaReason reason, const char *message)
{
        command_finish(b, cmd, -EIO, reason, message);
}

static void commands_unlink(MqttBridge *b, Command *cmd)
{
        for (Command **p = &b->commands; *p; p = &(*p)->next)
                if (*p == cmd) {
                        *p = cmd->next;
                        cmd->next = NULL;
                        return;
                }
}

static void on_command_done(Lock *l, int r, const char *message, void *userdata)
{
        Command *cmd = userdata;
        MqttBridge *b = cmd->bridge;

        if (!b) {
                command_free(cmd);
                return;
        }
        commands_unlink(b, cmd);
        /* What the command changed (a jam: its alarm) is told before its outcome. */
        lock_notify_flush(l);
        command_finish(b, cmd, r, r < 0 ? mqtt_ha_reason_from_errno(r) : MQTT_HA_REASON_FAILED,
                       message ?: (r < 0 ? strerror(-r) : NULL));
}

static void command_run(MqttBridge *b, BridgeLock *bl, Command *cmd)
{
        Lock *l = bl->lock;
        int r;

        cmd->next = b->commands;
        b->commands = cmd;
        if (cmd->refresh)
                r = l->ops->refresh ? l->ops->refresh(l, on_command_done, cmd) : -EOPNOTSUPP;
        else
                r = l->ops->action ? l->ops->action(l, cmd->action, LOCK_SOURCE_MQTT, NULL, on_command_done,
                                                    cmd)
                                   : -EOPNOTSUPP;
        if (r < 0) {
                /* Not started: the callback will not run. */
                commands_unlink(b, cmd);
                command_finish(b, cmd, r, mqtt_ha_reason_from_errno(r), strerror(-r));
        }
}

static int on_hold_expired(sd_event_source *s, uint64_t usec, void *userdata)
{
        Command *cmd = userdata;
        BridgeLock *bl = cmd->held_by;
        char msg[96];

        bl->held = NULL;
        cmd->held_by = NULL;
        snprintf(msg, sizeof msg, "the lock was not reachable within %us",
                 bl->bridge->manager->conf->mqtt.command_expiry_sec);
        command_fail(bl->bridge, cmd, MQTT_HA_REASON_UNREACHABLE, msg);
        return 0;
}

static void command_hold(MqttBridge *b, BridgeLock *bl, Command *cmd, unsigned expiry_sec)
{
        int r;

        if (bl->held) {
                Command *old = TAKE_PTR(bl->held);
                old->held_by = NULL;
                command_fail(b, old, MQTT_HA_REASON_BUSY, "superseded by a newer command");
        }
        r = sd_event_add_time_relative(b->manager->event, &cmd->expiry, CLOCK_MONOTONIC,
                                       (uint64_t) expiry_sec * USEC_PER_SEC, 0, on_hold_expired, cmd);
        if (r < 0) {
                command_fail(b, cmd, MQTT_HA_REASON_FAILED, "out of resources");
                return;
        }
        cmd->held_by = bl;
        bl->held = cmd;
        log_lock(LOG_INFO, bl->lock, 0, "not reachable, command held until it is.");
}

/* A refused command (action a) or request (request: its op; l NULL when it concerns no
 * single lock) as an "access" event with source mqtt. */
static void record_access(MqttBridge *b, const Lock *l, LockAction a, const char *request,
                          MqttHaReason reason, unsigned failures, uint64_t retry_after_usec)
{
        _cleanup_(json_object_putp) json_object *d = json_object_new_object();
        _cleanup_free_ char *detail = NULL;
        struct store_event e;
        int r;

        /* A flood of refused commands must not fill the database: a few at once, then one a
         * second; the next one written says how many were left out. */
        if (!rate_limit_take(&b->access_limit, now_monotonic(b), ACCESS_RATE_PER_SEC, ACCESS_BURST)) {
                b->access_suppressed++;
                b->suppressed_access++;
                return;
        }
        if (request)
                json_object_object_add(d, "request", json_object_new_string(request));
        else
                json_object_object_add(d, "action", json_object_new_string(lock_action_to_string(a)));
        json_object_object_add(d, "reason", json_object_new_string(mqtt_ha_reason_to_string(reason)));
        json_object_object_add(d, "failures", json_object_new_int((int) failures));
        json_object_object_add(d, "retry_after_sec",
                               json_object_new_int64((int64_t) ((retry_after_usec + USEC_PER_SEC - 1) /
                                                                USEC_PER_SEC)));
        if (b->access_suppressed > 0)
                json_object_object_add(d, "suppressed",
                                       json_object_new_int64((int64_t) b->access_suppressed));
        b->access_suppressed = 0;
        detail = mqtt_ha_json_to_string(d);

        store_event_init(&e);
        e.lock_id = l && l->store_id > 0 ? l->store_id : 0;
        e.kind = (char *) "access";
        e.source = (char *) "mqtt";
        e.detail = detail;
        r = store_event_append(b->manager->store, &e, NULL);
        if (r < 0 && l)
                log_lock(LOG_ERR, l, r, "failed to record a refused MQTT command");
        else if (r < 0)
                log_error_errno(r, "Failed to record a refused MQTT request: %m");
}

/* The unlock-code policy: 0 when the command (action a) or request (request: its op) may
 * go on, else -EPERM with the reason and a message for the sender. */
static int check_code(MqttBridge *b, const Lock *l, LockAction a, const char *request, const char *code,
                      MqttHaReason *ret_reason, char *msg, size_t msg_size)
{
        _cleanup_(mqtt_secret_freep) char *expected = NULL;
        uint64_t now = now_monotonic(b), delay;
        const char *src = NULL;
        int r;

        if (now < b->code_blocked_until) {
                delay = b->code_blocked_until - now;
                snprintf(msg, msg_size, "too many wrong unlock codes; try again in %llus",
                         (unsigned long long) ((delay + USEC_PER_SEC - 1) / USEC_PER_SEC));
                *ret_reason = MQTT_HA_REASON_RATE_LIMITED;
                record_access(b, l, a, request, MQTT_HA_REASON_RATE_LIMITED, b->code_failures, delay);
                return -EPERM;
        }

        r = read_unlock_code(b, l->name, &expected, &src);
        if (r < 0) {
                log_error_errno(r,
                                "RequireUnlockCode=yes for %s, but no unlock code could be read from %s: %m",
                                l->name, strna(src));
                snprintf(msg, msg_size, "an unlock code is required but none is configured on the hub");
                *ret_reason = MQTT_HA_REASON_NOT_ALLOWED;
                record_access(b, l, a, request, MQTT_HA_REASON_NOT_ALLOWED, b->code_failures, 0);
                return -EPERM;
        }
        if (!code) {
                snprintf(msg, msg_size, "an unlock code is required");
                *ret_reason = MQTT_HA_REASON_REJECTED_CODE;
                record_access(b, l, a, request, MQTT_HA_REASON_REJECTED_CODE, b->code_failures, 0);
                return -EPERM;
        }
        if (!code_equal(code, expected)) {
                unsigned shift = MIN(b->code_failures, 20u);
                b->code_failures++;
                delay = MIN(USEC_PER_SEC << shift, CODE_DELAY_MAX_USEC);
                b->code_blocked_until = now + delay;
                snprintf(msg, msg_size, "wrong unlock code");
                *ret_reason = MQTT_HA_REASON_REJECTED_CODE;
                record_access(b, l, a, request, MQTT_HA_REASON_REJECTED_CODE, b->code_failures, delay);
                {
                        char m[128];
                        snprintf(m, sizeof m,
                                 "wrong unlock code over MQTT (%u in a row); codes refused for %llus.",
                                 b->code_failures, (unsigned long long) (delay / USEC_PER_SEC));
                        log_lock(LOG_WARNING, l, 0, m);
                }
                return -EPERM;
        }
        b->code_failures = 0;
        return 0;
}

static BridgeLock *bridge_find(MqttBridge *b, const Lock *l)
{
        for (size_t i = 0; i < b->n_locks; i++)
                if (b->locks[i]->lock == l)
                        return b->locks[i];
        return NULL;
}

/* A message refused by a flood limit: counted, and logged at most once per window. */
static void flood_refused(MqttBridge *b, bool request)
{
        int enabled = SD_EVENT_OFF;

        if (request) {
                b->refused_requests++;
                b->window_requests++;
        } else {
                b->refused_commands++;
                b->window_commands++;
        }
        (void) sd_event_source_get_enabled(b->flood_log, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        log_warning("MQTT: too many %s; refusing what exceeds the limits (more in %llus).",
                    request ? "requests" : "commands", (unsigned long long) (FLOOD_LOG_USEC / USEC_PER_SEC));
        b->window_commands = b->window_requests = 0;
        if (sd_event_source_set_time_relative(b->flood_log, FLOOD_LOG_USEC) >= 0)
                (void) sd_event_source_set_enabled(b->flood_log, SD_EVENT_ONESHOT);
}

static int on_flood_log(sd_event_source *s, uint64_t usec, void *userdata)
{
        MqttBridge *b = userdata;

        if (b->window_commands > 0 || b->window_requests > 0)
                log_warning("MQTT: refused %u command(s) and %u request(s) over the limits in the last "
                            "%llus "
                            "(%llu and %llu since start).",
                            b->window_commands, b->window_requests,
                            (unsigned long long) (FLOOD_LOG_USEC / USEC_PER_SEC),
                            (unsigned long long) b->refused_commands,
                            (unsigned long long) b->refused_requests);
        b->window_commands = b->window_requests = 0;
        return 0;
}

/* Commands of the lock running in its driver or held for it. */
static unsigned command_count(MqttBridge *b, const BridgeLock *bl)
{
        unsigned n = bl->held ? 1 : 0;

        for (Command *cmd = b->commands; cmd; cmd = cmd->next)
                n += streq(cmd->lock_name, bl->lock->name);
        return n;
}

/* Takes cmd. Policy, then the driver (or the hold). */
static void command_start(MqttBridge *b, BridgeLock *bl, Command *cmd, const char *code)
{
        const Conf *c = b->manager->conf;
        Lock *l = bl->lock;
        MqttHaReason reason;
        ConfLockPolicy p;
        char msg[160];

        if (!cmd->refresh) {
                conf_lock_policy(c, l->name, &p);
                if (cmd->action == LOCK_ACTION_UNLOCK && !p.allow_remote_unlock)
                        return command_fail(b, cmd, MQTT_HA_REASON_NOT_ALLOWED,
                                            "unlocking over MQTT is disabled (AllowRemoteUnlock=no)");
                if (cmd->action == LOCK_ACTION_UNLATCH && !p.allow_remote_unlatch)
                        return command_fail(b, cmd, MQTT_HA_REASON_NOT_ALLOWED,
                                            "opening over MQTT is disabled (AllowRemoteUnlatch=no)");
                if (cmd->action != LOCK_ACTION_LOCK && p.require_unlock_code &&
                    check_code(b, l, cmd->action, NULL, code, &reason, msg, sizeof msg) < 0)
                        return command_fail(b, cmd, reason, msg);
        }
        /* After the policy: every code tried counts towards the lockout, however full the queue. */
        if (command_count(b, bl) >= LOCK_COMMANDS_MAX) {
                flood_refused(b, cmd->is_request);
                return command_fail(b, cmd, MQTT_HA_REASON_BUSY, "too many commands waiting for this lock");
        }
        if (!l->ops)
                return command_fail(b, cmd, MQTT_HA_REASON_NOT_SUPPORTED, "no driver for this lock yet");
        if (!l->link.reachable) {
                if (c->mqtt.command_expiry_sec == 0)
                        return command_fail(b, cmd, MQTT_HA_REASON_UNREACHABLE,
                                            "the lock is not reachable over Bluetooth");
                return command_hold(b, bl, cmd, c->mqtt.command_expiry_sec);
        }
        command_run(b, bl, cmd);
}

static Command *command_new(MqttBridge *b, const Lock *l, LockAction a, bool refresh)
{
        Command *cmd = calloc(1, sizeof *cmd);

        if (!cmd)
                return NULL;
        cmd->bridge = b;
        cmd->lock_name = strdup(l->name);
        cmd->action = a;
        cmd->refresh = refresh;
        if (!cmd->lock_name)
                return command_free(cmd);
        return cmd;
}

static void handle_set(MqttBridge *b, const char *name, const void *payload, size_t len, bool retained)
{
        _cleanup_free_ char *err = NULL;
        MqttHaCommand c = { 0 };
        BridgeLock *bl;
        Command *cmd;
        Lock *l;
        int r;

        l = lock_name_is_valid(name) ? manager_find_lock(b->manager, name) : NULL;
        bl = l ? bridge_find(b, l) : NULL;
        if (!bl) {
                log_notice("MQTT command for unknown lock '%.64s' ignored.", name);
                return;
        }
        if (retained) {
                log_lock(LOG_WARNING, l, 0,
                         "ignoring a retained MQTT command (it would run again at every reconnect); clear "
                         "it "
                         "with an empty retained message.");
                return;
        }
        if (!rate_limit_take(&bl->set_limit, now_monotonic(b), SET_RATE_PER_SEC, SET_BURST)) {
                /* No event each: a flood would be answered by a flood. */
                flood_refused(b, false);
                return;
        }
        r = mqtt_ha_command_parse(payload, len, &c, &err);
        if (r < 0) {
                log_lock(LOG_NOTICE, l, 0, err ? err : "invalid MQTT command");
                publish_event(b, l,
                              mqtt_ha_event_failed(_LOCK_ACTION_MAX, LOCK_SOURCE_MQTT,
                                                   MQTT_HA_REASON_INVALID, err ?: "out of memory",
                                                   now_realtime()));
                return;
        }
        cmd = command_new(b, l, c.action, false);
        if (cmd)
                command_start(b, bl, cmd, c.code);
        else
                log_oom();
        mqtt_ha_command_done(&c);
}

/* ---- requests ---- */

/* The flood limits and what they refused since the start. */
static json_object *limits_data(MqttBridge *b)
{
        json_object *o = json_object_new_object();
        unsigned running = 0;

        for (Command *cmd = b->commands; cmd; cmd = cmd->next)
                running++;
        for (size_t i = 0; i < b->n_locks; i++)
                running += b->locks[i]->held ? 1 : 0;
        json_object_object_add(o, "refused_commands", json_object_new_uint64(b->refused_commands));
        json_object_object_add(o, "refused_requests", json_object_new_uint64(b->refused_requests));
        json_object_object_add(o, "unanswered_requests", json_object_new_uint64(b->unanswered_requests));
        json_object_object_add(o, "suppressed_access_events", json_object_new_uint64(b->suppressed_access));
        json_object_object_add(o, "commands_waiting", json_object_new_int((int) running));
        json_object_object_add(o, "lock_commands_max", json_object_new_int(LOCK_COMMANDS_MAX));
        json_object_object_add(o, "set_commands_per_sec", json_object_new_double(SET_RATE_PER_SEC));
        json_object_object_add(o, "requests_per_sec", json_object_new_double(REQUEST_RATE_PER_SEC));
        return o;
}

static json_object *health_data(MqttBridge *b)
{
        json_object *o = json_object_new_object(), *locks = json_object_new_object();
        int worst = 0; /* ok, warning, problem */

        for (size_t i = 0; i < b->n_locks; i++) {
                json_object *h = mqtt_ha_lock_health(b->locks[i]->lock), *s;
                if (h && json_object_object_get_ex(h, "status", &s)) {
                        const char *st = json_object_get_string(s);
                        worst = MAX(worst, streq(st, "problem") ? 2 : streq(st, "warning") ? 1 : 0);
                }
                json_object_object_add(locks, b->locks[i]->lock->name, h);
        }
        json_object_object_add(o, "status",
                               json_object_new_string(worst == 2   ? "problem"
                                                      : worst == 1 ? "warning"
                                                                   : "ok"));
        json_object_object_add(o, "version", json_object_new_string(b->hub.version));
        json_object_object_add(o, "hub_id", json_object_new_string(b->hub_id));
        json_object_object_add(o, "mqtt_connected",
                               json_object_new_boolean(mqtt_client_is_connected(b->client)));
        json_object_object_add(o, "locks", locks);
        json_object_object_add(o, "limits", limits_data(b));
        return o;
}

static int request_lock(MqttBridge *b, MqttHaRequest *req, BridgeLock **ret, char **err)
{
        const char *name;
        Lock *l;
        int r;

        r = mqtt_ha_request_get_string(req, "lock", true, 64, &name, err);
        if (r < 0)
                return r;
        l = manager_find_lock(b->manager, name);
        *ret = l ? bridge_find(b, l) : NULL;
        if (!*ret)
                return asprintf(err, "no such lock '%s'", name) < 0 ? -ENOMEM : -ENOENT;
        return 0;
}

static bool is_codes_op(const char *op)
{
        static const char *const ops[] = {
                "user/add",    "user/remove", "user/list", "code/add", "code/update",
                "code/remove", "code/list",   "backup",    "restore",  NULL,
        };

        for (size_t i = 0; ops[i]; i++)
                if (streq(op, ops[i]))
                        return true;
        return false;
}

/* After a change of users or codes: the code sync sensors of the locks it touched. */
static void codes_changed(MqttBridge *b)
{
        for (size_t i = 0; i < b->n_locks; i++)
                if (bridge_lock_read_codes(b, b->locks[i]))
                        b->locks[i]->dirty = true;
        schedule_flush(b);
}

/* Who may change users and codes (and restore, which also writes lock settings) over
 * MQTT: a keypad code opens the door like a key. AllowRemoteCodeChanges=yes, and the
 * unlock code when the hub or any lock requires one for unlocking: it is checked against
 * the code of every lock that requires one, with the lockout of wrong codes in commands.
 * 0 when the request may go on, else -EPERM and a message for the sender; every refusal
 * is an "access" event. Takes "unlock_code" out of the request in every case (wiped). */
static int check_codes_policy(MqttBridge *b, MqttHaRequest *req, bool change, char *msg, size_t msg_size)
{
        _cleanup_(mqtt_secret_freep) char *code = NULL;
        const Conf *c = b->manager->conf;
        MqttHaReason reason;
        json_object *v;
        int r;

        if (json_object_object_get_ex(req->params, "unlock_code", &v)) {
                if (json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0 &&
                    (size_t) json_object_get_string_len(v) <= MQTT_HA_CODE_MAX) {
                        code = strdup(json_object_get_string(v));
                        if (!code)
                                return log_oom();
                }
                mqtt_ha_json_wipe(v);
                json_object_object_del(req->params, "unlock_code");
        }
        if (!change)
                return 0;
        if (!c->mqtt.allow_remote_code_changes) {
                snprintf(msg, msg_size,
                         "not_allowed: changing users, codes and settings over MQTT is disabled "
                         "(AllowRemoteCodeChanges=no)");
                record_access(b, NULL, _LOCK_ACTION_MAX, req->op, MQTT_HA_REASON_NOT_ALLOWED, 0, 0);
                return -EPERM;
        }
        for (size_t i = 0; i < b->n_locks; i++) {
                const Lock *l = b->locks[i]->lock;
                ConfLockPolicy p;
                char m[160];

                conf_lock_policy(c, l->name, &p);
                if (!p.require_unlock_code)
                        continue;
                r = check_code(b, l, _LOCK_ACTION_MAX, req->op, code, &reason, m, sizeof m);
                if (r < 0) {
                        snprintf(msg, msg_size, "%s: %s (RequireUnlockCode=yes: give it as \"unlock_code\")",
                                 mqtt_ha_reason_to_string(reason), m);
                        return r;
                }
        }
        return 0;
}

/* Users, codes, backup and restore: checked and carried out by codes_request() (the same
 * rules as over D-Bus). Nothing here sees more than the reply, which never holds digits;
 * the request (digits and all) is wiped when it is freed. */
static void handle_codes_request(MqttBridge *b, MqttHaRequest *req)
{
        json_object *reply = NULL, *v;
        bool change = !strstr(req->op, "/list") && !streq(req->op, "backup");
        char msg[256];
        int r;

        if (check_codes_policy(b, req, change, msg, sizeof msg) < 0) {
                log_notice("MQTT request %s refused: %s", req->op, msg);
                respond(b, req, NULL, mqtt_ha_response_error(req, msg));
                return;
        }
        if (streq(req->op, "backup") && (json_object_object_get_ex(req->params, "include_secrets", &v) ||
                                         json_object_object_get_ex(req->params, "passphrase", &v))) {
                respond(b, req, NULL,
                        mqtt_ha_response_error(req, "a backup over MQTT never holds secrets (code digits, "
                                                    "keys): use 'lockhubctl backup --include-secrets' "
                                                    "with a passphrase"));
                return;
        }
        /* A document with secrets is only ever valid encrypted, which JSON over MQTT cannot
         * carry: refused before it is written out again as text for the backup parser. */
        if (streq(req->op, "restore") && json_object_object_get_ex(req->params, "document", &v) &&
            mqtt_ha_json_has_secrets(v)) {
                respond(b, req, NULL,
                        mqtt_ha_response_error(req, "a restore over MQTT never carries secrets (code "
                                                    "digits, pairing keys, PINs): use 'lockhubctl "
                                                    "restore' with the encrypted backup"));
                return;
        }
        r = codes_request(b->manager->store, b->manager->codes, req->op, req->params, &reply);
        if (!reply) {
                log_error_errno(r, "MQTT request %s failed: %m", req->op);
                respond(b, req, NULL, mqtt_ha_response_error(req, "out of memory"));
                return;
        }
        if (r < 0 && json_object_object_get_ex(reply, "error", &v))
                log_notice("MQTT request %s refused: %s", req->op, json_object_get_string(v));
        else if (change)
                log_info("MQTT request %s done.", req->op);
        respond(b, req, NULL, mqtt_ha_response_from(req, reply));
        if (r >= 0 && change)
                codes_changed(b);
}

/* The health module's findings, as "lockhubctl diagnose --json" prints them: one lock's
 * object, or an array of every lock without "lock". */
static void handle_diagnose(MqttBridge *b, MqttHaRequest *req)
{
        _cleanup_free_ char *err = NULL, *out = NULL;
        const char *name = NULL;
        json_object *data;
        int r;

        r = mqtt_ha_request_get_string(req, "lock", false, 64, &name, &err);
        if (r < 0 && r != -ENOENT) {
                respond(b, req, NULL, mqtt_ha_response_error(req, err ?: "out of memory"));
                return;
        }
        r = manager_health_diagnose(b->manager, name, true, &out);
        if (r == -ENOENT) {
                free(err);
                err = NULL;
                if (asprintf(&err, "no such lock '%s'", name) < 0)
                        err = NULL;
                respond(b, req, NULL, mqtt_ha_response_error(req, err ?: "no such lock"));
                return;
        }
        data = r >= 0 ? json_tokener_parse(out) : NULL;
        if (!data) {
                log_warning_errno(r < 0 ? r : -EBADMSG, "Cannot diagnose for an MQTT request: %m");
                respond(b, req, NULL,
                        mqtt_ha_response_error(req, "failed: the diagnosis could not be made"));
                return;
        }
        respond(b, req, NULL, mqtt_ha_response_ok(req, data));
}

static void handle_request(MqttBridge *b, const char *op, const void *payload, size_t len, bool retained)
{
        _cleanup_(mqtt_secret_freep) char *code_copy = NULL;
        _cleanup_free_ char *err = NULL;
        MqttHaRequest req = { 0 };
        BridgeLock *bl;
        Command *cmd;
        int r;

        if (retained) {
                log_warning("Ignoring a retained MQTT request %.64s (it would run again at every "
                            "reconnect).",
                            op);
                return;
        }
        if (strlen(op) > REQUEST_TOPIC_LEVEL_MAX)
                return;
        if (!rate_limit_take(&b->request_limit, now_monotonic(b), REQUEST_RATE_PER_SEC, REQUEST_BURST)) {
                /* Refused unread, so a flood costs no parsing. One answer a second (without
                 * the transaction: it is in the payload), the others only counted. */
                uint64_t now = now_monotonic(b);

                flood_refused(b, true);
                if (!mqtt_ha_op_is_valid(op) ||
                    (b->refusal_answered_usec > 0 && now - b->refusal_answered_usec < REFUSAL_ANSWER_USEC)) {
                        b->unanswered_requests++;
                        return;
                }
                b->refusal_answered_usec = now;
                respond(b, NULL, op,
                        mqtt_ha_response_error(NULL,
                                               "rate_limited: too many requests; try again in a moment"));
                return;
        }
        r = mqtt_ha_request_parse(op, payload, len, &req, &err);
        if (r < 0) {
                log_notice("Invalid MQTT request %.64s: %s", op, err ?: "out of memory");
                respond(b, &req, op, mqtt_ha_response_error(&req, err ?: "out of memory"));
                goto done;
        }

        if (is_codes_op(op))
                handle_codes_request(b, &req);
        else if (streq(op, "diagnose"))
                handle_diagnose(b, &req);
        else if (streq(op, "health"))
                respond(b, &req, op, mqtt_ha_response_ok(&req, health_data(b)));
        else if (streq(op, "locks")) {
                json_object *a = json_object_new_array();
                for (size_t i = 0; i < b->n_locks; i++)
                        json_object_array_add(a, lock_summary(b, b->locks[i]->lock));
                respond(b, &req, op, mqtt_ha_response_ok(&req, a));
        } else if (streq(op, "lock/refresh") || streq(op, "lock/action")) {
                bool refresh = streq(op, "lock/refresh");
                LockAction a = LOCK_ACTION_LOCK;
                const char *action = NULL, *code = NULL;

                r = request_lock(b, &req, &bl, &err);
                if (r >= 0 && !refresh) {
                        r = mqtt_ha_request_get_string(&req, "action", true, 16, &action, &err);
                        if (r >= 0) {
                                if (strcasecmp(action, "lock") == 0)
                                        a = LOCK_ACTION_LOCK;
                                else if (strcasecmp(action, "unlock") == 0)
                                        a = LOCK_ACTION_UNLOCK;
                                else if (strcasecmp(action, "open") == 0)
                                        a = LOCK_ACTION_UNLATCH;
                                else
                                        r = asprintf(&err,
                                                     "unknown action '%s'; expected lock, unlock or open",
                                                     action) < 0
                                                            ? -ENOMEM
                                                            : -EINVAL;
                        }
                        if (r >= 0) {
                                r = mqtt_ha_request_get_string(&req, "code", false, MQTT_HA_CODE_MAX, &code,
                                                               &err);
                                if (r == -ENOENT)
                                        r = 0;
                        }
                }
                if (r < 0) {
                        respond(b, &req, op, mqtt_ha_response_error(&req, err ?: "out of memory"));
                        goto done;
                }
                /* Our own copy of the code; json-c's is wiped now rather than freed as it is. */
                if (code) {
                        code_copy = strdup(code);
                        explicit_bzero((char *) code, strlen(code));
                        if (!code_copy) {
                                log_oom();
                                goto done;
                        }
                }
                cmd = command_new(b, bl->lock, a, refresh);
                if (!cmd) {
                        log_oom();
                        goto done;
                }
                cmd->is_request = true;
                cmd->request = req;
                req = (MqttHaRequest){ 0 };
                command_start(b, bl, cmd, code_copy);
        } else {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m,
                             "unknown request '%s'; known requests: health, locks, diagnose, lock/refresh, "
                             "lock/action, user/add, user/remove, user/list, code/add, code/update, "
                             "code/remove, code/list, backup, restore",
                             op) < 0)
                        m = NULL;
                respond(b, &req, op, mqtt_ha_response_error(&req, m ?: "unknown request"));
        }
done:
        mqtt_ha_request_done(&req);
}

/* ---- Home Assistant status, connection ---- */

static int on_rediscover(sd_event_source *s, uint64_t usec, void *userdata)
{
        MqttBridge *b = userdata;

        if (mqtt_client_is_connected(b->client)) {
                log_info("Home Assistant is online: publishing discovery and states again.");
                publish_all(b);
        }
        return 0;
}

static void handle_ha_status(MqttBridge *b, const void *payload, size_t len)
{
        uint64_t rnd = 0, delay;
        int r;

        if (!(len == 6 && memcmp(payload, "online", 6) == 0))
                return;
        /* Spread the load of many bridges answering the same birth message. */
        if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != sizeof rnd)
                rnd = (uint64_t) now_realtime();
        delay = REDISCOVER_MIN_USEC + rnd % REDISCOVER_SPREAD_USEC;
        r = sd_event_source_set_time_relative(b->rediscover, delay);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->rediscover, SD_EVENT_ONESHOT);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule rediscovery: %m");
}

/* A retained device config of this hub seen in the scan after connecting: one that
 * belongs to no paired lock (unpaired while lockhubd could not tell the broker) is
 * removed, so Home Assistant does not keep a ghost device. */
static void handle_retained_config(MqttBridge *b, const char *topic, const char *rest, size_t len)
{
        size_t n = strlen(rest);

        if (len == 0 || n != 12 + strlen("/config") || !streq(rest + 12, "/config"))
                return;
        for (size_t i = 0; i < b->n_locks; i++) {
                const char *d = b->locks[i]->device_id;
                if (strneq(d + strlen(d) - 12, rest, 12))
                        return;
        }
        log_info("Removing the stale Home Assistant device of a lock that is no longer paired (%s).", topic);
        publish(b, topic, "", true);
}

static int on_scan_end(sd_event_source *s, uint64_t usec, void *userdata)
{
        MqttBridge *b = userdata;

        (void) mqtt_client_unsubscribe(b->client, b->scan_filter);
        return 0;
}

static void on_message(MqttClient *c, const char *topic, const void *payload, size_t len, bool retained,
                       void *userdata)
{
        MqttBridge *b = userdata;
        const char *rest, *slash;

        if (b->discovery && retained && (rest = startswith(topic, b->device_prefix))) {
                handle_retained_config(b, topic, rest, len);
                return;
        }
        if (b->discovery && streq(topic, b->status_topic)) {
                handle_ha_status(b, payload, len);
                return;
        }
        rest = startswith(topic, b->request_prefix);
        if (rest) {
                handle_request(b, rest, payload, len, retained);
                return;
        }
        rest = startswith(topic, b->base_topic);
        if (!rest || rest[0] != '/')
                return;
        rest++;
        slash = strchr(rest, '/');
        if (slash && streq(slash, "/set") && slash - rest <= 64) {
                char name[65];
                memcpy(name, rest, (size_t) (slash - rest));
                name[slash - rest] = '\0';
                handle_set(b, name, payload, len, retained);
        }
}

static void on_connect(MqttClient *c, bool connected, int error, void *userdata)
{
        MqttBridge *b = userdata;

        if (!connected)
                return; /* the client logs the loss, with its reason and the retry time */
        log_info("Connected to the MQTT broker %s; publishing %zu lock(s).", mqtt_client_broker(c),
                 b->n_locks);
        if (b->discovery) {
                /* Look at the retained device configs for a few seconds (see handle_retained_config()). */
                int r = mqtt_client_subscribe(c, b->scan_filter, 1);
                if (r >= 0)
                        r = sd_event_source_set_time_relative(b->scan_end, SCAN_USEC);
                if (r >= 0)
                        r = sd_event_source_set_enabled(b->scan_end, SD_EVENT_ONESHOT);
                if (r < 0)
                        log_warning_errno(r, "Failed to look for stale Home Assistant devices: %m");
        }
        publish_all(b);
}

/* ---- following locks ---- */

static void bridge_lock_free(BridgeLock *bl)
{
        if (!bl)
                return;
        if (bl->held) {
                Command *cmd = TAKE_PTR(bl->held);
                cmd->held_by = NULL;
                if (bl->bridge)
                        command_fail(bl->bridge, cmd, MQTT_HA_REASON_CANCELLED, "the lock was removed");
                else
                        command_free(cmd);
        }
        health_report_free(bl->health);
        free(bl->health_sig);
        free(bl->device_id);
        free(bl->manufacturer);
        free(bl->hw_version);
        free(bl);
}

static void bridge_drop(MqttBridge *b, BridgeLock *bl)
{
        for (size_t i = 0; i < b->n_locks; i++)
                if (b->locks[i] == bl) {
                        memmove(b->locks + i, b->locks + i + 1, (b->n_locks - i - 1) * sizeof *b->locks);
                        b->n_locks--;
                        break;
                }
        bridge_lock_free(bl);
}

static void on_lock_changed(Lock *l, unsigned changes, void *userdata)
{
        BridgeLock *bl = userdata;
        MqttBridge *b = bl->bridge;
        uint64_t now = now_realtime();

        if (changes & LOCK_CHANGE_REMOVED) {
                /* Freed (shutdown, or after mqtt_bridge_lock_removed()): retained topics stay. */
                bridge_drop(b, bl);
                return;
        }

        if ((changes & LOCK_CHANGE_LAST_ACTION) && l->last_action.source != LOCK_SOURCE_MQTT)
                /* Commands from MQTT have their own outcome event. */
                publish_event(b, l,
                              mqtt_ha_event_action(l->last_action.action, l->last_action.source,
                                                   l->last_action.actor, l->last_action.time_usec ?: now));
        if (l->state == LOCK_STATE_JAMMED && bl->prev_state != LOCK_STATE_JAMMED)
                publish_event(b, l, mqtt_ha_event_alarm("jammed", "the motor is blocked", now));
        if (l->battery.critical && !bl->prev_critical)
                publish_event(b, l, mqtt_ha_event_alarm("battery_critical", "battery critically low", now));
        if (l->door == LOCK_DOOR_TAMPERED && bl->prev_door != LOCK_DOOR_TAMPERED)
                publish_event(b, l,
                              mqtt_ha_event_alarm("door_tampered", "the door sensor reports tampering",
                                                  now));
        if (l->needs_repair && !bl->prev_needs_repair)
                publish_event(b, l,
                              mqtt_ha_event_alarm("needs_repair", "the lock rejects the hub's pairing",
                                                  now));
        /* What the diagnosis looks at: it is made again before the next publish. Not for
         * every advert (RSSI, last seen) nor connection: those come with the timer. */
        if ((l->state == LOCK_STATE_JAMMED) != (bl->prev_state == LOCK_STATE_JAMMED) ||
            (l->state == LOCK_STATE_UNCALIBRATED) != (bl->prev_state == LOCK_STATE_UNCALIBRATED) ||
            l->battery.critical != bl->prev_critical || l->battery.percent != bl->prev_battery ||
            l->door != bl->prev_door || l->needs_repair != bl->prev_needs_repair ||
            l->link.reachable != bl->prev_reachable || (changes & LOCK_CHANGE_INFO))
                bl->health_stale = true;
        bl->prev_state = l->state;
        bl->prev_critical = l->battery.critical;
        bl->prev_door = l->door;
        bl->prev_needs_repair = l->needs_repair;
        bl->prev_battery = l->battery.percent;

        if (changes & LOCK_CHANGE_INFO)
                bl->discovery_dirty = true;
        bl->dirty = true;
        schedule_flush(b);

        if ((changes & LOCK_CHANGE_LINK) && l->link.reachable && bl->held) {
                Command *cmd = TAKE_PTR(bl->held);
                cmd->held_by = NULL;
                cmd->expiry = sd_event_source_disable_unref(cmd->expiry);
                command_run(b, bl, cmd);
        }
}

/* A reconciliation of the lock's codes ended: its code sync sensor. */
static void on_codes_synced(CodesService *svc, Lock *l, int r, void *userdata)
{
        MqttBridge *b = userdata;
        BridgeLock *bl = bridge_find(b, l);

        if (bl && bridge_lock_read_codes(b, bl)) {
                bl->dirty = true;
                schedule_flush(b);
        }
}

/* Now and then: findings that come with time (not seen for a day, a battery draining) and
 * code changes made elsewhere (D-Bus) reach the sensors; a lock is published only when
 * what its sensors show changed. */
static int on_health_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        MqttBridge *b = userdata;
        bool any = false;

        for (size_t i = 0; i < b->n_locks; i++) {
                BridgeLock *bl = b->locks[i];
                bool changed = bridge_lock_read_codes(b, bl);

                changed = bridge_lock_diagnose(b, bl, bl->health_stale || bl->health_recheck) || changed;
                if (changed) {
                        bl->dirty = true;
                        any = true;
                }
        }
        if (any)
                schedule_flush(b);
        (void) sd_event_source_set_time_relative(s, HEALTH_TIMER_USEC);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* Device facts the lock model does not carry: who makes it and its hardware revision. */
static void bridge_lock_read_store(MqttBridge *b, BridgeLock *bl)
{
        struct store_lock sl;

        if (bl->lock->store_id <= 0 || store_lock_get(b->manager->store, bl->lock->store_id, &sl) < 0)
                return;
        if (sl.protocol && streq(sl.protocol, "nuki"))
                bl->manufacturer = strdup("Nuki");
        if (sl.hardware)
                bl->hw_version = strdup(sl.hardware);
        store_lock_done(&sl);
}

static int bridge_follow(MqttBridge *b, Lock *l)
{
        BridgeLock *bl, **n;
        int r;

        if (bridge_find(b, l))
                return 0;
        bl = calloc(1, sizeof *bl);
        if (!bl)
                return -ENOMEM;
        bl->lock = l;
        bl->published_available = -1;
        bl->device_id = mqtt_ha_lock_device_id(&b->hub, l->address);
        if (!bl->device_id) {
                r = -ENOMEM;
                goto fail;
        }
        bridge_lock_read_store(b, bl);
        bl->prev_state = l->state;
        bl->prev_critical = l->battery.critical;
        bl->prev_door = l->door;
        bl->prev_needs_repair = l->needs_repair;
        bl->prev_reachable = l->link.reachable;
        bl->prev_battery = l->battery.percent;
        bl->health_stale = true;

        n = reallocarray(b->locks, b->n_locks + 1, sizeof *n);
        if (!n) {
                r = -ENOMEM;
                goto fail;
        }
        b->locks = n;
        r = lock_add_listener(l, on_lock_changed, bl);
        if (r < 0)
                goto fail;
        bl->bridge = b;
        b->locks[b->n_locks++] = bl;
        return 0;
fail:
        bridge_lock_free(bl);
        return r;
}

int mqtt_bridge_lock_added(MqttBridge *b, Lock *l)
{
        BridgeLock *bl;
        int r;

        r = bridge_follow(b, l);
        if (r < 0)
                return log_error_errno(r, "Failed to publish lock %s over MQTT: %m", l->name);
        bl = bridge_find(b, l);
        if (mqtt_client_is_connected(b->client)) {
                publish_info(b);
                publish_lock_discovery(b, bl);
                publish_lock_state(b, bl, true);
        }
        return 0;
}

int mqtt_bridge_lock_removed(MqttBridge *b, Lock *l)
{
        BridgeLock *bl = bridge_find(b, l);
        _cleanup_free_ char *topic = NULL;

        if (!bl)
                return 0;
        /* Empty retained payloads: Home Assistant removes the device, the broker forgets
         * the retained state. */
        topic = mqtt_ha_discovery_topic(&b->hub, bl->device_id);
        if (b->discovery)
                publish(b, topic, "", true);
        publish_lock_topic(b, l, "availability", "", true);
        publish_lock_topic(b, l, NULL, "", true);
        lock_remove_listener(l, on_lock_changed, bl);
        bridge_drop(b, bl);
        publish_info(b);
        log_lock(LOG_INFO, l, 0, "removed from Home Assistant.");
        return 0;
}

void mqtt_bridge_info_changed(MqttBridge *b)
{
        if (b && mqtt_client_is_connected(b->client))
                publish_info(b);
}

void mqtt_bridge_reload(MqttBridge *b)
{
        const Conf *c;

        if (!b)
                return;
        c = b->manager->conf;
        if (!streq(c->mqtt.base_topic, b->base_topic) ||
            !streq(c->mqtt.discovery_prefix, b->discovery_prefix) || c->mqtt.discovery != b->discovery ||
            !c->mqtt.enabled)
                log_notice("MQTT topic and connection settings take effect when lockhubd is restarted; "
                           "the command policy applies now.");
        for (size_t i = 0; i < b->n_locks; i++)
                b->locks[i]->discovery_dirty = true;
        schedule_flush(b);
        if (mqtt_client_is_connected(b->client))
                publish_info(b); /* its policy summary */
}

/* ---- life cycle ---- */

int mqtt_bridge_hub_id(Store *s, char **ret)
{
        uint8_t raw[MQTT_HA_HUB_ID_LEN / 2];
        char hex[MQTT_HA_HUB_ID_LEN + 1];
        char *v = NULL;
        int r;

        r = store_meta_get(s, MQTT_BRIDGE_HUB_ID_KEY, &v);
        if (r >= 0 && mqtt_ha_hub_id_is_valid(v)) {
                *ret = v;
                return 0;
        }
        if (r >= 0)
                log_warning("Stored hub id '%s' is invalid, making a new one; Home Assistant will see new "
                            "devices.",
                            v);
        free(v);
        if (r < 0 && r != -ENOENT)
                return r;

        if (getrandom(raw, sizeof raw, 0) != sizeof raw)
                return negative_errno();
        for (size_t i = 0; i < sizeof raw; i++)
                snprintf(hex + 2 * i, 3, "%02x", raw[i]);
        r = store_meta_set(s, MQTT_BRIDGE_HUB_ID_KEY, hex);
        if (r < 0)
                return r;
        log_info("Created hub id %s (the stable part of every Home Assistant unique id).", hex);
        *ret = strdup(hex);
        return *ret ? 0 : -ENOMEM;
}

static char *bridge_topic(const char *base, const char *suffix)
{
        char *s;

        return asprintf(&s, "%s/%s", base, suffix) < 0 ? NULL : s;
}

int mqtt_bridge_new(Manager *m, MqttBridge **ret)
{
        _cleanup_(mqtt_bridge_freep) MqttBridge *b = NULL;
        _cleanup_free_ char *set_filter = NULL, *request_filter = NULL;
        const Conf *c = m->conf;
        MqttClientOptions o;
        int r;

        b = calloc(1, sizeof *b);
        if (!b)
                return log_oom();
        b->manager = m;
        r = mqtt_bridge_hub_id(m->store, &b->hub_id);
        if (r < 0)
                return log_error_errno(r, "Failed to read or create the hub id in %s: %m",
                                       store_path(m->store));
        b->hub_name = strdup(c->hub.name ?: "lockhub");
        b->base_topic = strdup(c->mqtt.base_topic);
        b->discovery_prefix = strdup(c->mqtt.discovery_prefix);
        b->discovery = c->mqtt.discovery;
        b->state_topic = bridge_topic(c->mqtt.base_topic, "bridge/state");
        b->info_topic = bridge_topic(c->mqtt.base_topic, "bridge/info");
        b->request_prefix = bridge_topic(c->mqtt.base_topic, "bridge/request/");
        b->status_topic = bridge_topic(c->mqtt.discovery_prefix, "status");
        b->scan_filter = bridge_topic(c->mqtt.discovery_prefix, "device/+/config");
        if (asprintf(&b->device_prefix, "%s/device/lockhub_%s_", c->mqtt.discovery_prefix, b->hub_id) < 0)
                b->device_prefix = NULL;
        set_filter = bridge_topic(c->mqtt.base_topic, "+/set");
        request_filter = bridge_topic(c->mqtt.base_topic, "bridge/request/#");
        if (!b->hub_name || !b->base_topic || !b->discovery_prefix || !b->state_topic || !b->info_topic ||
            !b->request_prefix || !b->status_topic || !b->scan_filter || !b->device_prefix || !set_filter ||
            !request_filter)
                return log_oom();
        b->hub = (MqttHaHub){
                .hub_id = b->hub_id,
                .name = b->hub_name,
                .version = LOCKHUB_VERSION,
                .base_topic = b->base_topic,
                .discovery_prefix = b->discovery_prefix,
        };

        mqtt_client_options_from_conf(c, &o);
        o.will_topic = b->state_topic;
        o.will_payload = mqtt_ha_bridge_state(false);
        o.will_retain = true;
        o.birth_topic = b->state_topic;
        o.birth_payload = mqtt_ha_bridge_state(true);
        o.birth_retain = true;
        r = mqtt_client_new(m->event, &o, &b->client);
        if (r < 0)
                return r; /* logged, naming the option */
        mqtt_client_set_handlers(b->client, on_connect, on_message, b);

        r = mqtt_client_subscribe(b->client, set_filter, 1);
        if (r >= 0)
                r = mqtt_client_subscribe(b->client, request_filter, 1);
        if (r >= 0 && b->discovery)
                r = mqtt_client_subscribe(b->client, b->status_topic, 1);
        if (r < 0)
                return log_error_errno(r, "Failed to subscribe below %s: %m", b->base_topic);

        r = sd_event_add_defer(m->event, &b->flush, on_flush, b);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->flush, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &b->rediscover, CLOCK_MONOTONIC, 0, 0,
                                               on_rediscover, b);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->rediscover, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &b->scan_end, CLOCK_MONOTONIC, 0, 0, on_scan_end,
                                               b);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->scan_end, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &b->flood_log, CLOCK_MONOTONIC, 0, 0, on_flood_log,
                                               b);
        if (r >= 0)
                r = sd_event_source_set_enabled(b->flood_log, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &b->health_timer, CLOCK_MONOTONIC,
                                               HEALTH_TIMER_USEC, 0, on_health_timer, b);
        if (r < 0)
                return log_error_errno(r, "Failed to add the MQTT bridge's event sources: %m");
        (void) sd_event_source_set_description(b->flood_log, "mqtt-flood-log");
        (void) sd_event_source_set_description(b->health_timer, "mqtt-health");
        if (m->codes)
                codes_service_set_synced_callback(m->codes, on_codes_synced, b);

        for (size_t i = 0; i < m->n_locks; i++) {
                r = bridge_follow(b, m->locks[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to follow lock %s: %m", m->locks[i]->name);
        }
        *ret = TAKE_PTR(b);
        return 0;
}

int mqtt_bridge_start(MqttBridge *b)
{
        int r;

        r = mqtt_client_start(b->client);
        if (r < 0)
                return log_error_errno(r, "Failed to start the MQTT client: %m");
        log_info("MQTT: connecting to %s, base topic %s, Home Assistant discovery %s.",
                 mqtt_client_broker(b->client), b->base_topic, b->discovery ? b->discovery_prefix : "off");
        return 0;
}

MqttBridge *mqtt_bridge_free(MqttBridge *b)
{
        if (!b)
                return NULL;
        /* Publishes the offline state while the connection is still there. */
        b->client = mqtt_client_free(b->client);
        for (Command *cmd = b->commands, *next; cmd; cmd = next) {
                next = cmd->next;
                cmd->next = NULL;
                cmd->bridge = NULL; /* freed by the driver's callback */
        }
        for (size_t i = 0; i < b->n_locks; i++) {
                BridgeLock *bl = b->locks[i];
                lock_remove_listener(bl->lock, on_lock_changed, bl);
                bl->bridge = NULL;
                bridge_lock_free(bl);
        }
        free(b->locks);
        if (b->manager->codes)
                codes_service_set_synced_callback(b->manager->codes, NULL, NULL);
        sd_event_source_disable_unref(b->flood_log);
        sd_event_source_disable_unref(b->health_timer);
        sd_event_source_disable_unref(b->flush);
        sd_event_source_disable_unref(b->rediscover);
        sd_event_source_disable_unref(b->scan_end);
        free(b->hub_id);
        free(b->hub_name);
        free(b->base_topic);
        free(b->discovery_prefix);
        free(b->state_topic);
        free(b->info_topic);
        free(b->status_topic);
        free(b->request_prefix);
        free(b->scan_filter);
        free(b->device_prefix);
        free(b);
        return NULL;
}
