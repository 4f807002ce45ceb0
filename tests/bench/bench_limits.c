//  tests/bench/bench_limits.c — the machine's ceilings, measured in the
//  same run as the products (`scripts/bench limits`, and the shared step of
//  `scripts/bench all`). A benchmark, not a test: it prints figures. After
//  the project's anchors (../shared/anchors/limits), with ephemeral ports
//  so that runs never collide with nodes or other benchmarks.
//
//  usage:
//    bench_limits zmq N SIZE
//        Raw ZeroMQ PUSH -> PULL over tcp loopback, one sender thread, no
//        persistence, no acknowledgements: the ceiling of any link built
//        on ZeroMQ. Rate from the first message received to the N-th.
//    bench_limits fsync DIR N SIZE
//        N times: append SIZE bytes to a file in DIR, then fdatasync; the
//        rate and the latency of each fdatasync (p50, p99, max). DIR is
//        the disk the nodes keep their data on: a durable confirmed hop
//        waits for (at least) one such sync at each end, so two in series
//        bound the end-to-end latency of a durable link from below.
//    bench_limits link DIR N SIZE BATCH WINDOW
//        Durable confirmed link with nothing else in the way: two
//        processes; the sender streams N messages of SIZE bytes in batches
//        of BATCH over DEALER -> ROUTER with WINDOW batches in flight; the
//        receiver appends each batch to a file in DIR, fdatasyncs once per
//        batch (group commit) and returns a cumulative confirm. Confirmed
//        msg/s, first send to last confirm.
//
//  Output: one line of key=value pairs, like the other bench tools.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define BENCH_LIMITS_HWM 100000

static double
s_mono_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

