//  node/broker.c — exchanges, queues, routing, staged publish with group
//  commit, dispatch, settlement, dead-lettering, TTL, overflow, dedup.
#define _GNU_SOURCE
#include "broker.h"
#include "broker_internal.h"
#include "broker_meta.h"
#include "u64map.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void s_dead_letter (broker_t *self, queue_t *queue,
                           const qentry_t *entry, const char *reason);


//  --------------------------------------------------------------------
//  Recovery: rebuild queues from the log.

queue_t *
broker_queue_by_qid (broker_t *self, uint64_t qid)
{
    uint64_t value;
    if (!u64map_get (&self->by_qid, qid, &value))
        return NULL;
    return (queue_t *) (uintptr_t) value;
}

static void
s_replay_msg (void *ctx, store_pos_t pos, const store_msg_t *msg)
{
    broker_t *self = ctx;
    if (fedq_str_eq (msg->origin, self->node_id) && msg->seq > self->seq)
        self->seq = msg->seq;
    //  A relocated copy (compaction) names one queue and settles its old
    //  place in that queue: it takes the old entry's place in the order.
    if (msg->nqueues == 1 && msg->nsettles == 1
        && msg->settles[0].qid == msg->qids[0]
        && broker_queue_by_qid (self, msg->qids[0])) {
        u64map_put (&self->relocated, msg->settles[0].pos, pos);
        return;
    }
    for (uint32_t i = 0; i < msg->nqueues; i++) {
        queue_t *queue = broker_queue_by_qid (self, msg->qids[i]);
        if (!queue)
            continue;           //  settled as an orphan after replay
        //  Lag is measured on this node's clock: a message that came over
        //  a link has another site's time in published_at, so it counts
        //  from the restart instead (an underestimate, never skewed).
        qentry_t entry = {.pos = pos,
                          .expires_at = msg->expires_at,
                          .enqueued_at = fedq_str_eq (msg->origin, self->node_id)
                                           ? msg->published_at
                                           : self->opened_at,
                          .size = msg->body_len,
                          .priority = msg->priority,
                          .flags = QENTRY_REDELIVERED};
        if (queue->opts.message_ttl_ms) {
            int64_t at = msg->published_at
                         + (int64_t) queue->opts.message_ttl_ms;
            if (!entry.expires_at || at < entry.expires_at)
                entry.expires_at = at;
        }
        queue_push (queue, &entry);
        if (queue->dedup && msg->message_id.len)
            queue_dedup_check (queue, msg->message_id, msg->published_at);
    }
}

static void
s_replay_settle (void *ctx, uint64_t qid, store_pos_t pos)
{
    broker_t *self = ctx;
    queue_t *queue = broker_queue_by_qid (self, qid);
    if (!queue)
        return;
    //  recovering[] is indexed like by_qid: one settled set per queue,
    //  kept in a map from qid to a heap-allocated u64map_t.
    uint64_t value;
    u64map_t *set;
    if (u64map_get (self->recovering, qid, &value))
        set = (u64map_t *) (uintptr_t) value;
    else {
        set = calloc (1, sizeof *set);
        u64map_put (self->recovering, qid, (uint64_t) (uintptr_t) set);
    }
    u64map_put (set, pos, 1);
}

//  Drop the entries of a queue that replay saw settled.
static void
s_replay_filter (broker_t *self, queue_t *queue)
{
    uint64_t value;
    if (!u64map_get (self->recovering, queue->qid, &value))
        return;
    u64map_t *set = (u64map_t *) (uintptr_t) value;
    uint64_t n = queue->ready_count;
    for (uint64_t i = 0; i < n; i++) {
        qentry_t entry;
        queue_pop (queue, &entry);
        //  Follow relocations (possibly several) to the live copy.
        uint64_t moved;
        while (u64map_get (&self->relocated, entry.pos, &moved)) {
            u64map_del (set, entry.pos);
            entry.pos = moved;
        }
        if (!u64map_get (set, entry.pos, NULL))
            queue_push (queue, &entry);
    }
    u64map_free (set);
    free (set);
    u64map_del (self->recovering, queue->qid);
}

//  Orphans: messages in the log for queues that no longer exist.
static void
s_orphan_msg (void *ctx, store_pos_t pos, const store_msg_t *msg)
{
    broker_t *self = ctx;
    for (uint32_t i = 0; i < msg->nqueues; i++)
        if (!broker_queue_by_qid (self, msg->qids[i])) {
            store_settle_t s = {msg->qids[i], pos};
            if (self->nsettles == self->settles_cap) {
                self->settles_cap = self->settles_cap ? self->settles_cap * 2
                                                      : 1024;
                self->settles = realloc (
                  self->settles, self->settles_cap * sizeof *self->settles);
            }
            self->settles[self->nsettles++] = s;
        }
}

static void
s_visit_msg (void *ctx, store_pos_t pos, const store_msg_t *msg)
{
    s_replay_msg (ctx, pos, msg);
    s_orphan_msg (ctx, pos, msg);
}

static void
s_orphan_settled (broker_t *self, uint64_t qid, store_pos_t pos)
{
    //  A settle in the log for an orphan: it must not be settled twice.
    for (size_t i = 0; i < self->nsettles; i++)
        if (self->settles[i].qid == qid && self->settles[i].pos == pos) {
            self->settles[i] = self->settles[--self->nsettles];
            return;
        }
}

static void
s_visit_settle (void *ctx, uint64_t qid, store_pos_t pos)
{
    broker_t *self = ctx;
    if (broker_queue_by_qid (self, qid))
        s_replay_settle (ctx, qid, pos);
    else
        s_orphan_settled (self, qid, pos);
}

