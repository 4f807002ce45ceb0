//  tests/unit/test_store.c — the durable log (node/store.c): round trips,
//  replay, segment roll and deletion, torn tails, corruption, commit
//  rollback, compaction, fsync policies and limits. Each test works in its
//  own mkdtemp directory, removed afterwards.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "store.h"

//  --------------------------------------------------------------------------
//  Helpers

static int
s_rm_entry (const char *path, const struct stat *st, int flag,
            struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

static char *
s_tmpdir (void)
{
    char *dir = strdup ("/tmp/fedq-test-store-XXXXXX");
    assert_non_null (mkdtemp (dir));
    return dir;
}

static void
s_rmdir (char *dir)
{
    nftw (dir, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (dir);
}

static char *
s_seg_path (const char *dir, uint32_t segno)
{
    char *path;
    assert_true (asprintf (&path, "%s/log/%016x.seg", dir, segno) > 0);
    return path;
}

static bool
s_seg_exists (const char *dir, uint32_t segno)
{
    char *path = s_seg_path (dir, segno);
    bool exists = access (path, F_OK) == 0;
    free (path);
    return exists;
}

static uint8_t *
s_slurp (const char *path, size_t *size)
{
    FILE *file = fopen (path, "rb");
    assert_non_null (file);
    fseek (file, 0, SEEK_END);
    *size = (size_t) ftell (file);
    fseek (file, 0, SEEK_SET);
    uint8_t *data = malloc (*size + 1);
    assert_int_equal (fread (data, 1, *size, file), *size);
    fclose (file);
    return data;
}

static void
s_spit (const char *path, const uint8_t *data, size_t size)
{
    FILE *file = fopen (path, "wb");
    assert_non_null (file);
    assert_int_equal (fwrite (data, 1, size, file), size);
    fclose (file);
}

static off_t
s_file_size (const char *path)
{
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    return st.st_size;
}

//  What a visitor saw during replay.
typedef struct {
    uint64_t qid;
    store_pos_t pos;
    uint64_t seq;
    bool live;
    size_t seen_at;             //  event number of on_msg
} live_t;

typedef struct {
    live_t *items;
    size_t n;
    size_t events;
    size_t msgs;
    size_t settles;
    size_t bad_settles;         //  settles of (qid, pos) never seen live
} replay_t;

static void
s_on_msg (void *ctx, store_pos_t pos, const store_msg_t *msg)
{
    replay_t *replay = ctx;
    replay->msgs++;
    replay->events++;
    //  The body is derived from the sequence: check it on every replay.
    assert_true (fedq_str_eq (msg->origin, "sydney"));
    for (uint32_t i = 0; i < msg->body_len; i++)
        assert_int_equal (msg->body[i], (uint8_t) (msg->seq * 7 + i));
    for (uint32_t q = 0; q < msg->nqueues; q++) {
        replay->items = realloc (replay->items,
                                 (replay->n + 1) * sizeof *replay->items);
        replay->items[replay->n++] = (live_t){msg->qids[q], pos, msg->seq,
                                              true, replay->events};
    }
}

static void
s_on_settle (void *ctx, uint64_t qid, store_pos_t pos)
{
    replay_t *replay = ctx;
    replay->settles++;
    replay->events++;
    for (size_t i = 0; i < replay->n; i++)
        if (replay->items[i].qid == qid && replay->items[i].pos == pos
            && replay->items[i].live) {
            //  The settle comes after the message it settles.
            assert_true (replay->items[i].seen_at < replay->events);
            replay->items[i].live = false;
            return;
        }
    replay->bad_settles++;
}

static size_t
s_live_count (replay_t *replay)
{
    size_t live = 0;
    for (size_t i = 0; i < replay->n; i++)
        live += replay->items[i].live;
    return live;
}

static bool
s_is_live (replay_t *replay, uint64_t qid, store_pos_t pos)
{
    for (size_t i = 0; i < replay->n; i++)
        if (replay->items[i].qid == qid && replay->items[i].pos == pos)
            return replay->items[i].live;
    return false;
}

static void
s_replay_reset (replay_t *replay)
{
    free (replay->items);
    memset (replay, 0, sizeof *replay);
}

static store_t *
s_open (const char *dir, store_fsync_t fsync, uint64_t segment_bytes,
        replay_t *replay, store_recovery_t *recovery)
{
    store_opts_t opts = {dir, fsync, segment_bytes};
    store_visitor_t visitor = {replay, s_on_msg, s_on_settle};
    store_t *store = NULL;
    fedq_rc_t rc = store_open (&opts, replay ? &visitor : NULL, recovery,
                               &store);
    assert_int_equal (rc, FEDQ_OK);
    assert_non_null (store);
    return store;
}

//  A message from "sydney" with a body derived from seq.
typedef struct {
    store_msg_t msg;
    uint64_t qids[4];
    store_mark_t marks[2];
    store_settle_t settles[2];
    uint8_t body[70000];
} test_msg_t;

static void
s_make (test_msg_t *t, uint64_t seq, uint32_t body_len, uint32_t nqueues)
{
    memset (&t->msg, 0, sizeof t->msg);
    t->msg.origin = fedq_str_of ("sydney");
    t->msg.seq = seq;
    t->msg.message_id = fedq_str_of ("");
    t->msg.published_at = 1700000000000 + (int64_t) seq;
    t->msg.priority = (uint8_t) (seq % 10);
    for (uint32_t q = 0; q < nqueues; q++)
        t->qids[q] = q + 1;
    t->msg.nqueues = nqueues;
    t->msg.qids = t->qids;
    assert_true (body_len <= sizeof t->body);
    for (uint32_t i = 0; i < body_len; i++)
        t->body[i] = (uint8_t) (seq * 7 + i);
    t->msg.body = t->body;
    t->msg.body_len = body_len;
    t->msg.env = (const uint8_t *) "\x81\xa1k\xa1v";
    t->msg.env_len = 5;
}

static store_pos_t
s_append (store_t *store, uint64_t seq, uint32_t body_len, uint32_t nqueues)
{
    static test_msg_t t;
    s_make (&t, seq, body_len, nqueues);
    store_pos_t pos = 0;
    assert_int_equal (store_append_msg (store, &t.msg, &pos), FEDQ_OK);
    return pos;
}

static void
s_settle (store_t *store, uint64_t qid, store_pos_t pos)
{
    store_settle_t settle = {qid, pos};
    assert_int_equal (store_append_settles (store, &settle, 1), FEDQ_OK);
}

static void
s_check_read (store_t *store, store_pos_t pos, uint64_t seq,
              uint32_t body_len)
{
    store_msg_t msg;
    assert_int_equal (store_read (store, pos, &msg), FEDQ_OK);
    assert_int_equal (msg.seq, seq);
    assert_int_equal (msg.body_len, body_len);
    assert_true (fedq_str_eq (msg.origin, "sydney"));
    for (uint32_t i = 0; i < body_len; i++)
        assert_int_equal (msg.body[i], (uint8_t) (seq * 7 + i));
}

//  --------------------------------------------------------------------------
//  CRC32C: the SSE4.2 path and the portable one agree

static uint32_t
s_crc_bitwise (uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
    }
    return ~crc;
}

static void
test_crc32c (void **state)
{
    (void) state;
    assert_int_equal (fedq_crc32c (0, "123456789", 9), 0xE3069283u);
    assert_int_equal (fedq_crc32c_sw (0, "123456789", 9), 0xE3069283u);
    uint8_t data[1100];
    srand (7);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t) rand ();
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len + off <= 1090; len += (len < 40 ? 1 : 37)) {
            uint32_t ref = s_crc_bitwise (0, data + off, len);
            assert_int_equal (fedq_crc32c (0, data + off, len), ref);
            assert_int_equal (fedq_crc32c_sw (0, data + off, len), ref);
            //  Continuation: crc of a + b from crc of a
            size_t half = len / 3;
            uint32_t part = fedq_crc32c (0, data + off, half);
            assert_int_equal (
                fedq_crc32c (part, data + off + half, len - half), ref);
            part = fedq_crc32c_sw (0, data + off, half);
            assert_int_equal (
                fedq_crc32c_sw (part, data + off + half, len - half), ref);
        }
}

