//  node/broker_meta.c — DATA_DIR/meta.json: durable declarations.
#define _GNU_SOURCE
#include "broker_meta.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

#define META_VERSION 1

static json_t *
s_queue_json (const queue_t *q)
{
    const proto_qopts_t *o = &q->opts;
    json_t *j = json_pack (
      "{s:s, s:I, s:b, s:b, s:b, s:i, s:i, s:I, s:I, s:I, s:I, s:b}", "name",
      q->name, "qid", (json_int_t) q->qid, "durable", o->durable,
      "auto_delete", o->auto_delete, "sac", o->single_active_consumer,
      "max_priority", o->max_priority, "overflow", o->overflow, "max_length",
      (json_int_t) o->max_length, "max_bytes", (json_int_t) o->max_bytes,
      "ttl", (json_int_t) o->message_ttl_ms, "dedup",
      (json_int_t) o->dedup_window_ms, "config", q->from_config);
    if (q->dlx)
        json_object_set_new (j, "dlx", json_string (q->dlx));
    if (q->dlk)
        json_object_set_new (j, "dlk", json_string (q->dlk));
    return j;
}

fedq_rc_t
broker_meta_save (broker_t *broker)
{
    json_t *root = json_object ();
    json_t *queues = json_array ();
    json_t *exchanges = json_array ();
    json_t *bindings = json_array ();
    zhashx_t *qt = broker_queue_table (broker);
    zhashx_t *xt = broker_exchange_table (broker);
    for (queue_t *q = zhashx_first (qt); q; q = zhashx_next (qt))
        if (q->opts.durable)
            json_array_append_new (queues, s_queue_json (q));
    for (exchange_t *x = zhashx_first (xt); x; x = zhashx_next (xt)) {
        json_array_append_new (
          exchanges, json_pack ("{s:s, s:s, s:b}", "name", x->name, "type",
                                exchange_type_name (x->type), "config",
                                x->from_config));
        for (size_t i = 0; i < x->nbindings; i++)
            if (x->bindings[i].queue->opts.durable)
                json_array_append_new (
                  bindings,
                  json_pack ("{s:s, s:s, s:s}", "exchange", x->name, "queue",
                             x->bindings[i].queue->name, "key",
                             x->bindings[i].key));
    }
    json_object_set_new (root, "version", json_integer (META_VERSION));
    if (**broker_incarnation (broker))
        json_object_set_new (root, "incarnation",
                             json_string (*broker_incarnation (broker)));
    json_object_set_new (root, "next_qid",
                         json_integer ((json_int_t) *broker_next_qid (broker)));
    json_object_set_new (root, "queues", queues);
    json_object_set_new (root, "exchanges", exchanges);
    json_object_set_new (root, "bindings", bindings);
    char *text = json_dumps (root, JSON_INDENT (1) | JSON_SORT_KEYS);
    json_decref (root);

    fedq_rc_t rc = FEDQ_OK;
    char path[4096], tmp[4096];
    snprintf (path, sizeof path, "%s/meta.json", broker_data_dir (broker));
    snprintf (tmp, sizeof tmp, "%s/meta.json.tmp", broker_data_dir (broker));
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t len = strlen (text);
    if (fd < 0 || write (fd, text, len) != (ssize_t) len || fsync (fd)
        || rename (tmp, path)) {
        fedq_error ("cannot write %s: %s", path, strerror (errno));
        rc = errno == ENOSPC ? FEDQ_ENOSPC : FEDQ_EIO;
    }
    if (fd >= 0)
        close (fd);
    int dfd = open (broker_data_dir (broker), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync (dfd);
        close (dfd);
    }
    free (text);
    return rc;
}

#define META_INCARNATION_MAX 16

