//  node/http_metrics.c — the status document as Prometheus text (exposition
//  format 0.0.4). Each metric family is one row of a table: its name, type,
//  help text and the status field it comes from. A family's samples are
//  written together (the format wants one HELP/TYPE block per family), so
//  the loops run family by family, then link by link or queue by queue.
#include "http_metrics.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One metric family taken from one field of a link or queue object.
typedef struct {
    const char *name;           //  metric name
    const char *type;           //  "gauge" or "counter"
    const char *field;          //  field of the status object
    double divisor;             //  1000 for ms -> s, 1 for none
    const char *help;           //  HELP text
} s_family_t;

static const s_family_t s_link_families[] = {
  {"fedq_link_backlog_messages", "gauge", "backlog_messages", 1,
   "Messages not yet confirmed by the other side of the link."},
  {"fedq_link_backlog_bytes", "gauge", "backlog_bytes", 1,
   "Bytes of the messages not yet confirmed by the other side."},
  {"fedq_link_lag_seconds", "gauge", "lag_seconds", 1,
   "Age of the oldest message not yet confirmed, on the sending node's "
   "clock; 0 when none."},
  {"fedq_link_forwarded_total", "counter", "forwarded_total", 1,
   "Messages sent over the link for the first time."},
  {"fedq_link_resent_total", "counter", "resent_total", 1,
   "Messages sent again after a reconnect or a refusal."},
  {"fedq_link_confirmed_total", "counter", "confirmed_total", 1,
   "Messages the other side confirmed as durably stored."},
  {"fedq_link_duplicates_dropped_total", "counter",
   "duplicates_dropped_total", 1,
   "Resends the other side recognised and did not store again."},
  {"fedq_link_dead_lettered_total", "counter", "dead_lettered_total", 1,
   "Messages dead-lettered at the source after repeated refusals."},
  {"fedq_link_rejected_total", "counter", "rejected_total", 1,
   "Refusals reported by the other side."},
  {"fedq_link_reconnects_total", "counter", "reconnects_total", 1,
   "Times the link lost its connection and connected again."},
  {"fedq_link_loops_total", "counter", "loops_total", 1,
   "Messages refused because their path already had the peer."},
  {"fedq_link_forward_rate", "gauge", "forward_rate", 1,
   "Messages confirmed per second, smoothed."},
  {"fedq_link_window", "gauge", "window", 1,
   "Credit window: messages allowed in flight."},
  {"fedq_link_rtt_seconds", "gauge", "rtt_ms", 1000,
   "Round trip from send to confirm, smoothed."},
  {"fedq_link_lag_alert", "gauge", "lag_alert", 1,
   "1 while lag_seconds is above the link's lag_alert threshold."},
  {"fedq_link_backlog_alert", "gauge", "backlog_alert", 1,
   "1 while backlog_messages is above the link's backlog_alert "
   "threshold."},
  {"fedq_link_lag_alert_threshold_seconds", "gauge", "lag_alert_seconds", 1,
   "The link's lag_alert from the configuration; 0 = no alert."},
  {"fedq_link_backlog_alert_threshold_messages", "gauge",
   "backlog_alert_messages", 1,
   "The link's backlog_alert from the configuration; 0 = no alert."},
  //  Federation member pairs only.
  {"fedq_link_applied_total", "counter", "applied_total", 1,
   "Events received from the peer and applied here (federation)."},
  {"fedq_link_history_events", "gauge", "history_events", 1,
   "Events the federated queue keeps for its peers to sync from."},
  {"fedq_link_history_bytes", "gauge", "history_bytes", 1,
   "Body bytes of the events the federated queue keeps."},
  {"fedq_link_history_dropped_total", "counter", "history_dropped_total", 1,
   "History events dropped by history_max_messages / history_max_bytes "
   "before every member had them."},
  {"fedq_link_resync_total", "counter", "resync_total", 1,
   "Full resyncs sent to the peer (it lacked events below a history "
   "floor)."},
  {"fedq_link_resync_sent_total", "counter", "resync_sent_total", 1,
   "Live messages the full resyncs to the peer carried."},
  {"fedq_link_resync_skipped_total", "counter", "resync_skipped_total", 1,
   "Events the peer never got: dropped from the history before it had "
   "them, then consumed or expired here before its resync."},
  {"fedq_link_resync_removed_total", "counter", "resync_removed_total", 1,
   "Messages a full resync from the peer removed here (consume: global: "
   "consumed elsewhere while their tombstones left the history)."},
  {"fedq_link_incarnation_resets_total", "counter",
   "incarnation_resets_total", 1,
   "Times the peer came back without events of its own earlier "
   "incarnation (a lost or restored data directory)."},
  {"fedq_link_relays_skipped_total", "counter", "relays_skipped_total", 1,
   "Events not relayed to the peer because it gets their origin "
   "directly (federation, FED_DIRECT)."},
  {"fedq_link_errors_total", "counter", "errors_total", 1,
   "Events from the peer that could not be applied, and malformed "
   "frames (federation)."},
};