fedq_rc_t
broker_open (const broker_opts_t *opts, broker_t **self_p)
{
    fedq_rc_t rc = FEDQ_OK;
    broker_t *self = calloc (1, sizeof *self);
    if (!self)
        return FEDQ_ENOMEM;
    self->node_id = strdup (opts->node_id);
    self->data_dir = strdup (opts->data_dir);
    self->max_message_bytes = opts->max_message_bytes
                                ? opts->max_message_bytes
                                : 16u * 1024 * 1024;
    self->queues = zhashx_new ();
    self->exchanges = zhashx_new ();
    self->origins = zhashx_new ();
    self->held_due = INT64_MAX;
    self->opened_at = fedq_wall_ms ();
    self->next_qid = 1;
    self->recovering = calloc (1, sizeof (u64map_t));

    self->incarnation = strdup ("");
    rc = broker_meta_load (self);
    if (rc)
        goto cleanup;
    //  NODE~INC must fit a name; a node.id too long for it keeps NODE
    //  (and the limit of docs/operations.md "A lost data directory").
    if (*self->incarnation
        && strlen (self->node_id) + 1 + strlen (self->incarnation)
             <= PROTO_MAX_NAME) {
        if (asprintf (&self->fed_origin, "%s~%s", self->node_id,
                      self->incarnation)
            < 0)
            abort ();
    }
    else
        self->fed_origin = strdup (self->node_id);
    fedq_info ("data directory %s: incarnation \"%s\", federation origin %s",
               self->data_dir, self->incarnation, self->fed_origin);

    store_opts_t sopts = {.dir = opts->data_dir,
                          .fsync = opts->fsync,
                          .segment_bytes = opts->segment_bytes};
    store_visitor_t visitor = {self, s_visit_msg, s_visit_settle};
    rc = store_open (&sopts, &visitor, &self->recovery, &self->store);
    if (rc)
        goto cleanup;
    for (queue_t *q = zhashx_first (self->queues); q;
         q = zhashx_next (self->queues))
        s_replay_filter (self, q);
    snprintf (self->mark_key, sizeof self->mark_key, "o/%s", self->node_id);
    uint64_t mark = store_mark (self->store, self->mark_key);
    if (mark > self->seq)
        self->seq = mark;
    if (self->nsettles) {
        fedq_info ("settling %zu messages of deleted queues", self->nsettles);
        rc = broker_commit (self);
        if (rc)
            goto cleanup;
    }
    uint64_t total = 0;
    for (queue_t *q = zhashx_first (self->queues); q;
         q = zhashx_next (self->queues))
        total += q->ready_count;
    fedq_info ("recovered %" PRIu64 " queued messages in %zu queues from "
               "%" PRIu64 " records in %" PRIu64 " segments",
               total, zhashx_size (self->queues), self->recovery.records,
               self->recovery.segments);
cleanup:
    u64map_free (self->recovering);
    free (self->recovering);
    self->recovering = NULL;
    u64map_free (&self->relocated);
    if (rc)
        broker_destroy (&self);
    *self_p = self;
    return rc;
}

void
broker_destroy (broker_t **self_p)
{
    broker_t *self = *self_p;
    if (!self)
        return;
    for (queue_t *q = zhashx_first (self->queues); q;
         q = zhashx_next (self->queues)) {
        for (size_t i = 0; i < q->nconsumers; i++) {
            free (q->consumers[i]->tag);
            free (q->consumers[i]);
        }
        queue_destroy (&q);
    }
    for (exchange_t *x = zhashx_first (self->exchanges); x;
         x = zhashx_next (self->exchanges))
        exchange_destroy (&x);
    zhashx_destroy (&self->queues);
    zhashx_destroy (&self->exchanges);
    zhashx_destroy (&self->origins);
    for (size_t i = 1; i <= self->norigins; i++)
        free (self->origin_names[i]);
    free (self->origin_names);
    u64map_free (&self->by_qid);
    store_destroy (&self->store);
    free (self->staged);
    free (self->settles);
    free (self->dirty);
    fedq_buf_free (&self->env);
    free (self->node_id);
    free (self->incarnation);
    free (self->fed_origin);
    free (self->data_dir);
    free (self);
    *self_p = NULL;
}

store_t *
broker_store (broker_t *self)
{
    return self->store;
}

const store_recovery_t *
broker_recovery (broker_t *self)
{
    return &self->recovery;
}

const broker_stats_t *
broker_stats (broker_t *self)
{
    return &self->stats;
}

const char *
broker_data_dir (broker_t *self)
{
    return self->data_dir;
}

uint64_t *
broker_next_qid (broker_t *self)
{
    return &self->next_qid;
}

char **
broker_incarnation (broker_t *self)
{
    return &self->incarnation;
}

const char *
broker_node_id (broker_t *self)
{
    return self->node_id;
}

void
broker_seq_raise (broker_t *self, uint64_t seq)
{
    if (seq > self->seq) {
        fedq_info ("numbering new messages from %" PRIu64
                   " (above an earlier incarnation of node %s)",
                   seq + 1, self->node_id);
        self->seq = seq;
    }
}

const char *
broker_fed_origin (broker_t *self)
{
    return self->fed_origin;
}

zhashx_t *
broker_queue_table (broker_t *self)
{
    return self->queues;
}

zhashx_t *
broker_exchange_table (broker_t *self)
{
    return self->exchanges;
}

//  --------------------------------------------------------------------
//  Declarations

queue_t *
broker_queue (broker_t *self, const char *name)
{
    return zhashx_lookup (self->queues, name);
}

exchange_t *
broker_exchange (broker_t *self, const char *name)
{
    return zhashx_lookup (self->exchanges, name);
}

void
broker_queues_each (broker_t *self, void (*fn) (void *, queue_t *), void *ctx)
{
    for (queue_t *q = zhashx_first (self->queues); q;
         q = zhashx_next (self->queues))
        fn (ctx, q);
}

