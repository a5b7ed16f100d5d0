/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The codes service against fake locks: a lock_driver_ops that holds an in-memory code
 * list, answers on a later loop iteration, and can be made unreachable, refuse adds, or
 * lose the reply of an add. Checked from the outside: what each fake lock holds, the rows
 * of credential_locks and the "code" events; the settings written back (apply_settings)
 * after a restore or a re-pairing, and the events the locks report through their sink.
 */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "lockhub/codes.h"
#include "lockhub/log.h"

#define MAX_CODES 32

typedef struct Fake {
        LockCode codes[MAX_CODES];
        size_t n;
        int next_id;
        bool unreachable;
        int refuse_add;      /* -errno for every add, 0: accept */
        bool lose_add_reply; /* the add is applied, the reply lost (-ETIMEDOUT) */
        unsigned n_list, n_add, n_update, n_remove, in_flight;
        unsigned n_apply;
        char settings[4096]; /* the last settings written */
} Fake;

typedef enum { OP_LIST, OP_ADD, OP_UPDATE, OP_REMOVE, OP_APPLY } OpKind;

/* what the locks told their event sink, "kind detail" per line */
static char lock_events[8192];

typedef struct FakeOp {
        Lock *lock;
        OpKind kind;
        LockCode code;
        int code_id;
        lock_codes_listed_t listed;
        lock_code_added_t added;
        lock_command_done_t done;
        void *userdata;
} FakeOp;

static sd_event *event;

static ssize_t fake_find(Fake *f, int id)
{
        for (size_t i = 0; i < f->n; i++)
                if (f->codes[i].id == id)
                        return (ssize_t) i;
        return -1;
}

static int on_fake_op(sd_event_source *s, void *userdata)
{
        FakeOp *op = userdata;
        Fake *f = op->lock->driver_data;
        ssize_t i;
        int r = 0;

        f->in_flight--;
        sd_event_source_disable_unref(s);
        if (f->unreachable) {
                r = -EHOSTUNREACH;
                goto out;
        }
        switch (op->kind) {
        case OP_LIST:
                op->listed(op->lock, 0, NULL, f->codes, f->n, op->userdata);
                free(op);
                return 0;
        case OP_ADD:
                if (f->refuse_add) {
                        r = f->refuse_add;
                        break;
                }
                for (size_t k = 0; k < f->n; k++)
                        if (streq(f->codes[k].digits, op->code.digits)) {
                                r = -EEXIST;
                                goto out;
                        }
                assert_true(f->n < MAX_CODES);
                op->code.id = f->next_id++;
                op->code.enabled = true; /* Nuki's Add has no "enabled" */
                f->codes[f->n++] = op->code;
                if (f->lose_add_reply) {
                        r = -ETIMEDOUT;
                        break;
                }
                op->added(op->lock, 0, NULL, op->code.id, op->userdata);
                free(op);
                return 0;
        case OP_UPDATE:
                i = fake_find(f, op->code.id);
                if (i < 0)
                        r = -ENOENT;
                else
                        f->codes[i] = op->code;
                break;
        case OP_REMOVE:
                i = fake_find(f, op->code_id);
                if (i < 0)
                        r = -ENOENT;
                else
                        f->codes[i] = f->codes[--f->n];
                break;
        case OP_APPLY:
                break;
        }
out:
        if (op->kind == OP_LIST)
                op->listed(op->lock, r, "out of range", NULL, 0, op->userdata);
        else if (op->kind == OP_ADD)
                op->added(op->lock, r, r == -EHOSTUNREACH ? "out of range" : NULL, -1, op->userdata);
        else
                op->done(op->lock, r, r == -EHOSTUNREACH ? "out of range" : NULL, op->userdata);
        free(op);
        return 0;
}

static int fake_queue(Lock *l, FakeOp *op)
{
        Fake *f = l->driver_data;

        op->lock = l;
        assert_int_equal(sd_event_add_defer(event, NULL, on_fake_op, op), 0);
        f->in_flight++;
        return 0;
}

static int fake_list(Lock *l, lock_codes_listed_t done, void *userdata)
{
        FakeOp *op = calloc(1, sizeof *op);

        ((Fake *) l->driver_data)->n_list++;
        *op = (FakeOp){ .kind = OP_LIST, .listed = done, .userdata = userdata };
        return fake_queue(l, op);
}

static int fake_add(Lock *l, const LockCode *c, lock_code_added_t done, void *userdata)
{
        FakeOp *op = calloc(1, sizeof *op);

        ((Fake *) l->driver_data)->n_add++;
        *op = (FakeOp){ .kind = OP_ADD, .code = *c, .added = done, .userdata = userdata };
        return fake_queue(l, op);
}

static int fake_update(Lock *l, const LockCode *c, lock_command_done_t done, void *userdata)
{
        FakeOp *op = calloc(1, sizeof *op);

        ((Fake *) l->driver_data)->n_update++;
        *op = (FakeOp){ .kind = OP_UPDATE, .code = *c, .done = done, .userdata = userdata };
        return fake_queue(l, op);
}

