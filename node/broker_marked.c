//  node/broker_marked.c — settlements that carry a high-water mark in the
//  same record (shovel links' acks, dead-letters and skips).
#define _GNU_SOURCE
#include "broker_internal.h"

#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------
//  Marked settlements (shovel links)

fedq_rc_t
broker_ack_marked (broker_t *self, uint64_t qid, const qentry_t *entries,
                   size_t n, const char *key, uint64_t value)
{
    queue_t *queue = broker_queue_by_qid (self, qid);
    store_settle_t settles[STORE_MAX_SETTLES];
    store_mark_t mark = {fedq_str_of (key), value};
    size_t done = 0;
    while (done < n) {
        size_t chunk = n - done;
        if (chunk > STORE_MAX_SETTLES)
            chunk = STORE_MAX_SETTLES;
        for (size_t i = 0; i < chunk; i++) {
            settles[i].qid = qid;
            settles[i].pos = entries[done + i].pos;
            if (queue) {
                queue->unacked_count--;
                queue->unacked_bytes -= entries[done + i].size;
                queue->acked_total++;
            }
        }
        //  Every chunk carries the mark: the last chunk's value is the
        //  one that counts, and earlier ones never pass it.
        fedq_rc_t rc = store_append_settles_marks (self->store, settles,
                                                   chunk, &mark, 1);
        if (rc)
            return rc;
        done += chunk;
    }
    self->stats.acked_total += n;
    return FEDQ_OK;
}

fedq_rc_t
broker_dead_letter_marked (broker_t *self, uint64_t qid,
                           const qentry_t *entry, const char *dlq,
                           const char *reason, const char *key, uint64_t value)
{
    queue_t *queue = broker_queue_by_qid (self, qid);
    queue_t *target = zhashx_lookup (self->queues, dlq);
    if (!target) {
        proto_qopts_t opts = {.durable = true};
        fedq_rc_t rc = broker_declare_queue (self, dlq, &opts, false, false,
                                             &target);
        if (rc)
            return rc;
    }
    store_msg_t rec;
    fedq_rc_t rc = store_read (self->store, entry->pos, &rec);
    if (rc) {
        self->stats.corrupt_total++;
        return rc;
    }
    proto_msg_t *msg = malloc (sizeof *msg);
    const char *error = NULL;
    if (!msg)
        return FEDQ_ENOMEM;
    if (proto_msg_decode (rec.env, rec.env_len, msg, &error)) {
        free (msg);
        return FEDQ_EPROTO;
    }
    if (msg->nheaders + 2 <= PROTO_MAX_HEADERS) {
        msg->headers[msg->nheaders].key = fedq_str_of ("x-death-reason");
        msg->headers[msg->nheaders++].value = fedq_str_of (reason);
        msg->headers[msg->nheaders].key = fedq_str_of ("x-death-queue");
        msg->headers[msg->nheaders++].value
          = fedq_str_of (queue ? queue->name : "");
    }
    msg->redelivered = false;
    self->env.size = 0;
    proto_msg_encode (msg, &self->env);
    free (msg);
    store_settle_t settle = {qid, entry->pos};
    store_mark_t mark = {fedq_str_of (key), value};
    store_msg_t out = rec;
    out.expires_at = 0;
    out.nqueues = 1;
    out.qids = &target->qid;
    out.nmarks = 1;
    out.marks = &mark;
    out.nsettles = 1;
    out.settles = &settle;
    out.env = self->env.data;
    out.env_len = (uint32_t) self->env.size;
    store_pos_t pos;
    rc = store_append_msg (self->store, &out, &pos);
    if (rc)
        return rc;
    self->need_durable = true;
    if (queue) {
        queue->unacked_count--;
        queue->unacked_bytes -= entry->size;
        queue->dead_lettered_total++;
    }
    qentry_t e = {.pos = pos,
                  .enqueued_at = fedq_wall_ms (),
                  .size = entry->size,
                  .priority = entry->priority};
    broker_stage (self, target, &e);
    self->stats.dead_lettered_total++;
    return FEDQ_OK;
}

fedq_rc_t
broker_set_mark (broker_t *self, const char *key, uint64_t value)
{
    store_mark_t mark = {fedq_str_of (key), value};
    self->need_durable = true;
    return store_append_marks (self->store, &mark, 1);
}

uint64_t
broker_mark (broker_t *self, const char *key)
{
    return store_mark (self->store, key);
}


fedq_rc_t
broker_append_acks_marked (broker_t *self, const store_settle_t *settles,
                           size_t n, const char *key, uint64_t value)
{
    store_mark_t mark = {fedq_str_of (key), value};
    self->need_durable = true;
    return store_append_settles_marks (self->store, settles, n, &mark, 1);
}
