//  node/session.c — client sessions on the node's ROUTER endpoint: the
//  client half of docs/protocol.md (requests, pipelined publish with
//  cumulative confirms, consume with prefetch, get, settle).
#define _GNU_SOURCE
#include "node_internal.h"
#include "fed.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void s_confirm_due (node_t *self, session_t *session);

//  --------------------------------------------------------------------
//  Session table

static session_t *
s_session_lookup (node_t *self, const uint8_t *id, size_t idlen, bool create)
{
    char key[2 * NODE_MAX_ID + 1];
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < idlen; i++) {
        key[2 * i] = hex[id[i] >> 4];
        key[2 * i + 1] = hex[id[i] & 15];
    }
    key[2 * idlen] = 0;
    session_t *session = zhashx_lookup (self->sessions, key);
    if (session || !create)
        return session;
    session = calloc (1, sizeof *session);
    if (!session)
        return NULL;
    session->node = self;
    memcpy (session->key, key, 2 * idlen + 1);
    memcpy (session->id, id, idlen);
    session->idlen = idlen;
    session->heartbeat_ms = 2000;
    session->next_dtag = 1;
    zhashx_insert (self->sessions, key, session);
    return session;
}

static s_unacked_t *
s_unacked_at (session_t *session, size_t i)
{
    return &session->unacked[(session->un_head + i) & (session->un_cap - 1)];
}

static void
s_unacked_push (session_t *session, const s_unacked_t *item)
{
    if (session->un_count == session->un_cap) {
        size_t cap = session->un_cap ? session->un_cap * 2 : 256;
        s_unacked_t *ring = malloc (cap * sizeof *ring);
        if (!ring)
            abort ();
        for (size_t i = 0; i < session->un_count; i++)
            ring[i] = *s_unacked_at (session, i);
        free (session->unacked);
        session->unacked = ring;
        session->un_head = 0;
        session->un_cap = cap;
    }
    *s_unacked_at (session, session->un_count) = *item;
    session->un_count++;
}