static int fake_remove(Lock *l, int code_id, lock_command_done_t done, void *userdata)
{
        FakeOp *op = calloc(1, sizeof *op);

        ((Fake *) l->driver_data)->n_remove++;
        *op = (FakeOp){ .kind = OP_REMOVE, .code_id = code_id, .done = done, .userdata = userdata };
        return fake_queue(l, op);
}

static int fake_apply(Lock *l, const char *settings_json, lock_command_done_t done, void *userdata)
{
        Fake *f = l->driver_data;
        FakeOp *op = calloc(1, sizeof *op);

        assert_non_null(op);
        f->n_apply++;
        snprintf(f->settings, sizeof f->settings, "%s", settings_json);
        *op = (FakeOp){ .kind = OP_APPLY, .done = done, .userdata = userdata };
        return fake_queue(l, op);
}

static int fake_event_sink(Lock *l, const char *kind, LockSource source, const char *actor,
                           const char *detail_json, void *userdata)
{
        size_t n = strlen(lock_events);

        snprintf(lock_events + n, sizeof lock_events - n, "%s %s\n", kind, strempty(detail_json));
        return 0;
}

static void fake_free(Lock *l)
{
        free(l->driver_data);
}

static const struct lock_driver_ops fake_ops = {
        .protocol = "fake",
        .list_codes = fake_list,
        .add_code = fake_add,
        .update_code = fake_update,
        .remove_code = fake_remove,
        .apply_settings = fake_apply,
        .free = fake_free,
};

/* ---- fixture ---- */

struct fixture {
        char dir[64];
        Store *store;
        Conf *conf;
        CodesService *svc;
        Lock *locks[2];
        unsigned synced_calls;
        int last_r;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        return remove(path);
}

static void on_synced(CodesService *svc, Lock *l, int r, void *userdata)
{
        struct fixture *f = userdata;

        f->synced_calls++;
        f->last_r = r;
}