//  Bind sock to an ephemeral loopback port; endpoint gets its address.
static int
s_bind_ephemeral (void *sock, char *endpoint, size_t size)
{
    if (zmq_bind (sock, "tcp://127.0.0.1:*")) {
        fprintf (stderr, "bench_limits: bind: %s\n", zmq_strerror (errno));
        return -1;
    }
    if (zmq_getsockopt (sock, ZMQ_LAST_ENDPOINT, endpoint, &size)) {
        fprintf (stderr, "bench_limits: endpoint: %s\n", zmq_strerror (errno));
        return -1;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  zmq: raw PUSH/PULL

typedef struct {
    void *ctx;            //  shared context (sockets are per thread)
    const char *endpoint; //  the PULL socket's address
    uint64_t n;           //  messages to send
    size_t size;          //  bytes each
    int failed;           //  a send failed
} s_pusher_t;

static void *
s_pusher_run (void *arg)
{
    s_pusher_t *self = arg;
    void *push = zmq_socket (self->ctx, ZMQ_PUSH);
    int hwm = BENCH_LIMITS_HWM;
    zmq_setsockopt (push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    char *body = calloc (1, self->size ? self->size : 1);
    if (zmq_connect (push, self->endpoint))
        self->failed = 1;
    for (uint64_t i = 0; i < self->n && !self->failed; i++)
        if (zmq_send (push, body, self->size, 0) < 0)
            self->failed = 1;
    free (body);
    zmq_close (push);
    return NULL;
}

static int
s_zmq (uint64_t n, size_t size)
{
    if (n < 2) {
        fprintf (stderr, "bench_limits zmq: N must be at least 2\n");
        return 2;
    }
    void *ctx = zmq_ctx_new ();
    void *pull = zmq_socket (ctx, ZMQ_PULL);
    int hwm = BENCH_LIMITS_HWM;
    zmq_setsockopt (pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    char endpoint[256];
    if (s_bind_ephemeral (pull, endpoint, sizeof endpoint))
        return 1;
    s_pusher_t pusher = {
        .ctx = ctx, .endpoint = endpoint, .n = n, .size = size};
    pthread_t thread;
    pthread_create (&thread, NULL, s_pusher_run, &pusher);
    char *buf = malloc (size + 1);
    double first = 0;
    uint64_t got = 0;
    int rc = 0;
    while (got < n) {
        if (zmq_recv (pull, buf, size + 1, 0) < 0) {
            fprintf (stderr, "bench_limits zmq: recv: %s\n",
                     zmq_strerror (errno));
            rc = 1;
            break;
        }
        if (got++ == 0)
            first = s_mono_s ();
    }
    double span = s_mono_s () - first;
    pthread_join (thread, NULL);
    if (!rc && !pusher.failed && span > 0)
        printf ("ok=1 what=zmq n=%" PRIu64 " size=%zu msgs_per_s=%.0f "
                "MB_per_s=%.1f secs=%.3f\n",
                n, size, (double)(n - 1) / span,
                (double)(n - 1) * (double)size / span / 1e6, span);
    else
        printf ("ok=0 what=zmq n=%" PRIu64 " received=%" PRIu64 "\n", n, got);
    free (buf);
    zmq_close (pull);
    zmq_ctx_term (ctx);
    return rc || pusher.failed;
}

//  ---------------------------------------------------------------------
//  fsync: append + fdatasync cycles, latency of each sync

static char *
s_probe_path (const char *dir, const char *what)
{
    char *path = NULL;
    if (asprintf (&path, "%s/bench-limits-%s-%ld.dat", dir, what,
                  (long)getpid ()) < 0)
        return NULL;
    return path;
}

static int
s_fsync (const char *dir, int n, size_t size)
{
    if (n < 1) {
        fprintf (stderr, "bench_limits fsync: N must be positive\n");
        return 2;
    }
    char *path = s_probe_path (dir, "fsync");
    int fd =
        path ? open (path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644) : -1;
    if (fd < 0) {
        fprintf (stderr,
                 "bench_limits fsync: cannot create a file in %s: "
                 "%s\n",
                 dir, strerror (errno));
        free (path);
        return 1;
    }
    char *buf = calloc (1, size ? size : 1);
    double *sync_ms = calloc ((size_t)n, sizeof (double));
    int rc = 0;
    double t0 = s_mono_s ();
    for (int i = 0; i < n && !rc; i++) {
        if (write (fd, buf, size) != (ssize_t)size) {
            fprintf (stderr, "bench_limits fsync: write %s: %s\n", path,
                     strerror (errno));
            rc = 1;
            break;
        }
        double a = s_mono_s ();
        if (fdatasync (fd)) {
            fprintf (stderr, "bench_limits fsync: fdatasync %s: %s\n", path,
                     strerror (errno));
            rc = 1;
        }
        sync_ms[i] = (s_mono_s () - a) * 1e3;
    }
    double secs = s_mono_s () - t0;
    close (fd);
    unlink (path);
    if (!rc) {
        qsort (sync_ms, (size_t)n, sizeof (double), s_cmp_double);
        printf ("ok=1 what=fsync n=%d size=%zu syncs_per_s=%.0f "
                "sync_p50_ms=%.3f sync_p99_ms=%.3f sync_max_ms=%.3f "
                "secs=%.3f\n",
                n, size, n / secs, sync_ms[n / 2],
                sync_ms[(int)((double)n * 0.99)], sync_ms[n - 1], secs);
    } else
        printf ("ok=0 what=fsync\n");
    free (sync_ms);
    free (buf);
    free (path);
    return rc;
}

//  ---------------------------------------------------------------------
//  link: batches over DEALER -> ROUTER, one fdatasync per batch

//  The receiver (the destination node): own process, own context. Binds,
//  tells the parent its endpoint through fd_out, then logs and confirms.
static int
s_link_receiver (const char *dir, uint64_t n, size_t size, int batch,
                 int fd_out)
{
    void *ctx = zmq_ctx_new ();
    void *router = zmq_socket (ctx, ZMQ_ROUTER);
    char endpoint[256];
    if (s_bind_ephemeral (router, endpoint, sizeof endpoint))
        return 1;
    char *path = s_probe_path (dir, "link");
    int fd = path ? open (path, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    if (fd < 0) {
        fprintf (stderr,
                 "bench_limits link: cannot create a file in %s: "
                 "%s\n",
                 dir, strerror (errno));
        return 1;
    }
    size_t len = strlen (endpoint) + 1;
    if (write (fd_out, endpoint, len) != (ssize_t)len)
        return 1;
    close (fd_out);
    size_t cap = (size_t)batch * (size + 16) + 64;
    char *buf = malloc (cap);
    char id[256];
    uint64_t got = 0;
    int rc = 0;
    while (got < n) {
        int id_size = zmq_recv (router, id, sizeof id, 0);
        int size_got = zmq_recv (router, buf, cap, 0);
        uint64_t count = 0;
        if (id_size < 0 || size_got < 8) {
            rc = 1;
            break;
        }
        memcpy (&count, buf, sizeof count);
        if (write (fd, buf, (size_t)size_got) != size_got || fdatasync (fd)) {
            fprintf (stderr, "bench_limits link: write/sync %s: %s\n", path,
                     strerror (errno));
            rc = 1;
            break;
        }
        got += count;
        zmq_send (router, id, (size_t)id_size, ZMQ_SNDMORE);
        zmq_send (router, &got, sizeof got, 0);
    }
    close (fd);
    unlink (path);
    free (path);
    free (buf);
    zmq_close (router);
    zmq_ctx_term (ctx);
    return rc;
}

static int
s_link (const char *dir, uint64_t n, size_t size, int batch, int window)
{
    if (n < 1 || batch < 1 || window < 1) {
        fprintf (stderr, "bench_limits link: N, BATCH and WINDOW must be "
                         "positive\n");
        return 2;
    }
    int pipe_fd[2];
    if (pipe (pipe_fd))
        return 1;
    //  Fork before any ZeroMQ context exists in this process.
    pid_t pid = fork ();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close (pipe_fd[0]);
        _exit (s_link_receiver (dir, n, size, batch, pipe_fd[1]));
    }
    close (pipe_fd[1]);
    char endpoint[256] = "";
    ssize_t got_ep = read (pipe_fd[0], endpoint, sizeof endpoint - 1);
    close (pipe_fd[0]);
    if (got_ep <= 0) {
        fprintf (stderr, "bench_limits link: the receiver did not start\n");
        waitpid (pid, NULL, 0);
        return 1;
    }
    void *ctx = zmq_ctx_new ();
    void *dealer = zmq_socket (ctx, ZMQ_DEALER);
    zmq_connect (dealer, endpoint);
    size_t per = size + 16;
    char *buf = calloc (1, (size_t)batch * per + 64);
    uint64_t sent = 0, confirmed = 0, batches = 0;
    int inflight = 0, rc = 0;
    double t0 = s_mono_s ();
    while (confirmed < n) {
        while (inflight < window && sent < n) {
            uint64_t count =
                n - sent < (uint64_t)batch ? n - sent : (uint64_t)batch;
            memcpy (buf, &count, sizeof count);
            zmq_send (dealer, buf, 8 + count * per, 0);
            sent += count;
            batches++;
            inflight++;
        }
        uint64_t upto = 0;
        if (zmq_recv (dealer, &upto, sizeof upto, 0) != sizeof upto) {
            rc = 1;
            break;
        }
        confirmed = upto;
        inflight--;
    }
    double secs = s_mono_s () - t0;
    int status = 0;
    waitpid (pid, &status, 0);
    if (!WIFEXITED (status) || WEXITSTATUS (status))
        rc = 1;
    if (!rc)
        printf ("ok=1 what=link n=%" PRIu64 " size=%zu batch=%d window=%d "
                "msgs_per_s=%.0f MB_per_s=%.1f syncs=%" PRIu64 " secs=%.3f\n",
                n, size, batch, window, (double)n / secs,
                (double)n * (double)size / secs / 1e6, batches, secs);
    else
        printf ("ok=0 what=link confirmed=%" PRIu64 "\n", confirmed);
    free (buf);
    zmq_close (dealer);
    zmq_ctx_term (ctx);
    return rc;
}

int
main (int argc, char **argv)
{
    signal (SIGPIPE, SIG_IGN);
    if (argc == 4 && strcmp (argv[1], "zmq") == 0)
        return s_zmq (strtoull (argv[2], NULL, 10),
                      (size_t)strtoull (argv[3], NULL, 10));
    if (argc == 5 && strcmp (argv[1], "fsync") == 0)
        return s_fsync (argv[2], atoi (argv[3]),
                        (size_t)strtoull (argv[4], NULL, 10));
    if (argc == 7 && strcmp (argv[1], "link") == 0)
        return s_link (argv[2], strtoull (argv[3], NULL, 10),
                       (size_t)strtoull (argv[4], NULL, 10), atoi (argv[5]),
                       atoi (argv[6]));
    fprintf (stderr, "usage: bench_limits zmq N SIZE\n"
                     "       bench_limits fsync DIR N SIZE\n"
                     "       bench_limits link DIR N SIZE BATCH WINDOW\n");
    return 2;
}
