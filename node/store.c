//  node/store.c — the node-wide durable log: append, group commit, reads,
//  live accounting, segment deletion and compaction (DESIGN.md §4).
//
//  Appends serialise straight into one pending buffer and change the
//  in-memory state (live refs, marks) at once, logging an undo entry per
//  effect. store_commit writes the buffer with one pwrite per segment it
//  touches and syncs per policy; on failure it cuts the files back, undoes
//  the entries in reverse and so leaves memory equal to disk. No syscall
//  and, once the buffers have grown, no malloc happens per message.
//
//  See docs/storage.md for the format and the rules for deleting segments.
#define _GNU_SOURCE
#include "store_impl.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const uint64_t store_fsync_buckets_us[12] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000,
    UINT64_MAX};

//  --------------------------------------------------------------------------
//  Small arrays

static void *
s_grow (void *array, size_t *cap, size_t need, size_t item)
{
    if (need <= *cap)
        return array;
    size_t new_cap = *cap ? *cap * 2 : 16;
    while (new_cap < need)
        new_cap *= 2;
    void *grown = realloc (array, new_cap * item);
    if (!grown) {
        fedq_error ("store: out of memory growing a table to %zu entries",
                    new_cap);
        abort ();
    }
    *cap = new_cap;
    return grown;
}

static void
s_undo_push (store_t *self, uint32_t kind, uint32_t segno, uint32_t n,
             uint64_t a)
{
    self->undo = s_grow (self->undo, &self->undo_cap, self->nundo + 1,
                         sizeof *self->undo);
    store_undo_t *entry = &self->undo[self->nundo++];
    entry->kind = kind;
    entry->segno = segno;
    entry->n = n;
    entry->a = a;
}

//  --------------------------------------------------------------------------
//  Segments

store_seg_t *
store_seg_find (store_t *self, uint32_t segno)
{
    size_t lo = 0, hi = self->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->segs[mid].segno < segno)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < self->nsegs && self->segs[lo].segno == segno)
        return &self->segs[lo];
    return NULL;
}

store_seg_t *
store_seg_push (store_t *self, uint32_t segno)
{
    assert (self->nsegs == 0 || segno > store_active (self)->segno);
    self->segs = s_grow (self->segs, &self->segs_cap, self->nsegs + 1,
                         sizeof *self->segs);
    store_seg_t *seg = &self->segs[self->nsegs++];
    memset (seg, 0, sizeof *seg);
    seg->segno = segno;
    seg->fd = -1;
    seg->min_ref = segno;
    return seg;
}

void
store_seg_name (uint32_t segno, char name[32])
{
    snprintf (name, 32, "%016" PRIx64 ".seg", (uint64_t) segno);
}

static void
s_seg_release (store_seg_t *seg)
{
    if (seg->map)
        munmap (seg->map, seg->map_len);
    seg->map = NULL;
    if (seg->fd >= 0)
        close (seg->fd);
    seg->fd = -1;
}

int
store_sync_dir (store_t *self)
{
    return fsync (self->dir_fd) == 0 ? 0 : errno;
}

//  Create the file of a fresh segment and map it; 0 or an errno.
static int
s_seg_create (store_t *self, store_seg_t *seg)
{
    char name[32];
    store_seg_name (seg->segno, name);
    int fd = openat (self->dir_fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                     0600);
    if (fd < 0)
        return errno;
    void *map = mmap (NULL, self->segment_bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int err = errno;
        close (fd);
        unlinkat (self->dir_fd, name, 0);
        return err;
    }
    seg->fd = fd;
    seg->map = map;
    seg->map_len = self->segment_bytes;
    return 0;
}

//  --------------------------------------------------------------------------
//  Marks: an open-addressing table of indexes into self->marks

static uint32_t
s_key_hash (const char *key, uint32_t key_len)
{
    return fedq_crc32c (0x9E3779B9u, key, key_len);
}

static store_markent_t *
s_mark_lookup (store_t *self, const char *key, uint32_t key_len,
               size_t *slot_p)
{
    if (self->nslots == 0) {
        *slot_p = 0;
        return NULL;
    }
    size_t mask = self->nslots - 1;
    size_t slot = s_key_hash (key, key_len) & mask;
    while (self->mark_slots[slot]) {
        store_markent_t *entry = &self->marks[self->mark_slots[slot] - 1];
        if (entry->key_len == key_len && memcmp (entry->key, key, key_len) == 0)
            return entry;
        slot = (slot + 1) & mask;
    }
    *slot_p = slot;
    return NULL;
}

