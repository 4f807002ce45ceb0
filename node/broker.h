//  node/broker.h — the broker: exchanges, queues, bindings, routing,
//  publish with group commit, dispatch to consumers, settlement,
//  dead-lettering, TTL, overflow and dedup, over the node's log.
//
//  Owned by the node's event loop thread; nothing here is thread-safe.
//
//  Publishing is staged: broker_publish routes a message and appends its
//  record to the log's commit buffer; broker_commit makes every staged
//  record durable with one write and one fsync, and only then puts the
//  messages on their queues. A failed commit stages nothing.
#ifndef BROKER_H_INCLUDED
#define BROKER_H_INCLUDED

#include "exchange.h"
#include "proto.h"
#include "queue.h"
#include "store.h"

typedef struct _broker_t broker_t;

//  A consumer of a queue: a client session or a shovel link. The broker
//  calls deliver for each message it dispatches; deliver returns FEDQ_OK
//  when it took the message (the consumer now holds it unacked, unless
//  no_ack) or FEDQ_EAGAIN when it cannot take more now.
struct _consumer_t {
    queue_t *queue;             //  borrowed
    char *tag;                  //  consumer tag (owned)
    uint32_t prefetch;          //  max unacked, 0 = unlimited
    uint32_t unacked;           //  delivered and not settled
    bool no_ack;                //  settled as soon as delivered
    bool blocked;               //  deliver said EAGAIN; cleared by the owner
    void *owner;                //  session or link (borrowed)
    fedq_rc_t (*deliver) (consumer_t *self, const qentry_t *entry,
                          const store_msg_t *msg);
    //  Called when the broker removes the consumer itself (queue deleted);
    //  the owner must forget its pointer. May be NULL.
    void (*cancelled) (consumer_t *self);
};

typedef struct {
    const char *node_id;        //  this node's id (origin of its messages)
    const char *data_dir;
    store_fsync_t fsync;
    uint64_t segment_bytes;     //  0 = default
    uint64_t max_message_bytes; //  ETOOBIG above this
} broker_opts_t;

//  Open the broker: load declarations from data_dir/meta.json, open and
//  replay the log, rebuild every queue. FEDQ_ECORRUPT / FEDQ_EIO on a
//  damaged data directory (logged with where and what to do).
fedq_rc_t
    broker_open (const broker_opts_t *opts, broker_t **self_p);

void
    broker_destroy (broker_t **self_p);

//  The log, for stats.
store_t *
    broker_store (broker_t *self);

//  What recovery found at open.
const store_recovery_t *
    broker_recovery (broker_t *self);

//  ----------------------------------------------------------------------
//  Declarations. from_config marks entries owned by the config file (a
//  reload may remove them); client declares of an existing queue with
//  different options fail with FEDQ_EEXISTS, config declares update it.

fedq_rc_t
    broker_declare_queue (broker_t *self, const char *name,
                          const proto_qopts_t *opts, bool from_config,
                          bool passive, queue_t **queue_p);
fedq_rc_t
    broker_delete_queue (broker_t *self, const char *name, bool if_unused,
                         uint64_t *count);
fedq_rc_t
    broker_purge_queue (broker_t *self, const char *name, uint64_t *count);
fedq_rc_t
    broker_declare_exchange (broker_t *self, const char *name,
                             exchange_type_t type, bool from_config,
                             bool passive);
fedq_rc_t
    broker_delete_exchange (broker_t *self, const char *name);
fedq_rc_t
    broker_bind (broker_t *self, const char *exchange, const char *queue,
                 const char *key);
fedq_rc_t
    broker_unbind (broker_t *self, const char *exchange, const char *queue,
                   const char *key);

//  Look up a queue by name; NULL when missing.
queue_t *
    broker_queue (broker_t *self, const char *name);

//  Look up an exchange; NULL when missing ("" is the default exchange and
//  is never returned).
exchange_t *
    broker_exchange (broker_t *self, const char *name);

//  Call fn for each queue / exchange.
void
    broker_queues_each (broker_t *self,
                        void (*fn) (void *ctx, queue_t *queue), void *ctx);
void
    broker_exchanges_each (broker_t *self,
                           void (*fn) (void *ctx, exchange_t *exchange),
                           void *ctx);

//  Mark a queue as the only source of a shovel (NULL to release it).
fedq_rc_t
    broker_set_owner (broker_t *self, const char *queue, const char *owner);

