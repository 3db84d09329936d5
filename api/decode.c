/* decode.c -- request bodies: JSON text -> the fields each endpoint takes.
 *
 * Pure functions of the body bytes (no HTTP, no storage), so every
 * endpoint's decoder can be fuzzed (tests/fuzz/fuzz_bodies.c). Each returns
 * 0, or -1 with the answer to give in *fail. Lengths are counted in Unicode
 * characters; jansson has already rejected invalid UTF-8. */
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int failf(api_fail *f, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int failf(api_fail *f, int status, const char *code, const char *fmt, ...)
{
    f->status = status;
    snprintf(f->code, sizeof f->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof f->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* Parses buf as a JSON object (new reference in *out). */
static int object(const char *buf, size_t len, json_t **out, api_fail *f)
{
    json_error_t err;
    json_t *j = json_loadb(buf ? buf : "", len, JSON_REJECT_DUPLICATES, &err);
    if (!j) return failf(f, 400, "malformed_json", "malformed JSON: %s", err.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return failf(f, 400, "malformed_json", "the body must be a JSON object");
    }
    *out = j;
    return 0;
}

/* Copies string field name of obj (1..maxchars characters, not blank) into
 * out (cap bytes, enough for maxchars 4-byte characters). */
static int string_field(json_t *obj, const char *name, size_t maxchars, char *out, size_t cap,
                        api_fail *f)
{
    json_t *v = json_object_get(obj, name);
    if (!v) return failf(f, 400, "missing_field", "the field \"%s\" is required", name);
    if (!json_is_string(v))
        return failf(f, 400, "invalid_field", "the field \"%s\" must be a string", name);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v), chars = 0;
    if (strlen(s) != len)
        return failf(f, 400, "invalid_field", "the field \"%s\" must not contain NUL", name);
    bool blank = true;
    for (size_t i = 0; i < len; i++) {
        chars += ((unsigned char)s[i] & 0xc0) != 0x80;
        blank = blank && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r');
    }
    if (chars == 0 || blank)
        return failf(f, 400, "empty_field", "the field \"%s\" must not be empty", name);
    if (chars > maxchars || len >= cap)
        return failf(f, 400, "too_long", "the field \"%s\" is longer than %zu characters", name,
                     maxchars);
    memcpy(out, s, len + 1);
    return 0;
}

int api_decode_user(const char *buf, size_t len, void *body, api_fail *f)
{
    api_user_body *out = body;
    json_t *j;
    if (object(buf, len, &j, f) < 0) return -1;
    int rc = string_field(j, "name", API_NAME_MAX, out->name, sizeof out->name, f);
    if (rc == 0 && !stg_valid_name(out->name, strlen(out->name), API_NAME_MAX))
        rc = failf(f, 400, "invalid_name", "name must match [a-z0-9_]{1,30}");
    if (rc == 0 && json_object_get(j, "display_name"))
        rc = string_field(j, "display_name", API_DISPLAY_MAX, out->display_name,
                          sizeof out->display_name, f);
    else if (rc == 0)
        memcpy(out->display_name, out->name, strlen(out->name) + 1);
    json_decref(j);
    return rc;
}

int api_decode_post(const char *buf, size_t len, void *body, api_fail *f)
{
    api_post_body *out = body;
    json_t *j;
    if (object(buf, len, &j, f) < 0) return -1;
    int rc = string_field(j, "text", API_POST_MAX, out->text, sizeof out->text, f);
    json_decref(j);
    return rc;
}

int api_decode_message(const char *buf, size_t len, void *body, api_fail *f)
{
    api_message_body *out = body;
    json_t *j;
    if (object(buf, len, &j, f) < 0) return -1;
    int rc = string_field(j, "to", STG_ID_MAX, out->to, sizeof out->to, f);
    if (rc == 0 && !stg_valid_user_id(out->to, strlen(out->to)))
        rc = failf(f, 400, "invalid_id", "\"to\" is not a user id (name@region)");
    if (rc == 0) rc = string_field(j, "text", API_MESSAGE_MAX, out->text, sizeof out->text, f);
    json_decref(j);
    return rc;
}

int api_decode_admin(const char *buf, size_t len, void *body, api_fail *f)
{
    api_admin_body *out = body;
    json_t *j;
    if (object(buf, len, &j, f) < 0) return -1;
    memset(out, 0, sizeof *out);
    json_t *paused = json_object_get(j, "paused"), *delay = json_object_get(j, "delay_ms"),
           *peer = json_object_get(j, "peer");
    int rc = 0;
    if (!paused && !delay)
        rc = failf(f, 400, "missing_field",
                   "give \"paused\" (boolean) and/or \"delay_ms\" (0..60000)");
    else if (paused && !json_is_boolean(paused))
        rc = failf(f, 400, "invalid_field", "\"paused\" must be a boolean");
    else if (delay && (!json_is_integer(delay) || json_integer_value(delay) < 0 ||
                       json_integer_value(delay) > 60000))
        rc = failf(f, 400, "invalid_field", "\"delay_ms\" must be an integer from 0 to 60000");
    else if (peer &&
             (!json_is_string(peer) ||
              !stg_valid_name(json_string_value(peer), json_string_length(peer), STG_ORIGIN_MAX)))
        rc = failf(f, 400, "invalid_field", "\"peer\" must be a region name");
    if (rc == 0) {
        out->has_paused = paused != NULL;
        out->paused = json_is_true(paused);
        out->has_delay = delay != NULL;
        out->delay_ms = delay ? (uint32_t)json_integer_value(delay) : 0;
        if (peer) snprintf(out->peer, sizeof out->peer, "%s", json_string_value(peer));
    }
    json_decref(j);
    return rc;
}
