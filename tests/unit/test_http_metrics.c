//  tests/unit/test_http_metrics.c — the status document as Prometheus text
//  (node/http_metrics.c): exact sample lines, label escaping, one block
//  per family, cumulative histogram buckets.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A status document as node_status_json writes it, cut down, with a
//  link name that needs every escape of the format.
static const char *s_doc
  = "{\"node\":{\"id\":\"sydney\",\"version\":\"0.1.0\",\"uptime_s\":42,"
    "\"config_generation\":3,\"config_loaded_at\":1700000000500,"
    "\"fsync\":\"batch\",\"listen\":\"tcp://127.0.0.1:5680\","
    "\"store\":{\"bytes\":4096,\"segments\":2,\"commits\":10,\"fsyncs\":9,"
    "\"live_refs\":5,\"corrupt_reads\":0,\"fsync_us_total\":1500000,"
    "\"fsync_hist\":[1,2,0,3],\"fsync_hist_le\":[0.001,0.01,0.1,null]},"
    "\"stats\":{\"published_total\":7,\"bad_frames_total\":1,"
    "\"future_gauge\":4},"
    "\"sessions\":2},"
    "\"queues\":[{\"name\":\"outbox\",\"depth\":500,\"ready\":480,"
    "\"unacked\":20,\"bytes\":51200,\"consumers\":1,\"durable\":true,"
    "\"published_total\":900,\"delivered_total\":420,\"acked_total\":400,"
    "\"dead_lettered_total\":0,\"dropped_total\":0,\"duplicates_total\":0,"
    "\"publish_rate\":12.5,\"deliver_rate\":0,\"shovel\":\"out\"},"
    "{\"name\":\"inbox\",\"depth\":0}],"
    "\"links\":[{\"name\":\"to \\\"b\\\"\\\\x\\nnext\",\"kind\":\"shovel\","
    "\"peer\":\"melbourne\",\"state\":\"blocked\",\"source\":\"outbox\","
    "\"backlog_messages\":500,\"backlog_bytes\":51200,\"lag_seconds\":2.5,"
    "\"forwarded_total\":520,\"resent_total\":20,\"confirmed_total\":400,"
    "\"duplicates_dropped_total\":3,\"dead_lettered_total\":0,"
    "\"rejected_total\":1,\"reconnects_total\":2,\"loops_total\":0,"
    "\"forward_rate\":0.1,\"window\":1000,\"rtt_ms\":12.5,\"lag_alert\":true,"
    "\"backlog_alert\":false,\"last_error\":\"no confirm\","
    "\"lag_alert_seconds\":1,\"backlog_alert_messages\":0,"
    "\"endpoint\":\"tcp://127.0.0.1:5681\"},"
    "{\"name\":\"audit\",\"kind\":\"federation\",\"peer\":\"perth\","
    "\"queue\":\"audit\",\"state\":\"syncing\",\"backlog_messages\":0,"
    "\"lag_seconds\":0,\"applied_total\":77,\"history_events\":9}]}";

static char *
s_render (const char *doc)
{
    size_t size = 0;
    char *text = http_metrics_render (doc, &size);
    assert_non_null (text);
    assert_int_equal (strlen (text), size);
    return text;
}

//  True when text holds line as a whole line.
static bool
s_has_line (const char *text, const char *line)
{
    size_t len = strlen (line);
    for (const char *p = strstr (text, line); p; p = strstr (p + 1, line))
        if ((p == text || p[-1] == '\n') && p[len] == '\n')
            return true;
    return false;
}

#define assert_line(text, line)                                              \
    do {                                                                     \
        if (!s_has_line ((text), (line)))                                    \
            fail_msg ("missing line: %s\n--- exposition\n%s", (line),        \
                      (text));                                               \
    } while (0)