//  The held delivery with this dtag, or NULL (settled or unknown).
static s_unacked_t *
s_unacked_find (session_t *session, uint64_t dtag)
{
    if (session->un_count == 0)
        return NULL;
    uint64_t first = s_unacked_at (session, 0)->dtag;
    //  dtags are increasing but GET and consumers share them, and no_ack
    //  deliveries take dtags without holding: binary search.
    if (dtag < first)
        return NULL;
    size_t lo = 0, hi = session->un_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint64_t d = s_unacked_at (session, mid)->dtag;
        if (d == dtag) {
            s_unacked_t *u = s_unacked_at (session, mid);
            return u->settled ? NULL : u;
        }
        if (d < dtag)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void
s_unacked_trim (session_t *session)
{
    while (session->un_count && s_unacked_at (session, 0)->settled) {
        session->un_head = (session->un_head + 1) & (session->un_cap - 1);
        session->un_count--;
    }
}

typedef enum { SETTLE_ACK, SETTLE_REQUEUE, SETTLE_REJECT } s_settle_t;

static void
s_settle_one (node_t *self, s_unacked_t *u, s_settle_t how)
{
    if (how == SETTLE_ACK)
        broker_ack (self->broker, u->qid, &u->entry);
    else if (how == SETTLE_REQUEUE)
        broker_requeue (self->broker, u->qid, &u->entry);
    else
        broker_reject (self->broker, u->qid, &u->entry);
    if (u->consumer)
        broker_consumer_settled (self->broker, u->consumer);
    u->settled = true;
}

static fedq_rc_t
s_settle (node_t *self, session_t *session, uint64_t dtag, bool multiple,
          s_settle_t how)
{
    if (multiple) {
        bool any = false;
        //  Requeue in reverse so that the oldest ends at the head.
        if (how == SETTLE_REQUEUE) {
            for (size_t i = session->un_count; i-- > 0;) {
                s_unacked_t *u = s_unacked_at (session, i);
                if (u->dtag <= dtag && !u->settled) {
                    s_settle_one (self, u, how);
                    any = true;
                }
            }
        }
        else
            for (size_t i = 0; i < session->un_count; i++) {
                s_unacked_t *u = s_unacked_at (session, i);
                if (u->dtag > dtag)
                    break;
                if (!u->settled) {
                    s_settle_one (self, u, how);
                    any = true;
                }
            }
        s_unacked_trim (session);
        return any ? FEDQ_OK : FEDQ_ENOTFOUND;
    }
    s_unacked_t *u = s_unacked_find (session, dtag);
    if (!u)
        return FEDQ_ENOTFOUND;
    s_settle_one (self, u, how);
    s_unacked_trim (session);
    return FEDQ_OK;
}

static void
s_consumer_cancelled (consumer_t *consumer)
{
    session_t *session = consumer->owner;
    for (size_t i = 0; i < session->nconsumers; i++)
        if (session->consumers[i] == consumer) {
            session->consumers[i] = session->consumers[--session->nconsumers];
            break;
        }
    for (size_t i = 0; i < session->un_count; i++)
        if (s_unacked_at (session, i)->consumer == consumer)
            s_unacked_at (session, i)->consumer = NULL;
}

static void
s_session_end (node_t *self, session_t *session)
{
    //  Requeue what the client held, newest first, so order is kept.
    for (size_t i = session->un_count; i-- > 0;) {
        s_unacked_t *u = s_unacked_at (session, i);
        if (!u->settled) {
            broker_requeue (self->broker, u->qid, &u->entry);
            u->consumer = NULL;
        }
    }
    session->un_count = 0;
    while (session->nconsumers) {
        consumer_t *c = session->consumers[--session->nconsumers];
        broker_cancel (self->broker, &c);
    }
    for (size_t i = 0; i < self->nconfirm; i++)
        if (self->confirm[i] == session)
            self->confirm[i] = NULL;
    if (session->fed_stream)
        fed_session_closed (session->fed, &session->fed_stream);
    zhashx_delete (self->sessions, session->key);
    free (session->consumers);
    free (session->unacked);
    free (session);
}

void
session_reap (node_t *self, bool all)
{
    int64_t now = fedq_mono_ms ();
    zlistx_t *ended = zlistx_new ();
    for (session_t *s = zhashx_first (self->sessions); s;
         s = zhashx_next (self->sessions))
        if (all || s->gone
            || now - s->last_seen > 3 * (int64_t) s->heartbeat_ms)
            zlistx_add_end (ended, s);
    for (session_t *s = zlistx_first (ended); s; s = zlistx_next (ended)) {
        if (!all)
            fedq_info ("session=%s ended: %s", s->key,
                       s->gone ? "peer gone" : "no heartbeat");
        s_session_end (self, s);
    }
    zlistx_destroy (&ended);
}

void
session_unblock_all (node_t *self)
{
    if (!self->any_blocked)
        return;
    self->any_blocked = false;
    for (session_t *s = zhashx_first (self->sessions); s;
         s = zhashx_next (self->sessions))
        for (size_t i = 0; i < s->nconsumers; i++)
            if (s->consumers[i]->blocked) {
                s->consumers[i]->blocked = false;
                broker_wake (self->broker, s->consumers[i]->queue);
            }
}

//  --------------------------------------------------------------------
//  Deliveries

//  The envelope to send: the stored one, or a copy with `rd` set.
static fedq_rc_t
s_envelope (node_t *self, const qentry_t *entry, const store_msg_t *rec,
            const uint8_t **env, size_t *env_len)
{
    bool redelivered = entry->deliveries > 1
                       || (entry->flags & QENTRY_REDELIVERED);
    *env = rec->env;
    *env_len = rec->env_len;
    if (!redelivered)
        return FEDQ_OK;
    const char *error;
    if (proto_msg_decode (rec->env, rec->env_len, &self->scratch_msg, &error))
        return FEDQ_EPROTO;
    self->scratch_msg.redelivered = true;
    self->env.size = 0;
    proto_msg_encode (&self->scratch_msg, &self->env);
    *env = self->env.data;
    *env_len = self->env.size;
    return FEDQ_OK;
}

static fedq_rc_t
s_send_delivery (node_t *self, session_t *session, const char *tag,
                 uint64_t rid, uint64_t dtag, const qentry_t *entry,
                 const store_msg_t *rec)
{
    const uint8_t *env;
    size_t env_len;
    if (s_envelope (self, entry, rec, &env, &env_len))
        return FEDQ_EPROTO;
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = PROTO_DELIVER,
                       .present = PF_DTAG,
                       .dtag = dtag};
    if (tag) {
        f.present |= PF_TAG;
        f.tag = fedq_str_of (tag);
    }
    if (rid) {
        f.present |= PF_RID;
        f.rid = rid;
    }
    fedq_rc_t rc = node_send (self, session->id, session->idlen, &f, env,
                              env_len, rec->body, rec->body_len);
    if (rc == FEDQ_ENOTFOUND)
        session->gone = true;
    return rc;
}

static fedq_rc_t
s_deliver (consumer_t *consumer, const qentry_t *entry, const store_msg_t *rec)
{
    session_t *session = consumer->owner;
    node_t *self = session->node;
    if (session->gone)
        return FEDQ_EAGAIN;
    uint64_t dtag = session->next_dtag;
    fedq_rc_t rc = s_send_delivery (self, session, consumer->tag, 0, dtag,
                                    entry, rec);
    if (rc) {
        self->any_blocked = true;
        return FEDQ_EAGAIN;
    }
    session->next_dtag++;
    if (!consumer->no_ack) {
        s_unacked_t u = {.dtag = dtag,
                         .qid = consumer->queue->qid,
                         .entry = *entry,
                         .consumer = consumer};
        s_unacked_push (session, &u);
    }
    return FEDQ_OK;
}

//  --------------------------------------------------------------------
//  Requests

static void
s_reply_ok (node_t *self, session_t *session, uint64_t rid, uint64_t count,
            const char *tag)
{
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = PROTO_OK,
                       .present = PF_RID | PF_COUNT,
                       .rid = rid,
                       .count = count};
    if (tag) {
        f.present |= PF_TAG;
        f.tag = fedq_str_of (tag);
    }
    node_send (self, session->id, session->idlen, &f, NULL, 0, NULL, 0);
}