//  --------------------------------------------------------------------------
//  Append, commit, read

static void
test_round_trip (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_BATCH, 0, NULL, NULL);
    assert_false (store_pending (store));

    static test_msg_t t;
    s_make (&t, 11, 1000, 3);
    t.marks[0] = (store_mark_t){fedq_str_of ("l/outbox-to-melbourne"), 5};
    t.marks[1] = (store_mark_t){fedq_str_of ("o/sydney"), 11};
    t.msg.marks = t.marks;
    t.msg.nmarks = 2;
    t.msg.message_id = fedq_str_of ("order-42");
    t.msg.expires_at = 1800000000000;
    store_pos_t pos1, pos2;
    assert_int_equal (store_append_msg (store, &t.msg, &pos1), FEDQ_OK);
    assert_true (store_pending (store));
    assert_int_equal (store_mark (store, "o/sydney"), 11);
    assert_int_equal (store_mark_durable (store, "o/sydney"), 0);
    //  Not committed: not readable yet.
    store_msg_t msg;
    assert_int_equal (store_read (store, pos1, &msg), FEDQ_ENOTFOUND);

    s_make (&t, 12, 0, 1);
    assert_int_equal (store_append_msg (store, &t.msg, &pos2), FEDQ_OK);
    assert_int_equal (store_commit (store), FEDQ_OK);
    assert_false (store_pending (store));
    assert_int_equal (store_mark_durable (store, "o/sydney"), 11);
    assert_int_equal (STORE_POS_SEG (pos1), 1);
    assert_true (STORE_POS_OFF (pos2) > STORE_POS_OFF (pos1));

    assert_int_equal (store_read (store, pos1, &msg), FEDQ_OK);
    assert_true (fedq_str_eq (msg.origin, "sydney"));
    assert_true (fedq_str_eq (msg.message_id, "order-42"));
    assert_int_equal (msg.seq, 11);
    assert_int_equal (msg.published_at, 1700000000011);
    assert_int_equal (msg.expires_at, 1800000000000);
    assert_int_equal (msg.priority, 1);
    assert_int_equal (msg.nqueues, 3);
    assert_int_equal (msg.qids[0], 1);
    assert_int_equal (msg.qids[2], 3);
    assert_int_equal (msg.nmarks, 2);
    assert_true (fedq_str_eq (msg.marks[0].key, "l/outbox-to-melbourne"));
    assert_int_equal (msg.marks[0].value, 5);
    assert_true (fedq_str_eq (msg.marks[1].key, "o/sydney"));
    assert_int_equal (msg.env_len, 5);
    assert_memory_equal (msg.env, "\x81\xa1k\xa1v", 5);
    s_check_read (store, pos1, 11, 1000);
    s_check_read (store, pos2, 12, 0);

    assert_int_equal (store_mark (store, "l/outbox-to-melbourne"), 5);
    assert_int_equal (store_mark (store, "never"), 0);
    //  Marks only grow.
    store_mark_t lower = {fedq_str_of ("o/sydney"), 3};
    assert_int_equal (store_append_marks (store, &lower, 1), FEDQ_OK);
    assert_int_equal (store_commit (store), FEDQ_OK);
    assert_int_equal (store_mark (store, "o/sydney"), 11);

    store_stats_t stats;
    store_stats (store, &stats);
    assert_int_equal (stats.live_refs, 4);
    assert_int_equal (stats.segments, 1);
    s_settle (store, 2, pos1);
    assert_int_equal (store_commit (store), FEDQ_OK);
    store_stats (store, &stats);
    assert_int_equal (stats.live_refs, 3);
    assert_true (stats.commits >= 3);
    assert_true (stats.fsyncs >= 3);
    uint64_t hist = 0;
    for (int i = 0; i < 12; i++)
        hist += stats.fsync_hist[i];
    assert_int_equal (hist, stats.fsyncs);

    //  A checkpoint is not a message; a misaligned offset is no record.
    assert_int_equal (store_read (store, STORE_POS (1, 0), &msg), FEDQ_EINVAL);
    assert_int_equal (store_read (store, pos2 + 4, &msg), FEDQ_ENOTFOUND);
    assert_int_equal (store_read (store, STORE_POS (9, 0), &msg),
                      FEDQ_ENOTFOUND);
    store_destroy (&store);
    assert_null (store);
    s_rmdir (dir);
}

