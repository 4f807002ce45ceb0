//  client/cli_info.c — `fedq status`, `fedq lag [--watch]` and `fedq ping`:
//  what a node says about itself, its queues and its links.
#define _GNU_SOURCE
#include "cli.h"

#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_status_usage =
    "usage: fedq status [--json]\n"
    "Show the node, its queues and its links (shovels, federation).\n"
    "  --json            the node's status JSON, pretty-printed\n"
    "  -e ENDPOINT, --timeout MS, --key FILE, --server-key FILE\n";

static const char *s_lag_usage =
    "usage: fedq lag [--watch] [--interval DUR]\n"
    "Show the replication lag of every link: backlog not yet confirmed by\n"
    "the other side, age of its oldest message, forward rate, last error.\n"
    "  --watch           refresh in place until Ctrl-C\n"
    "  --interval DUR    refresh period (default 1s; 500ms, 5s)\n"
    "  -e ENDPOINT, --timeout MS, --key FILE, --server-key FILE\n";

static const char *s_ping_usage =
    "usage: fedq ping\n"
    "Check that the node answers; print its id and the round-trip time.\n"
    "  -e ENDPOINT, --timeout MS, --key FILE, --server-key FILE\n";

enum {
    OPT_JSON = 1,
    OPT_WATCH,
    OPT_INTERVAL,
};