//  Copy a name field into buf; false (and an error sent) when invalid.
static bool
s_name (node_t *self, session_t *session, const proto_frame_t *frame,
        fedq_str_t name, const char *what, char *buf, bool allow_empty)
{
    if ((!allow_empty && name.len == 0) || name.len > PROTO_MAX_NAME) {
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_EINVAL,
                         "%s name must be 1 to %d bytes, got %u bytes", what,
                         PROTO_MAX_NAME, name.len);
        return false;
    }
    memcpy (buf, name.ptr ? name.ptr : "", name.len);
    buf[name.len] = 0;
    return true;
}

static const char *
s_rc_text (fedq_rc_t rc)
{
    switch (rc) {
        case FEDQ_ENOTFOUND: return "not found";
        case FEDQ_EEXISTS: return "already declared with different options";
        case FEDQ_EDENIED: return "not allowed";
        case FEDQ_EINVAL: return "invalid argument";
        default: return fedq_rc_name (rc);
    }
}

static void
s_reply_rc (node_t *self, session_t *session, const proto_frame_t *frame,
            fedq_rc_t rc, const char *what, const char *name, uint64_t count)
{
    if (rc == FEDQ_OK)
        s_reply_ok (self, session, frame->rid, count, NULL);
    else
        node_send_error (self, session->id, session->idlen, frame->rid, rc,
                         "%s \"%s\": %s", what, name, s_rc_text (rc));
}

static void
s_publish (node_t *self, session_t *session, const proto_frame_t *frame,
           zmq_msg_t *env, zmq_msg_t *body)
{
    proto_frame_t ret = {.version = PROTO_VERSION,
                         .cmd = PROTO_RETURN,
                         .present = PF_SEQ | PF_CODE | PF_TEXT,
                         .seq = frame->seq};
    if (!(frame->present & PF_SEQ) || frame->seq <= session->last_seq) {
        self->bad_frames++;
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_EPROTO,
                         "PUBLISH needs a seq above the last one (%" PRIu64
                         ")",
                         session->last_seq);
        return;
    }
    if (!session->confirm_due) {
        session->batch_first_seq = frame->seq;
        s_confirm_due (self, session);
    }
    session->last_seq = frame->seq;
    if (!env || !body) {
        self->bad_frames++;
        ret.code = FEDQ_EPROTO;
        ret.text = fedq_str_of ("PUBLISH needs an envelope and a body frame");
        node_send (self, session->id, session->idlen, &ret, NULL, 0, NULL, 0);
        return;
    }
    proto_msg_t *msg = &self->scratch_msg;
    const char *error = NULL;
    if (proto_msg_decode (zmq_msg_data (env), zmq_msg_size (env), msg,
                          &error)) {
        self->bad_frames++;
        ret.code = FEDQ_EPROTO;
        ret.text = fedq_str_of (error);
        node_send (self, session->id, session->idlen, &ret, NULL, 0, NULL, 0);
        return;
    }
    //  A client cannot claim another origin or a path: those are the
    //  node's and the links'.
    msg->origin.ptr = NULL;
    msg->origin.len = 0;
    msg->seq = 0;
    msg->npath = 0;
    msg->published_at = 0;
    msg->redelivered = false;
    msg->exchange = frame->exchange;
    msg->routing_key = frame->key;
    broker_publish_t pub = {.msg = msg,
                            .exchange = frame->exchange,
                            .routing_key = frame->key,
                            .body = zmq_msg_data (body),
                            .body_len = (uint32_t) zmq_msg_size (body)};
    if (zmq_msg_size (body) > UINT32_MAX) {
        ret.code = FEDQ_ETOOBIG;
        ret.text = fedq_str_of ("message body too large");
        node_send (self, session->id, session->idlen, &ret, NULL, 0, NULL, 0);
        return;
    }
    broker_outcome_t outcome;
    fedq_rc_t rc = broker_publish (self->broker, &pub, &outcome);
    if (rc == FEDQ_OK)
        return;
    char text[512];
    switch (rc) {
        case FEDQ_EUNROUTABLE:
            snprintf (text, sizeof text,
                      "no queue is bound to exchange \"%.*s\" for routing "
                      "key \"%.*s\"",
                      (int) frame->exchange.len, frame->exchange.ptr,
                      (int) frame->key.len, frame->key.ptr);
            break;
        case FEDQ_ENOTFOUND:
            snprintf (text, sizeof text, "exchange \"%.*s\" not found",
                      (int) frame->exchange.len, frame->exchange.ptr);
            break;
        case FEDQ_EFULL:
            snprintf (text, sizeof text,
                      "a target queue is full (overflow: reject-publish)");
            break;
        case FEDQ_ETOOBIG:
            snprintf (text, sizeof text,
                      "message of %zu bytes is over node.max_message_bytes",
                      zmq_msg_size (body));
            break;
        default:
            snprintf (text, sizeof text, "not stored: %s", fedq_rc_name (rc));
    }
    ret.code = rc;
    ret.text = fedq_str_of (text);
    node_send (self, session->id, session->idlen, &ret, NULL, 0, NULL, 0);
}

//  --------------------------------------------------------------------
//  Shovel links, destination side (docs/protocol.md, "Shovel links")

static void
s_confirm_due (node_t *self, session_t *session)
{
    if (session->confirm_due)
        return;
    session->confirm_due = true;
    if (self->nconfirm == self->confirm_cap) {
        self->confirm_cap = self->confirm_cap ? self->confirm_cap * 2 : 64;
        self->confirm = realloc (self->confirm,
                                 self->confirm_cap * sizeof *self->confirm);
        if (!self->confirm)
            abort ();
    }
    self->confirm[self->nconfirm++] = session;
}

