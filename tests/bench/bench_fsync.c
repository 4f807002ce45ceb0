//  tests/bench/bench_fsync.c — what the disk makes a shovelled message
//  wait for: an fdatasync at the source, then one at the destination.
//  A benchmark, not a test: it prints figures, it asserts nothing.
//
//  usage: bench_fsync [-d DIR] [-n COUNT] [-r RATE] [-s SIZE]
//
//  RATE times a second (default 2,000, the latency workload of
//  `scripts/bench shovel`), COUNT times (default 4,000): append SIZE bytes
//  (default 1,100, a 1 KiB message's record) to a first file and
//  fdatasync it, then the same on a second file, as the two nodes' logs
//  do for one message. DIR (default /tmp) is where the node data goes, so
//  that the figures are the ones of that disk. Prints one line of
//  key=value pairs (ms): every single sync, and the pair in series.
//  docs/storage.md, "Commits in the event loop, and latency".
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double
s_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  Quantile q of n sorted values.
static double
s_at (const double *sorted, size_t n, double q)
{
    size_t i = (size_t) ((double) n * q);
    return sorted[i < n ? i : n - 1];
}

//  Append size bytes at *off and fdatasync; the time taken in ms, or -1
//  with errno set.
static double
s_append_sync (int fd, const char *buf, size_t size, off_t *off)
{
    double start = s_mono_ms ();
    if (pwrite (fd, buf, size, *off) != (ssize_t) size || fdatasync (fd))
        return -1;
    *off += (off_t) size;
    return s_mono_ms () - start;
}

int
main (int argc, char **argv)
{
    const char *dir = "/tmp";
    size_t count = 4000, size = 1100;
    double rate = 2000;
    int opt;
    while ((opt = getopt (argc, argv, "d:n:r:s:")) != -1) {
        switch (opt) {
            case 'd': dir = optarg; break;
            case 'n': count = strtoull (optarg, NULL, 10); break;
            case 'r': rate = atof (optarg); break;
            case 's': size = strtoull (optarg, NULL, 10); break;
            default:
                fprintf (stderr, "usage: bench_fsync [-d DIR] [-n COUNT] "
                                 "[-r RATE] [-s SIZE]\n");
                return 2;
        }
    }
    if (count == 0 || size == 0 || rate <= 0) {
        fprintf (stderr, "bench_fsync: COUNT, SIZE and RATE must be "
                         "positive\n");
        return 2;
    }
    char path[2][4096];
    int fd[2] = {-1, -1};
    off_t off[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        snprintf (path[i], sizeof path[i], "%s/bench_fsync.%d.%d", dir,
                  (int) getpid (), i);
        fd[i] = open (path[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd[i] < 0) {
            fprintf (stderr, "bench_fsync: cannot create %s: %s\n", path[i],
                     strerror (errno));
            return 1;
        }
    }
    char *buf = malloc (size);
    double *single = malloc (2 * count * sizeof *single);
    double *pair = malloc (count * sizeof *pair);
    if (!buf || !single || !pair) {
        fprintf (stderr, "bench_fsync: out of memory\n");
        return 1;
    }
    memset (buf, 'x', size);
    double interval = 1000.0 / rate, next = s_mono_ms ();
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        double wait = next - s_mono_ms ();
        if (wait > 0) {
            struct timespec pause = {0, (long) (wait * 1e6)};
            nanosleep (&pause, NULL);
        }
        //  Behind (a sync longer than the interval): no burst to catch up.
        next = next + interval > s_mono_ms () ? next + interval
                                              : s_mono_ms () + interval;
        double first = s_append_sync (fd[0], buf, size, &off[0]);
        double second = first < 0 ? -1
                                   : s_append_sync (fd[1], buf, size, &off[1]);
        if (second < 0) {
            fprintf (stderr, "bench_fsync: write or fdatasync in %s: %s\n",
                     dir, strerror (errno));
            rc = 1;
            break;
        }
        single[2 * i] = first;
        single[2 * i + 1] = second;
        pair[i] = first + second;
    }
    for (int i = 0; i < 2; i++) {
        close (fd[i]);
        unlink (path[i]);
    }
    if (rc == 0) {
        qsort (single, 2 * count, sizeof *single, s_cmp);
        qsort (pair, count, sizeof *pair, s_cmp);
        size_t over = 0;
        for (size_t i = 0; i < count; i++)
            over += pair[i] > 1.0;
        printf ("ok=1 n=%zu size=%zu sync_p50_ms=%.3f sync_p90_ms=%.3f "
                "sync_p99_ms=%.3f sync_max_ms=%.3f pair_p50_ms=%.3f "
                "pair_p99_ms=%.3f pair_max_ms=%.3f pair_over_1ms_pct=%.2f\n",
                count, size, s_at (single, 2 * count, 0.5),
                s_at (single, 2 * count, 0.9), s_at (single, 2 * count, 0.99),
                single[2 * count - 1], s_at (pair, count, 0.5),
                s_at (pair, count, 0.99), pair[count - 1],
                100.0 * (double) over / (double) count);
    }
    free (buf);
    free (single);
    free (pair);
    return rc;
}