//  ----------------------------------------------------------------------
//  Publishing.

typedef struct {
    proto_msg_t *msg;           //  envelope (borrowed; origin, seq and
                                //  published_at are assigned when empty)
    fedq_str_t exchange;        //  "" = default exchange
    fedq_str_t routing_key;
    const uint8_t *body;
    uint32_t body_len;
    fedq_str_t link;            //  shovel link name, or empty
    uint64_t link_seq;          //  its sequence (exactly-once mark)
} broker_publish_t;

//  Outcome of a staged publish.
typedef enum {
    BROKER_STAGED = 0,          //  record appended; durable at next commit
    BROKER_DUPLICATE = 1,       //  seen before (dedup window or link mark)
} broker_outcome_t;

//  Route and stage one message. FEDQ_OK with *outcome; or an error that
//  the caller returns to the publisher with nothing staged: ENOTFOUND
//  (no such exchange), EUNROUTABLE, EFULL (a target queue is full with
//  reject-publish), ETOOBIG, ELOOP (this node is in the provenance path),
//  EAGAIN (a link sequence past mark + 1: the sender must go back).
fedq_rc_t
    broker_publish (broker_t *self, broker_publish_t *pub,
                    broker_outcome_t *outcome);

//  Make every staged record durable, then put staged messages on their
//  queues. On failure nothing staged is queued and the error is returned
//  (the caller must not confirm the staged publishes).
fedq_rc_t
    broker_commit (broker_t *self);

//  The high-water mark stored for a shovel link (0 when none).
uint64_t
    broker_link_mark (broker_t *self, const char *link);

//  ----------------------------------------------------------------------
//  Consuming and settling.

//  Create a consumer on a queue (EDENIED on a shovel-owned queue unless
//  owner_link names that shovel). The broker owns it.
fedq_rc_t
    broker_consume (broker_t *self, const char *queue, const char *tag,
                    uint32_t prefetch, bool no_ack, const char *owner_link,
                    void *owner,
                    fedq_rc_t (*deliver) (consumer_t *, const qentry_t *,
                                          const store_msg_t *),
                    consumer_t **consumer_p);

//  Remove a consumer (its unacked messages stay with their holder, who
//  settles or requeues them). May auto-delete the queue.
void
    broker_cancel (broker_t *self, consumer_t **consumer_p);

//  Take the next message of a queue for a pull (GET). FEDQ_EAGAIN when
//  empty. The entry is unacked until settled unless no_ack.
fedq_rc_t
    broker_get (broker_t *self, queue_t *queue, bool no_ack,
                qentry_t *entry, store_msg_t *msg);

//  Holders of delivered messages name the queue by qid, so that a queue
//  deleted meanwhile is simply skipped.

//  Settle a delivered message: remove it for good (ack).
void
    broker_ack (broker_t *self, uint64_t qid, const qentry_t *entry);

//  Put a delivered message back at the head of its queue, redelivered.
void
    broker_requeue (broker_t *self, uint64_t qid, const qentry_t *entry);

//  Reject a delivered message: dead-letter it (reason "rejected") or drop
//  it when the queue has no dead-letter exchange.
void
    broker_reject (broker_t *self, uint64_t qid, const qentry_t *entry);

//  A consumer holds one less unacked message (called by the holder on
//  ack, requeue or reject of a consumer delivery).
void
    broker_consumer_settled (broker_t *self, consumer_t *consumer);

//  Mark a queue as having messages or credit to dispatch.
void
    broker_wake (broker_t *self, queue_t *queue);

//  Deliver ready messages to consumers with credit, for every woken queue.
void
    broker_dispatch (broker_t *self);

//  consume: global handoff: the wall ms the next held message is due
//  (INT64_MAX when none), and moving the due ones to their ready rings.
int64_t
    broker_held_due (broker_t *self);
void
    broker_release_held (broker_t *self, int64_t now);

//  Periodic work: expire TTL'd heads, age dedup windows, delete settled
//  segments, compact sparse ones. Call about once a second.
void
    broker_tick (broker_t *self);

//  ----------------------------------------------------------------------
//  For shovel links: settlements that carry a high-water mark, made
//  durable in one record so a crash can never split them.

//  Ack n delivered entries of queue qid and advance mark key to value,
//  atomically.
fedq_rc_t
    broker_ack_marked (broker_t *self, uint64_t qid, const qentry_t *entries,
                       size_t n, const char *key, uint64_t value);