static char *
s_link_mark_key (session_t *session, char *buf, size_t size)
{
    snprintf (buf, size, "l/%s", session->link_key);
    return buf;
}

static void
s_link_hello (node_t *self, session_t *session, const proto_frame_t *frame)
{
    if (frame->link.len == 0 || frame->node.len == 0
        || frame->link.len > PROTO_MAX_NAME
        || frame->node.len > PROTO_MAX_NAME) {
        self->bad_frames++;
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_EPROTO, "LINK_HELLO needs link and node");
        return;
    }
    if (fedq_str_eq (frame->node, self->cfg->node.id)) {
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_ELOOP,
                         "link \"%.*s\" connects node %s to itself",
                         (int) frame->link.len, frame->link.ptr,
                         self->cfg->node.id);
        return;
    }
    //  The mark must be the durable one: land what is staged first.
    session_confirm_all (self, broker_commit (self->broker));
    snprintf (session->link_name, sizeof session->link_name, "%.*s",
              (int) frame->link.len, frame->link.ptr);
    snprintf (session->link_node, sizeof session->link_node, "%.*s",
              (int) frame->node.len, frame->node.ptr);
    snprintf (session->link_key, sizeof session->link_key, "%s/%s",
              session->link_node, session->link_name);
    session->link_epoch = frame->epoch;
    session->reject_seq = 0;
    session->heartbeat_ms = 10000;
    char key[sizeof session->link_key + 2];
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = PROTO_LINK_WELCOME,
                       .present = PF_LINK | PF_EPOCH | PF_UPTO | PF_NODE,
                       .link = fedq_str_of (session->link_name),
                       .epoch = session->link_epoch,
                       .upto = broker_mark (self->broker,
                                            s_link_mark_key (session, key,
                                                             sizeof key)),
                       .node = fedq_str_of (self->cfg->node.id)};
    node_send (self, session->id, session->idlen, &f, NULL, 0, NULL, 0);
    fedq_info ("link=%s from node %s connected (epoch %" PRIu64
               ", stored up to seq %" PRIu64 ")",
               session->link_name, session->link_node, session->link_epoch,
               f.upto);
}

//  A link frame of the current connection; others are stale and ignored.
static bool
s_link_current (session_t *session, const proto_frame_t *frame)
{
    return session->link_key[0] && frame->epoch == session->link_epoch
           && fedq_str_eq (frame->link, session->link_name);
}

static void
s_link_refuse (session_t *session, uint64_t seq, fedq_rc_t code,
               const char *text)
{
    if (session->reject_seq)
        return;
    session->reject_seq = seq;
    session->reject_code = code;
    snprintf (session->reject_text, sizeof session->reject_text, "%s", text);
}

static void
s_link_msg (node_t *self, session_t *session, const proto_frame_t *frame,
            zmq_msg_t *env, zmq_msg_t *body)
{
    if (!s_link_current (session, frame))
        return;
    s_confirm_due (self, session);
    //  After a refusal everything behind it is out of order: the sender
    //  goes back to the refused message.
    if (session->reject_seq)
        return;
    if (!env || !body) {
        s_link_refuse (session, frame->seq, FEDQ_EPROTO,
                       "LINK_MSG needs an envelope and a body");
        return;
    }
    proto_msg_t *msg = &self->scratch_msg;
    const char *error = NULL;
    if (proto_msg_decode (zmq_msg_data (env), zmq_msg_size (env), msg,
                          &error)) {
        s_link_refuse (session, frame->seq, FEDQ_EPROTO, error);
        return;
    }
    //  Provenance: the message has now crossed the sending node.
    if (msg->npath >= PROTO_MAX_PATH) {
        s_link_refuse (session, frame->seq, FEDQ_ELOOP,
                       "provenance path is full");
        return;
    }
    msg->path[msg->npath++] = fedq_str_of (session->link_node);
    if (msg->nheaders + 2 <= PROTO_MAX_HEADERS) {
        msg->headers[msg->nheaders].key = fedq_str_of ("x-fedq-shovel");
        msg->headers[msg->nheaders++].value
          = fedq_str_of (session->link_name);
        msg->headers[msg->nheaders].key = fedq_str_of ("x-fedq-source");
        msg->headers[msg->nheaders++].value
          = fedq_str_of (session->link_node);
    }
    if (!session_digest_ok (self, frame, msg, body)) {
        s_link_refuse (session, frame->seq, FEDQ_EPROTO,
                       "digest mismatch: the body does not match its "
                       "SHA-256 (x-fedq-sha256)");
        return;
    }
    msg->redelivered = false;
    fedq_str_t key = (frame->present & PF_KEY) ? frame->key : msg->routing_key;
    msg->exchange = frame->exchange;
    msg->routing_key = key;
    broker_publish_t pub = {.msg = msg,
                            .exchange = frame->exchange,
                            .routing_key = key,
                            .body = zmq_msg_data (body),
                            .body_len = (uint32_t) zmq_msg_size (body),
                            .link = fedq_str_of (session->link_key),
                            .link_seq = frame->seq};
    broker_outcome_t outcome;
    fedq_rc_t rc = broker_publish (self->broker, &pub, &outcome);
    if (rc == FEDQ_OK)
        return;
    char text[256];
    switch (rc) {
        case FEDQ_EUNROUTABLE:
            snprintf (text, sizeof text,
                      "no queue bound to exchange \"%.*s\" for key \"%.*s\"",
                      (int) frame->exchange.len, frame->exchange.ptr,
                      (int) key.len, key.ptr);
            break;
        case FEDQ_ENOTFOUND:
            snprintf (text, sizeof text, "exchange \"%.*s\" not found",
                      (int) frame->exchange.len, frame->exchange.ptr);
            break;
        case FEDQ_EFULL:
            snprintf (text, sizeof text,
                      "destination queue full (overflow: reject-publish)");
            break;
        case FEDQ_ELOOP:
            snprintf (text, sizeof text,
                      "message already crossed node %s", self->cfg->node.id);
            break;
        case FEDQ_EAGAIN:
            snprintf (text, sizeof text, "out of sequence");
            break;
        default:
            snprintf (text, sizeof text, "not stored: %s", fedq_rc_name (rc));
    }
    s_link_refuse (session, frame->seq, rc, text);
}

