/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Links: the connection scheduler, the per-device connection state machine (drawn in
 * include/lockhub/bluez.h, with the function behind each transition) and GATT I/O.
 *
 * The queue is the client's list of links in state QUEUED; the scheduler (a defer
 * source, so that nothing runs inside the caller's bluez_* call) repeatedly picks the
 * first queued link, by (priority, sequence), that can be placed: some selected and
 * powered adapter has a Device1 with the link's Address and fewer than
 * max_connections links in a state other than IDLE/QUEUED. Among such adapters the
 * one where the device is already connected wins, then the strongest RSSI. When queued
 * links remain whose device is on a full adapter, links there that their owner released
 * (bluez_link_release(): connected, nothing to do) are disconnected to make room, as many
 * as links wait for that adapter minus those already disconnecting there.
 *
 * Retries: bluetoothd 5.66 reports every failed LE connect as Failed
 * "le-connection-abort-by-local", both for the quick aborts worth retrying and for
 * the kernel's 20 s connect timeout (device absent). An attempt is therefore retried
 * only if it failed quickly (in less than half the connect timeout), at most
 * connect_attempts times, and only after Connected went false (or 5 s passed): a
 * retry while the old link is still being torn down fails the same way.
 *
 * GATT object paths are looked up by UUID under the device path at the time of each
 * operation, never kept: handles may change between connections (and live, on
 * Service Changed).
 *
 * Lifetime: links are reference counted internally so that a driver may call
 * bluez_link_free() from inside any callback; every event-loop entry point holds a
 * reference while it calls out and checks `freed` afterwards.
 */

#include <stdio.h>
#include <strings.h>

#include "bluez-internal.h"
#include "lockhub/log.h"

#define WAIT_DOWN_USEC     (5 * BLUEZ_USEC_PER_SEC)
#define RETRY_BACKOFF_USEC (250 * 1000ULL)

typedef enum TeardownEnd {
        TEARDOWN_DISCONNECTED, /* disconnected(err or NULL) */
        TEARDOWN_FAILED,       /* failed(err) */
        TEARDOWN_SILENT,       /* nothing: the link was freed */
} TeardownEnd;

struct BluezOp {
        BluezOp *next;
        bool is_read;
        char *uuid;
        uint8_t *data;
        size_t size;
        bluez_write_cb write_cb;
        bluez_read_cb read_cb;
        void *userdata;
};

static void link_attempt(BluezLink *l);
static void link_setup(BluezLink *l);
static void link_teardown(BluezLink *l, TeardownEnd end, const BluezError *err);
static void ops_run(BluezLink *l);
static void early_clear(BluezLink *l);

static BluezLink *link_ref(BluezLink *l)
{
        l->n_ref++;
        return l;
}

static void op_free(BluezOp *op)
{
        if (!op)
                return;
        free(op->uuid);
        free(op->data);
        free(op);
}

static void link_unref(BluezLink *l)
{
        if (!l || --l->n_ref > 0)
                return;
        for (BluezOp *op = l->ops_head, *next; op; op = next) {
                next = op->next;
                op_free(op);
        }
        for (char **i = l->notify_uuids; i && *i; i++)
                free(*i);
        free(l->notify_uuids);
        free(l->notify_slots);
        free(l->address);
        free(l->err_name);
        free(l->err_message);
        free(l->adapter_path);
        free(l->adapter_name);
        free(l->device_path);
        free(l->reading_path);
        free(l->stray_path);
        early_clear(l);
        free(l);
}

static size_t n_notify(const BluezLink *l)
{
        size_t n = 0;

        for (char **i = l->notify_uuids; i && *i; i++)
                n++;
        return n;
}

static bool link_is_active(const BluezLink *l)
{
        switch (l->state) {
        case BLUEZ_LINK_IDLE:
        case BLUEZ_LINK_QUEUED:
                return false;
        case BLUEZ_LINK_CONNECTING:
        case BLUEZ_LINK_WAIT_DOWN:
        case BLUEZ_LINK_RESOLVING:
        case BLUEZ_LINK_SETUP:
        case BLUEZ_LINK_CONNECTED:
        case BLUEZ_LINK_DISCONNECTING:
                return true;
        case _BLUEZ_LINK_STATE_MAX:
                break;
        }
        return false;
}

static void link_set_state(BluezLink *l, BluezLinkState s)
{
        if (l->state == s)
                return;
        log_debug("bluez: %s: %s → %s", l->address, bluez_link_state_to_string(l->state),
                  bluez_link_state_to_string(s));
        l->state = s;
}

static int link_log(BluezLink *l, int level, const BluezError *err, const char *what)
{
        char field[64];

        snprintf(field, sizeof(field), "LOCK_ADDRESS=%s", l->address);
        if (!err)
                return log_struct(level, 0, LOG_FIELDS(field), "bluez: %s: %s", l->address, what);
        /* "%m" is the translated errno; BlueZ's own words follow when there are any. */
        if (err->name)
                return log_struct(level, err->error, LOG_FIELDS(field), "bluez: %s: %s: %m (%s: %s)",
                                  l->address, what, err->name, strna(err->message));
        if (err->message)
                return log_struct(level, err->error, LOG_FIELDS(field), "bluez: %s: %s: %m (%s)", l->address,
                                  what, err->message);
        return log_struct(level, err->error, LOG_FIELDS(field), "bluez: %s: %s: %m", l->address, what);
}

static void link_keep_error(BluezLink *l, const BluezError *err)
{
        free(l->err_name);
        free(l->err_message);
        l->err_name = err && err->name ? strdup(err->name) : NULL;
        l->err_message = err && err->message ? strdup(err->message) : NULL;
        l->teardown_error = err ? err->error : 0;
}

static BluezError link_kept_error(const BluezLink *l)
{
        return (BluezError){
                .error = l->teardown_error,
                .name = l->err_name,
                .message = l->err_message,
        };
}

