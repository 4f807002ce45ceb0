//  node/broker_fed.c — the data side of federated queues: event ids,
//  history, tombstones (federation/fed.c drives the links).
#define _GNU_SOURCE
#include "broker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
//  --------------------------------------------------------------------
//  Federation keys: (origin, event sequence) packed in 64 bits, origins
//  interned to small numbers.

uint32_t
broker_origin_id (broker_t *self, fedq_str_t origin)
{
    char name[PROTO_MAX_NAME + 1];
    size_t n = origin.len > PROTO_MAX_NAME ? PROTO_MAX_NAME : origin.len;
    memcpy (name, origin.ptr ? origin.ptr : "", n);
    name[n] = 0;
    void *id = zhashx_lookup (self->origins, name);
    if (id)
        return (uint32_t) (uintptr_t) id;
    self->origin_names = realloc (self->origin_names,
                                  (self->norigins + 2) * sizeof (char *));
    if (!self->origin_names)
        abort ();
    self->origin_names[++self->norigins] = strdup (name);
    zhashx_insert (self->origins, name, (void *) (uintptr_t) self->norigins);
    return (uint32_t) self->norigins;
}

const char *
broker_origin_name (broker_t *self, uint32_t id)
{
    return id && id <= self->norigins ? self->origin_names[id] : "";
}

uint64_t
broker_fed_key (uint32_t origin_id, uint64_t seq)
{
    return ((uint64_t) origin_id << 48) | (seq & 0xFFFFFFFFFFFFull);
}

//  The federation event id a record carries for queue q: the mark
//  "f/NAME/ORIGIN". False when it has none.
bool
broker_fed_id (const queue_t *q, const store_msg_t *rec, fedq_str_t *origin,
               uint64_t *seq)
{
    size_t plen = strlen (q->fed_prefix);
    for (uint32_t i = 0; i < rec->nmarks; i++) {
        fedq_str_t k = rec->marks[i].key;
        if (k.len > plen && memcmp (k.ptr, q->fed_prefix, plen) == 0) {
            origin->ptr = k.ptr + plen;
            origin->len = k.len - (uint32_t) plen;
            *seq = rec->marks[i].value;
            return true;
        }
    }
    return false;
}

bool
broker_fed_peek (broker_t *self, const queue_t *q, const qentry_t *entry,
                 fedq_str_t *origin, uint64_t *seq)
{
    store_msg_t rec;
    return store_peek (self->store, entry->pos, &rec) == FEDQ_OK
           && broker_fed_id (q, &rec, origin, seq);
}

//  A tombstone record names its target in message_id: "~tomb:ORIGIN:SEQ".
#define FED_TOMB_PREFIX "~tomb:"

bool
broker_tomb_target (broker_t *self, const store_msg_t *rec, uint64_t *key)
{
    fedq_str_t mid = rec->message_id;
    size_t plen = strlen (FED_TOMB_PREFIX);
    if (mid.len <= plen || memcmp (mid.ptr, FED_TOMB_PREFIX, plen) != 0)
        return false;
    const char *colon = NULL;
    for (uint32_t i = mid.len; i-- > plen;)
        if (mid.ptr[i] == ':') {
            colon = mid.ptr + i;
            break;
        }
    if (!colon)
        return false;
    fedq_str_t origin = {mid.ptr + plen, (uint32_t) (colon - mid.ptr - plen)};
    uint64_t seq = 0;
    for (const char *c = colon + 1; c < mid.ptr + mid.len; c++) {
        if (*c < '0' || *c > '9')
            return false;
        seq = seq * 10 + (uint64_t) (*c - '0');
    }
    *key = broker_fed_key (broker_origin_id (self, origin), seq);
    return true;
}

//  --------------------------------------------------------------------
//  Federated queues: events, tombstones, history (federation/ drives the
//  links; the data lives here so one record holds each event).

static proto_msg_t s_fed_msg;   //  scratch; the broker is single-threaded

