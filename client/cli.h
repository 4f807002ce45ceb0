//  client/cli.h — the pieces of the `fedq` command (DESIGN.md §6,
//  docs/client.md): value parsing, output formats, the table renderer,
//  argument parsing and one entry point per command. Built as the static
//  library fedq_cli so that the unit tests reach every piece.
#ifndef CLI_H_INCLUDED
#define CLI_H_INCLUDED

#include "fedq_client.h"

#include <stdio.h>

//  Exit codes of the command.
#define CLI_EXIT_OK 0           //  done
#define CLI_EXIT_FAIL 1         //  runtime error (node, network, data)
#define CLI_EXIT_USAGE 2        //  bad command line
#define CLI_CONTINUE (-1)       //  a parser's "go on and run it"

#define CLI_DEFAULT_ENDPOINT "tcp://127.0.0.1:5680"

//  ---------------------------------------------------------------------
//  cli_util.c — values and formats

//  Parse "250ms", "5s", "2m", "1h" (a bare number is ms) into ms.
fedq_rc_t
    cli_parse_duration (const char *text, uint64_t *ms);

//  Parse "512", "512B", "64KiB", "16MiB", "1GiB" (K, M, G too) into bytes.
fedq_rc_t
    cli_parse_size (const char *text, uint64_t *bytes);

//  Parse a decimal unsigned integer no larger than max.
fedq_rc_t
    cli_parse_uint (const char *text, uint64_t max, uint64_t *value);

//  Standard base64 with padding; the caller frees the result.
char *
    cli_base64 (const void *data, size_t size);

//  "512 B", "1.5 KiB", "12.0 MiB" into buf.
void
    cli_human_bytes (uint64_t bytes, char *buf, size_t size);

//  "0s", "1.5s", "42s", "3m07s", "2h05m", "3d04h" into buf.
void
    cli_human_duration (double seconds, char *buf, size_t size);

//  One delivery as a JSON object on one line (no newline), the
//  `consume --json` format; the caller frees the result.
char *
    cli_delivery_json (const proto_msg_t *msg, const void *body, size_t size);

//  ---------------------------------------------------------------------
//  cli_table.c — a plain text table with aligned columns

typedef struct _cli_table_t cli_table_t;

//  A table with the given column titles, NULL-terminated.
cli_table_t *
    cli_table_new (const char *title, ...) __attribute__ ((sentinel));

void
    cli_table_destroy (cli_table_t **self_p);

//  Right-align column col (numbers).
void
    cli_table_align_right (cli_table_t *self, size_t col);