static void link_cancel_io(BluezLink *l)
{
        size_t n = n_notify(l);

        l->slot = sd_bus_slot_unref(l->slot);
        l->op_slot = sd_bus_slot_unref(l->op_slot);
        for (size_t i = 0; i < n; i++)
                l->notify_slots[i] = sd_bus_slot_unref(l->notify_slots[i]);
        l->n_notify_pending = 0;
        free(l->reading_path);
        l->reading_path = NULL;
        early_clear(l);
        if (l->timer)
                (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
        if (l->idle_timer)
                (void) sd_event_source_set_enabled(l->idle_timer, SD_EVENT_OFF);
}

static void link_unbind(BluezLink *l)
{
        link_cancel_io(l);
        free(l->adapter_path);
        free(l->adapter_name);
        free(l->device_path);
        l->adapter_path = l->adapter_name = l->device_path = NULL;
}

/* Fails every queued GATT op with -ENOTCONN. Returns false if the link was freed. */
static bool ops_fail_all(BluezLink *l)
{
        BluezError err = { .error = -ENOTCONN, .message = "link is down" };

        while (l->ops_head && !l->freed) {
                BluezOp *op = l->ops_head;

                l->ops_head = op->next;
                if (!l->ops_head)
                        l->ops_tail = NULL;
                if (op->is_read && op->read_cb)
                        op->read_cb(l, &err, NULL, 0, op->userdata);
                else if (!op->is_read && op->write_cb)
                        op->write_cb(l, &err, op->userdata);
                op_free(op);
        }
        return !l->freed;
}

static BluezObject *link_device(BluezLink *l)
{
        BluezObject *d;

        if (!l->client || !l->device_path)
                return NULL;
        d = bluez_client_find_object(l->client, l->device_path);
        return d && d->kind == BLUEZ_OBJECT_DEVICE ? d : NULL;
}

static int arm(BluezLink *l, uint64_t usec, sd_event_time_handler_t cb)
{
        /* One timer per link, its handler changing with the state. (Dropping it from
         * inside its own handler is fine: sd-event holds a reference while dispatching.) */
        l->timer = sd_event_source_disable_unref(l->timer);
        return sd_event_add_time_relative(l->client->event, &l->timer, CLOCK_MONOTONIC, usec, 10 * 1000, cb,
                                          l);
}

static void touch_idle(BluezLink *l);

/* ---- ending a connection ---------------------------------------------------------- */

/* DISCONNECTING (or any active state, when everything is already gone) → IDLE, then
 * the callback chosen when the teardown started. [link_finish_teardown] */
static void link_finish_teardown(BluezLink *l)
{
        BluezClient *c = l->client;
        TeardownEnd end = l->teardown_silent    ? TEARDOWN_SILENT
                          : l->teardown_failure ? TEARDOWN_FAILED
                                                : TEARDOWN_DISCONNECTED;
        BluezError err = link_kept_error(l);
        bool reconnect = l->reconnect;

        link_unbind(l);
        link_set_state(l, BLUEZ_LINK_IDLE);
        l->reconnect = false;
        link_ref(l);
        if (!ops_fail_all(l))
                goto out;

        if (reconnect && end == TEARDOWN_FAILED)
                end = TEARDOWN_SILENT; /* the new request carries on */
        switch (end) {
        case TEARDOWN_DISCONNECTED:
                link_log(l, LOG_INFO, err.error < 0 ? &err : NULL, "disconnected");
                if (l->ops && l->ops->disconnected)
                        l->ops->disconnected(l, err.error < 0 ? &err : NULL, l->userdata);
                break;
        case TEARDOWN_FAILED:
                link_log(l, LOG_WARNING, &err, "connection failed");
                if (l->ops && l->ops->failed)
                        l->ops->failed(l, &err, l->userdata);
                break;
        case TEARDOWN_SILENT:
                break;
        }
        if (l->freed)
                goto out;
        if (reconnect && l->state == BLUEZ_LINK_IDLE)
                (void) bluez_link_connect(l, l->priority);
out:
        if (c)
                bluez_links_schedule(c);
        link_unref(l);
}

static void link_end_now(BluezLink *l, TeardownEnd end, const BluezError *err)
{
        link_keep_error(l, err);
        l->teardown_failure = end == TEARDOWN_FAILED;
        l->teardown_silent = end == TEARDOWN_SILENT;
        link_finish_teardown(l);
}

static int on_disconnect_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezLink *l = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        l->slot = sd_bus_slot_unref(l->slot);
        if (e)
                /* Nothing better to do than consider it down; log what BlueZ said. */
                log_warning("bluez: %s: Disconnect failed: %s: %s", l->address, e->name, strna(e->message));
        link_finish_teardown(l);
        return 0;
}

static int on_teardown_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        link_finish_teardown(userdata);
        return 0;
}

/* Any active state → DISCONNECTING: Device1.Disconnect (idempotent; it also cancels a
 * pending Connect). [link_teardown] */
static void link_teardown(BluezLink *l, TeardownEnd end, const BluezError *err)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BluezClient *c = l->client;
        int r;

        link_cancel_io(l);
        link_keep_error(l, err);
        l->teardown_failure = end == TEARDOWN_FAILED;
        l->teardown_silent = end == TEARDOWN_SILENT;
        link_set_state(l, BLUEZ_LINK_DISCONNECTING);

        r = c->up && l->device_path ? 0 : -EHOSTDOWN;
        if (r >= 0)
                r = bluez_new_call(c, l->device_path, BLUEZ_IFACE_DEVICE, "Disconnect", &m);
        if (r >= 0)
                r = bluez_call(c, m, BLUEZ_DISCONNECT_TIMEOUT_USEC_DEFAULT, on_disconnect_reply, l,
                               &l->slot);
        if (r < 0)
                /* Finish from the loop, never inside the caller. */
                (void) arm(l, 0, on_teardown_timer);
}

