/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * D-Bus error names from bluetoothd (and from the bus) → -errno, in one place. The
 * table follows what bluetoothd 5.66's code sends (reference/bluez.md sections 2–4),
 * not its documentation: e.g. every failed LE connect is Failed
 * "le-connection-abort-by-local", never ConnectionAttemptFailed.
 */

#include <stdio.h>
#include <string.h>

#include "bluez-internal.h"

typedef struct ErrorMap {
        const char *name;
        int error;
        bool retryable;
} ErrorMap;

static const ErrorMap error_map[] = {
        { "org.bluez.Error.InProgress", -EINPROGRESS, true },
        { "org.bluez.Error.Busy", -EBUSY, true },
        { "org.bluez.Error.NotReady", -ENETDOWN, false },
        { "org.bluez.Error.NotPermitted", -EPERM, false },
        { "org.bluez.Error.NotAuthorized", -EACCES, false },
        { "org.bluez.Error.InvalidArguments", -EINVAL, false },
        { "org.bluez.Error.NotSupported", -EOPNOTSUPP, false },
        { "org.bluez.Error.NotAvailable", -EOPNOTSUPP, false },
        { "org.bluez.Error.NotConnected", -ENOTCONN, false },
        { "org.bluez.Error.AlreadyConnected", -EISCONN, false },
        { "org.bluez.Error.AlreadyExists", -EEXIST, false },
        { "org.bluez.Error.DoesNotExist", -ENOENT, false },
        { "org.bluez.Error.Blocked", -ERFKILL, false },
        { "org.bluez.Error.ConnectionAttemptFailed", -EHOSTUNREACH, true },
        { "org.bluez.Error.AuthenticationFailed", -EACCES, false },
        { "org.bluez.Error.AuthenticationRejected", -EACCES, false },
        { "org.bluez.Error.AuthenticationCanceled", -ECANCELED, false },
        { "org.bluez.Error.AuthenticationTimeout", -ETIMEDOUT, false },
        { "org.freedesktop.DBus.Error.UnknownObject", -ENODEV, false },
        { "org.freedesktop.DBus.Error.UnknownMethod", -EOPNOTSUPP, false },
        { "org.freedesktop.DBus.Error.UnknownInterface", -EOPNOTSUPP, false },
        { "org.freedesktop.DBus.Error.UnknownProperty", -EINVAL, false },
        { "org.freedesktop.DBus.Error.InvalidArgs", -EINVAL, false },
        { "org.freedesktop.DBus.Error.InvalidSignature", -EINVAL, false },
        { "org.freedesktop.DBus.Error.PropertyReadOnly", -EINVAL, false },
        { "org.freedesktop.DBus.Error.NoReply", -ETIMEDOUT, true },
        { "org.freedesktop.DBus.Error.Timeout", -ETIMEDOUT, true },
        { "org.freedesktop.DBus.Error.TimedOut", -ETIMEDOUT, true },
        { "org.freedesktop.DBus.Error.ServiceUnknown", -EHOSTDOWN, false },
        { "org.freedesktop.DBus.Error.NameHasNoOwner", -EHOSTDOWN, false },
        { "org.freedesktop.DBus.Error.Disconnected", -EHOSTDOWN, false },
        { "org.freedesktop.DBus.Error.NoMemory", -ENOMEM, false },
        { "org.freedesktop.DBus.Error.AccessDenied", -EACCES, false },
};

/* org.bluez.Error.Failed carries the real reason in its message. */
static int translate_failed(const char *message, bool *retryable)
{
        unsigned att;

        *retryable = false;
        if (!message)
                return -EIO;
        if (streq(message, "le-connection-abort-by-local")) {
                *retryable = true;
                return -ECONNABORTED;
        }
        if (streq(message, "br-connection-canceled")) {
                *retryable = true;
                return -ECANCELED;
        }
        if (streq(message, "Operation already in progress")) {
                *retryable = true;
                return -EALREADY;
        }
        if (streq(message, "Not connected"))
                return -ENOTCONN;
        if (streq(message, "No discovery started"))
                return -ESRCH;
        if (sscanf(message, "Operation failed with ATT error: 0x%x", &att) == 1) {
                if (att == 0x0e) { /* "Unlikely error": what a link loss during an op gives */
                        *retryable = true;
                        return -ECONNRESET;
                }
                return -EPROTO;
        }
        return -EIO;
}

int bluez_error_translate(const char *name, const char *message, bool *ret_retryable)
{
        bool retryable = false;
        int r = -EIO;

        if (name && (streq(name, "org.bluez.Error.Failed") || streq(name, "org.bluez.Failed")))
                r = translate_failed(message, &retryable);
        else if (name)
                for (size_t i = 0; i < ELEMENTSOF(error_map); i++)
                        if (streq(name, error_map[i].name)) {
                                r = error_map[i].error;
                                retryable = error_map[i].retryable;
                                break;
                        }

        if (ret_retryable)
                *ret_retryable = retryable;
        return r;
}

void bluez_error_from_bus(const sd_bus_error *e, BluezError *ret)
{
        *ret = (BluezError){
                .name = e ? e->name : NULL,
                .message = e ? e->message : NULL,
        };
        ret->error = bluez_error_translate(ret->name, ret->message, &ret->retryable);
}
