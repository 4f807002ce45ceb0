//  tests/unit/test_client_cli.c — the `fedq` command's pieces: value
//  parsing, base64, the JSON line of a delivery, tables, the status and
//  lag views, and command line parsing.
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli.h"

#include <czmq.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_parse_duration (void **state)
{
    (void) state;
    uint64_t ms = 0;
    assert_int_equal (cli_parse_duration ("250ms", &ms), FEDQ_OK);
    assert_int_equal (ms, 250);
    assert_int_equal (cli_parse_duration ("5s", &ms), FEDQ_OK);
    assert_int_equal (ms, 5000);
    assert_int_equal (cli_parse_duration ("2m", &ms), FEDQ_OK);
    assert_int_equal (ms, 120000);
    assert_int_equal (cli_parse_duration ("1h", &ms), FEDQ_OK);
    assert_int_equal (ms, 3600000);
    assert_int_equal (cli_parse_duration ("1500", &ms), FEDQ_OK);
    assert_int_equal (ms, 1500);
    assert_int_equal (cli_parse_duration ("0", &ms), FEDQ_OK);
    assert_int_equal (ms, 0);
    assert_int_equal (cli_parse_duration ("", &ms), FEDQ_EINVAL);
    assert_int_equal (cli_parse_duration ("s", &ms), FEDQ_EINVAL);
    assert_int_equal (cli_parse_duration ("-5s", &ms), FEDQ_EINVAL);
    assert_int_equal (cli_parse_duration ("5 s", &ms), FEDQ_EINVAL);
    assert_int_equal (cli_parse_duration ("5d", &ms), FEDQ_EINVAL);
    assert_int_equal (cli_parse_duration ("1.5s", &ms), FEDQ_EINVAL);
    assert_int_equal (cli_parse_duration ("99999999999999999999", &ms),
                      FEDQ_EINVAL);
    assert_int_equal (cli_parse_duration ("9999999999999999h", &ms),
                      FEDQ_EINVAL);
    assert_int_equal (cli_parse_duration (NULL, &ms), FEDQ_EINVAL);
}

static void
test_parse_size (void **state)
{
    (void) state;
    uint64_t b = 0;
    assert_int_equal (cli_parse_size ("512", &b), FEDQ_OK);
    assert_int_equal (b, 512);
    assert_int_equal (cli_parse_size ("512B", &b), FEDQ_OK);
    assert_int_equal (b, 512);
    assert_int_equal (cli_parse_size ("64KiB", &b), FEDQ_OK);
    assert_int_equal (b, 64 * 1024);
    assert_int_equal (cli_parse_size ("16MiB", &b), FEDQ_OK);
    assert_int_equal (b, 16 * 1024 * 1024);
    assert_int_equal (cli_parse_size ("1GiB", &b), FEDQ_OK);
    assert_int_equal (b, 1024ull * 1024 * 1024);
    assert_int_equal (cli_parse_size ("4k", &b), FEDQ_OK);
    assert_int_equal (b, 4096);
    assert_int_equal (cli_parse_size ("2T", &b), FEDQ_OK);
    assert_int_equal (b, 2ull << 40);
    assert_int_equal (cli_parse_size ("1XB", &b), FEDQ_EINVAL);
    assert_int_equal (cli_parse_size ("KiB", &b), FEDQ_EINVAL);
    assert_int_equal (cli_parse_size ("99999999999GiB", &b), FEDQ_EINVAL);
}

static void
test_parse_uint (void **state)
{
    (void) state;
    uint64_t v = 0;
    assert_int_equal (cli_parse_uint ("9", 9, &v), FEDQ_OK);
    assert_int_equal (v, 9);
    assert_int_equal (cli_parse_uint ("10", 9, &v), FEDQ_EINVAL);
    assert_int_equal (cli_parse_uint ("1x", 100, &v), FEDQ_EINVAL);
    assert_int_equal (cli_parse_uint ("", 100, &v), FEDQ_EINVAL);
    assert_int_equal (cli_parse_uint ("18446744073709551615", UINT64_MAX, &v),
                      FEDQ_OK);
    assert_true (v == UINT64_MAX);
    assert_int_equal (cli_parse_uint ("18446744073709551616", UINT64_MAX, &v),
                      FEDQ_EINVAL);
}

static void
s_check_b64 (const char *in, size_t size, const char *want)
{
    char *out = cli_base64 (in, size);
    assert_string_equal (out, want);
    free (out);
}