/* A connection attempt failed for a reason found here (a timeout, StartNotify
 * refused): report it now, so that failures are bounded by our timeouts, and let the
 * Disconnect finish in the background (the link keeps its slot until then; a new
 * request made from the callback is served after it). Only from the event loop. */
static void link_fail_and_teardown(BluezLink *l, const BluezError *err)
{
        link_teardown(l, TEARDOWN_SILENT, err);
        link_log(l, LOG_WARNING, err, "connection failed");
        link_ref(l);
        if (l->ops && l->ops->failed)
                l->ops->failed(l, err, l->userdata);
        link_unref(l);
}

/* CONNECTED → IDLE because the link went away under us. */
static void link_lost(BluezLink *l, int error, const char *message)
{
        BluezError err = { .error = error, .message = message };

        link_end_now(l, l->state == BLUEZ_LINK_CONNECTED ? TEARDOWN_DISCONNECTED : TEARDOWN_FAILED, &err);
}

/* ---- connecting ------------------------------------------------------------------ */

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        BluezLink *l = userdata;

        link_ref(l);
        if (!link_device(l)) {
                BluezError err = { .error = -ENODEV, .message = "device object is gone" };
                link_end_now(l, TEARDOWN_FAILED, &err);
        } else
                link_attempt(l);
        link_unref(l);
        return 0;
}

/* CONNECTING/RESOLVING/SETUP → WAIT_DOWN: retry once Connected is false. [link_retry] */
static void link_wait_down(BluezLink *l, const BluezError *err)
{
        BluezObject *d = link_device(l);
        bool down = !d || !d->connected || l->saw_disconnect;

        link_cancel_io(l);
        link_keep_error(l, err);
        link_set_state(l, BLUEZ_LINK_WAIT_DOWN);
        link_log(l, LOG_INFO, err, "connect attempt failed, will retry");
        (void) arm(l, down ? RETRY_BACKOFF_USEC * l->attempts : WAIT_DOWN_USEC, on_retry_timer);
}

static bool attempt_may_retry(BluezLink *l, const BluezError *err)
{
        uint64_t now = 0;

        if (!err->retryable || l->attempts >= l->client->connect_attempts)
                return false;
        (void) sd_event_now(l->client->event, CLOCK_MONOTONIC, &now);
        return now - l->attempt_started < l->client->connect_timeout / 2;
}

static int on_resolve_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        BluezLink *l = userdata;
        BluezError err = { .error = -ETIMEDOUT, .message = "services not resolved in time" };

        link_ref(l);
        link_fail_and_teardown(l, &err);
        link_unref(l);
        return 0;
}

static void link_resolving(BluezLink *l)
{
        BluezObject *d = link_device(l);

        link_set_state(l, BLUEZ_LINK_RESOLVING);
        /* Only trust GATT objects after ServicesResolved=true on this connection. */
        if (d && d->connected && d->services_resolved) {
                link_setup(l);
                return;
        }
        (void) arm(l, l->client->resolve_timeout, on_resolve_timeout);
}

static int on_connect_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezLink *l = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        BluezError err;

        l->slot = sd_bus_slot_unref(l->slot);
        link_ref(l);
        if (!e) {
                link_resolving(l);
                goto out;
        }
        bluez_error_from_bus(e, &err);
        if (attempt_may_retry(l, &err))
                link_wait_down(l, &err);
        else if (err.error == -ETIMEDOUT)
                /* bluetoothd may still be trying: Disconnect cancels it. */
                link_fail_and_teardown(l, &err);
        else
                link_end_now(l, TEARDOWN_FAILED, &err);
out:
        link_unref(l);
        return 0;
}

/* QUEUED/WAIT_DOWN → CONNECTING: one Device1.Connect. [link_start_connect, link_retry] */
static void link_attempt(BluezLink *l)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BluezClient *c = l->client;
        int r;

        l->attempts++;
        l->saw_disconnect = false;
        (void) sd_event_now(c->event, CLOCK_MONOTONIC, &l->attempt_started);
        if (l->timer)
                (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
        link_set_state(l, BLUEZ_LINK_CONNECTING);
        log_debug("bluez: %s: connecting via %s (attempt %u, priority %s)", l->address, l->adapter_name,
                  l->attempts, bluez_priority_to_string(l->priority));

        r = bluez_new_call(c, l->device_path, BLUEZ_IFACE_DEVICE, "Connect", &m);
        if (r >= 0)
                r = bluez_call(c, m, c->connect_timeout, on_connect_reply, l, &l->slot);
        if (r < 0) {
                BluezError err = { .error = r, .message = "cannot call Connect" };
                link_end_now(l, TEARDOWN_FAILED, &err);
        }
}

static void link_start_connect(BluezLink *l, BluezAdapterState *s, BluezObject *dev)
{
        l->adapter_path = strdup(s->path);
        l->adapter_name = strdup(s->name);
        l->device_path = strdup(dev->path);
        if (!l->adapter_path || !l->adapter_name || !l->device_path) {
                BluezError err = { .error = -ENOMEM };
                link_end_now(l, TEARDOWN_FAILED, &err);
                return;
        }
        link_attempt(l);
}

/* ---- setup: characteristics and notifications ------------------------------------ */

static void early_clear(BluezLink *l)
{
        while (l->early) {
                BluezEarly *e = l->early;
                l->early = e->next;
                free(e->uuid);
                free(e);
        }
        l->n_early = 0;
}

/* A notification that came in SETUP, after its StartNotify but before connected():
 * kept (a few) and delivered right after connected(). */
static void early_push(BluezLink *l, const char *uuid, const BluezValue *v)
{
        BluezEarly *e, **tail;

        if (l->n_early >= 16) {
                log_warning("bluez: %s: too many notifications before setup finished, dropping one",
                            l->address);
                return;
        }
        e = malloc(sizeof(*e) + v->size);
        if (!e)
                return;
        e->next = NULL;
        e->uuid = strdup(uuid);
        if (!e->uuid) {
                free(e);
                return;
        }
        e->size = v->size;
        memcpy(e->data, v->data, v->size);
        for (tail = &l->early; *tail; tail = &(*tail)->next)
                ;
        *tail = e;
        l->n_early++;
}