//  --------------------------------------------------------------------------
//  Reopen replays the live messages, settlements and marks

typedef struct {
    char keys[8][64];
    uint64_t values[8];
    int n;
} marks_seen_t;

static void
s_on_mark (void *ctx, const char *key, uint64_t value)
{
    marks_seen_t *seen = ctx;
    assert_true (seen->n < 8);
    snprintf (seen->keys[seen->n], 64, "%s", key);
    seen->values[seen->n++] = value;
}

static void
test_reopen_replay (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_BATCH, 0, NULL, NULL);
    store_pos_t pos[100];
    for (int i = 0; i < 100; i++) {
        static test_msg_t t;
        s_make (&t, (uint64_t) i, (uint32_t) (i * 13), 2);
        t.marks[0] = (store_mark_t){fedq_str_of ("o/sydney"), (uint64_t) i};
        t.msg.marks = t.marks;
        t.msg.nmarks = 1;
        assert_int_equal (store_append_msg (store, &t.msg, &pos[i]), FEDQ_OK);
        if (i % 10 == 9)
            assert_int_equal (store_commit (store), FEDQ_OK);
    }
    //  Evens leave both queues; multiples of 3 leave queue 1.
    for (int i = 0; i < 100; i++) {
        if (i % 2 == 0) {
            store_settle_t both[2] = {{1, pos[i]}, {2, pos[i]}};
            assert_int_equal (store_append_settles (store, both, 2), FEDQ_OK);
        }
        else if (i % 3 == 0)
            s_settle (store, 1, pos[i]);
    }
    store_mark_t link = {fedq_str_of ("l/outbox-to-melbourne"), 77};
    assert_int_equal (store_append_marks (store, &link, 1), FEDQ_OK);
    assert_int_equal (store_commit (store), FEDQ_OK);
    //  Appended but never committed: not on disk, not replayed.
    s_append (store, 1000, 10, 1);
    store_destroy (&store);

    replay_t replay = {0};
    store_recovery_t rec;
    store = s_open (dir, STORE_FSYNC_BATCH, 0, &replay, &rec);
    assert_int_equal (replay.msgs, 100);
    assert_int_equal (replay.bad_settles, 0);
    assert_int_equal (rec.truncated_bytes, 0);
    assert_int_equal (rec.segments, 1);
    assert_true (rec.records >= 100 + 1 + 1);
    size_t expect = 0;
    for (int i = 0; i < 100; i++) {
        bool q1 = i % 2 != 0 && i % 3 != 0;
        bool q2 = i % 2 != 0;
        assert_int_equal (s_is_live (&replay, 1, pos[i]), q1);
        assert_int_equal (s_is_live (&replay, 2, pos[i]), q2);
        expect += q1 + q2;
    }
    assert_int_equal (s_live_count (&replay), expect);
    store_stats_t stats;
    store_stats (store, &stats);
    assert_int_equal (stats.live_refs, expect);
    assert_int_equal (store_mark (store, "o/sydney"), 99);
    assert_int_equal (store_mark (store, "l/outbox-to-melbourne"), 77);
    marks_seen_t seen = {0};
    store_marks_each (store, s_on_mark, &seen);
    assert_int_equal (seen.n, 2);

    //  Appends continue after the recovered records.
    store_pos_t more = s_append (store, 500, 64, 1);
    assert_true (more > pos[99]);
    assert_int_equal (store_commit (store), FEDQ_OK);
    s_check_read (store, more, 500, 64);
    s_check_read (store, pos[1], 1, 13);
    store_destroy (&store);
    s_replay_reset (&replay);
    store = s_open (dir, STORE_FSYNC_BATCH, 0, &replay, NULL);
    assert_int_equal (replay.msgs, 101);
    store_destroy (&store);
    s_replay_reset (&replay);
    s_rmdir (dir);
}

//  --------------------------------------------------------------------------
//  Segments roll; checkpoints carry marks past deleted segments

