//  config/config_schema.c — every key of the YAML file as one row of a
//  table (path, type, default, bounds, where it lands), and the generic
//  code that parses, defaults, compares and frees values by walking it.
//  To add a key: add a field to config.h, a row here, a line to
//  docs/config.md. Nothing else changes.
#define _GNU_SOURCE
#include "config_internal.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_fsync_names[] = {"always", "batch", "never", NULL};
static const char *const s_exchange_names[] = {"direct", "fanout", "topic",
                                               NULL};
static const char *const s_overflow_names[] = {"drop-head", "reject-publish",
                                               NULL};
static const char *const s_ack_names[] = {"on-confirm", "on-publish", "no-ack",
                                          NULL};
static const char *const s_consume_names[] = {"local", "global", NULL};
static const char *const s_level_names[] = {"debug", "info", "warn", "error",
                                            NULL};

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define MINUTE_MS 60000ull
#define HOUR_MS 3600000ull

//  A NAME or a reference to one: AMQP's short-string limit.
#define NAME_MAX_LEN 255
//  Longest STRING or PATH when the row sets no max.
#define STRING_MAX_LEN 4096

#define FIELD(T, m) .offset = offsetof (T, m), .size = sizeof (((T *) 0)->m)
#define LIST_OF(T, array, count, E)                                           \
    .offset = offsetof (T, array), .offset2 = offsetof (T, count),            \
    .elem_size = sizeof (E), .mark_offset = offsetof (E, mark)

//  The options of a queue, shared by queues[] and federated_queues[]
//  (M is the member prefix inside T: empty, or "queue.").
#define QUEUE_KEYS(P, T, M)                                                   \
    {.path = P ".name", .kind = CFG_K_NAME, .flags = CFG_F_REQUIRED,          \
     FIELD (T, M name)},                                                      \
    {.path = P ".durable", .kind = CFG_K_BOOL, .dflt = "true",                \
     FIELD (T, M durable)},                                                   \
    {.path = P ".auto_delete", .kind = CFG_K_BOOL, .dflt = "false",           \
     FIELD (T, M auto_delete)},                                               \
    {.path = P ".max_length", .kind = CFG_K_UINT, .dflt = "0",                \
     FIELD (T, M max_length)},                                                \
    {.path = P ".max_bytes", .kind = CFG_K_SIZE, .dflt = "0",                 \
     FIELD (T, M max_bytes)},                                                 \
    {.path = P ".overflow", .kind = CFG_K_ENUM, .dflt = "drop-head",          \
     .names = s_overflow_names, FIELD (T, M overflow)},                       \
    {.path = P ".message_ttl", .kind = CFG_K_DURATION, .dflt = "0s",          \
     FIELD (T, M message_ttl_ms)},                                            \
    {.path = P ".dead_letter_exchange", .kind = CFG_K_STRING,                 \
     .flags = CFG_F_NULLABLE, .max = NAME_MAX_LEN,                            \
     FIELD (T, M dead_letter_exchange)},                                      \
    {.path = P ".dead_letter_routing_key", .kind = CFG_K_STRING,              \
     .flags = CFG_F_NULLABLE, .max = NAME_MAX_LEN,                            \
     FIELD (T, M dead_letter_routing_key)},                                   \
    {.path = P ".max_priority", .kind = CFG_K_UINT, .dflt = "0", .max = 9,    \
     FIELD (T, M max_priority)},                                              \
    {.path = P ".single_active_consumer", .kind = CFG_K_BOOL,                 \
     .dflt = "false", FIELD (T, M single_active_consumer)},                   \
    {.path = P ".dedup_window", .kind = CFG_K_DURATION, .dflt = "0s",         \
     .max = 168 * HOUR_MS, FIELD (T, M dedup_window_ms)}

