//  config/config.c — the small values of a configuration: durations,
//  sizes, endpoints, names close to a typo; and freeing a config.
#define _GNU_SOURCE
#include "config_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void *
cfg_calloc (size_t n, size_t size)
{
    void *p = calloc (n ? n : 1, size ? size : 1);
    if (!p)
        abort ();
    return p;
}

char *
cfg_strdup (const char *text)
{
    char *copy = strdup (text);
    if (!copy)
        abort ();
    return copy;
}

//  Digits then a unit; the unit is returned through *unit_p. ETOOBIG when
//  the number alone overflows, EINVAL when there are no digits.
static fedq_rc_t
s_parse_number_unit (const char *text, uint64_t *value, const char **unit_p)
{
    const char *p = text;
    uint64_t n = 0;
    bool overflow = false;
    while (*p >= '0' && *p <= '9') {
        unsigned digit = (unsigned) (*p - '0');
        if (n > (UINT64_MAX - digit) / 10)
            overflow = true;
        else
            n = n * 10 + digit;
        p++;
    }
    if (p == text)
        return FEDQ_EINVAL;
    *unit_p = p;
    *value = n;
    return overflow ? FEDQ_ETOOBIG : FEDQ_OK;
}

fedq_rc_t
cfg_parse_uint (const char *text, uint64_t *value)
{
    const char *unit;
    uint64_t n;
    if (!text || !value)
        return FEDQ_EINVAL;
    fedq_rc_t rc = s_parse_number_unit (text, &n, &unit);
    if (rc == FEDQ_EINVAL || *unit)
        return FEDQ_EINVAL;
    if (rc == FEDQ_OK)
        *value = n;
    return rc;
}

//  A number followed by one of units[] (scales[] alike); "" matches a
//  bare number.
static fedq_rc_t
s_parse_scaled (const char *text, const char *const *units,
                const uint64_t *scales, uint64_t *result)
{
    const char *unit;
    uint64_t n;
    if (!text || !result)
        return FEDQ_EINVAL;
    fedq_rc_t rc = s_parse_number_unit (text, &n, &unit);
    if (rc == FEDQ_EINVAL)
        return rc;
    for (size_t i = 0; units[i]; i++) {
        if (strcmp (unit, units[i]) != 0)
            continue;
        if (rc == FEDQ_ETOOBIG || n > UINT64_MAX / scales[i])
            return FEDQ_ETOOBIG;
        *result = n * scales[i];
        return FEDQ_OK;
    }
    return FEDQ_EINVAL;
}

fedq_rc_t
cfg_parse_duration (const char *text, uint64_t *ms)
{
    static const char *const units[] = {"", "ms", "s", "m", "h", NULL};
    static const uint64_t scales[] = {1, 1, 1000, 60000, 3600000};
    return s_parse_scaled (text, units, scales, ms);
}

fedq_rc_t
cfg_parse_size (const char *text, uint64_t *bytes)
{
    static const char *const units[] = {"", "B", "KiB", "MiB", "GiB", "TiB",
                                        NULL};
    static const uint64_t scales[] = {1, 1, 1ull << 10, 1ull << 20,
                                      1ull << 30, 1ull << 40};
    return s_parse_scaled (text, units, scales, bytes);
}

void
cfg_duration_text (uint64_t ms, char *buf, size_t size)
{
    if (ms == 0)
        snprintf (buf, size, "0s");
    else if (ms % 3600000 == 0)
        snprintf (buf, size, "%" PRIu64 "h", ms / 3600000);
    else if (ms % 60000 == 0)
        snprintf (buf, size, "%" PRIu64 "m", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf (buf, size, "%" PRIu64 "s", ms / 1000);
    else
        snprintf (buf, size, "%" PRIu64 "ms", ms);
}

void
cfg_size_text (uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        uint64_t scale = 1ull << (10 * (4 - i));
        if (bytes != 0 && bytes % scale == 0) {
            snprintf (buf, size, "%" PRIu64 "%s", bytes / scale, units[i]);
            return;
        }
    }
    snprintf (buf, size, "%" PRIu64, bytes);
}

void
cfg_format_duration (uint64_t ms, char *buf, size_t size)
{
    cfg_duration_text (ms, buf, size);
}

void
cfg_format_size (uint64_t bytes, char *buf, size_t size)
{
    cfg_size_text (bytes, buf, size);
}

void
cfg_quote (const char *text, char *buf, size_t size)
{
    size_t used = 0;
    size_t shown = 0;
    if (size < 8)
        return;
    buf[used++] = '"';
    for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
        if (used + 8 >= size || shown == 60) {
            memcpy (buf + used, "...", 3);
            used += 3;
            break;
        }
        if (*p == '"' || *p == '\\') {
            buf[used++] = '\\';
            buf[used++] = (char) *p;
        }
        else if (*p < 0x20 || *p == 0x7f)
            used += (size_t) snprintf (buf + used, size - used, "\\x%02x", *p);
        else
            buf[used++] = (char) *p;
        shown++;
    }
    buf[used++] = '"';
    buf[used] = 0;
}

