//  client/cli_consume.c — `fedq consume` (push, with prefetch) and
//  `fedq get` (pull one): print each message, then ack it. A message is
//  acked only after it has been written and stdout flushed, so a crash
//  between the two gives a redelivery, never a loss.
#define _GNU_SOURCE
#include "cli.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_DEFAULT_PREFETCH 500
#define S_ACK_BATCH 256             //  ack at least this often

static const char *s_consume_usage =
    "usage: fedq consume QUEUE [options]\n"
    "Print the messages of QUEUE as they arrive, acking each once printed.\n"
    "  -n, --count N     exit after N messages\n"
    "  --prefetch N      unacked messages in flight (default 500; 0 = no\n"
    "                    limit)\n"
    "  --no-ack          the node settles on delivery (may lose messages)\n"
    "  --json            one JSON object per line (see docs/client.md)\n"
    "  --timeout MS      exit after MS without a message (default: never)\n"
    "  -e ENDPOINT, --key FILE, --server-key FILE   as for every command\n"
    "Without --json each body is printed on its own line.\n";

static const char *s_get_usage =
    "usage: fedq get QUEUE [--json] [--no-ack]\n"
    "Fetch one message from QUEUE, print it and ack it. Exit 1 when the\n"
    "queue is empty.\n"
    "  --json            print it as a JSON object (see docs/client.md)\n"
    "  --no-ack          the node settles it on delivery\n"
    "  -e ENDPOINT, --timeout MS, --key FILE, --server-key FILE\n";

enum {
    OPT_COUNT = 1,
    OPT_PREFETCH,
    OPT_NO_ACK,
    OPT_JSON,
};

