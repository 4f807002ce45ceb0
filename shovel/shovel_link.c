//  shovel/shovel_link.c — the sending half of a shovel link. See the
//  design block in shovel_link.h and docs/protocol.md.
#define _GNU_SOURCE
#include "shovel_link.h"
#include "security.h"

#include <czmq.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SHOVEL_MAX_WINDOW 65536     //  messages in flight, upper bound
#define SHOVEL_MAX_WINDOW_BYTES (256u * 1024 * 1024)
#define SHOVEL_HOLD INT64_MAX       //  retry_at: wait for a commit

//  A message taken from the source queue and not yet settled.
typedef struct {
    uint64_t seq;               //  link sequence
    qentry_t entry;             //  where it is in the source queue
    int64_t sent_at;            //  mono ms of the last send, 0 = unsent
    uint16_t attempts;          //  refusals by the destination
} s_flight_t;

struct _shovel_link_t {
    cfg_shovel_t cfg;           //  copy; strings owned
    char *node_id;              //  this node
    broker_t *broker;
    void *zmq_ctx;
    void *sock;                 //  DEALER to the destination, or NULL
    consumer_t *consumer;       //  on the source queue
    uint64_t qid;               //  source queue id
    char mark_key[PROTO_MAX_NAME + 3];  //  "s/NAME": last settled seq
    char dlq[PROTO_MAX_NAME + 1];       //  dead-letter queue at the source
    shovel_state_t state;
    uint64_t epoch;             //  of the current connection
    bool welcomed;              //  the destination answered this epoch
    bool synced;                //  a WELCOME was seen since the link began
    char peer[PROTO_MAX_NAME + 1];
    s_flight_t *ring;           //  window, in seq order
    size_t head, count, cap;
    size_t next_send;           //  index in the window of the next send
    uint64_t next_seq;          //  seq of the next message taken
    uint32_t window;            //  credit: messages in flight
    uint64_t window_bytes;      //  bytes in the window
    int64_t last_rx;            //  mono ms of the last frame received
    int64_t last_ping;
    int64_t reconnect_at;       //  mono ms of the next connect attempt
    uint64_t backoff_ms;        //  current reconnect / retry delay
    int64_t retry_at;           //  resume sending at (0 = now)
    int64_t last_progress;      //  mono ms of the last confirm advance
    uint64_t skip_pending;      //  seq to skip once its record is durable
    bool limited;               //  delete_after set
    uint64_t limit;             //  delete_after: last link seq to move
    uint64_t taken_total;       //  link seq of the last message taken
    bool window_was_full;       //  credit-limited since the last tick
    double min_rtt_ms;          //  lowest confirm round trip seen, 0 = none
    int64_t last_grow;          //  mono ms the window last grew
    uint64_t skipped_to;        //  weaker ack modes: last seq stepped over
    store_settle_t *unsynced;   //  acks appended since the last commit
    size_t nunsynced, unsynced_cap;
    uint64_t unsynced_mark;     //  the mark they carry
    int64_t last_rate_at;
    uint64_t confirmed_at_rate;
    shovel_stats_t stats;
    char last_error[256];
    fedq_buf_t out;             //  scratch: encoded header
};

static void s_disconnect (shovel_link_t *self, const char *why);
static void s_on_confirm (shovel_link_t *self, uint64_t upto);
static void s_settle_sent (shovel_link_t *self);
static void s_pump (shovel_link_t *self);
static void s_on_confirm (shovel_link_t *self, uint64_t upto);
static void s_grow_window (shovel_link_t *self, int64_t now);

const char *
shovel_state_name (shovel_state_t state)
{
    static const char *names[] = {"starting", "running", "reconnecting",
                                  "blocked", "stopped"};
    return state <= SHOVEL_STOPPED ? names[state] : "unknown";
}

static char *
s_dup (const char *s)
{
    return s ? strdup (s) : NULL;
}

static s_flight_t *
s_at (shovel_link_t *self, size_t i)
{
    return &self->ring[(self->head + i) & (self->cap - 1)];
}

static void
s_error (shovel_link_t *self, const char *fmt, ...)
  __attribute__ ((format (printf, 2, 3)));

static void
s_error (shovel_link_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->last_error, sizeof self->last_error, fmt, args);
    va_end (args);
}

//  --------------------------------------------------------------------
//  Sending

static fedq_rc_t
s_send_frame (shovel_link_t *self, const proto_frame_t *frame,
              const uint8_t *env, size_t env_len, const uint8_t *body,
              size_t body_len)
{
    if (!self->sock)
        return FEDQ_EAGAIN;
    self->out.size = 0;
    proto_frame_encode (frame, &self->out);
    int more = env ? ZMQ_SNDMORE : 0;
    if (zmq_send (self->sock, self->out.data, self->out.size,
                  more | ZMQ_DONTWAIT)
        < 0)
        return FEDQ_EAGAIN;
    if (env) {
        zmq_send (self->sock, env, env_len, ZMQ_SNDMORE);
        zmq_send (self->sock, body, body_len, 0);
    }
    return FEDQ_OK;
}

static proto_frame_t
s_frame (shovel_link_t *self, proto_cmd_t cmd)
{
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = cmd,
                       .present = PF_LINK | PF_EPOCH,
                       .link = fedq_str_of (self->cfg.name),
                       .epoch = self->epoch};
    return f;
}

