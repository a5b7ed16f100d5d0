/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Nuki messages → JSON, driven by the command table of nuki-cmd.c, plus whole-frame
 * decoding for `lockhubctl decode`. Nothing here trusts the frame: layouts are checked by
 * the decoders first, strings are length-bounded, floats that are not finite become null.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lockhub/macro.h"
#include "lockhub/nuki-json.h"

static json_object *hex_string(const uint8_t *p, size_t n)
{
        static const char digits[] = "0123456789abcdef";
        char buf[2 * NUKI_FRAME_MAX + 1];

        n = MIN(n, (size_t) NUKI_FRAME_MAX);
        for (size_t i = 0; i < n; i++) {
                buf[2 * i] = digits[p[i] >> 4];
                buf[2 * i + 1] = digits[p[i] & 15];
        }
        buf[2 * n] = 0;
        return json_object_new_string(buf);
}

static json_object *hex_value(unsigned v, unsigned width)
{
        char buf[16];

        snprintf(buf, sizeof(buf), width == 4 ? "0x%04X" : width == 8 ? "0x%08X" : "0x%02X", v);
        return json_object_new_string(buf);
}

static json_object *enum_value(NukiEnumKind k, unsigned v)
{
        const char *s = nuki_enum_to_string(k, v);
        return s ? json_object_new_string(s) : hex_value(v, 2);
}

static json_object *time_string(const NukiTime *t)
{
        char buf[64];

        snprintf(buf, sizeof(buf), "%04u-%02u-%02uT%02u:%02u:%02u", (unsigned) t->year, (unsigned) t->month,
                 (unsigned) t->day, (unsigned) t->hour, (unsigned) t->minute, (unsigned) t->second);
        return json_object_new_string(buf);
}

static void add(json_object *o, const char *k, json_object *v)
{
        json_object_object_add(o, k, v);
}

/* Log entry data by type (fact sheet 5.10); padding after the data is ignored ([PY]). */
static json_object *log_data(uint8_t type, const NukiBlob *b)
{
        json_object *o;
        const uint8_t *d = b->data;
        size_t n = MIN(b->len, (size_t) NUKI_BLOB_MAX);

        o = json_object_new_object();
        if (!o)
                return NULL;
        switch (type) {
        case 0x01: /* logging enabled */
        case 0x07: /* door sensor logging enabled */
                if (n < 1)
                        break;
                add(o, "enabled", json_object_new_boolean(d[0] != 0));
                return o;
        case 0x02: /* lock action */
        case 0x03: /* calibration */
        case 0x04: /* initialization run */
                if (n < 4)
                        break;
                add(o, "action", enum_value(NUKI_ENUM_LOCK_ACTION, d[0]));
                add(o, "trigger", enum_value(NUKI_ENUM_TRIGGER, d[1]));
                add(o, "flags", hex_value(d[2], 2));
                add(o, "completion_status", enum_value(NUKI_ENUM_COMPLETION_STATUS, d[3]));
                return o;
        case 0x05: /* keypad action */
                if (n < 5)
                        break;
                add(o, "action", enum_value(NUKI_ENUM_KEYPAD_ACTION, d[0]));
                add(o, "source", enum_value(NUKI_ENUM_KEYPAD_SOURCE, d[1]));
                add(o, "completion_status", enum_value(NUKI_ENUM_COMPLETION_STATUS, d[2]));
                add(o, "code_id", json_object_new_int(nuki_get_u16(d + 3)));
                return o;
        case 0x06: /* door sensor */
                if (n < 1)
                        break;
                add(o, "door_sensor", enum_value(NUKI_ENUM_LOG_DOOR_SENSOR, d[0]));
                return o;
        default:
                break;
        }
        add(o, "raw", hex_string(d, n));
        return o;
}

