//  node/store_recover.c — open-time recovery of the durable log.
//
//  Three steps, so that a log refused for corruption is left untouched and
//  the visitor never sees half a log:
//
//  1. verify: check every record of every segment (CRC, layout, the
//     checkpoint that opens each segment). A bad record in the last
//     segment with nothing valid after it is a torn tail (an unfinished
//     write that was never confirmed); anything else is corruption.
//  2. cut the torn tail, if any.
//  3. replay: apply marks and live accounting, and hand every message and
//     settlement to the visitor in log order.
#define _GNU_SOURCE
#include "store_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int
s_cmp_segno (const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

//  Segment numbers found in DIR/log, ascending.
static fedq_rc_t
s_list (store_t *self, uint32_t **segnos_p, size_t *n_p)
{
    *segnos_p = NULL;
    *n_p = 0;
    int fd = dup (self->dir_fd);
    DIR *dir = fd >= 0 ? fdopendir (fd) : NULL;
    if (!dir) {
        fedq_error ("store: cannot list %s: %s", self->log_dir,
                    strerror (errno));
        if (fd >= 0)
            close (fd);
        return FEDQ_EIO;
    }
    rewinddir (dir);
    uint32_t *segnos = NULL;
    size_t n = 0, cap = 0;
    fedq_rc_t rc = FEDQ_OK;
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        const char *name = entry->d_name;
        if (strlen (name) != 20 || strcmp (name + 16, ".seg") != 0
            || strspn (name, "0123456789abcdefABCDEF") != 16)
            continue;           //  not a segment (LOCK, files moved aside)
        uint64_t segno = strtoull (name, NULL, 16);
        if (segno == 0 || segno > UINT32_MAX) {
            fedq_error ("store: %s/%s: segment number out of range (1 to "
                        "%" PRIu32 "); move the file out of the directory",
                        self->log_dir, name, UINT32_MAX);
            rc = FEDQ_ECORRUPT;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint32_t *grown = realloc (segnos, cap * sizeof *segnos);
            if (!grown) {
                rc = FEDQ_ENOMEM;
                break;
            }
            segnos = grown;
        }
        segnos[n++] = (uint32_t) segno;
    }
    closedir (dir);
    if (rc != FEDQ_OK) {
        free (segnos);
        return rc;
    }
    if (n)
        qsort (segnos, n, sizeof *segnos, s_cmp_segno);
    *segnos_p = segnos;
    *n_p = n;
    return FEDQ_OK;
}