void
broker_exchanges_each (broker_t *self, void (*fn) (void *, exchange_t *),
                       void *ctx)
{
    for (exchange_t *x = zhashx_first (self->exchanges); x;
         x = zhashx_next (self->exchanges))
        fn (ctx, x);
}

static bool
s_str_same (fedq_str_t a, fedq_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp (a.ptr, b.ptr, a.len) == 0);
}

static bool
s_qopts_same (const proto_qopts_t *a, const proto_qopts_t *b)
{
    return a->durable == b->durable && a->auto_delete == b->auto_delete
           && a->single_active_consumer == b->single_active_consumer
           && a->max_priority == b->max_priority && a->overflow == b->overflow
           && a->max_length == b->max_length && a->max_bytes == b->max_bytes
           && a->message_ttl_ms == b->message_ttl_ms
           && a->dedup_window_ms == b->dedup_window_ms
           && s_str_same (a->dead_letter_exchange, b->dead_letter_exchange)
           && s_str_same (a->dead_letter_routing_key,
                          b->dead_letter_routing_key);
}

queue_t *
broker_queue_create (broker_t *self, const char *name, uint64_t qid,
                     const proto_qopts_t *opts, bool from_config)
{
    queue_t *queue = queue_new (name, qid, opts);
    queue->from_config = from_config;
    zhashx_insert (self->queues, name, queue);
    u64map_put (&self->by_qid, qid, (uint64_t) (uintptr_t) queue);
    if (qid >= self->next_qid)
        self->next_qid = qid + 1;
    return queue;
}

fedq_rc_t
broker_declare_queue (broker_t *self, const char *name,
                      const proto_qopts_t *opts, bool from_config,
                      bool passive, queue_t **queue_p)
{
    queue_t *queue = zhashx_lookup (self->queues, name);
    if (queue) {
        if (!passive && !s_qopts_same (&queue->opts, opts)) {
            if (!from_config)
                return FEDQ_EEXISTS;
            queue_set_opts (queue, opts);
            queue->from_config = true;
            broker_meta_save (self);
        }
        if (queue_p)
            *queue_p = queue;
        return FEDQ_OK;
    }
    if (passive)
        return FEDQ_ENOTFOUND;
    if (strlen (name) == 0 || strlen (name) > PROTO_MAX_NAME)
        return FEDQ_EINVAL;
    queue = broker_queue_create (self, name, self->next_qid, opts,
                                 from_config);
    fedq_rc_t rc = broker_meta_save (self);
    if (queue_p)
        *queue_p = queue;
    return rc;
}

static void
s_cancel_all (broker_t *self, queue_t *queue)
{
    while (queue->nconsumers) {
        consumer_t *consumer = queue->consumers[queue->nconsumers - 1];
        queue->nconsumers--;
        if (consumer->cancelled)
            consumer->cancelled (consumer);
        free (consumer->tag);
        free (consumer);
    }
}

static void
s_settle_cb (void *ctx, const qentry_t *entry)
{
    void **args = ctx;
    broker_settle (args[0], args[1], entry);
}

fedq_rc_t
broker_delete_queue (broker_t *self, const char *name, bool if_unused,
                     uint64_t *count)
{
    queue_t *queue = zhashx_lookup (self->queues, name);
    if (!queue)
        return FEDQ_ENOTFOUND;
    if (if_unused && queue->nconsumers)
        return FEDQ_EDENIED;
    //  Staged messages may point at this queue: make them land first.
    fedq_rc_t rc = broker_commit (self);
    if (rc)
        return rc;
    if (count)
        *count = queue_depth (queue);
    s_cancel_all (self, queue);
    void *args[2] = {self, queue};
    queue_drain (queue, s_settle_cb, args);
    //  Unacked messages: their holders settle them when they are done
    //  (see s_holder_queue).
    for (exchange_t *x = zhashx_first (self->exchanges); x;
         x = zhashx_next (self->exchanges))
        exchange_unbind_queue (x, queue);
    for (size_t i = 0; i < self->ndirty; i++)
        if (self->dirty[i] == queue)
            self->dirty[i] = NULL;
    u64map_del (&self->by_qid, queue->qid);
    zhashx_delete (self->queues, name);
    queue_destroy (&queue);
    rc = broker_commit (self);
    if (rc == FEDQ_OK)
        rc = broker_meta_save (self);
    return rc;
}

fedq_rc_t
broker_purge_queue (broker_t *self, const char *name, uint64_t *count)
{
    queue_t *queue = zhashx_lookup (self->queues, name);
    if (!queue)
        return FEDQ_ENOTFOUND;
    fedq_rc_t rc = broker_commit (self);
    if (rc)
        return rc;
    if (count)
        *count = queue->ready_count;
    void *args[2] = {self, queue};
    queue_drain (queue, s_settle_cb, args);
    return broker_commit (self);
}

fedq_rc_t
broker_declare_exchange (broker_t *self, const char *name,
                         exchange_type_t type, bool from_config, bool passive)
{
    if (strlen (name) == 0)
        return passive ? FEDQ_OK : FEDQ_EDENIED;    //  the default exchange
    exchange_t *x = zhashx_lookup (self->exchanges, name);
    if (x) {
        if (!passive && x->type != type) {
            if (!from_config)
                return FEDQ_EEXISTS;
            x->type = type;
            x->from_config = true;
            return broker_meta_save (self);
        }
        return FEDQ_OK;
    }
    if (passive)
        return FEDQ_ENOTFOUND;
    if (strlen (name) > PROTO_MAX_NAME)
        return FEDQ_EINVAL;
    x = exchange_new (name, type);
    x->from_config = from_config;
    zhashx_insert (self->exchanges, name, x);
    return broker_meta_save (self);
}

fedq_rc_t
broker_delete_exchange (broker_t *self, const char *name)
{
    exchange_t *x = zhashx_lookup (self->exchanges, name);
    if (!x)
        return FEDQ_ENOTFOUND;
    zhashx_delete (self->exchanges, name);
    exchange_destroy (&x);
    return broker_meta_save (self);
}

