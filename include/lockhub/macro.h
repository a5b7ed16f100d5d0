/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Small helpers used everywhere: scope-bound cleanup (the systemd idiom, written
 * here because libsystemd only exports its own sd_*_unrefp cleanups), ownership
 * transfer and array sizes.
 *
 *   _cleanup_free_ char *s = strdup(x);   // freed when s leaves scope
 *   return TAKE_PTR(s);                    // hand it over; nothing is freed
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f)         __attribute__((cleanup(f)))
#define _unused_             __attribute__((unused))
#define _printf_(a, b)       __attribute__((format(printf, a, b)))
#define _sentinel_           __attribute__((sentinel))
#define _likely_(x)          (__builtin_expect(!!(x), 1))
#define _unlikely_(x)        (__builtin_expect(!!(x), 0))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define streq(a, b)     (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)

static inline const char *strna(const char *s)
{
        return s ? s : "n/a";
}

static inline const char *strempty(const char *s)
{
        return s ? s : "";
}

/* Take ownership of a pointer: returns it and clears the variable. */
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;              \
                _p_;                     \
        })

#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -EBADF;   \
                _fd_;            \
        })

/* DEFINE_TRIVIAL_CLEANUP_FUNC(Foo *, foo_free) defines foo_freep() for _cleanup_(foo_freep). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p)     \
        {                                       \
                if (*p)                         \
                        func(*p);               \
        }

static inline void freep(void *p)
{
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline int safe_close(int fd)
{
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}

static inline void closep(int *fd)
{
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Returns -errno of the last libc failure, never 0 (for callers that must fail). */
static inline int negative_errno(void)
{
        return errno > 0 ? -errno : -EIO;
}

#define RET_NERRNO(expr)                          \
        ({                                        \
                int _r_ = (expr);                 \
                _r_ < 0 ? negative_errno() : _r_; \
        })
