/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>

#include "sim.h"

int sim_test_main(int argc, char **argv)
{
        fprintf(stderr, "no tests yet\n");
        return 1;
}