fedq_rc_t
broker_bind (broker_t *self, const char *exchange, const char *queue,
             const char *key)
{
    exchange_t *x = zhashx_lookup (self->exchanges, exchange);
    queue_t *q = zhashx_lookup (self->queues, queue);
    if (!x || !q)
        return FEDQ_ENOTFOUND;
    if (exchange_bind (x, q, key))
        return broker_meta_save (self);
    return FEDQ_OK;
}

fedq_rc_t
broker_unbind (broker_t *self, const char *exchange, const char *queue,
               const char *key)
{
    exchange_t *x = zhashx_lookup (self->exchanges, exchange);
    queue_t *q = zhashx_lookup (self->queues, queue);
    if (!x || !q)
        return FEDQ_ENOTFOUND;
    if (!exchange_unbind (x, q, key))
        return FEDQ_ENOTFOUND;
    return broker_meta_save (self);
}

fedq_rc_t
broker_set_owner (broker_t *self, const char *queue, const char *owner)
{
    queue_t *q = zhashx_lookup (self->queues, queue);
    if (!q)
        return FEDQ_ENOTFOUND;
    free (q->owner);
    q->owner = owner ? strdup (owner) : NULL;
    return FEDQ_OK;
}

//  --------------------------------------------------------------------
//  Publishing

void
broker_stage (broker_t *self, queue_t *queue, const qentry_t *entry)
{
    if (self->nstaged == self->staged_cap) {
        self->staged_cap = self->staged_cap ? self->staged_cap * 2 : 1024;
        self->staged = realloc (self->staged,
                                self->staged_cap * sizeof *self->staged);
        if (!self->staged)
            abort ();
    }
    self->staged[self->nstaged].queue = queue;
    self->staged[self->nstaged].entry = *entry;
    self->nstaged++;
    queue->pending_count++;
    queue->pending_bytes += entry->size;
}

void
broker_settle (broker_t *self, queue_t *queue, const qentry_t *entry)
{
    if (self->nsettles == self->settles_cap) {
        self->settles_cap = self->settles_cap ? self->settles_cap * 2 : 1024;
        self->settles = realloc (self->settles,
                                 self->settles_cap * sizeof *self->settles);
        if (!self->settles)
            abort ();
    }
    self->settles[self->nsettles].qid = queue->qid;
    self->settles[self->nsettles].pos = entry->pos;
    self->nsettles++;
}

//  Pop the next entry, settling any removed by a federation tombstone.
static bool
s_pop (broker_t *self, queue_t *queue, qentry_t *entry)
{
    while (queue_pop (queue, entry)) {
        if (!queue_skip_take (queue, entry->pos))
            return true;
        broker_settle (self, queue, entry);
        queue->acked_total++;
    }
    return false;
}

//  Entry expiry for a queue: the earlier of the message's own TTL and the
//  queue's message_ttl, counted from now.
int64_t
broker_expiry (const queue_t *queue, int64_t msg_expires, int64_t now)
{
    int64_t at = msg_expires;
    if (queue->opts.message_ttl_ms) {
        int64_t q = now + (int64_t) queue->opts.message_ttl_ms;
        if (!at || q < at)
            at = q;
    }
    return at;
}

//  Make room in a drop-head queue that a staged message overfilled.
void
broker_drop_head (broker_t *self, queue_t *queue)
{
    qentry_t entry;
    while (queue_would_overflow (queue, 0, 0) && queue->ready_count
           && queue_pop_oldest (queue, &entry)) {
        queue->dropped_total++;
        s_dead_letter (self, queue, &entry, "maxlen");
    }
}

static size_t
s_route (broker_t *self, fedq_str_t exchange, fedq_str_t key,
         queue_t **targets, fedq_rc_t *rc)
{
    *rc = FEDQ_OK;
    if (exchange.len == 0) {
        char name[PROTO_MAX_NAME + 1];
        if (key.len > PROTO_MAX_NAME)
            return 0;
        memcpy (name, key.ptr, key.len);
        name[key.len] = 0;
        queue_t *queue = zhashx_lookup (self->queues, name);
        if (!queue)
            return 0;
        targets[0] = queue;
        return 1;
    }
    char name[PROTO_MAX_NAME + 1];
    if (exchange.len > PROTO_MAX_NAME) {
        *rc = FEDQ_ENOTFOUND;
        return 0;
    }
    memcpy (name, exchange.ptr, exchange.len);
    name[exchange.len] = 0;
    exchange_t *x = zhashx_lookup (self->exchanges, name);
    if (!x) {
        *rc = FEDQ_ENOTFOUND;
        return 0;
    }
    return exchange_route (x, key, targets, 0, STORE_MAX_QUEUES);
}

static const char *
s_link_key (broker_t *self, fedq_str_t link)
{
    size_t n = link.len > PROTO_MAX_NAME ? PROTO_MAX_NAME : link.len;
    self->mark_key[0] = 'l';
    self->mark_key[1] = '/';
    memcpy (self->mark_key + 2, link.ptr, n);
    self->mark_key[2 + n] = 0;
    return self->mark_key;
}

uint64_t
broker_link_mark (broker_t *self, const char *link)
{
    return store_mark (self->store, s_link_key (self, fedq_str_of (link)));
}