//  Add the next cell, left to right, starting a new row after the last
//  column. The text is copied.
void
    cli_table_add (cli_table_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Rows added so far.
size_t
    cli_table_rows (cli_table_t *self);

//  Append the table (titles, then rows) to out, one line per row, columns
//  two spaces apart, no trailing blanks.
void
    cli_table_render (cli_table_t *self, fedq_buf_t *out);

//  ---------------------------------------------------------------------
//  cli_status.c — status and lag views of the node's status JSON

//  Readable status (node lines, queues table, links table) into out.
//  FEDQ_EPROTO when json is not a JSON object (what is wrong in *error).
fedq_rc_t
    cli_status_render (const char *json, fedq_buf_t *out, char *error,
                       size_t error_size);

//  The per-link lag table into out.
fedq_rc_t
    cli_lag_render (const char *json, fedq_buf_t *out, char *error,
                    size_t error_size);

//  ---------------------------------------------------------------------
//  cli_args.c — command line parsing

//  Options common to every command.
typedef struct {
    const char *endpoint;       //  -e, else $FEDQ_ENDPOINT, else default
    const char *key_file;       //  --key
    const char *server_key_file;    //  --server-key
    uint32_t timeout_ms;        //  --timeout, default 5000
    bool timeout_set;           //  --timeout was given
    uint32_t window;            //  publish --window, 0 = default
} cli_global_t;

//  Defaults (reads FEDQ_ENDPOINT).
void
    cli_global_init (cli_global_t *g);

//  An option a command accepts.
typedef struct {
    const char *name;           //  long name without "--"
    char letter;                //  short letter, or 0
    bool has_arg;               //  takes a value
    int id;                     //  returned by cli_args_next
} cli_opt_t;

//  Ids of the options every command takes (cli_args_next handles them).
enum {
    CLI_OPT_HELP = 1000,
    CLI_OPT_ENDPOINT,
    CLI_OPT_KEY,
    CLI_OPT_SERVER_KEY,
    CLI_OPT_TIMEOUT,
};

//  Walks argv of one command.
typedef struct {
    const char *command;        //  "publish", for messages
    int argc;
    char **argv;
    int index;                  //  next argv to look at
    bool positional_only;       //  after "--"
    const cli_opt_t *opts;      //  the command's options, {0}-terminated
    cli_global_t *global;       //  filled by the common options
    const char *arg;            //  value of the last option or positional
    const char *usage;          //  help text of the command
} cli_args_t;

//  What cli_args_next returns besides option ids (which are positive).
#define CLI_ARGS_END (-1)       //  no more arguments
#define CLI_ARGS_POSITIONAL (-2)    //  a positional, in ->arg
#define CLI_ARGS_EXIT (-3)      //  stop: help printed (0) or error (2)

//  Next argument: an option id (value in ->arg), CLI_ARGS_POSITIONAL,
//  CLI_ARGS_END, or CLI_ARGS_EXIT with *exit_code set (help printed, or
//  an error reported on stderr).
int
    cli_args_next (cli_args_t *self, int *exit_code);

//  Report a usage error on stderr ("fedq publish: ...; see fedq publish
//  --help") and return CLI_EXIT_USAGE.
int
    cli_usage_error (const char *command, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Report a failed client call on stderr: what failed (what, for local
//  failures), on which node, the code and what to do. CLI_EXIT_FAIL.
int
    cli_client_error (fedq_client_t *client, const char *what);

//  What a user can do about a failure with this code, or NULL.
const char *
    cli_hint (fedq_rc_t rc, bool from_node);

//  Connect with the global options; NULL after reporting why.
fedq_client_t *
    cli_connect (const cli_global_t *g);

//  Catch SIGINT and SIGTERM: they interrupt waits (FEDQ_EAGAIN) and set
//  the flag cli_interrupted returns.
void
    cli_catch_signals (void);
bool
    cli_interrupted (void);

//  ---------------------------------------------------------------------
//  Commands: parse argv (argv[0] is the command word) into args, then run.
//  Parsers return CLI_CONTINUE or an exit code; runners an exit code.

typedef struct {
    const char *name;
    proto_qopts_t qopts;
    bool passive;
} cli_declare_queue_t;

int
    cli_declare_queue_parse (int argc, char **argv, cli_global_t *g,
                             cli_declare_queue_t *a);

typedef struct {
    const char *exchange;
    const char *key;
    const char *body;           //  NULL = generated, "-" = lines of stdin
    uint64_t count;             //  messages, default 1
    bool count_set;             //  --count given
    uint64_t size;              //  body size, 0 = as given
    bool size_set;              //  --size given
    double rate;                //  msg/s, 0 = as fast as confirms allow
    const char *id;             //  message_id, or NULL
    proto_header_t headers[PROTO_MAX_HEADERS];
    uint32_t nheaders;
    uint8_t priority;
    uint64_t ttl_ms;
    const char *confirmed_file; //  --confirmed FILE
    uint32_t window;            //  --window, 0 = default
} cli_publish_t;

int
    cli_publish_parse (int argc, char **argv, cli_global_t *g,
                       cli_publish_t *a);

typedef struct {
    const char *queue;
    uint64_t count;             //  0 = until Ctrl-C or idle timeout
    uint32_t prefetch;
    bool no_ack;
    bool json;
} cli_consume_t;

int
    cli_consume_parse (int argc, char **argv, cli_global_t *g,
                       cli_consume_t *a);

int
    cli_cmd_declare (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_delete (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_purge (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_bind (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_unbind (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_publish (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_consume (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_get (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_status (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_lag (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_ping (int argc, char **argv, cli_global_t *g);
int
    cli_cmd_keygen (int argc, char **argv, cli_global_t *g);

//  The whole command: global options, then the command.
int
    cli_main (int argc, char **argv);

#endif
