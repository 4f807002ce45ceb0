//  node/queue.c — a queue's in-memory index of ready messages.
#define _GNU_SOURCE
#include "queue.h"
#include "u64map.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

static void
s_ring_grow (qring_t *ring)
{
    size_t cap = ring->cap ? ring->cap * 2 : 64;
    qentry_t *items = malloc (cap * sizeof *items);
    if (!items) {
        fedq_error ("out of memory growing a queue to %zu entries", cap);
        abort ();
    }
    for (size_t i = 0; i < ring->count; i++)
        items[i] = ring->items[(ring->head + i) & (ring->cap - 1)];
    free (ring->items);
    ring->items = items;
    ring->head = 0;
    ring->cap = cap;
}

static void
s_ring_push_back (qring_t *ring, const qentry_t *entry)
{
    if (ring->count == ring->cap)
        s_ring_grow (ring);
    ring->items[(ring->head + ring->count) & (ring->cap - 1)] = *entry;
    ring->count++;
}

static void
s_ring_push_front (qring_t *ring, const qentry_t *entry)
{
    if (ring->count == ring->cap)
        s_ring_grow (ring);
    ring->head = (ring->head + ring->cap - 1) & (ring->cap - 1);
    ring->items[ring->head] = *entry;
    ring->count++;
}

static void
s_ring_shrink (qring_t *ring)
{
    //  Give memory back after a large backlog drains.
    if (ring->cap > 1024 && ring->count < ring->cap / 8) {
        size_t cap = ring->cap / 4;
        qentry_t *items = malloc (cap * sizeof *items);
        if (!items)
            return;
        for (size_t i = 0; i < ring->count; i++)
            items[i] = ring->items[(ring->head + i) & (ring->cap - 1)];
        free (ring->items);
        ring->items = items;
        ring->head = 0;
        ring->cap = cap;
    }
}

static bool
s_ring_pop_front (qring_t *ring, qentry_t *entry)
{
    if (ring->count == 0)
        return false;
    *entry = ring->items[ring->head];
    ring->head = (ring->head + 1) & (ring->cap - 1);
    ring->count--;
    if ((ring->count & 1023) == 0)
        s_ring_shrink (ring);
    return true;
}

//  The oldest held entry (release, drop-head, drain).
static bool
s_pop_held (queue_t *self, qentry_t *entry)
{
    for (int r = 0; r < QUEUE_HELD_RANKS; r++)
        if (s_ring_pop_front (&self->held[r], entry)) {
            self->held_count--;
            self->held_bytes -= entry->size;
            entry->flags &= (uint8_t) ~(QENTRY_HELD | QENTRY_RANK_MASK);
            return true;
        }
    return false;
}

queue_t *
queue_new (const char *name, uint64_t qid, const proto_qopts_t *opts)
{
    queue_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->name = strdup (name);
    self->qid = qid;
    //  Rings exist for every priority level up to 9 so that a change of
    //  max_priority by reload never loses entries.
    self->ready = calloc (10, sizeof (qring_t));
    queue_set_opts (self, opts);
    return self;
}

void
queue_destroy (queue_t **self_p)
{
    queue_t *self = *self_p;
    if (!self)
        return;
    for (int p = 0; p < 10; p++)
        free (self->ready[p].items);
    free (self->ready);
    for (int r = 0; r < QUEUE_HELD_RANKS; r++)
        free (self->held[r].items);
    for (size_t i = 0; i < self->fed_nmembers; i++)
        free (self->fed_members[i]);
    free (self->fed_members);
    free (self->fed_self);
    free (self->consumers);
    free (self->name);
    free (self->dlx);
    free (self->dlk);
    free (self->owner);
    free (self->fed_prefix);
    if (self->fed_index) {
        u64map_free (self->fed_index);
        free (self->fed_index);
    }
    if (self->skip) {
        u64map_free (self->skip);
        free (self->skip);
    }
    if (self->fed_tombs) {
        u64map_free (self->fed_tombs);
        free (self->fed_tombs);
    }
    if (self->dedup)
        zhashx_destroy ((zhashx_t **) &self->dedup);
    free (self);
    *self_p = NULL;
}

void
queue_set_opts (queue_t *self, const proto_qopts_t *opts)
{
    free (self->dlx);
    free (self->dlk);
    self->opts = *opts;
    self->dlx = opts->dead_letter_exchange.ptr
                    ? fedq_str_dup (opts->dead_letter_exchange)
                    : NULL;
    self->dlk = opts->dead_letter_routing_key.ptr
                    ? fedq_str_dup (opts->dead_letter_routing_key)
                    : NULL;
    //  Point the option slices at our own copies.
    self->opts.dead_letter_exchange = fedq_str_of (self->dlx);
    self->opts.dead_letter_routing_key = fedq_str_of (self->dlk);
    if (self->opts.max_priority > 9)
        self->opts.max_priority = 9;
    if (self->opts.dedup_window_ms && !self->dedup)
        self->dedup = zhashx_new ();
    else if (!self->opts.dedup_window_ms && self->dedup)
        zhashx_destroy ((zhashx_t **) &self->dedup);
}