fedq_rc_t
broker_fed_enable (broker_t *self, queue_t *queue, bool global)
{
    char name[PROTO_MAX_NAME + 8];
    snprintf (name, sizeof name, "~fed.%s", queue->name);
    queue_t *h = zhashx_lookup (self->queues, name);
    if (!h) {
        proto_qopts_t opts = {.durable = true};
        fedq_rc_t rc = broker_declare_queue (self, name, &opts, true, false,
                                             &h);
        if (rc)
            return rc;
    }
    free (h->owner);
    h->owner = strdup ("~federation");
    h->fed_is_history = true;
    queue->fed_history = h;
    free (queue->fed_prefix);
    char prefix[PROTO_MAX_NAME + 4];
    snprintf (prefix, sizeof prefix, "f/%s/", queue->name);
    queue->fed_prefix = strdup (prefix);
    free (h->fed_prefix);           //  set before when a reload re-enables
    h->fed_prefix = strdup (prefix);
    queue->fed_global = global;
    if (!global || queue->fed_index)
        return FEDQ_OK;
    //  Rebuild the index of live messages by event id, then replay the
    //  tombstones still in the history over it.
    queue->fed_index = calloc (1, sizeof (u64map_t));
    queue->fed_tombs = calloc (1, sizeof (u64map_t));
    for (int p = 0; p <= 9; p++) {
        qring_t *ring = &queue->ready[p];
        for (size_t i = 0; i < ring->count; i++) {
            const qentry_t *e = &ring->items[(ring->head + i) & (ring->cap - 1)];
            store_msg_t rec;
            fedq_str_t origin;
            uint64_t seq;
            if (store_read (self->store, e->pos, &rec) == FEDQ_OK
                && broker_fed_id (queue, &rec, &origin, &seq))
                u64map_put (queue->fed_index,
                            broker_fed_key (broker_origin_id (self, origin),
                                            seq),
                            e->pos);
        }
    }
    qring_t *ring = &h->ready[0];
    for (size_t i = 0; i < ring->count; i++) {
        const qentry_t *e = &ring->items[(ring->head + i) & (ring->cap - 1)];
        store_msg_t rec;
        uint64_t key, target;
        if (store_read (self->store, e->pos, &rec) == FEDQ_OK
            && broker_tomb_target (self, &rec, &key)) {
            if (u64map_get (queue->fed_index, key, &target)) {
                u64map_del (queue->fed_index, key);
                queue_skip_add (queue, target);
            }
            else
                u64map_put (queue->fed_tombs, key, 1);
        }
    }
    return FEDQ_OK;
}

//  Write a tombstone event of this node for (origin, seq) into the
//  history of q, settling *settle in the same record when not NULL.
static fedq_rc_t
s_tomb_write (broker_t *self, queue_t *q, fedq_str_t origin, uint64_t seq,
              const store_settle_t *settle)
{
    char mid[PROTO_MAX_NAME + 1];
    snprintf (mid, sizeof mid, FED_TOMB_PREFIX "%.*s:%" PRIu64,
              (int) origin.len, origin.ptr, seq);
    uint64_t tseq = ++self->seq;
    int64_t now = fedq_wall_ms ();
    char fed_key[2 * PROTO_MAX_NAME + 4], own_key[PROTO_MAX_NAME + 3];
    snprintf (fed_key, sizeof fed_key, "%s%s", q->fed_prefix, self->fed_origin);
    snprintf (own_key, sizeof own_key, "o/%s", self->node_id);
    store_mark_t marks[2] = {{fedq_str_of (fed_key), tseq},
                             {fedq_str_of (own_key), tseq}};
    memset (&s_fed_msg, 0, sizeof s_fed_msg);
    s_fed_msg.origin = fedq_str_of (self->node_id);
    s_fed_msg.seq = tseq;
    s_fed_msg.message_id = fedq_str_of (mid);
    s_fed_msg.published_at = now;
    self->env.size = 0;
    proto_msg_encode (&s_fed_msg, &self->env);
    store_msg_t out = {.origin = fedq_str_of (self->node_id),
                       .seq = tseq,
                       .message_id = fedq_str_of (mid),
                       .published_at = now,
                       .nqueues = 1,
                       .qids = &q->fed_history->qid,
                       .nmarks = 2,
                       .marks = marks,
                       .nsettles = settle ? 1 : 0,
                       .settles = settle,
                       .env = self->env.data,
                       .env_len = (uint32_t) self->env.size};
    store_pos_t pos;
    fedq_rc_t rc = store_append_msg (self->store, &out, &pos);
    if (rc)
        return rc;
    qentry_t he = {.pos = pos, .enqueued_at = now};
    broker_stage (self, q->fed_history, &he);
    return FEDQ_OK;
}

//  An ack on a global federated queue: the message leaves every member.
void
broker_fed_tombstone (broker_t *self, queue_t *q, const qentry_t *entry)
{
    store_msg_t rec;
    fedq_str_t origin;
    uint64_t seq;
    if (store_read (self->store, entry->pos, &rec)
        || !broker_fed_id (q, &rec, &origin, &seq)) {
        broker_settle (self, q, entry);
        return;
    }
    u64map_del (q->fed_index,
                broker_fed_key (broker_origin_id (self, origin), seq));
    store_settle_t settle = {q->qid, entry->pos};
    if (s_tomb_write (self, q, origin, seq, &settle))
        broker_settle (self, q, entry);
}

//  A full resync showed the message of key gone elsewhere: remove it
//  here the way a tombstone that arrives does (the tombstone written
//  makes it durable and tells the other members).
void
broker_fed_forget (broker_t *self, queue_t *q, uint64_t key)
{
    uint64_t pos;
    if (!q->fed_index || !u64map_get (q->fed_index, key, &pos))
        return;
    const char *origin = broker_origin_name (self, (uint32_t) (key >> 48));
    if (s_tomb_write (self, q, fedq_str_of (origin), key & 0xFFFFFFFFFFFFull,
                      NULL))
        return;                 //  logged by the store; kept for now
    u64map_del (q->fed_index, key);
    queue_skip_add (q, pos);
}

