/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared between the files of src/codes/ only. */

#include "lockhub/codes.h"

/* Drops a withdrawn (or adopted-removal) assignment; with the last assignment of a code
 * being withdrawn, the code goes too, and with a withdrawn user's last code, the user. */
int codes_forget_assignment(Store *s, int64_t lock_id, int64_t credential_id);

/* codes_code_add() for a caller that holds a transaction (store_begin()) already. */
int codes_code_add_in_transaction(Store *s, int64_t user_id, const LockCode *c, const int64_t *lock_ids,
                                  size_t n_locks, CodeRule *ret_rule, int64_t *ret_id);