static void link_set_connected(BluezLink *l)
{
        if (l->timer)
                (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
        l->released = false;
        link_set_state(l, BLUEZ_LINK_CONNECTED);
        link_log(l, LOG_INFO, NULL, "connected");
        touch_idle(l);
        link_ref(l);
        if (l->ops && l->ops->connected)
                l->ops->connected(l, l->userdata);
        while (!l->freed && l->state == BLUEZ_LINK_CONNECTED && l->early) {
                BluezEarly *e = l->early;
                l->early = e->next;
                l->n_early--;
                if (l->ops && l->ops->indication)
                        l->ops->indication(l, e->uuid, e->data, e->size, l->userdata);
                free(e->uuid);
                free(e);
        }
        if (!l->freed && l->state == BLUEZ_LINK_CONNECTED)
                ops_run(l);
        link_unref(l);
}

static int on_start_notify(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezLink *l = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        sd_bus_slot *slot = sd_bus_get_current_slot(l->client->bus);
        size_t n = n_notify(l);

        for (size_t i = 0; i < n; i++)
                if (l->notify_slots[i] == slot)
                        l->notify_slots[i] = sd_bus_slot_unref(l->notify_slots[i]);
        link_ref(l);
        /* InProgress: our own earlier registration is still being set up; that is "on". */
        if (e && !sd_bus_error_has_name(e, "org.bluez.Error.InProgress")) {
                BluezError err;
                bluez_error_from_bus(e, &err);
                link_fail_and_teardown(l, &err);
        } else if (--l->n_notify_pending == 0)
                link_set_connected(l);
        link_unref(l);
        return 0;
}

static bool char_can_notify(const BluezObject *ch)
{
        /* No Flags known (an odd server): try, and let BlueZ say no. */
        if (!ch->flags)
                return true;
        for (char **f = ch->flags; *f; f++)
                if (streq(*f, "notify") || streq(*f, "indicate"))
                        return true;
        return false;
}

/* RESOLVING → SETUP: StartNotify on every wanted characteristic present. [link_setup] */
static void link_setup(BluezLink *l)
{
        BluezClient *c = l->client;
        size_t n = n_notify(l);

        link_set_state(l, BLUEZ_LINK_SETUP);
        (void) arm(l, c->resolve_timeout, on_resolve_timeout);
        l->n_notify_pending = 0;
        for (size_t i = 0; i < n; i++) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                BluezObject *ch = bluez_client_find_char(c, l->device_path, l->notify_uuids[i]);
                int r;

                if (!ch)
                        continue;
                if (!char_can_notify(ch)) {
                        /* StartNotify would fail with NotSupported and take the
                         * connection with it. */
                        log_debug("bluez: %s: %s has neither notify nor indicate, not subscribing",
                                  l->address, ch->uuid);
                        continue;
                }
                r = bluez_new_call(c, ch->path, BLUEZ_IFACE_CHAR, "StartNotify", &m);
                if (r >= 0)
                        r = bluez_call(c, m, c->call_timeout, on_start_notify, l, &l->notify_slots[i]);
                if (r < 0) {
                        BluezError err = { .error = r, .message = "cannot call StartNotify" };
                        link_fail_and_teardown(l, &err);
                        return;
                }
                l->n_notify_pending++;
        }
        if (l->n_notify_pending == 0)
                link_set_connected(l);
}

/* ---- idle ---------------------------------------------------------------------- */

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata)
{
        BluezLink *l = userdata;

        if (l->state != BLUEZ_LINK_CONNECTED)
                return 0;
        if (l->ops_head) {
                touch_idle(l);
                return 0;
        }
        link_log(l, LOG_DEBUG, NULL, "idle, disconnecting");
        link_ref(l);
        link_teardown(l, TEARDOWN_DISCONNECTED, NULL);
        link_unref(l);
        return 0;
}

