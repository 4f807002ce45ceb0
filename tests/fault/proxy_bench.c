//  tests/fault/proxy_bench.c — how fast bytes cross a TCP path: a sink
//  that listens and discards, and senders that connect (directly to the
//  sink, or through fault_proxy) and write. Prints one line:
//      proxy_bench: conns=K bytes=N seconds=S gbytes_per_s=X
//
//  usage: proxy_bench --sink HOST:PORT --connect HOST:PORT
//                     [--bytes N] [--conns K]
//  --sink is where the sink listens; --connect where the senders connect
//  (the same address to measure loopback itself, or a proxy in front of
//  the sink).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_BUF (1024 * 1024)
#define BENCH_MAX_CONNS 64

typedef struct {
    struct sockaddr_in addr;
    uint64_t bytes;
    int rc;
} sender_t;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
s_parse (const char *text, struct sockaddr_in *addr)
{
    const char *colon = strrchr (text, ':');
    if (!colon || colon - text >= 64)
        return -1;
    char host[64];
    memcpy (host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    memset (addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t)atoi (colon + 1));
    return inet_pton (AF_INET, host, &addr->sin_addr) == 1 ? 0 : -1;
}

static void *
s_send (void *arg)
{
    sender_t *s = arg;
    char *buf = malloc (BENCH_BUF);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    s->rc = -1;
    if (!buf || fd < 0 ||
        connect (fd, (struct sockaddr *)&s->addr, sizeof s->addr) != 0) {
        perror ("proxy_bench: connect");
        goto cleanup;
    }
    memset (buf, 'x', BENCH_BUF);
    uint64_t left = s->bytes;
    while (left) {
        size_t n = left < BENCH_BUF ? (size_t)left : BENCH_BUF;
        ssize_t w = send (fd, buf, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            perror ("proxy_bench: send");
            goto cleanup;
        }
        left -= (uint64_t)w;
    }
    shutdown (fd, SHUT_WR);
    //  Wait for the far end to close: every byte went through.
    char drain[64];
    while (recv (fd, drain, sizeof drain, 0) > 0)
        ;
    s->rc = 0;
cleanup:
    if (fd >= 0)
        close (fd);
    free (buf);
    return NULL;
}

int
main (int argc, char **argv)
{
    const char *sink_s = NULL, *connect_s = NULL;
    uint64_t bytes = 4ull << 30;
    int conns = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp (argv[i], "--sink") == 0)
            sink_s = argv[i + 1];
        else if (strcmp (argv[i], "--connect") == 0)
            connect_s = argv[i + 1];
        else if (strcmp (argv[i], "--bytes") == 0)
            bytes = strtoull (argv[i + 1], NULL, 10);
        else if (strcmp (argv[i], "--conns") == 0)
            conns = atoi (argv[i + 1]);
    }
    struct sockaddr_in sink_addr, connect_addr;
    if (!sink_s || !connect_s || s_parse (sink_s, &sink_addr) ||
        s_parse (connect_s, &connect_addr) || conns < 1 ||
        conns > BENCH_MAX_CONNS || bytes == 0) {
        fprintf (stderr,
                 "usage: proxy_bench --sink HOST:PORT --connect "
                 "HOST:PORT [--bytes N] [--conns 1..%d]\n",
                 BENCH_MAX_CONNS);
        return 2;
    }
    int lfd = socket (AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt (lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (lfd, (struct sockaddr *)&sink_addr, sizeof sink_addr) != 0 ||
        listen (lfd, 128) != 0) {
        perror ("proxy_bench: sink listen");
        return 1;
    }
    sender_t senders[BENCH_MAX_CONNS];
    pthread_t threads[BENCH_MAX_CONNS];
    double t0 = s_now ();
    for (int i = 0; i < conns; i++) {
        senders[i].addr = connect_addr;
        senders[i].bytes = bytes / (uint64_t)conns;
        pthread_create (&threads[i], NULL, s_send, &senders[i]);
    }
    struct pollfd pfd[BENCH_MAX_CONNS];
    for (int i = 0; i < conns; i++) {
        pfd[i].fd = accept (lfd, NULL, NULL);
        pfd[i].events = POLLIN;
    }
    char *buf = malloc (BENCH_BUF);
    uint64_t got = 0;
    int open_conns = conns;
    while (open_conns > 0 && buf) {
        if (poll (pfd, (nfds_t)conns, 30000) <= 0)
            break;
        for (int i = 0; i < conns; i++) {
            if (pfd[i].fd < 0 || !pfd[i].revents)
                continue;
            ssize_t n = recv (pfd[i].fd, buf, BENCH_BUF, 0);
            if (n > 0)
                got += (uint64_t)n;
            else {
                close (pfd[i].fd);
                pfd[i].fd = -1;
                open_conns--;
            }
        }
    }
    double took = s_now () - t0;
    int rc = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join (threads[i], NULL);
        rc |= senders[i].rc;
    }
    free (buf);
    close (lfd);
    uint64_t want = bytes / (uint64_t)conns * (uint64_t)conns;
    printf ("proxy_bench: conns=%d bytes=%llu seconds=%.3f "
            "gbytes_per_s=%.3f\n",
            conns, (unsigned long long)got, took, (double)got / took / 1e9);
    if (rc || got != want) {
        fprintf (stderr, "proxy_bench: received %llu of %llu bytes\n",
                 (unsigned long long)got, (unsigned long long)want);
        return 1;
    }
    return 0;
}