fedq_rc_t
broker_publish (broker_t *self, broker_publish_t *pub,
                broker_outcome_t *outcome)
{
    proto_msg_t *msg = pub->msg;
    *outcome = BROKER_STAGED;
    if (pub->body_len > self->max_message_bytes)
        return FEDQ_ETOOBIG;
    for (uint32_t i = 0; i < msg->npath; i++)
        if (fedq_str_eq (msg->path[i], self->node_id))
            return FEDQ_ELOOP;

    char link_key[PROTO_MAX_NAME + 3] = "";
    if (pub->link.len) {
        snprintf (link_key, sizeof link_key, "%s", s_link_key (self, pub->link));
        //  A link's messages are stored in sequence: a resend at or below
        //  the mark is a duplicate, a gap means the sender must go back.
        uint64_t mark = store_mark (self->store, link_key);
        if (pub->link_seq <= mark) {
            self->stats.duplicates_total++;
            *outcome = BROKER_DUPLICATE;
            return FEDQ_OK;
        }
        if (pub->link_seq > mark + 1)
            return FEDQ_EAGAIN;
    }

    queue_t *targets[STORE_MAX_QUEUES];
    fedq_rc_t rc;
    size_t n = s_route (self, pub->exchange, pub->routing_key, targets, &rc);
    if (rc)
        return rc;
    if (n == 0) {
        self->stats.unroutable_total++;
        return FEDQ_EUNROUTABLE;
    }
    for (size_t i = 0; i < n; i++)
        if (targets[i]->opts.overflow == PROTO_OVERFLOW_REJECT
            && queue_would_overflow (targets[i], 1, pub->body_len)) {
            targets[i]->returned_full_total++;
            return FEDQ_EFULL;
        }

    int64_t now = fedq_wall_ms ();
    //  Dedup by message_id, per queue.
    if (msg->message_id.len) {
        size_t kept = 0;
        for (size_t i = 0; i < n; i++) {
            if (queue_dedup_check (targets[i], msg->message_id, now))
                targets[i]->duplicates_total++;
            else
                targets[kept++] = targets[i];
        }
        if (kept == 0) {
            self->stats.duplicates_total++;
            *outcome = BROKER_DUPLICATE;
            if (pub->link.len) {
                //  Still advance the link's mark: the resend is settled.
                store_mark_t mark = {fedq_str_of (link_key), pub->link_seq};
                self->need_durable = true;
                return store_append_marks (self->store, &mark, 1);
            }
            return FEDQ_OK;
        }
        n = kept;
    }

    //  Identity: a message keeps its origin and sequence across hops.
    if (msg->origin.len == 0) {
        msg->origin = fedq_str_of (self->node_id);
        msg->seq = ++self->seq;
    }
    if (msg->published_at == 0)
        msg->published_at = now;
    self->env.size = 0;
    proto_msg_encode (msg, &self->env);

    uint64_t qids[STORE_MAX_QUEUES];
    for (size_t i = 0; i < n; i++)
        qids[i] = targets[i]->qid;
    char origin_key[PROTO_MAX_NAME + 3];
    snprintf (origin_key, sizeof origin_key, "o/%.*s", (int) msg->origin.len,
              msg->origin.ptr);
    store_mark_t marks[STORE_MAX_MARKS] = {
      {fedq_str_of (origin_key), msg->seq},
      {fedq_str_of (link_key), pub->link_seq}};
    uint32_t nmarks = pub->link.len ? 2 : 1;
    //  A message entering a federated queue is an event of this node: it
    //  lands in the history too, numbered in this node's sequence.
    char fed_keys[STORE_MAX_MARKS][2 * PROTO_MAX_NAME + 4];
    uint64_t fed_seq = 0;
    size_t nq = n;
    for (size_t i = 0; i < n; i++) {
        queue_t *h = targets[i]->fed_history;
        if (!h || nmarks == STORE_MAX_MARKS || nq == STORE_MAX_QUEUES)
            continue;
        if (!fed_seq)
            fed_seq = fedq_str_eq (msg->origin, self->node_id) ? msg->seq
                                                               : ++self->seq;
        snprintf (fed_keys[nmarks], sizeof fed_keys[nmarks], "%s%s",
                  targets[i]->fed_prefix, self->fed_origin);
        marks[nmarks].key = fedq_str_of (fed_keys[nmarks]);
        marks[nmarks].value = fed_seq;
        nmarks++;
        qids[nq++] = h->qid;
    }
    int64_t msg_expires = msg->ttl_ms ? now + (int64_t) msg->ttl_ms : 0;
    store_msg_t rec = {.origin = msg->origin,
                       .seq = msg->seq,
                       .message_id = msg->message_id,
                       .published_at = msg->published_at,
                       .expires_at = msg_expires,
                       .priority = msg->priority > 9 ? 9 : msg->priority,
                       .nqueues = (uint32_t) nq,
                       .qids = qids,
                       .nmarks = nmarks,
                       .marks = marks,
                       .env = self->env.data,
                       .env_len = (uint32_t) self->env.size,
                       .body = pub->body,
                       .body_len = pub->body_len};
    store_pos_t pos;
    rc = store_append_msg (self->store, &rec, &pos);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        qentry_t entry = {.pos = pos,
                          .expires_at = broker_expiry (targets[i], msg_expires, now),
                          .enqueued_at = now,
                          .size = pub->body_len,
                          .priority = rec.priority};
        broker_stage (self, targets[i], &entry);
        targets[i]->published_total++;
        if (targets[i]->opts.overflow == PROTO_OVERFLOW_DROP_HEAD)
            broker_drop_head (self, targets[i]);
        queue_t *h = targets[i]->fed_history;
        if (h && fed_seq) {
            qentry_t he = entry;
            he.expires_at = 0;
            broker_stage (self, h, &he);
            if (targets[i]->fed_global)
                u64map_put (targets[i]->fed_index,
                            broker_fed_key (broker_origin_id (
                                              self,
                                              fedq_str_of (self->fed_origin)),
                                            fed_seq),
                            pos);
        }
    }
    self->stats.published_total++;
    return FEDQ_OK;
}

void
broker_wake (broker_t *self, queue_t *queue)
{
    if (queue->dirty)
        return;
    if (self->ndirty == self->dirty_cap) {
        self->dirty_cap = self->dirty_cap ? self->dirty_cap * 2 : 64;
        self->dirty = realloc (self->dirty,
                               self->dirty_cap * sizeof *self->dirty);
        if (!self->dirty)
            abort ();
    }
    self->dirty[self->ndirty++] = queue;
    queue->dirty = true;
}

