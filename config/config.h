//  config/config.h — a site's YAML configuration (DESIGN.md §5) as typed
//  structs, loaded from one table of keys, validated before anything
//  starts, and dumped back as YAML.
#ifndef CONFIG_H_INCLUDED
#define CONFIG_H_INCLUDED

#include "fedq.h"
#include <stdio.h>

typedef enum { CFG_FSYNC_ALWAYS, CFG_FSYNC_BATCH, CFG_FSYNC_NEVER } cfg_fsync_t;
typedef enum { CFG_EXCHANGE_DIRECT, CFG_EXCHANGE_FANOUT, CFG_EXCHANGE_TOPIC } cfg_exchange_type_t;
typedef enum { CFG_OVERFLOW_DROP_HEAD, CFG_OVERFLOW_REJECT_PUBLISH } cfg_overflow_t;
typedef enum { CFG_ACK_ON_CONFIRM, CFG_ACK_ON_PUBLISH, CFG_ACK_NO_ACK } cfg_ack_mode_t;
typedef enum { CFG_DELETE_NEVER, CFG_DELETE_QUEUE_LENGTH, CFG_DELETE_COUNT } cfg_delete_after_t;
typedef enum { CFG_CONSUME_LOCAL, CFG_CONSUME_GLOBAL } cfg_consume_t;

//  Where a key was written, for errors about references between sections.
typedef struct {
    int line;                   //  1-based; 0 when the value is a default
    int col;
} cfg_mark_t;

typedef struct {
    char *secret_key;           //  path of NAME.key (secret, mode 0600)
    char *authorized_keys;      //  directory of NAME.pub files
    bool insecure;              //  allow listening beyond loopback without CURVE
} cfg_security_t;

typedef struct {
    char *cert;                 //  PEM certificate (chain) for node.http
    char *key;                  //  PEM private key (mode 0600)
} cfg_http_tls_t;

typedef struct {
    char *id;                   //  unique across linked sites
    char *data_dir;
    char *listen;               //  ZeroMQ endpoint, tcp://HOST:PORT
    char *http;                 //  HOST:PORT or NULL (disabled)
    cfg_fsync_t fsync;          //  default batch
    uint64_t max_message_bytes; //  default 16 MiB
    uint64_t segment_bytes;     //  default 64 MiB
    char *log_level;            //  debug | info | warn | error; default info
    bool has_security;
    cfg_security_t security;
    bool has_http_tls;
    cfg_http_tls_t http_tls;    //  node.http_tls: serve node.http as HTTPS
} cfg_node_t;

typedef struct {
    char *name;
    cfg_exchange_type_t type;
    cfg_mark_t mark;
} cfg_exchange_t;

typedef struct {
    char *name;
    bool durable;               //  default true
    bool auto_delete;           //  default false
    uint64_t max_length;        //  0 = unlimited
    uint64_t max_bytes;         //  0 = unlimited
    cfg_overflow_t overflow;    //  default drop-head
    uint64_t message_ttl_ms;    //  0 = none
    char *dead_letter_exchange; //  NULL = none
    char *dead_letter_routing_key;
    int max_priority;           //  0..9
    bool single_active_consumer;
    uint64_t dedup_window_ms;   //  0 = off
    cfg_mark_t mark;
} cfg_queue_t;

typedef struct {
    char *exchange;
    char *queue;
    char *key;
    cfg_mark_t mark;
} cfg_binding_t;

typedef struct {
    char *name;
    char *source_queue;         //  source: { queue: }
    char *dest_endpoint;        //  destination: { endpoint: }
    char *dest_exchange;        //  destination: { exchange: } ("" = default)
    char *dest_routing_key;     //  destination: { routing_key: } NULL = keep
    char *dest_queue;           //  destination: { queue: } (default exchange)
                                //  When set, the loader also sets
                                //  dest_exchange "" and dest_routing_key =
                                //  dest_queue: publish by those two alone.
    char *dest_server_key;      //  destination: { server_key: } the
                                //  destination's NAME.pub (CURVE), or NULL
    cfg_ack_mode_t ack_mode;    //  default on-confirm
    uint32_t prefetch;          //  default 1000
    uint64_t reconnect_delay_ms;        //  default 1s
    uint64_t max_reconnect_delay_ms;    //  default 30s
    uint64_t heartbeat_ms;              //  default 1s; peer dead after 3x
    cfg_delete_after_t delete_after;    //  default never
    uint64_t delete_after_count;
    uint32_t max_attempts;      //  rejects before dead-lettering; default 3
    uint64_t lag_alert_ms;      //  0 = no alert
    uint64_t backlog_alert;     //  messages; 0 = no alert
    bool verify_digest;
    cfg_mark_t mark;
} cfg_shovel_t;

