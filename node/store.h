//  node/store.h — the node-wide durable log (DESIGN.md §4).
//
//  One segmented append-only log per node holds every durable fact:
//  messages (with the queues they were routed to), settlements, and
//  high-water marks (a shovel link's last stored sequence, the highest
//  sequence seen from each origin). A message routed to several queues,
//  the marks it advances and the settlements it replaces are one record,
//  so they become durable together or not at all.
//
//  Records are appended to a buffer and made durable by store_commit,
//  which writes the whole buffer with one write() and, per the fsync
//  policy, one fdatasync (group commit). Reads go through a read-only
//  mapping of each segment; bodies are never kept in RAM by the store.
//
//  On open, the store scans every segment, checks each record's CRC32C,
//  truncates a torn tail, refuses to open past mid-log corruption, and
//  replays the live records to a visitor so the broker rebuilds its
//  per-queue indexes.
#ifndef STORE_H_INCLUDED
#define STORE_H_INCLUDED

#include "fedq.h"

typedef struct _store_t store_t;

typedef enum {
    STORE_FSYNC_ALWAYS = 0, //  fdatasync after every record (no grouping)
    STORE_FSYNC_BATCH = 1,  //  one fdatasync per commit (group commit)
    STORE_FSYNC_NEVER = 2,  //  write() only; survives kill -9, not power loss
} store_fsync_t;

//  A record's place in the log: segment number << 32 | byte offset.
typedef uint64_t store_pos_t;
#define STORE_POS(seg, off) (((uint64_t) (seg) << 32) | (uint32_t) (off))
#define STORE_POS_SEG(pos) ((uint32_t) ((pos) >> 32))
#define STORE_POS_OFF(pos) ((uint32_t) (pos))

//  One settlement: queue qid no longer holds the message at pos.
typedef struct {
    uint64_t qid;
    store_pos_t pos;
} store_settle_t;

//  One high-water mark: key (e.g. "l/outbox-to-melbourne" for a link, "o/sydney"
//  for an origin) moves to value if value is higher. Marks only grow.
typedef struct {
    fedq_str_t key;
    uint64_t value;
} store_mark_t;

#define STORE_MAX_QUEUES 256    //  queues one message record may name
#define STORE_MAX_MARKS 8       //  marks one message record may carry
#define STORE_MAX_SETTLES 1024  //  settlements one record may carry

//  A message record. On append the caller fills it (borrowed pointers);
//  on read and replay the store fills it with pointers into the mapping,
//  valid until the next store_maintain.
typedef struct {
    fedq_str_t origin;          //  origin node id
    uint64_t seq;               //  sequence at origin
    fedq_str_t message_id;      //  publisher's id ("" when none)
    int64_t published_at;       //  ms since epoch, at origin
    int64_t expires_at;         //  ms since epoch, 0 = never
    uint8_t priority;           //  0..9
    uint32_t nqueues;
    const uint64_t *qids;       //  queues holding this message
    uint32_t nmarks;
    const store_mark_t *marks;  //  marks advanced by this record
    uint32_t nsettles;
    const store_settle_t *settles;  //  settled atomically with this append
    const uint8_t *env;         //  encoded envelope (proto_msg_t, msgpack)
    uint32_t env_len;
    const uint8_t *body;
    uint32_t body_len;
} store_msg_t;

typedef struct {
    const char *dir;            //  data directory (log/ is made inside)
    store_fsync_t fsync;
    uint64_t segment_bytes;     //  roll to a new segment past this; 0 = 64 MiB
} store_opts_t;

//  Visitor called by store_open for every record, in log order. A message
//  is live in queue q from its record until a settle of (q, pos). Marks are
//  applied by the store itself; visitors need not track them. Settles of
//  messages in segments already deleted are not passed on. A record made by
//  store_relocate arrives as on_msg (new pos) for one queue, with the same
//  origin and seq, followed by on_settle (qid, old pos): replace in place
//  to keep the queue's order.
typedef struct {
    void *ctx;
    void (*on_msg) (void *ctx, store_pos_t pos, const store_msg_t *msg);
    void (*on_settle) (void *ctx, uint64_t qid, store_pos_t pos);
} store_visitor_t;

//  What recovery found; filled by store_open.
typedef struct {
    uint64_t segments;          //  segment files scanned
    uint64_t records;           //  valid records replayed
    uint64_t truncated_bytes;   //  torn tail cut off (0 when clean)
    uint64_t bytes;             //  log bytes on disk after recovery
} store_recovery_t;

//  Open (or create) the log in opts->dir, recover it and replay it to
//  visitor (may be NULL). FEDQ_ECORRUPT when a record in the middle of the
//  log fails its check: the message names the segment and offset, and
//  nothing on disk is changed.
fedq_rc_t
    store_open (const store_opts_t *opts, const store_visitor_t *visitor,
                store_recovery_t *recovery, store_t **store_p);

