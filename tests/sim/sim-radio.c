/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The radio between a lock and the adapters: advertising (one timer per lock, its
 * interval stretched by the Config "advertising mode" and jittered by the 0-10 ms
 * advDelay every BLE advertiser adds), RSSI with Gaussian noise per adapter, range,
 * ATT round-trip latency and packet loss. A lock that is connected does not advertise
 * (the firmware serves one central at a time).
 */

#include <math.h>
#include <stdlib.h>

#include "lockhub/macro.h"
#include "sim-lock.h"
#include "sim.h"

static uint64_t adv_period(SimLock *l)
{
        static const unsigned factor[] = { 1, 1, 4, 8 }; /* automatic, normal, slow, slowest */
        uint64_t p = l->adv_interval * factor[l->cfg.advertising_mode & 3];
        return p + (uint64_t) (drand48() * 10000.0);
}

static int adv_handler(sd_event_source *s, uint64_t usec, void *userdata)
{
        SimLock *l = userdata;

        if (l->in_range && !l->link) {
                SimAdvert ad;
                sim_lock_build_advert(l, &ad);
                l->n_adverts++;
                sim_deliver_advert(l->sim, l, &ad);
        }
        /* however fast time runs, no more than one advert per lock every 2 ms of real time */
        return sim_timer(l->sim, &l->adv_timer, MAX(adv_period(l), (uint64_t) (2000 * l->sim->scale)),
                         adv_handler, l);
}

int sim_radio_start(SimLock *l)
{
        /* the first advert comes soon, spread so locks do not all fire together */
        return sim_timer(l->sim, &l->adv_timer, (uint64_t) (drand48() * (double) l->adv_interval) + 1,
                         adv_handler, l);
}

void sim_radio_stop(SimLock *l)
{
        l->adv_timer = sd_event_source_disable_unref(l->adv_timer);
}

int16_t sim_radio_rssi(SimLock *l, SimAdapter *a)
{
        double v = l->rssi + a->rssi_offset + sim_gauss() * l->rssi_noise;
        return (int16_t) fmax(-127.0, fmin(20.0, lround(v)));
}

bool sim_radio_reachable(SimLock *l)
{
        return l->in_range && l->rssi > -100;
}

bool sim_radio_lost(SimLock *l)
{
        return l->loss > 0.0 && drand48() < l->loss;
}

uint64_t sim_radio_latency(SimLock *l)
{
        /* a little jitter: the next connection event is not always the first one */
        return l->rtt + (uint64_t) (drand48() * (double) l->rtt * 0.25);
}
