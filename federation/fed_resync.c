//  federation/fed_resync.c — bounded history and full resyncs (fed.h).
//
//  The history "~fed.NAME" keeps events for members that have not
//  acknowledged them, but never more than history_max_messages /
//  history_max_bytes: past the cap the oldest events go even if a member
//  lacks them. Whatever leaves the history (by the cap, or because every
//  member had it) raises the origin's *floor*, the durable mark
//  "h/NAME/ORIGIN": this history may lack events of ORIGIN at or below
//  it. A stream whose member's vector is below a floor cannot go on with
//  the history (the member would skip the gap silently); it sends a full
//  resync first:
//
//  | step   | frames                        | action                    |
//  | start  | —                             | s_resync_start: list the  |
//  |        |                               | queue's live messages at  |
//  |        |                               | or below the floors       |
//  | events | FED_EVENT (no count) each     | s_resync_send: the live   |
//  |        |                               | ones above the member's   |
//  |        |                               | vector, per-origin order  |
//  | keep   | FED_KEEP per origin (global)  | every live id listed      |
//  | end    | FED_RESYNC (the floors)       | s_resync_end: counters    |
//
//  The member applies the events (each once, as always), drops the
//  messages it holds at or below a floor that the keep lists do not name
//  (consume: global: they were consumed while their tombstones left the
//  history), raises its marks and its own floors to the floors, and the
//  history stream goes on above them.
#define _GNU_SOURCE
#include "fed_internal.h"
#include "u64map.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define FED_KEEP_CHUNK 2000  //  ids per FED_KEEP frame (< 64 KiB)
#define FED_CAP_LOG_MS 10000 //  at most one cap warning per 10 s

//  One live message a resync lists.
typedef struct {
    uint32_t origin; //  broker_origin_id
    uint64_t seq;
    store_pos_t pos;
    bool send; //  above the member's vector: send it
} s_item_t;

typedef enum { RESYNC_EVENTS, RESYNC_KEEP, RESYNC_END } s_phase_t;

struct _fed_resync_t {
    s_item_t *items; //  sorted by (origin, seq)
    size_t nitems;
    size_t next; //  next item of the current phase
    s_phase_t phase;
    char *floors;       //  JSON of the floors it brings the member to
    zhashx_t *snapshot; //  the same, origin -> seq
    uint64_t sent;      //  events sent
};

static int64_t s_cap_logged_at;

//  --------------------------------------------------------------------
//  Floors

static void
s_floor_collect (void *ctx, const char *key, uint64_t value)
{
    fed_t *self = ctx;
    size_t n = strlen (self->floor_prefix);
    if (strncmp (key, self->floor_prefix, n) == 0 && key[n])
        s_vv_raise (self->floors, fedq_str_of (key + n), value);
}

void
fed_floors_load (fed_t *self)
{
    char prefix[PROTO_MAX_NAME + 4];
    snprintf (prefix, sizeof prefix, "h/%s/", self->name);
    free (self->floor_prefix);
    self->floor_prefix = strdup (prefix);
    if (!self->floors)
        self->floors = zhashx_new ();
    store_marks_each (broker_store (self->broker), s_floor_collect, self);
}

//  Raise floors (durably) to the values in raise (origin -> seq).
static void
s_floors_raise (fed_t *self, zhashx_t *raise)
{
    size_t n = zhashx_size (raise), k = 0;
    if (!n)
        return;
    store_mark_t *marks = calloc (n, sizeof *marks);
    char (*keys)[2 * PROTO_MAX_NAME + 4] = calloc (n, sizeof *keys);
    if (!marks || !keys)
        abort ();
    for (void *v = zhashx_first (raise); v; v = zhashx_next (raise)) {
        const char *origin = zhashx_cursor (raise);
        uint64_t seq = (uint64_t)(uintptr_t)v;
        if (seq <= s_vv_get (self->floors, fedq_str_of (origin)))
            continue;
        s_vv_raise (self->floors, fedq_str_of (origin), seq);
        snprintf (keys[k], sizeof keys[k], "%s%s", self->floor_prefix, origin);
        marks[k].key = fedq_str_of (keys[k]);
        marks[k].value = seq;
        k++;
    }
    if (k && store_append_marks (broker_store (self->broker), marks, k))
        fedq_error ("federation=%s: cannot record the history floors",
                    self->name);
    free (marks);
    free (keys);
}