static void
test_base64 (void **state)
{
    (void) state;
    //  RFC 4648 test vectors.
    s_check_b64 ("", 0, "");
    s_check_b64 ("f", 1, "Zg==");
    s_check_b64 ("fo", 2, "Zm8=");
    s_check_b64 ("foo", 3, "Zm9v");
    s_check_b64 ("foob", 4, "Zm9vYg==");
    s_check_b64 ("fooba", 5, "Zm9vYmE=");
    s_check_b64 ("foobar", 6, "Zm9vYmFy");
    s_check_b64 ("\xff\xfe\x00\x01", 4, "//4AAQ==");
}

static void
test_human (void **state)
{
    (void) state;
    char buf[32];
    cli_human_bytes (0, buf, sizeof buf);
    assert_string_equal (buf, "0 B");
    cli_human_bytes (1023, buf, sizeof buf);
    assert_string_equal (buf, "1023 B");
    cli_human_bytes (1536, buf, sizeof buf);
    assert_string_equal (buf, "1.5 KiB");
    cli_human_bytes (12ull << 20, buf, sizeof buf);
    assert_string_equal (buf, "12.0 MiB");
    cli_human_bytes (3ull << 30, buf, sizeof buf);
    assert_string_equal (buf, "3.0 GiB");
    cli_human_duration (0, buf, sizeof buf);
    assert_string_equal (buf, "0s");
    cli_human_duration (-1, buf, sizeof buf);
    assert_string_equal (buf, "0s");
    cli_human_duration (1.25, buf, sizeof buf);
    assert_string_equal (buf, "1.2s");
    cli_human_duration (42, buf, sizeof buf);
    assert_string_equal (buf, "42s");
    cli_human_duration (187, buf, sizeof buf);
    assert_string_equal (buf, "3m07s");
    cli_human_duration (2 * 3600 + 5 * 60, buf, sizeof buf);
    assert_string_equal (buf, "2h05m");
    cli_human_duration (3 * 86400 + 4 * 3600, buf, sizeof buf);
    assert_string_equal (buf, "3d04h");
}

static void
s_msg_init (proto_msg_t *m)
{
    memset (m, 0, sizeof *m);
    m->origin = fedq_str_of ("sydney");
    m->seq = 42;
    m->exchange = fedq_str_of ("orders");
    m->routing_key = fedq_str_of ("order.created");
    m->published_at = 1700000000123;
}

static void
test_delivery_json_text (void **state)
{
    (void) state;
    proto_msg_t m;
    s_msg_init (&m);
    m.message_id = fedq_str_of ("o-1");
    m.redelivered = true;
    m.nheaders = 2;
    m.headers[0].key = fedq_str_of ("tenant");
    m.headers[0].value = fedq_str_of ("acme");
    m.headers[1].key = fedq_str_of ("trace");
    m.headers[1].value = fedq_str_of ("t\"1");
    const char *body = "h\xc3\xa9llo \"world\"\n";
    char *line = cli_delivery_json (&m, body, strlen (body));
    assert_null (strchr (line, '\n'));      //  one line
    assert_string_equal (
        line,
        "{\"id\":\"sydney:42\",\"origin\":\"sydney\",\"seq\":42,"
        "\"message_id\":\"o-1\",\"exchange\":\"orders\","
        "\"routing_key\":\"order.created\",\"headers\":{\"tenant\":\"acme\","
        "\"trace\":\"t\\\"1\"},\"redelivered\":true,"
        "\"published_at\":1700000000123,"
        "\"body\":\"h\xc3\xa9llo \\\"world\\\"\\n\"}");
    free (line);
}

static void
test_delivery_json_binary (void **state)
{
    (void) state;
    proto_msg_t m;
    s_msg_init (&m);
    m.priority = 5;
    const uint8_t body[] = {0xff, 0x00, 0x41};
    char *line = cli_delivery_json (&m, body, sizeof body);
    json_t *o = json_loads (line, 0, NULL);
    assert_non_null (o);
    assert_null (json_object_get (o, "message_id"));
    assert_null (json_object_get (o, "body"));
    assert_string_equal (json_string_value (json_object_get (o, "body_b64")),
                         "/wBB");
    assert_true (json_is_false (json_object_get (o, "redelivered")));
    assert_int_equal (json_integer_value (json_object_get (o, "priority")), 5);
    assert_true (json_is_object (json_object_get (o, "headers")));
    json_decref (o);
    free (line);
    //  An empty body is an empty string.
    line = cli_delivery_json (&m, NULL, 0);
    o = json_loads (line, 0, NULL);
    assert_string_equal (json_string_value (json_object_get (o, "body")), "");
    json_decref (o);
    free (line);
}

