//  tests/bench/bench_shovel.c — the measuring half of `scripts/bench
//  shovel` (scripts/bench.d/shovel drives the nodes). A benchmark, not a
//  test: it prints figures, it asserts nothing.
//
//  usage:
//    bench_shovel waitcount ENDPOINT QUEUE N TIMEOUT_S
//        Print "ready" once it has read the depth, then poll QUEUE's
//        depth (a passive declare, one round trip) every
//        0.5 ms until it reaches N. Prints the rate between the first
//        observed increase and the N-th message, and the time from the
//        start of polling (the moment the link was started) to the N-th.
//    bench_shovel latency PUB_ENDPOINT EXCHANGE KEY SUB_ENDPOINT QUEUE
//                         RATE SECONDS SIZE
//        A consumer on SUB_ENDPOINT/QUEUE (its own thread, prefetch 1000,
//        acks every 100) and a publisher paced at RATE msg/s for SECONDS
//        to PUB_ENDPOINT (publisher confirms, window 1000). Each body
//        starts with its send time (CLOCK_REALTIME ns); latency = receive
//        time - send time: the publish into the source node, the shovel
//        hop and the delivery from the destination. Prints percentiles.
//
//  FEDQ_BENCH_LATDUMP=FILE writes each latency (ms, arrival order) there.
//
//  Output: one line of key=value pairs, like the RabbitMQ anchor's
//  amqpbench, so that the driver reads both the same way.
#define _GNU_SOURCE
#include "fedq_client.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t
s_real_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static double
s_mono_s (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static fedq_client_t *
s_connect (const char *endpoint, uint32_t window)
{
    fedq_client_opts_t opts = {.window = window, .timeout_ms = 10000};
    fedq_client_t *c = fedq_client_new (endpoint, &opts);
    if (!c) {
        fprintf (stderr, "bench_shovel: cannot open a session with %s: %s\n",
                 endpoint, fedq_client_last_error (NULL));
        exit (1);
    }
    return c;
}

//  ---------------------------------------------------------------------
//  waitcount

static int
s_waitcount (const char *endpoint, const char *queue, uint64_t n,
             double timeout_s)
{
    fedq_client_t *c = s_connect (endpoint, 0);
    uint64_t count = 0, start_count = 0;
    if (fedq_client_declare_queue (c, queue, NULL, true, &start_count)) {
        fprintf (stderr, "bench_shovel: queue %s: %s\n", queue,
                 fedq_client_last_error (c));
        return 1;
    }
    printf ("ready start_count=%" PRIu64 "\n", start_count);
    fflush (stdout);
    double t0 = s_mono_s (), first = 0, last = 0;
    uint64_t first_count = start_count, polls = 0;
    struct timespec pause = {0, 500000};
    while (true) {
        if (fedq_client_declare_queue (c, queue, NULL, true, &count)) {
            fprintf (stderr, "bench_shovel: queue %s: %s\n", queue,
                     fedq_client_last_error (c));
            return 1;
        }
        polls++;
        double now = s_mono_s ();
        if (!first && count > start_count) {
            first = now;
            first_count = count;
        }
        if (count >= n) {
            last = now;
            break;
        }
        if (now - t0 > timeout_s) {
            fprintf (stderr, "bench_shovel: %s has %" PRIu64 " of %" PRIu64
                             " after %.0f s\n", queue, count, n, timeout_s);
            printf ("ok=0 count=%" PRIu64 "\n", count);
            return 1;
        }
        nanosleep (&pause, NULL);
    }
    //  From the first arrival seen to the N-th: messages moved in between.
    double span = last - first;
    double rate = span > 0 ? (double) (n - first_count) / span : 0;
    printf ("ok=1 n=%" PRIu64 " msgs_per_s=%.0f first_s=%.4f last_s=%.4f "
            "total_s=%.4f polls=%" PRIu64 "\n",
            n, rate, first - t0, last - t0, last - t0, polls);
    fedq_client_destroy (&c);
    return 0;
}

//  ---------------------------------------------------------------------
//  latency

typedef struct {
    const char *endpoint;
    const char *queue;
    uint64_t n;
    double timeout_s;
    double *lat_ms;         //  one per message received
    uint64_t received;
    volatile int ready;     //  consuming
    int failed;
} s_consumer_t;

static void *
s_consumer_run (void *arg)
{
    s_consumer_t *self = arg;
    fedq_client_t *c = s_connect (self->endpoint, 0);
    if (fedq_client_consume (c, self->queue, "bench", 1000, false)) {
        fprintf (stderr, "bench_shovel: consume %s: %s\n", self->queue,
                 fedq_client_last_error (c));
        self->failed = 1;
        self->ready = 1;
        return NULL;
    }
    self->ready = 1;
    fedq_delivery_t d;
    memset (&d, 0, sizeof d);
    double deadline = s_mono_s () + self->timeout_s;
    uint64_t unacked = 0;
    while (self->received < self->n && s_mono_s () < deadline) {
        fedq_rc_t rc = fedq_client_recv (c, &d, 100);
        if (rc == FEDQ_ETIMEOUT || rc == FEDQ_EAGAIN)
            continue;
        if (rc) {
            fprintf (stderr, "bench_shovel: recv: %s\n",
                     fedq_client_last_error (c));
            self->failed = 1;
            break;
        }
        int64_t now = s_real_ns ();
        int64_t sent = 0;
        if (d.body_size >= sizeof sent)
            memcpy (&sent, d.body, sizeof sent);
        self->lat_ms[self->received++] = (double) (now - sent) / 1e6;
        if (++unacked >= 100) {
            fedq_client_ack (c, d.dtag, true);
            unacked = 0;
        }
    }
    if (unacked)
        fedq_client_ack (c, d.dtag, true);
    fedq_delivery_release (&d);
    fedq_client_destroy (&c);
    return NULL;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

static int
s_latency (const char *pub_ep, const char *exchange, const char *key,
           const char *sub_ep, const char *queue, double rate,
           double seconds, size_t size)
{
    uint64_t n = (uint64_t) (rate * seconds);
    if (size < 16)
        size = 16;
    s_consumer_t cons = {.endpoint = sub_ep, .queue = queue, .n = n,
                         .timeout_s = seconds + 60,
                         .lat_ms = calloc (n ? n : 1, sizeof (double))};
    pthread_t thread;
    pthread_create (&thread, NULL, s_consumer_run, &cons);
    while (!cons.ready) {
        struct timespec pause = {0, 1000000};
        nanosleep (&pause, NULL);
    }
    fedq_client_t *pub = s_connect (pub_ep, 1000);
    uint8_t *body = malloc (size);
    memset (body, 'x', size);
    fedq_message_t m = {.exchange = exchange, .routing_key = key};
    int64_t interval_ns = (int64_t) (1e9 / rate);
    struct timespec next;
    clock_gettime (CLOCK_MONOTONIC, &next);
    double t0 = s_mono_s ();
    int failed = 0;
    for (uint64_t i = 0; i < n && !cons.failed; i++) {
        clock_nanosleep (CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        int64_t now = s_real_ns ();
        memcpy (body, &now, sizeof now);
        memcpy (body + 8, &i, sizeof i);
        if (fedq_client_publish (pub, &m, body, size) < 0) {
            fprintf (stderr, "bench_shovel: publish: %s\n",
                     fedq_client_last_error (pub));
            failed = 1;
            break;
        }
        fedq_client_poll (pub, 0);      //  take the confirms in
        next.tv_nsec += interval_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
    }
    double t_pub = s_mono_s () - t0;
    if (fedq_client_wait_confirms (pub, 30000))
        failed = 1;
    fedq_publish_stats_t ps;
    fedq_client_publish_stats (pub, &ps);
    pthread_join (thread, NULL);
    double t_all = s_mono_s () - t0;
    fedq_client_destroy (&pub);
    free (body);
    uint64_t got = cons.received;
    //  FEDQ_BENCH_LATDUMP=FILE: every latency in arrival order, to see
    //  when the slow ones happened.
    const char *dump = getenv ("FEDQ_BENCH_LATDUMP");
    FILE *out = dump ? fopen (dump, "w") : NULL;
    for (uint64_t i = 0; out && i < got; i++)
        fprintf (out, "%.3f\n", cons.lat_ms[i]);
    if (out)
        fclose (out);
    if (got == 0) {
        printf ("ok=0 n=%" PRIu64 " received=0\n", n);
        return 1;
    }
    qsort (cons.lat_ms, got, sizeof (double), s_cmp);
    double sum = 0;
    for (uint64_t i = 0; i < got; i++)
        sum += cons.lat_ms[i];
    printf ("ok=%d n=%" PRIu64 " received=%" PRIu64 " confirmed=%" PRIu64
            " msgs_per_s=%.0f lat_p50_ms=%.3f lat_p90_ms=%.3f "
            "lat_p99_ms=%.3f lat_p999_ms=%.3f lat_max_ms=%.3f "
            "lat_mean_ms=%.3f publish_s=%.2f total_s=%.2f\n",
            !failed && !cons.failed && got == n, n, got, ps.confirmed,
            (double) got / t_all, cons.lat_ms[got / 2],
            cons.lat_ms[(uint64_t) ((double) got * 0.90)],
            cons.lat_ms[(uint64_t) ((double) got * 0.99)],
            cons.lat_ms[(uint64_t) ((double) got * 0.999)],
            cons.lat_ms[got - 1], sum / (double) got, t_pub, t_all);
    free (cons.lat_ms);
    return failed || cons.failed || got != n;
}

int
main (int argc, char **argv)
{
    if (argc == 6 && strcmp (argv[1], "waitcount") == 0)
        return s_waitcount (argv[2], argv[3], strtoull (argv[4], NULL, 10),
                            atof (argv[5]));
    if (argc == 10 && strcmp (argv[1], "latency") == 0)
        return s_latency (argv[2], argv[3], argv[4], argv[5], argv[6],
                          atof (argv[7]), atof (argv[8]),
                          (size_t) strtoull (argv[9], NULL, 10));
    fprintf (stderr,
             "usage: bench_shovel waitcount ENDPOINT QUEUE N TIMEOUT_S\n"
             "       bench_shovel latency PUB_ENDPOINT EXCHANGE KEY "
             "SUB_ENDPOINT QUEUE RATE SECONDS SIZE\n");
    return 2;
}