static const s_family_t s_queue_families[] = {
  {"fedq_queue_depth", "gauge", "depth", 1,
   "Messages in the queue: ready and unacknowledged."},
  {"fedq_queue_ready", "gauge", "ready", 1,
   "Messages waiting for a consumer."},
  {"fedq_queue_unacked", "gauge", "unacked", 1,
   "Messages delivered and not yet settled."},
  {"fedq_queue_held", "gauge", "held", 1,
   "consume: global messages from other members in their handoff delay."},
  {"fedq_queue_bytes", "gauge", "bytes", 1, "Bytes of the queue's messages."},
  {"fedq_queue_consumers", "gauge", "consumers", 1,
   "Consumers attached to the queue."},
  {"fedq_queue_published_total", "counter", "published_total", 1,
   "Messages routed into the queue."},
  {"fedq_queue_delivered_total", "counter", "delivered_total", 1,
   "Deliveries to consumers (redeliveries included)."},
  {"fedq_queue_acked_total", "counter", "acked_total", 1,
   "Deliveries acknowledged."},
  {"fedq_queue_dead_lettered_total", "counter", "dead_lettered_total", 1,
   "Messages dead-lettered from the queue."},
  {"fedq_queue_dropped_total", "counter", "dropped_total", 1,
   "Messages dropped by overflow, expiry or drop-head."},
  {"fedq_queue_duplicates_total", "counter", "duplicates_total", 1,
   "Re-publishes dropped by the queue's dedup_window."},
  {"fedq_queue_publish_rate", "gauge", "publish_rate", 1,
   "Messages routed into the queue per second, smoothed."},
  {"fedq_queue_deliver_rate", "gauge", "deliver_rate", 1,
   "Deliveries per second, smoothed."},
};

//  Store figures that are not the histogram.
static const s_family_t s_store_families[] = {
  {"fedq_store_bytes", "gauge", "bytes", 1, "Bytes of the node's log."},
  {"fedq_store_segments", "gauge", "segments", 1,
   "Segment files of the node's log."},
  {"fedq_store_commits_total", "counter", "commits", 1,
   "Group commits written to the log."},
  {"fedq_store_fsyncs_total", "counter", "fsyncs", 1,
   "fdatasync calls on the log."},
  {"fedq_store_live_refs", "gauge", "live_refs", 1,
   "Unsettled message references held by the log."},
  {"fedq_store_corrupt_reads_total", "counter", "corrupt_reads", 1,
   "Reads that failed their checksum."},
};

//  Help texts of the node's counters (node.stats); a field not listed
//  here is still exported, with a generic help text.
static const struct {
    const char *field;
    const char *help;
} s_node_help[] = {
  {"published_total", "Messages accepted from publishers and links."},
  {"confirmed_total", "Publishes confirmed to their publisher."},
  {"unroutable_total", "Publishes no queue was bound for."},
  {"duplicates_total", "Publishes dropped as duplicates."},
  {"delivered_total", "Deliveries to consumers."},
  {"acked_total", "Deliveries acknowledged."},
  {"dead_lettered_total", "Messages dead-lettered."},
  {"expired_total", "Messages expired by their TTL."},
  {"commit_errors_total", "Log commits that failed."},
  {"corrupt_total", "Stored messages found corrupt."},
  {"bad_frames_total", "Malformed frames answered with an error."},
  {"auth_refused_total",
   "CURVE handshakes and frames refused by the authorized keys."},
  {"digest_mismatch_total", "Shovel messages whose body failed its digest."},
};

static const char *s_link_states[]
  = {"starting", "running", "reconnecting", "blocked", "stopped"};

#define S_COUNT(a) (sizeof (a) / sizeof (a)[0])

//  --------------------------------------------------------------------
//  Writing

