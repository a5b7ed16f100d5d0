/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The known-firmware file (format in lockhub/health.h, shipped as
 * conf/known-firmware.json): latest known-good version per lock model, an optional
 * minimum below which a version is called outdated, and known-bad versions with the
 * reason. Users and distributions update it without a new lockhub; a malformed file
 * is refused as a whole with a message naming what is wrong.
 */

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lockhub/health.h"

#define KNOWN_FIRMWARE_SIZE_MAX (1024 * 1024)

typedef struct KnownBad {
        char *version;
        char *reason;
} KnownBad;

typedef struct KnownModel {
        char *model;
        char *latest;
        char *minimum;
        KnownBad *bad;
        size_t n_bad;
} KnownModel;

struct HealthKnownFirmware {
        KnownModel *models;
        size_t n_models;
};

static bool part_is_number(const char *s, size_t n)
{
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char) s[i]))
                        return false;
        return true;
}

/* Part by part: numbers numerically, anything else as strings; a missing part is "0". */
int health_version_compare(const char *a, const char *b)
{
        while (*a || *b) {
                size_t la = strcspn(a, "."), lb = strcspn(b, ".");
                const char *pa = la ? a : "0", *pb = lb ? b : "0";
                size_t na = la ? la : 1, nb = lb ? lb : 1;
                int c;

                if (part_is_number(pa, na) && part_is_number(pb, nb)) {
                        unsigned long x = strtoul(pa, NULL, 10), y = strtoul(pb, NULL, 10);
                        c = (x > y) - (x < y);
                } else {
                        c = strncmp(pa, pb, MIN(na, nb));
                        if (c == 0)
                                c = (na > nb) - (na < nb);
                        c = (c > 0) - (c < 0);
                }
                if (c != 0)
                        return c;
                a += la + (a[la] == '.');
                b += lb + (b[lb] == '.');
        }
        return 0;
}

HealthKnownFirmware *health_known_firmware_free(HealthKnownFirmware *k)
{
        if (!k)
                return NULL;
        for (size_t i = 0; i < k->n_models; i++) {
                KnownModel *m = &k->models[i];
                free(m->model);
                free(m->latest);
                free(m->minimum);
                for (size_t j = 0; j < m->n_bad; j++) {
                        free(m->bad[j].version);
                        free(m->bad[j].reason);
                }
                free(m->bad);
        }
        free(k->models);
        free(k);
        return NULL;
}

static bool version_is_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 32 || !isdigit((unsigned char) s[0]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char) s[i]) && s[i] != '.' && s[i] != '-')
                        return false;
        return true;
}

static int get_string(json_object *o, const char *key, bool required, bool version, char **ret, char *err,
                      size_t err_size, const char *where)
{
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                if (!required)
                        return 0;
                snprintf(err, err_size, "%s: \"%s\" is missing", where, key);
                return -EINVAL;
        }
        if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
            (version && !version_is_valid(json_object_get_string(v)))) {
                snprintf(err, err_size, "%s: \"%s\" must be a %s", where, key,
                         version ? "version (digits and dots, e.g. \"3.6.9\")" : "non-empty string");
                return -EINVAL;
        }
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

