//  client/cli_publish.c — `fedq publish`: send one message, N generated
//  ones (paced or not) or one per line of stdin, pipelined with confirms;
//  report what the node confirmed and returned.
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *s_usage =
    "usage: fedq publish EXCHANGE KEY [BODY] [options]\n"
    "Publish to EXCHANGE (\"\" = the default exchange, KEY = queue name)\n"
    "with confirms. BODY \"-\" publishes each line of stdin; no BODY\n"
    "publishes \"message N\".\n"
    "  --count N         publish N messages (default 1)\n"
    "  --size B          make each body exactly B bytes (pad with 'x' or\n"
    "                    cut; 512, 4KiB, 1MiB)\n"
    "  --rate R          at most R messages per second\n"
    "  --id ID           message_id (ID-1, ID-2, ... for several messages)\n"
    "  --header K=V      a message header (repeatable)\n"
    "  --priority N      0..9\n"
    "  --ttl DUR         expire the message after DUR (30s, 5m)\n"
    "  --confirmed FILE  append the id (or seq) of each confirmed message\n"
    "  --window N        max unconfirmed messages in flight (default 1000)\n"
    "  --timeout MS      how long to wait for confirms (default 5000)\n"
    "  -e ENDPOINT, --key FILE, --server-key FILE   as for every command\n"
    "Prints a summary on stderr. Exit 1 when any message was returned or\n"
    "not confirmed in time.\n";

enum {
    OPT_COUNT = 1,
    OPT_SIZE,
    OPT_RATE,
    OPT_ID,
    OPT_HEADER,
    OPT_PRIORITY,
    OPT_TTL,
    OPT_CONFIRMED,
    OPT_WINDOW,
};

static const cli_opt_t s_opts[] = {
    {"count", 'n', true, OPT_COUNT},
    {"size", 0, true, OPT_SIZE},
    {"rate", 0, true, OPT_RATE},
    {"id", 0, true, OPT_ID},
    {"header", 0, true, OPT_HEADER},
    {"priority", 0, true, OPT_PRIORITY},
    {"ttl", 0, true, OPT_TTL},
    {"confirmed", 0, true, OPT_CONFIRMED},
    {"window", 0, true, OPT_WINDOW},
    {NULL, 0, false, 0},
};