size_t
cfg_distance (const char *a, const char *b)
{
    //  Optimal string alignment over at most 63 characters: enough for
    //  key and queue names; longer words are never "close".
    size_t la = strlen (a), lb = strlen (b);
    if (la > 63 || lb > 63)
        return 9;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower ((unsigned char) a[i - 1])
                                  == tolower ((unsigned char) b[j - 1])
                              ? 0
                              : 1;
            size_t best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb] > 9 ? 9 : d[la][lb];
}

bool
cfg_similar (const char *word, const char *candidate)
{
    size_t len = strlen (candidate);
    size_t limit = len <= 3 ? 1 : len <= 8 ? 2 : 3;
    return cfg_distance (word, candidate) <= limit;
}

//  A host name, IPv4 address, interface name or "*".
static bool
s_host_valid (const char *host)
{
    size_t len = strlen (host);
    if (len == 0 || len > 253)
        return false;
    if (strcmp (host, "*") == 0)
        return true;
    for (const char *c = host; *c; c++)
        if (!isalnum ((unsigned char) *c) && *c != '.' && *c != '-'
            && *c != '_')
            return false;
    return true;
}

//  "HOST:PORT" or "[V6]:PORT" from text into ep.
static bool
s_split_hostport (const char *text, cfg_endpoint_t *ep, char *why,
                  size_t why_size)
{
    const char *colon;
    size_t hostlen;
    const char *host = text;
    if (*text == '[') {
        const char *close = strchr (text, ']');
        if (!close || close[1] != ':') {
            snprintf (why, why_size, "an IPv6 host must be written [ADDR]:PORT");
            return false;
        }
        host = text + 1;
        hostlen = (size_t) (close - host);
        colon = close + 1;
        for (const char *c = host; c < close; c++)
            if (!isxdigit ((unsigned char) *c) && *c != ':' && *c != '.') {
                snprintf (why, why_size, "bad IPv6 address");
                return false;
            }
        if (hostlen == 0) {
            snprintf (why, why_size, "the host is empty");
            return false;
        }
    }
    else {
        colon = strrchr (text, ':');
        if (!colon) {
            snprintf (why, why_size, "no :PORT");
            return false;
        }
        hostlen = (size_t) (colon - text);
    }
    if (hostlen >= sizeof ep->host) {
        snprintf (why, why_size, "the host is too long");
        return false;
    }
    memcpy (ep->host, host, hostlen);
    ep->host[hostlen] = 0;
    if (*text != '[' && strchr (ep->host, ':')) {
        snprintf (why, why_size, "an IPv6 host must be written [ADDR]:PORT");
        return false;
    }
    if (*text != '[' && !s_host_valid (ep->host)) {
        snprintf (why, why_size, "%s",
                  hostlen ? "the host has characters a host name cannot have"
                          : "the host is empty");
        return false;
    }
    uint64_t port;
    const char *digits = colon + 1;
    if (cfg_parse_uint (digits, &port) != FEDQ_OK || port < 1 || port > 65535
        || strlen (digits) > 5) {
        snprintf (why, why_size, "the port must be a number from 1 to 65535");
        return false;
    }
    ep->port = (uint16_t) port;
    return true;
}

bool
cfg_endpoint_parse (const char *text, cfg_endpoint_t *ep, char *why,
                    size_t why_size)
{
    memset (ep, 0, sizeof *ep);
    if (strncmp (text, "tcp://", 6) == 0) {
        ep->scheme = CFG_EP_TCP;
        return s_split_hostport (text + 6, ep, why, why_size);
    }
    const char *rest = NULL;
    if (strncmp (text, "ipc://", 6) == 0) {
        ep->scheme = CFG_EP_IPC;
        rest = text + 6;
    }
    else if (strncmp (text, "inproc://", 9) == 0) {
        ep->scheme = CFG_EP_INPROC;
        rest = text + 9;
    }
    else {
        snprintf (why, why_size, "the scheme must be tcp://, ipc:// or "
                                 "inproc://");
        return false;
    }
    if (*rest == 0 || strlen (rest) >= sizeof ep->host) {
        snprintf (why, why_size, "the %s is %s",
                  ep->scheme == CFG_EP_IPC ? "path" : "name",
                  *rest ? "too long" : "empty");
        return false;
    }
    snprintf (ep->host, sizeof ep->host, "%s", rest);
    return true;
}

bool
cfg_hostport_parse (const char *text, cfg_endpoint_t *ep, char *why,
                    size_t why_size)
{
    memset (ep, 0, sizeof *ep);
    ep->scheme = CFG_EP_TCP;
    if (strstr (text, "://")) {
        snprintf (why, why_size, "write it without a scheme");
        return false;
    }
    return s_split_hostport (text, ep, why, why_size);
}

bool
cfg_host_is_loopback (const char *host)
{
    return strncmp (host, "127.", 4) == 0 || strcmp (host, "::1") == 0
           || strcasecmp (host, "localhost") == 0;
}

bool
cfg_host_is_any (const char *host)
{
    return strcmp (host, "*") == 0 || strcmp (host, "0.0.0.0") == 0
           || strcmp (host, "::") == 0;
}

void
cfg_destroy (cfg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cfg_t *self = *self_p;
    cfg_struct_free ("", self);
    free (self->path);
    free (self);
    *self_p = NULL;
}
