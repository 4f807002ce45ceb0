//  federation/fed.c — federated queues: peer links, history streams,
//  version vectors and compaction. See the design block in fed.h.
#define _GNU_SOURCE
#include "fed_internal.h"
#include "security.h"

#include <czmq.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *prefix;
    json_t *obj;
} s_vv_ctx_t;

static void
s_vv_collect (void *ctx, const char *key, uint64_t value)
{
    s_vv_ctx_t *c = ctx;
    size_t n = strlen (c->prefix);
    if (strncmp (key, c->prefix, n) == 0 && key[n])
        json_object_set_new (c->obj, key + n, json_integer ((json_int_t) value));
}

//  This node's vector for the queue, as JSON text (caller frees).
static char *
s_vv_json (fed_t *self)
{
    s_vv_ctx_t ctx = {self->q->fed_prefix, json_object ()};
    store_marks_each (broker_store (self->broker), s_vv_collect, &ctx);
    char *text = json_dumps (ctx.obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (ctx.obj);
    return text;
}

static void
s_vv_load (zhashx_t *vv, fedq_str_t text)
{
    json_error_t err;
    json_t *obj = json_loadb (text.ptr ? text.ptr : "{}", text.len, 0, &err);
    const char *key;
    json_t *value;
    json_object_foreach (obj, key, value) {
        if (json_is_integer (value) && json_integer_value (value) > 0
            && strlen (key) <= PROTO_MAX_NAME)
            s_vv_raise (vv, fedq_str_of (key),
                        (uint64_t) json_integer_value (value));
    }
    json_decref (obj);
}

static s_member_t *
s_member_add (fed_t *self, fedq_str_t id)
{
    self->members = realloc (self->members,
                             (self->nmembers + 1) * sizeof *self->members);
    s_member_t *m = calloc (1, sizeof *m);
    if (!self->members || !m)
        abort ();
    snprintf (m->id, sizeof m->id, "%.*s", (int) id.len, id.ptr);
    m->vv = zhashx_new ();
    m->direct = fed_direct_new ();
    self->members[self->nmembers++] = m;
    return m;
}

static s_member_t *
s_member (fed_t *self, fedq_str_t id)
{
    for (size_t i = 0; i < self->nmembers; i++)
        if (fedq_str_eq (id, self->members[i]->id))
            return self->members[i];
    if (id.len == 0 || id.len > PROTO_MAX_NAME)
        return NULL;
    //  A member that links to us without being in our peers list.
    return s_member_add (self, id);
}

//  --------------------------------------------------------------------
//  Streams

proto_frame_t
fed_frame (fed_stream_t *s, proto_cmd_t cmd)
{
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = cmd,
                       .present = PF_QUEUE | PF_EPOCH,
                       .queue = fedq_str_of (s->fed->name),
                       .epoch = s->epoch};
    return f;
}

static fed_stream_t *
s_stream_new (fed_t *self, s_member_t *member, uint64_t epoch,
              fed_send_fn *send, void *send_ctx, bool from_link, bool batch)
{
    fed_stream_t *s = calloc (1, sizeof *s);
    if (!s)
        return NULL;
    s->fed = self;
    s->member = member;
    s->epoch = epoch;
    s->send = send;
    s->send_ctx = send_ctx;
    s->from_link = from_link;
    s->cursor = self->h->compacted;
    s->vv = zhashx_new ();
    s->sent = malloc (s_ring_cap * sizeof *s->sent);
    s->started = fedq_mono_ms ();
    s->skipped_from = FED_NONE;
    if (batch) {
        s->batch = fed_batch_new ();
        s->direct_due = true;
        s->await_direct = true;
    }
    self->streams = realloc (self->streams,
                             (self->nstreams + 1) * sizeof *self->streams);
    if (!s->vv || !s->sent || !self->streams)
        abort ();
    self->streams[self->nstreams++] = s;
    //  The newest connection to a member sends to it: after a restart of
    //  the member the older ones are dead (see s_member_t).
    member->sender = s;
    return s;
}

