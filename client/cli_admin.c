//  client/cli_admin.c — `fedq declare`, `delete`, `purge`, `bind` and
//  `unbind`: one request each, a line on success, a clear error otherwise.
#define _GNU_SOURCE
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_COMMON_HELP \
    "Common options:\n" \
    "  -e, --endpoint ENDPOINT  node to talk to (default $FEDQ_ENDPOINT or\n" \
    "                           " CLI_DEFAULT_ENDPOINT ")\n" \
    "  --key FILE --server-key FILE   CURVE: our NAME.key, the node's .pub\n" \
    "  --timeout MS             request timeout (default 5000; 5s, 2m)\n" \
    "  -h, --help               this help\n"

static const char *s_declare_queue_usage =
    "usage: fedq declare queue NAME [options]\n"
    "Declare a queue (or check it exists with --passive).\n"
    "  --durable | --transient         survive restarts (default transient)\n"
    "  --max-length N                  keep at most N messages\n"
    "  --max-bytes SIZE                keep at most SIZE bytes (64KiB, 1GiB)\n"
    "  --overflow drop-head|reject-publish   what to do when full\n"
    "  --message-ttl DUR               drop messages older than DUR (5s, 1h)\n"
    "  --dead-letter-exchange X        where rejected and expired go\n"
    "  --dead-letter-routing-key K     routing key for dead letters\n"
    "  --max-priority N                priorities 0..N (N up to 9)\n"
    "  --single-active-consumer        deliver to one consumer at a time\n"
    "  --auto-delete                   delete when the last consumer leaves\n"
    "  --dedup-window DUR              drop re-publishes of a message_id\n"
    "  --passive                       only check that it exists\n"
    S_COMMON_HELP;

static const char *s_declare_exchange_usage =
    "usage: fedq declare exchange NAME TYPE [--passive]\n"
    "Declare an exchange; TYPE is direct, fanout or topic.\n" S_COMMON_HELP;

static const char *s_declare_usage =
    "usage: fedq declare queue NAME [options]\n"
    "       fedq declare exchange NAME TYPE\n"
    "See: fedq declare queue --help\n";

static const char *s_delete_usage =
    "usage: fedq delete queue NAME [--if-unused]\n"
    "       fedq delete exchange NAME\n"
    "Delete a queue (and its messages) or an exchange.\n"
    "  --if-unused   only delete a queue that has no consumers\n"
    S_COMMON_HELP;

static const char *s_purge_usage =
    "usage: fedq purge NAME\n"
    "Drop every ready message of queue NAME.\n" S_COMMON_HELP;

static const char *s_bind_usage =
    "usage: fedq bind EXCHANGE QUEUE [KEY]\n"
    "Route messages published to EXCHANGE with a matching KEY to QUEUE\n"
    "(topic keys: * one word, # zero or more; fanout ignores KEY).\n"
    S_COMMON_HELP;

static const char *s_unbind_usage =
    "usage: fedq unbind EXCHANGE QUEUE [KEY]\n"
    "Remove a binding made with fedq bind.\n" S_COMMON_HELP;

enum {
    OPT_DURABLE = 1,
    OPT_TRANSIENT,
    OPT_MAX_LENGTH,
    OPT_MAX_BYTES,
    OPT_OVERFLOW,
    OPT_MESSAGE_TTL,
    OPT_DLX,
    OPT_DLK,
    OPT_MAX_PRIORITY,
    OPT_SAC,
    OPT_AUTO_DELETE,
    OPT_DEDUP_WINDOW,
    OPT_PASSIVE,
    OPT_IF_UNUSED,
};

static const cli_opt_t s_queue_opts[] = {
    {"durable", 0, false, OPT_DURABLE},
    {"transient", 0, false, OPT_TRANSIENT},
    {"max-length", 0, true, OPT_MAX_LENGTH},
    {"max-bytes", 0, true, OPT_MAX_BYTES},
    {"overflow", 0, true, OPT_OVERFLOW},
    {"message-ttl", 0, true, OPT_MESSAGE_TTL},
    {"dead-letter-exchange", 0, true, OPT_DLX},
    {"dead-letter-routing-key", 0, true, OPT_DLK},
    {"max-priority", 0, true, OPT_MAX_PRIORITY},
    {"single-active-consumer", 0, false, OPT_SAC},
    {"auto-delete", 0, false, OPT_AUTO_DELETE},
    {"dedup-window", 0, true, OPT_DEDUP_WINDOW},
    {"passive", 0, false, OPT_PASSIVE},
    {NULL, 0, false, 0},
};