//  Close the log (committing nothing further) and null *self_p.
void
    store_destroy (store_t **self_p);

//  Append a message record to the commit buffer; *pos gets its position.
//  FEDQ_ETOOBIG when the record would exceed the segment size.
fedq_rc_t
    store_append_msg (store_t *self, const store_msg_t *msg, store_pos_t *pos);

//  Append a settle record for n settlements.
fedq_rc_t
    store_append_settles (store_t *self, const store_settle_t *settles,
                          size_t n);

//  Append one record that settles n entries and advances m marks
//  together (a shovel's acks and its sequence mark).
fedq_rc_t
    store_append_settles_marks (store_t *self, const store_settle_t *settles,
                                size_t n, const store_mark_t *marks,
                                size_t m);

//  Append a record that only advances marks.
fedq_rc_t
    store_append_marks (store_t *self, const store_mark_t *marks, size_t n);

//  Write everything appended since the last commit with one write() and
//  make it durable per the fsync policy. FEDQ_EIO / FEDQ_ENOSPC on failure:
//  the appended records are discarded and the log stays as it was before
//  them (the caller must not confirm them).
fedq_rc_t
    store_commit (store_t *self);

//  Like store_commit, but without the fdatasync: for records nobody is
//  waiting on (acks, compaction). A later store_commit, or the roll to a
//  new segment, makes them durable; a crash before may lose them (an
//  acked message is then delivered again).
fedq_rc_t
    store_commit_lazy (store_t *self);

//  True when records are waiting for store_commit.
bool
    store_pending (store_t *self);

//  Read the committed message record at pos, verifying its CRC.
//  FEDQ_ECORRUPT (logged once with segment and offset) when it fails;
//  FEDQ_ENOTFOUND when no committed record is there (deleted segment, not
//  yet committed); FEDQ_EINVAL when the record there is not a message.
//  msg->marks points into a store buffer valid until the next store_read.
fedq_rc_t
    store_read (store_t *self, store_pos_t pos, store_msg_t *msg);

//  store_read without the CRC check of the record (lengths are checked):
//  for decisions that need only its fixed fields and marks, such as which
//  federation event it is. A corrupt record is still refused by store_read
//  when it is served.
fedq_rc_t
    store_peek (store_t *self, store_pos_t pos, store_msg_t *msg);

//  Current value of a mark (0 when never set), counting records appended
//  but not yet committed (a failed commit rolls them back).
uint64_t
    store_mark (store_t *self, const char *key);

//  Value of a mark as of the last successful commit.
uint64_t
    store_mark_durable (store_t *self, const char *key);

//  Call fn for every mark (checkpointed state: values as of the last
//  successful commit), in no particular order.
void
    store_marks_each (store_t *self,
                      void (*fn) (void *ctx, const char *key, uint64_t value),
                      void *ctx);

//  Delete segments with no live message (never the active one). Returns
//  the number of segments deleted. Pointers from store_read into deleted
//  segments become invalid. A segment also stays while uncommitted records
//  settle into it, and while an older segment its settles point into is
//  left (or those messages would come back on restart): compacting the
//  older one frees both. Call it after store_commit.
int
    store_maintain (store_t *self);

//  Segments whose live bytes are under `ratio` of their size (and not the
//  active one), up to max; returns how many were written to segs. The
//  broker relocates each live message in them with store_relocate.
size_t
    store_compact_candidates (store_t *self, double ratio, uint32_t *segs,
                              size_t max);

//  Copy the message at pos into the active segment for queue qid only,
//  settling (qid, pos) in the same record; *new_pos gets its place.
fedq_rc_t
    store_relocate (store_t *self, uint64_t qid, store_pos_t pos,
                    store_pos_t *new_pos);

//  Figures for status and metrics.
typedef struct {
    uint64_t segments;
    uint64_t bytes;             //  on disk
    uint64_t live_refs;         //  (queue, message) pairs not settled
    uint64_t commits;           //  store_commit calls that wrote
    uint64_t fsyncs;
    uint64_t fsync_us_total;    //  time spent in fdatasync
    uint64_t fsync_us_max;
    uint64_t fsync_hist[12];    //  fsync latency: <=50us,100,250,500,1ms,
                                //  2.5,5,10,25,50,100, +Inf
    uint64_t corrupt_reads;     //  store_read CRC failures
} store_stats_t;

void
    store_stats (store_t *self, store_stats_t *stats);

//  Upper bounds of fsync_hist buckets in microseconds (last is +Inf).
extern const uint64_t store_fsync_buckets_us[12];

//  For tests: make the next store_commit fail with errno err (EIO, ENOSPC)
//  after its bytes reached the file, so the rollback path runs for real.
void
    store_test_fail_next_commit (store_t *self, int err);

#endif
