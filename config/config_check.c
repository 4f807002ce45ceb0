//  config/config_check.c — the checks that span keys, sections and the
//  machine: unique names, references between sections, a node linking to
//  itself, security of what it listens on, key file permissions and
//  ports in use. Each check reports through the load context, so every
//  problem in a file is printed in one run.
#define _GNU_SOURCE
#include "config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

//  --- sets of declared names ----------------------------------------------

//  Most declarations searched for a "did you mean" suggestion.
#define CFG_SUGGEST_MAX 1000

typedef struct {
    const char *name;
    const char *also[2];        //  more of the identity (bindings), or NULL
    const char *section;        //  "queues", "federated_queues", ...
    size_t index;               //  entry in that section
    cfg_mark_t mark;            //  where the name was written
} s_decl_t;

typedef struct {
    s_decl_t *items;
    size_t count;
    size_t cap;
} s_decls_t;

static void
s_decls_push (s_decls_t *set, s_decl_t decl)
{
    if (!decl.name)
        return;                 //  missing: already reported
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 16;
        set->items = realloc (set->items, set->cap * sizeof *set->items);
        if (!set->items)
            abort ();
    }
    set->items[set->count++] = decl;
}

//  Add the NAME of section[index], marked where the file wrote its name.
static void
s_decls_add (cfg_ctx_t *ctx, s_decls_t *set, const char *name,
             const char *section, size_t index)
{
    char path[CFG_PATH_MAX];
    snprintf (path, sizeof path, "%s[%zu].name", section, index);
    s_decls_push (set, (s_decl_t){.name = name, .section = section,
                                  .index = index,
                                  .mark = cfg_ctx_mark (ctx, path)});
}

static int
s_str_cmp (const char *a, const char *b)
{
    return a == b ? 0 : !a ? -1 : !b ? 1 : strcmp (a, b);
}

//  Same identity: name and the extra parts.
static bool
s_decl_same (const s_decl_t *x, const s_decl_t *y)
{
    return !strcmp (x->name, y->name) && !s_str_cmp (x->also[0], y->also[0])
           && !s_str_cmp (x->also[1], y->also[1]);
}

//  By identity, then file order (section and index break ties between
//  entries that aliases made share one mark).
static int
s_decl_cmp (const void *a, const void *b)
{
    const s_decl_t *x = a, *y = b;
    int diff = strcmp (x->name, y->name);
    if (!diff)
        diff = s_str_cmp (x->also[0], y->also[0]);
    if (!diff)
        diff = s_str_cmp (x->also[1], y->also[1]);
    if (diff)
        return diff;
    if (x->mark.line != y->mark.line)
        return x->mark.line < y->mark.line ? -1 : 1;
    if (x->mark.col != y->mark.col)
        return x->mark.col < y->mark.col ? -1 : 1;
    diff = strcmp (x->section, y->section);
    if (diff)
        return diff;
    return x->index < y->index ? -1 : x->index > y->index;
}

//  Call report for every entry that repeats an earlier one, with the
//  first of its kind.
static void
s_decls_each_dup (cfg_ctx_t *ctx, const s_decls_t *set,
                  void (*report) (cfg_ctx_t *ctx, const s_decl_t *first,
                                  const s_decl_t *dup, const void *arg),
                  const void *arg)
{
    const s_decl_t *first = set->items;
    for (size_t i = 1; i < set->count; i++) {
        if (!s_decl_same (first, &set->items[i]))
            first = &set->items[i];
        else
            report (ctx, first, &set->items[i], arg);
    }
}

static void
s_decls_sort (s_decls_t *set)
{
    if (set->count)
        qsort (set->items, set->count, sizeof *set->items, s_decl_cmp);
}

