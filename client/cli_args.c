//  client/cli_args.c — walking a command's argv (long and short options,
//  "--opt=value", "--" to end options), the options every command takes,
//  and the error messages of the `fedq` command.
#define _GNU_SOURCE
#include "cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt_t s_global_opts[] = {
    {"help", 'h', false, CLI_OPT_HELP},
    {"endpoint", 'e', true, CLI_OPT_ENDPOINT},
    {"key", 0, true, CLI_OPT_KEY},
    {"server-key", 0, true, CLI_OPT_SERVER_KEY},
    {"timeout", 0, true, CLI_OPT_TIMEOUT},
    {NULL, 0, false, 0},
};

void
cli_global_init (cli_global_t *g)
{
    memset (g, 0, sizeof *g);
    const char *env = getenv ("FEDQ_ENDPOINT");
    g->endpoint = env && *env ? env : CLI_DEFAULT_ENDPOINT;
    g->timeout_ms = FEDQ_CLIENT_TIMEOUT_MS;
}

int
cli_usage_error (const char *command, const char *fmt, ...)
{
    char text[512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    if (command)
        fprintf (stderr, "fedq %s: %s (see: fedq %s --help)\n", command, text,
                 command);
    else
        fprintf (stderr, "fedq: %s (see: fedq --help)\n", text);
    return CLI_EXIT_USAGE;
}

static const cli_opt_t *
s_find_long (const cli_opt_t *opts, const char *name, size_t len)
{
    for (const cli_opt_t *o = opts; o && o->name; o++)
        if (strlen (o->name) == len && strncmp (o->name, name, len) == 0)
            return o;
    return NULL;
}

static const cli_opt_t *
s_find_short (const cli_opt_t *opts, char letter)
{
    for (const cli_opt_t *o = opts; o && o->name; o++)
        if (o->letter && o->letter == letter)
            return o;
    return NULL;
}

//  Apply a common option; CLI_CONTINUE or an exit code.
static int
s_global (cli_args_t *self, int id, const char *value)
{
    cli_global_t *g = self->global;
    uint64_t ms;
    switch (id) {
        case CLI_OPT_HELP:
            fputs (self->usage ? self->usage : "", stdout);
            return CLI_EXIT_OK;
        case CLI_OPT_ENDPOINT:
            g->endpoint = value;
            break;
        case CLI_OPT_KEY:
            g->key_file = value;
            break;
        case CLI_OPT_SERVER_KEY:
            g->server_key_file = value;
            break;
        case CLI_OPT_TIMEOUT:
            if (cli_parse_duration (value, &ms) != FEDQ_OK || ms == 0
                || ms > INT32_MAX)
                return cli_usage_error (self->command,
                                        "--timeout wants a duration such as "
                                        "5000, 500ms, 5s or 2m, got \"%s\"",
                                        value);
            g->timeout_ms = (uint32_t) ms;
            g->timeout_set = true;
            break;
    }
    return CLI_CONTINUE;
}

int
cli_args_next (cli_args_t *self, int *exit_code)
{
    while (self->index < self->argc) {
        const char *a = self->argv[self->index++];
        //  "-" (stdin) and "-5" (a number) are values, not options.
        if (self->positional_only || a[0] != '-' || a[1] == 0
            || (a[1] >= '0' && a[1] <= '9')) {
            self->arg = a;
            return CLI_ARGS_POSITIONAL;
        }
        if (strcmp (a, "--") == 0) {
            self->positional_only = true;
            continue;
        }
        const cli_opt_t *opt;
        const char *value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr (name, '=');
            size_t len = eq ? (size_t) (eq - name) : strlen (name);
            opt = s_find_long (self->opts, name, len);
            if (!opt)
                opt = s_find_long (s_global_opts, name, len);
            if (!opt) {
                *exit_code = cli_usage_error (self->command,
                                              "unknown option \"--%.*s\"",
                                              (int) len, name);
                return CLI_ARGS_EXIT;
            }
            if (eq && !opt->has_arg) {
                *exit_code = cli_usage_error (
                    self->command, "--%s takes no value", opt->name);
                return CLI_ARGS_EXIT;
            }
            value = eq ? eq + 1 : NULL;
        }
        else {
            opt = s_find_short (self->opts, a[1]);
            if (!opt)
                opt = s_find_short (s_global_opts, a[1]);
            if (!opt || (a[2] && !opt->has_arg)) {
                *exit_code = cli_usage_error (self->command,
                                              "unknown option \"%s\"", a);
                return CLI_ARGS_EXIT;
            }
            value = a[2] ? a + 2 : NULL;
        }
        if (opt->has_arg && !value) {
            if (self->index >= self->argc) {
                *exit_code = cli_usage_error (self->command,
                                              "--%s needs a value", opt->name);
                return CLI_ARGS_EXIT;
            }
            value = self->argv[self->index++];
        }
        self->arg = value;
        if (opt->id >= CLI_OPT_HELP) {
            int rc = s_global (self, opt->id, value);
            if (rc != CLI_CONTINUE) {
                *exit_code = rc;
                return CLI_ARGS_EXIT;
            }
            continue;
        }
        return opt->id;
    }
    return CLI_ARGS_END;
}