static void
s_mark_rehash (store_t *self)
{
    size_t nslots = self->nslots ? self->nslots * 2 : 64;
    uint32_t *slots = calloc (nslots, sizeof *slots);
    if (!slots) {
        fedq_error ("store: out of memory growing the mark table");
        abort ();
    }
    for (size_t i = 0; i < self->nmarks; i++) {
        size_t slot = s_key_hash (self->marks[i].key, self->marks[i].key_len)
                      & (nslots - 1);
        while (slots[slot])
            slot = (slot + 1) & (nslots - 1);
        slots[slot] = (uint32_t) i + 1;
    }
    free (self->mark_slots);
    self->mark_slots = slots;
    self->nslots = nslots;
}

void
store_mark_raise (store_t *self, const char *key, uint32_t key_len,
                  uint64_t value, bool undo)
{
    size_t slot;
    store_markent_t *entry = s_mark_lookup (self, key, key_len, &slot);
    if (!entry) {
        if (value == 0)
            return;
        if ((self->nmarks + 1) * 2 > self->nslots) {
            s_mark_rehash (self);
            s_mark_lookup (self, key, key_len, &slot);
        }
        self->marks = s_grow (self->marks, &self->marks_cap, self->nmarks + 1,
                              sizeof *self->marks);
        entry = &self->marks[self->nmarks];
        entry->key = fedq_str_dup ((fedq_str_t){key, key_len});
        entry->key_len = key_len;
        entry->value = entry->durable = 0;
        self->mark_slots[slot] = (uint32_t) ++self->nmarks;
        self->mark_key_bytes += key_len;
    }
    if (value <= entry->value)
        return;
    if (undo)
        s_undo_push (self, STORE_UNDO_MARK, 0,
                     (uint32_t) (entry - self->marks), entry->value);
    entry->value = value;
}

uint64_t
store_mark (store_t *self, const char *key)
{
    assert (self && key);
    size_t slot;
    store_markent_t *entry
        = s_mark_lookup (self, key, (uint32_t) strlen (key), &slot);
    return entry ? entry->value : 0;
}

uint64_t
store_mark_durable (store_t *self, const char *key)
{
    assert (self && key);
    size_t slot;
    store_markent_t *entry
        = s_mark_lookup (self, key, (uint32_t) strlen (key), &slot);
    return entry ? entry->durable : 0;
}

void
store_marks_each (store_t *self,
                  void (*fn) (void *ctx, const char *key, uint64_t value),
                  void *ctx)
{
    assert (self && fn);
    for (size_t i = 0; i < self->nmarks; i++)
        if (self->marks[i].durable)
            fn (ctx, self->marks[i].key, self->marks[i].durable);
}

//  Record bytes of a checkpoint of every mark (an upper bound: keys whose
//  value fell back to 0 in a rollback are counted but not written).
static uint64_t
s_checkpoint_extent (store_t *self)
{
    return store_rec_extent (
        store_fmt_marks_len (self->nmarks, self->mark_key_bytes, true));
}

//  A record with these marks fits, and so does the checkpoint that will
//  carry them into every later segment (kept under a quarter segment).
static fedq_rc_t
s_check_marks (store_t *self, const store_mark_t *marks, size_t n)
{
    uint64_t grow = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key_len = marks[i].key.len;
        if (key_len == 0 || key_len > STORE_MAX_KEY || !marks[i].key.ptr
            || memchr (marks[i].key.ptr, 0, key_len)) {
            fedq_error ("store: mark key of %" PRIu32 " bytes: keys are 1 to "
                        "%d bytes with no NUL",
                        key_len, STORE_MAX_KEY);
            return FEDQ_EINVAL;
        }
        size_t slot;
        if (!s_mark_lookup (self, marks[i].key.ptr, key_len, &slot))
            grow += 10 + key_len;
    }
    if (grow && s_checkpoint_extent (self) + grow > self->segment_bytes / 4) {
        fedq_error ("store: %zu marks would not fit the checkpoint of a "
                    "%" PRIu64 "-byte segment; raise the segment size",
                    self->nmarks + n, self->segment_bytes);
        return FEDQ_ETOOBIG;
    }
    return FEDQ_OK;
}

//  --------------------------------------------------------------------------
//  Appending