const cfg_key_t cfg_keys[] = {
    //  node: this broker process
    {.path = "node", .kind = CFG_K_MAP, .flags = CFG_F_REQUIRED,
     .offset = offsetof (cfg_t, node)},
    {.path = "node.id", .kind = CFG_K_NAME, .flags = CFG_F_REQUIRED,
     FIELD (cfg_node_t, id)},
    {.path = "node.data_dir", .kind = CFG_K_PATH, .flags = CFG_F_REQUIRED,
     FIELD (cfg_node_t, data_dir)},
    {.path = "node.listen", .kind = CFG_K_ENDPOINT, .flags = CFG_F_REQUIRED,
     FIELD (cfg_node_t, listen)},
    {.path = "node.http", .kind = CFG_K_HOSTPORT, .flags = CFG_F_NULLABLE,
     FIELD (cfg_node_t, http)},
    {.path = "node.fsync", .kind = CFG_K_ENUM, .dflt = "batch",
     .names = s_fsync_names, FIELD (cfg_node_t, fsync)},
    {.path = "node.max_message_bytes", .kind = CFG_K_SIZE, .dflt = "16MiB",
     .min = 1, .max = GIB, FIELD (cfg_node_t, max_message_bytes)},
    {.path = "node.segment_bytes", .kind = CFG_K_SIZE, .dflt = "64MiB",
     .min = 4 * KIB, .max = 64 * GIB, FIELD (cfg_node_t, segment_bytes)},
    {.path = "node.log_level", .kind = CFG_K_WORD, .dflt = "info",
     .names = s_level_names, FIELD (cfg_node_t, log_level)},
    {.path = "node.security", .kind = CFG_K_MAP, .flags = CFG_F_PRESENCE,
     .offset = offsetof (cfg_node_t, security),
     .offset2 = offsetof (cfg_node_t, has_security)},
    {.path = "node.security.secret_key", .kind = CFG_K_PATH,
     .flags = CFG_F_SECRET | CFG_F_NULLABLE,
     FIELD (cfg_security_t, secret_key)},
    {.path = "node.security.authorized_keys", .kind = CFG_K_PATH,
     .flags = CFG_F_NULLABLE, FIELD (cfg_security_t, authorized_keys)},
    {.path = "node.security.insecure", .kind = CFG_K_BOOL, .dflt = "false",
     FIELD (cfg_security_t, insecure)},
    {.path = "node.http_tls", .kind = CFG_K_MAP, .flags = CFG_F_PRESENCE,
     .offset = offsetof (cfg_node_t, http_tls),
     .offset2 = offsetof (cfg_node_t, has_http_tls)},
    {.path = "node.http_tls.cert", .kind = CFG_K_PATH,
     .flags = CFG_F_REQUIRED, FIELD (cfg_http_tls_t, cert)},
    {.path = "node.http_tls.key", .kind = CFG_K_PATH,
     .flags = CFG_F_REQUIRED | CFG_F_SECRET, FIELD (cfg_http_tls_t, key)},

    //  exchanges: route a published message to queues by binding
    {.path = "exchanges", .kind = CFG_K_LIST,
     LIST_OF (cfg_t, exchanges, nexchanges, cfg_exchange_t)},
    {.path = "exchanges[].name", .kind = CFG_K_NAME, .flags = CFG_F_REQUIRED,
     FIELD (cfg_exchange_t, name)},
    {.path = "exchanges[].type", .kind = CFG_K_ENUM, .flags = CFG_F_REQUIRED,
     .names = s_exchange_names, FIELD (cfg_exchange_t, type)},

    //  queues: ordered messages with their options
    {.path = "queues", .kind = CFG_K_LIST,
     LIST_OF (cfg_t, queues, nqueues, cfg_queue_t)},
    QUEUE_KEYS ("queues[]", cfg_queue_t, ),

    //  bindings: exchange -> queue by key
    {.path = "bindings", .kind = CFG_K_LIST,
     LIST_OF (cfg_t, bindings, nbindings, cfg_binding_t)},
    {.path = "bindings[].exchange", .kind = CFG_K_STRING,
     .flags = CFG_F_REQUIRED, .max = NAME_MAX_LEN,
     FIELD (cfg_binding_t, exchange)},
    {.path = "bindings[].queue", .kind = CFG_K_STRING, .flags = CFG_F_REQUIRED,
     .max = NAME_MAX_LEN, FIELD (cfg_binding_t, queue)},
    {.path = "bindings[].key", .kind = CFG_K_STRING, .dflt = "",
     .max = NAME_MAX_LEN, FIELD (cfg_binding_t, key)},

    //  shovels: one-way confirmed forwarding to another node
    {.path = "shovels", .kind = CFG_K_LIST,
     LIST_OF (cfg_t, shovels, nshovels, cfg_shovel_t)},
    {.path = "shovels[].name", .kind = CFG_K_NAME, .flags = CFG_F_REQUIRED,
     FIELD (cfg_shovel_t, name)},
    {.path = "shovels[].source", .kind = CFG_K_MAP, .flags = CFG_F_REQUIRED},
    {.path = "shovels[].source.queue", .kind = CFG_K_STRING,
     .flags = CFG_F_REQUIRED, .max = NAME_MAX_LEN,
     FIELD (cfg_shovel_t, source_queue)},
    {.path = "shovels[].destination", .kind = CFG_K_MAP,
     .flags = CFG_F_REQUIRED},
    {.path = "shovels[].destination.endpoint", .kind = CFG_K_ENDPOINT,
     .flags = CFG_F_REQUIRED, FIELD (cfg_shovel_t, dest_endpoint)},
    {.path = "shovels[].destination.exchange", .kind = CFG_K_STRING,
     .flags = CFG_F_NOT_WITH_DEST_QUEUE, .dflt = "", .max = NAME_MAX_LEN,
     FIELD (cfg_shovel_t, dest_exchange)},
    {.path = "shovels[].destination.routing_key", .kind = CFG_K_STRING,
     .flags = CFG_F_NULLABLE | CFG_F_NOT_WITH_DEST_QUEUE, .max = NAME_MAX_LEN,
     FIELD (cfg_shovel_t, dest_routing_key)},
    {.path = "shovels[].destination.queue", .kind = CFG_K_NAME,
     .flags = CFG_F_NULLABLE, FIELD (cfg_shovel_t, dest_queue)},
    {.path = "shovels[].destination.server_key", .kind = CFG_K_PATH,
     .flags = CFG_F_NULLABLE, FIELD (cfg_shovel_t, dest_server_key)},
    {.path = "shovels[].ack_mode", .kind = CFG_K_ENUM, .dflt = "on-confirm",
     .names = s_ack_names, FIELD (cfg_shovel_t, ack_mode)},
    {.path = "shovels[].prefetch", .kind = CFG_K_UINT, .dflt = "1000",
     .min = 1, .max = 1000000, FIELD (cfg_shovel_t, prefetch)},
    {.path = "shovels[].reconnect_delay", .kind = CFG_K_DURATION,
     .dflt = "1s", .min = 10, .max = HOUR_MS,
     FIELD (cfg_shovel_t, reconnect_delay_ms)},
    {.path = "shovels[].max_reconnect_delay", .kind = CFG_K_DURATION,
     .dflt = "30s", .min = 10, .max = 24 * HOUR_MS,
     FIELD (cfg_shovel_t, max_reconnect_delay_ms)},
    {.path = "shovels[].heartbeat", .kind = CFG_K_DURATION, .dflt = "1s",
     .min = 100, .max = 10 * MINUTE_MS, FIELD (cfg_shovel_t, heartbeat_ms)},
    {.path = "shovels[].delete_after", .kind = CFG_K_DELETE_AFTER,
     .dflt = "never", .min = 1, FIELD (cfg_shovel_t, delete_after),
     .offset2 = offsetof (cfg_shovel_t, delete_after_count)},
    {.path = "shovels[].max_attempts", .kind = CFG_K_UINT, .dflt = "3",
     .min = 1, .max = 1000000, FIELD (cfg_shovel_t, max_attempts)},
    {.path = "shovels[].lag_alert", .kind = CFG_K_DURATION, .dflt = "0s",
     FIELD (cfg_shovel_t, lag_alert_ms)},
    {.path = "shovels[].backlog_alert", .kind = CFG_K_UINT, .dflt = "0",
     FIELD (cfg_shovel_t, backlog_alert)},
    {.path = "shovels[].verify_digest", .kind = CFG_K_BOOL, .dflt = "false",
     FIELD (cfg_shovel_t, verify_digest)},

    //  federated_queues: a queue kept multi-master across member nodes
    {.path = "federated_queues", .kind = CFG_K_LIST,
     LIST_OF (cfg_t, federated, nfederated, cfg_federated_t)},
    QUEUE_KEYS ("federated_queues[]", cfg_federated_t, queue.),
    {.path = "federated_queues[].consume", .kind = CFG_K_ENUM,
     .dflt = "local", .names = s_consume_names,
     FIELD (cfg_federated_t, consume)},
    //  consume: global: a message from another member waits this long
    //  here before it is delivered, so that the origin's consumers (whose
    //  ack becomes a tombstone) take it first (node/queue.c held FIFO).
    {.path = "federated_queues[].global_handoff", .kind = CFG_K_DURATION,
     .dflt = "2s", .max = HOUR_MS, FIELD (cfg_federated_t, global_handoff_ms)},
    {.path = "federated_queues[].peers", .kind = CFG_K_LIST,
     LIST_OF (cfg_federated_t, peers, npeers, cfg_peer_t)},
    {.path = "federated_queues[].peers[].id", .kind = CFG_K_NAME,
     .flags = CFG_F_REQUIRED, FIELD (cfg_peer_t, id)},
    {.path = "federated_queues[].peers[].endpoint", .kind = CFG_K_ENDPOINT,
     .flags = CFG_F_REQUIRED, FIELD (cfg_peer_t, endpoint)},
    {.path = "federated_queues[].peers[].server_key", .kind = CFG_K_PATH,
     .flags = CFG_F_NULLABLE, FIELD (cfg_peer_t, server_key)},
    {.path = "federated_queues[].lag_alert", .kind = CFG_K_DURATION,
     .dflt = "0s", FIELD (cfg_federated_t, lag_alert_ms)},
    {.path = "federated_queues[].backlog_alert", .kind = CFG_K_UINT,
     .dflt = "0", FIELD (cfg_federated_t, backlog_alert)},
    //  Bounded history (federation/fed_resync.c): past either cap the
    //  oldest events go, and a member that lacks them gets a resync.
    {.path = "federated_queues[].history_max_messages", .kind = CFG_K_UINT,
     .dflt = "1000000", .min = 1, .max = 1000000000,
     FIELD (cfg_federated_t, history_max_messages)},
    {.path = "federated_queues[].history_max_bytes", .kind = CFG_K_SIZE,
     .dflt = "1GiB", .min = 1, .max = 1024 * GIB,
     FIELD (cfg_federated_t, history_max_bytes)},
};