const char *
cli_hint (fedq_rc_t rc, bool from_node)
{
    if (from_node && (rc == FEDQ_EIO || rc == FEDQ_ENOSPC
                      || rc == FEDQ_ECORRUPT))
        return "the node could not use its data directory: see its log";
    switch (rc) {
        case FEDQ_ENOTFOUND:
            return "check the name, or declare it first";
        case FEDQ_EEXISTS:
            return "it exists with other options: delete it first, or "
                   "declare it with the same options";
        case FEDQ_EDENIED:
            return "the node does not allow this (see its log)";
        case FEDQ_ETIMEOUT:
            return "check that fedq-node runs there; set the endpoint with "
                   "-e or FEDQ_ENDPOINT, or wait longer with --timeout";
        case FEDQ_EIO:
            return "check that the node is running, then try again";
        case FEDQ_EPROTO:
            return "the node may speak another protocol version than "
                   "fedq " FEDQ_VERSION;
        case FEDQ_EFULL:
            return "the queue is full (overflow reject-publish): consume "
                   "from it or raise its max-length or max-bytes";
        case FEDQ_EUNROUTABLE:
            return "bind a queue for this routing key: fedq bind EXCHANGE "
                   "QUEUE KEY";
        case FEDQ_ETOOBIG:
            return "send smaller messages";
        default:
            return NULL;
    }
}

int
cli_client_error (fedq_client_t *client, const char *what)
{
    fedq_rc_t rc = fedq_client_last_rc (client);
    const char *text = fedq_client_last_error (client);
    if (rc == FEDQ_EAGAIN)
        return CLI_EXIT_FAIL;       //  interrupted: say nothing more
    char where[PROTO_MAX_NAME + 16] = "";
    bool from_node = fedq_client_last_error_from_node (client);
    //  The node's own error texts name their object ("queue \"x\": not
    //  found"): say which node said so. Local failures say what we did.
    if (client && from_node) {
        snprintf (where, sizeof where, " on node %s",
                  fedq_client_node_id (client));
        what = NULL;
    }
    const char *hint = cli_hint (rc, from_node);
    if (!client && rc == FEDQ_ETIMEOUT)
        hint = "set the endpoint with -e or FEDQ_ENDPOINT, or wait longer "
               "with --timeout";
    fprintf (stderr, "fedq: %s%s%s%s (%s)%s%s\n", what ? what : "",
             what ? ": " : "", *text ? text : "failed", where,
             fedq_rc_name (rc), hint ? "; " : "", hint ? hint : "");
    return CLI_EXIT_FAIL;
}

fedq_client_t *
cli_connect (const cli_global_t *g)
{
    fedq_client_opts_t opts = {
        .key_file = g->key_file,
        .server_key_file = g->server_key_file,
        .timeout_ms = g->timeout_ms,
        .window = g->window,
    };
    fedq_client_t *client = fedq_client_new (g->endpoint, &opts);
    if (!client)
        cli_client_error (NULL, NULL);
    return client;
}

static volatile sig_atomic_t s_interrupted;

static void
s_on_signal (int signum)
{
    (void) signum;
    s_interrupted = 1;
}

void
cli_catch_signals (void)
{
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset (&sa.sa_mask);
    sa.sa_flags = 0;        //  no SA_RESTART: a signal ends the wait
    sigaction (SIGINT, &sa, NULL);
    sigaction (SIGTERM, &sa, NULL);
}

bool
cli_interrupted (void)
{
    return s_interrupted != 0;
}
