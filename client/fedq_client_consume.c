//  client/fedq_client_consume.c — consuming: CONSUME, deliveries kept
//  as received frames until fedq_client_recv, GET, ACK / NACK / REJECT.
#define _GNU_SOURCE
#include "fedq_client_internal.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  ---------------------------------------------------------------------
//  Consuming

void
fedq_delivery_release (fedq_delivery_t *d)
{
    assert (d);
    if (d->held)
        client_close_parts (d->parts, 3);
    d->held = false;
    d->body = NULL;
    d->body_size = 0;
    d->dtag = 0;
}

//  Take the three frames of a DELIVER into d and decode them.
static fedq_rc_t
s_delivery_fill (fedq_client_t *self, fedq_delivery_t *d, zmq_msg_t *src)
{
    for (int i = 0; i < 3; i++) {
        zmq_msg_init (&d->parts[i]);
        zmq_msg_move (&d->parts[i], &src[i]);
    }
    d->held = true;
    const char *error = NULL;
    if (proto_frame_decode (zmq_msg_data (&d->parts[0]),
                            zmq_msg_size (&d->parts[0]), &d->frame, &error)
            != FEDQ_OK
        || proto_msg_decode (zmq_msg_data (&d->parts[1]),
                             zmq_msg_size (&d->parts[1]), &d->msg, &error)
               != FEDQ_OK) {
        fedq_delivery_release (d);
        fedq_warn ("dropping a malformed DELIVER from node %s: %s",
                   self->node_id, error ? error : "?");
        return client_fail (self, FEDQ_EPROTO, "malformed DELIVER: %s",
                            error ? error : "?");
    }
    d->body = zmq_msg_data (&d->parts[2]);
    d->body_size = zmq_msg_size (&d->parts[2]);
    d->dtag = d->frame.dtag ? d->frame.dtag + self->dtag_base : 0;
    if (d->dtag > self->dtag_max)
        self->dtag_max = d->dtag;
    return FEDQ_OK;
}

fedq_rc_t
fedq_client_consume (fedq_client_t *self, const char *queue, const char *tag,
                     uint32_t prefetch, bool no_ack)
{
    assert (self);
    fedq_rc_t rc = client_check_name (self, "queue", queue);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f;
    client_frame_init (&f, PROTO_CONSUME);
    f.present = PF_QUEUE | PF_TAG | PF_PREFETCH;
    f.queue = fedq_str_of (queue);
    f.tag = fedq_str_of (tag ? tag : "fedq");
    f.prefetch = prefetch;
    if (no_ack)
        f.flags |= PFL_NO_ACK;
    rc = client_request_ok (self, &f, NULL);
    if (rc != FEDQ_OK)
        return rc;
    //  Remember it, to consume again on a new session (client_reopen).
    if (self->nconsumers == self->consumers_cap) {
        size_t cap = self->consumers_cap ? self->consumers_cap * 2 : 4;
        client_consumer_t *grown
            = realloc (self->consumers, cap * sizeof *grown);
        if (!grown)
            return client_fail (self, FEDQ_ENOMEM, "out of memory");
        self->consumers = grown;
        self->consumers_cap = cap;
    }
    client_consumer_t *c = &self->consumers[self->nconsumers++];
    memset (c, 0, sizeof *c);
    snprintf (c->queue, sizeof c->queue, "%s", queue);
    snprintf (c->tag, sizeof c->tag, "%s", tag ? tag : "fedq");
    c->prefetch = prefetch;
    c->no_ack = no_ack;
    return FEDQ_OK;
}

fedq_rc_t
fedq_client_cancel (fedq_client_t *self, const char *tag)
{
    assert (self);
    fedq_rc_t rc;
    proto_frame_t f;
    client_frame_init (&f, PROTO_CANCEL);
    f.present = PF_TAG;
    f.tag = fedq_str_of (tag ? tag : "fedq");
    rc = client_request_ok (self, &f, NULL);
    if (rc != FEDQ_OK)
        return rc;
    for (size_t i = 0; i < self->nconsumers; i++) {
        if (streq (self->consumers[i].tag, tag ? tag : "fedq")) {
            self->consumers[i] = self->consumers[--self->nconsumers];
            break;
        }
    }
    return FEDQ_OK;
}