typedef struct {
    char *id;
    char *endpoint;
    char *server_key;           //  the member's NAME.pub (CURVE), or NULL
    cfg_mark_t mark;
} cfg_peer_t;

typedef struct {
    cfg_queue_t queue;          //  the queue's own options (name inside)
    cfg_consume_t consume;      //  default local
    uint64_t global_handoff_ms; //  consume: global: hold remote messages
    cfg_peer_t *peers;
    size_t npeers;
    uint64_t lag_alert_ms;
    uint64_t backlog_alert;
    uint64_t history_max_messages;  //  history cap (events), 1..
    uint64_t history_max_bytes;     //  history cap (body bytes), 1..
    cfg_mark_t mark;
} cfg_federated_t;

typedef struct {
    char *path;                 //  file it was loaded from
    cfg_node_t node;
    cfg_exchange_t *exchanges;
    size_t nexchanges;
    cfg_queue_t *queues;
    size_t nqueues;
    cfg_binding_t *bindings;
    size_t nbindings;
    cfg_shovel_t *shovels;
    size_t nshovels;
    cfg_federated_t *federated;
    size_t nfederated;
} cfg_t;

//  Options that change how strictly a file is checked.
typedef struct {
    bool check_listen;          //  fail when node.listen / node.http are in use
    bool check_key_files;       //  fail on missing or group/other-readable keys
} cfg_load_opts_t;

//  Load and validate path. On success *cfg_p gets the config and FEDQ_OK.
//  On failure every error is printed to errs as "FILE:LINE:COL: message"
//  (all of them, not just the first), *cfg_p stays NULL and the result is
//  FEDQ_ECONFIG. Nothing is created on disk either way.
fedq_rc_t
    cfg_load (const char *path, const cfg_load_opts_t *opts, FILE *errs,
              cfg_t **cfg_p);

//  Same as cfg_load, from a buffer; name is used in error messages.
fedq_rc_t
    cfg_load_string (const char *text, size_t size, const char *name,
                     const cfg_load_opts_t *opts, FILE *errs, cfg_t **cfg_p);

//  Write the effective config (defaults filled in, secret key paths
//  redacted as "<redacted>" unless show_secrets) as YAML that cfg_load
//  reads back to an equal config.
void
    cfg_dump (const cfg_t *cfg, FILE *out, bool show_secrets);

//  True when the two shovels have the same settings (reload keeps a link
//  whose settings did not change).
bool
    cfg_shovel_equal (const cfg_shovel_t *a, const cfg_shovel_t *b);
bool
    cfg_federated_equal (const cfg_federated_t *a, const cfg_federated_t *b);
bool
    cfg_queue_equal (const cfg_queue_t *a, const cfg_queue_t *b);
bool
    cfg_exchange_equal (const cfg_exchange_t *a, const cfg_exchange_t *b);
bool
    cfg_binding_equal (const cfg_binding_t *a, const cfg_binding_t *b);
bool
    cfg_node_equal (const cfg_node_t *a, const cfg_node_t *b);

//  True when the two configs have the same settings everywhere (the file
//  path and the line marks are not compared).
bool
    cfg_equal (const cfg_t *a, const cfg_t *b);

//  Look up a declaration by name; NULL when there is none. cfg_find_queue
//  also finds a federated queue's queue.
const cfg_exchange_t *
    cfg_find_exchange (const cfg_t *cfg, const char *name);
const cfg_queue_t *
    cfg_find_queue (const cfg_t *cfg, const char *name);
const cfg_shovel_t *
    cfg_find_shovel (const cfg_t *cfg, const char *name);
const cfg_federated_t *
    cfg_find_federated (const cfg_t *cfg, const char *name);

//  Free everything and null *self_p.
void
    cfg_destroy (cfg_t **self_p);

//  Parse "250ms", "5s", "2m", "1h" (a bare number is ms).
//  FEDQ_EINVAL for bad syntax, FEDQ_ETOOBIG past UINT64_MAX ms.
fedq_rc_t
    cfg_parse_duration (const char *text, uint64_t *ms);

//  Parse "512", "512B", "64KiB", "16MiB", "1GiB", "1TiB" into bytes.
//  FEDQ_EINVAL for bad syntax, FEDQ_ETOOBIG past UINT64_MAX bytes.
fedq_rc_t
    cfg_parse_size (const char *text, uint64_t *bytes);

//  Write ms / bytes as the config does ("5s", "250ms", "16MiB", "1000"):
//  the largest unit that is exact. 32 bytes are always enough.
void
    cfg_format_duration (uint64_t ms, char *buf, size_t size);
void
    cfg_format_size (uint64_t bytes, char *buf, size_t size);

#endif
