/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pairing a Nuki lock as a Bridge over a BluezLink (see lockhub/nuki-driver.h).
 *
 * The op drives a NukiPairClient (nuki-pair.h), which does all of the protocol; this
 * file only moves bytes between it and the pairing characteristic:
 *
 *   CONNECTING --connected(): a92ee301 present → Ultra, a92ee101 → gen 1-4-->
 *       WRITING the first frame (Request Data(Public Key)) [on_connected]
 *   RUNNING   --indication → reassembly → feed → frame to write [on_indication]
 *   RUNNING   --feed returns 1 (paired)--> DISCONNECTING [op_succeed]
 *   DISCONNECTING --disconnected()/failed()/timer--> done(0, pairing)
 *   any error → DISCONNECTING → done(r, message)   [op_fail]
 *
 * The link is always taken down before done() runs, so that the driver's own link to
 * the same lock starts from a clean connection. done() may free the op.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "lockhub/log.h"
#include "lockhub/macro.h"
#include "lockhub/nuki-crypto.h"
#include "lockhub/nuki-driver.h"

#define USEC_PER_SEC 1000000ULL

struct NukiPairOp {
        NukiDriverContext ctx;
        BluezLink *link;
        NukiPairClient *client;
        NukiReasm reasm;
        char *address;
        char name[NUKI_NAME_SIZE + 1];
        bool has_pin;
        uint32_t pin;
        const char *uuid; /* the pairing characteristic in use */
        sd_event_source *timer;
        nuki_pair_done_t done;
        void *userdata;
        bool finishing;
        int result;
        char message[160];
        NukiPairing pairing;
};

