//  node/store_impl.h — the store's private state, shared by store.c (the
//  append / commit / read path) and store_recover.c (open and replay).
#ifndef STORE_IMPL_H_INCLUDED
#define STORE_IMPL_H_INCLUDED

#include "store.h"
#include "store_format.h"

#define STORE_DEFAULT_SEGMENT (64ull << 20)
#define STORE_MIN_SEGMENT 512ull
#define STORE_MAX_SEGMENT 0xFFFFFFF8ull   //  offsets are 32 bits

//  One segment file, DIR/log/SSSSSSSSSSSSSSSS.seg.
typedef struct {
    uint32_t segno;             //  segment number (name and position)
    int fd;                     //  open while it may be written, else -1
    uint8_t *map;               //  read-only shared mapping, or NULL
    size_t map_len;             //  bytes mapped (the most it may grow to)
    uint64_t size;              //  committed bytes
    uint64_t live_refs;         //  (queue, message) pairs not settled
    uint64_t msg_refs;          //  refs ever added by its message records
    uint64_t msg_bytes;         //  bytes of its message records
    uint64_t pending_unsettles; //  refs removed by uncommitted records
    uint32_t min_ref;           //  lowest segment its settles point into
    bool fresh;                 //  made for uncommitted records only
    bool corrupt_logged;        //  a failed read was already logged
} store_seg_t;

//  Pending bytes bound for one segment: a commit writes one part per
//  segment it touches (two when it spans a roll).
typedef struct {
    uint32_t segno;             //  segment written
    size_t buf_off;             //  start in the pending buffer
    uint64_t file_off;          //  where it goes in the file
} store_part_t;

//  In-memory effect of an uncommitted record, undone if the commit fails.
typedef enum {
    STORE_UNDO_ADD = 1,         //  message: segno got n refs and a bytes
    STORE_UNDO_SETTLE = 2,      //  settle: segno lost one ref
    STORE_UNDO_MARK = 3,        //  mark idx moved up from value a
} store_undo_kind_t;

typedef struct {
    uint32_t kind;              //  store_undo_kind_t
    uint32_t segno;             //  segment touched (ADD, SETTLE)
    uint32_t n;                 //  refs added (ADD) or mark index (MARK)
    uint64_t a;                 //  bytes added (ADD) or old value (MARK)
} store_undo_t;

//  One high-water mark.
typedef struct {
    char *key;                  //  owned, NUL-terminated
    uint32_t key_len;           //  bytes in key
    uint64_t value;             //  counting uncommitted records
    uint64_t durable;           //  as of the last successful commit
} store_markent_t;

struct _store_t {
    char *log_dir;              //  DIR/log
    int dir_fd;                 //  DIR/log, for openat, unlinkat, fsync
    int lock_fd;                //  DIR/log/LOCK, flock'ed while open
    store_fsync_t fsync;        //  durability policy
    uint64_t segment_bytes;     //  roll past this
    store_seg_t *segs;          //  ascending segno; the last is active
    size_t nsegs;
    size_t segs_cap;
    uint64_t tail;              //  offset of the next record in the active
    fedq_buf_t pending;         //  records appended, not yet committed
    store_part_t *parts;        //  where pending bytes go
    size_t nparts;
    size_t parts_cap;
    store_undo_t *undo;         //  effects of pending records
    size_t nundo;
    size_t undo_cap;
    store_markent_t *marks;     //  every mark ever set
    size_t nmarks;
    size_t marks_cap;
    uint32_t *mark_slots;       //  open addressing: mark index + 1, 0 free
    size_t nslots;              //  power of two
    uint64_t mark_key_bytes;    //  sum of key lengths (checkpoint size)
    int fail_next_commit;       //  test hook: errno for the next commit
    bool lazy;                  //  this commit writes without syncing
    bool unsynced;              //  a lazy commit wrote since the last sync
    bool broken;                //  disk state unknown after a failed undo
    store_mark_t read_marks[STORE_MAX_MARKS];   //  marks of store_read
    //  Figures for store_stats
    uint64_t commits;
    uint64_t fsyncs;
    uint64_t fsync_us_total;
    uint64_t fsync_us_max;
    uint64_t fsync_hist[12];
    uint64_t corrupt_reads;
};

//  The segment numbered segno, or NULL when it does not exist (deleted).
store_seg_t *
    store_seg_find (store_t *self, uint32_t segno);

//  The active segment (the newest).
static inline store_seg_t *
store_active (store_t *self)
{
    return &self->segs[self->nsegs - 1];
}

//  Add a segment after the last one; returns it (zeroed, fd -1).
store_seg_t *
    store_seg_push (store_t *self, uint32_t segno);

//  File name of a segment inside DIR/log.
void
    store_seg_name (uint32_t segno, char name[32]);

//  Raise mark key to value (max semantics), recording an undo entry when
//  undo is set. FEDQ_ENOMEM never happens (allocation failure aborts).
void
    store_mark_raise (store_t *self, const char *key, uint32_t key_len,
                      uint64_t value, bool undo);

//  Account a settle of target by a record at pos (in log order).
//  True when the target segment exists and the settle counts.
bool
    store_settle_apply (store_t *self, store_pos_t target, store_pos_t pos,
                        bool undo);

//  Start the active segment with a checkpoint of every mark (pending).
void
    store_append_checkpoint (store_t *self);

//  Scan, verify, truncate a torn tail and replay the log (store_recover.c).
fedq_rc_t
    store_recover (store_t *self, const store_visitor_t *visitor,
                   store_recovery_t *recovery);

//  fsync the log directory after creating or deleting a segment file.
int
    store_sync_dir (store_t *self);

#endif