//  Reserve ext bytes for a record in the pending buffer, rolling to a new
//  segment when the active one would pass segment_bytes. *pos gets the
//  record's place; returns where to write it.
static uint8_t *
s_place (store_t *self, uint64_t ext, store_pos_t *pos)
{
    if (self->tail + ext > self->segment_bytes) {
        store_seg_t *old = store_active (self);
        store_seg_push (self, old->segno + 1)->fresh = true;
        self->tail = 0;
        store_append_checkpoint (self);
    }
    store_seg_t *active = store_active (self);
    if (self->nparts == 0
        || self->parts[self->nparts - 1].segno != active->segno) {
        self->parts = s_grow (self->parts, &self->parts_cap, self->nparts + 1,
                              sizeof *self->parts);
        store_part_t *part = &self->parts[self->nparts++];
        part->segno = active->segno;
        part->buf_off = self->pending.size;
        part->file_off = self->tail;
    }
    fedq_buf_reserve (&self->pending, (size_t) ext);
    uint8_t *out = self->pending.data + self->pending.size;
    self->pending.size += (size_t) ext;
    if (pos)
        *pos = STORE_POS (active->segno, self->tail);
    self->tail += ext;
    return out;
}

void
store_append_checkpoint (store_t *self)
{
    size_t n = 0;
    uint64_t key_bytes = 0;
    for (size_t i = 0; i < self->nmarks; i++)
        if (self->marks[i].value) {
            n++;
            key_bytes += self->marks[i].key_len;
        }
    uint64_t len = store_fmt_marks_len (n, key_bytes, true);
    uint32_t segno = store_active (self)->segno;
    uint8_t *out = s_place (self, store_rec_extent (len), NULL);
    store_fmt_marks_begin (out, len, n, true, segno);
    uint64_t key_off = 0;
    size_t i = 0;
    for (size_t m = 0; m < self->nmarks; m++)
        if (self->marks[m].value)
            store_fmt_marks_put (out, n, i++, true, self->marks[m].key,
                                 self->marks[m].key_len, self->marks[m].value,
                                 &key_off);
    store_fmt_seal (out, len);
}

//  A record of ext bytes fits a segment after its checkpoint.
static fedq_rc_t
s_check_size (store_t *self, uint64_t ext)
{
    if (ext + s_checkpoint_extent (self) > self->segment_bytes) {
        fedq_warn ("store: a record of %" PRIu64 " bytes does not fit a "
                    "segment of %" PRIu64 " bytes",
                    ext, self->segment_bytes);
        return FEDQ_ETOOBIG;
    }
    return FEDQ_OK;
}

bool
store_settle_apply (store_t *self, store_pos_t target, store_pos_t pos,
                    bool undo)
{
    if (target >= pos)
        return false;           //  a settle can only follow its message
    store_seg_t *seg = store_seg_find (self, STORE_POS_SEG (target));
    if (!seg)
        return false;           //  deleted: nothing left to account
    store_seg_t *own = store_seg_find (self, STORE_POS_SEG (pos));
    if (own && seg->segno < own->min_ref)
        own->min_ref = seg->segno;
    if (seg->live_refs == 0)
        return true;
    seg->live_refs--;
    if (undo) {
        seg->pending_unsettles++;
        s_undo_push (self, STORE_UNDO_SETTLE, seg->segno, 0, 0);
    }
    return true;
}

fedq_rc_t
store_append_msg (store_t *self, const store_msg_t *msg, store_pos_t *pos)
{
    assert (self && msg && pos);
    if (self->broken)
        return FEDQ_EIO;
    uint64_t len = store_fmt_msg_len (msg);
    if (len == 0) {
        fedq_error ("store: message record over a limit (queues %" PRIu32
                    "/%d, marks %" PRIu32 "/%d, settles %" PRIu32
                    "/%d, origin and message_id up to %d bytes, mark keys "
                    "1..%d bytes)",
                    msg->nqueues, STORE_MAX_QUEUES, msg->nmarks,
                    STORE_MAX_MARKS, msg->nsettles, STORE_MAX_SETTLES,
                    STORE_MAX_STR, STORE_MAX_KEY);
        return FEDQ_EINVAL;
    }
    uint64_t ext = store_rec_extent (len);
    fedq_rc_t rc = s_check_marks (self, msg->marks, msg->nmarks);
    if (rc == FEDQ_OK)
        rc = s_check_size (self, ext);
    if (rc != FEDQ_OK)
        return rc;
    uint8_t *out = s_place (self, ext, pos);
    store_fmt_msg_write (out, len, msg);

    store_seg_t *seg = store_active (self);
    seg->live_refs += msg->nqueues;
    seg->msg_refs += msg->nqueues;
    seg->msg_bytes += ext;
    s_undo_push (self, STORE_UNDO_ADD, seg->segno, msg->nqueues, ext);
    for (uint32_t i = 0; i < msg->nsettles; i++)
        store_settle_apply (self, msg->settles[i].pos, *pos, true);
    for (uint32_t i = 0; i < msg->nmarks; i++)
        store_mark_raise (self, msg->marks[i].key.ptr, msg->marks[i].key.len,
                          msg->marks[i].value, true);
    return FEDQ_OK;
}