const size_t cfg_nkeys = sizeof cfg_keys / sizeof cfg_keys[0];

//  --- finding keys -----------------------------------------------------------

static bool
s_is_child (const char *path, const char *scope)
{
    if (*scope == 0)
        return strchr (path, '.') == NULL;
    size_t len = strlen (scope);
    return strncmp (path, scope, len) == 0 && path[len] == '.'
           && strchr (path + len + 1, '.') == NULL;
}

const cfg_key_t *
cfg_key_next_child (const char *scope, size_t *index)
{
    while (*index < cfg_nkeys) {
        const cfg_key_t *key = &cfg_keys[(*index)++];
        if (s_is_child (key->path, scope))
            return key;
    }
    return NULL;
}

const cfg_key_t *
cfg_key_child (const char *scope, const char *name)
{
    size_t index = 0;
    const cfg_key_t *key;
    while ((key = cfg_key_next_child (scope, &index)))
        if (strcmp (cfg_key_name (key), name) == 0)
            return key;
    return NULL;
}

const char *
cfg_key_name (const cfg_key_t *key)
{
    const char *dot = strrchr (key->path, '.');
    return dot ? dot + 1 : key->path;
}

void
cfg_key_elem_scope (const cfg_key_t *key, char *buf, size_t size)
{
    snprintf (buf, size, "%s[]", key->path);
}

