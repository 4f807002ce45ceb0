//  client/fedq_client_io.c — libfedq's I/O: send, receive, dispatch.
//
//  Everything the node sends arrives on one socket in any order: replies
//  to our one outstanding request (matched by rid), CONFIRM and RETURN for
//  pipelined publishes, DELIVER for consumers, PONG for heartbeats. Every
//  wait of the library is client_pump: poll, drain with ZMQ_DONTWAIT,
//  dispatch each message to its slot (reply slot, delivery ring, publish
//  counters), send a PING when we have been silent for a heartbeat.
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

#define S_DRAIN_MAX 4096        //  messages handled per pump before returning

//  ---------------------------------------------------------------------
//  Sending

//  Send one part; retry when a signal interrupts a part after the first.
static int
s_send_part (void *sock, const void *data, size_t size, int flags, bool first)
{
    while (true) {
        int rc = zmq_send (sock, data, size, flags);
        if (rc >= 0 || errno != EINTR || first)
            return rc;
    }
}

//  Send a header, and for message commands the envelope and body.
fedq_rc_t
client_send (fedq_client_t *self, const proto_frame_t *frame,
             const proto_msg_t *msg, const void *body, size_t size)
{
    self->hbuf.size = 0;
    proto_frame_encode (frame, &self->hbuf);
    int rc = s_send_part (self->sock, self->hbuf.data, self->hbuf.size,
                          msg ? ZMQ_SNDMORE : 0, true);
    if (rc >= 0 && msg) {
        self->ebuf.size = 0;
        proto_msg_encode (msg, &self->ebuf);
        rc = s_send_part (self->sock, self->ebuf.data, self->ebuf.size,
                          ZMQ_SNDMORE, false);
        if (rc >= 0)
            rc = s_send_part (self->sock, body, size, 0, false);
    }
    if (rc < 0) {
        if (errno == EAGAIN)
            return client_fail (self, FEDQ_ETIMEOUT,
                                "cannot send %s to node at %s: not accepted "
                                "within %u ms (node down or not reading)",
                                proto_cmd_name ((int) frame->cmd),
                                self->endpoint, self->timeout_ms);
        if (errno == EINTR)
            return client_fail (self, FEDQ_EAGAIN, "interrupted");
        return client_fail (self, FEDQ_EIO, "cannot send %s to node at %s: %s",
                            proto_cmd_name ((int) frame->cmd), self->endpoint,
                            zmq_strerror (errno));
    }
    self->last_send_ms = fedq_mono_ms ();
    return FEDQ_OK;
}

//  Send a PING when we have been silent for a heartbeat; EIO when PINGs
//  have gone unanswered for three heartbeats.
static fedq_rc_t
s_heartbeat (fedq_client_t *self, int64_t now)
{
    if (self->ping_out_ms && now - self->ping_out_ms
                                 > 3 * (int64_t) self->heartbeat_ms) {
        self->dead = true;
        return client_fail (self, FEDQ_EIO,
                            "node %s at %s stopped answering (no reply to PING "
                            "for %" PRId64 " ms)",
                            self->node_id, self->endpoint,
                            now - self->ping_out_ms);
    }
    if (!self->open || now - self->last_send_ms < self->heartbeat_ms)
        return FEDQ_OK;
    proto_frame_t ping;
    client_frame_init (&ping, PROTO_PING);
    ping.present = PF_RID;
    ping.rid = ++self->next_rid;
    fedq_rc_t rc = client_send (self, &ping, NULL, NULL, 0);
    if (rc == FEDQ_OK && !self->ping_out_ms)
        self->ping_out_ms = now;
    return rc == FEDQ_ETIMEOUT ? FEDQ_OK : rc;
}

//  ---------------------------------------------------------------------
//  Receiving

void
client_close_parts (zmq_msg_t *parts, int nparts)
{
    for (int i = 0; i < nparts; i++)
        zmq_msg_close (&parts[i]);
}

//  Keep a consumer's delivery in the ring until fedq_client_recv.
static void
s_ring_push (fedq_client_t *self, zmq_msg_t *in)
{
    if (self->ring_count == self->ring_cap) {
        size_t cap = self->ring_cap ? self->ring_cap * 2 : 64;
        client_pending_t *grown = malloc (cap * sizeof *grown);
        if (!grown)
            abort ();
        //  Unwrap into the new array (zmq_msg_t may be moved bytewise).
        for (size_t i = 0; i < self->ring_count; i++)
            grown[i] = self->ring[(self->ring_head + i) % self->ring_cap];
        free (self->ring);
        self->ring = grown;
        self->ring_head = 0;
        self->ring_cap = cap;
    }
    client_pending_t *slot
        = &self->ring[(self->ring_head + self->ring_count) % self->ring_cap];
    for (int i = 0; i < 3; i++) {
        zmq_msg_init (&slot->parts[i]);
        zmq_msg_move (&slot->parts[i], &in[i]);
    }
    self->ring_count++;
}