static char *
s_render (cli_table_t *t)
{
    fedq_buf_t out = {0};
    cli_table_render (t, &out);
    fedq_buf_append (&out, "", 1);
    char *text = strdup ((char *) out.data);
    fedq_buf_free (&out);
    return text;
}

static void
test_table (void **state)
{
    (void) state;
    cli_table_t *t = cli_table_new ("NAME", "DEPTH", "NOTE", NULL);
    cli_table_align_right (t, 1);
    assert_int_equal (cli_table_rows (t), 0);
    cli_table_add (t, "orders");
    cli_table_add (t, "%d", 12345);
    cli_table_add (t, "ok");
    cli_table_add (t, "q\xc3\xa9");     //  two characters, three bytes
    cli_table_add (t, "%d", 7);
    cli_table_add (t, "%s", "");
    cli_table_add (t, "a\tb");
    assert_int_equal (cli_table_rows (t), 3);
    char *text = s_render (t);
    assert_string_equal (text, "NAME    DEPTH  NOTE\n"
                               "orders  12345  ok\n"
                               "q\xc3\xa9" "          7\n"
                               "a b\n");
    free (text);
    cli_table_destroy (&t);
    assert_null (t);
    cli_table_destroy (&t);
}

static const char *s_status_json =
    "{\"node\":{\"id\":\"sydney\",\"version\":\"0.1.0\",\"uptime_s\":3725,"
    "\"config_generation\":2,\"fsync\":\"batch\","
    "\"store\":{\"bytes\":1048576,\"segments\":4}},"
    "\"queues\":[{\"name\":\"orders\",\"depth\":12,\"bytes\":2048,"
    "\"consumers\":1,\"unacked\":3,\"publish_rate\":10.5,"
    "\"deliver_rate\":9,\"durable\":true},{\"name\":\"bare\"}],"
    "\"links\":[{\"name\":\"outbox-to-melbourne\",\"kind\":\"shovel\","
    "\"peer\":\"melbourne\",\"state\":\"running\",\"backlog_messages\":5,"
    "\"backlog_bytes\":5120,\"lag_seconds\":1.5,\"forward_rate\":120,"
    "\"last_error\":\"\",\"lag_alert\":false,\"backlog_alert\":false},"
    "{\"name\":\"audit\",\"kind\":\"federation\",\"peer\":\"perth\","
    "\"state\":\"reconnecting\",\"backlog_messages\":900,"
    "\"backlog_bytes\":921600,\"lag_seconds\":187,\"forward_rate\":0,"
    "\"last_error\":\"connection refused\",\"lag_alert\":true,"
    "\"backlog_alert\":true}]}";

static char *
s_buf_text (fedq_buf_t *out)
{
    fedq_buf_append (out, "", 1);
    char *text = strdup ((char *) out->data);
    fedq_buf_free (out);
    return text;
}

static void
test_status_render (void **state)
{
    (void) state;
    fedq_buf_t out = {0};
    char error[128];
    assert_int_equal (cli_status_render (s_status_json, &out, error,
                                         sizeof error),
                      FEDQ_OK);
    char *text = s_buf_text (&out);
    assert_non_null (strstr (text, "node     sydney  fedq 0.1.0  up 1h02m\n"));
    assert_non_null (strstr (text, "config   generation 2\n"));
    assert_non_null (strstr (text, "store    1.0 MiB in 4 segments, fsync "
                                   "batch\n"));
    assert_non_null (strstr (text, "QUEUE   DEPTH    BYTES  CONSUMERS  "
                                   "UNACKED      IN    OUT  DURABLE\n"));
    assert_non_null (strstr (text, "orders     12  2.0 KiB          1        "
                                   "3  10.5/s  9.0/s  yes\n"));
    assert_non_null (strstr (text, "bare        -        -          -        "
                                   "-       -      -  -\n"));
    assert_non_null (strstr (text, "outbox-to-melbourne  shovel"));
    assert_non_null (strstr (text, "LAG,BACKLOG\n"));
    assert_non_null (strstr (text, "3m07s"));
    free (text);
    //  Missing sections and fields are tolerated.
    assert_int_equal (cli_status_render ("{}", &out, error, sizeof error),
                      FEDQ_OK);
    text = s_buf_text (&out);
    assert_string_equal (text, "no queues\n\nno links (no shovels or "
                               "federated queues configured)\n");
    free (text);
    assert_int_equal (cli_status_render ("[1]", &out, error, sizeof error),
                      FEDQ_EPROTO);
    assert_int_equal (cli_status_render ("{bad", &out, error, sizeof error),
                      FEDQ_EPROTO);
    assert_non_null (strstr (error, "not JSON"));
    fedq_buf_free (&out);
}

