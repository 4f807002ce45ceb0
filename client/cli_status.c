//  client/cli_status.c — the readable views of a node's status JSON:
//  `fedq status` (node, queues, links) and `fedq lag` (per-link lag).
//  Renders whatever fields are present; a missing one shows as "-".
#define _GNU_SOURCE
#include "cli.h"

#include <inttypes.h>
#include <jansson.h>
#include <string.h>
#include <time.h>

static void
s_puts (fedq_buf_t *out, const char *text)
{
    fedq_buf_append (out, text, strlen (text));
}

//  A string field, or NULL.
static const char *
s_str (json_t *obj, const char *key)
{
    json_t *v = json_object_get (obj, key);
    return json_is_string (v) ? json_string_value (v) : NULL;
}

//  A string field, or "-".
static const char *
s_str_or_dash (json_t *obj, const char *key)
{
    const char *v = s_str (obj, key);
    return v && *v ? v : "-";
}

//  A number field into *value; false when absent or not a number.
static bool
s_num (json_t *obj, const char *key, double *value)
{
    json_t *v = json_object_get (obj, key);
    if (!json_is_number (v))
        return false;
    *value = json_number_value (v);
    return true;
}

//  A count ("12"), or "-".
static void
s_count (json_t *obj, const char *key, char *buf, size_t size)
{
    double v;
    if (s_num (obj, key, &v))
        snprintf (buf, size, "%.0f", v);
    else
        snprintf (buf, size, "-");
}

//  A byte size ("1.5 MiB"), or "-".
static void
s_bytes (json_t *obj, const char *key, char *buf, size_t size)
{
    double v;
    if (s_num (obj, key, &v) && v >= 0)
        cli_human_bytes ((uint64_t) v, buf, size);
    else
        snprintf (buf, size, "-");
}

//  A rate per second ("12.5/s"), or "-".
static void
s_rate (json_t *obj, const char *key, char *buf, size_t size)
{
    double v;
    if (s_num (obj, key, &v))
        snprintf (buf, size, "%.1f/s", v);
    else
        snprintf (buf, size, "-");
}

//  An age in seconds ("1.5s", "3m07s"), or "-".
static void
s_age (json_t *obj, const char *key, char *buf, size_t size)
{
    double v;
    if (s_num (obj, key, &v))
        cli_human_duration (v, buf, size);
    else
        snprintf (buf, size, "-");
}

//  A boolean field: "yes", "no" or "-".
static const char *
s_yes_no (json_t *obj, const char *key)
{
    json_t *v = json_object_get (obj, key);
    return json_is_boolean (v) ? (json_is_true (v) ? "yes" : "no") : "-";
}

//  Which alerts are raised: "LAG", "BACKLOG", "LAG,BACKLOG" or "-".
static void
s_alerts (json_t *link, char *buf, size_t size)
{
    bool lag = json_is_true (json_object_get (link, "lag_alert"));
    bool backlog = json_is_true (json_object_get (link, "backlog_alert"));
    snprintf (buf, size, "%s%s%s", lag ? "LAG" : "",
              lag && backlog ? "," : "", backlog ? "BACKLOG" : "");
    if (!lag && !backlog)
        snprintf (buf, size, "-");
}

