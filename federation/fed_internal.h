//  federation/fed_internal.h — the state fed.c, fed_resync.c and
//  fed_status.c share.
//  Not an interface: see fed.h.
#ifndef FED_INTERNAL_H_INCLUDED
#define FED_INTERNAL_H_INCLUDED

#include "fed.h"
#include "fed_batch.h"
#include "fed_direct.h"

#include <czmq.h>
#include <stdio.h>
#include <string.h>

typedef struct _fed_resync_t fed_resync_t;

#define FED_WINDOW 20000 //  events in flight per stream
#define FED_HEARTBEAT_MS 1000
#define FED_MIN_BACKOFF_MS 200
#define FED_MAX_BACKOFF_MS 10000

//  What this node knows a direct peer holds: its version vector.
//
//  Each origin's events must reach a member in order on every path, or
//  the member (which applies only events above its mark) drops an older
//  one that comes late as a duplicate and loses it. One connection is
//  FIFO, but a pair of members in a mesh has two (each links to the
//  other), so: vv holds only what the member is known to hold (its
//  FED_HELLO, events it sent us, our events it acknowledged), what a
//  stream sent but was not acknowledged counts only for that stream
//  (fed_stream_t.vv), and one stream at a time (sender) sends to the
//  member. Any stream then sends each origin without gaps above what the
//  member holds, so however the connections interleave, nothing is lost.
typedef struct {
    char id[PROTO_MAX_NAME + 1];
    zhashx_t *vv;                      //  origin -> highest seq it is known to
                                       //  hold (as uintptr_t)
    bool known;                        //  vv learned since start (hello seen)
    uint64_t acked;                    //  history index below which it holds
                                       //  every event (its sender's view)
    fed_stream_t *sender;              //  the stream that sends to it, or NULL
    fed_direct_t *direct;              //  origins it gets from themselves (its
                                       //  FED_DIRECT): not relayed to it
    uint64_t relays_skipped_total;     //  events not sent to it for that
    bool lists_us;                     //  its FED_DIRECT says we are in its
                                       //  peers: it keeps its history for us
    char origin[PROTO_MAX_NAME + 1];   //  its federation origin (NODE~INC),
                                       //  from its FED_DIRECT; "" unknown
    uint64_t owed;                     //  events the history cap dropped before
                                       //  it had them (settled by its resync)
    uint64_t resync_total;             //  full resyncs sent to it
    uint64_t resync_sent_total;        //  live messages those resyncs carried
    uint64_t resync_skipped_total;     //  events gone before it got them
    uint64_t resync_removed_total;     //  held messages a resync from it
                                       //  removed here (consume: global)
    uint64_t incarnation_resets_total; //  it came back without events
                                       //  of its own earlier incarnation
} s_member_t;

//  One sent, unacknowledged event: its history index and id.
typedef struct {
    uint64_t index;
    uint32_t origin; //  broker_origin_id
    uint64_t seq;
} s_sent_t;

struct _fed_stream_t {
    fed_t *fed;
    s_member_t *member; //  the peer
    uint64_t epoch;
    fed_send_fn *send;
    void *send_ctx;
    bool from_link;  //  owned by one of our links
    uint64_t cursor; //  next history index to consider
    zhashx_t *vv;    //  origin -> highest seq sent on this
                     //  stream (FIFO: it arrives after the rest)
    s_sent_t *sent;  //  ring of events sent, unacked
    size_t sent_head, sent_count;
    uint64_t recv_upto; //  last index the peer sent us
    bool ack_due;
    fed_batch_t *batch;    //  FED_EVENTS being filled, or NULL when
                           //  the peer takes only FED_EVENT
    bool direct_due;       //  send our FED_DIRECT (new stream)
    uint64_t skipped_from; //  first index not sent because the peer
                           //  gets its origin directly, or FED_NONE
    bool rescan;           //  go back to skipped_from once the ring
                           //  is empty (the peer lost an origin)
    bool await_direct;     //  relay nothing before the peer's first
                           //  FED_DIRECT (or a heartbeat passed)
    uint64_t sent_total;
    uint64_t applied_total;
    uint64_t duplicates_total;
    uint64_t errors_total;
    int64_t started;       //  mono ms
    double rate;           //  events sent per second, smoothed
    uint64_t sent_at_rate; //  sent_total at the last rate update
    int64_t rate_at;       //  mono ms of the last rate update
    fed_resync_t *resync;  //  a full resync being sent, or NULL
    void *keep;            //  u64map_t: live ids a resync to us
                           //  listed (consume: global), or NULL
};

typedef enum {
    LINK_CONNECTING,
    LINK_RUNNING,
    LINK_RECONNECTING
} s_link_state_t;

typedef struct {
    fed_t *fed;
    char *peer_id;
    char *endpoint;
    char *server_key; //  the peer's NAME.pub (CURVE), or NULL
    void *sock;
    bool hello_due; //  FED_HELLO not sent yet (no answer yet)
    uint64_t epoch;
    s_link_state_t state;
    fed_stream_t *stream; //  once the peer answered
    int64_t last_rx, last_ping, reconnect_at;
    uint64_t backoff_ms;
    uint64_t reconnects_total;
    char last_error[256];
} s_link_t;

