/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Logging. One process-wide sink chosen at start-up by log_open():
 *  - the journal (sd_journal_send, structured fields) when stderr is connected to it,
 *    detected by comparing $JOURNAL_STREAM with fstat(stderr), never by the variable alone;
 *  - otherwise stderr with "<N>" syslog priority prefixes (journald parses those too).
 *
 * log_*_errno(r, ...) return r (negative), so the idiom is
 *      r = foo();
 *      if (r < 0)
 *              return log_error_errno(r, "Failed to foo: %m");
 * where %m prints strerror(-r). A function either logs an error or returns it, not both.
 *
 * log_struct() adds journal fields ("LOCK=front", "MESSAGE_ID=..."), NULL-terminated;
 * on stderr only the message is printed. Secrets are never passed to any of these.
 */

#include <stdbool.h>
#include <syslog.h>

#include "lockhub/macro.h"

enum log_target {
        LOG_TARGET_AUTO, /* journal if stderr is the journal, else stderr */
        LOG_TARGET_STDERR,
        LOG_TARGET_JOURNAL,
};

void log_open(enum log_target target);
void log_set_max_level(int level);
int log_get_max_level(void);
/* "emerg".."debug" or 0..7; returns the level or -EINVAL. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);
/* Name shown as SYSLOG_IDENTIFIER and on stderr when not prefixed (default: program name). */
void log_set_ident(const char *ident);

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
                _printf_(6, 7);
/* Extra fields after the format's arguments: "KEY=value" strings, then NULL. */
int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *const *fields, const char *format, ...) _printf_(7, 8);

#define log_full_errno(level, error, ...)                                                           \
        ({                                                                                          \
                int _l_ = (level), _e_ = (error);                                                   \
                (log_get_max_level() >= _l_)                                                        \
                                ? log_internal(_l_, _e_, __FILE__, __LINE__, __func__, __VA_ARGS__) \
                                : -abs(_e_);                                                        \
        })
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, (e), __VA_ARGS__)
#define log_notice_errno(e, ...)  log_full_errno(LOG_NOTICE, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, (e), __VA_ARGS__)

#define log_oom() log_error_errno(-ENOMEM, "Out of memory.")

/* log_struct(LOG_WARNING, 0, "Battery of %s is low", name, "LOCK=front", "MESSAGE_ID=...")
 * is not expressible with one variadic list, so fields come as a compound literal:
 *   log_struct(LOG_WARNING, 0, LOG_FIELDS("LOCK=front", "MESSAGE_ID=..."), "Battery low: %u%%", pct);
 */
#define LOG_FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define log_struct(level, error, fields, ...)                                                              \
        ({                                                                                                 \
                int _l_ = (level), _e_ = (error);                                                          \
                (log_get_max_level() >= _l_) ? log_struct_internal(_l_, _e_, __FILE__, __LINE__, __func__, \
                                                                   (fields), __VA_ARGS__)                  \
                                             : -abs(_e_);                                                  \
        })
