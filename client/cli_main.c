//  client/cli_main.c — `fedq [global options] COMMAND ...`: the global
//  options, the command table and the top-level help (DESIGN.md §6).
#define _GNU_SOURCE
#include "cli.h"

#include <czmq.h>
#include <string.h>

static const char *s_usage =
    "usage: fedq [-e ENDPOINT] [--key FILE --server-key FILE] [--timeout MS]\n"
    "            COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  declare queue NAME [--durable] [...]   declare a queue\n"
    "  declare exchange NAME TYPE             direct, fanout or topic\n"
    "  delete queue NAME | delete exchange NAME\n"
    "  purge NAME                             drop a queue's messages\n"
    "  bind EXCHANGE QUEUE KEY                route KEY from EXCHANGE to "
    "QUEUE\n"
    "  unbind EXCHANGE QUEUE KEY\n"
    "  publish EXCHANGE KEY [BODY]            publish with confirms\n"
    "  consume QUEUE [--count N] [--json]     print messages, ack each\n"
    "  get QUEUE [--json]                     fetch one message\n"
    "  status [--json]                        node, queues, links, lag\n"
    "  lag [--watch]                          per-link replication lag\n"
    "  ping                                   check the node answers\n"
    "  keygen NAME                            CURVE key pair NAME.key, "
    "NAME.pub\n"
    "\n"
    "Global options (also accepted after the command):\n"
    "  -e, --endpoint ENDPOINT   node to talk to (default $FEDQ_ENDPOINT,\n"
    "                            else " CLI_DEFAULT_ENDPOINT ")\n"
    "  --key FILE                our CURVE secret key (from fedq keygen)\n"
    "  --server-key FILE         the node's CURVE public key (NAME.pub)\n"
    "  --timeout MS              request timeout (default 5000; 5s, 2m)\n"
    "  -h, --help                help; fedq COMMAND --help for a command\n"
    "  --version                 print the version\n"
    "\n"
    "Exit codes: 0 ok, 1 runtime error, 2 usage error.\n";

typedef int (s_command_fn) (int argc, char **argv, cli_global_t *g);

static const struct {
    const char *name;
    s_command_fn *run;
} s_commands[] = {
    {"declare", cli_cmd_declare},
    {"delete", cli_cmd_delete},
    {"purge", cli_cmd_purge},
    {"bind", cli_cmd_bind},
    {"unbind", cli_cmd_unbind},
    {"publish", cli_cmd_publish},
    {"consume", cli_cmd_consume},
    {"get", cli_cmd_get},
    {"status", cli_cmd_status},
    {"lag", cli_cmd_lag},
    {"ping", cli_cmd_ping},
    {"keygen", cli_cmd_keygen},
};

#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

static s_command_fn *
s_find (const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp (s_commands[i].name, name) == 0)
            return s_commands[i].run;
    return NULL;
}

int
cli_main (int argc, char **argv)
{
    //  czmq must not take SIGINT: Ctrl-C is ours (consume, lag --watch).
    zsys_handler_set (NULL);
    fedq_log_setup (FEDQ_LOG_WARN, NULL);
    cli_global_t g;
    cli_global_init (&g);
    //  Global options up to the command word.
    static const cli_opt_t version_opt[] = {
        {"version", 'V', false, 1},
        {NULL, 0, false, 0},
    };
    cli_args_t args = {NULL, argc, argv, 1, false, version_opt, &g, NULL,
                       s_usage};
    int exit_code = CLI_EXIT_OK;
    int id;
    const char *command = NULL;
    while (!command
           && (id = cli_args_next (&args, &exit_code)) != CLI_ARGS_END) {
        if (id == CLI_ARGS_EXIT)
            return exit_code;
        if (id == 1) {
            printf ("fedq %s\n", FEDQ_VERSION);
            return CLI_EXIT_OK;
        }
        if (id == CLI_ARGS_POSITIONAL)
            command = args.arg;
    }
    if (!command) {
        fputs (s_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    int first = args.index - 1;     //  the command word
    if (strcmp (command, "help") == 0) {
        if (first + 1 < argc && s_find (argv[first + 1])) {
            char *help_argv[] = {argv[first + 1], (char *) "--help", NULL};
            return s_find (argv[first + 1]) (2, help_argv, &g);
        }
        fputs (s_usage, stdout);
        return CLI_EXIT_OK;
    }
    s_command_fn *run = s_find (command);
    if (!run)
        return cli_usage_error (NULL, "unknown command \"%s\"", command);
    return run (argc - first, argv + first, &g);
}