static json_object *field_value(const NukiMsg *m, const NukiField *f)
{
        const uint8_t *v = (const uint8_t *) m + f->offset;

        switch (f->type) {
        case NUKI_FIELD_U8: {
                uint8_t x = *v;
                if (f->format == NUKI_FORMAT_ENUM)
                        return enum_value(f->enum_kind, x);
                if (f->format == NUKI_FORMAT_HEX)
                        return hex_value(x, 2);
                return json_object_new_int(x);
        }
        case NUKI_FIELD_S8: {
                int8_t x;
                memcpy(&x, v, 1);
                return json_object_new_int(x);
        }
        case NUKI_FIELD_BOOL: {
                bool b;
                memcpy(&b, v, sizeof(b));
                return json_object_new_boolean(b);
        }
        case NUKI_FIELD_U16: {
                uint16_t x;
                memcpy(&x, v, 2);
                if (f->format == NUKI_FORMAT_COMMAND || f->format == NUKI_FORMAT_HEX)
                        return hex_value(x, 4);
                return json_object_new_int(x);
        }
        case NUKI_FIELD_S16: {
                int16_t x;
                memcpy(&x, v, 2);
                return json_object_new_int(x);
        }
        case NUKI_FIELD_U32:
        case NUKI_FIELD_PIN: {
                uint32_t x;
                memcpy(&x, v, 4);
                return json_object_new_int64(x);
        }
        case NUKI_FIELD_F32: {
                float x;
                memcpy(&x, v, 4);
                return isfinite(x) ? json_object_new_double(x) : NULL;
        }
        case NUKI_FIELD_TIME: {
                NukiTime t;
                memcpy(&t, v, sizeof(t));
                return time_string(&t);
        }
        case NUKI_FIELD_TIME_OF_DAY: {
                NukiTimeOfDay t;
                char buf[16];
                memcpy(&t, v, sizeof(t));
                snprintf(buf, sizeof(buf), "%02u:%02u", (unsigned) t.hour, (unsigned) t.minute);
                return json_object_new_string(buf);
        }
        case NUKI_FIELD_BYTES:
                if (f->format == NUKI_FORMAT_VERSION) {
                        char buf[32];
                        size_t l = 0;
                        for (size_t i = 0; i < f->size && i < 4; i++)
                                l += (size_t) snprintf(buf + l, sizeof(buf) - l, i ? ".%u" : "%u",
                                                       (unsigned) v[i]);
                        return json_object_new_string(buf);
                }
                return hex_string(v, f->size);
        case NUKI_FIELD_NAME:
                return json_object_new_string_len((const char *) v,
                                                  (int) strnlen((const char *) v, f->size));
        case NUKI_FIELD_BLOB: {
                const NukiBlob *b = (const NukiBlob *) v;
                if (m->command == NUKI_CMD_LOG_ENTRY)
                        return log_data(m->log_entry.type, b);
                return hex_string(b->data, MIN(b->len, (size_t) NUKI_BLOB_MAX));
        }
        }
        return NULL;
}

static bool is_secret(const NukiField *f)
{
        return f->type == NUKI_FIELD_PIN || streq(f->name, "security_pin") || streq(f->name, "shared_key");
}

json_object *nuki_json_fields_full(const NukiMsg *m, bool show_secrets)
{
        const NukiCommand *c;
        json_object *o;

        o = json_object_new_object();
        if (!o)
                return NULL;
        c = nuki_command_find(m->command, m->variant);
        if (!c)
                return o;
        for (size_t i = 0; i < c->n_fields; i++) {
                const NukiField *f = &c->fields[i];

                if (!nuki_msg_field_present(m, c, i))
                        continue;
                if (f->format == NUKI_FORMAT_BATTERY) {
                        uint8_t b = *((const uint8_t *) m + f->offset);
                        add(o, "battery_critical", json_object_new_boolean(nuki_battery_critical(b)));
                        add(o, "battery_charging", json_object_new_boolean(nuki_battery_charging(b)));
                        add(o, "battery_percent", json_object_new_int((int) nuki_battery_percent(b)));
                        continue;
                }
                /* an empty Request Data extra is noise */
                if (f->type == NUKI_FIELD_BLOB && m->command == NUKI_CMD_REQUEST_DATA &&
                    m->request_data.extra.len == 0)
                        continue;
                add(o,
                    streq(f->name, "command") && m->command == NUKI_CMD_REQUEST_DATA ? "requested" : f->name,
                    !show_secrets && is_secret(f) ? json_object_new_string("redacted") : field_value(m, f));
        }
        return o;
}

json_object *nuki_json_fields(const NukiMsg *m)
{
        return nuki_json_fields_full(m, false);
}

static bool plain_crc_ok(const uint8_t *buf, size_t n)
{
        return n >= NUKI_PLAIN_MIN && nuki_crc16(buf, n - 2) == nuki_get_u16(buf + n - 2);
}