int
cli_publish_parse (int argc, char **argv, cli_global_t *g, cli_publish_t *a)
{
    memset (a, 0, sizeof *a);
    a->count = 1;
    cli_args_t args = {"publish", argc, argv, 1, false, s_opts, g, NULL,
                       s_usage};
    int exit_code = CLI_EXIT_OK;
    int npos = 0;
    int id;
    uint64_t v;
    while ((id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        const char *val = args.arg;
        switch (id) {
            case CLI_ARGS_EXIT:
                return exit_code;
            case CLI_ARGS_POSITIONAL:
                if (npos == 0)
                    a->exchange = val;
                else if (npos == 1)
                    a->key = val;
                else if (npos == 2)
                    a->body = val;
                else
                    return cli_usage_error ("publish",
                                            "unexpected \"%s\" (quote a BODY "
                                            "with spaces)", val);
                npos++;
                break;
            case OPT_COUNT:
                if (cli_parse_uint (val, UINT64_MAX, &v) != FEDQ_OK || v == 0)
                    return cli_usage_error ("publish",
                                            "--count wants a positive number, "
                                            "got \"%s\"", val);
                a->count = v;
                a->count_set = true;
                break;
            case OPT_SIZE:
                if (cli_parse_size (val, &v) != FEDQ_OK || v > (1ull << 30))
                    return cli_usage_error ("publish",
                                            "--size wants a size up to 1GiB "
                                            "such as 100, 4KiB or 1MiB, got "
                                            "\"%s\"", val);
                a->size = v;
                a->size_set = true;
                break;
            case OPT_RATE: {
                char *end = NULL;
                errno = 0;
                double r = strtod (val, &end);
                if (errno || !end || *end || !(r > 0))
                    return cli_usage_error ("publish",
                                            "--rate wants messages per "
                                            "second above 0, got \"%s\"", val);
                a->rate = r;
                break;
            }
            case OPT_ID:
                if (!*val)
                    return cli_usage_error ("publish", "--id is empty");
                a->id = val;
                break;
            case OPT_HEADER: {
                const char *eq = strchr (val, '=');
                if (!eq || eq == val)
                    return cli_usage_error ("publish",
                                            "--header wants KEY=VALUE, got "
                                            "\"%s\"", val);
                if (a->nheaders == PROTO_MAX_HEADERS)
                    return cli_usage_error ("publish",
                                            "at most %d --header options",
                                            PROTO_MAX_HEADERS);
                proto_header_t *h = &a->headers[a->nheaders++];
                h->key.ptr = val;
                h->key.len = (uint32_t) (eq - val);
                h->value = fedq_str_of (eq + 1);
                break;
            }
            case OPT_PRIORITY:
                if (cli_parse_uint (val, 9, &v) != FEDQ_OK)
                    return cli_usage_error ("publish",
                                            "--priority wants 0 to 9, got "
                                            "\"%s\"", val);
                a->priority = (uint8_t) v;
                break;
            case OPT_TTL:
                if (cli_parse_duration (val, &v) != FEDQ_OK || v == 0)
                    return cli_usage_error ("publish",
                                            "--ttl wants a duration such as "
                                            "500ms, 30s or 5m, got \"%s\"",
                                            val);
                a->ttl_ms = v;
                break;
            case OPT_CONFIRMED:
                a->confirmed_file = val;
                break;
            case OPT_WINDOW:
                if (cli_parse_uint (val, 1000000, &v) != FEDQ_OK || v == 0)
                    return cli_usage_error ("publish",
                                            "--window wants 1 to 1000000, "
                                            "got \"%s\"", val);
                a->window = (uint32_t) v;
                break;
        }
    }
    if (npos < 2) {
        fputs (s_usage, stderr);
        return cli_usage_error ("publish", "give the EXCHANGE (\"\" for the "
                                "default one) and the routing KEY");
    }
    return CLI_CONTINUE;
}

//  What the run has seen; the settle handler's argument.
typedef struct {
    const cli_publish_t *a;
    bool many;                  //  ids get a -N suffix
    FILE *confirmed_file;       //  --confirmed, or NULL
    bool unflushed;             //  lines written since the last flush
    uint64_t returned_by[32];   //  per -code
    char return_text[32][160];  //  first text per code
} s_run_t;

static void
s_on_settle (void *arg, uint64_t seq, fedq_rc_t code, const char *text)
{
    s_run_t *run = arg;
    if (code == FEDQ_OK) {
        if (!run->confirmed_file)
            return;
        //  The command publishes nothing else: message N has seq N.
        if (run->a->id && run->many)
            fprintf (run->confirmed_file, "%s-%" PRIu64 "\n", run->a->id, seq);
        else if (run->a->id)
            fprintf (run->confirmed_file, "%s\n", run->a->id);
        else
            fprintf (run->confirmed_file, "%" PRIu64 "\n", seq);
        run->unflushed = true;
        return;
    }
    int slot = -code > 0 && -code < 32 ? -code : 0;
    if (run->returned_by[slot]++ == 0)
        snprintf (run->return_text[slot], sizeof run->return_text[slot], "%s",
                  text && *text ? text : "");
}

//  Build message i's body into buf from base (NULL = generated).
static void
s_make_body (const cli_publish_t *a, uint64_t i, const char *base,
             size_t base_size, fedq_buf_t *buf)
{
    buf->size = 0;
    if (base)
        fedq_buf_append (buf, base, base_size);
    else {
        char text[32];
        int n = snprintf (text, sizeof text, "message %" PRIu64, i);
        fedq_buf_append (buf, text, (size_t) n);
    }
    if (!a->size_set)
        return;
    if (buf->size >= a->size) {
        buf->size = a->size;
        return;
    }
    size_t pad = a->size - buf->size;
    fedq_buf_reserve (buf, pad);
    memset (buf->data + buf->size, 'x', pad);
    buf->size += pad;
}

//  Lines of stdin, read without blocking the session's heartbeat.
typedef struct {
    fedq_buf_t buf;             //  bytes read, not yet handed out
    size_t start;               //  first byte not handed out
    bool eof;                   //  read() returned 0
} s_lines_t;

//  Next line into *line / *len: 1 got one, 0 none yet, -1 no more.
static int
s_next_line (s_lines_t *in, const char **line, size_t *len)
{
    const char *from = (const char *) in->buf.data + in->start;
    size_t left = in->buf.size - in->start;
    const char *nl = left ? memchr (from, '\n', left) : NULL;
    if (nl) {
        *line = from;
        *len = (size_t) (nl - from);
        in->start += *len + 1;
        return 1;
    }
    if (in->eof) {
        if (!left)
            return -1;
        *line = from;
        *len = left;
        in->start = in->buf.size;
        return 1;
    }
    //  Keep the partial line, drop what was handed out.
    if (left)
        memmove (in->buf.data, from, left);
    in->buf.size = left;
    in->start = 0;
    return 0;
}

//  Wait (serving the session) until stdin has data, then read it.
static fedq_rc_t
s_fill_lines (s_lines_t *in, fedq_client_t *c, int timeout_ms)
{
    zmq_pollitem_t items[2] = {
        {fedq_client_socket (c), 0, ZMQ_POLLIN, 0},
        {NULL, STDIN_FILENO, ZMQ_POLLIN, 0},
    };
    if (zmq_poll (items, 2, timeout_ms) < 0)
        return errno == EINTR ? FEDQ_EAGAIN : FEDQ_EIO;
    fedq_rc_t rc = fedq_client_poll (c, 0);
    if (rc != FEDQ_OK)
        return rc;
    if (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
        fedq_buf_reserve (&in->buf, 65536);
        ssize_t n = read (STDIN_FILENO, in->buf.data + in->buf.size, 65536);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return FEDQ_EIO;
        if (n == 0)
            in->eof = true;
        if (n > 0)
            in->buf.size += (size_t) n;
    }
    return FEDQ_OK;
}

static void
s_summary (fedq_client_t *c, s_run_t *run, int64_t start_us)
{
    fedq_publish_stats_t st;
    fedq_client_publish_stats (c, &st);
    double elapsed = (double) (fedq_mono_us () - start_us) / 1e6;
    char returned[512] = "";
    size_t used = 0;
    for (int i = 0; i < 32 && used < sizeof returned - 40; i++)
        if (run->returned_by[i])
            used += (size_t) snprintf (
                returned + used, sizeof returned - used, "%s%s %" PRIu64,
                used ? ", " : " (", fedq_rc_name ((fedq_rc_t) -i),
                run->returned_by[i]);
    if (used)
        snprintf (returned + used, sizeof returned - used, ")");
    fprintf (stderr,
             "published %" PRIu64 ", confirmed %" PRIu64 ", returned %" PRIu64
             "%s, unconfirmed %" PRIu64 ", elapsed %.3f s, %.0f msg/s\n",
             st.published, st.confirmed, st.returned, returned, st.unsettled,
             elapsed, elapsed > 0 ? (double) st.published / elapsed : 0.0);
    for (int i = 0; i < 32; i++) {
        if (!run->returned_by[i])
            continue;
        const char *hint = cli_hint ((fedq_rc_t) -i, true);
        fprintf (stderr,
                 "fedq: %" PRIu64 " message%s returned by node %s: %s "
                 "(%s)%s%s\n", run->returned_by[i],
                 run->returned_by[i] == 1 ? "" : "s", fedq_client_node_id (c),
                 run->return_text[i][0] ? run->return_text[i] : "not stored",
                 fedq_rc_name ((fedq_rc_t) -i), hint ? "; " : "",
                 hint ? hint : "");
    }
}

int
cli_cmd_publish (int argc, char **argv, cli_global_t *g)
{
    cli_publish_t a;
    int rc = cli_publish_parse (argc, argv, g, &a);
    if (rc != CLI_CONTINUE)
        return rc;
    bool from_stdin = a.body && strcmp (a.body, "-") == 0;
    s_run_t run = {.a = &a, .many = a.count > 1 || from_stdin};
    if (a.confirmed_file) {
        run.confirmed_file = fopen (a.confirmed_file, "a");
        if (!run.confirmed_file) {
            fprintf (stderr, "fedq: cannot open %s to append confirmed ids: "
                     "%s\n", a.confirmed_file, strerror (errno));
            return CLI_EXIT_FAIL;
        }
    }
    g->window = a.window;
    fedq_client_t *c = cli_connect (g);
    if (!c) {
        if (run.confirmed_file)
            fclose (run.confirmed_file);
        return CLI_EXIT_FAIL;
    }
    cli_catch_signals ();
    fedq_client_set_settle_handler (c, s_on_settle, &run);
    fedq_message_t m = {
        .exchange = a.exchange,
        .routing_key = a.key,
        .headers = a.headers,
        .nheaders = a.nheaders,
        .priority = a.priority,
        .ttl_ms = a.ttl_ms,
    };
    fedq_buf_t body = {0};
    s_lines_t lines = {0};
    char id[PROTO_MAX_NAME + 32];
    int64_t start_us = fedq_mono_us ();
    int64_t last_flush_ms = fedq_mono_ms ();
    bool failed = false;
    uint64_t limit = from_stdin && !a.count_set ? UINT64_MAX : a.count;
    for (uint64_t i = 1; i <= limit && !cli_interrupted (); i++) {
        //  The body of message i.
        if (from_stdin) {
            const char *line = NULL;
            size_t len = 0;
            int got;
            while ((got = s_next_line (&lines, &line, &len)) == 0) {
                fedq_rc_t frc = s_fill_lines (&lines, c, 1000);
                if (frc == FEDQ_EAGAIN)
                    break;
                if (frc != FEDQ_OK) {
                    cli_client_error (c, "publish");
                    failed = true;
                    break;
                }
            }
            if (got != 1)
                break;
            s_make_body (&a, i, line, len, &body);
        }
        else
            s_make_body (&a, i, a.body, a.body ? strlen (a.body) : 0, &body);
        //  Pace to --rate: message i goes at start + (i - 1) / rate.
        if (a.rate > 0) {
            int64_t due
                = start_us + (int64_t) ((double) (i - 1) * 1e6 / a.rate);
            int64_t wait_ms = (due - fedq_mono_us ()) / 1000;
            if (wait_ms > 0 && fedq_client_poll (c, (int) wait_ms) != FEDQ_OK)
                break;
        }
        if (a.id && run.many)
            snprintf (id, sizeof id, "%s-%" PRIu64, a.id, i);
        else if (a.id)
            snprintf (id, sizeof id, "%s", a.id);
        m.message_id = a.id ? id : NULL;
        int64_t seq = fedq_client_publish (c, &m, body.data, body.size);
        if (seq < 0) {
            if (seq != FEDQ_EAGAIN)
                cli_client_error (c, "publish");
            failed = true;
            break;
        }
        if (run.unflushed && fedq_mono_ms () - last_flush_ms >= 100) {
            fflush (run.confirmed_file);
            run.unflushed = false;
            last_flush_ms = fedq_mono_ms ();
        }
    }
    //  Settle what is in flight, even after Ctrl-C (a second one stops).
    fedq_rc_t wrc = fedq_client_wait_confirms (c, (int) g->timeout_ms);
    if (wrc != FEDQ_OK && wrc != FEDQ_EAGAIN && !failed)
        cli_client_error (c, "publish");
    s_summary (c, &run, start_us);
    if (cli_interrupted ())
        fprintf (stderr, "fedq: publish interrupted\n");
    fedq_publish_stats_t st;
    fedq_client_publish_stats (c, &st);
    if (st.returned || st.unsettled || failed || cli_interrupted ())
        rc = CLI_EXIT_FAIL;
    else
        rc = CLI_EXIT_OK;
    if (run.confirmed_file && fclose (run.confirmed_file)) {
        fprintf (stderr, "fedq: cannot write %s: %s\n", a.confirmed_file,
                 strerror (errno));
        rc = CLI_EXIT_FAIL;
    }
    fedq_buf_free (&body);
    fedq_buf_free (&lines.buf);
    fedq_client_destroy (&c);
    return rc;
}
