//  client/fedq_client_internal.h — what the files of libfedq share: the
//  session struct and the helpers between fedq_client.c (session,
//  requests), fedq_client_io.c (sending, receiving, waiting),
//  fedq_client_publish.c and fedq_client_consume.c. Not installed.
#ifndef FEDQ_CLIENT_INTERNAL_H_INCLUDED
#define FEDQ_CLIENT_INTERNAL_H_INCLUDED

#include "fedq_client.h"

#define CLIENT_ERROR_MAX 512

//  A delivery waiting for fedq_client_recv: its frames, as received.
typedef struct {
    zmq_msg_t parts[3];
} client_pending_t;

//  A consumer this session started: CONSUME is sent again when the node
//  asks for a new session (it restarted or expired ours).
typedef struct {
    char queue[PROTO_MAX_NAME + 1];
    char tag[PROTO_MAX_NAME + 1];
    uint32_t prefetch;
    bool no_ack;
} client_consumer_t;

struct _fedq_client_t {
    void *ctx;                  //  our own ZeroMQ context
    void *sock;                 //  DEALER to the node's ROUTER
    char *endpoint;             //  where we connected
    char node_id[PROTO_MAX_NAME + 1];   //  from HELLO_OK
    uint32_t timeout_ms;        //  request timeout
    uint32_t heartbeat_ms;      //  PING when silent this long
    uint32_t window;            //  max unsettled publishes
    bool open;                  //  HELLO done, no BYE yet
    bool dead;                  //  node stopped answering PINGs
    //  Requests: one outstanding at a time.
    uint64_t next_rid;          //  last rid used
    uint64_t wait_rid;          //  rid of the request we wait for, or 0
    bool reply_ready;           //  reply[] holds the reply to wait_rid
    zmq_msg_t reply[3];         //  the reply's frames
    int reply_nparts;           //  frames in reply[] (0 = empty)
    //  Heartbeats.
    int64_t last_send_ms;       //  when we last sent anything
    int64_t ping_out_ms;        //  first PING since the last receive, or 0
    //  Publishing.
    uint64_t last_seq;          //  seq of the last publish
    uint64_t settled_upto;      //  highest CONFIRM upto
    uint64_t *returned;         //  returned seqs above settled_upto, sorted
    size_t nreturned;           //  entries in returned
    size_t returned_cap;        //  allocated entries
    uint64_t confirmed_total;   //  publishes confirmed
    uint64_t returned_total;    //  publishes returned
    fedq_rc_t last_return_code; //  code of the last RETURN
    fedq_settle_fn *settle_fn;  //  per-seq settle callback, or NULL
    void *settle_arg;           //  its argument
    proto_msg_t envelope;       //  publish envelope, reused
    fedq_buf_t hbuf;            //  encoded header, reused
    fedq_buf_t ebuf;            //  encoded envelope, reused
    //  Deliveries received, not yet handed out: a ring.
    client_pending_t *ring;          //  ring_cap slots
    size_t ring_head;           //  oldest
    size_t ring_count;          //  slots in use
    size_t ring_cap;            //  slots allocated
    //  Consumers, and delivery tags across sessions: the node numbers
    //  deliveries from 1 in each session, the client adds dtag_base (the
    //  highest tag handed out before the session was reopened), so a tag
    //  of an ended session is never taken for one of the new session.
    client_consumer_t *consumers;   //  nconsumers entries
    size_t nconsumers;
    size_t consumers_cap;
    uint64_t dtag_base;         //  added to the node's tags
    uint64_t dtag_max;          //  highest tag handed out
    uint64_t reopens_total;     //  sessions reopened after ESESSION
    uint64_t stale_settles_total;   //  settles of ended sessions' tags
    //  Last failure.
    fedq_rc_t last_rc;
    bool last_from_node;        //  last_error is the node's ERROR text
    char last_error[CLIENT_ERROR_MAX];
};

//  Record a failure on self (or the per-thread slot of fedq_client_new
//  when NULL); return rc.
fedq_rc_t
    client_fail (fedq_client_t *self, fedq_rc_t rc, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  A code from the wire as a fedq_rc_t; anything unknown is EPROTO.
fedq_rc_t
    client_wire_rc (int32_t code);

//  A header for cmd, every other field zero.
void
    client_frame_init (proto_frame_t *frame, proto_cmd_t cmd);

//  Send a header, and for message commands the envelope and body.
fedq_rc_t
    client_send (fedq_client_t *self, const proto_frame_t *frame,
                 const proto_msg_t *msg, const void *body, size_t size);

//  Wait up to timeout_ms (-1 = forever) for something from the node, then
//  handle all that is waiting; keeps the heartbeat going.
fedq_rc_t
    client_pump (fedq_client_t *self, int timeout_ms);

void
    client_close_parts (zmq_msg_t *parts, int nparts);

//  Send a request (rid assigned) and wait for its reply, left in
//  self->reply and decoded into *reply. FEDQ_OK, ETIMEOUT, or the code of
//  an ERROR reply.
fedq_rc_t
    client_request (fedq_client_t *self, proto_frame_t *frame,
                    proto_frame_t *reply);

//  A request whose reply is OK (with an optional count).
fedq_rc_t
    client_request_ok (fedq_client_t *self, proto_frame_t *frame,
                       uint64_t *count_p);

//  FEDQ_EINVAL (recorded) unless name is a valid queue or exchange name.
fedq_rc_t
    client_check_name (fedq_client_t *self, const char *what,
                       const char *name);

//  Publish accounting (fedq_client_publish.c): a RETURN, a CONFIRM, and
//  how many publishes are neither confirmed nor returned yet.
void
    client_on_return (fedq_client_t *self, const proto_frame_t *f);
void
    client_on_confirm (fedq_client_t *self, uint64_t upto);
uint64_t
    client_unsettled (fedq_client_t *self);

//  The node no longer knows this session: settle the old session's
//  publishes as returned, say HELLO again, drop deliveries not handed out
//  (the node redelivers them) and start every consumer again.
void
    client_reopen (fedq_client_t *self);

#endif
