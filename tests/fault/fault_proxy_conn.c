//  tests/fault/fault_proxy_conn.c — the fault proxy's data path: accept,
//  connect upstream, read, hold (delay, blackhole, bandwidth), write,
//  close and reset. See fault_proxy.h for the design.
#define _GNU_SOURCE
#include "fault_proxy.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FP_READS_PER_TURN 16 //  fairness between connections
#define FP_MIN_BURST 4096    //  token bucket depth at low rates
#define FP_COALESCE_US 1000  //  reads this close share a chunk

static void
s_set_events (fp_proxy_t *self, fp_conn_t *conn, int side, uint32_t events)
{
    if (conn->fd[side] < 0 || conn->events[side] == events)
        return;
    struct epoll_event ev = {.events = events, .data.ptr = &conn->tag[side]};
    epoll_ctl (self->epfd, EPOLL_CTL_MOD, conn->fd[side], &ev);
    conn->events[side] = events;
}

static int
s_add_fd (fp_proxy_t *self, fp_conn_t *conn, int side, uint32_t events)
{
    conn->tag[side] = (fp_tag_t){FP_TAG_CONN, side, conn};
    conn->events[side] = events;
    struct epoll_event ev = {.events = events, .data.ptr = &conn->tag[side]};
    return epoll_ctl (self->epfd, EPOLL_CTL_ADD, conn->fd[side], &ev);
}

//  Which events each socket of conn needs now.
static void
s_update (fp_proxy_t *self, fp_conn_t *conn)
{
    if (conn->dead)
        return;
    for (int side = 0; side < 2; side++) {
        uint32_t ev = 0;
        if (conn->state == FP_OPEN) {
            fp_dir_t *in = &conn->dir[side];      //  reads this socket
            fp_dir_t *out = &conn->dir[1 - side]; //  writes this socket
            if (!self->fault[side].blackhole && !in->eof &&
                in->queued < self->buffer)
                ev |= EPOLLIN;
            if (out->write_blocked)
                ev |= EPOLLOUT;
        } else if (conn->state == FP_CONNECTING && side == 1)
            ev = EPOLLOUT;
        s_set_events (self, conn, side, ev);
    }
}

static void
s_free_chunks (fp_proxy_t *self, fp_dir_t *dir)
{
    while (dir->head) {
        fp_chunk_t *c = dir->head;
        dir->head = c->next;
        free (c);
    }
    dir->tail = NULL;
    self->queued_total -= dir->queued;
    dir->queued = 0;
}

//  Close conn: with RST on both sides (abort) or a normal close.
static void
s_close (fp_proxy_t *self, fp_conn_t *conn, bool abort)
{
    if (conn->dead)
        return;
    for (int side = 0; side < 2; side++) {
        if (conn->fd[side] < 0)
            continue;
        if (abort) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt (conn->fd[side], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        epoll_ctl (self->epfd, EPOLL_CTL_DEL, conn->fd[side], NULL);
        close (conn->fd[side]);
        conn->fd[side] = -1;
    }
    s_free_chunks (self, &conn->dir[FP_UP]);
    s_free_chunks (self, &conn->dir[FP_DOWN]);
    conn->dead = true;
    //  Out of the live list into the dead one: events already returned by
    //  this epoll_wait may still point at it, so it is freed after them.
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        self->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    conn->prev = NULL;
    conn->next = self->dead;
    self->dead = conn;
    self->nconns--;
    if (self->verbose)
        fp_log (self, "connection %llu %s", (unsigned long long)conn->id,
                abort ? "reset" : "closed");
}

void
fp_conn_reap (fp_proxy_t *self)
{
    bool freed = self->dead != NULL;
    while (self->dead) {
        fp_conn_t *conn = self->dead;
        self->dead = conn->next;
        free (conn);
    }
    if (freed && self->accept_paused) {
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.ptr = &self->listen_tag};
        epoll_ctl (self->epfd, EPOLL_CTL_MOD, self->listen_fd, &ev);
        self->accept_paused = false;
    }
}

static uint64_t
s_rand (fp_proxy_t *self)
{
    //  xorshift64: jitter needs no quality.
    uint64_t x = self->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    self->rng = x;
    return x;
}