//  Append again settlements (with their mark) that a failed commit
//  dropped; the in-memory state already counts them as settled.
fedq_rc_t
    broker_append_acks_marked (broker_t *self, const store_settle_t *settles,
                               size_t n, const char *key, uint64_t value);

//  Move a delivered entry of queue qid to queue dlq (declared durable if
//  missing) with headers x-death-reason and x-death-queue, settling it
//  and advancing mark key to value in the same record.
fedq_rc_t
    broker_dead_letter_marked (broker_t *self, uint64_t qid,
                               const qentry_t *entry, const char *dlq,
                               const char *reason, const char *key,
                               uint64_t value);

//  Advance a mark with a record of its own.
fedq_rc_t
    broker_set_mark (broker_t *self, const char *key, uint64_t value);

//  Current value of a mark.
uint64_t
    broker_mark (broker_t *self, const char *key);

//  ----------------------------------------------------------------------
//  Federated queues (federation/ drives the links).

//  Make queue federated: create its history queue "~fed.NAME", and for
//  consume: global rebuild its index of live events and tombstones.
fedq_rc_t
    broker_fed_enable (broker_t *self, queue_t *queue, bool global);

//  Stage an event from a peer: origin/fseq is its event id, env and body
//  as sent. BROKER_DUPLICATE when it was applied before (by any path).
fedq_rc_t
    broker_fed_apply (broker_t *self, queue_t *queue, fedq_str_t origin,
                      uint64_t fseq, const uint8_t *env, uint32_t env_len,
                      const uint8_t *body, uint32_t body_len,
                      broker_outcome_t *outcome);

//  Remove the message of federation key from a global federated queue,
//  with a tombstone event of this node (a full resync found it removed
//  elsewhere).
void
    broker_fed_forget (broker_t *self, queue_t *queue, uint64_t key);

//  Settle the ready messages of q that tombstones removed (before their
//  tombstones leave the history).
void
    broker_fed_settle_removed (broker_t *self, queue_t *queue);

//  The event id (origin, seq) a record carries for federated queue q.
bool
    broker_fed_id (const queue_t *q, const store_msg_t *rec,
                   fedq_str_t *origin, uint64_t *seq);

//  The event id of a history entry of q, read without the record's CRC
//  check (store_peek): for deciding what to send or compact, not for
//  serving the message. False when the record has none or is unreadable.
bool
    broker_fed_peek (broker_t *self, const queue_t *q, const qentry_t *entry,
                     fedq_str_t *origin, uint64_t *seq);

//  Drop the n oldest events of a history queue.
void
    broker_fed_compact (broker_t *self, queue_t *history, uint64_t n);

//  Small numbers for origin names, and (origin, seq) packed in 64 bits.
uint32_t
    broker_origin_id (broker_t *self, fedq_str_t origin);
const char *
    broker_origin_name (broker_t *self, uint32_t id);

//  The target key of a tombstone record; false when rec is not one.
bool
    broker_tomb_target (broker_t *self, const store_msg_t *rec, uint64_t *key);

//  This node's id.
const char *
    broker_node_id (broker_t *self);

//  Number this node's next messages above seq (when it is higher).
void
    broker_seq_raise (broker_t *self, uint64_t seq);

//  The origin of this node's federation events: its node.id, with
//  "~INCARNATION" when its data directory has one (fed.h).
const char *
    broker_fed_origin (broker_t *self);
uint64_t
    broker_fed_key (uint32_t origin_id, uint64_t seq);

//  Read a message's record (for a holder re-sending it).
fedq_rc_t
    broker_read (broker_t *self, const qentry_t *entry, store_msg_t *msg);

//  Counters for status and metrics.
typedef struct {
    uint64_t published_total;   //  messages staged from any publisher
    uint64_t confirmed_total;   //  staged messages made durable
    uint64_t returned_total;    //  publishes refused (any reason)
    uint64_t unroutable_total;
    uint64_t duplicates_total;  //  dedup window and link marks
    uint64_t delivered_total;
    uint64_t acked_total;
    uint64_t dead_lettered_total;
    uint64_t expired_total;
    uint64_t dropped_total;
    uint64_t commit_errors_total;
    uint64_t corrupt_total;     //  messages not served: failed CRC
} broker_stats_t;

const broker_stats_t *
    broker_stats (broker_t *self);

#endif
