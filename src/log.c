/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Process-wide logging sink; see include/lockhub/log.h for the contract.
 *
 * The journal is used only when stderr really is a journal stream ($JOURNAL_STREAM
 * names stderr's device:inode): sd_journal_send() silently succeeds without a
 * journald, so its return value cannot tell us whether anyone listens.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

#include "lockhub/log.h"

static int max_level = LOG_INFO;
static bool use_journal;
static const char *ident;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "err",
        [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
}

void log_open(enum log_target target)
{
        switch (target) {
        case LOG_TARGET_AUTO:
                use_journal = stderr_is_journal();
                break;
        case LOG_TARGET_STDERR:
                use_journal = false;
                break;
        case LOG_TARGET_JOURNAL:
                use_journal = true;
                break;
        }
}

void log_set_max_level(int level)
{
        if (level >= LOG_EMERG && level <= LOG_DEBUG)
                max_level = level;
}

int log_get_max_level(void)
{
        return max_level;
}

void log_set_ident(const char *i)
{
        ident = i;
}

int log_level_from_string(const char *s)
{
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (streq(s, level_names[i]))
                        return (int) i;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        if (streq(s, "error"))
                return LOG_ERR;
        if (streq(s, "warn"))
                return LOG_WARNING;
        return -EINVAL;
}

const char *log_level_to_string(int level)
{
        if (level < LOG_EMERG || level > LOG_DEBUG)
                return NULL;
        return level_names[level];
}

static int log_dispatch(int level, int error, const char *file, int line, const char *func,
                        const char *const *fields, const char *format, va_list ap)
{
        char buf[2048];
        int saved = errno;

        /* %m means the error we were given, not whatever errno happens to be. */
        errno = error < 0 ? -error : error;
        vsnprintf(buf, sizeof buf, format, ap);
        errno = saved;

        if (use_journal) {
                struct iovec iov[32];
                char prio[16], code_line[32], errno_field[32];
                char *message, *code_file, *code_func, *syslog_id = NULL;
                size_t n = 0;

                if (asprintf(&message, "MESSAGE=%s", buf) < 0)
                        return -abs(error);
                snprintf(prio, sizeof prio, "PRIORITY=%d", level);
                snprintf(code_line, sizeof code_line, "CODE_LINE=%d", line);
                if (asprintf(&code_file, "CODE_FILE=%s", file) < 0)
                        code_file = NULL;
                if (asprintf(&code_func, "CODE_FUNC=%s", func) < 0)
                        code_func = NULL;
                if (ident && asprintf(&syslog_id, "SYSLOG_IDENTIFIER=%s", ident) < 0)
                        syslog_id = NULL;

                iov[n++] = (struct iovec){ message, strlen(message) };
                iov[n++] = (struct iovec){ prio, strlen(prio) };
                iov[n++] = (struct iovec){ code_line, strlen(code_line) };
                if (code_file)
                        iov[n++] = (struct iovec){ code_file, strlen(code_file) };
                if (code_func)
                        iov[n++] = (struct iovec){ code_func, strlen(code_func) };
                if (syslog_id)
                        iov[n++] = (struct iovec){ syslog_id, strlen(syslog_id) };
                if (error != 0) {
                        snprintf(errno_field, sizeof errno_field, "ERRNO=%d", abs(error));
                        iov[n++] = (struct iovec){ errno_field, strlen(errno_field) };
                }
                for (size_t i = 0; fields && fields[i] && n < ELEMENTSOF(iov); i++)
                        iov[n++] = (struct iovec){ (void *) fields[i], strlen(fields[i]) };

                (void) sd_journal_sendv(iov, (int) n);
                free(message);
                free(code_file);
                free(code_func);
                free(syslog_id);
        } else
                fprintf(stderr, "<%d>%s\n", level, buf);

        return -abs(error);
}

int log_internal(int level, int error, const char *file, int line, const char *func, const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, file, line, func, NULL, format, ap);
        va_end(ap);
        return r;
}

int log_struct_internal(int level, int error, const char *file, int line, const char *func,
                        const char *const *fields, const char *format, ...)
{
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_dispatch(level, error, file, line, func, fields, format, ap);
        va_end(ap);
        return r;
}