fedq_rc_t
store_append_settles (store_t *self, const store_settle_t *settles, size_t n)
{
    assert (self && (settles || n == 0));
    if (self->broken)
        return FEDQ_EIO;
    //  Split into records that hold at most STORE_MAX_SETTLES and fit a
    //  segment; they commit together anyway.
    uint64_t room = self->segment_bytes - s_checkpoint_extent (self);
    uint64_t per = room > STORE_SETTLE_FIXED + 16
                       ? (room - STORE_SETTLE_FIXED) / 16
                       : 0;
    if (per > STORE_MAX_SETTLES)
        per = STORE_MAX_SETTLES;
    if (n && per == 0)
        return s_check_size (self, store_rec_extent (store_fmt_settle_len (1)));
    while (n) {
        size_t chunk = n < per ? n : (size_t) per;
        uint64_t len = store_fmt_settle_len (chunk);
        store_pos_t pos;
        uint8_t *out = s_place (self, store_rec_extent (len), &pos);
        store_fmt_settle_write (out, len, settles, chunk);
        for (size_t i = 0; i < chunk; i++)
            store_settle_apply (self, settles[i].pos, pos, true);
        settles += chunk;
        n -= chunk;
    }
    return FEDQ_OK;
}

fedq_rc_t
store_append_marks (store_t *self, const store_mark_t *marks, size_t n)
{
    assert (self && (marks || n == 0));
    if (self->broken)
        return FEDQ_EIO;
    if (n == 0)
        return FEDQ_OK;
    fedq_rc_t rc = s_check_marks (self, marks, n);
    uint64_t key_bytes = 0;
    for (size_t i = 0; i < n; i++)
        key_bytes += marks[i].key.len;
    uint64_t len = store_fmt_marks_len (n, key_bytes, false);
    if (rc == FEDQ_OK)
        rc = s_check_size (self, store_rec_extent (len));
    if (rc != FEDQ_OK)
        return rc;
    uint8_t *out = s_place (self, store_rec_extent (len), NULL);
    store_fmt_marks_begin (out, len, n, false, 0);
    uint64_t key_off = 0;
    for (size_t i = 0; i < n; i++)
        store_fmt_marks_put (out, n, i, false, marks[i].key.ptr,
                             marks[i].key.len, marks[i].value, &key_off);
    store_fmt_seal (out, len);
    for (size_t i = 0; i < n; i++)
        store_mark_raise (self, marks[i].key.ptr, marks[i].key.len,
                          marks[i].value, true);
    return FEDQ_OK;
}

bool
store_pending (store_t *self)
{
    assert (self);
    return self->pending.size > 0;
}

//  --------------------------------------------------------------------------
//  Committing