void *
cfg_key_at (const cfg_key_t *key, void *base)
{
    return (char *) base + key->offset;
}

//  --- reading and writing values ----------------------------------------

static uint64_t
s_get_uint (const cfg_key_t *key, const void *base)
{
    const char *p = (const char *) base + key->offset;
    if (key->size == sizeof (uint64_t)) {
        uint64_t v;
        memcpy (&v, p, sizeof v);
        return v;
    }
    assert (key->size == sizeof (uint32_t));
    uint32_t v;
    memcpy (&v, p, sizeof v);
    return v;
}

//  UINT fields are uint32_t, uint64_t or a small int (max_priority), ENUM
//  fields are enums: all 4 or 8 bytes holding a non-negative value.
static void
s_set_uint (const cfg_key_t *key, void *base, uint64_t value)
{
    char *p = (char *) base + key->offset;
    if (key->size == sizeof (uint64_t))
        memcpy (p, &value, sizeof value);
    else {
        assert (key->size == sizeof (uint32_t));
        uint32_t v = (uint32_t) value;
        memcpy (p, &v, sizeof v);
    }
}

static void
s_set_string (const cfg_key_t *key, void *base, const char *text)
{
    char **slot = (char **) cfg_key_at (key, base);
    free (*slot);
    *slot = text ? cfg_strdup (text) : NULL;
}