int health_known_firmware_parse(const char *text, size_t len, HealthKnownFirmware **ret, char **ret_error)
{
        _cleanup_(health_known_firmware_freep) HealthKnownFirmware *k = NULL;
        json_tokener *tok;
        json_object *root, *models, *v;
        char err[256] = "";
        size_t n;
        int r = -EINVAL;

        if (ret_error)
                *ret_error = NULL;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, text, (int) MIN(len, (size_t) KNOWN_FIRMWARE_SIZE_MAX));
        if (!root || json_tokener_get_error(tok) != json_tokener_success) {
                snprintf(err, sizeof err, "not valid JSON: %s",
                         json_tokener_error_desc(json_tokener_get_error(tok)));
                json_tokener_free(tok);
                json_object_put(root);
                goto fail;
        }
        json_tokener_free(tok);

        if (!json_object_is_type(root, json_type_object)) {
                snprintf(err, sizeof err, "the top level must be an object");
                goto fail_root;
        }
        if (!json_object_object_get_ex(root, "format", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int(v) != 1) {
                snprintf(err, sizeof err, "\"format\" must be 1");
                goto fail_root;
        }
        if (!json_object_object_get_ex(root, "models", &models) ||
            !json_object_is_type(models, json_type_array)) {
                snprintf(err, sizeof err, "\"models\" must be an array");
                goto fail_root;
        }
        k = calloc(1, sizeof *k);
        n = json_object_array_length(models);
        if (!k || (n > 0 && !(k->models = calloc(n, sizeof *k->models)))) {
                r = -ENOMEM;
                goto fail_root;
        }
        for (size_t i = 0; i < n; i++) {
                json_object *m = json_object_array_get_idx(models, i), *bad;
                KnownModel *km = &k->models[i];
                char where[64];

                k->n_models = i + 1;
                snprintf(where, sizeof where, "models[%zu]", i);
                if (!json_object_is_type(m, json_type_object)) {
                        snprintf(err, sizeof err, "%s must be an object", where);
                        goto fail_root;
                }
                if ((r = get_string(m, "model", true, false, &km->model, err, sizeof err, where)) < 0 ||
                    (r = get_string(m, "latest", false, true, &km->latest, err, sizeof err, where)) < 0 ||
                    (r = get_string(m, "minimum", false, true, &km->minimum, err, sizeof err, where)) < 0)
                        goto fail_root;
                r = -EINVAL;
                for (size_t j = 0; j < i; j++)
                        if (streq(k->models[j].model, km->model)) {
                                snprintf(err, sizeof err, "%s: model \"%s\" is listed twice", where,
                                         km->model);
                                goto fail_root;
                        }
                if (!json_object_object_get_ex(m, "known_bad", &bad))
                        continue;
                if (!json_object_is_type(bad, json_type_array)) {
                        snprintf(err, sizeof err, "%s: \"known_bad\" must be an array", where);
                        goto fail_root;
                }
                km->bad = calloc(MAX(json_object_array_length(bad), (size_t) 1), sizeof *km->bad);
                if (!km->bad) {
                        r = -ENOMEM;
                        goto fail_root;
                }
                for (size_t j = 0; j < json_object_array_length(bad); j++) {
                        json_object *b = json_object_array_get_idx(bad, j);
                        char w[96];

                        km->n_bad = j + 1;
                        snprintf(w, sizeof w, "%s.known_bad[%zu]", where, j);
                        if (!json_object_is_type(b, json_type_object)) {
                                snprintf(err, sizeof err, "%s must be an object", w);
                                goto fail_root;
                        }
                        if ((r = get_string(b, "version", true, true, &km->bad[j].version, err, sizeof err,
                                            w)) < 0 ||
                            (r = get_string(b, "reason", false, false, &km->bad[j].reason, err, sizeof err,
                                            w)) < 0)
                                goto fail_root;
                        r = -EINVAL;
                }
        }
        json_object_put(root);
        *ret = TAKE_PTR(k);
        return 0;

fail_root:
        json_object_put(root);
fail:
        if (r == -EINVAL && ret_error)
                *ret_error = strdup(err);
        return r;
}

int health_known_firmware_load(const char *path, HealthKnownFirmware **ret, char **ret_error)
{
        _cleanup_free_ char *buf = NULL;
        FILE *f;
        size_t n;
        int r;

        if (ret_error)
                *ret_error = NULL;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        buf = malloc(KNOWN_FIRMWARE_SIZE_MAX + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(buf, 1, KNOWN_FIRMWARE_SIZE_MAX + 1, f);
        r = ferror(f) ? -EIO : 0;
        fclose(f);
        if (r < 0)
                return r;
        if (n > KNOWN_FIRMWARE_SIZE_MAX)
                return -EFBIG;
        return health_known_firmware_parse(buf, n, ret, ret_error);
}

HealthFirmwareVerdict health_firmware_check(const HealthKnownFirmware *k, const char *model,
                                            const char *firmware, const char **ret_latest,
                                            const char **ret_reason)
{
        const KnownModel *m = NULL;

        if (ret_latest)
                *ret_latest = NULL;
        if (ret_reason)
                *ret_reason = NULL;
        if (!k || !model || !firmware || !*firmware)
                return HEALTH_FIRMWARE_UNKNOWN;
        for (size_t i = 0; i < k->n_models; i++)
                if (streq(k->models[i].model, model))
                        m = &k->models[i];
        if (!m)
                return HEALTH_FIRMWARE_UNKNOWN;
        if (ret_latest)
                *ret_latest = m->latest;
        for (size_t i = 0; i < m->n_bad; i++)
                if (health_version_compare(firmware, m->bad[i].version) == 0) {
                        if (ret_reason)
                                *ret_reason = m->bad[i].reason;
                        return HEALTH_FIRMWARE_BAD;
                }
        if (m->minimum && health_version_compare(firmware, m->minimum) < 0)
                return HEALTH_FIRMWARE_OUTDATED;
        if (m->latest && health_version_compare(firmware, m->latest) < 0)
                return HEALTH_FIRMWARE_OLDER;
        return m->latest ? HEALTH_FIRMWARE_CURRENT : HEALTH_FIRMWARE_UNKNOWN;
}

const char *health_firmware_verdict_to_string(HealthFirmwareVerdict v)
{
        switch (v) {
        case HEALTH_FIRMWARE_UNKNOWN:
                return "unknown";
        case HEALTH_FIRMWARE_CURRENT:
                return "current";
        case HEALTH_FIRMWARE_OLDER:
                return "older";
        case HEALTH_FIRMWARE_OUTDATED:
                return "outdated";
        case HEALTH_FIRMWARE_BAD:
                return "known-bad";
        case _HEALTH_FIRMWARE_VERDICT_MAX:
                break;
        }
        return NULL;
}