static void touch_idle(BluezLink *l)
{
        BluezClient *c = l->client;
        int r;

        if (!c || c->idle_timeout == 0 || l->state != BLUEZ_LINK_CONNECTED)
                return;
        if (l->idle_timer) {
                r = sd_event_source_set_time_relative(l->idle_timer, c->idle_timeout);
                if (r >= 0)
                        r = sd_event_source_set_enabled(l->idle_timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(c->event, &l->idle_timer, CLOCK_MONOTONIC, c->idle_timeout,
                                               10 * 1000, on_idle, l);
        if (r < 0)
                log_warning_errno(r, "bluez: %s: cannot arm the idle timer: %m", l->address);
}

/* ---- the scheduler ------------------------------------------------------------ */

unsigned bluez_links_count_on_adapter(BluezClient *c, const char *adapter_path)
{
        BluezLink *l;
        unsigned n = 0;

        LIST_FOREACH (links, l, c->links)
                if (link_is_active(l) && l->adapter_path && streq(l->adapter_path, adapter_path))
                        n++;
        return n;
}

/* Where could this link connect now? */
static bool link_place(BluezClient *c, BluezLink *l, BluezAdapterState **ret_s, BluezObject **ret_dev)
{
        BluezAdapterState *s, *best_s = NULL;
        BluezObject *best_dev = NULL;

        LIST_FOREACH (adapters, s, c->adapter_states) {
                BluezObject *a = bluez_client_find_object(c, s->path);
                BluezObject *d;

                if (!a || !a->powered)
                        continue;
                d = bluez_client_find_device(c, s->path, l->address);
                if (!d || bluez_links_count_on_adapter(c, s->path) >= c->max_connections)
                        continue;
                if (best_dev) {
                        if (best_dev->connected && !d->connected)
                                continue;
                        if (best_dev->connected == d->connected &&
                            (!d->has_rssi || (best_dev->has_rssi && best_dev->rssi >= d->rssi)))
                                continue;
                }
                best_s = s;
                best_dev = d;
        }
        *ret_s = best_s;
        *ret_dev = best_dev;
        return best_s;
}

/* bluez.md 3.5: connections outlive their client. A lock we have a link for that
 * is connected while the link is IDLE (we restarted, or someone else connected it)
 * would stay connected and stop advertising: disconnect it. One Disconnect per
 * device and link until the device is seen disconnected. */
static void links_sweep_stray(BluezClient *c)
{
        BluezLink *l;

        LIST_FOREACH (links, l, c->links) {
                BluezAdapterState *s;

                if (l->state != BLUEZ_LINK_IDLE)
                        continue;
                LIST_FOREACH (adapters, s, c->adapter_states) {
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                        BluezObject *d = bluez_client_find_device(c, s->path, l->address);

                        if (!d || !d->connected) {
                                if (d && l->stray_path && streq(l->stray_path, d->path)) {
                                        free(l->stray_path);
                                        l->stray_path = NULL;
                                }
                                continue;
                        }
                        if (l->stray_path && streq(l->stray_path, d->path))
                                continue;
                        free(l->stray_path);
                        l->stray_path = strdup(d->path);
                        link_log(l, LOG_NOTICE, NULL, "connected but not in use, disconnecting");
                        if (bluez_new_call(c, d->path, BLUEZ_IFACE_DEVICE, "Disconnect", &m) >= 0)
                                (void) bluez_call(c, m, BLUEZ_DISCONNECT_TIMEOUT_USEC_DEFAULT, NULL, NULL,
                                                  NULL);
                }
        }
}

static bool link_preemptible(const BluezLink *l)
{
        return l->state == BLUEZ_LINK_CONNECTED && l->released && !l->ops_head && !l->op_slot;
}

/* Queued links that could not be placed: free slots held by released links. */
static void links_preempt(BluezClient *c)
{
        BluezAdapterState *s;

        LIST_FOREACH (adapters, s, c->adapter_states) {
                BluezObject *a = bluez_client_find_object(c, s->path);
                unsigned waiting = 0, freeing = 0;
                BluezLink *l, *n;

                if (!a || !a->powered || bluez_links_count_on_adapter(c, s->path) < c->max_connections)
                        continue;
                LIST_FOREACH (links, l, c->links)
                        if (l->state == BLUEZ_LINK_QUEUED &&
                            bluez_client_find_device(c, s->path, l->address))
                                waiting++;
                        else if (l->state == BLUEZ_LINK_DISCONNECTING && l->adapter_path &&
                                 streq(l->adapter_path, s->path))
                                freeing++;
                LIST_FOREACH_SAFE(links, l, n, c->links)
                {
                        if (freeing >= waiting)
                                break;
                        if (!link_preemptible(l) || !l->adapter_path || !streq(l->adapter_path, s->path))
                                continue;
                        link_log(l, LOG_DEBUG, NULL, "released and a link waits for a slot, disconnecting");
                        freeing++;
                        link_ref(l);
                        link_teardown(l, TEARDOWN_DISCONNECTED, NULL);
                        link_unref(l);
                        /* the owner may have freed other links: start over next time */
                        bluez_links_schedule(c);
                        return;
                }
        }
}

static int on_schedule(sd_event_source *es, void *userdata)
{
        BluezClient *c = userdata;

        if (c->up)
                links_sweep_stray(c);

        while (c->up) {
                BluezLink *l, *best = NULL;
                BluezAdapterState *best_s = NULL, *s;
                BluezObject *best_dev = NULL, *d;

                LIST_FOREACH (links, l, c->links) {
                        if (l->state != BLUEZ_LINK_QUEUED)
                                continue;
                        if (best &&
                            bluez_link_queue_compare(l->priority, l->seq, best->priority, best->seq) >= 0)
                                continue;
                        if (!link_place(c, l, &s, &d))
                                continue;
                        best = l;
                        best_s = s;
                        best_dev = d;
                }
                if (!best)
                        break;
                link_start_connect(best, best_s, best_dev);
        }
        if (c->up)
                links_preempt(c);
        return 0;
}

void bluez_links_schedule(BluezClient *c)
{
        if (!c->schedule_defer) {
                int r = sd_event_add_defer(c->event, &c->schedule_defer, on_schedule, c);
                if (r < 0) {
                        log_error_errno(r, "bluez: cannot schedule connections: %m");
                        return;
                }
        }
        (void) sd_event_source_set_enabled(c->schedule_defer, SD_EVENT_ONESHOT);
}

static int on_queue_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
        BluezLink *l = userdata;
        BluezClient *c = l->client;
        BluezError err = { .error = -ETIMEDOUT, .message = "no free connection slot" };
        BluezAdapterState *st;
        bool seen = false, powered = false;

        if (l->state != BLUEZ_LINK_QUEUED)
                return 0;
        LIST_FOREACH (adapters, st, c->adapter_states) {
                BluezObject *a = bluez_client_find_object(c, st->path);
                powered = powered || (a && a->powered);
                seen = seen || bluez_client_find_device(c, st->path, l->address);
        }
        if (!c->up)
                err = (BluezError){ .error = -EHOSTDOWN, .message = "bluetoothd is not running" };
        else if (!powered)
                err = (BluezError){ .error = -ENETDOWN, .message = "no powered adapter" };
        else if (!seen)
                err = (BluezError){ .error = -EHOSTUNREACH, .message = "device not seen by any adapter" };
        link_ref(l);
        link_end_now(l, TEARDOWN_FAILED, &err);
        link_unref(l);
        return 0;
}

/* ---- events from the client ---------------------------------------------------- */

static BluezLink *link_for_device(BluezClient *c, const char *device_path)
{
        BluezLink *l;

        LIST_FOREACH (links, l, c->links)
                if (link_is_active(l) && l->device_path && streq(l->device_path, device_path))
                        return l;
        return NULL;
}

void bluez_links_device_changed(BluezClient *c, BluezObject *dev, unsigned changed)
{
        BluezLink *l = link_for_device(c, dev->path);

        if (!l) {
                if (changed & BLUEZ_PROP_CONNECTED)
                        bluez_links_schedule(c); /* a stray connection, or a slot freed */
                return;
        }
        link_ref(l);
        if ((changed & BLUEZ_PROP_CONNECTED) && !dev->connected) {
                BluezError err = { .error = -ECONNRESET,
                                   .retryable = true,
                                   .message = "connection dropped" };

                switch (l->state) {
                case BLUEZ_LINK_CONNECTING:
                        l->saw_disconnect = true; /* the Connect error follows */
                        break;
                case BLUEZ_LINK_WAIT_DOWN:
                        l->saw_disconnect = true;
                        (void) arm(l, RETRY_BACKOFF_USEC * l->attempts, on_retry_timer);
                        break;
                case BLUEZ_LINK_RESOLVING:
                case BLUEZ_LINK_SETUP:
                        l->saw_disconnect = true;
                        if (attempt_may_retry(l, &err))
                                link_wait_down(l, &err);
                        else
                                link_end_now(l, TEARDOWN_FAILED, &err);
                        break;
                case BLUEZ_LINK_CONNECTED:
                        err.message = "remote disconnected";
                        link_lost(l, -ECONNRESET, err.message);
                        break;
                case BLUEZ_LINK_DISCONNECTING:
                        link_finish_teardown(l);
                        break;
                case BLUEZ_LINK_IDLE:
                case BLUEZ_LINK_QUEUED:
                case _BLUEZ_LINK_STATE_MAX:
                        break;
                }
        } else if ((changed & BLUEZ_PROP_SERVICES_RESOLVED) && dev->services_resolved && dev->connected &&
                   l->state == BLUEZ_LINK_RESOLVING)
                link_setup(l);
        link_unref(l);
}

void bluez_links_device_removed(BluezClient *c, const char *path)
{
        BluezLink *l;

        while ((l = link_for_device(c, path))) {
                link_ref(l);
                if (l->state == BLUEZ_LINK_DISCONNECTING)
                        link_finish_teardown(l);
                else
                        link_lost(l, -ENODEV, "device object removed");
                link_unref(l);
        }
}

void bluez_links_service_lost(BluezClient *c)
{
        BluezLink *l;

        for (;;) {
                LIST_FOREACH (links, l, c->links)
                        if (link_is_active(l))
                                break;
                if (!l)
                        break;
                link_ref(l);
                if (l->state == BLUEZ_LINK_DISCONNECTING)
                        link_finish_teardown(l);
                else
                        link_lost(l, -EHOSTDOWN, "bluetoothd went away");
                link_unref(l);
        }
}

static bool link_wants_notify(const BluezLink *l, const char *uuid)
{
        for (char **i = l->notify_uuids; i && *i; i++)
                if (bluez_uuid_equal(*i, uuid))
                        return true;
        return false;
}

static BluezLink *link_for_char(BluezClient *c, const BluezObject *ch)
{
        BluezLink *l;

        LIST_FOREACH (links, l, c->links)
                if (link_is_active(l) && l->device_path && bluez_path_is_below(ch->path, l->device_path))
                        return l;
        return NULL;
}

void bluez_links_char_added(BluezClient *c, BluezObject *ch)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BluezLink *l = link_for_char(c, ch);
        int r;

        /* Re-added while connected (Service Changed): notifications must be enabled
         * again; nobody waits for the answer. */
        if (!l || l->state != BLUEZ_LINK_CONNECTED || !link_wants_notify(l, ch->uuid) ||
            !char_can_notify(ch))
                return;
        log_debug("bluez: %s: characteristic %s re-appeared, enabling notifications", l->address, ch->uuid);
        r = bluez_new_call(c, ch->path, BLUEZ_IFACE_CHAR, "StartNotify", &m);
        if (r >= 0)
                r = bluez_call(c, m, c->call_timeout, NULL, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "bluez: %s: cannot call StartNotify: %m", l->address);
}