static json_t *
s_load (const char *json, char *error, size_t error_size)
{
    json_error_t jerr;
    json_t *root = json_loads (json ? json : "", 0, &jerr);
    if (!root) {
        snprintf (error, error_size, "status is not JSON: %s at line %d",
                  jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object (root)) {
        snprintf (error, error_size, "status is not a JSON object");
        json_decref (root);
        return NULL;
    }
    return root;
}

//  "loaded at": ms (or s) since the epoch, or a string as given.
static void
s_when (json_t *v, char *buf, size_t size)
{
    if (json_is_string (v)) {
        snprintf (buf, size, "%s", json_string_value (v));
        return;
    }
    double t = json_number_value (v);
    if (t > 1e11)
        t /= 1000;      //  ms since the epoch
    time_t secs = (time_t) t;
    struct tm tm;
    if (localtime_r (&secs, &tm))
        strftime (buf, size, "%Y-%m-%d %H:%M:%S", &tm);
    else
        snprintf (buf, size, "%.0f", t);
}

static void
s_render_node (json_t *node, fedq_buf_t *out)
{
    char line[1024], a[64], b[64];
    snprintf (line, sizeof line, "node     %s", s_str_or_dash (node, "id"));
    s_puts (out, line);
    const char *version = s_str (node, "version");
    double uptime;
    if (version) {
        snprintf (line, sizeof line, "  fedq %s", version);
        s_puts (out, line);
    }
    if (s_num (node, "uptime_s", &uptime)) {
        cli_human_duration (uptime, a, sizeof a);
        snprintf (line, sizeof line, "  up %s", a);
        s_puts (out, line);
    }
    s_puts (out, "\n");
    double generation = 0;
    json_t *loaded = json_object_get (node, "config_loaded_at");
    if (s_num (node, "config_generation", &generation) || loaded) {
        s_puts (out, "config   ");
        if (json_is_number (json_object_get (node, "config_generation"))) {
            snprintf (line, sizeof line, "generation %.0f", generation);
            s_puts (out, line);
        }
        if (json_is_number (loaded) || json_is_string (loaded)) {
            s_when (loaded, a, sizeof a);
            snprintf (line, sizeof line, ", loaded %s", a);
            s_puts (out, line);
        }
        s_puts (out, "\n");
    }
    json_t *store = json_object_get (node, "store");
    const char *fsync = s_str (node, "fsync");
    if (json_is_object (store) || fsync) {
        s_puts (out, "store    ");
        if (json_is_object (store)) {
            s_bytes (store, "bytes", a, sizeof a);
            s_count (store, "segments", b, sizeof b);
            snprintf (line, sizeof line, "%s in %s segments", a, b);
            s_puts (out, line);
        }
        if (fsync) {
            snprintf (line, sizeof line, "%sfsync %s",
                      json_is_object (store) ? ", " : "", fsync);
            s_puts (out, line);
        }
        s_puts (out, "\n");
    }
}

static void
s_render_queues (json_t *queues, fedq_buf_t *out)
{
    if (!json_is_array (queues) || json_array_size (queues) == 0) {
        s_puts (out, "no queues\n");
        return;
    }
    cli_table_t *t = cli_table_new ("QUEUE", "DEPTH", "BYTES", "CONSUMERS",
                                    "UNACKED", "IN", "OUT", "DURABLE", NULL);
    for (size_t col = 1; col <= 6; col++)
        cli_table_align_right (t, col);
    size_t i;
    json_t *q;
    char buf[64];
    json_array_foreach (queues, i, q) {
        cli_table_add (t, "%s", s_str_or_dash (q, "name"));
        s_count (q, "depth", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_bytes (q, "bytes", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_count (q, "consumers", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_count (q, "unacked", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_rate (q, "publish_rate", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_rate (q, "deliver_rate", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        cli_table_add (t, "%s", s_yes_no (q, "durable"));
    }
    cli_table_render (t, out);
    cli_table_destroy (&t);
}

static void
s_render_links (json_t *links, fedq_buf_t *out)
{
    if (!json_is_array (links) || json_array_size (links) == 0) {
        s_puts (out, "no links (no shovels or federated queues configured)\n");
        return;
    }
    cli_table_t *t = cli_table_new ("LINK", "KIND", "PEER", "STATE",
                                    "BACKLOG", "LAG", "RATE", "ALERT", NULL);
    cli_table_align_right (t, 4);
    cli_table_align_right (t, 5);
    cli_table_align_right (t, 6);
    size_t i;
    json_t *l;
    char buf[64];
    json_array_foreach (links, i, l) {
        cli_table_add (t, "%s", s_str_or_dash (l, "name"));
        cli_table_add (t, "%s", s_str_or_dash (l, "kind"));
        cli_table_add (t, "%s", s_str_or_dash (l, "peer"));
        cli_table_add (t, "%s", s_str_or_dash (l, "state"));
        s_count (l, "backlog_messages", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_age (l, "lag_seconds", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_rate (l, "forward_rate", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_alerts (l, buf, sizeof buf);
        cli_table_add (t, "%s", buf);
    }
    cli_table_render (t, out);
    cli_table_destroy (&t);
}

fedq_rc_t
cli_status_render (const char *json, fedq_buf_t *out, char *error,
                   size_t error_size)
{
    json_t *root = s_load (json, error, error_size);
    if (!root)
        return FEDQ_EPROTO;
    json_t *node = json_object_get (root, "node");
    if (json_is_object (node)) {
        s_render_node (node, out);
        s_puts (out, "\n");
    }
    s_render_queues (json_object_get (root, "queues"), out);
    s_puts (out, "\n");
    s_render_links (json_object_get (root, "links"), out);
    json_decref (root);
    return FEDQ_OK;
}

fedq_rc_t
cli_lag_render (const char *json, fedq_buf_t *out, char *error,
                size_t error_size)
{
    json_t *root = s_load (json, error, error_size);
    if (!root)
        return FEDQ_EPROTO;
    json_t *links = json_object_get (root, "links");
    if (!json_is_array (links) || json_array_size (links) == 0) {
        s_puts (out, "no links (no shovels or federated queues configured)\n");
        json_decref (root);
        return FEDQ_OK;
    }
    cli_table_t *t
        = cli_table_new ("LINK", "KIND", "PEER", "STATE", "BACKLOG", "BYTES",
                         "LAG", "RATE", "LAST ERROR", NULL);
    for (size_t col = 4; col <= 7; col++)
        cli_table_align_right (t, col);
    size_t i;
    json_t *l;
    char buf[64];
    json_array_foreach (links, i, l) {
        bool alert = json_is_true (json_object_get (l, "lag_alert"))
                     || json_is_true (json_object_get (l, "backlog_alert"));
        //  A raised alert marks the name, so it stands out in --watch.
        cli_table_add (t, "%s%s", s_str_or_dash (l, "name"),
                       alert ? " (!)" : "");
        cli_table_add (t, "%s", s_str_or_dash (l, "kind"));
        cli_table_add (t, "%s", s_str_or_dash (l, "peer"));
        cli_table_add (t, "%s", s_str_or_dash (l, "state"));
        s_count (l, "backlog_messages", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_bytes (l, "backlog_bytes", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_age (l, "lag_seconds", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        s_rate (l, "forward_rate", buf, sizeof buf);
        cli_table_add (t, "%s", buf);
        cli_table_add (t, "%s", s_str_or_dash (l, "last_error"));
    }
    cli_table_render (t, out);
    cli_table_destroy (&t);
    json_decref (root);
    return FEDQ_OK;
}
