/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Protocol and firmware-model tests: a client built from src/nuki/ (NukiPairClient,
 * NukiSession) talks to the simulated locks through the fake BlueZ, over D-Bus, the
 * way lockhubd will.
 */

#include "sim-probe.h"

void sim_proto_set_scale(double scale);
void sim_proto_test_pairing(Probe *p);
void sim_proto_test_protocol(Probe *p);
void sim_proto_test_model(Probe *p);
void sim_proto_test_advert_bit(Probe *p);
void sim_proto_test_ultra(Probe *p);