void
fed_history_drop (fed_t *self, uint64_t n, bool by_cap)
{
    zhashx_t *raise = zhashx_new ();
    bool tombs = false;
    for (uint64_t i = self->h->compacted; i < self->h->compacted + n; i++) {
        store_msg_t rec;
        fedq_str_t origin;
        uint64_t fseq;
        if (!s_history_id (self, i, &rec, &origin, &fseq))
            continue;
        s_vv_raise (raise, origin, fseq);
        uint64_t target;
        bool tomb = broker_tomb_target (self->broker, &rec, &target);
        tombs |= tomb;
        if (!by_cap)
            continue;
        self->history_dropped_total++;
        if (tomb)
            continue; //  a resync's keep lists carry its effect
        for (size_t m = 0; m < self->nmembers; m++) {
            s_member_t *mb = self->members[m];
            bool coming =
                mb->sender && s_vv_get (mb->sender->vv, origin) >= fseq;
            if (mb->known && !coming && s_vv_get (mb->vv, origin) < fseq)
                mb->owed++;
        }
    }
    //  The floors first: a crash between the two leaves a floor too high
    //  (a needless resync), never a gap nobody sees.
    s_floors_raise (self, raise);
    zhashx_destroy (&raise);
    //  A restart replays the tombstones still in the history only: what
    //  the leaving ones removed is settled in the same commit.
    if (tombs && self->q->skip_count)
        broker_fed_settle_removed (self->broker, self->q);
    broker_fed_compact (self->broker, self->h, n);
}

void
fed_history_cap (fed_t *self)
{
    queue_t *h = self->h;
    uint64_t max_n = self->cfg.history_max_messages;
    uint64_t max_b = self->cfg.history_max_bytes;
    uint64_t count = h->ready_count, bytes = h->ready_bytes, n = 0;
    while ((max_n && count > max_n) || (max_b && bytes > max_b)) {
        const qentry_t *e = s_history_at (self, h->compacted + n);
        if (!e)
            break;
        bytes -= e->size <= bytes ? e->size : bytes;
        count--;
        n++;
    }
    if (!n)
        return;
    int64_t now = fedq_mono_ms ();
    if (!s_cap_logged_at || now - s_cap_logged_at >= FED_CAP_LOG_MS) {
        s_cap_logged_at = now;
        fedq_warn ("federation=%s history cap reached (%" PRIu64
                   " events, %" PRIu64 " bytes; history_max_messages %" PRIu64
                   ", history_max_bytes %" PRIu64 "): dropping the oldest "
                   "events; a member that lacks them gets a full resync",
                   self->name, h->ready_count, h->ready_bytes, max_n, max_b);
    }
    fed_history_drop (self, n, true);
}

//  --------------------------------------------------------------------
//  Sending a resync