static bool
s_incarnation_ok (const char *inc)
{
    size_t n = strlen (inc);
    if (n == 0 || n > META_INCARNATION_MAX)
        return false;
    for (const char *c = inc; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z')))
            return false;
    return true;
}

//  8 hex digits from the kernel's random source (the wall clock mixed in
//  should it fail): two fresh directories of one node.id never share one.
static char *
s_new_incarnation (void)
{
    uint32_t r = 0;
    if (getrandom (&r, sizeof r, 0) != (ssize_t) sizeof r)
        r = (uint32_t) fedq_wall_ms () ^ (uint32_t) getpid ();
    char text[9];
    snprintf (text, sizeof text, "%08" PRIx32, r);
    return strdup (text);
}

static const char *
s_str (json_t *obj, const char *key)
{
    json_t *v = json_object_get (obj, key);
    return json_is_string (v) ? json_string_value (v) : NULL;
}

static uint64_t
s_uint (json_t *obj, const char *key)
{
    json_t *v = json_object_get (obj, key);
    return json_is_integer (v) && json_integer_value (v) > 0
             ? (uint64_t) json_integer_value (v)
             : 0;
}

fedq_rc_t
broker_meta_load (broker_t *broker)
{
    char path[4096];
    snprintf (path, sizeof path, "%s/meta.json", broker_data_dir (broker));
    if (access (path, F_OK) != 0) {
        //  A new node: create the data directory and its parents.
        char dir[4096];
        snprintf (dir, sizeof dir, "%s", broker_data_dir (broker));
        for (char *p = dir + 1; *p; p++)
            if (*p == '/') {
                *p = 0;
                mkdir (dir, 0700);
                *p = '/';
            }
        if (mkdir (dir, 0700) && errno != EEXIST) {
            fedq_error ("cannot create data directory %s: %s", dir,
                        strerror (errno));
            return FEDQ_EIO;
        }
        //  A fresh directory is a new incarnation of the node: its
        //  federation events get an origin of their own (fed.h), so a
        //  member re-created under its old node.id never reuses the
        //  sequences of the one that was lost. Saved before any event.
        free (*broker_incarnation (broker));
        *broker_incarnation (broker) = s_new_incarnation ();
        return broker_meta_save (broker);
    }
    json_error_t err;
    json_t *root = json_load_file (path, 0, &err);
    if (!root || !json_is_object (root)) {
        fedq_error ("%s:%d:%d: cannot read the node's declarations: %s; "
                    "restore the file from a backup",
                    path, err.line, err.column, err.text);
        json_decref (root);
        return FEDQ_ECORRUPT;
    }
    const char *inc = s_str (root, "incarnation");
    if (inc && !s_incarnation_ok (inc)) {
        fedq_error ("%s: \"incarnation\": expected 1 to %d characters "
                    "from 0-9 a-z, got \"%.40s\"; restore the file from a "
                    "backup",
                    path, META_INCARNATION_MAX, inc);
        json_decref (root);
        return FEDQ_ECORRUPT;
    }
    free (*broker_incarnation (broker));
    *broker_incarnation (broker) = strdup (inc ? inc : "");
    *broker_next_qid (broker) = s_uint (root, "next_qid");
    if (*broker_next_qid (broker) == 0)
        *broker_next_qid (broker) = 1;
    size_t i;
    json_t *item;
    json_array_foreach (json_object_get (root, "queues"), i, item) {
        const char *name = s_str (item, "name");
        uint64_t qid = s_uint (item, "qid");
        if (!name || !qid)
            continue;
        proto_qopts_t o = {0};
        o.durable = true;
        o.auto_delete = json_is_true (json_object_get (item, "auto_delete"));
        o.single_active_consumer = json_is_true (json_object_get (item, "sac"));
        o.max_priority = (uint8_t) s_uint (item, "max_priority");
        o.overflow = (uint8_t) s_uint (item, "overflow");
        o.max_length = s_uint (item, "max_length");
        o.max_bytes = s_uint (item, "max_bytes");
        o.message_ttl_ms = s_uint (item, "ttl");
        o.dedup_window_ms = s_uint (item, "dedup");
        o.dead_letter_exchange = fedq_str_of (s_str (item, "dlx"));
        o.dead_letter_routing_key = fedq_str_of (s_str (item, "dlk"));
        broker_queue_create (
          broker, name, qid, &o,
          json_is_true (json_object_get (item, "config")));
    }
    zhashx_t *xt = broker_exchange_table (broker);
    json_array_foreach (json_object_get (root, "exchanges"), i, item) {
        const char *name = s_str (item, "name");
        const char *type = s_str (item, "type");
        exchange_type_t t;
        if (!name || !type || exchange_type_parse (fedq_str_of (type), &t))
            continue;
        exchange_t *x = exchange_new (name, t);
        x->from_config = json_is_true (json_object_get (item, "config"));
        zhashx_insert (xt, name, x);
    }
    zhashx_t *qt = broker_queue_table (broker);
    json_array_foreach (json_object_get (root, "bindings"), i, item) {
        const char *xname = s_str (item, "exchange");
        const char *qname = s_str (item, "queue");
        const char *key = s_str (item, "key");
        exchange_t *x = xname ? zhashx_lookup (xt, xname) : NULL;
        queue_t *q = qname ? zhashx_lookup (qt, qname) : NULL;
        if (x && q && key)
            exchange_bind (x, q, key);
    }
    json_decref (root);
    return FEDQ_OK;
}