static void
s_link_skip (node_t *self, session_t *session, const proto_frame_t *frame)
{
    if (!s_link_current (session, frame))
        return;
    s_confirm_due (self, session);
    char key[sizeof session->link_key + 2];
    s_link_mark_key (session, key, sizeof key);
    if (frame->seq > broker_mark (self->broker, key)) {
        broker_set_mark (self->broker, key, frame->seq);
        fedq_info ("link=%s from node %s: seq %" PRIu64
                   " skipped (dead-lettered at the source)",
                   session->link_name, session->link_node, frame->seq);
    }
}

static void
s_link_confirm (node_t *self, session_t *s, fedq_rc_t commit_rc)
{
    char key[sizeof s->link_key + 2];
    uint64_t mark = broker_mark (self->broker,
                                 s_link_mark_key (s, key, sizeof key));
    proto_frame_t f = {.version = PROTO_VERSION,
                       .cmd = PROTO_LINK_CONFIRM,
                       .present = PF_LINK | PF_EPOCH | PF_UPTO,
                       .link = fedq_str_of (s->link_name),
                       .epoch = s->link_epoch,
                       .upto = mark};
    node_send (self, s->id, s->idlen, &f, NULL, 0, NULL, 0);
    if (commit_rc && !s->reject_seq)
        s_link_refuse (s, mark + 1, commit_rc,
                       "the destination could not write its log");
    if (s->reject_seq) {
        proto_frame_t r = {.version = PROTO_VERSION,
                           .cmd = PROTO_LINK_REJECT,
                           .present = PF_LINK | PF_EPOCH | PF_SEQ | PF_CODE
                                      | PF_TEXT,
                           .link = fedq_str_of (s->link_name),
                           .epoch = s->link_epoch,
                           .seq = s->reject_seq,
                           .code = s->reject_code,
                           .text = fedq_str_of (s->reject_text)};
        node_send (self, s->id, s->idlen, &r, NULL, 0, NULL, 0);
        s->reject_seq = 0;
    }
}

//  --------------------------------------------------------------------
//  Federated queues: a member streaming to us on this endpoint

void
session_fed_closed (node_t *self, struct _fed_t *fed)
{
    for (session_t *s = zhashx_first (self->sessions); s;
         s = zhashx_next (self->sessions))
        if (s->fed == fed && s->fed_stream) {
            fed_session_closed (fed, &s->fed_stream);
            s->fed = NULL;
            s->gone = true;
        }
}

static fedq_rc_t
s_session_send (void *ctx, const proto_frame_t *frame, const uint8_t *env,
                size_t env_len, const uint8_t *body, size_t body_len)
{
    session_t *session = ctx;
    return node_send (session->node, session->id, session->idlen, frame,
                      env, env_len, body, body_len);
}

static void
s_fed_hello (node_t *self, session_t *session, const proto_frame_t *frame)
{
    fed_t *fed = NULL;
    for (size_t i = 0; i < self->nfeds; i++)
        if (fedq_str_eq (frame->queue, fed_name (self->feds[i])))
            fed = self->feds[i];
    if (!fed) {
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_ENOTFOUND,
                         "queue \"%.*s\" is not federated on node %s",
                         (int) frame->queue.len, frame->queue.ptr,
                         self->cfg->node.id);
        return;
    }
    if (session->fed_stream)
        fed_session_closed (session->fed, &session->fed_stream);
    session->heartbeat_ms = 10000;
    session->fed = fed;
    session->fed_stream = fed_session_hello (fed, frame, s_session_send,
                                             session);
}