//  Send window entry i; FEDQ_EAGAIN when the pipe is full.
static fedq_rc_t
s_send_at (shovel_link_t *self, size_t i)
{
    s_flight_t *flight = s_at (self, i);
    store_msg_t rec;
    if (broker_read (self->broker, &flight->entry, &rec)) {
        //  A record that fails its check is never forwarded: it goes to
        //  the dead-letter queue like a refused message.
        s_error (self, "message at log position %" PRIu64
                       " failed its checksum; not forwarded",
                 flight->entry.pos);
        return FEDQ_ECORRUPT;
    }
    proto_frame_t f = s_frame (self, PROTO_LINK_MSG);
    f.present |= PF_SEQ | PF_EXCHANGE;
    f.seq = flight->seq;
    if (self->cfg.dest_queue) {
        f.exchange = fedq_str_of ("");
        f.present |= PF_KEY;
        f.key = fedq_str_of (self->cfg.dest_queue);
    }
    else {
        f.exchange = fedq_str_of (self->cfg.dest_exchange
                                    ? self->cfg.dest_exchange
                                    : "");
        if (self->cfg.dest_routing_key) {
            f.present |= PF_KEY;
            f.key = fedq_str_of (self->cfg.dest_routing_key);
        }
    }
    char digest[SECURITY_SHA256_HEX];
    if (self->cfg.verify_digest) {
        security_sha256_hex (rec.body, rec.body_len, digest);
        f.present |= PF_DIGEST;
        f.digest = fedq_str_of (digest);
    }
    fedq_rc_t rc = s_send_frame (self, &f, rec.env, rec.env_len, rec.body,
                                 rec.body_len);
    if (rc)
        return rc;
    if (flight->sent_at)
        self->stats.resent_total++;
    else
        self->stats.forwarded_total++;
    flight->sent_at = fedq_mono_ms ();
    return FEDQ_OK;
}

static void
s_remove_head (shovel_link_t *self)
{
    s_flight_t *flight = s_at (self, 0);
    self->window_bytes -= flight->entry.size;
    self->head = (self->head + 1) & (self->cap - 1);
    self->count--;
    if (self->next_send)
        self->next_send--;
    //  s_deliver said EAGAIN when the window was full of bytes, which
    //  blocks the consumer until its owner clears it: room again now.
    //  (Without this a link of large messages stopped for good once its
    //  window held 256 MiB: scripts/bench shovel at 16 KiB,
    //  test_shovel_basics.py test_large_messages_fill_the_window.)
    if (self->consumer)
        self->consumer->blocked = false;
}

//  Dead-letter the head of the window at the source, with the link's mark
//  moving past it in the same record; the destination is told to skip
//  its sequence once that record is durable.
static void
s_dead_letter_head (shovel_link_t *self, const char *reason)
{
    s_flight_t *flight = s_at (self, 0);
    uint64_t seq = flight->seq;
    fedq_rc_t rc = broker_dead_letter_marked (self->broker, self->qid,
                                              &flight->entry, self->dlq,
                                              reason, self->mark_key, seq);
    if (rc) {
        s_error (self, "cannot dead-letter seq %" PRIu64 " to %s: %s", seq,
                 self->dlq, fedq_rc_name (rc));
        self->retry_at = fedq_mono_ms () + 1000;
        return;
    }
    fedq_warn ("shovel=%s seq=%" PRIu64 " dead-lettered to queue %s: %s",
               self->cfg.name, seq, self->dlq, reason);
    s_remove_head (self);
    broker_consumer_settled (self->broker, self->consumer);
    self->stats.dead_lettered_total++;
    self->skip_pending = seq;
    self->next_send = 0;
    self->retry_at = SHOVEL_HOLD;
}

//  delete_after: once every message up to the stop point is settled
//  (confirmed or dead-lettered), stop and release the source queue.
static void
s_check_limit (shovel_link_t *self)
{
    if (!self->limited || self->taken_total < self->limit || self->count
        || self->skip_pending || self->state == SHOVEL_STOPPED)
        return;
    fedq_info ("shovel=%s stopped: delete_after reached at link seq %" PRIu64,
               self->cfg.name, self->limit);
    self->state = SHOVEL_STOPPED;
    broker_cancel (self->broker, &self->consumer);
    broker_set_owner (self->broker, self->cfg.source_queue, NULL);
    if (self->sock) {
        zmq_close (self->sock);
        self->sock = NULL;
    }
}

static void
s_pump (shovel_link_t *self)
{
    if (!self->welcomed || self->retry_at)
        return;
    while (self->next_send < self->count) {
        fedq_rc_t rc = s_send_at (self, self->next_send);
        if (rc == FEDQ_ECORRUPT && self->next_send == 0) {
            s_dead_letter_head (self, "corrupt");
            return;
        }
        if (rc)
            return;
        self->next_send++;
    }
    s_settle_sent (self);
}

//  ack_mode on-publish and no-ack: a message is settled at the source as
//  soon as ZeroMQ took it, without waiting for the destination's durable
//  write (faster; what is in flight when the link or a node fails is
//  lost, and a refusal cannot be retried: docs/operations.md).
static void
s_settle_sent (shovel_link_t *self)
{
    if (self->cfg.ack_mode != CFG_ACK_ON_CONFIRM && self->next_send)
        s_on_confirm (self, s_at (self, self->next_send - 1)->seq);
}

