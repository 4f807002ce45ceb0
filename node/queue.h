//  node/queue.h — one queue's in-memory index: the ready messages (by
//  priority, oldest first) as small entries pointing into the log. Bodies
//  stay on disk; an entry is 32 bytes, so a million queued messages need
//  about 32 MiB.
#ifndef QUEUE_H_INCLUDED
#define QUEUE_H_INCLUDED

#include "fedq.h"
#include "proto.h"
#include "store.h"

//  A queued message: where it is in the log and what dispatch needs.
typedef struct {
    store_pos_t pos;            //  the message record
    int64_t expires_at;         //  ms since epoch, 0 = never
    int64_t enqueued_at;        //  ms since epoch on this node's clock (lag)
    uint32_t size;              //  body bytes (max_bytes accounting)
    uint16_t deliveries;        //  times delivered (redelivered when > 0)
    uint8_t priority;           //  0..9
    uint8_t flags;              //  QENTRY_* bits
} qentry_t;

#define QENTRY_REDELIVERED 1    //  delivered before, or recovered after restart
#define QENTRY_HELD 2           //  consume: global handoff: queue_push holds it
#define QENTRY_RANK_SHIFT 2     //  bits 2-3: held for (rank) x handoff, rank-1
#define QENTRY_RANK_MASK (3 << QENTRY_RANK_SHIFT)
#define QUEUE_HELD_RANKS 4

//  A ring buffer of entries.
typedef struct {
    qentry_t *items;
    size_t head;                //  index of the first entry
    size_t count;
    size_t cap;                 //  power of two, or 0
} qring_t;

typedef struct _consumer_t consumer_t;

typedef struct _queue_t {
    char *name;
    uint64_t qid;               //  stable id in the log (never reused)
    proto_qopts_t opts;         //  options; strings owned (dlx, dlk below)
    char *dlx;                  //  dead_letter_exchange or NULL
    char *dlk;                  //  dead_letter_routing_key or NULL
    bool from_config;           //  declared by the config file
    bool ever_consumed;         //  auto_delete only after a first consumer
    char *owner;                //  shovel that owns it (only consumer) or NULL
    qring_t *ready;             //  one ring per priority level (max_priority+1)
    uint64_t ready_count;       //  messages in the rings
    uint64_t ready_bytes;
    uint64_t unacked_count;     //  delivered, not settled
    uint64_t unacked_bytes;
    //  consume: global handoff: messages from other members wait here,
    //  in arrival order, until enqueued_at + rank x fed_handoff_ms (then
    //  they move to the ready rings in that order). The rank of this
    //  member after the origin (queue_handoff_rank) staggers the members
    //  so that one takes a message the origin did not; one FIFO by rank.
    qring_t held[QUEUE_HELD_RANKS];
    char **fed_members;         //  member ids, sorted (this one included)
    size_t fed_nmembers;
    char *fed_self;             //  this member's id
    uint64_t held_count;
    uint64_t held_bytes;
    uint64_t fed_handoff_ms;    //  0 = deliver remote messages at once
    uint64_t pending_count;     //  routed here, waiting for the commit
    uint64_t pending_bytes;
    consumer_t **consumers;     //  in order of arrival
    size_t nconsumers;
    size_t rr;                  //  round-robin cursor
    bool dirty;                 //  on the broker's dispatch list
    //  Dedup window: message_id -> time first seen (ms since epoch).
    void *dedup;                //  zhashx_t *, or NULL when window is 0
    //  Counters for status and metrics.
    uint64_t published_total;
    uint64_t delivered_total;
    uint64_t acked_total;
    uint64_t dropped_total;     //  drop-head, TTL without DLX, reject w/o DLX
    uint64_t dead_lettered_total;
    uint64_t duplicates_total;  //  dedup window hits
    uint64_t returned_full_total;
    //  Federated queues (federation/): every event also lands in a hidden
    //  history queue, and the record advances the mark PREFIX + origin.
    struct _queue_t *fed_history;   //  history queue, or NULL
    char *fed_prefix;           //  "f/NAME/"
    bool fed_global;            //  consume: global (acks become tombstones)
    bool fed_is_history;        //  this queue is a history queue
    void *fed_index;            //  u64map_t: fed key -> pos (global only)
    void *fed_tombs;            //  u64map_t: tombstones that came first
    void *skip;                 //  u64map_t: positions removed by tombstone
    uint64_t skip_count;
    uint64_t compacted;         //  history: entries removed from the head
    //  Rates in messages per second, smoothed, updated by broker_tick.
    double publish_rate;
    double deliver_rate;
    uint64_t published_at_tick;     //  published_total at the last tick
    uint64_t delivered_at_tick;
} queue_t;