static const cli_opt_t s_passive_opts[] = {
    {"passive", 0, false, OPT_PASSIVE},
    {NULL, 0, false, 0},
};

static const cli_opt_t s_delete_opts[] = {
    {"if-unused", 0, false, OPT_IF_UNUSED},
    {NULL, 0, false, 0},
};

static const cli_opt_t s_no_opts[] = {{NULL, 0, false, 0}};

static int
s_bad_value (const char *command, const char *option, const char *want,
             const char *got)
{
    return cli_usage_error (command, "--%s wants %s, got \"%s\"", option, want,
                            got);
}

int
cli_declare_queue_parse (int argc, char **argv, cli_global_t *g,
                         cli_declare_queue_t *a)
{
    memset (a, 0, sizeof *a);
    cli_args_t args = {"declare queue", argc, argv, 1, false, s_queue_opts,
                       g, NULL, s_declare_queue_usage};
    const char *cmd = args.command;
    int exit_code = CLI_EXIT_OK;
    int id;
    uint64_t v;
    proto_qopts_t *q = &a->qopts;
    while ((id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        const char *val = args.arg;
        switch (id) {
            case CLI_ARGS_EXIT:
                return exit_code;
            case CLI_ARGS_POSITIONAL:
                if (a->name)
                    return cli_usage_error (cmd, "unexpected \"%s\"", val);
                a->name = val;
                break;
            case OPT_DURABLE:
                q->durable = true;
                break;
            case OPT_TRANSIENT:
                q->durable = false;
                break;
            case OPT_MAX_LENGTH:
                if (cli_parse_uint (val, UINT64_MAX, &v) != FEDQ_OK)
                    return s_bad_value (cmd, "max-length", "a count", val);
                q->max_length = v;
                break;
            case OPT_MAX_BYTES:
                if (cli_parse_size (val, &v) != FEDQ_OK)
                    return s_bad_value (cmd, "max-bytes",
                                        "a size such as 1048576, 64KiB or "
                                        "1GiB", val);
                q->max_bytes = v;
                break;
            case OPT_OVERFLOW:
                if (strcmp (val, "drop-head") == 0)
                    q->overflow = PROTO_OVERFLOW_DROP_HEAD;
                else if (strcmp (val, "reject-publish") == 0)
                    q->overflow = PROTO_OVERFLOW_REJECT;
                else
                    return s_bad_value (cmd, "overflow",
                                        "drop-head or reject-publish", val);
                break;
            case OPT_MESSAGE_TTL:
                if (cli_parse_duration (val, &v) != FEDQ_OK)
                    return s_bad_value (cmd, "message-ttl",
                                        "a duration such as 500ms, 30s, 5m "
                                        "or 1h", val);
                q->message_ttl_ms = v;
                break;
            case OPT_DLX:
                q->dead_letter_exchange = fedq_str_of (val);
                break;
            case OPT_DLK:
                q->dead_letter_routing_key = fedq_str_of (val);
                break;
            case OPT_MAX_PRIORITY:
                if (cli_parse_uint (val, 9, &v) != FEDQ_OK)
                    return s_bad_value (cmd, "max-priority",
                                        "a number from 0 to 9", val);
                q->max_priority = (uint8_t) v;
                break;
            case OPT_SAC:
                q->single_active_consumer = true;
                break;
            case OPT_AUTO_DELETE:
                q->auto_delete = true;
                break;
            case OPT_DEDUP_WINDOW:
                if (cli_parse_duration (val, &v) != FEDQ_OK)
                    return s_bad_value (cmd, "dedup-window",
                                        "a duration such as 30s, 5m or 1h",
                                        val);
                q->dedup_window_ms = v;
                break;
            case OPT_PASSIVE:
                a->passive = true;
                break;
        }
    }
    if (!a->name)
        return cli_usage_error (cmd, "which queue? give its NAME");
    if (strlen (a->name) > PROTO_MAX_NAME)
        return cli_usage_error (cmd, "queue name longer than %d bytes",
                                PROTO_MAX_NAME);
    return CLI_CONTINUE;
}

//  Parse a command that takes only positionals (and opts flags); CLI_CONTINUE
//  with pos[0..*npos) filled, or an exit code.
static int
s_parse_simple (int argc, char **argv, cli_global_t *g, const char *cmd,
                const char *usage, const cli_opt_t *opts, const char **pos,
                int min, int max, int *npos, uint32_t *flags)
{
    cli_args_t args = {cmd, argc, argv, 1, false, opts, g, NULL, usage};
    int exit_code = CLI_EXIT_OK;
    int id;
    *npos = 0;
    while ((id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        if (id == CLI_ARGS_EXIT)
            return exit_code;
        if (id == CLI_ARGS_POSITIONAL) {
            if (*npos == max)
                return cli_usage_error (cmd, "unexpected \"%s\"", args.arg);
            pos[(*npos)++] = args.arg;
        }
        else if (flags)
            *flags |= 1u << id;
    }
    if (*npos < min) {
        fputs (usage, stderr);
        return cli_usage_error (cmd, "missing arguments");
    }
    return CLI_CONTINUE;
}

static int
s_declare_queue (int argc, char **argv, cli_global_t *g)
{
    cli_declare_queue_t a;
    int rc = cli_declare_queue_parse (argc, argv, g, &a);
    if (rc != CLI_CONTINUE)
        return rc;
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    uint64_t count = 0;
    char what[PROTO_MAX_NAME + 32];
    snprintf (what, sizeof what, "declare queue \"%s\"", a.name);
    if (fedq_client_declare_queue (c, a.name, a.passive ? NULL : &a.qopts,
                                   a.passive, &count)
        != FEDQ_OK)
        rc = cli_client_error (c, what);
    else {
        printf ("queue \"%s\" %s on node %s (%" PRIu64 " messages)\n", a.name,
                a.passive ? "exists" : "declared", fedq_client_node_id (c),
                count);
        rc = CLI_EXIT_OK;
    }
    fedq_client_destroy (&c);
    return rc;
}

static int
s_declare_exchange (int argc, char **argv, cli_global_t *g)
{
    const char *pos[2];
    int npos;
    uint32_t flags = 0;
    int rc = s_parse_simple (argc, argv, g, "declare exchange",
                             s_declare_exchange_usage, s_passive_opts, pos, 2,
                             2, &npos, &flags);
    if (rc != CLI_CONTINUE)
        return rc;
    const char *type = pos[1];
    if (strcmp (type, "direct") && strcmp (type, "fanout")
        && strcmp (type, "topic"))
        return cli_usage_error ("declare exchange",
                                "exchange type must be direct, fanout or "
                                "topic, got \"%s\"", type);
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    bool passive = flags & (1u << OPT_PASSIVE);
    char what[PROTO_MAX_NAME + 32];
    snprintf (what, sizeof what, "declare exchange \"%s\"", pos[0]);
    if (fedq_client_declare_exchange (c, pos[0], type, passive) != FEDQ_OK)
        rc = cli_client_error (c, what);
    else {
        printf ("exchange \"%s\" (%s) %s on node %s\n", pos[0], type,
                passive ? "exists" : "declared", fedq_client_node_id (c));
        rc = CLI_EXIT_OK;
    }
    fedq_client_destroy (&c);
    return rc;
}

int
cli_cmd_declare (int argc, char **argv, cli_global_t *g)
{
    if (argc >= 2 && strcmp (argv[1], "queue") == 0)
        return s_declare_queue (argc - 1, argv + 1, g);
    if (argc >= 2 && strcmp (argv[1], "exchange") == 0)
        return s_declare_exchange (argc - 1, argv + 1, g);
    if (argc >= 2 && (!strcmp (argv[1], "-h") || !strcmp (argv[1], "--help"))) {
        fputs (s_declare_usage, stdout);
        return CLI_EXIT_OK;
    }
    fputs (s_declare_usage, stderr);
    return cli_usage_error ("declare", "declare what? queue or exchange");
}

int
cli_cmd_delete (int argc, char **argv, cli_global_t *g)
{
    bool queue = argc >= 2 && strcmp (argv[1], "queue") == 0;
    bool exchange = argc >= 2 && strcmp (argv[1], "exchange") == 0;
    if (!queue && !exchange) {
        if (argc >= 2
            && (!strcmp (argv[1], "-h") || !strcmp (argv[1], "--help"))) {
            fputs (s_delete_usage, stdout);
            return CLI_EXIT_OK;
        }
        fputs (s_delete_usage, stderr);
        return cli_usage_error ("delete", "delete what? queue or exchange");
    }
    const char *pos[1];
    int npos;
    uint32_t flags = 0;
    int rc = s_parse_simple (argc - 1, argv + 1, g, "delete", s_delete_usage,
                             queue ? s_delete_opts : s_no_opts, pos, 1, 1,
                             &npos, &flags);
    if (rc != CLI_CONTINUE)
        return rc;
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    uint64_t count = 0;
    fedq_rc_t frc = queue ? fedq_client_delete_queue (
                                c, pos[0], flags & (1u << OPT_IF_UNUSED),
                                &count)
                          : fedq_client_delete_exchange (c, pos[0]);
    char what[PROTO_MAX_NAME + 32];
    snprintf (what, sizeof what, "delete %s \"%s\"",
              queue ? "queue" : "exchange", pos[0]);
    if (frc != FEDQ_OK)
        rc = cli_client_error (c, what);
    else {
        if (queue)
            printf ("queue \"%s\" deleted on node %s (%" PRIu64
                    " messages dropped)\n", pos[0], fedq_client_node_id (c),
                    count);
        else
            printf ("exchange \"%s\" deleted on node %s\n", pos[0],
                    fedq_client_node_id (c));
        rc = CLI_EXIT_OK;
    }
    fedq_client_destroy (&c);
    return rc;
}

int
cli_cmd_purge (int argc, char **argv, cli_global_t *g)
{
    const char *pos[1];
    int npos;
    int rc = s_parse_simple (argc, argv, g, "purge", s_purge_usage, s_no_opts,
                             pos, 1, 1, &npos, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    uint64_t count = 0;
    char what[PROTO_MAX_NAME + 32];
    snprintf (what, sizeof what, "purge queue \"%s\"", pos[0]);
    if (fedq_client_purge_queue (c, pos[0], &count) != FEDQ_OK)
        rc = cli_client_error (c, what);
    else {
        printf ("queue \"%s\" purged on node %s (%" PRIu64
                " messages dropped)\n", pos[0], fedq_client_node_id (c),
                count);
        rc = CLI_EXIT_OK;
    }
    fedq_client_destroy (&c);
    return rc;
}

static int
s_binding (int argc, char **argv, cli_global_t *g, bool bind)
{
    const char *cmd = bind ? "bind" : "unbind";
    const char *pos[3] = {NULL, NULL, ""};
    int npos;
    int rc = s_parse_simple (argc, argv, g, cmd,
                             bind ? s_bind_usage : s_unbind_usage, s_no_opts,
                             pos, 2, 3, &npos, NULL);
    if (rc != CLI_CONTINUE)
        return rc;
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    fedq_rc_t frc = bind ? fedq_client_bind (c, pos[0], pos[1], pos[2])
                         : fedq_client_unbind (c, pos[0], pos[1], pos[2]);
    char what[3 * PROTO_MAX_NAME + 64];
    snprintf (what, sizeof what, "%s queue \"%s\" %s exchange \"%s\" with "
              "key \"%s\"", cmd, pos[1], bind ? "to" : "from", pos[0], pos[2]);
    if (frc != FEDQ_OK)
        rc = cli_client_error (c, what);
    else {
        printf ("%s queue \"%s\" %s exchange \"%s\" with key \"%s\" on node "
                "%s\n", bind ? "bound" : "unbound", pos[1],
                bind ? "to" : "from", pos[0], pos[2],
                fedq_client_node_id (c));
        rc = CLI_EXIT_OK;
    }
    fedq_client_destroy (&c);
    return rc;
}

int
cli_cmd_bind (int argc, char **argv, cli_global_t *g)
{
    return s_binding (argc, argv, g, true);
}

int
cli_cmd_unbind (int argc, char **argv, cli_global_t *g)
{
    return s_binding (argc, argv, g, false);
}