static void
s_stream_destroy (fed_t *self, fed_stream_t **s_p)
{
    fed_stream_t *s = *s_p;
    if (!s)
        return;
    for (size_t i = 0; i < self->nstreams; i++)
        if (self->streams[i] == s) {
            self->streams[i] = self->streams[--self->nstreams];
            break;
        }
    s_member_t *m = s->member;
    if (m->sender == s) {
        //  Another connection to the member takes over, from where the
        //  member holds everything (it never sends below its own cursor,
        //  so its ring of unacked events stays in index order).
        m->sender = NULL;
        for (size_t i = self->nstreams; i-- > 0 && !m->sender;)
            if (self->streams[i]->member == m)
                m->sender = self->streams[i];
        //  What it skipped as sent directly is not held.
        if (s->skipped_from < m->acked)
            m->acked = s->skipped_from;
        fed_stream_t *next = m->sender;
        if (next && next->sent_count == 0 && next->cursor < m->acked)
            next->cursor = m->acked;
        if (next && next->skipped_from != FED_NONE)
            next->rescan = true;
    }
    fed_resync_free (s);
    fed_keep_free (s);
    fed_batch_destroy (&s->batch);
    zhashx_destroy (&s->vv);
    free (s->sent);
    free (s);
    *s_p = NULL;
}

//  History index below which the peer of this stream has everything.
uint64_t
fed_stream_acked (fed_stream_t *s)
{
    if (s->member->sender != s)
        return s->member->acked;
    return s->sent_count ? s->sent[s->sent_head].index : s->cursor;
}

//  Send the FED_EVENTS being filled; FEDQ_EAGAIN keeps it for later.
fedq_rc_t
fed_stream_flush (fed_stream_t *s)
{
    if (!s->batch || !fed_batch_size (s->batch))
        return FEDQ_OK;
    proto_frame_t f = fed_frame (s, PROTO_FED_EVENTS);
    return fed_batch_send (s->batch, &f, s->send, s->send_ctx);
}

static void
s_stream_pump (fed_stream_t *s)
{
    fed_t *self = s->fed;
    if (s->member->sender != s)
        return;                     //  another connection sends
    //  Whatever a FED_EVENTS frame holds goes first: a resync's frames
    //  (and the history after them) keep the order of the stream.
    if (s->batch && fed_batch_size (s->batch) && fed_stream_flush (s))
        return;                     //  the pipe is still full
    if (s->rescan) {
        //  The peer no longer gets some origin directly: go back to the
        //  first event skipped for that reason, once every event sent is
        //  acknowledged (the ring of unacked events stays in index order).
        //  What left the history meanwhile raised a floor: the resync
        //  below covers it (the cursor is clamped to the history head).
        if (s->sent_count)
            return;
        if (s->skipped_from < s->cursor)
            s->cursor = s->skipped_from;
        s->skipped_from = FED_NONE;
        s->rescan = false;
    }
    //  A member below a history floor gets a full resync first, or the
    //  history would skip what it lacks (fed_resync.c). Its events are
    //  never batched nor skipped as relays: the member needs them.
    if (fed_resync_pump (s))
        return;
    uint64_t end = s_history_end (self);
    if (s->cursor < self->h->compacted)
        s->cursor = self->h->compacted;
    while (s->cursor < end && s->sent_count < s_ring_cap) {
        const qentry_t *e = s_history_at (self, s->cursor);
        store_msg_t rec;
        fedq_str_t origin;
        uint64_t fseq;
        //  Which event it is, without the CRC of the whole record: most
        //  are skipped; the one sent is read in full below.
        if (!e || !broker_fed_peek (self->broker, self->q, e, &origin, &fseq)) {
            s->cursor++;
            continue;
        }
        if (fseq <= s_vv_get (s->member->vv, origin)
            || fseq <= s_vv_get (s->vv, origin)) {
            s->cursor++;            //  the peer has it, or has it coming
            continue;
        }
        uint32_t origin_id = broker_origin_id (self->broker, origin);
        if (origin_id != self->own_origin && s->await_direct) {
            //  A new stream: the peer says at once which origins it gets
            //  directly; relaying before would send it what it drops.
            if (fedq_mono_ms () - s->started < FED_HEARTBEAT_MS)
                break;
            s->await_direct = false;
        }
        if (origin_id != self->own_origin
            && fed_direct_has (s->member->direct, origin_id)) {
            //  It gets the origin's events from the origin (FED_DIRECT).
            if (s->skipped_from == FED_NONE)
                s->skipped_from = s->cursor;
            s->member->relays_skipped_total++;
            s->cursor++;
            continue;
        }
        if (broker_read (self->broker, e, &rec)
            || !broker_fed_id (self->q, &rec, &origin, &fseq)) {
            s->cursor++;            //  fails its check: never sent
            continue;
        }
        const uint8_t *body = rec.body ? rec.body : (const uint8_t *) "";
        if (s->batch) {
            if (fed_batch_full (s->batch, rec.env_len, rec.body_len)
                && fed_stream_flush (s))
                break;              //  pipe full: the next turn goes on
            proto_fed_event_t ev = {.count = s->cursor,
                                    .origin = origin,
                                    .seq = fseq,
                                    .env = rec.env,
                                    .env_len = rec.env_len,
                                    .body = body,
                                    .body_len = rec.body_len};
            fed_batch_add (s->batch, &ev);
        }
        else {
            proto_frame_t f = fed_frame (s, PROTO_FED_EVENT);
            f.present |= PF_COUNT | PF_NODE | PF_SEQ;
            f.count = s->cursor;
            f.node = origin;
            f.seq = fseq;
            if (s->send (s->send_ctx, &f, rec.env, rec.env_len, body,
                         rec.body_len))
                return;             //  pipe full: the next turn goes on
        }
        s_sent_t *slot = &s->sent[(s->sent_head + s->sent_count) % s_ring_cap];
        slot->index = s->cursor;
        slot->origin = origin_id;
        slot->seq = fseq;
        s->sent_count++;
        s->sent_total++;
        s_vv_raise (s->vv, origin, fseq);
        s->cursor++;
    }
    if (s->batch)
        fed_stream_flush (s);       //  end of the turn: send what is ready
    s->member->acked = fed_stream_acked (s);
}