fedq_rc_t
broker_fed_apply (broker_t *self, queue_t *q, fedq_str_t origin,
                  uint64_t fseq, const uint8_t *env, uint32_t env_len,
                  const uint8_t *body, uint32_t body_len,
                  broker_outcome_t *outcome)
{
    *outcome = BROKER_STAGED;
    queue_t *h = q->fed_history;
    if (!h || origin.len == 0 || origin.len > PROTO_MAX_NAME)
        return FEDQ_EINVAL;
    char fed_key[2 * PROTO_MAX_NAME + 4];
    size_t plen = strlen (q->fed_prefix);   //  "f/" + a name + "/"
    memcpy (fed_key, q->fed_prefix, plen);
    memcpy (fed_key + plen, origin.ptr, origin.len);
    fed_key[plen + origin.len] = 0;
    //  Each origin's events are applied in order, each once: anything at
    //  or below the mark arrived before by another path.
    if (fseq <= store_mark (self->store, fed_key)) {
        *outcome = BROKER_DUPLICATE;
        self->stats.duplicates_total++;
        return FEDQ_OK;
    }
    const char *error = NULL;
    if (proto_msg_decode (env, env_len, &s_fed_msg, &error))
        return FEDQ_EPROTO;
    int64_t now = fedq_wall_ms ();
    store_msg_t probe = {.message_id = s_fed_msg.message_id};
    uint64_t target_key = 0;
    bool tomb = broker_tomb_target (self, &probe, &target_key);
    uint64_t key = broker_fed_key (broker_origin_id (self, origin), fseq);
    bool to_queue = !tomb;
    if (to_queue && q->fed_global && u64map_del (q->fed_tombs, key))
        to_queue = false;       //  consumed elsewhere before it got here
    uint64_t qids[2];
    uint32_t nq = 0;
    if (to_queue)
        qids[nq++] = q->qid;
    qids[nq++] = h->qid;
    store_mark_t mark = {fedq_str_of (fed_key), fseq};
    int64_t expires = s_fed_msg.ttl_ms ? now + (int64_t) s_fed_msg.ttl_ms : 0;
    store_msg_t rec = {.origin = s_fed_msg.origin,
                       .seq = s_fed_msg.seq,
                       .message_id = s_fed_msg.message_id,
                       .published_at = s_fed_msg.published_at,
                       .expires_at = expires,
                       .priority = s_fed_msg.priority > 9 ? 9
                                                          : s_fed_msg.priority,
                       .nqueues = nq,
                       .qids = qids,
                       .nmarks = 1,
                       .marks = &mark,
                       .env = env,
                       .env_len = env_len,
                       .body = body,
                       .body_len = body_len};
    store_pos_t pos;
    fedq_rc_t rc = store_append_msg (self->store, &rec, &pos);
    if (rc)
        return rc;
    qentry_t entry = {.pos = pos,
                      .expires_at = to_queue ? broker_expiry (q, expires, now) : 0,
                      .enqueued_at = now,
                      .size = body_len,
                      .priority = rec.priority};
    if (to_queue && q->fed_global && q->fed_handoff_ms) {
        //  Handoff: held here while the origin's consumers may take it.
        int rank = queue_handoff_rank (q, origin);
        entry.flags = (uint8_t) (QENTRY_HELD
                                 | ((rank - 1) << QENTRY_RANK_SHIFT));
        int64_t due = now + (int64_t) q->fed_handoff_ms;
        if (due < self->held_due)
            self->held_due = due;
    }
    if (to_queue) {
        broker_stage (self, q, &entry);
        q->published_total++;
        if (q->fed_global)
            u64map_put (q->fed_index, key, pos);
        if (q->opts.overflow == PROTO_OVERFLOW_DROP_HEAD)
            broker_drop_head (self, q);
    }
    entry.expires_at = 0;
    entry.flags = 0;
    broker_stage (self, h, &entry);
    if (tomb && q->fed_global) {
        uint64_t target;
        if (u64map_get (q->fed_index, target_key, &target)) {
            u64map_del (q->fed_index, target_key);
            queue_skip_add (q, target);
        }
        else
            u64map_put (q->fed_tombs, target_key, 1);
    }
    return FEDQ_OK;
}

static void
s_settle_removed (void *ctx, const qentry_t *entry)
{
    queue_t *q = ((void **) ctx)[1];
    broker_settle (((void **) ctx)[0], q, entry);
    q->acked_total++;
}

//  Settle now the messages of q that tombstones removed but that still
//  wait in its ready rings: once their tombstones leave the history, a
//  restart would not remove them again.
void
broker_fed_settle_removed (broker_t *self, queue_t *q)
{
    void *ctx[2] = {self, q};
    queue_skip_flush (q, s_settle_removed, ctx);
}

//  Drop the n oldest events of a history queue (every peer has them).
void
broker_fed_compact (broker_t *self, queue_t *h, uint64_t n)
{
    qentry_t entry;
    while (n-- && queue_pop (h, &entry)) {
        broker_settle (self, h, &entry);
        h->compacted++;
    }
}

