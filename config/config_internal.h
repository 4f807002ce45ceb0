//  config/config_internal.h — what the files of config/ share and nobody
//  else needs: the table of keys (config_schema.c), the load context that
//  collects errors with their marks (config_load.c), the cross-section
//  checks (config_check.c) and small value helpers (config.c).
#ifndef CONFIG_INTERNAL_H_INCLUDED
#define CONFIG_INTERNAL_H_INCLUDED

#include "config.h"

#include <stddef.h>

//  What a key holds; the kind decides how its text is parsed, stored,
//  compared, freed and dumped.
typedef enum {
    CFG_K_MAP,          //  a mapping of further keys; offset = sub-struct
    CFG_K_LIST,         //  a list of mappings; offset = array, offset2 = count
    CFG_K_STRING,       //  any string (max = longest length, 0 = 4096)
    CFG_K_NAME,         //  [A-Za-z0-9._-], 1..255 characters
    CFG_K_PATH,         //  a file or directory path, not empty
    CFG_K_BOOL,         //  true | false
    CFG_K_UINT,         //  decimal, min..max; stored in 4 or 8 bytes
    CFG_K_DURATION,     //  250ms 5s 2m 1h (bare = ms), stored as uint64 ms
    CFG_K_SIZE,         //  512 64KiB 16MiB 1GiB, stored as uint64 bytes
    CFG_K_ENUM,         //  one of names[], stored as the index (enum)
    CFG_K_WORD,         //  one of names[], stored as a string
    CFG_K_ENDPOINT,     //  tcp://HOST:PORT | ipc://PATH | inproc://NAME
    CFG_K_HOSTPORT,     //  HOST:PORT
    CFG_K_DELETE_AFTER, //  never | queue-length | COUNT; offset2 = count
} cfg_kind_t;

#define CFG_F_REQUIRED 0x01u //  missing is an error
#define CFG_F_SECRET 0x02u   //  redacted by cfg_dump unless show_secrets
#define CFG_F_NULLABLE 0x04u //  "key: ~" is allowed and leaves it unset
#define CFG_F_PRESENCE 0x08u //  MAP: bool at offset2 says it was given
#define CFG_F_NOT_WITH_DEST_QUEUE 0x10u //  dumped only without dest queue

//  One row of the table: a key, its type, default, bounds and where its
//  value lands. Offsets are relative to the struct of the enclosing MAP
//  (its offset moves the base) or list element.
typedef struct {
    const char *path;           //  "shovels[].prefetch"
    cfg_kind_t kind;
    unsigned flags;             //  CFG_F_*
    const char *dflt;           //  default as YAML text; NULL = none
    uint64_t min;               //  bounds (UINT, DURATION, SIZE, COUNT)
    uint64_t max;
    size_t offset;              //  the value, or the sub-struct of a MAP
    size_t size;                //  bytes at offset (UINT, ENUM, BOOL)
    size_t offset2;             //  LIST count, MAP presence, DELETE_AFTER count
    size_t elem_size;           //  LIST element size
    size_t mark_offset;         //  LIST element's cfg_mark_t
    const char *const *names;   //  ENUM / WORD names, NULL-terminated
} cfg_key_t;

extern const cfg_key_t cfg_keys[];
extern const size_t cfg_nkeys;

//  Longest display path ("federated_queues[12].peers[3].endpoint").
#define CFG_PATH_MAX 256

//  Most values one file may hold, counting alias expansions; stops a few
//  bytes of anchors and aliases from expanding into millions of entries.
#define CFG_MAX_VALUES 100000

//  The key named name directly under scope ("" is the top, "shovels[]"
//  a shovel, "node.security" a map); NULL when there is none.
const cfg_key_t *
    cfg_key_child (const char *scope, const char *name);

//  The last component of a key's path ("prefetch").
const char *
    cfg_key_name (const cfg_key_t *key);

//  Iterate the keys directly under scope: start with *index = 0; NULL
//  at the end.
const cfg_key_t *
    cfg_key_next_child (const char *scope, size_t *index);

//  The scope of a LIST key's elements ("shovels" -> "shovels[]").
void
    cfg_key_elem_scope (const cfg_key_t *key, char *buf, size_t size);

//  Describe what key expects ("a positive integer"), for messages.
void
    cfg_key_expected (const cfg_key_t *key, char *buf, size_t size);