static void
s_stream_acked_upto (fed_stream_t *s, uint64_t upto)
{
    //  What the peer acknowledged it holds: raise its known vector, once
    //  per run of one origin.
    broker_t *broker = s->fed->broker;
    uint32_t run_origin = 0;
    uint64_t run_seq = 0;
    while (s->sent_count && s->sent[s->sent_head].index <= upto) {
        const s_sent_t *slot = &s->sent[s->sent_head];
        if (slot->origin != run_origin && run_origin)
            s_vv_raise (s->member->vv,
                        fedq_str_of (broker_origin_name (broker, run_origin)),
                        run_seq);
        run_origin = slot->origin;
        run_seq = slot->seq;
        s->sent_head = (s->sent_head + 1) % s_ring_cap;
        s->sent_count--;
    }
    if (run_origin)
        s_vv_raise (s->member->vv,
                    fedq_str_of (broker_origin_name (broker, run_origin)),
                    run_seq);
    if (s->member->sender == s)
        s->member->acked = fed_stream_acked (s);
}

static void
s_stream_apply (fed_stream_t *s, const proto_fed_event_t *e, bool counted)
{
    fed_t *self = s->fed;
    broker_outcome_t outcome;
    fedq_rc_t rc = broker_fed_apply (self->broker, self->q, e->origin, e->seq,
                                     e->env, e->env_len, e->body, e->body_len,
                                     &outcome);
    if (rc) {
        s->errors_total++;
        fedq_warn ("federation=%s peer=%s event %.*s:%" PRIu64
                   " not applied: %s",
                   self->name, s->member->id, (int) e->origin.len,
                   e->origin.ptr, e->seq, fedq_rc_name (rc));
    }
    else if (outcome == BROKER_DUPLICATE)
        s->duplicates_total++;
    else
        s->applied_total++;
    //  The peer has it, whatever we did with it: never send it back.
    s_vv_raise (s->member->vv, e->origin, e->seq);
    //  An event of a full resync has no history index (no count).
    if (counted) {
        s->recv_upto = e->count;
        s->ack_due = true;
    }
}

static void
s_stream_event (fed_stream_t *s, const proto_frame_t *f, const uint8_t *env,
                size_t env_len, const uint8_t *body, size_t body_len)
{
    proto_fed_event_t e = {.count = f->count,
                           .origin = f->node,
                           .seq = f->seq,
                           .env = env,
                           .env_len = (uint32_t) env_len,
                           .body = body,
                           .body_len = (uint32_t) body_len};
    s_stream_apply (s, &e, (f->present & PF_COUNT) != 0);
}

//  FED_EVENTS: the whole frame is checked before any event is applied.
static void
s_stream_events (fed_stream_t *s, const proto_frame_t *f, const uint8_t *env,
                 size_t env_len, const uint8_t *body, size_t body_len)
{
    static proto_fed_event_t events[PROTO_FED_MAX_EVENTS];
    const char *error = NULL;
    if (proto_fed_events_decode (env, env_len, body, body_len, f->count,
                                 events, PROTO_FED_MAX_EVENTS, &error)) {
        s->errors_total++;
        fedq_warn ("federation=%s peer=%s malformed frame, nothing applied: "
                   "%s",
                   s->fed->name, s->member->id, error);
        return;
    }
    for (uint64_t i = 0; i < f->count; i++)
        s_stream_apply (s, &events[i], true);
}

//  Every stream to the member goes back to what it skipped for an origin
//  the member gets directly, before it sends more (see s_stream_pump).
static void
s_member_rescan (fed_t *self, s_member_t *m)
{
    for (size_t i = 0; i < self->nstreams; i++)
        if (self->streams[i]->member == m
            && self->streams[i]->skipped_from != FED_NONE)
            self->streams[i]->rescan = true;
}