static const s_decl_t *
s_decls_find (const s_decls_t *set, const char *name)
{
    size_t lo = 0, hi = set->count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int diff = strcmp (set->items[mid].name, name);
        if (diff == 0) {
            while (mid > 0 && strcmp (set->items[mid - 1].name, name) == 0)
                mid--;
            return &set->items[mid];
        }
        if (diff < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

//  The declared name closest to a misspelt reference, or NULL.
static const char *
s_decls_suggest (const s_decls_t *set, const char *name)
{
    const char *best = NULL;
    size_t best_d = 10;
    if (set->count > CFG_SUGGEST_MAX)
        return NULL;            //  keeps a huge file's checks linear
    for (size_t i = 0; i < set->count; i++) {
        size_t d = cfg_distance (name, set->items[i].name);
        if (d < best_d && cfg_similar (name, set->items[i].name)) {
            best_d = d;
            best = set->items[i].name;
        }
    }
    return best;
}

static void
s_report_dup_name (cfg_ctx_t *ctx, const s_decl_t *first, const s_decl_t *dup,
                   const void *arg)
{
    const char *what = arg;
    char path[CFG_PATH_MAX];
    snprintf (path, sizeof path, "%s[%zu].name", dup->section, dup->index);
    const char *kind = strcmp (dup->section, "federated_queues") == 0
                           ? "federated queue"
                           : what;
    if (strcmp (first->section, dup->section) == 0)
        cfg_ctx_error_at (ctx, path,
                          "%s \"%s\" is already declared at line %d "
                          "(%s[%zu]); give each %s its own name",
                          kind, dup->name, first->mark.line, first->section,
                          first->index, kind);
    else
        cfg_ctx_error_at (ctx, path,
                          "\"%s\" is declared both in %s (line %d) and in "
                          "%s; a federated queue declares its own queue, "
                          "so keep only one of them",
                          dup->name, first->section, first->mark.line,
                          dup->section);
}

//  Report every name declared a second time (the later ones).
static void
s_decls_unique (cfg_ctx_t *ctx, const s_decls_t *set, const char *what)
{
    s_decls_each_dup (ctx, set, s_report_dup_name, what);
}

static void
s_decls_free (s_decls_t *set)
{
    free (set->items);
    set->items = NULL;
    set->count = set->cap = 0;
}

//  An error for a reference to an undeclared name, with a suggestion.
static void
s_undeclared (cfg_ctx_t *ctx, const char *path, const s_decls_t *set,
              const char *what, const char *name, const char *where)
{
    char quoted[96];
    cfg_quote (name, quoted, sizeof quoted);
    const char *close = s_decls_suggest (set, name);
    if (close)
        cfg_ctx_error_at (ctx, path,
                          "%s %s is not declared; did you mean '%s'? "
                          "(declare it under %s)",
                          what, quoted, close, where);
    else
        cfg_ctx_error_at (ctx, path,
                          "%s %s is not declared; declare it under %s", what,
                          quoted, where);
}

//  --- endpoints -------------------------------------------------------------

//  True when other names the endpoint this node listens on.
static bool
s_is_own_endpoint (const char *listen, const char *other)
{
    cfg_endpoint_t a, b;
    char why[160];
    if (!listen || !other || !cfg_endpoint_parse (listen, &a, why, sizeof why)
        || !cfg_endpoint_parse (other, &b, why, sizeof why)
        || a.scheme != b.scheme)
        return false;
    if (a.scheme != CFG_EP_TCP)
        return strcmp (a.host, b.host) == 0;
    if (a.port != b.port)
        return false;
    return strcasecmp (a.host, b.host) == 0
           || (cfg_host_is_loopback (a.host) && cfg_host_is_loopback (b.host))
           || (cfg_host_is_any (a.host) && cfg_host_is_loopback (b.host));
}

//  Try to bind host:port as the node will; report when it cannot.
static void
s_check_bind (cfg_ctx_t *ctx, const char *path, const cfg_endpoint_t *ep)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    char port[8];
    snprintf (port, sizeof port, "%u", ep->port);
    const char *host = strcmp (ep->host, "*") == 0 ? NULL : ep->host;
    int gai = getaddrinfo (host, port, &hints, &found);
    if (gai != 0 || !found) {
        cfg_ctx_error_at (ctx, path,
                          "cannot resolve host \"%s\" (%s); use an address "
                          "or a name this machine resolves",
                          ep->host, gai ? gai_strerror (gai) : "no address");
        if (found)
            freeaddrinfo (found);
        return;
    }
    int fd = socket (found->ai_family, found->ai_socktype | SOCK_CLOEXEC,
                     found->ai_protocol);
    if (fd >= 0) {
        int on = 1;
        setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (bind (fd, found->ai_addr, found->ai_addrlen) != 0) {
            int err = errno;
            if (err == EADDRINUSE)
                cfg_ctx_error_at (ctx, path,
                                  "%s:%u is already in use (another fedq-node "
                                  "or service listens there); stop it or "
                                  "choose another port",
                                  ep->host, ep->port);
            else
                cfg_ctx_error_at (ctx, path, "cannot listen on %s:%u: %s",
                                  ep->host, ep->port, strerror (err));
        }
        close (fd);
    }
    freeaddrinfo (found);
}

//  --- node ------------------------------------------------------------------

static void
s_check_key_files (cfg_ctx_t *ctx, const cfg_security_t *sec)
{
    struct stat st;
    if (sec->secret_key) {
        const char *path = "node.security.secret_key";
        int fd = open (sec->secret_key, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            cfg_ctx_error_at (ctx, path,
                              "cannot open \"%s\": %s; create it with "
                              "`fedq keygen NAME` or fix the path",
                              sec->secret_key, strerror (errno));
        else {
            if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
                cfg_ctx_error_at (ctx, path,
                                  "\"%s\" is not a regular file; expected "
                                  "the NAME.key file from `fedq keygen`",
                                  sec->secret_key);
            else if (st.st_mode & 077)
                cfg_ctx_error_at (ctx, path,
                                  "\"%s\" can be read by group or others "
                                  "(mode %04o); a secret key must be private: "
                                  "run chmod 600 %s",
                                  sec->secret_key,
                                  (unsigned) (st.st_mode & 07777),
                                  sec->secret_key);
            close (fd);
        }
    }
    if (sec->authorized_keys) {
        const char *path = "node.security.authorized_keys";
        if (stat (sec->authorized_keys, &st) != 0)
            cfg_ctx_error_at (ctx, path,
                              "cannot find \"%s\": %s; expected a directory "
                              "of NAME.pub files",
                              sec->authorized_keys, strerror (errno));
        else if (!S_ISDIR (st.st_mode))
            cfg_ctx_error_at (ctx, path,
                              "\"%s\" is not a directory; expected a "
                              "directory of NAME.pub files",
                              sec->authorized_keys);
    }
}

//  A private file that must exist: a regular file, and (private) not
//  readable by group or others.
static void
s_check_file (cfg_ctx_t *ctx, const char *path, const char *file,
              bool private, const char *what)
{
    struct stat st;
    int fd = open (file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cfg_ctx_error_at (ctx, path, "cannot open \"%s\": %s; %s", file,
                          strerror (errno), what);
        return;
    }
    if (fstat (fd, &st) != 0 || !S_ISREG (st.st_mode))
        cfg_ctx_error_at (ctx, path, "\"%s\" is not a regular file; %s",
                          file, what);
    else if (private && (st.st_mode & 077))
        cfg_ctx_error_at (ctx, path,
                          "\"%s\" can be read by group or others (mode "
                          "%04o); a private key must be private: run chmod "
                          "600 %s",
                          file, (unsigned) (st.st_mode & 07777), file);
    close (fd);
}

//  A link's server_key (shovel destination, federation peer): required
//  when this node uses CURVE (its links do too), meaningless without.
static void
s_check_server_key (cfg_ctx_t *ctx, const cfg_node_t *node,
                    const char *where, const char *server_key)
{
    bool curve = node->has_security && node->security.secret_key;
    char path[CFG_PATH_MAX];
    snprintf (path, sizeof path, "%s.server_key", where);
    if (curve && !server_key)
        cfg_ctx_error_at (ctx, where,
                          "server_key is required when node.security has a "
                          "secret_key (links use CURVE too); add server_key: "
                          "FILE, the NAME.pub of the node at the other end");
    else if (!curve && server_key)
        cfg_ctx_error_at (ctx, path,
                          "needs node.security.secret_key (this node's own "
                          "key to connect with); configure node.security or "
                          "remove server_key");
    else if (server_key && cfg_ctx_opts (ctx)->check_key_files)
        s_check_file (ctx, path, server_key, false,
                      "expected the NAME.pub of the node at the other end");
}

static void
s_check_node (cfg_ctx_t *ctx, const cfg_node_t *node)
{
    const cfg_security_t *sec = &node->security;
    const cfg_load_opts_t *opts = cfg_ctx_opts (ctx);
    bool curve = node->has_security && sec->secret_key;
    if (node->has_security) {
        if (sec->secret_key && !sec->authorized_keys)
            cfg_ctx_error_at (ctx, "node.security",
                              "secret_key is set but authorized_keys is not; "
                              "add authorized_keys: DIR (the NAME.pub files "
                              "of the clients and peers to accept)");
        else if (!sec->secret_key && sec->authorized_keys)
            cfg_ctx_error_at (ctx, "node.security",
                              "authorized_keys is set but secret_key is not; "
                              "add secret_key: FILE (from `fedq keygen NAME`)");
        else if (!sec->secret_key && !sec->insecure)
            cfg_ctx_error_at (ctx, "node.security",
                              "expected secret_key and authorized_keys (CURVE), "
                              "or insecure: true, got neither");
        if (opts->check_key_files)
            s_check_key_files (ctx, sec);
    }
    if (node->has_http_tls) {
        if (!node->http)
            cfg_ctx_error_at (ctx, "node.http_tls",
                              "has no effect without node.http; set "
                              "node.http: HOST:PORT or remove http_tls");
        if (opts->check_key_files && node->http_tls.cert)
            s_check_file (ctx, "node.http_tls.cert", node->http_tls.cert,
                          false, "expected a PEM certificate");
        if (opts->check_key_files && node->http_tls.key)
            s_check_file (ctx, "node.http_tls.key", node->http_tls.key, true,
                          "expected the PEM private key of the certificate");
    }

    cfg_endpoint_t listen, http;
    char why[160];
    bool has_listen = node->listen
                      && cfg_endpoint_parse (node->listen, &listen, why,
                                             sizeof why);
    bool has_http = node->http
                    && cfg_hostport_parse (node->http, &http, why, sizeof why);
    if (has_listen && listen.scheme == CFG_EP_TCP
        && !cfg_host_is_loopback (listen.host) && !curve
        && !(node->has_security && sec->insecure))
        cfg_ctx_error_at (ctx, "node.listen",
                          "\"%s\" is reachable beyond this machine without "
                          "CURVE; configure node.security with secret_key "
                          "and authorized_keys, or set node.security.insecure: "
                          "true to accept unauthenticated peers",
                          node->listen);
    if (has_listen && has_http && listen.scheme == CFG_EP_TCP
        && listen.port == http.port
        && (strcasecmp (listen.host, http.host) == 0
            || cfg_host_is_any (listen.host) || cfg_host_is_any (http.host)
            || (cfg_host_is_loopback (listen.host)
                && cfg_host_is_loopback (http.host))))
        cfg_ctx_error_at (ctx, "node.http",
                          "port %u is also node.listen's port; give the HTTP "
                          "endpoint its own port",
                          http.port);
    else if (opts->check_listen) {
        if (has_listen && listen.scheme == CFG_EP_TCP)
            s_check_bind (ctx, "node.listen", &listen);
        if (has_http)
            s_check_bind (ctx, "node.http", &http);
    }
}

//  --- sections ------------------------------------------------------------

static void
s_check_queue (cfg_ctx_t *ctx, const char *where, const cfg_queue_t *queue,
               const s_decls_t *exchanges)
{
    char path[CFG_PATH_MAX];
    if (queue->dead_letter_exchange && *queue->dead_letter_exchange
        && !s_decls_find (exchanges, queue->dead_letter_exchange)) {
        snprintf (path, sizeof path, "%s.dead_letter_exchange", where);
        s_undeclared (ctx, path, exchanges, "exchange",
                      queue->dead_letter_exchange, "exchanges");
    }
    if (queue->dead_letter_routing_key && !queue->dead_letter_exchange) {
        snprintf (path, sizeof path, "%s.dead_letter_routing_key", where);
        cfg_ctx_error_at (ctx, path,
                          "has no effect without dead_letter_exchange; set "
                          "dead_letter_exchange (\"\" is the default "
                          "exchange) or remove it");
    }
}

static void
s_report_dup_binding (cfg_ctx_t *ctx, const s_decl_t *first,
                      const s_decl_t *dup, const void *arg)
{
    char path[CFG_PATH_MAX];
    snprintf (path, sizeof path, "bindings[%zu]", dup->index);
    cfg_ctx_error_at (ctx, path,
                      "the same binding as bindings[%zu] (line %d); remove "
                      "one",
                      first->index, first->mark.line);
}

static void
s_check_bindings (cfg_ctx_t *ctx, const cfg_t *cfg, const s_decls_t *exchanges,
                  const s_decls_t *queues)
{
    char path[CFG_PATH_MAX];
    for (size_t i = 0; i < cfg->nbindings; i++) {
        const cfg_binding_t *b = &cfg->bindings[i];
        if (b->exchange && !*b->exchange) {
            snprintf (path, sizeof path, "bindings[%zu].exchange", i);
            cfg_ctx_error_at (ctx, path,
                              "the default exchange \"\" routes by queue name "
                              "and cannot be bound; name a declared exchange");
        }
        else if (b->exchange && !s_decls_find (exchanges, b->exchange)) {
            snprintf (path, sizeof path, "bindings[%zu].exchange", i);
            s_undeclared (ctx, path, exchanges, "exchange", b->exchange,
                          "exchanges");
        }
        if (b->queue && !s_decls_find (queues, b->queue)) {
            snprintf (path, sizeof path, "bindings[%zu].queue", i);
            s_undeclared (ctx, path, queues, "queue", b->queue,
                          "queues or federated_queues");
        }
    }
    s_decls_t seen = {0};
    for (size_t i = 0; i < cfg->nbindings; i++) {
        const cfg_binding_t *b = &cfg->bindings[i];
        if (b->queue && b->key)
            s_decls_push (&seen, (s_decl_t){.name = b->exchange,
                                            .also = {b->queue, b->key},
                                            .section = "bindings",
                                            .index = i,
                                            .mark = b->mark});
    }
    s_decls_sort (&seen);
    s_decls_each_dup (ctx, &seen, s_report_dup_binding, NULL);
    s_decls_free (&seen);
}

static void
s_report_shared_source (cfg_ctx_t *ctx, const s_decl_t *first,
                        const s_decl_t *dup, const void *arg)
{
    char path[CFG_PATH_MAX];
    snprintf (path, sizeof path, "shovels[%zu].source.queue", dup->index);
    cfg_ctx_error_at (ctx, path,
                      "queue \"%s\" is already the source of shovels[%zu] "
                      "(line %d); a queue feeds one shovel, so give this "
                      "shovel its own queue (bind both queues to one "
                      "exchange to copy messages)",
                      dup->name, first->index, first->mark.line);
}

static void
s_check_shovels (cfg_ctx_t *ctx, cfg_t *cfg, const s_decls_t *queues)
{
    char path[CFG_PATH_MAX], base[64];
    for (size_t i = 0; i < cfg->nshovels; i++) {
        cfg_shovel_t *s = &cfg->shovels[i];
        snprintf (base, sizeof base, "shovels[%zu]", i);
        if (s->source_queue && !s_decls_find (queues, s->source_queue)) {
            snprintf (path, sizeof path, "%s.source.queue", base);
            s_undeclared (ctx, path, queues, "queue", s->source_queue,
                          "queues or federated_queues");
        }
        if (s_is_own_endpoint (cfg->node.listen, s->dest_endpoint)) {
            snprintf (path, sizeof path, "%s.destination.endpoint", base);
            cfg_ctx_error_at (ctx, path,
                              "\"%s\" is this node's own listen endpoint; a "
                              "shovel forwards to another node (to move "
                              "messages locally, bind a queue instead)",
                              s->dest_endpoint);
        }
        if (s->dest_queue) {
            snprintf (path, sizeof path, "%s.destination.exchange", base);
            bool exchange = cfg_ctx_given (ctx, path);
            snprintf (path, sizeof path, "%s.destination.routing_key", base);
            bool key = cfg_ctx_given (ctx, path);
            if (exchange || key) {
                snprintf (path, sizeof path, "%s.destination.queue", base);
                cfg_ctx_error_at (ctx, path,
                                  "cannot be combined with %s; with queue set, "
                                  "messages go through the default exchange "
                                  "with routing key = queue, so remove one",
                                  exchange && key ? "exchange and routing_key"
                                  : exchange      ? "exchange"
                                                  : "routing_key");
            }
            //  Settle what queue means, so that users of cfg_shovel_t see
            //  one way to address the destination.
            free (s->dest_exchange);
            s->dest_exchange = cfg_strdup ("");
            free (s->dest_routing_key);
            s->dest_routing_key = cfg_strdup (s->dest_queue);
        }
        snprintf (path, sizeof path, "%s.destination", base);
        s_check_server_key (ctx, &cfg->node, path, s->dest_server_key);
        if (s->max_reconnect_delay_ms < s->reconnect_delay_ms) {
            char lo[32], hi[32];
            cfg_duration_text (s->max_reconnect_delay_ms, lo, sizeof lo);
            cfg_duration_text (s->reconnect_delay_ms, hi, sizeof hi);
            snprintf (path, sizeof path, "%s.max_reconnect_delay", base);
            cfg_ctx_error_at (ctx, path,
                              "%s is shorter than reconnect_delay %s; the "
                              "back-off grows from reconnect_delay up to this, "
                              "so raise it or lower reconnect_delay",
                              lo, hi);
        }
    }
    //  A shovel is its source queue's only consumer: one per queue.
    s_decls_t sources = {0};
    char path2[CFG_PATH_MAX];
    for (size_t i = 0; i < cfg->nshovels; i++) {
        snprintf (path2, sizeof path2, "shovels[%zu].source.queue", i);
        s_decls_push (&sources,
                      (s_decl_t){.name = cfg->shovels[i].source_queue,
                                 .section = "shovels",
                                 .index = i,
                                 .mark = cfg_ctx_mark (ctx, path2)});
    }
    s_decls_sort (&sources);
    s_decls_each_dup (ctx, &sources, s_report_shared_source, NULL);
    s_decls_free (&sources);
}

static void
s_report_dup_peer (cfg_ctx_t *ctx, const s_decl_t *first, const s_decl_t *dup,
                   const void *arg)
{
    char path[CFG_PATH_MAX];
    snprintf (path, sizeof path, "%s.peers[%zu].id", dup->section, dup->index);
    cfg_ctx_error_at (ctx, path,
                      "peer \"%s\" is already listed at line %d; list each "
                      "member once",
                      dup->name, first->mark.line);
}

static void
s_check_federated (cfg_ctx_t *ctx, cfg_t *cfg, const s_decls_t *exchanges)
{
    char path[CFG_PATH_MAX], base[64];
    for (size_t i = 0; i < cfg->nfederated; i++) {
        cfg_federated_t *f = &cfg->federated[i];
        f->queue.mark = f->mark;
        snprintf (base, sizeof base, "federated_queues[%zu]", i);
        s_check_queue (ctx, base, &f->queue, exchanges);
        for (size_t p = 0; p < f->npeers; p++) {
            const cfg_peer_t *peer = &f->peers[p];
            if (peer->id && cfg->node.id && !strcmp (peer->id, cfg->node.id)) {
                snprintf (path, sizeof path, "%s.peers[%zu].id", base, p);
                cfg_ctx_error_at (ctx, path,
                                  "\"%s\" is this node's own id; list only "
                                  "the other members",
                                  peer->id);
            }
            snprintf (path, sizeof path, "%s.peers[%zu]", base, p);
            s_check_server_key (ctx, &cfg->node, path, peer->server_key);
            if (s_is_own_endpoint (cfg->node.listen, peer->endpoint)) {
                snprintf (path, sizeof path, "%s.peers[%zu].endpoint", base,
                          p);
                cfg_ctx_error_at (ctx, path,
                                  "\"%s\" is this node's own listen endpoint; "
                                  "list only the other members",
                                  peer->endpoint);
            }
        }
        s_decls_t ids = {0};
        for (size_t p = 0; p < f->npeers; p++)
            s_decls_push (&ids, (s_decl_t){.name = f->peers[p].id,
                                           .section = base,
                                           .index = p,
                                           .mark = f->peers[p].mark});
        s_decls_sort (&ids);
        s_decls_each_dup (ctx, &ids, s_report_dup_peer, NULL);
        s_decls_free (&ids);
    }
}

void
cfg_check (cfg_ctx_t *ctx, cfg_t *cfg)
{
    s_decls_t exchanges = {0}, queues = {0}, shovels = {0};
    for (size_t i = 0; i < cfg->nexchanges; i++)
        s_decls_add (ctx, &exchanges, cfg->exchanges[i].name, "exchanges", i);
    //  Federated queues are queues too: one namespace for both.
    for (size_t i = 0; i < cfg->nqueues; i++)
        s_decls_add (ctx, &queues, cfg->queues[i].name, "queues", i);
    for (size_t i = 0; i < cfg->nfederated; i++)
        s_decls_add (ctx, &queues, cfg->federated[i].queue.name,
                     "federated_queues", i);
    for (size_t i = 0; i < cfg->nshovels; i++)
        s_decls_add (ctx, &shovels, cfg->shovels[i].name, "shovels", i);
    s_decls_sort (&exchanges);
    s_decls_sort (&queues);
    s_decls_sort (&shovels);
    s_decls_unique (ctx, &exchanges, "exchange");
    s_decls_unique (ctx, &queues, "queue");
    s_decls_unique (ctx, &shovels, "shovel");

    s_check_node (ctx, &cfg->node);
    for (size_t i = 0; i < cfg->nqueues; i++) {
        char where[64];
        snprintf (where, sizeof where, "queues[%zu]", i);
        s_check_queue (ctx, where, &cfg->queues[i], &exchanges);
    }
    s_check_bindings (ctx, cfg, &exchanges, &queues);
    s_check_shovels (ctx, cfg, &queues);
    s_check_federated (ctx, cfg, &exchanges);

    s_decls_free (&exchanges);
    s_decls_free (&queues);
    s_decls_free (&shovels);
}
