/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nuki-driver-probe: pairs with one lock (lockhub-sim on a private bus, or a real one)
 * and runs Nuki driver operations on it, without lockhubd, for the integration tests of
 * driver operations that lockhubd does not expose yet (keypad codes).
 *
 *   nuki-driver-probe ADDRESS PIN COMMAND...
 *
 * Commands, run in order, each printing one line:
 *   list                          list ok N ID:NAME:DIGITS:ENABLED ...  (sorted by id)
 *   add DIGITS NAME               add ok ID
 *   update ID DIGITS NAME 0|1     update ok
 *   remove ID                     remove ok
 *   lock | unlock                 lock ok
 * A failure prints "CMD error ERRNO-NAME MESSAGE" and the next command runs.
 * Exit 0 when every command ran (whatever its result), 1 when pairing failed.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "lockhub/bluez.h"
#include "lockhub/conf.h"
#include "lockhub/lock.h"
#include "lockhub/log.h"
#include "lockhub/nuki-driver.h"

typedef struct Probe {
        sd_event *event;
        BluezClient *client;
        Conf *conf;
        NukiDriverContext ctx;
        NukiPairOp *pair;
        Lock *lock;
        char **cmds;
        int n_cmds, pc;
        const char *cmd; /* running */
        char address[18];
        uint32_t pin;
        int exit_code;
} Probe;

static void next(Probe *p);

static const char *errname(int r)
{
        switch (-r) {
        case EEXIST:
                return "EEXIST";
        case ENOENT:
                return "ENOENT";
        case ENOSPC:
                return "ENOSPC";
        case EINVAL:
                return "EINVAL";
        case ENOKEY:
                return "ENOKEY";
        case EHOSTUNREACH:
                return "EHOSTUNREACH";
        case ETIMEDOUT:
                return "ETIMEDOUT";
        case EACCES:
                return "EACCES";
        default:
                return "EIO";
        }
}

static int code_cmp(const void *a, const void *b)
{
        const LockCode *x = a, *y = b;
        return x->id - y->id;
}

static void on_listed(Lock *l, int r, const char *message, const LockCode *codes, size_t n, void *userdata)
{
        Probe *p = userdata;
        LockCode *c;

        if (r < 0) {
                printf("list error %s %s\n", errname(r), strna(message));
                next(p);
                return;
        }
        c = calloc(n ? n : 1, sizeof *c);
        if (!c)
                abort();
        if (n > 0) {
                memcpy(c, codes, n * sizeof *c);
                qsort(c, n, sizeof *c, code_cmp);
        }
        printf("list ok %zu", n);
        for (size_t i = 0; i < n; i++)
                printf(" %d:%s:%s:%d", c[i].id, c[i].name, c[i].digits, c[i].enabled);
        printf("\n");
        free(c);
        next(p);
}

static void on_added(Lock *l, int r, const char *message, int id, void *userdata)
{
        Probe *p = userdata;

        if (r < 0)
                printf("add error %s %s\n", errname(r), strna(message));
        else
                printf("add ok %d\n", id);
        next(p);
}

static void on_done(Lock *l, int r, const char *message, void *userdata)
{
        Probe *p = userdata;

        if (r < 0)
                printf("%s error %s %s\n", p->cmd, errname(r), strna(message));
        else
                printf("%s ok\n", p->cmd);
        next(p);
}

static void fill_code(LockCode *c, int id, const char *digits, const char *name, bool enabled)
{
        *c = (LockCode){
                .id = id, .enabled = enabled, .weekdays = 0x7f, .time_from_min = -1, .time_until_min = -1
        };
        snprintf(c->digits, sizeof c->digits, "%s", digits);
        snprintf(c->name, sizeof c->name, "%s", name);
}

static int need(Probe *p, int n)
{
        if (p->pc + n > p->n_cmds) {
                fprintf(stderr, "%s: needs %d argument(s)\n", p->cmds[p->pc - 1], n);
                exit(2);
        }
        return 0;
}