static int
s_level (const queue_t *self, uint8_t priority)
{
    return priority > self->opts.max_priority ? self->opts.max_priority
                                              : priority;
}

void
queue_push (queue_t *self, const qentry_t *entry)
{
    if (entry->flags & QENTRY_HELD) {
        s_ring_push_back (
          &self->held[(entry->flags & QENTRY_RANK_MASK) >> QENTRY_RANK_SHIFT],
          entry);
        self->held_count++;
        self->held_bytes += entry->size;
        return;
    }
    s_ring_push_back (&self->ready[s_level (self, entry->priority)], entry);
    self->ready_count++;
    self->ready_bytes += entry->size;
}

void
queue_push_front (queue_t *self, const qentry_t *entry)
{
    s_ring_push_front (&self->ready[s_level (self, entry->priority)], entry);
    self->ready_count++;
    self->ready_bytes += entry->size;
}

const qentry_t *
queue_peek (queue_t *self)
{
    if (self->ready_count == 0)
        return NULL;
    for (int p = 9; p >= 0; p--) {
        qring_t *ring = &self->ready[p];
        if (ring->count)
            return &ring->items[ring->head];
    }
    return NULL;
}

bool
queue_pop (queue_t *self, qentry_t *entry)
{
    if (self->ready_count == 0)
        return false;
    for (int p = 9; p >= 0; p--)
        if (s_ring_pop_front (&self->ready[p], entry)) {
            self->ready_count--;
            self->ready_bytes -= entry->size;
            return true;
        }
    return false;
}

bool
queue_pop_oldest (queue_t *self, qentry_t *entry)
{
    if (self->ready_count == 0)
        return s_pop_held (self, entry);
    for (int p = 0; p <= 9; p++)
        if (s_ring_pop_front (&self->ready[p], entry)) {
            self->ready_count--;
            self->ready_bytes -= entry->size;
            return true;
        }
    return false;
}

uint64_t
queue_depth (const queue_t *self)
{
    return self->ready_count + self->held_count + self->unacked_count
           - self->skip_count;
}

size_t
queue_release_held (queue_t *self, int64_t now_ms, int64_t *next_due)
{
    size_t moved = 0;
    *next_due = INT64_MAX;
    for (int r = 0; r < QUEUE_HELD_RANKS; r++) {
        qring_t *ring = &self->held[r];
        int64_t delay = (int64_t) self->fed_handoff_ms * (r + 1);
        while (ring->count) {
            int64_t due = ring->items[ring->head].enqueued_at + delay;
            if (due > now_ms) {
                if (due < *next_due)
                    *next_due = due;
                break;
            }
            qentry_t e;
            s_ring_pop_front (ring, &e);
            self->held_count--;
            self->held_bytes -= e.size;
            e.flags &= (uint8_t) ~(QENTRY_HELD | QENTRY_RANK_MASK);
            queue_push (self, &e);
            moved++;
        }
    }
    return moved;
}

