//  node/node.c — the fedq-node event loop: one thread owns the broker,
//  the sessions and the links. Each turn reads a batch of frames, makes
//  every publish of the batch durable with one commit (group commit),
//  confirms them, then dispatches deliveries.
#define _GNU_SOURCE
#include "node_internal.h"
#include "http.h"
#include "shovel_link.h"
#include "fed.h"
#include "security.h"

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define NODE_TICK_MS 1000
#define NODE_HTTP_MS 500        //  status snapshot for the HTTP thread

//  --------------------------------------------------------------------
//  Sending

fedq_rc_t
node_send (node_t *self, const uint8_t *id, size_t idlen,
           const proto_frame_t *frame, const uint8_t *env, size_t env_len,
           const uint8_t *body, size_t body_len)
{
    self->out.size = 0;
    proto_frame_encode (frame, &self->out);
    bool has_msg = env != NULL;
    if (zmq_send (self->router, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? FEDQ_EAGAIN : FEDQ_ENOTFOUND;
    //  Once the routing id is accepted the rest of the message goes too.
    zmq_send (self->router, self->out.data, self->out.size,
              has_msg ? ZMQ_SNDMORE : 0);
    if (has_msg) {
        zmq_send (self->router, env, env_len, ZMQ_SNDMORE);
        zmq_send (self->router, body, body_len, 0);
    }
    return FEDQ_OK;
}

void
node_send_error (node_t *self, const uint8_t *id, size_t idlen, uint64_t rid,
                 fedq_rc_t code, const char *fmt, ...)
{
    char text[1024];
    va_list args;
    va_start (args, fmt);
    vsnprintf (text, sizeof text, fmt, args);
    va_end (args);
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = PROTO_ERROR,
                       .present = PF_CODE | PF_TEXT,
                       .code = code,
                       .text = fedq_str_of (text)};
    if (rid) {
        f.present |= PF_RID;
        f.rid = rid;
    }
    node_send (self, id, idlen, &f, NULL, 0, NULL, 0);
}


//  --------------------------------------------------------------------
//  Links

static void
s_links_add (node_t *self, const cfg_shovel_t *cfg)
{
    shovel_link_t *link = shovel_link_new (cfg, self->cfg->node.id,
                                           self->broker, self->zmq_ctx);
    if (!link)
        return;
    self->links = realloc (self->links,
                           (self->nlinks + 1) * sizeof *self->links);
    if (!self->links)
        abort ();
    self->links[self->nlinks++] = link;
}

//  Bring the running links in line with cfg: links whose settings did not
//  change keep running untouched.
static void
s_links_sync (node_t *self, const cfg_t *cfg)
{
    for (size_t i = 0; i < self->nlinks;) {
        const cfg_shovel_t *running = shovel_link_cfg (self->links[i]);
        const cfg_shovel_t *next = NULL;
        for (size_t j = 0; j < cfg->nshovels; j++)
            if (strcmp (cfg->shovels[j].name, running->name) == 0)
                next = &cfg->shovels[j];
        if (next && cfg_shovel_equal (next, running)) {
            i++;
            continue;
        }
        fedq_info ("shovel=%s stopping: removed or changed by reload",
                   running->name);
        //  Its source queue goes back to clients: see shovel_link_retire.
        if (!next || strcmp (next->source_queue, running->source_queue))
            shovel_link_retire (self->links[i]);
        shovel_link_destroy (&self->links[i]);
        self->links[i] = self->links[--self->nlinks];
    }
    for (size_t j = 0; j < cfg->nshovels; j++) {
        bool running = false;
        for (size_t i = 0; i < self->nlinks; i++)
            if (strcmp (shovel_link_cfg (self->links[i])->name,
                        cfg->shovels[j].name)
                == 0)
                running = true;
        if (!running)
            s_links_add (self, &cfg->shovels[j]);
    }
}

static void
s_feds_add (node_t *self, const cfg_federated_t *cfg)
{
    fed_t *fed = fed_new (cfg, self->cfg->node.id, self->broker,
                          self->zmq_ctx);
    if (!fed)
        return;
    self->feds = realloc (self->feds, (self->nfeds + 1) * sizeof *self->feds);
    if (!self->feds)
        abort ();
    self->feds[self->nfeds++] = fed;
}

//  Bring the running federated queues in line with cfg (old is the
//  running config): unchanged ones keep their links.
static void
s_feds_sync (node_t *self, const cfg_t *old, const cfg_t *cfg)
{
    for (size_t i = 0; i < self->nfeds;) {
        const char *name = fed_name (self->feds[i]);
        const cfg_federated_t *was = NULL, *now = NULL;
        for (size_t j = 0; j < old->nfederated; j++)
            if (strcmp (old->federated[j].queue.name, name) == 0)
                was = &old->federated[j];
        for (size_t j = 0; j < cfg->nfederated; j++)
            if (strcmp (cfg->federated[j].queue.name, name) == 0)
                now = &cfg->federated[j];
        if (was && now && cfg_federated_equal (was, now)) {
            i++;
            continue;
        }
        fedq_info ("federation=%s stopping: removed or changed by reload",
                   name);
        session_fed_closed (self, self->feds[i]);
        fed_destroy (&self->feds[i]);
        self->feds[i] = self->feds[--self->nfeds];
    }
    for (size_t j = 0; j < cfg->nfederated; j++) {
        bool running = false;
        for (size_t i = 0; i < self->nfeds; i++)
            if (strcmp (fed_name (self->feds[i]),
                        cfg->federated[j].queue.name)
                == 0)
                running = true;
        if (!running)
            s_feds_add (self, &cfg->federated[j]);
    }
}

static fedq_rc_t
s_commit (node_t *self)
{
    fedq_rc_t rc = broker_commit (self->broker);
    session_confirm_all (self, rc);
    if (rc != FEDQ_OK)
        for (size_t i = 0; i < self->nlinks; i++)
            shovel_link_commit_failed (self->links[i]);
    if (rc == FEDQ_OK) {
        for (size_t i = 0; i < self->nlinks; i++)
            shovel_link_committed (self->links[i]);
        for (size_t i = 0; i < self->nfeds; i++)
            fed_committed (self->feds[i]);
    }
    return rc;
}

static json_t *
s_link_status (shovel_link_t *link)
{
    shovel_stats_t st;
    shovel_link_stats (link, &st);
    const cfg_shovel_t *cfg = shovel_link_cfg (link);
    json_t *j = json_pack (
      "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I,"
      " s:I, s:I, s:f, s:I, s:f, s:b, s:b, s:s, s:f, s:I}",
      "name", cfg->name, "kind", "shovel", "peer", st.peer, "state",
      shovel_state_name (st.state), "source", cfg->source_queue,
      "backlog_messages", (json_int_t) st.backlog_messages, "backlog_bytes",
      (json_int_t) st.backlog_bytes, "lag_seconds", st.lag_seconds,
      "forwarded_total", (json_int_t) st.forwarded_total, "resent_total",
      (json_int_t) st.resent_total, "confirmed_total",
      (json_int_t) st.confirmed_total, "duplicates_dropped_total",
      (json_int_t) st.duplicates_total, "dead_lettered_total",
      (json_int_t) st.dead_lettered_total, "rejected_total",
      (json_int_t) st.rejected_total, "reconnects_total",
      (json_int_t) st.reconnects_total, "loops_total",
      (json_int_t) st.loops_total, "forward_rate", st.forward_rate, "window",
      (json_int_t) st.window, "rtt_ms", st.rtt_ms, "lag_alert", st.lag_alert,
      "backlog_alert", st.backlog_alert, "last_error", st.last_error,
      "lag_alert_seconds", (double) cfg->lag_alert_ms / 1000.0,
      "backlog_alert_messages", (json_int_t) cfg->backlog_alert);
    json_object_set_new (j, "endpoint", json_string (cfg->dest_endpoint));
    json_object_set_new (j, "lost_total", json_integer ((json_int_t) st.lost_total));
    json_object_set_new (j, "ack_mode",
                         json_string (cfg->ack_mode == CFG_ACK_ON_PUBLISH ? "on-publish"
                                      : cfg->ack_mode == CFG_ACK_NO_ACK ? "no-ack"
                                                                        : "on-confirm"));
    return j;
}

//  --------------------------------------------------------------------
//  Configuration

static proto_qopts_t
s_qopts (const cfg_queue_t *q)
{
    proto_qopts_t o = {
      .durable = q->durable,
      .auto_delete = q->auto_delete,
      .single_active_consumer = q->single_active_consumer,
      .max_priority = (uint8_t) q->max_priority,
      .overflow = q->overflow == CFG_OVERFLOW_REJECT_PUBLISH
                    ? PROTO_OVERFLOW_REJECT
                    : PROTO_OVERFLOW_DROP_HEAD,
      .max_length = q->max_length,
      .max_bytes = q->max_bytes,
      .message_ttl_ms = q->message_ttl_ms,
      .dedup_window_ms = q->dedup_window_ms,
      .dead_letter_exchange = fedq_str_of (q->dead_letter_exchange),
      .dead_letter_routing_key = fedq_str_of (q->dead_letter_routing_key)};
    return o;
}

static exchange_type_t
s_xtype (cfg_exchange_type_t t)
{
    return t == CFG_EXCHANGE_FANOUT  ? EXCHANGE_FANOUT
           : t == CFG_EXCHANGE_TOPIC ? EXCHANGE_TOPIC
                                     : EXCHANGE_DIRECT;
}

//  Declare everything the config names. Entries the config no longer
//  names are kept (with their messages) but no longer config-owned.
static fedq_rc_t
s_apply_declarations (node_t *self, const cfg_t *cfg)
{
    fedq_rc_t rc = FEDQ_OK;
    for (size_t i = 0; i < cfg->nexchanges && !rc; i++)
        rc = broker_declare_exchange (self->broker, cfg->exchanges[i].name,
                                      s_xtype (cfg->exchanges[i].type), true,
                                      false);
    for (size_t i = 0; i < cfg->nqueues && !rc; i++) {
        proto_qopts_t o = s_qopts (&cfg->queues[i]);
        rc = broker_declare_queue (self->broker, cfg->queues[i].name, &o,
                                   true, false, NULL);
    }
    for (size_t i = 0; i < cfg->nfederated && !rc; i++) {
        proto_qopts_t o = s_qopts (&cfg->federated[i].queue);
        rc = broker_declare_queue (self->broker, cfg->federated[i].queue.name,
                                   &o, true, false, NULL);
    }
    for (size_t i = 0; i < cfg->nbindings && !rc; i++)
        rc = broker_bind (self->broker, cfg->bindings[i].exchange,
                          cfg->bindings[i].queue, cfg->bindings[i].key);
    if (rc)
        fedq_error ("cannot apply the declarations of %s: %s", cfg->path,
                    fedq_rc_name (rc));
    return rc;
}

static fedq_log_level_t
s_log_level (const char *name)
{
    if (name && strcmp (name, "debug") == 0)
        return FEDQ_LOG_DEBUG;
    if (name && strcmp (name, "warn") == 0)
        return FEDQ_LOG_WARN;
    if (name && strcmp (name, "error") == 0)
        return FEDQ_LOG_ERROR;
    return FEDQ_LOG_INFO;
}

static void
s_reload (node_t *self)
{
    //  The authorized keys first: revoking a key must not wait for a
    //  valid file.
    if (self->security
        && security_reload (self->security, &self->cfg->node.security)
             == FEDQ_OK)
        session_auth_reload (self);
    char *text = NULL;
    size_t size = 0;
    FILE *errs = open_memstream (&text, &size);
    cfg_load_opts_t opts = {.check_listen = false, .check_key_files = true};
    cfg_t *cfg = NULL;
    fedq_rc_t rc = cfg_load (self->cfg->path, &opts, errs, &cfg);
    fclose (errs);
    if (rc) {
        fedq_error ("reload of %s failed; the running configuration "
                    "(generation %" PRIu64 ") stays: %s",
                    self->cfg->path, self->config_generation,
                    text ? text : "");
        free (text);
        return;
    }
    free (text);
    if (!cfg_node_equal (&cfg->node, &self->cfg->node))
        fedq_warn ("reload: changes to the node section (id, listen, http, "
                   "data_dir, fsync, security...) take effect only after a "
                   "restart");
    s_commit (self);
    if (s_apply_declarations (self, cfg)) {
        cfg_destroy (&cfg);
        return;
    }
    s_links_sync (self, cfg);
    s_feds_sync (self, self->cfg, cfg);
    //  Keep the node section that is running; take everything else.
    cfg_t *old = self->cfg;
    cfg_node_t running = old->node;
    old->node = cfg->node;
    cfg->node = running;
    self->cfg = cfg;
    cfg_destroy (&old);
    self->config_generation++;
    self->config_loaded_at = fedq_wall_ms ();
    fedq_info ("reloaded %s: configuration generation %" PRIu64,
               self->cfg->path, self->config_generation);
}

//  --------------------------------------------------------------------
//  Status

static void
s_queue_status (void *ctx, queue_t *q)
{
    json_t *queues = ctx;
    json_t *j = json_pack (
      "{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I}",
      "name", q->name, "depth", (json_int_t) queue_depth (q), "ready",
      (json_int_t) q->ready_count, "unacked", (json_int_t) q->unacked_count,
      "bytes", (json_int_t) (q->ready_bytes + q->unacked_bytes), "consumers",
      (json_int_t) q->nconsumers, "durable", q->opts.durable,
      "published_total", (json_int_t) q->published_total, "delivered_total",
      (json_int_t) q->delivered_total, "acked_total",
      (json_int_t) q->acked_total, "dead_lettered_total",
      (json_int_t) q->dead_lettered_total, "dropped_total",
      (json_int_t) q->dropped_total, "duplicates_total",
      (json_int_t) q->duplicates_total);
    json_object_set_new (j, "held", json_integer ((json_int_t) q->held_count));
    json_object_set_new (j, "publish_rate", json_real (q->publish_rate));
    json_object_set_new (j, "deliver_rate", json_real (q->deliver_rate));
    if (q->owner)
        json_object_set_new (j, "shovel", json_string (q->owner));
    json_array_append_new (queues, j);
}

char *
node_status_json (node_t *self)
{
    store_stats_t ss;
    store_stats (broker_store (self->broker), &ss);
    const broker_stats_t *bs = broker_stats (self->broker);
    static const char *fsync_names[] = {"always", "batch", "never"};
    json_t *node = json_pack (
      "{s:s, s:s, s:I, s:I, s:I, s:s, s:s}", "id", self->cfg->node.id,
      "version", FEDQ_VERSION, "uptime_s",
      (json_int_t) ((fedq_mono_ms () - self->started_at) / 1000),
      "config_generation", (json_int_t) self->config_generation,
      "config_loaded_at", (json_int_t) self->config_loaded_at, "fsync",
      fsync_names[self->cfg->node.fsync], "listen", self->cfg->node.listen);
    //  The origin this node's federation events carry (fed.h).
    json_object_set_new (node, "federation_origin",
                         json_string (broker_fed_origin (self->broker)));
    json_t *store = json_pack (
      "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "bytes", (json_int_t) ss.bytes,
      "segments", (json_int_t) ss.segments, "commits",
      (json_int_t) ss.commits, "fsyncs", (json_int_t) ss.fsyncs, "live_refs",
      (json_int_t) ss.live_refs, "corrupt_reads",
      (json_int_t) ss.corrupt_reads, "fsync_us_total",
      (json_int_t) ss.fsync_us_total);
    //  fsync latency histogram: counts per bucket (not cumulative) and
    //  the upper bound of each bucket in seconds (the last is +Inf: null).
    json_t *counts = json_array (), *bounds = json_array ();
    for (int i = 0; i < 12; i++) {
        json_array_append_new (counts,
                               json_integer ((json_int_t) ss.fsync_hist[i]));
        json_array_append_new (
          bounds, i == 11 ? json_null ()
                          : json_real ((double) store_fsync_buckets_us[i]
                                       / 1e6));
    }
    json_object_set_new (store, "fsync_hist", counts);
    json_object_set_new (store, "fsync_hist_le", bounds);
    json_object_set_new (node, "store", store);
    json_object_set_new (
      node, "stats",
      json_pack ("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                 "published_total", (json_int_t) bs->published_total,
                 "confirmed_total", (json_int_t) bs->confirmed_total,
                 "unroutable_total", (json_int_t) bs->unroutable_total,
                 "duplicates_total", (json_int_t) bs->duplicates_total,
                 "delivered_total", (json_int_t) bs->delivered_total,
                 "acked_total", (json_int_t) bs->acked_total,
                 "dead_lettered_total", (json_int_t) bs->dead_lettered_total,
                 "expired_total", (json_int_t) bs->expired_total,
                 "commit_errors_total", (json_int_t) bs->commit_errors_total,
                 "corrupt_total", (json_int_t) bs->corrupt_total,
                 "bad_frames_total", (json_int_t) self->bad_frames));
    //  Security (node/security.h): refused handshakes and frames, bodies
    //  that failed their shovel digest.
    json_t *stats = json_object_get (node, "stats");
    json_object_set_new (
      stats, "auth_refused_total",
      json_integer ((json_int_t) (self->auth_refused
                                  + security_handshakes_refused (
                                    self->security))));
    json_object_set_new (stats, "digest_mismatch_total",
                         json_integer ((json_int_t) self->digest_mismatches));
    json_object_set_new (
      node, "security",
      json_pack ("{s:b, s:I, s:I, s:I}", "curve", self->security != NULL,
                 "authorized_keys",
                 (json_int_t) security_keys_size (
                   security_keys (self->security)),
                 "handshakes_refused_total",
                 (json_int_t) security_handshakes_refused (self->security),
                 "frames_refused_total", (json_int_t) self->auth_refused));
    json_object_set_new (node, "sessions",
                         json_integer ((json_int_t) zhashx_size (self->sessions)));
    json_t *queues = json_array ();
    broker_queues_each (self->broker, s_queue_status, queues);
    json_t *links = json_array ();
    for (size_t i = 0; i < self->nlinks; i++)
        json_array_append_new (links, s_link_status (self->links[i]));
    for (size_t i = 0; i < self->nfeds; i++)
        fed_status (self->feds[i], links);
    json_t *root = json_pack ("{s:o, s:o, s:o}", "node", node, "queues",
                              queues, "links", links);
    char *text = json_dumps (root, JSON_COMPACT);
    json_decref (root);
    return text;
}

//  --------------------------------------------------------------------
//  Life cycle

node_t *
node_new (cfg_t **cfg_p)
{
    node_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg_p;
    *cfg_p = NULL;
    self->config_generation = 1;
    self->config_loaded_at = fedq_wall_ms ();
    self->started_at = fedq_mono_ms ();
    self->sigfd = -1;
    fedq_log_setup (s_log_level (self->cfg->node.log_level),
                    self->cfg->node.id);

    //  Signals go to signalfd; block them before ZeroMQ starts threads.
    sigset_t mask;
    sigemptyset (&mask);
    sigaddset (&mask, SIGINT);
    sigaddset (&mask, SIGTERM);
    sigaddset (&mask, SIGHUP);
    sigprocmask (SIG_BLOCK, &mask, NULL);
    signal (SIGPIPE, SIG_IGN);
    self->sigfd = signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    static const store_fsync_t fsync_map[] = {
      STORE_FSYNC_ALWAYS, STORE_FSYNC_BATCH, STORE_FSYNC_NEVER};
    broker_opts_t bopts = {.node_id = self->cfg->node.id,
                           .data_dir = self->cfg->node.data_dir,
                           .fsync = fsync_map[self->cfg->node.fsync],
                           .segment_bytes = self->cfg->node.segment_bytes,
                           .max_message_bytes
                           = self->cfg->node.max_message_bytes};
    if (broker_open (&bopts, &self->broker))
        goto failed;
    if (s_apply_declarations (self, self->cfg))
        goto failed;

    self->sessions = zhashx_new ();
    self->zmq_ctx = zmq_ctx_new ();
    self->router = zmq_socket (self->zmq_ctx, ZMQ_ROUTER);
    //  Outgoing messages queued per peer: no-ack consumers are limited
    //  only by this, so it bounds the bodies copied onto the heap for a
    //  slow one (about 20 MiB at 1 KiB). Incoming stays deep for links.
    int one = 1, zero = 0, hwm = 200000, sndhwm = 20000;
    int64_t maxmsg = (int64_t) self->cfg->node.max_message_bytes * 2
                     + PROTO_MAX_FRAME * 2;
    zmq_setsockopt (self->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt (self->router, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (self->router, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    zmq_setsockopt (self->router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (self->cfg->node.has_security && self->cfg->node.security.secret_key) {
        self->security = security_new (self->zmq_ctx,
                                       &self->cfg->node.security);
        if (!self->security || security_server (self->security, self->router))
            goto failed;
    }
    security_warn_insecure (&self->cfg->node);
    if (zmq_bind (self->router, self->cfg->node.listen) != 0) {
        fedq_error ("cannot listen on %s: %s; is another node running "
                    "there?",
                    self->cfg->node.listen, zmq_strerror (errno));
        goto failed;
    }
    if (self->cfg->node.http) {
        const cfg_node_t *n = &self->cfg->node;
        self->http = http_new_tls (n->http, n->id,
                                   n->has_http_tls ? n->http_tls.cert : NULL,
                                   n->has_http_tls ? n->http_tls.key : NULL);
        if (!self->http)
            goto failed;
    }
    for (size_t i = 0; i < self->cfg->nshovels; i++)
        s_links_add (self, &self->cfg->shovels[i]);
    for (size_t i = 0; i < self->cfg->nfederated; i++)
        s_feds_add (self, &self->cfg->federated[i]);
    fedq_info ("node %s listening on %s, data in %s (fsync %s)",
               self->cfg->node.id, self->cfg->node.listen,
               self->cfg->node.data_dir,
               self->cfg->node.fsync == CFG_FSYNC_ALWAYS  ? "always"
               : self->cfg->node.fsync == CFG_FSYNC_NEVER ? "never"
                                                          : "batch");
    return self;
failed:
    node_destroy (&self);
    return NULL;
}

void
node_destroy (node_t **self_p)
{
    node_t *self = *self_p;
    if (!self)
        return;
    http_destroy (&self->http);
    for (size_t i = 0; i < self->nlinks; i++)
        shovel_link_destroy (&self->links[i]);
    free (self->links);
    if (self->sessions) {
        session_reap (self, true);
        zhashx_destroy (&self->sessions);
    }
    for (size_t i = 0; i < self->nfeds; i++)
        fed_destroy (&self->feds[i]);
    free (self->feds);
    if (self->broker)
        broker_commit (self->broker);
    if (self->router)
        zmq_close (self->router);
    security_destroy (&self->security);
    if (self->zmq_ctx)
        zmq_ctx_term (self->zmq_ctx);
    broker_destroy (&self->broker);
    cfg_destroy (&self->cfg);
    if (self->sigfd >= 0)
        close (self->sigfd);
    free (self->confirm);
    fedq_buf_free (&self->out);
    fedq_buf_free (&self->env);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------
//  The loop

static void
s_handle_signals (node_t *self)
{
    struct signalfd_siginfo info;
    while (read (self->sigfd, &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGHUP)
            s_reload (self);
        else {
            fedq_info ("signal %u: stopping", info.ssi_signo);
            self->stopping = true;
        }
    }
}

//  Read one multipart message from the ROUTER and handle it; FEDQ_EAGAIN
//  when none is waiting.
static fedq_rc_t
s_recv_one (node_t *self)
{
    zmq_msg_t parts[4];
    int nparts = 0;
    bool more = true;
    bool overflow = false;
    while (more) {
        zmq_msg_t *part = &parts[nparts < 4 ? nparts : 3];
        if (nparts >= 4) {
            zmq_msg_close (part);
            overflow = true;
        }
        zmq_msg_init (part);
        if (zmq_msg_recv (part, self->router, nparts ? 0 : ZMQ_DONTWAIT)
            < 0) {
            zmq_msg_close (part);
            for (int i = 0; i < nparts && i < 4; i++)
                zmq_msg_close (&parts[i]);
            return FEDQ_EAGAIN;
        }
        more = zmq_msg_more (part);
        if (nparts < 4)
            nparts++;
    }
    self->frames_in++;
    const uint8_t *id = zmq_msg_data (&parts[0]);
    size_t idlen = zmq_msg_size (&parts[0]);
    if (nparts < 2 || overflow || (nparts != 2 && nparts != 4)) {
        self->bad_frames++;
        node_send_error (self, id, idlen, 0, FEDQ_EPROTO,
                         "a message has 1 header part, or 3 parts "
                         "(header, envelope, body)");
        goto done;
    }
    proto_frame_t frame;
    const char *error = NULL;
    if (proto_frame_decode (zmq_msg_data (&parts[1]), zmq_msg_size (&parts[1]),
                            &frame, &error)) {
        self->bad_frames++;
        node_send_error (self, id, idlen,
                         (frame.present & PF_RID) ? frame.rid : 0,
                         FEDQ_EPROTO, "malformed header: %s",
                         error ? error : "invalid");
        goto done;
    }
    self->frame_user_id = self->security
                            ? zmq_msg_gets (&parts[1], "User-Id")
                            : NULL;
    session_handle (self, id, idlen, &frame, nparts == 4 ? &parts[2] : NULL,
                    nparts == 4 ? &parts[3] : NULL);
done:
    for (int i = 0; i < nparts; i++)
        zmq_msg_close (&parts[i]);
    return FEDQ_OK;
}

int
node_run (node_t *self)
{
    self->next_tick = fedq_mono_ms () + NODE_TICK_MS;
    zmq_pollitem_t *items = NULL;
    shovel_link_t **polled = NULL;
    fed_t **fed_polled = NULL;
    while (!self->stopping) {
        //  Poll the endpoint, the signals and every connected link.
        size_t nfed_socks = 0;
        enum { FED_MAX_SOCKS = 64 };
        void *fed_socks[FED_MAX_SOCKS];
        fed_t *fed_owner[FED_MAX_SOCKS];
        for (size_t i = 0; i < self->nfeds; i++) {
            size_t n = fed_sockets (self->feds[i], fed_socks + nfed_socks,
                                    FED_MAX_SOCKS - nfed_socks);
            for (size_t k = 0; k < n; k++)
                fed_owner[nfed_socks + k] = self->feds[i];
            nfed_socks += n;
        }
        items = realloc (items,
                         (2 + self->nlinks + nfed_socks) * sizeof *items);
        polled = realloc (polled, (self->nlinks + 1) * sizeof *polled);
        fed_polled = realloc (fed_polled, (nfed_socks + 1) * sizeof *fed_polled);
        items[0] = (zmq_pollitem_t) {self->router, 0, ZMQ_POLLIN, 0};
        items[1] = (zmq_pollitem_t) {NULL, self->sigfd, ZMQ_POLLIN, 0};
        int nitems = 2;
        int64_t now = fedq_mono_ms ();
        int64_t wake = self->next_tick;
        if (self->http && self->next_http < wake)
            wake = self->next_http;
        for (size_t i = 0; i < self->nlinks; i++) {
            void *sock = shovel_link_socket (self->links[i]);
            if (sock) {
                polled[nitems - 2] = self->links[i];
                items[nitems++] = (zmq_pollitem_t) {sock, 0, ZMQ_POLLIN, 0};
            }
            int64_t w = shovel_link_next_wakeup (self->links[i]);
            if (w < wake)
                wake = w;
        }
        int first_fed = nitems;
        for (size_t k = 0; k < nfed_socks; k++) {
            fed_polled[k] = fed_owner[k];
            items[nitems++] = (zmq_pollitem_t) {fed_socks[k], 0, ZMQ_POLLIN, 0};
        }
        for (size_t i = 0; i < self->nfeds; i++) {
            int64_t w = fed_next_wakeup (self->feds[i]);
            if (w < wake)
                wake = w;
        }
        //  Held messages (consume: global handoff) wake the loop when due.
        int64_t held_due = broker_held_due (self->broker);
        if (held_due != INT64_MAX) {
            int64_t w = now + (held_due - fedq_wall_ms ());
            if (w < wake)
                wake = w;
        }
        long timeout = wake > now ? (long) (wake - now) : 0;
        if (self->any_blocked && timeout > 5)
            timeout = 5;
        if (zmq_poll (items, nitems, timeout) < 0 && errno != EINTR) {
            fedq_error ("poll failed: %s", zmq_strerror (errno));
            break;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            uint64_t generation = self->config_generation;
            s_handle_signals (self);
            //  A reload may have destroyed links whose sockets were just
            //  polled: start the turn again with the new set.
            if (generation != self->config_generation)
                continue;
        }
        for (int i = 2; i < first_fed; i++)
            if (items[i].revents & ZMQ_POLLIN)
                shovel_link_recv (polled[i - 2]);
        for (int i = first_fed; i < nitems; i++)
            if (items[i].revents & ZMQ_POLLIN)
                fed_recv (fed_polled[i - first_fed], items[i].socket);
        for (int n = 0; n < NODE_BATCH_MAX; n++)
            if (s_recv_one (self) == FEDQ_EAGAIN)
                break;
        s_commit (self);
        session_unblock_all (self);
        if (broker_held_due (self->broker) <= fedq_wall_ms ())
            broker_release_held (self->broker, fedq_wall_ms ());
        broker_dispatch (self->broker);
        //  Settlements of no-ack deliveries and dead-letters of this turn.
        s_commit (self);
        now = fedq_mono_ms ();
        for (size_t i = 0; i < self->nlinks; i++)
            if (shovel_link_next_wakeup (self->links[i]) <= now)
                shovel_link_tick (self->links[i]);
        for (size_t i = 0; i < self->nfeds; i++)
            if (fed_next_wakeup (self->feds[i]) <= now)
                fed_tick (self->feds[i]);
        //  The HTTP thread serves the last snapshot; it never reads state.
        if (self->http && now >= self->next_http) {
            self->next_http = now + NODE_HTTP_MS;
            char *json = node_status_json (self);
            http_update (self->http, json);
            free (json);
        }
        if (now >= self->next_tick) {
            self->next_tick = now + NODE_TICK_MS;
            broker_tick (self->broker);
            session_reap (self, false);
            s_commit (self);
        }
    }
    free (items);
    free (polled);
    free (fed_polled);
    s_commit (self);
    fedq_info ("stopped cleanly");
    return 0;
}