//  The broker hands the link a message of its source queue.
static fedq_rc_t
s_deliver (consumer_t *consumer, const qentry_t *entry, const store_msg_t *rec)
{
    shovel_link_t *self = consumer->owner;
    if (self->state == SHOVEL_STOPPED
        || (self->limited && self->taken_total >= self->limit))
        return FEDQ_EAGAIN;
    if (self->count && self->window_bytes + entry->size > SHOVEL_MAX_WINDOW_BYTES)
        return FEDQ_EAGAIN;
    if (self->count == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 1024;
        s_flight_t *ring = malloc (cap * sizeof *ring);
        if (!ring)
            return FEDQ_EAGAIN;
        for (size_t i = 0; i < self->count; i++)
            ring[i] = *s_at (self, i);
        free (self->ring);
        self->ring = ring;
        self->head = 0;
        self->cap = cap;
    }
    s_flight_t *flight = s_at (self, self->count);
    flight->seq = self->next_seq++;
    flight->entry = *entry;
    flight->sent_at = 0;
    flight->attempts = 0;
    self->count++;
    self->window_bytes += entry->size;
    self->taken_total++;
    if (self->count >= self->window)
        self->window_was_full = true;
    //  Send straight away when the pipe is open and nothing waits before.
    if (self->welcomed && !self->retry_at
        && self->next_send == self->count - 1) {
        (void) rec;
        if (s_send_at (self, self->next_send) == FEDQ_OK) {
            self->next_send++;
            s_settle_sent (self);
        }
    }
    return FEDQ_OK;
}

//  The source queue was deleted under the link.
static void
s_cancelled (consumer_t *consumer)
{
    shovel_link_t *self = consumer->owner;
    self->consumer = NULL;
    //  What it held is settled by the broker's holder rule: ack each so
    //  the log can free them.
    for (size_t i = 0; i < self->count; i++)
        broker_ack (self->broker, self->qid, &s_at (self, i)->entry);
    self->count = 0;
    self->next_send = 0;
    self->window_bytes = 0;
    self->state = SHOVEL_STOPPED;
    s_error (self, "source queue \"%s\" was deleted", self->cfg.source_queue);
    fedq_warn ("shovel=%s stopped: source queue %s was deleted",
               self->cfg.name, self->cfg.source_queue);
    if (self->sock) {
        zmq_close (self->sock);
        self->sock = NULL;
    }
}

//  --------------------------------------------------------------------
//  Connection

static uint64_t
s_jitter (uint64_t ms)
{
    //  Between 75% and 125% of the delay, so links do not reconnect in step.
    return ms * 3 / 4 + (uint64_t) (random () % (long) (ms / 2 + 1));
}

static void
s_connect (shovel_link_t *self)
{
    self->sock = zmq_socket (self->zmq_ctx, ZMQ_DEALER);
    int zero = 0, hwm = 200000;
    int hb = (int) self->cfg.heartbeat_ms;
    int hb_timeout = hb * 3;
    zmq_setsockopt (self->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->sock, ZMQ_HEARTBEAT_IVL, &hb, sizeof hb);
    zmq_setsockopt (self->sock, ZMQ_HEARTBEAT_TIMEOUT, &hb_timeout,
                    sizeof hb_timeout);
    char why[300];
    if (self->cfg.dest_server_key
        && security_client (self->sock, self->cfg.dest_server_key, why,
                            sizeof why)) {
        s_error (self, "%s", why);
        zmq_close (self->sock);
        self->sock = NULL;
        self->reconnect_at = fedq_mono_ms ()
                             + (int64_t) s_jitter (self->backoff_ms);
        return;
    }
    if (zmq_connect (self->sock, self->cfg.dest_endpoint)) {
        s_error (self, "cannot connect to %s: %s", self->cfg.dest_endpoint,
                 zmq_strerror (errno));
        zmq_close (self->sock);
        self->sock = NULL;
        self->reconnect_at = fedq_mono_ms () + (int64_t) s_jitter (
                                                 self->backoff_ms);
        return;
    }
    self->epoch++;
    self->welcomed = false;
    int64_t now = fedq_mono_ms ();
    self->last_rx = now;
    self->last_ping = now;
    proto_frame_t f = s_frame (self, PROTO_LINK_HELLO);
    f.present |= PF_NODE;
    f.node = fedq_str_of (self->node_id);
    s_send_frame (self, &f, NULL, 0, NULL, 0);
}

static void
s_disconnect (shovel_link_t *self, const char *why)
{
    if (self->sock) {
        zmq_close (self->sock);
        self->sock = NULL;
    }
    if (self->state != SHOVEL_RECONNECTING)
        fedq_warn ("shovel=%s peer=%s reconnecting: %s", self->cfg.name,
                   self->cfg.dest_endpoint, why);
    s_error (self, "%s", why);
    self->welcomed = false;
    self->next_send = 0;
    self->retry_at = 0;
    self->skip_pending = 0;     //  the welcome of the next epoch resyncs
    self->state = SHOVEL_RECONNECTING;
    self->stats.reconnects_total++;
    self->reconnect_at = fedq_mono_ms () + (int64_t) s_jitter (self->backoff_ms);
    self->backoff_ms *= 2;
    if (self->backoff_ms > self->cfg.max_reconnect_delay_ms)
        self->backoff_ms = self->cfg.max_reconnect_delay_ms;
}