//  Create a queue with options (strings copied).
queue_t *
    queue_new (const char *name, uint64_t qid, const proto_qopts_t *opts);

//  Destroy the queue and null *self_p (consumers are not touched).
void
    queue_destroy (queue_t **self_p);

//  Change options in place (a reload or redeclare from config).
void
    queue_set_opts (queue_t *self, const proto_qopts_t *opts);

//  Append an entry at the tail of its priority level; an entry flagged
//  QENTRY_HELD goes to the tail of the held FIFO instead.
void
    queue_push (queue_t *self, const qentry_t *entry);

//  Put an entry back at the head of its priority level (requeue).
void
    queue_push_front (queue_t *self, const qentry_t *entry);

//  Peek the next entry to dispatch (highest priority, oldest); NULL if none.
const qentry_t *
    queue_peek (queue_t *self);

//  Remove and return the next entry; false when empty.
bool
    queue_pop (queue_t *self, qentry_t *entry);

//  Remove the oldest entry of the lowest priority (drop-head); false if none.
bool
    queue_pop_oldest (queue_t *self, qentry_t *entry);

//  Move the held entries due at now_ms (enqueued_at + fed_handoff_ms)
//  to the ready rings, oldest first; returns how many moved. *next_due
//  gets the due time of the oldest still held, or INT64_MAX.
size_t
    queue_release_held (queue_t *self, int64_t now_ms, int64_t *next_due);

//  consume: global: the members of the federated queue (this node's id
//  and its peers' ids, copied) for queue_handoff_rank.
void
    queue_set_fed_members (queue_t *self, const char *self_id,
                           const char *const *peers, size_t npeers);

//  This member's rank after origin ("ID" or "ID~incarnation") in the
//  sorted member ids taken as a circle: 1 for the next member, 2 for the
//  one after...; capped at QUEUE_HELD_RANKS; 1 when origin is unknown.
int
    queue_handoff_rank (const queue_t *self, fedq_str_t origin);

//  Mark a queued message as removed (a federation tombstone); it is
//  dropped when it reaches the head.
void
    queue_skip_add (queue_t *self, store_pos_t pos);

//  True (and forgotten) when pos was marked removed.
bool
    queue_skip_take (queue_t *self, store_pos_t pos);

//  Take the ready entries marked removed out of the queue now, calling
//  fn for each (delivered ones stay marked until settled).
void
    queue_skip_flush (queue_t *self,
                      void (*fn) (void *ctx, const qentry_t *e), void *ctx);

//  Total messages in the queue (ready + held + unacked, less removed ones).
uint64_t
    queue_depth (const queue_t *self);

//  True when one more message of size bytes would exceed a limit.
bool
    queue_would_overflow (const queue_t *self, uint64_t extra_msgs,
                          uint64_t extra_bytes);

//  Remove every ready and held entry, calling fn for each (purge, delete).
void
    queue_drain (queue_t *self, void (*fn) (void *ctx, const qentry_t *e),
                 void *ctx);

//  Dedup window: true when message_id was seen within the window (and
//  then the publish is a duplicate); otherwise remember it at now_ms.
bool
    queue_dedup_check (queue_t *self, fedq_str_t message_id, int64_t now_ms);

//  Forget dedup ids older than the window.
void
    queue_dedup_expire (queue_t *self, int64_t now_ms);

#endif
