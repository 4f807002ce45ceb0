//  tests/fault/fault_proxy.c — the fault proxy's main: options, sockets,
//  the event loop. See fault_proxy.h for the design.
//
//  usage: fault_proxy --listen HOST:PORT --target HOST:PORT
//                     [--control HOST:PORT] [--buffer BYTES]
//                     [--ports-file FILE] [--verbose]
//         fault_proxy --send HOST:PORT COMMAND [ARGS...]
//
//  PORT 0 picks a free port; the ports in use are printed on stdout
//  ("fault_proxy: listen 127.0.0.1:P target ... control 127.0.0.1:C") and
//  written to --ports-file as "LISTEN_PORT CONTROL_PORT".
#define _GNU_SOURCE
#include "fault_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t s_signalled = 0;

static void
s_on_signal (int sig)
{
    s_signalled = sig;
}

int64_t
fp_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
fp_log (fp_proxy_t *self, const char *fmt, ...)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r (&ts.tv_sec, &tm);
    char when[32];
    strftime (when, sizeof when, "%H:%M:%S", &tm);
    fprintf (stderr, "%s.%03ld fault_proxy[%u]: ", when, ts.tv_nsec / 1000000L,
             ntohs (self->listen_addr.sin_port));
    va_list ap;
    va_start (ap, fmt);
    vfprintf (stderr, fmt, ap);
    va_end (ap);
    fputc ('\n', stderr);
}

//  "HOST:PORT" (IPv4 dotted quad or "localhost") into addr; 0 or -1.
int
fp_parse_addr (const char *text, struct sockaddr_in *addr)
{
    const char *colon = strrchr (text, ':');
    if (!colon || colon == text || colon - text >= 64)
        return -1;
    char host[64];
    memcpy (host, text, (size_t)(colon - text));
    host[colon - text] = 0;
    char *end = NULL;
    errno = 0;
    long port = strtol (colon + 1, &end, 10);
    if (errno || !end || *end || port < 0 || port > 65535)
        return -1;
    memset (addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t)port);
    if (strcmp (host, "localhost") == 0)
        strcpy (host, "127.0.0.1");
    if (inet_pton (AF_INET, host, &addr->sin_addr) != 1)
        return -1;
    return 0;
}

//  A non-blocking listening socket on addr (port 0: the kernel picks;
//  addr is updated).
static int
s_listen_on (struct sockaddr_in *addr, const char *what)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf (stderr, "fault_proxy: socket: %s\n", strerror (errno));
        return -1;
    }
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (fd, (struct sockaddr *)addr, sizeof *addr) < 0 ||
        listen (fd, 1024) < 0) {
        char text[INET_ADDRSTRLEN];
        inet_ntop (AF_INET, &addr->sin_addr, text, sizeof text);
        fprintf (stderr, "fault_proxy: cannot listen on %s:%u for %s: %s\n",
                 text, ntohs (addr->sin_port), what, strerror (errno));
        close (fd);
        return -1;
    }
    socklen_t len = sizeof *addr;
    getsockname (fd, (struct sockaddr *)addr, &len);
    return fd;
}

static int
s_write_ports_file (const char *path, fp_proxy_t *self)
{
    char tmp[4096];
    snprintf (tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen (tmp, "w");
    if (!f)
        return -1;
    fprintf (f, "%u %u\n", ntohs (self->listen_addr.sin_port),
             ntohs (self->control_addr.sin_port));
    if (fclose (f) != 0)
        return -1;
    return rename (tmp, path);
}

static void
s_usage (FILE *out)
{
    fputs ("usage: fault_proxy --listen HOST:PORT --target HOST:PORT\n"
           "                   [--control HOST:PORT] [--buffer BYTES]\n"
           "                   [--ports-file FILE] [--verbose]\n"
           "       fault_proxy --send HOST:PORT COMMAND [ARGS...]\n"
           "Control commands (one line each, answered \"ok ...\" or "
           "\"err ...\"):\n"
           "  delay up|down|both MS [JITTER_MS]   hold bytes MS ms\n"
           "  bandwidth up|down|both BYTES_PER_S  0 = unlimited\n"
           "  blackhole up|down|both|off          stall, keep connections\n"
           "  reject on|off                       RST new connections\n"
           "  reset                               RST every connection now\n"
           "  heal                                clear every fault\n"
           "  status                              counters and faults\n"
           "  quit                                exit\n",
           out);
}

static int
s_setup (fp_proxy_t *self)
{
    self->epfd = epoll_create1 (EPOLL_CLOEXEC);
    if (self->epfd < 0)
        return -1;
    self->listen_fd = s_listen_on (&self->listen_addr, "connections");
    if (self->listen_fd < 0)
        return -1;
    self->control_fd = s_listen_on (&self->control_addr, "control");
    if (self->control_fd < 0)
        return -1;
    self->listen_tag = (fp_tag_t){FP_TAG_LISTEN, 0, NULL};
    self->control_tag = (fp_tag_t){FP_TAG_CONTROL_LISTEN, 0, NULL};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &self->listen_tag};
    if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, self->listen_fd, &ev) < 0)
        return -1;
    ev.data.ptr = &self->control_tag;
    if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, self->control_fd, &ev) < 0)
        return -1;
    return 0;
}