void
client_reopen (fedq_client_t *self)
{
    //  Nothing published on the old session can be confirmed any more:
    //  the new session's cumulative confirms do not cover it. Settle all
    //  of it as returned (ESESSION), never confirmed.
    for (uint64_t seq = self->settled_upto + 1; seq <= self->last_seq;
         seq++) {
        proto_frame_t ret;
        client_frame_init (&ret, PROTO_RETURN);
        ret.present |= PF_SEQ | PF_CODE | PF_TEXT;
        ret.seq = seq;
        ret.code = FEDQ_ESESSION;
        ret.text = fedq_str_of ("the session ended before the node "
                                "confirmed it (it may or may not be stored)");
        client_on_return (self, &ret);
    }
    client_on_confirm (self, self->last_seq);
    //  Deliveries of the old session not handed out yet: the node gives
    //  them again (redelivered) to the new session's consumers.
    while (self->ring_count) {
        client_close_parts (self->ring[self->ring_head].parts, 3);
        self->ring_head = (self->ring_head + 1) % self->ring_cap;
        self->ring_count--;
    }
    self->dtag_base = self->dtag_max;
    self->reopens_total++;
    fedq_warn ("node at %s does not know this session (it restarted?): "
               "opening a new one%s", self->endpoint,
               self->nconsumers ? " and consuming again" : "");
    //  HELLO continues the publish numbering, so what comes next is
    //  accepted; its HELLO_OK and the CONSUME answers carry no rid we wait
    //  for, and an ERROR among them is recorded as the last error.
    proto_frame_t hello;
    client_frame_init (&hello, PROTO_HELLO);
    hello.present |= PF_HEARTBEAT | PF_SEQ;
    hello.heartbeat_ms = self->heartbeat_ms;
    hello.seq = self->last_seq;
    client_send (self, &hello, NULL, NULL, 0);
    for (size_t i = 0; i < self->nconsumers; i++) {
        const client_consumer_t *c = &self->consumers[i];
        proto_frame_t f;
        client_frame_init (&f, PROTO_CONSUME);
        f.present = PF_QUEUE | PF_TAG | PF_PREFETCH;
        f.queue = fedq_str_of (c->queue);
        f.tag = fedq_str_of (c->tag);
        f.prefetch = c->prefetch;
        if (c->no_ack)
            f.flags |= PFL_NO_ACK;
        client_send (self, &f, NULL, NULL, 0);
    }
}

//  Act on one message from the node; what is kept is moved out of in[].
static void
s_dispatch (fedq_client_t *self, zmq_msg_t *in, int nparts)
{
    proto_frame_t f;
    const char *error = NULL;
    if (proto_frame_decode (zmq_msg_data (&in[0]), zmq_msg_size (&in[0]), &f,
                            &error)
        != FEDQ_OK) {
        fedq_warn ("dropping a malformed frame from node at %s: %s",
                   self->endpoint, error ? error : "?");
        return;
    }
    bool is_reply = self->wait_rid && (f.present & PF_RID)
                    && f.rid == self->wait_rid;
    //  HELLO_OK is the reply to HELLO whatever rid it carries.
    if (f.cmd == PROTO_HELLO_OK && self->wait_rid && !self->open)
        is_reply = true;
    switch (f.cmd) {
        case PROTO_CONFIRM:
            if (f.present & PF_UPTO)
                client_on_confirm (self, f.upto);
            return;
        case PROTO_RETURN:
            client_on_return (self, &f);
            return;
        case PROTO_DELIVER:
            if (nparts != 3) {
                fedq_warn ("dropping a DELIVER of %d frames (want 3) from "
                           "node at %s", nparts, self->endpoint);
                return;
            }
            if (f.present & PF_RID) {
                if (is_reply)
                    break;
                //  A GET reply that came after its timeout: give it back.
                if ((f.present & PF_DTAG) && f.dtag)
                    fedq_client_nack (self, f.dtag + self->dtag_base, false,
                                      true);
                return;
            }
            s_ring_push (self, in);
            return;
        case PROTO_BYE:
            self->open = false;
            self->dead = true;
            client_fail (self, FEDQ_EIO, "node %s at %s closed the session",
                         self->node_id, self->endpoint);
            return;
        case PROTO_ERROR:
            if (f.code == FEDQ_ESESSION && self->open) {
                //  The node restarted (or expired the session): open a
                //  new one. A request that got this answer fails with it.
                client_reopen (self);
                if (!is_reply)
                    return;
                break;
            }
            if (!is_reply) {
                //  An error about something without a reply (ACK, ...).
                char *text = fedq_str_dup (f.text);
                fedq_warn ("node %s: %s (%s)", self->node_id, text,
                           fedq_rc_name (client_wire_rc (f.code)));
                client_fail (self, client_wire_rc (f.code), "%s", text);
                self->last_from_node = true;
                free (text);
                return;
            }
            break;
        default:
            if (!is_reply)
                return;     //  a late reply or a heartbeat PONG
    }
    //  The reply we wait for.
    client_close_parts (self->reply, self->reply_nparts);
    for (int i = 0; i < nparts; i++) {
        zmq_msg_init (&self->reply[i]);
        zmq_msg_move (&self->reply[i], &in[i]);
    }
    self->reply_nparts = nparts;
    self->reply_ready = true;
}

