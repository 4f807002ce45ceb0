//  client/fedq_client_publish.c — pipelined publishing: seq per publish,
//  a window of unsettled ones, cumulative CONFIRM and per-seq RETURN.
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
//  Publish accounting

//  Is seq among the returned ones above settled_upto?
static bool
s_was_returned (fedq_client_t *self, uint64_t seq)
{
    size_t lo = 0, hi = self->nreturned;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (self->returned[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < self->nreturned && self->returned[lo] == seq;
}

void
client_on_return (fedq_client_t *self, const proto_frame_t *f)
{
    uint64_t seq = f->seq;
    if (!(f->present & PF_SEQ) || seq <= self->settled_upto
        || seq > self->last_seq || s_was_returned (self, seq)) {
        fedq_debug ("ignoring RETURN for seq %" PRIu64, seq);
        return;
    }
    if (self->nreturned == self->returned_cap) {
        size_t cap = self->returned_cap ? self->returned_cap * 2 : 64;
        uint64_t *grown = realloc (self->returned, cap * sizeof *grown);
        if (!grown)
            abort ();
        self->returned = grown;
        self->returned_cap = cap;
    }
    //  RETURNs come in seq order; insert sorted all the same.
    size_t at = self->nreturned;
    while (at > 0 && self->returned[at - 1] > seq) {
        self->returned[at] = self->returned[at - 1];
        at--;
    }
    self->returned[at] = seq;
    self->nreturned++;
    self->returned_total++;
    fedq_rc_t code = client_wire_rc (f->code);
    self->last_return_code = code;
    if (self->settle_fn) {
        char text[CLIENT_ERROR_MAX];
        uint32_t len = f->text.len < CLIENT_ERROR_MAX - 1 ? f->text.len
                                                     : CLIENT_ERROR_MAX - 1;
        if (len)
            memcpy (text, f->text.ptr, len);
        text[len] = 0;
        self->settle_fn (self->settle_arg, seq, code, text);
    }
}

void
client_on_confirm (fedq_client_t *self, uint64_t upto)
{
    if (upto > self->last_seq) {
        fedq_warn ("node confirmed up to seq %" PRIu64 " but we published "
                   "only %" PRIu64, upto, self->last_seq);
        upto = self->last_seq;
    }
    if (upto <= self->settled_upto)
        return;
    size_t r = 0;   //  returned[] entries at or below upto
    if (self->settle_fn) {
        for (uint64_t seq = self->settled_upto + 1; seq <= upto; seq++) {
            if (r < self->nreturned && self->returned[r] == seq) {
                r++;
                continue;
            }
            self->confirmed_total++;
            self->settle_fn (self->settle_arg, seq, FEDQ_OK, NULL);
        }
    }
    else {
        while (r < self->nreturned && self->returned[r] <= upto)
            r++;
        self->confirmed_total += (upto - self->settled_upto) - r;
    }
    if (r) {
        memmove (self->returned, self->returned + r,
                 (self->nreturned - r) * sizeof *self->returned);
        self->nreturned -= r;
    }
    self->settled_upto = upto;
}

uint64_t
client_unsettled (fedq_client_t *self)
{
    return self->last_seq - self->settled_upto - self->nreturned;
}

//  ---------------------------------------------------------------------
//  Publishing

void
fedq_client_set_settle_handler (fedq_client_t *self, fedq_settle_fn *fn,
                                void *arg)
{
    assert (self);
    self->settle_fn = fn;
    self->settle_arg = arg;
}

int64_t
fedq_client_publish (fedq_client_t *self, const fedq_message_t *msg,
                     const void *body, size_t size)
{
    assert (self);
    assert (msg);
    if (self->dead)
        return FEDQ_EIO;
    if (!self->open)
        return client_fail (self, FEDQ_EINVAL, "the session is closed");
    if (msg->nheaders > PROTO_MAX_HEADERS)
        return client_fail (self, FEDQ_EINVAL, "%u headers; at most %d allowed",
                            msg->nheaders, PROTO_MAX_HEADERS);
    if (msg->priority > 9)
        return client_fail (self, FEDQ_EINVAL, "priority %u; want 0 to 9",
                            msg->priority);
    //  Keep the window: wait for settlements while it is full.
    int64_t deadline = 0;
    while (client_unsettled (self) >= self->window) {
        int64_t now = fedq_mono_ms ();
        if (!deadline)
            deadline = now + self->timeout_ms;
        if (now >= deadline)
            return client_fail (self, FEDQ_ETIMEOUT,
                                "%" PRIu64 " publishes unconfirmed by node %s "
                                "for %u ms (window full)",
                                client_unsettled (self),
                                self->node_id, self->timeout_ms);
        fedq_rc_t rc = client_pump (self, (int) (deadline - now));
        if (rc != FEDQ_OK)
            return rc;
    }
    proto_frame_t f;
    client_frame_init (&f, PROTO_PUBLISH);
    f.present = PF_SEQ | PF_EXCHANGE | PF_KEY;
    f.flags = PFL_MANDATORY;
    f.seq = self->last_seq + 1;
    f.exchange = fedq_str_of (msg->exchange ? msg->exchange : "");
    f.key = fedq_str_of (msg->routing_key ? msg->routing_key : "");
    proto_msg_t *env = &self->envelope;
    env->exchange = f.exchange;
    env->routing_key = f.key;
    env->message_id = fedq_str_of (msg->message_id);
    env->priority = msg->priority;
    env->ttl_ms = msg->ttl_ms;
    env->nheaders = msg->nheaders;
    if (msg->nheaders)
        memcpy (env->headers, msg->headers,
                msg->nheaders * sizeof *msg->headers);
    fedq_rc_t rc = client_send (self, &f, env, body, size);
    if (rc != FEDQ_OK)
        return rc;
    self->last_seq = f.seq;
    //  Take in confirms as they come, without waiting.
    if (self->ring_count < 100000) {
        rc = client_pump (self, 0);
        if (rc != FEDQ_OK && rc != FEDQ_EAGAIN)
            return rc;
    }
    return (int64_t) f.seq;
}

fedq_rc_t
fedq_client_wait_confirms (fedq_client_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = fedq_mono_ms () + timeout_ms;
    fedq_rc_t rc = client_pump (self, 0);
    if (rc != FEDQ_OK)
        return rc;
    while (client_unsettled (self) > 0) {
        int left = -1;
        if (timeout_ms >= 0) {
            int64_t ms = deadline - fedq_mono_ms ();
            if (ms <= 0)
                return client_fail (self, FEDQ_ETIMEOUT,
                                    "%" PRIu64 " of %" PRIu64 " publishes not "
                                    "confirmed by node %s within %d ms",
                                    client_unsettled (self), self->last_seq,
                                    self->node_id, timeout_ms);
            left = (int) ms;
        }
        rc = client_pump (self, left);
        if (rc != FEDQ_OK)
            return rc;
    }
    return FEDQ_OK;
}

void
fedq_client_publish_stats (fedq_client_t *self, fedq_publish_stats_t *stats)
{
    assert (self);
    assert (stats);
    stats->published = self->last_seq;
    stats->confirmed = self->confirmed_total;
    stats->returned = self->returned_total;
    stats->unsettled = client_unsettled (self);
    stats->last_return_code = self->last_return_code;
}

