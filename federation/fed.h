//  federation/fed.h — federated queues (DESIGN.md §2): one queue kept
//  multi-master across member nodes.
//
//  Design:
//  - Every message that enters the queue on a member is an event with a
//    global id (origin member, its sequence). The event's record also
//    lands in a hidden history queue "~fed.NAME" and advances the mark
//    "f/NAME/ORIGIN", so the per-origin version vector is the set of
//    those marks, durable with the events.
//  - A member links to the peers its config lists (a DEALER each). Over
//    one connection both sides stream: each sends its history, in order,
//    skipping what the other's vector (from FED_HELLO) shows it has. A
//    receiver applies an event only above its mark for that origin, so
//    each id is applied once whatever path it came by, and each origin's
//    order is kept: a stream is always an in-order suffix of the
//    sender's history, which holds every origin's events in order.
//  - consume: global: an ack becomes a tombstone event that removes the
//    message on every member (kept until the message arrives, when the
//    tombstone came first).
//  - Two members may share two connections (each lists the other): one
//    stream at a time sends to a member, the newest, and what a stream
//    sent counts as held only once acknowledged (s_member_t in
//    fed_internal.h).
//  - Events go out in FED_EVENTS frames (fed_batch.h), filled in one
//    pump and sent at its end. A member tells its peers which origins it
//    has a running link to and that list it in their peers (FED_DIRECT,
//    fed_direct.h); they do not relay
//    those origins' events to it, and go back to what they skipped when
//    it stops listing one (docs/protocol.md §10.3).
//  - History is compacted once every member this node knows (its peers,
//    and members that connected to it since it started) acknowledged
//    it; peers further away are served by their own neighbours. A member
//    it does not know is not waited for (docs/operations.md).
//  - History is bounded (history_max_messages / history_max_bytes): past
//    the cap the oldest events go even if a member lacks them. Whatever
//    leaves the history raises the origin's floor (durable mark
//    "h/NAME/ORIGIN"). A stream whose member is below a floor sends it a
//    full resync of the live messages first (FED_EVENT without count,
//    FED_KEEP for consume: global, FED_RESYNC with the floors), counted
//    per member pair (fed_resync.c, docs/protocol.md §10.4).
//  - The origin of this node's own events is NODE~INCARNATION
//    (broker_fed_origin; plain NODE for a data directory older than
//    incarnations): a member re-created empty under its old node.id is a
//    new origin, never confused with the events of the one it replaces.
//
//  Stream state / event / action:
//  | state        | event              | action                         |
//  | connecting   | FED_HELLO answer   | s_stream_new: running, send    |
//  | running      | new history event  | s_stream_pump: send or skip    |
//  | running      | FED_EVENT(S)       | s_stream_apply each, ack later |
//  | running      | FED_ACK upto       | s_stream_acked: compact        |
//  | running      | member below floor | fed_resync_pump: full resync   |
//  | running      | FED_KEEP/RESYNC    | fed_resync_frame: apply, raise |
//  | running      | history past cap   | fed_history_cap: drop, floors  |
//  | running      | FED_DIRECT         | s_stream_direct: skip relays   |
//  | running      | 3 heartbeats quiet | s_link_drop: reconnecting      |
#ifndef FED_H_INCLUDED
#define FED_H_INCLUDED

#include "broker.h"
#include "config.h"

typedef struct _fed_t fed_t;
typedef struct _fed_stream_t fed_stream_t;

//  How a stream sends a frame (a link's DEALER, or a node session).
typedef fedq_rc_t (fed_send_fn) (void *ctx, const proto_frame_t *frame,
                                 const uint8_t *env, size_t env_len,
                                 const uint8_t *body, size_t body_len);

//  Start federating the queue of cfg (declared already) with its peers.
fed_t *
    fed_new (const cfg_federated_t *cfg, const char *node_id,
             broker_t *broker, void *zmq_ctx);

void
    fed_destroy (fed_t **self_p);

const char *
    fed_name (fed_t *self);

//  Sockets to poll (one per connected peer link); returns how many were
//  written to socks (up to max) with the matching index in ids.
size_t
    fed_sockets (fed_t *self, void **socks, size_t max);

//  Read and act on the frames waiting on socket sock.
void
    fed_recv (fed_t *self, void *sock);

//  After a successful commit: acknowledge what peers sent, send what is
//  new in the history.
void
    fed_committed (fed_t *self);

//  Heartbeats, reconnects, compaction, rates. Call every turn.
void
    fed_tick (fed_t *self);

//  Monotonic ms of the next timer.
int64_t
    fed_next_wakeup (fed_t *self);

//  A peer opened a stream on the node's endpoint (FED_HELLO on a
//  session). Returns the stream (owned by fed; the session keeps the
//  pointer until fed_session_closed) or NULL after answering an error.
fed_stream_t *
    fed_session_hello (fed_t *self, const proto_frame_t *frame,
                       fed_send_fn *send, void *send_ctx);

//  FED_EVENT or FED_ACK arrived on a session's stream.
void
    fed_session_frame (fed_t *self, fed_stream_t *stream,
                       const proto_frame_t *frame, const uint8_t *env,
                       size_t env_len, const uint8_t *body, size_t body_len);

//  The session ended.
void
    fed_session_closed (fed_t *self, fed_stream_t **stream_p);

//  Append a JSON object per peer stream to the array (status links).
void
    fed_status (fed_t *self, void *json_links);

#endif
