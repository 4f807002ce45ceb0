//  tests/unit/test_config.c — the configuration module: every validation
//  rule (a table of bad files, each with the exact FILE:LINE:COL error it
//  must produce), defaults, flow and block style, dump -> load round
//  trips, durations and sizes, key file permissions and ports in use.
#define _GNU_SOURCE
#include "config.h"
#include "config_internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#ifndef FEDQ_SOURCE_DIR
#error "FEDQ_SOURCE_DIR must name the source tree"
#endif
#define BAD_DIR FEDQ_SOURCE_DIR "/tests/config/bad"
#define GOOD_DIR FEDQ_SOURCE_DIR "/tests/config/good"
#define EXAMPLES_DIR FEDQ_SOURCE_DIR "/config/examples"

//  --- helpers -----------------------------------------------------------------

//  What cfg_load printed, and its result.
typedef struct {
    fedq_rc_t rc;
    cfg_t *cfg;
    char *errors;               //  everything printed to errs
    size_t lines;               //  lines printed
} load_t;

static load_t
s_load_opts (const char *path, const cfg_load_opts_t *opts)
{
    load_t result = {0};
    size_t size = 0;
    FILE *errs = open_memstream (&result.errors, &size);
    assert_non_null (errs);
    result.rc = cfg_load (path, opts, errs, &result.cfg);
    fclose (errs);
    for (const char *c = result.errors; *c; c++)
        result.lines += *c == '\n';
    return result;
}

static load_t
s_load (const char *path)
{
    cfg_load_opts_t opts = {false, false};
    return s_load_opts (path, &opts);
}

static load_t
s_load_text (const char *text, const cfg_load_opts_t *opts)
{
    load_t result = {0};
    size_t size = 0;
    FILE *errs = open_memstream (&result.errors, &size);
    assert_non_null (errs);
    result.rc = cfg_load_string (text, strlen (text), "site.yaml", opts,
                                 errs, &result.cfg);
    fclose (errs);
    for (const char *c = result.errors; *c; c++)
        result.lines += *c == '\n';
    return result;
}

static void
s_load_free (load_t *result)
{
    cfg_destroy (&result->cfg);
    free (result->errors);
    result->errors = NULL;
}

//  Load a file that must be valid; fail the test with its errors if not.
static cfg_t *
s_load_good (const char *path)
{
    load_t result = s_load (path);
    if (result.rc != FEDQ_OK)
        fail_msg ("%s should load, got:\n%s", path, result.errors);
    assert_string_equal (result.errors, "");
    cfg_t *cfg = result.cfg;
    result.cfg = NULL;
    s_load_free (&result);
    return cfg;
}

static char *
s_dump (const cfg_t *cfg, bool show_secrets)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert_non_null (out);
    cfg_dump (cfg, out, show_secrets);
    fclose (out);
    return text;
}