static void
    s_printf (fedq_buf_t *buf, const char *fmt, ...)
      __attribute__ ((format (printf, 2, 3)));

static void
s_printf (fedq_buf_t *buf, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    int n = vsnprintf (NULL, 0, fmt, args);
    va_end (args);
    if (n <= 0)
        return;
    fedq_buf_reserve (buf, (size_t) n + 1);
    va_start (args, fmt);
    vsnprintf ((char *) buf->data + buf->size, (size_t) n + 1, fmt, args);
    va_end (args);
    buf->size += (size_t) n;
}

static void
s_puts (fedq_buf_t *buf, const char *text)
{
    fedq_buf_append (buf, text, strlen (text));
}

void
http_metrics_escape_label (fedq_buf_t *buf, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            s_puts (buf, "\\\\");
        else if (*p == '"')
            s_puts (buf, "\\\"");
        else if (*p == '\n')
            s_puts (buf, "\\n");
        else
            fedq_buf_append (buf, p, 1);
    }
}

//  A float as the format wants it: the shortest of %.15g / %.17g that
//  reads back the same, NaN and +Inf / -Inf spelled out.
static void
s_double (fedq_buf_t *buf, double v)
{
    if (isnan (v))
        s_puts (buf, "NaN");
    else if (isinf (v))
        s_puts (buf, v > 0 ? "+Inf" : "-Inf");
    else {
        char text[64];
        snprintf (text, sizeof text, "%.15g", v);
        if (strtod (text, NULL) != v)
            snprintf (text, sizeof text, "%.17g", v);
        s_puts (buf, text);
    }
}

//  Write a JSON number (divided by divisor: a division keeps 12.5 ms
//  0.0125 s exactly) or boolean as a sample value; false when value is
//  missing, null or not a number.
static bool
s_value (fedq_buf_t *buf, const json_t *value, double divisor)
{
    if (json_is_integer (value) && divisor == 1)
        s_printf (buf, "%" JSON_INTEGER_FORMAT, json_integer_value (value));
    else if (json_is_number (value))
        s_double (buf, json_number_value (value) / divisor);
    else if (json_is_boolean (value))
        s_puts (buf, json_is_true (value) ? "1" : "0");
    else
        return false;
    return true;
}

//  HELP text escapes only backslash and line feed.
static void
s_family_header (fedq_buf_t *buf, const char *name, const char *type,
                 const char *help)
{
    s_printf (buf, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            s_puts (buf, "\\\\");
        else if (*p == '\n')
            s_puts (buf, "\\n");
        else
            fedq_buf_append (buf, p, 1);
    }
    s_printf (buf, "\n# TYPE %s %s\n", name, type);
}

//  One sample line: NAME{LABELS} VALUE, or NAME VALUE without labels.
static void
s_sample (fedq_buf_t *buf, const char *name, const char *labels,
          const json_t *value, double divisor)
{
    size_t mark = buf->size;
    if (labels && *labels)
        s_printf (buf, "%s{%s} ", name, labels);
    else
        s_printf (buf, "%s ", name);
    if (s_value (buf, value, divisor))
        s_puts (buf, "\n");
    else
        buf->size = mark;
}

//  Append label="value" (with a comma before it unless first).
static void
s_label (fedq_buf_t *buf, const char *label, const char *value)
{
    if (buf->size)
        s_puts (buf, ",");
    s_printf (buf, "%s=\"", label);
    http_metrics_escape_label (buf, value ? value : "");
    s_puts (buf, "\"");
}

//  A string field of obj, "" when missing.
static const char *
s_str (const json_t *obj, const char *field)
{
    const char *s = json_string_value (json_object_get (obj, field));
    return s ? s : "";
}

//  The label set of each element of an array, as NUL-terminated text.
static char **
s_label_sets (const json_t *array, bool links)
{
    size_t n = json_array_size (array);
    char **sets = calloc (n + 1, sizeof *sets);
    if (!sets)
        abort ();
    for (size_t i = 0; i < n; i++) {
        const json_t *obj = json_array_get (array, i);
        fedq_buf_t labels = {0};
        if (links) {
            s_label (&labels, "link", s_str (obj, "name"));
            s_label (&labels, "kind", s_str (obj, "kind"));
            s_label (&labels, "peer", s_str (obj, "peer"));
        }
        else
            s_label (&labels, "queue", s_str (obj, "name"));
        fedq_buf_append (&labels, "", 1);
        sets[i] = (char *) labels.data;
    }
    return sets;
}