fedq_rc_t
broker_commit (broker_t *self)
{
    fedq_rc_t rc = FEDQ_OK;
    for (size_t i = 0; i < self->nsettles && rc == FEDQ_OK;
         i += STORE_MAX_SETTLES) {
        size_t n = self->nsettles - i;
        if (n > STORE_MAX_SETTLES)
            n = STORE_MAX_SETTLES;
        rc = store_append_settles (self->store, self->settles + i, n);
    }
    self->nsettles = 0;
    //  Only what somebody waits on (a confirm, a link's next step) pays
    //  for an fsync; acks alone are written and synced with the next one.
    bool durable = self->need_durable || self->nstaged;
    if (rc == FEDQ_OK && (store_pending (self->store) || durable))
        rc = durable ? store_commit (self->store)
                     : store_commit_lazy (self->store);
    self->need_durable = false;
    for (size_t i = 0; i < self->nstaged; i++) {
        s_staged_t *s = &self->staged[i];
        s->queue->pending_count--;
        s->queue->pending_bytes -= s->entry.size;
        if (rc == FEDQ_OK) {
            queue_push (s->queue, &s->entry);
            broker_wake (self, s->queue);
        }
    }
    if (rc == FEDQ_OK)
        self->stats.confirmed_total += self->nstaged;
    else
        self->stats.commit_errors_total++;
    self->nstaged = 0;
    //  Drop-head limits. broker_publish can only drop messages that are
    //  ready, so several publishes to one queue in the same commit pass
    //  max_length / max_bytes together (5 publishes to a max_length 3
    //  queue left 5). Now that they are queued, drop (dead-letter) the
    //  oldest; the settlements and dead letters land with the next
    //  commit, like those of dispatch.
    if (rc == FEDQ_OK)
        for (size_t i = 0; i < self->ndirty; i++) {
            queue_t *q = self->dirty[i];
            if (q && q->opts.overflow == PROTO_OVERFLOW_DROP_HEAD)
                broker_drop_head (self, q);
        }
    return rc;
}

//  --------------------------------------------------------------------
//  Dead-lettering

static void
s_dead_letter (broker_t *self, queue_t *queue, const qentry_t *entry,
               const char *reason)
{
    if (!queue->dlx) {
        broker_settle (self, queue, entry);
        return;
    }
    store_msg_t rec;
    proto_msg_t *msg = NULL;
    if (store_read (self->store, entry->pos, &rec)) {
        self->stats.corrupt_total++;
        broker_settle (self, queue, entry);
        return;
    }
    msg = malloc (sizeof *msg);
    const char *error = NULL;
    if (!msg || proto_msg_decode (rec.env, rec.env_len, msg, &error)) {
        fedq_warn ("queue=%s cannot dead-letter a message: %s", queue->name,
                   error ? error : "out of memory");
        broker_settle (self, queue, entry);
        free (msg);
        return;
    }
    fedq_str_t key = queue->dlk ? fedq_str_of (queue->dlk) : msg->routing_key;
    queue_t *targets[STORE_MAX_QUEUES];
    fedq_rc_t rc;
    size_t n = s_route (self, fedq_str_of (queue->dlx), key, targets, &rc);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (targets[i] != queue)
            targets[kept++] = targets[i];
    n = kept;
    if (n == 0) {
        broker_settle (self, queue, entry);
        free (msg);
        return;
    }
    if (msg->nheaders + 2 <= PROTO_MAX_HEADERS) {
        msg->headers[msg->nheaders].key = fedq_str_of ("x-death-reason");
        msg->headers[msg->nheaders++].value = fedq_str_of (reason);
        msg->headers[msg->nheaders].key = fedq_str_of ("x-death-queue");
        msg->headers[msg->nheaders++].value = fedq_str_of (queue->name);
    }
    msg->exchange = fedq_str_of (queue->dlx);
    msg->routing_key = key;
    msg->redelivered = false;
    msg->ttl_ms = 0;
    self->env.size = 0;
    proto_msg_encode (msg, &self->env);
    uint64_t qids[STORE_MAX_QUEUES];
    for (size_t i = 0; i < n; i++)
        qids[i] = targets[i]->qid;
    store_settle_t settle = {queue->qid, entry->pos};
    store_msg_t out = rec;
    out.expires_at = 0;
    out.nqueues = (uint32_t) n;
    out.qids = qids;
    out.nmarks = 0;
    out.marks = NULL;
    out.nsettles = 1;
    out.settles = &settle;
    out.env = self->env.data;
    out.env_len = (uint32_t) self->env.size;
    store_pos_t pos;
    if (store_append_msg (self->store, &out, &pos)) {
        broker_settle (self, queue, entry);
        free (msg);
        return;
    }
    int64_t now = fedq_wall_ms ();
    for (size_t i = 0; i < n; i++) {
        qentry_t e = {.pos = pos,
                      .expires_at = broker_expiry (targets[i], 0, now),
                      .enqueued_at = now,
                      .size = entry->size,
                      .priority = entry->priority};
        broker_stage (self, targets[i], &e);
    }
    queue->dead_lettered_total++;
    self->stats.dead_lettered_total++;
    free (msg);
}

//  --------------------------------------------------------------------
//  Consuming

