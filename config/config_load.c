//  config/config_load.c — read a YAML file with libyaml's document API and
//  fill the structs of config.h by walking the table of keys. Every error
//  is kept with the line and column where it was written; they are all
//  printed at the end, in file order, as "FILE:LINE:COL: message".
#define _GNU_SOURCE
#include "config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

//  Biggest configuration file read: far beyond any real site.
#define CFG_MAX_FILE_BYTES (16u << 20)

typedef struct {
    char *msg;                  //  "PATH: what was expected, what was found"
    cfg_mark_t mark;
    size_t seq;                 //  order of discovery, for a stable sort
} s_error_t;

typedef struct {
    char *path;                 //  display path, "shovels[0].prefetch"; NULL
    cfg_mark_t mark;            //  where its value starts
} s_written_t;

struct _cfg_ctx_t {
    const char *name;           //  file name in messages
    const cfg_load_opts_t *opts;
    yaml_document_t *doc;       //  the document being walked
    cfg_mark_t root_mark;       //  where the top mapping starts
    s_error_t *errors;
    size_t nerrors;
    size_t errors_cap;
    s_written_t *written;       //  hash of every key the file wrote
    size_t nwritten;
    size_t written_cap;         //  a power of two
    size_t values;              //  counted against CFG_MAX_VALUES
    bool too_many;              //  that limit was hit (reported once)
};

//  --- errors ---------------------------------------------------------------

static void
s_error_add (cfg_ctx_t *ctx, cfg_mark_t mark, char *msg)
{
    if (ctx->nerrors == ctx->errors_cap) {
        ctx->errors_cap = ctx->errors_cap ? ctx->errors_cap * 2 : 16;
        ctx->errors = realloc (ctx->errors,
                               ctx->errors_cap * sizeof *ctx->errors);
        if (!ctx->errors)
            abort ();
    }
    if (mark.line < 1) {
        mark.line = 1;
        mark.col = 1;
    }
    ctx->errors[ctx->nerrors] = (s_error_t){msg, mark, ctx->nerrors};
    ctx->nerrors++;
}

static char *
s_vformat (const char *fmt, va_list args)
    __attribute__ ((format (printf, 1, 0)));
static char *
s_vformat (const char *fmt, va_list args)
{
    char *msg = NULL;
    if (vasprintf (&msg, fmt, args) < 0)
        abort ();
    return msg;
}

void
cfg_ctx_error (cfg_ctx_t *ctx, cfg_mark_t mark, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    s_error_add (ctx, mark, s_vformat (fmt, args));
    va_end (args);
}

void
cfg_ctx_error_at (cfg_ctx_t *ctx, const char *path, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = s_vformat (fmt, args);
    va_end (args);
    char *msg = NULL;
    if (asprintf (&msg, "%s: %s", path, text) < 0)
        abort ();
    free (text);
    s_error_add (ctx, cfg_ctx_mark (ctx, path), msg);
}

static int
s_error_cmp (const void *a, const void *b)
{
    const s_error_t *x = a, *y = b;
    if (x->mark.line != y->mark.line)
        return x->mark.line < y->mark.line ? -1 : 1;
    if (x->mark.col != y->mark.col)
        return x->mark.col < y->mark.col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

//  --- what the file wrote, and where ----------------------------------------

static size_t
s_hash (const char *text)
{
    size_t h = 14695981039346656037ull;
    for (const unsigned char *p = (const unsigned char *) text; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return h;
}

static s_written_t *
s_written_slot (cfg_ctx_t *ctx, const char *path)
{
    if (!ctx->written_cap)
        return NULL;
    size_t i = s_hash (path) & (ctx->written_cap - 1);
    while (ctx->written[i].path && strcmp (ctx->written[i].path, path) != 0)
        i = (i + 1) & (ctx->written_cap - 1);
    return &ctx->written[i];
}

//  Record that path was written at mark; false (and *first gets the first
//  mark) when it was written before: a duplicate key.
static bool
s_written_add (cfg_ctx_t *ctx, const char *path, cfg_mark_t mark,
               cfg_mark_t *first)
{
    if (2 * (ctx->nwritten + 1) > ctx->written_cap) {
        s_written_t *old = ctx->written;
        size_t old_cap = ctx->written_cap;
        ctx->written_cap = old_cap ? old_cap * 2 : 64;
        ctx->written = cfg_calloc (ctx->written_cap, sizeof *ctx->written);
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].path)
                *s_written_slot (ctx, old[i].path) = old[i];
        free (old);
    }
    s_written_t *slot = s_written_slot (ctx, path);
    if (slot->path) {
        *first = slot->mark;
        return false;
    }
    slot->path = cfg_strdup (path);
    slot->mark = mark;
    ctx->nwritten++;
    return true;
}