static char *
s_format (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static char *
s_format (const char *fmt, ...)
{
    va_list args;
    char *text = NULL;
    va_start (args, fmt);
    assert_true (vasprintf (&text, fmt, args) >= 0);
    va_end (args);
    return text;
}

//  --- bad files ---------------------------------------------------------------

//  Each bad file and (a prefix of) the exact error it must produce.
typedef struct {
    const char *file;
    const char *expect;
} bad_case_t;

static const bad_case_t s_bad_cases[] = {
    {"01-syntax-error.yaml",
     "01-syntax-error.yaml:7:5: YAML syntax error: did not find expected "
     "',' or '}' while parsing a flow mapping (at line 6)"},
    {"02-empty-file.yaml",
     "02-empty-file.yaml:1:1: the file is empty; expected a mapping with "
     "keys node, exchanges, queues, bindings, shovels, federated_queues"},
    {"03-top-not-mapping.yaml",
     "03-top-not-mapping.yaml:1:1: expected a mapping with keys node, "
     "exchanges, queues, bindings, shovels, federated_queues at the top, "
     "got a list"},
    {"04-missing-node.yaml",
     "04-missing-node.yaml:1:1: node: required key is missing (expected a "
     "mapping with keys id, data_dir, listen, http, fsync, "
     "max_message_bytes, segment_bytes, log_level, secu"},
    {"05-missing-node-id.yaml",
     "05-missing-node-id.yaml:2:3: node.id: required key is missing "
     "(expected a name of 1 to 255 characters from A-Z a-z 0-9 . _ -)"},
    {"06-missing-data-dir.yaml",
     "06-missing-data-dir.yaml:2:3: node.data_dir: required key is missing "
     "(expected a file path)"},
    {"07-missing-listen.yaml",
     "07-missing-listen.yaml:2:3: node.listen: required key is missing "
     "(expected an endpoint tcp://HOST:PORT, ipc://PATH or inproc://NAME)"},
    {"08-unknown-top-key.yaml",
     "08-unknown-top-key.yaml:7:1: shovel: unknown key; did you mean "
     "'shovels'?"},
    {"09-unknown-node-key.yaml",
     "09-unknown-node-key.yaml:5:3: node.fsyn: unknown key; did you mean "
     "'fsync'?"},
    {"10-unknown-shovel-key.yaml",
     "10-unknown-shovel-key.yaml:11:5: shovels[0].prefech: unknown key; "
     "did you mean 'prefetch'?"},
    {"11-unknown-key-no-suggestion.yaml",
     "11-unknown-key-no-suggestion.yaml:7:5: queues[0].colour: unknown "
     "key; expected one of: name, durable, auto_delete, max_length, "
     "max_bytes, overflow, message_ttl, dead_lett"},
    {"12-prefetch-negative.yaml",
     "12-prefetch-negative.yaml:11:15: shovels[0].prefetch: expected a "
     "positive integer, got \"-5\""},
    {"13-prefetch-too-large.yaml",
     "13-prefetch-too-large.yaml:11:15: shovels[0].prefetch: expected an "
     "integer from 1 to 1000000, got \"2000000\""},
    {"14-prefetch-zero.yaml",
     "14-prefetch-zero.yaml:8:105: shovels[0].prefetch: expected an "
     "integer from 1 to 1000000, got \"0\""},
    {"15-bool-invalid.yaml",
     "15-bool-invalid.yaml:6:30: queues[0].durable: expected true or "
     "false, got \"yes\""},
    {"16-fsync-unknown.yaml",
     "16-fsync-unknown.yaml:5:10: node.fsync: expected one of always, "
     "batch, never, got \"sometimes\""},
    {"17-fsync-typo.yaml",
     "17-fsync-typo.yaml:5:10: node.fsync: expected one of always, batch, "
     "never, got \"bacth\": did you mean 'batch'?"},
    {"18-duration-unknown-unit.yaml",
     "18-duration-unknown-unit.yaml:11:22: shovels[0].reconnect_delay: "
     "expected a duration such as 250ms, 5s, 2m or 1h, got \"5x\""},
    {"19-duration-negative.yaml",
     "19-duration-negative.yaml:11:16: shovels[0].lag_alert: expected a "
     "duration such as 250ms, 5s, 2m or 1h, got \"-1s\""},
    {"20-duration-overflow.yaml",
     "20-duration-overflow.yaml:11:16: shovels[0].lag_alert: expected a "
     "duration such as 250ms, 5s, 2m or 1h, got \"99999999999999999999h\": "
     "too large"},
    {"21-duration-out-of-range.yaml",
     "21-duration-out-of-range.yaml:11:16: shovels[0].heartbeat: expected "
     "a duration from 100ms to 10m, got \"1h\""},
    {"22-size-decimal-unit.yaml",
     "22-size-decimal-unit.yaml:5:22: node.max_message_bytes: expected a "
     "size such as 512, 64KiB, 16MiB or 1GiB, got \"16MB\": units are KiB, "
     "MiB, GiB and TiB (powers of 1024)"},
    {"23-size-out-of-range.yaml",
     "23-size-out-of-range.yaml:5:22: node.max_message_bytes: expected a "
     "size from 1 to 1GiB, got \"2GiB\""},
    {"24-max-priority.yaml",
     "24-max-priority.yaml:6:33: queues[0].max_priority: expected an "
     "integer from 0 to 9, got \"10\""},
    {"25-node-id-charset.yaml",
     "25-node-id-charset.yaml:2:7: node.id: expected a name of 1 to 255 "
     "characters from A-Z a-z 0-9 . _ -, got \"syd ney\""},
    {"26-queue-name-too-long.yaml",
     "26-queue-name-too-long.yaml:6:11: queues[0].name: expected a name of "
     "1 to 255 characters from A-Z a-z 0-9 . _ -, got "
     "\"qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"},
    {"27-exchange-name-charset.yaml",
     "27-exchange-name-charset.yaml:6:13: exchanges[0].name: expected a "
     "name of 1 to 255 characters from A-Z a-z 0-9 . _ -, got "
     "\"orders/eu\""},
    {"28-endpoint-scheme.yaml",
     "28-endpoint-scheme.yaml:4:11: node.listen: expected an endpoint "
     "tcp://HOST:PORT, ipc://PATH or inproc://NAME, got "
     "\"http://127.0.0.1:5680\": the scheme must be tcp://, ipc:"},
    {"29-endpoint-port-range.yaml",
     "29-endpoint-port-range.yaml:4:11: node.listen: expected an endpoint "
     "tcp://HOST:PORT, ipc://PATH or inproc://NAME, got "
     "\"tcp://127.0.0.1:70000\": the port must be a number f"},
    {"30-endpoint-port-zero.yaml",
     "30-endpoint-port-zero.yaml:10:30: shovels[0].destination.endpoint: "
     "expected an endpoint tcp://HOST:PORT, ipc://PATH or inproc://NAME, "
     "got \"tcp://127.0.0.1:0\": the port mu"},
    {"31-endpoint-no-port.yaml",
     "31-endpoint-no-port.yaml:8:32: "
     "federated_queues[0].peers[0].endpoint: expected an endpoint "
     "tcp://HOST:PORT, ipc://PATH or inproc://NAME, got "
     "\"tcp://127.0.0.1\": no :PORT"},
    {"32-http-with-scheme.yaml",
     "32-http-with-scheme.yaml:5:9: node.http: expected HOST:PORT, got "
     "\"http://127.0.0.1:9680\": write it without a scheme"},
    {"33-duplicate-queue.yaml",
     "33-duplicate-queue.yaml:8:13: queues[2].name: queue \"outbox\" is "
     "already declared at line 6 (queues[0]); give each queue its own name"},
    {"34-duplicate-exchange.yaml",
     "34-duplicate-exchange.yaml:7:13: exchanges[1].name: exchange "
     "\"orders\" is already declared at line 6 (exchanges[0]); give each "
     "exchange its own name"},
    {"35-duplicate-shovel.yaml",
     "35-duplicate-shovel.yaml:10:13: shovels[1].name: shovel \"out\" is "
     "already declared at line 9 (shovels[0]); give each shovel its own "
     "name"},
    {"36-duplicate-federated.yaml",
     "36-duplicate-federated.yaml:7:13: federated_queues[1].name: "
     "federated queue \"audit\" is already declared at line 6 "
     "(federated_queues[0]); give each federated queue its own"},
    {"37-federated-clashes-queue.yaml",
     "37-federated-clashes-queue.yaml:8:13: federated_queues[0].name: "
     "\"audit\" is declared both in queues (line 6) and in "
     "federated_queues; a federated queue declares its own qu"},
    {"38-binding-undeclared-queue.yaml",
     "38-binding-undeclared-queue.yaml:10:32: bindings[0].queue: queue "
     "\"ordres\" is not declared; did you mean 'orders'? (declare it under "
     "queues or federated_queues)"},
    {"39-binding-undeclared-exchange.yaml",
     "39-binding-undeclared-exchange.yaml:8:17: bindings[0].exchange: "
     "exchange \"events\" is not declared; declare it under exchanges"},
    {"40-shovel-undeclared-source.yaml",
     "40-shovel-undeclared-source.yaml:9:22: shovels[0].source.queue: "
     "queue \"inbox\" is not declared; declare it under queues or "
     "federated_queues"},
    {"41-dead-letter-exchange-undeclared.yaml",
     "41-dead-letter-exchange-undeclared.yaml:7:27: "
     "queues[0].dead_letter_exchange: exchange \"dlx\" is not declared; "
     "declare it under exchanges"},
    {"42-shovel-to-own-listen.yaml",
     "42-shovel-to-own-listen.yaml:10:30: shovels[0].destination.endpoint: "
     "\"tcp://127.0.0.1:5680\" is this node's own listen endpoint; a "
     "shovel forwards to another node (to move"},
    {"43-shovel-to-own-listen-by-name.yaml",
     "43-shovel-to-own-listen-by-name.yaml:10:30: "
     "shovels[0].destination.endpoint: \"tcp://localhost:5680\" is this "
     "node's own listen endpoint; a shovel forwards to another node "},
    {"44-federated-peer-own-id.yaml",
     "44-federated-peer-own-id.yaml:9:15: federated_queues[0].peers[1].id: "
     "\"sydney\" is this node's own id; list only the other members"},
    {"45-dest-queue-with-exchange.yaml",
     "45-dest-queue-with-exchange.yaml:13:14: "
     "shovels[0].destination.queue: cannot be combined with exchange; with "
     "queue set, messages go through the default exchange with rout"},
    {"46-public-listen-without-curve.yaml",
     "46-public-listen-without-curve.yaml:4:11: node.listen: "
     "\"tcp://0.0.0.0:5680\" is reachable beyond this machine without "
     "CURVE; configure node.security with secret_key and au"},
    {"47-security-empty.yaml",
     "47-security-empty.yaml:5:13: node.security: expected secret_key and "
     "authorized_keys (CURVE), or insecure: true, got neither"},
    {"48-secret-key-without-authorized-keys.yaml",
     "48-secret-key-without-authorized-keys.yaml:6:5: node.security: "
     "secret_key is set but authorized_keys is not; add authorized_keys: "
     "DIR (the NAME.pub files of the clients a"},
    {"49-list-expected.yaml",
     "49-list-expected.yaml:5:9: queues: expected a list of mappings (one "
     "\"- name: ...\" entry each), got \"outbox\""},
    {"50-list-item-scalar.yaml",
     "50-list-item-scalar.yaml:6:5: queues[0]: expected a mapping with "
     "keys name, durable, auto_delete, max_length, max_bytes, overflow, "
     "message_ttl, dead_letter_exchange, dead"},
    {"51-mapping-expected.yaml",
     "51-mapping-expected.yaml:9:13: shovels[0].source: expected a mapping "
     "with keys queue, got \"outbox\""},
    {"52-scalar-expected.yaml",
     "52-scalar-expected.yaml:2:7: node.id: expected a name of 1 to 255 "
     "characters from A-Z a-z 0-9 . _ -, got a list"},
    {"53-duplicate-key.yaml",
     "53-duplicate-key.yaml:5:3: node.id: duplicate key (first written at "
     "line 2); keep one"},
    {"54-empty-value.yaml",
     "54-empty-value.yaml:11:14: shovels[0].prefetch: expected a positive "
     "integer, got nothing; write a value or remove the key"},
    {"55-two-documents.yaml",
     "55-two-documents.yaml:6:1: a second YAML document; a configuration "
     "is one document (remove the '---' line)"},
    {"56-three-errors.yaml",
     "56-three-errors.yaml:5:10: node.fsync: expected one of always, "
     "batch, never, got \"sometimes\""},
    {"57-shovel-missing-source.yaml",
     "57-shovel-missing-source.yaml:6:5: shovels[0].source: required key "
     "is missing (expected a mapping with keys queue)"},
    {"58-shovel-missing-endpoint.yaml",
     "58-shovel-missing-endpoint.yaml:10:18: "
     "shovels[0].destination.endpoint: required key is missing (expected "
     "an endpoint tcp://HOST:PORT, ipc://PATH or inproc://NAME)"},
    {"59-peer-missing-id.yaml",
     "59-peer-missing-id.yaml:8:9: federated_queues[0].peers[0].id: "
     "required key is missing (expected a name of 1 to 255 characters from "
     "A-Z a-z 0-9 . _ -)"},
    {"60-delete-after-invalid.yaml",
     "60-delete-after-invalid.yaml:11:19: shovels[0].delete_after: "
     "expected never, queue-length or a positive count, got \"0\""},
    {"61-max-reconnect-below-first.yaml",
     "61-max-reconnect-below-first.yaml:12:26: "
     "shovels[0].max_reconnect_delay: 2s is shorter than reconnect_delay "
     "5s; the back-off grows from reconnect_delay up to this, so rai"},
    {"62-exchange-type-missing.yaml",
     "62-exchange-type-missing.yaml:6:5: exchanges[0].type: required key "
     "is missing (expected one of direct, fanout, topic)"},
    {"63-exchange-type-unknown.yaml",
     "63-exchange-type-unknown.yaml:6:27: exchanges[0].type: expected one "
     "of direct, fanout, topic, got \"headers\""},
    {"64-bind-default-exchange.yaml",
     "64-bind-default-exchange.yaml:8:17: bindings[0].exchange: the "
     "default exchange \"\" routes by queue name and cannot be bound; name "
     "a declared exchange"},
    {"65-shovel-source-shared.yaml",
     "65-shovel-source-shared.yaml:9:33: shovels[1].source.queue: queue "
     "\"outbox\" is already the source of shovels[0] (line 8); a queue "
     "feeds one shovel, so give this shovel its"},
    {"66-http-same-port-as-listen.yaml",
     "66-http-same-port-as-listen.yaml:5:9: node.http: port 5680 is also "
     "node.listen's port; give the HTTP endpoint its own port"},
    {"67-dead-letter-key-without-exchange.yaml",
     "67-dead-letter-key-without-exchange.yaml:6:44: "
     "queues[0].dead_letter_routing_key: has no effect without "
     "dead_letter_exchange; set dead_letter_exchange (\"\" is the default "},
    {"68-federated-dead-letter-undeclared.yaml",
     "68-federated-dead-letter-undeclared.yaml:8:42: "
     "federated_queues[0].dead_letter_exchange: exchange \"daed\" is not "
     "declared; did you mean 'dead'? (declare it under exchanges"},
    {"69-control-character.yaml",
     "69-control-character.yaml:6:16: YAML syntax error: control "
     "characters are not allowed (byte 99); the file must be UTF-8 text"},
    {"70-undefined-alias.yaml",
     "70-undefined-alias.yaml:6:5: YAML syntax error: found undefined "
     "alias"},
    {"71-peer-listed-twice.yaml",
     "71-peer-listed-twice.yaml:9:15: federated_queues[0].peers[1].id: "
     "peer \"perth\" is already listed at line 8; list each member once"},
    {"72-peer-endpoint-own-listen.yaml",
     "72-peer-endpoint-own-listen.yaml:8:32: "
     "federated_queues[0].peers[0].endpoint: \"tcp://127.0.0.1:5680\" is "
     "this node's own listen endpoint; list only the other members"},
    {"73-ipc-empty-path.yaml",
     "73-ipc-empty-path.yaml:4:11: node.listen: expected an endpoint "
     "tcp://HOST:PORT, ipc://PATH or inproc://NAME, got \"ipc://\": the "
     "path is empty"},
    {"74-ipv6-without-brackets.yaml",
     "74-ipv6-without-brackets.yaml:4:11: node.listen: expected an "
     "endpoint tcp://HOST:PORT, ipc://PATH or inproc://NAME, got "
     "\"tcp://::1:5680\": an IPv6 host must be written [AD"},
    {"75-binding-key-is-list.yaml",
     "75-binding-key-is-list.yaml:10:45: bindings[0].key: expected a "
     "string, got a list"},
    {"76-max-length-not-number.yaml",
     "76-max-length-not-number.yaml:6:33: queues[0].max_length: expected a "
     "non-negative integer, got \"1e6\""},
    {"77-log-level-unknown.yaml",
     "77-log-level-unknown.yaml:5:14: node.log_level: expected one of "
     "debug, info, warn, error, got \"verbose\""},
    {"78-consume-unknown.yaml",
     "78-consume-unknown.yaml:6:29: federated_queues[0].consume: expected "
     "one of local, global, got \"globl\": did you mean 'global'?"},
    {"79-ack-mode-unknown.yaml",
     "79-ack-mode-unknown.yaml:11:15: shovels[0].ack_mode: expected one of "
     "on-confirm, on-publish, no-ack, got \"confirm\": did you mean "
     "'on-confirm'?"},
    {"80-tab-indentation.yaml",
     "80-tab-indentation.yaml:2:1: YAML syntax error: found character that "
     "cannot start any token while scanning for the next token (at line "
     "2); indent with spaces, YAML does n"},
    {"81-duplicate-binding.yaml",
     "81-duplicate-binding.yaml:12:5: bindings[2]: the same binding as "
     "bindings[0] (line 10); remove one"},
    {"82-key-at-wrong-level.yaml",
     "82-key-at-wrong-level.yaml:12:7: shovels[0].destination.prefetch: "
     "unknown key here; 'prefetch' is a key of shovels[]"},
    {"83-node-keys-at-top-level.yaml",
     "83-node-keys-at-top-level.yaml:1:1: id: unknown key here; 'id' is a "
     "key of node or federated_queues[].peers[]"},
    {"84-merge-key.yaml",
     "84-merge-key.yaml:8:5: queues[0].<<: YAML merge keys are not "
     "supported; write the keys out"},
    {"85-shovel-server-key-missing.yaml",
     "85-shovel-server-key-missing.yaml:14:7: shovels[0].destination: "
     "server_key is required when node.security has a secret_key (links "
     "use CURVE too); add server_key: FILE"},
    {"86-peer-server-key-missing.yaml",
     "86-peer-server-key-missing.yaml:13:9: federated_queues[0].peers[1]: "
     "server_key is required when node.security has a secret_key"},
    {"87-server-key-without-curve.yaml",
     "87-server-key-without-curve.yaml:12:19: "
     "shovels[0].destination.server_key: needs node.security.secret_key "
     "(this node's own key to connect with)"},
    {"88-http-tls-without-http.yaml",
     "88-http-tls-without-http.yaml:6:5: node.http_tls: has no effect "
     "without node.http; set node.http: HOST:PORT or remove http_tls"},
    {"89-http-tls-missing-key.yaml",
     "89-http-tls-missing-key.yaml:7:5: node.http_tls.key: required key is "
     "missing (expected a file path)"},
    {"90-history-max-messages-zero.yaml",
     "90-history-max-messages-zero.yaml:6:42: "
     "federated_queues[0].history_max_messages: expected an integer from 1 "
     "to 1000000000, got \"0\""},
    {"91-history-max-bytes-too-large.yaml",
     "91-history-max-bytes-too-large.yaml:6:39: "
     "federated_queues[0].history_max_bytes: expected a size from 1 to "
     "1TiB, got \"2TiB\""},
    {"92-history-max-messages-not-number.yaml",
     "92-history-max-messages-not-number.yaml:6:42: "
     "federated_queues[0].history_max_messages: expected a positive "
     "integer, got \"lots\""},
    {"93-global-handoff-too-long.yaml",
     "93-global-handoff-too-long.yaml:6:53: "
     "federated_queues[0].global_handoff: expected a duration from 0s to "
     "1h, got \"2h\""},
};

#define NBAD (sizeof s_bad_cases / sizeof s_bad_cases[0])

static void
test_bad_files (void **state)
{
    (void) state;
    size_t failures = 0;
    assert_true (NBAD >= 40);
    for (size_t i = 0; i < NBAD; i++) {
        char *path = s_format ("%s/%s", BAD_DIR, s_bad_cases[i].file);
        load_t result = s_load (path);
        bool ok = result.rc == FEDQ_ECONFIG && result.cfg == NULL
                  && strstr (result.errors, s_bad_cases[i].expect);
        //  Every line printed is FILE:LINE:COL: message.
        for (char *line = result.errors; ok && *line;) {
            int l = 0, c = 0, used = 0;
            ok = strncmp (line, path, strlen (path)) == 0
                 && sscanf (line + strlen (path), ":%d:%d: %n", &l, &c, &used)
                        == 2
                 && used > 0 && l >= 1 && c >= 1;
            char *end = strchr (line, '\n');
            line = end ? end + 1 : line + strlen (line);
        }
        if (!ok) {
            print_error ("%s:\n  expected: %s\n  got (rc %d):\n%s\n",
                         s_bad_cases[i].file, s_bad_cases[i].expect,
                         result.rc, result.errors);
            failures++;
        }
        s_load_free (&result);
        free (path);
    }
    assert_int_equal (failures, 0);
}

//  Every file in tests/config/bad/ is in the table, so none goes untested.
static void
test_bad_files_all_listed (void **state)
{
    (void) state;
    DIR *dir = opendir (BAD_DIR);
    assert_non_null (dir);
    struct dirent *entry;
    size_t files = 0;
    while ((entry = readdir (dir))) {
        if (entry->d_name[0] == '.')
            continue;
        bool listed = false;
        for (size_t i = 0; i < NBAD; i++)
            listed |= strcmp (s_bad_cases[i].file, entry->d_name) == 0;
        if (!listed)
            fail_msg ("%s has no entry in s_bad_cases", entry->d_name);
        files++;
    }
    closedir (dir);
    assert_int_equal (files, NBAD);
}

//  A file with three mistakes reports all three, in file order.
static void
test_all_errors_at_once (void **state)
{
    (void) state;
    load_t result = s_load (BAD_DIR "/56-three-errors.yaml");
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    assert_int_equal (result.lines, 3);
    char *fsync = strstr (result.errors, ":5:10: node.fsync:");
    char *priority = strstr (result.errors, ":7:35: queues[0].max_priority:");
    char *binding = strstr (result.errors, ":9:17: bindings[0].exchange:");
    assert_non_null (fsync);
    assert_non_null (priority);
    assert_non_null (binding);
    assert_true (fsync < priority && priority < binding);
    s_load_free (&result);

    //  Errors of every stage together: a type, an unknown key, a missing
    //  key and a reference.
    result = s_load_text ("node:\n"
                          "  id: a\n"
                          "  listen: tcp://127.0.0.1:5680\n"
                          "  fsinc: always\n"
                          "queues:\n"
                          "  - { name: q, durable: maybe }\n"
                          "bindings:\n"
                          "  - { exchange: x, queue: q }\n",
                          NULL);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    assert_int_equal (result.lines, 4);
    assert_non_null (strstr (result.errors, "site.yaml:2:3: node.data_dir: "
                                            "required key is missing"));
    assert_non_null (strstr (result.errors, "site.yaml:4:3: node.fsinc: "
                                            "unknown key; did you mean "
                                            "'fsync'?"));
    assert_non_null (strstr (result.errors,
                             "site.yaml:6:25: queues[0].durable: expected "
                             "true or false, got \"maybe\""));
    assert_non_null (strstr (result.errors,
                             "site.yaml:8:17: bindings[0].exchange: "
                             "exchange \"x\" is not declared"));
    s_load_free (&result);
}

static void
test_missing_file (void **state)
{
    (void) state;
    load_t result = s_load (BAD_DIR "/no-such-file.yaml");
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    assert_null (result.cfg);
    assert_non_null (strstr (result.errors,
                             "no-such-file.yaml:1:1: cannot open the file: "
                             "No such file or directory"));
    s_load_free (&result);
}

//  Aliases that expand to millions of values are refused, quickly.
static void
test_alias_expansion_capped (void **state)
{
    (void) state;
    char *peers = NULL, *feds = NULL;
    size_t psize = 0, fsize = 0;
    FILE *p = open_memstream (&peers, &psize);
    FILE *f = open_memstream (&feds, &fsize);
    for (int i = 0; i < 600; i++) {
        fprintf (p, "%s*e", i ? ", " : "");
        fprintf (f, "%s*q", i ? ", " : "");
    }
    fclose (p);
    fclose (f);
    char *text = s_format (
        "node: { id: a, data_dir: d, listen: \"tcp://127.0.0.1:5680\" }\n"
        "x: &e { id: b, endpoint: \"tcp://127.0.0.1:5681\" }\n"
        "y: &q { name: f, peers: [%s] }\n"
        "federated_queues: [%s]\n",
        peers, feds);
    int64_t start = fedq_mono_ms ();
    load_t result = s_load_text (text, NULL);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    assert_non_null (strstr (result.errors, "more than 100000 values"));
    assert_true (fedq_mono_ms () - start < 10000);
    s_load_free (&result);
    free (text);
    free (peers);
    free (feds);
}

//  --- good files ----------------------------------------------------------------

static void
test_minimal_defaults (void **state)
{
    (void) state;
    cfg_t *cfg = s_load_good (GOOD_DIR "/minimal.yaml");
    assert_string_equal (cfg->path, GOOD_DIR "/minimal.yaml");
    assert_string_equal (cfg->node.id, "solo");
    assert_string_equal (cfg->node.data_dir, "./data/solo");
    assert_string_equal (cfg->node.listen, "tcp://127.0.0.1:5690");
    assert_null (cfg->node.http);
    assert_int_equal (cfg->node.fsync, CFG_FSYNC_BATCH);
    assert_int_equal (cfg->node.max_message_bytes, 16u << 20);
    assert_int_equal (cfg->node.segment_bytes, 64u << 20);
    assert_string_equal (cfg->node.log_level, "info");
    assert_false (cfg->node.has_security);
    assert_null (cfg->node.security.secret_key);
    assert_false (cfg->node.security.insecure);
    assert_int_equal (cfg->nexchanges + cfg->nqueues + cfg->nbindings
                          + cfg->nshovels + cfg->nfederated,
                      0);
    cfg_destroy (&cfg);
    assert_null (cfg);
    cfg_destroy (&cfg);         //  safe on NULL
}

static void
test_example_sydney (void **state)
{
    (void) state;
    cfg_t *cfg = s_load_good (EXAMPLES_DIR "/sydney.yaml");
    assert_string_equal (cfg->node.id, "sydney");
    assert_string_equal (cfg->node.data_dir, "./data/sydney");
    assert_string_equal (cfg->node.listen, "tcp://127.0.0.1:5680");
    assert_string_equal (cfg->node.http, "127.0.0.1:9680");
    assert_int_equal (cfg->nqueues, 1);
    assert_string_equal (cfg->queues[0].name, "outbox");
    assert_true (cfg->queues[0].durable);
    assert_int_equal (cfg->queues[0].overflow, CFG_OVERFLOW_DROP_HEAD);
    assert_null (cfg->queues[0].dead_letter_exchange);

    assert_int_equal (cfg->nshovels, 1);
    const cfg_shovel_t *s = &cfg->shovels[0];
    assert_string_equal (s->name, "outbox-to-melbourne");
    assert_string_equal (s->source_queue, "outbox");
    assert_string_equal (s->dest_endpoint, "tcp://127.0.0.1:5681");
    assert_string_equal (s->dest_exchange, "orders");
    assert_string_equal (s->dest_routing_key, "order.created");
    assert_null (s->dest_queue);
    assert_int_equal (s->ack_mode, CFG_ACK_ON_CONFIRM);
    assert_int_equal (s->prefetch, 1000);
    assert_int_equal (s->reconnect_delay_ms, 1000);
    assert_int_equal (s->max_reconnect_delay_ms, 30000);
    assert_int_equal (s->heartbeat_ms, 1000);
    assert_int_equal (s->delete_after, CFG_DELETE_NEVER);
    assert_int_equal (s->max_attempts, 3);
    assert_int_equal (s->lag_alert_ms, 5000);
    assert_int_equal (s->backlog_alert, 0);
    assert_false (s->verify_digest);
    assert_true (s->mark.line > 0);

    assert_int_equal (cfg->nfederated, 1);
    const cfg_federated_t *f = &cfg->federated[0];
    assert_string_equal (f->queue.name, "audit");
    assert_true (f->queue.durable);
    assert_int_equal (f->consume, CFG_CONSUME_LOCAL);
    assert_int_equal (f->npeers, 2);
    assert_string_equal (f->peers[0].id, "melbourne");
    assert_string_equal (f->peers[0].endpoint, "tcp://127.0.0.1:5681");
    assert_string_equal (f->peers[1].id, "perth");
    assert_string_equal (f->peers[1].endpoint, "tcp://127.0.0.1:5682");
    assert_int_equal (f->lag_alert_ms, 10000);
    assert_int_equal (f->queue.mark.line, f->mark.line);
    assert_true (f->peers[1].mark.line > f->peers[0].mark.line);
    cfg_destroy (&cfg);
}

static void
test_examples_topology (void **state)
{
    (void) state;
    cfg_t *syd = s_load_good (EXAMPLES_DIR "/sydney.yaml");
    cfg_t *mel = s_load_good (EXAMPLES_DIR "/melbourne.yaml");
    cfg_t *per = s_load_good (EXAMPLES_DIR "/perth.yaml");
    cfg_t *all[] = {syd, mel, per};
    const char *ports[] = {"5680", "5681", "5682"};
    for (int i = 0; i < 3; i++) {
        char want[64];
        snprintf (want, sizeof want, "tcp://127.0.0.1:%s", ports[i]);
        assert_string_equal (all[i]->node.listen, want);
        assert_non_null (cfg_find_queue (all[i], "outbox"));
        //  audit: every member lists the other two (a full mesh).
        const cfg_federated_t *audit = cfg_find_federated (all[i], "audit");
        assert_non_null (audit);
        assert_int_equal (audit->consume, CFG_CONSUME_LOCAL);
        assert_int_equal (audit->npeers, 2);
        for (size_t p = 0; p < audit->npeers; p++) {
            assert_string_not_equal (audit->peers[p].id, all[i]->node.id);
            bool found = false;
            for (int j = 0; j < 3; j++)
                if (!strcmp (all[j]->node.id, audit->peers[p].id)) {
                    assert_string_equal (audit->peers[p].endpoint,
                                         all[j]->node.listen);
                    found = true;
                }
            assert_true (found);
        }
    }
    //  sydney -> melbourne -> perth, into exchanges those nodes declare.
    assert_string_equal (syd->shovels[0].dest_endpoint, mel->node.listen);
    assert_string_equal (mel->shovels[0].dest_endpoint, per->node.listen);
    for (int i = 1; i < 3; i++) {
        const cfg_exchange_t *orders = cfg_find_exchange (all[i], "orders");
        assert_non_null (orders);
        assert_int_equal (orders->type, CFG_EXCHANGE_TOPIC);
        assert_non_null (cfg_find_queue (all[i], "orders"));
        assert_int_equal (all[i]->nbindings, 1);
        assert_string_equal (all[i]->bindings[0].key, "order.#");
    }
    assert_string_equal (syd->shovels[0].dest_exchange, "orders");
    assert_string_equal (mel->shovels[0].dest_exchange, "orders");
    assert_string_equal (mel->shovels[0].dest_routing_key, "order.created");
    assert_int_equal (per->nshovels, 0);
    assert_null (cfg_find_shovel (per, "outbox-to-perth"));
    assert_non_null (cfg_find_shovel (mel, "outbox-to-perth"));
    for (int i = 0; i < 3; i++)
        cfg_destroy (&all[i]);
}

static void
test_full_values (void **state)
{
    (void) state;
    cfg_t *cfg = s_load_good (GOOD_DIR "/full.yaml");
    assert_string_equal (cfg->node.id, "edge-1.syd_a");
    assert_string_equal (cfg->node.http, "[::1]:9680");
    assert_int_equal (cfg->node.fsync, CFG_FSYNC_ALWAYS);
    assert_int_equal (cfg->node.max_message_bytes, 1u << 20);
    assert_int_equal (cfg->node.segment_bytes, 128u << 20);
    assert_string_equal (cfg->node.log_level, "debug");
    assert_true (cfg->node.has_security);
    assert_string_equal (cfg->node.security.secret_key, "keys/edge-1.key");
    assert_string_equal (cfg->node.security.authorized_keys,
                         "keys/authorized/");
    assert_false (cfg->node.security.insecure);

    const cfg_queue_t *q = cfg_find_queue (cfg, "outbox");
    assert_non_null (q);
    assert_false (q->durable);
    assert_true (q->auto_delete);
    assert_int_equal (q->max_length, 500);
    assert_int_equal (q->max_bytes, 65536);
    assert_int_equal (q->overflow, CFG_OVERFLOW_REJECT_PUBLISH);
    assert_int_equal (q->message_ttl_ms, 90000);
    assert_string_equal (q->dead_letter_exchange, "dead");
    assert_string_equal (q->dead_letter_routing_key, "outbox.dead");
    assert_int_equal (q->max_priority, 9);
    assert_true (q->single_active_consumer);
    assert_int_equal (q->dedup_window_ms, 600000);
    q = cfg_find_queue (cfg, "retry");
    assert_string_equal (q->dead_letter_exchange, "");
    assert_string_equal (cfg->bindings[1].key, "");
    assert_string_equal (cfg->bindings[2].key, "audit \"quoted\" \\ key");

    const cfg_shovel_t *s = cfg_find_shovel (cfg, "to-hub");
    assert_int_equal (s->ack_mode, CFG_ACK_ON_PUBLISH);
    assert_int_equal (s->prefetch, 250);
    assert_int_equal (s->reconnect_delay_ms, 250);
    assert_int_equal (s->max_reconnect_delay_ms, 120000);
    assert_int_equal (s->heartbeat_ms, 500);
    assert_int_equal (s->delete_after, CFG_DELETE_COUNT);
    assert_int_equal (s->delete_after_count, 1000);
    assert_int_equal (s->max_attempts, 7);
    assert_int_equal (s->lag_alert_ms, 3600000);
    assert_int_equal (s->backlog_alert, 100000);
    assert_true (s->verify_digest);

    //  A destination queue means the default exchange, key = queue.
    s = cfg_find_shovel (cfg, "parked-to-archive");
    assert_string_equal (s->dest_endpoint, "ipc:///run/fedq/archive.sock");
    assert_string_equal (s->dest_queue, "archive");
    assert_string_equal (s->dest_exchange, "");
    assert_string_equal (s->dest_routing_key, "archive");
    assert_int_equal (s->ack_mode, CFG_ACK_NO_ACK);
    assert_int_equal (s->delete_after, CFG_DELETE_QUEUE_LENGTH);

    const cfg_federated_t *f = cfg_find_federated (cfg, "audit");
    assert_int_equal (f->consume, CFG_CONSUME_GLOBAL);
    assert_int_equal (f->queue.max_bytes, 1u << 30);
    assert_int_equal (f->queue.message_ttl_ms, 24 * 3600000);
    assert_int_equal (f->queue.max_priority, 3);
    assert_int_equal (f->npeers, 3);
    assert_string_equal (f->peers[1].endpoint, "tcp://[fe80::1]:5680");
    assert_int_equal (f->backlog_alert, 5000);
    assert_ptr_equal (cfg_find_queue (cfg, "audit"), &f->queue);
    assert_null (cfg_find_queue (cfg, "nope"));
    assert_null (cfg_find_exchange (cfg, "nope"));
    cfg_destroy (&cfg);
}

static void
test_flow_equals_block (void **state)
{
    (void) state;
    cfg_t *flow = s_load_good (GOOD_DIR "/flow.yaml");
    cfg_t *block = s_load_good (GOOD_DIR "/block.yaml");
    assert_true (cfg_equal (flow, block));
    assert_int_equal (flow->queues[1].max_length, 10);
    assert_string_equal (block->bindings[0].key, "order.#");
    cfg_destroy (&flow);
    cfg_destroy (&block);
}

//  --- dump -----------------------------------------------------------------------

static void
s_round_trip (const char *path)
{
    cfg_t *cfg = s_load_good (path);
    char *text = s_dump (cfg, true);
    load_t again = s_load_text (text, NULL);
    if (again.rc != FEDQ_OK)
        fail_msg ("dump of %s does not load:\n%s\n%s", path, again.errors,
                  text);
    assert_true (cfg_equal (cfg, again.cfg));
    //  Dumping is a fixed point.
    char *text2 = s_dump (again.cfg, true);
    assert_string_equal (text, text2);
    free (text2);
    free (text);
    s_load_free (&again);
    cfg_destroy (&cfg);
}

static void
test_dump_round_trip (void **state)
{
    (void) state;
    s_round_trip (EXAMPLES_DIR "/sydney.yaml");
    s_round_trip (EXAMPLES_DIR "/melbourne.yaml");
    s_round_trip (EXAMPLES_DIR "/perth.yaml");
    s_round_trip (GOOD_DIR "/full.yaml");
    s_round_trip (GOOD_DIR "/minimal.yaml");
    s_round_trip (GOOD_DIR "/flow.yaml");
}

static void
test_dump_redacts_secrets (void **state)
{
    (void) state;
    cfg_t *cfg = s_load_good (GOOD_DIR "/full.yaml");
    char *text = s_dump (cfg, false);
    assert_null (strstr (text, "edge-1.key"));
    assert_non_null (strstr (text, "secret_key: \"<redacted>\""));
    assert_non_null (strstr (text, "authorized_keys: \"keys/authorized/\""));
    //  Loads (without key file checks), equal but for the secret.
    load_t again = s_load_text (text, NULL);
    assert_int_equal (again.rc, FEDQ_OK);
    assert_false (cfg_equal (cfg, again.cfg));
    assert_string_equal (again.cfg->node.security.secret_key, "<redacted>");
    free (again.cfg->node.security.secret_key);
    again.cfg->node.security.secret_key = strdup ("keys/edge-1.key");
    assert_true (cfg_equal (cfg, again.cfg));
    s_load_free (&again);
    free (text);

    //  Defaults are written out: the effective configuration.
    cfg_t *min = s_load_good (GOOD_DIR "/minimal.yaml");
    text = s_dump (min, false);
    assert_non_null (strstr (text, "  fsync: batch\n"));
    assert_non_null (strstr (text, "  max_message_bytes: 16MiB\n"));
    assert_non_null (strstr (text, "shovels: []\n"));
    assert_null (strstr (text, "http:"));
    assert_null (strstr (text, "security:"));
    free (text);
    cfg_destroy (&min);
    cfg_destroy (&cfg);
}

//  --- comparisons for reload ---------------------------------------------

static void
test_equal_helpers (void **state)
{
    (void) state;
    cfg_t *a = s_load_good (GOOD_DIR "/full.yaml");
    cfg_t *b = s_load_good (GOOD_DIR "/full.yaml");
    assert_true (cfg_equal (a, b));
    assert_true (cfg_node_equal (&a->node, &b->node));
    assert_true (cfg_shovel_equal (&a->shovels[0], &b->shovels[0]));
    assert_false (cfg_shovel_equal (&a->shovels[0], &b->shovels[1]));
    assert_true (cfg_federated_equal (&a->federated[0], &b->federated[0]));
    assert_true (cfg_queue_equal (&a->queues[0], &b->queues[0]));
    assert_true (cfg_exchange_equal (&a->exchanges[0], &b->exchanges[0]));
    assert_true (cfg_binding_equal (&a->bindings[0], &b->bindings[0]));

    b->shovels[0].prefetch++;
    assert_false (cfg_shovel_equal (&a->shovels[0], &b->shovels[0]));
    assert_false (cfg_equal (a, b));
    b->shovels[0].prefetch--;
    b->shovels[0].delete_after_count++;
    assert_false (cfg_shovel_equal (&a->shovels[0], &b->shovels[0]));
    b->shovels[0].delete_after_count--;

    //  A peer's endpoint changes the federated queue, not its queue.
    free (b->federated[0].peers[2].endpoint);
    b->federated[0].peers[2].endpoint = strdup ("inproc://other");
    assert_false (cfg_federated_equal (&a->federated[0], &b->federated[0]));
    assert_true (cfg_queue_equal (&a->federated[0].queue,
                                  &b->federated[0].queue));
    b->federated[0].npeers--;
    assert_false (cfg_federated_equal (&a->federated[0], &b->federated[0]));
    b->federated[0].npeers++;

    b->queues[0].dead_letter_routing_key[0] = 'X';
    assert_false (cfg_queue_equal (&a->queues[0], &b->queues[0]));
    b->exchanges[0].type = CFG_EXCHANGE_DIRECT;
    assert_false (cfg_exchange_equal (&a->exchanges[0], &b->exchanges[0]));
    b->node.has_security = false;
    assert_false (cfg_node_equal (&a->node, &b->node));
    //  Marks and the file path are not settings.
    b->node.has_security = true;
    free (b->path);
    b->path = strdup ("elsewhere.yaml");
    a->bindings[0].mark.line = 99;
    assert_true (cfg_binding_equal (&a->bindings[0], &b->bindings[0]));
    cfg_destroy (&a);
    cfg_destroy (&b);
}

//  --- values ---------------------------------------------------------------------

static void
test_parse_duration (void **state)
{
    (void) state;
    struct {
        const char *text;
        fedq_rc_t rc;
        uint64_t ms;
    } cases[] = {
        {"0", FEDQ_OK, 0},
        {"250", FEDQ_OK, 250},
        {"250ms", FEDQ_OK, 250},
        {"5s", FEDQ_OK, 5000},
        {"2m", FEDQ_OK, 120000},
        {"1h", FEDQ_OK, 3600000},
        {"0h", FEDQ_OK, 0},
        {"007s", FEDQ_OK, 7000},
        {"18446744073709551615", FEDQ_OK, UINT64_MAX},
        {"18446744073709551615ms", FEDQ_OK, UINT64_MAX},
        {"18446744073709551616", FEDQ_ETOOBIG, 0},
        {"5124095576030h", FEDQ_OK, 5124095576030ull * 3600000},
        {"5124095576031h", FEDQ_ETOOBIG, 0},
        {"18446744073709552s", FEDQ_ETOOBIG, 0},
        {"99999999999999999999999h", FEDQ_ETOOBIG, 0},
        {"-1", FEDQ_EINVAL, 0},
        {"-5s", FEDQ_EINVAL, 0},
        {"+5s", FEDQ_EINVAL, 0},
        {"", FEDQ_EINVAL, 0},
        {"s", FEDQ_EINVAL, 0},
        {"5x", FEDQ_EINVAL, 0},
        {"5 s", FEDQ_EINVAL, 0},
        {" 5s", FEDQ_EINVAL, 0},
        {"1.5s", FEDQ_EINVAL, 0},
        {"5S", FEDQ_EINVAL, 0},
        {"5sec", FEDQ_EINVAL, 0},
        {"5d", FEDQ_EINVAL, 0},
        {"5ms5", FEDQ_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 12345;
        fedq_rc_t rc = cfg_parse_duration (cases[i].text, &ms);
        if (rc != cases[i].rc)
            fail_msg ("\"%s\": rc %d, expected %d", cases[i].text, rc,
                      cases[i].rc);
        assert_int_equal (ms, rc == FEDQ_OK ? cases[i].ms : 12345);
    }
    uint64_t ms;
    assert_int_equal (cfg_parse_duration (NULL, &ms), FEDQ_EINVAL);
}

static void
test_parse_size (void **state)
{
    (void) state;
    struct {
        const char *text;
        fedq_rc_t rc;
        uint64_t bytes;
    } cases[] = {
        {"0", FEDQ_OK, 0},
        {"512", FEDQ_OK, 512},
        {"512B", FEDQ_OK, 512},
        {"64KiB", FEDQ_OK, 65536},
        {"16MiB", FEDQ_OK, 16777216},
        {"1GiB", FEDQ_OK, 1073741824},
        {"2TiB", FEDQ_OK, 2ull << 40},
        {"16777215TiB", FEDQ_OK, 16777215ull << 40},
        {"16777216TiB", FEDQ_ETOOBIG, 0},
        {"18446744073709551615", FEDQ_OK, UINT64_MAX},
        {"18446744073709551616", FEDQ_ETOOBIG, 0},
        {"-1", FEDQ_EINVAL, 0},
        {"", FEDQ_EINVAL, 0},
        {"KiB", FEDQ_EINVAL, 0},
        {"16MB", FEDQ_EINVAL, 0},
        {"16M", FEDQ_EINVAL, 0},
        {"16kib", FEDQ_EINVAL, 0},
        {"1.5GiB", FEDQ_EINVAL, 0},
        {"16 MiB", FEDQ_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t bytes = 12345;
        fedq_rc_t rc = cfg_parse_size (cases[i].text, &bytes);
        if (rc != cases[i].rc)
            fail_msg ("\"%s\": rc %d, expected %d", cases[i].text, rc,
                      cases[i].rc);
        assert_int_equal (bytes, rc == FEDQ_OK ? cases[i].bytes : 12345);
    }
}

static void
test_format_values (void **state)
{
    (void) state;
    char buf[32];
    struct {
        uint64_t ms;
        const char *text;
    } durations[] = {{0, "0s"},         {1, "1ms"},      {250, "250ms"},
                     {1500, "1500ms"},  {5000, "5s"},    {90000, "90s"},
                     {120000, "2m"},    {3600000, "1h"}, {5400000, "90m"},
                     {UINT64_MAX, "18446744073709551615ms"}};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        cfg_format_duration (durations[i].ms, buf, sizeof buf);
        assert_string_equal (buf, durations[i].text);
        uint64_t back;
        assert_int_equal (cfg_parse_duration (buf, &back), FEDQ_OK);
        assert_int_equal (back, durations[i].ms);
    }
    struct {
        uint64_t bytes;
        const char *text;
    } sizes[] = {{0, "0"},           {1000, "1000"},       {1024, "1KiB"},
                 {1536, "1536"},     {3u << 20, "3MiB"},   {1u << 30, "1GiB"},
                 {5ull << 40, "5TiB"}, {(1u << 20) + 1024, "1025KiB"}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        cfg_format_size (sizes[i].bytes, buf, sizeof buf);
        assert_string_equal (buf, sizes[i].text);
    }
}

//  --- the machine: key files and ports --------------------------------------

typedef struct {
    char dir[64];
    char key[128];
    char authorized[128];
} keydir_t;

static void
s_keydir_make (keydir_t *kd, mode_t key_mode)
{
    snprintf (kd->dir, sizeof kd->dir, "/tmp/fedq-test-config-XXXXXX");
    assert_non_null (mkdtemp (kd->dir));
    snprintf (kd->key, sizeof kd->key, "%s/node.key", kd->dir);
    snprintf (kd->authorized, sizeof kd->authorized, "%s/authorized",
              kd->dir);
    int fd = open (kd->key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, "secret\n", 7), 7);
    close (fd);
    assert_int_equal (chmod (kd->key, key_mode), 0);
    assert_int_equal (mkdir (kd->authorized, 0700), 0);
}

static void
s_keydir_remove (keydir_t *kd)
{
    unlink (kd->key);
    rmdir (kd->authorized);
    rmdir (kd->dir);
}

static char *
s_secure_config (const char *key, const char *authorized)
{
    return s_format ("node:\n"
                     "  id: secure\n"
                     "  data_dir: ./data/secure\n"
                     "  listen: tcp://0.0.0.0:5680\n"
                     "  security:\n"
                     "    secret_key: %s\n"
                     "    authorized_keys: %s\n",
                     key, authorized);
}

static void
test_key_file_permissions (void **state)
{
    (void) state;
    cfg_load_opts_t check = {.check_key_files = true};
    keydir_t kd;
    s_keydir_make (&kd, 0644);
    char *text = s_secure_config (kd.key, kd.authorized);

    //  Not checked unless asked.
    load_t result = s_load_text (text, NULL);
    assert_int_equal (result.rc, FEDQ_OK);
    s_load_free (&result);

    char *want = s_format ("site.yaml:6:17: node.security.secret_key: \"%s\" "
                           "can be read by group or others (mode 0644); a "
                           "secret key must be private: run chmod 600 %s",
                           kd.key, kd.key);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    assert_non_null (strstr (result.errors, want));
    assert_int_equal (result.lines, 1);
    s_load_free (&result);
    free (want);

    assert_int_equal (chmod (kd.key, 0640), 0);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    assert_non_null (strstr (result.errors, "(mode 0640)"));
    s_load_free (&result);

    assert_int_equal (chmod (kd.key, 0600), 0);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_OK);
    assert_string_equal (result.errors, "");
    assert_true (result.cfg->node.has_security);
    s_load_free (&result);
    free (text);

    //  authorized_keys must be a directory.
    text = s_secure_config (kd.key, kd.key);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    want = s_format ("site.yaml:7:22: node.security.authorized_keys: \"%s\" "
                     "is not a directory",
                     kd.key);
    assert_non_null (strstr (result.errors, want));
    s_load_free (&result);
    free (want);
    free (text);

    //  A missing key file, and a missing directory.
    s_keydir_remove (&kd);
    text = s_secure_config (kd.key, kd.authorized);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    assert_int_equal (result.lines, 2);
    want = s_format ("site.yaml:6:17: node.security.secret_key: cannot open "
                     "\"%s\": No such file or directory; create it with "
                     "`fedq keygen NAME`",
                     kd.key);
    assert_non_null (strstr (result.errors, want));
    free (want);
    want = s_format ("site.yaml:7:22: node.security.authorized_keys: cannot "
                     "find \"%s\": No such file or directory",
                     kd.authorized);
    assert_non_null (strstr (result.errors, want));
    free (want);
    s_load_free (&result);
    free (text);
}