//  Receive and dispatch one message: 1 done, 0 nothing waiting (with
//  ZMQ_DONTWAIT), or a negative fedq_rc_t.
static int
s_recv_one (fedq_client_t *self, int flags)
{
    zmq_msg_t in[3];
    zmq_msg_init (&in[0]);
    if (zmq_msg_recv (&in[0], self->sock, flags) < 0) {
        int err = errno;
        zmq_msg_close (&in[0]);
        if (err == EAGAIN)
            return 0;
        if (err == EINTR)
            return FEDQ_EAGAIN;
        return client_fail (self, FEDQ_EIO,
                            "cannot receive from node at %s: %s",
                            self->endpoint, zmq_strerror (err));
    }
    int nparts = 1;
    bool extra = false;
    while (zmq_msg_more (&in[nparts - 1])) {
        zmq_msg_t *part = &in[nparts];
        zmq_msg_t scratch;
        if (nparts == 3) {
            part = &scratch;
            extra = true;
        }
        zmq_msg_init (part);
        //  The rest of a multipart message is already here.
        while (zmq_msg_recv (part, self->sock, 0) < 0 && errno == EINTR)
            ;
        if (part == &scratch) {
            bool more = zmq_msg_more (&scratch);
            zmq_msg_close (&scratch);
            if (!more)
                break;
        }
        else
            nparts++;
    }
    self->ping_out_ms = 0;
    if (extra)
        fedq_warn ("dropping a message of more than 3 frames from node at %s",
                   self->endpoint);
    else
        s_dispatch (self, in, nparts);
    client_close_parts (in, nparts);
    return 1;
}

//  Wait up to timeout_ms (-1 = forever) for something from the node, then
//  handle all that is waiting. Keeps the heartbeat going.
fedq_rc_t
client_pump (fedq_client_t *self, int timeout_ms)
{
    if (self->dead)
        return FEDQ_EIO;
    int handled = 0;
    while (handled < S_DRAIN_MAX) {
        int rc = s_recv_one (self, ZMQ_DONTWAIT);
        if (rc < 0)
            return (fedq_rc_t) rc;
        if (rc == 0)
            break;
        handled++;
    }
    int64_t now = fedq_mono_ms ();
    fedq_rc_t hrc = s_heartbeat (self, now);
    if (hrc != FEDQ_OK)
        return hrc;
    if (handled || timeout_ms == 0)
        return FEDQ_OK;
    //  Sleep until a message, the next heartbeat or the timeout.
    int64_t wait = (int64_t) self->heartbeat_ms - (now - self->last_send_ms);
    if (!self->open || wait < 0)
        wait = self->heartbeat_ms;
    if (self->ping_out_ms) {
        int64_t dead_in = self->ping_out_ms + 3 * (int64_t) self->heartbeat_ms
                          - now + 1;
        if (dead_in < wait)
            wait = dead_in;
    }
    if (timeout_ms > 0 && timeout_ms < wait)
        wait = timeout_ms;
    zmq_pollitem_t item = {self->sock, 0, ZMQ_POLLIN, 0};
    int rc = zmq_poll (&item, 1, (long) wait);
    if (rc < 0) {
        if (errno == EINTR)
            return client_fail (self, FEDQ_EAGAIN, "interrupted");
        return client_fail (self, FEDQ_EIO, "cannot poll the socket to %s: %s",
                            self->endpoint, zmq_strerror (errno));
    }
    if (rc > 0)
        return client_pump (self, 0);
    return s_heartbeat (self, fedq_mono_ms ());
}

fedq_rc_t
fedq_client_poll (fedq_client_t *self, int timeout_ms)
{
    assert (self);
    if (timeout_ms <= 0)
        return client_pump (self, timeout_ms);
    int64_t deadline = fedq_mono_ms () + timeout_ms;
    while (true) {
        int64_t left = deadline - fedq_mono_ms ();
        if (left <= 0)
            return FEDQ_OK;
        fedq_rc_t rc = client_pump (self, (int) left);
        if (rc != FEDQ_OK)
            return rc;
    }
}