bool
cfg_ctx_given (cfg_ctx_t *ctx, const char *path)
{
    s_written_t *slot = s_written_slot (ctx, path);
    return slot && slot->path;
}

cfg_mark_t
cfg_ctx_mark (cfg_ctx_t *ctx, const char *path)
{
    char buf[CFG_PATH_MAX];
    snprintf (buf, sizeof buf, "%s", path);
    while (*buf) {
        s_written_t *slot = s_written_slot (ctx, buf);
        if (slot && slot->path)
            return slot->mark;
        //  Up one level: "a[1].b" -> "a[1]" -> "a".
        char *dot = strrchr (buf, '.');
        char *bracket = strrchr (buf, '[');
        char *cut = dot > bracket ? dot : bracket;
        if (!cut)
            break;
        *cut = 0;
    }
    return ctx->root_mark;
}

const cfg_load_opts_t *
cfg_ctx_opts (cfg_ctx_t *ctx)
{
    return ctx->opts;
}

//  --- walking the document ------------------------------------------------

static cfg_mark_t
s_mark (const yaml_node_t *node)
{
    return (cfg_mark_t){(int) node->start_mark.line + 1,
                        (int) node->start_mark.column + 1};
}

static bool
s_is_null (const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE)
        return false;
    if (node->tag && strcmp ((const char *) node->tag, YAML_NULL_TAG) == 0)
        return true;
    if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *text = (const char *) node->data.scalar.value;
    return !*text || !strcmp (text, "~") || !strcmp (text, "null")
           || !strcmp (text, "Null") || !strcmp (text, "NULL");
}

//  What the file has where a value was expected, for "got ...".
static void
s_describe (const yaml_node_t *node, char *buf, size_t size)
{
    if (node->type == YAML_MAPPING_NODE)
        snprintf (buf, size, "a mapping");
    else if (node->type == YAML_SEQUENCE_NODE)
        snprintf (buf, size, "a list");
    else if (s_is_null (node))
        snprintf (buf, size, "nothing");
    else
        cfg_quote ((const char *) node->data.scalar.value, buf, size);
}

//  "name, source, destination, ..." for the keys under scope.
static void
s_child_names (const char *scope, char *buf, size_t size)
{
    size_t index = 0, used = 0;
    const cfg_key_t *key;
    buf[0] = 0;
    while ((key = cfg_key_next_child (scope, &index)) && used < size)
        used += (size_t) snprintf (buf + used, size - used, "%s%s",
                                   used ? ", " : "", cfg_key_name (key));
}

//  The key under scope closest to a misspelt name, or NULL.
static const char *
s_suggest (const char *scope, const char *name)
{
    size_t index = 0, best = 10;
    const cfg_key_t *key, *found = NULL;
    while ((key = cfg_key_next_child (scope, &index))) {
        size_t d = cfg_distance (name, cfg_key_name (key));
        if (d < best && cfg_similar (name, cfg_key_name (key))) {
            best = d;
            found = key;
        }
    }
    return found ? cfg_key_name (found) : NULL;
}