fedq_rc_t
broker_consume (broker_t *self, const char *queue_name, const char *tag,
                uint32_t prefetch, bool no_ack, const char *owner_link,
                void *owner,
                fedq_rc_t (*deliver) (consumer_t *, const qentry_t *,
                                      const store_msg_t *),
                consumer_t **consumer_p)
{
    queue_t *queue = zhashx_lookup (self->queues, queue_name);
    if (!queue)
        return FEDQ_ENOTFOUND;
    if (queue->owner
        && (!owner_link || strcmp (owner_link, queue->owner) != 0))
        return FEDQ_EDENIED;
    consumer_t *consumer = calloc (1, sizeof *consumer);
    if (!consumer)
        return FEDQ_ENOMEM;
    consumer->queue = queue;
    consumer->tag = strdup (tag);
    consumer->prefetch = prefetch;
    consumer->no_ack = no_ack;
    consumer->owner = owner;
    consumer->deliver = deliver;
    consumer_t **list = realloc (queue->consumers,
                                 (queue->nconsumers + 1) * sizeof *list);
    if (!list)
        abort ();
    queue->consumers = list;
    queue->consumers[queue->nconsumers++] = consumer;
    queue->ever_consumed = true;
    broker_wake (self, queue);
    *consumer_p = consumer;
    return FEDQ_OK;
}

void
broker_cancel (broker_t *self, consumer_t **consumer_p)
{
    consumer_t *consumer = *consumer_p;
    if (!consumer)
        return;
    queue_t *queue = consumer->queue;
    for (size_t i = 0; i < queue->nconsumers; i++)
        if (queue->consumers[i] == consumer) {
            memmove (&queue->consumers[i], &queue->consumers[i + 1],
                     (queue->nconsumers - i - 1) * sizeof (consumer_t *));
            queue->nconsumers--;
            break;
        }
    free (consumer->tag);
    free (consumer);
    *consumer_p = NULL;
    if (queue->nconsumers == 0 && queue->opts.auto_delete
        && queue->ever_consumed && queue->unacked_count == 0) {
        fedq_info ("queue=%s auto-deleted: its last consumer left",
                   queue->name);
        broker_delete_queue (self, queue->name, false, NULL);
    }
    else
        broker_wake (self, queue);
}

static bool
s_expired (const qentry_t *entry, int64_t now)
{
    return entry->expires_at && entry->expires_at <= now;
}

static consumer_t *
s_next_consumer (queue_t *queue)
{
    size_t n = queue->nconsumers;
    if (n == 0)
        return NULL;
    if (queue->opts.single_active_consumer) {
        consumer_t *c = queue->consumers[0];
        bool credit = !c->prefetch || c->unacked < c->prefetch;
        return credit && !c->blocked ? c : NULL;
    }
    for (size_t i = 0; i < n; i++) {
        consumer_t *c = queue->consumers[(queue->rr + i) % n];
        if (!c->blocked && (!c->prefetch || c->unacked < c->prefetch)) {
            queue->rr = (queue->rr + i + 1) % n;
            return c;
        }
    }
    return NULL;
}

static void
s_dispatch_queue (broker_t *self, queue_t *queue, int64_t now)
{
    qentry_t entry;
    while (queue->ready_count) {
        consumer_t *consumer = s_next_consumer (queue);
        if (!consumer)
            return;
        if (!s_pop (self, queue, &entry))
            return;
        if (s_expired (&entry, now)) {
            self->stats.expired_total++;
            s_dead_letter (self, queue, &entry, "expired");
            continue;
        }
        store_msg_t rec;
        if (store_read (self->store, entry.pos, &rec)) {
            self->stats.corrupt_total++;
            broker_settle (self, queue, &entry);
            continue;
        }
        entry.deliveries++;
        fedq_rc_t rc = consumer->deliver (consumer, &entry, &rec);
        if (rc) {
            entry.deliveries--;
            queue_push_front (queue, &entry);
            consumer->blocked = true;
            continue;
        }
        queue->delivered_total++;
        self->stats.delivered_total++;
        if (consumer->no_ack) {
            broker_settle (self, queue, &entry);
            queue->acked_total++;
        }
        else {
            consumer->unacked++;
            queue->unacked_count++;
            queue->unacked_bytes += entry.size;
        }
    }
}

void
broker_dispatch (broker_t *self)
{
    int64_t now = fedq_wall_ms ();
    //  Dispatch may wake more queues (dead-lettering): loop over a
    //  snapshot and leave new wakes for the next round.
    size_t n = self->ndirty;
    for (size_t i = 0; i < n; i++) {
        queue_t *queue = self->dirty[i];
        if (!queue)
            continue;
        queue->dirty = false;
        s_dispatch_queue (self, queue, now);
    }
    if (self->ndirty > n)
        memmove (self->dirty, self->dirty + n,
                 (self->ndirty - n) * sizeof (queue_t *));
    self->ndirty -= n;
}

fedq_rc_t
broker_get (broker_t *self, queue_t *queue, bool no_ack, qentry_t *entry,
            store_msg_t *msg)
{
    int64_t now = fedq_wall_ms ();
    while (s_pop (self, queue, entry)) {
        if (s_expired (entry, now)) {
            self->stats.expired_total++;
            s_dead_letter (self, queue, entry, "expired");
            continue;
        }
        if (store_read (self->store, entry->pos, msg)) {
            self->stats.corrupt_total++;
            broker_settle (self, queue, entry);
            continue;
        }
        entry->deliveries++;
        queue->delivered_total++;
        self->stats.delivered_total++;
        if (no_ack) {
            broker_settle (self, queue, entry);
            queue->acked_total++;
        }
        else {
            queue->unacked_count++;
            queue->unacked_bytes += entry->size;
        }
        return FEDQ_OK;
    }
    return FEDQ_EAGAIN;
}

//  The queue a held delivery came from. When it was deleted meanwhile the
//  delivery is settled in the log (so its segment can be freed) and NULL
//  is returned.
static queue_t *
s_holder_queue (broker_t *self, uint64_t qid, const qentry_t *entry)
{
    queue_t *queue = broker_queue_by_qid (self, qid);
    if (queue) {
        queue->unacked_count--;
        queue->unacked_bytes -= entry->size;
    }
    else {
        queue_t gone = {.qid = qid};
        broker_settle (self, &gone, entry);
    }
    return queue;
}