static void
test_roll_and_checkpoint (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_BATCH, 4096, NULL, NULL);
    store_mark_t first = {fedq_str_of ("l/first"), 42};
    assert_int_equal (store_append_marks (store, &first, 1), FEDQ_OK);
    store_pos_t pos[100];
    for (int i = 0; i < 100; i++) {
        pos[i] = s_append (store, (uint64_t) i, 200, 1);
        if (i % 10 == 9)
            assert_int_equal (store_commit (store), FEDQ_OK);
    }
    uint32_t last_seg = STORE_POS_SEG (pos[99]);
    assert_true (last_seg >= 5);
    for (uint32_t s = 1; s <= last_seg; s++)
        assert_true (s_seg_exists (dir, s));
    for (int i = 0; i < 100; i++) {
        s_check_read (store, pos[i], (uint64_t) i, 200);
        assert_true (STORE_POS_OFF (pos[i]) + 300 <= 4096);
    }
    //  Settle everything outside the last segment.
    int kept = 0;
    for (int i = 0; i < 100; i++)
        if (STORE_POS_SEG (pos[i]) != last_seg)
            s_settle (store, 1, pos[i]);
        else
            kept++;
    //  Settles still pending: nothing may go yet.
    assert_int_equal (store_maintain (store), 0);
    assert_int_equal (store_commit (store), FEDQ_OK);
    store_stats_t stats;
    store_stats (store, &stats);
    uint64_t before = stats.segments;
    int deleted = store_maintain (store);
    store_stats (store, &stats);
    assert_true (deleted >= (int) last_seg - 1);
    assert_int_equal (stats.segments, before - (uint64_t) deleted);
    for (uint32_t s = 1; s < last_seg; s++)
        assert_false (s_seg_exists (dir, s));
    assert_int_equal (store_maintain (store), 0);
    assert_int_equal (store_read (store, pos[0], &(store_msg_t){0}),
                      FEDQ_ENOTFOUND);
    store_destroy (&store);

    replay_t replay = {0};
    store = s_open (dir, STORE_FSYNC_BATCH, 4096, &replay, NULL);
    assert_int_equal (store_mark (store, "l/first"), 42);
    assert_int_equal (s_live_count (&replay), (size_t) kept);
    assert_int_equal (replay.bad_settles, 0);
    store_destroy (&store);
    s_replay_reset (&replay);
    s_rmdir (dir);
}

//  A segment holding the settle of a message in an older segment must not
//  go while that older segment is still there, or the message would come
//  back to life on the next start.
static void
test_settles_outlive_messages (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_NEVER, 4096, NULL, NULL);
    store_pos_t a = s_append (store, 1, 1800, 1);
    store_pos_t b = s_append (store, 2, 1800, 1);
    store_pos_t c = s_append (store, 3, 1800, 1);
    assert_int_equal (STORE_POS_SEG (a), 1);
    assert_int_equal (STORE_POS_SEG (b), 1);
    assert_int_equal (STORE_POS_SEG (c), 2);
    s_settle (store, 1, a);             //  in segment 2, settles segment 1
    store_pos_t filler = s_append (store, 4, 3000, 1);
    assert_int_equal (STORE_POS_SEG (filler), 3);
    s_settle (store, 1, c);             //  segment 2 now has nothing live
    assert_int_equal (store_commit (store), FEDQ_OK);
    assert_int_equal (store_maintain (store), 0);
    assert_true (s_seg_exists (dir, 2));
    store_destroy (&store);

    replay_t replay = {0};
    store = s_open (dir, STORE_FSYNC_NEVER, 4096, &replay, NULL);
    assert_false (s_is_live (&replay, 1, a));
    assert_true (s_is_live (&replay, 1, b));
    assert_int_equal (s_live_count (&replay), 2);
    s_settle (store, 1, b);
    assert_int_equal (store_commit (store), FEDQ_OK);
    assert_int_equal (store_maintain (store), 2);
    assert_false (s_seg_exists (dir, 1));
    assert_false (s_seg_exists (dir, 2));
    store_destroy (&store);
    s_replay_reset (&replay);
    store = s_open (dir, STORE_FSYNC_NEVER, 4096, &replay, NULL);
    assert_int_equal (s_live_count (&replay), 1);
    assert_true (s_is_live (&replay, 1, filler));
    store_destroy (&store);
    s_replay_reset (&replay);
    s_rmdir (dir);
}

//  --------------------------------------------------------------------------
//  Torn tails are cut; corruption in the middle is refused

