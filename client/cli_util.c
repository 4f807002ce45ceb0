//  client/cli_util.c — values the `fedq` command reads (durations, sizes,
//  counts) and writes (base64, human sizes and ages, the JSON line of a
//  delivery).
#define _GNU_SOURCE
#include "cli.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  Leading decimal digits of text into *value; *end after them.
static fedq_rc_t
s_parse_digits (const char *text, uint64_t *value, const char **end)
{
    if (!text || !isdigit ((unsigned char) *text))
        return FEDQ_EINVAL;
    uint64_t v = 0;
    const char *p = text;
    for (; isdigit ((unsigned char) *p); p++) {
        unsigned d = (unsigned) (*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return FEDQ_EINVAL;
        v = v * 10 + d;
    }
    *value = v;
    *end = p;
    return FEDQ_OK;
}

//  value * mult into *out, EINVAL on overflow.
static fedq_rc_t
s_scale (uint64_t value, uint64_t mult, uint64_t *out)
{
    if (mult && value > UINT64_MAX / mult)
        return FEDQ_EINVAL;
    *out = value * mult;
    return FEDQ_OK;
}

fedq_rc_t
cli_parse_duration (const char *text, uint64_t *ms)
{
    uint64_t v;
    const char *unit;
    if (s_parse_digits (text, &v, &unit) != FEDQ_OK)
        return FEDQ_EINVAL;
    uint64_t mult;
    if (*unit == 0 || strcmp (unit, "ms") == 0)
        mult = 1;
    else if (strcmp (unit, "s") == 0)
        mult = 1000;
    else if (strcmp (unit, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp (unit, "h") == 0)
        mult = 3600 * 1000;
    else
        return FEDQ_EINVAL;
    return s_scale (v, mult, ms);
}

fedq_rc_t
cli_parse_size (const char *text, uint64_t *bytes)
{
    uint64_t v;
    const char *unit;
    if (s_parse_digits (text, &v, &unit) != FEDQ_OK)
        return FEDQ_EINVAL;
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"K", 1ull << 10},
        {"KiB", 1ull << 10},
        {"M", 1ull << 20},
        {"MiB", 1ull << 20},
        {"G", 1ull << 30},
        {"GiB", 1ull << 30},
        {"T", 1ull << 40},
        {"TiB", 1ull << 40},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcasecmp (unit, units[i].name) == 0)
            return s_scale (v, units[i].mult, bytes);
    return FEDQ_EINVAL;
}

fedq_rc_t
cli_parse_uint (const char *text, uint64_t max, uint64_t *value)
{
    uint64_t v;
    const char *end;
    if (s_parse_digits (text, &v, &end) != FEDQ_OK || *end || v > max)
        return FEDQ_EINVAL;
    *value = v;
    return FEDQ_OK;
}

char *
cli_base64 (const void *data, size_t size)
{
    static const char alphabet[]
        = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *in = data;
    char *out = malloc ((size + 2) / 3 * 4 + 1);
    if (!out)
        abort ();
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8
                     | in[i + 2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (size - i == 1) {
        uint32_t v = (uint32_t) in[i] << 16;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    }
    else if (size - i == 2) {
        uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = 0;
    return out;
}

void
cli_human_bytes (uint64_t bytes, char *buf, size_t size)
{
    static const char *units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf (buf, size, "%" PRIu64 " B", bytes);
        return;
    }
    double v = (double) bytes / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    snprintf (buf, size, "%.1f %s", v, units[u]);
}

void
cli_human_duration (double seconds, char *buf, size_t size)
{
    if (!(seconds > 0)) {       //  also NaN
        snprintf (buf, size, "0s");
        return;
    }
    if (seconds < 10) {
        snprintf (buf, size, "%.1fs", seconds);
        return;
    }
    uint64_t s = (uint64_t) (seconds + 0.5);
    if (s < 60)
        snprintf (buf, size, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf (buf, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf (buf, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
                  s / 60 % 60);
    else
        snprintf (buf, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
                  s / 3600 % 24);
}

//  A JSON string of a slice; NULL when it is not valid UTF-8.
static json_t *
s_json_str (fedq_str_t s)
{
    return json_stringn (s.ptr ? s.ptr : "", s.len);
}

char *
cli_delivery_json (const proto_msg_t *msg, const void *body, size_t size)
{
    json_t *obj = json_object ();
    char *id = NULL;
    if (asprintf (&id, "%.*s:%" PRIu64, (int) msg->origin.len,
                  msg->origin.ptr ? msg->origin.ptr : "", msg->seq)
        < 0)
        abort ();
    json_object_set_new (obj, "id", json_string (id));
    free (id);
    json_t *origin = s_json_str (msg->origin);
    json_object_set_new (obj, "origin", origin ? origin : json_string (""));
    json_object_set_new (obj, "seq", json_integer ((json_int_t) msg->seq));
    if (msg->message_id.ptr) {
        json_t *mid = s_json_str (msg->message_id);
        if (mid)
            json_object_set_new (obj, "message_id", mid);
    }
    json_t *exchange = s_json_str (msg->exchange);
    json_object_set_new (obj, "exchange",
                         exchange ? exchange : json_string (""));
    json_t *key = s_json_str (msg->routing_key);
    json_object_set_new (obj, "routing_key", key ? key : json_string (""));
    json_t *headers = json_object ();
    for (uint32_t i = 0; i < msg->nheaders && i < PROTO_MAX_HEADERS; i++) {
        //  Keys and values that are not UTF-8 cannot be JSON strings.
        char *k = fedq_str_dup (msg->headers[i].key);
        json_t *v = s_json_str (msg->headers[i].value);
        if (v)
            json_object_set_new (headers, k, v);    //  frees v on failure
        free (k);
    }
    json_object_set_new (obj, "headers", headers);
    json_object_set_new (obj, "redelivered", json_boolean (msg->redelivered));
    json_object_set_new (obj, "published_at",
                         json_integer ((json_int_t) msg->published_at));
    if (msg->priority)
        json_object_set_new (obj, "priority", json_integer (msg->priority));
    json_t *text = json_stringn (size ? body : "", size);
    if (text)
        json_object_set_new (obj, "body", text);
    else {
        char *b64 = cli_base64 (body, size);
        json_object_set_new (obj, "body_b64", json_string (b64));
        free (b64);
    }
    char *line = json_dumps (obj, JSON_COMPACT);
    json_decref (obj);
    if (!line)
        abort ();
    return line;
}