static void
s_direct_mark (void *ctx, fedq_str_t origin, uint64_t mark)
{
    s_member_t *m = ctx;
    s_vv_raise (m->vv, origin, mark);
}

//  A new stream with the member: it states its direct origins again.
static void
s_member_reset_direct (fed_t *self, s_member_t *m)
{
    fed_direct_clear (m->direct);
    m->origin[0] = 0;               //  it may be a new incarnation
    s_member_rescan (self, m);
}

//  FED_DIRECT: the origins the peer gets from themselves, with its marks.
static void
s_stream_direct (fed_stream_t *s, const proto_frame_t *f)
{
    fed_t *self = s->fed;
    bool dropped = false;
    s->await_direct = false;
    s->member->lists_us = (f->flags & PFL_LISTED) != 0;
    if (f->present & PF_NODE)
        snprintf (s->member->origin, sizeof s->member->origin, "%.*s",
                  (int) f->node.len, f->node.ptr);
    if (fed_direct_update (s->member->direct, self->broker, f->seq, f->json,
                           s_direct_mark, s->member, &dropped)) {
        s->errors_total++;
        fedq_warn ("federation=%s peer=%s malformed FED_DIRECT ignored",
                   self->name, s->member->id);
        return;
    }
    if (dropped)
        s_member_rescan (self, s->member);
}

static void
s_stream_frame (fed_stream_t *s, const proto_frame_t *f, const uint8_t *env,
                size_t env_len, const uint8_t *body, size_t body_len)
{
    if (f->epoch != s->epoch)
        return;
    if (f->cmd == PROTO_FED_EVENT && env && (f->present & PF_NODE)
        && (f->present & PF_SEQ))
        s_stream_event (s, f, env, env_len, body, body_len);
    else if (f->cmd == PROTO_FED_EVENTS && env && (f->present & PF_COUNT))
        s_stream_events (s, f, env, env_len, body, body_len);
    else if (f->cmd == PROTO_FED_DIRECT && (f->present & PF_SEQ)
             && (f->present & PF_JSON))
        s_stream_direct (s, f);
    else if (f->cmd == PROTO_FED_ACK && (f->present & PF_UPTO))
        s_stream_acked_upto (s, f->upto);
    else if (f->cmd == PROTO_FED_RESYNC || f->cmd == PROTO_FED_KEEP)
        fed_resync_frame (s, f);
}

static void
s_stream_ack (fed_stream_t *s)
{
    if (!s->ack_due)
        return;
    proto_frame_t f = fed_frame (s, PROTO_FED_ACK);
    f.present |= PF_UPTO;
    f.upto = s->recv_upto;
    if (s->send (s->send_ctx, &f, NULL, 0, NULL, 0) == FEDQ_OK)
        s->ack_due = false;
}

//  --------------------------------------------------------------------
//  Links (the peers this node connects to)

static fedq_rc_t
s_link_send (void *ctx, const proto_frame_t *frame, const uint8_t *env,
             size_t env_len, const uint8_t *body, size_t body_len)
{
    s_link_t *link = ctx;
    if (!link->sock)
        return FEDQ_EAGAIN;
    fed_t *self = link->fed;
    self->out.size = 0;
    proto_frame_encode (frame, &self->out);
    int more = env ? ZMQ_SNDMORE : 0;
    if (zmq_send (link->sock, self->out.data, self->out.size,
                  more | ZMQ_DONTWAIT)
        < 0)
        return FEDQ_EAGAIN;
    if (env) {
        zmq_send (link->sock, env, env_len, ZMQ_SNDMORE);
        zmq_send (link->sock, body, body_len, 0);
    }
    return FEDQ_OK;
}

//  Send FED_HELLO with this node's vector as it is now. Not at connect:
//  the socket queues what is sent before its connection is up, and a
//  FED_HELLO queued while the peer is down would arrive with a stale
//  vector; the peer, taking it as the truth, would forget what it learned
//  since and send it all back. So a link first sends a PING, which the
//  peer answers "unknown session" (ESESSION) as soon as the connection
//  is up, and says FED_HELLO then (s_link_recv). (ZMQ_IMMEDIATE would do
//  it without the round trip, but libzmq then drops a connection's pipe
//  at once when the peer dies, and asserts (!_more, fq.cpp) when that
//  happens between the frames of a message being read.)
static void
s_link_hello (s_link_t *link)
{
    fed_t *self = link->fed;
    char *vv = s_vv_json (self);
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = PROTO_FED_HELLO,
                       .present = PF_QUEUE | PF_EPOCH | PF_NODE | PF_JSON,
                       .flags = PFL_BATCH,
                       .queue = fedq_str_of (self->name),
                       .epoch = link->epoch,
                       .node = fedq_str_of (self->node_id),
                       .json = fedq_str_of (vv)};
    if (s_link_send (link, &f, NULL, 0, NULL, 0) == FEDQ_OK)
        link->hello_due = false;
    free (vv);
}

