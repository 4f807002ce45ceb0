//  tests/fuzz/fuzz_store.c — libFuzzer target for the durable log's
//  recovery (node/store_recover.c) and record decoder.
//
//  Input: one mode byte, then the bytes of a segment file.
//    mode & 1: recompute each record's CRC first, so the fuzzer reaches
//              the decoders behind the checksum;
//    mode & 2: split the bytes into two segment files (1 and 2) at an
//              8-aligned point given by the second byte.
//  store_open must return OK or ECORRUPT and never crash. When it opens,
//  every replayed message must read back, and after one more append and
//  commit the log must open again.
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

#define FUZZ_MAX_POS 256

typedef struct {
    store_pos_t pos[FUZZ_MAX_POS];
    uint64_t qid[FUZZ_MAX_POS];
    size_t n;
} seen_t;

static void
s_on_msg (void *ctx, store_pos_t pos, const store_msg_t *msg)
{
    seen_t *seen = ctx;
    //  Touch every byte handed out: a sanitizer catches any overrun.
    volatile uint8_t sum = 0;
    for (uint32_t i = 0; i < msg->body_len; i++)
        sum ^= msg->body[i];
    for (uint32_t i = 0; i < msg->env_len; i++)
        sum ^= msg->env[i];
    for (uint32_t i = 0; i < msg->origin.len; i++)
        sum ^= (uint8_t) msg->origin.ptr[i];
    for (uint32_t i = 0; i < msg->nmarks; i++)
        for (uint32_t k = 0; k < msg->marks[i].key.len; k++)
            sum ^= (uint8_t) msg->marks[i].key.ptr[k];
    for (uint32_t i = 0; i < msg->nqueues; i++)
        sum ^= (uint8_t) msg->qids[i];
    for (uint32_t i = 0; i < msg->nsettles; i++)
        sum ^= (uint8_t) msg->settles[i].pos;
    if (sum == 0x5A && msg->seq == 0x5A5A5A5A5A5A5A5Aull)
        seen->n += 0;           //  keeps sum observable
    if (seen->n < FUZZ_MAX_POS) {
        seen->qid[seen->n] = msg->nqueues ? msg->qids[0] : 0;
        seen->pos[seen->n++] = pos;
    }
}

static void
s_on_settle (void *ctx, uint64_t qid, store_pos_t pos)
{
    (void) ctx;
    (void) qid;
    (void) pos;
}

static void
s_on_mark (void *ctx, const char *key, uint64_t value)
{
    (void) ctx;
    (void) value;
    if (!key[0])
        abort ();
}

static int
s_rm_entry (const char *path, const struct stat *st, int flag,
            struct FTW *ftw)
{
    (void) st;
    (void) flag;
    return ftw->level > 0 ? remove (path) : 0;
}

static void
s_write (const char *dir, uint32_t segno, const uint8_t *data, size_t size)
{
    char path[512];
    snprintf (path, sizeof path, "%s/log/%016x.seg", dir, segno);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        abort ();
    if (size && write (fd, data, size) != (ssize_t) size)
        abort ();
    close (fd);
}

//  Give every record a good CRC, walking the lengths as recovery does.
static void
s_fix_crcs (uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off + 9 <= size) {
        uint32_t len;
        memcpy (&len, data + off + 4, 4);
        uint64_t ext = (9 + (uint64_t) len + 7) & ~(uint64_t) 7;
        if (ext > size - off)
            break;
        uint32_t crc = fedq_crc32c (0, data + off + 4, (size_t) len + 5);
        memcpy (data + off, &crc, 4);
        off += (size_t) ext;
    }
}

static char s_dir[64];

static void
s_cleanup (void)
{
    nftw (s_dir, s_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    rmdir (s_dir);
}

int
    LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *dir = s_dir;
    if (!dir[0]) {
        fedq_log_setup ((fedq_log_level_t) (FEDQ_LOG_ERROR + 1), "fuzz");
        snprintf (dir, sizeof s_dir, "/tmp/fedq-fuzz-store-XXXXXX");
        if (!mkdtemp (dir))
            abort ();
        atexit (s_cleanup);
        char log_dir[128];
        snprintf (log_dir, sizeof log_dir, "%s/log", dir);
        mkdir (log_dir, 0700);
    }
    if (size < 1 || size > (1 << 20))
        return 0;
    uint8_t mode = data[0];
    data++, size--;
    uint8_t *bytes = malloc (size ? size : 1);
    memcpy (bytes, data, size);
    nftw (dir, s_rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    char log_dir[128];
    snprintf (log_dir, sizeof log_dir, "%s/log", dir);
    mkdir (log_dir, 0700);
    if ((mode & 2) && size > 1) {
        size_t split = ((size_t) bytes[0] * 8) % size;
        split &= ~(size_t) 7;
        if (mode & 1) {
            s_fix_crcs (bytes + 1, split > 1 ? split - 1 : 0);
            s_fix_crcs (bytes + split, size - split);
        }
        s_write (dir, 1, bytes + 1, split > 1 ? split - 1 : 0);
        s_write (dir, 2, bytes + split, size - split);
    }
    else {
        if (mode & 1)
            s_fix_crcs (bytes, size);
        s_write (dir, 1, bytes, size);
    }
    free (bytes);

    store_opts_t opts = {dir, STORE_FSYNC_NEVER, 65536};
    seen_t seen = {0};
    store_visitor_t visitor = {&seen, s_on_msg, s_on_settle};
    store_t *store = NULL;
    fedq_rc_t rc = store_open (&opts, &visitor, NULL, &store);
    if (rc == FEDQ_ECORRUPT)
        return 0;
    if (rc != FEDQ_OK)
        abort ();
    //  Everything replayed reads back.
    for (size_t i = 0; i < seen.n; i++) {
        store_msg_t msg;
        if (store_read (store, seen.pos[i], &msg) != FEDQ_OK)
            abort ();
    }
    store_marks_each (store, s_on_mark, NULL);
    //  The store goes on working on top of whatever it recovered.
    uint64_t qid = 1;
    uint8_t body[64] = {1, 2, 3};
    store_mark_t mark = {fedq_str_of ("o/fuzz"), 1};
    store_settle_t settle = {seen.n ? seen.qid[0] : 0, seen.n ? seen.pos[0] : 0};
    store_msg_t msg = {.origin = fedq_str_of ("fuzz"), .seq = 1,
                       .nqueues = 1, .qids = &qid, .nmarks = 1,
                       .marks = &mark, .nsettles = seen.n ? 1 : 0,
                       .settles = &settle, .body = body,
                       .body_len = sizeof body};
    store_pos_t pos;
    if (store_append_msg (store, &msg, &pos) == FEDQ_OK
        && store_commit (store) == FEDQ_OK) {
        store_msg_t back;
        if (store_read (store, pos, &back) != FEDQ_OK)
            abort ();
    }
    uint32_t segs[4];
    size_t n = store_compact_candidates (store, 1.0, segs, 4);
    for (size_t i = 0; i < n && seen.n; i++)
        if (STORE_POS_SEG (seen.pos[0]) == segs[i])
            store_relocate (store, seen.qid[0], seen.pos[0], &pos);
    store_commit (store);
    store_maintain (store);
    store_destroy (&store);
    if (store_open (&opts, NULL, NULL, &store) != FEDQ_OK)
        abort ();
    store_destroy (&store);
    return 0;
}