void
session_confirm_all (node_t *self, fedq_rc_t commit_rc)
{
    for (size_t i = 0; i < self->nconfirm; i++) {
        session_t *s = self->confirm[i];
        if (!s)
            continue;
        s->confirm_due = false;
        if (s->link_key[0]) {
            s_link_confirm (self, s, commit_rc);
            continue;
        }
        if (commit_rc) {
            //  Nothing of this turn is durable: return every publish.
            for (uint64_t seq = s->batch_first_seq; seq <= s->last_seq;
                 seq++) {
                proto_frame_t ret = {
                  .version = PROTO_VERSION,
                  .cmd = PROTO_RETURN,
                  .present = PF_SEQ | PF_CODE | PF_TEXT,
                  .seq = seq,
                  .code = commit_rc,
                  .text = fedq_str_of ("the node could not write its log; "
                                       "not stored")};
                node_send (self, s->id, s->idlen, &ret, NULL, 0, NULL, 0);
            }
        }
        proto_frame_t f = {.version = PROTO_VERSION,
                           .cmd = PROTO_CONFIRM,
                           .present = PF_UPTO,
                           .upto = s->last_seq};
        node_send (self, s->id, s->idlen, &f, NULL, 0, NULL, 0);
    }
    self->nconfirm = 0;
}

static void
s_declare_queue (node_t *self, session_t *session, const proto_frame_t *frame)
{
    char name[PROTO_MAX_NAME + 1];
    if (!s_name (self, session, frame, frame->name, "queue", name, false))
        return;
    proto_qopts_t opts = frame->qopts;
    if (!(frame->present & PF_QOPTS))
        opts.durable = true;
    if (opts.max_priority > 9) {
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_EINVAL,
                         "queue \"%s\": max_priority must be 0 to 9, got %u",
                         name, opts.max_priority);
        return;
    }
    queue_t *queue = NULL;
    fedq_rc_t rc = broker_declare_queue (self->broker, name, &opts, false,
                                         frame->flags & PFL_PASSIVE, &queue);
    s_reply_rc (self, session, frame, rc, "queue", name,
                queue ? queue_depth (queue) : 0);
}

static void
s_consume (node_t *self, session_t *session, const proto_frame_t *frame)
{
    char name[PROTO_MAX_NAME + 1];
    char tag[PROTO_MAX_NAME + 1];
    if (!s_name (self, session, frame, frame->queue, "queue", name, false)
        || !s_name (self, session, frame, frame->tag, "consumer tag", tag,
                    true))
        return;
    if (!tag[0])
        snprintf (tag, sizeof tag, "c%" PRIu64, ++session->consumer_seq);
    for (size_t i = 0; i < session->nconsumers; i++)
        if (strcmp (session->consumers[i]->tag, tag) == 0) {
            node_send_error (self, session->id, session->idlen, frame->rid,
                             FEDQ_EEXISTS,
                             "consumer tag \"%s\" is already used on this "
                             "session",
                             tag);
            return;
        }
    consumer_t *consumer;
    fedq_rc_t rc = broker_consume (self->broker, name, tag, frame->prefetch,
                                   frame->flags & PFL_NO_ACK, NULL, session,
                                   s_deliver, &consumer);
    if (rc == FEDQ_EDENIED) {
        queue_t *q = broker_queue (self->broker, name);
        if (q && q->fed_is_history)     //  "~fed.NAME": not a shovel's
            node_send_error (self, session->id, session->idlen, frame->rid,
                             rc, "queue \"%s\" is the history of a federated "
                             "queue, kept for its members to sync from; "
                             "consume \"%s\" instead",
                             name, name + strlen ("~fed."));
        else
            node_send_error (self, session->id, session->idlen, frame->rid,
                             rc, "queue \"%s\" is the source of shovel "
                             "\"%s\", its only consumer; consume at the "
                             "destination instead",
                             name, q && q->owner ? q->owner : "?");
        return;
    }
    if (rc) {
        s_reply_rc (self, session, frame, rc, "queue", name, 0);
        return;
    }
    consumer->cancelled = s_consumer_cancelled;
    consumer_t **list = realloc (session->consumers,
                                 (session->nconsumers + 1) * sizeof *list);
    if (!list)
        abort ();
    session->consumers = list;
    session->consumers[session->nconsumers++] = consumer;
    s_reply_ok (self, session, frame->rid, 0, tag);
}

static void
s_cancel (node_t *self, session_t *session, const proto_frame_t *frame)
{
    for (size_t i = 0; i < session->nconsumers; i++) {
        consumer_t *c = session->consumers[i];
        if (fedq_str_eq (frame->tag, c->tag)) {
            s_consumer_cancelled (c);
            broker_cancel (self->broker, &c);
            s_reply_ok (self, session, frame->rid, 0, NULL);
            return;
        }
    }
    node_send_error (self, session->id, session->idlen, frame->rid,
                     FEDQ_ENOTFOUND, "no consumer \"%.*s\" on this session",
                     (int) frame->tag.len, frame->tag.ptr);
}