//  --------------------------------------------------------------------
//  Frames from the destination

static void
s_on_welcome (shovel_link_t *self, const proto_frame_t *f)
{
    self->welcomed = true;
    self->synced = true;
    self->state = SHOVEL_RUNNING;
    self->backoff_ms = self->cfg.reconnect_delay_ms;
    self->last_progress = fedq_mono_ms ();
    if (f->present & PF_NODE)
        snprintf (self->peer, sizeof self->peer, "%.*s", (int) f->node.len,
                  f->node.ptr);
    //  The destination may be behind our mark (a skip it never made
    //  durable, or a wiped data directory): bring it forward first.
    uint64_t mark = broker_mark (self->broker, self->mark_key);
    if (f->upto < mark) {
        proto_frame_t skip = s_frame (self, PROTO_LINK_SKIP);
        skip.present |= PF_SEQ;
        skip.seq = mark;
        s_send_frame (self, &skip, NULL, 0, NULL, 0);
    }
    //  What the destination already stored (its confirm was lost with the
    //  connection) is settled now, not sent again; these are the
    //  duplicates the destination would otherwise drop.
    size_t had = 0;
    for (; had < self->count && s_at (self, had)->seq <= f->upto; had++)
        s_at (self, had)->sent_at = 0;      //  no round-trip sample
    if (had) {
        self->stats.duplicates_total += had;
        s_on_confirm (self, f->upto);
        if (self->state == SHOVEL_STOPPED)
            return;
    }
    self->last_error[0] = 0;
    self->next_send = 0;
    self->retry_at = 0;
    fedq_info ("shovel=%s peer=%s running: destination has seq %" PRIu64
               ", %zu in flight to resend",
               self->cfg.name, self->peer, f->upto, self->count);
    s_pump (self);
}

static void
s_on_confirm (shovel_link_t *self, uint64_t upto)
{
    size_t n = 0;
    while (n < self->count && s_at (self, n)->seq <= upto)
        n++;
    if (n == 0)
        return;
    bool was_full = self->count >= self->window;
    double sample = -1;         //  this confirm's round trip, ms
    qentry_t entries[1024];
    int64_t now = fedq_mono_ms ();
    while (n) {
        size_t chunk = n < 1024 ? n : 1024;
        for (size_t i = 0; i < chunk; i++)
            entries[i] = s_at (self, i)->entry;
        uint64_t last_seq = s_at (self, chunk - 1)->seq;
        int64_t sent_at = s_at (self, chunk - 1)->sent_at;
        if (broker_ack_marked (self->broker, self->qid, entries, chunk,
                               self->mark_key, last_seq)) {
            s_error (self, "cannot record confirmed messages in the log");
            return;
        }
        //  Kept until a commit made them durable: a failed commit drops
        //  them from the log, and later acks must not carry the mark past
        //  messages whose acks were lost (they would be sent again under
        //  new sequences after a restart).
        if (self->nunsynced + chunk > self->unsynced_cap) {
            self->unsynced_cap = (self->nunsynced + chunk) * 2;
            self->unsynced = realloc (self->unsynced,
                                      self->unsynced_cap
                                        * sizeof *self->unsynced);
            if (!self->unsynced)
                abort ();
        }
        for (size_t i = 0; i < chunk; i++) {
            self->unsynced[self->nunsynced].qid = self->qid;
            self->unsynced[self->nunsynced++].pos = entries[i].pos;
        }
        self->unsynced_mark = last_seq;
        for (size_t i = 0; i < chunk; i++) {
            s_remove_head (self);
            broker_consumer_settled (self->broker, self->consumer);
        }
        self->stats.confirmed_total += chunk;
        if (sent_at) {
            double rtt = (double) (now - sent_at);
            self->stats.rtt_ms = self->stats.rtt_ms
                                   ? self->stats.rtt_ms * 0.8 + rtt * 0.2
                                   : rtt;
            sample = rtt;
        }
        n -= chunk;
    }
    //  Slow start on long links: a window still full when a confirm comes
    //  back is what limits the link; double it once per round trip while
    //  the round trip stays near its floor (a longer one means the
    //  destination is the limit, and more credit would only queue there).
    //  Growing once a second (s_update_rates) took 6 s to open a 50 ms
    //  link from 1000 to 65536 and held a WAN drain to ~20k msg/s. On a
    //  LAN (round trip under 10 ms) a bigger window only made drains
    //  slower (scripts/bench shovel), so there it keeps the slow pace.
    if (sample >= 0) {
        if (self->min_rtt_ms <= 0 || sample < self->min_rtt_ms)
            self->min_rtt_ms = sample;
        if (was_full && self->min_rtt_ms >= 10
            && now - self->last_grow >= (int64_t) sample
            && sample <= 1.5 * self->min_rtt_ms + 1)
            s_grow_window (self, now);
    }
    self->last_progress = now;
    if (self->state == SHOVEL_BLOCKED && !self->retry_at)
        self->state = SHOVEL_RUNNING;
    s_check_limit (self);
}