static void
test_torn_tail (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_NEVER, 0, NULL, NULL);
    store_pos_t pos[20];
    for (int i = 0; i < 20; i++) {
        pos[i] = s_append (store, (uint64_t) i, (uint32_t) (50 + i * 9), 1);
        assert_int_equal (store_commit (store), FEDQ_OK);
    }
    store_destroy (&store);
    char *path = s_seg_path (dir, 1);
    size_t size;
    uint8_t *bytes = s_slurp (path, &size);
    size_t last = STORE_POS_OFF (pos[19]);
    assert_true (last < size);
    //  Every cut inside the last record (header, payload or padding).
    for (size_t cut = last + 1; cut < size; cut++) {
        s_spit (path, bytes, cut);
        replay_t replay = {0};
        store_recovery_t rec;
        store = s_open (dir, STORE_FSYNC_NEVER, 0, &replay, &rec);
        assert_int_equal (replay.msgs, 19);
        assert_int_equal (rec.truncated_bytes, cut - last);
        assert_int_equal (rec.records, 20);     //  checkpoint + 19
        assert_int_equal (rec.bytes, last);
        assert_int_equal (s_file_size (path), (off_t) last);
        s_check_read (store, pos[18], 18, 50 + 18 * 9);
        store_destroy (&store);
        s_replay_reset (&replay);
    }
    //  Garbage after the last record, then zeros (a preallocated tail).
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t) (i * 31 + 5);
    for (int round = 0; round < 2; round++) {
        if (round == 1)
            memset (junk, 0, sizeof junk);
        uint8_t *grown = malloc (size + sizeof junk);
        memcpy (grown, bytes, size);
        memcpy (grown + size, junk, sizeof junk);
        s_spit (path, grown, size + sizeof junk);
        free (grown);
        replay_t replay = {0};
        store_recovery_t rec;
        store = s_open (dir, STORE_FSYNC_NEVER, 0, &replay, &rec);
        assert_int_equal (replay.msgs, 20);
        assert_int_equal (rec.truncated_bytes, sizeof junk);
        assert_int_equal (s_file_size (path), (off_t) size);
        store_destroy (&store);
        s_replay_reset (&replay);
    }
    //  A segment cut inside its checkpoint holds nothing: it starts again.
    s_spit (path, bytes, 5);
    store_recovery_t rec;
    replay_t replay = {0};
    store = s_open (dir, STORE_FSYNC_NEVER, 0, &replay, &rec);
    assert_int_equal (rec.truncated_bytes, 5);
    assert_int_equal (replay.msgs, 0);
    store_pos_t again = s_append (store, 5, 5, 1);
    assert_int_equal (store_commit (store), FEDQ_OK);
    s_check_read (store, again, 5, 5);
    store_destroy (&store);
    s_replay_reset (&replay);
    free (bytes);
    free (path);
    s_rmdir (dir);
}

//  Open must fail with ECORRUPT and leave every byte as it was.
static void
s_expect_corrupt (const char *dir, uint64_t segment_bytes)
{
    char *paths[4];
    uint8_t *before[4];
    size_t sizes[4];
    for (uint32_t s = 1; s <= 4; s++) {
        paths[s - 1] = s_seg_path (dir, s);
        before[s - 1] = access (paths[s - 1], F_OK) == 0
                            ? s_slurp (paths[s - 1], &sizes[s - 1])
                            : NULL;
    }
    store_opts_t opts = {dir, STORE_FSYNC_NEVER, segment_bytes};
    replay_t replay = {0};
    store_visitor_t visitor = {&replay, s_on_msg, s_on_settle};
    store_t *store = NULL;
    assert_int_equal (store_open (&opts, &visitor, NULL, &store),
                      FEDQ_ECORRUPT);
    assert_null (store);
    assert_int_equal (replay.events, 0);
    for (int s = 0; s < 4; s++) {
        if (before[s]) {
            size_t size;
            uint8_t *after = s_slurp (paths[s], &size);
            assert_int_equal (size, sizes[s]);
            assert_memory_equal (after, before[s], size);
            free (after);
            free (before[s]);
        }
        else
            assert_int_not_equal (access (paths[s], F_OK), 0);
        free (paths[s]);
    }
}

static void
s_flip (const char *path, size_t off, uint8_t mask)
{
    int fd = open (path, O_RDWR);
    assert_true (fd >= 0);
    uint8_t byte;
    assert_int_equal (pread (fd, &byte, 1, (off_t) off), 1);
    byte ^= mask;
    assert_int_equal (pwrite (fd, &byte, 1, (off_t) off), 1);
    close (fd);
}

static void
test_corrupt_middle (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_NEVER, 4096, NULL, NULL);
    store_pos_t pos[30];
    for (int i = 0; i < 30; i++)
        pos[i] = s_append (store, (uint64_t) i, 300, 1);
    assert_int_equal (store_commit (store), FEDQ_OK);
    store_destroy (&store);
    uint32_t last_seg = STORE_POS_SEG (pos[29]);
    assert_true (last_seg >= 3 && last_seg <= 4);
    char *path = s_seg_path (dir, last_seg);
    size_t size;
    uint8_t *clean = s_slurp (path, &size);

    //  A body bit in a middle record of the last segment.
    int mid = 29;
    while (STORE_POS_SEG (pos[mid - 1]) == last_seg)
        mid--;
    mid += 1;           //  the second message of the last segment
    assert_int_equal (STORE_POS_SEG (pos[mid + 1]), last_seg);
    s_flip (path, STORE_POS_OFF (pos[mid]) + 100, 0x10);
    s_expect_corrupt (dir, 4096);
    s_spit (path, clean, size);

    //  A length bit: the record seems to run past the end, but valid
    //  records follow it.
    s_flip (path, STORE_POS_OFF (pos[mid]) + 6, 0x40);
    s_expect_corrupt (dir, 4096);
    s_spit (path, clean, size);

    //  The last record of an older segment.
    char *older = s_seg_path (dir, 1);
    int in_first = 0;
    while (STORE_POS_SEG (pos[in_first + 1]) == 1)
        in_first++;
    s_flip (older, STORE_POS_OFF (pos[in_first]) + 50, 0x01);
    s_expect_corrupt (dir, 4096);
    s_flip (older, STORE_POS_OFF (pos[in_first]) + 50, 0x01);

    //  An older segment cut short.
    size_t old_size;
    uint8_t *old_clean = s_slurp (older, &old_size);
    s_spit (older, old_clean, old_size - 3);
    s_expect_corrupt (dir, 4096);
    s_spit (older, old_clean, old_size);

    //  Put back, it opens and serves everything.
    replay_t replay = {0};
    store = s_open (dir, STORE_FSYNC_NEVER, 4096, &replay, NULL);
    assert_int_equal (replay.msgs, 30);
    store_destroy (&store);
    s_replay_reset (&replay);
    free (old_clean);
    free (older);
    free (clean);
    free (path);
    s_rmdir (dir);
}