static void
s_get (node_t *self, session_t *session, const proto_frame_t *frame)
{
    char name[PROTO_MAX_NAME + 1];
    if (!s_name (self, session, frame, frame->queue, "queue", name, false))
        return;
    queue_t *queue = broker_queue (self->broker, name);
    if (!queue) {
        s_reply_rc (self, session, frame, FEDQ_ENOTFOUND, "queue", name, 0);
        return;
    }
    if (queue->owner && queue->fed_is_history) {
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_EDENIED,
                         "queue \"%s\" is the history of a federated queue, "
                         "kept for its members to sync from; get from \"%s\" "
                         "instead",
                         name, name + strlen ("~fed."));
        return;
    }
    if (queue->owner) {
        node_send_error (self, session->id, session->idlen, frame->rid,
                         FEDQ_EDENIED,
                         "queue \"%s\" is the source of shovel \"%s\", its "
                         "only consumer",
                         name, queue->owner);
        return;
    }
    //  Staged messages are not yet on the queue: land them first.
    session_confirm_all (self, broker_commit (self->broker));
    qentry_t entry;
    store_msg_t rec;
    bool no_ack = frame->flags & PFL_NO_ACK;
    if (broker_get (self->broker, queue, no_ack, &entry, &rec)) {
        proto_frame_t f = {.version = PROTO_VERSION,
                           .cmd = PROTO_GET_EMPTY,
                           .present = PF_RID,
                           .rid = frame->rid};
        node_send (self, session->id, session->idlen, &f, NULL, 0, NULL, 0);
        return;
    }
    uint64_t dtag = session->next_dtag++;
    if (s_send_delivery (self, session, NULL, frame->rid ? frame->rid : 0,
                         dtag, &entry, &rec)) {
        if (!no_ack)
            broker_requeue (self->broker, queue->qid, &entry);
        return;
    }
    if (!no_ack) {
        s_unacked_t u = {.dtag = dtag, .qid = queue->qid, .entry = entry};
        s_unacked_push (session, &u);
    }
}

static void
s_topology (node_t *self, session_t *session, const proto_frame_t *frame)
{
    char a[PROTO_MAX_NAME + 1], b[PROTO_MAX_NAME + 1],
      k[PROTO_MAX_NAME + 1];
    uint64_t count = 0;
    fedq_rc_t rc;
    switch (frame->cmd) {
        case PROTO_DELETE_QUEUE:
            if (!s_name (self, session, frame, frame->name, "queue", a, false))
                return;
            rc = broker_delete_queue (self->broker, a,
                                      frame->flags & PFL_IF_UNUSED, &count);
            s_reply_rc (self, session, frame, rc, "queue", a, count);
            return;
        case PROTO_PURGE_QUEUE:
            if (!s_name (self, session, frame, frame->name, "queue", a, false))
                return;
            rc = broker_purge_queue (self->broker, a, &count);
            s_reply_rc (self, session, frame, rc, "queue", a, count);
            return;
        case PROTO_DECLARE_EXCHANGE: {
            if (!s_name (self, session, frame, frame->name, "exchange", a,
                         false))
                return;
            exchange_type_t type;
            if (exchange_type_parse (frame->type, &type)) {
                node_send_error (self, session->id, session->idlen,
                                 frame->rid, FEDQ_EINVAL,
                                 "exchange \"%s\": type must be direct, "
                                 "fanout or topic, got \"%.*s\"",
                                 a, (int) frame->type.len, frame->type.ptr);
                return;
            }
            rc = broker_declare_exchange (self->broker, a, type, false,
                                          frame->flags & PFL_PASSIVE);
            s_reply_rc (self, session, frame, rc, "exchange", a, 0);
            return;
        }
        case PROTO_DELETE_EXCHANGE:
            if (!s_name (self, session, frame, frame->name, "exchange", a,
                         false))
                return;
            rc = broker_delete_exchange (self->broker, a);
            s_reply_rc (self, session, frame, rc, "exchange", a, 0);
            return;
        case PROTO_BIND:
        case PROTO_UNBIND:
            if (!s_name (self, session, frame, frame->exchange, "exchange", a,
                         false)
                || !s_name (self, session, frame, frame->queue, "queue", b,
                            false)
                || !s_name (self, session, frame, frame->key, "key", k, true))
                return;
            rc = frame->cmd == PROTO_BIND
                   ? broker_bind (self->broker, a, b, k)
                   : broker_unbind (self->broker, a, b, k);
            if (rc == FEDQ_ENOTFOUND)
                node_send_error (self, session->id, session->idlen,
                                 frame->rid, rc,
                                 "%s exchange \"%s\" queue \"%s\" key "
                                 "\"%s\": exchange, queue or binding not "
                                 "found",
                                 frame->cmd == PROTO_BIND ? "bind" : "unbind",
                                 a, b, k);
            else
                s_reply_rc (self, session, frame, rc, "binding", k, 0);
            return;
    }
}