//  When bytes read now in direction d may be written.
static int64_t
s_due (fp_proxy_t *self, fp_dir_t *dir, int d, int64_t now)
{
    fp_fault_t *f = &self->fault[d];
    int64_t due = now + f->delay_us;
    if (f->jitter_us > 0)
        due += (int64_t)(s_rand (self) % (uint64_t)(f->jitter_us + 1));
    if (due < dir->last_due)
        due = dir->last_due; //  never ahead of the bytes before
    dir->last_due = due;
    return due;
}

static void
s_refill (fp_fault_t *f, int64_t now)
{
    double burst = (double)f->rate / 50.0;
    if (burst < FP_MIN_BURST)
        burst = FP_MIN_BURST;
    f->tokens += (double)(now - f->tokens_at) * (double)f->rate / 1e6;
    if (f->tokens > burst)
        f->tokens = burst;
    f->tokens_at = now;
}

//  Append bytes to direction dir's FIFO, due at due.
static int
s_enqueue (fp_proxy_t *self, fp_dir_t *dir, const char *data, size_t len,
           int64_t due)
{
    fp_chunk_t *t = dir->tail;
    if (t && t->cap - t->len >= len && due - t->due_us <= FP_COALESCE_US) {
        memcpy (t->data + t->len, data, len);
        t->len += (uint32_t)len;
    } else {
        size_t cap = len < 16384 ? 16384 : len;
        fp_chunk_t *c = malloc (sizeof *c + cap);
        if (!c)
            return -1;
        c->next = NULL;
        c->due_us = due;
        c->cap = (uint32_t)cap;
        c->len = (uint32_t)len;
        c->off = 0;
        memcpy (c->data, data, len);
        if (dir->tail)
            dir->tail->next = c;
        else
            dir->head = c;
        dir->tail = c;
    }
    dir->queued += len;
    self->queued_total += len;
    return 0;
}