//  Open and map one segment; the last stays open for writing.
static fedq_rc_t
s_load (store_t *self, uint32_t segno, bool last)
{
    store_seg_t *seg = store_seg_push (self, segno);
    char name[32];
    store_seg_name (segno, name);
    seg->fd = openat (self->dir_fd, name,
                      (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st;
    if (seg->fd < 0 || fstat (seg->fd, &st) != 0) {
        fedq_error ("store: cannot open %s/%s: %s", self->log_dir, name,
                    strerror (errno));
        return FEDQ_EIO;
    }
    if ((uint64_t) st.st_size > STORE_MAX_SEGMENT) {
        fedq_error ("store: %s/%s: %" PRIu64 " bytes is more than a segment "
                    "can hold; move the file out of the directory",
                    self->log_dir, name, (uint64_t) st.st_size);
        return FEDQ_ECORRUPT;
    }
    seg->size = (uint64_t) st.st_size;
    size_t map_len = (size_t) seg->size;
    if (last && map_len < self->segment_bytes)
        map_len = (size_t) self->segment_bytes;
    if (map_len) {
        void *map = mmap (NULL, map_len, PROT_READ, MAP_SHARED, seg->fd, 0);
        if (map == MAP_FAILED) {
            fedq_error ("store: cannot map %s/%s: %s", self->log_dir, name,
                        strerror (errno));
            return FEDQ_EIO;
        }
        seg->map = map;
        seg->map_len = map_len;
    }
    if (!last) {
        close (seg->fd);
        seg->fd = -1;
    }
    return FEDQ_OK;
}

//  Why a record with a good CRC cannot be used, or NULL when it can.
static const char *
s_invalid (store_seg_t *seg, uint64_t off, uint8_t type, uint32_t len,
           char *why, size_t why_size)
{
    const uint8_t *rec = seg->map + off;
    if ((off == 0) != (type == STORE_REC_CHECKPOINT))
        return off == 0 ? "the segment does not start with a checkpoint"
                        : "a checkpoint in the middle of a segment";
    store_msg_t msg;
    store_mark_t marks[STORE_MAX_MARKS];
    const store_settle_t *settles;
    uint32_t n;
    store_marks_view_t view;
    switch (type) {
        case STORE_REC_MSG:
            return store_fmt_msg_parse (rec, len, &msg, marks)
                       ? NULL
                       : "malformed message record";
        case STORE_REC_SETTLE:
            return store_fmt_settle_parse (rec, len, &settles, &n)
                       ? NULL
                       : "malformed settle record";
        case STORE_REC_MARKS:
            return store_fmt_marks_parse (rec, len, false, &view)
                       ? NULL
                       : "malformed marks record";
        default:
            if (!store_fmt_marks_parse (rec, len, true, &view))
                return "malformed checkpoint record";
            if (view.version != STORE_FORMAT_VERSION) {
                snprintf (why, why_size,
                          "format version %" PRIu32 " (fedq " FEDQ_VERSION
                          " reads version %u): run a fedq that reads it",
                          view.version, STORE_FORMAT_VERSION);
                return why;
            }
            if (view.segno != seg->segno) {
                snprintf (why, why_size,
                          "the checkpoint names segment %" PRIu32
                          " (file renamed?)",
                          view.segno);
                return why;
            }
            return NULL;
    }
}

//  Offset of the first whole record with a good CRC at or after from, or 0.
static uint64_t
s_next_valid (store_seg_t *seg, uint64_t from)
{
    for (uint64_t off = from; off + STORE_REC_HEADER <= seg->size; off += 8) {
        uint8_t type;
        uint32_t len;
        if (store_fmt_check (seg->map, seg->size, off, &type, &len)
            == STORE_CHECK_OK)
            return off;
    }
    return 0;
}

//  Step 1 for one segment: *good_end gets the end of its valid records.
static fedq_rc_t
s_verify (store_t *self, store_seg_t *seg, bool last, uint64_t *good_end)
{
    char name[32], why[160];
    store_seg_name (seg->segno, name);
    uint64_t off = 0;
    while (off < seg->size) {
        uint8_t type = 0;
        uint32_t len = 0;
        store_check_t check = store_fmt_check (seg->map, seg->size, off,
                                               &type, &len);
        if (check == STORE_CHECK_OK) {
            const char *invalid = s_invalid (seg, off, type, len, why,
                                             sizeof why);
            if (invalid) {
                fedq_error ("store: %s/%s offset %" PRIu64 ": %s; nothing "
                            "was changed. Restore the data_dir from a backup, "
                            "or move this segment out of the directory to "
                            "start without its records",
                            self->log_dir, name, off, invalid);
                return FEDQ_ECORRUPT;
            }
            off += store_rec_extent (len);
            continue;
        }
        const char *what = check == STORE_CHECK_SHORT
                               ? "record cut short"
                               : "record fails its CRC check";
        uint64_t next = last ? s_next_valid (seg, off + 8) : 0;
        if (!last || next) {
            if (next)
                snprintf (why, sizeof why,
                          " but a valid record follows at offset %" PRIu64,
                          next);
            else
                snprintf (why, sizeof why, " in a segment older than the "
                                           "last one");
            fedq_error ("store: %s/%s offset %" PRIu64 ": %s%s: the log is "
                        "corrupt in the middle and nothing was changed. "
                        "Restore the data_dir from a backup, or move this "
                        "segment out of %s to start without its records "
                        "(they are lost)",
                        self->log_dir, name, off, what, why, self->log_dir);
            return FEDQ_ECORRUPT;
        }
        *good_end = off;
        return FEDQ_OK;
    }
    *good_end = seg->size;
    return FEDQ_OK;
}

static void
s_replay_marks (store_t *self, const uint8_t *rec, uint32_t len, bool ckpt)
{
    store_marks_view_t view;
    if (!store_fmt_marks_parse (rec, len, ckpt, &view))
        return;                 //  verified already
    const uint8_t *key = view.keys;
    for (uint32_t i = 0; i < view.n; i++) {
        uint64_t value;
        uint16_t key_len;
        memcpy (&value, view.values + 8 * i, 8);
        memcpy (&key_len, view.key_lens + 2 * i, 2);
        store_mark_raise (self, (const char *) key, key_len, value, false);
        key += key_len;
    }
}

static void
s_replay_settle (store_t *self, const store_visitor_t *visitor,
                 const store_settle_t *settle, store_pos_t pos)
{
    //  A settle into a deleted segment concerns a message nobody holds.
    if (store_settle_apply (self, settle->pos, pos, false) && visitor
        && visitor->on_settle)
        visitor->on_settle (visitor->ctx, settle->qid, settle->pos);
}

//  Step 3 for one (verified) segment.
static void
s_replay (store_t *self, size_t index, const store_visitor_t *visitor,
          store_recovery_t *recovery)
{
    uint64_t off = 0;
    while (off < self->segs[index].size) {
        store_seg_t *seg = &self->segs[index];
        const uint8_t *rec = seg->map + off;
        uint32_t len;
        memcpy (&len, rec + 4, 4);
        store_pos_t pos = STORE_POS (seg->segno, off);
        store_msg_t msg;
        store_mark_t marks[STORE_MAX_MARKS];
        const store_settle_t *settles;
        uint32_t n;
        switch (rec[8]) {
            case STORE_REC_MSG:
                if (!store_fmt_msg_parse (rec, len, &msg, marks))
                    break;
                seg->live_refs += msg.nqueues;
                seg->msg_refs += msg.nqueues;
                seg->msg_bytes += store_rec_extent (len);
                for (uint32_t i = 0; i < msg.nmarks; i++)
                    store_mark_raise (self, marks[i].key.ptr, marks[i].key.len,
                                      marks[i].value, false);
                if (visitor && visitor->on_msg)
                    visitor->on_msg (visitor->ctx, pos, &msg);
                for (uint32_t i = 0; i < msg.nsettles; i++)
                    s_replay_settle (self, visitor, &msg.settles[i], pos);
                break;
            case STORE_REC_SETTLE:
                if (!store_fmt_settle_parse (rec, len, &settles, &n))
                    break;
                for (uint32_t i = 0; i < n; i++)
                    s_replay_settle (self, visitor, &settles[i], pos);
                break;
            case STORE_REC_MARKS:
            case STORE_REC_CHECKPOINT:
                s_replay_marks (self, rec, len,
                                rec[8] == STORE_REC_CHECKPOINT);
                break;
            default:
                break;
        }
        recovery->records++;
        off += store_rec_extent (len);
    }
}

fedq_rc_t
store_recover (store_t *self, const store_visitor_t *visitor,
               store_recovery_t *recovery)
{
    uint32_t *segnos;
    size_t n;
    fedq_rc_t rc = s_list (self, &segnos, &n);
    if (rc != FEDQ_OK)
        return rc;
    for (size_t i = 0; i < n && rc == FEDQ_OK; i++)
        rc = s_load (self, segnos[i], i + 1 == n);
    free (segnos);
    if (rc != FEDQ_OK)
        return rc;
    recovery->segments = n;

    uint64_t good_end = 0;
    for (size_t i = 0; i < n && rc == FEDQ_OK; i++) {
        if (self->segs[i].map)
            madvise (self->segs[i].map, self->segs[i].size, MADV_SEQUENTIAL);
        rc = s_verify (self, &self->segs[i], i + 1 == n, &good_end);
        //  Let go of the pages verify read (the page cache keeps them for
        //  the replay): the node's peak RSS stays one segment, not the
        //  whole log.
        if (self->segs[i].map)
            madvise (self->segs[i].map, self->segs[i].size, MADV_DONTNEED);
    }
    if (rc != FEDQ_OK)
        return rc;

    if (n && good_end < store_active (self)->size) {
        store_seg_t *last = store_active (self);
        char name[32];
        store_seg_name (last->segno, name);
        uint64_t cut = last->size - good_end;
        if (ftruncate (last->fd, (off_t) good_end) != 0
            || fsync (last->fd) != 0) {
            fedq_error ("store: cannot cut the torn tail of %s/%s at offset "
                        "%" PRIu64 ": %s",
                        self->log_dir, name, good_end, strerror (errno));
            return FEDQ_EIO;
        }
        fedq_warn ("store: %s/%s: cut a torn tail of %" PRIu64 " bytes at "
                   "offset %" PRIu64 " (an unfinished write, never confirmed)",
                   self->log_dir, name, cut, good_end);
        last->size = good_end;
        recovery->truncated_bytes = cut;
    }

    for (size_t i = 0; i < n; i++) {
        s_replay (self, i, visitor, recovery);
        if (self->segs[i].map) {
            madvise (self->segs[i].map, self->segs[i].size, MADV_NORMAL);
            //  Replay touched every page of the log: without this the
            //  node's RSS after a restart is the whole log (1M queued
            //  1 KiB messages: 1.1 GB of RssFile, against 46 MiB before
            //  the restart). Dropping our page table entries keeps the
            //  page cache; a later read faults the page back in.
            madvise (self->segs[i].map, self->segs[i].size, MADV_DONTNEED);
        }
    }
    for (size_t i = 0; i < self->nmarks; i++)
        self->marks[i].durable = self->marks[i].value;
    return FEDQ_OK;
}