static Lock *new_lock(struct fixture *f, const char *name, const char *address)
{
        struct store_lock sl;
        Lock *l = NULL;

        store_lock_init(&sl);
        sl.name = (char *) name;
        sl.address = (char *) address;
        assert_int_equal(lock_new(name, address, &l), 0);
        l->store_id = store_lock_add(f->store, &sl);
        assert_true(l->store_id > 0);
        l->ops = &fake_ops;
        l->event_sink = fake_event_sink;
        l->driver_data = calloc(1, sizeof(Fake));
        ((Fake *) l->driver_data)->next_id = 1;
        assert_int_equal(codes_service_add_lock(f->svc, l), 1);
        return l;
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof *f);

        log_set_max_level(LOG_WARNING);
        lock_events[0] = '\0';
        snprintf(f->dir, sizeof f->dir, "/tmp/test-codes-sync-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(store_open(f->dir, &f->store), 0);
        assert_int_equal(sd_event_new(&event), 0);
        f->conf = conf_new_defaults();
        assert_non_null(f->conf);
        assert_int_equal(codes_service_new(event, f->store, &f->conf, &f->svc), 0);
        codes_service_set_synced_callback(f->svc, on_synced, f);
        f->locks[0] = new_lock(f, "front", "AA:BB:CC:DD:EE:01");
        f->locks[1] = new_lock(f, "back", "AA:BB:CC:DD:EE:02");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;

        for (size_t i = 0; i < 2; i++) {
                assert_int_equal(((Fake *) f->locks[i]->driver_data)->in_flight, 0);
                codes_service_remove_lock(f->svc, f->locks[i]);
                lock_free(f->locks[i]);
        }
        codes_service_free(f->svc);
        conf_free(f->conf);
        store_free(f->store);
        event = sd_event_unref(event);
        (void) nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static Fake *fake(struct fixture *f, int i)
{
        return f->locks[i]->driver_data;
}

/* Syncs the locks and turns the loop until neither has anything left to do now. */
static void sync_all(struct fixture *f, const char *why)
{
        for (int i = 0; i < 2; i++)
                assert_int_equal(codes_service_sync(f->svc, f->locks[i], why), 0);
        for (int n = 0; n < 1000; n++) {
                if (!codes_service_busy(f->svc, f->locks[0]) && !codes_service_busy(f->svc, f->locks[1]) &&
                    fake(f, 0)->in_flight == 0 && fake(f, 1)->in_flight == 0)
                        return;
                assert_true(sd_event_run(event, 1000000) >= 0);
        }
        fail_msg("the service did not settle");
}

static LockCode mk(const char *digits, const char *name)
{
        LockCode c;

        lock_code_init(&c);
        snprintf(c.digits, sizeof c.digits, "%s", digits);
        snprintf(c.name, sizeof c.name, "%s", name);
        return c;
}

static int64_t user(struct fixture *f, const char *name)
{
        int64_t id = 0;

        assert_int_equal(codes_user_add(f->store, name, &id), 0);
        return id;
}

static int64_t add_code(struct fixture *f, int64_t user_id, const LockCode *c, int mask)
{
        int64_t locks[2];
        size_t n = 0;
        int64_t id = 0;
        CodeRule rule = _CODE_RULE_MAX;

        for (int i = 0; i < 2; i++)
                if (mask & (1 << i))
                        locks[n++] = f->locks[i]->store_id;
        assert_int_equal(codes_code_add(f->store, user_id, c, locks, n, &rule, &id), 0);
        assert_int_equal(rule, CODE_RULE_OK);
        return id;
}

static const LockCode *on_lock(struct fixture *f, int i, const char *digits)
{
        for (size_t k = 0; k < fake(f, i)->n; k++)
                if (streq(fake(f, i)->codes[k].digits, digits))
                        return &fake(f, i)->codes[k];
        return NULL;
}

/* The code with these digits on lock i; the test fails when there is none. */
static LockCode *held(struct fixture *f, int i, const char *digits)
{
        static LockCode none;

        for (size_t k = 0; k < fake(f, i)->n; k++)
                if (streq(fake(f, i)->codes[k].digits, digits))
                        return &fake(f, i)->codes[k];
        fail_msg("lock %d does not hold %s", i, digits);
        return &none;
}

/* Every lock holds exactly what the database says, and every row is synced. */
static void assert_converged(struct fixture *f)
{
        for (int i = 0; i < 2; i++) {
                CodeDesired *d = NULL;
                size_t n = 0, present = 0;

                assert_int_equal(codes_desired_load(f->store, f->locks[i]->store_id, &d, &n), 0);
                for (size_t k = 0; k < n; k++) {
                        struct store_assignment a;
                        const LockCode *c;

                        assert_true(d[k].present);
                        present++;
                        c = held(f, i, d[k].code.digits);
                        assert_true(lock_code_equal(&d[k].code, c));
                        assert_int_equal(c->id, d[k].code.id);
                        assert_int_equal(store_assignment_get(f->store, f->locks[i]->store_id,
                                                              d[k].credential_id, &a),
                                         0);
                        assert_string_equal(a.state, "synced");
                        assert_null(a.reason);
                        assert_int_equal(a.synced_revision, d[k].revision);
                        assert_true(a.last_verified_usec > 0);
                        assert_non_null(a.reported);
                        assert_null(strstr(a.reported, d[k].code.digits));
                        store_assignment_done(&a);
                }
                assert_int_equal(fake(f, i)->n, present);
                free(d);
        }
}

static size_t count_events(struct fixture *f, const char *needle)
{
        struct store_event *ev = NULL;
        size_t n = 0, k = 0;

        assert_int_equal(store_event_list(f->store, &(struct store_event_filter){ .kind = "code" }, &ev, &n),
                         0);
        for (size_t i = 0; i < n; i++)
                if (!needle || (ev[i].detail && strstr(ev[i].detail, needle)))
                        k++;
        store_event_array_free(ev, n);
        return k;
}

/* ---- tests ---- */

static void test_three_users_two_locks(void **state)
{
        struct fixture *f = *state;
        int64_t alice = user(f, "Alice"), bob = user(f, "Bob"), carol = user(f, "Carol");
        LockCode a = mk("345678", "Alice"), b = mk("456789", "Bob"), c = mk("567891", "Carol cleaning");
        const LockCode *x;

        c.valid_from_usec = UINT64_C(1772323200) * 1000000;
        c.valid_until_usec = UINT64_C(1774981815) * 1000000;
        c.weekdays = 0x01 | 0x08; /* Monday, Thursday */
        c.time_from_min = 9 * 60;
        c.time_until_min = 12 * 60 + 30;
        add_code(f, alice, &a, 3);
        add_code(f, bob, &b, 1);
        add_code(f, carol, &c, 2);
        b = mk("678912", "Bob spare");
        b.enabled = false;
        add_code(f, bob, &b, 3);

        sync_all(f, "test");
        assert_converged(f);
        assert_int_equal(fake(f, 0)->n, 3);
        assert_int_equal(fake(f, 1)->n, 3);
        x = held(f, 1, "567891");
        assert_int_equal(x->weekdays, 0x09);
        assert_int_equal(x->time_from_min, 540);
        assert_int_equal(x->time_until_min, 750);
        assert_int_equal(x->valid_from_usec, c.valid_from_usec);
        assert_false(held(f, 0, "678912")->enabled); /* added, then disabled */
        assert_int_equal(f->last_r, 0);
        assert_true(count_events(f, "\"result\":\"synced\"") >= 6);

        /* converged: a second sync reads and writes nothing */
        fake(f, 0)->n_add = fake(f, 0)->n_update = fake(f, 0)->n_remove = 0;
        sync_all(f, "again");
        assert_int_equal(fake(f, 0)->n_add + fake(f, 0)->n_update + fake(f, 0)->n_remove, 0);
        assert_converged(f);
}

static void test_out_of_range_then_back(void **state)
{
        struct fixture *f = *state;
        int64_t u = user(f, "Dora"), id;
        LockCode c = mk("789123", "Dora");
        struct store_assignment a;

        fake(f, 0)->unreachable = true;
        id = add_code(f, u, &c, 1);
        sync_all(f, "user-change");
        assert_int_equal(f->last_r == -EHOSTUNREACH || f->last_r == 0, true);
        assert_int_equal(fake(f, 0)->n, 0);
        assert_int_equal(store_assignment_get(f->store, f->locks[0]->store_id, id, &a), 0);
        assert_string_equal(a.state, "pending");
        assert_non_null(a.reason);
        assert_string_equal(a.reason, "lock not reachable: out of range");
        assert_int_equal(a.attempts, 1);
        assert_true(a.next_attempt_usec > 0);
        store_assignment_done(&a);

        /* a second failure backs off further */
        sync_all(f, "retry");
        assert_int_equal(store_assignment_get(f->store, f->locks[0]->store_id, id, &a), 0);
        assert_int_equal(a.attempts, 2);
        store_assignment_done(&a);

        fake(f, 0)->unreachable = false;
        sync_all(f, "seen");
        assert_converged(f);
        assert_int_equal(store_assignment_get(f->store, f->locks[0]->store_id, id, &a), 0);
        assert_int_equal(a.attempts, 0);
        assert_int_equal(a.next_attempt_usec, 0);
        store_assignment_done(&a);
}

/* Three drifts at once: a code changed, one added and one removed on the lock. */
static void make_drift(struct fixture *f)
{
        Fake *k = fake(f, 0);
        LockCode *changed = held(f, 0, "345678");
        ssize_t gone = -1;

        changed->enabled = false;
        snprintf(changed->name, sizeof changed->name, "Alice (renamed)");
        for (size_t i = 0; i < k->n; i++)
                if (streq(k->codes[i].digits, "456789"))
                        gone = (ssize_t) i;
        assert_true(gone >= 0);
        k->codes[gone] = k->codes[--k->n];
        k->codes[k->n] = mk("891234", "Mallory");
        k->codes[k->n++].id = k->next_id++;
}

static void test_drift_hub_wins(void **state)
{
        struct fixture *f = *state;
        int64_t alice = user(f, "Alice"), bob = user(f, "Bob");
        LockCode a = mk("345678", "Alice"), b = mk("456789", "Bob");

        add_code(f, alice, &a, 1);
        add_code(f, bob, &b, 1);
        sync_all(f, "initial");
        assert_converged(f);

        make_drift(f);
        /* the lock's config update count moved: the service looks without being asked */
        lock_config_changed(f->locks[0]);
        assert_true(codes_service_busy(f->svc, f->locks[0]));
        for (int n = 0; n < 100 && (codes_service_busy(f->svc, f->locks[0]) || fake(f, 0)->in_flight > 0);
             n++)
                assert_true(sd_event_run(event, 1000000) >= 0);
        assert_converged(f); /* the lock holds the hub's codes again */
        assert_null(on_lock(f, 0, "891234"));
        assert_true(held(f, 0, "345678")->enabled);
        assert_string_equal(held(f, 0, "345678")->name, "Alice");
        assert_int_equal(count_events(f, "\"drift\":\"changed-on-lock\""), 1);
        assert_int_equal(count_events(f, "\"drift\":\"added-on-lock\""), 1);
        assert_int_equal(count_events(f, "\"drift\":\"removed-on-lock\""), 1);
        assert_int_equal(count_events(f, "\"policy\":\"hub\""), 3);
}

static void test_drift_lock_wins(void **state)
{
        struct fixture *f = *state;
        int64_t alice = user(f, "Alice"), bob = user(f, "Bob"), ida, idb;
        LockCode a = mk("345678", "Alice"), b = mk("456789", "Bob");
        struct store_credential cred;
        struct store_user mallory;
        struct store_assignment asg;

        ida = add_code(f, alice, &a, 3); /* on both locks: back follows what front adopted */
        idb = add_code(f, bob, &b, 1);
        sync_all(f, "initial");

        f->conf->codes.drift_policy = CONF_DRIFT_LOCK;
        make_drift(f);
        /* only front is asked; back is synced because front adopted a code they share */
        assert_int_equal(codes_service_sync(f->svc, f->locks[0], "config-changed"), 0);
        for (int n = 0; n < 200 && (codes_service_busy(f->svc, f->locks[0]) ||
                                    codes_service_busy(f->svc, f->locks[1]) || fake(f, 0)->in_flight > 0 ||
                                    fake(f, 1)->in_flight > 0);
             n++)
                assert_true(sd_event_run(event, 1000000) >= 0);
        assert_int_equal(fake(f, 0)->n_add, 2); /* only the initial adds: nothing was restored */
        assert_converged(f);                    /* the database took the lock's version */
        assert_string_equal(held(f, 1, "345678")->name, "Alice (renamed)");
        assert_false(held(f, 1, "345678")->enabled);
        assert_int_equal(store_credential_get(f->store, ida, &cred), 0);
        assert_string_equal(cred.name, "Alice (renamed)");
        assert_false(cred.enabled);
        store_credential_done(&cred);
        assert_int_equal(store_assignment_get(f->store, f->locks[0]->store_id, idb, &asg), -ENOENT);
        assert_int_equal(store_user_get_by_name(f->store, "Mallory", &mallory), 0);
        store_user_done(&mallory);
        assert_int_equal(count_events(f, "\"result\":\"adopted\""), 2);
        assert_int_equal(count_events(f, "\"policy\":\"lock\""), 3);
}

static void test_remove_code_and_user(void **state)
{
        struct fixture *f = *state;
        int64_t alice = user(f, "Alice"), bob = user(f, "Bob"), ida, idb;
        LockCode a = mk("345678", "Alice"), b = mk("456789", "Bob");
        struct store_credential cred;
        struct store_user u;

        ida = add_code(f, alice, &a, 3);
        idb = add_code(f, bob, &b, 1);
        sync_all(f, "initial");

        /* withdrawn while one lock is away: kept until that lock confirmed it */
        fake(f, 1)->unreachable = true;
        assert_int_equal(codes_code_remove(f->store, ida), 0);
        assert_true(codes_code_is_withdrawn(f->store, ida));
        sync_all(f, "user-change");
        assert_null(on_lock(f, 0, "345678"));
        assert_non_null(on_lock(f, 1, "345678"));
        assert_int_equal(store_credential_get(f->store, ida, &cred), 0);
        store_credential_done(&cred);

        fake(f, 1)->unreachable = false;
        sync_all(f, "seen");
        assert_null(on_lock(f, 1, "345678"));
        assert_int_equal(store_credential_get(f->store, ida, &cred), -ENOENT);
        assert_false(codes_code_is_withdrawn(f->store, ida));
        assert_converged(f);

        /* a user goes with their last code */
        assert_int_equal(codes_user_remove(f->store, bob), 0);
        assert_int_equal(store_user_get_by_name(f->store, "Bob", &u), 0);
        store_user_done(&u);
        sync_all(f, "user-change");
        assert_int_equal(fake(f, 0)->n, 0);
        assert_int_equal(store_credential_get(f->store, idb, &cred), -ENOENT);
        assert_int_equal(store_user_get_by_name(f->store, "Bob", &u), -ENOENT);
        (void) alice;
}

static void test_lost_add_reply_and_refusal(void **state)
{
        struct fixture *f = *state;
        int64_t u = user(f, "Eve"), id;
        LockCode c = mk("912345", "Eve");
        struct store_assignment a;

        fake(f, 0)->lose_add_reply = true;
        id = add_code(f, u, &c, 1);
        sync_all(f, "user-change");
        assert_int_equal(store_assignment_get(f->store, f->locks[0]->store_id, id, &a), 0);
        assert_string_equal(a.state, "pending"); /* the row never claims more than the lock said */
        store_assignment_done(&a);

        fake(f, 0)->lose_add_reply = false;
        sync_all(f, "retry");
        assert_int_equal(fake(f, 0)->n, 1); /* recognised, not added twice */
        assert_int_equal(fake(f, 0)->n_add, 1);
        assert_converged(f);

        /* the lock refuses: failed with the reason, retry armed */
        fake(f, 1)->refuse_add = -ENOSPC;
        assert_int_equal(codes_code_assign(f->store, id, f->locks[1]->store_id, true, NULL), 0);
        sync_all(f, "user-change");
        assert_int_equal(store_assignment_get(f->store, f->locks[1]->store_id, id, &a), 0);
        assert_string_equal(a.state, "failed");
        assert_non_null(strstr(a.reason, "the lock refused to add it"));
        assert_true(a.next_attempt_usec > 0);
        store_assignment_done(&a);
}

static void test_rules_refuse_before_anything(void **state)
{
        struct fixture *f = *state;
        int64_t u = user(f, "Fred"), locks[] = { f->locks[0]->store_id }, id = 0;
        LockCode c = mk("345678", "Fred"), d = mk("120000", "Bad");
        struct store_credential *all = NULL;
        size_t n = 0;
        CodeRule rule;

        add_code(f, u, &c, 1);
        c = mk("345678", "Fred 2");
        assert_int_equal(codes_code_add(f->store, u, &c, locks, 1, &rule, &id), -EINVAL);
        assert_int_equal(rule, CODE_RULE_DUPLICATE);
        /* the same digits on a lock that does not hold them are fine */
        locks[0] = f->locks[1]->store_id;
        assert_int_equal(codes_code_add(f->store, u, &c, locks, 1, &rule, &id), 0);
        assert_int_equal(codes_code_add(f->store, u, &d, locks, 1, &rule, &id), -EINVAL);
        assert_int_equal(rule, CODE_RULE_DIGITS);
        d = mk("129999", "Bad");
        assert_int_equal(codes_code_add(f->store, u, &d, locks, 1, &rule, &id), -EINVAL);
        assert_int_equal(rule, CODE_RULE_PREFIX);
        d = mk("99999", "Bad");
        assert_int_equal(codes_code_add(f->store, u, &d, locks, 1, &rule, &id), -EINVAL);
        assert_int_equal(rule, CODE_RULE_LENGTH);
        /* an update into a duplicate is refused too, and changes nothing */
        d = mk("345678", "Fred 2");
        assert_int_equal(codes_code_update(f->store, id, &d, &rule), 0);
        assert_int_equal(store_credential_list(f->store, u, &all, &n), 0);
        assert_int_equal(n, 2);
        store_credential_array_free(all, n);
        assert_int_equal(fake(f, 0)->n_add + fake(f, 1)->n_add, 0); /* nothing was sent */
}

static void test_first_contact_imports(void **state)
{
        struct fixture *f = *state;
        struct store_user u;
        int64_t carl;
        LockCode c = mk("567891", "Carl");

        /* a lock paired with codes already on it: DriftPolicy=hub does not wipe them */
        fake(f, 0)->codes[0] = mk("891234", "Grandma");
        fake(f, 0)->codes[0].id = 40;
        fake(f, 0)->n = 1;
        carl = user(f, "Carl");
        add_code(f, carl, &c, 1);
        sync_all(f, "paired");
        assert_int_equal(fake(f, 0)->n_remove, 0);
        assert_int_equal(fake(f, 0)->n, 2);
        assert_int_equal(store_user_get_by_name(f->store, "Grandma", &u), 0);
        store_user_done(&u);
        assert_converged(f);
        assert_int_equal(count_events(f, "\"result\":\"adopted\""), 1);

        /* from then on the policy applies */
        fake(f, 0)->codes[fake(f, 0)->n] = mk("912345", "Stranger");
        fake(f, 0)->codes[fake(f, 0)->n++].id = 41;
        sync_all(f, "config-changed");
        assert_null(on_lock(f, 0, "912345"));
        assert_converged(f);
}

static void test_back_in_range_triggers_sync(void **state)
{
        struct fixture *f = *state;
        int64_t u = user(f, "Gina");
        LockCode c = mk("678912", "Gina");
        LockLink link = f->locks[0]->link;

        fake(f, 0)->unreachable = true;
        add_code(f, u, &c, 1);
        sync_all(f, "user-change");
        assert_int_equal(fake(f, 0)->n, 0);

        /* the lock is seen again: the waiting code goes out without anyone asking */
        fake(f, 0)->unreachable = false;
        link.reachable = true;
        link.last_seen_usec = 1;
        assert_int_equal(lock_set_link(f->locks[0], &link), 1);
        assert_true(codes_service_busy(f->svc, f->locks[0]));
        for (int n = 0; n < 100 && (codes_service_busy(f->svc, f->locks[0]) || fake(f, 0)->in_flight > 0);
             n++)
                assert_true(sd_event_run(event, 1000000) >= 0);
        assert_converged(f);
}

static void test_attribution(void **state)
{
        struct fixture *f = *state;
        int64_t hans = user(f, "Hans"), id;
        LockCode c = mk("789123", "Hans"), d = mk("891234", "Garden gate");
        const LockCode *x;
        CodeAttribution who;
        char detail[64];

        id = add_code(f, hans, &c, 3);
        add_code(f, hans, &d, 1);
        sync_all(f, "test");
        x = held(f, 1, "789123");
        assert_int_equal(codes_attribute(f->store, f->locks[1]->store_id, x->id, &who), 0);
        assert_int_equal(who.user_id, hans);
        assert_int_equal(who.credential_id, id);
        assert_string_equal(who.actor, "Hans");
        snprintf(detail, sizeof detail, "{\"action\":\"unlock\",\"code_id\":%d}", held(f, 0, "891234")->id);
        assert_int_equal(codes_attribute_detail(f->store, f->locks[0]->store_id, detail, &who), 0);
        assert_string_equal(who.actor, "Hans (Garden gate)");
        /* unknown ids, and entries without one */
        assert_int_equal(codes_attribute(f->store, f->locks[1]->store_id, 999, &who), -ENOENT);
        assert_int_equal(codes_attribute_detail(f->store, f->locks[0]->store_id,
                                                "{\"result\":\"invalid_code\"}", &who),
                         -ENOENT);
        assert_int_equal(codes_attribute_detail(f->store, f->locks[0]->store_id, NULL, &who), -ENOENT);
}

static void test_factory_reset_reprovisions(void **state)
{
        struct fixture *f = *state;
        int64_t u = user(f, "Ida"), id;
        LockCode c = mk("789123", "Ida"), d = mk("891234", "Ida spare");
        struct store_recovery_attempt *ra = NULL;
        struct store_assignment a;
        size_t n = 0;

        id = add_code(f, u, &c, 1);
        add_code(f, u, &d, 1);
        sync_all(f, "paired");
        assert_converged(f);

        /* even with DriftPolicy=lock, a lock that lost every code gets them back */
        f->conf->codes.drift_policy = CONF_DRIFT_LOCK;
        fake(f, 0)->n = 0;
        sync_all(f, "paired");
        assert_converged(f);
        assert_int_equal(fake(f, 0)->n, 2);
        assert_int_equal(store_recovery_list(f->store, f->locks[0]->store_id, 0, &ra, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ra[0].step, "reprovision");
        assert_string_equal(ra[0].outcome, "success");
        store_recovery_array_free(ra, n);

        /* ReprovisionAfterReset=no: left drifted, nothing written */
        f->conf->codes.reprovision_after_reset = false;
        fake(f, 0)->n = 0;
        fake(f, 0)->n_add = 0;
        sync_all(f, "paired");
        assert_int_equal(fake(f, 0)->n_add, 0);
        assert_int_equal(store_assignment_get(f->store, f->locks[0]->store_id, id, &a), 0);
        assert_string_equal(a.state, "drifted");
        assert_non_null(strstr(a.reason, "factory reset"));
        store_assignment_done(&a);
}

static void test_repair_after_reset(void **state)
{
        struct fixture *f = *state;
        int64_t u = user(f, "Jo"), withdrawn;
        LockCode c = mk("789123", "Jo"), d = mk("891234", "Jo old");
        struct store_recovery_attempt *ra = NULL;
        size_t n = 0;
        Lock *old = f->locks[0];

        add_code(f, u, &c, 1);
        withdrawn = add_code(f, u, &d, 1);
        sync_all(f, "paired");
        assert_converged(f);

        /* factory reset, unpaired (the row goes), one code removed meanwhile, paired again */
        assert_int_equal(codes_lock_unpairing(f->store, old->store_id, old->address), 0);
        codes_service_remove_lock(f->svc, old);
        assert_int_equal(store_lock_remove(f->store, old->store_id), 0);
        lock_free(old);
        assert_int_equal(codes_code_remove(f->store, withdrawn), 0); /* no lock left: gone at once */
        f->locks[0] = new_lock(f, "front", "AA:BB:CC:DD:EE:01");
        assert_true(codes_service_busy(f->svc, f->locks[0])); /* read at once: first contact */
        sync_all(f, "paired");
        assert_converged(f);
        assert_int_equal(fake(f, 0)->n, 1);
        assert_non_null(on_lock(f, 0, "789123"));
        assert_int_equal(store_recovery_list(f->store, f->locks[0]->store_id, 0, &ra, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ra[0].step, "reprovision");
        store_recovery_array_free(ra, n);

        /* only once: a later first contact of another lock does not pick them up */
        n = 99;
        assert_int_equal(codes_lock_reprovision(f->store, f->locks[0]->store_id, "AA:BB:CC:DD:EE:01", &n),
                         0);
        assert_int_equal(n, 0);
}

static void test_settings_restore_and_repair(void **state)
{
        struct fixture *f = *state;
        Lock *old = f->locks[0];
        char *json;

        /* a lock never read has nothing to give back */
        assert_int_equal(fake(f, 0)->n_apply + fake(f, 1)->n_apply, 0);
        assert_null(codes_settings_load(f->store, old->address));

        /* the settings as the driver read them */
        assert_true(store_snapshot_add(f->store, old->store_id, "config", "changed", 4, 0,
                                       "{\"name\":\"Front door\",\"led_brightness\":1}") > 0);
        assert_true(store_snapshot_add(f->store, old->store_id, "advanced-config", "changed", 4, 0,
                                       "{\"auto_lock_timeout\":120}") > 0);
        assert_true(store_snapshot_add(f->store, old->store_id, "time-controls", "changed", 4, 0,
                                       "[{\"weekdays\":\"0x7C\",\"time\":\"07:00\",\"lock_action\":\"lock\"}"
                                       "]") > 0);
        json = codes_settings_load(f->store, old->address);
        assert_non_null(json);
        assert_non_null(strstr(json, "\"config\":{\"name\":\"Front door\""));
        assert_non_null(strstr(json, "\"advanced_config\":{\"auto_lock_timeout\":120}"));
        assert_non_null(strstr(json, "\"time_controls\":[{"));
        free(json);
        assert_null(codes_settings_load(f->store, f->locks[1]->address));

        /* restore: written to the lock asked for, the other one left alone */
        codes_service_restore_settings(f->svc, &old->store_id, 1, "restore");
        sync_all(f, "restore");
        assert_int_equal(fake(f, 0)->n_apply, 1);
        assert_int_equal(fake(f, 1)->n_apply, 0);
        assert_non_null(strstr(fake(f, 0)->settings, "Front door"));
        assert_non_null(strstr(lock_events, "config {\"settings\":\"restored\",\"why\":\"restore\"}"));

        /* the lock is away: pending (kept across restarts), written when it is back */
        {
                LockLink link = old->link;
                char *pending = NULL;

                link.reachable = false;
                (void) lock_set_link(old, &link);
                fake(f, 0)->unreachable = true;
                lock_events[0] = '\0';
                codes_service_restore_settings(f->svc, &old->store_id, 1, "restore");
                for (int n = 0; n < 100 && fake(f, 0)->in_flight > 0; n++)
                        assert_true(sd_event_run(event, 1000000) >= 0);
                assert_int_equal(fake(f, 0)->n_apply, 2);
                assert_non_null(strstr(lock_events, "config {\"settings\":\"pending\",\"why\":\"restore\""));
                assert_int_equal(store_meta_get(f->store, "codes.settings-pending.lock.1", &pending), 0);
                assert_string_equal(pending, "restore");
                free(pending);

                fake(f, 0)->unreachable = false;
                link.reachable = true;
                (void) lock_set_link(old, &link);
                assert_int_equal(fake(f, 0)->n_apply, 3);
                sync_all(f, "back-in-range");
                assert_non_null(strstr(lock_events,
                                       "config {\"settings\":\"restored\",\"why\":\"restore\"}"));
                assert_int_equal(store_meta_get(f->store, "codes.settings-pending.lock.1", &pending), 0);
                assert_string_equal(pending, "");
                free(pending);
        }

        /* factory reset, unpaired, paired again: the settings go back by themselves */
        assert_int_equal(codes_lock_unpairing(f->store, old->store_id, old->address), 0);
        codes_service_remove_lock(f->svc, old);
        assert_int_equal(store_lock_remove(f->store, old->store_id), 0);
        lock_free(old);
        lock_events[0] = '\0';
        f->locks[0] = new_lock(f, "front", "AA:BB:CC:DD:EE:01");
        assert_int_equal(fake(f, 0)->n_apply, 1);
        assert_non_null(strstr(fake(f, 0)->settings, "\"auto_lock_timeout\":120"));
        sync_all(f, "paired");
        assert_non_null(strstr(lock_events,
                               "pairing {\"status\":\"reprovisioned\",\"codes\":0,\"settings\":true}"));
        assert_non_null(strstr(lock_events, "config {\"settings\":\"restored\",\"why\":\"reprovision\"}"));

        /* ReprovisionAfterReset=no: nothing written */
        f->conf->codes.reprovision_after_reset = false;
        old = f->locks[0];
        codes_service_remove_lock(f->svc, old);
        assert_int_equal(store_lock_remove(f->store, old->store_id), 0);
        lock_free(old);
        f->locks[0] = new_lock(f, "front", "AA:BB:CC:DD:EE:01");
        sync_all(f, "paired");
        assert_int_equal(fake(f, 0)->n_apply, 0);
}

static void test_changed_during_sync(void **state)
{
        struct fixture *f = *state;
        int64_t u = user(f, "Kim"), id;
        LockCode c = mk("912345", "Kim");
        struct store_assignment a;

        id = add_code(f, u, &c, 1);
        assert_int_equal(codes_service_sync(f->svc, f->locks[0], "test"), 0);
        /* the run starts (timer) and the lock is asked for its list ... */
        while (fake(f, 0)->n_list == 0)
                assert_true(sd_event_run(event, 1000000) >= 0);
        /* ... when a user changes the code */
        c.enabled = false;
        assert_int_equal(codes_code_update(f->store, id, &c, NULL), 0);
        for (int n = 0; n < 100 && (codes_service_busy(f->svc, f->locks[0]) || fake(f, 0)->in_flight > 0);
             n++)
                assert_true(sd_event_run(event, 1000000) >= 0);
        /* the lock holds revision 1: never shown as synced with revision 2 */
        assert_int_equal(store_assignment_get(f->store, f->locks[0]->store_id, id, &a), 0);
        assert_string_equal(a.state, "pending");
        assert_string_equal(a.reason, "changed while the lock was being synced");
        store_assignment_done(&a);
        sync_all(f, "user-change");
        assert_converged(f);
        assert_false(held(f, 0, "912345")->enabled);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_three_users_two_locks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_out_of_range_then_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_drift_hub_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_drift_lock_wins, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_code_and_user, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lost_add_reply_and_refusal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rules_refuse_before_anything, setup, teardown),
                cmocka_unit_test_setup_teardown(test_first_contact_imports, setup, teardown),
                cmocka_unit_test_setup_teardown(test_back_in_range_triggers_sync, setup, teardown),
                cmocka_unit_test_setup_teardown(test_attribution, setup, teardown),
                cmocka_unit_test_setup_teardown(test_factory_reset_reprovisions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_repair_after_reset, setup, teardown),
                cmocka_unit_test_setup_teardown(test_changed_during_sync, setup, teardown),
                cmocka_unit_test_setup_teardown(test_settings_restore_and_repair, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