static void
test_link_lines (void **state)
{
    char *text = s_render (s_doc);
    const char *l = "link=\"to \\\"b\\\"\\\\x\\nnext\",kind=\"shovel\","
                    "peer=\"melbourne\"";
    char line[512];
    struct {
        const char *name;
        const char *value;
    } expect[] = {
      {"fedq_link_backlog_messages", "500"},
      {"fedq_link_backlog_bytes", "51200"},
      {"fedq_link_lag_seconds", "2.5"},
      {"fedq_link_forwarded_total", "520"},
      {"fedq_link_resent_total", "20"},
      {"fedq_link_confirmed_total", "400"},
      {"fedq_link_duplicates_dropped_total", "3"},
      {"fedq_link_dead_lettered_total", "0"},
      {"fedq_link_rejected_total", "1"},
      {"fedq_link_reconnects_total", "2"},
      {"fedq_link_forward_rate", "0.1"},
      {"fedq_link_window", "1000"},
      {"fedq_link_rtt_seconds", "0.0125"},
      {"fedq_link_lag_alert", "1"},
      {"fedq_link_backlog_alert", "0"},
      {"fedq_link_lag_alert_threshold_seconds", "1"},
      {"fedq_link_backlog_alert_threshold_messages", "0"},
    };
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        snprintf (line, sizeof line, "%s{%s} %s", expect[i].name, l,
                  expect[i].value);
        assert_line (text, line);
    }
    assert_line (text, "# TYPE fedq_link_lag_seconds gauge");
    assert_line (text, "# TYPE fedq_link_confirmed_total counter");
    assert_line (text, "# HELP fedq_link_lag_seconds Age of the oldest "
                       "message not yet confirmed, on the sending node's "
                       "clock; 0 when none.");

    //  One sample per state, 1 for the current one.
    static const char *states[]
      = {"starting", "running", "reconnecting", "blocked", "stopped"};
    for (size_t i = 0; i < 5; i++) {
        snprintf (line, sizeof line, "fedq_link_state{%s,state=\"%s\"} %d",
                  l, states[i], strcmp (states[i], "blocked") == 0);
        assert_line (text, line);
    }
    //  A state this renderer does not know is shown too, as 1.
    assert_line (text, "fedq_link_state{link=\"audit\",kind=\"federation\","
                       "peer=\"perth\",state=\"syncing\"} 1");
    assert_line (text, "fedq_link_state{link=\"audit\",kind=\"federation\","
                       "peer=\"perth\",state=\"running\"} 0");
    snprintf (line, sizeof line,
              "fedq_link_info{%s,source=\"outbox\","
              "endpoint=\"tcp://127.0.0.1:5681\"} 1",
              l);
    assert_line (text, line);

    //  The federation link lacks most fields: only those it has.
    assert_line (text, "fedq_link_backlog_messages{link=\"audit\","
                       "kind=\"federation\",peer=\"perth\"} 0");
    assert_null (strstr (text, "fedq_link_window{link=\"audit\""));
    assert_line (text, "fedq_link_applied_total{link=\"audit\","
                       "kind=\"federation\",peer=\"perth\"} 77");
    assert_line (text, "fedq_link_history_events{link=\"audit\","
                       "kind=\"federation\",peer=\"perth\"} 9");
    assert_line (text, "fedq_link_info{link=\"audit\",kind=\"federation\","
                       "peer=\"perth\",source=\"audit\",endpoint=\"\"} 1");
    //  Shovels have no applied_total: no sample for them.
    assert_null (strstr (text, "fedq_link_applied_total{link=\"to"));
    free (text);
}

static void
test_queue_and_node_lines (void **state)
{
    char *text = s_render (s_doc);
    assert_line (text, "fedq_queue_depth{queue=\"outbox\"} 500");
    assert_line (text, "fedq_queue_ready{queue=\"outbox\"} 480");
    assert_line (text, "fedq_queue_unacked{queue=\"outbox\"} 20");
    assert_line (text, "fedq_queue_bytes{queue=\"outbox\"} 51200");
    assert_line (text, "fedq_queue_consumers{queue=\"outbox\"} 1");
    assert_line (text, "fedq_queue_published_total{queue=\"outbox\"} 900");
    assert_line (text, "fedq_queue_delivered_total{queue=\"outbox\"} 420");
    assert_line (text, "fedq_queue_acked_total{queue=\"outbox\"} 400");
    assert_line (text, "fedq_queue_dead_lettered_total{queue=\"outbox\"} 0");
    assert_line (text, "fedq_queue_publish_rate{queue=\"outbox\"} 12.5");
    assert_line (text, "fedq_queue_deliver_rate{queue=\"outbox\"} 0");
    assert_line (text, "fedq_queue_depth{queue=\"inbox\"} 0");
    assert_null (strstr (text, "fedq_queue_ready{queue=\"inbox\"}"));
    assert_line (text, "# TYPE fedq_queue_published_total counter");

    assert_line (text, "fedq_node_info{node=\"sydney\",version=\"0.1.0\"} 1");
    assert_line (text, "fedq_node_uptime_seconds 42");
    assert_line (text, "fedq_node_config_generation 3");
    assert_line (text, "fedq_node_config_loaded_timestamp_seconds "
                       "1700000000.5");
    assert_line (text, "fedq_node_sessions 2");
    assert_line (text, "fedq_node_published_total 7");
    assert_line (text, "# TYPE fedq_node_published_total counter");
    assert_line (text, "fedq_node_bad_frames_total 1");
    //  A stats field added later is exported, as a gauge unless _total.
    assert_line (text, "# TYPE fedq_node_future_gauge gauge");
    assert_line (text, "fedq_node_future_gauge 4");
    assert_line (text, "fedq_store_bytes 4096");
    assert_line (text, "fedq_store_segments 2");
    assert_line (text, "fedq_store_commits_total 10");
    assert_line (text, "fedq_store_fsyncs_total 9");
    assert_line (text, "# TYPE fedq_store_fsyncs_total counter");
    assert_line (text, "fedq_store_live_refs 5");
    free (text);
}

