//  node/broker_internal.h — the broker's state and the helpers its files
//  share (broker.c, broker_fed.c, broker_marked.c). Not an interface.
#ifndef BROKER_INTERNAL_H_INCLUDED
#define BROKER_INTERNAL_H_INCLUDED

#include "broker.h"
#include "u64map.h"
#include <czmq.h>

//  A message routed to a queue, waiting for the commit.
typedef struct {
    queue_t *queue;
    qentry_t entry;
} s_staged_t;

struct _broker_t {
    char *node_id;              //  origin of messages published here
    char *incarnation;          //  the data directory's id (meta.json),
                                //  "" for one made before incarnations
    char *fed_origin;           //  origin of this node's federation
                                //  events: NODE, or NODE~INCARNATION
    char *data_dir;
    uint64_t max_message_bytes;
    store_t *store;             //  the node's log
    store_recovery_t recovery;  //  what store_open found
    zhashx_t *queues;           //  name -> queue_t *
    zhashx_t *exchanges;        //  name -> exchange_t *
    u64map_t by_qid;            //  qid -> queue_t *
    uint64_t next_qid;          //  never reused, saved in meta.json
    uint64_t seq;               //  last sequence given to a message
    s_staged_t *staged;         //  publishes waiting for the commit
    size_t nstaged, staged_cap;
    store_settle_t *settles;    //  settlements waiting for the commit
    size_t nsettles, settles_cap;
    queue_t **dirty;            //  queues to dispatch
    size_t ndirty, dirty_cap;
    fedq_buf_t env;             //  scratch: encoded envelope
    char mark_key[PROTO_MAX_NAME + 3];  //  scratch: "o/NODE", "l/LINK"
    broker_stats_t stats;
    int64_t last_tick;          //  mono ms of the last broker_tick
    zhashx_t *origins;          //  origin name -> index (federation keys)
    char **origin_names;        //  index -> name (1-based)
    size_t norigins;
    u64map_t *recovering;       //  during open: per-queue settled positions
    u64map_t relocated;         //  during open: old position -> copy
    int64_t held_due;           //  wall ms a held entry is due, or INT64_MAX
    int64_t next_compact;       //  mono ms of the next compaction pass
    bool need_durable;          //  something staged waits for its fsync
    int64_t opened_at;          //  wall ms when the broker was opened
};

//  Put an entry on a queue once the next commit succeeds.
void
    broker_stage (broker_t *self, queue_t *queue, const qentry_t *entry);

//  Settle an entry of a queue in the log (with the next commit).
void
    broker_settle (broker_t *self, queue_t *queue, const qentry_t *entry);

//  The queue with this id, or NULL.
queue_t *
    broker_queue_by_qid (broker_t *self, uint64_t qid);

//  When an entry expires in queue: the earlier of the message's own TTL
//  and the queue's message_ttl counted from now.
int64_t
    broker_expiry (const queue_t *queue, int64_t msg_expires, int64_t now);

//  Make room in a drop-head queue that is over its limits.
void
    broker_drop_head (broker_t *self, queue_t *queue);

//  An ack on a global federated queue: replace the settlement by a
//  tombstone event (broker_fed.c).
void
    broker_fed_tombstone (broker_t *self, queue_t *q, const qentry_t *entry);

#endif
