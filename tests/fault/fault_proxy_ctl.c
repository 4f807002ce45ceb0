//  tests/fault/fault_proxy_ctl.c — the fault proxy's control interface: a
//  line protocol on a loopback port, and `fault_proxy --send` to use it.
//
//  Grammar (one command per line, one reply line per command):
//      delay DIR MS [JITTER_MS]      DIR = up | down | both
//      bandwidth DIR BYTES_PER_S     0 = unlimited
//      blackhole DIR | blackhole off
//      reject on | off
//      reset
//      heal
//      status
//      quit
//  Replies: "ok[ key=value...]" or "err <why>". "up" is the direction
//  from the connecting client to the target, "down" the reverse.
#define _GNU_SOURCE
#include "fault_proxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <poll.h>
#include <unistd.h>

#define FP_CTL_MAX_ARGS 8

static void
s_reply (fp_ctl_t *ctl, const char *text)
{
    size_t len = strlen (text);
    //  Replies are short and the client waits for them: a blocking-ish
    //  retry on a non-blocking socket is enough.
    for (int tries = 0; len && tries < 1000; tries++) {
        ssize_t n = send (ctl->fd, text, len, MSG_NOSIGNAL);
        if (n > 0) {
            text += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            ctl->dead = true;
            return;
        } else {
            struct pollfd p = {ctl->fd, POLLOUT, 0};
            poll (&p, 1, 10);
        }
    }
}

//  "up", "down", "both" into a bit mask (1 up, 2 down); 0 when invalid.
static int
s_dirs (const char *word)
{
    if (strcmp (word, "up") == 0)
        return 1;
    if (strcmp (word, "down") == 0)
        return 2;
    if (strcmp (word, "both") == 0)
        return 3;
    return 0;
}

static int
s_number (const char *word, uint64_t max, uint64_t *value)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull (word, &end, 10);
    if (errno || !end || *end || word[0] == '-' || v > max)
        return -1;
    *value = v;
    return 0;
}

static const char *s_dir_names[] = {"up", "down"};

static void
s_status (fp_proxy_t *self, char *out, size_t size)
{
    size_t used = (size_t)snprintf (
        out, size,
        "ok conns=%zu accepted=%llu resets=%llu refused=%llu queued=%zu "
        "reject=%s",
        self->nconns, (unsigned long long)self->accepted_total,
        (unsigned long long)self->resets_total,
        (unsigned long long)self->refused_total, self->queued_total,
        self->reject ? "on" : "off");
    for (int d = 0; d < 2 && used < size; d++) {
        fp_fault_t *f = &self->fault[d];
        used += (size_t)snprintf (
            out + used, size - used,
            " %s_bytes=%llu %s_delay_ms=%lld %s_jitter_ms=%lld "
            "%s_rate=%llu %s_blackhole=%s",
            s_dir_names[d], (unsigned long long)self->bytes_total[d],
            s_dir_names[d], (long long)(f->delay_us / 1000), s_dir_names[d],
            (long long)(f->jitter_us / 1000), s_dir_names[d],
            (unsigned long long)f->rate, s_dir_names[d],
            f->blackhole ? "on" : "off");
    }
    if (used < size - 1)
        snprintf (out + used, size - used, "\n");
}

//  Run one command line; write the reply into out.
static void
s_execute (fp_proxy_t *self, char *line, char *out, size_t size)
{
    char *argv[FP_CTL_MAX_ARGS];
    int argc = 0;
    char *save = NULL;
    for (char *w = strtok_r (line, " \t\r", &save); w && argc < FP_CTL_MAX_ARGS;
         w = strtok_r (NULL, " \t\r", &save))
        argv[argc++] = w;
    if (argc == 0) {
        snprintf (out, size, "err empty command\n");
        return;
    }
    const char *cmd = argv[0];
    uint64_t v = 0, jitter = 0;
    int dirs = argc >= 2 ? s_dirs (argv[1]) : 0;
    if (strcmp (cmd, "delay") == 0) {
        if (argc < 3 || argc > 4 || !dirs ||
            s_number (argv[2], 3600000, &v) != 0 ||
            (argc == 4 && s_number (argv[3], 3600000, &jitter) != 0)) {
            snprintf (out, size,
                      "err usage: delay up|down|both MS "
                      "[JITTER_MS]\n");
            return;
        }
        for (int d = 0; d < 2; d++)
            if (dirs & (1 << d)) {
                self->fault[d].delay_us = (int64_t)v * 1000;
                self->fault[d].jitter_us = (int64_t)jitter * 1000;
            }
        fp_log (self, "delay %s %llu ms, jitter %llu ms", argv[1],
                (unsigned long long)v, (unsigned long long)jitter);
    } else if (strcmp (cmd, "bandwidth") == 0) {
        if (argc != 3 || !dirs || s_number (argv[2], UINT64_MAX / 2, &v)) {
            snprintf (out, size,
                      "err usage: bandwidth up|down|both "
                      "BYTES_PER_S (0 = unlimited)\n");
            return;
        }
        for (int d = 0; d < 2; d++)
            if (dirs & (1 << d)) {
                self->fault[d].rate = v;
                self->fault[d].tokens = 0;
                self->fault[d].tokens_at = fp_now_us ();
            }
        fp_log (self, "bandwidth %s %llu bytes/s", argv[1],
                (unsigned long long)v);
    } else if (strcmp (cmd, "blackhole") == 0) {
        bool off = argc == 2 && strcmp (argv[1], "off") == 0;
        if (argc != 2 || (!dirs && !off)) {
            snprintf (out, size, "err usage: blackhole up|down|both|off\n");
            return;
        }
        for (int d = 0; d < 2; d++)
            if (off || (dirs & (1 << d)))
                self->fault[d].blackhole = !off;
        fp_log (self, "blackhole %s", argv[1]);
        fp_conn_release_held (self);
    } else if (strcmp (cmd, "reject") == 0) {
        if (argc != 2 ||
            (strcmp (argv[1], "on") != 0 && strcmp (argv[1], "off") != 0)) {
            snprintf (out, size, "err usage: reject on|off\n");
            return;
        }
        self->reject = strcmp (argv[1], "on") == 0;
        fp_log (self, "reject %s", argv[1]);
    } else if (strcmp (cmd, "reset") == 0 && argc == 1)
        fp_conn_reset_all (self);
    else if (strcmp (cmd, "heal") == 0 && argc == 1) {
        memset (self->fault, 0, sizeof self->fault);
        self->reject = false;
        fp_conn_due_now (self);
        fp_conn_release_held (self);
        fp_log (self, "heal");
    } else if (strcmp (cmd, "status") == 0 && argc == 1) {
        s_status (self, out, size);
        return;
    } else if (strcmp (cmd, "quit") == 0 && argc == 1)
        self->stop = true;
    else {
        snprintf (out, size,
                  "err unknown command \"%s\" (delay, bandwidth, "
                  "blackhole, reject, reset, heal, status, quit)\n",
                  cmd);
        return;
    }
    snprintf (out, size, "ok\n");
}

