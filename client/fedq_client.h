//  client/fedq_client.h — libfedq, the C client of a fedq node
//  (docs/protocol.md "Client conversation", docs/client.md).
//
//  One fedq_client_t is one session: a DEALER socket to the node's ROUTER,
//  HELLO on connect, PING when idle, BYE on close. It is not thread-safe:
//  use one client per thread.
//
//      fedq_client_t *c = fedq_client_new ("tcp://127.0.0.1:5680", NULL);
//      if (!c)
//          fail (fedq_client_last_error (NULL));
//      fedq_message_t m = {.exchange = "", .routing_key = "orders"};
//      int64_t seq = fedq_client_publish (c, &m, "hello", 5);
//      fedq_client_wait_confirms (c, 5000);
//      fedq_client_destroy (&c);
#ifndef FEDQ_CLIENT_H_INCLUDED
#define FEDQ_CLIENT_H_INCLUDED

#include "fedq.h"
#include "proto.h"

#include <zmq.h>

typedef struct _fedq_client_t fedq_client_t;

//  Session options; zero (or NULL) fields take the defaults shown.
typedef struct {
    const char *key_file;           //  our CURVE secret cert (NAME.key), or
                                    //  NULL for a plain connection
    const char *server_key_file;    //  the node's public cert (NAME.pub);
                                    //  required with key_file
    uint32_t timeout_ms;            //  request timeout, default 5000
    uint32_t heartbeat_ms;          //  PING when idle this long, default 2000
    uint32_t window;                //  max unsettled publishes, default 1000
} fedq_client_opts_t;

#define FEDQ_CLIENT_TIMEOUT_MS 5000
#define FEDQ_CLIENT_HEARTBEAT_MS 2000
#define FEDQ_CLIENT_WINDOW 1000

//  Connect to the node at endpoint, say HELLO and wait for HELLO_OK (up to
//  the timeout). NULL on failure: fedq_client_last_error (NULL) and
//  fedq_client_last_rc (NULL) then say why (per thread).
fedq_client_t *
    fedq_client_new (const char *endpoint, const fedq_client_opts_t *opts);

//  Close the session (BYE, if still open) and null *self_p; safe on NULL.
void
    fedq_client_destroy (fedq_client_t **self_p);

//  Say BYE: the node requeues our unacked deliveries. Further calls fail
//  with FEDQ_EINVAL.
fedq_rc_t
    fedq_client_close (fedq_client_t *self);

//  Text of the last failure on this client ("queue \"x\" not found"), as
//  the node sent it or as the client saw it; "" if none. With NULL, the
//  cause of the last failed fedq_client_new in this thread.
const char *
    fedq_client_last_error (fedq_client_t *self);

//  Code of the last failure (FEDQ_OK if none); NULL as above.
fedq_rc_t
    fedq_client_last_rc (fedq_client_t *self);

//  True when the last failure is an ERROR the node sent (its code and
//  text), false when the client saw it (timeout, lost node, bad
//  argument); NULL as above.
bool
    fedq_client_last_error_from_node (fedq_client_t *self);

//  The node's id from HELLO_OK ("sydney"), or the endpoint if it sent none.
const char *
    fedq_client_node_id (fedq_client_t *self);

//  The endpoint this client connected to.
const char *
    fedq_client_endpoint (fedq_client_t *self);

//  Set the request timeout in ms for the following calls.
void
    fedq_client_set_timeout (fedq_client_t *self, uint32_t timeout_ms);

//  ---------------------------------------------------------------------
//  Declarations. Each is one request: FEDQ_OK, FEDQ_ETIMEOUT, or the code
//  of the node's ERROR reply (text in fedq_client_last_error).

//  Declare a queue with opts (NULL = defaults). With passive, only check
//  that it exists. *count_p (optional) gets its message count.
fedq_rc_t
    fedq_client_declare_queue (fedq_client_t *self, const char *name,
                               const proto_qopts_t *opts, bool passive,
                               uint64_t *count_p);

//  Delete a queue; with if_unused only when it has no consumers.
//  *count_p (optional) gets the number of messages dropped.
fedq_rc_t
    fedq_client_delete_queue (fedq_client_t *self, const char *name,
                              bool if_unused, uint64_t *count_p);

//  Drop every ready message of a queue; *count_p (optional) gets how many.
fedq_rc_t
    fedq_client_purge_queue (fedq_client_t *self, const char *name,
                             uint64_t *count_p);

//  Declare an exchange of type "direct", "fanout" or "topic".
fedq_rc_t
    fedq_client_declare_exchange (fedq_client_t *self, const char *name,
                                  const char *type, bool passive);

fedq_rc_t
    fedq_client_delete_exchange (fedq_client_t *self, const char *name);

fedq_rc_t
    fedq_client_bind (fedq_client_t *self, const char *exchange,
                      const char *queue, const char *key);

fedq_rc_t
    fedq_client_unbind (fedq_client_t *self, const char *exchange,
                        const char *queue, const char *key);

//  Ask for the node's status; *json_p gets the JSON text (caller frees).
fedq_rc_t
    fedq_client_status (fedq_client_t *self, char **json_p);

//  Round trip a PING; *rtt_us_p (optional) gets the round-trip time.
fedq_rc_t
    fedq_client_ping (fedq_client_t *self, int64_t *rtt_us_p);

//  ---------------------------------------------------------------------
//  Publishing: pipelined, settled by cumulative CONFIRM and by RETURN.