static bool
s_is_string (cfg_kind_t kind)
{
    return kind == CFG_K_STRING || kind == CFG_K_NAME || kind == CFG_K_PATH
           || kind == CFG_K_WORD || kind == CFG_K_ENDPOINT
           || kind == CFG_K_HOSTPORT;
}

//  Largest value a UINT key can hold.
static uint64_t
s_uint_max (const cfg_key_t *key)
{
    uint64_t cap = key->size == sizeof (uint32_t) ? UINT32_MAX : UINT64_MAX;
    return key->max && key->max < cap ? key->max : cap;
}

static void
s_names_list (const char *const *names, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; names[i] && used < size; i++)
        used += (size_t) snprintf (buf + used, size - used, "%s%s",
                                   i ? ", " : "", names[i]);
}

//  Write a value with its unit for bounds in messages.
static void
s_bound_text (const cfg_key_t *key, uint64_t value, char *buf, size_t size)
{
    if (key->kind == CFG_K_DURATION)
        cfg_duration_text (value, buf, size);
    else if (key->kind == CFG_K_SIZE)
        cfg_size_text (value, buf, size);
    else
        snprintf (buf, size, "%" PRIu64, value);
}

void
cfg_key_expected (const cfg_key_t *key, char *buf, size_t size)
{
    char list[256];
    switch (key->kind) {
        case CFG_K_MAP:
            snprintf (buf, size, "a mapping of keys");
            break;
        case CFG_K_LIST:
            snprintf (buf, size, "a list of mappings");
            break;
        case CFG_K_STRING:
            snprintf (buf, size, "a string");
            break;
        case CFG_K_NAME:
            snprintf (buf, size, "a name of 1 to %d characters from "
                                 "A-Z a-z 0-9 . _ -",
                      NAME_MAX_LEN);
            break;
        case CFG_K_PATH:
            snprintf (buf, size, "a file path");
            break;
        case CFG_K_BOOL:
            snprintf (buf, size, "true or false");
            break;
        case CFG_K_UINT:
            snprintf (buf, size, "%s",
                      key->min ? "a positive integer"
                               : "a non-negative integer");
            break;
        case CFG_K_DURATION:
        case CFG_K_SIZE:
            snprintf (buf, size, "%s such as %s",
                      key->kind == CFG_K_DURATION ? "a duration" : "a size",
                      key->kind == CFG_K_DURATION ? "250ms, 5s, 2m or 1h"
                                                  : "512, 64KiB, 16MiB or 1GiB");
            break;
        case CFG_K_ENUM:
        case CFG_K_WORD:
            s_names_list (key->names, list, sizeof list);
            snprintf (buf, size, "one of %s", list);
            break;
        case CFG_K_ENDPOINT:
            snprintf (buf, size, "an endpoint tcp://HOST:PORT, ipc://PATH or "
                                 "inproc://NAME");
            break;
        case CFG_K_HOSTPORT:
            snprintf (buf, size, "HOST:PORT");
            break;
        case CFG_K_DELETE_AFTER:
            snprintf (buf, size, "never, queue-length or a positive count");
            break;
    }
}