void
session_handle (node_t *self, const uint8_t *id, size_t idlen,
                const proto_frame_t *frame, zmq_msg_t *env, zmq_msg_t *body)
{
    session_t *session = s_session_lookup (self, id, idlen, true);
    if (!session)
        return;
    session->last_seen = fedq_mono_ms ();
    if (self->security && !session_authorized (self, session, frame))
        return;
    if (frame->cmd == PROTO_HELLO || frame->cmd == PROTO_LINK_HELLO
        || frame->cmd == PROTO_FED_HELLO)
        session->hello = true;
    else if (!session->hello) {
        //  A peer we do not know: this node restarted, or the connection
        //  was re-established and its session with it. Confirming its
        //  publishes would cover ones that never arrived, so nothing is
        //  accepted until it says HELLO again. Told once; the rest of its
        //  frames are dropped.
        if (frame->cmd == PROTO_PUBLISH) {
            proto_frame_t ret = {.version = PROTO_VERSION,
                                 .cmd = PROTO_RETURN,
                                 .present = PF_SEQ | PF_CODE | PF_TEXT,
                                 .seq = frame->seq,
                                 .code = FEDQ_ESESSION,
                                 .text = fedq_str_of (
                                   "unknown session: send HELLO and "
                                   "publish again")};
            node_send (self, id, idlen, &ret, NULL, 0, NULL, 0);
        }
        if (!session->told && frame->cmd != PROTO_BYE) {
            session->told = true;
            node_send_error (self, id, idlen, frame->rid, FEDQ_ESESSION,
                             "unknown session (the node restarted or the "
                             "session expired): send HELLO first");
        }
        if (frame->cmd == PROTO_BYE)
            session->gone = true;
        return;
    }
    switch (frame->cmd) {
        case PROTO_PUBLISH:
            s_publish (self, session, frame, env, body);
            return;
        case PROTO_ACK:
        case PROTO_NACK:
        case PROTO_REJECT: {
            s_settle_t how = frame->cmd == PROTO_ACK    ? SETTLE_ACK
                             : frame->cmd == PROTO_REJECT ? SETTLE_REJECT
                             : (frame->flags & PFL_REQUEUE) ? SETTLE_REQUEUE
                                                            : SETTLE_REJECT;
            if (s_settle (self, session, frame->dtag,
                          frame->flags & PFL_MULTIPLE, how))
                node_send_error (self, session->id, session->idlen,
                                 frame->rid, FEDQ_ENOTFOUND,
                                 "%s: no unsettled delivery with dtag %" PRIu64
                                 " on this session",
                                 proto_cmd_name ((int) frame->cmd),
                                 frame->dtag);
            return;
        }
        case PROTO_HELLO: {
            if (frame->present & PF_HEARTBEAT && frame->heartbeat_ms >= 100)
                session->heartbeat_ms = frame->heartbeat_ms;
            //  A client that reconnects continues its publish numbering.
            if (frame->present & PF_SEQ)
                session->last_seq = frame->seq;
            proto_frame_t f = {.version = PROTO_VERSION,
                               .cmd = PROTO_HELLO_OK,
                               .present = PF_RID | PF_NODE | PF_TEXT,
                               .rid = frame->rid,
                               .node = fedq_str_of (self->cfg->node.id),
                               .text = fedq_str_of (FEDQ_VERSION)};
            node_send (self, id, idlen, &f, NULL, 0, NULL, 0);
            return;
        }
        case PROTO_PING: {
            proto_frame_t f = {.version = PROTO_VERSION,
                               .cmd = PROTO_PONG,
                               .present = PF_RID,
                               .rid = frame->rid};
            node_send (self, id, idlen, &f, NULL, 0, NULL, 0);
            return;
        }
        case PROTO_BYE:
            //  End it now (docs/protocol.md §7.2), not at the next reap
            //  up to a second later: until then its consumer kept up to
            //  prefetch messages unacked, out of every other consumer's
            //  reach (a `fedq consume --count N` followed by a `fedq get`
            //  found them gone). Not inside dispatch: safe to free here.
            s_session_end (self, session);
            return;
        case PROTO_DECLARE_QUEUE:
            s_declare_queue (self, session, frame);
            return;
        case PROTO_DELETE_QUEUE:
        case PROTO_PURGE_QUEUE:
        case PROTO_DECLARE_EXCHANGE:
        case PROTO_DELETE_EXCHANGE:
        case PROTO_BIND:
        case PROTO_UNBIND:
            //  Topology changes see every publish before them landed.
            session_confirm_all (self, broker_commit (self->broker));
            s_topology (self, session, frame);
            return;
        case PROTO_CONSUME:
            s_consume (self, session, frame);
            return;
        case PROTO_CANCEL:
            s_cancel (self, session, frame);
            return;
        case PROTO_GET:
            s_get (self, session, frame);
            return;
        case PROTO_LINK_HELLO:
            s_link_hello (self, session, frame);
            return;
        case PROTO_LINK_MSG:
            s_link_msg (self, session, frame, env, body);
            return;
        case PROTO_LINK_SKIP:
            s_link_skip (self, session, frame);
            return;
        case PROTO_FED_HELLO:
            s_fed_hello (self, session, frame);
            return;
        case PROTO_FED_EVENT:
        case PROTO_FED_EVENTS:
        case PROTO_FED_ACK:
        case PROTO_FED_RESYNC:
        case PROTO_FED_KEEP:
        case PROTO_FED_DIRECT:
            if (session->fed_stream)
                fed_session_frame (session->fed, session->fed_stream, frame,
                                   env ? zmq_msg_data (env) : NULL,
                                   env ? zmq_msg_size (env) : 0,
                                   body ? zmq_msg_data (body) : NULL,
                                   body ? zmq_msg_size (body) : 0);
            return;
        case PROTO_STATUS: {
            char *json = node_status_json (self);
            proto_frame_t f = {.version = PROTO_VERSION,
                               .cmd = PROTO_STATUS_OK,
                               .present = PF_RID | PF_JSON,
                               .rid = frame->rid,
                               .json = fedq_str_of (json)};
            node_send (self, id, idlen, &f, NULL, 0, NULL, 0);
            free (json);
            return;
        }
        default:
            self->bad_frames++;
            node_send_error (self, id, idlen, frame->rid, FEDQ_EPROTO,
                             "unknown or unexpected command %u (%s)",
                             frame->cmd, proto_cmd_name ((int) frame->cmd));
    }
}