static void next(Probe *p)
{
        const struct lock_driver_ops *ops = p->lock->ops;
        LockCode c;
        const char *cmd;
        int r;

        fflush(stdout);
        if (p->pc >= p->n_cmds) {
                (void) sd_event_exit(p->event, p->exit_code);
                return;
        }
        cmd = p->cmd = p->cmds[p->pc++];
        if (streq(cmd, "list"))
                r = ops->list_codes(p->lock, on_listed, p);
        else if (streq(cmd, "add")) {
                need(p, 2);
                fill_code(&c, -1, p->cmds[p->pc], p->cmds[p->pc + 1], true);
                p->pc += 2;
                r = ops->add_code(p->lock, &c, on_added, p);
        } else if (streq(cmd, "update")) {
                need(p, 4);
                fill_code(&c, atoi(p->cmds[p->pc]), p->cmds[p->pc + 1], p->cmds[p->pc + 2],
                          streq(p->cmds[p->pc + 3], "1"));
                p->pc += 4;
                r = ops->update_code(p->lock, &c, on_done, p);
        } else if (streq(cmd, "remove")) {
                need(p, 1);
                r = ops->remove_code(p->lock, atoi(p->cmds[p->pc]), on_done, p);
                p->pc++;
        } else if (streq(cmd, "lock") || streq(cmd, "unlock"))
                r = ops->action(p->lock, streq(cmd, "lock") ? LOCK_ACTION_LOCK : LOCK_ACTION_UNLOCK,
                                LOCK_SOURCE_HUB, NULL, on_done, p);
        else {
                fprintf(stderr, "unknown command %s\n", cmd);
                exit(2);
        }
        if (r < 0) {
                printf("%s error %s not started\n", cmd, errname(r));
                next(p);
        }
}

static void on_paired(int r, const char *message, const NukiPairing *pairing, void *userdata)
{
        Probe *p = userdata;
        NukiCredentials cred = {};

        if (r < 0) {
                printf("pair error %s %s\n", errname(r), strna(message));
                p->pair = nuki_pair_op_free(p->pair);
                p->exit_code = 1;
                (void) sd_event_exit(p->event, 1);
                return;
        }
        printf("pair ok %u\n", pairing->auth_id);
        cred.auth_id = pairing->auth_id;
        cred.app_id = pairing->app_id;
        memcpy(cred.shared_key, pairing->shared_key, sizeof cred.shared_key);
        cred.ultra = pairing->ultra;
        cred.has_pin = true;
        cred.security_pin = p->pin;
        /* done with the pairing (it lives in the op, which may be freed from its callback) */
        p->pair = nuki_pair_op_free(p->pair);
        if (lock_new("probe", p->address, &p->lock) < 0 || nuki_driver_attach(p->lock, &p->ctx, &cred) < 0) {
                printf("attach error\n");
                (void) sd_event_exit(p->event, 1);
                return;
        }
        nuki_credentials_wipe(&cred);
        next(p);
}

static void on_service(BluezClient *c, bool up, void *userdata)
{
        Probe *p = userdata;
        NukiPairOp *op = NULL;

        if (!up || p->pair || p->lock)
                return;
        if (nuki_pair_op_start(&p->ctx, p->address, "probe", true, p->pin, on_paired, p, &op) < 0) {
                printf("pair error EIO cannot start\n");
                (void) sd_event_exit(p->event, 1);
                return;
        }
        p->pair = op;
}

static const BluezCallbacks callbacks = { .service = on_service };

int main(int argc, char *argv[])
{
        Probe p = { .exit_code = 0 };
        BluezConfig bc = {};
        int r;

        log_open(LOG_TARGET_STDERR);
        log_set_max_level(LOG_WARNING);
        if (argc < 3) {
                fprintf(stderr, "usage: nuki-driver-probe ADDRESS PIN COMMAND...\n");
                return 2;
        }
        if (lock_address_normalize(argv[1], p.address) < 0)
                return 2;
        p.pin = (uint32_t) strtoul(argv[2], NULL, 10);
        p.cmds = argv + 3;
        p.n_cmds = argc - 3;
        p.conf = conf_new_defaults();
        if (!p.conf || sd_event_default(&p.event) < 0)
                return 1;
        bc.connect_timeout_usec = 5 * BLUEZ_USEC_PER_SEC;
        bc.idle_disconnect_usec = 1 * BLUEZ_USEC_PER_SEC;
        r = bluez_client_new(p.event, NULL, &bc, &callbacks, &p, &p.client);
        if (r < 0)
                return 1;
        p.ctx = (NukiDriverContext){ .event = p.event, .client = p.client, .conf = &p.conf };
        r = bluez_client_start(p.client);
        if (r >= 0)
                r = bluez_client_set_discovery(p.client, true);
        if (r < 0)
                return 1;
        r = sd_event_loop(p.event);
        nuki_pair_op_free(p.pair);
        lock_free(p.lock);
        bluez_client_free(p.client);
        conf_free(p.conf);
        sd_event_unref(p.event);
        return r < 0 ? 1 : r;
}