//  "expected E, got "TEXT"" plus an optional detail.
static bool
s_fail (const cfg_key_t *key, const char *text, const char *detail,
        char *why, size_t why_size)
{
    char expected[256], got[96];
    cfg_key_expected (key, expected, sizeof expected);
    cfg_quote (text, got, sizeof got);
    snprintf (why, why_size, "expected %s, got %s%s%s", expected, got,
              detail && *detail ? ": " : "", detail ? detail : "");
    return false;
}

//  A number out of the key's bounds: say what the bounds are.
static bool
s_fail_range (const cfg_key_t *key, const char *text, uint64_t value,
              fedq_rc_t rc, uint64_t max, char *why, size_t why_size)
{
    char got[96], lo[32], hi[32];
    const char *what = key->kind == CFG_K_DURATION ? "a duration"
                       : key->kind == CFG_K_SIZE   ? "a size"
                                                   : "an integer";
    cfg_quote (text, got, sizeof got);
    s_bound_text (key, key->min, lo, sizeof lo);
    s_bound_text (key, max, hi, sizeof hi);
    if (max != UINT64_MAX)
        snprintf (why, why_size, "expected %s from %s to %s, got %s", what,
                  lo, hi, got);
    else if (rc == FEDQ_OK && value < key->min)
        snprintf (why, why_size, "expected %s of at least %s, got %s", what,
                  lo, got);
    else
        return s_fail (key, text, "too large", why, why_size);
    return false;
}

static bool
s_name_valid (const char *text)
{
    size_t len = strlen (text);
    if (len == 0 || len > NAME_MAX_LEN)
        return false;
    for (const char *c = text; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')
              || (*c >= '0' && *c <= '9') || *c == '.' || *c == '_'
              || *c == '-'))
            return false;
    return true;
}

//  The index of text in names, or -1; *close gets a near miss.
static int
s_name_index (const char *const *names, const char *text, const char **close)
{
    *close = NULL;
    for (int i = 0; names[i]; i++) {
        if (strcmp (names[i], text) == 0)
            return i;
        if (!*close && cfg_similar (text, names[i]))
            *close = names[i];
    }
    return -1;
}