//  send() without SIGPIPE; bytes written, 0 for "would block", -1 error.
static ssize_t
s_send (int fd, const char *data, size_t len)
{
    for (;;) {
        ssize_t n = send (fd, data, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        return -1;
    }
}

static void
s_finish_if_done (fp_proxy_t *self, fp_conn_t *conn)
{
    if (conn->dir[FP_UP].shut && conn->dir[FP_DOWN].shut)
        s_close (self, conn, false);
}

//  Write what is due in direction d; FIN once the reader ended and the
//  FIFO is empty.
static void
s_write (fp_proxy_t *self, fp_conn_t *conn, int d, int64_t now)
{
    fp_dir_t *dir = &conn->dir[d];
    fp_fault_t *f = &self->fault[d];
    int dst = conn->fd[1 - d];
    if (conn->dead || conn->state != FP_OPEN || f->blackhole)
        return;
    while (dir->head && !dir->write_blocked) {
        fp_chunk_t *c = dir->head;
        if (c->due_us > now)
            break;
        size_t n = c->len - c->off;
        if (f->rate) {
            s_refill (f, now);
            if (f->tokens < 1.0)
                break;
            if ((double)n > f->tokens)
                n = (size_t)f->tokens;
        }
        ssize_t w = s_send (dst, c->data + c->off, n);
        if (w < 0) {
            s_close (self, conn, true);
            return;
        }
        c->off += (uint32_t)w;
        dir->queued -= (size_t)w;
        self->queued_total -= (size_t)w;
        dir->bytes += (uint64_t)w;
        self->bytes_total[d] += (uint64_t)w;
        if (f->rate)
            f->tokens -= (double)w;
        if (c->off == c->len) {
            dir->head = c->next;
            if (!dir->head)
                dir->tail = NULL;
            free (c);
        }
        if ((size_t)w < n)
            dir->write_blocked = true;
    }
    if (!dir->head && dir->eof && !dir->shut) {
        shutdown (dst, SHUT_WR);
        dir->shut = true;
        s_finish_if_done (self, conn);
    }
}

//  Read what side d has (direction d), forwarding at once when nothing is
//  held; otherwise queue it.
static void
s_read (fp_proxy_t *self, fp_conn_t *conn, int d, int64_t now)
{
    fp_dir_t *dir = &conn->dir[d];
    fp_fault_t *f = &self->fault[d];
    for (int turn = 0; turn < FP_READS_PER_TURN; turn++) {
        if (conn->dead || f->blackhole || dir->eof ||
            dir->queued >= self->buffer)
            return;
        size_t room = self->buffer - dir->queued;
        if (room > FP_CHUNK_SIZE)
            room = FP_CHUNK_SIZE;
        ssize_t n = recv (conn->fd[d], self->scratch, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                s_close (self, conn, true); //  RST: pass it on
            return;
        }
        if (n == 0) {
            dir->eof = true;
            s_write (self, conn, d, now);
            return;
        }
        int64_t due = s_due (self, dir, d, now);
        size_t sent = 0;
        //  Fast path: nothing held, nothing delayed, no limit.
        if (!dir->head && due <= now && !f->rate && !dir->write_blocked) {
            ssize_t w = s_send (conn->fd[1 - d], self->scratch, (size_t)n);
            if (w < 0) {
                s_close (self, conn, true);
                return;
            }
            sent = (size_t)w;
            dir->bytes += sent;
            self->bytes_total[d] += sent;
            if (sent < (size_t)n)
                dir->write_blocked = true;
        }
        if (sent < (size_t)n && s_enqueue (self, dir, self->scratch + sent,
                                           (size_t)n - sent, due) != 0) {
            fp_log (self, "out of memory: resetting connection %llu",
                    (unsigned long long)conn->id);
            s_close (self, conn, true);
            return;
        }
        if (dir->head)
            s_write (self, conn, d, now);
        if ((size_t)n < room)
            return; //  drained the socket
    }
}

static void
s_set_nodelay (int fd)
{
    int one = 1;
    setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void
fp_conn_connect (fp_proxy_t *self, fp_conn_t *conn)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fp_log (self, "socket: %s; resetting connection %llu", strerror (errno),
                (unsigned long long)conn->id);
        s_close (self, conn, true);
        return;
    }
    s_set_nodelay (fd);
    conn->fd[1] = fd;
    int rc = connect (fd, (struct sockaddr *)&self->target_addr,
                      sizeof self->target_addr);
    if (rc < 0 && errno != EINPROGRESS) {
        if (self->verbose)
            fp_log (self, "connect to target: %s", strerror (errno));
        s_close (self, conn, true);
        return;
    }
    conn->state = rc == 0 ? FP_OPEN : FP_CONNECTING;
    if (s_add_fd (self, conn, 1, 0) != 0) {
        s_close (self, conn, true);
        return;
    }
    s_update (self, conn);
}

void
fp_conn_accept (fp_proxy_t *self)
{
    for (int i = 0; i < 64; i++) {
        int fd =
            accept4 (self->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                //  Level-triggered: stop listening until a close.
                fp_log (self, "accept: %s; pausing accepts", strerror (errno));
                struct epoll_event ev = {.events = 0,
                                         .data.ptr = &self->listen_tag};
                epoll_ctl (self->epfd, EPOLL_CTL_MOD, self->listen_fd, &ev);
                self->accept_paused = true;
            }
            return;
        }
        if (self->reject) {
            struct linger lg = {.l_onoff = 1, .l_linger = 0};
            setsockopt (fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            close (fd);
            self->refused_total++;
            continue;
        }
        fp_conn_t *conn = calloc (1, sizeof *conn);
        if (!conn) {
            close (fd);
            return;
        }
        s_set_nodelay (fd);
        conn->id = ++self->accepted_total;
        conn->fd[0] = fd;
        conn->fd[1] = -1;
        conn->state = FP_HELD;
        conn->next = self->conns;
        if (self->conns)
            self->conns->prev = conn;
        self->conns = conn;
        self->nconns++;
        if (s_add_fd (self, conn, 0, 0) != 0) {
            s_close (self, conn, true);
            continue;
        }
        if (self->verbose)
            fp_log (self, "connection %llu accepted%s",
                    (unsigned long long)conn->id,
                    self->fault[0].blackhole || self->fault[1].blackhole
                        ? " and held (blackhole)"
                        : "");
        if (!self->fault[FP_UP].blackhole && !self->fault[FP_DOWN].blackhole)
            fp_conn_connect (self, conn);
    }
}