//  Where else a key of this name lives, when a file put it at the wrong
//  level: "shovels[].source or shovels[].destination". Only sections of
//  the same part of the file are named (anywhere, at the top level).
static bool
s_elsewhere (const char *scope, const char *name, char *buf, size_t size)
{
    size_t section = strcspn (scope, ".[");
    size_t used = 0, found = 0;
    buf[0] = 0;
    for (size_t i = 0; i < cfg_nkeys && found < 3; i++) {
        const cfg_key_t *key = &cfg_keys[i];
        if (strcmp (cfg_key_name (key), name) != 0)
            continue;
        if (section && strncmp (key->path, scope, section) != 0)
            continue;
        int parent = (int) (cfg_key_name (key) - key->path) - 1;
        if (parent <= 0)
            continue;           //  a top-level key: "did you mean" covers it
        used += (size_t) snprintf (buf + used, used < size ? size - used : 0,
                                   "%s%.*s", found ? " or " : "", parent,
                                   key->path);
        found++;
    }
    return found > 0 && used < size;
}

static void
s_walk_value (cfg_ctx_t *ctx, const cfg_key_t *key, yaml_node_t *node,
              const char *path, void *base);

static void
s_walk_map (cfg_ctx_t *ctx, yaml_node_t *map, const char *scope,
            const char *where, void *base)
{
    char path[CFG_PATH_MAX];
    for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *knode = yaml_document_get_node (ctx->doc, pair->key);
        yaml_node_t *vnode = yaml_document_get_node (ctx->doc, pair->value);
        if (!knode || !vnode)
            continue;
        if (knode->type != YAML_SCALAR_NODE
            || strlen ((const char *) knode->data.scalar.value)
                   != knode->data.scalar.length) {
            char got[96];
            s_describe (knode, got, sizeof got);
            cfg_ctx_error (ctx, s_mark (knode),
                           "%s: expected a key name, got %s",
                           *where ? where : "(top level)", got);
            continue;
        }
        const char *name = (const char *) knode->data.scalar.value;
        snprintf (path, sizeof path, "%s%s%s", where, *where ? "." : "",
                  name);
        const cfg_key_t *key = cfg_key_child (scope, name);
        if (!key) {
            const char *close = s_suggest (scope, name);
            char names[512], where_else[256];
            s_child_names (scope, names, sizeof names);
            if (strcmp (name, "<<") == 0)
                cfg_ctx_error (ctx, s_mark (knode),
                               "%s: YAML merge keys are not supported; write "
                               "the keys out (an alias of a whole value, "
                               "such as destination: *hub, works)",
                               path);
            else if (close)
                cfg_ctx_error (ctx, s_mark (knode),
                               "%s: unknown key; did you mean '%s'?", path,
                               close);
            else if (s_elsewhere (scope, name, where_else, sizeof where_else))
                cfg_ctx_error (ctx, s_mark (knode),
                               "%s: unknown key here; '%s' is a key of %s",
                               path, name, where_else);
            else
                cfg_ctx_error (ctx, s_mark (knode),
                               "%s: unknown key; expected one of: %s", path,
                               names);
            continue;
        }
        cfg_mark_t first;
        if (!s_written_add (ctx, path, s_mark (vnode), &first)) {
            cfg_ctx_error (ctx, s_mark (knode),
                           "%s: duplicate key (first written at line %d); "
                           "keep one",
                           path, first.line);
            continue;
        }
        s_walk_value (ctx, key, vnode, path, base);
    }
    //  Required keys of a section that was written.
    size_t index = 0;
    const cfg_key_t *key;
    while ((key = cfg_key_next_child (scope, &index))) {
        if (!(key->flags & CFG_F_REQUIRED))
            continue;
        snprintf (path, sizeof path, "%s%s%s", where, *where ? "." : "",
                  cfg_key_name (key));
        if (cfg_ctx_given (ctx, path))
            continue;
        char expected[512];
        if (key->kind == CFG_K_MAP) {
            char names[400];
            s_child_names (key->path, names, sizeof names);
            snprintf (expected, sizeof expected, "a mapping with keys %s",
                      names);
        }
        else
            cfg_key_expected (key, expected, sizeof expected);
        cfg_ctx_error (ctx, s_mark (map),
                       "%s: required key is missing (expected %s)", path,
                       expected);
    }
}