void bluez_links_value(BluezClient *c, BluezObject *ch, const BluezValue *v)
{
        BluezLink *l = link_for_char(c, ch);

        if (!l || !link_wants_notify(l, ch->uuid))
                return;
        if (l->state == BLUEZ_LINK_SETUP) {
                early_push(l, ch->uuid, v);
                return;
        }
        if (l->state != BLUEZ_LINK_CONNECTED)
                return;
        if (l->reading_path && streq(l->reading_path, ch->path))
                return; /* the echo of our own ReadValue, sent before its reply */
        touch_idle(l);
        if (l->ops && l->ops->indication)
                l->ops->indication(l, ch->uuid, v->data, v->size, l->userdata);
}

/* The event loop is exiting: sd-bus closes the connection from its own exit source,
 * after this one. Disconnect every link that is up or coming up now, or the locks
 * would stay connected to bluetoothd (and silent) after we are gone. */
void bluez_links_exiting(BluezClient *c)
{
        BluezLink *l;

        if (!c->up)
                return;
        LIST_FOREACH (links, l, c->links) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;

                if (!link_is_active(l) || l->state == BLUEZ_LINK_DISCONNECTING || !l->device_path)
                        continue;
                link_log(l, LOG_INFO, NULL, "disconnecting: shutting down");
                if (bluez_new_call(c, l->device_path, BLUEZ_IFACE_DEVICE, "Disconnect", &m) >= 0)
                        (void) bluez_call(c, m, BLUEZ_DISCONNECT_TIMEOUT_USEC_DEFAULT, NULL, NULL, NULL);
        }
}