//  A record damaged after open is refused by store_read and counted.
static void
test_corrupt_read (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_NEVER, 0, NULL, NULL);
    store_pos_t a = s_append (store, 1, 500, 1);
    store_pos_t b = s_append (store, 2, 500, 1);
    assert_int_equal (store_commit (store), FEDQ_OK);
    char *path = s_seg_path (dir, 1);
    s_flip (path, STORE_POS_OFF (a) + 200, 0x04);
    store_msg_t msg;
    assert_int_equal (store_read (store, a, &msg), FEDQ_ECORRUPT);
    assert_int_equal (store_read (store, a, &msg), FEDQ_ECORRUPT);
    s_check_read (store, b, 2, 500);
    store_stats_t stats;
    store_stats (store, &stats);
    assert_int_equal (stats.corrupt_reads, 2);
    store_destroy (&store);
    free (path);
    s_rmdir (dir);
}

//  --------------------------------------------------------------------------
//  A failed commit leaves memory equal to disk

static void
test_commit_failure (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    char *path = s_seg_path (dir, 1);
    store_t *store = s_open (dir, STORE_FSYNC_BATCH, 4096, NULL, NULL);
    static test_msg_t t;
    s_make (&t, 1, 100, 2);
    t.marks[0] = (store_mark_t){fedq_str_of ("l/x"), 1};
    t.msg.marks = t.marks;
    t.msg.nmarks = 1;
    store_pos_t a;
    assert_int_equal (store_append_msg (store, &t.msg, &a), FEDQ_OK);
    assert_int_equal (store_commit (store), FEDQ_OK);
    store_stats_t before, after;
    store_stats (store, &before);
    off_t size = s_file_size (path);

    for (int round = 0; round < 2; round++) {
        s_make (&t, 2, 100, 1);
        t.marks[0] = (store_mark_t){fedq_str_of ("l/x"), 2};
        t.marks[1] = (store_mark_t){fedq_str_of ("l/new"), 9};
        t.msg.marks = t.marks;
        t.msg.nmarks = 2;
        t.settles[0] = (store_settle_t){1, a};
        t.msg.settles = t.settles;
        t.msg.nsettles = 1;
        store_pos_t b;
        assert_int_equal (store_append_msg (store, &t.msg, &b), FEDQ_OK);
        s_settle (store, 2, a);
        assert_int_equal (store_mark (store, "l/x"), 2);
        store_stats (store, &after);
        assert_int_equal (after.live_refs, before.live_refs - 1);
        store_test_fail_next_commit (store, round ? ENOSPC : EIO);
        assert_int_equal (store_commit (store),
                          round ? FEDQ_ENOSPC : FEDQ_EIO);
        assert_false (store_pending (store));
        assert_int_equal (store_mark (store, "l/x"), 1);
        assert_int_equal (store_mark (store, "l/new"), 0);
        store_stats (store, &after);
        assert_int_equal (after.live_refs, before.live_refs);
        assert_int_equal (after.bytes, before.bytes);
        assert_int_equal (after.segments, before.segments);
        assert_int_equal (s_file_size (path), size);
        s_check_read (store, a, 1, 100);
    }

    //  A failing commit that spans a roll drops the new segment file too.
    store_pos_t big = s_append (store, 3, 3900, 1);
    assert_int_equal (STORE_POS_SEG (big), 2);
    store_test_fail_next_commit (store, EIO);
    assert_int_equal (store_commit (store), FEDQ_EIO);
    assert_false (s_seg_exists (dir, 2));
    assert_int_equal (s_file_size (path), size);
    store_stats (store, &after);
    assert_int_equal (after.segments, 1);
    assert_int_equal (after.live_refs, before.live_refs);
    //  The store carries on.
    big = s_append (store, 3, 3900, 1);
    assert_int_equal (STORE_POS_SEG (big), 2);
    assert_int_equal (store_commit (store), FEDQ_OK);
    assert_true (s_seg_exists (dir, 2));
    s_check_read (store, big, 3, 3900);
    store_destroy (&store);

    replay_t replay = {0};
    store = s_open (dir, STORE_FSYNC_BATCH, 4096, &replay, NULL);
    assert_int_equal (replay.msgs, 2);
    assert_int_equal (replay.settles, 0);
    assert_int_equal (s_live_count (&replay), 3);
    assert_int_equal (store_mark (store, "l/x"), 1);
    assert_int_equal (store_mark (store, "l/new"), 0);
    store_destroy (&store);
    s_replay_reset (&replay);
    free (path);
    s_rmdir (dir);
}