//  Count a value against CFG_MAX_VALUES; false once over it.
static bool
s_count_value (cfg_ctx_t *ctx, yaml_node_t *node, const char *path)
{
    if (++ctx->values <= CFG_MAX_VALUES)
        return true;
    if (!ctx->too_many)
        cfg_ctx_error (ctx, s_mark (node),
                       "%s: the file holds more than %d values (counting "
                       "what aliases expand to); split or simplify it",
                       path, CFG_MAX_VALUES);
    ctx->too_many = true;
    return false;
}

static void
s_walk_list (cfg_ctx_t *ctx, const cfg_key_t *key, yaml_node_t *node,
             const char *path, void *base)
{
    char got[96], names[400], scope[CFG_PATH_MAX];
    char elem_path[CFG_PATH_MAX + 24];
    if (s_is_null (node))
        return;                 //  "shovels:" with nothing under it
    if (node->type != YAML_SEQUENCE_NODE) {
        s_describe (node, got, sizeof got);
        cfg_ctx_error (ctx, s_mark (node),
                       "%s: expected a list of mappings (one \"- name: ...\" "
                       "entry each), got %s",
                       path, got);
        return;
    }
    size_t count = (size_t) (node->data.sequence.items.top
                             - node->data.sequence.items.start);
    if (count > CFG_MAX_VALUES - ctx->values) {
        ctx->values = CFG_MAX_VALUES;
        s_count_value (ctx, node, path);
        return;
    }
    void **array = (void **) cfg_key_at (key, base);
    *array = cfg_calloc (count, key->elem_size);
    memcpy ((char *) base + key->offset2, &count, sizeof count);
    cfg_key_elem_scope (key, scope, sizeof scope);
    s_child_names (scope, names, sizeof names);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = yaml_document_get_node (
            ctx->doc, node->data.sequence.items.start[i]);
        void *elem = (char *) *array + i * key->elem_size;
        cfg_struct_defaults (scope, elem);
        if (!item)
            continue;
        snprintf (elem_path, sizeof elem_path, "%s[%zu]", path, i);
        if (!s_count_value (ctx, item, elem_path))
            return;
        cfg_mark_t mark = s_mark (item), first;
        memcpy ((char *) elem + key->mark_offset, &mark, sizeof mark);
        s_written_add (ctx, elem_path, mark, &first);
        if (item->type != YAML_MAPPING_NODE) {
            s_describe (item, got, sizeof got);
            cfg_ctx_error (ctx, mark,
                           "%s: expected a mapping with keys %s, got %s",
                           elem_path, names, got);
            continue;
        }
        s_walk_map (ctx, item, scope, elem_path, elem);
    }
}

static void
s_walk_value (cfg_ctx_t *ctx, const cfg_key_t *key, yaml_node_t *node,
              const char *path, void *base)
{
    char got[96], expected[512], why[768];
    if (!s_count_value (ctx, node, path))
        return;
    if (key->kind == CFG_K_LIST) {
        s_walk_list (ctx, key, node, path, base);
        return;
    }
    if (key->kind == CFG_K_MAP) {
        if (node->type != YAML_MAPPING_NODE) {
            char names[400];
            s_child_names (key->path, names, sizeof names);
            s_describe (node, got, sizeof got);
            cfg_ctx_error (ctx, s_mark (node),
                           "%s: expected a mapping with keys %s, got %s", path,
                           names, got);
            return;
        }
        if (key->flags & CFG_F_PRESENCE)
            *(bool *) ((char *) base + key->offset2) = true;
        s_walk_map (ctx, node, key->path, path, cfg_key_at (key, base));
        return;
    }
    cfg_key_expected (key, expected, sizeof expected);
    if (node->type != YAML_SCALAR_NODE) {
        s_describe (node, got, sizeof got);
        cfg_ctx_error (ctx, s_mark (node), "%s: expected %s, got %s", path,
                       expected, got);
        return;
    }
    const char *text = (const char *) node->data.scalar.value;
    if (strlen (text) != node->data.scalar.length) {
        cfg_ctx_error (ctx, s_mark (node),
                       "%s: expected %s, got a value with a NUL character",
                       path, expected);
        return;
    }
    if (s_is_null (node)) {
        if (!(key->flags & CFG_F_NULLABLE))
            cfg_ctx_error (ctx, s_mark (node),
                           "%s: expected %s, got nothing; write a value or "
                           "remove the key",
                           path, expected);
        return;
    }
    if (!cfg_key_store (key, text, base, why, sizeof why))
        cfg_ctx_error (ctx, s_mark (node), "%s: %s", path, why);
}