void
broker_ack (broker_t *self, uint64_t qid, const qentry_t *entry)
{
    queue_t *queue = s_holder_queue (self, qid, entry);
    if (!queue)
        return;
    queue_skip_take (queue, entry->pos);
    if (queue->fed_global && queue->fed_history)
        broker_fed_tombstone (self, queue, entry);
    else
        broker_settle (self, queue, entry);
    queue->acked_total++;
    self->stats.acked_total++;
}

void
broker_requeue (broker_t *self, uint64_t qid, const qentry_t *entry)
{
    queue_t *queue = s_holder_queue (self, qid, entry);
    if (!queue)
        return;
    qentry_t back = *entry;
    back.flags |= QENTRY_REDELIVERED;
    queue_push_front (queue, &back);
    broker_wake (self, queue);
}

void
broker_reject (broker_t *self, uint64_t qid, const qentry_t *entry)
{
    queue_t *queue = s_holder_queue (self, qid, entry);
    if (!queue)
        return;
    s_dead_letter (self, queue, entry, "rejected");
    broker_wake (self, queue);
}

void
broker_consumer_settled (broker_t *self, consumer_t *consumer)
{
    if (consumer->unacked)
        consumer->unacked--;
    broker_wake (self, consumer->queue);
}

fedq_rc_t
broker_read (broker_t *self, const qentry_t *entry, store_msg_t *msg)
{
    fedq_rc_t rc = store_read (self->store, entry->pos, msg);
    if (rc)
        self->stats.corrupt_total++;
    return rc;
}


//  --------------------------------------------------------------------
//  Compaction: segments that are mostly settled have their live messages
//  copied forward (in place in their queues, so order is kept) and are
//  then deleted by store_maintain. Held (unacked) messages stay put, and
//  federated queues are left alone: their records carry event ids.

#define BROKER_COMPACT_MS 10000
#define BROKER_COMPACT_RATIO 0.25
#define BROKER_COMPACT_BUDGET 100000

static void
s_compact (broker_t *self)
{
    uint32_t segs[8];
    size_t nsegs = store_compact_candidates (self->store, BROKER_COMPACT_RATIO,
                                             segs, 8);
    if (!nsegs)
        return;
    size_t moved = 0;
    for (queue_t *q = zhashx_first (self->queues);
         q && moved < BROKER_COMPACT_BUDGET; q = zhashx_next (self->queues)) {
        if (q->fed_prefix)
            continue;
        for (int p = 0; p <= 9; p++) {
            qring_t *ring = &q->ready[p];
            for (size_t i = 0; i < ring->count && moved < BROKER_COMPACT_BUDGET;
                 i++) {
                qentry_t *e = &ring->items[(ring->head + i) & (ring->cap - 1)];
                uint32_t seg = STORE_POS_SEG (e->pos);
                bool hit = false;
                for (size_t k = 0; k < nsegs; k++)
                    hit |= segs[k] == seg;
                if (!hit || (q->skip_count && u64map_get (q->skip, e->pos, NULL)))
                    continue;
                store_pos_t to;
                if (store_relocate (self->store, q->qid, e->pos, &to))
                    return;
                e->pos = to;
                moved++;
            }
        }
    }
    if (moved)
        fedq_info ("compaction: moved %zu live messages out of %zu sparse "
                   "segments",
                   moved, nsegs);
}

//  --------------------------------------------------------------------
//  Periodic work

int64_t
broker_held_due (broker_t *self)
{
    return self->held_due;
}

void
broker_release_held (broker_t *self, int64_t now)
{
    int64_t next = INT64_MAX;
    for (queue_t *q = zhashx_first (self->queues); q;
         q = zhashx_next (self->queues)) {
        if (!q->held_count)
            continue;
        int64_t due;
        if (queue_release_held (q, now, &due))
            broker_wake (self, q);
        if (due < next)
            next = due;
    }
    self->held_due = next;
}

void
broker_tick (broker_t *self)
{
    int64_t now = fedq_wall_ms ();
    int64_t mono = fedq_mono_ms ();
    double elapsed = self->last_tick ? (double) (mono - self->last_tick) / 1000.0
                                     : 0;
    self->last_tick = mono;
    for (queue_t *q = zhashx_first (self->queues); q;
         q = zhashx_next (self->queues)) {
        if (elapsed > 0) {
            double in = (double) (q->published_total - q->published_at_tick)
                        / elapsed;
            double out = (double) (q->delivered_total - q->delivered_at_tick)
                         / elapsed;
            q->publish_rate = q->publish_rate * 0.5 + in * 0.5;
            q->deliver_rate = q->deliver_rate * 0.5 + out * 0.5;
        }
        q->published_at_tick = q->published_total;
        q->delivered_at_tick = q->delivered_total;
        //  Expire from the heads; an expired message behind a live one
        //  waits until it reaches the head (as in AMQP brokers).
        const qentry_t *head;
        while ((head = queue_peek (q))
               && (s_expired (head, now)
                   || (q->skip_count && u64map_get (q->skip, head->pos, NULL)))) {
            qentry_t entry;
            if (!s_pop (self, q, &entry))
                break;
            if (!s_expired (&entry, now)) {
                queue_push_front (q, &entry);
                break;
            }
            self->stats.expired_total++;
            s_dead_letter (self, q, &entry, "expired");
        }
        queue_dedup_expire (q, now);
    }
    //  Held messages are released by the node loop when due; this pass
    //  catches any whose wakeup was missed.
    broker_release_held (self, now);
    //  Whatever was written lazily is synced at least once a second.
    self->need_durable = true;
    if (mono >= self->next_compact) {
        self->next_compact = mono + BROKER_COMPACT_MS;
        s_compact (self);
    }
    store_maintain (self->store);
}