static const cli_opt_t s_consume_opts[] = {
    {"count", 'n', true, OPT_COUNT},
    {"prefetch", 0, true, OPT_PREFETCH},
    {"no-ack", 0, false, OPT_NO_ACK},
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

static const cli_opt_t s_get_opts[] = {
    {"no-ack", 0, false, OPT_NO_ACK},
    {"json", 0, false, OPT_JSON},
    {NULL, 0, false, 0},
};

static int
s_parse (int argc, char **argv, cli_global_t *g, cli_consume_t *a,
         const char *cmd, const char *usage, const cli_opt_t *opts)
{
    memset (a, 0, sizeof *a);
    a->prefetch = S_DEFAULT_PREFETCH;
    bool prefetch_set = false;
    cli_args_t args = {cmd, argc, argv, 1, false, opts, g, NULL, usage};
    int exit_code = CLI_EXIT_OK;
    int id;
    uint64_t v;
    while ((id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        const char *val = args.arg;
        switch (id) {
            case CLI_ARGS_EXIT:
                return exit_code;
            case CLI_ARGS_POSITIONAL:
                if (a->queue)
                    return cli_usage_error (cmd, "unexpected \"%s\"", val);
                a->queue = val;
                break;
            case OPT_COUNT:
                if (cli_parse_uint (val, UINT64_MAX, &v) != FEDQ_OK || v == 0)
                    return cli_usage_error (cmd,
                                            "--count wants a positive number, "
                                            "got \"%s\"", val);
                a->count = v;
                break;
            case OPT_PREFETCH:
                if (cli_parse_uint (val, UINT32_MAX, &v) != FEDQ_OK)
                    return cli_usage_error (cmd,
                                            "--prefetch wants a number, got "
                                            "\"%s\"", val);
                a->prefetch = (uint32_t) v;
                prefetch_set = true;
                break;
            case OPT_NO_ACK:
                a->no_ack = true;
                break;
            case OPT_JSON:
                a->json = true;
                break;
        }
    }
    if (!a->queue) {
        fputs (usage, stderr);
        return cli_usage_error (cmd, "which queue? give its name");
    }
    //  Take no more than we will print: the rest would come back
    //  redelivered when we leave.
    if (a->count && !prefetch_set && a->count < a->prefetch)
        a->prefetch = (uint32_t) a->count;
    return CLI_CONTINUE;
}

int
cli_consume_parse (int argc, char **argv, cli_global_t *g, cli_consume_t *a)
{
    return s_parse (argc, argv, g, a, "consume", s_consume_usage,
                    s_consume_opts);
}

//  Print one delivery on stdout.
static void
s_print (const cli_consume_t *a, const fedq_delivery_t *d)
{
    if (a->json) {
        char *line = cli_delivery_json (&d->msg, d->body, d->body_size);
        fputs (line, stdout);
        fputc ('\n', stdout);
        free (line);
    }
    else {
        fwrite (d->body, 1, d->body_size, stdout);
        fputc ('\n', stdout);
    }
}

//  Flush what was printed, then ack every delivery up to dtag.
static fedq_rc_t
s_flush_and_ack (fedq_client_t *c, uint64_t *dtag_p)
{
    if (fflush (stdout) != 0)
        return FEDQ_EIO;    //  not written: leave them unacked
    if (!*dtag_p)
        return FEDQ_OK;
    fedq_rc_t rc = fedq_client_ack (c, *dtag_p, true);
    *dtag_p = 0;
    //  Printed on a session that ended (the node restarted): the node
    //  delivers those again, so they are printed twice, never lost.
    return rc == FEDQ_ESESSION ? FEDQ_OK : rc;
}

int
cli_cmd_consume (int argc, char **argv, cli_global_t *g)
{
    cli_consume_t a;
    int rc = cli_consume_parse (argc, argv, g, &a);
    if (rc != CLI_CONTINUE)
        return rc;
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    cli_catch_signals ();
    char tag[64];
    snprintf (tag, sizeof tag, "fedq-%ld", (long) getpid ());
    char what[PROTO_MAX_NAME + 32];
    snprintf (what, sizeof what, "consume queue \"%s\"", a.queue);
    if (fedq_client_consume (c, a.queue, tag, a.prefetch, a.no_ack)
        != FEDQ_OK) {
        rc = cli_client_error (c, what);
        fedq_client_destroy (&c);
        return rc;
    }
    int idle_ms = g->timeout_set ? (int) g->timeout_ms : -1;
    fedq_delivery_t d;
    memset (&d, 0, sizeof d);
    uint64_t received = 0;
    uint64_t to_ack = 0;        //  last printed dtag not yet acked
    uint64_t batch = 0;         //  printed since the last ack
    //  Ack by half the credit, so the node never waits for our acks.
    uint64_t ack_every = a.prefetch ? a.prefetch / 2 : S_ACK_BATCH;
    if (ack_every == 0)
        ack_every = 1;
    if (ack_every > S_ACK_BATCH)
        ack_every = S_ACK_BATCH;
    rc = CLI_EXIT_OK;
    while (!a.count || received < a.count) {
        //  With printed messages unacked, look for more without waiting.
        fedq_rc_t frc = fedq_client_recv (c, &d, to_ack ? 0 : idle_ms);
        if (frc == FEDQ_ETIMEOUT && to_ack) {
            frc = s_flush_and_ack (c, &to_ack);
            batch = 0;
            if (frc == FEDQ_OK)
                continue;
        }
        if (frc == FEDQ_ETIMEOUT) {
            if (a.count) {
                fprintf (stderr, "fedq: got %" PRIu64 " of %" PRIu64
                         " messages from queue \"%s\" before %d ms without "
                         "one\n", received, a.count, a.queue, idle_ms);
                rc = CLI_EXIT_FAIL;
            }
            break;
        }
        if (frc == FEDQ_EAGAIN) {   //  Ctrl-C
            if (a.count)
                rc = CLI_EXIT_FAIL;
            break;
        }
        if (frc != FEDQ_OK) {
            rc = cli_client_error (c, what);
            break;
        }
        s_print (&a, &d);
        received++;
        if (!a.no_ack) {
            to_ack = d.dtag;
            if (++batch >= ack_every) {
                batch = 0;
                if (s_flush_and_ack (c, &to_ack) != FEDQ_OK) {
                    rc = cli_client_error (c, what);
                    break;
                }
            }
        }
    }
    fedq_delivery_release (&d);
    if (s_flush_and_ack (c, &to_ack) != FEDQ_OK && rc == CLI_EXIT_OK)
        rc = cli_client_error (c, what);
    //  BYE gives back what was prefetched and not printed.
    fedq_client_destroy (&c);
    return rc;
}

int
cli_cmd_get (int argc, char **argv, cli_global_t *g)
{
    cli_consume_t a;
    int rc = s_parse (argc, argv, g, &a, "get", s_get_usage, s_get_opts);
    if (rc != CLI_CONTINUE)
        return rc;
    fedq_client_t *c = cli_connect (g);
    if (!c)
        return CLI_EXIT_FAIL;
    fedq_delivery_t d;
    memset (&d, 0, sizeof d);
    char what[PROTO_MAX_NAME + 32];
    snprintf (what, sizeof what, "get from queue \"%s\"", a.queue);
    fedq_rc_t frc = fedq_client_get (c, a.queue, a.no_ack, &d);
    if (frc == FEDQ_EAGAIN) {
        fprintf (stderr, "fedq: queue \"%s\" is empty on node %s\n", a.queue,
                 fedq_client_node_id (c));
        rc = CLI_EXIT_FAIL;
    }
    else if (frc != FEDQ_OK)
        rc = cli_client_error (c, what);
    else {
        s_print (&a, &d);
        uint64_t dtag = a.no_ack ? 0 : d.dtag;
        rc = s_flush_and_ack (c, &dtag) == FEDQ_OK
                 ? CLI_EXIT_OK
                 : cli_client_error (c, what);
    }
    fedq_delivery_release (&d);
    fedq_client_destroy (&c);
    return rc;
}