static bool looks_encrypted(const uint8_t *buf, size_t n)
{
        return n >= NUKI_ADATA_SIZE && (size_t) nuki_get_u16(buf + 28) + NUKI_ADATA_SIZE == n &&
               n >= NUKI_ENCRYPTED_MIN;
}

bool nuki_json_frame_complete(const uint8_t *buf, size_t n)
{
        size_t e;

        if (plain_crc_ok(buf, n))
                return true;
        if (n >= NUKI_ADATA_SIZE && n >= (size_t) nuki_get_u16(buf + 28) + NUKI_ADATA_SIZE)
                return true;
        if (n >= 2) {
                e = nuki_plain_expected_size(nuki_get_u16(buf));
                if (e > 0 && n >= e)
                        return true;
        }
        return n >= NUKI_FRAME_MAX;
}

static void add_command(json_object *o, uint16_t cmd)
{
        const char *name = nuki_command_name(cmd);

        add(o, "command", hex_value(cmd, 4));
        add(o, "name", name ? json_object_new_string(name) : NULL);
}

int nuki_json_decode_frame(const uint8_t *buf, size_t n, const NukiJsonOptions *o, json_object **ret)
{
        json_object *obj;
        NukiFrame f = { 0 };
        NukiMsg m;
        bool encrypted;
        int r;

        obj = json_object_new_object();
        if (!obj) {
                *ret = NULL;
                return -ENOMEM;
        }
        *ret = obj;

        /* With a key, a successful decryption settles it (a random tail can pass as a plain
         * CRC once in 65536); without one, a matching CRC means plain. */
        encrypted = false;
        r = -EBADMSG;
        if (looks_encrypted(buf, n) && o && o->shared_key) {
                r = nuki_frame_decode_encrypted(o->shared_key, o->expected_auth_id, buf, n, &f);
                encrypted = r >= 0 || !plain_crc_ok(buf, n);
        } else if (looks_encrypted(buf, n) && !plain_crc_ok(buf, n))
                encrypted = true;
        if (encrypted) {
                uint32_t aid = nuki_get_u32(buf + 24);

                if (!o || !o->shared_key) {
                        add(obj, "error", json_object_new_string(nuki_frame_strerror(-ENOKEY)));
                        add(obj, "encrypted", json_object_new_boolean(true));
                        add(obj, "auth_id", json_object_new_int64(aid));
                        return -ENOKEY;
                }
                if (r < 0) {
                        add(obj, "error", json_object_new_string(nuki_frame_strerror(r)));
                        add(obj, "encrypted", json_object_new_boolean(true));
                        add(obj, "auth_id", json_object_new_int64(aid));
                        if (r == -EBADMSG)
                                add(obj, "crc_ok", json_object_new_boolean(false));
                        return r;
                }
        } else {
                r = nuki_frame_decode_plain(buf, n, &f);
                if (r < 0) {
                        add(obj, "error", json_object_new_string(nuki_frame_strerror(r)));
                        if (n >= 2)
                                add_command(obj, nuki_get_u16(buf));
                        add(obj, "encrypted", json_object_new_boolean(false));
                        if (r == -EBADMSG)
                                add(obj, "crc_ok", json_object_new_boolean(false));
                        add(obj, "hex", hex_string(buf, n));
                        return r;
                }
        }

        add_command(obj, f.command);
        add(obj, "encrypted", json_object_new_boolean(f.encrypted));
        if (f.encrypted)
                add(obj, "auth_id", json_object_new_int64(f.auth_id));
        add(obj, "crc_ok", json_object_new_boolean(true));

        r = nuki_msg_decode_frame(&f, o ? o->pin_size : 0, &m);
        if (r == -ENOENT) {
                json_object *fields = json_object_new_object();
                add(fields, "payload", hex_string(f.payload, f.payload_len));
                add(obj, "fields", fields);
                r = 0;
        } else if (r < 0) {
                char msg[96];
                snprintf(msg, sizeof(msg), "payload of %zu bytes does not match the layout of this command",
                         f.payload_len);
                add(obj, "error", json_object_new_string(msg));
                add(obj, "payload", hex_string(f.payload, f.payload_len));
        } else
                add(obj, "fields", nuki_json_fields_full(&m, o && o->show_secrets));
        nuki_msg_wipe(&m);
        nuki_frame_wipe(&f);
        return r;
}