static int
s_cmp_str (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

void
queue_set_fed_members (queue_t *self, const char *self_id,
                       const char *const *peers, size_t npeers)
{
    for (size_t i = 0; i < self->fed_nmembers; i++)
        free (self->fed_members[i]);
    free (self->fed_members);
    free (self->fed_self);
    self->fed_self = strdup (self_id);
    self->fed_members = calloc (npeers + 1, sizeof (char *));
    self->fed_nmembers = 0;
    if (!self->fed_members)
        return;
    self->fed_members[self->fed_nmembers++] = strdup (self_id);
    for (size_t i = 0; i < npeers; i++)
        self->fed_members[self->fed_nmembers++] = strdup (peers[i]);
    qsort (self->fed_members, self->fed_nmembers, sizeof (char *), s_cmp_str);
}

int
queue_handoff_rank (const queue_t *self, fedq_str_t origin)
{
    size_t len = 0;
    while (len < origin.len && origin.ptr[len] != '~')
        len++;
    size_t n = self->fed_nmembers;
    long at = -1, me = -1;
    for (size_t i = 0; i < n; i++) {
        const char *m = self->fed_members[i];
        if (strlen (m) == len && memcmp (m, origin.ptr, len) == 0)
            at = (long) i;
        if (strcmp (m, self->fed_self) == 0)
            me = (long) i;
    }
    if (at < 0 || me < 0 || at == me)
        return 1;
    long rank = (me - at + (long) n) % (long) n;
    return rank > QUEUE_HELD_RANKS ? QUEUE_HELD_RANKS : (int) rank;
}

bool
queue_skip_take (queue_t *self, store_pos_t pos)
{
    if (!self->skip_count || !u64map_del (self->skip, pos))
        return false;
    self->skip_count--;
    return true;
}

void
queue_skip_add (queue_t *self, store_pos_t pos)
{
    if (!self->skip)
        self->skip = calloc (1, sizeof (u64map_t));
    if (!u64map_get (self->skip, pos, NULL)) {
        u64map_put (self->skip, pos, 1);
        self->skip_count++;
    }
}

bool
queue_would_overflow (const queue_t *self, uint64_t extra_msgs,
                      uint64_t extra_bytes)
{
    if (self->opts.max_length
        && queue_depth (self) + self->pending_count + extra_msgs
               > self->opts.max_length)
        return true;
    if (self->opts.max_bytes
        && self->ready_bytes + self->held_bytes + self->unacked_bytes
                   + self->pending_bytes
                   + extra_bytes
               > self->opts.max_bytes)
        return true;
    return false;
}

//  Take the entries of ring marked removed out, keeping the order.
static void
s_ring_skip_flush (queue_t *self, qring_t *ring, uint64_t *count,
                   uint64_t *bytes, void (*fn) (void *ctx, const qentry_t *e),
                   void *ctx)
{
    size_t kept = 0;
    for (size_t i = 0; i < ring->count; i++) {
        qentry_t e = ring->items[(ring->head + i) & (ring->cap - 1)];
        if (queue_skip_take (self, e.pos)) {
            (*count)--;
            *bytes -= e.size;
            e.flags &= (uint8_t) ~(QENTRY_HELD | QENTRY_RANK_MASK);
            fn (ctx, &e);
        }
        else
            ring->items[(ring->head + kept++) & (ring->cap - 1)] = e;
    }
    ring->count = kept;
}

void
queue_skip_flush (queue_t *self, void (*fn) (void *ctx, const qentry_t *e),
                  void *ctx)
{
    for (int p = 0; p <= 9 && self->skip_count; p++)
        s_ring_skip_flush (self, &self->ready[p], &self->ready_count,
                           &self->ready_bytes, fn, ctx);
    for (int r = 0; r < QUEUE_HELD_RANKS; r++)
        if (self->skip_count && self->held[r].count)
            s_ring_skip_flush (self, &self->held[r], &self->held_count,
                               &self->held_bytes, fn, ctx);
}

void
queue_drain (queue_t *self, void (*fn) (void *ctx, const qentry_t *e),
             void *ctx)
{
    qentry_t entry;
    while (queue_pop (self, &entry) || s_pop_held (self, &entry))
        if (fn)
            fn (ctx, &entry);
}

bool
queue_dedup_check (queue_t *self, fedq_str_t message_id, int64_t now_ms)
{
    if (!self->dedup || !message_id.len)
        return false;
    char key[PROTO_MAX_NAME + 1];
    if (message_id.len > PROTO_MAX_NAME)
        return false;
    memcpy (key, message_id.ptr, message_id.len);
    key[message_id.len] = 0;
    zhashx_t *hash = self->dedup;
    void *seen = zhashx_lookup (hash, key);
    if (seen) {
        int64_t at = (int64_t) (intptr_t) seen;
        if (now_ms - at < (int64_t) self->opts.dedup_window_ms)
            return true;
        zhashx_update (hash, key, (void *) (intptr_t) now_ms);
        return false;
    }
    zhashx_insert (hash, key, (void *) (intptr_t) (now_ms ? now_ms : 1));
    return false;
}

void
queue_dedup_expire (queue_t *self, int64_t now_ms)
{
    if (!self->dedup)
        return;
    zhashx_t *hash = self->dedup;
    int64_t cutoff = now_ms - (int64_t) self->opts.dedup_window_ms;
    zlistx_t *stale = zlistx_new ();
    zlistx_set_destructor (stale, (zlistx_destructor_fn *) zstr_free);
    for (void *item = zhashx_first (hash); item; item = zhashx_next (hash)) {
        if ((int64_t) (intptr_t) item < cutoff)
            zlistx_add_end (stale, strdup ((const char *) zhashx_cursor (hash)));
    }
    for (char *key = zlistx_first (stale); key; key = zlistx_next (stale))
        zhashx_delete (hash, key);
    zlistx_destroy (&stale);
}