static bool
s_is_transient (int32_t code)
{
    return code == FEDQ_EFULL || code == FEDQ_EIO || code == FEDQ_ENOSPC
           || code == FEDQ_ETIMEOUT;
}

static void
s_on_reject (shovel_link_t *self, const proto_frame_t *f)
{
    self->stats.rejected_total++;
    int64_t now = fedq_mono_ms ();
    bool at_head = self->count && s_at (self, 0)->seq == f->seq;
    //  A destination that refused the head answers the frames already in
    //  flight behind it with EAGAIN (out of sequence). While the go-back
    //  for the head is scheduled they say nothing new: they must neither
    //  hide the cause in last_error ("queue full") nor cut its backoff
    //  short (test_shovel_full.py).
    if (!at_head && self->retry_at && f->code == FEDQ_EAGAIN)
        return;
    s_error (self, "destination refused seq %" PRIu64 ": %.*s (%s)", f->seq,
             (int) f->text.len, f->text.ptr ? f->text.ptr : "",
             fedq_rc_name ((fedq_rc_t) f->code));
    uint64_t first = self->count ? s_at (self, 0)->seq : self->next_seq;
    if (self->cfg.ack_mode != CFG_ACK_ON_CONFIRM && f->seq < first) {
        //  Weaker ack modes settled it already: it is lost, with what was
        //  sent behind it (the destination takes a link's messages only in
        //  sequence). Counted, and the destination steps over them all.
        if (f->seq <= self->skipped_to)
            return;
        self->stats.lost_total += first - f->seq;
        self->skipped_to = first - 1;
        fedq_warn ("shovel=%s seq=%" PRIu64 "..%" PRIu64 " lost: refused "
                   "by the destination after ack_mode %s settled them",
                   self->cfg.name, f->seq, first - 1,
                   self->cfg.ack_mode == CFG_ACK_NO_ACK ? "no-ack"
                                                        : "on-publish");
        proto_frame_t skip = s_frame (self, PROTO_LINK_SKIP);
        skip.present |= PF_SEQ;
        skip.seq = first - 1;
        s_send_frame (self, &skip, NULL, 0, NULL, 0);
        self->next_send = 0;
        self->retry_at = now + 10;
        return;
    }
    if (!at_head) {
        //  Refused something behind the head: go back and resend.
        self->next_send = 0;
        self->retry_at = now + 100;
        return;
    }
    s_flight_t *head = s_at (self, 0);
    if (f->code == FEDQ_ELOOP) {
        self->stats.loops_total++;
        s_dead_letter_head (self, "loop");
        return;
    }
    if (f->code == FEDQ_EAGAIN) {
        //  The destination expects an earlier sequence: resynchronise.
        s_disconnect (self, "destination out of sequence; reconnecting");
        return;
    }
    uint64_t delay = self->cfg.reconnect_delay_ms;
    if (s_is_transient (f->code)) {
        self->state = SHOVEL_BLOCKED;
        delay = self->backoff_ms;
        self->backoff_ms *= 2;
        if (self->backoff_ms > self->cfg.max_reconnect_delay_ms)
            self->backoff_ms = self->cfg.max_reconnect_delay_ms;
    }
    else if (++head->attempts >= self->cfg.max_attempts) {
        char reason[64];
        snprintf (reason, sizeof reason, "refused:%s",
                  fedq_rc_name ((fedq_rc_t) f->code));
        s_dead_letter_head (self, reason);
        return;
    }
    self->next_send = 0;
    self->retry_at = now + (int64_t) delay;
}

void
shovel_link_recv (shovel_link_t *self)
{
    for (int n = 0; n < 10000 && self->sock; n++) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&part);
            return;
        }
        bool more = zmq_msg_more (&part);
        proto_frame_t f;
        const char *error = NULL;
        fedq_rc_t rc = proto_frame_decode (zmq_msg_data (&part),
                                           zmq_msg_size (&part), &f, &error);
        //  Commands from a destination have one part; drop any others.
        while (more) {
            zmq_msg_t extra;
            zmq_msg_init (&extra);
            zmq_msg_recv (&extra, self->sock, 0);
            more = zmq_msg_more (&extra);
            zmq_msg_close (&extra);
        }
        self->last_rx = fedq_mono_ms ();
        if (rc) {
            s_error (self, "malformed frame from destination: %s", error);
            zmq_msg_close (&part);
            continue;
        }
        bool ours = (f.present & PF_EPOCH) && f.epoch == self->epoch;
        switch (f.cmd) {
            case PROTO_LINK_WELCOME:
                if (ours)
                    s_on_welcome (self, &f);
                break;
            case PROTO_LINK_CONFIRM:
                if (ours && self->welcomed)
                    s_on_confirm (self, f.upto);
                break;
            case PROTO_LINK_REJECT:
                if (ours && self->welcomed)
                    s_on_reject (self, &f);
                break;
            case PROTO_ERROR:
                if (f.code == FEDQ_ESESSION) {
                    zmq_msg_close (&part);
                    s_disconnect (self, "the destination does not know this "
                                        "connection (it restarted)");
                    return;
                }
                if (f.code == FEDQ_EDENIED) {
                    //  Refused by the destination's authorized keys: back
                    //  off and try again (a reload there may allow it).
                    char why[320];
                    snprintf (why, sizeof why, "destination refused: %.*s",
                              (int) f.text.len, f.text.ptr ? f.text.ptr : "");
                    zmq_msg_close (&part);
                    s_disconnect (self, why);
                    return;
                }
                s_error (self, "destination error: %.*s", (int) f.text.len,
                         f.text.ptr ? f.text.ptr : "");
                fedq_warn ("shovel=%s destination error: %.*s",
                           self->cfg.name, (int) f.text.len,
                           f.text.ptr ? f.text.ptr : "");
                break;
            default: break;     //  PONG and anything else: alive
        }
        zmq_msg_close (&part);
    }
}