static void
s_label_sets_free (char **sets)
{
    for (size_t i = 0; sets && sets[i]; i++)
        free (sets[i]);
    free (sets);
}

//  Every family of the table over every object of the array: a family
//  with no sample at all (no object has the field) is left out.
static void
s_families (fedq_buf_t *buf, const s_family_t *families, size_t nfamilies,
            const json_t *array, char *const *sets)
{
    for (size_t f = 0; f < nfamilies; f++) {
        const s_family_t *fam = &families[f];
        size_t header = buf->size;
        s_family_header (buf, fam->name, fam->type, fam->help);
        size_t body = buf->size;
        for (size_t i = 0; i < json_array_size (array); i++)
            s_sample (buf, fam->name, sets[i],
                      json_object_get (json_array_get (array, i), fam->field),
                      fam->divisor);
        if (buf->size == body)
            buf->size = header;
    }
}

//  --------------------------------------------------------------------
//  Sections

static void
s_links (fedq_buf_t *buf, const json_t *links)
{
    if (!json_array_size (links))
        return;
    char **sets = s_label_sets (links, true);
    s_families (buf, s_link_families, S_COUNT (s_link_families), links, sets);

    //  One sample per possible state, 1 for the link's current one.
    s_family_header (buf, "fedq_link_state", "gauge",
                     "1 for the link's current state (starting, running, "
                     "reconnecting, blocked, stopped), 0 for the others.");
    for (size_t i = 0; i < json_array_size (links); i++) {
        const char *state = s_str (json_array_get (links, i), "state");
        bool known = false;
        for (size_t s = 0; s < S_COUNT (s_link_states); s++) {
            bool on = strcmp (state, s_link_states[s]) == 0;
            known |= on;
            s_printf (buf, "fedq_link_state{%s,state=\"%s\"} %d\n", sets[i],
                      s_link_states[s], on ? 1 : 0);
        }
        if (!known && *state) {
            s_printf (buf, "fedq_link_state{%s,state=\"", sets[i]);
            http_metrics_escape_label (buf, state);
            s_puts (buf, "\"} 1\n");
        }
    }

    s_family_header (buf, "fedq_link_info", "gauge",
                     "Always 1: the link's source queue (or federated "
                     "queue) and destination endpoint.");
    for (size_t i = 0; i < json_array_size (links); i++) {
        const json_t *link = json_array_get (links, i);
        fedq_buf_t labels = {0};
        fedq_buf_append (&labels, sets[i], strlen (sets[i]));
        //  A shovel's source queue; a federation pair's federated queue.
        const char *source = s_str (link, "source");
        s_label (&labels, "source", *source ? source : s_str (link, "queue"));
        s_label (&labels, "endpoint", s_str (link, "endpoint"));
        s_printf (buf, "fedq_link_info{%.*s} 1\n", (int) labels.size,
                  (const char *) labels.data);
        fedq_buf_free (&labels);
    }
    s_label_sets_free (sets);
}

static void
s_queues (fedq_buf_t *buf, const json_t *queues)
{
    if (!json_array_size (queues))
        return;
    char **sets = s_label_sets (queues, false);
    s_families (buf, s_queue_families, S_COUNT (s_queue_families), queues,
                sets);
    s_label_sets_free (sets);
}

//  fedq_store_fsync_seconds: the document has counts per bucket (not
//  cumulative) and upper bounds in seconds, the last one null (+Inf).
static void
s_fsync_histogram (fedq_buf_t *buf, const json_t *store)
{
    const json_t *counts = json_object_get (store, "fsync_hist");
    const json_t *bounds = json_object_get (store, "fsync_hist_le");
    size_t n = json_array_size (counts);
    if (n == 0 || n != json_array_size (bounds))
        return;
    s_family_header (buf, "fedq_store_fsync_seconds", "histogram",
                     "Time spent in each fdatasync of the log.");
    json_int_t total = 0;
    bool inf_seen = false;
    for (size_t i = 0; i < n; i++) {
        total += json_integer_value (json_array_get (counts, i));
        const json_t *le = json_array_get (bounds, i);
        s_puts (buf, "fedq_store_fsync_seconds_bucket{le=\"");
        if (json_is_number (le))
            s_double (buf, json_number_value (le));
        else {
            s_puts (buf, "+Inf");
            inf_seen = true;
        }
        s_printf (buf, "\"} %" JSON_INTEGER_FORMAT "\n", total);
        if (inf_seen)
            break;
    }
    if (!inf_seen)
        s_printf (buf,
                  "fedq_store_fsync_seconds_bucket{le=\"+Inf\"} "
                  "%" JSON_INTEGER_FORMAT "\n",
                  total);
    s_puts (buf, "fedq_store_fsync_seconds_sum ");
    s_double (buf, json_number_value (json_object_get (store,
                                                        "fsync_us_total"))
                     / 1e6);
    s_printf (buf, "\nfedq_store_fsync_seconds_count %" JSON_INTEGER_FORMAT
                   "\n",
              total);
}