static int
s_item_cmp (const void *a, const void *b)
{
    const s_item_t *x = a, *y = b;
    if (x->origin != y->origin)
        return x->origin < y->origin ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

//  Does the member of s lack events below a floor?
static bool
s_resync_needed (fed_stream_t *s)
{
    fed_t *self = s->fed;
    for (void *v = zhashx_first (self->floors); v;
         v = zhashx_next (self->floors)) {
        fedq_str_t origin = fedq_str_of (zhashx_cursor (self->floors));
        uint64_t floor = (uint64_t)(uintptr_t)v;
        if (floor > s_vv_get (s->member->vv, origin) &&
            floor > s_vv_get (s->vv, origin))
            return true;
    }
    return false;
}

static void
s_item_add (fed_resync_t *r, size_t *cap, uint32_t origin, uint64_t seq,
            store_pos_t pos)
{
    if (r->nitems == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        r->items = realloc (r->items, *cap * sizeof *r->items);
        if (!r->items)
            abort ();
    }
    r->items[r->nitems++] = (s_item_t){origin, seq, pos, false};
}

//  List the live messages at or below the floors, in per-origin order.
static fed_resync_t *
s_resync_start (fed_stream_t *s)
{
    fed_t *self = s->fed;
    queue_t *q = self->q;
    fed_resync_t *r = calloc (1, sizeof *r);
    if (!r)
        abort ();
    r->snapshot = zhashx_dup (self->floors);
    size_t cap = 0;
    if (q->fed_global && q->fed_index) {
        //  Every live message, delivered or not, is in the index.
        u64map_t *index = q->fed_index;
        for (size_t i = 0; i < index->cap; i++)
            if (index->keys[i])
                s_item_add (r, &cap, (uint32_t)(index->keys[i] >> 48),
                            index->keys[i] & 0xFFFFFFFFFFFFull,
                            index->values[i]);
    } else
        for (int p = 0; p <= 9; p++) {
            qring_t *ring = &q->ready[p];
            for (size_t i = 0; i < ring->count; i++) {
                const qentry_t *e =
                    &ring->items[(ring->head + i) & (ring->cap - 1)];
                store_msg_t rec;
                fedq_str_t origin;
                uint64_t seq;
                if (q->skip_count && u64map_get (q->skip, e->pos, NULL))
                    continue;
                if (broker_read (self->broker, e, &rec) == FEDQ_OK &&
                    broker_fed_id (q, &rec, &origin, &seq))
                    s_item_add (r, &cap,
                                broker_origin_id (self->broker, origin), seq,
                                e->pos);
            }
        }
    //  Only what the floors cover: the rest is still in the history.
    size_t kept = 0;
    for (size_t i = 0; i < r->nitems; i++) {
        s_item_t it = r->items[i];
        fedq_str_t origin =
            fedq_str_of (broker_origin_name (self->broker, it.origin));
        if (it.seq > s_vv_get (r->snapshot, origin))
            continue;
        it.send = it.seq > s_vv_get (s->member->vv, origin) &&
                  it.seq > s_vv_get (s->vv, origin);
        r->items[kept++] = it;
    }
    r->nitems = kept;
    if (r->nitems) //  items is NULL when nothing is live
        qsort (r->items, r->nitems, sizeof *r->items, s_item_cmp);
    json_t *obj = json_object ();
    for (void *v = zhashx_first (r->snapshot); v; v = zhashx_next (r->snapshot))
        json_object_set_new (obj, zhashx_cursor (r->snapshot),
                             json_integer ((json_int_t)(uintptr_t)v));
    r->floors = json_dumps (obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (obj);
    fedq_warn ("federation=%s peer=%s lacks events this history no longer "
               "has (below floors %s): full resync of %zu live messages",
               self->name, s->member->id, r->floors, r->nitems);
    return r;
}

//  Send what is left of the current phase; false when the pipe is full.
static bool
s_resync_send (fed_stream_t *s, fed_resync_t *r)
{
    fed_t *self = s->fed;
    queue_t *q = self->q;
    for (; r->phase == RESYNC_EVENTS && r->next < r->nitems; r->next++) {
        const s_item_t *it = &r->items[r->next];
        uint64_t key = broker_fed_key (it->origin, it->seq);
        if (!it->send ||
            (q->fed_global && !u64map_get (q->fed_index, key, NULL)))
            continue; //  held there, or consumed meanwhile
        qentry_t e = {.pos = it->pos};
        store_msg_t rec;
        if (broker_read (self->broker, &e, &rec))
            continue; //  consumed meanwhile (a gap, counted)
        proto_frame_t f = fed_frame (s, PROTO_FED_EVENT);
        f.present |= PF_NODE | PF_SEQ;
        f.node = fedq_str_of (broker_origin_name (self->broker, it->origin));
        f.seq = it->seq;
        if (s->send (s->send_ctx, &f, rec.env, rec.env_len,
                     rec.body ? rec.body : (const uint8_t *)"", rec.body_len))
            return false;
        r->sent++;
    }
    if (r->phase == RESYNC_EVENTS) {
        r->phase = q->fed_global ? RESYNC_KEEP : RESYNC_END;
        r->next = 0;
    }
    while (r->phase == RESYNC_KEEP && r->next < r->nitems) {
        //  One origin's ids, up to a chunk.
        uint32_t origin = r->items[r->next].origin;
        size_t end = r->next;
        json_t *seqs = json_array ();
        while (end < r->nitems && r->items[end].origin == origin &&
               end - r->next < FED_KEEP_CHUNK)
            json_array_append_new (
                seqs, json_integer ((json_int_t)r->items[end++].seq));
        char *text = json_dumps (seqs, JSON_COMPACT);
        json_decref (seqs);
        proto_frame_t f = fed_frame (s, PROTO_FED_KEEP);
        f.present |= PF_NODE | PF_JSON;
        f.node = fedq_str_of (broker_origin_name (self->broker, origin));
        f.json = fedq_str_of (text);
        fedq_rc_t rc = s->send (s->send_ctx, &f, NULL, 0, NULL, 0);
        free (text);
        if (rc)
            return false;
        r->next = end;
    }
    r->phase = RESYNC_END;
    proto_frame_t f = fed_frame (s, PROTO_FED_RESYNC);
    f.present |= PF_JSON;
    f.json = fedq_str_of (r->floors);
    return s->send (s->send_ctx, &f, NULL, 0, NULL, 0) == FEDQ_OK;
}

//  The resync went out: the stream counts the floors as sent.
static void
s_resync_end (fed_stream_t *s, fed_resync_t *r)
{
    s_member_t *m = s->member;
    for (void *v = zhashx_first (r->snapshot); v; v = zhashx_next (r->snapshot))
        s_vv_raise (s->vv, fedq_str_of (zhashx_cursor (r->snapshot)),
                    (uint64_t)(uintptr_t)v);
    uint64_t skipped = m->owed > r->sent ? m->owed - r->sent : 0;
    m->owed = 0;
    m->resync_total++;
    m->resync_sent_total += r->sent;
    m->resync_skipped_total += skipped;
    if (skipped)
        fedq_warn ("federation=%s peer=%s resync sent %" PRIu64
                   " live messages; %" PRIu64 " events the history cap "
                   "dropped before it had them were consumed or expired "
                   "here meanwhile: it never gets them",
                   s->fed->name, m->id, r->sent, skipped);
    else
        fedq_info ("federation=%s peer=%s resync sent %" PRIu64
                   " live messages",
                   s->fed->name, m->id, r->sent);
}

bool
fed_resync_pump (fed_stream_t *s)
{
    if (!s->resync) {
        if (!s_resync_needed (s))
            return false;
        s->resync = s_resync_start (s);
    }
    if (!s_resync_send (s, s->resync))
        return true; //  pipe full: the next turn goes on
    s_resync_end (s, s->resync);
    fed_resync_free (s);
    return false;
}

void
fed_resync_free (fed_stream_t *s)
{
    fed_resync_t *r = s->resync;
    if (r) {
        free (r->items);
        free (r->floors);
        zhashx_destroy (&r->snapshot);
        free (r);
        s->resync = NULL;
    }
}

void
fed_keep_free (fed_stream_t *s)
{
    if (s->keep) {
        u64map_free (s->keep);
        free (s->keep);
        s->keep = NULL;
    }
}

//  --------------------------------------------------------------------
//  Receiving a resync

static void
s_keep (fed_stream_t *s, const proto_frame_t *f)
{
    fed_t *self = s->fed;
    json_error_t err;
    json_t *seqs = json_loadb (f->json.ptr, f->json.len, 0, &err);
    if (!json_is_array (seqs) || f->node.len == 0 ||
        f->node.len > PROTO_MAX_NAME) {
        s->errors_total++;
        fedq_warn ("federation=%s peer=%s FED_KEEP ignored: expected a "
                   "JSON array of sequences",
                   self->name, s->member->id);
        json_decref (seqs);
        return;
    }
    if (!s->keep && !(s->keep = calloc (1, sizeof (u64map_t))))
        abort ();
    uint32_t origin = broker_origin_id (self->broker, f->node);
    size_t i;
    json_t *v;
    json_array_foreach (seqs, i, v)
    {
        if (json_is_integer (v) && json_integer_value (v) > 0)
            u64map_put (
                s->keep,
                broker_fed_key (origin, (uint64_t)json_integer_value (v)), 1);
    }
    json_decref (seqs);
}

//  consume: global: drop what this member holds at or below the floors
//  that the sender's keep lists do not name (removed there).
static uint64_t
s_drop_unlisted (fed_stream_t *s, zhashx_t *floors)
{
    fed_t *self = s->fed;
    queue_t *q = self->q;
    u64map_t *index = q->fed_index;
    if (!q->fed_global || !index)
        return 0;
    size_t n = 0, cap = 0;
    uint64_t *drop = NULL;
    for (size_t i = 0; i < index->cap; i++) {
        uint64_t key = index->keys[i];
        if (!key)
            continue;
        const char *origin =
            broker_origin_name (self->broker, (uint32_t)(key >> 48));
        uint64_t seq = key & 0xFFFFFFFFFFFFull;
        if (seq > s_vv_get (floors, fedq_str_of (origin)) ||
            (s->keep && u64map_get (s->keep, key, NULL)))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            drop = realloc (drop, cap * sizeof *drop);
            if (!drop)
                abort ();
        }
        drop[n++] = key;
    }
    for (size_t i = 0; i < n; i++)
        broker_fed_forget (self->broker, q, drop[i]);
    free (drop);
    return n;
}

static void
s_resync_received (fed_stream_t *s, const proto_frame_t *f)
{
    fed_t *self = s->fed;
    json_error_t err;
    json_t *obj = json_loadb (f->json.ptr, f->json.len, 0, &err);
    if (!json_is_object (obj)) {
        s->errors_total++;
        fedq_warn ("federation=%s peer=%s FED_RESYNC ignored: expected a "
                   "JSON object of floors",
                   self->name, s->member->id);
        json_decref (obj);
        return;
    }
    const char *own = broker_fed_origin (self->broker);
    zhashx_t *floors = zhashx_new (); //  marks and floors to raise
    zhashx_t *scope = zhashx_new ();  //  what the keep lists cover
    const char *origin;
    json_t *v;
    json_object_foreach (obj, origin, v)
    {
        if (!json_is_integer (v) || json_integer_value (v) <= 0 ||
            strlen (origin) == 0 || strlen (origin) > PROTO_MAX_NAME)
            continue;
        uint64_t floor = (uint64_t)json_integer_value (v);
        //  Our own messages too: consumed elsewhere, their tombstones
        //  may have left the sender's history before reaching us.
        s_vv_raise (scope, fedq_str_of (origin), floor);
        //  Never raise our own origin's mark: our next events would be
        //  taken for old ones (a data directory restored from an older
        //  copy under the same incarnation; docs/operations.md).
        if (strcmp (origin, own) == 0) {
            char key[2 * PROTO_MAX_NAME + 4];
            snprintf (key, sizeof key, "%s%s", self->q->fed_prefix, own);
            if (floor > store_mark (broker_store (self->broker), key))
                fedq_error ("federation=%s peer=%s has events of this "
                            "node's origin %s up to %" PRIu64
                            " that this node lacks: its data directory "
                            "was restored from an older copy",
                            self->name, s->member->id, own, floor);
            continue;
        }
        s_vv_raise (floors, fedq_str_of (origin), floor);
        s_vv_raise (s->member->vv, fedq_str_of (origin), floor);
    }
    json_decref (obj);
    uint64_t removed = s_drop_unlisted (s, scope);
    zhashx_destroy (&scope);
    //  Marks: events at or below the floors are settled for this member;
    //  its own floors rise too, so members it streams to get a resync
    //  instead of the gap.
    size_t n = zhashx_size (floors), k = 0;
    store_mark_t *marks = calloc (n ? n : 1, sizeof *marks);
    char (*keys)[2 * PROTO_MAX_NAME + 4] = calloc (n ? n : 1, sizeof *keys);
    if (!marks || !keys)
        abort ();
    store_t *store = broker_store (self->broker);
    for (void *p = zhashx_first (floors); p; p = zhashx_next (floors)) {
        snprintf (keys[k], sizeof keys[k], "%s%s", self->q->fed_prefix,
                  (const char *)zhashx_cursor (floors));
        if ((uint64_t)(uintptr_t)p <= store_mark (store, keys[k]))
            continue;
        marks[k].key = fedq_str_of (keys[k]);
        marks[k].value = (uint64_t)(uintptr_t)p;
        k++;
    }
    if (k && store_append_marks (store, marks, k))
        fedq_error ("federation=%s peer=%s: cannot record the resync's "
                    "marks",
                    self->name, s->member->id);
    free (marks);
    free (keys);
    s_floors_raise (self, floors);
    zhashx_destroy (&floors);
    s->member->resync_removed_total += removed;
    fedq_warn ("federation=%s peer=%s full resync received: %zu marks "
               "raised, %" PRIu64 " held messages removed (consumed "
               "elsewhere while this member was away)",
               self->name, s->member->id, k, removed);
    fed_keep_free (s);
}

void
fed_resync_frame (fed_stream_t *s, const proto_frame_t *f)
{
    if (f->cmd == PROTO_FED_KEEP && (f->present & PF_NODE) &&
        (f->present & PF_JSON))
        s_keep (s, f);
    else if (f->cmd == PROTO_FED_RESYNC && (f->present & PF_JSON))
        s_resync_received (s, f);
}

//  --------------------------------------------------------------------
//  A member that lost its data directory

typedef struct {
    fed_t *fed;
    s_member_t *member;
    const char *prefix;
    char lacking[PROTO_MAX_NAME + 1];
    uint64_t ours, theirs;
} s_inc_ctx_t;

static void
s_inc_check (void *ctx, const char *key, uint64_t value)
{
    s_inc_ctx_t *c = ctx;
    size_t plen = strlen (c->prefix), idlen = strlen (c->member->id);
    if (strncmp (key, c->prefix, plen) != 0)
        return;
    const char *origin = key + plen;
    if (strncmp (origin, c->member->id, idlen) != 0 ||
        (origin[idlen] != 0 && origin[idlen] != '~'))
        return;
    uint64_t theirs = s_vv_get (c->member->vv, fedq_str_of (origin));
    if (theirs < value && !c->lacking[0]) {
        snprintf (c->lacking, sizeof c->lacking, "%s", origin);
        c->ours = value;
        c->theirs = theirs;
    }
}

//  Sequences this node's earlier incarnations used, as the member's
//  vector shows them: new messages are numbered above them, so their
//  ids (ORIGIN:SEQ) do not repeat those of the lost data directory.
static void
s_own_past (fed_t *self, s_member_t *m)
{
    const char *id = broker_node_id (self->broker);
    const char *own = broker_fed_origin (self->broker);
    size_t idlen = strlen (id);
    uint64_t top = 0;
    for (void *v = zhashx_first (m->vv); v; v = zhashx_next (m->vv)) {
        const char *origin = zhashx_cursor (m->vv);
        if (strncmp (origin, id, idlen) == 0 &&
            (origin[idlen] == 0 || origin[idlen] == '~') &&
            strcmp (origin, own) != 0 && (uint64_t)(uintptr_t)v > top)
            top = (uint64_t)(uintptr_t)v;
    }
    broker_seq_raise (self->broker, top);
}

void
fed_member_check_incarnation (fed_t *self, s_member_t *m)
{
    s_own_past (self, m);
    s_inc_ctx_t c = {self, m, self->q->fed_prefix, "", 0, 0};
    store_marks_each (broker_store (self->broker), s_inc_check, &c);
    if (!c.lacking[0])
        return;
    m->incarnation_resets_total++;
    fedq_warn ("federation=%s peer=%s holds events of its own origin %s "
               "up to %" PRIu64 " only, this node up to %" PRIu64
               ": its data directory was lost or restored from an older "
               "copy; it gets them back from the members that have them",
               self->name, m->id, c.lacking, c.theirs, c.ours);
}