void
shovel_link_committed (shovel_link_t *self)
{
    self->nunsynced = 0;
    if (!self->skip_pending)
        return;
    if (self->welcomed) {
        proto_frame_t skip = s_frame (self, PROTO_LINK_SKIP);
        skip.present |= PF_SEQ;
        skip.seq = self->skip_pending;
        if (s_send_frame (self, &skip, NULL, 0, NULL, 0))
            return;             //  pipe full: try after the next commit
    }
    self->skip_pending = 0;
    self->retry_at = 0;
    self->next_send = 0;
    s_check_limit (self);       //  the skipped one may have been the last
    if (self->state != SHOVEL_STOPPED)
        s_pump (self);
}

void
shovel_link_commit_failed (shovel_link_t *self)
{
    //  Append the lost acks again (with their mark) for the next commit.
    for (size_t done = 0; done < self->nunsynced;) {
        size_t n = self->nunsynced - done;
        if (n > STORE_MAX_SETTLES)
            n = STORE_MAX_SETTLES;
        if (broker_append_acks_marked (self->broker, self->unsynced + done, n,
                                       self->mark_key, self->unsynced_mark))
            break;
        done += n;
    }
}

//  --------------------------------------------------------------------
//  Timers

static void
s_grow_window (shovel_link_t *self, int64_t now)
{
    if (self->window >= SHOVEL_MAX_WINDOW || !self->welcomed)
        return;
    self->window = self->window * 2 > SHOVEL_MAX_WINDOW ? SHOVEL_MAX_WINDOW
                                                        : self->window * 2;
    self->last_grow = now;
    if (self->consumer) {
        self->consumer->prefetch = self->window;
        broker_wake (self->broker, self->consumer->queue);
    }
}

static void
s_update_rates (shovel_link_t *self, int64_t now)
{
    if (!self->last_rate_at) {
        self->last_rate_at = now;
        self->confirmed_at_rate = self->stats.confirmed_total;
        return;
    }
    int64_t elapsed = now - self->last_rate_at;
    if (elapsed < 1000)
        return;
    double rate = (double) (self->stats.confirmed_total
                            - self->confirmed_at_rate)
                  * 1000.0 / (double) elapsed;
    self->stats.forward_rate = self->stats.forward_rate * 0.5 + rate * 0.5;
    self->last_rate_at = now;
    self->confirmed_at_rate = self->stats.confirmed_total;
    //  Credit sized to bandwidth x round trip: a window that stayed full
    //  for a whole second is what limits the link, so it grows.
    if (self->window_was_full)
        s_grow_window (self, now);
    self->window_was_full = false;
}

static void
s_update_alerts (shovel_link_t *self)
{
    shovel_stats_t s;
    shovel_link_stats (self, &s);
    bool lag = self->cfg.lag_alert_ms
               && s.lag_seconds * 1000.0 > (double) self->cfg.lag_alert_ms;
    bool backlog = self->cfg.backlog_alert
                   && s.backlog_messages > self->cfg.backlog_alert;
    if (lag != self->stats.lag_alert)
        fedq_log_at (lag ? FEDQ_LOG_WARN : FEDQ_LOG_INFO, __FILE__, __LINE__,
                     "shovel=%s alert=lag %s: lag %.1fs, threshold %.1fs",
                     self->cfg.name, lag ? "firing" : "cleared",
                     s.lag_seconds, (double) self->cfg.lag_alert_ms / 1000.0);
    if (backlog != self->stats.backlog_alert)
        fedq_log_at (backlog ? FEDQ_LOG_WARN : FEDQ_LOG_INFO, __FILE__,
                     __LINE__,
                     "shovel=%s alert=backlog %s: %" PRIu64
                     " messages, threshold %" PRIu64,
                     self->cfg.name, backlog ? "firing" : "cleared",
                     s.backlog_messages, self->cfg.backlog_alert);
    self->stats.lag_alert = lag;
    self->stats.backlog_alert = backlog;
}

