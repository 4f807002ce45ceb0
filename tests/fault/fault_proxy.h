//  tests/fault/fault_proxy.h — a TCP proxy LISTEN -> TARGET that injects
//  network faults at run time (delay, stall, reset, bandwidth), for the
//  fault suite. No netem here: delay is done with timestamped buffers.
//
//  Design:
//  - One thread, one epoll set, level-triggered. Each accepted connection
//    is a pair of sockets (side 0: the client that connected to LISTEN,
//    side 1: our connection to TARGET) and two directions: "up" (0) reads
//    side 0 and writes side 1, "down" (1) the reverse.
//  - Bytes read in a direction become a chunk stamped with the time it may
//    be written (now + delay, never before the chunk ahead of it, so a
//    stream is never reordered). A direction buffers at most `buffer`
//    bytes; past that it stops reading, so TCP backpressure reaches the
//    sender as on a real link.
//  - Bandwidth is a token bucket per direction, shared by all connections.
//  - A blackhole stops a direction without closing anything: nothing is
//    read or written, bytes wait in buffers (ours and the kernel's), as on
//    a link that drops every packet; the peers' heartbeats notice. New
//    connections are accepted but held (no upstream connect) until healed.
//  - Reset closes every connection with RST (SO_LINGER 0) on both sides.
//  - The control interface is a line protocol on its own loopback port
//    (see fault_proxy_ctl.c and docs/operations.md "Fault suite").
#ifndef FAULT_PROXY_H_INCLUDED
#define FAULT_PROXY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define FP_CHUNK_SIZE (256 * 1024) //  bytes read at once
#define FP_DEFAULT_BUFFER (4u * 1024 * 1024)
#define FP_MAX_EVENTS 256
#define FP_CTL_LINE_MAX 512

enum { FP_UP = 0, FP_DOWN = 1 };

//  What an epoll event points at.
typedef enum {
    FP_TAG_LISTEN,
    FP_TAG_CONTROL_LISTEN,
    FP_TAG_CONTROL,
    FP_TAG_CONN,
} fp_tag_kind_t;

typedef struct {
    fp_tag_kind_t kind;
    int side;    //  FP_TAG_CONN: 0 client, 1 target
    void *owner; //  conn_t or ctl_t
} fp_tag_t;

//  Bytes read, waiting to be written no earlier than due_us.
typedef struct fp_chunk {
    struct fp_chunk *next;
    int64_t due_us; //  monotonic time it may be written
    uint32_t cap;   //  bytes data can hold
    uint32_t len;   //  bytes in data
    uint32_t off;   //  bytes already written
    char data[];
} fp_chunk_t;

//  One direction of one connection.
typedef struct {
    fp_chunk_t *head, *tail; //  FIFO of chunks
    size_t queued;           //  bytes in the FIFO not yet written
    int64_t last_due;        //  due of the newest chunk (no reordering)
    bool eof;                //  the reading side sent FIN
    bool shut;               //  we sent FIN to the writing side
    bool write_blocked;      //  last write got EAGAIN: wait for POLLOUT
    uint64_t bytes;          //  forwarded so far
} fp_dir_t;

typedef enum {
    FP_HELD = 0,   //  accepted while blackholed: no upstream
    FP_CONNECTING, //  upstream connect in progress
    FP_OPEN,       //  forwarding
} fp_conn_state_t;

typedef struct fp_conn {
    struct fp_conn *prev, *next;
    uint64_t id;        //  accept order, for logs
    int fd[2];          //  0 client, 1 target (-1 when none)
    uint32_t events[2]; //  epoll interest now set per fd
    fp_tag_t tag[2];
    fp_dir_t dir[2]; //  FP_UP, FP_DOWN
    fp_conn_state_t state;
    bool dead; //  closed; freed at the end of the turn
} fp_conn_t;

//  A control client.
typedef struct fp_ctl {
    struct fp_ctl *prev, *next;
    int fd;
    fp_tag_t tag;
    char line[FP_CTL_LINE_MAX]; //  bytes of the line being read
    size_t used;
    bool dead;
} fp_ctl_t;

//  Faults in force for one direction.
typedef struct {
    int64_t delay_us;  //  added to every chunk
    int64_t jitter_us; //  plus uniform 0..jitter (order kept)
    uint64_t rate;     //  bytes/s, 0 = unlimited
    double tokens;     //  bucket fill
    int64_t tokens_at; //  when tokens was computed
    bool blackhole;    //  stalled
} fp_fault_t;

typedef struct {
    int epfd;
    int listen_fd;
    int control_fd;
    fp_tag_t listen_tag, control_tag;
    struct sockaddr_in listen_addr, target_addr, control_addr;
    size_t buffer; //  per direction and connection
    bool verbose;
    fp_fault_t fault[2]; //  FP_UP, FP_DOWN
    bool reject;         //  new connections get RST at once
    fp_conn_t *conns;    //  live connections
    fp_conn_t *dead;     //  closed this turn (linked by next)
    fp_ctl_t *ctls;
    char *scratch;       //  FP_CHUNK_SIZE bytes: one read
    size_t queued_total; //  bytes buffered in every direction
    size_t nconns;
    bool accept_paused; //  out of file descriptors
    uint64_t accepted_total, resets_total, refused_total;
    uint64_t bytes_total[2];
    uint64_t rng; //  xorshift state for jitter
    bool stop;
} fp_proxy_t;

//  fault_proxy.c
int64_t fp_now_us (void);
void fp_log (fp_proxy_t *self, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));
int fp_parse_addr (const char *text, struct sockaddr_in *addr);

//  fault_proxy_conn.c: the data path.
void fp_conn_accept (fp_proxy_t *self);
void fp_conn_connect (fp_proxy_t *self, fp_conn_t *conn);
void fp_conn_event (fp_proxy_t *self, fp_conn_t *conn, int side,
                    uint32_t events);
void fp_conn_pump_all (fp_proxy_t *self);
int fp_conn_timeout_ms (fp_proxy_t *self);
void fp_conn_reset_all (fp_proxy_t *self);
void fp_conn_release_held (fp_proxy_t *self);
void fp_conn_due_now (fp_proxy_t *self);
void fp_conn_reap (fp_proxy_t *self);
void fp_conn_close_all (fp_proxy_t *self);

//  fault_proxy_ctl.c: the control protocol.
void fp_ctl_accept (fp_proxy_t *self);
void fp_ctl_event (fp_proxy_t *self, fp_ctl_t *ctl);
void fp_ctl_reap (fp_proxy_t *self);
int fp_ctl_send (const char *addr, int argc, char **argv);

#endif