static void
test_histogram_cumulative (void **state)
{
    char *text = s_render (s_doc);
    assert_line (text, "# TYPE fedq_store_fsync_seconds histogram");
    //  Counts per bucket 1, 2, 0, 3 -> cumulative 1, 3, 3, 6.
    const char *expect
      = "fedq_store_fsync_seconds_bucket{le=\"0.001\"} 1\n"
        "fedq_store_fsync_seconds_bucket{le=\"0.01\"} 3\n"
        "fedq_store_fsync_seconds_bucket{le=\"0.1\"} 3\n"
        "fedq_store_fsync_seconds_bucket{le=\"+Inf\"} 6\n"
        "fedq_store_fsync_seconds_sum 1.5\n"
        "fedq_store_fsync_seconds_count 6\n";
    if (!strstr (text, expect))
        fail_msg ("histogram block not found:\n%s\n--- exposition\n%s",
                  expect, text);
    free (text);

    //  Bounds without a final null still end with +Inf.
    text = s_render (
      "{\"node\":{\"id\":\"n\",\"store\":{\"fsync_us_total\":250,"
      "\"fsync_hist\":[4,1],\"fsync_hist_le\":[0.00005,0.0001]}}}");
    expect = "fedq_store_fsync_seconds_bucket{le=\"5e-05\"} 4\n"
             "fedq_store_fsync_seconds_bucket{le=\"0.0001\"} 5\n"
             "fedq_store_fsync_seconds_bucket{le=\"+Inf\"} 5\n"
             "fedq_store_fsync_seconds_sum 0.00025\n"
             "fedq_store_fsync_seconds_count 5\n";
    if (!strstr (text, expect))
        fail_msg ("histogram block not found:\n%s\n--- exposition\n%s",
                  expect, text);
    free (text);
}

//  The format wants each family in one block: HELP and TYPE once, then
//  every sample of it, before the next family begins.
static void
test_families_are_blocks (void **state)
{
    char *text = s_render (s_doc);
    char family[128] = "";
    char seen[8192] = " ";
    int samples = 0;
    for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n")) {
        if (strncmp (line, "# HELP ", 7) == 0)
            continue;
        if (strncmp (line, "# TYPE ", 7) == 0) {
            assert_int_equal (sscanf (line + 7, "%127s", family), 1);
            char key[132];
            snprintf (key, sizeof key, " %s ", family);
            if (strstr (seen, key))
                fail_msg ("family %s appears twice", family);
            strncat (seen, key + 1, sizeof seen - strlen (seen) - 1);
            continue;
        }
        assert_true (line[0] != '#');
        if (strncmp (line, family, strlen (family)) != 0)
            fail_msg ("sample outside its family block (%s): %s", family,
                      line);
        char next = line[strlen (family)];
        assert_true (next == '{' || next == ' ' || next == '_');
        samples++;
    }
    assert_true (samples > 60);
    free (text);
}

static void
test_escape_and_bad_input (void **state)
{
    fedq_buf_t buf = {0};
    http_metrics_escape_label (&buf, "a\"b\\c\nd\te");
    fedq_buf_append (&buf, "", 1);
    assert_string_equal ((char *) buf.data, "a\\\"b\\\\c\\nd\te");
    fedq_buf_free (&buf);

    assert_null (http_metrics_render (NULL, NULL));
    assert_null (http_metrics_render ("", NULL));
    assert_null (http_metrics_render ("{\"node\":", NULL));
    assert_null (http_metrics_render ("[1,2]", NULL));

    //  An empty node: no families at all, and no crash on odd types.
    char *text = http_metrics_render (
      "{\"links\":{},\"queues\":7,\"node\":{\"store\":[],\"stats\":null}}",
      NULL);
    assert_non_null (text);
    assert_null (strstr (text, "fedq_link_"));
    assert_null (strstr (text, "fedq_queue_"));
    free (text);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
      cmocka_unit_test (test_link_lines),
      cmocka_unit_test (test_queue_and_node_lines),
      cmocka_unit_test (test_histogram_cumulative),
      cmocka_unit_test (test_families_are_blocks),
      cmocka_unit_test (test_escape_and_bad_input),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