static void
test_lag_render (void **state)
{
    (void) state;
    fedq_buf_t out = {0};
    char error[128];
    assert_int_equal (cli_lag_render (s_status_json, &out, error,
                                      sizeof error),
                      FEDQ_OK);
    char *text = s_buf_text (&out);
    const char *want =
        "LINK                 KIND        PEER       STATE         BACKLOG  "
        "    BYTES    LAG     RATE  LAST ERROR\n"
        "outbox-to-melbourne  shovel      melbourne  running             5  "
        "  5.0 KiB   1.5s  120.0/s  -\n"
        "audit (!)            federation  perth      reconnecting      900  "
        "900.0 KiB  3m07s    0.0/s  connection refused\n";
    assert_string_equal (text, want);
    free (text);
    assert_int_equal (cli_lag_render ("{\"links\":[]}", &out, error,
                                      sizeof error),
                      FEDQ_OK);
    text = s_buf_text (&out);
    assert_non_null (strstr (text, "no links"));
    free (text);
}

//  Parse a command line given as one string of words.
typedef struct {
    int argc;
    char *argv[32];
    char *copy;
} s_argv_t;

static s_argv_t *
s_words (const char *line)
{
    s_argv_t *a = calloc (1, sizeof *a);
    a->copy = strdup (line);
    for (char *w = strtok (a->copy, " "); w && a->argc < 31;
         w = strtok (NULL, " "))
        a->argv[a->argc++] = w;
    return a;
}

static void
s_words_free (s_argv_t *a)
{
    free (a->copy);
    free (a);
}

static void
test_args_declare_queue (void **state)
{
    (void) state;
    cli_global_t g;
    cli_global_init (&g);
    cli_declare_queue_t d;
    s_argv_t *w = s_words (
        "queue orders --durable --max-length 1000 --max-bytes 64KiB "
        "--overflow reject-publish --message-ttl 30s "
        "--dead-letter-exchange dlx --dead-letter-routing-key dead "
        "--max-priority 9 --single-active-consumer --auto-delete "
        "--dedup-window=5m -e tcp://10.0.0.1:5680 --timeout 2s");
    assert_int_equal (cli_declare_queue_parse (w->argc, w->argv, &g, &d),
                      CLI_CONTINUE);
    assert_string_equal (d.name, "orders");
    assert_true (d.qopts.durable);
    assert_int_equal (d.qopts.max_length, 1000);
    assert_int_equal (d.qopts.max_bytes, 65536);
    assert_int_equal (d.qopts.overflow, PROTO_OVERFLOW_REJECT);
    assert_int_equal (d.qopts.message_ttl_ms, 30000);
    assert_true (fedq_str_eq (d.qopts.dead_letter_exchange, "dlx"));
    assert_true (fedq_str_eq (d.qopts.dead_letter_routing_key, "dead"));
    assert_int_equal (d.qopts.max_priority, 9);
    assert_true (d.qopts.single_active_consumer);
    assert_true (d.qopts.auto_delete);
    assert_int_equal (d.qopts.dedup_window_ms, 300000);
    assert_false (d.passive);
    assert_string_equal (g.endpoint, "tcp://10.0.0.1:5680");
    assert_int_equal (g.timeout_ms, 2000);
    assert_true (g.timeout_set);
    s_words_free (w);

    const char *bad[] = {
        "queue",                            //  no name
        "queue a b",                        //  two names
        "queue a --max-priority 10",
        "queue a --overflow drop-tail",
        "queue a --max-length",             //  missing value
        "queue a --durable=yes",            //  flag with a value
        "queue a --frobnicate",
        "queue a --timeout 0",
        "queue a --message-ttl 5x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        w = s_words (bad[i]);
        cli_global_init (&g);
        assert_int_equal (cli_declare_queue_parse (w->argc, w->argv, &g, &d),
                          CLI_EXIT_USAGE);
        s_words_free (w);
    }
    w = s_words ("queue --help");
    assert_int_equal (cli_declare_queue_parse (w->argc, w->argv, &g, &d),
                      CLI_EXIT_OK);
    s_words_free (w);
    w = s_words ("queue a --durable --transient --passive");
    assert_int_equal (cli_declare_queue_parse (w->argc, w->argv, &g, &d),
                      CLI_CONTINUE);
    assert_false (d.qopts.durable);
    assert_true (d.passive);
    s_words_free (w);
}