void
shovel_link_tick (shovel_link_t *self)
{
    int64_t now = fedq_mono_ms ();
    s_update_rates (self, now);
    s_update_alerts (self);
    if (self->state == SHOVEL_STOPPED)
        return;
    if (!self->sock) {
        if (now >= self->reconnect_at)
            s_connect (self);
        return;
    }
    int64_t silent = now - self->last_rx;
    if (silent > 3 * (int64_t) self->cfg.heartbeat_ms) {
        char why[160];
        snprintf (why, sizeof why,
                  "no answer from %s for %" PRId64 " ms",
                  self->cfg.dest_endpoint, silent);
        s_disconnect (self, why);
        return;
    }
    //  Connected, holding messages, and no confirm for a long time: the
    //  destination answers pings but not this link. Start over.
    int64_t stall = now - self->last_progress;
    if (self->welcomed && self->count && !self->retry_at
        && stall > 10 * (int64_t) self->cfg.heartbeat_ms && stall > 10000) {
        char why[160];
        snprintf (why, sizeof why,
                  "no confirm from %s for %" PRId64 " ms with %zu in flight",
                  self->cfg.dest_endpoint, stall, self->count);
        s_disconnect (self, why);
        return;
    }
    if (now - self->last_ping >= (int64_t) self->cfg.heartbeat_ms) {
        proto_frame_t ping = {.version = PROTO_VERSION, .cmd = PROTO_PING};
        s_send_frame (self, &ping, NULL, 0, NULL, 0);
        self->last_ping = now;
    }
    if (self->retry_at && self->retry_at != SHOVEL_HOLD
        && now >= self->retry_at) {
        self->retry_at = 0;
        s_pump (self);
    }
    else if (!self->retry_at)
        s_pump (self);          //  after a full pipe
}

int64_t
shovel_link_next_wakeup (shovel_link_t *self)
{
    int64_t next = self->last_rate_at + 1000;
    if (self->state == SHOVEL_STOPPED)
        return next;
    if (!self->sock)
        return self->reconnect_at < next ? self->reconnect_at : next;
    int64_t ping = self->last_ping + (int64_t) self->cfg.heartbeat_ms;
    if (ping < next)
        next = ping;
    if (self->retry_at && self->retry_at != SHOVEL_HOLD
        && self->retry_at < next)
        next = self->retry_at;
    if (self->welcomed && !self->retry_at && self->next_send < self->count)
        next = fedq_mono_ms () + 1;     //  a full pipe: try again soon
    return next;
}

//  --------------------------------------------------------------------
//  Life cycle

static void
s_copy_cfg (cfg_shovel_t *to, const cfg_shovel_t *from)
{
    *to = *from;
    to->name = s_dup (from->name);
    to->source_queue = s_dup (from->source_queue);
    to->dest_endpoint = s_dup (from->dest_endpoint);
    to->dest_exchange = s_dup (from->dest_exchange);
    to->dest_routing_key = s_dup (from->dest_routing_key);
    to->dest_queue = s_dup (from->dest_queue);
    to->dest_server_key = s_dup (from->dest_server_key);
    if (to->heartbeat_ms < 100)
        to->heartbeat_ms = 100;
    if (to->reconnect_delay_ms < 10)
        to->reconnect_delay_ms = 10;
    if (to->max_reconnect_delay_ms < to->reconnect_delay_ms)
        to->max_reconnect_delay_ms = to->reconnect_delay_ms;
    if (to->max_attempts == 0)
        to->max_attempts = 1;
    if (to->prefetch == 0)
        to->prefetch = 1000;
}

static void
s_free_cfg (cfg_shovel_t *cfg)
{
    free (cfg->name);
    free (cfg->source_queue);
    free (cfg->dest_endpoint);
    free (cfg->dest_exchange);
    free (cfg->dest_routing_key);
    free (cfg->dest_queue);
    free (cfg->dest_server_key);
}

shovel_link_t *
shovel_link_new (const cfg_shovel_t *cfg, const char *node_id,
                 broker_t *broker, void *zmq_ctx)
{
    shovel_link_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    s_copy_cfg (&self->cfg, cfg);
    self->node_id = strdup (node_id);
    self->broker = broker;
    self->zmq_ctx = zmq_ctx;
    self->window = self->cfg.prefetch;
    self->backoff_ms = self->cfg.reconnect_delay_ms;
    snprintf (self->mark_key, sizeof self->mark_key, "s/%s", self->cfg.name);
    snprintf (self->dlq, sizeof self->dlq, "%s.dlq", self->cfg.name);
    //  The epoch starts from the clock so that a restarted node never
    //  reuses one.
    self->epoch = (uint64_t) fedq_wall_ms () * 1000;
    self->next_seq = broker_mark (broker, self->mark_key) + 1;

    queue_t *queue = broker_queue (broker, self->cfg.source_queue);
    if (!queue) {
        fedq_error ("shovel=%s: source queue \"%s\" is not declared",
                    self->cfg.name, self->cfg.source_queue);
        goto failed;
    }
    self->qid = queue->qid;
    if (self->cfg.delete_after != CFG_DELETE_NEVER) {
        //  The stop point is a link sequence kept as a durable mark, so a
        //  restart does not move another batch (it did: a node restarted
        //  after "delete_after: 5" moved 5 more). The key names the
        //  setting: a reload with another delete_after starts afresh.
        //  Stored plus one, as 0 means "never set".
        bool by_length = self->cfg.delete_after == CFG_DELETE_QUEUE_LENGTH;
        char key[PROTO_MAX_NAME + 32];
        if (by_length)
            snprintf (key, sizeof key, "d/%s/queue-length", self->cfg.name);
        else
            snprintf (key, sizeof key, "d/%s/%" PRIu64, self->cfg.name,
                      self->cfg.delete_after_count);
        uint64_t moved = self->next_seq - 1;
        uint64_t stop = broker_mark (broker, key);
        if (stop == 0) {
            stop = moved + 1
                   + (by_length ? queue_depth (queue)
                                : self->cfg.delete_after_count);
            if (broker_set_mark (broker, key, stop))
                goto failed;
        }
        self->limited = true;
        self->limit = stop - 1;
        self->taken_total = moved;
    }
    if (broker_set_owner (broker, self->cfg.source_queue, self->cfg.name))
        goto failed;
    if (queue->nconsumers) {
        fedq_warn ("shovel=%s: queue \"%s\" had %zu client consumers; "
                   "they keep what they hold but get nothing more",
                   self->cfg.name, self->cfg.source_queue, queue->nconsumers);
    }
    if (broker_consume (broker, self->cfg.source_queue, self->cfg.name,
                        self->window, false, self->cfg.name, self,
                        s_deliver, &self->consumer))
        goto failed;
    self->consumer->cancelled = s_cancelled;
    self->state = SHOVEL_STARTING;
    if (self->limited && self->taken_total >= self->limit) {
        self->state = SHOVEL_STOPPED;
        broker_cancel (broker, &self->consumer);
        broker_set_owner (broker, self->cfg.source_queue, NULL);
        return self;
    }
    s_connect (self);
    fedq_info ("shovel=%s started: %s -> %s (next seq %" PRIu64 ")",
               self->cfg.name, self->cfg.source_queue,
               self->cfg.dest_endpoint, self->next_seq);
    return self;
failed:
    shovel_link_destroy (&self);
    return NULL;
}