//  --- loading ---------------------------------------------------------------

//  Line and column of a byte offset (reader errors carry only that).
static cfg_mark_t
s_offset_mark (const char *text, size_t size, size_t offset)
{
    cfg_mark_t mark = {1, 1};
    for (size_t i = 0; i < offset && i < size; i++) {
        if (text[i] == '\n') {
            mark.line++;
            mark.col = 1;
        }
        else
            mark.col++;
    }
    return mark;
}

static void
s_syntax_error (cfg_ctx_t *ctx, const yaml_parser_t *parser,
                const char *text, size_t size)
{
    const char *problem = parser->problem ? parser->problem : "bad YAML";
    if (parser->error == YAML_READER_ERROR) {
        cfg_ctx_error (ctx,
                       s_offset_mark (text, size, parser->problem_offset),
                       "YAML syntax error: %s (byte %zu); the file must be "
                       "UTF-8 text",
                       problem, parser->problem_offset);
        return;
    }
    cfg_mark_t mark = {(int) parser->problem_mark.line + 1,
                       (int) parser->problem_mark.column + 1};
    size_t at = parser->problem_mark.index;
    const char *hint = at < size && text[at] == '\t'
                           ? "; indent with spaces, YAML does not allow tabs"
                           : "";
    if (parser->context)
        cfg_ctx_error (ctx, mark, "YAML syntax error: %s %s (at line %d)%s",
                       problem, parser->context,
                       (int) parser->context_mark.line + 1, hint);
    else
        cfg_ctx_error (ctx, mark, "YAML syntax error: %s%s", problem, hint);
}

static void
s_walk_document (cfg_ctx_t *ctx, yaml_document_t *doc, cfg_t *cfg)
{
    yaml_node_t *root = yaml_document_get_root_node (doc);
    char names[400], got[96];
    s_child_names ("", names, sizeof names);
    if (!root) {
        cfg_ctx_error (ctx, ctx->root_mark,
                       "the file is empty; expected a mapping with keys %s",
                       names);
        return;
    }
    ctx->doc = doc;
    ctx->root_mark = s_mark (root);
    if (root->type != YAML_MAPPING_NODE) {
        s_describe (root, got, sizeof got);
        cfg_ctx_error (ctx, ctx->root_mark,
                       "expected a mapping with keys %s at the top, got %s",
                       names, got);
        return;
    }
    s_walk_map (ctx, root, "", "", cfg);
    if (!ctx->too_many)
        cfg_check (ctx, cfg);
}

static void
s_ctx_free (cfg_ctx_t *ctx)
{
    for (size_t i = 0; i < ctx->nerrors; i++)
        free (ctx->errors[i].msg);
    free (ctx->errors);
    for (size_t i = 0; i < ctx->written_cap; i++)
        free (ctx->written[i].path);
    free (ctx->written);
}