//  A counter or gauge named fedq_node_FIELD for each field of node.stats.
static void
s_node_stats (fedq_buf_t *buf, const json_t *stats)
{
    const char *field;
    const json_t *value;
    json_object_foreach ((json_t *) stats, field, value) {
        if (!json_is_number (value))
            continue;
        char name[128];
        snprintf (name, sizeof name, "fedq_node_%s", field);
        for (char *p = name; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                  || (*p >= '0' && *p <= '9') || *p == '_'))
                *p = '_';
        size_t len = strlen (field);
        bool counter = len > 6 && strcmp (field + len - 6, "_total") == 0;
        const char *help = "See node.stats in GET /status.";
        for (size_t i = 0; i < S_COUNT (s_node_help); i++)
            if (strcmp (s_node_help[i].field, field) == 0)
                help = s_node_help[i].help;
        s_family_header (buf, name, counter ? "counter" : "gauge", help);
        s_sample (buf, name, NULL, value, 1);
    }
}

//  One unlabelled sample of its own family, when the field is there.
static void
s_single (fedq_buf_t *buf, const char *name, const char *type,
          const char *help, const json_t *value, double divisor)
{
    if (!json_is_number (value))
        return;
    s_family_header (buf, name, type, help);
    s_sample (buf, name, NULL, value, divisor);
}

static void
s_node (fedq_buf_t *buf, const json_t *node)
{
    if (!json_is_object (node))
        return;
    fedq_buf_t labels = {0};
    s_label (&labels, "node", s_str (node, "id"));
    s_label (&labels, "version", s_str (node, "version"));
    s_family_header (buf, "fedq_node_info", "gauge",
                     "Always 1: the node's id and version.");
    s_printf (buf, "fedq_node_info{%.*s} 1\n", (int) labels.size,
              (const char *) labels.data);
    fedq_buf_free (&labels);

    s_single (buf, "fedq_node_uptime_seconds", "gauge",
              "Seconds since the node started.",
              json_object_get (node, "uptime_s"), 1);
    s_single (buf, "fedq_node_config_generation", "gauge",
              "1 at start, +1 per successful reload (SIGHUP).",
              json_object_get (node, "config_generation"), 1);
    s_single (buf, "fedq_node_config_loaded_timestamp_seconds", "gauge",
              "Unix time at which the running configuration was loaded.",
              json_object_get (node, "config_loaded_at"), 1000);
    s_single (buf, "fedq_node_sessions", "gauge",
              "Client and peer sessions connected to the node.",
              json_object_get (node, "sessions"), 1);
    s_node_stats (buf, json_object_get (node, "stats"));

    const json_t *store = json_object_get (node, "store");
    if (json_is_object (store)) {
        json_t *one = json_array ();
        json_array_append ((json_t *) one, (json_t *) store);
        char none[1] = "";
        char *const empty[] = {none, NULL};
        s_families (buf, s_store_families, S_COUNT (s_store_families), one,
                    empty);
        json_decref (one);
        s_fsync_histogram (buf, store);
    }
}

//  --------------------------------------------------------------------

char *
http_metrics_render (const char *status_json, size_t *size_p)
{
    if (!status_json)
        return NULL;
    json_t *root = json_loads (status_json, 0, NULL);
    if (!json_is_object (root)) {
        json_decref (root);
        return NULL;
    }
    fedq_buf_t buf = {0};
    fedq_buf_reserve (&buf, 16384);
    s_node (&buf, json_object_get (root, "node"));
    s_links (&buf, json_object_get (root, "links"));
    s_queues (&buf, json_object_get (root, "queues"));
    json_decref (root);
    fedq_buf_append (&buf, "", 1);
    if (size_p)
        *size_p = buf.size - 1;
    return (char *) buf.data;
}