void bluez_links_client_freed(BluezClient *c)
{
        BluezLink *l, *n;

        LIST_FOREACH_SAFE(links, l, n, c->links)
        {
                link_unbind(l);
                l->timer = sd_event_source_disable_unref(l->timer);
                l->idle_timer = sd_event_source_disable_unref(l->idle_timer);
                l->state = BLUEZ_LINK_IDLE;
                l->client = NULL;
                LIST_REMOVE(links, c->links, l);
        }
}

/* ---- GATT operations ------------------------------------------------------------ */

static int on_op_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        BluezLink *l = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        BluezOp *op = l->ops_head;
        BluezError err = {};
        const void *data = NULL;
        size_t size = 0;
        bool failed = false;

        l->op_slot = sd_bus_slot_unref(l->op_slot);
        free(l->reading_path);
        l->reading_path = NULL;
        if (!op)
                return 0;
        l->ops_head = op->next;
        if (!l->ops_head)
                l->ops_tail = NULL;

        if (e) {
                bluez_error_from_bus(e, &err);
                failed = true;
                log_debug("bluez: %s: %s %s failed: %s: %s", l->address,
                          op->is_read ? "ReadValue" : "WriteValue", op->uuid, err.name, strna(err.message));
        } else if (op->is_read) {
                int r = sd_bus_message_read_array(reply, 'y', &data, &size);
                if (r < 0) {
                        err = (BluezError){ .error = r, .message = "bad ReadValue reply" };
                        failed = true;
                        data = NULL;
                        size = 0;
                }
        }
        touch_idle(l);
        link_ref(l);
        if (op->is_read && op->read_cb)
                op->read_cb(l, failed ? &err : NULL, data, size, op->userdata);
        else if (!op->is_read && op->write_cb)
                op->write_cb(l, failed ? &err : NULL, op->userdata);
        op_free(op);
        if (!l->freed && l->state == BLUEZ_LINK_CONNECTED)
                ops_run(l);
        link_unref(l);
        return 0;
}

/* Starts the head op. Returns 0 when started (or nothing to do), else -errno with the
 * op still at the head. */
static int op_start(BluezLink *l)
{
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        BluezClient *c = l->client;
        BluezOp *op = l->ops_head;
        BluezObject *ch;
        int r;

        if (!op || l->op_slot || l->state != BLUEZ_LINK_CONNECTED)
                return 0;
        ch = bluez_client_find_char(c, l->device_path, op->uuid);
        if (!ch)
                return -ENOENT;
        if (op->is_read) {
                r = bluez_new_call(c, ch->path, BLUEZ_IFACE_CHAR, "ReadValue", &m);
                if (r >= 0)
                        r = sd_bus_message_append(m, "a{sv}", 0);
        } else {
                r = bluez_new_call(c, ch->path, BLUEZ_IFACE_CHAR, "WriteValue", &m);
                if (r >= 0)
                        r = sd_bus_message_append_array(m, 'y', op->data, op->size);
                if (r >= 0)
                        r = sd_bus_message_append(m, "a{sv}", 1, "type", "s", "request");
        }
        if (r >= 0)
                r = bluez_call(c, m, c->call_timeout, on_op_reply, l, &l->op_slot);
        if (r < 0)
                return r;
        if (op->is_read) {
                l->reading_path = strdup(ch->path);
                if (!l->reading_path)
                        log_debug("bluez: %s: out of memory, the read's echo may look like a notification",
                                  l->address);
        }
        return 0;
}

/* Runs ops from the event loop: a failure to start is reported to the op's callback. */
static void ops_run(BluezLink *l)
{
        link_ref(l);
        while (!l->freed && l->ops_head && !l->op_slot && l->state == BLUEZ_LINK_CONNECTED) {
                int r = op_start(l);
                if (r >= 0)
                        break;
                BluezOp *op = l->ops_head;
                BluezError err = { .error = r, .message = r == -ENOENT ? "no such characteristic" : NULL };
                l->ops_head = op->next;
                if (!l->ops_head)
                        l->ops_tail = NULL;
                if (op->is_read && op->read_cb)
                        op->read_cb(l, &err, NULL, 0, op->userdata);
                else if (!op->is_read && op->write_cb)
                        op->write_cb(l, &err, op->userdata);
                op_free(op);
        }
        link_unref(l);
}

static int op_enqueue(BluezLink *l, BluezOp *op)
{
        int r;

        if (!l->client || l->state != BLUEZ_LINK_CONNECTED) {
                op_free(op);
                return -ENOTCONN;
        }
        if (!bluez_client_find_char(l->client, l->device_path, op->uuid)) {
                op_free(op);
                return -ENOENT;
        }
        if (l->ops_tail)
                l->ops_tail->next = op;
        else
                l->ops_head = op;
        l->ops_tail = op;
        touch_idle(l);
        if (l->ops_head != op)
                return 0;
        /* Start now so that an error can be returned rather than called back. */
        r = op_start(l);
        if (r < 0) {
                l->ops_head = l->ops_tail = NULL;
                op_free(op);
                return r;
        }
        return 0;
}

int bluez_link_write(BluezLink *l, const char *uuid, const void *data, size_t size, bluez_write_cb cb,
                     void *userdata)
{
        BluezOp *op;

        if (!l || !uuid || (!data && size > 0))
                return -EINVAL;
        if (size > BLUEZ_VALUE_MAX)
                return -EMSGSIZE;
        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->uuid = strdup(uuid);
        op->data = malloc(size ? size : 1);
        if (!op->uuid || !op->data) {
                op_free(op);
                return -ENOMEM;
        }
        if (size)
                memcpy(op->data, data, size);
        op->size = size;
        op->write_cb = cb;
        op->userdata = userdata;
        return op_enqueue(l, op);
}

int bluez_link_read(BluezLink *l, const char *uuid, bluez_read_cb cb, void *userdata)
{
        BluezOp *op;

        if (!l || !uuid)
                return -EINVAL;
        op = calloc(1, sizeof(*op));
        if (!op)
                return -ENOMEM;
        op->is_read = true;
        op->uuid = strdup(uuid);
        if (!op->uuid) {
                op_free(op);
                return -ENOMEM;
        }
        op->read_cb = cb;
        op->userdata = userdata;
        return op_enqueue(l, op);
}