//  A message to publish; strings are borrowed for the call only.
typedef struct {
    const char *exchange;           //  "" = the default exchange
    const char *routing_key;
    const char *message_id;         //  NULL = none (no dedup)
    const proto_header_t *headers;  //  nheaders entries, borrowed
    uint32_t nheaders;
    uint8_t priority;               //  0..9
    uint64_t ttl_ms;                //  0 = none
} fedq_message_t;

//  Called once per published seq when it is settled: code FEDQ_OK when
//  confirmed, else the RETURN code with its text (NULL when confirmed).
typedef void (fedq_settle_fn) (void *arg, uint64_t seq, fedq_rc_t code,
                               const char *text);

//  Call fn for each settled publish from now on (NULL to stop).
void
    fedq_client_set_settle_handler (fedq_client_t *self, fedq_settle_fn *fn,
                                    void *arg);

//  Send a message; return its seq (> 0) at once, or a negative fedq_rc_t.
//  Blocks while the window of unsettled publishes is full, up to the
//  timeout (then FEDQ_ETIMEOUT). The body is copied.
int64_t
    fedq_client_publish (fedq_client_t *self, const fedq_message_t *msg,
                         const void *body, size_t size);

//  Wait until every publish is settled (confirmed or returned):
//  FEDQ_OK, or FEDQ_ETIMEOUT after timeout_ms (-1 = forever).
fedq_rc_t
    fedq_client_wait_confirms (fedq_client_t *self, int timeout_ms);

typedef struct {
    uint64_t published;             //  publishes sent (= last seq)
    uint64_t confirmed;             //  confirmed by the node
    uint64_t returned;              //  returned (not stored)
    uint64_t unsettled;             //  neither yet
    fedq_rc_t last_return_code;     //  code of the last RETURN, or FEDQ_OK
} fedq_publish_stats_t;

//  The publish counters as of now (no I/O).
void
    fedq_client_publish_stats (fedq_client_t *self,
                               fedq_publish_stats_t *stats);

typedef struct {
    uint64_t reopens;               //  new sessions after ESESSION
    uint64_t stale_settles;         //  settles of an ended session's tags
} fedq_session_stats_t;

//  The session counters as of now (no I/O).
void
    fedq_client_session_stats (fedq_client_t *self,
                               fedq_session_stats_t *stats);

//  ---------------------------------------------------------------------
//  Consuming.

//  One received message. Zero-initialise before first use; the fields
//  point into frames the delivery owns until fedq_delivery_release or
//  the next fedq_client_recv / fedq_client_get into it. Do not copy it.
typedef struct {
    proto_frame_t frame;            //  header: tag, dtag (rid for GET)
    proto_msg_t msg;                //  envelope: origin, seq, message_id,
                                    //  exchange, routing_key, headers,
                                    //  published_at, redelivered, ...
    const uint8_t *body;            //  body bytes (not NUL-terminated)
    size_t body_size;
    uint64_t dtag;                  //  delivery tag, for ack/nack/reject
    zmq_msg_t parts[3];             //  private: the frames it owns
    bool held;                      //  private: parts are live
} fedq_delivery_t;

//  Free what the delivery holds; safe to call twice.
void
    fedq_delivery_release (fedq_delivery_t *d);

//  Start consuming queue with consumer tag (NULL = "fedq"), prefetch
//  credit (0 = unlimited); with no_ack deliveries are settled on send.
//  When the node restarts (or expires the session) the client opens a new
//  session and consumes again: deliveries not yet acked come again,
//  marked redelivered, under new delivery tags.
fedq_rc_t
    fedq_client_consume (fedq_client_t *self, const char *queue,
                         const char *tag, uint32_t prefetch, bool no_ack);

//  Stop a consumer.
fedq_rc_t
    fedq_client_cancel (fedq_client_t *self, const char *tag);

//  Next delivery into d (released first): FEDQ_OK, FEDQ_ETIMEOUT after
//  timeout_ms (0 = don't wait, -1 = forever), FEDQ_EAGAIN when a signal
//  interrupted the wait, FEDQ_EIO when the node stopped answering.
fedq_rc_t
    fedq_client_recv (fedq_client_t *self, fedq_delivery_t *d,
                      int timeout_ms);

//  Fetch one message from queue into d: FEDQ_OK, FEDQ_EAGAIN when the
//  queue is empty, or an error.
fedq_rc_t
    fedq_client_get (fedq_client_t *self, const char *queue, bool no_ack,
                     fedq_delivery_t *d);

//  Settle a delivery (every one up to dtag with multiple). No reply: a bad
//  dtag comes back later as an error in fedq_client_last_error. A dtag of
//  a session that ended (the node restarted) gives FEDQ_ESESSION and sends
//  nothing: the node has that delivery back and gives it again.
fedq_rc_t
    fedq_client_ack (fedq_client_t *self, uint64_t dtag, bool multiple);
fedq_rc_t
    fedq_client_nack (fedq_client_t *self, uint64_t dtag, bool multiple,
                      bool requeue);
fedq_rc_t
    fedq_client_reject (fedq_client_t *self, uint64_t dtag, bool multiple);

//  Process whatever arrives (confirms, returns, deliveries, heartbeats)
//  for up to timeout_ms. FEDQ_OK, FEDQ_EAGAIN when a signal interrupted,
//  FEDQ_EIO when the node stopped answering.
fedq_rc_t
    fedq_client_poll (fedq_client_t *self, int timeout_ms);

//  The raw ZeroMQ socket, for zmq_poll with others; read only through
//  fedq_client_poll.
void *
    fedq_client_socket (fedq_client_t *self);

#endif