static uint64_t now_mono(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

NukiPairOp *nuki_pair_op_free(NukiPairOp *op)
{
        if (!op)
                return NULL;
        op->timer = sd_event_source_disable_unref(op->timer);
        op->link = bluez_link_free(op->link);
        nuki_pair_client_free(op->client);
        nuki_pairing_wipe(&op->pairing);
        nuki_wipe(&op->reasm, sizeof op->reasm);
        nuki_wipe(&op->pin, sizeof op->pin);
        free(op->address);
        free(op);
        return NULL;
}

static void op_complete(NukiPairOp *op)
{
        nuki_pair_done_t done = op->done;

        op->done = NULL;
        op->timer = sd_event_source_disable_unref(op->timer);
        if (done)
                done(op->result, op->result < 0 ? op->message : NULL, op->result < 0 ? NULL : &op->pairing,
                     op->userdata);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        NukiPairOp *op = userdata;

        if (!op->finishing) {
                op->finishing = true;
                op->result = -ETIMEDOUT;
                snprintf(op->message, sizeof op->message, "the lock did not complete the pairing in time");
                (void) bluez_link_disconnect(op->link);
        }
        /* Do not wait for the link any longer. */
        op_complete(op);
        return 0;
}

/* Every step of the op runs under this timer; callers fail the step when it cannot be armed. */
static int op_arm(NukiPairOp *op, uint64_t usec)
{
        int r;

        op->timer = sd_event_source_disable_unref(op->timer);
        r = sd_event_add_time_relative(op->ctx.event, &op->timer, CLOCK_MONOTONIC, usec, 10000, on_timer,
                                       op);
        if (r < 0)
                return log_warning_errno(r, "Pairing %s: cannot arm a timer: %m", op->address);
        return 0;
}

/* Take the link down, then report. */
static void op_finish(NukiPairOp *op, int r, const char *message)
{
        if (op->finishing)
                return;
        op->finishing = true;
        op->result = r;
        if (message)
                snprintf(op->message, sizeof op->message, "%s", message);
        if (bluez_link_disconnect(op->link) > 0) {
                /* nothing was connected: report from the loop, not from here */
                if (op_arm(op, 1) < 0)
                        log_error("Pairing %s: cannot report the outcome: %s", op->address, op->message);
                return;
        }
        /* disconnected() or failed() follows; the timer only bounds the wait for it */
        (void) op_arm(op, 5 * USEC_PER_SEC);
}

static void pair_error_message(NukiPairOp *op, int r, char *buf, size_t n)
{
        int code = nuki_pair_client_lock_error(op->client);

        switch (r) {
        case -EPERM:
                snprintf(buf, n,
                         "the lock %s is not in pairing mode: hold its button for 5 seconds until the ring "
                         "lights up, then try again",
                         op->address);
                return;
        case -EACCES:
                snprintf(buf, n, "the lock rejected the pairing (bad authenticator)");
                return;
        case -ENOSPC:
                snprintf(buf, n,
                         "the lock has no room for another authorization; remove one in the Nuki app");
                return;
        case -EINVAL:
                snprintf(buf, n, "the lock rejected a pairing parameter");
                return;
        case -EREMOTEIO:
                if (code == NUKI_K_ERROR_BAD_PIN || code == NUKI_K_ERROR_TOO_MANY_PIN_ATTEMPTS)
                        snprintf(buf, n, "the lock rejected the security PIN");
                else
                        snprintf(buf, n, "the lock reported error 0x%02x (%s)", (unsigned) code,
                                 strna(nuki_enum_to_string(NUKI_ENUM_ERROR, (unsigned) code)));
                return;
        case -EKEYREJECTED:
                snprintf(buf, n, "the lock's authenticator did not verify; pairing aborted");
                return;
        default:
                snprintf(buf, n, "pairing failed: %s", strerror(-r));
                return;
        }
}

static int errno_for_pairing(int r, int code)
{
        switch (r) {
        case -EREMOTEIO:
                return code == NUKI_K_ERROR_BAD_PIN || code == NUKI_K_ERROR_TOO_MANY_PIN_ATTEMPTS ? -EACCES
                                                                                                  : -EPROTO;
        case -EKEYREJECTED:
                return -EACCES;
        default:
                return r;
        }
}

static void on_write_done(BluezLink *l, const BluezError *err, void *userdata)
{
        NukiPairOp *op = userdata;

        if (err)
                op_finish(op, err->error == -ENOTCONN ? -EHOSTUNREACH : err->error,
                          err->message ?: "the lock did not take the pairing message");
}

static void op_write(NukiPairOp *op, const uint8_t *buf, size_t n)
{
        int r;

        r = bluez_link_write(op->link, op->uuid, buf, n, on_write_done, op);
        if (r < 0)
                op_finish(op, -EHOSTUNREACH, "cannot write to the lock");
}

/* nuki_reasm_set_mode() drops what is buffered: only switch when the mode changes. */
static void op_reasm_mode(NukiPairOp *op)
{
        NukiReasmMode mode = nuki_pair_client_reasm_mode(op->client);

        if (op->reasm.mode != mode)
                nuki_reasm_set_mode(&op->reasm, mode);
}

static void on_indication(BluezLink *l, const char *uuid, const uint8_t *data, size_t size, void *userdata)
{
        NukiPairOp *op = userdata;
        uint8_t msg[NUKI_FRAME_MAX], out[NUKI_PAIR_OUT_MAX];
        size_t n, out_len;
        int r;

        if (op->finishing || !op->client || strcasecmp(uuid, op->uuid) != 0)
                return;
        op_reasm_mode(op);
        if (nuki_reasm_feed(&op->reasm, data, size, now_mono()) < 0)
                return;
        while (!op->finishing && (r = nuki_reasm_pop(&op->reasm, msg, sizeof msg, &n)) > 0) {
                out_len = 0;
                r = nuki_pair_client_feed(op->client, msg, n, out, sizeof out, &out_len);
                if (out_len > 0)
                        op_write(op, out, out_len);
                nuki_wipe(out, sizeof out);
                if (r < 0) {
                        char m[160];
                        pair_error_message(op, r, m, sizeof m);
                        log_info("Pairing %s failed: %s", op->address, m);
                        op_finish(op, errno_for_pairing(r, nuki_pair_client_lock_error(op->client)), m);
                        break;
                }
                if (r == 1) {
                        r = nuki_pair_client_get_result(op->client, &op->pairing);
                        op_finish(op, r < 0 ? r : 0, r < 0 ? "pairing result missing" : NULL);
                        break;
                }
                op_reasm_mode(op);
        }
        nuki_wipe(msg, sizeof msg);
}

static void on_connected(BluezLink *l, void *userdata)
{
        NukiPairOp *op = userdata;
        NukiPairParams p;
        uint8_t out[NUKI_PAIR_OUT_MAX];
        bool ultra;
        int r;

        if (op->finishing) {
                (void) bluez_link_disconnect(l);
                return;
        }
        if (bluez_link_has_characteristic(l, NUKI_UUID_PAIRING_GDIO_ULTRA)) {
                op->uuid = NUKI_UUID_PAIRING_GDIO_ULTRA;
                ultra = true;
        } else if (bluez_link_has_characteristic(l, NUKI_UUID_PAIRING_GDIO)) {
                op->uuid = NUKI_UUID_PAIRING_GDIO;
                ultra = false;
        } else {
                op_finish(op, -EOPNOTSUPP,
                          "the device has no Nuki pairing service; is it a Nuki Smart Lock?");
                return;
        }
        if (!ultra && op->has_pin && op->pin > UINT16_MAX) {
                op_finish(op, -EINVAL,
                          "the security PIN of a Smart Lock 1.0 to 4th generation has 4 digits");
                return;
        }
        if (ultra && !op->has_pin) {
                op_finish(op, -EINVAL, "this is a Smart Lock Ultra: pairing needs its 6-digit security PIN");
                return;
        }

        nuki_pair_params_init(&p);
        p.id_type = NUKI_ID_TYPE_BRIDGE;
        nuki_random(&p.app_id, sizeof p.app_id);
        p.name = op->name;
        p.security_pin = op->has_pin ? op->pin : 0;
        r = nuki_pair_client_new(&op->client, &p);
        if (r < 0) {
                op_finish(op, r, "cannot start the pairing");
                return;
        }
        nuki_reasm_init(&op->reasm, nuki_pair_client_reasm_mode(op->client));
        r = nuki_pair_client_start(op->client, out, sizeof out);
        if (r < 0) {
                op_finish(op, r, "cannot start the pairing");
                return;
        }
        log_debug("Pairing %s (%s flow)", op->address, ultra ? "Ultra" : "gen 1-4");
        op_write(op, out, (size_t) r);
        if (op->finishing)
                return; /* the write failed: op_finish() armed its own timer */
        r = op_arm(op, (uint64_t) (*op->ctx.conf)->bluetooth.command_timeout_sec * USEC_PER_SEC);
        if (r < 0)
                op_finish(op, r, "cannot arm the pairing timer");
}

static void on_failed(BluezLink *l, const BluezError *err, void *userdata)
{
        NukiPairOp *op = userdata;
        char m[160];

        if (!op->finishing) {
                op->finishing = true;
                op->result = -EHOSTUNREACH;
                snprintf(m, sizeof m, "cannot connect to %s (%s)", op->address,
                         err && err->message ? err->message : strerror(err ? -err->error : EHOSTUNREACH));
                snprintf(op->message, sizeof op->message, "%s", m);
        }
        op_complete(op);
}

static void on_disconnected(BluezLink *l, const BluezError *err, void *userdata)
{
        NukiPairOp *op = userdata;

        if (!op->finishing) {
                op->finishing = true;
                op->result = -EHOSTUNREACH;
                snprintf(op->message, sizeof op->message, "the lock dropped the connection during pairing");
        }
        op_complete(op);
}

static const BluezLinkOps pair_link_ops = {
        .connected = on_connected,
        .disconnected = on_disconnected,
        .failed = on_failed,
        .indication = on_indication,
};

int nuki_pair_op_start(const NukiDriverContext *ctx, const char *address, const char *name, bool has_pin,
                       uint32_t pin, nuki_pair_done_t done, void *userdata, NukiPairOp **ret)
{
        static const char *const notify[] = { NUKI_UUID_PAIRING_GDIO, NUKI_UUID_PAIRING_GDIO_ULTRA, NULL };
        NukiPairOp *op;
        const Conf *c = *ctx->conf;
        int r;

        op = calloc(1, sizeof *op);
        if (!op)
                return -ENOMEM;
        op->ctx = *ctx;
        op->has_pin = has_pin;
        op->pin = pin;
        op->done = done;
        op->userdata = userdata;
        snprintf(op->name, sizeof op->name, "%s", name);
        op->address = strdup(address);
        if (!op->address) {
                nuki_pair_op_free(op);
                return -ENOMEM;
        }
        r = bluez_link_new(ctx->client, address, notify, &pair_link_ops, op, &op->link);
        if (r < 0) {
                nuki_pair_op_free(op);
                return r;
        }
        r = bluez_link_connect(op->link, BLUEZ_PRIORITY_USER);
        if (r < 0) {
                nuki_pair_op_free(op);
                return r;
        }
        /* bounded: connection attempts, then the exchange */
        r = op_arm(op, ((uint64_t) c->bluetooth.connect_timeout_sec * 4 + c->bluetooth.command_timeout_sec) *
                                       USEC_PER_SEC);
        if (r < 0) {
                nuki_pair_op_free(op);
                return r;
        }
        *ret = op;
        return 0;
}