static const cli_opt_t s_status_opts[] = {
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

static const cli_opt_t s_lag_opts[] = {
    {"watch", 'w', false, OPT_WATCH},
    {"interval", 0, true, OPT_INTERVAL},
    {NULL, 0, false, 0},
};

static const cli_opt_t s_no_opts[] = {{NULL, 0, false, 0}};

int
cli_cmd_status (int argc, char **argv, cli_global_t *g)
{
    cli_args_t args = {"status", argc, argv, 1, false, s_status_opts, g,
                       NULL, s_status_usage};
    int exit_code = CLI_EXIT_OK;
    bool json = false;
    int id;
    while ((id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        if (id == CLI_ARGS_EXIT)
            return exit_code;
        if (id == CLI_ARGS_POSITIONAL)
            return cli_usage_error ("status", "unexpected \"%s\"", args.arg);
        if (id == OPT_JSON)
            json = true;
    }
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    char *text = NULL;
    int rc = CLI_EXIT_OK;
    if (fedq_client_status (c, &text) != FEDQ_OK)
        rc = cli_client_error (c, "status");
    else if (json) {
        json_t *root = json_loads (text, 0, NULL);
        char *pretty = root ? json_dumps (root, JSON_INDENT (2)) : NULL;
        puts (pretty ? pretty : text);     //  as is when not JSON
        free (pretty);
        json_decref (root);
    }
    else {
        fedq_buf_t out = {0};
        char error[256];
        if (cli_status_render (text, &out, error, sizeof error) != FEDQ_OK) {
            fprintf (stderr, "fedq: node %s sent a bad status: %s\n",
                     fedq_client_node_id (c), error);
            rc = CLI_EXIT_FAIL;
        }
        else
            fwrite (out.data, 1, out.size, stdout);
        fedq_buf_free (&out);
    }
    free (text);
    fedq_client_destroy (&c);
    return rc;
}

//  One lag screen into out; FEDQ_OK or the failure (text in out).
static fedq_rc_t
s_lag_screen (fedq_client_t **client_p, const cli_global_t *g, fedq_buf_t *out)
{
    if (!*client_p) {
        fedq_client_opts_t opts = {
            .key_file = g->key_file,
            .server_key_file = g->server_key_file,
            .timeout_ms = g->timeout_ms,
        };
        *client_p = fedq_client_new (g->endpoint, &opts);
        if (!*client_p) {
            char line[600];
            snprintf (line, sizeof line, "fedq: %s (%s); retrying\n",
                      fedq_client_last_error (NULL),
                      fedq_rc_name (fedq_client_last_rc (NULL)));
            fedq_buf_append (out, line, strlen (line));
            return fedq_client_last_rc (NULL);
        }
    }
    char *text = NULL;
    fedq_rc_t rc = fedq_client_status (*client_p, &text);
    if (rc != FEDQ_OK) {
        char line[600];
        snprintf (line, sizeof line, "fedq: status: %s (%s); retrying\n",
                  fedq_client_last_error (*client_p), fedq_rc_name (rc));
        fedq_buf_append (out, line, strlen (line));
        //  Start a new session next time: this one may be gone.
        fedq_client_destroy (client_p);
        return rc;
    }
    char error[256];
    rc = cli_lag_render (text, out, error, sizeof error);
    if (rc != FEDQ_OK) {
        char line[400];
        snprintf (line, sizeof line, "fedq: bad status from node: %s\n",
                  error);
        fedq_buf_append (out, line, strlen (line));
    }
    free (text);
    return rc;
}

int
cli_cmd_lag (int argc, char **argv, cli_global_t *g)
{
    cli_args_t args = {"lag", argc, argv, 1, false, s_lag_opts, g, NULL,
                       s_lag_usage};
    int exit_code = CLI_EXIT_OK;
    bool watch = false;
    uint64_t interval_ms = 1000;
    int id;
    while ((id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        if (id == CLI_ARGS_EXIT)
            return exit_code;
        if (id == CLI_ARGS_POSITIONAL)
            return cli_usage_error ("lag", "unexpected \"%s\"", args.arg);
        if (id == OPT_WATCH)
            watch = true;
        if (id == OPT_INTERVAL
            && (cli_parse_duration (args.arg, &interval_ms) != FEDQ_OK
                || interval_ms == 0 || interval_ms > 3600 * 1000))
            return cli_usage_error ("lag",
                                    "--interval wants a duration such as "
                                    "500ms, 1s or 10s, got \"%s\"", args.arg);
    }
    fedq_client_t *c = NULL;
    fedq_buf_t out = {0};
    if (!watch) {
        if (!(c = cli_connect (g)))
            return CLI_EXIT_FAIL;
        fedq_rc_t rc = s_lag_screen (&c, g, &out);
        fwrite (out.data, 1, out.size, rc == FEDQ_OK ? stdout : stderr);
        fedq_buf_free (&out);
        fedq_client_destroy (&c);
        return rc == FEDQ_OK ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    cli_catch_signals ();
    fedq_buf_t body = {0};
    while (!cli_interrupted ()) {
        body.size = 0;
        s_lag_screen (&c, g, &body);
        out.size = 0;
        //  Home, clear screen, then the whole screen in one write.
        const char *clear = "\033[H\033[2J";
        fedq_buf_append (&out, clear, strlen (clear));
        char head[512], clock[16];
        time_t now = time (NULL);
        struct tm tm;
        localtime_r (&now, &tm);
        strftime (clock, sizeof clock, "%H:%M:%S", &tm);
        snprintf (head, sizeof head,
                  "fedq lag  node %s  every %.1fs  %s  (Ctrl-C to stop)\n\n",
                  c ? fedq_client_node_id (c) : g->endpoint,
                  (double) interval_ms / 1000, clock);
        fedq_buf_append (&out, head, strlen (head));
        fedq_buf_append (&out, body.data, body.size);
        fwrite (out.data, 1, out.size, stdout);
        fflush (stdout);
        //  Wait, keeping the session alive; Ctrl-C ends the wait.
        if (c)
            fedq_client_poll (c, (int) interval_ms);
        else
            poll (NULL, 0, (int) interval_ms);
    }
    fedq_buf_free (&out);
    fedq_buf_free (&body);
    fedq_client_destroy (&c);
    return CLI_EXIT_OK;
}

int
cli_cmd_ping (int argc, char **argv, cli_global_t *g)
{
    cli_args_t args = {"ping", argc, argv, 1, false, s_no_opts, g, NULL,
                       s_ping_usage};
    int exit_code = CLI_EXIT_OK;
    int id;
    while ((id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        if (id == CLI_ARGS_EXIT)
            return exit_code;
        return cli_usage_error ("ping", "unexpected \"%s\"", args.arg);
    }
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    int64_t rtt_us = 0;
    int rc = CLI_EXIT_OK;
    if (fedq_client_ping (c, &rtt_us) != FEDQ_OK)
        rc = cli_client_error (c, "ping");
    else
        printf ("node %s at %s answered in %.3f ms\n", fedq_client_node_id (c),
                fedq_client_endpoint (c), (double) rtt_us / 1000);
    fedq_client_destroy (&c);
    return rc;
}