bool
cfg_key_store (const cfg_key_t *key, const char *text, void *base,
               char *why, size_t why_size)
{
    char detail[160] = "";
    uint64_t value;
    fedq_rc_t rc;
    switch (key->kind) {
        case CFG_K_MAP:
        case CFG_K_LIST:
            return s_fail (key, text, NULL, why, why_size);
        case CFG_K_STRING:
        case CFG_K_PATH: {
            size_t max = key->max ? key->max : STRING_MAX_LEN;
            size_t len = strlen (text);
            if (key->kind == CFG_K_PATH && len == 0)
                return s_fail (key, text, "the path is empty", why, why_size);
            if (len > max) {
                snprintf (detail, sizeof detail,
                          "longer than %zu characters", max);
                return s_fail (key, text, detail, why, why_size);
            }
            s_set_string (key, base, text);
            return true;
        }
        case CFG_K_NAME:
            //  Kept even when invalid, so that references to it resolve
            //  and the operator sees one error rather than several.
            s_set_string (key, base, text);
            if (!s_name_valid (text))
                return s_fail (key, text, NULL, why, why_size);
            return true;
        case CFG_K_BOOL: {
            bool *slot = (bool *) cfg_key_at (key, base);
            if (!strcmp (text, "true") || !strcmp (text, "True")
                || !strcmp (text, "TRUE"))
                *slot = true;
            else if (!strcmp (text, "false") || !strcmp (text, "False")
                     || !strcmp (text, "FALSE"))
                *slot = false;
            else
                return s_fail (key, text, NULL, why, why_size);
            return true;
        }
        case CFG_K_UINT:
            rc = cfg_parse_uint (text, &value);
            if (rc == FEDQ_EINVAL)
                return s_fail (key, text, NULL, why, why_size);
            if (rc != FEDQ_OK || value < key->min || value > s_uint_max (key))
                return s_fail_range (key, text, value, rc, s_uint_max (key),
                                     why, why_size);
            s_set_uint (key, base, value);
            return true;
        case CFG_K_DURATION:
        case CFG_K_SIZE:
            rc = key->kind == CFG_K_DURATION ? cfg_parse_duration (text, &value)
                                             : cfg_parse_size (text, &value);
            if (rc == FEDQ_EINVAL) {
                if (key->kind == CFG_K_SIZE && strpbrk (text, "kKmMgGtT"))
                    snprintf (detail, sizeof detail,
                              "units are KiB, MiB, GiB and TiB (powers of "
                              "1024)");
                else if (strchr (text, '.'))
                    snprintf (detail, sizeof detail,
                              "write a whole number in a smaller unit");
                return s_fail (key, text, detail, why, why_size);
            }
            if (rc != FEDQ_OK || value < key->min
                || value > (key->max ? key->max : UINT64_MAX))
                return s_fail_range (key, text, value, rc,
                                     key->max ? key->max : UINT64_MAX, why,
                                     why_size);
            s_set_uint (key, base, value);
            return true;
        case CFG_K_ENUM:
        case CFG_K_WORD: {
            const char *close;
            int index = s_name_index (key->names, text, &close);
            if (index < 0) {
                if (close)
                    snprintf (detail, sizeof detail, "did you mean '%s'?",
                              close);
                return s_fail (key, text, detail, why, why_size);
            }
            if (key->kind == CFG_K_ENUM)
                s_set_uint (key, base, (uint64_t) index);
            else
                s_set_string (key, base, text);
            return true;
        }
        case CFG_K_ENDPOINT:
        case CFG_K_HOSTPORT: {
            cfg_endpoint_t ep;
            bool ok = key->kind == CFG_K_ENDPOINT
                          ? cfg_endpoint_parse (text, &ep, detail,
                                                sizeof detail)
                          : cfg_hostport_parse (text, &ep, detail,
                                                sizeof detail);
            if (!ok)
                return s_fail (key, text, detail, why, why_size);
            s_set_string (key, base, text);
            return true;
        }
        case CFG_K_DELETE_AFTER: {
            cfg_delete_after_t mode;
            uint64_t count = 0;
            if (strcmp (text, "never") == 0)
                mode = CFG_DELETE_NEVER;
            else if (strcmp (text, "queue-length") == 0)
                mode = CFG_DELETE_QUEUE_LENGTH;
            else if (cfg_parse_uint (text, &count) == FEDQ_OK && count >= 1)
                mode = CFG_DELETE_COUNT;
            else
                return s_fail (key, text, NULL, why, why_size);
            s_set_uint (key, base, (uint64_t) mode);
            memcpy ((char *) base + key->offset2, &count, sizeof count);
            return true;
        }
    }
    return false;
}

//  --- walking whole structs ------------------------------------------------