static int
s_write_all (int fd, const uint8_t *data, size_t size, uint64_t off)
{
    while (size) {
        ssize_t n = pwrite (fd, data, size, (off_t) off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return ENOSPC;
        data += n;
        size -= (size_t) n;
        off += (uint64_t) n;
    }
    return 0;
}

static int
s_sync (store_t *self, int fd)
{
    int64_t start = fedq_mono_us ();
    int rc = fdatasync (fd);
    int err = rc == 0 ? 0 : errno;
    uint64_t us = (uint64_t) (fedq_mono_us () - start);
    self->fsyncs++;
    self->fsync_us_total += us;
    if (us > self->fsync_us_max)
        self->fsync_us_max = us;
    int bucket = 0;
    while (us > store_fsync_buckets_us[bucket])
        bucket++;
    self->fsync_hist[bucket]++;
    return err;
}

static size_t
s_part_len (store_t *self, size_t i)
{
    size_t end = i + 1 < self->nparts ? self->parts[i + 1].buf_off
                                      : self->pending.size;
    return end - self->parts[i].buf_off;
}

//  Write one part; with fsync always, record by record.
static int
s_write_part (store_t *self, store_seg_t *seg, size_t i)
{
    const uint8_t *data = self->pending.data + self->parts[i].buf_off;
    size_t len = s_part_len (self, i);
    uint64_t file_off = self->parts[i].file_off;
    int err = 0;
    if (self->fsync == STORE_FSYNC_ALWAYS && !self->lazy) {
        size_t off = 0;
        while (off < len && !err) {
            uint32_t rec_len;
            memcpy (&rec_len, data + off + 4, 4);
            size_t ext = (size_t) store_rec_extent (rec_len);
            err = s_write_all (seg->fd, data + off, ext, file_off + off);
            if (!err)
                err = s_sync (self, seg->fd);
            off += ext;
        }
        return err;
    }
    err = s_write_all (seg->fd, data, len, file_off);
    //  A segment being rolled away from is sealed with a sync whatever the
    //  policy, so a crash never leaves a torn record before a newer file.
    if (!err
        && ((self->fsync == STORE_FSYNC_BATCH && !self->lazy)
            || i + 1 < self->nparts))
        err = s_sync (self, seg->fd);
    return err;
}

//  Put the files and memory back as they were before the pending records.
static void
s_rollback (store_t *self)
{
    bool unlinked = false;
    for (size_t i = 0; i < self->nparts; i++) {
        store_seg_t *seg = store_seg_find (self, self->parts[i].segno);
        if (!seg || seg->fd < 0)
            continue;
        char name[32];
        store_seg_name (seg->segno, name);
        if (seg->fresh) {
            s_seg_release (seg);
            if (unlinkat (self->dir_fd, name, 0) != 0 && errno != ENOENT) {
                fedq_error ("store: cannot remove %s/%s after a failed "
                            "commit: %s; restart the node to recover",
                            self->log_dir, name, strerror (errno));
                self->broken = true;
            }
            unlinked = true;
        }
        else if (ftruncate (seg->fd, (off_t) seg->size) != 0) {
            fedq_error ("store: cannot cut %s/%s back to %" PRIu64
                        " bytes after a failed commit: %s; the store refuses "
                        "writes until the node restarts and recovers",
                        self->log_dir, name, seg->size, strerror (errno));
            self->broken = true;
        }
    }
    if (unlinked)
        store_sync_dir (self);
    for (size_t i = self->nundo; i-- > 0;) {
        store_undo_t *entry = &self->undo[i];
        if (entry->kind == STORE_UNDO_MARK) {
            self->marks[entry->n].value = entry->a;
            continue;
        }
        store_seg_t *seg = store_seg_find (self, entry->segno);
        if (!seg)
            continue;
        if (entry->kind == STORE_UNDO_ADD) {
            seg->live_refs -= entry->n;
            seg->msg_refs -= entry->n;
            seg->msg_bytes -= entry->a;
        }
        else {
            seg->live_refs++;
            seg->pending_unsettles--;
        }
    }
    while (self->nsegs > 1 && store_active (self)->fresh) {
        s_seg_release (store_active (self));
        self->nsegs--;
    }
    self->nundo = 0;
    self->nparts = 0;
    self->pending.size = 0;
    self->tail = store_active (self)->size;
}

fedq_rc_t
store_commit (store_t *self)
{
    assert (self);
    if (self->pending.size == 0) {
        //  Records written by a lazy commit get their sync now.
        store_seg_t *active = store_active (self);
        if (self->unsynced && !self->lazy && self->fsync != STORE_FSYNC_NEVER
            && active->fd >= 0) {
            int err = s_sync (self, active->fd);
            if (err) {
                fedq_error ("store: cannot sync %s: %s", self->log_dir,
                            strerror (err));
                return err == ENOSPC ? FEDQ_ENOSPC : FEDQ_EIO;
            }
            self->unsynced = false;
        }
        return FEDQ_OK;
    }
    if (self->broken) {
        s_rollback (self);
        return FEDQ_EIO;
    }
    int err = 0;
    const char *what = "write";
    store_seg_t *seg = NULL;
    for (size_t i = 0; i < self->nparts && !err; i++) {
        seg = store_seg_find (self, self->parts[i].segno);
        assert (seg);
        if (seg->fd < 0) {
            what = "create";
            err = s_seg_create (self, seg);
            if (err)
                break;
        }
        what = "write";
        err = s_write_part (self, seg, i);
        if (!err && seg->fresh) {
            what = "sync the directory of";
            err = store_sync_dir (self);
        }
    }
    if (!err && self->fail_next_commit) {
        err = self->fail_next_commit;
        what = "sync (test)";
    }
    self->fail_next_commit = 0;
    if (err) {
        char name[32];
        store_seg_name (seg ? seg->segno : 0, name);
        fedq_error ("store: cannot %s %s/%s: %s; %zu pending bytes were "
                    "dropped and not confirmed",
                    what, self->log_dir, name, strerror (err),
                    self->pending.size);
        s_rollback (self);
        return err == ENOSPC || err == EDQUOT ? FEDQ_ENOSPC : FEDQ_EIO;
    }
    store_seg_t *active = store_active (self);
    for (size_t i = 0; i < self->nparts; i++) {
        seg = store_seg_find (self, self->parts[i].segno);
        seg->size = self->parts[i].file_off + s_part_len (self, i);
        seg->fresh = false;
        if (seg != active && seg->fd >= 0) {
            close (seg->fd);
            seg->fd = -1;
        }
    }
    for (size_t i = 0; i < self->nundo; i++) {
        store_undo_t *entry = &self->undo[i];
        if (entry->kind == STORE_UNDO_MARK) {
            store_markent_t *mark = &self->marks[entry->n];
            mark->durable = mark->value;
        }
        else if (entry->kind == STORE_UNDO_SETTLE) {
            seg = store_seg_find (self, entry->segno);
            if (seg)
                seg->pending_unsettles--;
        }
    }
    self->nundo = 0;
    self->nparts = 0;
    self->pending.size = 0;
    self->commits++;
    self->unsynced = self->lazy;
    return FEDQ_OK;
}

void
store_test_fail_next_commit (store_t *self, int err)
{
    assert (self);
    self->fail_next_commit = err;
}

//  --------------------------------------------------------------------------
//  Reading

//  Read the message record at pos; with crc false its CRC is not checked
//  (store_peek) and a record that fails is only refused, not counted.
static fedq_rc_t
s_read_at (store_t *self, store_pos_t pos, store_msg_t *msg, bool crc)
{
    assert (self && msg);
    store_seg_t *seg = store_seg_find (self, STORE_POS_SEG (pos));
    uint64_t off = STORE_POS_OFF (pos);
    if (!seg || seg->fresh || off >= seg->size || (off & 7))
        return FEDQ_ENOTFOUND;
    uint8_t type = 0;
    uint32_t len = 0;
    store_check_t check
        = crc ? store_fmt_check (seg->map, seg->size, off, &type, &len)
              : store_fmt_bounds (seg->map, seg->size, off, &type, &len);
    if (check == STORE_CHECK_OK && type != STORE_REC_MSG)
        return FEDQ_EINVAL;     //  a good record, but not a message
    if (check == STORE_CHECK_OK
        && store_fmt_msg_parse (seg->map + off, len, msg, self->read_marks))
        return FEDQ_OK;
    if (!crc)
        return FEDQ_EINVAL;
    self->corrupt_reads++;
    char name[32];
    store_seg_name (seg->segno, name);
    if (!seg->corrupt_logged)
        fedq_error ("store: %s/%s offset %" PRIu64 ": message record fails "
                    "its CRC check; not served. The disk may be failing: "
                    "check it and restore the data_dir from a backup or a "
                    "peer",
                    self->log_dir, name, off);
    else
        fedq_debug ("store: %s/%s offset %" PRIu64 ": corrupt record",
                    self->log_dir, name, off);
    seg->corrupt_logged = true;
    return FEDQ_ECORRUPT;
}

fedq_rc_t
store_read (store_t *self, store_pos_t pos, store_msg_t *msg)
{
    return s_read_at (self, pos, msg, true);
}

fedq_rc_t
store_peek (store_t *self, store_pos_t pos, store_msg_t *msg)
{
    return s_read_at (self, pos, msg, false);
}

//  --------------------------------------------------------------------------
//  Deleting and compacting

//  Index of the newest segment holding committed records (the active one
//  unless a pending roll made a fresh one).
static size_t
s_newest_committed (store_t *self)
{
    size_t newest = self->nsegs;
    while (newest > 0 && self->segs[newest - 1].fresh)
        newest--;
    return newest ? newest - 1 : 0;
}

int
store_maintain (store_t *self)
{
    assert (self);
    //  The newest committed segment starts with a committed checkpoint of
    //  all marks, so any older segment's marks are superseded.
    size_t newest = s_newest_committed (self);
    if (newest == 0)
        return 0;
    int deleted = 0;
    size_t kept = 0;
    for (size_t i = 0; i < self->nsegs; i++) {
        store_seg_t *seg = &self->segs[i];
        //  A segment's settles must outlive the messages they settle: it
        //  goes only when no older segment it points into is left.
        bool blocked = kept > 0 && self->segs[kept - 1].segno >= seg->min_ref;
        if (i < newest && seg->live_refs == 0 && seg->pending_unsettles == 0
            && !blocked) {
            char name[32];
            store_seg_name (seg->segno, name);
            if (unlinkat (self->dir_fd, name, 0) != 0 && errno != ENOENT) {
                fedq_warn ("store: cannot delete %s/%s: %s", self->log_dir,
                           name, strerror (errno));
            }
            else {
                s_seg_release (seg);
                deleted++;
                continue;
            }
        }
        if (kept != i)
            self->segs[kept] = *seg;
        kept++;
    }
    self->nsegs = kept;
    if (deleted) {
        int err = store_sync_dir (self);
        if (err)
            fedq_warn ("store: cannot sync %s after deleting segments: %s",
                       self->log_dir, strerror (err));
        fedq_debug ("store: deleted %d settled segments", deleted);
    }
    return deleted;
}

size_t
store_compact_candidates (store_t *self, double ratio, uint32_t *segs,
                          size_t max)
{
    assert (self && (segs || max == 0));
    size_t found = 0;
    size_t newest = s_newest_committed (self);
    for (size_t i = 0; i < newest && found < max; i++) {
        store_seg_t *seg = &self->segs[i];
        if (seg->live_refs == 0 || seg->msg_refs == 0 || seg->size == 0)
            continue;
        //  Live bytes are estimated from the segment's mean message size.
        double live = (double) seg->msg_bytes * (double) seg->live_refs
                      / (double) seg->msg_refs;
        if (live < ratio * (double) seg->size)
            segs[found++] = seg->segno;
    }
    return found;
}

fedq_rc_t
store_relocate (store_t *self, uint64_t qid, store_pos_t pos,
                store_pos_t *new_pos)
{
    assert (self && new_pos);
    store_msg_t msg;
    fedq_rc_t rc = store_read (self, pos, &msg);
    if (rc != FEDQ_OK)
        return rc;
    bool held = false;
    for (uint32_t i = 0; i < msg.nqueues && !held; i++)
        held = msg.qids[i] == qid;
    if (!held)
        return FEDQ_ENOTFOUND;
    store_settle_t settle = {qid, pos};
    msg.nqueues = 1;
    msg.qids = &qid;
    msg.nmarks = 0;
    msg.marks = NULL;
    msg.nsettles = 1;
    msg.settles = &settle;
    return store_append_msg (self, &msg, new_pos);
}

//  --------------------------------------------------------------------------
//  Figures

fedq_rc_t
store_commit_lazy (store_t *self)
{
    self->lazy = true;
    fedq_rc_t rc = store_commit (self);
    self->lazy = false;
    return rc;
}

void
store_stats (store_t *self, store_stats_t *stats)
{
    assert (self && stats);
    memset (stats, 0, sizeof *stats);
    for (size_t i = 0; i < self->nsegs; i++) {
        if (self->segs[i].fresh)
            continue;
        stats->segments++;
        stats->bytes += self->segs[i].size;
        stats->live_refs += self->segs[i].live_refs;
    }
    stats->commits = self->commits;
    stats->fsyncs = self->fsyncs;
    stats->fsync_us_total = self->fsync_us_total;
    stats->fsync_us_max = self->fsync_us_max;
    memcpy (stats->fsync_hist, self->fsync_hist, sizeof stats->fsync_hist);
    stats->corrupt_reads = self->corrupt_reads;
}

//  --------------------------------------------------------------------------
//  Open and close

static fedq_rc_t
s_mkdir (const char *path)
{
    if (mkdir (path, 0700) == 0) {
        //  Make the new entry durable in its parent.
        char *parent = fedq_str_dup (fedq_str_of (path));
        char *slash = strrchr (parent, '/');
        if (slash)
            *(slash == parent ? slash + 1 : slash) = 0;
        int fd = open (slash ? parent : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            fsync (fd);
            close (fd);
        }
        free (parent);
        return FEDQ_OK;
    }
    if (errno == EEXIST)
        return FEDQ_OK;
    fedq_error ("store: cannot create directory %s: %s", path,
                strerror (errno));
    return errno == ENOSPC ? FEDQ_ENOSPC : FEDQ_EIO;
}

//  mkdir -p with mode 0700.
static fedq_rc_t
s_mkdirs (const char *dir)
{
    char *path = fedq_str_dup (fedq_str_of (dir));
    fedq_rc_t rc = FEDQ_OK;
    for (char *p = path + 1; *p && rc == FEDQ_OK; p++)
        if (*p == '/') {
            *p = 0;
            rc = s_mkdir (path);
            *p = '/';
        }
    if (rc == FEDQ_OK)
        rc = s_mkdir (path);
    free (path);
    return rc;
}

fedq_rc_t
store_open (const store_opts_t *opts, const store_visitor_t *visitor,
            store_recovery_t *recovery, store_t **store_p)
{
    assert (opts && opts->dir && store_p);
    *store_p = NULL;
    uint64_t segment_bytes = opts->segment_bytes ? opts->segment_bytes
                                                 : STORE_DEFAULT_SEGMENT;
    if (segment_bytes < STORE_MIN_SEGMENT || segment_bytes > STORE_MAX_SEGMENT
        || (segment_bytes & 7)) {
        fedq_error ("store: segment size %" PRIu64 " must be a multiple of 8 "
                    "from %llu to %llu bytes",
                    segment_bytes, STORE_MIN_SEGMENT, STORE_MAX_SEGMENT);
        return FEDQ_EINVAL;
    }
    if (opts->fsync != STORE_FSYNC_ALWAYS && opts->fsync != STORE_FSYNC_BATCH
        && opts->fsync != STORE_FSYNC_NEVER) {
        fedq_error ("store: unknown fsync policy %d", (int) opts->fsync);
        return FEDQ_EINVAL;
    }
    store_recovery_t local;
    if (!recovery)
        recovery = &local;
    memset (recovery, 0, sizeof *recovery);

    store_t *self = calloc (1, sizeof *self);
    if (!self)
        return FEDQ_ENOMEM;
    self->dir_fd = self->lock_fd = -1;
    self->fsync = opts->fsync;
    self->segment_bytes = segment_bytes;
    size_t dir_len = strlen (opts->dir);
    self->log_dir = malloc (dir_len + 5);
    if (!self->log_dir) {
        free (self);
        return FEDQ_ENOMEM;
    }
    snprintf (self->log_dir, dir_len + 5, "%s/log", opts->dir);

    fedq_rc_t rc = s_mkdirs (opts->dir);
    if (rc == FEDQ_OK)
        rc = s_mkdir (self->log_dir);
    if (rc != FEDQ_OK)
        goto cleanup;
    self->dir_fd = open (self->log_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd < 0) {
        fedq_error ("store: cannot open %s: %s", self->log_dir,
                    strerror (errno));
        rc = FEDQ_EIO;
        goto cleanup;
    }
    self->lock_fd = openat (self->dir_fd, "LOCK",
                            O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (self->lock_fd < 0 || flock (self->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        bool busy = self->lock_fd >= 0 && errno == EWOULDBLOCK;
        fedq_error ("store: %s: %s; %s", self->log_dir,
                    busy ? "in use by another fedq-node" : strerror (errno),
                    busy ? "stop it or give this node its own data_dir"
                         : "check the directory's permissions");
        rc = busy ? FEDQ_EDENIED : FEDQ_EIO;
        goto cleanup;
    }
    int64_t start = fedq_mono_ms ();
    rc = store_recover (self, visitor, recovery);
    if (rc != FEDQ_OK)
        goto cleanup;
    //  Every segment starts with a checkpoint: give a new or empty active
    //  segment its own before anything else goes in.
    if (self->nsegs == 0 || store_active (self)->size == 0) {
        if (self->nsegs == 0)
            store_seg_push (self, 1)->fresh = true;
        self->tail = 0;
        store_append_checkpoint (self);
        rc = store_commit (self);
        if (rc != FEDQ_OK)
            goto cleanup;
    }
    self->tail = store_active (self)->size;
    recovery->bytes = 0;
    for (size_t i = 0; i < self->nsegs; i++)
        recovery->bytes += self->segs[i].size;
    fedq_info ("store: opened %s: %" PRIu64 " segments, %" PRIu64
               " records, %" PRIu64 " bytes, %" PRIu64
               " torn bytes cut, in %" PRId64 " ms",
               self->log_dir, recovery->segments, recovery->records,
               recovery->bytes, recovery->truncated_bytes,
               fedq_mono_ms () - start);
    *store_p = self;
    return FEDQ_OK;

cleanup:
    store_destroy (&self);
    return rc;
}

void
store_destroy (store_t **self_p)
{
    assert (self_p);
    store_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nsegs; i++)
        s_seg_release (&self->segs[i]);
    free (self->segs);
    fedq_buf_free (&self->pending);
    free (self->parts);
    free (self->undo);
    for (size_t i = 0; i < self->nmarks; i++)
        free (self->marks[i].key);
    free (self->marks);
    free (self->mark_slots);
    if (self->lock_fd >= 0)
        close (self->lock_fd);
    if (self->dir_fd >= 0)
        close (self->dir_fd);
    free (self->log_dir);
    free (self);
    *self_p = NULL;
}