fedq_rc_t
cfg_load_string (const char *text, size_t size, const char *name,
                 const cfg_load_opts_t *opts, FILE *errs, cfg_t **cfg_p)
{
    static const cfg_load_opts_t no_opts = {false, false};
    cfg_ctx_t ctx = {.name = name ? name : "<string>",
                     .opts = opts ? opts : &no_opts,
                     .root_mark = {1, 1}};
    if (cfg_p)
        *cfg_p = NULL;
    if (!text && size)
        return FEDQ_EINVAL;
    cfg_t *cfg = cfg_calloc (1, sizeof *cfg);
    cfg->path = cfg_strdup (ctx.name);
    cfg_struct_defaults ("", cfg);

    if (size > CFG_MAX_FILE_BYTES)
        cfg_ctx_error (&ctx, ctx.root_mark,
                       "the file is %zu bytes; a configuration may have at "
                       "most %u",
                       size, CFG_MAX_FILE_BYTES);
    else {
        yaml_parser_t parser;
        yaml_document_t doc;
        if (!yaml_parser_initialize (&parser))
            abort ();
        yaml_parser_set_input_string (&parser,
                                      (const unsigned char *) (text ? text : ""),
                                      size);
        if (!yaml_parser_load (&parser, &doc))
            s_syntax_error (&ctx, &parser, text, size);
        else {
            s_walk_document (&ctx, &doc, cfg);
            yaml_document_delete (&doc);
            //  A second document would be silently ignored: refuse it.
            if (!yaml_parser_load (&parser, &doc))
                s_syntax_error (&ctx, &parser, text, size);
            else {
                yaml_node_t *extra = yaml_document_get_root_node (&doc);
                if (extra)
                    cfg_ctx_error (&ctx, s_mark (extra),
                                   "a second YAML document; a configuration "
                                   "is one document (remove the '---' line)");
                yaml_document_delete (&doc);
            }
        }
        yaml_parser_delete (&parser);
    }

    fedq_rc_t rc = FEDQ_OK;
    if (ctx.nerrors) {
        qsort (ctx.errors, ctx.nerrors, sizeof *ctx.errors, s_error_cmp);
        for (size_t i = 0; errs && i < ctx.nerrors; i++)
            fprintf (errs, "%s:%d:%d: %s\n", ctx.name, ctx.errors[i].mark.line,
                     ctx.errors[i].mark.col, ctx.errors[i].msg);
        if (errs)
            fflush (errs);
        cfg_destroy (&cfg);
        rc = FEDQ_ECONFIG;
    }
    s_ctx_free (&ctx);
    if (cfg_p)
        *cfg_p = cfg;
    else
        cfg_destroy (&cfg);
    return rc;
}

fedq_rc_t
cfg_load (const char *path, const cfg_load_opts_t *opts, FILE *errs,
          cfg_t **cfg_p)
{
    if (cfg_p)
        *cfg_p = NULL;
    FILE *file = fopen (path, "rb");
    fedq_buf_t buf = {0};
    const char *problem = NULL;
    int err = 0;
    if (!file) {
        err = errno;
        problem = "cannot open the file";
    }
    else {
        char chunk[65536];
        size_t got;
        while ((got = fread (chunk, 1, sizeof chunk, file)) > 0) {
            if (buf.size + got > CFG_MAX_FILE_BYTES) {
                problem = "the file is over 16 MiB; this is not a "
                          "configuration";
                break;
            }
            fedq_buf_append (&buf, chunk, got);
        }
        if (!problem && ferror (file)) {
            err = errno;
            problem = "cannot read the file";
        }
        fclose (file);
    }
    if (problem) {
        if (errs) {
            fprintf (errs, "%s:1:1: %s%s%s\n", path, problem, err ? ": " : "",
                     err ? strerror (err) : "");
            fflush (errs);
        }
        fedq_buf_free (&buf);
        return FEDQ_ECONFIG;
    }
    fedq_rc_t rc = cfg_load_string ((const char *) buf.data, buf.size, path,
                                    opts, errs, cfg_p);
    fedq_buf_free (&buf);
    return rc;
}