fedq_rc_t
fedq_client_recv (fedq_client_t *self, fedq_delivery_t *d, int timeout_ms)
{
    assert (self);
    assert (d);
    fedq_delivery_release (d);
    int64_t deadline = fedq_mono_ms () + (timeout_ms > 0 ? timeout_ms : 0);
    while (true) {
        while (self->ring_count) {
            client_pending_t *slot = &self->ring[self->ring_head];
            self->ring_head = (self->ring_head + 1) % self->ring_cap;
            self->ring_count--;
            fedq_rc_t rc = s_delivery_fill (self, d, slot->parts);
            client_close_parts (slot->parts, 3);
            if (rc == FEDQ_OK)
                return FEDQ_OK;
        }
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t ms = deadline - fedq_mono_ms ();
            if (ms <= 0 && timeout_ms > 0)
                return FEDQ_ETIMEOUT;
            left = ms > 0 ? (int) ms : 0;
        }
        fedq_rc_t rc = client_pump (self, left);
        if (rc != FEDQ_OK)
            return rc;
        if (timeout_ms == 0 && !self->ring_count)
            return FEDQ_ETIMEOUT;
    }
}

fedq_rc_t
fedq_client_get (fedq_client_t *self, const char *queue, bool no_ack,
                 fedq_delivery_t *d)
{
    assert (self);
    assert (d);
    fedq_delivery_release (d);
    fedq_rc_t rc = client_check_name (self, "queue", queue);
    if (rc != FEDQ_OK)
        return rc;
    proto_frame_t f, reply;
    client_frame_init (&f, PROTO_GET);
    f.present = PF_QUEUE;
    f.queue = fedq_str_of (queue);
    if (no_ack)
        f.flags |= PFL_NO_ACK;
    rc = client_request (self, &f, &reply);
    if (rc != FEDQ_OK)
        return rc;
    if (reply.cmd == PROTO_GET_EMPTY)
        return client_fail (self, FEDQ_EAGAIN, "queue \"%s\" is empty", queue);
    if (reply.cmd != PROTO_DELIVER || self->reply_nparts != 3)
        return client_fail (self, FEDQ_EPROTO, "node answered GET with %s",
                            proto_cmd_name ((int) reply.cmd));
    rc = s_delivery_fill (self, d, self->reply);
    client_close_parts (self->reply, 3);
    self->reply_nparts = 0;
    return rc;
}

static fedq_rc_t
s_settle (fedq_client_t *self, proto_cmd_t cmd, uint64_t dtag, uint32_t flags)
{
    if (self->dead)
        return FEDQ_EIO;
    if (!self->open)
        return client_fail (self, FEDQ_EINVAL, "the session is closed");
    if (dtag && dtag <= self->dtag_base) {
        //  A delivery of a session that ended: the node has it back (it
        //  redelivers it on this session), so there is nothing to settle.
        self->stale_settles_total++;
        return client_fail (self, FEDQ_ESESSION,
                            "delivery %" PRIu64 " belongs to a session that "
                            "ended; the node delivers it again", dtag);
    }
    proto_frame_t f;
    client_frame_init (&f, cmd);
    f.present = PF_DTAG;
    f.dtag = dtag ? dtag - self->dtag_base : 0;
    f.flags = flags;
    return client_send (self, &f, NULL, NULL, 0);
}

fedq_rc_t
fedq_client_ack (fedq_client_t *self, uint64_t dtag, bool multiple)
{
    assert (self);
    return s_settle (self, PROTO_ACK, dtag, multiple ? PFL_MULTIPLE : 0);
}

fedq_rc_t
fedq_client_nack (fedq_client_t *self, uint64_t dtag, bool multiple,
                  bool requeue)
{
    assert (self);
    return s_settle (self, PROTO_NACK, dtag,
                     (multiple ? PFL_MULTIPLE : 0)
                         | (requeue ? PFL_REQUEUE : 0));
}

fedq_rc_t
fedq_client_reject (fedq_client_t *self, uint64_t dtag, bool multiple)
{
    assert (self);
    return s_settle (self, PROTO_REJECT, dtag, multiple ? PFL_MULTIPLE : 0);
}


void
fedq_client_session_stats (fedq_client_t *self, fedq_session_stats_t *stats)
{
    assert (self);
    assert (stats);
    stats->reopens = self->reopens_total;
    stats->stale_settles = self->stale_settles_total;
}