//  Parse text for a scalar key and store it at base. On failure store
//  nothing (NAME keeps the text so references still resolve), write the
//  reason ("expected ..., got ...") to why and return false.
bool
    cfg_key_store (const cfg_key_t *key, const char *text, void *base,
                   char *why, size_t why_size);

//  Apply every default under scope (recursing into MAPs, not LISTs).
void
    cfg_struct_defaults (const char *scope, void *base);

//  Free every string and list under scope; the struct itself stays.
void
    cfg_struct_free (const char *scope, void *base);

//  True when every key under scope has the same value in a and b.
bool
    cfg_struct_equal (const char *scope, const void *a, const void *b);

//  The number in a UINT, DURATION, SIZE, ENUM or DELETE_AFTER key.
uint64_t
    cfg_key_get_uint (const cfg_key_t *key, const void *base);

//  Where the value of a scalar, list or map key lands.
void *
    cfg_key_at (const cfg_key_t *key, void *base);

//  --- values (config.c) ----------------------------------------------------

//  "5s" for 5000, "250ms", "2m", "1h": the largest exact unit.
void
    cfg_duration_text (uint64_t ms, char *buf, size_t size);

//  "16MiB" for 16777216, "1000": the largest exact unit.
void
    cfg_size_text (uint64_t bytes, char *buf, size_t size);

//  Parse a decimal without sign; FEDQ_ETOOBIG above UINT64_MAX.
fedq_rc_t
    cfg_parse_uint (const char *text, uint64_t *value);

//  Copy of text, quoted and escaped for messages, cut at 60 characters.
void
    cfg_quote (const char *text, char *buf, size_t size);

//  Edit distance (with transpositions) between a and b, capped at 9.
size_t
    cfg_distance (const char *a, const char *b);

//  True when candidate is close enough to word to suggest it.
bool
    cfg_similar (const char *word, const char *candidate);

//  A ZeroMQ endpoint or HOST:PORT split into its parts.
typedef enum { CFG_EP_TCP, CFG_EP_IPC, CFG_EP_INPROC } cfg_ep_scheme_t;

typedef struct {
    cfg_ep_scheme_t scheme;
    char host[256];             //  tcp: without [ ] around IPv6; ipc: path
    uint16_t port;              //  tcp only
} cfg_endpoint_t;

//  Parse "tcp://HOST:PORT", "ipc://PATH", "inproc://NAME"; on failure
//  write why it is wrong to why.
bool
    cfg_endpoint_parse (const char *text, cfg_endpoint_t *ep, char *why,
                        size_t why_size);

//  Parse "HOST:PORT" (node.http).
bool
    cfg_hostport_parse (const char *text, cfg_endpoint_t *ep, char *why,
                        size_t why_size);

//  True when host is a loopback address or name.
bool
    cfg_host_is_loopback (const char *host);

//  True when host means every interface ("*", "0.0.0.0", "::").
bool
    cfg_host_is_any (const char *host);

//  Allocation that aborts on failure, as fedq_buf does: a config is
//  small and bounded by CFG_MAX_VALUES.
void *
    cfg_calloc (size_t n, size_t size);
char *
    cfg_strdup (const char *text);

//  --- the load context (config_load.c) ------------------------------------

typedef struct _cfg_ctx_t cfg_ctx_t;

//  Record an error at mark. The message should start with the key path.
void
    cfg_ctx_error (cfg_ctx_t *ctx, cfg_mark_t mark, const char *fmt, ...)
        __attribute__ ((format (printf, 3, 4)));

//  Record "PATH: message" at the mark where path (or, when it was not
//  written, its nearest enclosing key) appears in the file.
void
    cfg_ctx_error_at (cfg_ctx_t *ctx, const char *path, const char *fmt, ...)
        __attribute__ ((format (printf, 3, 4)));

//  Where path was written; its nearest written parent when it was not.
cfg_mark_t
    cfg_ctx_mark (cfg_ctx_t *ctx, const char *path);

//  True when the file wrote path (a display path, "shovels[0].name").
bool
    cfg_ctx_given (cfg_ctx_t *ctx, const char *path);

//  The options of this load.
const cfg_load_opts_t *
    cfg_ctx_opts (cfg_ctx_t *ctx);

//  --- checks (config_check.c) ------------------------------------------------

//  Settle values that depend on each other (a shovel's destination queue
//  sets its routing key) and check everything that spans keys, sections
//  or the file system. Errors go to ctx.
void
    cfg_check (cfg_ctx_t *ctx, cfg_t *cfg);

#endif