static void
s_link_connect (s_link_t *link)
{
    fed_t *self = link->fed;
    link->sock = zmq_socket (self->zmq_ctx, ZMQ_DEALER);
    int zero = 0, hwm = 100000;
    zmq_setsockopt (link->sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (link->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (link->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (link->server_key
        && security_client (link->sock, link->server_key, link->last_error,
                            sizeof link->last_error)) {
        zmq_close (link->sock);
        link->sock = NULL;
        link->reconnect_at = fedq_mono_ms () + (int64_t) link->backoff_ms;
        return;
    }
    if (zmq_connect (link->sock, link->endpoint)) {
        snprintf (link->last_error, sizeof link->last_error,
                  "cannot connect to %s: %s", link->endpoint,
                  zmq_strerror (errno));
        zmq_close (link->sock);
        link->sock = NULL;
        link->reconnect_at = fedq_mono_ms () + (int64_t) link->backoff_ms;
        return;
    }
    link->epoch = (uint64_t) fedq_wall_ms () * 1000 + (++self->epoch_seq % 1000);
    int64_t now = fedq_mono_ms ();
    link->last_rx = now;
    link->last_ping = now;
    link->hello_due = true;
    proto_frame_t ping = {.version = PROTO_VERSION, .cmd = PROTO_PING};
    s_link_send (link, &ping, NULL, 0, NULL, 0);
}

static void
s_link_drop (s_link_t *link, const char *why)
{
    fed_t *self = link->fed;
    if (link->state == LINK_RUNNING)
        fedq_warn ("federation=%s peer=%s reconnecting: %s", self->name,
                   link->peer_id, why);
    snprintf (link->last_error, sizeof link->last_error, "%s", why);
    s_stream_destroy (self, &link->stream);
    if (link->sock) {
        zmq_close (link->sock);
        link->sock = NULL;
    }
    link->state = LINK_RECONNECTING;
    link->reconnects_total++;
    link->reconnect_at = fedq_mono_ms () + (int64_t) link->backoff_ms;
    link->backoff_ms = link->backoff_ms * 2 > FED_MAX_BACKOFF_MS
                         ? FED_MAX_BACKOFF_MS
                         : link->backoff_ms * 2;
}

static void
s_link_hello_answer (s_link_t *link, const proto_frame_t *f)
{
    fed_t *self = link->fed;
    s_member_t *member = s_member (self, f->node);
    if (!member || !fedq_str_eq (f->node, link->peer_id)) {
        char why[PROTO_MAX_NAME + 64];
        snprintf (why, sizeof why, "endpoint answered as node %.*s",
                  (int) f->node.len, f->node.ptr);
        s_link_drop (link, why);
        return;
    }
    //  Forget what we assumed it had; take what it says it has.
    zhashx_purge (member->vv);
    s_vv_load (member->vv, f->json);
    member->known = true;
    fed_member_check_incarnation (self, member);
    s_member_reset_direct (self, member);
    s_stream_destroy (self, &link->stream);
    link->stream = s_stream_new (self, member, link->epoch, s_link_send, link,
                                 true, (f->flags & PFL_BATCH) != 0);
    link->state = LINK_RUNNING;
    link->backoff_ms = FED_MIN_BACKOFF_MS;
    link->last_error[0] = 0;
    fedq_info ("federation=%s peer=%s running (history %" PRIu64 "..%" PRIu64
               ")",
               self->name, link->peer_id, self->h->compacted,
               s_history_end (self));
    s_stream_pump (link->stream);
}

static void
s_link_recv (s_link_t *link)
{
    for (int n = 0; n < 10000 && link->sock; n++) {
        zmq_msg_t parts[3];
        int nparts = 0;
        bool more = true;
        while (more) {
            zmq_msg_t *part = &parts[nparts < 3 ? nparts : 2];
            if (nparts >= 3)
                zmq_msg_close (part);
            zmq_msg_init (part);
            if (zmq_msg_recv (part, link->sock, nparts ? 0 : ZMQ_DONTWAIT)
                < 0) {
                zmq_msg_close (part);
                for (int i = 0; i < nparts && i < 3; i++)
                    zmq_msg_close (&parts[i]);
                return;
            }
            more = zmq_msg_more (part);
            if (nparts < 3)
                nparts++;
        }
        link->last_rx = fedq_mono_ms ();
        proto_frame_t f;
        const char *error = NULL;
        if (proto_frame_decode (zmq_msg_data (&parts[0]),
                                zmq_msg_size (&parts[0]), &f, &error)
            == FEDQ_OK) {
            if (f.cmd == PROTO_FED_HELLO && f.epoch == link->epoch)
                s_link_hello_answer (link, &f);
            else if (f.cmd == PROTO_ERROR && f.code == FEDQ_ESESSION
                     && link->hello_due)
                s_link_hello (link);    //  the answer to our first PING
            else if (f.cmd == PROTO_ERROR && f.code == FEDQ_ESESSION)
                s_link_drop (link, "the peer does not know this connection");
            else if (f.cmd == PROTO_ERROR && f.code == FEDQ_EDENIED) {
                //  Refused by the peer's authorized keys: back off.
                char why[320];
                snprintf (why, sizeof why, "peer refused: %.*s",
                          (int) f.text.len, f.text.ptr ? f.text.ptr : "");
                s_link_drop (link, why);
            }
            else if (f.cmd == PROTO_ERROR) {
                snprintf (link->last_error, sizeof link->last_error,
                          "peer error: %.*s", (int) f.text.len,
                          f.text.ptr ? f.text.ptr : "");
            }
            else if (link->stream && nparts == 3)
                s_stream_frame (link->stream, &f, zmq_msg_data (&parts[1]),
                                zmq_msg_size (&parts[1]),
                                zmq_msg_data (&parts[2]),
                                zmq_msg_size (&parts[2]));
            else if (link->stream)
                s_stream_frame (link->stream, &f, NULL, 0, NULL, 0);
        }
        for (int i = 0; i < nparts; i++)
            zmq_msg_close (&parts[i]);
    }
}

static void
s_link_tick (s_link_t *link, int64_t now)
{
    if (!link->sock) {
        if (now >= link->reconnect_at)
            s_link_connect (link);
        return;
    }
    if (now - link->last_rx > 3 * FED_HEARTBEAT_MS) {
        char why[128];
        snprintf (why, sizeof why, "no answer from %s for %" PRId64 " ms",
                  link->endpoint, now - link->last_rx);
        s_link_drop (link, why);
        return;
    }
    if (now - link->last_ping >= FED_HEARTBEAT_MS) {
        proto_frame_t ping = {.version = PROTO_VERSION, .cmd = PROTO_PING};
        s_link_send (link, &ping, NULL, 0, NULL, 0);
        link->last_ping = now;
    }
}

//  --------------------------------------------------------------------
//  Compaction: drop history every direct peer has.

static bool
s_all_members_have (fed_t *self, fedq_str_t origin, uint64_t fseq)
{
    for (size_t i = 0; i < self->nmembers; i++) {
        s_member_t *m = self->members[i];
        if (!m->known || s_vv_get (m->vv, origin) < fseq)
            return false;
    }
    return true;
}

static void
s_compact (fed_t *self)
{
    //  Streams still sending from the head hold it.
    uint64_t limit = s_history_end (self);
    for (size_t i = 0; i < self->nstreams; i++) {
        uint64_t acked = fed_stream_acked (self->streams[i]);
        if (acked < limit)
            limit = acked;
    }
    uint64_t n = 0;
    for (uint64_t i = self->h->compacted; i < limit && n < 100000; i++, n++) {
        const qentry_t *e = s_history_at (self, i);
        fedq_str_t origin;
        uint64_t fseq;
        if (!e || !broker_fed_peek (self->broker, self->q, e, &origin, &fseq))
            continue;
        if (!s_all_members_have (self, origin, fseq))
            break;
    }
    if (n)
        fed_history_drop (self, n, false);
}

//  --------------------------------------------------------------------
//  Life cycle

fed_t *
fed_new (const cfg_federated_t *cfg, const char *node_id, broker_t *broker,
         void *zmq_ctx)
{
    fed_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = *cfg;
    self->name = strdup (cfg->queue.name);
    self->node_id = strdup (node_id);
    self->broker = broker;
    self->zmq_ctx = zmq_ctx;
    self->q = broker_queue (broker, self->name);
    if (!self->q
        || broker_fed_enable (broker, self->q,
                              cfg->consume == CFG_CONSUME_GLOBAL)) {
        fedq_error ("federation=%s: cannot set up the queue", self->name);
        fed_destroy (&self);
        return NULL;
    }
    self->h = self->q->fed_history;
    self->q->fed_handoff_ms = cfg->consume == CFG_CONSUME_GLOBAL
                                ? cfg->global_handoff_ms
                                : 0;
    const char *ids[64];
    size_t nids = 0;
    for (size_t i = 0; i < cfg->npeers && nids < 64; i++)
        ids[nids++] = cfg->peers[i].id;
    queue_set_fed_members (self->q, node_id, ids, nids);
    fed_floors_load (self);
    self->own_origin = broker_origin_id (
      broker, fedq_str_of (broker_fed_origin (broker)));
    //  Above the generations of any earlier run of this node.
    self->direct_gen = (uint64_t) fedq_wall_ms () * 1000;
    //  The config may be replaced: keep none of its pointers.
    self->cfg.peers = NULL;
    memset (&self->cfg.queue, 0, sizeof self->cfg.queue);
    self->links = calloc (cfg->npeers ? cfg->npeers : 1, sizeof *self->links);
    for (size_t i = 0; i < cfg->npeers; i++) {
        s_member_add (self, fedq_str_of (cfg->peers[i].id));
        s_link_t *link = &self->links[self->nlinks++];
        link->fed = self;
        link->peer_id = strdup (cfg->peers[i].id);
        link->endpoint = strdup (cfg->peers[i].endpoint);
        link->server_key = cfg->peers[i].server_key
                             ? strdup (cfg->peers[i].server_key)
                             : NULL;
        link->backoff_ms = FED_MIN_BACKOFF_MS;
        link->state = LINK_CONNECTING;
        s_link_connect (link);
    }
    fedq_info ("federation=%s started with %zu peers, history %" PRIu64
               " events",
               self->name, cfg->npeers, self->h->ready_count);
    return self;
}

void
fed_destroy (fed_t **self_p)
{
    fed_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nlinks; i++) {
        s_link_t *link = &self->links[i];
        s_stream_destroy (self, &link->stream);
        if (link->sock)
            zmq_close (link->sock);
        free (link->peer_id);
        free (link->endpoint);
        free (link->server_key);
    }
    //  Session streams: their sessions hold pointers; they are told by
    //  the node before it destroys us (fed_session_closed).
    while (self->nstreams) {
        fed_stream_t *s = self->streams[0];
        s_stream_destroy (self, &s);
    }
    zhashx_destroy (&self->floors);
    free (self->floor_prefix);
    for (size_t i = 0; i < self->nmembers; i++) {
        zhashx_destroy (&self->members[i]->vv);
        fed_direct_destroy (&self->members[i]->direct);
        free (self->members[i]);
    }
    free (self->members);
    free (self->links);
    free (self->streams);
    fedq_buf_free (&self->out);
    free (self->name);
    free (self->node_id);
    free (self);
    *self_p = NULL;
}

const char *
fed_name (fed_t *self)
{
    return self->name;
}

size_t
fed_sockets (fed_t *self, void **socks, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < self->nlinks && n < max; i++)
        if (self->links[i].sock)
            socks[n++] = self->links[i].sock;
    return n;
}

void
fed_recv (fed_t *self, void *sock)
{
    for (size_t i = 0; i < self->nlinks; i++)
        if (self->links[i].sock == sock)
            s_link_recv (&self->links[i]);
}

//  Tell the peers that take FED_DIRECT which origins this node gets from
//  themselves (its running links), when that changed, to a new stream,
//  and every second (their marks, so the peers can compact).
static void
s_direct_notify (fed_t *self)
{
    const char *origins[FED_DIRECT_MAX];
    size_t n = 0;
    uint64_t running = 0;
    //  Only origins that keep their history for us (list us in their
    //  peers): one that does not may have compacted events we lack after
    //  a restart, which the other members would then no longer relay.
    for (size_t i = 0; i < self->nlinks && n < FED_DIRECT_MAX; i++) {
        s_link_t *link = &self->links[i];
        //  Its events carry its federation origin (NODE~INCARNATION),
        //  which its own FED_DIRECT told us.
        if (link->state == LINK_RUNNING && link->stream
            && link->stream->member->lists_us
            && link->stream->member->origin[0]) {
            origins[n++] = link->stream->member->origin;
            running |= 1ull << (i % 64);
        }
    }
    bool all = self->direct_refresh || running != self->direct_links;
    char *json = NULL;
    uint64_t gen = 0;
    for (size_t i = 0; i < self->nstreams; i++) {
        fed_stream_t *s = self->streams[i];
        if (!s->batch || !(all || s->direct_due))
            continue;
        if (!json) {
            json = fed_direct_notice (self->broker, self->q->fed_prefix,
                                      origins, n);
            gen = ++self->direct_gen;
        }
        proto_frame_t f = fed_frame (s, PROTO_FED_DIRECT);
        f.present |= PF_SEQ | PF_JSON | PF_NODE;
        f.node = fedq_str_of (broker_fed_origin (self->broker));
        for (size_t k = 0; k < self->nlinks; k++)
            if (strcmp (self->links[k].peer_id, s->member->id) == 0)
                f.flags |= PFL_LISTED;
        f.seq = gen;
        f.json = fedq_str_of (json);
        if (s->send (s->send_ctx, &f, NULL, 0, NULL, 0) == FEDQ_OK)
            s->direct_due = false;
        else
            s->direct_due = true;   //  again next turn
    }
    free (json);
    self->direct_links = running;
    self->direct_refresh = false;
}

void
fed_committed (fed_t *self)
{
    s_direct_notify (self);
    for (size_t i = 0; i < self->nstreams; i++)
        s_stream_ack (self->streams[i]);
    //  Send first: the cap then drops only what a member still lacks
    //  after this turn (a slow or absent one).
    for (size_t i = 0; i < self->nstreams; i++)
        s_stream_pump (self->streams[i]);
    fed_history_cap (self);
}

void
fed_tick (fed_t *self)
{
    int64_t now = fedq_mono_ms ();
    for (size_t i = 0; i < self->nlinks; i++)
        s_link_tick (&self->links[i], now);
    if (now >= self->next_compact) {
        self->next_compact = now + 1000;
        for (size_t i = 0; i < self->nstreams; i++) {
            fed_stream_t *st = self->streams[i];
            if (st->rate_at && now > st->rate_at) {
                double r = (double) (st->sent_total - st->sent_at_rate)
                           * 1000.0 / (double) (now - st->rate_at);
                st->rate = st->rate * 0.5 + r * 0.5;
            }
            st->rate_at = now;
            st->sent_at_rate = st->sent_total;
        }
        s_compact (self);
        self->direct_refresh = true;
        //  Alerts fire and clear (with a log line) whether or not anyone
        //  asks for the status.
        json_t *scratch = json_array ();
        fed_status (self, scratch);
        json_decref (scratch);
    }
}

int64_t
fed_next_wakeup (fed_t *self)
{
    int64_t next = self->next_compact;
    for (size_t i = 0; i < self->nlinks; i++) {
        s_link_t *link = &self->links[i];
        int64_t w = link->sock ? link->last_ping + FED_HEARTBEAT_MS
                               : link->reconnect_at;
        if (w < next)
            next = w;
    }
    return next;
}

fed_stream_t *
fed_session_hello (fed_t *self, const proto_frame_t *frame,
                   fed_send_fn *send, void *send_ctx)
{
    s_member_t *member = s_member (self, frame->node);
    if (!member || fedq_str_eq (frame->node, self->node_id)) {
        proto_frame_t e = {.version = PROTO_VERSION,
                           .cmd = PROTO_ERROR,
                           .present = PF_CODE | PF_TEXT,
                           .code = FEDQ_EINVAL,
                           .text = fedq_str_of ("FED_HELLO needs the id of "
                                                "another member node")};
        send (send_ctx, &e, NULL, 0, NULL, 0);
        return NULL;
    }
    zhashx_purge (member->vv);
    s_vv_load (member->vv, frame->json);
    member->known = true;
    fed_member_check_incarnation (self, member);
    s_member_reset_direct (self, member);
    fed_stream_t *s = s_stream_new (self, member, frame->epoch, send,
                                    send_ctx, false,
                                    (frame->flags & PFL_BATCH) != 0);
    char *vv = s_vv_json (self);
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = PROTO_FED_HELLO,
                       .present = PF_QUEUE | PF_EPOCH | PF_NODE | PF_JSON,
                       .flags = PFL_BATCH,
                       .queue = fedq_str_of (self->name),
                       .epoch = frame->epoch,
                       .node = fedq_str_of (self->node_id),
                       .json = fedq_str_of (vv)};
    send (send_ctx, &f, NULL, 0, NULL, 0);
    free (vv);
    fedq_info ("federation=%s peer=%s connected to us", self->name,
               member->id);
    s_stream_pump (s);
    return s;
}

void
fed_session_frame (fed_t *self, fed_stream_t *stream,
                   const proto_frame_t *frame, const uint8_t *env,
                   size_t env_len, const uint8_t *body, size_t body_len)
{
    (void) self;
    s_stream_frame (stream, frame, env, env_len, body, body_len);
}

void
fed_session_closed (fed_t *self, fed_stream_t **stream_p)
{
    s_stream_destroy (self, stream_p);
}