//  A loopback TCP socket listening on a port the kernel picked.
static int
s_listen_any_port (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    assert_int_equal (bind (fd, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal (listen (fd, 1), 0);
    socklen_t len = sizeof addr;
    assert_int_equal (getsockname (fd, (struct sockaddr *) &addr, &len), 0);
    *port = ntohs (addr.sin_port);
    return fd;
}

static void
test_listen_in_use (void **state)
{
    (void) state;
    cfg_load_opts_t check = {.check_listen = true};
    int busy_port, other_port;
    int busy = s_listen_any_port (&busy_port);
    int other = s_listen_any_port (&other_port);
    close (other);              //  now (almost surely) free

    char *text = s_format ("node:\n"
                           "  id: a\n"
                           "  data_dir: ./data/a\n"
                           "  listen: tcp://127.0.0.1:%d\n"
                           "  http: 127.0.0.1:%d\n",
                           busy_port, other_port);
    load_t result = s_load_text (text, NULL);
    assert_int_equal (result.rc, FEDQ_OK);
    s_load_free (&result);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    assert_int_equal (result.lines, 1);
    char *want = s_format ("site.yaml:4:11: node.listen: 127.0.0.1:%d is "
                           "already in use",
                           busy_port);
    assert_non_null (strstr (result.errors, want));
    free (want);
    s_load_free (&result);
    free (text);

    //  The HTTP address too; and the check itself leaves no socket bound.
    text = s_format ("node:\n"
                     "  id: a\n"
                     "  data_dir: ./data/a\n"
                     "  listen: tcp://127.0.0.1:%d\n"
                     "  http: 127.0.0.1:%d\n",
                     other_port, busy_port);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    want = s_format ("site.yaml:5:9: node.http: 127.0.0.1:%d is already in use",
                     busy_port);
    assert_non_null (strstr (result.errors, want));
    free (want);
    s_load_free (&result);
    close (busy);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_OK);
    s_load_free (&result);
    result = s_load_text (text, &check);
    assert_int_equal (result.rc, FEDQ_OK);
    s_load_free (&result);
    free (text);
}

//  Loading, good or bad, creates nothing: data_dir is the node's business.
static void
test_load_creates_nothing (void **state)
{
    (void) state;
    char dir[] = "/tmp/fedq-test-config-XXXXXX";
    assert_non_null (mkdtemp (dir));
    char *text = s_format ("node: { id: a, data_dir: %s/data, listen: "
                           "\"tcp://127.0.0.1:5680\" }\n",
                           dir);
    load_t result = s_load_text (text, NULL);
    assert_int_equal (result.rc, FEDQ_OK);
    s_load_free (&result);
    free (text);
    text = s_format ("node: { id: a, data_dir: %s/data, listen: nope }\n", dir);
    result = s_load_text (text, NULL);
    assert_int_equal (result.rc, FEDQ_ECONFIG);
    s_load_free (&result);
    free (text);
    struct stat st;
    char *data = s_format ("%s/data", dir);
    assert_int_equal (stat (data, &st), -1);
    assert_int_equal (errno, ENOENT);
    free (data);
    assert_int_equal (rmdir (dir), 0);
}

//  Without an errs stream, or options, loading still works.
static void
test_load_string_defaults (void **state)
{
    (void) state;
    const char *text = "node: { id: a, data_dir: d, listen: \"ipc://@a\" }\n";
    cfg_t *cfg = NULL;
    assert_int_equal (cfg_load_string (text, strlen (text), NULL, NULL, NULL,
                                       &cfg),
                      FEDQ_OK);
    assert_string_equal (cfg->path, "<string>");
    cfg_destroy (&cfg);
    assert_int_equal (cfg_load_string ("node: [", 7, "x", NULL, NULL, &cfg),
                      FEDQ_ECONFIG);
    assert_null (cfg);
    //  Not NUL-terminated: only size bytes are read.
    char buf[64];
    memset (buf, 'x', sizeof buf);
    memcpy (buf, "node: 1", 7);
    assert_int_equal (cfg_load_string (buf, 7, "x", NULL, NULL, &cfg),
                      FEDQ_ECONFIG);
}

//  Every key of the table is documented in docs/config.md.
static void
test_every_key_documented (void **state)
{
    (void) state;
    FILE *file = fopen (FEDQ_SOURCE_DIR "/docs/config.md", "r");
    assert_non_null (file);
    char *doc = NULL;
    size_t cap = 0;
    ssize_t len = getdelim (&doc, &cap, 0, file);
    fclose (file);
    assert_true (len > 0);
    size_t missing = 0;
    for (size_t i = 0; i < cfg_nkeys; i++) {
        char *quoted = s_format ("`%s`", cfg_keys[i].path);
        if (!strstr (doc, quoted)) {
            print_error ("docs/config.md does not document %s\n", quoted);
            missing++;
        }
        free (quoted);
    }
    free (doc);
    assert_int_equal (missing, 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_bad_files),
        cmocka_unit_test (test_bad_files_all_listed),
        cmocka_unit_test (test_all_errors_at_once),
        cmocka_unit_test (test_missing_file),
        cmocka_unit_test (test_alias_expansion_capped),
        cmocka_unit_test (test_minimal_defaults),
        cmocka_unit_test (test_example_sydney),
        cmocka_unit_test (test_examples_topology),
        cmocka_unit_test (test_full_values),
        cmocka_unit_test (test_flow_equals_block),
        cmocka_unit_test (test_dump_round_trip),
        cmocka_unit_test (test_dump_redacts_secrets),
        cmocka_unit_test (test_equal_helpers),
        cmocka_unit_test (test_parse_duration),
        cmocka_unit_test (test_parse_size),
        cmocka_unit_test (test_format_values),
        cmocka_unit_test (test_key_file_permissions),
        cmocka_unit_test (test_listen_in_use),
        cmocka_unit_test (test_load_creates_nothing),
        cmocka_unit_test (test_load_string_defaults),
        cmocka_unit_test (test_every_key_documented),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