void
fp_ctl_accept (fp_proxy_t *self)
{
    for (;;) {
        int fd = accept4 (self->control_fd, NULL, NULL,
                          SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        fp_ctl_t *ctl = calloc (1, sizeof *ctl);
        if (!ctl) {
            close (fd);
            return;
        }
        ctl->fd = fd;
        ctl->tag = (fp_tag_t){FP_TAG_CONTROL, 0, ctl};
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &ctl->tag};
        if (epoll_ctl (self->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close (fd);
            free (ctl);
            return;
        }
        ctl->next = self->ctls;
        if (self->ctls)
            self->ctls->prev = ctl;
        self->ctls = ctl;
    }
}

void
fp_ctl_event (fp_proxy_t *self, fp_ctl_t *ctl)
{
    if (ctl->dead)
        return;
    ssize_t n = recv (ctl->fd, ctl->line + ctl->used,
                      sizeof ctl->line - 1 - ctl->used, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        ctl->dead = true;
        return;
    }
    ctl->used += (size_t)n;
    ctl->line[ctl->used] = 0;
    char *start = ctl->line;
    char *nl;
    while ((nl = strchr (start, '\n')) != NULL) {
        *nl = 0;
        char reply[1024];
        s_execute (self, start, reply, sizeof reply);
        s_reply (ctl, reply);
        start = nl + 1;
    }
    ctl->used -= (size_t)(start - ctl->line);
    memmove (ctl->line, start, ctl->used);
    if (ctl->used == sizeof ctl->line - 1) {
        s_reply (ctl, "err line too long\n");
        ctl->dead = true;
    }
}

void
fp_ctl_reap (fp_proxy_t *self)
{
    fp_ctl_t *ctl = self->ctls;
    while (ctl) {
        fp_ctl_t *next = ctl->next;
        if (ctl->dead) {
            if (ctl->prev)
                ctl->prev->next = ctl->next;
            else
                self->ctls = ctl->next;
            if (ctl->next)
                ctl->next->prev = ctl->prev;
            epoll_ctl (self->epfd, EPOLL_CTL_DEL, ctl->fd, NULL);
            close (ctl->fd);
            free (ctl);
        }
        ctl = next;
    }
}

//  `fault_proxy --send ADDR WORDS...`: send one command, print the reply;
//  exit 0 on "ok", 1 on "err" or no answer, 2 on bad usage.
int
fp_ctl_send (const char *addr_text, int argc, char **argv)
{
    struct sockaddr_in addr;
    if (fp_parse_addr (addr_text, &addr) != 0) {
        fprintf (stderr, "fault_proxy: --send wants HOST:PORT, got \"%s\"\n",
                 addr_text);
        return 2;
    }
    char line[FP_CTL_LINE_MAX];
    size_t used = 0;
    for (int i = 0; i < argc; i++) {
        int n = snprintf (line + used, sizeof line - used, "%s%s", i ? " " : "",
                          argv[i]);
        if (n < 0 || (size_t)n >= sizeof line - used - 1) {
            fprintf (stderr, "fault_proxy: command too long\n");
            return 2;
        }
        used += (size_t)n;
    }
    line[used++] = '\n';
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (fd < 0 || connect (fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        fprintf (stderr, "fault_proxy: cannot reach control port %s: %s\n",
                 addr_text, strerror (errno));
        if (fd >= 0)
            close (fd);
        return 1;
    }
    if (send (fd, line, used, MSG_NOSIGNAL) != (ssize_t)used) {
        fprintf (stderr, "fault_proxy: send to %s: %s\n", addr_text,
                 strerror (errno));
        close (fd);
        return 1;
    }
    char reply[2048];
    size_t got = 0;
    while (got < sizeof reply - 1) {
        ssize_t n = recv (fd, reply + got, sizeof reply - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (memchr (reply, '\n', got))
            break;
    }
    close (fd);
    reply[got] = 0;
    if (!got) {
        fprintf (stderr, "fault_proxy: no reply from %s\n", addr_text);
        return 1;
    }
    fputs (reply, stdout);
    return strncmp (reply, "ok", 2) == 0 ? 0 : 1;
}