static void
test_args_publish (void **state)
{
    (void) state;
    cli_global_t g;
    cli_global_init (&g);
    cli_publish_t p;
    s_argv_t *w = s_words (
        "publish orders order.created hello --count 10 --size 4KiB "
        "--rate 2.5 --id o --header tenant=acme --header k=a=b "
        "--priority 3 --ttl 1m --confirmed /tmp/c.txt --window 50");
    assert_int_equal (cli_publish_parse (w->argc, w->argv, &g, &p),
                      CLI_CONTINUE);
    assert_string_equal (p.exchange, "orders");
    assert_string_equal (p.key, "order.created");
    assert_string_equal (p.body, "hello");
    assert_int_equal (p.count, 10);
    assert_true (p.count_set);
    assert_int_equal (p.size, 4096);
    assert_true (p.size_set);
    assert_true (p.rate > 2.49 && p.rate < 2.51);
    assert_string_equal (p.id, "o");
    assert_int_equal (p.nheaders, 2);
    assert_true (fedq_str_eq (p.headers[0].key, "tenant"));
    assert_true (fedq_str_eq (p.headers[0].value, "acme"));
    assert_true (fedq_str_eq (p.headers[1].key, "k"));
    assert_true (fedq_str_eq (p.headers[1].value, "a=b"));
    assert_int_equal (p.priority, 3);
    assert_int_equal (p.ttl_ms, 60000);
    assert_string_equal (p.confirmed_file, "/tmp/c.txt");
    assert_int_equal (p.window, 50);
    s_words_free (w);

    //  "-" and "-5" are bodies; "--" ends options.
    w = s_words ("publish x y -");
    assert_int_equal (cli_publish_parse (w->argc, w->argv, &g, &p),
                      CLI_CONTINUE);
    assert_string_equal (p.body, "-");
    assert_int_equal (p.count, 1);
    assert_false (p.count_set);
    s_words_free (w);
    w = s_words ("publish x y -5");
    assert_int_equal (cli_publish_parse (w->argc, w->argv, &g, &p),
                      CLI_CONTINUE);
    assert_string_equal (p.body, "-5");
    s_words_free (w);
    w = s_words ("publish -- x y --count");
    assert_int_equal (cli_publish_parse (w->argc, w->argv, &g, &p),
                      CLI_CONTINUE);
    assert_string_equal (p.body, "--count");
    s_words_free (w);

    const char *bad[] = {
        "publish x",
        "publish x y z w",
        "publish x y --count 0",
        "publish x y --rate 0",
        "publish x y --rate fast",
        "publish x y --header novalue",
        "publish x y --header =v",
        "publish x y --priority 10",
        "publish x y --size 2GiB",
        "publish x y --id=",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        w = s_words (bad[i]);
        assert_int_equal (cli_publish_parse (w->argc, w->argv, &g, &p),
                          CLI_EXIT_USAGE);
        s_words_free (w);
    }
}

static void
test_args_consume (void **state)
{
    (void) state;
    cli_global_t g;
    cli_global_init (&g);
    cli_consume_t c;
    s_argv_t *w = s_words ("consume orders --count 5 --json --no-ack");
    assert_int_equal (cli_consume_parse (w->argc, w->argv, &g, &c),
                      CLI_CONTINUE);
    assert_string_equal (c.queue, "orders");
    assert_int_equal (c.count, 5);
    assert_int_equal (c.prefetch, 5);       //  no more than it will print
    assert_true (c.json);
    assert_true (c.no_ack);
    assert_false (g.timeout_set);
    s_words_free (w);
    w = s_words ("consume orders -n 5 --prefetch 1000 --timeout 3s");
    assert_int_equal (cli_consume_parse (w->argc, w->argv, &g, &c),
                      CLI_CONTINUE);
    assert_int_equal (c.prefetch, 1000);
    assert_true (g.timeout_set);
    assert_int_equal (g.timeout_ms, 3000);
    s_words_free (w);
    w = s_words ("consume");
    assert_int_equal (cli_consume_parse (w->argc, w->argv, &g, &c),
                      CLI_EXIT_USAGE);
    s_words_free (w);
}