void
shovel_link_destroy (shovel_link_t **self_p)
{
    shovel_link_t *self = *self_p;
    if (!self)
        return;
    //  What the link holds goes back to the head of the queue, in order.
    for (size_t i = self->count; i-- > 0;)
        broker_requeue (self->broker, self->qid, &s_at (self, i)->entry);
    if (self->consumer)
        broker_cancel (self->broker, &self->consumer);
    if (self->cfg.source_queue && self->qid) {
        queue_t *q = broker_queue (self->broker, self->cfg.source_queue);
        if (q && q->owner && strcmp (q->owner, self->cfg.name) == 0)
            broker_set_owner (self->broker, self->cfg.source_queue, NULL);
    }
    if (self->sock)
        zmq_close (self->sock);
    s_free_cfg (&self->cfg);
    free (self->node_id);
    free (self->ring);
    free (self->unsynced);
    fedq_buf_free (&self->out);
    free (self);
    *self_p = NULL;
}

void
shovel_link_retire (shovel_link_t *self)
{
    //  After a WELCOME every sequence the destination had is settled
    //  (s_on_welcome), so it holds nothing past what this link took.
    //  Before one, an earlier run of the link may have sent up to a full
    //  window past the mark.
    uint64_t mark = broker_mark (self->broker, self->mark_key);
    uint64_t gap = self->synced ? self->next_seq - 1
                                : mark + SHOVEL_MAX_WINDOW;
    if (gap <= mark)
        return;
    if (broker_set_mark (self->broker, self->mark_key, gap)) {
        fedq_error ("shovel=%s: cannot record its retired sequences; if "
                    "it is added back, up to %" PRIu64 " messages may be "
                    "dropped as duplicates",
                    self->cfg.name, gap - mark);
        return;
    }
    fedq_info ("shovel=%s retired: sequences up to %" PRIu64 " are spent; "
               "%zu messages go back to queue %s",
               self->cfg.name, gap, self->count, self->cfg.source_queue);
}

void *
shovel_link_socket (shovel_link_t *self)
{
    return self->sock;
}

const cfg_shovel_t *
shovel_link_cfg (shovel_link_t *self)
{
    return &self->cfg;
}

void
shovel_link_stats (shovel_link_t *self, shovel_stats_t *stats)
{
    *stats = self->stats;
    stats->state = self->state;
    stats->window = self->window;
    stats->last_error = self->last_error;
    stats->peer = self->peer[0] ? self->peer : self->cfg.dest_endpoint;
    queue_t *queue = broker_queue (self->broker, self->cfg.source_queue);
    int64_t oldest = 0;
    if (queue) {
        stats->backlog_messages = queue_depth (queue);
        stats->backlog_bytes = queue->ready_bytes + queue->unacked_bytes;
        if (self->count)
            oldest = s_at (self, 0)->entry.enqueued_at;
        else {
            const qentry_t *head = queue_peek (queue);
            if (head)
                oldest = head->enqueued_at;
        }
    }
    if (self->state == SHOVEL_STOPPED)
        stats->backlog_messages = stats->backlog_bytes = 0;
    stats->lag_seconds = 0;
    if (stats->backlog_messages && oldest) {
        int64_t age = fedq_wall_ms () - oldest;
        stats->lag_seconds = age > 0 ? (double) age / 1000.0 : 0;
    }
    //  Backlog that does not move is never shown as running.
    int64_t stall = fedq_mono_ms () - self->last_progress;
    int64_t limit = 3 * (int64_t) self->cfg.heartbeat_ms;
    if (limit < 3000)
        limit = 3000;
    if (self->state == SHOVEL_RUNNING && stats->backlog_messages
        && stall > limit) {
        stats->state = SHOVEL_BLOCKED;
        if (!self->last_error[0])
            snprintf (self->last_error, sizeof self->last_error,
                      "no confirm from the destination for %" PRId64 " ms",
                      stall);
    }
}