struct _fed_t {
    cfg_federated_t cfg; //  copy of the scalars (alerts, consume);
                         //  its pointers are not kept
    char *name;
    char *node_id;
    broker_t *broker;
    void *zmq_ctx;
    queue_t *q;           //  the local queue
    queue_t *h;           //  its history
    s_member_t **members; //  configured peers, then others seen
    size_t nmembers;
    s_link_t *links;
    size_t nlinks;
    fed_stream_t **streams; //  every open stream (links and sessions)
    size_t nstreams;
    uint64_t epoch_seq;
    int64_t next_compact;
    bool lag_alert, backlog_alert;
    fedq_buf_t out;
    zhashx_t *floors;               //  origin -> history floor: the highest
                                    //  seq of it this history may lack
                                    //  (marks "h/NAME/ORIGIN", durable)
    char *floor_prefix;             //  "h/NAME/"
    uint64_t history_dropped_total; //  events the cap dropped
    uint32_t own_origin;            //  broker_origin_id of this node's
                                    //  origin (NODE~INCARNATION)
    uint64_t direct_gen;            //  generation of our last FED_DIRECT
    uint64_t direct_links;          //  running links it listed (bit per link)
    bool direct_refresh;            //  send FED_DIRECT again (marks moved)
};

static const size_t s_ring_cap = FED_WINDOW;
#define FED_NONE UINT64_MAX

//  --------------------------------------------------------------------
//  History access: absolute index = compacted + offset in the ring

static inline uint64_t
s_history_end (fed_t *self)
{
    return self->h->compacted + self->h->ready[0].count;
}

static inline const qentry_t *
s_history_at (fed_t *self, uint64_t index)
{
    queue_t *h = self->h;
    if (index < h->compacted)
        return NULL;
    uint64_t off = index - h->compacted;
    qring_t *ring = &h->ready[0];
    if (off >= ring->count)
        return NULL;
    return &ring->items[(ring->head + off) & (ring->cap - 1)];
}

//  --------------------------------------------------------------------
//  Version vectors

//  The origin as a C string key (in name, PROTO_MAX_NAME + 1 bytes).
static inline const char *
s_vv_key (fedq_str_t origin, char *name)
{
    size_t n = origin.len > PROTO_MAX_NAME ? PROTO_MAX_NAME : origin.len;
    if (n)
        memcpy (name, origin.ptr, n);
    name[n] = 0;
    return name;
}

static inline uint64_t
s_vv_get (zhashx_t *vv, fedq_str_t origin)
{
    char name[PROTO_MAX_NAME + 1];
    return (uint64_t)(uintptr_t)zhashx_lookup (vv, s_vv_key (origin, name));
}

static inline void
s_vv_raise (zhashx_t *vv, fedq_str_t origin, uint64_t seq)
{
    char name[PROTO_MAX_NAME + 1];
    s_vv_key (origin, name);
    uint64_t have = (uint64_t)(uintptr_t)zhashx_lookup (vv, name);
    if (seq > have)
        zhashx_update (vv, name, (void *)(uintptr_t)seq);
}

//  The event id of history index i; false when it has none (or is gone).
static inline bool
s_history_id (fed_t *self, uint64_t i, store_msg_t *rec, fedq_str_t *origin,
              uint64_t *fseq)
{
    const qentry_t *e = s_history_at (self, i);
    return e && broker_read (self->broker, e, rec) == FEDQ_OK &&
           broker_fed_id (self->q, rec, origin, fseq);
}

//  --------------------------------------------------------------------
//  fed_resync.c: history floors, the history cap, full resyncs

//  Load the history floors from the store's marks.
void fed_floors_load (fed_t *self);

//  Drop the n oldest history events, raising the floors first (durably,
//  before the settlements). by_cap: dropped by the cap, not because
//  every member had them.
void fed_history_drop (fed_t *self, uint64_t n, bool by_cap);

//  Drop history events past history_max_messages / history_max_bytes.
void fed_history_cap (fed_t *self);

//  Before a stream sends history: start or continue a full resync when
//  its member lacks events below a floor. True while the resync holds
//  the history back.
bool fed_resync_pump (fed_stream_t *s);

//  FED_KEEP or FED_RESYNC arrived on stream s.
void fed_resync_frame (fed_stream_t *s, const proto_frame_t *f);

//  Free the resync a stream sends / the keep lists it received.
void fed_resync_free (fed_stream_t *s);
void fed_keep_free (fed_stream_t *s);

//  After a FED_HELLO from member m: count and log it when m lacks events
//  of its own earlier incarnation (its data directory was lost).
void fed_member_check_incarnation (fed_t *self, s_member_t *m);

//  A frame header for stream s (queue and epoch set).
proto_frame_t fed_frame (fed_stream_t *s, proto_cmd_t cmd);

//  History index below which stream s's member holds every event, as
//  this node knows it.
uint64_t fed_stream_acked (fed_stream_t *s);

//  Send the FED_EVENTS frame stream s is filling, if any events wait in
//  it. Not FEDQ_OK when the pipe is full (the events stay for later).
fedq_rc_t fed_stream_flush (fed_stream_t *s);

#endif