/* ---- the public link API -------------------------------------------------------- */

int bluez_link_new(BluezClient *c, const char *address, const char *const *notify_uuids,
                   const BluezLinkOps *ops, void *userdata, BluezLink **ret)
{
        BluezLink *l;
        size_t n = 0;

        if (!c || !address || strlen(address) != 17 || !ret)
                return -EINVAL;
        for (const char *const *i = notify_uuids; i && *i; i++)
                n++;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->n_ref = 1;
        l->client = c;
        l->ops = ops;
        l->userdata = userdata;
        l->address = strdup(address);
        l->notify_uuids = calloc(n + 1, sizeof(char *));
        l->notify_slots = calloc(n + 1, sizeof(sd_bus_slot *));
        if (!l->address || !l->notify_uuids || !l->notify_slots) {
                link_unref(l);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++)
                if (!(l->notify_uuids[i] = strdup(notify_uuids[i]))) {
                        link_unref(l);
                        return -ENOMEM;
                }
        for (char *p = l->address; *p; p++)
                if (*p >= 'a' && *p <= 'f')
                        *p = (char) (*p - 'a' + 'A');
        LIST_PREPEND(links, c->links, l);
        bluez_links_schedule(c); /* the stray-connection sweep */
        *ret = l;
        return 0;
}

BluezLink *bluez_link_free(BluezLink *l)
{
        BluezClient *c;

        if (!l)
                return NULL;
        c = l->client;
        l->freed = true;
        l->ops = NULL;
        if (c) {
                if (link_is_active(l) && l->state != BLUEZ_LINK_DISCONNECTING && c->up && l->device_path) {
                        /* Do not leave the lock connected behind us (it would stop
                         * advertising); nobody waits for the answer. */
                        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                        if (bluez_new_call(c, l->device_path, BLUEZ_IFACE_DEVICE, "Disconnect", &m) >= 0)
                                (void) bluez_call(c, m, BLUEZ_DISCONNECT_TIMEOUT_USEC_DEFAULT, NULL, NULL,
                                                  NULL);
                }
                link_unbind(l);
                LIST_REMOVE(links, c->links, l);
                if (link_is_active(l))
                        bluez_links_schedule(c);
        }
        l->timer = sd_event_source_disable_unref(l->timer);
        l->idle_timer = sd_event_source_disable_unref(l->idle_timer);
        l->state = BLUEZ_LINK_IDLE;
        l->client = NULL;
        link_unref(l);
        return NULL;
}

int bluez_link_connect(BluezLink *l, BluezPriority priority)
{
        BluezClient *c;
        int r;

        if (!l || (unsigned) priority >= _BLUEZ_PRIORITY_MAX)
                return -EINVAL;
        c = l->client;
        if (!c)
                return -ESHUTDOWN;
        switch (l->state) {
        case BLUEZ_LINK_IDLE:
                l->priority = priority;
                l->seq = ++c->link_seq;
                l->attempts = 0;
                r = arm(l, c->queue_timeout, on_queue_timeout);
                if (r < 0)
                        return r;
                link_set_state(l, BLUEZ_LINK_QUEUED);
                bluez_links_schedule(c);
                return 0;
        case BLUEZ_LINK_QUEUED:
        case BLUEZ_LINK_CONNECTING:
        case BLUEZ_LINK_WAIT_DOWN:
        case BLUEZ_LINK_RESOLVING:
        case BLUEZ_LINK_SETUP:
                l->priority = MIN(l->priority, priority);
                return 0;
        case BLUEZ_LINK_CONNECTED:
                l->released = false;
                touch_idle(l);
                return 1;
        case BLUEZ_LINK_DISCONNECTING:
                l->priority = l->reconnect ? MIN(l->priority, priority) : priority;
                l->reconnect = true;
                return 0;
        case _BLUEZ_LINK_STATE_MAX:
                break;
        }
        return -EINVAL;
}

int bluez_link_disconnect(BluezLink *l)
{
        BluezError err = { .error = -ECANCELED, .message = "disconnect requested" };

        if (!l)
                return -EINVAL;
        switch (l->state) {
        case BLUEZ_LINK_IDLE:
                return 1;
        case BLUEZ_LINK_QUEUED:
                if (l->timer)
                        (void) sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
                link_set_state(l, BLUEZ_LINK_IDLE);
                return 1;
        case BLUEZ_LINK_CONNECTING:
        case BLUEZ_LINK_WAIT_DOWN:
        case BLUEZ_LINK_RESOLVING:
        case BLUEZ_LINK_SETUP:
                link_teardown(l, TEARDOWN_FAILED, &err);
                return 0;
        case BLUEZ_LINK_CONNECTED:
                link_teardown(l, TEARDOWN_DISCONNECTED, NULL);
                return 0;
        case BLUEZ_LINK_DISCONNECTING:
                l->reconnect = false;
                return 0;
        case _BLUEZ_LINK_STATE_MAX:
                break;
        }
        return -EINVAL;
}

void bluez_link_release(BluezLink *l)
{
        if (!l || !l->client || l->state != BLUEZ_LINK_CONNECTED)
                return;
        l->released = true;
        bluez_links_schedule(l->client);
}

BluezLinkState bluez_link_get_state(const BluezLink *l)
{
        return l->state;
}

const char *bluez_link_get_address(const BluezLink *l)
{
        return l->address;
}

const char *bluez_link_get_adapter(const BluezLink *l)
{
        return link_is_active(l) ? l->adapter_name : NULL;
}

bool bluez_link_has_characteristic(const BluezLink *l, const char *uuid)
{
        if (!l->client || l->state != BLUEZ_LINK_CONNECTED)
                return false;
        return bluez_client_find_char(l->client, l->device_path, uuid);
}
