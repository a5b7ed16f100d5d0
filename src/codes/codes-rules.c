/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Code rules, the LockCode helpers, and the mapping of a LockCode to and from the Nuki
 * keypad code fields (see lockhub/codes.h).
 *
 * The rules are checked in a fixed order (length, digits, prefix, duplicate, name,
 * schedule) so a code that breaks several always names the same first one. The Nuki
 * rules come from Nuki's Web API and are assumed to hold for BLE too (fact sheet 5.11).
 */

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <time.h>

#include "lockhub/codes.h"
#include "lockhub/nuki-cmd.h"

#define USEC_PER_SEC UINT64_C(1000000)

static const char *const rule_names[_CODE_RULE_MAX] = {
        [CODE_RULE_OK] = "ok",
        [CODE_RULE_LENGTH] = "length",
        [CODE_RULE_DIGITS] = "digits",
        [CODE_RULE_PREFIX] = "prefix-12",
        [CODE_RULE_DUPLICATE] = "duplicate",
        [CODE_RULE_NAME] = "name",
        [CODE_RULE_DATE_RANGE] = "date-range",
        [CODE_RULE_WEEKDAYS] = "weekdays",
        [CODE_RULE_TIME_WINDOW] = "time-window",
};

static const char *const rule_messages[_CODE_RULE_MAX] = {
        [CODE_RULE_OK] = "The code is valid.",
        [CODE_RULE_LENGTH] = "A code must have exactly 6 digits.",
        [CODE_RULE_DIGITS] = "A code may only contain the digits 1 to 9 (no 0, no other characters).",
        [CODE_RULE_PREFIX] = "A code must not start with \"12\".",
        [CODE_RULE_DUPLICATE] = "Another code on the same lock already has these digits.",
        [CODE_RULE_NAME] = "A code name must be 1 to 20 bytes of UTF-8 without control characters.",
        [CODE_RULE_DATE_RANGE] = "The start of the date range must be before its end.",
        [CODE_RULE_WEEKDAYS] = "At least one weekday must be allowed (Monday to Sunday).",
        [CODE_RULE_TIME_WINDOW] = "A time window needs a start and an end between 00:00 and 23:59, the "
                                  "start before the end.",
};

const char *code_rule_to_string(CodeRule r)
{
        return r >= 0 && r < _CODE_RULE_MAX ? rule_names[r] : NULL;
}

const char *code_rule_message(CodeRule r)
{
        return r >= 0 && r < _CODE_RULE_MAX ? rule_messages[r] : "Unknown rule.";
}

CodeRule codes_check_digits(const char *digits)
{
        size_t n = digits ? strlen(digits) : 0;

        if (n != CODE_DIGITS_NUKI)
                return CODE_RULE_LENGTH;
        for (size_t i = 0; i < n; i++)
                if (digits[i] < '1' || digits[i] > '9')
                        return CODE_RULE_DIGITS;
        if (strneq(digits, "12", 2))
                return CODE_RULE_PREFIX;
        return CODE_RULE_OK;
}

/* Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF), no control characters. */
static bool name_is_valid(const char *s)
{
        const unsigned char *p = (const unsigned char *) s;
        size_t n = strlen(s);

        if (n == 0 || n > LOCK_CODE_NAME_MAX)
                return false;
        for (size_t i = 0; i < n;) {
                unsigned c = p[i], len, cp;

                if (c < 0x20 || c == 0x7f)
                        return false;
                if (c < 0x80) {
                        i++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        len = 2, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        len = 3, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        len = 4, cp = c & 0x07;
                else
                        return false;
                if (i + len > n)
                        return false;
                for (unsigned k = 1; k < len; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
                        return false;
                i += len;
        }
        return true;
}

CodeRule codes_check(const LockCode *c, const char *const *others, size_t n_others)
{
        CodeRule r;

        r = codes_check_digits(c->digits);
        if (r != CODE_RULE_OK)
                return r;
        for (size_t i = 0; i < n_others; i++)
                if (others[i] && streq(others[i], c->digits))
                        return CODE_RULE_DUPLICATE;
        if (!name_is_valid(c->name))
                return CODE_RULE_NAME;
        if (c->valid_from_usec > 0 && c->valid_until_usec > 0 &&
            c->valid_from_usec / USEC_PER_SEC >= c->valid_until_usec / USEC_PER_SEC)
                return CODE_RULE_DATE_RANGE;
        if (c->weekdays == 0 || c->weekdays > 0x7f)
                return CODE_RULE_WEEKDAYS;
        if ((c->time_from_min < 0) != (c->time_until_min < 0))
                return CODE_RULE_TIME_WINDOW;
        if (c->time_from_min >= 0 &&
            (c->time_from_min > 1439 || c->time_until_min > 1439 || c->time_from_min >= c->time_until_min))
                return CODE_RULE_TIME_WINDOW;
        return CODE_RULE_OK;
}

void lock_code_init(LockCode *c)
{
        *c = (LockCode){
                .id = -1,
                .enabled = true,
                .weekdays = 0x7f,
                .time_from_min = -1,
                .time_until_min = -1,
        };
}

static unsigned weekdays_norm(unsigned w)
{
        w &= 0x7f;
        return w == 0 ? 0x7f : w;
}

static bool schedule_equal(const LockCode *a, const LockCode *b)
{
        return a->valid_from_usec / USEC_PER_SEC == b->valid_from_usec / USEC_PER_SEC &&
               a->valid_until_usec / USEC_PER_SEC == b->valid_until_usec / USEC_PER_SEC &&
               weekdays_norm(a->weekdays) == weekdays_norm(b->weekdays) &&
               (a->time_from_min < 0 ? -1 : a->time_from_min) ==
                               (b->time_from_min < 0 ? -1 : b->time_from_min) &&
               (a->time_from_min < 0 ? -1 : a->time_until_min) ==
                               (b->time_from_min < 0 ? -1 : b->time_until_min);
}

static bool digits_equal(const LockCode *a, const LockCode *b)
{
        return a->digits[0] == '\0' || b->digits[0] == '\0' || streq(a->digits, b->digits);
}

bool lock_code_equal(const LockCode *a, const LockCode *b)
{
        return digits_equal(a, b) && streq(a->name, b->name) && a->enabled == b->enabled &&
               schedule_equal(a, b);
}

void lock_code_diff(const LockCode *a, const LockCode *b, char *ret, size_t size)
{
        const char *parts[4];
        size_t n = 0, len = 0;

        if (!digits_equal(a, b))
                parts[n++] = "digits";
        if (!streq(a->name, b->name))
                parts[n++] = "name";
        if (a->enabled != b->enabled)
                parts[n++] = "enabled";
        if (!schedule_equal(a, b))
                parts[n++] = "schedule";
        if (size == 0)
                return;
        ret[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                int k = snprintf(ret + len, size - len, "%s%s", i > 0 ? ", " : "", parts[i]);
                if (k < 0 || (size_t) k >= size - len)
                        break;
                len += (size_t) k;
        }
}

char *lock_code_to_json(const LockCode *c)
{
        json_object *o = json_object_new_object();
        char *s = NULL;

        if (!o)
                return NULL;
        json_object_object_add(o, "id", json_object_new_int(c->id));
        json_object_object_add(o, "name", json_object_new_string(c->name));
        json_object_object_add(o, "enabled", json_object_new_boolean(c->enabled));
        if (c->valid_from_usec > 0)
                json_object_object_add(o, "valid_from_usec",
                                       json_object_new_int64((int64_t) c->valid_from_usec));
        if (c->valid_until_usec > 0)
                json_object_object_add(o, "valid_until_usec",
                                       json_object_new_int64((int64_t) c->valid_until_usec));
        json_object_object_add(o, "weekdays", json_object_new_int((int) (c->weekdays & 0x7f)));
        if (c->time_from_min >= 0) {
                json_object_object_add(o, "time_from_min", json_object_new_int(c->time_from_min));
                json_object_object_add(o, "time_until_min", json_object_new_int(c->time_until_min));
        }
        if (c->created_usec > 0)
                json_object_object_add(o, "created_usec", json_object_new_int64((int64_t) c->created_usec));
        if (c->last_active_usec > 0)
                json_object_object_add(o, "last_active_usec",
                                       json_object_new_int64((int64_t) c->last_active_usec));
        json_object_object_add(o, "use_count", json_object_new_int((int) c->use_count));
        s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return s;
}

/* ---- Nuki ---- */

/* Ours: bit 0 Monday .. bit 6 Sunday. Nuki: bit 6 Monday .. bit 0 Sunday. */
static uint8_t weekdays_reverse(unsigned w)
{
        uint8_t r = 0;

        for (unsigned i = 0; i < 7; i++)
                if (w & (1u << i))
                        r |= (uint8_t) (1u << (6 - i));
        return r;
}

static void time_to_nuki(uint64_t usec, NukiTime *t)
{
        struct tm tm;
        time_t sec = (time_t) (usec / USEC_PER_SEC);

        *t = (NukiTime){};
        if (usec == 0 || !gmtime_r(&sec, &tm) || tm.tm_year + 1900 > 65535)
                return;
        *t = (NukiTime){
                .year = (uint16_t) (tm.tm_year + 1900),
                .month = (uint8_t) (tm.tm_mon + 1),
                .day = (uint8_t) tm.tm_mday,
                .hour = (uint8_t) tm.tm_hour,
                .minute = (uint8_t) tm.tm_min,
                .second = (uint8_t) tm.tm_sec,
        };
}

/* 0 for an all-zero (unset) or impossible time. */
static uint64_t time_from_nuki(const NukiTime *t)
{
        struct tm tm = {};
        time_t sec;

        if (t->year < 1970 || t->month < 1 || t->month > 12 || t->day < 1 || t->day > 31 || t->hour > 23 ||
            t->minute > 59 || t->second > 60)
                return 0;
        tm.tm_year = t->year - 1900;
        tm.tm_mon = t->month - 1;
        tm.tm_mday = t->day;
        tm.tm_hour = t->hour;
        tm.tm_min = t->minute;
        tm.tm_sec = t->second;
        sec = timegm(&tm);
        return sec > 0 ? (uint64_t) sec * USEC_PER_SEC : 0;
}

static bool code_is_limited(const LockCode *c)
{
        return c->valid_from_usec > 0 || c->valid_until_usec > 0 || weekdays_norm(c->weekdays) != 0x7f ||
               c->time_from_min >= 0;
}

static int digits_to_u32(const char *digits, uint32_t *ret)
{
        uint32_t v = 0;
        size_t n = strlen(digits);

        if (n == 0 || n > 9)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (digits[i] < '0' || digits[i] > '9')
                        return -EINVAL;
                v = v * 10 + (uint32_t) (digits[i] - '0');
        }
        *ret = v;
        return 0;
}

#define FILL_WINDOW(f, c, limited)                                                                        \
        do {                                                                                              \
                (f).time_limited = (limited);                                                             \
                if (limited) {                                                                            \
                        time_to_nuki((c)->valid_from_usec, &(f).allowed_from);                            \
                        time_to_nuki((c)->valid_until_usec, &(f).allowed_until);                          \
                        (f).weekdays = weekdays_reverse(weekdays_norm((c)->weekdays));                    \
                        if ((c)->time_from_min >= 0) {                                                    \
                                (f).from_time = (NukiTimeOfDay){ (uint8_t) ((c)->time_from_min / 60),     \
                                                                 (uint8_t) ((c)->time_from_min % 60) };   \
                                (f).until_time = (NukiTimeOfDay){ (uint8_t) ((c)->time_until_min / 60),   \
                                                                  (uint8_t) ((c)->time_until_min % 60) }; \
                        }                                                                                 \
                }                                                                                         \
        } while (0)

int codes_to_nuki(const LockCode *c, NukiMsg *m)
{
        bool limited = code_is_limited(c);
        uint32_t code;
        int r;

        r = digits_to_u32(c->digits, &code);
        if (r < 0)
                return r;
        if (c->time_from_min > 1439 || c->time_until_min > 1439 ||
            (c->time_from_min < 0) != (c->time_until_min < 0))
                return -EINVAL;

        switch (m->command) {
        case NUKI_CMD_ADD_KEYPAD_CODE:
                m->add_keypad_code.code = code;
                snprintf(m->add_keypad_code.name, sizeof m->add_keypad_code.name, "%s", c->name);
                FILL_WINDOW(m->add_keypad_code, c, limited);
                return 0;
        case NUKI_CMD_UPDATE_KEYPAD_CODE:
                if (c->id < 0 || c->id > UINT16_MAX)
                        return -EINVAL;
                m->update_keypad_code.code_id = (uint16_t) c->id;
                m->update_keypad_code.code = code;
                snprintf(m->update_keypad_code.name, sizeof m->update_keypad_code.name, "%s", c->name);
                m->update_keypad_code.enabled = c->enabled;
                FILL_WINDOW(m->update_keypad_code, c, limited);
                return 0;
        default:
                return -EINVAL;
        }
}

int codes_from_nuki(const NukiMsg *m, LockCode *ret)
{
        LockCode c;

        if (m->command != NUKI_CMD_KEYPAD_CODE)
                return -EINVAL;
        lock_code_init(&c);
        c.id = m->keypad_code.code_id;
        if (m->keypad_code.code > 0)
                snprintf(c.digits, sizeof c.digits, "%" PRIu32, m->keypad_code.code);
        snprintf(c.name, sizeof c.name, "%s", m->keypad_code.name);
        c.enabled = m->keypad_code.enabled;
        c.created_usec = time_from_nuki(&m->keypad_code.created);
        c.last_active_usec = time_from_nuki(&m->keypad_code.last_active);
        c.use_count = m->keypad_code.lock_count;
        /* The window fields are an optional group: absent when not time limited. */
        if (m->keypad_code.time_limited && m->n_optional > 0) {
                const NukiTimeOfDay *f = &m->keypad_code.from_time, *u = &m->keypad_code.until_time;

                c.valid_from_usec = time_from_nuki(&m->keypad_code.allowed_from);
                c.valid_until_usec = time_from_nuki(&m->keypad_code.allowed_until);
                c.weekdays = weekdays_norm(weekdays_reverse(m->keypad_code.weekdays));
                if ((f->hour | f->minute | u->hour | u->minute) != 0 && f->hour < 24 && u->hour < 24 &&
                    f->minute < 60 && u->minute < 60) {
                        c.time_from_min = f->hour * 60 + f->minute;
                        c.time_until_min = u->hour * 60 + u->minute;
                }
        }
        *ret = c;
        return 0;
}

/* ---- states and backoff ---- */

static const char *const sync_state_names[_CODE_SYNC_STATE_MAX] = {
        [CODE_SYNC_PENDING] = "pending",
        [CODE_SYNC_SYNCED] = "synced",
        [CODE_SYNC_FAILED] = "failed",
        [CODE_SYNC_DRIFTED] = "drifted",
};

const char *code_sync_state_to_string(CodeSyncState s)
{
        return s >= 0 && s < _CODE_SYNC_STATE_MAX ? sync_state_names[s] : NULL;
}

CodeSyncState code_sync_state_from_string(const char *s)
{
        for (int i = 0; s && i < _CODE_SYNC_STATE_MAX; i++)
                if (streq(s, sync_state_names[i]))
                        return (CodeSyncState) i;
        return _CODE_SYNC_STATE_MAX;
}

uint64_t codes_retry_delay_usec(unsigned attempts, unsigned max_sec)
{
        uint64_t sec = 5;

        if (max_sec == 0)
                max_sec = 1;
        for (unsigned i = 1; i < attempts && sec < max_sec; i++)
                sec *= 2;
        return MIN(sec, (uint64_t) max_sec) * USEC_PER_SEC;
}