//  A real short write: the file size limit stops the write half way, and
//  the rollback cuts the partial record off again.
static void
test_write_failure (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    char *path = s_seg_path (dir, 1);
    store_t *store = s_open (dir, STORE_FSYNC_BATCH, 0, NULL, NULL);
    store_pos_t a = s_append (store, 1, 100, 1);
    assert_int_equal (store_commit (store), FEDQ_OK);
    off_t size = s_file_size (path);
    struct rlimit old_limit, limit;
    assert_int_equal (getrlimit (RLIMIT_FSIZE, &old_limit), 0);
    limit = old_limit;
    limit.rlim_cur = (rlim_t) size + 100;
    signal (SIGXFSZ, SIG_IGN);
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &limit), 0);
    s_append (store, 2, 1000, 1);
    fedq_rc_t rc = store_commit (store);
    assert_int_equal (setrlimit (RLIMIT_FSIZE, &old_limit), 0);
    signal (SIGXFSZ, SIG_DFL);
    assert_int_equal (rc, FEDQ_EIO);
    assert_int_equal (s_file_size (path), size);
    store_stats_t stats;
    store_stats (store, &stats);
    assert_int_equal (stats.live_refs, 1);
    assert_int_equal (stats.bytes, (uint64_t) size);
    store_pos_t b = s_append (store, 3, 1000, 1);
    assert_int_equal (store_commit (store), FEDQ_OK);
    s_check_read (store, a, 1, 100);
    s_check_read (store, b, 3, 1000);
    store_destroy (&store);
    replay_t replay = {0};
    store = s_open (dir, STORE_FSYNC_BATCH, 0, &replay, NULL);
    assert_int_equal (replay.msgs, 2);
    store_destroy (&store);
    s_replay_reset (&replay);
    free (path);
    s_rmdir (dir);
}

//  --------------------------------------------------------------------------
//  Compaction moves the last live messages out of a sparse segment

static void
test_compaction (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_BATCH, 4096, NULL, NULL);
    store_pos_t pos[12];
    for (int i = 0; i < 12; i++)
        pos[i] = s_append (store, (uint64_t) i, 900, i == 1 ? 2 : 1);
    assert_int_equal (store_commit (store), FEDQ_OK);
    assert_int_equal (STORE_POS_SEG (pos[0]), 1);
    assert_int_equal (STORE_POS_SEG (pos[1]), 1);
    assert_int_equal (STORE_POS_SEG (pos[11]), 3);
    //  Everything in segment 1 but message 1 (in queues 1 and 2) settled.
    for (int i = 0; i < 12; i++)
        if (STORE_POS_SEG (pos[i]) == 1 && i != 1)
            s_settle (store, 1, pos[i]);
    assert_int_equal (store_commit (store), FEDQ_OK);
    uint32_t segs[4];
    size_t n = store_compact_candidates (store, 0.5, segs, 4);
    assert_int_equal (n, 1);
    assert_int_equal (segs[0], 1);
    assert_int_equal (store_compact_candidates (store, 0.01, segs, 4), 0);

    store_pos_t moved1, moved2;
    assert_int_equal (store_relocate (store, 7, pos[1], &moved1),
                      FEDQ_ENOTFOUND);
    assert_int_equal (store_relocate (store, 1, pos[1], &moved1), FEDQ_OK);
    assert_int_equal (store_relocate (store, 2, pos[1], &moved2), FEDQ_OK);
    assert_int_equal (store_commit (store), FEDQ_OK);
    assert_true (STORE_POS_SEG (moved1) >= 3);
    s_check_read (store, moved1, 1, 900);
    store_msg_t msg;
    assert_int_equal (store_read (store, moved2, &msg), FEDQ_OK);
    assert_int_equal (msg.nqueues, 1);
    assert_int_equal (msg.qids[0], 2);
    assert_int_equal (msg.nsettles, 1);
    assert_int_equal (msg.settles[0].pos, pos[1]);
    assert_int_equal (store_maintain (store), 1);
    assert_false (s_seg_exists (dir, 1));
    store_destroy (&store);

    replay_t replay = {0};
    store = s_open (dir, STORE_FSYNC_BATCH, 4096, &replay, NULL);
    assert_true (s_is_live (&replay, 1, moved1));
    assert_true (s_is_live (&replay, 2, moved2));
    assert_int_equal (replay.bad_settles, 0);
    size_t live = 0;
    for (int i = 0; i < 12; i++)
        if (STORE_POS_SEG (pos[i]) != 1)
            live++;
    assert_int_equal (s_live_count (&replay), live + 2);
    s_check_read (store, moved2, 1, 900);
    store_destroy (&store);
    s_replay_reset (&replay);
    s_rmdir (dir);
}

//  --------------------------------------------------------------------------
//  Every fsync policy stores and recovers

static void
test_fsync_policies (void **state)
{
    (void) state;
    store_fsync_t policies[3] = {STORE_FSYNC_ALWAYS, STORE_FSYNC_BATCH,
                                 STORE_FSYNC_NEVER};
    for (int p = 0; p < 3; p++) {
        char *dir = s_tmpdir ();
        store_t *store = s_open (dir, policies[p], 0, NULL, NULL);
        store_stats_t before, after;
        store_stats (store, &before);
        for (int i = 0; i < 10; i++) {
            s_append (store, (uint64_t) i, 100, 1);
            if (i % 5 == 4)
                assert_int_equal (store_commit (store), FEDQ_OK);
        }
        store_stats (store, &after);
        uint64_t fsyncs = after.fsyncs - before.fsyncs;
        if (policies[p] == STORE_FSYNC_ALWAYS)
            assert_int_equal (fsyncs, 10);
        else if (policies[p] == STORE_FSYNC_BATCH)
            assert_int_equal (fsyncs, 2);
        else
            assert_int_equal (fsyncs, 0);
        assert_int_equal (after.commits - before.commits, 2);
        store_destroy (&store);
        replay_t replay = {0};
        store = s_open (dir, policies[p], 0, &replay, NULL);
        assert_int_equal (replay.msgs, 10);
        store_destroy (&store);
        s_replay_reset (&replay);
        s_rmdir (dir);
    }
}