static void
s_loop (fp_proxy_t *self)
{
    struct epoll_event events[FP_MAX_EVENTS];
    sigset_t none;
    sigemptyset (&none);
    while (!self->stop && !s_signalled) {
        int timeout = fp_conn_timeout_ms (self);
        int n = epoll_pwait (self->epfd, events, FP_MAX_EVENTS, timeout, &none);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fp_log (self, "epoll_wait: %s", strerror (errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            fp_tag_t *tag = events[i].data.ptr;
            switch (tag->kind) {
                case FP_TAG_LISTEN:
                    fp_conn_accept (self);
                    break;
                case FP_TAG_CONTROL_LISTEN:
                    fp_ctl_accept (self);
                    break;
                case FP_TAG_CONTROL:
                    fp_ctl_event (self, tag->owner);
                    break;
                case FP_TAG_CONN:
                    fp_conn_event (self, tag->owner, tag->side,
                                   events[i].events);
                    break;
            }
        }
        //  Chunks that came due and buckets that refilled.
        fp_conn_pump_all (self);
        fp_conn_reap (self);
        fp_ctl_reap (self);
    }
}

int
main (int argc, char **argv)
{
    if (argc >= 2 && strcmp (argv[1], "--send") == 0) {
        if (argc < 4) {
            s_usage (stderr);
            return 2;
        }
        return fp_ctl_send (argv[2], argc - 3, argv + 3);
    }
    fp_proxy_t self;
    memset (&self, 0, sizeof self);
    self.buffer = FP_DEFAULT_BUFFER;
    self.rng = (uint64_t)fp_now_us () | 1;
    const char *listen_s = NULL, *target_s = NULL;
    const char *control_s = "127.0.0.1:0", *ports_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp (opt, "-h") == 0 || strcmp (opt, "--help") == 0) {
            s_usage (stdout);
            return 0;
        }
        if (strcmp (opt, "--verbose") == 0) {
            self.verbose = true;
            continue;
        }
        if (!val) {
            fprintf (stderr, "fault_proxy: %s needs a value\n", opt);
            return 2;
        }
        i++;
        if (strcmp (opt, "--listen") == 0)
            listen_s = val;
        else if (strcmp (opt, "--target") == 0)
            target_s = val;
        else if (strcmp (opt, "--control") == 0)
            control_s = val;
        else if (strcmp (opt, "--ports-file") == 0)
            ports_file = val;
        else if (strcmp (opt, "--buffer") == 0) {
            char *end = NULL;
            unsigned long long v = strtoull (val, &end, 10);
            if (!end || *end || v < 4096 || v > (1ull << 32)) {
                fprintf (stderr,
                         "fault_proxy: --buffer wants 4096 to 4G "
                         "bytes, got \"%s\"\n",
                         val);
                return 2;
            }
            self.buffer = (size_t)v;
        } else {
            fprintf (stderr, "fault_proxy: unknown option \"%s\"\n", opt);
            s_usage (stderr);
            return 2;
        }
    }
    if (!listen_s || !target_s) {
        s_usage (stderr);
        return 2;
    }
    if (fp_parse_addr (listen_s, &self.listen_addr) ||
        fp_parse_addr (target_s, &self.target_addr) ||
        fp_parse_addr (control_s, &self.control_addr)) {
        fprintf (stderr,
                 "fault_proxy: addresses are IPv4 HOST:PORT "
                 "(listen \"%s\", target \"%s\", control \"%s\")\n",
                 listen_s, target_s, control_s);
        return 2;
    }
    struct sigaction sa;
    memset (&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction (SIGPIPE, &sa, NULL);
    //  Block TERM and INT except inside epoll_pwait: no lost wake-up.
    sa.sa_handler = s_on_signal;
    sigaction (SIGTERM, &sa, NULL);
    sigaction (SIGINT, &sa, NULL);
    sigset_t block;
    sigemptyset (&block);
    sigaddset (&block, SIGTERM);
    sigaddset (&block, SIGINT);
    sigprocmask (SIG_BLOCK, &block, NULL);
    //  Many connections: two descriptors each.
    struct rlimit nofile;
    if (getrlimit (RLIMIT_NOFILE, &nofile) == 0 &&
        nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit (RLIMIT_NOFILE, &nofile);
    }
    self.scratch = malloc (FP_CHUNK_SIZE);
    if (!self.scratch || s_setup (&self) != 0)
        return 1;
    char listen_t[INET_ADDRSTRLEN], target_t[INET_ADDRSTRLEN],
        control_t[INET_ADDRSTRLEN];
    inet_ntop (AF_INET, &self.listen_addr.sin_addr, listen_t, sizeof listen_t);
    inet_ntop (AF_INET, &self.target_addr.sin_addr, target_t, sizeof target_t);
    inet_ntop (AF_INET, &self.control_addr.sin_addr, control_t,
               sizeof control_t);
    printf ("fault_proxy: listen %s:%u target %s:%u control %s:%u pid %d\n",
            listen_t, ntohs (self.listen_addr.sin_port), target_t,
            ntohs (self.target_addr.sin_port), control_t,
            ntohs (self.control_addr.sin_port), (int)getpid ());
    fflush (stdout);
    if (ports_file && s_write_ports_file (ports_file, &self) != 0) {
        fprintf (stderr, "fault_proxy: cannot write %s: %s\n", ports_file,
                 strerror (errno));
        return 1;
    }
    s_loop (&self);
    fp_log (&self,
            "stopping (%s): %llu connections accepted, %llu bytes "
            "up, %llu down",
            s_signalled ? "signal" : "quit",
            (unsigned long long)self.accepted_total,
            (unsigned long long)self.bytes_total[FP_UP],
            (unsigned long long)self.bytes_total[FP_DOWN]);
    fp_conn_close_all (&self);
    for (fp_ctl_t *ctl = self.ctls; ctl; ctl = ctl->next)
        ctl->dead = true;
    fp_ctl_reap (&self);
    close (self.listen_fd);
    close (self.control_fd);
    close (self.epfd);
    free (self.scratch);
    return 0;
}