void
fp_conn_event (fp_proxy_t *self, fp_conn_t *conn, int side, uint32_t events)
{
    if (conn->dead)
        return;
    int64_t now = fp_now_us ();
    if (conn->state == FP_CONNECTING && side == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt (conn->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            //  Target down: the client sees a reset, as with no proxy.
            if (self->verbose)
                fp_log (self, "connect to target: %s", strerror (err));
            s_close (self, conn, true);
            return;
        }
        conn->state = FP_OPEN;
        s_update (self, conn);
        return;
    }
    if (events & EPOLLERR) {
        s_close (self, conn, true);
        return;
    }
    if (conn->state != FP_OPEN) {
        //  Held: the client gave up (HUP) before we connected.
        if (events & EPOLLHUP)
            s_close (self, conn, true);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP)) {
        if (!(conn->events[side] & EPOLLIN) && (events & EPOLLHUP)) {
            //  Reset while we are not reading it (stalled): pass it on.
            s_close (self, conn, true);
            return;
        }
        s_read (self, conn, side, now);
    }
    if (!conn->dead && (events & EPOLLOUT)) {
        conn->dir[1 - side].write_blocked = false;
        s_write (self, conn, 1 - side, now);
    }
    s_update (self, conn);
}

void
fp_conn_pump_all (fp_proxy_t *self)
{
    if (!self->queued_total)
        return;
    int64_t now = fp_now_us ();
    fp_conn_t *conn = self->conns;
    while (conn) {
        fp_conn_t *next = conn->next;
        if (conn->state == FP_OPEN) {
            for (int d = 0; d < 2 && !conn->dead; d++)
                if (conn->dir[d].head && !conn->dir[d].write_blocked)
                    s_write (self, conn, d, now);
            s_update (self, conn);
        }
        conn = next;
    }
}

int
fp_conn_timeout_ms (fp_proxy_t *self)
{
    if (!self->queued_total)
        return -1;
    int64_t now = fp_now_us ();
    int64_t wake = INT64_MAX;
    for (fp_conn_t *conn = self->conns; conn; conn = conn->next) {
        if (conn->state != FP_OPEN)
            continue;
        for (int d = 0; d < 2; d++) {
            fp_dir_t *dir = &conn->dir[d];
            fp_fault_t *f = &self->fault[d];
            if (!dir->head || dir->write_blocked || f->blackhole)
                continue;
            int64_t at = dir->head->due_us;
            if (f->rate) {
                s_refill (f, now);
                size_t want = dir->head->len - dir->head->off;
                if (want > 1460)
                    want = 1460;
                if (f->tokens < (double)want) {
                    int64_t refill =
                        now + (int64_t)(((double)want - f->tokens) * 1e6 /
                                        (double)f->rate);
                    if (refill > at)
                        at = refill;
                }
            }
            if (at < wake)
                wake = at;
        }
    }
    if (wake == INT64_MAX)
        return -1;
    if (wake <= now)
        return 0;
    int64_t ms = (wake - now + 999) / 1000;
    return ms > 60000 ? 60000 : (int)ms;
}

void
fp_conn_reset_all (fp_proxy_t *self)
{
    uint64_t n = 0;
    while (self->conns) {
        s_close (self, self->conns, true);
        n++;
    }
    self->resets_total += n;
    fp_log (self, "reset %llu connections", (unsigned long long)n);
}

void
fp_conn_close_all (fp_proxy_t *self)
{
    while (self->conns)
        s_close (self, self->conns, false);
    fp_conn_reap (self);
}

void
fp_conn_release_held (fp_proxy_t *self)
{
    if (self->fault[FP_UP].blackhole || self->fault[FP_DOWN].blackhole)
        return;
    fp_conn_t *conn = self->conns;
    while (conn) {
        fp_conn_t *next = conn->next;
        if (conn->state == FP_HELD)
            fp_conn_connect (self, conn);
        else
            s_update (self, conn);
        conn = next;
    }
}

void
fp_conn_due_now (fp_proxy_t *self)
{
    for (fp_conn_t *conn = self->conns; conn; conn = conn->next)
        for (int d = 0; d < 2; d++) {
            conn->dir[d].last_due = 0;
            for (fp_chunk_t *c = conn->dir[d].head; c; c = c->next)
                c->due_us = 0;
        }
}
