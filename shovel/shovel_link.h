//  shovel/shovel_link.h — one confirmed-forwarding link (DESIGN.md §2):
//  the only consumer of a source queue, forwarding to a destination node
//  over a DEALER socket, exactly once.
//
//  Design (docs/protocol.md, "Shovel links"):
//  - Every forwarded message carries (link, epoch, seq). Sequences are
//    given in source order from the link's mark "s/LINK" + 1, where the
//    mark is the last sequence settled at the source; it advances in the
//    same log record as the acks, so after a crash the messages still on
//    the queue get the same sequences again.
//  - The destination stores seq only when it is its mark + 1 (a resend at
//    or below the mark is confirmed, not stored); it confirms cumulatively
//    after its durable write and reports the first refused seq after that
//    confirm (LINK_REJECT). The link goes back to the refused message
//    (go-back-N): it waits while the destination is full, retries other
//    refusals up to max_attempts, then dead-letters the message at the
//    source and tells the destination to skip its sequence (LINK_SKIP).
//  - The epoch changes on every connection; frames of another epoch are
//    ignored.
//
//  State / event / action:
//  | state        | event                  | action                        |
//  | starting     | created                | s_connect                     |
//  | reconnecting | backoff elapsed        | s_connect                     |
//  | (any live)   | WELCOME                | s_on_welcome: running, resend |
//  | running      | message from queue     | s_deliver: send or hold       |
//  | running      | CONFIRM upto           | s_on_confirm: ack, mark       |
//  | running      | REJECT seq             | s_on_reject: block or retry   |
//  | any live     | 3 heartbeats silent    | s_disconnect: reconnecting    |
//  | running      | backlog, no progress   | shown as blocked              |
//  | running      | delete_after reached   | s_stop: stopped               |
#ifndef SHOVEL_LINK_H_INCLUDED
#define SHOVEL_LINK_H_INCLUDED

#include "broker.h"
#include "config.h"

typedef struct _shovel_link_t shovel_link_t;

typedef enum {
    SHOVEL_STARTING = 0,
    SHOVEL_RUNNING,
    SHOVEL_RECONNECTING,
    SHOVEL_BLOCKED,
    SHOVEL_STOPPED,
} shovel_state_t;

//  Create a link from its config (copied) and start connecting. It takes
//  its source queue as its only consumer. NULL (cause logged) on failure.
shovel_link_t *
    shovel_link_new (const cfg_shovel_t *cfg, const char *node_id,
                     broker_t *broker, void *zmq_ctx);

//  Stop the link: messages it holds go back to the head of the source
//  queue, the queue is released. Nulls *self_p.
void
    shovel_link_destroy (shovel_link_t **self_p);

//  The link is going away and its source queue goes back to clients (a
//  reload removed the shovel or gave it another source queue): move its
//  mark past every sequence the destination may hold, so that a link of
//  this name never gives those sequences to other messages (which the
//  destination would drop as duplicates: lost). Messages it had in
//  flight may then arrive twice if the shovel comes back. Call before
//  shovel_link_destroy; not on node shutdown.
void
    shovel_link_retire (shovel_link_t *self);

//  The socket to poll for input (changes when the link reconnects), or
//  NULL while it has none.
void *
    shovel_link_socket (shovel_link_t *self);

//  Read and act on every frame waiting on the socket.
void
    shovel_link_recv (shovel_link_t *self);

//  Timers: heartbeats, reconnect backoff, retries, rates, alerts.
void
    shovel_link_tick (shovel_link_t *self);

//  Monotonic ms at which tick next has work.
int64_t
    shovel_link_next_wakeup (shovel_link_t *self);

//  Called after every successful commit of the node's log: sends what
//  had to wait until a record was durable (LINK_SKIP).
void
    shovel_link_committed (shovel_link_t *self);

//  Called after a commit of the node's log failed: the acks the link
//  appended since the last good commit were dropped with it; they are
//  appended again for the next commit.
void
    shovel_link_commit_failed (shovel_link_t *self);

//  The link's configuration.
const cfg_shovel_t *
    shovel_link_cfg (shovel_link_t *self);

//  Figures of DESIGN.md §3.
typedef struct {
    shovel_state_t state;
    uint64_t backlog_messages;
    uint64_t backlog_bytes;
    double lag_seconds;
    uint64_t forwarded_total;   //  first sends
    uint64_t resent_total;      //  sends again after reconnect or refusal
    uint64_t confirmed_total;
    uint64_t duplicates_total;  //  resends the destination already had
    uint64_t dead_lettered_total;
    uint64_t rejected_total;    //  refusals reported by the destination
    uint64_t reconnects_total;
    uint64_t loops_total;       //  refused because the path had the peer
    uint64_t lost_total;        //  refused after on-publish/no-ack settled
    double forward_rate;        //  confirmed msg/s, smoothed
    uint32_t window;            //  credit window (messages in flight)
    double rtt_ms;              //  confirm round trip, smoothed
    bool lag_alert;
    bool backlog_alert;
    const char *last_error;     //  "" when none
    const char *peer;           //  destination node id once known
} shovel_stats_t;

void
    shovel_link_stats (shovel_link_t *self, shovel_stats_t *stats);

const char *
    shovel_state_name (shovel_state_t state);

#endif