static void
test_global_endpoint_env (void **state)
{
    (void) state;
    cli_global_t g;
    setenv ("FEDQ_ENDPOINT", "tcp://192.0.2.1:7000", 1);
    cli_global_init (&g);
    assert_string_equal (g.endpoint, "tcp://192.0.2.1:7000");
    unsetenv ("FEDQ_ENDPOINT");
    cli_global_init (&g);
    assert_string_equal (g.endpoint, CLI_DEFAULT_ENDPOINT);
    assert_int_equal (g.timeout_ms, 5000);
}

static void
test_main_usage (void **state)
{
    (void) state;
    char *none[] = {(char *) "fedq", NULL};
    assert_int_equal (cli_main (1, none), CLI_EXIT_USAGE);
    char *unknown[] = {(char *) "fedq", (char *) "frobnicate", NULL};
    assert_int_equal (cli_main (2, unknown), CLI_EXIT_USAGE);
    char *help[] = {(char *) "fedq", (char *) "--help", NULL};
    assert_int_equal (cli_main (2, help), CLI_EXIT_OK);
    char *cmd_help[] = {(char *) "fedq", (char *) "help", (char *) "lag",
                        NULL};
    assert_int_equal (cli_main (3, cmd_help), CLI_EXIT_OK);
    char *bad_type[] = {(char *) "fedq", (char *) "declare",
                        (char *) "exchange", (char *) "x",
                        (char *) "headers", NULL};
    assert_int_equal (cli_main (5, bad_type), CLI_EXIT_USAGE);
}

static void
test_keygen (void **state)
{
    (void) state;
    char dir[] = "/tmp/test_client_cli_XXXXXX";
    assert_non_null (mkdtemp (dir));
    char cwd[4096];
    assert_non_null (getcwd (cwd, sizeof cwd));
    assert_int_equal (chdir (dir), 0);
    char *argv[] = {(char *) "fedq", (char *) "keygen", (char *) "site",
                    (char *) "--role", (char *) "peer", NULL};
    assert_int_equal (cli_main (5, argv), CLI_EXIT_OK);
    struct stat st;
    assert_int_equal (stat ("site.key", &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    assert_int_equal (stat ("site.pub", &st), 0);
    zcert_t *secret = zcert_load ("site.key");
    zcert_t *public = zcert_load ("site.pub");
    assert_non_null (secret);
    assert_non_null (public);
    assert_memory_equal (zcert_public_key (secret), zcert_public_key (public),
                         32);
    assert_string_equal (zcert_meta (public, "role"), "peer");
    assert_string_equal (zcert_meta (public, "name"), "site");
    //  The public file holds no secret.
    static const uint8_t zero[32] = {0};
    assert_memory_equal (zcert_secret_key (public), zero, 32);
    zcert_destroy (&secret);
    zcert_destroy (&public);
    //  Never overwrite.
    assert_int_equal (cli_main (3, argv), CLI_EXIT_FAIL);
    unlink ("site.key");
    assert_int_equal (cli_main (3, argv), CLI_EXIT_FAIL);     //  .pub left
    assert_int_equal (stat ("site.key", &st), -1);
    unlink ("site.pub");
    char *bad_role[] = {(char *) "fedq", (char *) "keygen", (char *) "x",
                        (char *) "--role", (char *) "admin", NULL};
    assert_int_equal (cli_main (5, bad_role), CLI_EXIT_USAGE);
    assert_int_equal (chdir (cwd), 0);
    assert_int_equal (rmdir (dir), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parse_duration),
        cmocka_unit_test (test_parse_size),
        cmocka_unit_test (test_parse_uint),
        cmocka_unit_test (test_base64),
        cmocka_unit_test (test_human),
        cmocka_unit_test (test_delivery_json_text),
        cmocka_unit_test (test_delivery_json_binary),
        cmocka_unit_test (test_table),
        cmocka_unit_test (test_status_render),
        cmocka_unit_test (test_lag_render),
        cmocka_unit_test (test_args_declare_queue),
        cmocka_unit_test (test_args_publish),
        cmocka_unit_test (test_args_consume),
        cmocka_unit_test (test_global_endpoint_env),
        cmocka_unit_test (test_main_usage),
        cmocka_unit_test (test_keygen),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