static void *
s_elem (const cfg_key_t *key, void *array, size_t index)
{
    return (char *) array + index * key->elem_size;
}

static size_t
s_count (const cfg_key_t *key, const void *base)
{
    size_t count;
    memcpy (&count, (const char *) base + key->offset2, sizeof count);
    return count;
}

void
cfg_struct_defaults (const char *scope, void *base)
{
    size_t index = 0;
    const cfg_key_t *key;
    while ((key = cfg_key_next_child (scope, &index))) {
        if (key->kind == CFG_K_MAP)
            cfg_struct_defaults (key->path, cfg_key_at (key, base));
        else if (key->dflt) {
            char why[256];
            bool ok = cfg_key_store (key, key->dflt, base, why, sizeof why);
            assert (ok);
            (void) ok;
        }
    }
}

void
cfg_struct_free (const char *scope, void *base)
{
    size_t index = 0;
    const cfg_key_t *key;
    while ((key = cfg_key_next_child (scope, &index))) {
        if (key->kind == CFG_K_MAP)
            cfg_struct_free (key->path, cfg_key_at (key, base));
        else if (key->kind == CFG_K_LIST) {
            char elem_scope[CFG_PATH_MAX];
            void **array = (void **) cfg_key_at (key, base);
            size_t count = s_count (key, base);
            cfg_key_elem_scope (key, elem_scope, sizeof elem_scope);
            for (size_t i = 0; *array && i < count; i++)
                cfg_struct_free (elem_scope, s_elem (key, *array, i));
            free (*array);
            *array = NULL;
            memset ((char *) base + key->offset2, 0, sizeof count);
        }
        else if (s_is_string (key->kind)) {
            char **slot = (char **) cfg_key_at (key, base);
            free (*slot);
            *slot = NULL;
        }
    }
}

static bool
s_str_equal (const char *a, const char *b)
{
    return a == b || (a && b && strcmp (a, b) == 0);
}

bool
cfg_struct_equal (const char *scope, const void *a, const void *b)
{
    size_t index = 0;
    const cfg_key_t *key;
    while ((key = cfg_key_next_child (scope, &index))) {
        const char *pa = (const char *) a + key->offset;
        const char *pb = (const char *) b + key->offset;
        if (key->kind == CFG_K_MAP) {
            if ((key->flags & CFG_F_PRESENCE)
                && *(const bool *) ((const char *) a + key->offset2)
                       != *(const bool *) ((const char *) b + key->offset2))
                return false;
            if (!cfg_struct_equal (key->path, pa, pb))
                return false;
        }
        else if (key->kind == CFG_K_LIST) {
            char elem_scope[CFG_PATH_MAX];
            size_t count = s_count (key, a);
            if (count != s_count (key, b))
                return false;
            void *array_a, *array_b;
            memcpy (&array_a, pa, sizeof array_a);
            memcpy (&array_b, pb, sizeof array_b);
            cfg_key_elem_scope (key, elem_scope, sizeof elem_scope);
            for (size_t i = 0; i < count; i++)
                if (!cfg_struct_equal (elem_scope, s_elem (key, array_a, i),
                                       s_elem (key, array_b, i)))
                    return false;
        }
        else if (s_is_string (key->kind)) {
            if (!s_str_equal (*(char *const *) pa, *(char *const *) pb))
                return false;
        }
        else if (key->kind == CFG_K_BOOL) {
            if (*(const bool *) pa != *(const bool *) pb)
                return false;
        }
        else {
            if (s_get_uint (key, a) != s_get_uint (key, b))
                return false;
            if (key->kind == CFG_K_DELETE_AFTER
                && memcmp ((const char *) a + key->offset2,
                           (const char *) b + key->offset2, sizeof (uint64_t))
                       != 0)
                return false;
        }
    }
    return true;
}

uint64_t
cfg_key_get_uint (const cfg_key_t *key, const void *base)
{
    return s_get_uint (key, base);
}
