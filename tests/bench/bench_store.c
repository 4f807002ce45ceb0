//  tests/bench/bench_store.c — throughput of the durable log and the time
//  it takes to recover it.
//
//  bench_store [-n COUNT] [-s SIZE] [-b BATCH] [-f always|batch|never]
//              [-d DIR] [-r RECOVER_COUNT] [-S RECOVER_SIZE] [-C] [-k]
//
//  Appends COUNT messages of SIZE body bytes, committing every BATCH, and
//  prints msg/s and MB/s with the fsync figures; then writes RECOVER_COUNT
//  messages of RECOVER_SIZE bytes (fsync never) and times store_open over
//  them; with -C (root) the page cache is dropped first, for a cold start.
//  DIR defaults to a fresh directory under /tmp (removed unless -k).
#define _GNU_SOURCE
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static int
s_rm_entry (const char *path, const struct stat *st, int flag,
            struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

static void
s_visit_msg (void *ctx, store_pos_t pos, const store_msg_t *msg)
{
    (void) pos;
    (void) msg;
    (*(uint64_t *) ctx)++;
}

static int
s_fill (const char *dir, store_fsync_t fsync, uint64_t count, uint32_t size,
        uint64_t batch, bool report)
{
    store_opts_t opts = {dir, fsync, 0};
    store_t *store;
    if (store_open (&opts, NULL, NULL, &store) != FEDQ_OK)
        return 1;
    uint8_t *body = malloc (size ? size : 1);
    for (uint32_t i = 0; i < size; i++)
        body[i] = (uint8_t) i;
    uint64_t qid = 1;
    store_mark_t mark = {fedq_str_of ("o/bench"), 0};
    store_msg_t msg = {0};
    msg.origin = fedq_str_of ("bench");
    msg.message_id = fedq_str_of ("");
    msg.nqueues = 1;
    msg.qids = &qid;
    msg.nmarks = 1;
    msg.marks = &mark;
    msg.env = (const uint8_t *) "\x80";
    msg.env_len = 1;
    msg.body = body;
    msg.body_len = size;
    int64_t start = fedq_mono_us ();
    for (uint64_t i = 1; i <= count; i++) {
        msg.seq = mark.value = i;
        msg.published_at = 1700000000000;
        store_pos_t pos;
        if (store_append_msg (store, &msg, &pos) != FEDQ_OK)
            return 1;
        if (i % batch == 0 || i == count)
            if (store_commit (store) != FEDQ_OK)
                return 1;
    }
    double secs = (double) (fedq_mono_us () - start) / 1e6;
    if (report) {
        store_stats_t stats;
        store_stats (store, &stats);
        printf ("append: %" PRIu64 " msgs x %" PRIu32 " B, batch %" PRIu64
                ", fsync %s: %.0f msg/s, %.1f MB/s; %" PRIu64 " fsyncs, "
                "mean %.0f us, max %" PRIu64 " us\n",
                count, size, batch,
                fsync == STORE_FSYNC_ALWAYS  ? "always"
                : fsync == STORE_FSYNC_BATCH ? "batch"
                                             : "never",
                (double) count / secs,
                (double) count * size / secs / 1e6, stats.fsyncs,
                stats.fsyncs ? (double) stats.fsync_us_total
                                   / (double) stats.fsyncs
                             : 0.0,
                stats.fsync_us_max);
    }
    free (body);
    store_destroy (&store);
    return 0;
}

int
main (int argc, char **argv)
{
    uint64_t count = 200000, batch = 256, recover_count = 1000000;
    uint32_t size = 1024, recover_size = 100;
    store_fsync_t fsync = STORE_FSYNC_BATCH;
    const char *dir_arg = NULL;
    bool keep = false, cold = false;
    int opt;
    while ((opt = getopt (argc, argv, "n:s:b:f:d:r:S:Ck")) != -1) {
        switch (opt) {
            case 'n': count = strtoull (optarg, NULL, 10); break;
            case 's': size = (uint32_t) strtoul (optarg, NULL, 10); break;
            case 'b': batch = strtoull (optarg, NULL, 10); break;
            case 'r': recover_count = strtoull (optarg, NULL, 10); break;
            case 'S': recover_size = (uint32_t) strtoul (optarg, NULL, 10); break;
            case 'd': dir_arg = optarg; break;
            case 'k': keep = true; break;
            case 'C': cold = true; break;
            case 'f':
                fsync = strcmp (optarg, "always") == 0  ? STORE_FSYNC_ALWAYS
                        : strcmp (optarg, "never") == 0 ? STORE_FSYNC_NEVER
                                                        : STORE_FSYNC_BATCH;
                break;
            default:
                fprintf (stderr, "usage: bench_store [-n COUNT] [-s SIZE] "
                                 "[-b BATCH] [-f always|batch|never] [-d DIR] "
                                 "[-r RECOVER_COUNT] [-S RECOVER_SIZE] [-C] [-k]\n");
                return 2;
        }
    }
    if (batch == 0)
        batch = 1;
    fedq_log_setup (FEDQ_LOG_WARN, "bench");
    char tmp[] = "/tmp/fedq-bench-store-XXXXXX";
    const char *base = dir_arg ? dir_arg : mkdtemp (tmp);
    if (!base) {
        perror ("mkdtemp");
        return 1;
    }
    char append_dir[4096], recover_dir[4096];
    snprintf (append_dir, sizeof append_dir, "%s/append", base);
    snprintf (recover_dir, sizeof recover_dir, "%s/recover", base);
    int rc = 0;
    if (count)
        rc = s_fill (append_dir, fsync, count, size, batch, true);
    if (rc == 0 && recover_count) {
        rc = s_fill (recover_dir, STORE_FSYNC_NEVER, recover_count,
                     recover_size, 1024, false);
        if (cold) {
            sync ();
            FILE *drop = fopen ("/proc/sys/vm/drop_caches", "w");
            if (!drop || fputs ("3\n", drop) < 0) {
                fprintf (stderr, "bench_store: -C needs root\n");
                cold = false;
            }
            if (drop)
                fclose (drop);
        }
        uint64_t seen = 0;
        store_visitor_t visitor = {&seen, s_visit_msg, NULL};
        store_opts_t opts = {recover_dir, STORE_FSYNC_BATCH, 0};
        store_recovery_t recovery;
        store_t *store = NULL;
        int64_t start = fedq_mono_us ();
        if (rc == 0
            && store_open (&opts, &visitor, &recovery, &store) == FEDQ_OK) {
            double secs = (double) (fedq_mono_us () - start) / 1e6;
            printf ("recover: %" PRIu64 " msgs x %" PRIu32 " B (%" PRIu64
                    " segments, %.1f MB) in %.3f s: %.0f msg/s, %.0f MB/s "
                    "(%s)\n",
                    seen, recover_size, recovery.segments,
                    (double) recovery.bytes / 1e6, secs,
                    (double) seen / secs, (double) recovery.bytes / secs / 1e6,
                    cold ? "cold: page cache dropped" : "log in page cache");
            store_destroy (&store);
        }
        else
            rc = 1;
    }
    if (!keep)
        nftw (base, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