//  --------------------------------------------------------------------------
//  Limits

static void
test_large_records (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_BATCH, 65536, NULL, NULL);
    static test_msg_t t;
    store_pos_t pos;
    //  A record bigger than a segment is refused, nothing appended.
    s_make (&t, 1, 66000, 1);
    assert_int_equal (store_append_msg (store, &t.msg, &pos), FEDQ_ETOOBIG);
    assert_false (store_pending (store));
    //  The largest record that fits, next to small ones.
    uint32_t max_body = 65536 - 32 - 75;
    store_pos_t small = s_append (store, 2, 10, 1);
    s_make (&t, 3, max_body, 1);
    assert_int_equal (store_append_msg (store, &t.msg, &pos), FEDQ_OK);
    assert_int_equal (STORE_POS_SEG (pos), 2);
    assert_int_equal (STORE_POS_OFF (pos), 32);
    s_make (&t, 4, max_body + 8, 1);
    assert_int_equal (store_append_msg (store, &t.msg, &pos), FEDQ_ETOOBIG);
    assert_int_equal (store_commit (store), FEDQ_OK);
    s_check_read (store, small, 2, 10);
    s_check_read (store, STORE_POS (2, 32), 3, max_body);
    store_destroy (&store);

    //  Many settles split into several records.
    store = s_open (dir, STORE_FSYNC_BATCH, 65536, NULL, NULL);
    store_settle_t *many = calloc (3000, sizeof *many);
    for (int i = 0; i < 3000; i++)
        many[i] = (store_settle_t){1, STORE_POS (1, 8)};
    assert_int_equal (store_append_settles (store, many, 3000), FEDQ_OK);
    assert_int_equal (store_commit (store), FEDQ_OK);
    free (many);

    //  Over a per-record limit.
    s_make (&t, 5, 10, 1);
    t.msg.nqueues = STORE_MAX_QUEUES + 1;
    assert_int_equal (store_append_msg (store, &t.msg, &pos), FEDQ_EINVAL);
    s_make (&t, 5, 10, 1);
    t.marks[0] = (store_mark_t){fedq_str_of (""), 1};
    t.msg.marks = t.marks;
    t.msg.nmarks = 1;
    assert_int_equal (store_append_msg (store, &t.msg, &pos), FEDQ_EINVAL);
    assert_false (store_pending (store));
    store_destroy (&store);
    s_rmdir (dir);
}

static void
test_big_segment_default (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    store_t *store = s_open (dir, STORE_FSYNC_BATCH, 0, NULL, NULL);
    static uint8_t body[4 << 20];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (uint8_t) (9 * 7 + i);
    static test_msg_t t;
    s_make (&t, 9, 0, 1);
    t.msg.body = body;
    t.msg.body_len = sizeof body;
    store_pos_t pos;
    assert_int_equal (store_append_msg (store, &t.msg, &pos), FEDQ_OK);
    assert_int_equal (store_commit (store), FEDQ_OK);
    s_check_read (store, pos, 9, sizeof body);
    store_destroy (&store);
    replay_t replay = {0};
    store = s_open (dir, STORE_FSYNC_BATCH, 0, &replay, NULL);
    assert_int_equal (replay.msgs, 1);
    store_destroy (&store);
    s_replay_reset (&replay);
    s_rmdir (dir);
}

//  --------------------------------------------------------------------------
//  Open: options, lock, fresh directories

static void
test_open_rules (void **state)
{
    (void) state;
    char *dir = s_tmpdir ();
    char *nested;
    assert_true (asprintf (&nested, "%s/a/b/node", dir) > 0);
    store_t *store = s_open (nested, STORE_FSYNC_BATCH, 0, NULL, NULL);
    struct stat st;
    char *log_dir;
    assert_true (asprintf (&log_dir, "%s/log", nested) > 0);
    assert_int_equal (stat (log_dir, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0700);
    assert_true (s_seg_exists (nested, 1));

    //  One process per data directory.
    store_opts_t opts = {nested, STORE_FSYNC_BATCH, 0};
    store_t *second = NULL;
    assert_int_equal (store_open (&opts, NULL, NULL, &second), FEDQ_EDENIED);
    assert_null (second);
    store_destroy (&store);
    assert_int_equal (store_open (&opts, NULL, NULL, &second), FEDQ_OK);
    store_destroy (&second);

    opts.segment_bytes = 100;
    assert_int_equal (store_open (&opts, NULL, NULL, &second), FEDQ_EINVAL);
    free (log_dir);
    free (nested);
    s_rmdir (dir);
}

int
main (void)
{
    fedq_log_setup (FEDQ_LOG_ERROR + 1, "test");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_crc32c),
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_reopen_replay),
        cmocka_unit_test (test_roll_and_checkpoint),
        cmocka_unit_test (test_settles_outlive_messages),
        cmocka_unit_test (test_torn_tail),
        cmocka_unit_test (test_corrupt_middle),
        cmocka_unit_test (test_corrupt_read),
        cmocka_unit_test (test_commit_failure),
        cmocka_unit_test (test_write_failure),
        cmocka_unit_test (test_compaction),
        cmocka_unit_test (test_fsync_policies),
        cmocka_unit_test (test_large_records),
        cmocka_unit_test (test_big_segment_default),
        cmocka_unit_test (test_open_rules),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
